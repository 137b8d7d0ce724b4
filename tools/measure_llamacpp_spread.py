#!/usr/bin/env python3
"""Measures llama.cpp's own numerical spread on the reference prompts: last-position
logits after a batched prefill vs after feeding the same prompt one token at a time.
Both are llama.cpp, same file, same threads; the difference is only which kernels
(batched GEMM vs per-token matvec) and summation orders it uses. This spread is the
noise floor that justifies the logit tolerance in src/model/model_test.cpp.
Usage: .venv/bin/python tools/measure_llamacpp_spread.py  (prints a table)"""
import json
import os
import sys

import numpy as np
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ref = json.load(open(os.path.join(ROOT, "tests/fixtures/reference/smollm2-135m-q4_1.json")))
model = os.path.join(ROOT, ref["model"])
print("case   max|batch-seq|  rms    top1-same  batch-vs-fixture max")
for case in ref["cases"]:
    out = {}
    for mode in ("batch", "seq"):
        llm = Llama(model, n_ctx=ref["n_ctx"], n_threads=2, logits_all=True, verbose=False)
        toks = case["prompt_tokens"]
        if mode == "batch":
            llm.eval(toks)
        else:
            for t in toks:
                llm.eval([t])
        out[mode] = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    fix = np.fromfile(os.path.join(ROOT, "tests/fixtures/reference", case["logits_file"]), dtype=np.float32)
    d = out["batch"] - out["seq"]
    print(f"{case['name']:6s} {np.abs(d).max():10.4f} {np.sqrt((d*d).mean()):8.4f}  "
          f"{int(out['batch'].argmax() == out['seq'].argmax()):5d}      {np.abs(out['batch'] - fix).max():.4f}")
    sys.stdout.flush()
