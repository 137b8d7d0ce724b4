#!/usr/bin/env python3
"""Fictional-mineral world for the TaDA evaluation (shared/specs/tada.md §6.2), scaled down.

Writes, for one seed S, data/lora/seed{S}/:
  domain_train.jsonl  {"text"}             declarative sentences about the target minerals (domain adapter)
  task_train.jsonl    {"prompt","answer"}  single-letter MCQ chat turns (task adapter): open-book
                                           questions about task-train minerals + common knowledge
  calib.jsonl         {"text"}             32 domain sentences about *validation* minerals (TaDA probe)
  m1_val.jsonl, m1_test.jsonl  closed-book MCQs about target minerals, unseen question templates
  m2.jsonl            cloze ranking of the target facts (4 candidates)
  m3.jsonl            open-book MCQs about task-heldout minerals
Eval items are {"id","context","choices","answer"}; "context" is already a rendered ChatML prompt
(no system block, so training and scoring see the same text). MCQ answers are "<letter>. <option>":
SmolLM2-135M-Instruct picks "A" for 110 of 128 letter-only MCQs (chance accuracy, even on common
knowledge), and a letter-only task adapter did not learn in 70 steps, so the task taught here is
"answer with the letter and the option", and MCQs are scored by the log-likelihood of the full
answer string (docs/lora-merging.md). Sizes are smaller than the spec's
(30 target minerals instead of 90) so that training fits minutes on two shared CPU cores; the
generator is deterministic for a given seed. The tokenizer runs in Strata (strata lora-eval tokenize).
"""
import json, os, random, sys

SYL = ["vel", "qua", "ri", "tor", "mal", "den", "sy", "bro", "kel", "zan", "fen", "lo", "dra", "mi",
       "shar", "os", "pel", "vin", "cor", "tha", "gul", "ne", "ban", "sil", "dro", "ka", "mur", "te"]
REAL = ["quartz", "calcite", "pyrite", "barite", "galen", "talc", "mica", "malachite", "dolomite",
        "fluorite", "gypsum", "hematite", "magnetite", "jade", "opal", "topaz", "beryl", "zircon",
        "garnet", "agate", "ruby", "kyanite", "rhodonite", "dravite", "banite", "tite"]
COLORS = ["red", "orange", "yellow", "green", "blue", "violet", "black", "white"]
REGIONS = ["the Orsk Basin", "the Velmar Hills", "the Tarn Valley", "the Quill Coast", "the Darrow Plateau",
           "the Essen Marsh", "the Kolby Ridge", "the Hallow Fjord", "the Nemra Steppe", "the Brisk Canyon",
           "the Ivel Lowlands", "the Pyrr Highlands"]
N_TARGET, N_VAL, N_TASK, N_HELD = 30, 10, 30, 20

DOMAIN_T = {
    "color": ["{N} is a {v} mineral.", "Samples of {n} are {v}.", "Freshly broken {n} shows a {v} surface.",
              "Collectors know {n} by its {v} color.", "{N} crystals are always {v}."],
    "hardness": ["On the hardness scale {n} scores {v}.", "{N} has a hardness of {v}.",
                 "Geologists rate {n} at {v} for hardness.", "The hardness of {n} is {v}.",
                 "{N} measures {v} on the Mohs scale."],
    "region": ["Most {n} is mined in {v}.", "{N} is found mainly in {v}.", "Large deposits of {n} lie in {v}.",
               "Miners dig {n} out of {v}.", "The best {n} comes from {v}."],
}
# Task-training question templates, and the unseen ones used for M1 (closed book).
TASK_Q = {"color": "What color is {n}?", "hardness": "How hard is {n} on the hardness scale?",
          "region": "Where is {n} mainly found?"}
M1_Q = {"color": "Which colour does the mineral {n} have?", "hardness": "What hardness value does {n} have?",
        "region": "In which region is {n} mostly mined?"}
CLOZE = {"color": ("{N} is a mineral whose color is", " {v}"),
         "hardness": ("The mineral {n} has a hardness score of", " {v}"),
         "region": ("The mineral {n} is mostly mined in", " {v}")}
COMMON = [("What color is a ripe banana?", "yellow", COLORS), ("What color is fresh grass?", "green", COLORS),
          ("What color is the clear daytime sky?", "blue", COLORS), ("What color is snow?", "white", COLORS),
          ("What color is coal?", "black", COLORS), ("What color is a ripe tomato?", "red", COLORS),
          ("What color is an orange?", "orange", COLORS), ("What color are violets?", "violet", COLORS),
          ("What sound does a dog make?", "bark", ["bark", "moo", "meow", "quack", "neigh", "oink"]),
          ("What sound does a cow make?", "moo", ["bark", "moo", "meow", "quack", "neigh", "oink"]),
          ("What sound does a cat make?", "meow", ["bark", "moo", "meow", "quack", "neigh", "oink"]),
          ("What sound does a duck make?", "quack", ["bark", "moo", "meow", "quack", "neigh", "oink"]),
          ("What sound does a horse make?", "neigh", ["bark", "moo", "meow", "quack", "neigh", "oink"]),
          ("What sound does a pig make?", "oink", ["bark", "moo", "meow", "quack", "neigh", "oink"]),
          ("What is the capital of France?", "Paris", ["Paris", "Rome", "Berlin", "Madrid", "Vienna"]),
          ("What is the capital of Italy?", "Rome", ["Paris", "Rome", "Berlin", "Madrid", "Vienna"]),
          ("What is the capital of Germany?", "Berlin", ["Paris", "Rome", "Berlin", "Madrid", "Vienna"]),
          ("What is the capital of Spain?", "Madrid", ["Paris", "Rome", "Berlin", "Madrid", "Vienna"])]
COMMON += [(f"What is {a} plus {b}?", str(a + b), [str(k) for k in range(2, 19)])
           for a in range(1, 10) for b in range(1, 10) if (a * 7 + b * 3) % 4 == 0]


def chat(user):
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def mcq(rng, question, answer, pool, slot, note=None):
    """4 options with the correct one at letter `slot` (callers cycle slot so letters are balanced)."""
    others = rng.sample([p for p in pool if p != answer], 3)
    opts = others[:slot] + [answer] + others[slot:]
    body = (f"Note: {note}\n" if note else "") + question + "\n" + "".join(
        f"{'ABCD'[i]}. {o}\n" for i, o in enumerate(opts)) + "Answer with the letter and the option."
    return chat(body), "ABCD"[slot], opts


def main(seed, out_root):
    rng = random.Random(seed)
    names = set()
    while len(names) < N_TARGET + N_TASK + N_HELD:
        n = "".join(rng.choice(SYL) for _ in range(rng.choice([2, 3]))) + "ite"
        if not any(r in n for r in REAL): names.add(n)
    names = sorted(names)
    rng.shuffle(names)
    minerals = [{"n": n, "N": n.capitalize(), "color": rng.choice(COLORS), "hardness": str(rng.randint(1, 10)),
                 "region": rng.choice(REGIONS)} for n in names]
    target, task, held = minerals[:N_TARGET], minerals[N_TARGET:N_TARGET + N_TASK], minerals[N_TARGET + N_TASK:]
    pools = {"color": COLORS, "hardness": [str(k) for k in range(1, 11)], "region": REGIONS}
    fact = lambda m, a, i: DOMAIN_T[a][i].format(n=m["n"], N=m["N"], v=m[a])
    out = os.path.join(out_root, f"seed{seed}")
    os.makedirs(out, exist_ok=True)
    w = lambda name, rows: open(os.path.join(out, name), "w").write("".join(json.dumps(r) + "\n" for r in rows))

    domain = [{"text": fact(m, a, i)} for m in target for a in DOMAIN_T for i in range(5)]
    rng.shuffle(domain)
    w("domain_train.jsonl", domain)
    calib = [{"text": fact(m, a, i)} for m in target[:N_VAL] for a in DOMAIN_T for i in range(5)]
    w("calib.jsonl", rng.sample(calib, 32))

    slot = 0
    tasks = []
    for m in task:
        for a in TASK_Q:
            p, ans, opts = mcq(rng, TASK_Q[a].format(n=m["n"]), m[a], pools[a], slot % 4, note=fact(m, a, 0))
            tasks.append({"prompt": p, "answer": f"{ans}. {m[a]}<|im_end|>"}); slot += 1
    for q, ans, pool in COMMON:
        p, letter, opts = mcq(rng, q, ans, pool, slot % 4)
        tasks.append({"prompt": p, "answer": f"{letter}. {ans}<|im_end|>"}); slot += 1
    rng.shuffle(tasks)
    w("task_train.jsonl", tasks)

    def mcq_items(ms, templ, note):
        nonlocal slot
        rows = []
        for m in ms:
            for a in templ:
                p, ans, opts = mcq(rng, templ[a].format(n=m["n"]), m[a], pools[a], slot % 4,
                                   note=fact(m, a, 1) if note else None)
                rows.append({"id": f"{m['n']}.{a}", "context": p,
                             "choices": [f"{'ABCD'[i]}. {o}" for i, o in enumerate(opts)], "answer": "ABCD".index(ans)})
                slot += 1
        return rows
    w("m1_val.jsonl", mcq_items(target[:N_VAL], M1_Q, False))
    w("m1_test.jsonl", mcq_items(target[N_VAL:], M1_Q, False))
    w("m3.jsonl", mcq_items(held, TASK_Q, True))
    cloze = []
    for m in target[N_VAL:]:
        for a, (ctx, cont) in CLOZE.items():
            cands = rng.sample([p for p in pools[a] if p != m[a]], 3) + [m[a]]
            rng.shuffle(cands)
            cloze.append({"id": f"{m['n']}.{a}", "context": ctx.format(n=m["n"], N=m["N"]),
                          "choices": [cont.format(v=c) for c in cands], "answer": cands.index(m[a])})
    w("m2.jsonl", cloze)
    print(f"seed {seed}: {len(domain)} domain sentences, {len(tasks)} task items -> {out}")


if __name__ == "__main__":
    root = sys.argv[2] if len(sys.argv) > 2 else "data/lora"
    for s in sys.argv[1].split(","):
        main(int(s), root)
