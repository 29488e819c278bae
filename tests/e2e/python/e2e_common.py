"""Shared parts of the end-to-end apps: dependency check, resource, and the calls they make.

Every app makes the same calls against the mock OpenAI server (mock_openai.py), each inside a
parent span named `case <name>`, and prints one JSON line per call on stdout:
`{"case": ..., "trace_id": ..., "parent_span_id": ...}` (hex ids), so a test can find the record
of each call by its parent span. The GenAI span itself is made by the instrumentation under test.
"""

import importlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
INSTALL_HINT = "run `python3 -m pip install -r tests/requirements.txt`"
# Exit code of an app whose Python packages are missing or not the pinned versions.
EXIT_MISSING_PACKAGES = 3

USER_ID = "user-7f3a9c"
EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PHONE = "+1-202-555-0143"
PII_PROMPT = (
    f"Please email the invoice to {EMAIL}, charge my card {CARD} "
    f"and call me back on {PHONE}."
)
BASIC_PROMPT = "What is the capital of France?"
STREAM_PROMPT = "Count from one to five."
REASONING_PROMPT = "What is six times seven?"
EMBED_INPUT = "The quick brown fox jumps over the lazy dog"


def require(modules, distributions):
    """Exits with a clear message unless every module imports and every distribution is
    installed at the version pinned in tests/requirements.txt."""
    problems = []
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ImportError as e:
            problems.append(f"cannot import {mod}: {e}")
    pins = {}
    try:
        for line in REQUIREMENTS.read_text().splitlines():
            m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s#;]+)", line)
            if m:
                pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    except OSError as e:
        problems.append(f"cannot read {REQUIREMENTS}: {e}")
    for dist in distributions:
        want = pins.get(dist)
        if want is None:
            problems.append(f"{dist} is not pinned in tests/requirements.txt")
            continue
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:
            problems.append(f"{dist}=={want} is not installed")
            continue
        if have != want:
            problems.append(f"{dist} {have} is installed, tests/requirements.txt pins {want}")
    if problems:
        print(
            "genai-audit e2e: Python packages missing or not at the pinned versions:\n  "
            + "\n  ".join(problems)
            + f"\n{INSTALL_HINT}",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(EXIT_MISSING_PACKAGES)


def resource(service_name):
    from opentelemetry.sdk.resources import Resource

    return Resource.create(
        {
            "service.name": service_name,
            "service.version": "1.2.3",
            "deployment.environment.name": "e2e",
        }
    )


def report(case, span):
    ctx = span.get_span_context()
    print(
        json.dumps(
            {
                "case": case,
                "trace_id": f"{ctx.trace_id:032x}",
                "parent_span_id": f"{ctx.span_id:016x}",
            }
        ),
        flush=True,
    )


def run_calls(client, tracer, user_kwargs, user_scope):
    """Makes the calls of every app. `user_kwargs` go to the chat calls (e.g. `user=`);
    `user_scope()` is a context manager that attaches the end user around the chat calls
    (e.g. as baggage)."""
    import openai

    def case(name):
        return tracer.start_as_current_span(f"case {name}")

    with user_scope():
        with case("chat_basic") as span:
            report("chat_basic", span)
            r = client.chat.completions.create(
                model="gpt-4.1",
                messages=[
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": BASIC_PROMPT},
                ],
                temperature=0.2,
                max_tokens=100,
                **user_kwargs,
            )
            assert r.usage.prompt_tokens == 1234, r

        with case("chat_pii") as span:
            report("chat_pii", span)
            r = client.chat.completions.create(
                model="gpt-4.1",
                messages=[{"role": "user", "content": PII_PROMPT}],
                **user_kwargs,
            )
            assert EMAIL in r.choices[0].message.content, r

        with case("chat_stream") as span:
            report("chat_stream", span)
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": STREAM_PROMPT}],
                stream=True,
                stream_options={"include_usage": True},
                **user_kwargs,
            )
            text = []
            usage = None
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
                if chunk.usage:
                    usage = chunk.usage
            assert "".join(text) == "One, two, three, four, five.", text
            assert usage is not None and usage.prompt_tokens == 321, usage

        with case("chat_reasoning") as span:
            report("chat_reasoning", span)
            r = client.chat.completions.create(
                model="o3-mini",
                messages=[{"role": "user", "content": REASONING_PROMPT}],
                reasoning_effort="low",
                **user_kwargs,
            )
            assert r.usage.completion_tokens_details.reasoning_tokens == 1200, r

        with case("error_429") as span:
            report("error_429", span)
            try:
                client.chat.completions.create(
                    model="rate-limit-me",
                    messages=[{"role": "user", "content": BASIC_PROMPT}],
                    **user_kwargs,
                )
                raise AssertionError("the mock should have answered 429")
            except openai.RateLimitError:
                pass

    # Outside the user scope: no end user on these.
    with case("embeddings") as span:
        report("embeddings", span)
        r = client.embeddings.create(model="text-embedding-3-small", input=EMBED_INPUT)
        assert len(r.data[0].embedding) == 4, r

    with case("error_500") as span:
        report("error_500", span)
        try:
            client.chat.completions.create(
                model="server-error-me",
                messages=[{"role": "user", "content": BASIC_PROMPT}],
            )
            raise AssertionError("the mock should have answered 500")
        except openai.InternalServerError:
            pass
