#!/usr/bin/env python3
"""Byte-level BPE for the shipped model pair: training, encoding, and export as a gpt2-style
tokenizer (HF tokenizer.json + tokenizer_config.json) that `cacheclip` loads.

Pre-tokenization is the Qwen2 regex (digits split one by one, so every code in the task suite is
made of the same ten digit tokens), then the GPT-2 byte-to-unicode map; merges are learned on the
word counts of the training text. The vocabulary is the 256 byte tokens, the learned merges and
one special token, <|endoftext|>, which is both BOS and EOS.

  /usr/bin/python3 models/train/bpe.py --vocab 2048 --out DIR TEXTFILE...
"""
import argparse
import collections
import json
import os
import sys

import regex

# The Qwen2 pre-tokenizer (the engine knows it as "qwen2").
PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = "<|endoftext|>"
_SPLIT = regex.compile(PATTERN)


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


B2U = bytes_to_unicode()
U2B = {v: k for k, v in B2U.items()}


def pretokenize(text):
    return ["".join(B2U[b] for b in w.encode("utf-8")) for w in _SPLIT.findall(text)]


def train(texts, vocab_size, log=None):
    """Learns vocab_size - 256 - 1 merges; returns the list of (left, right) pairs in order."""
    n_merges = vocab_size - 256 - 1
    if n_merges < 0:
        raise ValueError(f"vocabulary size {vocab_size} is below 257 (256 bytes + {SPECIAL})")
    counts = collections.Counter()
    for t in texts:
        counts.update(pretokenize(t))
    words = [list(w) for w in counts]
    freq = [counts[w] for w in counts]
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += freq[i]
            where[(a, b)].add(i)
    merges = []
    while len(merges) < n_merges and pairs:
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))  # ties: deterministic
        (a, b), c = best
        if c < 2:
            break
        merges.append((a, b))
        ab = a + b
        for i in list(where[(a, b)]):
            w = words[i]
            f = freq[i]
            for x, y in zip(w, w[1:]):
                pairs[(x, y)] -= f
                if pairs[(x, y)] <= 0:
                    del pairs[(x, y)]
                where[(x, y)].discard(i)
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(ab)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for x, y in zip(out, out[1:]):
                pairs[(x, y)] += f
                where[(x, y)].add(i)
        if log and len(merges) % 250 == 0:
            log(f"bpe: {len(merges)}/{n_merges} merges")
    return merges


class Tokenizer:
    """Encoder/decoder over a learned merge list; matches the engine's BPE exactly."""

    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.rank = {m: i for i, m in enumerate(self.merges)}
        self.vocab = {B2U[b]: b for b in range(256)}
        for a, b in self.merges:
            self.vocab.setdefault(a + b, len(self.vocab))
        self.eos = len(self.vocab)
        self.vocab[SPECIAL] = self.eos
        self.bos = self.eos
        self.inv = {i: s for s, i in self.vocab.items()}
        self.cache = {}

    def __len__(self):
        return len(self.vocab)

    def _word(self, w):
        hit = self.cache.get(w)
        if hit is not None:
            return hit
        parts = list(w)
        while len(parts) > 1:
            best, at = None, -1
            for j in range(len(parts) - 1):
                r = self.rank.get((parts[j], parts[j + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, j
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        ids = [self.vocab[p] for p in parts]
        if len(self.cache) < 200000:
            self.cache[w] = ids
        return ids

    def encode(self, text, bos=False):
        out = [self.bos] if bos else []
        for w in pretokenize(text):
            out.extend(self._word(w))
        return out

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            s = self.inv[i]
            if s == SPECIAL:
                continue
            bs.extend(U2B[ch] for ch in s)
        return bs.decode("utf-8", errors="replace")

    def save(self, out_dir):
        """tokenizer.json (HF, gpt2-style byte-level BPE) + tokenizer_config.json + merges.txt."""
        os.makedirs(out_dir, exist_ok=True)
        vocab = {s: i for s, i in self.vocab.items() if s != SPECIAL}
        tj = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [{"id": self.eos, "content": SPECIAL, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": vocab, "merges": [f"{a} {b}" for a, b in self.merges]},
        }
        with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": SPECIAL, "eos_token": SPECIAL,
               "unk_token": None, "pad_token": SPECIAL, "clean_up_tokenization_spaces": False,
               "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096,
               "cacheclip_pre_tokenizer": "qwen2"}
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f, ensure_ascii=False, indent=1)
        with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(f"{a} {b}" for a, b in self.merges) + "\n")

    @staticmethod
    def load(path):
        """From a merges.txt or a tokenizer.json."""
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                merges = [m.split(" ") for m in json.load(f)["model"]["merges"]]
        else:
            with open(path, encoding="utf-8") as f:
                merges = [line.rstrip("\n").split(" ") for line in f if line.strip()]
        return Tokenizer(merges)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("texts", nargs="+")
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    texts = []
    for p in a.texts:
        with open(p, encoding="utf-8") as f:
            texts.append(f.read())
    tok = Tokenizer(train(texts, a.vocab, log=lambda s: print(s, file=sys.stderr)))
    tok.save(a.out)
    print(f"bpe: {len(tok)} tokens -> {a.out}")


if __name__ == "__main__":
    sys.exit(main())
