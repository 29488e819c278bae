//! Retention policy: how long each record must be kept, stamped on it at ingest.
//!
//! The default keeps everything 400 days; overrides per tenant and per data classification apply,
//! and when several apply the longest wins (a record is kept as long as any rule requires).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::record::DataClassification;

/// Days kept when nothing else is configured.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;

/// The `[retention]` config section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Days a record is kept by default.
    #[serde(default = "default_days")]
    pub default_days: u32,
    /// Days per tenant (replaces the default for that tenant).
    #[serde(default)]
    pub tenants: BTreeMap<String, u32>,
    /// Days per data classification (`restricted = 2555` keeps restricted calls 7 years).
    #[serde(default)]
    pub classifications: BTreeMap<String, u32>,
}

fn default_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            default_days: DEFAULT_RETENTION_DAYS,
            tenants: BTreeMap::new(),
            classifications: BTreeMap::new(),
        }
    }
}

impl RetentionPolicy {
    /// Days to keep a record of `tenant` with `class`: the tenant's days (else the default),
    /// raised to the classification's days if those are longer.
    pub fn days_for(&self, tenant: &str, class: DataClassification) -> u32 {
        let base = self
            .tenants
            .get(tenant)
            .copied()
            .unwrap_or(self.default_days);
        let by_class = self
            .classifications
            .get(class.as_str())
            .copied()
            .unwrap_or(0);
        base.max(by_class)
    }

    /// Last day to keep a record that started on `start_day` (days since epoch).
    pub fn until(&self, tenant: &str, class: DataClassification, start_day: i32) -> i32 {
        let days = i32::try_from(self.days_for(tenant, class)).unwrap_or(i32::MAX);
        start_day.saturating_add(days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_applicable_rule_wins() {
        let p: RetentionPolicy = toml::from_str(
            "default_days = 400\n[tenants]\nacme = 30\n[classifications]\nrestricted = 2555\n",
        )
        .unwrap();
        assert_eq!(p.days_for("other", DataClassification::Internal), 400);
        assert_eq!(p.days_for("acme", DataClassification::Internal), 30);
        assert_eq!(p.days_for("acme", DataClassification::Restricted), 2555);
        assert_eq!(p.until("x", DataClassification::Internal, 100), 500);
    }
}
