#!/usr/bin/env bash
# Merges and scores the configurations for one seed (docs/lora-merging.md). Every merged
# adapter is written by `strata merge` (PEFT dir + adapter.gguf) and scored by loading the GGUF
# copy back from disk (--lora); TaDA's probe runs on calib.jsonl (validation minerals only).
# Scores that already exist are kept, so an interrupted run resumes.
# Usage: tools/lora/run_eval.sh STRATA SEED [THREADS] [MODELS]
set -euo pipefail
BIN=$1; S=$2; TH=${3:-1}
MODELS=${4:-"base T D linear ties dare_ties_s1 tada_full tada_ramp tada_gating_only tada_subspace_only task_arithmetic dare_ties_s2 dare_ties_s3 cat dare tada_full_dense"}
D=data/lora/seed$S; M=$D/merged; mkdir -p $M
T=$D/adapters/task; DOM=$D/adapters/domain
for name in $MODELS; do
  [ -f $D/scores/$name.m3.jsonl ] && continue
  args=()
  case $name in
    base) ;;
    T) args=(--lora $T) ;;
    D) args=(--lora $DOM) ;;
    *)
      case $name in
        linear|task_arithmetic|ties|dare) margs=(--method $name --seed 1) ;;
        cat) margs=(--method task_arithmetic --rank 16) ;;
        dare_ties_s*) margs=(--method dare_ties --seed ${name#dare_ties_s}) ;;
        tada_*_l2) mode=${name#tada_}; mode=${mode%_l2}
                   margs=(--method tada --tada-mode $mode --lambda 2 --calib $D/calib.jsonl) ;;
        linear_l2) margs=(--method linear --lambda 2) ;;
        tada_*) margs=(--method tada --tada-mode ${name#tada_} --calib $D/calib.jsonl --gates-out $M/gates_${name#tada_}.tsv) ;;
      esac
      $BIN merge -t $TH -q --adapter $T --adapter $DOM -o $M/$name "${margs[@]}" 2>>$M/merge.log
      args=(--lora $M/$name/adapter.gguf) ;;
  esac
  python3 tools/lora/score.py $BIN $D $name "${args[@]}" --threads $TH --m4
done
