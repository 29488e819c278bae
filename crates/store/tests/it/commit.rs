//! One-shot commits: idempotent imports and compaction that changes no row.

use std::collections::BTreeSet;

use arrow_array::{Array, StringArray};
use futures::TryStreamExt;
use genai_audit_store::maintenance::{CompactOptions, Maintainer, MaintenanceOptions};
use genai_audit_store::manifest::Snapshot;
use genai_audit_store::parquet_file::decode;
use genai_audit_store::{Committer, StoreLocation};
use object_store::ObjectStoreExt;

use crate::common::synthetic_records;

async fn all_rows(loc: &StoreLocation) -> Vec<String> {
    let snap = Snapshot::load(loc).await.unwrap();
    let mut rows = Vec::new();
    for key in snap.files.keys() {
        let bytes = loc
            .store
            .get(&loc.path(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        for b in decode(bytes).unwrap() {
            // Every column, rendered: "no row changed" means all of them.
            let cols: Vec<_> = (0..b.num_columns()).map(|i| b.column(i).clone()).collect();
            for row in 0..b.num_rows() {
                let id = b
                    .column_by_name("record_id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .value(row)
                    .to_owned();
                let values: Vec<String> = cols
                    .iter()
                    .map(|c| arrow_cast_display(c.as_ref(), row))
                    .collect();
                rows.push(format!("{id}|{}", values.join("|")));
            }
        }
    }
    rows.sort();
    rows
}

fn arrow_cast_display(a: &dyn Array, row: usize) -> String {
    format!("{:?}", a.slice(row, 1))
}

#[tokio::test]
async fn importing_the_same_records_twice_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    let c = Committer::new(loc.clone(), "import").unwrap();
    let records = synthetic_records(500, 2, 3, 7);
    let first = c.commit_records(records.clone(), "import").await.unwrap();
    assert_eq!(
        (first.commit, first.records, first.already_present),
        (1, 500, 0)
    );
    let again = c.commit_records(records.clone(), "import").await.unwrap();
    assert_eq!(
        (again.commit, again.records, again.already_present),
        (0, 0, 500)
    );
    // A mix: half old, half new, plus a duplicate inside the batch.
    let mut mixed = synthetic_records(250, 2, 3, 7);
    mixed.extend(synthetic_records(100, 2, 3, 8));
    mixed.push(mixed[300].clone());
    let third = c.commit_records(mixed, "import").await.unwrap();
    assert_eq!(
        (third.commit, third.records, third.already_present),
        (2, 100, 251)
    );
    assert_eq!(Snapshot::load(&loc).await.unwrap().rows(), 600);
}

#[tokio::test]
async fn compaction_merges_small_files_without_changing_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(dir.path()).unwrap();
    let writer = Committer::new(loc.clone(), "z-writer")
        .unwrap()
        .with_max_file_rows(30);
    for seed in 0..4 {
        writer
            .commit_records(synthetic_records(100, 1, 1, 20 + seed), "import")
            .await
            .unwrap();
    }
    let snap = Snapshot::load(&loc).await.unwrap();
    let (tenant, dt) = {
        let f = snap.files.values().next().unwrap();
        (f.tenant.clone(), f.dt.clone())
    };
    let before_files = snap.partition(&tenant, &dt).len();
    let partition_rows: u64 = snap.partition(&tenant, &dt).iter().map(|f| f.rows).sum();
    assert!(before_files >= 4, "{before_files}");
    let before = all_rows(&loc).await;

    // The compactor's id sorts before the writer's: removals must hold regardless.
    let compactor = Maintainer::new(
        loc.clone(),
        MaintenanceOptions {
            collector_id: "a-compactor".into(),
            ..MaintenanceOptions::default()
        },
    )
    .unwrap();
    let day = chrono::NaiveDate::parse_from_str(&dt, "%Y-%m-%d").unwrap();
    // The partition's day is closed; the day after (if written) is not compacted.
    let opts = CompactOptions {
        tenant: Some(tenant.clone()),
        before: day.succ_opt().unwrap(),
        min_files: 2,
        max_file_rows: 1_000_000,
    };
    let removed: Vec<String> = snap
        .partition(&tenant, &dt)
        .iter()
        .map(|f| f.key.clone())
        .collect();
    let report = compactor.compact(&opts, &()).await.unwrap();
    assert_eq!(
        (
            report.partitions,
            report.files_in,
            report.files_out,
            report.rows
        ),
        (1, before_files as u64, 1, partition_rows)
    );

    let after_snap = Snapshot::load(&loc).await.unwrap();
    assert_eq!(after_snap.partition(&tenant, &dt).len(), 1);
    assert_eq!(
        all_rows(&loc).await,
        before,
        "every column of every row is unchanged"
    );
    // The old objects are gone from the store, not just from the listing, and so is the intent.
    for key in &removed {
        assert!(
            loc.store.head(&loc.path(key)).await.is_err(),
            "{key} still exists"
        );
    }
    let leftovers: Vec<_> = loc
        .store
        .list(Some(&loc.path("_maintenance")))
        .try_collect()
        .await
        .unwrap();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let keys: BTreeSet<_> = after_snap
        .partition(&tenant, &dt)
        .iter()
        .map(|f| f.key.clone())
        .collect();
    assert!(keys.iter().all(|k| k.contains("a-compactor-c")), "{keys:?}");
    // Nothing left to do.
    let again = compactor.compact(&opts, &()).await.unwrap();
    assert_eq!(again.commits, Vec::<u64>::new());
    assert_eq!(again.partitions, 0);
}
