#!/usr/bin/env python3
"""Tables, paired-bootstrap intervals, depth profile and plot for docs/lora-merging.md.

Usage: analyze.py SEEDS [--png docs/lora-merging.png]     e.g. analyze.py 1,2,3
Reads data/lora/seed{S}/{m1_test,m2,m3}.jsonl, scores/NAME.<set>.jsonl and merged/gates_full.tsv.
M1-M3: accuracy by log-likelihood (argmax over the 4 choices). M4: greedy answer is exactly one of
the 4 choice strings. Models with several merge seeds (dare_ties_s1..3) are averaged per item.
Paired bootstrap: 10 000 resamples of (seed, question) pairs of the per-item difference.
"""
import argparse, json, os, random, statistics

SETS = ["m1_test", "m2", "m3"]
ORDER = ["base", "T", "D", "linear", "linear_l2", "task_arithmetic", "cat", "ties", "dare", "dare_ties", "tada_full",
         "tada_gating_only", "tada_subspace_only", "tada_ramp", "tada_full_dense", "tada_full_l2"]


def load(path):
    return [json.loads(l) for l in open(path)]


def per_item(seed_dir, name, s):
    items = load(os.path.join(seed_dir, f"{s}.jsonl"))
    names = [name] if os.path.exists(os.path.join(seed_dir, "scores", f"{name}.{s}.jsonl")) else \
        [f"{name}_s{k}" for k in (1, 2, 3) if os.path.exists(os.path.join(seed_dir, "scores", f"{name}_s{k}.{s}.jsonl"))]
    if not names: return None, None
    acc, m4 = [0.0] * len(items), [0.0] * len(items)
    for n in names:
        sc = load(os.path.join(seed_dir, "scores", f"{n}.{s}.jsonl"))
        for i, (it, x) in enumerate(zip(items, sc)):
            lp = x["logprobs"]
            acc[i] += (max(range(len(lp)), key=lambda k: lp[k]) == it["answer"]) / len(names)
            m4[i] += (x.get("greedy", "").strip() in it["choices"]) / len(names)
    return acc, (m4 if s == "m1_test" else None)


def bootstrap(diffs, n=10000, seed=0):
    rng = random.Random(seed)
    k = len(diffs)
    means = sorted(sum(diffs[rng.randrange(k)] for _ in range(k)) / k for _ in range(n))
    return sum(diffs) / k, means[int(0.025 * n)], means[int(0.975 * n) - 1]


def spearman(x, y):
    def ranks(v):
        o = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0] * len(v)
        for k, i in enumerate(o): r[i] = float(k)
        return r
    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.mean(rx), statistics.mean(ry)
    num = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return num / (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds"); ap.add_argument("--png", default="docs/lora-merging.png")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    dirs = {s: f"data/lora/seed{s}" for s in seeds}
    res = {}  # name -> set -> list over seeds of per-item lists
    for name in ORDER:
        for s in seeds:
            for st in SETS:
                acc, m4 = per_item(dirs[s], name, st)
                if acc is None: continue
                res.setdefault(name, {}).setdefault(st, {})[s] = acc
                if m4 is not None: res[name].setdefault("m4", {})[s] = m4
    print("| model | " + " | ".join(f"M1 s{s}" for s in seeds) + " | M1 mean | M2 mean | M3 mean | M4 mean |")
    print("|---|" + "---|" * (len(seeds) + 4))
    mean = lambda v: sum(v) / len(v)
    for name in ORDER:
        if name not in res: continue
        r = res[name]
        per_seed = [f"{mean(r['m1_test'][s]):.3f}" if s in r.get("m1_test", {}) else "-" for s in seeds]
        agg = lambda st: f"{mean([mean(v) for v in r[st].values()]):.3f}" if st in r else "-"
        print(f"| {name} | " + " | ".join(per_seed) + f" | {agg('m1_test')} | {agg('m2')} | {agg('m3')} | {agg('m4')} |")
    print()
    for ref in ("tada_full", "tada_full_l2"):
        if ref not in res: continue
        print(f"Paired bootstrap on M1 ({ref} minus X), 10 000 resamples over questions x seeds:")
        print("| X | diff | 95% CI | seeds |")
        print("|---|---|---|---|")
        for name in ORDER:
            if name == ref or name not in res: continue
            common = [s for s in seeds if s in res[name].get("m1_test", {}) and s in res[ref]["m1_test"]]
            d = [x - y for s in common for x, y in zip(res[ref]["m1_test"][s], res[name]["m1_test"][s])]
            if not d: continue
            m, lo, hi = bootstrap(d)
            print(f"| {name} | {m:+.3f} | [{lo:+.3f}, {hi:+.3f}] | {len(common)} |")
        print()
    # Depth profile from the probe tables.
    prof = {}
    for s in seeds:
        p = os.path.join(dirs[s], "merged", "gates_full.tsv")
        if not os.path.exists(p): continue
        rows = [l.rstrip("\n").split("\t") for l in open(p)][1:]
        L = max(int(r[0]) for r in rows) + 1
        z, gt = [[] for _ in range(L)], [[] for _ in range(L)]
        for r in rows:
            pt, pd = float(r[2]), float(r[3])
            if pt == pt and pd == pd and pt + pd > 0:
                z[int(r[0])].append(pd / (pt + pd)); gt[int(r[0])].append(float(r[4]))
        zl = [mean(v) for v in z]; gl = [mean(v) for v in gt]
        third = L // 3
        prof[s] = (zl, gl, spearman(list(range(L)), zl), mean(zl[-third:]) - mean(zl[:third]))
    if prof:
        print("Depth profile: z(l) = mean over projections of p_D / (p_T + p_D)")
        print("| seed | Spearman rho(l, z) | mean z top third - bottom third | z(0) | z(L-1) | g_T max / min (layer means) |")
        print("|---|---|---|---|---|---|")
        for s, (zl, gl, rho, gap) in prof.items():
            print(f"| {s} | {rho:+.3f} | {gap:+.4f} | {zl[0]:.4f} | {zl[-1]:.4f} | {max(gl):.3f} / {min(gl):.3f} |")
        print(f"| mean | {mean([p[2] for p in prof.values()]):+.3f} | {mean([p[3] for p in prof.values()]):+.4f} | | | |")
    try:
        import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.2))
    for s, (zl, gl, rho, gap) in prof.items():
        ax[0].plot(zl, marker="o", ms=3, label=f"seed {s} (rho {rho:+.2f})")
        ax[1].plot(gl, marker="o", ms=3, label=f"seed {s}")
    ax[0].set_xlabel("layer"); ax[0].set_ylabel("z = p_D / (p_T + p_D)"); ax[0].set_title("probe: domain share by depth")
    ax[0].legend(fontsize=8)
    ramp = [0.9 - 0.8 * l / 29 for l in range(30)]
    ax[1].plot(ramp, "k--", label="ramp (data-free)"); ax[1].set_xlabel("layer"); ax[1].set_ylabel("g_T (mean over projections)")
    ax[1].set_title("calibrated task gate"); ax[1].legend(fontsize=8)
    names = [n for n in ORDER if n in res and "m1_test" in res[n]]
    vals = [mean([mean(v) for v in res[n]["m1_test"].values()]) for n in names]
    ax[2].bar(range(len(names)), vals, color=["tab:gray"] * 3 + ["tab:blue"] * (len(names) - 3))
    ax[2].axhline(0.25, color="k", lw=0.8, ls=":")
    ax[2].set_xticks(range(len(names))); ax[2].set_xticklabels(names, rotation=70, fontsize=7)
    ax[2].set_ylabel("M1 test accuracy (mean over seeds)"); ax[2].set_title("composition (M1)")
    fig.tight_layout(); fig.savefig(a.png, dpi=110)
    print(f"\nwrote {a.png}")


if __name__ == "__main__":
    main()
