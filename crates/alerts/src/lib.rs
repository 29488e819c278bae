//! # genai-audit-alerts
//!
//! Real-time compliance alerts on the ingest stream. Every record the collector accepts is
//! evaluated against configured rules, right after normalization; an alert is logged, POSTed to
//! a webhook and written to the store's `alerts` table.
//!
//! ## Rules
//!
//! Built-in kinds ([`RuleKind`]): request volume per key over a sliding window, latency,
//! error rate over a window with a minimum sample, large prompt, PII at or above a
//! classification, spend budget per day or month, unpriced model, content captured for a
//! tenant whose capture is disabled; and custom CEL expressions over the record's fields. Each
//! rule has a name, a [`Severity`], a key ([`KeyKind`]: tenant, user, service, model, always
//! within a tenant) and a suppression window: after an alert, the same rule and key stay quiet
//! for `suppress_secs`.
//!
//! Thresholds are exclusive: a rule fires when the observed value is *above* its threshold
//! (`max_requests = 100` fires on the 101st call), except `pii`, which fires *at or above*
//! `min_classification`.
//!
//! ## Main types
//!
//! - [`AlertsConfig`]: the `[alerts]` section, with [`AlertsConfig::validate`].
//! - [`Engine`]: compiled rules and their bounded state; [`Engine::evaluate`] is the hot path.
//! - [`Alerting`]: the engine plus delivery (webhook with retries and a bounded queue, the
//!   `alerts` table), as `genai-audit serve` runs it; budgets are rebuilt from the committed
//!   audit log at start.
//! - [`Alert`], [`AlertMetrics`].
//!
//! ## Example
//!
//! ```
//! use genai_audit_alerts::{AlertsConfig, Engine};
//!
//! let cfg: AlertsConfig = toml::from_str(r#"
//!     [[rules]]
//!     name = "slow-call"
//!     kind = "latency"
//!     max_ms = 30000
//!
//!     [[rules]]
//!     name = "openai-restricted"
//!     kind = "cel"
//!     severity = "critical"
//!     expression = 'provider == "openai" && data_classification == "restricted"'
//! "#).unwrap();
//! let engine = Engine::new(&cfg).unwrap();
//! let mut alerts = Vec::new();
//! engine.evaluate(&[], &mut alerts);
//! assert!(alerts.is_empty());
//! ```

#![deny(missing_docs)]

mod alert;
mod budget;
mod config;
mod deliver;
mod engine;
mod error;
mod expr;
mod fields;
mod metrics;
mod service;
#[cfg(test)]
mod testutil;
mod window;

pub use alert::Alert;
pub use budget::committed_spend;
pub use config::{
    AlertsConfig, KeyKind, Period, RuleConfig, RuleKind, Severity, WebhookConfig, WebhookFormat,
};
pub use engine::{Engine, Spend};
pub use error::{Error, Result};
pub use expr::CelPath;
pub use metrics::AlertMetrics;
pub use service::Alerting;
