#!/usr/bin/env bash
# docs/QUALITY.md, shipped-pair rows: every method at the four recompute ratios on the pair in
# models/ (primary + its trained auxiliary), on fresh prompts of the five tasks of
# models/train/tasks.py and its boundary needle: 7 chunks of ~66 words of held-out Wikipedia
# filler (~1,000 tokens), seeds 7001-7006 (never used in training or in the model cards), N prompts per task.
# cacheclip-snap: cacheclip with --snap (windows pulled back to their chunk's start), same prompts.
#   bench/eval_pair.sh [N=100] [out-dir=build/eval]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
out=${2:-build/eval}
corpus=${CACHECLIP_SHARED:-../shared}/corpus/wikipedia-nq-passages.txt
mkdir -p "$out"
tasks=()
i=0
for t in needle multikey multivalue vartrack multihop boundary; do
  i=$((i + 1))
  python3 models/train/tasks.py --task "$t" --n "$n" --chunks 7 --chunk-words 66 --seed $((7000 + i)) \
    --split heldout --corpus "$corpus" -o "$out/pair-$t.json"
  tasks+=(--tasks "$out/pair-$t.json")
done
# The answer-by-chain variants on the very prompts of vartrack and multihop (their seeds).
for ts in vartrack-chain:7004 multihop-chain:7005; do
  t=${ts%:*}
  python3 models/train/tasks.py --task "$t" --n "$n" --chunks 7 --chunk-words 66 --seed "${ts#*:}" \
    --split heldout --corpus "$corpus" -o "$out/pair-$t.json"
  tasks+=(--tasks "$out/pair-$t.json")
done
build/cacheclip eval -m models/cacheclip-primary.gguf --aux models/cacheclip-aux.gguf "${tasks[@]}" -N "$n" \
  --max-answer 24 --methods prefix,naive,epic,epic-r,cacheblend,ape,cacheclip,cacheclip-snap --ratios 0.05,0.1,0.2,0.4 \
  --json-out "$out/pair.json" --svg "$out/pair.svg" --samples-out "$out/pair-samples.jsonl" | tee "$out/pair.txt"
# Which chain the vartrack and multihop answers follow (asked, the distractor, or neither):
python3 bench/chain_picks.py "$out/pair-samples.jsonl" "$out/pair-vartrack.json" "$out/pair-multihop.json" \
  "$out/pair-vartrack-chain.json" "$out/pair-multihop-chain.json" | tee "$out/pair-picks.md"
