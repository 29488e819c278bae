//! Normalization of OTLP GenAI spans and log records into [`AuditRecord`]s (being written).

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::hash::HashKey;
use crate::pii::PiiSet;
use crate::record::{AuditRecord, Source};

/// Normalizer settings.
#[derive(Debug, Clone, Default)]
pub struct NormalizerConfig {}

/// Per-request context.
#[derive(Debug, Clone)]
pub struct IngestContext {
    /// How the data arrived.
    pub source: Source,
    /// Collector id.
    pub collector_id: Arc<str>,
    /// Receive time, µs.
    pub ingest_time_us: i64,
    /// Tenant fixed by authentication.
    pub tenant: Option<Arc<str>>,
}

impl IngestContext {
    /// A context without an authenticated tenant.
    pub fn new(source: Source, collector_id: &str, ingest_time_us: i64) -> Self {
        Self {
            source,
            collector_id: collector_id.into(),
            ingest_time_us,
            tenant: None,
        }
    }
}

/// Why a span produced no record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not a GenAI span.
    NotGenAi,
}

/// A span that produced no record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSpan {
    /// Why.
    pub reason: SkipReason,
}

/// Result of normalizing a traces request.
#[derive(Debug, Clone, Default)]
pub struct TracesOutcome {
    /// Records.
    pub records: Vec<AuditRecord>,
    /// Skipped spans.
    pub skipped: Vec<SkippedSpan>,
}

/// Hashed content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentDigest {
    /// PII.
    pub pii: PiiSet,
}

/// Content from a log record.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelatedContent {
    /// Digest.
    pub digest: ContentDigest,
}

/// Result of normalizing a logs request.
#[derive(Debug, Clone, Default)]
pub struct LogsOutcome {
    /// Contents.
    pub contents: Vec<CorrelatedContent>,
}

/// The normalizer.
#[derive(Debug, Clone)]
pub struct Normalizer {
    _key: HashKey,
}

impl Normalizer {
    /// New.
    pub fn new(_config: NormalizerConfig, key: HashKey) -> Self {
        Self { _key: key }
    }
    /// Traces.
    pub fn normalize_traces(
        &self,
        _req: &ExportTraceServiceRequest,
        _ctx: &IngestContext,
    ) -> TracesOutcome {
        TracesOutcome::default()
    }
    /// Logs.
    pub fn normalize_logs(
        &self,
        _req: &ExportLogsServiceRequest,
        _ctx: &IngestContext,
    ) -> LogsOutcome {
        LogsOutcome::default()
    }
}
