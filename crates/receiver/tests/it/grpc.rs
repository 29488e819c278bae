//! OTLP/gRPC: records, partial success, malformed and oversized requests, sink errors.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use genai_audit_receiver::SinkError;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic_types::StatusExt as _;

use crate::support::*;

async fn good_request_still_served(server: &TestServer) {
    let before = server.sink.records().len();
    let mut client = TraceServiceClient::new(server.grpc_channel().await);
    client
        .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
        .await
        .expect("a good request after a bad one");
    assert_eq!(server.sink.records().len(), before + 1);
}

#[tokio::test]
async fn every_capture_becomes_a_record() {
    let server = start().await;
    let mut client = TraceServiceClient::new(server.grpc_channel().await);
    let expected = expected();
    for exp in &expected {
        let req = fixture_request(exp["pb_file"].as_str().unwrap());
        let resp = client.export(req).await.unwrap().into_inner();
        assert_eq!(resp.partial_success, None, "{}", exp["pb_file"]);
    }
    let records = server.sink.records();
    assert_eq!(records.len(), expected.len());
    let by_id: HashMap<_, _> = records
        .iter()
        .map(|r| ((r.trace_id.clone(), r.span_id.clone()), r))
        .collect();
    for exp in &expected {
        let key = (
            exp["trace_id"].as_str().unwrap().to_owned(),
            exp["span_id"].as_str().unwrap().to_owned(),
        );
        let r = by_id
            .get(&key)
            .unwrap_or_else(|| panic!("no record for {key:?}"));
        assert_eq!(r.request_model.as_deref(), exp["request_model"].as_str());
        assert_eq!(r.collector_id.as_ref(), "test-collector");
        assert_eq!(r.source, genai_audit_core::Source::OtlpGrpc);
        assert_eq!(r.tenant.as_ref(), "default");
        if let Some(n) = exp["input_tokens"].as_i64() {
            assert_eq!(r.input_tokens, Some(n), "{}", exp["pb_file"]);
        }
    }
    server.assert_metric(&format!(
        "genai_audit_receiver_requests_total{{transport=\"grpc\",signal=\"traces\",outcome=\"ok\"}} {}",
        expected.len()
    ));
    server.assert_metric(&format!(
        "genai_audit_receiver_spans_accepted_total {}",
        expected.len()
    ));
    server.stop().await;
}

#[tokio::test]
async fn gzip_requests_are_accepted() {
    let server = start().await;
    let mut client = TraceServiceClient::new(server.grpc_channel().await)
        .send_compressed(CompressionEncoding::Gzip);
    client
        .export(fixture_request("otlp/traceloop-openai/chat_basic.pb"))
        .await
        .unwrap();
    let records = server.sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].input_tokens, Some(1234));
    server.stop().await;
}

#[tokio::test]
async fn logs_produce_correlated_contents() {
    let server = start().await;
    let mut client = LogsServiceClient::new(server.grpc_channel().await);
    let req =
        ExportLogsServiceRequest::decode(&fixture_bytes("otlp/openai-v2/logs/chat_pii.pb")[..])
            .unwrap();
    let resp = client.export(req).await.unwrap().into_inner();
    assert_eq!(resp.partial_success, None);
    let contents = server.sink.contents();
    assert_eq!(contents.len(), 1);
    let pii = expected()
        .into_iter()
        .find(|e| e["pb_file"] == "otlp/openai-v2/chat_pii.pb")
        .unwrap();
    assert_eq!(contents[0].trace_id, pii["trace_id"].as_str().unwrap());
    assert_eq!(contents[0].span_id, pii["span_id"].as_str().unwrap());
    assert!(contents[0].digest.prompt_hash.is_some());
    assert!(!contents[0].digest.pii.is_empty());
    // An empty logs request is a success that stores nothing.
    client
        .export(ExportLogsServiceRequest::default())
        .await
        .unwrap();
    assert_eq!(server.sink.contents().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn partial_success_counts_rejected_not_dropped() {
    let server = start().await;
    let mut client = TraceServiceClient::new(server.grpc_channel().await);
    let resp = client.export(mixed_request()).await.unwrap().into_inner();
    let partial = resp.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("trace_id must be 16 non-zero bytes, got 15 bytes"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.contains("chat bad-trace-id"),
        "{}",
        partial.error_message
    );
    assert_eq!(server.sink.records().len(), 1);
    server.assert_metric("genai_audit_receiver_spans_received_total 3");
    server.assert_metric("genai_audit_receiver_spans_dropped_total{reason=\"not_genai\"} 1");
    server
        .assert_metric("genai_audit_receiver_spans_rejected_total{reason=\"invalid_trace_id\"} 1");
    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"grpc\",signal=\"traces\",outcome=\"partial\"} 1",
    );

    // Only out-of-scope spans: a full success, nothing stored.
    let mut req = mixed_request();
    let spans = &mut req.resource_spans[0].scope_spans[0].spans;
    spans.retain(|s| s.name == "GET /health");
    let resp = client.export(req).await.unwrap().into_inner();
    assert_eq!(resp.partial_success, None);
    assert_eq!(server.sink.records().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn empty_request_succeeds() {
    let server = start().await;
    let mut client = TraceServiceClient::new(server.grpc_channel().await);
    let resp = client
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.partial_success, None);
    assert!(server.sink.records().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn garbage_protobuf_is_invalid_argument() {
    let server = start().await;
    let status = grpc_raw_traces(
        server.grpc_channel().await,
        vec![0xff, 0xff, 0xff, 0x0f, 0x01],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("request is not a valid ExportTraceServiceRequest protobuf: "),
        "{}",
        status.message()
    );
    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"grpc\",signal=\"traces\",outcome=\"invalid\"} 1",
    );
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_is_named() {
    let server = start().await;
    let status = grpc_raw_traces(server.grpc_channel().await, invalid_utf8_body())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("UTF-8"), "{}", status.message());
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_requests_are_resource_exhausted() {
    let server = start_with(|c| c.max_request_bytes = 4096).await;
    let mut client = TraceServiceClient::new(server.grpc_channel().await);

    // As sent.
    let status = client.export(big_request(8192)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("exceeds the 4096 byte limit (receiver.max_request_bytes)"),
        "{}",
        status.message()
    );

    // Small on the wire, over the limit once inflated.
    let req = big_request(1 << 20);
    let mut gz = TraceServiceClient::new(server.grpc_channel().await)
        .send_compressed(CompressionEncoding::Gzip);
    let status = gz.export(req).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4096"), "{}", status.message());
    assert!(server.sink.records().is_empty());
    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"grpc\",signal=\"traces\",outcome=\"too_large\"} 2",
    );
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn backpressure_is_unavailable_with_retry_info() {
    let server = start().await;
    server.sink.fail_with(Some(SinkError::Backpressure {
        retry_after: Duration::from_secs(3),
    }));
    let mut client = TraceServiceClient::new(server.grpc_channel().await);
    let status = client
        .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let retry = status.get_details_retry_info().expect("RetryInfo detail");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));
    assert!(server.sink.records().is_empty());

    server
        .sink
        .fail_with(Some(SinkError::Unavailable("WAL closed".to_owned())));
    let status = client
        .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("WAL closed"),
        "{}",
        status.message()
    );
    assert!(status.get_details_retry_info().is_none());

    server.sink.fail_with(None);
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn acknowledges_only_after_the_sink_resolves() {
    let server = start().await;
    let delay = Duration::from_millis(300);
    server.sink.delay(Some(delay));
    let mut client = TraceServiceClient::new(server.grpc_channel().await);
    let t0 = Instant::now();
    client
        .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
        .await
        .unwrap();
    server.sink.event("acked");
    assert!(t0.elapsed() >= delay);
    assert_eq!(server.sink.events(), ["durable", "acked"]);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let server = start().await;
    server.sink.delay(Some(Duration::from_millis(400)));
    let channel = server.grpc_channel().await;
    let mut client = TraceServiceClient::new(channel);
    let request = tokio::spawn(async move {
        client
            .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sink = server.sink.clone();
    let grpc = server.grpc;
    server.stop().await;
    // The in-flight request was answered after its batch was durable...
    request.await.unwrap().expect("in-flight request answered");
    assert_eq!(sink.records().len(), 1);
    // ...and nothing is accepted any more.
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_past_the_drain_timeout() {
    let server = start_draining(|_| {}, Duration::from_millis(200)).await;
    server.sink.delay(Some(Duration::from_secs(30)));
    let mut client = TraceServiceClient::new(server.grpc_channel().await);
    let request = tokio::spawn(async move {
        client
            .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    server.stop().await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Never acknowledged: the client retries.
    assert!(request.await.unwrap().is_err());
}
