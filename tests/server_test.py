#!/usr/bin/env python3
"""End-to-end tests of `strata serve` driven by the official `openai` Python client.

Starts the server on loopback (port 0 = any free port, parsed from its log), then checks:
streaming and non-streaming chat/completions, usage counts, 16 concurrent requests, stop
sequences, seeded determinism, malformed requests (4xx while others keep working), a
client disconnecting mid-stream (its slot is freed), and KV-budget exhaustion (requests
queue, the overflow gets 429 + Retry-After, nothing is lost, no 5xx).
Usage: server_test.py STRATA_BINARY MODEL"""
import concurrent.futures as cf
import http.client
import json
import re
import subprocess
import sys
import time
import unittest
from pathlib import Path

import openai

BIN, MODEL = sys.argv[1], sys.argv[2]


class ServerProcess:
    def __init__(self, *extra):
        self.proc = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "-t", "2", *extra],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("server did not start")
        # Keep draining the log so the server never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def client(self, **kw):
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="none", **kw)

    def raw(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def metric(self, name):
        _, _, data = self.raw("GET", "/metrics")
        m = re.search(rf"^strata_{name} (\S+)$", data.decode(), re.M)
        return float(m.group(1))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ServerProcess("--parallel", "4", "--ctx", "1024")
        cls.c = cls.srv.client()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def chat(self, text, **kw):
        return self.c.chat.completions.create(model="strata", messages=[{"role": "user", "content": text}], **kw)

    def test_chat_non_streaming(self):
        r = self.chat("What is 2+2?", max_tokens=24, temperature=0)
        self.assertEqual(r.object, "chat.completion")
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertTrue(r.choices[0].message.content)
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)
        self.assertLessEqual(r.usage.completion_tokens, 24)

    def test_capital_of_france_with_default_numerics(self):
        # No numerics flag on the server: f32 activations are the default (README
        # "Numerics"); llama.cpp's 8-bit scheme answers "L'Étoile, ..." for this model.
        r = self.chat("What is the capital of France?", max_tokens=16, temperature=0)
        self.assertIn("Paris", r.choices[0].message.content)

    def test_completion_length(self):
        r = self.c.completions.create(model="strata", prompt="Once upon a time", max_tokens=10, temperature=0)
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertEqual(r.usage.completion_tokens, 10)
        self.assertEqual(r.usage.prompt_tokens, 4)

    def test_chat_streaming_matches_non_streaming(self):
        full = self.chat("Name a color.", max_tokens=16, temperature=0).choices[0].message.content
        parts, finish, usage = [], None, None
        for ch in self.chat("Name a color.", max_tokens=16, temperature=0, stream=True,
                            stream_options={"include_usage": True}):
            if ch.usage:
                usage = ch.usage
            for choice in ch.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                finish = choice.finish_reason or finish
        self.assertEqual("".join(parts), full)
        self.assertIn(finish, ("stop", "length"))
        self.assertIsNotNone(usage)

    def test_sixteen_concurrent(self):
        def one(i):
            r = self.c.completions.create(model="strata", prompt=f"Count: {i},", max_tokens=8, temperature=0)
            return r.usage.completion_tokens
        with cf.ThreadPoolExecutor(16) as ex:
            counts = list(ex.map(one, range(16)))
        self.assertEqual(len(counts), 16)
        self.assertTrue(all(0 < n <= 8 for n in counts))

    def test_stop_sequences(self):
        base = self.c.completions.create(model="strata", prompt="The days of the week are Monday,",
                                         max_tokens=24, temperature=0).choices[0].text
        self.assertIn(",", base)
        r = self.c.completions.create(model="strata", prompt="The days of the week are Monday,",
                                      max_tokens=24, temperature=0, stop=[","])
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertEqual(r.choices[0].text, base.split(",")[0])

    def test_seeded_determinism(self):
        kw = dict(model="strata", prompt="My favourite animal is", max_tokens=20, temperature=1.0)
        a = self.c.completions.create(seed=42, **kw).choices[0].text
        b = self.c.completions.create(seed=42, **kw).choices[0].text
        self.assertEqual(a, b)
        others = {self.c.completions.create(seed=s, **kw).choices[0].text for s in (1, 2, 3)}
        self.assertGreater(len(others | {a}), 1)

    def test_malformed_requests(self):
        cases = [
            (b"not json", 400),
            (b"[1,2]", 400),
            (json.dumps({"messages": "hi"}).encode(), 400),
            (json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}).encode(), 400),
            (json.dumps({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}).encode(), 400),
            (json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}).encode(), 400),
            (json.dumps({"messages": [{"role": "user", "content": "hi " * 2000}]}).encode(), 400),
            (json.dumps({"messages": [{"role": "user", "content": "hi"}], "n": 9}).encode(), 400),
            (b"{" + b" " * (2 << 20) + b"}", 413),
        ]
        for body, want in cases:
            status, _, data = self.srv.raw("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            self.assertEqual(status, want, body[:60])
            self.assertIn("error", json.loads(data))
        with self.assertRaises(openai.BadRequestError):
            self.chat("hi", max_tokens=-3)
        # Unknown fields are ignored.
        r = self.c.chat.completions.create(model="strata", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=4, extra_body={"frobnicate": True})
        self.assertTrue(r.choices)

    def test_disconnect_frees_slot(self):
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        body = json.dumps({"prompt": "Write a long story about a dragon.", "max_tokens": 500, "stream": True})
        c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.readline()  # first event
        c.close()     # disconnect mid-stream
        deadline = time.time() + 20
        while time.time() < deadline and self.srv.metric("requests_running") > 0:
            time.sleep(0.2)
        self.assertEqual(self.srv.metric("requests_running"), 0)
        # The server still answers.
        self.assertTrue(self.chat("hi", max_tokens=4).choices)

    def test_tokenize_roundtrip_and_models(self):
        status, _, data = self.srv.raw("POST", "/tokenize", json.dumps({"content": "Hello world"}))
        self.assertEqual(status, 200)
        toks = json.loads(data)["tokens"]
        self.assertEqual(toks, [19556, 905])
        status, _, data = self.srv.raw("POST", "/detokenize", json.dumps({"tokens": toks}))
        self.assertEqual(json.loads(data)["content"], "Hello world")
        status, _, data = self.srv.raw("POST", "/detokenize", json.dumps({"tokens": [-1]}))
        self.assertEqual(status, 400)
        # A token that is part of a UTF-8 character decodes to invalid UTF-8: U+FFFD, not a 500.
        status, _, data = self.srv.raw("POST", "/tokenize", json.dumps({"content": "\u6f22\u5b57 \u20ac"}))
        part = [t for t in json.loads(data)["tokens"]][:1]
        status, _, data = self.srv.raw("POST", "/detokenize", json.dumps({"tokens": part}))
        self.assertEqual(status, 200)
        json.loads(data)
        self.assertEqual(self.c.models.list().data[0].id, "strata")


class BudgetTest(unittest.TestCase):
    def test_budget_exhaustion_queues_and_429(self):
        # 23040 B/token (f16) x 300 tokens ~ 6.6 MiB: one 200+64-token request at a time.
        srv = ServerProcess("--parallel", "4", "--ctx", "512", "--kv-budget-mb", "7", "--max-queue", "2")
        try:
            c = srv.client(max_retries=0)
            prompt = "Tell me about the sea. " * 30

            def one(i):
                try:
                    r = c.completions.create(model="strata", prompt=prompt, max_tokens=16, temperature=0)
                    return ("ok", r.usage.completion_tokens)
                except openai.RateLimitError as e:
                    return ("429", e.response.headers.get("retry-after"))
                except openai.APIStatusError as e:
                    return (f"status {e.status_code}", None)
            with cf.ThreadPoolExecutor(8) as ex:
                results = list(ex.map(one, range(8)))
            kinds = [k for k, _ in results]
            self.assertTrue(all(k in ("ok", "429") for k in kinds), kinds)
            self.assertGreaterEqual(kinds.count("ok"), 3)   # one running + two queued at least
            self.assertGreaterEqual(kinds.count("429"), 1)
            self.assertTrue(all(v == "1" for k, v in results if k == "429"))
            self.assertEqual(srv.metric("requests_rejected_total"), kinds.count("429"))
        finally:
            srv.stop()


class PreemptionTest(unittest.TestCase):
    def test_pages_running_out_preempt_and_requeue(self):
        # 300 tokens of f16 KV: two short prompts are admitted together, but their 200-token
        # answers cannot both fit, so the newer one is preempted, re-queued and finished later.
        srv = ServerProcess("--parallel", "2", "--ctx", "512", "--kv-budget-mb", str(300 * 23040 / 2**20))
        try:
            c = srv.client(max_retries=0)

            def one(i):
                r = c.completions.create(model="strata", prompt=f"Story number {i}:", max_tokens=200,
                                         temperature=0, extra_body={"ignore_eos": True})
                return r.usage.completion_tokens, r.choices[0].finish_reason, len(r.choices[0].text)
            with cf.ThreadPoolExecutor(3) as ex:
                results = list(ex.map(one, range(3)))
            self.assertEqual([(n, f) for n, f, _ in results], [(200, "length")] * 3)
            self.assertTrue(all(chars > 0 for _, _, chars in results))
            self.assertGreaterEqual(srv.metric("preemptions_total"), 1)
            self.assertEqual(srv.metric("requests_finished_total"), 3)
        finally:
            srv.stop()


class AdapterTest(unittest.TestCase):
    """Per-request LoRA (`serve --lora`, the "lora" extension field): the default applies the
    adapter, "lora": [] is the base model, and the prefix cache never mixes the two."""
    PROMPT = "The mineral tecorloite is mostly mined in"

    def complete(self, srv, **extra):
        r = srv.client().completions.create(model="strata", prompt=self.PROMPT, max_tokens=12, temperature=0,
                                            extra_body=extra or None)
        return r.choices[0].text

    def test_per_request_lora(self):
        root = Path(MODEL).resolve().parent.parent
        adapter = root / "data/lora/seed1/adapters/domain"
        base_srv = ServerProcess("--parallel", "1", "--ctx", "256")
        try:
            base = self.complete(base_srv)
        finally:
            base_srv.stop()
        srv = ServerProcess("--parallel", "1", "--ctx", "256", "--lora", str(adapter))
        try:
            status, _, data = srv.raw("GET", "/lora-adapters")
            self.assertEqual(status, 200)
            listed = json.loads(data)
            self.assertEqual([(a["id"], a["scale"]) for a in listed], [(0, 1.0)])
            with_lora = self.complete(srv)
            self.assertNotEqual(with_lora, base)          # the adapter changes the answer
            # One slot: each request reuses the previous one's cache only under the same adapters.
            for _ in range(2):
                self.assertEqual(self.complete(srv, lora=[]), base)
                self.assertEqual(self.complete(srv, lora=[{"id": 0, "scale": 1.0}]), with_lora)
                self.assertEqual(self.complete(srv), with_lora)
            self.assertEqual(self.complete(srv, lora=[{"id": 0, "scale": 0}]), base)
            for body, param in [({"lora": [{"id": 3}]}, "lora"), ({"lora": {"id": 0}}, "lora"),
                                ({"lora": [{"id": 0, "scale": "x"}]}, "lora[0].scale"),
                                ({"lora": [{"id": 0}, {"id": 0}]}, "lora[1].id")]:
                status, _, data = srv.raw("POST", "/v1/completions",
                                          json.dumps({"prompt": "hi", "max_tokens": 2, **body}))
                self.assertEqual(status, 400, body)
                self.assertEqual(json.loads(data)["error"]["param"], param, data)
            self.assertEqual(self.complete(srv, lora=[]), base)  # still serving
        finally:
            srv.stop()


class FunctionVectorTest(unittest.TestCase):
    """Per-request function vectors (`serve --fv`, the "fv" extension field) act like
    `strata generate --fv` (last prompt token and generated tokens) and never leak into
    requests without them."""
    PROMPT = "Q: house\nA:"

    def complete(self, srv, **extra):
        r = srv.client().completions.create(model="strata", prompt=self.PROMPT, max_tokens=6, temperature=0,
                                            extra_body=extra or None)
        return r.choices[0].text

    def cli(self, *extra):
        out = subprocess.run([BIN, "generate", "-m", MODEL, "-t", "2", "--temp", "0", "-n", "6", "-p", self.PROMPT,
                              *extra], capture_output=True, text=True, check=True).stdout
        self.assertTrue(out.startswith(self.PROMPT), out)
        return out[len(self.PROMPT):].rstrip("\n")

    def test_per_request_function_vector(self):
        blob = Path(MODEL).resolve().parent.parent / "docs/function-vectors/blobs/uppercase.lrp-dist.fv"
        want_fv, want_base = self.cli("--fv", str(blob)), self.cli()
        self.assertNotEqual(want_fv, want_base)
        srv = ServerProcess("--parallel", "1", "--ctx", "256", "--fv", str(blob))
        try:
            status, _, data = srv.raw("GET", "/function-vectors")
            self.assertEqual([(v["id"], v["scale"]) for v in json.loads(data)], [(0, 1.0)])
            for _ in range(2):  # one slot: alternating requests must not reuse each other's K/V
                self.assertEqual(self.complete(srv), want_fv)
                self.assertEqual(self.complete(srv, fv=[]), want_base)
            self.assertEqual(self.complete(srv, fv=[{"id": 0, "scale": 1}]), want_fv)
            status, _, data = srv.raw("POST", "/v1/completions", json.dumps({"prompt": "hi", "fv": [{"id": 1}]}))
            self.assertEqual((status, json.loads(data)["error"]["param"]), (400, "fv"))
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
