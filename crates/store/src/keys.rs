//! The content hash key on local disk: loaded from a key file, or generated there on first use.
//!
//! Shared by `genai-audit` (which first looks at `GENAI_AUDIT_HASH_KEY`: this crate reads no
//! environment) and the in-process exporter, so both keep the key the same way: 32 random bytes
//! as hex in a file of mode 0600, refused when others can read it. The key never appears in logs;
//! only its id does.

use std::fs;
use std::io::Write;
use std::path::Path;

use genai_audit_core::HashKey;

use crate::error::{Error, Result};

/// Loads the hash key from `path`, generating and saving a new one there if the file is absent.
///
/// A generated key is written with `create_new` (two processes racing cannot both win) and mode
/// 0600, then fsync'ed. An existing file readable by group or others is refused
/// ([`Error::InsecureKeyFile`]).
pub fn load_or_create_hash_key(path: &Path) -> Result<HashKey> {
    match fs::read_to_string(path) {
        Ok(text) => {
            check_permissions(path)?;
            let key = HashKey::from_hex(&text).map_err(|source| Error::HashKeyFile {
                path: path.to_path_buf(),
                source,
            })?;
            tracing::debug!(path = %path.display(), key_id = key.id(), "loaded hash key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create(path) {
            // Another process created it between our read and our create: use theirs.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                load_or_create_hash_key(path)
            }
            other => other,
        },
        Err(source) => Err(io(path, source)),
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create(path: &Path) -> Result<HashKey> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| Error::InvalidArgument(format!("no system randomness for a hash key: {e}")))?;
    let hex = const_hex::encode(secret);
    let key = HashKey::from_hex(&hex)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| io(path, e))?;
    file.write_all(hex.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| io(path, e))?;
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
        let mode = fs::metadata(path)
            .map_err(|e| io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::InsecureKeyFile {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn generates_once_with_0600_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/hash.key");
        let first = load_or_create_hash_key(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let second = load_or_create_hash_key(&path).unwrap();
        assert_eq!(first.id(), second.id());
        assert_eq!(first.hash("x"), second.hash("x"));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_world_readable_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hash.key");
        fs::write(&path, "ab".repeat(32)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_hash_key(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_that_is_not_hex_names_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hash.key");
        fs::write(&path, "not a key").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create_hash_key(&path).unwrap_err().to_string();
        assert!(err.contains("hash.key"), "{err}");
    }
}
