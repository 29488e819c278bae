//! Prompt and response content: gathered from wherever a convention put it, reduced to a
//! canonical text, scanned for PII and replaced by keyed hashes. The text itself is dropped.
//!
//! **Canonical text** (what `prompt_hash` / `response_hash` are computed over, and what
//! `audit_hash('…')` must be given): the text of every message, in conversation order, system
//! instructions first, joined with `\n`. Structure is ignored: from JSON message lists (OTel
//! `gen_ai.input.messages`, Vercel `ai.prompt.messages`, OpenInference `input.value`) or
//! structured log bodies, every string leaf is kept except those under structural keys (`role`,
//! `type`, `id`, `name`, `finish_reason`, …). So the same call captured by two instrumentations
//! hashes the same. Text that is not valid JSON (truncated captures) is hashed as it is.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use serde_json::Value as Json;

use super::keys::Side;
use crate::hash::HashKey;
use crate::pii::{PiiScanner, PiiSet};

/// Keys whose string values are structure, not content.
const STRUCTURAL_KEYS: &[&str] = &[
    "role",
    "type",
    "id",
    "name",
    "finish_reason",
    "finishReason",
    "tool_call_id",
    "toolCallId",
    "toolName",
    "mime_type",
    "mimeType",
    "modality",
    "model",
    "index",
];

/// Keys visited first inside an object, so system text leads whatever the key order.
const LEADING_KEYS: &[&str] = &["system", "system_instructions", "instructions"];

/// Where a piece of content came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// A string attribute (JSON or plain text).
    Str(&'a str),
    /// A structured value (log bodies, kvlist attributes).
    Any(&'a AnyValue),
}

#[derive(Debug, Clone, Copy)]
struct Piece<'a> {
    side: Side,
    family: u8,
    index: u32,
    seq: u32,
    raw: Raw<'a>,
}

/// Content pieces of one span (or one span's log records), in arrival order.
#[derive(Debug, Default)]
pub(crate) struct ContentCollector<'a> {
    pieces: Vec<Piece<'a>>,
}

/// Hashes, sizes and PII of a span's content: all that is kept of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContentDigest {
    /// Keyed hash of the canonical prompt text.
    pub prompt_hash: Option<String>,
    /// Keyed hash of the canonical response text.
    pub response_hash: Option<String>,
    /// Characters in the canonical prompt text.
    pub prompt_chars: Option<i64>,
    /// Characters in the canonical response text.
    pub response_chars: Option<i64>,
    /// Id of the hash key.
    pub hash_key_id: Option<String>,
    /// PII types found in any of the content.
    pub pii: PiiSet,
}

impl<'a> ContentCollector<'a> {
    /// Adds a piece. `family` ranks conventions (lower wins for the hash); `index` orders
    /// messages within a family.
    pub(crate) fn push(&mut self, side: Side, family: u8, index: u32, raw: Raw<'a>) {
        if side == Side::Drop {
            return;
        }
        let seq = self.pieces.len() as u32;
        self.pieces.push(Piece {
            side,
            family,
            index,
            seq,
            raw,
        });
    }

    /// Number of pieces collected.
    pub(crate) fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether any prompt or response content was seen.
    pub(crate) fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Reduces the content to its digest: hashes of the best family's canonical text per side,
    /// PII from every family (a convention the hash does not use may still carry PII).
    pub(crate) fn digest(&self, key: &HashKey, scanner: &PiiScanner) -> ContentDigest {
        let mut d = ContentDigest {
            hash_key_id: Some(key.id().to_owned()),
            ..ContentDigest::default()
        };
        for side in [Side::Prompt, Side::Response] {
            let Some(best) = self
                .pieces
                .iter()
                .filter(|p| p.side == side)
                .map(|p| p.family)
                .min()
            else {
                continue;
            };
            let mut chosen: Vec<&Piece<'_>> = self
                .pieces
                .iter()
                .filter(|p| p.side == side && p.family == best)
                .collect();
            chosen.sort_by_key(|p| (p.index, p.seq));
            let mut canonical = String::new();
            for p in chosen {
                let text = piece_text(p.raw);
                if text.is_empty() {
                    continue;
                }
                if !canonical.is_empty() {
                    canonical.push('\n');
                }
                canonical.push_str(&text);
            }
            if !canonical.is_empty() {
                d.pii = d.pii.union(scanner.scan(&canonical));
                let chars = canonical.chars().count() as i64;
                let hash = key.hash(&canonical);
                match side {
                    Side::Prompt => {
                        d.prompt_hash = Some(hash);
                        d.prompt_chars = Some(chars);
                    }
                    _ => {
                        d.response_hash = Some(hash);
                        d.response_chars = Some(chars);
                    }
                }
            }
            for p in self
                .pieces
                .iter()
                .filter(|p| p.side == side && p.family != best)
            {
                d.pii = d.pii.union(scanner.scan(&piece_text(p.raw)));
            }
        }
        d
    }
}

/// The text of one piece: JSON is reduced to its content strings, anything else kept as is.
fn piece_text(raw: Raw<'_>) -> String {
    let mut out = Vec::new();
    match raw {
        Raw::Str(s) => text_of_str(s, &mut out),
        Raw::Any(AnyValue {
            value: Some(Value::StringValue(s)),
        }) => text_of_str(s, &mut out),
        Raw::Any(v) => collect_any(v, &mut out),
    }
    out.join("\n")
}

fn text_of_str(s: &str, out: &mut Vec<String>) {
    let t = s.trim_start();
    // Truncated or invalid JSON falls through: hash and scan the raw text rather than lose it.
    if (t.starts_with('[') || t.starts_with('{'))
        && let Ok(json) = serde_json::from_str::<Json>(s)
    {
        collect_json(&json, out);
        return;
    }
    if !s.is_empty() {
        out.push(s.to_owned());
    }
}

fn collect_json(v: &Json, out: &mut Vec<String>) {
    match v {
        // A message that is itself JSON is content as typed: only the outer layer is structure.
        Json::String(s) if !s.is_empty() => out.push(s.clone()),
        Json::Array(items) => items.iter().for_each(|i| collect_json(i, out)),
        Json::Object(map) => {
            for k in LEADING_KEYS {
                if let Some(v) = map.get(*k) {
                    collect_json(v, out);
                }
            }
            for (k, v) in map {
                if !STRUCTURAL_KEYS.contains(&k.as_str()) && !LEADING_KEYS.contains(&k.as_str()) {
                    collect_json(v, out);
                }
            }
        }
        _ => {}
    }
}

fn collect_any(v: &AnyValue, out: &mut Vec<String>) {
    match &v.value {
        // Inside a structure, a string is content as typed (like strings inside JSON).
        Some(Value::StringValue(s)) if !s.is_empty() => out.push(s.clone()),
        Some(Value::ArrayValue(a)) => a.values.iter().for_each(|i| collect_any(i, out)),
        Some(Value::KvlistValue(kv)) => {
            // Same order rule as JSON objects: leading keys, then the rest sorted by key.
            let mut entries: Vec<_> = kv.values.iter().collect();
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            for k in LEADING_KEYS {
                for e in entries.iter().filter(|e| e.key == *k) {
                    if let Some(v) = &e.value {
                        collect_any(v, out);
                    }
                }
            }
            for e in entries {
                let k = e.key.as_str();
                if STRUCTURAL_KEYS.contains(&k) || LEADING_KEYS.contains(&k) {
                    continue;
                }
                if let Some(v) = &e.value {
                    collect_any(v, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        piece_text(Raw::Str(s))
    }

    #[test]
    fn canonical_text_ignores_structure_and_key_order() {
        let otel = r#"[{"role":"system","parts":[{"content":"Be brief.","type":"text"}]},{"role":"user","parts":[{"type":"text","content":"Hi"}]}]"#;
        let vercel = r#"[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}]"#;
        assert_eq!(canon(otel), "Be brief.\nHi");
        assert_eq!(canon(vercel), "Be brief.\nHi");
        assert_eq!(
            canon(r#"{"prompt":"Hi","system":"Be brief."}"#),
            "Be brief.\nHi"
        );
    }

    #[test]
    fn object_keys_are_walked_in_sorted_order() {
        // Guards against serde_json's `preserve_order` feature being switched on by a
        // dependency: hashes of stored records would silently change.
        assert_eq!(canon(r#"{"b":"2","a":"1"}"#), "1\n2");
    }

    #[test]
    fn json_typed_by_the_user_is_kept_as_typed() {
        let s = r#"[{"role":"user","content":"{\"k\": [1, 2]}"}]"#;
        assert_eq!(canon(s), r#"{"k": [1, 2]}"#);
    }

    #[test]
    fn truncated_json_is_kept_raw() {
        assert_eq!(
            canon(r#"[{"role":"user","content":"Hi"#),
            r#"[{"role":"user","content":"Hi"#
        );
        assert_eq!(canon("plain text"), "plain text");
    }
}
