//! The durable write path: records → WAL → Parquet on the object store → commit → WAL release.
//!
//! ```text
//!  append(records) ──► WAL (group-commit fsync) ──► ack to caller
//!                          │ in WAL order (one committer task)
//!                          ▼
//!                    flush buffer ── rows / bytes / age / shutdown ──► flusher task
//!                                                                         │
//!      per (tenant, day): sort, encode Parquet, create-only put ◄─────────┘
//!      then commit manifest (create-only) naming the files and the WAL range
//!      then release the WAL through that range
//! ```
//!
//! Guarantees:
//! - `append` returns only when the records are durable in the WAL (per the WAL's durability
//!   mode). From then on they are never lost: a crash at any point replays the WAL entries after
//!   the last committed range.
//! - Exactly once in what queries see: files become visible only through a commit, a commit
//!   covers a WAL range, and replay starts after the last committed range. File names are
//!   derived from the WAL range, so a replayed flush rewrites the same names; an orphan left by
//!   a crash before its commit is simply replaced.
//! - Object store down: flushes retry with capped exponential backoff; appends keep going to the
//!   WAL until its disk budget, then fail with [`Error::Backpressure`] (retry later); nothing is
//!   dropped, and the backlog drains when the store returns.
//! - Bounded memory: while a flush is running (slower than the ingest rate, or retrying an
//!   object store that is down), the next buffer fills up to the flush thresholds; entries
//!   acknowledged past them are *spilled*: the buffer keeps only their WAL seqs and drops their
//!   records. Later flushes read them back from the WAL ([`Wal::read_range`]) one buffer's worth
//!   at a time, oldest first, so each commit still covers one WAL range. Replay after a restart
//!   spills the same way. Memory is bounded by the thresholds, the WAL by its budget.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use genai_audit_core::rows::batch_to_records;
use genai_audit_core::{AuditRecord, CorrelatedContent, Normalizer, records_to_batch};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::buffer::{
    Buffer, KeyColumns, Position, RecentIds, deduplicate, encode_rows, plan_files, take_rows,
};
use crate::commit::{MULTIPART_THRESHOLD, file_entry, put_replacing_orphan};
use crate::error::{Error, Result};
use crate::flush_thread::FlushThread;
use crate::layout::{flush_file_name, partition_dir, valid_collector_id};
use crate::location::StoreLocation;
use crate::manifest::{Commit, FileEntry, MANIFEST_VERSION, Snapshot, write_commit};
use crate::parquet_file::{EncodedFile, ParquetOptions};
use crate::wal::{AppendHandle, Durability, SeqRange, Wal, WalEntry, WalOptions};

/// When the buffer is written out as Parquet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Flush when this many records are buffered.
    pub max_rows: usize,
    /// Flush when the buffered records take this much memory (their Arrow arrays, exactly).
    ///
    /// A flush holds the taken buffer and the encoded files while the next buffer fills, up to
    /// this (past it, while the flush runs, entries are spilled to the WAL), so the process
    /// needs up to about twice this plus the encoding's, the requests' and the allocator's own.
    pub max_bytes: usize,
    /// Flush records at the latest this long after the oldest arrived.
    pub max_age: Duration,
    /// At most this many rows per Parquet file (larger partitions are split).
    pub max_file_rows: usize,
}

/// Default of [`FlushPolicy::max_bytes`]: keeps the collector's peak memory under 256 MiB at
/// sustained load (docs/operations.md, "Sizing").
pub const DEFAULT_MAX_BYTES: usize = 48 * 1024 * 1024;

impl Default for FlushPolicy {
    fn default() -> Self {
        Self {
            max_rows: 500_000,
            max_bytes: DEFAULT_MAX_BYTES,
            max_age: Duration::from_secs(60),
            max_file_rows: 1_000_000,
        }
    }
}

/// Told, at a flush, about the records that log-borne content completed: each as it was
/// acknowledged and as it is written (e.g. to run alert rules that depend on the content).
/// Called on the flush's blocking thread: return quickly.
pub trait MergeObserver: Send + Sync {
    /// The records before the content was merged (`before`) and after (`after`, same order).
    fn merged(&self, before: &[AuditRecord], after: &[AuditRecord]);
}

/// Settings of a [`Writer`].
#[derive(Clone)]
pub struct WriterConfig {
    /// Id of this collector: unique among the collectors writing to one store.
    pub collector_id: String,
    /// Directory of the write-ahead log.
    pub wal_dir: PathBuf,
    /// WAL durability (fsync before acknowledging, by default).
    pub durability: Durability,
    /// WAL disk budget in bytes; past it, appends fail with backpressure.
    pub wal_max_bytes: u64,
    /// Flush thresholds.
    pub flush: FlushPolicy,
    /// Parquet tuning.
    pub parquet: ParquetOptions,
    /// Objects larger than this are uploaded in parts.
    pub multipart_threshold: usize,
    /// Longest pause between retries of a failing object store.
    pub max_retry_backoff: Duration,
    /// Folds log-borne content into records at flush (classification and retention rules come
    /// from it). Needed only for [`Writer::append_contents`].
    pub normalizer: Option<Normalizer>,
    /// Told about the records log-borne content completed at each flush.
    pub merge_observer: Option<Arc<dyn MergeObserver>>,
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("collector_id", &self.collector_id)
            .field("wal_dir", &self.wal_dir)
            .field("durability", &self.durability)
            .field("wal_max_bytes", &self.wal_max_bytes)
            .field("flush", &self.flush)
            .field("parquet", &self.parquet)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("max_retry_backoff", &self.max_retry_backoff)
            .field("normalizer", &self.normalizer.is_some())
            .field("merge_observer", &self.merge_observer.is_some())
            .finish()
    }
}

impl WriterConfig {
    /// Defaults for `collector_id` with its WAL in `wal_dir`.
    pub fn new(collector_id: &str, wal_dir: impl Into<PathBuf>) -> Self {
        Self {
            collector_id: collector_id.to_owned(),
            wal_dir: wal_dir.into(),
            durability: Durability::Fsync,
            wal_max_bytes: 1024 * 1024 * 1024,
            flush: FlushPolicy::default(),
            parquet: ParquetOptions::default(),
            multipart_threshold: MULTIPART_THRESHOLD,
            max_retry_backoff: Duration::from_secs(30),
            normalizer: None,
            merge_observer: None,
        }
    }
}

/// What opening the writer found and replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// WAL entries replayed (acknowledged before a crash, not yet committed).
    pub replayed_entries: u64,
    /// Records of the entries replayed into memory (entries past the flush thresholds stay in
    /// the WAL until flushes read them back).
    pub replayed_records: u64,
    /// WAL entries found already committed (released now).
    pub skipped_committed: u64,
    /// Commits this collector had made before.
    pub previous_commits: u64,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records appended (acknowledged).
    pub records_appended: AtomicU64,
    /// Records written to committed Parquet files.
    pub records_written: AtomicU64,
    /// Parquet bytes written.
    pub bytes_written: AtomicU64,
    /// Files committed.
    pub files_committed: AtomicU64,
    /// Commits made.
    pub commits: AtomicU64,
    /// Object store errors (each retried).
    pub store_errors: AtomicU64,
    /// Log-borne contents whose span never arrived within the waiting window.
    pub contents_unmatched: AtomicU64,
    /// Duplicate records dropped (a `record_id` already in this flush or a recent one).
    pub duplicates_dropped: AtomicU64,
    /// WAL entries spilled: acknowledged while the buffer was full and a flush running, kept
    /// only in the WAL.
    pub entries_spilled: AtomicU64,
    /// Spilled WAL entries read back by a flush.
    pub entries_read_back: AtomicU64,
    /// How long flushes took (encode, upload, commit), seconds.
    pub flush_seconds: Histogram,
}

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0];

/// A fixed-bucket latency histogram (Prometheus style: cumulative when rendered).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Renders the histogram in the Prometheus text format under `name`.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Outcome of one flush.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Records written.
    pub records: u64,
    /// Files committed.
    pub files: Vec<FileEntry>,
    /// Commit number (0 when there was nothing to flush).
    pub commit: u64,
}

/// What one WAL entry holds, as the buffer keeps it.
enum Payload {
    /// Audit records (one OTLP traces request's worth), as Arrow columns.
    Records(RecordBatch),
    /// Content from OTLP log records, waiting for its span's record.
    Contents(Vec<PendingContent>),
    /// Records appended while the buffer spills: only in the WAL (`rows` of them).
    Spilled { rows: u64 },
}

/// Log-borne content and how many flushes it has already waited through.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingContent {
    pub(crate) content: CorrelatedContent,
    flushes: u8,
}

/// Flushes a content may wait for its span (logs and spans are exported separately, so one may
/// land just after a flush boundary); then it is counted as unmatched and dropped.
const CONTENT_MAX_FLUSHES: u8 = 3;

struct Pending {
    ack: AppendHandle,
    payload: Payload,
    reply: oneshot::Sender<Result<u64>>,
}

struct Inner {
    cfg: WriterConfig,
    loc: StoreLocation,
    wal: Wal,
    /// Appends enqueue into the WAL and into `pending` under this lock, so both orders agree.
    enqueue: Mutex<mpsc::UnboundedSender<Pending>>,
    buffer: Mutex<Buffer>,
    /// Set while a flush holds a buffer (and after a failed flush): a full buffer cannot be
    /// taken then, so further entries are spilled.
    flushing: AtomicBool,
    /// Mirrors `buffer.spilled.is_some()`, read without the lock by appends.
    spilling: AtomicBool,
    flush_wanted: Notify,
    flush_thread: FlushThread,
    /// Serializes flushes (the background task, explicit `flush`, shutdown).
    flush_lock: tokio::sync::Mutex<FlushState>,
    stats: WriterStats,
    recent: Mutex<RecentIds>,
    /// Set when a flush failed in a way retrying cannot fix (a bug, a commit conflict): no
    /// further flush runs, so nothing more is released from the WAL; a restart replays it.
    failed: Mutex<Option<String>>,
}

struct FlushState {
    next_commit: u64,
}

/// The write path. Cheap to clone; all clones share one WAL and buffer.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("collector_id", &self.inner.cfg.collector_id)
            .field("store", &self.inner.loc)
            .finish()
    }
}

impl Writer {
    /// Opens the WAL, replays what was acknowledged but not committed, and starts the
    /// committer and flusher tasks. Must be called inside a tokio runtime.
    pub async fn open(loc: StoreLocation, cfg: WriterConfig) -> Result<(Self, OpenReport)> {
        if !valid_collector_id(&cfg.collector_id) {
            return Err(Error::InvalidArgument(format!(
                "collector id {:?} must be 1-64 characters of A-Z a-z 0-9 . _ -",
                cfg.collector_id
            )));
        }
        let snapshot = Snapshot::load(&loc).await?;
        let mine = snapshot
            .collectors
            .get(&cfg.collector_id)
            .copied()
            .unwrap_or_default();
        let mut report = OpenReport {
            previous_commits: mine.last_commit,
            ..OpenReport::default()
        };
        let opts = WalOptions {
            durability: cfg.durability,
            max_wal_bytes: cfg.wal_max_bytes,
            min_next_seq: mine.last_wal.map_or(1, |s| s + 1),
            ..WalOptions::default()
        };
        let (wal, replay) = Wal::open(&cfg.wal_dir, opts)?;
        let mut buffer = Buffer::default();
        let mut spilled = 0;
        for entry in replay {
            let entry = entry?;
            if mine.last_wal.is_some_and(|last| entry.seq <= last) {
                report.skipped_committed += 1;
                continue;
            }
            report.replayed_entries += 1;
            // A backlog larger than one buffer (e.g. after an object store outage) stays in
            // the WAL; the flushes read it back one buffer at a time.
            if buffer.spilled.is_some() || !buffer.has_room(&cfg.flush) {
                buffer.spill(entry.seq);
                spilled += 1;
                continue;
            }
            report.replayed_records += push_entry(&mut buffer, &cfg.wal_dir, entry)?;
        }
        if let Some(last) = mine.last_wal {
            wal.truncate_through(last).await?;
        }
        if report.replayed_entries > 0 {
            tracing::info!(
                entries = report.replayed_entries,
                records = report.replayed_records,
                left_in_wal = spilled,
                "replayed acknowledged records from the write-ahead log"
            );
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let spilling = AtomicBool::new(buffer.spilled.is_some());
        let inner = Arc::new(Inner {
            cfg,
            loc,
            wal,
            enqueue: Mutex::new(tx),
            buffer: Mutex::new(buffer),
            flushing: AtomicBool::new(false),
            spilling,
            flush_wanted: Notify::new(),
            flush_thread: FlushThread::start()?,
            flush_lock: tokio::sync::Mutex::new(FlushState {
                next_commit: mine.last_commit + 1,
            }),
            stats: WriterStats {
                entries_spilled: AtomicU64::new(spilled),
                ..WriterStats::default()
            },
            recent: Mutex::new(RecentIds::default()),
            failed: Mutex::new(None),
        });
        let committer = tokio::spawn(committer(inner.clone(), rx));
        let flusher = tokio::spawn(flusher(inner.clone()));
        let writer = Writer {
            inner,
            tasks: Arc::new(Mutex::new(vec![committer, flusher])),
        };
        Ok((writer, report))
    }

    /// Appends records; resolves when they are durable in the WAL (acknowledge then).
    /// Fails with [`Error::Backpressure`] when the WAL is at its budget: retry later.
    pub async fn append(&self, records: Vec<AuditRecord>) -> Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        // Both conversions here, on the caller's task: they spread over the runtime's workers
        // rather than queueing in the one committer task, and the records' many small strings
        // are freed before the WAL's fsync is awaited.
        let wal = postcard::to_io(&records, vec![TAG_RECORDS]).map_err(codec)?;
        // While the buffer spills, this entry would be spilled too: don't convert it.
        let payload = if self.inner.spilling.load(Ordering::Acquire) {
            Payload::Spilled {
                rows: records.len() as u64,
            }
        } else {
            Payload::Records(records_to_batch(&records)?)
        };
        drop(records);
        enqueue(&self.inner, wal, payload, false)?
            .await
            .map_err(|_| Error::WalClosed)?
    }

    /// Appends content extracted from OTLP log records (same durability as [`Writer::append`]).
    /// At the next flush it is folded into the records of its spans (hashes, PII flags,
    /// classification); content whose span has not arrived waits up to a few flushes.
    /// Requires [`WriterConfig::normalizer`].
    pub async fn append_contents(&self, contents: Vec<CorrelatedContent>) -> Result<u64> {
        if contents.is_empty() {
            return Ok(0);
        }
        if self.inner.cfg.normalizer.is_none() {
            return Err(Error::InvalidArgument(
                "log-borne content needs WriterConfig::normalizer to be merged".into(),
            ));
        }
        let pending: Vec<PendingContent> = contents
            .into_iter()
            .map(|content| PendingContent {
                content,
                flushes: 0,
            })
            .collect();
        let wal = postcard::to_io(&pending, vec![TAG_CONTENTS]).map_err(codec)?;
        enqueue(&self.inner, wal, Payload::Contents(pending), false)?
            .await
            .map_err(|_| Error::WalClosed)?
    }

    /// Writes everything buffered now, regardless of thresholds (spilled entries too, in as
    /// many commits as their size needs).
    pub async fn flush(&self) -> Result<FlushReport> {
        flush_now(&self.inner).await
    }

    /// Flushes everything and stops the background tasks. Appends after this fail.
    pub async fn shutdown(&self) -> Result<FlushReport> {
        self.shutdown_within(Duration::MAX).await
    }

    /// Like [`Writer::shutdown`], giving up on the final flush after `deadline` (e.g. the
    /// object store is down at SIGTERM). Nothing is lost either way: what was not committed
    /// stays in the WAL and is replayed at the next start. Releases the WAL directory.
    pub async fn shutdown_within(&self, deadline: Duration) -> Result<FlushReport> {
        let flushed = match tokio::time::timeout(deadline, flush_now(&self.inner)).await {
            Ok(r) => r,
            Err(_) => Err(Error::ShutdownTimeout { after: deadline }),
        };
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for t in tasks {
            t.abort();
        }
        self.inner.wal.close().await?;
        flushed
    }

    /// Why flushing stopped, if it did (see [`Error::WriterFailed`]).
    pub fn failure(&self) -> Option<String> {
        self.inner.failed.lock().ok().and_then(|f| f.clone())
    }

    /// Counters.
    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Bytes currently held by the WAL.
    pub fn wal_bytes(&self) -> u64 {
        self.inner.wal.wal_bytes()
    }

    /// Records waiting in the buffer.
    pub fn buffered_rows(&self) -> usize {
        self.inner.buffer.lock().map(|b| b.rows).unwrap_or(0)
    }

    /// Memory the buffered records (and contents) take, bytes: what `flush.max_bytes` bounds.
    pub fn buffered_bytes(&self) -> usize {
        self.inner.buffer.lock().map(|b| b.bytes).unwrap_or(0)
    }

    /// The store this writer writes to.
    pub fn location(&self) -> &StoreLocation {
        &self.inner.loc
    }
}

/// Puts an entry into the WAL (`wal`: its encoded bytes) and the committer's queue (`payload`:
/// what the buffer keeps of it) under one lock, so the queue is in WAL order. Returns the
/// receiver of the caller's acknowledgement.
///
/// `exempt`: bypass the WAL's disk budget (carried content re-appended during a flush must not
/// be refused, or it would be released with the entries it came from).
fn enqueue(
    inner: &Arc<Inner>,
    wal: Vec<u8>,
    payload: Payload,
    exempt: bool,
) -> Result<oneshot::Receiver<Result<u64>>> {
    let (reply, done) = oneshot::channel();
    let tx = inner.enqueue.lock().map_err(|_| Error::WalClosed)?;
    let ack = if exempt {
        inner.wal.append_exempt(wal)?
    } else {
        inner.wal.append(wal)?
    };
    tx.send(Pending {
        ack,
        payload,
        reply,
    })
    .map_err(|_| Error::WalClosed)?;
    Ok(done)
}

/// Awaits WAL acknowledgements in WAL order and moves the records into the buffer before
/// answering the caller: the buffer always holds a gap-free prefix of acknowledged entries.
async fn committer(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(p) = rx.recv().await {
        let result = match p.ack.await {
            Ok(seq) => {
                let n = match &p.payload {
                    Payload::Records(r) => r.num_rows() as u64,
                    Payload::Contents(_) => 0,
                    Payload::Spilled { rows } => *rows,
                };
                let due = match inner.buffer.lock() {
                    Ok(mut b) => {
                        // A full buffer that no flush can take now: keep the entry in the WAL
                        // only (a flush reads it back), so memory stays bounded.
                        let full =
                            !b.has_room(&inner.cfg.flush) && inner.flushing.load(Ordering::Acquire);
                        match p.payload {
                            Payload::Records(batch) if b.spilled.is_none() && !full => {
                                b.push_rows(seq, batch);
                            }
                            Payload::Contents(contents) if b.spilled.is_none() && !full => {
                                b.push_contents(seq, contents);
                            }
                            // Also an entry appended unconverted while the buffer spilled, even
                            // if it no longer does: it is in the WAL, a flush reads it back.
                            _ => {
                                b.spill(seq);
                                inner.stats.entries_spilled.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        inner.spilling.store(b.spilled.is_some(), Ordering::Release);
                        b.due(&inner.cfg.flush)
                    }
                    Err(_) => false,
                };
                inner.stats.records_appended.fetch_add(n, Ordering::Relaxed);
                if due {
                    inner.flush_wanted.notify_one();
                }
                Ok(seq)
            }
            Err(e) => Err(e),
        };
        // The caller may have gone away (client disconnected): the records are durable anyway.
        let _ = p.reply.send(result);
    }
}

async fn flusher(inner: Arc<Inner>) {
    let tick =
        (inner.cfg.flush.max_age / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut again = false;
    loop {
        // Right after a flush that left a due buffer (spilled entries), go on at once.
        if !again {
            tokio::select! {
                _ = inner.flush_wanted.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
        again = false;
        let due = |inner: &Inner| {
            inner
                .buffer
                .lock()
                .map(|b| b.due(&inner.cfg.flush))
                .unwrap_or(false)
        };
        // After a failure flush_once has logged it once; the WAL keeps everything until restart.
        let failed = inner.failed.lock().map_or(true, |f| f.is_some());
        if due(&inner) && !failed {
            again = flush_once(&inner).await.is_ok() && due(&inner);
        }
    }
}

/// Flushes until everything buffered (in memory or spilled) when called is committed.
async fn flush_now(inner: &Arc<Inner>) -> Result<FlushReport> {
    let target = {
        let b = inner.buffer.lock().map_err(|_| Error::WalClosed)?;
        b.spilled.or(b.range).map(|(_, last)| last)
    };
    let mut total = FlushReport::default();
    // At least one flush, even with nothing buffered: it waits for a flush already running
    // (it holds the flush lock and the entries it took), so that everything acknowledged
    // before this call is committed when it returns.
    loop {
        let (report, through) = flush_once(inner).await?;
        total.records += report.records;
        total.files.extend(report.files);
        total.commit = total.commit.max(report.commit);
        match (target, through) {
            (Some(target), Some(through)) if through < target => {}
            _ => break,
        }
    }
    Ok(total)
}

/// One flush: the buffer in memory, or else the next buffer's worth of spilled entries.
/// Returns the last WAL seq it committed.
async fn flush_once(inner: &Arc<Inner>) -> Result<(FlushReport, Option<u64>)> {
    if let Some(reason) = inner.failed.lock().ok().and_then(|f| f.clone()) {
        return Err(Error::WriterFailed { reason });
    }
    let started = Instant::now();
    let result = flush_inner(inner).await;
    if result.as_ref().is_ok_and(|(r, _)| r.commit > 0) {
        inner.stats.flush_seconds.observe(started.elapsed());
    }
    if let Err(e) = &result {
        // Whatever was taken from the buffer is still in the WAL; flushing later entries would
        // release it. Stop flushing: appends go on until the WAL budget, a restart replays.
        tracing::error!(error = %e, "flush failed; no more flushes until restart (the WAL keeps everything)");
        if let Ok(mut f) = inner.failed.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
    }
    result
}

async fn flush_inner(inner: &Arc<Inner>) -> Result<(FlushReport, Option<u64>)> {
    let mut state = inner.flush_lock.lock().await;
    let (taken, spilled) = {
        let mut b = inner.buffer.lock().map_err(|_| Error::WalClosed)?;
        if b.range.is_none() && b.spilled.is_none() {
            return Ok((FlushReport::default(), None));
        }
        // Cleared only by a successful flush: after a failure, entries keep being spilled.
        inner.flushing.store(true, Ordering::Release);
        (b.take_memory(), b.spilled)
    };
    // Reading spilled entries back, deduplicating, sorting and encoding take a CPU for up to
    // seconds at the default flush size: on the flush thread, so that the runtime's workers
    // keep acknowledging requests.
    let cpu_inner = Arc::clone(inner);
    let prepared = inner
        .flush_thread
        .run(move || {
            let taken = match (taken.range, spilled) {
                (None, Some(spilled)) => read_back(&cpu_inner, spilled)?,
                _ => taken,
            };
            let Some((first, last)) = taken.range else {
                return Ok(None);
            };
            let bytes = taken.bytes;
            prepare_flush(&cpu_inner, taken, first, last).map(|p| Some((p, first, last, bytes)))
        })
        .await?;
    let Some((prepared, first, last, buffered_bytes)) = prepared else {
        return Ok((FlushReport::default(), None));
    };
    let PreparedFlush {
        encoded,
        carried,
        seen,
    } = prepared;

    let mut files = Vec::with_capacity(encoded.len());
    for (key, tenant, day, file) in encoded {
        put_file(inner, &key, &file).await?;
        if files.is_empty() {
            crate::failpoint::hit("flush:after_first_file");
        }
        files.push(file_entry(key, &tenant, day, &file));
    }
    crate::failpoint::hit("flush:after_files");
    let cfg = &inner.cfg;
    let commit = Commit {
        version: MANIFEST_VERSION,
        collector_id: cfg.collector_id.clone(),
        commit: state.next_commit,
        kind: "flush".into(),
        wal_first: Some(first),
        wal_last: Some(last),
        added: files.clone(),
        removed: Vec::new(),
        reason: None,
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    retry(inner, "commit", || write_commit(&inner.loc, &commit)).await?;
    state.next_commit += 1;
    crate::failpoint::hit("flush:after_commit");
    if !carried.is_empty() {
        // Re-appended before the old entries are released, so the content stays durable.
        let wal = postcard::to_io(&carried, vec![TAG_CONTENTS]).map_err(codec)?;
        enqueue(inner, wal, Payload::Contents(carried), true)?
            .await
            .map_err(|_| Error::WalClosed)??;
    }
    inner.wal.truncate_through(last).await?;
    if let Ok(mut recent) = inner.recent.lock() {
        recent.push(seen);
    }
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let s = &inner.stats;
    s.records_written.fetch_add(rows, Ordering::Relaxed);
    s.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    s.files_committed
        .fetch_add(files.len() as u64, Ordering::Relaxed);
    s.commits.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        commit = commit.commit,
        files = files.len(),
        rows,
        bytes,
        buffered_bytes,
        wal_first = first,
        wal_last = last,
        "committed"
    );
    inner.flushing.store(false, Ordering::Release);
    let report = FlushReport {
        records: rows,
        files,
        commit: commit.commit,
    };
    Ok((report, Some(last)))
}

/// Reads the oldest spilled entries back from the WAL, up to the flush thresholds, into a
/// buffer of their own, and takes them off the spilled range. Blocking (file reads, decoding).
fn read_back(inner: &Inner, (first, last): (u64, u64)) -> Result<Buffer> {
    let mut buffer = Buffer::default();
    for entry in inner.wal.read_range(SeqRange { first, last })? {
        push_entry(&mut buffer, &inner.cfg.wal_dir, entry?)?;
        inner
            .stats
            .entries_read_back
            .fetch_add(1, Ordering::Relaxed);
        if !buffer.has_room(&inner.cfg.flush) {
            break;
        }
    }
    let through = buffer.range.map_or(last, |(_, last)| last);
    let mut b = inner.buffer.lock().map_err(|_| Error::WalClosed)?;
    // Entries spilled meanwhile extended the range; the ones read back leave it.
    b.spilled = b
        .spilled
        .and_then(|(_, last)| (last > through).then_some((through + 1, last)));
    inner.spilling.store(b.spilled.is_some(), Ordering::Release);
    drop(b);
    Ok(buffer)
}

/// Decodes one WAL entry into `buffer`; returns the records it held.
fn push_entry(buffer: &mut Buffer, wal_dir: &std::path::Path, entry: WalEntry) -> Result<u64> {
    let payload = decode_payload(&entry.payload).map_err(|reason| Error::WalCorrupt {
        path: wal_dir.to_path_buf(),
        offset: 0,
        reason: format!("entry {} does not decode: {reason}", entry.seq),
    })?;
    Ok(match payload {
        WalPayload::Records(records) => {
            buffer.push_rows(entry.seq, records_to_batch(&records)?);
            records.len() as u64
        }
        WalPayload::Contents(contents) => {
            buffer.push_contents(entry.seq, contents);
            0
        }
    })
}

/// A flush's files, encoded, with what the flush leaves behind.
struct PreparedFlush {
    /// (object key, tenant, day, file), in commit order.
    encoded: Vec<(String, Arc<str>, chrono::NaiveDate, EncodedFile)>,
    /// Log-borne content still waiting for its span.
    carried: Vec<PendingContent>,
    /// The record ids of this flush (duplicate detection of the next ones).
    seen: std::collections::HashSet<(Arc<str>, u128)>,
}

/// The CPU part of a flush (run on a blocking thread): drops duplicates, folds log-borne
/// content into its spans, splits by partition, sorts and encodes every file.
fn prepare_flush(
    inner: &Arc<Inner>,
    taken: Buffer,
    first: u64,
    last: u64,
) -> Result<PreparedFlush> {
    let (mut batches, contents) = taken.into_batches();
    // Drop duplicates (a span delivered twice, in this flush or a recent one).
    let keys = KeyColumns::of(&batches)?;
    let dedup = {
        let recent = inner.recent.lock().map_err(|_| Error::WalClosed)?;
        deduplicate(&keys, &recent)
    };
    let mut kept = dedup.kept;
    // Fold log-borne content into its spans' records; keep the rest waiting.
    let (merged, carried) = merge_contents(inner, &batches, &keys, &kept, contents)?;
    drop(keys);
    if let Some((batch, rows)) = merged {
        // The changed rows replace the originals: they are read from a batch of their own.
        let b = batches.len();
        for (n, j) in rows.into_iter().enumerate() {
            kept[j] = (b, n);
        }
        batches.push(batch);
    }
    inner
        .stats
        .duplicates_dropped
        .fetch_add(dedup.dropped, Ordering::Relaxed);

    let cfg = &inner.cfg;
    let plan = plan_files(&KeyColumns::of(&batches)?, kept, cfg.flush.max_file_rows);
    let origin = format!("wal:{first}-{last}");
    let mut encoded = Vec::with_capacity(plan.len());
    for rows in plan {
        let file = encode_rows(&batches, &rows, &cfg.collector_id, &origin, &cfg.parquet)?;
        let key = format!(
            "{}/{}",
            partition_dir(&rows.tenant, rows.day),
            flush_file_name(&cfg.collector_id, first, last, rows.part)
        );
        encoded.push((key, rows.tenant, rows.day, file));
    }
    Ok(PreparedFlush {
        encoded,
        carried,
        seen: dedup.seen,
    })
}

/// Writes one file, retrying until it succeeds.
async fn put_file(inner: &Arc<Inner>, key: &str, file: &EncodedFile) -> Result<()> {
    retry(inner, "put", || {
        put_replacing_orphan(&inner.loc, key, file, inner.cfg.multipart_threshold)
    })
    .await
}

/// Retries `f` while it fails with a transient (object store) error, with capped exponential
/// backoff; any other error is returned.
async fn retry<T, F, Fut>(inner: &Arc<Inner>, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e @ Error::ObjectStore { .. }) => {
                inner.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, op = what, retry_in = ?backoff, "object store error; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(inner.cfg.max_retry_backoff);
            }
            Err(e) => return Err(e),
        }
    }
}

/// WAL payload tags: a byte, then postcard (of `Vec<AuditRecord>` or `Vec<PendingContent>`).
const TAG_RECORDS: u8 = 1;
const TAG_CONTENTS: u8 = 2;

fn codec(e: postcard::Error) -> Error {
    Error::Codec(e.to_string())
}

/// What one WAL entry holds, as written.
enum WalPayload {
    Records(Vec<AuditRecord>),
    Contents(Vec<PendingContent>),
}

fn decode_payload(bytes: &[u8]) -> std::result::Result<WalPayload, String> {
    match bytes.split_first() {
        Some((&TAG_RECORDS, rest)) => postcard::from_bytes(rest)
            .map(WalPayload::Records)
            .map_err(|e| e.to_string()),
        Some((&TAG_CONTENTS, rest)) => postcard::from_bytes(rest)
            .map(WalPayload::Contents)
            .map_err(|e| e.to_string()),
        Some((tag, _)) => Err(format!("unknown payload tag {tag}")),
        None => Err("empty payload".into()),
    }
}

/// Rows changed by log-borne content: a batch of them, and for each its index in `kept`.
type MergedRows = Option<(RecordBatch, Vec<usize>)>;

/// Merges contents into the kept rows they belong to. Content is rare: only the matching rows
/// are turned back into records, changed by the normalizer and converted again. Returns the
/// changed rows and the contents still waiting for their span (aged by one flush); contents
/// past [`CONTENT_MAX_FLUSHES`] are counted and dropped.
fn merge_contents(
    inner: &Arc<Inner>,
    batches: &[RecordBatch],
    keys: &[KeyColumns<'_>],
    kept: &[Position],
    contents: Vec<PendingContent>,
) -> Result<(MergedRows, Vec<PendingContent>)> {
    let Some(normalizer) = &inner.cfg.normalizer else {
        // Only reachable when a WAL holding content is replayed without a normalizer.
        if !contents.is_empty() {
            tracing::warn!(
                count = contents.len(),
                "log-borne content in the WAL but no normalizer to merge it; dropped"
            );
            inner
                .stats
                .contents_unmatched
                .fetch_add(contents.len() as u64, Ordering::Relaxed);
        }
        return Ok((None, Vec::new()));
    };
    if contents.is_empty() {
        return Ok((None, Vec::new()));
    }
    // The kept rows some content names (ids are unique among kept rows, so one row per span).
    let hits: Vec<usize> = {
        let wanted: std::collections::HashSet<(&str, &str, &str)> = contents
            .iter()
            .map(|p| {
                let c = &p.content;
                (&*c.tenant, c.trace_id.as_str(), c.span_id.as_str())
            })
            .collect();
        kept.iter()
            .enumerate()
            .filter(|(_, (b, i))| {
                let k = &keys[*b];
                wanted.contains(&(
                    k.tenant.value(*i),
                    k.trace_id.value(*i),
                    k.span_id.value(*i),
                ))
            })
            .map(|(j, _)| j)
            .collect()
    };
    let mut records = if hits.is_empty() {
        Vec::new()
    } else {
        let positions: Vec<Position> = hits.iter().map(|&j| kept[j]).collect();
        batch_to_records(&take_rows(batches, &positions)?)?
    };
    let key = |c: &CorrelatedContent| (c.tenant.clone(), c.trace_id.clone(), c.span_id.clone());
    // Several contents of one span share the youngest age: none is dropped early.
    let mut ages: std::collections::HashMap<_, u8> = std::collections::HashMap::new();
    for p in &contents {
        let age = ages.entry(key(&p.content)).or_insert(p.flushes);
        *age = (*age).min(p.flushes);
    }
    let before = inner.cfg.merge_observer.as_ref().map(|_| records.clone());
    let unmatched = normalizer.merge_contents(
        &mut records,
        contents.into_iter().map(|p| p.content).collect(),
    );
    if let (Some(observer), Some(before)) = (&inner.cfg.merge_observer, before)
        && !records.is_empty()
    {
        observer.merged(&before, &records);
    }
    let mut carried = Vec::new();
    for content in unmatched {
        let flushes = ages.get(&key(&content)).copied().unwrap_or(0) + 1;
        if flushes < CONTENT_MAX_FLUSHES {
            carried.push(PendingContent { content, flushes });
        } else {
            inner
                .stats
                .contents_unmatched
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                trace_id = %content.trace_id,
                span_id = %content.span_id,
                "log-borne content never met its span; dropped"
            );
        }
    }
    let merged = if hits.is_empty() {
        None
    } else {
        Some((records_to_batch(&records)?, hits))
    };
    Ok((merged, carried))
}
