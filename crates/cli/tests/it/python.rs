//! Real Python clients, end to end: the `openai` package instrumented by the official
//! OpenTelemetry instrumentation (`opentelemetry-instrumentation-openai-v2`, OTLP/HTTP) or by
//! OpenLLMetry's (`opentelemetry-instrumentation-openai`, OTLP/gRPC), calling a mock of the OpenAI
//! API on loopback (`tests/e2e/python/mock_openai.py`, fixed ids and token counts), exporting to
//! the real `genai-audit serve`. After a SIGTERM the audit log is read back from the committed
//! Parquet files and every call's record is checked: model, tokens, exact cost, end user, status,
//! content hashes, PII flags, and that no prompt or reply text reached the store.
//!
//! The apps (`tests/e2e/python/app_*.py`) print one line per call with the id of the parent span
//! they wrap it in, so each record is found by its `parent_span_id`. The Python packages are those
//! pinned in `tests/requirements.txt` (installed by `scripts/test.sh`); when they are missing the
//! tests fail and say how to install them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::{
    Array, ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use genai_audit_core::{HashKey, Usd};
use genai_audit_store::StoreLocation;
use genai_audit_store::manifest::Snapshot;

use super::{KEY_HEX, bin};

/// Longest wait for the collector or the mock to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest run of one app (a few calls plus the OTLP flush; about 2 s normally).
pub(crate) const APP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the collector to flush and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// Exit code of an app whose Python packages are missing or not at the pinned versions.
const EXIT_MISSING_PACKAGES: i32 = 3;
pub(crate) const INSTALL_HINT: &str = "run `python3 -m pip install -r tests/requirements.txt` \
     (scripts/test.sh does it before cargo test)";

/// What the apps send (tests/e2e/python/e2e_common.py) and the mock answers (mock_openai.py).
const USER_ID: &str = "user-7f3a9c";
const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";
const PHONE: &str = "+1-202-555-0143";
const PII_PROMPT: &str = "Please email the invoice to jane.doe@example.com, charge my card \
     4111 1111 1111 1111 and call me back on +1-202-555-0143.";
const PII_REPLY: &str = "Noted: I will write to jane.doe@example.com and call +1-202-555-0143.";
const BASIC_SYSTEM: &str = "Answer in one sentence.";
const BASIC_PROMPT: &str = "What is the capital of France?";
const BASIC_REPLY: &str = "The capital of France is Paris.";
const STREAM_PROMPT: &str = "Count from one to five.";
const STREAM_REPLY: &str = "One, two, three, four, five.";
const REASONING_PROMPT: &str = "What is six times seven?";
const REASONING_REPLY: &str = "42.";
const EMBED_INPUT: &str = "The quick brown fox jumps over the lazy dog";

/// Text that must never be found in the store, in any form.
const SECRETS: &[&str] = &[
    EMAIL,
    CARD,
    "4111111111111111",
    PHONE,
    "capital of France",
    "Paris",
    STREAM_PROMPT,
    STREAM_REPLY,
    REASONING_PROMPT,
    EMBED_INPUT,
    BASIC_SYSTEM,
];

const CASES: &[&str] = &[
    "chat_basic",
    "chat_pii",
    "chat_stream",
    "chat_reasoning",
    "error_429",
    "embeddings",
    "error_500",
];

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/python")
}

/// `python3` with nothing inherited that changes what the apps emit or where they connect:
/// every `OTEL_*` / `TRACELOOP_*` variable and every proxy setting is removed.
pub(crate) fn python() -> Command {
    let mut cmd = Command::new("python3");
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            let lower = name.to_ascii_lowercase();
            if name.starts_with("OTEL_")
                || name.starts_with("TRACELOOP_")
                || lower.ends_with("_proxy")
            {
                cmd.env_remove(name);
            }
        }
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

pub(crate) fn spawn_python(mut cmd: Command, what: &str) -> Child {
    cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run python3 for {what}: {e}\nThese tests need Python 3.11 with the packages of \
             tests/requirements.txt: {INSTALL_HINT}"
        )
    })
}

/// Reads a child's pipe to the end on a thread, keeping every line.
pub(crate) fn collect_lines(
    pipe: impl Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let handle = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    (lines, handle)
}

/// Waits for a child to exit, killing it after `timeout`. `None` when it was killed.
pub(crate) fn wait_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `genai-audit serve` in a temporary directory, on OS-picked loopback ports.
pub(crate) struct Collector {
    child: Child,
    dir: tempfile::TempDir,
    pub(crate) grpc: String,
    pub(crate) http: String,
    stderr: Arc<Mutex<Vec<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Collector {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = bin();
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str()
                && name.starts_with("GENAI_AUDIT_")
            {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .env("GENAI_AUDIT_HASH_KEY", KEY_HEX)
            .env("GENAI_AUDIT_LOG", "info")
            .current_dir(dir.path())
            .args(["--log-format", "json", "serve"])
            .args(["--grpc-listen", "127.0.0.1:0"])
            .args(["--http-listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "receiving OTLP"
                {
                    let addr = |k: &str| v["fields"][k].as_str().unwrap_or_default().to_owned();
                    let _ = tx.send((addr("grpc"), addr("http")));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let Ok((grpc, http)) = rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            let _ = stderr_reader.join();
            panic!(
                "the collector did not start listening:\n{}",
                stderr.lock().unwrap().join("\n")
            );
        };
        Collector {
            child,
            dir,
            grpc,
            http,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("genai-audit-data")
    }

    pub(crate) fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits for the flush and a clean exit.
    pub(crate) fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = wait_within(&mut self.child, STOP_TIMEOUT);
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "the collector did not exit 0 after SIGTERM:\n{}",
            self.log()
        );
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The mock OpenAI server. It exits when its stdin closes, so a dropped handle ends it.
pub(crate) struct MockOpenAi {
    child: Child,
    port: u16,
}

impl MockOpenAi {
    pub(crate) fn start() -> Self {
        let mut cmd = python();
        cmd.arg(e2e_dir().join("mock_openai.py"))
            .args(["--lifetime", "300"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_python(cmd, "the mock OpenAI server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("the mock OpenAI server did not start ({line:?}):\n{err}");
        };
        MockOpenAi { child, port }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for MockOpenAi {
    fn drop(&mut self) {
        // Closing stdin ends it; wait_within kills it if it does not.
        drop(self.child.stdin.take());
        let _ = wait_within(&mut self.child, Duration::from_secs(5));
    }
}

/// Which app, and how its instrumentation is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    /// `opentelemetry-instrumentation-openai-v2`, OTLP/HTTP protobuf, spans and log records.
    OpenAiV2,
    /// `opentelemetry-instrumentation-openai` (OpenLLMetry), OTLP/gRPC.
    Traceloop,
}

impl Lib {
    fn script(self) -> &'static str {
        match self {
            Lib::OpenAiV2 => "app_openai_v2.py",
            Lib::Traceloop => "app_traceloop.py",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lib::OpenAiV2 => "otlp-http",
            Lib::Traceloop => "otlp-grpc",
        }
    }
}

/// The parent span of each call, as the app printed it: case → (trace id, span id).
type Cases = BTreeMap<String, (String, String)>;

/// Runs one app against the collector and the mock; returns the cases it reported.
fn run_app(
    lib: Lib,
    collector: &Collector,
    mock: &MockOpenAi,
    env: &[(&str, &str)],
    args: &[&str],
) -> Cases {
    let endpoint = match lib {
        Lib::OpenAiV2 => format!("http://{}", collector.http),
        Lib::Traceloop => format!("http://{}", collector.grpc),
    };
    let mut cmd = python();
    cmd.arg(e2e_dir().join(lib.script()))
        .args(["--openai-base-url", &mock.base_url()])
        .args(["--service-name", &format!("e2e-{}", lib.script())])
        .args(args)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_python(cmd, lib.script());
    let (stdout, out_reader) = collect_lines(child.stdout.take().unwrap());
    let (stderr, err_reader) = collect_lines(child.stderr.take().unwrap());
    let status = wait_within(&mut child, APP_TIMEOUT);
    let _ = out_reader.join();
    let _ = err_reader.join();
    let stdout = stdout.lock().unwrap().join("\n");
    let stderr = stderr.lock().unwrap().join("\n");
    let code = status.and_then(|s| s.code());
    if code == Some(EXIT_MISSING_PACKAGES) {
        panic!(
            "Python packages needed by {} are missing or not at the pinned versions: \
             {INSTALL_HINT}\n{stderr}",
            lib.script()
        );
    }
    assert_eq!(
        code,
        Some(0),
        "{} failed (exit {code:?}; None = killed after {APP_TIMEOUT:?})\n--- stdout\n{stdout}\n\
         --- stderr\n{stderr}\n--- collector\n{}",
        lib.script(),
        collector.log()
    );
    let cases: Cases = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some((
                v["case"].as_str()?.to_owned(),
                (
                    v["trace_id"].as_str()?.to_owned(),
                    v["parent_span_id"].as_str()?.to_owned(),
                ),
            ))
        })
        .collect();
    let names: Vec<&str> = cases.keys().map(String::as_str).collect();
    let mut want = CASES.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "cases reported by {}:\n{stdout}", lib.script());
    cases
}

/// One stored row: the columns these tests check, and every text value of the row.
#[derive(Debug, Clone, Default)]
struct Rec {
    tenant: String,
    trace_id: String,
    parent_span_id: Option<String>,
    span_kind: String,
    operation: Option<String>,
    service_name: Option<String>,
    service_version: Option<String>,
    deployment_environment: Option<String>,
    user_id: Option<String>,
    provider: Option<String>,
    request_model: Option<String>,
    response_model: Option<String>,
    response_id: Option<String>,
    finish_reasons: Vec<String>,
    request_temperature: Option<f64>,
    request_max_tokens: Option<i64>,
    streaming: Option<bool>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cached_input_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    total_tokens: Option<i64>,
    input_cost_usd: Option<Usd>,
    output_cost_usd: Option<Usd>,
    total_cost_usd: Option<Usd>,
    cost_source: Option<String>,
    price_id: Option<String>,
    status: String,
    error_type: Option<String>,
    error_message: Option<String>,
    http_status_code: Option<i32>,
    content_captured: bool,
    prompt_hash: Option<String>,
    response_hash: Option<String>,
    hash_key_id: Option<String>,
    prompt_chars: Option<i64>,
    response_chars: Option<i64>,
    pii_detected: bool,
    pii_types: Vec<String>,
    data_classification: String,
    source: String,
    start_time_us: i64,
    end_time_us: i64,
    duration_ms: f64,
    /// Every text value of the row (all text and list-of-text columns), for leak checks.
    texts: Vec<String>,
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has an unexpected type"))
}

fn text(batch: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let a = column::<StringArray>(batch, name);
    a.is_valid(i).then(|| a.value(i).to_owned())
}

fn int(batch: &RecordBatch, name: &str, i: usize) -> Option<i64> {
    let a = column::<Int64Array>(batch, name);
    a.is_valid(i).then(|| a.value(i))
}

fn usd(batch: &RecordBatch, name: &str, i: usize) -> Option<Usd> {
    let a = column::<Decimal128Array>(batch, name);
    a.is_valid(i).then(|| Usd::from_raw(a.value(i)))
}

fn flag(batch: &RecordBatch, name: &str, i: usize) -> Option<bool> {
    let a = column::<BooleanArray>(batch, name);
    a.is_valid(i).then(|| a.value(i))
}

fn texts_of(array: &ArrayRef, i: usize) -> Vec<String> {
    if let Some(a) = array.as_any().downcast_ref::<StringArray>() {
        return a
            .is_valid(i)
            .then(|| a.value(i).to_owned())
            .into_iter()
            .collect();
    }
    if let Some(a) = array.as_any().downcast_ref::<ListArray>()
        && a.is_valid(i)
    {
        let items = a.value(i);
        return (0..items.len()).flat_map(|j| texts_of(&items, j)).collect();
    }
    Vec::new()
}

/// Every committed row of the store, read back through the manifest, and the raw bytes of
/// every file under the store directory (Parquet, manifest, WAL).
fn read_store(store: &Path) -> (Vec<Rec>, Vec<(PathBuf, Vec<u8>)>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loc = StoreLocation::local(store).unwrap();
    let snapshot = rt.block_on(Snapshot::load(&loc)).unwrap();
    let mut recs = Vec::new();
    for f in snapshot.files.values() {
        let bytes = std::fs::read(store.join(&f.key)).unwrap();
        for b in genai_audit_store::parquet_file::decode(bytes.into()).unwrap() {
            for i in 0..b.num_rows() {
                let list = |name: &str| texts_of(b.column_by_name(name).unwrap(), i);
                recs.push(Rec {
                    tenant: f.tenant.clone(),
                    trace_id: text(&b, "trace_id", i).unwrap(),
                    parent_span_id: text(&b, "parent_span_id", i),
                    span_kind: text(&b, "span_kind", i).unwrap(),
                    operation: text(&b, "operation", i),
                    service_name: text(&b, "service_name", i),
                    service_version: text(&b, "service_version", i),
                    deployment_environment: text(&b, "deployment_environment", i),
                    user_id: text(&b, "user_id", i),
                    provider: text(&b, "provider", i),
                    request_model: text(&b, "request_model", i),
                    response_model: text(&b, "response_model", i),
                    response_id: text(&b, "response_id", i),
                    finish_reasons: list("finish_reasons"),
                    request_temperature: {
                        let a = column::<Float64Array>(&b, "request_temperature");
                        a.is_valid(i).then(|| a.value(i))
                    },
                    request_max_tokens: int(&b, "request_max_tokens", i),
                    streaming: flag(&b, "streaming", i),
                    input_tokens: int(&b, "input_tokens", i),
                    output_tokens: int(&b, "output_tokens", i),
                    cached_input_tokens: int(&b, "cached_input_tokens", i),
                    reasoning_tokens: int(&b, "reasoning_tokens", i),
                    total_tokens: int(&b, "total_tokens", i),
                    input_cost_usd: usd(&b, "input_cost_usd", i),
                    output_cost_usd: usd(&b, "output_cost_usd", i),
                    total_cost_usd: usd(&b, "total_cost_usd", i),
                    cost_source: text(&b, "cost_source", i),
                    price_id: text(&b, "price_id", i),
                    status: text(&b, "status", i).unwrap(),
                    error_type: text(&b, "error_type", i),
                    error_message: text(&b, "error_message", i),
                    http_status_code: {
                        let a = column::<Int32Array>(&b, "http_status_code");
                        a.is_valid(i).then(|| a.value(i))
                    },
                    content_captured: flag(&b, "content_captured", i).unwrap(),
                    prompt_hash: text(&b, "prompt_hash", i),
                    response_hash: text(&b, "response_hash", i),
                    hash_key_id: text(&b, "hash_key_id", i),
                    prompt_chars: int(&b, "prompt_chars", i),
                    response_chars: int(&b, "response_chars", i),
                    pii_detected: flag(&b, "pii_detected", i).unwrap(),
                    pii_types: list("pii_types"),
                    data_classification: text(&b, "data_classification", i).unwrap(),
                    source: text(&b, "source", i).unwrap(),
                    start_time_us: column::<TimestampMicrosecondArray>(&b, "start_time").value(i),
                    end_time_us: column::<TimestampMicrosecondArray>(&b, "end_time").value(i),
                    duration_ms: column::<Float64Array>(&b, "duration_ms").value(i),
                    texts: b.columns().iter().flat_map(|c| texts_of(c, i)).collect(),
                });
            }
        }
    }
    let mut files = Vec::new();
    let mut dirs = vec![store.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    (recs, files)
}

fn now_us() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

fn usd_of(s: &str) -> Option<Usd> {
    Some(s.parse().unwrap())
}

/// The expected record of a successful call.
struct Call<'a> {
    request_model: &'static str,
    response_model: &'static str,
    response_id: Option<&'static str>,
    /// Input, output, cached input and reasoning tokens as the mock reports them.
    tokens: (i64, Option<i64>, i64, i64),
    input_cost: &'static str,
    output_cost: &'static str,
    total_cost: &'static str,
    /// The start of the `price_id` (the table version follows).
    price: &'static str,
    /// The canonical prompt text (messages joined by newlines) and reply.
    prompt: &'a str,
    reply: Option<&'static str>,
}

/// Per-instrumentation differences in what the span carries (the rest is common).
#[derive(Debug, Clone, Copy)]
struct Variant {
    lib: Lib,
    /// Content captured (on the span or in log records).
    content: bool,
    /// OpenLLMetry with `use_attributes=False`: content as log events. It emits the reply of a
    /// stream after leaving the span, so that event carries the parent's span id and cannot be
    /// matched to the call.
    events: bool,
}

impl Variant {
    /// OpenLLMetry reports cached and reasoning tokens; the official instrumentation does not.
    fn reports_cache(self) -> bool {
        self.lib == Lib::Traceloop
    }

    /// Status code of a successful call: OpenLLMetry sets OK on streams only; the official
    /// instrumentation leaves every successful span UNSET.
    fn ok_status(self, case: &str) -> &'static str {
        match (self.lib, case) {
            (Lib::Traceloop, "chat_stream") => "ok",
            _ => "unset",
        }
    }
}

/// Runs `variant`'s app once against a fresh collector and checks every record.
fn check(variant: Variant, env: &[(&str, &str)], args: &[&str]) {
    let started = Instant::now();
    let mock = MockOpenAi::start();
    let mut collector = Collector::start();
    let before_us = now_us();
    let cases = run_app(variant.lib, &collector, &mock, env, args);
    let after_us = now_us();
    collector.stop();
    let (recs, files) = read_store(&collector.store());
    let log = collector.log();
    assert!(
        !log.contains("\"level\":\"ERROR\""),
        "the collector logged errors:\n{log}"
    );
    assert_eq!(
        recs.len(),
        CASES.len(),
        "one record per call (the apps' own parent spans are not GenAI spans): {recs:#?}\n{log}"
    );
    let key = HashKey::from_hex(KEY_HEX).unwrap();
    for (case, (trace_id, parent)) in &cases {
        let found: Vec<&Rec> = recs
            .iter()
            .filter(|r| r.parent_span_id.as_deref() == Some(parent.as_str()))
            .collect();
        assert_eq!(found.len(), 1, "{variant:?} {case}: records {recs:#?}");
        let r = found[0];
        assert_eq!(&r.trace_id, trace_id, "{variant:?} {case}");
        // Span times: within the app's run, in microseconds since the epoch.
        assert!(
            before_us <= r.start_time_us
                && r.start_time_us <= r.end_time_us
                && r.end_time_us <= after_us,
            "{variant:?} {case}: span times outside the run [{before_us}, {after_us}]: {r:#?}"
        );
        let duration_us = (r.end_time_us - r.start_time_us) as f64;
        assert!(
            (r.duration_ms * 1000.0 - duration_us).abs() <= 2.0,
            "{variant:?} {case}: duration_ms: {r:#?}"
        );
        check_record(variant, case, r, &key);
    }
    assert_no_content_stored(&recs, &files);
    eprintln!("{variant:?}: {:?}", started.elapsed());
}

fn check_record(v: Variant, case: &str, r: &Rec, key: &HashKey) {
    let ctx = format!("{v:?} {case}: {r:#?}");
    let ctx = ctx.as_str();
    // Common to every call.
    assert_eq!(r.tenant, "default", "{ctx}");
    assert_eq!(r.provider.as_deref(), Some("openai"), "{ctx}");
    let service = format!("e2e-{}", v.lib.script());
    assert_eq!(r.service_name.as_deref(), Some(service.as_str()), "{ctx}");
    assert_eq!(r.service_version.as_deref(), Some("1.2.3"), "{ctx}");
    assert_eq!(r.deployment_environment.as_deref(), Some("e2e"), "{ctx}");
    assert_eq!(r.source, v.lib.source(), "{ctx}");
    if case != "embeddings" {
        assert_eq!(r.span_kind, "llm_call", "{ctx}");
        assert_eq!(r.operation.as_deref(), Some("chat"), "{ctx}");
    }
    // The end user is attached to the chat calls only (not to embeddings / error_500).
    let with_user = !matches!(case, "embeddings" | "error_500");
    assert_eq!(r.user_id.as_deref(), with_user.then_some(USER_ID), "{ctx}");

    let cache = v.reports_cache();
    let basic_prompt = format!("{BASIC_SYSTEM}\n{BASIC_PROMPT}");
    let want = match case {
        // gpt-4.1: $2/M input, $0.50/M cached, $8/M output.
        "chat_basic" => Some(Call {
            request_model: "gpt-4.1",
            response_model: "gpt-4.1-2025-04-14",
            response_id: Some("chatcmpl-e2eBasic0000000000000000001"),
            tokens: (1234, Some(567), 200, 0),
            // 1034 × 2 + 200 × 0.5 = 2168 µ$ when the cache is reported, else 1234 × 2.
            input_cost: if cache { "0.002168" } else { "0.002468" },
            output_cost: "0.004536",
            total_cost: if cache { "0.006704" } else { "0.007004" },
            price: "openai/gpt-4.1@2025-04-14#",
            prompt: basic_prompt.as_str(),
            reply: Some(BASIC_REPLY),
        }),
        "chat_pii" => Some(Call {
            request_model: "gpt-4.1",
            response_model: "gpt-4.1-2025-04-14",
            response_id: Some("chatcmpl-e2ePii00000000000000000000004"),
            tokens: (150, Some(42), 0, 0),
            input_cost: "0.0003",
            output_cost: "0.000336",
            total_cost: "0.000636",
            price: "openai/gpt-4.1@2025-04-14#",
            prompt: PII_PROMPT,
            reply: Some(PII_REPLY),
        }),
        // gpt-4o-mini: $0.15/M input, $0.075/M cached, $0.60/M output.
        "chat_stream" => Some(Call {
            request_model: "gpt-4o-mini",
            response_model: "gpt-4o-mini-2024-07-18",
            response_id: Some("chatcmpl-e2eStream000000000000000002"),
            tokens: (321, Some(89), 64, 0),
            // 257 × 0.15 + 64 × 0.075 = 43.35 µ$, else 321 × 0.15.
            input_cost: if cache { "0.00004335" } else { "0.00004815" },
            output_cost: "0.0000534",
            total_cost: if cache { "0.00009675" } else { "0.00010155" },
            price: "openai/gpt-4o-mini@2024-07-18#",
            prompt: STREAM_PROMPT,
            reply: Some(STREAM_REPLY),
        }),
        // o3-mini: $1.10/M input, $0.55/M cached, $4.40/M output (reasoning included).
        "chat_reasoning" => Some(Call {
            request_model: "o3-mini",
            response_model: "o3-mini-2025-01-31",
            response_id: Some("chatcmpl-e2eReason000000000000000003"),
            tokens: (900, Some(1500), 512, 1200),
            // 388 × 1.10 + 512 × 0.55 = 708.4 µ$, else 900 × 1.10.
            input_cost: if cache { "0.0007084" } else { "0.00099" },
            output_cost: "0.0066",
            total_cost: if cache { "0.0073084" } else { "0.00759" },
            price: "openai/o3-mini@2025-01-31#",
            prompt: REASONING_PROMPT,
            reply: Some(REASONING_REPLY),
        }),
        // text-embedding-3-small: $0.02/M input, no output.
        "embeddings" => Some(Call {
            request_model: "text-embedding-3-small",
            response_model: "text-embedding-3-small",
            response_id: None,
            tokens: (11, None, 0, 0),
            input_cost: "0.00000022",
            output_cost: "0",
            total_cost: "0.00000022",
            price: "openai/text-embedding-3-small@2024-01-25#",
            prompt: EMBED_INPUT,
            reply: None,
        }),
        _ => None,
    };

    if let Some(w) = want {
        let (input, output, cached, reasoning) = w.tokens;
        assert_eq!(r.status, v.ok_status(case), "{ctx}");
        assert_eq!(r.error_type, None, "{ctx}");
        assert_eq!(r.http_status_code, None, "{ctx}");
        assert_eq!(r.request_model.as_deref(), Some(w.request_model), "{ctx}");
        assert_eq!(r.response_model.as_deref(), Some(w.response_model), "{ctx}");
        assert_eq!(r.response_id.as_deref(), w.response_id, "{ctx}");
        assert_eq!(r.input_tokens, Some(input), "{ctx}");
        assert_eq!(r.output_tokens, output, "{ctx}");
        assert_eq!(r.total_tokens, Some(input + output.unwrap_or(0)), "{ctx}");
        if case == "embeddings" {
            assert_eq!(r.span_kind, "embeddings", "{ctx}");
            assert_eq!(r.operation.as_deref(), Some("embeddings"), "{ctx}");
            assert_eq!(r.cached_input_tokens, None, "{ctx}");
        } else {
            // The official instrumentation records no finish reason on streams.
            if case == "chat_stream" && !cache {
                assert!(r.finish_reasons.is_empty(), "{ctx}");
            } else {
                assert_eq!(r.finish_reasons, ["stop"], "{ctx}");
            }
            assert_eq!(r.cached_input_tokens, cache.then_some(cached), "{ctx}");
            if !cache {
                assert_eq!(r.reasoning_tokens, None, "{ctx}");
            } else if case == "chat_reasoning" {
                assert_eq!(r.reasoning_tokens, Some(reasoning), "{ctx}");
            }
        }
        if case == "chat_basic" {
            assert_eq!(r.request_temperature, Some(0.2), "{ctx}");
            assert_eq!(r.request_max_tokens, Some(100), "{ctx}");
        }
        if case == "chat_stream" && v.lib == Lib::Traceloop {
            assert_eq!(r.streaming, Some(true), "{ctx}");
        }
        assert_eq!(r.input_cost_usd, usd_of(w.input_cost), "{ctx}");
        assert_eq!(r.output_cost_usd, usd_of(w.output_cost), "{ctx}");
        assert_eq!(r.total_cost_usd, usd_of(w.total_cost), "{ctx}");
        assert_eq!(r.cost_source.as_deref(), Some("price_table"), "{ctx}");
        assert!(
            r.price_id
                .as_deref()
                .is_some_and(|p| p.starts_with(w.price)),
            "{ctx}"
        );

        // Content: the official instrumentation captures none for embeddings.
        let content = v.content && !(case == "embeddings" && v.lib == Lib::OpenAiV2);
        if content {
            let chars = |t: &str| i64::try_from(t.chars().count()).unwrap();
            assert!(r.content_captured, "{ctx}");
            assert_eq!(r.prompt_hash, Some(key.hash(w.prompt)), "{ctx}");
            assert_eq!(r.prompt_chars, Some(chars(w.prompt)), "{ctx}");
            let reply = w.reply.filter(|_| !(v.events && case == "chat_stream"));
            assert_eq!(r.response_hash, reply.map(|t| key.hash(t)), "{ctx}");
            assert_eq!(r.response_chars, reply.map(chars), "{ctx}");
            assert_eq!(r.hash_key_id.as_deref(), Some(key.id()), "{ctx}");
        } else {
            assert_no_content(r, ctx);
        }
        if content && case == "chat_pii" {
            assert!(r.pii_detected, "{ctx}");
            let mut types = r.pii_types.clone();
            types.sort();
            assert_eq!(types, ["CREDIT_CARD", "EMAIL", "PHONE"], "{ctx}");
            assert_eq!(r.data_classification, "restricted", "{ctx}");
        } else {
            assert!(!r.pii_detected, "{ctx}");
            assert!(r.pii_types.is_empty(), "{ctx}");
            assert_eq!(r.data_classification, "internal", "{ctx}");
        }
        return;
    }

    // The failing calls.
    let (model, status, error_type, message) = match case {
        "error_429" => (
            "rate-limit-me",
            429,
            "RateLimitError",
            "Error code: 429 - Rate limit reached for gpt-4.1",
        ),
        "error_500" => (
            "server-error-me",
            500,
            "InternalServerError",
            "Error code: 500 - The server had an error",
        ),
        other => panic!("unknown case {other}"),
    };
    assert_eq!(r.status, "error", "{ctx}");
    assert_eq!(r.error_type.as_deref(), Some(error_type), "{ctx}");
    assert!(
        r.error_message
            .as_deref()
            .is_some_and(|m| m.starts_with(message)),
        "{ctx}"
    );
    assert_eq!(r.http_status_code, Some(status), "{ctx}");
    assert_eq!(r.request_model.as_deref(), Some(model), "{ctx}");
    assert_eq!(r.response_model, None, "{ctx}");
    assert_eq!(r.response_id, None, "{ctx}");
    assert_eq!((r.input_tokens, r.output_tokens), (None, None), "{ctx}");
    assert_eq!(r.total_cost_usd, None, "{ctx}");
    assert_eq!(r.cost_source.as_deref(), Some("unpriced"), "{ctx}");
    assert!(!r.pii_detected, "{ctx}");
    assert_eq!(r.data_classification, "internal", "{ctx}");
    if v.content {
        // The request was captured; there is no reply.
        assert!(r.content_captured, "{ctx}");
        let prompt = key.hash(BASIC_PROMPT);
        assert_eq!(r.prompt_hash.as_deref(), Some(prompt.as_str()), "{ctx}");
        assert_eq!(r.response_hash, None, "{ctx}");
    } else {
        assert_no_content(r, ctx);
    }
}

fn assert_no_content(r: &Rec, ctx: &str) {
    assert!(!r.content_captured, "{ctx}");
    assert_eq!(r.prompt_hash, None, "{ctx}");
    assert_eq!(r.response_hash, None, "{ctx}");
    assert_eq!(r.prompt_chars, None, "{ctx}");
    assert_eq!(r.response_chars, None, "{ctx}");
    assert_eq!(r.hash_key_id, None, "{ctx}");
}

/// No prompt or reply text anywhere: not in any decoded value (attributes included), not in the
/// raw bytes of any file the collector left under the store (Parquet, manifest, WAL).
fn assert_no_content_stored(recs: &[Rec], files: &[(PathBuf, Vec<u8>)]) {
    for r in recs {
        for t in &r.texts {
            for s in SECRETS {
                assert!(!t.contains(s), "{s:?} stored in a record: {t}\n{r:#?}");
            }
        }
    }
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "parquet"))
    );
    for (path, bytes) in files {
        for s in SECRETS {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s:?} found in the bytes of {}",
                path.display()
            );
        }
    }
}

#[test]
fn openai_v2_content_on_spans_and_log_events_over_http() {
    check(
        Variant {
            lib: Lib::OpenAiV2,
            content: true,
            events: false,
        },
        &[
            (
                "OTEL_SEMCONV_STABILITY_OPT_IN",
                "gen_ai_latest_experimental",
            ),
            (
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                "span_and_event",
            ),
        ],
        &[],
    );
}

/// Content only in OTLP log records, exported before the spans (and gzip-compressed): the
/// collector must hold it until the span arrives and merge it into the span's record.
#[test]
fn openai_v2_content_in_log_events_only_sent_first_over_http_gzip() {
    check(
        Variant {
            lib: Lib::OpenAiV2,
            content: true,
            events: false,
        },
        &[
            (
                "OTEL_SEMCONV_STABILITY_OPT_IN",
                "gen_ai_latest_experimental",
            ),
            (
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                "event_only",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            // Spans wait for the final flush, which comes after the logs'.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
        &["--flush-logs-first"],
    );
}

#[test]
fn openai_v2_content_off_over_http() {
    check(
        Variant {
            lib: Lib::OpenAiV2,
            content: false,
            events: false,
        },
        &[(
            "OTEL_SEMCONV_STABILITY_OPT_IN",
            "gen_ai_latest_experimental",
        )],
        &[],
    );
}

#[test]
fn traceloop_content_on_over_grpc() {
    check(
        Variant {
            lib: Lib::Traceloop,
            content: true,
            events: false,
        },
        &[("TRACELOOP_TRACE_CONTENT", "true")],
        &[],
    );
}

/// Content as OTLP log events (`gen_ai.user.message`, `gen_ai.choice`, …) over gRPC.
#[test]
fn traceloop_content_as_log_events_over_grpc() {
    check(
        Variant {
            lib: Lib::Traceloop,
            content: true,
            events: true,
        },
        &[("TRACELOOP_TRACE_CONTENT", "true")],
        &["--use-events"],
    );
}

#[test]
fn traceloop_content_off_over_grpc_gzip() {
    check(
        Variant {
            lib: Lib::Traceloop,
            content: false,
            events: false,
        },
        &[
            ("TRACELOOP_TRACE_CONTENT", "false"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ],
        &[],
    );
}
