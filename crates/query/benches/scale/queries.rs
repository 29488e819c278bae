//! The measured workloads, as SQL both engines run.
//!
//! The compliance report is the one `genai-audit report compliance` computes: calls grouped
//! by (`tenant`, `call_id`) (`call_id` is never NULL: the normalizer already falls back to the
//! `record_id`) with the maximum of tokens and cost of each call, so a wrapper span sharing a
//! call's id counts once; then totals and latency percentiles, per model, top 10 users by
//! requests and by cost, per day, PII-flagged calls by type, calls by classification. The
//! grouping is materialized once (`calls`) and the seven aggregates read it, in both engines.
//!
//! Engine dialects differ in two places, written here as placeholders: `{from}` / `{to}`
//! (timestamps) and `PCT(x, p)` (approximate percentile).

use crate::generate::{DAY_US, DAY0_US};

/// One measured workload: optional `calls` materialization, then statements whose results
/// are collected (the last one's rows are compared across engines).
#[derive(Debug, Clone)]
pub struct Workload {
    /// Name in the results table.
    pub name: &'static str,
    /// The `calls` table to materialize first, if any.
    pub calls: Option<String>,
    /// Statements run in order.
    pub statements: Vec<String>,
    /// Target (ms, warm median), from the issue.
    pub goal_ms: Option<f64>,
}

/// Which engine a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// genai-audit's DataFusion session.
    DataFusion,
    /// DuckDB.
    DuckDb,
}

fn timestamp(us: i64, dialect: Dialect) -> String {
    let t = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    match dialect {
        Dialect::DataFusion => format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%SZ")),
        Dialect::DuckDb => format!("TIMESTAMPTZ '{}'", t.format("%Y-%m-%d %H:%M:%S+00")),
    }
}

/// `sql` with the placeholders of `dialect` filled for the time range `[from_us, to_us)`.
pub fn render(sql: &str, dialect: Dialect, from_us: i64, to_us: i64) -> String {
    let pct = match dialect {
        Dialect::DataFusion => "approx_percentile_cont(",
        Dialect::DuckDb => "approx_quantile(",
    };
    sql.replace("{from}", &timestamp(from_us, dialect))
        .replace("{to}", &timestamp(to_us, dialect))
        .replace("PCT(", pct)
}

const CALLS: &str = "\
SELECT tenant, call_id,
       max(user_id) AS user_id,
       max(request_model) AS model,
       max(dt) AS dt,
       max(duration_ms) AS duration_ms,
       max(input_tokens) AS input_tokens,
       max(output_tokens) AS output_tokens,
       max(total_cost_usd) AS cost,
       max(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS error,
       max(data_classification) AS classification
FROM audit_log
WHERE start_time >= {from} AND start_time < {to}
GROUP BY tenant, call_id";

const REPORT: &[&str] = &[
    "SELECT count(*) AS requests, count(DISTINCT user_id) AS users, \
            count(DISTINCT model) AS models, sum(input_tokens) AS input_tokens, \
            sum(output_tokens) AS output_tokens, sum(cost) AS cost, \
            avg(duration_ms) AS latency_avg, PCT(duration_ms, 0.5) AS p50, \
            PCT(duration_ms, 0.95) AS p95, PCT(duration_ms, 0.99) AS p99, \
            sum(error) AS errors, avg(error) AS error_rate \
     FROM calls",
    "SELECT model, count(*) AS requests, sum(input_tokens) AS input_tokens, \
            sum(output_tokens) AS output_tokens, sum(cost) AS cost, \
            avg(duration_ms) AS latency_avg, PCT(duration_ms, 0.95) AS p95 \
     FROM calls GROUP BY model ORDER BY model",
    "SELECT user_id, count(*) AS requests FROM calls \
     GROUP BY user_id ORDER BY requests DESC, user_id LIMIT 10",
    "SELECT user_id, sum(cost) AS cost FROM calls \
     GROUP BY user_id ORDER BY cost DESC, user_id LIMIT 10",
    "SELECT classification, count(*) AS calls FROM calls GROUP BY classification \
     ORDER BY classification",
    "SELECT pii_type, count(DISTINCT call_id) AS calls FROM ( \
       SELECT call_id, unnest(pii_types) AS pii_type FROM audit_log \
       WHERE pii_detected AND start_time >= {from} AND start_time < {to}) \
     GROUP BY pii_type ORDER BY pii_type",
    "SELECT dt, count(*) AS requests, sum(cost) AS cost, sum(error) AS errors FROM calls \
     GROUP BY dt ORDER BY dt",
];

/// The four workloads of the issue over a store of `days` days, for `subject`.
pub fn workloads(days: i64, subject: &str) -> Vec<(Workload, i64, i64)> {
    let all = (DAY0_US, DAY0_US + days * DAY_US);
    // A day in the middle of the range.
    let mid = DAY0_US + (days / 2) * DAY_US;
    let one = (mid, mid + DAY_US);
    let report = |name, goal_ms| Workload {
        name,
        calls: Some(CALLS.to_owned()),
        statements: REPORT.iter().map(|s| (*s).to_owned()).collect(),
        goal_ms,
    };
    vec![
        (
            Workload {
                name: "subject lookup (1 user, all days)",
                calls: None,
                statements: vec![format!(
                    "SELECT * FROM audit_log WHERE user_id = '{subject}' \
                     AND start_time >= {{from}} AND start_time < {{to}} ORDER BY start_time"
                )],
                goal_ms: Some(300.0),
            },
            all.0,
            all.1,
        ),
        (report("compliance report, 1 day", None), one.0, one.1),
        (
            report("compliance report, all days", Some(2000.0)),
            all.0,
            all.1,
        ),
        (
            Workload {
                name: "cost by model by day",
                calls: Some(CALLS.to_owned()),
                statements: vec![
                    "SELECT dt, model, count(*) AS requests, sum(cost) AS cost FROM calls \
                     GROUP BY dt, model ORDER BY dt, model"
                        .to_owned(),
                ],
                goal_ms: None,
            },
            all.0,
            all.1,
        ),
    ]
}
