#!/usr/bin/env bash
# The one test command (README, .ci/run): installs everything the tests need, then runs every
# test in the workspace. Idempotent; fast when everything is already installed.
#   - tests/chatkit/setup.sh : Python venv with openai-chatkit (ChatKit oracle)
#   - tests/mcp/setup.sh     : Python venv with mcp (the MCP server of tests/mcp_*.rs)
#   - tests/agui/setup.sh    : @ag-ui/client 1.0.0 and 0.0.59 (AG-UI conformance)
#   - tests/browser/setup.sh : Debian chromium + playwright-core (browser tests)
#   - tests/openapi/setup.sh : Python venv with openapi-spec-validator (/openapi.json)
#   - tests/typescript/setup.sh : npm typescript (static/hub.d.ts checks)
#   - tests/fuzz/setup.sh    : cargo-fuzz (tests/fuzz_smoke.rs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive
# A one-off build keeps no incremental state (about 2 GB of disk a run would never reuse).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

for setup in tests/*/setup.sh; do
  echo "== $setup"
  bash "$setup"
done

echo "== cargo test --workspace"
# Test binaries (one per area, Cargo.toml [[test]]) run one after another; tests inside each
# binary run on both cores.
cargo test --workspace --no-fail-fast
