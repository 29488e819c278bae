//! `genai-audit compact`: merge the small files of closed days into large ones.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use genai_audit_store::Committer;
use genai_audit_store::manifest::Snapshot;

/// Arguments of `compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// Store URL (directory, file://, s3://, gs://, az://).
    #[arg(long, value_name = "URL", env = "GENAI_AUDIT_STORE_URL", default_value = crate::store::DEFAULT_STORE)]
    store: String,
    /// Only this tenant.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Only days before this date (YYYY-MM-DD). Default: before today (UTC), so a day that
    /// collectors may still be writing is never compacted.
    #[arg(long, value_name = "DATE")]
    before: Option<NaiveDate>,
    /// Compact a partition only when it has at least this many files.
    #[arg(long, default_value_t = 4)]
    min_files: usize,
    /// Rows per output file.
    #[arg(long, default_value_t = 1_000_000)]
    max_file_rows: usize,
    /// Collector id the compaction commits are made as.
    #[arg(long, value_name = "ID", default_value = "compactor")]
    collector_id: String,
    #[command(flatten)]
    integrity: crate::integrity::IntegrityKeyArgs,
}

/// Runs `compact`.
pub fn run(args: &CompactArgs) -> Result<ExitCode> {
    let key = args.integrity.load()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let loc = crate::store::open(&args.store)?;
        let before = args
            .before
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let snapshot = Snapshot::load(&loc)
            .await
            .context("reading the store's commits")?;
        let partitions: BTreeSet<(String, String)> = snapshot
            .files
            .values()
            .filter(|f| args.tenant.as_ref().is_none_or(|t| *t == f.tenant))
            .map(|f| (f.tenant.clone(), f.dt.clone()))
            .collect();
        let committer =
            Committer::new(loc.clone(), &args.collector_id)?.with_max_file_rows(args.max_file_rows);
        let (mut compacted, mut files_in, mut files_out, mut rows) = (0, 0, 0, 0);
        for (tenant, dt) in partitions {
            let day = NaiveDate::parse_from_str(&dt, "%Y-%m-%d")
                .with_context(|| format!("partition dt={dt} is not a date"))?;
            if day >= before {
                continue;
            }
            let report = committer
                .compact_partition(&tenant, day, args.min_files)
                .await
                .with_context(|| format!("compacting tenant={tenant}/dt={dt}"))?;
            if report.commit > 0 {
                compacted += 1;
                files_in += report.files_removed.len();
                files_out += report.files_added.len();
                rows += report.records;
                tracing::info!(
                    tenant,
                    dt,
                    files_in = report.files_removed.len(),
                    files_out = report.files_added.len(),
                    rows = report.records,
                    "compacted"
                );
            }
        }
        crate::integrity::publish_after_commit(&loc, &args.collector_id, &key, "compaction")
            .await?;
        #[allow(clippy::print_stdout)]
        {
            println!("partitions compacted: {compacted}");
            println!("files: {files_in} -> {files_out}");
            println!("rows rewritten (unchanged): {rows}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
