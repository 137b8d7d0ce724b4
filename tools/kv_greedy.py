#!/usr/bin/env python3
"""Summarizes `strata kv-greedy` (spec kvarn.md §6.3 metric 4) for docs/kv-cache.md.
Per KV format: (a) teacher-forced on the fp32 greedy trajectory, mean KL, mean KL per
position bin, least-squares slope of bin mean KL vs bin index and late/early ratio (last
bin holding >= 1/4 of the prompts over bin 1; bin 0 is left out of both because it lies in
the tile formats' FP16 sink); (b) free-running, the median over
prompts of the first position whose token differs from the fp32 trajectory (a prompt
that never differs counts as its trajectory length, so the median is a lower bound where
marked >=) and the mean share of identical tokens. Paired bootstrap over prompts (95% CI)
for format differences named with --pair A:B (mean KL, slope, first difference, share).
Writes PREFIX.md and PREFIX.png. Several PREFIXes (the shards of `kv-greedy --shard I/N`)
are read together; the summary goes to --out (default: the first PREFIX).
Usage: .venv/bin/python tools/kv_greedy.py PREFIX [PREFIX...] [--out P] [--bin 128] [--pair kivi2:kvarn_k2v2 ...]"""
import argparse
import csv
import gzip
import os
from collections import defaultdict

import numpy as np


def load(prefixes):
    kl = defaultdict(lambda: defaultdict(list))  # kv -> prompt -> [kl by pos]
    seq = defaultdict(dict)
    for prefix in prefixes:
        path = f"{prefix}.kl.tsv"
        f = open(path) if os.path.exists(path) else gzip.open(path + ".gz", "rt")  # docs keep it gzipped
        for r in csv.DictReader(f, delimiter="\t"):
            kl[r["kv"]][int(r["prompt"])].append(float(r["kl"]))
        for r in csv.DictReader(open(f"{prefix}.seq.tsv"), delimiter="\t"):
            k, p = r["kv"], int(r["prompt"])
            if p in seq[k]:
                raise SystemExit(f"{prefix}.seq.tsv: prompt {p} under {k} appears in two inputs")
            seq[k][p] = dict(m=int(r["ref_len"]), first=int(r["first_diff"]), share=float(r["same_share"]))
    return kl, seq


def bin_means(per_prompt, prompts, binw):
    sums, cnts = defaultdict(float), defaultdict(int)
    for p in prompts:
        for i, v in enumerate(per_prompt[p]):
            sums[i // binw] += v
            cnts[i // binw] += 1
    bins = sorted(sums)
    return np.array(bins), np.array([sums[b] / cnts[b] for b in bins]), np.array([cnts[b] for b in bins])


def summary(kl, seq, kv, prompts, binw):
    allkl = np.concatenate([kl[kv][p] for p in prompts])
    b, m, c = bin_means(kl[kv], prompts, binw)
    # From bin 1 on (bin 0 lies in the tile formats' FP16 sink, as in tools/kv_eval.py), bins
    # where enough trajectories are still running (>= 1/4 of the prompts' tokens).
    full = (b >= 1) & (c >= max(1, binw * len(prompts) // 4))
    bb, mm = b[full], m[full]
    slope = float(np.polyfit(bb, mm, 1)[0]) if len(bb) >= 2 else float("nan")
    ratio = float(mm[-1] / mm[0]) if len(mm) >= 2 and mm[0] > 0 else float("nan")
    firsts = [seq[kv][p]["first"] if seq[kv][p]["first"] >= 0 else seq[kv][p]["m"] for p in prompts]
    censored = sum(seq[kv][p]["first"] < 0 for p in prompts)
    return dict(mean_kl=float(allkl.mean()), slope=slope, ratio=ratio, bins=(b, m, c), n_bins=int(full.sum()),
                first_med=float(np.median(firsts)), censored=censored,
                share=float(np.mean([seq[kv][p]["share"] for p in prompts])))


def boot(kl, seq, a, b, prompts, f, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    def val(sel):
        return f(kl, seq, b, sel) - f(kl, seq, a, sel)
    d = [val(list(rng.choice(prompts, len(prompts)))) for _ in range(n)]
    return val(prompts), float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix", nargs="+")
    ap.add_argument("--out", help="output prefix (default: the first PREFIX)")
    ap.add_argument("--bin", type=int, default=128)
    ap.add_argument("--pair", action="append", default=[])
    a = ap.parse_args()
    kl, seq = load(a.prefix)
    out_prefix = a.out or a.prefix[0]
    kvs = list(kl)
    prompts = sorted(set.intersection(*(set(seq[k]) for k in kvs)))
    lens = [seq[kvs[0]][p]["m"] for p in prompts]
    S = {k: summary(kl, seq, k, prompts, a.bin) for k in kvs}
    out = [f"{len(prompts)} prompts, fp32 greedy trajectories of {min(lens)}-{max(lens)} tokens "
           f"(median {int(np.median(lens))}); bins of {a.bin} positions.", "",
           "| format | mean KL (teacher-forced) | KL slope per bin | late/early KL | bins used | "
           "median first differing token | same tokens |", "|---|---|---|---|---|---|---|"]
    for k in kvs:
        s = S[k]
        ge = ">= " if s["censored"] * 2 >= len(prompts) else ""
        out.append(f"| {k} | {s['mean_kl']:.4g} | {s['slope']:+.3g} | {s['ratio']:.2f} | {s['n_bins']} | "
                   f"{ge}{s['first_med']:.0f} ({s['censored']} never) | {100 * s['share']:.1f}% |")
    mean_kl = lambda kl_, seq_, k, sel: float(np.mean(np.concatenate([kl_[k][p] for p in sel])))
    first = lambda kl_, seq_, k, sel: float(np.median([seq_[k][p]["first"] if seq_[k][p]["first"] >= 0
                                                       else seq_[k][p]["m"] for p in sel]))
    share = lambda kl_, seq_, k, sel: float(np.mean([seq_[k][p]["share"] for p in sel]))
    slope = lambda kl_, seq_, k, sel: summary(kl_, seq_, k, sel, a.bin)["slope"]
    if a.pair:
        out += ["", "Paired bootstrap over prompts (B minus A, 95% CI):", "",
                "| A | B | mean KL | KL slope per bin | median first differing token | same tokens (share) |",
                "|---|---|---|---|---|---|"]
        for pr in a.pair:
            x, y = pr.split(":")
            if x not in kl or y not in kl:
                continue
            r = [boot(kl, seq, x, y, prompts, f) for f in (mean_kl, slope, first, share)]
            out.append(f"| {x} | {y} | " + " | ".join(f"{d:+.4g} [{lo:+.4g}, {hi:+.4g}]" for d, lo, hi in r) + " |")
    text = "\n".join(out) + "\n"
    open(f"{out_prefix}.md", "w").write(text)
    print(text)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for k in kvs:
        b, m, c = S[k]["bins"]
        ax[0].plot((b + 0.5) * a.bin, np.maximum(m, 1e-6), marker="o", ms=3, label=k)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("generated position")
    ax[0].set_ylabel("mean KL(fp32 || format), teacher-forced")
    ax[0].legend(fontsize=7)
    ax[0].set_title("KL along the fp32 greedy trajectory")
    ks = sorted(kvs, key=lambda k: -S[k]["first_med"])
    ax[1].barh(ks, [S[k]["first_med"] for k in ks])
    ax[1].set_xlabel("median first differing token (free-running greedy)")
    ax[1].set_title("Free-running divergence from fp32")
    fig.tight_layout()
    fig.savefig(f"{out_prefix}.png", dpi=110)


if __name__ == "__main__":
    main()
