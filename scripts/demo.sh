#!/usr/bin/env bash
# Sets up (idempotently) and runs the demo on the embedded defaults: hark speaks a request
# with the local Piper voice into a WAV file (standing in for a microphone), then listens to
# that file with the local Whisper model and prints what it heard.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

HARK="$ROOT/target/release/hark"
OUT="$ROOT/out"
mkdir -p "$OUT"
REQUEST="${1:-Hi, I would like to book a table for four people tomorrow at seven.}"

printf '\033[1m==> hark say (Piper voice)\033[0m\n'
"$HARK" say "$REQUEST" -o "$OUT/request.wav"
printf '\033[1m==> hark transcribe (Whisper tiny.en)\033[0m\n'
"$HARK" transcribe "$OUT/request.wav" --json
