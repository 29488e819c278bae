//! Counters of alerting, rendered in the Prometheus text format by the admin endpoint.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Alerting counters (per rule where it helps), shared by the engine and delivery.
#[derive(Debug)]
pub struct AlertMetrics {
    rules: Vec<Arc<str>>,
    fired: Vec<AtomicU64>,
    suppressed: Vec<AtomicU64>,
    rule_errors: Vec<AtomicU64>,
    keys: AtomicU64,
    keys_untracked: AtomicU64,
    pub(crate) webhook_delivered: AtomicU64,
    pub(crate) webhook_retries: AtomicU64,
    pub(crate) webhook_failed: AtomicU64,
    pub(crate) webhook_dropped: AtomicU64,
    pub(crate) table_written: AtomicU64,
    pub(crate) table_dropped: AtomicU64,
    pub(crate) table_errors: AtomicU64,
}

fn zeros(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl AlertMetrics {
    pub(crate) fn new(rules: Vec<Arc<str>>) -> Self {
        let n = rules.len();
        Self {
            rules,
            fired: zeros(n),
            suppressed: zeros(n),
            rule_errors: zeros(n),
            keys: AtomicU64::new(0),
            keys_untracked: AtomicU64::new(0),
            webhook_delivered: AtomicU64::new(0),
            webhook_retries: AtomicU64::new(0),
            webhook_failed: AtomicU64::new(0),
            webhook_dropped: AtomicU64::new(0),
            table_written: AtomicU64::new(0),
            table_dropped: AtomicU64::new(0),
            table_errors: AtomicU64::new(0),
        }
    }

    pub(crate) fn fired(&self, rule: usize) {
        self.fired[rule].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn suppressed(&self, rule: usize) {
        self.suppressed[rule].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn rule_error(&self, rule: usize) {
        self.rule_errors[rule].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn key_untracked(&self) {
        self.keys_untracked.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set_keys(&self, n: u64) {
        self.keys.store(n, Ordering::Relaxed);
    }

    /// Alerts raised by rule `name` (after suppression).
    pub fn fired_total(&self, name: &str) -> u64 {
        self.per_rule(&self.fired, name)
    }

    /// Alerts of rule `name` held back by suppression.
    pub fn suppressed_total(&self, name: &str) -> u64 {
        self.per_rule(&self.suppressed, name)
    }

    fn per_rule(&self, v: &[AtomicU64], name: &str) -> u64 {
        self.rules
            .iter()
            .position(|r| &**r == name)
            .map_or(0, |i| v[i].load(Ordering::Relaxed))
    }

    /// Webhook deliveries that succeeded.
    pub fn webhook_delivered(&self) -> u64 {
        self.webhook_delivered.load(Ordering::Relaxed)
    }
    /// Alerts given up after every webhook attempt failed.
    pub fn webhook_failed(&self) -> u64 {
        self.webhook_failed.load(Ordering::Relaxed)
    }
    /// Alerts dropped because the webhook queue was full.
    pub fn webhook_dropped(&self) -> u64 {
        self.webhook_dropped.load(Ordering::Relaxed)
    }
    /// Alerts written to the `alerts` table.
    pub fn table_written(&self) -> u64 {
        self.table_written.load(Ordering::Relaxed)
    }

    /// Appends the counters in the Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String) {
        let mut per_rule = |name: &str, help: &str, v: &[AtomicU64]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (rule, c) in self.rules.iter().zip(v) {
                let _ = writeln!(
                    out,
                    "{name}{{rule=\"{}\"}} {}",
                    rule.replace('\\', "\\\\").replace('"', "\\\""),
                    c.load(Ordering::Relaxed)
                );
            }
        };
        per_rule(
            "genai_audit_alerts_fired_total",
            "Alerts raised (after suppression).",
            &self.fired,
        );
        per_rule(
            "genai_audit_alerts_suppressed_total",
            "Alerts held back by a rule's suppression window.",
            &self.suppressed,
        );
        per_rule(
            "genai_audit_alerts_rule_errors_total",
            "Records on which a CEL rule failed to evaluate (e.g. comparing null).",
            &self.rule_errors,
        );
        let counters: [(&str, &str, &AtomicU64); 8] = [
            (
                "genai_audit_alerts_keys_untracked_total",
                "Records not counted by windowed/budget rules because max_keys was reached.",
                &self.keys_untracked,
            ),
            (
                "genai_audit_alerts_webhook_delivered_total",
                "Alerts the webhook accepted (2xx).",
                &self.webhook_delivered,
            ),
            (
                "genai_audit_alerts_webhook_retries_total",
                "Webhook attempts retried after an error or timeout.",
                &self.webhook_retries,
            ),
            (
                "genai_audit_alerts_webhook_failed_total",
                "Alerts given up after max_attempts webhook attempts.",
                &self.webhook_failed,
            ),
            (
                "genai_audit_alerts_webhook_dropped_total",
                "Alerts dropped because the webhook queue was full.",
                &self.webhook_dropped,
            ),
            (
                "genai_audit_alerts_table_written_total",
                "Alerts written to the alerts table.",
                &self.table_written,
            ),
            (
                "genai_audit_alerts_table_dropped_total",
                "Alerts dropped before reaching the alerts table (queue full).",
                &self.table_dropped,
            ),
            (
                "genai_audit_alerts_table_errors_total",
                "Failed writes of the alerts table (retried at the next flush).",
                &self.table_errors,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP genai_audit_alerts_keys Keys held by windowed/budget rules (at the last sweep).\n# TYPE genai_audit_alerts_keys gauge\ngenai_audit_alerts_keys {}",
            self.keys.load(Ordering::Relaxed)
        );
    }
}
