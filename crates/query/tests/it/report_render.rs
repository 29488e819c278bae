//! Rendering reports: every format on the store of `report.rs` plus a call whose model name is
//! markup, and the HTML report rendered in headless Chromium (charts in the DOM, nothing
//! fetched over the network).

use std::path::{Path, PathBuf};
use std::process::Command;

use genai_audit_query::report::{
    self, ComplianceReport, CostBy, ErasureReceipt, ReportFormat, Scope, Subject,
};

use crate::common::{TestStore, hash_key};
use crate::report::{Call, day, period, records, span};

const EVIL: &str = "<script>alert(1)</script>";

/// The report store plus one call to a model named [`EVIL`] on day 1 (cost 0.25).
async fn evil_store() -> (TestStore, genai_audit_query::QueryEngine) {
    let store = TestStore::new();
    let mut recs = records();
    recs.push(span(
        200,
        "openai:evil",
        &Call {
            tenant: "acme",
            user: Some("mallory\"<b>"),
            model: EVIL,
            day: 1,
            second: 50_000,
            input: 1,
            output: 1,
            cost: Some("0.25"),
            duration_ms: 12_000,
            error: false,
            pii: &[],
        },
    ));
    store.commit(recs).await;
    let engine = store.engine().await;
    (store, engine)
}

async fn compliance() -> ComplianceReport {
    let (_store, engine) = evil_store().await;
    let mut r = report::compliance(&engine, &period())
        .await
        .expect("report");
    r.generated_at = "2026-12-01T12:00:00Z".parse().expect("a time");
    r
}

fn render(r: &impl Render, format: ReportFormat) -> String {
    let mut out = Vec::new();
    r.render_to(format, &mut out);
    String::from_utf8(out).expect("utf-8")
}

trait Render {
    fn render_to(&self, format: ReportFormat, out: &mut Vec<u8>);
}

impl Render for ComplianceReport {
    fn render_to(&self, format: ReportFormat, out: &mut Vec<u8>) {
        self.render(format, out).expect("render");
    }
}

impl Render for report::SubjectReport {
    fn render_to(&self, format: ReportFormat, out: &mut Vec<u8>) {
        self.render(format, out).expect("render");
    }
}

impl Render for report::CostReport {
    fn render_to(&self, format: ReportFormat, out: &mut Vec<u8>) {
        self.render(format, out).expect("render");
    }
}

#[tokio::test]
async fn compliance_json_is_stable_and_exact() {
    let r = compliance().await;
    let v: serde_json::Value =
        serde_json::from_str(&render(&r, ReportFormat::Json)).expect("valid JSON");
    assert_eq!(v["report"], "compliance");
    assert_eq!(v["version"], 1);
    assert_eq!(v["generated_at"], "2026-12-01T12:00:00Z");
    assert_eq!(v["scope"]["from"], format!("{}T00:00:00Z", day(0)));
    assert_eq!(v["scope"]["to"], format!("{}T00:00:00Z", day(3)));
    assert_eq!(v["scope"]["tenant"], serde_json::Value::Null);
    assert_eq!(v["totals"]["requests"], 7);
    assert_eq!(v["totals"]["cost_usd"], "0.273000000000");
    assert_eq!(v["latency"]["p50_ms"], 700.0);
    assert_eq!(v["models"][0]["model"], "gpt-4o");
    assert!(
        v["models"]
            .as_array()
            .expect("models")
            .iter()
            .any(|m| m["model"] == EVIL)
    );
    assert_eq!(v["days"][1]["day"], day(1).to_string());
    assert_eq!(v["days"][1]["cost_usd"], "0.255000000000");
    assert_eq!(v["top_users_by_cost"][0]["user_id"], "mallory\"<b>");
    assert_eq!(
        v["pii_types"][0],
        serde_json::json!({"name": "EMAIL", "requests": 2})
    );
    assert_eq!(v["latency_histogram"][7]["label"], "10–30 s");
    assert_eq!(v["latency_histogram"][7]["requests"], 1);
    let members: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for m in [
        "classifications",
        "days",
        "generated_at",
        "latency",
        "latency_histogram",
        "models",
        "pii_types",
        "report",
        "scope",
        "top_users_by_cost",
        "top_users_by_requests",
        "totals",
        "version",
    ] {
        assert!(members.contains(&m), "{m} missing from {members:?}");
    }
}

/// Splits one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("a field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("a field").push(c),
        }
    }
    fields
}

#[tokio::test]
async fn compliance_csv_is_one_long_table() {
    let r = compliance().await;
    let text = render(&r, ReportFormat::Csv);
    let rows: Vec<Vec<String>> = text
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(csv_fields)
        .collect();
    assert_eq!(rows[0], ["section", "key", "metric", "value"]);
    assert!(rows.iter().all(|r| r.len() == 4), "{text}");
    let get = |section: &str, key: &str, metric: &str| -> String {
        rows.iter()
            .find(|r| r[0] == section && r[1] == key && r[2] == metric)
            .unwrap_or_else(|| panic!("no {section},{key},{metric} in\n{text}"))[3]
            .clone()
    };
    assert_eq!(get("totals", "", "cost_usd"), "0.273000000000");
    assert_eq!(get("totals", "", "requests"), "7");
    assert_eq!(get("models", EVIL, "cost_usd"), "0.250000000000");
    assert_eq!(get("top_users_by_cost", "mallory\"<b>", "rank"), "1");
    assert_eq!(get("days", &day(2).to_string(), "unpriced_requests"), "1");
    assert_eq!(get("pii_types", "US_SSN", "requests"), "1");
    assert_eq!(get("classifications", "public", "requests"), "0");
    assert_eq!(get("scope", "", "from"), format!("{}T00:00:00Z", day(0)));
}

#[tokio::test]
async fn compliance_markdown_is_readable_and_escaped() {
    let r = compliance().await;
    let md = render(&r, ReportFormat::Markdown);
    assert!(md.starts_with("# Compliance report\n"), "{md}");
    for want in [
        &format!("- **Period:** {} – {} (UTC), all tenants", day(0), day(2)),
        "| Requests (provider calls) | 7 |",
        "| Total cost | $0.273 |",
        "| Errors | 2 (28.57 %) |",
        "| EMAIL | 2 |",
        "| gpt-4o | 3 | 350 | 150 | $0.0035 | 0 | 0 | 246.7 ms | 250.0 ms | 385.0 ms | 397.0 ms |",
        "| \\<script\\>alert(1)\\</script\\> | 1 |",
        "## Top 10 users by cost",
        "| 1 | mallory\"\\<b\\> | 1 |",
    ] {
        assert!(md.contains(want), "{want:?} not in\n{md}");
    }
    assert!(!md.contains("<script>"));
}

#[tokio::test]
async fn html_escapes_everything_and_loads_nothing() {
    let r = compliance().await;
    let html = render(&r, ReportFormat::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"#
    ));
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "raw markup from the data"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("mallory&quot;&lt;b&gt;"));
    for id in [
        "chart-cost-per-day",
        "chart-requests-per-model",
        "chart-latency",
    ] {
        assert!(html.contains(&format!(r#"<svg id="{id}""#)), "{id}");
    }
    // No reference to anything outside the file (the SVG namespace is a name, not a fetch).
    let without_ns = html.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
    for needle in ["http:", "https:", "//", "src=", "href=", "url(", "@import"] {
        assert!(!without_ns.contains(needle), "{needle} in the HTML");
    }
}

#[tokio::test]
async fn subject_and_cost_render_in_every_format() {
    let (_store, engine) = evil_store().await;
    let key = hash_key();
    let subject = report::subject(
        &engine,
        &Subject::user("alice", Some(&key)),
        &Scope::default(),
    )
    .await
    .expect("report")
    .with_erasures(vec![ErasureReceipt {
        commit: 9,
        collector_id: "erase".into(),
        created_at: "2026-12-02T08:00:00Z".into(),
        mode: "delete".into(),
        subject_hash: report::subject_hash(&key, "alice"),
        reason: "ticket <7>, by mail".into(),
    }]);
    let json: serde_json::Value =
        serde_json::from_str(&render(&subject, ReportFormat::Json)).expect("valid JSON");
    assert_eq!(json["report"], "subject");
    assert_eq!(json["subject"]["user_id"], "alice");
    assert_eq!(
        json["subject"]["subject_hash"],
        report::subject_hash(&key, "alice")
    );
    assert_eq!(json["records"].as_array().expect("records").len(), 5);
    assert_eq!(json["erasures"][0]["mode"], "delete");
    assert_eq!(
        json["retention"]["latest"],
        (day(3) + chrono::Days::new(400)).to_string()
    );

    let csv = render(&subject, ReportFormat::Csv);
    let rows: Vec<Vec<String>> = csv
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(csv_fields)
        .collect();
    assert!(rows.iter().all(|r| r.len() == 4));
    assert!(
        rows.contains(
            &["erasures", "erase/9", "reason", "ticket <7>, by mail"]
                .map(String::from)
                .to_vec()
        )
    );
    let record_rows = rows
        .iter()
        .filter(|r| r[0] == "records" && r[2] == "user_id")
        .count();
    assert_eq!(record_rows, 5);
    assert!(
        rows.iter()
            .any(|r| r[0] == "records" && r[2] == "total_cost_usd" && r[3] == "0.070000000000")
    );

    let md = render(&subject, ReportFormat::Markdown);
    assert!(md.contains("# Subject access report (GDPR Art. 15)"));
    assert!(md.contains("- **PII types found (never the values):** EMAIL"));
    assert!(md.contains("ticket \\<7\\>, by mail"));
    let html = render(&subject, ReportFormat::Html);
    assert!(html.contains("ticket &lt;7&gt;, by mail"));
    assert!(html.contains(r#"<section id="records">"#));

    let cost = report::cost(&engine, &period(), CostBy::Model)
        .await
        .expect("report");
    let csv = render(&cost, ReportFormat::Csv);
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("model,requests,input_tokens,output_tokens,cost_usd,unpriced_requests,errors")
    );
    assert_eq!(
        lines.next(),
        Some(&*format!("{EVIL},1,1,1,0.250000000000,0,0"))
    );
    let md = render(&cost, ReportFormat::Markdown);
    assert!(md.contains("| **Total** | **7** |"), "{md}");
    let html = render(&cost, ReportFormat::Html);
    assert!(html.contains(r#"<svg id="chart-cost""#) && !html.contains("<script"));
    let by_day = report::cost(&engine, &period(), CostBy::Day)
        .await
        .expect("report");
    assert!(render(&by_day, ReportFormat::Html).contains(r#"<rect class="bar""#));
}

/// Debian's `chromium` (or `$CHROMIUM`). scripts/test.sh installs it; without it this test fails
/// rather than pass unchecked.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .expect("headless Chromium is needed to test the HTML report: apt-get install -y chromium (scripts/test.sh does), or set CHROMIUM")
}

/// Runs headless Chromium on `page` with every host unresolvable, logging network activity to
/// `net_log`; returns the serialized DOM (`--dump-dom`) or writes `screenshot`.
fn headless(page: &Path, dir: &Path, net_log: &Path, screenshot: Option<&Path>) -> String {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,3400",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()))
    .arg(format!("--log-net-log={}", net_log.display()))
    .env("HOME", dir);
    match screenshot {
        Some(png) => cmd.arg(format!("--screenshot={}", png.display())),
        None => cmd.arg("--dump-dom"),
    };
    cmd.arg(format!("file://{}", page.display()));
    let out = cmd.output().expect("running chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The URLs the page asked the network stack for: `URL_REQUEST_START_JOB` events of the net log
/// in the page's network partition (`file://`), other than `file://` URLs. Chromium's own
/// background requests (component updates, account checks; unresolvable here) belong to other
/// partitions and are left out.
fn page_requests(net_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log).expect("a net log");
    // Chromium may leave the events array unterminated when it exits.
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("a JSON net log");
    let start_job = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    assert!(start_job.is_u64(), "net log without event type constants");
    let mut urls: Vec<String> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| &e["type"] == start_job)
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("file://"))
        })
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|u| !u.starts_with("file://"))
        .map(str::to_owned)
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

#[tokio::test]
async fn html_report_renders_in_headless_chromium_without_network() {
    let r = compliance().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let page = dir.path().join("compliance.html");
    std::fs::write(&page, render(&r, ReportFormat::Html)).expect("write the page");

    let net_log = dir.path().join("net.json");
    let dom = headless(&page, dir.path(), &net_log, None);
    for id in [
        "chart-cost-per-day",
        "chart-requests-per-model",
        "chart-latency",
    ] {
        assert!(
            dom.contains(&format!(r#"<svg id="{id}""#)),
            "{id} not in the DOM:\n{dom}"
        );
    }
    // 3 days + 4 models + 10 latency buckets.
    assert_eq!(dom.matches(r#"<rect class="bar""#).count(), 3 + 4 + 10);
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !dom.contains("<script"),
        "a script element made it into the DOM"
    );
    assert_eq!(page_requests(&net_log), Vec::<String>::new());

    // The check can fail: a page that does reference the network shows up in the net log.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        r#"<!DOCTYPE html><html><body><img src="http://genai-audit.invalid/pixel.png"></body></html>"#,
    )
    .expect("write the control page");
    let control_log = dir.path().join("control-net.json");
    headless(&control, dir.path(), &control_log, None);
    assert_eq!(
        page_requests(&control_log),
        ["http://genai-audit.invalid/pixel.png"]
    );

    let png = match std::env::var_os("REPORT_SCREENSHOT_DIR") {
        Some(d) => PathBuf::from(d).join("compliance.png"),
        None => dir.path().join("compliance.png"),
    };
    headless(
        &page,
        dir.path(),
        &dir.path().join("shot-net.json"),
        Some(&png),
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
}
