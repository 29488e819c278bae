//! Markdown for people: a title, the scope, then one table per section. Every value taken from
//! the data is escaped, so a model name can neither break a table nor inject HTML into a
//! renderer.

use std::io;

use serde_json::Value;

use super::{COUNTING_NOTE, UNKNOWN, count, dollars, millis, percent};
use crate::report::compliance::{LatencyStats, TOP_USERS, UserRow};
use crate::report::{ComplianceReport, CostReport, SubjectReport, rfc3339};

/// Escapes text for a Markdown table cell: backslash, pipe, angle brackets, backtick, brackets
/// and emphasis stars are backslash-escaped; line breaks become spaces.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '<' | '>' | '`' | '[' | ']' | '*' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn table(
    out: &mut dyn io::Write,
    header: &[&str],
    right: &[bool],
    rows: &[Vec<String>],
) -> io::Result<()> {
    writeln!(out, "| {} |", header.join(" | "))?;
    let align: Vec<&str> = right
        .iter()
        .map(|r| if *r { "---:" } else { "---" })
        .collect();
    writeln!(out, "|{}|", align.join("|"))?;
    for row in rows {
        writeln!(out, "| {} |", row.join(" | "))?;
    }
    writeln!(out)
}

fn latency_cells(l: &LatencyStats) -> [String; 4] {
    [
        millis(l.avg_ms),
        millis(l.p50_ms),
        millis(l.p95_ms),
        millis(l.p99_ms),
    ]
}

fn header(
    out: &mut dyn io::Write,
    title: &str,
    scope: &crate::report::Scope,
    generated: chrono::DateTime<chrono::Utc>,
) -> io::Result<()> {
    writeln!(out, "# {title}\n")?;
    writeln!(out, "- **Period:** {}", esc(&scope.describe()))?;
    writeln!(
        out,
        "- **Generated:** {} by genai-audit\n",
        rfc3339(generated)
    )
}

pub(super) fn compliance(r: &ComplianceReport, out: &mut dyn io::Write) -> io::Result<()> {
    header(out, "Compliance report", &r.scope, r.generated_at)?;
    writeln!(out, "> {COUNTING_NOTE}\n")?;
    let t = &r.totals;
    writeln!(out, "## Summary\n")?;
    let summary = [
        ("Requests (provider calls)", count(t.requests)),
        ("Provider-call spans", count(t.provider_spans)),
        ("Unique users", count(t.unique_users)),
        ("Calls without a user", count(t.requests_without_user)),
        ("Models used", count(t.models_used)),
        ("Input tokens", count(t.input_tokens)),
        ("Output tokens", count(t.output_tokens)),
        ("Total cost", dollars(t.cost_usd)),
        ("Unpriced calls", count(t.unpriced_requests)),
        (
            "Errors",
            format!("{} ({})", count(t.errors), percent(t.error_rate)),
        ),
        ("PII-flagged calls", count(t.pii_flagged_requests)),
    ];
    let rows: Vec<Vec<String>> = summary
        .into_iter()
        .map(|(k, v)| vec![k.to_owned(), v])
        .collect();
    table(out, &["Metric", "Value"], &[false, true], &rows)?;

    writeln!(out, "## Latency\n")?;
    table(
        out,
        &["avg", "p50", "p95", "p99"],
        &[true; 4],
        &[latency_cells(&r.latency).to_vec()],
    )?;
    let rows: Vec<Vec<String>> = r
        .latency_histogram
        .iter()
        .map(|b| vec![esc(&b.label), count(b.requests)])
        .collect();
    table(out, &["Latency", "Calls"], &[false, true], &rows)?;

    writeln!(out, "## PII-flagged calls by type\n")?;
    if r.pii_types.is_empty() {
        writeln!(out, "No PII was found in the period's calls.\n")?;
    } else {
        let rows: Vec<Vec<String>> = r
            .pii_types
            .iter()
            .map(|p| vec![esc(&p.name), count(p.requests)])
            .collect();
        table(out, &["PII type", "Calls"], &[false, true], &rows)?;
    }

    writeln!(out, "## Calls by data classification\n")?;
    let rows: Vec<Vec<String>> = r
        .classifications
        .iter()
        .map(|c| vec![esc(&c.name), count(c.requests)])
        .collect();
    table(out, &["Classification", "Calls"], &[false, true], &rows)?;

    writeln!(out, "## Per model\n")?;
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            let mut row = vec![
                esc(m.model.as_deref().unwrap_or(UNKNOWN)),
                count(m.requests),
                count(m.input_tokens),
                count(m.output_tokens),
                dollars(m.cost_usd),
                count(m.unpriced_requests),
                count(m.errors),
            ];
            row.extend(latency_cells(&m.latency));
            row
        })
        .collect();
    table(
        out,
        &[
            "Model",
            "Requests",
            "Input tokens",
            "Output tokens",
            "Cost",
            "Unpriced",
            "Errors",
            "avg",
            "p50",
            "p95",
            "p99",
        ],
        &[
            false, true, true, true, true, true, true, true, true, true, true,
        ],
        &rows,
    )?;

    for (title, users) in [
        (
            format!("Top {TOP_USERS} users by requests"),
            &r.top_users_by_requests,
        ),
        (
            format!("Top {TOP_USERS} users by cost"),
            &r.top_users_by_cost,
        ),
    ] {
        writeln!(out, "## {title}\n")?;
        users_table(out, users)?;
    }

    writeln!(out, "## Per day\n")?;
    let rows: Vec<Vec<String>> = r
        .days
        .iter()
        .map(|d| {
            vec![
                d.day.format("%Y-%m-%d").to_string(),
                count(d.requests),
                count(d.unique_users),
                count(d.input_tokens),
                count(d.output_tokens),
                dollars(d.cost_usd),
                count(d.errors),
                millis(d.latency.p50_ms),
                millis(d.latency.p95_ms),
            ]
        })
        .collect();
    table(
        out,
        &[
            "Day (UTC)",
            "Requests",
            "Users",
            "Input tokens",
            "Output tokens",
            "Cost",
            "Errors",
            "p50",
            "p95",
        ],
        &[false, true, true, true, true, true, true, true, true],
        &rows,
    )
}

fn users_table(out: &mut dyn io::Write, users: &[UserRow]) -> io::Result<()> {
    if users.is_empty() {
        return writeln!(out, "No calls with a user id.\n");
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            vec![
                (i + 1).to_string(),
                esc(&u.user_id),
                count(u.requests),
                count(u.input_tokens),
                count(u.output_tokens),
                dollars(u.cost_usd),
                count(u.errors),
            ]
        })
        .collect();
    table(
        out,
        &[
            "#",
            "User",
            "Requests",
            "Input tokens",
            "Output tokens",
            "Cost",
            "Errors",
        ],
        &[true, false, true, true, true, true, true],
        &rows,
    )
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.iter().map(|s| esc(s)).collect::<Vec<_>>().join(", ")
    }
}

/// Columns of the records table in Markdown and HTML (every column is in JSON and CSV).
pub(crate) const SUBJECT_TABLE_COLUMNS: [(&str, &str); 13] = [
    ("start_time", "Start (UTC)"),
    ("tenant", "Tenant"),
    ("service_name", "Service"),
    ("provider", "Provider"),
    ("response_model", "Model"),
    ("span_kind", "Kind"),
    ("status", "Status"),
    ("input_tokens", "Input tokens"),
    ("output_tokens", "Output tokens"),
    ("total_cost_usd", "Cost (USD)"),
    ("pii_types", "PII types"),
    ("data_classification", "Classification"),
    ("retention_until", "Kept until"),
];

/// A record value as text for a table cell (unescaped).
pub(crate) fn value_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

pub(super) fn subject(r: &SubjectReport, out: &mut dyn io::Write) -> io::Result<()> {
    header(
        out,
        "Subject access report (GDPR Art. 15)",
        &r.scope,
        r.generated_at,
    )?;
    match (&r.subject.user_id, &r.subject.subject_hash) {
        (Some(id), Some(h)) => writeln!(
            out,
            "- **Subject:** user {} (keyed hash {})\n",
            esc(id),
            esc(h)
        )?,
        (Some(id), None) => writeln!(out, "- **Subject:** user {}\n", esc(id))?,
        (None, Some(h)) => writeln!(out, "- **Subject:** keyed hash {}\n", esc(h))?,
        (None, None) => writeln!(out, "- **Subject:** none given\n")?,
    }
    let c = &r.categories;
    writeln!(out, "## Summary\n")?;
    let rows = vec![
        vec!["Records".to_owned(), count(r.records.len() as u64)],
        vec![
            "First record".to_owned(),
            esc(c.first_record.as_deref().unwrap_or("–")),
        ],
        vec![
            "Last record".to_owned(),
            esc(c.last_record.as_deref().unwrap_or("–")),
        ],
        vec!["Erasures".to_owned(), count(r.erasures.len() as u64)],
    ];
    table(out, &["Item", "Value"], &[false, true], &rows)?;

    writeln!(out, "## Data processed\n")?;
    writeln!(out, "- **Personal data held:** {}", list(&c.personal_data))?;
    writeln!(
        out,
        "- **Content:** {} record(s) carried prompt or response text; genai-audit stored only keyed hashes and character counts, never the text",
        count(c.records_with_content)
    )?;
    writeln!(out, "- **Models:** {}", list(&c.models))?;
    writeln!(
        out,
        "- **Providers the data was sent to:** {}",
        list(&c.providers)
    )?;
    writeln!(out, "- **Services:** {}", list(&c.services))?;
    writeln!(
        out,
        "- **Data classifications:** {}",
        list(&c.classifications)
    )?;
    writeln!(
        out,
        "- **PII types found (never the values):** {}\n",
        list(&c.pii_types)
    )?;

    writeln!(out, "## Retention\n")?;
    match (r.retention.earliest, r.retention.latest) {
        (Some(a), Some(b)) if a == b => {
            writeln!(out, "Records are kept until {a} (`retention_until`, UTC).")?
        }
        (Some(a), Some(b)) => writeln!(
            out,
            "Records are kept until {a} at the earliest and {b} at the latest (`retention_until`, UTC)."
        )?,
        _ => writeln!(out, "No record carries a retention date.")?,
    }
    if r.retention.records_without_date > 0 {
        writeln!(
            out,
            "{} record(s) have no retention date.",
            count(r.retention.records_without_date)
        )?;
    }
    writeln!(out)?;

    writeln!(out, "## Erasures\n")?;
    if r.erasures.is_empty() {
        writeln!(out, "No erasure is recorded for this subject.\n")?;
    } else {
        let rows: Vec<Vec<String>> = r
            .erasures
            .iter()
            .map(|e| {
                vec![
                    esc(&e.created_at),
                    esc(&e.mode),
                    esc(&e.reason),
                    format!("{} #{}", esc(&e.collector_id), e.commit),
                    esc(&e.subject_hash),
                ]
            })
            .collect();
        table(
            out,
            &["When", "Mode", "Request", "Commit", "Subject hash"],
            &[false; 5],
            &rows,
        )?;
    }

    writeln!(out, "## Records\n")?;
    if r.records.is_empty() {
        writeln!(out, "No record of this subject in the period.\n")?;
        return Ok(());
    }
    writeln!(
        out,
        "{} record(s). Every column of each record (except the content hashes) is in the JSON and CSV formats.\n",
        count(r.records.len() as u64)
    )?;
    let header: Vec<&str> = SUBJECT_TABLE_COLUMNS.iter().map(|(_, h)| *h).collect();
    let rows: Vec<Vec<String>> = r
        .records
        .iter()
        .map(|rec| {
            SUBJECT_TABLE_COLUMNS
                .iter()
                .map(|(col, _)| esc(&value_text(rec.get(*col))))
                .collect()
        })
        .collect();
    let right: Vec<bool> = SUBJECT_TABLE_COLUMNS
        .iter()
        .map(|(c, _)| c.ends_with("tokens") || c.ends_with("usd"))
        .collect();
    table(out, &header, &right, &rows)
}

pub(super) fn cost(r: &CostReport, out: &mut dyn io::Write) -> io::Result<()> {
    header(out, &format!("Cost by {}", r.by), &r.scope, r.generated_at)?;
    writeln!(out, "> {COUNTING_NOTE}\n")?;
    let mut rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            vec![
                esc(row.key.as_deref().unwrap_or(UNKNOWN)),
                count(row.requests),
                count(row.input_tokens),
                count(row.output_tokens),
                dollars(row.cost_usd),
                count(row.unpriced_requests),
                count(row.errors),
            ]
        })
        .collect();
    let t = &r.total;
    rows.push(vec![
        "**Total**".to_owned(),
        format!("**{}**", count(t.requests)),
        format!("**{}**", count(t.input_tokens)),
        format!("**{}**", count(t.output_tokens)),
        format!("**{}**", dollars(t.cost_usd)),
        format!("**{}**", count(t.unpriced_requests)),
        format!("**{}**", count(t.errors)),
    ]);
    let by = capitalize(r.by.as_str());
    table(
        out,
        &[
            &by,
            "Requests",
            "Input tokens",
            "Output tokens",
            "Cost",
            "Unpriced",
            "Errors",
        ],
        &[false, true, true, true, true, true, true],
        &rows,
    )
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_tables_or_carry_html() {
        assert_eq!(esc("a|b<script>`x`\nc\\"), "a\\|b\\<script\\>\\`x\\` c\\\\");
        assert_eq!(esc("user_42"), "user_42");
    }
}
