//! Integration tests of genai-audit-core: real captures, every convention, robustness.
#![allow(clippy::unwrap_used)]

mod conventions;
mod fixtures;
mod robustness;

use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};

/// A normalizer with a fixed test key and the shipped price table.
pub fn normalizer() -> Normalizer {
    Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[42u8; 32]).unwrap(),
    )
}

/// A context as the HTTP receiver would build it.
pub fn ctx() -> IngestContext {
    IngestContext::new(Source::OtlpHttp, "test-collector", 1_795_400_000_000_000)
}
