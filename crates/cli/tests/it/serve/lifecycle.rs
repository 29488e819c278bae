//! Starting and stopping: configuration errors refuse to start and name the key; SIGTERM flushes
//! everything and exits 0; a second signal during a slow shutdown exits at once, and the WAL
//! brings back what was acknowledged at the next start.

use super::*;

/// Runs `serve` with loopback port-0 listeners set in the environment, plus `env` and `args`,
/// expecting it to refuse to start.
fn refused(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = serve_command(dir);
    cmd.env("GENAI_AUDIT_RECEIVER_GRPC_LISTEN", "127.0.0.1:0")
        .env("GENAI_AUDIT_RECEIVER_HTTP_LISTEN", "127.0.0.1:0")
        .env("GENAI_AUDIT_ADMIN_LISTEN", "127.0.0.1:0")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_bounded(cmd, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(
        out.status.code(),
        Some(0),
        "{env:?} {args:?} started\n{stderr}"
    );
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}\n{stderr}",
        out.status
    );
    stderr
}

/// Environment, arguments, and what the error must mention.
type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<String>, &'a str);

#[test]
fn configuration_errors_refuse_to_start_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let cases: Vec<Case> = vec![
        // Unknown keys in the file, in a known section and as a section.
        (
            vec![],
            vec!["--config".into(), file("a.toml", "[flush]\nmax_rowz = 3\n")],
            "max_rowz",
        ),
        (
            vec![],
            vec!["--config".into(), file("b.toml", "[recevier]\nx = 1\n")],
            "recevier",
        ),
        // A value of the wrong type or out of range.
        (
            vec![],
            vec![
                "--config".into(),
                file("c.toml", "[flush]\nmax_rows = \"many\"\n"),
            ],
            "max_rows",
        ),
        (
            vec![],
            vec![
                "--config".into(),
                file("d.toml", "[wal]\ndurability = \"sometimes\"\n"),
            ],
            "wal.durability",
        ),
        (
            vec![],
            vec![
                "--config".into(),
                file("e.toml", "[receiver]\nmax_request_bytes = 10\n"),
            ],
            "receiver.max_request_bytes",
        ),
        (
            vec![],
            vec![
                "--config".into(),
                file(
                    "f.toml",
                    "[[receiver.auth.tokens]]\ntoken = \"short\"\ntenant = \"a\"\n",
                ),
            ],
            "receiver.auth.tokens[0].token",
        ),
        // Not TOML at all.
        (
            vec![],
            vec!["--config".into(), file("g.toml", "[flush\n")],
            "g.toml",
        ),
        // A config file that does not exist.
        (
            vec![],
            vec!["--config".into(), "missing.toml".into()],
            "missing.toml",
        ),
        // Environment: a bad value, an unknown variable.
        (
            vec![("GENAI_AUDIT_FLUSH_MAX_ROWS", "lots")],
            vec![],
            "GENAI_AUDIT_FLUSH_MAX_ROWS",
        ),
        (
            vec![("GENAI_AUDIT_RECEIVER_GRPC_LISTN", "127.0.0.1:0")],
            vec![],
            "GENAI_AUDIT_RECEIVER_GRPC_LISTN",
        ),
        // Listen addresses: env, flags, admin.
        (
            vec![("GENAI_AUDIT_RECEIVER_GRPC_LISTEN", "nope")],
            vec![],
            "receiver.grpc.listen",
        ),
        (
            vec![],
            vec!["--http-listen".into(), "localhost:4318".into()],
            "receiver.http.listen",
        ),
        (
            vec![],
            vec!["--admin-listen".into(), "everywhere".into()],
            "admin.listen",
        ),
    ];
    for (env, args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = refused(dir.path(), env, &args);
        assert!(
            stderr.contains(needle),
            "{env:?} {args:?}: the error should name {needle:?}\n{stderr}"
        );
    }

    // A port already taken: the error names the key and the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let stderr = refused(dir.path(), &[], &["--grpc-listen", &addr]);
    assert!(
        stderr.contains("receiver.grpc.listen") && stderr.contains(&addr),
        "{stderr}"
    );
    drop(taken);
    // Nothing was written by the refused starts.
    assert!(!dir.path().join("genai-audit-data/audit_log").exists());
}

#[test]
fn sigterm_flushes_everything_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut rids = Vec::new();
    rt().block_on(async {
        let client = http_client();
        for series in 0..5 {
            let (req, ids) = chat_request(series, 10);
            post_traces_ok(&client, &server, &req).await;
            rids.extend(ids);
        }
    });
    // The default max_age (60 s) has not passed: nothing is committed yet.
    let m = server.metrics();
    assert_eq!(metric(&m, "genai_audit_records_appended_total"), 50.0);
    assert_eq!(metric(&m, "genai_audit_records_written_total"), 0.0);
    assert!(read_rows(&server.store()).is_empty());

    let store = server.store();
    let started = Instant::now();
    let log = server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "slow shutdown: {:?}",
        started.elapsed()
    );
    let bye = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "flushed; bye")
        .unwrap_or_else(|| panic!("no final flush in the log\n{log}"));
    assert_eq!(bye["fields"]["records"], 50, "{bye}");
    let rows = rows_by_id(read_rows(&store));
    let mut stored: Vec<String> = rows.keys().cloned().collect();
    stored.sort();
    rids.sort();
    assert_eq!(stored, rids);

    // A restart finds nothing left to replay; a second collector on the same WAL is refused.
    let mut server = Server::start(dir.path());
    assert!(
        server
            .log_event("recovered acknowledged records from the WAL")
            .is_none()
    );
    let stderr = refused(dir.path(), &[], &[]);
    assert!(stderr.contains("in use by another writer"), "{stderr}");
    // SIGINT (Ctrl-C) stops it the same way.
    server.signal("INT");
    let status = server.wait_exit(STOP_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert_eq!(read_rows(&store).len(), 50);
}

#[test]
fn a_second_signal_exits_at_once_and_the_wal_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let mut rids = Vec::new();
    rt().block_on(async {
        let (req, ids) = chat_request(7, 5);
        post_traces_ok(&http_client(), &server, &req).await;
        rids.extend(ids);
    });
    // A client that stalls in the middle of its request body keeps the drain waiting (up to the
    // receiver's drain timeout, 30 s).
    let mut stalled = TcpStream::connect(server.http).unwrap();
    write!(
        stalled,
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n\x0a\x05"
    )
    .unwrap();
    stalled.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    server.signal("TERM");
    server.wait_log_event(
        "signal received: stopping (send it again to exit at once)",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.is_running(),
        "exited with a request in flight\n{}",
        server.log()
    );

    let second = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{}", server.log());
    assert!(
        server.log().contains("second signal: exiting now"),
        "{}",
        server.log()
    );
    drop(stalled);
    let store = server.store();
    assert!(read_rows(&store).is_empty(), "nothing was flushed");

    // The next start replays the WAL; its shutdown flushes.
    let server = Server::start(dir.path());
    let recovered = server.wait_log_event(
        "recovered acknowledged records from the WAL",
        Duration::from_secs(1),
    );
    assert_eq!(recovered["records"], 5, "{recovered}");
    server.stop();
    let rows = rows_by_id(read_rows(&store));
    let mut stored: Vec<String> = rows.keys().cloned().collect();
    stored.sort();
    rids.sort();
    assert_eq!(stored, rids);
}

/// From the first SIGTERM on, `/readyz` must say "not ready" so that load balancers stop sending
/// while in-flight requests drain. Today `ready` is cleared only after the drain has finished
/// (serve.rs sets it after `bound.serve(..)` returns), so a long drain keeps answering 200.
#[test]
fn readiness_drops_as_soon_as_shutdown_begins() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let mut stalled = TcpStream::connect(server.http).unwrap();
    write!(
        stalled,
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n\x0a"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    server.wait_log_event(
        "signal received: stopping (send it again to exit at once)",
        Duration::from_secs(10),
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    let readiness = loop {
        let r = admin_get(server.admin, "/readyz");
        if !matches!(r, Ok((200, _))) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10));
    drop(stalled);
    assert!(
        matches!(readiness, Ok((503, _))),
        "/readyz while draining: {readiness:?}"
    );
}
