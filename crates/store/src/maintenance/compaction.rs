//! Compaction: merging the small files of closed days into large ones, without changing a row.
//!
//! Compaction replaces files, as retention and erasure do, so it runs under the same protocol
//! and, by default, the same collector id (`maintenance`): intent, files, create-only commit,
//! checkpoint, deletion. Commit numbers of one collector id are claimed one at a time, so a
//! compaction and an erasure that planned from the same snapshot cannot both commit: the loser
//! deletes what it wrote, reloads and plans again from the winner's files. (Were they to
//! commit under different ids, both could replace the same file, and an erased row would come
//! back in the compacted copy.)

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{Intent, Maintainer, MaintenanceReport, Progress, lost_race, replan_after};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::layout::rewrite_file_name;
use crate::manifest::{FileEntry, Snapshot};
use crate::parquet_file::{file_schema, sort};

/// Commit kind of a compaction.
pub const COMPACTION_KIND: &str = "compaction";

/// Which partitions a compaction merges, and into what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// Only this tenant's partitions.
    pub tenant: Option<String>,
    /// Only days before this one (normally today, UTC: collectors may still write today).
    pub before: NaiveDate,
    /// Merge a partition only when it has at least this many files (at least 2).
    pub min_files: usize,
    /// Rows per output file at most.
    pub max_file_rows: usize,
}

/// What a compaction did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Partitions merged (one commit each).
    pub partitions: u64,
    /// Files replaced.
    pub files_in: u64,
    /// Files written.
    pub files_out: u64,
    /// Rows moved (unchanged) into the new files.
    pub rows: u64,
    /// Commit numbers written, in order.
    pub commits: Vec<u64>,
    /// Files of partitions left for a later run (the run's `max_files` was reached).
    pub files_remaining: u64,
    /// Replaced files that could not be deleted (the next run retries).
    pub delete_failures: u64,
}

impl Maintainer {
    /// Merges the files of every closed partition with at least `opts.min_files` files into
    /// files of `opts.max_file_rows` rows at most, one commit per partition. The new files
    /// hold exactly the rows of the old ones (checked by reading them back before the commit).
    /// A partition another run changed meanwhile is planned again from what that run left.
    /// A run replaces at most the run's `max_files` files (but always merges one partition);
    /// the partitions beyond are counted in [`CompactReport::files_remaining`].
    pub async fn compact(
        &self,
        opts: &CompactOptions,
        progress: &dyn Progress,
    ) -> Result<CompactReport> {
        if opts.max_file_rows == 0 {
            return Err(Error::InvalidArgument(
                "max_file_rows must be positive".into(),
            ));
        }
        let mut report = CompactReport {
            dry_run: self.opts.dry_run,
            ..CompactReport::default()
        };
        if !self.opts.dry_run {
            self.recover().await?;
        }
        let mut races = 0;
        'plan: loop {
            let snapshot = Snapshot::load(&self.loc).await?;
            let partitions = plan(&snapshot, opts);
            progress.planned(partitions.values().map(|f| f.len() as u64).sum());
            let mut next_commit = snapshot
                .collectors
                .get(&self.opts.collector_id)
                .map_or(1, |c| c.last_commit + 1);
            report.files_remaining = 0;
            let mut budget = self.opts.max_files.saturating_sub(report.files_in as usize);
            for files in partitions.values() {
                if files.len() > budget && report.partitions > 0 {
                    report.files_remaining += files.len() as u64;
                    continue;
                }
                budget = budget.saturating_sub(files.len());
                if self.opts.dry_run {
                    report.partitions += 1;
                    report.files_in += files.len() as u64;
                    report.rows += files.iter().map(|f| f.rows).sum::<u64>();
                    report.files_out += parts(files, opts.max_file_rows) as u64;
                    continue;
                }
                match self.compact_partition(files, opts, next_commit).await {
                    Ok(done) => {
                        report.partitions += 1;
                        report.files_in += files.len() as u64;
                        report.files_out += done.files_out;
                        report.rows += done.rows;
                        report.commits.push(next_commit);
                        report.delete_failures += done.delete_failures;
                        next_commit += 1;
                        races = 0;
                        for _ in files {
                            progress.file_done();
                        }
                    }
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

    /// One partition: intent, merged files, commit, then [`Maintainer::finish`].
    async fn compact_partition(
        &self,
        files: &[FileEntry],
        opts: &CompactOptions,
        commit_no: u64,
    ) -> Result<CompactReport> {
        let Some(first) = files.first() else {
            return Ok(CompactReport::default());
        };
        let id = &self.opts.collector_id;
        let run = crate::random_token()?;
        let dir = first.key.rsplit_once('/').map_or("", |(d, _)| d);
        let reserved: Vec<String> = (0..parts(files, opts.max_file_rows))
            .map(|part| format!("{dir}/{}", rewrite_file_name(id, commit_no, &run, part)))
            .collect();
        let intent = Intent {
            collector_id: id.clone(),
            commit: commit_no,
            run,
            kind: COMPACTION_KIND.to_owned(),
            candidates: files.iter().map(|f| f.key.clone()).collect(),
            reserved,
            created_at: chrono::Utc::now().to_rfc3339(),
        };
        self.put_intent(&intent).await?;
        failpoint::hit("maintenance:after_intent");
        let added = match self.merge(files, &intent, opts.max_file_rows).await {
            Ok(added) => added,
            Err(e) => {
                // Nothing is committed: what this partition's run wrote is ours to delete.
                self.abandon(&intent).await;
                return Err(e);
            }
        };
        let rows = added.iter().map(|f| f.rows).sum();
        let files_out = added.len() as u64;
        let reason = format!(
            "merged {} files of tenant={} dt={} ({rows} rows, unchanged)",
            files.len(),
            first.tenant,
            first.dt
        );
        let removed = intent.candidates.clone();
        let done = self
            .commit_batch(
                COMPACTION_KIND,
                reason,
                &intent,
                MaintenanceReport::default(),
                added,
                removed,
            )
            .await?;
        tracing::info!(
            tenant = first.tenant,
            dt = first.dt,
            files_in = files.len(),
            files_out,
            rows,
            commit = commit_no,
            "compacted"
        );
        Ok(CompactReport {
            rows,
            files_out,
            delete_failures: done.delete_failures,
            ..CompactReport::default()
        })
    }

    /// Reads every file, sorts the rows as the writer does and writes them to the intent's
    /// reserved names. Each file is read back and checked against its rows before it counts.
    async fn merge(
        &self,
        files: &[FileEntry],
        intent: &Intent,
        max_file_rows: usize,
    ) -> Result<Vec<FileEntry>> {
        let mut batches = Vec::with_capacity(files.len());
        for f in files {
            batches.push(self.read_rows(f).await?);
        }
        let rows_in: u64 = files.iter().map(|f| f.rows).sum();
        let merged = arrow_select::concat::concat_batches(&file_schema(), &batches)
            .map_err(Error::parquet)?;
        drop(batches);
        if merged.num_rows() as u64 != rows_in {
            return Err(Error::Parquet(format!(
                "{dir}: the files hold {} rows, their manifest entries {rows_in}: not compacted",
                merged.num_rows(),
                dir = intent.candidates.first().map_or("", String::as_str)
            )));
        }
        let sorted = sort(&merged)?;
        drop(merged);
        let mut added = Vec::with_capacity(intent.reserved.len());
        let chunks = (0..sorted.num_rows()).step_by(max_file_rows);
        for (offset, key) in chunks.zip(&intent.reserved) {
            let len = max_file_rows.min(sorted.num_rows() - offset);
            added.push(
                self.write_rewritten(
                    &files[0],
                    &sorted.slice(offset, len),
                    key,
                    COMPACTION_KIND,
                    intent.commit,
                )
                .await?,
            );
            if added.len() == 1 {
                failpoint::hit("maintenance:after_first_file");
            }
        }
        let rows_out: u64 = added.iter().map(|f| f.rows).sum();
        if rows_out != rows_in {
            return Err(Error::Parquet(format!(
                "compaction would change the row count ({rows_in} in, {rows_out} out): not committed"
            )));
        }
        Ok(added)
    }
}

/// The partitions to merge: closed, of the tenant asked for, with enough files.
fn plan(snapshot: &Snapshot, opts: &CompactOptions) -> BTreeMap<(String, String), Vec<FileEntry>> {
    let before = opts.before.format("%Y-%m-%d").to_string();
    let mut partitions: BTreeMap<(String, String), Vec<FileEntry>> = BTreeMap::new();
    for f in snapshot.files.values() {
        // `dt` is YYYY-MM-DD, so text order is date order.
        if f.dt < before && opts.tenant.as_ref().is_none_or(|t| *t == f.tenant) {
            partitions
                .entry((f.tenant.clone(), f.dt.clone()))
                .or_default()
                .push(f.clone());
        }
    }
    partitions.retain(|_, files| files.len() >= opts.min_files.max(2));
    for files in partitions.values_mut() {
        files.sort_by(|a, b| a.key.cmp(&b.key));
    }
    partitions
}

/// Output files for `files`' rows.
fn parts(files: &[FileEntry], max_file_rows: usize) -> u32 {
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let n = rows.div_ceil(max_file_rows.max(1) as u64).max(1);
    u32::try_from(n).unwrap_or(u32::MAX)
}
