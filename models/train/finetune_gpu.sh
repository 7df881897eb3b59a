#!/usr/bin/env bash
# Fine-tunes the shipped primary on one CUDA GPU, several recipes side by side (one process
# each: a 1.6M-parameter model leaves the GPU idle most of a step, so four runs cost little more
# than one), in two phases: MIN_A minutes at the recipe's learning rate, then MIN_B more at a
# tenth of it (a cool-down; --resume carries the optimizer). After each phase every run's
# weights and curves are packed into OUT/<recipe>.tgz, so a run cut short still gives phase A.
#
#   models/train/finetune_gpu.sh INIT_HF INIT_RUN CORPUS WORK OUT [MIN_A] [MIN_B]
#
# INIT_HF: `cacheclip convert models/cacheclip-primary.gguf DIR --format hf` (its tokenizer.json
# is the tokenizer train.py reads), or a packed result unpacked there over it; INIT_RUN:
# models/train/runs/primary (the shipped run's train.json and log.jsonl, whose step count and
# curves the fine-tunes carry on); CORPUS: the Wikipedia passages file; WORK: scratch folder.
# Needs a python3 with a CUDA torch (PYTHON; DEVICE=cpu BF16= EXTRA="--tokens 512" tries the
# script on a CPU: BF16= drops the bf16 autocast, which runs ~10x slower than fp32 on a CPU
# without AVX512-BF16; EXTRA's arguments go last, so they win).
# Unpack a result with `tar xzf OUT/R.tgz -C DIR`, then `cacheclip convert DIR/hf X.gguf`.
set -uo pipefail
[[ $# -ge 5 ]] || { sed -n 2,17p "$0"; exit 2; }
init=$1 initrun=$2 corpus=$3 work=$4 out=$5 min_a=${6:-5.5} min_b=${7:-1.0}
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
for f in "$init/config.json" "$init/model.safetensors" "$initrun/train.json" "$corpus"; do
  [[ -f $f ]] || { echo "finetune_gpu: $f is missing" >&2; exit 2; }
done
[[ -f $init/merges.txt || -f $init/tokenizer.json ]] || { echo "finetune_gpu: $init has no tokenizer" >&2; exit 2; }
spent=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'] / 60)" "$initrun/train.json")
mkdir -p "$work" "$out"
export OMP_WAIT_POLICY=PASSIVE PYTHONUNBUFFERED=1

# The shipped primary's last recipe (runs/primary/train.json), less the grow options.
base=(--name primary --dim 128 --layers 7 --heads 4 --kv-heads 2 --ffn 384 --head-dim 32
      --lm-share 0.1 --lm-weight 0.1 --copy-share 0.05 --long-share 0.3
      --add-tasks vartrack-chain,multihop-chain,multihop-crowd
      --long-tasks needle,multikey,vartrack-chain,multihop-chain,vartrack,multihop
      --stage-shape 2-3:10-25 --first-weight 4 --attn-target 4.1=1 --gather-target 2.3=1
      --hop-target 4.1,5.1,6.1=3 --warmup 100 --device "${DEVICE:-cuda}" --threads 1
      --tokenizer "$init" --corpus "$corpus" --ckpt-minutes 100 --log-every 20)
# Recipe name | its arguments on top of base (the last of a repeated argument wins). These are
# the next run's: vartrack's prompts at three chunks of 8-16 words, so every chain has three
# links and a batch holds ~30 of them (on the CPU this recipe learned the second hop in ~600
# steps, where the base's shapes had reached 0.69 in 3,100 GPU steps), each fact's right side
# gathering its name (--right-gather-target) and the value hop supervised onto the value's first
# digit (--hop-value first: on two-link chains on the CPU, answers then followed the value
# lookup, 0.03 -> 0.8 in ~500 steps, where with the whole value as the target they stayed at
# ~0.1; docs/QUALITY.md). One recipe without the right-side gather, one with an 8th layer, one
# with two- and three-link chains mixed. On the CPU these three-link recipes learned the third
# hop only from a model that had learned the two-link value read first: start them from the
# shipped primary (step 26,102, which has; models/train/runs/primary as INIT_RUN) or from
# models/train/candidates/primary-2026-12-06, not from a primary before step 22,463.
# recipes/ holds the earlier runs' (gpu-2026-12-04.txt: the first GPU run).
short=(--stage-shape 3-3:8-16 --long-share 0.15 --long-tasks needle,vartrack-chain,vartrack,multihop
       --lm-share 0.05 --copy-share 0.0 --var-gather-target 2.2=1 --hop-tasks multihop,vartrack
       --task-weights vartrack=12,vartrack-chain=4,multihop=3,multihop-chain=2,multihop-crowd=1,multikey=2
       --hop-value first)
recipes=(
  "short3-16k-rg|${short[*]} --seed 42 --lr 1e-3 --tokens 16384 --data-workers 3 --right-gather-target 2.2=1"
  "short3-16k|${short[*]} --seed 43 --lr 1e-3 --tokens 16384 --data-workers 3"
  "short3-16k-rg-8l|${short[*]} --seed 44 --lr 1e-3 --tokens 16384 --data-workers 3 --right-gather-target 2.2=1 --layers 8 --grow-at 6 --grow-qk-from 4 --hop-target 4.1,5.1,7.1=3"
  "short23-16k-rg|${short[*]} --seed 45 --lr 1e-3 --tokens 16384 --data-workers 3 --right-gather-target 2.2=1 --stage-shape 2-3:8-16"
)

# RECIPES=FILE replaces them: one "name|arguments" line each ('#' lines are comments).
if [[ -n ${RECIPES:-} ]]; then
  mapfile -t recipes < <(grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*#' "$RECIPES")
fi

run_phase() {  # phase minutes-total extra-args...
  local phase=$1 total=$2; shift 2
  local pids=()
  for r in "${recipes[@]}"; do
    local name=${r%%|*} args=${r#*|}
    # shellcheck disable=SC2086
    "$py" "$here/train.py" "${base[@]}" $args "$@" ${BF16---bf16} ${EXTRA:-} --minutes "$total" \
      --out "$work/$name" >>"$work/$name.console" 2>&1 &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  for r in "${recipes[@]}"; do
    local name=${r%%|*}
    cp "$work/$name.console" "$work/$name/console.txt" 2>/dev/null
    (cd "$work/$name" && tar czf "$out/$name.tgz" --ignore-failed-read hf/config.json hf/model.safetensors \
       log.jsonl train.json console.txt 2>/dev/null)
    echo "== $name after phase $phase: $(tail -1 "$work/$name.console")"
  done
  return $rc
}

t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -1
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
total_a=$("$py" -c "print($spent + $min_a)")
total_b=$("$py" -c "print($spent + $min_a + $min_b)")
fail=0
run_phase A "$total_a" --init "$init" --init-run "$initrun" || fail=1
echo "phase A done at $(( $(date +%s) - t0 )) s"
# Cool-down: the same runs resumed at a tenth of their learning rate (the last --lr wins).
phase_b=()
for i in "${!recipes[@]}"; do
  r=${recipes[$i]}
  lr=$(sed -E 's/.*--lr ([^ ]+).*/\1/' <<<"$r")
  # --resume carries the grown model: its grow options need an --init, which phase B has not.
  r=$(sed -E 's/ --grow-(at|qk-from) [^ ]+//g' <<<"$r")
  recipes[$i]="$r --lr $("$py" -c "print($lr / 10)")"
done
run_phase B "$total_b" --resume || fail=1
echo "phase B done at $(( $(date +%s) - t0 )) s"
for r in "${recipes[@]}"; do
  n=${r%%|*}
  grep -h '"step"' "$work/$n/log.jsonl" 2>/dev/null | tail -1 | cut -c1-400
done
# A run that failed in either phase fails the script (the others are still packed).
((fail == 0)) || { echo "finetune_gpu: a run failed (see its == line above)" >&2; exit 1; }
