//! Encodes 100 000 realistic records (content-free spans) as one Parquet file, for profiling the
//! encode alone:
//!
//! - instruction counts with callgrind (repeatable whatever else the machine is doing):
//!   `valgrind --tool=callgrind target/release/examples/encode_once [generate-only]`
//! - on-CPU time per phase and a `perf record` profile over many rounds:
//!   `target/release/examples/encode_once 50` (encodes 50 times, prints ns of this thread's CPU
//!   per record for building the sorted batch and for encoding it).

// The collector's allocator: allocation-heavy phases cost what they cost in `serve`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use genai_audit_core::testkit::{Rng, genai_request};
use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};
use genai_audit_store::parquet_file::{ParquetOptions, encode, records_to_file_batch};

/// On-CPU time of the calling thread, ns (Linux `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let normalizer = Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).expect("32-byte key"),
    );
    let ctx = IngestContext::new(Source::OtlpGrpc, "example", 1_795_400_000_000_000);
    let mut rng = Rng::new(1);
    let mut records = Vec::new();
    for i in 0..200u64 {
        let req = genai_request(
            &mut rng,
            500,
            1_795_000_000_000_000_000 + i * 500_000_000_000,
            1_000_000_000,
            5000,
        );
        records.extend(normalizer.normalize_traces(&req, &ctx).records);
    }
    let arg = std::env::args().nth(1).unwrap_or_default();
    if arg == "generate-only" {
        std::hint::black_box(&records);
        return;
    }
    let rounds: u64 = arg.parse().unwrap_or(1).max(1);
    let (mut batch_ns, mut encode_ns, mut bytes) = (0, 0, 0);
    for _ in 0..rounds {
        let t0 = thread_cpu_ns();
        let batch = records_to_file_batch(&records).expect("batch");
        let t1 = thread_cpu_ns();
        let file =
            encode(&batch, "example", "example", &ParquetOptions::default()).expect("encode");
        let t2 = thread_cpu_ns();
        batch_ns += t1 - t0;
        encode_ns += t2 - t1;
        bytes = file.bytes.len();
    }
    let per = |ns: u64| ns as f64 / (rounds * records.len() as u64) as f64;
    eprintln!(
        "{} records, {bytes} bytes; CPU per record: sorted batch {:.0} ns, encode {:.0} ns, total {:.0} ns ({:.0} k records/s per core)",
        records.len(),
        per(batch_ns),
        per(encode_ns),
        per(batch_ns + encode_ns),
        1e6 / per(batch_ns + encode_ns)
    );
}
