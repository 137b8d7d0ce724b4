"""Plots `strata bench --kv-compare ... -o json` results (docs/kv-cache.md, "Throughput").

Usage: .venv/bin/python bench/kernels/kv_throughput_plot.py DIR OUT.png
DIR holds files b<B>_l<L>.json. Prints a markdown table and writes a two-panel PNG:
decode tokens/s (per CPU-second, one thread) vs context at batch 1, and the ratio to fp16
(median of per-round ratios) vs context, one line per format and batch.
"""
import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(d):
    runs = []
    for p in sorted(glob.glob(os.path.join(d, "b*_l*.json"))):
        m = re.search(r"b(\d+)_l(\d+)\.json$", p)
        try:
            j = json.load(open(p))
        except (json.JSONDecodeError, OSError):
            continue
        runs.append((int(m.group(1)), int(m.group(2)), j))
    return sorted(runs)


def main():
    d, out = sys.argv[1], sys.argv[2]
    runs = load(d)
    print("| B | L | kv | t/s wall median (min-max) | vs fp16 wall | t/s per CPU-s median (min-max) | vs fp16 CPU |")
    print("|---|---|---|---|---|---|---|")
    for b, l, j in runs:
        for f in j["formats"]:
            cs = f["cpu_samples"]
            print(f"| {b} | {l} | {f['kv']} | {f['tps_median']:.1f} ({f['tps_min']:.1f}-{f['tps_max']:.1f}) | "
                  f"{f['ratio_median']:.2f}x | {f['cpu_tps_median']:.1f} ({min(cs):.1f}-{max(cs):.1f}) | "
                  f"{f['cpu_ratio_median']:.2f}x |")
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    kvs = [f["kv"] for f in runs[0][2]["formats"]] if runs else []
    for kv in kvs:
        pts = sorted((l, f["cpu_tps_median"], min(f["cpu_samples"]), max(f["cpu_samples"]))
                     for b, l, j in runs if b == 1 for f in j["formats"] if f["kv"] == kv)
        if pts:
            xs = [p[0] for p in pts]
            ax[0].errorbar(xs, [p[1] for p in pts], yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]],
                           marker="o", capsize=3, label=kv)
    # Ratio panel: x = context L, one panel line per (format, batch); batches as line styles.
    styles = {1: "-", 4: "--", 8: ":", 16: "-."}
    colors = {kv: f"C{i}" for i, kv in enumerate(kvs)}
    for kv in kvs:
        for bb in sorted({b for b, _, _ in runs}):
            pts = sorted((l, f["cpu_ratio_median"]) for b, l, j in runs if b == bb for f in j["formats"] if f["kv"] == kv)
            if pts:
                ax[1].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=4, color=colors[kv],
                           ls=styles.get(bb, "-"), label=f"{kv} B={bb}" if kv != "fp16" else None)
    ax[0].set_xscale("log", base=2)
    ax[0].set_xlabel("context L (tokens)")
    ax[0].set_ylabel("decode tokens / CPU-second (B=1, 1 thread)")
    ax[0].set_title("Decode speed vs context, batch 1 (median, min-max)")
    ax[0].legend()
    ax[1].set_xscale("log", base=2)
    ax[1].axhline(1.0, color="gray", lw=0.8)
    ax[1].set_xlabel("context L (tokens); line style = batch B")
    ax[1].set_ylabel("decode speed / fp16 (same rounds)")
    ax[1].set_title("Ratio to fp16 (median of per-round ratios, CPU time)")
    ax[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
