//! # genai-audit-store
//!
//! Placeholder crate: the store component of genai-audit is specified in the issue tracker and not
//! implemented yet. It exists so the workspace layout (and its one-way dependency arrows) is in
//! place from the start.
