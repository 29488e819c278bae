//! # genai-audit-receiver
//!
//! The OTLP front door of genai-audit: an OTLP/gRPC server (`TraceService/Export`,
//! `LogsService/Export`, default `127.0.0.1:4317`) and an OTLP/HTTP server (`POST /v1/traces`,
//! `POST /v1/logs`, protobuf or JSON, optionally gzip, default `127.0.0.1:4318`). Every request
//! is normalized in place into [`AuditRecord`](genai_audit_core::AuditRecord)s by the core
//! [`Normalizer`](genai_audit_core::Normalizer) and handed to an [`AuditSink`]; the request is
//! acknowledged only once the sink reports the batch durable.
//!
//! OTLP semantics, as the spec (<https://opentelemetry.io/docs/specs/otlp/>) words them:
//!
//! | situation | gRPC | HTTP |
//! |---|---|---|
//! | accepted (non-GenAI spans are dropped and counted, not rejected) | `OK` | 200 |
//! | some spans malformed | `OK` + `partial_success { rejected_spans, error_message }` | 200 + same |
//! | undecodable body | `INVALID_ARGUMENT` | 400 + `google.rpc.Status` |
//! | over `max_request_bytes` (sent or inflated) | `RESOURCE_EXHAUSTED` | 413 |
//! | content type or encoding not spoken | — | 415 |
//! | missing or wrong bearer token | `UNAUTHENTICATED` | 401 + `WWW-Authenticate` |
//! | sink [`Backpressure`](SinkError::Backpressure) | `UNAVAILABLE` + `RetryInfo` | 503 + `Retry-After` |
//! | sink [`Unavailable`](SinkError::Unavailable) | `UNAVAILABLE` | 503 |
//! | sink [`Invalid`](SinkError::Invalid) | `INVALID_ARGUMENT` | 400 |
//!
//! HTTP answers (and error bodies) use the request's content type. Both servers can use TLS
//! (rustls), with client certificates required when a client CA is configured, and bearer
//! tokens that each fix the tenant of what is sent with them.
//!
//! ## Main types
//!
//! - [`ReceiverConfig`]: the `[receiver]` settings, with [`ReceiverConfig::validate`].
//! - [`AuditSink`] / [`SinkError`]: the boundary to whatever makes records durable (the binary
//!   wires the store's writer in; this crate does not depend on the store).
//! - [`Receiver::bind`] → [`BoundReceiver`]: binds both listeners first (port 0 allowed), exposes
//!   their addresses, then [`BoundReceiver::serve`] runs until a shutdown future resolves and
//!   drains in-flight requests.
//! - [`ReceiverMetrics`]: counters rendered in the Prometheus text format.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use futures::future::{BoxFuture, FutureExt};
//! use genai_audit_core::{AuditRecord, CorrelatedContent, HashKey, Normalizer, NormalizerConfig};
//! use genai_audit_receiver::{AuditSink, Receiver, ReceiverConfig, ReceiverMetrics, SinkError};
//!
//! /// Accepts everything and keeps nothing.
//! struct Discard;
//!
//! impl AuditSink for Discard {
//!     fn append(&self, _: Vec<AuditRecord>) -> BoxFuture<'static, Result<(), SinkError>> {
//!         async { Ok(()) }.boxed()
//!     }
//!     fn append_contents(
//!         &self,
//!         _: Vec<CorrelatedContent>,
//!     ) -> BoxFuture<'static, Result<(), SinkError>> {
//!         async { Ok(()) }.boxed()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ReceiverConfig::default();
//! config.grpc.listen = "127.0.0.1:0".into();
//! config.http.listen = "127.0.0.1:0".into();
//! config.collector_id = "collector-1".into();
//! config.validate()?;
//!
//! let normalizer = Arc::new(Normalizer::new(NormalizerConfig::default(), HashKey::new(&[7; 32])?));
//! let metrics = Arc::new(ReceiverMetrics::new());
//! let bound = Receiver::bind(config, normalizer, Arc::new(Discard), metrics.clone()).await?;
//! println!("OTLP/gRPC on {}, OTLP/HTTP on {}", bound.grpc_addr(), bound.http_addr());
//!
//! // Serve until the shutdown future resolves (here: at once), then drain.
//! bound.serve(async {}).await;
//!
//! let mut text = String::new();
//! metrics.render_prometheus(&mut text);
//! assert!(text.contains("genai_audit_receiver_spans_received_total 0"));
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod auth;
mod config;
mod error;
mod export;
mod grpc;
mod http;
mod metrics;
mod server;
mod sink;
mod tls;

pub use auth::BearerToken;
pub use config::{AuthConfig, GrpcConfig, HttpConfig, ReceiverConfig, TlsConfig, TokenConfig};
pub use error::{Error, Result};
pub use metrics::ReceiverMetrics;
pub use server::{BoundReceiver, DRAIN_TIMEOUT, Receiver};
pub use sink::{AuditSink, SinkError};

/// Boxed error of bodies and services.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
