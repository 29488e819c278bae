//! # genai-audit-exporter
//!
//! The audit log without a collector: an `opentelemetry_sdk` [`SpanExporter`] for Rust services
//! that writes the service's own GenAI spans to a genai-audit store, with the same
//! normalization, write-ahead log, Parquet layout and commits as `genai-audit serve`. The store
//! it writes is read by `genai-audit query`, DuckDB or Spark like any other.
//!
//! ## Main types
//!
//! - [`AuditSpanExporter`]: the exporter. Give it to the SDK's batch span processor
//!   (`SdkTracerProvider::builder().with_batch_exporter(exporter)`): the app's threads only
//!   queue finished spans; exports run on the processor's thread and this crate's own
//!   one-thread runtime, and each waits only for the local WAL (bounded by the export timeout),
//!   never for the object store.
//! - [`ExporterBuilder`]: store URL, WAL directory, collector id, tenant, hash key, prices,
//!   flush thresholds, timeouts.
//! - [`ExporterHandle`], kept by the app: [`ExporterHandle::flush`] (the SDK's `force_flush`
//!   stops at the WAL) and [`ExporterHandle::shutdown`] (waits for the final flush, which the
//!   SDK's shutdown gives only 5 s).
//!
//! ## Guarantees
//!
//! - When an export returns `Ok` (so when `SdkTracerProvider::force_flush` or `shutdown`
//!   returns `Ok`), its GenAI spans are durable in the WAL (fsync'ed by default). A crash after
//!   that loses nothing: the next exporter or collector opening the same WAL directory replays
//!   and commits them, exactly once.
//! - After [`ExporterHandle::shutdown`] returns `Ok`, they are committed Parquet.
//! - An export takes at most the export timeout (default 10 s). If the object store is down,
//!   exports keep succeeding into the WAL until its disk budget; past that they fail and the SDK
//!   drops those spans (counted in [`ExporterStats::records_failed`]).
//!
//! ## Example
//!
//! ```
//! use genai_audit_core::HashKey;
//! use genai_audit_exporter::AuditSpanExporter;
//! use opentelemetry::KeyValue;
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let exporter = AuditSpanExporter::builder()
//!     .with_store_url(dir.path().join("audit").display().to_string(), vec![])
//!     .with_collector_id("billing-bot-1")
//!     .with_tenant("acme")
//!     .with_hash_key(HashKey::new(&[7u8; 32])?)
//!     .build()?;
//! let audit = exporter.handle();
//! let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).build();
//!
//! let tracer = provider.tracer("billing-bot");
//! let mut span = tracer.start("chat gpt-4o-mini");
//! span.set_attribute(KeyValue::new("gen_ai.operation.name", "chat"));
//! span.set_attribute(KeyValue::new("gen_ai.request.model", "gpt-4o-mini"));
//! span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 200));
//! span.end();
//!
//! provider.shutdown()?; // exports what is queued: durable in the WAL from here on
//! let report = audit.shutdown()?; // waits for the final Parquet commit
//! assert_eq!(report.records, 1);
//! # Ok(())
//! # }
//! ```
//!
//! [`SpanExporter`]: opentelemetry_sdk::trace::SpanExporter

mod builder;
mod error;
mod exporter;

pub use builder::{DEFAULT_EXPORT_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, ExporterBuilder};
pub use error::{Error, Result};
pub use exporter::{AuditSpanExporter, ExporterHandle, ExporterStats};
