#!/usr/bin/env python3
"""Distribution of TaDA's interaction values C_ij = (u_Ti.u_Dj)(v_Ti.v_Dj) for a task/domain pair.

Usage: conflicts.py TASK_DIR DOMAIN_DIR      (PEFT dirs; prints min C, quantiles, count <= -0.2)
Used in docs/lora-merging.md to explain why conflict removal drops nothing at kappa = 0.2.
"""
import json, struct, sys
import numpy as np


def read(d):
    b = open(f"{d}/adapter_model.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        dt = {"F16": np.float16, "F32": np.float32}[v["dtype"]]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).astype(np.float64).reshape(v["shape"])
    return out


T, D = read(sys.argv[1]), read(sys.argv[2])
cs = []
for k in T:
    if not k.endswith("lora_A.weight"): continue
    kb = k.replace("lora_A", "lora_B")
    ut, _, vt = np.linalg.svd(T[kb] @ T[k], full_matrices=False)
    ud, _, vd = np.linalg.svd(D[kb] @ D[k], full_matrices=False)
    r = T[k].shape[0]
    C = (ut[:, :r].T @ ud[:, :r]) * (vt[:r] @ vd[:r].T)
    cs.append(C.ravel())
c = np.concatenate(cs)
print(f"{len(cs)} modules, {c.size} pairs: min C {c.min():+.4f}, max C {c.max():+.4f}, "
      f"|C| 99th pct {np.quantile(np.abs(c), 0.99):.4f}, pairs with C <= -0.2: {(c <= -0.2).sum()}, "
      f"<= -0.05: {(c <= -0.05).sum()}")
