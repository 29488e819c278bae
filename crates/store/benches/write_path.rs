//! The write path's cost: Parquet encoding, and records through WAL (fsync) + Parquet + commit.
//!
//! `cargo bench -p genai-audit-store --bench write_path`
//! Targets (issue #3): ≥ 1 M records/s per core for the Parquet encode; ≤ 80 bytes per record
//! on disk for spans without content. Also printed: the OTLP protobuf size of the same spans.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use genai_audit_core::testkit::{Rng, genai_request};
use genai_audit_core::{
    AuditRecord, HashKey, IngestContext, Normalizer, NormalizerConfig, Source, records_to_batch,
};
use genai_audit_store::parquet_file::{ParquetOptions, encode, records_to_file_batch};
use genai_audit_store::{FlushPolicy, StoreLocation, Writer, WriterConfig};
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: usize = 100_000;

/// 100 k records of one tenant and one day, as a day's partition would hold them, and the
/// protobuf size of the OTLP requests they came from.
fn records() -> (Vec<AuditRecord>, usize) {
    let normalizer = Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).expect("32-byte key"),
    );
    let ctx = IngestContext::new(Source::OtlpGrpc, "bench", 1_795_400_000_000_000);
    let mut rng = Rng::new(1);
    let mut out = Vec::with_capacity(RECORDS);
    let mut otlp_bytes = 0;
    // Requests of 500 spans, as an SDK batch processor sends them, over one day.
    let step_ns = 86_400_000_000_000 / RECORDS as u64;
    for i in 0..RECORDS / 500 {
        let req = genai_request(
            &mut rng,
            500,
            1_795_000_000_000_000_000 + (i * 500) as u64 * step_ns,
            step_ns,
            5000,
        );
        otlp_bytes += req.encoded_len();
        out.extend(normalizer.normalize_traces(&req, &ctx).records);
    }
    (out, otlp_bytes)
}

fn bench(c: &mut Criterion) {
    let (records, otlp_bytes) = records();
    assert_eq!(records.len(), RECORDS);
    let opts = ParquetOptions::default();
    let batch = records_to_file_batch(&records).expect("batch");
    let file = encode(&batch, "bench", "bench", &opts).expect("encode");
    let per_record = file.bytes.len() as f64 / RECORDS as f64;
    let otlp_per_record = otlp_bytes as f64 / RECORDS as f64;
    eprintln!(
        "size: parquet {per_record:.1} B/record, OTLP protobuf {otlp_per_record:.1} B/span, ratio {:.3} ({} records, no content)",
        per_record / otlp_per_record,
        RECORDS
    );

    // Where the bytes go: compressed size per column, largest first.
    let reader =
        parquet::file::reader::SerializedFileReader::new(file.bytes.clone()).expect("read back");
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    let mut sizes: Vec<(String, i64)> = (0..meta.file_metadata().schema_descr().num_columns())
        .map(|i| {
            let name = meta
                .file_metadata()
                .schema_descr()
                .column(i)
                .path()
                .string();
            let bytes = meta
                .row_groups()
                .iter()
                .map(|rg| rg.column(i).compressed_size())
                .sum();
            (name, bytes)
        })
        .collect();
    sizes.sort_by_key(|(_, b)| -b);
    let top: Vec<String> = sizes
        .iter()
        .take(12)
        .map(|(n, b)| format!("{n} {:.1}", *b as f64 / RECORDS as f64))
        .collect();
    eprintln!("bytes/record by column: {}", top.join(", "));

    let mut group = c.benchmark_group("write_path");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.bench_function("parquet_encode_100k", |b| {
        b.iter(|| {
            let batch = records_to_file_batch(black_box(&records)).expect("batch");
            black_box(encode(&batch, "bench", "bench", &opts).expect("encode"))
        })
    });
    group.bench_function("records_to_arrow_100k", |b| {
        b.iter(|| black_box(records_to_batch(black_box(&records)).expect("batch")))
    });

    // End to end: appends of 500 records (fsync'd, group-committed), then flush and commit.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    group.bench_function("wal_fsync_parquet_commit_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let loc = StoreLocation::local(&dir.path().join("store")).expect("store");
                let mut cfg = WriterConfig::new("bench", dir.path().join("wal"));
                cfg.flush = FlushPolicy {
                    max_rows: usize::MAX,
                    max_bytes: usize::MAX,
                    max_age: Duration::from_secs(3600),
                    ..FlushPolicy::default()
                };
                total += rt.block_on(async {
                    let (w, _) = Writer::open(loc, cfg).await.expect("open");
                    let start = Instant::now();
                    let mut handles = Vec::new();
                    for chunk in records.chunks(500) {
                        let w = w.clone();
                        let chunk = chunk.to_vec();
                        handles.push(tokio::spawn(async move { w.append(chunk).await }));
                    }
                    for h in handles {
                        h.await.expect("task").expect("append");
                    }
                    w.flush().await.expect("flush");
                    let elapsed = start.elapsed();
                    w.shutdown().await.expect("shutdown");
                    elapsed
                });
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
