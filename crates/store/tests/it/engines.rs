//! Other engines read the files: DuckDB and pyarrow (installed from `tests/requirements.txt`)
//! read a store written by the writer, and see the same values with the intended types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Days, NaiveDate};
use genai_audit_core::AuditRecord;
use genai_audit_store::layout::day_of;
use genai_audit_store::{StoreLocation, Writer, WriterConfig};
use serde_json::{Value, json};

use crate::common::{fixture_records, synthetic_records};

/// Runs `py/read_store.py` on a store directory and returns its JSON. Fails the test (never
/// skips it) when Python, DuckDB or pyarrow is missing.
fn read_with_engines(root: &std::path::Path) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/py/read_store.py");
    let hint = "run `python3 -m pip install -r tests/requirements.txt` (duckdb, pyarrow) before `cargo test`";
    let out = Command::new("python3")
        .arg(&script)
        .arg(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): this test needs Python 3; {hint}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = stdout.lines().find(|l| l.starts_with("MISSING")) {
        panic!("a Python package is missing ({line}); {hint}");
    }
    assert!(
        out.status.success(),
        "read_store.py failed ({}):\n{stderr}",
        out.status
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON from read_store.py: {e}"))
}

/// What an engine must show for a record, rendered as `read_store.py` renders values.
fn expected_row(r: &AuditRecord) -> Value {
    let start = DateTime::from_timestamp_micros(r.start_time_us).unwrap();
    let retention = r.retention_until_days.map(|d| {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let day = if d >= 0 {
            epoch.checked_add_days(Days::new(d as u64))
        } else {
            epoch.checked_sub_days(Days::new(d.unsigned_abs().into()))
        };
        day.unwrap().format("%Y-%m-%d").to_string()
    });
    json!({
        "tenant": &*r.tenant,
        "dt": day_of(r.start_time_us).format("%Y-%m-%d").to_string(),
        "record_id": r.record_id,
        "start_time": start.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
        "start_time_unix_nano": r.start_time_unix_nano,
        "total_cost_usd": r.total_cost_usd.map(|c| c.to_string()),
        "input_tokens": r.input_tokens,
        "pii_types": r.pii_types,
        // Nullable list: an empty one is stored as null.
        "finish_reasons": (!r.finish_reasons.is_empty()).then_some(&r.finish_reasons),
        "streaming": r.streaming,
        "retention_until": retention,
        "data_classification": r.data_classification.as_str(),
    })
}

/// pyarrow's names for a list of strings (the item field's name and nullability vary).
const LIST_OF_STRINGS: &[&str] = &[
    "list<item: string not null>",
    "list<element: string not null>",
    "list<item: string>",
    "list<element: string>",
];

/// The types each engine must report, by column.
fn expected_types(engine: &str) -> BTreeMap<&'static str, &'static [&'static str]> {
    let t: &[(&str, &[&str])] = match engine {
        "pyarrow" => &[
            // Partition columns come from the path (pyarrow infers no date from it).
            ("tenant", &["string"]),
            ("dt", &["string"]),
            ("record_id", &["string"]),
            ("start_time", &["timestamp[us, tz=UTC]"]),
            ("start_time_unix_nano", &["int64"]),
            ("total_cost_usd", &["decimal128(38, 12)"]),
            ("input_tokens", &["int64"]),
            ("pii_types", LIST_OF_STRINGS),
            ("finish_reasons", LIST_OF_STRINGS),
            ("streaming", &["bool"]),
            ("retention_until", &["date32[day]"]),
            ("data_classification", &["string"]),
        ],
        "duckdb" => &[
            ("tenant", &["VARCHAR"]),
            ("dt", &["DATE"]),
            ("record_id", &["VARCHAR"]),
            ("start_time", &["TIMESTAMP WITH TIME ZONE"]),
            ("start_time_unix_nano", &["BIGINT"]),
            ("total_cost_usd", &["DECIMAL(38,12)"]),
            ("input_tokens", &["BIGINT"]),
            ("pii_types", &["VARCHAR[]"]),
            ("finish_reasons", &["VARCHAR[]"]),
            ("streaming", &["BOOLEAN"]),
            ("retention_until", &["DATE"]),
            ("data_classification", &["VARCHAR"]),
        ],
        other => panic!("unknown engine {other}"),
    };
    t.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_and_pyarrow_read_the_same_values_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::local(&dir.path().join("store")).unwrap();
    let root = loc.local_dir.clone().unwrap();
    let (w, _) = Writer::open(loc, WriterConfig::new("engines", dir.path().join("wal")))
        .await
        .unwrap();
    let fixtures = fixture_records();
    let mut records = fixtures.clone();
    // Two tenants over several days, next to the captures' own tenant and day.
    records.extend(synthetic_records(120, 2, 3, 21));
    let partitions: std::collections::BTreeSet<_> = records
        .iter()
        .map(|r| (r.tenant.clone(), day_of(r.start_time_us)))
        .collect();
    assert!(partitions.len() >= 5, "{partitions:?}");
    for chunk in records.chunks(25) {
        w.append(chunk.to_vec()).await.unwrap();
    }
    w.flush().await.unwrap();
    w.shutdown().await.unwrap();

    let out = read_with_engines(&root);
    let want: BTreeMap<&str, Value> = records
        .iter()
        .map(|r| (r.record_id.as_str(), expected_row(r)))
        .collect();
    let chat_basic = fixtures
        .iter()
        .find(|r| r.span_name == "openai.chat" && r.total_tokens == Some(1801))
        .unwrap();
    for engine in ["pyarrow", "duckdb"] {
        let got = &out[engine];
        println!("{engine} types: {}", got["types"]);
        assert_eq!(
            got["count"].as_u64(),
            Some(records.len() as u64),
            "{engine} sees every row once"
        );
        let rows = got["rows"].as_object().unwrap();
        assert_eq!(rows.len(), records.len(), "{engine}: distinct record ids");

        for (col, allowed) in expected_types(engine) {
            let ty = got["types"][col].as_str().unwrap_or("<missing>");
            assert!(
                allowed.contains(&ty),
                "{engine} reads {col} as {ty}, expected one of {allowed:?} (versions {})",
                out["versions"]
            );
        }
        // The columns of the file schema and the partition columns, nothing else.
        let columns = got["types"].as_object().unwrap().len();
        let file_columns = genai_audit_store::parquet_file::file_schema()
            .fields()
            .len();
        assert_eq!(columns, file_columns + 2, "{engine}: {}", got["types"]);

        for (id, expected) in &want {
            let row = &rows[*id];
            assert_eq!(row, expected, "{engine}: record {id}");
        }
        assert_eq!(
            rows[&chat_basic.record_id]["total_cost_usd"], "0.006704000000",
            "{engine}: traceloop chat_basic cost"
        );
    }
}
