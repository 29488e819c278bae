//! The example app shared by `rust-sdk` and `rust-inprocess`: a support bot that makes a few LLM
//! calls and reports each as an OpenTelemetry span with the GenAI semantic-convention
//! attributes an instrumentation library would set. The calls themselves are simulated (fixed
//! token counts), so the examples run offline; only where the spans go differs.

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The resource every span carries: the service, and the tenant the records are filed under.
pub fn resource() -> Resource {
    Resource::builder()
        .with_service_name("support-bot")
        .with_attribute(KeyValue::new("service.version", "1.4.2"))
        .with_attribute(KeyValue::new("deployment.environment.name", "example"))
        .with_attribute(KeyValue::new("tenant.id", "acme"))
        .build()
}

/// One simulated LLM call.
pub struct Call {
    /// `gen_ai.operation.name`.
    pub operation: &'static str,
    /// `gen_ai.request.model`.
    pub model: &'static str,
    /// `gen_ai.response.model` (the dated version the provider answers with; unused on errors).
    pub response_model: &'static str,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens (chat only).
    pub output_tokens: i64,
    /// The end user.
    pub user: &'static str,
    /// An error type when the call failed.
    pub error: Option<&'static str>,
}

/// What the bot does in one run.
pub const CALLS: &[Call] = &[
    Call {
        operation: "chat",
        model: "gpt-4o-mini",
        response_model: "gpt-4o-mini-2024-07-18",
        input_tokens: 1200,
        output_tokens: 300,
        user: "alice",
        error: None,
    },
    Call {
        operation: "chat",
        model: "gpt-4.1",
        response_model: "gpt-4.1-2025-04-14",
        input_tokens: 2500,
        output_tokens: 800,
        user: "bob",
        error: None,
    },
    Call {
        operation: "embeddings",
        model: "text-embedding-3-small",
        response_model: "text-embedding-3-small",
        input_tokens: 5000,
        output_tokens: 0,
        user: "alice",
        error: None,
    },
    Call {
        operation: "chat",
        model: "gpt-4.1",
        response_model: "",
        input_tokens: 0,
        output_tokens: 0,
        user: "carol",
        error: Some("rate_limit_exceeded"),
    },
];

/// Makes the calls, one span each, under a request span that is not a GenAI span (it is not
/// audited). Returns how many GenAI spans were made.
pub fn run(provider: &SdkTracerProvider) -> usize {
    let tracer = provider.tracer("support-bot");
    let mut request = tracer
        .span_builder("POST /tickets/reply")
        .with_kind(SpanKind::Server)
        .start(&tracer);
    request.set_attribute(KeyValue::new("http.request.method", "POST"));
    let cx = opentelemetry::Context::current_with_span(request);
    for c in CALLS {
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", c.operation),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", c.model),
            KeyValue::new("user.id", c.user),
            KeyValue::new("gen_ai.conversation.id", "ticket-4711"),
            KeyValue::new("server.address", "api.openai.com"),
        ];
        if c.operation == "chat" {
            attrs.push(KeyValue::new("gen_ai.request.temperature", 0.2));
        }
        // A failed call has no response: no response model, no usage.
        if c.error.is_none() {
            attrs.push(KeyValue::new("gen_ai.response.model", c.response_model));
            attrs.push(KeyValue::new("gen_ai.usage.input_tokens", c.input_tokens));
            if c.operation == "chat" {
                attrs.push(KeyValue::new("gen_ai.usage.output_tokens", c.output_tokens));
            }
        }
        if let Some(e) = c.error {
            attrs.push(KeyValue::new("error.type", e));
        }
        let mut span = tracer
            .span_builder(format!("{} {}", c.operation, c.model))
            .with_kind(SpanKind::Client)
            .with_attributes(attrs)
            .start_with_context(&tracer, &cx);
        if let Some(e) = c.error {
            span.set_status(Status::error(e));
        }
        span.end();
    }
    use opentelemetry::trace::TraceContextExt as _;
    cx.span().end();
    CALLS.len()
}
