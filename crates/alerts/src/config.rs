//! The `[alerts]` configuration section: rules and delivery.
//!
//! Rules are a flat table each (`[[alerts.rules]]`) whose `kind` says which of the other keys it
//! needs; [`AlertsConfig::validate`] checks every rule (CEL expressions are compiled) and names
//! the offending key, `alerts.rules[<i>].<key>`, in its error.

use std::time::Duration;

use genai_audit_core::{DataClassification, Usd};
use serde::Deserialize;

use crate::error::{Error, Result};

/// `[alerts]`: compliance alerts evaluated on every ingested record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Most keys (users, services, …) tracked per key kind by windowed and budget rules; keys
    /// idle longer than their windows are swept, and keys beyond the bound are not counted
    /// (`genai_audit_alerts_keys_untracked_total`).
    pub max_keys: usize,
    /// Alerts are written to the `alerts` table at least this often (and at shutdown).
    pub flush_secs: u64,
    /// Alerts waiting to be written to the table; beyond it they are dropped and counted.
    pub table_queue: usize,
    /// Webhook delivery.
    pub webhook: WebhookConfig,
    /// The rules, evaluated in this order.
    pub rules: Vec<RuleConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            flush_secs: 10,
            table_queue: 10_000,
            webhook: WebhookConfig::default(),
            rules: Vec::new(),
        }
    }
}

/// `[alerts.webhook]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// URL receiving one `POST` per alert; unset: no webhook.
    pub url: Option<String>,
    /// Body format: `json` (the alert as a JSON object) or `slack` (`{"text": …}`, for Slack
    /// incoming webhooks and compatible receivers).
    pub format: WebhookFormat,
    /// Time allowed for one attempt (connect, send, answer), in milliseconds.
    pub timeout_ms: u64,
    /// Attempts per alert (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubles per retry, capped at 30 s.
    pub backoff_ms: u64,
    /// Alerts waiting for delivery; beyond it new alerts are dropped and counted
    /// (`genai_audit_alerts_webhook_dropped_total`): ingest never waits for the webhook.
    pub queue: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            format: WebhookFormat::Json,
            timeout_ms: 5_000,
            max_attempts: 5,
            backoff_ms: 500,
            queue: 1_000,
        }
    }
}

impl WebhookConfig {
    /// Timeout of one attempt.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Webhook body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The alert as a JSON object.
    Json,
    /// `{"text": "…"}` (Slack incoming webhooks, Mattermost, …), plus the alert under `alert`.
    Slack,
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Someone should look.
    Warning,
    /// Someone should act now.
    Critical,
}

impl Severity {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a rule counts (and suppresses) per. Keys are always within a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// The record's tenant.
    Tenant,
    /// `user_id` (records without one are not counted).
    User,
    /// `service_name` (records without one are not counted).
    Service,
    /// `response_model`, else `request_model` (records without either are not counted).
    Model,
}

impl KeyKind {
    /// All kinds, in index order.
    pub const ALL: [KeyKind; 4] = [
        KeyKind::Tenant,
        KeyKind::User,
        KeyKind::Service,
        KeyKind::Model,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Tenant => "tenant",
            KeyKind::User => "user",
            KeyKind::Service => "service",
            KeyKind::Model => "model",
        }
    }
}

/// Kind of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// More than `max_requests` provider calls per key within `window_secs`.
    RequestVolume,
    /// A provider call took more than `max_ms`.
    Latency,
    /// Over `window_secs`, at least `min_requests` provider calls per key and a share of errors
    /// above `max_error_ratio`.
    ErrorRate,
    /// A provider call with more than `max_input_tokens` input tokens.
    LargePrompt,
    /// PII found in a call classified `min_classification` or above.
    Pii,
    /// Spend per key over the current UTC `period` (`day` or `month`) above `max_usd`.
    Budget,
    /// A provider call whose model is not in the price table (cost unknown).
    UnpricedModel,
    /// Content (prompt or response text) captured for a tenant listed in `tenants`, whose
    /// capture is disabled (`"*"`: every tenant).
    ContentCaptured,
    /// A CEL `expression` over the record's fields is true.
    Cel,
}

impl RuleKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::RequestVolume => "request_volume",
            RuleKind::Latency => "latency",
            RuleKind::ErrorRate => "error_rate",
            RuleKind::LargePrompt => "large_prompt",
            RuleKind::Pii => "pii",
            RuleKind::Budget => "budget",
            RuleKind::UnpricedModel => "unpriced_model",
            RuleKind::ContentCaptured => "content_captured",
            RuleKind::Cel => "cel",
        }
    }
}

/// Budget period (UTC calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The UTC day of the call's start time.
    Day,
    /// The UTC month of the call's start time.
    Month,
}

/// `[[alerts.rules]]`: one rule. Which threshold keys apply depends on `kind`; a key the kind
/// does not use is refused, so a typo never silently disables a threshold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name (in alerts, logs and metrics).
    pub name: String,
    /// What the rule checks.
    pub kind: RuleKind,
    /// `info`, `warning` (default) or `critical`.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// What it counts and suppresses per: `tenant` (default), `user`, `service`, `model`.
    #[serde(default = "default_key")]
    pub key: KeyKind,
    /// After an alert, the same rule and key stay quiet this long (seconds, default 300).
    #[serde(default = "default_suppress")]
    pub suppress_secs: u64,
    /// Sliding window (`request_volume`, `error_rate`), seconds.
    pub window_secs: Option<u64>,
    /// `request_volume`: alert above this many calls in the window.
    pub max_requests: Option<u64>,
    /// `latency`: alert above this duration, milliseconds.
    pub max_ms: Option<f64>,
    /// `error_rate`: alert above this share of errors (0–1).
    pub max_error_ratio: Option<f64>,
    /// `error_rate`: no alert before this many calls in the window.
    pub min_requests: Option<u64>,
    /// `large_prompt`: alert above this many input tokens.
    pub max_input_tokens: Option<i64>,
    /// `pii`: alert when PII is found in a call classified at least this (`public`,
    /// `internal`, `confidential`, `restricted`).
    pub min_classification: Option<String>,
    /// `budget`: alert when the period's spend exceeds this, USD.
    pub max_usd: Option<f64>,
    /// `budget`: `day` or `month`.
    pub period: Option<Period>,
    /// `content_captured`: tenants whose content capture is disabled (`"*"`: all).
    pub tenants: Option<Vec<String>>,
    /// `cel`: the expression.
    pub expression: Option<String>,
}

fn default_severity() -> Severity {
    Severity::Warning
}
fn default_key() -> KeyKind {
    KeyKind::Tenant
}
fn default_suppress() -> u64 {
    300
}

/// A rule's thresholds, checked and typed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    RequestVolume {
        window_us: i64,
        max: u64,
    },
    Latency {
        max_ms: f64,
    },
    ErrorRate {
        window_us: i64,
        max_ratio: f64,
        min_requests: u64,
    },
    LargePrompt {
        max_tokens: i64,
    },
    Pii {
        min: DataClassification,
    },
    Budget {
        max: Usd,
        period: Period,
    },
    UnpricedModel,
    ContentCaptured {
        all: bool,
        tenants: Vec<String>,
    },
    Cel {
        expression: String,
    },
}

impl RuleConfig {
    /// Checks the rule's keys against its kind; `at` is its path (`alerts.rules[3]`).
    pub(crate) fn check(&self, at: &str) -> Result<Check> {
        let err = |key: &str, reason: String| Error::Config {
            key: format!("{at}.{key}"),
            reason: format!("rule {:?}: {reason}", self.name),
        };
        let kind = self.kind.as_str();
        // Keys this kind uses; any other threshold key set is a mistake.
        let uses: &[&str] = match self.kind {
            RuleKind::RequestVolume => &["window_secs", "max_requests"],
            RuleKind::Latency => &["max_ms"],
            RuleKind::ErrorRate => &["window_secs", "max_error_ratio", "min_requests"],
            RuleKind::LargePrompt => &["max_input_tokens"],
            RuleKind::Pii => &["min_classification"],
            RuleKind::Budget => &["max_usd", "period"],
            RuleKind::UnpricedModel => &[],
            RuleKind::ContentCaptured => &["tenants"],
            RuleKind::Cel => &["expression"],
        };
        let set: [(&str, bool); 11] = [
            ("window_secs", self.window_secs.is_some()),
            ("max_requests", self.max_requests.is_some()),
            ("max_ms", self.max_ms.is_some()),
            ("max_error_ratio", self.max_error_ratio.is_some()),
            ("min_requests", self.min_requests.is_some()),
            ("max_input_tokens", self.max_input_tokens.is_some()),
            ("min_classification", self.min_classification.is_some()),
            ("max_usd", self.max_usd.is_some()),
            ("period", self.period.is_some()),
            ("tenants", self.tenants.is_some()),
            ("expression", self.expression.is_some()),
        ];
        for (key, is_set) in set {
            if is_set && !uses.contains(&key) {
                return Err(err(key, format!("not a setting of a {kind} rule")));
            }
            if !is_set && uses.contains(&key) && key != "min_requests" {
                return Err(err(key, format!("required by a {kind} rule")));
            }
        }
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        let window = || -> Result<i64> {
            match self.window_secs {
                Some(s @ 1..=2_678_400) => Ok(s as i64 * 1_000_000),
                other => Err(err(
                    "window_secs",
                    format!("{other:?}: between 1 and 2678400 (31 days)"),
                )),
            }
        };
        let positive = |key: &str, v: Option<f64>| -> Result<f64> {
            match v {
                Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
                other => Err(err(key, format!("{other:?}: a number ≥ 0"))),
            }
        };
        Ok(match self.kind {
            RuleKind::RequestVolume => Check::RequestVolume {
                window_us: window()?,
                max: self.max_requests.unwrap_or(0),
            },
            RuleKind::Latency => Check::Latency {
                max_ms: positive("max_ms", self.max_ms)?,
            },
            RuleKind::ErrorRate => {
                let max_ratio = positive("max_error_ratio", self.max_error_ratio)?;
                if max_ratio >= 1.0 {
                    return Err(err(
                        "max_error_ratio",
                        format!("{max_ratio}: below 1 (a ratio above it can never be reached)"),
                    ));
                }
                Check::ErrorRate {
                    window_us: window()?,
                    max_ratio,
                    min_requests: self.min_requests.unwrap_or(1).max(1),
                }
            }
            RuleKind::LargePrompt => match self.max_input_tokens {
                Some(t) if t >= 0 => Check::LargePrompt { max_tokens: t },
                other => return Err(err("max_input_tokens", format!("{other:?}: ≥ 0"))),
            },
            RuleKind::Pii => {
                let name = self.min_classification.as_deref().unwrap_or_default();
                let min = DataClassification::parse(name).ok_or_else(|| {
                    err(
                        "min_classification",
                        format!("{name:?}: public, internal, confidential or restricted"),
                    )
                })?;
                Check::Pii { min }
            }
            RuleKind::Budget => {
                let usd = positive("max_usd", self.max_usd)?;
                let max = Usd::from_f64(usd)
                    .ok_or_else(|| err("max_usd", format!("{usd}: not an amount")))?;
                Check::Budget {
                    max,
                    period: self.period.unwrap_or(Period::Day),
                }
            }
            RuleKind::UnpricedModel => Check::UnpricedModel,
            RuleKind::ContentCaptured => {
                let tenants = self.tenants.clone().unwrap_or_default();
                if tenants.is_empty() {
                    return Err(err("tenants", "list at least one tenant, or \"*\"".into()));
                }
                Check::ContentCaptured {
                    all: tenants.iter().any(|t| t == "*"),
                    tenants,
                }
            }
            RuleKind::Cel => {
                let expression = self.expression.clone().unwrap_or_default();
                if expression.trim().is_empty() {
                    return Err(err("expression", "must not be empty".into()));
                }
                Check::Cel { expression }
            }
        })
    }
}

impl AlertsConfig {
    /// Checks every value and compiles every rule (CEL included), without I/O. Errors name the
    /// key (`alerts.rules[1].expression`).
    pub fn validate(&self) -> Result<()> {
        crate::engine::Engine::new(self).map(|_| ())?;
        if let Some(url) = &self.webhook.url {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(u) => {
                    return Err(Error::Config {
                        key: "alerts.webhook.url".into(),
                        reason: format!("{url:?}: scheme {:?} is not http or https", u.scheme()),
                    });
                }
                Err(e) => {
                    return Err(Error::Config {
                        key: "alerts.webhook.url".into(),
                        reason: format!("{url:?}: {e}"),
                    });
                }
            }
        }
        let positive = [
            ("alerts.max_keys", self.max_keys as u64),
            ("alerts.flush_secs", self.flush_secs),
            ("alerts.table_queue", self.table_queue as u64),
            ("alerts.webhook.timeout_ms", self.webhook.timeout_ms),
            (
                "alerts.webhook.max_attempts",
                u64::from(self.webhook.max_attempts),
            ),
            ("alerts.webhook.queue", self.webhook.queue as u64),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(Error::Config {
                    key: key.into(),
                    reason: "must be positive".into(),
                });
            }
        }
        Ok(())
    }
}
