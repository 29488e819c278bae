//! `verify`: checks a store against its signed checkpoints, offline.
//!
//! What is checked, in order: every checkpoint's signature (strict Ed25519, against the given
//! public keys); each chain (sequence numbers without gaps, each checkpoint naming the hash of
//! its predecessor, commit ranges that follow on); the tree (every checkpoint's root and
//! frontier recomputed from the leaves of all checkpoints before it, which is the consistency of
//! successive tree heads); every covered manifest commit against the leaves signed for it; every
//! listed file's SHA-256; files listed but absent, present but unlisted; commits made after the
//! newest checkpoint (pending). An auditor's earlier copy of a checkpoint (an anchor) also
//! detects a chain rolled back or replaced wholesale.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

use super::chain::{finding, load_chains};
use super::checkpoint::{SignedCheckpoint, checkpoint_key};
use super::key::PublicKey;
use super::leaf::{FileLeaf, Leaf, leaves_of};
use super::merkle::{self, Hash};
use crate::error::{Error, Result};
use crate::layout::{AUDIT_LOG_DIR, MANIFEST_DIR, manifest_key, parse_partition};
use crate::location::StoreLocation;
use crate::manifest::Commit;

/// What to verify and against which keys.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Keys a checkpoint may be signed with (several across a key rotation).
    pub public_keys: Vec<PublicKey>,
    /// Only files of days from this one (`dt`, inclusive). Checkpoints are always all checked.
    pub from: Option<NaiveDate>,
    /// Only files of days up to this one (inclusive).
    pub to: Option<NaiveDate>,
    /// Commits not yet covered by a checkpoint are problems, not warnings.
    pub strict: bool,
    /// Files hashed at once.
    pub concurrency: usize,
    /// Checkpoints the auditor kept from an earlier verification: the store must still hold
    /// each of them, unchanged (detects a chain rolled back or replaced).
    pub anchors: Vec<SignedCheckpoint>,
}

impl VerifyOptions {
    /// Everything, against `public_keys`.
    pub fn new(public_keys: Vec<PublicKey>) -> Self {
        Self {
            public_keys,
            from: None,
            to: None,
            strict: false,
            concurrency: 8,
            anchors: Vec::new(),
        }
    }

    fn in_range(&self, dt: Option<&str>) -> bool {
        let Some(day) = dt.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) else {
            return true;
        };
        self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|t| day <= t)
    }
}

/// The kind of a finding, named as `verify` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// A checkpoint's signature does not verify with any given key.
    BadSignature,
    /// Checkpoints are missing from a chain.
    Gap,
    /// A chain does not link up: wrong predecessor hash, inconsistent tree, rolled back.
    ChainBroken,
    /// An object's bytes differ from what was signed (a file or a manifest).
    Modified,
    /// An object that was signed for is not in the store.
    Missing,
    /// A Parquet file in the audit log that no commit lists.
    Unlisted,
    /// A commit not yet covered by a checkpoint.
    Pending,
    /// A removed file is still in the store (a failed delete; queries do not see it).
    RemovedButPresent,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::BadSignature => "BAD SIGNATURE",
            FindingKind::Gap => "GAP",
            FindingKind::ChainBroken => "CHAIN BROKEN",
            FindingKind::Modified => "MODIFIED",
            FindingKind::Missing => "MISSING",
            FindingKind::Unlisted => "UNLISTED",
            FindingKind::Pending => "PENDING",
            FindingKind::RemovedButPresent => "REMOVED BUT PRESENT",
        })
    }
}

/// One finding: a kind, the object it is about, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The object key (relative to the store root).
    pub object: String,
    /// Details.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.object, self.detail)
    }
}

/// One collector's chain, as found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainSummary {
    /// Checkpoints in the store.
    pub checkpoints: u64,
    /// Newest sequence number.
    pub newest_seq: u64,
    /// Its tree size.
    pub tree_size: u64,
    /// Highest commit it covers.
    pub last_commit: u64,
    /// When the newest was made.
    pub newest_created_at: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Problems: any one makes the store fail verification.
    pub problems: Vec<Finding>,
    /// Warnings: pending commits (unless strict), removed files still present.
    pub warnings: Vec<Finding>,
    /// Checkpoints found.
    pub checkpoints_total: u64,
    /// Checkpoints that verified (signature, chain, tree).
    pub checkpoints_valid: u64,
    /// Files in range that checkpoints list (or should).
    pub files_total: u64,
    /// Of those, files present with the signed SHA-256.
    pub files_valid: u64,
    /// Files committed after the newest checkpoint (not counted above).
    pub files_pending: u64,
    /// Bytes read and hashed.
    pub bytes_hashed: u64,
    /// Per collector.
    pub chains: BTreeMap<String, ChainSummary>,
}

impl VerifyReport {
    /// No problems.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Progress of the file hashing, for a progress bar.
pub trait Progress: Send + Sync {
    /// Hashing starts: `files` files, `bytes` bytes in all.
    fn start(&self, _files: u64, _bytes: u64) {}
    /// `bytes` more were hashed.
    fn advance(&self, _bytes: u64) {}
    /// A file is done.
    fn file_done(&self) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Verifies the store at `loc`. Errors are for what prevents verifying (the store cannot be
/// listed or read); everything found wrong is in the report.
pub async fn verify(
    loc: &StoreLocation,
    opts: &VerifyOptions,
    progress: Arc<dyn Progress>,
) -> Result<VerifyReport> {
    let concurrency = opts.concurrency.max(1);
    let mut chains = load_chains(loc, &opts.public_keys, concurrency).await?;
    let mut report = VerifyReport {
        checkpoints_total: chains.total,
        checkpoints_valid: chains.valid,
        ..VerifyReport::default()
    };
    let mut problems = std::mem::take(&mut chains.findings);
    let mut warnings = Vec::new();

    // Anchors: the auditor's copies must still be there, unchanged.
    for anchor in &opts.anchors {
        let a = &anchor.checkpoint;
        let name = checkpoint_key(&a.collector_id, a.seq);
        if anchor.verify(&opts.public_keys).is_none() {
            problems.push(finding(
                FindingKind::BadSignature,
                &name,
                "the anchor checkpoint given with --anchor does not verify with the given public keys",
            ));
            continue;
        }
        let chain = chains.chains.get(&a.collector_id);
        match chain.and_then(|c| c.hashes.get(&a.seq)) {
            Some(h) if *h == anchor.hash() => {}
            Some(_) => problems.push(finding(
                FindingKind::ChainBroken,
                &name,
                "differs from the auditor's copy (--anchor): the chain was replaced",
            )),
            None => {
                let newest = chain.map_or(0, |c| c.summary.newest_seq);
                let detail = if newest < a.seq {
                    format!(
                        "rolled back: the auditor saw checkpoint {} (tree size {}), the store's newest is {newest}",
                        a.seq, a.tree_size
                    )
                } else {
                    "the auditor's checkpoint (--anchor) is no longer in the store".to_owned()
                };
                problems.push(finding(FindingKind::ChainBroken, &name, &detail));
            }
        }
    }

    // Manifests against what was signed for them.
    let manifests = load_manifests(loc, concurrency).await?;
    // Files of commits not yet signed: key → (manifest, SHA-256 and size it states).
    let mut pending_add: BTreeMap<String, (String, String, u64)> = BTreeMap::new();
    let mut pending_remove: BTreeSet<String> = BTreeSet::new();
    let mut unverified: BTreeSet<String> = BTreeSet::new();
    let mut pending = Vec::new();
    for (collector, commits) in &manifests {
        let chain = chains.chains.get(collector);
        let last = chain.map_or(0, |c| c.summary.last_commit);
        for (n, parsed) in commits {
            let name = manifest_key(collector, *n);
            match chain.and_then(|c| c.covered.get(n)) {
                Some((cp, valid, signed)) => {
                    let ok = match parsed {
                        Ok(c) => leaves_of(c) == *signed,
                        Err(_) => false,
                    };
                    if *valid && !ok {
                        problems.push(finding(
                            FindingKind::Modified,
                            &name,
                            &format!("differs from what {cp} signed for this commit"),
                        ));
                    }
                    if !*valid && let Ok(c) = parsed {
                        unverified.extend(c.added.iter().map(|f| f.key.clone()));
                    }
                }
                None if *n > last => {
                    let files = parsed.as_ref().map_or(0, |c| c.added.len());
                    let detail = match parsed {
                        Ok(_) => format!(
                            "committed after the newest checkpoint of {collector} ({files} files not yet signed)"
                        ),
                        Err(e) => format!("committed after the newest checkpoint, unreadable: {e}"),
                    };
                    pending.push(finding(FindingKind::Pending, &name, &detail));
                    if let Ok(c) = parsed {
                        for f in &c.added {
                            pending_add.insert(
                                f.key.clone(),
                                (name.clone(), f.sha256.to_ascii_lowercase(), f.size),
                            );
                        }
                        pending_remove.extend(c.removed.iter().cloned());
                    }
                }
                None => {
                    // Covered by a checkpoint that is missing (a gap, already reported).
                    if let Ok(c) = parsed {
                        unverified.extend(c.added.iter().map(|f| f.key.clone()));
                    }
                }
            }
        }
    }
    // Commits signed for but whose manifest is gone.
    for (collector, chain) in &chains.chains {
        for (n, (cp, valid, _)) in &chain.covered {
            let exists = manifests.get(collector).is_some_and(|m| m.contains_key(n));
            if *valid && !exists {
                problems.push(finding(
                    FindingKind::Missing,
                    &manifest_key(collector, *n),
                    &format!("signed in {cp}, not in the store"),
                ));
            }
        }
    }

    // Files: listed (by valid checkpoints), removed, pending, present.
    let mut listed: BTreeMap<String, (FileLeaf, String)> = BTreeMap::new();
    let mut removed: BTreeMap<String, String> = BTreeMap::new();
    for chain in chains.chains.values() {
        for (key, (leaf, _, cp, valid)) in &chain.adds {
            if *valid {
                listed.insert(key.clone(), (leaf.clone(), cp.clone()));
            } else {
                unverified.insert(key.clone());
            }
        }
        for (cp, valid, leaves) in chain.covered.values() {
            for l in leaves {
                if let (Leaf::Remove(r), true) = (l, *valid) {
                    removed.insert(r.key.clone(), cp.clone());
                }
            }
        }
    }
    let present = list_files(loc).await?;
    let mut to_hash = Vec::new();
    for (key, (leaf, cp)) in &listed {
        if removed.contains_key(key) || !opts.in_range(Some(&leaf.dt)) {
            continue;
        }
        report.files_total += 1;
        match present.get(key) {
            Some(size) if *size != leaf.size => problems.push(finding(
                FindingKind::Modified,
                key,
                &format!("{size} bytes, {cp} lists {} bytes", leaf.size),
            )),
            Some(_) => to_hash.push(Hashing {
                key: key.clone(),
                want: leaf.sha256.clone(),
                source: cp.clone(),
                size: leaf.size,
                signed: true,
            }),
            None if pending_remove.contains(key) => {
                report.files_total -= 1;
                report.files_pending += 1;
            }
            None => problems.push(finding(
                FindingKind::Missing,
                key,
                &format!("listed in {cp}, not in the store"),
            )),
        }
    }
    for key in &unverified {
        if !removed.contains_key(key) && opts.in_range(partition_dt(key).as_deref()) {
            // Not valid: the checkpoint that lists it is bad or missing (reported above).
            report.files_total += 1;
        }
    }
    for (key, (manifest, sha, size)) in &pending_add {
        if !opts.in_range(partition_dt(key).as_deref()) {
            continue;
        }
        if present.contains_key(key) {
            // Not signed yet, but its manifest states its hash: a file changed behind a
            // commit is caught even before (or without) a checkpoint.
            report.files_pending += 1;
            to_hash.push(Hashing {
                key: key.clone(),
                want: sha.clone(),
                source: format!("{manifest} (not yet signed)"),
                size: *size,
                signed: false,
            });
        } else if !pending_remove.contains(key) {
            problems.push(finding(
                FindingKind::Missing,
                key,
                &format!("committed in {manifest} (not yet signed), not in the store"),
            ));
        }
    }
    for (key, size) in &present {
        if !opts.in_range(partition_dt(key).as_deref()) {
            continue;
        }
        if let Some(cp) = removed.get(key) {
            warnings.push(finding(
                FindingKind::RemovedButPresent,
                key,
                &format!("removed by {cp} but still in the store (queries do not read it)"),
            ));
            continue;
        }
        if listed.contains_key(key) || pending_add.contains_key(key) || unverified.contains(key) {
            continue;
        }
        report.files_total += 1;
        problems.push(finding(
            FindingKind::Unlisted,
            key,
            &format!("{size} bytes that no commit or checkpoint lists"),
        ));
    }

    // Hash what is listed and present, concurrently and streaming.
    let total_bytes: u64 = to_hash.iter().map(|h| h.size).sum();
    progress.start(to_hash.len() as u64, total_bytes);
    let results: Vec<_> = futures::stream::iter(to_hash)
        .map(|h| {
            let loc = loc.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let got = hash_object(&loc, &h.key, progress.as_ref()).await;
                progress.file_done();
                (h, got)
            })
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        let (h, got) =
            r.map_err(|e| Error::InvalidArgument(format!("a hashing task failed: {e}")))?;
        match got {
            Ok((sha, bytes)) => {
                report.bytes_hashed += bytes;
                if sha == h.want {
                    report.files_valid += u64::from(h.signed);
                } else {
                    problems.push(finding(
                        FindingKind::Modified,
                        &h.key,
                        &format!("SHA-256 is {sha}, {} lists {}", h.source, h.want),
                    ));
                }
            }
            Err(Error::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }) => problems.push(finding(
                FindingKind::Missing,
                &h.key,
                &format!("listed in {}, deleted while verifying", h.source),
            )),
            Err(e) => return Err(e),
        }
    }

    if opts.strict {
        problems.extend(pending);
    } else {
        warnings.extend(pending);
    }
    problems.sort();
    warnings.sort();
    report.problems = problems;
    report.warnings = warnings;
    report.chains = chains
        .chains
        .into_iter()
        .map(|(c, ch)| (c, ch.summary))
        .collect();
    Ok(report)
}

/// A file to hash and what it must hash to.
struct Hashing {
    key: String,
    want: String,
    /// The checkpoint (or unsigned manifest) that states `want`.
    source: String,
    size: u64,
    /// Stated by a valid checkpoint (counts towards the valid files).
    signed: bool,
}

/// An inclusion proof of one file in its collector's tree, as `verify --file` prints it.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// The file.
    pub key: String,
    /// The leaf.
    pub leaf: Leaf,
    /// Its hash, `SHA-256(0x00 ‖ canonical bytes)`.
    pub leaf_hash: Hash,
    /// Its index in the tree.
    pub index: u64,
    /// The checkpoint the proof is against (the newest valid one of the chain).
    pub checkpoint: String,
    /// That checkpoint's tree size.
    pub tree_size: u64,
    /// That checkpoint's root.
    pub root: Hash,
    /// The audit path, bottom up.
    pub path: Vec<Hash>,
    /// Whether the proof verifies (it always should; checked anyway).
    pub verified: bool,
    /// SHA-256 of the file as it is now (`None` if it is gone).
    pub current_sha256: Option<String>,
}

/// The inclusion proof of file `key` in its collector's tree, against the newest valid
/// checkpoint of that chain.
pub async fn prove_file(
    loc: &StoreLocation,
    key: &str,
    public_keys: &[PublicKey],
) -> Result<InclusionProof> {
    let chains = load_chains(loc, public_keys, 8).await?;
    let not_found = |reason: String| Error::NotProvable {
        key: key.to_owned(),
        reason,
    };
    let (chain, (leaf, index, cp, valid)) = chains
        .chains
        .values()
        .find_map(|c| c.adds.get(key).map(|a| (c, a)))
        .ok_or_else(|| not_found("no checkpoint lists this file".into()))?;
    if !valid {
        return Err(not_found(format!(
            "{cp} lists it, but that checkpoint does not verify"
        )));
    }
    if !chain.complete {
        return Err(not_found(
            "its chain has missing or unreadable checkpoints; no proof can be built".into(),
        ));
    }
    let (_, (tree_size, root, checkpoint)) = chain
        .heads
        .iter()
        .next_back()
        .filter(|(_, (size, _, _))| *size > *index)
        .ok_or_else(|| not_found("no valid checkpoint covers it".into()))?;
    let size = usize::try_from(*tree_size).unwrap_or(usize::MAX);
    let leaves = chain.leaf_hashes.get(..size).unwrap_or(&chain.leaf_hashes);
    let leaf = Leaf::Add(leaf.clone());
    let leaf_hash = leaf.hash();
    let path = merkle::inclusion_proof(leaves, *index).unwrap_or_default();
    let verified = merkle::verify_inclusion(&leaf_hash, *index, *tree_size, &path, root);
    let current_sha256 = match hash_object(loc, key, &NoProgress).await {
        Ok((sha, _)) => Some(sha),
        Err(Error::ObjectStore {
            source: object_store::Error::NotFound { .. },
            ..
        }) => None,
        Err(e) => return Err(e),
    };
    Ok(InclusionProof {
        key: key.to_owned(),
        leaf,
        leaf_hash,
        index: *index,
        checkpoint: checkpoint.clone(),
        tree_size: *tree_size,
        root: *root,
        path,
        verified,
        current_sha256,
    })
}

fn partition_dt(key: &str) -> Option<String> {
    parse_partition(key).map(|(_, d)| d.format("%Y-%m-%d").to_string())
}

type Manifests = BTreeMap<String, BTreeMap<u64, std::result::Result<Commit, String>>>;

/// Every manifest commit, by collector and number (unreadable ones as their error).
async fn load_manifests(loc: &StoreLocation, concurrency: usize) -> Result<Manifests> {
    let prefix = loc.path(MANIFEST_DIR);
    let metas: Vec<_> = loc
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::object("list", prefix.as_ref(), e))?;
    let keys: Vec<(String, u64, String)> = metas
        .iter()
        .filter_map(|m| {
            let rel = loc.relative(&m.location);
            let rest = rel.strip_prefix(MANIFEST_DIR)?.strip_prefix('/')?;
            let (collector, file) = rest.split_once('/')?;
            let n = file.strip_suffix(".json")?.parse().ok()?;
            Some((collector.to_owned(), n, rel))
        })
        .collect();
    let read: Vec<(String, u64, std::result::Result<Commit, String>)> = futures::stream::iter(keys)
        .map(|(c, n, k)| async move {
            let bytes = loc.get_bytes(&k).await?;
            let parsed = serde_json::from_slice::<Commit>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|commit| {
                    if commit.collector_id == c && commit.commit == n {
                        Ok(commit)
                    } else {
                        Err("its collector or number does not match its name".to_owned())
                    }
                });
            Ok::<_, Error>((c, n, parsed))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut out: Manifests = BTreeMap::new();
    for (c, n, parsed) in read {
        out.entry(c).or_default().insert(n, parsed);
    }
    Ok(out)
}

/// Parquet objects under `audit_log/`, key → size.
async fn list_files(loc: &StoreLocation) -> Result<BTreeMap<String, u64>> {
    let prefix = loc.path(AUDIT_LOG_DIR);
    loc.store
        .list(Some(&prefix))
        .try_filter(|m| futures::future::ready(m.location.as_ref().ends_with(".parquet")))
        .map_ok(|m| (loc.relative(&m.location), m.size))
        .try_collect()
        .await
        .map_err(|e| Error::object("list", prefix.as_ref(), e))
}

/// Streams an object through SHA-256: (lowercase hex, bytes read).
async fn hash_object(
    loc: &StoreLocation,
    key: &str,
    progress: &dyn Progress,
) -> Result<(String, u64)> {
    if let Some(dir) = &loc.local_dir {
        // Local disk: plain reads in large blocks on a blocking thread; object_store's local
        // stream reads 8 KiB at a time through the blocking pool, which is several times slower.
        let path = dir.join(key);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
            use std::io::Read;
            let mut f = std::fs::File::open(&path)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut h = Sha256::new();
            let mut total = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                total += n as u64;
                let _ = tx.send(n as u64);
            }
            Ok((const_hex::encode(h.finalize()), total))
        });
        while let Some(n) = rx.recv().await {
            progress.advance(n);
        }
        let out = task
            .await
            .map_err(|e| Error::InvalidArgument(format!("a hashing task failed: {e}")))?;
        return out.map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::object(
                    "get",
                    key,
                    object_store::Error::NotFound {
                        path: key.to_owned(),
                        source: Box::new(source),
                    },
                )
            } else {
                Error::Io {
                    path: dir.join(key),
                    source,
                }
            }
        });
    }
    let path = loc.path(key);
    let fail = |e| Error::object("get", key, e);
    let mut stream = loc.store.get(&path).await.map_err(fail)?.into_stream();
    let mut h = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(fail)?;
        h.update(&chunk);
        total += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    Ok((const_hex::encode(h.finalize()), total))
}
