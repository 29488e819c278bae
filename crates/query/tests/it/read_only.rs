//! Nothing an auditor types can change the audit log or the catalog.

use genai_audit_query::Error;

use crate::common::{TestStore, fixture_records, scalar};

#[tokio::test]
async fn statements_that_write_are_refused() {
    let store = TestStore::new();
    store.commit(fixture_records()).await;
    let engine = store.engine().await;
    let out = store.dir.path().join("copy.parquet");
    let refused = [
        "INSERT INTO audit_log SELECT * FROM audit_log".to_owned(),
        "DELETE FROM audit_log WHERE tenant = 'default'".to_owned(),
        "UPDATE audit_log SET user_id = 'x'".to_owned(),
        "TRUNCATE TABLE audit_log".to_owned(),
        "DROP TABLE audit_log".to_owned(),
        "CREATE TABLE t AS SELECT * FROM audit_log".to_owned(),
        "CREATE TABLE t (a INT)".to_owned(),
        "CREATE VIEW v AS SELECT 1".to_owned(),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{}'",
            store.dir.path().display()
        ),
        format!("COPY (SELECT * FROM audit_log) TO '{}'", out.display()),
        "EXPLAIN INSERT INTO audit_log SELECT * FROM audit_log".to_owned(),
    ];
    for sql in &refused {
        match engine.sql(sql).await {
            Err(Error::ReadOnly(why)) => assert!(!why.is_empty()),
            Err(other) => panic!("{sql}: refused for the wrong reason: {other}"),
            Ok(_) => panic!("{sql}: accepted"),
        }
    }
    let msg = engine
        .sql("DROP TABLE audit_log")
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("read-only"), "{msg}");
    assert!(!out.exists());
    // Still there, still whole.
    assert_eq!(
        scalar(&engine, "SELECT count(*) FROM audit_log").await,
        "16"
    );
    // Reading statements work: information_schema, DESCRIBE, SET.
    assert_eq!(
        scalar(
            &engine,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_log'"
        )
        .await,
        "1"
    );
    engine.collect("SHOW COLUMNS FROM audit_log").await.unwrap();
    engine.collect("DESCRIBE audit_log").await.unwrap();
    engine
        .collect("SET datafusion.execution.batch_size = 1024")
        .await
        .unwrap();
    assert_eq!(
        scalar(
            &engine,
            "SELECT count(*) FROM audit_log WHERE start_time IS NOT NULL"
        )
        .await,
        "16"
    );
}
