#!/usr/bin/env bash
# Trains the slot tagger into models/slots/ once (scripts/setup.sh calls it; the test command
# runs it while the tests build). Needs the release build of hark.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODELS="${HARK_MODELS_DIR:-$ROOT/models}"
CACHE="$MODELS/.cache"
HARK="$ROOT/target/release/hark"
info() { printf '    %s\n' "$*"; }
mkdir -p "$CACHE"

# The slot tagger that reads names and party sizes, trained on Restaurant8k (CC BY 4.0): from
# the evaluation copy beside this checkout when there is one (CI, offline), else from PolyAI's
# repository. 80 L-BFGS iterations: validation F1 0.948 in ~70 s (150: 0.952 in about twice
# the time).
SLOT_TAGGER="$MODELS/slots/restaurant8k.crfsuite"
RESTAURANT8K_URL="https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/master/span_extraction/restaurant8k/train_0.json"
if [ -f "$SLOT_TAGGER" ]; then
  info "slot tagger (Restaurant8k): ok"
else
  data="$ROOT/../shared/data/restaurant8k/train.json"
  if [ ! -f "$data" ]; then
    data="$CACHE/restaurant8k-train.json"
    if [ ! -f "$data" ]; then
      info "Restaurant8k: fetching $RESTAURANT8K_URL"
      python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "$RESTAURANT8K_URL" "$data.partial"
      mv "$data.partial" "$data"
    fi
  fi
  info "slot tagger (Restaurant8k): training on $data"
  "$HARK" --models "$MODELS" nlu slots train --train "$data" --max-iterations 80 | sed 's/^/    /'
fi

