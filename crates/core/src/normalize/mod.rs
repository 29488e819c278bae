//! Normalization: OTLP GenAI spans (and the log records that carry their content) → audit records.
//!
//! A pure, synchronous transform in the shape of a Vector transform: the receiver, the importer
//! and the in-process exporter all feed it decoded OTLP requests and get back records plus, for
//! every span that produced none, the reason.
//!
//! Each field is read through an ordered list of attribute keys covering every convention
//! genai-audit understands (see `keys.rs` and docs/conventions.md): OTel GenAI semconv old and
//! new, OpenLLMetry/Traceloop, OpenInference, OpenLIT and the Vercel AI SDK, mixed freely.
//! Content (prompts and responses, wherever they travel: attributes, span events, or correlated
//! OTLP log records) is reduced to keyed hashes, sizes and PII flags; the text is never kept.

mod classify;
mod content;
mod keys;
mod value;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use sha2::{Digest, Sha256};

pub use content::ContentDigest;

use self::classify::{KindSignals, classify, normalize_provider};
use self::content::{ContentCollector, Raw};
use self::keys::{
    FIELD_COUNT, FIELD_KEYS, Field, KEY_INDEX, Side, content_key, is_genai_key, is_usage_field,
};
use self::value::{
    as_bool, as_count, as_f64, as_i64, as_str, as_string_list, as_text, is_absent_value,
    write_json, write_json_str,
};
use crate::classify::ClassificationRules;
use crate::cost::{PriceResult, PriceTable, Usage};
use crate::hash::HashKey;
use crate::money::Usd;
use crate::pii::PiiScanner;
use crate::record::{AuditRecord, CostSource, Source, SpanKind, Status};
use crate::retention::RetentionPolicy;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Settings of a [`Normalizer`].
#[derive(Debug, Clone)]
pub struct NormalizerConfig {
    /// Resource attribute naming the tenant when authentication does not (default `tenant.id`).
    pub tenant_attribute: String,
    /// Tenant of spans that name none (default `default`).
    pub default_tenant: String,
    /// Prices used for the cost columns.
    pub prices: Arc<PriceTable>,
    /// PII type → data classification rules.
    pub classification: ClassificationRules,
    /// Retention policy stamped as `retention_until`.
    pub retention: RetentionPolicy,
}

impl Default for NormalizerConfig {
    fn default() -> Self {
        Self {
            tenant_attribute: "tenant.id".to_owned(),
            default_tenant: "default".to_owned(),
            prices: Arc::new(PriceTable::embedded()),
            classification: ClassificationRules::default(),
            retention: RetentionPolicy::default(),
        }
    }
}

/// What the caller knows about one incoming request.
#[derive(Debug, Clone)]
pub struct IngestContext {
    /// How the request arrived.
    pub source: Source,
    /// Id of this collector or exporter.
    pub collector_id: Arc<str>,
    /// When the request was received, µs since epoch.
    pub ingest_time_us: i64,
    /// Tenant fixed by authentication: overrides anything the spans say.
    pub tenant: Option<Arc<str>>,
}

impl IngestContext {
    /// A context with no authenticated tenant.
    pub fn new(source: Source, collector_id: &str, ingest_time_us: i64) -> Self {
        Self {
            source,
            collector_id: collector_id.into(),
            ingest_time_us,
            tenant: None,
        }
    }

    /// Fixes the tenant (from an auth token), so resource attributes cannot override it.
    pub fn with_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
}

/// Why a span produced no record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The span has no GenAI attributes (dropped, not an error).
    NotGenAi,
    /// The trace id is not 16 bytes, or is all zeros.
    InvalidTraceId {
        /// Its length in bytes.
        len: usize,
    },
    /// The span id is not 8 bytes, or is all zeros.
    InvalidSpanId {
        /// Its length in bytes.
        len: usize,
    },
    /// `start_time_unix_nano` is 0.
    MissingStartTime,
    /// A timestamp does not fit a signed 64-bit nanosecond count.
    TimestampOutOfRange,
    /// The tenant named by the resource is not a valid partition name.
    InvalidTenant {
        /// The tenant as sent.
        tenant: String,
    },
}

impl SkipReason {
    /// Whether the span was malformed (to be reported as rejected in OTLP `partial_success`)
    /// rather than merely out of scope.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, SkipReason::NotGenAi)
    }

    /// Short stable label, for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NotGenAi => "not_genai",
            SkipReason::InvalidTraceId { .. } => "invalid_trace_id",
            SkipReason::InvalidSpanId { .. } => "invalid_span_id",
            SkipReason::MissingStartTime => "missing_start_time",
            SkipReason::TimestampOutOfRange => "timestamp_out_of_range",
            SkipReason::InvalidTenant { .. } => "invalid_tenant",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotGenAi => f.write_str("not a GenAI span"),
            SkipReason::InvalidTraceId { len } => {
                write!(f, "trace_id must be 16 non-zero bytes, got {len} bytes")
            }
            SkipReason::InvalidSpanId { len } => {
                write!(f, "span_id must be 8 non-zero bytes, got {len} bytes")
            }
            SkipReason::MissingStartTime => f.write_str("start_time_unix_nano is 0"),
            SkipReason::TimestampOutOfRange => f.write_str("timestamp beyond year 2262"),
            SkipReason::InvalidTenant { tenant } => write!(
                f,
                "tenant {tenant:?} is not valid (1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.')"
            ),
        }
    }
}

/// A span that produced no record, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSpan {
    /// Trace id as hex (whatever its length).
    pub trace_id: String,
    /// Span id as hex (whatever its length).
    pub span_id: String,
    /// Span name.
    pub span_name: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Result of normalizing one `ExportTraceServiceRequest`.
#[derive(Debug, Clone, Default)]
pub struct TracesOutcome {
    /// One record per GenAI span.
    pub records: Vec<AuditRecord>,
    /// Spans that produced no record.
    pub skipped: Vec<SkippedSpan>,
    /// Spans in the request.
    pub spans_seen: usize,
}

impl TracesOutcome {
    /// Spans rejected as malformed (OTLP `partial_success.rejected_spans`).
    pub fn rejected(&self) -> usize {
        self.skipped
            .iter()
            .filter(|s| s.reason.is_rejection())
            .count()
    }

    /// Spans dropped because they are not GenAI spans.
    pub fn dropped_not_genai(&self) -> usize {
        self.skipped.len() - self.rejected()
    }
}

/// Content carried by OTLP log records, keyed by the span it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CorrelatedContent {
    /// Tenant of the log records' resource (or the authenticated tenant).
    pub tenant: Arc<str>,
    /// Trace id, 32 hex.
    pub trace_id: String,
    /// Span id, 16 hex.
    pub span_id: String,
    /// Hashes, sizes and PII of the content.
    pub digest: ContentDigest,
}

/// Result of normalizing one `ExportLogsServiceRequest`.
#[derive(Debug, Clone, Default)]
pub struct LogsOutcome {
    /// Content per span, to merge into that span's record ([`Normalizer::merge_contents`]).
    pub contents: Vec<CorrelatedContent>,
    /// Log records in the request.
    pub log_records_seen: usize,
    /// Log records without valid trace/span ids or without GenAI content (not audit data).
    pub uncorrelated: usize,
}

/// Turns OTLP requests into audit records. Cheap to clone, `Send + Sync`: share one.
#[derive(Debug, Clone)]
pub struct Normalizer {
    config: Arc<NormalizerConfig>,
    key: HashKey,
    scanner: PiiScanner,
}

/// (trace id, span id) as sent.
type SpanKey<'a> = (&'a [u8], &'a [u8]);

struct ResourceInfo {
    tenant: Result<Arc<str>, String>,
    service_name: Option<Arc<str>>,
    service_version: Option<Arc<str>>,
    deployment_environment: Option<Arc<str>>,
    attributes: Arc<str>,
}

#[derive(Default)]
struct ExceptionInfo<'a> {
    seen: bool,
    ty: Option<&'a str>,
    message: Option<&'a str>,
}

impl Normalizer {
    /// A normalizer hashing content with `key`.
    pub fn new(config: NormalizerConfig, key: HashKey) -> Self {
        Self {
            config: Arc::new(config),
            key,
            scanner: PiiScanner::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &NormalizerConfig {
        &self.config
    }

    /// The hash key (for `audit_hash` and receipts).
    pub fn hash_key(&self) -> &HashKey {
        &self.key
    }

    /// Normalizes every span of a traces request. Never panics, whatever the input.
    pub fn normalize_traces(
        &self,
        req: &ExportTraceServiceRequest,
        ctx: &IngestContext,
    ) -> TracesOutcome {
        let mut out = TracesOutcome::default();
        for rs in &req.resource_spans {
            let res = self.resource_info(rs.resource.as_ref(), ctx);
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.spans_seen += 1;
                    match self.normalize_span(span, &res, ss.scope.as_ref(), ctx) {
                        Ok(r) => out.records.push(r),
                        Err(reason) => out.skipped.push(SkippedSpan {
                            trace_id: const_hex::encode(&span.trace_id),
                            span_id: const_hex::encode(&span.span_id),
                            span_name: span.name.clone(),
                            reason,
                        }),
                    }
                }
            }
        }
        out
    }

    /// Extracts GenAI content from log records correlated to spans by trace and span id (the
    /// official OTel Python instrumentation sends prompts and completions this way).
    pub fn normalize_logs(
        &self,
        req: &ExportLogsServiceRequest,
        ctx: &IngestContext,
    ) -> LogsOutcome {
        let mut out = LogsOutcome::default();
        for rl in &req.resource_logs {
            let res = self.resource_info(rl.resource.as_ref(), ctx);
            let Ok(tenant) = res.tenant else {
                let n: usize = rl.scope_logs.iter().map(|s| s.log_records.len()).sum();
                out.log_records_seen += n;
                out.uncorrelated += n;
                continue;
            };
            let mut groups: Vec<(SpanKey<'_>, ContentCollector<'_>)> = Vec::new();
            let mut index: HashMap<SpanKey<'_>, usize> = HashMap::new();
            for sl in &rl.scope_logs {
                for lr in &sl.log_records {
                    out.log_records_seen += 1;
                    if !valid_id(&lr.trace_id, 16) || !valid_id(&lr.span_id, 8) {
                        out.uncorrelated += 1;
                        continue;
                    }
                    let id = (lr.trace_id.as_slice(), lr.span_id.as_slice());
                    let slot = *index.entry(id).or_insert_with(|| {
                        groups.push((id, ContentCollector::default()));
                        groups.len() - 1
                    });
                    let collector = &mut groups[slot].1;
                    let before = collector.len();
                    let event_name = if lr.event_name.is_empty() {
                        find_attr(&lr.attributes, "event.name")
                            .and_then(as_str)
                            .unwrap_or("")
                    } else {
                        lr.event_name.as_str()
                    };
                    let seq = before as u32;
                    collect_event_content(collector, event_name, &lr.attributes, seq, 0);
                    if let (Some(body), Some(side)) = (&lr.body, event_side(event_name))
                        && !is_absent_value(body)
                    {
                        collector.push(side, 0, seq, Raw::Any(body));
                    }
                    if collector.len() == before {
                        out.uncorrelated += 1;
                    }
                }
            }
            for ((trace_id, span_id), collector) in groups {
                if collector.is_empty() {
                    continue;
                }
                out.contents.push(CorrelatedContent {
                    tenant: tenant.clone(),
                    trace_id: const_hex::encode(trace_id),
                    span_id: const_hex::encode(span_id),
                    digest: collector.digest(&self.key, &self.scanner),
                });
            }
        }
        out
    }

    /// Merges log-borne content into the matching records (same tenant, trace and span id).
    /// Returns the contents that matched no record, for the caller to keep until their span
    /// arrives.
    pub fn merge_contents(
        &self,
        records: &mut [AuditRecord],
        contents: Vec<CorrelatedContent>,
    ) -> Vec<CorrelatedContent> {
        if contents.is_empty() {
            return contents;
        }
        let by_id: HashMap<(&str, &str, &str), usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| ((&*r.tenant, r.trace_id.as_str(), r.span_id.as_str()), i))
            .collect();
        let mut hits = Vec::new();
        let mut unmatched = Vec::new();
        for c in contents {
            match by_id.get(&(&*c.tenant, c.trace_id.as_str(), c.span_id.as_str())) {
                Some(&i) => hits.push((i, c)),
                None => unmatched.push(c),
            }
        }
        drop(by_id);
        for (i, c) in hits {
            self.apply_content(&mut records[i], &c.digest);
        }
        unmatched
    }

    /// Folds a content digest into a record: hashes the record lacks are filled, PII types are
    /// added, and classification and retention are raised to match.
    pub fn apply_content(&self, record: &mut AuditRecord, digest: &ContentDigest) {
        record.content_captured = true;
        if record.prompt_hash.is_none() && digest.prompt_hash.is_some() {
            record.prompt_hash.clone_from(&digest.prompt_hash);
            record.prompt_chars = digest.prompt_chars;
        }
        if record.response_hash.is_none() && digest.response_hash.is_some() {
            record.response_hash.clone_from(&digest.response_hash);
            record.response_chars = digest.response_chars;
        }
        if record.hash_key_id.is_none() {
            record.hash_key_id.clone_from(&digest.hash_key_id);
        }
        let mut pii: crate::pii::PiiSet = record
            .pii_types
            .iter()
            .filter_map(|t| crate::pii::PiiType::parse(t))
            .collect();
        pii = pii.union(digest.pii);
        record.pii_detected = !pii.is_empty();
        record.pii_types = pii.to_strings();
        let class = self.config.classification.classify(pii);
        if class > record.data_classification {
            record.data_classification = class;
        }
        record.retention_until_days = Some(self.config.retention.until(
            &record.tenant,
            record.data_classification,
            day_of(record.start_time_us),
        ));
    }

    fn resource_info(&self, resource: Option<&Resource>, ctx: &IngestContext) -> ResourceInfo {
        let attrs: &[KeyValue] = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let mut service_name = None;
        let mut service_version = None;
        let mut env = None;
        let mut env_legacy = None;
        let mut tenant_attr = None;
        let mut json = String::from("{");
        for kv in attrs {
            let Some(v) = &kv.value else { continue };
            match kv.key.as_str() {
                "service.name" => service_name = as_text(v),
                "service.version" => service_version = as_text(v),
                "deployment.environment.name" => env = as_text(v),
                "deployment.environment" => env_legacy = as_text(v),
                k if k == self.config.tenant_attribute => tenant_attr = as_text(v),
                k => push_json_entry(&mut json, k, v),
            }
        }
        json.push('}');
        let tenant = match (&ctx.tenant, tenant_attr) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(t)) if is_valid_tenant(&t) => Ok(t.into()),
            (None, Some(t)) => Err(t),
            (None, None) => Ok(self.config.default_tenant.as_str().into()),
        };
        ResourceInfo {
            tenant,
            service_name: service_name.map(Into::into),
            service_version: service_version.map(Into::into),
            deployment_environment: env.or(env_legacy).map(Into::into),
            attributes: json.into(),
        }
    }

    fn normalize_span(
        &self,
        span: &Span,
        res: &ResourceInfo,
        scope: Option<&InstrumentationScope>,
        ctx: &IngestContext,
    ) -> Result<AuditRecord, SkipReason> {
        // 1. One pass over the attributes: fill slots, find content, remember the rest.
        let mut slots: [Option<(u8, &AnyValue)>; FIELD_COUNT] = [None; FIELD_COUNT];
        let mut genai = false;
        // Leftover attributes go straight into the `attributes` JSON (no second pass).
        let mut json = String::with_capacity(256);
        json.push('{');
        let mut has_usage = false;
        let mut content = ContentCollector::default();
        let mut indexed_finish: Vec<(u32, &AnyValue)> = Vec::new();
        for kv in &span.attributes {
            let Some(v) = &kv.value else { continue };
            let key = kv.key.as_str();
            if let Some(&(field, rank)) = KEY_INDEX.get(key) {
                // Generic keys (`user.id`, `http.*`, `error.type`) fill columns but do not by
                // themselves make a span a GenAI span.
                genai |= is_genai_key(key);
                let slot = &mut slots[field as usize];
                if slot.is_none_or(|(r, _)| rank < r) {
                    *slot = Some((rank, v));
                }
                has_usage |= is_usage_field(field);
                continue;
            }
            if let Some(ck) = content_key(key) {
                genai |= is_genai_key(key);
                if ck.is_text && !is_absent_value(v) {
                    let raw = match as_str(v) {
                        Some(s) => Raw::Str(s),
                        None => Raw::Any(v),
                    };
                    let index = if key == "gen_ai.system_instructions" {
                        0
                    } else {
                        ck.index.saturating_add(1)
                    };
                    content.push(ck.side, ck.family, index, raw);
                } else if ck.side == Side::Response && key.ends_with(".finish_reason") {
                    indexed_finish.push((ck.index, v));
                }
                continue;
            }
            genai |= is_genai_key(key);
            push_json_entry(&mut json, key, v);
        }
        if !genai {
            return Err(SkipReason::NotGenAi);
        }

        // 2. Identity and time.
        if !valid_id(&span.trace_id, 16) {
            return Err(SkipReason::InvalidTraceId {
                len: span.trace_id.len(),
            });
        }
        if !valid_id(&span.span_id, 8) {
            return Err(SkipReason::InvalidSpanId {
                len: span.span_id.len(),
            });
        }
        let tenant = res
            .tenant
            .clone()
            .map_err(|tenant| SkipReason::InvalidTenant { tenant })?;
        if span.start_time_unix_nano == 0 {
            return Err(SkipReason::MissingStartTime);
        }
        let start_ns = i64::try_from(span.start_time_unix_nano)
            .map_err(|_| SkipReason::TimestampOutOfRange)?;
        let end_ns = i64::try_from(span.end_time_unix_nano)
            .map_err(|_| SkipReason::TimestampOutOfRange)?
            .max(start_ns);
        let start_time_us = start_ns.div_euclid(1000);
        let end_time_us = end_ns.div_euclid(1000);

        let attrs = span.attributes.as_slice();
        let get = |f: Field| slots[f as usize].map(|(_, v)| v);
        let get_str = |f: Field| read(&slots, attrs, f, as_str);
        let get_text = |f: Field| read(&slots, attrs, f, as_text);

        // 3. Events: exceptions and content.
        let mut exc = ExceptionInfo::default();
        for (i, ev) in span.events.iter().enumerate() {
            if ev.name == "exception" {
                if !exc.seen {
                    exc.seen = true;
                    exc.ty = find_attr(&ev.attributes, "exception.type").and_then(as_str);
                    exc.message = find_attr(&ev.attributes, "exception.message").and_then(as_str);
                }
                continue;
            }
            collect_event_content(&mut content, &ev.name, &ev.attributes, i as u32, 10);
        }

        // 4. Kind.
        let has_model_or_usage = get(Field::RequestModel).is_some()
            || get(Field::ResponseModel).is_some()
            || get(Field::OiModelName).is_some()
            || get(Field::InputTokens).is_some()
            || get(Field::OutputTokens).is_some();
        let (span_kind, operation) = classify(&KindSignals {
            openinference: get_str(Field::OiSpanKind),
            operation: get_str(Field::Operation),
            vercel_operation: get_str(Field::VercelOperationId),
            llm_request_type: get_str(Field::LlmRequestType),
            traceloop_kind: get_str(Field::TraceloopSpanKind),
            has_model_or_usage,
        });
        let is_call = span_kind.is_provider_call();
        if !is_call && has_usage {
            // Wrapper spans keep their roll-up usage as plain attributes, never as columns.
            for kv in &span.attributes {
                if let (Some(v), Some(&(field, _))) = (&kv.value, KEY_INDEX.get(kv.key.as_str()))
                    && is_usage_field(field)
                {
                    push_json_entry(&mut json, &kv.key, v);
                }
            }
        }

        // 5. What was called.
        let provider = get_str(Field::ProviderName).map(normalize_provider);
        let invocation = get_str(Field::InvocationParameters)
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        let inv = |k: &str| invocation.as_ref().and_then(|j| j.get(k));
        let oi_model = get_text(Field::OiModelName);
        let request_model = get_text(Field::RequestModel)
            .or_else(|| inv("model").and_then(|m| m.as_str()).map(str::to_owned))
            .or_else(|| oi_model.clone());
        let response_model = get_text(Field::ResponseModel).or(oi_model);
        let response_id = get_text(Field::ResponseId);
        let mut finish_reasons = read(&slots, attrs, Field::FinishReasons, |v| {
            Some(as_string_list(v)).filter(|l| !l.is_empty())
        })
        .unwrap_or_default();
        if finish_reasons.is_empty() && !indexed_finish.is_empty() {
            indexed_finish.sort_by_key(|(i, _)| *i);
            finish_reasons = indexed_finish
                .iter()
                .filter_map(|(_, v)| as_text(v))
                .collect();
        }
        let request_temperature = read(&slots, attrs, Field::Temperature, as_f64)
            .or_else(|| inv("temperature").and_then(|t| t.as_f64()));
        let request_max_tokens = read(&slots, attrs, Field::MaxTokens, as_i64).or_else(|| {
            ["max_tokens", "max_completion_tokens", "max_output_tokens"]
                .iter()
                .find_map(|k| inv(k).and_then(|t| t.as_i64()))
        });
        let non_negative = |v: &AnyValue| as_f64(v).filter(|x| *x >= 0.0);
        let time_to_first_token_ms = read(&slots, attrs, Field::TtftSeconds, non_negative)
            .map(|s| s * 1000.0)
            .or_else(|| read(&slots, attrs, Field::TtftMillis, non_negative));
        let vercel_op = get_str(Field::VercelOperationId);
        let streaming = read(&slots, attrs, Field::Streaming, as_bool)
            .or_else(|| {
                vercel_op.and_then(|op| {
                    if op.contains("doStream") || op.starts_with("ai.stream") {
                        Some(true)
                    } else if op.contains("doGenerate") || op.starts_with("ai.generate") {
                        Some(false)
                    } else {
                        None
                    }
                })
            })
            .or(time_to_first_token_ms.map(|_| true));

        // 6. Usage and cost, on provider calls only.
        let count = |f: Field| {
            if is_call {
                read(&slots, attrs, f, as_count)
            } else {
                None
            }
        };
        let input_tokens = count(Field::InputTokens);
        let output_tokens = count(Field::OutputTokens);
        let mut cached_input_tokens = count(Field::CachedInputTokens);
        let mut reasoning_tokens = count(Field::ReasoningTokens);
        let cache_write_input_tokens = count(Field::CacheWriteTokens);
        if span_kind == SpanKind::Embeddings {
            // Embeddings have no prompt cache or reasoning; some SDKs still send a literal 0.
            cached_input_tokens = cached_input_tokens.filter(|n| *n > 0);
            reasoning_tokens = reasoning_tokens.filter(|n| *n > 0);
        }
        let total_tokens = count(Field::TotalTokens).or_else(|| {
            (input_tokens.is_some() || output_tokens.is_some()).then(|| {
                input_tokens
                    .unwrap_or(0)
                    .saturating_add(output_tokens.unwrap_or(0))
            })
        });
        let usd = |f: Field| {
            if !is_call {
                return None;
            }
            // A negative cost is not a cost: ignore it rather than subtract it.
            read(&slots, attrs, f, |v| {
                non_negative(v).and_then(Usd::from_f64)
            })
        };
        let reported_prompt = usd(Field::ReportedCostPrompt);
        let reported_completion = usd(Field::ReportedCostCompletion);
        let reported_cost_usd =
            usd(Field::ReportedCost).or_else(|| match (reported_prompt, reported_completion) {
                (Some(p), Some(c)) => p.checked_add(c),
                (p, c) => p.or(c),
            });
        let start_day = day_of(start_time_us);
        let mut cost = CostColumns::default();
        if is_call {
            let models: Vec<&str> = [response_model.as_deref(), request_model.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            let usage = Usage {
                input_tokens,
                output_tokens,
                cached_input_tokens,
                cache_write_input_tokens,
            };
            let priced = if models.is_empty() {
                PriceResult::UnknownModel
            } else {
                self.config
                    .prices
                    .price(provider.as_deref(), &models, start_day, &usage)
            };
            cost = match priced {
                PriceResult::Priced(p) => CostColumns {
                    input: Some(p.input_cost),
                    output: Some(p.output_cost),
                    total: Some(p.total_cost),
                    source: Some(CostSource::PriceTable),
                    price_id: Some(p.price_id),
                },
                other => {
                    let price_id = match other {
                        PriceResult::NoUsage { price_id } => Some(price_id),
                        _ => None,
                    };
                    match reported_cost_usd {
                        Some(total) => CostColumns {
                            input: reported_prompt,
                            output: reported_completion,
                            total: Some(total),
                            source: Some(CostSource::Reported),
                            price_id,
                        },
                        None => CostColumns {
                            source: Some(CostSource::Unpriced),
                            price_id,
                            ..CostColumns::default()
                        },
                    }
                }
            };
        }

        // 7. Outcome.
        let status_code = span.status.as_ref().map(|s| s.code).unwrap_or(0);
        let status_message = span
            .status
            .as_ref()
            .map(|s| s.message.as_str())
            .filter(|m| !m.trim().is_empty());
        let error_type = get_text(Field::ErrorType).or_else(|| exc.ty.map(str::to_owned));
        let status = if status_code == StatusCode::Error as i32 {
            Status::Error
        } else if status_code == StatusCode::Ok as i32 {
            Status::Ok
        } else if error_type.is_some() {
            Status::Error
        } else {
            Status::Unset
        };
        // The OTLP status message is only meaningful with an ERROR status.
        let error_message = status_message
            .filter(|_| status_code == StatusCode::Error as i32)
            .or(exc.message)
            .map(str::to_owned);
        let http_status_code = read(&slots, attrs, Field::HttpStatus, |v| {
            as_i64(v)
                .and_then(|c| i32::try_from(c).ok())
                .filter(|c| (100..=599).contains(c))
        })
        .or_else(|| error_message.as_deref().and_then(sdk_error_code));

        // 8. Content → hashes and PII; classification; retention.
        let digest = (!content.is_empty()).then(|| content.digest(&self.key, &self.scanner));
        let pii = digest.as_ref().map(|d| d.pii).unwrap_or_default();
        let data_classification = self.config.classification.classify(pii);
        let retention_until_days = Some(self.config.retention.until(
            &tenant,
            data_classification,
            start_day,
        ));

        // 9. Ids and the leftovers.
        let trace_id = const_hex::encode(&span.trace_id);
        let span_id = const_hex::encode(&span.span_id);
        let record_id = record_id(&span.trace_id, &span.span_id);
        let call_id = match &response_id {
            Some(id) => {
                let p = provider.as_deref().unwrap_or("unknown");
                let mut call = String::with_capacity(p.len() + 1 + id.len());
                call.push_str(p);
                call.push(':');
                call.push_str(id);
                call
            }
            None => record_id.clone(),
        };
        let attributes = close_attributes_json(json, scope);
        let d = digest.unwrap_or_default();
        let content_captured = !content.is_empty();

        Ok(AuditRecord {
            record_id,
            tenant,
            trace_id,
            span_id,
            parent_span_id: valid_id(&span.parent_span_id, 8)
                .then(|| const_hex::encode(&span.parent_span_id)),
            call_id,
            span_kind,
            operation,
            span_name: span.name.clone(),
            service_name: res.service_name.clone(),
            service_version: res.service_version.clone(),
            deployment_environment: res.deployment_environment.clone(),
            user_id: get_text(Field::UserId),
            session_id: get_text(Field::SessionId),
            client_address: get_text(Field::ClientAddress),
            user_agent: get_text(Field::UserAgent),
            server_address: get_text(Field::ServerAddress),
            provider,
            request_model,
            response_model,
            response_id,
            finish_reasons,
            request_temperature,
            request_max_tokens,
            streaming,
            start_time_us,
            start_time_unix_nano: start_ns,
            end_time_us,
            duration_ms: (end_ns - start_ns) as f64 / 1e6,
            time_to_first_token_ms,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_input_tokens,
            reasoning_tokens,
            total_tokens,
            input_cost_usd: cost.input,
            output_cost_usd: cost.output,
            total_cost_usd: cost.total,
            reported_cost_usd,
            cost_source: cost.source,
            price_id: cost.price_id,
            status,
            error_type,
            error_message,
            http_status_code,
            content_captured,
            prompt_hash: d.prompt_hash,
            response_hash: d.response_hash,
            hash_key_id: d.hash_key_id,
            prompt_chars: d.prompt_chars,
            response_chars: d.response_chars,
            pii_detected: !pii.is_empty(),
            pii_types: pii.to_strings(),
            data_classification,
            retention_until_days,
            attributes,
            resource_attributes: res.attributes.clone(),
            ingest_time_us: ctx.ingest_time_us,
            source: ctx.source,
            collector_id: ctx.collector_id.clone(),
        })
    }
}

#[derive(Default)]
struct CostColumns {
    input: Option<Usd>,
    output: Option<Usd>,
    total: Option<Usd>,
    source: Option<CostSource>,
    price_id: Option<String>,
}

/// Which side a per-message event's body belongs to (semconv ≤ 1.36 event names).
fn event_side(name: &str) -> Option<Side> {
    match name {
        "gen_ai.system.message"
        | "gen_ai.user.message"
        | "gen_ai.assistant.message"
        | "gen_ai.tool.message"
        | "gen_ai.content.prompt" => Some(Side::Prompt),
        "gen_ai.choice" | "gen_ai.content.completion" => Some(Side::Response),
        _ => None,
    }
}

/// Content carried in an event's (or log record's) attributes.
fn collect_event_content<'a>(
    content: &mut ContentCollector<'a>,
    name: &str,
    attrs: &'a [KeyValue],
    seq: u32,
    family_offset: u8,
) {
    let side = event_side(name);
    for kv in attrs {
        let Some(v) = &kv.value else { continue };
        let raw = match as_str(v) {
            Some(s) => Raw::Str(s),
            None => Raw::Any(v),
        };
        if is_absent_value(v) {
            continue;
        }
        if let Some(ck) = content_key(&kv.key) {
            if ck.is_text {
                let index = if kv.key == "gen_ai.system_instructions" {
                    0
                } else {
                    seq.saturating_add(1)
                };
                content.push(ck.side, ck.family.saturating_add(family_offset), index, raw);
            }
        } else if let Some(side) = side {
            // Per-message events put the text in `content` (or `message` for choices).
            if matches!(kv.key.as_str(), "content" | "message") {
                content.push(
                    side,
                    family_offset.saturating_add(1),
                    seq.saturating_add(1),
                    raw,
                );
            }
        }
    }
}

/// Reads a field: the preferred key's value if it parses, else the next keys in order (an
/// unusable `"none"` must not hide a good value under another convention's key).
fn read<'a, T>(
    slots: &[Option<(u8, &'a AnyValue)>; FIELD_COUNT],
    attrs: &'a [KeyValue],
    field: Field,
    parse: impl Fn(&'a AnyValue) -> Option<T>,
) -> Option<T> {
    let (rank, v) = slots[field as usize]?;
    if let Some(x) = parse(v) {
        return Some(x);
    }
    FIELD_KEYS[field as usize]
        .1
        .iter()
        .skip(usize::from(rank) + 1)
        .filter_map(|key| find_attr(attrs, key))
        .find_map(parse)
}

fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|b| *b != 0)
}

/// Whether `t` is usable as a tenant: tenants name partition directories, so they are kept to
/// 1-64 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`.
pub fn is_valid_tenant(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && !t.starts_with('.')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn day_of(us: i64) -> i32 {
    i32::try_from(us.div_euclid(MICROS_PER_DAY)).unwrap_or(i32::MAX)
}

/// Hex of the first 16 bytes of SHA-256(trace_id ‖ span_id).
pub fn record_id(trace_id: &[u8], span_id: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(trace_id);
    h.update(span_id);
    const_hex::encode(&h.finalize()[..16])
}

/// `Error code: 429 - …` is how the OpenAI and Anthropic Python SDKs word HTTP errors.
fn sdk_error_code(message: &str) -> Option<i32> {
    let rest = message.trim_start().strip_prefix("Error code: ")?;
    let digits = rest.get(..3)?;
    let code: i32 = digits.parse().ok()?;
    let next = rest.as_bytes().get(3).copied();
    ((100..=599).contains(&code) && next.is_none_or(|b| !b.is_ascii_digit())).then_some(code)
}

/// Appends `"key":value` to an open JSON object.
fn push_json_entry(json: &mut String, key: &str, v: &AnyValue) {
    if json.len() > 1 {
        json.push(',');
    }
    write_json_str(json, key);
    json.push(':');
    write_json(json, v);
}

/// Adds the instrumentation scope (which library emitted the span) and closes the object.
fn close_attributes_json(mut json: String, scope: Option<&InstrumentationScope>) -> String {
    if let Some(scope) = scope {
        for (key, value) in [
            ("otel.scope.name", &scope.name),
            ("otel.scope.version", &scope.version),
        ] {
            if !value.is_empty() {
                if json.len() > 1 {
                    json.push(',');
                }
                write_json_str(&mut json, key);
                json.push(':');
                write_json_str(&mut json, value);
            }
        }
    }
    json.push('}');
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_error_codes() {
        assert_eq!(sdk_error_code("Error code: 429 - Rate limit"), Some(429));
        assert_eq!(sdk_error_code("Error code: 5000"), None);
        assert_eq!(sdk_error_code("Error code: 99"), None);
        assert_eq!(sdk_error_code("boom"), None);
    }

    #[test]
    fn tenants() {
        assert!(is_valid_tenant("acme-prod_1.eu"));
        assert!(!is_valid_tenant("../etc"));
        assert!(!is_valid_tenant("a/b"));
        assert!(!is_valid_tenant(""));
        assert!(!is_valid_tenant(&"x".repeat(65)));
    }
}
