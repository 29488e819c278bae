//! `genai-audit import`: load OTLP files into the audit store.
//!
//! Files are streamed (JSON line by line; a protobuf file is read whole) and their records are
//! committed in chunks of `--chunk-records`, each chunk one commit made through the store's
//! [`Committer`] as collector `import` (or `--collector-id`). The committer skips records whose
//! `record_id` is already committed, so an import is idempotent: running it again, whole or
//! after a failure, adds only what is missing.
//!
//! Content carried by OTLP log records (the official OTel instrumentations send prompts and
//! completions that way) is merged into its span's record before that record is committed.
//! Files whose first request is a logs request are read first, and log contents that match no
//! record yet are kept (in memory, a few hundred bytes each) and tried again on every later
//! chunk. Limitation: content whose span was already committed, by an earlier chunk of this
//! import (only possible when logs and spans are mixed in one file, or the logs file starts
//! with something else, and the import spans several chunks) or by an earlier run, cannot be
//! added to it any more (committed records are never rewritten); it is counted as unmatched.

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use genai_audit_core::{AuditRecord, CorrelatedContent, IngestContext, Normalizer, Source};
use genai_audit_store::Committer;
use genai_audit_store::manifest::Snapshot;
use indicatif::{ProgressBar, ProgressStyle};

use crate::NormalizeArgs;
use crate::input::{self, Input, Request, RequestReader};
use crate::store::{DEFAULT_STORE, STORE_URL_ENV};

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// OTLP files or directories (walked recursively; there, only files named *.json, *.jsonl,
    /// *.ndjson or *.pb, optionally followed by .gz, are read, and JSON files that are not
    /// OTLP are skipped).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Store URL: a directory, file:///path, s3://bucket/prefix, gs://bucket/prefix or
    /// az://container/prefix. Credentials and endpoints come from the AWS_*, GOOGLE_* and
    /// AZURE_* environment variables.
    #[arg(long, value_name = "URL", env = STORE_URL_ENV, default_value = DEFAULT_STORE)]
    store: String,
    /// Put every record under this tenant whatever the spans' resources say, as an
    /// authenticated collector would (1-64 characters of A-Z a-z 0-9 . _ -).
    #[arg(long, value_name = "T", value_parser = parse_tenant)]
    tenant: Option<String>,
    /// Collector id the commits are made as (file names, `_manifest/<id>/`). Two imports into
    /// one store at the same time need different ids.
    #[arg(long, value_name = "ID", default_value = "import")]
    collector_id: String,
    /// Records per commit. Bounds memory: committing takes about 5 KB per record at its peak.
    #[arg(long, value_name = "N", default_value_t = 50_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    chunk_records: u64,
    #[command(flatten)]
    normalize: NormalizeArgs,
    #[command(flatten)]
    integrity: crate::integrity::IntegrityKeyArgs,
}

/// Malformed lines reported per file; the rest are only counted.
const MAX_REPORTED_LINES: u64 = 20;

/// Checks a tenant name with core's rule (tenants name partition directories).
fn parse_tenant(t: &str) -> Result<String, String> {
    if genai_audit_core::normalize::is_valid_tenant(t) {
        Ok(t.to_owned())
    } else {
        Err("a tenant is 1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.'".into())
    }
}

/// What an import did.
#[derive(Debug, Default)]
struct Summary {
    files_read: u64,
    files_ignored: u64,
    files_failed: u64,
    malformed_lines: u64,
    trace_requests: u64,
    log_requests: u64,
    other_requests: u64,
    spans_seen: u64,
    skipped: BTreeMap<&'static str, u64>,
    duplicate_spans: u64,
    records_written: u64,
    already_present: u64,
    commits: u64,
    log_records_seen: u64,
    contents_merged: u64,
    contents_unmatched: u64,
}

impl Summary {
    /// Whether some input could not be read.
    fn had_problems(&self) -> bool {
        self.files_failed + self.malformed_lines > 0
    }

    fn write(&self, out: &mut impl Write, store: &str) -> std::io::Result<()> {
        let skipped: u64 = self.skipped.values().sum();
        let mut rows: Vec<(String, String)> = vec![
            ("store".into(), store.to_owned()),
            ("files read".into(), self.files_read.to_string()),
            ("files ignored".into(), self.files_ignored.to_string()),
            ("files failed".into(), self.files_failed.to_string()),
            ("malformed lines".into(), self.malformed_lines.to_string()),
            (
                "requests".into(),
                format!(
                    "{} ({} traces, {} logs, {} other signals)",
                    self.trace_requests + self.log_requests + self.other_requests,
                    self.trace_requests,
                    self.log_requests,
                    self.other_requests
                ),
            ),
            ("spans seen".into(), self.spans_seen.to_string()),
            ("spans skipped".into(), skipped.to_string()),
        ];
        for (code, n) in &self.skipped {
            rows.push((format!("spans skipped ({code})"), n.to_string()));
        }
        rows.extend([
            (
                "records written".into(),
                format!(
                    "{} ({} commit{})",
                    self.records_written,
                    self.commits,
                    if self.commits == 1 { "" } else { "s" }
                ),
            ),
            (
                "records already present".into(),
                self.already_present.to_string(),
            ),
            ("duplicate spans".into(), self.duplicate_spans.to_string()),
            ("log records seen".into(), self.log_records_seen.to_string()),
            (
                "log contents merged".into(),
                self.contents_merged.to_string(),
            ),
            (
                "log contents unmatched".into(),
                self.contents_unmatched.to_string(),
            ),
        ]);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        for (k, v) in rows {
            writeln!(out, "{:<width$} {v}", format!("{k}:"))?;
        }
        Ok(())
    }
}

/// The state of one import.
struct Importer {
    normalizer: Normalizer,
    ctx: IngestContext,
    committer: Committer,
    rt: tokio::runtime::Runtime,
    chunk_records: usize,
    /// Records of the chunk being filled, and their ids (one record per span).
    chunk: Vec<AuditRecord>,
    ids: HashSet<String>,
    /// Log-borne content whose record has not been seen yet.
    pending: Vec<CorrelatedContent>,
    summary: Summary,
    bar: ProgressBar,
    bytes_read: Arc<AtomicU64>,
    /// Requests and lines read, to update the progress bar every so often.
    items: u64,
}

pub fn run(args: &ImportArgs) -> Result<ExitCode> {
    let loc = crate::store::open(&args.store)?;
    let committer = Committer::new(loc.clone(), &args.collector_id)?;
    let normalizer = args.normalize.normalizer()?;
    let integrity_key = args.integrity.load()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    // Fail before reading anything if the store cannot be listed.
    rt.block_on(Snapshot::load(&loc))
        .with_context(|| format!("reading the store {loc}"))?;
    let mut ctx = IngestContext::new(Source::Import, &args.collector_id, crate::now_us());
    if let Some(t) = &args.tenant {
        ctx = ctx.with_tenant(t);
    }

    let mut inputs = input::collect(&args.paths);
    input::order_and_filter(&mut inputs);
    let total: u64 = inputs.files.iter().map(|f| f.size).sum();
    let mut imp = Importer {
        normalizer,
        ctx,
        committer,
        rt,
        chunk_records: usize::try_from(args.chunk_records).unwrap_or(usize::MAX),
        chunk: Vec::new(),
        ids: HashSet::new(),
        pending: Vec::new(),
        summary: Summary::default(),
        bar: progress_bar(total),
        bytes_read: Arc::new(AtomicU64::new(0)),
        items: 0,
    };
    for (path, msg) in &inputs.problems {
        imp.summary.files_failed += 1;
        imp.report(&format!("{}: {msg}", path.display()));
    }
    for path in &inputs.ignored {
        tracing::debug!(path = %path.display(), "ignored: not an OTLP file");
    }
    imp.summary.files_ignored = inputs.ignored.len() as u64;
    for file in &inputs.files {
        imp.read_file(file)?;
    }
    imp.flush()?;
    imp.bar.finish_and_clear();
    // Also covers commits of an earlier run that died before publishing.
    imp.rt.block_on(crate::integrity::publish_after_commit(
        &loc,
        &args.collector_id,
        &integrity_key,
        "import",
    ))?;
    imp.summary.contents_unmatched = imp.pending.len() as u64;
    if !imp.pending.is_empty() {
        tracing::info!(
            count = imp.pending.len(),
            "log contents whose span is not in this import (or was committed before them)"
        );
    }

    let mut out = std::io::stdout().lock();
    imp.summary.write(&mut out, &loc.to_string())?;
    out.flush()?;
    Ok(if imp.summary.had_problems() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A byte-count progress bar on stderr when it is a terminal, else a hidden one.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

impl Importer {
    /// Reports a problem with the input on stderr, above the progress bar.
    fn report(&self, message: &str) {
        self.bar.suspend(|| eprintln!("{message}"));
    }

    fn read_file(&mut self, file: &Input) -> Result<()> {
        let path = file.path.display().to_string();
        let reader =
            match RequestReader::open(&file.path, file.format, Some(self.bytes_read.clone())) {
                Ok(r) => r,
                Err(e) => {
                    self.summary.files_failed += 1;
                    self.report(&format!("{path}: {e:#}"));
                    return Ok(());
                }
            };
        self.summary.files_read += 1;
        let mut bad_lines = 0u64;
        for (line, item) in reader {
            match item {
                Ok(Request::Traces(req)) => {
                    self.summary.trace_requests += 1;
                    let out = self.normalizer.normalize_traces(&req, &self.ctx);
                    drop(req);
                    self.summary.spans_seen += out.spans_seen as u64;
                    for s in &out.skipped {
                        *self.summary.skipped.entry(s.reason.code()).or_default() += 1;
                        tracing::debug!(
                            file = %path, line, span = %s.span_name,
                            trace_id = %s.trace_id, reason = %s.reason, "span skipped"
                        );
                    }
                    for r in out.records {
                        self.push(r)?;
                    }
                }
                Ok(Request::Logs(req)) => {
                    self.summary.log_requests += 1;
                    let out = self.normalizer.normalize_logs(&req, &self.ctx);
                    self.summary.log_records_seen += out.log_records_seen as u64;
                    self.pending.extend(out.contents);
                }
                Ok(Request::OtherSignal(signal)) => {
                    self.summary.other_requests += 1;
                    tracing::debug!(file = %path, line, signal, "request of another signal skipped");
                }
                Ok(Request::NotOtlp) => {
                    self.summary.malformed_lines += 1;
                    bad_lines += 1;
                    if bad_lines <= MAX_REPORTED_LINES {
                        self.report(&format!(
                            "{path}:{line}: not an OTLP traces or logs request"
                        ));
                    }
                }
                Err(e) if e.ends_file => {
                    self.summary.files_failed += 1;
                    self.report(&format!("{path}:{line}: {:#}", e.error));
                }
                Err(e) => {
                    self.summary.malformed_lines += 1;
                    bad_lines += 1;
                    if bad_lines <= MAX_REPORTED_LINES {
                        self.report(&format!("{path}:{line}: {:#}", e.error));
                    }
                }
            }
            self.items += 1;
            if self.items.is_multiple_of(256) {
                self.tick();
            }
        }
        if bad_lines > MAX_REPORTED_LINES {
            self.report(&format!(
                "{path}: {} more malformed lines not shown",
                bad_lines - MAX_REPORTED_LINES
            ));
        }
        self.tick();
        Ok(())
    }

    /// Updates the progress bar (bytes read, spans seen, records written).
    fn tick(&self) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar
            .set_position(self.bytes_read.load(Ordering::Relaxed));
        self.bar.set_message(format!(
            "{} files, {} spans, {} records written",
            self.summary.files_read, self.summary.spans_seen, self.summary.records_written
        ));
    }

    /// Adds a record to the chunk (once per span), committing the chunk when it is full.
    fn push(&mut self, record: AuditRecord) -> Result<()> {
        if !self.ids.insert(record.record_id.clone()) {
            self.summary.duplicate_spans += 1;
            return Ok(());
        }
        self.chunk.push(record);
        if self.chunk.len() >= self.chunk_records {
            self.flush()?;
        }
        Ok(())
    }

    /// Merges the pending log contents that belong to the chunk, then commits it.
    fn flush(&mut self) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let mut chunk = std::mem::take(&mut self.chunk);
        self.ids.clear();
        let pending = std::mem::take(&mut self.pending);
        let before = pending.len();
        self.pending = self.normalizer.merge_contents(&mut chunk, pending);
        self.summary.contents_merged += (before - self.pending.len()) as u64;
        self.tick();
        let n = chunk.len();
        let report = self
            .rt
            .block_on(self.committer.commit_records(chunk, "import"))
            .with_context(|| {
                format!(
                    "committing {n} records to {} ({} records were committed before; running the \
                     import again adds only what is missing)",
                    self.committer.location(),
                    self.summary.records_written
                )
            })?;
        self.summary.records_written += report.records;
        self.summary.already_present += report.already_present;
        if report.commit != 0 {
            self.summary.commits += 1;
        }
        tracing::debug!(
            commit = report.commit,
            records = report.records,
            already_present = report.already_present,
            "chunk committed"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_checked_like_core_does() {
        assert!(parse_tenant("acme").is_ok());
        assert!(parse_tenant("team-1.eu_west").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(parse_tenant(bad).is_err(), "{bad:?}");
        }
    }
}
