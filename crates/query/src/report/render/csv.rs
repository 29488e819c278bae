//! CSV.
//!
//! - Compliance and subject reports: one table in long form, `section,key,metric,value`, one
//!   figure per line (a pivot of `metric` by `key` gives each section's table back). Empty `key`
//!   for sections without one (totals) and for missing keys (unknown model).
//! - Cost report: one wide table, the grouping's column then `requests, input_tokens,
//!   output_tokens, cost_usd, unpriced_requests, errors`; no total line (it would double a sum).
//!
//! Money is the exact decimal (12 fractional digits), latency milliseconds, rates fractions.
//! Fields are quoted when they hold a comma, quote or line break (RFC 4180).
//!
//! These files are meant for spreadsheets, and user ids, service and model names come from the
//! instrumented applications: a text field starting with `=`, `+`, `-`, `@`, tab or carriage
//! return is prefixed with `'` so that a spreadsheet shows it instead of evaluating it as a
//! formula (CSV injection). Numbers (`-0.5`) are left as they are. `genai-audit query --format
//! csv|json` keeps every value verbatim.

use std::io;

use serde_json::Value;

use crate::report::compliance::LatencyStats;
use crate::report::{ComplianceReport, CostReport, SubjectReport, rfc3339};

/// Writes one CSV line.
fn line(out: &mut dyn io::Write, fields: &[&str]) -> io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let defused;
        let f = if is_formula(f) {
            defused = format!("'{f}");
            defused.as_str()
        } else {
            f
        };
        if f.contains([',', '"', '\n', '\r']) {
            write!(out, "\"{}\"", f.replace('"', "\"\""))?;
        } else {
            out.write_all(f.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

/// Whether a spreadsheet would evaluate `field` as a formula: it starts with one of the
/// characters that begin one (OWASP's list) and is not a plain number.
fn is_formula(field: &str) -> bool {
    field.starts_with(['=', '+', '-', '@', '\t', '\r']) && field.parse::<f64>().is_err()
}

/// Long-form writer: `section,key,metric,value`.
struct Long<'a> {
    out: &'a mut dyn io::Write,
}

impl<'a> Long<'a> {
    fn new(out: &'a mut dyn io::Write) -> io::Result<Self> {
        line(out, &["section", "key", "metric", "value"])?;
        Ok(Self { out })
    }

    fn put(
        &mut self,
        section: &str,
        key: &str,
        metric: &str,
        value: impl ToString,
    ) -> io::Result<()> {
        line(self.out, &[section, key, metric, &value.to_string()])
    }

    fn opt<T: ToString>(
        &mut self,
        section: &str,
        key: &str,
        metric: &str,
        value: Option<T>,
    ) -> io::Result<()> {
        let v = value.map(|v| v.to_string()).unwrap_or_default();
        line(self.out, &[section, key, metric, &v])
    }

    fn latency(&mut self, section: &str, key: &str, l: &LatencyStats) -> io::Result<()> {
        self.opt(section, key, "latency_avg_ms", l.avg_ms)?;
        self.opt(section, key, "latency_p50_ms", l.p50_ms)?;
        self.opt(section, key, "latency_p95_ms", l.p95_ms)?;
        self.opt(section, key, "latency_p99_ms", l.p99_ms)
    }

    fn scope(
        &mut self,
        scope: &crate::report::Scope,
        generated: chrono::DateTime<chrono::Utc>,
    ) -> io::Result<()> {
        self.opt("scope", "", "from", scope.from.map(rfc3339))?;
        self.opt("scope", "", "to", scope.to.map(rfc3339))?;
        self.opt("scope", "", "tenant", scope.tenant.as_deref())?;
        self.put("scope", "", "generated_at", rfc3339(generated))
    }
}

pub(super) fn compliance(r: &ComplianceReport, out: &mut dyn io::Write) -> io::Result<()> {
    let mut w = Long::new(out)?;
    w.scope(&r.scope, r.generated_at)?;
    let t = &r.totals;
    for (metric, value) in [
        ("requests", t.requests),
        ("provider_spans", t.provider_spans),
        ("unique_users", t.unique_users),
        ("requests_without_user", t.requests_without_user),
        ("models_used", t.models_used),
        ("input_tokens", t.input_tokens),
        ("output_tokens", t.output_tokens),
    ] {
        w.put("totals", "", metric, value)?;
    }
    w.put("totals", "", "cost_usd", t.cost_usd)?;
    w.put("totals", "", "unpriced_requests", t.unpriced_requests)?;
    w.put("totals", "", "errors", t.errors)?;
    w.put("totals", "", "error_rate", t.error_rate)?;
    w.put("totals", "", "pii_flagged_requests", t.pii_flagged_requests)?;
    w.latency("totals", "", &r.latency)?;
    for b in &r.latency_histogram {
        w.put("latency_histogram", &b.label, "requests", b.requests)?;
    }
    for p in &r.pii_types {
        w.put("pii_types", &p.name, "requests", p.requests)?;
    }
    for c in &r.classifications {
        w.put("classifications", &c.name, "requests", c.requests)?;
    }
    for m in &r.models {
        let key = m.model.as_deref().unwrap_or_default();
        w.put("models", key, "requests", m.requests)?;
        w.put("models", key, "input_tokens", m.input_tokens)?;
        w.put("models", key, "output_tokens", m.output_tokens)?;
        w.put("models", key, "cost_usd", m.cost_usd)?;
        w.put("models", key, "unpriced_requests", m.unpriced_requests)?;
        w.put("models", key, "errors", m.errors)?;
        w.latency("models", key, &m.latency)?;
    }
    for (section, users) in [
        ("top_users_by_requests", &r.top_users_by_requests),
        ("top_users_by_cost", &r.top_users_by_cost),
    ] {
        for (rank, u) in users.iter().enumerate() {
            let key = u.user_id.as_str();
            w.put(section, key, "rank", rank + 1)?;
            w.put(section, key, "requests", u.requests)?;
            w.put(section, key, "input_tokens", u.input_tokens)?;
            w.put(section, key, "output_tokens", u.output_tokens)?;
            w.put(section, key, "cost_usd", u.cost_usd)?;
            w.put(section, key, "unpriced_requests", u.unpriced_requests)?;
            w.put(section, key, "errors", u.errors)?;
        }
    }
    for d in &r.days {
        let key = d.day.format("%Y-%m-%d").to_string();
        w.put("days", &key, "requests", d.requests)?;
        w.put("days", &key, "unique_users", d.unique_users)?;
        w.put("days", &key, "input_tokens", d.input_tokens)?;
        w.put("days", &key, "output_tokens", d.output_tokens)?;
        w.put("days", &key, "cost_usd", d.cost_usd)?;
        w.put("days", &key, "unpriced_requests", d.unpriced_requests)?;
        w.put("days", &key, "errors", d.errors)?;
        w.latency("days", &key, &d.latency)?;
    }
    Ok(())
}

/// A record value as CSV text: strings as is, lists as JSON arrays, null empty.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn subject(r: &SubjectReport, out: &mut dyn io::Write) -> io::Result<()> {
    let mut w = Long::new(out)?;
    w.opt("subject", "", "user_id", r.subject.user_id.as_deref())?;
    w.opt(
        "subject",
        "",
        "subject_hash",
        r.subject.subject_hash.as_deref(),
    )?;
    w.scope(&r.scope, r.generated_at)?;
    w.put("summary", "", "records", r.records.len())?;
    let c = &r.categories;
    for (name, items) in [
        ("personal_data", &c.personal_data),
        ("models", &c.models),
        ("providers", &c.providers),
        ("services", &c.services),
        ("classifications", &c.classifications),
        ("pii_types", &c.pii_types),
    ] {
        for item in items {
            w.put("categories", name, "item", item)?;
        }
    }
    w.put(
        "categories",
        "content",
        "records_with_content",
        c.records_with_content,
    )?;
    w.opt("summary", "", "first_record", c.first_record.as_deref())?;
    w.opt("summary", "", "last_record", c.last_record.as_deref())?;
    w.opt("retention", "", "earliest", r.retention.earliest)?;
    w.opt("retention", "", "latest", r.retention.latest)?;
    w.put(
        "retention",
        "",
        "records_without_date",
        r.retention.records_without_date,
    )?;
    for e in &r.erasures {
        let key = format!("{}/{}", e.collector_id, e.commit);
        w.put("erasures", &key, "created_at", &e.created_at)?;
        w.put("erasures", &key, "mode", &e.mode)?;
        w.put("erasures", &key, "subject_hash", &e.subject_hash)?;
        w.put("erasures", &key, "reason", &e.reason)?;
    }
    for rec in &r.records {
        let key = rec.get("record_id").map(cell).unwrap_or_default();
        for col in &r.columns {
            w.put(
                "records",
                &key,
                col,
                cell(rec.get(col).unwrap_or(&Value::Null)),
            )?;
        }
    }
    Ok(())
}

pub(super) fn cost(r: &CostReport, out: &mut dyn io::Write) -> io::Result<()> {
    line(
        out,
        &[
            r.by.as_str(),
            "requests",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "unpriced_requests",
            "errors",
        ],
    )?;
    for row in &r.rows {
        line(
            out,
            &[
                row.key.as_deref().unwrap_or_default(),
                &row.requests.to_string(),
                &row.input_tokens.to_string(),
                &row.output_tokens.to_string(),
                &row.cost_usd.to_string(),
                &row.unpriced_requests.to_string(),
                &row.errors.to_string(),
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        line(&mut out, &["a", "b,c", "say \"hi\"", "x\ny"]).expect("in memory");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\r\n"
        );
    }

    #[test]
    fn formulas_are_shown_not_evaluated() {
        let mut out = Vec::new();
        let fields = [
            "=HYPERLINK(\"http://x\",\"y\")",
            "@SUM(A1)",
            "+cmd",
            "-2+3",
            "-0.25",
            "+1e3",
            "user-1",
        ];
        line(&mut out, &fields).expect("in memory");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'@SUM(A1),'+cmd,'-2+3,-0.25,+1e3,user-1\r\n"
        );
    }
}
