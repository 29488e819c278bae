//! An alert, and the bodies it is delivered as.

use genai_audit_store::alerts::AlertRow;
use serde_json::json;

use crate::config::{KeyKind, RuleKind, Severity, WebhookFormat};

/// One alert raised by a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Unique id: the triggering record's id and the rule's position.
    pub alert_id: String,
    /// Name of the rule.
    pub rule: String,
    /// Kind of the rule.
    pub kind: RuleKind,
    /// Severity of the rule.
    pub severity: Severity,
    /// Tenant of the triggering record.
    pub tenant: String,
    /// What the rule counts per.
    pub key_kind: KeyKind,
    /// The key's value (`""` when the record has none).
    pub key: String,
    /// When it fired (the triggering record's ingest time), µs since the epoch.
    pub fired_at_us: i64,
    /// Observed value (count, ratio, ms, tokens, USD), if the rule has one.
    pub value: Option<f64>,
    /// Threshold it exceeded, if the rule has one.
    pub threshold: Option<f64>,
    /// Human-readable explanation.
    pub message: String,
    /// Ids of the records that triggered it.
    pub record_ids: Vec<String>,
}

impl Alert {
    /// `fired_at` as RFC 3339 (UTC, µs).
    pub fn fired_at(&self) -> String {
        chrono::DateTime::from_timestamp_micros(self.fired_at_us)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default()
    }

    /// The alert as a JSON object (the `json` webhook body).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "alert_id": self.alert_id,
            "rule": self.rule,
            "kind": self.kind.as_str(),
            "severity": self.severity.as_str(),
            "tenant": self.tenant,
            "key_kind": self.key_kind.as_str(),
            "key": self.key,
            "fired_at": self.fired_at(),
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "record_ids": self.record_ids,
        })
    }

    /// One line for chat and logs.
    pub fn summary(&self) -> String {
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!(" {} {}", self.key_kind.as_str(), self.key)
        };
        format!(
            "[{}] {}: tenant {}{key}: {}",
            self.severity.as_str(),
            self.rule,
            self.tenant,
            self.message
        )
    }

    /// The webhook body in `format`.
    pub fn body(&self, format: WebhookFormat) -> Vec<u8> {
        let v = match format {
            WebhookFormat::Json => self.to_json(),
            WebhookFormat::Slack => json!({
                "text": format!("genai-audit alert {}", self.summary()),
                "alert": self.to_json(),
            }),
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// The row of the `alerts` table.
    pub fn to_row(&self, collector_id: &str) -> AlertRow {
        AlertRow {
            alert_id: self.alert_id.clone(),
            tenant: self.tenant.clone(),
            fired_at_us: self.fired_at_us,
            rule: self.rule.clone(),
            kind: self.kind.as_str().to_owned(),
            severity: self.severity.as_str().to_owned(),
            key_kind: self.key_kind.as_str().to_owned(),
            key: self.key.clone(),
            value: self.value,
            threshold: self.threshold,
            message: self.message.clone(),
            record_ids: self.record_ids.clone(),
            collector_id: collector_id.to_owned(),
        }
    }
}
