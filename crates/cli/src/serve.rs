//! `genai-audit serve`: the collector process.
//!
//! Wiring, in order: configuration → hash key, integrity key and normalizer → admin endpoint
//! (healthy at once, ready only after the WAL is replayed) → store writer (replays the WAL) →
//! a first integrity checkpoint, then one every `integrity.checkpoint_interval_secs` →
//! scheduled retention, if `maintenance.retention_interval_secs` is set → OTLP receivers. SIGTERM or SIGINT stops accepting, lets requests in flight finish, flushes
//! everything, publishes a last checkpoint and exits 0; a second signal exits at once (the WAL
//! still holds everything acknowledged).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use genai_audit_alerts::Alerting;
use genai_audit_core::{
    AuditRecord, ClassificationRules, CorrelatedContent, Normalizer, NormalizerConfig, PriceTable,
};
use genai_audit_receiver::{AuditSink, Receiver, ReceiverMetrics, SinkError};
use genai_audit_store::{Writer, WriterConfig};

use crate::config::Config;

/// How long a slow webhook may hold up shutdown (the alerts table is written first).
const ALERTS_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// How long the final flush may take at shutdown before the WAL is left to replay it.
const SHUTDOWN_FLUSH_DEADLINE: Duration = Duration::from_secs(30);

/// Arguments of `serve`. Flags override the file and the environment.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML; every key in config/genai-audit.example.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL (overrides `store.url`).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// OTLP/gRPC address (overrides `receiver.grpc.listen`).
    #[arg(long, value_name = "ADDR")]
    grpc_listen: Option<String>,
    /// OTLP/HTTP address (overrides `receiver.http.listen`).
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<String>,
    /// Admin address for /metrics, /healthz, /readyz (overrides `admin.listen`; "" turns it off).
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<String>,
    /// WAL directory (overrides `wal.dir`).
    #[arg(long, value_name = "DIR")]
    wal_dir: Option<PathBuf>,
}

/// Loads the configuration: file, then environment, then flags.
pub fn load_config(args: &ServeArgs) -> Result<Config> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut cfg = Config::load(args.config.as_deref(), &env)?;
    if let Some(v) = &args.store {
        cfg.store.url.clone_from(v);
    }
    if let Some(v) = &args.grpc_listen {
        cfg.receiver.grpc.listen.clone_from(v);
    }
    if let Some(v) = &args.http_listen {
        cfg.receiver.http.listen.clone_from(v);
    }
    if let Some(v) = &args.admin_listen {
        cfg.admin.listen.clone_from(v);
    }
    if let Some(v) = &args.wal_dir {
        cfg.wal.dir = Some(v.clone());
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Runs the collector until a signal.
pub fn run(cfg: Config) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> Result<ExitCode> {
    let collector_id = cfg.collector_id();
    let loc = crate::store::open(&cfg.store.url)?;
    let wal_dir = cfg
        .wal
        .dir
        .clone()
        .unwrap_or_else(|| genai_audit_store::location::default_wal_dir(&loc));
    let normalizer = build_normalizer(&cfg)?;
    let integrity_key = crate::integrity::load_key(&cfg.integrity.key_file)?;

    // Admin first: liveness answers during a long WAL replay; readiness waits for it.
    let metrics = Arc::new(ReceiverMetrics::new());
    let state = Arc::new(AdminState {
        ready: AtomicBool::new(false),
        writer: std::sync::OnceLock::new(),
        metrics: metrics.clone(),
        alerts: std::sync::OnceLock::new(),
    });
    if !cfg.admin.listen.is_empty() {
        let addr: SocketAddr = cfg.admin.listen.parse().context("admin.listen")?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the admin endpoint on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "admin endpoint (/metrics, /healthz, /readyz)");
        let app = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready_handler))
            .with_state(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "admin endpoint stopped");
            }
        });
    }

    let mut wcfg = WriterConfig::new(&collector_id, &wal_dir);
    wcfg.durability = cfg.durability()?;
    wcfg.wal_max_bytes = cfg.wal.max_bytes;
    wcfg.flush = cfg.flush_policy();
    wcfg.normalizer = Some(normalizer.clone());
    // Alerting starts after the writer (it rebuilds budgets from the committed records), so the
    // writer is given a slot that alerting fills once it runs.
    let alert_slot: Arc<std::sync::OnceLock<Arc<Alerting>>> = Arc::default();
    if !cfg.alerts.rules.is_empty() {
        wcfg.merge_observer = Some(Arc::new(AlertOnMerge(alert_slot.clone())));
    }
    tracing::info!(store = %loc, wal = %wal_dir.display(), collector_id, durability = %cfg.wal.durability, "opening the audit store");
    let (writer, report) = Writer::open(loc, wcfg)
        .await
        .context("opening the audit store")?;
    if report.replayed_entries > 0 {
        tracing::info!(
            records = report.replayed_records,
            "recovered acknowledged records from the WAL"
        );
    }
    let _ = state.writer.set(writer.clone());
    let retention = crate::schedule::RetentionSchedule::start(
        &cfg,
        writer.location().clone(),
        integrity_key.clone(),
    );
    let checkpoints = Checkpoints::start(
        writer.location().clone(),
        collector_id.clone(),
        integrity_key,
        Duration::from_secs(cfg.integrity.checkpoint_interval_secs),
    )
    .await;

    let alerting = if cfg.alerts.rules.is_empty() {
        None
    } else {
        Some(Arc::new(
            start_alerting(&cfg, &writer, &report, &collector_id).await?,
        ))
    };
    if let Some(a) = &alerting {
        let _ = state.alerts.set(a.clone());
        let _ = alert_slot.set(a.clone());
    }
    let sink = Arc::new(WriterSink(writer.clone(), alerting.clone()));
    let bound = Receiver::bind(cfg.receiver.clone(), Arc::new(normalizer), sink, metrics)
        .await
        .context("starting the OTLP receivers")?;
    tracing::info!(grpc = %bound.grpc_addr(), http = %bound.http_addr(), "receiving OTLP");
    state.ready.store(true, Ordering::Release);

    // Not ready from the first signal on, while requests in flight drain: load balancers must
    // stop routing here at once.
    let draining = state.clone();
    bound
        .serve(async move {
            shutdown_signal().await;
            draining.ready.store(false, Ordering::Release);
        })
        .await;
    tracing::info!("stopped accepting; flushing");
    if let Some(r) = retention {
        r.stop().await;
    }
    if let Some(a) = &alerting {
        a.shutdown(ALERTS_SHUTDOWN_DEADLINE).await;
    }
    match writer.shutdown_within(SHUTDOWN_FLUSH_DEADLINE).await {
        Ok(r) => tracing::info!(records = r.records, files = r.files.len(), "flushed; bye"),
        Err(e) => {
            tracing::warn!(error = %e, "final flush incomplete; the WAL keeps the rest for the next start")
        }
    }
    // The last checkpoint covers the final flush.
    checkpoints.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// The collector's integrity checkpoints: one at startup, one per interval (also when idle),
/// one at shutdown after the final flush. A failed publish is logged and retried at the next
/// tick: it never stops collecting (commits not yet covered show up as pending in `verify`).
struct Checkpoints {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    loc: genai_audit_store::StoreLocation,
    collector_id: String,
    key: genai_audit_store::integrity::IntegrityKey,
}

impl Checkpoints {
    async fn start(
        loc: genai_audit_store::StoreLocation,
        collector_id: String,
        key: genai_audit_store::integrity::IntegrityKey,
        every: Duration,
    ) -> Self {
        publish(&loc, &collector_id, &key, "startup").await;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let (l, c, k) = (loc.clone(), collector_id.clone(), key.clone());
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is now: startup already published
            loop {
                tokio::select! {
                    _ = ticks.tick() => publish(&l, &c, &k, "interval").await,
                    _ = &mut stopped => break,
                }
            }
        });
        Self {
            task,
            stop,
            loc,
            collector_id,
            key,
        }
    }

    /// Stops the ticks (letting a publish in progress finish), then publishes the last one.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        publish(&self.loc, &self.collector_id, &self.key, "shutdown").await;
    }
}

async fn publish(
    loc: &genai_audit_store::StoreLocation,
    collector_id: &str,
    key: &genai_audit_store::integrity::IntegrityKey,
    reason: &str,
) {
    let opts = genai_audit_store::integrity::PublishOptions {
        reason: reason.to_owned(),
        skip_if_empty: false,
    };
    if let Err(e) =
        genai_audit_store::integrity::publish_checkpoint_with(loc, collector_id, key, &opts).await
    {
        tracing::warn!(error = %e, reason, "could not publish an integrity checkpoint; retrying at the next interval");
    }
}

/// Starts alerting. Budgets are rebuilt from committed Parquet, so records replayed from the
/// WAL are committed first: otherwise a restart after a crash would forget their spend.
async fn start_alerting(
    cfg: &Config,
    writer: &Writer,
    report: &genai_audit_store::OpenReport,
    collector_id: &str,
) -> Result<Alerting> {
    if report.replayed_records > 0 {
        writer
            .flush()
            .await
            .context("committing replayed records before rebuilding alert budgets")?;
    }
    let a = Alerting::start(
        &cfg.alerts,
        writer.location().clone(),
        collector_id,
        crate::now_us(),
    )
    .await
    .context("starting alerting")?;
    tracing::info!(
        rules = a.engine().rule_count(),
        webhook = cfg.alerts.webhook.url.is_some(),
        "alerting on the ingest stream"
    );
    Ok(a)
}

fn build_normalizer(cfg: &Config) -> Result<Normalizer> {
    let key = crate::keys::load_or_create(&cfg.hash.key_file)?;
    let mut prices = PriceTable::embedded();
    if let Some(path) = &cfg.normalize.prices_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading normalize.prices_file {}", path.display()))?;
        let extra = PriceTable::from_toml_str(&text)
            .with_context(|| format!("in normalize.prices_file {}", path.display()))?;
        prices = prices.with_overrides(extra);
    }
    Ok(Normalizer::new(
        NormalizerConfig {
            tenant_attribute: cfg.normalize.tenant_attribute.clone(),
            default_tenant: cfg.normalize.default_tenant.clone(),
            prices: Arc::new(prices),
            classification: ClassificationRules::from_config(&cfg.classification)?,
            retention: cfg.retention.clone(),
        },
        key,
    ))
}

/// Resolves at the first SIGTERM or SIGINT; a second one exits the process at once.
async fn shutdown_signal() {
    wait_signal().await;
    tracing::info!("signal received: stopping (send it again to exit at once)");
    tokio::spawn(async {
        wait_signal().await;
        tracing::warn!("second signal: exiting now; the WAL holds everything acknowledged");
        std::process::exit(130);
    });
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The store's writer as the receiver's sink: acknowledged once durable in the WAL. Records
/// pass the alert rules on the way in (evaluation never waits for delivery).
struct WriterSink(Writer, Option<Arc<Alerting>>);

/// Runs the per-record alert rules on records completed by log-borne content at a flush (PII
/// found in a prompt that arrived as an OTLP log record), once alerting has started.
struct AlertOnMerge(Arc<std::sync::OnceLock<Arc<Alerting>>>);

impl genai_audit_store::MergeObserver for AlertOnMerge {
    fn merged(&self, before: &[AuditRecord], after: &[AuditRecord]) {
        if let Some(a) = self.0.get() {
            a.observe_merged(before, after);
        }
    }
}

fn sink_error(e: genai_audit_store::Error) -> SinkError {
    match e.retry_after() {
        Some(retry_after) => SinkError::Backpressure { retry_after },
        None => match e {
            genai_audit_store::Error::EntryTooLarge { .. } => SinkError::Invalid(e.to_string()),
            other => SinkError::Unavailable(other.to_string()),
        },
    }
}

impl AuditSink for WriterSink {
    fn append(&self, records: Vec<AuditRecord>) -> BoxFuture<'static, Result<(), SinkError>> {
        if let Some(a) = &self.1 {
            a.observe(&records);
        }
        let w = self.0.clone();
        Box::pin(async move { w.append(records).await.map(|_| ()).map_err(sink_error) })
    }

    fn append_contents(
        &self,
        contents: Vec<CorrelatedContent>,
    ) -> BoxFuture<'static, Result<(), SinkError>> {
        let w = self.0.clone();
        Box::pin(async move {
            w.append_contents(contents)
                .await
                .map(|_| ())
                .map_err(sink_error)
        })
    }
}

struct AdminState {
    ready: AtomicBool,
    writer: std::sync::OnceLock<Writer>,
    metrics: Arc<ReceiverMetrics>,
    alerts: std::sync::OnceLock<Arc<Alerting>>,
}

async fn ready_handler(State(s): State<Arc<AdminState>>) -> impl IntoResponse {
    let failed = s.writer.get().and_then(Writer::failure);
    match (s.ready.load(Ordering::Acquire), failed) {
        (true, None) => (StatusCode::OK, "ready\n".to_owned()),
        (_, Some(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store failed: {reason}\n"),
        ),
        (false, None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting (replaying the WAL)\n".to_owned(),
        ),
    }
}

async fn metrics_handler(State(s): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut out = String::with_capacity(8 * 1024);
    s.metrics.render_prometheus(&mut out);
    if let Some(w) = s.writer.get() {
        render_writer(w, &mut out);
    }
    if let Some(a) = s.alerts.get() {
        a.metrics().render_prometheus(&mut out);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
}

fn render_writer(w: &Writer, out: &mut String) {
    use std::fmt::Write;
    let st = w.stats();
    let counters: [(&str, &str, u64); 9] = [
        (
            "genai_audit_records_appended_total",
            "Records acknowledged (durable in the WAL).",
            st.records_appended.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_records_written_total",
            "Records written to committed Parquet files.",
            st.records_written.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_bytes_written_total",
            "Parquet bytes written.",
            st.bytes_written.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_files_committed_total",
            "Parquet files committed.",
            st.files_committed.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_commits_total",
            "Commits made.",
            st.commits.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_store_errors_total",
            "Object store errors (each retried).",
            st.store_errors.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_duplicates_dropped_total",
            "Records dropped as resent duplicates.",
            st.duplicates_dropped.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_contents_unmatched_total",
            "Log-borne contents whose span never arrived.",
            st.contents_unmatched.load(Ordering::Relaxed),
        ),
        (
            "genai_audit_wal_spilled_entries_total",
            "WAL entries kept only in the WAL while the buffer was full (read back by a flush).",
            st.entries_spilled.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    let gauges: [(&str, &str, u64); 4] = [
        (
            "genai_audit_wal_bytes",
            "Bytes held by the write-ahead log.",
            w.wal_bytes(),
        ),
        (
            "genai_audit_buffered_records",
            "Records waiting for the next flush.",
            w.buffered_rows() as u64,
        ),
        (
            "genai_audit_buffered_bytes",
            "Memory held by the records waiting for the next flush (Arrow arrays), bytes.",
            w.buffered_bytes() as u64,
        ),
        (
            "genai_audit_store_failed",
            "1 when flushing stopped after an error (restart needed).",
            u64::from(w.failure().is_some()),
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    st.flush_seconds.render(
        "genai_audit_flush_duration_seconds",
        "Time to encode, upload and commit one flush.",
        out,
    );
}
