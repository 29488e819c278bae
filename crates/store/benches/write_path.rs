//! The write path's cost: Parquet encoding, and records through WAL (fsync) + Parquet + commit.
//!
//! `cargo bench -p genai-audit-store --bench write_path`
//! Targets (issue #3): ≥ 1 M records/s per core for the Parquet encode; ≤ 80 bytes per record
//! on disk for spans without content. Printed first: the file size per record with and without
//! content, where the bytes go (per column), and the OTLP protobuf size of the same spans.
//!
//! The encode benches (`*_cpu`) report this thread's CPU time, not wall time, so their
//! throughput is records per second per core even on a machine busy with other work. The
//! end-to-end bench reports wall time, then the process CPU-seconds per million records.
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
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: usize = 100_000;

/// 100 k records of one tenant and one day, as a day's partition would hold them, and the
/// protobuf size of the OTLP requests they came from. With `content`, every span also carries
/// its prompt and completion (`gen_ai.input.messages` / `gen_ai.output.messages`, unique per
/// span), so the records have content hashes, sizes and PII flags.
fn make_records(content: bool) -> (Vec<AuditRecord>, usize) {
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
        let mut req = genai_request(
            &mut rng,
            500,
            1_795_000_000_000_000_000 + (i * 500) as u64 * step_ns,
            step_ns,
            5000,
        );
        if content {
            add_content(&mut req, &mut rng);
        }
        otlp_bytes += req.encoded_len();
        out.extend(normalizer.normalize_traces(&req, &ctx).records);
    }
    (out, otlp_bytes)
}

/// Gives every span of `req` a prompt and a completion, as the OTel instrumentations capture
/// them with content capture on.
fn add_content(req: &mut ExportTraceServiceRequest, rng: &mut Rng) {
    let text = |key: &str, v: String| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v)),
        }),
        ..Default::default()
    };
    for span in req
        .resource_spans
        .iter_mut()
        .flat_map(|rs| &mut rs.scope_spans)
        .flat_map(|ss| &mut ss.spans)
    {
        let (q, a) = (rng.next_u64(), rng.next_u64());
        span.attributes.push(text(
            "gen_ai.input.messages",
            format!(
                r#"[{{"role":"user","parts":[{{"type":"text","content":"Summarize ticket {q} for the support team."}}]}}]"#
            ),
        ));
        span.attributes.push(text(
            "gen_ai.output.messages",
            format!(
                r#"[{{"role":"assistant","parts":[{{"type":"text","content":"Ticket {q}: the customer reports error {a}; a refund was issued."}}],"finish_reason":"stop"}}]"#
            ),
        ));
    }
}

/// Prints where a file's bytes go: per record, the column chunks (largest first, with their
/// uncompressed size and encodings), bloom filters, page indexes and the footer.
fn size_report(label: &str, records: &[AuditRecord], otlp_bytes: usize, opts: &ParquetOptions) {
    let batch = records_to_file_batch(records).expect("batch");
    let file = encode(&batch, "bench", "bench", opts).expect("encode");
    let n = records.len() as f64;
    let per_record = file.bytes.len() as f64 / n;
    let otlp_per_record = otlp_bytes as f64 / n;
    eprintln!(
        "size ({label}): parquet {per_record:.1} B/record, OTLP protobuf {otlp_per_record:.1} B/span, ratio {:.3} ({} records)",
        per_record / otlp_per_record,
        records.len()
    );
    let reader =
        parquet::file::reader::SerializedFileReader::new(file.bytes.clone()).expect("read back");
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    let schema = meta.file_metadata().schema_descr();
    let (mut chunks, mut blooms, mut indexes) = (0i64, 0i64, 0i64);
    let mut cols: Vec<(String, i64, i64, String)> = (0..schema.num_columns())
        .map(|i| {
            let mut encodings = std::collections::BTreeSet::new();
            let (mut compressed, mut uncompressed) = (0, 0);
            for rg in meta.row_groups() {
                let c = rg.column(i);
                compressed += c.compressed_size();
                uncompressed += c.uncompressed_size();
                blooms += i64::from(c.bloom_filter_length().unwrap_or(0));
                indexes += i64::from(c.column_index_length().unwrap_or(0))
                    + i64::from(c.offset_index_length().unwrap_or(0));
                encodings.extend(c.encodings().map(|e| format!("{e:?}")));
            }
            chunks += compressed;
            let encodings: Vec<_> = encodings.into_iter().collect();
            (
                schema.column(i).path().string(),
                compressed,
                uncompressed,
                encodings.join("+"),
            )
        })
        .collect();
    let footer = file.bytes.len() as i64 - chunks - blooms - indexes;
    eprintln!(
        "  column chunks {:.1}, bloom filters {:.1}, page indexes {:.1}, footer and rest {:.1} B/record; {} row group(s)",
        chunks as f64 / n,
        blooms as f64 / n,
        indexes as f64 / n,
        footer as f64 / n,
        meta.num_row_groups()
    );
    cols.sort_by_key(|(_, b, _, _)| -b);
    eprintln!(
        "  {:<28} {:>9} {:>9}  encodings",
        "column", "B/record", "raw"
    );
    for (name, compressed, uncompressed, encodings) in cols.iter().take(25) {
        eprintln!(
            "  {name:<28} {:>9.2} {:>9.2}  {encodings}",
            *compressed as f64 / n,
            *uncompressed as f64 / n
        );
    }
    let rest: i64 = cols.iter().skip(25).map(|c| c.1).sum();
    eprintln!(
        "  {:<28} {:>9.2}",
        format!("({} more columns)", cols.len().saturating_sub(25)),
        rest as f64 / n
    );
}

/// On-CPU time of the calling thread (Linux `/proc/thread-self/schedstat`, ns).
fn thread_cpu() -> Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux) gives the thread's CPU time");
    Duration::from_nanos(ns)
}

/// CPU time of the whole process, all threads (`/proc/self/stat` utime + stime, in the kernel's
/// 100 Hz clock ticks).
fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux)");
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("tick count"))
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

/// The CPU time `f` took on this thread.
fn on_cpu(f: impl FnOnce()) -> Duration {
    let start = thread_cpu();
    f();
    thread_cpu() - start
}

fn bench(c: &mut Criterion) {
    let (records, otlp_bytes) = make_records(false);
    assert_eq!(records.len(), RECORDS);
    let opts = ParquetOptions::default();
    size_report("no content", &records, otlp_bytes, &opts);
    let (with_content, content_otlp_bytes) = make_records(true);
    assert!(with_content.iter().all(|r| r.prompt_hash.is_some()));
    size_report("with content", &with_content, content_otlp_bytes, &opts);

    let mut group = c.benchmark_group("write_path");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    // Encoding is single-threaded: its rate per core is records per second of this thread's
    // CPU time, which other processes on a busy machine disturb far less than wall time.
    group.bench_function("parquet_encode_100k_cpu", |b| {
        b.iter_custom(|iters| {
            on_cpu(|| {
                for _ in 0..iters {
                    let batch = records_to_file_batch(black_box(&records)).expect("batch");
                    black_box(encode(&batch, "bench", "bench", &opts).expect("encode"));
                }
            })
        })
    });
    group.bench_function("parquet_encode_100k_with_content_cpu", |b| {
        b.iter_custom(|iters| {
            on_cpu(|| {
                for _ in 0..iters {
                    let batch = records_to_file_batch(black_box(&with_content)).expect("batch");
                    black_box(encode(&batch, "bench", "bench", &opts).expect("encode"));
                }
            })
        })
    });
    group.bench_function("records_to_arrow_100k_cpu", |b| {
        b.iter_custom(|iters| {
            on_cpu(|| {
                for _ in 0..iters {
                    black_box(records_to_batch(black_box(&records)).expect("batch"));
                }
            })
        })
    });

    // End to end: appends of 500 records (fsync'd, group-committed), then flush and commit.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut process_cpu = Duration::ZERO;
    let mut runs = 0u32;
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
                // The requests' records, as the receiver hands them over (not timed).
                let chunks: Vec<Vec<AuditRecord>> =
                    records.chunks(500).map(<[AuditRecord]>::to_vec).collect();
                let (wall, cpu) = rt.block_on(async {
                    let (w, _) = Writer::open(loc, cfg).await.expect("open");
                    let (start, cpu_start) = (Instant::now(), process_cpu_time());
                    let mut handles = Vec::new();
                    for chunk in chunks {
                        let w = w.clone();
                        handles.push(tokio::spawn(async move { w.append(chunk).await }));
                    }
                    for h in handles {
                        h.await.expect("task").expect("append");
                    }
                    w.flush().await.expect("flush");
                    let measured = (start.elapsed(), process_cpu_time() - cpu_start);
                    w.shutdown().await.expect("shutdown");
                    measured
                });
                total += wall;
                process_cpu += cpu;
                runs += 1;
            }
            total
        })
    });
    eprintln!(
        "wal_fsync_parquet_commit_100k: {:.2} CPU-s per million records, all threads ({:.0} k records/s per core)",
        process_cpu.as_secs_f64() / f64::from(runs.max(1)) / RECORDS as f64 * 1e6,
        f64::from(runs.max(1)) * RECORDS as f64 / process_cpu.as_secs_f64().max(1e-9) / 1e3
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
