//! Rewriting the committed audit log: the engine behind retention and erasure.
//!
//! A [`Maintainer`] loads the snapshot, asks an operation which files it must delete or rewrite
//! (from the manifest alone where it can, else from the Parquet footer: statistics and bloom
//! filters, a few small ranged reads), and then works through them in batches. Each batch is one
//! ordinary manifest commit under the collector id `maintenance`: `added` lists the rewritten
//! files, `removed` the files they replace or delete, `kind` and `reason` say why. The integrity
//! log signs these commits like any other, so a deletion verifies instead of looking like
//! tampering.
//!
//! ## One batch, and what a crash at each step leaves
//!
//! ```text
//! 1. intent   _maintenance/<collector>/<commit>-<run>.json   (create-only: the names it may write)
//! 2. files    audit_log/…/<collector>-c<commit>-<run>-<part>.parquet (not listed by any commit)
//! 3. commit   _manifest/<collector>/<commit>.json            (create-only: the atomic switch)
//! 4. checkpoint (integrity)
//! 5. delete the replaced files, then the intent
//! ```
//!
//! Queries read only files listed by commits, so until step 3 they see the old files and from
//! step 3 on the new ones: never both, never neither. A crash before step 3 leaves unlisted
//! files named in the intent; a crash after it leaves replaced files still on disk. The next
//! run first finishes every intent whose commit exists (deletes what that commit removed and the
//! intent's files it did not list) and then plans from the current snapshot, so the work is
//! completed, not repeated.
//!
//! ## Concurrent runs
//!
//! Commit numbers are claimed with create-only puts: two runs racing for the same number cannot
//! both win ([`crate::Error::CommitTaken`]). The loser deletes what it wrote, reloads the
//! snapshot and plans again (files the winner replaced are gone from the plan; the winner's
//! output is planned instead). File names carry a random run token, so the two never write the
//! same object. `compact` commits under its own collector id and must not run at the same time
//! on the same partitions (see docs/retention.md).

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StringArray};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};

use crate::commit::{MULTIPART_THRESHOLD, put_replacing_orphan};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::integrity::{IntegrityKey, PublishOptions, publish_checkpoint_with};
use crate::layout::{MAINTENANCE_DIR, rewrite_file_name, valid_collector_id};
use crate::location::StoreLocation;
use crate::manifest::{Commit, FileEntry, MANIFEST_VERSION, Snapshot, create_commit, read_commit};
use crate::parquet_file::{ParquetOptions, decode, encode, file_schema, sort};

mod compaction;
pub use compaction::{CompactOptions, CompactReport};

/// Collector id maintenance commits are made as, unless configured otherwise.
pub const DEFAULT_COLLECTOR_ID: &str = "maintenance";
/// Files one run deletes or rewrites at most, unless told otherwise.
pub const DEFAULT_MAX_FILES: usize = 10_000;
/// Files per commit: bounds the memory of a batch and the work a crash can leave half done.
pub const DEFAULT_BATCH_FILES: usize = 64;
/// Lost races in a row before a run gives up ([`Error::StaleSnapshot`]).
const MAX_RACES: u32 = 8;
/// Footers read at once while planning.
const CONCURRENT_FOOTERS: usize = 16;

/// How a maintenance run works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceOptions {
    /// Collector id of the commits (`maintenance.collector_id`).
    pub collector_id: String,
    /// Files deleted or rewritten per run at most (`maintenance.max_files`); the rest is left for
    /// the next run and reported as remaining.
    pub max_files: usize,
    /// Files per commit.
    pub batch_files: usize,
    /// Plan and count, change nothing.
    pub dry_run: bool,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        Self {
            collector_id: DEFAULT_COLLECTOR_ID.to_owned(),
            max_files: DEFAULT_MAX_FILES,
            batch_files: DEFAULT_BATCH_FILES,
            dry_run: false,
        }
    }
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Commit numbers written, in order.
    pub commits: Vec<u64>,
    /// Files whose footer was read to decide.
    pub footers_read: u64,
    /// Files whose rows were read.
    pub files_read: u64,
    /// Files removed without a replacement.
    pub files_deleted: u64,
    /// Files replaced by a rewritten file.
    pub files_rewritten: u64,
    /// Rows removed.
    pub rows_deleted: u64,
    /// Rows changed in place (pseudonymized).
    pub rows_changed: u64,
    /// Rows the operation would have removed or changed but a legal hold kept.
    pub rows_held: u64,
    /// Bytes of the files removed or replaced.
    pub bytes_removed: u64,
    /// Bytes of the rewritten files.
    pub bytes_written: u64,
    /// Files left for a later run (over `max_files`).
    pub files_remaining: u64,
    /// Replaced files that could not be deleted (kept in the intent for the next run; an S3
    /// Object Lock refuses such deletes until the object's retention ends).
    pub delete_failures: u64,
}

impl MaintenanceReport {
    fn merge(&mut self, o: &MaintenanceReport) {
        self.commits.extend(&o.commits);
        self.footers_read += o.footers_read;
        self.files_read += o.files_read;
        self.files_deleted += o.files_deleted;
        self.files_rewritten += o.files_rewritten;
        self.rows_deleted += o.rows_deleted;
        self.rows_changed += o.rows_changed;
        self.rows_held += o.rows_held;
        self.bytes_removed += o.bytes_removed;
        self.bytes_written += o.bytes_written;
        self.delete_failures += o.delete_failures;
    }
}

/// Progress of a run, for a progress bar.
pub trait Progress: Send + Sync {
    /// `files` files are planned (called again after a replan).
    fn planned(&self, files: u64) {
        let _ = files;
    }
    /// One planned file is done.
    fn file_done(&self) {}
}

impl Progress for () {}

/// What to do with one file, decided from what is known so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Triage {
    /// Nothing to do.
    Skip,
    /// Remove it whole, unread.
    Delete,
    /// Look at the footer ([`Operation::triage_footer`]).
    Footer,
    /// Read its rows ([`Operation::rewrite`]).
    Read,
}

/// A file's rows after an operation.
#[derive(Debug)]
pub(crate) struct Rewritten {
    /// The rows to keep (file schema; any order: the engine sorts).
    pub batch: RecordBatch,
    /// Rows dropped.
    pub rows_deleted: u64,
    /// Rows changed.
    pub rows_changed: u64,
    /// Rows a hold kept as they were.
    pub rows_held: u64,
}

/// A retention or erasure operation, as the engine sees it.
pub(crate) trait Operation: Sync {
    /// Commit kind (`retention`, `erasure`).
    fn kind(&self) -> &'static str;
    /// Commit reason.
    fn reason(&self) -> String;
    /// First decision, from the manifest entry alone.
    fn triage(&self, file: &FileEntry) -> Triage;
    /// Second decision, from the footer (only after [`Triage::Footer`]).
    fn triage_footer(&self, file: &FileEntry, meta: &ParquetMetaData) -> Triage {
        let _ = (file, meta);
        Triage::Read
    }
    /// A (column, value) the rows to change must have: files whose statistics and bloom
    /// filters exclude it are skipped unread.
    fn probe(&self) -> Option<(&'static str, &str)> {
        None
    }
    /// Checks run on planned files before anything is changed (legal holds).
    fn check_plan(&self, plan: &[(FileEntry, Triage)]) -> Result<()> {
        let _ = plan;
        Ok(())
    }
    /// The rows of one file after the operation.
    fn rewrite(&self, file: &FileEntry, batch: &RecordBatch) -> Result<Rewritten>;
}

/// Work in progress of one batch, written before its files so a crash can be cleaned up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    collector_id: String,
    commit: u64,
    run: String,
    kind: String,
    /// Files the batch may remove.
    candidates: Vec<String>,
    /// Names the batch may write.
    reserved: Vec<String>,
    created_at: String,
}

impl Intent {
    fn key(&self) -> String {
        format!(
            "{MAINTENANCE_DIR}/{}/{:020}-{}.json",
            self.collector_id, self.commit, self.run
        )
    }
}

/// Runs retention and erasure over a store.
#[derive(Debug, Clone)]
pub struct Maintainer {
    loc: StoreLocation,
    opts: MaintenanceOptions,
    parquet: ParquetOptions,
    /// Signs a checkpoint after each commit, so every deletion and rewrite is a signed leaf.
    integrity_key: Option<IntegrityKey>,
}

impl Maintainer {
    /// A maintainer of `loc`.
    pub fn new(loc: StoreLocation, opts: MaintenanceOptions) -> Result<Self> {
        if !valid_collector_id(&opts.collector_id) {
            return Err(Error::InvalidArgument(format!(
                "maintenance collector id {:?} must be 1-64 characters of A-Z a-z 0-9 . _ -",
                opts.collector_id
            )));
        }
        if opts.max_files == 0 || opts.batch_files == 0 {
            return Err(Error::InvalidArgument(
                "max_files and batch_files must be positive".into(),
            ));
        }
        Ok(Self {
            loc,
            opts,
            parquet: ParquetOptions::default(),
            integrity_key: None,
        })
    }

    /// Publish a signed integrity checkpoint after every commit, before the replaced files are
    /// deleted (without a key, commits stay pending until some later checkpoint of this
    /// collector id covers them).
    pub fn with_integrity_key(mut self, key: IntegrityKey) -> Self {
        self.integrity_key = Some(key);
        self
    }

    /// The store.
    pub fn location(&self) -> &StoreLocation {
        &self.loc
    }

    /// The options.
    pub fn options(&self) -> &MaintenanceOptions {
        &self.opts
    }

    /// Finishes the batches of earlier runs that stopped after their commit (deletes what the
    /// commit replaced) or before it (deletes the files they wrote once their commit number is
    /// taken). Runs at the start and end of every run; returns how many intents it closed.
    pub async fn recover(&self) -> Result<usize> {
        let prefix = self
            .loc
            .path(&format!("{MAINTENANCE_DIR}/{}", self.opts.collector_id));
        let metas: Vec<_> = self
            .loc
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| Error::object("list", prefix.as_ref(), e))?;
        let mut closed = 0;
        for meta in metas {
            let bytes = match self.loc.get_object(&meta.location).await {
                Ok(b) => b,
                // Finished by a concurrent run between the listing and now.
                Err(Error::ObjectStore {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            let intent: Intent = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
                key: meta.location.to_string(),
                reason: e.to_string(),
            })?;
            match read_commit(&self.loc, &intent.collector_id, intent.commit).await? {
                Some(commit) => {
                    tracing::info!(
                        commit = intent.commit,
                        run = intent.run,
                        "finishing an interrupted maintenance batch"
                    );
                    if self.finish(&commit, &intent).await? == 0 {
                        closed += 1;
                    }
                }
                // Still in flight in another run, or interrupted before its commit: its files
                // are unlisted and stay so; they are deleted once the number is taken.
                None => tracing::debug!(
                    commit = intent.commit,
                    run = intent.run,
                    "maintenance intent without a commit (yet)"
                ),
            }
        }
        Ok(closed)
    }

    /// Runs `op` to completion (or to `max_files`).
    pub(crate) async fn run<O: Operation>(
        &self,
        op: &O,
        progress: &dyn Progress,
    ) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport {
            dry_run: self.opts.dry_run,
            ..MaintenanceReport::default()
        };
        if !self.opts.dry_run {
            self.recover().await?;
        }
        let mut budget = self.opts.max_files;
        let mut races = 0;
        'plan: loop {
            let attempt = async {
                let snapshot = Snapshot::load(&self.loc).await?;
                let plan = self.plan(op, &snapshot, &mut report).await?;
                Ok::<_, Error>((snapshot, plan))
            };
            let (snapshot, mut plan) = match attempt.await {
                Ok(p) => p,
                Err(e) if lost_race(&e) => {
                    replan_after(&mut races, &e).await?;
                    continue 'plan;
                }
                Err(e) => return Err(e),
            };
            let mut next_commit = snapshot
                .collectors
                .get(&self.opts.collector_id)
                .map_or(1, |c| c.last_commit + 1);
            op.check_plan(&plan)?;
            report.files_remaining = plan.len().saturating_sub(budget) as u64;
            plan.truncate(budget);
            progress.planned(plan.len() as u64);
            for batch in plan.chunks(self.opts.batch_files) {
                match self.run_batch(op, batch, next_commit, progress).await {
                    Ok(done) => {
                        report.merge(&done);
                        if !done.commits.is_empty() {
                            next_commit += 1;
                        }
                        races = 0;
                        budget -= batch.len();
                    }
                    // Another run committed first (this number, or a replacement of a file we
                    // planned): nothing of this attempt is visible; plan again from its result.
                    Err(e) if lost_race(&e) => {
                        replan_after(&mut races, &e).await?;
                        continue 'plan;
                    }
                    Err(e) => return Err(e),
                }
            }
            break;
        }
        if !self.opts.dry_run {
            self.recover().await?;
        }
        Ok(report)
    }

    /// The files to delete or read, in key order.
    async fn plan<O: Operation>(
        &self,
        op: &O,
        snapshot: &Snapshot,
        report: &mut MaintenanceReport,
    ) -> Result<Vec<(FileEntry, Triage)>> {
        let mut plan = Vec::new();
        let mut footers = Vec::new();
        for f in snapshot.files.values() {
            match op.triage(f) {
                Triage::Skip => {}
                Triage::Footer => footers.push(f),
                t => plan.push((f.clone(), t)),
            }
        }
        report.footers_read += footers.len() as u64;
        // Futures collected first: a closure inside the stream would make the run's future
        // not provably `Send` (higher-ranked lifetimes), and callers spawn it.
        let reads: Vec<_> = footers.into_iter().map(|f| self.examine(op, f)).collect();
        let examined: Vec<(FileEntry, Triage)> = futures::stream::iter(reads)
            .buffer_unordered(CONCURRENT_FOOTERS)
            .try_collect()
            .await?;
        plan.extend(
            examined
                .into_iter()
                .filter(|(_, t)| matches!(t, Triage::Delete | Triage::Read)),
        );
        plan.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        Ok(plan)
    }

    /// Decides from the footer: statistics, then the probe's bloom filters.
    async fn examine<O: Operation>(&self, op: &O, f: &FileEntry) -> Result<(FileEntry, Triage)> {
        Ok((f.clone(), self.examine_footer(op, f).await?))
    }

    async fn examine_footer<O: Operation>(&self, op: &O, f: &FileEntry) -> Result<Triage> {
        let reader = StoreFile {
            store: self.loc.store.clone(),
            path: self.loc.path(&f.key),
            size: f.size,
        };
        let mut builder =
            ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(|e| match e {
                    ParquetError::External(inner) => {
                        match inner.downcast::<object_store::Error>() {
                            Ok(os) => Error::object("get", &f.key, *os),
                            Err(other) => Error::Parquet(format!("{}: {other}", f.key)),
                        }
                    }
                    e => Error::Parquet(format!("{}: {e}", f.key)),
                })?;
        let meta = Arc::clone(builder.metadata());
        let triage = op.triage_footer(f, &meta);
        let (Triage::Read, Some((column, value))) = (triage, op.probe()) else {
            return Ok(triage);
        };
        let Some(idx) = column_index(&meta, column) else {
            return Ok(Triage::Read);
        };
        for rg in 0..meta.num_row_groups() {
            if !may_contain(meta.row_group(rg).column(idx).statistics(), value) {
                continue;
            }
            match builder.get_row_group_column_bloom_filter(rg, idx).await {
                Ok(Some(bloom)) if !bloom.check(value) => continue,
                _ => return Ok(Triage::Read),
            }
        }
        Ok(Triage::Skip)
    }

    /// Commits `op`'s reason with no files (an erasure that found nothing is still on record).
    /// Returns the commit number.
    pub(crate) async fn commit_receipt<O: Operation>(&self, op: &O) -> Result<u64> {
        for _ in 0..MAX_RACES {
            let snapshot = Snapshot::load(&self.loc).await?;
            let n = snapshot
                .collectors
                .get(&self.opts.collector_id)
                .map_or(1, |c| c.last_commit + 1);
            let commit = Commit {
                version: MANIFEST_VERSION,
                collector_id: self.opts.collector_id.clone(),
                commit: n,
                kind: op.kind().to_owned(),
                wal_first: None,
                wal_last: None,
                added: Vec::new(),
                removed: Vec::new(),
                reason: Some(op.reason()),
                created_at: chrono::Utc::now().to_rfc3339(),
            };
            match create_commit(&self.loc, &commit).await {
                Ok(()) => return Ok(n),
                Err(Error::CommitTaken { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::StaleSnapshot {
            attempts: MAX_RACES,
        })
    }

    /// One batch: intent, files, commit, then [`Maintainer::finish`].
    async fn run_batch<O: Operation>(
        &self,
        op: &O,
        batch: &[(FileEntry, Triage)],
        commit_no: u64,
        progress: &dyn Progress,
    ) -> Result<MaintenanceReport> {
        let id = &self.opts.collector_id;
        let run = crate::random_token()?;
        let reserved: Vec<String> = batch
            .iter()
            .enumerate()
            .map(|(part, (f, _))| {
                let dir = f.key.rsplit_once('/').map_or("", |(d, _)| d);
                format!(
                    "{dir}/{}",
                    rewrite_file_name(id, commit_no, &run, part as u32)
                )
            })
            .collect();
        let intent = Intent {
            collector_id: id.clone(),
            commit: commit_no,
            run: run.clone(),
            kind: op.kind().to_owned(),
            candidates: batch.iter().map(|(f, _)| f.key.clone()).collect(),
            reserved: reserved.clone(),
            created_at: chrono::Utc::now().to_rfc3339(),
        };
        let dry = self.opts.dry_run;
        if !dry {
            self.put_intent(&intent).await?;
            failpoint::hit("maintenance:after_intent");
        }
        let (out, added, removed) = match self
            .rewrite_batch(op, batch, &reserved, commit_no, progress)
            .await
        {
            Ok(done) => done,
            Err(e) => {
                if !dry {
                    // Nothing is committed: what this batch wrote is ours to delete.
                    self.abandon(&intent).await;
                }
                return Err(e);
            }
        };
        if dry {
            return Ok(out);
        }
        self.commit_batch(op.kind(), op.reason(), &intent, out, added, removed)
            .await
    }

    /// Deletes every object an uncommitted batch may have written, then its intent.
    async fn abandon(&self, intent: &Intent) {
        for key in &intent.reserved {
            self.delete_quietly(key).await;
        }
        self.delete_quietly(&intent.key()).await;
    }

    /// Reads, transforms and (unless dry) writes the files of one batch.
    async fn rewrite_batch<O: Operation>(
        &self,
        op: &O,
        batch: &[(FileEntry, Triage)],
        reserved: &[String],
        commit_no: u64,
        progress: &dyn Progress,
    ) -> Result<(MaintenanceReport, Vec<FileEntry>, Vec<String>)> {
        let dry = self.opts.dry_run;
        let mut out = MaintenanceReport::default();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for ((f, action), new_key) in batch.iter().zip(reserved) {
            match action {
                Triage::Delete => {
                    removed.push(f.key.clone());
                    out.files_deleted += 1;
                    out.rows_deleted += f.rows;
                    out.bytes_removed += f.size;
                }
                _ => {
                    let rows = self.read_rows(f).await?;
                    out.files_read += 1;
                    let rw = op.rewrite(f, &rows)?;
                    out.rows_held += rw.rows_held;
                    if rw.rows_deleted == 0 && rw.rows_changed == 0 {
                        progress.file_done();
                        continue;
                    }
                    out.rows_deleted += rw.rows_deleted;
                    out.rows_changed += rw.rows_changed;
                    out.bytes_removed += f.size;
                    removed.push(f.key.clone());
                    if rw.batch.num_rows() == 0 {
                        out.files_deleted += 1;
                    } else {
                        out.files_rewritten += 1;
                        if !dry {
                            let entry = self
                                .write_rewritten(f, &rw.batch, new_key, op.kind(), commit_no)
                                .await?;
                            out.bytes_written += entry.size;
                            added.push(entry);
                            if added.len() == 1 {
                                failpoint::hit("maintenance:after_first_file");
                            }
                        }
                    }
                }
            }
            progress.file_done();
        }
        Ok((out, added, removed))
    }

    /// Commits a written batch as `kind` for `reason`, then finishes it.
    async fn commit_batch(
        &self,
        kind: &str,
        reason: String,
        intent: &Intent,
        mut out: MaintenanceReport,
        added: Vec<FileEntry>,
        removed: Vec<String>,
    ) -> Result<MaintenanceReport> {
        let id = &self.opts.collector_id;
        let commit_no = intent.commit;
        failpoint::hit("maintenance:after_files");
        if removed.is_empty() {
            // Nothing changed (bloom filter false positives, rows all held): no commit.
            self.delete_quietly(&intent.key()).await;
            return Ok(out);
        }
        let commit = Commit {
            version: MANIFEST_VERSION,
            collector_id: id.clone(),
            commit: commit_no,
            kind: kind.to_owned(),
            wal_first: None,
            wal_last: None,
            added,
            removed,
            reason: Some(reason),
            created_at: chrono::Utc::now().to_rfc3339(),
        };
        if let Err(e) = create_commit(&self.loc, &commit).await {
            // Lost the number: never listed, never will be, ours to delete. Any other error
            // may hide a commit that was written (a lost response): recovery decides later.
            if matches!(e, Error::CommitTaken { .. }) {
                self.abandon(intent).await;
            }
            return Err(e);
        }
        failpoint::hit("maintenance:after_commit");
        out.commits.push(commit_no);
        out.delete_failures += self.finish(&commit, intent).await?;
        tracing::info!(
            commit = commit_no,
            kind,
            removed = commit.removed.len(),
            added = commit.added.len(),
            "maintenance commit"
        );
        Ok(out)
    }

    /// After a commit: the integrity checkpoint, then the replaced files and the intent go.
    /// Returns how many replaced files could not be deleted (the intent then stays, so the next
    /// run tries again).
    async fn finish(&self, commit: &Commit, intent: &Intent) -> Result<u64> {
        // Sign before deleting: once the old files are gone, only a signed removal leaf shows
        // the deletion was intended. A failure here keeps the intent, so the next run (whose
        // recovery comes through here too) publishes and then deletes.
        if let Some(key) = &self.integrity_key {
            let opts = PublishOptions {
                reason: match &commit.reason {
                    Some(r) => format!("{} {r}", commit.kind),
                    None => commit.kind.clone(),
                },
                skip_if_empty: true,
            };
            publish_checkpoint_with(&self.loc, &self.opts.collector_id, key, &opts).await?;
        }
        let candidates: BTreeSet<&String> = intent.candidates.iter().collect();
        let mut failures = 0;
        for key in commit.removed.iter().filter(|k| candidates.contains(k)) {
            match self.loc.store.delete(&self.loc.path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    failures += 1;
                    tracing::warn!(key, error = %e, "could not delete a replaced file (it is no longer listed); the next run retries");
                }
            }
        }
        failpoint::hit("maintenance:after_delete");
        let listed: BTreeSet<&String> = commit.added.iter().map(|f| &f.key).collect();
        for key in intent.reserved.iter().filter(|k| !listed.contains(k)) {
            self.delete_quietly(key).await;
        }
        if failures == 0 {
            self.delete_quietly(&intent.key()).await;
        }
        Ok(failures)
    }

    async fn put_intent(&self, intent: &Intent) -> Result<()> {
        let key = intent.key();
        let body = serde_json::to_vec_pretty(intent).map_err(|e| Error::Manifest {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.loc
            .store
            .put_opts(&self.loc.path(&key), PutPayload::from(body), opts)
            .await
            .map(|_| ())
            .map_err(|e| Error::object("put", &key, e))
    }

    /// Deletes an object that is listed nowhere; failing is harmless (it stays unlisted).
    async fn delete_quietly(&self, key: &str) {
        match self.loc.store.delete(&self.loc.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(key, error = %e, "could not delete an unlisted object"),
        }
    }

    /// Every row of a file, as one batch.
    async fn read_rows(&self, f: &FileEntry) -> Result<RecordBatch> {
        if f.schema_fingerprint != genai_audit_core::schema::schema_fingerprint() {
            return Err(Error::Parquet(format!(
                "{} was written with another schema version ({}): rewriting it is not supported by this version",
                f.key, f.schema_fingerprint
            )));
        }
        let batches = decode(self.loc.get_bytes(&f.key).await?)?;
        arrow_select::concat::concat_batches(&file_schema(), &batches).map_err(Error::parquet)
    }

    /// Sorts and encodes a rewritten file as the writer does, stores it under `key`, and checks
    /// it reads back with exactly the expected rows.
    async fn write_rewritten(
        &self,
        original: &FileEntry,
        batch: &RecordBatch,
        key: &str,
        kind: &str,
        commit: u64,
    ) -> Result<FileEntry> {
        let sorted = sort(batch)?;
        let encoded = encode(
            &sorted,
            &self.opts.collector_id,
            &format!("{kind}:{commit}"),
            &self.parquet,
        )?;
        put_replacing_orphan(&self.loc, key, &encoded, MULTIPART_THRESHOLD).await?;
        let back = decode(self.loc.get_bytes(key).await?)?;
        if record_ids(&back)? != record_ids(std::slice::from_ref(&sorted))? {
            return Err(Error::Parquet(format!(
                "rewritten file {key} does not read back with the expected rows: not committed"
            )));
        }
        Ok(FileEntry {
            key: key.to_owned(),
            size: encoded.bytes.len() as u64,
            rows: encoded.rows,
            sha256: encoded.sha256,
            tenant: original.tenant.clone(),
            dt: original.dt.clone(),
            min_start_time_us: encoded.min_start_us,
            max_start_time_us: encoded.max_start_us,
            schema_fingerprint: genai_audit_core::schema::schema_fingerprint(),
        })
    }
}

/// After losing race `e`: counts it and gives up after [`MAX_RACES`] in a row
/// ([`Error::StaleSnapshot`]); else waits a random back-off before the caller plans again.
async fn replan_after(races: &mut u32, e: &Error) -> Result<()> {
    *races += 1;
    tracing::info!(races = *races, error = %e, "lost a race with another run: replanning");
    if *races >= MAX_RACES {
        return Err(Error::StaleSnapshot { attempts: *races });
    }
    back_off(*races).await;
    Ok(())
}

/// A random pause growing with the races lost, so the winner can get ahead instead of every run
/// replanning in lockstep.
async fn back_off(races: u32) {
    let mut b = [0u8; 2];
    let jitter = getrandom::fill(&mut b).map_or(500, |()| u64::from(u16::from_le_bytes(b)) % 1000);
    let ms = (jitter + 100) * u64::from(races.min(6));
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// Whether `e` means another run changed the store under this one: the commit number was taken,
/// or a planned file was replaced (and deleted) meanwhile. Either way, plan again.
fn lost_race(e: &Error) -> bool {
    matches!(
        e,
        Error::CommitTaken { .. }
            | Error::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }
    )
}

/// A committed file read by ranges: the footer, then only the bloom filters asked for.
struct StoreFile {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    size: u64,
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            // One ranged read holds the footer of a typical file.
            let meta = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        })
    }
}

/// Index of a top-level leaf column in the file's Parquet schema.
pub(crate) fn column_index(meta: &ParquetMetaData, name: &str) -> Option<usize> {
    meta.file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == name)
}

/// Whether a string column chunk with these statistics may hold `value`.
fn may_contain(stats: Option<&Statistics>, value: &str) -> bool {
    let Some(stats) = stats else { return true };
    match (stats.min_bytes_opt(), stats.max_bytes_opt()) {
        (Some(min), Some(max)) => min <= value.as_bytes() && value.as_bytes() <= max,
        _ => true,
    }
}

fn record_ids(batches: &[RecordBatch]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for b in batches {
        let col = b
            .column_by_name("record_id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| Error::Parquet("file lacks a string column record_id".into()))?;
        ids.extend((0..col.len()).map(|i| col.value(i).to_owned()));
    }
    ids.sort_unstable();
    Ok(ids)
}
