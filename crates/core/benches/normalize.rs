//! Normalization throughput: spans per second on one core.
//!
//! `cargo bench -p genai-audit-core --bench normalize`
//! Target (issue #2): ≥ 1 M spans/s per core for spans without content.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

// The shipped binary uses mimalloc; measure with the allocator it runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS: usize = 1000;

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

/// A chat span as the official OTel OpenAI instrumentation emits it (no content), with an
/// end-user id: 14 attributes.
fn chat_span(n: usize, with_content: bool) -> Span {
    let models = ["gpt-4.1", "gpt-4o-mini", "o3-mini", "gpt-4o"];
    let model = models[n % models.len()];
    let mut attributes = vec![
        kv("gen_ai.operation.name", s("chat")),
        kv("gen_ai.request.model", s(model)),
        kv("gen_ai.provider.name", s("openai")),
        kv("gen_ai.request.temperature", Value::DoubleValue(0.2)),
        kv("gen_ai.request.top_p", Value::DoubleValue(0.9)),
        kv("gen_ai.request.max_tokens", Value::IntValue(256)),
        kv(
            "gen_ai.response.finish_reasons",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(s("stop")),
                }],
            }),
        ),
        kv("gen_ai.response.model", s(&format!("{model}-2025-04-14"))),
        kv("gen_ai.response.id", s(&format!("chatcmpl-{n:032x}"))),
        kv(
            "gen_ai.usage.input_tokens",
            Value::IntValue(1000 + n as i64 % 500),
        ),
        kv(
            "gen_ai.usage.output_tokens",
            Value::IntValue(200 + n as i64 % 300),
        ),
        kv("openai.response.service_tier", s("default")),
        kv("openai.response.system_fingerprint", s("fp_c0rpu5f1x7")),
        kv("user.id", s(&format!("user-{}", n % 5000))),
    ];
    if with_content {
        attributes.push(kv("gen_ai.input.messages", s(r#"[{"role":"system","parts":[{"content":"You are a concise, helpful assistant.","type":"text"}]},{"role":"user","parts":[{"content":"Hi, this is Jane Doe. My email is jane.doe@example.com and my phone is +1-202-555-0143. Please update my billing details for the account ending 4411, thanks a lot.","type":"text"}]}]"#)));
        attributes.push(kv("gen_ai.output.messages", s(r#"[{"role":"assistant","parts":[{"content":"Thanks Jane. I have updated the billing contact and we will call to confirm the change.","type":"text"}],"finish_reason":"stop"}]"#)));
    }
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(n as u64 + 1).to_be_bytes());
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (n as u64 + 1).to_be_bytes().to_vec(),
        name: format!("chat {model}"),
        kind: 3,
        start_time_unix_nano: 1_795_388_748_556_606_142 + n as u64 * 1_000_000,
        end_time_unix_nano: 1_795_388_749_556_606_142 + n as u64 * 1_000_000,
        attributes,
        status: Some(Status::default()),
        ..Default::default()
    }
}

fn request(with_content: bool) -> ExportTraceServiceRequest {
    // 10 services × 100 spans, as an OTel Collector batch would arrive.
    let resource_spans = (0..10)
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
                spans: (0..SPANS / 10)
                    .map(|i| chat_span(svc * 100 + i, with_content))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn bench(c: &mut Criterion) {
    let normalizer = Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).expect("32-byte key"),
    );
    let ctx = IngestContext::new(Source::OtlpGrpc, "bench", 1_795_400_000_000_000);
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, with_content) in [
        ("spans_without_content", false),
        ("spans_with_content", true),
    ] {
        let req = request(with_content);
        assert_eq!(normalizer.normalize_traces(&req, &ctx).records.len(), SPANS);
        group.bench_function(name, |b| {
            b.iter(|| black_box(normalizer.normalize_traces(black_box(&req), &ctx)))
        });
    }
    let records = normalizer.normalize_traces(&request(false), &ctx).records;
    group.bench_function("records_to_arrow_batch", |b| {
        b.iter(|| black_box(genai_audit_core::records_to_batch(black_box(&records))))
    });
    group.finish();
}

criterion_group!(benches, bench);
#[allow(missing_docs)]
mod _docs {}
criterion_main!(benches);
