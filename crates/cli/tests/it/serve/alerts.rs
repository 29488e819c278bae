//! Alerting in `serve`: a webhook that hangs or answers 500 does not delay acknowledgements,
//! the alerts land in the `alerts` table that `genai-audit query` reads, and an invalid rule
//! stops the process before it starts, naming the key.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// How the test webhook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    /// Reads the request and never answers (connections held open).
    Hang,
    /// Answers every request with 500.
    Fail500,
}

/// A webhook on 127.0.0.1 (plain sockets, one thread per connection); returns its URL and the
/// number of requests it has read.
fn webhook(behaviour: Hook) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                let mut seen = Vec::new();
                loop {
                    let n = match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    seen.extend_from_slice(&buf[..n]);
                    // One request per read burst is enough here: headers, then a small body.
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        count.fetch_add(1, Ordering::Relaxed);
                        seen.clear();
                        match behaviour {
                            Hook::Hang => std::thread::sleep(Duration::from_secs(3600)),
                            Hook::Fail500 => {
                                let _ = conn.write_all(
                                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
                                );
                            }
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hook"), requests)
}

/// Export latencies of `batches` HTTP requests of 50 chat spans each, sent one after another.
fn ack_latencies(server: &Server, series: u32, batches: u32) -> Vec<Duration> {
    rt().block_on(async {
        let client = http_client();
        let mut out = Vec::new();
        for b in 0..batches {
            let (req, _) = chat_request(series * 1000 + b, 50);
            let t = Instant::now();
            post_traces_ok(&client, server, &req).await;
            out.push(t.elapsed());
        }
        out.sort();
        out
    })
}

fn config_with(dir: &Path, url: &str) -> PathBuf {
    // Every call fires (more than 0 calls per tenant per minute, no suppression): the webhook
    // queue of 5 overflows at once.
    config_file(
        dir,
        &format!(
            "[wal]\ndurability = \"os\"\n\n\
             [alerts]\nflush_secs = 1\n\n\
             [alerts.webhook]\nurl = \"{url}\"\ntimeout_ms = 60000\nmax_attempts = 3\nbackoff_ms = 50\nqueue = 5\n\n\
             [[alerts.rules]]\nname = \"every-call\"\nkind = \"request_volume\"\nwindow_secs = 60\nmax_requests = 0\nsuppress_secs = 0\n\n\
             [[alerts.rules]]\nname = \"openai\"\nkind = \"cel\"\nkey = \"service\"\nexpression = 'provider == \"openai\"'\n"
        ),
    )
}

#[test]
fn a_hanging_or_failing_webhook_does_not_delay_acknowledgements() {
    const BATCHES: u32 = 20;
    let base_dir = tempfile::tempdir().unwrap();
    let config = config_file(base_dir.path(), "[wal]\ndurability = \"os\"\n");
    let server = Server::start_with(
        base_dir.path(),
        Opts {
            args: &["--config", config.to_str().unwrap()],
            ..Opts::default()
        },
    );
    let baseline = ack_latencies(&server, 1, BATCHES);
    server.stop();
    let median = |v: &[Duration]| v[v.len() / 2];

    for (series, behaviour) in [(2, Hook::Hang), (3, Hook::Fail500)] {
        let dir = tempfile::tempdir().unwrap();
        let (url, requests) = webhook(behaviour);
        let config = config_with(dir.path(), &url);
        let server = Server::start_with(
            dir.path(),
            Opts {
                args: &["--config", config.to_str().unwrap()],
                ..Opts::default()
            },
        );
        let with_alerts = ack_latencies(&server, series, BATCHES);
        eprintln!(
            "{behaviour:?}: ack median {:?} (without alerting {:?}), max {:?} ({:?})",
            median(&with_alerts),
            median(&baseline),
            with_alerts.last().unwrap(),
            baseline.last().unwrap()
        );
        // Generous: a shared 2-core machine; a blocked ingest path would take the webhook's
        // 60 s timeout (hang) or seconds of retries (500) per request.
        assert!(
            median(&with_alerts) < median(&baseline) * 3 + Duration::from_millis(100),
            "{behaviour:?}: median ack {:?} vs {:?} without alerting",
            median(&with_alerts),
            median(&baseline)
        );
        assert!(
            *with_alerts.last().unwrap() < Duration::from_secs(2),
            "{behaviour:?}: slowest ack {:?}",
            with_alerts.last().unwrap()
        );
        let m = server.metrics();
        let fired = metric(&m, "genai_audit_alerts_fired_total{rule=\"every-call\"}");
        assert_eq!(fired, f64::from(BATCHES * 50), "{behaviour:?}");
        assert!(metric(&m, "genai_audit_alerts_webhook_dropped_total") > 0.0);
        assert!(
            requests.load(Ordering::Relaxed) >= 1,
            "the webhook was called"
        );
        let store = server.store();
        let t = Instant::now();
        let log = server.stop();
        // Shutdown waits at most 5 s for the webhook.
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "stop took {:?}",
            t.elapsed()
        );
        assert!(log.contains("every-call"), "one log line per alert");

        let out = bin()
            .current_dir(dir.path())
            .args(["query", "--store"])
            .arg(&store)
            .args([
                "--format",
                "json",
                "SELECT rule, count(*) AS n, min(cardinality(record_ids)) AS ids, \
                 min(tenant) AS tenant FROM alerts GROUP BY rule ORDER BY rule",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", crate::describe(&out));
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0]["rule"], "every-call");
        assert_eq!(rows[0]["n"], BATCHES * 50);
        assert_eq!(rows[0]["ids"], 1);
        assert_eq!(rows[0]["tenant"], "default");
        assert_eq!(rows[1]["rule"], "openai");
        assert_eq!(rows[1]["n"], 1, "suppressed per service");
    }
}

#[test]
fn an_invalid_rule_stops_serve_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[[alerts.rules]]\nname = \"ok\"\nkind = \"latency\"\nmax_ms = 1000\n\n\
         [[alerts.rules]]\nname = \"typo\"\nkind = \"cel\"\nexpression = 'provder == \"openai\"'\n",
    );
    let out = run_bounded(
        {
            let mut cmd = serve_command(dir.path());
            cmd.args(["--config", config.to_str().unwrap()]);
            cmd
        },
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alerts.rules[1].expression") && err.contains("provder"),
        "{err}"
    );
    let env_bad = run_bounded(
        {
            let mut cmd = serve_command(dir.path());
            cmd.env("GENAI_AUDIT_ALERTS_WEBHOOK_FORMAT", "teams");
            cmd
        },
        Duration::from_secs(30),
    );
    assert_eq!(env_bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&env_bad.stderr);
    assert!(err.contains("teams"), "{err}");
}

/// openai-v2 in event-only mode: the span carries no content, the prompt and reply arrive as
/// OTLP log records (within the same flush window). The PII they hold is found when the content
/// is merged at the flush, and a `pii` rule fires then, once.
#[test]
fn pii_in_content_sent_as_log_records_fires_when_merged() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[wal]\ndurability = \"os\"\n\n[flush]\nmax_age_secs = 3\n\n\
         [[alerts.rules]]\nname = \"pii\"\nkind = \"pii\"\nmin_classification = \"internal\"\n\n\
         [[alerts.rules]]\nname = \"calls\"\nkind = \"request_volume\"\nwindow_secs = 60\nmax_requests = 0\nsuppress_secs = 0\n",
    );
    let server = Server::start_with(
        dir.path(),
        Opts {
            args: &["--config", config.to_str().unwrap()],
            ..Opts::default()
        },
    );
    let fired = |rule: &str| {
        metric(
            &server.metrics(),
            &format!("genai_audit_alerts_fired_total{{rule=\"{rule}\"}}"),
        )
    };
    let traces = std::fs::read(crate::fixtures().join("openai-v2/chat_pii.pb")).unwrap();
    let mut req = ExportTraceServiceRequest::decode(traces.as_slice()).unwrap();
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                s.attributes.retain(|a| !a.key.ends_with(".messages"));
            }
        }
    }
    let logs = std::fs::read(crate::fixtures().join("openai-v2/logs/chat_pii.pb")).unwrap();
    rt().block_on(async {
        let client = http_client();
        post_traces_ok(&client, &server, &req).await;
        // The span alone: a call, no content, no PII.
        let deadline = Instant::now() + Duration::from_secs(20);
        while fired("calls") < 1.0 {
            assert!(Instant::now() < deadline, "{}", server.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(fired("pii"), 0.0, "no content yet");
        let reply = post(
            &client,
            &server.logs_url(),
            Some("application/x-protobuf"),
            logs,
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        while fired("pii") < 1.0 {
            assert!(
                Instant::now() < deadline + Duration::from_secs(10),
                "the merged content fired nothing\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Once, and the windowed rule did not count the call again.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fired("pii"), 1.0);
    assert_eq!(fired("calls"), 1.0);
    let log = server.stop();
    assert!(log.contains("PII"), "{log}");
}
