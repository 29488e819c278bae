//! Query performance at scale (issue #5, "Performance"): genai-audit's DataFusion engine, side
//! by side with DuckDB reading the same Parquet files.
//!
//! `cargo bench -p genai-audit-query --bench scale -- [options]` (`-- --help` lists them):
//!
//! 1. Generates a synthetic store (see `generate.rs`: 10 M records over 30 days, 5,000 users,
//!    4 tenants, a dozen models, errors, PII, wrapper spans sharing a call's id) through the
//!    real normalizer, committer and compaction, cached in
//!    `~/.cache/genai-audit-bench/<shape>` so reruns skip it (`--cache-dir` to move it).
//! 2. Runs the workloads of `queries.rs` (subject lookup, one-day and 30-day compliance
//!    report, cost by model by day) with [`QueryEngine`] as `genai-audit query` and
//!    `genai-audit report` open it (the compliance report is the real `report::compliance`),
//!    and with DuckDB (the Python package, `duckdb_runner.py`) over the committed files with
//!    hive partitioning, the two engines taking turns workload by workload so that a change in
//!    the machine's load weighs on both. Cold-ish = the first run on a fresh engine / connection (the OS page cache
//!    is not dropped); warm = the median of `--runs` runs after it.
//! 3. Prints a table with the DataFusion / DuckDB ratios and the goals (subject lookup
//!    ≤ 300 ms, 30-day report ≤ 2 s, no workload slower than DuckDB), and checks that both
//!    engines return the same number of rows and the same first value.
//!
//! Without `--bench` (how `cargo test --all-targets` runs a `harness = false` bench) it makes a
//! smoke run in seconds: a 4,000-record store in a temporary directory, every workload once on
//! both engines, results compared; it fails if they differ.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod generate;
mod queries;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use genai_audit_query::datafusion::arrow::record_batch::RecordBatch;
use genai_audit_query::datafusion::arrow::util::display::array_value_to_string;
use genai_audit_query::datafusion::arrow::util::pretty::pretty_format_batches;
use genai_audit_query::report::compliance::{COMPLIANCE_CALLS_SQL, COMPLIANCE_PII_SQL};
use genai_audit_query::report::{self, Scope};
use genai_audit_query::{QueryEngine, QueryOptions, split_statements};
use genai_audit_store::StoreLocation;

use crate::generate::{COMPLETE, DAY_US, DAY0_US, Shape};
use crate::queries::{Dialect, Engine, Workload, middle_day, render, workloads};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// genai-audit query engine vs DuckDB on a synthetic store.
#[derive(Debug, Parser)]
#[command(name = "scale")]
struct Opts {
    /// Set by `cargo bench`; without it a quick smoke run is made and the sizes are ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Records in the store (wrapper spans included).
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Days the records span.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Distinct end users.
    #[arg(long, default_value_t = 5_000)]
    users: u64,
    /// Tenants.
    #[arg(long, default_value_t = 4)]
    tenants: u64,
    /// Warm runs of each workload (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Threads of both engines (DataFusion target partitions, DuckDB threads); default: the
    /// number of CPUs.
    #[arg(long)]
    threads: Option<usize>,
    /// Where generated stores are kept (default `~/.cache/genai-audit-bench`).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Only the workloads whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Skip DuckDB.
    #[arg(long)]
    no_duckdb: bool,
    /// Print DataFusion's EXPLAIN ANALYZE of every statement (profiling).
    #[arg(long)]
    explain: bool,
    /// DataFusion session option for every engine, `KEY=VALUE` (repeatable; profiling), e.g.
    /// `datafusion.execution.batch_size=16384`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Also check that the compliance report computed in process equals the one computed by
    /// SQL alone (what a cluster runs) over the whole period: every figure, floats to 12
    /// significant digits. Always done in the smoke run.
    #[arg(long)]
    compare_sql: bool,
    /// Instead of the workloads: time the statements of this SQL file on genai-audit's engine
    /// only (`{from}` / `{to}` are the whole period, `{day_from}` / `{day_to}` the middle day;
    /// profiling).
    #[arg(long)]
    sql_file: Option<PathBuf>,
}

/// Timings and result of one workload on one engine.
#[derive(Debug, Clone, Default)]
struct Measured {
    cold_ms: f64,
    warm_ms: Vec<f64>,
    rows: usize,
    first: String,
}

impl Measured {
    fn median(&self) -> f64 {
        let mut v = self.warm_ms.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

fn main() -> std::process::ExitCode {
    let opts = Opts::parse();
    // The engine's own timings (profiling), e.g. GENAI_AUDIT_LOG=genai_audit_query=debug.
    if let Ok(filter) = std::env::var("GENAI_AUDIT_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(mut opts: Opts) -> Result<()> {
    let smoke = !opts.bench;
    let _tmp; // the smoke store lives until the end
    let dir = if smoke {
        opts.records = 4_000;
        opts.days = 3;
        opts.users = 300;
        opts.tenants = 2;
        opts.runs = 1;
        let tmp = tempfile::tempdir().context("tempdir")?;
        let dir = tmp.path().join("store");
        _tmp = tmp;
        dir
    } else {
        let cache = match opts.cache_dir.clone() {
            Some(d) => d,
            None => home()?.join(".cache/genai-audit-bench"),
        };
        cache.join(shape(&opts).key())
    };
    let shape = shape(&opts);
    prepare(&shape, &dir).await?;

    let options = || QueryOptions {
        target_partitions: opts.threads,
        ..QueryOptions::default()
    };
    let loc = StoreLocation::local(&dir).context("store")?;
    let open = || async {
        let engine = QueryEngine::open(loc.clone(), options()).await?;
        for s in &opts.settings {
            let Some((k, v)) = s.split_once('=') else {
                bail!("--set {s}: expected KEY=VALUE");
            };
            engine.collect(&format!("SET {k} = '{v}'")).await?;
        }
        Ok::<_, anyhow::Error>(engine)
    };
    let started = Instant::now();
    let engine = open().await?;
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    let summary = engine.summary();
    println!(
        "store {}: {} records, {} files, {:.1} MiB ({:.0} B/record), tenants {}, days {:?}; \
         engine open (manifests read) {open_ms:.0} ms",
        dir.display(),
        summary.rows,
        summary.files,
        summary.bytes as f64 / (1 << 20) as f64,
        summary.bytes as f64 / summary.rows.max(1) as f64,
        summary.tenants.len(),
        summary.days,
    );

    // What every statement pays before planning: the manifest refresh (one LIST).
    let started = Instant::now();
    for _ in 0..20 {
        engine.refresh().await?;
    }
    println!(
        "manifest refresh (per statement): {:.2} ms; load average {}",
        started.elapsed().as_secs_f64() * 1000.0 / 20.0,
        load_average()
    );

    if let Some(file) = &opts.sql_file {
        return time_sql_file(&engine, file, &shape, opts.runs, opts.explain).await;
    }
    if opts.compare_sql || smoke {
        compare_sql(&engine, &shape).await?;
    }

    let subject = generate::subject(&shape);
    let selected: Vec<(Workload, i64, i64)> = workloads(shape.days, &subject)
        .into_iter()
        .filter(|(w, _, _)| {
            opts.only
                .as_ref()
                .is_none_or(|o| w.name.contains(o.as_str()))
        })
        .collect();

    let files: Vec<PathBuf> = engine.files().iter().map(|f| dir.join(&f.key)).collect();
    let mut df = Vec::new();
    let mut duck = Vec::new();
    for (w, from, to) in &selected {
        // Cold-ish: a fresh engine's first run.
        let fresh = open().await?;
        let (cold, rows, first) = run_datafusion(&fresh, w, *from, *to).await?;
        let mut m = Measured {
            cold_ms: cold.as_secs_f64() * 1000.0,
            rows,
            first,
            ..Measured::default()
        };
        for _ in 0..opts.runs {
            let (t, _, _) = run_datafusion(&engine, w, *from, *to).await?;
            m.warm_ms.push(t.as_secs_f64() * 1000.0);
        }
        eprintln!(
            "  datafusion {}: {:.0} ms (median; load average {})",
            w.name,
            m.median(),
            load_average()
        );
        if opts.explain {
            explain(&engine, w, *from, *to).await?;
        }
        df.push(m);
        // DuckDB right after, on the same workload.
        if !opts.no_duckdb {
            let k = run_duckdb(&files, &[(w.clone(), *from, *to)], opts.runs, opts.threads)?;
            if let Some(k) = k.into_iter().next() {
                eprintln!(
                    "  duckdb     {}: {:.0} ms (median; load average {})",
                    w.name,
                    k.median(),
                    load_average()
                );
                duck.push(k);
            }
        }
    }
    let duck = (!opts.no_duckdb).then_some(duck);

    if smoke {
        println!("smoke run (tiny store, test profile): the timings mean nothing");
    }
    print_table(&selected, &df, duck.as_deref());
    let mut mismatches = Vec::new();
    if let Some(duck) = &duck {
        for ((w, _, _), (d, k)) in selected.iter().zip(df.iter().zip(duck)) {
            if d.rows != k.rows || d.first != k.first {
                mismatches.push(format!(
                    "{}: DataFusion {} rows, first {:?}; DuckDB {} rows, first {:?}",
                    w.name, d.rows, d.first, k.rows, k.first
                ));
            }
        }
    }
    for m in &mismatches {
        println!("RESULTS DIFFER: {m}");
    }
    if smoke {
        if let Some(w) = selected.iter().zip(&df).find(|(_, m)| m.rows == 0) {
            bail!("{}: no rows", w.0.0.name);
        }
        if !mismatches.is_empty() {
            bail!("DataFusion and DuckDB disagree");
        }
    }
    Ok(())
}

fn shape(opts: &Opts) -> Shape {
    Shape {
        records: opts.records,
        days: opts.days.max(1),
        users: opts.users.max(1),
        tenants: opts.tenants.max(1),
    }
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set: pass --cache-dir")
}

/// Generates the store unless a complete one is cached.
async fn prepare(shape: &Shape, dir: &Path) -> Result<()> {
    if dir.join(COMPLETE).exists() {
        return Ok(());
    }
    eprintln!("generating {} ({} records)…", dir.display(), shape.records);
    generate::reset(dir)?;
    let started = Instant::now();
    let written = generate::generate(shape, dir).await?;
    std::fs::write(dir.join(COMPLETE), format!("{written}\n"))
        .with_context(|| format!("write {}", dir.join(COMPLETE).display()))?;
    eprintln!(
        "generated {written} records in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `w` once; returns its time, and the rows and first value of its last statement.
async fn run_datafusion(
    engine: &QueryEngine,
    w: &Workload,
    from: i64,
    to: i64,
) -> Result<(Duration, usize, String)> {
    let started = Instant::now();
    let (calls, statements) = match &w.datafusion {
        Engine::Sql { calls, statements } => (calls, statements),
        Engine::ComplianceReport => {
            // As `genai-audit report` runs it on a freshly refreshed engine.
            engine.refresh().await?;
            let report = report::compliance(engine, &scope(from, to)).await?;
            return Ok((started.elapsed(), 1, report.totals.requests.to_string()));
        }
    };
    if let Some(calls) = calls {
        let sql = render(calls, Dialect::DataFusion, from, to);
        let table = engine.sql(&sql).await?.cache().await?;
        let ctx = engine.context();
        ctx.deregister_table("calls")?;
        ctx.register_table("calls", table.into_view())?;
    }
    let mut last: Vec<RecordBatch> = Vec::new();
    for s in statements {
        let sql = render(s, Dialect::DataFusion, from, to);
        last = engine
            .collect(&sql)
            .await
            .with_context(|| format!("{}: {sql}", w.name))?;
    }
    let elapsed = started.elapsed();
    let rows = last.iter().map(|b| b.num_rows()).sum();
    let first = match last.iter().find(|b| b.num_rows() > 0) {
        Some(b) => array_value_to_string(b.column(0), 0)?,
        None => String::new(),
    };
    Ok((elapsed, rows, first))
}

/// The report scope of `[from, to)`, all tenants.
/// Fails unless the whole period's compliance report is the same computed in process and by
/// SQL alone.
async fn compare_sql(engine: &QueryEngine, shape: &Shape) -> Result<()> {
    let scope = scope(DAY0_US, DAY0_US + shape.days * DAY_US);
    let json = |r: &report::ComplianceReport| -> Result<String> {
        let mut r = r.clone();
        r.generated_at = chrono::DateTime::UNIX_EPOCH;
        Ok(serde_json::to_string_pretty(&round_floats(
            serde_json::to_value(&r)?,
        ))?)
    };
    let started = Instant::now();
    let fast = report::compliance(engine, &scope).await?;
    let fast_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let sql = report::compliance::compliance_sql(engine, &scope).await?;
    let sql_ms = started.elapsed().as_millis();
    let (f, s) = (json(&fast)?, json(&sql)?);
    let differ: Vec<_> = f
        .lines()
        .zip(s.lines())
        .filter(|(a, b)| a != b)
        .take(5)
        .collect();
    if !differ.is_empty() || f != s {
        bail!("the in-process compliance report differs from the SQL one: {differ:#?}");
    }
    println!(
        "compliance report, whole period: in process ({fast_ms} ms) == SQL only ({sql_ms} ms), \
         {} calls",
        fast.totals.requests
    );
    Ok(())
}

/// `v` with every non-integer number rounded to 12 significant digits: averages are float
/// sums, added up in another order by each computation.
fn round_floats(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            Value::String(format!("{:.11e}", n.as_f64().unwrap_or(f64::NAN)))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(round_floats).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, round_floats(v))).collect())
        }
        other => other,
    }
}

fn scope(from: i64, to: i64) -> Scope {
    Scope {
        from: chrono::DateTime::from_timestamp_micros(from),
        to: chrono::DateTime::from_timestamp_micros(to),
        tenant: None,
    }
}

async fn explain(engine: &QueryEngine, w: &Workload, from: i64, to: i64) -> Result<()> {
    let statements: Vec<String> = match &w.datafusion {
        Engine::Sql { calls, statements } => calls
            .iter()
            .chain(statements)
            .map(|s| render(s, Dialect::DataFusion, from, to))
            .collect(),
        // The facet query reads the materialized calls, which only the report has.
        Engine::ComplianceReport => {
            let scope = scope(from, to);
            [COMPLIANCE_CALLS_SQL, COMPLIANCE_PII_SQL]
                .iter()
                .map(|s| scope.apply(s))
                .collect()
        }
    };
    for s in statements {
        let sql = format!("EXPLAIN ANALYZE {s}");
        let out = engine.collect(&sql).await?;
        println!("--- {}\n{}", w.name, pretty_format_batches(&out)?);
    }
    Ok(())
}

fn run_duckdb(
    files: &[PathBuf],
    selected: &[(Workload, i64, i64)],
    runs: usize,
    threads: Option<usize>,
) -> Result<Vec<Measured>> {
    let job = serde_json::json!({
        "files": files,
        "runs": runs,
        "threads": threads,
        "workloads": selected.iter().map(|(w, from, to)| serde_json::json!({
            "name": w.name,
            "calls": w.duck_calls.as_ref().map(|c| render(c, Dialect::DuckDb, *from, *to)),
            "statements": w.duck_statements.iter()
                .map(|s| render(s, Dialect::DuckDb, *from, *to))
                .collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scale/duckdb_runner.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context(
            "python3 (DuckDB is the `duckdb` package: pip install -r tests/requirements.txt)",
        )?;
    if let Some(stdin) = child.stdin.take() {
        serde_json::to_writer(stdin, &job).context("send the workloads to python3")?;
    }
    let out = child.wait_with_output().context("python3")?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), out.status);
    }
    let results: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("DuckDB runner output")?;
    selected
        .iter()
        .map(|(w, _, _)| {
            let r = &results[w.name];
            Ok(Measured {
                cold_ms: r["cold_ms"].as_f64().context("cold_ms")?,
                warm_ms: r["warm_ms"]
                    .as_array()
                    .context("warm_ms")?
                    .iter()
                    .filter_map(serde_json::Value::as_f64)
                    .collect(),
                rows: r["rows"].as_u64().context("rows")? as usize,
                first: r["first"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

fn print_table(selected: &[(Workload, i64, i64)], df: &[Measured], duck: Option<&[Measured]>) {
    println!(
        "\n| workload | rows | DataFusion cold ms | DataFusion warm ms | DuckDB cold ms | \
         DuckDB warm ms | DF/DuckDB warm | DF/DuckDB cold | goal |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for (i, ((w, _, _), d)) in selected.iter().zip(df).enumerate() {
        let k = duck.and_then(|k| k.get(i));
        let cell = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0}"));
        let ratio =
            |a: f64, b: Option<f64>| b.map_or("–".to_owned(), |b| format!("{:.2}", a / b));
        let goal = match w.goal_ms {
            Some(g) if d.median() <= g => format!("≤ {g:.0} ms: met"),
            Some(g) => format!("≤ {g:.0} ms: MISSED"),
            None => String::new(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {goal} |",
            w.name,
            d.rows,
            d.cold_ms,
            d.median(),
            cell(k.map(|k| k.cold_ms)),
            cell(k.map(Measured::median)),
            ratio(d.median(), k.map(Measured::median)),
            ratio(d.cold_ms, k.map(|k| k.cold_ms)),
        );
    }
}

/// The 1-minute load average (`/proc/loadavg`), or `?`: the machine is shared, so every timing
/// is reported with it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// `--sql-file`: times each statement of `file` on `engine` (first run, then the median of
/// `runs`), printing its result's row count.
async fn time_sql_file(
    engine: &QueryEngine,
    file: &Path,
    shape: &Shape,
    runs: usize,
    explain: bool,
) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let (day_from, day_to) = middle_day(shape.days);
    let (from, to) = (DAY0_US, DAY0_US + shape.days * DAY_US);
    for (i, s) in split_statements(&text).complete.iter().enumerate() {
        let sql = render(
            &s.replace("{day_from}", "{dfrom}")
                .replace("{day_to}", "{dto}"),
            Dialect::DataFusion,
            from,
            to,
        );
        let sql = render(
            &sql.replace("{dfrom}", "{from}").replace("{dto}", "{to}"),
            Dialect::DataFusion,
            day_from,
            day_to,
        );
        let time = || async {
            let started = Instant::now();
            let out = engine.collect(&sql).await?;
            Ok::<_, anyhow::Error>((
                started.elapsed().as_secs_f64() * 1000.0,
                out.iter().map(RecordBatch::num_rows).sum::<usize>(),
            ))
        };
        let (first, rows) = time()
            .await
            .with_context(|| format!("statement {}", i + 1))?;
        let mut m = Measured {
            cold_ms: first,
            rows,
            ..Measured::default()
        };
        for _ in 0..runs {
            m.warm_ms.push(time().await?.0);
        }
        let head: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        println!(
            "statement {} ({rows} rows): first {first:.0} ms, median {:.0} ms, runs {:?}, load {}: {}",
            i + 1,
            m.median(),
            m.warm_ms.iter().map(|v| v.round()).collect::<Vec<_>>(),
            load_average(),
            head.chars().take(100).collect::<String>(),
        );
        if explain && !s.trim_start().to_uppercase().starts_with("SET") {
            let out = engine.collect(&format!("EXPLAIN ANALYZE {sql}")).await?;
            println!("{}", pretty_format_batches(&out)?);
        }
    }
    Ok(())
}
