#!/usr/bin/env python3
"""Reference fixtures for src/tokenizer/ tests (issue #15), never produced by our own code.

  gemma3 [MODEL]   tests/fixtures/reference/gemma3-270m-tokenizer.json: what llama.cpp's own
                   tokenizer (through llama-cpp-python, vocab only) does with Gemma 3 270M's
                   SentencePiece vocabulary (default MODEL models/gemma-3-270m-q4_k_m.gguf,
                   fetched by `make models`).
  qwen2-pre        tests/fixtures/reference/qwen2-pretokenizer.json: the pieces the qwen2
                   pre-tokenizer regex of Qwen2/2.5/3's tokenizer.json cuts strings into,
                   applied with the Python `regex` module (pip install regex; written with
                   regex 2026.12.2).

Usage (from the repo root, with llama-cpp-python installed in .venv):
    .venv/bin/python tools/dump_tokenizer_reference.py gemma3 [MODEL]
    .venv/bin/python tools/dump_tokenizer_reference.py qwen2-pre

gemma3: for each string (stored as "text", or as "hex" when it is not valid UTF-8) the file
holds the ids of llama_tokenize for the four (add_special, parse_special) combinations, keyed
"ids_<add_special><parse_special>" with 0/1 ("ids_10": BOS added, control-token text kept as
plain text), and the bytes (hex) of llama_detokenize(remove_special = false) over ids_11 with
unparse_special on ("decode_11") and over ids_00 with it off ("decode_00"). It also holds
token_to_piece (special on and off) for a sample of ids and the end-of-generation ids.

qwen2-pre: {"pattern": ..., "cases": [{"text": ..., "pieces": [...]}]}. The regex and
llama.cpp's hand-written matcher (which our code follows) differ where Unicode case folding
or the Unicode tables do: "'ſ" (U+017F folds to s for the regex only), and code points one
side's tables do not know yet. The strings avoid those (anything unassigned in Python's own
unicodedata, the oldest of the three tables), and invalid UTF-8 (a Python str cannot hold it).

Deterministic: generated strings come from fixed seeds.
"""
import ctypes
import hashlib
import json
import random
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
GEMMA3_OUT = ROOT / "tests/fixtures/reference/gemma3-270m-tokenizer.json"
QWEN2_OUT = ROOT / "tests/fixtures/reference/qwen2-pretokenizer.json"

# Qwen2/2.5/3 tokenizer.json, pre_tokenizer Split pattern (llama.cpp quotes it in
# llama-vocab.cpp next to its adapted form for LLAMA_VOCAB_PRE_TYPE_QWEN2).
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TURN = "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n"

PLAIN = [
    # empty and single characters
    "", " ", "a", "A", "I", "!", "?", ".", "\n", "\t", "\r", "0", "▁", "_", "é", "日", "😀",
    # whitespace runs: leading, trailing, multiple, mixed
    "  ", "   ", "    ", " " * 31, " " * 32, " " * 33, " " * 100, "\t\t", "\t" * 40,
    "\n\n", "\n\n\n", "\n" * 31, "\n" * 32, "\n" * 50, "\r\n", "\r\n\r\n", " \n", "\n ",
    " \t \n ", "  leading", "   three leading", "trailing ", "trailing   ", " both ",
    "a  b", "a   b", "a    b", "a\tb", "a \tb", "a\t b", "a\n b", "a \n b", "end\n",
    "end \n\n", "word\r\nword", "    indented", "\tindented", "\n\nafter newlines",
    "Hello  world", "Hello \n world", " \u00a0 nbsp", "\u00a0nbsp\u00a0", "a\u2003em",
    "ideographic\u3000space", "line\u2028sep", "\x0bvtab\x0cff", "\x00nul\x01ctrl\x1f",
    " x", "  x  ", "x ", "\n x \n",
    # ASCII prose and punctuation
    "Hello", " Hello", "Hello world", "hello world", "HELLO WORLD", "Hello, world!",
    "What is the capital of France?", "The capital of France is",
    "The quick brown fox jumps over the lazy dog",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Write a haiku about the ocean.\n", "Q: What's 2+2?\nA: It's 4.",
    "Mr. Smith's dog; (really) [sic] {x}", "e-mail: someone@example.com",
    "http://x.y/z?a=1&b=2", "~`!@#$%^&*()_+-={}|[]\\:\";'<>?,./", "a--b__c..d",
    "\"quoted\"", "don't", "DON'T", "'s 't 're 've 'm 'll 'd", "rock'n'roll",
    "C'est la vie", "...", "?!", "—", "…",
    # digits
    "7", "42", "123456789", "3.14159", "1,000,000", "2024-01-31", "v1.2.3",
    "x=10;y=20", "   42", " 1 2 3 ", "abc123def", "١٢٣ Arabic-Indic digits", "½ ¾",
    "Ⅻ roman", "①②③",
    # code
    "def foo(x):\n    return x + 1\n",
    "for i in range(10):\n\tprint(i ** 2)\n",
    "class A(object):\n    def __init__(self):\n        self.x = [1, 2, 3]\n",
    "#include <stdio.h>\nint main(void) {\n    printf(\"hi\\n\");\n    return 0;\n}\n",
    "if (a && b || !c) { x += 1; } else { x -= 1; }",
    "std::vector<int> v{1,2,3}; auto it = v.begin();",
    '{"key": "value", "n": 12, "arr": [1, 2.5, null, true], "nested": {"a": {}}}',
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "<html><body><p class=\"x\">Hi</p></body></html>",
    "<table><tr><td>1</td></tr></table>", "<h1>Title</h1>\n<strong>bold</strong>",
    "```python\nprint('hello')\n```", "$ ls -la | grep foo > out.txt 2>&1",
    "// comment\n/* block */", "a->b->c", "i++; --j;",
    # accented Latin, other scripts
    "café", "naïve résumé", "Ångström", "Straße", "Crème brûlée", "Łódź",
    "İstanbul ıi", "Ελληνικά γλώσσα", "Привет, мир!", "Съешь же ещё этих мягких французских булок",
    # CJK
    "日本語のテキスト", "中文字符测试", "你好，世界！", "한국어 텍스트", "東京 と 大阪",
    "全角：ＡＢＣ１２３！", "Mixed English 和 中文 with ελληνικά",
    # RTL and Indic
    "مرحبا بالعالم", "السلام عليكم ورحمة الله", "שלום עולם", "हिन्दी पाठ",
    "नमस्ते, आप कैसे हैं?", "ภาษาไทย", "ქართული", "বাংলা",
    # emoji and symbols
    "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "I ❤️ NY", "🇫🇷🇯🇵", "emoji😀in😀text", "🙂🙃 🤔",
    "★☆♥♦", "∑∫√∞≠≤≥", "→⇒↔", "©®™", "€$£¥₹", "°C ±5%", "😀" * 20,
    # combining marks and rare code points (byte fallback)
    "e\u0301", "cafe\u0301", "a\u0300\u0301\u0302", "\u0301alone",
    "Z\u0351\u0352\u0353a\u0354\u0355lgo", "\u200bzero\u200bwidth", "\ufeffBOM", "\ufffd",
    "\U0001d54f\U0001d560", "\U00020000 ext-B", "\ue000 private use", "\U0010fffd last plane",
    "\u0378 unassigned", "\U0001fae8\U0001faef", "\U000e0041 tag", "\u2fff\u31ef",
    "𓀀𓀁 hieroglyphs", "ꙮ", "\U0001f9ff\U0001fa70",
    # long
    "a" * 200, "ab" * 150, "x" * 1000, "Supercalifragilisticexpialidocious" * 5,
    "-" * 80, "=" * 64 + "\n", "1" * 100,
    # literal text that looks like vocab entries
    "<0x41>", "<0x0A>", "▁▁", "▁hello", "[multimodal]", "<unused0>x", "<s>", "</s>",
    "<mask>", "<unk>",
]

# Strings with control/special-token text: parse_special decides whether they become tokens.
SPECIAL = [
    "<bos>", "<eos>", "<pad>", "<unk>", "<start_of_turn>", "<end_of_turn>",
    "<start_of_turn>user\nHi<end_of_turn>\n", TURN.format("What is the capital of France?"),
    "<bos>" + TURN.format("Hello"), "text<end_of_turn>more", "<start_of_turn><end_of_turn>",
    "<start_of_turn>>", "<<end_of_turn>", "<start_of_turn", "end_of_turn>",
    "<eos><eos>", " <end_of_turn> ", "a<start_of_turn>b<start_of_turn>c",
    "<end_of_turn>\n<start_of_turn>model\n", "<unused5> and <unused42>",
    "</s> end", "x</s>y", "<mask>ed", "<start_of_image>", "<end_of_image>",
    "<table>\n<tr>", "  <start_of_turn>  ", "\n<start_of_turn>\n\n",
    "<start_of_turn>system\nBe brief.<end_of_turn>\n",
]

PIECES = [
    "the", " the", "The", " of", "and", " a", "in", " to", "is", "I", "you", "it's",
    "café", "Ελλάδα", "Москва", "東京", "서울", "القاهرة", "हिन्दी", "😀", "👍🏽",
    "0", "7", "42", "3.14", ",", ".", "!", "?", ";", ":", "'", "\"", "(", ")", "<", ">",
    "/", "\\", "-", "_", "=", "+", "*", "&", "%", "$", "#", "@", "▁",
    " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n", "\u00a0", "\u3000", "e\u0301",
    "<start_of_turn>", "<end_of_turn>", "<eos>", "<table>", "</s>", "<0x41>",
]

# Invalid UTF-8 (stored as hex).
INVALID = [
    b"a\x80b", b"\xe2\x82", b"x\xed\xa0\x80y", b"\xf4\x90\x80\x80 1\x80", b"\xff", b"a\xffb",
    b"\xc0\xc1", b"\xc3", b"\xc3(", b"\xf0\x9f\x98", b"\xf0\x9f\x98 x", b"\xe0\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\xfe\xfe\xff\xff", b"caf\xe9", b"\x80\x80\x80",
    b"<start_of_turn>\xff<end_of_turn>", b"\xf0abc", b"ok \xed\xbf\xbf ok",
]


def generated(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 16)
        out.append("".join(rng.choice(PIECES) for _ in range(k)))
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x4FF), (0x600, 0x6FF), (0x900, 0x97F),
              (0x2000, 0x206F), (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xACFF),
              (0x1F300, 0x1F64F), (0x0300, 0x036F), (0x2150, 0x218F), (0xFF00, 0xFFEF),
              (0x10000, 0x1FFFF), (0xE000, 0xE0FF)]
    for _ in range(n // 2):
        s = []
        for _ in range(rng.randint(1, 24)):
            lo, hi = rng.choice(blocks)
            c = rng.randint(lo, hi)
            if 0xD800 <= c <= 0xDFFF:
                continue
            s.append(chr(c))
        out.append("".join(s))
    return out


def write_json(path, out):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:  # one case / piece per line: readable diffs
        f.write("{\n")
        items = list(out.items())
        for n, (k, v) in enumerate(items):
            comma = "," if n + 1 < len(items) else ""
            if isinstance(v, list) and v and isinstance(v[0], (dict, list)):
                rows = ",\n".join(json.dumps(x, ensure_ascii=False) for x in v)
                f.write(f'"{k}": [\n{rows}\n]{comma}\n')
            else:
                f.write(f'"{k}": {json.dumps(v, ensure_ascii=False)}{comma}\n')
        f.write("}\n")
    json.loads(path.read_text(encoding="utf-8"))  # the file must parse


def gemma3(model):
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llm.n_vocab()

    def detokenize(ids, unparse_special):
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        size = 64 + 32 * len(ids)
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, unparse_special)
            if n >= 0:
                return buf.raw[:n]
            size = -n + 1

    def piece(i, special):
        buf = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(vocab, i, buf, 256, 0, special)
        assert n >= 0, (i, n)
        return buf.raw[:n]

    cases = []
    seen = set()

    def add(raw):
        if raw in seen:
            return
        seen.add(raw)
        case = {}
        try:
            case["text"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            case["hex"] = raw.hex()
        for add_special in (0, 1):
            for parse_special in (0, 1):
                ids = llm.tokenize(raw, add_bos=bool(add_special), special=bool(parse_special))
                case[f"ids_{add_special}{parse_special}"] = list(ids)
        case["decode_11"] = detokenize(case["ids_11"], True).hex()
        case["decode_00"] = detokenize(case["ids_00"], False).hex()
        cases.append(case)

    for t in PLAIN + SPECIAL:
        add(t.encode("utf-8"))
    for b in INVALID:
        add(b)
    for t in generated(random.Random(20250615), 60):
        add(t.encode("utf-8"))

    rng = random.Random(7)
    sample = sorted(set(list(range(0, 600)) + [rng.randrange(n_vocab) for _ in range(1500)]
                        + list(range(n_vocab - 50, n_vocab))))
    pieces = [[i, piece(i, True).hex(), piece(i, False).hex()] for i in sample]
    eog = [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)]

    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    out = {
        "model": model.name,
        "model_sha256": sha,
        "llama_cpp_python": llama_cpp.__version__,
        "n_vocab": n_vocab,
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "eog": eog,
        "cases": cases,
        "pieces": pieces,
    }
    write_json(GEMMA3_OUT, out)
    print(f"wrote {len(cases)} strings x 4 modes and {len(pieces)} pieces to "
          f"{GEMMA3_OUT.relative_to(ROOT)} ({GEMMA3_OUT.stat().st_size} bytes; llama-cpp-python "
          f"{llama_cpp.__version__}; eog {eog})")


QWEN2_EXTRA = [
    "'S 'T 'RE 'Ve 'M 'LL 'D", "I'M HERE", "They'RE", "it'S", "'s's", "x'll've", "'Sup",
    "WE'LLBE", "'Tis", "'dEm", "O'Mally's", "'VEry", "'REd", "'x'Y'Z",
    "12345", "x1y22z333", "a1 2b", " 12 ", "3.14", "½⅓", "٣٤٥", "Ⅻ",
    "!!!\n\n", " ?\n", "...\r\n", " -\r\n\r\nx", "$hello", "#tag", "@user", "(parens)",
    "\u00a0word", "\u3000word", "  \n  x", "\n\n\n", " \n \n ", "\t\tx", "x\t\t", "a\r\nb",
    "\r\r\n\n", "  ", "   end", "end   ", "a  b  c", "\u2028x", "x\u0085y", "-->", "<|im_start|>",
    "<|im_end|>\n<|im_start|>assistant\n", "<think>\n\n</think>\n\n", "e\u0301t\u00e9",
    "\u0915\u093f\u0924\u093e\u092c", "\U0001f600\U0001f600 x", "a\U0001f600b", "\U0001f44d\U0001f3fd ok",
    "snake_case_name", "camelCaseName", "kebab-case-name", "path/to/file.txt", "a.b.c",
    "def f(x):\n    return x*2\n", "if (x) {\n\ty = 1;\n}\n", "SELECT a, b FROM t;",
]


def qwen2_pre():
    import unicodedata

    import regex

    pattern = regex.compile(QWEN2_PATTERN)
    texts = []
    for t in PLAIN + SPECIAL + QWEN2_EXTRA + generated(random.Random(424242), 60):
        # Known regex-vs-llama.cpp differences (see the module docstring) are left out, and
        # so are code points unassigned in Python's (older) Unicode tables: their class
        # depends on the Unicode version of each side (ICU for us, the regex module here).
        if "\u017f" in t or t in texts or any(unicodedata.category(c) == "Cn" for c in t):
            continue
        texts.append(t)
    cases = []
    for t in texts:
        pieces = pattern.findall(t)
        assert "".join(pieces) == t, t  # the pattern covers every character
        cases.append({"text": t, "pieces": pieces})
    write_json(QWEN2_OUT, {"pattern": QWEN2_PATTERN, "regex": regex.__version__, "cases": cases})
    print(f"wrote {len(cases)} strings to {QWEN2_OUT.relative_to(ROOT)} "
          f"({QWEN2_OUT.stat().st_size} bytes; regex {regex.__version__})")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "gemma3":
        gemma3(Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "models/gemma-3-270m-q4_k_m.gguf")
    elif mode == "qwen2-pre":
        qwen2_pre()
    else:
        sys.exit("usage: dump_tokenizer_reference.py gemma3 [MODEL] | qwen2-pre")


if __name__ == "__main__":
    main()
