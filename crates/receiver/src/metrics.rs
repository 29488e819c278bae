//! Counters of the receiver, rendered in the Prometheus text format by the binary's admin
//! endpoint.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Grpc,
    Http,
}

impl Transport {
    const ALL: [Transport; 2] = [Transport::Grpc, Transport::Http];

    fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

/// Which OTLP signal a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Logs,
}

impl Signal {
    const ALL: [Signal; 2] = [Signal::Traces, Signal::Logs];

    fn label(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }
}

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything accepted (or dropped as out of scope).
    Ok,
    /// Acknowledged with some spans rejected.
    Partial,
    /// Malformed request.
    Invalid,
    /// Over `max_request_bytes`.
    TooLarge,
    /// Content type or encoding not supported.
    UnsupportedMedia,
    /// Missing or wrong token.
    Unauthenticated,
    /// The sink applied backpressure.
    Backpressure,
    /// The sink was unavailable.
    Unavailable,
    /// The sink refused the batch.
    Refused,
}

impl Outcome {
    const COUNT: usize = 9;
    const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Ok,
        Outcome::Partial,
        Outcome::Invalid,
        Outcome::TooLarge,
        Outcome::UnsupportedMedia,
        Outcome::Unauthenticated,
        Outcome::Backpressure,
        Outcome::Unavailable,
        Outcome::Refused,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Invalid => "invalid",
            Outcome::TooLarge => "too_large",
            Outcome::UnsupportedMedia => "unsupported_media_type",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Backpressure => "backpressure",
            Outcome::Unavailable => "unavailable",
            Outcome::Refused => "refused",
        }
    }
}

/// Upper bounds of the export latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Receiver counters: share one (`Arc`) between the receiver and the admin endpoint.
#[derive(Debug, Default)]
pub struct ReceiverMetrics {
    requests: [[[AtomicU64; Outcome::COUNT]; 2]; 2],
    request_bytes: [AtomicU64; 2],
    spans_received: AtomicU64,
    spans_accepted: AtomicU64,
    spans_dropped_not_genai: AtomicU64,
    spans_rejected: Mutex<BTreeMap<&'static str, u64>>,
    log_records_received: AtomicU64,
    log_records_uncorrelated: AtomicU64,
    contents_accepted: AtomicU64,
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
}

impl ReceiverMetrics {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn request(&self, transport: Transport, signal: Signal, outcome: Outcome) {
        self.requests[transport as usize][signal as usize][outcome as usize]
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_bytes(&self, transport: Transport, bytes: u64) {
        self.request_bytes[transport as usize].fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn spans(&self, received: usize, accepted: usize, dropped_not_genai: usize) {
        self.spans_received
            .fetch_add(received as u64, Ordering::Relaxed);
        self.spans_accepted
            .fetch_add(accepted as u64, Ordering::Relaxed);
        self.spans_dropped_not_genai
            .fetch_add(dropped_not_genai as u64, Ordering::Relaxed);
    }

    pub(crate) fn span_rejected(&self, reason: &'static str) {
        let mut map = self
            .spans_rejected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry(reason).or_default() += 1;
    }

    pub(crate) fn log_records(&self, received: usize, uncorrelated: usize, contents: usize) {
        self.log_records_received
            .fetch_add(received as u64, Ordering::Relaxed);
        self.log_records_uncorrelated
            .fetch_add(uncorrelated as u64, Ordering::Relaxed);
        self.contents_accepted
            .fetch_add(contents as u64, Ordering::Relaxed);
    }

    pub(crate) fn export_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[slot].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Appends every counter in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        counter_header(
            out,
            "requests",
            "OTLP export requests by transport, signal and answer.",
        );
        for t in Transport::ALL {
            for s in Signal::ALL {
                for o in Outcome::ALL {
                    let _ = writeln!(
                        out,
                        "genai_audit_receiver_requests_total{{transport=\"{}\",signal=\"{}\",outcome=\"{}\"}} {}",
                        t.label(),
                        s.label(),
                        o.label(),
                        load(&self.requests[t as usize][s as usize][o as usize])
                    );
                }
            }
        }
        counter_header(
            out,
            "request_bytes",
            "Request body bytes as received (before inflation).",
        );
        for t in Transport::ALL {
            let _ = writeln!(
                out,
                "genai_audit_receiver_request_bytes_total{{transport=\"{}\"}} {}",
                t.label(),
                load(&self.request_bytes[t as usize])
            );
        }
        for (name, help, value) in [
            (
                "spans_received",
                "Spans in decoded requests.",
                &self.spans_received,
            ),
            (
                "spans_accepted",
                "Spans that became audit records (durable when acknowledged).",
                &self.spans_accepted,
            ),
            (
                "log_records_received",
                "Log records in decoded requests.",
                &self.log_records_received,
            ),
            (
                "log_records_uncorrelated",
                "Log records without span ids or GenAI content (not audit data).",
                &self.log_records_uncorrelated,
            ),
            (
                "contents_accepted",
                "Span contents taken from log records.",
                &self.contents_accepted,
            ),
        ] {
            counter_header(out, name, help);
            let _ = writeln!(out, "genai_audit_receiver_{name}_total {}", load(value));
        }
        counter_header(
            out,
            "spans_dropped",
            "Spans dropped as out of scope, by reason.",
        );
        let _ = writeln!(
            out,
            "genai_audit_receiver_spans_dropped_total{{reason=\"not_genai\"}} {}",
            load(&self.spans_dropped_not_genai)
        );
        counter_header(
            out,
            "spans_rejected",
            "Malformed spans rejected (OTLP partial success), by reason.",
        );
        let rejected = self
            .spans_rejected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for (reason, n) in rejected {
            let _ = writeln!(
                out,
                "genai_audit_receiver_spans_rejected_total{{reason=\"{reason}\"}} {n}"
            );
        }

        let name = "genai_audit_receiver_export_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time from request start to answer.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += load(&self.latency[i]);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += load(&self.latency[LATENCY_BUCKETS.len()]);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = load(&self.latency_sum_us) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

fn counter_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP genai_audit_receiver_{name}_total {help}");
    let _ = writeln!(out, "# TYPE genai_audit_receiver_{name}_total counter");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = ReceiverMetrics::new();
        m.request(Transport::Http, Signal::Traces, Outcome::Partial);
        m.request_bytes(Transport::Grpc, 120);
        m.spans(5, 3, 1);
        m.span_rejected("invalid_trace_id");
        m.export_latency(Duration::from_millis(3));
        m.export_latency(Duration::from_secs(60));
        let mut out = String::new();
        m.render_prometheus(&mut out);
        for line in [
            "genai_audit_receiver_requests_total{transport=\"http\",signal=\"traces\",outcome=\"partial\"} 1",
            "genai_audit_receiver_request_bytes_total{transport=\"grpc\"} 120",
            "genai_audit_receiver_spans_received_total 5",
            "genai_audit_receiver_spans_accepted_total 3",
            "genai_audit_receiver_spans_dropped_total{reason=\"not_genai\"} 1",
            "genai_audit_receiver_spans_rejected_total{reason=\"invalid_trace_id\"} 1",
            "genai_audit_receiver_export_duration_seconds_bucket{le=\"0.001\"} 0",
            "genai_audit_receiver_export_duration_seconds_bucket{le=\"0.005\"} 1",
            "genai_audit_receiver_export_duration_seconds_bucket{le=\"+Inf\"} 2",
            "genai_audit_receiver_export_duration_seconds_count 2",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }
}
