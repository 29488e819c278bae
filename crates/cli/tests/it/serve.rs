//! `genai-audit serve`, end to end: the real binary on loopback sockets (ports picked by the OS),
//! a temporary directory as its working directory (store `./genai-audit-data`, WAL under it),
//! real clients (the OpenTelemetry SDK's OTLP exporters, tonic, an HTTP client), and the audit
//! log read back from the committed Parquet files after a SIGTERM.
//!
//! The harness ([`Server`]) reads the JSON log lines on the child's stderr to learn the bound
//! addresses, waits for `/readyz`, and kills the child if a test panics.

mod admin;
mod alerts;
mod bad_input;
mod crash;
mod integrity;
mod lifecycle;
mod retention;
mod sdk;
mod tenants;
mod upstream;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::{
    Array, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    ListArray, StringArray, TimestampMicrosecondArray,
};
use bytes::{Buf, BufMut};
use genai_audit_store::StoreLocation;
use genai_audit_store::manifest::Snapshot;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message;

use super::{KEY_HEX, bin};

/// Longest wait for the process to bind and become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the process to exit after SIGTERM (it flushes first).
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
/// Longest wait for one client request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How the child is configured beyond the defaults of [`Server::start`].
#[derive(Debug, Default, Clone, Copy)]
struct Opts<'a> {
    /// Extra environment variables.
    env: &'a [(&'a str, &'a str)],
    /// Extra `serve` arguments.
    args: &'a [&'a str],
    /// Give the three listen addresses as `GENAI_AUDIT_*_LISTEN` variables instead of flags.
    ports_via_env: bool,
}

/// `genai-audit --log-format json serve` in `dir`, with nothing inherited that it reads: every
/// `GENAI_AUDIT_*` variable of the test's environment is removed, the hash key is fixed.
fn serve_command(dir: &Path) -> Command {
    let mut cmd = bin();
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && name.starts_with("GENAI_AUDIT_")
        {
            cmd.env_remove(name);
        }
    }
    cmd.env("GENAI_AUDIT_HASH_KEY", KEY_HEX)
        .env("GENAI_AUDIT_LOG", "info")
        .current_dir(dir)
        .args(["--log-format", "json", "serve"])
        .stdin(Stdio::null());
    cmd
}

/// A running `genai-audit serve`. Dropping it kills the process (a failed test leaves nothing
/// behind).
struct Server {
    child: Child,
    dir: PathBuf,
    grpc: SocketAddr,
    http: SocketAddr,
    admin: SocketAddr,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts the collector in `dir` with loopback port-0 listeners and waits until `/readyz`.
    fn start(dir: &Path) -> Server {
        Self::start_with(dir, Opts::default())
    }

    fn start_with(dir: &Path, opts: Opts<'_>) -> Server {
        let mut cmd = serve_command(dir);
        let any = "127.0.0.1:0";
        if opts.ports_via_env {
            cmd.env("GENAI_AUDIT_RECEIVER_GRPC_LISTEN", any)
                .env("GENAI_AUDIT_RECEIVER_HTTP_LISTEN", any)
                .env("GENAI_AUDIT_ADMIN_LISTEN", any);
        } else {
            cmd.args([
                "--grpc-listen",
                any,
                "--http-listen",
                any,
                "--admin-listen",
                any,
            ]);
        }
        cmd.args(opts.args);
        for (k, v) in opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning genai-audit serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let unbound: SocketAddr = ([0, 0, 0, 0], 0).into();
        let mut server = Server {
            child,
            dir: dir.to_owned(),
            grpc: unbound,
            http: unbound,
            admin: unbound,
            log,
            reader: Some(reader),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let (receiving, admin) = loop {
            let receiving = server.log_event("receiving OTLP");
            let admin = server.log_event("admin endpoint (/metrics, /healthz, /readyz)");
            if let (Some(r), Some(a)) = (receiving, admin) {
                break (r, a);
            }
            server.assert_running("before binding its listeners");
            assert!(
                Instant::now() < deadline,
                "genai-audit serve did not bind within {START_TIMEOUT:?}\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let addr = |v: &serde_json::Value, k: &str| -> SocketAddr {
            v[k].as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("log field {k} is not an address: {v}"))
        };
        server.grpc = addr(&receiving, "grpc");
        server.http = addr(&receiving, "http");
        server.admin = addr(&admin, "addr");
        loop {
            if matches!(admin_get(server.admin, "/readyz"), Ok((200, _))) {
                break;
            }
            server.assert_running("before /readyz answered 200");
            assert!(
                Instant::now() < deadline,
                "/readyz not 200 within {START_TIMEOUT:?}\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Everything the process logged so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The `fields` of the first JSON log line whose message is `message`.
    fn log_event(&self, message: &str) -> Option<serde_json::Value> {
        self.log().lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["fields"]["message"].as_str() == Some(message)).then(|| v["fields"].clone())
        })
    }

    /// Waits until a log line with this message appears.
    fn wait_log_event(&self, message: &str, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = self.log_event(message) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no log line {message:?} within {within:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            self.join_reader();
            panic!("genai-audit serve exited ({status}) {when}\n{}", self.log());
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed: {status}");
    }

    /// Waits for the process to exit, killing it (and failing) after `within`.
    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.join_reader();
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.join_reader();
                panic!(
                    "genai-audit serve did not exit within {within:?}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status (it must come within [`STOP_TIMEOUT`]).
    fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(STOP_TIMEOUT)
    }

    /// SIGTERM and asserts a clean exit (code 0); returns the log.
    fn stop(mut self) -> String {
        let status = self.terminate();
        let log = self.log();
        assert_eq!(status.code(), Some(0), "exit after SIGTERM\n{log}");
        log
    }

    /// SIGKILL: no flush, no goodbye.
    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait after SIGKILL");
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.join("genai-audit-data")
    }

    fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    fn logs_url(&self) -> String {
        format!("http://{}/v1/logs", self.http)
    }

    /// `/metrics` as `series → value` (labels included in the series name).
    fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, text) = admin_get(self.admin, "/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{text}");
        parse_metrics(&text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion (it must exit within `within`; it is killed otherwise).
fn run_bounded(mut cmd: Command, within: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning genai-audit");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(out) => out.expect("waiting for genai-audit"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("genai-audit did not exit within {within:?} (killed)");
        }
    }
}

/// `GET path` on the admin endpoint with a bare HTTP/1.1 request: status and body.
fn admin_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Prometheus text → `series → value`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of a series (panics with the whole exposition when absent).
fn metric(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in\n{m:#?}"))
}

/// One stored row: the tenant of its file's partition, the file, and every column as text.
#[derive(Debug, Clone)]
struct Row {
    tenant: String,
    file: String,
    cols: BTreeMap<String, Option<String>>,
}

impl Row {
    fn get(&self, column: &str) -> Option<&str> {
        self.cols
            .get(column)
            .unwrap_or_else(|| panic!("no column {column}"))
            .as_deref()
    }

    fn id(&self) -> &str {
        self.get("record_id").expect("record_id is never null")
    }
}

/// Every row of every committed file of the store, read back through the manifest.
fn read_rows(store: &Path) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loc = StoreLocation::local(store).unwrap();
    let snapshot = rt.block_on(Snapshot::load(&loc)).unwrap();
    let mut rows = Vec::new();
    for f in snapshot.files.values() {
        let bytes = std::fs::read(loc.local_dir.as_ref().unwrap().join(&f.key)).unwrap();
        for batch in genai_audit_store::parquet_file::decode(bytes.into()).unwrap() {
            let schema = batch.schema();
            for i in 0..batch.num_rows() {
                let cols = schema
                    .fields()
                    .iter()
                    .zip(batch.columns())
                    .map(|(field, col)| (field.name().clone(), cell(col.as_ref(), i)))
                    .collect();
                rows.push(Row {
                    tenant: f.tenant.clone(),
                    file: f.key.clone(),
                    cols,
                });
            }
        }
    }
    rows
}

/// Rows by record id; panics if an id appears twice (the audit log is exactly-once).
fn rows_by_id(rows: Vec<Row>) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    for r in rows {
        let id = r.id().to_owned();
        if let Some(prev) = out.insert(id.clone(), r) {
            panic!("record {id} stored twice (first in {})", prev.file);
        }
    }
    out
}

/// One Arrow value as text (decimals exactly, lists comma-joined).
fn cell(col: &dyn Array, i: usize) -> Option<String> {
    if col.is_null(i) {
        return None;
    }
    let any = col.as_any();
    let text = if let Some(a) = any.downcast_ref::<StringArray>() {
        a.value(i).to_owned()
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        a.value(i).to_string()
    } else if let Some(a) = any.downcast_ref::<Int32Array>() {
        a.value(i).to_string()
    } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
        a.value(i).to_string()
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        a.value(i).to_string()
    } else if let Some(a) = any.downcast_ref::<Decimal128Array>() {
        a.value_as_string(i)
    } else if let Some(a) = any.downcast_ref::<TimestampMicrosecondArray>() {
        a.value(i).to_string()
    } else if let Some(a) = any.downcast_ref::<Date32Array>() {
        a.value(i).to_string()
    } else if let Some(a) = any.downcast_ref::<ListArray>() {
        let items = a.value(i);
        (0..items.len())
            .filter_map(|j| cell(items.as_ref(), j))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        format!("<{}>", col.data_type())
    };
    Some(text)
}

/// A multi-threaded runtime for the clients.
/// Writes `toml` as `dir/genai-audit.toml` and returns its path (for `serve --config`).
fn config_file(dir: &Path, toml: &str) -> PathBuf {
    let config = dir.join("genai-audit.toml");
    std::fs::write(&config, toml).unwrap();
    config
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An HTTP client that never goes through a proxy.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a protobuf `google.rpc.Status`.
    fn rpc_status(&self) -> tonic_types::pb::Status {
        assert_eq!(
            self.header("content-type"),
            Some("application/x-protobuf"),
            "{self:?}"
        );
        tonic_types::pb::Status::decode(self.body.as_slice())
            .unwrap_or_else(|e| panic!("body is not a google.rpc.Status ({e}): {self:?}"))
    }

    /// The body as JSON.
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    /// The body as a protobuf `ExportTraceServiceResponse`.
    fn traces_response(&self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse::decode(self.body.as_slice())
            .unwrap_or_else(|e| panic!("body is not an ExportTraceServiceResponse ({e}): {self:?}"))
    }
}

/// POSTs a body; `headers` are extra request headers.
async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = client.post(url).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("response body").to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// POSTs an `ExportTraceServiceRequest` as protobuf and asserts a full acceptance.
async fn post_traces_ok(
    client: &reqwest::Client,
    server: &Server,
    req: &ExportTraceServiceRequest,
) {
    let reply = post(
        client,
        &server.traces_url(),
        Some("application/x-protobuf"),
        req.encode_to_vec(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.traces_response().partial_success, None, "{reply:?}");
}

fn bearer(token: Option<&str>) -> Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    token.map(|t| format!("Bearer {t}").parse().unwrap())
}

/// `TraceService/Export` with the generated tonic client.
async fn grpc_traces(
    addr: SocketAddr,
    req: ExportTraceServiceRequest,
    token: Option<&str>,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    let mut req = tonic::Request::new(req);
    if let Some(v) = bearer(token) {
        req.metadata_mut().insert("authorization", v);
    }
    tokio::time::timeout(REQUEST_TIMEOUT, client.export(req))
        .await
        .expect("gRPC export timed out")
        .map(tonic::Response::into_inner)
}

/// `LogsService/Export` with the generated tonic client.
async fn grpc_logs(
    addr: SocketAddr,
    req: ExportLogsServiceRequest,
) -> Result<ExportLogsServiceResponse, tonic::Status> {
    let mut client = LogsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    tokio::time::timeout(REQUEST_TIMEOUT, client.export(req))
        .await
        .expect("gRPC export timed out")
        .map(tonic::Response::into_inner)
}

/// A codec that sends bytes as they are: for messages no typed client can produce.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawCoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;

    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }

    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

impl tonic::codec::Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// A unary gRPC call at `path` with `body` as the message bytes.
async fn grpc_raw(
    addr: SocketAddr,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    let call = grpc.unary(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    );
    tokio::time::timeout(REQUEST_TIMEOUT, call)
        .await
        .expect("gRPC call timed out")
        .map(tonic::Response::into_inner)
}

/// A string attribute.
fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// An integer attribute.
fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Distinct, valid ids for span `n` of series `series`.
fn ids(series: u32, n: u32) -> ([u8; 16], [u8; 8]) {
    let mut trace = [0xA5; 16];
    trace[..4].copy_from_slice(&series.to_be_bytes());
    trace[4..8].copy_from_slice(&n.to_be_bytes());
    let mut span = [0x5A; 8];
    span[4..].copy_from_slice(&n.to_be_bytes());
    (trace, span)
}

/// The record id the collector gives a span.
fn rid(trace: &[u8], span: &[u8]) -> String {
    genai_audit_core::normalize::record_id(trace, span)
}

/// A GenAI chat span (gpt-4o-mini, 10 tokens in, 5 out).
fn chat_span(trace: [u8; 16], span: [u8; 8]) -> Span {
    let start = now_ns();
    Span {
        trace_id: trace.to_vec(),
        span_id: span.to_vec(),
        name: "chat gpt-4o-mini".to_owned(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 2_000_000,
        attributes: vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.provider.name", "openai"),
            kv("gen_ai.request.model", "gpt-4o-mini"),
            kv_int("gen_ai.usage.input_tokens", 10),
            kv_int("gen_ai.usage.output_tokens", 5),
        ],
        ..Default::default()
    }
}

/// A traces request: one resource with these attributes, one scope, these spans.
fn traces_request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A request of `n` chat spans of series `series` (ids `ids(series, 0..n)`) and their record ids.
fn chat_request(series: u32, n: u32) -> (ExportTraceServiceRequest, Vec<String>) {
    let mut spans = Vec::new();
    let mut rids = Vec::new();
    for i in 0..n {
        let (t, s) = ids(series, i);
        spans.push(chat_span(t, s));
        rids.push(rid(&t, &s));
    }
    (
        traces_request(vec![kv("service.name", "e2e-test")], spans),
        rids,
    )
}
