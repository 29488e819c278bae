//! Integration tests of genai-audit-receiver: real sockets on 127.0.0.1, real OTLP captures.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod grpc;
mod http;
mod security;
mod support;
