//! `report compliance`: the period's volume, users, models, tokens, cost, latency, errors, PII and
//! classification, per model, per user and per day.
//!
//! The scope is read once. In process, its provider-call spans are folded into calls and the
//! calls summed into *facets* (`total`, `model`, `user`, `day`, `classification`, `latency`)
//! in one pass (`super::calls`). On a cluster, and in [`compliance_sql`], the same figures
//! come from SQL: [`COMPLIANCE_CALLS_SQL`] groups the spans into calls ([`CALLS_CTE`]), and the
//! calls, materialized in memory, are aggregated per facet by [`COMPLIANCE_SQL`], keeping only
//! the top 10 users. At the same time [`COMPLIANCE_PII_SQL`] reads only the PII-flagged rows
//! to count calls per PII type. The scope queries are templates: `{scope}` is replaced by
//! [`Scope::sql_filter`](super::Scope::sql_filter) ([`Scope::apply`](super::Scope::apply)).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use genai_audit_core::Usd;
use serde::Serialize;

use super::Scope;
use super::rows::{Rows, collect};
use crate::QueryEngine;
use crate::error::{Error, Result};

// SQL fragments every computation of calls shares (the CTE below, the PII query, and the
// in-process fold's span query, `super::calls`), as macros so that `concat!` can build on them.
/// The provider-call spans (the condition after `WHERE`).
macro_rules! provider_call_spans {
    () => {
        "span_kind IN ('llm_call', 'embeddings')"
    };
}
/// A span's classification as a rank: 3 restricted, 2 confidential, 1 internal, 0 public.
macro_rules! class_rank {
    () => {
        "CASE data_classification WHEN 'restricted' THEN 3 WHEN 'confidential' THEN 2
                                      WHEN 'internal' THEN 1 ELSE 0 END"
    };
}
pub(crate) use {class_rank, provider_call_spans};

// The text of `CALLS_CTE`, as a macro so that `concat!` can build the queries on it.
macro_rules! calls_cte {
    () => {
        concat!(
            "calls AS (
  SELECT tenant,
         COALESCE(call_id, record_id) AS call_key,
         count(*) AS spans,
         max_repeated(COALESCE(response_model, request_model)) AS model,
         max_repeated(provider) AS provider,
         max_repeated(user_id) AS user_id,
         max_repeated(service_name) AS service,
         min(start_time) AS start_time,
         max(input_tokens) AS input_tokens,
         max(output_tokens) AS output_tokens,
         max(total_cost_usd) AS cost_usd,
         max(duration_ms) AS duration_ms,
         max(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS error,
         max(CASE WHEN pii_detected THEN 1 ELSE 0 END) AS pii,
         max(",
            $crate::report::compliance::class_rank!(),
            ") AS class_rank
  FROM audit_log
  WHERE ",
            $crate::report::compliance::provider_call_spans!(),
            " AND {scope}
  GROUP BY tenant, COALESCE(call_id, record_id)
)"
        )
    };
}
pub(crate) use calls_cte;

/// The provider calls of the scope, one row per `(tenant, call_id)`, as a CTE named `calls`
/// (text to put after `WITH`; `{scope}` is the scope's filter). Columns: `tenant`, `call_key`,
/// `spans` (spans merged into the call), `model` (response model, else requested), `provider`,
/// `user_id`, `service` (the largest of the spans' values: `max_repeated` is `max` with a
/// state that suits 9 M calls, see [`crate::max_repeated`]),
/// `start_time` (earliest), `input_tokens`, `output_tokens`, `cost_usd` (largest of the spans:
/// duplicates carry the same figures, and a wrapper carries none), `duration_ms` (longest),
/// `error` / `pii` (1 when any span is), `class_rank` (most sensitive: 3 restricted, 2
/// confidential, 1 internal, 0 public).
pub const CALLS_CTE: &str = calls_cte!();

/// The calls of the scope with what the compliance report needs of each, which
/// [`compliance()`] materializes once in memory as the table `calls` that [`COMPLIANCE_SQL`]
/// reads (a template: `{scope}` is the scope's filter). Columns: `model`, `user_id`, `day`
/// (UTC date of the call's first span), `spans`, `input_tokens`, `output_tokens`, `cost_usd`,
/// `duration_ms`, `error`, `pii`, `class_rank` (see [`CALLS_CTE`]).
pub const COMPLIANCE_CALLS_SQL: &str = concat!(
    "WITH ",
    calls_cte!(),
    "
SELECT model, user_id, CAST(start_time AS DATE) AS day, spans, input_tokens, output_tokens,
       cost_usd, duration_ms, CAST(error AS TINYINT) AS error, CAST(pii AS TINYINT) AS pii,
       CAST(class_rank AS TINYINT) AS class_rank
FROM calls"
);

/// The main compliance query, over the table `calls` of [`COMPLIANCE_CALLS_SQL`]. One row per
/// `(facet, key)`:
///
/// | facet | key | rows |
/// |---|---|---|
/// | `total` | NULL | one |
/// | `model` | model (NULL: unknown) | one per model |
/// | `user` | user id | the top 10 by requests and the top 10 by cost (calls without a user left out) |
/// | `day` | `YYYY-MM-DD` (UTC day of the call's first span) | one per day with calls |
/// | `classification` | `restricted` … `public` | one per classification present |
/// | `latency` | bucket index `0`…`9` ([`LATENCY_BUCKETS`]) | one per bucket present |
///
/// Columns: `requests`, `spans`, `users` (distinct; total, model and day facets),
/// `no_user` (calls without a user), `models` (distinct; total facet), `input_tokens`,
/// `output_tokens`, `cost_usd` (DECIMAL(38,12)), `priced` (calls with a cost), `errors`,
/// `pii_calls`, `latency_avg_ms`, `latency_p50_ms`, `latency_p95_ms`, `latency_p99_ms` (exact
/// `percentile_cont`, milliseconds; total, model and day facets). Columns a facet does not
/// have are NULL.
///
/// Each facet is an aggregation of its own over the materialized calls, so that the
/// expensive figures (distinct users, exact percentiles, which keep every duration) are
/// computed only where they are shown, and never over a fanned-out copy of the calls.
pub const COMPLIANCE_SQL: &str = "\
SELECT 'total' AS facet, CAST(NULL AS VARCHAR) AS key, count(*) AS requests,
       sum(spans) AS spans, count(DISTINCT user_id) AS users,
       sum(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END) AS no_user,
       count(DISTINCT model) AS models, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd, count(cost_usd) AS priced,
       sum(error) AS errors, sum(pii) AS pii_calls, avg(duration_ms) AS latency_avg_ms,
       percentile_cont(duration_ms, 0.5) AS latency_p50_ms,
       percentile_cont(duration_ms, 0.95) AS latency_p95_ms,
       percentile_cont(duration_ms, 0.99) AS latency_p99_ms
FROM calls
UNION ALL
SELECT 'model', model, count(*), sum(spans), count(DISTINCT user_id),
       sum(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END), CAST(NULL AS BIGINT), sum(input_tokens),
       sum(output_tokens), sum(cost_usd), count(cost_usd), sum(error), sum(pii), avg(duration_ms),
       percentile_cont(duration_ms, 0.5), percentile_cont(duration_ms, 0.95),
       percentile_cont(duration_ms, 0.99)
FROM calls
GROUP BY model
UNION ALL
SELECT 'day', CAST(day AS VARCHAR), count(*), sum(spans), count(DISTINCT user_id),
       sum(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END), CAST(NULL AS BIGINT), sum(input_tokens),
       sum(output_tokens), sum(cost_usd), count(cost_usd), sum(error), sum(pii), avg(duration_ms),
       percentile_cont(duration_ms, 0.5), percentile_cont(duration_ms, 0.95),
       percentile_cont(duration_ms, 0.99)
FROM calls
GROUP BY day
UNION ALL
SELECT 'user', user_id, requests, spans, CAST(NULL AS BIGINT), 0, CAST(NULL AS BIGINT),
       input_tokens, output_tokens, cost_usd, priced, errors, pii_calls, CAST(NULL AS DOUBLE),
       CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE)
FROM (
  SELECT user_id, count(*) AS requests, sum(spans) AS spans, sum(input_tokens) AS input_tokens,
         sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
         count(cost_usd) AS priced, sum(error) AS errors, sum(pii) AS pii_calls,
         row_number() OVER (ORDER BY count(*) DESC, user_id ASC) AS rank_requests,
         row_number() OVER (ORDER BY sum(cost_usd) DESC NULLS LAST, count(*) DESC,
                            user_id ASC) AS rank_cost
  FROM calls
  WHERE user_id IS NOT NULL
  GROUP BY user_id
)
WHERE rank_requests <= 10 OR rank_cost <= 10
UNION ALL
SELECT 'classification',
       CASE class_rank WHEN 3 THEN 'restricted' WHEN 2 THEN 'confidential'
                       WHEN 1 THEN 'internal' ELSE 'public' END,
       count(*), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       CAST(NULL AS DECIMAL(38, 12)), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
       CAST(NULL AS DOUBLE)
FROM calls
GROUP BY class_rank
UNION ALL
SELECT 'latency', bucket, count(*), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       CAST(NULL AS DECIMAL(38, 12)), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
       CAST(NULL AS DOUBLE)
FROM (
  SELECT CASE
           WHEN duration_ms < 100 THEN '0' WHEN duration_ms < 250 THEN '1'
           WHEN duration_ms < 500 THEN '2' WHEN duration_ms < 1000 THEN '3'
           WHEN duration_ms < 2000 THEN '4' WHEN duration_ms < 5000 THEN '5'
           WHEN duration_ms < 10000 THEN '6' WHEN duration_ms < 30000 THEN '7'
           WHEN duration_ms < 60000 THEN '8' ELSE '9' END AS bucket
  FROM calls
)
GROUP BY bucket";

/// Calls per PII type: one row per type (`pii_type`, `requests`), a call counted once per type
/// however many of its spans carry it. Reads only PII-flagged provider-call rows.
pub const COMPLIANCE_PII_SQL: &str = concat!(
    "SELECT pii_type, count(*) AS requests
FROM (
  SELECT DISTINCT tenant, call_key, pii_type
  FROM (
    SELECT tenant, COALESCE(call_id, record_id) AS call_key, unnest(pii_types) AS pii_type
    FROM audit_log
    WHERE ",
    provider_call_spans!(),
    " AND pii_detected AND {scope}
  )
)
GROUP BY pii_type
ORDER BY requests DESC, pii_type"
);

/// The latency histogram's buckets: label, lower bound (ms, included), upper bound (ms,
/// excluded; `None`: open). Index = the `latency` facet's key in [`COMPLIANCE_SQL`].
pub const LATENCY_BUCKETS: [(&str, f64, Option<f64>); 10] = [
    ("< 100 ms", 0.0, Some(100.0)),
    ("100–250 ms", 100.0, Some(250.0)),
    ("250–500 ms", 250.0, Some(500.0)),
    ("0.5–1 s", 500.0, Some(1000.0)),
    ("1–2 s", 1000.0, Some(2000.0)),
    ("2–5 s", 2000.0, Some(5000.0)),
    ("5–10 s", 5000.0, Some(10000.0)),
    ("10–30 s", 10000.0, Some(30000.0)),
    ("30–60 s", 30000.0, Some(60000.0)),
    ("≥ 60 s", 60000.0, None),
];

/// Classifications from most to least sensitive (the order they are listed in).
pub const CLASSIFICATIONS: [&str; 4] = ["restricted", "confidential", "internal", "public"];

/// Top lists hold this many users.
pub const TOP_USERS: usize = 10;

/// Days are listed one by one (with zeros for days without calls) up to this many days.
const MAX_FILLED_DAYS: i64 = 366;

/// The compliance report of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplianceReport {
    /// Period and tenant covered.
    pub scope: Scope,
    /// When the report was computed.
    #[serde(with = "super::serde_time")]
    pub generated_at: DateTime<Utc>,
    /// Figures over the whole period.
    pub totals: Totals,
    /// Latency of all calls.
    pub latency: LatencyStats,
    /// Calls per latency bucket, every bucket listed (zeros included).
    pub latency_histogram: Vec<LatencyBucket>,
    /// PII-flagged calls per PII type, most frequent first.
    pub pii_types: Vec<NamedCount>,
    /// Calls per data classification, every classification listed, most sensitive first.
    pub classifications: Vec<NamedCount>,
    /// Per model, most requests first.
    pub models: Vec<ModelRow>,
    /// The [`TOP_USERS`] users with most requests.
    pub top_users_by_requests: Vec<UserRow>,
    /// The [`TOP_USERS`] users with the highest cost.
    pub top_users_by_cost: Vec<UserRow>,
    /// Per UTC day, in order; days without calls are listed with zeros when the period has
    /// both ends and is at most a year.
    pub days: Vec<DayRow>,
}

/// Figures over the whole period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Provider calls (each counted once, however many spans describe it).
    pub requests: u64,
    /// Provider-call spans merged into those calls (`spans - requests` duplicates were
    /// collapsed).
    pub provider_spans: u64,
    /// Distinct end users.
    pub unique_users: u64,
    /// Calls without a user id.
    pub requests_without_user: u64,
    /// Distinct models (response model, else requested).
    pub models_used: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost of the priced calls, exact.
    pub cost_usd: Usd,
    /// Calls without a known cost (not in `cost_usd`).
    pub unpriced_requests: u64,
    /// Calls that failed.
    pub errors: u64,
    /// `errors / requests` (0 when there are none).
    pub error_rate: f64,
    /// Calls whose content had PII.
    pub pii_flagged_requests: u64,
}

/// Latency of a set of calls, milliseconds (`None` when there are no calls). Percentiles are
/// exact, not estimated (`percentile_cont`: linear interpolation between the two nearest
/// calls), rounded to the microsecond.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Mean.
    pub avg_ms: Option<f64>,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// A count of calls under a name (PII type, classification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedCount {
    /// The name.
    pub name: String,
    /// Calls.
    pub requests: u64,
}

/// One bucket of the latency histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyBucket {
    /// For people: `100–250 ms`.
    pub label: String,
    /// Lower bound, ms, included.
    pub min_ms: f64,
    /// Upper bound, ms, excluded (`None`: open).
    pub max_ms: Option<f64>,
    /// Calls in the bucket.
    pub requests: u64,
}

/// One model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRow {
    /// Response model, else requested model (`None`: unknown).
    pub model: Option<String>,
    /// Calls.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost of its priced calls.
    pub cost_usd: Usd,
    /// Calls without a known cost.
    pub unpriced_requests: u64,
    /// Failed calls.
    pub errors: u64,
    /// Latency.
    pub latency: LatencyStats,
}

/// One user of a top list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    /// End user id.
    pub user_id: String,
    /// Calls.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost of the priced calls.
    pub cost_usd: Usd,
    /// Calls without a known cost.
    pub unpriced_requests: u64,
    /// Failed calls.
    pub errors: u64,
}

/// One UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    /// The day.
    #[serde(with = "super::serde_date")]
    pub day: NaiveDate,
    /// Calls.
    pub requests: u64,
    /// Distinct users.
    pub unique_users: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost of the priced calls.
    pub cost_usd: Usd,
    /// Calls without a known cost.
    pub unpriced_requests: u64,
    /// Failed calls.
    pub errors: u64,
    /// Latency.
    pub latency: LatencyStats,
}

impl DayRow {
    fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            requests: 0,
            unique_users: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: Usd::ZERO,
            unpriced_requests: 0,
            errors: 0,
            latency: LatencyStats::default(),
        }
    }
}

/// Computes the compliance report of `scope` on `engine` (in process, or on its cluster).
///
/// In process the calls are folded by [`super::calls`] (one pass, one compact state per call);
/// on a cluster by the SQL of [`COMPLIANCE_CALLS_SQL`] and [`COMPLIANCE_SQL`]. Both give the
/// same figures (tests compare them).
pub async fn compliance(engine: &QueryEngine, scope: &Scope) -> Result<ComplianceReport> {
    if engine.is_cluster() {
        compliance_sql(engine, scope).await
    } else {
        let started = std::time::Instant::now();
        let Some((facets, pii)) = super::calls::compliance_facets(engine, scope).await? else {
            return compliance_sql(engine, scope).await;
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compliance report computed in process"
        );
        assemble(scope, facets, pii)
    }
}

/// [`compliance()`] computed by SQL only: [`COMPLIANCE_CALLS_SQL`], [`COMPLIANCE_SQL`] and
/// [`COMPLIANCE_PII_SQL`]. What runs on a cluster; public so that tests can compare it with
/// the in-process computation.
pub async fn compliance_sql(engine: &QueryEngine, scope: &Scope) -> Result<ComplianceReport> {
    let started = std::time::Instant::now();
    let calls_sql = scope.apply(COMPLIANCE_CALLS_SQL);
    let pii_sql = scope.apply(COMPLIANCE_PII_SQL);
    let calls = async { Ok::<_, Error>(engine.sql(&calls_sql).await?.cache().await?) };
    let (calls, pii) = futures::try_join!(calls, collect(engine, &pii_sql))?;
    let calls_done = started.elapsed();
    // The facets read the calls from memory, here, in a plain session of their own: the
    // engine's catalog is left as it was, and on a cluster the calls are already back in this
    // process (a cluster could not read an in-memory table anyway).
    let partitions = engine.context().copied_config().target_partitions();
    let facets =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    facets.register_table("calls", calls.into_view())?;
    let main = facets.sql(COMPLIANCE_SQL).await?.collect().await?;
    tracing::debug!(
        calls_ms = calls_done.as_millis() as u64,
        facets_ms = (started.elapsed() - calls_done).as_millis() as u64,
        "compliance report computed"
    );
    let mut rows = Vec::new();
    for batch in &main {
        FacetRow::read(batch, &mut rows)?;
    }
    let mut pii_types = Vec::new();
    for batch in &pii {
        let rows = Rows::new("compliance PII", batch);
        let names = rows.strings("pii_type")?;
        let counts = rows.counts("requests")?;
        // `unnest` gives a NULL element a NULL type: not a type.
        pii_types.extend(
            names
                .into_iter()
                .zip(counts)
                .filter_map(|(n, c)| Some((n?, c))),
        );
    }
    assemble(scope, rows, pii_types)
}

/// Which aggregation a [`FacetRow`] comes from (the `facet` column of [`COMPLIANCE_SQL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Facet {
    Total,
    Model,
    User,
    Day,
    Classification,
    Latency,
}

/// One row of [`COMPLIANCE_SQL`], typed: what the report is assembled from, whichever way
/// the facets were computed. Figures a facet does not have are 0 / `None`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FacetRow {
    pub facet: Facet,
    /// Model, user id, `YYYY-MM-DD`, classification name or latency bucket index.
    pub key: Option<String>,
    pub requests: u64,
    pub spans: u64,
    pub users: u64,
    pub no_user: u64,
    pub models: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Usd,
    pub priced: u64,
    pub errors: u64,
    pub pii_calls: u64,
    pub latency_avg_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

impl FacetRow {
    /// An all-zero row of `facet` under `key`.
    pub(super) fn new(facet: Facet, key: Option<String>) -> Self {
        Self {
            facet,
            key,
            requests: 0,
            spans: 0,
            users: 0,
            no_user: 0,
            models: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: Usd::ZERO,
            priced: 0,
            errors: 0,
            pii_calls: 0,
            latency_avg_ms: None,
            latency_p50_ms: None,
            latency_p95_ms: None,
            latency_p99_ms: None,
        }
    }

    /// Appends the rows of one batch of [`COMPLIANCE_SQL`] to `out`.
    fn read(batch: &RecordBatch, out: &mut Vec<FacetRow>) -> Result<()> {
        let rows = Rows::new("compliance", batch);
        let facet = rows.strings("facet")?;
        let key = rows.strings("key")?;
        let requests = rows.counts("requests")?;
        let spans = rows.counts("spans")?;
        let users = rows.counts("users")?;
        let no_user = rows.counts("no_user")?;
        let models = rows.counts("models")?;
        let input = rows.counts("input_tokens")?;
        let output = rows.counts("output_tokens")?;
        let cost = rows.usd("cost_usd")?;
        let priced = rows.counts("priced")?;
        let errors = rows.counts("errors")?;
        let pii_calls = rows.counts("pii_calls")?;
        let avg = rows.floats("latency_avg_ms")?;
        let p50 = rows.floats("latency_p50_ms")?;
        let p95 = rows.floats("latency_p95_ms")?;
        let p99 = rows.floats("latency_p99_ms")?;
        for (i, key) in key.into_iter().enumerate() {
            let facet = match facet[i].as_deref() {
                Some("total") => Facet::Total,
                Some("model") => Facet::Model,
                Some("user") => Facet::User,
                Some("day") => Facet::Day,
                Some("classification") => Facet::Classification,
                Some("latency") => Facet::Latency,
                _ => continue,
            };
            out.push(FacetRow {
                facet,
                key,
                requests: requests[i],
                spans: spans[i],
                users: users[i],
                no_user: no_user[i],
                models: models[i],
                input_tokens: input[i],
                output_tokens: output[i],
                cost_usd: cost[i],
                priced: priced[i],
                errors: errors[i],
                pii_calls: pii_calls[i],
                latency_avg_ms: avg[i],
                latency_p50_ms: p50[i],
                latency_p95_ms: p95[i],
                latency_p99_ms: p99[i],
            });
        }
        Ok(())
    }
}

/// The report of `scope` from its facet rows and its calls by PII type.
fn assemble(
    scope: &Scope,
    facets: Vec<FacetRow>,
    pii_types: Vec<(String, u64)>,
) -> Result<ComplianceReport> {
    let mut report = ComplianceReport {
        scope: scope.clone(),
        generated_at: super::now(),
        totals: Totals::default(),
        latency: LatencyStats::default(),
        latency_histogram: LATENCY_BUCKETS
            .iter()
            .map(|&(label, min_ms, max_ms)| LatencyBucket {
                label: label.to_owned(),
                min_ms,
                max_ms,
                requests: 0,
            })
            .collect(),
        pii_types: Vec::new(),
        classifications: CLASSIFICATIONS
            .iter()
            .map(|c| NamedCount {
                name: (*c).to_owned(),
                requests: 0,
            })
            .collect(),
        models: Vec::new(),
        top_users_by_requests: Vec::new(),
        top_users_by_cost: Vec::new(),
        days: Vec::new(),
    };
    let mut users = Vec::new();
    let mut days = BTreeMap::new();

    for row in facets {
        let latency = LatencyStats {
            avg_ms: row.latency_avg_ms,
            p50_ms: row.latency_p50_ms.map(to_microsecond),
            p95_ms: row.latency_p95_ms.map(to_microsecond),
            p99_ms: row.latency_p99_ms.map(to_microsecond),
        };
        let unpriced = row.requests.saturating_sub(row.priced);
        match row.facet {
            Facet::Total => {
                report.totals = Totals {
                    requests: row.requests,
                    provider_spans: row.spans,
                    unique_users: row.users,
                    requests_without_user: row.no_user,
                    models_used: row.models,
                    input_tokens: row.input_tokens,
                    output_tokens: row.output_tokens,
                    cost_usd: row.cost_usd,
                    unpriced_requests: unpriced,
                    errors: row.errors,
                    error_rate: ratio(row.errors, row.requests),
                    pii_flagged_requests: row.pii_calls,
                };
                report.latency = latency;
            }
            Facet::Model => report.models.push(ModelRow {
                model: row.key,
                requests: row.requests,
                input_tokens: row.input_tokens,
                output_tokens: row.output_tokens,
                cost_usd: row.cost_usd,
                unpriced_requests: unpriced,
                errors: row.errors,
                latency,
            }),
            Facet::User => {
                if let Some(user_id) = row.key {
                    users.push(UserRow {
                        user_id,
                        requests: row.requests,
                        input_tokens: row.input_tokens,
                        output_tokens: row.output_tokens,
                        cost_usd: row.cost_usd,
                        unpriced_requests: unpriced,
                        errors: row.errors,
                    });
                }
            }
            Facet::Day => {
                if let Some(day) = row.key.as_deref().and_then(|d| d.parse().ok()) {
                    days.insert(
                        day,
                        DayRow {
                            day,
                            requests: row.requests,
                            unique_users: row.users,
                            input_tokens: row.input_tokens,
                            output_tokens: row.output_tokens,
                            cost_usd: row.cost_usd,
                            unpriced_requests: unpriced,
                            errors: row.errors,
                            latency,
                        },
                    );
                }
            }
            Facet::Classification => {
                if let Some(c) = report
                    .classifications
                    .iter_mut()
                    .find(|c| Some(c.name.as_str()) == row.key.as_deref())
                {
                    c.requests = row.requests;
                }
            }
            Facet::Latency => {
                let bucket = row.key.as_deref().and_then(|k| k.parse::<usize>().ok());
                if let Some(b) = bucket.and_then(|b| report.latency_histogram.get_mut(b)) {
                    b.requests = row.requests;
                }
            }
        }
    }

    report.pii_types = pii_types
        .into_iter()
        .map(|(name, requests)| NamedCount { name, requests })
        .collect();
    report.pii_types.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.name.cmp(&b.name))
    });

    report.models.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.model.is_none().cmp(&b.model.is_none()))
            .then_with(|| a.model.cmp(&b.model))
    });
    report.top_users_by_requests = top(&users, |a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    report.top_users_by_cost = top(&users, |a, b| {
        b.cost_usd
            .cmp(&a.cost_usd)
            .then_with(|| b.requests.cmp(&a.requests))
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    report.days = fill_days(scope, days);
    Ok(report)
}

/// Milliseconds rounded to the microsecond: durations are recorded in µs, and DataFusion's
/// `percentile_cont` truncates its interpolation weight to 10⁻⁶ (0.9 becomes 0.899999), which
/// would otherwise show as 384.99985 ms instead of 385 ms.
fn to_microsecond(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// `n / d`, 0 when `d` is 0.
pub(crate) fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

fn top(
    users: &[UserRow],
    order: impl Fn(&UserRow, &UserRow) -> std::cmp::Ordering,
) -> Vec<UserRow> {
    let mut v = users.to_vec();
    v.sort_by(order);
    v.truncate(TOP_USERS);
    v
}

/// Every day of the scope (zeros where there were no calls) when it is bounded and at most
/// [`MAX_FILLED_DAYS`] long; else the days with calls.
fn fill_days(scope: &Scope, mut days: BTreeMap<NaiveDate, DayRow>) -> Vec<DayRow> {
    if let Some((first, last)) = scope.day_range()
        && (last - first).num_days() < MAX_FILLED_DAYS
    {
        for day in first.iter_days().take_while(|d| *d <= last) {
            days.entry(day).or_insert_with(|| DayRow::empty(day));
        }
    }
    days.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_have_the_columns_of_the_total() {
        // Every branch of the UNION lists the 17 columns (the total names them).
        let branches = COMPLIANCE_SQL.matches("SELECT '").count();
        assert_eq!(branches, 6);
    }

    #[test]
    fn latency_buckets_match_the_sql() {
        for (i, (_, min, max)) in LATENCY_BUCKETS.iter().enumerate() {
            if let Some(max) = max {
                assert!(
                    COMPLIANCE_SQL.contains(&format!("WHEN duration_ms < {max} THEN '{i}'")),
                    "bucket {i}"
                );
            }
            if i > 0 {
                assert_eq!(LATENCY_BUCKETS[i - 1].2, Some(*min));
            }
        }
        assert!(COMPLIANCE_SQL.contains("ELSE '9' END"));
    }

    #[test]
    fn templates_take_the_scope() {
        for sql in [CALLS_CTE, COMPLIANCE_CALLS_SQL, COMPLIANCE_PII_SQL] {
            assert!(sql.contains("{scope}"));
            assert!(!Scope::default().apply(sql).contains("{scope}"));
        }
    }
}
