#!/usr/bin/env python3
"""Records llama.cpp's greedy continuations of raw prompts, as people run llama.cpp, for
the 8-bit-mode parity test (issue #14).

llama.cpp (llama-cpp-python, built from source by pip) is driven through its C API the way
`llama-completion` drives it with default settings: the whole prompt in one llama_decode
(n_batch 2048, n_ubatch 512), then one token per llama_decode, greedy (argmax, first index
on ties), n_ctx = the model's training context, 2 threads, flash attention as the default
(`auto`, which is on for the CPU) and off (`-fa off`). Prompts are token-id slices of
several committed texts, 1 to 300 tokens long (never tokenized by Strata's tokenizer, so
the test checks the model computation alone).

Writes tests/fixtures/reference/parity-smollm2-135m-q4_1.json:
  prompts: [{"source", "tokens"}], and per attention mode ("fa_on", "fa_off") the greedy
  tokens of each prompt and the top1 - top2 logit margin of every step.
Run: .venv/bin/python tools/dump_llamacpp_parity.py [--n-gen 64]
Gemma 3 (issue #15; llama-completion's swa_full = false, prompts past the 512-token window):
  .venv/bin/python tools/dump_llamacpp_parity.py --model models/gemma-3-270m-q4_k_m.gguf \
      --out tests/fixtures/reference/parity-gemma3-270m-q4_k_m.json --n-ctx 4096 \
      --lengths 1,7,33,64,65,200,300,520,700
"""
import argparse
import ctypes
import json
import os

import numpy as np
import llama_cpp

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(ROOT, "tests", "fixtures", "reference", "parity-smollm2-135m-q4_1.json")
N_THREADS = 2
# Prompt lengths: short ones, both sides of the flash-attention tile (64 query rows) and of
# the 256-cell KV padding (the split-KV decode path starts at 512 cells), and long ones.
LENGTHS = [1, 2, 3, 5, 8, 13, 21, 34, 50, 63, 64, 65, 90, 127, 128, 129, 150, 191, 200, 220,
           240, 250, 255, 256, 257, 270, 280, 290, 299, 300]
SOURCES = ["README.md", "docs/design.md", "src/tensor/cpu/matmul.cpp", "docs/kv-cache.md",
           "src/server/openai.h", "docs/serving.md"]


def tokenize(model, text):
    vocab = llama_cpp.llama_model_get_vocab(model)
    raw = text.encode()
    buf = (llama_cpp.llama_token * (len(raw) + 16))()
    n = llama_cpp.llama_tokenize(vocab, raw, len(raw), buf, len(buf), False, False)
    assert n > 0
    return list(buf[:n])


def greedy(model, tokens, n_gen, flash, n_ctx):
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = n_ctx  # 0: the model's training context, llama-completion's default
    cp.swa_full = False  # llama-completion's default (the C API's default is true)
    cp.n_batch = 2048
    cp.n_ubatch = 512
    cp.n_threads = N_THREADS
    cp.n_threads_batch = N_THREADS
    cp.flash_attn_type = 1 if flash else 0
    ctx = llama_cpp.llama_init_from_model(model, cp)
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)

    def decode(toks, pos0):
        batch.n_tokens = len(toks)
        for i, t in enumerate(toks):
            batch.token[i] = t
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i == len(toks) - 1 else 0
        assert llama_cpp.llama_decode(ctx, batch) == 0
        p = llama_cpp.llama_get_logits_ith(ctx, -1)
        return np.ctypeslib.as_array(p, shape=(n_vocab,)).copy()

    out, margins = [], []
    logits = decode(tokens, 0)
    for i in range(n_gen):
        t = int(np.argmax(logits))
        top2 = np.partition(logits, -2)[-2:]
        out.append(t)
        margins.append(float(top2[1] - top2[0]))
        logits = decode([t], len(tokens) + i)
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    return out, margins


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-gen", type=int, default=64)
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--n-ctx", type=int, default=0, help="0 = the model's training context")
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="prompt lengths in tokens")
    a = ap.parse_args()
    lengths = [int(x) for x in a.lengths.split(",")]
    llama_cpp.llama_backend_init()
    model = llama_cpp.llama_model_load_from_file(a.model.encode(), llama_cpp.llama_model_default_params())
    prompts = []
    for i, n in enumerate(lengths):
        src = SOURCES[i % len(SOURCES)]
        toks = tokenize(model, open(os.path.join(ROOT, src), encoding="utf-8").read())
        start = (97 * i) % max(1, len(toks) - n)
        prompts.append({"source": f"{src} tokens [{start}, {start + n})", "tokens": toks[start:start + n]})
    report = {
        "model": os.path.basename(a.model), "llama_cpp_python": llama_cpp.__version__, "n_threads": N_THREADS,
        "n_gen": a.n_gen, "n_ctx": a.n_ctx, "swa_full": False,
        "how": "prompt in one llama_decode (n_batch 2048, n_ubatch 512), then one token per llama_decode; "
               "greedy = argmax, first index on ties; n_ctx = the model's training context",
        "prompts": prompts, "modes": {},
    }
    for name, flash in (("fa_on", True), ("fa_off", False)):
        runs = []
        for p in prompts:
            toks, margins = greedy(model, p["tokens"], a.n_gen, flash, a.n_ctx)
            runs.append({"greedy": toks, "margins": [round(m, 6) for m in margins]})
            print(f"{name} len {len(p['tokens'])}: min margin {min(margins):.4f}")
        report["modes"][name] = runs
    llama_cpp.llama_model_free(model)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
