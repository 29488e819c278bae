//! The app is never held up by the store, and what the SDK was told is exported is durable.

use std::sync::atomic::Ordering;
use std::time::Instant;

use genai_audit_store::FlushPolicy;
use opentelemetry_sdk::trace::SpanExporter as _;

use super::stall::Stall;
use super::*;

/// The store at `dir/store` with writes hanging until the returned flag is cleared.
fn stalled_store(dir: &Path) -> (StoreLocation, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let mut loc = StoreLocation::local(&dir.join("store")).unwrap();
    let (stall, flag) = Stall::new(loc.store.clone());
    loc.store = std::sync::Arc::new(stall);
    (loc, flag)
}

fn calls(n: usize) -> Vec<Call> {
    (0..n)
        .map(|i| Call {
            model: "gpt-4o-mini",
            input: 100 + i as i64,
            output: 10,
            user: "carol",
        })
        .collect()
}

/// Store hanging: the app's span calls stay fast, exports still succeed (into the WAL), the
/// final flush gives up at the shutdown timeout, and the next exporter on the same WAL commits
/// every span the SDK was told was exported.
#[test]
fn a_hanging_store_holds_up_neither_the_app_nor_shutdown_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (loc, stalled) = stalled_store(dir.path());
    let exporter = builder(dir.path())
        .with_store_location(loc)
        // Flush (and so hit the hanging store) as soon as anything is buffered.
        .with_flush_policy(FlushPolicy {
            max_rows: 1,
            ..FlushPolicy::default()
        })
        .with_shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let audit = exporter.handle();
    let provider = provider(exporter);

    let app_time = emit(&provider, &calls(200));
    assert!(
        app_time < Duration::from_secs(1),
        "200 span ends took {app_time:?}"
    );
    let t = Instant::now();
    provider.force_flush().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "force_flush took {:?}",
        t.elapsed()
    );
    assert_eq!(audit.stats().records_appended, 200);

    let t = Instant::now();
    let _ = provider.shutdown();
    let flushed = audit.shutdown();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(
        matches!(
            flushed,
            Err(genai_audit_exporter::Error::Store(
                genai_audit_store::Error::ShutdownTimeout { .. }
            ))
        ),
        "{flushed:?}"
    );
    assert_eq!(
        audit
            .writer()
            .stats()
            .records_written
            .load(Ordering::Relaxed),
        0
    );
    drop(audit);

    // The store is back: a new exporter on the same WAL replays and commits everything.
    stalled.store(false, Ordering::Release);
    let again = builder(dir.path()).build().unwrap();
    let report = again.handle().shutdown().unwrap();
    assert_eq!(report.records, 200, "{report:?}");
    assert_eq!(
        query(
            dir.path(),
            "SELECT CAST(count(DISTINCT record_id) AS VARCHAR), CAST(count(*) AS VARCHAR) FROM audit_log"
        ),
        [["200", "200"]]
    );
}

/// Spans made by a provider that keeps them, so a test can call `export` itself and see its
/// result and its duration.
fn kept_spans(n: usize) -> Vec<opentelemetry_sdk::trace::SpanData> {
    #[derive(Debug, Clone, Default)]
    struct Keep(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);
    impl opentelemetry_sdk::trace::SpanProcessor for Keep {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }
    let keep = Keep::default();
    let p = SdkTracerProvider::builder()
        .with_span_processor(keep.clone())
        .build();
    emit(&p, &calls(n));
    std::mem::take(&mut *keep.0.lock().unwrap())
}

/// WAL at its budget and the store hanging (nothing can be released): an export retries while
/// there is time, then fails before the export timeout has passed, and the loss is counted.
#[test]
fn an_export_into_a_full_wal_fails_within_the_export_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // How many WAL bytes one batch takes, measured on a scratch exporter.
    let one_batch = {
        let scratch = tempfile::tempdir().unwrap();
        let exporter = builder(scratch.path()).build().unwrap();
        futures::executor::block_on(exporter.export(kept_spans(3))).unwrap();
        let bytes = exporter.handle().writer().wal_bytes();
        exporter.handle().shutdown().unwrap();
        bytes
    };
    assert!(one_batch > 0);

    let (loc, _stalled) = stalled_store(dir.path());
    // Backpressure asks to retry after 1 s: there is time for two retries.
    let timeout = Duration::from_millis(2500);
    let exporter = builder(dir.path())
        .with_store_location(loc)
        .with_wal_max_bytes(one_batch + one_batch / 2)
        .with_flush_policy(FlushPolicy {
            max_rows: 1,
            ..FlushPolicy::default()
        })
        .with_export_timeout(timeout)
        .with_shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let audit = exporter.handle();
    futures::executor::block_on(exporter.export(kept_spans(3))).unwrap();

    let t = Instant::now();
    let result = futures::executor::block_on(exporter.export(kept_spans(3)));
    let took = t.elapsed();
    assert!(result.is_err(), "the WAL has no room for a second batch");
    assert!(
        took >= Duration::from_secs(1),
        "gave up after only {took:?}: it should retry while there is time"
    );
    assert!(took <= timeout, "took {took:?} for a {timeout:?} timeout");
    let stats = audit.stats();
    assert_eq!(
        (stats.records_appended, stats.records_failed),
        (3, 3),
        "{stats:?}"
    );
    let _ = audit.shutdown();
}
