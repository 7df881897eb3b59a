#!/usr/bin/env python3
"""Seeded RULER-like RAG task generator (issue 7, item 1).

Each example is a shared prefix, n chunks (documents) and a question, with the facts the answer
needs placed inside chunks among natural filler text:

  needle      one "The special code of <key> is <value>." in one chunk
  multikey    several keys with values, the question asks for one (the others are distractors)
  multivalue  one key with several values in different chunks; all of them must be given
  vartrack    variable tracking: X1 = v, X2 = X1, X3 = X2 ... with every link in a different chunk,
              beside a second chain with another value (so the only number is never the answer);
              names are X and 4 digits (VAR X4821 = X1375.)
  multihop    a 2-step lookup across chunks: "<a> works with <b>." "<b> lives in <city>.", beside
              a second pair with another city; people are a name and 2 digits (Tina-42), as
              the needles' keys are
  boundary    one needle cut by a chunk boundary, as fixed-size chunking cuts sentences: a chunk
              ends with "The special code of <key> is" and the next begins with " <value>." (the
              two halves of one passage; every other chunk ends with its blank line). With full
              attention the text reads as a plain needle; a chunk encoded alone does not know
              what its first tokens complete.

Filler is taken from ../shared/corpus/wikipedia-nq-passages.txt when it exists (one passage per
chunk), else from a small built-in word list, so the generator runs anywhere.

The question ends with the start of the answer sentence ("Answer: The special code of <key> is "),
as RULER's templates do, so the model continues with the value itself.

The chain variants take their base task's prompt (one seed, the same documents and question) and
are answered link by link, each step a lookup of the last name written:
  vartrack-chain  "Answer: VAR X3 =" -> " X2 = X1 = 123456"  (RULER's variable tracking answers
                  with the chain's variables too)
  multihop-chain  "Answer: Tina-42 works with" -> " Anna-17. Anna-17 lives in Nantes"
A training variant with prompts of its own:
  multihop-crowd  multihop-chain among four pairs (three distractors): a "works with" fact taken
                  at random is right a quarter of the time, not half, so the answer pays more
                  for matching the asked person's name
Their leads end before the space and the answers begin with it, so every name is the same tokens
as in the documents.

Output: a JSON list of {"prefix", "chunks", "question", "answers", "task", "depth"}: exactly what
`cacheclip eval --tasks FILE.json` reads.

  python3 models/train/tasks.py --task needle --n 50 --chunks 4 --chunk-words 60 --seed 1 -o needle.json
"""
import argparse
import json
import os
import random
import sys

# The answer-by-chain variants and the base task whose prompts each answers.
VARIANTS = {"vartrack-chain": "vartrack", "multihop-chain": "multihop", "multihop-crowd": "multihop"}
TASKS = ("needle", "multikey", "multivalue", "vartrack", "multihop", "boundary") + tuple(VARIANTS)
# The most facts a one-step answer reads in turn: vartrack's chain has up to 3 links (one per
# chunk), multihop's a "works with" then a "lives in" fact.
MAX_HOPS = {"vartrack": 3, "multihop": 2}
PREFIX = "Answer the question using only the documents. Give the answer alone.\n\n"

_WORDS = ("the river valley town market winter summer stone bridge old road north south light "
          "house field garden school farmer teacher music story window morning evening forest hill "
          "lake village harbour boat bread table letter mountain train station island").split()
_NAMES = ("Anna Bruno Clara David Elena Felix Greta Hugo Irene Jonas Karla Lukas Mira Nora Oskar "
          "Paula Quinn Rosa Stefan Tina Umar Vera Walter Xenia Yusuf Zora").split()
_CITIES = ("Lisbon Oslo Quito Lima Accra Hanoi Dakar Porto Riga Tunis Baku Cork Split Turku Bergen "
           "Malmo Ghent Nantes Graz Brno").split()


def load_passages(path, split="all"):
    """Wikipedia passages (title line + text + blank line) as lists of words; [] if absent.
    split: "all", "train" (every passage but each 20th) or "heldout" (each 20th): the shipped
    models train on the first and are measured on the second."""
    if not path or not os.path.exists(path):
        return []
    out, cur = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                if cur:
                    out.append(" ".join(cur).split())
                cur = []
            else:
                cur.append(line)
    if cur:
        out.append(" ".join(cur).split())
    out = [p for p in out if len(p) >= 20]
    if split == "train":
        return [p for i, p in enumerate(out) if i % 20 != 0]
    if split == "heldout":
        return [p for i, p in enumerate(out) if i % 20 == 0]
    if split != "all":
        raise ValueError(f"unknown split {split!r} (all, train, heldout)")
    return out


def cut_needle(chunks, at, key, value):
    """Cuts the needle of `key` between chunks `at` and `at + 1` just before its value."""
    chunks[at] = chunks[at] + [f"The special code of {key} is"]
    chunks[at + 1] = [f"{value}."] + chunks[at + 1]


def join_words(chunks, cut=None):
    """Each chunk's text. Each part is tokenized alone (as the engine does), so each carries its
    own blank line, except chunk `cut`, which continues into the next: that one starts with the
    space the words had between them (words and digits are pre-tokenized with their leading
    space, so the tokens are those of the joined text)."""
    return [(" " if cut is not None and i == cut + 1 else "") + " ".join(c) + ("" if i == cut else "\n\n")
            for i, c in enumerate(chunks)]


class Gen:
    def __init__(self, seed, passages, chunk_words):
        self.rng = random.Random(seed)
        self.passages = passages
        self.chunk_words = chunk_words
        # Training only: the chance that a distractor's value (multikey's other codes, vartrack's
        # other chain's) begins with the same 1-3 digits as the first value, so that copying the
        # digits after the first cannot go by the previous digit alone. 0 (the default) draws
        # every value on its own, with the same random stream as before the option existed.
        self.share_prefix = 0.0

    def filler(self):
        if self.passages:
            p = self.rng.choice(self.passages)
            start = self.rng.randrange(0, max(1, len(p) - self.chunk_words))
            return p[start:start + self.chunk_words]
        return [self.rng.choice(_WORDS) for _ in range(self.chunk_words)]

    def code(self):
        return str(self.rng.randrange(100000, 999999))

    def code_like(self, v):
        """A fresh code; with chance share_prefix, one that starts with v's first 1-3 digits
        (and still differs from v)."""
        if not (self.share_prefix and self.rng.random() < self.share_prefix):
            return self.code()
        k = self.rng.randint(1, 3)
        while True:
            c = v[:k] + self.code()[k:]
            if c != v:
                return c

    def key(self):
        return self.rng.choice(_NAMES).lower() + "-" + str(self.rng.randrange(10, 99))

    def insert(self, words, sentence, depth):
        """Puts a sentence at relative depth (0 = start, 1 = end) of a chunk, between words. The
        sentence is one item of the list, so a later insert cannot land inside it."""
        at = int(round(depth * len(words)))
        return words[:at] + [sentence] + words[at:]

    def example(self, task, n_chunks, depth):
        chunks = [self.filler() for _ in range(n_chunks)]
        cut = None  # boundary: chunk `cut` continues into chunk cut + 1 (no blank line between)
        place = lambda i, s, d=depth: chunks.__setitem__(i, self.insert(chunks[i], s, d))
        rnd_chunk = lambda: self.rng.randrange(n_chunks)
        if task == "needle":
            k, v = self.key(), self.code()
            place(rnd_chunk(), f"The special code of {k} is {v}.")
            q, lead, ans = f"What is the special code of {k}?", f"The special code of {k} is ", [v]
        elif task == "multikey":
            keys = [self.key() for _ in range(min(4, 2 * n_chunks))]
            vals = [self.code()]
            vals += [self.code_like(vals[0]) for _ in keys[1:]]
            for k, v in zip(keys, vals):
                place(rnd_chunk(), f"The special code of {k} is {v}.", self.rng.random())
            i = self.rng.randrange(len(keys))
            q, lead, ans = (f"What is the special code of {keys[i]}?", f"The special code of {keys[i]} is ",
                            [vals[i]])
        elif task == "multivalue":
            k = self.key()
            vals = sorted({self.code() for _ in range(min(3, n_chunks))})
            for c, v in zip(self.rng.sample(range(n_chunks), len(vals)), vals):
                place(c, f"One special code of {k} is {v}.", self.rng.random())
            q, lead, ans = (f"What are all the special codes of {k}? List them in increasing order.",
                            f"The special codes of {k} are ", [" ".join(vals)])
        elif task in ("vartrack", "vartrack-chain"):
            # Two chains (the second a distractor with its own value): the answer needs the
            # asked chain followed link by link, every link in a different chunk.
            hops = min(n_chunks, MAX_HOPS["vartrack"])
            used = set()

            def fresh():
                while True:
                    n = f"X{self.rng.randrange(1000, 9999)}"
                    if n not in used:
                        used.add(n)
                        return n
            chains = []
            for _ in range(2):
                names = [fresh() for _ in range(hops)]
                v = self.code_like(chains[0][1]) if chains else self.code()
                order = self.rng.sample(range(n_chunks), hops)
                place(order[0], f"VAR {names[0]} = {v}.", self.rng.random())
                for i in range(1, hops):
                    place(order[i], f"VAR {names[i]} = {names[i - 1]}.", self.rng.random())
                chains.append((names, v))
            names, v = chains[self.rng.randrange(2)]
            q = f"Which value does VAR {names[-1]} hold in the end?"
            if task == "vartrack":
                lead, ans = f"VAR {names[-1]} holds ", [v]
            else:  # the answer spells the chain back to the value, one link per step
                lead, ans = f"VAR {names[-1]} =", [" " + " = ".join(names[-2::-1] + [v])]
        elif task in ("multihop", "multihop-chain"):
            # Two "works with" / "lives in" pairs (one a distractor): the asked person's
            # colleague decides the city; each pair's facts sit in two different chunks.
            a, b, c, d = [f"{x}-{self.rng.randrange(10, 99)}" for x in self.rng.sample(_NAMES, 4)]
            city, other = self.rng.sample(_CITIES, 2)
            for x, y, town in ((a, b, city), (c, d, other)):
                c1, c2 = self.rng.sample(range(n_chunks), 2) if n_chunks >= 2 else (0, 0)
                place(c1, f"{x} works with {y}.", self.rng.random())
                place(c2, f"{y} lives in {town}.", self.rng.random())
            if self.rng.random() < 0.5:
                a, b, city = c, d, other
            q = f"In which city does the colleague of {a} live?"
            if task == "multihop":
                lead, ans = f"The colleague of {a} lives in ", [city]
            else:  # the answer names the colleague first, then where the colleague lives
                lead, ans = f"{a} works with", [f" {b}. {b} lives in {city}"]
        elif task == "multihop-crowd":
            pairs = 4
            people = [f"{x}-{self.rng.randrange(10, 99)}" for x in self.rng.sample(_NAMES, 2 * pairs)]
            towns = self.rng.sample(_CITIES, pairs)
            for j in range(pairs):
                c1, c2 = self.rng.sample(range(n_chunks), 2) if n_chunks >= 2 else (0, 0)
                place(c1, f"{people[2 * j]} works with {people[2 * j + 1]}.", self.rng.random())
                place(c2, f"{people[2 * j + 1]} lives in {towns[j]}.", self.rng.random())
            j = self.rng.randrange(pairs)
            a, b, city = people[2 * j], people[2 * j + 1], towns[j]
            q = f"In which city does the colleague of {a} live?"
            lead, ans = f"{a} works with", [f" {b}. {b} lives in {city}"]
        elif task == "boundary":
            if n_chunks < 2:
                raise ValueError("boundary needs at least 2 chunks")
            k, v = self.key(), self.code()
            cut = self.rng.randrange(n_chunks - 1)
            cut_needle(chunks, cut, k, v)
            q, lead, ans = f"What is the special code of {k}?", f"The special code of {k} is ", [v]
        else:
            raise ValueError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
        return {"prefix": PREFIX, "chunks": join_words(chunks, cut),
                "question": f"Question: {q}\nAnswer: {lead}", "answers": ans, "task": task, "depth": depth}


def prompt_ids(tok, ex):
    """An example's prompt as the engine tokenizes a request: BOS and the prefix, then each chunk
    and the question on their own (no merge across a part's edge). tok: bpe.Tokenizer."""
    ids = tok.encode(ex["prefix"], bos=True)
    for c in ex["chunks"]:
        ids += tok.encode(c)
    return ids + tok.encode(ex["question"])


def generate(task, n, n_chunks, chunk_words, seed, corpus, split="all"):
    if n < 1 or n_chunks < 1 or chunk_words < 1:
        raise ValueError("n, chunks and chunk words must be >= 1")
    g = Gen(seed, load_passages(corpus, split), chunk_words)
    return [g.example(task, n_chunks, depth=(i % 5) / 4.0) for i in range(n)]


def docset(n_docs, chunk_words, seed, corpus, split="all", n_keys=4, cut=False):
    """A document set with n_keys facts spread over n_docs documents and one question per fact
    (the multikey task's distribution: every other fact is a distractor for each question).
    cut: the first fact is cut between two neighbouring documents just before its value (the
    boundary task: the first ends with "... is", the next begins with " <value>.")."""
    if n_docs < 1 or chunk_words < 1 or n_keys < 1:
        raise ValueError("documents, chunk words and keys must be >= 1")
    if cut and n_docs < 2:
        raise ValueError("a cut fact needs at least 2 documents")
    g = Gen(seed, load_passages(corpus, split), chunk_words)
    docs = [g.filler() for _ in range(n_docs)]
    keys, qs, at = set(), [], None
    while len(keys) < n_keys:
        keys.add(g.key())
    for j, k in enumerate(sorted(keys)):
        v = g.code()
        if cut and j == 0:
            at = g.rng.randrange(n_docs - 1)
            cut_needle(docs, at, k, v)
            d = [at, at + 1]
        else:
            d = g.rng.randrange(n_docs)
            depth, n = g.rng.random(), len(docs[d])
            if at is not None and d == at:  # not after the cut fact's first half
                depth *= (n - 1) / n
            elif at is not None and d == at + 1:  # nor before its second
                depth = (1 + depth * (n - 1)) / n
            docs[d] = g.insert(docs[d], f"The special code of {k} is {v}.", depth)
        qs.append({"question": f"Question: What is the special code of {k}?\nAnswer: The special code of {k} is ",
                   "answers": [v], "doc": d})
    g.rng.shuffle(qs)
    return {"prefix": PREFIX, "docs": join_words(docs, at), "questions": qs}


def write_docset(out_dir, ds):
    """DIR/docs/NN.txt, DIR/prefix.txt and DIR/questions.json (what `cacheclip ask` reads)."""
    os.makedirs(os.path.join(out_dir, "docs"), exist_ok=True)
    for i, d in enumerate(ds["docs"]):
        with open(os.path.join(out_dir, "docs", f"{i + 1:02d}.txt"), "w", encoding="utf-8") as f:
            f.write(d)
    with open(os.path.join(out_dir, "prefix.txt"), "w", encoding="utf-8") as f:
        f.write(ds["prefix"])
    with open(os.path.join(out_dir, "questions.json"), "w", encoding="utf-8") as f:
        json.dump(ds["questions"], f, indent=1)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_corpus = os.path.join(here, "..", "..", "..", "shared", "corpus", "wikipedia-nq-passages.txt")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=TASKS)
    ap.add_argument("--docset", metavar="DIR", help="write a document set with questions instead (see docset())")
    ap.add_argument("--keys", type=int, default=4, help="--docset: facts (one question each)")
    ap.add_argument("--cut", action="store_true", help="--docset: cut the first fact between two documents")
    ap.add_argument("--n", type=int, default=50, help="examples")
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--chunk-words", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", default=os.environ.get("CACHECLIP_CORPUS", default_corpus))
    ap.add_argument("--split", default="all", choices=("all", "train", "heldout"),
                    help="which corpus passages give the filler")
    ap.add_argument("-o", "--out", default="-")
    a = ap.parse_args(argv)
    if a.docset:
        try:
            write_docset(a.docset, docset(a.chunks, a.chunk_words, a.seed, a.corpus, a.split, a.keys, a.cut))
        except ValueError as e:
            print(f"tasks.py: error: {e}", file=sys.stderr)
            return 1
        return 0
    if not a.task:
        ap.error("give --task or --docset")
    try:
        data = generate(a.task, a.n, a.chunks, a.chunk_words, a.seed, a.corpus, a.split)
    except ValueError as e:
        print(f"tasks.py: error: {e}", file=sys.stderr)
        return 1
    text = json.dumps(data, indent=1)
    if a.out == "-":
        print(text)
    else:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
