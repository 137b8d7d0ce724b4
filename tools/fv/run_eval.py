#!/usr/bin/env python3
"""Function-vector evaluation driver (docs/function-vectors.md). Needs the head statistics
from tools/fv/extract_all.sh in STATS_DIR. Steps:
  1. build every vector from the statistics (`strata fv build`, no model passes);
  2. per method, choose one injection layer and scale for all tasks on the *train* split
     (first --select-limit queries), by mean accuracy over tasks;
  3. evaluate on the test split: no vector, 5-/10-shot ICL, 10-shot shuffled, every vector;
  4. costs from the statistics, blob sizes, head overlap, decode overhead;
  5. results.json and PNG plots into OUT_DIR.
Run: .venv/bin/python tools/fv/run_eval.py build-fv/strata build-fv/fv-eval docs/function-vectors
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TASKS = ["antonym", "country-capital", "english-french", "present-past", "singular-plural", "uppercase",
         "first-letter", "next-number"]
K = 10
LAYERS = "6-12"
SCALES = "1,2,3"
SELECT_LIMIT = 15
# name -> (fv build arguments, aggregated?, scales to sweep or the vector whose setting it reuses)
VECTORS = {
    "mean-all": (["--method", "mean", "--heads", "0"], True, "0.25,0.5,1"),
    "cie": (["--method", "cie", "--heads", str(K)], True, SCALES),
    "lrp": (["--method", "lrp", "--score", "labels", "--heads", str(K)], True, SCALES),
    "cie-dist": (["--method", "cie", "--heads", str(K), "--distributed"], False, SCALES),
    "lrp-dist": (["--method", "lrp", "--score", "labels", "--heads", str(K), "--distributed"], False, SCALES),
    # controls and score variants use the LRP vector's layer and scale
    "random": (["--method", "random", "--heads", str(K), "--seed", "3"], True, "=lrp"),
    "lrp-all": (["--method", "lrp", "--score", "all", "--heads", str(K)], True, "=lrp"),
    "lrp-signed": (["--method", "lrp", "--score", "signed", "--heads", str(K)], True, "=lrp"),
}


def sh(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr}")
    return r.stdout


def evals(bin_, task, *extra):
    out = sh([bin_, "fv", "eval", "--task", os.path.join(ROOT, "data", "fv", task + ".jsonl"), "--json", *extra])
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def read_fvec(path):
    b = open(path, "rb").read()
    flags, = struct.unpack_from("<H", b, 6)
    D, L, H, d = struct.unpack_from("<4I", b, 40)
    dtype = b[56]
    n, = struct.unpack_from("<I", b, 64)
    off = 68
    if flags & 2:
        ln, = struct.unpack_from("<H", b, off)
        off += 2 + ln
    vals = []
    nv = d if flags & 1 else D
    for _ in range(n):
        layer, second = struct.unpack_from("<HH", b, off)
        off += 4
        if dtype == 0:
            v = np.frombuffer(b, "<f4", nv, off); off += 4 * nv
        else:
            v = np.frombuffer(b, "<f2", nv, off).astype(np.float32); off += 2 * nv
        if flags & 4:
            off += 4
        vals.append((layer, second, v))
    return vals


def main():
    bin_, stats_dir, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    res = {"k": K, "tasks": TASKS, "select": {"layers": LAYERS, "scales": SCALES, "limit": SELECT_LIMIT}}
    # 1. vectors
    blobs = {}
    for t in TASKS:
        for name, (args, _, _) in VECTORS.items():
            src = "cie" if name.startswith("cie") or name in ("mean-all", "random") else "lrp"
            path = os.path.join(stats_dir, f"{t}.{name}.fv")
            sh([bin_, "fv", "build", "--stats", os.path.join(stats_dir, f"{t}.{src}.json"), *args, "-o", path])
            blobs[(t, name)] = path
    res["blob_bytes"] = {name: os.path.getsize(blobs[(TASKS[0], name)]) for name in VECTORS}
    # 2. selection on train
    chosen, sweeps = {}, {}
    for name, (_, agg, scales) in VECTORS.items():
        if scales.startswith("="):
            chosen[name] = dict(chosen[scales[1:]], reused=scales[1:])
            continue
        acc = {}
        for t in TASKS:
            extra = ["--split", "train", "--limit", str(SELECT_LIMIT), "--fv", blobs[(t, name)], "--scales", scales]
            if agg:
                extra += ["--layers", LAYERS]
            for r in evals(bin_, t, *extra):
                acc.setdefault((r["layer"], r["scale"]), []).append(r["accuracy"])
        mean = {k: float(np.mean(v)) for k, v in acc.items()}
        best = max(mean, key=lambda k: (mean[k], -k[1]))
        chosen[name] = {"layer": best[0], "scale": best[1], "train_accuracy": mean[best]}
        sweeps[name] = [{"layer": k[0], "scale": k[1], "accuracy": v} for k, v in sorted(mean.items())]
        print(f"{name}: layer {best[0]} scale {best[1]} train {mean[best]:.3f}", flush=True)
    res["chosen"], res["sweeps"] = chosen, sweeps
    # 3. test
    test = {t: {} for t in TASKS}
    for t in TASKS:
        test[t]["zero-shot"] = evals(bin_, t)[0]["accuracy"]
        test[t]["5-shot"] = evals(bin_, t, "--shots", "5")[0]["accuracy"]
        test[t]["10-shot"] = evals(bin_, t, "--shots", "10")[0]["accuracy"]
        test[t]["10-shot-shuffled"] = evals(bin_, t, "--shots", "10", "--shuffle")[0]["accuracy"]
        for name, (_, agg, _) in VECTORS.items():
            c = chosen[name]
            extra = ["--fv", f"{blobs[(t, name)]}:{c['scale']}"]
            if agg:
                extra += ["--layers", f"{c['layer']}-{c['layer']}"]
            test[t][name] = evals(bin_, t, *extra)[0]["accuracy"]
        # the LRP vector restoring shuffled 10-shot prompts
        c = chosen["lrp"]
        test[t]["10-shot-shuffled+lrp"] = evals(bin_, t, "--shots", "10", "--shuffle", "--fv",
                                                f"{blobs[(t, 'lrp')]}:{c['scale']}", "--layers",
                                                f"{c['layer']}-{c['layer']}")[0]["accuracy"]
        print(t, json.dumps(test[t]), flush=True)
    res["test"] = test
    # 4. costs, overlap
    costs, overlap = {}, {}
    for t in TASKS:
        for m in ("lrp", "cie"):
            st = json.load(open(os.path.join(stats_dir, f"{t}.{m}.json")))
            costs.setdefault(m, []).append(st["cost"])
            res.setdefault("icl_accuracy_mean_prompts", {})[t] = st["icl_accuracy"]
        hc = {(l, h) for l, h, _ in read_fvec(blobs[(t, "cie-dist")])}
        hl = {(l, h) for l, h, _ in read_fvec(blobs[(t, "lrp-dist")])}
        vc, vl = read_fvec(blobs[(t, "cie")])[0][2], read_fvec(blobs[(t, "lrp")])[0][2]
        overlap[t] = {"jaccard": len(hc & hl) / len(hc | hl),
                      "cosine": float(vc @ vl / (np.linalg.norm(vc) * np.linalg.norm(vl))),
                      "cie_heads": sorted(hc), "lrp_heads": sorted(hl)}
    res["costs"] = costs
    res["overlap"] = overlap
    out = sh([bin_, "fv", "overhead", "--fv", blobs[("antonym", "lrp")], "-n", "128", "--rounds", "7"])
    res["overhead"] = out.strip()
    out = sh([bin_, "fv", "overhead", "--fv", blobs[("antonym", "lrp-dist")], "-n", "128", "--rounds", "7"])
    res["overhead_distributed"] = out.strip()
    json.dump(res, open(os.path.join(out_dir, "results.json"), "w"), indent=1)
    plots(res, out_dir)


def plots(res, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = res["tasks"]
    conds = ["zero-shot", "5-shot", "10-shot", "mean-all", "cie", "lrp", "lrp-dist"]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    w = 0.8 / len(conds)
    x = np.arange(len(tasks) + 1)
    for i, c in enumerate(conds):
        vals = [res["test"][t][c] for t in tasks]
        vals.append(np.mean(vals))
        ax.bar(x + i * w - 0.4 + w / 2, vals, w, label=c)
    ax.set_xticks(x)
    ax.set_xticklabels(tasks + ["mean"], rotation=20)
    ax.set_ylabel("top-1 accuracy, first answer token")
    ax.set_title("SmolLM2-135M-Instruct, test split: ICL baselines vs zero-shot + function vector")
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "accuracy.png"), dpi=110)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in ("cie", "lrp", "mean-all"):
        sc = res["chosen"][name]["scale"]
        pts = [(s["layer"], s["accuracy"]) for s in res["sweeps"][name] if s["scale"] == sc]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{name} (scale {sc})")
    ax.set_xlabel("injection layer (block output)")
    ax.set_ylabel("mean train accuracy (selection set)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "layer-sweep.png"), dpi=110)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    fpe = [np.mean([c["fpe"] for c in res["costs"][m]]) for m in ("lrp", "cie")]
    sec = [np.mean([c["seconds"] for c in res["costs"][m]]) for m in ("lrp", "cie")]
    ax.bar([0, 1], fpe, color=["tab:green", "tab:orange"])
    for i in range(2):
        ax.text(i, fpe[i], f"{fpe[i]:.0f} FPE\n{sec[i]:.0f} s", ha="center", va="bottom")
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["LRP", "CIE"])
    ax.set_yscale("log")
    ax.set_ylabel("forward-pass equivalents per task")
    ax.set_ylim(10, max(fpe) * 4)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "cost.png"), dpi=110)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--plots":
        plots(json.load(open(os.path.join(sys.argv[2], "results.json"))), sys.argv[2])
    else:
        main()
