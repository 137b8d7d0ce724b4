#!/usr/bin/env bash
# Runs the KV-cache quality grid of docs/kv-cache.md: an fp32-KV base run, then every
# config against it, all with --exact model compute (spec §6.1: only the cache changes),
# in teacher-forced decode mode. Text goes in 128-token chunks (spec §6.3's pseudo-decode):
# in exact mode that equals token-by-token decoding bit for bit for every format but
# KIVI's FIFO ones (model_test KvEval.ChunkedEqualsTokenByTokenInExactMode), which run one
# token per eval. BATCH=1 forces token-by-token everywhere. Writes OUT/<config>.txt (the
# perplexity report) and OUT/<config>.tsv (per-position values for tools/kv_eval.py).
# Usage: tools/kv_eval.sh OUT CTX CHUNKS [JOBS] [CONFIG...]
set -euo pipefail
OUT=$1; CTX=$2; CHUNKS=$3; JOBS=${4:-1}; shift 4 || shift $#
CONFIGS=("$@")
[[ ${#CONFIGS[@]} -gt 0 ]] || CONFIGS=(fp16 q8_0 q4_1 q4_0 kivi2 hk2 varn2 kvarn_k2v2 kvarn_k4v2 turboquant3)
BIN=${BIN:-build/strata}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
TEXT=${TEXT:-models/kv-eval-kjv.txt}
[[ -f $TEXT ]] || tools/fetch_kv_eval_text.sh "$TEXT"
mkdir -p "$OUT"
common=(-m "$MODEL" -f "$TEXT" --exact --ctx "$CTX" --chunks "$CHUNKS" -t 1)
BATCH=${BATCH:-128}
if [[ -z ${SKIP_BASE:-} ]]; then  # SKIP_BASE=1: OUT/base.bin is already complete
  "$BIN" perplexity "${common[@]}" --batch "$BATCH" --kv fp32 --kl-divergence-base "$OUT/base.bin" --dump "$OUT/fp32.tsv" \
    > "$OUT/fp32.txt" 2>/dev/null
fi
run() {
  local b=$BATCH
  [[ $1 == *_g32_r* ]] && b=1  # KIVI's residual FIFO quantizes on step boundaries
  "$BIN" perplexity "${common[@]}" --batch "$b" --kv "$1" --kl-divergence "$OUT/base.bin" --dump "$OUT/$1.tsv" > "$OUT/$1.txt" 2>/dev/null
}
export -f run; export BIN OUT BATCH; export -a common 2>/dev/null || true
for c in "${CONFIGS[@]}"; do
  while (( $(jobs -r | wc -l) >= JOBS )); do sleep 1; done
  run "$c" &
done
wait
echo "done: $OUT"
