//! Acceptance against real captures (tests/fixtures/otlp): every value `expected.jsonl` asserts.

use std::path::PathBuf;

use genai_audit_core::{AuditRecord, CostSource, Status};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use crate::{ctx, normalizer};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("otlp/expected.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn load_pb(rel: &str) -> ExportTraceServiceRequest {
    let bytes = std::fs::read(fixtures().join(rel)).unwrap();
    ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap()
}

fn load_json(rel: &str) -> ExportTraceServiceRequest {
    let text = std::fs::read_to_string(fixtures().join(rel)).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn record_for(exp: &Value) -> AuditRecord {
    let req = load_pb(exp["pb_file"].as_str().unwrap());
    let out = normalizer().normalize_traces(&req, &ctx());
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    let span_id = exp["span_id"].as_str().unwrap();
    out.records
        .into_iter()
        .find(|r| r.span_id == span_id)
        .unwrap_or_else(|| panic!("no record for span {span_id}"))
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

fn opt_i64(v: &Value) -> Option<i64> {
    v.as_i64()
}

#[test]
fn every_asserted_value_matches() {
    let all = expected();
    assert_eq!(all.len(), 16);
    for exp in &all {
        let case = format!("{}/{}", exp["library"], exp["case"]);
        let r = record_for(exp);
        assert_eq!(r.trace_id, exp["trace_id"].as_str().unwrap(), "{case}");
        assert_eq!(
            r.parent_span_id.as_deref(),
            opt_str(&exp["parent_span_id"]),
            "{case}"
        );
        assert_eq!(r.span_name, exp["span_name"].as_str().unwrap(), "{case}");
        let start: i64 = exp["start_time_unix_nano"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let end: i64 = exp["end_time_unix_nano"].as_str().unwrap().parse().unwrap();
        assert_eq!(r.start_time_unix_nano, start, "{case}");
        assert_eq!(r.start_time_us, start / 1000, "{case}");
        assert_eq!(r.end_time_us, end / 1000, "{case}");
        assert!(
            (r.duration_ms - (end - start) as f64 / 1e6).abs() < 1e-9,
            "{case}"
        );
        assert_eq!(
            r.service_name.as_deref(),
            opt_str(&exp["service_name"]),
            "{case}"
        );
        assert_eq!(r.provider.as_deref(), opt_str(&exp["provider"]), "{case}");
        assert_eq!(r.operation.as_deref(), opt_str(&exp["operation"]), "{case}");
        assert_eq!(
            r.request_model.as_deref(),
            opt_str(&exp["request_model"]),
            "{case}"
        );
        assert_eq!(
            r.response_model.as_deref(),
            opt_str(&exp["response_model"]),
            "{case}"
        );
        assert_eq!(
            r.response_id.as_deref(),
            opt_str(&exp["response_id"]),
            "{case}"
        );
        // Values the span carries are asserted exactly; a value it does not carry must not be
        // invented, except totals, which are derived (input + output) and checked against truth.
        assert_eq!(r.input_tokens, opt_i64(&exp["input_tokens"]), "{case}");
        assert_eq!(r.output_tokens, opt_i64(&exp["output_tokens"]), "{case}");
        assert_eq!(
            r.cached_input_tokens,
            opt_i64(&exp["cached_input_tokens"]),
            "{case}"
        );
        assert_eq!(
            r.reasoning_tokens,
            opt_i64(&exp["reasoning_tokens"]),
            "{case}"
        );
        assert_eq!(
            r.cache_write_input_tokens,
            opt_i64(&exp["cache_creation_input_tokens"]),
            "{case}"
        );
        if let Some(total) = opt_i64(&exp["total_tokens"]) {
            assert_eq!(r.total_tokens, Some(total), "{case}");
        } else if r.input_tokens.is_some() {
            let truth = &exp["truth"];
            let want = truth["input_tokens"].as_i64().unwrap()
                + truth["output_tokens"].as_i64().unwrap_or(0);
            assert_eq!(r.total_tokens, Some(want), "{case}");
        }
        assert_eq!(r.user_id.as_deref(), opt_str(&exp["user_id"]), "{case}");
        assert_eq!(
            r.session_id.as_deref(),
            opt_str(&exp["session_id"]),
            "{case}"
        );
        let is_error = exp["is_error"].as_bool().unwrap();
        assert_eq!(r.status == Status::Error, is_error, "{case}");
        if !is_error {
            assert!(
                r.error_type.is_none() && r.error_message.is_none(),
                "{case}"
            );
        }
        assert_eq!(
            r.error_type.as_deref(),
            opt_str(&exp["error_type"]),
            "{case}"
        );
        if let Some(exc) = opt_str(&exp["exception_type"]) {
            // `error.type` wins over the exception event, which names the same class.
            let ty = r.error_type.as_deref().unwrap();
            assert!(exc.ends_with(ty), "{case}: {exc} vs {ty}");
        }
        assert_eq!(
            r.error_message.as_deref(),
            opt_str(&exp["status_message"]),
            "{case}"
        );
        if !is_error {
            // No span of the captures carries an HTTP status on success: none is invented.
            assert_eq!(r.http_status_code, None, "{case}");
        } else {
            // Parsed from the SDK's "Error code: NNN" message; the truth knows the real status.
            assert_eq!(
                r.http_status_code,
                opt_i64(&exp["truth"]["http_status_code"]).map(|c| c as i32),
                "{case}"
            );
        }
        assert_eq!(
            r.content_captured,
            exp["content_captured"].as_bool().unwrap(),
            "{case}"
        );
        assert_eq!(r.prompt_hash.is_some(), r.content_captured, "{case}");
        let want_pii = exp["pii_expected"].as_bool().unwrap();
        assert_eq!(r.pii_detected, want_pii, "{case}");
        if want_pii {
            assert_eq!(r.pii_types, ["CREDIT_CARD", "EMAIL", "PHONE"], "{case}");
            assert_eq!(r.data_classification.as_str(), "restricted", "{case}");
        } else {
            assert_eq!(r.data_classification.as_str(), "internal", "{case}");
        }
        assert!(r.span_kind.is_provider_call(), "{case}");
        let want_call = match &r.response_id {
            Some(id) => format!("openai:{id}"),
            None => r.record_id.clone(),
        };
        assert_eq!(r.call_id, want_call, "{case}");
    }
}

#[test]
fn no_content_survives_anywhere_in_the_record() {
    for exp in expected() {
        let r = record_for(&exp);
        let serialized = serde_json::to_string(&r).unwrap();
        let truth = &exp["truth"];
        let mut secrets: Vec<String> = exp["pii_values_present"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for k in ["user_prompt", "reply"] {
            if let Some(s) = truth[k].as_str() {
                secrets.push(s.to_owned());
            }
        }
        secrets.push("You are a concise, helpful assistant.".to_owned());
        for s in secrets {
            assert!(
                !serialized.contains(&s),
                "{}: record contains {s:?}",
                exp["case"]
            );
        }
        for key in exp["content_attributes"].as_array().unwrap() {
            assert!(
                !r.attributes.contains(key.as_str().unwrap()),
                "{key} left in attributes"
            );
        }
    }
}

#[test]
fn json_and_protobuf_captures_normalize_identically() {
    for exp in expected() {
        let pb = normalizer().normalize_traces(&load_pb(exp["pb_file"].as_str().unwrap()), &ctx());
        let js = normalizer().normalize_traces(&load_json(exp["file"].as_str().unwrap()), &ctx());
        assert_eq!(pb.records, js.records, "{}", exp["file"]);
    }
}

#[test]
fn same_call_hashes_the_same_across_instrumentations() {
    let all = expected();
    let find = |lib: &str, case: &str| {
        all.iter()
            .find(|e| e["library"] == lib && e["case"] == case)
            .map(record_for)
            .unwrap()
    };
    let v2 = find("openai-v2", "chat_pii");
    let tl = find("traceloop-openai", "chat_pii");
    assert!(v2.prompt_hash.is_some());
    assert_eq!(v2.prompt_hash, tl.prompt_hash);
    assert_eq!(v2.response_hash, tl.response_hash);
    assert_eq!(v2.prompt_chars, tl.prompt_chars);
    // The canonical prompt is system + user text joined by a newline.
    let exp = all.iter().find(|e| e["case"] == "chat_pii").unwrap();
    let canonical = format!(
        "You are a concise, helpful assistant.\n{}",
        exp["truth"]["user_prompt"].as_str().unwrap()
    );
    assert_eq!(
        v2.prompt_hash.as_deref(),
        Some(normalizer().hash_key().hash(&canonical).as_str())
    );
    assert_eq!(
        v2.response_hash.as_deref(),
        Some(
            normalizer()
                .hash_key()
                .hash(exp["truth"]["reply"].as_str().unwrap())
                .as_str()
        )
    );
}

#[test]
fn content_in_log_records_is_correlated_to_its_span() {
    let n = normalizer();
    // The span without content…
    let mut span_req = load_pb("otlp/openai-v2/chat_pii.pb");
    for rs in &mut span_req.resource_spans {
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                s.attributes.retain(|kv| {
                    !kv.key.starts_with("gen_ai.input") && !kv.key.starts_with("gen_ai.output")
                });
            }
        }
    }
    let mut records = n.normalize_traces(&span_req, &ctx()).records;
    assert_eq!(records.len(), 1);
    assert!(!records[0].content_captured && !records[0].pii_detected);
    // …and its content from the logs request, merged.
    let bytes = std::fs::read(fixtures().join("otlp/openai-v2/logs/chat_pii.pb")).unwrap();
    let logs = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
    let out = n.normalize_logs(&logs, &ctx());
    assert_eq!(out.log_records_seen, 1);
    assert_eq!(out.contents.len(), 1);
    let unmatched = n.merge_contents(&mut records, out.contents);
    assert!(unmatched.is_empty());
    let r = &records[0];
    assert!(r.content_captured && r.pii_detected);
    assert_eq!(r.pii_types, ["CREDIT_CARD", "EMAIL", "PHONE"]);
    assert_eq!(r.data_classification.as_str(), "restricted");
    // Same canonical text as the span-attribute capture of the same call.
    let with_attrs = n
        .normalize_traces(&load_pb("otlp/openai-v2/chat_pii.pb"), &ctx())
        .records;
    assert_eq!(r.prompt_hash, with_attrs[0].prompt_hash);
    assert_eq!(r.response_hash, with_attrs[0].response_hash);
    // The logs JSON capture gives the same digest.
    let text =
        std::fs::read_to_string(fixtures().join("otlp/openai-v2/logs/chat_pii.json")).unwrap();
    let logs_json: ExportLogsServiceRequest =
        serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        n.normalize_logs(&logs_json, &ctx()).contents[0]
            .digest
            .prompt_hash,
        r.prompt_hash
    );
}

#[test]
fn costs_of_the_captured_calls() {
    let all = expected();
    let find = |lib: &str, case: &str| {
        all.iter()
            .find(|e| e["library"] == lib && e["case"] == case)
            .map(record_for)
            .unwrap()
    };
    // gpt-4.1 at $2 / $0.50 cached / $8 per million; openai-v2 does not report cached tokens.
    let v2 = find("openai-v2", "chat_basic");
    assert_eq!(v2.cost_source, Some(CostSource::PriceTable));
    assert_eq!(v2.input_cost_usd.unwrap().to_string(), "0.002468000000");
    assert_eq!(v2.output_cost_usd.unwrap().to_string(), "0.004536000000");
    assert_eq!(v2.total_cost_usd.unwrap().to_string(), "0.007004000000");
    assert!(
        v2.price_id
            .as_deref()
            .unwrap()
            .starts_with("openai/gpt-4.1@")
    );
    // Traceloop reports 200 cached tokens: 1034 × $2 + 200 × $0.50 per million.
    let tl = find("traceloop-openai", "chat_basic");
    assert_eq!(tl.input_cost_usd.unwrap().to_string(), "0.002168000000");
    assert_eq!(tl.total_cost_usd.unwrap().to_string(), "0.006704000000");
    // Embeddings: 11 tokens at $0.02 per million.
    let emb = find("openai-v2", "embeddings");
    assert_eq!(emb.total_cost_usd.unwrap().to_string(), "0.000000220000");
    // A rate-limited call reports no usage: no cost, never a guessed zero.
    let err = find("openai-v2", "error_429");
    assert_eq!(err.total_cost_usd, None);
    assert_eq!(err.cost_source, Some(CostSource::Unpriced));
    assert!(
        err.price_id.is_some(),
        "the model is known even if usage is not"
    );
}
