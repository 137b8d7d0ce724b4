"""SmolLM2 (llama arch) in PyTorch, loaded from Strata's GGUF, for LoRA training and reference checks.

Weights are dequantized from the GGUF with the `gguf` PyPI package (the one in /work/main/.venv,
appended to sys.path so Debian's numpy/torch stay first). The model runs in the *GGUF layout*:
q/k rows are permuted by the converter (shared/specs/gguf-and-llama.md §3.4), so RoPE pairs
adjacent dims (2i, 2i+1). LoRA B matrices for q/k learned here are therefore in GGUF row order;
`gguf_to_hf_rows` undoes the permutation before a PEFT file is written (PEFT files hold HF order).
"""
import glob, os, sys

for p in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "../../.venv/lib/python3*/site-packages"))):
    sys.path.append(p)  # append: Debian's numpy/torch win over the venv's
import numpy as np
import torch
import gguf

ROLES = ["q", "k", "v", "o", "gate", "up", "down"]
GGUF_NAME = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "gate": "ffn_gate", "up": "ffn_up",
             "down": "ffn_down"}


def gguf_to_hf_rows(b, n_head):
    """Inverse of the converter's permutation: gguf_row[h*hd + 2j + i] = hf_row[h*hd + i*hd/2 + j]."""
    d_out = b.shape[0]
    hd = d_out // n_head
    return b.reshape(n_head, hd // 2, 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def hf_to_gguf_rows(b, n_head):
    d_out = b.shape[0]
    hd = d_out // n_head
    return b.reshape(n_head, 2, hd // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


class SmolLM2:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        f = lambda k: r.fields[k].parts[-1][0]
        self.n_layer = int(f("llama.block_count"))
        self.n_head = int(f("llama.attention.head_count"))
        self.n_head_kv = int(f("llama.attention.head_count_kv"))
        self.n_embd = int(f("llama.embedding_length"))
        self.hd = self.n_embd // self.n_head
        self.eps = float(f("llama.attention.layer_norm_rms_epsilon"))
        self.base = float(f("llama.rope.freq_base"))
        w = {}
        for t in r.tensors:
            a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            shape = [int(x) for x in reversed(t.shape)]
            w[t.name] = torch.from_numpy(a.reshape(shape).copy())
        self.w = w
        self.emb = w["token_embd.weight"]
        inv = self.base ** (-torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)
        self.inv_freq = inv.float()

    def weight(self, l, role):
        return self.w[f"blk.{l}.{GGUF_NAME[role]}.weight"]

    def rope(self, x, pos):  # x [B,T,H,hd], interleaved pairs (GGUF layout)
        ang = pos[:, None].float() * self.inv_freq[None, :]  # [T, hd/2]
        c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)

    def rmsnorm(self, x, wt):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * wt

    def hidden(self, tokens, lora=None, scale=1.0, taps=None):
        """tokens [B,T] -> final normed hidden [B,T,E]. lora: {(l, role): (A [r,in], B [out,r])} in GGUF
        layout, applied as y += scale * B (A x). taps: dict filled with matmul inputs (probe)."""
        B, T = tokens.shape
        x = self.emb[tokens]
        pos = torch.arange(T)
        mask = torch.full((T, T), float("-inf")).triu(1)

        def mm(h, l, role):
            y = h @ self.weight(l, role).T
            if taps is not None: taps.setdefault((l, role), []).append(h.detach())
            if lora is not None and (l, role) in lora:
                a, b = lora[(l, role)]
                y = y + scale * ((h @ a.T) @ b.T)
            return y

        for l in range(self.n_layer):
            h = self.rmsnorm(x, self.w[f"blk.{l}.attn_norm.weight"])
            q = mm(h, l, "q").view(B, T, self.n_head, self.hd)
            k = mm(h, l, "k").view(B, T, self.n_head_kv, self.hd)
            v = mm(h, l, "v").view(B, T, self.n_head_kv, self.hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            g = self.n_head // self.n_head_kv
            k = k.repeat_interleave(g, dim=2)
            v = v.repeat_interleave(g, dim=2)
            att = (q.transpose(1, 2) @ k.transpose(1, 2).transpose(-1, -2)) / self.hd ** 0.5 + mask
            o = (att.softmax(-1) @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, -1)
            x = x + mm(o, l, "o")
            h = self.rmsnorm(x, self.w[f"blk.{l}.ffn_norm.weight"])
            u = torch.nn.functional.silu(mm(h, l, "gate")) * mm(h, l, "up")
            x = x + mm(u, l, "down")
        return self.rmsnorm(x, self.w["output_norm.weight"])

    def logits(self, hidden):
        return hidden @ self.emb.T
