//! Normalization never panics, whatever it is fed.

use genai_audit_core::audit_schema;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{Span, span::Event};
use proptest::prelude::*;
use prost::Message;

use crate::conventions::request;
use crate::{ctx, normalizer};

/// Keys every convention uses, so random spans hit the real code paths.
const KEYS: &[&str] = &[
    "gen_ai.operation.name",
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.response.finish_reasons",
    "gen_ai.request.temperature",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt.0.content",
    "gen_ai.completion.7.finish_reason",
    "llm.input_messages.x.message.content",
    "llm.invocation_parameters",
    "llm.token_count.prompt",
    "llm.cost.total",
    "openinference.span.kind",
    "traceloop.span.kind",
    "llm.request.type",
    "ai.operationId",
    "ai.usage.promptTokens",
    "ai.prompt",
    "ai.response.msToFirstChunk",
    "input.value",
    "user.id",
    "http.response.status_code",
    "error.type",
    "tenant.id",
    "x.other",
];

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        any::<String>().prop_map(Value::StringValue),
        prop_oneof![
            Just("[{\"role\":\"user\",\"parts\":[{\"content\":\"a@b.co\"}]}]".to_owned()),
            Just("{\"model\":1,\"temperature\":\"x\"}".to_owned()),
            Just("[[[[".to_owned()),
            Just("none".to_owned()),
            Just("1e400".to_owned()),
            Just("-9223372036854775809".to_owned()),
        ]
        .prop_map(Value::StringValue),
        any::<i64>().prop_map(Value::IntValue),
        any::<f64>().prop_map(Value::DoubleValue),
        any::<bool>().prop_map(Value::BoolValue),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::BytesValue),
    ]
    .prop_map(|v| AnyValue { value: Some(v) });
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|values| AnyValue {
                value: Some(Value::ArrayValue(
                    opentelemetry_proto::tonic::common::v1::ArrayValue { values }
                )),
            }),
            proptest::collection::vec(("[a-z.]{0,8}", inner), 0..4).prop_map(|kvs| AnyValue {
                value: Some(Value::KvlistValue(
                    opentelemetry_proto::tonic::common::v1::KeyValueList {
                        values: kvs
                            .into_iter()
                            .map(|(key, v)| KeyValue {
                                key,
                                value: Some(v),
                                ..Default::default()
                            })
                            .collect(),
                    }
                )),
            }),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(
        (
            prop::sample::select(KEYS),
            proptest::option::weighted(0.95, any_value()),
        ),
        0..12,
    )
    .prop_map(|kvs| {
        kvs.into_iter()
            .map(|(k, value)| KeyValue {
                key: k.to_owned(),
                value,
                ..Default::default()
            })
            .collect()
    })
}

fn span() -> impl Strategy<Value = Span> {
    (
        proptest::collection::vec(any::<u8>(), 0..18),
        proptest::collection::vec(any::<u8>(), 7..10),
        any::<u64>(),
        any::<u64>(),
        attributes(),
        proptest::collection::vec(
            (
                "exception|gen_ai.choice|gen_ai.user.message|gen_ai.content.prompt",
                attributes(),
            ),
            0..3,
        ),
    )
        .prop_map(|(trace_id, span_id, start, end, attributes, events)| Span {
            trace_id,
            span_id,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            events: events
                .into_iter()
                .map(|(name, attributes)| Event {
                    name,
                    attributes,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn traces_never_panic_and_always_fit_the_schema(
        spans in proptest::collection::vec(span(), 0..6),
        resource in attributes(),
    ) {
        let mut req = request(vec![], spans);
        req.resource_spans[0].resource.as_mut().unwrap().attributes = resource;
        let out = normalizer().normalize_traces(&req, &ctx());
        prop_assert_eq!(out.records.len() + out.skipped.len(), out.spans_seen);
        let batch = genai_audit_core::records_to_batch(&out.records).unwrap();
        prop_assert_eq!(batch.schema(), audit_schema());
        for r in &out.records {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&r.attributes).is_ok());
            prop_assert!(serde_json::from_str::<serde_json::Value>(&r.resource_attributes).is_ok());
            prop_assert!(r.duration_ms >= 0.0);
        }
    }

    #[test]
    fn logs_never_panic(records in proptest::collection::vec(
        (proptest::collection::vec(any::<u8>(), 15..17), proptest::collection::vec(any::<u8>(), 8..9),
         "gen_ai.choice|gen_ai.user.message|x", proptest::option::of(any_value()), attributes()), 0..6)
    ) {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records
                        .into_iter()
                        .map(|(trace_id, span_id, event_name, body, attributes)| LogRecord {
                            trace_id, span_id, event_name, body, attributes, ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let out = normalizer().normalize_logs(&req, &ctx());
        prop_assert!(out.contents.len() <= out.log_records_seen);
    }

    #[test]
    fn arbitrary_protobuf_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(req) = ExportTraceServiceRequest::decode(bytes.as_slice()) {
            let _ = normalizer().normalize_traces(&req, &ctx());
        }
    }
}
