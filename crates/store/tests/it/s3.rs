//! The store on a real S3-compatible server: moto's server mode (from PyPI, see
//! `tests/requirements.txt`) started by the tests on loopback, reached by the real
//! `object_store` S3 client. No mock of the client.
//!
//! The outage tests put a small TCP proxy between the client and moto, so the endpoint can be
//! "stopped" (connections refused, live ones cut) and "restarted" while moto keeps its objects.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{Array, Decimal128Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use futures::TryStreamExt;
use genai_audit_core::AuditRecord;
use genai_audit_store::layout::day_of;
use genai_audit_store::manifest::{Commit, MANIFEST_VERSION, Snapshot, write_commit};
use genai_audit_store::parquet_file::decode;
use genai_audit_store::{Error, FlushPolicy, StoreLocation, Writer, WriterConfig};
use object_store::aws::AmazonS3Builder;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{fixture_records, synthetic_records};

const INSTALL_HINT: &str = "run `python3 -m pip install -r tests/requirements.txt` (moto[server], duckdb, pyarrow) before `cargo test`";

/// The test helpers in `tests/it/py/`.
fn py_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/py")
        .join(name)
}

/// moto's S3 server on a loopback port the OS picked; stopped when dropped.
///
/// Runs `py/moto_server.py`, which serves until its stdin closes, so the server also goes away
/// if the test process is killed. Fails the test (never skips it) if Python or moto is missing.
pub(crate) struct Moto {
    child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) port: u16,
    log: tempfile::NamedTempFile,
}

impl Moto {
    pub(crate) fn start() -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new("python3")
            .arg(py_script("moto_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run python3 ({e}): the S3 tests need Python 3 and moto; {INSTALL_HINT}"
                )
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let stdin = child.stdin.take();
        let mut moto = Moto {
            child,
            stdin,
            port: 0,
            log,
        };
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        match line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
        {
            Some(port) => moto.port = port,
            None if line.starts_with("MISSING") => {
                panic!("moto is not installed ({line}); {INSTALL_HINT}")
            }
            None => panic!(
                "moto's S3 server did not start (said {line:?}); {INSTALL_HINT}\n{}",
                moto.log_tail()
            ),
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(moto.addr(), "GET", "/").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto does not answer HTTP on {}\n{}",
                moto.addr(),
                moto.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Creates a bucket (moto accepts an unsigned `PUT /<bucket>`).
    pub(crate) fn create_bucket(&self, bucket: &str) {
        let status = http(self.addr(), "PUT", &format!("/{bucket}")).unwrap();
        assert_eq!(status, 200, "create bucket {bucket}\n{}", self.log_tail());
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("--- moto log ---\n{}", &text[start..])
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the server stops by itself
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request without a body over a fresh connection; returns the status code.
fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = StdTcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response);
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:.100}")))
}

/// The object_store options for an S3 endpoint on loopback, as the binary would pass them.
fn s3_options(port: u16) -> Vec<(String, String)> {
    [
        ("aws_access_key_id", "testing"),
        ("aws_secret_access_key", "testing"),
        ("aws_region", "us-east-1"),
        ("aws_endpoint", &format!("http://127.0.0.1:{port}")),
        ("aws_allow_http", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The store at `s3://<bucket>/<prefix>` on `port`, opened exactly as the binary opens it.
pub(crate) fn s3_location(port: u16, bucket: &str, prefix: &str) -> StoreLocation {
    StoreLocation::open(&format!("s3://{bucket}/{prefix}"), &s3_options(port)).unwrap()
}

/// The same location with the S3 client's own retries cut short.
///
/// `object_store` retries a refused connection up to 10 times over up to 3 minutes before an
/// error reaches the writer; that would hide a short outage from the writer's retry loop, which
/// is what the outage tests exercise. Same client, same options, a tighter `RetryConfig`.
fn s3_location_fast_retry(port: u16, bucket: &str, prefix: &str) -> StoreLocation {
    let mut loc = s3_location(port, bucket, prefix);
    let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
    for (k, v) in s3_options(port) {
        builder = builder.with_config(k.parse().unwrap(), v);
    }
    let store = builder
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: Duration::from_secs(2),
        })
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(10)),
        )
        .build()
        .unwrap();
    loc.store = Arc::new(store);
    loc
}

/// A TCP proxy on loopback in front of moto. [`Proxy::stop`] makes the S3 endpoint go away
/// (new connections refused, live ones cut); [`Proxy::restart`] brings it back on the same
/// port. moto itself keeps running, so nothing stored is lost.
struct Proxy {
    port: u16,
    upstream: SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// At most this many proxied connections at once (the client pools a handful).
const MAX_PROXIED: usize = 64;

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let mut proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            upstream,
            accept: None,
            conns: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let (upstream, conns) = (self.upstream, self.conns.clone());
        self.accept = Some(tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mut live = conns.lock().unwrap();
                live.retain(|h| !h.is_finished());
                if live.len() >= MAX_PROXIED {
                    continue; // dropped: the client sees a closed connection
                }
                live.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        }));
    }

    /// Stops the endpoint: the listener is closed (connections refused) and every live
    /// connection is cut.
    async fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let live: Vec<_> = self.conns.lock().unwrap().drain(..).collect();
        for c in live {
            c.abort();
            let _ = c.await;
        }
    }

    /// Brings the endpoint back on the same port.
    async fn restart(&mut self) {
        assert!(self.accept.is_none(), "the proxy is running");
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// Polls `cond` every 25 ms for up to `limit`.
async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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

/// Every committed row, read back from the store: `record_id` → (`start_time` µs,
/// `total_cost_usd` as a decimal string) and how many times each id occurs.
struct Committed {
    rows: BTreeMap<String, (i64, Option<String>)>,
    occurrences: BTreeMap<String, usize>,
    snapshot: Snapshot,
}

async fn read_committed(loc: &StoreLocation) -> Committed {
    let snapshot = Snapshot::load(loc).await.unwrap();
    let mut rows = BTreeMap::new();
    let mut occurrences: BTreeMap<String, usize> = BTreeMap::new();
    for (key, entry) in &snapshot.files {
        let bytes = loc
            .store
            .get(&loc.path(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, entry.size, "{key}");
        assert_eq!(
            const_hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            entry.sha256,
            "{key}"
        );
        let mut file_rows = 0;
        for b in decode(bytes).unwrap() {
            let starts = b
                .column_by_name("start_time")
                .unwrap()
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            let costs = b
                .column_by_name("total_cost_usd")
                .unwrap()
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .unwrap();
            for (i, id) in strings(&b, "record_id").into_iter().enumerate() {
                let id = id.unwrap();
                let cost = costs.is_valid(i).then(|| costs.value_as_string(i));
                *occurrences.entry(id.clone()).or_default() += 1;
                rows.insert(id, (starts.value(i), cost));
                file_rows += 1;
            }
        }
        assert_eq!(file_rows, entry.rows, "{key}");
    }
    Committed {
        rows,
        occurrences,
        snapshot,
    }
}

/// Asserts the store holds exactly `records`, each once.
async fn assert_committed_exactly_once(loc: &StoreLocation, records: &[AuditRecord]) {
    let got = read_committed(loc).await;
    let dupes: Vec<_> = got.occurrences.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicated records: {dupes:?}");
    let want: BTreeSet<_> = records.iter().map(|r| r.record_id.as_str()).collect();
    let have: BTreeSet<_> = got.rows.keys().map(String::as_str).collect();
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} records missing, {} unexpected",
        missing.len(),
        extra.len()
    );
    assert_eq!(got.snapshot.rows() as usize, records.len());
}

fn config(dir: &FsPath, collector: &str) -> WriterConfig {
    WriterConfig::new(collector, dir.join("wal"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_only_puts_and_commits_behave_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("probe");
    let loc = s3_location(moto.port, "probe", "p");
    // A create-only put is refused when the object exists (what the writer's file and manifest
    // puts rely on): the default `aws_conditional_put` (If-None-Match) works against this server.
    let path = loc.path("x/create-only");
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    loc.store
        .put_opts(&path, PutPayload::from_static(b"first"), create())
        .await
        .unwrap();
    let second = loc
        .store
        .put_opts(&path, PutPayload::from_static(b"second"), create())
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "{second:?}"
    );
    let body = loc.store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"first");

    // Manifests: the same commit again is a no-op, a different one with its number is refused.
    let mut commit = Commit {
        version: MANIFEST_VERSION,
        collector_id: "probe".into(),
        commit: 1,
        kind: "test".into(),
        wal_first: Some(1),
        wal_last: Some(3),
        added: Vec::new(),
        removed: Vec::new(),
        reason: None,
        created_at: String::new(),
    };
    assert!(write_commit(&loc, &commit).await.unwrap());
    assert!(!write_commit(&loc, &commit).await.unwrap());
    commit.wal_last = Some(4);
    let err = write_commit(&loc, &commit).await.unwrap_err();
    assert!(matches!(err, Error::Manifest { .. }), "{err}");
    let snap = Snapshot::load(&loc).await.unwrap();
    assert_eq!(snap.collectors["probe"].last_wal, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_round_trip_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("audit");
    let loc = s3_location(moto.port, "audit", "some/prefix");
    let dir = tempfile::tempdir().unwrap();
    let (w, report) = Writer::open(loc.clone(), config(dir.path(), "collector-s3"))
        .await
        .unwrap();
    assert_eq!(report.previous_commits, 0);

    let fixtures = fixture_records();
    let mut records = fixtures.clone();
    records.extend(synthetic_records(200, 2, 3, 11));
    for chunk in records.chunks(40) {
        w.append(chunk.to_vec()).await.unwrap();
    }
    let first = w.flush().await.unwrap();
    assert_eq!((first.records, first.commit), (216, 1));
    // One file per (tenant, UTC day): the captures' own, and the synthetic tenants' days.
    let partitions: BTreeSet<_> = records
        .iter()
        .map(|r| (r.tenant.clone(), day_of(r.start_time_us)))
        .collect();
    assert!(partitions.len() >= 5, "{partitions:?}");
    assert_eq!(first.files.len(), partitions.len());
    let more = synthetic_records(50, 2, 3, 12);
    w.append(more.clone()).await.unwrap();
    let second = w.flush().await.unwrap();
    assert_eq!((second.records, second.commit), (50, 2));
    w.shutdown().await.unwrap();
    records.extend(more);

    // Object keys: everything under the prefix, data in Hive partitions, commits in _manifest.
    let all: Vec<_> = loc.store.list(None).try_collect().await.unwrap();
    let keys: Vec<String> = all.iter().map(|m| m.location.to_string()).collect();
    let (mut parquet, mut manifests) = (BTreeSet::new(), 0);
    for key in &keys {
        if let Some(rest) = key.strip_prefix("some/prefix/audit_log/tenant=") {
            assert!(rest.contains("/dt=") && key.ends_with(".parquet"), "{key}");
            let dt = rest.split("/dt=").nth(1).unwrap();
            assert!(
                chrono::NaiveDate::parse_from_str(&dt[..10], "%Y-%m-%d").is_ok(),
                "{key}"
            );
            parquet.insert(loc.relative(&object_store::path::Path::from(key.as_str())));
        } else {
            assert!(
                key.starts_with("some/prefix/_manifest/collector-s3/") && key.ends_with(".json"),
                "unexpected object {key}"
            );
            manifests += 1;
        }
    }
    assert_eq!(manifests, 2);
    assert!(
        keys.iter()
            .any(|k| k.starts_with("some/prefix/audit_log/tenant=default/dt=2026-11-22/")),
        "{keys:?}"
    );

    // The snapshot names exactly the objects written; their rows are the records appended.
    let got = read_committed(&loc).await;
    assert_eq!(
        got.snapshot.files.keys().cloned().collect::<BTreeSet<_>>(),
        parquet
    );
    assert_committed_exactly_once(&loc, &records).await;
    for r in &records {
        let (start, cost) = &got.rows[&r.record_id];
        assert_eq!(*start, r.start_time_us, "{}", r.record_id);
        assert_eq!(*cost, r.total_cost_usd.map(|c| c.to_string()));
    }
    let chat_basic = fixtures
        .iter()
        .find(|r| r.span_name == "openai.chat" && r.total_tokens == Some(1801))
        .unwrap();
    assert_eq!(
        got.rows[&chat_basic.record_id].1.as_deref(),
        Some("0.006704000000")
    );

    // A restarted writer finds its commits on S3 and replays nothing. (The WAL lock goes with
    // the last reference to the writer, which its aborted tasks may still hold for a moment.)
    drop(w);
    let deadline = Instant::now() + Duration::from_secs(5);
    let (w, report) = loop {
        match Writer::open(loc.clone(), config(dir.path(), "collector-s3")).await {
            Err(Error::WalLocked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(report.previous_commits, 2);
    assert_eq!(report.replayed_entries, 0);
    w.shutdown().await.unwrap();
}

/// A writer through the proxy, flushing small batches quickly and retrying quickly.
async fn outage_writer(
    dir: &FsPath,
    proxy: &Proxy,
    collector: &str,
    wal_max_bytes: u64,
) -> (Writer, StoreLocation) {
    let loc = s3_location_fast_retry(proxy.port, "audit", "outage");
    let mut cfg = config(dir, collector);
    cfg.flush = FlushPolicy {
        max_rows: 20,
        max_age: Duration::from_millis(200),
        ..FlushPolicy::default()
    };
    cfg.max_retry_backoff = Duration::from_millis(200);
    cfg.wal_max_bytes = wal_max_bytes;
    let (w, _) = Writer::open(loc.clone(), cfg).await.unwrap();
    (w, loc)
}

fn written(w: &Writer) -> u64 {
    w.stats().records_written.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopped_mid_run_and_restarted_loses_nothing() {
    let moto = Moto::start();
    moto.create_bucket("audit");
    let mut proxy = Proxy::start(moto.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let (w, loc) = outage_writer(dir.path(), &proxy, "outage-a", 1 << 30).await;
    let records = synthetic_records(300, 2, 2, 31);
    let limit = Duration::from_secs(10);

    // S3 up: appends are flushed and committed.
    for chunk in records[..100].chunks(10) {
        w.append(chunk.to_vec()).await.unwrap();
    }
    wait_until("first 100 committed", limit, || written(&w) == 100).await;

    // S3 down: appends still succeed (they are in the WAL); flushes fail and are retried.
    proxy.stop().await;
    for chunk in records[100..200].chunks(10) {
        w.append(chunk.to_vec()).await.unwrap();
    }
    wait_until("flush attempts fail", limit, || {
        w.stats().store_errors.load(Ordering::Relaxed) >= 3
    })
    .await;
    assert_eq!(
        written(&w),
        100,
        "nothing can be committed while S3 is down"
    );
    assert!(w.wal_bytes() > 0);

    // S3 back: the backlog drains, new appends go through.
    proxy.restart().await;
    for chunk in records[200..].chunks(10) {
        w.append(chunk.to_vec()).await.unwrap();
    }
    wait_until("all 300 committed", limit, || written(&w) == 300).await;
    wait_until("WAL released", limit, || w.wal_bytes() <= 64).await;
    assert_eq!(w.stats().records_appended.load(Ordering::Relaxed), 300);
    w.shutdown().await.unwrap();

    assert_committed_exactly_once(&loc, &records).await;
    // Directly on moto too, bypassing the proxy.
    assert_committed_exactly_once(&s3_location(moto.port, "audit", "outage"), &records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_s3_outage_fills_the_wal_budget_then_recovers() {
    let moto = Moto::start();
    moto.create_bucket("audit");
    let mut proxy = Proxy::start(moto.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let budget = 64 * 1024;
    let (w, loc) = outage_writer(dir.path(), &proxy, "outage-b", budget).await;
    let records = synthetic_records(1000, 2, 2, 41);
    let mut accepted: Vec<AuditRecord> = Vec::new();
    let mut next = records.chunks(5);
    let limit = Duration::from_secs(10);

    for chunk in next.by_ref().take(4) {
        w.append(chunk.to_vec()).await.unwrap();
        accepted.extend_from_slice(chunk);
    }
    wait_until("first 20 committed", limit, || written(&w) == 20).await;

    // S3 down: the WAL takes appends until its budget, then refuses them with backpressure.
    proxy.stop().await;
    let mut refused = None;
    for chunk in next.by_ref() {
        match w.append(chunk.to_vec()).await {
            Ok(_) => accepted.extend_from_slice(chunk),
            Err(e) => {
                refused = Some((e, chunk));
                break;
            }
        }
    }
    let (err, refused) = refused.expect("appends never hit the WAL budget");
    println!(
        "backpressure after {} records accepted during the outage: {err}",
        accepted.len() - 20
    );
    let retry_after = err.retry_after();
    assert!(
        matches!(err, Error::Backpressure { budget: b, .. } if b == budget),
        "{err}"
    );
    assert!(retry_after.is_some_and(|d| d > Duration::ZERO), "{err}");
    assert!(
        accepted.len() > 20,
        "the WAL took appends during the outage"
    );
    // Still refused while S3 stays down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = w.append(refused.to_vec()).await.unwrap_err();
    assert!(again.retry_after().is_some(), "{again}");
    assert!(w.stats().store_errors.load(Ordering::Relaxed) > 0);
    assert_eq!(written(&w), 20);

    // S3 back: retrying after `retry_after` succeeds once the backlog is committed.
    proxy.restart().await;
    let deadline = Instant::now() + limit;
    loop {
        match w.append(refused.to_vec()).await {
            Ok(_) => break,
            Err(e) => {
                let pause = e.retry_after().unwrap_or_else(|| panic!("{e}"));
                assert!(Instant::now() < deadline, "still refused: {e}");
                tokio::time::sleep(pause).await;
            }
        }
    }
    accepted.extend_from_slice(refused);
    for chunk in next.take(4) {
        w.append(chunk.to_vec()).await.unwrap();
        accepted.extend_from_slice(chunk);
    }
    let total = accepted.len() as u64;
    wait_until("everything accepted is committed", limit, || {
        written(&w) == total
    })
    .await;
    wait_until("WAL released", limit, || w.wal_bytes() <= 64).await;
    w.shutdown().await.unwrap();
    assert_committed_exactly_once(&loc, &accepted).await;
}

/// Issue #4, bounded memory: while S3 is down the buffer fills only up to `flush.max_bytes`;
/// later entries stay in the WAL alone (spilled), which keeps growing. When S3 is back, flushes
/// read them back one buffer at a time and every acknowledged record is committed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_spills_to_the_wal_with_bounded_memory_and_loses_nothing() {
    let moto = Moto::start();
    moto.create_bucket("audit");
    let mut proxy = Proxy::start(moto.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let records = synthetic_records(3000, 2, 2, 51);
    let request = |i: usize| records[i * 20..(i + 1) * 20].to_vec();
    let one_request = genai_audit_core::records_to_batch(&request(0))
        .unwrap()
        .get_array_memory_size();
    let cap = 5 * one_request;
    let loc = s3_location_fast_retry(proxy.port, "audit", "spill");
    let mut cfg = config(dir.path(), "spill-a");
    cfg.flush = FlushPolicy {
        max_rows: usize::MAX,
        max_bytes: cap,
        max_age: Duration::from_millis(100),
        ..FlushPolicy::default()
    };
    cfg.max_retry_backoff = Duration::from_millis(200);
    let (w, _) = Writer::open(loc.clone(), cfg).await.unwrap();
    let limit = Duration::from_secs(20);

    // S3 down from the start: the first flush takes what is buffered and keeps retrying.
    proxy.stop().await;
    let mut peak = 0;
    let mut wal_before = 0;
    for i in 0..150 {
        w.append(request(i)).await.unwrap();
        peak = peak.max(w.buffered_bytes());
        if i == 30 {
            wal_before = w.wal_bytes();
        }
    }
    wait_until("flush attempts fail", limit, || {
        w.stats().store_errors.load(Ordering::Relaxed) >= 2
    })
    .await;
    // The buffer waiting for the stuck flush holds at most the threshold plus one request.
    assert!(
        peak <= cap + one_request,
        "buffered {peak} bytes, cap {cap} + one request {one_request}"
    );
    let spilled = w.stats().entries_spilled.load(Ordering::Relaxed);
    assert!(spilled >= 100, "only {spilled} entries spilled");
    assert!(w.wal_bytes() > wal_before, "the WAL grows with the backlog");
    assert_eq!(written(&w), 0);

    // S3 back: the backlog drains in several commits, read back from the WAL.
    proxy.restart().await;
    wait_until("all committed", limit, || written(&w) == 3000).await;
    assert_eq!(
        w.stats().entries_read_back.load(Ordering::Relaxed),
        spilled,
        "every spilled entry was read back once"
    );
    assert!(w.stats().commits.load(Ordering::Relaxed) >= 10);
    wait_until("WAL released", limit, || w.wal_bytes() <= 64).await;
    w.shutdown().await.unwrap();
    assert_committed_exactly_once(&loc, &records).await;
}
