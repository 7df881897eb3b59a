#!/usr/bin/env bash
# Prefill/decode speed on the exact Qwen2.5 shapes of ../shared/docs/PERF-ANCHORS.md (random
# weights: speed does not depend on the values), one weight type after another, in one run.
#   bench/perf_qwen.sh [preset=qwen2.5-0.5b] [types="f32 f16 bf16 q8_0 q4_0"] [threads=2] [pp=512,2048] [tg=32]
# Run it on an idle machine: anything else running makes the figures noise.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-qwen2.5-0.5b}
types=${2:-f32 f16 bf16 q8_0 q4_0}
threads=${3:-2}
pp=${4:-512,2048}
tg=${5:-32}
dir=build/bench-models
mkdir -p "$dir"
for t in $types; do
  f="$dir/$preset-$t.gguf"
  [[ -f "$f" ]] || build/cacheclip make-model --preset "$preset" --type "$t" -o "$f" >/dev/null
  build/cacheclip bench -m "$f" -t "$threads" -p "$pp" -n "$tg" -r 3
done
