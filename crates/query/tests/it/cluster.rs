//! The same SQL on a Ballista cluster (the in-process standalone scheduler and executor, which
//! deserialize the plan as a remote cluster would) gives the same rows as in process.

use genai_audit_query::datafusion::arrow::record_batch::RecordBatch;
use genai_audit_query::datafusion::arrow::util::pretty::pretty_format_batches;
use genai_audit_query::{QueryEngine, QueryOptions};

use crate::common::{DAY_US, DAY0_US, TestStore, hash_key, synthetic_records};

/// Rows as sorted lines of text, so that results compare whatever order partitions finish in.
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1) // header
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// One day of `start_time`, as SQL timestamps.
fn day(n: i64) -> (String, String) {
    let ts = |us: i64| {
        let t = chrono::DateTime::from_timestamp_micros(us).unwrap();
        format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%SZ"))
    };
    (ts(DAY0_US + n * DAY_US), ts(DAY0_US + (n + 1) * DAY_US))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_in_process_give_the_same_rows() {
    let store = TestStore::new();
    store.commit(synthetic_records(600, 3, 4, 1)).await;
    store.commit(synthetic_records(300, 2, 4, 2)).await;
    // An uncommitted file in a partition directory: neither engine may read it.
    let files = store.engine().await.files();
    let committed = store.dir.path().join(&files[0].key);
    let stray = committed.with_file_name("uncommitted.parquet");
    std::fs::copy(&committed, &stray).unwrap();

    let options = || QueryOptions {
        hash_key: Some(hash_key()),
        ..QueryOptions::default()
    };
    let local = store.engine_with(options()).await;
    let cluster = QueryEngine::open_standalone(store.loc.clone(), options())
        .await
        .expect("standalone cluster");
    assert!(cluster.is_cluster() && !local.is_cluster());
    // Statements are planned as a job for the scheduler, not run here.
    let plan = cluster
        .sql("SELECT count(*) FROM audit_log")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    assert_eq!(plan.name(), "DistributedQueryExec");

    let (from, to) = day(1);
    let hash_of_a_prompt = local
        .collect("SELECT prompt_hash FROM audit_log WHERE prompt_hash IS NOT NULL LIMIT 1")
        .await
        .unwrap();
    let prompt_hash = rows(&hash_of_a_prompt)[0]
        .trim_matches(['|', ' '])
        .to_owned();
    let a_user = local
        .collect("SELECT min(user_id) FROM audit_log WHERE tenant = 'tenant1'")
        .await
        .unwrap();
    let user = rows(&a_user)[0].trim_matches(['|', ' ']).to_owned();
    let queries = [
        "SELECT count(*), count(DISTINCT record_id), sum(input_tokens) FROM audit_log".to_owned(),
        "SELECT tenant, dt, count(*) AS n, sum(total_cost_usd) AS usd FROM audit_log \
         GROUP BY tenant, dt"
            .to_owned(),
        // Pruned on the client by start_time: one day's files only.
        format!(
            "SELECT dt, user_id, count(*) FROM audit_log \
             WHERE start_time >= {from} AND start_time < {to} GROUP BY dt, user_id"
        ),
        format!(
            "SELECT record_id, call_id, tenant FROM audit_log \
             WHERE tenant = 'tenant1' AND user_id = '{user}'"
        ),
        // Calls counted once (the compliance report's grouping).
        "SELECT request_model, count(*) AS calls, sum(cost) FROM ( \
           SELECT tenant, call_id, max(request_model) AS request_model, \
                  max(total_cost_usd) AS cost FROM audit_log GROUP BY tenant, call_id) \
         GROUP BY request_model"
            .to_owned(),
        // max_repeated, which executors do not know, is sent as max (aliased or not).
        "SELECT tenant, max_repeated(user_id) AS u, count(*) FROM audit_log GROUP BY tenant"
            .to_owned(),
        "SELECT max_repeated(request_model) FROM audit_log".to_owned(),
        // A filter on the partition column only, and a limit.
        "SELECT count(*) FROM (SELECT record_id FROM audit_log WHERE dt = DATE '2026-11-25' \
         LIMIT 7)"
            .to_owned(),
        // audit_hash() on a literal is folded on the client: the key stays here.
        "SELECT count(*) FROM audit_log WHERE prompt_hash = audit_hash('no such prompt')"
            .to_owned(),
        format!(
            "SELECT count(*), audit_hash_key_id() FROM audit_log WHERE prompt_hash = '{prompt_hash}'"
        ),
        // No file left after pruning.
        "SELECT count(*) FROM audit_log WHERE tenant = 'nobody'".to_owned(),
    ];
    for sql in &queries {
        let expected = rows(&local.collect(sql).await.unwrap());
        let got = rows(
            &cluster
                .collect(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        );
        assert!(!expected.is_empty(), "{sql}: no rows");
        assert_eq!(got, expected, "{sql}");
    }
    // The stray file is not read: 900 committed rows.
    let total = rows(
        &cluster
            .collect("SELECT count(*) FROM audit_log")
            .await
            .unwrap(),
    );
    assert!(total[0].contains("900"), "{total:?}");

    // The read-only guard runs before anything is sent.
    let refused = cluster.sql("DROP TABLE audit_log").await.unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_url_that_is_not_df_is_refused() {
    let store = TestStore::new();
    let err = QueryEngine::open_cluster(
        store.loc.clone(),
        QueryOptions::default(),
        "http://localhost:50050",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("df://HOST:PORT"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_on_the_cluster_equal_the_reports_in_process() {
    use genai_audit_query::report::{self, CostBy, Report, Scope, Subject};

    let store = TestStore::new();
    store.commit(synthetic_records(600, 3, 4, 1)).await;
    store.commit(synthetic_records(300, 2, 4, 2)).await;
    let local = store.engine().await;
    let cluster = QueryEngine::open_standalone(store.loc.clone(), QueryOptions::default())
        .await
        .expect("standalone cluster");
    let a_user = local
        .collect("SELECT min(user_id) FROM audit_log")
        .await
        .unwrap();
    let user = rows(&a_user)[0].trim_matches(['|', ' ']).to_owned();
    let (from, to) = (
        chrono::DateTime::from_timestamp_micros(DAY0_US + DAY_US).unwrap(),
        chrono::DateTime::from_timestamp_micros(DAY0_US + 3 * DAY_US).unwrap(),
    );
    let scopes = [
        Scope::default(),
        Scope {
            from: Some(from),
            to: Some(to),
            tenant: Some("tenant1".into()),
        },
    ];
    async fn all(engine: &QueryEngine, scope: &Scope, user: &str) -> Vec<Report> {
        let mut out: Vec<Report> = vec![
            report::compliance(engine, scope).await.unwrap().into(),
            report::subject(engine, &Subject::user(user, None), scope)
                .await
                .unwrap()
                .into(),
        ];
        for by in [CostBy::Model, CostBy::User, CostBy::Day] {
            out.push(report::cost(engine, scope, by).await.unwrap().into());
        }
        // Reports are stamped with the time they were made: compare everything else.
        for r in &mut out {
            match r {
                Report::Compliance(c) => c.generated_at = chrono::DateTime::UNIX_EPOCH,
                Report::Subject(s) => s.generated_at = chrono::DateTime::UNIX_EPOCH,
                Report::Cost(c) => c.generated_at = chrono::DateTime::UNIX_EPOCH,
            }
        }
        out
    }
    for scope in &scopes {
        let expected = all(&local, scope, &user).await;
        let Report::Compliance(c) = &expected[0] else {
            unreachable!()
        };
        assert!(
            c.totals.requests > 0,
            "{scope:?}: an empty report proves nothing"
        );
        let got = all(&cluster, scope, &user).await;
        for (got, expected) in got.iter().zip(&expected) {
            let json = |r: &Report| {
                let mut out = Vec::new();
                r.render(report::ReportFormat::Json, &mut out).unwrap();
                serde_json::from_slice(&out).unwrap()
            };
            crate::common::assert_same_json(
                json(got),
                json(expected),
                &format!("{scope:?}: cluster vs in process"),
            );
        }
        assert_eq!(got.len(), expected.len());
    }
}
