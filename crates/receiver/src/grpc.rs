//! OTLP/gRPC: `TraceService/Export` and `LogsService/Export` over tonic's unary machinery.
//!
//! The generated `TraceServiceServer` is not used: its prost codec answers a malformed message
//! with `INTERNAL`, where OTLP wants `INVALID_ARGUMENT`. The codec here says what was wrong, and a
//! body wrapper refuses a message over `max_request_bytes` from its gRPC frame header, before it
//! is buffered, with `RESOURCE_EXHAUSTED` (tonic's own check answers `OUT_OF_RANGE`; its cap on
//! gzip inflation already answers `RESOURCE_EXHAUSTED`).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use genai_audit_core::Source;
use http_body::{Body, Frame, SizeHint};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::{Grpc, UnaryService};
use tonic::{Code, Status};

use crate::export::Pipeline;
use crate::metrics::{Outcome, Signal, Transport};

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
/// gRPC message prefix: compressed flag and 32-bit length.
const FRAME_HEADER: usize = 5;

/// The gRPC service for both OTLP signals.
#[derive(Clone)]
pub(crate) struct GrpcService {
    pipeline: Arc<Pipeline>,
}

impl GrpcService {
    pub(crate) fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline }
    }
}

impl<B> tower_service::Service<http::Request<B>> for GrpcService
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<crate::BoxError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let pipeline = self.pipeline.clone();
        Box::pin(async move { Ok(handle(pipeline, req).await) })
    }
}

async fn handle<B>(
    pipeline: Arc<Pipeline>,
    req: http::Request<B>,
) -> http::Response<tonic::body::Body>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<crate::BoxError> + Send + 'static,
{
    // An OTLP/HTTP exporter pointed at the gRPC port must get an HTTP error, not a gRPC status
    // in a 200 response (which it would take as success, silently losing its data).
    let is_grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if !is_grpc || req.version() < http::Version::HTTP_2 {
        let message = "this is the OTLP/gRPC port: send OTLP/HTTP (application/x-protobuf or \
                       application/json) to the HTTP listener (receiver.http.listen, default :4318)\n";
        let mut resp = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(
            Bytes::from_static(message.as_bytes()),
        )));
        *resp.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return resp;
    }
    let signal = match req.uri().path() {
        TRACES_PATH => Signal::Traces,
        LOGS_PATH => Signal::Logs,
        other => {
            return Status::unimplemented(format!(
                "unknown method {other}: this receiver serves {TRACES_PATH} and {LOGS_PATH}"
            ))
            .into_http();
        }
    };
    let started = Instant::now();
    let metrics = pipeline.metrics.clone();
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let tenant = match pipeline.auth.authenticate(authorization) {
        Ok(t) => t,
        Err(failure) => {
            metrics.request(Transport::Grpc, signal, Outcome::Unauthenticated);
            metrics.export_latency(started.elapsed());
            return Status::unauthenticated(failure.message("authorization")).into_http();
        }
    };
    let limit = pipeline.max_request_bytes;
    let req = req.map(|body| LimitedBody::new(body, limit, pipeline.clone()));
    let answered = Arc::new(AtomicBool::new(false));
    let mut accept = EnabledCompressionEncodings::default();
    accept.enable(CompressionEncoding::Gzip);
    let response = match signal {
        Signal::Traces => {
            let svc = Export::<ExportTraceServiceRequest> {
                pipeline: pipeline.clone(),
                tenant,
                answered: answered.clone(),
                _request: PhantomData,
            };
            Grpc::new(OtlpCodec::<
                ExportTraceServiceResponse,
                ExportTraceServiceRequest,
            >::new("ExportTraceServiceRequest"))
            .apply_compression_config(accept, EnabledCompressionEncodings::default())
            .apply_max_message_size_config(Some(limit), None)
            .unary(svc, req)
            .await
        }
        Signal::Logs => {
            let svc = Export::<ExportLogsServiceRequest> {
                pipeline: pipeline.clone(),
                tenant,
                answered: answered.clone(),
                _request: PhantomData,
            };
            Grpc::new(OtlpCodec::<
                ExportLogsServiceResponse,
                ExportLogsServiceRequest,
            >::new("ExportLogsServiceRequest"))
            .apply_compression_config(accept, EnabledCompressionEncodings::default())
            .apply_max_message_size_config(Some(limit), None)
            .unary(svc, req)
            .await
        }
    };
    if !answered.load(Ordering::Acquire) {
        // The request failed before reaching the pipeline: decoding, size or compression.
        let outcome = match Status::from_header_map(response.headers()).map(|s| s.code()) {
            Some(Code::ResourceExhausted) => Outcome::TooLarge,
            Some(Code::Unimplemented) => Outcome::UnsupportedMedia,
            _ => Outcome::Invalid,
        };
        metrics.request(Transport::Grpc, signal, outcome);
    }
    metrics.export_latency(started.elapsed());
    response
}

/// One unary `Export` call.
struct Export<Req> {
    pipeline: Arc<Pipeline>,
    tenant: Option<Arc<str>>,
    /// Set once the pipeline answered (and counted the outcome).
    answered: Arc<AtomicBool>,
    _request: PhantomData<fn(Req)>,
}

impl UnaryService<ExportTraceServiceRequest> for Export<ExportTraceServiceRequest> {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        let pipeline = self.pipeline.clone();
        let tenant = self.tenant.clone();
        let answered = self.answered.clone();
        Box::pin(async move {
            let result = pipeline
                .export_traces(request.into_inner(), Source::OtlpGrpc, tenant.as_deref())
                .await;
            answer(&pipeline, Signal::Traces, &answered, result)
        })
    }
}

impl UnaryService<ExportLogsServiceRequest> for Export<ExportLogsServiceRequest> {
    type Response = ExportLogsServiceResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<ExportLogsServiceRequest>) -> Self::Future {
        let pipeline = self.pipeline.clone();
        let tenant = self.tenant.clone();
        let answered = self.answered.clone();
        Box::pin(async move {
            let result = pipeline
                .export_logs(request.into_inner(), Source::OtlpGrpc, tenant.as_deref())
                .await;
            answer(&pipeline, Signal::Logs, &answered, result)
        })
    }
}

fn answer<T>(
    pipeline: &Pipeline,
    signal: Signal,
    answered: &AtomicBool,
    result: Result<(T, Outcome), crate::export::ExportError>,
) -> Result<tonic::Response<T>, Status> {
    answered.store(true, Ordering::Release);
    match result {
        Ok((response, outcome)) => {
            pipeline.metrics.request(Transport::Grpc, signal, outcome);
            Ok(tonic::Response::new(response))
        }
        Err(e) => {
            pipeline
                .metrics
                .request(Transport::Grpc, signal, e.outcome());
            Err(e.to_grpc_status())
        }
    }
}

/// Prost codec whose decode errors are `INVALID_ARGUMENT` and name the message type.
struct OtlpCodec<E, D> {
    name: &'static str,
    _types: PhantomData<fn(E) -> D>,
}

impl<E, D> OtlpCodec<E, D> {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            _types: PhantomData,
        }
    }
}

impl<E, D> Codec for OtlpCodec<E, D>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = ProtoEncoder<E>;
    type Decoder = ProtoDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        ProtoEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder {
            name: self.name,
            _type: PhantomData,
        }
    }
}

struct ProtoEncoder<T>(PhantomData<fn(T)>);

impl<T: prost::Message> Encoder for ProtoEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }
}

struct ProtoDecoder<T> {
    name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T: prost::Message + Default> Decoder for ProtoDecoder<T> {
    type Item = T;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<T>, Status> {
        T::decode(buf).map(Some).map_err(|e| {
            Status::invalid_argument(format!(
                "request is not a valid {} protobuf: {e}",
                self.name
            ))
        })
    }
}

/// A request body that counts bytes and refuses a message over the limit as soon as its frame
/// header announces it, and a stream over the limit as soon as it passes it.
struct LimitedBody<B> {
    inner: B,
    limit: usize,
    pipeline: Arc<Pipeline>,
    seen: usize,
    header: [u8; FRAME_HEADER],
    header_len: usize,
}

impl<B> LimitedBody<B> {
    fn new(inner: B, limit: usize, pipeline: Arc<Pipeline>) -> Self {
        Self {
            inner,
            limit,
            pipeline,
            seen: 0,
            header: [0; FRAME_HEADER],
            header_len: 0,
        }
    }

    fn too_large(&self, size: usize, what: &str) -> Status {
        Status::resource_exhausted(format!(
            "{what} of {size} bytes exceeds the {} byte limit (receiver.max_request_bytes): send smaller batches (lower the exporter's batch size) or raise the limit",
            self.limit
        ))
    }

    fn check(&mut self, data: &Bytes) -> Result<(), Status> {
        self.seen = self.seen.saturating_add(data.len());
        if self.header_len < FRAME_HEADER {
            let take = (FRAME_HEADER - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
            self.header_len += take;
            if self.header_len == FRAME_HEADER {
                let mut len = &self.header[1..];
                let announced = len.get_u32() as usize;
                if announced > self.limit {
                    return Err(self.too_large(announced, "request message"));
                }
            }
        }
        if self.seen > self.limit.saturating_add(FRAME_HEADER) {
            return Err(self.too_large(self.seen, "request body"));
        }
        Ok(())
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<crate::BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.pipeline
                        .metrics
                        .request_bytes(Transport::Grpc, data.len() as u64);
                    this.check(data)?;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(Status::from_error(e.into())))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
