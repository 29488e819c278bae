//! The write-ahead log: every record is appended here, and acknowledged, before anything else
//! happens to it.
//!
//! Payloads are opaque bytes (the caller serializes its records). Each appended entry gets a
//! sequence number (`seq`) that only ever grows, also across restarts. A caller that has made
//! entries durable elsewhere (written them to the table store) says so with
//! [`Wal::truncate_through`], and the log deletes the segments that only hold such entries.
//!
//! # Guarantees
//!
//! An append is *acknowledged* when its [`AppendHandle`] resolves to `Ok(seq)`. What an
//! acknowledgement promises depends on [`Durability`]:
//!
//! | mode | acknowledged after | survives a process crash | survives power loss / kernel crash |
//! | --- | --- | --- | --- |
//! | [`Durability::Fsync`] (default) | `write(2)` and `fdatasync(2)` of the segment | yes | yes |
//! | [`Durability::Os`] | `write(2)` only | yes (it is in the page cache) | **no**: what the kernel had not yet written back is lost |
//!
//! In both modes, for every acknowledged entry:
//!
//! - **never lost**: [`Wal::open`] replays it, with exactly the acknowledged bytes, until the caller
//!   releases it with [`Wal::truncate_through`];
//! - **never duplicated**: it is replayed once, under its one `seq`; seqs never repeat, not even
//!   after every segment was released (the empty active segment's name, or
//!   [`WalOptions::min_next_seq`], carries the counter across restarts).
//!
//! An append that returned an error was *not* acknowledged and the caller should treat it as
//! failed. An append that was never acknowledged because the process died (or that failed on a
//! failing `fsync`) may or may not be replayed: a caller that retries such a record must tolerate
//! seeing it twice (higher layers deduplicate by record id).
//!
//! **Group commit.** One writer thread owns the files. It takes every append queued while it was
//! busy, writes them with one `write(2)`, calls `fdatasync` once, then acknowledges them all, so
//! many concurrent appenders share one flush. Callers never block the async runtime: [`Wal::append`]
//! only reserves budget and enqueues, and the returned handle is a future (or
//! [`AppendHandle::wait`] for synchronous code).
//!
//! **Disk budget.** Bytes on disk plus bytes queued may not exceed [`WalOptions::max_wal_bytes`]:
//! an append that would exceed it fails at once with [`Error::Backpressure`] (not fatal: back off
//! and retry; space comes back when the caller releases flushed entries).
//!
//! **Write errors.** When a write fails (disk full: `StorageFull`, or any other error) the entries
//! of that group are refused with [`Error::WalIo`], the segment is truncated back to its last good
//! offset, and the log goes on: a later append may succeed once space is freed. A failed `fsync`
//! cannot be retried safely (the kernel may have dropped the dirty pages), so after one the log
//! refuses every write with [`Error::WalFailed`] until it is reopened; reopening runs recovery on
//! what really is on disk.
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/
//!   wal.lock                         advisory lock: one writer per directory
//!   wal-00000000000000000001.log     sealed segment (name = first seq it may hold, 20 digits)
//!   wal-00000000000000004711.log     sealed segment
//!   wal-00000000000000009377.log     active segment (appends go here)
//!
//! segment file:
//!   +----------+---------+----------+-----------+
//!   | GAWAL001 | version | reserved | first_seq |   header, 24 bytes
//!   | 8 bytes  | u32 LE  | u32 LE   | u64 LE    |
//!   +----------+---------+----------+-----------+
//!   | len u32 LE | crc32c u32 LE | seq u64 LE | payload (len bytes) |   entry 1
//!   | len u32 LE | crc32c u32 LE | seq u64 LE | payload (len bytes) |   entry 2
//!   | ...                                                            |
//!
//!   crc32c (Castagnoli) covers seq (8 bytes LE) followed by the payload.
//! ```
//!
//! Within the log, seqs strictly increase (gaps are allowed: a refused write burns its seqs). A new
//! segment is started when the active one would grow past [`WalOptions::segment_bytes`] (an entry
//! larger than that gets a segment of its own). Segments are created complete: the header is
//! written to `*.tmp`, synced, renamed into place, and the directory synced; deleting segments
//! also syncs the directory (in `Fsync` mode).
//!
//! # Recovery rules
//!
//! [`Wal::open`] reads every segment in seq order and verifies every entry (checksum, length,
//! seq order) before returning, then hands back a [`Replay`] that streams the entries from disk:
//!
//! 1. A damaged entry at the **tail of the last segment** (a torn or partial write, garbage or
//!    zeros after the last entry, a checksum mismatch in the final entries) that no valid entry
//!    follows is the trace of a write that was never acknowledged: it is truncated away (logged
//!    with `tracing::warn!` naming the file and the offset, counted in
//!    [`RecoveryReport::torn_tails`]), and the intact prefix is recovered.
//! 2. Damage **followed by a valid entry**, or in **any segment but the last**, may hold
//!    acknowledged data: opening fails with [`Error::WalCorrupt`] (file, offset, reason) and
//!    nothing is dropped. [`WalOptions::repair`] is the explicit escape hatch: it truncates the log
//!    at the first damaged entry (deleting any later segment), logs what it dropped at error level,
//!    and sets [`RecoveryReport::repaired`]; seqs still continue after the highest one seen.
//! 3. Leftover `*.tmp` files (a segment creation interrupted by a crash) are removed, and so is a
//!    last segment whose header is incomplete or all zeros (only possible in `Os` mode).
//!
//! After a power loss in the middle of an unacknowledged group, a file system may in principle
//! persist the group's pages out of order, leaving a hole followed by valid (unacknowledged)
//! entries; rule 2 then stops the open with [`Error::WalCorrupt`] rather than guess, and the
//! operator decides on `repair`.
//!
//! # Example
//!
//! ```
//! use genai_audit_store::wal::{Wal, WalOptions};
//!
//! # fn main() -> genai_audit_store::Result<()> {
//! # let tmp = tempfile::tempdir().map_err(|e| genai_audit_store::Error::InvalidArgument(e.to_string()))?;
//! # let dir = tmp.path();
//! let (wal, replay) = Wal::open(dir, WalOptions::default())?;
//! for entry in replay {
//!     let entry = entry?;
//!     // re-apply entry.payload, identified by entry.seq
//! #   let _ = entry;
//! }
//! let seq = wal.append_blocking(b"record".to_vec())?; // durable once this returns
//! // ... later, once everything through `seq` is committed to the table store:
//! wal.truncate_through_blocking(seq)?;
//! wal.close_blocking()?;
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Magic bytes opening every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"GAWAL001";
/// Segment format version written after the magic.
pub const SEGMENT_VERSION: u32 = 1;
/// Size of a segment header in bytes.
pub const SEGMENT_HEADER_LEN: u64 = 24;
/// Size of an entry's framing (length, checksum, seq) in bytes.
pub const ENTRY_HEADER_LEN: u64 = 16;

/// Name of the lock file in the log directory.
const LOCK_FILE: &str = "wal.lock";
/// A group stops draining the queue once it holds this many bytes (bounds latency and memory).
const MAX_GROUP_BYTES: usize = 8 << 20;
/// Seqs within this distance of the last good one are plausible when looking for valid entries
/// after damage (filters random bytes before the checksum is computed).
const PLAUSIBLE_SEQ_GAP: u64 = 1 << 32;

/// When an append is acknowledged, and so what survives what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge after `write(2)` and `fdatasync(2)` (one per group): acknowledged entries survive
    /// process crashes, kernel crashes and power loss.
    #[default]
    Fsync,
    /// Acknowledge after `write(2)`, without `fsync`: acknowledged entries survive a crash of this
    /// process (they are in the kernel's page cache) but entries not yet written back by the kernel
    /// are lost on power failure or kernel crash. Faster; directory syncs are skipped too.
    /// [`Wal::close`] still syncs everything.
    Os,
}

/// Options of [`Wal::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// When appends are acknowledged (default [`Durability::Fsync`]).
    pub durability: Durability,
    /// A new segment is started when the active one would grow past this (default 64 MiB).
    pub segment_bytes: u64,
    /// Disk budget: bytes on disk plus bytes queued; appends past it fail with
    /// [`Error::Backpressure`] (default 4 GiB).
    pub max_wal_bytes: u64,
    /// Largest payload accepted, in bytes (default 32 MiB; at most `u32::MAX`).
    pub max_entry_bytes: u64,
    /// The back-off suggested by [`Error::Backpressure`] (default 1 s).
    pub backpressure_retry_after: Duration,
    /// The first seq to use is at least this (default 1), e.g. one past the last seq a manifest
    /// says was committed, so seqs never repeat even if the log directory was emptied.
    pub min_next_seq: u64,
    /// Escape hatch for damaged logs: truncate at the first damaged entry instead of failing with
    /// [`Error::WalCorrupt`] (default false). Drops every entry after the damage.
    pub repair: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            segment_bytes: 64 << 20,
            max_wal_bytes: 4 << 30,
            max_entry_bytes: 32 << 20,
            backpressure_retry_after: Duration::from_secs(1),
            min_next_seq: 1,
            repair: false,
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<()> {
        if self.segment_bytes < SEGMENT_HEADER_LEN + ENTRY_HEADER_LEN {
            return Err(Error::InvalidArgument(format!(
                "wal segment_bytes must be at least {}, got {}",
                SEGMENT_HEADER_LEN + ENTRY_HEADER_LEN,
                self.segment_bytes
            )));
        }
        if self.max_wal_bytes == 0 {
            return Err(Error::InvalidArgument(
                "wal max_wal_bytes must be positive".into(),
            ));
        }
        if self.max_entry_bytes == 0 || self.max_entry_bytes > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument(format!(
                "wal max_entry_bytes must be in 1..={}, got {}",
                u32::MAX,
                self.max_entry_bytes
            )));
        }
        Ok(())
    }
}

/// An inclusive range of seqs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// The first seq in the range.
    pub first: u64,
    /// The last seq in the range (`>= first`).
    pub last: u64,
}

impl SeqRange {
    /// Number of seqs in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false: a range holds at least one seq (present for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `seq` is in the range.
    pub fn contains(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

/// One entry of the log, as replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEntry {
    /// The entry's seq.
    pub seq: u64,
    /// The payload, exactly as appended.
    pub payload: Vec<u8>,
}

/// What [`Wal::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log after recovery (including the active one).
    pub segments: usize,
    /// Entries recovered (what [`Replay`] yields).
    pub entries: u64,
    /// The seqs of the recovered entries, if any.
    pub range: Option<SeqRange>,
    /// Torn tails truncated (at most one per open: the tail of the last segment).
    pub torn_tails: u64,
    /// Bytes removed by truncating torn tails or repairing, including deleted segments.
    pub truncated_bytes: u64,
    /// Whether [`WalOptions::repair`] had to drop damaged data.
    pub repaired: bool,
    /// Leftover files removed (interrupted segment creations, torn segment headers).
    pub removed_files: usize,
    /// The seq the next append will get.
    pub next_seq: u64,
}

/// What [`Wal::truncate_through`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TruncateReport {
    /// Segment files deleted.
    pub segments_deleted: usize,
    /// Bytes freed (counted against the budget no more).
    pub bytes_freed: u64,
}

/// Counters of a running log, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes of all segment files (what counts against the budget, without queued appends).
    pub wal_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// The last acknowledged seq (or the last recovered one).
    pub last_seq: Option<u64>,
    /// Entries acknowledged since open.
    pub entries_appended: u64,
    /// Groups written (each one `write(2)` and, in `Fsync` mode, one `fdatasync`).
    pub group_commits: u64,
    /// `fsync`/`fdatasync` calls made on segments since open.
    pub fsyncs: u64,
}

/// State shared by the handle and the writer thread.
#[derive(Debug, Default)]
struct Shared {
    /// Bytes on disk plus bytes reserved by queued appends: what the budget is checked against.
    accounted: AtomicU64,
    /// Bytes of all segment files.
    disk: AtomicU64,
    segments: AtomicU64,
    /// Last acknowledged seq; 0 when none.
    last_seq: AtomicU64,
    entries: AtomicU64,
    groups: AtomicU64,
    fsyncs: AtomicU64,
    closed: AtomicBool,
    /// Set once when the writer stops accepting writes after an unrecoverable error.
    failed: OnceLock<String>,
    #[cfg(test)]
    faults: Faults,
}

/// Fault injection for tests.
#[cfg(test)]
#[derive(Debug, Default)]
struct Faults {
    /// The next group write writes half its bytes, then fails with `StorageFull`.
    fail_write: AtomicBool,
    /// The next `fdatasync` fails.
    fail_fsync: AtomicBool,
}

fn sub_saturating(a: &AtomicU64, n: u64) {
    let _ = a.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        Some(v.saturating_sub(n))
    });
}

type AppendReply = oneshot::Sender<Result<SeqRange>>;

enum Payloads {
    One(Vec<u8>),
    Many(Vec<Vec<u8>>),
}

enum Msg {
    Append {
        payloads: Payloads,
        bytes: u64,
        reply: AppendReply,
    },
    Truncate {
        through: u64,
        reply: oneshot::Sender<Result<TruncateReport>>,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
}

fn recv_error(_: oneshot::error::RecvError) -> Error {
    Error::WalClosed
}

/// The acknowledgement of one [`Wal::append`]: a future resolving to the entry's seq once it is
/// durable (as [`Durability`] defines), or to the error that refused it.
///
/// Dropping the handle does not cancel the append.
#[must_use = "an append is only acknowledged when its handle resolves"]
#[derive(Debug)]
pub struct AppendHandle {
    rx: oneshot::Receiver<Result<SeqRange>>,
}

impl AppendHandle {
    /// Blocks the current thread until the append is acknowledged. Panics if called from within an
    /// async runtime (await the handle there).
    pub fn wait(self) -> Result<u64> {
        self.rx
            .blocking_recv()
            .map_err(recv_error)?
            .map(|r| r.first)
    }
}

impl Future for AppendHandle {
    type Output = Result<u64>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.map_err(recv_error)?.map(|r| r.first))
    }
}

/// The acknowledgement of one [`Wal::append_batch`]: a future resolving to the (contiguous) seqs
/// of the batch once all its entries are durable.
///
/// Dropping the handle does not cancel the append.
#[must_use = "an append is only acknowledged when its handle resolves"]
#[derive(Debug)]
pub struct BatchHandle {
    rx: oneshot::Receiver<Result<SeqRange>>,
}

impl BatchHandle {
    /// Blocks the current thread until the batch is acknowledged. Panics if called from within an
    /// async runtime (await the handle there).
    pub fn wait(self) -> Result<SeqRange> {
        self.rx.blocking_recv().map_err(recv_error)?
    }
}

impl Future for BatchHandle {
    type Output = Result<SeqRange>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| match r {
            Ok(result) => result,
            Err(e) => Err(recv_error(e)),
        })
    }
}

/// A write-ahead log open for appending. See the [module docs](self) for the guarantees.
///
/// `Wal` is `Send + Sync`: share it (`Arc<Wal>`) between tasks and threads. Dropping it finishes
/// the queued appends and waits for the writer thread; prefer [`Wal::close`], which also reports
/// errors.
pub struct Wal {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    dir: PathBuf,
    opts: WalOptions,
    recovery: RecoveryReport,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("durability", &self.opts.durability)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, runs recovery (see the [module docs](self)), and
    /// starts the writer thread.
    ///
    /// Returns the log and a [`Replay`] of the recovered entries, in seq order, streamed from disk.
    /// Read the replay before releasing anything with [`Wal::truncate_through`] (it reads segment
    /// files lazily). Entries the caller knows are committed elsewhere (seq at most what its
    /// manifest says) are to be skipped by the caller, and released.
    ///
    /// Errors: [`Error::WalLocked`] if another `Wal` has `dir` open, [`Error::WalCorrupt`] for
    /// damage recovery may not drop, [`Error::WalIo`], [`Error::InvalidArgument`].
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<(Wal, Replay)> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let fsync = opts.durability == Durability::Fsync;
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| Error::wal_io(&dir, e))?;
            if fsync && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = lock_dir(&dir)?;
        let mut recovered = recover(&dir, &opts)?;
        let shared = Arc::new(Shared::default());

        let next_seq = recovered.next_seq;
        let (active, file) = match recovered.segments.pop() {
            Some(seg) => {
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&seg.path)
                    .map_err(|e| Error::wal_io(&seg.path, e))?;
                file.seek(SeekFrom::Start(seg.len))
                    .map_err(|e| Error::wal_io(&seg.path, e))?;
                (seg, file)
            }
            None => {
                let (file, seg) = create_segment(&dir, next_seq, opts.durability)?;
                (seg, file)
            }
        };
        let sealed: VecDeque<Segment> = recovered.segments.into();
        let disk = sealed.iter().map(|s| s.len).sum::<u64>() + active.len;
        shared.disk.store(disk, Ordering::Release);
        shared.accounted.store(disk, Ordering::Release);
        shared
            .segments
            .store(sealed.len() as u64 + 1, Ordering::Release);
        let mut report = recovered.report;
        report.segments = sealed.len() + 1;
        report.next_seq = next_seq;
        shared
            .last_seq
            .store(report.range.map_or(0, |r| r.last), Ordering::Release);

        let writer = Writer {
            dir: dir.clone(),
            durability: opts.durability,
            segment_bytes: opts.segment_bytes,
            sealed,
            active,
            file,
            next_seq,
            buf: Vec::new(),
            pending: Vec::new(),
            shared: Arc::clone(&shared),
            _lock: lock,
        };
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("genai-wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::wal_io(&dir, e))?;

        tracing::info!(
            dir = %dir.display(),
            entries = report.entries,
            first_seq = report.range.map(|r| r.first),
            last_seq = report.range.map(|r| r.last),
            next_seq,
            segments = report.segments,
            torn_tails = report.torn_tails,
            repaired = report.repaired,
            "write-ahead log opened"
        );
        let replay = Replay {
            segments: recovered.replay.into(),
            cur: None,
            done: false,
        };
        let wal = Wal {
            tx: Some(tx),
            thread: Some(thread),
            shared,
            dir,
            opts,
            recovery: report,
        };
        Ok((wal, replay))
    }

    /// Queues one entry and returns the handle that resolves to its seq once it is durable.
    ///
    /// Never blocks: fails at once with [`Error::Backpressure`] if the disk budget is used up,
    /// [`Error::EntryTooLarge`], [`Error::WalClosed`] or [`Error::WalFailed`]. I/O errors arrive
    /// through the handle.
    pub fn append(&self, payload: impl Into<Vec<u8>>) -> Result<AppendHandle> {
        let payload = payload.into();
        self.check_entry(payload.len())?;
        let bytes = ENTRY_HEADER_LEN + payload.len() as u64;
        let rx = self.submit(Payloads::One(payload), bytes, true)?;
        Ok(AppendHandle { rx })
    }

    /// Like [`Wal::append`], but exempt from the disk budget (the bytes still count towards
    /// it). For an owner's bookkeeping that must not be refused at a point where refusal would
    /// lose data, e.g. re-appending entries it is about to release; the caller bounds its size.
    pub fn append_exempt(&self, payload: impl Into<Vec<u8>>) -> Result<AppendHandle> {
        let payload = payload.into();
        self.check_entry(payload.len())?;
        let bytes = ENTRY_HEADER_LEN + payload.len() as u64;
        let rx = self.submit(Payloads::One(payload), bytes, false)?;
        Ok(AppendHandle { rx })
    }

    /// Queues several entries as one unit: they get contiguous seqs, go to the same segment, and
    /// are acknowledged together. A crash before the acknowledgement may leave any prefix of the
    /// batch in the log. Errors as [`Wal::append`]; an empty batch is an
    /// [`Error::InvalidArgument`].
    pub fn append_batch(&self, payloads: Vec<Vec<u8>>) -> Result<BatchHandle> {
        if payloads.is_empty() {
            return Err(Error::InvalidArgument("empty wal batch".into()));
        }
        let mut bytes = 0u64;
        for p in &payloads {
            self.check_entry(p.len())?;
            bytes += ENTRY_HEADER_LEN + p.len() as u64;
        }
        let rx = self.submit(Payloads::Many(payloads), bytes, true)?;
        Ok(BatchHandle { rx })
    }

    /// [`Wal::append`] for synchronous callers: blocks until the entry is acknowledged. Do not call
    /// from an async task (it panics there); await [`Wal::append`] instead.
    pub fn append_blocking(&self, payload: impl Into<Vec<u8>>) -> Result<u64> {
        self.append(payload)?.wait()
    }

    /// [`Wal::append_batch`] for synchronous callers: blocks until the batch is acknowledged.
    pub fn append_batch_blocking(&self, payloads: Vec<Vec<u8>>) -> Result<SeqRange> {
        self.append_batch(payloads)?.wait()
    }

    /// Checkpoint: every entry with seq at most `through` is durably committed elsewhere. Deletes
    /// every segment all of whose entries are at most `through`, oldest first; the active segment
    /// too when it is entirely released (a new one is started first). Seqs after `through` are
    /// never deleted.
    pub async fn truncate_through(&self, through: u64) -> Result<TruncateReport> {
        self.send_truncate(through)?.await.map_err(recv_error)?
    }

    /// [`Wal::truncate_through`] for synchronous callers (panics inside an async runtime).
    pub fn truncate_through_blocking(&self, through: u64) -> Result<TruncateReport> {
        self.send_truncate(through)?
            .blocking_recv()
            .map_err(recv_error)?
    }

    /// Writes what is queued, syncs the active segment and the directory (in both durability
    /// modes), and stops the writer. Appends after (or racing with) `close` fail with
    /// [`Error::WalClosed`]. Closing twice is fine.
    pub async fn close(&self) -> Result<()> {
        match self.send_close() {
            Some(rx) => rx.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// [`Wal::close`] for synchronous callers (panics inside an async runtime).
    pub fn close_blocking(&self) -> Result<()> {
        match self.send_close() {
            Some(rx) => rx.blocking_recv().unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// Reads back the entries with seqs in `range`, in seq order, from the segment files (e.g.
    /// entries a caller acknowledged but chose not to keep in memory). Entries are streamed: one
    /// payload at a time is held.
    ///
    /// `range.last` must be an acknowledged seq not yet released by [`Wal::truncate_through`]
    /// (every seq in `range` that was acknowledged is yielded; seqs burnt by refused writes are
    /// simply absent). Reading never goes past the entry `range.last`, so it is safe while
    /// appends go on. Each entry's checksum is verified; damage, or the end of the log before
    /// `range.last`, ends the iteration with [`Error::WalCorrupt`].
    pub fn read_range(&self, range: SeqRange) -> Result<RangeReader> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::wal_io(&self.dir, e))?;
        let mut segments = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::wal_io(&self.dir, e))?;
            if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name)
                && first <= range.last
            {
                segments.push((first, entry.path()));
            }
        }
        segments.sort();
        // The segment holding `range.first` is the last one named at or before it.
        let start = segments
            .iter()
            .rposition(|(first, _)| *first <= range.first)
            .unwrap_or(0);
        Ok(RangeReader {
            segments: segments.into_iter().skip(start).map(|(_, p)| p).collect(),
            cur: None,
            range,
            max_entry_bytes: self.opts.max_entry_bytes,
            dir: self.dir.clone(),
            done: false,
        })
    }

    /// Bytes of all segment files now (headers included).
    pub fn wal_bytes(&self) -> u64 {
        self.shared.disk.load(Ordering::Acquire)
    }

    /// The last acknowledged seq, or the last recovered one before any append; `None` if the log
    /// never held an entry since it was opened.
    pub fn last_seq(&self) -> Option<u64> {
        Some(self.shared.last_seq.load(Ordering::Acquire)).filter(|&s| s != 0)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> WalStats {
        let s = &self.shared;
        WalStats {
            wal_bytes: s.disk.load(Ordering::Acquire),
            segments: s.segments.load(Ordering::Acquire),
            last_seq: self.last_seq(),
            entries_appended: s.entries.load(Ordering::Acquire),
            group_commits: s.groups.load(Ordering::Acquire),
            fsyncs: s.fsyncs.load(Ordering::Acquire),
        }
    }

    /// What recovery found when the log was opened (including the seq range of the recovered
    /// entries).
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    fn check_entry(&self, len: usize) -> Result<()> {
        if len as u64 > self.opts.max_entry_bytes {
            return Err(Error::EntryTooLarge {
                len: len as u64,
                max: self.opts.max_entry_bytes,
            });
        }
        Ok(())
    }

    fn check_open(&self) -> Result<&mpsc::Sender<Msg>> {
        if let Some(reason) = self.shared.failed.get() {
            return Err(Error::WalFailed {
                reason: reason.clone(),
            });
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::WalClosed);
        }
        self.tx.as_ref().ok_or(Error::WalClosed)
    }

    fn submit(
        &self,
        payloads: Payloads,
        bytes: u64,
        enforce_budget: bool,
    ) -> Result<oneshot::Receiver<Result<SeqRange>>> {
        let tx = self.check_open()?;
        let budget = if enforce_budget {
            self.opts.max_wal_bytes
        } else {
            u64::MAX
        };
        if bytes > budget {
            return Err(Error::EntryTooLarge {
                len: bytes,
                max: budget,
            });
        }
        let mut cur = self.shared.accounted.load(Ordering::Acquire);
        loop {
            let new = cur.saturating_add(bytes);
            if new > budget {
                return Err(Error::Backpressure {
                    retry_after: self.opts.backpressure_retry_after,
                    wal_bytes: cur,
                    budget: self.opts.max_wal_bytes,
                });
            }
            match self.shared.accounted.compare_exchange_weak(
                cur,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Append {
            payloads,
            bytes,
            reply,
        };
        if tx.send(msg).is_err() {
            sub_saturating(&self.shared.accounted, bytes);
            return Err(Error::WalClosed);
        }
        Ok(rx)
    }

    fn send_truncate(&self, through: u64) -> Result<oneshot::Receiver<Result<TruncateReport>>> {
        let tx = self.check_open()?;
        let (reply, rx) = oneshot::channel();
        tx.send(Msg::Truncate { through, reply })
            .map_err(|_| Error::WalClosed)?;
        Ok(rx)
    }

    fn send_close(&self) -> Option<oneshot::Receiver<Result<()>>> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return None;
        }
        let (reply, rx) = oneshot::channel();
        self.tx.as_ref()?.send(Msg::Close { reply }).ok()?;
        Some(rx)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Dropping the sender lets the writer drain the queue, sync, and exit.
        self.tx = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(dir = %self.dir.display(), "write-ahead log writer thread panicked");
        }
    }
}

/// The entries recovered by [`Wal::open`], streamed from the segment files in seq order.
///
/// Each entry's checksum is verified again as it is read; an error (a file that vanished or
/// changed since the open) ends the iteration. Only the entries present at open are yielded, never
/// ones appended since.
#[derive(Debug)]
pub struct Replay {
    segments: VecDeque<ReplaySegment>,
    cur: Option<ReplayCursor>,
    done: bool,
}

#[derive(Debug)]
struct ReplaySegment {
    path: PathBuf,
    end: u64,
}

#[derive(Debug)]
struct ReplayCursor {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    end: u64,
}

impl Replay {
    fn next_entry(&mut self) -> Result<Option<WalEntry>> {
        loop {
            let cur = match &mut self.cur {
                Some(cur) => cur,
                None => {
                    let Some(seg) = self.segments.pop_front() else {
                        return Ok(None);
                    };
                    let mut file =
                        File::open(&seg.path).map_err(|e| Error::wal_io(&seg.path, e))?;
                    file.seek(SeekFrom::Start(SEGMENT_HEADER_LEN))
                        .map_err(|e| Error::wal_io(&seg.path, e))?;
                    self.cur.insert(ReplayCursor {
                        path: seg.path,
                        reader: BufReader::with_capacity(1 << 20, file),
                        offset: SEGMENT_HEADER_LEN,
                        end: seg.end,
                    })
                }
            };
            if cur.offset >= cur.end {
                self.cur = None;
                continue;
            }
            let corrupt = |offset: u64, reason: String| Error::WalCorrupt {
                path: cur.path.clone(),
                offset,
                reason,
            };
            let mut head = [0u8; ENTRY_HEADER_LEN as usize];
            cur.reader
                .read_exact(&mut head)
                .map_err(|e| Error::wal_io(&cur.path, e))?;
            let frame = FrameHeader::parse(&head);
            let total = ENTRY_HEADER_LEN + u64::from(frame.len);
            if cur.offset + total > cur.end {
                return Err(corrupt(
                    cur.offset,
                    "entry runs past the end recovery verified (file changed since open)".into(),
                ));
            }
            let mut payload = vec![0u8; frame.len as usize];
            cur.reader
                .read_exact(&mut payload)
                .map_err(|e| Error::wal_io(&cur.path, e))?;
            if entry_crc(frame.seq, &payload) != frame.crc {
                return Err(corrupt(
                    cur.offset,
                    "checksum mismatch (file changed since open)".into(),
                ));
            }
            cur.offset += total;
            return Ok(Some(WalEntry {
                seq: frame.seq,
                payload,
            }));
        }
    }
}

impl Iterator for Replay {
    type Item = Result<WalEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The entries of a seq range, read back from the segment files ([`Wal::read_range`]).
#[derive(Debug)]
pub struct RangeReader {
    segments: VecDeque<PathBuf>,
    cur: Option<(PathBuf, BufReader<File>, u64)>,
    range: SeqRange,
    max_entry_bytes: u64,
    dir: PathBuf,
    done: bool,
}

impl RangeReader {
    fn next_entry(&mut self) -> Result<Option<WalEntry>> {
        loop {
            let (path, reader, offset) = match &mut self.cur {
                Some(cur) => cur,
                None => {
                    let Some(path) = self.segments.pop_front() else {
                        return Err(Error::WalCorrupt {
                            path: self.dir.clone(),
                            offset: 0,
                            reason: format!(
                                "entry {} is not in the log (read back for seqs {}..={})",
                                self.range.last, self.range.first, self.range.last
                            ),
                        });
                    };
                    let mut file = File::open(&path).map_err(|e| Error::wal_io(&path, e))?;
                    file.seek(SeekFrom::Start(SEGMENT_HEADER_LEN))
                        .map_err(|e| Error::wal_io(&path, e))?;
                    let reader = BufReader::with_capacity(256 << 10, file);
                    self.cur.insert((path, reader, SEGMENT_HEADER_LEN))
                }
            };
            let mut head = [0u8; ENTRY_HEADER_LEN as usize];
            match reader.read_exact(&mut head) {
                Ok(()) => {}
                // The end of this segment: the entries go on in the next one.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.cur = None;
                    continue;
                }
                Err(e) => return Err(Error::wal_io(path.as_path(), e)),
            }
            let frame = FrameHeader::parse(&head);
            let at = *offset;
            let corrupt = |reason: String| Error::WalCorrupt {
                path: path.clone(),
                offset: at,
                reason,
            };
            if frame.seq > self.range.last {
                return Err(corrupt(format!(
                    "entry {} is not in the log (found {} after it)",
                    self.range.last, frame.seq
                )));
            }
            if u64::from(frame.len) > self.max_entry_bytes {
                return Err(corrupt(format!(
                    "entry length {} exceeds the limit {}",
                    frame.len, self.max_entry_bytes
                )));
            }
            *offset += ENTRY_HEADER_LEN + u64::from(frame.len);
            if frame.seq < self.range.first {
                reader
                    .seek_relative(i64::from(frame.len))
                    .map_err(|e| Error::wal_io(path.as_path(), e))?;
                continue;
            }
            let mut payload = vec![0u8; frame.len as usize];
            reader
                .read_exact(&mut payload)
                .map_err(|e| Error::wal_io(path.as_path(), e))?;
            if entry_crc(frame.seq, &payload) != frame.crc {
                return Err(corrupt(format!("checksum mismatch in entry {}", frame.seq)));
            }
            if frame.seq == self.range.last {
                self.done = true;
            }
            return Ok(Some(WalEntry {
                seq: frame.seq,
                payload,
            }));
        }
    }
}

impl Iterator for RangeReader {
    type Item = Result<WalEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(entry) => entry.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

struct FrameHeader {
    len: u32,
    crc: u32,
    seq: u64,
}

impl FrameHeader {
    fn parse(b: &[u8; ENTRY_HEADER_LEN as usize]) -> Self {
        let [
            l0,
            l1,
            l2,
            l3,
            c0,
            c1,
            c2,
            c3,
            s0,
            s1,
            s2,
            s3,
            s4,
            s5,
            s6,
            s7,
        ] = *b;
        FrameHeader {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
            seq: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        }
    }

    fn parse_slice(b: &[u8]) -> Option<Self> {
        let head: &[u8; ENTRY_HEADER_LEN as usize] =
            b.get(..ENTRY_HEADER_LEN as usize)?.try_into().ok()?;
        Some(Self::parse(head))
    }
}

fn entry_crc(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

fn encode_entry(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    // The payload length was checked against `max_entry_bytes` (at most u32::MAX).
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&entry_crc(seq, payload).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    h
}

fn segment_name(first_seq: u64) -> String {
    format!("wal-{first_seq:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// File helpers.

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::wal_io(dir, e))
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::wal_io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::WalLocked { path }),
        Err(fs::TryLockError::Error(e)) => Err(Error::wal_io(&path, e)),
    }
}

/// Creates a complete segment: header written to a temp file, synced, renamed into place, directory
/// synced (syncs in `Fsync` mode only).
fn create_segment(dir: &Path, first_seq: u64, durability: Durability) -> Result<(File, Segment)> {
    let name = segment_name(first_seq);
    let path = dir.join(&name);
    match fs::symlink_metadata(&path) {
        // A header-only file holds no entry: what a failed creation left behind; replaced below.
        Ok(m) if m.is_file() && m.len() <= SEGMENT_HEADER_LEN => {}
        Ok(_) => {
            return Err(Error::wal_io(
                &path,
                io::Error::new(io::ErrorKind::AlreadyExists, "segment already exists"),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::wal_io(&path, e)),
    }
    let tmp = dir.join(format!("{name}.tmp"));
    let made = (|| -> io::Result<File> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&segment_header(first_seq))?;
        if durability == Durability::Fsync {
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        Ok(f)
    })();
    let file = match made {
        Ok(f) => f,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(Error::wal_io(&path, e));
        }
    };
    if durability == Durability::Fsync
        && let Err(e) = sync_dir(dir)
    {
        // Not known to be durable: take it back, so that a retry starts from scratch.
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    tracing::debug!(path = %path.display(), first_seq, "write-ahead log segment created");
    Ok((
        file,
        Segment {
            path,
            first_seq,
            last_seq: None,
            len: SEGMENT_HEADER_LEN,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Recovery.

/// A segment file as the writer knows it.
#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    /// From the name: no entry in it has a lower seq.
    first_seq: u64,
    /// Seq of its last entry; `None` while it has none.
    last_seq: Option<u64>,
    /// Bytes in the file (all verified).
    len: u64,
}

struct Recovered {
    /// In seq order; the last one becomes the active segment.
    segments: Vec<Segment>,
    replay: Vec<ReplaySegment>,
    report: RecoveryReport,
    next_seq: u64,
}

/// The first damage found in a segment.
struct Damage {
    offset: u64,
    reason: String,
}

/// The result of reading one segment up to its end or its first damage.
struct Scan {
    /// Bytes verified (header and whole entries).
    good_len: u64,
    file_len: u64,
    first_entry: Option<u64>,
    last_entry: Option<u64>,
    entries: u64,
    damage: Option<Damage>,
    /// The header itself is damaged (then `good_len` is 0).
    bad_header: bool,
    /// The whole file is zeros (or shorter than a header): an interrupted creation.
    torn_header: bool,
}

fn recover(dir: &Path, opts: &WalOptions) -> Result<Recovered> {
    let fsync = opts.durability == Durability::Fsync;
    let mut report = RecoveryReport::default();
    let mut files = Vec::new();
    let read_dir = fs::read_dir(dir).map_err(|e| Error::wal_io(dir, e))?;
    for dent in read_dir {
        let dent = dent.map_err(|e| Error::wal_io(dir, e))?;
        let name = dent.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(dir = %dir.display(), file = ?name, "write-ahead log: ignoring unexpected file");
            continue;
        };
        if name.starts_with("wal-") && name.ends_with(".log.tmp") {
            let path = dent.path();
            tracing::warn!(path = %path.display(), "write-ahead log: removing leftover of an interrupted segment creation");
            fs::remove_file(&path).map_err(|e| Error::wal_io(&path, e))?;
            report.removed_files += 1;
        } else if let Some(first_seq) = parse_segment_name(name) {
            files.push((first_seq, dent.path()));
        } else if name != LOCK_FILE {
            tracing::warn!(path = %dent.path().display(), "write-ahead log: ignoring unexpected file");
        }
    }
    files.sort();

    let mut segments: Vec<Segment> = Vec::with_capacity(files.len());
    let mut replay = Vec::new();
    let mut prev_seq: Option<u64> = None;
    // Highest seq seen anywhere, dropped data included: seqs never repeat.
    let mut max_seen: u64 = 0;
    let mut dir_changed = false;
    let count = files.len();
    let mut idx = 0;
    while idx < count {
        let (first_seq, ref path) = files[idx];
        let is_last = idx + 1 == count;
        max_seen = max_seen.max(first_seq.saturating_sub(1));
        let mut scan = scan_segment(path, first_seq, prev_seq)?;
        if let Some(damage) = scan.damage.take() {
            if scan.bad_header && is_last && scan.torn_header {
                tracing::warn!(
                    path = %path.display(),
                    file_len = scan.file_len,
                    "write-ahead log: removing last segment with an incomplete header (interrupted creation)"
                );
                fs::remove_file(path).map_err(|e| Error::wal_io(path, e))?;
                report.removed_files += 1;
                report.truncated_bytes += scan.file_len;
                dir_changed = true;
                break;
            }
            // Is the damage followed by anything valid in this segment?
            let after = if scan.bad_header {
                FoundFrames::default()
            } else {
                let floor = scan
                    .last_entry
                    .or(prev_seq)
                    .unwrap_or(0)
                    .max(first_seq.saturating_sub(1));
                valid_frames_after(&read_from(path, damage.offset)?, floor)
            };
            max_seen = max_seen.max(after.max_seq);
            if is_last && !scan.bad_header && after.first_offset.is_none() {
                let dropped = scan.file_len - damage.offset;
                tracing::warn!(
                    path = %path.display(),
                    offset = damage.offset,
                    dropped_bytes = dropped,
                    reason = %damage.reason,
                    "write-ahead log: truncating torn tail (an unacknowledged write)"
                );
                truncate_file(path, damage.offset)?;
                report.torn_tails += 1;
                report.truncated_bytes += dropped;
            } else {
                let later = &files[idx + 1..];
                let reason = match after.first_offset {
                    Some(o) => format!(
                        "{} (a valid entry follows at offset {})",
                        damage.reason,
                        damage.offset + o
                    ),
                    None if !later.is_empty() => format!(
                        "{} (in a segment that is not the last; {} later segment(s))",
                        damage.reason,
                        later.len()
                    ),
                    None => damage.reason,
                };
                if !opts.repair {
                    return Err(Error::WalCorrupt {
                        path: path.clone(),
                        offset: damage.offset,
                        reason,
                    });
                }
                // Repair: keep what precedes the damage, drop the rest of the log (noting the
                // highest seq in it, so that seqs are not reused).
                let mut dropped = scan.file_len - damage.offset;
                for (later_first, later_path) in later {
                    let bytes = fs::read(later_path).map_err(|e| Error::wal_io(later_path, e))?;
                    let found = valid_frames_after(&bytes, later_first.saturating_sub(1));
                    max_seen = max_seen.max(*later_first).max(found.max_seq);
                    dropped += bytes.len() as u64;
                }
                tracing::error!(
                    path = %path.display(),
                    offset = damage.offset,
                    reason = %reason,
                    dropped_bytes = dropped,
                    dropped_segments = later.len(),
                    "write-ahead log REPAIR: truncating the log at damaged data; everything after it is dropped"
                );
                for (_, later_path) in later {
                    fs::remove_file(later_path).map_err(|e| Error::wal_io(later_path, e))?;
                }
                dir_changed = true;
                report.repaired = true;
                report.truncated_bytes += dropped;
                if scan.bad_header {
                    fs::remove_file(path).map_err(|e| Error::wal_io(path, e))?;
                    break;
                }
                truncate_file(path, damage.offset)?;
                // Keep the verified prefix of this segment, which is now the last.
                idx = count - 1;
            }
        }
        if let Some(first) = scan.first_entry {
            let last = scan.last_entry.unwrap_or(first);
            report.entries += scan.entries;
            report.range = Some(match report.range {
                Some(r) => SeqRange {
                    first: r.first,
                    last,
                },
                None => SeqRange { first, last },
            });
            replay.push(ReplaySegment {
                path: path.clone(),
                end: scan.good_len,
            });
        }
        if scan.last_entry.is_some() {
            prev_seq = scan.last_entry;
        }
        max_seen = max_seen.max(scan.last_entry.unwrap_or(0));
        segments.push(Segment {
            path: path.clone(),
            first_seq,
            last_seq: scan.last_entry,
            len: scan.good_len,
        });
        idx += 1;
    }
    if dir_changed && fsync {
        sync_dir(dir)?;
    }
    let next_seq = (max_seen + 1)
        .max(opts.min_next_seq)
        .max(1)
        .max(segments.last().map_or(1, |s| s.first_seq));
    Ok(Recovered {
        segments,
        replay,
        report,
        next_seq,
    })
}

fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(|e| Error::wal_io(path, e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::wal_io(path, e))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .map_err(|e| Error::wal_io(path, e))?;
    Ok(out)
}

fn truncate_file(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::wal_io(path, e))?;
    f.set_len(len).map_err(|e| Error::wal_io(path, e))?;
    f.sync_all().map_err(|e| Error::wal_io(path, e))
}

/// Reads one segment, verifying its header and every entry, up to its end or its first damage.
fn scan_segment(path: &Path, first_seq: u64, prev_seq: Option<u64>) -> Result<Scan> {
    let io_err = |e| Error::wal_io(path, e);
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut scan = Scan {
        good_len: 0,
        file_len,
        first_entry: None,
        last_entry: None,
        entries: 0,
        damage: None,
        bad_header: false,
        torn_header: false,
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let header_damage = |scan: &mut Scan, reason: String| {
        scan.bad_header = true;
        scan.damage = Some(Damage { offset: 0, reason });
    };
    if file_len < SEGMENT_HEADER_LEN {
        scan.torn_header = true;
        header_damage(
            &mut scan,
            format!("segment header truncated ({file_len} bytes)"),
        );
        return Ok(scan);
    }
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    reader.read_exact(&mut header).map_err(io_err)?;
    if header != segment_header(first_seq) {
        if header.iter().all(|&b| b == 0) {
            // All zeros so far: torn if the rest of the file is zeros as well.
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).map_err(io_err)?;
            scan.torn_header = rest.iter().all(|&b| b == 0);
            header_damage(&mut scan, "segment header is zeros".into());
            return Ok(scan);
        }
        if &header[..8] != SEGMENT_MAGIC {
            header_damage(&mut scan, "bad segment magic".into());
            return Ok(scan);
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != SEGMENT_VERSION {
            // Not damage: a format this build does not know. Never "repaired".
            return Err(Error::WalCorrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason: format!(
                    "unsupported segment version {version} (this build reads {SEGMENT_VERSION})"
                ),
            });
        }
        header_damage(
            &mut scan,
            "segment header does not match its file name".into(),
        );
        return Ok(scan);
    }
    let mut offset = SEGMENT_HEADER_LEN;
    scan.good_len = offset;
    let mut last = prev_seq;
    let mut payload = Vec::new();
    let mut head = [0u8; ENTRY_HEADER_LEN as usize];
    while offset < file_len {
        let remaining = file_len - offset;
        let damage = |reason: String| Some(Damage { offset, reason });
        if remaining < ENTRY_HEADER_LEN {
            scan.damage = damage(format!("entry header truncated ({remaining} bytes left)"));
            break;
        }
        reader.read_exact(&mut head).map_err(io_err)?;
        let frame = FrameHeader::parse(&head);
        let total = ENTRY_HEADER_LEN + u64::from(frame.len);
        if total > remaining {
            scan.damage = damage(format!(
                "entry length {} runs past the end of the file ({} bytes left)",
                frame.len,
                remaining - ENTRY_HEADER_LEN
            ));
            break;
        }
        payload.resize(frame.len as usize, 0);
        reader.read_exact(&mut payload).map_err(io_err)?;
        let crc = entry_crc(frame.seq, &payload);
        if crc != frame.crc {
            scan.damage = damage(format!(
                "checksum mismatch (stored {:#010x}, computed {crc:#010x})",
                frame.crc
            ));
            break;
        }
        let in_order = match last {
            Some(l) => frame.seq > l,
            None => true,
        } && frame.seq >= first_seq;
        if !in_order {
            scan.damage = damage(format!(
                "seq {} out of order (previous {:?}, segment starts at {first_seq})",
                frame.seq, last
            ));
            break;
        }
        scan.first_entry.get_or_insert(frame.seq);
        scan.last_entry = Some(frame.seq);
        scan.entries += 1;
        last = Some(frame.seq);
        offset += total;
        scan.good_len = offset;
    }
    Ok(scan)
}

/// Valid-looking entries found by scanning damaged bytes at every offset.
#[derive(Default)]
struct FoundFrames {
    /// Offset (in the scanned bytes, > 0) of the first one.
    first_offset: Option<u64>,
    /// Highest seq among them (0 if none).
    max_seq: u64,
}

/// Looks for complete entries with a correct checksum and a plausible seq (above `floor`, within
/// 2^32 of it) at any offset after the first byte of `bytes`.
fn valid_frames_after(bytes: &[u8], floor: u64) -> FoundFrames {
    let mut found = FoundFrames {
        first_offset: None,
        max_seq: 0,
    };
    let head = ENTRY_HEADER_LEN as usize;
    let mut p = 1;
    while p + head <= bytes.len() {
        let Some(frame) = bytes.get(p..).and_then(FrameHeader::parse_slice) else {
            break;
        };
        let plausible = frame.seq > floor && frame.seq - floor < PLAUSIBLE_SEQ_GAP;
        let end = p + head + frame.len as usize;
        if plausible
            && end <= bytes.len()
            && bytes
                .get(p + head..end)
                .is_some_and(|payload| entry_crc(frame.seq, payload) == frame.crc)
        {
            found.first_offset.get_or_insert(p as u64);
            found.max_seq = found.max_seq.max(frame.seq);
            p = end;
            continue;
        }
        p += 1;
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The writer thread.

struct Pending {
    range: SeqRange,
    bytes: u64,
    reply: AppendReply,
}

struct Writer {
    dir: PathBuf,
    durability: Durability,
    segment_bytes: u64,
    sealed: VecDeque<Segment>,
    active: Segment,
    file: File,
    next_seq: u64,
    /// Encoded entries of the current group, not yet written.
    buf: Vec<u8>,
    pending: Vec<Pending>,
    shared: Arc<Shared>,
    /// Held for the writer's lifetime: the directory's advisory lock.
    _lock: File,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut close_reply = None;
        'outer: while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append {
                        payloads,
                        bytes,
                        reply,
                    } => self.enqueue(payloads, bytes, reply),
                    Msg::Truncate { through, reply } => {
                        self.commit();
                        let _ = reply.send(self.truncate_through(through));
                    }
                    Msg::Close { reply } => {
                        close_reply = Some(reply);
                        break 'outer;
                    }
                }
                if self.buf.len() < MAX_GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            self.commit();
        }
        let result = self.shutdown();
        self.shared.closed.store(true, Ordering::Release);
        let dir = self.dir.clone();
        // Release the files and the lock before telling the closer.
        drop(self);
        drop(rx);
        match close_reply {
            Some(reply) => {
                if let Err(Err(e)) = reply.send(result) {
                    tracing::error!(dir = %dir.display(), error = %e, "write-ahead log close failed");
                }
            }
            None => {
                if let Err(e) = result {
                    tracing::error!(dir = %dir.display(), error = %e, "write-ahead log close failed");
                }
            }
        }
    }

    fn failed(&self) -> Option<Error> {
        self.shared.failed.get().map(|reason| Error::WalFailed {
            reason: reason.clone(),
        })
    }

    fn fail(&self, reason: String) {
        tracing::error!(dir = %self.dir.display(), %reason, "write-ahead log stops accepting writes until reopened");
        let _ = self.shared.failed.set(reason);
    }

    fn refuse(&self, bytes: u64, reply: AppendReply, err: Error) {
        sub_saturating(&self.shared.accounted, bytes);
        let _ = reply.send(Err(err));
    }

    /// Adds one append to the current group (committing the group and rotating first if the
    /// append does not fit in the active segment).
    fn enqueue(&mut self, payloads: Payloads, bytes: u64, reply: AppendReply) {
        if let Some(e) = self.failed() {
            return self.refuse(bytes, reply, e);
        }
        let has_entries = self.active.last_seq.is_some() || !self.pending.is_empty();
        if has_entries && self.active.len + self.buf.len() as u64 + bytes > self.segment_bytes {
            self.commit();
            let rotated = match self.failed() {
                Some(e) => Err(e),
                None => self.rotate(),
            };
            if let Err(e) = rotated {
                return self.refuse(bytes, reply, e);
            }
        }
        let first = self.next_seq;
        let mut seq = first;
        match &payloads {
            Payloads::One(p) => {
                encode_entry(&mut self.buf, seq, p);
                seq += 1;
            }
            Payloads::Many(ps) => {
                for p in ps {
                    encode_entry(&mut self.buf, seq, p);
                    seq += 1;
                }
            }
        }
        self.next_seq = seq;
        self.pending.push(Pending {
            range: SeqRange {
                first,
                last: seq - 1,
            },
            bytes,
            reply,
        });
    }

    fn write_group(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if self.shared.faults.fail_write.swap(false, Ordering::AcqRel) {
            let half = self.buf.len() / 2;
            self.file.write_all(&self.buf[..half])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected: no space left on device",
            ));
        }
        self.file.write_all(&self.buf)
    }

    fn sync_active(&mut self) -> io::Result<()> {
        self.shared.fsyncs.fetch_add(1, Ordering::AcqRel);
        #[cfg(test)]
        if self.shared.faults.fail_fsync.swap(false, Ordering::AcqRel) {
            return Err(io::Error::other("injected: fsync failed"));
        }
        self.file.sync_data()
    }

    fn truncate_back(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        Ok(())
    }

    /// Writes the current group with one write, syncs once (`Fsync` mode), acknowledges it. On a
    /// failure, refuses the whole group and truncates the segment back to its last good offset.
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let start = self.active.len;
        let n = self.buf.len() as u64;
        let path = self.active.path.clone();
        let refuse_all = |pending: Vec<Pending>, e: &io::Error, shared: &Shared| {
            for p in pending {
                sub_saturating(&shared.accounted, p.bytes);
                let _ = p.reply.send(Err(Error::wal_io(
                    &path,
                    io::Error::new(e.kind(), e.to_string()),
                )));
            }
        };
        if let Err(e) = self.write_group() {
            tracing::error!(path = %path.display(), offset = start, error = %e, entries = pending.len(), "write-ahead log write failed; appends refused");
            if let Err(te) = self.truncate_back(start) {
                self.fail(format!(
                    "write to {} failed ({e}) and truncating back to offset {start} failed too ({te})",
                    path.display()
                ));
            }
            refuse_all(pending, &e, &self.shared);
            self.reset_buf();
            return;
        }
        self.active.len += n;
        self.shared.disk.fetch_add(n, Ordering::AcqRel);
        if self.durability == Durability::Fsync
            && let Err(e) = self.sync_active()
        {
            self.fail(format!("fdatasync of {} failed: {e}", path.display()));
            // Best effort: take the unacknowledged group out of the file.
            if self.truncate_back(start).is_ok() {
                self.active.len = start;
                sub_saturating(&self.shared.disk, n);
            }
            refuse_all(pending, &e, &self.shared);
            self.reset_buf();
            return;
        }
        let mut entries = 0;
        for p in &pending {
            entries += p.range.len();
        }
        if let Some(last) = pending.last() {
            self.active.last_seq = Some(last.range.last);
            self.shared
                .last_seq
                .store(last.range.last, Ordering::Release);
        }
        self.shared.entries.fetch_add(entries, Ordering::AcqRel);
        self.shared.groups.fetch_add(1, Ordering::AcqRel);
        for p in pending {
            let _ = p.reply.send(Ok(p.range));
        }
        self.reset_buf();
    }

    fn reset_buf(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > 2 * MAX_GROUP_BYTES {
            self.buf.shrink_to(MAX_GROUP_BYTES);
        }
    }

    /// Starts a new active segment named after the next seq. The group must be committed.
    fn rotate(&mut self) -> Result<()> {
        let (file, seg) = create_segment(&self.dir, self.next_seq, self.durability)?;
        self.file = file;
        let old = std::mem::replace(&mut self.active, seg);
        self.sealed.push_back(old);
        self.shared
            .accounted
            .fetch_add(SEGMENT_HEADER_LEN, Ordering::AcqRel);
        self.shared
            .disk
            .fetch_add(SEGMENT_HEADER_LEN, Ordering::AcqRel);
        self.shared.segments.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn truncate_through(&mut self, through: u64) -> Result<TruncateReport> {
        let mut report = TruncateReport::default();
        let rotate_err = if self.active.last_seq.is_some_and(|l| l <= through) {
            match self.failed() {
                Some(e) => Some(e),
                None => self.rotate().err(),
            }
        } else {
            None
        };
        while let Some(seg) = self.sealed.front() {
            if seg.last_seq.is_some_and(|l| l > through) {
                break;
            }
            match fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::wal_io(&seg.path, e)),
            }
            tracing::debug!(path = %seg.path.display(), through, "write-ahead log segment released");
            report.segments_deleted += 1;
            report.bytes_freed += seg.len;
            sub_saturating(&self.shared.accounted, seg.len);
            sub_saturating(&self.shared.disk, seg.len);
            sub_saturating(&self.shared.segments, 1);
            self.sealed.pop_front();
        }
        if report.segments_deleted > 0 && self.durability == Durability::Fsync {
            sync_dir(&self.dir)?;
        }
        match rotate_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Final commit and sync (in both modes).
    fn shutdown(&mut self) -> Result<()> {
        self.commit();
        if let Some(e) = self.failed() {
            return Err(e);
        }
        self.sync_active()
            .map_err(|e| Error::wal_io(&self.active.path, e))?;
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Deterministic payload of varying size for entry `i`.
    fn payload(i: u64) -> Vec<u8> {
        let len = (i * 37 % 300) as usize;
        (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
    }

    fn opts() -> WalOptions {
        WalOptions {
            segment_bytes: 4096,
            ..WalOptions::default()
        }
    }

    fn replay_all(replay: Replay) -> Vec<WalEntry> {
        replay.collect::<Result<Vec<_>>>().unwrap()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|d| d.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_segment_name)
                    .is_some()
            })
            .collect();
        v.sort();
        v
    }

    /// Writes entries 1..=n (payload(i)) into a fresh log and closes it.
    fn write_log(dir: &Path, n: u64, opts: WalOptions) {
        let (wal, replay) = Wal::open(dir, opts).unwrap();
        assert!(replay_all(replay).is_empty());
        for i in 1..=n {
            assert_eq!(wal.append_blocking(payload(i)).unwrap(), i);
        }
        wal.close_blocking().unwrap();
    }

    fn assert_prefix(entries: &[WalEntry], n: u64) {
        assert_eq!(entries.len() as u64, n);
        for (k, e) in entries.iter().enumerate() {
            let i = k as u64 + 1;
            assert_eq!(e.seq, i);
            assert_eq!(e.payload, payload(i), "payload of seq {i}");
        }
    }

    /// Offsets of the entries of one segment file (parsing it as the writer wrote it).
    fn entry_offsets(path: &Path) -> Vec<u64> {
        let bytes = fs::read(path).unwrap();
        let mut offsets = Vec::new();
        let mut off = SEGMENT_HEADER_LEN as usize;
        while off + ENTRY_HEADER_LEN as usize <= bytes.len() {
            let frame = FrameHeader::parse_slice(&bytes[off..]).unwrap();
            offsets.push(off as u64);
            off += ENTRY_HEADER_LEN as usize + frame.len as usize;
        }
        offsets
    }

    fn flip_byte(path: &Path, offset: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[offset as usize] ^= 0x5a;
        fs::write(path, bytes).unwrap();
    }

    fn read(wal: &Wal, first: u64, last: u64) -> Result<Vec<WalEntry>> {
        wal.read_range(SeqRange { first, last })?.collect()
    }

    #[test]
    fn read_range_reads_back_any_range_across_segments_while_appending() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), opts()).unwrap();
        for i in 1..=300 {
            wal.append_blocking(payload(i)).unwrap();
        }
        assert!(segment_files(tmp.path()).len() > 5);
        let check = |first: u64, last: u64| {
            let got = read(&wal, first, last).unwrap();
            let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (first..=last).collect::<Vec<_>>());
            for e in &got {
                assert_eq!(e.payload, payload(e.seq), "payload of seq {}", e.seq);
            }
        };
        check(1, 300);
        check(1, 1);
        check(300, 300);
        check(57, 211);
        // Appends after the range do not disturb it; released segments are not needed.
        for i in 301..=320 {
            wal.append_blocking(payload(i)).unwrap();
        }
        wal.truncate_through_blocking(150).unwrap();
        check(151, 320);
        check(200, 250);
        wal.close_blocking().unwrap();
    }

    #[test]
    fn read_range_skips_burnt_seqs_and_fails_on_missing_or_damaged_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        for i in 1..=5 {
            wal.append_blocking(payload(i)).unwrap();
        }
        // A refused write burns seq 6.
        wal.shared.faults.fail_write.store(true, Ordering::Release);
        wal.append_blocking(payload(6)).unwrap_err();
        assert_eq!(wal.append_blocking(payload(7)).unwrap(), 7);
        let seqs: Vec<u64> = read(&wal, 4, 7).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4, 5, 7]);
        // An entry that was never written is an error, not a silent short read.
        assert!(matches!(read(&wal, 1, 6), Err(Error::WalCorrupt { .. })));
        assert!(matches!(read(&wal, 7, 9), Err(Error::WalCorrupt { .. })));
        wal.close_blocking().unwrap();

        let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        let seg = &segment_files(tmp.path())[0];
        let third = entry_offsets(seg)[2];
        flip_byte(seg, third + ENTRY_HEADER_LEN + 1);
        assert_eq!(read(&wal, 1, 2).unwrap().len(), 2);
        match read(&wal, 2, 5) {
            Err(Error::WalCorrupt { offset, .. }) => assert_eq!(offset, third),
            other => panic!("expected WalCorrupt, got {other:?}"),
        }
        wal.close_blocking().unwrap();
    }

    #[test]
    fn round_trip_across_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        write_log(tmp.path(), 500, opts());
        let files = segment_files(tmp.path());
        assert!(files.len() > 5, "{} segments", files.len());
        for f in &files {
            assert!(fs::metadata(f).unwrap().len() <= 4096 + 316);
        }
        let (wal, replay) = Wal::open(tmp.path(), opts()).unwrap();
        let report = wal.recovery().clone();
        assert_eq!(report.entries, 500);
        assert_eq!(
            report.range,
            Some(SeqRange {
                first: 1,
                last: 500
            })
        );
        assert_eq!(report.torn_tails, 0);
        assert_eq!(report.next_seq, 501);
        assert_eq!(report.segments, files.len());
        assert_eq!(wal.last_seq(), Some(500));
        let entries = replay_all(replay);
        assert_prefix(&entries, 500);
        // Every segment is named after its first entry.
        for f in &files {
            let first = parse_segment_name(f.file_name().unwrap().to_str().unwrap()).unwrap();
            let bytes = fs::read(f).unwrap();
            assert_eq!(&bytes[..8], SEGMENT_MAGIC);
            if bytes.len() as u64 > SEGMENT_HEADER_LEN {
                let frame = FrameHeader::parse_slice(&bytes[24..]).unwrap();
                assert_eq!(frame.seq, first);
            }
        }
        let total: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
        assert_eq!(wal.wal_bytes(), total);
        assert_eq!(wal.append_blocking(b"more".to_vec()).unwrap(), 501);
    }

    #[test]
    fn batches_get_contiguous_seqs() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), opts()).unwrap();
        let r = wal
            .append_batch_blocking((1..=10).map(payload).collect())
            .unwrap();
        assert_eq!(r, SeqRange { first: 1, last: 10 });
        assert_eq!(r.len(), 10);
        let r = wal
            .append_batch_blocking((11..=40).map(payload).collect())
            .unwrap();
        assert_eq!(
            r,
            SeqRange {
                first: 11,
                last: 40
            }
        );
        assert!(matches!(
            wal.append_batch(Vec::new()),
            Err(Error::InvalidArgument(_))
        ));
        drop(wal);
        let (_, replay) = Wal::open(tmp.path(), opts()).unwrap();
        assert_prefix(&replay_all(replay), 40);
    }

    #[test]
    fn group_commit_many_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let o = WalOptions {
            segment_bytes: 64 << 10,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(tmp.path(), o.clone()).unwrap();
        let wal = Arc::new(wal);
        let threads = 8u64;
        let per = 250u64;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    (0..per)
                        .map(|i| {
                            let p = format!("t{t}-i{i}").into_bytes();
                            (wal.append_blocking(p.clone()).unwrap(), p)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acked = std::collections::BTreeMap::new();
        for h in handles {
            for (seq, p) in h.join().unwrap() {
                assert!(acked.insert(seq, p).is_none(), "seq {seq} acked twice");
            }
        }
        let n = threads * per;
        assert_eq!(
            acked.keys().copied().collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>()
        );
        let stats = wal.stats();
        assert_eq!(stats.entries_appended, n);
        assert!(
            stats.group_commits < n,
            "no group commit happened: {stats:?}"
        );
        assert!(stats.fsyncs <= stats.group_commits + stats.segments);
        wal.close_blocking().unwrap();
        drop(wal);
        let (_, replay) = Wal::open(tmp.path(), o).unwrap();
        let entries = replay_all(replay);
        assert_eq!(entries.len() as u64, n);
        for e in entries {
            assert_eq!(acked.get(&e.seq), Some(&e.payload));
        }
    }

    #[test]
    fn async_appends_from_tasks() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let seqs = rt.block_on(async move {
            let (wal, _) = Wal::open(&dir, opts()).unwrap();
            let wal = Arc::new(wal);
            let mut tasks = Vec::new();
            for t in 0..50u64 {
                let wal = Arc::clone(&wal);
                tasks.push(tokio::spawn(async move {
                    // Pipelined: queue several, then await them all.
                    let handles: Vec<_> = (0..20u64)
                        .map(|i| wal.append(payload(t * 100 + i)).unwrap())
                        .collect();
                    let mut seqs = Vec::new();
                    for h in handles {
                        seqs.push(h.await.unwrap());
                    }
                    seqs
                }));
            }
            let mut all = BTreeSet::new();
            for t in tasks {
                let seqs = t.await.unwrap();
                assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order per task");
                all.extend(seqs);
            }
            let r = wal.truncate_through(0).await.unwrap();
            assert_eq!(r, TruncateReport::default());
            wal.close().await.unwrap();
            assert!(matches!(wal.append(b"x".to_vec()), Err(Error::WalClosed)));
            wal.close().await.unwrap();
            all
        });
        assert_eq!(seqs.len(), 1000);
        assert_eq!(seqs.first(), Some(&1));
        assert_eq!(seqs.last(), Some(&1000));
    }

    /// Writes 30 entries in one segment, lets `damage` alter the file, reopens.
    fn reopen_after(damage: impl FnOnce(&Path)) -> (tempfile::TempDir, Result<(Wal, Replay)>) {
        let tmp = tempfile::tempdir().unwrap();
        let o = WalOptions::default();
        write_log(tmp.path(), 30, o.clone());
        let files = segment_files(tmp.path());
        assert_eq!(files.len(), 1);
        damage(&files[0]);
        let r = Wal::open(tmp.path(), o);
        (tmp, r)
    }

    fn assert_torn_tail_recovered(
        tmp: &tempfile::TempDir,
        opened: Result<(Wal, Replay)>,
        kept: u64,
        good_len: u64,
    ) {
        let (wal, replay) = opened.unwrap();
        assert_eq!(wal.recovery().torn_tails, 1);
        assert!(!wal.recovery().repaired);
        assert_prefix(&replay_all(replay), kept);
        let file = &segment_files(tmp.path())[0];
        assert_eq!(fs::metadata(file).unwrap().len(), good_len);
        // Appends continue after the recovered prefix (or after the dropped entry's seq), and a
        // second open is clean.
        let seq = wal.append_blocking(b"after".to_vec()).unwrap();
        assert!(seq > kept);
        drop(wal);
        let (wal, replay) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        assert_eq!(wal.recovery().torn_tails, 0);
        let entries = replay_all(replay);
        assert_eq!(entries.len() as u64, kept + 1);
        assert_eq!(entries.last().unwrap().payload, b"after");
    }

    #[test]
    fn torn_tail_mid_entry_is_truncated() {
        let mut offs = Vec::new();
        let (tmp, opened) = reopen_after(|p| {
            offs = entry_offsets(p);
            let last = *offs.last().unwrap();
            let f = OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(last + ENTRY_HEADER_LEN + 3).unwrap();
        });
        assert_torn_tail_recovered(&tmp, opened, 29, *offs.last().unwrap());
    }

    #[test]
    fn torn_frame_header_is_truncated() {
        let mut offs = Vec::new();
        let (tmp, opened) = reopen_after(|p| {
            offs = entry_offsets(p);
            let last = *offs.last().unwrap();
            let f = OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(last + 7).unwrap();
        });
        assert_torn_tail_recovered(&tmp, opened, 29, *offs.last().unwrap());
    }

    #[test]
    fn garbage_tail_is_truncated() {
        let mut len = 0;
        let (tmp, opened) = reopen_after(|p| {
            let mut bytes = fs::read(p).unwrap();
            len = bytes.len() as u64;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..5000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            fs::write(p, bytes).unwrap();
        });
        assert_torn_tail_recovered(&tmp, opened, 30, len);
    }

    #[test]
    fn zero_filled_tail_is_truncated() {
        let mut len = 0;
        let (tmp, opened) = reopen_after(|p| {
            len = fs::metadata(p).unwrap().len();
            let f = OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(len + 8192).unwrap();
        });
        assert_torn_tail_recovered(&tmp, opened, 30, len);
    }

    #[test]
    fn bad_checksum_of_last_entry_is_a_torn_tail() {
        let mut offs = Vec::new();
        let (tmp, opened) = reopen_after(|p| {
            offs = entry_offsets(p);
            let len = fs::metadata(p).unwrap().len();
            flip_byte(p, len - 1);
        });
        let (wal, replay) = opened.unwrap();
        assert_eq!(wal.recovery().torn_tails, 1);
        assert_prefix(&replay_all(replay), 29);
        drop(wal);
        let file = &segment_files(tmp.path())[0];
        assert_eq!(fs::metadata(file).unwrap().len(), *offs.last().unwrap());
    }

    #[test]
    fn mid_file_corruption_is_an_error_and_repair_truncates() {
        let mut offs = Vec::new();
        let mut path = PathBuf::new();
        let (tmp, opened) = reopen_after(|p| {
            offs = entry_offsets(p);
            path = p.to_path_buf();
            // A payload byte of entry 3.
            flip_byte(p, offs[2] + ENTRY_HEADER_LEN + 2);
        });
        match opened {
            Err(Error::WalCorrupt {
                path: p,
                offset,
                reason,
            }) => {
                assert_eq!(p, path);
                assert_eq!(offset, offs[2]);
                assert!(reason.contains("checksum"), "{reason}");
                assert!(reason.contains("valid entry follows"), "{reason}");
            }
            other => panic!("expected WalCorrupt, got {other:?}"),
        }
        // Nothing was changed by the failed open.
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            entry_offsets(&path).last().unwrap() + ENTRY_HEADER_LEN + payload(30).len() as u64
        );
        let repair = WalOptions {
            repair: true,
            ..WalOptions::default()
        };
        let (wal, replay) = Wal::open(tmp.path(), repair).unwrap();
        assert!(wal.recovery().repaired);
        assert_prefix(&replay_all(replay), 2);
        // Seqs of the dropped entries are not reused.
        assert_eq!(wal.append_blocking(b"next".to_vec()).unwrap(), 31);
        drop(wal);
        let (wal, replay) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        assert!(!wal.recovery().repaired);
        let seqs: Vec<u64> = replay_all(replay).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 31]);
    }

    #[test]
    fn corruption_in_an_earlier_segment_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        write_log(tmp.path(), 200, opts());
        let files = segment_files(tmp.path());
        assert!(files.len() >= 3);
        // The last entry of the first segment: damage at a segment's end is still an error when
        // later segments follow.
        let offs = entry_offsets(&files[0]);
        let bad = *offs.last().unwrap();
        flip_byte(&files[0], bad + 5);
        match Wal::open(tmp.path(), opts()) {
            Err(Error::WalCorrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, files[0]);
                assert_eq!(offset, bad);
                assert!(reason.contains("not the last"), "{reason}");
            }
            other => panic!("expected WalCorrupt, got {other:?}"),
        }
        let (wal, replay) = Wal::open(
            tmp.path(),
            WalOptions {
                repair: true,
                ..opts()
            },
        )
        .unwrap();
        let kept = offs.len() as u64 - 1;
        assert_prefix(&replay_all(replay), kept);
        assert!(wal.recovery().repaired);
        assert_eq!(segment_files(tmp.path()), vec![files[0].clone()]);
        assert_eq!(wal.append_blocking(b"x".to_vec()).unwrap(), 201);
    }

    #[test]
    fn damaged_header_of_an_earlier_segment_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        write_log(tmp.path(), 100, opts());
        let files = segment_files(tmp.path());
        flip_byte(&files[1], 2);
        match Wal::open(tmp.path(), opts()) {
            Err(Error::WalCorrupt { path, offset, .. }) => {
                assert_eq!(path, files[1]);
                assert_eq!(offset, 0);
            }
            other => panic!("expected WalCorrupt, got {other:?}"),
        }
    }

    #[test]
    fn interrupted_segment_creation_is_cleaned_up() {
        let tmp = tempfile::tempdir().unwrap();
        write_log(tmp.path(), 10, opts());
        // A leftover temp file and a last segment with a torn (short) header.
        fs::write(tmp.path().join("wal-00000000000000000011.log.tmp"), b"GAW").unwrap();
        fs::write(tmp.path().join("wal-00000000000000000011.log"), b"GAWAL0").unwrap();
        let (wal, replay) = Wal::open(tmp.path(), opts()).unwrap();
        assert_eq!(wal.recovery().removed_files, 2);
        assert_prefix(&replay_all(replay), 10);
        assert_eq!(wal.append_blocking(b"x".to_vec()).unwrap(), 11);
        assert_eq!(segment_files(tmp.path()).len(), 1);
    }

    #[test]
    fn budget_gives_backpressure() {
        let tmp = tempfile::tempdir().unwrap();
        let o = WalOptions {
            segment_bytes: 4096,
            max_wal_bytes: 16 << 10,
            backpressure_retry_after: Duration::from_millis(250),
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(tmp.path(), o).unwrap();
        let mut last = 0;
        let err = loop {
            match wal.append_blocking(vec![7u8; 200]) {
                Ok(seq) => last = seq,
                Err(e) => break e,
            }
        };
        match &err {
            Error::Backpressure {
                retry_after,
                wal_bytes,
                budget,
            } => {
                assert_eq!(*retry_after, Duration::from_millis(250));
                assert_eq!(*budget, 16 << 10);
                assert!(*wal_bytes + 216 > *budget);
            }
            other => panic!("expected Backpressure, got {other:?}"),
        }
        assert_eq!(err.retry_after(), Some(Duration::from_millis(250)));
        assert!(wal.wal_bytes() <= 16 << 10);
        // An entry that could never fit is not backpressure.
        assert!(matches!(
            wal.append(vec![0u8; 20 << 10]),
            Err(Error::EntryTooLarge { .. })
        ));
        // Releasing frees space.
        let r = wal.truncate_through_blocking(last).unwrap();
        assert!(r.segments_deleted >= 3);
        assert!(r.bytes_freed > 12 << 10);
        assert_eq!(wal.append_blocking(vec![7u8; 200]).unwrap(), last + 1);
    }

    #[test]
    fn entry_size_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let o = WalOptions {
            max_entry_bytes: 100,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(tmp.path(), o).unwrap();
        assert!(matches!(
            wal.append(vec![0u8; 101]),
            Err(Error::EntryTooLarge { len: 101, max: 100 })
        ));
        assert_eq!(wal.append_blocking(vec![0u8; 100]).unwrap(), 1);
        assert_eq!(wal.append_blocking(Vec::new()).unwrap(), 2);
        drop(wal);
        let (_, replay) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        let e = replay_all(replay);
        assert_eq!(e[1].payload, b"");
        assert!(
            Wal::open(
                tmp.path(),
                WalOptions {
                    segment_bytes: 10,
                    ..WalOptions::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn truncate_through_deletes_released_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), opts()).unwrap();
        for i in 1..=200 {
            wal.append_blocking(payload(i)).unwrap();
        }
        let files = segment_files(tmp.path());
        let firsts: Vec<u64> = files
            .iter()
            .map(|f| parse_segment_name(f.file_name().unwrap().to_str().unwrap()).unwrap())
            .collect();
        // Release through the middle of the third segment: the first two go.
        let through = firsts[2] + 1;
        let before = wal.wal_bytes();
        let freed: u64 = files[..2]
            .iter()
            .map(|f| fs::metadata(f).unwrap().len())
            .sum();
        let r = wal.truncate_through_blocking(through).unwrap();
        assert_eq!(r.segments_deleted, 2);
        assert_eq!(r.bytes_freed, freed);
        assert_eq!(wal.wal_bytes(), before - freed);
        assert_eq!(segment_files(tmp.path()), files[2..].to_vec());
        // Releasing again is a no-op; releasing the end of a segment deletes it.
        assert_eq!(
            wal.truncate_through_blocking(through)
                .unwrap()
                .segments_deleted,
            0
        );
        assert_eq!(
            wal.truncate_through_blocking(firsts[3] - 1)
                .unwrap()
                .segments_deleted,
            1
        );
        drop(wal);

        let (wal, replay) = Wal::open(tmp.path(), opts()).unwrap();
        let entries = replay_all(replay);
        assert_eq!(entries.first().unwrap().seq, firsts[3]);
        assert_eq!(entries.last().unwrap().seq, 200);
        for e in &entries {
            assert_eq!(e.payload, payload(e.seq));
        }
        // Releasing everything rotates away the active segment too.
        let r = wal.truncate_through_blocking(200).unwrap();
        assert_eq!(r.segments_deleted, files.len() - 3);
        let left = segment_files(tmp.path());
        assert_eq!(left.len(), 1);
        assert_eq!(fs::metadata(&left[0]).unwrap().len(), SEGMENT_HEADER_LEN);
        assert_eq!(wal.wal_bytes(), SEGMENT_HEADER_LEN);
        drop(wal);

        // The seq counter survives an empty log.
        let (wal, replay) = Wal::open(tmp.path(), opts()).unwrap();
        assert!(replay_all(replay).is_empty());
        assert_eq!(wal.recovery().range, None);
        assert_eq!(wal.append_blocking(b"x".to_vec()).unwrap(), 201);
    }

    #[test]
    fn min_next_seq_is_a_floor() {
        let tmp = tempfile::tempdir().unwrap();
        let o = WalOptions {
            min_next_seq: 1000,
            ..opts()
        };
        let (wal, _) = Wal::open(tmp.path(), o.clone()).unwrap();
        assert_eq!(wal.append_blocking(b"a".to_vec()).unwrap(), 1000);
        drop(wal);
        // Everything deleted (say, by an operator): the manifest's floor still holds.
        for f in segment_files(tmp.path()) {
            fs::remove_file(f).unwrap();
        }
        let o = WalOptions {
            min_next_seq: 1001,
            ..opts()
        };
        let (wal, _) = Wal::open(tmp.path(), o).unwrap();
        assert_eq!(wal.append_blocking(b"b".to_vec()).unwrap(), 1001);
        drop(wal);
        // A lower floor than the log's own counter is ignored.
        let (wal, _) = Wal::open(tmp.path(), opts()).unwrap();
        assert_eq!(wal.append_blocking(b"c".to_vec()).unwrap(), 1002);
    }

    #[test]
    fn os_durability_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let o = WalOptions {
            durability: Durability::Os,
            ..opts()
        };
        let (wal, _) = Wal::open(tmp.path(), o.clone()).unwrap();
        for i in 1..=300 {
            assert_eq!(wal.append_blocking(payload(i)).unwrap(), i);
        }
        // No fsync per group in Os mode.
        assert_eq!(wal.stats().fsyncs, 0);
        // Dropped without close: queued appends are still written.
        drop(wal);
        let (wal, replay) = Wal::open(tmp.path(), o).unwrap();
        assert_prefix(&replay_all(replay), 300);
        wal.close_blocking().unwrap();
        assert_eq!(wal.stats().fsyncs, 1);
    }

    #[test]
    fn second_writer_is_locked_out() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), opts()).unwrap();
        assert!(matches!(
            Wal::open(tmp.path(), opts()),
            Err(Error::WalLocked { .. })
        ));
        wal.close_blocking().unwrap();
        // Closing releases the lock, before `close` returns.
        let (_wal2, _) = Wal::open(tmp.path(), opts()).unwrap();
    }

    #[test]
    fn failed_write_is_refused_and_rolled_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        for i in 1..=5 {
            wal.append_blocking(payload(i)).unwrap();
        }
        let len = fs::metadata(&segment_files(tmp.path())[0]).unwrap().len();
        let bytes = wal.wal_bytes();
        wal.shared.faults.fail_write.store(true, Ordering::Release);
        match wal.append_blocking(vec![1u8; 1000]) {
            Err(Error::WalIo { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::StorageFull);
            }
            other => panic!("expected WalIo, got {other:?}"),
        }
        // Rolled back on disk and in the accounting; the log goes on.
        assert_eq!(
            fs::metadata(&segment_files(tmp.path())[0]).unwrap().len(),
            len
        );
        assert_eq!(wal.wal_bytes(), bytes);
        assert_eq!(wal.shared.accounted.load(Ordering::Acquire), bytes);
        let seq = wal.append_blocking(payload(6)).unwrap();
        assert!(seq > 5);
        drop(wal);
        let (wal, replay) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        assert_eq!(wal.recovery().torn_tails, 0);
        let entries = replay_all(replay);
        assert_eq!(entries.len(), 6);
        assert_eq!(entries[5].seq, seq);
        assert_eq!(entries[5].payload, payload(6));
    }

    #[test]
    fn failed_fsync_stops_the_log_until_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        for i in 1..=3 {
            wal.append_blocking(payload(i)).unwrap();
        }
        wal.shared.faults.fail_fsync.store(true, Ordering::Release);
        assert!(matches!(
            wal.append_blocking(payload(4)),
            Err(Error::WalIo { .. })
        ));
        assert!(matches!(
            wal.append_blocking(payload(4)),
            Err(Error::WalFailed { .. })
        ));
        assert!(matches!(wal.close_blocking(), Err(Error::WalFailed { .. })));
        drop(wal);
        let (wal, replay) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
        assert_prefix(&replay_all(replay), 3);
        // The refused entry is not in the log; its seq was never handed out.
        assert_eq!(wal.append_blocking(payload(5)).unwrap(), 4);
    }

    #[test]
    fn valid_frame_scan_finds_frames_and_ignores_noise() {
        let mut buf = vec![0u8; 37];
        let at = buf.len() as u64;
        encode_entry(&mut buf, 12, b"hello");
        let found = valid_frames_after(&buf, 10);
        assert_eq!(found.first_offset, Some(at));
        assert_eq!(found.max_seq, 12);
        // Below the floor: not plausible.
        assert_eq!(valid_frames_after(&buf, 12).first_offset, None);
        assert_eq!(valid_frames_after(&[0u8; 4096], 0).first_offset, None);
    }
}
