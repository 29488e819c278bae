//! Leaves of the integrity log: one per file a commit adds, one per file it removes.
//!
//! [`leaves_of`] is the single definition of which leaves a commit yields, and
//! [`Leaf::canonical`] the single definition of their bytes (see `docs/integrity.md`):
//!
//! ```text
//! leaf      = tag(1 byte) ‖ version(1 byte = 1) ‖ field*
//! field     = length(u32 big-endian) ‖ bytes
//! integers  = 8 bytes big-endian (u64; i64 as two's complement), length-prefixed like any field
//! strings   = UTF-8; an absent reason is the empty string
//!
//! tag 0x01 file added:   collector, commit, kind, key, sha256 (64 lowercase hex chars), size,
//!                        rows, tenant, dt, min_start_time_us, max_start_time_us,
//!                        schema_fingerprint
//! tag 0x02 file removed: collector, commit, kind, reason, key
//! ```
//!
//! The hash of a leaf is `SHA-256(0x00 ‖ canonical bytes)` (RFC 6962).

use serde::{Deserialize, Serialize};

use super::merkle::{Hash, leaf_hash};
use crate::manifest::Commit;

/// Version byte of the leaf encoding.
pub const LEAF_VERSION: u8 = 1;
const TAG_ADDED: u8 = 0x01;
const TAG_REMOVED: u8 = 0x02;

/// One leaf: a file that became part of the audit log, or one that left it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Leaf {
    /// A commit added a Parquet file.
    Add(FileLeaf),
    /// A commit removed a file (compaction, retention, erasure).
    Remove(RemovalLeaf),
}

/// A committed Parquet file, as its commit describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLeaf {
    /// Collector (writer) that committed it.
    pub collector: String,
    /// Commit number in that collector's manifests.
    pub commit: u64,
    /// Commit kind (`flush`, `import`, `compaction`, …).
    pub kind: String,
    /// Object key relative to the store root.
    pub key: String,
    /// Lowercase hex SHA-256 of the file bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// Tenant partition.
    pub tenant: String,
    /// Date partition (`YYYY-MM-DD`).
    pub dt: String,
    /// Smallest `start_time`, µs since the epoch.
    pub min_start_time_us: i64,
    /// Largest `start_time`, µs since the epoch.
    pub max_start_time_us: i64,
    /// Fingerprint of the schema that wrote it.
    pub schema_fingerprint: String,
}

/// A file a commit removed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovalLeaf {
    /// Collector that made the removing commit.
    pub collector: String,
    /// Commit number of the removal.
    pub commit: u64,
    /// Commit kind (`compaction`, `retention`, `erasure`, …).
    pub kind: String,
    /// The policy, request or run behind the removal (the commit's `reason`; empty if none).
    #[serde(default)]
    pub reason: String,
    /// Key of the removed file.
    pub key: String,
}

impl Leaf {
    /// The canonical bytes (see the module docs).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        match self {
            Leaf::Add(f) => {
                out.extend([TAG_ADDED, LEAF_VERSION]);
                field(&mut out, f.collector.as_bytes());
                field(&mut out, &f.commit.to_be_bytes());
                field(&mut out, f.kind.as_bytes());
                field(&mut out, f.key.as_bytes());
                field(&mut out, f.sha256.as_bytes());
                field(&mut out, &f.size.to_be_bytes());
                field(&mut out, &f.rows.to_be_bytes());
                field(&mut out, f.tenant.as_bytes());
                field(&mut out, f.dt.as_bytes());
                field(&mut out, &f.min_start_time_us.to_be_bytes());
                field(&mut out, &f.max_start_time_us.to_be_bytes());
                field(&mut out, f.schema_fingerprint.as_bytes());
            }
            Leaf::Remove(r) => {
                out.extend([TAG_REMOVED, LEAF_VERSION]);
                field(&mut out, r.collector.as_bytes());
                field(&mut out, &r.commit.to_be_bytes());
                field(&mut out, r.kind.as_bytes());
                field(&mut out, r.reason.as_bytes());
                field(&mut out, r.key.as_bytes());
            }
        }
        out
    }

    /// `SHA-256(0x00 ‖ canonical bytes)`.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.canonical())
    }

    /// The collector whose commit this leaf comes from.
    pub fn collector(&self) -> &str {
        match self {
            Leaf::Add(f) => &f.collector,
            Leaf::Remove(r) => &r.collector,
        }
    }

    /// The commit number this leaf comes from.
    pub fn commit(&self) -> u64 {
        match self {
            Leaf::Add(f) => f.commit,
            Leaf::Remove(r) => r.commit,
        }
    }

    /// The file key the leaf is about.
    pub fn key(&self) -> &str {
        match self {
            Leaf::Add(f) => &f.key,
            Leaf::Remove(r) => &r.key,
        }
    }
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys, ids and reasons are far below 4 GiB; a longer one would be a bug upstream, and
    // truncating the length would make the encoding ambiguous, so saturate visibly instead.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend(len.to_be_bytes());
    out.extend(bytes);
}

/// The leaves of one commit, in order: its added files in the order listed, then its removals
/// in the order listed. The writer id of an added file is the committing collector.
pub fn leaves_of(commit: &Commit) -> Vec<Leaf> {
    let added = commit.added.iter().map(|f| {
        Leaf::Add(FileLeaf {
            collector: commit.collector_id.clone(),
            commit: commit.commit,
            kind: commit.kind.clone(),
            key: f.key.clone(),
            sha256: f.sha256.to_ascii_lowercase(),
            size: f.size,
            rows: f.rows,
            tenant: f.tenant.clone(),
            dt: f.dt.clone(),
            min_start_time_us: f.min_start_time_us,
            max_start_time_us: f.max_start_time_us,
            schema_fingerprint: f.schema_fingerprint.clone(),
        })
    });
    let removed = commit.removed.iter().map(|key| {
        Leaf::Remove(RemovalLeaf {
            collector: commit.collector_id.clone(),
            commit: commit.commit,
            kind: commit.kind.clone(),
            reason: commit.reason.clone().unwrap_or_default(),
            key: key.clone(),
        })
    });
    added.chain(removed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{FileEntry, MANIFEST_VERSION};

    fn commit() -> Commit {
        Commit {
            version: MANIFEST_VERSION,
            collector_id: "c1".into(),
            commit: 7,
            kind: "compaction".into(),
            wal_first: None,
            wal_last: None,
            added: vec![FileEntry {
                key: "audit_log/tenant=t/dt=2025-01-01/x.parquet".into(),
                size: 10,
                rows: 2,
                sha256: "AB".repeat(32),
                tenant: "t".into(),
                dt: "2025-01-01".into(),
                min_start_time_us: -1,
                max_start_time_us: 5,
                schema_fingerprint: "fp".into(),
            }],
            removed: vec!["audit_log/old.parquet".into()],
            reason: Some("run 3".into()),
            created_at: String::new(),
        }
    }

    #[test]
    fn encoding_is_fixed_and_unambiguous() {
        let leaves = leaves_of(&commit());
        assert_eq!(leaves.len(), 2);
        let removal = &leaves[1];
        let mut want = vec![0x02, 0x01];
        for f in [&b"c1"[..], &7u64.to_be_bytes(), b"compaction", b"run 3"] {
            want.extend((f.len() as u32).to_be_bytes());
            want.extend(f);
        }
        want.extend(21u32.to_be_bytes());
        want.extend(b"audit_log/old.parquet");
        assert_eq!(removal.canonical(), want);
        // Moving a byte from one field to the next changes the bytes.
        let mut a = leaves[1].clone();
        let mut b = leaves[1].clone();
        if let (Leaf::Remove(a), Leaf::Remove(b)) = (&mut a, &mut b) {
            a.kind = "ab".into();
            a.reason = "c".into();
            b.kind = "a".into();
            b.reason = "bc".into();
        }
        assert_ne!(a.canonical(), b.canonical());
        // Hex is normalised to lowercase, and the leaf round-trips through its JSON line.
        let Leaf::Add(f) = &leaves[0] else { panic!() };
        assert_eq!(f.sha256, "ab".repeat(32));
        let json = serde_json::to_string(&leaves[0]).unwrap();
        assert_eq!(serde_json::from_str::<Leaf>(&json).unwrap(), leaves[0]);
    }
}
