//! `report subject`: a GDPR Art. 15 subject-access export of one end user — every record of that
//! user (all columns except the content hashes), which categories of data were processed, how
//! long the records are kept, and the erasures made for that user.
//!
//! After an erasure that pseudonymized or deleted the user's records the raw id is gone: the
//! report then finds no records, and shows the erasure receipts, which name the subject only by
//! its keyed hash ([`subject_hash`]).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::arrow::util::display::array_value_to_string;
use genai_audit_core::{HashKey, Usd};
use genai_audit_store::manifest::Commit;
use serde::Serialize;
use serde_json::{Map, Value};

use super::rows::collect;
use super::{Scope, string_literal};
use crate::QueryEngine;
use crate::describe::audit_log_columns;
use crate::error::Result;

/// Columns left out of the export: the keyed hashes of the prompt and response text (and the id
/// of their key). They are derived from content, are meaningless without the deployment's key,
/// and are not needed to tell the subject what was processed (`content_captured`,
/// `prompt_chars` and `response_chars` say that).
pub const SUBJECT_EXCLUDED_COLUMNS: [&str; 3] = ["prompt_hash", "response_hash", "hash_key_id"];

/// Columns that hold personal data of the subject besides the PII types, in the order
/// [`DataCategories::personal_data`] lists them.
const PERSONAL_COLUMNS: [&str; 4] = ["user_id", "session_id", "client_address", "user_agent"];

/// The keyed hash that names a subject in erasure receipts (the one `genai-audit erase` writes).
pub use genai_audit_store::erasure::subject_hash;

/// Whom a subject report is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// The raw end-user id (`user_id`), when known.
    pub user_id: Option<String>,
    /// Its keyed hash ([`subject_hash`]), when the hash key is available or the auditor has only
    /// the hash.
    pub subject_hash: Option<String>,
}

impl Subject {
    /// The subject `user_id`, with its hash when `key` is given.
    pub fn user(user_id: impl Into<String>, key: Option<&HashKey>) -> Self {
        let user_id = user_id.into();
        Self {
            subject_hash: key.map(|k| subject_hash(k, &user_id)),
            user_id: Some(user_id),
        }
    }

    /// The SQL condition selecting the subject's records: `user_id` equal to the raw id or to
    /// the hash (a pseudonymized record may carry it); `FALSE` when neither is known.
    pub fn sql_filter(&self) -> String {
        let ids: Vec<String> = self
            .user_id
            .iter()
            .chain(&self.subject_hash)
            .map(|s| string_literal(s))
            .collect();
        if ids.is_empty() {
            "FALSE".to_owned()
        } else {
            format!("user_id IN ({})", ids.join(", "))
        }
    }
}

/// The subject's records: every column of `audit_log` except [`SUBJECT_EXCLUDED_COLUMNS`], in
/// time order. `{subject}` and `{scope}` are replaced by [`Subject::sql_filter`] and
/// [`Scope::sql_filter`]; see [`subject_sql`].
pub fn subject_sql(subject: &Subject, scope: &Scope) -> String {
    let columns: Vec<String> = subject_columns()
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    scope.apply(&format!(
        "SELECT {} FROM audit_log WHERE {} AND {{scope}} ORDER BY start_time, record_id",
        columns.join(", "),
        subject.sql_filter()
    ))
}

/// The exported columns, in table order.
pub fn subject_columns() -> Vec<String> {
    audit_log_columns()
        .into_iter()
        .map(|c| c.name)
        .filter(|n| !SUBJECT_EXCLUDED_COLUMNS.contains(&n.as_str()))
        .collect()
}

/// A subject-access report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectReport {
    /// Whom it is about.
    pub subject: Subject,
    /// Period and tenant covered.
    pub scope: Scope,
    /// When the report was computed.
    #[serde(with = "super::serde_time")]
    pub generated_at: DateTime<Utc>,
    /// Exported columns, in order (the members of each record).
    pub columns: Vec<String>,
    /// Every record, oldest first: column → value (text, number, boolean, list of text or
    /// null; money as an exact decimal string, times as RFC 3339 UTC, dates `YYYY-MM-DD`).
    pub records: Vec<Map<String, Value>>,
    /// What was processed.
    pub categories: DataCategories,
    /// How long the records are kept.
    pub retention: RetentionRange,
    /// Erasures made for this subject, oldest first.
    pub erasures: Vec<ErasureReceipt>,
}

/// The categories of data processed about the subject (GDPR Art. 15(1)(b)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DataCategories {
    /// Personal-data columns that hold a value in some record (`user_id`, `session_id`,
    /// `client_address`, `user_agent`).
    pub personal_data: Vec<String>,
    /// Records whose telemetry carried prompt or response text (stored only as keyed hashes and
    /// character counts).
    pub records_with_content: u64,
    /// Models used (response model, else requested).
    pub models: Vec<String>,
    /// Providers the data was sent to.
    pub providers: Vec<String>,
    /// Services that made the calls.
    pub services: Vec<String>,
    /// Data classifications of the records.
    pub classifications: Vec<String>,
    /// PII types found in the content (never the values).
    pub pii_types: Vec<String>,
    /// First and last `start_time` (RFC 3339), when there are records.
    pub first_record: Option<String>,
    /// Last `start_time`.
    pub last_record: Option<String>,
}

/// Retention of the subject's records (`retention_until`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionRange {
    /// Earliest `retention_until`: the first record may be deleted after this day.
    #[serde(with = "super::serde_date::option")]
    pub earliest: Option<NaiveDate>,
    /// Latest `retention_until`: every record is due for deletion after this day.
    #[serde(with = "super::serde_date::option")]
    pub latest: Option<NaiveDate>,
    /// Records without a retention date.
    pub records_without_date: u64,
}

/// An erasure made for a subject: a manifest commit of kind `erasure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureReceipt {
    /// Commit number (per collector).
    pub commit: u64,
    /// Collector (or tool) that made the commit.
    pub collector_id: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// `pseudonymize` or `delete`.
    pub mode: String,
    /// The subject's keyed hash ([`subject_hash`]).
    pub subject_hash: String,
    /// The request's stated reason.
    pub reason: String,
}

/// The manifest commit kind of erasures.
pub const ERASURE_KIND: &str = "erasure";

impl ErasureReceipt {
    /// The receipt an erasure commit carries: kind `erasure`, reason
    /// `subject=<hex> mode=<mode> request=<text>`. `None` for other commits or a reason not in
    /// that form.
    pub fn from_commit(c: &Commit) -> Option<Self> {
        if c.kind != ERASURE_KIND {
            return None;
        }
        let reason = c.reason.as_deref()?;
        let rest = reason.strip_prefix("subject=")?;
        let (subject_hash, rest) = rest.split_once(' ')?;
        let rest = rest.strip_prefix("mode=")?;
        let (mode, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let request = rest.strip_prefix("request=").unwrap_or(rest);
        Some(Self {
            commit: c.commit,
            collector_id: c.collector_id.clone(),
            created_at: c.created_at.clone(),
            mode: mode.to_owned(),
            subject_hash: subject_hash.to_owned(),
            reason: request.to_owned(),
        })
    }
}

impl SubjectReport {
    /// The report with these erasure receipts (sorted oldest first).
    pub fn with_erasures(mut self, mut receipts: Vec<ErasureReceipt>) -> Self {
        receipts.sort_by(|a, b| {
            (&a.created_at, &a.collector_id, a.commit).cmp(&(
                &b.created_at,
                &b.collector_id,
                b.commit,
            ))
        });
        self.erasures = receipts;
        self
    }
}

/// Computes the subject-access report of `subject` within `scope` on `engine`. Erasure receipts
/// come from the store's manifests: add them with [`SubjectReport::with_erasures`].
pub async fn subject(
    engine: &QueryEngine,
    subject: &Subject,
    scope: &Scope,
) -> Result<SubjectReport> {
    let columns = subject_columns();
    let batches = collect(engine, &subject_sql(subject, scope)).await?;
    let mut records = Vec::new();
    for batch in &batches {
        records.extend(batch_to_json(batch)?);
    }
    let categories = categories(&records);
    let retention = retention(&records);
    Ok(SubjectReport {
        subject: subject.clone(),
        scope: scope.clone(),
        generated_at: super::now(),
        columns,
        records,
        categories,
        retention,
        erasures: Vec::new(),
    })
}

fn text<'a>(r: &'a Map<String, Value>, column: &str) -> Option<&'a str> {
    r.get(column).and_then(Value::as_str)
}

fn categories(records: &[Map<String, Value>]) -> DataCategories {
    let collect = |f: &dyn Fn(&Map<String, Value>) -> Vec<String>| -> Vec<String> {
        records
            .iter()
            .flat_map(f)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let one = |column: &'static str| {
        move |r: &Map<String, Value>| text(r, column).map(str::to_owned).into_iter().collect()
    };
    let model = |r: &Map<String, Value>| {
        text(r, "response_model")
            .or_else(|| text(r, "request_model"))
            .map(str::to_owned)
            .into_iter()
            .collect()
    };
    let pii = |r: &Map<String, Value>| {
        r.get("pii_types")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let times: Vec<&str> = records
        .iter()
        .filter_map(|r| text(r, "start_time"))
        .collect();
    DataCategories {
        personal_data: PERSONAL_COLUMNS
            .iter()
            .filter(|c| records.iter().any(|r| text(r, c).is_some()))
            .map(|c| (*c).to_owned())
            .collect(),
        records_with_content: records
            .iter()
            .filter(|r| r.get("content_captured") == Some(&Value::Bool(true)))
            .count() as u64,
        models: collect(&model),
        providers: collect(&one("provider")),
        services: collect(&one("service_name")),
        classifications: collect(&one("data_classification")),
        pii_types: collect(&pii),
        // Records are in start_time order.
        first_record: times.first().map(|s| (*s).to_owned()),
        last_record: times.last().map(|s| (*s).to_owned()),
    }
}

fn retention(records: &[Map<String, Value>]) -> RetentionRange {
    let days: Vec<NaiveDate> = records
        .iter()
        .filter_map(|r| text(r, "retention_until"))
        .filter_map(|d| d.parse().ok())
        .collect();
    RetentionRange {
        earliest: days.iter().min().copied(),
        latest: days.iter().max().copied(),
        records_without_date: (records.len() - days.len()) as u64,
    }
}

/// One JSON object per row: column → value (see [`SubjectReport::records`]).
fn batch_to_json(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>> {
    let schema = batch.schema();
    let mut rows = vec![Map::new(); batch.num_rows()];
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
        for (i, row) in rows.iter_mut().enumerate() {
            row.insert(field.name().clone(), json_value(col, i)?);
        }
    }
    Ok(rows)
}

fn json_value(col: &ArrayRef, i: usize) -> Result<Value> {
    if col.is_null(i) {
        return Ok(Value::Null);
    }
    Ok(match col.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Value::String(array_value_to_string(col, i)?)
        }
        DataType::Boolean => Value::Bool(col.as_boolean().value(i)),
        DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(i)),
        DataType::Int32 => Value::from(col.as_primitive::<Int32Type>().value(i)),
        DataType::Float64 => {
            serde_json::Number::from_f64(col.as_primitive::<Float64Type>().value(i))
                .map_or(Value::Null, Value::Number)
        }
        DataType::Decimal128(_, scale) if *scale == genai_audit_core::money::USD_SCALE => {
            Value::String(Usd::from_raw(col.as_primitive::<Decimal128Type>().value(i)).to_string())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let us = col.as_primitive::<TimestampMicrosecondType>().value(i);
            DateTime::from_timestamp_micros(us).map_or(Value::Null, |t| {
                Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            })
        }
        DataType::Date32 => {
            let days = col.as_primitive::<Date32Type>().value(i);
            NaiveDate::from_num_days_from_ce_opt(days + 719_163).map_or(Value::Null, |d| {
                Value::String(d.format("%Y-%m-%d").to_string())
            })
        }
        DataType::List(_) => {
            let list = col.as_list::<i32>().value(i);
            let mut items = Vec::with_capacity(list.len());
            for j in 0..list.len() {
                items.push(json_value(&list, j)?);
            }
            Value::Array(items)
        }
        _ => Value::String(array_value_to_string(col, i)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(kind: &str, reason: Option<&str>) -> Commit {
        Commit {
            version: 1,
            collector_id: "erase-cli".into(),
            commit: 7,
            kind: kind.into(),
            wal_first: None,
            wal_last: None,
            added: Vec::new(),
            removed: Vec::new(),
            reason: reason.map(str::to_owned),
            created_at: "2026-12-01T10:00:00Z".into(),
        }
    }

    #[test]
    fn receipts_are_read_from_erasure_commits_only() {
        let r = ErasureReceipt::from_commit(&commit(
            "erasure",
            Some("subject=abc123 mode=pseudonymize request=ticket 42: user asked"),
        ))
        .expect("an erasure receipt");
        assert_eq!(r.subject_hash, "abc123");
        assert_eq!(r.mode, "pseudonymize");
        assert_eq!(r.reason, "ticket 42: user asked");
        assert_eq!((r.commit, r.collector_id.as_str()), (7, "erase-cli"));
        assert!(
            ErasureReceipt::from_commit(&commit("compaction", Some("subject=x mode=y"))).is_none()
        );
        assert!(ErasureReceipt::from_commit(&commit("erasure", None)).is_none());
        assert!(ErasureReceipt::from_commit(&commit("erasure", Some("by hand"))).is_none());
    }

    #[test]
    fn subject_filter_matches_the_id_and_its_hash_quoted() {
        let key = HashKey::new(&[1u8; 32]).expect("a valid key");
        let s = Subject::user("o'neil", Some(&key));
        let hash = key.hash("o'neil");
        assert_eq!(s.sql_filter(), format!("user_id IN ('o''neil', '{hash}')"));
        assert_eq!(Subject::default().sql_filter(), "FALSE");
        let cols = subject_columns();
        assert!(
            cols.iter()
                .all(|c| !SUBJECT_EXCLUDED_COLUMNS.contains(&c.as_str()))
        );
        assert!(cols.contains(&"user_id".to_owned()) && cols.contains(&"dt".to_owned()));
    }
}
