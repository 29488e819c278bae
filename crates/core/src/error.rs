//! Errors of the core crate.

use std::fmt;

/// Result alias for the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the core crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An Arrow array or batch could not be built (a bug: the schema and the builders disagree).
    #[error("building the Arrow batch failed: {0}")]
    Arrow(String),
    /// The price table is not valid.
    #[error("price table: {0}")]
    PriceTable(String),
    /// A configuration value is not valid.
    #[error("invalid configuration `{key}`: {reason}")]
    Config {
        /// The offending key, dotted (`classification.restricted`).
        key: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A hash key is not usable.
    #[error("hash key: {0}")]
    HashKey(String),
}

impl Error {
    pub(crate) fn arrow(e: impl fmt::Display) -> Self {
        Error::Arrow(e.to_string())
    }
}
