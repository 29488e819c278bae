//! Keyed hashing of prompt and response text.
//!
//! Hashes are HMAC-SHA-256 under a per-deployment secret key, never plain SHA-256: a short prompt
//! ("yes", a card number) hashed without a key can be reversed by trying every candidate. With the
//! key, only someone holding it can test whether a given text was sent (`audit_hash('…')` in the
//! query engine). Each hash is stored with the key's id so keys can be rotated.
//!
//! The key is supplied by the caller (the binary reads it from config, the environment or a
//! generated 0600 file); this module does no I/O.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Minimum key length in bytes (HMAC-SHA-256 keys shorter than the output weaken it).
pub const MIN_KEY_LEN: usize = 32;

/// A secret hash key with its public id. `Debug` never prints the key.
#[derive(Clone)]
pub struct HashKey {
    id: String,
    mac: HmacSha256,
}

impl HashKey {
    /// Builds a key from its secret bytes (at least [`MIN_KEY_LEN`]).
    ///
    /// The id is the first 16 hex characters of SHA-256("genai-audit/hash-key-id/v1" ‖ key): it
    /// names the key without revealing it.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_KEY_LEN {
            return Err(Error::HashKey(format!(
                "the key has {} bytes; at least {MIN_KEY_LEN} are required",
                secret.len()
            )));
        }
        let mut h = Sha256::new();
        h.update(b"genai-audit/hash-key-id/v1");
        h.update(secret);
        let id = const_hex::encode(&h.finalize()[..8]);
        let mac = HmacSha256::new_from_slice(secret).map_err(|e| Error::HashKey(e.to_string()))?;
        Ok(Self { id, mac })
    }

    /// Parses a key written as hex (64+ hex characters), as stored in key files and env vars.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = const_hex::decode(text.trim())
            .map_err(|e| Error::HashKey(format!("the key is not valid hex: {e}")))?;
        Self::new(&bytes)
    }

    /// Public id of the key (stored in `hash_key_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA-256 of `text` under this key, lowercase hex.
    pub fn hash(&self, text: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(text.as_bytes());
        const_hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_an_independent_implementation() {
        // python3: hmac.new(b'k' * 32, b'hello', hashlib.sha256).hexdigest()
        let key = HashKey::new(&[b'k'; 32]).unwrap();
        assert_eq!(
            key.hash("hello"),
            "b77dedb81d7deb352f617552af07a682c4267366ef53870025bc48b701c8a76d"
        );
        // python3: hashlib.sha256(b'genai-audit/hash-key-id/v1' + b'k' * 32).hexdigest()[:16]
        assert_eq!(key.id(), "74efbb5668edd916");
        assert_ne!(key.hash("hello"), key.hash("hello "));
    }

    #[test]
    fn short_keys_are_refused_and_debug_redacts() {
        assert!(HashKey::new(b"short").is_err());
        let key = HashKey::from_hex(&"ab".repeat(32)).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("abab"));
        assert_eq!(key.id().len(), 16);
    }
}
