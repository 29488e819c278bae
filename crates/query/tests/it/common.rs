//! Test stores: real captures normalized by core (copied from the store crate's tests), and
//! synthetic records spread over tenants and days, committed with the store's `Committer`.

use std::path::PathBuf;
use std::sync::Arc;

use genai_audit_core::{AuditRecord, HashKey, IngestContext, Normalizer, NormalizerConfig, Source};
use genai_audit_query::{QueryEngine, QueryOptions};
use genai_audit_store::{Committer, StoreLocation};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The key the fixture records are hashed with.
pub const KEY: [u8; 32] = [42u8; 32];

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/otlp")
}

pub fn hash_key() -> HashKey {
    HashKey::new(&KEY).unwrap()
}

/// The 16 GenAI spans of the real captures, normalized.
pub fn fixture_records() -> Vec<AuditRecord> {
    let n = Normalizer::new(NormalizerConfig::default(), hash_key());
    let ctx = IngestContext::new(Source::OtlpHttp, "test", 1_795_400_000_000_000);
    let mut out = Vec::new();
    for lib in ["openai-v2", "traceloop-openai"] {
        let mut files: Vec<_> = std::fs::read_dir(fixtures_dir().join(lib))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pb"))
            .collect();
        files.sort();
        for f in files {
            let req =
                ExportTraceServiceRequest::decode(std::fs::read(f).unwrap().as_slice()).unwrap();
            out.extend(n.normalize_traces(&req, &ctx).records);
        }
    }
    assert_eq!(out.len(), 16);
    out
}

/// µs of 2026-11-24T00:00:00Z, the first day of synthetic records.
pub const DAY0_US: i64 = 1_795_478_400_000_000;
pub const DAY_US: i64 = 86_400_000_000;

/// `n` distinct records derived from the captures: record `i` is on day `i % days` (from
/// [`DAY0_US`]) and of tenant `tenant{i % tenants}`; `seed` keeps batches distinct.
pub fn synthetic_records(n: usize, tenants: usize, days: i64, seed: u64) -> Vec<AuditRecord> {
    let base = fixture_records();
    (0..n)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            let k = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            r.trace_id = format!("{:032x}", u128::from(k) * 0x9e37_79b9_7f4a_7c15 + 1);
            r.span_id = format!("{:016x}", k.wrapping_mul(0x9e37_79b9) | 1);
            r.record_id = genai_audit_core::normalize::record_id(
                &const_hex::decode(&r.trace_id).unwrap(),
                &const_hex::decode(&r.span_id).unwrap(),
            );
            if r.response_id.is_none() {
                r.call_id = r.record_id.clone();
            }
            r.tenant = Arc::from(format!("tenant{}", i % tenants.max(1)));
            r.user_id = Some(format!("user-{}", (k * 7919) % 1000));
            let day = (i as i64) % days.max(1);
            r.start_time_us = DAY0_US + day * DAY_US + (k as i64 % 86_000) * 1_000_000;
            r.start_time_unix_nano = r.start_time_us * 1000 + 7;
            r.end_time_us = r.start_time_us + 1_500_000;
            r
        })
        .collect()
}

/// A local store in a temporary directory.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub loc: StoreLocation,
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let loc = StoreLocation::local(dir.path()).unwrap();
        Self { dir, loc }
    }

    /// Commits `records` as one import commit.
    pub async fn commit(&self, records: Vec<AuditRecord>) {
        let report = Committer::new(self.loc.clone(), "import")
            .unwrap()
            .commit_records(records, "import")
            .await
            .unwrap();
        assert!(report.commit > 0, "nothing committed: {report:?}");
    }

    /// An engine with the fixture key.
    pub async fn engine(&self) -> QueryEngine {
        self.engine_with(QueryOptions {
            hash_key: Some(hash_key()),
            ..QueryOptions::default()
        })
        .await
    }

    pub async fn engine_with(&self, options: QueryOptions) -> QueryEngine {
        QueryEngine::open(self.loc.clone(), options).await.unwrap()
    }
}

/// The single value of a one-row, one-column result, as text.
pub async fn scalar(engine: &QueryEngine, sql: &str) -> String {
    let batches = engine
        .collect(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1, "{sql}: expected one row");
    let batch = batches.iter().find(|b| b.num_rows() > 0).unwrap();
    genai_audit_query::datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0)
        .unwrap()
}

/// One line of `expected.jsonl`.
pub fn expected(library: &str, case: &str) -> serde_json::Value {
    std::fs::read_to_string(fixtures_dir().join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["library"] == library && v["case"] == case)
        .unwrap_or_else(|| panic!("no {library}/{case} in expected.jsonl"))
}

/// The record id core gives the span of an `expected.jsonl` line.
pub fn record_id_of(expected: &serde_json::Value) -> String {
    genai_audit_core::normalize::record_id(
        &const_hex::decode(expected["trace_id"].as_str().unwrap()).unwrap(),
        &const_hex::decode(expected["span_id"].as_str().unwrap()).unwrap(),
    )
}

/// Asserts two reports' JSON documents are the same, shown as the lines that differ when not.
/// Averages are sums of floats, which partitions add up in another order: every non-integer
/// number is compared to 12 significant digits. Everything else (counts, money) is exact.
pub fn assert_same_json(got: serde_json::Value, expected: serde_json::Value, what: &str) {
    let pretty = |v| serde_json::to_string_pretty(&round_floats(v)).unwrap();
    let (g, e) = (pretty(got), pretty(expected));
    let differ: Vec<_> = g
        .lines()
        .zip(e.lines())
        .filter(|(a, b)| a != b)
        .take(5)
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:#?}");
    assert_eq!(g, e, "{what}");
}

/// `v` with every non-integer number rounded to 12 significant digits.
fn round_floats(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            Value::String(format!("{x:.11e}"))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(round_floats).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, round_floats(v))).collect())
        }
        other => other,
    }
}
