#!/usr/bin/env python3
"""Writes tests/fixtures/models/arch-*.gguf: tiny random-weight GGUFs in llama.cpp's tensor
layout for the architectures llama, qwen3, gemma3 and llada (issue #15).

tools/dump_arch_reference.py records llama.cpp's logits for them
(tests/fixtures/reference/arch-*.json); tests/fixtures/models/README.md lists the files.

Per architecture (ARCHS below) one all-F32 file `arch-<arch>.gguf` (the comparison then
isolates the block structure) and one `arch-<arch>-q8f16.gguf` with the SAME weights stored
as Q8_0 / F16 (matrices only; norms stay F32), so the difference between the two files is
the quantization alone.

Weights: norms 1 + 0.1*N(0,1) (q/k norms: QK_NORM_CENTER + 0.1*N(0,1), a sharper softmax);
matrices N(0,1) * gain / sqrt(n_in) (gain 1, except GAIN below), token_embd N(0, EMBD_STD^2),
so activations stay O(1) and logits have a standard deviation of about 2-3.
Tokenizer: SentencePiece-style ("llama" model): <unk> <s> </s>, the 256 byte tokens
<0x00>..<0xFF>, then plain pieces up to n_vocab (llada: the last id is the control token
<|mdm_mask|>, tokenizer.ggml.mask_token_id). Tests feed token ids directly.

Run: .venv/bin/python tools/make_test_gguf.py [--out tests/fixtures/models] [--only ARCH]
Seeded per architecture: re-running writes identical bytes.
"""
import argparse
import os
import string
import zlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "models")

RMS_EPS = 1e-6
N_CTX = 256
EMBD_STD = 0.4        # tied head: logit std ~ EMBD_STD * sqrt(n_embd) * |output_norm|
OUTPUT_GAIN = 3.0     # untied head: logit std ~ OUTPUT_GAIN
QK_NORM_CENTER = 1.2  # q/k RMS-norm weights (qwen3, gemma3): attention scores std ~ 1.2^2
# Output projections of the blocks and (without q/k norm) q/k get a gain so that attention
# and the MLP move the residual stream noticeably (otherwise the logits are little more than
# a function of the current token and attention/mask bugs would hide under the tolerance).
# Gains of 2 roughly double llama.cpp's own flash-on/off spread too; 1.5 is a middle ground.
GAIN = {"attn_q": 1.5, "attn_k": 1.5, "attn_v": 1.0, "attn_output": 1.5,
        "ffn_gate": 1.0, "ffn_up": 1.0, "ffn_down": 1.5}

# hparams per architecture. head_dim = key_length = value_length.
ARCHS = {
    # Llama: GQA 4/2, head_dim = n_embd / n_head, untied output, rope NORM (adjacent pairs).
    "llama": dict(n_vocab=320, n_embd=64, n_layer=3, n_head=4, n_head_kv=2, head_dim=16,
                  n_ff=96, rope_base=10000.0, tied=False, write_kv_len=False),
    # Qwen3: q/k RMS norm per head, head_dim 32 with 4 heads (q_dim 128 != n_embd 64),
    # GQA 4/2, tied output, rope NEOX (halves).
    "qwen3": dict(n_vocab=384, n_embd=64, n_layer=3, n_head=4, n_head_kv=2, head_dim=32,
                  n_ff=64, rope_base=1000000.0, tied=True, write_kv_len=True),
    # Gemma3: like the 270M model (640 wide, 4 heads of 256, 1 kv head): embeddings scaled
    # by sqrt(n_embd), q/k norm, post-attention and post-FFN norms, GELU (tanh) gated MLP,
    # q scaled by 1/sqrt(head_dim), tied output, rope NEOX; 7 layers with the default SWA
    # pattern 6 -> layers 0-4 and 6 sliding-window (window 8, rope base freq_base_swa),
    # layer 5 global (rope base freq_base).
    "gemma3": dict(n_vocab=384, n_embd=32, n_layer=7, n_head=4, n_head_kv=1, head_dim=32,
                   n_ff=64, rope_base=1000000.0, rope_base_swa=10000.0, sliding_window=8,
                   tied=True, write_kv_len=True),
    # LLaDA: llama blocks with non-causal attention (diffusion LM), MHA 4/4, untied output,
    # rope NORM; tokenizer.ggml.mask_token_id = the last token.
    "llada": dict(n_vocab=320, n_embd=64, n_layer=3, n_head=4, n_head_kv=4, head_dim=16,
                  n_ff=96, rope_base=500000.0, tied=False, write_kv_len=False),
}
# In the q8f16 variant, per layer parity: tensor -> type (norms and 1-D tensors stay F32).
Q8F16_TYPES = [
    {"attn_q": QT.Q8_0, "attn_k": QT.Q8_0, "attn_v": QT.F16, "attn_output": QT.Q8_0,
     "ffn_gate": QT.F16, "ffn_up": QT.Q8_0, "ffn_down": QT.F16},
    {"attn_q": QT.F16, "attn_k": QT.Q8_0, "attn_v": QT.Q8_0, "attn_output": QT.F16,
     "ffn_gate": QT.Q8_0, "ffn_up": QT.F16, "ffn_down": QT.Q8_0},
]
Q8F16_EMBD, Q8F16_OUTPUT = QT.Q8_0, QT.F16
# gemma3-q8f16 omits gemma3.rope.freq_base_swa (llama.cpp then uses its default, 10000,
# the value the f32 file writes explicitly), so a reader must know the default.


def tokenizer(n_vocab, mask_token):
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256  # UNKNOWN, CONTROL, CONTROL, BYTE
    n_plain = n_vocab - len(toks) - (1 if mask_token else 0)
    letters = string.ascii_lowercase
    pieces = [f"\u2581{c}" for c in letters] + list(letters) + \
        [f"\u2581{a}{b}" for a in letters for b in letters]
    assert n_plain <= len(pieces)
    toks += pieces[:n_plain]
    types += [1] * n_plain  # NORMAL
    scores = [0.0] * 259 + [-float(i) for i in range(n_plain)]
    if mask_token:
        toks.append("<|mdm_mask|>")
        types.append(3)
        scores.append(0.0)
    assert len(toks) == n_vocab == len(set(toks))
    return toks, scores, types


def encode(w, qt):
    """(array for GGUFWriter.add_tensor, raw_dtype or None)."""
    if qt == QT.F32:
        return w.astype(np.float32), None
    if qt == QT.F16:
        return w.astype(np.float16), None
    return gguf.quants.quantize(w.astype(np.float32), qt), qt


def make_weights(arch, h):
    """name -> (numpy array [out, in] or [n], role) in writing order; seeded by the arch."""
    rng = np.random.default_rng(zlib.crc32(arch.encode()))
    E, V, F, hd = h["n_embd"], h["n_vocab"], h["n_ff"], h["head_dim"]
    q_dim, kv_dim = h["n_head"] * hd, h["n_head_kv"] * hd

    def norm(n, center=1.0):
        return (center + 0.1 * rng.standard_normal(n)).astype(np.float32)

    def mat(n_out, n_in, gain=1.0):
        return (rng.standard_normal((n_out, n_in)) * (gain / np.sqrt(n_in))).astype(np.float32)

    qk_norm = arch in ("qwen3", "gemma3")
    w = {"token_embd.weight": ((rng.standard_normal((V, E)) * EMBD_STD).astype(np.float32), "embd")}
    w["output_norm.weight"] = (norm(E), "norm")
    if not h["tied"]:
        w["output.weight"] = (mat(V, E, OUTPUT_GAIN), "output")
    shapes = {"attn_q": (q_dim, E), "attn_k": (kv_dim, E), "attn_v": (kv_dim, E),
              "attn_output": (E, q_dim), "ffn_gate": (F, E), "ffn_up": (F, E), "ffn_down": (E, F)}
    for i in range(h["n_layer"]):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = (norm(E), "norm")
        for t in ("attn_q", "attn_k", "attn_v"):
            gain = 1.0 if (qk_norm and t != "attn_v") else GAIN[t]
            w[p + t + ".weight"] = (mat(*shapes[t], gain), t)
        if qk_norm:
            w[p + "attn_q_norm.weight"] = (norm(hd, QK_NORM_CENTER), "norm")
            w[p + "attn_k_norm.weight"] = (norm(hd, QK_NORM_CENTER), "norm")
        w[p + "attn_output.weight"] = (mat(*shapes["attn_output"], GAIN["attn_output"]), "attn_output")
        if arch == "gemma3":
            w[p + "post_attention_norm.weight"] = (norm(E), "norm")
        w[p + "ffn_norm.weight"] = (norm(E), "norm")
        for t in ("ffn_gate", "ffn_up", "ffn_down"):
            w[p + t + ".weight"] = (mat(*shapes[t], GAIN[t]), t)
        if arch == "gemma3":
            w[p + "post_ffw_norm.weight"] = (norm(E), "norm")
    return w


def tensor_type(name, role, variant):
    if variant == "f32" or role == "norm":
        return QT.F32
    if role == "embd":
        return Q8F16_EMBD
    if role == "output":
        return Q8F16_OUTPUT
    layer = int(name.split(".")[1])
    return Q8F16_TYPES[layer % 2][role]


def write(arch, variant, out_dir):
    h = ARCHS[arch]
    suffix = "" if variant == "f32" else "-" + variant
    path = os.path.join(out_dir, f"arch-{arch}{suffix}.gguf")
    wr = gguf.GGUFWriter(path, arch)
    wr.add_name(f"strata-test-{arch}{suffix}")
    wr.add_description("random weights for tests (tools/make_test_gguf.py); not a language model")
    wr.add_file_type(gguf.LlamaFileType.ALL_F32 if variant == "f32" else gguf.LlamaFileType.MOSTLY_Q8_0)
    wr.add_context_length(N_CTX)
    wr.add_embedding_length(h["n_embd"])
    wr.add_block_count(h["n_layer"])
    wr.add_feed_forward_length(h["n_ff"])
    wr.add_head_count(h["n_head"])
    wr.add_head_count_kv(h["n_head_kv"])
    if h["write_kv_len"]:
        wr.add_key_length(h["head_dim"])
        wr.add_value_length(h["head_dim"])
    wr.add_rope_dimension_count(h["head_dim"])
    wr.add_rope_freq_base(h["rope_base"])
    wr.add_layer_norm_rms_eps(RMS_EPS)
    if arch == "gemma3":
        wr.add_sliding_window(h["sliding_window"])
        if variant == "f32":
            # LLM_KV_ROPE_FREQ_BASE_SWA; gguf-py 0.17.1 has no constant for it.
            wr.add_float32(f"{arch}.rope.freq_base_swa", h["rope_base_swa"])
    toks, scores, types = tokenizer(h["n_vocab"], mask_token=(arch == "llada"))
    wr.add_tokenizer_model("llama")
    wr.add_tokenizer_pre("default")
    wr.add_token_list(toks)
    wr.add_token_scores(scores)
    wr.add_token_types(types)
    wr.add_unk_token_id(0)
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)
    wr.add_add_bos_token(arch != "qwen3")
    wr.add_add_eos_token(False)
    if arch == "llada":
        wr.add_mask_token_id(len(toks) - 1)

    for name, (arr, role) in make_weights(arch, h).items():
        data, raw = encode(arr, tensor_type(name, role, variant))
        wr.add_tensor(name, data, raw_dtype=raw)

    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--only", choices=sorted(ARCHS))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for arch in ARCHS:
        if a.only and arch != a.only:
            continue
        for variant in ("f32", "q8f16"):
            write(arch, variant, a.out)


if __name__ == "__main__":
    main()
