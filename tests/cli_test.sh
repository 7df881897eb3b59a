#!/usr/bin/env bash
# End-to-end checks of the commands the README shows, on models the writer makes.
set -euo pipefail
bin=${1:?usage: cli_test.sh PATH/TO/cacheclip}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/cli_lib.sh"

"$bin" make-model --preset tiny-qwen2 --type f16 -o "$tmp/q.gguf" >/dev/null
out=$("$bin" inspect "$tmp/q.gguf")
check "inspect arch" "architecture     qwen2" "$out"
check "inspect tied" "tied (output = token embedding)" "$out"
check "inspect kv" "KV per token     256 bytes f16/bf16, 512 bytes f32" "$out"
json=$("$bin" inspect --json "$tmp/q.gguf")
check "inspect json" '"n_head_kv": 2' "$json"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["n_layer"]==2 and d["tensor_types"]["F16"]>0' "$json" \
  && echo "ok: inspect json parses" || { echo "FAIL: inspect json"; fails=$((fails + 1)); }

"$bin" make-model --preset tiny-llama --format hf --type bf16 -o "$tmp/hf" >/dev/null
check "hf folder inspect" "huggingface" "$("$bin" inspect "$tmp/hf")"
"$bin" convert "$tmp/hf" "$tmp/back.gguf" --type q8_0 >/dev/null
check "convert to q8_0" "Q8_0 x" "$("$bin" inspect "$tmp/back.gguf")"

ids=$("$bin" tokenize "$tmp/q.gguf" "Hello world" --ids --no-special)
check "tokenize ids" "72 101 108 108 111 32 119 111 114 108 100" "$ids"
echo -n "from a file" >"$tmp/text.txt"
check "tokenize --file" "11 tokens" "$("$bin" tokenize "$tmp/q.gguf" --file "$tmp/text.txt" --no-special)"
check "tokenize special off" "60 124" "$("$bin" tokenize "$tmp/q.gguf" "<|im_start|>" --ids --no-special)"
check "tokenize special on" "257" "$("$bin" tokenize "$tmp/q.gguf" "<|im_start|>" --ids --no-special --parse-special)"
check "tokenize json" '"count":2' "$("$bin" tokenize "$tmp/q.gguf" "hi" --json --no-special)"

# Bad input: one clear line, non-zero exit.
run_fail "missing model" "no such file or directory" "$bin" inspect "$tmp/nope.gguf"
head -c 1000 "$tmp/q.gguf" >"$tmp/cut.gguf"
run_fail "truncated model" "cut.gguf" "$bin" inspect "$tmp/cut.gguf"
printf 'GGUF\x09\x00\x00\x00' >"$tmp/v9.gguf"
run_fail "bad version" "unsupported GGUF version 9" "$bin" inspect "$tmp/v9.gguf"
run_fail "unknown preset" "unknown model preset 'huge'" "$bin" make-model --preset huge -o "$tmp/x.gguf"
run_fail "hf quantized" "hold F32, F16 or BF16" "$bin" make-model --format hf --type q4_0 -o "$tmp/x"
run_fail "no text" "no text" "$bin" tokenize "$tmp/q.gguf"

shared=${CACHECLIP_SHARED:-../shared}
if [[ -f "$shared/models/stories260K/stories260K.bin" ]]; then
  out=$("$bin" inspect "$shared/models/stories260K/stories260K.bin" --tokenizer "$shared/models/stories260K/tok512.bin")
  check "stories260K params" "parameters       260032" "$out"
  gen=$("$bin" generate -m "$shared/models/stories260K/stories260K.bin" -p "" -n 200 2>/dev/null)
  if [[ "$gen" == "$(cat "$shared/models/stories260K/golden-greedy-200.txt")" ]]; then
    echo "ok: generate reproduces the stories260K golden text"
  else
    echo "FAIL: generate output differs from golden-greedy-200.txt"; fails=$((fails + 1))
  fi
else
  echo "skip: stories260K (no shared data at $shared)"
fi
out=$("$bin" generate -m "$tmp/q.gguf" -p "Hello" -n 8 --temp 0.8 --top-k 20 --seed 3 2>&1)
check "generate speeds" "generation: " "$out"
a=$("$bin" generate -m "$tmp/q.gguf" -p "Hello" -n 8 --temp 0.8 --seed 3 2>/dev/null)
b=$("$bin" generate -m "$tmp/q.gguf" -p "Hello" -n 8 --temp 0.8 --seed 3 2>/dev/null)
[[ "$a" == "$b" ]] && echo "ok: generate is reproducible with a seed" || { echo "FAIL: seeded generate differs"; fails=$((fails + 1)); }
check "generate chat" "generation: " "$("$bin" generate -m "$tmp/q.gguf" -p "Hi" -n 4 --chat 2>&1)"
run_fail "generate bad kv type" "unknown KV cache type 'q3'" "$bin" generate -m "$tmp/q.gguf" -p "x" --kv-type q3
run_fail "generate context" "exceed the context of 4" "$bin" generate -m "$tmp/q.gguf" -p "Hello there" -n 8 -c 4
run_fail "generate bad temp" "temperature" "$bin" generate -m "$tmp/q.gguf" -p "x" --temp -1

# Idle OpenMP threads sleep: with OMP_WAIT_POLICY unset, the program restarts itself with it
# PASSIVE, so libgomp (which reads it before main) spins 0 rounds; a value the user set is kept.
# OMP_DISPLAY_ENV makes libgomp print what it read; the last report is the image that runs.
out=$(env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose "$bin" --version 2>&1)
last=$(grep "GOMP_SPINCOUNT" <<<"$out" | tail -1)
[[ "$last" == *"'0'"* ]] && echo "ok: OpenMP starts passive without OMP_WAIT_POLICY ($last)" \
  || { echo "FAIL: OpenMP spin count with OMP_WAIT_POLICY unset: $last"; fails=$((fails + 1)); }
check "--version after the restart" "cacheclip 0.1.0" "$out"
out=$(OMP_WAIT_POLICY=ACTIVE OMP_DISPLAY_ENV=true "$bin" --version 2>&1)
check "a user's OMP_WAIT_POLICY wins" "OMP_WAIT_POLICY = 'ACTIVE'" "$out"
[[ $(grep -c "DISPLAY ENVIRONMENT BEGIN" <<<"$out") -eq 1 ]] && echo "ok: no restart when the user set the policy" \
  || { echo "FAIL: restarted although OMP_WAIT_POLICY was set"; fails=$((fails + 1)); }

if [[ $fails -ne 0 ]]; then echo "$fails CLI checks failed"; exit 1; fi
echo "all CLI checks passed"
