//! Load generator and benchmark of `genai-audit serve` (issue #4).
//!
//! `cargo bench -p genai-audit --bench loadgen -- [options]` (`-- --help` lists them) starts the
//! `genai-audit` binary cargo built for this bench (release profile) in a temporary directory,
//! with a local store and the default WAL durability (fsync), and sends it realistic synthetic
//! GenAI spans (`genai_audit_core::testkit`) over loopback only:
//!
//! - flat out: `--spans` spans in requests of `--batch` over `--connections` concurrent
//!   connections, OTLP/gRPC then OTLP/HTTP (protobuf), one fresh collector per run. Counts the
//!   acknowledged requests (by id) and spans, measures the collector's CPU time
//!   (`/proc/<pid>/stat` utime+stime) → CPU-seconds per million spans and spans/s per core;
//!   after SIGTERM checks that the committed row count equals the acknowledged spans.
//! - fixed rate: `--rate` spans/s in requests of `--rate-batch`, scheduled open-loop (a request
//!   is sent at its time whether or not earlier ones were answered, and its latency counts from
//!   that time, so queueing is included) for `--rate-secs`: ack latency p50/p90/p99/max.
//! - peak RSS: the collector's VmHWM (`/proc/<pid>/status`) at the end of every run, shutdown
//!   flush included.
//!
//! Every run is bounded in count (the requests are generated before it starts) and in time
//! (`--max-secs`, request timeouts, shutdown deadline). Requests are encoded before a run, so
//! the load generator's CPU goes into framing and sending only.
//!
//! Without `--bench` (how `cargo test --benches` and `cargo test --all-targets` run a
//! `harness = false` bench) it runs a smoke version in seconds: 2,000 spans flat out over each
//! transport and 1 s at a fixed rate, every acknowledged span checked in the store.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use bytes::{Buf, BufMut, Bytes};
use clap::{Parser, ValueEnum};
use genai_audit_core::testkit::{Rng, genai_request};
use genai_audit_store::StoreLocation;
use genai_audit_store::manifest::Snapshot;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

/// The OTLP/gRPC traces method.
const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of one request told to come back later (backpressure).
const MAX_RETRIES: u32 = 50;
/// How long the collector may take to start, and to stop (its own flush deadline is 30 s).
const START_DEADLINE: Duration = Duration::from_secs(60);
const STOP_DEADLINE: Duration = Duration::from_secs(90);
/// Distinct end users in the synthetic traffic.
const USERS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Grpc,
    Http,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// Flat out: as fast as the collector acknowledges.
    Flat,
    /// Fixed rate, open loop.
    Rate,
}

/// Load generator and benchmark of `genai-audit serve` (loopback only, bounded).
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen")]
struct Opts {
    /// Set by `cargo bench`; without it a quick smoke run is made and other options are ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Measurements to make, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "flat,rate")]
    phases: Vec<Phase>,
    /// Transports, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "grpc,http")]
    transports: Vec<Transport>,
    /// Runs of each measurement (each with a fresh collector).
    #[arg(long, default_value_t = 2)]
    runs: usize,
    /// Flat out: spans per run.
    #[arg(long, default_value_t = 1_000_000)]
    spans: usize,
    /// Flat out: spans per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Flat out: concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Fixed rate: spans per second.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Fixed rate: spans per request.
    #[arg(long, default_value_t = 100)]
    rate_batch: usize,
    /// Fixed rate: seconds of sending per run.
    #[arg(long, default_value_t = 20.0)]
    rate_secs: f64,
    /// Fixed rate: connections the requests are spread over (gRPC multiplexes requests on
    /// each; HTTP/1.1 opens more when all are busy).
    #[arg(long, default_value_t = 4)]
    rate_connections: usize,
    /// Upper bound of any run's sending, in seconds.
    #[arg(long, default_value_t = 300)]
    max_secs: u64,
    /// WAL durability of the collector (`fsync` or `os`).
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// Skip checking the committed row count against the acknowledged spans after shutdown.
    #[arg(long)]
    no_verify: bool,
    /// Record `perf record -g` of the collector during each flat-out run, from the start of
    /// sending to its exit (the shutdown flush included), into this directory
    /// (perf.<transport>.<run>.data). Profiled runs are slower: don't compare their figures.
    #[arg(long, value_name = "DIR")]
    perf: Option<PathBuf>,
    /// perf's `--call-graph` mode: `fp` (cheap; stacks end at the first Rust frame, which has no
    /// frame pointer) or e.g. `dwarf,16384` (whole stacks, much larger files).
    #[arg(long, default_value = "fp", value_name = "MODE")]
    perf_call_graph: String,
    /// Worker threads of the load generator's runtime (it shares the machine's cores with the
    /// collector).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Collector binary (default: the one cargo built for this bench).
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Keep each run's temporary directory (store, WAL, collector log).
    #[arg(long)]
    keep: bool,
    /// Before each run, wait up to this many seconds for the machine to be quiet (other
    /// processes using at most `--quiet-busy` CPUs over one second). 0: don't wait.
    #[arg(long, default_value_t = 0)]
    quiet_wait: u64,
    /// CPUs other processes may use for the machine to count as quiet.
    #[arg(long, default_value_t = 0.2)]
    quiet_busy: f64,
    /// Every this many milliseconds during each run's load, sample the collector's VmRSS and
    /// its buffered and WAL bytes (`/metrics`), and print the timeline after the run. 0: don't.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    memory_trace: u64,
    /// Seed of the synthetic traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Filters that `cargo bench -- FILTER` passes to every bench: ignored.
    #[arg(hide = true)]
    filters: Vec<String>,
}

impl Opts {
    /// The quick version run under `cargo test`.
    fn smoke() -> Self {
        let mut o = Opts::parse_from(["loadgen"]);
        o.runs = 1;
        o.spans = 2_000;
        o.batch = 500;
        o.connections = 2;
        o.rate = 2_000;
        o.rate_batch = 100;
        o.rate_secs = 1.0;
        o.rate_connections = 2;
        o.max_secs = 60;
        o
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // cargo bench passes --bench to harness = false benches; cargo test runs them without it,
    // possibly with libtest's own flags, which are not ours to reject.
    let opts = if args.iter().any(|a| a == "--bench") {
        match Opts::try_parse_from(&args) {
            Ok(o) => o,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
        }
    } else {
        println!(
            "loadgen: smoke run (cargo bench -p genai-audit --bench loadgen for the benchmark)"
        );
        Opts::smoke()
    };
    match run(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("loadgen: FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every measurement and prints the summary. `Ok(false)` when a check failed.
fn run(opts: &Opts) -> Result<bool> {
    if opts.batch == 0 || opts.rate_batch == 0 || opts.connections == 0 || opts.rate == 0 {
        bail!("--batch, --rate-batch, --connections and --rate must be positive");
    }
    if opts.rate_connections == 0 || opts.runs == 0 || opts.client_threads == 0 {
        bail!("--rate-connections, --runs and --client-threads must be positive");
    }
    if !opts.filters.is_empty() {
        println!("loadgen: ignoring filters {:?}", opts.filters);
    }
    let bin = opts
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_genai-audit")));
    let machine = Machine::read(&bin);
    println!("{}", machine.describe(opts));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads)
        .enable_all()
        .build()
        .context("starting the load generator's runtime")?;

    let mut flat = Vec::new();
    let mut rate = Vec::new();
    for phase in &opts.phases {
        match phase {
            Phase::Flat => {
                let t = Instant::now();
                let reqs = Arc::new(generate(
                    opts.spans.div_ceil(opts.batch),
                    opts.batch,
                    opts.seed,
                    opts.spans,
                ));
                println!(
                    "flat out: {} requests of ≤ {} spans generated in {:.1} s ({:.0} bytes/span as OTLP protobuf)",
                    reqs.bodies.len(),
                    opts.batch,
                    t.elapsed().as_secs_f64(),
                    reqs.bytes as f64 / reqs.spans as f64
                );
                for run in 1..=opts.runs {
                    for &tr in &opts.transports {
                        let r = flat_out(opts, &bin, &rt, tr, run, &reqs)?;
                        println!("  {}", r.line(opts));
                        flat.push(r);
                    }
                }
            }
            Phase::Rate => {
                let secs = opts.rate_secs.min(opts.max_secs as f64).max(0.0);
                let per_sec = opts.rate as f64 / opts.rate_batch as f64;
                let n = ((secs * per_sec).round() as usize).max(1);
                let t = Instant::now();
                let reqs = Arc::new(generate(
                    n,
                    opts.rate_batch,
                    opts.seed ^ 0xabcd,
                    n * opts.rate_batch,
                ));
                println!(
                    "fixed rate: {n} requests of {} spans generated in {:.1} s",
                    opts.rate_batch,
                    t.elapsed().as_secs_f64()
                );
                for run in 1..=opts.runs {
                    for &tr in &opts.transports {
                        let r = fixed_rate(opts, &bin, &rt, tr, run, &reqs)?;
                        println!("  {}", r.line(opts));
                        rate.push(r);
                    }
                }
            }
        }
    }
    let ok = flat.iter().all(|r| r.ok(opts)) && rate.iter().all(|r| r.ok(opts));
    println!("\n{}", summary(opts, &machine, &flat, &rate));
    Ok(ok)
}

// ---------------------------------------------------------------------------------------------
// Machine and process facts.

struct Machine {
    nproc: usize,
    cpu: String,
    loadavg: String,
    bin: PathBuf,
}

impl Machine {
    fn read(bin: &Path) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            loadavg: loadavg(),
            bin: bin.to_owned(),
        }
    }

    fn describe(&self, opts: &Opts) -> String {
        format!(
            "machine: nproc {}, CPU {}, load average at start {}\ncollector: {} (durability {}); load generator: {} runtime thread(s), same machine",
            self.nproc,
            self.cpu,
            self.loadavg,
            self.bin.display(),
            opts.durability,
            opts.client_threads
        )
    }
}

/// Clock ticks per second of `/proc` times.
fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Busy clock ticks of all CPUs together, from the first line of `/proc/stat` (user, nice,
/// system, irq, softirq, steal).
fn machine_busy_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum()
}

/// Waits (at most `--quiet-wait` seconds) for a second in which the rest of the machine is
/// busy less than `--quiet-busy` of one CPU; prints how busy it was.
fn wait_quiet(opts: &Opts) {
    if opts.quiet_wait == 0 {
        return;
    }
    let tck = clk_tck() as f64;
    let t = Instant::now();
    let mut busy = f64::NAN;
    while t.elapsed() < Duration::from_secs(opts.quiet_wait) {
        let b0 = machine_busy_ticks();
        std::thread::sleep(Duration::from_secs(1));
        busy = machine_busy_ticks().saturating_sub(b0) as f64 / tck;
        if busy <= opts.quiet_busy {
            return;
        }
    }
    println!(
        "  (machine still busy: {busy:.2} CPUs in use by others after waiting {} s; running anyway)",
        opts.quiet_wait
    );
}

fn load1() -> String {
    loadavg().split(' ').next().unwrap_or("?").to_owned()
}

/// State and utime+stime (clock ticks) of a process, all threads, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 3 (state), 14 (utime), 15 (stime) of proc(5), counted after "pid (comm)".
    let state = f.first()?.chars().next()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

fn cpu_ticks(pid: u32) -> u64 {
    proc_stat(pid).map_or(0, |(_, t)| t)
}

/// A `kB` field of `/proc/<pid>/status` (VmHWM, VmRSS).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// The collector process.

struct Collector {
    child: Child,
    pid: u32,
    grpc: SocketAddr,
    http: SocketAddr,
    admin: SocketAddr,
    store: PathBuf,
    dir: Option<tempfile::TempDir>,
    log: Arc<Mutex<VecDeque<String>>>,
    /// VmRSS once ready, before any load, in KiB.
    ready_rss_kib: u64,
}

/// What the collector left when it exited.
struct Stopped {
    status: ExitStatus,
    /// utime+stime of the whole life, read while it was a zombie.
    cpu_ticks: u64,
    /// Largest VmHWM seen, in KiB.
    hwm_kib: u64,
    shutdown: Duration,
}

impl Collector {
    fn start(opts: &Opts, bin: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("genai-audit-loadgen-")
            .tempdir()
            .context("creating a temporary directory")?;
        let store = dir.path().join("store");
        let mut cmd = Command::new(bin);
        // Defaults only: nothing from the caller's environment reaches the collector's config.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("GENAI_AUDIT_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(dir.path())
            .env("GENAI_AUDIT_WAL_DURABILITY", &opts.durability)
            .env("GENAI_AUDIT_LOG", "info")
            .args(["--log-format", "json", "serve", "--store"])
            .arg(&store)
            .args([
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(["--admin-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().context("collector stderr")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel::<(String, String)>();
        let ring = log.clone();
        // Reads the collector's log to its end (a full pipe would stall it): addresses to the
        // starter, the last lines kept for error reports.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let fields = v.get("fields").unwrap_or(&v);
                    let msg = fields.get("message").and_then(|m| m.as_str()).unwrap_or("");
                    let field = |k: &str| {
                        fields
                            .get(k)
                            .and_then(|x| x.as_str())
                            .unwrap_or("")
                            .to_owned()
                    };
                    if msg == "receiving OTLP" {
                        let _ = tx.send(("grpc".into(), field("grpc")));
                        let _ = tx.send(("http".into(), field("http")));
                    } else if msg.starts_with("admin endpoint") {
                        let _ = tx.send(("admin".into(), field("addr")));
                    }
                }
                if let Ok(mut r) = ring.lock() {
                    if r.len() >= 200 {
                        r.pop_front();
                    }
                    r.push_back(line);
                }
            }
        });
        let mut c = Collector {
            child,
            pid,
            grpc: SocketAddr::from(([0, 0, 0, 0], 0)),
            http: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin: SocketAddr::from(([0, 0, 0, 0], 0)),
            store,
            dir: Some(dir),
            log,
            ready_rss_kib: 0,
        };
        let deadline = Instant::now() + START_DEADLINE;
        let mut got = 0;
        while got < 3 {
            let left = deadline.saturating_duration_since(Instant::now());
            let (k, v) = match rx.recv_timeout(left) {
                Ok(kv) => kv,
                Err(_) => bail!(
                    "the collector did not report its addresses within {START_DEADLINE:?}; its log:\n{}",
                    c.log_tail()
                ),
            };
            let addr: SocketAddr = v
                .parse()
                .with_context(|| format!("collector {k} address {v:?}"))?;
            if !addr.ip().is_loopback() {
                bail!("collector {k} address {addr} is not loopback");
            }
            match k.as_str() {
                "grpc" => c.grpc = addr,
                "http" => c.http = addr,
                _ => c.admin = addr,
            }
            got += 1;
        }
        c.ready_rss_kib = status_kib(pid, "VmRSS:").unwrap_or(0);
        Ok(c)
    }

    fn log_tail(&self) -> String {
        self.log
            .lock()
            .map(|l| {
                l.iter()
                    .rev()
                    .take(20)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid)
    }

    /// SIGTERM, then waits for the exit, reading CPU time and peak RSS until it is a zombie.
    fn stop(&mut self) -> Result<Stopped> {
        let t = Instant::now();
        signal(self.pid, "-TERM");
        let mut hwm = 0;
        let mut ticks = 0;
        let mut killed = false;
        loop {
            match proc_stat(self.pid) {
                Some(('Z' | 'X', t)) => {
                    ticks = t;
                    break;
                }
                Some((_, t)) => {
                    ticks = t;
                    hwm = hwm.max(status_kib(self.pid, "VmHWM:").unwrap_or(0));
                }
                None => break,
            }
            if !killed && t.elapsed() > STOP_DEADLINE {
                signal(self.pid, "-KILL");
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = self.child.wait().context("waiting for the collector")?;
        if killed {
            bail!("the collector did not stop within {STOP_DEADLINE:?}");
        }
        Ok(Stopped {
            status,
            cpu_ticks: ticks,
            hwm_kib: hwm,
            shutdown: t.elapsed(),
        })
    }

    /// Keeps the directory (with the collector's log) if asked to; returns where it is.
    fn finish(&mut self, keep: bool) -> Option<PathBuf> {
        let dir = self.dir.take()?;
        if !keep {
            return None;
        }
        let path = dir.keep();
        if let Ok(l) = self.log.lock() {
            let text: Vec<&str> = l.iter().map(String::as_str).collect();
            let _ = std::fs::write(path.join("collector.log"), text.join("\n"));
        }
        Some(path)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Values of a few counters in the collector's `/metrics`.
async fn scrape(client: &reqwest::Client, admin: SocketAddr, names: &[&str]) -> Vec<Option<f64>> {
    let text = match client.get(format!("http://{admin}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    names
        .iter()
        .map(|n| {
            text.lines()
                .find_map(|l| l.strip_prefix(n).and_then(|v| v.strip_prefix(' ')))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// The collector's memory over a run (`--memory-trace`): VmRSS and what `/metrics` says the
/// write path holds, sampled until stopped.
struct MemoryTrace {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

/// Gauges sampled by [`MemoryTrace`], with their column headings.
const TRACED: [(&str, &str); 5] = [
    ("genai_audit_buffered_bytes", "buffered MiB"),
    ("genai_audit_buffered_records", "buffered rows"),
    ("genai_audit_wal_bytes", "WAL MiB"),
    ("genai_audit_commits_total", "commits"),
    ("genai_audit_wal_spilled_entries_total", "spilled entries"),
];

impl MemoryTrace {
    fn start(opts: &Opts, rt: &tokio::runtime::Runtime, c: &Collector) -> Option<Self> {
        if opts.memory_trace == 0 {
            return None;
        }
        let every = Duration::from_millis(opts.memory_trace);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pid, admin, flag) = (c.pid, c.admin, stop.clone());
        let task = rt.spawn(async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default();
            let names: Vec<&str> = TRACED.iter().map(|(n, _)| *n).collect();
            let t0 = Instant::now();
            let mut lines = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let rss = status_kib(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
                let m = scrape(&client, admin, &names).await;
                let mut line = format!("{:6.1} s  RSS {rss:6.1} MiB", t0.elapsed().as_secs_f64());
                for ((name, heading), v) in TRACED.iter().zip(m) {
                    let v = v.map_or_else(
                        || "-".to_owned(),
                        |v| {
                            if name.ends_with("_bytes") {
                                format!("{:.1}", v / 1048576.0)
                            } else {
                                format!("{v:.0}")
                            }
                        },
                    );
                    let _ = write!(line, "  {heading} {v}");
                }
                lines.push(line);
                tokio::time::sleep(every).await;
            }
            lines
        });
        Some(Self { stop, task })
    }

    /// Stops sampling and prints the timeline.
    fn print(self, rt: &tokio::runtime::Runtime) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(lines) = rt.block_on(self.task) {
            println!("  memory trace:");
            for l in lines {
                println!("    {l}");
            }
        }
    }
}

async fn committed_rows(store: &Path) -> Result<u64> {
    let loc = StoreLocation::local(store).context("opening the store")?;
    let snap = Snapshot::load(&loc)
        .await
        .context("reading the manifests")?;
    Ok(snap.rows())
}

// ---------------------------------------------------------------------------------------------
// Synthetic traffic.

/// Encoded OTLP trace requests, ready to send.
struct Requests {
    bodies: Vec<Bytes>,
    /// Spans of each request.
    spans_of: Vec<usize>,
    spans: usize,
    bytes: usize,
}

/// `n` requests of `batch` spans (`total` spans in all), each with its own random stream: every
/// span has unique trace and span ids, so none is dropped as a duplicate.
fn generate(n: usize, batch: usize, seed: u64, total: usize) -> Requests {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Spans 50 µs apart (20 k/s), ending now.
    let step_ns = 50_000u64;
    let start_ns = now_ns.saturating_sub(total as u64 * step_ns);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = n.div_ceil(threads).max(1);
    let mut parts: Vec<Vec<(Bytes, usize)>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|from| {
                s.spawn(move || {
                    (from..(from + chunk).min(n))
                        .map(|i| {
                            let spans = batch.min(total - i * batch);
                            let mut rng = Rng::new((seed << 40) ^ i as u64);
                            let req = genai_request(
                                &mut rng,
                                spans,
                                start_ns + (i * batch) as u64 * step_ns,
                                step_ns,
                                USERS,
                            );
                            (Bytes::from(req.encode_to_vec()), spans)
                        })
                        .collect()
                })
            })
            .collect();
        for h in handles {
            parts.push(h.join().expect("generator thread"));
        }
    });
    let (bodies, spans_of): (Vec<Bytes>, Vec<usize>) = parts.into_iter().flatten().unzip();
    Requests {
        bytes: bodies.iter().map(Bytes::len).sum(),
        spans: spans_of.iter().sum(),
        bodies,
        spans_of,
    }
}

// ---------------------------------------------------------------------------------------------
// Clients.

/// Sends already-encoded requests and decodes the answer.
#[derive(Default, Clone, Copy)]
struct RawCodec;
struct RawEncoder;
struct ResponseDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buf: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        ExportTraceServiceResponse::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// One connection's client.
#[derive(Clone)]
enum Sender {
    Grpc(tonic::client::Grpc<Channel>),
    Http(reqwest::Client, Arc<str>),
}

/// What one attempt got.
enum Attempt {
    /// Acknowledged; the spans the collector rejected (partial success).
    Acked(i64),
    /// Told to come back later.
    Retry(Duration),
    Failed(String),
}

impl Sender {
    async fn connect(tr: Transport, c: &Collector) -> Result<Self> {
        Ok(match tr {
            Transport::Grpc => {
                let ch = Endpoint::from_shared(format!("http://{}", c.grpc))?
                    .timeout(REQUEST_TIMEOUT)
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .context("connecting over gRPC")?;
                Sender::Grpc(tonic::client::Grpc::new(ch))
            }
            Transport::Http => {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(REQUEST_TIMEOUT)
                    .connect_timeout(Duration::from_secs(5))
                    .build()
                    .context("building the HTTP client")?;
                Sender::Http(client, format!("http://{}/v1/traces", c.http).into())
            }
        })
    }

    async fn attempt(&mut self, body: Bytes) -> Attempt {
        match self {
            Sender::Grpc(g) => {
                if let Err(e) = g.ready().await {
                    return Attempt::Failed(format!("gRPC channel: {e}"));
                }
                let path = http::uri::PathAndQuery::from_static(TRACES_PATH);
                match g.unary(tonic::Request::new(body), path, RawCodec).await {
                    Ok(r) => Attempt::Acked(
                        r.into_inner()
                            .partial_success
                            .map_or(0, |p| p.rejected_spans),
                    ),
                    Err(s)
                        if matches!(
                            s.code(),
                            tonic::Code::Unavailable | tonic::Code::ResourceExhausted
                        ) =>
                    {
                        Attempt::Retry(Duration::from_millis(100))
                    }
                    Err(s) => Attempt::Failed(format!("gRPC {:?}: {}", s.code(), s.message())),
                }
            }
            Sender::Http(client, url) => {
                let sent = client
                    .post(&**url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await;
                let resp = match sent {
                    Ok(r) => r,
                    Err(e) => return Attempt::Failed(format!("HTTP: {e}")),
                };
                let status = resp.status();
                if status.as_u16() == 503 || status.as_u16() == 429 {
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map_or(Duration::from_millis(100), Duration::from_secs);
                    return Attempt::Retry(after.min(Duration::from_secs(5)));
                }
                let body = match resp.bytes().await {
                    Ok(b) => b,
                    Err(e) => return Attempt::Failed(format!("HTTP body: {e}")),
                };
                if !status.is_success() {
                    return Attempt::Failed(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
                match ExportTraceServiceResponse::decode(body) {
                    Ok(r) => Attempt::Acked(r.partial_success.map_or(0, |p| p.rejected_spans)),
                    Err(e) => Attempt::Failed(format!("HTTP response: {e}")),
                }
            }
        }
    }

    /// Sends until acknowledged, refused, out of retries or past `deadline`.
    async fn send(
        &mut self,
        body: &Bytes,
        deadline: Instant,
        retries: &AtomicU64,
    ) -> Result<i64, String> {
        for _ in 0..=MAX_RETRIES {
            match self.attempt(body.clone()).await {
                Attempt::Acked(rejected) => return Ok(rejected),
                Attempt::Failed(e) => return Err(e),
                Attempt::Retry(after) => {
                    retries.fetch_add(1, Ordering::Relaxed);
                    if Instant::now() + after > deadline {
                        return Err("backpressure past the run's deadline".into());
                    }
                    tokio::time::sleep(after).await;
                }
            }
        }
        Err(format!("still refused after {MAX_RETRIES} retries"))
    }
}

/// What every run records: which requests were acknowledged, by id, and the errors.
struct Acks {
    /// By request id: acknowledged.
    acked: Vec<bool>,
    acked_spans: u64,
    rejected_spans: u64,
    duplicate_acks: u64,
    failed: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

impl Acks {
    fn new(n: usize) -> Self {
        Acks {
            acked: vec![false; n],
            acked_spans: 0,
            rejected_spans: 0,
            duplicate_acks: 0,
            failed: 0,
            first_error: None,
            latencies: Vec::new(),
        }
    }

    fn record(&mut self, id: usize, spans: usize, out: Result<i64, String>, latency: Duration) {
        match out {
            Ok(rejected) => {
                if std::mem::replace(&mut self.acked[id], true) {
                    self.duplicate_acks += 1;
                    return;
                }
                let rejected = rejected.max(0) as u64;
                self.rejected_spans += rejected;
                self.acked_spans += (spans as u64).saturating_sub(rejected);
                self.latencies.push(latency);
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn acked_requests(&self) -> usize {
        self.acked.iter().filter(|a| **a).count()
    }
}

/// p-quantile (0..=1) of sorted durations, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Runs.

/// What the collector did in a run, seen from outside.
struct Common {
    transport: Transport,
    run: usize,
    load1_start: String,
    acks: Acks,
    spans_sent: usize,
    requests: usize,
    retries: u64,
    /// Collector CPU over the sending window, seconds.
    cpu_window: f64,
    /// Collector CPU from the start of sending to its exit (shutdown flush included).
    cpu_all_in: f64,
    /// Load generator CPU over the sending window, seconds.
    client_cpu: f64,
    /// CPU used by every other process of the machine over the window, seconds.
    other_cpu: f64,
    wall: f64,
    hwm_mib: f64,
    /// VmRSS when ready, before the run's load.
    ready_rss_mib: f64,
    /// VmHWM at the end of the load, before the shutdown flush.
    load_hwm_mib: f64,
    shutdown: f64,
    exit: String,
    /// Spans accepted and records appended per the collector's /metrics at the end.
    metrics_accepted: Option<f64>,
    metrics_appended: Option<f64>,
    committed_rows: Option<u64>,
    kept: Option<PathBuf>,
    profile: Option<PathBuf>,
}

impl Common {
    fn ok(&self, opts: &Opts) -> bool {
        let acked_all = self.acks.failed == 0
            && self.acks.duplicate_acks == 0
            && self.acks.acked_requests() == self.requests;
        let rows_ok = opts.no_verify || self.committed_rows == Some(self.acks.acked_spans);
        acked_all && rows_ok && self.exit == "0"
    }

    fn check(&self, opts: &Opts) -> String {
        let mut s = String::new();
        if opts.no_verify {
            s.push_str("rows not checked");
        } else {
            match self.committed_rows {
                Some(r) if r == self.acks.acked_spans => {
                    let _ = write!(s, "rows == acked ({r})");
                }
                Some(r) => {
                    let _ = write!(s, "ROWS {r} != ACKED {}", self.acks.acked_spans);
                }
                None => s.push_str("ROWS UNREAD"),
            }
        }
        if self.spans_sent < self.acks.acked_spans as usize + self.acks.rejected_spans as usize {
            s.push_str("; MORE ACKED THAN SENT");
        }
        if self.acks.acked_requests() != self.requests {
            let _ = write!(
                s,
                "; {} of {} requests acked",
                self.acks.acked_requests(),
                self.requests
            );
        }
        if self.acks.failed > 0 {
            let _ = write!(
                s,
                "; {} FAILED: {}",
                self.acks.failed,
                self.acks.first_error.as_deref().unwrap_or("")
            );
        }
        if self.acks.duplicate_acks > 0 {
            let _ = write!(s, "; {} DUPLICATE ACKS", self.acks.duplicate_acks);
        }
        if self.acks.rejected_spans > 0 {
            let _ = write!(s, "; {} spans rejected", self.acks.rejected_spans);
        }
        if self.retries > 0 {
            let _ = write!(s, "; {} retries (backpressure)", self.retries);
        }
        if self.exit != "0" {
            let _ = write!(s, "; EXIT {}", self.exit);
        }
        if let (Some(acc), Some(app)) = (self.metrics_accepted, self.metrics_appended)
            && (acc as u64 != self.acks.acked_spans || app as u64 != self.acks.acked_spans)
        {
            let _ = write!(
                s,
                "; /metrics: {acc} spans accepted, {app} records appended"
            );
        }
        if let Some(p) = &self.kept {
            let _ = write!(s, "; kept {}", p.display());
        }
        if let Some(p) = &self.profile {
            let _ = write!(s, "; profile {}", p.display());
        }
        s
    }

    fn cpu_per_million(&self, cpu: f64) -> f64 {
        cpu / (self.acks.acked_spans as f64 / 1e6)
    }
}

/// Shared ending of a run: metrics, stop, CPU, RSS, committed rows.
struct RunEnd {
    ticks0: u64,
    client0: u64,
    ticks1: u64,
    client1: u64,
    /// Busy ticks of the whole machine (all CPUs) at the start and end of the window.
    busy0: u64,
    busy1: u64,
}

fn finish_run(
    opts: &Opts,
    rt: &tokio::runtime::Runtime,
    mut c: Collector,
    machine_tck: f64,
    ticks: RunEnd,
    mut common: Common,
) -> Result<Common> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let m = rt.block_on(scrape(
        &http,
        c.admin,
        &[
            "genai_audit_receiver_spans_accepted_total",
            "genai_audit_records_appended_total",
        ],
    ));
    common.metrics_accepted = m[0];
    common.metrics_appended = m[1];
    common.load_hwm_mib = status_kib(c.pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    let stopped = c.stop()?;
    common.cpu_window = (ticks.ticks1 - ticks.ticks0) as f64 / machine_tck;
    common.cpu_all_in = stopped.cpu_ticks.saturating_sub(ticks.ticks0) as f64 / machine_tck;
    common.client_cpu = ticks.client1.saturating_sub(ticks.client0) as f64 / machine_tck;
    common.other_cpu = (ticks.busy1.saturating_sub(ticks.busy0) as f64 / machine_tck
        - common.cpu_window
        - common.client_cpu)
        .max(0.0);
    common.hwm_mib = stopped.hwm_kib as f64 / 1024.0;
    common.ready_rss_mib = c.ready_rss_kib as f64 / 1024.0;
    common.shutdown = stopped.shutdown.as_secs_f64();
    common.exit = stopped
        .status
        .code()
        .map_or_else(|| format!("{:?}", stopped.status), |c| c.to_string());
    if !opts.no_verify {
        common.committed_rows = match rt.block_on(committed_rows(&c.store)) {
            Ok(r) => Some(r),
            Err(e) => {
                println!("  reading the store: {e:#}");
                None
            }
        };
    }
    if stopped.status.code() != Some(0) {
        println!(
            "  collector exited {:?}; its log:\n{}",
            stopped.status,
            c.log_tail()
        );
    }
    common.kept = c.finish(opts.keep);
    Ok(common)
}

fn self_ticks() -> u64 {
    cpu_ticks(std::process::id())
}

struct FlatResult {
    c: Common,
}

impl FlatResult {
    fn spans_per_s(&self) -> f64 {
        self.c.acks.acked_spans as f64 / self.c.wall
    }

    fn line(&self, opts: &Opts) -> String {
        let c = &self.c;
        let mut l = c.acks.latencies.clone();
        l.sort();
        format!(
            "flat {} run {}: {} spans in {:.2} s = {:.0} spans/s; collector CPU {:.2} s in window ({:.2} CPU-s/M, {:.0} spans/s/core), {:.2} s all-in ({:.2} CPU-s/M); loadgen CPU {:.2} s; other processes' CPU {:.2} s; closed-loop latency p50 {:.1} ms p99 {:.1} ms; VmHWM {:.0} MiB at end of load, {:.0} MiB with shutdown flush (ready {:.0}); shutdown {:.1} s; load1 {}; {}",
            c.transport.name(),
            c.run,
            c.acks.acked_spans,
            c.wall,
            self.spans_per_s(),
            c.cpu_window,
            c.cpu_per_million(c.cpu_window),
            c.acks.acked_spans as f64 / c.cpu_window,
            c.cpu_all_in,
            c.cpu_per_million(c.cpu_all_in),
            c.client_cpu,
            c.other_cpu,
            quantile_ms(&l, 0.5),
            quantile_ms(&l, 0.99),
            c.load_hwm_mib,
            c.hwm_mib,
            c.ready_rss_mib,
            c.shutdown,
            c.load1_start,
            c.check(opts)
        )
    }

    fn ok(&self, opts: &Opts) -> bool {
        self.c.ok(opts)
    }
}

fn flat_out(
    opts: &Opts,
    bin: &Path,
    rt: &tokio::runtime::Runtime,
    tr: Transport,
    run: usize,
    reqs: &Arc<Requests>,
) -> Result<FlatResult> {
    wait_quiet(opts);
    let load1_start = load1();
    let c = Collector::start(opts, bin)?;
    let tck = clk_tck() as f64;
    let senders = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..opts.connections {
            v.push(Sender::connect(tr, &c).await?);
        }
        anyhow::Ok(v)
    })?;
    let profile = match &opts.perf {
        Some(dir) => Some(Perf::start(dir, &opts.perf_call_graph, tr, run, c.pid)?),
        None => None,
    };
    let trace = MemoryTrace::start(opts, rt, &c);
    let retries = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(Mutex::new(Acks::new(reqs.bodies.len())));
    let busy0 = machine_busy_ticks();
    let ticks0 = c.cpu_ticks();
    let client0 = self_ticks();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(opts.max_secs);
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for mut s in senders {
            let (reqs, next, acks, retries) =
                (reqs.clone(), next.clone(), acks.clone(), retries.clone());
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= reqs.bodies.len() || Instant::now() > deadline {
                        break;
                    }
                    let t = Instant::now();
                    let out = s.send(&reqs.bodies[i], deadline, &retries).await;
                    let lat = t.elapsed();
                    if let Ok(mut a) = acks.lock() {
                        a.record(i, reqs.spans_of[i], out, lat);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    let wall = t0.elapsed().as_secs_f64();
    let ticks1 = c.cpu_ticks();
    if let Some(t) = trace {
        t.print(rt);
    }
    let client1 = self_ticks();
    let busy1 = machine_busy_ticks();
    let acks = Arc::try_unwrap(acks)
        .map_err(|_| anyhow!("senders still running"))?
        .into_inner()
        .map_err(|_| anyhow!("poisoned"))?;
    let sent = next.load(Ordering::Relaxed).min(reqs.bodies.len());
    let common = Common {
        transport: tr,
        run,
        load1_start,
        spans_sent: reqs.spans_of[..sent].iter().sum(),
        requests: reqs.bodies.len(),
        acks,
        retries: retries.load(Ordering::Relaxed),
        cpu_window: 0.0,
        cpu_all_in: 0.0,
        client_cpu: 0.0,
        other_cpu: 0.0,
        wall,
        hwm_mib: 0.0,
        ready_rss_mib: 0.0,
        load_hwm_mib: 0.0,
        shutdown: 0.0,
        exit: String::new(),
        metrics_accepted: None,
        metrics_appended: None,
        committed_rows: None,
        kept: None,
        profile: None,
    };
    let c = finish_run(
        opts,
        rt,
        c,
        tck,
        RunEnd {
            ticks0,
            client0,
            ticks1,
            client1,
            busy0,
            busy1,
        },
        common,
    );
    // perf stops by itself when the collector exits: the profile covers the shutdown flush.
    let profile = match profile {
        Some(p) => Some(p.stop()?),
        None => None,
    };
    let mut c = c?;
    c.profile = profile;
    Ok(FlatResult { c })
}

struct RateResult {
    c: Common,
    target_rate: f64,
    /// Acknowledged spans over the time from the first scheduled send to the last ack.
    achieved_rate: f64,
    /// Sorted.
    latencies: Vec<Duration>,
    /// Latencies from the moment the load generator actually sent (without its own lag),
    /// sorted.
    from_send: Vec<Duration>,
    /// How late the load generator was in sending, worst case (its own scheduling delay).
    max_send_lag: Duration,
}

impl RateResult {
    fn line(&self, opts: &Opts) -> String {
        let c = &self.c;
        let l = &self.latencies;
        format!(
            "rate {} run {}: target {:.0} spans/s, achieved {:.0}; ack latency p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms (n {}; from the actual send: p50 {:.2} p99 {:.2} max {:.2} ms; worst send lag {:.2} ms); collector CPU {:.2} s = {:.2} cores ({:.2} CPU-s/M, {:.2} all-in); loadgen CPU {:.2} s; other processes' CPU {:.2} s; VmHWM {:.0} MiB at end of load, {:.0} MiB with shutdown flush (ready {:.0}); load1 {}; {}",
            c.transport.name(),
            c.run,
            self.target_rate,
            self.achieved_rate,
            quantile_ms(l, 0.5),
            quantile_ms(l, 0.9),
            quantile_ms(l, 0.99),
            quantile_ms(l, 1.0),
            l.len(),
            quantile_ms(&self.from_send, 0.5),
            quantile_ms(&self.from_send, 0.99),
            quantile_ms(&self.from_send, 1.0),
            self.max_send_lag.as_secs_f64() * 1e3,
            c.cpu_window,
            c.cpu_window / c.wall,
            c.cpu_per_million(c.cpu_window),
            c.cpu_per_million(c.cpu_all_in),
            c.client_cpu,
            c.other_cpu,
            c.load_hwm_mib,
            c.hwm_mib,
            c.ready_rss_mib,
            c.load1_start,
            c.check(opts)
        )
    }

    fn ok(&self, opts: &Opts) -> bool {
        self.c.ok(opts)
    }
}

fn fixed_rate(
    opts: &Opts,
    bin: &Path,
    rt: &tokio::runtime::Runtime,
    tr: Transport,
    run: usize,
    reqs: &Arc<Requests>,
) -> Result<RateResult> {
    wait_quiet(opts);
    let load1_start = load1();
    let c = Collector::start(opts, bin)?;
    let tck = clk_tck() as f64;
    let senders = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..opts.rate_connections {
            v.push(Sender::connect(tr, &c).await?);
        }
        anyhow::Ok(v)
    })?;
    let interval = Duration::from_secs_f64(opts.rate_batch as f64 / opts.rate as f64);
    let n = reqs.bodies.len();
    let trace = MemoryTrace::start(opts, rt, &c);
    let retries = Arc::new(AtomicU64::new(0));
    let busy0 = machine_busy_ticks();
    let ticks0 = c.cpu_ticks();
    let client0 = self_ticks();
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + Duration::from_secs(opts.max_secs) + REQUEST_TIMEOUT;
    let (acks, last_ack, max_lag, mut from_send) = rt.block_on(async {
        let mut acks = Acks::new(n);
        let mut last_ack = start;
        let mut max_lag = Duration::ZERO;
        let mut from_send = Vec::with_capacity(n);
        let mut tasks = tokio::task::JoinSet::new();
        type Done = (usize, Instant, Instant, Instant, Result<i64, String>);
        let mut take = |acks: &mut Acks, r: Done| {
            let (i, target, sent, done, out) = r;
            last_ack = last_ack.max(done);
            if out.is_ok() {
                from_send.push(done.saturating_duration_since(sent));
            }
            acks.record(
                i,
                reqs.spans_of[i],
                out,
                done.saturating_duration_since(target),
            );
        };
        for i in 0..n {
            let target = start + interval * i as u32;
            tokio::time::sleep_until(target.into()).await;
            let sent = Instant::now();
            max_lag = max_lag.max(sent.saturating_duration_since(target));
            let mut s = senders[i % senders.len()].clone();
            let (body, retries) = (reqs.bodies[i].clone(), retries.clone());
            tasks.spawn(async move {
                let out = s.send(&body, deadline, &retries).await;
                (i, target, sent, Instant::now(), out)
            });
            while let Some(r) = tasks.try_join_next() {
                if let Ok(r) = r {
                    take(&mut acks, r);
                }
            }
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(r) = r {
                take(&mut acks, r);
            }
        }
        (acks, last_ack, max_lag, from_send)
    });
    from_send.sort();
    let wall = last_ack.saturating_duration_since(start).as_secs_f64();
    let ticks1 = c.cpu_ticks();
    if let Some(t) = trace {
        t.print(rt);
    }
    let client1 = self_ticks();
    let busy1 = machine_busy_ticks();
    let mut latencies = acks.latencies.clone();
    latencies.sort();
    let achieved_rate = acks.acked_spans as f64 / wall;
    let common = Common {
        transport: tr,
        run,
        load1_start,
        spans_sent: reqs.spans,
        requests: n,
        acks,
        retries: retries.load(Ordering::Relaxed),
        cpu_window: 0.0,
        cpu_all_in: 0.0,
        client_cpu: 0.0,
        other_cpu: 0.0,
        wall,
        hwm_mib: 0.0,
        ready_rss_mib: 0.0,
        load_hwm_mib: 0.0,
        shutdown: 0.0,
        exit: String::new(),
        metrics_accepted: None,
        metrics_appended: None,
        committed_rows: None,
        kept: None,
        profile: None,
    };
    let c = finish_run(
        opts,
        rt,
        c,
        tck,
        RunEnd {
            ticks0,
            client0,
            ticks1,
            client1,
            busy0,
            busy1,
        },
        common,
    )?;
    Ok(RateResult {
        c,
        target_rate: opts.rate as f64,
        achieved_rate,
        latencies,
        from_send,
        max_send_lag: max_lag,
    })
}

/// `perf record -g` of the collector, stopped with SIGINT.
struct Perf {
    child: Child,
    out: PathBuf,
}

impl Perf {
    fn start(dir: &Path, call_graph: &str, tr: Transport, run: usize, pid: u32) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let out = dir.join(format!("perf.{}.{run}.data", tr.name()));
        let child = Command::new("perf")
            .args([
                "record",
                "--call-graph",
                call_graph,
                "-p",
                &pid.to_string(),
                "-o",
            ])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting perf record")?;
        // perf needs a moment to attach.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Perf { child, out })
    }

    /// Waits for perf to end after its target's exit; SIGINT after 5 s, SIGKILL after 60 s.
    fn stop(mut self) -> Result<PathBuf> {
        let t = Instant::now();
        let mut interrupted = false;
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if !interrupted && t.elapsed() > Duration::from_secs(5) {
                signal(self.child.id(), "-INT");
                interrupted = true;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(self.out)
    }
}

// ---------------------------------------------------------------------------------------------
// Summary.

fn summary(opts: &Opts, m: &Machine, flat: &[FlatResult], rate: &[RateResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "==== genai-audit loadgen summary ====");
    let _ = writeln!(
        s,
        "machine: nproc {}, CPU {}, load average at start {} (now {}); durability {}",
        m.nproc,
        m.cpu,
        m.loadavg,
        loadavg(),
        opts.durability
    );
    if !flat.is_empty() {
        let _ = writeln!(
            s,
            "\n(a) flat out: {} spans, {} spans/request, {} connections",
            opts.spans, opts.batch, opts.connections
        );
        let _ = writeln!(
            s,
            "{:<5} {:>3} {:>6} {:>9} {:>7} {:>9} {:>8} {:>9} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}  check",
            "tr",
            "run",
            "load1",
            "acked",
            "wall s",
            "spans/s",
            "cpu s",
            "cpu-s/M",
            "all-in/M",
            "spans/s/cpu",
            "lg cpu s",
            "oth cpu",
            "p99 ms",
            "HWM load",
            "HWM all",
            "rdy MiB"
        );
        for r in flat {
            let c = &r.c;
            let mut l = c.acks.latencies.clone();
            l.sort();
            let _ = writeln!(
                s,
                "{:<5} {:>3} {:>6} {:>9} {:>7.2} {:>9.0} {:>8.2} {:>9.2} {:>9.2} {:>11.0} {:>8.2} {:>8.2} {:>8.1} {:>8.0} {:>8.0} {:>7.0}  {}",
                c.transport.name(),
                c.run,
                c.load1_start,
                c.acks.acked_spans,
                c.wall,
                r.spans_per_s(),
                c.cpu_window,
                c.cpu_per_million(c.cpu_window),
                c.cpu_per_million(c.cpu_all_in),
                c.acks.acked_spans as f64 / c.cpu_window,
                c.client_cpu,
                c.other_cpu,
                quantile_ms(&l, 0.99),
                c.load_hwm_mib,
                c.hwm_mib,
                c.ready_rss_mib,
                c.check(opts)
            );
        }
    }
    if !rate.is_empty() {
        let _ = writeln!(
            s,
            "\n(b) fixed rate, open loop: {} spans/s in requests of {} every {:.2} ms for {} s over {} connections",
            opts.rate,
            opts.rate_batch,
            opts.rate_batch as f64 / opts.rate as f64 * 1e3,
            opts.rate_secs,
            opts.rate_connections
        );
        let _ = writeln!(
            s,
            "{:<5} {:>3} {:>6} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8} {:>8} {:>7}  check",
            "tr",
            "run",
            "load1",
            "acked",
            "spans/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "p99 snd",
            "lag max",
            "cores",
            "oth cpu",
            "cpu-s/M",
            "HWM load",
            "HWM all",
            "rdy MiB"
        );
        for r in rate {
            let c = &r.c;
            let l = &r.latencies;
            let _ = writeln!(
                s,
                "{:<5} {:>3} {:>6} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7.2} {:>7.2} {:>9.2} {:>8.0} {:>8.0} {:>7.0}  {}",
                c.transport.name(),
                c.run,
                c.load1_start,
                c.acks.acked_spans,
                r.achieved_rate,
                quantile_ms(l, 0.5),
                quantile_ms(l, 0.9),
                quantile_ms(l, 0.99),
                quantile_ms(l, 1.0),
                quantile_ms(&r.from_send, 0.99),
                r.max_send_lag.as_secs_f64() * 1e3,
                c.cpu_window / c.wall,
                c.other_cpu / c.wall,
                c.cpu_per_million(c.cpu_window),
                c.load_hwm_mib,
                c.hwm_mib,
                c.ready_rss_mib,
                c.check(opts)
            );
        }
    }
    let _ = writeln!(s, "\ngoals (issue #4):");
    if !opts.bench {
        let _ = writeln!(
            s,
            "  (smoke run, possibly of a debug build: these figures measure nothing)"
        );
    }
    if !flat.is_empty() {
        let worst = flat
            .iter()
            .map(|r| r.c.cpu_per_million(r.c.cpu_all_in))
            .fold(0.0, f64::max);
        let best = flat
            .iter()
            .map(|r| r.c.cpu_per_million(r.c.cpu_all_in))
            .fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            s,
            "  CPU-s per million spans (all-in) ≤ 3: {best:.2} .. {worst:.2} → {}",
            verdict(worst <= 3.0)
        );
    }
    if !rate.is_empty() {
        let worst = rate
            .iter()
            .map(|r| quantile_ms(&r.latencies, 0.99))
            .fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "  ack p99 at {} spans/s ≤ 20 ms: worst {worst:.2} ms → {}",
            opts.rate,
            verdict(worst <= 20.0)
        );
    }
    let runs = || flat.iter().map(|r| &r.c).chain(rate.iter().map(|r| &r.c));
    let load = runs().map(|c| c.load_hwm_mib).fold(0.0, f64::max);
    let all = runs().map(|c| c.hwm_mib).fold(0.0, f64::max);
    let _ = writeln!(
        s,
        "  peak RSS (VmHWM) ≤ 256 MiB: {load:.0} MiB under load, {all:.0} MiB with the shutdown flush → {}",
        verdict(all <= 256.0)
    );
    s
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}
