//! `genai-audit query`: the binary on a store filled by `import` from the real captures.

use std::io::Write;
use std::process::Stdio;

use super::*;

/// A store holding the fixtures (imported with the tests' key), in a temporary directory.
fn imported_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = import(&store, &[fixtures().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    (dir, store)
}

/// Runs `genai-audit query --store <store> ARGS…` in `cwd`.
fn query_in(cwd: &Path, store: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(cwd)
        .arg("query")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn json_lines_csv_and_table_outputs() {
    let (dir, store) = imported_store();
    let sql =
        "SELECT record_id, tenant, dt, total_cost_usd, pii_types FROM audit_log ORDER BY record_id";
    let out = query_in(dir.path(), &store, &["--format", "json", sql]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let ids: BTreeSet<String> = rows
        .iter()
        .map(|r| r["record_id"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = expected().into_iter().map(|e| e.record_id).collect();
    assert_eq!(ids, want);
    assert!(
        rows.iter()
            .all(|r| r["tenant"] == "default" && r["dt"].is_string())
    );
    assert!(rows.iter().all(|r| r.get("total_cost_usd").is_some()));

    let out = query_in(dir.path(), &store, &["--format", "csv", sql]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().next(),
        Some("record_id,tenant,dt,total_cost_usd,pii_types")
    );
    assert_eq!(text.lines().count(), 17);

    let out = query_in(dir.path(), &store, &["SELECT count(*) AS n FROM audit_log"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("| 16 |"), "{text}");
    assert!(text.contains("1 row in set. Query took "), "{text}");

    // Several statements from a file, and one Parquet result to a file.
    let script = dir.path().join("q.sql");
    std::fs::write(
        &script,
        "-- costs per provider\nSELECT provider, sum(total_cost_usd) FROM audit_log GROUP BY provider;\nSELECT 2 AS two;\n",
    )
    .unwrap();
    let out = query_in(dir.path(), &store, &["-f", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout(&out).contains("openai") && stdout(&out).contains("| 2   |"),
        "{}",
        describe(&out)
    );
    let parquet = dir.path().join("out.parquet");
    let out = query_in(
        dir.path(),
        &store,
        &[
            "--format",
            "parquet",
            "--output",
            parquet.to_str().unwrap(),
            "SELECT * FROM audit_log",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let back =
        genai_audit_store::parquet_file::decode(std::fs::read(&parquet).unwrap().into()).unwrap();
    assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 16);
    // Text as plain UTF-8 strings, as in the store's files (the engine reads views), so that
    // any Parquet reader takes the result.
    let schema = back[0].schema();
    for name in ["user_id", "call_id", "tenant"] {
        assert_eq!(
            schema.field_with_name(name).unwrap().data_type(),
            &genai_audit_query::datafusion::arrow::datatypes::DataType::Utf8,
            "{name}"
        );
    }
    assert!(matches!(
        schema.field_with_name("pii_types").unwrap().data_type(),
        genai_audit_query::datafusion::arrow::datatypes::DataType::List(item) if item.data_type() == &genai_audit_query::datafusion::arrow::datatypes::DataType::Utf8
    ));
    let out = query_in(dir.path(), &store, &["--format", "parquet", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
}

#[test]
fn audit_hash_finds_the_call_a_prompt_was_sent_on() {
    let (dir, store) = imported_store();
    let truth = std::fs::read_to_string(fixtures().join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["library"] == "openai-v2" && v["case"] == "chat_pii")
        .unwrap();
    let prompt = format!(
        "You are a concise, helpful assistant.\n{}",
        truth["truth"]["user_prompt"].as_str().unwrap()
    );
    let sql = format!(
        "SELECT record_id FROM audit_log WHERE prompt_hash = audit_hash('{}')",
        prompt.replace('\'', "''")
    );
    let out = query_in(dir.path(), &store, &["--format", "csv", &sql]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l == expected_id("openai-v2", "chat_pii")),
        "{}",
        describe(&out)
    );

    // Without a key: a plain error, and no key file is created.
    let out = bin()
        .current_dir(dir.path())
        .env_remove("GENAI_AUDIT_HASH_KEY")
        .args(["query", "--store"])
        .arg(&store)
        .arg(&sql)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no hash key available: set GENAI_AUDIT_HASH_KEY or --hash-key-file"),
        "{stderr}"
    );
    assert!(!dir.path().join("genai-audit-keys").exists());
}

#[test]
fn writes_are_refused_and_sql_errors_point_at_the_sql() {
    let (dir, store) = imported_store();
    for sql in [
        "DROP TABLE audit_log",
        "DELETE FROM audit_log",
        "CREATE TABLE t AS SELECT 1",
    ] {
        let out = query_in(dir.path(), &store, &[sql]);
        assert_eq!(out.status.code(), Some(1), "{sql}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("read-only"),
            "{}",
            describe(&out)
        );
    }
    let out = query_in(dir.path(), &store, &["SELECT count(*) FROM audit_log"]);
    assert!(stdout(&out).contains("| 16 "), "{}", describe(&out));

    let out = query_in(dir.path(), &store, &["SELECT provder FROM audit_log"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("provder"),
        "{stderr}"
    );
    assert!(stderr.contains("line 1, column 8"), "{stderr}");
}

#[test]
fn a_missing_or_empty_store_says_nothing_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let out = query_in(dir.path(), &missing, &["SELECT 1"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "no audit records in {}: nothing committed yet",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(!missing.exists(), "a query must not create a store");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = query_in(dir.path(), &empty, &["SELECT count(*) FROM audit_log"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing committed yet"),
        "{}",
        describe(&out)
    );
}

#[test]
fn the_prompt_runs_multi_line_statements_and_describes_columns() {
    let (dir, store) = imported_store();
    let mut child = bin()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .arg("query")
        .arg("--store")
        .arg(&store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n\n  FROM audit_log\n  WHERE tenant = 'default';\n\\timing\n\\d\n\\d audit_log\nSELECT nme FROM audit_log;\n\\q\nSELECT 'not reached';\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("| 16 |"), "{text}");
    assert!(text.contains("Timing is off."), "{text}");
    assert!(text.contains("audit_log  (16 rows in"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("prompt_hash") && l.contains("HMAC")),
        "{text}"
    );
    assert!(!text.contains("not reached"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nme"),
        "{}",
        describe(&out)
    );
}

/// Without the `cluster` feature, `--cluster` says how to get it instead of running locally.
#[cfg(not(feature = "cluster"))]
#[test]
fn cluster_needs_the_cluster_feature() {
    let (dir, store) = imported_store();
    let out = query_in(
        dir.path(),
        &store,
        &["--cluster", "df://localhost:50050", "SELECT 1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo feature `cluster`"), "{err}");
    assert!(out.stdout.is_empty());
}
