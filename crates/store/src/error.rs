//! Errors of the store crate.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias for the store crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the store crate.
///
/// Which errors are worth retrying: [`Error::Backpressure`] always (after `retry_after`);
/// [`Error::WalIo`] from an append usually (the disk may have been full and may have been freed);
/// the others need a reopen, an operator, or a fix in the caller. [`Error::retry_after`] gives the
/// back-off for the first kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a write-ahead log file failed. For an append this means the entries
    /// were refused (never acknowledged); entries acknowledged before are not affected.
    #[error("write-ahead log I/O on {}", path.display())]
    WalIo {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error (`StorageFull` when the disk is full).
        #[source]
        source: io::Error,
    },
    /// The write-ahead log holds damaged data that recovery may not drop on its own (it is followed
    /// by valid entries, or it is in a segment other than the last). Opening with
    /// `WalOptions::repair` truncates the log at `offset`, dropping everything after it.
    #[error("write-ahead log corrupt in {} at offset {offset}: {reason}", path.display())]
    WalCorrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the first damaged entry (or 0 for a damaged segment header).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The write-ahead log is at its disk budget: the append was refused, not queued. Not fatal:
    /// back off for `retry_after` (space is freed when flushed entries are released) and retry.
    #[error(
        "write-ahead log is full ({wal_bytes} bytes of a {budget} byte budget): retry after {retry_after:?}"
    )]
    Backpressure {
        /// How long to wait before retrying.
        retry_after: Duration,
        /// Bytes the log holds or has queued now.
        wal_bytes: u64,
        /// The configured budget (`WalOptions::max_wal_bytes`).
        budget: u64,
    },
    /// One entry (or one batch) is larger than the log accepts.
    #[error("write-ahead log entry of {len} bytes exceeds the limit of {max} bytes")]
    EntryTooLarge {
        /// Size of the entry or batch, framing included.
        len: u64,
        /// The limit it exceeds.
        max: u64,
    },
    /// Another `Wal` (in this process or another) has the directory open.
    #[error("write-ahead log directory {} is in use by another writer", path.display())]
    WalLocked {
        /// The lock file.
        path: PathBuf,
    },
    /// The log was closed (or its writer thread is gone): nothing more can be appended.
    #[error("write-ahead log is closed")]
    WalClosed,
    /// The log stopped accepting writes after an I/O error it cannot safely recover from in place
    /// (a failed `fsync`, or a failed truncation after a failed write). Entries acknowledged before
    /// are durable; reopen the log (which runs recovery) to continue.
    #[error("write-ahead log failed and refuses writes until reopened: {reason}")]
    WalFailed {
        /// The original error.
        reason: String,
    },
    /// An argument or option is not valid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store URL cannot be used.
    #[error("store URL {url:?}: {reason}")]
    InvalidStoreUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A local file or directory operation failed (outside the WAL).
    #[error("I/O on {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An object store request failed (retried by the writer; reported by one-shot tools).
    #[error("object store {op} {key}")]
    ObjectStore {
        /// The operation (`put`, `get`, `list`, …).
        op: &'static str,
        /// The object key or prefix.
        key: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// Encoding or decoding Parquet failed.
    #[error("parquet: {0}")]
    Parquet(String),
    /// A commit manifest is unreadable or conflicts with another.
    #[error("manifest {key}: {reason}")]
    Manifest {
        /// The manifest object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Another process took this commit number first (two maintenance runs raced). Nothing of
    /// this attempt is visible; reload the snapshot and plan again.
    #[error("commit {commit} of {collector_id} was taken by another run: reload and retry")]
    CommitTaken {
        /// The collector id both runs commit as.
        collector_id: String,
        /// The commit number.
        commit: u64,
    },
    /// A maintenance run lost the race for a commit number this many times in a row: another
    /// run keeps committing. Nothing of the lost attempts is visible; run again later.
    #[error("gave up after losing {attempts} commit races to concurrent maintenance runs")]
    StaleSnapshot {
        /// Consecutive lost races.
        attempts: u32,
    },
    /// A legal hold forbids the deletion or rewrite that was asked for.
    #[error("refused: legal hold {hold_id} ({scope}, placed by {by}: {reason}) applies")]
    LegalHold {
        /// Id of the hold.
        hold_id: String,
        /// `tenant=…` or `tenant=… user=…`.
        scope: String,
        /// Who placed it.
        by: String,
        /// Why it was placed.
        reason: String,
    },
    /// No hold has this id, or it was already removed.
    #[error("no active legal hold {0}")]
    HoldNotFound(String),
    /// The writer stopped flushing after an error retrying cannot fix; everything acknowledged
    /// is still in the WAL and is replayed at the next start. Restart once the cause is fixed.
    #[error("the writer stopped flushing ({reason}); restart to replay the WAL")]
    WriterFailed {
        /// The error that stopped it.
        reason: String,
    },
    /// The final flush at shutdown did not finish in time; what it held stays in the WAL.
    #[error("shutdown flush did not finish within {after:?}; uncommitted records stay in the WAL")]
    ShutdownTimeout {
        /// The deadline.
        after: Duration,
    },
    /// An integrity signing or public key file is unusable.
    #[error("integrity key {}: {reason}", path.display())]
    IntegrityKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint of the integrity log is unreadable, or cannot be extended.
    #[error("checkpoint {key}: {reason}")]
    Checkpoint {
        /// The checkpoint object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// No inclusion proof can be given for a file.
    #[error("cannot prove {key}: {reason}")]
    NotProvable {
        /// The file key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The hash key file holds no usable key.
    #[error("hash key file {}", path.display())]
    HashKeyFile {
        /// The key file.
        path: PathBuf,
        /// Why the key is not usable.
        #[source]
        source: genai_audit_core::Error,
    },
    /// The hash key file can be read by others: refused, since the key protects every hash.
    #[error("the hash key file {} is readable by others (mode {mode:o}); run chmod 600 on it", path.display())]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Records could not be serialized for the WAL.
    #[error("record encoding: {0}")]
    Codec(String),
    /// The core crate refused the records (a bug: records and schema disagree).
    #[error(transparent)]
    Core(#[from] genai_audit_core::Error),
}

impl Error {
    /// How long to back off before retrying, for [`Error::Backpressure`]; `None` otherwise.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Backpressure { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub(crate) fn object(op: &'static str, key: &str, source: object_store::Error) -> Self {
        Error::ObjectStore {
            op,
            key: key.to_owned(),
            source,
        }
    }

    pub(crate) fn parquet(e: impl std::fmt::Display) -> Self {
        Error::Parquet(e.to_string())
    }

    pub(crate) fn wal_io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::WalIo {
            path: path.into(),
            source,
        }
    }
}
