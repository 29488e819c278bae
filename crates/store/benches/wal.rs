//! Write-ahead log throughput: appends/s and MB/s with `Fsync` durability (one `fdatasync` per
//! group), for batches of 100 payloads of ~300 bytes, and for single appends from several threads.
//! An entry is 316 bytes on disk (16 bytes of framing): MB/s = entries/s x 316.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use genai_audit_store::wal::{Durability, Wal, WalOptions};

const PAYLOAD: usize = 300;
const BATCH: usize = 100;

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..PAYLOAD).map(|j| (i * 7 + j) as u8).collect())
        .collect()
}

fn bench_wal(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal");
    g.sample_size(10);
    for durability in [Durability::Fsync, Durability::Os] {
        let tmp = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            durability,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(tmp.path(), opts).unwrap();
        let name = format!("{durability:?}").to_lowercase();

        // One caller, batches of 100: one write + one fsync per batch.
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("{name}/batch100x300B"), |b| {
            b.iter(|| {
                wal.append_batch_blocking(payloads(BATCH)).unwrap();
            });
        });

        // 8 threads appending 300-byte payloads one at a time: throughput from group commit.
        let wal = Arc::new(wal);
        let threads = 8;
        let per_thread = 50;
        g.throughput(Throughput::Elements((threads * per_thread) as u64));
        g.bench_function(format!("{name}/8threads_single300B"), |b| {
            b.iter(|| {
                let hs: Vec<_> = (0..threads)
                    .map(|_| {
                        let wal = Arc::clone(&wal);
                        std::thread::spawn(move || {
                            for p in payloads(per_thread) {
                                wal.append_blocking(p).unwrap();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            });
        });
        wal.close_blocking().unwrap();
    }
    g.finish();
}

criterion_group!(benches, bench_wal);
criterion_main!(benches);
