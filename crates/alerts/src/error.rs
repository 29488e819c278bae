//! Errors of the alerts crate.

/// What went wrong setting up or running alerting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `key` is its path (`alerts.rules[2].max_ms`).
    #[error("invalid configuration `{key}`: {reason}")]
    Config {
        /// Path of the offending key.
        key: String,
        /// Why it is refused.
        reason: String,
    },
    /// Reading or writing the store failed.
    #[error("alerts store I/O")]
    Store(#[from] genai_audit_store::Error),
    /// Reading committed Parquet (budget rebuild) failed.
    #[error("reading {key} to rebuild budgets: {reason}")]
    Rebuild {
        /// The file.
        key: String,
        /// Why.
        reason: String,
    },
    /// The webhook client could not be built.
    #[error("building the webhook client")]
    Client(#[source] reqwest::Error),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
