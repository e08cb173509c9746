#!/usr/bin/env bash
# Sets up (idempotently) and runs every check: formatting, clippy, and all tests against the
# real models. This is the command CI runs (.ci/run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (release profile, shares the build with the tests)"
cargo clippy --release --locked --all-targets -- -D warnings
step "cargo test (release: Whisper in a debug build is far too slow)"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
set +e
cargo test --release --locked -- --test-threads=2 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
# One closing line with the totals over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$LOG"
exit "$status"
