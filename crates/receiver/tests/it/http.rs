//! OTLP/HTTP: protobuf, JSON and gzip bodies, OTLP answers in the request's content type.

use std::time::{Duration, Instant};

use genai_audit_receiver::SinkError;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;
use tonic::Code;

use crate::support::*;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

async fn post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.http_url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn post_gzip(server: &TestServer, content_type: &str, body: &[u8]) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.http_url("/v1/traces"))
        .header("content-type", content_type)
        .header("content-encoding", "gzip")
        .body(gzip(body))
        .send()
        .await
        .unwrap()
}

/// The `google.rpc.Status` of an error answer in protobuf.
async fn pb_status(resp: reqwest::Response) -> tonic_types::pb::Status {
    assert_eq!(resp.headers()["content-type"], PROTOBUF);
    tonic_types::pb::Status::decode(resp.bytes().await.unwrap()).unwrap()
}

/// The `google.rpc.Status` of an error answer in JSON.
async fn json_status(resp: reqwest::Response) -> Value {
    assert_eq!(resp.headers()["content-type"], JSON);
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

async fn good_request_still_served(server: &TestServer) {
    let before = server.sink.records().len();
    let resp = post(
        server,
        "/v1/traces",
        PROTOBUF,
        fixture_bytes("otlp/openai-v2/chat_basic.pb"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.sink.records().len(), before + 1);
}

#[tokio::test]
async fn protobuf_json_and_gzip_captures_become_records() {
    let server = start().await;
    let expected = expected();
    for exp in &expected {
        let pb = fixture_bytes(exp["pb_file"].as_str().unwrap());
        let json = fixture_bytes(exp["file"].as_str().unwrap());
        for (ct, body, gz) in [
            (PROTOBUF, pb.clone(), false),
            (JSON, json.clone(), false),
            (PROTOBUF, pb, true),
            (JSON, json, true),
        ] {
            let resp = if gz {
                post_gzip(&server, ct, &body).await
            } else {
                post(&server, "/v1/traces", ct, body).await
            };
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "{} {ct} gzip={gz}",
                exp["file"]
            );
            assert_eq!(resp.headers()["content-type"], ct);
            let bytes = resp.bytes().await.unwrap();
            let answer: ExportTraceServiceResponse = if ct == JSON {
                serde_json::from_slice(&bytes).unwrap()
            } else {
                ExportTraceServiceResponse::decode(bytes).unwrap()
            };
            assert_eq!(answer.partial_success, None);
        }
    }
    let records = server.sink.records();
    assert_eq!(records.len(), expected.len() * 4);
    for exp in &expected {
        let same: Vec<_> = records
            .iter()
            .filter(|r| r.trace_id == exp["trace_id"].as_str().unwrap())
            .filter(|r| r.span_id == exp["span_id"].as_str().unwrap())
            .collect();
        assert_eq!(same.len(), 4, "{}", exp["file"]);
        for r in &same {
            assert_eq!(r.request_model.as_deref(), exp["request_model"].as_str());
            assert_eq!(r.output_tokens, exp["output_tokens"].as_i64());
            assert_eq!(r.source, genai_audit_core::Source::OtlpHttp);
            // JSON and protobuf of one capture normalize to the same audit hash inputs.
            assert_eq!(r.record_id, same[0].record_id);
            assert_eq!(r.prompt_hash, same[0].prompt_hash);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn logs_endpoint_produces_correlated_contents() {
    let server = start().await;
    for (ct, file) in [
        (PROTOBUF, "otlp/openai-v2/logs/chat_pii.pb"),
        (JSON, "otlp/openai-v2/logs/chat_pii.json"),
    ] {
        let resp = post(&server, "/v1/logs", ct, fixture_bytes(file)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{file}");
        assert_eq!(resp.headers()["content-type"], ct);
    }
    let contents = server.sink.contents();
    assert_eq!(contents.len(), 2);
    assert_eq!(
        contents[0], contents[1],
        "protobuf and JSON give the same content"
    );
    assert!(contents[0].digest.response_hash.is_some());
    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"http\",signal=\"logs\",outcome=\"ok\"} 2",
    );
    server.stop().await;
}

#[tokio::test]
async fn partial_success_in_protobuf_and_json() {
    let server = start().await;
    let req = mixed_request();
    let resp = post(&server, "/v1/traces", PROTOBUF, req.encode_to_vec()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let answer = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("got 15 bytes"),
        "{}",
        partial.error_message
    );
    assert!(
        partial
            .error_message
            .contains("1 non-GenAI span was dropped"),
        "{}",
        partial.error_message
    );

    let json = serde_json::to_vec(&req).unwrap();
    let resp = post(&server, "/v1/traces", JSON, json).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let rejected = &answer["partialSuccess"]["rejectedSpans"];
    assert!(rejected == 1 || rejected == "1", "{answer}");
    assert_eq!(server.sink.records().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn json_ids_of_the_wrong_length_are_rejected_with_the_reason() {
    let server = start().await;
    let exp = &expected()[0];
    let text = String::from_utf8(fixture_bytes(exp["file"].as_str().unwrap())).unwrap();
    let trace_id = exp["trace_id"].as_str().unwrap();
    let span_id = exp["span_id"].as_str().unwrap();
    let short_trace = text.replace(trace_id, &trace_id[..30]);
    let resp = post(&server, "/v1/traces", JSON, short_trace.into_bytes()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let msg = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("trace_id must be 16 non-zero bytes, got 15 bytes"),
        "{msg}"
    );

    let long_span = text.replace(span_id, &format!("{span_id}00"));
    let resp = post(&server, "/v1/traces", JSON, long_span.into_bytes()).await;
    let answer: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let msg = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("span_id must be 8 non-zero bytes, got 9 bytes"),
        "{msg}"
    );
    assert!(server.sink.records().is_empty());

    // An odd number of hex digits is not an id at all: the body is invalid.
    let odd = text.replace(trace_id, &trace_id[..31]);
    let resp = post(&server, "/v1/traces", JSON, odd.into_bytes()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let status = json_status(resp).await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column"),
        "{status}"
    );
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_status_body() {
    let server = start().await;

    let resp = post(
        &server,
        "/v1/traces",
        PROTOBUF,
        vec![0xff, 0xff, 0xff, 0x0f, 0x01],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let status = pb_status(resp).await;
    assert_eq!(status.code, Code::InvalidArgument as i32);
    assert!(
        status
            .message
            .starts_with("request body is not a valid ExportTraceServiceRequest protobuf: "),
        "{}",
        status.message
    );

    let resp = post(&server, "/v1/traces", PROTOBUF, invalid_utf8_body()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let status = pb_status(resp).await;
    assert!(status.message.contains("UTF-8"), "{}", status.message);

    let resp = post(
        &server,
        "/v1/traces",
        JSON,
        b"{\"resourceSpans\": [}".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let status = json_status(resp).await;
    assert_eq!(status["code"], Code::InvalidArgument as i32);
    let msg = status["message"].as_str().unwrap();
    assert!(msg.contains("OTLP/JSON"), "{msg}");
    assert!(msg.contains("at line 1 column 20"), "{msg}");

    let resp = reqwest::Client::new()
        .post(server.http_url("/v1/logs"))
        .header("content-type", JSON)
        .header("content-encoding", "gzip")
        .body("not gzip at all")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let status = json_status(resp).await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("not valid gzip"),
        "{status}"
    );

    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"http\",signal=\"traces\",outcome=\"invalid\"} 3",
    );
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn empty_bodies_succeed() {
    let server = start().await;
    for ct in [PROTOBUF, JSON] {
        let resp = post(&server, "/v1/traces", ct, Vec::new()).await;
        assert_eq!(resp.status(), StatusCode::OK, "{ct}");
    }
    let resp = post(&server, "/v1/logs", JSON, b"{}".to_vec()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(server.sink.records().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn content_type_method_and_path_are_checked() {
    let server = start().await;
    let pb = fixture_bytes("otlp/openai-v2/chat_basic.pb");

    let resp = post(&server, "/v1/traces", "text/plain", pb.clone()).await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let status = json_status(resp).await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("application/x-protobuf"),
        "{status}"
    );

    let resp = reqwest::Client::new()
        .post(server.http_url("/v1/traces"))
        .body(pb.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let resp = reqwest::Client::new()
        .post(server.http_url("/v1/traces"))
        .header("content-type", PROTOBUF)
        .header("content-encoding", "br")
        .body(pb.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(pb_status(resp).await.message.contains("Content-Encoding"));

    // Parameters and case do not matter.
    let resp = post(
        &server,
        "/v1/traces",
        "Application/JSON; charset=utf-8",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = reqwest::Client::new()
        .get(server.http_url("/v1/traces"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");

    let resp = post(&server, "/v1/metrics", PROTOBUF, pb).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.text().await.unwrap().contains("POST /v1/traces"));

    assert!(server.sink.records().is_empty());
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let server = start_with(|c| c.max_request_bytes = 4096).await;
    let big = big_request(8192).encode_to_vec();

    // Content-Length over the limit.
    let resp = post(&server, "/v1/traces", PROTOBUF, big.clone()).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let status = pb_status(resp).await;
    assert_eq!(status.code, Code::ResourceExhausted as i32);
    assert!(
        status
            .message
            .contains("(Content-Length) exceeds the 4096 byte limit (receiver.max_request_bytes)"),
        "{}",
        status.message
    );

    // No Content-Length: counted as it streams.
    let chunks: Vec<Result<http_body::Frame<bytes::Bytes>, std::io::Error>> = big
        .chunks(1000)
        .map(|c| Ok(http_body::Frame::data(bytes::Bytes::copy_from_slice(c))))
        .collect();
    let resp = reqwest::Client::new()
        .post(server.http_url("/v1/traces"))
        .header("content-type", PROTOBUF)
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(
            futures::stream::iter(chunks),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Small compressed, too large inflated (a zip bomb in miniature).
    let bomb = big_request(1 << 20).encode_to_vec();
    let resp = post_gzip(
        &server,
        JSON,
        &serde_json::to_vec(&big_request(1 << 20)).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let status = json_status(resp).await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("inflated exceeds the 4096 byte limit"),
        "{status}"
    );
    let resp = post_gzip(&server, PROTOBUF, &bomb).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert!(server.sink.records().is_empty());
    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"http\",signal=\"traces\",outcome=\"too_large\"} 4",
    );
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn backpressure_is_503_with_retry_after() {
    let server = start().await;
    server.sink.fail_with(Some(SinkError::Backpressure {
        retry_after: Duration::from_millis(2500),
    }));
    let pb = fixture_bytes("otlp/openai-v2/chat_basic.pb");
    let resp = post(&server, "/v1/traces", PROTOBUF, pb.clone()).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "3");
    let status = pb_status(resp).await;
    assert_eq!(status.code, Code::Unavailable as i32);
    assert_eq!(status.details.len(), 1);
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );

    let json = fixture_bytes("otlp/openai-v2/chat_basic.json");
    let resp = post(&server, "/v1/traces", JSON, json).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let status = json_status(resp).await;
    assert_eq!(status["details"][0]["retryDelay"], "2.5s");

    server
        .sink
        .fail_with(Some(SinkError::Unavailable("shutting down".to_owned())));
    let resp = post(&server, "/v1/traces", PROTOBUF, pb.clone()).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get("retry-after").is_none());

    server
        .sink
        .fail_with(Some(SinkError::Invalid("collector id refused".to_owned())));
    let resp = post(&server, "/v1/traces", PROTOBUF, pb).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    server.sink.fail_with(None);
    assert!(server.sink.records().is_empty());
    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"http\",signal=\"traces\",outcome=\"backpressure\"} 2",
    );
    good_request_still_served(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn acknowledges_only_after_the_sink_resolves() {
    let server = start().await;
    let delay = Duration::from_millis(300);
    server.sink.delay(Some(delay));
    let t0 = Instant::now();
    let resp = post(
        &server,
        "/v1/logs",
        PROTOBUF,
        fixture_bytes("otlp/openai-v2/logs/chat_pii.pb"),
    )
    .await;
    server.sink.event("acked");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(t0.elapsed() >= delay);
    assert_eq!(server.sink.events(), ["durable", "acked"]);
    server.stop().await;
}
