#!/usr/bin/env python3
"""Plots `strata kv-error` results (docs/kv-cache.md, metric 2): static and accumulated attention
MAE per position bin, one line pair per KV format. Usage: kv_error_plot.py DIR OUT.png"""
import csv
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

d, out = Path(sys.argv[1]), sys.argv[2]
fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
for f in sorted(d.glob("*.tsv")):
    rows = list(csv.DictReader(open(f), delimiter="\t"))[1:]  # bin 0 is the FP16 sink
    b = [int(r["bin"]) for r in rows]
    l, = ax[0].plot(b, [float(r["accumulated"]) for r in rows], marker="o", label=f"{f.stem} accumulated")
    ax[0].plot(b, [float(r["static"]) for r in rows], ls="--", color=l.get_color(), label=f"{f.stem} static")
    ax[1].plot(b, [float(r["gap"]) for r in rows], marker="o", color=l.get_color(), label=f.stem)
ax[0].set_xlabel("256-token bin"); ax[0].set_ylabel("attention-output MAE (mean over layers)")
ax[1].set_xlabel("256-token bin"); ax[1].set_ylabel("accumulated - static")
ax[0].legend(fontsize=6); ax[1].legend(fontsize=7)
fig.tight_layout(); fig.savefig(out, dpi=110)
print("wrote", out)
