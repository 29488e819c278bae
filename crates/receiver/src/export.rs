//! What both transports do with a decoded request: normalize it, hand the records to the sink,
//! and build the OTLP answer (or the error to map to one).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use genai_audit_core::{IngestContext, Normalizer, SkippedSpan, Source};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::Code;
use tonic_types::{ErrorDetails, RetryInfo, StatusExt as _};

use crate::auth::Authenticator;
use crate::metrics::{Outcome, ReceiverMetrics};
use crate::sink::{AuditSink, SinkError};

/// At most this many distinct reasons are spelled out in a `partial_success` message.
const MAX_REASONS: usize = 8;

/// The state both servers share.
pub(crate) struct Pipeline {
    pub(crate) normalizer: Arc<Normalizer>,
    pub(crate) sink: Arc<dyn AuditSink>,
    pub(crate) metrics: Arc<ReceiverMetrics>,
    pub(crate) auth: Authenticator,
    pub(crate) collector_id: Arc<str>,
    pub(crate) max_request_bytes: usize,
}

/// Why a request is not acknowledged; each maps to one gRPC code and one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExportError {
    Unauthenticated(String),
    UnsupportedMedia(String),
    TooLarge(String),
    Invalid(String),
    Backpressure {
        retry_after: Duration,
        message: String,
    },
    Unavailable(String),
    Refused(String),
}

impl From<SinkError> for ExportError {
    fn from(e: SinkError) -> Self {
        let message = e.to_string();
        match e {
            SinkError::Backpressure { retry_after } => ExportError::Backpressure {
                retry_after,
                message,
            },
            SinkError::Unavailable(_) => ExportError::Unavailable(message),
            SinkError::Invalid(_) => ExportError::Refused(message),
        }
    }
}

impl ExportError {
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            ExportError::Unauthenticated(_) => Outcome::Unauthenticated,
            ExportError::UnsupportedMedia(_) => Outcome::UnsupportedMedia,
            ExportError::TooLarge(_) => Outcome::TooLarge,
            ExportError::Invalid(_) => Outcome::Invalid,
            ExportError::Backpressure { .. } => Outcome::Backpressure,
            ExportError::Unavailable(_) => Outcome::Unavailable,
            ExportError::Refused(_) => Outcome::Refused,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            ExportError::Unauthenticated(m)
            | ExportError::UnsupportedMedia(m)
            | ExportError::TooLarge(m)
            | ExportError::Invalid(m)
            | ExportError::Unavailable(m)
            | ExportError::Refused(m)
            | ExportError::Backpressure { message: m, .. } => m,
        }
    }

    pub(crate) fn code(&self) -> Code {
        match self {
            ExportError::Unauthenticated(_) => Code::Unauthenticated,
            ExportError::UnsupportedMedia(_)
            | ExportError::Invalid(_)
            | ExportError::Refused(_) => Code::InvalidArgument,
            ExportError::TooLarge(_) => Code::ResourceExhausted,
            ExportError::Backpressure { .. } | ExportError::Unavailable(_) => Code::Unavailable,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            ExportError::Backpressure { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The gRPC answer, with a `google.rpc.RetryInfo` detail under backpressure.
    pub(crate) fn to_grpc_status(&self) -> tonic::Status {
        match self.retry_after() {
            Some(delay) => tonic::Status::with_error_details(
                self.code(),
                self.message(),
                ErrorDetails::with_retry_info(Some(delay)),
            ),
            None => tonic::Status::new(self.code(), self.message()),
        }
    }

    /// The `google.rpc.Status` for an HTTP error body.
    pub(crate) fn to_rpc_status(&self) -> tonic_types::pb::Status {
        let details = self
            .retry_after()
            .map(|delay| prost_types::Any {
                type_url: RetryInfo::TYPE_URL.to_owned(),
                value: tonic_types::pb::RetryInfo::from(RetryInfo::new(Some(delay)))
                    .encode_to_vec(),
            })
            .into_iter()
            .collect();
        tonic_types::pb::Status {
            code: self.code() as i32,
            message: self.message().to_owned(),
            details,
        }
    }

    /// The same status in OTLP/JSON form (`RetryInfo` as its canonical JSON mapping).
    pub(crate) fn to_rpc_status_json(&self) -> serde_json::Value {
        let details: Vec<serde_json::Value> = self
            .retry_after()
            .map(|delay| {
                serde_json::json!({
                    "@type": RetryInfo::TYPE_URL,
                    "retryDelay": format!("{}s", delay.as_secs_f64()),
                })
            })
            .into_iter()
            .collect();
        serde_json::json!({
            "code": self.code() as i32,
            "message": self.message(),
            "details": details,
        })
    }
}

impl Pipeline {
    fn context(&self, source: Source, tenant: Option<&str>) -> IngestContext {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let ctx = IngestContext::new(source, &self.collector_id, now_us);
        match tenant {
            Some(t) => ctx.with_tenant(t),
            None => ctx,
        }
    }

    /// Normalizes the spans, waits for the sink, and answers with the rejected spans.
    pub(crate) async fn export_traces(
        &self,
        req: ExportTraceServiceRequest,
        source: Source,
        tenant: Option<&str>,
    ) -> Result<(ExportTraceServiceResponse, Outcome), ExportError> {
        let ctx = self.context(source, tenant);
        let outcome = self.normalizer.normalize_traces(&req, &ctx);
        drop(req);
        let rejected = outcome.rejected();
        let dropped = outcome.dropped_not_genai();
        for s in outcome.skipped.iter().filter(|s| s.reason.is_rejection()) {
            self.metrics.span_rejected(s.reason.code());
        }
        self.metrics.spans(outcome.spans_seen, 0, dropped);
        let accepted = outcome.records.len();
        if accepted > 0 {
            self.sink.append(outcome.records).await?;
            self.metrics.spans(0, accepted, 0);
        }
        if rejected == 0 {
            return Ok((ExportTraceServiceResponse::default(), Outcome::Ok));
        }
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: rejection_message(
                    &outcome.skipped,
                    rejected,
                    outcome.spans_seen,
                    dropped,
                ),
            }),
        };
        Ok((response, Outcome::Partial))
    }

    /// Extracts span content from log records and waits for the sink. Log records that carry
    /// no GenAI content are out of scope, not rejected.
    pub(crate) async fn export_logs(
        &self,
        req: ExportLogsServiceRequest,
        source: Source,
        tenant: Option<&str>,
    ) -> Result<(ExportLogsServiceResponse, Outcome), ExportError> {
        let ctx = self.context(source, tenant);
        let outcome = self.normalizer.normalize_logs(&req, &ctx);
        drop(req);
        self.metrics
            .log_records(outcome.log_records_seen, outcome.uncorrelated, 0);
        let contents = outcome.contents.len();
        if contents > 0 {
            self.sink.append_contents(outcome.contents).await?;
            self.metrics.log_records(0, 0, contents);
        }
        Ok((ExportLogsServiceResponse::default(), Outcome::Ok))
    }
}

/// `rejected 2 of 5 spans: <reason> (1 span, e.g. "chat" trace … span …); …`
fn rejection_message(
    skipped: &[SkippedSpan],
    rejected: usize,
    seen: usize,
    dropped: usize,
) -> String {
    let mut groups: Vec<(String, usize, &SkippedSpan)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in skipped.iter().filter(|s| s.reason.is_rejection()) {
        let reason = s.reason.to_string();
        match index.get(&reason) {
            Some(&i) => groups[i].1 += 1,
            None => {
                index.insert(reason.clone(), groups.len());
                groups.push((reason, 1, s));
            }
        }
    }
    let mut msg = format!(
        "rejected {rejected} of {seen} span{}: ",
        if seen == 1 { "" } else { "s" }
    );
    for (i, (reason, n, example)) in groups.iter().take(MAX_REASONS).enumerate() {
        if i > 0 {
            msg.push_str("; ");
        }
        let _ = write!(
            msg,
            "{reason} ({n} span{}, e.g. {:?} trace_id={:?} span_id={:?})",
            if *n == 1 { "" } else { "s" },
            truncate(&example.span_name, 64),
            truncate(&example.trace_id, 64),
            truncate(&example.span_id, 64),
        );
    }
    if groups.len() > MAX_REASONS {
        let _ = write!(msg, "; and {} more reasons", groups.len() - MAX_REASONS);
    }
    if dropped > 0 {
        let _ = write!(
            msg,
            "; {dropped} non-GenAI span{} dropped (not an error)",
            if dropped == 1 { " was" } else { "s were" }
        );
    }
    msg
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use genai_audit_core::SkipReason;

    fn skipped(name: &str, reason: SkipReason) -> SkippedSpan {
        SkippedSpan {
            trace_id: "0102".to_owned(),
            span_id: "0a0b".to_owned(),
            span_name: name.to_owned(),
            reason,
        }
    }

    #[test]
    fn message_groups_reasons_and_counts() {
        let s = vec![
            skipped("a", SkipReason::InvalidTraceId { len: 2 }),
            skipped("b", SkipReason::NotGenAi),
            skipped("c", SkipReason::InvalidTraceId { len: 2 }),
            skipped("d", SkipReason::MissingStartTime),
        ];
        let m = rejection_message(&s, 3, 6, 1);
        assert!(m.starts_with("rejected 3 of 6 spans: trace_id must be 16 non-zero bytes, got 2 bytes (2 spans, e.g. \"a\""), "{m}");
        assert!(
            m.contains("start_time_unix_nano is 0 (1 span, e.g. \"d\""),
            "{m}"
        );
        assert!(
            m.ends_with("1 non-GenAI span was dropped (not an error)"),
            "{m}"
        );
    }

    #[test]
    fn sink_errors_map_to_codes() {
        let e = ExportError::from(SinkError::Backpressure {
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(e.code(), Code::Unavailable);
        let st = e.to_rpc_status();
        assert_eq!(st.details.len(), 1);
        assert_eq!(
            st.details[0].type_url,
            "type.googleapis.com/google.rpc.RetryInfo"
        );
        assert_eq!(e.to_rpc_status_json()["details"][0]["retryDelay"], "1.5s");
        let grpc = e.to_grpc_status();
        assert_eq!(
            grpc.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            ExportError::from(SinkError::Unavailable("x".into())).code(),
            Code::Unavailable
        );
        assert_eq!(
            ExportError::from(SinkError::Invalid("x".into())).code(),
            Code::InvalidArgument
        );
    }
}
