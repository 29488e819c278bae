//! HTML: one self-contained file per report, readable in any browser without network access.
//!
//! No script and no external resource of any kind: styles are inline, charts are inline SVG
//! ([`super::svg`]), and a Content-Security-Policy (`default-src 'none'; style-src
//! 'unsafe-inline'; img-src data:`) forbids the browser from loading anything even if a value
//! slipped through. Every value taken from the data is escaped ([`esc`]).

use std::fmt::Write as _;
use std::io;

use super::md::{SUBJECT_TABLE_COLUMNS, capitalize, value_text};
use super::svg::{self, Bar, Unit};
use super::{COUNTING_NOTE, UNKNOWN, count, dollars, millis, percent};
use crate::report::compliance::{LatencyStats, TOP_USERS, UserRow};
use crate::report::{ComplianceReport, CostBy, CostReport, Scope, SubjectReport, rfc3339};

/// The page's Content-Security-Policy.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dee8; --bar: #3b6fd8; --bg: #f6f7fb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
.meta { margin: 0; color: var(--muted); }
.note { margin: 16px 0; padding: 10px 14px; border-left: 4px solid var(--bar); background: #fff; color: var(--muted); }
section { margin-top: 28px; }
h2 { font-size: 18px; margin: 0 0 10px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 12px; margin-top: 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; margin-top: 2px; overflow-wrap: anywhere; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #eef1f7; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 700; border-top: 2px solid var(--ink); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
svg.chart { width: 100%; max-width: 980px; height: auto; display: block; }
svg .bar { fill: var(--bar); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg text { font: 11px system-ui, sans-serif; fill: var(--ink); }
svg .tick, svg .empty { fill: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } .card, .panel { break-inside: avoid; } }
"#;

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page being built.
struct Page(String);

impl Page {
    fn new(title: &str, scope: &Scope, generated: chrono::DateTime<chrono::Utc>) -> Self {
        let mut s = String::with_capacity(64 * 1024);
        let _ = write!(
            s,
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="genai-audit">
<title>{title} · {scope}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<header><h1>{title}</h1><p class="meta">Period: {scope} · Generated {generated} by genai-audit</p></header>
"#,
            title = esc(title),
            scope = esc(&scope.describe()),
            generated = esc(&rfc3339(generated)),
        );
        Page(s)
    }

    fn note(&mut self, text: &str) {
        let _ = write!(self.0, r#"<p class="note">{}</p>"#, esc(text));
    }

    fn cards(&mut self, cards: &[(&str, String)]) {
        self.0.push_str(r#"<div class="cards">"#);
        for (k, v) in cards {
            let _ = write!(
                self.0,
                r#"<div class="card"><div class="k">{}</div><div class="v">{}</div></div>"#,
                esc(k),
                esc(v)
            );
        }
        self.0.push_str("</div>\n");
    }

    fn section(&mut self, id: &str, title: &str, body: &str) {
        let _ = writeln!(
            self.0,
            r#"<section id="{id}"><h2>{}</h2><div class="panel">{body}</div></section>"#,
            esc(title)
        );
    }

    fn finish(mut self, out: &mut dyn io::Write) -> io::Result<()> {
        self.0.push_str("<footer>genai-audit · figures computed from the committed audit log; money is exact to 10⁻¹² USD.</footer>\n</main>\n</body>\n</html>\n");
        out.write_all(self.0.as_bytes())
    }
}

/// A table: header cells (`(text, numeric)`), rows of already escaped cells, and an optional
/// total line.
fn table(header: &[(&str, bool)], rows: &[Vec<String>]) -> String {
    table_with_total(header, rows, None)
}

fn table_with_total(
    header: &[(&str, bool)],
    rows: &[Vec<String>],
    total: Option<&[String]>,
) -> String {
    let mut s = String::from("<table><thead><tr>");
    for (h, num) in header {
        let _ = write!(
            s,
            "<th{}>{}</th>",
            if *num { r#" class="num""# } else { "" },
            esc(h)
        );
    }
    s.push_str("</tr></thead><tbody>");
    let lines = rows
        .iter()
        .map(|r| (r.as_slice(), false))
        .chain(total.map(|t| (t, true)));
    for (row, is_total) in lines {
        s.push_str(if is_total {
            r#"<tr class="total">"#
        } else {
            "<tr>"
        });
        for (i, cell) in row.iter().enumerate() {
            let num = header.get(i).is_some_and(|h| h.1);
            let _ = write!(
                s,
                "<td{}>{cell}</td>",
                if num { r#" class="num""# } else { "" }
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn latency_cells(l: &LatencyStats) -> [String; 4] {
    [
        millis(l.avg_ms),
        millis(l.p50_ms),
        millis(l.p95_ms),
        millis(l.p99_ms),
    ]
    .map(|s| esc(&s))
}

fn usd_f64(u: genai_audit_core::Usd) -> f64 {
    // Only for drawing: the figures shown are the exact decimals.
    u.raw() as f64 / 1e12
}

pub(super) fn compliance(r: &ComplianceReport, out: &mut dyn io::Write) -> io::Result<()> {
    let mut p = Page::new("Compliance report", &r.scope, r.generated_at);
    let t = &r.totals;
    p.cards(&[
        ("Requests", count(t.requests)),
        ("Unique users", count(t.unique_users)),
        ("Models used", count(t.models_used)),
        ("Input tokens", count(t.input_tokens)),
        ("Output tokens", count(t.output_tokens)),
        ("Total cost", dollars(t.cost_usd)),
        ("Errors", count(t.errors)),
        ("Error rate", percent(t.error_rate)),
        ("PII-flagged calls", count(t.pii_flagged_requests)),
        ("Latency p50", millis(r.latency.p50_ms)),
        ("Latency p95", millis(r.latency.p95_ms)),
    ]);
    p.note(&format!(
        "{COUNTING_NOTE} {} provider-call spans made {} calls; {} calls had no user id; {} were unpriced.",
        count(t.provider_spans),
        count(t.requests),
        count(t.requests_without_user),
        count(t.unpriced_requests)
    ));

    let days: Vec<Bar> = r
        .days
        .iter()
        .map(|d| Bar {
            label: d.day.format("%Y-%m-%d").to_string(),
            value: usd_f64(d.cost_usd),
            shown: dollars(d.cost_usd),
        })
        .collect();
    p.section(
        "cost-per-day",
        "Cost per day",
        &svg::vertical(
            "chart-cost-per-day",
            "Cost per day (USD)",
            &days,
            Unit::Dollars,
        ),
    );
    let models: Vec<Bar> = r
        .models
        .iter()
        .map(|m| Bar {
            label: m.model.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
            value: m.requests as f64,
            shown: count(m.requests),
        })
        .collect();
    p.section(
        "requests-per-model",
        "Requests per model",
        &svg::horizontal("chart-requests-per-model", "Requests per model", &models),
    );
    let buckets: Vec<Bar> = r
        .latency_histogram
        .iter()
        .map(|b| Bar {
            label: b.label.clone(),
            value: b.requests as f64,
            shown: format!("{} calls", count(b.requests)),
        })
        .collect();
    let mut latency = svg::vertical(
        "chart-latency",
        "Latency distribution (calls per bucket)",
        &buckets,
        Unit::Count,
    );
    latency.push_str(&table(
        &[("avg", true), ("p50", true), ("p95", true), ("p99", true)],
        &[latency_cells(&r.latency).to_vec()],
    ));
    p.section("latency", "Latency distribution", &latency);

    let pii = if r.pii_types.is_empty() {
        "<p>No PII was found in the period's calls.</p>".to_owned()
    } else {
        let rows: Vec<Vec<String>> = r
            .pii_types
            .iter()
            .map(|x| vec![esc(&x.name), count(x.requests)])
            .collect();
        table(&[("PII type", false), ("Calls", true)], &rows)
    };
    p.section("pii", "PII-flagged calls by type", &pii);
    let rows: Vec<Vec<String>> = r
        .classifications
        .iter()
        .map(|x| vec![esc(&x.name), count(x.requests)])
        .collect();
    p.section(
        "classification",
        "Calls by data classification",
        &table(&[("Classification", false), ("Calls", true)], &rows),
    );

    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            let mut row = vec![
                esc(m.model.as_deref().unwrap_or(UNKNOWN)),
                count(m.requests),
                count(m.input_tokens),
                count(m.output_tokens),
                esc(&dollars(m.cost_usd)),
                count(m.unpriced_requests),
                count(m.errors),
            ];
            row.extend(latency_cells(&m.latency));
            row
        })
        .collect();
    p.section(
        "models",
        "Per model",
        &table(
            &[
                ("Model", false),
                ("Requests", true),
                ("Input tokens", true),
                ("Output tokens", true),
                ("Cost", true),
                ("Unpriced", true),
                ("Errors", true),
                ("avg", true),
                ("p50", true),
                ("p95", true),
                ("p99", true),
            ],
            &rows,
        ),
    );
    p.section(
        "top-users-requests",
        &format!("Top {TOP_USERS} users by requests"),
        &users(&r.top_users_by_requests),
    );
    p.section(
        "top-users-cost",
        &format!("Top {TOP_USERS} users by cost"),
        &users(&r.top_users_by_cost),
    );
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
                esc(&dollars(d.cost_usd)),
                count(d.errors),
                esc(&millis(d.latency.p50_ms)),
                esc(&millis(d.latency.p95_ms)),
            ]
        })
        .collect();
    p.section(
        "days",
        "Per day",
        &table(
            &[
                ("Day (UTC)", false),
                ("Requests", true),
                ("Users", true),
                ("Input tokens", true),
                ("Output tokens", true),
                ("Cost", true),
                ("Errors", true),
                ("p50", true),
                ("p95", true),
            ],
            &rows,
        ),
    );
    p.finish(out)
}

fn users(users: &[UserRow]) -> String {
    if users.is_empty() {
        return "<p>No calls with a user id.</p>".to_owned();
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
                esc(&dollars(u.cost_usd)),
                count(u.errors),
            ]
        })
        .collect();
    table(
        &[
            ("#", true),
            ("User", false),
            ("Requests", true),
            ("Input tokens", true),
            ("Output tokens", true),
            ("Cost", true),
            ("Errors", true),
        ],
        &rows,
    )
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        esc(&items.join(", "))
    }
}

pub(super) fn subject(r: &SubjectReport, out: &mut dyn io::Write) -> io::Result<()> {
    let mut p = Page::new(
        "Subject access report (GDPR Art. 15)",
        &r.scope,
        r.generated_at,
    );
    let c = &r.categories;
    let subject = match (&r.subject.user_id, &r.subject.subject_hash) {
        (Some(id), _) => id.clone(),
        (None, Some(h)) => format!("hash {h}"),
        (None, None) => "none given".to_owned(),
    };
    p.cards(&[
        ("Subject", subject),
        ("Records", count(r.records.len() as u64)),
        (
            "First record",
            c.first_record.clone().unwrap_or_else(|| "–".into()),
        ),
        (
            "Last record",
            c.last_record.clone().unwrap_or_else(|| "–".into()),
        ),
        ("Erasures", count(r.erasures.len() as u64)),
    ]);
    let mut dl = String::from("<dl>");
    let hash = r
        .subject
        .subject_hash
        .as_deref()
        .unwrap_or("not computed (no hash key)");
    for (k, v) in [
        ("Subject's keyed hash", esc(hash)),
        ("Personal data held", list(&c.personal_data)),
        (
            "Content",
            esc(&format!(
                "{} record(s) carried prompt or response text; genai-audit stored only keyed hashes and character counts, never the text",
                count(c.records_with_content)
            )),
        ),
        ("Models", list(&c.models)),
        ("Providers the data was sent to", list(&c.providers)),
        ("Services", list(&c.services)),
        ("Data classifications", list(&c.classifications)),
        ("PII types found (never the values)", list(&c.pii_types)),
    ] {
        let _ = write!(dl, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    dl.push_str("</dl>");
    p.section("categories", "Data processed", &dl);
    let retention = match (r.retention.earliest, r.retention.latest) {
        (Some(a), Some(b)) if a == b => {
            format!("<p>Records are kept until {a} (<code>retention_until</code>, UTC).</p>")
        }
        (Some(a), Some(b)) => format!(
            "<p>Records are kept until {a} at the earliest and {b} at the latest (<code>retention_until</code>, UTC).</p>"
        ),
        _ => "<p>No record carries a retention date.</p>".to_owned(),
    };
    p.section("retention", "Retention", &retention);
    let erasures = if r.erasures.is_empty() {
        "<p>No erasure is recorded for this subject.</p>".to_owned()
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
            &[
                ("When", false),
                ("Mode", false),
                ("Request", false),
                ("Commit", false),
                ("Subject hash", false),
            ],
            &rows,
        )
    };
    p.section("erasures", "Erasures", &erasures);
    let records = if r.records.is_empty() {
        "<p>No record of this subject in the period.</p>".to_owned()
    } else {
        let header: Vec<(&str, bool)> = SUBJECT_TABLE_COLUMNS
            .iter()
            .map(|(c, h)| (*h, c.ends_with("tokens") || c.ends_with("usd")))
            .collect();
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
        format!(
            "<p>{} record(s). Every column of each record (except the content hashes) is in the JSON and CSV formats.</p>{}",
            count(r.records.len() as u64),
            table(&header, &rows)
        )
    };
    p.section("records", "Records", &records);
    p.finish(out)
}

pub(super) fn cost(r: &CostReport, out: &mut dyn io::Write) -> io::Result<()> {
    let title = format!("Cost by {}", r.by);
    let mut p = Page::new(&title, &r.scope, r.generated_at);
    let t = &r.total;
    p.cards(&[
        ("Total cost", dollars(t.cost_usd)),
        ("Requests", count(t.requests)),
        ("Input tokens", count(t.input_tokens)),
        ("Output tokens", count(t.output_tokens)),
        ("Unpriced calls", count(t.unpriced_requests)),
    ]);
    p.note(COUNTING_NOTE);
    let bars: Vec<Bar> = r
        .rows
        .iter()
        .map(|row| Bar {
            label: row.key.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
            value: usd_f64(row.cost_usd),
            shown: dollars(row.cost_usd),
        })
        .collect();
    let chart = if r.by == CostBy::Day {
        svg::vertical("chart-cost", &title, &bars, Unit::Dollars)
    } else {
        svg::horizontal("chart-cost", &title, &bars)
    };
    p.section("chart", &title, &chart);
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            vec![
                esc(row.key.as_deref().unwrap_or(UNKNOWN)),
                count(row.requests),
                count(row.input_tokens),
                count(row.output_tokens),
                esc(&dollars(row.cost_usd)),
                count(row.unpriced_requests),
                count(row.errors),
            ]
        })
        .collect();
    let total = [
        "Total".to_owned(),
        count(t.requests),
        count(t.input_tokens),
        count(t.output_tokens),
        esc(&dollars(t.cost_usd)),
        count(t.unpriced_requests),
        count(t.errors),
    ];
    let by = capitalize(r.by.as_str());
    p.section(
        "table",
        "Breakdown",
        &table_with_total(
            &[
                (&by, false),
                ("Requests", true),
                ("Input tokens", true),
                ("Output tokens", true),
                ("Cost", true),
                ("Unpriced", true),
                ("Errors", true),
            ],
            &rows,
            Some(&total),
        ),
    );
    p.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
