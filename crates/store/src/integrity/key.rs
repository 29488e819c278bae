//! The Ed25519 key that signs checkpoints, and the public key auditors verify them with.
//!
//! Files: the private key is the 32-byte seed as hex on one line, mode 0600; the public key
//! beside it (`<key file>.pub`) is the 32-byte key as hex on one line, meant to be copied to
//! auditors. The key id, written in every checkpoint, is the first 8 bytes of the SHA-256 of the
//! public key, as hex.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The signing key of one collector (or one deployment). `Debug` never shows the secret.
#[derive(Clone)]
pub struct IntegrityKey {
    signing: SigningKey,
}

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrityKey")
            .field("key_id", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

impl IntegrityKey {
    /// The key with this 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The key from its seed as 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(hex: &str) -> Result<Self> {
        let seed = decode32(hex.trim()).ok_or_else(|| {
            Error::InvalidArgument("an integrity key is 64 hex digits (a 32-byte seed)".into())
        })?;
        Ok(Self::from_seed(seed))
    }

    /// A new random key.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::InvalidArgument(format!("no system randomness: {e}")))?;
        Ok(Self::from_seed(seed))
    }

    /// Loads the key from `path`, or generates one there (mode 0600) if the file does not
    /// exist. Either way the public key is written to `<path>.pub` if it is not there yet.
    /// Refuses a key file that others can read.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let key = match fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Self::from_hex(&text).map_err(|e| key_error(path, e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                key.write_new(path)?;
                tracing::warn!(
                    path = %path.display(),
                    key_id = key.public_key().key_id(),
                    public_key = %public_key_path(path).display(),
                    "generated a new integrity signing key; give the public key to your auditors and back the private key up"
                );
                key
            }
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let pub_path = public_key_path(path);
        if !pub_path.exists() {
            write_file(&pub_path, &key.public_key().to_hex(), false)?;
        }
        Ok(key)
    }

    fn write_new(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let hex = const_hex::encode(self.signing.to_bytes());
        write_file(path, &hex, true)
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// `<key file>.pub`: where the public key of a key file is written.
pub fn public_key_path(key_file: &Path) -> PathBuf {
    let mut s = key_file.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// An Ed25519 public key that checkpoints are verified with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// The key from 64 hex digits (surrounding whitespace ignored). Refuses weak (small-order)
    /// keys, which strict verification could never accept anyway.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let bytes = decode32(hex.trim()).ok_or_else(|| {
            Error::InvalidArgument("a public key is 64 hex digits (32 bytes)".into())
        })?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| Error::InvalidArgument(format!("not an Ed25519 public key: {e}")))?;
        if key.is_weak() {
            return Err(Error::InvalidArgument(
                "a weak (small-order) Ed25519 public key".into(),
            ));
        }
        Ok(Self(key))
    }

    /// Reads a public key file (`<key file>.pub`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_hex(&text).map_err(|e| key_error(path, e.to_string()))
    }

    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        const_hex::encode(self.0.as_bytes())
    }

    /// First 8 bytes of the SHA-256 of the key, as hex: names the key in checkpoints.
    pub fn key_id(&self) -> String {
        const_hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }

    /// Strict Ed25519 verification (no small-order components, canonical `S`): a signature
    /// accepted here is accepted by every conforming verifier.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

fn decode32(hex: &str) -> Option<[u8; 32]> {
    let v = const_hex::decode(hex).ok()?;
    v.try_into().ok()
}

fn key_error(path: &Path, reason: String) -> Error {
    Error::IntegrityKey {
        path: path.to_owned(),
        reason,
    }
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = opts.open(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)
}

fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(key_error(
                path,
                format!(
                    "readable by others (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_with_a_public_key_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/integrity.key");
        let a = IntegrityKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = IntegrityKey::load_or_create(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let public = PublicKey::read(&public_key_path(&path)).unwrap();
        assert_eq!(public, a.public_key());
        let sig = a.sign(b"m");
        assert!(public.verify(b"m", &sig));
        assert!(!public.verify(b"n", &sig));
        assert!(!format!("{a:?}").contains(&const_hex::encode(a.signing.to_bytes())));
    }

    #[test]
    fn refuses_a_key_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("integrity.key");
        fs::write(&path, "11".repeat(32)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = IntegrityKey::load_or_create(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
