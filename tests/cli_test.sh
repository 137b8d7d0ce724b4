#!/usr/bin/env bash
# End-to-end CLI tests: bad input gets one clear message and exit code 2 (usage) or 1
# (runtime), never a crash; the default model answers a factual question.
# Usage: cli_test.sh STRATA_BINARY SOURCE_DIR
set -uo pipefail
BIN=$1
SRC=$2
MODEL=$SRC/models/SmolLM2-135M-Instruct.Q4_1.gguf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 "$SRC/tools/make_bad_gguf.py" "$TMP" || { echo "could not make bad GGUF files"; exit 1; }
head -c 5000000 "$MODEL" > "$TMP/model_cut.gguf"
: > "$TMP/empty.gguf"
pass=0; fail=0

# expect NAME EXIT_CODE EXPECTED_STDERR_LINE -- command...
expect() {
  local name=$1 code=$2 msg=$3; shift 4
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [[ $rc -ne $code ]]; then
    echo "FAIL $name: exit $rc, expected $code; stderr: $err"; fail=$((fail+1)); return
  fi
  if ! grep -qxF -- "$msg" <<<"$err"; then
    echo "FAIL $name: stderr lacks the line: $msg"; echo "  got: $err"; fail=$((fail+1)); return
  fi
  if grep -qiE "sanitizer|segmentation|abort|terminate called" <<<"$err"; then
    echo "FAIL $name: crashed: $err"; fail=$((fail+1)); return
  fi
  echo "ok   $name"; pass=$((pass+1))
}

expect missing-file 1 "strata generate: $TMP/nope.gguf: cannot open: No such file or directory" -- \
  "$BIN" generate -m "$TMP/nope.gguf" -p hi
expect empty-file 1 "strata generate: $TMP/empty.gguf: not a GGUF file: only 0 bytes (truncated?)" -- \
  "$BIN" generate -m "$TMP/empty.gguf" -p hi
expect bad-magic 1 "strata generate: $TMP/bad_magic.gguf: not a GGUF file: bad magic 0x58554747" -- \
  "$BIN" generate -m "$TMP/bad_magic.gguf" -p hi
expect truncated-header 1 "strata generate: $TMP/truncated.gguf: file truncated: 11 tensor descriptors cannot fit in the remaining 87 bytes" -- \
  "$BIN" generate -m "$TMP/truncated.gguf" -p hi
expect truncated-data 1 "strata generate: $TMP/model_cut.gguf: token_embd.weight: data [0, 30081024) runs past the end of the data section (3214336 bytes; file truncated?)" -- \
  "$BIN" generate -m "$TMP/model_cut.gguf" -p hi
expect unsupported-type 1 "strata generate: $TMP/bad_type.gguf: blk.0.attn_q.weight: tensor type IQ2_XXS is not supported for matrix weights" -- \
  "$BIN" generate -m "$TMP/bad_type.gguf" -p hi
expect unsupported-arch 1 "strata generate: $TMP/bad_arch.gguf: architecture 'gpt9' is not supported (known: llama)" -- \
  "$BIN" generate -m "$TMP/bad_arch.gguf" -p hi
expect info-bad-file 1 "strata info: $TMP/bad_magic.gguf: not a GGUF file: bad magic 0x58554747" -- \
  "$BIN" info "$TMP/bad_magic.gguf"
expect bad-temp 2 "strata generate: --temp: must be >= 0 (got -1)" -- \
  "$BIN" generate -m "$MODEL" -p hi --temp -1
expect bad-top-p 2 "strata chat: --top-p: must be in (0, 1] (got 1.5)" -- \
  "$BIN" chat -m "$MODEL" -p hi --top-p 1.5
expect non-numeric 2 "strata generate: Could not convert: --top-k = abc" -- \
  "$BIN" generate -m "$MODEL" -p hi --top-k abc
expect unknown-flag 2 "strata generate: The following argument was not expected: --bogus" -- \
  "$BIN" generate -m "$MODEL" -p hi --bogus
expect missing-prompt 2 "strata generate: --prompt is required" -- \
  "$BIN" generate -m "$MODEL"
expect bad-kv-type 2 "strata generate: --kv-type: unknown type \"q9\" (known: f16, f32)" -- \
  "$BIN" generate -m "$MODEL" -p hi --kv-type q9
expect ctx-too-big 2 "strata generate: --ctx: context size 100000 exceeds the model's training context 8192" -- \
  "$BIN" generate -m "$MODEL" -p hi --ctx 100000
LONG=$(printf 'word %.0s' $(seq 1 40))
expect prompt-too-long 2 "strata generate: -p: prompt has 41 tokens, more than the context size 16" -- \
  "$BIN" generate -m "$MODEL" --ctx 16 -p "$LONG"
expect bad-n 2 "strata generate: -n: must be >= -1 (got -5)" -- \
  "$BIN" generate -m "$MODEL" -p hi -n -5

# A sensible answer from the default model (greedy, f32 activations: see README
# "Numerics"), and two chat turns from stdin reusing the cached prefix.
out=$("$BIN" chat -m "$MODEL" --exact --temp 0 -n 32 -p "What is the capital of France?" 2>/dev/null)
if grep -q "Paris" <<<"$out"; then echo "ok   capital-of-france"; pass=$((pass+1));
else echo "FAIL capital-of-france: $out"; fail=$((fail+1)); fi
out=$(printf 'What is the capital of France?\nAnd of Italy?\n' | "$BIN" chat -m "$MODEL" --exact --temp 0 -n 32 2>/dev/null)
if grep -q "Paris" <<<"$out" && grep -q "Rome" <<<"$out"; then echo "ok   chat-stdin-two-turns"; pass=$((pass+1));
else echo "FAIL chat-stdin-two-turns: $out"; fail=$((fail+1)); fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
