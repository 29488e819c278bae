//! The content hash key: from the environment, a file, or generated on first use.
//!
//! Order: `GENAI_AUDIT_HASH_KEY` (hex) if set; else the key file (default
//! `./genai-audit-keys/hash.key`), created with 32 random bytes and mode 0600 when absent
//! ([`genai_audit_store::keys::load_or_create_hash_key`], which the in-process exporter uses
//! too). The key never appears in logs; only its id does.

use std::path::Path;

use anyhow::{Context, Result};
use genai_audit_core::HashKey;

/// Environment variable holding the hash key as hex.
pub const HASH_KEY_ENV: &str = "GENAI_AUDIT_HASH_KEY";

/// Loads the hash key, generating and saving one at `path` if there is none.
pub fn load_or_create(path: &Path) -> Result<HashKey> {
    if let Ok(hex) = std::env::var(HASH_KEY_ENV) {
        return HashKey::from_hex(&hex).with_context(|| format!("reading {HASH_KEY_ENV}"));
    }
    Ok(genai_audit_store::keys::load_or_create_hash_key(path)?)
}
