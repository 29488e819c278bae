//! An app instrumented with the SDK writes audit records through the exporter.

use super::*;

const CALLS: &[Call] = &[
    // 1000 × $2/Mtok + 500 × $8/Mtok
    Call {
        model: "gpt-4.1",
        input: 1000,
        output: 500,
        user: "alice",
    },
    // 200 × $0.15/Mtok + 100 × $0.60/Mtok
    Call {
        model: "gpt-4o-mini",
        input: 200,
        output: 100,
        user: "bob",
    },
];

#[test]
fn genai_spans_of_an_sdk_app_land_in_the_store_with_model_tokens_cost_user_and_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = builder(dir.path()).with_tenant("acme").build().unwrap();
    let audit = exporter.handle();
    let provider = provider(exporter);
    emit(&provider, CALLS);
    provider.shutdown().unwrap();
    let report = audit.shutdown().unwrap();
    assert_eq!(report.records, 2, "{report:?}");
    let stats = audit.stats();
    assert_eq!(
        (
            stats.spans_received,
            stats.records_appended,
            stats.spans_not_genai,
            stats.records_failed
        ),
        (3, 2, 1, 0),
        "{stats:?}"
    );

    let got = query(
        dir.path(),
        "SELECT tenant, request_model, provider, operation, span_kind, \
                CAST(input_tokens AS VARCHAR), CAST(output_tokens AS VARCHAR), \
                CAST(total_cost_usd AS VARCHAR), cost_source, user_id, service_name, \
                service_version, source, collector_id, status \
         FROM audit_log ORDER BY user_id",
    );
    let want = [
        [
            "acme",
            "gpt-4.1",
            "openai",
            "chat",
            "llm_call",
            "1000",
            "500",
            "0.006000000000",
            "price_table",
            "alice",
            "exporter-it-service",
            "2.0.1",
            "sdk",
            "exporter-it",
            "unset",
        ],
        [
            "acme",
            "gpt-4o-mini",
            "openai",
            "chat",
            "llm_call",
            "200",
            "100",
            "0.000090000000",
            "price_table",
            "bob",
            "exporter-it-service",
            "2.0.1",
            "sdk",
            "exporter-it",
            "unset",
        ],
    ];
    assert_eq!(got, want.map(|r| r.map(str::to_owned).to_vec()).to_vec());
}

#[test]
fn without_a_fixed_tenant_the_resource_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = builder(dir.path()).build().unwrap();
    let audit = exporter.handle();
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_attribute(KeyValue::new("tenant.id", "globex"))
                .build(),
        )
        .with_batch_exporter(exporter)
        .build();
    emit(&provider, &CALLS[..1]);
    provider.shutdown().unwrap();
    audit.shutdown().unwrap();
    assert_eq!(
        query(dir.path(), "SELECT tenant, user_id FROM audit_log"),
        [["globex".to_owned(), "alice".to_owned()]]
    );
}

/// The SDK's `force_flush` exports to the WAL but never calls the exporter's `force_flush`; the
/// handle's `flush` is what turns the WAL into Parquet. If a later SDK forwards `force_flush`,
/// the first assertion fails and the docs of `ExporterHandle` should say so.
#[test]
fn provider_force_flush_stops_at_the_wal_and_the_handle_commits() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = builder(dir.path()).build().unwrap();
    let audit = exporter.handle();
    let provider = provider(exporter);
    emit(&provider, CALLS);
    provider.force_flush().unwrap();
    assert_eq!(audit.stats().records_appended, 2);
    assert_eq!(
        audit
            .writer()
            .stats()
            .records_written
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    let report = audit.flush().unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(
        query(
            dir.path(),
            "SELECT CAST(count(*) AS VARCHAR) FROM audit_log"
        ),
        [["2"]]
    );

    provider.shutdown().unwrap();
    // The SDK's shutdown already ran the exporter's; the handle returns that outcome.
    assert_eq!(audit.shutdown().unwrap().records, 0);
    assert!(audit.is_shut_down());
    assert!(matches!(
        audit.flush(),
        Err(genai_audit_exporter::Error::ShutDown)
    ));
}

#[test]
fn builder_refuses_missing_or_invalid_settings_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let err = |b: ExporterBuilder| b.build().unwrap_err().to_string();
    let no_id = err(AuditSpanExporter::builder().with_hash_key(key()));
    assert!(no_id.contains("with_collector_id"), "{no_id}");
    let no_key = err(AuditSpanExporter::builder().with_collector_id("x"));
    assert!(no_key.contains("with_hash_key"), "{no_key}");
    let bad_tenant = err(builder(dir.path()).with_tenant("../etc"));
    assert!(bad_tenant.contains("with_tenant"), "{bad_tenant}");
    let bad_id = err(builder(dir.path()).with_collector_id("a b"));
    assert!(bad_id.contains("collector id"), "{bad_id}");
}

#[test]
fn a_hash_key_file_is_created_once_and_shared_with_the_collector_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/hash.key");
    let build = || {
        AuditSpanExporter::builder()
            .with_store_url(dir.path().join("store").display().to_string(), vec![])
            .with_collector_id("exporter-it")
            .with_hash_key_file(&path)
            .build()
            .unwrap()
    };
    let first = build();
    first.handle().shutdown().unwrap();
    drop(first);
    let text = std::fs::read_to_string(&path).unwrap();
    let key = HashKey::from_hex(&text).unwrap();
    let second = build();
    second.handle().shutdown().unwrap();
    assert_eq!(
        HashKey::from_hex(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .id(),
        key.id()
    );
}

/// An async app: the exporter is built, used, shut down and dropped inside a tokio runtime
/// (dropping a runtime there would panic; blocking on the app's own runtime would deadlock).
#[test]
fn works_inside_an_async_app() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let exporter = builder(dir.path()).build().unwrap();
        let audit = exporter.handle();
        let provider = provider(exporter);
        emit(&provider, CALLS);
        provider.shutdown().unwrap();
        let report = audit.shutdown().unwrap();
        drop(provider);
        drop(audit);
        report
    });
    assert_eq!(report.records, 2);
    // A store that cannot be opened: the error comes back, nothing panics.
    rt.block_on(async {
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = builder(dir.path())
            .with_wal_dir(file.join("wal"))
            .build()
            .unwrap_err();
        assert!(
            matches!(err, genai_audit_exporter::Error::Store(_)),
            "{err}"
        );
    });
}

#[test]
fn shutdown_signs_a_checkpoint_that_verify_accepts_and_a_flipped_byte_fails() {
    use genai_audit_store::StoreLocation;
    use genai_audit_store::integrity::{FindingKind, IntegrityKey, NoProgress, VerifyOptions};

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys/integrity.key");
    let exporter = builder(dir.path())
        .with_integrity_key_file(&key_file)
        .build()
        .unwrap();
    let audit = exporter.handle();
    let provider = provider(exporter);
    emit(&provider, CALLS);
    provider.shutdown().unwrap();
    audit.shutdown().unwrap();

    let public = IntegrityKey::load_or_create(&key_file)
        .unwrap()
        .public_key();
    let mut opts = VerifyOptions::new(vec![public]);
    opts.strict = true;
    let store = dir.path().join("store");
    let loc = StoreLocation::open(&store.display().to_string(), &[]).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let verify = |opts: &VerifyOptions| {
        rt.block_on(genai_audit_store::integrity::verify(
            &loc,
            opts,
            std::sync::Arc::new(NoProgress),
        ))
        .unwrap()
    };
    let report = verify(&opts);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report.checkpoints_total >= 1 && report.files_total >= 1,
        "{report:?}"
    );
    assert_eq!(report.files_valid, report.files_total);

    // The signed SHA-256 is what protects the files: one flipped byte is named.
    let parquet = walk_parquet(&store.join("audit_log"));
    let mut bytes = std::fs::read(&parquet[0]).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&parquet[0], bytes).unwrap();
    let report = verify(&opts);
    assert!(
        report
            .problems
            .iter()
            .any(|f| f.kind == FindingKind::Modified),
        "{:?}",
        report.problems
    );
}

fn walk_parquet(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_parquet(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out
}
