//! Normalization throughput: spans per second on one core.
//!
//! `cargo bench -p genai-audit-core --bench normalize`
//! Target (issue #2): ≥ 1 M spans/s per core for spans without content.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use genai_audit_core::testkit::{Rng, genai_request};
use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

// The shipped binary uses mimalloc; measure with the allocator it runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS: usize = 1000;

/// A batch of 1000 spans over 10 services, as an OTel Collector would forward it.
fn request(with_content: bool) -> ExportTraceServiceRequest {
    let mut req = genai_request(
        &mut Rng::new(1),
        SPANS,
        1_795_388_748_556_606_142,
        1_000_000,
        5000,
    );
    if with_content {
        let prompt = r#"[{"role":"system","parts":[{"content":"You are a concise, helpful assistant.","type":"text"}]},{"role":"user","parts":[{"content":"Hi, this is Jane Doe. My email is jane.doe@example.com and my phone is +1-202-555-0143. Please update my billing details for the account ending 4411, thanks a lot.","type":"text"}]}]"#;
        let reply = r#"[{"role":"assistant","parts":[{"content":"Thanks Jane. I have updated the billing contact and we will call to confirm the change.","type":"text"}],"finish_reason":"stop"}]"#;
        for span in req
            .resource_spans
            .iter_mut()
            .flat_map(|rs| rs.scope_spans.iter_mut())
            .flat_map(|ss| ss.spans.iter_mut())
        {
            for (key, text) in [
                ("gen_ai.input.messages", prompt),
                ("gen_ai.output.messages", reply),
            ] {
                span.attributes.push(KeyValue {
                    key: key.into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(text.into())),
                    }),
                    ..Default::default()
                });
            }
        }
    }
    req
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
criterion_main!(benches);
