//! End-to-end tests of the `genai-audit` binary: the real executable on real OTLP captures,
//! with a temporary directory as the store.

#![allow(clippy::unwrap_used)]

mod examples;
mod import;
mod inspect;
mod maintenance;
mod python;
mod query;
mod report;
mod serve;
mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::{Array, BooleanArray, StringArray};
use genai_audit_store::StoreLocation;
use genai_audit_store::manifest::Snapshot;

/// A fixed content hash key, so runs do not create key files unless a test wants one.
const KEY_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";
/// A fixed integrity signing key (seed), for the same reason.
const INTEGRITY_KEY_HEX: &str = "0505050505050505050505050505050505050505050505050505050505050505";

/// `tests/fixtures/otlp` of the workspace.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/otlp")
}

/// The binary with a clean environment for what it reads (store URL, key, log filter).
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genai-audit"));
    cmd.env_remove("GENAI_AUDIT_STORE_URL")
        .env("GENAI_AUDIT_HASH_KEY", KEY_HEX)
        .env("GENAI_AUDIT_INTEGRITY_KEY", INTEGRITY_KEY_HEX)
        .env("GENAI_AUDIT_LOG", "warn");
    cmd
}

/// Runs `genai-audit import --store <store> ARGS…`.
fn import(store: &Path, args: &[&str]) -> Output {
    bin()
        .arg("import")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

/// The exit code, stdout and stderr of a run, for assertion messages.
fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `key: value` lines of an import summary.
fn summary(out: &Output) -> BTreeMap<String, String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The number a summary line starts with (0 when the line is absent).
fn count(summary: &BTreeMap<String, String>, key: &str) -> u64 {
    summary.get(key).map_or(0, |v| {
        v.split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{key}: {v}"))
    })
}

/// One stored row, as read back from the Parquet files.
#[derive(Debug, Clone)]
struct Stored {
    record_id: String,
    tenant: String,
    pii_detected: bool,
}

/// The committed files (by key) and every row in them, read back through the manifest.
fn stored(store: &Path) -> (BTreeSet<String>, Vec<Stored>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loc = StoreLocation::local(store).unwrap();
    let snapshot = rt.block_on(Snapshot::load(&loc)).unwrap();
    let mut rows = Vec::new();
    for f in snapshot.files.values() {
        let bytes = std::fs::read(loc.local_dir.as_ref().unwrap().join(&f.key)).unwrap();
        for batch in genai_audit_store::parquet_file::decode(bytes.into()).unwrap() {
            let col = |name: &str| batch.column_by_name(name).unwrap().clone();
            let ids = col("record_id");
            let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
            let pii = col("pii_detected");
            let pii = pii.as_any().downcast_ref::<BooleanArray>().unwrap();
            for i in 0..batch.num_rows() {
                rows.push(Stored {
                    record_id: ids.value(i).to_owned(),
                    tenant: f.tenant.clone(),
                    pii_detected: pii.is_valid(i) && pii.value(i),
                });
            }
        }
    }
    (snapshot.files.keys().cloned().collect(), rows)
}

/// One line of `expected.jsonl`: a GenAI call span of the fixtures.
#[derive(Debug)]
struct Expected {
    library: String,
    case: String,
    record_id: String,
    pii: bool,
}

/// The 16 GenAI call spans of the fixtures, with their record ids computed as core does.
fn expected() -> Vec<Expected> {
    std::fs::read_to_string(fixtures().join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            Expected {
                library: s("library"),
                case: s("case"),
                record_id: genai_audit_core::normalize::record_id(
                    &const_hex::decode(s("trace_id")).unwrap(),
                    &const_hex::decode(s("span_id")).unwrap(),
                ),
                pii: v["pii_expected"].as_bool().unwrap(),
            }
        })
        .collect()
}

fn expected_id(library: &str, case: &str) -> String {
    expected()
        .into_iter()
        .find(|e| e.library == library && e.case == case)
        .unwrap()
        .record_id
}
