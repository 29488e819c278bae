//! Errors point at the SQL.

use genai_audit_query::render_error;

use crate::common::{TestStore, fixture_records};

#[tokio::test]
async fn errors_are_shown_at_their_place_in_the_sql() {
    let store = TestStore::new();
    store.commit(fixture_records()).await;
    let engine = store.engine().await;

    // A planning error: DataFusion's diagnostic, its place and its suggestion.
    let sql = "SELECT provider\nFROM audit_log\nWHERE provder = 'openai'";
    let err = engine.sql(sql).await.unwrap_err();
    let shown = render_error(&err, sql);
    assert_eq!(
        shown.lines().take(5).collect::<Vec<_>>(),
        [
            "error: column 'provder' not found",
            " --> line 3, column 7",
            "  |",
            "3 | WHERE provder = 'openai'",
            "  |       ^^^^^^^",
        ],
        "{shown}"
    );
    assert!(
        shown.contains("note: possible column audit_log.provider"),
        "{shown}"
    );
    assert!(!shown.contains("Valid fields"), "{shown}");

    // A syntax error: sqlparser's message, its place shown under it.
    let sql = "SELECT (1 FROM audit_log";
    let err = engine.sql(sql).await.unwrap_err();
    let shown = render_error(&err, sql);
    assert!(
        shown.starts_with("error: syntax error: Expected: ), found: FROM\n"),
        "{shown}"
    );
    assert!(
        shown.contains("1 | SELECT (1 FROM audit_log\n  |           ^"),
        "{shown}"
    );

    // No place known: the message alone, without DataFusion's 63-column list.
    let sql = "SELECT provider, sum(total_cost_usd) FROM audit_log GROUP BY provder";
    let err = engine.sql(sql).await.unwrap_err();
    let shown = render_error(&err, sql);
    assert!(
        shown.contains("provder") && !shown.contains("Valid fields"),
        "{shown}"
    );

    // Not a DataFusion error: the message as is.
    let err = engine.sql("DROP TABLE audit_log").await.unwrap_err();
    assert!(render_error(&err, "").starts_with("error: the audit log is read-only"));
}
