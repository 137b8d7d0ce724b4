#!/usr/bin/env python3
"""Prints the markdown tables of docs/function-vectors.md from results.json."""
import json
import sys

import numpy as np

res = json.load(open(sys.argv[1]))
tasks = res["tasks"]
cols = ["zero-shot", "5-shot", "10-shot", "10-shot-shuffled", "mean-all", "random", "cie", "lrp", "lrp-all",
        "lrp-signed", "cie-dist", "lrp-dist", "10-shot-shuffled+lrp"]
print("| task | n test | " + " | ".join(cols) + " |")
print("|---|---:|" + "---:|" * len(cols))
ns = res.get("n_test", {})
for t in tasks:
    print(f"| {t} | {ns.get(t, '')} | " + " | ".join(f"{100 * res['test'][t][c]:.0f}" for c in cols) + " |")
print("| **mean** | | " + " | ".join(f"**{100 * np.mean([res['test'][t][c] for t in tasks]):.1f}**" for c in cols) + " |")
print()
print("| vector | layer | scale | train accuracy (selection) |")
print("|---|---:|---:|---:|")
for k, v in res["chosen"].items():
    lay = v["layer"] if v["layer"] >= 0 else "own heads"
    print(f"| {k} | {lay} | {v['scale']} | {100 * v['train_accuracy']:.1f}%{' (reuses ' + v['reused'] + ')' if 'reused' in v else ''} |")
print()
print("| task | LRP passes (fwd + rel) | LRP FPE | LRP s | CIE prompts | CIE passes (fwd + patched) | CIE FPE | CIE s | FPE ratio |")
print("|---|---|---:|---:|---:|---|---:|---:|---:|")
for i, t in enumerate(tasks):
    l, c = res["costs"]["lrp"][i], res["costs"]["cie"][i]
    print(f"| {t} | {l['forward_passes']} + {l['relevance_passes']} | {l['fpe']:.0f} | {l['seconds']:.0f} | "
          f"{c['forward_passes'] - 60} | {c['forward_passes']} + {c['patched_runs']} | {c['fpe']:.0f} | {c['seconds']:.0f} | "
          f"{c['fpe'] / l['fpe']:.0f}x |")
print()
print("| task | Jaccard(CIE heads, LRP heads) | cosine(CIE FV, LRP FV) |")
print("|---|---:|---:|")
for t in tasks:
    o = res["overlap"][t]
    print(f"| {t} | {o['jaccard']:.2f} | {o['cosine']:.2f} |")
print()
print("blob bytes:", res["blob_bytes"])
print(res["overhead"])
print(res["overhead_distributed"])
