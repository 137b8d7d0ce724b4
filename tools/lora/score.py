#!/usr/bin/env python3
"""Scores one model configuration on the evaluation sets with `strata lora-eval score`.

Usage: score.py STRATA SEED_DIR NAME [--lora FILE[:SCALE]]... [--sets m1_test,m2,m3] [--threads 1]
Writes SEED_DIR/scores/NAME.<set>.jsonl ({"id","logprobs",...}) and prints accuracies. The
adapters are loaded back from disk by the engine and applied at run time (--lora), as the
protocol asks. M4 (format compliance) is the fraction of greedy answers (at most 8 tokens, up to
the end-of-turn token) on M1 test prompts that are exactly one of the four "<letter>. <option>"
strings.
"""
import argparse, json, os, subprocess, sys, tempfile

MODEL = "models/SmolLM2-135M-Instruct.Q4_1.gguf"


def accuracy(items, scores):
    ok = [int(max(range(len(s["logprobs"])), key=lambda k: s["logprobs"][k]) == it["answer"])
          for it, s in zip(items, scores)]
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("strata"); ap.add_argument("seed_dir"); ap.add_argument("name")
    ap.add_argument("--lora", action="append", default=[])
    ap.add_argument("--sets", default="m1_test,m2,m3")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--m4", action="store_true", help="also greedy-decode M1 test prompts (format compliance)")
    a = ap.parse_args()
    out_dir = os.path.join(a.seed_dir, "scores")
    os.makedirs(out_dir, exist_ok=True)
    res = {}
    for s in a.sets.split(","):
        items = [json.loads(l) for l in open(os.path.join(a.seed_dir, f"{s}.jsonl"))]
        inp = os.path.join(a.seed_dir, f"{s}.jsonl")
        if a.m4 and s == "m1_test":
            tmp = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
            for it in items: tmp.write(json.dumps(dict(it, greedy_n=8)) + "\n")
            tmp.close(); inp = tmp.name
        out = os.path.join(out_dir, f"{a.name}.{s}.jsonl")
        cmd = [a.strata, "lora-eval", "score", "-m", MODEL, "-t", a.threads, "--ctx", "512", "--in", inp, "-o", out]
        for l in a.lora: cmd += ["--lora", l]
        subprocess.run(cmd, check=True)
        scores = [json.loads(l) for l in open(out)]
        res[s] = sum(accuracy(items, scores)) / len(items)
        if a.m4 and s == "m1_test":
            res["m4"] = sum(sc.get("greedy", "").strip() in it["choices"] for it, sc in zip(items, scores)) / len(scores)
    print(a.name, " ".join(f"{k}={v:.3f}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
