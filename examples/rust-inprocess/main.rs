//! The support bot with the in-process audit exporter: its GenAI spans go straight to an audit
//! store on local disk (or S3/GCS/Azure), no collector involved. See README.md beside this file.
//!
//! ```sh
//! cargo run -p genai-audit-exporter --example rust-inprocess -- ./genai-audit-data
//! ```

#![allow(clippy::print_stdout)]

#[path = "../common/app.rs"]
mod app;

use genai_audit_exporter::AuditSpanExporter;
use opentelemetry_sdk::trace::SdkTracerProvider;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./genai-audit-data".to_owned());
    let summary = run(&store, "genai-audit-keys/hash.key")?;
    println!("{summary}");
    Ok(())
}

/// Runs the app with its spans audited into `store`; returns a one-line summary.
pub fn run(store: &str, hash_key_file: &str) -> Result<String, Box<dyn std::error::Error>> {
    let exporter = AuditSpanExporter::builder()
        .with_store_url(store, vec![])
        // Unique among everything that writes to this store.
        .with_collector_id("support-bot-inprocess")
        // The key file `genai-audit serve` and `genai-audit query` use by default, so that
        // audit_hash() matches across them; created (mode 0600) on first use.
        .with_hash_key_file(hash_key_file)
        .build()?;
    let audit = exporter.handle();
    let provider = SdkTracerProvider::builder()
        .with_resource(app::resource())
        .with_batch_exporter(exporter)
        .build();

    let calls = app::run(&provider);

    // Exports what the batch processor holds: durable in the WAL once this returns.
    provider.shutdown()?;
    // Waits for the final Parquet commit (the SDK stops waiting after 5 s).
    let report = audit.shutdown()?;
    let stats = audit.stats();
    Ok(format!(
        "made {calls} LLM calls; audited {} GenAI spans ({} other spans skipped); \
         committed {} records in {} files to {store}",
        stats.records_appended,
        stats.spans_not_genai,
        report.records,
        report.files.len(),
    ))
}
