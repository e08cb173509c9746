#!/usr/bin/env bash
# Sets up (idempotently) and runs every check: formatting, clippy, and all tests against the
# real models. This is the command CI runs (.ci/run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Everything but the slot tagger, which trains (one core, about a minute) while the checks
# and the tests build.
HARK_SETUP_TAGGER=skip bash scripts/setup.sh
LOG="$(mktemp)"
TAGGER_LOG="$(mktemp)"
bash scripts/train-slot-tagger.sh >"$TAGGER_LOG" 2>&1 &
TAGGER=$!
trap 'kill "$TAGGER" 2>/dev/null || true; rm -f "$LOG" "$TAGGER_LOG"' EXIT

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (release profile, shares the build with the tests)"
cargo clippy --release --locked --all-targets -- -D warnings
step "cargo test: building (release: Whisper in a debug build is far too slow)"
cargo test --release --locked --no-run
step "slot tagger"
wait "$TAGGER" || { cat "$TAGGER_LOG"; echo "the slot tagger did not train" >&2; exit 1; }
cat "$TAGGER_LOG"
step "cargo test"
set +e
cargo test --release --locked -- --test-threads=2 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
# One closing line with the totals over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$LOG"
exit "$status"
