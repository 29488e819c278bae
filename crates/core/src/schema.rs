//! The Arrow schema of the audit log: the one source of truth for its columns.
//!
//! [`COLUMNS`] lists every column with its type and meaning; the writer, the query engine (`\d
//! audit_log`) and `docs/schema.md` are all derived from it (a test keeps the doc in sync).
//! [`records_to_batch`] turns [`AuditRecord`]s into a [`RecordBatch`] of [`audit_schema`].

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::money::{USD_PRECISION, USD_SCALE, Usd};
use crate::record::AuditRecord;

/// Logical type of a column, mapped to one Arrow [`DataType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `Utf8`.
    Text,
    /// `List<Utf8>` (non-null items).
    TextList,
    /// `Int64`.
    Int64,
    /// `Int32`.
    Int32,
    /// `Float64`.
    Float64,
    /// `Boolean`.
    Bool,
    /// `Timestamp(Microsecond, "UTC")`.
    TimestampUtc,
    /// `Date32`.
    Date,
    /// `Decimal128(38, 12)`, US dollars.
    Usd,
}

impl ColumnType {
    /// The Arrow type of this column type.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Text => DataType::Utf8,
            ColumnType::TextList => {
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, false)))
            }
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::TimestampUtc => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ColumnType::Date => DataType::Date32,
            ColumnType::Usd => DataType::Decimal128(USD_PRECISION, USD_SCALE),
        }
    }

    /// SQL-ish name for documentation.
    pub fn sql_name(self) -> &'static str {
        match self {
            ColumnType::Text => "STRING",
            ColumnType::TextList => "LIST<STRING>",
            ColumnType::Int64 => "BIGINT",
            ColumnType::Int32 => "INT",
            ColumnType::Float64 => "DOUBLE",
            ColumnType::Bool => "BOOLEAN",
            ColumnType::TimestampUtc => "TIMESTAMP(µs, UTC)",
            ColumnType::Date => "DATE",
            ColumnType::Usd => "DECIMAL(38,12)",
        }
    }
}

/// One column of the audit log.
#[derive(Debug, Clone, Copy)]
pub struct ColumnDef {
    /// Column name (snake_case).
    pub name: &'static str,
    /// Column type.
    pub ty: ColumnType,
    /// Whether the column may be NULL.
    pub nullable: bool,
    /// Group the column belongs to (identity, kind, who, what, when, usage, cost, outcome, privacy, other).
    pub group: &'static str,
    /// What the column means, for `\d audit_log` and docs/schema.md.
    pub description: &'static str,
}

const fn col(
    name: &'static str,
    ty: ColumnType,
    nullable: bool,
    group: &'static str,
    description: &'static str,
) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        nullable,
        group,
        description,
    }
}

use ColumnType as T;

/// Every column of the audit log, in schema order.
pub const COLUMNS: &[ColumnDef] = &[
    col(
        "record_id",
        T::Text,
        false,
        "identity",
        "Hex of the first 16 bytes of SHA-256(trace_id bytes ‖ span_id bytes). The dedupe key: the same span always gets the same id.",
    ),
    col(
        "tenant",
        T::Text,
        false,
        "identity",
        "Tenant: from the auth token, else the resource attribute `tenant.id` (configurable), else `default`. Partition key.",
    ),
    col(
        "trace_id",
        T::Text,
        false,
        "identity",
        "OTLP trace id, 32 lowercase hex characters.",
    ),
    col(
        "span_id",
        T::Text,
        false,
        "identity",
        "OTLP span id, 16 lowercase hex characters.",
    ),
    col(
        "parent_span_id",
        T::Text,
        true,
        "identity",
        "Parent span id (16 hex), NULL for a root span.",
    ),
    col(
        "call_id",
        T::Text,
        false,
        "identity",
        "One provider call: `provider:response_id` when the response id is known, else `record_id`. Spans describing the same provider response share it; count cost once per call_id.",
    ),
    col(
        "span_kind",
        T::Text,
        false,
        "kind",
        "Audit meaning: `llm_call`, `embeddings`, `tool_call`, `agent`, `workflow`, `other_genai`. Only `llm_call` and `embeddings` rows carry tokens and cost.",
    ),
    col(
        "operation",
        T::Text,
        true,
        "kind",
        "Normalized `gen_ai.operation.name` (`chat`, `text_completion`, `generate_content`, `embeddings`, `execute_tool`, `invoke_agent`, …).",
    ),
    col(
        "span_name",
        T::Text,
        false,
        "kind",
        "The span name as emitted.",
    ),
    col(
        "service_name",
        T::Text,
        true,
        "who",
        "Resource attribute `service.name`.",
    ),
    col(
        "service_version",
        T::Text,
        true,
        "who",
        "Resource attribute `service.version`.",
    ),
    col(
        "deployment_environment",
        T::Text,
        true,
        "who",
        "Resource attribute `deployment.environment.name` (or `deployment.environment`).",
    ),
    col(
        "user_id",
        T::Text,
        true,
        "who",
        "End user on whose behalf the call was made (`user.id`, `enduser.id`, `gen_ai.request.user`, `gen_ai.user`, Traceloop/Vercel metadata).",
    ),
    col(
        "session_id",
        T::Text,
        true,
        "who",
        "Conversation or session id (`gen_ai.conversation.id`, `session.id`, Traceloop/Vercel metadata).",
    ),
    col(
        "client_address",
        T::Text,
        true,
        "who",
        "`client.address` of the caller.",
    ),
    col("user_agent", T::Text, true, "who", "`user_agent.original`."),
    col(
        "server_address",
        T::Text,
        true,
        "who",
        "`server.address` of the model endpoint.",
    ),
    col(
        "provider",
        T::Text,
        true,
        "what",
        "Normalized provider: `openai`, `anthropic`, `gcp.gemini`, `gcp.vertex_ai`, `aws.bedrock`, `azure.ai.openai`, `deepseek`, `mistral_ai`, `x_ai`, …",
    ),
    col("request_model", T::Text, true, "what", "Model requested."),
    col(
        "response_model",
        T::Text,
        true,
        "what",
        "Model that answered (often with a date suffix).",
    ),
    col(
        "response_id",
        T::Text,
        true,
        "what",
        "Provider's response id.",
    ),
    col(
        "finish_reasons",
        T::TextList,
        true,
        "what",
        "Finish reason of each choice.",
    ),
    col(
        "request_temperature",
        T::Float64,
        true,
        "what",
        "Requested sampling temperature.",
    ),
    col(
        "request_max_tokens",
        T::Int64,
        true,
        "what",
        "Requested maximum output tokens.",
    ),
    col(
        "streaming",
        T::Bool,
        true,
        "what",
        "Whether the response was streamed.",
    ),
    col(
        "start_time",
        T::TimestampUtc,
        false,
        "when",
        "Span start (UTC, µs). The `dt` partition is its date.",
    ),
    col(
        "start_time_unix_nano",
        T::Int64,
        false,
        "when",
        "Span start exactly as sent, nanoseconds since the Unix epoch.",
    ),
    col(
        "end_time",
        T::TimestampUtc,
        false,
        "when",
        "Span end (UTC, µs).",
    ),
    col(
        "duration_ms",
        T::Float64,
        false,
        "when",
        "end_time − start_time in milliseconds.",
    ),
    col(
        "time_to_first_token_ms",
        T::Float64,
        true,
        "when",
        "Time to the first token or chunk, milliseconds (streaming).",
    ),
    col(
        "input_tokens",
        T::Int64,
        true,
        "usage",
        "Input tokens, cached ones included (OTel meaning). Provider calls only.",
    ),
    col(
        "output_tokens",
        T::Int64,
        true,
        "usage",
        "Output tokens, reasoning ones included. Provider calls only.",
    ),
    col(
        "cached_input_tokens",
        T::Int64,
        true,
        "usage",
        "Input tokens served from the provider's prompt cache (part of input_tokens).",
    ),
    col(
        "cache_write_input_tokens",
        T::Int64,
        true,
        "usage",
        "Input tokens written to the provider's prompt cache (part of input_tokens).",
    ),
    col(
        "reasoning_tokens",
        T::Int64,
        true,
        "usage",
        "Output tokens spent on reasoning (part of output_tokens).",
    ),
    col(
        "total_tokens",
        T::Int64,
        true,
        "usage",
        "Total tokens as reported, else input_tokens + output_tokens.",
    ),
    col(
        "input_cost_usd",
        T::Usd,
        true,
        "cost",
        "Cost of the input tokens in USD: uncached at the input rate, cached at the cached rate, cache writes at the cache-write rate.",
    ),
    col(
        "output_cost_usd",
        T::Usd,
        true,
        "cost",
        "Cost of the output tokens in USD.",
    ),
    col(
        "total_cost_usd",
        T::Usd,
        true,
        "cost",
        "input_cost_usd + output_cost_usd (or the reported cost when cost_source = 'reported'). NULL when unknown, never a guessed 0.",
    ),
    col(
        "reported_cost_usd",
        T::Usd,
        true,
        "cost",
        "Cost the span itself claimed (`gen_ai.usage.cost`, `llm.cost.total`), kept for comparison.",
    ),
    col(
        "cost_source",
        T::Text,
        true,
        "cost",
        "`price_table`, `reported` or `unpriced`; NULL on rows that are not provider calls.",
    ),
    col(
        "price_id",
        T::Text,
        true,
        "cost",
        "Price entry applied, `provider/model@effective_from#table_version`, so every cost can be recomputed later.",
    ),
    col(
        "status",
        T::Text,
        false,
        "outcome",
        "`ok`, `error` or `unset`: the span status; an UNSET status with an `error.type` attribute counts as `error`.",
    ),
    col(
        "error_type",
        T::Text,
        true,
        "outcome",
        "`error.type`, else the `exception.type` of an exception event.",
    ),
    col(
        "error_message",
        T::Text,
        true,
        "outcome",
        "Span status message (for ERROR status), else the message of the first exception event.",
    ),
    col(
        "http_status_code",
        T::Int32,
        true,
        "outcome",
        "HTTP status of the provider response (`http.response.status_code`, or parsed from an SDK error such as `Error code: 429`).",
    ),
    col(
        "content_captured",
        T::Bool,
        false,
        "privacy",
        "Whether the telemetry carried prompt or response text (in attributes, events or correlated log records). The text itself is never stored.",
    ),
    col(
        "prompt_hash",
        T::Text,
        true,
        "privacy",
        "HMAC-SHA-256 (hex) of the canonical prompt text under the deployment's hash key.",
    ),
    col(
        "response_hash",
        T::Text,
        true,
        "privacy",
        "HMAC-SHA-256 (hex) of the canonical response text.",
    ),
    col(
        "hash_key_id",
        T::Text,
        true,
        "privacy",
        "Id of the key that made prompt_hash/response_hash (for key rotation).",
    ),
    col(
        "prompt_chars",
        T::Int64,
        true,
        "privacy",
        "Characters in the canonical prompt text.",
    ),
    col(
        "response_chars",
        T::Int64,
        true,
        "privacy",
        "Characters in the canonical response text.",
    ),
    col(
        "pii_detected",
        T::Bool,
        false,
        "privacy",
        "Whether PII was found in the content.",
    ),
    col(
        "pii_types",
        T::TextList,
        false,
        "privacy",
        "PII types found (`EMAIL`, `PHONE`, `CREDIT_CARD`, `US_SSN`, `IBAN`, `IP_ADDRESS`, `KR_RRN`, `API_KEY`, `SECRET`); never the values.",
    ),
    col(
        "data_classification",
        T::Text,
        false,
        "privacy",
        "`public`, `internal`, `confidential` or `restricted`.",
    ),
    col(
        "retention_until",
        T::Date,
        true,
        "privacy",
        "Last day the record must be kept under the retention policy in force at ingest.",
    ),
    col(
        "attributes",
        T::Text,
        false,
        "other",
        "JSON object of span attributes not mapped to a column, content-carrying attributes removed.",
    ),
    col(
        "resource_attributes",
        T::Text,
        false,
        "other",
        "JSON object of resource attributes not mapped to a column.",
    ),
    col(
        "ingest_time",
        T::TimestampUtc,
        false,
        "other",
        "When genai-audit received the span (UTC, µs).",
    ),
    col(
        "source",
        T::Text,
        false,
        "other",
        "`otlp-grpc`, `otlp-http`, `import` or `sdk`.",
    ),
    col(
        "collector_id",
        T::Text,
        false,
        "other",
        "Id of the collector or exporter that wrote the record.",
    ),
];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|c| Field::new(c.name, c.ty.data_type(), c.nullable))
            .collect::<Vec<_>>(),
    ))
});

/// The Arrow schema of one audit row.
pub fn audit_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Looks up a column by name.
pub fn column(name: &str) -> Option<&'static ColumnDef> {
    COLUMNS.iter().find(|c| c.name == name)
}

/// Stable fingerprint of the schema (hex SHA-256 of `name:type:nullable` lines), recorded with
/// each file so a verifier can tell which schema wrote it.
pub fn schema_fingerprint() -> String {
    let mut h = Sha256::new();
    for c in COLUMNS {
        h.update(format!("{}:{:?}:{}\n", c.name, c.ty.data_type(), c.nullable).as_bytes());
    }
    const_hex::encode(h.finalize())
}

/// Renders the column reference as a Markdown table (the body of docs/schema.md).
pub fn columns_markdown() -> String {
    let mut out = String::from("| column | type | null | meaning |\n|---|---|---|---|\n");
    let mut group = "";
    for c in COLUMNS {
        if c.group != group {
            group = c.group;
            out.push_str(&format!("| **{group}** | | | |\n"));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            c.name,
            c.ty.sql_name(),
            if c.nullable { "yes" } else { "no" },
            c.description.replace('|', "\\|")
        ));
    }
    out
}

fn usd_builder(cap: usize) -> Result<Decimal128Builder> {
    Decimal128Builder::with_capacity(cap)
        .with_precision_and_scale(USD_PRECISION, USD_SCALE)
        .map_err(Error::arrow)
}

fn ts_builder(cap: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC")
}

fn list_builder(cap: usize) -> ListBuilder<StringBuilder> {
    ListBuilder::with_capacity(StringBuilder::new(), cap).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )))
}

/// Converts records into one [`RecordBatch`] of [`audit_schema`].
pub fn records_to_batch(records: &[AuditRecord]) -> Result<RecordBatch> {
    let refs: Vec<&AuditRecord> = records.iter().collect();
    records_to_batch_refs(&refs)
}

/// Like [`records_to_batch`], in the order of `records` (sort references, not records, to
/// write sorted files without copying every column afterwards).
pub fn records_to_batch_refs(records: &[&AuditRecord]) -> Result<RecordBatch> {
    let mut columns = Columns::with_capacity(records.len())?;
    // One pass, every column per record: a record (and its strings) is read from memory once,
    // not once per column. Records are large and, when sorted by reference, visited in random
    // order; sixty passes over them cost more than everything else the encoder does.
    for r in records {
        columns.push(r);
    }
    RecordBatch::try_new(audit_schema(), columns.finish()).map_err(Error::arrow)
}

/// Declares [`Columns`]: one Arrow builder per column, in schema order, with how a record fills
/// it. Kinds: `text(bytes per row)`, `prim(builder)`, `usd`, `ts`, `list(nullable)`.
macro_rules! columns {
    ($($name:ident: $kind:ident $(($arg:tt))? = |$r:ident| $value:expr;)*) => {
        /// Builders of every column of [`audit_schema`].
        struct Columns {
            $($name: columns!(@type $kind $(($arg))?),)*
        }

        impl Columns {
            /// Column names in declaration order (a test checks them against [`COLUMNS`]).
            #[cfg(test)]
            const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            fn with_capacity(n: usize) -> Result<Self> {
                Ok(Self { $($name: columns!(@new n, $kind $(($arg))?),)* })
            }

            #[inline]
            fn push(&mut self, r: &AuditRecord) {
                $({
                    let $r = r;
                    columns!(@push self.$name, $kind $(($arg))?, $value);
                })*
            }

            fn finish(mut self) -> Vec<ArrayRef> {
                vec![$(Arc::new(self.$name.finish()) as ArrayRef,)*]
            }
        }
    };
    (@type text($bytes:tt)) => { StringBuilder };
    (@type prim($builder:ty)) => { $builder };
    (@type usd) => { Decimal128Builder };
    (@type ts) => { TimestampMicrosecondBuilder };
    (@type list($nullable:tt)) => { ListBuilder<StringBuilder> };
    (@new $n:ident, text($bytes:tt)) => { StringBuilder::with_capacity($n, $n * $bytes) };
    (@new $n:ident, prim($builder:ty)) => { <$builder>::with_capacity($n) };
    (@new $n:ident, usd) => { usd_builder($n)? };
    (@new $n:ident, ts) => { ts_builder($n) };
    (@new $n:ident, list($nullable:tt)) => { list_builder($n) };
    (@push $b:expr, text($bytes:tt), $v:expr) => { $b.append_option($v) };
    (@push $b:expr, prim($builder:ty), $v:expr) => { $b.append_option($v) };
    (@push $b:expr, usd, $v:expr) => { $b.append_option($v.map(Usd::raw)) };
    (@push $b:expr, ts, $v:expr) => { $b.append_value($v) };
    (@push $b:expr, list($nullable:tt), $v:expr) => {{
        let items: &[String] = $v;
        if $nullable && items.is_empty() {
            $b.append_null();
        } else {
            for s in items {
                $b.values().append_value(s);
            }
            $b.append(true);
        }
    }};
}

columns! {
    record_id: text(32) = |r| Some(r.record_id.as_str());
    tenant: text(8) = |r| Some(&*r.tenant);
    trace_id: text(32) = |r| Some(r.trace_id.as_str());
    span_id: text(16) = |r| Some(r.span_id.as_str());
    parent_span_id: text(16) = |r| r.parent_span_id.as_deref();
    call_id: text(48) = |r| Some(r.call_id.as_str());
    span_kind: text(8) = |r| Some(r.span_kind.as_str());
    operation: text(8) = |r| r.operation.as_deref();
    span_name: text(16) = |r| Some(r.span_name.as_str());
    service_name: text(16) = |r| r.service_name.as_deref();
    service_version: text(8) = |r| r.service_version.as_deref();
    deployment_environment: text(8) = |r| r.deployment_environment.as_deref();
    user_id: text(16) = |r| r.user_id.as_deref();
    session_id: text(16) = |r| r.session_id.as_deref();
    client_address: text(8) = |r| r.client_address.as_deref();
    user_agent: text(8) = |r| r.user_agent.as_deref();
    server_address: text(8) = |r| r.server_address.as_deref();
    provider: text(8) = |r| r.provider.as_deref();
    request_model: text(16) = |r| r.request_model.as_deref();
    response_model: text(16) = |r| r.response_model.as_deref();
    response_id: text(40) = |r| r.response_id.as_deref();
    finish_reasons: list(true) = |r| &r.finish_reasons;
    request_temperature: prim(Float64Builder) = |r| r.request_temperature;
    request_max_tokens: prim(Int64Builder) = |r| r.request_max_tokens;
    streaming: prim(BooleanBuilder) = |r| r.streaming;
    start_time: ts = |r| r.start_time_us;
    start_time_unix_nano: prim(Int64Builder) = |r| Some(r.start_time_unix_nano);
    end_time: ts = |r| r.end_time_us;
    duration_ms: prim(Float64Builder) = |r| Some(r.duration_ms);
    time_to_first_token_ms: prim(Float64Builder) = |r| r.time_to_first_token_ms;
    input_tokens: prim(Int64Builder) = |r| r.input_tokens;
    output_tokens: prim(Int64Builder) = |r| r.output_tokens;
    cached_input_tokens: prim(Int64Builder) = |r| r.cached_input_tokens;
    cache_write_input_tokens: prim(Int64Builder) = |r| r.cache_write_input_tokens;
    reasoning_tokens: prim(Int64Builder) = |r| r.reasoning_tokens;
    total_tokens: prim(Int64Builder) = |r| r.total_tokens;
    input_cost_usd: usd = |r| r.input_cost_usd;
    output_cost_usd: usd = |r| r.output_cost_usd;
    total_cost_usd: usd = |r| r.total_cost_usd;
    reported_cost_usd: usd = |r| r.reported_cost_usd;
    cost_source: text(8) = |r| r.cost_source.map(|c| c.as_str());
    price_id: text(32) = |r| r.price_id.as_deref();
    status: text(4) = |r| Some(r.status.as_str());
    error_type: text(4) = |r| r.error_type.as_deref();
    error_message: text(4) = |r| r.error_message.as_deref();
    http_status_code: prim(Int32Builder) = |r| r.http_status_code;
    content_captured: prim(BooleanBuilder) = |r| Some(r.content_captured);
    prompt_hash: text(16) = |r| r.prompt_hash.as_deref();
    response_hash: text(16) = |r| r.response_hash.as_deref();
    hash_key_id: text(8) = |r| r.hash_key_id.as_deref();
    prompt_chars: prim(Int64Builder) = |r| r.prompt_chars;
    response_chars: prim(Int64Builder) = |r| r.response_chars;
    pii_detected: prim(BooleanBuilder) = |r| Some(r.pii_detected);
    pii_types: list(false) = |r| &r.pii_types;
    data_classification: text(8) = |r| Some(r.data_classification.as_str());
    retention_until: prim(Date32Builder) = |r| r.retention_until_days;
    attributes: text(64) = |r| Some(r.attributes.as_str());
    resource_attributes: text(64) = |r| Some(&*r.resource_attributes);
    ingest_time: ts = |r| r.ingest_time_us;
    source: text(8) = |r| Some(r.source.as_str());
    collector_id: text(8) = |r| Some(&*r.collector_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/schema.md embeds the generated column table; regenerate with
    /// `UPDATE_DOCS=1 cargo test -p genai-audit-core docs_schema`.
    #[test]
    fn docs_schema_md_is_in_sync() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let (begin, end) = ("<!-- columns:begin -->\n", "<!-- columns:end -->");
        let table = columns_markdown();
        let (Some(b), Some(e)) = (doc.find(begin), doc.find(end)) else {
            panic!("{} lacks the column markers", path.display());
        };
        let current = &doc[b + begin.len()..e];
        if current != table {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                let updated = format!("{}{table}{}", &doc[..b + begin.len()], &doc[e..]);
                std::fs::write(&path, updated).unwrap();
            } else {
                panic!(
                    "docs/schema.md is out of date: run UPDATE_DOCS=1 cargo test -p genai-audit-core docs_schema"
                );
            }
        }
    }

    #[test]
    fn builders_are_declared_in_schema_order() {
        let names: Vec<_> = COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(Columns::NAMES, names.as_slice());
    }

    #[test]
    fn schema_has_every_column_once_with_the_required_types() {
        let schema = audit_schema();
        assert_eq!(schema.fields().len(), COLUMNS.len());
        let mut names: Vec<_> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COLUMNS.len());
        for ts in ["start_time", "end_time", "ingest_time"] {
            assert_eq!(
                schema.field_with_name(ts).unwrap().data_type(),
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            );
        }
        for money in [
            "input_cost_usd",
            "output_cost_usd",
            "total_cost_usd",
            "reported_cost_usd",
        ] {
            assert!(matches!(
                schema.field_with_name(money).unwrap().data_type(),
                DataType::Decimal128(_, s) if *s >= 9
            ));
        }
        assert_eq!(schema_fingerprint().len(), 64);
    }
}
