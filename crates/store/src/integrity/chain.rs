//! Reading a collector's checkpoints and checking their signatures, links and trees.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};

use super::checkpoint::{CHECKPOINT_DIR, SignedCheckpoint, parse_checkpoint_key};
use super::key::PublicKey;
use super::leaf::{FileLeaf, Leaf};
use super::merkle::{Frontier, Hash};
use super::verify::{ChainSummary, Finding, FindingKind};
use crate::error::{Error, Result};
use crate::location::StoreLocation;

/// The checkpoints of one collector, read and checked.
#[derive(Debug, Default)]
pub(super) struct Chain {
    /// Leaf hashes of the whole tree, as long as no checkpoint is missing or unreadable.
    pub(super) leaf_hashes: Vec<Hash>,
    pub(super) complete: bool,
    /// Add leaves by key: (leaf, index in the tree, checkpoint key, checkpoint valid).
    pub(super) adds: HashMap<String, (FileLeaf, u64, String, bool)>,
    /// Valid checkpoints by seq: (tree size, root, key).
    pub(super) heads: BTreeMap<u64, (u64, Hash, String)>,
    /// Commit → (checkpoint key, valid, leaves signed for it).
    pub(super) covered: BTreeMap<u64, (String, bool, Vec<Leaf>)>,
    /// Hash of each checkpoint present, by seq.
    pub(super) hashes: BTreeMap<u64, Hash>,
    pub(super) summary: ChainSummary,
}

/// Everything read from the checkpoints.
pub(super) struct Chains {
    pub(super) chains: BTreeMap<String, Chain>,
    pub(super) findings: Vec<Finding>,
    pub(super) total: u64,
    pub(super) valid: u64,
}

/// Reads every checkpoint and checks signatures, chains and trees.
pub(super) async fn load_chains(
    loc: &StoreLocation,
    keys: &[PublicKey],
    concurrency: usize,
) -> Result<Chains> {
    let prefix = loc.path(CHECKPOINT_DIR);
    let metas: Vec<_> = loc
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::object("list", prefix.as_ref(), e))?;
    let mut findings = Vec::new();
    let mut names: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for m in &metas {
        let rel = loc.relative(&m.location);
        match parse_checkpoint_key(&rel) {
            Some((collector, seq)) => {
                names.entry(collector).or_default().insert(seq, rel);
            }
            None => findings.push(finding(
                FindingKind::Unlisted,
                &rel,
                "not a checkpoint name; nothing under _integrity/ should be anything else",
            )),
        }
    }
    let all: Vec<String> = names.values().flat_map(|m| m.values().cloned()).collect();
    let fetched: HashMap<String, bytes::Bytes> = futures::stream::iter(all)
        .map(|k| async move { loc.get_bytes(&k).await.map(|b| (k, b)) })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;

    let mut chains = BTreeMap::new();
    let (mut total, mut valid_count) = (0u64, 0u64);
    for (collector, seqs) in names {
        let mut chain = Chain {
            complete: true,
            ..Chain::default()
        };
        let mut frontier = Frontier::default();
        // The previous checkpoint present: (seq, hash, last commit, tree continuous up to it).
        let mut prev: Option<(u64, Hash, u64)> = None;
        let mut continuous = true;
        let mut expect = 1u64;
        for (seq, name) in seqs {
            total += 1;
            chain.summary.checkpoints += 1;
            chain.summary.newest_seq = seq;
            if seq != expect {
                findings.push(finding(
                    FindingKind::Gap,
                    &name,
                    &format!(
                        "checkpoints {expect}..{} of {collector} are missing",
                        seq - 1
                    ),
                ));
                continuous = false;
                prev = None;
            }
            expect = seq + 1;
            let Some(bytes) = fetched.get(&name).cloned() else {
                continue;
            };
            let signed = match SignedCheckpoint::parse(bytes) {
                Ok(s) => s,
                Err(reason) => {
                    findings.push(finding(
                        FindingKind::BadSignature,
                        &name,
                        &format!("unreadable, so its signature cannot be checked: {reason}"),
                    ));
                    continuous = false;
                    prev = None;
                    continue;
                }
            };
            let hash = signed.hash();
            chain.hashes.insert(seq, hash);
            let cp = &signed.checkpoint;
            let mut valid = true;
            let mut broken_why: Vec<String> = Vec::new();
            let mut broken = |why: String, _: &mut Vec<Finding>| broken_why.push(why);
            let bad_signature = signed.verify(keys).is_none();
            if bad_signature {
                let why = if keys.iter().any(|k| k.key_id() == signed.key_id) {
                    "the signature does not match its content (edited after signing)".to_owned()
                } else {
                    format!(
                        "signed by key {}, which is not among the given public keys",
                        signed.key_id
                    )
                };
                findings.push(finding(FindingKind::BadSignature, &name, &why));
            }
            if cp.collector_id != collector || cp.seq != seq {
                broken(
                    format!(
                        "names collector {:?} seq {} but is stored as {collector} seq {seq}",
                        cp.collector_id, cp.seq
                    ),
                    &mut findings,
                );
            }
            match (prev, cp.prev) {
                (None, None) if seq == 1 => {}
                (None, Some(_)) if seq == 1 => broken(
                    "the first checkpoint names a predecessor".into(),
                    &mut findings,
                ),
                (None, _) => {} // after a gap or an unreadable one: nothing to link to
                (Some((_, h, _)), Some(p)) if p == h => {}
                (Some((ps, _, _)), _) => broken(
                    format!("does not name the hash of checkpoint {ps}: one of them was replaced"),
                    &mut findings,
                ),
            }
            let base_commit = prev.map(|(_, _, lc)| lc);
            let expected_last = cp.commits.map_or(base_commit.unwrap_or(0), |(_, b)| b);
            let range_ok = match (cp.commits, base_commit) {
                (Some((a, b)), Some(lc)) => a == lc + 1 && a <= b,
                (Some((a, b)), None) => a <= b,
                (None, _) => true,
            } && (base_commit.is_none() || cp.last_commit == expected_last);
            let leaves_ok = cp.leaves.iter().all(|l| {
                l.collector() == collector
                    && cp
                        .commits
                        .is_some_and(|(a, b)| (a..=b).contains(&l.commit()))
            });
            if !range_ok || !leaves_ok {
                broken(
                    "its commit range or leaves do not follow on from the previous checkpoint"
                        .into(),
                    &mut findings,
                );
            }
            // The tree: extend from the previous one, or pick up from this one's frontier.
            let start = frontier.size();
            if continuous {
                for l in &cp.leaves {
                    let h = l.hash();
                    frontier.push(h);
                    chain.leaf_hashes.push(h);
                }
                if frontier.size() != cp.tree_size
                    || frontier.root() != cp.root
                    || frontier.nodes() != cp.frontier.as_slice()
                {
                    broken(
                        format!(
                            "its tree head (size {}, root {}) is not the previous tree extended by its leaves (size {}, root {}): the trees are inconsistent",
                            cp.tree_size,
                            const_hex::encode(cp.root),
                            frontier.size(),
                            const_hex::encode(frontier.root())
                        ),
                        &mut findings,
                    );
                }
            } else {
                chain.complete = false;
            }
            // Resynchronise on this checkpoint's own head when it is self-consistent.
            if let Some(f) = Frontier::from_parts(cp.tree_size, cp.frontier.clone())
                .filter(|f| f.root() == cp.root)
            {
                if f != frontier {
                    chain.complete = false;
                }
                frontier = f;
            } else {
                broken(
                    "its frontier does not reproduce its root".into(),
                    &mut findings,
                );
            }
            valid &= !bad_signature && broken_why.is_empty();
            for why in broken_why {
                findings.push(finding(FindingKind::ChainBroken, &name, &why));
            }
            let first_index = if continuous {
                start
            } else {
                cp.tree_size.saturating_sub(cp.leaves.len() as u64)
            };
            let mut by_commit: BTreeMap<u64, Vec<Leaf>> = BTreeMap::new();
            if let Some((a, b)) = cp.commits
                && b.saturating_sub(a) < 10_000_000
            {
                for n in a..=b {
                    by_commit.insert(n, Vec::new());
                }
            }
            for (i, l) in cp.leaves.iter().enumerate() {
                by_commit.entry(l.commit()).or_default().push(l.clone());
                if let Leaf::Add(f) = l {
                    chain.adds.insert(
                        f.key.clone(),
                        (f.clone(), first_index + i as u64, name.clone(), valid),
                    );
                }
            }
            for (n, leaves) in by_commit {
                chain.covered.insert(n, (name.clone(), valid, leaves));
            }
            if valid {
                valid_count += 1;
                chain
                    .heads
                    .insert(seq, (cp.tree_size, cp.root, name.clone()));
            }
            chain.summary.tree_size = cp.tree_size;
            chain.summary.last_commit = chain.summary.last_commit.max(cp.last_commit);
            chain.summary.newest_created_at.clone_from(&cp.created_at);
            prev = Some((seq, hash, cp.last_commit));
            continuous = true;
        }
        chains.insert(collector, chain);
    }
    Ok(Chains {
        chains,
        findings,
        total,
        valid: valid_count,
    })
}

pub(super) fn finding(kind: FindingKind, object: &str, detail: &str) -> Finding {
    Finding {
        kind,
        object: object.to_owned(),
        detail: detail.to_owned(),
    }
}
