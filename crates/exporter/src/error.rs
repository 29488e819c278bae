//! Errors of the exporter crate.

/// Result alias for the exporter crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from building, flushing or shutting down an [`AuditSpanExporter`].
///
/// Errors of one export are not of this type: the SDK gets them as an
/// [`OTelSdkError`](opentelemetry_sdk::error::OTelSdkError) and logs them.
///
/// [`AuditSpanExporter`]: crate::AuditSpanExporter
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is missing or not valid.
    #[error("invalid exporter setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The builder method (`with_collector_id`, `with_tenant`, …).
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// The exporter's own runtime could not be started (thread limit, out of memory).
    #[error("starting the exporter's runtime")]
    Runtime(#[source] std::io::Error),
    /// The store refused an operation (opening it, a flush, the final flush).
    #[error(transparent)]
    Store(#[from] genai_audit_store::Error),
    /// The exporter was shut down: nothing more can be written through it.
    #[error("the audit exporter is shut down")]
    ShutDown,
    /// An earlier shutdown failed; what it did not commit stays in the WAL and is replayed by
    /// the next exporter (or `genai-audit serve`) that opens the same WAL directory.
    #[error("the audit exporter's shutdown failed: {0}")]
    ShutdownFailed(String),
    /// A background task of the exporter died (a bug).
    #[error("an exporter task failed: {0}")]
    Task(String),
}
