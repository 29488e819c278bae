//! Commit manifests: the list of files that make up the audit log.
//!
//! A Parquet object is visible to queries only once a commit that adds it is written. Each
//! collector appends its own numbered commits under `_manifest/<collector>/`, with create-only
//! puts, so collectors never coordinate and a commit is never overwritten. A commit records the
//! files it adds (key, size, rows, SHA-256, time range) and removes (compaction, retention), and
//! for flushes the WAL range it covers: on restart a collector replays only WAL entries after its
//! last committed one. That is the exactly-once rule: a WAL entry's records become visible in the
//! commit that names its range, and in no other.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{MANIFEST_DIR, manifest_key};
use crate::location::StoreLocation;

/// Version of the manifest format.
pub const MANIFEST_VERSION: u32 = 1;

/// One Parquet file of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Key relative to the store root (`audit_log/tenant=…/dt=…/….parquet`).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// Hex SHA-256 of the file bytes.
    pub sha256: String,
    /// Tenant partition.
    pub tenant: String,
    /// Date partition (`YYYY-MM-DD`).
    pub dt: String,
    /// Smallest `start_time` (µs since epoch).
    pub min_start_time_us: i64,
    /// Largest `start_time` (µs since epoch).
    pub max_start_time_us: i64,
    /// Fingerprint of the schema that wrote it.
    pub schema_fingerprint: String,
}

/// One commit of one collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Collector that made the commit.
    pub collector_id: String,
    /// Commit number, 1, 2, 3… per collector.
    pub commit: u64,
    /// Why: `flush`, `compaction`, …
    pub kind: String,
    /// First WAL entry covered (flushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_first: Option<u64>,
    /// Last WAL entry covered (flushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_last: Option<u64>,
    /// Files added.
    pub added: Vec<FileEntry>,
    /// Keys of files removed (they stay readable until deleted, but queries no longer see them).
    #[serde(default)]
    pub removed: Vec<String>,
    /// What caused a maintenance commit, for the integrity log and auditors: the retention
    /// policy, erasure request or compaction run that removed or replaced files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the commit was made (RFC 3339), informational.
    pub created_at: String,
}

/// The state of the whole store, replayed from every collector's commits.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Live files by key.
    pub files: BTreeMap<String, FileEntry>,
    /// Per collector: (last commit number, last WAL entry committed).
    pub collectors: BTreeMap<String, CollectorState>,
    /// Keys removed by some commit. File names are never reused, so a removed key stays removed
    /// whatever order commits are applied in.
    pub removed: BTreeSet<String>,
}

/// What a collector has committed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectorState {
    /// Highest commit number.
    pub last_commit: u64,
    /// Highest WAL entry covered by a flush commit.
    pub last_wal: Option<u64>,
}

impl Snapshot {
    /// Reads every commit under `_manifest/` and applies them in order (per collector, by
    /// commit number; collectors touch disjoint files).
    pub async fn load(loc: &StoreLocation) -> Result<Self> {
        let mut snap = Snapshot::default();
        for c in load_commits(loc).await? {
            snap.apply(&c);
        }
        Ok(snap)
    }

    /// Applies one commit. Order-independent across collectors: a compaction commit that
    /// removes another collector's file may be applied before or after the commit adding it.
    pub fn apply(&mut self, c: &Commit) {
        for key in &c.removed {
            self.files.remove(key);
            self.removed.insert(key.clone());
        }
        for f in &c.added {
            if !self.removed.contains(&f.key) {
                self.files.insert(f.key.clone(), f.clone());
            }
        }
        let st = self.collectors.entry(c.collector_id.clone()).or_default();
        st.last_commit = st.last_commit.max(c.commit);
        if let Some(w) = c.wal_last {
            st.last_wal = Some(st.last_wal.map_or(w, |x| x.max(w)));
        }
    }

    /// Live files of one partition.
    pub fn partition(&self, tenant: &str, dt: &str) -> Vec<&FileEntry> {
        self.files
            .values()
            .filter(|f| f.tenant == tenant && f.dt == dt)
            .collect()
    }

    /// Rows in live files.
    pub fn rows(&self) -> u64 {
        self.files.values().map(|f| f.rows).sum()
    }
}

/// Every commit of every collector, ordered by (collector id, commit number).
pub async fn load_commits(loc: &StoreLocation) -> Result<Vec<Commit>> {
    let prefix = loc.path(MANIFEST_DIR);
    let metas: Vec<_> = loc
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::object("list", prefix.as_ref(), e))?;
    let mut commits = Vec::with_capacity(metas.len());
    for meta in metas {
        if !meta.location.as_ref().ends_with(".json") {
            continue;
        }
        commits.push(read_commit_at(loc, &meta.location).await?);
    }
    commits.sort_by(|a, b| (&a.collector_id, a.commit).cmp(&(&b.collector_id, b.commit)));
    Ok(commits)
}

/// Commit `commit` of `collector_id`, or `None` if it was never written.
pub async fn read_commit(
    loc: &StoreLocation,
    collector_id: &str,
    commit: u64,
) -> Result<Option<Commit>> {
    let path = loc.path(&manifest_key(collector_id, commit));
    let bytes = match loc.store.get(&path).await {
        Ok(r) => r
            .bytes()
            .await
            .map_err(|e| Error::object("get", path.as_ref(), e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::object("get", path.as_ref(), e)),
    };
    parse_commit(&path, &bytes).map(Some)
}

async fn read_commit_at(loc: &StoreLocation, path: &object_store::path::Path) -> Result<Commit> {
    parse_commit(path, &loc.get_object(path).await?)
}

fn parse_commit(path: &object_store::path::Path, bytes: &[u8]) -> Result<Commit> {
    serde_json::from_slice(bytes).map_err(|e| Error::Manifest {
        key: path.to_string(),
        reason: e.to_string(),
    })
}

/// Writes a commit with a create-only put, for writers that may race with another process
/// using the same collector id (maintenance runs): commit numbers are claimed by whoever writes
/// first. Succeeds if the number is free, or already holds this very commit (a retry after a
/// lost response; only `created_at` may differ); fails with [`Error::CommitTaken`] if another
/// writer holds it, in which case the caller reloads the snapshot and plans again.
pub async fn create_commit(loc: &StoreLocation, c: &Commit) -> Result<()> {
    let key = loc.path(&manifest_key(&c.collector_id, c.commit));
    let body = serde_json::to_vec_pretty(c).map_err(|e| Error::Manifest {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match loc.store.put_opts(&key, PutPayload::from(body), opts).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let prior = read_commit_at(loc, &key).await?;
            let same = Commit {
                created_at: c.created_at.clone(),
                ..prior
            };
            if same == *c {
                Ok(())
            } else {
                Err(Error::CommitTaken {
                    collector_id: c.collector_id.clone(),
                    commit: c.commit,
                })
            }
        }
        Err(e) => Err(Error::object("put", key.as_ref(), e)),
    }
}

/// Writes a commit with a create-only put. Returns `Ok(false)` if that commit number already
/// exists with the same content (a retry after a lost response), an error if it differs.
pub async fn write_commit(loc: &StoreLocation, c: &Commit) -> Result<bool> {
    let key = loc.path(&manifest_key(&c.collector_id, c.commit));
    let body = serde_json::to_vec_pretty(c).map_err(|e| Error::Manifest {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match loc.store.put_opts(&key, PutPayload::from(body), opts).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = loc.get_object(&key).await?;
            let prior: Commit = serde_json::from_slice(&existing).map_err(|e| Error::Manifest {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
            if prior.added == c.added && prior.removed == c.removed && prior.wal_last == c.wal_last
            {
                Ok(false)
            } else {
                Err(Error::Manifest {
                    key: key.to_string(),
                    reason: "a different commit with this number exists: is another collector using the same id?".into(),
                })
            }
        }
        Err(e) => Err(Error::object("put", key.as_ref(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str) -> FileEntry {
        FileEntry {
            key: key.into(),
            size: 1,
            rows: 1,
            sha256: String::new(),
            tenant: "t".into(),
            dt: "2025-01-01".into(),
            min_start_time_us: 0,
            max_start_time_us: 0,
            schema_fingerprint: String::new(),
        }
    }

    fn commit(collector: &str, n: u64, added: &[&str], removed: &[&str]) -> Commit {
        Commit {
            version: MANIFEST_VERSION,
            collector_id: collector.into(),
            commit: n,
            kind: "test".into(),
            wal_first: None,
            wal_last: None,
            added: added.iter().map(|k| file(k)).collect(),
            removed: removed.iter().map(|k| (*k).to_owned()).collect(),
            reason: None,
            created_at: String::new(),
        }
    }

    #[test]
    fn removals_hold_whatever_the_order_of_application() {
        let add = commit("z-writer", 1, &["a", "b"], &[]);
        let compact = commit("a-compactor", 1, &["c"], &["a", "b"]);
        for order in [[&add, &compact], [&compact, &add]] {
            let mut s = Snapshot::default();
            for c in order {
                s.apply(c);
            }
            assert_eq!(s.files.keys().collect::<Vec<_>>(), ["c"]);
        }
    }
}
