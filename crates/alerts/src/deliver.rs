//! Delivery: the webhook (bounded queue, retries with backoff) and the `alerts` table (batched
//! Parquet files). Neither ever makes ingest wait: alerts are handed over with `try_send`, and
//! a full queue drops the alert and counts it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use genai_audit_store::StoreLocation;
use genai_audit_store::alerts::{AlertRow, write_alerts};
use tokio::sync::mpsc;

use crate::alert::Alert;
use crate::config::WebhookConfig;
use crate::metrics::AlertMetrics;

/// Longest wait between two webhook attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Posts each alert to the webhook, one at a time, retrying with exponential backoff. Runs
/// until the sender side is dropped and the queue is empty.
pub(crate) async fn webhook_worker(
    cfg: WebhookConfig,
    url: reqwest::Url,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Arc<Alert>>,
    metrics: Arc<AlertMetrics>,
) {
    while let Some(alert) = rx.recv().await {
        let body = bytes::Bytes::from(alert.body(cfg.format));
        let mut backoff = Duration::from_millis(cfg.backoff_ms);
        for attempt in 1..=cfg.max_attempts {
            let sent = client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(cfg.timeout())
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(resp) if resp.status().is_success() => None,
                Ok(resp) => Some(format!("HTTP {}", resp.status())),
                Err(e) => Some(e.to_string()),
            };
            let Some(failure) = failure else {
                metrics.webhook_delivered.fetch_add(1, Ordering::Relaxed);
                break;
            };
            if attempt == cfg.max_attempts {
                metrics.webhook_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(alert = %alert.alert_id, rule = %alert.rule, attempts = attempt, error = %failure, "webhook delivery failed; giving up on this alert");
                break;
            }
            metrics.webhook_retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(alert = %alert.alert_id, attempt, error = %failure, retry_in = ?backoff, "webhook delivery failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Buffers alerts and writes them as Parquet every `every`, and once more when the sender
/// side is dropped. A failed write keeps the rows for the next flush.
pub(crate) async fn table_worker(
    loc: StoreLocation,
    collector_id: String,
    every: Duration,
    capacity: usize,
    mut rx: mpsc::Receiver<Alert>,
    metrics: Arc<AlertMetrics>,
) {
    let mut buf: Vec<AlertRow> = Vec::new();
    let mut seq: u64 = 0;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(alert) => {
                    if buf.len() >= capacity {
                        metrics.table_dropped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        buf.push(alert.to_row(&collector_id));
                    }
                }
                None => break,
            },
            _ = tick.tick() => flush(&loc, &collector_id, &mut seq, &mut buf, &metrics).await,
        }
    }
    flush(&loc, &collector_id, &mut seq, &mut buf, &metrics).await;
}

async fn flush(
    loc: &StoreLocation,
    collector_id: &str,
    seq: &mut u64,
    buf: &mut Vec<AlertRow>,
    metrics: &AlertMetrics,
) {
    if buf.is_empty() {
        return;
    }
    *seq += 1;
    match write_alerts(loc, collector_id, *seq, buf).await {
        Ok(keys) => {
            metrics
                .table_written
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            tracing::debug!(
                alerts = buf.len(),
                files = keys.len(),
                "wrote the alerts table"
            );
            buf.clear();
        }
        Err(e) => {
            metrics.table_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, alerts = buf.len(), "writing the alerts table failed; retrying at the next flush");
        }
    }
}
