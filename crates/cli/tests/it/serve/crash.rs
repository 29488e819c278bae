//! SIGKILL under load, then a restart on the same directories: every acknowledged span is in the
//! audit log exactly once, and so is every span resent after the crash.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;

const REQUESTS: u32 = 200;
const SPANS_PER_REQUEST: u32 = 20;
/// SIGKILL once this many requests are acknowledged.
const KILL_AFTER: usize = 60;
const CLIENTS: u32 = 4;

/// Request `i`: over HTTP when even, gRPC when odd.
async fn send(client: &reqwest::Client, server: (SocketAddr, SocketAddr), i: u32) -> bool {
    let (req, _) = chat_request(1000 + i, SPANS_PER_REQUEST);
    let (grpc, http) = server;
    let attempt = async {
        if i.is_multiple_of(2) {
            let resp = client
                .post(format!("http://{http}/v1/traces"))
                .header("content-type", "application/x-protobuf")
                .body(req.encode_to_vec())
                .send()
                .await
                .ok()?;
            if resp.status() != 200 {
                return None;
            }
            let body = resp.bytes().await.ok()?;
            let answer = ExportTraceServiceResponse::decode(body).ok()?;
            Some(answer.partial_success.is_none())
        } else {
            let mut c = TraceServiceClient::connect(format!("http://{grpc}"))
                .await
                .ok()?;
            let answer = c.export(req).await.ok()?.into_inner();
            Some(answer.partial_success.is_none())
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_span_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let rt = rt();
    let acked: Arc<Mutex<BTreeSet<u32>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let addrs = (server.grpc, server.http);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (acked, next, stop) = (acked.clone(), next.clone(), stop.clone());
        clients.push(rt.spawn(async move {
            let client = http_client();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as u32;
                if i >= REQUESTS || stop.load(Ordering::SeqCst) {
                    break;
                }
                if send(&client, addrs, i).await {
                    acked.lock().unwrap().insert(i);
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} requests acknowledged in 30 s\n{}",
            acked.lock().unwrap().len(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        rt.block_on(c).unwrap();
    }
    let acked: BTreeSet<u32> = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER);
    let unacked: Vec<u32> = (0..REQUESTS).filter(|i| !acked.contains(i)).collect();
    assert!(
        !unacked.is_empty(),
        "the kill came after every request was acknowledged: nothing was under load"
    );

    // Same directory, so the same store and WAL; new ports.
    let server = Server::start(dir.path());
    let recovered = server.log_event("recovered acknowledged records from the WAL");
    let recovered = recovered.and_then(|v| v["records"].as_u64()).unwrap_or(0);
    assert!(
        recovered >= (acked.len() as u64) * u64::from(SPANS_PER_REQUEST),
        "replayed {recovered} records, {} acknowledged\n{}",
        acked.len() * SPANS_PER_REQUEST as usize,
        server.log()
    );
    // The client resends what was never acknowledged (some of it may have been durable already).
    let addrs = (server.grpc, server.http);
    rt.block_on(async {
        let client = http_client();
        for &i in &unacked {
            assert!(
                send(&client, addrs, i).await,
                "resend of request {i} failed"
            );
        }
    });
    let store = server.store();
    let log = server.stop();

    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for row in read_rows(&store) {
        *count.entry(row.id().to_owned()).or_default() += 1;
    }
    for i in 0..REQUESTS {
        let (_, rids) = chat_request(1000 + i, SPANS_PER_REQUEST);
        for id in rids {
            let n = count.get(&id).copied().unwrap_or(0);
            let how = if acked.contains(&i) {
                "acknowledged"
            } else {
                "resent"
            };
            assert_eq!(
                n, 1,
                "{how} request {i}: record {id} stored {n} times\n{log}"
            );
        }
    }
    assert_eq!(
        count.len(),
        (REQUESTS * SPANS_PER_REQUEST) as usize,
        "records that were never sent"
    );
}
