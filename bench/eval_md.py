#!/usr/bin/env python3
"""Renders `cacheclip eval --json-out` reports as the markdown tables of docs/QUALITY.md.

    bench/eval_md.py REPORT.json [--tasks a,b] [--ppl]

--ppl adds the ppl/full column (continuation tasks); QA tasks show accuracy.
"""
import argparse
import json


def fmt_ratio(r):
    return "-" if r is None else f"{r:g}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--tasks", default="", help="comma-separated task names to keep (default: all)")
    ap.add_argument("--ppl", action="store_true", help="continuation columns (ppl/full, no accuracy)")
    a = ap.parse_args()
    rep = json.load(open(a.report))
    keep = set(t for t in a.tasks.split(",") if t)
    if a.ppl:
        head = ["task", "method", "ratio", "retention", "KL", "top-1", "ppl/full", "speed-up", "recomputed"]
    else:
        head = ["task", "method", "ratio", "accuracy", "retention", "KL", "top-1", "speed-up", "recomputed"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rep["rows"]:
        if keep and r["task"] not in keep:
            continue
        ret = "n/a" if r["retention"] is None else f"{r['retention']:.3f}"
        cells = [r["task"], r["method"], fmt_ratio(r["ratio"])]
        if not a.ppl:
            cells.append(f"{r['accuracy']:.3f}")
        cells += [ret, f"{r['kl']:.2e}", f"{r['top1']:.3f}"]
        if a.ppl:
            cells.append(f"{r['ppl_ratio']:.4f}")
        cells += [f"{r['speedup']:.2f}x", f"{r['recompute_fraction']:.3f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
