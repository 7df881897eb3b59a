#!/usr/bin/env bash
# Prefill/decode of the OpenCL backend (PoCL here, or a GPU driver) against the CPU backend on
# the same model, in one script, and the TTFT breakdown of cacheclip with the primary on the
# device (docs/PERFORMANCE.md, issue 8). Random weights: speed does not depend on the values.
#   bench/opencl_vs_cpu.sh [device=0:0] [type=f16]
set -euo pipefail
cd "$(dirname "$0")/.."
dev=${1:-0:0}
type=${2:-f16}
dir=build/bench-models
mkdir -p "$dir"
p="$dir/small-40m-$type.gguf"
a="$dir/small-aux-$type.gguf"
[[ -f "$p" ]] || build/cacheclip make-model --preset qwen2.5-0.5b --vocab 32000 --embd 512 --layers 8 --heads 8 \
  --kv-heads 2 --head-dim 64 --ff 1536 --type "$type" -o "$p" >/dev/null
[[ -f "$a" ]] || build/cacheclip make-model --preset qwen2.5-0.5b --vocab 32000 --embd 128 --layers 2 --heads 2 \
  --kv-heads 1 --head-dim 64 --ff 384 --type "$type" --seed 9 --tokenizer "$p" -o "$a" >/dev/null
build/cacheclip devices
build/cacheclip bench -m "$p" -t 2 -p 128,512 -n 16 -r 2
build/cacheclip bench -m "$p" -t 2 -p 128,512 -n 16 -r 2 --backend opencl --device "$dev"
# A RAG request: 4 documents of ~400 tokens (byte-level tokenizer), chunks stored first.
docs=$(mktemp -d)
trap 'rm -rf "$docs"' EXIT
for i in 1 2 3 4; do head -c 400 /dev/urandom | base64 -w0 | head -c 400 >"$docs/$i.txt"; done
build/cacheclip precompute -m "$p" --store "$docs/store" --docs "$docs" --prefix "Answer from the documents." >/dev/null 2>&1
for be in cpu opencl; do
  echo "== cacheclip, primary on $be, aux on the CPU"
  build/cacheclip rag -m "$p" --aux "$a" --store "$docs/store" --prefix "Answer from the documents." \
    --doc "$docs/1.txt" --doc "$docs/2.txt" --doc "$docs/3.txt" --doc "$docs/4.txt" -q "Which document?" \
    --method cacheclip -r 0.2 -n 1 --primary-backend "$be" --device "$dev" 2>&1 >/dev/null | grep -E "TTFT|placement"
done
