//! Publishing checkpoints: what a collector, `import`, compaction, retention and erasure call
//! after they commit.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};

use super::checkpoint::{
    CHECKPOINT_DIR, Checkpoint, SignedCheckpoint, checkpoint_key, parse_checkpoint_key,
};
use super::key::IntegrityKey;
use super::leaf::{Leaf, leaves_of};
use super::merkle::Frontier;
use crate::error::{Error, Result};
use crate::layout::{MANIFEST_DIR, manifest_key, valid_collector_id};
use crate::location::StoreLocation;
use crate::manifest::Commit;

/// How a checkpoint is published.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Why (written into the checkpoint): `startup`, `interval`, `shutdown`, `import`,
    /// `compaction`, `retention <policy>`, `erasure <request>`, …
    pub reason: String,
    /// Publish nothing when no commit is new. Off by default: a collector publishes on schedule
    /// even when idle, so a stretch without checkpoints is evidence, not silence.
    pub skip_if_empty: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            reason: "manual".into(),
            skip_if_empty: false,
        }
    }
}

/// How many times a lost race for the next sequence number is retried.
const MAX_ATTEMPTS: u32 = 16;

/// Publishes the next checkpoint of `collector_id`'s chain, covering every commit of that
/// collector not yet covered. Equivalent to [`publish_checkpoint_with`] with the default
/// options.
pub async fn publish_checkpoint(
    loc: &StoreLocation,
    collector_id: &str,
    key: &IntegrityKey,
) -> Result<Option<SignedCheckpoint>> {
    publish_checkpoint_with(loc, collector_id, key, &PublishOptions::default()).await
}

/// Publishes the next checkpoint of `collector_id`'s chain: it covers every commit of that
/// collector after the last covered one (a contiguous run; a writer committing meanwhile is
/// covered next time), extends the tree from the previous checkpoint's frontier, and is written
/// with a create-only put. Safe to call concurrently, from one process or several: the loser of
/// a race for a sequence number re-reads the chain and tries the next one. Returns `None` when
/// `skip_if_empty` is set and no commit is new.
pub async fn publish_checkpoint_with(
    loc: &StoreLocation,
    collector_id: &str,
    key: &IntegrityKey,
    opts: &PublishOptions,
) -> Result<Option<SignedCheckpoint>> {
    if !valid_collector_id(collector_id) {
        return Err(Error::InvalidArgument(format!(
            "collector id {collector_id:?} must be 1-64 characters of A-Z a-z 0-9 . _ -"
        )));
    }
    for attempt in 1..=MAX_ATTEMPTS {
        let latest = latest_checkpoint(loc, collector_id).await?;
        let (seq, last_commit, mut frontier, prev) = match &latest {
            None => (1, 0, Frontier::default(), None),
            Some(s) => {
                let c = &s.checkpoint;
                let key_name = checkpoint_key(collector_id, c.seq);
                let frontier = Frontier::from_parts(c.tree_size, c.frontier.clone())
                    .filter(|f| f.root() == c.root)
                    .ok_or_else(|| Error::Checkpoint {
                        key: key_name.clone(),
                        reason: "its frontier does not reproduce its root: the chain cannot be extended; run `genai-audit verify`".into(),
                    })?;
                if s.verify(&[key.public_key()]).is_none() {
                    tracing::warn!(
                        checkpoint = key_name,
                        "the latest checkpoint is not signed by this key (rotated key, or tampering: run `genai-audit verify`); extending the chain anyway"
                    );
                }
                (c.seq + 1, c.last_commit, frontier, Some(s.hash()))
            }
        };
        let commits = new_commits(loc, collector_id, last_commit).await?;
        if commits.is_empty() && opts.skip_if_empty {
            return Ok(None);
        }
        let leaves: Vec<Leaf> = commits.iter().flat_map(leaves_of).collect();
        for l in &leaves {
            frontier.push(l.hash());
        }
        let records = leaves
            .iter()
            .filter_map(|l| match l {
                Leaf::Add(f) => Some((f.min_start_time_us, f.max_start_time_us)),
                Leaf::Remove(_) => None,
            })
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
        let range = commits
            .first()
            .zip(commits.last())
            .map(|(a, b)| (a.commit, b.commit));
        let checkpoint = Checkpoint {
            collector_id: collector_id.to_owned(),
            seq,
            tree_size: frontier.size(),
            root: frontier.root(),
            prev,
            commits: range,
            last_commit: range.map_or(last_commit, |(_, b)| b),
            records,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            reason: opts.reason.clone(),
            frontier: frontier.nodes().to_vec(),
            leaves,
        };
        let signed = checkpoint.sign(key);
        let name = checkpoint_key(collector_id, seq);
        let path = loc.path(&name);
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match loc
            .store
            .put_opts(&path, PutPayload::from_bytes(signed.bytes.clone()), create)
            .await
        {
            Ok(_) => {
                tracing::info!(
                    checkpoint = name,
                    tree_size = signed.checkpoint.tree_size,
                    leaves = signed.checkpoint.leaves.len(),
                    reason = opts.reason,
                    "published an integrity checkpoint"
                );
                return Ok(Some(signed));
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                tracing::debug!(
                    checkpoint = name,
                    "lost a race for this checkpoint; retrying"
                );
                // Jittered back-off, so racing publishers stop colliding.
                let mut r = [0u8; 2];
                let jitter = getrandom::fill(&mut r).map_or(7, |()| u16::from_le_bytes(r) % 20);
                let ms = u64::from(jitter + 1) * u64::from(attempt.min(5));
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            Err(e) => return Err(Error::object("put", &name, e)),
        }
    }
    Err(Error::Checkpoint {
        key: format!("{CHECKPOINT_DIR}/{collector_id}/"),
        reason: format!("another publisher took the next number {MAX_ATTEMPTS} times in a row"),
    })
}

/// The newest checkpoint of a collector, if any.
pub async fn latest_checkpoint(
    loc: &StoreLocation,
    collector_id: &str,
) -> Result<Option<SignedCheckpoint>> {
    let prefix = loc.path(&format!("{CHECKPOINT_DIR}/{collector_id}"));
    let newest = list(loc, &prefix, None)
        .await?
        .iter()
        .filter_map(|p| parse_checkpoint_key(&loc.relative(p)))
        .filter(|(c, _)| c == collector_id)
        .map(|(_, seq)| seq)
        .max();
    let Some(seq) = newest else {
        return Ok(None);
    };
    let name = checkpoint_key(collector_id, seq);
    let bytes = loc.get_bytes(&name).await?;
    SignedCheckpoint::parse(bytes)
        .map(Some)
        .map_err(|reason| Error::Checkpoint { key: name, reason })
}

/// The commits of `collector_id` after `after`, in order, as long as they are contiguous.
async fn new_commits(loc: &StoreLocation, collector_id: &str, after: u64) -> Result<Vec<Commit>> {
    let prefix = loc.path(&format!("{MANIFEST_DIR}/{collector_id}"));
    // Manifest names are zero-padded, so listing after the last covered one skips the rest.
    let offset = (after > 0).then(|| loc.path(&manifest_key(collector_id, after)));
    let mut numbers: Vec<u64> = list(loc, &prefix, offset.as_ref())
        .await?
        .iter()
        .filter_map(|p| {
            let name = p.filename()?.strip_suffix(".json")?;
            name.parse().ok()
        })
        .filter(|n| *n > after)
        .collect();
    numbers.sort_unstable();
    let mut out = Vec::new();
    for (expect, n) in (after + 1..).zip(numbers) {
        if n != expect {
            // A later commit without its predecessor: covered once the gap is filled.
            tracing::warn!(
                collector_id,
                missing = expect,
                found = n,
                "manifest commits are not contiguous; covering up to the gap"
            );
            break;
        }
        let name = manifest_key(collector_id, n);
        let bytes = loc.get_bytes(&name).await?;
        let commit: Commit = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            key: name.clone(),
            reason: e.to_string(),
        })?;
        if commit.collector_id != collector_id || commit.commit != n {
            return Err(Error::Manifest {
                key: name,
                reason: format!(
                    "names collector {:?} commit {} instead",
                    commit.collector_id, commit.commit
                ),
            });
        }
        out.push(commit);
    }
    Ok(out)
}

async fn list(loc: &StoreLocation, prefix: &Path, offset: Option<&Path>) -> Result<Vec<Path>> {
    let stream = match offset {
        Some(o) => loc.store.list_with_offset(Some(prefix), o),
        None => loc.store.list(Some(prefix)),
    };
    stream
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| Error::object("list", prefix.as_ref(), e))
}
