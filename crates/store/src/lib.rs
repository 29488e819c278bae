//! # genai-audit-store
//!
//! Durable storage of audit records: a write-ahead log on local disk, partitioned Parquet on any
//! object store (local disk, S3, GCS, Azure), and the commit manifests that say which files make
//! up the audit log.
//!
//! - [`Writer`]: append records (acknowledged once durable in the WAL); they are flushed to
//!   Parquet by rows, bytes, age and on shutdown, and committed exactly once.
//! - [`StoreLocation`]: a store URL resolved to an `object_store`.
//! - [`manifest::Snapshot`]: the committed files, for readers.
//! - [`wal`]: the write-ahead log itself.
//! - [`maintenance::Maintainer`]: retention ([`retention`]) and erasure ([`erasure`]) as
//!   ordinary, bounded, resumable commits; [`holds`] keep records from both.
//! - [`integrity`]: signed checkpoints of every commit, and their verification.
//! - [`keys::load_or_create_hash_key`]: the content hash key kept in a 0600 file.
//! - [`alerts`]: the `alerts` table (compliance alerts raised on the ingest stream).

pub mod alerts;
mod buffer;
pub mod commit;
pub mod erasure;
mod error;
pub mod failpoint;
mod flush_thread;
pub mod holds;
pub mod integrity;
pub mod keys;
pub mod layout;
pub mod location;
pub mod maintenance;
pub mod manifest;
pub mod parquet_file;
pub mod retention;
pub mod wal;
pub mod writer;

pub use commit::{CommitReport, Committer};
pub use error::{Error, Result};
pub use location::StoreLocation;
pub use writer::{
    FlushPolicy, FlushReport, Histogram, MergeObserver, OpenReport, Writer, WriterConfig,
    WriterStats,
};

/// 8 random hex characters (names of maintenance runs, hold ids).
pub(crate) fn random_token() -> Result<String> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b)
        .map_err(|e| Error::InvalidArgument(format!("no system randomness: {e}")))?;
    Ok(const_hex::encode(b))
}
