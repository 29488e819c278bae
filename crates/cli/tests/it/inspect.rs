//! `genai-audit inspect` (shares the OTLP file reading with `import`).

use std::collections::BTreeSet;

use super::*;

#[test]
fn inspect_walks_a_directory_and_prints_every_genai_span() {
    let out = bin().arg("inspect").arg(fixtures()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let ids: Vec<String> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["record_id"].as_str().unwrap().to_owned()
        })
        .collect();
    // Each capture is there as .json and as .pb: inspect prints both.
    assert_eq!(ids.len(), 32, "{}", describe(&out));
    let unique: BTreeSet<String> = ids.into_iter().collect();
    let want: BTreeSet<String> = expected().into_iter().map(|e| e.record_id).collect();
    assert_eq!(unique, want);
}

#[test]
fn inspect_reports_a_bad_file_and_prints_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, "hello").unwrap();
    let good = fixtures().join("openai-v2/chat_basic.pb");
    let out = bin().arg("inspect").arg(&bad).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: unknown file type", bad.display())),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
