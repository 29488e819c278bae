//! The audit record: one row per GenAI span.
//!
//! Field order and meaning follow [`crate::schema`], which is the single source of truth for the
//! columns; every field here has exactly one column there.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::money::Usd;

/// What a span means to an auditor.
///
/// Only [`SpanKind::LlmCall`] and [`SpanKind::Embeddings`] rows are provider calls: only they carry
/// tokens and cost, so `SUM(total_cost_usd)` never counts a call twice through its wrappers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// A call to a model that generates text or content (chat, completion, generate_content).
    LlmCall,
    /// A call to an embeddings model.
    Embeddings,
    /// Execution of a tool requested by a model.
    ToolCall,
    /// An agent invocation (may roll up the calls made inside it).
    Agent,
    /// A workflow, chain or SDK wrapper span around one or more calls.
    Workflow,
    /// Any other GenAI span (retriever, reranker, guardrail, evaluator, …).
    OtherGenai,
}

impl SpanKind {
    /// The value stored in the `span_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::LlmCall => "llm_call",
            SpanKind::Embeddings => "embeddings",
            SpanKind::ToolCall => "tool_call",
            SpanKind::Agent => "agent",
            SpanKind::Workflow => "workflow",
            SpanKind::OtherGenai => "other_genai",
        }
    }

    /// Whether rows of this kind are provider calls that carry tokens and cost.
    pub fn is_provider_call(self) -> bool {
        matches!(self, SpanKind::LlmCall | SpanKind::Embeddings)
    }
}

/// The outcome of the span, from its OTLP status (and `error.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Status code `OK`.
    Ok,
    /// Status code `ERROR`, or `UNSET` with an `error.type` attribute.
    Error,
    /// Status code `UNSET` and no error recorded.
    Unset,
}

impl Status {
    /// The value stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Unset => "unset",
        }
    }
}

/// Where the cost columns came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// Computed from the price table entry named in `price_id`.
    PriceTable,
    /// The price table gave no cost (unknown model, or no token usage on the span), but the span
    /// reported its own cost; that figure is used. `price_id` is set when the model was known.
    Reported,
    /// No cost could be established: unknown model, or no token usage on the span.
    Unpriced,
}

impl CostSource {
    /// The value stored in the `cost_source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::PriceTable => "price_table",
            CostSource::Reported => "reported",
            CostSource::Unpriced => "unpriced",
        }
    }
}

/// Data classification of a call, from the PII found in its content.
///
/// Ordered from least to most sensitive, so `a < b` means `b` is more sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClassification {
    /// Explicitly public data (only by configuration; never inferred).
    Public,
    /// No PII found.
    Internal,
    /// Personal data that is not a secret or a national/financial identifier.
    Confidential,
    /// Secrets, card numbers and national identifiers.
    Restricted,
}

impl DataClassification {
    /// The value stored in the `data_classification` column.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClassification::Public => "public",
            DataClassification::Internal => "internal",
            DataClassification::Confidential => "confidential",
            DataClassification::Restricted => "restricted",
        }
    }

    /// Parses a column value (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "public" => Some(Self::Public),
            "internal" => Some(Self::Internal),
            "confidential" => Some(Self::Confidential),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for DataClassification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the record reached genai-audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// OTLP over gRPC.
    #[serde(rename = "otlp-grpc")]
    OtlpGrpc,
    /// OTLP over HTTP (protobuf or JSON).
    #[serde(rename = "otlp-http")]
    OtlpHttp,
    /// `genai-audit import` of OTLP files.
    #[serde(rename = "import")]
    Import,
    /// The in-process `SpanExporter`.
    #[serde(rename = "sdk")]
    Sdk,
}

impl Source {
    /// The value stored in the `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OtlpGrpc => "otlp-grpc",
            Source::OtlpHttp => "otlp-http",
            Source::Import => "import",
            Source::Sdk => "sdk",
        }
    }
}

/// One audit row: everything an auditor may ask about one GenAI span.
///
/// Timestamps are microseconds since the Unix epoch (UTC); `retention_until` is days since the
/// epoch. Strings shared by every span of one OTLP resource are `Arc<str>` so normalizing a batch
/// does not copy them per span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    // identity
    /// Hex of the first 16 bytes of SHA-256(trace_id ‖ span_id): the dedupe key.
    pub record_id: String,
    /// Tenant the record belongs to (partition key).
    pub tenant: Arc<str>,
    /// 32 lowercase hex characters.
    pub trace_id: String,
    /// 16 lowercase hex characters.
    pub span_id: String,
    /// 16 lowercase hex characters, if the span has a parent.
    pub parent_span_id: Option<String>,
    /// One provider call: `provider:response_id` when known, else `record_id`.
    pub call_id: String,

    // kind
    /// Audit meaning of the span.
    pub span_kind: SpanKind,
    /// Normalized `gen_ai.operation.name` (`chat`, `embeddings`, `execute_tool`, …).
    pub operation: Option<String>,
    /// The span's name as emitted.
    pub span_name: String,

    // who / where
    /// `service.name` resource attribute.
    pub service_name: Option<Arc<str>>,
    /// `service.version` resource attribute.
    pub service_version: Option<Arc<str>>,
    /// `deployment.environment.name` (or the older `deployment.environment`).
    pub deployment_environment: Option<Arc<str>>,
    /// End user on whose behalf the call was made.
    pub user_id: Option<String>,
    /// Conversation / session id.
    pub session_id: Option<String>,
    /// `client.address`.
    pub client_address: Option<String>,
    /// `user_agent.original`.
    pub user_agent: Option<String>,
    /// `server.address` of the model endpoint.
    pub server_address: Option<String>,

    // what
    /// Normalized provider name (`openai`, `anthropic`, `gcp.gemini`, …).
    pub provider: Option<String>,
    /// Model asked for.
    pub request_model: Option<String>,
    /// Model that answered.
    pub response_model: Option<String>,
    /// Provider's response id.
    pub response_id: Option<String>,
    /// Finish reasons, one per choice.
    pub finish_reasons: Vec<String>,
    /// Requested sampling temperature.
    pub request_temperature: Option<f64>,
    /// Requested maximum output tokens.
    pub request_max_tokens: Option<i64>,
    /// Whether the response was streamed.
    pub streaming: Option<bool>,

    // when
    /// Span start, µs since epoch (UTC).
    pub start_time_us: i64,
    /// Span start exactly as sent, ns since epoch.
    pub start_time_unix_nano: i64,
    /// Span end, µs since epoch (UTC).
    pub end_time_us: i64,
    /// `end - start` in milliseconds.
    pub duration_ms: f64,
    /// Time to first token/chunk in milliseconds.
    pub time_to_first_token_ms: Option<f64>,

    // usage
    /// Input tokens, cached ones included (OTel meaning).
    pub input_tokens: Option<i64>,
    /// Output tokens, reasoning ones included.
    pub output_tokens: Option<i64>,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input_tokens: Option<i64>,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_input_tokens: Option<i64>,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: Option<i64>,
    /// Total tokens (reported, else input + output).
    pub total_tokens: Option<i64>,

    // cost
    /// Cost of the input tokens.
    pub input_cost_usd: Option<Usd>,
    /// Cost of the output tokens.
    pub output_cost_usd: Option<Usd>,
    /// Total cost of the call.
    pub total_cost_usd: Option<Usd>,
    /// Cost the span itself reported, if any.
    pub reported_cost_usd: Option<Usd>,
    /// Where the cost came from; `None` on rows that are not provider calls.
    pub cost_source: Option<CostSource>,
    /// Price entry (and table version) applied, e.g. `openai/gpt-4.1@2025-04-14`.
    pub price_id: Option<String>,

    // outcome
    /// Outcome of the span.
    pub status: Status,
    /// `error.type`, else the exception type.
    pub error_type: Option<String>,
    /// Span status message, else the exception message.
    pub error_message: Option<String>,
    /// HTTP status code of the provider response.
    pub http_status_code: Option<i32>,

    // privacy
    /// Whether the telemetry carried prompt or response text.
    pub content_captured: bool,
    /// Keyed hash (HMAC-SHA-256, hex) of the canonical prompt text.
    pub prompt_hash: Option<String>,
    /// Keyed hash (HMAC-SHA-256, hex) of the canonical response text.
    pub response_hash: Option<String>,
    /// Id of the key used for both hashes.
    pub hash_key_id: Option<String>,
    /// Characters (Unicode scalar values) in the canonical prompt text.
    pub prompt_chars: Option<i64>,
    /// Characters (Unicode scalar values) in the canonical response text.
    pub response_chars: Option<i64>,
    /// Whether any PII was found in the content.
    pub pii_detected: bool,
    /// PII types found, sorted, without duplicates.
    pub pii_types: Vec<String>,
    /// Data classification.
    pub data_classification: DataClassification,
    /// Last day (days since epoch, UTC) the record must be kept.
    pub retention_until_days: Option<i32>,

    // the rest
    /// JSON object of span attributes not mapped to a column (content removed).
    pub attributes: String,
    /// JSON object of resource attributes not mapped to a column.
    pub resource_attributes: Arc<str>,
    /// When genai-audit received the span, µs since epoch.
    pub ingest_time_us: i64,
    /// How the span arrived.
    pub source: Source,
    /// Id of the collector (or exporter) that wrote the record.
    pub collector_id: Arc<str>,
}
