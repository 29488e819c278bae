//! Integration tests of the query engine on stores written by the store crate's `Committer`.

#![allow(clippy::unwrap_used)]

#[cfg(feature = "cluster-standalone")]
mod cluster;
mod common;
mod errors;
mod hash;
mod read_only;
mod report;
mod report_render;
mod table;
