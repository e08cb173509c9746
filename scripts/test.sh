#!/usr/bin/env bash
# Sets up (idempotently) and runs every check: formatting, clippy, and all tests against the
# real models. This is the command CI runs (.ci/run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Everything but the slot tagger, which trains (one core, about a minute) while the checks
# and the tests build.
HARK_SETUP_TAGGER=skip HARK_SETUP_BUILD=with-tests bash scripts/setup.sh
LOG="$(mktemp)"
TAGGER_LOG="$(mktemp)"
bash scripts/train-slot-tagger.sh >"$TAGGER_LOG" 2>&1 &
TAGGER=$!
# The real chat model and its server for the language-model tests (downloads, little CPU).
LOCAL_LLM_LOG="$(mktemp)"
bash scripts/local-llm.sh >"$LOCAL_LLM_LOG" 2>&1 &
LOCAL_LLM=$!
trap 'kill "$TAGGER" 2>/dev/null || true; rm -f "$LOG" "$TAGGER_LOG" "${LOCAL_LLM_LOG:-}" "${FAILED:-}"' EXIT

step() { printf '\033[1m==> %s\033[0m (%dm%02ds)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (release profile, shares the build with the tests)"
cargo clippy --release --locked --all-targets -- -D warnings
step "cargo test: building (release: Whisper in a debug build is far too slow)"
cargo test --release --locked --no-run
step "slot tagger"
wait "$TAGGER" || { cat "$TAGGER_LOG"; echo "the slot tagger did not train" >&2; exit 1; }
cat "$TAGGER_LOG"
step "local model server"
wait "$LOCAL_LLM" || { cat "$LOCAL_LLM_LOG"; echo "the local model server did not install" >&2; exit 1; }
cat "$LOCAL_LLM_LOG"
step "cargo test: two lanes (real time at normal priority, compute beside it at nice 19)"
# Tests that keep time (a sound server, paced audio, cloud protocol servers, HTTP/WebSocket
# conversations) run one binary after another at normal priority, so each sees the machine as
# a user's would; tests that only compute run beside them at the lowest priority, on what the
# real-time ones leave of the two cores. A test whose name holds `real_time_` runs in the
# real-time lane, wherever it is. The live sound card's tests (echo cancellation on a
# PulseAudio server) come first and share the machine only with the light binaries of LIGHT.
REAL_TIME=(live_audio cloud twilio report serve_safety server browser wyoming anthropic llm)
LIGHT=(architecture audio_formats biasing cli hostile_input knowledge model_download
  pipeline_fakes redaction turn_model unit-bin)
SOUND_DONE="$(mktemp -u)"
FAILED="$(mktemp)"
declare -A BINARY=()
while read -r name path; do BINARY[$name]="$path"; done < <(
  cargo test --release --locked --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        kind = m["target"]["kind"][0]
        print(m["target"]["name"] if kind == "test" else "unit-" + kind, m["executable"])')
((${#BINARY[@]})) || { echo "cargo listed no test binaries" >&2; exit 1; }
is_in() { local n wanted="$1"; shift; for n in "$@"; do [ "$n" = "$wanted" ] && return 0; done; return 1; }
is_real_time() { is_in "$1" "${REAL_TIME[@]}"; }
run_binary() { # niceness name [libtest args]
  local niceness="$1" name="$2"; shift 2
  echo "     Running $name $* (at $((SECONDS / 60))m$((SECONDS % 60))s)"
  nice -n "$niceness" "${BINARY[$name]}" --test-threads=2 "$@" 2>&1 || echo "$name $*" >>"$FAILED"
}
real_time_lane() {
  local n
  for n in "${REAL_TIME[@]}"; do
    run_binary 0 "$n"
    if [ "$n" = live_audio ]; then touch "$SOUND_DONE"; fi
  done
  touch "$SOUND_DONE"
  for n in "${!BINARY[@]}"; do
    is_real_time "$n" || ! grep -q 'real_time_' < <("${BINARY[$n]}" --list 2>/dev/null) ||
      run_binary 0 "$n" real_time_
  done
}
compute_lane() {
  local n
  for n in "${LIGHT[@]}"; do
    if [ -n "${BINARY[$n]:-}" ]; then run_binary 19 "$n" --skip real_time_; fi
  done
  while [ ! -e "$SOUND_DONE" ]; do sleep 1; done
  for n in $(printf '%s\n' "${!BINARY[@]}" | sort); do
    is_real_time "$n" || is_in "$n" "${LIGHT[@]}" || run_binary 19 "$n" --skip real_time_
  done
  nice -n 19 cargo test --release --locked --doc 2>&1 || echo "doc tests" >>"$FAILED"
}
(real_time_lane | sed -u 's/^/[real time] /' | tee "$LOG.rt") &
RT=$!
(compute_lane | sed -u 's/^/[compute]   /' | tee "$LOG.cpu") &
CPU=$!
wait "$RT" "$CPU" || true
# One closing line with the totals over every test binary.
cat "$LOG.rt" "$LOG.cpu" | grep -o 'test result: .*' | grep -o '[0-9]* passed; [0-9]* failed' |
  awk -v s="$SECONDS" '{ p += $1; f += $3 }
    END { printf "tests: %d passed, %d failed; %dm%02ds in all\n", p, f, s / 60, s % 60 }'
rm -f "$LOG.rt" "$LOG.cpu" "$SOUND_DONE"
if [ -s "$FAILED" ]; then
  echo "failed test binaries:" >&2
  sed 's/^/    /' "$FAILED" >&2
  exit 1
fi
