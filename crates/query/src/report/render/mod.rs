//! Rendering reports: Markdown ([`md`]), JSON ([`json`]), CSV ([`csv`]) and one self-contained
//! HTML file with inline SVG charts ([`html`], [`svg`]).
//!
//! Every renderer writes to any `io::Write`, so front ends choose stdout or a file and tests
//! render into memory.

mod csv;
mod html;
mod json;
mod md;
mod svg;

use std::io;

use genai_audit_core::Usd;

use super::{ComplianceReport, CostReport, ReportFormat, SubjectReport};

impl ComplianceReport {
    /// Writes the report in `format` to `out`.
    pub fn render(&self, format: ReportFormat, out: &mut dyn io::Write) -> io::Result<()> {
        match format {
            ReportFormat::Markdown => md::compliance(self, out),
            ReportFormat::Json => json::write(out, "compliance", self),
            ReportFormat::Csv => csv::compliance(self, out),
            ReportFormat::Html => html::compliance(self, out),
        }
    }
}

impl SubjectReport {
    /// Writes the report in `format` to `out`.
    pub fn render(&self, format: ReportFormat, out: &mut dyn io::Write) -> io::Result<()> {
        match format {
            ReportFormat::Markdown => md::subject(self, out),
            ReportFormat::Json => json::write(out, "subject", self),
            ReportFormat::Csv => csv::subject(self, out),
            ReportFormat::Html => html::subject(self, out),
        }
    }
}

impl CostReport {
    /// Writes the report in `format` to `out`.
    pub fn render(&self, format: ReportFormat, out: &mut dyn io::Write) -> io::Result<()> {
        match format {
            ReportFormat::Markdown => md::cost(self, out),
            ReportFormat::Json => json::write(out, "cost", self),
            ReportFormat::Csv => csv::cost(self, out),
            ReportFormat::Html => html::cost(self, out),
        }
    }
}

/// Dollars for people: exact, trailing zeros dropped, at least two decimals (`$0.004476`,
/// `$12.50`).
pub(crate) fn dollars(u: Usd) -> String {
    let s = u.to_string();
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut frac = frac.trim_end_matches('0').to_owned();
    while frac.len() < 2 {
        frac.push('0');
    }
    let (sign, int) = match int.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", int),
    };
    format!("{sign}${}.{frac}", group_digits(int))
}

/// `1234567` → `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    group_digits(&n.to_string())
}

fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds for people: `812.5 ms`, `2.41 s`, `–` when unknown.
pub(crate) fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "–".to_owned(),
        Some(ms) if ms.abs() < 1000.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{:.2} s", ms / 1000.0),
    }
}

/// A rate as a percentage: `2.50 %`.
pub(crate) fn percent(rate: f64) -> String {
    format!("{:.2} %", rate * 100.0)
}

/// The name shown for a missing key (unknown model, call without a user, …).
pub(crate) const UNKNOWN: &str = "(unknown)";

/// Wording shared by every format: how calls are counted.
pub(crate) const COUNTING_NOTE: &str = "Each provider call is counted once (spans grouped by call_id): duplicated and wrapper spans add no tokens or cost. Unpriced calls (unknown model) are not in the cost figures.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_formats() {
        let usd = |s: &str| s.parse::<Usd>().expect("an amount");
        assert_eq!(dollars(usd("0.004476")), "$0.004476");
        assert_eq!(dollars(usd("1234.5")), "$1,234.50");
        assert_eq!(dollars(usd("0")), "$0.00");
        assert_eq!(dollars(usd("-0.000000000001")), "-$0.000000000001");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(millis(Some(812.54)), "812.5 ms");
        assert_eq!(millis(Some(2410.0)), "2.41 s");
        assert_eq!(millis(None), "–");
        assert_eq!(percent(0.025), "2.50 %");
    }
}
