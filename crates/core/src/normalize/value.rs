//! Lenient reading of OTLP attribute values.
//!
//! Instrumentations disagree on types: token counts arrive as ints, doubles or numeric strings,
//! and "no value" as `"none"`, `"null"` or `""`. These helpers accept all of them and never panic.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

/// Whether a string means "no value".
fn is_absent(s: &str) -> bool {
    // Only short strings can spell "no value"; skip the trim for everything else.
    if s.len() > 16 {
        return false;
    }
    let t = s.trim();
    t.is_empty()
        || t.eq_ignore_ascii_case("none")
        || t.eq_ignore_ascii_case("null")
        || t.eq_ignore_ascii_case("undefined")
}

/// Whether a value carries nothing: unset, or a string spelling "no value" (`""`, `"none"`, …).
pub(crate) fn is_absent_value(v: &AnyValue) -> bool {
    match &v.value {
        None => true,
        Some(Value::StringValue(s)) => is_absent(s),
        _ => false,
    }
}

/// The value as a non-empty string (strings only; scalars are not stringified).
pub(crate) fn as_str(v: &AnyValue) -> Option<&str> {
    match &v.value {
        Some(Value::StringValue(s)) if !is_absent(s) => Some(s.as_str()),
        _ => None,
    }
}

/// The value as text: strings as they are, numbers and booleans formatted (ids sent as ints).
pub(crate) fn as_text(v: &AnyValue) -> Option<String> {
    match &v.value {
        Some(Value::StringValue(s)) if !is_absent(s) => Some(s.clone()),
        Some(Value::IntValue(i)) => Some(i.to_string()),
        Some(Value::DoubleValue(d)) if d.is_finite() => Some(d.to_string()),
        Some(Value::BoolValue(b)) => Some(b.to_string()),
        _ => None,
    }
}

/// The value as an integer: ints, integral doubles, numeric strings (`"1234"`, `"1234.0"`).
pub(crate) fn as_i64(v: &AnyValue) -> Option<i64> {
    match &v.value {
        Some(Value::IntValue(i)) => Some(*i),
        Some(Value::DoubleValue(d)) => f64_to_i64(*d),
        Some(Value::StringValue(s)) if !is_absent(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().and_then(f64_to_i64))
        }
        _ => None,
    }
}

fn f64_to_i64(d: f64) -> Option<i64> {
    // 2^63 is exactly representable; anything at or above it does not fit.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    (d.is_finite() && d.fract() == 0.0 && d.abs() < TWO_POW_63).then_some(d as i64)
}

/// A token count: a non-negative integer.
pub(crate) fn as_count(v: &AnyValue) -> Option<i64> {
    as_i64(v).filter(|n| *n >= 0)
}

/// The value as a float: doubles, ints, numeric strings.
pub(crate) fn as_f64(v: &AnyValue) -> Option<f64> {
    let f = match &v.value {
        Some(Value::DoubleValue(d)) => *d,
        Some(Value::IntValue(i)) => *i as f64,
        Some(Value::StringValue(s)) if !is_absent(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// The value as a boolean: bools, `"true"`/`"false"`, 0/1.
pub(crate) fn as_bool(v: &AnyValue) -> Option<bool> {
    match &v.value {
        Some(Value::BoolValue(b)) => Some(*b),
        Some(Value::IntValue(0)) => Some(false),
        Some(Value::IntValue(1)) => Some(true),
        Some(Value::StringValue(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The value as a list of strings: string arrays, a single string, or a JSON array in a string.
pub(crate) fn as_string_list(v: &AnyValue) -> Vec<String> {
    match &v.value {
        Some(Value::ArrayValue(a)) => a.values.iter().filter_map(as_text).collect(),
        Some(Value::StringValue(s)) if s.trim_start().starts_with('[') => {
            serde_json::from_str::<Vec<serde_json::Value>>(s)
                .map(|items| {
                    items
                        .into_iter()
                        .filter_map(|i| match i {
                            serde_json::Value::String(s) if !is_absent(&s) => Some(s),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_else(|_| vec![s.clone()])
        }
        _ => as_text(v).into_iter().collect(),
    }
}

/// Writes `v` as JSON into `out` (for the `attributes` columns). Bytes become hex strings;
/// non-finite doubles become strings (JSON has no NaN).
pub(crate) fn write_json(out: &mut String, v: &AnyValue) {
    match &v.value {
        None => out.push_str("null"),
        Some(Value::StringValue(s)) => write_json_str(out, s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => out.push_str(itoa::Buffer::new().format(*i)),
        Some(Value::DoubleValue(d)) => {
            if d.is_finite() {
                out.push_str(zmij::Buffer::new().format_finite(*d));
            } else {
                write_json_str(out, &d.to_string());
            }
        }
        Some(Value::BytesValue(b)) => write_json_str(out, &const_hex::encode(b)),
        // An index into a profiles string table: meaningless without the table.
        Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::ArrayValue(a)) => {
            out.push('[');
            for (i, item) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Some(Value::KvlistValue(kv)) => {
            out.push('{');
            for (i, item) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, &item.key);
                out.push(':');
                match &item.value {
                    Some(v) => write_json(out, v),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
    }
}

/// Writes a JSON string literal with the escapes JSON requires.
pub(crate) fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Fast path: most keys and values need no escaping (a branch-free scan vectorizes).
    if !s.bytes().fold(false, |acc, b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            use std::fmt::Write;
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(v.into())),
        }
    }
    fn d(v: f64) -> AnyValue {
        AnyValue {
            value: Some(Value::DoubleValue(v)),
        }
    }

    #[test]
    fn messy_numbers() {
        assert_eq!(as_i64(&s(" 1234 ")), Some(1234));
        assert_eq!(as_i64(&s("1234.0")), Some(1234));
        assert_eq!(as_i64(&d(12.0)), Some(12));
        assert_eq!(as_i64(&d(12.5)), None);
        assert_eq!(as_i64(&d(1e300)), None);
        assert_eq!(as_i64(&s("none")), None);
        assert_eq!(as_count(&s("-3")), None);
        assert_eq!(as_f64(&s("0.25")), Some(0.25));
        assert_eq!(as_f64(&d(f64::NAN)), None);
        assert_eq!(as_str(&s("None")), None);
    }

    #[test]
    fn json_escaping_round_trips() {
        let mut out = String::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn string_lists() {
        assert_eq!(
            as_string_list(&s("[\"stop\",\"length\"]")),
            ["stop", "length"]
        );
        assert_eq!(as_string_list(&s("stop")), ["stop"]);
        assert_eq!(as_string_list(&s("[broken")), ["[broken"]);
    }
}
