//! Encodes 20 000 realistic records once (for instruction counting with callgrind, which is
//! repeatable whatever else the machine is doing):
//! `valgrind --tool=callgrind target/release/examples/encode_once [generate-only]`

use genai_audit_core::testkit::{Rng, genai_request};
use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};
use genai_audit_store::parquet_file::{ParquetOptions, encode, records_to_file_batch};

fn main() {
    let normalizer = Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).expect("32-byte key"),
    );
    let ctx = IngestContext::new(Source::OtlpGrpc, "example", 1_795_400_000_000_000);
    let mut rng = Rng::new(1);
    let mut records = Vec::new();
    for i in 0..40u64 {
        let req = genai_request(
            &mut rng,
            500,
            1_795_000_000_000_000_000 + i * 500_000_000_000,
            1_000_000_000,
            5000,
        );
        records.extend(normalizer.normalize_traces(&req, &ctx).records);
    }
    if std::env::args().any(|a| a == "generate-only") {
        std::hint::black_box(&records);
        return;
    }
    let batch = records_to_file_batch(&records).expect("batch");
    let file = encode(&batch, "example", "example", &ParquetOptions::default()).expect("encode");
    eprintln!("{} records, {} bytes", records.len(), file.bytes.len());
}
