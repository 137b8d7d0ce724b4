#!/usr/bin/env python3
"""Random PEFT LoRA adapter for SmolLM2-135M (all 30 layers x 7 projections), for merge timing.

Usage: make_random_adapter.py OUT_DIR RANK SEED
"""
import json, os, struct, sys
import numpy as np

out, r, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
dims = {"self_attn.q_proj": (576, 576), "self_attn.k_proj": (192, 576), "self_attn.v_proj": (192, 576),
        "self_attn.o_proj": (576, 576), "mlp.gate_proj": (1536, 576), "mlp.up_proj": (1536, 576),
        "mlp.down_proj": (576, 1536)}
t = {}
for l in range(30):
    for m, (d_out, d_in) in dims.items():
        p = f"base_model.model.model.layers.{l}.{m}"
        t[p + ".lora_A.weight"] = rng.uniform(-1, 1, (r, d_in)).astype(np.float32) / np.sqrt(d_in)
        t[p + ".lora_B.weight"] = rng.normal(0, 0.01, (d_out, r)).astype(np.float32)
hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
for k in sorted(t):
    b = t[k].tobytes()
    hdr[k] = {"dtype": "F32", "shape": list(t[k].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "adapter_model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
json.dump({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": [m.split(".")[1] for m in dims]},
          open(os.path.join(out, "adapter_config.json"), "w"))
