//! Binding the two listeners and serving connections until shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use genai_audit_core::Normalizer;
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::ReceiverConfig;
use crate::error::{Error, Result};
use crate::export::Pipeline;
use crate::grpc::GrpcService;
use crate::metrics::ReceiverMetrics;
use crate::sink::AuditSink;

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (such as too many open files) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// How long shutdown waits for in-flight requests before closing their connections (their
/// clients get no answer and retry; the store drops the duplicates).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The OTLP receiver: [`Receiver::bind`] is where it starts.
#[derive(Debug)]
pub struct Receiver;

impl Receiver {
    /// Validates `config`, loads the TLS files, and binds both listeners (port 0 picks a free
    /// port). Nothing is served until [`BoundReceiver::serve`].
    pub async fn bind(
        config: ReceiverConfig,
        normalizer: Arc<Normalizer>,
        sink: Arc<dyn AuditSink>,
        metrics: Arc<ReceiverMetrics>,
    ) -> Result<BoundReceiver> {
        let addrs = config.listen_addrs()?;
        let tls = crate::tls::server_config(&config.tls)?.map(TlsAcceptor::from);
        let grpc = bind("receiver.grpc.listen", addrs.grpc).await?;
        let http = bind("receiver.http.listen", addrs.http).await?;
        let local = |key, addr, l: &TcpListener| {
            l.local_addr()
                .map_err(|source| Error::Bind { key, addr, source })
        };
        let grpc_addr = local("receiver.grpc.listen", addrs.grpc, &grpc)?;
        let http_addr = local("receiver.http.listen", addrs.http, &http)?;
        let pipeline = Arc::new(Pipeline {
            normalizer,
            sink,
            metrics,
            auth: Authenticator::new(&config.auth),
            collector_id: config.collector_id.as_str().into(),
            max_request_bytes: config.max_request_bytes,
        });
        tracing::info!(%grpc_addr, %http_addr, tls = tls.is_some(), auth = config.auth.is_enabled(), "OTLP receiver bound");
        Ok(BoundReceiver {
            grpc,
            http,
            grpc_addr,
            http_addr,
            tls,
            pipeline,
        })
    }
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { key, addr, source })
}

/// A receiver whose listeners are bound: connections queue until [`serve`](Self::serve).
pub struct BoundReceiver {
    grpc: TcpListener,
    http: TcpListener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    pipeline: Arc<Pipeline>,
}

impl std::fmt::Debug for BoundReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundReceiver")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl BoundReceiver {
    /// Address of the OTLP/gRPC listener (with the port the OS picked for port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Address of the OTLP/HTTP listener (with the port the OS picked for port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves both listeners until `shutdown` resolves; then stops accepting, asks open
    /// connections to close (HTTP/2 `GOAWAY`, HTTP/1 close after the current response), and
    /// returns once every in-flight request has been answered, or after [`DRAIN_TIMEOUT`],
    /// closing the connections still open.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) {
        self.serve_with_drain_timeout(shutdown, DRAIN_TIMEOUT).await;
    }

    /// [`serve`](Self::serve) with another bound on draining in-flight requests.
    pub async fn serve_with_drain_timeout(
        self,
        shutdown: impl Future<Output = ()> + Send,
        drain_timeout: Duration,
    ) {
        let stops = Stops::default();
        let tracker = TaskTracker::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let grpc = TowerToHyperService::new(GrpcService::new(self.pipeline.clone()));
        let http = TowerToHyperService::new(crate::http::router(self.pipeline.clone()));
        let accept = async {
            tokio::join!(
                accept_loop(
                    self.grpc,
                    self.tls.clone(),
                    grpc,
                    &builder,
                    &stops,
                    &tracker
                ),
                accept_loop(
                    self.http,
                    self.tls.clone(),
                    http,
                    &builder,
                    &stops,
                    &tracker
                ),
            );
        };
        let stop = async {
            shutdown.await;
            tracing::info!("OTLP receiver shutting down: draining in-flight requests");
            stops.graceful.cancel();
        };
        tokio::join!(accept, stop);
        tracker.close();
        if tokio::time::timeout(drain_timeout, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = tracker.len(),
                ?drain_timeout,
                "in-flight requests did not finish in time: closing their connections"
            );
            stops.force.cancel();
            tracker.wait().await;
        }
        tracing::info!("OTLP receiver stopped");
    }
}

/// Shutdown signals: stop accepting and drain, then (after the drain timeout) close.
#[derive(Clone, Default)]
struct Stops {
    graceful: CancellationToken,
    force: CancellationToken,
}

async fn accept_loop<S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: TowerToHyperService<S>,
    builder: &Arc<auto::Builder<TokioExecutor>>,
    stops: &Stops,
    tracker: &TaskTracker,
) where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    loop {
        let (stream, peer) = tokio::select! {
            () = stops.graceful.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed; retrying");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let builder = builder.clone();
        let stops = stops.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            match tls {
                None => serve_connection(TokioIo::new(stream), service, &builder, &stops).await,
                Some(acceptor) => {
                    let Some(stream) = handshake(&acceptor, stream, peer, &stops.graceful).await
                    else {
                        return;
                    };
                    serve_connection(TokioIo::new(stream), service, &builder, &stops).await;
                }
            }
        });
    }
    // Dropping the listener closes the socket: new connections are refused from here on.
    drop(listener);
}

async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    token: &CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::select! {
        () = token.cancelled() => None,
        done = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match done {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        },
    }
}

async fn serve_connection<I, S, B>(
    io: TokioIo<I>,
    service: TowerToHyperService<S>,
    builder: &auto::Builder<TokioExecutor>,
    stops: &Stops,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stops.graceful.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                () = stops.force.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
