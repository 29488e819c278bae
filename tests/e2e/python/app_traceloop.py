#!/usr/bin/env python3
"""An app instrumented with OpenLLMetry's OpenAI instrumentation
(`opentelemetry-instrumentation-openai`, by Traceloop), exporting OTLP/gRPC.

Usage: app_traceloop.py --openai-base-url http://127.0.0.1:PORT/v1 [--service-name NAME]

The collector comes from the standard OTEL_EXPORTER_OTLP_ENDPOINT (http://host:port, plaintext
gRPC). Content (prompts and replies as `gen_ai.input.messages` / `gen_ai.output.messages` span
attributes) is on by default; TRACELOOP_TRACE_CONTENT=false turns it off. With --use-events the
instrumentation is built with `use_attributes=False` and sends content as OTLP log events
(`gen_ai.user.message`, `gen_ai.choice`, ...) instead. The end user is passed the OpenAI way, as
the `user=` parameter of the chat calls (recorded as `gen_ai.user`).
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
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
        "opentelemetry.sdk._logs",
        "opentelemetry.instrumentation.openai",
    ],
    [
        "openai",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-grpc",
        "opentelemetry-instrumentation-openai",
        "opentelemetry-semantic-conventions-ai",
    ],
)

import openai  # noqa: E402
from opentelemetry import _logs, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: E402
    OTLPSpanExporter,
)
from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--openai-base-url", required=True)
    ap.add_argument("--service-name", default="e2e-traceloop-openai")
    ap.add_argument(
        "--use-events",
        action="store_true",
        help="content as OTLP log events (use_attributes=False) instead of span attributes",
    )
    args = ap.parse_args()
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        sys.exit("OTEL_EXPORTER_OTLP_ENDPOINT must name the collector (http://host:port)")

    resource = e2e_common.resource(args.service_name)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    logger_provider = None
    if args.use_events:
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        _logs.set_logger_provider(logger_provider)
        OpenAIInstrumentor(use_attributes=False).instrument(
            tracer_provider=tracer_provider, logger_provider=logger_provider
        )
    else:
        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)

    client = openai.OpenAI(
        base_url=args.openai_base_url, api_key="sk-e2e-not-a-real-key", max_retries=0, timeout=10
    )
    tracer = trace.get_tracer("genai-audit-e2e-app")
    try:
        e2e_common.run_calls(
            client, tracer, {"user": e2e_common.USER_ID}, contextlib.nullcontext
        )
    finally:
        tracer_provider.shutdown()
        if logger_provider is not None:
            logger_provider.shutdown()


if __name__ == "__main__":
    main()
