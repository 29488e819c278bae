//! The write path end to end on local disk: WAL → Parquet → commit, read back for real.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow_array::{Array, Decimal128Array, RecordBatch, StringArray};
use bytes::Bytes;
use genai_audit_store::manifest::Snapshot;
use genai_audit_store::parquet_file::{self, file_schema};
use genai_audit_store::{FlushPolicy, StoreLocation, Writer, WriterConfig};
use object_store::ObjectStoreExt;
use parquet::basic::{Compression, LogicalType, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::common::{fixture_records, synthetic_records};

fn config(dir: &Path) -> WriterConfig {
    WriterConfig::new("collector-a", dir.join("wal"))
}

async fn open(dir: &Path, cfg: WriterConfig) -> (Writer, genai_audit_store::OpenReport) {
    let loc = StoreLocation::local(&dir.join("store")).unwrap();
    Writer::open(loc, cfg).await.unwrap()
}

async fn read_all(loc: &StoreLocation) -> (Snapshot, Vec<(String, Bytes, Vec<RecordBatch>)>) {
    let snap = Snapshot::load(loc).await.unwrap();
    let mut files = Vec::new();
    for key in snap.files.keys() {
        let bytes = loc
            .store
            .get(&loc.path(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let batches = parquet_file::decode(bytes.clone()).unwrap();
        files.push((key.clone(), bytes, batches));
    }
    (snap, files)
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b
        .column_by_name(col)
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
        .collect()
}

#[tokio::test]
async fn records_round_trip_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let (w, report) = open(dir.path(), config(dir.path())).await;
    assert_eq!(report.replayed_entries, 0);
    let records = fixture_records();
    w.append(records[..10].to_vec()).await.unwrap();
    w.append(records[10..].to_vec()).await.unwrap();
    let flushed = w.flush().await.unwrap();
    assert_eq!(flushed.records, 16);
    assert_eq!(flushed.commit, 1);

    let (snap, files) = read_all(w.location()).await;
    assert_eq!(snap.rows(), 16);
    // Both captures are one day, one tenant: one file.
    assert_eq!(files.len(), 1);
    let (key, bytes, batches) = &files[0];
    assert!(
        key.starts_with("audit_log/tenant=default/dt=2026-11-22/collector-a-w"),
        "{key}"
    );
    let entry = &snap.files[key];
    assert_eq!(entry.size, bytes.len() as u64);
    assert_eq!(
        entry.sha256,
        const_hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    );

    // Values survive: ids, and the exact decimal cost of traceloop's chat_basic.
    let batch = arrow_select::concat::concat_batches(&file_schema(), batches).unwrap();
    assert_eq!(batch.schema(), file_schema());
    let ids: BTreeSet<_> = strings(&batch, "record_id").into_iter().flatten().collect();
    let want: BTreeSet<_> = records.iter().map(|r| r.record_id.clone()).collect();
    assert_eq!(ids, want);
    let costs = batch
        .column_by_name("total_cost_usd")
        .unwrap()
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap();
    let span_ids = strings(&batch, "span_id");
    let chat_basic = records
        .iter()
        .find(|r| r.span_name == "openai.chat" && r.total_tokens == Some(1801))
        .unwrap();
    let row = span_ids
        .iter()
        .position(|s| s.as_deref() == Some(&chat_basic.span_id))
        .unwrap();
    assert_eq!(costs.value_as_string(row), "0.006704000000");

    // Rows are sorted by (user_id nulls last, start_time).
    let users = strings(&batch, "user_id");
    let first_null = users
        .iter()
        .position(Option::is_none)
        .unwrap_or(users.len());
    assert!(users[first_null..].iter().all(Option::is_none));
    assert!(users[..first_null].windows(2).all(|w| w[0] <= w[1]));

    // The file format choices every reader relies on.
    let reader = SerializedFileReader::new(bytes.clone()).unwrap();
    let meta = reader.metadata();
    let kv: BTreeMap<_, _> = meta
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(kv["genai_audit.row_count"], "16");
    assert_eq!(kv["genai_audit.writer_id"], "collector-a");
    assert_eq!(
        kv["genai_audit.schema_fingerprint"],
        genai_audit_core::schema::schema_fingerprint()
    );
    let min: i64 = kv["genai_audit.min_start_time_us"].parse().unwrap();
    assert_eq!(min, records.iter().map(|r| r.start_time_us).min().unwrap());
    let schema = meta.file_metadata().schema_descr();
    let rg = meta.row_group(0);
    for i in 0..schema.num_columns() {
        let col = schema.column(i);
        assert!(
            matches!(rg.column(i).compression(), Compression::ZSTD(_)),
            "{}",
            col.name()
        );
        assert_ne!(
            col.physical_type(),
            parquet::basic::Type::INT96,
            "{}",
            col.name()
        );
        if ["start_time", "end_time", "ingest_time"].contains(&col.name()) {
            assert_eq!(
                col.logical_type_ref(),
                Some(&LogicalType::timestamp(true, TimeUnit::MICROS)),
                "{}",
                col.name()
            );
        }
        let bloom = ["trace_id", "user_id", "session_id"].contains(&col.name());
        assert_eq!(
            rg.column(i).bloom_filter_offset().is_some(),
            bloom,
            "{}",
            col.name()
        );
        assert!(
            rg.column(i).column_index_offset().is_some(),
            "page index for {}",
            col.name()
        );
    }
    assert!(
        schema.columns().iter().all(|c| c.name() != "tenant"),
        "tenant lives in the path"
    );
    assert!(rg.sorting_columns().is_some_and(|s| s.len() == 2));
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn partitions_by_tenant_and_utc_day_and_splits_large_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.flush.max_file_rows = 40;
    let (w, _) = open(dir.path(), cfg).await;
    let records = synthetic_records(600, 3, 4, 1);
    for chunk in records.chunks(50) {
        w.append(chunk.to_vec()).await.unwrap();
    }
    w.flush().await.unwrap();
    let (snap, files) = read_all(w.location()).await;
    assert_eq!(snap.rows(), 600);
    let partitions: BTreeSet<_> = snap
        .files
        .values()
        .map(|f| (f.tenant.clone(), f.dt.clone()))
        .collect();
    assert_eq!(partitions.len(), 12);
    for (key, _, batches) in &files {
        let f = &snap.files[key];
        assert!(f.rows <= 40);
        assert!(key.contains(&format!("tenant={}/dt={}/", f.tenant, f.dt)));
        // Every row of a file starts on the file's day (UTC).
        let day = chrono::NaiveDate::parse_from_str(&f.dt, "%Y-%m-%d").unwrap();
        for b in batches {
            let ts = b
                .column_by_name("start_time")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                .unwrap();
            for v in ts.values() {
                assert_eq!(genai_audit_store::layout::day_of(*v), day);
            }
        }
    }
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn flushes_by_rows_and_by_age_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.flush = FlushPolicy {
        max_rows: 100,
        max_age: Duration::from_millis(300),
        ..FlushPolicy::default()
    };
    let (w, _) = open(dir.path(), cfg).await;
    w.append(synthetic_records(150, 1, 1, 2)).await.unwrap();
    wait_for(|| {
        w.stats()
            .records_written
            .load(std::sync::atomic::Ordering::Relaxed)
            == 150
    })
    .await;
    w.append(synthetic_records(5, 1, 1, 3)).await.unwrap();
    wait_for(|| {
        w.stats()
            .records_written
            .load(std::sync::atomic::Ordering::Relaxed)
            == 155
    })
    .await;
    assert!(
        w.wal_bytes() <= 64,
        "committed entries are released from the WAL: {} bytes left",
        w.wal_bytes()
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn flushes_when_the_buffered_memory_reaches_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let chunks: Vec<_> = (0..4)
        .map(|i| synthetic_records(200, 1, 1, 20 + i))
        .collect();
    // What one request's records take as the buffer holds them.
    let sizes: Vec<usize> = chunks
        .iter()
        .map(|c| {
            genai_audit_core::records_to_batch(c)
                .unwrap()
                .get_array_memory_size()
        })
        .collect();
    let mut cfg = config(dir.path());
    cfg.flush = FlushPolicy {
        max_rows: usize::MAX,
        // Reached by the third request, not by the second.
        max_bytes: sizes[0] + sizes[1] + sizes[2] / 2,
        max_age: Duration::from_secs(3600),
        ..FlushPolicy::default()
    };
    let (w, _) = open(dir.path(), cfg).await;
    w.append(chunks[0].clone()).await.unwrap();
    assert_eq!(
        w.buffered_bytes(),
        sizes[0],
        "the buffer counts its arrays' memory"
    );
    w.append(chunks[1].clone()).await.unwrap();
    assert_eq!(w.buffered_bytes(), sizes[0] + sizes[1]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.stats().commits.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    w.append(chunks[2].clone()).await.unwrap();
    wait_for(|| w.stats().commits.load(std::sync::atomic::Ordering::Relaxed) == 1).await;
    assert_eq!(
        w.stats()
            .records_written
            .load(std::sync::atomic::Ordering::Relaxed),
        600
    );
    assert_eq!((w.buffered_rows(), w.buffered_bytes()), (0, 0));
    w.append(chunks[3].clone()).await.unwrap();
    assert_eq!(w.buffered_bytes(), sizes[3]);
    w.shutdown().await.unwrap();
    let (snap, _) = read_all(w.location()).await;
    assert_eq!(snap.rows(), 800);
}

#[tokio::test]
async fn duplicates_within_one_flush_are_committed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = open(dir.path(), config(dir.path())).await;
    let records = synthetic_records(50, 2, 2, 31);
    w.append(records.clone()).await.unwrap();
    w.append(synthetic_records(10, 1, 1, 32)).await.unwrap();
    // A retry of the first request, and a request repeating part of it.
    w.append(records.clone()).await.unwrap();
    w.append(records[..20].to_vec()).await.unwrap();
    w.flush().await.unwrap();
    let (snap, files) = read_all(w.location()).await;
    assert_eq!(snap.rows(), 60);
    let ids: BTreeSet<Option<String>> = files
        .iter()
        .flat_map(|(_, _, batches)| batches.iter().flat_map(|b| strings(b, "record_id")))
        .collect();
    assert_eq!(ids.len(), 60);
    assert_eq!(
        w.stats()
            .duplicates_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        70
    );
    w.shutdown().await.unwrap();
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached in 5 s");
}

/// Appends `records` 30 per request, then drops the runtime without flushing: the process
/// "stops" with everything in the WAL.
fn stop_after_appending(dir: &Path, records: &[genai_audit_core::AuditRecord]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (w, _) = open(dir, config(dir)).await;
        for c in records.chunks(30) {
            w.append(c.to_vec()).await.unwrap();
        }
    });
}

#[test]
fn unflushed_records_are_replayed_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let records = synthetic_records(300, 2, 2, 4);
    stop_after_appending(dir.path(), &records);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (w, report) = open(dir.path(), config(dir.path())).await;
        assert_eq!(
            (report.replayed_entries, report.replayed_records),
            (10, 300)
        );
        w.shutdown().await.unwrap();
        let (snap, _) = read_all(w.location()).await;
        assert_eq!(snap.rows(), 300);
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (w, report) = open(dir.path(), config(dir.path())).await;
        assert_eq!(
            report.replayed_entries, 0,
            "committed entries are not replayed"
        );
        assert_eq!(report.previous_commits, 1);
        let (snap, _) = read_all(w.location()).await;
        assert_eq!(snap.rows(), 300);
    });
}

/// A backlog larger than one buffer is replayed with bounded memory: entries past the flush
/// thresholds stay in the WAL and the flushes read them back, each committed once.
#[test]
fn a_replayed_backlog_beyond_max_bytes_stays_in_the_wal_until_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let records = synthetic_records(600, 2, 2, 6);
    let one_request = genai_audit_core::records_to_batch(&records[..30])
        .unwrap()
        .get_array_memory_size();
    let small = |dir: &Path| {
        let mut cfg = config(dir);
        cfg.flush = FlushPolicy {
            max_rows: usize::MAX,
            max_bytes: 3 * one_request,
            max_age: Duration::from_secs(3600),
            ..FlushPolicy::default()
        };
        cfg
    };
    stop_after_appending(dir.path(), &records);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (w, report) = open(dir.path(), small(dir.path())).await;
        assert_eq!(report.replayed_entries, 20);
        assert!(
            report.replayed_records <= 120,
            "{} records replayed into memory",
            report.replayed_records
        );
        assert!(w.buffered_bytes() <= 4 * one_request);
        let spilled = w
            .stats()
            .entries_spilled
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(spilled >= 16, "{spilled} entries left in the WAL");
        let flushed = w.flush().await.unwrap();
        assert_eq!(flushed.records, 600);
        assert!(flushed.commit >= 5, "several commits: {}", flushed.commit);
        assert_eq!(
            w.stats()
                .entries_read_back
                .load(std::sync::atomic::Ordering::Relaxed),
            spilled
        );
        let (snap, files) = read_all(w.location()).await;
        assert_eq!(snap.rows(), 600);
        let ids: BTreeSet<Option<String>> = files
            .iter()
            .flat_map(|(_, _, batches)| batches.iter().flat_map(|b| strings(b, "record_id")))
            .collect();
        let want: BTreeSet<Option<String>> =
            records.iter().map(|r| Some(r.record_id.clone())).collect();
        assert_eq!(ids, want);
        w.shutdown().await.unwrap();
        assert!(w.wal_bytes() <= 64, "the WAL is released");
    });
}

// ---- crash tests: a child process (this test binary) killed at each step ----

const CHILD_ENV: &str = "GENAI_STORE_CRASH_CHILD";

/// Child side: appends batches, printing each acknowledged record id, then crashes (a failpoint
/// or the parent's SIGKILL). Does nothing when not run as a child.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let seed: u64 = std::env::var("GENAI_STORE_CRASH_SEED")
        .unwrap()
        .parse()
        .unwrap();
    let failpoint = std::env::var("GENAI_STORE_FAILPOINT").ok();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cfg = config(&dir);
        cfg.flush.max_rows = 64;
        cfg.flush.max_file_rows = 50;
        let (w, _) = open(&dir, cfg).await;
        let records = synthetic_records(2000, 3, 2, seed);
        let mut out = std::io::stdout();
        for (i, chunk) in records.chunks(20).enumerate() {
            w.append(chunk.to_vec()).await.unwrap();
            let ids: Vec<_> = chunk.iter().map(|r| r.record_id.as_str()).collect();
            use std::io::Write;
            writeln!(out, "ACK {}", ids.join(" ")).unwrap();
            out.flush().unwrap();
            if let (Some(fp), 3) = (&failpoint, i) {
                genai_audit_store::failpoint::arm(fp);
                w.flush().await.unwrap();
                unreachable!("the failpoint aborts");
            }
        }
        // Without a failpoint, keep the process busy until the parent kills it.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

/// Runs the child until it dies; returns the record ids it acknowledged.
fn run_child(
    dir: &Path,
    seed: u64,
    failpoint: Option<&str>,
    kill_after: Option<Duration>,
) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "writer::crash_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, dir)
    .env("GENAI_STORE_CRASH_SEED", seed.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(fp) = failpoint {
        cmd.env("GENAI_STORE_FAILPOINT", fp);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness prints "test … ... " before the first line without a newline.
            if let Some((_, rest)) = line.split_once("ACK ") {
                ids.extend(rest.split(' ').map(str::to_owned));
            }
        }
        ids
    });
    if let Some(after) = kill_after {
        std::thread::sleep(after);
        child.kill().unwrap(); // SIGKILL
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child must die, not exit cleanly");
    reader.join().unwrap()
}

/// After any crash, a restart must end with every acknowledged record committed exactly once.
fn recover_and_check(dir: &Path, acked: &[String]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (w, _) = open(dir, config(dir)).await;
        w.shutdown().await.unwrap();
        let (snap, files) = read_all(w.location()).await;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (_, _, batches) in &files {
            for b in batches {
                for id in strings(b, "record_id").into_iter().flatten() {
                    *seen.entry(id).or_default() += 1;
                }
            }
        }
        let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dupes.is_empty(), "duplicated records: {dupes:?}");
        let missing: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged records lost",
            missing.len()
        );
        assert_eq!(snap.rows() as usize, seen.len());
    });
}

#[test]
fn a_crash_at_each_step_of_the_commit_protocol_loses_and_duplicates_nothing() {
    for (i, fp) in genai_audit_store::failpoint::POINTS.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let acked = run_child(dir.path(), 100 + i as u64, Some(fp), None);
        assert_eq!(
            acked.len(),
            80,
            "{fp}: 4 batches of 20 acknowledged before the crash"
        );
        recover_and_check(dir.path(), &acked);
    }
}

#[test]
fn kill_9_at_random_moments_during_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    // Each round restarts on the same WAL and store, with new records, then is killed mid-flight.
    for (round, ms) in [35u64, 120, 60, 250, 90].into_iter().enumerate() {
        acked.extend(run_child(
            dir.path(),
            1000 + round as u64,
            None,
            Some(Duration::from_millis(ms)),
        ));
    }
    assert!(!acked.is_empty());
    recover_and_check(dir.path(), &acked);
}

#[tokio::test]
async fn a_resent_request_after_its_flush_is_not_committed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = open(dir.path(), config(dir.path())).await;
    let records = synthetic_records(50, 1, 1, 9);
    w.append(records.clone()).await.unwrap();
    w.flush().await.unwrap();
    // The client never saw the ack (timeout, crash) and sends the same spans again.
    w.append(records.clone()).await.unwrap();
    w.append(synthetic_records(10, 1, 1, 10)).await.unwrap();
    w.flush().await.unwrap();
    let (snap, _) = read_all(w.location()).await;
    assert_eq!(snap.rows(), 60);
    assert_eq!(
        w.stats()
            .duplicates_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        50
    );
    w.shutdown().await.unwrap();
}

mod contents {
    use super::*;
    use genai_audit_core::CorrelatedContent;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    use crate::common::{fixtures_dir, normalizer};

    /// The chat_pii span without its content attributes, and the content from its log record.
    fn span_and_logs() -> (genai_audit_core::AuditRecord, Vec<CorrelatedContent>) {
        let ctx = genai_audit_core::IngestContext::new(genai_audit_core::Source::OtlpHttp, "t", 1);
        let mut req = ExportTraceServiceRequest::decode(
            std::fs::read(fixtures_dir().join("openai-v2/chat_pii.pb"))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        for s in req
            .resource_spans
            .iter_mut()
            .flat_map(|r| r.scope_spans.iter_mut())
            .flat_map(|s| s.spans.iter_mut())
        {
            s.attributes.retain(|kv| !kv.key.ends_with("messages"));
        }
        let record = normalizer().normalize_traces(&req, &ctx).records.remove(0);
        assert!(!record.pii_detected);
        let logs = ExportLogsServiceRequest::decode(
            std::fs::read(fixtures_dir().join("openai-v2/logs/chat_pii.pb"))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        (record, normalizer().normalize_logs(&logs, &ctx).contents)
    }

    async fn open_with_normalizer(dir: &Path) -> Writer {
        let mut cfg = config(dir);
        cfg.normalizer = Some(normalizer());
        open(dir, cfg).await.0
    }

    async fn only_record(w: &Writer) -> (Vec<Option<String>>, Vec<Option<String>>) {
        let (snap, files) = read_all(w.location()).await;
        assert_eq!(snap.rows(), 1);
        let b = &files[0].2[0];
        (strings(b, "data_classification"), strings(b, "prompt_hash"))
    }

    #[tokio::test]
    async fn content_from_logs_is_folded_into_its_span_in_the_same_flush() {
        let dir = tempfile::tempdir().unwrap();
        let w = open_with_normalizer(dir.path()).await;
        let (record, contents) = span_and_logs();
        w.append(vec![record]).await.unwrap();
        w.append_contents(contents).await.unwrap();
        w.flush().await.unwrap();
        let (class, hash) = only_record(&w).await;
        assert_eq!(class[0].as_deref(), Some("restricted"));
        assert!(hash[0].is_some());
        w.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn content_is_folded_into_its_span_among_many_buffered_rows() {
        let dir = tempfile::tempdir().unwrap();
        let w = open_with_normalizer(dir.path()).await;
        let (record, contents) = span_and_logs();
        let others = synthetic_records(300, 1, 1, 41);
        w.append(others[..150].to_vec()).await.unwrap();
        w.append(vec![record.clone()]).await.unwrap();
        w.append_contents(contents).await.unwrap();
        w.append(others[150..].to_vec()).await.unwrap();
        // The span resent: still one row, the merged one.
        w.append(vec![record.clone()]).await.unwrap();
        w.flush().await.unwrap();
        let (snap, files) = read_all(w.location()).await;
        assert_eq!(snap.rows(), 301);
        let mut found = 0;
        for (_, _, batches) in &files {
            for b in batches {
                let ids = strings(b, "record_id");
                let class = strings(b, "data_classification");
                let hash = strings(b, "prompt_hash");
                let span_name = strings(b, "span_name");
                for i in 0..b.num_rows() {
                    if ids[i].as_deref() == Some(record.record_id.as_str()) {
                        found += 1;
                        assert_eq!(class[i].as_deref(), Some("restricted"));
                        assert!(hash[i].is_some());
                        assert_eq!(span_name[i].as_deref(), Some(record.span_name.as_str()));
                    } else {
                        let other = others
                            .iter()
                            .find(|r| Some(r.record_id.as_str()) == ids[i].as_deref())
                            .expect("a row appended");
                        assert_eq!(
                            class[i].as_deref(),
                            Some(other.data_classification.as_str())
                        );
                        assert_eq!(hash[i], other.prompt_hash);
                    }
                }
            }
        }
        assert_eq!(found, 1);
        assert_eq!(
            w.stats()
                .contents_unmatched
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        w.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn content_that_arrives_first_waits_for_its_span_durably() {
        let dir = tempfile::tempdir().unwrap();
        let (record, contents) = span_and_logs();
        {
            let rt_dir = dir.path().to_path_buf();
            let w = open_with_normalizer(&rt_dir).await;
            w.append_contents(contents).await.unwrap();
            w.flush().await.unwrap(); // no span yet: the content is carried
            w.shutdown().await.unwrap();
        }
        // A restart in between: the carried content was re-appended to the WAL, not lost.
        let w = open_with_normalizer(dir.path()).await;
        w.append(vec![record]).await.unwrap();
        w.flush().await.unwrap();
        let (class, _) = only_record(&w).await;
        assert_eq!(class[0].as_deref(), Some("restricted"));
        w.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn content_whose_span_never_comes_is_dropped_after_the_window_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let w = open_with_normalizer(dir.path()).await;
        let (_, contents) = span_and_logs();
        w.append_contents(contents).await.unwrap();
        for _ in 0..3 {
            w.flush().await.unwrap();
        }
        assert_eq!(
            w.stats()
                .contents_unmatched
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(w.wal_bytes() <= 64);
        w.shutdown().await.unwrap();
    }
}
