#!/usr/bin/env bash
# TTFT of every reuse method against full prefill (docs/PERFORMANCE.md, issues 4 and 6):
# writes a Qwen2.5-0.5B-shaped primary and a ~12x smaller auxiliary model with the same
# tokenizer (random weights: speed does not depend on the values), then runs bench_rag on
# prefix 64 + 8 chunks x 512 + question 32, the concurrent-pipeline table, and the TTFT scaling.
#   bench/rag_ttft.sh [type=f16] [threads=2] [reps=3] [scaling=2048,4096,8192,16384]
# Run it on an idle machine: anything else running makes the figures noise.
set -euo pipefail
cd "$(dirname "$0")/.."
type=${1:-f16}
threads=${2:-2}
reps=${3:-3}
scaling=${4:-2048,4096,8192,16384}
dir=build/bench-models
mkdir -p "$dir"
p="$dir/qwen2.5-0.5b-$type.gguf"
a="$dir/aux-qwen-50m-$type.gguf"
[[ -f "$p" ]] || build/cacheclip make-model --preset qwen2.5-0.5b --type "$type" -o "$p" >/dev/null
[[ -f "$a" ]] || build/cacheclip make-model --preset qwen2.5-0.5b --type "$type" --embd 256 --layers 4 --heads 4 \
  --kv-heads 2 --head-dim 64 --ff 1024 --seed 7 --tokenizer "$p" -o "$a" >/dev/null
build/bench/bench_rag "$p" "$a" -t "$threads" -r "$reps" --pipeline 1
build/bench/bench_rag "$p" "$a" -t "$threads" -r 1 --chunks 1 --scaling "$scaling"
