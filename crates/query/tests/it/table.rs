//! The `audit_log` table: values, partition columns, pruning, visibility of commits.

use std::collections::BTreeSet;

use genai_audit_query::datafusion::arrow::array::{Array, AsArray};
use genai_audit_query::datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type};
use genai_audit_query::{QueryOptions, audit_log_schema};
use genai_audit_store::layout::day_of;
use genai_audit_store::maintenance::{CompactOptions, Maintainer, MaintenanceOptions};
use genai_audit_store::manifest::Snapshot;

use crate::common::{
    DAY_US, DAY0_US, TestStore, expected, fixture_records, record_id_of, scalar, synthetic_records,
};

#[tokio::test]
async fn values_come_back_with_costs_as_decimals_and_partition_columns() {
    let store = TestStore::new();
    let records = fixture_records();
    store.commit(records.clone()).await;
    let engine = store.engine().await;
    assert_eq!(engine.summary().rows, 16);
    assert_eq!(
        scalar(&engine, "SELECT count(*) FROM audit_log").await,
        "16"
    );

    let id = record_id_of(&expected("openai-v2", "chat_basic"));
    let record = records.iter().find(|r| r.record_id == id).unwrap();
    let df = engine
        .sql(&format!(
            "SELECT total_cost_usd, input_tokens, tenant, dt, start_time, pii_types \
             FROM audit_log WHERE record_id = '{id}'"
        ))
        .await
        .unwrap();
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.unwrap();
    let batch = batches.iter().find(|b| b.num_rows() > 0).unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(
        schema
            .field_with_name("total_cost_usd")
            .unwrap()
            .data_type(),
        &DataType::Decimal128(38, 12)
    );
    assert_eq!(
        schema.field_with_name("tenant").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        schema.field_with_name("dt").unwrap().data_type(),
        &DataType::Date32
    );

    let cost = batch.column(0).as_primitive::<Decimal128Type>();
    let expected_cost = record.total_cost_usd.expect("chat_basic is priced");
    assert_eq!(cost.value(0), expected_cost.raw());
    assert!(expected_cost.raw() > 0);
    assert_eq!(
        batch
            .column(1)
            .as_primitive::<genai_audit_query::datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        1234
    );
    assert_eq!(batch.column(2).as_string::<i32>().value(0), &*record.tenant);
    let dt = batch.column(3).as_primitive::<Date32Type>().value(0);
    assert_eq!(i64::from(dt), record.start_time_us.div_euclid(DAY_US));
    assert_eq!(
        scalar(
            &engine,
            &format!("SELECT CAST(dt AS VARCHAR) FROM audit_log WHERE record_id = '{id}'")
        )
        .await,
        day_of(record.start_time_us).format("%Y-%m-%d").to_string()
    );
    assert!(batch.column(5).is_valid(0));

    // The table schema is the file schema then the partition columns.
    let table = audit_log_schema();
    assert_eq!(
        table.fields().len(),
        genai_audit_core::schema::COLUMNS.len() + 1
    );
    // Cost in dollars, to the 10⁻¹² digit.
    assert_eq!(
        scalar(
            &engine,
            &format!("SELECT total_cost_usd FROM audit_log WHERE record_id = '{id}'")
        )
        .await,
        expected_cost.to_string()
    );
}

#[tokio::test]
async fn a_one_day_start_time_range_plans_only_that_days_files() {
    let store = TestStore::new();
    // 3 days × 2 tenants, two commits: 12 files.
    store.commit(synthetic_records(120, 2, 3, 1)).await;
    store.commit(synthetic_records(60, 2, 3, 2)).await;
    let engine = store.engine().await;
    let all: Vec<String> = engine.files().iter().map(|f| f.key.clone()).collect();
    assert_eq!(all.len(), 12);

    let day1 = DAY0_US + DAY_US;
    let ts = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let dt1 = day_of(day1).format("%Y-%m-%d").to_string();
    let one_day = format!(
        "SELECT count(*) FROM audit_log WHERE start_time >= TIMESTAMP '{}' AND start_time < TIMESTAMP '{}'",
        ts(day1),
        ts(day1 + DAY_US)
    );
    let planned = engine.planned_files(&one_day).await.unwrap();
    let day_files: Vec<String> = all
        .iter()
        .filter(|k| k.contains(&format!("/dt={dt1}/")))
        .cloned()
        .collect();
    assert_eq!(day_files.len(), 4);
    assert_eq!(planned, day_files);
    assert_eq!(scalar(&engine, &one_day).await, "60"); // 180 records, a third per day

    // EXPLAIN shows the same: only dt1's partition directories.
    let explain = engine.collect(&format!("EXPLAIN {one_day}")).await.unwrap();
    let text = genai_audit_query::datafusion::arrow::util::pretty::pretty_format_batches(&explain)
        .unwrap()
        .to_string();
    assert!(text.contains(&format!("dt={dt1}")), "{text}");
    for other in [DAY0_US, DAY0_US + 2 * DAY_US] {
        let dt = day_of(other).format("%Y-%m-%d").to_string();
        assert!(!text.contains(&format!("dt={dt}")), "{dt} planned:\n{text}");
    }

    // Partition columns and IN lists prune as well; a filter the manifest cannot decide reads all.
    let planned = engine
        .planned_files(&format!(
            "SELECT * FROM audit_log WHERE tenant IN ('tenant1') AND dt = '{dt1}'"
        ))
        .await
        .unwrap();
    assert_eq!(planned.len(), 2);
    assert!(planned.iter().all(|k| k.contains("tenant=tenant1/")));
    let planned = engine
        .planned_files("SELECT * FROM audit_log WHERE user_id = 'user-1'")
        .await
        .unwrap();
    assert_eq!(planned.len(), 12);
    // A range outside every file: nothing is read at all.
    let none = format!(
        "SELECT count(*) FROM audit_log WHERE start_time < TIMESTAMP '{}'",
        ts(DAY0_US - DAY_US)
    );
    assert!(engine.planned_files(&none).await.unwrap().is_empty());
    assert_eq!(scalar(&engine, &none).await, "0");
}

#[tokio::test]
async fn point_lookups_and_aggregates_agree_with_the_records() {
    let store = TestStore::new();
    let records = synthetic_records(300, 3, 2, 7);
    store.commit(records.clone()).await;
    let engine = store.engine().await;
    let user = records[17].user_id.clone().unwrap();
    let want = records
        .iter()
        .filter(|r| r.user_id.as_deref() == Some(&user))
        .count();
    assert_eq!(
        scalar(
            &engine,
            &format!("SELECT count(*) FROM audit_log WHERE user_id = '{user}'")
        )
        .await,
        want.to_string()
    );
    let trace = &records[42].trace_id;
    assert_eq!(
        scalar(
            &engine,
            &format!("SELECT record_id FROM audit_log WHERE trace_id = '{trace}'")
        )
        .await,
        records[42].record_id
    );
    let per_tenant = engine
        .collect("SELECT tenant, count(*) AS n FROM audit_log GROUP BY tenant ORDER BY tenant")
        .await
        .unwrap();
    let rows: usize = per_tenant.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    // Array functions on the LIST columns (nested_expressions).
    let with_email = records
        .iter()
        .filter(|r| r.pii_types.iter().any(|t| t == "EMAIL"))
        .count();
    assert_eq!(
        scalar(
            &engine,
            "SELECT count(*) FROM audit_log WHERE array_has(pii_types, 'EMAIL')"
        )
        .await,
        with_email.to_string()
    );
}

#[tokio::test]
async fn a_tenant_restricted_engine_sees_only_that_tenant() {
    let store = TestStore::new();
    store.commit(synthetic_records(90, 3, 2, 3)).await;
    let engine = store
        .engine_with(QueryOptions {
            tenant: Some("tenant2".into()),
            ..QueryOptions::default()
        })
        .await;
    assert_eq!(
        engine.summary().tenants,
        BTreeSet::from(["tenant2".to_owned()])
    );
    assert_eq!(
        scalar(&engine, "SELECT count(*) FROM audit_log").await,
        "30"
    );
    assert_eq!(
        scalar(&engine, "SELECT count(DISTINCT tenant) FROM audit_log").await,
        "1"
    );
}

#[tokio::test]
async fn a_new_commit_is_visible_to_the_next_query_and_only_commits_count() {
    let store = TestStore::new();
    store.commit(synthetic_records(40, 1, 1, 10)).await;
    let engine = store.engine().await;
    let count = "SELECT count(*) FROM audit_log";
    let count_rows =
        "SELECT count(*) FROM audit_log WHERE input_tokens IS NOT NULL OR input_tokens IS NULL";
    assert_eq!(scalar(&engine, count).await, "40");

    // Committed after the engine opened: seen by the next statement, by statistics and by scan.
    store.commit(synthetic_records(25, 1, 1, 11)).await;
    assert_eq!(scalar(&engine, count).await, "65");
    assert_eq!(scalar(&engine, count_rows).await, "65");

    // A Parquet file in the table's directory that no commit names is not part of the table.
    let some = engine.files()[0].clone();
    let dir = store.dir.path();
    let stray = some.key.replace(".parquet", "-stray.parquet");
    std::fs::copy(dir.join(&some.key), dir.join(&stray)).unwrap();
    assert_eq!(scalar(&engine, count_rows).await, "65");
    assert!(!engine.files().iter().any(|f| f.key == stray));

    // Compaction replaces files: the next query reads the new ones only (the old are deleted).
    let before: BTreeSet<String> = engine.files().iter().map(|f| f.key.clone()).collect();
    let day = day_of(DAY0_US);
    let report = Maintainer::new(store.loc.clone(), MaintenanceOptions::default())
        .unwrap()
        .compact(
            &CompactOptions {
                tenant: Some("tenant0".into()),
                before: day.succ_opt().unwrap(),
                min_files: 2,
                max_file_rows: 1_000_000,
            },
            &(),
        )
        .await
        .unwrap();
    assert_eq!(report.files_in, 2);
    assert_eq!(scalar(&engine, count_rows).await, "65");
    let after: BTreeSet<String> = engine.files().iter().map(|f| f.key.clone()).collect();
    assert!(before.is_disjoint(&after), "{before:?} {after:?}");
    let snapshot = Snapshot::load(&store.loc).await.unwrap();
    assert_eq!(after, snapshot.files.keys().cloned().collect());
}

#[tokio::test]
async fn an_empty_store_is_an_empty_table() {
    let store = TestStore::new();
    let engine = store.engine().await;
    let summary = engine.summary();
    assert_eq!((summary.files, summary.rows, summary.days), (0, 0, None));
    assert_eq!(scalar(&engine, "SELECT count(*) FROM audit_log").await, "0");
    let rows = engine
        .collect("SELECT * FROM audit_log WHERE user_id = 'x'")
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    // Once something is committed, the same engine sees it.
    store.commit(synthetic_records(5, 1, 1, 4)).await;
    assert_eq!(scalar(&engine, "SELECT count(*) FROM audit_log").await, "5");
}

#[tokio::test]
async fn a_trace_id_lookup_is_answered_by_the_bloom_filters_and_row_pushdown() {
    let store = TestStore::new();
    let records = synthetic_records(300, 3, 2, 7);
    store.commit(records.clone()).await;
    let engine = store.engine().await;
    let trace = &records[42].trace_id;
    let batches = engine
        .collect(&format!(
            "EXPLAIN ANALYZE SELECT record_id FROM audit_log WHERE trace_id = '{trace}'"
        ))
        .await
        .unwrap();
    let text = genai_audit_query::datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    // Six files (3 tenants × 2 days) of one row group each: trace ids are random, so min/max
    // statistics keep all six, and the bloom filters keep only the one holding the id…
    assert!(
        text.contains("row_groups_pruned_bloom_filter=6 total → 1 matched"),
        "{text}"
    );
    // …where filter pushdown decodes record_id for the matching row only.
    assert!(text.contains("pushdown_rows_matched=1,"), "{text}");
}

/// Text columns are read as views of the Parquet dictionary: equal strings of a batch share
/// one view (what the in-process compliance fold relies on to number users and models
/// without hashing each row's string), and no row's string is copied.
#[tokio::test]
async fn text_columns_are_views_of_the_dictionary() {
    let store = TestStore::new();
    let mut records = synthetic_records(400, 1, 1, 3);
    for (k, r) in records.iter_mut().enumerate() {
        // Longer than the 12 bytes a view holds inline, so the view points into a buffer.
        r.user_id = Some(format!("a-user-id-longer-than-twelve-bytes-{}", k % 3));
    }
    store.commit(records).await;
    let engine = store.engine().await;
    let batches = engine
        .sql("SELECT user_id FROM audit_log")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut rows = 0;
    for batch in &batches {
        assert_eq!(batch.column(0).data_type(), &DataType::Utf8View);
        let users = batch.column(0).as_string_view();
        let mut views = std::collections::HashMap::new();
        for row in 0..users.len() {
            let first = *views.entry(users.value(row)).or_insert(users.views()[row]);
            assert_eq!(users.views()[row], first, "row {row}: {}", users.value(row));
        }
        assert!(views.len() <= 3);
        rows += users.len();
    }
    assert_eq!(rows, 400);
}
