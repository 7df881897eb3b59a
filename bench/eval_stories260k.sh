#!/usr/bin/env bash
# docs/QUALITY.md, stories260K rows: the continuation task on stories260K (../shared) with the
# primary's first 2 of 5 layers as the auxiliary model (--aux-layers 2; same tokenizer).
# "Real text" for a TinyStories model is its own kind of text: 200 stories sampled from the
# model itself (temperature 0.8, seeds 1..200, 220 tokens each) are the passages; each prompt
# takes 6 of them (64 tokens each, the last cut in half: 32 reused + 32 in the question part)
# and scores the next 16 tokens. 100 seeded prompts (a story may serve several prompts).
# Then continuation-1doc (--one-doc): each prompt is ONE story chunked for retrieval, 6 chunks
# of 32 tokens (the last cut in half: 16 reused + 16 in the question part), the next 16 tokens
# scored; every chunk depends on the ones before it. 200 prompts, one per story.
#   bench/eval_stories260k.sh [out-dir=build/eval]
set -euo pipefail
cd "$(dirname "$0")/.."
S=${CACHECLIP_SHARED:-../shared}/models/stories260K
out=${1:-build/eval}
mkdir -p "$out"
: >"$out/stories.txt"
for s in $(seq 1 200); do
  build/cacheclip generate -m "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -p "" -n 220 --temp 0.8 --seed "$s" 2>/dev/null \
    | tr '\n' ' ' >>"$out/stories.txt"
  printf '\n\n' >>"$out/stories.txt"
done
build/cacheclip eval -m "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --aux-layers 2 --continuation \
  --text "$out/stories.txt" -N 100 --eval-chunks 6 --eval-chunk-len 64 --cont 16 --store-type f16 \
  --json-out "$out/stories260k.json" --svg "$out/stories260k.svg"
build/cacheclip eval -m "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --aux-layers 2 --continuation --one-doc \
  --text "$out/stories.txt" -N 200 --eval-chunks 6 --eval-chunk-len 32 --cont 16 --store-type f16 \
  --json-out "$out/stories260k-1doc.json" --svg "$out/stories260k-1doc.svg"
