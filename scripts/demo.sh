#!/usr/bin/env bash
# Sets up (packages + build), then runs the main job on models the project makes itself:
# writes a Qwen2-architecture model and a Llama model with random weights, inspects them,
# tokenizes text and generates with them (random weights: the text is noise, the speed is real).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=build/cacheclip
out=build/demo
mkdir -p "$out"
echo "== make-model: a tiny qwen2 (GGUF, Q8_0) and a tiny llama (Hugging Face folder, BF16)"
$bin make-model --preset tiny-qwen2 --type q8_0 -o "$out/tiny-qwen2.gguf"
$bin make-model --preset tiny-llama --format hf --type bf16 -o "$out/tiny-llama-hf"
echo; echo "== inspect $out/tiny-qwen2.gguf"
$bin inspect "$out/tiny-qwen2.gguf"
echo; echo "== inspect $out/tiny-llama-hf"
$bin inspect "$out/tiny-llama-hf"
echo; echo "== tokenize"
$bin tokenize "$out/tiny-qwen2.gguf" "<|im_start|>user
Which chunk holds the answer?<|im_end|>" --parse-special
echo; echo "== generate (greedy, 32 tokens)"
$bin generate -m "$out/tiny-qwen2.gguf" -p "Retrieved chunk one." -n 32
