#!/usr/bin/env python3
"""Records llama.cpp's outputs (through llama-cpp-python) as golden references for Strata.

For each model and prompt it stores, in tests/fixtures/reference/:
  <model>.json          prompts, prompt token ids, greedy continuations and metadata
  <model>.<i>.f32       full-vocabulary logits at the last prompt position, little-endian f32
Models:
  tiny-llama            tests/fixtures/tiny-llama.gguf (tools/make_tiny_model.py):
                        4 prompts, 32 greedy tokens each
  smollm2-135m-q4_1     models/SmolLM2-135M-Instruct.Q4_1.gguf (tools/fetch_model.sh):
                        8 chat prompts in ChatML with the default system prompt (spec §5),
                        64 greedy tokens each
Prompts are tokenized with special=True, add_bos=False (SmolLM2 never adds BOS). Greedy =
argmax of the logits (first index on ties), fed back one token per eval() call; generation
does not stop at end-of-generation tokens: exactly n_greedy tokens are recorded and
`first_eog` gives the index of the first one (or null). `greedy_margin` is top1 - top2 of
the logits each token was chosen from: steps with a margin below ~1e-2 can legitimately
flip in another implementation. The main logits and the greedy run come from feeding one
token per eval() (llama.cpp's decode path, which Strata's default mode reproduces bit for
bit); the batched-prefill logits differ from those by llama.cpp's own kernel spread.

Run: .venv/bin/python tools/dump_llamacpp_reference.py [--only tiny|real]
"""
import argparse
import hashlib
import json
import os

import numpy as np
import llama_cpp

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "reference")
N_THREADS = 2

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")


TINY_PROMPTS = [
    ("plain", "The capital of France is"),
    ("digits", "Hello world! 123"),
    ("whitespace", "  leading spaces\tand\ttabs\n\nnew lines"),
    ("chat", chatml("Hi there")),
]
REAL_USER_MESSAGES = [
    "What is the capital of France?",
    "Write a haiku about the ocean.",
    "Explain in one sentence why the sky is blue.",
    "Translate to French: Good morning, how are you?",
    "List three prime numbers greater than 10.",
    "def fibonacci(n):\n    # complete this Python function",
    "Hi there",
    "H\u00e9llo! \u00c7a va? \u4f60\u597d \U0001F642 \u2014 unicode test 123",
]
# Spec §5: the default system block and the user header, as token ids.
SPEC_PREFIX = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28,
               7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198]
SPEC_SUFFIX = [2, 198, 1, 520, 9531, 198]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def eog_ids(llm):
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]


def margin(logits):
    top2 = np.partition(logits, -2)[-2:]
    return float(top2[1] - top2[0])


def run_case(llm, text, n_greedy):
    """Batched prefill (last logits only), then a fresh sequential run: the prompt fed one
    token per eval() call, so llama.cpp uses its decode kernels throughout, and the greedy
    continuation from that state."""
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    llm.reset()
    llm.eval(tokens)
    batch_last = np.array(llm.scores[len(tokens) - 1], dtype=np.float32)
    llm.reset()
    for t in tokens:
        llm.eval([t])
    last = np.array(llm.scores[len(tokens) - 1], dtype=np.float32)
    logits = last
    greedy, margins = [], []
    for _ in range(n_greedy):
        tok = int(np.argmax(logits))
        greedy.append(tok)
        margins.append(round(margin(logits), 6))
        llm.eval([tok])
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    return tokens, last, batch_last, greedy, margins


def dump_model(tag, model_path, cases, n_greedy, n_ctx):
    if not os.path.exists(model_path):
        raise SystemExit(f"{model_path} is missing (tools/make_tiny_model.py or tools/fetch_model.sh)")
    llm = llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, n_batch=n_ctx, n_threads=N_THREADS,
                          n_threads_batch=N_THREADS, logits_all=True, verbose=False, seed=0)
    eog = eog_ids(llm)
    out_cases = []
    for i, (name, text) in enumerate(cases):
        tokens, last, batch_last, greedy, margins = run_case(llm, text, n_greedy)
        assert len(tokens) + n_greedy <= n_ctx
        if text.startswith("<|im_start|>system"):
            assert tokens[:len(SPEC_PREFIX)] == SPEC_PREFIX, tokens
            assert tokens[-len(SPEC_SUFFIX):] == SPEC_SUFFIX, tokens
        fname = f"{tag}.{i}.f32"
        last.astype("<f4").tofile(os.path.join(OUT, fname))
        bname = f"{tag}.{i}.batch.f32"
        batch_last.astype("<f4").tofile(os.path.join(OUT, bname))
        top = np.argsort(-last, kind="stable")[:5]
        first_eog = next((k for k, t in enumerate(greedy) if t in eog), None)
        out_cases.append({
            "name": name, "prompt": text, "prompt_tokens": [int(t) for t in tokens],
            "logits_file": fname, "batch_logits_file": bname, "n_vocab": int(last.size),
            "last_logits_top5": [[int(t), round(float(last[t]), 5)] for t in top],
            "greedy_tokens": greedy, "greedy_margin": margins, "first_eog": first_eog,
            "greedy_text": llm.detokenize(greedy, special=True).decode("utf-8", errors="replace"),
        })
        print(f"{tag} #{i} {name!r}: {len(tokens)} prompt tokens, top {top[0]}, "
              f"min margin {min(margins):.4f}, first_eog {first_eog}")
    meta = {
        "generator": "tools/dump_llamacpp_reference.py",
        "llama_cpp_python_version": llama_cpp.__version__,
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "model": os.path.relpath(model_path, ROOT), "model_sha256": sha256(model_path),
        "n_ctx": n_ctx, "n_threads": N_THREADS, "tokenize": "special=True, add_bos=False",
        "n_greedy": n_greedy, "greedy": "argmax (first index on ties), one eval() per token, "
                                        "no stop at end-of-generation tokens",
        "logits": "logits_file: last prompt position after feeding the prompt one token per eval() "
                  "(llama.cpp's decode kernels; greedy continues from this state); batch_logits_file: "
                  "the same position after one batched eval() of the whole prompt",
        "eog_ids": eog, "logits_dtype": "float32 little-endian, one file per prompt",
        "cases": out_cases,
    }
    with open(os.path.join(OUT, f"{tag}.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    del llm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["tiny", "real"])
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if args.only in (None, "tiny"):
        dump_model("tiny-llama", os.path.join(ROOT, "tests", "fixtures", "tiny-llama.gguf"),
                   TINY_PROMPTS, n_greedy=32, n_ctx=256)
    if args.only in (None, "real"):
        cases = [(f"chat{i}", chatml(m)) for i, m in enumerate(REAL_USER_MESSAGES)]
        dump_model("smollm2-135m-q4_1",
                   os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"),
                   cases, n_greedy=64, n_ctx=512)
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"{OUT}: {total} bytes")
    if total >= 6 * 1024 * 1024:
        raise SystemExit("reference fixtures exceed the 6 MB budget")


if __name__ == "__main__":
    main()
