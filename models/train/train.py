#!/usr/bin/env python3
"""Trains one Llama-architecture model of the shipped pair on the RAG task suite plus plain
language modelling of the Wikipedia corpus, with a length curriculum, and exports it as an HF
folder (config.json + model.safetensors + tokenizer) that `cacheclip convert` turns into GGUF.

Runs under Debian's torch (/usr/bin/python3, python3-torch). OMP_WAIT_POLICY=PASSIVE is set
before torch loads: a spinning OpenMP team slows anything beside it ~30x on a 2-core machine.

  /usr/bin/python3 models/train/train.py --name primary --dim 128 --layers 5 --heads 4 \
      --kv-heads 2 --ffn 384 --minutes 60 --tokenizer TOKDIR --out OUTDIR

Every sequence is built exactly as the engine builds a request: BOS + prefix, then each chunk
and the question tokenized alone and concatenated, then the answer and <|endoftext|>. The
answer tokens (and the EOS after them) carry the task loss; every other token carries a
language-modelling loss of weight --lm-weight. Plain corpus windows are mixed in (--lm-share),
and span-repeat sequences (--copy-share: text, a span, more text, the span again, with the
task loss on the repeat) give a dense signal for the key-matched copying every task needs.

Curriculum: stages of growing prompt length and task mix (STAGES); from stage 1 on, --long-share
of the batches take the previous stage's (mastered) tasks, or --long-tasks, at the final stage's
length. A stage ends when the teacher-forced exact match of the last --window task examples (every answer token and the EOS
the argmax: what greedy decoding would print) reaches --advance, after at least --min-steps.
Teacher-forced exact match is greedy exact match, so the logged curve is the real accuracy on
fresh samples (every batch is newly generated; nothing is seen twice).

Writes OUTDIR/log.jsonl (one line per --log-every steps: step, seconds, stage, loss, per-task
accuracy), OUTDIR/ckpt.pt (every --ckpt-minutes, and at the end; --resume continues from it;
--init starts from an HF folder's weights instead, e.g. a shipped GGUF converted back with
`cacheclip convert M.gguf DIR --format hf`, with a fresh optimizer and warm-up),
OUTDIR/hf/ (the export) and OUTDIR/train.json (arguments, seeds, steps, time, stage reached).
"""
import argparse
import collections
import json
import math
import os
import random
import re
import struct
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS (torch's BLAS on Debian) and OpenMP start their own thread pools when torch loads:
# with two jobs side by side that oversubscribes the cores (measured: one job used 1.2 cores with
# --threads 1), so both pools get the --threads count before the import.
if __name__ == "__main__":
    _n = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "1"
    os.environ.setdefault("OMP_NUM_THREADS", _n)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", _n)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import tasks  # noqa: E402

# (tasks, chunk-count range, words-per-chunk range). Lengths in tokens are ~1.8x the words.
STAGES = [
    (("needle",), (2, 2), (10, 20)),
    (("needle", "multikey"), (2, 3), (15, 30)),
    (("needle", "multikey", "vartrack", "multihop"), (2, 4), (20, 40)),
    (("needle", "multikey", "vartrack", "multihop", "multivalue"), (3, 6), (30, 60)),
    (("needle", "multikey", "vartrack", "multihop", "multivalue"), (6, 8), (40, 75)),
]


# ---------------------------------------------------------------------------------------------
# Model: the HF Llama layout (rotate-half RoPE, RMSNorm, SwiGLU, GQA, tied embeddings).

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["dim"], c["head_dim"]
        self.h, self.kvh, self.hd = c["heads"], c["kv_heads"], hd
        self.input_layernorm = RMSNorm(d, c["eps"])
        self.q_proj = nn.Linear(d, self.h * hd, bias=False)
        self.k_proj = nn.Linear(d, self.kvh * hd, bias=False)
        self.v_proj = nn.Linear(d, self.kvh * hd, bias=False)
        self.o_proj = nn.Linear(self.h * hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, c["eps"])
        self.gate_proj = nn.Linear(d, c["ffn"], bias=False)
        self.up_proj = nn.Linear(d, c["ffn"], bias=False)
        self.down_proj = nn.Linear(c["ffn"], d, bias=False)
        # --attn-target / --gather-target: [(head, sequence, query position), ...] whose attention
        # rows the next forward keeps in self.rows (a tensor, one row per probe over all key
        # positions, zero past the query's, in the graph).
        self.probe, self.rows = None, []

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.kvh, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.kvh, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kvh != self.h:
            k = k.repeat_interleave(self.h // self.kvh, dim=1)
            v = v.repeat_interleave(self.h // self.kvh, dim=1)
        a = _sdpa(q, k, v)
        if self.probe:
            # All kept rows in one batched product (one kernel each, not one per row: a GPU step
            # keeps hundreds): row j is head hh's attention from position p of sequence i, zero
            # past p.
            hh, ii, pp = (torch.tensor(col, device=x.device) for col in zip(*self.probe))
            s = torch.einsum("pd,ptd->pt", q[ii, hh, pp].float(), k[ii, hh].float()) / math.sqrt(self.hd)
            self.rows = s.masked_fill(torch.arange(t, device=x.device)[None, :] > pp[:, None],
                                      float("-inf")).softmax(-1)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, self.h * self.hd))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


def _sdpa(q, k, v):
    """Causal attention: torch 2's scaled_dot_product_attention, or torch 1.13's private one
    (Debian's; it matches manual attention and is 1.4-2.6x faster)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab"], c["dim"])
        self.layers = nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["dim"], c["eps"])
        hd = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        f = torch.outer(torch.arange(c["max_pos"], dtype=torch.float64), inv)
        e = torch.cat((f, f), dim=-1)
        self.register_buffer("cos", e.cos().float(), persistent=False)
        self.register_buffer("sin", e.sin().float(), persistent=False)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * c["layers"]) if n.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        t = ids.shape[1]
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x) @ self.embed_tokens.weight.t()


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# Data

class Data:
    def __init__(self, tok, corpus, seed):
        self.tok = tok
        self.seed = seed
        self.rng = random.Random(seed)
        self.task_weights = {}
        self.shape = None  # --stage-shape: ((chunks lo, hi), (words lo, hi)) instead of the stage's
        self.extra = ()  # --add-tasks: variants joining every stage that has their base task
        self.long_tasks = ()  # --long-tasks: what long batches draw (empty: the previous stage's)
        self.passages = tasks.load_passages(corpus, "train")
        if not self.passages:
            raise SystemExit(f"train.py: no corpus passages at {corpus}")
        self.gen = tasks.Gen(seed + 1, self.passages, 20)
        stream = []
        for p in self.passages:
            stream.extend(tok.encode(" ".join(p)) + [tok.eos])
        self.stream = stream

    def reseed(self, step):
        """Seeds both random streams from the run's seed and a step (Batches with workers)."""
        self.rng.seed((self.seed << 32) + 2 * step)
        self.gen.rng.seed((self.seed << 32) + 2 * step + 1)

    def size(self, stage, long=False):
        """((chunks lo, hi), (words lo, hi)) of a stage's prompts: long batches take the final
        stage's, the others --stage-shape's when given, else the stage's own."""
        if long:
            return STAGES[-1][1:]
        return self.shape or STAGES[stage][1:]

    def stage_tasks(self, stage):
        """A stage's tasks, and each --add-tasks variant whose base task (vartrack of
        vartrack-chain) the stage has."""
        base = STAGES[stage][0]
        return base + tuple(t for t in self.extra if tasks.VARIANTS[t] in base)

    def task_example(self, stage, long=False):
        # A long batch takes a task already mastered (the previous stage's, or --long-tasks), at
        # the final stage's length: the length grows with the tasks mastered, not only with the
        # curriculum stage.
        if long:
            names = self.long_tasks or self.stage_tasks(stage - 1)
        else:
            names = self.stage_tasks(stage)
        (c0, c1), (w0, w1) = self.size(stage, long)
        weights = [self.task_weights.get(t, 1.0) for t in names]
        task = self.rng.choices(names, weights)[0] if self.task_weights else self.rng.choice(names)
        self.gen.chunk_words = self.rng.randint(w0, w1)
        n_chunks = self.rng.randint(c0, max(c0, c1))
        if tasks.VARIANTS.get(task, task) == "multihop":
            n_chunks = max(2, n_chunks)
        ex = self.gen.example(task, n_chunks, self.rng.random())
        ids = tasks.prompt_ids(self.tok, ex)
        ans = self.tok.encode(ex["answers"][0]) + [self.tok.eos]
        return task, ids, ans

    def lm_window(self, n):
        at = self.rng.randrange(0, len(self.stream) - n - 1)
        return [self.tok.bos] + self.stream[at:at + n - 1]

    def batch(self, stage, tokens, lm_share, copy_share=0.0, long_share=0.0):
        """(ids, targets, answer mask, tasks, answer spans) padded to the longest sequence."""
        seqs, names, spans = [], [], []
        used = 0
        # A whole batch is long or not (sequences are padded to the longest of their batch).
        long = stage > 0 and self.rng.random() < long_share
        while used < tokens or not seqs:
            u = self.rng.random()
            if u < lm_share:
                n = self.typical(stage, long)
                s = self.lm_window(self.rng.randint(n // 2 if long else 64, max(64, n)))
                seqs.append((s, 0))
                names.append(None)
            elif u < lm_share + copy_share and not long:
                # Dense induction signal: a span of text, more text, the span again (loss on the
                # repeat). Key-matched copying is what every task needs; this teaches it fast.
                span = self.lm_window(self.rng.randint(8, 40))[1:]
                a = self.lm_window(self.rng.randint(16, 96))
                b = self.lm_window(self.rng.randint(16, 96))[1:]
                seqs.append((a + span + b + span, len(span)))
                names.append("copy")
            else:
                task, p, a = self.task_example(stage, long)
                seqs.append((p + a, len(a)))
                names.append(task)
            used += len(seqs[-1][0])
        t = max(len(s) for s, _ in seqs)
        ids = torch.full((len(seqs), t), self.tok.eos, dtype=torch.long)
        tgt = torch.full((len(seqs), t), -100, dtype=torch.long)
        amask = torch.zeros((len(seqs), t), dtype=torch.bool)
        for i, (s, na) in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            tgt[i, :len(s) - 1] = torch.tensor(s[1:])
            if na:
                amask[i, len(s) - 1 - na:len(s) - 1] = True
                spans.append((i, len(s) - 1 - na, len(s) - 1))
            else:
                spans.append(None)
        return ids, tgt, amask, names, spans

    def typical(self, stage, long=False):
        (c0, c1), (w0, w1) = self.size(stage, long)
        return int(1.9 * c1 * w1) + 60


# ---------------------------------------------------------------------------------------------
# Export

def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def hf_params(model):
    """{HF Llama tensor name: parameter} of the model (tied embeddings: no lm_head)."""
    out = {"model.embed_tokens.weight": model.embed_tokens.weight, "model.norm.weight": model.norm.weight}
    for i, L in enumerate(model.layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = L.input_layernorm.weight
        out[p + "post_attention_layernorm.weight"] = L.post_attention_layernorm.weight
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out[p + f"self_attn.{n}.weight"] = getattr(L, n).weight
        for n in ("gate_proj", "up_proj", "down_proj"):
            out[p + f"mlp.{n}.weight"] = getattr(L, n).weight
    return out


# The model config's keys and the HF config.json names they are written under.
HF_KEYS = {"vocab": "vocab_size", "dim": "hidden_size", "ffn": "intermediate_size", "layers": "num_hidden_layers",
           "heads": "num_attention_heads", "kv_heads": "num_key_value_heads", "head_dim": "head_dim",
           "max_pos": "max_position_embeddings", "eps": "rms_norm_eps", "rope_theta": "rope_theta"}


def read_hf_config(folder):
    """(config.json of an HF folder, the model config it describes); a clear error when it is
    missing, unreadable or lacks a key."""
    try:
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        c = {k: cfg[h] for k, h in HF_KEYS.items() if k != "head_dim"}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{folder}: no readable config.json ({type(e).__name__}: {e})") from None
    c["head_dim"] = cfg.get("head_dim", c["dim"] // c["heads"])
    return cfg, c


def export_hf(model, tok, out_dir, name):
    os.makedirs(out_dir, exist_ok=True)
    c = model.c
    save_safetensors(os.path.join(out_dir, "model.safetensors"), hf_params(model))
    cfg = {
        "_name_or_path": name, "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        **{h: c[k] for k, h in HF_KEYS.items()}, "hidden_act": "silu", "rope_scaling": None, "tie_word_embeddings": True, "bos_token_id": tok.bos,
        "eos_token_id": tok.eos, "torch_dtype": "float32",
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    tok.save(out_dir)


def load_safetensors(path):
    """{name: float32 tensor} of a safetensors file (F32, F16 or BF16 tensors)."""
    kinds = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SystemExit(f"{path}: truncated safetensors file ({len(blob)} bytes)")
    n = struct.unpack("<Q", blob[:8])[0]
    if 8 + n > len(blob):
        raise SystemExit(f"{path}: safetensors header of {n} bytes runs past the end of the file")
    try:
        header = json.loads(blob[8:8 + n])
    except ValueError as e:
        raise SystemExit(f"{path}: safetensors header is not JSON ({e})")
    out, base = {}, 8 + n
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t.get("dtype") not in kinds:
            raise SystemExit(f"{path}: tensor {name} has dtype {t.get('dtype')} (F32, F16 or BF16 expected)")
        dt, size = kinds[t["dtype"]]
        s, e = t["data_offsets"]
        if e - s != size * math.prod(t["shape"]) or base + e > len(blob):
            raise SystemExit(f"{path}: tensor {name}'s data ({s}..{e}) does not fit its shape {t['shape']} "
                             "or the file")
        raw = bytearray(blob[base + s:base + e])
        out[name] = torch.frombuffer(raw, dtype=dt).reshape(t["shape"]).float() if raw else \
            torch.zeros(t["shape"])
    return out


# What --grow-qk-from copies into a new block: how its heads match queries to keys.
QK_TENSORS = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "input_layernorm.weight")


def init_from_hf(model, folder, grow=(), qk_from=None):
    """Loads the weights of an HF Llama folder (config.json + model.safetensors: train.py's
    export, or `cacheclip convert M.gguf DIR --format hf`) into model; the shapes must match.
    grow: indices of model.layers that are new (--grow-at): the folder's layers fill the others in
    order, and each new block starts as the identity (its o_proj and down_proj zero, so it adds
    nothing to the residual stream until training moves them): the grown model computes what the
    folder's does, with more depth to learn with. qk_from (--grow-qk-from): a kept layer of this
    model whose query and key projections and attention norm each new block copies, so a new
    head starts out matching queries to keys as that layer's heads do (a new layer whose queries
    and keys both start random must learn both sides of a lookup at once)."""
    _, got_c = read_hf_config(folder)
    c = model.c
    grow = sorted(set(grow))
    if any(not 0 <= i < c["layers"] for i in grow):
        raise SystemExit(f"--grow-at {grow}: a layer index is outside 0..{c['layers'] - 1}")
    if qk_from is not None and (not grow or qk_from in grow or not 0 <= qk_from < c["layers"]):
        raise SystemExit(f"--grow-qk-from {qk_from}: not a kept layer of a grown model (--grow-at {grow})")
    want = dict(c, layers=c["layers"] - len(grow))
    this = dict(c, layers=f"{c['layers']} less {len(grow)} grown = {want['layers']}" if grow else c["layers"])
    bad = [f"{HF_KEYS[k]} {got_c[k]} (this run: {this[k]})"
           for k in ("vocab", "dim", "ffn", "layers", "heads", "kv_heads", "head_dim") if got_c[k] != want[k]]
    if bad:
        raise SystemExit(f"--init {folder}: the model differs from this run's: " + ", ".join(bad))
    got = load_safetensors(os.path.join(folder, "model.safetensors"))
    names = hf_params(model)
    if grow:
        # The folder's layer j becomes layer kept[j]; the new layers take this model's own tensors.
        kept = [i for i in range(c["layers"]) if i not in grow]
        layer = re.compile(r"model\.layers\.(\d+)\.(.*)")
        renamed = {}
        for n, w in got.items():
            m = layer.fullmatch(n)
            if m and int(m[1]) >= len(kept):
                raise SystemExit(f"--init {folder}: tensor {n} is past the {len(kept)} layers of its config.json")
            renamed[f"model.layers.{kept[int(m[1])]}.{m[2]}" if m else n] = w
        got = renamed
        for n, w in names.items():
            m = layer.fullmatch(n)
            if m and int(m[1]) in grow:
                if m[2] in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
                    got[n] = torch.zeros_like(w)
                elif qk_from is not None and m[2] in QK_TENSORS:
                    got[n] = got[f"model.layers.{qk_from}.{m[2]}"].clone()
                else:
                    got[n] = w.detach().clone()
    extra = sorted(set(got) - set(names) - {"lm_head.weight"})
    missing = sorted(set(names) - set(got))
    if missing or extra:
        raise SystemExit(f"--init {folder}: tensors missing {missing[:4]}, unexpected {extra[:4]}")
    if "lm_head.weight" in got and not torch.equal(got["lm_head.weight"], got["model.embed_tokens.weight"]):
        raise SystemExit(f"--init {folder}: lm_head.weight differs from the embeddings (this model ties them)")
    with torch.no_grad():
        for n, w in names.items():
            if tuple(got[n].shape) != tuple(w.shape):
                raise SystemExit(f"--init {folder}: {n} is {list(got[n].shape)}, this run's {list(w.shape)}")
            w.copy_(got[n])


# ---------------------------------------------------------------------------------------------

def machine():
    """The CPU the run trained on (for the card): model name, cores, the ISA that matters."""
    name, flags = "unknown CPU", ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and name == "unknown CPU":
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    isa = "AVX512-BF16" if "avx512_bf16" in flags else "AVX-512" if "avx512f" in flags else \
        "AVX2" if "avx2" in flags else "no AVX2"
    return f"{os.cpu_count()}-core {name}, {isa}"


def load_ckpt(path, dev):
    """A checkpoint of this script (torch 2.6+ loads weights only by default; this one also
    holds the run's history and random state)."""
    try:
        return torch.load(path, map_location=dev, weights_only=False)
    except TypeError:  # a torch without weights_only
        return torch.load(path, map_location=dev)


def heldout_ppl(model, tok, corpus, n_tokens=16384, t=256):
    """Perplexity over the held-out passages (each 20th), in windows of t tokens."""
    stream = []
    for p in tasks.load_passages(corpus, "heldout"):
        stream.extend(tok.encode(" ".join(p)) + [tok.eos])
        if len(stream) >= n_tokens + t:
            break
    nll, cnt = 0.0, 0
    dev = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for at in range(0, min(n_tokens, len(stream) - t - 1), t):
            ids = torch.tensor([[tok.bos] + stream[at:at + t - 1]], device=dev)
            tgt = torch.tensor([stream[at:at + t]], device=dev)
            lg = model(ids)
            nll += F.cross_entropy(lg[0], tgt[0], reduction="sum").item()
            cnt += t
    model.train()
    return math.exp(nll / max(1, cnt))


_WORKER_DATA = None  # the Data object forked worker processes inherit


def _worker_batch(job):
    step, stage, args = job
    d = _WORKER_DATA
    d.reseed(step)
    return d.batch(stage, *args)


class Batches:
    """The training batches in step order. workers 0: made in this process from the Data
    object's running random streams. workers N: made ahead by N forked processes, each batch's
    streams seeded by its step (Data.reseed), so a run gives the same batches whatever N is; a
    stage change drops the batches made ahead for the old stage. For a GPU, whose step can take
    less than the ~5 ms a 4,096-token batch takes to make on one core."""

    def __init__(self, data, workers, args):
        self.data, self.workers, self.args, self.pending = data, workers, args, collections.deque()
        self.pool = None
        if workers > 0:
            global _WORKER_DATA
            _WORKER_DATA = data
            import multiprocessing
            self.pool = multiprocessing.get_context("fork").Pool(workers)

    def get(self, step, stage):
        if not self.pool:
            return self.data.batch(stage, *self.args)
        while self.pending and (self.pending[0][0] != step or self.pending[0][1] != stage):
            self.pending.popleft()
        nxt = self.pending[-1][0] + 1 if self.pending else step
        while len(self.pending) < 2 * self.workers:
            self.pending.append((nxt, stage, self.pool.apply_async(_worker_batch, ((nxt, stage, self.args),))))
            nxt += 1
        return self.pending.popleft()[2].get()

    def close(self):
        if self.pool:
            self.pool.terminate()
            self.pool.join()


# The tasks whose first answer token is a lookup of the name the question ends with
# ("Answer: Tina-42 works with" -> the fact "Tina-42 works with Anna-17." in a chunk).
LOOKUP_TASKS = ("multihop-chain", "multihop-crowd")


def lookup_target(seq, q, colon):
    """The position of the value that the lookup at query position q must read: the question's
    lead (the tokens after its last ':' token, up to q: " Tina-42 works with") found earlier in
    the prompt, and the token after it (the fact's value, " Anna"). None when the lead is not
    in the documents as the same tokens (a fact at a chunk's start has no leading space)."""
    c = max((i for i in range(q + 1) if seq[i] == colon), default=None)
    if c is None or c == q:
        return None
    lead = seq[c + 1:q + 1]
    n = len(lead)
    for i in range(c - n):
        if seq[i:i + n] == lead:
            return i + n
    return None


def token_kinds(tok):
    """{token id: "digit" | "dash" | "word" (letters) | "sword" (a space and letters)} of the
    tokens a person's name ("Tina-42": " T" "ina" "-" "4" "2") is made of."""
    kinds = {}
    for i in range(len(tok)):
        t = tok.decode([i])
        if len(t) == 1 and t.isdigit():
            kinds[i] = "digit"
        elif t == "-":
            kinds[i] = "dash"
        elif t.isalpha() and t.isascii():
            kinds[i] = "word"
        elif t[:1] == " " and t[1:].isalpha() and t.isascii():
            kinds[i] = "sword"
    return kinds


def relation_keys(seq, rel, kinds):
    """[(position of the relation's last token, [the key name's positions]), ...] for each
    "<name> <rel>" in seq (rel: the relation's token ids, " works with"), the name being letters,
    '-' and two digits ("Tina-42"); a name at a chunk's start has no space before it."""
    out, n = [], len(rel)
    for r in range(4, len(seq) - n + 1):
        if seq[r:r + n] != rel or [kinds.get(t) for t in seq[r - 3:r]] != ["dash", "digit", "digit"]:
            continue
        k = r - 4
        while k >= 0 and kinds.get(seq[k]) == "word":
            k -= 1
        start = k if k >= 0 and kinds.get(seq[k]) == "sword" else k + 1
        if start < r - 3:
            out.append((r + n - 1, list(range(start, r))))
    return out


# The one-step tasks whose answer needs lookups in sequence inside one forward pass:
# "Answer: VAR X3 holds " reads X3 = X2, X2 = X1, X1 = 123456; "Answer: The colleague of Tina-42
# lives in " reads Tina-42 works with Anna-17, Anna-17 lives in Nantes.
HOP_TASKS = tuple(tasks.MAX_HOPS)


# A vartrack fact in a prompt's text: "VAR <name> = <right side>." (a name or the value).
VAR_FACT = r"VAR (X\d+) = ([^ .]+)\."


def char_offsets(pieces, seq):
    """The text of token ids seq and each token's [start, end) in it. pieces: each token id's
    text (tok.decode([id]))."""
    starts, ends, at = [], [], 0
    for t in seq:
        starts.append(at)
        at += len(pieces[t])
        ends.append(at)
    return "".join(pieces[t] for t in seq), starts, ends


def tokens_over(starts, ends, lo, hi):
    """The positions of the tokens whose characters overlap [lo, hi)."""
    return [i for i, (s0, e0) in enumerate(zip(starts, ends)) if s0 < hi and e0 > lo]


def hop_targets(pieces, seq, q, value_first=False):
    """[[token positions of hop 1's value], [hop 2's], ...]: the values of the facts a one-step
    answer reads in order, each the tokens its characters overlap; None when the question is
    not a one-step vartrack or multihop one or a hop's fact is missing. pieces: each token id's
    text (tok.decode([id])); q: the question's last position. value_first: a vartrack chain's
    last hop (onto its value) is its first token alone, the digit the answer's first token
    copies (a name's hop keeps every token: the name's identity is spread over its digits)."""
    text, starts, ends = char_offsets(pieces, seq[:q + 1])
    docs = text[:text.rfind("Question:")]
    m = re.search(r"VAR (X\d+) holds $", text)
    if m:
        facts, key, rels = {f[1]: f.span(2) for f in re.finditer(VAR_FACT, docs)}, m[1], None
    else:
        m = re.search(r"The colleague of (\S+) lives in $", text)
        if not m:
            return None
        key, rels = m[1], [r"works with", r"lives in"]
    spans = []
    for h in range(tasks.MAX_HOPS["vartrack"] if rels is None else len(rels)):
        if rels is not None:
            facts = {f[1]: f.span(2) for f in re.finditer(r"(\S+) " + rels[h] + r" ([^ .]+)\.", docs)}
        if key not in facts:
            return None
        lo, hi = facts[key]
        spans.append(tokens_over(starts, ends, lo, hi))
        key = docs[lo:hi]
        if rels is None and key[:1] != "X":  # the chain reached its value
            if value_first:
                spans[-1] = spans[-1][:1]
            break
    return spans


def hop_rows(pieces, ids, names, spans, n_hops, which=HOP_TASKS, value_first=False):
    """The hop supervision of a batch, [(hop, sequence, query position, target positions), ...]:
    for each sequence whose task is in which and whose answer span is known, its first n_hops
    hops (hop_targets), or fewer where which maps the task to a smaller count. ids: [B, T] token
    ids; names, spans: the batch's task and (sequence, question's last position) per example,
    spans[i] None where there is no answer; which: task names, or {task: hop count or None};
    value_first: as hop_targets'."""
    limit = which if isinstance(which, dict) else dict.fromkeys(which)
    out = []
    for name, sp in zip(names, spans):
        if sp is not None and name in limit:
            hops = hop_targets(pieces, ids[sp[0]].tolist(), sp[1], value_first) or []
            n = n_hops if limit[name] is None else min(n_hops, limit[name])
            out += [(h, sp[0], sp[1], w) for h, w in enumerate(hops[:n])]
    return out


def answer_hop_rows(pieces, ids, names, spans, n_hops, which=HOP_TASKS, every=False):
    """The hop supervision of one-step vartrack answers after their first token, [(hop,
    sequence, query position, target positions), ...]: at the position whose input is the
    value's k-th digit (teacher forcing: the answer so far is right), the last hop's head onto
    the value's (k+1)-th token, the one that position's output copies; with every, the earlier
    hops too, onto the same names as from the question's last token. The first answer token
    copies the first digit the question's last token reads (hop_rows); the later ones, with only
    the previous digit to match, cannot tell two values that share it apart unless they read the
    asked chain's value again. Arguments as hop_rows'; rows only where the answer's tokens are
    the value's, token for token, and the whole chain is found within n_hops."""
    limit = which if isinstance(which, dict) else dict.fromkeys(which)
    out = []
    for name, sp in zip(names, spans):
        if sp is None or name != "vartrack" or name not in limit:
            continue
        i, q, e = sp
        seq = ids[i].tolist()
        hops = hop_targets(pieces, seq, q) or []
        n = n_hops if limit[name] is None else min(n_hops, limit[name])
        if not hops or len(hops) > n:
            continue
        value = hops[-1]
        if len(value) < 2 or e - q < len(value) or seq[q + 1:q + len(value)] != [seq[v] for v in value[:-1]]:
            continue
        for k in range(1, len(value)):
            if every:
                out += [(h, i, q + k, w) for h, w in enumerate(hops[:-1])]
            out.append((len(hops) - 1, i, q + k, [value[k]]))
    return out


def parse_hop_tasks(spec):
    """--hop-tasks "multihop,vartrack:1" -> {"multihop": None, "vartrack": 1} (None: every hop
    --hop-target names); None when spec is not distinct HOP_TASKS, each with an optional
    ':N' of 1 to its task's MAX_HOPS."""
    out = {}
    for item in spec.split(","):
        name, colon, n = item.partition(":")
        if name not in HOP_TASKS or name in out:
            return None
        if colon:
            if not n.isdigit() or not 1 <= int(n) <= tasks.MAX_HOPS[name]:
                return None
            out[name] = int(n)
        else:
            out[name] = None
    return out


def var_keys(pieces, seq):
    """[(query position, [the name's positions]), ...] for each "VAR <name> =" (a vartrack fact)
    and "VAR <name> hold" (its question) in seq: the '=' or ' hold' token, which must carry the
    name's digits for a lookup to match the fact's left side to the question's name (every name
    is ' X' and four digit tokens, so no one token tells two names apart). pieces: each token
    id's text."""
    text, starts, ends = char_offsets(pieces, seq)
    out = []
    for m in re.finditer(r"VAR (X\d+)( =| hold)", text):
        c = m.start(2) + 1  # the query: the token holding the '=', or the 'h' of ' hold'
        name, q = tokens_over(starts, ends, *m.span(1)), tokens_over(starts, ends, c, c + 1)[0]
        if q > name[-1]:
            out.append((q, name))
    return out


def right_keys(pieces, seq):
    """[(query position, [the name's positions]), ...] for each vartrack fact "VAR <name> =
    <right side>." in seq: the right side's first token, which is the key a lookup of <name>
    reads (a name's ' X' sits next to the '=', a value's first digit one token further, past a
    ' '; a head that gathers the name into both makes one kind of key for both). pieces: each
    token id's text."""
    text, starts, ends = char_offsets(pieces, seq)
    return [(tokens_over(starts, ends, *m.span(2))[0], tokens_over(starts, ends, *m.span(1)))
            for m in re.finditer(VAR_FACT, text)]


def probe_plan(sup, specs):
    """The rows each layer's forward must keep, {layer: [(head, sequence, query position), ...]},
    and each supervised row's place among them, {kind: [(layer, index), ...]} in sup's order.
    sup: {kind: [(hop, sequence, query position, targets), ...]}; specs: {kind: [(layer, head,
    weight) per hop]}. Several kinds (and hops) may share a layer."""
    probes, where = collections.defaultdict(list), collections.defaultdict(list)
    for kind, rows_of in sup.items():
        for h, i, p, _ in rows_of:
            layer, head, _ = specs[kind][h]
            where[kind].append((layer, len(probes[layer])))
            probes[layer].append((head, i, p))
    return dict(probes), dict(where)


def attn_mass(rows, want):
    """The attention each row of rows (N x positions) gives its targets want[n] (a position or a
    list of them), summed: one gather and one scatter, however many rows."""
    ri, ci = [], []
    for n, w in enumerate(want):
        w = [w] if isinstance(w, int) else list(w)
        ri += [n] * len(w)
        ci += w
    ri, ci = torch.tensor(ri, device=rows.device), torch.tensor(ci, device=rows.device)
    return torch.zeros(len(want), device=rows.device, dtype=rows.dtype).index_add_(0, ri, rows[ri, ci])


def attn_loss(rows, want):
    """Mean -log of the attention each supervised row gives its target positions (summed)."""
    return -attn_mass(rows, want).clamp_min(1e-9).log().mean()


def answer_loss(ce, amask, names, spans, first_weight=1.0):
    """Mean cross-entropy over the answer tokens (amask), each task answer's first token weighted
    first_weight against 1 for the rest: the first token is the one a lookup decides (which
    fact), the rest of a name or code then follows by copying, so its loss is a small share of
    the plain mean. A copy span's first token is unpredictable and keeps weight 1."""
    if not amask.any():
        return ce.new_zeros(())
    if first_weight == 1.0:
        return ce[amask].mean()
    w = amask.float()
    for name, sp in zip(names, spans):
        if sp is not None and name != "copy":
            w[sp[0], sp[1]] = first_weight
    return (ce * w).sum() / w.sum()


def lr_at(step, a, warm_from=0):
    """Learning rate of a step: linear warm-up over a.warmup steps from step warm_from (0, or the
    step an --init run started at: its optimizer starts afresh), then constant; with
    a.decay_from > 0, from that step on it falls linearly to a.lr_min x a.lr over a.decay_steps
    steps and stays there."""
    lr = a.lr * min(1.0, (step - warm_from + 1) / a.warmup)
    if a.decay_from > 0 and step >= a.decay_from:
        f = min(1.0, (step - a.decay_from) / a.decay_steps)
        lr = a.lr * (1.0 - f * (1.0 - a.lr_min))
    return lr


def load_tokenizer(folder):
    """The BPE of a --tokenizer folder: its merges.txt (bpe.py's output), else its tokenizer.json
    (what `cacheclip convert M.gguf DIR --format hf` writes), so a converted model's folder is a
    tokenizer as it stands."""
    for name in ("merges.txt", "tokenizer.json"):
        if os.path.isfile(os.path.join(folder, name)):
            return bpe.Tokenizer.load(os.path.join(folder, name))
    raise SystemExit(f"--tokenizer {folder}: neither merges.txt nor tokenizer.json is there")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--ffn", type=int, required=True)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--max-pos", type=int, default=4096)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--tokenizer", required=True,
                    help="folder with a merges.txt (bpe.py) or a tokenizer.json (cacheclip convert --format hf)")
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "..", "shared", "corpus",
                                                     "wikipedia-nq-passages.txt"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast of the forward pass")
    ap.add_argument("--data-workers", type=int, default=0,
                    help="processes making batches ahead (0: in this process); batches seeded by step")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--decay-from", type=int, default=0,
                    help="cool-down: from this step on, the learning rate falls linearly (0: constant after warm-up)")
    ap.add_argument("--decay-steps", type=int, default=1000, help="cool-down length in steps")
    ap.add_argument("--lr-min", type=float, default=0.1, help="cool-down: final learning rate as a fraction of --lr")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per step")
    ap.add_argument("--lm-share", type=float, default=0.2)
    ap.add_argument("--lm-weight", type=float, default=0.1)
    ap.add_argument("--copy-share", type=float, default=0.15,
                    help="share of span-repeat sequences (loss on the repeat): a dense copying signal")
    ap.add_argument("--long-share", type=float, default=0.25,
                    help="from stage 1: share of batches whose prompts take a mastered task at full length")
    ap.add_argument("--task-weights", default="",
                    help="relative sampling weights of a stage's tasks, e.g. vartrack=3,multihop=3 (others 1)")
    ap.add_argument("--add-tasks", default="",
                    help="task variants (e.g. vartrack-chain,multihop-chain) that join every stage with their base task")
    ap.add_argument("--long-tasks", default="",
                    help="tasks the long batches draw, e.g. needle,vartrack-chain (default: the previous stage's)")
    ap.add_argument("--stage-shape", default="",
                    help="CHUNKS_LO-HI:WORDS_LO-HI: task prompts (and plain-text windows) get this size instead "
                         "of the stage's, in every stage, e.g. 2-2:10-20 (long batches keep the final stage's)")
    ap.add_argument("--first-weight", type=float, default=1.0,
                    help="loss weight of each task answer's first token, against 1 for the other answer tokens")
    ap.add_argument("--attn-target", default="",
                    help="LAYER.HEAD=WEIGHT: attention supervision of the first-hop lookups (" + ", ".join(LOOKUP_TASKS)
                         + "): that head's attention from the question's last token gets a loss of WEIGHT x "
                           "-log(attention on the asked fact's value), e.g. 4.1=1")
    ap.add_argument("--gather-target", default="",
                    help="LAYER.HEAD=WEIGHT: attention supervision of the name each first-hop fact is keyed on: "
                         "at every '<name> works with' of the prompt, that head's attention from 'with' gets a "
                         "loss of WEIGHT x -log(attention on the name's tokens), e.g. 2.3=1")
    ap.add_argument("--hop-target", default="",
                    help="L.H,L.H[,L.H]=WEIGHT: attention supervision of the one-step answers' lookups in "
                         "sequence (" + ", ".join(HOP_TASKS) + "): from the question's last token, the i-th "
                         "head's attention gets a loss of WEIGHT x -log(attention on the i-th fact's value) "
                         "(multihop: the colleague, then the city; vartrack: each link to the value, so in a "
                         "2-link chain the second head reads the value), in layers rising hop by hop, "
                         "e.g. 4.1,5.1,6.1=1")
    ap.add_argument("--hop-tasks", default=",".join(HOP_TASKS),
                    help="with --hop-target: the one-step tasks whose lookups it supervises, comma-separated, "
                         "from " + ", ".join(HOP_TASKS) + " (e.g. multihop: vartrack trains on its answers only)")
    ap.add_argument("--share-prefix", type=float, default=0.0,
                    help="chance that a multikey or vartrack distractor's value begins with the same 1-3 "
                         "digits as another value of its prompt (hard negatives for copying the digits "
                         "after the first); 0: every value drawn on its own, as the evaluation prompts are")
    ap.add_argument("--hop-answer", choices=("none", "last", "all"), default="none",
                    help="with --hop-target: one-step vartrack answers' later tokens are supervised too: at "
                         "each position whose input is a digit of the value, the last hop's head onto the "
                         "value's next digit (last), and the earlier hops' heads onto the same names as from "
                         "the question (all); none: the question's last token alone")
    ap.add_argument("--hop-answer-weight", type=float, default=1.0,
                    help="with --hop-answer: the loss weight of those rows (-log of the attention on "
                         "their targets), in place of --hop-target's")
    ap.add_argument("--hop-value", choices=("all", "first"), default="all",
                    help="with --hop-target: the tokens a vartrack chain's last hop (onto its value) is "
                         "supervised onto: all of the value's, or its first alone (the digit the answer's "
                         "first token copies)")
    ap.add_argument("--var-gather-target", default="",
                    help="LAYER.HEAD=WEIGHT: attention supervision of the name each vartrack fact and question "
                         "is keyed on: at every 'VAR <name> =' and 'VAR <name> hold' of a vartrack prompt, that "
                         "head's attention from '=' or ' hold' gets a loss of WEIGHT x -log(attention on the "
                         "name's tokens), e.g. 2.2=1")
    ap.add_argument("--right-gather-target", default="",
                    help="LAYER.HEAD=WEIGHT: attention supervision of the key each vartrack fact's right side "
                         "offers: at the first token after every 'VAR <name> = ', that head's attention gets a loss "
                         "of WEIGHT x -log(attention on the name's tokens), for names and values alike, e.g. 2.2=1")
    ap.add_argument("--advance", type=float, default=0.85)
    ap.add_argument("--window", type=int, default=300)
    ap.add_argument("--min-steps", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default="",
                    help="HF folder (train.py's hf/ export, or `cacheclip convert M.gguf DIR --format hf`) whose "
                         "weights the run starts from, with a fresh optimizer and a new warm-up (a checkpoint "
                         "that --resume finds wins)")
    ap.add_argument("--grow-at", default="",
                    help="with --init: comma-separated indices of this run's layers that are new identity blocks "
                         "(o_proj and down_proj zero); the --init model, with that many fewer layers, fills the "
                         "others in order, e.g. --layers 7 --grow-at 2,5 from a 5-layer model")
    ap.add_argument("--grow-qk-from", type=int, default=None,
                    help="with --grow-at: the new blocks copy this (kept) layer's q_proj, k_proj and attention "
                         "norm, e.g. 4: their heads start out matching queries to keys as its heads do")
    ap.add_argument("--init-run", default="",
                    help="with --init: the run folder (train.json + log.jsonl) whose steps, stage, time and "
                         "curves this run continues")
    a = ap.parse_args(argv)
    if not a.first_weight > 0:  # NaN too
        raise SystemExit("--first-weight must be > 0")
    def head_spec(opt, v):
        if not v:
            return None
        m = re.fullmatch(r"(\d+)\.(\d+)=([0-9.eE+-]+)", v)
        try:
            w = float(m[3]) if m else -1.0
        except ValueError:
            w = -1.0
        if not m or not int(m[1]) < a.layers or not int(m[2]) < a.heads or not w > 0:
            raise SystemExit(f"{opt}: '{v}' is not LAYER.HEAD=WEIGHT with a layer < {a.layers}, "
                             f"a head < {a.heads} and a weight > 0")
        return int(m[1]), int(m[2]), w
    attn_target = head_spec("--attn-target", a.attn_target)
    gather_target = head_spec("--gather-target", a.gather_target)
    hop_target = []
    if a.hop_target:
        heads, _, w = a.hop_target.rpartition("=")
        try:
            hop_target = [head_spec("--hop-target", f"{h}={w}") for h in heads.split(",")]
        except SystemExit:
            hop_target = []
        if not 1 <= len(hop_target) <= max(tasks.MAX_HOPS.values()) or any(x[0] >= y[0] for x, y in zip(hop_target, hop_target[1:])):
            raise SystemExit(f"--hop-target: '{a.hop_target}' is not L.H[,L.H[,L.H]]=WEIGHT with layers < {a.layers} "
                             f"rising hop by hop (a hop reads what the one before found), heads < {a.heads} and "
                             "a weight > 0")
    hop_tasks = parse_hop_tasks(a.hop_tasks)
    if hop_tasks is None:
        raise SystemExit(f"--hop-tasks: '{a.hop_tasks}' is not a comma-separated list of distinct tasks "
                         f"from {', '.join(HOP_TASKS)}, each with an optional :N of 1 to its hop count "
                         f"({', '.join(f'{k} {v}' for k, v in tasks.MAX_HOPS.items())})")
    # Supervision kinds: {kind: [(layer, head, weight) per hop]} (attn, gather and vgather have one hop).
    var_gather = head_spec("--var-gather-target", a.var_gather_target)
    right_gather = head_spec("--right-gather-target", a.right_gather_target)
    specs = {k: [v] for k, v in (("attn", attn_target), ("gather", gather_target), ("vgather", var_gather),
                                 ("rgather", right_gather)) if v}
    if hop_target:
        specs["hop"] = hop_target
        if a.hop_answer != "none":
            specs["ahop"] = [(layer, head, a.hop_answer_weight) for layer, head, _ in hop_target]
    elif a.hop_answer != "none":
        raise SystemExit("--hop-answer needs --hop-target")
    if not a.hop_answer_weight > 0:
        raise SystemExit(f"--hop-answer-weight must be > 0, not {a.hop_answer_weight}")
    if a.decay_from < 0 or a.decay_steps < 1 or not 0 <= a.lr_min <= 1:
        raise SystemExit("--decay-from must be >= 0, --decay-steps >= 1 and --lr-min in [0, 1]")

    if a.data_workers < 0:
        raise SystemExit("--data-workers must be >= 0")
    try:
        dev = torch.device(a.device)
    except RuntimeError as e:
        raise SystemExit(f"--device {a.device}: {e}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {a.device}: this torch ({torch.__version__}) sees no CUDA device")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise SystemExit(f"--device {a.device}: there are {torch.cuda.device_count()} CUDA device(s)")
    if dev.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {a.device}: cpu or cuda expected")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    tok = load_tokenizer(a.tokenizer)
    c = {"vocab": len(tok), "dim": a.dim, "layers": a.layers, "heads": a.heads, "kv_heads": a.kv_heads,
         "ffn": a.ffn, "head_dim": a.head_dim, "max_pos": a.max_pos, "rope_theta": a.rope_theta, "eps": 1e-5}
    model = Model(c)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.01)
    data = Data(tok, a.corpus, a.seed)
    for kv in filter(None, a.task_weights.split(",")):
        name, _, w = kv.partition("=")
        try:
            weight = float(w)
        except ValueError:
            weight = -1.0
        if name not in tasks.TASKS or not weight > 0:
            raise SystemExit(f"--task-weights: '{kv}' is not TASK=WEIGHT with a task of {sorted(tasks.TASKS)} "
                             "and a weight > 0")
        data.task_weights[name] = weight
    if not 0 <= a.share_prefix <= 1:
        raise SystemExit(f"--share-prefix must be in [0, 1], not {a.share_prefix}")
    data.gen.share_prefix = a.share_prefix
    for name in filter(None, a.add_tasks.split(",")):
        if name not in tasks.VARIANTS:
            raise SystemExit(f"--add-tasks: '{name}' is not a task variant of {sorted(tasks.VARIANTS)}")
        data.extra += (name,)
    for name in filter(None, a.long_tasks.split(",")):
        if name not in tasks.TASKS:
            raise SystemExit(f"--long-tasks: '{name}' is not a task of {sorted(tasks.TASKS)}")
        data.long_tasks += (name,)
    if a.stage_shape:
        m = re.fullmatch(r"(\d+)-(\d+):(\d+)-(\d+)", a.stage_shape)
        if not m or not (1 <= int(m[1]) <= int(m[2]) and 1 <= int(m[3]) <= int(m[4])):
            raise SystemExit(f"--stage-shape: '{a.stage_shape}' is not CHUNKS_LO-HI:WORDS_LO-HI with 1 <= lo <= hi")
        data.shape = ((int(m[1]), int(m[2])), (int(m[3]), int(m[4])))
    # The data workers fork before CUDA starts in this process; the model moves after them (its
    # parameters stay the optimizer's), and before a checkpoint's state is loaded onto them.
    batches = Batches(data, a.data_workers, (a.tokens, a.lm_share, a.copy_share, a.long_share))
    model.to(dev)
    step, stage, spent, stage_steps, history, warm_from = 0, 0, 0.0, 0, [], 0
    if a.init_run and not a.init:
        raise SystemExit("--init-run needs --init")
    try:
        grow = [int(x) for x in filter(None, a.grow_at.split(","))]
    except ValueError:
        raise SystemExit(f"--grow-at: '{a.grow_at}' is not a comma-separated list of layer indices")
    if grow and not a.init:
        raise SystemExit("--grow-at needs --init")
    if a.grow_qk_from is not None and not grow:
        raise SystemExit("--grow-qk-from needs --grow-at")
    ckpt = os.path.join(a.out, "ckpt.pt")
    if a.resume and os.path.exists(ckpt):
        st = load_ckpt(ckpt, dev)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, stage, spent, history = st["step"], st["stage"], st["seconds"], st["history"]
        data.rng.setstate(st["rng"])
        warm_from = st.get("warm_from", 0)
        print(f"{a.name}: resumed at step {step}, stage {stage}, {spent / 60:.1f} min", flush=True)
    elif a.init:
        init_from_hf(model, a.init, grow, a.grow_qk_from)
        if a.init_run:
            try:
                with open(os.path.join(a.init_run, "train.json")) as f:
                    prev = json.load(f)
                with open(os.path.join(a.init_run, "log.jsonl")) as f:
                    history = [json.loads(line) for line in f if line.strip()]
                step, stage, spent = int(prev["steps"]), int(prev["stage"]), float(prev["seconds"])
            except (OSError, ValueError, KeyError) as e:
                raise SystemExit(f"--init-run {a.init_run}: no readable train.json and log.jsonl ({e})")
            history = [r for r in history if r["step"] <= step]
        warm_from = step
        # New prompts: the data streams are seeded by the step the run starts at.
        data.rng.seed(a.seed * 1000003 + step)
        data.gen.rng.seed(a.seed * 1000003 + step + 1)
        print(f"{a.name}: weights from {a.init}, at step {step}, stage {stage}; fresh optimizer, "
              f"warm-up over {a.warmup} steps", flush=True)
    print(f"{a.name}: {n_params(model) / 1e6:.3f}M parameters, vocab {len(tok)}, {a.threads} thread(s), "
          f"device {dev}{', bf16 autocast' if a.bf16 else ''}, {a.data_workers} data worker(s)", flush=True)

    seen = {k: collections.deque(maxlen=200) for k in ("attn", "gather", "vgather", "rgather", "hop1", "hop2", "hop3",
                                                           "ahop1", "ahop2", "ahop3")}
    pieces = [tok.decode([i]) for i in range(len(tok))] if hop_target or var_gather or right_gather else None
    colon = tok.encode(":")[0]
    kinds = token_kinds(tok) if gather_target else {}
    rel = tok.encode(" works with")
    recent = collections.deque(maxlen=a.window)
    per_task = collections.defaultdict(lambda: collections.deque(maxlen=200))
    # On resume the log restarts from the checkpoint's history: steps logged after the last
    # checkpoint belong to a timeline that was lost.
    log = open(os.path.join(a.out, "log.jsonl"), "w")
    for rec in history:
        log.write(json.dumps(rec) + "\n")
    log.flush()
    t_start, t_ckpt = time.time() - spent, time.time()
    run_loss, run_n = 0.0, 0

    def save():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "stage": stage,
                    "seconds": time.time() - t_start, "history": history, "rng": data.rng.getstate(),
                    "config": c, "warm_from": warm_from}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    while True:
        elapsed = time.time() - t_start
        if elapsed > a.minutes * 60 or (a.max_steps and step >= a.max_steps):
            break
        lr = lr_at(step, a, warm_from)
        for g in opt.param_groups:
            g["lr"] = lr
        ids, tgt, amask, names, spans = batches.get(step, stage)
        # Attention supervision: {kind: [(hop, sequence, query position, target positions), ...]}.
        sup = {"attn": [], "gather": [], "vgather": [], "rgather": [], "hop": [], "ahop": []}
        for name, sp in zip(names, spans):
            if sp is None:
                continue
            if tasks.VARIANTS.get(name, name) == "vartrack":
                for kind, on, keys in (("vgather", var_gather, var_keys), ("rgather", right_gather, right_keys)):
                    if on:
                        sup[kind] += [(0, sp[0], r, span) for r, span in keys(pieces, ids[sp[0], :sp[1] + 1].tolist())]
            if name in LOOKUP_TASKS and (attn_target or gather_target):
                seq = ids[sp[0]].tolist()
                w = lookup_target(seq, sp[1], colon) if attn_target else None
                if w is not None:
                    sup["attn"].append((0, sp[0], sp[1], [w]))
                if gather_target:
                    sup["gather"] += [(0, sp[0], r, span)
                                      for r, span in relation_keys(seq[:sp[1] + 1], rel, kinds)]
        if hop_target:
            sup["hop"] = hop_rows(pieces, ids, names, spans, len(hop_target), hop_tasks,
                                  a.hop_value == "first")
            if a.hop_answer != "none":
                sup["ahop"] = answer_hop_rows(pieces, ids, names, spans, len(hop_target), hop_tasks,
                                              a.hop_answer == "all")
        probes, where = probe_plan(sup, specs)
        for layer, pr in probes.items():
            model.layers[layer].probe = pr
        ids, tgt, amask = ids.to(dev), tgt.to(dev), amask.to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(ids)
        rows = {layer: model.layers[layer].rows for layer in probes}
        for layer in probes:
            model.layers[layer].probe = None  # no rows kept by later forwards (held-out ppl)
        logits = logits.float()
        ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt.view(-1), reduction="none",
                             ignore_index=-100).view(tgt.shape)
        valid = tgt != -100
        lm = valid & ~amask
        loss = answer_loss(ce, amask, names, spans, a.first_weight)
        loss = loss + a.lm_weight * ce[lm].mean()
        if probes:  # every layer's kept rows in one tensor; a kind's rows picked out by index
            first, at = {}, 0
            for layer in probes:
                first[layer], at = at, at + rows[layer].shape[0]
            every = torch.cat([rows[layer] for layer in probes])
        for kind, rows_of in sup.items():
            if rows_of:
                r = every.index_select(0, torch.tensor([first[layer] + j for layer, j in where[kind]], device=dev))
                mass = attn_mass(r, [w for _, _, _, w in rows_of])
                loss = loss - specs[kind][0][2] * mass.clamp_min(1e-9).log().mean()
                for m, (h, _, _, _) in zip(mass.detach().tolist(), rows_of):
                    seen[f"{kind}{h + 1}" if kind in ("hop", "ahop") else kind].append(m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        stage_steps += 1
        run_loss += loss.item()
        run_n += 1
        with torch.no_grad():
            pred_cpu, tgt_cpu = logits.argmax(-1).cpu(), tgt.cpu()
            for name, sp in zip(names, spans):
                if sp is None:
                    continue
                i, s, e = sp
                ok = bool((pred_cpu[i, s:e] == tgt_cpu[i, s:e]).all())
                if name != "copy":  # the curriculum advances on the tasks only
                    recent.append(ok)
                per_task[name].append(ok)
        if (len(recent) == a.window and sum(recent) / len(recent) >= a.advance and stage_steps >= a.min_steps
                and stage + 1 < len(STAGES)):
            stage += 1
            stage_steps = 0
            recent.clear()
            print(f"{a.name}: step {step}: stage {stage} ({STAGES[stage]})", flush=True)
        if step % a.log_every == 0:
            rec = {"step": step, "seconds": round(time.time() - t_start, 1), "stage": stage, "lr": lr,
                   "loss": round(run_loss / run_n, 4), "tokens": int(ids.numel()), "seq_len": int(ids.shape[1]),
                   "acc": {k: round(sum(v) / len(v), 3) for k, v in per_task.items() if v}}
            for kind, v in seen.items():  # mean supervised attention mass, the last 200 rows
                if v:
                    rec[kind] = round(sum(v) / len(v), 3)
            history.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(f"{a.name}: {json.dumps(rec)}", flush=True)
            run_loss, run_n = 0.0, 0
        if time.time() - t_ckpt > a.ckpt_minutes * 60:
            save()
            t_ckpt = time.time()
    batches.close()
    save()
    ppl = heldout_ppl(model, tok, a.corpus)
    export_hf(model, tok, os.path.join(a.out, "hf"), f"cacheclip-{a.name}")
    info = {"name": a.name, "args": vars(a), "config": c, "parameters": n_params(model), "steps": step,
            "seconds": round(time.time() - t_start, 1), "stage": stage, "stages": [list(map(list, s[1:])) + [list(s[0])]
                                                                                  for s in STAGES],
            "heldout_ppl": round(ppl, 3), "torch": torch.__version__, "machine": machine(),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}
    with open(os.path.join(a.out, "train.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"{a.name}: done, {step} steps, {info['seconds'] / 60:.1f} min, stage {stage}, held-out ppl {ppl:.2f}",
          flush=True)


if __name__ == "__main__":
    main()
