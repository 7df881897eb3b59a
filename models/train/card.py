#!/usr/bin/env python3
"""Writes a shipped model's card (Markdown) and its training curves (SVG) from the run folder
train.py left (train.json, log.jsonl) and the `cacheclip eval --json-out` report of the shipped
GGUF file. Every figure in the card is read from those files; nothing is typed in by hand.

  python3 models/train/card.py --name primary --run RUN --gguf models/cacheclip-primary.gguf \
      --eval EVAL.json --tasks-dir EVALDIR --tokenizer TOKDIR --out models/cards
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import tasks  # noqa: E402

# "copy" (span-repeat) is logged too, but its exact match stays ~0 by construction (the first
# token of a repeat has no cue), so the curves show the tasks only.
TASKS = ("needle", "multikey", "multivalue", "vartrack", "multihop", "vartrack-chain", "multihop-chain")
# Evaluated, never trained: a needle cut by a chunk boundary (tasks.py), the case where a chunk
# encoded alone lacks what its first tokens complete.
EVAL_ONLY = ("boundary",)
COLORS = {"needle": "#1f77b4", "multikey": "#ff7f0e", "multivalue": "#2ca02c", "vartrack": "#d62728",
          "multihop": "#9467bd", "vartrack-chain": "#8c564b", "multihop-chain": "#17becf"}


def curves_svg(history, path, title):
    w, h, l, r, t, b = 720, 360, 60, 130, 30, 45
    xmax = max(1e-9, max(rec["seconds"] for rec in history) / 60.0)
    X = lambda m: l + (w - l - r) * m / xmax
    Y = lambda a: t + (h - t - b) * (1.0 - a)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    for i in range(6):
        a = i / 5
        out.append(f'<line x1="{l}" x2="{w - r}" y1="{Y(a):.1f}" y2="{Y(a):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{l - 6}" y="{Y(a) + 4:.1f}" text-anchor="end">{a:.1f}</text>')
    for i in range(6):
        m = xmax * i / 5
        out.append(f'<text x="{X(m):.1f}" y="{h - b + 16}" text-anchor="middle">{m:.0f}</text>')
    out.append(f'<text x="{(l + w - r) / 2}" y="{h - 8}" text-anchor="middle">training minutes</text>')
    out.append(f'<text x="14" y="{(t + h - b) / 2}" transform="rotate(-90 14 {(t + h - b) / 2})" '
               'text-anchor="middle">exact match (last 200 training samples)</text>')
    prev = None
    for rec in history:  # stage changes as dashed lines
        if prev is not None and rec["stage"] != prev:
            x = X(rec["seconds"] / 60)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{t}" y2="{h - b}" stroke="#999" stroke-dasharray="4 3"/>')
            out.append(f'<text x="{x + 3:.1f}" y="{t + 12}" fill="#666">stage {rec["stage"]}</text>')
        prev = rec["stage"]
    for k, task in enumerate(TASKS):
        pts = [(X(rec["seconds"] / 60), Y(rec["acc"][task])) for rec in history if task in rec.get("acc", {})]
        if not pts:
            continue
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{COLORS[task]}" stroke-width="1.5" points="{d}"/>')
        out.append(f'<text x="{w - r + 10}" y="{t + 16 + 18 * k}" fill="{COLORS[task]}">{task}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def prompt_tokens(tok, tasks_dir):
    """Mean/min/max prompt tokens and chunk counts of each evaluation task file."""
    stats = {}
    for task in ("needle-short",) + TASKS + EVAL_ONLY:
        p = os.path.join(tasks_dir, task + ".json")
        if not os.path.exists(p):
            continue
        n = []
        chunks = set()
        for ex in json.load(open(p, encoding="utf-8")):
            n.append(len(tasks.prompt_ids(tok, ex)))
            chunks.add(len(ex["chunks"]))
        stats[task] = (sum(n) / len(n), min(n), max(n), sorted(chunks), len(n))
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--tasks-dir", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--note", default="", help="a line about this run added to the training section")
    a = ap.parse_args(argv)
    info = json.load(open(os.path.join(a.run, "train.json")))
    history = []
    for line in open(os.path.join(a.run, "log.jsonl")):
        if line.strip():
            rec = json.loads(line)
            # A resumed run repeats the steps after its last checkpoint: keep the later timeline.
            while history and history[-1]["step"] >= rec["step"]:
                history.pop()
            history.append(rec)
    if not history:
        raise SystemExit(f"card: {a.run}/log.jsonl holds no records (the run logs every --log-every steps); "
                         "no curves to plot")
    ev = json.load(open(a.eval))
    tok = bpe.Tokenizer.load(os.path.join(a.tokenizer, "merges.txt"))
    c = info["config"]
    args = info["args"]
    os.makedirs(a.out, exist_ok=True)
    svg = f"{a.name}-curves.svg"
    curves_svg(history, os.path.join(a.out, svg), f"cacheclip-{a.name}: training accuracy per task")
    stats = prompt_tokens(tok, a.tasks_dir)
    rows = {}
    for r in ev["rows"]:
        rows.setdefault(r["task"], {})[(r["method"], r["ratio"])] = r
    size = os.path.getsize(a.gguf)
    L = []
    L.append(f"# cacheclip-{a.name}")
    L.append("")
    role = ("the primary model of the shipped pair: it answers" if a.name == "primary" else
            "the auxiliary model of the shipped pair: its last-layer attention picks the tokens the primary "
            "recomputes (CacheClip)")
    L.append(f"`models/{os.path.basename(a.gguf)}` ({size / 1e6:.2f} MB, F16): {role}. Trained from scratch by "
             "`models/train/make_pair.sh` on this project's task suite and Wikipedia passages; random "
             "initialisation, no outside weights.")
    L.append("")
    L.append("## Architecture")
    L.append("")
    L.append(f"- Llama (RMSNorm, rotate-half RoPE θ={c['rope_theta']:g}, SwiGLU, tied input/output embeddings), "
             f"{info['parameters'] / 1e6:.3f}M parameters")
    L.append(f"- hidden {c['dim']}, {c['layers']} layers, {c['heads']} query heads and {c['kv_heads']} KV heads of "
             f"{c['head_dim']}, feed-forward {c['ffn']}, context {c['max_pos']}")
    L.append(f"- tokenizer: byte-level BPE, {c['vocab']} tokens (256 bytes, {c['vocab'] - 257} merges, "
             "<|endoftext|> as BOS and EOS), Qwen2 pre-tokenizer (digits one by one); trained by "
             "`models/train/bpe.py` on the corpus; shared by both models")
    L.append("")
    L.append("## Data and training")
    L.append("")
    L.append("- Every batch is newly generated (nothing is seen twice): prompts of `models/train/tasks.py` "
             "(needle, multikey, multivalue, vartrack, multihop; filler from the training split of "
             "`../shared/corpus/wikipedia-nq-passages.txt`, every passage but each 20th) built exactly "
             "as the engine builds a request, and plain windows of the same passages "
             f"({args['lm_share']:.0%} of the sequences), and span-repeat sequences (text, a span, more text, "
             f"the span again, loss on the repeat; {args.get('copy_share', 0):.0%}) for a dense copying signal. "
             f"From stage 1 on, {args.get('long_share', 0):.0%} of the batches take "
             + (f"the tasks {args['long_tasks'].replace(',', ', ')}" if args.get("long_tasks")
                else "the previous stage's tasks")
             + " at the final stage's length. "
             + (f"The task variants {args['add_tasks'].replace(',', ', ')} (tasks.py: the base task's prompt answered "
                "link by link" + ("; multihop-crowd among four pairs" if "multihop-crowd" in args["add_tasks"] else "")
                + ") join every stage that has their base task. " if args.get("add_tasks") else "")
             + "Within a stage the tasks are drawn "
             + (f"with the weights {args['task_weights']} (the others 1)." if args.get("task_weights") else "uniformly."))
    fw = args.get("first_weight", 1.0)
    L.append("- Loss: cross-entropy on the answer tokens and the EOS after them"
             + (f" (each answer's first token weighted {fw:g}x)" if fw != 1.0 else "")
             + f", plus {args['lm_weight']} x the language-modelling loss on every other token.")
    sup = []
    if args.get("gather_target"):
        lh, w = args["gather_target"].split("=")
        sup.append(f"layer {lh.split('.')[0]} head {lh.split('.')[1]}'s attention from the ' with' of every "
                   f"'<name> works with' in the prompt onto that name's tokens (weight {w}, `--gather-target`)")
    if args.get("attn_target"):
        lh, w = args["attn_target"].split("=")
        sup.append(f"layer {lh.split('.')[0]} head {lh.split('.')[1]}'s attention from the question's last token onto "
                   f"the asked fact's value (weight {w}, `--attn-target`)")
    if args.get("var_gather_target"):
        lh, w = args["var_gather_target"].split("=")
        L.append(f"- Attention supervision of the vartrack names (`--var-gather-target`, weight {w}): layer "
                 f"{lh.split('.')[0]} head {lh.split('.')[1]}'s attention from the '=' of every 'VAR <name> =' "
                 "and the ' hold' of the question's 'VAR <name> hold' onto that name's tokens (' X' and four "
                 "digits: no single token tells two names apart), -log of the attention mass on them. "
                 "Training only.")
    if args.get("right_gather_target"):
        lh, w = args["right_gather_target"].split("=")
        L.append(f"- Attention supervision of the vartrack facts' keys (`--right-gather-target`, weight {w}): "
                 f"layer {lh.split('.')[0]} head {lh.split('.')[1]}'s attention from the first token of every "
                 "'VAR <name> =' fact's right side (a name's ' X', a value's first digit) onto that name's "
                 "tokens, -log of the attention mass on them. Training only.")
    if sup:
        L.append("- Attention supervision of the first hop of multihop-chain and multihop-crowd "
                 "(\"Tina-42 works with\" -> \" Anna-17\"), -log of the attention mass on the target: "
                 + "; ".join(sup) + ". Training only: the model answers with no help.")
    if args.get("hop_target"):
        heads, w = args["hop_target"].rsplit("=", 1)
        # --hop-tasks "multihop,vartrack:1": a task's ":N" stops its supervision at N hops.
        limit = {t: int(n) if n else tasks.MAX_HOPS[t] for t, _, n in
                 (x.partition(":") for x in (args.get("hop_tasks") or ",".join(tasks.MAX_HOPS)).split(","))}
        hop_tasks = list(limit)
        heads = heads.split(",")
        used = heads[:max(min(tasks.MAX_HOPS[t], limit[t]) for t in hop_tasks)]
        names = " then ".join(f"layer {h.split('.')[0]} head {h.split('.')[1]}" for h in used)
        if len(used) < len(heads):
            names += f" ({', '.join(heads[len(used):])} named too, unused: no supervised task reads that many facts)"
        what = {"multihop": "multihop: the asked person's colleague, then the colleague's city",
                "vartrack": "vartrack: each link of the asked chain, then its value"
                            + (" (its first digit alone, the one the answer's first token copies, "
                               "`--hop-value first`)" if args.get("hop_value") == "first" else "")}
        for t in hop_tasks:
            if limit[t] < tasks.MAX_HOPS[t]:
                what[t] += f" (the first {'hop' if limit[t] == 1 else f'{limit[t]} hops'} only, `{t}:{limit[t]}`)"
        L.append("- Attention supervision of the one-step answers' lookups in sequence (`--hop-target`, weight "
                 f"{w}): from the question's last token of {' and '.join(hop_tasks)}, {names} onto the value of "
                 f"each fact the answer reads in turn ({'; '.join(what[t] for t in hop_tasks)}), -log of the "
                 "attention mass on it. Training only: the model answers with no help."
                 + ("" if "vartrack" in hop_tasks else " vartrack trains on its answers only."))
    L.append("- Curriculum (prompt length and task mix grow when the last "
             f"{args['window']} task samples reach {args['advance']:.0%} exact match):")
    for i, (chunks, words, names) in enumerate(info["stages"]):
        mark = " (reached)" if i <= info["stage"] else ""
        L.append(f"  - stage {i}: {chunks[0]}-{chunks[1]} chunks of {words[0]}-{words[1]} words; {', '.join(names)}{mark}")
    if args.get("decay_from"):
        sched = (f"then constant to step {args['decay_from']}, from there falling linearly to "
                 f"{args['lr_min'] * args['lr']:g} over {args['decay_steps']} steps")
    elif args.get("resume") and not args.get("init"):
        sched = ("then constant (the rate of the run's last phase, resumed from a checkpoint"
                 + ("; the note below gives the earlier phases)" if a.note else ")"))
    else:
        sched = "then constant"
    if args.get("stage_shape"):
        chunks, words = args["stage_shape"].split(":")
        L.append(f"- The stage's prompts other than the long batches take {chunks} chunks of {words} words "
                 "(`--stage-shape`) instead of the stage's own.")
    init = ""
    if args.get("init"):
        grown = f", grown by identity blocks at layers {args['grow_at']}" if args.get("grow_at") else ""
        if args.get("grow_at") and args.get("grow_qk_from") is not None:
            grown += f" whose queries, keys and attention norm start as layer {args['grow_qk_from']}'s"
        init = f"from the weights of an earlier run (`--init`{grown}: a fresh optimizer), "
    L.append(f"- AdamW (β 0.9/0.95, weight decay 0.01), {init}learning rate {args['lr']:g} after {args['warmup']} warm-up "
             f"steps, {sched}; ~{args['tokens']} tokens per step; seed {args['seed']}.")
    where = info.get("machine", "a CPU not recorded by this run")
    if info.get("device", "cpu") != "cpu":
        where = f"{info['device']}, data on {where}"
    precision = "bf16 autocast" if args.get("bf16") else "fp32"
    L.append(f"- {info['steps']} steps in {info['seconds'] / 60:.1f} minutes, {args['threads']} thread(s) at the end "
             f"({where}; torch {info['torch']}, {precision}), beside another run; last stage reached: "
             f"{info['stage']} of {len(info['stages']) - 1}. `make_pair.sh` reruns it to the same step count "
             "(`--max-steps`).")
    if a.note:
        L.append(f"- {a.note}")
    L.append(f"- Curves: `models/train/runs/{a.name}/log.jsonl` (every 20 steps), plotted in [{svg}]({svg}).")
    L.append("")
    L.append(f"![training curves]({svg})")
    L.append("")
    L.append("## Evaluation")
    L.append("")
    L.append(f"- Perplexity on held-out passages (each 20th passage of the corpus, 16K tokens in windows of 256): "
             f"**{info['heldout_ppl']:.2f}**")
    L.append(f"- Exact match by `cacheclip eval` on this GGUF file, greedy, fresh prompts (seeds 9001-9006 and 9100, never "
             "used in training; filler from the held-out passages):")
    L.append("")
    has_cc = any(("cacheclip", 0.2) in v for v in rows.values())
    head = "| task | prompts | tokens (mean, min-max) | chunks | full attention | naive reuse |"
    rule = "|---|---|---|---|---|---|"
    if has_cc:
        head += " cacheclip r=0.2 |"
        rule += "---|"
    L.append(head)
    L.append(rule)
    for task in ("needle-short",) + TASKS + EVAL_ONLY:
        if task not in rows or task not in stats:
            continue
        mean, lo, hi, chunks, n = stats[task]
        full = rows[task].get(("full", None), {}).get("accuracy", float("nan"))
        naive = rows[task].get(("naive", None), {}).get("accuracy", float("nan"))
        line = (f"| {task} | {n} | {mean:.0f} ({lo}-{hi}) | {','.join(map(str, chunks))} | {full:.3f} | {naive:.3f} |")
        if has_cc:
            line += f" {rows[task].get(('cacheclip', 0.2), {}).get('accuracy', float('nan')):.3f} |"
        L.append(line)
    L.append("")
    L.append("The commands: `models/train/make_pair.sh ship` (it writes the task files and runs `cacheclip eval`).")
    L.append("")
    with open(os.path.join(a.out, f"{a.name}.md"), "w") as f:
        f.write("\n".join(L))
    print(f"card: {os.path.join(a.out, a.name + '.md')}")


if __name__ == "__main__":
    sys.exit(main())
