#!/usr/bin/env python3
"""Side-by-side speed of Strata and llama.cpp (llama-cpp-python) on one GGUF.

pp<N>: one batched decode of N random tokens on an empty context. tg<N>: N single-token
decodes after that prompt-free start. llama.cpp is driven through its C API (llama_decode
with a llama_batch, timed around the call only, as llama-bench does); Strata through
`strata bench -o json` (timed inside the binary), once per numerics mode: f32 activations
(the default) and llama.cpp's 8-bit scheme (--numerics q8). Runs alternate (llama.cpp,
Strata f32, Strata q8, llama.cpp, ...) so drift on a shared machine hits all three.
Reports median and spread of each, per-repetition ratios, and writes <out>.json and
<out>.png."""
import argparse
import ctypes
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def llama_run(model, threads, n_prompt, n_gen, seed):
    params = llama_cpp.llama_model_default_params()
    m = llama_cpp.llama_model_load_from_file(model.encode(), params)
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = max(n_prompt, n_gen) + 16
    cp.n_batch = max(n_prompt, 1)
    cp.n_ubatch = max(n_prompt, 1)
    cp.n_threads = threads
    cp.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(m, cp)
    vocab = llama_cpp.llama_model_get_vocab(m)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    rng = random.Random(seed)
    out = {}
    mem = llama_cpp.llama_get_memory(ctx)
    if n_prompt:
        batch = llama_cpp.llama_batch_init(n_prompt, 0, 1)
        batch.n_tokens = n_prompt
        for i in range(n_prompt):
            batch.token[i] = rng.randrange(100, n_vocab)
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i == n_prompt - 1 else 0
        t0 = time.perf_counter()
        assert llama_cpp.llama_decode(ctx, batch) == 0
        out["pp"] = n_prompt / (time.perf_counter() - t0)
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_memory_clear(mem, True)
    if n_gen:
        batch = llama_cpp.llama_batch_init(1, 0, 1)
        total = 0.0
        for i in range(n_gen):
            batch.n_tokens = 1
            batch.token[0] = rng.randrange(100, n_vocab)
            batch.pos[0] = i
            batch.n_seq_id[0] = 1
            batch.seq_id[0][0] = 0
            batch.logits[0] = 1
            t0 = time.perf_counter()
            assert llama_cpp.llama_decode(ctx, batch) == 0
            total += time.perf_counter() - t0
        out["tg"] = n_gen / total
        llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(m)
    return out


def strata_run(binary, model, threads, n_prompt, n_gen, numerics):
    cmd = [binary, "bench", "-m", model, "-t", str(threads), "-p", str(n_prompt), "-n", str(n_gen),
           "-r", "1", "-o", "json", "--numerics", numerics]
    j = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    assert j["mode"] == numerics, j["mode"]
    out = {"bandwidth_gbs": j["bandwidth_gbs"], "weight_bytes": j["weight_bytes"], "isa": j["isa"]}
    if "pp" in j:
        out["pp"] = j["pp"]["tps_mean"]
    if "tg" in j:
        out["tg"] = j["tg"]["tps_mean"]
    return out


def summary(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0, "samples": xs}


# Engines in the order each repetition runs them; the Strata names are its two numerics
# modes: f32 activations (the default) and llama.cpp's 8-bit activation scheme (q8).
ENGINES = ("llama.cpp", "strata f32", "strata q8")
RATIOS = (("strata f32", "llama.cpp"), ("strata q8", "llama.cpp"), ("strata f32", "strata q8"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-r", "--repetitions", type=int, default=5)
    ap.add_argument("--strata", default=os.path.join(ROOT, "build", "strata"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "performance"))
    a = ap.parse_args()
    llama_cpp.llama_backend_init()
    res = {e: {"pp": [], "tg": []} for e in ENGINES}
    extra = {}
    for rep in range(a.repetitions + 1):  # rep 0 warms every engine up and is discarded
        got = {"llama.cpp": llama_run(a.model, a.threads, a.n_prompt, a.n_gen, seed=rep)}
        for e in ENGINES[1:]:
            got[e] = strata_run(a.strata, a.model, a.threads, a.n_prompt, a.n_gen, e.split()[1])
            extra = got[e]
        if rep == 0:
            continue
        for e in ENGINES:
            for k in ("pp", "tg"):
                res[e][k].append(got[e][k])
        print(f"rep {rep}: " + " | ".join(f"{e} pp {got[e]['pp']:.1f} tg {got[e]['tg']:.1f}" for e in ENGINES),
              file=sys.stderr)
    report = {
        "command": " ".join(["bench/vs-llamacpp"] + sys.argv[1:]),
        "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, " + open("/proc/cpuinfo").read().split(
            "model name")[1].split("\n")[0].strip(" :\t"),
        "llama_cpp_python": llama_cpp.__version__,
        "threads": a.threads, "n_prompt": a.n_prompt, "n_gen": a.n_gen, "repetitions": a.repetitions,
        "strata_isa": extra.get("isa"),
        "bandwidth_gbs": extra.get("bandwidth_gbs"), "weight_bytes": extra.get("weight_bytes"),
        "results": {e: {k: summary(v) for k, v in r.items()} for e, r in res.items()},
        "ratios": {},
    }
    for num, den in RATIOS:
        report["ratios"][f"{num} / {den}"] = {
            k: summary([x / y for x, y in zip(res[num][k], res[den][k])]) for k in ("pp", "tg")}
    report["tg_bandwidth_share"] = {
        e: report["results"][e]["tg"]["median"] * extra["weight_bytes"] / (extra["bandwidth_gbs"] * 1e9)
        for e in ENGINES[1:]}
    with open(a.out + ".json", "w") as f:
        json.dump(report, f, indent=1)
    print(f"| engine | pp{a.n_prompt} t/s (median [min, max]) | tg{a.n_gen} t/s (median [min, max]) |")
    print("|---|---|---|")
    for e in ENGINES:
        r = report["results"][e]
        print(f"| {e} | {r['pp']['median']:.1f} [{r['pp']['min']:.1f}, {r['pp']['max']:.1f}] "
              f"| {r['tg']['median']:.1f} [{r['tg']['min']:.1f}, {r['tg']['max']:.1f}] |")
    for name, r in report["ratios"].items():
        rp, rt = r["pp"], r["tg"]
        print(f"| **{name}** (per repetition) | {rp['median']:.2f}x [{rp['min']:.2f}, {rp['max']:.2f}] "
              f"| {rt['median']:.2f}x [{rt['min']:.2f}, {rt['max']:.2f}] |")
    print(f"\nmeasured read bandwidth {extra['bandwidth_gbs']:.1f} GB/s; decode moves " + ", ".join(
        f"{e}: {100 * v:.0f}%" for e, v in report["tg_bandwidth_share"].items()) + " of it")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, k, title in ((axes[0], "pp", f"prefill pp{a.n_prompt}"), (axes[1], "tg", f"decode tg{a.n_gen}")):
            med = [report["results"][e][k]["median"] for e in ENGINES]
            lo = [med[i] - report["results"][e][k]["min"] for i, e in enumerate(ENGINES)]
            hi = [report["results"][e][k]["max"] - med[i] for i, e in enumerate(ENGINES)]
            ax.bar(ENGINES, med, yerr=[lo, hi], color=["#888888", "#2a6fb0", "#7fb0dd"], capsize=6)
            ax.set_title(title)
            ax.set_ylabel("tokens/s")
        fig.suptitle(f"SmolLM2-135M Q4_1, {a.threads} threads, {report['machine']} "
                     f"(strata f32: f32 activations, default; strata q8: llama.cpp's 8-bit scheme)", fontsize=7)
        fig.tight_layout()
        fig.savefig(a.out + ".png", dpi=110)
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)


if __name__ == "__main__":
    main()
