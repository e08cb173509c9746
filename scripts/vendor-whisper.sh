#!/usr/bin/env bash
# Unpacks whisper-rs-sys (whisper.cpp's Rust bindings) from the crates registry into
# vendor/whisper-rs-sys and applies hark's patch (patches/), which Cargo.toml uses in place
# of the registry crate. Idempotent: nothing happens when the patched copy is current.
#
# The patch: with a prompt, whisper.cpp projected every prompt token onto the 51,864-word
# vocabulary though only the last token's logits are read; that doubled the decoding time of
# a biased command. Only the last token is projected now.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VERSION=0.15.0
DEST=vendor/whisper-rs-sys
PATCH=patches/whisper-rs-sys-last-token-logits.patch
STAMP="$VERSION $(sha256sum "$PATCH" | cut -d' ' -f1)"
if [ -f "$DEST/.hark-patched" ] && [ "$(cat "$DEST/.hark-patched")" = "$STAMP" ]; then
  echo "    whisper-rs-sys $VERSION (patched): ok"
  exit 0
fi
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
find_crate() { ls "$CARGO_HOME"/registry/cache/*/whisper-rs-sys-$VERSION.crate 2>/dev/null | head -1 || true; }
CRATE="$(find_crate)"
if [ -z "$CRATE" ]; then
  # Let cargo download it, through whatever registry (or mirror) it is configured with.
  FETCH="$(mktemp -d)"
  trap 'rm -rf "$FETCH"' EXIT
  mkdir -p "$FETCH/src"
  touch "$FETCH/src/lib.rs"
  printf '[package]\nname = "fetch-whisper-rs-sys"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\nwhisper-rs-sys = "=%s"\n' \
    "$VERSION" > "$FETCH/Cargo.toml"
  cargo fetch --quiet --manifest-path "$FETCH/Cargo.toml"
  CRATE="$(find_crate)"
fi
[ -n "$CRATE" ] || { echo "could not get whisper-rs-sys $VERSION from the crates registry" >&2; exit 1; }
UNPACK="$(mktemp -d)"
tar xzf "$CRATE" -C "$UNPACK"
patch --quiet -d "$UNPACK/whisper-rs-sys-$VERSION" -p1 < "$PATCH"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$UNPACK/whisper-rs-sys-$VERSION" "$DEST"
rmdir "$UNPACK"
echo "$STAMP" > "$DEST/.hark-patched"
echo "    whisper-rs-sys $VERSION: unpacked and patched ($PATCH)"
