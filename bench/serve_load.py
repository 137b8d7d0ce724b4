#!/usr/bin/env python3
"""Load generator for OpenAI-compatible servers on loopback (Strata or llama.cpp's).

N concurrent clients each send /v1/completions requests with a fixed prompt length (in
tokens, built from a repeated word the tokenizer maps to one token each) and a fixed number
of output tokens (max_tokens, ignore EOS where the server allows), until --requests are done
or --duration seconds pass. Requests stream unless drawn for --nonstream-rate. Misbehaving
clients, drawn per request with a seeded RNG:
  --disconnect-rate  a streaming client closes the socket after a random number of tokens; a
                     non-streaming one closes it a random short delay after sending the request,
                     without reading the answer (the server should cancel the generation); a slow
                     client may instead give up half-way through sending its body.
  --slow-rate        the body goes out in 16-64 byte pieces 50-200 ms apart (Content-Length or,
                     at random, chunked transfer encoding), over a socket with a small receive
                     buffer, and the answer is read slowly (sleeps between SSE events); the added
                     delay is bounded by --slow-max-delay seconds per request.
A 429 is retried after its Retry-After (a rejection, not a loss). Every request ends in one
outcome: completed (a final finish_reason and, when streaming, [DONE]), disconnected on
purpose, rejected (429 after --max-retries), or an error by HTTP status / exception / stream
error event; "lost" is everything else than the first three. Reports aggregate output
tokens/s, request throughput, p50/p99 time-to-first-token (fast streaming requests only) and
inter-token latency; with Strata, the /metrics counters before and after the run (and
strata_requests_running once the run has settled); --json writes it all.
Only 127.0.0.1 is ever contacted."""
import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import sys
import threading
import time

OK_FINISH = ("stop", "length")


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def fetch_metrics(port, timeout=5):
    """Strata's /metrics as {name or name{labels}: float}; {} when unavailable."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        if r.status != 200:
            return {}
    except (OSError, http.client.HTTPException):
        return {}
    vals = {}
    for l in text.splitlines():
        if not l or l.startswith("#"):
            continue
        k, _, v = l.rpartition(" ")
        try:
            vals[k] = float(v)
        except ValueError:
            pass
    return vals


def metrics_summary(m):
    """The figures the soak reports from one /metrics scrape."""
    if not m:
        return {}
    lab = lambda prefix: {re.search(r'"(.*)"', k).group(1): v for k, v in m.items() if k.startswith(prefix + "{")}
    return {
        "requests_running": m.get("strata_requests_running"),
        "requests_queued": m.get("strata_requests_queued"),
        "requests_cancelled_total": m.get("strata_requests_cancelled_total"),
        "requests_finished_total": m.get("strata_requests_finished_total"),
        "requests_rejected_total": m.get("strata_requests_rejected_total"),
        "preemptions_total": m.get("strata_preemptions_total"),
        "generated_tokens_total": m.get("strata_generated_tokens_total"),
        "ttft_histogram_count": m.get("strata_time_to_first_token_seconds_count"),
        "request_duration_histogram_count": m.get("strata_request_duration_seconds_count"),
        "finish_reasons": lab("strata_requests_by_finish_reason_total"),
        "http_responses": lab("strata_http_responses_total"),
    }


def host_info():
    info = {"nproc": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


class Outcome(Exception):
    """Ends one attempt: kind is completed / disconnected_* / retry / error."""

    def __init__(self, kind, detail=None):
        super().__init__(kind)
        self.kind, self.detail = kind, detail


def run(args):
    prompt = " ".join(["the"] * args.prompt_tokens)
    lock = threading.Lock()
    stats = {"ttft": [], "itl": [], "e2e_nonstream": [], "tokens": 0, "errors": {}, "started": 0,
             "finished": 0, "responses_429": 0, "error_examples": [],
             "outcomes": {"completed_stream": 0, "completed_nonstream": 0, "disconnected_stream": 0,
                          "disconnected_nonstream": 0, "disconnected_mid_body": 0, "rejected_429": 0,
                          "error": 0},
             "slow": 0, "slow_chunked": 0, "nonstream": 0}
    deadline = time.time() + args.duration
    rng = random.Random(args.seed)

    def count_error(key):
        stats["errors"][key] = stats["errors"].get(key, 0) + 1

    def plan():
        """Every random choice of one request, drawn under the lock so a seed fixes the run."""
        p = {"slow": rng.random() < args.slow_rate, "nonstream": rng.random() < args.nonstream_rate,
             "disconnect": rng.random() < args.disconnect_rate, "seed": rng.randrange(1 << 30)}
        p["chunked"] = p["slow"] and rng.random() < 0.5
        p["mid_body"] = p["slow"] and p["disconnect"] and rng.random() < 0.25
        p["drop_after"] = rng.randrange(1, max(2, args.max_tokens)) if p["disconnect"] else None
        p["close_after_s"] = rng.uniform(0.02, args.nonstream_close_max) if p["disconnect"] else None
        return p

    def attempt(p, prng):
        body = {"prompt": prompt, "max_tokens": args.max_tokens, "stream": not p["nonstream"], "temperature": 0.0}
        if args.ignore_eos:
            body["ignore_eos"] = True  # llama.cpp server extension; Strata ignores unknown fields
        if args.model:
            body["model"] = args.model
        data = json.dumps(body).encode()
        budget = [args.slow_max_delay]  # seconds of deliberate delay left to this request

        def slow_sleep(lo, hi):
            if p["slow"] and budget[0] > 0:
                d = min(budget[0], prng.uniform(lo, hi))
                budget[0] -= d
                time.sleep(d)

        t0 = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.timeout)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if p["slow"]:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
            s.settimeout(args.timeout)
            s.connect(("127.0.0.1", args.port))
            c.sock = s
            c.putrequest("POST", "/v1/completions", skip_accept_encoding=True)
            c.putheader("Content-Type", "application/json")
            if p["chunked"]:
                c.putheader("Transfer-Encoding", "chunked")
            else:
                c.putheader("Content-Length", str(len(data)))
            c.endheaders()
            if not p["slow"]:
                c.send(data)
            else:
                pos, stop_at = 0, (len(data) // 2 if p["mid_body"] else len(data))
                while pos < stop_at:
                    n = min(prng.randint(16, 64), stop_at - pos)
                    piece = data[pos:pos + n]
                    c.send(b"%x\r\n%s\r\n" % (len(piece), piece) if p["chunked"] else piece)
                    pos += n
                    slow_sleep(0.05, 0.2)
                if p["mid_body"]:
                    raise Outcome("disconnected_mid_body")
                if p["chunked"]:
                    c.send(b"0\r\n\r\n")
            if p["nonstream"] and p["disconnect"]:
                time.sleep(p["close_after_s"])  # then close without reading the answer
                raise Outcome("disconnected_nonstream")
            r = c.getresponse()
            if r.status == 429:
                r.read()
                try:
                    wait = float(r.getheader("Retry-After") or 1)
                except ValueError:
                    wait = 1.0
                raise Outcome("retry", min(max(wait, 0.0), 30.0))
            if r.status != 200:
                r.read()
                raise Outcome("error", r.status)
            if p["nonstream"]:
                raw = r.read()
                try:
                    j = json.loads(raw)
                    fin = j["choices"][0].get("finish_reason")
                    ntok = int((j.get("usage") or {}).get("completion_tokens") or 0)
                except (ValueError, KeyError, IndexError, TypeError):
                    raise Outcome("error", "bad_json")
                if fin not in OK_FINISH:
                    raise Outcome("error", f"finish_{fin}")
                with lock:
                    stats["tokens"] += ntok
                    stats["e2e_nonstream"].append(time.perf_counter() - t0)
                raise Outcome("completed_nonstream")
            last, n, ttft, itl, fin, done = None, 0, None, [], None, False
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data: "):
                    continue
                if line == b"data: [DONE]":
                    done = True
                    break
                try:
                    ev = json.loads(line[6:])
                except ValueError:
                    raise Outcome("error", "bad_sse_json")
                if "error" in ev:
                    raise Outcome("error", "stream_error_" + str((ev["error"] or {}).get("type")))
                ch = ev.get("choices") or []
                if ch and ch[0].get("finish_reason"):
                    fin = ch[0]["finish_reason"]
                if not ch or not ch[0].get("text"):
                    continue
                now = time.perf_counter()
                if ttft is None:
                    ttft = now - t0
                else:
                    itl.append(now - last)
                last = now
                n += 1
                if p["drop_after"] is not None and n >= p["drop_after"]:
                    with lock:
                        stats["tokens"] += n
                        if not p["slow"]:
                            stats["ttft"].append(ttft)
                        stats["itl"].extend(itl)
                    raise Outcome("disconnected_stream")
                slow_sleep(0.03, 0.15)
            with lock:
                stats["tokens"] += n
                if not p["slow"] and ttft is not None:
                    stats["ttft"].append(ttft)
                stats["itl"].extend(itl)
            if not done:
                raise Outcome("error", "stream_ended_without_done")
            if fin not in OK_FINISH:
                raise Outcome("error", f"finish_{fin}")
            raise Outcome("completed_stream")
        except (OSError, http.client.HTTPException) as e:
            raise Outcome("error", type(e).__name__)
        finally:
            c.close()

    def client(cid):
        while time.time() < deadline:
            with lock:
                if stats["started"] >= args.requests:
                    return
                stats["started"] += 1
                num = stats["started"]
                p = plan()
                stats["slow"] += p["slow"]
                stats["slow_chunked"] += p["chunked"]
                stats["nonstream"] += p["nonstream"]
            prng = random.Random(p["seed"])
            retries = 0
            while True:
                try:
                    attempt(p, prng)
                    o = Outcome("error", "no_outcome")
                except Outcome as e:
                    o = e
                if o.kind == "retry":
                    with lock:
                        stats["responses_429"] += 1
                    retries += 1
                    if retries <= args.max_retries and time.time() < deadline:
                        time.sleep(o.detail)
                        continue
                    o = Outcome("rejected_429")
                break
            with lock:
                stats["finished"] += 1
                stats["outcomes"][o.kind] += 1
                if o.kind == "error":
                    count_error(o.detail)
                    if len(stats["error_examples"]) < 20:
                        stats["error_examples"].append({"request": num, "error": str(o.detail), "plan": p,
                                                        "t_s": round(time.perf_counter() - t_start, 3)})
                    print(f"request {num} failed: {o.detail} plan {p}", file=sys.stderr, flush=True)
            if o.kind == "error":
                time.sleep(0.5)

    rss = []        # (requests finished so far, resident KiB) sampled from /proc
    metrics = []    # (seconds, strata_requests_running, strata_kv_usage_ratio)
    loadavg = []    # (seconds, 1-minute load average)
    stop_sampling = threading.Event()

    def sampler():
        i = 0
        while not stop_sampling.wait(0.5):
            i += 1
            if i % 10 == 0:
                loadavg.append((time.perf_counter() - t_start, os.getloadavg()[0]))
            if args.rss_pid:
                try:
                    with open(f"/proc/{args.rss_pid}/status") as f:
                        kib = int(next(l for l in f if l.startswith("VmRSS")).split()[1])
                    with lock:
                        rss.append((stats["finished"], kib))
                except (OSError, StopIteration):
                    pass
            if args.sample_metrics:
                vals = fetch_metrics(args.port)
                if vals:
                    metrics.append((time.perf_counter() - t_start, vals.get("strata_requests_running", float("nan")),
                                    vals.get("strata_kv_usage_ratio", float("nan"))))

    m_before = fetch_metrics(args.port)
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    sampler_thread = threading.Thread(target=sampler, daemon=True)
    sampler_thread.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop_sampling.set()
    sampler_thread.join()
    wall = time.perf_counter() - t_start
    load_after = os.getloadavg()
    m_end = fetch_metrics(args.port)
    # Let the last cancellations land (the server notices a gone client within ~100 ms).
    t_settle, m_settled = time.perf_counter(), m_end
    while m_settled and (m_settled.get("strata_requests_running", 0) or m_settled.get("strata_requests_queued", 0)) \
            and time.perf_counter() - t_settle < args.settle_s:
        time.sleep(0.1)
        m_settled = fetch_metrics(args.port)
    settle = time.perf_counter() - t_settle

    oc = stats["outcomes"]
    completed = oc["completed_stream"] + oc["completed_nonstream"]
    disconnected = oc["disconnected_stream"] + oc["disconnected_nonstream"] + oc["disconnected_mid_body"]
    lost = stats["started"] - completed - disconnected - oc["rejected_429"]
    n5xx = sum(v for k, v in stats["errors"].items()
               if (isinstance(k, int) and k >= 500) or str(k) in ("stream_error_server_error", "stream_error_timeout_error"))
    out = {
        "clients": args.clients, "prompt_tokens": args.prompt_tokens, "max_tokens": args.max_tokens,
        "disconnect_rate": args.disconnect_rate, "slow_rate": args.slow_rate, "nonstream_rate": args.nonstream_rate,
        "seed": args.seed,
        "requests_completed": completed, "requests_disconnected": disconnected,
        "errors": stats["errors"], "wall_s": wall,
        "output_tokens_per_s": stats["tokens"] / wall, "requests_per_s": completed / wall,
        "ttft_p50_ms": 1000 * pct(stats["ttft"], 50), "ttft_p99_ms": 1000 * pct(stats["ttft"], 99),
        "itl_p50_ms": 1000 * pct(stats["itl"], 50), "itl_p99_ms": 1000 * pct(stats["itl"], 99),
        "itl_mean_ms": 1000 * statistics.mean(stats["itl"]) if stats["itl"] else float("nan"),
        "requests_started": stats["started"],
        "outcomes": oc, "lost": lost, "responses_5xx": n5xx, "responses_429": stats["responses_429"],
        "requests_slow": stats["slow"], "requests_slow_chunked": stats["slow_chunked"],
        "requests_nonstream": stats["nonstream"], "error_examples": stats["error_examples"],
        "nonstream_e2e_p50_ms": 1000 * pct(stats["e2e_nonstream"], 50),
        "ttft_note": "TTFT percentiles cover streaming requests from fast clients only",
        "host": host_info(), "loadavg_before": load_before, "loadavg_after": load_after, "loadavg_samples": loadavg,
    }
    if m_end:
        out["metrics_before"] = metrics_summary(m_before)
        out["metrics_end"] = metrics_summary(m_end)
        out["metrics_settled"] = metrics_summary(m_settled)
        out["settle_s"] = settle
        out["requests_running_at_end"] = m_settled.get("strata_requests_running")
        b, e = m_before.get("strata_requests_cancelled_total", 0), m_settled.get("strata_requests_cancelled_total", 0)
        out["requests_cancelled_during_run"] = e - b
    if rss:
        n_total = max(1, rss[-1][0])
        first = [k for n, k in rss if n <= n_total * 0.1] or [rss[0][1]]
        last = [k for n, k in rss if n >= n_total * 0.9] or [rss[-1][1]]
        out["rss_kib_first_decile_median"] = statistics.median(first)
        out["rss_kib_last_decile_median"] = statistics.median(last)
        out["rss_kib_max"] = max(k for _, k in rss)
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
    ap.add_argument("--slow-rate", type=float, default=0.0, help="fraction of requests from slow clients")
    ap.add_argument("--slow-max-delay", type=float, default=3.0, help="seconds of added delay per slow request, at most")
    ap.add_argument("--nonstream-rate", type=float, default=0.0, help="fraction of requests with stream=false")
    ap.add_argument("--nonstream-close-max", type=float, default=0.4,
                    help="a disconnecting non-streaming client closes 0.02..this many seconds after its request")
    ap.add_argument("--max-retries", type=int, default=30, help="retries of a 429 (after its Retry-After)")
    ap.add_argument("--timeout", type=float, default=600, help="socket timeout, seconds")
    ap.add_argument("--settle-s", type=float, default=10, help="wait this long for requests_running to reach 0")
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
