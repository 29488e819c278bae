//! Tamper evidence: a signed, append-only Merkle log of every file the audit log gains or
//! loses, and its verification.
//!
//! Every manifest commit yields [`Leaf`]s ([`leaves_of`]): one per file it adds (key, SHA-256,
//! size, rows, time range, tenant, schema fingerprint, writer) and one per file it removes
//! (which, and by which commit kind and reason: compaction, retention, erasure). Each collector
//! keeps its own chain of [`Checkpoint`]s under `_integrity/<collector>/`: the RFC 6962 tree
//! head over all its leaves so far, the hash of the previous checkpoint, the new leaves, signed
//! with Ed25519 ([`IntegrityKey`]). [`publish_checkpoint`] appends one; [`verify::verify`]
//! checks a whole store offline against the public keys. `docs/integrity.md` has the formats
//! and the threat model.
//!
//! ```no_run
//! # async fn f(loc: genai_audit_store::StoreLocation) -> genai_audit_store::Result<()> {
//! use genai_audit_store::integrity::{IntegrityKey, PublishOptions, publish_checkpoint_with};
//! let key = IntegrityKey::load_or_create("genai-audit-keys/integrity.key".as_ref())?;
//! // … after a commit by collector "retention":
//! let opts = PublishOptions { reason: "retention default 400d".into(), skip_if_empty: true };
//! publish_checkpoint_with(&loc, "retention", &key, &opts).await?;
//! # Ok(()) }
//! ```

mod chain;
mod checkpoint;
mod key;
mod leaf;
pub mod merkle;
mod publish;
pub mod verify;

pub use checkpoint::{
    CHECKPOINT_DIR, Checkpoint, SignedCheckpoint, checkpoint_key, parse_checkpoint_key,
};
pub use key::{IntegrityKey, PublicKey, public_key_path};
pub use leaf::{FileLeaf, LEAF_VERSION, Leaf, RemovalLeaf, leaves_of};
pub use publish::{PublishOptions, latest_checkpoint, publish_checkpoint, publish_checkpoint_with};
pub use verify::{
    Finding, FindingKind, InclusionProof, NoProgress, Progress, VerifyOptions, VerifyReport,
    prove_file, verify,
};
