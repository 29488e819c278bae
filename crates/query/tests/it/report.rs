//! Reports on a store whose every figure is known: duplicated spans sharing a call_id, a wrapper
//! span, errors, PII, an unpriced call, three days, three models, two tenants.

use std::sync::Arc;

use genai_audit_core::{AuditRecord, DataClassification, SpanKind, Status, Usd};
use genai_audit_query::QueryEngine;
use genai_audit_query::report::{
    self, CostBy, ErasureReceipt, LatencyStats, NamedCount, Scope, Subject,
    compliance::COMPLIANCE_CALLS_SQL,
};
use genai_audit_store::layout::day_of;

use crate::common::{DAY_US, DAY0_US, TestStore, fixture_records, hash_key, synthetic_records};

pub fn usd(s: &str) -> Usd {
    s.parse().expect("an amount")
}

/// What one provider-call span of the test store looks like.
pub struct Call {
    pub tenant: &'static str,
    pub user: Option<&'static str>,
    pub model: &'static str,
    /// Day (0 = 2026-11-24) and second of the day.
    pub day: i64,
    pub second: i64,
    pub input: i64,
    pub output: i64,
    /// `None`: unpriced.
    pub cost: Option<&'static str>,
    pub duration_ms: i64,
    pub error: bool,
    pub pii: &'static [&'static str],
}

/// A record for `call`, the `n`-th span of the store, with call id `call_id`.
pub fn span(n: u64, call_id: &str, c: &Call) -> AuditRecord {
    let base = fixture_records()
        .into_iter()
        .find(|r| r.span_kind == SpanKind::LlmCall && r.total_cost_usd.is_some())
        .expect("a priced chat span among the fixtures");
    let mut r = base;
    r.trace_id = format!("{:032x}", 0xabc0_0000 + n);
    r.span_id = format!("{:016x}", 0x5000 + n);
    r.record_id = genai_audit_core::normalize::record_id(
        &const_hex::decode(&r.trace_id).expect("hex"),
        &const_hex::decode(&r.span_id).expect("hex"),
    );
    r.call_id = call_id.to_owned();
    r.response_id = Some(call_id.to_owned());
    r.tenant = Arc::from(c.tenant);
    r.user_id = c.user.map(str::to_owned);
    r.session_id = c.user.map(|u| format!("sess-{u}"));
    r.client_address = None;
    r.user_agent = None;
    r.service_name = Some(Arc::from(if c.tenant == "acme" {
        "billing-bot"
    } else {
        "support-bot"
    }));
    r.provider = Some(
        if c.model.starts_with("claude") {
            "anthropic"
        } else {
            "openai"
        }
        .to_owned(),
    );
    r.request_model = Some(c.model.to_owned());
    r.response_model = Some(c.model.to_owned());
    r.start_time_us = DAY0_US + c.day * DAY_US + c.second * 1_000_000;
    r.start_time_unix_nano = r.start_time_us * 1000;
    r.end_time_us = r.start_time_us + c.duration_ms * 1000;
    r.duration_ms = c.duration_ms as f64;
    r.input_tokens = Some(c.input);
    r.output_tokens = Some(c.output);
    r.total_tokens = Some(c.input + c.output);
    r.cached_input_tokens = None;
    r.reasoning_tokens = None;
    r.cache_write_input_tokens = None;
    r.total_cost_usd = c.cost.map(usd);
    r.input_cost_usd = c.cost.map(usd);
    r.output_cost_usd = c.cost.map(|_| Usd::ZERO);
    r.status = if c.error { Status::Error } else { Status::Ok };
    r.error_type = c.error.then(|| "RateLimitError".to_owned());
    r.pii_types = c.pii.iter().map(|s| (*s).to_owned()).collect();
    r.pii_detected = !c.pii.is_empty();
    r.data_classification = if c.pii.contains(&"US_SSN") {
        DataClassification::Restricted
    } else if c.pii.is_empty() {
        DataClassification::Internal
    } else {
        DataClassification::Confidential
    };
    r.retention_until_days = Some((r.start_time_us / DAY_US) as i32 + 400);
    r
}

/// The calls of the store. Expected figures for days 0–2, all tenants, are worked out in
/// [`compliance_counts_every_call_once`].
pub fn calls() -> Vec<(&'static str, Call)> {
    let c = |tenant, user, model, day, second, input, output, cost, duration_ms, error, pii| Call {
        tenant,
        user,
        model,
        day,
        second,
        input,
        output,
        cost,
        duration_ms,
        error,
        pii,
    };
    vec![
        (
            "openai:c1",
            c(
                "acme",
                Some("alice"),
                "gpt-4o",
                0,
                36_000,
                100,
                50,
                Some("0.001"),
                200,
                false,
                &[],
            ),
        ),
        (
            "openai:c2",
            c(
                "acme",
                Some("alice"),
                "gpt-4o",
                0,
                39_600,
                200,
                100,
                Some("0.002"),
                400,
                false,
                &["EMAIL"],
            ),
        ),
        (
            "anthropic:c3",
            c(
                "acme",
                Some("bob"),
                "claude-sonnet-4",
                1,
                32_400,
                300,
                150,
                Some("0.0045"),
                1500,
                true,
                &["EMAIL", "US_SSN"],
            ),
        ),
        (
            "openai:c4",
            c(
                "acme",
                Some("bob"),
                "gpt-4o",
                1,
                43_200,
                50,
                0,
                Some("0.0005"),
                90,
                false,
                &[],
            ),
        ),
        (
            "openai:c5",
            c(
                "acme",
                None,
                "mystery-model",
                2,
                28_800,
                10,
                5,
                None,
                3000,
                true,
                &[],
            ),
        ),
        (
            "anthropic:c6",
            c(
                "globex",
                Some("carol"),
                "claude-sonnet-4",
                2,
                86_399,
                1000,
                500,
                Some("0.015"),
                700,
                false,
                &["PHONE"],
            ),
        ),
        // The day after the period.
        (
            "openai:c7",
            c(
                "acme",
                Some("alice"),
                "gpt-4o",
                3,
                3_600,
                7,
                7,
                Some("0.07"),
                100,
                false,
                &[],
            ),
        ),
    ]
}

/// The records: one span per call, plus a duplicate of c1 (a second instrumentation on the same
/// client: same call_id, same tokens and cost, longer) and a workflow wrapper around c2.
pub fn records() -> Vec<AuditRecord> {
    let mut out = Vec::new();
    for (i, (id, call)) in calls().iter().enumerate() {
        out.push(span(i as u64, id, call));
    }
    let (id, c1) = &calls()[0];
    let mut dup = span(100, id, c1);
    dup.duration_ms = 250.0;
    dup.end_time_us = dup.start_time_us + 250_000;
    dup.span_name = "openai.chat".into();
    out.push(dup);
    let (_, c2) = &calls()[1];
    let mut wrapper = span(101, "", c2);
    wrapper.call_id = wrapper.record_id.clone();
    wrapper.response_id = None;
    wrapper.span_kind = SpanKind::Workflow;
    wrapper.input_tokens = None;
    wrapper.output_tokens = None;
    wrapper.total_tokens = None;
    wrapper.total_cost_usd = None;
    wrapper.input_cost_usd = None;
    wrapper.output_cost_usd = None;
    wrapper.duration_ms = 9_000.0;
    out.push(wrapper);
    out
}

pub async fn store() -> (TestStore, QueryEngine) {
    let store = TestStore::new();
    store.commit(records()).await;
    let engine = store.engine().await;
    (store, engine)
}

pub fn day(n: i64) -> chrono::NaiveDate {
    day_of(DAY0_US + n * DAY_US)
}

pub fn period() -> Scope {
    Scope::days(day(0), day(2)).expect("a valid period")
}

fn latency(avg: f64, p50: f64, p95: f64, p99: f64) -> LatencyStats {
    LatencyStats {
        avg_ms: Some(avg),
        p50_ms: Some(p50),
        p95_ms: Some(p95),
        p99_ms: Some(p99),
    }
}

fn named(pairs: &[(&str, u64)]) -> Vec<NamedCount> {
    pairs
        .iter()
        .map(|(n, c)| NamedCount {
            name: (*n).to_owned(),
            requests: *c,
        })
        .collect()
}

#[tokio::test]
async fn compliance_counts_every_call_once() {
    let (_store, engine) = store().await;
    let r = report::compliance(&engine, &period())
        .await
        .expect("report");

    // c1–c6; c1's duplicate span merged into it, the wrapper and c7 (next day) not calls.
    let t = &r.totals;
    assert_eq!(t.requests, 6);
    assert_eq!(t.provider_spans, 7);
    assert_eq!(t.unique_users, 3);
    assert_eq!(t.requests_without_user, 1);
    assert_eq!(t.models_used, 3);
    assert_eq!(t.input_tokens, 100 + 200 + 300 + 50 + 10 + 1000);
    assert_eq!(t.output_tokens, 50 + 100 + 150 + 5 + 500);
    assert_eq!(t.cost_usd, usd("0.023"));
    assert_eq!(t.unpriced_requests, 1);
    assert_eq!(t.errors, 2);
    assert_eq!(t.error_rate, 2.0 / 6.0);
    assert_eq!(t.pii_flagged_requests, 3);

    // Durations per call: 250 (c1, longest span), 400, 1500, 90, 3000, 700. Sorted 90 250 400
    // 700 1500 3000: p50 at rank 2.5 = 550, p95 at 4.75 = 2625, p99 at 4.95 = 2925.
    assert_eq!(r.latency, latency(990.0, 550.0, 2625.0, 2925.0));
    let histogram: Vec<u64> = r.latency_histogram.iter().map(|b| b.requests).collect();
    assert_eq!(histogram, [1, 0, 2, 1, 1, 1, 0, 0, 0, 0]);
    assert_eq!(r.latency_histogram[2].label, "250–500 ms");

    assert_eq!(
        r.pii_types,
        named(&[("EMAIL", 2), ("PHONE", 1), ("US_SSN", 1)])
    );
    assert_eq!(
        r.classifications,
        named(&[
            ("restricted", 1),
            ("confidential", 2),
            ("internal", 3),
            ("public", 0)
        ])
    );

    let models: Vec<_> = r
        .models
        .iter()
        .map(|m| {
            (
                m.model.as_deref().unwrap_or("?"),
                m.requests,
                m.input_tokens,
                m.output_tokens,
                m.cost_usd,
                m.unpriced_requests,
                m.errors,
            )
        })
        .collect();
    assert_eq!(
        models,
        [
            ("gpt-4o", 3, 350, 150, usd("0.0035"), 0, 0),
            ("claude-sonnet-4", 2, 1300, 650, usd("0.0195"), 0, 1),
            ("mystery-model", 1, 10, 5, Usd::ZERO, 1, 1),
        ]
    );
    // gpt-4o: 90, 250, 400.
    assert_eq!(
        r.models[0].latency,
        latency(740.0 / 3.0, 250.0, 385.0, 397.0)
    );
    assert_eq!(r.models[1].latency, latency(1100.0, 1100.0, 1460.0, 1492.0));

    let by_requests: Vec<_> = r
        .top_users_by_requests
        .iter()
        .map(|u| (u.user_id.as_str(), u.requests, u.cost_usd))
        .collect();
    assert_eq!(
        by_requests,
        [
            ("alice", 2, usd("0.003")),
            ("bob", 2, usd("0.005")),
            ("carol", 1, usd("0.015"))
        ]
    );
    let by_cost: Vec<_> = r
        .top_users_by_cost
        .iter()
        .map(|u| u.user_id.as_str())
        .collect();
    assert_eq!(by_cost, ["carol", "bob", "alice"]);
    assert_eq!(r.top_users_by_cost[1].errors, 1);

    let days: Vec<_> = r
        .days
        .iter()
        .map(|d| {
            (
                d.day,
                d.requests,
                d.unique_users,
                d.input_tokens,
                d.output_tokens,
                d.cost_usd,
                d.unpriced_requests,
                d.errors,
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            (day(0), 2, 1, 300, 150, usd("0.003"), 0, 0),
            (day(1), 2, 1, 350, 150, usd("0.005"), 0, 1),
            (day(2), 2, 1, 1010, 505, usd("0.015"), 1, 1),
        ]
    );
    assert_eq!(r.days[2].latency.p50_ms, Some(1850.0));
}

#[tokio::test]
async fn compliance_of_one_tenant_and_of_an_empty_period() {
    let (_store, engine) = store().await;
    let acme = period().with_tenant(Some("acme".into()));
    let r = report::compliance(&engine, &acme).await.expect("report");
    assert_eq!(r.totals.requests, 5);
    assert_eq!(r.totals.cost_usd, usd("0.008"));
    assert_eq!(r.totals.unique_users, 2);
    assert_eq!(r.pii_types, named(&[("EMAIL", 2), ("US_SSN", 1)]));

    // A tenant name that needs quoting is a value, not SQL.
    let odd = period().with_tenant(Some("x' OR '1'='1".into()));
    let r = report::compliance(&engine, &odd).await.expect("report");
    assert_eq!(r.totals.requests, 0);

    let later = Scope::days(day(10), day(11)).expect("a valid period");
    let r = report::compliance(&engine, &later).await.expect("report");
    assert_eq!(r.totals.requests, 0);
    assert_eq!(r.totals.cost_usd, Usd::ZERO);
    assert_eq!(r.latency, LatencyStats::default());
    assert!(r.models.is_empty() && r.top_users_by_requests.is_empty());
    // Both days listed, with zeros.
    assert_eq!(r.days.len(), 2);
    assert!(r.days.iter().all(|d| d.requests == 0));
}

#[tokio::test]
async fn compliance_reads_only_the_days_of_its_period() {
    let (_store, engine) = store().await;
    let one_day = Scope::days(day(1), day(1)).expect("a valid period");
    let files = engine
        .planned_files(&one_day.apply(COMPLIANCE_CALLS_SQL))
        .await
        .expect("plan");
    assert!(!files.is_empty());
    let want = format!("dt={}", day(1));
    assert!(files.iter().all(|f| f.contains(&want)), "{files:?}");
    let all = engine
        .planned_files(&Scope::default().apply(COMPLIANCE_CALLS_SQL))
        .await
        .expect("plan");
    assert!(all.len() > files.len(), "{all:?}");
}

/// On a thousand synthetic users over several days the report agrees with plain SQL written
/// independently, and the top lists hold ten users.
#[tokio::test]
async fn compliance_agrees_with_plain_sql_on_synthetic_traffic() {
    let store = TestStore::new();
    store.commit(synthetic_records(3000, 2, 4, 11)).await;
    let engine = store.engine().await;
    let r = report::compliance(&engine, &Scope::default())
        .await
        .expect("report");
    let plain = crate::common::scalar(
        &engine,
        "SELECT CAST(count(*) AS VARCHAR) || ' ' || CAST(sum(i) AS VARCHAR) || ' ' || CAST(sum(c) AS VARCHAR) FROM (
           SELECT tenant, call_id, max(input_tokens) AS i, max(total_cost_usd) AS c
           FROM audit_log WHERE span_kind IN ('llm_call', 'embeddings') GROUP BY tenant, call_id)",
    )
    .await;
    assert_eq!(
        plain,
        format!(
            "{} {} {}",
            r.totals.requests, r.totals.input_tokens, r.totals.cost_usd
        )
    );
    assert_eq!(r.top_users_by_requests.len(), 10);
    assert_eq!(r.top_users_by_cost.len(), 10);
    let top = crate::common::scalar(
        &engine,
        "SELECT user_id FROM (SELECT user_id, count(DISTINCT tenant || call_id) AS n FROM audit_log
         WHERE span_kind IN ('llm_call', 'embeddings') AND user_id IS NOT NULL
         GROUP BY user_id ORDER BY n DESC, user_id LIMIT 1)",
    )
    .await;
    assert_eq!(r.top_users_by_requests[0].user_id, top);
    let sum_days: u64 = r.days.iter().map(|d| d.requests).sum();
    assert_eq!(sum_days, r.totals.requests);
    let sum_models = r.models.iter().fold(Usd::ZERO, |a, m| {
        a.checked_add(m.cost_usd).expect("no overflow")
    });
    assert_eq!(sum_models, r.totals.cost_usd);
}

/// The compliance report computed in process (one pass over the spans, `report::compliance`)
/// and by SQL alone (`report::compliance_sql`, what a cluster runs) agree on every figure: on
/// the known store and on synthetic traffic where calls merge spans of different users and
/// models, some without a model, a user or a cost; for several scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_in_process_equals_compliance_in_sql() {
    let known = TestStore::new();
    known.commit(records()).await;
    let synthetic = TestStore::new();
    let mut spans = synthetic_records(6000, 3, 5, 3);
    for (i, r) in spans.iter_mut().enumerate() {
        if i % 97 == 0 {
            r.request_model = None;
            r.response_model = None;
        }
        if i % 89 == 0 {
            r.user_id = None;
        }
        if i % 83 == 0 {
            r.total_cost_usd = None;
        }
        // Names longer than a view holds inline, some of one length and first 4 bytes (which
        // the fold tells apart by their strings), and a tenant whose name is repeated row by row.
        if i % 5 == 0 {
            r.user_id = Some(format!("a-long-user-identifier-{:03}", (i * 7) % 50));
        }
        if i % 7 == 0 {
            r.response_model = Some(format!("model-long-name-{:04}", i % 3));
        }
        if &*r.tenant == "tenant2" {
            r.tenant = "tenant2-with-a-name-longer-than-a-view".into();
        }
        // PII types, some calls with different types in different spans, a type no detector
        // names, and types on spans not flagged (which the report ignores).
        match i % 13 {
            0 => (r.pii_detected, r.pii_types) = (true, vec!["EMAIL".into()]),
            1 => {
                r.pii_detected = true;
                r.pii_types = vec!["PHONE".into(), "CUSTOMER_NO".into()];
            }
            2 => (r.pii_detected, r.pii_types) = (false, vec!["IBAN".into()]),
            _ => {}
        }
    }
    synthetic.commit(spans).await;
    let scopes = [
        Scope::default(),
        period(),
        Scope::days(day(1), day(1))
            .expect("a valid period")
            .with_tenant(Some("tenant1".into())),
    ];
    let json = |r: &report::ComplianceReport| {
        let mut r = r.clone();
        r.generated_at = chrono::DateTime::UNIX_EPOCH;
        serde_json::to_value(&r).expect("json")
    };
    for (name, store) in [("known", &known), ("synthetic", &synthetic)] {
        let engine = store.engine().await;
        for scope in &scopes {
            let fast = report::compliance(&engine, scope).await.expect("report");
            let sql = report::compliance::compliance_sql(&engine, scope)
                .await
                .expect("report");
            if scope.from.is_none() {
                assert!(
                    fast.totals.requests > 0 && (name == "known" || !fast.pii_types.is_empty()),
                    "{name}: an empty report proves nothing"
                );
            }
            crate::common::assert_same_json(
                json(&fast),
                json(&sql),
                &format!("{name} {scope:?}: in process vs SQL"),
            );
        }
    }
}

/// Values the in-process fold cannot hold (a token count beyond 32 bits) make the report be
/// computed with SQL: the same figures, not truncated ones.
#[tokio::test]
async fn a_value_beyond_the_in_process_fold_gives_the_sql_figures() {
    let store = TestStore::new();
    let mut spans = synthetic_records(200, 2, 2, 11);
    spans[17].input_tokens = Some(5_000_000_000);
    store.commit(spans).await;
    let engine = store.engine().await;
    let fast = report::compliance(&engine, &Scope::default())
        .await
        .expect("report");
    let sql = report::compliance::compliance_sql(&engine, &Scope::default())
        .await
        .expect("report");
    assert!(fast.totals.input_tokens > 5_000_000_000);
    let json = |r: &report::ComplianceReport| {
        let mut r = r.clone();
        r.generated_at = chrono::DateTime::UNIX_EPOCH;
        serde_json::to_value(&r).expect("json")
    };
    crate::common::assert_same_json(json(&fast), json(&sql), "beyond the fold vs SQL");
}

#[tokio::test]
async fn cost_by_every_grouping() {
    let (_store, engine) = store().await;
    let get = |by| {
        let engine = &engine;
        async move { report::cost(engine, &period(), by).await.expect("report") }
    };
    let rows = |r: &report::CostReport| -> Vec<(Option<String>, u64, Usd)> {
        r.rows
            .iter()
            .map(|x| (x.key.clone(), x.requests, x.cost_usd))
            .collect()
    };
    let s = |v: &str| Some(v.to_owned());

    let r = get(CostBy::Model).await;
    assert_eq!(
        rows(&r),
        [
            (s("claude-sonnet-4"), 2, usd("0.0195")),
            (s("gpt-4o"), 3, usd("0.0035")),
            (s("mystery-model"), 1, Usd::ZERO),
        ]
    );
    assert_eq!((r.total.requests, r.total.cost_usd), (6, usd("0.023")));
    assert_eq!((r.total.input_tokens, r.total.unpriced_requests), (1660, 1));

    let r = get(CostBy::User).await;
    assert_eq!(
        rows(&r),
        [
            (s("carol"), 1, usd("0.015")),
            (s("bob"), 2, usd("0.005")),
            (s("alice"), 2, usd("0.003")),
            (None, 1, Usd::ZERO),
        ]
    );
    let r = get(CostBy::Service).await;
    assert_eq!(
        rows(&r),
        [
            (s("support-bot"), 1, usd("0.015")),
            (s("billing-bot"), 5, usd("0.008"))
        ]
    );
    let r = get(CostBy::Tenant).await;
    assert_eq!(
        rows(&r),
        [(s("globex"), 1, usd("0.015")), (s("acme"), 5, usd("0.008"))]
    );
    let r = get(CostBy::Day).await;
    assert_eq!(
        rows(&r),
        [
            (Some(day(0).to_string()), 2, usd("0.003")),
            (Some(day(1).to_string()), 2, usd("0.005")),
            (Some(day(2).to_string()), 2, usd("0.015")),
        ]
    );
    // Open-ended: c7 (day 3) counts too.
    let all = report::cost(&engine, &Scope::default(), CostBy::Day)
        .await
        .expect("report");
    assert_eq!(all.rows.len(), 4);
    assert_eq!(all.total.cost_usd, usd("0.093"));
}

#[tokio::test]
async fn subject_export_lists_every_record_categories_and_retention() {
    let (_store, engine) = store().await;
    let key = hash_key();
    let alice = Subject::user("alice", Some(&key));
    let r = report::subject(&engine, &alice, &Scope::default())
        .await
        .expect("report");
    // c1, its duplicate, c2, the wrapper around c2, c7.
    assert_eq!(r.records.len(), 5);
    assert!(r.records.iter().all(|x| x["user_id"] == "alice"));
    let times: Vec<&str> = r
        .records
        .iter()
        .map(|x| x["start_time"].as_str().expect("a time"))
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert!(
        r.columns.contains(&"record_id".to_owned())
            && r.columns.contains(&"retention_until".to_owned())
    );
    for excluded in ["prompt_hash", "response_hash", "hash_key_id"] {
        assert!(!r.columns.iter().any(|c| c == excluded));
        assert!(r.records.iter().all(|x| !x.contains_key(excluded)));
    }
    let c7 = r.records.last().expect("records");
    assert_eq!(c7["total_cost_usd"], "0.070000000000");
    assert_eq!(c7["input_tokens"], 7);
    assert_eq!(c7["dt"], day(3).to_string());

    let c = &r.categories;
    assert_eq!(c.models, ["gpt-4o"]);
    assert_eq!(c.providers, ["openai"]);
    assert_eq!(c.services, ["billing-bot"]);
    assert_eq!(c.classifications, ["confidential", "internal"]);
    assert_eq!(c.pii_types, ["EMAIL"]);
    assert_eq!(c.personal_data, ["user_id", "session_id"]);
    assert_eq!(
        r.retention.earliest,
        day(0).checked_add_days(chrono::Days::new(400))
    );
    assert_eq!(
        r.retention.latest,
        day(3).checked_add_days(chrono::Days::new(400))
    );
    assert_eq!(r.retention.records_without_date, 0);
    assert!(r.erasures.is_empty());

    // The period narrows it; another user's records never appear.
    let r = report::subject(&engine, &alice, &period())
        .await
        .expect("report");
    assert_eq!(r.records.len(), 4);
    let carol = report::subject(&engine, &Subject::user("carol", None), &period())
        .await
        .expect("report");
    assert_eq!(carol.records.len(), 1);
    assert_eq!(carol.categories.pii_types, ["PHONE"]);
}

#[tokio::test]
async fn an_erased_subject_shows_only_its_receipts() {
    let (_store, engine) = store().await;
    let key = hash_key();
    let hash = report::subject_hash(&key, "zoe");
    let by_hash = Subject {
        user_id: None,
        subject_hash: Some(hash.clone()),
    };
    let receipt = ErasureReceipt {
        commit: 3,
        collector_id: "erase".into(),
        created_at: "2026-12-01T09:00:00Z".into(),
        mode: "pseudonymize".into(),
        subject_hash: hash.clone(),
        reason: "GDPR request #77".into(),
    };
    let r = report::subject(&engine, &by_hash, &Scope::default())
        .await
        .expect("report")
        .with_erasures(vec![receipt.clone()]);
    assert!(r.records.is_empty());
    assert_eq!(r.retention.earliest, None);
    assert_eq!(r.erasures, [receipt]);
    let mut md = Vec::new();
    r.render(report::ReportFormat::Markdown, &mut md)
        .expect("render");
    let md = String::from_utf8(md).expect("utf-8");
    assert!(
        md.contains("No record of this subject in the period."),
        "{md}"
    );
    assert!(
        md.contains("GDPR request #77") && md.contains(&hash),
        "{md}"
    );
}

/// Timing of the compliance report on ~100k records (30 days, 1000 users, 12 models) written
/// through the store's writer path: `cargo test -p genai-audit-query --release --test it
/// report_timing -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: prints timings"]
async fn report_timing_100k() {
    use genai_audit_core::testkit::{Rng, genai_request};
    use genai_audit_core::{IngestContext, Normalizer, NormalizerConfig, Source};

    let store = TestStore::new();
    let normalizer = Normalizer::new(NormalizerConfig::default(), hash_key());
    let ctx = IngestContext::new(Source::Import, "bench", 1_795_400_000_000_000);
    let mut rng = Rng::new(5);
    let per_day = 3_400usize;
    let started = std::time::Instant::now();
    for d in 0..30u64 {
        let start_ns = (DAY0_US as u64 + d * DAY_US as u64) * 1000;
        let req = genai_request(
            &mut rng,
            per_day,
            start_ns,
            86_400_000_000_000 / per_day as u64,
            1000,
        );
        let records = normalizer.normalize_traces(&req, &ctx).records;
        store.commit(records).await;
    }
    let engine = store.engine().await;
    eprintln!(
        "store: {} records in {} files, {:.1} MB, written in {:.2?}",
        engine.summary().rows,
        engine.summary().files,
        engine.summary().bytes as f64 / 1e6,
        started.elapsed()
    );
    let month = Scope::days(day(0), day(29)).expect("a valid period");
    let one = Scope::days(day(10), day(10)).expect("a valid period");
    for (name, scope) in [("30 days", &month), ("1 day", &one)] {
        for run in 0..3 {
            let t = std::time::Instant::now();
            let r = report::compliance(&engine, scope).await.expect("report");
            eprintln!(
                "compliance {name} run {run}: {:.1?} ({} calls)",
                t.elapsed(),
                r.totals.requests
            );
        }
    }
    let t = std::time::Instant::now();
    let r = report::cost(&engine, &month, CostBy::Day)
        .await
        .expect("report");
    eprintln!(
        "cost by day 30 days: {:.1?} ({} rows)",
        t.elapsed(),
        r.rows.len()
    );
    let t = std::time::Instant::now();
    let r = report::subject(&engine, &Subject::user("user-7", None), &month)
        .await
        .expect("report");
    eprintln!(
        "subject user-7 30 days: {:.1?} ({} records)",
        t.elapsed(),
        r.records.len()
    );
}
