//! Test sink, server start-up, fixtures and raw clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures::future::{BoxFuture, FutureExt};
use genai_audit_core::{AuditRecord, CorrelatedContent, HashKey, Normalizer, NormalizerConfig};
use genai_audit_receiver::{AuditSink, Receiver, ReceiverConfig, ReceiverMetrics, SinkError};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// What the sink got, and how it should answer. Shared with the test through `Arc`.
#[derive(Default)]
struct SinkInner {
    records: Vec<AuditRecord>,
    contents: Vec<CorrelatedContent>,
    fail: Option<SinkError>,
    delay: Option<Duration>,
    events: Vec<&'static str>,
}

/// An in-memory [`AuditSink`]: records what it got, and can be told to fail or to be slow.
#[derive(Clone, Default)]
pub struct TestSink(Arc<Mutex<SinkInner>>);

impl TestSink {
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().unwrap().records.clone()
    }

    pub fn contents(&self) -> Vec<CorrelatedContent> {
        self.0.lock().unwrap().contents.clone()
    }

    pub fn fail_with(&self, e: Option<SinkError>) {
        self.0.lock().unwrap().fail = e;
    }

    pub fn delay(&self, d: Option<Duration>) {
        self.0.lock().unwrap().delay = d;
    }

    /// Appends an event to the log the sink also writes `durable` into.
    pub fn event(&self, e: &'static str) {
        self.0.lock().unwrap().events.push(e);
    }

    pub fn events(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().events.clone()
    }

    fn store(
        &self,
        put: impl FnOnce(&mut SinkInner) + Send + 'static,
    ) -> BoxFuture<'static, Result<(), SinkError>> {
        let inner = self.0.clone();
        async move {
            let (delay, fail) = {
                let s = inner.lock().unwrap();
                (s.delay, s.fail.clone())
            };
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if let Some(e) = fail {
                return Err(e);
            }
            let mut s = inner.lock().unwrap();
            put(&mut s);
            s.events.push("durable");
            Ok(())
        }
        .boxed()
    }
}

impl AuditSink for TestSink {
    fn append(&self, records: Vec<AuditRecord>) -> BoxFuture<'static, Result<(), SinkError>> {
        self.store(move |s| s.records.extend(records))
    }

    fn append_contents(
        &self,
        contents: Vec<CorrelatedContent>,
    ) -> BoxFuture<'static, Result<(), SinkError>> {
        self.store(move |s| s.contents.extend(contents))
    }
}

/// A receiver serving on port 0 until dropped or stopped.
pub struct TestServer {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub sink: TestSink,
    pub metrics: Arc<ReceiverMetrics>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

pub fn config(adjust: impl FnOnce(&mut ReceiverConfig)) -> ReceiverConfig {
    let mut cfg = ReceiverConfig::default();
    cfg.grpc.listen = "127.0.0.1:0".to_owned();
    cfg.http.listen = "127.0.0.1:0".to_owned();
    cfg.collector_id = "test-collector".to_owned();
    adjust(&mut cfg);
    cfg
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut ReceiverConfig)) -> TestServer {
    start_draining(adjust, genai_audit_receiver::DRAIN_TIMEOUT).await
}

pub async fn start_draining(
    adjust: impl FnOnce(&mut ReceiverConfig),
    drain_timeout: Duration,
) -> TestServer {
    let normalizer = Arc::new(Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).unwrap(),
    ));
    let sink = TestSink::default();
    let metrics = Arc::new(ReceiverMetrics::new());
    let bound = Receiver::bind(
        config(adjust),
        normalizer,
        Arc::new(sink.clone()),
        metrics.clone(),
    )
    .await
    .unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let grpc = bound.grpc_addr();
    let http = bound.http_addr();
    let task = tokio::spawn(bound.serve_with_drain_timeout(
        async {
            let _ = rx.await;
        },
        drain_timeout,
    ));
    TestServer {
        grpc,
        http,
        sink,
        metrics,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl TestServer {
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub async fn grpc_channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        self.metrics.render_prometheus(&mut out);
        out
    }

    /// Asserts the Prometheus text has exactly this line.
    pub fn assert_metric(&self, line: &str) {
        let text = self.metrics_text();
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    /// Stops accepting, waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("graceful shutdown finished")
                .unwrap();
        }
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// `(relative .json path, relative .pb path, expected line)` for every trace capture.
pub fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("otlp/expected.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn fixture_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

pub fn fixture_request(rel_pb: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(&fixture_bytes(rel_pb)[..]).unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// Every span of a request.
pub fn spans_mut(req: &mut ExportTraceServiceRequest) -> impl Iterator<Item = &mut Span> {
    req.resource_spans
        .iter_mut()
        .flat_map(|rs| rs.scope_spans.iter_mut())
        .flat_map(|ss| ss.spans.iter_mut())
}

/// openai-v2/chat_basic plus a non-GenAI span (dropped) and a GenAI span whose trace id is 15
/// bytes (rejected).
pub fn mixed_request() -> ExportTraceServiceRequest {
    let mut req = fixture_request("otlp/openai-v2/chat_basic.pb");
    let scope = &mut req.resource_spans[0].scope_spans[0];
    let good = scope.spans[0].clone();
    let mut plain = good.clone();
    plain.name = "GET /health".to_owned();
    plain.span_id = vec![1, 2, 3, 4, 5, 6, 7, 8];
    plain.attributes = vec![string_attr("http.request.method", "GET")];
    plain.events.clear();
    let mut bad = good.clone();
    bad.name = "chat bad-trace-id".to_owned();
    bad.trace_id.truncate(15);
    bad.span_id = vec![9, 9, 9, 9, 9, 9, 9, 9];
    scope.spans.push(plain);
    scope.spans.push(bad);
    req
}

/// A request with one span carrying a `len`-byte attribute (compresses to almost nothing).
pub fn big_request(len: usize) -> ExportTraceServiceRequest {
    let mut req = fixture_request("otlp/openai-v2/chat_basic.pb");
    for span in spans_mut(&mut req) {
        span.attributes
            .push(string_attr("padding", &"a".repeat(len)));
    }
    req
}

/// The protobuf of a request with an attribute value that is not UTF-8.
pub fn invalid_utf8_body() -> Vec<u8> {
    let mut req = fixture_request("otlp/openai-v2/chat_basic.pb");
    for span in spans_mut(&mut req) {
        span.attributes
            .push(string_attr("gen_ai.prompt", "MARKER-UTF8-MARKER"));
    }
    let mut body = req.encode_to_vec();
    let at = body.windows(6).position(|w| w == b"MARKER").unwrap();
    body[at] = 0xff;
    body[at + 1] = 0xfe;
    body
}

/// Sends raw bytes as a gRPC request body (to test what the typed client cannot send).
#[derive(Clone, Copy)]
pub struct RawCodec<R>(std::marker::PhantomData<R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

pub struct RawEncoder;
pub struct MessageDecoder<R>(std::marker::PhantomData<R>);

impl<R: Message + Default + Send + 'static> Codec for RawCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = MessageDecoder<R>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> MessageDecoder<R> {
        MessageDecoder(std::marker::PhantomData)
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put(item);
        Ok(())
    }
}

impl<R: Message + Default> Decoder for MessageDecoder<R> {
    type Item = R;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<R>, tonic::Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        R::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

pub const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends `body` as a raw `TraceService/Export` request.
pub async fn grpc_raw_traces(
    channel: Channel,
    body: Vec<u8>,
) -> Result<
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
    tonic::Status,
> {
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
        .unary(
            tonic::Request::new(Bytes::from(body)),
            http::uri::PathAndQuery::from_static(TRACES_PATH),
            RawCodec::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}
