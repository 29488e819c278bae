//! `genai-audit report`: compliance, subject-access and cost reports over the committed audit
//! log, as Markdown, JSON, CSV or a self-contained HTML page.
//!
//! The figures come from `genai_audit_query::report`; this module parses the command line,
//! opens the store, and writes the rendered report to stdout or `--output`.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::{Subcommand, ValueEnum};
use genai_audit_query::report::{
    self, CostBy, ErasureReceipt, Report, ReportFormat, Scope, Subject,
};
use genai_audit_query::{QueryEngine, QueryOptions};
use genai_audit_store::StoreLocation;

use crate::query::{check_local_store_exists, load_hash_key, no_records, open_cluster};
use crate::store::StoreArgs;

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    kind: ReportKind,
}

#[derive(Debug, Subcommand)]
enum ReportKind {
    /// Requests, users, models, tokens, cost, latency, errors, PII and data classification over
    /// a period; per model, top 10 users by requests and by cost, per day.
    ///
    /// Each provider call is counted once (spans grouped by call_id), so duplicated and wrapper
    /// spans never add tokens or cost.
    Compliance(ComplianceArgs),
    /// GDPR Art. 15 subject-access export: every record of one end user (all columns but the
    /// content hashes), the categories of data processed, retention dates and erasure receipts.
    Subject(SubjectArgs),
    /// Cost and tokens grouped by model, user, service, tenant or day.
    Cost(CostArgs),
}

/// Options every report takes.
#[derive(Debug, clap::Args)]
struct CommonArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Output format: `md` (Markdown), `json` (one document), `csv`, `html` (one
    /// self-contained page with charts).
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Run the report's queries on the Apache DataFusion Ballista cluster whose scheduler is at
    /// df://HOST:PORT instead of in this process (docs/operations.md, "Querying at scale").
    /// Needs a binary built with the cargo feature `cluster`.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,
}

/// The period: `--from` / `--to` as UTC dates (whole days, both included) or RFC 3339
/// instants (`--to` then excluded).
#[derive(Debug, clap::Args)]
struct PeriodArgs {
    /// First day (YYYY-MM-DD, UTC) or instant (RFC 3339) included.
    #[arg(long, value_name = "DATE", value_parser = parse_from)]
    from: Option<DateTime<Utc>>,
    /// Last day included (YYYY-MM-DD, UTC), or the first instant (RFC 3339) no longer included.
    #[arg(long, value_name = "DATE", value_parser = parse_to)]
    to: Option<DateTime<Utc>>,
}

#[derive(Debug, clap::Args)]
struct ComplianceArgs {
    /// First day (YYYY-MM-DD, UTC) or instant (RFC 3339) included.
    #[arg(long, value_name = "DATE", value_parser = parse_from)]
    from: DateTime<Utc>,
    /// Last day included (YYYY-MM-DD, UTC), or the first instant (RFC 3339) no longer included.
    #[arg(long, value_name = "DATE", value_parser = parse_to)]
    to: DateTime<Utc>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["user", "subject_hash"]))]
struct SubjectArgs {
    /// The end user's id (`user_id`). With the hash key (GENAI_AUDIT_HASH_KEY or the key file)
    /// its keyed hash is computed too, which finds the erasure receipts.
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// The subject's keyed hash (hex), as erasure receipts name it: for a subject whose raw id
    /// was erased.
    #[arg(long, value_name = "HEX")]
    subject_hash: Option<String>,
    #[command(flatten)]
    period: PeriodArgs,
    /// File holding the content hash key (hex). Read, never created. `GENAI_AUDIT_HASH_KEY`
    /// (hex) takes precedence; default: `./genai-audit-keys/hash.key` when it exists.
    #[arg(long, value_name = "FILE")]
    hash_key_file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, clap::Args)]
struct CostArgs {
    /// What to group by.
    #[arg(long, value_enum)]
    by: By,
    #[command(flatten)]
    period: PeriodArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Markdown.
    Md,
    /// JSON.
    Json,
    /// CSV.
    Csv,
    /// Self-contained HTML with inline SVG charts.
    Html,
}

impl From<Format> for ReportFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Md => ReportFormat::Markdown,
            Format::Json => ReportFormat::Json,
            Format::Csv => ReportFormat::Csv,
            Format::Html => ReportFormat::Html,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum By {
    /// Response model, else requested model.
    Model,
    /// End user.
    User,
    /// `service.name`.
    Service,
    /// Tenant.
    Tenant,
    /// UTC day.
    Day,
}

impl From<By> for CostBy {
    fn from(b: By) -> Self {
        match b {
            By::Model => CostBy::Model,
            By::User => CostBy::User,
            By::Service => CostBy::Service,
            By::Tenant => CostBy::Tenant,
            By::Day => CostBy::Day,
        }
    }
}

/// `YYYY-MM-DD` (that day's start, UTC) or an RFC 3339 instant.
fn parse_from(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, false)
}

/// `YYYY-MM-DD` (the next day's start, UTC: the day is included) or an RFC 3339 instant.
fn parse_to(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, true)
}

fn parse_time(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = if end_of_day {
            day.succ_opt()
                .ok_or_else(|| format!("{s} is the last day there is"))?
        } else {
            day
        };
        return Ok(day.and_time(NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "{s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time (2026-03-01T00:00:00Z)"
            )
        })
}

/// Runs `report`. Exit status 0 when the report was written; errors (store unreachable,
/// nothing committed, bad options) are fatal (2).
pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    let (common, from, to) = match &args.kind {
        ReportKind::Compliance(a) => (&a.common, Some(a.from), Some(a.to)),
        ReportKind::Subject(a) => (&a.common, a.period.from, a.period.to),
        ReportKind::Cost(a) => (&a.common, a.period.from, a.period.to),
    };
    if let (Some(f), Some(t)) = (from, to)
        && t <= f
    {
        bail!("the period is empty: --to must be after --from");
    }
    let scope = Scope {
        from,
        to,
        tenant: common.store.tenant.clone(),
    };
    let hash_key = match &args.kind {
        ReportKind::Subject(a) if a.user.is_some() => load_hash_key(a.hash_key_file.as_deref())?,
        _ => None,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report: Report = rt.block_on(async {
        let store = &common.store;
        check_local_store_exists(&store.store)?;
        let loc = crate::store::open(&store.store)?;
        let options = QueryOptions {
            tenant: store.tenant.clone(),
            ..QueryOptions::default()
        };
        let engine = match &common.cluster {
            None => QueryEngine::open(loc.clone(), options).await,
            Some(scheduler) => open_cluster(loc.clone(), options, scheduler).await?,
        }
        .with_context(|| format!("reading the commits of {}", store.store))?;
        if engine.summary().files == 0 {
            bail!("{}", no_records(&store.store, store.tenant.as_deref()));
        }
        Ok(match &args.kind {
            ReportKind::Compliance(_) => report::compliance(&engine, &scope).await?.into(),
            ReportKind::Cost(a) => report::cost(&engine, &scope, a.by.into()).await?.into(),
            ReportKind::Subject(a) => {
                let subject = match (&a.user, &a.subject_hash) {
                    (Some(user), _) => Subject::user(user.as_str(), hash_key.as_ref()),
                    (None, hash) => Subject {
                        user_id: None,
                        subject_hash: hash.as_ref().map(|h| h.to_ascii_lowercase()),
                    },
                };
                if subject.subject_hash.is_none() {
                    tracing::warn!("no hash key: erasure receipts, which name subjects by their keyed hash, cannot be matched");
                }
                let receipts = match &subject.subject_hash {
                    Some(h) => erasure_receipts(&loc, h).await?,
                    None => Vec::new(),
                };
                report::subject(&engine, &subject, &scope).await?.with_erasures(receipts).into()
            }
        })
    })?;
    write_report(&report, common.format.into(), common.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The erasure receipts of the subject with keyed hash `subject_hash`.
async fn erasure_receipts(loc: &StoreLocation, subject_hash: &str) -> Result<Vec<ErasureReceipt>> {
    let commits = genai_audit_store::erasure::receipts(loc, subject_hash)
        .await
        .context("reading erasure receipts")?;
    Ok(commits
        .iter()
        .filter_map(ErasureReceipt::from_commit)
        .collect())
}

/// Writes the report to `path` or stdout. A file is written only once the report is rendered
/// whole, so a failure leaves no half report behind.
fn write_report(report: &Report, format: ReportFormat, path: Option<&Path>) -> Result<()> {
    match path {
        None => {
            let mut out = BufWriter::new(io::stdout().lock());
            report
                .render(format, &mut out)
                .context("writing the report")?;
            out.flush().context("writing the report")?;
        }
        Some(path) => {
            let mut buf = Vec::new();
            report
                .render(format, &mut buf)
                .context("rendering the report")?;
            std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_days_and_instants_are_exact() {
        assert_eq!(
            parse_from("2026-03-01").map(|t| t.to_rfc3339()),
            Ok("2026-03-01T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_to("2026-03-31").map(|t| t.to_rfc3339()),
            Ok("2026-04-01T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_to("2026-03-31T12:00:00+02:00").map(|t| t.to_rfc3339()),
            Ok("2026-03-31T10:00:00+00:00".to_owned())
        );
        assert!(
            parse_from("March 1st")
                .unwrap_err()
                .contains("neither a date")
        );
    }
}
