//! Retention applied by the collector itself (`maintenance.retention_interval_secs`): expired
//! records leave the store while the collector keeps serving; fresh ones stay.

use genai_audit_store::manifest::load_commits;

use super::*;

/// 2024-01-01T00:00:00Z in nanoseconds: with one day of retention, long expired.
const OLD_NS: u64 = 1_704_067_200_000_000_000;

#[test]
fn serve_applies_retention_on_its_schedule_and_keeps_fresh_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        Opts {
            env: &[
                ("GENAI_AUDIT_MAINTENANCE_RETENTION_INTERVAL_SECS", "1"),
                ("GENAI_AUDIT_RETENTION_DEFAULT_DAYS", "1"),
                ("GENAI_AUDIT_FLUSH_MAX_AGE_SECS", "1"),
            ],
            ..Opts::default()
        },
    );
    let rt = rt();
    let client = http_client();
    let (mut old, _) = chat_request(21, 4);
    for s in &mut old.resource_spans[0].scope_spans[0].spans {
        s.start_time_unix_nano = OLD_NS;
        s.end_time_unix_nano = OLD_NS + 2_000_000;
    }
    let (fresh, fresh_ids) = chat_request(22, 3);
    rt.block_on(post_traces_ok(&client, &server, &old));
    rt.block_on(post_traces_ok(&client, &server, &fresh));

    // The old records are flushed, then deleted by a scheduled run; the fresh ones stay.
    let loc = StoreLocation::local(&server.store()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let retention_commits = loop {
        let (commits, rows) = rt.block_on(async {
            let commits = load_commits(&loc).await.unwrap_or_default();
            let rows = Snapshot::load(&loc).await.map(|s| s.rows()).unwrap_or(0);
            (commits, rows)
        });
        let retention: Vec<_> = commits
            .into_iter()
            .filter(|c| c.kind == "retention")
            .collect();
        if !retention.is_empty() && rows == 3 {
            break retention;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled retention ({rows} rows)\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        retention_commits
            .iter()
            .all(|c| c.collector_id == "maintenance" && !c.removed.is_empty()),
        "{retention_commits:?}"
    );
    // Still collecting.
    let (later, _) = chat_request(23, 2);
    rt.block_on(post_traces_ok(&client, &server, &later));
    let log = server.stop();
    assert!(log.contains("scheduled retention applied"), "{log}");

    let rows = rt.block_on(async { Snapshot::load(&loc).await.unwrap().rows() });
    assert_eq!(rows, 5, "3 fresh + 2 later records; the 4 old ones deleted");
    let out = bin()
        .arg("query")
        .arg("--store")
        .arg(dir.path().join("genai-audit-data"))
        .args([
            "--format",
            "csv",
            "SELECT record_id FROM audit_log ORDER BY 1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for id in &fresh_ids {
        assert!(text.contains(id.as_str()), "{id} missing\n{text}");
    }
}
