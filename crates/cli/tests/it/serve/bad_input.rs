//! Malformed requests get the OTLP answer the spec asks for, and the process keeps serving: each
//! bad request is followed by a good one that must be accepted and stored.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;

/// `receiver.max_request_bytes` of the server under test: above every good request here.
const LIMIT: usize = 8192;

/// Sends good requests (fresh ids each time) and remembers what must end up stored.
struct Good {
    next: u32,
    rids: Vec<String>,
    http: u32,
    grpc: u32,
}

impl Good {
    fn request(&mut self) -> ExportTraceServiceRequest {
        let (req, rids) = chat_request(self.next, 1);
        self.next += 1;
        self.rids.extend(rids);
        req
    }

    async fn http(&mut self, client: &reqwest::Client, server: &Server, after: &str) {
        let req = self.request();
        let reply = post(
            client,
            &server.traces_url(),
            Some("application/x-protobuf"),
            req.encode_to_vec(),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "good request after {after}: {reply:?}");
        self.http += 1;
    }

    async fn grpc(&mut self, server: &Server, after: &str) {
        let req = self.request();
        let resp = grpc_traces(server.grpc, req, None).await;
        assert!(resp.is_ok(), "good request after {after}: {resp:?}");
        self.grpc += 1;
    }
}

/// A one-span request whose `user.id` value is not UTF-8 (protobuf `string` fields must be).
fn invalid_utf8_request() -> Vec<u8> {
    let (t, s) = ids(77, 0);
    let mut span = chat_span(t, s);
    span.attributes.push(kv("user.id", "@@MARK@@"));
    let mut bytes = traces_request(vec![], vec![span]).encode_to_vec();
    let at = bytes
        .windows(8)
        .position(|w| w == b"@@MARK@@")
        .expect("marker in the encoding");
    bytes[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    bytes
}

/// One good span, one with an 8-byte trace id, one with a 4-byte span id.
fn wrong_id_lengths(series: u32) -> (ExportTraceServiceRequest, String) {
    let (t, s) = ids(series, 0);
    let good = chat_span(t, s);
    let mut short_trace = chat_span(ids(series, 1).0, ids(series, 1).1);
    short_trace.trace_id.truncate(8);
    let mut short_span = chat_span(ids(series, 2).0, ids(series, 2).1);
    short_span.span_id.truncate(4);
    (
        traces_request(vec![], vec![good, short_trace, short_span]),
        rid(&t, &s),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn malformed_requests_get_otlp_errors_and_the_process_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let limit = LIMIT.to_string();
    let server = Server::start_with(
        dir.path(),
        Opts {
            env: &[("GENAI_AUDIT_RECEIVER_MAX_REQUEST_BYTES", &limit)],
            ..Opts::default()
        },
    );
    let url = server.traces_url();
    let pb = Some("application/x-protobuf");
    let json = Some("application/json");
    let mut good = Good {
        next: 1,
        rids: Vec::new(),
        http: 0,
        grpc: 0,
    };
    let mut partial_rids = Vec::new();
    rt().block_on(async {
        let client = http_client();
        good.http(&client, &server, "nothing").await;

        // Garbage protobuf: 400 with a google.rpc.Status body (INVALID_ARGUMENT).
        let r = post(&client, &url, pb, vec![0x0a, 0xff, 0xff, 0xff], &[]).await;
        assert_eq!(r.status, 400, "{r:?}");
        let st = r.rpc_status();
        assert_eq!(st.code, tonic::Code::InvalidArgument as i32);
        assert!(
            st.message
                .contains("not a valid ExportTraceServiceRequest protobuf"),
            "{st:?}"
        );
        good.http(&client, &server, "garbage protobuf").await;

        // A real capture cut in half.
        let whole = std::fs::read(crate::fixtures().join("openai-v2/chat_basic.pb")).unwrap();
        let r = post(&client, &url, pb, whole[..whole.len() / 2].to_vec(), &[]).await;
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(r.rpc_status().code, tonic::Code::InvalidArgument as i32);
        good.http(&client, &server, "truncated protobuf").await;

        // Content types OTLP/HTTP does not speak: 415, answered in JSON.
        let r = post(&client, &url, Some("text/plain"), b"hello".to_vec(), &[]).await;
        assert_eq!(r.status, 415, "{r:?}");
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("Content-Type"),
            "{r:?}"
        );
        let r = post(&client, &url, None, whole.clone(), &[]).await;
        assert_eq!(r.status, 415, "missing Content-Type: {r:?}");
        let r = post(
            &client,
            &url,
            pb,
            whole.clone(),
            &[("content-encoding", "br")],
        )
        .await;
        assert_eq!(r.status, 415, "Content-Encoding br: {r:?}");
        good.http(&client, &server, "wrong content types").await;

        // Invalid JSON: 400 with a JSON status naming the problem.
        let r = post(
            &client,
            &url,
            json,
            br#"{"resourceSpans": [tru"#.to_vec(),
            &[],
        )
        .await;
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["code"], 3, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("not valid OTLP/JSON"),
            "{v}"
        );
        good.http(&client, &server, "invalid JSON").await;

        // Over receiver.max_request_bytes, as sent and once inflated: 413.
        let r = post(&client, &url, pb, vec![0; 2 * LIMIT], &[]).await;
        assert_eq!(r.status, 413, "{r:?}");
        let st = r.rpc_status();
        assert_eq!(st.code, tonic::Code::ResourceExhausted as i32);
        assert!(st.message.contains("receiver.max_request_bytes"), "{st:?}");
        let bomb = gzip(&vec![0; 8 * LIMIT]);
        assert!(bomb.len() < LIMIT);
        let r = post(&client, &url, pb, bomb, &[("content-encoding", "gzip")]).await;
        assert_eq!(r.status, 413, "gzip inflating past the limit: {r:?}");
        good.http(&client, &server, "oversized bodies").await;

        // Not gzip although it says so.
        let r = post(
            &client,
            &url,
            pb,
            whole.clone(),
            &[("content-encoding", "gzip")],
        )
        .await;
        assert_eq!(r.status, 400, "{r:?}");
        assert!(r.rpc_status().message.contains("gzip"));
        // Gzip done right is accepted.
        let req = good.request();
        let r = post(
            &client,
            &url,
            pb,
            gzip(&req.encode_to_vec()),
            &[("content-encoding", "gzip")],
        )
        .await;
        assert_eq!(r.status, 200, "gzip body: {r:?}");
        good.http += 1;

        // A string attribute that is not UTF-8.
        let r = post(&client, &url, pb, invalid_utf8_request(), &[]).await;
        assert_eq!(r.status, 400, "{r:?}");
        let st = r.rpc_status();
        assert!(
            st.message.contains("UTF-8"),
            "the message should name the problem: {st:?}"
        );
        good.http(&client, &server, "invalid UTF-8").await;

        // Ids of the wrong length: the other spans are kept; OTLP partial success.
        let (req, kept) = wrong_id_lengths(500);
        partial_rids.push(kept);
        let r = post(&client, &url, pb, req.encode_to_vec(), &[]).await;
        assert_eq!(r.status, 200, "{r:?}");
        let partial = r
            .traces_response()
            .partial_success
            .expect("partial_success");
        assert_eq!(partial.rejected_spans, 2, "{partial:?}");
        assert!(
            partial
                .error_message
                .contains("trace_id must be 16 non-zero bytes, got 8 bytes")
                && partial.error_message.contains("span_id"),
            "{partial:?}"
        );
        // The same in OTLP/JSON: the answer says `partialSuccess` in JSON.
        let (req, kept) = wrong_id_lengths(501);
        partial_rids.push(kept);
        let r = post(&client, &url, json, serde_json::to_vec(&req).unwrap(), &[]).await;
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        // int64: a number or, per the protobuf JSON mapping, a string.
        let rejected = &v["partialSuccess"]["rejectedSpans"];
        assert!(rejected == 2 || rejected == "2", "{v}");
        good.http(&client, &server, "wrong id lengths").await;

        // Paths and methods that are not OTLP.
        let r = post(
            &client,
            &format!("http://{}/v1/metrics", server.http),
            pb,
            vec![],
            &[],
        )
        .await;
        assert_eq!(r.status, 404, "{r:?}");
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 405);
        good.http(&client, &server, "404 and 405").await;

        // gRPC: undecodable message → INVALID_ARGUMENT.
        let st = grpc_raw(server.grpc, TRACES_PATH, vec![0x0a, 0xff, 0xff, 0xff])
            .await
            .unwrap_err();
        assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
        assert!(st.message().contains("ExportTraceServiceRequest"), "{st:?}");
        good.grpc(&server, "garbage over gRPC").await;

        let st = grpc_raw(server.grpc, TRACES_PATH, invalid_utf8_request())
            .await
            .unwrap_err();
        assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
        assert!(st.message().contains("UTF-8"), "{st:?}");
        good.grpc(&server, "invalid UTF-8 over gRPC").await;

        // Over the limit → RESOURCE_EXHAUSTED.
        let mut big = chat_request(600, 1).0;
        big.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .push(kv("padding", &"x".repeat(2 * LIMIT)));
        let st = grpc_raw(server.grpc, TRACES_PATH, big.encode_to_vec())
            .await
            .unwrap_err();
        assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
        assert!(
            st.message().contains("receiver.max_request_bytes"),
            "{st:?}"
        );
        good.grpc(&server, "oversized over gRPC").await;

        // Small when gzip-compressed, over the limit once inflated → RESOURCE_EXHAUSTED.
        let mut bomb = chat_request(601, 1).0;
        bomb.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .push(kv("padding", &"x".repeat(8 * LIMIT)));
        let mut client = TraceServiceClient::connect(format!("http://{}", server.grpc))
            .await
            .unwrap()
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let st = client.export(bomb).await.unwrap_err();
        assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
        // A gzip-compressed request within the limit is fine.
        let req = good.request();
        let resp = client.export(req).await;
        assert!(resp.is_ok(), "gzip over gRPC: {resp:?}");
        good.grpc += 1;
        good.grpc(&server, "gzip over gRPC").await;

        // Wrong id lengths → OK with partial_success.
        let (req, kept) = wrong_id_lengths(502);
        partial_rids.push(kept);
        let resp = grpc_traces(server.grpc, req, None).await.unwrap();
        let partial = resp.partial_success.expect("partial_success");
        assert_eq!(partial.rejected_spans, 2, "{partial:?}");
        good.grpc(&server, "wrong id lengths over gRPC").await;

        // A method that does not exist.
        let st = grpc_raw(
            server.grpc,
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            vec![],
        )
        .await
        .unwrap_err();
        assert_eq!(st.code(), tonic::Code::Unimplemented, "{st:?}");
        good.grpc(&server, "unknown method").await;
    });

    let m = server.metrics();
    let requests = |transport: &str, outcome: &str| {
        metric(
            &m,
            &format!(
                "genai_audit_receiver_requests_total{{transport=\"{transport}\",signal=\"traces\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(requests("http", "ok"), f64::from(good.http));
    assert_eq!(requests("http", "partial"), 2.0);
    assert_eq!(requests("http", "invalid"), 5.0);
    assert_eq!(requests("http", "too_large"), 2.0);
    assert_eq!(requests("http", "unsupported_media_type"), 3.0);
    assert_eq!(requests("grpc", "ok"), f64::from(good.grpc));
    assert_eq!(requests("grpc", "partial"), 1.0);
    assert_eq!(requests("grpc", "invalid"), 2.0);
    assert_eq!(requests("grpc", "too_large"), 2.0);
    assert_eq!(
        metric(
            &m,
            "genai_audit_receiver_spans_rejected_total{reason=\"invalid_trace_id\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "genai_audit_receiver_spans_rejected_total{reason=\"invalid_span_id\"}"
        ),
        3.0
    );

    let store = server.store();
    let log = server.stop();
    let rows = rows_by_id(read_rows(&store));
    let mut want: Vec<String> = good.rids.clone();
    want.extend(partial_rids);
    want.sort();
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), want, "{log}");
}

/// An OTLP/HTTP exporter pointed at the gRPC port by mistake (`OTEL_EXPORTER_OTLP_ENDPOINT`
/// with `:4317` and `http/protobuf`, a classic) must see a failure, not a gRPC status inside a
/// `200 OK` that an OTLP/HTTP client reads as "fully accepted" (the spans would be lost).
#[test]
fn otlp_http_sent_to_the_grpc_port_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (req, _) = chat_request(1, 1);
    let reply = rt().block_on(async {
        post(
            &http_client(),
            &format!("http://{}/v1/traces", server.grpc),
            Some("application/x-protobuf"),
            req.encode_to_vec(),
            &[],
        )
        .await
    });
    let store = server.store();
    server.stop();
    assert!(read_rows(&store).is_empty());
    assert!(
        !(200..300).contains(&reply.status),
        "OTLP/HTTP on the gRPC port was acknowledged and dropped: {reply:?}"
    );
}
