#!/usr/bin/env bash
# Puts WAV recordings through a telephone line as Twilio carries it: 8 kHz μ-law (G.711), then
# back to 16-bit PCM at 8 kHz so any reader takes them. Labels and other files are copied.
#   scripts/phone-line.sh ../shared/data/barista/dev /tmp/barista-phone
#   hark eval spoken --domain barista --data /tmp/barista-phone --labels /tmp/barista-phone/labels.json
set -euo pipefail
in="$1"
out="$2"
mkdir -p "$out"
for f in "$in"/*; do
  name="$(basename "$f")"
  case "$name" in
    *.wav) sox "$f" -r 8000 -c 1 -e u-law -t wav - | sox -t wav - -e signed-integer -b 16 "$out/$name" ;;
    *) cp "$f" "$out/$name" ;;
  esac
done
