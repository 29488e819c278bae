//! The admin endpoint: liveness, readiness, and Prometheus metrics that follow the traffic and
//! the flushes. The server is configured by environment variables only (no file, no flags).

use super::*;

#[test]
fn health_readiness_and_metrics_follow_traffic_and_age_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        Opts {
            env: &[("GENAI_AUDIT_FLUSH_MAX_AGE_SECS", "1")],
            ports_via_env: true,
            ..Opts::default()
        },
    );
    assert_eq!(
        admin_get(server.admin, "/healthz").unwrap(),
        (200, "ok\n".to_owned())
    );
    assert_eq!(
        admin_get(server.admin, "/readyz").unwrap(),
        (200, "ready\n".to_owned())
    );
    assert_eq!(admin_get(server.admin, "/nope").unwrap().0, 404);

    let before = server.metrics();
    assert_eq!(
        metric(&before, "genai_audit_receiver_spans_received_total"),
        0.0
    );
    assert_eq!(metric(&before, "genai_audit_records_written_total"), 0.0);
    assert_eq!(metric(&before, "genai_audit_store_failed"), 0.0);

    // Three GenAI spans, one plain HTTP span (dropped), one with a bad trace id (rejected).
    let (mut req, rids) = chat_request(1, 3);
    let spans = &mut req.resource_spans[0].scope_spans[0].spans;
    let (t, s) = ids(1, 10);
    spans.push(Span {
        trace_id: t.to_vec(),
        span_id: s.to_vec(),
        name: "GET /health".to_owned(),
        start_time_unix_nano: now_ns(),
        end_time_unix_nano: now_ns(),
        attributes: vec![kv("http.request.method", "GET")],
        ..Default::default()
    });
    let (t, s) = ids(1, 11);
    let mut bad = chat_span(t, s);
    bad.trace_id = vec![0; 16];
    spans.push(bad);
    let reply = rt().block_on(async {
        post(
            &http_client(),
            &server.traces_url(),
            Some("application/x-protobuf"),
            req.encode_to_vec(),
            &[],
        )
        .await
    });
    assert_eq!(reply.status, 200, "{reply:?}");
    let partial = reply.traces_response().partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("1 non-GenAI span was dropped"),
        "{partial:?}"
    );

    // max_age_secs = 1: the records become Parquet without any shutdown.
    let deadline = Instant::now() + Duration::from_secs(15);
    let m = loop {
        let m = server.metrics();
        // The flush's counters are updated one after another: wait for the last of them too.
        if metric(&m, "genai_audit_records_written_total") >= 3.0
            && metric(&m, "genai_audit_flush_duration_seconds_count") >= 1.0
            && metric(&m, "genai_audit_commits_total") >= 1.0
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no age flush within 15 s\n{m:#?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for (series, value) in [
        ("genai_audit_receiver_spans_received_total", 5.0),
        ("genai_audit_receiver_spans_accepted_total", 3.0),
        (
            "genai_audit_receiver_spans_dropped_total{reason=\"not_genai\"}",
            1.0,
        ),
        (
            "genai_audit_receiver_spans_rejected_total{reason=\"invalid_trace_id\"}",
            1.0,
        ),
        (
            "genai_audit_receiver_requests_total{transport=\"http\",signal=\"traces\",outcome=\"partial\"}",
            1.0,
        ),
        ("genai_audit_receiver_export_duration_seconds_count", 1.0),
        ("genai_audit_records_appended_total", 3.0),
        ("genai_audit_records_written_total", 3.0),
        ("genai_audit_files_committed_total", 1.0),
        ("genai_audit_commits_total", 1.0),
        ("genai_audit_buffered_records", 0.0),
        ("genai_audit_store_failed", 0.0),
        ("genai_audit_flush_duration_seconds_count", 1.0),
    ] {
        assert_eq!(metric(&m, series), value, "{series}");
    }
    assert!(
        metric(
            &m,
            "genai_audit_receiver_request_bytes_total{transport=\"http\"}"
        ) > 0.0
    );
    assert!(metric(&m, "genai_audit_bytes_written_total") > 0.0);

    // Committed while running: readers see them before any shutdown.
    let rows = rows_by_id(read_rows(&server.store()));
    let mut stored: Vec<String> = rows.keys().cloned().collect();
    let mut want = rids.clone();
    stored.sort();
    want.sort();
    assert_eq!(stored, want);
    // No key file: GENAI_AUDIT_HASH_KEY was given.
    assert!(!dir.path().join("genai-audit-keys").exists());
    server.stop();
}
