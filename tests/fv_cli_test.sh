#!/usr/bin/env bash
# `strata fv` end to end on the tiny fixture model: extract (LRP, CIE), info, build, eval,
# --fv on generate, and one clear error (exit 1 or 2, never a crash) for each bad input:
# a blob made for another model, corrupt blobs, bad task files, bad flags.
# Usage: fv_cli_test.sh STRATA_BINARY SOURCE_DIR
set -uo pipefail
BIN=$1
SRC=$2
TINY=$SRC/tests/fixtures/tiny-llama.gguf
MODEL=$SRC/models/SmolLM2-135M-Instruct.Q4_1.gguf
TASK=$SRC/data/fv/antonym.jsonl
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0

check() {  # NAME EXIT_CODE STDERR_SUBSTRING -- command...
  local name=$1 code=$2 msg=$3; shift 4
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne $code ]] || ! grep -qF -- "$msg" <<<"$err" || grep -qiE "sanitizer|segmentation|abort|terminate called" <<<"$err"; then
    echo "FAIL $name: exit $rc (want $code); stderr: $err"; fail=$((fail+1))
  else
    echo "ok   $name"; pass=$((pass+1))
  fi
}
run_ok() {  # NAME STDOUT_SUBSTRING -- command...
  local name=$1 msg=$2; shift 3
  local out; out=$("$@" 2>&1); local rc=$?
  if [[ $rc -ne 0 ]] || ! grep -qF -- "$msg" <<<"$out"; then
    echo "FAIL $name: exit $rc; output: $out"; fail=$((fail+1))
  else
    echo "ok   $name"; pass=$((pass+1))
  fi
}

SMALL=(--prompts 3 --shots 3 --heads 4)
run_ok extract-lrp "relevance (LRP)" -- "$BIN" fv extract -m "$TINY" --task "$TASK" --method lrp "${SMALL[@]}" \
  --score-prompts 2 --filter-top 0 -o "$TMP/a.fv" --stats-out "$TMP/a.json"
run_ok extract-cie "8 patched (CIE)" -- "$BIN" fv extract -m "$TINY" --task "$TASK" --method cie "${SMALL[@]}" \
  --score-prompts 1 --distributed -o "$TMP/c.fv"
run_ok info "aggregated" -- "$BIN" fv info "$TMP/a.fv"
run_ok info-dist "distributed" -- "$BIN" fv info "$TMP/c.fv"
run_ok build "wrote" -- "$BIN" fv build -m "$TINY" --stats "$TMP/a.json" --method lrp --score signed --heads 3 -o "$TMP/b.fv"
run_ok eval "antonym 0-shot + " -- "$BIN" fv eval -m "$TINY" --task "$TASK" --limit 3 --fv "$TMP/a.fv:2"
run_ok generate "decode:" -- "$BIN" generate -m "$TINY" -p "Q: hot
A:" -n 4 --temp 0 --fv "$TMP/a.fv" --fv "$TMP/c.fv:0.5"

# Bad inputs.
if [[ -f $MODEL ]]; then
  check other-model 2 "--fv: $TMP/a.fv: function vector was made for a model with hidden size 64, 2 layers" -- \
    "$BIN" generate -m "$MODEL" -p hi -n 1 --fv "$TMP/a.fv"
fi
head -c 100 "$TMP/a.fv" > "$TMP/cut.fv"
check truncated 2 "checksum mismatch" -- "$BIN" generate -m "$TINY" -p hi -n 1 --fv "$TMP/cut.fv"
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' > "$TMP/junk.fv"
check bad-magic 2 "not an FVEC blob (bad magic)" -- "$BIN" generate -m "$TINY" -p hi -n 1 --fv "$TMP/junk.fv"
check missing-blob 1 "cannot open function vector file" -- "$BIN" generate -m "$TINY" -p hi -n 1 --fv "$TMP/none.fv"
check bad-scale 2 "--fv: scale" -- "$BIN" generate -m "$TINY" -p hi -n 1 --fv "$TMP/a.fv:1e9"
printf '{"input": "a", "output": "b"}\nnot json\n' > "$TMP/bad.jsonl"
check bad-task 2 "bad.jsonl:2: not a JSON object" -- "$BIN" fv extract -m "$TINY" --task "$TMP/bad.jsonl" -o "$TMP/x.fv"
check missing-task 1 "no such task file" -- "$BIN" fv extract -m "$TINY" --task "$TMP/none.jsonl" -o "$TMP/x.fv"
check bad-method 2 "--method: 'foo' is not one of" -- "$BIN" fv extract -m "$TINY" --task "$TASK" --method foo -o "$TMP/x.fv"
check bad-layer 2 "--layer: 7 out of range 0..1" -- "$BIN" fv extract -m "$TINY" --task "$TASK" --layer 7 -o "$TMP/x.fv"
check bad-heads 2 "--heads: 99 out of range 0..8" -- "$BIN" fv extract -m "$TINY" --task "$TASK" --heads 99 "${SMALL[@]:0:4}" -o "$TMP/x.fv"
check bad-layers 2 "--layers: '5-3' is not A-B" -- "$BIN" fv eval -m "$TINY" --task "$TASK" --fv "$TMP/a.fv" --layers 5-3
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
