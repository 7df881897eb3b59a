#include "formats/llama2c.h"

#include <cstring>

#include "base/error.h"

namespace cc {

namespace {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42" as little-endian int

void check_config(const Llama2cConfig& c, const std::string& name) {
  auto bad = [&](const char* what, int64_t v) {
    fail(name, ": llama2.c header: ", what, " = ", v, " is invalid");
  };
  if (c.dim <= 0 || c.dim > (1 << 16)) bad("dim", c.dim);
  if (c.hidden_dim <= 0 || c.hidden_dim > (1 << 18)) bad("hidden_dim", c.hidden_dim);
  if (c.n_layers <= 0 || c.n_layers > 512) bad("n_layers", c.n_layers);
  if (c.n_heads <= 0 || c.dim % c.n_heads != 0) bad("n_heads (must divide dim)", c.n_heads);
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0) bad("n_kv_heads (must divide n_heads)", c.n_kv_heads);
  if (c.vocab_size <= 0 || c.vocab_size > (1 << 22)) bad("vocab_size", c.vocab_size);
  if (c.seq_len <= 0 || c.seq_len > (1 << 22)) bad("seq_len", c.seq_len);
  if ((c.dim / c.n_heads) % 2 != 0) bad("head size (must be even)", c.dim / c.n_heads);
}

}  // namespace

bool llama2c_sniff(const uint8_t* data, size_t size) {
  if (size < 28) return false;
  uint32_t magic;
  std::memcpy(&magic, data, 4);
  if (magic == kMagicV1) return true;
  int32_t h[7];
  std::memcpy(h, data, sizeof h);
  for (int i = 0; i < 7; ++i) {
    if (i == 5) continue;  // vocab_size may be negative
    if (h[i] <= 0) return false;
  }
  if (h[5] == 0) return false;
  return h[0] % h[3] == 0 && h[3] % h[4] == 0 && h[0] <= (1 << 16) && h[2] <= 512;
}

Llama2cFile llama2c_parse(const uint8_t* data, size_t size, const std::string& name) {
  Llama2cFile f;
  Llama2cConfig& c = f.config;
  ByteReader r(data, size, name);
  uint32_t magic = size >= 4 ? r.read<uint32_t>("magic") : 0;
  size_t header_bytes;
  if (magic == kMagicV1) {
    int32_t version = r.read<int32_t>("version");
    if (version != 1) {
      fail(name, ": llama2.c export version ", version, " is not supported (legacy v0 and v1 fp32 only)");
    }
    c.version = 1;
    header_bytes = 256;
  } else {
    r.seek(0, "header");
    header_bytes = 28;
  }
  c.dim = r.read<int32_t>("dim");
  c.hidden_dim = r.read<int32_t>("hidden_dim");
  c.n_layers = r.read<int32_t>("n_layers");
  c.n_heads = r.read<int32_t>("n_heads");
  c.n_kv_heads = r.read<int32_t>("n_kv_heads");
  c.vocab_size = r.read<int32_t>("vocab_size");
  c.seq_len = r.read<int32_t>("seq_len");
  if (c.version == 1) {
    c.shared_classifier = r.read<uint8_t>("shared_classifier") != 0;
  } else {
    c.shared_classifier = c.vocab_size > 0;
    if (c.vocab_size < 0) {
      const int64_t v = -static_cast<int64_t>(c.vocab_size);  // INT32_MIN must not overflow
      if (v > (1 << 22)) fail(name, ": llama2.c header: vocab_size = ", c.vocab_size, " is invalid");
      c.vocab_size = static_cast<int32_t>(v);
    }
  }
  check_config(c, name);
  r.seek(header_bytes, "tensor data");

  const int64_t D = c.dim, H = c.hidden_dim, L = c.n_layers, V = c.vocab_size;
  const int64_t hs = D / c.n_heads, kvd = hs * c.n_kv_heads;
  // Walk the fp32 arrays in file order; each stacked [L, ...] array is cut into per-layer views.
  auto take = [&](const char* what, int64_t elems) {
    size_t nb = static_cast<size_t>(elems) * 4;
    if (nb > r.remaining()) {
      fail(name, ": truncated: the llama2.c config (dim ", D, ", layers ", L, ", vocab ", V,
           ") needs tensor ", what, " of ", nb, " bytes at offset ", r.offset(), " but only ",
           r.remaining(), " bytes remain");
    }
    return r.take(nb, what);
  };
  auto add = [&](std::string nm, std::vector<int64_t> shape, const uint8_t* p) {
    size_t n = 4;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    f.tensors.push_back({std::move(nm), std::move(shape), p, n});
  };
  auto stacked = [&](const char* what, const char* gname, std::vector<int64_t> shape) {
    int64_t per = 1;
    for (int64_t d : shape) per *= d;
    const uint8_t* p = take(what, per * L);
    for (int64_t l = 0; l < L; ++l) add(cat("blk.", l, ".", gname, ".weight"), shape, p + l * per * 4);
  };
  if (c.version == 0) {
    add("token_embd.weight", {V, D}, take("token_embedding", V * D));
    stacked("rms_att", "attn_norm", {D});
    stacked("wq", "attn_q", {D, D});
    stacked("wk", "attn_k", {kvd, D});
    stacked("wv", "attn_v", {kvd, D});
    stacked("wo", "attn_output", {D, D});
    stacked("rms_ffn", "ffn_norm", {D});
    stacked("w1", "ffn_gate", {H, D});
    stacked("w2", "ffn_down", {D, H});
    stacked("w3", "ffn_up", {H, D});
    add("output_norm.weight", {D}, take("rms_final", D));
    take("freq_cis_real", c.seq_len * hs / 2);
    take("freq_cis_imag", c.seq_len * hs / 2);
  } else {
    stacked("attention_norm", "attn_norm", {D});
    stacked("ffn_norm", "ffn_norm", {D});
    add("output_norm.weight", {D}, take("norm", D));
    add("token_embd.weight", {V, D}, take("tok_embeddings", V * D));
    stacked("wq", "attn_q", {D, D});
    stacked("wk", "attn_k", {kvd, D});
    stacked("wv", "attn_v", {kvd, D});
    stacked("wo", "attn_output", {D, D});
    stacked("w1", "ffn_gate", {H, D});
    stacked("w2", "ffn_down", {D, H});
    stacked("w3", "ffn_up", {H, D});
  }
  if (!c.shared_classifier) add("output.weight", {V, D}, take("wcls", V * D));
  if (r.remaining() != 0) {
    fail(name, ": ", r.remaining(), " unexpected bytes after the last tensor; the header (dim ", D,
         ", layers ", L, ", vocab ", V, ") does not describe this file");
  }
  return f;
}

Llama2cFile llama2c_read(const std::string& path) {
  auto m = MappedFile::open(path);
  Llama2cFile f = llama2c_parse(m->data(), m->size(), path);
  f.file = std::move(m);
  return f;
}

}  // namespace cc
