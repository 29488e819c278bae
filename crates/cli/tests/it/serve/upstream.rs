//! An upstream OpenTelemetry Collector forwarding what real instrumentations produced: the
//! captured request bodies, sent as they are over OTLP/HTTP (protobuf and JSON) and, decoded, over
//! OTLP/gRPC. Every capture is sent three times; each call must be stored once.

use std::collections::BTreeSet;

use super::*;
use crate::fixtures;

/// Every capture file under `tests/fixtures/otlp`, relative, sorted.
fn captures(ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = fixtures();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == ext)
                && p.file_name().is_some_and(|n| n != "expected.jsonl")
            {
                out.push(p.strip_prefix(&root).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

fn is_logs(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str() == "logs")
}

#[test]
fn collector_captures_over_http_and_grpc_are_stored_once_with_their_values() {
    let pbs = captures("pb");
    let jsons = captures("json");
    assert_eq!((pbs.len(), jsons.len()), (17, 17), "{pbs:?} {jsons:?}");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    rt().block_on(async {
        let client = http_client();
        // OTLP/HTTP protobuf: the raw bodies.
        for rel in &pbs {
            let body = std::fs::read(fixtures().join(rel)).unwrap();
            let url = if is_logs(rel) {
                server.logs_url()
            } else {
                server.traces_url()
            };
            let reply = post(&client, &url, Some("application/x-protobuf"), body, &[]).await;
            assert_eq!(reply.status, 200, "{}: {reply:?}", rel.display());
            assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
            if !is_logs(rel) {
                assert_eq!(
                    reply.traces_response().partial_success,
                    None,
                    "{}",
                    rel.display()
                );
            }
        }
        // OTLP/HTTP JSON: each line as the Collector's file exporter wrote it.
        for rel in &jsons {
            let text = std::fs::read_to_string(fixtures().join(rel)).unwrap();
            let url = if is_logs(rel) {
                server.logs_url()
            } else {
                server.traces_url()
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let reply = post(
                    &client,
                    &url,
                    Some("application/json"),
                    line.as_bytes().to_vec(),
                    &[],
                )
                .await;
                assert_eq!(reply.status, 200, "{}: {reply:?}", rel.display());
                assert_eq!(reply.header("content-type"), Some("application/json"));
                let answer = reply.json();
                assert!(
                    answer
                        .get("partialSuccess")
                        .is_none_or(|p| p.get("rejectedSpans").is_none()),
                    "{}: {answer}",
                    rel.display()
                );
            }
        }
        // OTLP/gRPC with the generated clients.
        for rel in &pbs {
            let body = std::fs::read(fixtures().join(rel)).unwrap();
            if is_logs(rel) {
                let req = ExportLogsServiceRequest::decode(body.as_slice()).unwrap();
                let resp = grpc_logs(server.grpc, req).await;
                assert!(resp.is_ok(), "{}: {resp:?}", rel.display());
            } else {
                let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                let resp = grpc_traces(server.grpc, req, None).await;
                let resp = resp.unwrap_or_else(|s| panic!("{}: {s:?}", rel.display()));
                assert_eq!(resp.partial_success, None, "{}", rel.display());
            }
        }
    });
    let m = server.metrics();
    // 16 trace captures × 3 deliveries, one span each.
    assert_eq!(
        metric(&m, "genai_audit_receiver_spans_received_total"),
        48.0
    );
    assert_eq!(
        metric(&m, "genai_audit_receiver_spans_accepted_total"),
        48.0
    );
    assert_eq!(
        metric(&m, "genai_audit_receiver_log_records_received_total"),
        3.0
    );
    assert_eq!(metric(&m, "genai_audit_records_appended_total"), 48.0);
    let store = server.store();
    let log = server.stop();

    let rows = rows_by_id(read_rows(&store));
    let expected: Vec<serde_json::Value> =
        std::fs::read_to_string(fixtures().join("expected.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(expected.len(), 16);
    let want: BTreeSet<String> = expected
        .iter()
        .map(|e| {
            rid(
                &const_hex::decode(e["trace_id"].as_str().unwrap()).unwrap(),
                &const_hex::decode(e["span_id"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "exactly the 16 calls, each once\n{log}"
    );
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    for e in &expected {
        let case = format!("{}/{}", e["library"], e["case"]);
        let id = rid(
            &const_hex::decode(e["trace_id"].as_str().unwrap()).unwrap(),
            &const_hex::decode(e["span_id"].as_str().unwrap()).unwrap(),
        );
        let row = &rows[&id];
        for (column, key) in [
            ("service_name", "service_name"),
            ("provider", "provider"),
            ("operation", "operation"),
            ("request_model", "request_model"),
            ("response_model", "response_model"),
            ("response_id", "response_id"),
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("reasoning_tokens", "reasoning_tokens"),
            ("user_id", "user_id"),
            ("error_type", "error_type"),
            ("span_name", "span_name"),
        ] {
            assert_eq!(
                row.get(column),
                text(&e[key]).as_deref(),
                "{case}: column {column}"
            );
        }
        let is_error = e["is_error"].as_bool().unwrap();
        assert_eq!(
            row.get("status") == Some("error"),
            is_error,
            "{case}: status"
        );
        if is_error {
            let code = e["truth"]["http_status_code"]
                .as_i64()
                .map(|c| c.to_string());
            assert_eq!(row.get("http_status_code"), code.as_deref(), "{case}");
        }
        let pii = e["pii_expected"].as_bool().unwrap();
        assert_eq!(
            row.get("pii_detected"),
            Some(if pii { "true" } else { "false" }),
            "{case}"
        );
        assert_eq!(row.tenant, "default", "{case}");
        // The first delivery wins: the HTTP one.
        assert_eq!(row.get("source"), Some("otlp-http"), "{case}");
    }
    let pii = &rows[&crate::expected_id("openai-v2", "chat_pii")];
    assert_eq!(pii.get("pii_detected"), Some("true"));
    assert_eq!(pii.get("pii_types"), Some("CREDIT_CARD,EMAIL,PHONE"));
    assert_eq!(pii.get("data_classification"), Some("restricted"));
    assert_eq!(pii.get("content_captured"), Some("true"));
    assert!(pii.get("prompt_hash").is_some());
    // No captured content reaches the audit log in clear.
    for row in rows.values() {
        for value in row.cols.values().flatten() {
            assert!(
                !value.contains("jane.doe@example.com") && !value.contains("4111 1111"),
                "PII in clear in {row:#?}"
            );
        }
    }
}
