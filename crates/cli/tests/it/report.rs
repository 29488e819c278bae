//! `genai-audit report`: the binary on a store filled by `import` from synthetic OTLP traffic
//! (300 chat and embeddings calls of 20 users over three days), its figures checked against
//! plain SQL run through `genai-audit query`.

use genai_audit_core::testkit::{Rng, genai_request};
use prost::Message;

use super::*;

/// 2026-03-01T00:00:00Z in nanoseconds.
const MARCH_1_NS: u64 = 1_772_323_200_000_000_000;

/// A store holding 300 synthetic calls from 2026-03-01 to 2026-03-03, imported by the binary.
fn synthetic_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let step = 3 * 86_400_000_000_000 / 300;
    let req = genai_request(&mut Rng::new(3), 300, MARCH_1_NS, step, 20);
    let file = dir.path().join("traffic.pb");
    std::fs::write(&file, req.encode_to_vec()).unwrap();
    let store = dir.path().join("store");
    let out = import(&store, &[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    (dir, store)
}

fn report(store: &Path, args: &[&str]) -> Output {
    bin()
        .arg("report")
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

/// One value of plain SQL through `genai-audit query --format csv`.
fn sql_value(store: &Path, sql: &str) -> String {
    let out = bin()
        .arg("query")
        .arg("--store")
        .arg(store)
        .args(["--format", "csv", sql])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().nth(1).unwrap_or_default().to_owned()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(out)))
}

#[test]
fn compliance_report_agrees_with_plain_sql() {
    let (_dir, store) = synthetic_store();
    let out = report(
        &store,
        &[
            "compliance",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-03",
            "--format",
            "json",
        ],
    );
    let v = json_of(&out);
    let truth = sql_value(
        &store,
        "SELECT count(*), sum(input_tokens), CAST(sum(total_cost_usd) AS VARCHAR), \
         count(DISTINCT user_id), sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) \
         FROM audit_log WHERE span_kind IN ('llm_call', 'embeddings')",
    );
    let t = &v["totals"];
    let got = format!(
        "{},{},{},{},{}",
        t["requests"],
        t["input_tokens"],
        t["cost_usd"].as_str().unwrap(),
        t["unique_users"],
        t["errors"]
    );
    assert_eq!(got, truth);
    assert_eq!(t["requests"], 300);
    assert_eq!(v["days"].as_array().unwrap().len(), 3);
    assert_eq!(v["scope"]["to"], "2026-03-04T00:00:00Z");

    // One day, Markdown on stdout.
    let out = report(
        &store,
        &["compliance", "--from", "2026-03-02", "--to", "2026-03-02"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let md = String::from_utf8(out.stdout).unwrap();
    let day2 = sql_value(
        &store,
        "SELECT count(*) FROM audit_log WHERE dt = DATE '2026-03-02' \
         AND span_kind IN ('llm_call', 'embeddings')",
    );
    assert!(md.starts_with("# Compliance report"), "{md}");
    assert!(
        md.contains("- **Period:** 2026-03-02 (UTC), all tenants"),
        "{md}"
    );
    assert!(
        md.contains(&format!("| Requests (provider calls) | {day2} |")),
        "{md}"
    );
}

#[test]
fn html_and_csv_reports_go_to_files() {
    let (dir, store) = synthetic_store();
    let html = dir.path().join("out/compliance.html");
    std::fs::create_dir_all(html.parent().unwrap()).unwrap();
    let out = report(
        &store,
        &[
            "compliance",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--format",
            "html",
            "--output",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("default-src 'none'"));
    for id in [
        "chart-cost-per-day",
        "chart-requests-per-model",
        "chart-latency",
    ] {
        assert!(page.contains(&format!(r#"<svg id="{id}""#)), "{id}");
    }
    // 31 days listed (zeros after the 3rd), one bar each.
    assert!(page.contains("2026-03-31"));

    let csv = dir.path().join("cost.csv");
    let out = report(
        &store,
        &[
            "cost",
            "--by",
            "model",
            "--format",
            "csv",
            "-o",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("model,requests,input_tokens,output_tokens,cost_usd,unpriced_requests,errors")
    );
    let models = sql_value(
        &store,
        "SELECT count(DISTINCT response_model) FROM audit_log",
    );
    assert_eq!(lines.count().to_string(), models);
}

#[test]
fn cost_by_user_and_tenant() {
    let (_dir, store) = synthetic_store();
    let v = json_of(&report(
        &store,
        &[
            "cost",
            "--by",
            "user",
            "--format",
            "json",
            "--from",
            "2026-03-01",
        ],
    ));
    assert_eq!(v["report"], "cost");
    assert_eq!(v["by"], "user");
    assert_eq!(v["rows"].as_array().unwrap().len(), 20);
    let top = &v["rows"][0];
    let truth = sql_value(
        &store,
        "SELECT user_id, CAST(sum(total_cost_usd) AS VARCHAR) AS c FROM audit_log \
         GROUP BY user_id ORDER BY sum(total_cost_usd) DESC LIMIT 1",
    );
    assert_eq!(
        format!(
            "{},{}",
            top["key"].as_str().unwrap(),
            top["cost_usd"].as_str().unwrap()
        ),
        truth
    );

    let v = json_of(&report(
        &store,
        &[
            "cost", "--by", "tenant", "--format", "json", "--tenant", "default",
        ],
    ));
    assert_eq!(v["rows"][0]["key"], "default");
    assert_eq!(v["rows"][0]["requests"], 300);
    assert_eq!(v["scope"]["tenant"], "default");
}

#[test]
fn subject_report_by_user_and_by_hash() {
    let (_dir, store) = synthetic_store();
    let v = json_of(&report(
        &store,
        &["subject", "--user", "user-3", "--format", "json"],
    ));
    let n = sql_value(
        &store,
        "SELECT count(*) FROM audit_log WHERE user_id = 'user-3'",
    );
    assert_eq!(v["records"].as_array().unwrap().len().to_string(), n);
    assert!(n.parse::<u64>().unwrap() > 0);
    // The keyed hash under the tests' key (GENAI_AUDIT_HASH_KEY), as `audit_hash` computes it.
    let hash = sql_value(&store, "SELECT audit_hash('user-3')");
    assert_eq!(v["subject"]["subject_hash"], hash);
    assert!(
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["user_id"] == "user-3" && r.get("prompt_hash").is_none())
    );
    assert_eq!(
        v["categories"]["personal_data"],
        serde_json::json!(["user_id", "session_id"])
    );
    assert!(v["retention"]["earliest"].is_string());

    // Only the hash (the raw id erased): no records, and the report says so.
    let out = report(&store, &["subject", "--subject-hash", &hash]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains("No record of this subject in the period."),
        "{md}"
    );
    assert!(md.contains(&format!("keyed hash {hash}")), "{md}");
}

#[test]
fn bad_invocations_are_refused_plainly() {
    let (dir, store) = synthetic_store();
    let out = report(&store, &["compliance", "--from", "2026-03-01"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--to"),
        "{}",
        describe(&out)
    );

    let out = report(
        &store,
        &["compliance", "--from", "2026-03-05", "--to", "2026-03-01"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the period is empty"),
        "{}",
        describe(&out)
    );

    let out = report(
        &store,
        &["compliance", "--from", "March", "--to", "2026-03-01"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neither a date"),
        "{}",
        describe(&out)
    );

    let out = report(&store, &["subject"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    let out = report(&store, &["cost", "--by", "region"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    let missing = dir.path().join("nothing-here");
    let out = report(&missing, &["cost", "--by", "model"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no audit records"),
        "{}",
        describe(&out)
    );
    assert!(!missing.exists(), "a report must not create a store");
}

/// Without the `cluster` feature, `report --cluster` says how to get it instead of running
/// locally (with it, `crates/query/tests/it/cluster.rs` runs every report on a cluster).
#[cfg(not(feature = "cluster"))]
#[test]
fn report_cluster_needs_the_cluster_feature() {
    let (_dir, store) = synthetic_store();
    let out = report(
        &store,
        &["cost", "--by", "model", "--cluster", "df://localhost:50050"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo feature `cluster`"), "{err}");
    assert!(out.stdout.is_empty());
}
