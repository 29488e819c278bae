//! The Rust OpenTelemetry SDK's own OTLP exporters (gRPC, HTTP protobuf, HTTP JSON) as clients.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor};

use super::*;

/// Keeps finished spans, so the test exports them itself and sees each export's result.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Collect {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// One LLM call as an instrumented application reports it.
struct Call {
    model: &'static str,
    input: i64,
    output: i64,
    user: String,
    /// Expected `total_cost_usd` from the shipped price table, exactly.
    cost: &'static str,
}

/// Spans made by the SDK's tracer, with GenAI semantic-convention attributes.
fn sdk_spans(calls: &[Call]) -> Vec<SpanData> {
    let collect = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(collect.clone())
        .build();
    let tracer = provider.tracer("genai-audit-e2e");
    for c in calls {
        let mut span = tracer
            .span_builder(format!("chat {}", c.model))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", "openai"),
                KeyValue::new("gen_ai.request.model", c.model),
                KeyValue::new("gen_ai.request.temperature", 0.2),
                KeyValue::new("gen_ai.usage.input_tokens", c.input),
                KeyValue::new("gen_ai.usage.output_tokens", c.output),
                KeyValue::new("user.id", c.user.clone()),
                KeyValue::new("gen_ai.conversation.id", "conversation-42"),
                KeyValue::new("server.address", "api.openai.com"),
            ])
            .start(&tracer);
        span.end();
    }
    provider.shutdown().unwrap();
    std::mem::take(&mut *collect.0.lock().unwrap())
}

fn calls(transport: &str) -> Vec<Call> {
    vec![
        Call {
            model: "gpt-4.1",
            input: 1000,
            output: 500,
            user: format!("alice-{transport}"),
            // 1000 × $2/Mtok + 500 × $8/Mtok
            cost: "0.006000000000",
        },
        Call {
            model: "gpt-4o-mini",
            input: 200,
            output: 100,
            user: format!("bob-{transport}"),
            // 200 × $0.15/Mtok + 100 × $0.60/Mtok
            cost: "0.000090000000",
        },
    ]
}

#[test]
fn sdk_exporters_over_grpc_and_http_land_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let resource = Resource::builder()
        .with_service_name("e2e-sdk-service")
        .with_attribute(KeyValue::new("service.version", "1.2.3"))
        .with_attribute(KeyValue::new("deployment.environment", "test"))
        .build();
    let transports = ["grpc", "http-protobuf", "http-json"];
    let mut sent = Vec::new();
    rt().block_on(async {
        for transport in transports {
            let spans = sdk_spans(&calls(transport));
            assert_eq!(spans.len(), 2);
            let result = match transport {
                "grpc" => {
                    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(format!("http://{}", server.grpc))
                        .with_timeout(REQUEST_TIMEOUT)
                        .build()
                        .unwrap();
                    exporter.set_resource(&resource);
                    exporter.export(spans.clone()).await
                }
                http => {
                    let protocol = if http == "http-json" {
                        Protocol::HttpJson
                    } else {
                        Protocol::HttpBinary
                    };
                    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_protocol(protocol)
                        .with_endpoint(server.traces_url())
                        .with_timeout(REQUEST_TIMEOUT)
                        .build()
                        .unwrap();
                    exporter.set_resource(&resource);
                    exporter.export(spans.clone()).await
                }
            };
            result.unwrap_or_else(|e| panic!("{transport} export: {e}\n{}", server.log()));
            sent.push((transport, spans));
        }
    });
    let store = server.store();
    let log = server.stop();
    let rows = rows_by_id(read_rows(&store));
    assert_eq!(rows.len(), 6, "{log}");
    for (transport, spans) in &sent {
        for (span, call) in spans.iter().zip(calls(transport)) {
            let id = rid(
                &span.span_context.trace_id().to_bytes(),
                &span.span_context.span_id().to_bytes(),
            );
            let row = rows
                .get(&id)
                .unwrap_or_else(|| panic!("{transport}: span {} not stored", call.model));
            let want = [
                ("request_model", Some(call.model.to_owned())),
                ("operation", Some("chat".to_owned())),
                ("provider", Some("openai".to_owned())),
                ("input_tokens", Some(call.input.to_string())),
                ("output_tokens", Some(call.output.to_string())),
                ("total_tokens", Some((call.input + call.output).to_string())),
                ("total_cost_usd", Some(call.cost.to_owned())),
                ("cost_source", Some("price_table".to_owned())),
                ("user_id", Some(call.user.clone())),
                ("session_id", Some("conversation-42".to_owned())),
                ("service_name", Some("e2e-sdk-service".to_owned())),
                ("service_version", Some("1.2.3".to_owned())),
                ("deployment_environment", Some("test".to_owned())),
                ("server_address", Some("api.openai.com".to_owned())),
                ("request_temperature", Some("0.2".to_owned())),
                ("span_name", Some(format!("chat {}", call.model))),
                (
                    "trace_id",
                    Some(const_hex::encode(span.span_context.trace_id().to_bytes())),
                ),
                ("status", Some("unset".to_owned())),
                (
                    "source",
                    Some(
                        if *transport == "grpc" {
                            "otlp-grpc"
                        } else {
                            "otlp-http"
                        }
                        .to_owned(),
                    ),
                ),
                ("pii_detected", Some("false".to_owned())),
            ];
            for (column, value) in want {
                assert_eq!(
                    row.get(column),
                    value.as_deref(),
                    "{transport} {}: column {column}\n{row:#?}",
                    call.model
                );
            }
            assert_eq!(row.tenant, "default");
        }
    }
}
