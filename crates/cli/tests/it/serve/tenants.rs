//! Bearer tokens: no token or a wrong one is refused on both transports; a good token fixes the
//! tenant partition, whatever the resource claims.

use super::*;

const ACME: &str = "acme-0123456789abcdef-secret";
const BETA: &str = "beta-fedcba9876543210-secret";

#[test]
fn tokens_authenticate_and_fix_the_tenant_partition() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        &format!(
            "[[receiver.auth.tokens]]\ntoken = \"{ACME}\"\ntenant = \"acme\"\n\n\
             [[receiver.auth.tokens]]\ntoken = \"{BETA}\"\ntenant = \"beta\"\n"
        ),
    );
    let server = Server::start_with(
        dir.path(),
        Opts {
            args: &["--config", config.to_str().unwrap()],
            ..Opts::default()
        },
    );
    let claims_other = |series: u32| {
        let (mut req, rids) = chat_request(series, 2);
        req.resource_spans[0]
            .resource
            .as_mut()
            .unwrap()
            .attributes
            .push(kv("tenant.id", "other"));
        (req, rids)
    };
    let url = server.traces_url();
    let pb = Some("application/x-protobuf");
    let (acme_http, acme_grpc, beta_http, beta_grpc) = rt().block_on(async {
        let client = http_client();
        let (req, _) = claims_other(1);
        let body = req.encode_to_vec();
        for (what, headers) in [
            ("no token", vec![]),
            (
                "wrong token",
                vec![("authorization", "Bearer acme-0123456789abcdef-secreT")],
            ),
            ("not bearer", vec![("authorization", "Basic YWNtZTphY21l")]),
        ] {
            let r = post(&client, &url, pb, body.clone(), &headers).await;
            assert_eq!(r.status, 401, "{what}: {r:?}");
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|h| h.starts_with("Bearer")),
                "{what}: {r:?}"
            );
            assert_eq!(
                r.rpc_status().code,
                tonic::Code::Unauthenticated as i32,
                "{what}"
            );
        }
        for token in [None, Some("beta-fedcba9876543210-secreT")] {
            let st = grpc_traces(server.grpc, req.clone(), token)
                .await
                .unwrap_err();
            assert_eq!(st.code(), tonic::Code::Unauthenticated, "{token:?}: {st:?}");
        }

        let send_http = |series: u32, token: &'static str| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let (req, rids) = claims_other(series);
                let auth = format!("Bearer {token}");
                let r = post(
                    &client,
                    &url,
                    pb,
                    req.encode_to_vec(),
                    &[("authorization", &auth)],
                )
                .await;
                assert_eq!(r.status, 200, "{r:?}");
                rids
            }
        };
        let send_grpc = |series: u32, token: &'static str| async move {
            let (req, rids) = claims_other(series);
            grpc_traces(server.grpc, req, Some(token)).await.unwrap();
            rids
        };
        (
            send_http(10, ACME).await,
            send_grpc(11, ACME).await,
            send_http(20, BETA).await,
            send_grpc(21, BETA).await,
        )
    });
    let m = server.metrics();
    assert_eq!(
        metric(
            &m,
            "genai_audit_receiver_requests_total{transport=\"http\",signal=\"traces\",outcome=\"unauthenticated\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "genai_audit_receiver_requests_total{transport=\"grpc\",signal=\"traces\",outcome=\"unauthenticated\"}"
        ),
        2.0
    );
    let store = server.store();
    let log = server.stop();
    assert!(
        !log.contains(ACME) && !log.contains(BETA),
        "a token leaked into the log\n{log}"
    );
    let rows = rows_by_id(read_rows(&store));
    assert_eq!(rows.len(), 8, "{log}");
    for (rids, tenant) in [
        (&acme_http, "acme"),
        (&acme_grpc, "acme"),
        (&beta_http, "beta"),
        (&beta_grpc, "beta"),
    ] {
        for id in rids {
            let row = &rows[id];
            assert_eq!(row.tenant, tenant, "{row:#?}");
            assert!(
                row.file.starts_with(&format!("audit_log/tenant={tenant}/")),
                "{}",
                row.file
            );
        }
    }
}
