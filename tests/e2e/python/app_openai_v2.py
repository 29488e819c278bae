#!/usr/bin/env python3
"""An app instrumented with the official OpenTelemetry OpenAI instrumentation
(`opentelemetry-instrumentation-openai-v2`), exporting OTLP/HTTP protobuf.

Usage: app_openai_v2.py --openai-base-url http://127.0.0.1:PORT/v1 [--service-name NAME]

The collector comes from the standard OTEL_EXPORTER_OTLP_ENDPOINT (http://host:port; the
exporter appends /v1/traces and /v1/logs). What the instrumentation emits is chosen by its own
environment variables, set by the caller:

* OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental: latest GenAI conventions (spans made
  by opentelemetry-util-genai); without it, the legacy v1.30 conventions;
* OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: `span_only` / `event_only` /
  `span_and_event` on the latest conventions, `true` on the legacy path (content is then sent as
  log events only).

The end user is attached as baggage `user.id` and copied onto every span started under it by
the BaggageSpanProcessor (this instrumentation records no user of its own).
"""

import argparse
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common  # noqa: E402

e2e_common.require(
    [
        "openai",
        "opentelemetry.sdk.trace",
        "opentelemetry.sdk._logs",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.processor.baggage",
    ],
    [
        "openai",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-util-genai",
        "opentelemetry-processor-baggage",
    ],
)

import openai  # noqa: E402
from opentelemetry import _logs, baggage, context, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: E402
    OTLPSpanExporter,
)
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor  # noqa: E402
from opentelemetry.processor.baggage import (  # noqa: E402
    ALLOW_ALL_BAGGAGE_KEYS,
    BaggageSpanProcessor,
)
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--openai-base-url", required=True)
    ap.add_argument("--service-name", default="e2e-openai-v2")
    ap.add_argument(
        "--flush-logs-first",
        action="store_true",
        help="export the log records (content) before the spans they belong to",
    )
    args = ap.parse_args()
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        sys.exit("OTEL_EXPORTER_OTLP_ENDPOINT must name the collector (http://host:port)")

    resource = e2e_common.resource(args.service_name)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    _logs.set_logger_provider(logger_provider)

    OpenAIInstrumentor().instrument(
        tracer_provider=tracer_provider, logger_provider=logger_provider
    )

    client = openai.OpenAI(
        base_url=args.openai_base_url, api_key="sk-e2e-not-a-real-key", max_retries=0, timeout=10
    )

    @contextlib.contextmanager
    def user_scope():
        token = context.attach(baggage.set_baggage("user.id", e2e_common.USER_ID))
        try:
            yield
        finally:
            context.detach(token)

    tracer = trace.get_tracer("genai-audit-e2e-app")
    try:
        e2e_common.run_calls(client, tracer, {}, user_scope)
    finally:
        # Flush everything before exiting. Both orders happen in real apps (two batch
        # processors, each on its own schedule); the collector must merge either way.
        if args.flush_logs_first:
            logger_provider.shutdown()
            tracer_provider.shutdown()
        else:
            tracer_provider.shutdown()
            logger_provider.shutdown()


if __name__ == "__main__":
    main()
