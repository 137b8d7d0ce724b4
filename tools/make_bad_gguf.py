#!/usr/bin/env python3
"""Writes small malformed or unsupported GGUF files for the CLI's bad-input tests.

Standard library only (CI runs it before any venv exists). Each file is a complete,
well-formed GGUF container except for the one defect its name says:
  bad_arch.gguf      general.architecture = "gpt9"
  bad_type.gguf      a llama model whose blk.0.attn_q.weight has type IQ2_XXS (16)
  bad_magic.gguf     first four bytes "GGUX"
  truncated.gguf     bad_type.gguf cut in the middle of the tensor descriptors
Usage: make_bad_gguf.py OUTDIR
"""
import os
import struct
import sys


def s(x: str) -> bytes:
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv_str(k, v):
    return s(k) + struct.pack("<I", 8) + s(v)


def kv_u32(k, v):
    return s(k) + struct.pack("<II", 4, v)


def kv_f32(k, v):
    return s(k) + struct.pack("<If", 6, v)


TYPES = {"F32": (0, 1, 4), "Q8_0": (8, 32, 34), "IQ2_XXS": (16, 256, 66)}


def gguf(arch, tensors, magic=b"GGUF"):
    """tensors: list of (name, ne list, type name). Data is zeros."""
    kvs = [kv_str("general.architecture", arch),
           kv_u32(f"{arch}.embedding_length", 256), kv_u32(f"{arch}.block_count", 1),
           kv_u32(f"{arch}.feed_forward_length", 256), kv_u32(f"{arch}.attention.head_count", 4),
           kv_u32(f"{arch}.context_length", 64), kv_f32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)]
    head = magic + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos, off, blobs = b"", 0, []
    for name, ne, tname in tensors:
        tid, bs, bb = TYPES[tname]
        n = 1
        for d in ne:
            n *= d
        nbytes = n // bs * bb
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", tid, off)
        blobs.append(nbytes)
        off += (nbytes + 31) // 32 * 32
    out = head + infos
    out += b"\0" * ((-len(out)) % 32)
    return out + b"\0" * off


def llama_tensors(q_type):
    e, f = 256, 256
    return [("token_embd.weight", [e, 64], "Q8_0"), ("output_norm.weight", [e], "F32"),
            ("blk.0.attn_norm.weight", [e], "F32"), ("blk.0.ffn_norm.weight", [e], "F32"),
            ("blk.0.attn_q.weight", [e, e], q_type), ("blk.0.attn_k.weight", [e, e], "Q8_0"),
            ("blk.0.attn_v.weight", [e, e], "Q8_0"), ("blk.0.attn_output.weight", [e, e], "Q8_0"),
            ("blk.0.ffn_gate.weight", [e, f], "Q8_0"), ("blk.0.ffn_up.weight", [e, f], "Q8_0"),
            ("blk.0.ffn_down.weight", [f, e], "Q8_0")]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {
        "bad_arch.gguf": gguf("gpt9", llama_tensors("Q8_0")),
        "bad_type.gguf": gguf("llama", llama_tensors("IQ2_XXS")),
        "bad_magic.gguf": gguf("llama", llama_tensors("Q8_0"), magic=b"GGUX"),
    }
    files["truncated.gguf"] = files["bad_type.gguf"][:400]
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)


if __name__ == "__main__":
    main()
