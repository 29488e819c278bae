//! Compliance reports over the audit log: what an auditor asks for, computed on the engine's
//! session (SQL, and for the compliance report an in-process fold of the calls) and returned as
//! typed structs that render as Markdown, JSON, CSV or HTML.
//!
//! | report | function | question it answers |
//! |---|---|---|
//! | [`ComplianceReport`] | [`compliance()`] | volume, users, models, tokens, cost, latency, errors, PII and classification over a period |
//! | [`SubjectReport`] | [`subject()`] | GDPR Art. 15: every record of one end user, what was processed, how long it is kept, erasures |
//! | [`CostReport`] | [`cost()`] | cost and tokens by model, user, service, tenant or day |
//!
//! ## Counting rules
//!
//! - **One provider call is counted once.** Reports work on *calls*, not spans: the provider-call
//!   spans (`span_kind` `llm_call` or `embeddings`) grouped by `(tenant, call_id)` (the record id
//!   when `call_id` is NULL), taking the largest tokens, cost and duration of the group. Two
//!   instrumentations wrapping one client, or a span delivered twice, therefore count once; wrapper
//!   spans (`workflow`, `agent`, …) carry no tokens or cost and are not calls. See
//!   [`compliance::CALLS_CTE`].
//! - A call is an error when any of its spans has `status = 'error'`, PII-flagged when any has
//!   `pii_detected`, and its classification is the most sensitive of its spans'.
//! - Money is exact: `DECIMAL(38,12)` sums read back as [`Usd`](genai_audit_core::Usd), never
//!   floats. Calls whose cost is unknown (`cost_source = 'unpriced'`) are not in the cost totals;
//!   they are counted in `unpriced_requests`.
//! - The period ([`Scope`]) filters on `start_time`, so only the days in it are read.
//!
//! ## Example
//!
//! ```
//! use genai_audit_query::report::{self, ReportFormat, Scope};
//! use genai_audit_query::{QueryEngine, QueryOptions};
//! use genai_audit_store::StoreLocation;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let engine = QueryEngine::open(StoreLocation::local(dir.path()).unwrap(), QueryOptions::default())
//!     .await
//!     .unwrap();
//! let scope = Scope::days("2026-03-01".parse().unwrap(), "2026-03-31".parse().unwrap()).unwrap();
//! let report = report::compliance(&engine, &scope).await.unwrap();
//! assert_eq!(report.totals.requests, 0);
//! let mut md = Vec::new();
//! report.render(ReportFormat::Markdown, &mut md).unwrap();
//! assert!(String::from_utf8(md).unwrap().starts_with("# Compliance report"));
//! # });
//! ```

mod calls;
pub mod compliance;
pub mod cost;
mod render;
mod rows;
pub mod subject;

use std::fmt;
use std::io;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

pub use compliance::{
    ComplianceReport, DayRow, LatencyBucket, LatencyStats, ModelRow, NamedCount, Totals, UserRow,
    compliance,
};
pub use cost::{CostBy, CostReport, CostRow, cost};
pub use subject::{
    DataCategories, ErasureReceipt, RetentionRange, Subject, SubjectReport, subject, subject_hash,
};

/// Version of the JSON documents the reports render to (the `version` member). Raised when a
/// member is renamed or removed or changes meaning; adding members keeps it.
pub const REPORT_JSON_VERSION: u32 = 1;

/// The period and tenant a report covers.
///
/// `from` is inclusive and `to` exclusive, both on `start_time`; `None` leaves that side open.
/// The filter is on `start_time`, which the table turns into day (file) pruning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// First instant included.
    pub from: Option<DateTime<Utc>>,
    /// First instant no longer included.
    pub to: Option<DateTime<Utc>>,
    /// Only this tenant's records.
    pub tenant: Option<String>,
}

impl Scope {
    /// Whole UTC days `first..=last` (both included), all tenants. `None` when `last` is before
    /// `first` or the day after `last` does not exist.
    pub fn days(first: NaiveDate, last: NaiveDate) -> Option<Self> {
        if last < first {
            return None;
        }
        Some(Self {
            from: Some(first.and_time(NaiveTime::MIN).and_utc()),
            to: Some(last.succ_opt()?.and_time(NaiveTime::MIN).and_utc()),
            tenant: None,
        })
    }

    /// The same scope restricted to `tenant`.
    pub fn with_tenant(mut self, tenant: Option<String>) -> Self {
        self.tenant = tenant;
        self
    }

    /// The SQL condition selecting this scope's rows of `audit_log` (`TRUE` when unrestricted):
    /// what replaces `{scope}` in the report queries.
    pub fn sql_filter(&self) -> String {
        let mut parts = Vec::new();
        if let Some(from) = self.from {
            parts.push(format!("start_time >= {}", timestamp_literal(from)));
        }
        if let Some(to) = self.to {
            parts.push(format!("start_time < {}", timestamp_literal(to)));
        }
        if let Some(t) = &self.tenant {
            parts.push(format!("tenant = {}", string_literal(t)));
        }
        if parts.is_empty() {
            "TRUE".to_owned()
        } else {
            parts.join(" AND ")
        }
    }

    /// `template` with `{scope}` replaced by [`Self::sql_filter`].
    pub fn apply(&self, template: &str) -> String {
        template.replace("{scope}", &self.sql_filter())
    }

    /// The UTC days the scope covers, when both ends are set: `from`'s day to the day of the
    /// last instant before `to`.
    pub fn day_range(&self) -> Option<(NaiveDate, NaiveDate)> {
        let (from, to) = (self.from?, self.to?);
        let last = (to - chrono::Duration::microseconds(1)).date_naive();
        (to > from).then(|| (from.date_naive(), last))
    }

    /// For people: `2026-03-01 – 2026-03-31 (UTC)`, or the instants when they are not whole
    /// days, with the tenant.
    pub fn describe(&self) -> String {
        let whole = |t: &DateTime<Utc>| t.time() == NaiveTime::MIN;
        let mut s = match (self.from, self.to) {
            (None, None) => "all time".to_owned(),
            (Some(f), Some(t)) if whole(&f) && whole(&t) => match self.day_range() {
                Some((a, b)) if a == b => format!("{a} (UTC)"),
                Some((a, b)) => format!("{a} – {b} (UTC)"),
                None => format!("{} – {} (empty)", rfc3339(f), rfc3339(t)),
            },
            (Some(f), None) if whole(&f) => format!("from {} (UTC)", f.date_naive()),
            (None, Some(t)) if whole(&t) => format!(
                "until {} (UTC)",
                (t - chrono::Duration::microseconds(1)).date_naive()
            ),
            (f, t) => format!(
                "{} – {} (end excluded)",
                f.map_or_else(|| "…".to_owned(), rfc3339),
                t.map_or_else(|| "…".to_owned(), rfc3339)
            ),
        };
        match &self.tenant {
            Some(t) => s.push_str(&format!(", tenant {t}")),
            None => s.push_str(", all tenants"),
        }
        s
    }
}

/// The scope as it appears in JSON: `{"from": RFC 3339 | null, "to": …, "tenant": … | null}`.
impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Scope", 3)?;
        st.serialize_field("from", &self.from.map(rfc3339))?;
        st.serialize_field("to", &self.to.map(rfc3339))?;
        st.serialize_field("tenant", &self.tenant)?;
        st.end()
    }
}

/// The time a report is generated: now, to the second.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(0)
}

/// `2026-03-01T00:00:00Z` (seconds, or microseconds when there are any).
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `TIMESTAMP '2026-03-01T00:00:00.000000Z'`.
fn timestamp_literal(t: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// A SQL string literal: quotes doubled.
pub(crate) fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    /// Markdown for people (`md`).
    Markdown,
    /// One JSON document (`json`), members documented in `docs/reports.md`.
    Json,
    /// CSV (`csv`): see each report for its table(s).
    Csv,
    /// One self-contained HTML file with inline SVG charts (`html`).
    Html,
}

impl ReportFormat {
    /// Every format, in the order they are listed.
    pub const ALL: [ReportFormat; 4] = [Self::Markdown, Self::Json, Self::Csv, Self::Html];

    /// The name used on the command line and as the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Markdown => "md",
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not one of `md`, `json`, `csv`, `html`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: expected md, json, csv or html")]
pub struct UnknownFormat(pub String);

impl FromStr for ReportFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Self::Markdown),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "html" => Ok(Self::Html),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// Any of the reports, for front ends that handle them alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// `report compliance`.
    Compliance(ComplianceReport),
    /// `report subject`.
    Subject(SubjectReport),
    /// `report cost`.
    Cost(CostReport),
}

impl Report {
    /// Writes the report in `format` to `out`.
    pub fn render(&self, format: ReportFormat, out: &mut dyn io::Write) -> io::Result<()> {
        match self {
            Report::Compliance(r) => r.render(format, out),
            Report::Subject(r) => r.render(format, out),
            Report::Cost(r) => r.render(format, out),
        }
    }
}

impl From<ComplianceReport> for Report {
    fn from(r: ComplianceReport) -> Self {
        Report::Compliance(r)
    }
}

impl From<SubjectReport> for Report {
    fn from(r: SubjectReport) -> Self {
        Report::Subject(r)
    }
}

impl From<CostReport> for Report {
    fn from(r: CostReport) -> Self {
        Report::Cost(r)
    }
}

/// Serializes a date as `YYYY-MM-DD` (chrono is built without serde here).
pub(crate) mod serde_date {
    use chrono::NaiveDate;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.format("%Y-%m-%d"))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(&d.format("%Y-%m-%d")),
                None => s.serialize_none(),
            }
        }
    }
}

/// Serializes an instant as RFC 3339 UTC.
pub(crate) mod serde_time {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn days_cover_whole_utc_days_and_quote_the_tenant() {
        let s = Scope::days(day("2026-03-01"), day("2026-03-31"))
            .expect("valid range")
            .with_tenant(Some("o'brien".into()));
        assert_eq!(
            s.sql_filter(),
            "start_time >= TIMESTAMP '2026-03-01T00:00:00.000000Z' AND \
             start_time < TIMESTAMP '2026-04-01T00:00:00.000000Z' AND tenant = 'o''brien'"
        );
        assert_eq!(s.day_range(), Some((day("2026-03-01"), day("2026-03-31"))));
        assert_eq!(
            s.describe(),
            "2026-03-01 – 2026-03-31 (UTC), tenant o'brien"
        );
        assert!(Scope::days(day("2026-03-02"), day("2026-03-01")).is_none());
        assert_eq!(Scope::default().sql_filter(), "TRUE");
        assert_eq!(Scope::default().describe(), "all time, all tenants");
        let until = Scope {
            to: s.to,
            ..Scope::default()
        };
        assert_eq!(until.describe(), "until 2026-03-31 (UTC), all tenants");
        let from = Scope {
            from: s.from,
            ..Scope::default()
        };
        assert_eq!(from.describe(), "from 2026-03-01 (UTC), all tenants");
    }

    #[test]
    fn formats_parse_by_name() {
        for f in ReportFormat::ALL {
            assert_eq!(f.as_str().parse::<ReportFormat>(), Ok(f));
        }
        assert!("pdf".parse::<ReportFormat>().is_err());
    }
}
