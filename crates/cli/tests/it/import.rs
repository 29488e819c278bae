//! `genai-audit import`.

use std::collections::BTreeSet;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The first line of a fixture, rewritten by `edit`.
fn edited_line(rel: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(fixtures().join(rel)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    edit(&mut v);
    serde_json::to_string(&v).unwrap()
}

/// The one span of a one-span traces request.
fn span_of(v: &mut serde_json::Value) -> &mut serde_json::Value {
    &mut v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
}

fn ids(rows: &[Stored]) -> BTreeSet<String> {
    rows.iter().map(|r| r.record_id.clone()).collect()
}

#[test]
fn importing_the_fixture_directory_writes_every_genai_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // No key in the environment: a key file is created beside the store, never inside it.
    let out = bin()
        .current_dir(dir.path())
        .env_remove("GENAI_AUDIT_HASH_KEY")
        .arg("import")
        .arg("--store")
        .arg(&store)
        .arg(fixtures())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(dir.path().join("genai-audit-keys/hash.key").is_file());
    assert!(
        !store.join("keys").exists(),
        "the key must not travel with the store"
    );
    let s = summary(&out);
    // 16 captures as .json and .pb, plus the logs capture in both encodings.
    assert_eq!(count(&s, "files read"), 34, "{}", describe(&out));
    // README.md (by name) and expected.jsonl (JSON, but not OTLP).
    assert_eq!(count(&s, "files ignored"), 2, "{}", describe(&out));
    assert_eq!(count(&s, "files failed"), 0);
    assert_eq!(count(&s, "malformed lines"), 0);
    assert_eq!(count(&s, "requests"), 34);
    assert_eq!(count(&s, "spans seen"), 32);
    assert_eq!(count(&s, "records written"), 16, "{}", describe(&out));
    assert_eq!(count(&s, "records already present"), 0);
    assert_eq!(count(&s, "duplicate spans"), 16);
    assert_eq!(count(&s, "log records seen"), 2);
    assert!(count(&s, "log contents merged") >= 1, "{}", describe(&out));
    assert_eq!(count(&s, "log contents unmatched"), 0);

    let (files, rows) = stored(&store);
    assert!(!files.is_empty());
    assert_eq!(rows.len(), 16);
    let want: BTreeSet<String> = expected().iter().map(|e| e.record_id.clone()).collect();
    assert_eq!(ids(&rows), want);
    for e in expected() {
        let row = rows.iter().find(|r| r.record_id == e.record_id).unwrap();
        assert_eq!(row.pii_detected, e.pii, "{} {}", e.library, e.case);
        assert_eq!(row.tenant, "default");
    }
    assert!(
        rows.iter()
            .any(|r| r.record_id == expected_id("openai-v2", "chat_pii") && r.pii_detected)
    );
}

#[test]
fn importing_again_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = import(dir.path(), &[fixtures().to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let (files_before, rows_before) = stored(dir.path());

    let again = import(dir.path(), &[fixtures().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    let s = summary(&again);
    assert_eq!(count(&s, "records written"), 0, "{}", describe(&again));
    assert_eq!(s["records written"], "0 (0 commits)");
    assert_eq!(count(&s, "records already present"), 16);
    let (files_after, rows_after) = stored(dir.path());
    assert_eq!(files_after, files_before);
    assert_eq!(ids(&rows_after), ids(&rows_before));
    assert_eq!(rows_after.len(), 16);
}

#[test]
fn gzip_copies_import_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let src = fixtures();
    for lib in ["openai-v2", "openai-v2/logs", "traceloop-openai"] {
        std::fs::create_dir_all(input.join(lib)).unwrap();
        for entry in std::fs::read_dir(src.join(lib)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.file_name().unwrap().to_str().unwrap();
                let gz = gzip(&std::fs::read(&path).unwrap());
                std::fs::write(input.join(lib).join(format!("{name}.gz")), gz).unwrap();
            }
        }
    }
    // Compressed content is recognised by its magic bytes, whatever the name.
    std::fs::rename(
        input.join("openai-v2/chat_basic.json.gz"),
        input.join("openai-v2/chat_basic.json"),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = import(&store, &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let s = summary(&out);
    assert_eq!(count(&s, "files read"), 34, "{}", describe(&out));
    assert_eq!(count(&s, "records written"), 16, "{}", describe(&out));
    let (_, rows) = stored(&store);
    let want: BTreeSet<String> = expected().iter().map(|e| e.record_id.clone()).collect();
    assert_eq!(ids(&rows), want);
    let pii = rows
        .iter()
        .find(|r| r.record_id == expected_id("openai-v2", "chat_pii"))
        .unwrap();
    assert!(pii.pii_detected);
}

#[test]
fn a_garbage_line_is_reported_with_its_line_and_the_rest_imports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.json");
    let basic = std::fs::read_to_string(fixtures().join("openai-v2/chat_basic.json")).unwrap();
    let stream =
        std::fs::read_to_string(fixtures().join("traceloop-openai/chat_stream.json")).unwrap();
    std::fs::write(
        &file,
        format!(
            "{}\n{{\"resourceSpans\": [truncated\n\n{}\n",
            basic.trim_end(),
            stream.trim_end()
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = import(&store, &[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2: ", file.display())),
        "{}",
        describe(&out)
    );
    let s = summary(&out);
    assert_eq!(count(&s, "malformed lines"), 1);
    assert_eq!(count(&s, "records written"), 2, "{}", describe(&out));
    let (_, rows) = stored(&store);
    assert_eq!(
        ids(&rows),
        BTreeSet::from([
            expected_id("openai-v2", "chat_basic"),
            expected_id("traceloop-openai", "chat_stream"),
        ])
    );
}

#[test]
fn unknown_missing_and_corrupt_files_are_reported_and_the_others_import() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not telemetry").unwrap();
    let missing = dir.path().join("missing.json");
    let corrupt = dir.path().join("corrupt.json.gz");
    let gz = gzip(&std::fs::read(fixtures().join("openai-v2/embeddings.json")).unwrap());
    std::fs::write(&corrupt, &gz[..gz.len() / 2]).unwrap();
    let bad_pb = dir.path().join("bad.pb");
    std::fs::write(&bad_pb, [0x0a, 0xff, 0xff, 0xff]).unwrap();
    let good = fixtures().join("traceloop-openai/chat_basic.pb");

    let store = dir.path().join("store");
    let out = import(
        &store,
        &[
            notes.to_str().unwrap(),
            missing.to_str().unwrap(),
            corrupt.to_str().unwrap(),
            bad_pb.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (path, what) in [
        (&notes, ": unknown file type"),
        (&missing, ": "),
        (&corrupt, ":1: "),
        (&bad_pb, ":1: "),
    ] {
        let needle = format!("{}{what}", path.display());
        assert!(stderr.contains(&needle), "{needle}\n{}", describe(&out));
    }
    let s = summary(&out);
    assert_eq!(count(&s, "files failed"), 4, "{}", describe(&out));
    assert_eq!(count(&s, "records written"), 1);
    let (_, rows) = stored(&store);
    assert_eq!(
        ids(&rows),
        BTreeSet::from([expected_id("traceloop-openai", "chat_basic")])
    );
}

#[test]
fn tenant_flag_puts_every_record_under_that_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let out = import(
        dir.path(),
        &[
            "--tenant",
            "acme",
            fixtures().join("openai-v2").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (files, rows) = stored(dir.path());
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.tenant == "acme"));
    assert!(
        files.iter().all(|k| k.contains("/tenant=acme/")),
        "{files:?}"
    );
    // Log content follows the forced tenant too.
    let pii = rows
        .iter()
        .find(|r| r.record_id == expected_id("openai-v2", "chat_pii"))
        .unwrap();
    assert!(pii.pii_detected);
    assert_eq!(count(&summary(&out), "log contents unmatched"), 0);

    let bad = import(
        dir.path(),
        &["--tenant", "../etc", fixtures().to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tenant"));
}

#[test]
fn the_store_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .env("GENAI_AUDIT_STORE_URL", dir.path())
        .arg("import")
        .arg(fixtures().join("traceloop-openai/chat_pii.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (_, rows) = stored(dir.path());
    assert_eq!(
        ids(&rows),
        BTreeSet::from([expected_id("traceloop-openai", "chat_pii")])
    );
}

#[test]
fn log_content_is_merged_across_chunks_whatever_the_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // The PII span without its own content: only the log records carry it. Its file sorts
    // before the logs file, and every record is its own commit.
    let bare = edited_line("openai-v2/chat_pii.json", |v| {
        let attrs = span_of(v)["attributes"].as_array_mut().unwrap();
        attrs.retain(|a| !a["key"].as_str().unwrap().ends_with("messages"));
    });
    std::fs::write(input.join("a_spans.json"), format!("{bare}\n")).unwrap();
    std::fs::copy(
        fixtures().join("openai-v2/chat_basic.json"),
        input.join("b_basic.json"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("openai-v2/logs/chat_pii.json"),
        input.join("z_logs.json"),
    )
    .unwrap();

    // Without the logs, the bare span has no PII.
    let alone = dir.path().join("alone");
    let out = import(&alone, &[input.join("a_spans.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!stored(&alone).1[0].pii_detected);

    let store = dir.path().join("store");
    let out = import(&store, &["--chunk-records", "1", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let s = summary(&out);
    assert_eq!(s["records written"], "2 (2 commits)", "{}", describe(&out));
    assert_eq!(count(&s, "log contents merged"), 1);
    assert_eq!(count(&s, "log contents unmatched"), 0);
    let (_, rows) = stored(&store);
    let pii = rows
        .iter()
        .find(|r| r.record_id == expected_id("openai-v2", "chat_pii"))
        .unwrap();
    assert!(pii.pii_detected);

    // Logs whose span is elsewhere are counted as unmatched.
    let other = dir.path().join("other");
    let out = import(&other, &[input.join("z_logs.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(count(&summary(&out), "log contents unmatched"), 1);
}

#[test]
fn skipped_spans_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.jsonl");
    let no_trace = edited_line("openai-v2/chat_basic.json", |v| {
        span_of(v)["traceId"] = "".into();
    });
    let not_genai = edited_line("openai-v2/chat_stream.json", |v| {
        let span = span_of(v);
        span["name"] = "GET /health".into();
        span["attributes"] = serde_json::json!([]);
    });
    let metrics = r#"{"resourceMetrics":[]}"#;
    std::fs::write(&file, format!("{no_trace}\n{not_genai}\n{metrics}\n")).unwrap();
    let out = import(dir.path(), &[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let s = summary(&out);
    assert_eq!(count(&s, "spans seen"), 2);
    assert_eq!(count(&s, "spans skipped"), 2);
    assert_eq!(count(&s, "spans skipped (invalid_trace_id)"), 1, "{s:?}");
    assert_eq!(count(&s, "spans skipped (not_genai)"), 1, "{s:?}");
    assert_eq!(s["requests"], "3 (2 traces, 0 logs, 1 other signals)");
    assert_eq!(count(&s, "records written"), 0);
}

#[test]
fn a_protobuf_stream_as_the_collector_writes_it_imports() {
    let dir = tempfile::tempdir().unwrap();
    let mut stream = Vec::new();
    for rel in [
        "openai-v2/chat_pii.pb",
        "openai-v2/logs/chat_pii.pb",
        "traceloop-openai/embeddings.pb",
    ] {
        let msg = std::fs::read(fixtures().join(rel)).unwrap();
        stream.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
        stream.extend_from_slice(&msg);
    }
    let file = dir.path().join("collector.pb");
    std::fs::write(&file, stream).unwrap();
    let store = dir.path().join("store");
    let out = import(&store, &[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let s = summary(&out);
    assert_eq!(s["requests"], "3 (2 traces, 1 logs, 0 other signals)");
    assert_eq!(count(&s, "records written"), 2);
    assert_eq!(count(&s, "log contents merged"), 1);
}

#[test]
fn an_unreachable_store_is_fatal_before_anything_is_read() {
    // The endpoint comes from the AWS_* environment (nothing listens on port 9).
    let out = bin()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args(["import", "--store", "s3://audit/prefix"])
        .arg(fixtures().join("openai-v2/chat_basic.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reading the store s3://audit/prefix") && stderr.contains("127.0.0.1:9"),
        "{}",
        describe(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_file_of_garbage_reports_a_bounded_number_of_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("garbage.json");
    std::fs::write(&file, "not json\n".repeat(100)).unwrap();
    let out = import(&dir.path().join("store"), &[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 21, "{stderr}");
    assert!(stderr.contains(&format!("{}:20: invalid JSON", file.display())));
    assert!(stderr.contains("80 more malformed lines not shown"));
    assert_eq!(count(&summary(&out), "malformed lines"), 100);
}
