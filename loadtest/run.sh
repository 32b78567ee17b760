#!/usr/bin/env bash
# The benchmark suite in one command (about 15 minutes). It measures the committed HEAD: the
# commit is exported to a scratch tree and built there (release, its own target dir), so work
# in progress in the tree cannot leak into the figures. Then every scenario runs against the
# hub and the ceiling, and the report lands in loadtest/results/<date>-<commit>.md (+ .json).
#   bash loadtest/run.sh                 # the full suite
#   bash loadtest/run.sh --quick         # a harness check, a few minutes (figures not comparable)
#   bash loadtest/run.sh --only S3,S4    # some scenarios (see loadtest/README.md)
# LOADTEST_REV=<commit> measures another commit.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rev="$(git -C "$repo" rev-parse "${LOADTEST_REV:-HEAD}")"
src="${TMPDIR:-/tmp}/sessionhub-bench-src-$rev"
if [ ! -f "$src/Cargo.toml" ]; then
    mkdir -p "$src"
    git -C "$repo" archive "$rev" | tar -x -C "$src"
fi
export CARGO_TARGET_DIR="$repo/target/bench"
# git archive stamps files with the commit time, and cargo's freshness check compares mtimes
# (not paths): without this touch a binary built from another commit could pass as fresh.
find "$src" -type f \( -name '*.rs' -o -name 'Cargo.toml' \) -exec touch {} +
# One invocation for both packages, so features unify once and nothing builds twice.
cargo build --release --manifest-path "$src/Cargo.toml" -p sessionhub -p loadtest --bins
export LOADTEST_BIN_DIR="$CARGO_TARGET_DIR/release" LOADTEST_COMMIT="$rev" LOADTEST_REPO="$repo"
mkdir -p "$repo/loadtest/results"
exec "$LOADTEST_BIN_DIR/suite" --out "$repo/loadtest/results" --scratch "$repo/loadtest/results/tmp" "$@"
