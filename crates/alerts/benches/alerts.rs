//! Cost of alerting on the ingest path, per span.
//!
//! `cargo bench -p genai-audit-alerts --bench alerts`
//!
//! Same input as `crates/core/benches/normalize.rs` (1000 content-free spans over 10 services
//! and 5000 users). Goal (issue #7): 20 rules add < 10 % to the CPU of ingesting a span.
//! Groups: `ingest/normalize` alone and `normalize + 20 rules` (same times each round: in
//! breach); the rules alone (0, the 16 built-ins, 20 with the CEL rules compiled natively, 20
//! with CEL forced through the interpreter) in two regimes: `rules_steady` (times advance as
//! at 2,000 spans/s; the usual case) and `rules_in_breach` (every window and budget over its
//! threshold, every record fires and is suppressed: the worst case).
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use genai_audit_alerts::{AlertsConfig, Engine};
use genai_audit_core::testkit::{Rng, genai_request};
use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};

// The shipped binary uses mimalloc; measure with the allocator it runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS: usize = 1000;
/// Ingest time and first span start of the synthetic traffic, µs.
const INGEST_US: i64 = 1_795_400_000_000_000;
const START_US: i64 = 1_795_388_748_556_606;
/// 2,000 spans/s.
const STEADY_STEP_US: i64 = 500;

/// 20 rules: every built-in kind, on different keys, and 4 CEL rules.
const RULES: &str = r#"
[[rules]]
name = "volume-user"
kind = "request_volume"
key = "user"
window_secs = 60
max_requests = 100
[[rules]]
name = "volume-tenant"
kind = "request_volume"
window_secs = 60
max_requests = 100000
[[rules]]
name = "volume-service"
kind = "request_volume"
key = "service"
window_secs = 60
max_requests = 5000
[[rules]]
name = "volume-model"
kind = "request_volume"
key = "model"
window_secs = 60
max_requests = 5000
[[rules]]
name = "errors-user"
kind = "error_rate"
key = "user"
window_secs = 300
max_error_ratio = 0.1
min_requests = 100
[[rules]]
name = "errors-service"
kind = "error_rate"
key = "service"
window_secs = 300
max_error_ratio = 0.1
min_requests = 100
[[rules]]
name = "errors-model"
kind = "error_rate"
key = "model"
window_secs = 300
max_error_ratio = 0.1
min_requests = 100
[[rules]]
name = "slow"
kind = "latency"
max_ms = 30000
[[rules]]
name = "large-prompt"
kind = "large_prompt"
max_input_tokens = 100000
[[rules]]
name = "large-prompt-user"
kind = "large_prompt"
key = "user"
max_input_tokens = 4000
[[rules]]
name = "pii"
kind = "pii"
min_classification = "confidential"
[[rules]]
name = "pii-restricted-user"
kind = "pii"
key = "user"
min_classification = "restricted"
[[rules]]
name = "budget-user-day"
kind = "budget"
key = "user"
period = "day"
max_usd = 10.0
[[rules]]
name = "budget-tenant-month"
kind = "budget"
period = "month"
max_usd = 10000.0
[[rules]]
name = "unpriced"
kind = "unpriced_model"
key = "model"
[[rules]]
name = "content-captured"
kind = "content_captured"
tenants = ["*"]
[[rules]]
name = "openai-restricted"
kind = "cel"
expression = 'provider == "openai" && data_classification == "restricted"'
[[rules]]
name = "svc3-big"
kind = "cel"
expression = 'input_tokens > 4000 && service_name == "svc-3"'
[[rules]]
name = "vip-errors"
kind = "cel"
key = "user"
expression = 'status == "error" && user_id in ["user-1", "user-2"]'
[[rules]]
name = "costly-call"
kind = "cel"
expression = 'response_model != null && total_cost_usd > 0.5'
"#;

fn engine(builtins_only: bool, interpreter: bool) -> Engine {
    let mut cfg: AlertsConfig = toml::from_str(RULES).expect("bench rules parse");
    assert_eq!(cfg.rules.len(), 20);
    if builtins_only {
        cfg.rules.retain(|r| r.expression.is_none());
    }
    let mut e = Engine::new(&cfg).expect("bench rules compile");
    if interpreter {
        e.force_cel_interpreter();
    }
    e
}

fn bench(c: &mut Criterion) {
    let normalizer = Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).expect("32-byte key"),
    );
    let ctx = IngestContext::new(Source::OtlpGrpc, "bench", INGEST_US * 1000);
    let req = genai_request(
        &mut Rng::new(1),
        SPANS,
        START_US as u64 * 1000,
        1_000_000,
        5000,
    );
    let records = normalizer.normalize_traces(&req, &ctx).records;
    assert_eq!(records.len(), SPANS);
    let twenty = engine(false, false);
    for (rule, path) in twenty.cel_paths() {
        eprintln!("CEL rule {rule}: {path:?}");
    }

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("normalize", |b| {
        b.iter(|| black_box(normalizer.normalize_traces(black_box(&req), &ctx)))
    });
    group.bench_function("normalize_and_20_rules", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            let outcome = normalizer.normalize_traces(black_box(&req), &ctx);
            twenty.evaluate(&outcome.records, &mut out);
            out.clear();
            black_box(outcome)
        })
    });
    group.finish();

    // Steady traffic: the records' times advance as if the collector took 2,000 spans/s, so
    // windows slide, keys stay known and thresholds are crossed only where the traffic does.
    let mut group = c.benchmark_group("rules_steady");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, e) in engines() {
        group.bench_function(name, |b| {
            let mut out = Vec::new();
            let mut recs = records.clone();
            let mut at = 0i64;
            b.iter(|| {
                for r in recs.iter_mut() {
                    at += STEADY_STEP_US;
                    r.ingest_time_us = INGEST_US + at;
                    r.start_time_us = START_US + at;
                }
                e.evaluate(black_box(&recs), &mut out);
                out.clear();
            })
        });
    }
    group.finish();

    // In breach: every iteration replays the same records at the same time, so every window
    // and budget is over its threshold and every record fires (and is suppressed).
    let mut group = c.benchmark_group("rules_in_breach");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, e) in engines() {
        group.bench_function(name, |b| {
            let mut out = Vec::new();
            b.iter(|| {
                e.evaluate(black_box(&records), &mut out);
                out.clear();
            })
        });
    }
    group.finish();
}

/// The rule sets compared.
fn engines() -> [(&'static str, Engine); 4] {
    [
        (
            "0_rules",
            Engine::new(&AlertsConfig::default()).expect("no rules"),
        ),
        ("16_builtin_rules", engine(true, false)),
        ("20_rules", engine(false, false)),
        ("20_rules_cel_interpreted", engine(false, true)),
    ]
}

criterion_group!(benches, bench);
criterion_main!(benches);
