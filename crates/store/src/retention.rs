//! Retention: removing records whose retention has ended.
//!
//! A record may go once the cutoff day (today, UTC) is after both its `retention_until` (stamped
//! at ingest by the policy then in force) and the end the *current* policy gives it. Taking the
//! later of the two means a policy that was lengthened since ingest protects old records too,
//! and nothing is deleted earlier than promised when it was written. Records of a tenant under a
//! legal hold, or of a user under one, are kept whatever their dates.
//!
//! Whole files are removed unread when the manifest and the footer statistics of
//! `retention_until` prove every row expired; files with some expired rows are rewritten with
//! the others; files that the manifest's time range proves unexpired are not even opened.

use std::fmt::Write as _;

use arrow_array::TimestampMicrosecondArray;
use arrow_array::{Array, BooleanArray, Date32Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use genai_audit_core::{DataClassification, RetentionPolicy};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

use crate::error::{Error, Result};
use crate::holds::HoldSet;
use crate::maintenance::{
    Maintainer, MaintenanceReport, Operation, Progress, Rewritten, Triage, column_index,
};
use crate::manifest::FileEntry;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// One retention pass: the policy, the cutoff day and the holds in force.
#[derive(Debug, Clone)]
pub struct RetentionRun {
    policy: RetentionPolicy,
    cutoff: NaiveDate,
    cutoff_day: i32,
    tenant: Option<String>,
    holds: HoldSet,
}

impl RetentionRun {
    /// Removes rows whose retention ends before `cutoff` (normally today, UTC), of `tenant` only
    /// if given, except rows under `holds`.
    pub fn new(
        policy: RetentionPolicy,
        cutoff: NaiveDate,
        tenant: Option<String>,
        holds: HoldSet,
    ) -> Self {
        let cutoff_day = i32::try_from((cutoff - NaiveDate::default()).num_days()).unwrap_or(0);
        Self {
            policy,
            cutoff,
            cutoff_day,
            tenant,
            holds,
        }
    }

    /// Days the current policy keeps a record of `tenant` at least.
    fn min_days(&self, tenant: &str) -> i32 {
        let days = self
            .policy
            .tenants
            .get(tenant)
            .copied()
            .unwrap_or(self.policy.default_days);
        i32::try_from(days).unwrap_or(i32::MAX)
    }

    /// Days the current policy keeps a record of `tenant` at most (any classification).
    fn max_days(&self, tenant: &str) -> i32 {
        let class_max = self.policy.classifications.values().copied().max();
        let base = self.min_days(tenant);
        class_max.map_or(base, |c| base.max(i32::try_from(c).unwrap_or(i32::MAX)))
    }

    /// Whether a row may go: its end (the later of the stamp and the current policy) is before
    /// the cutoff.
    fn expired(&self, tenant: &str, stamp: Option<i32>, start_us: i64, class: &str) -> bool {
        let start_day = i32::try_from(start_us.div_euclid(MICROS_PER_DAY)).unwrap_or(i32::MAX);
        let policy_end = match DataClassification::parse(class) {
            Some(c) => self.policy.until(tenant, c, start_day),
            // Unknown classification: the longest any classification gets.
            None => start_day.saturating_add(self.max_days(tenant)),
        };
        stamp.unwrap_or(i32::MIN).max(policy_end) < self.cutoff_day
    }
}

fn day(us: i64) -> i32 {
    i32::try_from(us.div_euclid(MICROS_PER_DAY)).unwrap_or(i32::MAX)
}

impl Operation for RetentionRun {
    fn kind(&self) -> &'static str {
        "retention"
    }

    fn reason(&self) -> String {
        let p = &self.policy;
        let mut r = format!(
            "policy: retention_until and the current policy (default_days={}",
            p.default_days
        );
        for (t, d) in &p.tenants {
            let _ = write!(r, ", tenants.{t}={d}");
        }
        for (c, d) in &p.classifications {
            let _ = write!(r, ", classifications.{c}={d}");
        }
        let _ = write!(r, ") both end before cutoff={}", self.cutoff);
        if let Some(t) = &self.tenant {
            let _ = write!(r, " tenant={t}");
        }
        r
    }

    fn triage(&self, f: &FileEntry) -> Triage {
        if self.tenant.as_ref().is_some_and(|t| *t != f.tenant)
            || self.holds.tenant_wide(&f.tenant).is_some()
        {
            return Triage::Skip;
        }
        // Every row started at or after min_start and is kept at least min_days by the policy.
        if day(f.min_start_time_us).saturating_add(self.min_days(&f.tenant)) >= self.cutoff_day {
            return Triage::Skip;
        }
        Triage::Footer
    }

    fn triage_footer(&self, f: &FileEntry, meta: &ParquetMetaData) -> Triage {
        let Some(idx) = column_index(meta, "retention_until") else {
            return Triage::Read;
        };
        let (mut min, mut max, mut nulls) = (i32::MAX, i32::MIN, 0u64);
        for rg in meta.row_groups() {
            match rg.column(idx).statistics() {
                Some(Statistics::Int32(s)) => {
                    if let Some(v) = s.min_opt() {
                        min = min.min(*v);
                    }
                    if let Some(v) = s.max_opt() {
                        max = max.max(*v);
                    }
                    match s.null_count_opt() {
                        Some(n) => nulls += n,
                        None => return Triage::Read,
                    }
                }
                _ => return Triage::Read,
            }
        }
        let policy_low = day(f.min_start_time_us).saturating_add(self.min_days(&f.tenant));
        let policy_high = day(f.max_start_time_us).saturating_add(self.max_days(&f.tenant));
        // The earliest end of any row: rows without a stamp end with the policy alone.
        let low = if nulls > 0 {
            policy_low
        } else {
            min.max(policy_low)
        };
        if low >= self.cutoff_day {
            return Triage::Skip;
        }
        if max.max(policy_high) < self.cutoff_day {
            // All expired; read only if some user of the tenant is held.
            return if self.holds.has_user_holds(&f.tenant) {
                Triage::Read
            } else {
                Triage::Delete
            };
        }
        Triage::Read
    }

    fn rewrite(&self, f: &FileEntry, batch: &RecordBatch) -> Result<Rewritten> {
        let until = column::<Date32Array>(batch, "retention_until")?;
        let start = column::<TimestampMicrosecondArray>(batch, "start_time")?;
        let class = column::<StringArray>(batch, "data_classification")?;
        let user = column::<StringArray>(batch, "user_id")?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        let (mut deleted, mut held) = (0u64, 0u64);
        for i in 0..batch.num_rows() {
            let stamp = until.is_valid(i).then(|| until.value(i));
            let class = if class.is_valid(i) {
                class.value(i)
            } else {
                ""
            };
            let expired = self.expired(&f.tenant, stamp, start.value(i), class);
            let user = user.is_valid(i).then(|| user.value(i));
            let kept = !expired || self.holds.covering(&f.tenant, user).is_some();
            if expired && kept {
                held += 1;
            }
            if !kept {
                deleted += 1;
            }
            keep.push(kept);
        }
        let batch = arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(keep))
            .map_err(Error::parquet)?;
        Ok(Rewritten {
            batch,
            rows_deleted: deleted,
            rows_changed: 0,
            rows_held: held,
        })
    }
}

/// A column of `batch` as its concrete array type.
pub(crate) fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| Error::Parquet(format!("file lacks the column {name} of the audit schema")))
}

impl Maintainer {
    /// Deletes the files, and rewrites the files with some rows, whose records are past
    /// retention (see [`RetentionRun`]). Commit kind `retention`, its reason naming the policy
    /// and the cutoff.
    pub async fn apply_retention(
        &self,
        run: &RetentionRun,
        progress: &dyn Progress,
    ) -> Result<MaintenanceReport> {
        self.run(run, progress).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_later_of_stamp_and_current_policy_decides() {
        let policy = RetentionPolicy {
            default_days: 10,
            tenants: Default::default(),
            classifications: [("restricted".to_owned(), 100)].into(),
        };
        let cutoff = NaiveDate::from_ymd_opt(1970, 1, 31).unwrap(); // day 30
        let run = RetentionRun::new(policy, cutoff, None, HoldSet::default());
        let at = |d: i64| d * MICROS_PER_DAY;
        // Started day 5: policy end 15; no stamp or an earlier stamp → expired.
        assert!(run.expired("t", None, at(5), "internal"));
        assert!(run.expired("t", Some(12), at(5), "internal"));
        // A stamp promising longer keeps it.
        assert!(!run.expired("t", Some(30), at(5), "internal"));
        // The current policy keeps restricted rows 100 days, whatever the stamp said.
        assert!(!run.expired("t", Some(15), at(5), "restricted"));
        // Unknown classification: the longest rule.
        assert!(!run.expired("t", Some(15), at(5), "??"));
        // Day 19 + 10 = 29 < 30: expired; day 20: kept.
        assert!(run.expired("t", None, at(19), "internal"));
        assert!(!run.expired("t", None, at(20), "internal"));
        assert!(
            run.reason().contains("cutoff=1970-01-31"),
            "{}",
            run.reason()
        );
    }
}
