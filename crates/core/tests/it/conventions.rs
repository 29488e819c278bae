//! One test per convention not covered by the real captures, built from each convention's
//! documented attribute names.

use genai_audit_core::{AuditRecord, CostSource, SkipReason, SpanKind, Status};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status as SpanStatus, span::Event,
};

use crate::{ctx, normalizer};

pub fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.into())),
    }
}
pub fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(Value::IntValue(v)),
    }
}
pub fn d(v: f64) -> AnyValue {
    AnyValue {
        value: Some(Value::DoubleValue(v)),
    }
}
pub fn b(v: bool) -> AnyValue {
    AnyValue {
        value: Some(Value::BoolValue(v)),
    }
}
pub fn arr(items: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::ArrayValue(ArrayValue { values: items })),
    }
}
pub fn kvl(items: Vec<(&str, AnyValue)>) -> AnyValue {
    AnyValue {
        value: Some(Value::KvlistValue(KeyValueList {
            values: attrs(items),
        })),
    }
}
pub fn attrs(items: Vec<(&str, AnyValue)>) -> Vec<KeyValue> {
    items
        .into_iter()
        .map(|(k, v)| KeyValue {
            key: k.into(),
            value: Some(v),
            ..Default::default()
        })
        .collect()
}

/// A span at 2025-06-14T12:00:00Z lasting 1.5 s.
pub fn span(n: u8, name: &str, a: Vec<(&str, AnyValue)>) -> Span {
    Span {
        trace_id: vec![0xab; 16],
        span_id: vec![n; 8],
        name: name.into(),
        start_time_unix_nano: 1_749_902_400_000_000_000,
        end_time_unix_nano: 1_749_902_401_500_000_000,
        attributes: attrs(a),
        ..Default::default()
    }
}

pub fn request(resource: Vec<(&str, AnyValue)>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: attrs(resource),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn one(span: Span) -> AuditRecord {
    let out = normalizer().normalize_traces(
        &request(vec![("service.name", s("svc"))], vec![span]),
        &ctx(),
    );
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    out.records.into_iter().next().unwrap()
}

#[test]
fn semconv_old_names_and_prompt_events() {
    let mut sp = span(
        1,
        "chat gpt-4o",
        vec![
            ("gen_ai.system", s("openai")),
            ("gen_ai.operation.name", s("chat")),
            ("gen_ai.request.model", s("gpt-4o")),
            ("gen_ai.usage.prompt_tokens", i(100)),
            ("gen_ai.usage.completion_tokens", i(50)),
            ("gen_ai.response.finish_reasons", s("[\"stop\"]")),
            ("enduser.id", s("alice")),
            ("http.response.status_code", i(200)),
            ("server.address", s("api.openai.com")),
        ],
    );
    sp.events = vec![
        Event {
            name: "gen_ai.content.prompt".into(),
            attributes: attrs(vec![(
                "gen_ai.prompt",
                s("[{\"role\":\"user\",\"content\":\"mail bob@example.org\"}]"),
            )]),
            ..Default::default()
        },
        Event {
            name: "gen_ai.content.completion".into(),
            attributes: attrs(vec![(
                "gen_ai.completion",
                s("[{\"role\":\"assistant\",\"content\":\"done\"}]"),
            )]),
            ..Default::default()
        },
    ];
    let r = one(sp);
    assert_eq!(r.provider.as_deref(), Some("openai"));
    assert_eq!(
        (r.input_tokens, r.output_tokens, r.total_tokens),
        (Some(100), Some(50), Some(150))
    );
    assert_eq!(r.finish_reasons, ["stop"]);
    assert_eq!(r.user_id.as_deref(), Some("alice"));
    assert_eq!(r.http_status_code, Some(200));
    assert_eq!(r.server_address.as_deref(), Some("api.openai.com"));
    assert!(r.content_captured);
    assert_eq!(r.pii_types, ["EMAIL"]);
    assert_eq!(r.data_classification.as_str(), "confidential");
    assert_eq!(
        r.prompt_hash.as_deref(),
        Some(
            normalizer()
                .hash_key()
                .hash("mail bob@example.org")
                .as_str()
        )
    );
    assert_eq!(
        r.response_hash.as_deref(),
        Some(normalizer().hash_key().hash("done").as_str())
    );
    // gpt-4o: $2.50 in, $10 out per million.
    assert_eq!(r.total_cost_usd.unwrap().to_string(), "0.000750000000");
}

#[test]
fn semconv_new_names_with_cache_reasoning_and_instructions() {
    let r = one(span(
        2,
        "chat claude-sonnet-4",
        vec![
            ("gen_ai.provider.name", s("anthropic")),
            ("gen_ai.operation.name", s("chat")),
            ("gen_ai.request.model", s("claude-sonnet-4")),
            ("gen_ai.response.model", s("claude-sonnet-4-20250514")),
            ("gen_ai.response.id", s("msg_01")),
            ("gen_ai.usage.input_tokens", i(1000)),
            ("gen_ai.usage.output_tokens", i(200)),
            ("gen_ai.usage.cache_read.input_tokens", i(600)),
            ("gen_ai.usage.cache_creation.input_tokens", i(100)),
            ("gen_ai.usage.reasoning.output_tokens", i(80)),
            ("gen_ai.response.time_to_first_chunk", d(0.25)),
            ("gen_ai.conversation.id", s("conv-9")),
            (
                "gen_ai.input.messages",
                s("[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Hi\"}]}]"),
            ),
            (
                "gen_ai.system_instructions",
                s("[{\"type\":\"text\",\"content\":\"Be brief.\"}]"),
            ),
        ],
    ));
    assert_eq!(r.provider.as_deref(), Some("anthropic"));
    assert_eq!(r.cached_input_tokens, Some(600));
    assert_eq!(r.cache_write_input_tokens, Some(100));
    assert_eq!(r.reasoning_tokens, Some(80));
    assert_eq!(r.time_to_first_token_ms, Some(250.0));
    assert_eq!(r.streaming, Some(true));
    assert_eq!(r.session_id.as_deref(), Some("conv-9"));
    assert_eq!(r.call_id, "anthropic:msg_01");
    // System instructions lead the canonical prompt even when sent after the messages.
    assert_eq!(
        r.prompt_hash.as_deref(),
        Some(normalizer().hash_key().hash("Be brief.\nHi").as_str())
    );
    assert!(!r.attributes.contains("Be brief"));
    assert_eq!(r.cost_source, Some(CostSource::PriceTable));
    // 300 uncached × $3 + 600 cached × $0.30 + 100 cache writes × $3.75, 200 out × $15 (per M).
    assert_eq!(r.input_cost_usd.unwrap().to_string(), "0.001455000000");
    assert_eq!(r.output_cost_usd.unwrap().to_string(), "0.003000000000");
    assert_eq!(r.total_cost_usd.unwrap().to_string(), "0.004455000000");
}

#[test]
fn per_message_events() {
    let mut sp = span(
        3,
        "chat",
        vec![
            ("gen_ai.system", s("openai")),
            ("gen_ai.request.model", s("gpt-4o-mini")),
        ],
    );
    sp.events = vec![
        Event {
            name: "gen_ai.system.message".into(),
            attributes: attrs(vec![("content", s("Be brief."))]),
            ..Default::default()
        },
        Event {
            name: "gen_ai.user.message".into(),
            attributes: attrs(vec![("content", s("My SSN is 123-45-6789"))]),
            ..Default::default()
        },
        Event {
            name: "gen_ai.choice".into(),
            attributes: attrs(vec![
                ("index", i(0)),
                ("finish_reason", s("stop")),
                (
                    "message",
                    kvl(vec![("role", s("assistant")), ("content", s("Noted."))]),
                ),
            ]),
            ..Default::default()
        },
    ];
    let r = one(sp);
    assert_eq!(r.pii_types, ["US_SSN"]);
    assert_eq!(r.data_classification.as_str(), "restricted");
    let key = normalizer();
    assert_eq!(
        r.prompt_hash.as_deref(),
        Some(
            key.hash_key()
                .hash("Be brief.\nMy SSN is 123-45-6789")
                .as_str()
        )
    );
    assert_eq!(
        r.response_hash.as_deref(),
        Some(key.hash_key().hash("Noted.").as_str())
    );
}

#[test]
fn openllmetry_indexed_attributes_and_workflow_wrappers() {
    let call = span(
        4,
        "openai.chat",
        vec![
            ("llm.request.type", s("chat")),
            ("gen_ai.system", s("OpenAI")),
            ("gen_ai.request.model", s("gpt-4o-mini")),
            ("gen_ai.usage.prompt_tokens", s("40")),
            ("gen_ai.usage.completion_tokens", d(10.0)),
            ("llm.usage.total_tokens", i(50)),
            ("gen_ai.prompt.0.role", s("system")),
            ("gen_ai.prompt.0.content", s("Be brief.")),
            ("gen_ai.prompt.1.role", s("user")),
            ("gen_ai.prompt.1.content", s("Hi")),
            ("gen_ai.completion.0.role", s("assistant")),
            ("gen_ai.completion.0.content", s("Hello")),
            ("gen_ai.completion.0.finish_reason", s("stop")),
            ("traceloop.association.properties.user_id", s("u-1")),
            ("traceloop.association.properties.session_id", s("s-1")),
        ],
    );
    let mut workflow = span(
        5,
        "support.workflow",
        vec![
            ("traceloop.span.kind", s("workflow")),
            ("traceloop.entity.name", s("support")),
            (
                "traceloop.entity.input",
                s("{\"question\":\"card 4111111111111111\"}"),
            ),
            ("gen_ai.usage.prompt_tokens", i(40)),
        ],
    );
    workflow.span_id = vec![5; 8];
    let out = normalizer().normalize_traces(&request(vec![], vec![call, workflow]), &ctx());
    let (c, w) = (&out.records[0], &out.records[1]);
    assert_eq!(c.span_kind, SpanKind::LlmCall);
    assert_eq!(c.operation.as_deref(), Some("chat"));
    assert_eq!(
        (c.input_tokens, c.output_tokens, c.total_tokens),
        (Some(40), Some(10), Some(50))
    );
    assert_eq!(c.finish_reasons, ["stop"]);
    assert_eq!(c.user_id.as_deref(), Some("u-1"));
    assert_eq!(c.session_id.as_deref(), Some("s-1"));
    assert_eq!(
        c.prompt_hash.as_deref(),
        Some(normalizer().hash_key().hash("Be brief.\nHi").as_str())
    );
    assert!(!c.attributes.contains("gen_ai.prompt") && !c.attributes.contains("gen_ai.completion"));
    // The workflow keeps its kind, carries no tokens or cost, and keeps its roll-up as attributes.
    assert_eq!(w.span_kind, SpanKind::Workflow);
    assert_eq!(
        (w.input_tokens, w.total_cost_usd, w.cost_source),
        (None, None, None)
    );
    assert!(
        w.attributes.contains("\"gen_ai.usage.prompt_tokens\":40"),
        "{}",
        w.attributes
    );
    assert!(w.attributes.contains("traceloop.entity.name"));
    assert!(!w.attributes.contains("4111"));
    assert_eq!(w.pii_types, ["CREDIT_CARD"]);
}

#[test]
fn openinference_llm_and_agent_spans() {
    let llm = span(
        6,
        "ChatOpenAI",
        vec![
            ("openinference.span.kind", s("LLM")),
            ("llm.provider", s("openai")),
            ("llm.system", s("openai")),
            ("llm.model_name", s("gpt-4o-2024-08-06")),
            (
                "llm.invocation_parameters",
                s("{\"model\":\"gpt-4o\",\"temperature\":0.3,\"max_tokens\":100}"),
            ),
            ("llm.token_count.prompt", i(1000)),
            ("llm.token_count.completion", i(100)),
            ("llm.token_count.total", i(1100)),
            ("llm.cost.total", d(0.0035)),
            (
                "input.value",
                s("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"model\":\"gpt-4o\"}"),
            ),
            ("input.mime_type", s("application/json")),
            ("output.value", s("Hello")),
            ("llm.input_messages.0.message.role", s("user")),
            ("llm.input_messages.0.message.content", s("Hi")),
            ("llm.output_messages.0.message.role", s("assistant")),
            ("llm.output_messages.0.message.content", s("Hello")),
            ("user.id", s("oi-user")),
            ("session.id", s("oi-session")),
        ],
    );
    let agent = span(
        7,
        "agent",
        vec![
            ("openinference.span.kind", s("AGENT")),
            ("llm.token_count.total", i(1100)),
            ("llm.cost.total", d(0.0035)),
        ],
    );
    let out = normalizer().normalize_traces(&request(vec![], vec![llm, agent]), &ctx());
    let (l, a) = (&out.records[0], &out.records[1]);
    assert_eq!(l.span_kind, SpanKind::LlmCall);
    assert_eq!(l.request_model.as_deref(), Some("gpt-4o"));
    assert_eq!(l.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(l.request_temperature, Some(0.3));
    assert_eq!(l.request_max_tokens, Some(100));
    assert_eq!(
        (l.input_tokens, l.output_tokens, l.total_tokens),
        (Some(1000), Some(100), Some(1100))
    );
    assert_eq!(l.reported_cost_usd.unwrap().to_string(), "0.003500000000");
    // Priced from the table ($2.50 / $10): 0.0025 + 0.001; the reported figure is kept beside it.
    assert_eq!(l.total_cost_usd.unwrap().to_string(), "0.003500000000");
    assert_eq!(l.cost_source, Some(CostSource::PriceTable));
    assert_eq!(l.user_id.as_deref(), Some("oi-user"));
    assert_eq!(l.session_id.as_deref(), Some("oi-session"));
    assert_eq!(
        l.prompt_hash.as_deref(),
        Some(normalizer().hash_key().hash("Hi").as_str())
    );
    assert!(!l.attributes.contains("input.value") && !l.attributes.contains("output.value"));
    assert_eq!(a.span_kind, SpanKind::Agent);
    assert_eq!(
        (a.total_tokens, a.reported_cost_usd, a.total_cost_usd),
        (None, None, None)
    );
}

#[test]
fn openlit_reported_cost_ttft_and_user() {
    let r = one(span(
        8,
        "chat mystery-model",
        vec![
            ("gen_ai.system", s("openai")),
            ("gen_ai.operation.name", s("chat")),
            ("gen_ai.request.model", s("mystery-model-x")),
            ("gen_ai.usage.input_tokens", i(10)),
            ("gen_ai.usage.output_tokens", i(5)),
            ("gen_ai.usage.cost", d(0.00042)),
            ("gen_ai.server.time_to_first_token", d(0.5)),
            ("gen_ai.request.user", s("lit-user")),
        ],
    ));
    assert_eq!(r.time_to_first_token_ms, Some(500.0));
    assert_eq!(r.user_id.as_deref(), Some("lit-user"));
    // Unknown model: the span's own figure is used and labelled as such.
    assert_eq!(r.cost_source, Some(CostSource::Reported));
    assert_eq!(r.total_cost_usd.unwrap().to_string(), "0.000420000000");
    assert_eq!(r.price_id, None);
}

#[test]
fn vercel_ai_sdk_wrapper_and_call() {
    let wrapper = span(
        9,
        "ai.generateText",
        vec![
            ("ai.operationId", s("ai.generateText")),
            ("operation.name", s("ai.generateText my-fn")),
            ("ai.model.id", s("gpt-4o-mini")),
            ("ai.model.provider", s("openai.chat")),
            ("ai.usage.promptTokens", i(20)),
            ("ai.usage.completionTokens", i(5)),
            (
                "ai.prompt",
                s("{\"system\":\"Be brief.\",\"prompt\":\"Hi\"}"),
            ),
            ("ai.response.text", s("Hello")),
            ("ai.telemetry.metadata.userId", s("v-user")),
        ],
    );
    let mut call = span(
        10,
        "ai.generateText.doGenerate",
        vec![
            ("ai.operationId", s("ai.generateText.doGenerate")),
            ("ai.model.id", s("gpt-4o-mini")),
            ("ai.model.provider", s("openai.chat")),
            ("gen_ai.system", s("openai.chat")),
            ("gen_ai.request.model", s("gpt-4o-mini")),
            ("ai.usage.inputTokens", i(20)),
            ("ai.usage.outputTokens", i(5)),
            ("ai.response.finishReason", s("stop")),
            ("ai.response.id", s("chatcmpl-v1")),
            ("ai.response.model", s("gpt-4o-mini-2024-07-18")),
            ("ai.response.msToFirstChunk", d(120.0)),
            (
                "ai.prompt.messages",
                s(
                    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}]",
                ),
            ),
            ("ai.response.text", s("Hello")),
            ("ai.telemetry.metadata.userId", s("v-user")),
            ("ai.telemetry.metadata.sessionId", s("v-session")),
        ],
    );
    call.parent_span_id = vec![9; 8];
    let out = normalizer().normalize_traces(&request(vec![], vec![wrapper, call]), &ctx());
    let (w, c) = (&out.records[0], &out.records[1]);
    assert_eq!(w.span_kind, SpanKind::Workflow);
    assert_eq!(w.total_cost_usd, None);
    assert_eq!(w.streaming, Some(false));
    assert_eq!(c.span_kind, SpanKind::LlmCall);
    assert_eq!(c.parent_span_id.as_deref(), Some("0909090909090909"));
    assert_eq!(c.provider.as_deref(), Some("openai"));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(20), Some(5)));
    assert_eq!(c.finish_reasons, ["stop"]);
    assert_eq!(c.call_id, "openai:chatcmpl-v1");
    assert_eq!(c.time_to_first_token_ms, Some(120.0));
    assert_eq!(c.session_id.as_deref(), Some("v-session"));
    // Both spans' prompts reduce to the same canonical text.
    assert_eq!(w.prompt_hash, c.prompt_hash);
    assert_eq!(
        c.prompt_hash.as_deref(),
        Some(normalizer().hash_key().hash("Be brief.\nHi").as_str())
    );
    let total: i128 = out
        .records
        .iter()
        .filter_map(|r| r.total_cost_usd)
        .map(|u| u.raw())
        .sum();
    assert_eq!(
        Some(total),
        c.total_cost_usd.map(|u| u.raw()),
        "the wrapper adds no cost"
    );
}

#[test]
fn errors_from_attributes_and_exception_events() {
    let mut sp = span(
        11,
        "chat",
        vec![
            ("gen_ai.provider.name", s("openai")),
            ("gen_ai.request.model", s("gpt-4.1")),
            ("client.address", s("10.1.2.3")),
            ("user_agent.original", s("acme-app/1.0")),
        ],
    );
    sp.events = vec![Event {
        name: "exception".into(),
        attributes: attrs(vec![
            ("exception.type", s("openai.APITimeoutError")),
            ("exception.message", s("Request timed out.")),
        ]),
        ..Default::default()
    }];
    let r = one(sp.clone());
    assert_eq!(r.status, Status::Error);
    assert_eq!(r.error_type.as_deref(), Some("openai.APITimeoutError"));
    assert_eq!(r.error_message.as_deref(), Some("Request timed out."));
    assert_eq!(r.client_address.as_deref(), Some("10.1.2.3"));
    assert_eq!(r.user_agent.as_deref(), Some("acme-app/1.0"));
    // An explicit OK status with no error stays ok.
    sp.events.clear();
    sp.status = Some(SpanStatus {
        code: 1,
        message: String::new(),
    });
    assert_eq!(one(sp).status, Status::Ok);
}

#[test]
fn messy_values_are_read_or_ignored_never_fatal() {
    let r = one(span(
        12,
        "chat",
        vec![
            ("gen_ai.provider.name", s("openai")),
            ("gen_ai.operation.name", s("chat")),
            ("gen_ai.request.model", s("none")),
            ("gen_ai.response.model", s("gpt-4.1-mini-2025-04-14")),
            ("gen_ai.usage.input_tokens", s(" 1000 ")),
            ("gen_ai.usage.output_tokens", s("not a number")),
            ("gen_ai.usage.cache_read.input_tokens", i(-5)),
            ("gen_ai.request.temperature", s("0.7")),
            ("gen_ai.request.max_tokens", d(256.0)),
            ("gen_ai.response.finish_reasons", arr(vec![s("stop"), i(3)])),
            (
                "gen_ai.input.messages",
                s("[{\"role\":\"user\",\"parts\":[{\"content\":\"truncat"),
            ),
        ],
    ));
    assert_eq!(r.request_model, None);
    assert_eq!(r.input_tokens, Some(1000));
    assert_eq!(r.output_tokens, None);
    assert_eq!(r.cached_input_tokens, None);
    assert_eq!(r.request_temperature, Some(0.7));
    assert_eq!(r.request_max_tokens, Some(256));
    assert_eq!(r.finish_reasons, ["stop", "3"]);
    // Truncated JSON content is hashed as it came.
    assert_eq!(
        r.prompt_hash.as_deref(),
        Some(
            normalizer()
                .hash_key()
                .hash("[{\"role\":\"user\",\"parts\":[{\"content\":\"truncat")
                .as_str()
        )
    );
    // Priced on the response model (date suffix tolerated); no output tokens → input only.
    assert_eq!(r.cost_source, Some(CostSource::PriceTable));
    assert!(
        r.price_id
            .as_deref()
            .unwrap()
            .starts_with("openai/gpt-4.1-mini@")
    );
}

#[test]
fn unknown_model_is_unpriced_not_zero() {
    let r = one(span(
        13,
        "chat",
        vec![
            ("gen_ai.provider.name", s("acme-llm")),
            ("gen_ai.request.model", s("acme-1")),
            ("gen_ai.usage.input_tokens", i(10)),
        ],
    ));
    assert_eq!(r.provider.as_deref(), Some("acme-llm"));
    assert_eq!(r.cost_source, Some(CostSource::Unpriced));
    assert_eq!(
        (r.total_cost_usd, r.input_cost_usd, r.price_id.as_deref()),
        (None, None, None)
    );
}

#[test]
fn tenants_from_resource_auth_or_default() {
    let sp = || span(14, "chat", vec![("gen_ai.request.model", s("gpt-4o"))]);
    let n = normalizer();
    let from_resource =
        n.normalize_traces(&request(vec![("tenant.id", s("acme"))], vec![sp()]), &ctx());
    assert_eq!(&*from_resource.records[0].tenant, "acme");
    let default = n.normalize_traces(&request(vec![], vec![sp()]), &ctx());
    assert_eq!(&*default.records[0].tenant, "default");
    // An authenticated tenant cannot be overridden by a resource attribute.
    let authed = n.normalize_traces(
        &request(vec![("tenant.id", s("evil"))], vec![sp()]),
        &ctx().with_tenant("bank-a"),
    );
    assert_eq!(&*authed.records[0].tenant, "bank-a");
    let bad = n.normalize_traces(&request(vec![("tenant.id", s("../x"))], vec![sp()]), &ctx());
    assert!(bad.records.is_empty());
    assert!(matches!(
        bad.skipped[0].reason,
        SkipReason::InvalidTenant { .. }
    ));
    assert_eq!(bad.rejected(), 1);
}

#[test]
fn resource_attributes_are_split_into_columns_and_json() {
    let out = normalizer().normalize_traces(
        &request(
            vec![
                ("service.name", s("billing")),
                ("service.version", s("2.1.0")),
                ("deployment.environment", s("prod")),
                ("host.name", s("node-7")),
            ],
            vec![span(
                15,
                "chat",
                vec![("gen_ai.request.model", s("gpt-4o"))],
            )],
        ),
        &ctx(),
    );
    let r = &out.records[0];
    assert_eq!(r.service_name.as_deref(), Some("billing"));
    assert_eq!(r.service_version.as_deref(), Some("2.1.0"));
    assert_eq!(r.deployment_environment.as_deref(), Some("prod"));
    let res: serde_json::Value = serde_json::from_str(&r.resource_attributes).unwrap();
    assert_eq!(res, serde_json::json!({"host.name": "node-7"}));
    let a: serde_json::Value = serde_json::from_str(&r.attributes).unwrap();
    assert!(a.is_object());
}

#[test]
fn non_genai_and_malformed_spans_are_reported() {
    let plain = span(16, "GET /health", vec![("http.request.method", s("GET"))]);
    let mut short_trace = span(17, "chat", vec![("gen_ai.request.model", s("gpt-4o"))]);
    short_trace.trace_id = vec![1; 8];
    let mut zero_span = span(18, "chat", vec![("gen_ai.request.model", s("gpt-4o"))]);
    zero_span.span_id = vec![0; 8];
    let mut no_start = span(19, "chat", vec![("gen_ai.request.model", s("gpt-4o"))]);
    no_start.start_time_unix_nano = 0;
    let out = normalizer().normalize_traces(
        &request(vec![], vec![plain, short_trace, zero_span, no_start]),
        &ctx(),
    );
    assert!(out.records.is_empty());
    assert_eq!(out.spans_seen, 4);
    let reasons: Vec<_> = out.skipped.iter().map(|s| s.reason.clone()).collect();
    assert_eq!(
        reasons,
        [
            SkipReason::NotGenAi,
            SkipReason::InvalidTraceId { len: 8 },
            SkipReason::InvalidSpanId { len: 8 },
            SkipReason::MissingStartTime,
        ]
    );
    assert_eq!((out.rejected(), out.dropped_not_genai()), (3, 1));
    assert_eq!(
        out.skipped[1].reason.to_string(),
        "trace_id must be 16 non-zero bytes, got 8 bytes"
    );
}

#[test]
fn record_ids_are_stable_and_documented() {
    let r = one(span(
        20,
        "chat",
        vec![("gen_ai.request.model", s("gpt-4o"))],
    ));
    // python3: hashlib.sha256(bytes([0xab]*16 + [20]*8)).hexdigest()[:32]
    assert_eq!(r.record_id, "a981c56055a3e6c4c181b70049b083a6");
    assert_eq!(r.record_id.len(), 32);
    assert_eq!(
        r.call_id, r.record_id,
        "no response id: the record is its own call"
    );
}

#[test]
fn records_convert_to_the_arrow_schema() {
    let n = normalizer();
    let req = request(
        vec![],
        vec![
            span(
                21,
                "chat",
                vec![
                    ("gen_ai.request.model", s("gpt-4o")),
                    ("gen_ai.usage.input_tokens", i(3)),
                ],
            ),
            span(
                22,
                "agent",
                vec![
                    ("openinference.span.kind", s("AGENT")),
                    ("streaming", b(true)),
                ],
            ),
        ],
    );
    let out = n.normalize_traces(&req, &ctx());
    let batch = genai_audit_core::records_to_batch(&out.records).unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.schema(), genai_audit_core::audit_schema());
}

/// Regressions from the review of docs/conventions.md against the code.
mod review {
    use super::*;

    #[test]
    fn generic_keys_alone_do_not_make_a_genai_span() {
        let http = span(
            30,
            "GET /v1/things",
            vec![
                ("http.response.status_code", i(200)),
                ("server.address", s("api.internal")),
                ("error.type", s("timeout")),
                ("user.id", s("u1")),
            ],
        );
        let out = normalizer().normalize_traces(&request(vec![], vec![http]), &ctx());
        assert!(out.records.is_empty());
        assert_eq!(out.skipped[0].reason, SkipReason::NotGenAi);
    }

    #[test]
    fn openinference_prompt_lists_and_embedding_text_are_content() {
        let llm = span(
            31,
            "llm",
            vec![
                ("openinference.span.kind", s("LLM")),
                ("llm.prompts", arr(vec![s("secret prompt a@b.co")])),
                ("llm.completions.0.text", s("done")),
                ("gen_ai.prompt.name", s("greeting")),
            ],
        );
        let emb = span(
            32,
            "embed",
            vec![
                ("openinference.span.kind", s("EMBEDDING")),
                ("embedding.model_name", s("text-embedding-3-small")),
                (
                    "embedding.embeddings.0.embedding.text",
                    s("call me at +1-202-555-0143"),
                ),
                (
                    "embedding.embeddings.0.embedding.vector",
                    arr(vec![d(0.1), d(0.2)]),
                ),
            ],
        );
        let out = normalizer().normalize_traces(&request(vec![], vec![llm, emb]), &ctx());
        let (l, e) = (&out.records[0], &out.records[1]);
        assert!(!l.attributes.contains("secret prompt") && !l.attributes.contains("llm.prompts"));
        assert_eq!(l.pii_types, ["EMAIL"]);
        // A non-text key under a content prefix is removed but not hashed as text.
        assert_eq!(
            l.prompt_hash.as_deref(),
            Some(
                normalizer()
                    .hash_key()
                    .hash("secret prompt a@b.co")
                    .as_str()
            )
        );
        assert_eq!(e.span_kind, SpanKind::Embeddings);
        assert!(e.content_captured);
        assert_eq!(e.pii_types, ["PHONE"]);
        assert!(!e.attributes.contains("0.1"), "{}", e.attributes);
    }

    #[test]
    fn an_unusable_preferred_value_falls_back_to_the_next_key() {
        let r = one(span(
            33,
            "chat",
            vec![
                ("gen_ai.request.model", s("gpt-4o")),
                ("gen_ai.usage.input_tokens", s("none")),
                ("llm.token_count.prompt", i(5)),
                ("gen_ai.server.time_to_first_token", d(-1.0)),
                ("ai.response.msToFirstChunk", d(40.0)),
                ("llm.cost.total", d(-3.0)),
            ],
        ));
        assert_eq!(r.input_tokens, Some(5));
        assert_eq!(r.time_to_first_token_ms, Some(40.0));
        assert_eq!(r.reported_cost_usd, None);
    }

    #[test]
    fn empty_content_is_captured_but_not_hashed() {
        let r = one(span(
            34,
            "chat",
            vec![
                ("gen_ai.request.model", s("gpt-4o")),
                ("gen_ai.input.messages", s("[]")),
            ],
        ));
        assert!(r.content_captured);
        assert_eq!((r.prompt_hash.as_deref(), r.prompt_chars), (None, None));
    }

    #[test]
    fn operation_synonyms_and_status_messages() {
        let mut sp = span(
            35,
            "embed",
            vec![
                ("gen_ai.operation.name", s("embedding")),
                ("gen_ai.request.model", s("text-embedding-3-small")),
            ],
        );
        sp.status = Some(SpanStatus {
            code: 1,
            message: "all good".into(),
        });
        let r = one(sp);
        assert_eq!(r.operation.as_deref(), Some("embeddings"));
        assert_eq!(
            r.error_message, None,
            "a message on an OK status is not an error"
        );
    }
}

/// Regressions from the second review of docs/conventions.md.
mod review2 {
    use super::*;

    #[test]
    fn an_empty_best_family_does_not_hide_pii_in_another() {
        let r = one(span(
            40,
            "chat",
            vec![
                ("gen_ai.request.model", s("gpt-4o")),
                ("gen_ai.input.messages", s("[]")),
                ("gen_ai.prompt.0.content", s("mail a@b.co")),
            ],
        ));
        assert_eq!(r.pii_types, ["EMAIL"]);
    }

    #[test]
    fn strings_inside_structures_are_taken_as_typed() {
        let r = one(span(
            41,
            "chat",
            vec![
                ("openinference.span.kind", s("LLM")),
                (
                    "llm.prompts",
                    arr(vec![s("{\"role\":\"user\",\"content\":\"Hi\"}")]),
                ),
            ],
        ));
        assert_eq!(
            r.prompt_hash.as_deref(),
            Some(
                normalizer()
                    .hash_key()
                    .hash("{\"role\":\"user\",\"content\":\"Hi\"}")
                    .as_str()
            )
        );
    }

    #[test]
    fn absent_content_is_not_content() {
        let r = one(span(
            42,
            "chat",
            vec![
                ("gen_ai.request.model", s("gpt-4o")),
                ("gen_ai.input.messages", s("none")),
                ("gen_ai.output.messages", s("")),
            ],
        ));
        assert!(!r.content_captured);
        assert_eq!(r.prompt_hash, None);
    }

    #[test]
    fn first_exception_event_wins_and_openinference_operations_are_normalized() {
        let mut sp = span(
            43,
            "embed",
            vec![
                ("openinference.span.kind", s("EMBEDDING")),
                ("gen_ai.operation.name", s("Embedding")),
                ("embedding.model_name", s("text-embedding-3-small")),
                (
                    "llm.input_messages",
                    s("[{\"role\":\"user\",\"content\":\"secret\"}]"),
                ),
            ],
        );
        sp.events = vec![
            Event {
                name: "exception".into(),
                attributes: attrs(vec![("exception.message", s("m1"))]),
                ..Default::default()
            },
            Event {
                name: "exception".into(),
                attributes: attrs(vec![
                    ("exception.type", s("T2")),
                    ("exception.message", s("m2")),
                ]),
                ..Default::default()
            },
        ];
        let r = one(sp);
        assert_eq!(r.error_message.as_deref(), Some("m1"));
        assert_eq!(r.error_type, None);
        assert_eq!(r.operation.as_deref(), Some("embeddings"));
        assert_eq!(r.request_model.as_deref(), Some("text-embedding-3-small"));
        assert!(!r.attributes.contains("secret"));
    }
}
