#!/usr/bin/env python3
"""A tiny OpenAI-compatible HTTP server for end-to-end tests (stdlib only).

Listens on 127.0.0.1 (port 0 unless --port is given) and prints `PORT <n>` on stdout once it
accepts connections. Serves:

* POST /v1/chat/completions: fixed replies and usage per model; `stream: true` answers as
  server-sent events, with a final usage chunk when `stream_options.include_usage` is set;
  model `rate-limit-me` gets HTTP 429 and model `server-error-me` HTTP 500, each with an
  OpenAI-style error body;
* POST /v1/embeddings: a 4-dimensional vector per input (float or base64);
* anything else: 404 with an OpenAI-style error body.

Token counts and ids are fixed (see CHAT and EMBEDDINGS below) so tests can check exact costs.
A chat whose last user message contains an `@` is answered with the PII reply (it repeats the
email and phone number) and the PII usage. The server exits by itself after --lifetime seconds
(default 120), or when its stdin is closed, so a killed test never leaves it behind.
"""

import argparse
import base64
import json
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREATED = 1795388748

# model requested -> (response model, response id, reply, prompt, completion, cached, reasoning)
CHAT = {
    "gpt-4.1": (
        "gpt-4.1-2025-04-14",
        "chatcmpl-e2eBasic0000000000000000001",
        "The capital of France is Paris.",
        1234,
        567,
        200,
        0,
    ),
    "gpt-4o-mini": (
        "gpt-4o-mini-2024-07-18",
        "chatcmpl-e2eStream000000000000000002",
        "One, two, three, four, five.",
        321,
        89,
        64,
        0,
    ),
    "o3-mini": (
        "o3-mini-2025-01-31",
        "chatcmpl-e2eReason000000000000000003",
        "42.",
        900,
        1500,
        512,
        1200,
    ),
}
# The answer to a prompt containing PII (same response model as the requested one).
PII = (
    "chatcmpl-e2ePii00000000000000000000004",
    "Noted: I will write to jane.doe@example.com and call +1-202-555-0143.",
    150,
    42,
    0,
    0,
)
EMBEDDINGS = {"text-embedding-3-small": 11, "text-embedding-3-large": 11}
ERRORS = {
    "rate-limit-me": (
        429,
        {
            "message": "Rate limit reached for gpt-4.1 in organization org-e2e on tokens per min "
            "(TPM): Limit 30000, Used 30000, Requested 1234. Please try again in 2.468s.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    ),
    "server-error-me": (
        500,
        {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    ),
}


def usage(prompt, completion, cached, reasoning):
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def last_user_text(messages):
    for m in reversed(messages or []):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-openai/1"

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    def send_json(self, status, obj, extra_headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", "req_e2e_mock")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_error_body(self, status, err, extra_headers=()):
        self.send_json(status, {"error": err}, extra_headers)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_error_body(400, {"message": "invalid JSON", "type": "invalid_request_error"})
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/chat/completions"):
            self.chat(req)
        elif path.endswith("/embeddings"):
            self.embeddings(req)
        else:
            self.send_error_body(
                404, {"message": f"Unknown path {self.path}", "type": "invalid_request_error"}
            )

    def chat(self, req):
        model = req.get("model", "")
        if model in ERRORS:
            status, err = ERRORS[model]
            # A real 429 carries these; `retry-after` would make the client retry unless told.
            headers = [("retry-after", "3"), ("x-should-retry", "false")] if status == 429 else []
            self.send_error_body(status, err, headers)
            return
        if model not in CHAT:
            self.send_error_body(
                404,
                {
                    "message": f"The model `{model}` does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                },
            )
            return
        response_model, rid, reply, prompt, completion, cached, reasoning = CHAT[model]
        if "@" in last_user_text(req.get("messages")):
            rid, reply, prompt, completion, cached, reasoning = PII
        u = usage(prompt, completion, cached, reasoning)
        if req.get("stream"):
            self.stream(req, response_model, rid, reply, u)
            return
        self.send_json(
            200,
            {
                "id": rid,
                "object": "chat.completion",
                "created": CREATED,
                "model": response_model,
                "system_fingerprint": "fp_e2e",
                "service_tier": "default",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": reply,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": u,
            },
        )

    def stream(self, req, response_model, rid, reply, u):
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": response_model,
            "system_fingerprint": "fp_e2e",
            "service_tier": "default",
        }
        words = reply.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        chunks = [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        chunks += [{"index": 0, "delta": {"content": p}, "finish_reason": None} for p in pieces]
        chunks.append({"index": 0, "delta": {}, "finish_reason": "stop"})
        events = []
        for c in chunks:
            ev = dict(base, choices=[c])
            if include_usage:
                ev["usage"] = None
            events.append(ev)
        if include_usage:
            events.append(dict(base, choices=[], usage=u))
        body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        body += b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", "req_e2e_mock")
        self.end_headers()
        self.wfile.write(body)

    def embeddings(self, req):
        model = req.get("model", "")
        if model not in EMBEDDINGS:
            self.send_error_body(
                404,
                {
                    "message": f"The model `{model}` does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                },
            )
            return
        inputs = req.get("input")
        if not isinstance(inputs, list) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        vector = [0.125, -0.25, 0.5, 1.0]
        data = []
        for i, _ in enumerate(inputs):
            if req.get("encoding_format") == "base64":
                emb = base64.b64encode(struct.pack("<4f", *vector)).decode()
            else:
                emb = vector
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = EMBEDDINGS[model]
        self.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)

    def watch_stdin():
        try:
            sys.stdin.read()
        except Exception:  # noqa: BLE001 - any end of stdin ends the server
            pass
        server.shutdown()

    def deadline():
        time.sleep(args.lifetime)
        server.shutdown()

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Thread(target=deadline, daemon=True).start()
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
