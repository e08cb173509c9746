#!/usr/bin/env bash
# Sets up (idempotently) and runs hark's main job on the embedded defaults: a spoken
# conversation through the real-time loop (VAD → streaming Whisper → the dialogue core with
# the built-in customer-service flows → Piper), with a
# WAV file in place of the microphone and another in place of the speaker, as on a machine
# with no sound card. With a sound card (or PulseAudio), `hark run` alone uses the
# microphone and speaker instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

HARK="$ROOT/target/release/hark"
OUT="$ROOT/out"
mkdir -p "$OUT"
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# The user's side of the conversation: hark greets; the user books an appointment and
# confirms it, then cuts into hark's answer with a question (barge-in).
step "Recording the user (hark say, Piper voice)"
"$HARK" say "I'd like to book a haircut tomorrow at ten." -o "$OUT/user-1.wav" >/dev/null
"$HARK" say "Yes, please." -o "$OUT/user-2.wav" >/dev/null
"$HARK" say "What are your opening hours?" -o "$OUT/user-3.wav" >/dev/null
RATE=22050
silence() { sox -n -r "$RATE" -c 1 -b 16 "$OUT/silence-$1.wav" trim 0 "$1"; }
silence 3.5; silence 5.5; silence 2; silence 6
sox "$OUT/silence-3.5.wav" "$OUT/user-1.wav" "$OUT/silence-5.5.wav" "$OUT/user-2.wav" \
  "$OUT/silence-2.wav" "$OUT/user-3.wav" "$OUT/silence-6.wav" "$OUT/conversation.wav"
rm -f "$OUT"/silence-*.wav "$OUT"/user-*.wav
echo "    $OUT/conversation.wav ($(soxi -d "$OUT/conversation.wav"))"

step "hark run (microphone: out/conversation.wav in real time; speaker: out/reply.wav)"
"$HARK" run --input "$OUT/conversation.wav" --output "$OUT/reply.wav" --events "$OUT/events.jsonl"
echo "    speaker recording (aligned with the input): $OUT/reply.wav; events: $OUT/events.jsonl"
