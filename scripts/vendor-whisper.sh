#!/usr/bin/env bash
# Unpacks whisper-rs and whisper-rs-sys (whisper.cpp's Rust bindings) from the crates
# registry into vendor/ and applies hark's patches (patches/); Cargo.toml uses the patched
# copies in place of the registry crates. Idempotent: nothing happens when a copy is current.
#
# whisper-rs-sys-decoding.patch: (1) with a prompt, whisper.cpp projected every prompt token
#   onto the 51,864-word vocabulary though only the last token's logits are read; that doubled
#   the decoding time of a biased command. Only the last token is projected now. (2) grammar-
#   constrained decoding checked every token of the vocabulary against the grammar at every
#   step (more than doubling decoding time); now the likeliest first, until enough pass. The
#   text may not end before the grammar is complete.
#   (3) whisper_set_logit_tokens: a step computes logits only for the tokens a grammar allows
#   (2,680 of 51,864 for barista). (4) whisper_token_logprobs_with_state scores a given
#   continuation of the cached prompt token by token, to compare whole sentences (rescoring).
# whisper-rs-grammar-rules.patch: whisper-rs's set_grammar handed whisper.cpp a flat array of
#   grammar elements where it reads an array of pointers to rules, so no grammar could work.
#   It now takes the rules and builds the pointer array.
#   WhisperState::set_logit_tokens, token_logprobs, logits_row and last_prompt expose (3) and
#   (4) above.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"

vendor() {
  local name="$1" version="$2" patch="$3"
  local dest="vendor/$name"
  local stamp
  stamp="$version $(sha256sum "$patch" | cut -d' ' -f1)"
  if [ -f "$dest/.hark-patched" ] && [ "$(cat "$dest/.hark-patched")" = "$stamp" ]; then
    echo "    $name $version (patched): ok"
    return 0
  fi
  find_crate() { ls "$CARGO_HOME"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -1 || true; }
  local crate
  crate="$(find_crate)"
  if [ -z "$crate" ]; then
    # Let cargo download it, through whatever registry (or mirror) it is configured with.
    local fetch
    fetch="$(mktemp -d)"
    mkdir -p "$fetch/src"
    touch "$fetch/src/lib.rs"
    printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\n%s = "=%s"\n' \
      "$name" "$name" "$version" > "$fetch/Cargo.toml"
    cargo fetch --quiet --manifest-path "$fetch/Cargo.toml"
    rm -rf "$fetch"
    crate="$(find_crate)"
  fi
  [ -n "$crate" ] || { echo "could not get $name $version from the crates registry" >&2; exit 1; }
  local unpack
  unpack="$(mktemp -d)"
  tar xzf "$crate" -C "$unpack"
  patch --quiet -d "$unpack/$name-$version" -p1 < "$patch"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$unpack/$name-$version" "$dest"
  rmdir "$unpack"
  echo "$stamp" > "$dest/.hark-patched"
  echo "    $name $version: unpacked and patched ($patch)"
}

vendor whisper-rs-sys 0.15.0 patches/whisper-rs-sys-decoding.patch
vendor whisper-rs 0.16.0 patches/whisper-rs-grammar-rules.patch
