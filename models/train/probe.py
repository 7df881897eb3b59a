#!/usr/bin/env python3
"""Where a model's task answers go wrong, token by token (teacher forcing).

For fresh prompts of one task (tasks.py, held-out filler), the model reads the prompt and the
right answer, and each answer position is scored on whether its argmax is the right next token:
exact match under teacher forcing, accuracy per answer position, and for the first answer token
(the one a lookup decides; the rest of a name or code follows by copying) its mean rank, its
accuracy split by the kind of token it is (one character such as " U" or "4", or longer such as
" An")
and, where the prompt holds several facts of the asked kind, whether a wrong first token is the
first token of another fact's answer ("other fact") or of none ("neither").

  /usr/bin/python3 models/train/probe.py --model DIR --task multihop-chain --chunks 7 --words 66

DIR is an HF folder: train.py's hf/ export, or `cacheclip convert M.gguf DIR --format hf`.
Prints one JSON object.

--rewrite KIND (multihop-chain only) asks each prompt's first hop in another form, to tell which
part of the "<a> works with <b>" lookup fails; the key (a) and the distractor pair stay put:
  second-hop     the second hop alone: "Answer: <b> lives in" -> the city
  city-values    "lives in" facts removed, each "works with" fact ends in its pair's city
                 instead of the colleague: "<a> works with <city>" -> the city
  lives-in-city  the same facts worded "<a> lives in <city>" (the lead too)
  lives-in-name  "lives in" facts removed, each "works with" fact worded "<a> lives in <b>":
                 a name again, after the wording the second hop gets right
"""
import argparse
import collections
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import tasks  # noqa: E402

# The sentence of each task whose value follows its key ("<key> works with <value>."; for
# multihop the city that ends the two hops).
FACT = {"multihop": r"lives in", "multihop-chain": r"works with", "multihop-crowd": r"works with", "vartrack-chain": r"VAR \S+ =",
        "needle": r"The special code of \S+ is", "multikey": r"The special code of \S+ is"}


# Each --rewrite kind, and the FACT pattern that finds the facts its first hop chooses between
# (the "lives in" ones, but for city-values, whose cities follow "works with").
REWRITES = {"second-hop": "multihop", "city-values": "multihop-chain", "lives-in-city": "multihop",
            "lives-in-name": "multihop"}


def rewrite(ex, kind):
    """A multihop-chain example with its first hop asked as `kind` says (REWRITES)."""
    lead_m = re.search(r"Answer: (\S+) works with$", ex["question"])
    ans_m = re.fullmatch(r" (\S+)\. \S+ lives in (\S+)", ex["answers"][0])
    if not lead_m or not ans_m:
        raise ValueError("rewrite: not a multihop-chain example")
    a, (b, city) = lead_m.group(1), ans_m.groups()
    docs = "".join(ex["chunks"])
    lives = dict(re.findall(r"(\S+) lives in ([^ .]+)\.", docs))
    pairs = dict(re.findall(r"(\S+) works with ([^ .]+)\.", docs))
    if pairs.get(a) != b or lives.get(b) != city or len(pairs) != 2:
        raise ValueError("rewrite: not a multihop-chain example")
    town = {x: lives[y] for x, y in pairs.items()}  # each subject's pair's city
    chunks = list(ex["chunks"])
    drop_lives = lambda t: re.sub(r" ?\S+ lives in [^ .]+\.", "", t)
    if kind == "second-hop":
        lead, ans = f"{b} lives in", " " + city
    elif kind in ("city-values", "lives-in-city"):
        rel = "works with" if kind == "city-values" else "lives in"
        chunks = [re.sub(r"(\S+) works with [^ .]+\.", lambda m: f"{m.group(1)} {rel} {town[m.group(1)]}.",
                         drop_lives(t)) for t in chunks]
        lead, ans = f"{a} {rel}", " " + city
    elif kind == "lives-in-name":
        chunks = [re.sub(r"(\S+) works with ([^ .]+)\.", r"\1 lives in \2.", drop_lives(t)) for t in chunks]
        lead, ans = f"{a} lives in", " " + b
    else:
        raise ValueError(f"rewrite: unknown kind {kind!r} (expected one of {', '.join(REWRITES)})")
    q = ex["question"][:-len(f"{a} works with")] + lead
    return dict(ex, chunks=chunks, question=q, answers=[ans])


def load_model(folder):
    import torch
    import train
    _, c = train.read_hf_config(folder)
    m = train.Model(c)
    train.init_from_hf(m, folder)
    m.eval()

    def logits(ids):
        with torch.no_grad():
            return m(torch.tensor([ids]))[0]
    return logits


def encode(tok, ex):
    """(prompt ids, answer ids) of an example, tokenized as the engine and training do."""
    return tasks.prompt_ids(tok, ex), tok.encode(ex["answers"][0])


def fact_starts(tok, ex, task):
    """First tokens of the values of every fact of the asked kind in the documents, tokenized
    as the answer is (with its leading space where the answer has one)."""
    pat = FACT.get(task)
    if pat is None:
        return set()
    text = "".join(ex["chunks"])
    lead = ex["answers"][0].startswith(" ")
    return {tok.encode(m.group(1) if lead else m.group(1)[1:])[0]
            for m in re.finditer(r"(?:" + pat + r")( [^ .]+)", text)}


def probe(logits, tok, examples, task):
    """The figures above for `examples`, with `logits(ids)` giving one row of logits per token
    (a tensor-like with .argmax(-1) and indexing)."""
    per_pos = collections.defaultdict(list)
    exact, ranks = 0, []
    by_kind = collections.defaultdict(list)
    picks = collections.Counter()
    for ex in examples:
        ids, ans = encode(tok, ex)
        lg = logits(ids + ans)
        p = len(ids)
        pred = [int(x) for x in lg[p - 1:p - 1 + len(ans)].argmax(-1).tolist()]
        ok = [a == b for a, b in zip(pred, ans)]
        for i, o in enumerate(ok):
            per_pos[i].append(o)
        exact += all(ok)
        first = lg[p - 1]
        ranks.append(int((first > first[ans[0]]).sum()))
        kind = "one character" if len(tok.decode([ans[0]]).strip()) == 1 else "longer"
        by_kind[kind].append(ok[0])
        starts = fact_starts(tok, ex, task)
        if len(starts) > 1:
            picks["right" if ok[0] else ("other fact" if pred[0] in starts else "neither")] += 1
    n = len(examples)
    out = {"task": task, "prompts": n, "exact_match_tf": round(exact / n, 3),
           "per_position": [round(sum(v) / len(v), 3) for _, v in sorted(per_pos.items())],
           "first_token_rank_mean": round(sum(ranks) / n, 2),
           "first_token_by_kind": {k: {"n": len(v), "acc": round(sum(v) / len(v), 3)} for k, v in sorted(by_kind.items())}}
    if picks:
        out["first_token_picks"] = {k: round(v / sum(picks.values()), 3) for k, v in picks.most_common()}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="HF folder (config.json, model.safetensors, tokenizer.json)")
    ap.add_argument("--task", required=True, choices=tasks.TASKS)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=7)
    ap.add_argument("--words", type=int, default=66)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "..", "shared", "corpus",
                                                     "wikipedia-nq-passages.txt"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rewrite", choices=REWRITES, help="multihop-chain: ask the first hop another way (above)")
    a = ap.parse_args(argv)
    if a.rewrite and a.task != "multihop-chain":
        ap.error("--rewrite needs --task multihop-chain")
    import torch
    torch.set_num_threads(a.threads)
    tokjson = os.path.join(a.model, "tokenizer.json")
    if not os.path.exists(tokjson):
        raise SystemExit(f"probe.py: {a.model} has no tokenizer.json")
    tok = bpe.Tokenizer.load(tokjson)
    exs = tasks.generate(a.task, a.n, a.chunks, a.words, a.seed, a.corpus, "heldout")
    if a.rewrite:
        exs = [rewrite(ex, a.rewrite) for ex in exs]
    res = probe(load_model(a.model), tok, exs, REWRITES[a.rewrite] if a.rewrite else a.task)
    res.update(task=a.task, chunks=a.chunks, words=a.words, seed=a.seed, rewrite=a.rewrite)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
