#!/usr/bin/env python3
"""Turns bench/serve-load's JSON files into docs/serving.md's tables and PNG plots.
Usage: serve_report.py OUTDIR   (reads OUTDIR/*.json, writes OUTDIR/summary.md and PNGs)"""
import json
import os
import sys

out = sys.argv[1]


def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None


lines = []
b16, bkv = load("budget-fp16.json"), load("budget-kvarn_k4v2.json")
if b16 and bkv:
    lines += ["| KV format (same budget) | max concurrent sequences | output tok/s | TTFT p50 / p99 ms | ITL p50 / p99 ms |",
              "|---|---|---|---|---|"]
    for name, r in (("fp16", b16), ("kvarn_k4v2", bkv)):
        lines.append(f"| {name} | {r.get('max_requests_running', float('nan')):.0f} | {r['output_tokens_per_s']:.1f} | "
                     f"{r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f} | {r['itl_p50_ms']:.1f} / {r['itl_p99_ms']:.1f} |")
    lines.append(f"\nratio kvarn_k4v2 / fp16: concurrency {bkv.get('max_requests_running', 0) / max(1, b16.get('max_requests_running', 1)):.2f}x, "
                 f"throughput {bkv['output_tokens_per_s'] / b16['output_tokens_per_s']:.2f}x\n")
rows = []
for slots in (1, 4):
    s, l = load(f"strata-slots{slots}.json"), load(f"llamacpp-slots{slots}.json")
    if s:
        rows.append((f"strata, {slots} slot(s)", s))
    if l:
        rows.append((f"llama.cpp server, {slots} client(s)", l))
if rows:
    lines += ["| server | output tok/s | req/s | TTFT p50 / p99 ms | ITL p50 / p99 ms |", "|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['output_tokens_per_s']:.1f} | {r['requests_per_s']:.2f} | "
                     f"{r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f} | {r['itl_p50_ms']:.1f} / {r['itl_p99_ms']:.1f} |")
soak = load("soak.json")
if soak:
    if "lost" in soak:
        lost, n5 = soak["lost"], soak["responses_5xx"]
    else:  # files from before the soak counted outcomes
        lost = soak["requests_started"] - soak["requests_completed"] - soak["requests_disconnected"] - sum(
            v for k, v in soak["errors"].items() if not str(k).startswith("5"))
        n5 = sum(v for k, v in soak["errors"].items() if str(k).startswith("5"))
    lines += ["", f"soak: {soak['requests_started']} requests, {soak['requests_completed']} completed, "
                  f"{soak['requests_disconnected']} disconnected by the client on purpose, errors {soak['errors']}, "
                  f"lost {lost}, 5xx {n5}; RSS median first decile {soak.get('rss_kib_first_decile_median', 0) / 1024:.1f} MiB, "
                  f"last decile {soak.get('rss_kib_last_decile_median', 0) / 1024:.1f} MiB"]
    if "outcomes" in soak:
        o = soak["outcomes"]
        lines.append(f"(mix: {soak['requests_slow']} slow clients, {soak['requests_slow_chunked']} of them chunked uploads, "
                     f"{soak['requests_nonstream']} non-streaming; outcomes {o}; 429 answers {soak['responses_429']}; "
                     f"wall {soak['wall_s']:.0f} s)")
    m = soak.get("metrics_settled")
    if m:
        lines.append(f"server after the soak: requests_running {m['requests_running']:.0f}, "
                     f"requests_cancelled_total {m['requests_cancelled_total']:.0f}, finish reasons "
                     f"{ {k: int(v) for k, v in m['finish_reasons'].items() if v} }, TTFT histogram count "
                     f"{m['ttft_histogram_count']:.0f}, HTTP responses { {k: int(v) for k, v in m['http_responses'].items()} }")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if rows:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.barh([n for n, _ in rows], [r["output_tokens_per_s"] for _, r in rows], color="#2a6fb0")
        ax.set_xlabel("output tokens/s (256-token prompts, 128-token outputs)")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "throughput.png"), dpi=110)
    if soak and soak.get("rss_kib_samples"):
        fig, ax = plt.subplots(figsize=(6, 3))
        xs, ys = zip(*soak["rss_kib_samples"])
        ax.plot(xs, [y / 1024 for y in ys])
        ax.set_xlabel("requests finished")
        ax.set_ylabel("server RSS (MiB)")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "soak_rss.png"), dpi=110)
    for kv in ("fp16", "kvarn_k4v2"):
        p = os.path.join(out, f"budget-{kv}.metrics.json")
        if os.path.exists(p):
            m = json.load(open(p))
            plt.figure(1, figsize=(6, 3))
            plt.plot([t for t, _, _ in m], [r for _, r, _ in m], label=kv)
    if os.path.exists(os.path.join(out, "budget-fp16.metrics.json")):
        plt.figure(1)
        plt.xlabel("seconds")
        plt.ylabel("sequences running")
        plt.legend()
        plt.tight_layout()
        plt.savefig(os.path.join(out, "budget_concurrency.png"), dpi=110)
except ImportError:
    pass
