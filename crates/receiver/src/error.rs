//! Errors of building and binding a receiver. Request-level failures are not errors of this
//! type: they become OTLP answers (see the crate docs).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Result of receiver setup.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong setting up a receiver; each message names the config key to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid.
    #[error("{key}: {message}")]
    Config {
        /// Full key, such as `receiver.http.listen`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A listener could not be bound.
    #[error(
        "{key}: cannot listen on {addr} (is another process using the port, or is the address not local?)"
    )]
    Bind {
        /// Config key of the address.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A TLS file could not be read.
    #[error("{key}: cannot read {}", path.display())]
    TlsRead {
        /// Config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A TLS file was read but is not usable.
    #[error("{key}: {}: {message}", path.display())]
    TlsInvalid {
        /// Config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}
