//! Realistic synthetic OTLP GenAI traffic for benchmarks and load tests (feature `testkit`).
//!
//! Spans look like the official OTel OpenAI instrumentation's: 14 attributes, a unique response
//! id, one of a dozen models, thousands of end users, ten services. Deterministic for a seed.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// Models drawn from, with their providers.
pub const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3-mini"),
    ("openai", "text-embedding-3-small"),
    ("anthropic", "claude-sonnet-4"),
    ("anthropic", "claude-3-5-haiku"),
    ("gcp.gemini", "gemini-2.5-flash"),
    ("gcp.gemini", "gemini-2.5-pro"),
    ("deepseek", "deepseek-chat"),
    ("mistral_ai", "mistral-large"),
];

/// SplitMix64: tiny, fast, good enough to spread ids.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One chat or embeddings span without content, starting at `start_ns`.
pub fn genai_span(rng: &mut Rng, start_ns: u64, users: u64) -> Span {
    let (provider, model) = MODELS[rng.below(MODELS.len() as u64) as usize];
    let embeddings = model.contains("embedding");
    let response_id: String = std::iter::once("chatcmpl-".to_owned())
        .chain((0..29).map(|_| (ALNUM[rng.below(ALNUM.len() as u64) as usize] as char).to_string()))
        .collect();
    let input = 50 + rng.below(4000) as i64;
    let output = 10 + rng.below(800) as i64;
    let mut attributes = vec![
        kv(
            "gen_ai.operation.name",
            s(if embeddings { "embeddings" } else { "chat" }),
        ),
        kv("gen_ai.request.model", s(model)),
        kv("gen_ai.provider.name", s(provider)),
        kv("gen_ai.request.temperature", Value::DoubleValue(0.2)),
        kv("gen_ai.request.top_p", Value::DoubleValue(0.9)),
        kv("gen_ai.request.max_tokens", Value::IntValue(1024)),
        kv(
            "gen_ai.response.finish_reasons",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(s("stop")),
                }],
            }),
        ),
        kv("gen_ai.response.model", s(model)),
        kv("gen_ai.response.id", s(&response_id)),
        kv("gen_ai.usage.input_tokens", Value::IntValue(input)),
        kv("openai.response.service_tier", s("default")),
        kv("user.id", s(&format!("user-{}", rng.below(users)))),
        kv("session.id", s(&format!("sess-{}", rng.below(users * 4)))),
    ];
    if !embeddings {
        attributes.push(kv("gen_ai.usage.output_tokens", Value::IntValue(output)));
    }
    let duration = 200_000_000 + rng.below(8_000_000_000);
    let error = rng.below(100) < 2;
    if error {
        attributes.push(kv("error.type", s("RateLimitError")));
    }
    Span {
        trace_id: [rng.next_u64().to_be_bytes(), rng.next_u64().to_be_bytes()].concat(),
        span_id: (rng.next_u64() | 1).to_be_bytes().to_vec(),
        name: format!("chat {model}"),
        kind: 3,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + duration,
        attributes,
        status: Some(Status {
            code: if error { 2 } else { 0 },
            message: if error {
                "Error code: 429 - Rate limit reached".into()
            } else {
                String::new()
            },
        }),
        ..Default::default()
    }
}

/// An export request of `spans` spans spread over 10 services, starting at `start_ns` and
/// `step_ns` apart.
pub fn genai_request(
    rng: &mut Rng,
    spans: usize,
    start_ns: u64,
    step_ns: u64,
    users: u64,
) -> ExportTraceServiceRequest {
    let services = 10usize;
    let resource_spans = (0..services)
        .map(|svc| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s(&format!("svc-{svc}"))),
                    kv("service.version", s("1.4.2")),
                    kv("deployment.environment.name", s("prod")),
                    kv("telemetry.sdk.language", s("python")),
                    kv("telemetry.sdk.name", s("opentelemetry")),
                    kv("telemetry.sdk.version", s("1.45.2")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (svc..spans)
                    .step_by(services)
                    .map(|i| genai_span(rng, start_ns + i as u64 * step_ns, users))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .filter(|rs| rs.scope_spans.iter().any(|ss| !ss.spans.is_empty()))
        .collect();
    ExportTraceServiceRequest { resource_spans }
}
