//! rustls server configuration (ring provider) from the `receiver.tls` files.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::config::TlsConfig;
use crate::error::{Error, Result};

/// The server TLS settings, or `None` when TLS is off. Reads the files named in `cfg`.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<Option<Arc<rustls::ServerConfig>>> {
    let (Some(cert_file), Some(key_file)) = (&cfg.cert_file, &cfg.key_file) else {
        return Ok(None);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs("receiver.tls.cert_file", cert_file)?;
    let key_pem = read("receiver.tls.key_file", key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| Error::TlsInvalid {
        key: "receiver.tls.key_file",
        path: key_file.clone(),
        message: format!(
            "no usable private key ({e}): expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block"
        ),
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsInvalid {
            key: "receiver.tls.cert_file",
            path: cert_file.clone(),
            message: format!("no TLS version available: {e}"),
        })?;
    let builder = match &cfg.client_ca_file {
        Some(ca_file) => builder.with_client_cert_verifier(client_verifier(ca_file, provider)?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| Error::TlsInvalid {
            key: "receiver.tls.key_file",
            path: key_file.clone(),
            message: format!("cannot be used with receiver.tls.cert_file: {e}"),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Requires client certificates signed by one of the CAs in `ca_file`.
fn client_verifier(
    ca_file: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let key = "receiver.tls.client_ca_file";
    let invalid = |message: String| Error::TlsInvalid {
        key,
        path: ca_file.to_owned(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in read_certs(key, ca_file)? {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("not a usable CA certificate: {e}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid(format!("cannot verify clients with it: {e}")))
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::TlsRead {
        key,
        path: path.to_owned(),
        source,
    })
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(key, path)?;
    let invalid = |message: String| Error::TlsInvalid {
        key,
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(
            "no certificate found: expected PEM CERTIFICATE blocks".to_owned(),
        ));
    }
    Ok(certs)
}
