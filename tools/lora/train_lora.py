#!/usr/bin/env python3
"""Trains one LoRA (task or domain) for SmolLM2-135M-Instruct on CPU (shared/specs/tada.md §6.3).

Usage: train_lora.py --kind domain|task --data data/lora/seed1 --seed 1 --out DIR
Reads <data>/{domain,task}_train.tok.jsonl (made by `strata lora-eval tokenize`). Recipe: rank 8,
alpha 16, all 7 projections in all layers, A ~ U(-1/sqrt(d_in), 1/sqrt(d_in)), B = 0, AdamW
(0.9, 0.999, no weight decay), 20 warm-up steps then a constant rate, batches of 8. Loss on all
tokens (domain) or on the assistant answer only (task). Epochs/learning rates are flags because
the spec's 6/2 epochs were cut to fit two shared cores (see docs/lora-merging.md for the values used).
Writes a PEFT directory (adapter_config.json + adapter_model.safetensors, HF row order for q/k).
"""
import argparse, json, math, os, random, struct, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from smollm2_torch import SmolLM2, ROLES, gguf_to_hf_rows  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

HF = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
      "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}


def write_safetensors(path, tensors, dtype="F16"):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float16 if dtype == "F16" else np.float32)
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def save_peft(out, lora, model, r, alpha, dtype):
    os.makedirs(out, exist_ok=True)
    t = {}
    for (l, role), (a, b) in lora.items():
        b = b.detach().numpy()
        if role in ("q", "k"):
            b = gguf_to_hf_rows(b, model.n_head if role == "q" else model.n_head_kv)
        p = f"base_model.model.model.layers.{l}.{HF[role]}"
        t[p + ".lora_A.weight"] = a.detach().numpy()
        t[p + ".lora_B.weight"] = b
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), t, dtype)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "use_rslora": False,
           "use_dora": False, "bias": "none", "fan_in_fan_out": False, "lora_dropout": 0.0,
           "target_modules": sorted(HF[x].split(".")[1] for x in ROLES), "rank_pattern": {}, "alpha_pattern": {},
           "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "inference_mode": True}
    json.dump(cfg, open(os.path.join(out, "adapter_config.json"), "w"), indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["domain", "task"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="F16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    epochs = args.epochs or (6 if args.kind == "domain" else 2)
    lr = args.lr or (1e-3 if args.kind == "domain" else 5e-4)

    rows = [json.loads(x) for x in open(os.path.join(args.data, f"{args.kind}_train.tok.jsonl"))]
    seqs = []  # (ids, first index that carries loss)
    for r_ in rows:
        if args.kind == "domain":
            seqs.append((r_["text_ids"][:96], 1))
        else:
            ids = (r_["prompt_ids"] + r_["answer_ids"])[:96]
            seqs.append((ids, len(r_["prompt_ids"])))
    m = SmolLM2(args.model)
    for p in m.w.values():
        p.requires_grad_(False)
    lora = {}
    for l in range(m.n_layer):
        for role in ROLES:
            W = m.weight(l, role)
            d_out, d_in = W.shape
            a = torch.empty(args.rank, d_in).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in)).requires_grad_()
            lora[(l, role)] = (a, torch.zeros(d_out, args.rank, requires_grad=True))
    params = [p for ab in lora.values() for p in ab]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0)
    scale = args.alpha / args.rank
    n_steps = int(math.ceil(len(seqs) / 8) * epochs)
    step, t0 = 0, time.time()
    while step < n_steps:
        order = list(range(len(seqs)))
        rng.shuffle(order)
        for bi in range(0, len(order), 8):
            if step >= n_steps: break
            batch = [seqs[i] for i in order[bi:bi + 8]]
            T = max(len(s) for s, _ in batch)
            tok = torch.full((len(batch), T), 2, dtype=torch.long)
            tgt_mask = torch.zeros(len(batch), T, dtype=torch.bool)
            for i, (s, start) in enumerate(batch):
                tok[i, :len(s)] = torch.tensor(s)
                tgt_mask[i, start:len(s)] = True  # position t predicts token t from t-1
            for g in opt.param_groups:
                g["lr"] = lr * min(1.0, (step + 1) / 20)
            h = m.hidden(tok[:, :-1], lora, scale)
            sel = tgt_mask[:, 1:]
            logits = m.logits(h[sel])
            loss = torch.nn.functional.cross_entropy(logits, tok[:, 1:][sel])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 10 == 0 or step == n_steps:
                print(f"[{args.kind} s{args.seed}] step {step}/{n_steps} loss {loss.item():.4f} "
                      f"{time.time() - t0:.0f}s", flush=True)
    save_peft(args.out, lora, m, args.rank, args.alpha, args.dtype)
    print(f"wrote {args.out} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
