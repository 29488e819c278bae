//! Retention, erasure and legal holds: real Parquet rewritten, committed, read back; crashes
//! at each step of a batch (child processes aborted by failpoints); racing runs, compaction
//! among them; S3 (moto).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrow_array::{Array, Decimal128Array, StringArray};
use chrono::NaiveDate;
use futures::TryStreamExt;
use genai_audit_core::{AuditRecord, HashKey, RetentionPolicy};
use genai_audit_store::erasure::{self, ErasureMode, ErasureRequest, ErasureRun};
use genai_audit_store::holds::{self, HoldSet};
use genai_audit_store::maintenance::{
    CompactOptions, Maintainer, MaintenanceOptions, MaintenanceReport, Progress,
};
use genai_audit_store::manifest::{
    Commit, MANIFEST_VERSION, Snapshot, create_commit, load_commits,
};
use genai_audit_store::parquet_file::decode;
use genai_audit_store::retention::RetentionRun;
use genai_audit_store::{Committer, Error, StoreLocation};

use crate::common::synthetic_records;

/// Days since the epoch of the first test day (2024-10-04).
const DAY0: i64 = 20_000;
const DAY_US: i64 = 86_400_000_000;
const USERS: usize = 37;
const SUBJECT: &str = "user-5";

fn date(day: i64) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(day)
}

fn key() -> HashKey {
    HashKey::new(&[9u8; 32]).unwrap()
}

/// `n` records over 2 tenants and 3 days (`i % 3`), 37 users, each with a session, an address,
/// an agent, content hashes and the user id inside its attributes. Stamped to expire the day
/// after they started, except every other record of day 1, kept 100 days.
fn records(n: usize) -> Vec<AuditRecord> {
    synthetic_records(n, 2, 1, 11)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            let d = (i % 3) as i64;
            r.start_time_us = (DAY0 + d) * DAY_US + 3_600_000_000 + i as i64 * 1_000_000;
            r.start_time_unix_nano = r.start_time_us * 1000 + 7;
            r.end_time_us = r.start_time_us + 1_500_000;
            let long = d == 1 && (i / 6) % 2 == 0;
            r.retention_until_days = Some((DAY0 + d + if long { 101 } else { 1 }) as i32);
            let u = i % USERS;
            r.user_id = Some(format!("user-{u}"));
            r.session_id = Some(format!("sess-{u}-{}", i % 5));
            r.client_address = Some(format!("10.0.0.{u}"));
            r.user_agent = Some("agent/1.0".into());
            r.prompt_hash = Some(format!("{:064x}", i));
            r.response_hash = Some(format!("{:064x}", i + 1));
            r.hash_key_id = Some("k1".into());
            r.attributes = format!(r#"{{"app.user":"user-{u}","app.note":"for user-{u}!"}}"#);
            r
        })
        .collect()
}

/// A store holding `records(n)` in files of 50 rows (12 files for 600 records).
async fn filled(loc: &StoreLocation, n: usize) -> Vec<AuditRecord> {
    let recs = records(n);
    let c = Committer::new(loc.clone(), "import")
        .unwrap()
        .with_max_file_rows(50);
    c.commit_records(recs.clone(), "import").await.unwrap();
    recs
}

/// One committed row: its tenant and every column rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    tenant: String,
    cols: BTreeMap<String, String>,
}

impl Row {
    fn get(&self, col: &str) -> &str {
        &self.cols[col]
    }
}

/// Every committed row by record id; fails on a record id seen twice.
async fn rows(loc: &StoreLocation) -> BTreeMap<String, Row> {
    let snap = Snapshot::load(loc).await.unwrap();
    let mut out = BTreeMap::new();
    for f in snap.files.values() {
        for b in decode(loc.get_bytes(&f.key).await.unwrap()).unwrap() {
            for i in 0..b.num_rows() {
                let cols: BTreeMap<String, String> = b
                    .schema()
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .map(|(field, c)| (field.name().clone(), render(c.as_ref(), i)))
                    .collect();
                let id = cols["record_id"].clone();
                let row = Row {
                    tenant: f.tenant.clone(),
                    cols,
                };
                assert!(out.insert(id.clone(), row).is_none(), "{id} seen twice");
            }
        }
    }
    out
}

/// A cell as text: strings as they are, NULL as `NULL`, anything else by Debug.
fn render(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return "NULL".into();
    }
    match a.as_any().downcast_ref::<StringArray>() {
        Some(s) => s.value(i).to_owned(),
        None => format!("{:?}", a.slice(i, 1)),
    }
}

/// Every object below `prefix`, relative to the root.
async fn objects(loc: &StoreLocation, prefix: &str) -> BTreeSet<String> {
    loc.store
        .list(Some(&loc.path(prefix)))
        .map_ok(|m| loc.relative(&m.location))
        .try_collect()
        .await
        .unwrap()
}

/// The audit log holds exactly the live files (no orphan, nothing replaced left behind) and no
/// maintenance work is pending.
async fn assert_tidy(loc: &StoreLocation) {
    let snap = Snapshot::load(loc).await.unwrap();
    let live: BTreeSet<String> = snap.files.keys().cloned().collect();
    assert_eq!(
        objects(loc, "audit_log").await,
        live,
        "objects == live files"
    );
    assert!(
        objects(loc, "_maintenance").await.is_empty(),
        "no intent left"
    );
}

fn maintainer(loc: &StoreLocation, batch_files: usize, dry_run: bool) -> Maintainer {
    Maintainer::new(
        loc.clone(),
        MaintenanceOptions {
            batch_files,
            dry_run,
            ..MaintenanceOptions::default()
        },
    )
    .unwrap()
}

fn policy(days: u32) -> RetentionPolicy {
    RetentionPolicy {
        default_days: days,
        ..RetentionPolicy::default()
    }
}

fn expired_at(r: &AuditRecord, cutoff: i64) -> bool {
    let start_day = r.start_time_us.div_euclid(DAY_US);
    i64::from(r.retention_until_days.unwrap()).max(start_day + 1) < cutoff
}

#[tokio::test]
async fn retention_deletes_expired_files_unread_and_rewrites_mixed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    let recs = filled(&loc, 600).await;
    let before = rows(&loc).await;
    let all_objects = objects(&loc, "").await;
    let cutoff = DAY0 + 3;
    let run = RetentionRun::new(policy(1), date(cutoff), None, HoldSet::default());

    // Dry: the same counts as the real run, nothing changed.
    let dry = maintainer(&loc, 64, true)
        .apply_retention(&run, &())
        .await
        .unwrap();
    assert_eq!(
        objects(&loc, "").await,
        all_objects,
        "a dry run writes nothing"
    );

    let report = maintainer(&loc, 64, false)
        .apply_retention(&run, &())
        .await
        .unwrap();
    let want: BTreeSet<&str> = recs
        .iter()
        .filter(|r| !expired_at(r, cutoff))
        .map(|r| r.record_id.as_str())
        .collect();
    let after = rows(&loc).await;
    assert_eq!(
        after.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        want
    );
    assert_eq!(report.rows_deleted as usize, recs.len() - want.len());
    // Kept rows are unchanged in every column.
    for (id, row) in &after {
        assert_eq!(row, &before[id], "{id} changed");
    }
    // Day 0 (4 files) deleted from the footer alone, day 1 (4 files) read and rewritten, day 2
    // (4 files) never opened: the manifest's time range proves it unexpired.
    assert_eq!(report.footers_read, 8, "{report:?}");
    assert_eq!(report.files_read, 4, "{report:?}");
    assert_eq!(
        (report.files_deleted, report.files_rewritten),
        (4, 4),
        "{report:?}"
    );
    assert_eq!(
        MaintenanceReport {
            dry_run: false,
            commits: report.commits.clone(),
            bytes_written: report.bytes_written,
            ..dry
        },
        report
    );
    assert_eq!(report.commits, [1]);
    let commits = load_commits(&loc).await.unwrap();
    let c = commits
        .iter()
        .find(|c| c.collector_id == "maintenance")
        .unwrap();
    assert_eq!(c.kind, "retention");
    let reason = c.reason.as_deref().unwrap();
    assert!(
        reason.contains("default_days=1") && reason.contains("cutoff=2024-10-07"),
        "{reason}"
    );
    assert_eq!((c.removed.len(), c.added.len()), (8, 4));
    assert_tidy(&loc).await;

    // Nothing more to do: a second run commits nothing.
    let again = maintainer(&loc, 64, false)
        .apply_retention(&run, &())
        .await
        .unwrap();
    assert!(
        again.commits.is_empty() && again.rows_deleted == 0,
        "{again:?}"
    );
}

#[tokio::test]
async fn holds_keep_rows_until_lifted_and_lifting_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    let recs = filled(&loc, 600).await;
    let now = chrono::Utc::now();
    let t0 = holds::add_hold(&loc, "tenant0", None, "matter 12", "legal@x", now)
        .await
        .unwrap();
    let u = holds::add_hold(&loc, "tenant1", Some("user-6"), "matter 13", "legal@x", now)
        .await
        .unwrap();
    let cutoff = DAY0 + 3;
    let run = RetentionRun::new(
        policy(1),
        date(cutoff),
        None,
        HoldSet::load(&loc).await.unwrap(),
    );
    let report = maintainer(&loc, 64, false)
        .apply_retention(&run, &())
        .await
        .unwrap();
    let after = rows(&loc).await;
    let held = |r: &AuditRecord| {
        &*r.tenant == "tenant0"
            || (&*r.tenant == "tenant1" && r.user_id.as_deref() == Some("user-6"))
    };
    for r in &recs {
        let kept = !expired_at(r, cutoff) || held(r);
        assert_eq!(after.contains_key(&r.record_id), kept, "{r:?}");
    }
    let held_expired = recs
        .iter()
        .filter(|r| &*r.tenant == "tenant1" && held(r) && expired_at(r, cutoff))
        .count();
    assert!(held_expired > 0);
    assert_eq!(report.rows_held as usize, held_expired);

    // Lifted holds stay on record with who and why; the next run removes what they kept.
    holds::remove_hold(&loc, &t0.id, "matter closed", "legal@y", now)
        .await
        .unwrap();
    holds::remove_hold(&loc, &u.id, "matter closed", "legal@y", now)
        .await
        .unwrap();
    let err = holds::remove_hold(&loc, &u.id, "again", "legal@y", now)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HoldNotFound(_)), "{err}");
    let listed = holds::list_holds(&loc).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|h| {
        let r = h.removed.as_ref().unwrap();
        r.by == "legal@y" && r.reason == "matter closed"
    }));
    let run = RetentionRun::new(
        policy(1),
        date(cutoff),
        None,
        HoldSet::load(&loc).await.unwrap(),
    );
    maintainer(&loc, 64, false)
        .apply_retention(&run, &())
        .await
        .unwrap();
    let after = rows(&loc).await;
    assert!(
        recs.iter()
            .all(|r| after.contains_key(&r.record_id) != expired_at(r, cutoff))
    );
    assert_tidy(&loc).await;
}

fn erasure_run(loc_holds: HoldSet, mode: ErasureMode, tenant: Option<&str>) -> ErasureRun {
    ErasureRun::new(
        ErasureRequest {
            user_id: SUBJECT.into(),
            tenant: tenant.map(Into::into),
            mode,
            request: "DSR-2041 (Art. 17)".into(),
        },
        &key(),
        loc_holds,
    )
    .unwrap()
}

/// Sum of a money column over the live files, exactly.
async fn money_total(loc: &StoreLocation, col: &str) -> i128 {
    let snap = Snapshot::load(loc).await.unwrap();
    let mut total = 0;
    for f in snap.files.values() {
        for b in decode(loc.get_bytes(&f.key).await.unwrap()).unwrap() {
            let c = b.column_by_name(col).unwrap();
            let c = c.as_any().downcast_ref::<Decimal128Array>().unwrap();
            total += c.iter().flatten().sum::<i128>();
        }
    }
    total
}

#[tokio::test]
async fn pseudonymize_keeps_the_facts_and_removes_every_trace_of_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 600).await;
    let before = rows(&loc).await;
    let costs_before = money_total(&loc, "total_cost_usd").await;
    let files_with_subject: BTreeSet<String> = {
        let snap = Snapshot::load(&loc).await.unwrap();
        let mut s = BTreeSet::new();
        for f in snap.files.values() {
            for b in decode(loc.get_bytes(&f.key).await.unwrap()).unwrap() {
                let u = b.column_by_name("user_id").unwrap();
                let u = u.as_any().downcast_ref::<StringArray>().unwrap();
                if (0..u.len()).any(|i| u.value(i) == SUBJECT) {
                    s.insert(f.key.clone());
                }
            }
        }
        s
    };
    let run = erasure_run(HoldSet::default(), ErasureMode::Pseudonymize, None);
    let report = maintainer(&loc, 64, false).erase(&run, &()).await.unwrap();
    let after = rows(&loc).await;

    // Same rows, cost and tokens unchanged.
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert_ne!(costs_before, 0);
    assert_eq!(money_total(&loc, "total_cost_usd").await, costs_before);
    let subject_rows: Vec<&String> = before
        .iter()
        .filter(|(_, r)| r.get("user_id") == SUBJECT)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(report.rows_changed as usize, subject_rows.len());
    // Only the files holding the subject were read (statistics and bloom filters ruled out the
    // rest) and rewritten.
    assert_eq!(
        report.files_read as usize,
        files_with_subject.len(),
        "{report:?}"
    );
    assert_eq!(report.files_rewritten as usize, files_with_subject.len());

    let pseudonym = after[subject_rows[0]].get("user_id").to_owned();
    assert!(
        pseudonym.starts_with("erased:") && pseudonym.len() == 39,
        "{pseudonym}"
    );
    for (id, row) in &after {
        let was = &before[id];
        if was.get("user_id") != SUBJECT {
            assert_eq!(row, was, "a row of another user changed");
            continue;
        }
        assert_eq!(row.get("user_id"), pseudonym, "one pseudonym per subject");
        assert!(row.get("session_id").starts_with("erased:"));
        for col in [
            "client_address",
            "user_agent",
            "prompt_hash",
            "response_hash",
            "hash_key_id",
        ] {
            assert_eq!(row.get(col), "NULL", "{col}");
        }
        let attrs: serde_json::Value = serde_json::from_str(row.get("attributes")).unwrap();
        assert_eq!(attrs["app.user"], pseudonym.as_str());
        assert_eq!(attrs["app.note"], format!("for {pseudonym}!"));
        for col in [
            "start_time",
            "input_tokens",
            "output_tokens",
            "total_cost_usd",
            "response_model",
            "status",
            "trace_id",
        ] {
            assert_eq!(row.get(col), was.get(col), "{col} kept");
        }
        // No column of the row still names the subject or their session/address.
        for (col, v) in &row.cols {
            assert!(!v.contains(SUBJECT), "{col} still holds the id: {v}");
            assert!(
                !v.contains("sess-5-") && !v.contains("10.0.0.5"),
                "{col}: {v}"
            );
        }
    }
    // Sessions of one user get one pseudonym each, distinct from one another.
    let sessions: BTreeSet<&str> = after
        .values()
        .filter(|r| r.get("user_id") == pseudonym)
        .map(|r| r.get("session_id"))
        .collect();
    let raw_sessions: BTreeSet<&str> = before
        .values()
        .filter(|r| r.get("user_id") == SUBJECT)
        .map(|r| r.get("session_id"))
        .collect();
    assert_eq!(sessions.len(), raw_sessions.len());

    // The receipt names the subject by its keyed hash only.
    let hash = erasure::subject_hash(&key(), SUBJECT);
    assert_eq!(hash, key().hash(SUBJECT));
    let receipts = erasure::receipts(&loc, &hash).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        receipts[0].reason.as_deref(),
        Some(format!("subject={hash} mode=pseudonymize request=DSR-2041 (Art. 17)").as_str())
    );
    assert_eq!(receipts[0].kind, "erasure");
    for m in objects(&loc, "_manifest").await {
        let text = String::from_utf8(loc.get_bytes(&m).await.unwrap().to_vec()).unwrap();
        assert!(!text.contains(SUBJECT), "{m} names the subject");
    }
    assert!(
        erasure::receipts(&loc, &key().hash("user-6"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_tidy(&loc).await;
}

#[tokio::test]
async fn delete_mode_removes_the_rows_and_a_second_request_is_still_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 600).await;
    let before = rows(&loc).await;
    let run = erasure_run(HoldSet::default(), ErasureMode::Delete, Some("tenant1"));
    let report = maintainer(&loc, 2, false).erase(&run, &()).await.unwrap();
    let after = rows(&loc).await;
    for (id, row) in &before {
        let gone = row.get("user_id") == SUBJECT && row.tenant == "tenant1";
        assert_eq!(!after.contains_key(id), gone, "{id}");
    }
    let deleted = before.len() - after.len();
    assert!(deleted > 0);
    assert_eq!(report.rows_deleted as usize, deleted);
    assert!(report.commits.len() > 1, "two files per commit: {report:?}");
    assert_tidy(&loc).await;

    // Nothing left to erase: the request is still on record, as a commit without files.
    let again = maintainer(&loc, 2, false).erase(&run, &()).await.unwrap();
    assert_eq!(again.rows_deleted, 0);
    assert_eq!(again.commits.len(), 1);
    let receipts = erasure::receipts(&loc, run.subject_hash()).await.unwrap();
    assert_eq!(receipts.len(), report.commits.len() + 1);
    let last = receipts.last().unwrap();
    assert!(last.added.is_empty() && last.removed.is_empty());
    assert_eq!(rows(&loc).await, after);
}

#[tokio::test]
async fn erasure_under_a_hold_is_refused_naming_the_hold_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 300).await;
    let all = objects(&loc, "").await;
    let now = chrono::Utc::now();
    let on_user = holds::add_hold(&loc, "tenant1", Some(SUBJECT), "litigation", "legal", now)
        .await
        .unwrap();
    let err = ErasureRun::new(
        ErasureRequest {
            user_id: SUBJECT.into(),
            tenant: None,
            mode: ErasureMode::Delete,
            request: "DSR-1".into(),
        },
        &key(),
        HoldSet::load(&loc).await.unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains(&on_user.id), "{err}");
    holds::remove_hold(&loc, &on_user.id, "settled", "legal", now)
        .await
        .unwrap();

    let on_tenant = holds::add_hold(&loc, "tenant0", None, "audit", "legal", now)
        .await
        .unwrap();
    let all = {
        let mut a = all;
        a.extend(objects(&loc, "_holds").await);
        a
    };
    let run = erasure_run(
        HoldSet::load(&loc).await.unwrap(),
        ErasureMode::Pseudonymize,
        None,
    );
    let err = maintainer(&loc, 64, false)
        .erase(&run, &())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::LegalHold { hold_id, .. } if *hold_id == on_tenant.id),
        "{err}"
    );
    assert_eq!(objects(&loc, "").await, all, "nothing changed");

    // A reason naming the subject in clear is refused: the receipt must not.
    let err = ErasureRun::new(
        ErasureRequest {
            user_id: SUBJECT.into(),
            tenant: Some("tenant1".into()),
            mode: ErasureMode::Delete,
            request: format!("ticket for {SUBJECT}"),
        },
        &key(),
        HoldSet::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("only by its hash"), "{err}");
}

// ---- crashes: a child process (this test binary) aborted at each step of a batch ----

const CHILD_ENV: &str = "GENAI_STORE_MAINT_CHILD";

/// Child side, with a failpoint armed: erases the subject (delete mode, one file per commit),
/// or (`GENAI_STORE_MAINT_OP=compact`) compacts every partition.
#[test]
fn maintenance_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let fp = std::env::var("GENAI_STORE_FAILPOINT").unwrap();
    let op = std::env::var("GENAI_STORE_MAINT_OP").unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let loc = StoreLocation::local(Path::new(&dir)).unwrap();
        genai_audit_store::failpoint::arm(&fp);
        println!("ARMED");
        if op == "compact" {
            maintainer(&loc, 1, false)
                .compact(&compact_all(), &())
                .await
                .unwrap();
        } else {
            let run = erasure_run(HoldSet::default(), ErasureMode::Delete, None);
            maintainer(&loc, 1, false).erase(&run, &()).await.unwrap();
        }
        println!("FINISHED");
    });
}

fn run_child(dir: &Path, failpoint: &str) -> String {
    run_child_op(dir, failpoint, "erase")
}

fn run_child_op(dir: &Path, failpoint: &str, op: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "maintenance::maintenance_crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env("GENAI_STORE_FAILPOINT", failpoint)
        .env("GENAI_STORE_MAINT_OP", op)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{failpoint}: the child must abort\n{text}"
    );
    assert!(
        text.contains(&format!("failpoint {failpoint}: aborting")),
        "{failpoint}\n{text}"
    );
    text
}

#[test]
fn a_crash_at_each_step_of_a_batch_is_invisible_to_readers_and_the_next_run_completes_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for fp in genai_audit_store::failpoint::MAINTENANCE_POINTS {
        let dir = tempfile::tempdir().unwrap();
        let loc = StoreLocation::local(dir.path()).unwrap();
        let before = rt.block_on(async {
            filled(&loc, 300).await;
            rows(&loc).await
        });
        run_child(dir.path(), fp);
        rt.block_on(async {
            // Readers see each row at most once (`rows` checks), every other user's row once.
            let mid = rows(&loc).await;
            for (id, row) in &before {
                if row.get("user_id") != SUBJECT {
                    assert_eq!(mid.get(id), Some(row), "{fp}: {id}");
                }
            }
            let erased = before.len() - mid.len();
            let expect_erased =
                matches!(*fp, "maintenance:after_commit" | "maintenance:after_delete");
            assert_eq!(
                erased > 0,
                expect_erased,
                "{fp}: {erased} rows erased at the crash"
            );

            // The next run finishes the job and leaves nothing behind.
            let run = erasure_run(HoldSet::default(), ErasureMode::Delete, None);
            maintainer(&loc, 1, false).erase(&run, &()).await.unwrap();
            let after = rows(&loc).await;
            for (id, row) in &before {
                assert_eq!(
                    after.contains_key(id),
                    row.get("user_id") != SUBJECT,
                    "{fp}: {id}"
                );
            }
            assert_tidy(&loc).await;
        });
    }
}

#[test]
fn a_crash_at_each_step_of_a_compaction_loses_and_doubles_nothing_and_the_next_run_completes_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for fp in genai_audit_store::failpoint::MAINTENANCE_POINTS {
        let dir = tempfile::tempdir().unwrap();
        let loc = StoreLocation::local(dir.path()).unwrap();
        let before = rt.block_on(async {
            filled(&loc, 600).await;
            rows(&loc).await
        });
        run_child_op(dir.path(), fp, "compact");
        rt.block_on(async {
            // Every row exactly once (`rows` fails on a second copy), unchanged.
            assert_eq!(rows(&loc).await, before, "{fp}");
            let report = maintainer(&loc, 1, false)
                .compact(&compact_all(), &())
                .await
                .unwrap();
            // The crashed partition is either committed (finished by recovery) or not (merged
            // now); the other five are merged by this run.
            let expect = if matches!(*fp, "maintenance:after_commit" | "maintenance:after_delete") {
                5
            } else {
                6
            };
            assert_eq!(report.partitions, expect, "{fp}: {report:?}");
            assert_eq!(rows(&loc).await, before, "{fp}");
            assert_eq!(Snapshot::load(&loc).await.unwrap().files.len(), 6, "{fp}");
            assert_tidy(&loc).await;
        });
    }
}

// ---- races ----

/// Progress that, at the first file done, commits the next maintenance number behind the run's
/// back, as a concurrent run would.
struct Interloper {
    loc: StoreLocation,
    fired: AtomicBool,
    rt: tokio::runtime::Handle,
}

impl Progress for Interloper {
    fn file_done(&self) {
        if self.fired.swap(true, Ordering::SeqCst) {
            return;
        }
        let loc = self.loc.clone();
        let handle = self.rt.clone();
        std::thread::spawn(move || {
            handle.block_on(async {
                let snap = Snapshot::load(&loc).await.unwrap();
                let n = snap
                    .collectors
                    .get("maintenance")
                    .map_or(1, |c| c.last_commit + 1);
                create_commit(&loc, &foreign_commit(n)).await.unwrap();
            })
        })
        .join()
        .unwrap();
    }
}

fn foreign_commit(n: u64) -> Commit {
    Commit {
        version: MANIFEST_VERSION,
        collector_id: "maintenance".into(),
        commit: n,
        kind: "erasure".into(),
        wal_first: None,
        wal_last: None,
        added: Vec::new(),
        removed: Vec::new(),
        reason: Some("subject=00 mode=delete request=other".into()),
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_loses_its_commit_number_replans_and_leaves_no_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 300).await;
    let before = rows(&loc).await;

    // create_commit: the same commit again is a retry; a different one is a lost race.
    create_commit(&loc, &foreign_commit(1)).await.unwrap();
    let mut retry = foreign_commit(1);
    retry.created_at = "later".into();
    create_commit(&loc, &retry).await.unwrap();
    let mut other = foreign_commit(1);
    other.reason = Some("something else".into());
    let err = create_commit(&loc, &other).await.unwrap_err();
    assert!(matches!(err, Error::CommitTaken { commit: 1, .. }), "{err}");

    let interloper = Interloper {
        loc: loc.clone(),
        fired: AtomicBool::new(false),
        rt: tokio::runtime::Handle::current(),
    };
    let run = erasure_run(HoldSet::default(), ErasureMode::Pseudonymize, None);
    let report = maintainer(&loc, 64, false)
        .erase(&run, &interloper)
        .await
        .unwrap();
    assert!(interloper.fired.load(Ordering::SeqCst));
    // Commit 1 and 2 are foreign; the run lost 2, replanned and won 3.
    assert_eq!(report.commits, [3]);
    let after = rows(&loc).await;
    assert_eq!(after.len(), before.len());
    assert!(after.values().all(|r| r.get("user_id") != SUBJECT));
    assert_tidy(&loc).await;
}

/// Erasures (delete mode, two files per commit) of each of `users`, running concurrently.
fn spawn_erasures(
    loc: &StoreLocation,
    users: &[&str],
) -> Vec<tokio::task::JoinHandle<genai_audit_store::Result<MaintenanceReport>>> {
    users
        .iter()
        .map(|u| {
            let loc = loc.clone();
            let run = ErasureRun::new(
                ErasureRequest {
                    user_id: (*u).to_owned(),
                    tenant: None,
                    mode: ErasureMode::Delete,
                    request: "DSR".into(),
                },
                &key(),
                HoldSet::default(),
            )
            .unwrap();
            tokio::spawn(async move { maintainer(&loc, 2, false).erase(&run, &()).await })
        })
        .collect()
}

/// `after` holds every row of `before` unchanged except those of `users`, which are gone.
fn assert_only_erased(
    before: &BTreeMap<String, Row>,
    after: &BTreeMap<String, Row>,
    users: &[&str],
) {
    for (id, row) in before {
        let erased = users.contains(&row.get("user_id"));
        assert_eq!(!after.contains_key(id), erased, "{id}");
        if !erased {
            assert_eq!(&after[id], row);
        }
    }
    assert!(
        after.keys().all(|id| before.contains_key(id)),
        "no new rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_erasures_of_different_users_all_complete_without_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 600).await;
    let before = rows(&loc).await;
    let users = ["user-1", "user-2", "user-3", "user-4"];
    for t in spawn_erasures(&loc, &users) {
        let report = t.await.unwrap().unwrap();
        assert!(report.rows_deleted > 0, "{report:?}");
    }
    assert_only_erased(&before, &rows(&loc).await, &users);
    assert_tidy(&loc).await;
}

/// Compaction of every partition of the test store (all days are closed).
fn compact_all() -> CompactOptions {
    CompactOptions {
        tenant: None,
        before: date(DAY0 + 10),
        min_files: 2,
        max_file_rows: 1_000_000,
    }
}

/// Progress of an erasure that, once every planned file is read and rewritten (nothing
/// committed yet), runs a whole compaction of the store to completion, as a concurrent
/// `genai-audit compact` would. The erasure has then read every file it needs, so only the
/// commit protocol can tell it that they were replaced.
struct CompactBehindTheBack {
    loc: StoreLocation,
    collector_id: &'static str,
    planned: AtomicU64,
    done: AtomicU64,
    fired: AtomicBool,
    rt: tokio::runtime::Handle,
}

impl Progress for CompactBehindTheBack {
    fn planned(&self, files: u64) {
        self.planned.store(files, Ordering::SeqCst);
        self.done.store(0, Ordering::SeqCst);
    }

    fn file_done(&self) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if done < self.planned.load(Ordering::SeqCst) || self.fired.swap(true, Ordering::SeqCst) {
            return;
        }
        let loc = self.loc.clone();
        let id = self.collector_id;
        let handle = self.rt.clone();
        std::thread::spawn(move || {
            handle.block_on(async {
                let opts = MaintenanceOptions {
                    collector_id: id.into(),
                    ..MaintenanceOptions::default()
                };
                let report = Maintainer::new(loc, opts)
                    .unwrap()
                    .compact(&compact_all(), &())
                    .await
                    .unwrap();
                assert_eq!(report.partitions, 6, "{report:?}");
            })
        })
        .join()
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_partitions_and_a_second_run_has_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 600).await;
    let before = rows(&loc).await;
    assert_eq!(Snapshot::load(&loc).await.unwrap().files.len(), 12);

    let dry = maintainer(&loc, 64, true)
        .compact(&compact_all(), &())
        .await
        .unwrap();
    assert_eq!((dry.partitions, dry.files_in, dry.files_out), (6, 12, 6));
    assert!(dry.commits.is_empty());
    assert_eq!(rows(&loc).await, before, "a dry run changes nothing");

    // A run limited to 3 files merges one partition (2 files) and leaves the rest.
    let limited = Maintainer::new(
        loc.clone(),
        MaintenanceOptions {
            max_files: 3,
            ..MaintenanceOptions::default()
        },
    )
    .unwrap()
    .compact(&compact_all(), &())
    .await
    .unwrap();
    assert_eq!((limited.partitions, limited.files_remaining), (1, 10));

    let report = maintainer(&loc, 64, false)
        .compact(&compact_all(), &())
        .await
        .unwrap();
    assert_eq!(
        (report.partitions, report.files_in, report.rows),
        (5, 10, 500)
    );
    let snap = Snapshot::load(&loc).await.unwrap();
    assert_eq!(snap.files.len(), 6, "one file per partition");
    let commits = load_commits(&loc).await.unwrap();
    let compactions: Vec<&Commit> = commits.iter().filter(|c| c.kind == "compaction").collect();
    assert_eq!(compactions.len(), 6);
    assert!(compactions.iter().all(|c| c.collector_id == "maintenance"
        && c.removed.len() == 2
        && c.reason.as_deref().is_some_and(|r| r.contains("unchanged"))));
    assert_eq!(rows(&loc).await, before, "every row unchanged, none twice");
    assert_tidy(&loc).await;

    let again = maintainer(&loc, 64, false)
        .compact(&compact_all(), &())
        .await
        .unwrap();
    assert_eq!((again.partitions, again.commits.len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_groups_of_at_most_max_file_rows_and_leaves_full_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    // 600 records in files of 10 rows: 10 files in each of the 6 partitions.
    Committer::new(loc.clone(), "import")
        .unwrap()
        .with_max_file_rows(10)
        .commit_records(records(600), "import")
        .await
        .unwrap();
    let before = rows(&loc).await;
    let opts = CompactOptions {
        max_file_rows: 35,
        ..compact_all()
    };
    // Per partition: three groups of three files (30 rows; a fourth would pass 35), the tenth
    // file alone is left as it is.
    let report = maintainer(&loc, 64, false)
        .compact(&opts, &())
        .await
        .unwrap();
    assert_eq!(
        (
            report.partitions,
            report.files_in,
            report.files_out,
            report.rows
        ),
        (6, 54, 18, 540)
    );
    assert_eq!(report.commits.len(), 18);
    let snap = Snapshot::load(&loc).await.unwrap();
    let mut sizes: Vec<u64> = snap.files.values().map(|f| f.rows).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [[10; 6].as_slice(), &[30; 18]].concat());
    assert_eq!(rows(&loc).await, before);
    assert_tidy(&loc).await;

    // 30-row files cannot pair up under 35 rows: nothing left to merge.
    let again = maintainer(&loc, 64, false)
        .compact(&opts, &())
        .await
        .unwrap();
    assert_eq!((again.files_in, again.commits.len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_overtaken_by_a_compaction_replans_and_no_erased_row_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 600).await;
    let before = rows(&loc).await;
    let compactor = CompactBehindTheBack {
        loc: loc.clone(),
        collector_id: "maintenance",
        planned: AtomicU64::new(0),
        done: AtomicU64::new(0),
        fired: AtomicBool::new(false),
        rt: tokio::runtime::Handle::current(),
    };
    let run = erasure_run(HoldSet::default(), ErasureMode::Delete, None);
    // The erasure has read and rewritten a file when the compaction replaces every file and
    // commits first: the erasure loses its commit number, replans on the compacted files and
    // erases there.
    let report = maintainer(&loc, 64, false)
        .erase(&run, &compactor)
        .await
        .unwrap();
    assert!(compactor.fired.load(Ordering::SeqCst));
    assert!(report.rows_deleted > 0, "{report:?}");
    // `rows` fails on a record id seen twice.
    assert_only_erased(&before, &rows(&loc).await, &[SUBJECT]);
    assert_tidy(&loc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_erasures_running_together_keep_every_row_once_and_erase_the_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    filled(&loc, 600).await;
    let before = rows(&loc).await;
    let users = ["user-1", "user-2", "user-3"];
    let compaction = {
        let loc = loc.clone();
        tokio::spawn(async move {
            maintainer(&loc, 64, false)
                .compact(&compact_all(), &())
                .await
        })
    };
    for t in spawn_erasures(&loc, &users) {
        let report = t.await.unwrap().unwrap();
        assert!(report.rows_deleted > 0, "{report:?}");
    }
    compaction.await.unwrap().unwrap();
    assert_only_erased(&before, &rows(&loc).await, &users);
    assert_tidy(&loc).await;
}

// ---- S3 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_erasure_on_s3() {
    let moto = crate::s3::Moto::start();
    moto.create_bucket("maint");
    let loc = crate::s3::s3_location(moto.port(), "maint", "audit/root");
    let recs = filled(&loc, 300).await;
    let cutoff = DAY0 + 3;
    let run = RetentionRun::new(policy(1), date(cutoff), None, HoldSet::default());
    let report = maintainer(&loc, 4, false)
        .apply_retention(&run, &())
        .await
        .unwrap();
    assert!(
        report.files_deleted > 0 && report.files_rewritten > 0,
        "{report:?}"
    );
    let after = rows(&loc).await;
    let want: BTreeSet<&String> = recs
        .iter()
        .filter(|r| !expired_at(r, cutoff))
        .map(|r| &r.record_id)
        .collect();
    assert_eq!(after.keys().collect::<BTreeSet<_>>(), want);
    assert_tidy(&loc).await;

    let erase = erasure_run(HoldSet::default(), ErasureMode::Pseudonymize, None);
    let report = maintainer(&loc, 4, false).erase(&erase, &()).await.unwrap();
    assert!(report.rows_changed > 0);
    let erased = rows(&loc).await;
    assert_eq!(erased.len(), after.len());
    assert!(
        erased
            .values()
            .all(|r| r.cols.values().all(|v| !v.contains(SUBJECT)))
    );
    assert_eq!(
        erasure::receipts(&loc, erase.subject_hash())
            .await
            .unwrap()
            .len(),
        report.commits.len()
    );
    assert_tidy(&loc).await;
}
