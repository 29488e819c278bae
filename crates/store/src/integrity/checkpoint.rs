//! Checkpoints: the signed tree heads of one collector's integrity log.
//!
//! A checkpoint is a small text object, `_integrity/<collector>/<seq:020>.checkpoint`, in the
//! style of a signed note: a body of `name value` lines, then one signature line over the exact
//! bytes of the body.
//!
//! ```text
//! genai-audit checkpoint v1
//! collector collector-eu-1
//! seq 42
//! tree-size 1234
//! root <hex SHA-256>
//! prev <hex SHA-256 of the whole previous checkpoint object> | -
//! commits <first>..<last> | -              manifest commits covered by this checkpoint
//! last-commit <n>                          highest commit covered by the chain so far
//! records <min start µs> <max start µs> | - start_time range of the files it adds
//! created-at 2025-06-14T12:00:00.000000Z
//! reason interval
//! frontier <hex> <hex> …                   right edge of the tree (one root per set bit of the size)
//! leaves <n>
//! leaf {"op":"add","collector":…}          the new leaves, one JSON object per line
//! signature ed25519 <key id> <hex signature of every byte above this line>
//! ```

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::key::{IntegrityKey, PublicKey};
use super::leaf::Leaf;
use super::merkle::Hash;

/// Directory of the checkpoints below the store root.
pub const CHECKPOINT_DIR: &str = "_integrity";
/// First line of every checkpoint.
const MAGIC: &str = "genai-audit checkpoint v1";

/// Key of checkpoint `seq` of `collector`.
pub fn checkpoint_key(collector: &str, seq: u64) -> String {
    format!("{CHECKPOINT_DIR}/{collector}/{seq:020}.checkpoint")
}

/// Parses `_integrity/<collector>/<seq>.checkpoint` (relative to the root).
pub fn parse_checkpoint_key(key: &str) -> Option<(String, u64)> {
    let rest = key.strip_prefix(CHECKPOINT_DIR)?.strip_prefix('/')?;
    let (collector, file) = rest.split_once('/')?;
    let seq = file.strip_suffix(".checkpoint")?;
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((collector.to_owned(), seq.parse().ok()?))
}

/// The content of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Collector whose commits the chain covers.
    pub collector_id: String,
    /// Position in the chain: 1, 2, 3…
    pub seq: u64,
    /// Leaves in the tree after this checkpoint.
    pub tree_size: u64,
    /// Tree head after this checkpoint.
    pub root: Hash,
    /// SHA-256 of the previous checkpoint object (`None` for the first).
    pub prev: Option<Hash>,
    /// Manifest commits covered by this checkpoint, inclusive (`None`: no new commit).
    pub commits: Option<(u64, u64)>,
    /// Highest commit covered by the chain so far (0: none).
    pub last_commit: u64,
    /// `start_time` range (µs) of the files this checkpoint adds.
    pub records: Option<(i64, i64)>,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
    /// Why it was made (`startup`, `interval`, `shutdown`, `import`, `retention`, …).
    pub reason: String,
    /// Right edge of the tree: lets the next checkpoint extend it.
    pub frontier: Vec<Hash>,
    /// The leaves this checkpoint adds, in tree order.
    pub leaves: Vec<Leaf>,
}

/// A checkpoint as stored: its parsed content, signature and exact bytes.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    /// The content.
    pub checkpoint: Checkpoint,
    /// Key id named in the signature line.
    pub key_id: String,
    /// The Ed25519 signature over the body.
    pub signature: [u8; 64],
    /// The whole object.
    pub bytes: Bytes,
    body_len: usize,
}

impl Checkpoint {
    /// The body text (everything the signature covers).
    pub fn body(&self) -> String {
        use std::fmt::Write;
        let hex = const_hex::encode;
        let mut s = String::with_capacity(512 + self.leaves.len() * 320);
        let _ = writeln!(s, "{MAGIC}");
        let _ = writeln!(s, "collector {}", self.collector_id);
        let _ = writeln!(s, "seq {}", self.seq);
        let _ = writeln!(s, "tree-size {}", self.tree_size);
        let _ = writeln!(s, "root {}", hex(self.root));
        let _ = writeln!(s, "prev {}", self.prev.map_or("-".into(), hex));
        match self.commits {
            Some((a, b)) => writeln!(s, "commits {a}..{b}"),
            None => writeln!(s, "commits -"),
        }
        .ok();
        let _ = writeln!(s, "last-commit {}", self.last_commit);
        match self.records {
            Some((a, b)) => writeln!(s, "records {a} {b}"),
            None => writeln!(s, "records -"),
        }
        .ok();
        let _ = writeln!(s, "created-at {}", one_line(&self.created_at));
        let _ = writeln!(s, "reason {}", one_line(&self.reason));
        let frontier: Vec<String> = self.frontier.iter().map(const_hex::encode).collect();
        let _ = writeln!(
            s,
            "frontier {}",
            if frontier.is_empty() {
                "-".to_owned()
            } else {
                frontier.join(" ")
            }
        );
        let _ = writeln!(s, "leaves {}", self.leaves.len());
        for l in &self.leaves {
            // A leaf serializes to one line: JSON escapes every control character.
            let json = serde_json::to_string(l).unwrap_or_default();
            let _ = writeln!(s, "leaf {json}");
        }
        s
    }

    /// Signs the checkpoint.
    pub fn sign(self, key: &IntegrityKey) -> SignedCheckpoint {
        let body = self.body();
        let signature = key.sign(body.as_bytes());
        let key_id = key.public_key().key_id();
        let mut text = body.clone();
        text.push_str(&format!(
            "signature ed25519 {key_id} {}\n",
            const_hex::encode(signature)
        ));
        SignedCheckpoint {
            checkpoint: self,
            key_id,
            signature,
            body_len: body.len(),
            bytes: Bytes::from(text),
        }
    }
}

/// Reasons and dates go on one line: control characters become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl SignedCheckpoint {
    /// Parses a stored checkpoint (the signature is not checked: see [`Self::verify`]).
    pub fn parse(bytes: Bytes) -> Result<Self, String> {
        let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_owned())?;
        let body_len = text
            .rfind("\nsignature ")
            .map(|i| i + 1)
            .ok_or("no signature line")?;
        let (body, sig_line) = text.split_at(body_len);
        let sig_line = sig_line
            .strip_suffix('\n')
            .filter(|l| !l.contains('\n'))
            .ok_or("the signature line must be the last line")?;
        let parts: Vec<&str> = sig_line.split(' ').collect();
        let ["signature", "ed25519", key_id, sig_hex] = parts[..] else {
            return Err(format!("malformed signature line {sig_line:?}"));
        };
        let signature: [u8; 64] = const_hex::decode(sig_hex)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or("the signature is not 64 bytes of hex")?;
        let checkpoint = parse_body(body)?;
        Ok(Self {
            checkpoint,
            key_id: key_id.to_owned(),
            signature,
            body_len,
            bytes,
        })
    }

    /// The bytes the signature covers.
    pub fn body(&self) -> &[u8] {
        &self.bytes[..self.body_len]
    }

    /// SHA-256 of the whole object: what the next checkpoint's `prev` names.
    pub fn hash(&self) -> Hash {
        Sha256::digest(&self.bytes).into()
    }

    /// The key among `keys` that signed this checkpoint (strict Ed25519), if any.
    pub fn verify(&self, keys: &[PublicKey]) -> Option<PublicKey> {
        keys.iter()
            .find(|k| k.key_id() == self.key_id && k.verify(self.body(), &self.signature))
            .copied()
    }
}

fn parse_body(body: &str) -> Result<Checkpoint, String> {
    let mut lines = body.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!("does not start with {MAGIC:?}"));
    }
    let mut field = |name: &str| -> Result<&str, String> {
        let line = lines.next().ok_or_else(|| format!("no `{name}` line"))?;
        line.strip_prefix(name)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| format!("expected `{name}`, found {line:?}"))
    };
    let num = |name: &str, v: &str| -> Result<u64, String> {
        v.parse()
            .map_err(|_| format!("`{name}` {v:?} is not a number"))
    };
    let hash = |name: &str, v: &str| -> Result<Hash, String> {
        const_hex::decode(v)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("`{name}` {v:?} is not a SHA-256 in hex"))
    };
    let collector_id = field("collector")?.to_owned();
    let seq = num("seq", field("seq")?)?;
    let tree_size = num("tree-size", field("tree-size")?)?;
    let root = hash("root", field("root")?)?;
    let prev = match field("prev")? {
        "-" => None,
        v => Some(hash("prev", v)?),
    };
    let commits = match field("commits")? {
        "-" => None,
        v => {
            let (a, b) = v
                .split_once("..")
                .ok_or_else(|| format!("`commits` {v:?} is not a range"))?;
            Some((num("commits", a)?, num("commits", b)?))
        }
    };
    let last_commit = num("last-commit", field("last-commit")?)?;
    let records = match field("records")? {
        "-" => None,
        v => {
            let bad = || format!("`records` {v:?} is not two timestamps");
            let (a, b) = v.split_once(' ').ok_or_else(bad)?;
            Some((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
        }
    };
    let created_at = field("created-at")?.to_owned();
    let reason = field("reason")?.to_owned();
    let frontier = match field("frontier")? {
        "-" => Vec::new(),
        v => v
            .split(' ')
            .map(|h| hash("frontier", h))
            .collect::<Result<_, _>>()?,
    };
    let n = num("leaves", field("leaves")?)?;
    let mut leaves = Vec::new();
    for _ in 0..n {
        let json = field("leaf")?;
        leaves.push(serde_json::from_str(json).map_err(|e| format!("leaf {json:?}: {e}"))?);
    }
    if let Some(extra) = lines.next() {
        return Err(format!("unexpected line {extra:?}"));
    }
    Ok(Checkpoint {
        collector_id,
        seq,
        tree_size,
        root,
        prev,
        commits,
        last_commit,
        records,
        created_at,
        reason,
        frontier,
        leaves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::leaf::RemovalLeaf;

    fn sample() -> Checkpoint {
        Checkpoint {
            collector_id: "c1".into(),
            seq: 2,
            tree_size: 3,
            root: [7; 32],
            prev: Some([1; 32]),
            commits: Some((4, 5)),
            last_commit: 5,
            records: Some((-5, 10)),
            created_at: "2025-06-14T12:00:00Z".into(),
            reason: "retention\npolicy".into(),
            frontier: vec![[2; 32], [3; 32]],
            leaves: vec![Leaf::Remove(RemovalLeaf {
                collector: "c1".into(),
                commit: 5,
                kind: "retention".into(),
                reason: "a\nb".into(),
                key: "k".into(),
            })],
        }
    }

    #[test]
    fn round_trips_and_any_edit_breaks_the_signature() {
        let key = IntegrityKey::from_seed([9; 32]);
        let signed = sample().sign(&key);
        let parsed = SignedCheckpoint::parse(signed.bytes.clone()).unwrap();
        let mut want = sample();
        want.reason = "retention policy".into();
        assert_eq!(parsed.checkpoint, want);
        assert!(parsed.verify(&[key.public_key()]).is_some());
        let other = IntegrityKey::from_seed([8; 32]).public_key();
        assert!(parsed.verify(&[other]).is_none());

        let text = String::from_utf8(signed.bytes.to_vec()).unwrap();
        let edited = text.replace("tree-size 3", "tree-size 4");
        let edited = SignedCheckpoint::parse(Bytes::from(edited)).unwrap();
        assert!(edited.verify(&[key.public_key()]).is_none());
        assert!(SignedCheckpoint::parse(Bytes::from(format!("{text}x\n"))).is_err());
        assert_eq!(
            parse_checkpoint_key(&checkpoint_key("c-1.x", 12)),
            Some(("c-1.x".into(), 12))
        );
    }
}
