//! Bearer-token authentication: each token fixes the tenant of what is sent with it.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::AuthConfig;

/// A bearer token from the config. Its `Debug` output never shows the secret.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Why a request was not authenticated; the message tells the client what to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    NotBearer,
    Invalid,
}

impl AuthFailure {
    pub(crate) fn message(self, header: &str) -> String {
        match self {
            AuthFailure::Missing => {
                format!("missing credentials: send `{header}: Bearer <token>`")
            }
            AuthFailure::NotBearer => {
                format!("unsupported credentials: `{header}` must be `Bearer <token>`")
            }
            AuthFailure::Invalid => "invalid bearer token".to_owned(),
        }
    }
}

/// Checks `Authorization` values against the configured tokens in constant time.
#[derive(Clone)]
pub(crate) struct Authenticator {
    enabled: bool,
    /// SHA-256 of each token (equal lengths, so the comparison reveals nothing about length).
    tokens: Arc<[([u8; 32], Arc<str>)]>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Authenticator {
    pub(crate) fn new(cfg: &AuthConfig) -> Self {
        Self {
            enabled: cfg.is_enabled(),
            tokens: cfg
                .tokens
                .iter()
                .map(|t| {
                    (
                        digest(t.token.expose().as_bytes()),
                        t.tenant.as_str().into(),
                    )
                })
                .collect(),
        }
    }

    /// The authenticated tenant (`None` when authentication is off).
    pub(crate) fn authenticate(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Arc<str>>, AuthFailure> {
        if !self.enabled {
            return Ok(None);
        }
        let value = authorization.ok_or(AuthFailure::Missing)?;
        let value = trim_ascii(value);
        let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
            Some(i) => (&value[..i], &value[i + 1..]),
            None => (value, &[][..]),
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Err(AuthFailure::NotBearer);
        }
        let presented = digest(trim_ascii(rest));
        let mut matched = u32::MAX;
        for (i, (known, _)) in self.tokens.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            matched.conditional_assign(&index, known.ct_eq(&presented));
        }
        self.tokens
            .get(matched as usize)
            .map(|(_, tenant)| Some(tenant.clone()))
            .ok_or(AuthFailure::Invalid)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn trim_ascii(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    fn auth() -> Authenticator {
        Authenticator::new(&AuthConfig {
            enabled: None,
            tokens: vec![
                TokenConfig {
                    token: BearerToken::new("token-for-acme-0001"),
                    tenant: "acme".to_owned(),
                },
                TokenConfig {
                    token: BearerToken::new("token-for-beta-0002"),
                    tenant: "beta".to_owned(),
                },
            ],
        })
    }

    #[test]
    fn maps_tokens_to_tenants() {
        let a = auth();
        let t = a
            .authenticate(Some(b"Bearer token-for-beta-0002"))
            .expect("ok");
        assert_eq!(t.as_deref(), Some("beta"));
        let t = a
            .authenticate(Some(b"bearer  token-for-acme-0001 "))
            .expect("ok");
        assert_eq!(t.as_deref(), Some("acme"));
    }

    #[test]
    fn refuses_missing_wrong_and_other_schemes() {
        let a = auth();
        assert_eq!(a.authenticate(None), Err(AuthFailure::Missing));
        assert_eq!(
            a.authenticate(Some(b"Bearer token-for-acme-0003")),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(a.authenticate(Some(b"Bearer ")), Err(AuthFailure::Invalid));
        assert_eq!(
            a.authenticate(Some(b"Basic dXNlcjpwYXNz")),
            Err(AuthFailure::NotBearer)
        );
    }

    #[test]
    fn off_means_no_tenant() {
        let a = Authenticator::new(&AuthConfig::default());
        assert_eq!(a.authenticate(None), Ok(None));
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(
            format!("{:?}", BearerToken::new("s3cret-s3cret-s3cret")),
            "BearerToken(<redacted>)"
        );
        assert!(!format!("{:?}", auth()).contains("token-for"));
    }
}
