//! Test records: real captures normalized by core, and synthetic ones at volume.

use std::path::PathBuf;
use std::sync::Arc;

use genai_audit_core::{AuditRecord, HashKey, IngestContext, Normalizer, NormalizerConfig, Source};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/otlp")
}

pub fn normalizer() -> Normalizer {
    Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[42u8; 32]).unwrap(),
    )
}

/// The 16 GenAI spans of the real captures, normalized.
pub fn fixture_records() -> Vec<AuditRecord> {
    let n = normalizer();
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

/// `n` distinct records derived from the captures: ids, users, tenants and days vary.
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
            r.start_time_us =
                1_795_000_000_000_000 + day * 86_400_000_000 + (k as i64 % 86_000) * 1_000_000;
            r.start_time_unix_nano = r.start_time_us * 1000 + 7;
            r.end_time_us = r.start_time_us + 1_500_000;
            r
        })
        .collect()
}
