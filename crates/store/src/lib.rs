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
//! - [`alerts`]: the `alerts` table (compliance alerts raised on the ingest stream).

pub mod alerts;
pub mod commit;
mod error;
pub mod failpoint;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod parquet_file;
pub mod wal;
pub mod writer;

pub use commit::{CommitReport, Committer};
pub use error::{Error, Result};
pub use location::StoreLocation;
pub use writer::{
    FlushPolicy, FlushReport, Histogram, OpenReport, Writer, WriterConfig, WriterStats,
};
