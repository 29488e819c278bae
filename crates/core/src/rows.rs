//! Arrow rows back to [`AuditRecord`]s: the inverse of [`records_to_batch`].
//!
//! The store buffers records as Arrow columns (a record's dozens of small heap strings cost
//! several times its data); the few rows it must change after that, when log-borne content is
//! folded into its span at flush, are turned back into records, changed by the
//! [`Normalizer`](crate::Normalizer), and converted again.
//!
//! [`records_to_batch`]: crate::records_to_batch

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrowPrimitiveType, BooleanArray, PrimitiveArray, RecordBatch, StringArray,
};

use crate::error::{Error, Result};
use crate::money::Usd;
use crate::record::{AuditRecord, CostSource, DataClassification, Source, SpanKind, Status};

/// Converts every row of a batch of [`audit_schema`](crate::audit_schema) (as
/// [`records_to_batch`](crate::records_to_batch) builds it) back into an [`AuditRecord`].
///
/// Fails when a column is missing, has another type, holds NULL where the record has no
/// `Option`, or holds a value no enum variant writes.
pub fn batch_to_records(batch: &RecordBatch) -> Result<Vec<AuditRecord>> {
    let c = Columns { batch };
    let record_id = c.text("record_id")?;
    let tenant = c.text("tenant")?;
    let trace_id = c.text("trace_id")?;
    let span_id = c.text("span_id")?;
    let parent_span_id = c.text("parent_span_id")?;
    let call_id = c.text("call_id")?;
    let span_kind = c.text("span_kind")?;
    let operation = c.text("operation")?;
    let span_name = c.text("span_name")?;
    let service_name = c.text("service_name")?;
    let service_version = c.text("service_version")?;
    let deployment_environment = c.text("deployment_environment")?;
    let user_id = c.text("user_id")?;
    let session_id = c.text("session_id")?;
    let client_address = c.text("client_address")?;
    let user_agent = c.text("user_agent")?;
    let server_address = c.text("server_address")?;
    let provider = c.text("provider")?;
    let request_model = c.text("request_model")?;
    let response_model = c.text("response_model")?;
    let response_id = c.text("response_id")?;
    let finish_reasons = c.list("finish_reasons")?;
    let request_temperature = c.prim::<Float64Type>("request_temperature")?;
    let request_max_tokens = c.prim::<Int64Type>("request_max_tokens")?;
    let streaming = c.bools("streaming")?;
    let start_time = c.prim::<TimestampMicrosecondType>("start_time")?;
    let start_time_unix_nano = c.prim::<Int64Type>("start_time_unix_nano")?;
    let end_time = c.prim::<TimestampMicrosecondType>("end_time")?;
    let duration_ms = c.prim::<Float64Type>("duration_ms")?;
    let time_to_first_token_ms = c.prim::<Float64Type>("time_to_first_token_ms")?;
    let input_tokens = c.prim::<Int64Type>("input_tokens")?;
    let output_tokens = c.prim::<Int64Type>("output_tokens")?;
    let cached_input_tokens = c.prim::<Int64Type>("cached_input_tokens")?;
    let cache_write_input_tokens = c.prim::<Int64Type>("cache_write_input_tokens")?;
    let reasoning_tokens = c.prim::<Int64Type>("reasoning_tokens")?;
    let total_tokens = c.prim::<Int64Type>("total_tokens")?;
    let input_cost_usd = c.prim::<Decimal128Type>("input_cost_usd")?;
    let output_cost_usd = c.prim::<Decimal128Type>("output_cost_usd")?;
    let total_cost_usd = c.prim::<Decimal128Type>("total_cost_usd")?;
    let reported_cost_usd = c.prim::<Decimal128Type>("reported_cost_usd")?;
    let cost_source = c.text("cost_source")?;
    let price_id = c.text("price_id")?;
    let status = c.text("status")?;
    let error_type = c.text("error_type")?;
    let error_message = c.text("error_message")?;
    let http_status_code = c.prim::<Int32Type>("http_status_code")?;
    let content_captured = c.bools("content_captured")?;
    let prompt_hash = c.text("prompt_hash")?;
    let response_hash = c.text("response_hash")?;
    let hash_key_id = c.text("hash_key_id")?;
    let prompt_chars = c.prim::<Int64Type>("prompt_chars")?;
    let response_chars = c.prim::<Int64Type>("response_chars")?;
    let pii_detected = c.bools("pii_detected")?;
    let pii_types = c.list("pii_types")?;
    let data_classification = c.text("data_classification")?;
    let retention_until = c.prim::<Date32Type>("retention_until")?;
    let attributes = c.text("attributes")?;
    let resource_attributes = c.text("resource_attributes")?;
    let ingest_time = c.prim::<TimestampMicrosecondType>("ingest_time")?;
    let source = c.text("source")?;
    let collector_id = c.text("collector_id")?;

    let usd = |a: &PrimitiveArray<Decimal128Type>, i| opt(a, i).map(Usd::from_raw);
    (0..batch.num_rows())
        .map(|i| {
            Ok(AuditRecord {
                record_id: req(record_id, i, "record_id")?.to_owned(),
                tenant: Arc::from(req(tenant, i, "tenant")?),
                trace_id: req(trace_id, i, "trace_id")?.to_owned(),
                span_id: req(span_id, i, "span_id")?.to_owned(),
                parent_span_id: opt_string(parent_span_id, i),
                call_id: req(call_id, i, "call_id")?.to_owned(),
                span_kind: parse(
                    &SPAN_KINDS,
                    SpanKind::as_str,
                    req(span_kind, i, "span_kind")?,
                    "span_kind",
                )?,
                operation: opt_string(operation, i),
                span_name: req(span_name, i, "span_name")?.to_owned(),
                service_name: opt_arc(service_name, i),
                service_version: opt_arc(service_version, i),
                deployment_environment: opt_arc(deployment_environment, i),
                user_id: opt_string(user_id, i),
                session_id: opt_string(session_id, i),
                client_address: opt_string(client_address, i),
                user_agent: opt_string(user_agent, i),
                server_address: opt_string(server_address, i),
                provider: opt_string(provider, i),
                request_model: opt_string(request_model, i),
                response_model: opt_string(response_model, i),
                response_id: opt_string(response_id, i),
                finish_reasons: strings(finish_reasons, i, "finish_reasons")?,
                request_temperature: opt(request_temperature, i),
                request_max_tokens: opt(request_max_tokens, i),
                streaming: opt_bool(streaming, i),
                start_time_us: req_prim(start_time, i, "start_time")?,
                start_time_unix_nano: req_prim(start_time_unix_nano, i, "start_time_unix_nano")?,
                end_time_us: req_prim(end_time, i, "end_time")?,
                duration_ms: req_prim(duration_ms, i, "duration_ms")?,
                time_to_first_token_ms: opt(time_to_first_token_ms, i),
                input_tokens: opt(input_tokens, i),
                output_tokens: opt(output_tokens, i),
                cached_input_tokens: opt(cached_input_tokens, i),
                cache_write_input_tokens: opt(cache_write_input_tokens, i),
                reasoning_tokens: opt(reasoning_tokens, i),
                total_tokens: opt(total_tokens, i),
                input_cost_usd: usd(input_cost_usd, i),
                output_cost_usd: usd(output_cost_usd, i),
                total_cost_usd: usd(total_cost_usd, i),
                reported_cost_usd: usd(reported_cost_usd, i),
                cost_source: opt_str(cost_source, i)
                    .map(|s| parse(&COST_SOURCES, CostSource::as_str, s, "cost_source"))
                    .transpose()?,
                price_id: opt_string(price_id, i),
                status: parse(
                    &STATUSES,
                    Status::as_str,
                    req(status, i, "status")?,
                    "status",
                )?,
                error_type: opt_string(error_type, i),
                error_message: opt_string(error_message, i),
                http_status_code: opt(http_status_code, i),
                content_captured: req_bool(content_captured, i, "content_captured")?,
                prompt_hash: opt_string(prompt_hash, i),
                response_hash: opt_string(response_hash, i),
                hash_key_id: opt_string(hash_key_id, i),
                prompt_chars: opt(prompt_chars, i),
                response_chars: opt(response_chars, i),
                pii_detected: req_bool(pii_detected, i, "pii_detected")?,
                pii_types: strings(pii_types, i, "pii_types")?,
                data_classification: {
                    let v = req(data_classification, i, "data_classification")?;
                    DataClassification::parse(v).ok_or_else(|| invalid("data_classification", v))?
                },
                retention_until_days: opt(retention_until, i),
                attributes: req(attributes, i, "attributes")?.to_owned(),
                resource_attributes: Arc::from(req(resource_attributes, i, "resource_attributes")?),
                ingest_time_us: req_prim(ingest_time, i, "ingest_time")?,
                source: parse(
                    &SOURCES,
                    Source::as_str,
                    req(source, i, "source")?,
                    "source",
                )?,
                collector_id: Arc::from(req(collector_id, i, "collector_id")?),
            })
        })
        .collect()
}

const SPAN_KINDS: [SpanKind; 6] = [
    SpanKind::LlmCall,
    SpanKind::Embeddings,
    SpanKind::ToolCall,
    SpanKind::Agent,
    SpanKind::Workflow,
    SpanKind::OtherGenai,
];
const STATUSES: [Status; 3] = [Status::Ok, Status::Error, Status::Unset];
const COST_SOURCES: [CostSource; 3] = [
    CostSource::PriceTable,
    CostSource::Reported,
    CostSource::Unpriced,
];
const SOURCES: [Source; 4] = [
    Source::OtlpGrpc,
    Source::OtlpHttp,
    Source::Import,
    Source::Sdk,
];

/// Typed access to a batch's columns by name.
struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    fn column(&self, name: &str) -> Result<&'a dyn Array> {
        self.batch
            .column_by_name(name)
            .map(|c| c.as_ref())
            .ok_or_else(|| Error::Arrow(format!("the batch has no column {name}")))
    }

    fn text(&self, name: &str) -> Result<&'a StringArray> {
        self.column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| wrong_type(name))
    }

    fn prim<T: ArrowPrimitiveType>(&self, name: &str) -> Result<&'a PrimitiveArray<T>> {
        self.column(name)?
            .as_primitive_opt::<T>()
            .ok_or_else(|| wrong_type(name))
    }

    fn bools(&self, name: &str) -> Result<&'a BooleanArray> {
        self.column(name)?
            .as_boolean_opt()
            .ok_or_else(|| wrong_type(name))
    }

    fn list(&self, name: &str) -> Result<&'a arrow_array::ListArray> {
        self.column(name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| wrong_type(name))
    }
}

fn wrong_type(name: &str) -> Error {
    Error::Arrow(format!("column {name} does not have its audit schema type"))
}

fn invalid(name: &str, value: &str) -> Error {
    Error::Arrow(format!(
        "column {name} holds {value:?}, which no record writes"
    ))
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

fn opt_string(a: &StringArray, i: usize) -> Option<String> {
    opt_str(a, i).map(str::to_owned)
}

fn opt_arc(a: &StringArray, i: usize) -> Option<Arc<str>> {
    opt_str(a, i).map(Arc::from)
}

fn req<'a>(a: &'a StringArray, i: usize, name: &str) -> Result<&'a str> {
    opt_str(a, i).ok_or_else(|| Error::Arrow(format!("column {name} is NULL in row {i}")))
}

fn opt<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, i: usize) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

fn req_prim<T: ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    i: usize,
    name: &str,
) -> Result<T::Native> {
    opt(a, i).ok_or_else(|| Error::Arrow(format!("column {name} is NULL in row {i}")))
}

fn opt_bool(a: &BooleanArray, i: usize) -> Option<bool> {
    a.is_valid(i).then(|| a.value(i))
}

fn req_bool(a: &BooleanArray, i: usize, name: &str) -> Result<bool> {
    opt_bool(a, i).ok_or_else(|| Error::Arrow(format!("column {name} is NULL in row {i}")))
}

/// A list of strings; NULL is the empty list (how [`records_to_batch`](crate::records_to_batch)
/// writes an empty `finish_reasons`).
fn strings(a: &arrow_array::ListArray, i: usize, name: &str) -> Result<Vec<String>> {
    if a.is_null(i) {
        return Ok(Vec::new());
    }
    let items = a.value(i);
    let items = items
        .as_string_opt::<i32>()
        .ok_or_else(|| wrong_type(name))?;
    Ok(items.iter().flatten().map(str::to_owned).collect())
}

fn parse<T: Copy>(all: &[T], as_str: fn(T) -> &'static str, value: &str, name: &str) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| as_str(*v) == value)
        .ok_or_else(|| invalid(name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records_to_batch;
    use crate::testkit::{Rng, genai_request};
    use crate::{HashKey, IngestContext, Normalizer, NormalizerConfig};

    #[test]
    fn testkit_records_survive_a_round_trip_through_arrow() {
        let normalizer = Normalizer::new(
            NormalizerConfig::default(),
            HashKey::new(&[5u8; 32]).expect("32-byte key"),
        );
        let ctx = IngestContext::new(Source::OtlpHttp, "rt", 1_795_400_000_000_000);
        let req = genai_request(&mut Rng::new(4), 300, 1_795_000_000_000_000_000, 1_000, 40);
        let mut records = normalizer.normalize_traces(&req, &ctx).records;
        assert_eq!(records.len(), 300);
        // Every value the generator leaves out somewhere, and every enum variant, once.
        for (i, r) in records.iter_mut().enumerate() {
            r.span_kind = SPAN_KINDS[i % SPAN_KINDS.len()];
            r.status = STATUSES[i % STATUSES.len()];
            r.cost_source = (i % 4 != 3).then(|| COST_SOURCES[i % COST_SOURCES.len()]);
            r.source = SOURCES[i % SOURCES.len()];
            r.data_classification = [
                DataClassification::Public,
                DataClassification::Internal,
                DataClassification::Confidential,
                DataClassification::Restricted,
            ][i % 4];
            if i % 5 == 0 {
                r.pii_detected = true;
                r.pii_types = vec!["EMAIL".into(), "PHONE".into()];
                r.prompt_hash = Some("ab".repeat(32));
                r.prompt_chars = Some(1234);
                r.content_captured = true;
                r.error_message = Some("rate limited".into());
                r.http_status_code = Some(429);
                r.reported_cost_usd = Some(Usd::from_raw(-17));
                r.retention_until_days = Some(20_000);
                r.finish_reasons = Vec::new();
            }
        }
        let batch = records_to_batch(&records).expect("batch");
        assert_eq!(batch_to_records(&batch).expect("records"), records);
    }

    #[test]
    fn a_value_no_record_writes_is_an_error_naming_the_column() {
        let normalizer = Normalizer::new(
            NormalizerConfig::default(),
            HashKey::new(&[5u8; 32]).expect("32-byte key"),
        );
        let ctx = IngestContext::new(Source::OtlpHttp, "rt", 1_795_400_000_000_000);
        let req = genai_request(&mut Rng::new(4), 1, 1_795_000_000_000_000_000, 1_000, 40);
        let records = normalizer.normalize_traces(&req, &ctx).records;
        let batch = records_to_batch(&records).expect("batch");
        let i = batch.schema().index_of("status").expect("status column");
        let mut columns = batch.columns().to_vec();
        columns[i] = Arc::new(StringArray::from(vec!["maybe"]));
        let bad = RecordBatch::try_new(batch.schema(), columns).expect("batch");
        let err = batch_to_records(&bad).expect_err("unknown status");
        assert!(err.to_string().contains("status"), "{err}");
    }
}
