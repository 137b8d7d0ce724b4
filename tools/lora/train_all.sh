#!/usr/bin/env bash
# Trains the task and domain adapters for each seed (docs/lora-merging.md). One BLAS thread and
# one torch thread: on two shared cores, oversubscribing OpenBLAS + OpenMP made steps 20x slower.
# Usage: tools/lora/train_all.sh STRATA_BIN "SEEDS" "KINDS"   (run from the repository root)
set -euo pipefail
BIN=$1; SEEDS=${2:-"1 2 3"}; KINDS=${3:-"domain task"}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
for s in $SEEDS; do
  d=data/lora/seed$s
  python3 tools/lora/make_data.py "$s"
  for k in domain task; do
    "$BIN" lora-eval tokenize -m $MODEL --ctx 512 --in $d/${k}_train.jsonl -o $d/${k}_train.tok.jsonl
  done
  for k in $KINDS; do
    if [ $k = domain ]; then args="--epochs 6 --lr 2e-3"; else args="--epochs 5 --lr 2e-3"; fi
    /usr/bin/python3 tools/lora/train_lora.py --kind $k --data $d --seed "$s" --out $d/adapters/$k $args --threads 1
  done
done
