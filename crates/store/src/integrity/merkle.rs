//! RFC 6962 (Certificate Transparency) Merkle tree hashing: leaf `H(0x00‖d)`, node
//! `H(0x01‖l‖r)`, the empty tree `H("")`; tree heads, inclusion proofs and consistency proofs
//! (algorithms of RFC 9162 §2.1), and the compact [`Frontier`] a checkpoint carries so the next
//! one can extend the tree without re-reading every leaf.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash (tree head) of `leaves` (leaf hashes, in order).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree of `leaves` (RFC 6962 `PATH`), bottom up; `None`
/// when `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Option<Vec<Hash>> {
    let index = usize::try_from(index).ok()?;
    if index >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(leaves, index, &mut out);
    Some(out)
}

fn path(leaves: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(&leaves[..k], m, out);
        out.push(root(&leaves[k..]));
    } else {
        path(&leaves[k..], m - k, out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// The proof that the tree of the first `old_size` of `leaves` is a prefix of the tree of all
/// of them (RFC 6962 `PROOF`); `None` when `old_size` exceeds the leaves.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Option<Vec<Hash>> {
    let m = usize::try_from(old_size).ok()?;
    if m > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    if m > 0 && m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    Some(out)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks a consistency proof between the tree heads `(old_size, old_root)` and
/// `(new_size, new_root)` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // Every tree extends the empty one.
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut proof = proof.to_vec();
    if old_size.is_power_of_two() {
        proof.insert(0, *old_root);
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

/// The right edge of a tree: the roots of its perfect subtrees, largest (leftmost) first — one
/// per set bit of the size. Enough to append leaves and compute the root, so each checkpoint
/// carries it and the next one extends the tree from it alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Subtree roots, leftmost (largest) first.
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves with these subtree roots; `None` when the number
    /// of roots does not match the size (one per set bit).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, leftmost first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        // Each trailing one bit of the old size is a subtree of the same height as the carry.
        let mut s = self.size;
        while s & 1 == 1 {
            if let Some(left) = self.nodes.pop() {
                h = node_hash(&left, &h);
            }
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The tree head.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn frontier_matches_the_recursive_root_at_every_size() {
        let all = leaves(70);
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        for (i, l) in all.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), root(&all[..=i]), "size {}", i + 1);
            let again = Frontier::from_parts(f.size(), f.nodes().to_vec()).unwrap();
            assert_eq!(again, f);
        }
    }

    #[test]
    fn every_proof_verifies_and_a_wrong_one_does_not() {
        let all = leaves(21);
        for n in 1..=all.len() {
            let t = &all[..n];
            let r = root(t);
            for i in 0..n {
                let p = inclusion_proof(t, i as u64).unwrap();
                assert!(verify_inclusion(&t[i], i as u64, n as u64, &p, &r));
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify_inclusion(&t[other], i as u64, n as u64, &p, &r));
                }
            }
            for m in 0..=n {
                let p = consistency_proof(t, m as u64).unwrap();
                let old = root(&t[..m]);
                assert!(
                    verify_consistency(m as u64, n as u64, &old, &r, &p),
                    "{m}->{n}"
                );
                if m > 0 && m < n {
                    let forged = root(&all[1..=m]);
                    assert!(!verify_consistency(m as u64, n as u64, &forged, &r, &p));
                }
            }
        }
        assert!(inclusion_proof(&all, 21).is_none());
    }
}
