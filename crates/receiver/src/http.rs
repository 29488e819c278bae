//! OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs`, protobuf or JSON, optionally gzip.
//!
//! Each request goes through, in order: authentication → content type (415) → body limit on
//! `Content-Length` and on the bytes streamed (413) → gzip inflation capped at the same limit
//! (413) → decoding (400) → the pipeline. Answers use the request's content type, per the
//! OTLP/HTTP spec; errors carry a `google.rpc.Status` body.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use genai_audit_core::Source;
use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::export::{ExportError, Pipeline};
use crate::metrics::{Outcome, Signal, Transport};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn of(headers: &HeaderMap) -> Result<Format, ExportError> {
        let Some(value) = headers.get(CONTENT_TYPE) else {
            return Err(ExportError::UnsupportedMedia(format!(
                "missing Content-Type: send {PROTOBUF} or {JSON}"
            )));
        };
        let essence = value
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            PROTOBUF | "application/protobuf" => Ok(Format::Protobuf),
            JSON => Ok(Format::Json),
            _ => Err(ExportError::UnsupportedMedia(format!(
                "unsupported Content-Type {value:?}: OTLP/HTTP accepts {PROTOBUF} or {JSON}"
            ))),
        }
    }

    fn mime(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF,
            Format::Json => JSON,
        }
    }
}

/// The HTTP router: OTLP paths, 405 for other methods on them, 404 elsewhere.
pub(crate) fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/logs", post(logs))
        .fallback(not_found)
        .with_state(pipeline)
}

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint {}: OTLP/HTTP endpoints are POST /v1/traces and POST /v1/logs\n",
            uri.path()
        ),
    )
        .into_response()
}

async fn traces(State(p): State<Arc<Pipeline>>, headers: HeaderMap, body: Body) -> Response {
    handle(p, Signal::Traces, headers, body).await
}

async fn logs(State(p): State<Arc<Pipeline>>, headers: HeaderMap, body: Body) -> Response {
    handle(p, Signal::Logs, headers, body).await
}

async fn handle(p: Arc<Pipeline>, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let format = Format::of(&headers);
    let result = export(&p, signal, &headers, format.clone(), body).await;
    // Errors are answered in the request's format when it has one we speak, else JSON.
    let reply = format.unwrap_or(Format::Json);
    let (response, outcome) = match result {
        Ok((body, outcome)) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(reply.mime()));
            (r, outcome)
        }
        Err(e) => {
            tracing::debug!(signal = ?signal, error = e.message(), "OTLP/HTTP request refused");
            (error_response(reply, &e), e.outcome())
        }
    };
    p.metrics.request(Transport::Http, signal, outcome);
    p.metrics.export_latency(started.elapsed());
    response
}

async fn export(
    p: &Pipeline,
    signal: Signal,
    headers: &HeaderMap,
    format: Result<Format, ExportError>,
    body: Body,
) -> Result<(Vec<u8>, Outcome), ExportError> {
    let tenant = p
        .auth
        .authenticate(headers.get(AUTHORIZATION).map(|v| v.as_bytes()))
        .map_err(|f| ExportError::Unauthenticated(f.message("Authorization")))?;
    let format = format?;
    let bytes = read_body(p, headers, body).await?;
    match signal {
        Signal::Traces => {
            let req: ExportTraceServiceRequest =
                decode(format, &bytes, "ExportTraceServiceRequest")?;
            drop(bytes);
            let (resp, outcome) = p
                .export_traces(req, Source::OtlpHttp, tenant.as_deref())
                .await?;
            Ok((encode(format, &resp), outcome))
        }
        Signal::Logs => {
            let req: ExportLogsServiceRequest = decode(format, &bytes, "ExportLogsServiceRequest")?;
            drop(bytes);
            let (resp, outcome) = p
                .export_logs(req, Source::OtlpHttp, tenant.as_deref())
                .await?;
            Ok((encode(format, &resp), outcome))
        }
    }
}

/// Reads the body within `max_request_bytes`, inflating gzip within the same limit.
async fn read_body(p: &Pipeline, headers: &HeaderMap, body: Body) -> Result<Bytes, ExportError> {
    let limit = p.max_request_bytes;
    let gzip = match headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().map(str::trim))
    {
        None => false,
        Some(Ok(e)) if e.is_empty() || e.eq_ignore_ascii_case("identity") => false,
        Some(Ok(e)) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => true,
        Some(other) => {
            return Err(ExportError::UnsupportedMedia(format!(
                "unsupported Content-Encoding {:?}: send gzip or no encoding",
                other.unwrap_or("<not ASCII>")
            )));
        }
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > limit as u64) {
        return Err(too_large(
            limit,
            format!("request body of {len} bytes (Content-Length)"),
        ));
    }
    let collected = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.downcast_ref::<LengthLimitError>().is_some() {
            too_large(limit, "request body".to_owned())
        } else {
            ExportError::Invalid(format!("could not read the request body: {e}"))
        }
    })?;
    let bytes = collected.to_bytes();
    p.metrics.request_bytes(Transport::Http, bytes.len() as u64);
    if !gzip {
        return Ok(bytes);
    }
    let mut inflated = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit));
    MultiGzDecoder::new(&bytes[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| {
            ExportError::Invalid(format!(
                "request body is not valid gzip (Content-Encoding: gzip): {e}"
            ))
        })?;
    if inflated.len() > limit {
        return Err(too_large(
            limit,
            format!(
                "gzip request body ({} bytes compressed) inflated",
                bytes.len()
            ),
        ));
    }
    Ok(Bytes::from(inflated))
}

fn too_large(limit: usize, what: String) -> ExportError {
    ExportError::TooLarge(format!(
        "{what} exceeds the {limit} byte limit (receiver.max_request_bytes): send smaller batches (lower the exporter's batch size) or raise the limit"
    ))
}

fn decode<T>(format: Format, bytes: &[u8], name: &str) -> Result<T, ExportError>
where
    T: Message + Default + DeserializeOwned,
{
    if bytes.is_empty() {
        return Ok(T::default());
    }
    match format {
        Format::Protobuf => T::decode(bytes).map_err(|e| {
            ExportError::Invalid(format!("request body is not a valid {name} protobuf: {e}"))
        }),
        Format::Json => serde_json::from_slice(bytes).map_err(|e| {
            ExportError::Invalid(format!(
                "request body is not valid OTLP/JSON for {name}: {e}"
            ))
        }),
    }
}

fn encode<T: Message + Serialize>(format: Format, message: &T) -> Vec<u8> {
    match format {
        Format::Protobuf => message.encode_to_vec(),
        // Serializing generated OTLP types into memory cannot fail; an empty object is still
        // a valid (empty) OTLP/JSON answer. Unset fields are left out, as protojson does
        // (`{}` rather than `{"partialSuccess":null}`).
        Format::Json => match serde_json::to_value(message) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.retain(|_, v| !v.is_null());
                serde_json::to_vec(&map).unwrap_or_else(|_| b"{}".to_vec())
            }
            _ => b"{}".to_vec(),
        },
    }
}

fn error_response(format: Format, e: &ExportError) -> Response {
    let status = match e {
        ExportError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ExportError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ExportError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ExportError::Invalid(_) | ExportError::Refused(_) => StatusCode::BAD_REQUEST,
        ExportError::Backpressure { .. } | ExportError::Unavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let body = match format {
        Format::Protobuf => e.to_rpc_status().encode_to_vec(),
        Format::Json => e.to_rpc_status_json().to_string().into_bytes(),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(format.mime()));
    if let Some(delay) = e.retry_after() {
        // Whole seconds, rounded up: a client must not come back early.
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    if let ExportError::Unauthenticated(_) = e {
        h.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"genai-audit\""),
        );
    }
    r
}
