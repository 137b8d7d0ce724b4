#!/usr/bin/env python3
"""Writes the fuzz seed corpora fuzz/corpus/<target>/ (docs/reliability.md).

Standard library only. Seeds come from real files where the project has them, cut small:
  gguf/        the default model's header (metadata with the tokenizer arrays cut to their
               first entries; once without tensors, once with all 272 real tensor descriptors
               and no data), a tiny complete llama GGUF (loads as a model and a tokenizer), GGUF
               LoRA adapters for the small test shape, and tools/make_bad_gguf.py's files (cut)
  safetensors/ the committed PEFT adapter's real header (layer 0 only, data cut) and small
               valid files of every float dtype, an integer dtype, metadata and empty ones
  peft/        2-byte config length + adapter_config.json (the committed one, r adjusted) +
               safetensors, for the small shape of src/adapters/test_util.h
  tokenizer/   1 flags byte + text, texts from tests/fixtures/tokenizer_cases.json
  fvec/        1 control byte + FVEC v1 blob (shared/specs/function-vectors.md §5.1): aggregated
               f32 / bf16 and distributed f16 with head scores and a task name, small sizes
  server/      chat / completion request bodies as the openai client and tests/server_test.py
               send them (streaming, stream_options, content parts, stop, bad values)
  http/        5 control bytes (method|flags, path, auth, framing, encoding; fuzz/fuzz_http.cpp)
               + a body: every route, plain / chunked / gzip / deflate / br bodies, refusals
               (key, method, route, size, bombs), bad framing and a smuggling attempt
Usage: tools/make_fuzz_seeds.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
Re-running writes identical bytes.
"""
import argparse
import json
import os
import struct

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "fuzz", "corpus")

# --- GGUF ------------------------------------------------------------------------------
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "B",
          U64: "Q", I64: "q", F64: "d"}
TTYPE = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(t, v, et=None):
    if t == STR:
        return gstr(v)
    if t == ARR:
        out = struct.pack("<IQ", et, len(v))
        for x in v:
            out += gstr(x) if et == STR else struct.pack("<" + SCALAR[et], x)
        return out
    return struct.pack("<" + SCALAR[t], v)


def gguf(kvs, tensors, align=32):
    """kvs: [(key, type, value, elem_type)]; tensors: [(name, ne, type name, data bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v, et in kvs:
        out += gstr(k) + struct.pack("<I", t) + gval(t, v, et)
    off, blobs = 0, []
    for name, ne, tname, data in tensors:
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", TTYPE[tname][0], off)
        blobs.append((off, data))
        off += (len(data) + align - 1) // align * align
    out += b"\0" * ((-len(out)) % align)
    base = len(out)
    data = bytearray(off)
    for o, d in blobs:
        data[o:o + len(d)] = d
    return out + bytes(data) if tensors else out


def read_gguf_header(path):
    """Returns (kvs, tensor descriptor bytes) of a real GGUF, kvs as gguf() takes them."""
    f = open(path, "rb")
    magic, ver, nt, nkv = struct.unpack("<4sIQQ", f.read(24))
    assert magic == b"GGUF"

    def rstr():
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n)

    def rscalar(t):
        fmt = "<" + SCALAR[t]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

    kvs = []
    for _ in range(nkv):
        k = rstr().decode()
        (t,) = struct.unpack("<I", f.read(4))
        if t == STR:
            kvs.append((k, t, rstr(), None))
        elif t == ARR:
            et, n = struct.unpack("<IQ", f.read(12))
            vals = [rstr() if et == STR else rscalar(et) for _ in range(n)]
            kvs.append((k, t, vals, et))
        else:
            kvs.append((k, t, rscalar(t), None))
    start = f.tell()
    for _ in range(nt):
        rstr()
        (nd,) = struct.unpack("<I", f.read(4))
        f.read(8 * nd + 4 + 8)
    end = f.tell()
    f.seek(start)
    return kvs, nt, f.read(end - start)


def cut_arrays(kvs, n_tokens=256, n_merges=64):
    out = []
    for k, t, v, et in kvs:
        if t == ARR:
            v = v[:n_merges] if k.endswith("merges") else v[:n_tokens]
        out.append((k, t, v, et))
    return out


def byte_tokens():
    """The GPT-2 byte-level symbols of the bytes 0..255 (as unicode.cpp's byte map)."""
    out, nxt = [], 0x100
    for b in range(256):
        printable = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
        out.append(chr(b if printable else nxt))
        nxt += not printable
    return out


def tiny_llama():
    """A complete llama GGUF: n_embd 32, 1 layer, 2 heads (1 KV), n_ff 64, vocab 272."""
    toks = byte_tokens() + ["Ġt", "Ġa", "he", "in", "Ġthe", "er", "on", "Ġ,", "re", "Ġs",
                            "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    toks += [f"<pad{i}>" for i in range(272 - len(toks))]
    types = [1] * len(toks)
    for i, t in enumerate(toks):
        if t.startswith("<|"):
            types[i] = 3
    merges = ["Ġ t", "Ġ a", "h e", "i n", "Ġt he", "e r", "o n", "Ġ ,", "r e", "Ġ s"]
    E, FF, V = 32, 64, len(toks)

    def f32(n, seed):
        return b"".join(struct.pack("<f", ((i * 2654435761 + seed) % 1000) / 1000.0 - 0.5) for i in range(n))

    def q8(rows, cols, seed):
        blk = struct.pack("<H", 0x2C00) + bytes(((i * 37 + seed) % 256) for i in range(32))
        return blk * (rows * cols // 32)

    def q4(rows, cols, seed):
        blk = struct.pack("<H", 0x2C00) + bytes(((i * 91 + seed) % 256) for i in range(16))
        return blk * (rows * cols // 32)

    kvs = [("general.architecture", STR, "llama", None), ("general.name", STR, "tiny", None),
           ("llama.context_length", U32, 64, None), ("llama.embedding_length", U32, E, None),
           ("llama.block_count", U32, 1, None), ("llama.feed_forward_length", U32, FF, None),
           ("llama.attention.head_count", U32, 2, None), ("llama.attention.head_count_kv", U32, 1, None),
           ("llama.rope.freq_base", F32, 10000.0, None),
           ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5, None),
           ("general.alignment", U32, 32, None),
           ("tokenizer.ggml.model", STR, "gpt2", None), ("tokenizer.ggml.pre", STR, "smollm", None),
           ("tokenizer.ggml.tokens", ARR, toks, STR), ("tokenizer.ggml.token_type", ARR, types, I32),
           ("tokenizer.ggml.merges", ARR, merges, STR),
           ("tokenizer.ggml.bos_token_id", U32, toks.index("<|im_start|>"), None),
           ("tokenizer.ggml.eos_token_id", U32, toks.index("<|im_end|>"), None),
           ("tokenizer.ggml.add_bos_token", BOOL, 0, None),
           ("tokenizer.chat_template", STR,
            "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\\nYou are a tiny model<|im_end|>\\n' }}{% endif %}"
            "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            "{% endfor %}", None)]
    ts = [("token_embd.weight", [E, V], "F16", b"\x00\x3c" * (E * V)),
          ("output_norm.weight", [E], "F32", f32(E, 1)),
          ("blk.0.attn_norm.weight", [E], "F32", f32(E, 2)),
          ("blk.0.ffn_norm.weight", [E], "F32", f32(E, 3)),
          ("blk.0.attn_q.weight", [E, E], "Q8_0", q8(E, E, 4)),
          ("blk.0.attn_k.weight", [E, 16], "Q4_0", q4(16, E, 5)),
          ("blk.0.attn_v.weight", [E, 16], "F32", f32(16 * E, 6)),
          ("blk.0.attn_output.weight", [E, E], "F16", b"\x00\x30" * (E * E)),
          ("blk.0.ffn_gate.weight", [E, FF], "Q8_0", q8(FF, E, 7)),
          ("blk.0.ffn_up.weight", [E, FF], "Q4_0", q4(FF, E, 8)),
          ("blk.0.ffn_down.weight", [FF, E], "Q8_0", q8(E, FF, 9))]
    return gguf(kvs, ts)


def f32s(n, seed):
    return b"".join(struct.pack("<f", ((i * 7 + seed) % 13) / 13.0 - 0.5) for i in range(n))


# Small shape (src/adapters/test_util.h): n_embd 8, n_ff 12, 2 heads, 1 KV head of size 4.
SMALL = {"q": (8, 8), "k": (4, 8), "v": (4, 8), "o": (8, 8), "gate": (12, 8), "up": (12, 8), "down": (8, 12)}
GGUF_STEM = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "gate": "ffn_gate",
             "up": "ffn_up", "down": "ffn_down"}
PEFT_PATH = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
             "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}


def gguf_lora(mods, r=2, alpha=4.0, ttype="F32"):
    kvs = [("general.architecture", STR, "llama", None), ("general.type", STR, "adapter", None),
           ("adapter.type", STR, "lora", None), ("adapter.lora.alpha", F32, alpha, None)]
    ts = []
    for layer, role in mods:
        d_out, d_in = SMALL[role]
        n = f"blk.{layer}.{GGUF_STEM[role]}.weight"
        enc = (lambda k, s: f32s(k, s)) if ttype == "F32" else (lambda k, s: b"\x00\x3c" * k)
        ts.append((n + ".lora_a", [d_in, r], ttype, enc(d_in * r, 1)))
        ts.append((n + ".lora_b", [r, d_out], ttype, enc(r * d_out, 2)))
    return gguf(kvs, ts)


# --- safetensors -------------------------------------------------------------------------
def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, data bytes)] in file order."""
    h, off = {}, 0
    if metadata is not None:
        h["__metadata__"] = metadata
    for name, dt, shape, data in tensors:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    hs = json.dumps(h, separators=(",", ":")).encode()
    hs += b" " * ((-len(hs)) % 8)
    return struct.pack("<Q", len(hs)) + hs + b"".join(t[3] for t in tensors)


def peft_tensors(mods, r=2, dt="F32"):
    out = []
    for layer, role in mods:
        d_out, d_in = SMALL[role]
        stem = f"base_model.model.model.layers.{layer}.{PEFT_PATH[role]}"
        enc = (lambda k, s: f32s(k, s)) if dt == "F32" else (lambda k, s: b"\x00\x3c" * k)
        out.append((stem + ".lora_A.weight", dt, [r, d_in], enc(r * d_in, 3)))
        out.append((stem + ".lora_B.weight", dt, [d_out, r], enc(d_out * r, 4)))
    return sorted(out)


def peft_seed(cfg, st):
    c = json.dumps(cfg, indent=2).encode()
    return struct.pack("<H", len(c)) + c + st


# --- FVEC ------------------------------------------------------------------------------
def fvec(entries, distributed=False, task=None, scores=False, dtype=0, policy=1, hook=0, D=8, L=2, H=2, d=4,
         scale=1.0):
    """entries: [(layer, head_or_0, values, score)]."""
    import zlib
    flags = (1 if distributed else 0) | (2 if task is not None else 0) | (4 if scores else 0)
    out = b"FVEC" + struct.pack("<HH", 1, flags) + bytes(range(32))
    out += struct.pack("<IIIIBBBBfI", D, L, H, d, dtype, policy, hook, 0, scale, len(entries))
    if task is not None:
        out += struct.pack("<H", len(task)) + task.encode()
    for layer, second, vals, score in entries:
        out += struct.pack("<HH", layer, second)
        for v in vals:
            if dtype == 0:
                out += struct.pack("<f", v)
            elif dtype == 1:
                out += struct.pack("<e", v)
            else:
                out += struct.pack("<f", v)[2:]
        if scores:
            out += struct.pack("<f", score)
    return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)


# --- writing -------------------------------------------------------------------------------
def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    a = ap.parse_args()

    # gguf
    kvs, nt, descs = read_gguf_header(a.model)
    small = cut_arrays(kvs)
    write("gguf", "smollm2_metadata.gguf", gguf(small, []))
    head = b"GGUF" + struct.pack("<IQQ", 3, nt, len(small))
    head += b"".join(gstr(k) + struct.pack("<I", t) + gval(t, v, et) for k, t, v, et in small)
    write("gguf", "smollm2_header_no_data.gguf", head + descs)
    write("gguf", "tiny_llama.gguf", tiny_llama())
    write("gguf", "lora_small.gguf", gguf_lora([(0, "q"), (0, "k"), (1, "down")]))
    write("gguf", "lora_small_f16.gguf", gguf_lora([(1, "gate"), (1, "up"), (0, "v"), (0, "o")], r=1,
                                                   alpha=0.0, ttype="F16"))
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["python3", os.path.join(ROOT, "tools", "make_bad_gguf.py"), tmp], check=True)
        for n in sorted(os.listdir(tmp)):
            write("gguf", "bad_" + n.replace("bad_", ""), open(os.path.join(tmp, n), "rb").read()[:768])

    # safetensors
    real = os.path.join(ROOT, "data", "lora", "seed1", "adapters", "task", "adapter_model.safetensors")
    with open(real, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        hdr = json.loads(f.read(n))
    layer0 = {k: v for k, v in hdr.items() if k == "__metadata__" or ".layers.0." in k}
    hs = json.dumps(layer0, separators=(",", ":")).encode()
    write("safetensors", "adapter_layer0_header_cut.safetensors", struct.pack("<Q", len(hs)) + hs + b"\0" * 64)
    write("safetensors", "f32_f16.safetensors",
          safetensors([("a", "F32", [2, 3], f32s(6, 1)), ("b", "F16", [3], b"\x00\x3c\x00\xc0\x00\x7c")],
                      {"format": "pt"}))
    write("safetensors", "bf16_f64_scalar.safetensors",
          safetensors([("w", "BF16", [2, 2], b"\x80\x3f" * 4), ("x", "F64", [], struct.pack("<d", 2.5)),
                       ("z", "F32", [0, 4], b"")]))
    write("safetensors", "int_bool.safetensors",
          safetensors([("i", "I32", [2], struct.pack("<ii", -1, 7)), ("m", "BOOL", [3], b"\x01\x00\x01"),
                       ("u", "U8", [1, 1], b"\x05")]))
    write("safetensors", "empty.safetensors", safetensors([], {}))
    write("safetensors", "peft_small.safetensors", safetensors(peft_tensors([(0, "q"), (1, "down")])))

    # peft
    cfg = json.load(open(os.path.join(ROOT, "data", "lora", "seed1", "adapters", "task", "adapter_config.json")))
    cfg["r"], cfg["lora_alpha"] = 2, 4
    all_mods = [(l, r) for l in (0, 1) for r in SMALL]
    write("peft", "all_modules_f32.bin", peft_seed(cfg, safetensors(peft_tensors(all_mods))))
    c2 = dict(cfg, use_rslora=True, rank_pattern={"q_proj": 1, "layers\\.1\\.mlp\\.down_proj": 1},
              alpha_pattern={"k_proj": 8.5})
    mods = [(0, "q"), (0, "k"), (1, "down")]
    st = peft_tensors([(0, "k")]) + peft_tensors([(0, "q"), (1, "down")], r=1)
    write("peft", "patterns_rslora.bin", peft_seed(c2, safetensors(sorted(st), {"format": "pt"})))
    write("peft", "f16_one_module.bin", peft_seed(cfg, safetensors(peft_tensors([(1, "o")], dt="F16"))))
    c3 = dict(cfg, use_dora=True)
    write("peft", "dora_rejected.bin", peft_seed(c3, safetensors(peft_tensors([(0, "v")]))))

    # tokenizer
    cases = json.load(open(os.path.join(ROOT, "tests", "fixtures", "tokenizer_cases.json")))
    seen = set()
    i = 0
    for c in cases:
        t = c["text"].encode("utf-8", "surrogatepass")
        if t in seen or len(t) > 512:
            continue
        seen.add(t)
        flags = (1 if c.get("special") else 0) | (2 if i % 5 == 0 else 0)
        write("tokenizer", f"case_{i:03d}.txt", bytes([flags]) + t)
        i += 1
        if i >= 60:
            break
    write("tokenizer", "invalid_utf8.txt", b"\x00ab\xc3(\xf0\x9f\x98 \xff\xfe\xc0\x80 12345 it's")
    write("tokenizer", "chatml.txt", b"\x01<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")

    # fvec
    vals = [i / 8 - 0.5 for i in range(8)]
    write("fvec", "aggregated_f32.bin", b"\x00" + fvec([(1, 0, vals, 0)]))
    write("fvec", "aggregated_bf16_two_layers.bin",
          b"\x01" + fvec([(0, 0, vals, 0), (1, 0, vals[::-1], 0)], dtype=2, hook=1, policy=2, scale=-2.0))
    write("fvec", "distributed_f16_scores_task.bin",
          b"\x01" + fvec([(0, 1, vals[:4], 0.5), (1, 0, vals[4:], 0.25)], distributed=True, task="antonym",
                         scores=True, dtype=1, policy=0))

    # server
    bodies = {
        "chat_basic.json": {"model": "strata", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
        "chat_stream_usage.json": {"model": "strata", "messages": [{"role": "system", "content": "Be brief."},
                                                                   {"role": "user", "content": "Hi"}],
                                   "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 16,
                                   "temperature": 0, "seed": 42},
        "chat_parts.json": {"messages": [{"role": "developer", "content": [{"type": "text", "text": "a"},
                                                                         {"type": "text", "text": "b"}]},
                                         {"role": "assistant", "content": None},
                                         {"role": "user", "content": "<|im_end|>x"}],
                            "max_completion_tokens": 8, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                            "repetition_penalty": 1.1, "stop": ["\n", "END"], "n": 1, "ignore_eos": True},
        "completion_basic.json": {"model": "strata", "prompt": "Write a long story about a dragon.",
                                  "max_tokens": 500, "stream": True},
        "completion_array.json": {"prompt": ["Once upon a time"], "stop": "the", "stream": False,
                                  "stream_options": None, "temperature": 1.5},
        "bad_max_tokens.json": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
        "bad_temperature.json": {"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
        "bad_role.json": {"messages": [{"role": "wizard", "content": "hi"}]},
        "bad_n.json": {"messages": [{"role": "user", "content": "hi"}], "n": 2},
        "bad_parts.json": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
        "bad_stream_options.json": {"prompt": "x", "stream": True, "stream_options": {"include_usage": "yes"}},
        "big_numbers.json": {"prompt": "x", "max_tokens": 18446744073709551615, "seed": -1, "top_k": 1e6},
    }
    for n, b in bodies.items():
        write("server", n, json.dumps(b).encode())
    write("server", "not_json.txt", b"not json")
    write("server", "messages_string.json", b'{"messages": "hi"}')
    write_http()


# --- http (fuzz/fuzz_http.cpp) ---------------------------------------------------------------
# Same order as kMethods / kPaths / Framing / Encoding there.
HTTP_METHODS = ["POST", "GET", "PUT", "OPTIONS", "HEAD", "DELETE", "PATCH", "get"]
HTTP_PATHS = ["/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize", "/v1/models",
              "/v1/models/strata", "/v1/models/other", "/lora-adapters", "/function-vectors", "/openapi.json",
              "/health", "/metrics", "/v1/chat/completions?stream=true", "/v1/completions/", "/HEALTH",
              "/health?x=1", "//health", "/v1/../health", "/v1/models/", "/v1/models/strata/x",
              "/v1/models/%73trata", "/%68ealth", "/v1/chat/completions#frag", "*", "/", "/v1/models/%zz",
              "/tokenize%00", "/v1//completions"]
HTTP_PATH_FROM_BODY = len(HTTP_PATHS)
AUTH = {"right": 0, "wrong": 1, "none": 2, "malformed": 3}
FRAMING = {"exact": 0, "short": 1, "long": 2, "none": 3, "chunked": 4, "bad_chunked": 5, "odd_length": 6,
           "chunked_and_length": 7}
ENCODING = {"identity": 0, "gzip": 1, "deflate": 2, "br": 3, "unknown": 4, "fake_gzip": 5, "trunc_gzip": 6,
            "identity_header": 7}
F_ORIGIN, F_CLOSE, F_JSON, F_HTTP10, F_EXPECT = 1, 2, 4, 8, 16


def http_seed(method, path, body, auth="right", framing="exact", p=0, enc="identity", rep=0, flags=F_JSON,
              wait=False):
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode()
    pi = HTTP_PATH_FROM_BODY if path is None else HTTP_PATHS.index(path)
    return bytes([HTTP_METHODS.index(method) | flags << 3, pi, AUTH[auth] | (16 if wait else 0),
                  FRAMING[framing] | p << 3, ENCODING[enc] | rep << 3]) + body


def write_http():
    user = [{"role": "user", "content": "What is 2+2?"}]
    chat = "/v1/chat/completions"
    cmpl = "/v1/completions"
    seeds = {
        "chat_plain.bin": http_seed("POST", chat, {"messages": user, "max_tokens": 4, "temperature": 0}),
        "chat_stream_chunked_gzip.bin": http_seed(
            "POST", chat, {"model": "strata", "messages": user, "max_tokens": 4, "stream": True,
                           "stream_options": {"include_usage": True}}, framing="chunked", p=5, enc="gzip"),
        "completion_stream_deflate.bin": http_seed(
            "POST", cmpl, {"prompt": "Once upon a time", "max_tokens": 4, "stream": True}, enc="deflate"),
        "completion_chunked_br.bin": http_seed(
            "POST", cmpl, {"prompt": "The sky is", "max_tokens": 3, "logprobs": 2, "seed": 7},
            framing="chunked", p=3, enc="br"),
        "completion_echo_stop.bin": http_seed(
            "POST", cmpl, {"prompt": ["Hello"], "max_tokens": 4, "echo": True, "stop": ["\n", "."]},
            framing="chunked", p=14),
        "tokenize.bin": http_seed("POST", "/tokenize", {"content": "Hello world", "add_special": True}),
        "detokenize_chunked.bin": http_seed("POST", "/detokenize", {"tokens": [1, 2, 3, 100]},
                                            framing="chunked", p=1),
        "models_get.bin": http_seed("GET", "/v1/models", b"", flags=0),
        "model_head.bin": http_seed("HEAD", "/v1/models/strata", b"", flags=0),
        "lora_adapters.bin": http_seed("GET", "/lora-adapters", b"", flags=0),
        "openapi.bin": http_seed("GET", "/openapi.json", b"", flags=F_CLOSE),
        "metrics.bin": http_seed("GET", "/metrics", b"", flags=0),
        "health_no_key_http10.bin": http_seed("GET", "/health", b"", auth="none", flags=F_HTTP10),
        "preflight.bin": http_seed("OPTIONS", chat, b"", auth="none", flags=F_ORIGIN),
        "smuggle_wrong_key.bin": http_seed("POST", cmpl, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                                           auth="wrong"),
        "put_405.bin": http_seed("PUT", cmpl, {"prompt": "x"}, framing="chunked", p=2),
        "unknown_route_404.bin": http_seed("POST", "/", {"prompt": "x"}),
        "get_with_body_400.bin": http_seed("GET", "/v1/models", "xyz"),
        "gzip_bomb_413.bin": http_seed("POST", chat, "a" * 64, enc="gzip", rep=15),
        "chunked_gzip_bomb_413.bin": http_seed("POST", "/tokenize", "b" * 200, framing="chunked", p=31,
                                               enc="gzip", rep=9),
        "length_too_large.bin": http_seed("POST", cmpl, {"prompt": "x", "max_tokens": 1}, framing="long", p=3, wait=True),
        "length_short.bin": http_seed("POST", "/tokenize", {"content": "abc"}, framing="short"),
        "bad_chunk_size.bin": http_seed("POST", chat, {"messages": user}, framing="bad_chunked", p=3, wait=True),
        "chunk_without_crlf.bin": http_seed("POST", "/tokenize", {"content": "abc"}, framing="bad_chunked", p=7),
        "unknown_encoding.bin": http_seed("POST", "/tokenize", {"content": "abc"}, enc="unknown"),
        "gzip_header_raw_body.bin": http_seed("POST", "/tokenize", {"content": "abc"}, enc="fake_gzip"),
        "gzip_truncated.bin": http_seed("POST", cmpl, {"prompt": "abc", "max_tokens": 2}, enc="trunc_gzip"),
        "expect_continue.bin": http_seed("POST", chat, {"messages": user, "max_tokens": 2}, flags=F_EXPECT | F_JSON),
        "chat_json_mode.bin": http_seed(
            "POST", chat, {"messages": user, "max_tokens": 4, "response_format": {"type": "json_object"}}),
        "chat_tools.bin": http_seed(
            "POST", chat, {"messages": user, "max_tokens": 4, "tool_choice": "auto",
                           "tools": [{"type": "function", "function": {
                               "name": "add", "description": "adds",
                               "parameters": {"type": "object", "properties": {"a": {"type": "number"}},
                                              "required": ["a"]}}}]}),
        "chat_n2_logprobs.bin": http_seed(
            "POST", chat, {"messages": user, "max_tokens": 2, "n": 2, "logprobs": True, "top_logprobs": 2}),
        "chat_hooks.bin": http_seed("POST", chat, {"messages": user, "max_tokens": 2, "lora": [{"id": 0}],
                                                   "fv": [{"id": 3, "scale": 2}]}),
        "chunked_and_length.bin": http_seed("POST", cmpl, {"prompt": "x", "max_tokens": 2},
                                            framing="chunked_and_length", p=4),
        "path_from_body.bin": http_seed("GET", None, "/v1/models/strata?a=%20b\n", flags=0),
        "odd_length.bin": http_seed("POST", "/tokenize", {"content": "abc"}, framing="odd_length", p=0, wait=True),
        "no_length_post.bin": http_seed("POST", "/tokenize", {"content": "abc"}, framing="none"),
        "malformed_auth.bin": http_seed("GET", "/v1/models", b"", auth="malformed", flags=0),
    }
    for n, b in seeds.items():
        write("http", n, b)


if __name__ == "__main__":
    main()
