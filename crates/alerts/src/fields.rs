//! The record fields custom rules can name, as borrowed values (no copies).

use genai_audit_core::AuditRecord;

/// Type of a field as CEL sees it. Every scalar field but the booleans may be `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Str,
    Int,
    Double,
    Bool,
    StrList,
}

/// A field's value, borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FieldValue<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
    StrList(&'a [String]),
}

/// A field of the record, by index into [`FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field(u8);

/// Name and type of every field, in the order of [`Field::get`].
pub(crate) const FIELDS: &[(&str, FieldType)] = &[
    ("tenant", FieldType::Str),
    ("user_id", FieldType::Str),
    ("session_id", FieldType::Str),
    ("service_name", FieldType::Str),
    ("service_version", FieldType::Str),
    ("deployment_environment", FieldType::Str),
    ("provider", FieldType::Str),
    ("request_model", FieldType::Str),
    ("response_model", FieldType::Str),
    ("operation", FieldType::Str),
    ("span_kind", FieldType::Str),
    ("span_name", FieldType::Str),
    ("status", FieldType::Str),
    ("error_type", FieldType::Str),
    ("http_status_code", FieldType::Int),
    ("client_address", FieldType::Str),
    ("server_address", FieldType::Str),
    ("input_tokens", FieldType::Int),
    ("output_tokens", FieldType::Int),
    ("total_tokens", FieldType::Int),
    ("reasoning_tokens", FieldType::Int),
    ("cached_input_tokens", FieldType::Int),
    ("duration_ms", FieldType::Double),
    ("time_to_first_token_ms", FieldType::Double),
    ("total_cost_usd", FieldType::Double),
    ("cost_source", FieldType::Str),
    ("data_classification", FieldType::Str),
    ("pii_detected", FieldType::Bool),
    ("pii_types", FieldType::StrList),
    ("content_captured", FieldType::Bool),
    ("prompt_chars", FieldType::Int),
    ("response_chars", FieldType::Int),
    ("streaming", FieldType::Bool),
    ("request_temperature", FieldType::Double),
    ("request_max_tokens", FieldType::Int),
    ("finish_reasons", FieldType::StrList),
    ("source", FieldType::Str),
];

impl Field {
    /// The field named `name`.
    pub(crate) fn by_name(name: &str) -> Option<Field> {
        FIELDS
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| Field(i as u8))
    }

    pub(crate) fn ty(self) -> FieldType {
        FIELDS[self.0 as usize].1
    }

    /// The value of this field in `r`.
    pub(crate) fn get(self, r: &AuditRecord) -> FieldValue<'_> {
        use FieldValue::*;
        fn s(v: Option<&str>) -> FieldValue<'_> {
            v.map_or(Null, Str)
        }
        let i = |v: Option<i64>| v.map_or(Null, Int);
        let d = |v: Option<f64>| v.map_or(Null, Double);
        match self.0 {
            0 => Str(&r.tenant),
            1 => s(r.user_id.as_deref()),
            2 => s(r.session_id.as_deref()),
            3 => s(r.service_name.as_deref()),
            4 => s(r.service_version.as_deref()),
            5 => s(r.deployment_environment.as_deref()),
            6 => s(r.provider.as_deref()),
            7 => s(r.request_model.as_deref()),
            8 => s(r.response_model.as_deref()),
            9 => s(r.operation.as_deref()),
            10 => Str(r.span_kind.as_str()),
            11 => Str(&r.span_name),
            12 => Str(r.status.as_str()),
            13 => s(r.error_type.as_deref()),
            14 => i(r.http_status_code.map(i64::from)),
            15 => s(r.client_address.as_deref()),
            16 => s(r.server_address.as_deref()),
            17 => i(r.input_tokens),
            18 => i(r.output_tokens),
            19 => i(r.total_tokens),
            20 => i(r.reasoning_tokens),
            21 => i(r.cached_input_tokens),
            22 => Double(r.duration_ms),
            23 => d(r.time_to_first_token_ms),
            24 => d(r.total_cost_usd.map(usd_f64)),
            25 => s(r.cost_source.map(|c| c.as_str())),
            26 => Str(r.data_classification.as_str()),
            27 => Bool(r.pii_detected),
            28 => StrList(&r.pii_types),
            29 => Bool(r.content_captured),
            30 => i(r.prompt_chars),
            31 => i(r.response_chars),
            32 => r.streaming.map_or(Null, Bool),
            33 => d(r.request_temperature),
            34 => i(r.request_max_tokens),
            35 => StrList(&r.finish_reasons),
            _ => Str(r.source.as_str()),
        }
    }
}

/// Dollars as a float (for display and CEL; sums are kept exact elsewhere).
pub(crate) fn usd_f64(u: genai_audit_core::Usd) -> f64 {
    u.raw() as f64 / 1e12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_resolves_by_name_and_index() {
        assert!(FIELDS.len() < 256);
        for (i, (name, _)) in FIELDS.iter().enumerate() {
            assert_eq!(Field::by_name(name), Some(Field(i as u8)), "{name}");
        }
        assert_eq!(
            Field::by_name("source"),
            Some(Field(FIELDS.len() as u8 - 1))
        );
        assert_eq!(Field::by_name("nope"), None);
    }
}
