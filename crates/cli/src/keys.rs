//! The content hash key: from the environment, a file, or generated on first use.
//!
//! Order: `GENAI_AUDIT_HASH_KEY` (hex) if set; else the key file (default
//! `<data dir>/keys/hash.key`), created with 32 random bytes and mode 0600 when absent. The key
//! never appears in logs; only its id does.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use genai_audit_core::HashKey;

/// Environment variable holding the hash key as hex.
pub const HASH_KEY_ENV: &str = "GENAI_AUDIT_HASH_KEY";

/// Loads the hash key, generating and saving one at `path` if there is none.
pub fn load_or_create(path: &Path) -> Result<HashKey> {
    if let Ok(hex) = std::env::var(HASH_KEY_ENV) {
        return HashKey::from_hex(&hex).with_context(|| format!("reading {HASH_KEY_ENV}"));
    }
    match fs::read_to_string(path) {
        Ok(text) => {
            check_permissions(path)?;
            let key = HashKey::from_hex(&text)
                .with_context(|| format!("reading the hash key file {}", path.display()))?;
            tracing::debug!(path = %path.display(), key_id = key.id(), "loaded hash key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(e).with_context(|| format!("reading the hash key file {}", path.display())),
    }
}

fn create(path: &Path) -> Result<HashKey> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let key = HashKey::from_hex(&hex)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts
        .open(path)
        .with_context(|| format!("creating the hash key file {}", path.display()))?;
    file.write_all(hex.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    tracing::warn!(
        path = %path.display(),
        key_id = key.id(),
        "generated a new content hash key; back it up: without it, audit_hash() cannot prove what was sent"
    );
    Ok(key)
}

fn check_permissions(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "the hash key file {} is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_0600_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/hash.key");
        let first = load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.id(), second.id());
        assert_eq!(first.hash("x"), second.hash("x"));
    }

    #[test]
    fn refuses_a_world_readable_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hash.key");
        fs::write(&path, "ab".repeat(32)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_or_create(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
