//! `genai-audit retention apply`, `hold` and `erase`: the real binary on a store filled by
//! `import`, checked with `genai-audit query`.

use super::*;

/// Runs `genai-audit ARGS… --store <store>`.
fn run(store: &Path, args: &[&str]) -> Output {
    bin().args(args).arg("--store").arg(store).output().unwrap()
}

fn ok(out: &Output) -> BTreeMap<String, String> {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
    summary(out)
}

/// One chat span of `user` at `start_s` (Unix seconds), as OTLP/JSON.
fn span(n: u32, user: &str, start_s: u64) -> serde_json::Value {
    let attr = |k: &str, v: serde_json::Value| serde_json::json!({"key": k, "value": v});
    let s = |v: &str| serde_json::json!({ "stringValue": v });
    let i = |v: i64| serde_json::json!({ "intValue": v.to_string() });
    serde_json::json!({
        "traceId": format!("{:032x}", 0xabc0_0000_u64 + u64::from(n) + start_s),
        "spanId": format!("{:016x}", 0x1000 + u64::from(n)),
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": (start_s * 1_000_000_000).to_string(),
        "endTimeUnixNano": ((start_s + 2) * 1_000_000_000).to_string(),
        "attributes": [
            attr("gen_ai.operation.name", s("chat")),
            attr("gen_ai.provider.name", s("openai")),
            attr("gen_ai.request.model", s("gpt-4o-mini")),
            attr("gen_ai.response.model", s("gpt-4o-mini")),
            attr("gen_ai.response.id", s(&format!("chatcmpl-{n}-{start_s}"))),
            attr("gen_ai.usage.input_tokens", i(1000 + i64::from(n))),
            attr("gen_ai.usage.output_tokens", i(200)),
            attr("user.id", s(user)),
            attr("session.id", s(&format!("session-of-{user}"))),
            attr("client.address", s("192.0.2.7")),
            attr("user_agent.original", s(&format!("app/1.0 ({user})"))),
            attr("app.customer", s(user)),
        ],
        "status": {}
    })
}

/// An OTLP/JSON file of one request per tenant with `spans` spans each, alternating users.
fn otlp_file(path: &Path, tenants: &[&str], users: &[&str], start_s: u64, spans: u32) {
    let mut text = String::new();
    for (t, tenant) in tenants.iter().enumerate() {
        let spans: Vec<_> = (0..spans)
            .map(|k| {
                let n = t as u32 * 1000 + k;
                span(
                    n,
                    users[k as usize % users.len()],
                    start_s + u64::from(k) * 60,
                )
            })
            .collect();
        let req = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "billing-bot"}},
                {"key": "tenant.id", "value": {"stringValue": tenant}}
            ]},
            "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
        }]});
        text.push_str(&serde_json::to_string(&req).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Every file below `dir` with its size, to prove a run changed nothing.
fn tree(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    e.metadata().unwrap().len(),
                );
            }
        }
    }
    out
}

/// `genai-audit query --format json SQL` → rows.
fn query(store: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = run(store, &["query", "--format", "json", sql]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count_by_tenant(store: &Path) -> BTreeMap<String, u64> {
    query(
        store,
        "SELECT tenant, count(*) AS n FROM audit_log GROUP BY tenant",
    )
    .into_iter()
    .map(|r| {
        (
            r["tenant"].as_str().unwrap().to_owned(),
            r["n"].as_u64().unwrap(),
        )
    })
    .collect()
}

/// 2020-03-01T00:00:00Z: long past the default 400 days.
const OLD: u64 = 1_583_020_800;
/// 2026-11-01T00:00:00Z (the fixtures are of November 2026).
const RECENT: u64 = 1_793_491_200;

#[test]
fn retention_dry_run_changes_nothing_apply_deletes_and_holds_keep() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let old = dir.path().join("old.json");
    otlp_file(&old, &["acme", "globex"], &["alice", "bob"], OLD, 6);
    ok(&import(&store, &[old.to_str().unwrap()]));
    let recent = dir.path().join("recent.json");
    otlp_file(&recent, &["acme"], &["alice"], RECENT, 3);
    ok(&import(&store, &[recent.to_str().unwrap()]));
    assert_eq!(
        count_by_tenant(&store),
        BTreeMap::from([("acme".into(), 9), ("globex".into(), 6)])
    );

    let before = tree(&store);
    let dry = ok(&run(&store, &["retention", "apply", "--dry-run"]));
    assert_eq!(tree(&store), before, "a dry run changes nothing");
    assert_eq!(count(&dry, "rows deleted"), 12, "{dry:?}");
    assert_eq!(count(&dry, "files deleted"), 2, "{dry:?}");

    let hold = run(
        &store,
        &[
            "hold", "add", "--tenant", "globex", "--reason", "matter 7", "--by", "legal",
        ],
    );
    let placed = ok(&hold);
    let hold_id = placed["placed"]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(hold_id.starts_with("hold-"), "{placed:?}");

    let applied = ok(&run(&store, &["retention", "apply"]));
    assert_eq!(count(&applied, "rows deleted"), 6, "{applied:?}");
    assert_eq!(count(&applied, "commits"), 1);
    // The old acme rows are gone, the recent ones and the held tenant's stay.
    assert_eq!(
        count_by_tenant(&store),
        BTreeMap::from([("acme".into(), 3), ("globex".into(), 6)])
    );
    let loc = StoreLocation::local(&store).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = rt
        .block_on(genai_audit_store::manifest::load_commits(&loc))
        .unwrap();
    let c = all.iter().find(|c| c.kind == "retention").unwrap();
    assert_eq!(c.collector_id, "maintenance");
    let reason = c.reason.as_deref().unwrap();
    assert!(
        reason.contains("default_days=400") && reason.contains("cutoff="),
        "{reason}"
    );

    let listed = String::from_utf8(run(&store, &["hold", "list"]).stdout).unwrap();
    assert!(
        listed.contains(&hold_id)
            && listed.contains("tenant=globex")
            && listed.contains("matter 7"),
        "{listed}"
    );
    ok(&run(
        &store,
        &[
            "hold",
            "remove",
            "--tenant",
            "globex",
            "--reason",
            "matter closed",
            "--by",
            "legal2",
        ],
    ));
    let listed = String::from_utf8(run(&store, &["hold", "list"]).stdout).unwrap();
    assert!(listed.contains("0 hold(s)"), "{listed}");
    let listed = String::from_utf8(run(&store, &["hold", "list", "--all"]).stdout).unwrap();
    assert!(
        listed.contains("lifted by legal2") && listed.contains("matter closed"),
        "the removal is on record: {listed}"
    );
    ok(&run(&store, &["retention", "apply"]));
    assert_eq!(
        count_by_tenant(&store),
        BTreeMap::from([("acme".into(), 3)])
    );
    // Every deletion was signed: the store verifies with nothing pending, and the removals are
    // recorded rather than looking like missing files.
    let verified = run(&store, &["verify", "--strict"]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(!text.contains("MISSING"), "{text}");
}

#[test]
fn erase_pseudonymize_leaves_no_trace_of_the_id_and_keeps_the_costs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = dir.path().join("calls.json");
    let subject = "alice@example.com";
    otlp_file(&input, &["acme", "globex"], &[subject, "bob"], RECENT, 8);
    ok(&import(&store, &[input.to_str().unwrap()]));
    let totals = "SELECT CAST(sum(total_cost_usd) AS VARCHAR) AS cost, sum(input_tokens) AS tokens, count(*) AS n, count(DISTINCT user_id) AS users FROM audit_log";
    let before = query(&store, totals);
    assert_eq!(before[0]["n"], 16);
    assert!(
        before[0]["cost"].as_str().is_some_and(|c| c != "0"),
        "{before:?}"
    );
    let everything = "SELECT * FROM audit_log";
    let dump =
        String::from_utf8(run(&store, &["query", "--format", "json", everything]).stdout).unwrap();
    // In user_id, session_id, user_agent and attributes of each of the 8 rows.
    assert!(dump.matches(subject).count() >= 8 * 4, "{dump}");

    // A dry run finds the rows and changes nothing.
    let snapshot = tree(&store);
    let dry = ok(&run(
        &store,
        &[
            "erase",
            "--user",
            subject,
            "--reason",
            "DSR-2041",
            "--dry-run",
        ],
    ));
    assert_eq!(count(&dry, "rows pseudonymized"), 8);
    assert_eq!(tree(&store), snapshot);

    let out = ok(&run(
        &store,
        &["erase", "--user", subject, "--reason", "DSR-2041"],
    ));
    assert_eq!(count(&out, "rows pseudonymized"), 8, "{out:?}");
    let subject_hash = out["subject (keyed hash)"].clone();

    // No query finds the raw id, in any column.
    let dump =
        String::from_utf8(run(&store, &["query", "--format", "json", everything]).stdout).unwrap();
    assert!(!dump.contains(subject) && !dump.contains("alice"), "{dump}");
    assert!(dump.contains("erased:"));
    let n = query(
        &store,
        &format!("SELECT count(*) AS n FROM audit_log WHERE user_id = '{subject}'"),
    );
    assert_eq!(n[0]["n"], 0);
    // Costs, tokens, rows and distinct users are what they were.
    assert_eq!(query(&store, totals), before);

    // The receipt names the subject by the hash audit_hash() gives for the id.
    let h = query(&store, &format!("SELECT audit_hash('{subject}') AS h"));
    assert_eq!(h[0]["h"].as_str().unwrap(), subject_hash);
    let loc = StoreLocation::local(&store).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receipts = rt
        .block_on(genai_audit_store::erasure::receipts(&loc, &subject_hash))
        .unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        receipts[0].reason.as_deref().unwrap(),
        format!("subject={subject_hash} mode=pseudonymize request=DSR-2041")
    );
    for (path, _) in tree(&store) {
        let bytes = std::fs::read(store.join(&path)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(subject),
            "{path} still holds the id"
        );
    }

    // The rewrite was signed: the store verifies, with nothing pending.
    let verified = run(&store, &["verify", "--strict"]);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    // The subject-access report shows the receipt (found by the id's keyed hash).
    let out = run(
        &store,
        &["report", "subject", "--user", subject, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"].as_array().map(Vec::len), Some(0), "{v}");
    let erasures = v["erasures"].as_array().expect("erasures in the report");
    assert_eq!(erasures.len(), 1, "{v}");
    assert_eq!(erasures[0]["subject_hash"], subject_hash.as_str());
    assert_eq!(erasures[0]["mode"], "pseudonymize");
    assert_eq!(erasures[0]["reason"], "DSR-2041");
}

#[test]
fn erase_is_refused_under_a_hold_and_delete_mode_removes_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = dir.path().join("calls.json");
    otlp_file(&input, &["acme"], &["carol", "dave"], RECENT, 6);
    ok(&import(&store, &[input.to_str().unwrap()]));
    let placed = ok(&run(
        &store,
        &[
            "hold",
            "add",
            "--tenant",
            "acme",
            "--user",
            "carol",
            "--reason",
            "litigation",
        ],
    ));
    let hold_id = placed["placed"]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let before = tree(&store);
    let refused = run(
        &store,
        &[
            "erase", "--user", "carol", "--reason", "DSR-9", "--mode", "delete",
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("legal hold") && err.contains(&hold_id),
        "{err}"
    );
    assert_eq!(tree(&store), before, "nothing changed");

    ok(&run(
        &store,
        &["hold", "remove", "--id", &hold_id, "--reason", "settled"],
    ));
    let out = ok(&run(
        &store,
        &[
            "erase", "--user", "carol", "--reason", "DSR-9", "--mode", "delete",
        ],
    ));
    assert_eq!(count(&out, "rows deleted"), 3, "{out:?}");
    let users = query(
        &store,
        "SELECT user_id, count(*) AS n FROM audit_log GROUP BY user_id",
    );
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["user_id"], "dave");
    assert_eq!(users[0]["n"], 3);

    // Without the collector's key, erase refuses rather than hashing under a new one.
    let no_key = bin()
        .env_remove("GENAI_AUDIT_HASH_KEY")
        .current_dir(dir.path())
        .args(["erase", "--user", "dave", "--reason", "DSR-10", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(2), "{}", describe(&no_key));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("hash key"));
}
