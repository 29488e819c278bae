//! The `genai-audit` binary.

fn main() {}
