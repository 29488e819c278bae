//! # genai-audit-core
//!
//! The heart of genai-audit, with no I/O: the [`AuditRecord`] (one row per GenAI span), its
//! Arrow schema ([`schema::audit_schema`], the single source of truth for the audit log's
//! columns), and the [`Normalizer`] that turns OTLP spans and log records of every GenAI
//! convention into records, pricing them with a versioned [`PriceTable`], scanning their content
//! for PII with a [`PiiScanner`] and replacing it with keyed hashes ([`HashKey`]).
//!
//! ```
//! use genai_audit_core::{HashKey, Normalizer, NormalizerConfig, IngestContext, Source};
//! use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
//!
//! let key = HashKey::new(&[7u8; 32]).unwrap();
//! let normalizer = Normalizer::new(NormalizerConfig::default(), key);
//! let ctx = IngestContext::new(Source::Import, "collector-1", 1_700_000_000_000_000);
//! let out = normalizer.normalize_traces(&ExportTraceServiceRequest::default(), &ctx);
//! assert!(out.records.is_empty());
//! ```

pub mod classify;
pub mod cost;
mod error;
pub mod hash;
pub mod money;
pub mod normalize;
pub mod pii;
pub mod record;
pub mod retention;
pub mod rows;
pub mod schema;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use classify::ClassificationRules;
pub use cost::PriceTable;
pub use error::{Error, Result};
pub use hash::HashKey;
pub use money::Usd;
pub use normalize::{
    ContentDigest, CorrelatedContent, IngestContext, LogsOutcome, Normalizer, NormalizerConfig,
    SkipReason, SkippedSpan, TracesOutcome,
};
pub use pii::{PiiScanner, PiiSet, PiiType};
pub use record::{AuditRecord, CostSource, DataClassification, Source, SpanKind, Status};
pub use retention::RetentionPolicy;
pub use rows::batch_to_records;
pub use schema::{audit_schema, records_to_batch, records_to_batch_refs};
