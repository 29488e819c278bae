//! The `genai-audit` binary.

mod config;
mod import;
mod input;
mod inspect;
mod integrity;
mod keys;
mod maintenance;
mod query;
mod report;
mod schedule;
mod serve;
mod store;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use genai_audit_core::{Normalizer, NormalizerConfig, PriceTable};

// mimalloc: normalization allocates many small strings; glibc malloc costs ~25% of it.
// v3 keeps freed pages 1 s before returning them (v2: 10 ms), so a query reuses the memory of
// the one before: v2 made the scale bench's queries 15-30 % slower (the kernel zeroing the
// pages again) and the collector no smaller. Transparent huge pages off (`no_thp`, in the
// workspace's Cargo.toml): with them a fresh process's first query zeroed 2 MiB pages and
// waited on memory compaction, up to twice as slow (docs/operations.md, "Sizing").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// OpenTelemetry collector and tamper-evident audit log for GenAI calls.
#[derive(Debug, Parser)]
#[command(name = "genai-audit", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the OTLP collector (gRPC :4317, HTTP :4318) writing to the audit store.
    ///
    /// Runs with no configuration at all (local store ./genai-audit-data, WAL under it,
    /// loopback ports, admin on :9464). Every key: config/genai-audit.example.toml;
    /// environment overrides GENAI_AUDIT_<SECTION>_<KEY>; flags override both.
    Serve(serve::ServeArgs),
    /// Merge the small files of closed days into large ones, without changing any row.
    ///
    /// In each partition (tenant, day) with at least --min-files files, the files that are not
    /// full are merged in groups of up to --max-file-rows rows; each new file is checked row for
    /// row against the old ones before its commit swaps them. Days from today (UTC) on are left alone. Commits are made
    /// as `maintenance.collector_id`, like retention and erasure, so the three can run at the
    /// same time: a run that loses a race plans again from the winner's files.
    Compact(maintenance::CompactArgs),
    /// Show the audit records genai-audit would write for OTLP files, without storing anything.
    ///
    /// Reads OTLP/JSON (one export request per line, as the Collector's file exporter writes)
    /// and binary OTLP protobuf (.pb) trace and log requests; prints one JSON record per line.
    Inspect(inspect::InspectArgs),
    /// Load OTLP files into the audit store.
    ///
    /// Reads OTLP/JSON (one export request per line, as the Collector's file exporter writes)
    /// and binary OTLP protobuf (.pb), optionally gzip-compressed; directories are walked.
    /// Content carried by OTLP log records is merged into its span's record. Idempotent:
    /// records already in the store (same record_id) are skipped, so importing a file twice
    /// adds nothing. A malformed file or line is reported as `path:line: message` and the rest
    /// is imported.
    ///
    /// Exit status: 0 when everything was read, 1 when some input was malformed or unreadable
    /// (the rest was imported), 2 on a fatal error (store unreachable, bad options); an import
    /// that stopped can be run again.
    Import(import::ImportArgs),
    /// Run read-only SQL over the committed audit log (table `audit_log`), or start a prompt.
    ///
    /// `audit_log` holds exactly the committed files: the record columns, then `tenant` and `dt`
    /// (the UTC date of start_time). Filters on start_time prune days by themselves.
    /// `audit_hash('text')` gives the keyed hash stored in prompt_hash/response_hash (needs
    /// GENAI_AUDIT_HASH_KEY or the key file). Statements that would write are refused.
    ///
    /// Exit status: 0 when every statement ran, 1 when one failed (SQL error, refused
    /// statement), 2 on a fatal error (store unreachable, nothing committed, bad options).
    Query(query::QueryArgs),
    /// Apply the retention policy: delete the records whose retention has ended.
    ///
    /// Records under a legal hold (`genai-audit hold`) are kept. Each batch of files is one
    /// commit of kind `retention`, so the integrity log records every deletion. Bounded
    /// (--max-files) and resumable: an interrupted run is completed by the next one.
    Retention(maintenance::RetentionArgs),
    /// Place, lift and list legal holds, which keep records from retention and erasure.
    Hold(maintenance::HoldArgs),
    /// Erase one data subject (GDPR Art. 17): pseudonymize (default) or delete their records.
    ///
    /// The receipt (a commit of kind `erasure`) names the subject only by the keyed hash of the
    /// user id, which `audit_hash('<user id>')` reproduces. Refused while a legal hold applies.
    ///
    /// Exit status: 0 when done, 1 when replaced files could not be deleted (they are no longer
    /// listed; the next run retries), 2 on an error or a refusal (nothing committed by the
    /// batch that failed).
    Erase(maintenance::EraseArgs),
    /// Check the store against its signed integrity checkpoints, offline (a copy works).
    ///
    /// Checks every checkpoint's Ed25519 signature against the public keys, each collector's
    /// chain (no gaps, each naming its predecessor's hash, consistent trees), every manifest
    /// commit against what was signed for it, and every file's SHA-256; reports files missing
    /// or unlisted, and commits not yet covered by a checkpoint (pending). One line per
    /// problem, then `N/M checkpoints valid, N/M files valid`. --file KEY prints the inclusion
    /// proof of one file instead.
    ///
    /// Exit status: 0 when everything verifies, 1 when a problem was found, 2 when verification
    /// could not run (bad options, store unreadable).
    Verify(verify::VerifyArgs),
    /// Compliance reports over the committed audit log: `compliance`, `subject`, `cost`.
    ///
    /// Markdown (default), JSON, CSV, or one self-contained HTML page with charts
    /// (`--format html`), to stdout or `--output FILE`. Each provider call is counted once.
    /// Exit status: 0 when the report was written, 2 on a fatal error (store unreachable,
    /// nothing committed, bad options).
    Report(report::ReportArgs),
}

/// Where the content hash key is kept unless told otherwise.
const DEFAULT_HASH_KEY_FILE: &str = "genai-audit-keys/hash.key";

/// Options shared by commands that need the content hash key.
#[derive(Debug, Clone, clap::Args)]
struct KeyArgs {
    /// File holding the content hash key (hex); created with mode 0600 if absent. Default:
    /// `./genai-audit-keys/hash.key`, deliberately outside the store: a copy of the store handed
    /// to an auditor must not carry the key that protects its hashes. Back it up separately.
    /// `GENAI_AUDIT_HASH_KEY` (hex) takes precedence.
    #[arg(long, value_name = "FILE")]
    hash_key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key file: as given, else the default beside (never inside) the store.
    fn path(&self) -> PathBuf {
        self.hash_key_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_HASH_KEY_FILE))
    }
}

/// Options shared by commands that normalize OTLP: prices and the hash key.
#[derive(Debug, Clone, clap::Args)]
struct NormalizeArgs {
    /// Extra price table (your contract prices) applied over the shipped one.
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
}

impl NormalizeArgs {
    /// A normalizer with these prices and key.
    fn normalizer(&self) -> Result<Normalizer> {
        let key = keys::load_or_create(&self.key.path())?;
        let mut prices = PriceTable::embedded();
        if let Some(path) = &self.prices {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the price table {}", path.display()))?;
            let extra = PriceTable::from_toml_str(&text)
                .with_context(|| format!("in the price table {}", path.display()))?;
            prices = prices.with_overrides(extra);
        }
        Ok(Normalizer::new(
            NormalizerConfig {
                prices: Arc::new(prices),
                ..NormalizerConfig::default()
            },
            key,
        ))
    }
}

/// Now, µs since the epoch.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            // Configuration errors are reported before logging starts (its level is config).
            let cfg = serve::load_config(&args)?;
            init_logging(cli.log_format, &cfg.log.level);
            serve::run(cfg)
        }
        Command::Inspect(args) => {
            init_logging(cli.log_format, "info");
            inspect::run(&args)
        }
        Command::Import(args) => {
            init_logging(cli.log_format, "info");
            import::run(&args)
        }
        Command::Compact(args) => {
            init_logging(cli.log_format, "info");
            maintenance::run_compact(&args)
        }
        Command::Query(args) => {
            init_logging(cli.log_format, "warn");
            query::run(&args)
        }
        Command::Retention(args) => {
            init_logging(cli.log_format, "warn");
            maintenance::run_retention(&args)
        }
        Command::Hold(args) => {
            init_logging(cli.log_format, "warn");
            maintenance::run_hold(&args)
        }
        Command::Erase(args) => {
            init_logging(cli.log_format, "warn");
            maintenance::run_erase(&args)
        }
        Command::Verify(args) => {
            init_logging(cli.log_format, "warn");
            verify::run(&args)
        }
        Command::Report(args) => {
            init_logging(cli.log_format, "warn");
            report::run(&args)
        }
    }
}

/// Logs to stderr; `GENAI_AUDIT_LOG` (tracing filter syntax) overrides `default_level`.
fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GENAI_AUDIT_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
