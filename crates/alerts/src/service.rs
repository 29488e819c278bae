//! [`Alerting`]: the engine plus its delivery tasks, as the collector runs them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use genai_audit_core::AuditRecord;
use genai_audit_store::StoreLocation;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::alert::Alert;
use crate::config::AlertsConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::metrics::AlertMetrics;

/// Alerting on the ingest stream: [`Alerting::observe`] evaluates the rules on records and
/// hands the alerts to the log, the webhook queue and the table writer without waiting.
#[derive(Debug)]
pub struct Alerting {
    engine: Engine,
    webhook: Mutex<Option<mpsc::Sender<Arc<Alert>>>>,
    table: Mutex<Option<mpsc::Sender<Alert>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Alerting {
    /// Compiles the rules, rebuilds budget totals from the committed audit log of `loc` (as of
    /// `now_us`) and starts the delivery tasks (call inside a Tokio runtime).
    pub async fn start(
        cfg: &AlertsConfig,
        loc: StoreLocation,
        collector_id: &str,
        now_us: i64,
    ) -> Result<Self> {
        cfg.validate()?;
        let engine = Engine::new(cfg)?;
        if cfg
            .rules
            .iter()
            .any(|r| r.kind == crate::config::RuleKind::Budget)
        {
            let spend = crate::budget::committed_spend(&loc, now_us).await?;
            tracing::info!(
                records = spend.len(),
                "rebuilt alert budgets from this month's committed records"
            );
            engine.absorb_spend(&spend, now_us);
        }
        for (rule, path) in engine.cel_paths() {
            tracing::info!(rule = %rule, evaluation = ?path, "CEL alert rule compiled");
        }
        let metrics = engine.metrics().clone();
        let mut tasks = Vec::new();
        let webhook = match &cfg.webhook.url {
            Some(url) => {
                let url = reqwest::Url::parse(url).map_err(|e| Error::Config {
                    key: "alerts.webhook.url".into(),
                    reason: e.to_string(),
                })?;
                let client = reqwest::Client::builder()
                    .connect_timeout(cfg.webhook.timeout())
                    .build()
                    .map_err(Error::Client)?;
                let (tx, rx) = mpsc::channel(cfg.webhook.queue);
                tasks.push(tokio::spawn(crate::deliver::webhook_worker(
                    cfg.webhook.clone(),
                    url,
                    client,
                    rx,
                    metrics.clone(),
                )));
                Some(tx)
            }
            None => None,
        };
        let (tx, rx) = mpsc::channel(cfg.table_queue);
        tasks.push(tokio::spawn(crate::deliver::table_worker(
            loc,
            collector_id.to_owned(),
            Duration::from_secs(cfg.flush_secs),
            cfg.table_queue,
            rx,
            metrics,
        )));
        Ok(Self {
            engine,
            webhook: Mutex::new(webhook),
            table: Mutex::new(Some(tx)),
            tasks: Mutex::new(tasks),
        })
    }

    /// The rule engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The counters.
    pub fn metrics(&self) -> &AlertMetrics {
        self.engine.metrics()
    }

    /// Evaluates the rules on `records` and dispatches what fires. Never waits for delivery.
    pub fn observe(&self, records: &[AuditRecord]) {
        let mut alerts = Vec::new();
        self.engine.evaluate(records, &mut alerts);
        self.dispatch(alerts);
    }

    /// Evaluates the per-record rules on records completed by content that arrived separately
    /// (OTLP log records merged at flush; see [`Engine::evaluate_merged`]) and dispatches what
    /// fires.
    pub fn observe_merged(&self, before: &[AuditRecord], after: &[AuditRecord]) {
        let mut alerts = Vec::new();
        self.engine.evaluate_merged(before, after, &mut alerts);
        self.dispatch(alerts);
    }

    /// Hands alerts to the log, the webhook queue and the table writer, without waiting.
    fn dispatch(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let metrics = self.engine.metrics();
        let webhook = self.webhook.lock().unwrap_or_else(|p| p.into_inner());
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        for alert in alerts {
            tracing::warn!(
                target: "genai_audit::alert",
                rule = %alert.rule,
                severity = alert.severity.as_str(),
                tenant = %alert.tenant,
                key = %alert.key,
                record_id = %alert.record_ids.join(","),
                "{}",
                alert.message
            );
            if let Some(tx) = webhook.as_ref()
                && tx.try_send(Arc::new(alert.clone())).is_err()
            {
                metrics
                    .webhook_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(tx) = table.as_ref()
                && tx.try_send(alert).is_err()
            {
                metrics
                    .table_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Stops taking alerts, writes the buffered ones to the table and gives the webhook until
    /// `deadline` to drain its queue (what is left is abandoned and counted as failed).
    pub async fn shutdown(&self, deadline: Duration) {
        drop(
            self.webhook
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        drop(self.table.lock().unwrap_or_else(|p| p.into_inner()).take());
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let until = tokio::time::Instant::now() + deadline;
        for mut t in tasks {
            if tokio::time::timeout_at(until, &mut t).await.is_err() {
                tracing::warn!("alert delivery did not finish in time; abandoning it");
                t.abort();
            }
        }
    }
}
