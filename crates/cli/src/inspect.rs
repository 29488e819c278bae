//! `genai-audit inspect`: normalize OTLP files and print the records, storing nothing.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use genai_audit_core::{AuditRecord, CorrelatedContent, IngestContext, Source};

use crate::NormalizeArgs;
use crate::input::{self, Request, RequestReader};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// OTLP files or directories: `.json`/`.jsonl`/`.ndjson` (OTLP/JSON, one request per line)
    /// or `.pb` (protobuf), optionally `.gz`.
    #[arg(required = true, value_name = "PATH")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    normalize: NormalizeArgs,
}

pub fn run(args: &InspectArgs) -> Result<ExitCode> {
    let normalizer = args.normalize.normalizer()?;
    let ctx = IngestContext::new(Source::Import, "inspect", crate::now_us());

    let mut inputs = input::collect(&args.files);
    input::order_and_filter(&mut inputs);
    for path in &inputs.ignored {
        tracing::debug!(path = %path.display(), "ignored: not an OTLP file");
    }
    let mut problems = inputs.problems.len();
    for (path, msg) in &inputs.problems {
        eprintln!("{}: {msg}", path.display());
    }
    let mut records: Vec<AuditRecord> = Vec::new();
    let mut contents: Vec<CorrelatedContent> = Vec::new();
    for file in &inputs.files {
        let path = file.path.display();
        let reader = match RequestReader::open(&file.path, file.format, None) {
            Ok(r) => r,
            Err(e) => {
                problems += 1;
                eprintln!("{path}: {e:#}");
                continue;
            }
        };
        for (line, req) in reader {
            match req {
                Ok(Request::Traces(r)) => {
                    let out = normalizer.normalize_traces(&r, &ctx);
                    for s in &out.skipped {
                        tracing::info!(
                            file = %path, line, span = %s.span_name,
                            trace_id = %s.trace_id, reason = %s.reason, "span skipped"
                        );
                    }
                    records.extend(out.records);
                }
                Ok(Request::Logs(r)) => {
                    contents.extend(normalizer.normalize_logs(&r, &ctx).contents)
                }
                Ok(Request::OtherSignal(signal)) => {
                    tracing::debug!(file = %path, line, signal, "request of another signal skipped");
                }
                Ok(Request::NotOtlp) => {
                    problems += 1;
                    eprintln!("{path}:{line}: not an OTLP traces or logs request");
                }
                Err(e) => {
                    problems += 1;
                    eprintln!("{path}:{line}: {:#}", e.error);
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
