#!/usr/bin/env bash
# Reproduces the shipped primary/auxiliary pair from scratch (issue 7), in two steps:
#
#   models/train/make_pair.sh train   tokenizer (bpe.py), then both models trained side by side
#                                     by train.py, one thread each, to the shipped step counts
#                                     (~15 h for the primary, ~3.5 s per step on one core for most of it)
#   models/train/make_pair.sh ship    HF export -> GGUF (F16) under models/, evaluation on fresh
#                                     held-out prompts, model cards, curves (models/cards/)
#   models/train/make_pair.sh         both
#
# Environment: PRIMARY_STEPS1 ... PRIMARY_STEPS13 / PRIMARY_STEPS / AUX_STEPS (the shipped runs'
# step counts: the primary's base mix up to PRIMARY_STEPS1, its re-weighted mix at a constant
# learning rate up to PRIMARY_STEPS2, then the same mix with the learning rate falling linearly
# to LR_MIN x over COOL_STEPS steps (then held there) up to PRIMARY_STEPS3; then, with the
# answer-by-chain variants added, at the constant rate again up to PRIMARY_STEPS4; then with half
# the batches long ones that carry the chain tasks too, up to PRIMARY_STEPS5, and that mix cooled
# down over COOL2_STEPS up to PRIMARY_STEPS6; then a fine-tune in its own folder (primary-ft)
# from those weights, at a constant rate up to PRIMARY_STEPS7, cooled down over COOL3_STEPS up to
# PRIMARY_STEPS8; then a second fine-tune (primary-att) from those, with attention supervision
# of the first hop, at a constant rate up to PRIMARY_STEPS9, cooled down over COOL4_STEPS up to
# PRIMARY_STEPS10; then a third (primary-hop) from those, grown to 7 layers, with the one-step
# answers' lookups supervised, at a constant rate up to PRIMARY_STEPS11, re-weighted up to
# PRIMARY_STEPS12 and again up to PRIMARY_STEPS13, cooled down over COOL5_STEPS up to PRIMARY_STEPS14);
# then a fourth (primary-2link) from those, on two-link variable chains, up to PRIMARY_STEPS15; a
# fifth (primary-3link) from those, on three-link chains, up to PRIMARY_STEPS16, at a tenth of the
# rate up to PRIMARY_STEPS17; a sixth (primary-3link-b) from those, the same on fresh batches, up
# to PRIMARY_STEPS18, at a tenth of the rate up to PRIMARY_STEPS),
# MINUTES (an optional wall-clock cap per run, default none), WORK (scratch folder, default
# build/train), CACHECLIP_CORPUS (the Wikipedia passages, default ../shared/corpus/...),
# EVAL_N (prompts per task, default 200), CACHECLIP_BIN (default build/cacheclip),
# TRAIN_ARGS (more train.py arguments for every run, e.g. "--device cuda --data-workers 12" on a
# GPU machine: batches seeded by step, the same whatever the worker count), PYTHON (default
# /usr/bin/python3).
# Training runs under /usr/bin/python3 with Debian's python3-torch (scripts/setup.sh installs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CACHECLIP_BIN:-$root/build/cacheclip}
work=${WORK:-$root/build/train}
minutes=${MINUTES:-100000}
primary_steps1=${PRIMARY_STEPS1:-5642}
primary_steps2=${PRIMARY_STEPS2:-9435}
primary_steps3=${PRIMARY_STEPS3:-10435}
primary_steps4=${PRIMARY_STEPS4:-11205}
primary_steps5=${PRIMARY_STEPS5:-12984}
primary_steps6=${PRIMARY_STEPS6:-13334}
primary_steps7=${PRIMARY_STEPS7:-15674}
primary_steps8=${PRIMARY_STEPS8:-15874}
primary_steps9=${PRIMARY_STEPS9:-17574}
primary_steps10=${PRIMARY_STEPS10:-17874}
primary_steps11=${PRIMARY_STEPS11:-18524}
primary_steps12=${PRIMARY_STEPS12:-19765}
primary_steps13=${PRIMARY_STEPS13:-20500}
primary_steps14=${PRIMARY_STEPS14:-20700}
primary_steps15=${PRIMARY_STEPS15:-22463}
primary_steps16=${PRIMARY_STEPS16:-23569}
primary_steps17=${PRIMARY_STEPS17:-23672}
primary_steps18=${PRIMARY_STEPS18:-24964}
primary_steps=${PRIMARY_STEPS:-26102}
cool_steps=${COOL_STEPS:-1000}
cool2_steps=${COOL2_STEPS:-350}
cool3_steps=${COOL3_STEPS:-200}
cool4_steps=${COOL4_STEPS:-300}
cool5_steps=${COOL5_STEPS:-200}
lr_min=${LR_MIN:-0.1}
aux_steps=${AUX_STEPS:-15371}
eval_n=${EVAL_N:-200}
corpus=${CACHECLIP_CORPUS:-$root/../shared/corpus/wikipedia-nq-passages.txt}
py=${PYTHON:-/usr/bin/python3}
read -r -a train_args <<<"${TRAIN_ARGS:-}"
train="$root/models/train"
what=${1:-all}
[[ -f "$corpus" ]] || { echo "make_pair: no corpus at $corpus (set CACHECLIP_CORPUS)" >&2; exit 1; }
[[ -x "$bin" ]] || "$root/scripts/setup.sh"
mkdir -p "$work"

# The two models. Change them here only: the cards read the sizes back from the runs.
primary=(--name primary --dim 128 --layers 5 --heads 4 --kv-heads 2 --ffn 384 --lr 2e-3 --seed 1)
aux=(--name aux --dim 64 --layers 2 --heads 2 --kv-heads 1 --ffn 192 --lr 3e-3 --seed 2)
# The primary's second phase (resumed from its checkpoint at PRIMARY_STEPS1): the two chain tasks
# of stage 2 sampled 4x as often as the others, less plain text (10%, was 20%) and copy (5%, was
# 15%). On the base mix alone they had stayed at ~10% accuracy for ~2,000 steps.
primary_phase2=(--task-weights vartrack=4,multihop=4 --lm-share 0.1 --copy-share 0.05)
# Its third phase: the same mix, cooled down. From 7,733 to 9,109 constant-rate steps had not
# moved the validation scores (held-out perplexity 152.4 at 9,109); the cool-down to 10,435
# reached 123.2 and raised multikey.
primary_phase3=("${primary_phase2[@]}" --decay-from "$primary_steps2" --decay-steps "$cool_steps" --lr-min "$lr_min")
# Its fourth phase: vartrack-chain and multihop-chain join stage 2 (the same prompts answered link
# by link), sampled 4x, the one-step vartrack and multihop 0.5x, at the constant rate.
primary_phase4=(--add-tasks vartrack-chain,multihop-chain
  --task-weights vartrack-chain=4,multihop-chain=4,vartrack=0.5,multihop=0.5 --lm-share 0.1 --copy-share 0.05)
# Its fifth: half the batches long (6-8 chunks of 40-75 words), and those draw the chain tasks as
# well as needle and multikey: trained only at stage 2's lengths (2-4 chunks), vartrack-chain had
# fallen from 0.8 on short prompts to 0.33 at 7 chunks. The sixth: the same mix, cooled down.
primary_phase5=("${primary_phase4[@]}" --long-share 0.5
  --long-tasks needle,multikey,vartrack-chain,multihop-chain,vartrack,multihop)
primary_phase6=("${primary_phase5[@]}" --decay-from "$primary_steps5" --decay-steps "$cool2_steps" --lr-min "$lr_min")
# Its seventh: a fine-tune from the sixth's weights (--init: a fresh optimizer and warm-up; the
# shipped run started from the sixth's F16 GGUF converted back to HF) at half the rate, for
# multihop, whose first answer token was right 29% (docs/QUALITY.md): multihop-crowd joins, the
# multihop tasks weighted up, each answer's first token's loss 4x, the short batches 2-3 chunks of
# 10-25 words, 30% long ones. It took multihop from 0.32 to 0.415 and its first answer token's
# "name in no fact" picks from 36% to 2%. The eighth: the same mix, cooled down.
primary_phase7=(--seed 11 --lr 1e-3 --lm-share 0.1 --copy-share 0.05 --long-share 0.3
  --add-tasks vartrack-chain,multihop-chain,multihop-crowd
  --task-weights multihop-crowd=6,multihop-chain=4,vartrack-chain=2,vartrack=0.5,multihop=0.5
  --long-tasks needle,multikey,vartrack-chain,multihop-chain,vartrack,multihop --first-weight 4 --stage-shape 2-3:10-25)
primary_phase8=("${primary_phase7[@]}" --decay-from "$primary_steps7" --decay-steps "$cool3_steps" --lr-min "$lr_min")
# Its ninth: a second fine-tune from the eighth's weights, the same mix, with attention supervision
# of the first hop. After phase eight the first hop ("Tina-42 works with" -> " Anna-17") was still
# at chance between the two "works with" facts (docs/QUALITY.md): layer 2 head 3 gathers the
# subject's name at " in" of "<name> lives in <city>" (0.40 of its attention) but not at " with"
# (0.02), and layer 4 head 1, the head that reads "lives in" facts by their subject, never read a
# "works with" fact. --gather-target pulls that layer-2 head onto the name at each " with" of the
# prompt, --attn-target that layer-4 head onto the asked fact's value. Within ~500 steps
# multihop-crowd went from 21% (chance 25%) to 75%; the curriculum then reached stages 3 and 4
# (multivalue joins; the short batches keep --stage-shape's size). The lookup head serves
# vartrack-chain too, which fell at 7 chunks with the eighth's weights (multihop tasks 10 :
# vartrack-chain 2), so vartrack-chain is weighted up here. The tenth: the same mix, cooled
# down. bf16 autocast (the shipped run's).
primary_phase9=("${primary_phase7[@]}" --seed 14 --attn-target 4.1=1 --gather-target 2.3=1 --bf16
  --task-weights multihop-crowd=3,multihop-chain=3,vartrack-chain=6,vartrack=0.5,multihop=0.5)
primary_phase10=("${primary_phase9[@]}" --decay-from "$primary_steps9" --decay-steps "$cool4_steps" --lr-min "$lr_min")
# Its eleventh: a third fine-tune (primary-hop) from the tenth's weights, grown to 7 layers by
# two identity blocks at layers 5 and 6 whose queries, keys and attention norm start as layer 4's
# (the lookup head's layer), for the one-step answers (docs/QUALITY.md): after phase ten no head
# read multihop's colleague from the question's last token, and the heads reading cities split
# between the two. --hop-target pulls head 4.1 onto the colleague and head 5.1 onto the
# colleague's city (6.1, named as in the shipped run, reads nothing: multihop has two hops;
# --hop-tasks multihop: supervising vartrack's three hops too took its
# one-step answers from 0.45 to 0.07 in 650 steps); the one-step tasks weighted 8x. The twelfth:
# vartrack-chain (which fell to 0.70 in the eleventh's mix) and multihop-chain weighted up,
# vartrack down. The thirteenth: multikey (0.790 on the card's prompts at step 19,621, from
# 0.915) weighted up too, at the constant rate to PRIMARY_STEPS13, then cooled down. (The shipped
# run started from the tenth's F16 GGUF converted back to HF.)
primary_phase11=("${primary_phase7[@]}" --layers 7 --seed 22 --attn-target 4.1=1 --gather-target 2.3=1 --bf16
  --hop-target 4.1,5.1,6.1=3 --hop-tasks multihop
  --task-weights multihop-crowd=2,multihop-chain=2,vartrack-chain=4,vartrack=8,multihop=8)
primary_phase12=("${primary_phase11[@]}" --seed 23
  --task-weights multihop-crowd=2,multihop-chain=4,vartrack-chain=8,vartrack=4,multihop=8)
primary_phase13=("${primary_phase12[@]}" --seed 24
  --task-weights multihop-crowd=2,multihop-chain=4,vartrack-chain=8,vartrack=4,multihop=8,multikey=3
  --decay-from "$primary_steps13" --decay-steps "$cool5_steps" --lr-min "$lr_min")
# The fine-tunes for one-step variable tracking (docs/QUALITY.md, "The value hop onto its first
# digit"; models/train/recipes/cpu-2026-12-06.txt and cpu-2026-12-07.txt, run by finetune_gpu.sh
# on the CPU in fp32): the thirteenth's answered one-step vartrack 0.49, picking one of the two
# chains. Short batches of 8-16-word chunks, so a batch holds ~30 chains; vartrack's three hops
# supervised too (heads 4.1, 5.1, 6.1), its value hop onto the value's first digit (--hop-value
# first), and each fact's right side gathering its name at head 2.2 (--var-gather-target,
# --right-gather-target). The fourteenth: two-link chains (2 chunks), from the thirteenth's
# weights; the fifteenth: three-link chains from the fourteenth's (from the thirteenth's, the third
# hop had stayed at chance), then the sixteenth, its cool-down at a tenth of the rate; the
# seventeenth and eighteenth: the same again from the sixteenth's weights, on fresh batches.
# (The shipped run started the fourteenth and the seventeenth from F16 GGUFs converted back to
# HF, and ran each phase to a wall-clock cap: these are the step counts it reached.)
primary_ft=(--layers 7 --lm-weight 0.1 --add-tasks vartrack-chain,multihop-chain,multihop-crowd --first-weight 4
  --attn-target 4.1=1 --gather-target 2.3=1 --hop-target 4.1,5.1,6.1=3 --warmup 100 --tokens 4096 --lr 1e-3
  --lm-share 0.05 --copy-share 0.0 --long-share 0.15 --var-gather-target 2.2=1 --right-gather-target 2.2=1
  --hop-tasks multihop,vartrack --hop-value first --log-every 20
  --task-weights vartrack=12,vartrack-chain=4,multihop=3,multihop-chain=2,multihop-crowd=1,multikey=2)
primary_phase14=("${primary_ft[@]}" --seed 42 --stage-shape 2-2:8-16 --long-tasks needle,vartrack-chain,multihop)
primary_phase15=("${primary_ft[@]}" --seed 41 --stage-shape 3-3:8-16 --long-tasks needle,vartrack-chain,vartrack,multihop)
primary_phase16=("${primary_phase15[@]}" --lr 1e-4)
primary_phase17=("${primary_phase15[@]}" --seed 46)
primary_phase18=("${primary_phase17[@]}" --lr 1e-4)

if [[ "$what" == all || "$what" == train ]]; then
  $py "$train/bpe.py" --vocab 2048 --out "$work/tokenizer" "$corpus"
  common=(--tokenizer "$work/tokenizer" --corpus "$corpus" --minutes "$minutes" --threads 1 "${train_args[@]}")
  primary_run() { nice -n 10 $py "$train/train.py" "${primary[@]}" "${common[@]}" "$@"; }
  (primary_run --max-steps "$primary_steps1" --out "$work/primary" &&
    primary_run "${primary_phase2[@]}" --resume \
      --max-steps "$primary_steps2" --out "$work/primary" &&
    primary_run "${primary_phase3[@]}" --resume \
      --max-steps "$primary_steps3" --out "$work/primary" &&
    primary_run "${primary_phase4[@]}" --resume \
      --max-steps "$primary_steps4" --out "$work/primary" &&
    primary_run "${primary_phase5[@]}" --resume \
      --max-steps "$primary_steps5" --out "$work/primary" &&
    primary_run "${primary_phase6[@]}" --resume \
      --max-steps "$primary_steps6" --out "$work/primary" &&
    primary_run "${primary_phase7[@]}" --resume \
      --init "$work/primary/hf" --init-run "$work/primary" --max-steps "$primary_steps7" --out "$work/primary-ft" &&
    primary_run "${primary_phase8[@]}" --resume \
      --max-steps "$primary_steps8" --out "$work/primary-ft" &&
    primary_run "${primary_phase9[@]}" --resume \
      --init "$work/primary-ft/hf" --init-run "$work/primary-ft" --max-steps "$primary_steps9" --out "$work/primary-att" &&
    primary_run "${primary_phase10[@]}" --resume \
      --max-steps "$primary_steps10" --out "$work/primary-att" &&
    primary_run "${primary_phase11[@]}" --resume \
      --init "$work/primary-att/hf" --init-run "$work/primary-att" --grow-at 5,6 --grow-qk-from 4 \
      --max-steps "$primary_steps11" --out "$work/primary-hop" &&
    primary_run "${primary_phase12[@]}" --resume \
      --max-steps "$primary_steps12" --out "$work/primary-hop" &&
    primary_run "${primary_phase13[@]}" --resume \
      --max-steps "$primary_steps14" --out "$work/primary-hop" &&
    primary_run "${primary_phase14[@]}" --resume \
      --init "$work/primary-hop/hf" --init-run "$work/primary-hop" --max-steps "$primary_steps15" --out "$work/primary-2link" &&
    primary_run "${primary_phase15[@]}" --resume \
      --init "$work/primary-2link/hf" --init-run "$work/primary-2link" --max-steps "$primary_steps16" --out "$work/primary-3link" &&
    primary_run "${primary_phase16[@]}" --resume \
      --max-steps "$primary_steps17" --out "$work/primary-3link" &&
    primary_run "${primary_phase17[@]}" --resume \
      --init "$work/primary-3link/hf" --init-run "$work/primary-3link" --max-steps "$primary_steps18" --out "$work/primary-3link-b" &&
    primary_run "${primary_phase18[@]}" --resume \
      --max-steps "$primary_steps" --out "$work/primary-3link-b") >"$work/primary.out" 2>&1 &
  p1=$!
  nice -n 10 $py "$train/train.py" "${aux[@]}" "${common[@]}" --max-steps "$aux_steps" --out "$work/aux" >"$work/aux.out" 2>&1 &
  p2=$!
  echo "make_pair: training the primary to $primary_steps steps and the aux to $aux_steps (logs: $work/primary.out, $work/aux.out)"
  wait $p1 && wait $p2
fi

if [[ "$what" == all || "$what" == ship ]]; then
  declare -A run=([primary]="$work/primary-3link-b" [aux]="$work/aux")
  for m in primary aux; do
    [[ -f "${run[$m]}/hf/model.safetensors" ]] || { echo "make_pair: no trained $m in ${run[$m]}" >&2; exit 1; }
    "$bin" convert "${run[$m]}/hf" "$root/models/cacheclip-$m.gguf" --type f16
  done
  # Fresh prompts (seeds never used in training; filler from the held-out passages): ~1,024
  # tokens with 7 chunks; the five trained tasks and the untrained boundary needle.
  ev="$work/eval"
  mkdir -p "$ev"
  i=0
  for t in needle multikey multivalue vartrack multihop boundary; do
    i=$((i + 1))
    $py "$train/tasks.py" --task "$t" --n "$eval_n" --chunks 7 --chunk-words 66 --seed $((9000 + i)) \
      --split heldout --corpus "$corpus" -o "$ev/$t.json"
  done
  # The answer-by-chain variants on the very prompts of vartrack and multihop (their seeds).
  $py "$train/tasks.py" --task vartrack-chain --n "$eval_n" --chunks 7 --chunk-words 66 --seed 9004 \
    --split heldout --corpus "$corpus" -o "$ev/vartrack-chain.json"
  $py "$train/tasks.py" --task multihop-chain --n "$eval_n" --chunks 7 --chunk-words 66 --seed 9005 \
    --split heldout --corpus "$corpus" -o "$ev/multihop-chain.json"
  # And single needles at the length most of the training ran at (3 chunks of 30 words).
  $py "$train/tasks.py" --task needle --n "$eval_n" --chunks 3 --chunk-words 30 --seed 9100 --split heldout \
    --corpus "$corpus" -o "$ev/needle-short.json"
  args=(-m "$root/models/cacheclip-primary.gguf" --aux "$root/models/cacheclip-aux.gguf" -N "$eval_n" --max-answer 24)
  tasks=()
  for t in needle-short needle multikey multivalue vartrack multihop vartrack-chain multihop-chain boundary; do
    tasks+=(--tasks "$ev/$t.json")
  done
  "$bin" eval "${args[@]}" "${tasks[@]}" --methods naive,cacheclip --ratios 0.2 --json-out "$ev/primary.json" | tee "$ev/primary.txt"
  # The aux model answering alone (its own full attention): for its card.
  "$bin" eval -m "$root/models/cacheclip-aux.gguf" -N "$eval_n" --max-answer 24 "${tasks[@]}" --methods naive \
    --json-out "$ev/aux.json" | tee "$ev/aux.txt"
  mkdir -p "$root/models/cards"
  for m in primary aux; do
    mkdir -p "$train/runs/$m"
    cp "${run[$m]}/log.jsonl" "${run[$m]}/train.json" "$train/runs/$m/"
    cp "$ev/$m.json" "$train/runs/$m/eval.json"
    $py "$train/card.py" --name "$m" --run "${run[$m]}" --gguf "$root/models/cacheclip-$m.gguf" \
      --eval "$ev/$m.json" --tasks-dir "$ev" --tokenizer "$work/tokenizer" --out "$root/models/cards" \
      --note "${CARD_NOTE:-}"
  done
  echo "make_pair: shipped models/cacheclip-primary.gguf, models/cacheclip-aux.gguf and models/cards/"
fi
