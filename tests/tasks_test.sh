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
            for ex in a:
                holders = [i for i, c in enumerate(ex["chunks"]) if "VAR " in c]
                assert len(holders) == 3, f"vartrack: links must sit in 3 different chunks, got {holders}"
        if task == "multihop":
            for ex in a:
                assert sum(" works with " in c for c in ex["chunks"]) == 1
                assert sum(" lives in " in c for c in ex["chunks"]) == 1
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
  --methods naive,cacheclip --ratios 0.2 -N 2 --max-answer 4 2>/dev/null)
[[ "$out" == *"| needle       | cacheclip  |   0.2 |"* && "$out" == *"| hop "* ]] \
  && echo "ok: cacheclip eval reads the generated tasks" || { echo "FAIL: eval on generated tasks:"; echo "$out"; exit 1; }
echo "all task generator checks passed"
