#!/usr/bin/env python3
"""Writes gemma_rows.bin: real rows of Gemma 3 270M Q4_K_M's weights (each type it uses for
matmuls) with the `gguf` package's dequantization of them (gguf.quants.dequantize, a port
of ggml-quants.c), for kquant_test.cpp's GemmaRowsDequantizeAsGguf. The package, not
Strata, produces the expected floats.

Format: b"SGR1", u32 count; per entry: u32 name length, name, u32 ggml type id, u32 rows,
u32 cols, the raw row bytes, then rows*cols little-endian f32.

Run: .venv/bin/python src/tensor/cpu/testdata/make_gemma_rows.py models/gemma-3-270m-q4_k_m.gguf
"""
import os
import struct
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

# (tensor, first row, rows): every quantized matmul type the file uses.
PICK = [
    ("blk.0.attn_output.weight", 100, 3),   # Q4_K, 1024 columns
    ("blk.2.ffn_down.weight", 7, 3),        # Q4_K, 2048 columns
    ("blk.0.ffn_down.weight", 300, 3),      # Q6_K
    ("blk.0.attn_q.weight", 5, 2),          # Q5_0
    ("blk.0.attn_v.weight", 9, 2),          # Q8_0
    ("token_embd.weight", 262000, 2),       # Q8_0, the tied output head
]


def main():
    src = sys.argv[1]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gemma_rows.bin")
    r = GGUFReader(src)
    tensors = {t.name: t for t in r.tensors}
    with open(out, "wb") as f:
        f.write(b"SGR1" + struct.pack("<I", len(PICK)))
        for name, r0, n in PICK:
            t = tensors[name]
            cols = int(t.shape[0])
            raw = np.asarray(t.data)[r0:r0 + n]  # rows of raw bytes
            vals = dequantize(raw, t.tensor_type).astype("<f4").reshape(n, cols)
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<III", int(t.tensor_type), n, cols))
            f.write(raw.tobytes())
            f.write(vals.tobytes())
            print(name, t.tensor_type.name, n, "x", cols)


if __name__ == "__main__":
    main()
