#!/usr/bin/env python3
"""Checks the KV-cache CI subset (spec kvarn.md §6.4, end): fp32 reference, q8_0, kivi2
(KIVI matched), kvarn_k4v2 and kvarn_k2v2 on 2 x 1024 tokens of the KJV text, metric 1.

Reads the `strata perplexity` reports written by tools/kv_eval.sh and checks the spec's
directional criteria plus loose absolute bounds (set from the paper's and llama.cpp's
orders of magnitude, not from our own output): a failure means a codec or the attention on
encoded pages regressed. Usage: kv_quality_check.py OUT_DIR
"""
import re
import sys
from pathlib import Path


def report(path):
    text = Path(path).read_text()
    def num(pattern):
        m = re.search(pattern, text, re.M)
        if not m:
            sys.exit(f"{path}: no match for {pattern!r}")
        return float(m.group(1))
    return {
        "bytes": num(r"KV bytes per token .*: ([\d.]+)"),
        "ppl": num(r"PPL = ([\d.]+)"),
        "mean": num(r"^Mean\s+KLD:\s+([\d.]+)"),
        "p99": num(r"^99\.0%\s+KLD:\s+([\d.]+)"),
        "p999": num(r"^99\.9%\s+KLD:\s+([\d.]+)"),
        "top1": num(r"^Same top p:\s+([\d.]+)"),
    }


def main():
    out = Path(sys.argv[1])
    r = {c: report(out / f"{c}.txt") for c in ["q8_0", "kivi2", "kvarn_k4v2", "kvarn_k2v2"]}
    base = report_base(out / "fp32.txt")
    checks = [
        ("fp32 reference PPL is sane (< 8)", base["ppl"] < 8.0),
        ("q8_0 mean KLD < 0.005", r["q8_0"]["mean"] < 0.005),
        ("q8_0 same-top-1 >= 97%", r["q8_0"]["top1"] >= 97.0),
        ("C1: kvarn_k2v2 mean KLD < kivi2", r["kvarn_k2v2"]["mean"] < r["kivi2"]["mean"]),
        # p99 rather than the spec's p99.9: over 2046 positions p99.9 is the 2nd-3rd largest
        # value and flips with round-off; docs/kv-cache.md reports p99.9 on the larger grid.
        ("C1: kvarn_k2v2 p99 KLD < kivi2", r["kvarn_k2v2"]["p99"] < r["kivi2"]["p99"]),
        ("C1: kvarn_k2v2 PPL < kivi2", r["kvarn_k2v2"]["ppl"] < r["kivi2"]["ppl"]),
        ("C1: kvarn_k2v2 top-1 > kivi2", r["kvarn_k2v2"]["top1"] > r["kivi2"]["top1"]),
        ("kvarn_k4v2 mean KLD < kvarn_k2v2", r["kvarn_k4v2"]["mean"] < r["kvarn_k2v2"]["mean"]),
        ("kvarn_k4v2 mean KLD < 0.05", r["kvarn_k4v2"]["mean"] < 0.05),
        ("bytes/token: kvarn_k2v2 < kvarn_k4v2 < q8_0 < fp32",
         r["kvarn_k2v2"]["bytes"] < r["kvarn_k4v2"]["bytes"] < r["q8_0"]["bytes"] < base["bytes"]),
    ]
    for c, v in r.items():
        print(f"{c:12s} bytes/token {v['bytes']:8.1f}  mean KLD {v['mean']:.5f}  "
              f"p99 {v['p99']:.4f}  p99.9 {v['p999']:.4f}  PPL {v['ppl']:.4f}  top-1 {v['top1']:.2f}%")
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        print(("ok    " if ok else "FAIL  ") + name)
    sys.exit(1 if failed else 0)


def report_base(path):
    text = Path(path).read_text()
    return {"ppl": float(re.search(r"PPL = ([\d.]+)", text).group(1)),
            "bytes": float(re.search(r"KV bytes per token .*: ([\d.]+)", text).group(1))}


if __name__ == "__main__":
    main()
