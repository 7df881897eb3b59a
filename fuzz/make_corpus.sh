#!/usr/bin/env bash
# Regenerates the fuzz seed corpus from the project's own tools (no third-party data):
# small GGUF files (byte-level BPE and SentencePiece tokenizers), safetensors files,
# tokenizer.json files (+ tokenizer_config.json after a NUL byte) and a llama2.c checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/cacheclip}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
C=fuzz/corpus
rm -rf "$C"; mkdir -p $C/{gguf,safetensors,tokenizer_json,llama2c}
python3 - "$T/spm" <<'PY'
# A tiny Llama-2-style (SentencePiece BPE, byte fallback) tokenizer.json + tokenizer_config.json.
import json, os, sys
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256): vocab["<0x%02X>" % b] = len(vocab)
pieces = ["\u2581", "e", "t", "h", "a", "\u2581t", "he", "\u2581the", "\u2581a", "at", "\u2581at"]
for p in pieces: vocab[p] = len(vocab)
merges = ["\u2581 t", "h e", "\u2581t he", "\u2581 a", "a t", "\u2581 at"]
tj = {"version": "1.0", "added_tokens": [
        {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, c in enumerate(["<unk>", "<s>", "</s>"])],
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
      "pre_tokenizer": None,
      "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                   {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
      "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab, "merges": merges}}
json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w"), ensure_ascii=False)
json.dump({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False,
           "chat_template": "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"},
          open(os.path.join(d, "tokenizer_config.json"), "w"))
PY
small="--preset tiny-llama --embd 32 --heads 2 --kv-heads 1 --ff 32 --layers 1"
$B make-model $small --vocab 260 --type q4_0 -o $C/gguf/bpe-q4_0.gguf >/dev/null
$B make-model --preset tiny-qwen2 --embd 32 --heads 2 --kv-heads 1 --ff 32 --layers 1 --vocab 260 --type q8_0 \
  -o $C/gguf/qwen2-q8_0.gguf >/dev/null
$B make-model $small --tokenizer "$T/spm" --type q4_0 -o $C/gguf/spm-q4_0.gguf >/dev/null
$B make-model $small --vocab 260 --format hf --type f16 -o "$T/hf" >/dev/null
$B make-model $small --tokenizer "$T/spm" --format hf --type bf16 -o "$T/hfspm" >/dev/null
cp "$T/hf/model.safetensors" $C/safetensors/f16.safetensors
cp "$T/hfspm/model.safetensors" $C/safetensors/bf16.safetensors
cp "$T/hf/tokenizer.json" $C/tokenizer_json/bpe.json
{ cat "$T/hfspm/tokenizer.json"; printf '\0'; cat "$T/hfspm/tokenizer_config.json"; } >$C/tokenizer_json/spm-with-config.json
{ cat "$T/spm/tokenizer.json"; printf '\0'; cat "$T/spm/tokenizer_config.json"; } >$C/tokenizer_json/spm-handmade.json
python3 - $C/llama2c/v0-unshared.bin <<'PY'
import struct, sys
dim, hidden, layers, heads, kv, vocab, seq = 8, 12, 1, 2, 1, -6, 4
hs = dim // heads; kvd = hs * kv; V = abs(vocab)
n = V*dim + layers*(dim + dim*dim + 2*kvd*dim + dim*dim + dim + 3*hidden*dim) + dim + seq*hs + V*dim
open(sys.argv[1], "wb").write(struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) +
                              struct.pack("<%df" % n, *[i * 0.01 for i in range(n)]))
PY
du -sh $C/*
