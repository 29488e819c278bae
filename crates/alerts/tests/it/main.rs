//! Alerting end to end inside one process: real records (normalized from OTLP), a real HTTP
//! server on 127.0.0.1 receiving the webhooks, a real local store for the `alerts` table and
//! the budget rebuild.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use genai_audit_alerts::{Alerting, AlertsConfig, Engine};
use genai_audit_core::testkit::{Rng, genai_request};
use genai_audit_core::{
    AuditRecord, CostSource, DataClassification, HashKey, IngestContext, Normalizer,
    NormalizerConfig, Source, Status, Usd,
};
use genai_audit_store::StoreLocation;
use serde_json::Value;

const NOW: i64 = 1_795_400_000_000_000; // 2026-11-23T02:13:20Z
const SEC: i64 = 1_000_000;

/// What the webhook server does with a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Ok,
    Fail500,
    Hang,
}

#[derive(Clone)]
struct Hook {
    received: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<Mutex<u64>>,
    behaviour: Behaviour,
}

async fn receive(State(h): State<Hook>, body: axum::body::Bytes) -> StatusCode {
    *h.attempts.lock().expect("lock") += 1;
    match h.behaviour {
        Behaviour::Ok => {
            let v: Value = serde_json::from_slice(&body).expect("webhook body is JSON");
            h.received.lock().expect("lock").push(v);
            StatusCode::OK
        }
        Behaviour::Fail500 => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
    }
}

/// A webhook receiver on 127.0.0.1:0.
async fn webhook(behaviour: Behaviour) -> (SocketAddr, Hook) {
    let hook = Hook {
        received: Arc::default(),
        attempts: Arc::default(),
        behaviour,
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the webhook server");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hook)
}

impl Hook {
    /// The alerts received once `n` have arrived, plus any that arrive in the next 300 ms.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.received.lock().expect("lock").len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.received.lock().expect("lock").clone()
    }
}

/// One realistic, benign record (a priced chat call) of `tenant`/`user` received at `at_us`.
fn record(tenant: &str, user: &str, at_us: i64) -> AuditRecord {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let seed = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let normalizer = Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).expect("key"),
    );
    let ctx = IngestContext::new(Source::OtlpGrpc, "it", at_us);
    let req = genai_request(&mut Rng::new(seed), 1, (at_us * 1000) as u64, 1, 10);
    let mut r = normalizer
        .normalize_traces(&req, &ctx)
        .records
        .pop()
        .expect("one record");
    r.tenant = tenant.into();
    r.user_id = Some(user.into());
    r.status = Status::Ok;
    r.duration_ms = 800.0;
    r.input_tokens = Some(100);
    r.pii_detected = false;
    r.pii_types.clear();
    r.data_classification = DataClassification::Internal;
    r.content_captured = false;
    r.cost_source = Some(CostSource::PriceTable);
    r.total_cost_usd = Some(Usd::from_raw(0));
    r.provider = Some("openai".into());
    r.start_time_us = at_us;
    r.ingest_time_us = at_us;
    r
}

fn config(url: Option<String>, rules: &str) -> AlertsConfig {
    let mut cfg: AlertsConfig = toml::from_str(rules).expect("rules parse");
    cfg.webhook.url = url;
    cfg.webhook.backoff_ms = 20;
    cfg.webhook.timeout_ms = 500;
    cfg
}

async fn start(rules: &str, behaviour: Behaviour) -> (Alerting, Hook, tempfile::TempDir) {
    let (addr, hook) = webhook(behaviour).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = StoreLocation::local(dir.path()).expect("store");
    let cfg = config(Some(format!("http://{addr}/hook")), rules);
    let a = Alerting::start(&cfg, loc, "it-collector", NOW)
        .await
        .expect("alerting starts");
    (a, hook, dir)
}

/// Sends `at_threshold` (expect nothing), then `over` (expect exactly one alert of `rule`).
async fn boundary(
    rules: &str,
    rule: &str,
    at_threshold: Vec<AuditRecord>,
    over: Vec<AuditRecord>,
) -> Value {
    let (a, hook, _dir) = start(rules, Behaviour::Ok).await;
    a.observe(&at_threshold);
    let got = hook.wait_for(1).await;
    assert!(got.is_empty(), "{rule}: alert at the threshold: {got:?}");
    a.observe(&over);
    let got = hook.wait_for(1).await;
    assert_eq!(
        got.len(),
        1,
        "{rule}: one alert above the threshold: {got:?}"
    );
    assert_eq!(got[0]["rule"], rule);
    let last = over.last().expect("a record over");
    assert_eq!(got[0]["record_ids"][0], last.record_id.as_str());
    a.shutdown(Duration::from_secs(5)).await;
    got[0].clone()
}

#[tokio::test]
async fn request_volume_fires_on_the_call_after_max_requests() {
    let rules = r#"
        [[rules]]
        name = "chatty"
        kind = "request_volume"
        key = "user"
        window_secs = 60
        max_requests = 3
    "#;
    let at: Vec<_> = (0..3)
        .map(|i| record("t", "alice", NOW + i * SEC))
        .collect();
    // Another user's calls do not count for alice.
    let mut over = vec![record("t", "bob", NOW + 4 * SEC)];
    over.push(record("t", "alice", NOW + 5 * SEC));
    let alert = boundary(rules, "chatty", at, over).await;
    assert_eq!(alert["key"], "alice");
    assert_eq!(alert["key_kind"], "user");
    assert_eq!(alert["value"], 4.0);
    assert_eq!(alert["threshold"], 3.0);
}

#[tokio::test]
async fn request_volume_window_slides() {
    let cfg = config(
        None,
        r#"
        [[rules]]
        name = "chatty"
        kind = "request_volume"
        window_secs = 16
        max_requests = 2
        suppress_secs = 0
    "#,
    );
    let e = Engine::new(&cfg).expect("rules");
    let mut out = Vec::new();
    // Two calls, then a third 17 s later: the first two have left the 16 s window.
    e.evaluate(
        &[record("t", "a", NOW), record("t", "a", NOW + SEC)],
        &mut out,
    );
    e.evaluate(&[record("t", "a", NOW + 17 * SEC)], &mut out);
    assert!(out.is_empty(), "{out:?}");
    e.evaluate(
        &[
            record("t", "a", NOW + 18 * SEC),
            record("t", "a", NOW + 19 * SEC),
        ],
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
}

#[tokio::test]
async fn latency_fires_above_max_ms() {
    let rules = r#"
        [[rules]]
        name = "slow"
        kind = "latency"
        max_ms = 30000
    "#;
    let mut at = record("t", "u", NOW);
    at.duration_ms = 30_000.0;
    let mut over = record("t", "u", NOW + SEC);
    over.duration_ms = 30_000.5;
    boundary(rules, "slow", vec![at], vec![over]).await;
}

#[tokio::test]
async fn error_rate_needs_the_minimum_sample_and_a_ratio_above_the_max() {
    let rules = r#"
        [[rules]]
        name = "failing"
        kind = "error_rate"
        key = "service"
        window_secs = 60
        max_error_ratio = 0.5
        min_requests = 4
    "#;
    let err = |i: i64| {
        let mut r = record("t", "u", NOW + i * SEC);
        r.status = Status::Error;
        r
    };
    let ok = |i: i64| record("t", "u", NOW + i * SEC);
    // 2 errors of 3 calls: above the ratio but below the minimum sample; then 3 of 6 = 0.5,
    // not above.
    let at = vec![err(0), ok(1), err(2), ok(3), ok(4), err(5)];
    // 4 of 7 > 0.5.
    let alert = boundary(rules, "failing", at, vec![err(6)]).await;
    assert_eq!(alert["key_kind"], "service");
    let v = alert["value"].as_f64().expect("ratio");
    assert!((v - 4.0 / 7.0).abs() < 1e-9, "{v}");
}

#[tokio::test]
async fn large_prompt_fires_above_max_input_tokens() {
    let rules = r#"
        [[rules]]
        name = "big"
        kind = "large_prompt"
        max_input_tokens = 100000
    "#;
    let mut at = record("t", "u", NOW);
    at.input_tokens = Some(100_000);
    let mut over = record("t", "u", NOW + SEC);
    over.input_tokens = Some(100_001);
    boundary(rules, "big", vec![at], vec![over]).await;
}

#[tokio::test]
async fn pii_fires_at_or_above_the_classification() {
    let rules = r#"
        [[rules]]
        name = "pii"
        kind = "pii"
        min_classification = "restricted"
    "#;
    let mut below = record("t", "u", NOW);
    below.pii_detected = true;
    below.pii_types = vec!["EMAIL".into()];
    below.data_classification = DataClassification::Confidential;
    let mut at = record("t", "u", NOW + SEC);
    at.pii_detected = true;
    at.pii_types = vec!["CREDIT_CARD".into()];
    at.data_classification = DataClassification::Restricted;
    let alert = boundary(rules, "pii", vec![below], vec![at]).await;
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("CREDIT_CARD")),
        "{alert}"
    );
}

#[tokio::test]
async fn content_merged_later_fires_per_record_rules_once_and_leaves_windows_alone() {
    let rules = r#"
        [[rules]]
        name = "pii"
        kind = "pii"
        min_classification = "confidential"

        [[rules]]
        name = "cel-card"
        kind = "cel"
        expression = "'CREDIT_CARD' in pii_types"

        [[rules]]
        name = "volume"
        kind = "request_volume"
        key = "user"
        window_secs = 60
        max_requests = 1
    "#;
    let (a, hook, _dir) = start(rules, Behaviour::Ok).await;
    // The span arrives without content: nothing fires (one call is within the volume rule).
    let before = record("t", "u", NOW);
    a.observe(std::slice::from_ref(&before));
    assert!(hook.wait_for(1).await.is_empty());
    // Its prompt arrives as an OTLP log record and is merged at flush: PII found.
    let mut after = before.clone();
    after.content_captured = true;
    after.pii_detected = true;
    after.pii_types = vec!["CREDIT_CARD".into()];
    after.data_classification = DataClassification::Restricted;
    a.observe_merged(std::slice::from_ref(&before), std::slice::from_ref(&after));
    let got = hook.wait_for(2).await;
    let mut fired: Vec<&str> = got.iter().filter_map(|v| v["rule"].as_str()).collect();
    fired.sort_unstable();
    // The volume rule counted the call when it arrived and does not count it again.
    assert_eq!(fired, ["cel-card", "pii"], "{got:?}");
    assert!(
        got.iter()
            .all(|v| v["record_ids"][0] == after.record_id.as_str())
    );
    // A record that already matched before the merge is not alerted a second time.
    let mut again = after.clone();
    again.pii_types.push("EMAIL".into());
    a.observe_merged(&[after], &[again]);
    let got = hook.wait_for(3).await;
    assert_eq!(got.len(), 2, "{got:?}");
    a.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn budget_fires_when_spend_exceeds_max_usd() {
    let rules = r#"
        [[rules]]
        name = "budget"
        kind = "budget"
        key = "user"
        period = "day"
        max_usd = 10.0
    "#;
    let costly = |i: i64, usd: i128| {
        let mut r = record("t", "u", NOW + i * SEC);
        r.total_cost_usd = Some(Usd::from_raw(usd * 1_000_000_000_000));
        r
    };
    // Exactly 10 USD: not over. One more micro-dollar is.
    let mut over = record("t", "u", NOW + 3 * SEC);
    over.total_cost_usd = Some(Usd::from_raw(1_000_000));
    let alert = boundary(
        rules,
        "budget",
        vec![costly(0, 4), costly(1, 6)],
        vec![over],
    )
    .await;
    assert_eq!(alert["threshold"], 10.0);
}

#[tokio::test]
async fn unpriced_model_fires_on_an_unpriced_call() {
    let rules = r#"
        [[rules]]
        name = "unpriced"
        kind = "unpriced_model"
        key = "model"
    "#;
    let priced = record("t", "u", NOW);
    let mut unpriced = record("t", "u", NOW + SEC);
    unpriced.cost_source = Some(CostSource::Unpriced);
    unpriced.total_cost_usd = None;
    unpriced.response_model = Some("in-house-llm-7".into());
    let alert = boundary(rules, "unpriced", vec![priced], vec![unpriced]).await;
    assert_eq!(alert["key"], "in-house-llm-7");
}

#[tokio::test]
async fn content_captured_fires_only_for_listed_tenants() {
    let rules = r#"
        [[rules]]
        name = "capture"
        kind = "content_captured"
        tenants = ["payments"]
    "#;
    let mut other = record("marketing", "u", NOW);
    other.content_captured = true;
    let not_captured = record("payments", "u", NOW + SEC);
    let mut captured = record("payments", "u", NOW + 2 * SEC);
    captured.content_captured = true;
    let alert = boundary(rules, "capture", vec![other, not_captured], vec![captured]).await;
    assert_eq!(alert["tenant"], "payments");
}

#[tokio::test]
async fn cel_rule_fires_and_slack_format_has_text() {
    let (addr, hook) = webhook(Behaviour::Ok).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(
        Some(format!("http://{addr}/hook")),
        r#"
        [[rules]]
        name = "openai-restricted"
        kind = "cel"
        severity = "critical"
        expression = 'provider == "openai" && data_classification == "restricted"'
    "#,
    );
    cfg.webhook.format = genai_audit_alerts::WebhookFormat::Slack;
    let a = Alerting::start(
        &cfg,
        StoreLocation::local(dir.path()).expect("store"),
        "c",
        NOW,
    )
    .await
    .expect("start");
    let mut anthropic = record("t", "u", NOW);
    anthropic.provider = Some("anthropic".into());
    anthropic.data_classification = DataClassification::Restricted;
    let mut openai = record("t", "u", NOW + SEC);
    openai.data_classification = DataClassification::Restricted;
    a.observe(&[anthropic, record("t", "u", NOW + 2), openai.clone()]);
    let got = hook.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let text = got[0]["text"].as_str().expect("slack text");
    assert!(text.contains("[critical] openai-restricted"), "{text}");
    assert_eq!(got[0]["alert"]["record_ids"][0], openai.record_id.as_str());
    a.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn suppression_lets_one_alert_through_per_window() {
    let rules = r#"
        [[rules]]
        name = "slow"
        kind = "latency"
        key = "user"
        max_ms = 1000
        suppress_secs = 60
    "#;
    let (a, hook, _dir) = start(rules, Behaviour::Ok).await;
    let slow = |user: &str, i: i64| {
        let mut r = record("t", user, NOW + i * SEC);
        r.duration_ms = 5000.0;
        r
    };
    // Five slow calls of alice within a minute: one alert; bob has his own key.
    a.observe(&(0..5).map(|i| slow("alice", i)).collect::<Vec<_>>());
    a.observe(&[slow("bob", 6)]);
    // 60 s after alice's alert, the next one goes through.
    a.observe(&[slow("alice", 59), slow("alice", 60)]);
    let got = hook.wait_for(3).await;
    let keys: Vec<_> = got
        .iter()
        .map(|v| v["key"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(keys, ["alice", "bob", "alice"], "{got:?}");
    assert_eq!(a.metrics().suppressed_total("slow"), 5);
    assert_eq!(a.metrics().fired_total("slow"), 3);
    a.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn budgets_are_rebuilt_from_committed_records_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = StoreLocation::local(dir.path()).expect("store");
    // Yesterday's spend does not count for today; today's 9 USD do.
    let mut committed = Vec::new();
    for (i, usd) in [4i128, 5].into_iter().enumerate() {
        let mut r = record("t", "alice", NOW + i as i64 * SEC);
        r.total_cost_usd = Some(Usd::from_raw(usd * 1_000_000_000_000));
        committed.push(r);
    }
    let mut yesterday = record("t", "alice", NOW - 86_400 * SEC);
    yesterday.total_cost_usd = Some(Usd::from_raw(50 * 1_000_000_000_000));
    committed.push(yesterday);
    genai_audit_store::Committer::new(loc.clone(), "import")
        .expect("committer")
        .commit_records(committed, "import")
        .await
        .expect("commit");

    let (addr, hook) = webhook(Behaviour::Ok).await;
    let cfg = config(
        Some(format!("http://{addr}/hook")),
        r#"
        [[rules]]
        name = "budget"
        kind = "budget"
        key = "user"
        period = "day"
        max_usd = 10.0
    "#,
    );
    let a = Alerting::start(&cfg, loc, "c", NOW + 10 * SEC)
        .await
        .expect("start");
    assert_eq!(
        a.engine().budget_total("budget", "t", "alice"),
        Some(Usd::from_raw(9 * 1_000_000_000_000))
    );
    let mut one = record("t", "alice", NOW + 20 * SEC);
    one.total_cost_usd = Some(Usd::from_raw(1_000_000_000_000));
    a.observe(&[one]);
    assert!(hook.wait_for(1).await.is_empty(), "10 USD is not over");
    let mut more = record("t", "alice", NOW + 21 * SEC);
    more.total_cost_usd = Some(Usd::from_raw(1));
    a.observe(&[more]);
    assert_eq!(hook.wait_for(1).await.len(), 1);
    a.shutdown(Duration::from_secs(5)).await;
}

/// Many alerts against a webhook that never answers: `observe` stays fast, the queue overflow
/// is counted, and shutdown is bounded by its deadline.
#[tokio::test]
async fn a_hanging_webhook_never_blocks_observe() {
    let rules = r#"
        [[rules]]
        name = "slow"
        kind = "latency"
        key = "user"
        max_ms = 1000
    "#;
    let (addr, hook) = webhook(Behaviour::Hang).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(Some(format!("http://{addr}/hook")), rules);
    cfg.webhook.queue = 10;
    cfg.webhook.timeout_ms = 60_000;
    let a = Alerting::start(
        &cfg,
        StoreLocation::local(dir.path()).expect("store"),
        "c",
        NOW,
    )
    .await
    .expect("start");
    let records: Vec<_> = (0..1000)
        .map(|i| {
            let mut r = record("t", &format!("user-{i}"), NOW + i);
            r.duration_ms = 2000.0;
            r
        })
        .collect();
    let t = Instant::now();
    a.observe(&records);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(500), "observe took {took:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*hook.attempts.lock().expect("lock"), 1, "one attempt hangs");
    // 1000 alerts, 1 taken by the worker, 10 queued: the rest dropped and counted.
    assert!(
        a.metrics().webhook_dropped() >= 989,
        "{}",
        a.metrics().webhook_dropped()
    );
    let t = Instant::now();
    a.shutdown(Duration::from_secs(1)).await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t.elapsed()
    );
    // The table still got every alert.
    assert_eq!(a.metrics().table_written(), 1000);
}

#[tokio::test]
async fn a_failing_webhook_is_retried_then_given_up() {
    let rules = r#"
        [[rules]]
        name = "slow"
        kind = "latency"
        max_ms = 1000
    "#;
    let (a, hook, _dir) = start(rules, Behaviour::Fail500).await;
    let mut r = record("t", "u", NOW);
    r.duration_ms = 2000.0;
    a.observe(&[r]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.metrics().webhook_failed() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.metrics().webhook_failed(), 1);
    assert_eq!(*hook.attempts.lock().expect("lock"), 5, "max_attempts");
    a.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn alerts_are_written_to_the_alerts_table_at_shutdown() {
    let rules = r#"
        [[rules]]
        name = "slow"
        kind = "latency"
        max_ms = 1000
    "#;
    let (a, _hook, dir) = start(rules, Behaviour::Ok).await;
    let mut r = record("acme", "u", NOW);
    r.duration_ms = 2000.0;
    a.observe(std::slice::from_ref(&r));
    a.shutdown(Duration::from_secs(5)).await;
    let files: Vec<_> = walk(&dir.path().join("alerts"));
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].to_string_lossy().into_owned();
    assert!(
        name.contains("alerts/tenant=acme/dt=2026-11-23/it-collector-a"),
        "{name}"
    );
    let bytes = bytes::Bytes::from(std::fs::read(&files[0]).expect("read"));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("parquet")
        .build()
        .expect("reader");
    let batch = reader
        .into_iter()
        .next()
        .expect("a batch")
        .expect("decoded");
    assert_eq!(batch.num_rows(), 1);
    let ids = batch
        .column_by_name("record_ids")
        .expect("record_ids")
        .as_any()
        .downcast_ref::<arrow_array::ListArray>()
        .expect("list");
    let first = ids.value(0);
    let first = first
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .expect("strings");
    assert_eq!(first.value(0), r.record_id);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn invalid_rules_are_refused_naming_the_key() {
    let err = |rules: &str| {
        let cfg: AlertsConfig = toml::from_str(rules).expect("parses");
        cfg.validate().expect_err("invalid").to_string()
    };
    let e = err("[[rules]]\nname = \"a\"\nkind = \"latency\"\n");
    assert!(e.contains("alerts.rules[0].max_ms"), "{e}");
    let e = err("[[rules]]\nname = \"a\"\nkind = \"latency\"\nmax_ms = 5\nmax_requests = 3\n");
    assert!(e.contains("alerts.rules[0].max_requests"), "{e}");
    let e = err(
        "[[rules]]\nname = \"a\"\nkind = \"latency\"\nmax_ms = 5\n[[rules]]\nname = \"b\"\nkind = \"cel\"\nexpression = \"provider ==\"\n",
    );
    assert!(e.contains("alerts.rules[1].expression"), "{e}");
    let e = err("[[rules]]\nname = \"a\"\nkind = \"pii\"\nmin_classification = \"secret\"\n");
    assert!(e.contains("alerts.rules[0].min_classification"), "{e}");
    let e = err("[webhook]\nurl = \"ftp://x\"\n");
    assert!(e.contains("alerts.webhook.url"), "{e}");
}
