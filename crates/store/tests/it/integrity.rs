//! The integrity log: RFC 6962 test vectors, checkpoints published over real commits, and
//! tamper trials — each kind of tampering done to a real store on disk (and one on S3) must be
//! detected by `verify` and named.

use std::sync::Arc;

use bytes::Bytes;
use genai_audit_store::Committer;
use genai_audit_store::StoreLocation;
use genai_audit_store::integrity::merkle::{self, Hash};
use genai_audit_store::integrity::verify::NoProgress;
use genai_audit_store::integrity::{
    FindingKind, IntegrityKey, Leaf, PublishOptions, SignedCheckpoint, VerifyOptions, VerifyReport,
    checkpoint_key, prove_file, publish_checkpoint, publish_checkpoint_with, verify,
};
use genai_audit_store::layout::manifest_key;
use genai_audit_store::maintenance::{CompactOptions, Maintainer, MaintenanceOptions};
use genai_audit_store::manifest::{Commit, MANIFEST_VERSION, Snapshot, write_commit};
use object_store::{ObjectStoreExt, PutPayload};

use crate::common::synthetic_records;

fn h(hex: &str) -> Hash {
    const_hex::decode(hex).unwrap().try_into().unwrap()
}

/// The leaf inputs of the Certificate Transparency reference tree (transparency-dev/merkle
/// `testonly`, from the C++ CT implementation).
const CT_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Its tree heads at sizes 0..=8.
const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn certificate_transparency_reference_vectors() {
    let leaves: Vec<Hash> = CT_INPUTS
        .iter()
        .map(|d| merkle::leaf_hash(&const_hex::decode(d).unwrap()))
        .collect();
    let mut frontier = merkle::Frontier::default();
    for n in 0..=8 {
        assert_eq!(merkle::root(&leaves[..n]), h(CT_ROOTS[n]), "root of {n}");
        assert_eq!(frontier.root(), h(CT_ROOTS[n]), "frontier root of {n}");
        if n < 8 {
            frontier.push(leaves[n]);
        }
    }
    // (leaf index, tree size, audit path)
    let paths: [(u64, usize, &[&str]); 6] = [
        (0, 1, &[]),
        (
            1,
            2,
            &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
        ),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in paths {
        let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
        let got = merkle::inclusion_proof(&leaves[..size], index).unwrap();
        assert_eq!(got, want, "inclusion proof of {index} in {size}");
        let root = h(CT_ROOTS[size]);
        let leaf = &leaves[index as usize];
        assert!(merkle::verify_inclusion(
            leaf,
            index,
            size as u64,
            &want,
            &root
        ));
        let mut wrong_root = root;
        wrong_root[0] ^= 1;
        assert!(!merkle::verify_inclusion(
            leaf,
            index,
            size as u64,
            &want,
            &wrong_root
        ));
        if size > 1 {
            let other = &leaves[(index ^ 1) as usize];
            assert!(!merkle::verify_inclusion(
                other,
                index,
                size as u64,
                &want,
                &root
            ));
        }
    }
    // (old size, new size, consistency proof)
    let proofs: [(u64, usize, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (old, new, want) in proofs {
        let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
        let got = merkle::consistency_proof(&leaves[..new], old).unwrap();
        assert_eq!(got, want, "consistency proof {old} -> {new}");
        let (r1, r2) = (h(CT_ROOTS[old as usize]), h(CT_ROOTS[new]));
        assert!(merkle::verify_consistency(old, new as u64, &r1, &r2, &want));
        if old != new as u64 {
            assert!(!merkle::verify_consistency(
                old, new as u64, &r2, &r1, &want
            ));
        }
    }
}

/// The signing key of the tests, and one an attacker has.
fn key() -> IntegrityKey {
    IntegrityKey::from_seed([1; 32])
}

fn opts() -> VerifyOptions {
    VerifyOptions::new(vec![key().public_key()])
}

async fn check(loc: &StoreLocation, opts: &VerifyOptions) -> VerifyReport {
    verify(loc, opts, Arc::new(NoProgress)).await.unwrap()
}

/// (kind, object) of every problem.
fn problems(r: &VerifyReport) -> Vec<(FindingKind, String)> {
    r.problems
        .iter()
        .map(|f| (f.kind, f.object.clone()))
        .collect()
}

fn has(r: &VerifyReport, kind: FindingKind, object: &str) -> bool {
    r.problems
        .iter()
        .any(|f| f.kind == kind && f.object == object)
}

/// A store on disk written by collector `c1`: two commits of 6 files each (2 tenants × 3
/// days), each followed by a checkpoint, then an idle checkpoint (seq 1, 2, 3).
async fn baseline() -> (tempfile::TempDir, StoreLocation) {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    let c = Committer::new(loc.clone(), "c1").unwrap();
    for (seed, reason) in [(1, "first"), (2, "second")] {
        let r = c
            .commit_records(synthetic_records(60, 2, 3, seed), "import")
            .await
            .unwrap();
        assert_eq!(r.files_added.len(), 6);
        let opts = PublishOptions {
            reason: reason.into(),
            skip_if_empty: true,
        };
        publish_checkpoint_with(&loc, "c1", &key(), &opts)
            .await
            .unwrap()
            .expect("a checkpoint for the new commit");
    }
    let idle = publish_checkpoint(&loc, "c1", &key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(idle.checkpoint.seq, 3);
    assert!(idle.checkpoint.leaves.is_empty() && idle.checkpoint.commits.is_none());
    (dir, loc)
}

fn local(loc: &StoreLocation, key: &str) -> std::path::PathBuf {
    loc.local_dir.as_ref().unwrap().join(key)
}

async fn live_files(loc: &StoreLocation) -> Vec<String> {
    Snapshot::load(loc)
        .await
        .unwrap()
        .files
        .into_keys()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_store_verifies_and_counts_what_it_checked() {
    let (_dir, loc) = baseline().await;
    let r = check(&loc, &opts()).await;
    assert!(r.ok(), "{:#?}", r.problems);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    assert_eq!((r.checkpoints_valid, r.checkpoints_total), (3, 3));
    assert_eq!((r.files_valid, r.files_total), (12, 12));
    let size: u64 = Snapshot::load(&loc)
        .await
        .unwrap()
        .files
        .values()
        .map(|f| f.size)
        .sum();
    assert_eq!(r.bytes_hashed, size);
    let chain = &r.chains["c1"];
    assert_eq!(
        (chain.newest_seq, chain.tree_size, chain.last_commit),
        (3, 12, 2)
    );

    // Only the days asked for are hashed.
    let snap = Snapshot::load(&loc).await.unwrap();
    let day = snap.files.values().next().unwrap().dt.clone();
    let per_day = snap.files.values().filter(|f| f.dt == day).count() as u64;
    let mut one_day = opts();
    one_day.from = Some(day.parse().unwrap());
    one_day.to = one_day.from;
    let r = check(&loc, &one_day).await;
    assert!(r.ok());
    assert_eq!((r.files_valid, r.files_total), (per_day, per_day));
    assert!(per_day < 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_one_byte_is_modified() {
    let (_dir, loc) = baseline().await;
    let file = live_files(&loc).await.remove(3);
    let path = local(&loc, &file);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(problems(&r), [(FindingKind::Modified, file)]);
    assert!(
        r.problems[0].detail.contains("SHA-256"),
        "{}",
        r.problems[0]
    );
    assert_eq!((r.files_valid, r.files_total), (11, 12));
    assert_eq!((r.checkpoints_valid, r.checkpoints_total), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_a_file_is_modified() {
    let (_dir, loc) = baseline().await;
    let file = live_files(&loc).await.remove(0);
    let path = local(&loc, &file);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(problems(&r), [(FindingKind::Modified, file)]);
    assert_eq!(r.files_valid, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_file_is_missing() {
    let (_dir, loc) = baseline().await;
    let file = live_files(&loc).await.remove(5);
    std::fs::remove_file(local(&loc, &file)).unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(problems(&r), [(FindingKind::Missing, file)]);
    assert_eq!((r.files_valid, r.files_total), (11, 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_file_is_unlisted() {
    let (_dir, loc) = baseline().await;
    let file = live_files(&loc).await.remove(0);
    let planted = file.replace(".parquet", "-extra.parquet");
    std::fs::copy(local(&loc, &file), local(&loc, &planted)).unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(problems(&r), [(FindingKind::Unlisted, planted)]);
    assert_eq!((r.files_valid, r.files_total), (12, 13));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_resigned_with_another_key_is_a_bad_signature() {
    let (_dir, loc) = baseline().await;
    let name = checkpoint_key("c1", 2);
    let path = local(&loc, &name);
    let original = SignedCheckpoint::parse(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
    let forged = original
        .checkpoint
        .clone()
        .sign(&IntegrityKey::from_seed([2; 32]));
    std::fs::write(&path, &forged.bytes).unwrap();
    let r = check(&loc, &opts()).await;
    assert!(
        has(&r, FindingKind::BadSignature, &name),
        "{:#?}",
        r.problems
    );
    let bad = r.problems.iter().find(|f| f.object == name).unwrap();
    assert!(
        bad.detail.contains("not among the given public keys"),
        "{bad}"
    );
    // The next checkpoint names the original's hash, not the forgery's.
    assert!(has(&r, FindingKind::ChainBroken, &checkpoint_key("c1", 3)));
    assert_eq!(r.checkpoints_valid, 1);
    // The 6 files it lists are no longer vouched for.
    assert_eq!((r.files_valid, r.files_total), (6, 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_checkpoint_is_a_bad_signature() {
    let (_dir, loc) = baseline().await;
    // Point a leaf at a different file hash, as someone covering a modified file would.
    let name = checkpoint_key("c1", 1);
    let path = local(&loc, &name);
    let text = std::fs::read_to_string(&path).unwrap();
    let signed = SignedCheckpoint::parse(Bytes::from(text.clone())).unwrap();
    let Leaf::Add(f) = &signed.checkpoint.leaves[0] else {
        panic!("{:?}", signed.checkpoint.leaves)
    };
    assert!(text.contains(&f.sha256));
    std::fs::write(&path, text.replace(&f.sha256, &"0".repeat(64))).unwrap();
    let r = check(&loc, &opts()).await;
    let bad = r
        .problems
        .iter()
        .find(|f| f.kind == FindingKind::BadSignature)
        .expect("a bad signature");
    assert_eq!(bad.object, name);
    assert!(bad.detail.contains("edited after signing"), "{bad}");
    assert!(r.checkpoints_valid < r.checkpoints_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_rewritten_with_the_real_key_breaks_the_chain() {
    // Someone holding the signing key rewrites checkpoint 2 to vouch for a changed file: the
    // signature holds, but the tree no longer extends checkpoint 1's, and checkpoint 3 names
    // the original's hash.
    let (_dir, loc) = baseline().await;
    let name = checkpoint_key("c1", 2);
    let path = local(&loc, &name);
    let mut cp = SignedCheckpoint::parse(Bytes::from(std::fs::read(&path).unwrap()))
        .unwrap()
        .checkpoint;
    if let Leaf::Add(f) = &mut cp.leaves[0] {
        f.sha256 = "0".repeat(64);
    }
    std::fs::write(&path, &cp.sign(&key()).bytes).unwrap();
    let r = check(&loc, &opts()).await;
    assert!(
        has(&r, FindingKind::ChainBroken, &name),
        "{:#?}",
        r.problems
    );
    assert!(has(&r, FindingKind::ChainBroken, &checkpoint_key("c1", 3)));
    assert!(
        !r.problems
            .iter()
            .any(|f| f.kind == FindingKind::BadSignature)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_checkpoint_is_a_gap() {
    let (_dir, loc) = baseline().await;
    std::fs::remove_file(local(&loc, &checkpoint_key("c1", 2))).unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(
        problems(&r),
        [(FindingKind::Gap, checkpoint_key("c1", 3))],
        "{:#?}",
        r.problems
    );
    assert!(r.problems[0].detail.contains("2..2"), "{}", r.problems[0]);
    assert_eq!((r.checkpoints_valid, r.checkpoints_total), (2, 2));
    // The files of the commit it covered are no longer vouched for.
    assert_eq!((r.files_valid, r.files_total), (6, 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_chain_is_pending_and_caught_by_the_auditors_anchor() {
    let (_dir, loc) = baseline().await;
    // The auditor kept the newest checkpoint from an earlier run.
    let anchor = SignedCheckpoint::parse(Bytes::from(
        std::fs::read(local(&loc, &checkpoint_key("c1", 3))).unwrap(),
    ))
    .unwrap();
    for seq in [2, 3] {
        std::fs::remove_file(local(&loc, &checkpoint_key("c1", seq))).unwrap();
    }
    // Without the anchor: the chain is intact, but commit 2 is no longer covered.
    let r = check(&loc, &opts()).await;
    assert!(r.ok(), "{:#?}", r.problems);
    assert_eq!(r.warnings.len(), 1, "{:#?}", r.warnings);
    assert_eq!(r.warnings[0].kind, FindingKind::Pending);
    assert_eq!(r.warnings[0].object, manifest_key("c1", 2));
    assert_eq!(r.files_pending, 6);
    let mut strict = opts();
    strict.strict = true;
    let r = check(&loc, &strict).await;
    assert_eq!(
        problems(&r),
        [(FindingKind::Pending, manifest_key("c1", 2))]
    );
    // A file of an unsigned commit that changes is still caught: its manifest states its hash.
    let file = Snapshot::load(&loc)
        .await
        .unwrap()
        .files
        .into_values()
        .find(|f| f.key.contains("c00000000000000000002"))
        .unwrap()
        .key;
    let mut bytes = std::fs::read(local(&loc, &file)).unwrap();
    bytes[20] ^= 4;
    std::fs::write(local(&loc, &file), &bytes).unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(problems(&r), [(FindingKind::Modified, file.clone())]);
    assert!(
        r.problems[0].detail.contains("not yet signed"),
        "{}",
        r.problems[0]
    );
    bytes[20] ^= 4;
    std::fs::write(local(&loc, &file), &bytes).unwrap();
    // With the anchor: rolled back.
    let mut anchored = opts();
    anchored.anchors = vec![anchor];
    let r = check(&loc, &anchored).await;
    assert_eq!(
        problems(&r),
        [(FindingKind::ChainBroken, checkpoint_key("c1", 3))]
    );
    assert!(
        r.problems[0].detail.contains("rolled back"),
        "{}",
        r.problems[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_or_deleted_manifest_is_named() {
    let (_dir, loc) = baseline().await;
    // Drop a file from commit 1 (and the file), as someone hiding it would.
    let m1 = manifest_key("c1", 1);
    let mut c: Commit = serde_json::from_slice(&std::fs::read(local(&loc, &m1)).unwrap()).unwrap();
    let gone = c.added.remove(0);
    std::fs::write(local(&loc, &m1), serde_json::to_vec(&c).unwrap()).unwrap();
    std::fs::remove_file(local(&loc, &gone.key)).unwrap();
    std::fs::remove_file(local(&loc, &manifest_key("c1", 2))).unwrap();
    let r = check(&loc, &opts()).await;
    assert!(has(&r, FindingKind::Modified, &m1), "{:#?}", r.problems);
    assert!(has(&r, FindingKind::Missing, &manifest_key("c1", 2)));
    // The file is still listed by the signed checkpoint.
    assert!(has(&r, FindingKind::Missing, &gone.key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_with_their_signed_leaf_verify_clean() {
    let (_dir, loc) = baseline().await;
    // Compaction of one partition: one commit adds the merged file and removes the inputs.
    let snap = Snapshot::load(&loc).await.unwrap();
    let f = snap
        .files
        .values()
        .find(|f| snap.partition(&f.tenant, &f.dt).len() == 2)
        .unwrap()
        .clone();
    let day: chrono::NaiveDate = f.dt.parse().unwrap();
    let compacted = Maintainer::new(
        loc.clone(),
        MaintenanceOptions {
            collector_id: "compactor".into(),
            ..MaintenanceOptions::default()
        },
    )
    .unwrap()
    .compact(
        &CompactOptions {
            tenant: Some(f.tenant.clone()),
            before: day.succ_opt().unwrap(),
            min_files: 2,
            max_file_rows: 1_000_000,
        },
        &(),
    )
    .await
    .unwrap();
    assert_eq!((compacted.partitions, compacted.files_in), (1, 2));
    let cp = publish_checkpoint_with(
        &loc,
        "compactor",
        &key(),
        &PublishOptions {
            reason: "compaction".into(),
            skip_if_empty: true,
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(cp.checkpoint.leaves.len(), 3);

    // Retention: a commit that removes one file, by policy, then the file is deleted.
    let victim = Snapshot::load(&loc)
        .await
        .unwrap()
        .files
        .into_values()
        .find(|x| x.key.starts_with("audit_log/tenant=tenant1"))
        .unwrap();
    let commit = Commit {
        version: MANIFEST_VERSION,
        collector_id: "retention".into(),
        commit: 1,
        kind: "retention".into(),
        wal_first: None,
        wal_last: None,
        added: Vec::new(),
        removed: vec![victim.key.clone()],
        reason: Some("policy default: 400 days".into()),
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    write_commit(&loc, &commit).await.unwrap();
    std::fs::remove_file(local(&loc, &victim.key)).unwrap();
    // Before its checkpoint: pending, which strict verification refuses.
    let r = check(&loc, &opts()).await;
    assert!(r.ok(), "{:#?}", r.problems);
    assert_eq!(r.warnings.len(), 1, "{:#?}", r.warnings);
    let mut strict = opts();
    strict.strict = true;
    assert!(!check(&loc, &strict).await.ok());

    let cp = publish_checkpoint_with(
        &loc,
        "retention",
        &key(),
        &PublishOptions {
            reason: "retention".into(),
            skip_if_empty: true,
        },
    )
    .await
    .unwrap()
    .unwrap();
    let Leaf::Remove(leaf) = &cp.checkpoint.leaves[0] else {
        panic!("{:?}", cp.checkpoint.leaves)
    };
    assert_eq!(
        (leaf.kind.as_str(), leaf.reason.as_str(), leaf.key.as_str()),
        ("retention", "policy default: 400 days", victim.key.as_str())
    );
    let r = check(&loc, &strict).await;
    assert!(r.ok(), "{:#?}", r.problems);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    let live = Snapshot::load(&loc).await.unwrap().files.len() as u64;
    assert_eq!((r.files_valid, r.files_total), (live, live));
    assert_eq!((r.checkpoints_valid, r.checkpoints_total), (5, 5));

    // A file deleted with no removal at all is still missing.
    let other = live_files(&loc).await.remove(0);
    std::fs::remove_file(local(&loc, &other)).unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(problems(&r), [(FindingKind::Missing, other)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inclusion_proof_rechecks_against_the_signed_root() {
    let (_dir, loc) = baseline().await;
    let file = live_files(&loc).await.remove(6);
    let p = prove_file(&loc, &file, &[key().public_key()])
        .await
        .unwrap();
    assert!(p.verified);
    assert_eq!(p.checkpoint, checkpoint_key("c1", 3));
    assert_eq!(p.tree_size, 12);
    // Recomputed from scratch, as an auditor would: leaf bytes → leaf hash → path → the root
    // in the signed checkpoint.
    let leaf_hash = merkle::leaf_hash(&p.leaf.canonical());
    assert_eq!(leaf_hash, p.leaf_hash);
    let signed = SignedCheckpoint::parse(Bytes::from(
        std::fs::read(local(&loc, &p.checkpoint)).unwrap(),
    ))
    .unwrap();
    assert!(signed.verify(&[key().public_key()]).is_some());
    assert!(merkle::verify_inclusion(
        &leaf_hash,
        p.index,
        signed.checkpoint.tree_size,
        &p.path,
        &signed.checkpoint.root
    ));
    assert!(!merkle::verify_inclusion(
        &leaf_hash,
        (p.index + 1) % 12,
        12,
        &p.path,
        &signed.checkpoint.root
    ));
    let Leaf::Add(f) = &p.leaf else { panic!() };
    assert_eq!(p.current_sha256.as_deref(), Some(f.sha256.as_str()));
    assert!(
        prove_file(&loc, "audit_log/nope.parquet", &[key().public_key()])
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_races_with_commits_and_itself_without_breaking_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    let committer = Committer::new(loc.clone(), "c1").unwrap();
    let writer = tokio::spawn(async move {
        for seed in 0..6 {
            committer
                .commit_records(synthetic_records(10, 1, 1, 100 + seed), "import")
                .await
                .unwrap();
        }
    });
    let mut publishers = Vec::new();
    for _ in 0..4 {
        let loc = loc.clone();
        publishers.push(tokio::spawn(async move {
            for _ in 0..5 {
                publish_checkpoint(&loc, "c1", &key()).await.unwrap();
            }
        }));
    }
    writer.await.unwrap();
    for p in publishers {
        p.await.unwrap();
    }
    publish_checkpoint(&loc, "c1", &key()).await.unwrap();
    let r = check(&loc, &opts()).await;
    assert!(r.ok(), "{:#?}", r.problems);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    assert_eq!(r.checkpoints_total, 21);
    assert_eq!(r.chains["c1"].last_commit, 6);
    assert_eq!(r.files_valid, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_on_s3_is_detected_too() {
    let moto = crate::s3::Moto::start();
    moto.create_bucket("integrity");
    let loc = crate::s3::s3_location(moto.port, "integrity", "audit");
    Committer::new(loc.clone(), "c1")
        .unwrap()
        .commit_records(synthetic_records(30, 2, 1, 9), "import")
        .await
        .unwrap();
    publish_checkpoint(&loc, "c1", &key()).await.unwrap();
    let r = check(&loc, &opts()).await;
    assert!(r.ok(), "{:#?}", r.problems);
    assert_eq!((r.files_valid, r.files_total), (2, 2));

    let file = live_files(&loc).await.remove(0);
    let path = loc.path(&file);
    let mut bytes = loc.get_bytes(&file).await.unwrap().to_vec();
    bytes[10] ^= 0x80;
    loc.store.put(&path, PutPayload::from(bytes)).await.unwrap();
    let planted = loc.path("audit_log/tenant=tenant0/dt=2026-01-01/x.parquet");
    loc.store
        .put(&planted, PutPayload::from_static(b"PAR1"))
        .await
        .unwrap();
    let r = check(&loc, &opts()).await;
    assert_eq!(
        problems(&r),
        [
            (FindingKind::Modified, file),
            (
                FindingKind::Unlisted,
                "audit_log/tenant=tenant0/dt=2026-01-01/x.parquet".to_owned()
            )
        ]
    );
}
