//! `report cost --by model|user|service|tenant|day`: cost and tokens per group, each provider
//! call counted once ([`COST_SQL`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use genai_audit_core::Usd;
use serde::Serialize;

use super::Scope;
use super::compliance::calls_cte;
use super::rows::{Rows, collect};
use crate::QueryEngine;
use crate::error::Result;

/// Cost per group: `{key}` is the grouping expression over the `calls` CTE (see
/// [`CostBy::key_sql`]), `{scope}` the scope's filter. Columns: `key`, `requests`, `spans`,
/// `input_tokens`, `output_tokens`, `cost_usd` (DECIMAL(38,12)), `priced`, `errors`.
pub const COST_SQL: &str = concat!(
    "WITH ",
    calls_cte!(),
    "
SELECT {key} AS key,
       count(*) AS requests,
       sum(spans) AS spans,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cost_usd) AS cost_usd,
       count(cost_usd) AS priced,
       sum(error) AS errors
FROM calls
GROUP BY {key}"
);

/// What the cost report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostBy {
    /// Response model, else requested model.
    Model,
    /// End user.
    User,
    /// `service.name`.
    Service,
    /// Tenant.
    Tenant,
    /// UTC day of the call.
    Day,
}

impl CostBy {
    /// Every grouping.
    pub const ALL: [CostBy; 5] = [
        Self::Model,
        Self::User,
        Self::Service,
        Self::Tenant,
        Self::Day,
    ];

    /// Its name (`model`, …), also the key column's header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::User => "user",
            Self::Service => "service",
            Self::Tenant => "tenant",
            Self::Day => "day",
        }
    }

    /// The grouping expression over the `calls` CTE.
    pub fn key_sql(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::User => "user_id",
            Self::Service => "service",
            Self::Tenant => "tenant",
            Self::Day => "CAST(CAST(start_time AS DATE) AS VARCHAR)",
        }
    }

    /// [`COST_SQL`] for this grouping and `scope`.
    pub fn sql(self, scope: &Scope) -> String {
        scope.apply(&COST_SQL.replace("{key}", self.key_sql()))
    }
}

impl fmt::Display for CostBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grouping that is not one of `model`, `user`, `service`, `tenant`, `day`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot group cost by {0:?}: expected model, user, service, tenant or day")]
pub struct UnknownCostBy(pub String);

impl FromStr for CostBy {
    type Err = UnknownCostBy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCostBy(s.to_owned()))
    }
}

/// Cost per model, user, service, tenant or day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// Period and tenant covered.
    pub scope: Scope,
    /// When the report was computed.
    #[serde(with = "super::serde_time")]
    pub generated_at: DateTime<Utc>,
    /// The grouping.
    pub by: CostBy,
    /// One row per group: by day in date order, else highest cost first (then most requests,
    /// then key).
    pub rows: Vec<CostRow>,
    /// Sum of the rows (`key` is `None`).
    pub total: CostRow,
}

/// One group of the cost report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CostRow {
    /// The group's value (`None`: not known, e.g. calls without a user).
    pub key: Option<String>,
    /// Provider calls.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost of the priced calls, exact.
    pub cost_usd: Usd,
    /// Calls without a known cost (not in `cost_usd`).
    pub unpriced_requests: u64,
    /// Failed calls.
    pub errors: u64,
}

/// Computes the cost report of `scope` grouped `by` on `engine`.
pub async fn cost(engine: &QueryEngine, scope: &Scope, by: CostBy) -> Result<CostReport> {
    let batches = collect(engine, &by.sql(scope)).await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let r = Rows::new("cost", batch);
        let key = r.strings("key")?;
        let requests = r.counts("requests")?;
        let input = r.counts("input_tokens")?;
        let output = r.counts("output_tokens")?;
        let cost = r.usd("cost_usd")?;
        let priced = r.counts("priced")?;
        let errors = r.counts("errors")?;
        for i in 0..r.len() {
            rows.push(CostRow {
                key: key[i].clone(),
                requests: requests[i],
                input_tokens: input[i],
                output_tokens: output[i],
                cost_usd: cost[i],
                unpriced_requests: requests[i].saturating_sub(priced[i]),
                errors: errors[i],
            });
        }
    }
    if by == CostBy::Day {
        rows.sort_by(|a, b| a.key.cmp(&b.key));
    } else {
        rows.sort_by(|a, b| {
            b.cost_usd
                .cmp(&a.cost_usd)
                .then_with(|| b.requests.cmp(&a.requests))
                .then_with(|| a.key.is_none().cmp(&b.key.is_none()))
                .then_with(|| a.key.cmp(&b.key))
        });
    }
    let mut total = CostRow::default();
    for r in &rows {
        total.requests += r.requests;
        total.input_tokens += r.input_tokens;
        total.output_tokens += r.output_tokens;
        // i128 at 10⁻¹² USD overflows past 10²⁶ dollars: saturating is never reached.
        total.cost_usd = Usd::from_raw(total.cost_usd.raw().saturating_add(r.cost_usd.raw()));
        total.unpriced_requests += r.unpriced_requests;
        total.errors += r.errors;
    }
    Ok(CostReport {
        scope: scope.clone(),
        generated_at: super::now(),
        by,
        rows,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groupings_parse_and_fill_the_template() {
        for by in CostBy::ALL {
            assert_eq!(by.as_str().parse::<CostBy>(), Ok(by));
            let sql = by.sql(&Scope::default());
            assert!(!sql.contains('{'), "{sql}");
            assert!(sql.contains(&format!("SELECT {} AS key", by.key_sql())));
        }
        assert!("region".parse::<CostBy>().is_err());
    }
}
