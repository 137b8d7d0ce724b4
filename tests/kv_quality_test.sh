#!/usr/bin/env bash
# KV-cache CI subset (spec kvarn.md §6.4): fp32 reference + q8_0, kivi2, kvarn_k4v2, kvarn_k2v2
# on 2 x 1024 tokens of the KJV text in teacher-forced decode mode, then the criteria check.
# The text comes from `make kvtext` (run by `make test`). Usage: kv_quality_test.sh STRATA SRC OUT
set -euo pipefail
BIN=$1; SRC=$2; OUT=$3
TEXT=$SRC/models/kv-eval-kjv.txt
[[ -s $TEXT ]] || { echo "missing $TEXT: run 'make kvtext' (make test does)"; exit 1; }
rm -rf "$OUT"
cd "$SRC"
BIN=$BIN TEXT=$TEXT MODEL=$SRC/models/SmolLM2-135M-Instruct.Q4_1.gguf \
  tools/kv_eval.sh "$OUT" 1024 2 2 q8_0 kivi2 kvarn_k4v2 kvarn_k2v2
python3 tests/kv_quality_check.py "$OUT"
