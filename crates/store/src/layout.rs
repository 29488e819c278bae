//! Object names: Hive-style partitions and file names unique across collectors.
//!
//! ```text
//! <root>/audit_log/tenant=<tenant>/dt=<YYYY-MM-DD>/<collector>-w<first>-<last>-<part>.parquet
//! <root>/audit_log/tenant=<tenant>/dt=<YYYY-MM-DD>/<collector>-c<commit>-<part>.parquet   (compaction)
//! <root>/audit_log/tenant=<tenant>/dt=<YYYY-MM-DD>/<collector>-c<commit>-<run>-<part>.parquet (retention, erasure)
//! <root>/_manifest/<collector>/<commit:020>.json                                           (commits)
//! <root>/_maintenance/<collector>/<commit:020>-<run>.json                                  (maintenance intents)
//! <root>/_holds/<id>.json, <id>.removed.json                                               (legal holds)
//! <root>/_integrity/<collector>/<seq:020>.checkpoint                                       (signed checkpoints)
//! ```
//!
//! `dt` is the UTC date of the span's `start_time`, so late spans land in their own day. File
//! names carry the collector id and the WAL range (or commit) they hold: many collectors can write
//! to one bucket without coordinating, and a replayed flush of the same WAL range produces the
//! same names.

use chrono::{DateTime, NaiveDate};

/// Directory of the audit log table below the store root.
pub const AUDIT_LOG_DIR: &str = "audit_log";
/// Directory of the commit manifests below the store root.
pub const MANIFEST_DIR: &str = "_manifest";
/// Directory of legal holds below the store root.
pub const HOLDS_DIR: &str = "_holds";
/// Directory of maintenance intents (work in progress of retention and erasure runs).
pub const MAINTENANCE_DIR: &str = "_maintenance";

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The UTC date of a µs timestamp.
pub fn day_of(us: i64) -> NaiveDate {
    DateTime::from_timestamp_micros(us.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY)
        .map(|d| d.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

/// `audit_log/tenant=<tenant>/dt=<date>`.
pub fn partition_dir(tenant: &str, day: NaiveDate) -> String {
    format!(
        "{AUDIT_LOG_DIR}/tenant={}/dt={}",
        escape(tenant),
        day.format("%Y-%m-%d")
    )
}

/// File name of part `part` of the flush of WAL entries `first..=last`.
pub fn flush_file_name(collector: &str, first: u64, last: u64, part: u32) -> String {
    format!("{collector}-w{first:020}-{last:020}-{part:04}.parquet")
}

/// File name of part `part` written by commit `commit` (compaction, rewrites).
pub fn commit_file_name(collector: &str, commit: u64, part: u32) -> String {
    format!("{collector}-c{commit:020}-{part:04}.parquet")
}

/// File name of part `part` written by maintenance commit `commit` in run `run` (retention,
/// erasure). The run token keeps two runs racing for the same commit number from writing the
/// same names: only the one whose commit wins is ever listed.
pub fn rewrite_file_name(collector: &str, commit: u64, run: &str, part: u32) -> String {
    format!("{collector}-c{commit:020}-{run}-{part:04}.parquet")
}

/// Key of a collector's commit manifest.
pub fn manifest_key(collector: &str, commit: u64) -> String {
    format!("{MANIFEST_DIR}/{collector}/{commit:020}.json")
}

/// Hive escaping: anything outside `[A-Za-z0-9._-]` becomes `%XX` (core already restricts
/// tenants to that alphabet; this keeps a path safe whatever it is given).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.starts_with('.') {
        out.insert_str(0, "%00");
    }
    out
}

/// Whether `id` is usable as a collector id (it goes into object names).
pub fn valid_collector_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses `tenant=<t>/dt=<d>` out of a file key (relative to the root).
pub fn parse_partition(key: &str) -> Option<(String, NaiveDate)> {
    let mut tenant = None;
    let mut day = None;
    for part in key.split('/') {
        if let Some(t) = part.strip_prefix("tenant=") {
            tenant = Some(t.to_owned());
        } else if let Some(d) = part.strip_prefix("dt=") {
            day = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
        }
    }
    Some((tenant?, day?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let day = day_of(1_749_902_400_000_000); // 2025-06-14T12:00Z
        assert_eq!(
            partition_dir("acme", day),
            "audit_log/tenant=acme/dt=2025-06-14"
        );
        assert_eq!(day_of(-1).to_string(), "1969-12-31");
        assert_eq!(
            flush_file_name("c1", 5, 9, 0),
            "c1-w00000000000000000005-00000000000000000009-0000.parquet"
        );
        assert_eq!(
            manifest_key("c1", 3),
            "_manifest/c1/00000000000000000003.json"
        );
        assert_eq!(escape("a/b c"), "a%2Fb%20c");
        assert_eq!(escape(".."), "%00..");
        assert_eq!(
            parse_partition("audit_log/tenant=acme/dt=2025-06-14/x.parquet"),
            Some(("acme".into(), day))
        );
        assert!(valid_collector_id("collector-1.eu"));
        assert!(!valid_collector_id("a/b"));
    }
}
