#!/usr/bin/env python3
"""Summarizes a tools/kv_eval.sh run for docs/kv-cache.md: per config mean / p99.9 KLD,
PPL and dPPL%, top-1 agreement and allocator bytes/token, paired-bootstrap 95% intervals
(resampling segments) for the criteria C1/C4/C5 differences, and PNG plots (KL vs
position bin; bytes/token vs mean KLD).
Usage: .venv/bin/python tools/kv_eval.py DIR [--bin 256]"""
import csv
import re
import sys
from pathlib import Path

import numpy as np


def load(d, name):
    rows = list(csv.DictReader(open(d / f"{name}.tsv"), delimiter="\t"))
    seg = np.array([int(r["segment"]) for r in rows])
    pos = np.array([int(r["pos"]) for r in rows])
    nll = np.array([float(r["nll"]) for r in rows])
    kl = np.array([float(r["kl"]) for r in rows])
    top = np.array([int(r["top1_same"]) for r in rows])
    txt = open(d / f"{name}.txt").read()
    m = re.search(r"KV bytes per token \(allocator, at (\d+) tokens\): ([\d.]+)", txt)
    return dict(seg=seg, pos=pos, nll=nll, kl=kl, top=top, bytes=float(m.group(2)) if m else float("nan"))


def stats(r, ref_ppl):
    ppl = float(np.exp(r["nll"].mean()))
    return dict(mean_kl=r["kl"].mean(), p999=np.quantile(r["kl"], 0.999), ppl=ppl,
                dppl=100 * (ppl - ref_ppl) / ref_ppl, top1=100 * r["top"].mean(), bytes=r["bytes"])


def boot(a, b, ref, metric, n=2000, seed=0):
    """Paired bootstrap over segments of metric(b) - metric(a); returns (diff, lo, hi)."""
    segs = np.unique(a["seg"])
    rng = np.random.default_rng(seed)
    idx = {s: np.where(a["seg"] == s)[0] for s in segs}
    def f(sel):
        ii = np.concatenate([idx[s] for s in sel])
        return metric(b, ii, ref) - metric(a, ii, ref)
    diffs = [f(rng.choice(segs, len(segs))) for _ in range(n)]
    return f(segs), np.quantile(diffs, 0.025), np.quantile(diffs, 0.975)


def kl_slope(r, ii, binw=256):
    """Least-squares slope of mean KL per position bin (from bin 1) over the rows ii."""
    b = r["pos"][ii] // binw
    k = r["kl"][ii]
    bins = np.arange(1, b.max() + 1)
    y = np.array([k[b == i].mean() for i in bins])
    return np.polyfit(bins, y, 1)[0] if len(bins) >= 2 else float("nan")


METRICS = {
    "mean KLD": lambda r, ii, ref: r["kl"][ii].mean(),
    "p99.9 KLD": lambda r, ii, ref: np.quantile(r["kl"][ii], 0.999),
    "dPPL %": lambda r, ii, ref: 100 * (np.exp(r["nll"][ii].mean()) - np.exp(ref["nll"][ii].mean())) / np.exp(ref["nll"][ii].mean()),
    "top-1 %": lambda r, ii, ref: 100 * r["top"][ii].mean(),
    "KL slope per 256-token bin": lambda r, ii, ref: kl_slope(r, ii),
}


def main():
    d = Path(sys.argv[1])
    binw = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--bin" else 256
    names = [p.stem for p in sorted(d.glob("*.tsv")) if p.stem != "fp32"]
    ref = load(d, "fp32")
    ref_ppl = float(np.exp(ref["nll"].mean()))
    runs = {n: load(d, n) for n in names}
    order = sorted(names, key=lambda n: -runs[n]["bytes"])
    print(f"fp32 reference: PPL {ref_ppl:.4f}, bytes/token {ref['bytes']:.0f}\n")
    print("| config | bytes/token | vs fp16 | mean KLD | p99.9 KLD | PPL | dPPL % | top-1 % |")
    print("|---|---|---|---|---|---|---|---|")
    fp16b = runs["fp16"]["bytes"] if "fp16" in runs else float("nan")
    for n in order:
        s = stats(runs[n], ref_ppl)
        print(f"| {n} | {s['bytes']:.0f} | {fp16b / s['bytes']:.2f}x | {s['mean_kl']:.5f} | {s['p999']:.4f} | "
              f"{s['ppl']:.4f} | {s['dppl']:+.2f} | {s['top1']:.2f} |")
    print()
    # Error growth (spec §6.3 metric 4a, applied to the teacher-forced run; C3's slope part):
    # least-squares slope of the mean KL per bin against the bin index, from bin 1 on (bin 0
    # is mostly the FP sink of the tile formats), and the last-bin / bin-1 ratio.
    print(f"| config | KL slope per {binw}-token bin | last bin / bin 1 |")
    print("|---|---|---|")
    for n in order:
        r = runs[n]
        nb = r["pos"].max() // binw + 1
        y = np.array([r["kl"][r["pos"] // binw == i].mean() for i in range(1, nb)])
        if len(y) >= 2:
            slope = np.polyfit(np.arange(1, nb), y, 1)[0]
            print(f"| {n} | {slope:+.5f} | {y[-1] / max(y[0], 1e-12):.2f} |")
    print()
    crit = [("C1", "kivi2", "kvarn_k2v2"), ("C4", "turboquant3", "kvarn_k2v2"), ("C4", "turboquant3_b2", "kvarn_k2v2"),
            ("C4", "tq_mse3", "kvarn_k2v2"), ("C4", "tq_prod3", "kvarn_k2v2"), ("C5", "q4_0", "kvarn_k4v2"),
            ("4-bit (ours)", "turboquant4_b2", "kvarn_k4v2"),
            ("C2", "hk2", "kvarn_k2v2"), ("C2", "varn2", "kvarn_k2v2"), ("KIVI orig", "kivi2_g32_r128", "kvarn_k2v2")]
    print("| criterion | A | B | metric | B - A | 95% CI |")
    print("|---|---|---|---|---|---|")
    for c, a, b in crit:
        if a in runs and b in runs:
            for m, f in METRICS.items():
                diff, lo, hi = boot(runs[a], runs[b], ref, f)
                print(f"| {c} | {a} | {b} | {m} | {diff:+.5f} | [{lo:+.5f}, {hi:+.5f}] |")
    print()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plots")
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for n in order:
        r = runs[n]
        nb = r["pos"].max() // binw + 1
        y = [r["kl"][r["pos"] // binw == i].mean() for i in range(nb)]
        ax.plot((np.arange(nb) + 0.5) * binw, y, marker="o", label=n)
    ax.set_yscale("log"); ax.set_xlabel("position"); ax.set_ylabel(f"mean KL per {binw}-token bin (nats)")
    ax.legend(fontsize=7, ncol=2); fig.tight_layout(); fig.savefig(d / "kl_vs_position.png", dpi=110)
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in order:
        s = stats(runs[n], ref_ppl)
        ax.scatter(s["bytes"], max(s["mean_kl"], 1e-7)); ax.annotate(n, (s["bytes"], max(s["mean_kl"], 1e-7)), fontsize=7)
    ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("KV bytes per token (allocator)"); ax.set_ylabel("mean KL (nats)")
    fig.tight_layout(); fig.savefig(d / "bytes_vs_kl.png", dpi=110)
    print(f"plots: {d}/kl_vs_position.png, {d}/bytes_vs_kl.png")


if __name__ == "__main__":
    main()
