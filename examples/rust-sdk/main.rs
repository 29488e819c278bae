//! The support bot exporting OTLP to `genai-audit serve` with the standard `opentelemetry-otlp`
//! exporter, as any OpenTelemetry backend would be reached. See README.md beside this file.
//!
//! ```sh
//! cargo run --release -p genai-audit -- serve                    # terminal 1
//! cargo run -p genai-audit-exporter --example rust-sdk            # terminal 2
//! ```
//!
//! The endpoint is `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4317`, gRPC).

#![allow(clippy::print_stdout)]

#[path = "../common/app.rs"]
mod app;

use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;

// The tonic (gRPC) client needs a Tokio runtime.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let summary = run(None).await?;
    println!("{summary}");
    Ok(())
}

/// Runs the app exporting to `endpoint` (else `OTEL_EXPORTER_OTLP_ENDPOINT`, else
/// `http://localhost:4317`); returns a one-line summary.
pub async fn run(
    endpoint: Option<String>,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e);
    }
    let provider = SdkTracerProvider::builder()
        .with_resource(app::resource())
        .with_batch_exporter(builder.build()?)
        .build();

    let calls = app::run(&provider);

    // Sends what the batch processor holds; the collector answers once it is in its WAL.
    // Blocking: run it off the async workers, which the gRPC client needs meanwhile.
    tokio::task::spawn_blocking(move || provider.shutdown()).await??;
    Ok(format!(
        "made {calls} LLM calls; the collector accepted their spans"
    ))
}
