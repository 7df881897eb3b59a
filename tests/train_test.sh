#!/usr/bin/env bash
# The training scripts of the shipped pair (models/train/): the byte-level BPE encodes exactly as
# the engine's tokenizer does, and a model trained a few steps by train.py, exported as an HF
# folder and converted by `cacheclip convert`, gives the logits torch gives (checked by the
# independent NumPy reference, tests/reference/forward_ref.py). Needs ../shared/corpus.
set -euo pipefail
bin=${1:?usage: train_test.sh PATH/TO/cacheclip}
root="$(cd "$(dirname "$0")/.." && pwd)"
shared=${CACHECLIP_SHARED:-$root/../shared}
corpus="$shared/corpus/wikipedia-nq-passages.txt"
if [[ ! -f "$corpus" ]]; then
  echo "skip: training scripts (no corpus at $corpus)"
  exit 0
fi
py=/usr/bin/python3
$py -c "import torch, regex" || { echo "FAIL: /usr/bin/python3 lacks torch/regex (scripts/setup.sh installs python3-torch python3-regex)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
train="$root/models/train"
head -c 300000 "$corpus" >"$tmp/text.txt"
$py "$train/bpe.py" --vocab 600 --out "$tmp/tok" "$tmp/text.txt" 2>/dev/null
$py "$train/bpe.py" --vocab 600 --out "$tmp/tok2" "$tmp/text.txt" 2>/dev/null
cmp -s "$tmp/tok/tokenizer.json" "$tmp/tok2/tokenizer.json" && echo "ok: bpe training is deterministic" \
  || { echo "FAIL: two bpe runs differ"; exit 1; }

# The Python encoder against the engine on held-out text with digits, names, code-like keys,
# punctuation, non-ASCII and whitespace runs.
tail -c 20000 "$corpus" >"$tmp/probe.txt"
printf 'The special code of anna-42 is 482913. VAR X12A = X33B.\nQuestion: Röntgen  won?\n\nAnswer: 7 \t x' >>"$tmp/probe.txt"
"$bin" tokenize "$tmp/tok" --file "$tmp/probe.txt" --ids >"$tmp/cpp.txt"
$py - "$train" "$tmp" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import bpe
t = bpe.Tokenizer.load(sys.argv[2] + "/tok/merges.txt")
text = open(sys.argv[2] + "/probe.txt", encoding="utf-8").read()
ids = t.encode(text, bos=True)
cpp = [int(x) for x in open(sys.argv[2] + "/cpp.txt").read().split()]
if ids != cpp:
    at = next((i for i, (a, b) in enumerate(zip(ids, cpp)) if a != b), min(len(ids), len(cpp)))
    sys.exit(f"FAIL: python and engine tokenizations differ at token {at} ({len(ids)} vs {len(cpp)} tokens)")
assert t.decode(ids) == text, "decode(encode(x)) != x"
print(f"ok: python BPE == engine tokenizer ({len(ids)} tokens), round trip exact")
PY

# A few training steps of a small GQA model, then export -> convert -> reference logits.
$py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
  --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run" --max-steps 3 --tokens 512 --log-every 1 >"$tmp/train.log"
grep -q '"step": 3' "$tmp/run/log.jsonl" && [[ -f "$tmp/run/hf/model.safetensors" && -f "$tmp/run/train.json" ]] \
  && echo "ok: train.py logs, checkpoints and exports" || { echo "FAIL: train.py outputs:"; cat "$tmp/train.log"; exit 1; }
# Batches made ahead by worker processes are seeded by their step: one worker and two give the
# same run, stage changes included (--advance 0 moves a stage every step); bf16 autocast trains.
small=(--name w --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 --tokenizer "$tmp/tok"
  --corpus "$corpus" --max-steps 5 --tokens 512 --log-every 1 --min-steps 1 --advance 0 --window 2)
for w in 1 2; do
  $py "$train/train.py" "${small[@]}" --data-workers $w --out "$tmp/w$w" >"$tmp/w$w.log"
  $py -c "import json, sys; print([(r['loss'], r['stage'], r['seq_len']) for r in map(json.loads, open(sys.argv[1]))])" \
    "$tmp/w$w/log.jsonl" >"$tmp/w$w.curve"
done
grep -q ", 3, " "$tmp/w1.curve" && cmp -s "$tmp/w1.curve" "$tmp/w2.curve" \
  && echo "ok: --data-workers 1 and 2 train on the same batches" \
  || { echo "FAIL: worker runs differ or never changed stage:"; cat "$tmp/w1.curve" "$tmp/w2.curve"; exit 1; }
$py "$train/train.py" "${small[@]}" --bf16 --out "$tmp/bf" >"$tmp/bf.log" && grep -q '"step": 5' "$tmp/bf/log.jsonl" \
  && echo "ok: --bf16 trains" || { echo "FAIL: --bf16 run:"; cat "$tmp/bf.log"; exit 1; }
$py "$train/train.py" "${small[@]}" --device cuda:9 --out "$tmp/x" >"$tmp/x.log" 2>&1 && { echo "FAIL: --device cuda:9 ran"; exit 1; }
grep -q "device cuda:9" "$tmp/x.log" && echo "ok: an unavailable device is a clear error" \
  || { echo "FAIL: --device error:"; cat "$tmp/x.log"; exit 1; }
"$bin" convert "$tmp/run/hf" "$tmp/t.gguf" --type f32 >/dev/null
# A converted model's HF folder is a --tokenizer as it stands (its tokenizer.json, no merges.txt).
"$bin" convert "$tmp/t.gguf" "$tmp/hftok" --format hf >/dev/null
mkdir -p "$tmp/notok"
$py - "$train" "$tmp" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import bpe, train
d = sys.argv[2]
a, b = bpe.Tokenizer.load(d + "/tok/merges.txt"), train.load_tokenizer(d + "/hftok")
text = "The special code of anna-42 is 482913. VAR X4821 = X1375."
assert b.encode(text, bos=True) == a.encode(text, bos=True) and len(b) == len(a), "tokenizer.json fallback differs"
try:
    train.load_tokenizer(d + "/notok")
    refused = "no error"
except SystemExit as e:
    refused = str(e)
assert "neither merges.txt nor tokenizer.json" in refused, f"a folder with no tokenizer: {refused}"
print("ok: --tokenizer reads a converted model's tokenizer.json; a folder without one is refused")
PY
$py - "$train" "$tmp" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, torch, bpe, train
d = sys.argv[2]
st = torch.load(d + "/run/ckpt.pt")
m = train.Model(st["config"]); m.load_state_dict(st["model"]); m.eval()
tok = bpe.Tokenizer.load(d + "/tok/merges.txt")
ids = tok.encode("The special code of anna-42 is 482913. Question: What is it? Answer: 4", bos=True)
with torch.no_grad():
    lg = m(torch.tensor([ids]))[0].double().numpy()
np.save(d + "/torch.npy", lg)
open(d + "/ids.txt", "w").write(",".join(map(str, ids)))
PY
$py "$root/tests/reference/forward_ref.py" "$tmp/t.gguf" --tokens "$(cat "$tmp/ids.txt")" --out "$tmp/ref.bin"
$py - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
a = np.load(d + "/torch.npy")
b = np.fromfile(d + "/ref.bin", dtype="<f4").reshape(a.shape).astype(np.float64)
nse = ((a - b) ** 2).sum() / (a ** 2).sum()
if not nse <= 1e-8:
    sys.exit(f"FAIL: exported model's logits differ from torch's: NSE {nse:.3g}")
print(f"ok: torch logits == exported GGUF logits (NSE {nse:.2e}, {a.shape[0]} positions)")
PY
# --init: a run starts from a model's weights, here the GGUF above converted back to an HF folder
# (Q/K rows permuted back to rotate-half): with no step left to run, the checkpoint it writes
# holds exactly the weights trained; one step more warms up afresh from the step it started at.
"$bin" convert "$tmp/t.gguf" "$tmp/back" --format hf --type f32 >/dev/null
$py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
  --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/init" --max-steps 3 --tokens 512 \
  --init "$tmp/back" --init-run "$tmp/run" >"$tmp/init.log" 2>&1 || { echo "FAIL: --init:"; cat "$tmp/init.log"; exit 1; }
$py - "$tmp" <<'PY'
import sys, torch
d = sys.argv[1]
a, b = torch.load(d + "/run/ckpt.pt"), torch.load(d + "/init/ckpt.pt")
diff = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
if diff or b["step"] != 3 or b["history"] != a["history"]:
    sys.exit(f"FAIL: --init from the converted GGUF: tensors differ {diff[:3]}, step {b['step']}, "
             f"{len(b['history'])} of {len(a['history'])} log records")
print("ok: --init loads a converted GGUF's weights exactly and continues the run's step count and log")
PY
$py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
  --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/init" --max-steps 4 --tokens 512 --log-every 1 \
  --init "$tmp/back" --init-run "$tmp/run" >"$tmp/init.log" 2>&1 || { echo "FAIL: --init:"; cat "$tmp/init.log"; exit 1; }
$py - "$tmp" <<'PY'
import sys, json
recs = [json.loads(l) for l in open(sys.argv[1] + "/init/log.jsonl")]
if [r["step"] for r in recs] != [1, 2, 3, 4] or abs(recs[-1]["lr"] - 2e-5) > 1e-12:
    sys.exit(f"FAIL: --init run's log: steps {[r['step'] for r in recs]}, lr of its first step {recs[-1]['lr']} "
             "(a fresh warm-up gives 2e-5)")
print("ok: an --init run warms up afresh from the step it starts at")
PY
# An --init that does not fit the run, or is not a model, is refused by name.
for bad in "--dim 48|hidden_size" "--kv-heads 4|num_key_value_heads"; do
  if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 ${bad%%|*} \
      --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run5" --max-steps 1 --init "$tmp/back" >"$tmp/bad.log" 2>&1; then
    echo "FAIL: train.py --init accepted a model of another shape (${bad%%|*})"; exit 1
  fi
  grep -q "${bad##*|}" "$tmp/bad.log" || { echo "FAIL: the --init shape error does not name ${bad##*|}:"; cat "$tmp/bad.log"; exit 1; }
done
mkdir -p "$tmp/cut" && cp "$tmp/back/config.json" "$tmp/cut/"
head -c 3000 "$tmp/back/model.safetensors" >"$tmp/cut/model.safetensors"
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run5" --max-steps 1 --init "$tmp/cut" >"$tmp/bad.log" 2>&1; then
  echo "FAIL: train.py --init accepted a truncated model.safetensors"; exit 1
fi
grep -q "model.safetensors" "$tmp/bad.log" && ! grep -q Traceback "$tmp/bad.log" \
  && echo "ok: --init refuses another shape and a truncated file, by name" \
  || { echo "FAIL: the truncated-file error:"; cat "$tmp/bad.log"; exit 1; }
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run5" --max-steps 1 --init-run "$tmp/run" >"$tmp/bad.log" 2>&1 \
    || ! grep -q -- "--init-run needs --init" "$tmp/bad.log"; then
  echo "FAIL: --init-run without --init was not refused:"; cat "$tmp/bad.log"; exit 1
fi
# --grow-at: the 2-layer model grown to 4 layers (new identity blocks at 0 and 3) holds the
# source's layers at 1 and 2 and gives the source's logits before any step; a layer count that
# does not add up, an index outside the model, a bad list and --grow-at without --init are refused.
$py "$train/train.py" --name t --dim 32 --layers 4 --grow-at 3,0 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
  --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/grow" --max-steps 3 --tokens 512 \
  --init "$tmp/back" --init-run "$tmp/run" >"$tmp/grow.log" 2>&1 || { echo "FAIL: --grow-at:"; cat "$tmp/grow.log"; exit 1; }
$py - "$tmp" "$train" <<'PY'
import sys, torch
d, train_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, train_dir)
import train
src, grown = torch.load(d + "/run/ckpt.pt"), torch.load(d + "/grow/ckpt.pt")
a, b = src["model"], grown["model"]
moved = [k for k in a if not k.startswith("layers.") and not torch.equal(a[k], b[k])]
for j, i in ((0, 1), (1, 2)):
    moved += [k for k in a if k.startswith(f"layers.{j}.")
              and not torch.equal(a[k], b[f"layers.{i}." + k[len(f"layers.{j}."):]])]
new = [k for k in b if k.startswith(("layers.0.", "layers.3."))]
out = [k for k in new if k.endswith(("o_proj.weight", "down_proj.weight"))]
live = [k for k in new if k.endswith(("q_proj.weight", "gate_proj.weight", "up_proj.weight"))]
if moved or len(out) != 4 or any(b[k].abs().max() > 0 for k in out) or any(b[k].abs().max() == 0 for k in live):
    sys.exit(f"FAIL: --grow-at: source tensors not carried {moved[:3]}; new blocks' o_proj/down_proj "
             f"{[(k, float(b[k].abs().max())) for k in out]} (want zero), q/gate/up not random")
torch.manual_seed(0)
ids = torch.randint(0, src["config"]["vocab"], (2, 40))
lg = []
for st in (src, grown):
    m = train.Model(st["config"]); m.load_state_dict(st["model"]); m.eval()
    with torch.no_grad():
        lg.append(m(ids))
if grown["config"]["layers"] != 4 or not torch.equal(lg[0], lg[1]):
    sys.exit(f"FAIL: --grow-at: the grown model's logits differ from the source's by "
             f"{float((lg[0] - lg[1]).abs().max()):.3g} ({grown['config']['layers']} layers)")
print("ok: --grow-at grows a 2-layer model to 4 with identity blocks: same tensors, same logits")
PY
for bad in "--layers 4 --grow-at 1|num_hidden_layers 2 (this run: 4 less 1 grown = 3)" \
    "--layers 3 --grow-at 3|outside 0..2" "--layers 3 --grow-at 1,x|not a comma-separated list"; do
  if $py "$train/train.py" --name t --dim 32 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 ${bad%%|*} \
      --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run5" --max-steps 1 --init "$tmp/back" >"$tmp/bad.log" 2>&1 \
      || ! grep -qF -- "${bad##*|}" "$tmp/bad.log" || grep -q Traceback "$tmp/bad.log"; then
    echo "FAIL: train.py ${bad%%|*} was not refused with '${bad##*|}':"; cat "$tmp/bad.log"; exit 1
  fi
done
if $py "$train/train.py" --name t --dim 32 --layers 3 --grow-at 1 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run5" --max-steps 1 >"$tmp/bad.log" 2>&1 \
    || ! grep -q -- "--grow-at needs --init" "$tmp/bad.log"; then
  echo "FAIL: --grow-at without --init was not refused:"; cat "$tmp/bad.log"; exit 1
fi
echo "ok: --grow-at refuses a layer count that does not add up, an index outside, a bad list, and no --init"
# --grow-qk-from: the new blocks take a kept layer's query/key projections and attention norm
# (and nothing else of it); a grown layer or no --grow-at is refused.
$py "$train/train.py" --name t --dim 32 --layers 4 --grow-at 3,0 --grow-qk-from 1 --heads 4 --kv-heads 2 --ffn 48 \
  --head-dim 8 --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/growqk" --max-steps 3 --tokens 512 \
  --init "$tmp/back" --init-run "$tmp/run" >"$tmp/grow.log" 2>&1 || { echo "FAIL: --grow-qk-from:"; cat "$tmp/grow.log"; exit 1; }
$py - "$tmp" <<'PY'
import sys, torch
d = sys.argv[1]
src, b = torch.load(d + "/run/ckpt.pt")["model"], torch.load(d + "/growqk/ckpt.pt")["model"]
for i in (0, 3):
    for n in ("q_proj", "k_proj", "input_layernorm", "v_proj", "gate_proj"):
        same = torch.equal(b[f"layers.{i}.{n}.weight"], src[f"layers.0.{n}.weight"])
        if same != (n in ("q_proj", "k_proj", "input_layernorm")):
            sys.exit(f"FAIL: --grow-qk-from 1: new layer {i}'s {n} {'is' if same else 'is not'} the kept layer's")
    if b[f"layers.{i}.o_proj.weight"].abs().max() > 0:
        sys.exit(f"FAIL: --grow-qk-from: new layer {i}'s o_proj is not zero")
print("ok: --grow-qk-from copies a kept layer's queries, keys and norm into the new blocks, and only those")
PY
for bad in "--layers 4 --grow-at 3,0 --grow-qk-from 0|--grow-qk-from 0: not a kept layer" \
    "--layers 2 --grow-qk-from 1|--grow-qk-from needs --grow-at"; do
  if $py "$train/train.py" --name t --dim 32 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 ${bad%%|*} \
      --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run6" --max-steps 1 --init "$tmp/back" >"$tmp/bad.log" 2>&1 \
      || ! grep -qF -- "${bad##*|}" "$tmp/bad.log" || grep -q Traceback "$tmp/bad.log"; then
    echo "FAIL: train.py ${bad%%|*} was not refused with '${bad##*|}':"; cat "$tmp/bad.log"; exit 1
  fi
done
# --task-weights: a bad entry is refused by name; weights steer a stage's task sampling.
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run2" --max-steps 1 --task-weights vartrak=3 >"$tmp/tw.log" 2>&1; then
  echo "FAIL: train.py accepted --task-weights vartrak=3"; exit 1
fi
grep -q "vartrak=3" "$tmp/tw.log" && echo "ok: a misspelt --task-weights task is refused by name" \
  || { echo "FAIL: the --task-weights error does not name the entry:"; cat "$tmp/tw.log"; exit 1; }
$py - "$train" "$tmp" "$corpus" <<'PY'
import sys, collections
sys.path.insert(0, sys.argv[1])
import bpe, train
tok = bpe.Tokenizer.load(sys.argv[2] + "/tok/merges.txt")
d = train.Data(tok, sys.argv[3], 1)
def counts():
    return collections.Counter(d.task_example(2)[0] for _ in range(400))
even = counts()
d.task_weights = {"vartrack": 6.0}
steered = counts()
# Stage 2 has 4 tasks: ~100 each unweighted; vartrack at weight 6 gets ~6/9 of 400 = ~267.
if not (60 <= even["vartrack"] <= 140 and 220 <= steered["vartrack"] <= 310):
    sys.exit(f"FAIL: task weights do not steer sampling: {dict(even)} -> {dict(steered)}")
print(f"ok: --task-weights steers the stage's tasks ({even['vartrack']} -> {steered['vartrack']} of 400 vartrack)")
# --stage-shape: the stage's prompts get the given chunk count and length.
d.shape = ((2, 2), (10, 12))
shaped = []
for _ in range(40):
    shaped.append(len(d.task_example(3)[1]))
    if not 10 <= d.gen.chunk_words <= 12:
        sys.exit(f"FAIL: --stage-shape 2-2:10-12 gave chunks of {d.gen.chunk_words} words")
if d.typical(4) != int(1.9 * 2 * 12) + 60 or d.typical(4, long=True) != int(1.9 * 8 * 75) + 60:
    sys.exit(f"FAIL: plain-text windows under --stage-shape: {d.typical(4)}, long {d.typical(4, long=True)}")
d.shape = None
plain = [len(d.task_example(3)[1]) for _ in range(40)]
if not sum(shaped) < 0.5 * sum(plain):
    sys.exit(f"FAIL: --stage-shape 2-2:10-12 prompts average {sum(shaped) / 40:.0f} tokens, stage 3's {sum(plain) / 40:.0f}")
print("ok: --stage-shape gives the stage's prompts the shape asked")
# --add-tasks: a variant joins the stages that have its base task, and only those.
d.task_weights, d.extra = {}, ("vartrack-chain",)
with_chain = collections.Counter(d.task_example(2)[0] for _ in range(500))
if not 60 <= with_chain["vartrack-chain"] <= 140 or "vartrack-chain" in d.stage_tasks(1):
    sys.exit(f"FAIL: --add-tasks vartrack-chain: stage 2 drew {dict(with_chain)}, stage 1 has {d.stage_tasks(1)}")
task, ids, ans = next(x for x in iter(lambda: d.task_example(2), None) if x[0] == "vartrack-chain")
if tok.decode(ans[:-1]).count(" = ") not in (1, 2):
    sys.exit(f"FAIL: a vartrack-chain answer does not spell the chain: {tok.decode(ans[:-1])!r}")
print(f"ok: --add-tasks adds a variant to the stages with its base task ({with_chain['vartrack-chain']} of 500)")
# --long-tasks: long batches draw those tasks at the final stage's length; short ones keep the stage's.
d.extra, d.long_tasks = (), ("vartrack-chain", "needle")
drawn, short, words = collections.Counter(), collections.Counter(), set()
for _ in range(200):
    drawn[d.task_example(1, long=True)[0]] += 1
    words.add(d.gen.chunk_words)
    short[d.task_example(1)[0]] += 1
    words.add(-d.gen.chunk_words)
if (set(drawn) != {"vartrack-chain", "needle"} or set(short) != {"needle", "multikey"}
        or not all(40 <= w <= 75 or -30 <= w <= -15 for w in words)):
    sys.exit(f"FAIL: --long-tasks vartrack-chain,needle: long batches drew {dict(drawn)}, short {dict(short)}")
print(f"ok: --long-tasks sets what the long batches draw ({dict(drawn)})")
d.long_tasks = ()
PY
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run2" --max-steps 1 --add-tasks vartrack >"$tmp/at.log" 2>&1; then
  echo "FAIL: train.py accepted --add-tasks vartrack (not a variant)"; exit 1
fi
grep -q "add-tasks: 'vartrack'" "$tmp/at.log" && echo "ok: --add-tasks refuses a task that is no variant, by name" \
  || { echo "FAIL: the --add-tasks error does not name the entry:"; cat "$tmp/at.log"; exit 1; }
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run2" --max-steps 1 --long-tasks needle,vartrak >"$tmp/lt.log" 2>&1; then
  echo "FAIL: train.py accepted --long-tasks vartrak (no such task)"; exit 1
fi
grep -q "long-tasks: 'vartrak'" "$tmp/lt.log" && echo "ok: --long-tasks refuses an unknown task, by name" \
  || { echo "FAIL: the --long-tasks error does not name the entry:"; cat "$tmp/lt.log"; exit 1; }
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run2" --max-steps 1 --stage-shape 3-2:10-20 >"$tmp/ss.log" 2>&1; then
  echo "FAIL: train.py accepted --stage-shape 3-2:10-20"; exit 1
fi
grep -q "stage-shape: '3-2:10-20'" "$tmp/ss.log" && echo "ok: a bad --stage-shape is refused by name" \
  || { echo "FAIL: the --stage-shape error does not name the value:"; cat "$tmp/ss.log"; exit 1; }
# The learning-rate schedule: warm-up, constant, and the optional linear cool-down.
$py - "$train" <<'PY'
import sys, types
sys.path.insert(0, sys.argv[1])
import train
a = types.SimpleNamespace(lr=2e-3, warmup=100, decay_from=0, decay_steps=1000, lr_min=0.1)
assert abs(train.lr_at(0, a) - 2e-5) < 1e-12 and train.lr_at(99, a) == 2e-3 and train.lr_at(50000, a) == 2e-3
a.decay_from = 5000
got = [train.lr_at(s, a) for s in (4999, 5000, 5500, 6000, 9000)]
want = [2e-3, 2e-3, 2e-3 * 0.55, 2e-4, 2e-4]
if any(abs(g - w) > 1e-12 for g, w in zip(got, want)):
    sys.exit(f"FAIL: cool-down schedule {got}, expected {want}")
print("ok: learning rate: warm-up, constant, linear cool-down to --lr-min")
PY
# probe.py: teacher-forced scoring per answer position. An oracle scores 1 everywhere; a model
# that starts with another fact's colleague is counted as picking the other fact; the CLI runs
# on the small trained model's export.
$py - "$train" "$tmp" "$corpus" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1])
import bpe, probe, tasks
tok = bpe.Tokenizer.load(sys.argv[2] + "/tok/merges.txt")
exs = tasks.generate("multihop-chain", 12, 3, 20, 5, sys.argv[3], "heldout")
def oracle(ids):
    lg = torch.zeros(len(ids), len(tok))
    lg[torch.arange(len(ids) - 1), torch.tensor(ids[1:])] = 1.0
    return lg
def starts_with_other_pair(ex):  # the oracle, but the answer starts as the other pair's does
    p, ans = probe.encode(tok, ex)
    wrong = sorted(probe.fact_starts(tok, ex, "multihop-chain") - {ans[0]})[0]
    def logits(ids):
        lg = oracle(ids)
        lg[len(p) - 1] = 0.0
        lg[len(p) - 1, wrong] = 1.0
        return lg
    return logits
r = probe.probe(oracle, tok, exs, "multihop-chain")
if r["exact_match_tf"] != 1.0 or set(r["per_position"]) != {1.0} or r["first_token_rank_mean"] != 0 \
        or r["first_token_picks"] != {"right": 1.0}:
    sys.exit(f"FAIL: probe of an oracle: {r}")
picks = [probe.probe(starts_with_other_pair(ex), tok, [ex], "multihop-chain") for ex in exs]
if any(p["first_token_picks"] != {"other fact": 1.0} or p["exact_match_tf"] != 0.0 or p["per_position"][1:] != [1.0] * (len(p["per_position"]) - 1)
       for p in picks):
    sys.exit(f"FAIL: probe of a model starting with the other pair's colleague: {picks[0]}")
print("ok: probe.py scores answers per position and sorts the first-token picks")
# --rewrite: each kind's lead and answer are in the rewritten documents as one fact, beside the
# distractor pair's fact of the same wording; the question, the key and the chunks without a fact
# stay put; the kind's FACT pattern finds both facts' values (what "other fact" picks are).
import re
has_fact = lambda t: re.search(r" (works with|lives in) ", t)
for ex in exs:
    a = re.search(r"Answer: (\S+) works with$", ex["question"]).group(1)
    for kind, fact in probe.REWRITES.items():
        rx = probe.rewrite(ex, kind)
        docs, lead = "".join(rx["chunks"]), rx["question"].split("Answer: ")[1]
        rel = " ".join(lead.split()[1:])
        facts = re.findall(r"(\S+) " + rel + r" ([^ .]+)\.", docs)
        starts = probe.fact_starts(tok, rx, fact)
        if (lead + rx["answers"][0] + ".") not in docs or len(facts) != 2 \
                or (kind != "second-hop" and not lead.startswith(a + " ")) \
                or rx["question"].split("Answer: ")[0] != ex["question"].split("Answer: ")[0] \
                or any(o != n for o, n in zip(ex["chunks"], rx["chunks"]) if not has_fact(o)) \
                or any(tok.encode(" " + v)[0] not in starts for _, v in facts):
            sys.exit(f"FAIL: rewrite {kind}: {lead!r} {rx['answers']} {facts} {starts}")
try:
    probe.rewrite(tasks.generate("needle", 1, 3, 20, 5, sys.argv[3], "heldout")[0], "second-hop")
    sys.exit("FAIL: rewrite took a needle prompt")
except ValueError as e:
    if "not a multihop-chain example" not in str(e):
        raise
print("ok: probe.py --rewrite asks the first hop in each form, the distractor pair beside it")
PY
"$bin" convert "$tmp/t.gguf" "$tmp/probe_hf" --format hf --type f32 >/dev/null
$py "$train/probe.py" --model "$tmp/probe_hf" --task needle --n 3 --chunks 2 --words 12 --corpus "$corpus" >"$tmp/probe.json" \
  && $py -c "import json, sys; r = json.load(open(sys.argv[1])); assert r['prompts'] == 3 and 0 <= r['exact_match_tf'] <= 1" "$tmp/probe.json" \
  && echo "ok: probe.py runs on an exported model" || { echo "FAIL: probe.py CLI:"; cat "$tmp/probe.json"; exit 1; }
# --first-weight: the answer loss weighs each task answer's first token (not a copy span's).
$py - "$train" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1])
import train
ce = torch.tensor([[9.0, 1.0, 2.0, 3.0, 0.0], [9.0, 4.0, 5.0, 0.0, 0.0], [9.0, 6.0, 7.0, 0.0, 0.0]])
amask = torch.zeros(3, 5, dtype=torch.bool)
amask[0, 1:4] = amask[1, 1:3] = amask[2, 1:3] = True
names, spans = ["needle", "copy", None], [(0, 1, 4), (1, 1, 3), None]
amask[2] = False
plain = train.answer_loss(ce, amask, names, spans).item()
heavy = train.answer_loss(ce, amask, names, spans, 5.0).item()
# plain: (1+2+3+4+5)/5; heavy: the needle's first token (1.0) counts 5 times, the copy's does not.
if abs(plain - 3.0) > 1e-6 or abs(heavy - (5 * 1 + 2 + 3 + 4 + 5) / 9) > 1e-6:
    sys.exit(f"FAIL: answer_loss {plain}, with first weight 5 {heavy}")
if train.answer_loss(ce, torch.zeros_like(amask), names, spans, 5.0).item() != 0.0:
    sys.exit("FAIL: answer_loss of a batch with no answers is not 0")
print("ok: --first-weight weighs each task answer's first token")
PY
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run3" --max-steps 1 --first-weight 0 >"$tmp/fw.log" 2>&1 \
    || ! grep -q -- "--first-weight must be > 0" "$tmp/fw.log"; then
  echo "FAIL: --first-weight 0 was not refused:"; cat "$tmp/fw.log"; exit 1
fi
# (With the model's arguments given: argparse's usage line would name every option.)
if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
    --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run3" --max-steps 1 --lr-min 2 >"$tmp/lr.log" 2>&1; then
  echo "FAIL: train.py accepted --lr-min 2"; exit 1
fi
grep -q -- "--lr-min in \[0, 1\]" "$tmp/lr.log" && echo "ok: a bad cool-down is refused" || { echo "FAIL: no --lr-min error:"; cat "$tmp/lr.log"; exit 1; }
# --attn-target / --gather-target: lookup_target finds the asked fact's value in the documents,
# relation_keys each "<name> works with" and its name; a layer's probe keeps the attention rows
# its forward computes; attn_loss pulls a row toward its target.
$py - "$train" "$tmp" "$corpus" <<'PY'
import math, re as tasks_re, sys, torch
sys.path.insert(0, sys.argv[1])
import bpe, tasks, train
tok = bpe.Tokenizer.load(sys.argv[2] + "/tok/merges.txt")
colon = tok.encode(":")[0]
found = 0
for task in train.LOOKUP_TASKS:
    for ex in tasks.generate(task, 40, 3, 20, 5, sys.argv[3], "train"):
        p, ans = tasks.prompt_ids(tok, ex), tok.encode(ex["answers"][0])
        w = train.lookup_target(p + ans, len(p) - 1, colon)
        q_start = len(p) - len(tok.encode(ex["question"]))
        if w is None:
            continue
        found += 1
        b = ex["answers"][0].split(".")[0]  # " Anna-17": the value the lookup must read
        if not w < q_start or (p + ans)[w:w + len(tok.encode(b))] != tok.encode(b):
            sys.exit(f"FAIL: lookup_target of {task} gave {w} ({tok.decode(p[w:w + 6])!r}), not {b!r}")
if found < 70:
    sys.exit(f"FAIL: lookup_target found only {found} of 80 first-hop values")
# relation_keys: every "<name> works with" of a prompt, the name's tokens exactly, whether the
# fact sits inside a chunk (" Tina-42") or at its start ("Tina-42", no space).
kinds, rel = train.token_kinds(tok), tok.encode(" works with")
for ex in tasks.generate("multihop-crowd", 20, 3, 20, 6, sys.argv[3], "train"):
    p = tasks.prompt_ids(tok, ex)
    got = [tok.decode(p[span[0]:span[-1] + 1]).strip() for _, span in train.relation_keys(p, rel, kinds)]
    ends = {tok.decode(p[r - len(rel) + 1:r + 1]) for r, _ in train.relation_keys(p, rel, kinds)}
    want = [m.group(1) for c in ex["chunks"] for m in tasks_re.finditer(r"(\S+) works with", c)] + \
        [ex["question"].split("Answer: ")[1].split()[0]]
    if got != want or ends != {" works with"}:
        sys.exit(f"FAIL: relation_keys found {got} {ends}, the prompt has {want}")
chunk_start = tok.encode("Tina-42 works with Anna-17.")
if [s for _, s in train.relation_keys(chunk_start, rel, kinds)] != [list(range(len(tok.encode("Tina-42"))))]:
    sys.exit("FAIL: relation_keys missed the name of a fact at a chunk's start")
seq = tok.encode("Tina-42 went home. Question: Who?\nAnswer: Tina-42 works with")
if train.lookup_target(seq, len(seq) - 1, colon) is not None:
    sys.exit("FAIL: lookup_target found a lead that is not in the documents")
if train.lookup_target(seq[:3], 2, colon) is not None:
    sys.exit("FAIL: lookup_target found a lead in a prompt with no ':'")
torch.manual_seed(3)
c = {"vocab": len(tok), "dim": 32, "layers": 2, "heads": 4, "kv_heads": 2, "ffn": 48, "head_dim": 8,
     "max_pos": 256, "rope_theta": 10000.0, "eps": 1e-5}
m = train.Model(c)
ids = torch.randint(0, len(tok), (2, 40))
def by_hand(layer, head, i, q):
    """Attention row of (layer, head) at sequence i, position q, computed from the layer's input
    and its query/key projections (GQA: heads 2 and 3 read KV head 1)."""
    with torch.no_grad():
        x = m.embed_tokens(ids)
        for B in m.layers[:layer]:
            x = B(x, m.cos[:40], m.sin[:40])
        L = m.layers[layer]
        h = L.input_layernorm(x)
        rot = lambda t: t * m.cos[:40] + train.rotate_half(t) * m.sin[:40]
        qq = rot(L.q_proj(h)[i].view(40, 4, 8)[:, head])
        kk = rot(L.k_proj(h)[i].view(40, 2, 8)[:, head // 2])
        return (qq[q] @ kk[:q + 1].t() / math.sqrt(8)).softmax(-1)
L, head, q, w = m.layers[1], 3, 30, 12
want = by_hand(1, head, 1, q)
L.probe = [(head, 1, q)]
m(ids)
row = L.rows[0]
if row.shape != (40,) or (row[:q + 1] - want).abs().max() > 1e-5 or row[q + 1:].abs().max() != 0:
    sys.exit(f"FAIL: the probe's row differs from the attention computed by hand (zero past {q}): {row}")
before = row[w].item()
opt = torch.optim.SGD(m.parameters(), lr=0.5)
if abs(train.attn_loss(L.rows, [[w, w + 1]]).item() + math.log(row[w].item() + row[w + 1].item())) > 1e-5:
    sys.exit("FAIL: attn_loss of a span is not -log of the attention summed over it")
two = torch.stack([row, row.flip(0)])
got = train.attn_mass(two, [[w, w + 1], 3]).tolist()
if max(abs(got[0] - row[w].item() - row[w + 1].item()), abs(got[1] - row[39 - 3].item())) > 1e-6:
    sys.exit(f"FAIL: attn_mass of two rows gave {got}")
train.attn_loss(L.rows, [w]).backward()
opt.step()
L.probe = [(head, 1, q)]
with torch.no_grad():
    m(ids)
if not L.rows[0][w].item() > before:
    sys.exit(f"FAIL: a step on attn_loss did not raise the attention on its target ({before} -> {L.rows[0][w].item()})")
# probe_plan: several kinds and hops sharing a layer each get their own row.
specs = {"attn": [(1, 0, 1.0)], "gather": [(1, 3, 1.0)], "hop": [(0, 1, 1.0), (1, 2, 1.0)]}
sup = {"attn": [(0, 0, 30, [3])], "gather": [(0, 1, 20, [2]), (0, 0, 25, [1])],
       "hop": [(0, 1, 39, [5]), (1, 1, 39, [6]), (1, 0, 33, [7])]}
probes, where = train.probe_plan(sup, specs)
for layer, pr in probes.items():
    m.layers[layer].probe = pr
with torch.no_grad():
    m(ids)
for kind, rows_of in sup.items():
    for (layer, j), (h, i, q, _) in zip(where[kind], rows_of):
        head = specs[kind][h][1]
        r = m.layers[layer].rows[j]
        if layer != specs[kind][h][0] or (r[:q + 1] - by_hand(layer, head, i, q)).abs().max() > 1e-5 or r[q + 1:].any():
            sys.exit(f"FAIL: probe_plan paired {kind} hop {h} (sequence {i}, position {q}) with the wrong row")
if sorted(len(v) for v in probes.values()) != [1, 5]:
    sys.exit(f"FAIL: probe_plan kept {probes}")
print("ok: --attn-target finds the asked fact's value, keeps the head's attention, and its loss raises it; "
      "kinds sharing a layer keep their own rows")
PY
for opt in --attn-target --gather-target; do
  for spec in 9.0=1 0.4=1 1.0=0 1.0=x junk; do
    if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
        --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run3" --max-steps 1 $opt "$spec" >"$tmp/at.log" 2>&1 \
        || ! grep -q -- "$opt: '$spec' is not LAYER.HEAD=WEIGHT" "$tmp/at.log"; then
      echo "FAIL: $opt $spec was not refused:"; cat "$tmp/at.log"; exit 1
    fi
  done
done
for spec in 9.0=1 0.4,1.0=1 1.0=0 0.0,0.1,1.0,1.1=1 1.0, junk 1.0,0.1=1 1.0,1.1=1; do
  if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
      --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run3" --max-steps 1 --hop-target "$spec" >"$tmp/at.log" 2>&1 \
      || ! grep -q -- "--hop-target: '$spec' is not L.H\[,L.H\[,L.H\]\]=WEIGHT" "$tmp/at.log"; then
    echo "FAIL: --hop-target $spec was not refused:"; cat "$tmp/at.log"; exit 1
  fi
done
# --hop-target: hop_targets finds the facts a one-step answer reads, in order (checked against the
# chain variant of the same prompt, which spells them out).
$py - "$train" "$tmp" "$corpus" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[1])
import bpe, tasks, train
tok = bpe.Tokenizer.load(sys.argv[2] + "/tok/merges.txt")
pieces = [tok.decode([i]) for i in range(len(tok))]
for task, chain in (("vartrack", "vartrack-chain"), ("multihop", "multihop-chain")):
    for ex, ch in zip(tasks.generate(task, 30, 3, 20, 8, sys.argv[3], "train"),
                      tasks.generate(chain, 30, 3, 20, 8, sys.argv[3], "train")):
        p = tasks.prompt_ids(tok, ex)
        hops = train.hop_targets(pieces, p, len(p) - 1)
        # The chain answer: " X2 = X1 = 123456" or " Anna-17. Anna-17 lives in Nantes".
        want = re.findall(r"[^ =]+", ch["answers"][0]) if task == "vartrack" else \
            [ch["answers"][0].split(".")[0].strip(), ex["answers"][0]]
        got = None if hops is None else [tok.decode([p[i] for i in s]).strip() for s in hops]
        if got != want or not all(s == list(range(s[0], s[-1] + 1)) for s in hops):
            sys.exit(f"FAIL: hop_targets of {task} gave {got}, the chain is {want}")
        # --hop-value first: a vartrack chain's value hop is the value's first digit alone; the
        # names' hops and multihop's are unchanged.
        first = train.hop_targets(pieces, p, len(p) - 1, value_first=True)
        want_first = hops[:-1] + [hops[-1][:1]] if task == "vartrack" else hops
        if first != want_first or (task == "vartrack" and tok.decode([p[first[-1][0]]]) != want[-1][0]):
            sys.exit(f"FAIL: hop_targets(value_first) of {task} gave {first}, not {want_first}")
for task in ("needle", "multihop-chain", "vartrack-chain"):
    ex = tasks.generate(task, 1, 3, 20, 8, sys.argv[3], "train")[0]
    p = tasks.prompt_ids(tok, ex)
    if train.hop_targets(pieces, p, len(p) - 1) is not None:
        sys.exit(f"FAIL: hop_targets found hops in a {task} prompt")
ex = tasks.generate("vartrack", 1, 3, 20, 8, sys.argv[3], "train")[0]
ex["chunks"] = [re.sub(r"VAR X\d+ = \d+\.", "", c) for c in ex["chunks"]]  # the value's link gone
p = tasks.prompt_ids(tok, ex)
if train.hop_targets(pieces, p, len(p) - 1) is not None:
    sys.exit("FAIL: hop_targets followed a chain whose value's link is missing")
print("ok: --hop-target follows each one-step answer's facts")
# hop_rows: a batch's hop supervision covers the --hop-tasks prompts only, up to the hop count.
import torch
exs = [tasks.generate(t, 1, 3, 20, 8, sys.argv[3], "train")[0] for t in ("vartrack", "multihop", "needle", "multihop")]
ps = [tasks.prompt_ids(tok, ex) for ex in exs]
ids = torch.zeros(len(ps), max(map(len, ps)), dtype=torch.long)
for i, p in enumerate(ps):
    ids[i, :len(p)] = torch.tensor(p)
names, spans = [ex["task"] for ex in exs], [(i, len(p) - 1) for i, p in enumerate(ps)]
spans[3] = None  # no answer in this one
for tasks_, n, want in ((train.HOP_TASKS, 3, [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]),
                        (("multihop",), 3, [(0, 1), (1, 1)]), (("vartrack",), 2, [(0, 0), (1, 0)])):
    rows = train.hop_rows(pieces, ids, names, spans, n, tasks_)
    if [(h, i) for h, i, _, _ in rows] != want or any(
            q != spans[i][1] or w != train.hop_targets(pieces, ps[i], q)[h] for h, i, q, w in rows):
        sys.exit(f"FAIL: hop_rows for {tasks_} with {n} hops gave {[(h, i, q) for h, i, q, _ in rows]}")
# ... and a task's ":N" of --hop-tasks stops its supervision at N hops.
for which, n, want in (({"vartrack": 1, "multihop": None}, 3, [(0, 0), (0, 1), (1, 1)]),
                       ({"vartrack": 2}, 1, [(0, 0)]), ({"multihop": 1, "vartrack": None}, 3, [(0, 0), (1, 0), (2, 0), (0, 1)])):
    rows = train.hop_rows(pieces, ids, names, spans, n, which)
    if [(h, i) for h, i, _, _ in rows] != want:
        sys.exit(f"FAIL: hop_rows for {which} with {n} hops gave {[(h, i) for h, i, _, _ in rows]}, not {want}")
if train.parse_hop_tasks("multihop,vartrack:1") != {"multihop": None, "vartrack": 1}:
    sys.exit(f"FAIL: parse_hop_tasks read {train.parse_hop_tasks('multihop,vartrack:1')}")
print("ok: hop_rows supervises the --hop-tasks prompts' hops only, up to a task's :N")
# answer_hop_rows (--hop-answer): with the answer appended, each later answer position of a
# one-step vartrack prompt (its input the value's previous digit) gets the last hop onto the
# value's next digit, and with every=True the earlier hops onto the question's own targets; no
# rows for other tasks, for an answer that is not the value, nor past the hop count.
exs = [tasks.generate(t, 1, 3, 20, 8, sys.argv[3], "train")[0] for t in ("vartrack", "multihop", "vartrack", "vartrack-chain")]
ps = [tasks.prompt_ids(tok, ex) for ex in exs]
ans = [tok.encode(ex["answers"][0]) + [tok.eos] for ex in exs]
ans[2] = tok.encode("123456") + [tok.eos]  # not its value
ids = torch.zeros(len(ps), max(len(p) + len(a) for p, a in zip(ps, ans)), dtype=torch.long)
for i, (p, a) in enumerate(zip(ps, ans)):
    ids[i, :len(p) + len(a)] = torch.tensor(p + a)
names, spans = [ex["task"] for ex in exs], [(i, len(p) - 1, len(p) - 1 + len(a)) for i, (p, a) in enumerate(zip(ps, ans))]
hops = train.hop_targets(pieces, ps[0], len(ps[0]) - 1)
value, q = hops[-1], spans[0][1]
if len(hops) != 3 or len(value) != 6 or [tok.decode([ps[0][v]]) for v in value] != list(exs[0]["answers"][0]):
    sys.exit(f"FAIL: the vartrack prompt's value is not six one-digit tokens: {hops}")
for every in (False, True):
    rows = train.answer_hop_rows(pieces, ids, names, spans, 3, train.HOP_TASKS, every)
    want = [(h, 0, q + k, hops[h] if h < 2 else [value[k]]) for k in range(1, 6) for h in ((0, 1, 2) if every else (2,))]
    if rows != want:
        sys.exit(f"FAIL: answer_hop_rows(every={every}) gave {[(h, i, p) for h, i, p, _ in rows]}, not {[(h, i, p) for h, i, p, _ in want]}")
    if any(ids[0, p].item() != ps[0][value[k - 1]] for k, (_, _, p, _) in zip(range(1, 6), rows[::3 if every else 1])):
        sys.exit("FAIL: an answer hop's query position does not hold the value's previous digit")
for which, n in ((("multihop",), 3), (train.HOP_TASKS, 2), ({"vartrack": 2}, 3)):
    if train.answer_hop_rows(pieces, ids, names, spans, n, which):
        sys.exit(f"FAIL: answer_hop_rows gave rows for {which} with {n} hops, whose chains need 3")
print("ok: --hop-answer supervises a vartrack answer's later digits, onto the asked value's next one")
# var_keys: every "VAR <name> =" of a vartrack prompt and its question's "VAR <name> hold", the
# name's tokens exactly and the '=' or ' hold' after it; none in a multihop prompt.
for ex in tasks.generate("vartrack", 20, 3, 20, 8, sys.argv[3], "train"):
    p = tasks.prompt_ids(tok, ex)
    text = tok.decode(p)
    want = re.findall(r"VAR (X\d+)( =| hold)", text)
    got = [(tok.decode([p[i] for i in span]).strip(), pieces[p[q]]) for q, span in train.var_keys(pieces, p)]
    if len(got) != len(want) or len(want) != 2 * min(3, len(ex["chunks"])) + 2 or any(
            g[0] != w[0] or not g[1].strip() or not w[1].strip().startswith(g[1].strip()) for g, w in zip(got, want)):
        sys.exit(f"FAIL: var_keys found {got}, the prompt has {want}")
    if any(q <= span[-1] or span != list(range(span[0], span[-1] + 1)) for q, span in train.var_keys(pieces, p)):
        sys.exit("FAIL: var_keys put a query before its name's end, or split a name")
ex = tasks.generate("multihop", 1, 3, 20, 8, sys.argv[3], "train")[0]
if train.var_keys(pieces, tasks.prompt_ids(tok, ex)):
    sys.exit("FAIL: var_keys found a VAR name in a multihop prompt")
print("ok: --var-gather-target finds each vartrack name and the token after it")
# right_keys: for every "VAR <name> = <right side>." fact, the right side's first token (' X' of
# a name, the first digit of a value) with the left name's tokens; none in a multihop prompt.
for ex in tasks.generate("vartrack", 20, 3, 20, 9, sys.argv[3], "train"):
    p = tasks.prompt_ids(tok, ex)
    want = re.findall(r"VAR (X\d+) = ([^ .]+)\.", tok.decode(p))
    got = [(tok.decode([p[i] for i in span]).strip(), pieces[p[q]]) for q, span in train.right_keys(pieces, p)]
    if len(want) != 2 * min(3, len(ex["chunks"])) or len(got) != len(want) or any(
            g[0] != w[0] or not w[1].startswith(g[1].strip()) or not g[1].strip() for g, w in zip(got, want)):
        sys.exit(f"FAIL: right_keys found {got}, the prompt has {want}")
    if {pieces[p[q]].strip()[:1] for q, _ in train.right_keys(pieces, p)} - set("X123456789"):
        sys.exit("FAIL: right_keys' query is not a right side's first token")
if train.right_keys(pieces, tasks.prompt_ids(tok, tasks.generate("multihop", 1, 3, 20, 8, sys.argv[3], "train")[0])):
    sys.exit("FAIL: right_keys found a VAR fact in a multihop prompt")
print("ok: --right-gather-target finds each vartrack fact's right side and its name")
PY
for spec in "" foo vartrack,foo multihop,multihop multihop:0 vartrack:4 multihop:x multihop,vartrack:1,multihop:1; do
  if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
      --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run3" --max-steps 1 --hop-target 0.1,1.0=1 \
      --hop-tasks "$spec" >"$tmp/at.log" 2>&1 || ! grep -q -- "--hop-tasks: '$spec' is not" "$tmp/at.log"; then
    echo "FAIL: --hop-tasks '$spec' was not refused:"; cat "$tmp/at.log"; exit 1
  fi
done
# Each bad option set with the message it must be refused with.
for case in "--hop-answer last|--hop-answer needs --hop-target" \
    "--hop-target 0.1,1.0=1 --hop-answer last --hop-answer-weight 0|--hop-answer-weight must be > 0" \
    "--share-prefix 1.5|--share-prefix must be in [0, 1]"; do
  bad=${case%%|*} why=${case#*|}
  # shellcheck disable=SC2086
  if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
      --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run3" --max-steps 1 $bad >"$tmp/at.log" 2>&1 ||
      ! grep -qF -- "$why" "$tmp/at.log"; then
    echo "FAIL: '$bad' was not refused with '$why':"; cat "$tmp/at.log"; exit 1
  fi
done
for opt in --var-gather-target --right-gather-target; do
  if $py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
      --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/run3" --max-steps 1 $opt 2.0=1 \
      >"$tmp/at.log" 2>&1 || ! grep -q -- "$opt: '2.0=1' is not LAYER.HEAD=WEIGHT" "$tmp/at.log"; then
    echo "FAIL: $opt 2.0=1 (layer 2 of 2) was not refused:"; cat "$tmp/at.log"; exit 1
  fi
done
echo "ok: a bad --attn-target, --gather-target, --var-gather-target, --right-gather-target, --hop-target or --hop-tasks is refused"
# The training loop with every kind on, several sharing a layer: a run at stage 2 (where
# vartrack and multihop are drawn; --init-run carries the stage) logs each kind's attention mass.
mkdir -p "$tmp/st2"
$py - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
info = json.load(open(d + "/run/train.json"))
json.dump(dict(info, stage=2), open(d + "/st2/train.json", "w"))
open(d + "/st2/log.jsonl", "w").close()
PY
steps=$(( $($py -c "import json,sys; print(json.load(open(sys.argv[1]))['steps'])" "$tmp/run/train.json") + 6 ))
$py "$train/train.py" --name t --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --head-dim 8 \
  --tokenizer "$tmp/tok" --corpus "$corpus" --out "$tmp/sup" --max-steps "$steps" --tokens 1024 --log-every 1 \
  --init "$tmp/back" --init-run "$tmp/st2" --add-tasks multihop-chain \
  --task-weights vartrack=30,multihop=30,multihop-chain=30 --hop-target 0.1,1.2=1 --attn-target 1.0=1 \
  --gather-target 0.3=1 --var-gather-target 0.2=1 --right-gather-target 1.3=1 --hop-tasks multihop,vartrack:1 >"$tmp/sup.log" 2>&1 || { echo "FAIL: a run with attention supervision:"; cat "$tmp/sup.log"; exit 1; }
$py - "$tmp/sup/log.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
got = {k for r in recs for k in ("attn", "gather", "vgather", "rgather", "hop1", "hop2") if k in r and 0 < r[k] <= 1}
if got != {"attn", "gather", "vgather", "rgather", "hop1", "hop2"}:
    sys.exit(f"FAIL: the supervised run logged attention masses for {sorted(got)} only")
print("ok: a run with --hop-target, --attn-target, --gather-target, --var-gather-target and "
      "--right-gather-target (three in layer 0, three in layer 1) trains and logs each")
PY
# finetune_gpu.sh on the CPU, from the shipped primary: each default recipe (one grows an 8th
# layer) trains two steps in phase A, resumes in phase B (where the grow options must go) and
# is packed with its weights and curves.
"$bin" convert "$root/models/cacheclip-primary.gguf" "$tmp/ship" --format hf >/dev/null
# Two steps past the shipped run's last.
ft_steps=$("$py" -c "import json, sys; print(json.load(open(sys.argv[1]))['steps'] + 2)" "$train/runs/primary/train.json")
DEVICE=cpu BF16= PYTHON=$py EXTRA="--tokens 256 --max-steps $ft_steps --data-workers 0 --long-share 0 --log-every 1" \
  bash "$train/finetune_gpu.sh" "$tmp/ship" "$train/runs/primary" "$corpus" "$tmp/ftw" "$tmp/fto" 60 1 \
  >"$tmp/ft.log" 2>&1 || { echo "FAIL: finetune_gpu.sh:"; tail -40 "$tmp/ft.log"; exit 1; }
for r in short3-16k-rg short3-16k short3-16k-rg-8l short23-16k-rg; do
  mkdir -p "$tmp/ftx/$r" && tar xzf "$tmp/fto/$r.tgz" -C "$tmp/ftx/$r" || { echo "FAIL: no packed $r"; exit 1; }
done
$py - "$tmp/ftx" "$ft_steps" <<'PY'
import json, sys
d, want = sys.argv[1], int(sys.argv[2])
for r, layers in (("short3-16k-rg", 7), ("short3-16k", 7), ("short3-16k-rg-8l", 8), ("short23-16k-rg", 7)):
    cfg = json.load(open(f"{d}/{r}/hf/config.json"))
    info = json.load(open(f"{d}/{r}/train.json"))
    steps = [json.loads(l)["step"] for l in open(f"{d}/{r}/log.jsonl") if l.strip()]
    if cfg["num_hidden_layers"] != layers or info["steps"] != want or steps[-1] != want:
        sys.exit(f"FAIL: finetune_gpu.sh's {r}: {cfg['num_hidden_layers']} layers, {info['steps']} steps "
                 f"(expected {want})")
    if not info["args"]["resume"] or info["args"]["grow_at"]:
        sys.exit(f"FAIL: {r}'s phase B did not resume without its grow options: {info['args']}")
    if info["args"]["hop_value"] != "first":
        sys.exit(f"FAIL: {r} did not supervise the value hop onto the value's first digit: {info['args']}")
print("ok: finetune_gpu.sh runs its recipes in two phases and packs each (8 layers where grown)")
PY
echo "all training script checks passed"
