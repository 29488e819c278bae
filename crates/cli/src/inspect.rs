//! `genai-audit inspect`: normalize OTLP files and print the records, storing nothing.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use genai_audit_core::{
    AuditRecord, CorrelatedContent, IngestContext, Normalizer, NormalizerConfig, PriceTable, Source,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::KeyArgs;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// OTLP files: `.json` (OTLP/JSON, one request per line) or `.pb` (protobuf).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Extra price table (your contract prices) applied over the shipped one.
    #[arg(long)]
    prices: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
}

/// One decoded OTLP request.
enum Request {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
}

pub fn run(args: &InspectArgs) -> Result<ExitCode> {
    let key = crate::keys::load_or_create(&args.key.hash_key_file)?;
    let mut prices = PriceTable::embedded();
    if let Some(path) = &args.prices {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the price table {}", path.display()))?;
        let extra = PriceTable::from_toml_str(&text)
            .with_context(|| format!("in the price table {}", path.display()))?;
        prices = prices.with_overrides(extra);
    }
    let normalizer = Normalizer::new(
        NormalizerConfig {
            prices: Arc::new(prices),
            ..NormalizerConfig::default()
        },
        key,
    );
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let ctx = IngestContext::new(Source::Import, "inspect", now_us);

    let mut records: Vec<AuditRecord> = Vec::new();
    let mut contents: Vec<CorrelatedContent> = Vec::new();
    let mut problems = 0usize;
    for path in &args.files {
        for (line, req) in read_requests(path)? {
            match req {
                Ok(Request::Traces(r)) => {
                    let out = normalizer.normalize_traces(&r, &ctx);
                    for s in &out.skipped {
                        tracing::info!(
                            file = %path.display(), line, span = %s.span_name,
                            trace_id = %s.trace_id, reason = %s.reason, "span skipped"
                        );
                    }
                    records.extend(out.records);
                }
                Ok(Request::Logs(r)) => {
                    contents.extend(normalizer.normalize_logs(&r, &ctx).contents)
                }
                Err(e) => {
                    problems += 1;
                    eprintln!("{}:{line}: {e:#}", path.display());
                }
            }
        }
    }
    let unmatched = normalizer.merge_contents(&mut records, contents);
    if !unmatched.is_empty() {
        tracing::info!(
            count = unmatched.len(),
            "log records whose span is not in these files"
        );
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for r in &records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads every request of a file, with its 1-based line number (1 for protobuf files).
fn read_requests(path: &Path) -> Result<Vec<(usize, Result<Request>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("pb") | Some("binpb") | Some("protobuf") => Ok(vec![(1, decode_protobuf(&bytes))]),
        Some("json") | Some("jsonl") | Some("ndjson") => {
            let text = std::str::from_utf8(&bytes)
                .with_context(|| format!("{} is not UTF-8", path.display()))?;
            Ok(text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| (i + 1, decode_json(l)))
                .collect())
        }
        _ => bail!(
            "{}: unknown file type (expected .json or .pb)",
            path.display()
        ),
    }
}

fn decode_json(line: &str) -> Result<Request> {
    let value: serde_json::Value = serde_json::from_str(line).context("invalid JSON")?;
    if value.get("resourceSpans").is_some() {
        Ok(Request::Traces(
            serde_json::from_value(value).context("not an OTLP/JSON traces request")?,
        ))
    } else if value.get("resourceLogs").is_some() {
        Ok(Request::Logs(
            serde_json::from_value(value).context("not an OTLP/JSON logs request")?,
        ))
    } else {
        bail!("neither resourceSpans nor resourceLogs at the top level")
    }
}

fn decode_protobuf(bytes: &[u8]) -> Result<Request> {
    // The two request types share field number 1; a traces request with spans is tried first.
    let traces = ExportTraceServiceRequest::decode(bytes);
    if let Ok(t) = &traces {
        if t.resource_spans
            .iter()
            .any(|rs| rs.scope_spans.iter().any(|s| !s.spans.is_empty()))
        {
            return traces.map(Request::Traces).map_err(Into::into);
        }
    }
    match ExportLogsServiceRequest::decode(bytes) {
        Ok(l)
            if l.resource_logs
                .iter()
                .any(|rl| rl.scope_logs.iter().any(|s| !s.log_records.is_empty())) =>
        {
            Ok(Request::Logs(l))
        }
        _ => traces
            .map(Request::Traces)
            .context("not an OTLP protobuf traces or logs request"),
    }
}
