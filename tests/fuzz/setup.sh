#!/usr/bin/env bash
# Installs cargo-fuzz (pinned) for tests/fuzz_smoke.rs. The fuzz targets build on the stable
# toolchain with RUSTC_BOOTSTRAP=1 (the test sets it), so no nightly is needed.
# Idempotent: nothing happens when the pinned version is installed.
set -euo pipefail
want="0.13.2"
if command -v cargo-fuzz >/dev/null 2>&1 && cargo fuzz --version 2>/dev/null | grep -q " $want"; then
  echo "fuzz setup: ok (cargo-fuzz $want)"
  exit 0
fi
echo "fuzz setup: cargo install cargo-fuzz $want (a few minutes)"
cargo install cargo-fuzz --version "$want" --locked --quiet
cargo fuzz --version
