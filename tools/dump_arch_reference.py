#!/usr/bin/env python3
"""Records llama.cpp's logits at every position for the tiny per-architecture GGUFs of
tools/make_test_gguf.py (issue #15), so Strata's llama / qwen3 / gemma3 / llada forward
passes are checked against llama.cpp in CI without llama.cpp installed.

llama.cpp (llama-cpp-python's bundled build) is driven through its C API. Reference run
(`context` in the JSON): the whole sequence in ONE llama_decode with logits requested at
every position, n_ctx 256, n_batch = n_ubatch = 512, 2 threads, flash_attn_type auto (on
for the CPU), KV cache f16 (llama.cpp's defaults), swa_full default (true). llada is
evaluated as llama-diffusion-cli (examples/diffusion) does it: llama_set_causal_attn(ctx,
false) and all positions in one batch with logits everywhere (llada has no KV cache; every
position sees every other one).

Besides the reference logits each JSON records
  noise        max |logit difference| of the reference against other ways llama.cpp itself
               runs the same model: one token per llama_decode (causal archs), flash
               attention forced on / off, 1 thread, the prompt split into ubatches of 5,
               f32 vs f16 KV cache (flash off), gemma3 with swa_full=false. This is
               llama.cpp's own numerical spread and bounds a sensible test tolerance.
               `numpy_f64_forward` is the reference against a float64 numpy forward pass
               written from the architecture definitions (numpy_forward below; quantized
               weights dequantized): what an exact implementation differs by.
  sensitivity  the same for deliberate model errors (gemma3 without its sliding window or
               with another rope base on SWA layers; llada: the first 10 positions of the
               24-token sequence vs the 10-token prompt + 6 masks, equal only under a causal
               mask; the q8f16 file vs the f32 one): what a tolerance must stay under.
  stats        sanity: finite, per-position std of the logits, top-1 probability.
Logits are rounded to 7 significant digits.

Writes tests/fixtures/reference/arch-<arch>[-q8f16].json.
Run: .venv/bin/python tools/make_test_gguf.py && .venv/bin/python tools/dump_arch_reference.py
"""
import argparse
import ctypes
import hashlib
import json
import os
import sys

import numpy as np
import gguf
import llama_cpp

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
OUT = os.path.join(ROOT, "tests", "fixtures", "reference")
ARCHS = ["llama", "qwen3", "gemma3", "llada"]
VARIANTS = ["", "-q8f16"]
SEQ_LEN = 24
SEED = 15  # issue number

REFERENCE = dict(n_ctx=256, n_batch=512, n_ubatch=512, n_threads=2, flash=-1,
                 kv="f16", swa_full=True, tokenwise=False, ubatch_split=0)
KV_TYPES = {"f16": 1, "f32": 0}  # ggml_type
FLASH_NAMES = {-1: "auto", 0: "disabled", 1: "enabled"}

_LOG_CB = llama_cpp.llama_log_callback(lambda level, text, user: None)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def versions():
    libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    out = {"llama_cpp_python": llama_cpp.__version__}
    try:
        out["llama_version"] = llama_cpp.llama_version().decode()
    except Exception:  # older bindings
        pass
    try:
        g = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
        for fn in ("ggml_version", "ggml_commit"):
            f = getattr(g, fn)
            f.restype = ctypes.c_char_p
            out[fn] = f().decode()
    except OSError:
        pass
    out["system_info"] = llama_cpp.llama_print_system_info().decode().strip()
    return out


def read_hparams(path):
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    hp = {}
    for k, f in r.fields.items():
        if k.startswith(arch + ".") or k in ("tokenizer.ggml.mask_token_id", "tokenizer.ggml.bos_token_id",
                                             "tokenizer.ggml.add_bos_token"):
            hp[k] = f.contents()
    types = {}
    for t in r.tensors:
        types.setdefault(t.tensor_type.name, 0)
        types[t.tensor_type.name] += 1
    hp["tensor_types"] = types
    hp["tied_output"] = not any(t.name == "output.weight" for t in r.tensors)
    return arch, hp


def load(path, overrides=None):
    mp = llama_cpp.llama_model_default_params()
    mp.n_gpu_layers = 0
    keep = None
    if overrides:
        arr = (llama_cpp.llama_model_kv_override * (len(overrides) + 1))()
        for i, (key, val) in enumerate(overrides.items()):
            arr[i].key = key.encode()
            if isinstance(val, float):
                arr[i].tag = 1  # LLAMA_KV_OVERRIDE_TYPE_FLOAT
                arr[i].value.val_f64 = val
            else:
                arr[i].tag = 0  # LLAMA_KV_OVERRIDE_TYPE_INT
                arr[i].value.val_i64 = val
        mp.kv_overrides = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_kv_override))
        keep = arr
    m = llama_cpp.llama_model_load_from_file(path.encode(), mp)
    if not m:
        sys.exit(f"llama.cpp failed to load {path}")
    return m, keep


def evaluate(model, tokens, causal, **kw):
    """Logits [n_tokens, n_vocab] (float32) under the settings REFERENCE updated by kw."""
    s = dict(REFERENCE, **kw)
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = s["n_ctx"], s["n_batch"], s["n_ubatch"]
    if s["ubatch_split"]:
        cp.n_ubatch = s["ubatch_split"]
    cp.n_threads = cp.n_threads_batch = s["n_threads"]
    cp.flash_attn_type = s["flash"]
    cp.type_k = cp.type_v = KV_TYPES[s["kv"]]
    cp.swa_full = s["swa_full"]
    ctx = llama_cpp.llama_init_from_model(model, cp)
    assert ctx, "llama_init_from_model failed"
    llama_cpp.llama_set_causal_attn(ctx, causal)
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
    out = np.zeros((len(tokens), n_vocab), np.float32)

    def decode(pos0, toks):
        batch.n_tokens = len(toks)
        for i, t in enumerate(toks):
            batch.token[i] = t
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1
        rc = llama_cpp.llama_decode(ctx, batch)
        assert rc == 0, f"llama_decode returned {rc}"
        for i in range(len(toks)):
            p = llama_cpp.llama_get_logits_ith(ctx, i)
            out[pos0 + i] = np.ctypeslib.as_array(p, shape=(n_vocab,))

    if s["tokenwise"]:
        for i, t in enumerate(tokens):
            decode(i, [t])
    else:
        decode(0, list(tokens))
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    return out


def maxdiff(a, b):
    return float(f"{np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))):.4g}")


def stats(logits):
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return {"finite": bool(np.isfinite(z).all()),
            "min_std_per_position": round(float(z.std(1).min()), 4),
            "max_std_per_position": round(float(z.std(1).max()), 4),
            "max_abs_logit": round(float(np.abs(z).max()), 4),
            "max_top1_prob": round(float(p.max()), 4),
            "mean_top1_prob": round(float(p.max(1).mean()), 4),
            "distinct_argmax": int(len(set(z.argmax(1).tolist()))),
            "min_top1_top2_margin": round(float(np.min(np.diff(np.sort(z, 1)[:, -2:], axis=1))), 6)}


def numpy_forward(path, tokens):
    """Float64 forward pass written from the architecture definitions (not from llama.cpp's
    kernels): the logits an exact implementation gives. Differences from llama.cpp's are
    its f16 rounding (KV cache, flash attention, f16 GELU table) plus accumulation order."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    kv = {k: f.contents() for k, f in r.fields.items()}
    W = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64) for t in r.tensors}
    g = lambda k, d=None: kv.get(f"{arch}.{k}", d)
    E, L, H, HKV = g("embedding_length"), g("block_count"), g("attention.head_count"), g("attention.head_count_kv")
    hd = g("attention.key_length", E // H)
    eps, base = g("attention.layer_norm_rms_epsilon"), g("rope.freq_base", 10000.0)
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64)
    neox = arch in ("qwen3", "gemma3")

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def rope(x, b):  # x [n, heads, hd]
        inv = b ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
        ang = pos[:, None] * inv[None, :]
        c, s_ = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        if neox:
            x0, x1 = x[..., :hd // 2], x[..., hd // 2:]
            return np.concatenate([x0 * c - x1 * s_, x0 * s_ + x1 * c], -1)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = x0 * c - x1 * s_, x0 * s_ + x1 * c
        return out

    x = W["token_embd.weight"][tokens]
    if arch == "gemma3":
        x = x * np.sqrt(E)
        n_swa, base_swa = g("attention.sliding_window"), g("rope.freq_base_swa", 10000.0)
    i_idx, j_idx = np.arange(n)[:, None], np.arange(n)[None, :]
    for il in range(L):
        p = f"blk.{il}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = (h @ W[p + "attn_q.weight"].T).reshape(n, H, hd)
        k = (h @ W[p + "attn_k.weight"].T).reshape(n, HKV, hd)
        v = (h @ W[p + "attn_v.weight"].T).reshape(n, HKV, hd)
        if p + "attn_q_norm.weight" in W:
            q, k = rms(q, W[p + "attn_q_norm.weight"]), rms(k, W[p + "attn_k_norm.weight"])
        allowed = np.ones((n, n), bool) if arch == "llada" else j_idx <= i_idx
        b = base
        if arch == "gemma3" and il % 6 < 5:  # SWA layer (pattern 6)
            b = base_swa
            allowed &= (i_idx - j_idx) < n_swa
        q, k = rope(q, b), rope(k, b)
        out = np.empty((n, H, hd))
        for hh in range(H):
            kh = hh // (H // HKV)
            sc = q[:, hh] @ k[:, kh].T / np.sqrt(hd)
            sc = np.where(allowed, sc, -np.inf)
            pr = np.exp(sc - sc.max(1, keepdims=True))
            pr /= pr.sum(1, keepdims=True)
            out[:, hh] = pr @ v[:, kh]
        a = out.reshape(n, H * hd) @ W[p + "attn_output.weight"].T
        if arch == "gemma3":
            a = rms(a, W[p + "post_attention_norm.weight"])
        x = x + a
        h = rms(x, W[p + "ffn_norm.weight"])
        gt, up = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        if arch == "gemma3":  # GELU, tanh approximation
            act = 0.5 * gt * (1 + np.tanh(np.sqrt(2 / np.pi) * (gt + 0.044715 * gt ** 3)))
        else:  # SiLU
            act = gt / (1 + np.exp(-gt))
        f = (act * up) @ W[p + "ffn_down.weight"].T
        if arch == "gemma3":
            f = rms(f, W[p + "post_ffw_norm.weight"])
        x = x + f
    x = rms(x, W["output_norm.weight"])
    return x @ W.get("output.weight", W["token_embd.weight"]).T


def sequences(arch, n_vocab, add_bos, mask_id):
    """Fixed token-id sequences (never tokenized). Plain ids avoid the control tokens."""
    rng = np.random.default_rng(SEED)
    hi = n_vocab - (1 if mask_id is not None else 0)
    ids = rng.integers(3, hi, size=SEQ_LEN).tolist()
    if add_bos:
        ids[0] = 1
    seqs = [{"name": f"rand{SEQ_LEN}", "tokens": ids}]
    if arch == "llada":
        # A diffusion step's input: a 10-token prompt followed by 6 mask tokens.
        seqs.append({"name": "prompt10_mask6", "tokens": ids[:10] + [mask_id] * 6})
    return seqs


def fmt7(x):
    return float(f"{x:.7g}")


def dump_one(arch, variant, f32_logits):
    name = f"arch-{arch}{variant}"
    path = os.path.join(MODELS, name + ".gguf")
    arch_in_file, hp = read_hparams(path)
    assert arch_in_file == arch
    model, _ = load(path)
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    mask = llama_cpp.llama_vocab_mask(vocab)
    mask_id = None if mask < 0 else int(mask)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    causal = arch != "llada"
    seqs = sequences(arch, n_vocab, add_bos, mask_id)

    noise, sens, all_stats = {}, {}, {}
    for sq in seqs:
        toks = sq["tokens"]
        ref = evaluate(model, toks, causal)
        sq["_ref"] = ref
        all_stats[sq["name"]] = stats(ref)
        runs = {
            "flash_enabled": dict(flash=1),
            "flash_disabled": dict(flash=0),
            "threads_1": dict(n_threads=1),
        }
        if causal:
            runs["tokenwise"] = dict(tokenwise=True)
            runs["tokenwise_flash_disabled"] = dict(tokenwise=True, flash=0)
            runs["ubatch_5"] = dict(ubatch_split=5)
        if arch == "gemma3":
            runs["swa_full_false_tokenwise"] = dict(swa_full=False, tokenwise=True)
            runs["swa_full_false_ubatch_5"] = dict(swa_full=False, ubatch_split=5)
        nd = {}
        for rn, kw in runs.items():
            nd[rn] = maxdiff(ref, evaluate(model, toks, causal, **kw))
        nd["numpy_f64_forward"] = maxdiff(ref, numpy_forward(path, toks))
        nd["auto_equals_enabled_bitwise"] = nd["flash_enabled"] == 0.0
        if causal:
            # With flash attention llama.cpp casts K/V to f16 whatever the cache type, so
            # the cache type only shows with it off.
            nd["kv_f32_vs_f16_flash_disabled"] = maxdiff(evaluate(model, toks, causal, flash=0),
                                                        evaluate(model, toks, causal, flash=0, kv="f32"))
            nd["flash_on_vs_off_tokenwise"] = maxdiff(evaluate(model, toks, causal, tokenwise=True, flash=1),
                                                     evaluate(model, toks, causal, tokenwise=True, flash=0))
        noise[sq["name"]] = nd

        sd = {}
        if f32_logits is not None:
            sd["vs_f32_file"] = maxdiff(ref, f32_logits[sq["name"]])
        sens[sq["name"]] = sd
    llama_cpp.llama_model_free(model)

    if arch == "llada":
        # A causal implementation would give positions 0-9 the same logits in both
        # sequences (same first 10 tokens). llama.cpp cannot run llada causally: without a
        # KV cache llama_decode goes to encode(), which forces non-causal attention.
        a, b = seqs[0]["_ref"][:10], seqs[1]["_ref"][:10]
        sens[seqs[0]["name"]]["first10_vs_prompt10_mask6"] = maxdiff(a, b)
    if arch == "gemma3":
        for sname, ov in (("no_sliding_window", {"gemma3.attention.sliding_window": 0}),
                          ("swa_rope_base_1e6", {"gemma3.rope.freq_base_swa": 1e6}),
                          ("swa_rope_base_1e5", {"gemma3.rope.freq_base_swa": 1e5})):
            m2, keep = load(path, ov)
            for sq in seqs:
                sens[sq["name"]][sname] = maxdiff(sq["_ref"], evaluate(m2, sq["tokens"], causal))
            llama_cpp.llama_model_free(m2)
            del keep

    doc = {
        "file": name + ".gguf",
        "sha256": sha256(path),
        "arch": arch,
        "llama_cpp": versions(),
        "hparams": hp,
        "n_vocab": n_vocab,
        "add_bos": add_bos,
        "mask_token_id": mask_id,
        "context": {
            "n_ctx": REFERENCE["n_ctx"], "n_batch": REFERENCE["n_batch"], "n_ubatch": REFERENCE["n_ubatch"],
            "n_threads": REFERENCE["n_threads"], "n_threads_batch": REFERENCE["n_threads"],
            "flash_attn_type": FLASH_NAMES[REFERENCE["flash"]],
            "flash_attn_resolved": "enabled" if all(n["auto_equals_enabled_bitwise"] for n in noise.values())
                                   else "disabled or mixed",
            "type_k": REFERENCE["kv"], "type_v": REFERENCE["kv"], "swa_full": REFERENCE["swa_full"],
            "causal_attn": causal, "n_gpu_layers": 0,
            "how": ("all tokens in one llama_decode, logits[i]=1 for every position, pos = 0..n-1, seq 0"
                    + ("" if causal else "; llama_set_causal_attn(ctx, false) as llama-diffusion-cli")),
        },
        "noise_max_abs": noise,
        "sensitivity_max_abs": sens,
        "stats": all_stats,
        "sequences": [],
    }
    for sq in seqs:
        doc["sequences"].append({"name": sq["name"], "tokens": sq["tokens"],
                                 "logits": [[fmt7(x) for x in row] for row in sq["_ref"].tolist()]})
    out_path = os.path.join(OUT, name + ".json")
    with open(out_path, "w") as f:
        # One logits row per line keeps the file diffable.
        body = {k: v for k, v in doc.items() if k != "sequences"}
        text = json.dumps(body, indent=1)[:-2]
        text += ',\n "sequences": [\n'
        parts = []
        for sq in doc["sequences"]:
            rows = ",\n".join("   " + json.dumps(r, separators=(",", ":")) for r in sq["logits"])
            parts.append(f'  {{"name": {json.dumps(sq["name"])}, "tokens": {json.dumps(sq["tokens"])},\n'
                         f'   "logits": [\n{rows}]}}')
        text += ",\n".join(parts) + "\n ]\n}\n"
        f.write(text)
    json.load(open(out_path))  # well-formed
    print(f"{name}: {os.path.getsize(out_path)} bytes json; stats {json.dumps(all_stats)}")
    print(f"  noise {json.dumps(noise)}")
    print(f"  sensitivity {json.dumps(sens)}")
    return {sq["name"]: sq["_ref"] for sq in seqs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=ARCHS)
    a = ap.parse_args()
    llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    os.makedirs(OUT, exist_ok=True)
    for arch in ARCHS:
        if a.only and arch != a.only:
            continue
        f32 = None
        for v in VARIANTS:
            res = dump_one(arch, v, f32)
            if v == "":
                f32 = res


if __name__ == "__main__":
    main()
