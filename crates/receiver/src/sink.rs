//! The boundary between the receiver and whatever makes records durable (the store's writer,
//! wired in by the binary).

use std::time::Duration;

use futures::future::BoxFuture;
use genai_audit_core::{AuditRecord, CorrelatedContent};

/// Where accepted records go. The receiver acknowledges an OTLP request only after the
/// future returned for its batch resolves `Ok`.
///
/// Implementations must be cheap to call concurrently: every in-flight request calls it.
pub trait AuditSink: Send + Sync + 'static {
    /// Resolves only when the records are durable; then the request may be acknowledged.
    fn append(&self, records: Vec<AuditRecord>) -> BoxFuture<'static, Result<(), SinkError>>;

    /// Content from OTLP log records (correlated to spans by id), same durability contract.
    fn append_contents(
        &self,
        contents: Vec<CorrelatedContent>,
    ) -> BoxFuture<'static, Result<(), SinkError>>;
}

/// Why a sink did not take a batch. Each variant maps to one OTLP answer that tells the client
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink is full for now: the client should retry after `retry_after` (gRPC
    /// `UNAVAILABLE` with `RetryInfo`, HTTP 503 with `Retry-After`).
    #[error("the audit log is applying backpressure: retry after {retry_after:?}")]
    Backpressure {
        /// How long the client should wait before retrying.
        retry_after: Duration,
    },
    /// The sink cannot take data at the moment (shutting down, failed): retryable with the
    /// client's own backoff (gRPC `UNAVAILABLE`, HTTP 503).
    #[error("the audit log is unavailable: {0}")]
    Unavailable(String),
    /// The batch can never be accepted; retrying will not help (gRPC `INVALID_ARGUMENT`,
    /// HTTP 400).
    #[error("the audit log refused the batch: {0}")]
    Invalid(String),
}
