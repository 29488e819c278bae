//! The `genai-audit` binary.

mod inspect;
mod keys;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

// mimalloc: normalization allocates many small strings; glibc malloc costs ~25% of it.
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
    Serve,
    /// Show the audit records genai-audit would write for OTLP files, without storing anything.
    ///
    /// Reads OTLP/JSON (one export request per line, as the Collector's file exporter writes)
    /// and binary OTLP protobuf (.pb) trace and log requests; prints one JSON record per line.
    Inspect(inspect::InspectArgs),
}

/// Options shared by commands that need the content hash key.
#[derive(Debug, Clone, clap::Args)]
struct KeyArgs {
    /// File holding the content hash key (hex); created with mode 0600 if absent.
    /// `GENAI_AUDIT_HASH_KEY` (hex) takes precedence.
    #[arg(long, default_value = "genai-audit-data/keys/hash.key")]
    hash_key_file: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
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
        Command::Serve => anyhow::bail!(
            "`serve` is not implemented yet (the OTLP receiver is tracked in the issue tracker); \
             use `genai-audit inspect FILE` to see what would be recorded"
        ),
        Command::Inspect(args) => inspect::run(&args),
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("GENAI_AUDIT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
