//! One-shot commits outside the WAL path: `import`.
//!
//! Re-runnable instead of journaled: an import that dies is simply run again (it skips records
//! already committed, by `record_id`). Files are named after the commit number they belong to,
//! so a retried attempt rewrites the same names rather than adding new ones. (Commits that
//! replace files — compaction, retention, erasure — go through
//! [`Maintainer`](crate::maintenance::Maintainer).)

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use genai_audit_core::AuditRecord;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::layout::{commit_file_name, day_of, partition_dir, valid_collector_id};
use crate::location::StoreLocation;
use crate::manifest::{Commit, FileEntry, MANIFEST_VERSION, Snapshot, write_commit};
use crate::parquet_file::{EncodedFile, ParquetOptions, encode, records_to_file_batch};

/// What a one-shot commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Commit number (0 when nothing was committed).
    pub commit: u64,
    /// Records written.
    pub records: u64,
    /// Records skipped because a committed file already holds their `record_id`.
    pub already_present: u64,
    /// Files added.
    pub files_added: Vec<FileEntry>,
}

/// Writes commits that only add files, for one collector id (e.g. `import`).
#[derive(Debug, Clone)]
pub struct Committer {
    loc: StoreLocation,
    collector_id: String,
    parquet: ParquetOptions,
    max_file_rows: usize,
}

impl Committer {
    /// A committer writing as `collector_id`.
    pub fn new(loc: StoreLocation, collector_id: &str) -> Result<Self> {
        if !valid_collector_id(collector_id) {
            return Err(Error::InvalidArgument(format!(
                "collector id {collector_id:?} must be 1-64 characters of A-Z a-z 0-9 . _ -"
            )));
        }
        Ok(Self {
            loc,
            collector_id: collector_id.to_owned(),
            parquet: ParquetOptions::default(),
            max_file_rows: 1_000_000,
        })
    }

    /// Caps the rows per file written.
    pub fn with_max_file_rows(mut self, rows: usize) -> Self {
        self.max_file_rows = rows.max(1);
        self
    }

    /// The store.
    pub fn location(&self) -> &StoreLocation {
        &self.loc
    }

    /// Commits `records`, skipping any whose `record_id` is already committed in its partition
    /// (so importing the same data twice adds nothing) or repeated within `records`.
    pub async fn commit_records(
        &self,
        records: Vec<AuditRecord>,
        kind: &str,
    ) -> Result<CommitReport> {
        let snapshot = Snapshot::load(&self.loc).await?;
        let groups = by_partition(records);
        let commit_no = snapshot
            .collectors
            .get(&self.collector_id)
            .map_or(1, |c| c.last_commit + 1);
        let mut report = CommitReport {
            commit: commit_no,
            ..CommitReport::default()
        };
        let mut part = 0u32;
        for ((tenant, day), mut rs) in groups {
            let dt = day.format("%Y-%m-%d").to_string();
            let existing = record_ids(&self.loc, &snapshot.partition(&tenant, &dt)).await?;
            let before = rs.len();
            let mut seen = HashSet::with_capacity(rs.len());
            rs.retain(|r| !existing.contains(&r.record_id) && seen.insert(r.record_id.clone()));
            report.already_present += (before - rs.len()) as u64;
            for chunk in rs.chunks(self.max_file_rows) {
                let batch = records_to_file_batch(chunk)?;
                let entry = self
                    .write_file(&batch, &tenant, day, commit_no, part, kind)
                    .await?;
                part += 1;
                report.records += entry.rows;
                report.files_added.push(entry);
            }
        }
        if report.files_added.is_empty() {
            report.commit = 0;
            return Ok(report);
        }
        self.write(commit_no, kind, &report.files_added).await?;
        Ok(report)
    }

    async fn write_file(
        &self,
        batch: &RecordBatch,
        tenant: &Arc<str>,
        day: NaiveDate,
        commit: u64,
        part: u32,
        kind: &str,
    ) -> Result<FileEntry> {
        let encoded = encode(
            batch,
            &self.collector_id,
            &format!("{kind}:{commit}"),
            &self.parquet,
        )?;
        let key = format!(
            "{}/{}",
            partition_dir(tenant, day),
            commit_file_name(&self.collector_id, commit, part)
        );
        put_replacing_orphan(&self.loc, &key, &encoded, MULTIPART_THRESHOLD).await?;
        Ok(file_entry(key, tenant, day, &encoded))
    }

    async fn write(&self, commit: u64, kind: &str, added: &[FileEntry]) -> Result<()> {
        let c = Commit {
            version: MANIFEST_VERSION,
            collector_id: self.collector_id.clone(),
            commit,
            kind: kind.to_owned(),
            wal_first: None,
            wal_last: None,
            added: added.to_vec(),
            removed: Vec::new(),
            reason: None,
            created_at: chrono::Utc::now().to_rfc3339(),
        };
        write_commit(&self.loc, &c).await?;
        Ok(())
    }
}

/// Records grouped by partition (tenant, UTC day of `start_time`), in partition order.
pub(crate) fn by_partition(
    records: Vec<AuditRecord>,
) -> BTreeMap<(Arc<str>, NaiveDate), Vec<AuditRecord>> {
    let mut groups: BTreeMap<(Arc<str>, NaiveDate), Vec<AuditRecord>> = BTreeMap::new();
    // The usual flush holds one partition: keep its vector rather than moving every record
    // (hundreds of bytes each) into a new one.
    let key = |r: &AuditRecord| (r.tenant.clone(), day_of(r.start_time_us));
    if let Some(first) = records.first().map(key)
        && records
            .iter()
            .all(|r| r.tenant == first.0 && day_of(r.start_time_us) == first.1)
    {
        groups.insert(first, records);
        return groups;
    }
    for r in records {
        groups
            .entry((r.tenant.clone(), day_of(r.start_time_us)))
            .or_default()
            .push(r);
    }
    groups
}

/// The manifest entry of an encoded file.
pub(crate) fn file_entry(
    key: String,
    tenant: &str,
    day: NaiveDate,
    encoded: &EncodedFile,
) -> FileEntry {
    FileEntry {
        key,
        size: encoded.bytes.len() as u64,
        rows: encoded.rows,
        sha256: encoded.sha256.clone(),
        tenant: tenant.to_owned(),
        dt: day.format("%Y-%m-%d").to_string(),
        min_start_time_us: encoded.min_start_us,
        max_start_time_us: encoded.max_start_us,
        schema_fingerprint: genai_audit_core::schema::schema_fingerprint(),
    }
}

/// Objects larger than this are uploaded in parts.
pub(crate) const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;

/// Create-only put (multipart above `multipart_threshold`); an existing object under a
/// not-yet-committed name is the orphan of an interrupted attempt and is replaced.
pub(crate) async fn put_replacing_orphan(
    loc: &StoreLocation,
    key: &str,
    file: &EncodedFile,
    multipart_threshold: usize,
) -> Result<()> {
    let path = loc.path(key);
    if file.bytes.len() > multipart_threshold {
        // Multipart uploads cannot be create-only; names are unique per collector and commit,
        // so the only object that can exist under this name is our own orphan.
        let upload = loc
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| Error::object("put_multipart", key, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, 8 * 1024 * 1024);
        w.put(file.bytes.clone());
        w.finish()
            .await
            .map_err(|e| Error::object("put_multipart", key, e))?;
        return Ok(());
    }
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match loc
        .store
        .put_opts(&path, PutPayload::from_bytes(file.bytes.clone()), create)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            tracing::warn!(
                key,
                "replacing an uncommitted file left by an interrupted attempt"
            );
            loc.store
                .put(&path, PutPayload::from_bytes(file.bytes.clone()))
                .await
                .map(|_| ())
                .map_err(|e| Error::object("put", key, e))
        }
        Err(e) => Err(Error::object("put", key, e)),
    }
}

/// Every `record_id` in `files`, decoding only that column.
pub async fn record_ids(loc: &StoreLocation, files: &[&FileEntry]) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for f in files {
        let bytes = loc.get_bytes(&f.key).await?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(Error::parquet)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["record_id"]);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(Error::parquet)?;
        for b in reader {
            ids.extend(column_strings(&b.map_err(Error::parquet)?, "record_id")?);
        }
    }
    Ok(ids)
}

fn column_strings(b: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let col = b
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Error::Parquet(format!("file lacks a string column {name}")))?;
    Ok((0..col.len())
        .filter(|i| col.is_valid(*i))
        .map(|i| col.value(i).to_owned())
        .collect())
}
