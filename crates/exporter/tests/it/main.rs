//! The exporter inside a real `opentelemetry_sdk` pipeline (tracer provider → batch span
//! processor → `AuditSpanExporter`), read back through the query engine.

#![allow(clippy::unwrap_used)]

mod bounded;
mod sdk;
mod stall;

use std::path::Path;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use genai_audit_core::HashKey;
use genai_audit_exporter::{AuditSpanExporter, ExporterBuilder};
use genai_audit_query::{QueryEngine, QueryOptions};
use genai_audit_store::StoreLocation;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The test hash key.
fn key() -> HashKey {
    HashKey::new(&[7u8; 32]).unwrap()
}

/// A builder for a local store at `dir/store` with its WAL at `dir/wal`.
fn builder(dir: &Path) -> ExporterBuilder {
    AuditSpanExporter::builder()
        .with_store_url(dir.join("store").display().to_string(), vec![])
        .with_wal_dir(dir.join("wal"))
        .with_collector_id("exporter-it")
        .with_hash_key(key())
}

/// A provider sending to `exporter` through the SDK's batch span processor.
fn provider(exporter: AuditSpanExporter) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name("exporter-it-service")
                .with_attribute(KeyValue::new("service.version", "2.0.1"))
                .build(),
        )
        .with_batch_exporter(exporter)
        .build()
}

/// One LLM call as an instrumented application reports it.
struct Call {
    model: &'static str,
    input: i64,
    output: i64,
    user: &'static str,
}

/// Ends one chat span per call with GenAI semantic-convention attributes, plus one span that is
/// not a GenAI span. Returns how long the app's thread spent in the span calls.
fn emit(provider: &SdkTracerProvider, calls: &[Call]) -> Duration {
    let tracer = provider.tracer("exporter-it");
    let started = std::time::Instant::now();
    for c in calls {
        let mut span = tracer
            .span_builder(format!("chat {}", c.model))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", "openai"),
                KeyValue::new("gen_ai.request.model", c.model),
                KeyValue::new("gen_ai.usage.input_tokens", c.input),
                KeyValue::new("gen_ai.usage.output_tokens", c.output),
                KeyValue::new("user.id", c.user),
            ])
            .start(&tracer);
        span.end();
    }
    tracer.in_span("GET /healthz", |_| {});
    started.elapsed()
}

/// Rows of `sql` over the store at `dir/store`, every value rendered as text (NULL as "∅").
fn query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let loc = StoreLocation::local(&dir.join("store")).unwrap();
        let engine = QueryEngine::open(loc, QueryOptions::default())
            .await
            .unwrap();
        let batches = engine.collect(sql).await.unwrap();
        rows(&batches)
    })
}

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow_cast_string(c.as_ref()))
            .collect();
        for i in 0..b.num_rows() {
            out.push(cols.iter().map(|c| c[i].clone()).collect());
        }
    }
    out
}

/// Renders a column the queries cast to text.
fn arrow_cast_string(col: &dyn arrow_array::Array) -> Vec<String> {
    let s = col
        .as_string_opt::<i32>()
        .map(|a| a.iter().map(|v| v.unwrap_or("∅").to_owned()).collect())
        .or_else(|| {
            col.as_string_view_opt()
                .map(|a| a.iter().map(|v| v.unwrap_or("∅").to_owned()).collect())
        });
    s.unwrap_or_else(|| panic!("cast every column to VARCHAR: got {:?}", col.data_type()))
}
