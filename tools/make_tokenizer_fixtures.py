#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer_cases.json: token ids that llama.cpp's own tokenizer
(through llama-cpp-python, vocab only) produces for a few hundred strings on the default
model, so src/tokenizer/tokenizer_test.cpp can require identical ids from ours.

Usage (from the repo root, with llama-cpp-python installed in .venv):
    .venv/bin/python tools/make_tokenizer_fixtures.py [models/SmolLM2-135M-Instruct.Q4_1.gguf]

Output: a JSON list of {"text": str, "special": bool, "ids": [int]}; "special" is the
parse_special flag (control-token strings matched whole). Deterministic: the generated
cases come from a fixed seed, so re-running with the same llama.cpp gives the same file.
"""
import json
import random
import sys
from pathlib import Path

from llama_cpp import Llama, llama_model_get_vocab, llama_vocab_is_eog
import llama_cpp

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "tests/fixtures/tokenizer_cases.json"

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chat(user):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


PLAIN = [
    # spec §8 sanity strings
    "\n", "What is the capital of France?", "Hello world", "The capital of France is",
    "Hello world! 123", "  leading spaces", "The quick brown fox jumps over the lazy dog",
    "Write a haiku about the ocean.\n", "hello world", "Hi there",
    "'s 't 're 've 'm 'll 'd", "Tab\there\nNewline\n\nDouble", "Hello, 世界!",
    # ASCII and punctuation
    "a", "A", "I", " ", "!", "?!", "...", "Hello", " Hello", "HELLO WORLD", "hello, world.",
    "Mr. Smith's dog; (really) [sic] {x}", "e-mail: someone@example.com", "http://x.y/z?a=1&b=2",
    "#!/usr/bin/env bash", "~`!@#$%^&*()_+-={}|[]\\:\";'<>?,./", "a--b__c..d", "\"quoted\"",
    "C'est la vie", "rock'n'roll", "don't", "DON'T", "I'M HERE", "They'RE", "we've", "You'll",
    "she'd", "it's", "IT'S", "'", "''", "'''s", "x's", " 's", "''ll", "'ve'", "'L", "'tis",
    # digits
    "0", "7", "42", "123456789", "3.14159", "1,000,000", "2024-01-31", "v1.2.3", "x=10;y=20",
    "   42", " 1 2 3 ", "abc123def", "١٢٣ Arabic-Indic digits", "²³ superscripts", "½ ¾ fractions",
    "Ⅻ roman numeral", "①②③ circled", "९ devanagari nine",
    # whitespace runs
    "  ", "   ", "\t", "\t\t", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \t \n ",
    "a  b", "a   b", "a\tb", "a \tb", "a\t b", "a\n b", "a \n b", "end  ", "end\n", "end \n\n",
    "word\r\nword", "    indented", "\tindented", "\u00a0nbsp\u00a0", "a\u2003em\u2003space",
    "ideographic\u3000space", "line\u2028sep", "\x0bvtab\x0cff", "\x00nul\x01ctrl\x1f",
    "tail spaces   ", "x \u00a0 y", " \u0085next line",
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
    "```python\nprint('hello')\n```", "$ ls -la | grep foo > out.txt 2>&1",
    "x = lambda a, b: a if a > b else b", "// comment\n/* block */", "a->b->c", "i++; --j;",
    # accented Latin and other scripts
    "café", "naïve résumé", "Ångström", "Straße", "façade", "jalapeño", "Crème brûlée",
    "ÀÉÎÕÜ àéîõü", "Łódź", "İstanbul ıi", "Ðð Þþ Ææ Øø", "Ελληνικά γλώσσα", "Привет, мир!",
    "Съешь же ещё этих мягких французских булок", "日本語のテキスト", "中文字符测试", "한국어 텍스트",
    "مرحبا بالعالم", "שלום עולם", "हिन्दी पाठ", "ภาษาไทย", "ქართული", "Հայերեն", "ᚠᚢᚦᚨᚱᚲ",
    "Mixed English 和 中文 with ελληνικά", "全角：ＡＢＣ１２３！", "…—–„“”‘’«»",
    # emoji
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "I ❤️ NY", "🇫🇷🇯🇵", "emoji😀in😀text", "🙂🙃 🤔",
    "★☆♥♦", "∑∫√∞≠≤≥", "→⇒↔", "©®™", "€$£¥₹", "°C ±5%",
    # combining marks and odd code points
    "e\u0301", "cafe\u0301", "a\u0300\u0301\u0302", "\u0301alone", "n\u0303o",
    "Z\u0351\u0352\u0353a\u0354\u0355lgo", "\u200bzero\u200bwidth", "\u200dzwj", "\ufeffBOM",
    "\ufffd", "\U0001d54f\U0001d560", "\U00020000 ext-B", "\ue000 private use",
    "\U0010fffd last plane", "\u0378 unassigned",
    # long words
    "a" * 200, "ab" * 150, "Supercalifragilisticexpialidocious" * 5, "x" * 1000,
    "Pneumonoultramicroscopicsilicovolcanoconiosis", "😀" * 50, "1" * 100, " " * 100,
    "\n" * 50, "-" * 80, "=" * 64 + "\n",
    # prose
    "The quick brown fox jumps over the lazy dog. " * 3,
    "In 1492, Columbus sailed the ocean blue; he had 3 ships (the Niña, the Pinta and the "
    "Santa María).",
    "Q: What's 2+2?\nA: It's 4.",
]

# Strings containing special-token text: tokenized with special parsing on and off.
SPECIAL = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>\n",
    "text<|im_end|>more", "<|im_start|><|im_end|>", "<|im_start|>>", "<<|im_end|>",
    "<|im_start", "im_start|>", "<|endoftext|><|endoftext|>", " <|im_end|> ",
    "<repo_name>x<reponame>y<file_sep>", "<filename>main.py\n<gh_stars>10",
    "<jupyter_start><jupyter_code>print(1)<jupyter_output>1<empty_output>",
    "<issue_start>bug<issue_comment>fix<issue_closed>", "<jupyter_text><jupyter_script>",
    "a<|im_start|>b<|im_start|>c", "<|im_end|>\n<|im_start|>assistant\n",
    chat("What is the capital of France?"), chat("Hi there"),
    "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nAhoy!<|im_end|>\n",
]

PIECES = [
    "the", " the", "The", " of", "and", " a", "in", " to", "is", "I", "you", "it's", "don't",
    "café", "naïve", "Ελλάδα", "Москва", "東京", "北京", "서울", "القاهرة", "😀", "👍🏽", "🇯🇵",
    "0", "7", "42", "3.14", "1e-9", "2025", ",", ".", "!", "?", ";", ":", "'", "\"", "(", ")",
    "[", "]", "{", "}", "<", ">", "/", "\\", "-", "_", "=", "+", "*", "&", "%", "$", "#", "@",
    " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n", "\u00a0", "\u3000", "e\u0301",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "x", "Z", "QQ", "ab12",
    "<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|im", "|>",
]


def generated(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 16)
        out.append("".join(rng.choice(PIECES) for _ in range(k)))
    # random code points from a few blocks, to stress classification
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x4FF), (0x600, 0x6FF), (0x900, 0x97F),
              (0x2000, 0x206F), (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xACFF),
              (0x1F300, 0x1F64F), (0x0300, 0x036F), (0x2150, 0x218F), (0xFF00, 0xFFEF)]
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


def main():
    llm = Llama(model_path=str(MODEL), vocab_only=True, verbose=False)
    rng = random.Random(20240531)
    cases = []

    def add(text, special):
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)
        cases.append({"text": text, "special": special, "ids": list(ids)})

    for t in PLAIN:
        add(t, False)
    for t in PLAIN[:40]:  # special parsing on must not change plain text
        add(t, True)
    for t in SPECIAL:
        add(t, True)
        add(t, False)
    gen = generated(rng, 120)
    for i, t in enumerate(gen):
        add(t, i % 3 == 0)

    vocab = llama_model_get_vocab(llm.model)
    eog = [i for i in range(llm.n_vocab()) if llama_vocab_is_eog(vocab, i)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(ROOT)} "
          f"({OUT.stat().st_size} bytes; llama-cpp-python {llama_cpp.__version__}; "
          f"eog ids {eog})")


if __name__ == "__main__":
    main()
