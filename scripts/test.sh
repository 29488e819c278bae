#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need, then runs
# formatting and lint checks and the whole test suite. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse one build directory outside the clone: fresh CI clones stay fast.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/genai-audit-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Python packages used by the cross-engine and real-client tests.
if [ -f tests/requirements.txt ]; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

# Headless Chromium renders the HTML report in its test (crates/query/tests/it/report_render.rs).
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo test --workspace --all-targets
# Doc examples are tests too (--all-targets does not run them).
cargo test --workspace --doc

# `genai-audit query --cluster` (Apache DataFusion Ballista) is behind the cargo feature
# `cluster`: it compiles DataFusion's default features too, a second build of that stack.
# The test runs Ballista's scheduler and executor in process.
echo "== cluster feature (Ballista)"
cargo clippy -p genai-audit-query -p genai-audit --features genai-audit-query/cluster-standalone,genai-audit/cluster --all-targets --quiet -- -D warnings
cargo test -p genai-audit-query --features cluster-standalone --test it cluster
