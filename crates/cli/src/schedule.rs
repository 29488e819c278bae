//! Retention applied by `serve` itself (`maintenance.retention_interval_secs`), so the policy is
//! enforced without an external scheduler.
//!
//! Each run is what `genai-audit retention apply` does: the `[retention]` policy and the legal
//! holds in force, cutoff today (UTC), commits under `maintenance.collector_id`, a signed
//! checkpoint after each commit. A run that fails is logged and tried again at the next tick; it
//! never stops collecting. At shutdown a run in progress is abandoned: the maintenance protocol
//! leaves nothing half done that the next run does not finish or undo.

use std::time::Duration;

use genai_audit_store::StoreLocation;
use genai_audit_store::holds::HoldSet;
use genai_audit_store::integrity::IntegrityKey;
use genai_audit_store::maintenance::{Maintainer, MaintenanceOptions};
use genai_audit_store::retention::RetentionRun;
use tokio::task::JoinHandle;

use crate::config::Config;

/// The running schedule; [`RetentionSchedule::stop`] ends it.
pub(crate) struct RetentionSchedule {
    task: JoinHandle<()>,
}

impl RetentionSchedule {
    /// Starts applying retention at once and then every `maintenance.retention_interval_secs`;
    /// `None` when that is 0 (off).
    pub(crate) fn start(cfg: &Config, loc: StoreLocation, key: IntegrityKey) -> Option<Self> {
        let every = cfg.maintenance.retention_interval_secs;
        if every == 0 {
            return None;
        }
        let opts = MaintenanceOptions {
            collector_id: cfg.maintenance.collector_id.clone(),
            max_files: cfg.maintenance.max_files,
            ..MaintenanceOptions::default()
        };
        let maintainer = match Maintainer::new(loc, opts) {
            Ok(m) => m.with_integrity_key(key),
            Err(e) => {
                tracing::error!(error = %e, "scheduled retention disabled");
                return None;
            }
        };
        let policy = cfg.retention.clone();
        tracing::info!(
            every_secs = every,
            collector_id = %cfg.maintenance.collector_id,
            "applying retention on a schedule"
        );
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(every));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                apply_once(&maintainer, &policy).await;
            }
        });
        Some(Self { task })
    }

    /// Stops the schedule, abandoning a run in progress.
    pub(crate) async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn apply_once(maintainer: &Maintainer, policy: &genai_audit_core::RetentionPolicy) {
    let holds = match HoldSet::load(maintainer.location()).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "scheduled retention skipped: legal holds unreadable");
            return;
        }
    };
    let today = chrono::Utc::now().date_naive();
    let run = RetentionRun::new(policy.clone(), today, None, holds);
    match maintainer.apply_retention(&run, &()).await {
        Ok(r) => tracing::info!(
            commits = r.commits.len(),
            files_deleted = r.files_deleted,
            files_rewritten = r.files_rewritten,
            rows_deleted = r.rows_deleted,
            rows_held = r.rows_held,
            files_remaining = r.files_remaining,
            delete_failures = r.delete_failures,
            "scheduled retention applied"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "scheduled retention failed; retrying at the next interval")
        }
    }
}
