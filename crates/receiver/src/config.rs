//! Receiver settings: the `[receiver]` table of the genai-audit config.
//!
//! ```toml
//! [receiver]
//! max_request_bytes = 16777216
//! grpc.listen = "127.0.0.1:4317"
//! http.listen = "127.0.0.1:4318"
//! auth.tokens = [{ token = "4f6c2d0a9b1e8f7c3a5d2e9b", tenant = "acme" }]
//! tls.cert_file = "/etc/genai-audit/tls.crt"
//! tls.key_file = "/etc/genai-audit/tls.key"
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::auth::BearerToken;
use crate::error::{Error, Result};

/// Smallest accepted `max_request_bytes`.
const MIN_REQUEST_BYTES: usize = 1024;
/// Largest accepted `max_request_bytes` (a gRPC message length is 32 bits; past 1 GiB a single
/// request is a mistake).
const MAX_REQUEST_BYTES: usize = 1 << 30;
/// Shortest accepted bearer token.
const MIN_TOKEN_CHARS: usize = 16;

/// Settings of the OTLP receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// The OTLP/gRPC listener.
    pub grpc: GrpcConfig,
    /// The OTLP/HTTP listener.
    pub http: HttpConfig,
    /// Largest request accepted, in bytes (default 16 MiB). Applies to the body as sent and
    /// again after gzip inflation; larger requests get HTTP 413 / gRPC `RESOURCE_EXHAUSTED`.
    pub max_request_bytes: usize,
    /// Bearer-token authentication (off unless tokens are listed).
    pub auth: AuthConfig,
    /// TLS for both listeners (off unless `cert_file` and `key_file` are set).
    pub tls: TlsConfig,
    /// Keep spans that carry no GenAI attributes. Not supported yet: such spans are always
    /// counted and dropped, so only `false` is accepted.
    pub keep_non_genai: bool,
    /// Id of this collector, stamped on every record. Not read from the file: the caller sets
    /// it (the binary uses the store's collector id).
    #[serde(skip)]
    pub collector_id: String,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc: GrpcConfig::default(),
            http: HttpConfig::default(),
            max_request_bytes: 16 * 1024 * 1024,
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            keep_non_genai: false,
            collector_id: String::new(),
        }
    }
}

/// The OTLP/gRPC listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Address to listen on, `IP:port` (default `127.0.0.1:4317`; port 0 picks a free port).
    pub listen: String,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4317".to_owned(),
        }
    }
}

/// The OTLP/HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on, `IP:port` (default `127.0.0.1:4318`; port 0 picks a free port).
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4318".to_owned(),
        }
    }
}

/// Bearer-token authentication.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a token on every request. Unset: required exactly when `tokens` is not empty;
    /// `false` turns checking off while keeping the tokens listed.
    pub enabled: Option<bool>,
    /// Accepted tokens, each fixing the tenant of everything sent with it.
    pub tokens: Vec<TokenConfig>,
}

impl AuthConfig {
    /// Whether requests must carry a token.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(!self.tokens.is_empty())
    }
}

/// One accepted bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The secret, sent as `Authorization: Bearer <token>` (at least 16 characters).
    pub token: BearerToken,
    /// Tenant of every span sent with this token; resource attributes cannot override it.
    pub tenant: String,
}

/// TLS for both listeners.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain of the server (leaf first).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the server (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates: when set, clients must present a certificate signed by one (mTLS).
    pub client_ca_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether TLS is on.
    pub fn is_enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// Listener addresses after validation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenAddrs {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

impl ReceiverConfig {
    /// Checks every setting without touching the network or the file system; the error names
    /// the key to fix.
    pub fn validate(&self) -> Result<()> {
        self.listen_addrs().map(|_| ())
    }

    pub(crate) fn listen_addrs(&self) -> Result<ListenAddrs> {
        let grpc = parse_listen("receiver.grpc.listen", &self.grpc.listen)?;
        let http = parse_listen("receiver.http.listen", &self.http.listen)?;
        if grpc == http && grpc.port() != 0 {
            return Err(Error::config(
                "receiver.http.listen",
                format!(
                    "{http} is also receiver.grpc.listen: give each listener its own port (OTLP uses 4317 for gRPC, 4318 for HTTP)"
                ),
            ));
        }
        if !(MIN_REQUEST_BYTES..=MAX_REQUEST_BYTES).contains(&self.max_request_bytes) {
            return Err(Error::config(
                "receiver.max_request_bytes",
                format!(
                    "{} is out of range: use {MIN_REQUEST_BYTES} to {MAX_REQUEST_BYTES} bytes (default 16777216)",
                    self.max_request_bytes
                ),
            ));
        }
        self.validate_auth()?;
        self.validate_tls()?;
        if self.keep_non_genai {
            return Err(Error::config(
                "receiver.keep_non_genai",
                "keeping non-GenAI spans is not supported yet (they are counted and dropped): remove the key or set it to false",
            ));
        }
        if self.collector_id.trim().is_empty() {
            return Err(Error::config(
                "receiver.collector_id",
                "not set: the caller must set ReceiverConfig::collector_id to this collector's id",
            ));
        }
        Ok(ListenAddrs { grpc, http })
    }

    fn validate_auth(&self) -> Result<()> {
        let auth = &self.auth;
        if auth.enabled == Some(true) && auth.tokens.is_empty() {
            return Err(Error::config(
                "receiver.auth.tokens",
                "auth is enabled but no token is listed: add tokens = [{ token = \"...\", tenant = \"...\" }] or set receiver.auth.enabled = false",
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, t) in auth.tokens.iter().enumerate() {
            let key = format!("receiver.auth.tokens[{i}].token");
            let secret = t.token.expose();
            if secret.chars().count() < MIN_TOKEN_CHARS {
                return Err(Error::config(
                    key,
                    format!(
                        "too short: use at least {MIN_TOKEN_CHARS} random characters (for example the output of `openssl rand -hex 32`)"
                    ),
                ));
            }
            if !is_token68(secret) {
                return Err(Error::config(
                    key,
                    "contains characters a bearer token cannot carry: use only A-Z a-z 0-9 - . _ ~ + / (and trailing =)",
                ));
            }
            if let Some(first) = seen.insert(secret, i) {
                return Err(Error::config(
                    key,
                    format!(
                        "same token as receiver.auth.tokens[{first}]: each token must be unique"
                    ),
                ));
            }
            if !genai_audit_core::normalize::is_valid_tenant(&t.tenant) {
                return Err(Error::config(
                    format!("receiver.auth.tokens[{i}].tenant"),
                    format!(
                        "{:?} is not a valid tenant: use 1-64 characters of A-Z a-z 0-9 . _ - not starting with '.'",
                        t.tenant
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<()> {
        let tls = &self.tls;
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => Err(Error::config(
                "receiver.tls.key_file",
                "receiver.tls.cert_file is set but key_file is not: set both to enable TLS",
            )),
            (None, Some(_)) => Err(Error::config(
                "receiver.tls.cert_file",
                "receiver.tls.key_file is set but cert_file is not: set both to enable TLS",
            )),
            (None, None) if tls.client_ca_file.is_some() => Err(Error::config(
                "receiver.tls.client_ca_file",
                "client certificates need TLS: set receiver.tls.cert_file and key_file too",
            )),
            _ => Ok(()),
        }
    }
}

fn parse_listen(key: &str, value: &str) -> Result<SocketAddr> {
    value.trim().parse().map_err(|_| {
        Error::config(
            key,
            format!(
                "{value:?} is not an IP:port address: use for example 127.0.0.1:4318, [::1]:4318, or 0.0.0.0:4318 for every interface"
            ),
        )
    })
}

/// RFC 6750 `b64token`: what can follow `Bearer ` in a header.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ReceiverConfig {
        ReceiverConfig {
            collector_id: "c1".to_owned(),
            ..ReceiverConfig::default()
        }
    }

    fn parse(text: &str) -> ReceiverConfig {
        let mut cfg: ReceiverConfig = toml::from_str(text).expect("parses");
        cfg.collector_id = "c1".to_owned();
        cfg
    }

    fn key_of(cfg: &ReceiverConfig) -> String {
        match cfg.validate() {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let cfg = base();
        cfg.validate().expect("valid");
        assert_eq!(cfg.max_request_bytes, 16 * 1024 * 1024);
        assert!(!cfg.auth.is_enabled());
        assert!(!cfg.tls.is_enabled());
        let addrs = cfg.listen_addrs().expect("valid");
        assert_eq!(addrs.grpc.port(), 4317);
        assert_eq!(addrs.http.port(), 4318);
    }

    #[test]
    fn parses_every_key() {
        let cfg = parse(
            r#"
            max_request_bytes = 4096
            keep_non_genai = false
            grpc.listen = "0.0.0.0:14317"
            http.listen = "[::1]:0"
            auth.tokens = [{ token = "0123456789abcdef0123", tenant = "acme" }]
            tls.cert_file = "a.pem"
            tls.key_file = "k.pem"
            tls.client_ca_file = "ca.pem"
            "#,
        );
        cfg.validate().expect("valid");
        assert!(cfg.auth.is_enabled());
        assert!(cfg.tls.is_enabled());
        assert_eq!(cfg.auth.tokens[0].tenant, "acme");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<ReceiverConfig>("grpc.port = 1").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(toml::from_str::<ReceiverConfig>("collector_id = \"x\"").is_err());
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = base();
        c.http.listen = "localhost".to_owned();
        assert_eq!(key_of(&c), "receiver.http.listen");

        let mut c = base();
        c.grpc.listen = "127.0.0.1:5000".to_owned();
        c.http.listen = "127.0.0.1:5000".to_owned();
        assert_eq!(key_of(&c), "receiver.http.listen");

        let mut c = base();
        c.max_request_bytes = 0;
        assert_eq!(key_of(&c), "receiver.max_request_bytes");

        let c = parse("auth.enabled = true");
        assert_eq!(key_of(&c), "receiver.auth.tokens");

        let c = parse(r#"auth.tokens = [{ token = "short", tenant = "a" }]"#);
        assert_eq!(key_of(&c), "receiver.auth.tokens[0].token");

        let c = parse(r#"auth.tokens = [{ token = "0123456789abcdef 12", tenant = "a" }]"#);
        assert_eq!(key_of(&c), "receiver.auth.tokens[0].token");

        let c = parse(
            r#"auth.tokens = [{ token = "0123456789abcdef", tenant = "a" }, { token = "0123456789abcdef", tenant = "b" }]"#,
        );
        assert_eq!(key_of(&c), "receiver.auth.tokens[1].token");

        let c = parse(r#"auth.tokens = [{ token = "0123456789abcdef", tenant = "../x" }]"#);
        assert_eq!(key_of(&c), "receiver.auth.tokens[0].tenant");

        let c = parse(r#"tls.cert_file = "a.pem""#);
        assert_eq!(key_of(&c), "receiver.tls.key_file");

        let c = parse(r#"tls.client_ca_file = "ca.pem""#);
        assert_eq!(key_of(&c), "receiver.tls.client_ca_file");

        let c = parse("keep_non_genai = true");
        assert_eq!(key_of(&c), "receiver.keep_non_genai");

        let mut c = base();
        c.collector_id.clear();
        assert_eq!(key_of(&c), "receiver.collector_id");
    }

    #[test]
    fn auth_can_be_switched_off_with_tokens_listed() {
        let c = parse(
            r#"auth = { enabled = false, tokens = [{ token = "0123456789abcdef", tenant = "a" }] }"#,
        );
        c.validate().expect("valid");
        assert!(!c.auth.is_enabled());
    }

    #[test]
    fn debug_redacts_tokens() {
        let c = parse(r#"auth.tokens = [{ token = "0123456789abcdefSECRET", tenant = "a" }]"#);
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
