#!/usr/bin/env bash
# Extraction for the function-vector evaluation (docs/function-vectors.md): per task, one LRP
# run and one CIE run (same seed, so the same clean prompts and mean head outputs), each
# saving its head statistics; every other vector is built from these with `strata fv build`.
# Usage: tools/fv/extract_all.sh STRATA_BINARY OUT_DIR [TASK...]
set -euo pipefail
BIN=${1:?strata binary}; OUT=${2:?output dir}; shift 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TASKS=${*:-antonym country-capital english-french present-past singular-plural uppercase first-letter next-number}
PROMPTS=${PROMPTS:-60}; SCORE_PROMPTS=${SCORE_PROMPTS:-25}
mkdir -p "$OUT"
for method in lrp cie; do
  for t in $TASKS; do
    [ -s "$OUT/$t.$method.json" ] && continue
    echo "== $t $method" >&2
    "$BIN" fv extract --task "$ROOT/data/fv/$t.jsonl" --method "$method" --prompts "$PROMPTS" \
      --score-prompts "$SCORE_PROMPTS" --seed 1 -o "$OUT/$t.$method.fv" --stats-out "$OUT/$t.$method.json.tmp" \
      > "$OUT/$t.$method.log"
    mv "$OUT/$t.$method.json.tmp" "$OUT/$t.$method.json"
    cat "$OUT/$t.$method.log"
  done
done
