#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_targets) with cargo-fuzz: nightly Rust,
# cargo-fuzz installed from crates.io when missing. Each target runs HARK_FUZZ_SECONDS
# (default 120) from its corpus in fuzz/corpus/TARGET (kept in git, so each run starts where the
# last left off); a crash leaves its input in fuzz/artifacts/TARGET and fails the script.
# Prints the inputs each target ran and the total. Not part of .ci/run (CI keeps its bounded
# proptest runs in tests/hostile_input.rs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"
SECONDS_EACH="${HARK_FUZZ_SECONDS:-120}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# Safe Rust needs no address sanitizer; debug assertions turn an overflow into a finding.
FLAGS=(--sanitizer none --release --debug-assertions)
cargo +nightly fuzz build "${FLAGS[@]}"

total=0
failed=()
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    if cargo +nightly fuzz run "${FLAGS[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len=65536 >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
        tail -40 "$log"
    fi
    runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -1)
    runs=${runs:-0}
    total=$((total + runs))
    printf '%-16s %12s inputs  %s\n' "$target" "$runs" "$status"
    rm -f "$log"
done
printf '%-16s %12s inputs in %s s per target\n' "all" "$total" "$SECONDS_EACH"
if ((${#failed[@]})); then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
