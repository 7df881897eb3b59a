#!/usr/bin/env python3
"""Independent NumPy reference forward pass for cacheclip's GGUF models (float64).

Usage
-----
    forward_ref.py MODEL.gguf --tokens 1,5,9 --out logits.bin
        Runs the whole prompt (full causal attention, positions 0..n-1) and writes the logits
        as float32 little-endian, shape [n_tokens, n_vocab], row-major (row t = the logits
        after token t), with no header.  File size = 4 * n_tokens * n_vocab bytes.
    forward_ref.py --self-test
        Runs the internal checks (GGUF parser round trip, RoPE, attention, causality, the
        1-token prompt against a hand computation) and prints "self-test: OK".

Exit status 0 on success; 1 with one line "forward_ref.py: error: ..." on stderr otherwise
(bad file, unsupported tensor type or architecture, token out of range, ...).  Needs only
Python 3 and numpy (run it with /usr/bin/python3 on Debian).

This file deliberately shares nothing with the C++ code: it parses GGUF itself with `struct`
and implements the math from the llama.cpp / Hugging Face definitions.

Supported
---------
* GGUF v2/v3, metadata of every value type (arrays included), `general.alignment` (default
  32), F32 tensors only (anything else raises a clear error).  GGUF ne[] is innermost-first,
  so a tensor with ne=[in, out] becomes a numpy array of shape (out, in).
* general.architecture "llama" or "qwen2":
    x = token_embd[tokens]
    per layer l:
      h = RMSNorm(x) * attn_norm                      (x / sqrt(mean(x^2) + eps) * w)
      q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)      (biases when present: qwen2)
      q, k = RoPE(q, pos), RoPE(k, pos)
      attn = softmax(q k^T / sqrt(head_dim) + causal mask) v   (GQA: query head j uses KV
             head j // (n_head / n_head_kv))
      x = x + attn Wo^T
      h = RMSNorm(x) * ffn_norm
      x = x + W_down (silu(W_gate h) * (W_up h))
    logits = RMSNorm(x) * output_norm, times output.weight^T (token_embd.weight when tied,
    i.e. when the file has no output.weight).
* RoPE: theta_i = freq_base^(-2i/head_dim), i in [0, head_dim/2); angle = pos' * theta_i /
  f_i with f_i from the tensor rope_freqs.weight when present (Llama-3 scaling) else 1, and
  pos' = pos / <arch>.rope.scaling.factor when <arch>.rope.scaling.type == "linear" else pos.
  Pairing: arch "llama" rotates (2i, 2i+1) ("adjacent", llama.cpp's normal rope); arch
  "qwen2" rotates (i, i + head_dim/2) ("neox").  (a, b) -> (a cos - b sin, a sin + b cos).
* Keys read: <arch>.embedding_length, .block_count, .feed_forward_length,
  .attention.head_count, .attention.head_count_kv (default head_count),
  .attention.layer_norm_rms_epsilon, .rope.freq_base (default 10000),
  .attention.key_length (default embedding_length / head_count), .rope.dimension_count
  (must equal the head dimension when present), .rope.scaling.type / .rope.scaling.factor.
"""

import argparse
import math
import mmap
import os
import struct
import sys

import numpy as np

# ----------------------------------------------------------------------------------------------
# GGUF parsing
# ----------------------------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"

# GGUF metadata value types.
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 = range(13)
_SCALAR_FMT = {
    T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
    T_F32: "<f", T_BOOL: "<B", T_U64: "<Q", T_I64: "<q", T_F64: "<d",
}
_TYPE_NAMES = {
    T_U8: "u8", T_I8: "i8", T_U16: "u16", T_I16: "i16", T_U32: "u32", T_I32: "i32", T_F32: "f32",
    T_BOOL: "bool", T_STRING: "string", T_ARRAY: "array", T_U64: "u64", T_I64: "i64", T_F64: "f64",
}

# ggml tensor types (names only used for error messages).
GGML_F32 = 0
_GGML_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0",
               9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
               15: "Q8_K", 30: "BF16"}


class RefError(Exception):
    """A problem with the input (file, arguments); reported as one line."""


class _Reader:
    """Bounds-checked little-endian reader over a bytes-like buffer."""

    def __init__(self, buf, name):
        self.buf = buf
        self.pos = 0
        self.name = name

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise RefError(f"{self.name}: truncated file reading {what} at offset {self.pos} "
                           f"(need {n} bytes, {len(self.buf) - self.pos} left)")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return bytes(b)

    def fmt(self, f, what):
        return struct.unpack(f, self.take(struct.calcsize(f), what))[0]

    def string(self, what):
        n = self.fmt("<Q", what + " length")
        return self.take(n, what).decode("utf-8", errors="replace")

    def value(self, vtype, what, depth=0):
        if vtype in _SCALAR_FMT:
            v = self.fmt(_SCALAR_FMT[vtype], what)
            return bool(v) if vtype == T_BOOL else v
        if vtype == T_STRING:
            return self.string(what)
        if vtype == T_ARRAY:
            if depth > 8:
                raise RefError(f"{self.name}: {what}: arrays nested too deeply")
            etype = self.fmt("<I", what + " element type")
            n = self.fmt("<Q", what + " element count")
            if etype in _SCALAR_FMT and etype != T_BOOL:
                size = struct.calcsize(_SCALAR_FMT[etype])
                raw = self.take(n * size, what)
                return list(struct.unpack("<" + _SCALAR_FMT[etype][1] * n, raw)) if n else []
            if n > len(self.buf) - self.pos:  # every element needs at least one byte
                raise RefError(f"{self.name}: {what}: array count {n} exceeds the file size")
            return [self.value(etype, f"{what}[{i}]", depth + 1) for i in range(n)]
        raise RefError(f"{self.name}: {what}: unknown metadata value type {vtype}")


class GGUF:
    """A parsed GGUF file: version, metadata (dict, insertion ordered), tensors (name -> array).

    Tensors are read-only numpy float32 views into the file mapping with row-major shapes
    (reversed ne[])."""

    def __init__(self, version, metadata, tensor_infos, alignment, data, name="<memory>"):
        self.name = name
        self.version = version
        self.metadata = metadata
        self.tensor_infos = tensor_infos  # name -> (shape row-major, ggml type, offset)
        self.alignment = alignment
        self._data = data  # the whole file (mmap or bytes)
        self._data_start = None

    def tensor(self, name):
        if name not in self.tensor_infos:
            raise RefError(f"{self.name}: missing tensor '{name}'")
        shape, gtype, abs_offset = self.tensor_infos[name]
        if gtype != GGML_F32:
            raise RefError(f"{self.name}: tensor '{name}' has type {_GGML_NAMES.get(gtype, gtype)}; "
                           f"only F32 is supported (write the model with --type f32)")
        count = int(np.prod(shape)) if shape else 1
        if abs_offset + 4 * count > len(self._data):
            raise RefError(f"tensor '{name}' data runs past the end of the file")
        arr = np.frombuffer(self._data, dtype="<f4", count=count, offset=abs_offset)
        return arr.reshape(shape)

    def has(self, name):
        return name in self.tensor_infos


def parse_gguf(buf, name="<memory>"):
    r = _Reader(buf, name)
    if r.take(4, "magic") != GGUF_MAGIC:
        raise RefError(f"{name}: not a GGUF file (bad magic)")
    version = r.fmt("<I", "version")
    if version not in (2, 3):
        raise RefError(f"{name}: unsupported GGUF version {version} (expected 2 or 3)")
    n_tensors = r.fmt("<Q", "tensor count")
    n_kv = r.fmt("<Q", "metadata count")
    if n_tensors > len(buf) or n_kv > len(buf):
        raise RefError(f"{name}: implausible counts (tensors {n_tensors}, metadata {n_kv})")
    metadata = {}
    for i in range(n_kv):
        key = r.string(f"metadata key #{i}")
        vtype = r.fmt("<I", f"type of '{key}'")
        if key in metadata:
            raise RefError(f"{name}: duplicate metadata key '{key}'")
        metadata[key] = r.value(vtype, f"value of '{key}'")
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise RefError(f"{name}: general.alignment {alignment} is not a positive power of two")
    infos = []
    for i in range(n_tensors):
        tname = r.string(f"tensor name #{i}")
        n_dims = r.fmt("<I", f"n_dims of '{tname}'")
        if n_dims > 4:
            raise RefError(f"{name}: tensor '{tname}' has {n_dims} dimensions (max 4)")
        ne = [r.fmt("<Q", f"ne of '{tname}'") for _ in range(n_dims)]
        gtype = r.fmt("<I", f"type of '{tname}'")
        offset = r.fmt("<Q", f"offset of '{tname}'")
        infos.append((tname, ne, gtype, offset))
    data_start = (r.pos + alignment - 1) // alignment * alignment
    tensor_infos = {}
    for tname, ne, gtype, offset in infos:
        if tname in tensor_infos:
            raise RefError(f"{name}: duplicate tensor '{tname}'")
        if offset % alignment:
            raise RefError(f"{name}: tensor '{tname}' offset {offset} is not aligned to {alignment}")
        shape = tuple(int(x) for x in reversed(ne))  # row-major: outermost first
        if gtype == GGML_F32:
            nbytes = 4 * (int(np.prod(shape)) if shape else 1)
            if data_start + offset + nbytes > len(buf):
                raise RefError(f"{name}: tensor '{tname}' data runs past the end of the file")
        tensor_infos[tname] = (shape, gtype, data_start + offset)
    g = GGUF(version, metadata, tensor_infos, alignment, buf, name)
    g._data_start = data_start
    return g


def read_gguf(path):
    try:
        f = open(path, "rb")
    except OSError as e:
        raise RefError(f"{path}: cannot open: {e.strerror}")
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise RefError(f"{path}: empty file")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return parse_gguf(buf, path)


def write_gguf(metadata_items, tensors, alignment=32, version=3):
    """Minimal GGUF writer for the self-test. metadata_items: [(key, vtype, value)] with
    arrays as (T_ARRAY, (elem_type, [values])); tensors: [(name, float32 array)]."""

    def enc_str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def enc_val(vtype, v):
        if vtype in _SCALAR_FMT:
            return struct.pack(_SCALAR_FMT[vtype], v)
        if vtype == T_STRING:
            return enc_str(v)
        if vtype == T_ARRAY:
            etype, vals = v
            return struct.pack("<IQ", etype, len(vals)) + b"".join(enc_val(etype, x) for x in vals)
        raise ValueError(vtype)

    out = bytearray(GGUF_MAGIC + struct.pack("<IQQ", version, len(tensors), len(metadata_items)))
    for key, vtype, v in metadata_items:
        out += enc_str(key) + struct.pack("<I", vtype) + enc_val(vtype, v)
    offset = 0
    blobs = []
    for tname, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        ne = list(reversed(arr.shape))
        out += enc_str(tname) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        out += struct.pack("<IQ", GGML_F32, offset)
        blobs.append((offset, arr.tobytes()))
        offset += (arr.nbytes + alignment - 1) // alignment * alignment
    out += b"\0" * ((-len(out)) % alignment)
    base = len(out)
    out += b"\0" * offset
    for off, b in blobs:
        out[base + off:base + off + len(b)] = b
    return bytes(out)


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

class Config:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _meta(md, key, default=None, required=True):
    if key in md:
        return md[key]
    if default is not None or not required:
        return default
    raise RefError(f"missing metadata key '{key}'")


def config_from_gguf(g):
    md = g.metadata
    arch = _meta(md, "general.architecture")
    if arch not in ("llama", "qwen2"):
        raise RefError(f"unsupported architecture '{arch}' (llama, qwen2)")
    a = arch + "."
    n_embd = int(_meta(md, a + "embedding_length"))
    n_head = int(_meta(md, a + "attention.head_count"))
    if n_head <= 0 or n_embd <= 0:
        raise RefError("embedding_length and head_count must be positive")
    head_dim = int(_meta(md, a + "attention.key_length", n_embd // n_head))
    if a + "attention.value_length" in md and int(md[a + "attention.value_length"]) != head_dim:
        raise RefError("attention.value_length != attention.key_length is not supported")
    if a + "rope.dimension_count" in md and int(md[a + "rope.dimension_count"]) != head_dim:
        raise RefError(f"partial RoPE (rope.dimension_count {md[a + 'rope.dimension_count']} != "
                       f"head dimension {head_dim}) is not supported")
    scaling = _meta(md, a + "rope.scaling.type", "none")
    if scaling not in ("none", "linear"):
        raise RefError(f"rope scaling type '{scaling}' is not supported (none, linear)")
    linear = float(_meta(md, a + "rope.scaling.factor", 1.0)) if scaling == "linear" else 1.0
    n_head_kv = int(_meta(md, a + "attention.head_count_kv", n_head))
    if n_head_kv <= 0 or n_head % n_head_kv:
        raise RefError(f"head_count {n_head} is not a multiple of head_count_kv {n_head_kv}")
    if head_dim % 2:
        raise RefError(f"head dimension {head_dim} must be even")
    return Config(
        arch=arch,
        n_embd=n_embd,
        n_layer=int(_meta(md, a + "block_count")),
        n_ff=int(_meta(md, a + "feed_forward_length")),
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim=head_dim,
        rms_eps=float(_meta(md, a + "attention.layer_norm_rms_epsilon")),
        rope_base=float(_meta(md, a + "rope.freq_base", 10000.0)),
        rope_linear=linear,
        neox=(arch == "qwen2"),
    )


class Model:
    """Config + a name -> array lookup (float32 views or float64 arrays)."""

    def __init__(self, cfg, get, has):
        self.cfg = cfg
        self._get = get
        self._has = has

    def w(self, name):
        return np.asarray(self._get(name), dtype=np.float64)

    def has(self, name):
        return self._has(name)

    @property
    def n_vocab(self):
        return self._get("token_embd.weight").shape[0]

    def check(self):
        """Shapes of every tensor the forward pass uses (clear errors instead of numpy ones)."""
        c = self.cfg
        D, F, hd = c.n_embd, c.n_ff, c.head_dim
        qd, kvd = c.n_head * hd, c.n_head_kv * hd
        V = self._get("token_embd.weight").shape
        if len(V) != 2 or V[1] != D:
            raise RefError(f"token_embd.weight has shape {V}, expected (n_vocab, {D})")
        want = {"output_norm.weight": (D,)}
        if self.has("output.weight"):
            want["output.weight"] = (V[0], D)
        if self.has("rope_freqs.weight"):
            want["rope_freqs.weight"] = (hd // 2,)
        for l in range(c.n_layer):
            p = f"blk.{l}."
            want.update({p + "attn_norm.weight": (D,), p + "attn_q.weight": (qd, D),
                         p + "attn_k.weight": (kvd, D), p + "attn_v.weight": (kvd, D),
                         p + "attn_output.weight": (D, qd), p + "ffn_norm.weight": (D,),
                         p + "ffn_gate.weight": (F, D), p + "ffn_up.weight": (F, D),
                         p + "ffn_down.weight": (D, F)})
            for t, n in (("q", qd), ("k", kvd), ("v", kvd)):
                if self.has(p + f"attn_{t}.bias"):
                    want[p + f"attn_{t}.bias"] = (n,)
        for name, shape in want.items():
            got = tuple(self._get(name).shape)
            if got != shape:
                raise RefError(f"tensor '{name}' has shape {got}, expected {shape}")


def model_from_gguf(g):
    m = Model(config_from_gguf(g), g.tensor, g.has)
    m.check()
    return m


# ----------------------------------------------------------------------------------------------
# Forward pass (float64)
# ----------------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def rope_angles(cfg, positions, freq_factors):
    """angles[t, i] = pos'_t * base^(-2i/head_dim) / f_i, shape (n, head_dim/2)."""
    half = cfg.head_dim // 2
    i = np.arange(half, dtype=np.float64)
    theta = cfg.rope_base ** (-2.0 * i / cfg.head_dim)
    if freq_factors is not None:
        theta = theta / np.asarray(freq_factors, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64) / cfg.rope_linear
    return pos[:, None] * theta[None, :]


def apply_rope(x, angles, neox):
    """x: (n, heads, head_dim); angles: (n, head_dim/2). Returns the rotated copy."""
    half = x.shape[-1] // 2
    cos = np.cos(angles)[:, None, :]
    sin = np.sin(angles)[:, None, :]
    if neox:
        a, b = x[..., :half], x[..., half:]
    else:
        a, b = x[..., 0::2], x[..., 1::2]
    ra = a * cos - b * sin
    rb = a * sin + b * cos
    out = np.empty_like(x)
    if neox:
        out[..., :half], out[..., half:] = ra, rb
    else:
        out[..., 0::2], out[..., 1::2] = ra, rb
    return out


def attention(q, k, v, n_head, n_head_kv):
    """Causal GQA attention. q: (n, H, hd), k/v: (n, Hkv, hd). Returns (out (n, H*hd),
    probs (H, n, n))."""
    n, _, hd = q.shape
    group = n_head // n_head_kv
    kk = np.repeat(k, group, axis=1)  # query head j uses KV head j // group
    vv = np.repeat(v, group, axis=1)
    scores = np.einsum("thd,shd->hts", q, kk) / math.sqrt(hd)
    mask = np.triu(np.ones((n, n), dtype=bool), k=1)  # s > t is the future
    scores = np.where(mask[None], -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("hts,shd->thd", p, vv)
    return out.reshape(n, n_head * hd), p


def forward(model, tokens, trace=None):
    """Logits (n_tokens, n_vocab) in float64 for the prompt `tokens` at positions 0..n-1.
    trace: optional dict that receives per-layer attention probabilities ("probs", list)."""
    c = model.cfg
    V = model.n_vocab
    tokens = list(tokens)
    if not tokens:
        raise RefError("empty token list")
    for t in tokens:
        if not 0 <= t < V:
            raise RefError(f"token id {t} out of range [0, {V})")
    n = len(tokens)
    emb = model._get("token_embd.weight")
    x = np.asarray(emb[np.array(tokens)], dtype=np.float64)
    freq_factors = model.w("rope_freqs.weight") if model.has("rope_freqs.weight") else None
    angles = rope_angles(c, np.arange(n), freq_factors)
    hd = c.head_dim

    def proj(h, name):
        y = h @ model.w(name + ".weight").T
        if model.has(name + ".bias"):
            y = y + model.w(name + ".bias")
        return y

    for l in range(c.n_layer):
        p = f"blk.{l}."
        h = rms_norm(x, model.w(p + "attn_norm.weight"), c.rms_eps)
        q = proj(h, p + "attn_q").reshape(n, c.n_head, hd)
        k = proj(h, p + "attn_k").reshape(n, c.n_head_kv, hd)
        v = proj(h, p + "attn_v").reshape(n, c.n_head_kv, hd)
        q = apply_rope(q, angles, c.neox)
        k = apply_rope(k, angles, c.neox)
        a, probs = attention(q, k, v, c.n_head, c.n_head_kv)
        if trace is not None:
            trace.setdefault("probs", []).append(probs)
        x = x + a @ model.w(p + "attn_output.weight").T
        h = rms_norm(x, model.w(p + "ffn_norm.weight"), c.rms_eps)
        g = h @ model.w(p + "ffn_gate.weight").T
        u = h @ model.w(p + "ffn_up.weight").T
        x = x + (silu(g) * u) @ model.w(p + "ffn_down.weight").T
    x = rms_norm(x, model.w("output_norm.weight"), c.rms_eps)
    out_name = "output.weight" if model.has("output.weight") else "token_embd.weight"
    return x @ model.w(out_name).T


def write_logits(path, logits):
    arr = np.ascontiguousarray(logits, dtype="<f4")
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(arr.tobytes())
        os.replace(tmp, path)
    except OSError as e:
        raise RefError(f"{path}: cannot write: {e.strerror}")


# ----------------------------------------------------------------------------------------------
# Self-test
# ----------------------------------------------------------------------------------------------

def _random_model(arch, tied, bias, rope_freqs=False, linear=1.0, seed=0):
    rng = np.random.default_rng(seed)
    D, L, H, Hkv, hd, F, V = 32, 2, 4, 2, 8, 48, 50
    t = {"token_embd.weight": rng.standard_normal((V, D)),
         "output_norm.weight": 1 + 0.1 * rng.standard_normal(D)}
    if not tied:
        t["output.weight"] = rng.standard_normal((V, D)) / math.sqrt(D)
    if rope_freqs:
        t["rope_freqs.weight"] = 1 + rng.random(hd // 2) * 7
    for l in range(L):
        p = f"blk.{l}."
        t[p + "attn_norm.weight"] = 1 + 0.1 * rng.standard_normal(D)
        t[p + "ffn_norm.weight"] = 1 + 0.1 * rng.standard_normal(D)
        for name, shape in (("attn_q", (H * hd, D)), ("attn_k", (Hkv * hd, D)), ("attn_v", (Hkv * hd, D)),
                            ("attn_output", (D, H * hd)), ("ffn_gate", (F, D)), ("ffn_up", (F, D)),
                            ("ffn_down", (D, F))):
            t[p + name + ".weight"] = rng.standard_normal(shape) / math.sqrt(shape[1])
        if bias:
            for name, nout in (("attn_q", H * hd), ("attn_k", Hkv * hd), ("attn_v", Hkv * hd)):
                t[p + name + ".bias"] = 0.1 * rng.standard_normal(nout)
    cfg = Config(arch=arch, n_embd=D, n_layer=L, n_ff=F, n_head=H, n_head_kv=Hkv, head_dim=hd,
                 rms_eps=2.0 ** -17, rope_base=10000.0, rope_linear=linear, neox=(arch == "qwen2"))
    t = {k: v.astype(np.float32) for k, v in t.items()}
    return Model(cfg, t.__getitem__, t.__contains__), t


def _check(cond, what):
    if not cond:
        raise AssertionError(what)


def self_test():
    checks = 0

    # 1. GGUF round trip through an independent writer, every metadata value type.
    md = [("general.architecture", T_STRING, "llama"), ("general.alignment", T_U32, 64),
          ("k.u8", T_U8, 200), ("k.i8", T_I8, -5), ("k.u16", T_U16, 60000), ("k.i16", T_I16, -300),
          ("k.u32", T_U32, 4000000000), ("k.i32", T_I32, -7), ("k.f32", T_F32, 0.5),
          ("k.bool", T_BOOL, True), ("k.u64", T_U64, 2 ** 40), ("k.i64", T_I64, -2 ** 40),
          ("k.f64", T_F64, 0.125), ("k.str", T_STRING, "h\u00e9"),
          ("k.arr", T_ARRAY, (T_I32, [1, -2, 3])), ("k.sarr", T_ARRAY, (T_STRING, ["a", "bc"])),
          ("k.nested", T_ARRAY, (T_ARRAY, [(T_U8, [1, 2]), (T_U8, [])])), ("k.empty", T_ARRAY, (T_F32, []))]
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1.5, -2.5], dtype=np.float32)
    g = parse_gguf(write_gguf(md, [("a", a), ("b", b)], alignment=64), "selftest.gguf")
    want = {"k.u8": 200, "k.i8": -5, "k.u16": 60000, "k.i16": -300, "k.u32": 4000000000, "k.i32": -7,
            "k.f32": 0.5, "k.bool": True, "k.u64": 2 ** 40, "k.i64": -2 ** 40, "k.f64": 0.125,
            "k.str": "h\u00e9", "k.arr": [1, -2, 3], "k.sarr": ["a", "bc"], "k.nested": [[1, 2], []],
            "k.empty": []}
    for k, v in want.items():
        _check(g.metadata[k] == v, f"metadata {k}: {g.metadata[k]!r} != {v!r}")
    _check(g.alignment == 64 and g._data_start % 64 == 0, "alignment")
    _check(np.array_equal(g.tensor("a"), a) and g.tensor("a").shape == (2, 3), "tensor a (ne reversed)")
    _check(np.array_equal(g.tensor("b"), b), "tensor b")
    for bad, what in ((b"GGUX" + b"\0" * 20, "bad magic"), (write_gguf(md, [("a", a)], alignment=64)[:-50], "truncated"),
                      (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "version")):
        try:
            parse_gguf(bad, "bad.gguf")
            raise AssertionError(f"parser accepted {what}")
        except RefError:
            pass
    try:
        g2 = parse_gguf(write_gguf(md, [("a", a)], alignment=64), "q.gguf")
        g2.tensor_infos["a"] = (g2.tensor_infos["a"][0], 8, g2.tensor_infos["a"][2])
        g2.tensor("a")
        raise AssertionError("non-F32 tensor accepted")
    except RefError as e:
        _check("Q8_0" in str(e) and "F32" in str(e), f"non-F32 message: {e}")
    checks += 1

    # 2. RoPE: identity at position 0, norm preserving, the two pairings are permutations of
    #    each other, relative-position property q(m).k(n) depends only on m-n.
    m, _ = _random_model("llama", tied=False, bias=False)
    c = m.cfg
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3, c.head_dim))
    ang = rope_angles(c, np.arange(5), None)
    for neox in (False, True):
        r = apply_rope(x, ang, neox)
        _check(np.allclose(r[0], x[0], atol=0, rtol=0), "rope at pos 0 is identity")
        _check(np.allclose(np.linalg.norm(r, axis=-1), np.linalg.norm(x, axis=-1)), "rope preserves norms")
    half = c.head_dim // 2
    perm = np.concatenate([np.arange(0, c.head_dim, 2), np.arange(1, c.head_dim, 2)])  # adjacent -> neox
    _check(np.allclose(apply_rope(x, ang, False)[..., perm], apply_rope(x[..., perm], ang, True)),
           "adjacent and neox pairings agree up to the permutation")
    qv, kv = rng.standard_normal((1, 1, c.head_dim)), rng.standard_normal((1, 1, c.head_dim))

    def dot_at(mp, npos):
        aq = rope_angles(c, [mp], None)
        ak = rope_angles(c, [npos], None)
        return float(np.sum(apply_rope(qv, aq, False) * apply_rope(kv, ak, False)))
    _check(abs(dot_at(7, 3) - dot_at(104, 100)) < 1e-9, "rope relative position")
    # Explicit values: dims (0, 1) at pos 1 rotate by angle 1 (theta_0 = 1).
    e = np.zeros((2, 1, c.head_dim)); e[:, 0, 0] = 1.0
    r = apply_rope(e, rope_angles(c, [0, 1], None), False)
    _check(np.allclose(r[1, 0, :2], [math.cos(1), math.sin(1)]), "rope adjacent explicit values")
    r = apply_rope(e, rope_angles(c, [0, 1], None), True)
    _check(np.allclose([r[1, 0, 0], r[1, 0, half]], [math.cos(1), math.sin(1)]), "rope neox explicit values")
    # Frequency factors and linear scaling divide the angle.
    ff = np.full(half, 4.0)
    _check(np.allclose(rope_angles(c, [8], ff), rope_angles(c, [2], None)), "rope freq factors")
    c_lin = Config(**{**c.__dict__, "rope_linear": 4.0})
    _check(np.allclose(rope_angles(c_lin, [8], None), rope_angles(c, [2], None)), "rope linear scaling")
    checks += 1

    # 3. Attention rows sum to 1, are causal, and GQA maps query heads to KV heads in groups.
    q = rng.standard_normal((6, 4, 8)); k = rng.standard_normal((6, 2, 8)); v = rng.standard_normal((6, 2, 8))
    out, p = attention(q, k, v, 4, 2)
    _check(np.allclose(p.sum(-1), 1.0), "attention rows sum to 1")
    _check(np.all(p[:, np.triu_indices(6, 1)[0], np.triu_indices(6, 1)[1]] == 0), "attention is causal")
    # Head 3 (group 1) at t=0 attends only to itself: output = v[0, kv head 1].
    _check(np.allclose(out.reshape(6, 4, 8)[0, 3], v[0, 1]), "GQA head mapping")
    _check(np.allclose(out.reshape(6, 4, 8)[0, 1], v[0, 0]), "GQA head mapping (group 0)")
    checks += 1

    # 4. Whole-model checks for each variant.
    for arch, tied, bias, rf, lin in (("llama", False, False, False, 1.0), ("qwen2", True, True, False, 1.0),
                                      ("llama", False, False, True, 1.0), ("llama", True, False, False, 2.0)):
        m, t = _random_model(arch, tied, bias, rope_freqs=rf, linear=lin, seed=3)
        c = m.cfg
        toks = [3, 17, 0, 42, 8, 8, 25]
        tr = {}
        full = forward(m, toks, tr)
        _check(full.shape == (len(toks), m.n_vocab), "logits shape")
        for pr in tr["probs"]:
            _check(np.allclose(pr.sum(-1), 1.0), "attention rows sum to 1 (model)")
        # Causality: a prefix's logits do not depend on later tokens.
        _check(np.allclose(forward(m, toks[:4]), full[:4], rtol=1e-12, atol=1e-12), "causal prefix")

        # 1-token prompt by hand: attention over one position returns V (RoPE at 0 is identity,
        # softmax of one score is 1), so no Q/K/RoPE is involved.
        T = {k_: v_.astype(np.float64) for k_, v_ in t.items()}
        tok = toks[1]
        h = T["token_embd.weight"][tok].copy()
        for l in range(c.n_layer):
            pf = f"blk.{l}."
            y = h / math.sqrt(np.mean(h ** 2) + c.rms_eps) * T[pf + "attn_norm.weight"]
            vv = T[pf + "attn_v.weight"] @ y + (T[pf + "attn_v.bias"] if bias else 0)
            heads = [vv[(j // (c.n_head // c.n_head_kv)) * c.head_dim:][:c.head_dim] for j in range(c.n_head)]
            h = h + T[pf + "attn_output.weight"] @ np.concatenate(heads)
            y = h / math.sqrt(np.mean(h ** 2) + c.rms_eps) * T[pf + "ffn_norm.weight"]
            gg = T[pf + "ffn_gate.weight"] @ y
            h = h + T[pf + "ffn_down.weight"] @ (gg / (1 + np.exp(-gg)) * (T[pf + "ffn_up.weight"] @ y))
        y = h / math.sqrt(np.mean(h ** 2) + c.rms_eps) * T["output_norm.weight"]
        manual = (T["token_embd.weight"] if tied else T["output.weight"]) @ y
        one = forward(m, [tok])[0]
        _check(np.allclose(one, manual, rtol=1e-12, atol=1e-12), f"1-token logits ({arch})")

        # 2-token prompt, second row by hand for the attention part of layer 0 (RoPE at pos 1).
        x0 = T["token_embd.weight"][[toks[0], toks[1]]]
        pf = "blk.0."
        y = x0 / np.sqrt(np.mean(x0 ** 2, axis=1, keepdims=True) + c.rms_eps) * T[pf + "attn_norm.weight"]
        qq = y @ T[pf + "attn_q.weight"].T + (T[pf + "attn_q.bias"] if bias else 0)
        kk = y @ T[pf + "attn_k.weight"].T + (T[pf + "attn_k.bias"] if bias else 0)
        vv = y @ T[pf + "attn_v.weight"].T + (T[pf + "attn_v.bias"] if bias else 0)
        ff_ = T["rope_freqs.weight"] if rf else np.ones(c.head_dim // 2)

        def rot(vec, pos):
            o = vec.copy()
            for i in range(c.head_dim // 2):
                th = (pos / c.rope_linear) * c.rope_base ** (-2.0 * i / c.head_dim) / ff_[i]
                i0, i1 = (i, i + c.head_dim // 2) if c.neox else (2 * i, 2 * i + 1)
                o[i0] = vec[i0] * math.cos(th) - vec[i1] * math.sin(th)
                o[i1] = vec[i0] * math.sin(th) + vec[i1] * math.cos(th)
            return o
        tr2 = {}
        forward(m, toks[:2], tr2)
        for j in range(c.n_head):
            kvh = j // (c.n_head // c.n_head_kv)
            qj = rot(qq[1, j * c.head_dim:(j + 1) * c.head_dim], 1)
            s = [float(qj @ rot(kk[s_, kvh * c.head_dim:(kvh + 1) * c.head_dim], s_)) / math.sqrt(c.head_dim)
                 for s_ in range(2)]
            e_ = np.exp(np.array(s) - max(s))
            _check(np.allclose(tr2["probs"][0][j, 1], e_ / e_.sum(), rtol=1e-12, atol=1e-14),
                   f"2-token attention probabilities by hand ({arch}, head {j})")
        checks += 1

    # 5. A model through the GGUF writer + parser gives the same logits as from memory.
    m, t = _random_model("qwen2", tied=True, bias=True, seed=5)
    c = m.cfg
    md = [("general.architecture", T_STRING, "qwen2"), ("qwen2.embedding_length", T_U32, c.n_embd),
          ("qwen2.block_count", T_U32, c.n_layer), ("qwen2.feed_forward_length", T_U32, c.n_ff),
          ("qwen2.attention.head_count", T_U32, c.n_head), ("qwen2.attention.head_count_kv", T_U32, c.n_head_kv),
          ("qwen2.attention.layer_norm_rms_epsilon", T_F32, c.rms_eps), ("qwen2.rope.freq_base", T_F32, c.rope_base)]
    g = parse_gguf(write_gguf(md, list(t.items())), "model.gguf")
    m2 = model_from_gguf(g)
    _check(m2.cfg.head_dim == c.head_dim and m2.cfg.neox, "config from GGUF")
    toks = [1, 2, 3, 4]
    _check(np.array_equal(forward(m2, toks), forward(m, toks)), "GGUF model = in-memory model")
    try:
        forward(m2, [c.n_embd * 1000])
        raise AssertionError("out-of-range token accepted")
    except RefError:
        pass
    checks += 1
    return checks


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def parse_tokens(s):
    try:
        toks = [int(x) for x in s.split(",") if x.strip() != ""]
    except ValueError:
        raise RefError(f"--tokens must be comma-separated integers, got '{s}'")
    if not toks:
        raise RefError("--tokens is empty")
    return toks


def main(argv):
    ap = argparse.ArgumentParser(prog="forward_ref.py",
                                 description="NumPy float64 reference forward pass for GGUF llama/qwen2 (F32) models.")
    ap.add_argument("model", nargs="?", help="GGUF file (F32 tensors)")
    ap.add_argument("--tokens", help="comma-separated token ids, e.g. 1,5,9")
    ap.add_argument("--out", help="output file: float32 LE logits [n_tokens, n_vocab]")
    ap.add_argument("--self-test", action="store_true", help="run the internal checks")
    args = ap.parse_args(argv)
    try:
        if args.self_test:
            n = self_test()
            print(f"self-test: OK ({n} groups of checks)")
            if args.model is None:
                return 0
        if args.model is None or args.tokens is None or args.out is None:
            raise RefError("usage: forward_ref.py MODEL.gguf --tokens 1,5,9 --out logits.bin (or --self-test)")
        toks = parse_tokens(args.tokens)
        model = model_from_gguf(read_gguf(args.model))
        logits = forward(model, toks)
        if not np.all(np.isfinite(logits)):
            raise RefError("non-finite logits")
        write_logits(args.out, logits)
        return 0
    except RefError as e:
        print(f"forward_ref.py: error: {e}", file=sys.stderr)
        return 1
    except AssertionError as e:
        print(f"forward_ref.py: self-test FAILED: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
