//! Crash injection for the commit-protocol tests (feature `failpoints`, off in builds).
//!
//! A test process arms one named point; when the write path reaches it, the process aborts on
//! the spot, as a `kill -9` would stop it there. Without the feature, [`hit`] compiles to
//! nothing.

/// Points on the flush path, in order.
pub const POINTS: &[&str] = &[
    "flush:after_first_file",
    "flush:after_files",
    "flush:after_commit",
];

/// Points of a maintenance batch (retention, erasure, compaction), in order.
pub const MAINTENANCE_POINTS: &[&str] = &[
    "maintenance:after_intent",
    "maintenance:after_first_file",
    "maintenance:after_files",
    "maintenance:after_commit",
    "maintenance:after_delete",
];

#[cfg(feature = "failpoints")]
static ARMED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Arms `name`: the process aborts when it is reached.
#[cfg(feature = "failpoints")]
pub fn arm(name: &str) {
    if let Ok(mut a) = ARMED.lock() {
        *a = Some(name.to_owned());
    }
}

#[inline]
pub(crate) fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    if ARMED.lock().is_ok_and(|a| a.as_deref() == Some(name)) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
