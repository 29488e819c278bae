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
use crate::parquet_file::file_schema;

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
    /// Rows per output file at most. A group of files up to this many rows is merged in
    /// memory, so this also bounds the memory of a run.
    pub max_file_rows: usize,
}

/// What a compaction did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Partitions in which files were merged.
    pub partitions: u64,
    /// Files replaced.
    pub files_in: u64,
    /// Files written (one per group of merged files, one commit each).
    pub files_out: u64,
    /// Rows moved (unchanged) into the new files.
    pub rows: u64,
    /// Commit numbers written, in order.
    pub commits: Vec<u64>,
    /// Files of groups left for a later run (the run's `max_files` was reached).
    pub files_remaining: u64,
    /// Replaced files that could not be deleted (the next run retries).
    pub delete_failures: u64,
}

impl Maintainer {
    /// Merges the small files of every closed partition that has at least `opts.min_files`
    /// files. A partition's files are taken in key order and packed into groups of at most
    /// `opts.max_file_rows` rows; each group of two or more files becomes one file, in one
    /// commit. So a run holds one group's rows in memory, never a whole day, and files that
    /// are already full are left alone. The new file holds exactly the rows of the old ones
    /// (checked by reading it back before the commit). A group another run changed meanwhile
    /// is planned again from what that run left. A run replaces at most the run's `max_files`
    /// files (but always merges one group); the rest is counted in
    /// [`CompactReport::files_remaining`].
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
        let mut touched = std::collections::BTreeSet::new();
        if !self.opts.dry_run {
            self.recover().await?;
        }
        let mut races = 0;
        'plan: loop {
            let snapshot = Snapshot::load(&self.loc).await?;
            let groups = plan(&snapshot, opts);
            progress.planned(groups.iter().map(|g| g.len() as u64).sum());
            let mut next_commit = snapshot
                .collectors
                .get(&self.opts.collector_id)
                .map_or(1, |c| c.last_commit + 1);
            report.files_remaining = 0;
            let mut budget = self.opts.max_files.saturating_sub(report.files_in as usize);
            for files in &groups {
                if files.len() > budget && report.files_in > 0 {
                    report.files_remaining += files.len() as u64;
                    continue;
                }
                budget = budget.saturating_sub(files.len());
                let result = if self.opts.dry_run {
                    Ok((files.iter().map(|f| f.rows).sum(), 0))
                } else {
                    self.compact_group(files, next_commit).await
                };
                match result {
                    Ok((rows, delete_failures)) => {
                        report.delete_failures += delete_failures;
                        touched.insert((files[0].tenant.clone(), files[0].dt.clone()));
                        report.files_in += files.len() as u64;
                        report.files_out += 1;
                        report.rows += rows;
                        if !self.opts.dry_run {
                            report.commits.push(next_commit);
                            next_commit += 1;
                        }
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
        report.partitions = touched.len() as u64;
        if !self.opts.dry_run {
            self.recover().await?;
        }
        Ok(report)
    }

    /// One group: intent, the merged file, commit, then [`Maintainer::finish`]. Returns the rows
    /// moved and the replaced files that could not be deleted.
    async fn compact_group(&self, files: &[FileEntry], commit_no: u64) -> Result<(u64, u64)> {
        let Some(first) = files.first() else {
            return Ok((0, 0));
        };
        let id = &self.opts.collector_id;
        let run = crate::random_token()?;
        let dir = first.key.rsplit_once('/').map_or("", |(d, _)| d);
        let intent = Intent {
            collector_id: id.clone(),
            commit: commit_no,
            kind: COMPACTION_KIND.to_owned(),
            candidates: files.iter().map(|f| f.key.clone()).collect(),
            reserved: vec![format!(
                "{dir}/{}",
                rewrite_file_name(id, commit_no, &run, 0)
            )],
            run,
            created_at: chrono::Utc::now().to_rfc3339(),
        };
        self.put_intent(&intent).await?;
        failpoint::hit("maintenance:after_intent");
        let added = match self.merge(files, &intent).await {
            Ok(added) => added,
            Err(e) => {
                // Nothing is committed: what this group's run wrote is ours to delete.
                self.abandon(&intent).await;
                return Err(e);
            }
        };
        let rows = added.rows;
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
                vec![added],
                removed,
            )
            .await?;
        tracing::info!(
            tenant = first.tenant,
            dt = first.dt,
            files_in = files.len(),
            rows,
            commit = commit_no,
            "compacted"
        );
        Ok((rows, done.delete_failures))
    }

    /// Reads every file of the group, sorts the rows as the writer does and writes them to the
    /// intent's reserved name; the file is read back and checked against its rows.
    async fn merge(&self, files: &[FileEntry], intent: &Intent) -> Result<FileEntry> {
        let (Some(first), Some(key)) = (files.first(), intent.reserved.first()) else {
            return Err(Error::InvalidArgument("an empty compaction group".into()));
        };
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
                "{}: the files hold {} rows, their manifest entries {rows_in}: not compacted",
                first.key,
                merged.num_rows()
            )));
        }
        // `write_rewritten` sorts, encodes, stores and checks that the file reads back with
        // exactly these rows (their record ids), so it holds the `rows_in` rows checked above.
        let added = self
            .write_rewritten(first, &merged, key, COMPACTION_KIND, intent.commit)
            .await?;
        failpoint::hit("maintenance:after_first_file");
        Ok(added)
    }
}

/// The groups to merge, in partition order: from each closed partition of the tenant asked
/// for with at least `min_files` files, the files (in key order) that are not full, packed
/// greedily into groups of at most `max_file_rows` rows; groups of one file are dropped.
fn plan(snapshot: &Snapshot, opts: &CompactOptions) -> Vec<Vec<FileEntry>> {
    let before = opts.before.format("%Y-%m-%d").to_string();
    let mut partitions: BTreeMap<(&str, &str), Vec<&FileEntry>> = BTreeMap::new();
    for f in snapshot.files.values() {
        // `dt` is YYYY-MM-DD, so text order is date order.
        if f.dt < before && opts.tenant.as_ref().is_none_or(|t| *t == f.tenant) {
            partitions.entry((&f.tenant, &f.dt)).or_default().push(f);
        }
    }
    let max = opts.max_file_rows as u64;
    let mut groups = Vec::new();
    for (_, mut files) in partitions {
        if files.len() < opts.min_files.max(2) {
            continue;
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        let mut group: Vec<FileEntry> = Vec::new();
        let mut rows = 0;
        for f in files.into_iter().filter(|f| f.rows < max) {
            if rows + f.rows > max {
                if group.len() >= 2 {
                    groups.push(std::mem::take(&mut group));
                }
                group.clear();
                rows = 0;
            }
            rows += f.rows;
            group.push(f.clone());
        }
        if group.len() >= 2 {
            groups.push(group);
        }
    }
    groups
}
