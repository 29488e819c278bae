//! Every example under `examples/` that needs no internet, run as its README says: the Rust
//! apps' own `run()` (compiled in from the example sources), the Python app against the real
//! collector and the offline mock API, the DuckDB SQL through the `duckdb` Python package, and
//! the OpenTelemetry Collector config checked for what it must wire. Results are read back with
//! the real `genai-audit query`. (`examples/spark` needs a JVM and is not run.)

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use super::python::{APP_TIMEOUT, Collector, INSTALL_HINT, MockOpenAi, python, wait_within};
use super::*;

/// The in-process example's code (its `main` is unused here). Both examples include
/// `examples/common/app.rs` as their own module, as they do when built alone.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../../../examples/rust-inprocess/main.rs"]
mod rust_inprocess;

/// The OTLP example's code (its `main` is unused here).
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../../../examples/rust-sdk/main.rs"]
mod rust_sdk;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// `genai-audit query --store STORE --format json SQL`: one JSON object per row.
fn query_json(store: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = bin()
        .arg("query")
        .arg("--store")
        .arg(store)
        .args(["--format", "json", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "query failed: {}", describe(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Rows written as JSON objects (key order does not matter in the comparison).
fn json_rows(rows: &[&str]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

/// What the support bot of `examples/common/app.rs` must leave in the store: user, operation,
/// response model, tokens, exact cost, status (ordered by user, then operation).
const SUPPORT_BOT_SQL: &str = "SELECT tenant, service_name, user_id, operation, response_model, \
     input_tokens, output_tokens, CAST(total_cost_usd AS VARCHAR) AS cost, status, error_type \
     FROM audit_log ORDER BY user_id, operation";

fn support_bot_rows() -> Vec<serde_json::Value> {
    json_rows(&[
        // 5000 × $0.02/Mtok
        r#"{"tenant":"acme","service_name":"support-bot","user_id":"alice","operation":"chat","response_model":"gpt-4o-mini-2024-07-18","input_tokens":1200,"output_tokens":300,"cost":"0.000360000000","status":"unset","error_type":null}"#,
        r#"{"tenant":"acme","service_name":"support-bot","user_id":"alice","operation":"embeddings","response_model":"text-embedding-3-small","input_tokens":5000,"output_tokens":null,"cost":"0.000100000000","status":"unset","error_type":null}"#,
        // 2500 × $2/Mtok + 800 × $8/Mtok
        r#"{"tenant":"acme","service_name":"support-bot","user_id":"bob","operation":"chat","response_model":"gpt-4.1-2025-04-14","input_tokens":2500,"output_tokens":800,"cost":"0.011400000000","status":"unset","error_type":null}"#,
        r#"{"tenant":"acme","service_name":"support-bot","user_id":"carol","operation":"chat","response_model":null,"input_tokens":null,"output_tokens":null,"cost":null,"status":"error","error_type":"rate_limit_exceeded"}"#,
    ])
}

#[test]
fn rust_inprocess_writes_the_store_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("genai-audit-data");
    let key_file = dir.path().join("genai-audit-keys/hash.key");
    let summary = rust_inprocess::run(store.to_str().unwrap(), key_file.to_str().unwrap()).unwrap();
    assert!(
        summary.starts_with("made 4 LLM calls; audited 4 GenAI spans (1 other spans skipped)"),
        "{summary}"
    );
    assert_eq!(query_json(&store, SUPPORT_BOT_SQL), support_bot_rows());
    let ids = query_json(
        &store,
        "SELECT DISTINCT source, collector_id FROM audit_log",
    );
    assert_eq!(
        ids,
        json_rows(&[r#"{"source":"sdk","collector_id":"support-bot-inprocess"}"#])
    );
}

#[test]
fn rust_sdk_exports_to_serve_over_otlp_grpc() {
    let mut collector = Collector::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let summary = rt
        .block_on(rust_sdk::run(Some(format!("http://{}", collector.grpc))))
        .unwrap();
    assert_eq!(
        summary,
        "made 4 LLM calls; the collector accepted their spans"
    );
    collector.stop();
    assert_eq!(
        query_json(&collector.store(), SUPPORT_BOT_SQL),
        support_bot_rows(),
        "collector log:\n{}",
        collector.log()
    );
    let sources = query_json(&collector.store(), "SELECT DISTINCT source FROM audit_log");
    assert_eq!(sources, json_rows(&[r#"{"source":"otlp-grpc"}"#]));
}

#[test]
fn python_openai_app_against_the_mock_lands_in_serve() {
    let mut collector = Collector::start();
    let mock = MockOpenAi::start();
    let mut cmd = python();
    cmd.arg(examples_dir().join("python-openai/app.py"))
        .env("OPENAI_BASE_URL", mock.base_url())
        .env("OPENAI_API_KEY", "sk-not-a-real-key")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", collector.http),
        )
        .env("OTEL_SERVICE_NAME", "billing-bot")
        .env("OTEL_RESOURCE_ATTRIBUTES", "tenant.id=acme")
        .env(
            "OTEL_SEMCONV_STABILITY_OPT_IN",
            "gen_ai_latest_experimental",
        )
        .env(
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "span_and_event",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}; {INSTALL_HINT}"));
    let status = wait_within(&mut child, APP_TIMEOUT);
    let out = child.wait_with_output().unwrap();
    let out = Output {
        status: status.unwrap_or(out.status),
        ..out
    };
    assert!(
        out.status.success(),
        "app.py failed ({INSTALL_HINT}): {}",
        describe(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "chat: gpt-4.1-2025-04-14, 1234 in / 567 out\nembeddings: text-embedding-3-small, 11 in\n"
    );
    collector.stop();

    let rows = query_json(
        &collector.store(),
        "SELECT tenant, service_name, user_id, operation, response_model, input_tokens, \
         output_tokens, CAST(total_cost_usd AS VARCHAR) AS cost, \
         prompt_hash IS NOT NULL AS prompt_hashed, response_hash IS NOT NULL AS response_hashed \
         FROM audit_log ORDER BY operation",
    );
    assert_eq!(
        rows,
        json_rows(&[
            // 1234 × $2/Mtok + 567 × $8/Mtok (this instrumentation does not report the 200
            // cached tokens, so they are priced as uncached)
            r#"{"tenant":"acme","service_name":"billing-bot","user_id":"alice","operation":"chat","response_model":"gpt-4.1-2025-04-14","input_tokens":1234,"output_tokens":567,"cost":"0.007004000000","prompt_hashed":true,"response_hashed":true}"#,
            // 11 × $0.02/Mtok; it captures no embeddings input, so there is nothing to hash
            r#"{"tenant":"acme","service_name":"billing-bot","user_id":"alice","operation":"embeddings","response_model":"text-embedding-3-small","input_tokens":11,"output_tokens":null,"cost":"0.000000220000","prompt_hashed":false,"response_hashed":false}"#,
        ]),
        "collector log:\n{}",
        collector.log()
    );
}

#[test]
fn otel_collector_config_forwards_traces_and_logs_to_the_documented_port() {
    let dir = examples_dir().join("otel-collector");
    let out = python()
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(dir.join("collector.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "collector.yaml is not valid YAML (or PyYAML is missing: {INSTALL_HINT}): {}",
        describe(&out)
    );
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = &cfg["exporters"]["otlp/genai-audit"];
    let endpoint = ours["endpoint"].as_str().unwrap();
    assert_eq!(endpoint, "127.0.0.1:14317");
    assert_eq!(ours["tls"]["insecure"], true, "loopback gRPC without TLS");
    for signal in ["traces", "logs"] {
        let pipeline = &cfg["service"]["pipelines"][signal];
        let exporters: Vec<&str> = pipeline["exporters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(exporters, ["debug", "otlp/genai-audit"], "{signal}");
        assert_eq!(pipeline["receivers"][0], "otlp", "{signal}");
    }
    // The README's serve command listens where the config sends.
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("--grpc-listen {endpoint}")),
        "README must start serve on {endpoint}"
    );
    // And the port is not the Collector's own.
    let own = cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        .as_str()
        .unwrap();
    assert!(!own.ends_with(endpoint.rsplit(':').next().unwrap()));
}

#[test]
fn duckdb_queries_agree_with_genai_audit_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("genai-audit-data");
    let out = import(&store, &[fixtures().to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));

    let out = python()
        .arg(examples_dir().join("duckdb/run.py"))
        .arg(dir.path())
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run.py failed ({INSTALL_HINT}): {}",
        describe(&out)
    );
    let results: Vec<Vec<serde_json::Value>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 3, "three SELECTs in queries.sql");

    // Cost per tenant/day/model: DuckDB's totals equal the engine's.
    let duck_calls: i64 = results[0]
        .iter()
        .map(|r| r["calls"].as_i64().unwrap())
        .sum();
    let duck_cost: f64 = results[0]
        .iter()
        .filter_map(|r| r["cost_usd"].as_str())
        .map(|c| c.parse::<f64>().unwrap())
        .sum();
    let ours = query_json(
        &store,
        "SELECT count(*) AS calls, CAST(sum(total_cost_usd) AS VARCHAR) AS cost \
         FROM audit_log WHERE span_kind IN ('llm_call', 'embeddings')",
    );
    assert!(duck_calls > 0);
    assert_eq!(duck_calls, ours[0]["calls"].as_i64().unwrap());
    let our_cost: f64 = ours[0]["cost"].as_str().unwrap().parse().unwrap();
    assert!(our_cost > 0.0);
    assert!(
        (duck_cost - our_cost).abs() < 1e-9,
        "DuckDB {duck_cost} vs genai-audit {our_cost}"
    );

    // PII by type: same counts.
    let ours = query_json(
        &store,
        "SELECT pii_type, count(*) AS calls FROM \
         (SELECT unnest(pii_types) AS pii_type FROM audit_log WHERE pii_detected) \
         GROUP BY pii_type ORDER BY calls DESC, pii_type",
    );
    assert!(!ours.is_empty(), "the fixtures contain PII");
    assert_eq!(results[1], ours);

    // One user's records.
    let user_rows = query_json(
        &store,
        "SELECT count(*) AS n FROM audit_log WHERE user_id = 'user-7f3a9c'",
    );
    assert!(
        !results[2].is_empty(),
        "the fixtures have calls of user-7f3a9c"
    );
    assert_eq!(results[2].len() as i64, user_rows[0]["n"].as_i64().unwrap());
}
