#!/usr/bin/env bash
# The exact Qwen2.5-0.5B shape (random F16 weights, ~1 GB): inspect must report 494,032,768
# parameters (tied embedding counted once) and 12,288 bytes of f16 KV per token.
set -euo pipefail
bin=${1:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" make-model --preset qwen2.5-0.5b --type f16 -o "$tmp/q.gguf"
json=$("$bin" inspect --json "$tmp/q.gguf")
python3 - "$json" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["n_params"] == 494032768, d["n_params"]
assert d["kv_bytes_per_token"]["f16"] == 12288, d["kv_bytes_per_token"]
assert d["kv_bytes_per_token"]["f32"] == 24576
assert d["tied_embeddings"] and d["qkv_bias"] and d["n_layer"] == 24
print("ok: qwen2.5-0.5b shape: 494,032,768 parameters, 12,288 KV bytes/token (f16)")
PY
