//! SQL text helpers for front ends: splitting a script into statements, and showing an error
//! at its place in the SQL.

use std::fmt::Write as _;

use datafusion::common::{Diagnostic, Span};
use datafusion::error::DataFusionError;

use crate::error::Error;

/// A script cut at its top-level `;`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statements {
    /// Statements terminated by `;` (without it), comment-only ones left out.
    pub complete: Vec<String>,
    /// Text after the last `;`: an unterminated statement (or only whitespace and comments,
    /// then empty).
    pub rest: String,
}

/// Splits `script` at the `;`s outside string literals, quoted identifiers and comments.
///
/// ```
/// let s = genai_audit_query::split_statements("SELECT ';'; -- a;\nSELECT 2");
/// assert_eq!(s.complete, ["SELECT ';'"]);
/// assert_eq!(s.rest, "-- a;\nSELECT 2");
/// ```
pub fn split_statements(script: &str) -> Statements {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Quote(char),
        LineComment,
        BlockComment,
    }
    let mut out = Statements::default();
    let mut state = State::Code;
    let mut start = 0;
    let mut has_code = false;
    let mut chars = script.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        match state {
            State::Code => match c {
                '\'' | '"' | '`' => {
                    state = State::Quote(c);
                    has_code = true;
                }
                '-' if next == Some('-') => {
                    chars.next();
                    state = State::LineComment;
                }
                '/' if next == Some('*') => {
                    chars.next();
                    state = State::BlockComment;
                }
                ';' => {
                    if has_code {
                        out.complete.push(script[start..i].trim().to_owned());
                    }
                    start = i + 1;
                    has_code = false;
                }
                c if c.is_whitespace() => {}
                _ => has_code = true,
            },
            // A doubled quote inside a quoted text is the quote itself: leaving and re-entering
            // the quote gives the same result.
            State::Quote(q) if c == q => state = State::Code,
            State::Quote(_) => {}
            State::LineComment if c == '\n' => state = State::Code,
            State::LineComment => {}
            State::BlockComment if c == '*' && next == Some('/') => {
                chars.next();
                state = State::Code;
            }
            State::BlockComment => {}
        }
    }
    out.rest = script[start..].trim().to_owned();
    out
}

impl Statements {
    /// Whether [`Self::rest`] holds code (not only comments): an unterminated statement.
    pub fn has_pending_code(&self) -> bool {
        // A newline first: a trailing line comment must not swallow the `;`.
        let again = split_statements(&format!("{}\n;", self.rest));
        !again.complete.is_empty()
    }
}

/// Renders `err` for a person: the message, then, when DataFusion located the problem in
/// `sql`, the line with a caret under it, and DataFusion's notes and hints.
///
/// ```text
/// error: column 'nme' not found
///  --> line 1, column 8
///   |
/// 1 | SELECT nme FROM audit_log
///   |        ^^^
/// note: possible column audit_log.name
/// ```
pub fn render_error(err: &Error, sql: &str) -> String {
    let mut out = String::new();
    let Some(df) = err.datafusion() else {
        let _ = write!(out, "error: {err}");
        return out;
    };
    let diagnostic = df.diagnostic();
    let (message, location) = match diagnostic {
        // DataFusion's own short message ("column 'x' not found") and its place.
        Some(d) => (d.message.clone(), d.span),
        None => {
            let message = headline(df);
            let location = parser_location(&message);
            (message, location)
        }
    };
    let _ = write!(out, "error: {}", strip_location(&message));
    if let Some(span) = location {
        out.push('\n');
        out.push_str(&show_span(sql, span));
    }
    if let Some(Diagnostic { notes, helps, .. }) = diagnostic {
        for n in notes {
            let _ = write!(out, "\nnote: {}", n.message);
        }
        for h in helps {
            let _ = write!(out, "\nhint: {}", h.message);
        }
    }
    if message.contains("not found") || message.contains("No field named") {
        out.push_str("\nhint: \\d audit_log (or SHOW COLUMNS FROM audit_log) lists the columns");
    }
    out
}

/// The most specific message: the root error's text, without backtraces, the kind prefixes
/// DataFusion stacks up (`Error during planning: `, `SQL error: `…) or the list of all 63
/// valid fields it appends to an unknown column.
fn headline(df: &DataFusionError) -> String {
    use datafusion::sql::sqlparser::parser::ParserError;
    let text = match df.find_root() {
        DataFusionError::Plan(m)
        | DataFusionError::Execution(m)
        | DataFusionError::NotImplemented(m)
        | DataFusionError::Configuration(m) => m.clone(),
        DataFusionError::SQL(e, _) => match e.as_ref() {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                format!("syntax error: {m}")
            }
            other => other.to_string(),
        },
        other => other.strip_backtrace(),
    };
    let text = match text.find("\nValid fields are") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.trim().to_owned()
}

/// The message without sqlparser's ` at Line: 1, Column: 8` (shown under it instead).
fn strip_location(message: &str) -> &str {
    match message.rfind(" at Line: ") {
        Some(i) if parser_location(message).is_some() => &message[..i],
        _ => message,
    }
}

/// sqlparser errors say `… at Line: 3, Column: 14` in their text.
fn parser_location(message: &str) -> Option<Span> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let location = datafusion::common::Location {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    };
    Some(Span::new(location, location))
}

fn show_span(sql: &str, span: Span) -> String {
    let (line_no, col) = (span.start.line as usize, span.start.column as usize);
    let Some(line) = sql.lines().nth(line_no.saturating_sub(1)) else {
        return format!(" --> line {line_no}, column {col}");
    };
    let width = if span.end.line == span.start.line && span.end.column > span.start.column {
        (span.end.column - span.start.column) as usize
    } else {
        1
    };
    let gutter = " ".repeat(line_no.to_string().len());
    let pad: String = line
        .chars()
        .take(col.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!(
        "{gutter}--> line {line_no}, column {col}\n{gutter} |\n{line_no} | {line}\n{gutter} | {pad}{}",
        "^".repeat(width.max(1))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let s = split_statements(
            "SELECT 'a;b', \"c;d\" FROM t; /* x; */ SELECT 1 -- y;\n;\n  ;SELECT 'it''s; fine'",
        );
        assert_eq!(
            s.complete,
            ["SELECT 'a;b', \"c;d\" FROM t", "/* x; */ SELECT 1 -- y;"]
        );
        assert_eq!(s.rest, "SELECT 'it''s; fine'");
        assert!(s.has_pending_code());
        let only_comment = split_statements("SELECT 1; -- done");
        assert_eq!(only_comment.complete, ["SELECT 1"]);
        assert!(!only_comment.has_pending_code());
        assert_eq!(split_statements("  ").complete, Vec::<String>::new());
    }

    #[test]
    fn parser_locations_are_found_in_messages() {
        let span = parser_location("Expected: an expression, found: FROM at Line: 2, Column: 8")
            .unwrap_or_else(|| panic!("no location"));
        assert_eq!((span.start.line, span.start.column), (2, 8));
        let shown = show_span("SELECT\nSELECT FROM x", span);
        assert!(
            shown.ends_with("2 | SELECT FROM x\n  |        ^"),
            "{shown}"
        );
    }
}
