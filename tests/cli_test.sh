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
expect unsupported-arch 1 "strata generate: $TMP/bad_arch.gguf: architecture 'gpt9' is not supported (known: llama, qwen3, gemma3, llada)" -- \
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
expect bad-kv 2 "strata generate: --kv: unknown KV method \"q9\" (known: fp16, fp32, q8_0, q4_1, q4_0, kivi4, kivi2, kivi4_g32_r128, kivi2_g32_r128, hk2, varn2, kvarn_k4v4, kvarn_k4v2, kvarn_k3v3, kvarn_k2v2, turboquant4, turboquant3, turboquant4_b2, turboquant3_b2, tq_mse3, tq_prod3)" -- \
  "$BIN" generate -m "$MODEL" -p hi --kv q9
expect bad-kv-mix 2 "strata generate: --kv: K and V formats differ (\"kvarn_k4v2\", \"q8_0\") but \"kvarn_k4v2\" stores K and V together; only per-token formats (fp32, fp16, q8_0, q4_1, q4_0) can be mixed" -- \
  "$BIN" generate -m "$MODEL" -p hi --kv-k kvarn_k4v2 --kv-v q8_0
expect ctx-too-big 2 "strata generate: --ctx: context size 100000 exceeds the model's training context 8192" -- \
  "$BIN" generate -m "$MODEL" -p hi --ctx 100000
LONG=$(printf 'word %.0s' $(seq 1 40))
expect prompt-too-long 2 "strata generate: -p: prompt has 41 tokens, more than the context size 16" -- \
  "$BIN" generate -m "$MODEL" --ctx 16 -p "$LONG"
expect bad-n 2 "strata generate: -n: must be >= -1 (got -5)" -- \
  "$BIN" generate -m "$MODEL" -p hi -n -5

# A sensible answer from the default model with no numerics flag (greedy; f32 activations
# are the default: see README "Numerics"), and two chat turns from stdin reusing the
# cached prefix. The 8-bit mode (llama.cpp's scheme) is one flag away and gives llama.cpp's
# greedy answer to the same question, which is not "Paris" for this model.
out=$("$BIN" chat -m "$MODEL" --temp 0 -n 32 -p "What is the capital of France?" 2>/dev/null)
if grep -q "Paris" <<<"$out"; then echo "ok   capital-of-france"; pass=$((pass+1));
else echo "FAIL capital-of-france: $out"; fail=$((fail+1)); fi
out=$("$BIN" chat -m "$MODEL" --numerics q8 --temp 0 -n 8 -p "What is the capital of France?" 2>/dev/null)
if grep -q "^L'Étoile" <<<"$out"; then echo "ok   numerics-q8"; pass=$((pass+1));
else echo "FAIL numerics-q8: $out"; fail=$((fail+1)); fi
expect bad-numerics 2 "strata chat: --numerics: q9 not in {f32,q8}" -- "$BIN" chat -m "$MODEL" --numerics q9 -p hi
expect exact-vs-q8 2 "strata chat: --exact: conflicts with --numerics q8 (--exact is the old name of --numerics f32)" -- \
  "$BIN" chat -m "$MODEL" --exact --numerics q8 -p hi
expect bad-flash-attn 2 "strata chat: --flash-attn: auto not in {on,off}" -- "$BIN" chat -m "$MODEL" --flash-attn auto -p hi
out=$(printf 'What is the capital of France?\nAnd of Italy?\n' | "$BIN" chat -m "$MODEL" --temp 0 -n 32 2>/dev/null)
if grep -q "Paris" <<<"$out" && grep -q "Rome" <<<"$out"; then echo "ok   chat-stdin-two-turns"; pass=$((pass+1));
else echo "FAIL chat-stdin-two-turns: $out"; fail=$((fail+1)); fi

# KV-cache formats: teacher-forced perplexity with a 2-bit KVarN cache against an fp32-KV
# base run (160 tokens: FP sink plus the FP tail, so this checks plumbing, not quality).
"$BIN" perplexity -m "$MODEL" -f "$SRC/README.md" --exact --ctx 160 --chunks 1 --kv fp32 \
  --kl-divergence-base "$TMP/kl.bin" >/dev/null 2>&1
ppl=$("$BIN" perplexity -m "$MODEL" -f "$SRC/README.md" --exact --ctx 160 --chunks 1 --kv kvarn_k2v2 \
  --kl-divergence "$TMP/kl.bin" 2>/dev/null)
if grep -q "^Mean    KLD:" <<<"$ppl" && grep -q "^Final estimate: PPL" <<<"$ppl"; then
  echo "ok   perplexity-kld"; pass=$((pass+1))
else
  echo "FAIL perplexity-kld: $ppl"; fail=$((fail+1))
fi

# Free-running greedy under KV formats (metric 4). Bad input first; then an fp32 cache
# against the fp32 reference must agree exactly at every position (KL 0, no divergence),
# which fails if the teacher-forced positions were misaligned by one.
expect kv-greedy-bad-format 2 "strata kv-greedy: --kv-list q9: unknown KV method \"q9\" (known: fp16, fp32, q8_0, q4_1, q4_0, kivi4, kivi2, kivi4_g32_r128, kivi2_g32_r128, hk2, varn2, kvarn_k4v4, kvarn_k4v2, kvarn_k3v3, kvarn_k2v2, turboquant4, turboquant3, turboquant4_b2, turboquant3_b2, tq_mse3, tq_prod3)" -- \
  "$BIN" kv-greedy -m "$MODEL" --prompts "$SRC/data/kv/chat_prompts.txt" --kv-list fp32,q9 -o "$TMP/g"
expect kv-greedy-no-prompts 1 "strata kv-greedy: --prompts: $TMP/none.txt: cannot open: No such file or directory" -- \
  "$BIN" kv-greedy -m "$MODEL" --prompts "$TMP/none.txt" --kv-list fp32 -o "$TMP/g"

# Text files named by -f / --prompts / --stats (one shared reader): a directory, a missing,
# an empty or an unreadable file is one runtime error (exit 1) naming flag and path, never
# an uncaught exception (a directory used to abort with std::ios_failure).
: > "$TMP/empty.txt"
expect perplexity-f-dir 1 "strata perplexity: -f: $TMP: is a directory" -- \
  "$BIN" perplexity -m "$MODEL" -f "$TMP"
expect kv-error-f-dir 1 "strata kv-error: -f: $TMP: is a directory" -- \
  "$BIN" kv-error -m "$MODEL" -f "$TMP"
expect perplexity-f-missing 1 "strata perplexity: -f: $TMP/none.txt: cannot open: No such file or directory" -- \
  "$BIN" perplexity -m "$MODEL" -f "$TMP/none.txt"
expect kv-error-f-missing 1 "strata kv-error: -f: $TMP/none.txt: cannot open: No such file or directory" -- \
  "$BIN" kv-error -m "$MODEL" -f "$TMP/none.txt"
expect perplexity-f-empty 1 "strata perplexity: -f: $TMP/empty.txt: file is empty" -- \
  "$BIN" perplexity -m "$MODEL" -f "$TMP/empty.txt"
expect kv-error-f-empty 1 "strata kv-error: -f: $TMP/empty.txt: file is empty" -- \
  "$BIN" kv-error -m "$MODEL" -f "$TMP/empty.txt"
expect kv-greedy-prompts-dir 1 "strata kv-greedy: --prompts: $TMP: is a directory" -- \
  "$BIN" kv-greedy -m "$MODEL" --prompts "$TMP" --kv-list fp32 -o "$TMP/g"
expect fv-build-stats-dir 1 "strata fv build: --stats: $TMP: is a directory" -- \
  "$BIN" fv build -m "$MODEL" --stats "$TMP" -o "$TMP/x.fv"
if [[ $EUID -ne 0 ]]; then  # root reads a mode-000 file anyway
  echo text > "$TMP/locked.txt"; chmod 000 "$TMP/locked.txt"
  expect perplexity-f-unreadable 1 "strata perplexity: -f: $TMP/locked.txt: cannot open: Permission denied" -- \
    "$BIN" perplexity -m "$MODEL" -f "$TMP/locked.txt"
fi
head -3 "$SRC/data/kv/chat_prompts.txt" | tail -1 > "$TMP/p1.txt"
if "$BIN" kv-greedy -m "$MODEL" --prompts "$TMP/p1.txt" --kv-list fp32,kvarn_k2v2 -n 20 -t 1 -o "$TMP/g" >/dev/null 2>&1 &&
   awk -F'\t' 'NR>1 && $1=="fp32" {n++; if ($4 != 0) bad=1} END {exit !(n==20 && !bad)}' "$TMP/g.kl.tsv" &&
   awk -F'\t' 'NR>1 && $1=="fp32" {ok = ($3==20 && $4==20 && $5==-1 && $6==1)} END {exit !ok}' "$TMP/g.seq.tsv" &&
   [[ $(awk -F'\t' 'NR>1 && $1=="kvarn_k2v2"' "$TMP/g.kl.tsv" | wc -l) -eq 20 ]]; then
  echo "ok   kv-greedy-fp32-self"; pass=$((pass+1))
else
  echo "FAIL kv-greedy-fp32-self: $(cat "$TMP/g.seq.tsv" 2>/dev/null)"; fail=$((fail+1))
fi

# --shard I/N: a bad value is refused; a shard writes the same rows, under the same prompt
# numbers, as the whole run does for those prompts.
expect kv-greedy-bad-shard 2 "strata kv-greedy: --shard: want I/N with 0 <= I < N (got '2/2')" -- \
  "$BIN" kv-greedy -m "$MODEL" --prompts "$SRC/data/kv/chat_prompts.txt" --kv-list fp32 --shard 2/2 -o "$TMP/g"
grep -v "^#" "$SRC/data/kv/chat_prompts.txt" | head -3 > "$TMP/p3.txt"
if "$BIN" kv-greedy -m "$MODEL" --prompts "$TMP/p3.txt" --kv-list q4_0 -n 6 -t 1 -o "$TMP/all" >/dev/null 2>&1 &&
   "$BIN" kv-greedy -m "$MODEL" --prompts "$TMP/p3.txt" --kv-list q4_0 -n 6 -t 1 --shard 1/2 -o "$TMP/s1" >/dev/null 2>&1 &&
   [[ $(awk -F'\t' 'NR>1 {print $2}' "$TMP/s1.seq.tsv") == 1 ]] &&
   diff <(awk -F'\t' 'NR==1 || $2==1' "$TMP/all.kl.tsv") "$TMP/s1.kl.tsv" >/dev/null &&
   diff <(awk -F'\t' 'NR==1 || $2==1' "$TMP/all.seq.tsv") "$TMP/s1.seq.tsv" >/dev/null; then
  echo "ok   kv-greedy-shard"; pass=$((pass+1))
else
  echo "FAIL kv-greedy-shard: $(cat "$TMP/s1.seq.tsv" 2>/dev/null)"; fail=$((fail+1))
fi

# bench --kv-compare: bad --warmup refused; a run reports -r samples per format after the
# warm-up rounds, and the ratio column is 1 for the first format.
expect bench-bad-warmup 2 "strata bench: --warmup: must be in 0..100 (got -1)" -- \
  "$BIN" bench -m "$MODEL" --warmup -1 -p 0 -n 2
if "$BIN" bench -m "$MODEL" -t 1 --ctx 64 -p 0 -n 2 -r 2 --warmup 2 -d 16 --synthetic-depth \
     --kv-compare fp16,kvarn_k2v2 -o json > "$TMP/bench.json" 2>/dev/null &&
   python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); f=j["formats"]
assert j["tg"]["warmup"] == 2 and j["tg"]["reps"] == 2 and [x["kv"] for x in f] == ["fp16", "kvarn_k2v2"]
assert all(len(x["samples"]) == 2 and len(x["cpu_samples"]) == 2 for x in f) and f[0]["ratio_median"] == 1.0' "$TMP/bench.json"; then
  echo "ok   bench-kv-compare"; pass=$((pass+1))
else
  echo "FAIL bench-kv-compare: $(head -c 400 "$TMP/bench.json" 2>/dev/null)"; fail=$((fail+1))
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
