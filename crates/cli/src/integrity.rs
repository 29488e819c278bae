//! The integrity signing key for commands that commit (and so publish checkpoints), and the
//! publishing step they share.
//!
//! Order: `GENAI_AUDIT_INTEGRITY_KEY` (the 32-byte seed as hex) if set; else the key file
//! (default `./genai-audit-keys/integrity.key`, deliberately outside the store), created with
//! mode 0600 when absent, its public key written beside it as `<file>.pub` for auditors.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use genai_audit_store::StoreLocation;
use genai_audit_store::integrity::{IntegrityKey, PublishOptions, publish_checkpoint_with};

/// Environment variable holding the integrity signing key as hex.
pub const INTEGRITY_KEY_ENV: &str = "GENAI_AUDIT_INTEGRITY_KEY";

/// Where the integrity key is kept unless told otherwise.
pub const DEFAULT_INTEGRITY_KEY_FILE: &str = "genai-audit-keys/integrity.key";

/// Options shared by commands that sign integrity checkpoints (`import`, `compact`, and the
/// maintenance commands that remove files).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IntegrityKeyArgs {
    /// File holding the Ed25519 key that signs integrity checkpoints (hex); created with mode
    /// 0600 if absent, with its public key written beside it as FILE.pub for auditors. Default:
    /// `./genai-audit-keys/integrity.key`. `GENAI_AUDIT_INTEGRITY_KEY` (hex) takes precedence.
    #[arg(long, value_name = "FILE")]
    pub integrity_key_file: Option<PathBuf>,
}

impl IntegrityKeyArgs {
    /// The key file: as given, else the default.
    pub fn path(&self) -> PathBuf {
        self.integrity_key_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_INTEGRITY_KEY_FILE))
    }

    /// The signing key (environment, file, or newly generated).
    pub fn load(&self) -> Result<IntegrityKey> {
        load_key(&self.path())
    }
}

/// The signing key: `GENAI_AUDIT_INTEGRITY_KEY` if set, else the file at `path` (generated
/// there if absent).
pub(crate) fn load_key(path: &Path) -> Result<IntegrityKey> {
    if let Ok(hex) = std::env::var(INTEGRITY_KEY_ENV) {
        return IntegrityKey::from_hex(&hex)
            .with_context(|| format!("reading {INTEGRITY_KEY_ENV}"));
    }
    let key = IntegrityKey::load_or_create(path)
        .with_context(|| format!("loading the integrity key {}", path.display()))?;
    tracing::debug!(path = %path.display(), key_id = key.public_key().key_id(), "loaded integrity key");
    Ok(key)
}

/// After a one-shot command committed: the checkpoint covering its commits (nothing when it
/// committed nothing new).
pub(crate) async fn publish_after_commit(
    loc: &StoreLocation,
    collector_id: &str,
    key: &IntegrityKey,
    reason: &str,
) -> Result<()> {
    let opts = PublishOptions {
        reason: reason.to_owned(),
        skip_if_empty: true,
    };
    publish_checkpoint_with(loc, collector_id, key, &opts)
        .await
        .with_context(|| {
            format!(
                "the commits are in, but the integrity checkpoint of {collector_id} could not be published; run the command again to publish it"
            )
        })?;
    Ok(())
}
