//! Bearer tokens (tenant forced from the token), TLS and mutual TLS on both listeners.

use std::path::Path;

use genai_audit_receiver::{BearerToken, TokenConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use reqwest::StatusCode;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::support::*;

const ACME_TOKEN: &str = "acme-token-0123456789abcdef";

/// chat_basic with a resource attribute claiming another tenant.
fn claims_other_tenant() -> ExportTraceServiceRequest {
    let mut req = fixture_request("otlp/openai-v2/chat_basic.pb");
    req.resource_spans[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes
        .push(string_attr("tenant.id", "other"));
    req
}

async fn start_with_auth() -> TestServer {
    start_with(|c| {
        c.auth.tokens = vec![
            TokenConfig {
                token: BearerToken::new(ACME_TOKEN),
                tenant: "acme".to_owned(),
            },
            TokenConfig {
                token: BearerToken::new("beta-token-0123456789abcdef"),
                tenant: "beta".to_owned(),
            },
        ];
    })
    .await
}

#[tokio::test]
async fn http_requires_a_valid_token_and_forces_its_tenant() {
    let server = start_with_auth().await;
    let body = claims_other_tenant().encode_to_vec();
    let client = reqwest::Client::new();
    let send = |auth: Option<&str>| {
        let mut req = client
            .post(server.http_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };

    for auth in [
        None,
        Some("Bearer wrong-token-0123456789"),
        Some("Basic YWNtZTpwdw=="),
    ] {
        let resp = send(auth).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    assert!(server.sink.records().is_empty());

    let resp = send(Some(&format!("Bearer {ACME_TOKEN}"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let records = server.sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tenant.as_ref(), "acme");
    server.assert_metric(
        "genai_audit_receiver_requests_total{transport=\"http\",signal=\"traces\",outcome=\"unauthenticated\"} 3",
    );
    server.stop().await;
}

#[tokio::test]
async fn grpc_requires_a_valid_token_and_forces_its_tenant() {
    let server = start_with_auth().await;
    let channel = server.grpc_channel().await;
    let mut client = TraceServiceClient::new(channel.clone());

    let status = client.export(claims_other_tenant()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("authorization"),
        "{}",
        status.message()
    );

    let mut req = tonic::Request::new(claims_other_tenant());
    req.metadata_mut().insert(
        "authorization",
        "Bearer not-the-token-0123".parse().unwrap(),
    );
    let status = client.export(req).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(server.sink.records().is_empty());

    let mut req = tonic::Request::new(claims_other_tenant());
    req.metadata_mut().insert(
        "authorization",
        "Bearer beta-token-0123456789abcdef".parse().unwrap(),
    );
    client.export(req).await.unwrap();
    let records = server.sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tenant.as_ref(), "beta");
    server.stop().await;
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server_cert =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap()
                .signed_by(&server_key, &ca)
                .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client_cert = CertificateParams::new(vec!["client.example".to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki {
            ca_pem: ca.pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            dir,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    async fn start(&self, mtls: bool) -> TestServer {
        let (cert, key, ca) = (
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        );
        start_with(move |c| {
            c.tls.cert_file = Some(cert);
            c.tls.key_file = Some(key);
            if mtls {
                c.tls.client_ca_file = Some(ca);
            }
        })
        .await
    }

    fn http_client(&self, with_identity: bool) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap());
        if with_identity {
            let pem = format!("{}{}", self.client_cert_pem, self.client_key_pem);
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }

    async fn grpc_channel(
        &self,
        server: &TestServer,
        with_identity: bool,
    ) -> Result<Channel, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        if with_identity {
            tls = tls.identity(Identity::from_pem(
                &self.client_cert_pem,
                &self.client_key_pem,
            ));
        }
        Channel::from_shared(format!("https://127.0.0.1:{}", server.grpc.port()))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await
    }
}

async fn https_post(
    client: &reqwest::Client,
    server: &TestServer,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!(
            "https://127.0.0.1:{}/v1/traces",
            server.http.port()
        ))
        .header("content-type", "application/x-protobuf")
        .body(fixture_bytes("otlp/openai-v2/chat_basic.pb"))
        .send()
        .await
}

#[tokio::test]
async fn tls_serves_both_listeners() {
    let pki = Pki::new();
    let server = pki.start(false).await;

    let resp = https_post(&pki.http_client(false), &server).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let channel = pki.grpc_channel(&server, false).await.unwrap();
    TraceServiceClient::new(channel)
        .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
        .await
        .unwrap();

    // Plain text is not served on a TLS port.
    let plain = reqwest::Client::new()
        .post(server.http_url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(Vec::new())
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    assert_eq!(server.sink.records().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn mtls_rejects_clients_without_a_certificate() {
    let pki = Pki::new();
    let server = pki.start(true).await;

    assert!(https_post(&pki.http_client(false), &server).await.is_err());
    let refused = match pki.grpc_channel(&server, false).await {
        Err(_) => true,
        Ok(channel) => TraceServiceClient::new(channel)
            .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
            .await
            .is_err(),
    };
    assert!(
        refused,
        "a gRPC client without a certificate must be refused"
    );
    assert!(server.sink.records().is_empty());

    // With a certificate signed by the configured CA: served.
    let resp = https_post(&pki.http_client(true), &server).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let channel = pki.grpc_channel(&server, true).await.unwrap();
    TraceServiceClient::new(channel)
        .export(fixture_request("otlp/openai-v2/chat_basic.pb"))
        .await
        .unwrap();
    assert_eq!(server.sink.records().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn bad_tls_files_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate").unwrap();
    let cfg = |cert: &Path| {
        let cert = cert.to_owned();
        let key = dir.path().join("garbage.pem");
        config(move |c| {
            c.tls.cert_file = Some(cert);
            c.tls.key_file = Some(key);
        })
    };
    let normalizer = std::sync::Arc::new(genai_audit_core::Normalizer::new(
        genai_audit_core::NormalizerConfig::default(),
        genai_audit_core::HashKey::new(&[7u8; 32]).unwrap(),
    ));
    let bind = |c| {
        genai_audit_receiver::Receiver::bind(
            c,
            normalizer.clone(),
            std::sync::Arc::new(TestSink::default()),
            std::sync::Arc::new(genai_audit_receiver::ReceiverMetrics::new()),
        )
    };
    let err = bind(cfg(&missing)).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("receiver.tls.cert_file: cannot read"),
        "{err}"
    );
    let err = bind(cfg(&dir.path().join("garbage.pem")))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("receiver.tls.cert_file:"),
        "{err}"
    );
    assert!(err.to_string().contains("no certificate found"), "{err}");
}

#[tokio::test]
async fn port_in_use_names_the_key() {
    let server = start().await;
    let taken = server.http.to_string();
    let cfg = config(|c| c.http.listen = taken);
    let normalizer = std::sync::Arc::new(genai_audit_core::Normalizer::new(
        genai_audit_core::NormalizerConfig::default(),
        genai_audit_core::HashKey::new(&[7u8; 32]).unwrap(),
    ));
    let err = genai_audit_receiver::Receiver::bind(
        cfg,
        normalizer,
        std::sync::Arc::new(TestSink::default()),
        std::sync::Arc::new(genai_audit_receiver::ReceiverMetrics::new()),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("receiver.http.listen: cannot listen on"),
        "{err}"
    );
    server.stop().await;
}
