//! `genai-audit verify`: check a store against its signed checkpoints, offline.
//!
//! Output follows CloudTrail's `validate-logs`: one line per problem (`MODIFIED`, `MISSING`,
//! `UNLISTED`, `BAD SIGNATURE`, `GAP`, `CHAIN BROKEN`, and `PENDING` with `--strict`), then
//! warnings, then `N/M checkpoints valid, N/M files valid`. Exit status 0 when nothing is wrong,
//! 1 when something is, 2 when verification could not run (bad options, store unreadable).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::NaiveDate;
use genai_audit_store::integrity::verify::{NoProgress, Progress};
use genai_audit_store::integrity::{
    InclusionProof, PublicKey, SignedCheckpoint, VerifyOptions, VerifyReport, prove_file,
    public_key_path, verify,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::integrity::{DEFAULT_INTEGRITY_KEY_FILE, INTEGRITY_KEY_ENV};
use crate::store::{DEFAULT_STORE, STORE_URL_ENV};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Store URL (directory, file://, s3://, gs://, az://); a copy of the store works.
    #[arg(long, value_name = "URL", env = STORE_URL_ENV, default_value = DEFAULT_STORE)]
    store: String,
    /// Public key file (hex, as written next to the signing key as `<key file>.pub`). Repeat
    /// for keys used over time. Default: ./genai-audit-keys/integrity.key.pub, or the public
    /// half of GENAI_AUDIT_INTEGRITY_KEY when that is set.
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
    /// Only hash files of days (the `dt` partition, UTC) from this date on (YYYY-MM-DD).
    /// Checkpoints and manifests are always all checked.
    #[arg(long, value_name = "DATE")]
    from: Option<NaiveDate>,
    /// Only hash files of days up to this date (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    to: Option<NaiveDate>,
    /// Commits not yet covered by a checkpoint are problems (exit 1), not warnings. Use it on a
    /// store whose collectors have stopped (each publishes a last checkpoint at shutdown).
    #[arg(long)]
    strict: bool,
    /// A checkpoint kept from an earlier verification: it must still be in the store,
    /// unchanged. Detects a chain rolled back (newest checkpoints deleted) or replaced. Repeat
    /// for several collectors.
    #[arg(long = "anchor", value_name = "FILE")]
    anchors: Vec<PathBuf>,
    /// Print the inclusion proof of this file (key relative to the store root, e.g.
    /// audit_log/tenant=t/dt=2025-06-14/x.parquet) instead of verifying everything.
    #[arg(long, value_name = "KEY")]
    file: Option<String>,
    /// Files read and hashed at once.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
}

/// Runs `verify`.
pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    if let (Some(f), Some(t)) = (args.from, args.to)
        && f > t
    {
        bail!("--from {f} is after --to {t}");
    }
    let keys = public_keys(args)?;
    let anchors = args
        .anchors
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            SignedCheckpoint::parse(Bytes::from(bytes))
                .map_err(|e| anyhow::anyhow!("{}: not a checkpoint: {e}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let loc = crate::store::open(&args.store)?;
        let mut out = std::io::stdout().lock();
        if let Some(key) = &args.file {
            let proof = prove_file(&loc, key, &keys).await?;
            let ok = write_proof(&mut out, &proof)?;
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        let opts = VerifyOptions {
            public_keys: keys,
            from: args.from,
            to: args.to,
            strict: args.strict,
            concurrency: usize::try_from(args.concurrency).unwrap_or(8),
            anchors,
        };
        let bar = progress_bar();
        let progress: Arc<dyn Progress> = match &bar {
            Some(b) => Arc::new(Bar(b.clone())),
            None => Arc::new(NoProgress),
        };
        let started = Instant::now();
        let report = verify(&loc, &opts, progress)
            .await
            .with_context(|| format!("verifying {loc}"))?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        write_report(&mut out, &report, args, started.elapsed().as_secs_f64())?;
        out.flush()?;
        Ok(if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

fn public_keys(args: &VerifyArgs) -> Result<Vec<PublicKey>> {
    if !args.public_keys.is_empty() {
        return args
            .public_keys
            .iter()
            .map(|p| {
                PublicKey::read(p).with_context(|| format!("reading --public-key {}", p.display()))
            })
            .collect();
    }
    if let Ok(hex) = std::env::var(INTEGRITY_KEY_ENV) {
        let key = genai_audit_store::integrity::IntegrityKey::from_hex(&hex)
            .with_context(|| format!("reading {INTEGRITY_KEY_ENV}"))?;
        return Ok(vec![key.public_key()]);
    }
    let default = public_key_path(DEFAULT_INTEGRITY_KEY_FILE.as_ref());
    if default.exists() {
        return Ok(vec![PublicKey::read(&default)?]);
    }
    bail!(
        "no public key to verify with: give --public-key FILE (the .pub file written next to the integrity key; default {})",
        default.display()
    )
}

fn write_report(
    out: &mut impl Write,
    r: &VerifyReport,
    args: &VerifyArgs,
    secs: f64,
) -> Result<()> {
    for p in &r.problems {
        writeln!(out, "{p}")?;
    }
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if !r.problems.is_empty() || !r.warnings.is_empty() {
        writeln!(out)?;
    }
    let day = |d: Option<NaiveDate>, open: &str| d.map_or(open.to_owned(), |d| d.to_string());
    writeln!(
        out,
        "Results requested for {} to {}",
        day(args.from, "the first day"),
        day(args.to, "the last day")
    )?;
    for (collector, c) in &r.chains {
        writeln!(
            out,
            "Chain {collector}: {} checkpoints, newest {} of {}, tree size {}, commits 1..{}",
            c.checkpoints, c.newest_seq, c.newest_created_at, c.tree_size, c.last_commit
        )?;
    }
    let mib = r.bytes_hashed as f64 / (1024.0 * 1024.0);
    writeln!(
        out,
        "{mib:.1} MiB hashed in {secs:.2} s; {} files pending (committed after the newest checkpoint)",
        r.files_pending
    )?;
    writeln!(
        out,
        "{}/{} checkpoints valid, {}/{} files valid",
        r.checkpoints_valid, r.checkpoints_total, r.files_valid, r.files_total
    )?;
    Ok(())
}

/// Prints an inclusion proof; true when it verifies and the file still has the signed hash.
fn write_proof(out: &mut impl Write, p: &InclusionProof) -> Result<bool> {
    let genai_audit_store::integrity::Leaf::Add(leaf) = &p.leaf else {
        bail!("not a file leaf");
    };
    writeln!(out, "file        {}", p.key)?;
    writeln!(out, "collector   {}", leaf.collector)?;
    writeln!(out, "leaf        {}", const_hex::encode(p.leaf.canonical()))?;
    writeln!(out, "leaf hash   {}", const_hex::encode(p.leaf_hash))?;
    writeln!(out, "leaf index  {}", p.index)?;
    writeln!(out, "checkpoint  {}", p.checkpoint)?;
    writeln!(out, "tree size   {}", p.tree_size)?;
    writeln!(out, "root        {}", const_hex::encode(p.root))?;
    for (i, h) in p.path.iter().enumerate() {
        let label = if i == 0 { "audit path" } else { "" };
        writeln!(out, "{label:<11} {}", const_hex::encode(h))?;
    }
    writeln!(
        out,
        "proof       {}",
        if p.verified { "valid" } else { "INVALID" }
    )?;
    let file_ok = p.current_sha256.as_deref() == Some(leaf.sha256.as_str());
    match &p.current_sha256 {
        Some(sha) if file_ok => writeln!(out, "file sha256 {sha} (matches the leaf)")?,
        Some(sha) => writeln!(
            out,
            "file sha256 {sha} (MODIFIED: the leaf says {})",
            leaf.sha256
        )?,
        None => writeln!(out, "file sha256 - (MISSING from the store)")?,
    }
    Ok(p.verified && file_ok)
}

/// A byte progress bar on stderr when it is a terminal.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    Some(bar)
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, files: u64, bytes: u64) {
        self.0.set_length(bytes);
        self.0.set_message(format!("{files} files"));
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
