#!/usr/bin/env python3
"""What the answers to the two-chain tasks are (vartrack, multihop of models/train/tasks.py).

Each prompt holds two chains, the asked one and a distractor with its own value (vartrack: a
6-digit code; multihop: a city). A model that has not learned to follow the links but copies one
of the two values scores ~50%; below that it also garbles or invents values. Per task and method
(ratio), this counts the answers that are the asked chain's value, the other chain's value, or
neither, from `cacheclip eval --samples-out` and the task files the eval read.

  bench/chain_picks.py [--first-digit] SAMPLES.jsonl TASKS.json [TASKS.json ...]
(--first-digit: a second table, for the vartrack tasks, of the accuracy on prompts whose two
values begin with the same digit and on the others: an answer copied digit by digit after its
first, by the previous digit alone, cannot tell those two values apart)
(eval names a task after its file; the name decides its kind: pair-vartrack.json is vartrack,
pair-multihop-chain.json is multihop answered link by link, whose answer ends with the value:
"other" is then an answer whose last value is the distractor chain's)
"""
import collections
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "train"))
from tasks import _CITIES, VARIANTS  # noqa: E402


def norm(s):
    """Lower case, punctuation to spaces, single spaces (the engine's exact match also drops articles;
    the values here are codes and city names)."""
    return " ".join(re.sub(r"[^\w\s]", " ", s.lower()).split())


def values_in(task, text):
    if task == "vartrack":
        return set(re.findall(r"VAR X\w+ = (\d{6})\.", text))
    return {c for c in _CITIES if re.search(r"lives in " + re.escape(c) + r"\b", text)}


def end_value(task, answer):
    """The value a chain answer (vartrack-chain, multihop-chain) ends at."""
    return answer.rsplit("=", 1)[-1] if task == "vartrack" else answer.rsplit("lives in", 1)[-1]


def row_order(kv):
    """Tables list rows by task, full attention first, then method and ratio."""
    (task, method, ratio), _ = kv
    return task, method != "full", method, ratio or 0


def main(argv):
    first_digit = "--first-digit" in argv
    argv = [a for a in argv if a != "--first-digit"]
    if len(argv) < 3:
        sys.exit(__doc__)
    prompts = {}
    for path in argv[2:]:
        name = os.path.basename(path).rsplit(".", 1)[0]
        task = "vartrack" if "vartrack" in name else "multihop" if "multihop" in name else None
        if task is None:
            sys.exit(f"{path}: not a vartrack or multihop task file")
        prompts[name] = (task, any(name.endswith(v) for v in VARIANTS), json.load(open(path)))
    counts = collections.defaultdict(collections.Counter)
    split = collections.defaultdict(lambda: {True: [], False: []})  # --first-digit: exact per prompt
    for line in open(argv[1]):
        s = json.loads(line)
        if s["task"] not in prompts:
            continue
        kind_of, chain, examples = prompts[s["task"]]
        ex = examples[s["index"]]
        value = (lambda x: end_value(kind_of, x).strip()) if chain else (lambda x: x)
        answer = value(s["answer"])
        others = values_in(kind_of, " ".join(ex["chunks"])) - {value(a) for a in ex["answers"]}
        # Both chains by the same rule (exact match after normalisation); a value followed by
        # more text is "neither" for either chain.
        kind = "asked" if s["exact"] else "other" if norm(answer) in {norm(o) for o in others} else "neither"
        counts[(s["task"], s["method"], s["ratio"])][kind] += 1
        if first_digit and kind_of == "vartrack":
            firsts = [v[0] for v in values_in(kind_of, " ".join(ex["chunks"]))]
            split[(s["task"], s["method"], s["ratio"])][len(firsts) > len(set(firsts))].append(s["exact"])
    print("| task | method | ratio | asked chain | other chain | neither | picks of the asked chain |")
    print("|---|---|---|---|---|---|---|")
    for (task, method, ratio), c in sorted(counts.items(), key=row_order):
        n = sum(c.values())
        picks = c["asked"] + c["other"]
        share = f"{c['asked'] / picks:.2f}" if picks else "-"
        print(f"| {task} | {method} | {'' if ratio is None else ratio} | {c['asked'] / n:.2f} | {c['other'] / n:.2f} | "
              f"{c['neither'] / n:.2f} | {share} |")

    if split:
        print()
        print("| task | method | ratio | prompts whose values share the first digit | their accuracy | other prompts | their accuracy |")
        print("|---|---|---|---|---|---|---|")
        acc = lambda v: f"{sum(v) / len(v):.2f}" if v else "-"
        for (task, method, ratio), sp in sorted(split.items(), key=row_order):
            print(f"| {task} | {method} | {'' if ratio is None else ratio} | {len(sp[True])} | {acc(sp[True])} | "
                  f"{len(sp[False])} | {acc(sp[False])} |")


if __name__ == "__main__":
    main(sys.argv)
