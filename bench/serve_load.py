#!/usr/bin/env python3
"""Load generator for OpenAI-compatible servers on loopback (Strata or llama.cpp's).

N concurrent clients each send streaming /v1/completions requests with a fixed prompt
length (in tokens, built from a repeated word the tokenizer maps to one token each) and a
fixed number of output tokens (max_tokens, ignore EOS where the server allows), until
--requests are done or --duration seconds pass. Optionally a fraction of clients
disconnects mid-stream (--disconnect-rate). Reports aggregate output tokens/s, request
throughput, and p50/p99 time-to-first-token and inter-token latency; --json writes them.
Only 127.0.0.1 is ever contacted."""
import argparse
import http.client
import json
import random
import statistics
import threading
import time


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(args):
    prompt = " ".join(["the"] * args.prompt_tokens)
    lock = threading.Lock()
    stats = {"ttft": [], "itl": [], "tokens": 0, "done": 0, "errors": {}, "disconnects": 0, "started": 0}
    deadline = time.time() + args.duration
    rng = random.Random(args.seed)

    def client(cid):
        while time.time() < deadline:
            with lock:
                if stats["started"] >= args.requests:
                    return
                stats["started"] += 1
                drop_after = rng.randrange(1, args.max_tokens) if rng.random() < args.disconnect_rate else None
            body = {"prompt": prompt, "max_tokens": args.max_tokens, "stream": True, "temperature": 0.0}
            if args.ignore_eos:
                body["ignore_eos"] = True  # llama.cpp server extension; Strata ignores unknown fields
            if args.model:
                body["model"] = args.model
            t0 = time.perf_counter()
            try:
                c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=600)
                c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
                r = c.getresponse()
                if r.status != 200:
                    r.read()
                    with lock:
                        stats["errors"][r.status] = stats["errors"].get(r.status, 0) + 1
                    c.close()
                    time.sleep(0.5)
                    continue
                last = None
                n = 0
                ttft = None
                itl = []
                while True:
                    line = r.readline()
                    if not line:
                        break
                    line = line.strip()
                    if not line.startswith(b"data: "):
                        continue
                    if line == b"data: [DONE]":
                        break
                    ev = json.loads(line[6:])
                    ch = ev.get("choices") or []
                    if not ch or not ch[0].get("text"):
                        continue
                    now = time.perf_counter()
                    if ttft is None:
                        ttft = now - t0
                    else:
                        itl.append(now - last)
                    last = now
                    n += 1
                    if drop_after is not None and n >= drop_after:
                        break
                c.close()
                with lock:
                    if ttft is not None:
                        stats["ttft"].append(ttft)
                    stats["itl"].extend(itl)
                    stats["tokens"] += n
                    if drop_after is not None and n >= drop_after:
                        stats["disconnects"] += 1
                    else:
                        stats["done"] += 1
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    k = type(e).__name__
                    stats["errors"][k] = stats["errors"].get(k, 0) + 1

    rss = []        # (requests finished so far, resident KiB) sampled from /proc
    metrics = []    # (seconds, strata_requests_running, strata_kv_usage_ratio)
    stop_sampling = threading.Event()

    def sampler():
        while not stop_sampling.wait(0.5):
            if args.rss_pid:
                try:
                    with open(f"/proc/{args.rss_pid}/status") as f:
                        kib = int(next(l for l in f if l.startswith("VmRSS")).split()[1])
                    with lock:
                        rss.append((stats["done"] + stats["disconnects"], kib))
                except (OSError, StopIteration):
                    pass
            if args.sample_metrics:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
                    c.request("GET", "/metrics")
                    text = c.getresponse().read().decode()
                    c.close()
                    vals = dict(l.split(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))
                    metrics.append((time.perf_counter() - t_start, float(vals.get("strata_requests_running", "nan")),
                                    float(vals.get("strata_kv_usage_ratio", "nan"))))
                except (OSError, http.client.HTTPException, ValueError):
                    pass

    t_start = time.perf_counter()
    sampler_thread = threading.Thread(target=sampler, daemon=True)
    sampler_thread.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop_sampling.set()
    wall = time.perf_counter() - t_start
    out = {
        "clients": args.clients, "prompt_tokens": args.prompt_tokens, "max_tokens": args.max_tokens,
        "requests_completed": stats["done"], "requests_disconnected": stats["disconnects"],
        "errors": stats["errors"], "wall_s": wall,
        "output_tokens_per_s": stats["tokens"] / wall, "requests_per_s": stats["done"] / wall,
        "ttft_p50_ms": 1000 * pct(stats["ttft"], 50), "ttft_p99_ms": 1000 * pct(stats["ttft"], 99),
        "itl_p50_ms": 1000 * pct(stats["itl"], 50), "itl_p99_ms": 1000 * pct(stats["itl"], 99),
        "itl_mean_ms": 1000 * statistics.mean(stats["itl"]) if stats["itl"] else float("nan"),
        "requests_started": stats["started"],
    }
    if rss:
        n_total = max(1, rss[-1][0])
        first = [k for n, k in rss if n <= n_total * 0.1] or [rss[0][1]]
        last = [k for n, k in rss if n >= n_total * 0.9] or [rss[-1][1]]
        out["rss_kib_first_decile_median"] = statistics.median(first)
        out["rss_kib_last_decile_median"] = statistics.median(last)
        out["rss_kib_samples"] = rss[:: max(1, len(rss) // 200)]
    if metrics:
        out["max_requests_running"] = max(m[1] for m in metrics)
        with open(args.sample_metrics, "w") as f:
            json.dump(metrics, f)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--disconnect-rate", type=float, default=0.0)
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--model", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="")
    ap.add_argument("--rss-pid", type=int, default=0, help="sample this process's VmRSS")
    ap.add_argument("--sample-metrics", default="", help="poll /metrics (Strata) and write samples here")
    args = ap.parse_args()
    out = run(args)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
