//! [`AuditSpanExporter`]: `SpanData` → OTLP → normalizer → WAL → Parquet, in process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use genai_audit_core::{AuditRecord, IngestContext, Normalizer, Source};
use genai_audit_store::{FlushReport, StoreLocation, Writer, WriterConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::runtime::Runtime;

use crate::error::{Error, Result};

/// What the builder decided beyond the writer's and normalizer's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) tenant: Option<String>,
    pub(crate) export_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    /// Signs the checkpoint published after the final flush.
    pub(crate) integrity_key: Option<genai_audit_store::integrity::IntegrityKey>,
}

/// An `opentelemetry_sdk` [`SpanExporter`] that writes the app's GenAI spans to the audit store.
///
/// Each export converts the batch to OTLP exactly as `opentelemetry-otlp` would send it,
/// normalizes it with the collector's [`Normalizer`] (spans without GenAI attributes are
/// dropped), and appends the records to the store's WAL; it resolves once they are durable
/// there. Parquet files are written by the store's flusher on its thresholds, on
/// [`ExporterHandle::flush`], and at shutdown.
///
/// Use it with the SDK's `BatchSpanProcessor` (`with_batch_exporter`): the app's threads only
/// queue spans, and exports run on the processor's thread. With a `SimpleSpanProcessor` every
/// `span.end()` would wait for an fsync.
///
/// Built by [`AuditSpanExporter::builder`]; keep an [`ExporterHandle`] ([`Self::handle`]) before
/// handing the exporter to the SDK, to flush and to wait for the final flush.
#[derive(Debug)]
pub struct AuditSpanExporter {
    shared: Arc<Shared>,
    resource: ResourceAttributesWithSchema,
}

/// A handle on an [`AuditSpanExporter`] owned by the SDK: explicit flushes, the final flush,
/// counters. Cheap to clone.
///
/// Why it exists: in `opentelemetry_sdk` 0.33, `SdkTracerProvider::force_flush` makes the batch
/// processor export what it holds (so it is durable in the WAL when that returns) but does not
/// call the exporter's `force_flush`, so nothing would turn the WAL into Parquet until a flush
/// threshold; and `SdkTracerProvider::shutdown` gives up waiting after 5 s while the exporter's
/// final flush may still be running. [`ExporterHandle::flush`] and
/// [`ExporterHandle::shutdown`] close both gaps.
#[derive(Debug, Clone)]
pub struct ExporterHandle {
    shared: Arc<Shared>,
}

/// Counters of an exporter (since it was built).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// Spans handed to `export`.
    pub spans_received: u64,
    /// Audit records durable in the WAL.
    pub records_appended: u64,
    /// Spans without GenAI attributes (not audit data).
    pub spans_not_genai: u64,
    /// GenAI spans refused as malformed (bad ids, no start time, invalid tenant).
    pub spans_rejected: u64,
    /// Records lost because their export failed (WAL full beyond the export timeout, WAL I/O
    /// error, or after shutdown). The SDK does not retry a failed export.
    pub records_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    spans_received: AtomicU64,
    records_appended: AtomicU64,
    spans_not_genai: AtomicU64,
    spans_rejected: AtomicU64,
    records_failed: AtomicU64,
}

/// The outcome of the one shutdown, kept for later callers.
#[derive(Debug, Clone)]
enum ShutdownState {
    Running,
    Done(std::result::Result<FlushReport, Failed>),
}

/// Why the shutdown failed, in a form that can be handed to every caller.
#[derive(Debug, Clone)]
enum Failed {
    /// The final flush ran out of time (kept as such: callers may treat it apart).
    Timeout(Duration),
    Other(String),
}

impl Failed {
    fn of(e: &Error) -> Self {
        match e {
            Error::Store(genai_audit_store::Error::ShutdownTimeout { after }) => {
                Failed::Timeout(*after)
            }
            other => Failed::Other(other.to_string()),
        }
    }

    fn to_error(&self) -> Error {
        match self {
            Failed::Timeout(after) => {
                Error::Store(genai_audit_store::Error::ShutdownTimeout { after: *after })
            }
            Failed::Other(msg) => Error::ShutdownFailed(msg.clone()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    /// The store's tasks (committer, flusher) and every export's append run here. `None`
    /// once shut down. Behind a mutex only so shutdown can take it.
    runtime: Mutex<Option<Runtime>>,
    /// Handle to spawn on without holding the mutex.
    spawner: tokio::runtime::Handle,
    writer: Writer,
    normalizer: Normalizer,
    collector_id: String,
    settings: Settings,
    counters: Counters,
    /// Held for the whole shutdown, so a second caller waits for the first one's result.
    shutdown: Mutex<ShutdownState>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping a runtime from inside another runtime's task panics; this never does.
        // Nothing acknowledged is lost without a shutdown: the WAL replays it at the next start.
        if let Some(rt) = self.runtime.get_mut().ok().and_then(Option::take) {
            rt.shutdown_background();
        }
    }
}

impl AuditSpanExporter {
    /// A builder with the collector's defaults.
    pub fn builder() -> crate::ExporterBuilder {
        crate::ExporterBuilder::default()
    }

    pub(crate) fn open(
        loc: StoreLocation,
        wcfg: WriterConfig,
        normalizer: Normalizer,
        settings: Settings,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("genai-audit-exporter")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let spawner = runtime.handle().clone();
        let collector_id = wcfg.collector_id.clone();
        // Spawned and awaited with a runtime-agnostic block_on: `Runtime::block_on` would panic
        // if `build` were called from inside the app's own tokio runtime.
        let opened = wait(spawner.spawn(Writer::open(loc, wcfg))).and_then(|r| Ok(r?));
        let (writer, report) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // Not a plain drop: that panics when `build` runs inside an async runtime.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        if report.replayed_records > 0 {
            tracing::info!(
                records = report.replayed_records,
                "audit exporter recovered acknowledged records from the WAL"
            );
        }
        Ok(Self {
            shared: Arc::new(Shared {
                runtime: Mutex::new(Some(runtime)),
                spawner,
                writer,
                normalizer,
                collector_id,
                settings,
                counters: Counters::default(),
                shutdown: Mutex::new(ShutdownState::Running),
            }),
            resource: ResourceAttributesWithSchema::default(),
        })
    }

    /// A handle to flush and shut down the exporter after the SDK has taken it.
    pub fn handle(&self) -> ExporterHandle {
        ExporterHandle {
            shared: self.shared.clone(),
        }
    }

    /// The OTLP request `batch` would be sent as (the same transform `opentelemetry-otlp`
    /// uses), normalized into records.
    fn records(&self, batch: Vec<SpanData>) -> Vec<AuditRecord> {
        let s = &self.shared;
        let n = batch.len() as u64;
        s.counters.spans_received.fetch_add(n, Ordering::Relaxed);
        let req = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let mut ctx = IngestContext::new(Source::Sdk, &s.collector_id, now_us());
        if let Some(t) = &s.settings.tenant {
            ctx = ctx.with_tenant(t);
        }
        let out = s.normalizer.normalize_traces(&req, &ctx);
        let rejected = out.rejected() as u64;
        s.counters
            .spans_not_genai
            .fetch_add(out.dropped_not_genai() as u64, Ordering::Relaxed);
        s.counters
            .spans_rejected
            .fetch_add(rejected, Ordering::Relaxed);
        for skipped in out.skipped.iter().filter(|s| s.reason.is_rejection()) {
            tracing::warn!(
                trace_id = %skipped.trace_id,
                span_id = %skipped.span_id,
                span = %skipped.span_name,
                reason = %skipped.reason,
                "GenAI span not audited"
            );
        }
        out.records
    }
}

impl SpanExporter for AuditSpanExporter {
    /// Normalizes the batch on the calling thread (the batch processor's), then waits, at most
    /// the export timeout, until the records are durable in the WAL. A WAL at its budget is
    /// retried within that time; past it the export fails and the SDK drops the batch.
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let records = self.records(batch);
        let shared = self.shared.clone();
        async move {
            if records.is_empty() {
                return Ok(());
            }
            let n = records.len() as u64;
            let deadline = Instant::now() + shared.settings.export_timeout;
            let writer = shared.writer.clone();
            let appended = shared
                .spawner
                .spawn(append_until(writer, records, deadline))
                .await;
            let result = match appended {
                Ok(Ok(())) => {
                    shared
                        .counters
                        .records_appended
                        .fetch_add(n, Ordering::Relaxed);
                    return Ok(());
                }
                Ok(Err(AppendError::TimedOut)) => {
                    OTelSdkError::Timeout(shared.settings.export_timeout)
                }
                Ok(Err(AppendError::Store(genai_audit_store::Error::WalClosed))) => {
                    OTelSdkError::AlreadyShutdown
                }
                Ok(Err(AppendError::Store(e))) => {
                    OTelSdkError::InternalFailure(format!("genai-audit store: {e}"))
                }
                // The runtime is gone: the exporter was shut down.
                Err(e) if e.is_cancelled() => OTelSdkError::AlreadyShutdown,
                Err(e) => OTelSdkError::InternalFailure(format!("genai-audit exporter task: {e}")),
            };
            shared
                .counters
                .records_failed
                .fetch_add(n, Ordering::Relaxed);
            tracing::warn!(records = n, error = %result, "audit records not written");
            Err(result)
        }
    }

    /// Makes everything exported so far visible as Parquet (called by a `SimpleSpanProcessor`;
    /// the batch processor does not call it: use [`ExporterHandle::flush`]).
    fn force_flush(&self) -> OTelSdkResult {
        self.handle()
            .flush()
            .map(|_| ())
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    /// Final flush with the configured shutdown timeout (the SDK's batch processor calls this
    /// one, after its last export).
    fn shutdown(&self) -> OTelSdkResult {
        self.shutdown_with_timeout(self.shared.settings.shutdown_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self.shared.shutdown(timeout) {
            Ok(_) => Ok(()),
            Err(Error::Store(genai_audit_store::Error::ShutdownTimeout { after })) => {
                Err(OTelSdkError::Timeout(after))
            }
            Err(e) => Err(OTelSdkError::InternalFailure(e.to_string())),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = ResourceAttributesWithSchema::from(resource);
    }
}

impl ExporterHandle {
    /// Writes everything acknowledged so far to Parquet and commits it, regardless of the flush
    /// thresholds. Call it after `SdkTracerProvider::force_flush` (which only exports to the
    /// WAL). Blocks until the commit; the object store being down makes it retry, so put a
    /// timeout around it if the app cannot wait.
    pub fn flush(&self) -> Result<FlushReport> {
        let writer = self.shared.writer.clone();
        match wait(
            self.shared
                .spawner
                .spawn(async move { writer.flush().await }),
        ) {
            Err(Error::Task(_)) if self.is_shut_down() => Err(Error::ShutDown),
            other => Ok(other??),
        }
    }

    /// Shuts the exporter down (or waits for the shutdown the SDK started): final flush within
    /// the shutdown timeout, integrity checkpoint, WAL closed. Idempotent: later calls return
    /// the first one's outcome.
    ///
    /// Call it after `SdkTracerProvider::shutdown`, before the process exits: the provider
    /// stops waiting after 5 s, this waits for the store. What the final flush could not commit
    /// (store down) stays in the WAL and is replayed by the next exporter or collector that opens
    /// it.
    pub fn shutdown(&self) -> Result<FlushReport> {
        self.shared.shutdown(self.shared.settings.shutdown_timeout)
    }

    /// Counters since the exporter was built.
    pub fn stats(&self) -> ExporterStats {
        let c = &self.shared.counters;
        ExporterStats {
            spans_received: c.spans_received.load(Ordering::Relaxed),
            records_appended: c.records_appended.load(Ordering::Relaxed),
            spans_not_genai: c.spans_not_genai.load(Ordering::Relaxed),
            spans_rejected: c.spans_rejected.load(Ordering::Relaxed),
            records_failed: c.records_failed.load(Ordering::Relaxed),
        }
    }

    /// The store's counters (records written, files, commits, store errors) and gauges.
    pub fn writer(&self) -> &Writer {
        &self.shared.writer
    }

    /// Whether the exporter has been shut down.
    pub fn is_shut_down(&self) -> bool {
        self.shared
            .shutdown
            .try_lock()
            .map(|s| matches!(*s, ShutdownState::Done(_)))
            // Locked: a shutdown is in progress.
            .unwrap_or(true)
    }
}

impl Shared {
    fn shutdown(&self, timeout: Duration) -> Result<FlushReport> {
        let mut state = self
            .shutdown
            .lock()
            .map_err(|_| Error::Task("the shutdown lock is poisoned".into()))?;
        if let ShutdownState::Done(result) = &*state {
            return result.clone().map_err(|f| f.to_error());
        }
        let writer = self.writer.clone();
        let integrity_key = self.settings.integrity_key.clone();
        let collector_id = self.collector_id.clone();
        let result = wait(self.spawner.spawn(async move {
            let report = writer.shutdown_within(timeout).await?;
            // Like the collector at shutdown: sign what this run committed, so `verify` finds
            // no pending commit and a later truncation of the chain is detectable.
            if let Some(key) = integrity_key {
                let opts = genai_audit_store::integrity::PublishOptions {
                    reason: "shutdown".to_owned(),
                    skip_if_empty: false,
                };
                genai_audit_store::integrity::publish_checkpoint_with(
                    writer.location(),
                    &collector_id,
                    &key,
                    &opts,
                )
                .await?;
            }
            Ok::<_, genai_audit_store::Error>(report)
        }))
        .and_then(|r| r.map_err(Error::from));
        match &result {
            Ok(r) => tracing::info!(
                records = r.records,
                files = r.files.len(),
                "audit exporter flushed and shut down"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "audit exporter's final flush incomplete; the WAL keeps the rest for the next start"
            ),
        }
        *state = ShutdownState::Done(result.as_ref().map(Clone::clone).map_err(Failed::of));
        drop(state);
        if let Some(rt) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            rt.shutdown_background();
        }
        result
    }
}

/// Why an append did not become durable.
#[derive(Debug)]
enum AppendError {
    TimedOut,
    Store(genai_audit_store::Error),
}

/// Appends `records`, retrying while the WAL is at its budget, until `deadline`.
///
/// An append that times out after it was queued may still become durable (it is then in the
/// store although the SDK was told it failed); the batch processor never resends, so that
/// cannot duplicate a record, and resends are deduplicated by record id anyway.
async fn append_until(
    writer: Writer,
    records: Vec<AuditRecord>,
    deadline: Instant,
) -> std::result::Result<(), AppendError> {
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        // A clone per attempt: `append` takes the records, and a refused append hands nothing
        // back. Only a WAL at its budget makes a second attempt.
        match tokio::time::timeout_at(deadline, writer.append(records.clone())).await {
            Err(_) => return Err(AppendError::TimedOut),
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => match e.retry_after() {
                Some(pause) if tokio::time::Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                }
                _ => return Err(AppendError::Store(e)),
            },
        }
    }
}

/// Waits for a task of the exporter's runtime from any thread, async context or not.
fn wait<T>(task: tokio::task::JoinHandle<T>) -> Result<T> {
    futures::executor::block_on(task).map_err(|e| Error::Task(e.to_string()))
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
