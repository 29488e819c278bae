#!/usr/bin/env python3
"""A Python app calling an OpenAI-compatible API with the `openai` client, instrumented by the
official OpenTelemetry instrumentation (`opentelemetry-instrumentation-openai-v2`), exporting
OTLP/HTTP to `genai-audit serve`. See README.md beside this file.

Everything is configured by the standard environment variables:

* OPENAI_BASE_URL / OPENAI_API_KEY: the API (the README points them at the offline mock);
* OTEL_EXPORTER_OTLP_ENDPOINT: the collector, http://host:4318 (the exporters add /v1/traces and
  /v1/logs);
* OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES (e.g. tenant.id=acme);
* OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental: the latest GenAI conventions;
* OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_and_event: let the instrumentation
  see prompts and replies. genai-audit stores only their keyed hashes, sizes and PII flags.

The end user is set as baggage `user.id`, which the BaggageSpanProcessor copies onto the spans.
"""

import os
import sys

try:
    import openai
    from opentelemetry import _logs, baggage, context, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
except ImportError as e:
    sys.exit(f"{e}: run `python3 -m pip install -r tests/requirements.txt`")


def main():
    for var in ("OPENAI_BASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if not os.environ.get(var):
            sys.exit(f"{var} must be set (see examples/python-openai/README.md)")

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    trace.set_tracer_provider(tracer_provider)
    _logs.set_logger_provider(logger_provider)
    OpenAIInstrumentor().instrument(
        tracer_provider=tracer_provider, logger_provider=logger_provider
    )

    client = openai.OpenAI(max_retries=0, timeout=10)
    token = context.attach(baggage.set_baggage("user.id", "alice"))
    try:
        chat = client.chat.completions.create(
            model="gpt-4.1",
            messages=[
                {"role": "system", "content": "Answer in one sentence."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
        )
        print(f"chat: {chat.model}, {chat.usage.prompt_tokens} in / "
              f"{chat.usage.completion_tokens} out")
        emb = client.embeddings.create(
            model="text-embedding-3-small", input="The quick brown fox"
        )
        print(f"embeddings: {emb.model}, {emb.usage.prompt_tokens} in")
    finally:
        context.detach(token)
        # Send everything before exiting.
        tracer_provider.shutdown()
        logger_provider.shutdown()


if __name__ == "__main__":
    main()
