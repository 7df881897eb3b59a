#!/usr/bin/env bash
# The RAG task generator (models/train/tasks.py): seeded, facts where the answer needs them, and
# its files accepted by `cacheclip eval --tasks`.
set -euo pipefail
bin=${1:?usage: tasks_test.sh PATH/TO/cacheclip}
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen="$root/models/train/tasks.py"
python3 - "$gen" "$tmp" <<'PY'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("tasks", sys.argv[1])
t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)
for corpus in (None, "/nonexistent"):
    for task in t.TASKS:
        a = t.generate(task, 10, 4, 40, 7, corpus)
        b = t.generate(task, 10, 4, 40, 7, corpus)
        assert a == b, f"{task}: not reproducible with one seed"
        assert a != t.generate(task, 10, 4, 40, 8, corpus), f"{task}: the seed changes nothing"
        for ex in a:
            assert len(ex["chunks"]) == 4 and ex["question"] and ex["answers"]
            text = " ".join(ex["chunks"])
            for ans in ex["answers"]:
                for part in ans.split():
                    assert part in text, f"{task}: answer part {part!r} is in no chunk"
        if task == "vartrack":
            import re
            for ex in a:
                # Follow the asked chain back from the question's variable: 3 links in 3 chunks,
                # ending at the answer; the distractor chain holds another value.
                var = re.search(r"VAR (X\w+) hold", ex["question"]).group(1)
                holders, values = [], re.findall(r"VAR X\w+ = (\d+)\.", " ".join(ex["chunks"]))
                while True:
                    hit = [(i, m) for i, c in enumerate(ex["chunks"]) for m in re.findall(rf"VAR {var} = (\w+)\.", c)]
                    assert len(hit) == 1, f"vartrack: {var} must be assigned exactly once"
                    holders.append(hit[0][0])
                    if hit[0][1].isdigit():
                        assert [hit[0][1]] == ex["answers"], "vartrack: the chain does not end at the answer"
                        break
                    var = hit[0][1]
                assert len(set(holders)) == 3, f"vartrack: links must sit in 3 different chunks, got {holders}"
                assert len(set(values)) == 2 and ex["answers"][0] in values, "vartrack: needs a distractor value"
        if task == "boundary":
            import re
            for ex in a:
                # One needle cut between two neighbouring chunks, just before the value; the
                # joined text is a plain needle; every other chunk keeps its blank line.
                v, text = ex["answers"][0], "".join(ex["chunks"])
                k = re.search(r"code of (\S+)\?", ex["question"]).group(1)
                assert text.count(f"The special code of {k} is {v}.") == 1, "boundary: needle not whole when joined"
                cuts = [i for i, c in enumerate(ex["chunks"]) if not c.endswith("\n\n")]
                assert len(cuts) == 1 and cuts[0] + 1 < len(ex["chunks"]), f"boundary: cuts {cuts}"
                i = cuts[0]
                assert ex["chunks"][i].endswith(f"The special code of {k} is"), "boundary: key half"
                assert ex["chunks"][i + 1].startswith(f" {v}."), "boundary: value half"
                assert v not in ex["chunks"][i], "boundary: the value must sit in the next chunk only"
        if task == "multihop":
            for ex in a:
                text = " ".join(ex["chunks"])
                assert text.count(" works with ") == 2 and text.count(" lives in ") == 2, "multihop: two pairs"
    # The chain variants: the base task's prompt (one seed, the same documents), answered by
    # spelling the chain link by link, every link a fact of the documents, ending at the value.
    for base in ("vartrack", "multihop"):
        for ex, chain in zip(t.generate(base, 10, 4, 40, 7, corpus), t.generate(base + "-chain", 10, 4, 40, 7, corpus)):
            assert ex["chunks"] == chain["chunks"], f"{base}-chain: not the documents of {base}"
            text, (ans,) = " ".join(chain["chunks"]), chain["answers"]
            lead = chain["question"].rsplit("Answer: ", 1)[1]
            if base == "vartrack":
                names = [lead.split()[1]] + ans.strip().split(" = ")
                for x, y in zip(names, names[1:]):
                    assert f"VAR {x} = {y}." in text, f"vartrack-chain: link {x} = {y} is in no chunk"
                assert names[-1] == ex["answers"][0] and len(names) == 4, f"vartrack-chain: {names}"
            else:
                a, b = lead.split(" works with")[0], ans.strip().split(". ")[0]
                assert ans == f" {b}. {b} lives in {ex['answers'][0]}", f"multihop-chain: {ans}"
                assert f"{a} works with {b}." in text and f"{b} lives in {ex['answers'][0]}." in text, ans
# multihop-crowd: four pairs with four towns, the asked one answered as multihop-chain answers.
for ex in t.generate("multihop-crowd", 10, 4, 40, 7, corpus):
    text, (ans,) = " ".join(ex["chunks"]), ex["answers"]
    lead = ex["question"].rsplit("Answer: ", 1)[1]
    a, b = lead.split(" works with")[0], ans.strip().split(". ")[0]
    town = ans.rsplit(" lives in ", 1)[1]
    assert text.count(" works with ") == 4 and text.count(" lives in ") == 4, "multihop-crowd: four pairs"
    assert f"{a} works with {b}." in text and f"{b} lives in {town}." in text, f"multihop-crowd: {ans}"
    assert f"colleague of {a} live?" in ex["question"], ex["question"]
# Gen.share_prefix (train.py --share-prefix): at 1, every distractor value (vartrack's other
# chain's, multikey's other codes) starts with the first value's first 1-3 digits and differs
# from it; at 0 (the default, what every evaluation file is made with) the values are drawn on
# their own, so about a ninth share their first digit.
import re
def values(ex, task):
    text = " ".join(ex["chunks"])
    if task == "vartrack":
        return re.findall(r"VAR X\d+ = (\d+)\.", text)
    return re.findall(r"The special code of \S+ is (\d+)\.", text)
for share in (1.0, 0.0):
    g = t.Gen(3, None, 30)
    g.share_prefix = share
    same = []
    for i in range(300):
        task = ("vartrack", "multikey")[i % 2]
        vals = values(g.example(task, 4, 0.5), task)
        assert len(vals) == (2 if task == "vartrack" else 4) and len(set(vals)) == len(vals), f"share_prefix {share}: {vals}"
        for v in vals[1:]:
            same.append(v[0] == vals[0][0])
            if share:
                assert any(v[:k] == vals[0][:k] for k in (1, 2, 3)), f"share_prefix 1: {v} does not start like {vals[0]}"
    rate = sum(same) / len(same)
    assert rate == 1.0 if share else 0.05 < rate < 0.2, f"share_prefix {share}: {rate:.2f} of the values share the first digit"
# Facts that share a short chunk stay whole: an insert never lands inside an earlier fact.
import re
for task, pat, n_facts in (("multihop", r"\b[A-Z][a-z]+-\d\d works with [A-Z][a-z]+-\d\d\.|\b[A-Z][a-z]+-\d\d lives in [A-Z][a-z]+\.", 4),
                           ("vartrack", r"VAR X\w+ = \w+\.", 4), ("multikey", r"The special code of \S+ is \d+\.", 4)):
    for ex in t.generate(task, 50, 2, 3, 11, None):
        found = re.findall(pat, " ".join(ex["chunks"]))
        assert len(found) == n_facts, f"{task}: a fact was split by another: {ex['chunks']}"
# Document sets for `cacheclip ask`: every fact in its document(s); --cut splits the first one
# between two neighbouring documents just before its value.
for cut in (False, True):
    ds = t.docset(4, 30, 3, corpus, n_keys=2, cut=cut)
    assert ds == t.docset(4, 30, 3, corpus, n_keys=2, cut=cut), "docset: not reproducible"
    text = "".join(ds["docs"])
    assert len(ds["docs"]) == 4 and len(ds["questions"]) == 2
    for q in ds["questions"]:
        k = q["question"].split("code of ")[1].split("?")[0]
        assert text.count(f"The special code of {k} is {q['answers'][0]}.") == 1, "docset: fact not whole"
    open_docs = [i for i, d in enumerate(ds["docs"]) if not d.endswith("\n\n")]
    if cut:
        assert len(open_docs) == 1 and ds["docs"][open_docs[0]].endswith(" is"), f"docset --cut: {open_docs}"
    else:
        assert not open_docs, "docset: every document ends with its blank line"
try:
    t.docset(1, 30, 3, corpus, n_keys=1, cut=True)
    raise SystemExit("docset: a cut with one document accepted")
except ValueError:
    pass
try:
    t.generate("nope", 1, 1, 1, 1, None)
    raise SystemExit("unknown task accepted")
except ValueError:
    pass
json.dump(t.generate("needle", 3, 3, 30, 1, None), open(sys.argv[2] + "/needle.json", "w"))
print("ok: generator checks")
PY
python3 "$gen" --task multihop --n 2 --chunks 2 --chunk-words 20 -o "$tmp/hop.json"
"$bin" make-model --preset tiny-qwen2 --type f16 -o "$tmp/p.gguf" >/dev/null
out=$("$bin" eval -m "$tmp/p.gguf" --aux-layers 1 --tasks "$tmp/needle.json" --tasks "$tmp/hop.json" \
  --methods naive,cacheclip --ratios 0.2 -N 2 --max-answer 4 --samples-out "$tmp/samples.jsonl" 2>/dev/null)
[[ "$out" == *"| needle       | cacheclip  |   0.2 |"* && "$out" == *"| hop "* ]] \
  && echo "ok: cacheclip eval reads the generated tasks" || { echo "FAIL: eval on generated tasks:"; echo "$out"; exit 1; }
# --samples-out: one line per task, method and prompt (2 tasks x 2 prompts x full/naive/cacheclip),
# each with the generated task's accepted answers.
python3 - "$tmp/samples.jsonl" "$tmp/needle.json" "$tmp/hop.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tasks = {"needle": json.load(open(sys.argv[2])), "hop": json.load(open(sys.argv[3]))}
got = sorted((r["task"], r["method"], r["ratio"], r["index"]) for r in rows)
want = sorted((t, m, r, i) for t in tasks for m, r in (("full", None), ("naive", None), ("cacheclip", 0.2)) for i in range(2))
if got != want:
    sys.exit(f"FAIL: --samples-out lines {got}, expected {want}")
for r in rows:
    if r["answers"] != tasks[r["task"]][r["index"]]["answers"] or r["exact"] not in (0.0, 1.0) or not r["ppl"] > 0:
        sys.exit(f"FAIL: --samples-out line {r}")
print("ok: eval --samples-out writes every prompt's answer per method")
PY
# bench/chain_picks.py: answers that are the asked chain's value, the other chain's, or neither.
python3 "$gen" --task vartrack --n 3 --chunks 4 --chunk-words 20 --seed 5 -o "$tmp/vartrack.json"
python3 - "$tmp/vartrack.json" "$tmp/picks.jsonl" <<'PY'
import json, re, sys
ex = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for i, e in enumerate(ex):
        right = e["answers"][0]
        other = [v for v in re.findall(r"VAR X\w+ = (\d{6})\.", " ".join(e["chunks"])) if v != right][0]
        answer = [right, other + ".", other + ". VAR"][i]
        f.write(json.dumps({"task": "vartrack", "method": "full", "ratio": None, "index": i, "answer": answer,
                            "answers": e["answers"], "exact": float(answer == right), "f1": 0.0, "ppl": 1.0}) + "\n")
PY
picks=$(python3 "$root/bench/chain_picks.py" "$tmp/picks.jsonl" "$tmp/vartrack.json")
[[ "$picks" == *"| vartrack | full |  | 0.33 | 0.33 | 0.33 | 0.50 |"* ]] \
  && echo "ok: chain_picks tells the asked chain's value from the other chain's" || { echo "FAIL: chain_picks: $picks"; exit 1; }
# --first-digit: prompt 0 given a distractor value that starts with its answer's first digit.
python3 - "$tmp/vartrack.json" "$tmp/picks.jsonl" <<'PY'
import json, re, sys
ex = json.load(open(sys.argv[1]))
right = ex[0]["answers"][0]
other = [v for v in re.findall(r"VAR X\w+ = (\d{6})\.", " ".join(ex[0]["chunks"])) if v != right][0]
ex[0]["chunks"] = [c.replace(f"= {other}.", f"= {right[0]}{other[1:]}.") for c in ex[0]["chunks"]]
json.dump(ex, open(sys.argv[1], "w"))
PY
picks=$(python3 "$root/bench/chain_picks.py" --first-digit "$tmp/picks.jsonl" "$tmp/vartrack.json")
[[ "$picks" == *"| vartrack | full |  | 1 | 1.00 | 2 | 0.00 |"* ]] \
  && echo "ok: chain_picks --first-digit splits prompts by their values' first digits" || { echo "FAIL: chain_picks --first-digit: $picks"; exit 1; }
# The chain variant: the value a written chain ends at decides "other".
python3 "$gen" --task multihop-chain --n 3 --chunks 4 --chunk-words 20 --seed 5 -o "$tmp/multihop-chain.json"
python3 - "$tmp/multihop-chain.json" "$tmp/picks2.jsonl" <<'PY'
import json, re, sys
ex = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for i, e in enumerate(ex):
        right = e["answers"][0]
        city = right.rsplit(" ", 1)[1]
        other = [c for c in re.findall(r"lives in (\w+)\.", " ".join(e["chunks"])) if c != city][0]
        answer = [right, right.replace(city, other), right.replace(city, "Nowhere")][i]
        f.write(json.dumps({"task": "multihop-chain", "method": "full", "ratio": None, "index": i, "answer": answer,
                            "answers": e["answers"], "exact": float(answer == right), "f1": 0.0, "ppl": 1.0}) + "\n")
PY
picks=$(python3 "$root/bench/chain_picks.py" "$tmp/picks2.jsonl" "$tmp/multihop-chain.json")
[[ "$picks" == *"| multihop-chain | full |  | 0.33 | 0.33 | 0.33 | 0.50 |"* ]] \
  && echo "ok: chain_picks reads a chain answer by the value it ends at" || { echo "FAIL: chain_picks on a chain: $picks"; exit 1; }
echo "all task generator checks passed"
