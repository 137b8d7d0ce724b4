#!/usr/bin/env python3
"""Independent reference for strata's AttnLRP relevance pass (src/fv/relevance.cpp), written
from shared/specs/function-vectors.md §3.3 only. It runs a *full-sequence* forward of the tiny
fixture model (tests/fixtures/tiny-llama.gguf) in float64 torch and gets the modified gradient
G~ by ordinary autograd, with the AttnLRP rules expressed as detach tricks:
  RMSNorm      x * rsqrt(mean(x^2) + eps).detach() * w        (1/rms held constant)
  SiLU         x * sigmoid(x).detach()                         (identity rule: g * silu(x)/x)
  bilinear     0.5 * f(a, b) + 0.5 * f(a, b).detach()          (uniform rule on silu*up, Q.K^T, A.V)
  softmax, linear, RoPE, residual adds: untouched.
Seed: the raw logit of the target token at the last position. Outputs (JSON) per layer: G~ at
the head outputs (o_proj input) of the last position, the attention relevance row
A[h, T-1, j] * dot(G~(o_h), v_j) (plain dot: the gradient reaching A carries the uniform 1/2,
undone here), the three head scores of spec §3.5, G~ at the last input embedding, and the same
quantities with every rule off (the plain gradient).

Two stages because the gguf package lives in the project venv and torch in Debian's python:
  .venv/bin/python tools/fv/lrp_reference.py          # dequantizes, then runs stage 2 with
                                                      # /usr/bin/python3 (torch) and writes
                                                      # tests/fixtures/fv/lrp_reference.json
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "fixtures", "tiny-llama.gguf")
OUT = os.path.join(ROOT, "tests", "fixtures", "fv", "lrp_reference.json")
# The case (token ids of the SmolLM2 vocabulary, target, label positions) is fixed here and
# read by src/fv/fv_test.cpp from the JSON.
TOKENS = [1, 48, 42, 216, 3324, 198, 49, 42, 4059, 198, 198, 48, 42, 2436, 198, 49, 42]
TARGET = 5387
LABELS = [8, 9]


def stage1():
    import numpy as np
    import gguf
    r = gguf.GGUFReader(MODEL)

    def field(k):
        f = r.fields[k]
        return f.parts[f.data[0]][0].item()
    hp = dict(n_embd=field("llama.embedding_length"), n_layer=field("llama.block_count"),
              n_head=field("llama.attention.head_count"), n_head_kv=field("llama.attention.head_count_kv"),
              n_ff=field("llama.feed_forward_length"), n_rot=field("llama.rope.dimension_count"),
              rope_base=field("llama.rope.freq_base"), eps=field("llama.attention.layer_norm_rms_epsilon"))
    arrays = {}
    for t in r.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        shape = [int(x) for x in t.shape][::-1]  # numpy order [rows, cols]
        arrays[t.name] = w.reshape(shape)
    with tempfile.TemporaryDirectory() as d:
        npz = os.path.join(d, "w.npz")
        np.savez(npz, **arrays)
        with open(os.path.join(d, "hp.json"), "w") as f:
            json.dump(hp, f)
        subprocess.run(["/usr/bin/python3", os.path.abspath(__file__), "--stage2", d], check=True)


def stage2(d):
    import numpy as np
    import torch
    torch.set_default_dtype(torch.float64)
    hp = json.load(open(os.path.join(d, "hp.json")))
    W = {k: torch.from_numpy(v) for k, v in np.load(os.path.join(d, "w.npz")).items()}
    E, L, H, Hkv = hp["n_embd"], hp["n_layer"], hp["n_head"], hp["n_head_kv"]
    hd = E // H
    T = len(TOKENS)
    emb = W["token_embd.weight"]
    out_w = W.get("output.weight", emb)

    def run(lrp):
        half = (lambda y: 0.5 * y + 0.5 * y.detach()) if lrp else (lambda y: y)

        def norm(x, w):
            r = torch.rsqrt((x * x).mean(-1, keepdim=True) + hp["eps"])
            return x * (r.detach() if lrp else r) * w

        def silu(x):
            return x * torch.sigmoid(x).detach() if lrp else torch.nn.functional.silu(x)

        pos = torch.arange(T, dtype=torch.float64)
        inv = hp["rope_base"] ** (-torch.arange(0, hp["n_rot"], 2, dtype=torch.float64) / hp["n_rot"])
        ang = pos[:, None] * inv[None, :]  # [T, n_rot/2]
        cos, sin = torch.cos(ang), torch.sin(ang)

        def rope(x):  # x [T, heads, hd]; adjacent pairs (2i, 2i+1)
            a, b = x[..., 0::2], x[..., 1::2]
            c, s = cos[:, None, :], sin[:, None, :]
            return torch.stack([a * c - b * s, a * s + b * c], dim=-1).reshape(x.shape)

        x0 = emb[TOKENS].clone().requires_grad_(True)
        x = x0
        keep = []
        mask = torch.full((T, T), float("-inf")).triu(1)
        for l in range(L):
            p = f"blk.{l}."
            h = norm(x, W[p + "attn_norm.weight"])
            q = (h @ W[p + "attn_q.weight"].T).reshape(T, H, hd)
            k = (h @ W[p + "attn_k.weight"].T).reshape(T, Hkv, hd)
            v = (h @ W[p + "attn_v.weight"].T).reshape(T, Hkv, hd)
            q, k = rope(q), rope(k)
            g = H // Hkv
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
            s = half(torch.einsum("thd,jhd->htj", q, k)) / hd ** 0.5 + mask
            A = torch.softmax(s, dim=-1)
            A.retain_grad()
            o = half(torch.einsum("htj,jhd->thd", A, v)).reshape(T, E)
            o.retain_grad()
            x = x + o @ W[p + "attn_output.weight"].T
            h2 = norm(x, W[p + "ffn_norm.weight"])
            gate = h2 @ W[p + "ffn_gate.weight"].T
            up = h2 @ W[p + "ffn_up.weight"].T
            x = x + half(silu(gate) * up) @ W[p + "ffn_down.weight"].T
            keep.append((A, o, v))
        logits = norm(x, W["output_norm.weight"]) @ out_w.T
        logits[T - 1, TARGET].backward()
        res = {"target_logit": logits[T - 1, TARGET].item(), "g_embed": x0.grad[T - 1].tolist(), "layers": []}
        for l, (A, o, v) in enumerate(keep):
            gA = A.grad[:, T - 1, :] * (2.0 if lrp else 1.0)  # undo the uniform 1/2: plain dot(G~(o), v)
            rel = A[:, T - 1, :].detach() * gA  # [H, T]
            go = o.grad[T - 1].reshape(H, hd)
            labels = sum(rel[:, j].clamp(min=0) for j in LABELS)
            allpos = rel[:, : T - 1].clamp(min=0).sum(-1)
            signed = (o[T - 1].detach().reshape(H, hd) * go).sum(-1)
            res["layers"].append({"g_att": o.grad[T - 1].tolist(), "attn_rel": rel.reshape(-1).tolist(),
                                  "score_labels": labels.tolist(), "score_all": allpos.tolist(),
                                  "score_signed": signed.tolist()})
        return res

    out = {"model": "tests/fixtures/tiny-llama.gguf", "tokens": TOKENS, "target": TARGET, "labels": LABELS,
           "generator": "tools/fv/lrp_reference.py (torch autograd, float64, full sequence)",
           "lrp": run(True), "gradient": run(False)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)} (target logit {out['lrp']['target_logit']:.4f})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--stage2":
        stage2(sys.argv[2])
    else:
        stage1()
