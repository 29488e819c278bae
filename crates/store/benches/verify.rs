//! Throughput of `verify`: files/s and GB/s hashed, on a local store.
//!
//! `cargo bench -p genai-audit-store --bench verify` (`VERIFY_BENCH_SCALE=0.1` for a quick run)
//!
//! Two shapes: 1 000 files of 1 MiB (large closed days) and 20 000 files of 16 KiB (many small
//! flushes). Files hold random bytes (verify hashes bytes; it never decodes Parquet), listed by
//! real manifest commits and one signed checkpoint per 1 000 files, so the whole `verify` runs:
//! listing, checkpoints, manifests, hashing. The files were just written, so they are in the
//! page cache: this measures verify itself, not the disk.
#![allow(missing_docs, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use genai_audit_store::StoreLocation;
use genai_audit_store::integrity::verify::NoProgress;
use genai_audit_store::integrity::{IntegrityKey, VerifyOptions, publish_checkpoint, verify};
use genai_audit_store::manifest::{Commit, FileEntry, MANIFEST_VERSION, write_commit};
use sha2::{Digest, Sha256};

fn main() {
    let scale: f64 = std::env::var("VERIFY_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        // `cargo test --all-targets` runs benches without `--bench`: a smoke run then.
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            1.0
        } else {
            0.005
        });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (files, size) in [(1_000usize, 1usize << 20), (20_000, 16 << 10)] {
        let files = ((files as f64 * scale) as usize).max(1);
        rt.block_on(run(files, size));
    }
}

async fn run(files: usize, size: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = StoreLocation::local(dir.path()).expect("store");
    let key = IntegrityKey::from_seed([5; 32]);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; size];
    let all: Vec<usize> = (0..files).collect();
    for (commit_no, chunk) in (1u64..).zip(all.chunks(1000)) {
        let mut added = Vec::new();
        for &i in chunk {
            for b in buf.chunks_mut(8) {
                // xorshift: incompressible, cheap to make.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b.copy_from_slice(&state.to_le_bytes()[..b.len()]);
            }
            let dt = format!("2025-01-{:02}", 1 + i % 28);
            let key = format!("audit_log/tenant=t/dt={dt}/bench-{i:08}.parquet");
            let path = dir.path().join(&key);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &buf).expect("write");
            added.push(FileEntry {
                key,
                size: size as u64,
                rows: 1,
                sha256: const_hex::encode(Sha256::digest(&buf)),
                tenant: "t".into(),
                dt,
                min_start_time_us: 0,
                max_start_time_us: 0,
                schema_fingerprint: "bench".into(),
            });
        }
        let commit = Commit {
            version: MANIFEST_VERSION,
            collector_id: "bench".into(),
            commit: commit_no,
            kind: "flush".into(),
            wal_first: None,
            wal_last: None,
            added,
            removed: Vec::new(),
            reason: None,
            created_at: String::new(),
        };
        write_commit(&loc, &commit).await.expect("commit");
        publish_checkpoint(&loc, "bench", &key)
            .await
            .expect("checkpoint");
    }
    for concurrency in [1, 2, 8] {
        let mut opts = VerifyOptions::new(vec![key.public_key()]);
        opts.concurrency = concurrency;
        let started = Instant::now();
        let report = verify(&loc, &opts, Arc::new(NoProgress))
            .await
            .expect("verify");
        let secs = started.elapsed().as_secs_f64();
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.files_valid as usize, files);
        println!(
            "verify {files} files x {} KiB, concurrency {concurrency}: {secs:.2} s, {:.0} files/s, {:.2} GB/s ({:.0} MiB/s)",
            size / 1024,
            files as f64 / secs,
            report.bytes_hashed as f64 / secs / 1e9,
            report.bytes_hashed as f64 / secs / (1024.0 * 1024.0),
        );
    }
}
