#!/usr/bin/env python3
"""Writes tests/fixtures/tiny-llama.gguf: a 2-layer random-weight llama-architecture GGUF
for golden tests (tools/dump_llamacpp_reference.py records llama.cpp's outputs for it).

Shape: n_embd 64, n_layer 2, n_head 4, n_head_kv 2, head_dim 16, n_ff 128, context 256,
rope freq_base 10000, rms eps 1e-5, tied embeddings (no output.weight). Every tokenizer.*
key is copied from the real SmolLM2-135M-Instruct file, so the vocabulary is the full
49152-token SmolLM2 one and llama.cpp loads the model like the real one.
Tensor types: token_embd Q8_0 (as in the real file); the 2-D weights mix Q4_1, Q4_0, Q8_0,
Q5_0, Q5_1, F16 and F32 so every 32-block type and both float types are read; norms F32
around 1.0. Weights are N(0, gain^2/n_in) (GAIN below) and the tied head gives logits with
a standard deviation of about 2.8.
Size: token_embd alone is 49152*64/32*34 = 3.3 MB and the tokenizer metadata 1.8 MB, so
the file is 5,206,208 bytes (see EMBD_TYPE to trade the Q8_0 head for size).

Run: .venv/bin/python tools/make_tiny_model.py [--src models/SmolLM2-135M-Instruct.Q4_1.gguf]
Seeded: re-running writes identical bytes.
"""
import argparse
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SEED = 1234
N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF, N_CTX = 64, 2, 4, 2, 128, 256
HEAD_DIM = N_EMBD // N_HEAD
ROPE_BASE, RMS_EPS = 10000.0, 1e-5
EMBD_TYPE = QT.Q8_0   # Q4_0 would bring the file to about 3.6 MB
EMBD_STD = 0.35       # tied head: logit std ~ EMBD_STD * sqrt(N_EMBD) ~ 2.8

# Per layer: tensor -> type. Together the two layers use every type listed above.
LAYER_TYPES = [
    {"attn_q": QT.Q4_1, "attn_k": QT.Q4_0, "attn_v": QT.Q8_0, "attn_output": QT.Q5_0,
     "ffn_gate": QT.Q5_1, "ffn_up": QT.F16, "ffn_down": QT.F32},
    {"attn_q": QT.Q5_1, "attn_k": QT.F16, "attn_v": QT.Q4_1, "attn_output": QT.Q8_0,
     "ffn_gate": QT.Q4_0, "ffn_up": QT.Q5_0, "ffn_down": QT.Q4_1},
]
# numpy shape [n_out, n_in] (GGUF ne = [n_in, n_out]).
SHAPES = {"attn_q": (N_EMBD, N_EMBD), "attn_k": (N_HEAD_KV * HEAD_DIM, N_EMBD),
          "attn_v": (N_HEAD_KV * HEAD_DIM, N_EMBD), "attn_output": (N_EMBD, N_EMBD),
          "ffn_gate": (N_FF, N_EMBD), "ffn_up": (N_FF, N_EMBD), "ffn_down": (N_EMBD, N_FF)}
# With unit gains the residual stays dominated by the current token's embedding and the tied
# head keeps predicting that token (greedy output repeats one id). Gain 3 on the blocks'
# output projections and on q/k (sharper attention) makes the continuation depend on the
# context: 20+ distinct ids in 24 greedy steps, logit std still ~2.8.
GAIN = {"attn_q": 3.0, "attn_k": 3.0, "attn_v": 1.0, "attn_output": 3.0,
        "ffn_gate": 1.0, "ffn_up": 1.0, "ffn_down": 3.0}


def encode(w, qt):
    """Returns (array for GGUFWriter.add_tensor, raw_dtype or None)."""
    if qt == QT.F32:
        return w.astype(np.float32), None
    if qt == QT.F16:
        return w.astype(np.float16), None
    return gguf.quants.quantize(w.astype(np.float32), qt), qt


def copy_tokenizer(src_path, writer):
    reader = gguf.GGUFReader(src_path)
    n = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == VT.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub)
        n += 1
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    return n, n_vocab


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "tiny-llama.gguf"))
    args = ap.parse_args()
    if not os.path.exists(args.src):
        raise SystemExit(f"{args.src} is missing: run tools/fetch_model.sh (the tokenizer is copied from it)")
    rng = np.random.default_rng(SEED)

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name("strata tiny-llama (random weights, test fixture)")
    w.add_type("model")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_file_type(7)  # informational: MOSTLY_Q8_0 (types are mixed; readers use per-tensor types)
    w.add_quantization_version(2)
    n_keys, n_vocab = copy_tokenizer(args.src, w)
    w.add_vocab_size(n_vocab)

    def add(name, arr, qt):
        data, raw = encode(arr, qt)
        w.add_tensor(name, data, raw_dtype=raw)

    add("token_embd.weight", rng.standard_normal((n_vocab, N_EMBD)) * EMBD_STD, EMBD_TYPE)
    for il, types in enumerate(LAYER_TYPES):
        p = f"blk.{il}."
        add(p + "attn_norm.weight", 1.0 + 0.1 * rng.standard_normal(N_EMBD), QT.F32)
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            n_out, n_in = SHAPES[t]
            add(p + t + ".weight", rng.standard_normal((n_out, n_in)) * GAIN[t] / np.sqrt(n_in), types[t])
        add(p + "ffn_norm.weight", 1.0 + 0.1 * rng.standard_normal(N_EMBD), QT.F32)
        for t in ("ffn_gate", "ffn_up", "ffn_down"):
            n_out, n_in = SHAPES[t]
            add(p + t + ".weight", rng.standard_normal((n_out, n_in)) * GAIN[t] / np.sqrt(n_in), types[t])
    add("output_norm.weight", 1.0 + 0.1 * rng.standard_normal(N_EMBD), QT.F32)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes, {n_keys} tokenizer keys, "
          f"vocab {n_vocab}")


if __name__ == "__main__":
    main()
