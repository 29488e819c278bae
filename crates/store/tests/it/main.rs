//! Integration tests of genai-audit-store.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod commit;
mod common;
mod engines;
mod integrity;
mod maintenance;
mod s3;
mod wal;
mod writer;
