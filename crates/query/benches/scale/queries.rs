//! The measured workloads.
//!
//! genai-audit runs the real report code: the compliance report is
//! [`report::compliance`](genai_audit_query::report::compliance) (what `genai-audit report
//! compliance` runs), cost by model by day is the report's `calls` CTE
//! ([`CALLS_CTE`](genai_audit_query::report::compliance::CALLS_CTE)) grouped by day and model.
//! DuckDB computes the same figures with SQL written for it: the calls grouped by (`tenant`,
//! `COALESCE(call_id, record_id)`) with the same rules (largest tokens, cost and duration of the
//! call's spans, most sensitive classification, …) materialized once as a temporary table, then
//! the report's aggregates over it, percentiles exact (`quantile_cont`) as in the report.
//!
//! Engine dialects differ in the timestamps, written here as the placeholders `{from}` / `{to}`.

use genai_audit_query::report::compliance::CALLS_CTE;

use crate::generate::{DAY_US, DAY0_US};

/// How genai-audit runs a workload.
#[derive(Debug, Clone)]
pub enum Engine {
    /// Statements, optionally after materializing a `calls` table.
    Sql {
        /// The `calls` table to materialize first, if any.
        calls: Option<String>,
        /// Statements run in order (the last one's rows are compared across engines).
        statements: Vec<String>,
    },
    /// `report::compliance` over the workload's period; compared by its request count.
    ComplianceReport,
}

/// One measured workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Name in the results table.
    pub name: &'static str,
    /// What genai-audit runs.
    pub datafusion: Engine,
    /// DuckDB's `calls` table to materialize first, if any.
    pub duck_calls: Option<String>,
    /// DuckDB's statements (the last one's rows are compared with genai-audit's).
    pub duck_statements: Vec<String>,
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
    sql.replace("{scope}", "start_time >= {from} AND start_time < {to}")
        .replace("{from}", &timestamp(from_us, dialect))
        .replace("{to}", &timestamp(to_us, dialect))
}

/// DuckDB's calls: the report's `CALLS_CTE`, column for column.
const DUCK_CALLS: &str = "\
SELECT tenant,
       COALESCE(call_id, record_id) AS call_key,
       count(*) AS spans,
       max(COALESCE(response_model, request_model)) AS model,
       max(provider) AS provider,
       max(user_id) AS user_id,
       max(service_name) AS service,
       min(start_time) AS start_time,
       max(input_tokens) AS input_tokens,
       max(output_tokens) AS output_tokens,
       max(total_cost_usd) AS cost_usd,
       max(duration_ms) AS duration_ms,
       max(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS error,
       max(CASE WHEN pii_detected THEN 1 ELSE 0 END) AS pii,
       max(CASE data_classification WHEN 'restricted' THEN 3 WHEN 'confidential' THEN 2
                                    WHEN 'internal' THEN 1 ELSE 0 END) AS class_rank
FROM audit_log
WHERE span_kind IN ('llm_call', 'embeddings') AND start_time >= {from} AND start_time < {to}
GROUP BY tenant, COALESCE(call_id, record_id)";

/// DuckDB's compliance report over `calls`: every figure the report shows. The last statement
/// (totals) starts with the request count, compared with the report's.
const DUCK_REPORT: &[&str] = &[
    "SELECT model, count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd), \
            count(cost_usd), sum(error), avg(duration_ms), \
            quantile_cont(duration_ms, [0.5, 0.95, 0.99]) \
     FROM calls GROUP BY model",
    "SELECT CAST(start_time AS DATE) AS day, count(*), count(DISTINCT user_id), \
            sum(input_tokens), sum(output_tokens), sum(cost_usd), count(cost_usd), sum(error), \
            avg(duration_ms), quantile_cont(duration_ms, [0.5, 0.95, 0.99]) \
     FROM calls GROUP BY day",
    "CREATE OR REPLACE TEMP TABLE users AS \
     SELECT user_id, count(*) AS requests, sum(input_tokens), sum(output_tokens), \
            sum(cost_usd) AS cost, count(cost_usd), sum(error) \
     FROM calls WHERE user_id IS NOT NULL GROUP BY user_id",
    "SELECT * FROM users ORDER BY requests DESC, user_id LIMIT 10",
    "SELECT * FROM users ORDER BY cost DESC NULLS LAST, requests DESC, user_id LIMIT 10",
    "SELECT class_rank, count(*) FROM calls GROUP BY class_rank",
    "SELECT CASE WHEN duration_ms < 100 THEN 0 WHEN duration_ms < 250 THEN 1 \
                 WHEN duration_ms < 500 THEN 2 WHEN duration_ms < 1000 THEN 3 \
                 WHEN duration_ms < 2000 THEN 4 WHEN duration_ms < 5000 THEN 5 \
                 WHEN duration_ms < 10000 THEN 6 WHEN duration_ms < 30000 THEN 7 \
                 WHEN duration_ms < 60000 THEN 8 ELSE 9 END AS bucket, count(*) \
     FROM calls GROUP BY bucket",
    "SELECT pii_type, count(*) AS requests FROM ( \
       SELECT DISTINCT tenant, call_key, pii_type FROM ( \
         SELECT tenant, COALESCE(call_id, record_id) AS call_key, unnest(pii_types) AS pii_type \
         FROM audit_log \
         WHERE span_kind IN ('llm_call', 'embeddings') AND pii_detected \
           AND start_time >= {from} AND start_time < {to})) \
     GROUP BY pii_type",
    "SELECT count(*) AS requests, sum(spans), count(DISTINCT user_id), \
            sum(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END), count(DISTINCT model), \
            sum(input_tokens), sum(output_tokens), sum(cost_usd), count(cost_usd), sum(error), \
            sum(pii), avg(duration_ms), quantile_cont(duration_ms, [0.5, 0.95, 0.99]) \
     FROM calls",
];

/// Cost by model by day over the report's calls.
const COST_BY_MODEL_BY_DAY: &str = "\
SELECT CAST(start_time AS DATE) AS day, model, count(*) AS requests, sum(cost_usd) AS cost
FROM calls GROUP BY day, model ORDER BY day, model";

/// The UTC day in the middle of a store of `days` days, `[from, to)` in µs.
pub fn middle_day(days: i64) -> (i64, i64) {
    let mid = DAY0_US + (days / 2) * DAY_US;
    (mid, mid + DAY_US)
}

/// The four workloads of the issue over a store of `days` days, for `subject`.
pub fn workloads(days: i64, subject: &str) -> Vec<(Workload, i64, i64)> {
    let all = (DAY0_US, DAY0_US + days * DAY_US);
    let one = middle_day(days);
    let report = |name, goal_ms| Workload {
        name,
        datafusion: Engine::ComplianceReport,
        duck_calls: Some(DUCK_CALLS.to_owned()),
        duck_statements: DUCK_REPORT.iter().map(|s| (*s).to_owned()).collect(),
        goal_ms,
    };
    let subject_sql = format!(
        "SELECT * FROM audit_log WHERE user_id = '{subject}' \
         AND start_time >= {{from}} AND start_time < {{to}} ORDER BY start_time"
    );
    vec![
        (
            Workload {
                name: "subject lookup (1 user, all days)",
                datafusion: Engine::Sql {
                    calls: None,
                    statements: vec![subject_sql.clone()],
                },
                duck_calls: None,
                duck_statements: vec![subject_sql],
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
                datafusion: Engine::Sql {
                    calls: None,
                    statements: vec![format!("WITH {CALLS_CTE}\n{COST_BY_MODEL_BY_DAY}")],
                },
                duck_calls: None,
                duck_statements: vec![format!(
                    "WITH calls AS ({DUCK_CALLS})\n{COST_BY_MODEL_BY_DAY}"
                )],
                goal_ms: None,
            },
            all.0,
            all.1,
        ),
    ]
}
