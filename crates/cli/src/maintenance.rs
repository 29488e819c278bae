//! `genai-audit retention apply`, `genai-audit hold …`, `genai-audit erase` and
//! `genai-audit compact`.
//!
//! Thin wrappers over `genai_audit_store::{maintenance, retention, erasure, holds}`: options
//! from the configuration file and flags, a progress bar on a terminal, a summary on stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use genai_audit_store::StoreLocation;
use genai_audit_store::erasure::{ErasureMode, ErasureRequest, ErasureRun};
use genai_audit_store::holds::{self, HoldSet};
use genai_audit_store::maintenance::{
    CompactOptions, CompactReport, Maintainer, MaintenanceOptions, MaintenanceReport, Progress,
};
use genai_audit_store::retention::RetentionRun;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

/// Options every maintenance command shares.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Configuration file (the `serve` one: `store.url`, `retention`, `maintenance`, `hash`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Store URL (overrides `store.url`).
    #[arg(long, value_name = "URL", env = crate::store::STORE_URL_ENV)]
    store: Option<String>,
}

impl CommonArgs {
    fn load(&self) -> Result<(Config, StoreLocation)> {
        let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let cfg = Config::load(self.config.as_deref(), &env)?;
        let url = self.store.clone().unwrap_or_else(|| cfg.store.url.clone());
        let loc = crate::store::open(&url)?;
        Ok((cfg, loc))
    }
}

/// Options of commands that rewrite the store.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Show what would be deleted or rewritten; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete or rewrite at most this many files in this run (overrides
    /// `maintenance.max_files`); run again for the rest.
    #[arg(long, value_name = "N")]
    max_files: Option<usize>,
    /// File holding the Ed25519 key that signs the checkpoint after each commit (overrides
    /// `integrity.key_file`; GENAI_AUDIT_INTEGRITY_KEY takes precedence). Created if absent.
    #[arg(long, value_name = "FILE")]
    integrity_key_file: Option<PathBuf>,
}

impl RunArgs {
    fn maintainer(&self, cfg: &Config, loc: StoreLocation) -> Result<Maintainer> {
        let max_files = self.max_files.unwrap_or(cfg.maintenance.max_files);
        if max_files == 0 {
            bail!("--max-files must be positive");
        }
        let maintainer = Maintainer::new(
            loc,
            MaintenanceOptions {
                collector_id: cfg.maintenance.collector_id.clone(),
                max_files,
                dry_run: self.dry_run,
                ..MaintenanceOptions::default()
            },
        )?;
        if self.dry_run {
            return Ok(maintainer);
        }
        // Every deletion and rewrite becomes a signed leaf (docs/integrity.md).
        let key_path = self
            .integrity_key_file
            .clone()
            .unwrap_or_else(|| cfg.integrity.key_file.clone());
        Ok(maintainer.with_integrity_key(crate::integrity::load_key(&key_path)?))
    }
}

/// `genai-audit compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Only this tenant.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Only days before this date (YYYY-MM-DD). Default: before today (UTC), so a day that
    /// collectors may still be writing is never compacted.
    #[arg(long, value_name = "DATE")]
    before: Option<chrono::NaiveDate>,
    /// Compact a partition only when it has at least this many files.
    #[arg(long, default_value_t = 4)]
    min_files: usize,
    /// Rows per output file at most. Small files are merged in groups of up to this many
    /// rows, each held in memory while it is merged.
    #[arg(long, default_value_t = 1_000_000)]
    max_file_rows: usize,
}

/// Runs `compact`: merges the small files of closed days, one commit per partition, under the
/// maintenance protocol (so it may run while `retention apply` or `erase` runs).
pub fn run_compact(args: &CompactArgs) -> Result<ExitCode> {
    if args.max_file_rows == 0 {
        bail!("--max-file-rows must be positive");
    }
    let (cfg, loc) = args.run.common.load()?;
    let maintainer = args.run.maintainer(&cfg, loc)?;
    let opts = CompactOptions {
        tenant: args.tenant.clone(),
        before: args
            .before
            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
        min_files: args.min_files,
        max_file_rows: args.max_file_rows,
    };
    runtime()?.block_on(async {
        let bar = Bar::new();
        let report = maintainer
            .compact(&opts, &bar)
            .await
            .context("compacting")?;
        bar.0.finish_and_clear();
        print_compact_report(&report);
        Ok(exit_code(report.delete_failures))
    })
}

#[allow(clippy::print_stdout)]
fn print_compact_report(r: &CompactReport) {
    print_commits(r.dry_run, &r.commits);
    println!("partitions compacted: {}", r.partitions);
    println!("files: {} -> {}", r.files_in, r.files_out);
    println!("rows rewritten (unchanged): {}", r.rows);
    print_leftovers(r.files_remaining, r.delete_failures);
}

/// `genai-audit retention …`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Delete the records whose retention has ended (today, UTC).
    ///
    /// A record goes once both its retention_until (stamped at ingest) and the end the
    /// configured `[retention]` policy gives it are before today; records under a legal hold
    /// stay. Whole files are deleted when every row has expired, files with some expired rows are
    /// rewritten with the others. Each batch of files is one commit of kind `retention`.
    Apply(ApplyArgs),
}

#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Only this tenant.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
}

/// Runs `retention`.
pub fn run_retention(args: &RetentionArgs) -> Result<ExitCode> {
    let RetentionCommand::Apply(args) = &args.command;
    let (cfg, loc) = args.run.common.load()?;
    let maintainer = args.run.maintainer(&cfg, loc.clone())?;
    runtime()?.block_on(async {
        let holds = HoldSet::load(&loc).await.context("reading legal holds")?;
        let today = chrono::Utc::now().date_naive();
        let run = RetentionRun::new(cfg.retention.clone(), today, args.tenant.clone(), holds);
        let bar = Bar::new();
        let report = maintainer
            .apply_retention(&run, &bar)
            .await
            .context("applying retention")?;
        bar.0.finish_and_clear();
        print_report(&report, None);
        Ok(exit_code(report.delete_failures))
    })
}

/// `genai-audit erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The subject's user_id, as stored.
    #[arg(long, value_name = "ID")]
    user: String,
    /// The request this fulfils (ticket, legal basis); recorded in the receipt. Must not contain
    /// the user id: the receipt names the subject only by its keyed hash.
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Only this tenant's records.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// `pseudonymize` keeps the facts (model, tokens, cost, time, status) and replaces the
    /// identifying columns; `delete` removes the records.
    #[arg(long, value_enum, default_value_t = Mode::Pseudonymize)]
    mode: Mode,
    /// File holding the content hash key (overrides `hash.key_file`; GENAI_AUDIT_HASH_KEY takes
    /// precedence). Must be the collector's key: the receipt's subject hash is
    /// `audit_hash('<user id>')` under it.
    #[arg(long, value_name = "FILE")]
    hash_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Pseudonymize,
    Delete,
}

/// Runs `erase`.
pub fn run_erase(args: &EraseArgs) -> Result<ExitCode> {
    let (cfg, loc) = args.run.common.load()?;
    let key_file = args
        .hash_key_file
        .clone()
        .unwrap_or_else(|| cfg.hash.key_file.clone());
    if std::env::var_os(crate::keys::HASH_KEY_ENV).is_none() && !key_file.exists() {
        bail!(
            "no content hash key at {} (nor {}): erase needs the collector's key, so that the receipt's subject hash is audit_hash() of the user id",
            key_file.display(),
            crate::keys::HASH_KEY_ENV
        );
    }
    let key = crate::keys::load_or_create(&key_file)?;
    let maintainer = args.run.maintainer(&cfg, loc.clone())?;
    runtime()?.block_on(async {
        let holds = HoldSet::load(&loc).await.context("reading legal holds")?;
        let request = ErasureRequest {
            user_id: args.user.clone(),
            tenant: args.tenant.clone(),
            mode: match args.mode {
                Mode::Pseudonymize => ErasureMode::Pseudonymize,
                Mode::Delete => ErasureMode::Delete,
            },
            request: args.reason.clone(),
        };
        let run = ErasureRun::new(request, &key, holds)?;
        let bar = Bar::new();
        let report = maintainer.erase(&run, &bar).await.context("erasing")?;
        bar.0.finish_and_clear();
        print_report(&report, Some(run.subject_hash()));
        Ok(exit_code(report.delete_failures))
    })
}

/// `genai-audit hold …`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(subcommand)]
    command: HoldCommand,
}

#[derive(Debug, Subcommand)]
enum HoldCommand {
    /// Place a legal hold on a tenant, or on one user of it.
    Add(HoldAddArgs),
    /// Lift a hold (by id, or every active hold with exactly this tenant and user). The removal
    /// is recorded with who, when and why; nothing is deleted.
    Remove(HoldRemoveArgs),
    /// List the active holds (`--all`: lifted ones too).
    List(HoldListArgs),
}

#[derive(Debug, Args)]
struct HoldAddArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Tenant held.
    #[arg(long, value_name = "T")]
    tenant: String,
    /// Only this user of the tenant.
    #[arg(long, value_name = "U")]
    user: Option<String>,
    /// Why (matter, ticket).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Who places it (default: $USER).
    #[arg(long, value_name = "WHO")]
    by: Option<String>,
}

#[derive(Debug, Args)]
struct HoldRemoveArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Id of the hold.
    #[arg(long, value_name = "ID", conflicts_with_all = ["tenant", "user"], required_unless_present = "tenant")]
    id: Option<String>,
    /// Tenant of the hold(s) to lift.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// User of the hold(s) to lift (without it: the tenant-wide hold).
    #[arg(long, value_name = "U", requires = "tenant")]
    user: Option<String>,
    /// Why it is lifted.
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Who lifts it (default: $USER).
    #[arg(long, value_name = "WHO")]
    by: Option<String>,
}

#[derive(Debug, Args)]
struct HoldListArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Only this tenant.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Include lifted holds.
    #[arg(long)]
    all: bool,
}

fn who(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs `hold`.
#[allow(clippy::print_stdout)]
pub fn run_hold(args: &HoldArgs) -> Result<ExitCode> {
    let rt = runtime()?;
    match &args.command {
        HoldCommand::Add(a) => {
            let (_, loc) = a.common.load()?;
            if !genai_audit_core::normalize::is_valid_tenant(&a.tenant) {
                bail!("--tenant {:?} is not a valid tenant", a.tenant);
            }
            let hold = rt.block_on(holds::add_hold(
                &loc,
                &a.tenant,
                a.user.as_deref(),
                &a.reason,
                &who(&a.by),
                chrono::Utc::now(),
            ))?;
            println!("placed: {} ({})", hold.id, hold.scope());
        }
        HoldCommand::Remove(a) => {
            let (_, loc) = a.common.load()?;
            let ids: Vec<String> = match (&a.id, &a.tenant) {
                (Some(id), _) => vec![id.clone()],
                (None, Some(tenant)) => rt
                    .block_on(holds::list_holds(&loc))?
                    .into_iter()
                    .filter(|h| h.is_active() && h.tenant == *tenant && h.user == a.user)
                    .map(|h| h.id)
                    .collect(),
                (None, None) => bail!("give --id or --tenant"),
            };
            if ids.is_empty() {
                bail!("no active hold with exactly that tenant and user");
            }
            for id in ids {
                let hold = rt.block_on(holds::remove_hold(
                    &loc,
                    &id,
                    &a.reason,
                    &who(&a.by),
                    chrono::Utc::now(),
                ))?;
                println!("lifted: {} ({})", hold.id, hold.scope());
            }
        }
        HoldCommand::List(a) => {
            let (_, loc) = a.common.load()?;
            let all = rt.block_on(holds::list_holds(&loc))?;
            let shown: Vec<_> = all
                .iter()
                .filter(|h| a.all || h.is_active())
                .filter(|h| a.tenant.as_ref().is_none_or(|t| *t == h.tenant))
                .collect();
            for h in &shown {
                println!(
                    "{}  {}  placed by {} at {}: {}",
                    h.id,
                    h.scope(),
                    h.by,
                    h.created_at,
                    h.reason
                );
                if let Some(r) = &h.removed {
                    println!("    lifted by {} at {}: {}", r.by, r.removed_at, r.reason);
                }
            }
            println!("{} hold(s)", shown.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// 1 when replaced files could not be deleted (they are no longer listed; the next run retries).
/// 1 when replaced files could not be deleted (the commits stand; the next run retries).
fn exit_code(delete_failures: u64) -> ExitCode {
    if delete_failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[allow(clippy::print_stdout)]
fn print_report(r: &MaintenanceReport, subject: Option<&str>) {
    if let Some(s) = subject {
        println!("subject (keyed hash): {s}");
    }
    print_commits(r.dry_run, &r.commits);
    println!("footers read: {}", r.footers_read);
    println!("files read: {}", r.files_read);
    println!("files deleted: {}", r.files_deleted);
    println!("files rewritten: {}", r.files_rewritten);
    println!("rows deleted: {}", r.rows_deleted);
    println!("rows pseudonymized: {}", r.rows_changed);
    println!("rows kept by legal holds: {}", r.rows_held);
    println!("bytes removed: {}", r.bytes_removed);
    println!("bytes written: {}", r.bytes_written);
    print_leftovers(r.files_remaining, r.delete_failures);
}

/// The first lines of every run's summary.
#[allow(clippy::print_stdout)]
fn print_commits(dry_run: bool, commits: &[u64]) {
    if dry_run {
        println!("dry run: nothing was changed");
    }
    let list: Vec<String> = commits.iter().map(u64::to_string).collect();
    println!("commits: {} [{}]", commits.len(), list.join(", "));
}

/// The last lines of every run's summary: what is left for the next run.
#[allow(clippy::print_stdout)]
fn print_leftovers(files_remaining: u64, delete_failures: u64) {
    println!("files remaining: {files_remaining}");
    if files_remaining > 0 {
        println!("(--max-files reached: run again for the rest)");
    }
    if delete_failures > 0 {
        println!(
            "replaced files not deleted: {delete_failures} (no longer listed; the next run retries)"
        );
    }
}

/// A progress bar on stderr when it is a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Bar(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(0);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed_precise} eta {eta}")
        {
            bar.set_style(style);
        }
        Bar(bar)
    }
}

impl Progress for Bar {
    fn planned(&self, files: u64) {
        self.0.set_length(files);
        self.0.set_position(0);
    }

    fn file_done(&self) {
        self.0.inc(1);
    }
}
