#include "infer/transformer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "base/error.h"

namespace cc {

void KVCache::clear() {
  std::fill(slot_pos.begin(), slot_pos.end(), -1);
  n_used = 0;
}

namespace {

WeightView view_of(const Tensor& t) {
  WeightView v;
  v.type = t.type;
  v.data = t.data;
  v.rows = t.rows();
  v.cols = t.cols();
  return v;
}

// Rows per prefill micro-batch: CACHECLIP_UBATCH or 512.
int64_t pick_ubatch() {
  if (const char* e = std::getenv("CACHECLIP_UBATCH"); e && *e) {
    char* end = nullptr;
    const long v = std::strtol(e, &end, 10);
    if (*end != '\0' || v < 1 || v > 65536) fail("CACHECLIP_UBATCH must be a row count in 1..65536, not '", e, "'");
    return v;
  }
  return 512;
}
}  // namespace

Transformer::Transformer(const Model& m, Backend& be) : model_(m), be_(be) {
  const ModelConfig& c = m.config;
  ubatch_ = pick_ubatch();
  auto load = [&](const std::string& name) { return be_.load_weight(view_of(m.tensor(name))); };
  auto load_opt = [&](const std::string& name) -> std::unique_ptr<DeviceWeight> {
    const Tensor* t = m.find(name);
    return t ? be_.load_weight(view_of(*t)) : nullptr;
  };
  embd_ = load("token_embd.weight");
  out_norm_ = load("output_norm.weight");
  output_ = c.tied_embeddings ? load("token_embd.weight") : load("output.weight");
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = cat("blk.", l, ".");
    Layer L;
    L.attn_norm = load(p + "attn_norm.weight");
    L.wq = load(p + "attn_q.weight");
    L.wk = load(p + "attn_k.weight");
    L.wv = load(p + "attn_v.weight");
    L.bq = load_opt(p + "attn_q.bias");
    L.bk = load_opt(p + "attn_k.bias");
    L.bv = load_opt(p + "attn_v.bias");
    L.wo = load(p + "attn_output.weight");
    L.ffn_norm = load(p + "ffn_norm.weight");
    L.gate = load(p + "ffn_gate.weight");
    L.up = load(p + "ffn_up.weight");
    L.down = load(p + "ffn_down.weight");
    layers_.push_back(std::move(L));
  }
  // RoPE frequencies in float, as llama.cpp and llama2.c compute them.
  rope_.head_dim = c.head_dim;
  rope_.mode = c.rope_pairing == RopePairing::Adjacent ? RopeMode::Adjacent : RopeMode::NeoX;
  const std::vector<float> factors = c.rope_freq_factors();
  const float linear = c.rope_scaling.type == RopeScalingType::Linear ? c.rope_scaling.factor : 1.0f;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    float f = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(c.head_dim));
    if (!factors.empty()) f /= factors[static_cast<size_t>(i)];
    rope_.inv_freq.push_back(f / linear);
  }
}

void Transformer::warn_past_trained_context(int64_t n_positions) const {
  const int64_t trained = model_.config.n_ctx_train;
  if (trained <= 0 || n_positions <= trained) return;
  if (!warned_ctx_.exchange(true)) {
    std::fprintf(stderr,
                 "cacheclip: warning: this request runs to %lld positions, past the %lld the model was trained on "
                 "(%s); its output degrades there\n",
                 static_cast<long long>(n_positions), static_cast<long long>(trained), model_.path.c_str());
  }
}

KVCache Transformer::make_cache(int64_t n_slots, DType type) const {
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16) {
    fail("KV cache type must be f32, f16 or bf16, not ", dtype_name(type));
  }
  if (n_slots <= 0 || n_slots > (int64_t{1} << 24)) fail("KV cache size must be in 1..16777216 tokens, got ", n_slots);
  const ModelConfig& c = model_.config;
  KVCache kv;
  kv.type = type;
  kv.n_slots = n_slots;
  kv.kv_dim = c.n_head_kv * c.head_dim;
  const size_t bytes = dtype_row_bytes(type, kv.kv_dim) * static_cast<size_t>(n_slots);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    kv.k.push_back(be_.alloc(bytes));
    kv.v.push_back(be_.alloc(bytes));
  }
  kv.slot_pos.assign(static_cast<size_t>(n_slots), -1);
  return kv;
}

std::vector<float> Transformer::forward(std::span<const int32_t> tokens, std::span<const int64_t> pos,
                                        std::span<const int64_t> slot, KVCache& kv, int64_t n_attend,
                                        std::span<const int64_t> logit_rows) {
  const ModelConfig& c = model_.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (pos.size() != tokens.size() || slot.size() != tokens.size()) {
    fail("forward: ", tokens.size(), " tokens but ", pos.size(), " positions and ", slot.size(), " slots");
  }
  if (n == 0) return {};
  check_rows(pos, slot, kv, n_attend);
  std::vector<bool> used(static_cast<size_t>(kv.n_slots), false);
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab) {
      fail("token id ", tokens[i], " is out of range for a vocabulary of ", c.n_vocab);
    }
    if (used[static_cast<size_t>(slot[i])]) fail("forward: two rows of one call write slot ", slot[i]);
    used[static_cast<size_t>(slot[i])] = true;
  }
  for (int64_t r : logit_rows) {
    if (r < 0 || r >= n) fail("forward: logits requested for row ", r, " of ", n);
  }
  // Every row's slot takes its position now, before any micro-batch runs: a slot written by a
  // later micro-batch then holds a position beyond every earlier row's and stays masked.
  for (int64_t i = 0; i < n; ++i) kv.slot_pos[static_cast<size_t>(slot[i])] = pos[i];
  // Rows in increasing position order can run in micro-batches: a row only sees positions
  // <= its own, which earlier micro-batches have already written, layer by layer.
  bool increasing = true;
  for (int64_t i = 1; i < n; ++i) increasing &= pos[i] > pos[i - 1];
  if (n > ubatch_ && increasing) {
    std::vector<float> logits(logit_rows.size() * static_cast<size_t>(c.n_vocab));
    for (int64_t b0 = 0; b0 < n; b0 += ubatch_) {
      const int64_t bn = std::min(ubatch_, n - b0);
      std::vector<int64_t> rows;
      std::vector<size_t> where;  // index into logit_rows of each requested row in this batch
      for (size_t k = 0; k < logit_rows.size(); ++k) {
        if (logit_rows[k] >= b0 && logit_rows[k] < b0 + bn) {
          rows.push_back(logit_rows[k] - b0);
          where.push_back(k);
        }
      }
      std::vector<float> part = forward_batch(tokens.subspan(b0, bn), pos.subspan(b0, bn), slot.subspan(b0, bn), kv,
                                              n_attend, rows);
      for (size_t k = 0; k < where.size(); ++k) {
        std::copy_n(part.begin() + static_cast<int64_t>(k) * c.n_vocab, c.n_vocab,
                    logits.begin() + static_cast<int64_t>(where[k]) * c.n_vocab);
      }
    }
    return logits;
  }
  return forward_batch(tokens, pos, slot, kv, n_attend, logit_rows);
}

std::vector<float> Transformer::forward_batch(std::span<const int32_t> tokens, std::span<const int64_t> pos,
                                              std::span<const int64_t> slot, KVCache& kv, int64_t n_attend,
                                              std::span<const int64_t> logit_rows) {
  auto x = embed(tokens);
  for (int64_t l = 0; l < model_.config.n_layer; ++l) run_layer(l, *x, pos, slot, kv, n_attend);
  return logits(*x, logit_rows);
}

Transformer::Workspace& Transformer::workspace(int64_t n, bool ape) {
  const ModelConfig& c = model_.config;
  const int64_t D = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  auto buf = [&](int64_t elems) { return be_.alloc(static_cast<size_t>(elems) * 4); };
  if (n > ws_.rows) {
    ws_.rows = n;
    ws_.xn = buf(n * D);
    ws_.q = buf(n * qd);
    ws_.k = buf(n * kvd);
    ws_.v = buf(n * kvd);
    ws_.att = buf(n * qd);
    ws_.att2.reset();
    ws_.lse.reset();
    ws_.lse2.reset();
  }
  if (ape && !ws_.att2) {
    ws_.att2 = buf(ws_.rows * qd);
    ws_.lse = buf(ws_.rows * c.n_head);
    ws_.lse2 = buf(ws_.rows * c.n_head);
  }
  return ws_;
}

std::unique_ptr<DeviceBuffer> Transformer::embed(std::span<const int32_t> tokens) {
  const ModelConfig& c = model_.config;
  for (int32_t t : tokens) {
    if (t < 0 || t >= c.n_vocab) fail("token id ", t, " is out of range for a vocabulary of ", c.n_vocab);
  }
  auto x = be_.alloc(std::max<size_t>(tokens.size(), 1) * static_cast<size_t>(c.n_embd) * 4);
  if (!tokens.empty()) be_.get_rows(*embd_, tokens, *x);
  return x;
}

void Transformer::check_rows(std::span<const int64_t> pos, std::span<const int64_t> slot, const KVCache& kv,
                             int64_t n_attend) const {
  if (pos.size() != slot.size()) fail("forward: ", pos.size(), " positions but ", slot.size(), " slots");
  if (n_attend < 0 || n_attend > kv.n_slots) fail("forward: attention span ", n_attend, " exceeds the cache of ", kv.n_slots);
  for (size_t i = 0; i < pos.size(); ++i) {
    if (slot[i] < 0 || slot[i] >= kv.n_slots) {
      fail("KV cache slot ", slot[i], " is outside the cache of ", kv.n_slots, " slots (context full?)");
    }
    if (slot[i] >= n_attend) {
      fail("forward: row ", i, " writes slot ", slot[i], " outside the attention span ", n_attend, " (it could not see itself)");
    }
    if (pos[i] < 0) fail("negative position ", pos[i]);
  }
}

void Transformer::run_layer(int64_t l, DeviceBuffer& x, std::span<const int64_t> pos, std::span<const int64_t> slot,
                            KVCache& kv, int64_t n_attend, const LayerHooks& hooks) {
  const ModelConfig& c = model_.config;
  const int64_t n = static_cast<int64_t>(pos.size());
  if (l < 0 || l >= c.n_layer) fail("run_layer: layer ", l, " of a ", c.n_layer, "-layer model");
  check_rows(pos, slot, kv, n_attend);
  if (n == 0) return;
  const int64_t D = c.n_embd, H = c.n_head, KV = c.n_head_kv, hd = c.head_dim;
  const int64_t qd = H * hd, kvd = KV * hd;
  CC_ASSERT(x.bytes() >= static_cast<size_t>(n * D) * 4);
  // Long calls whose rows increase in position run in micro-batches (exact: a row only sees
  // positions <= its own, written by earlier micro-batches of this same layer).
  bool increasing = true;
  for (int64_t i = 1; i < n; ++i) increasing &= pos[i] > pos[i - 1];
  if (n > ubatch_ && increasing) {
    auto part = be_.alloc(static_cast<size_t>(ubatch_ * D) * 4);
    std::vector<float> pq, pk, pv;
    LayerHooks sub = hooks;
    sub.q_out = hooks.q_out ? &pq : nullptr;
    sub.k_out = hooks.k_out ? &pk : nullptr;
    sub.v_out = hooks.v_out ? &pv : nullptr;
    for (auto* h : {hooks.q_out, hooks.k_out, hooks.v_out}) {
      if (h) h->clear();
    }
    for (int64_t b0 = 0; b0 < n; b0 += ubatch_) {
      const int64_t bn = std::min(ubatch_, n - b0);
      be_.copy_rows(x, b0, *part, 0, bn, static_cast<size_t>(D) * 4);
      run_layer(l, *part, pos.subspan(b0, bn), slot.subspan(b0, bn), kv, n_attend, sub);
      be_.copy_rows(*part, 0, x, b0, bn, static_cast<size_t>(D) * 4);
      if (hooks.q_out) hooks.q_out->insert(hooks.q_out->end(), pq.begin(), pq.end());
      if (hooks.k_out) hooks.k_out->insert(hooks.k_out->end(), pk.begin(), pk.end());
      if (hooks.v_out) hooks.v_out->insert(hooks.v_out->end(), pv.begin(), pv.end());
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) kv.slot_pos[static_cast<size_t>(slot[i])] = pos[i];
  Workspace& w = workspace(n, hooks.ape != nullptr);
  const Layer& L = layers_[static_cast<size_t>(l)];
  auto fetch = [&](std::vector<float>* dst, const DeviceBuffer& b, int64_t width) {
    if (!dst) return;
    dst->resize(static_cast<size_t>(n * width));
    be_.download(b, 0, dst->data(), dst->size() * 4);
  };
  DeviceBuffer& kc = *kv.k[static_cast<size_t>(l)];
  DeviceBuffer& vc = *kv.v[static_cast<size_t>(l)];
  be_.rms_norm(x, *L.attn_norm, *w.xn, n, D, c.rms_eps);
  be_.matmul(*L.wq, L.bq.get(), *w.xn, *w.q, n);
  be_.matmul(*L.wk, L.bk.get(), *w.xn, *w.k, n);
  be_.matmul(*L.wv, L.bv.get(), *w.xn, *w.v, n);
  fetch(hooks.k_out, *w.k, kvd);
  fetch(hooks.v_out, *w.v, kvd);
  be_.rope(*w.q, n, H, pos, rope_);
  be_.rope(*w.k, n, KV, pos, rope_);
  fetch(hooks.q_out, *w.q, qd);
  be_.kv_store(kc, vc, kv.type, *w.k, *w.v, slot, kvd);
  std::span<const int64_t> slot_pos(kv.slot_pos.data(), static_cast<size_t>(n_attend));
  if (!hooks.ape) {
    be_.attention(*w.q, kc, vc, kv.type, pos, slot_pos, *w.att, n, H, KV, hd);
  } else {
    const ApeAttention& ape = *hooks.ape;
    if (static_cast<int64_t>(ape.in_context.size()) < n_attend) fail("APE: context mask shorter than the attention span");
    ape_pos_ctx_.assign(static_cast<size_t>(n_attend), -1);
    ape_pos_rest_.assign(static_cast<size_t>(n_attend), -1);
    for (int64_t s = 0; s < n_attend; ++s) {
      const int64_t p = kv.slot_pos[static_cast<size_t>(s)];
      if (p < 0) continue;
      if (ape.in_context[static_cast<size_t>(s)]) ape_pos_ctx_[static_cast<size_t>(s)] = 0;  // no causal limit
      else ape_pos_rest_[static_cast<size_t>(s)] = p;
    }
    const float base = 1.0f / std::sqrt(static_cast<float>(hd));
    be_.attention(*w.q, kc, vc, kv.type, pos, ape_pos_ctx_, *w.att, n, H, KV, hd, base / ape.temperature, w.lse.get());
    be_.attention(*w.q, kc, vc, kv.type, pos, ape_pos_rest_, *w.att2, n, H, KV, hd, base, w.lse2.get());
    be_.merge_attention(*w.att, *w.lse, ape.scale * ape.temperature, *w.att2, *w.lse2, 1.0f, *w.att, n * H, hd);
  }
  be_.matmul(*L.wo, nullptr, *w.att, *w.xn, n);
  be_.add(*w.xn, x, n * D);
  be_.rms_norm(x, *L.ffn_norm, *w.xn, n, D, c.rms_eps);
  be_.ffn(*L.gate, *L.up, *L.down, *w.xn, x, n);
}

std::vector<float> Transformer::logits(const DeviceBuffer& x, std::span<const int64_t> logit_rows) {
  const ModelConfig& c = model_.config;
  const int64_t D = c.n_embd;
  std::vector<float> out;
  if (logit_rows.empty()) return out;
  const int64_t r = static_cast<int64_t>(logit_rows.size());
  auto sel = be_.alloc(static_cast<size_t>(r * D) * 4), lg = be_.alloc(static_cast<size_t>(r * c.n_vocab) * 4);
  for (int64_t j = 0; j < r; ++j) {
    CC_ASSERT(static_cast<size_t>(logit_rows[static_cast<size_t>(j)] + 1) * D * 4 <= x.bytes());
    be_.copy_rows(x, logit_rows[static_cast<size_t>(j)], *sel, j, 1, D * 4);
  }
  be_.rms_norm(*sel, *out_norm_, *sel, r, D, c.rms_eps);
  be_.matmul(*output_, nullptr, *sel, *lg, r);
  out.resize(static_cast<size_t>(r * c.n_vocab));
  be_.download(*lg, 0, out.data(), out.size() * 4);
  return out;
}

std::vector<float> Transformer::hidden_row(const DeviceBuffer& x, int64_t r) {
  const int64_t D = model_.config.n_embd;
  std::vector<float> h(static_cast<size_t>(D));
  be_.download(x, static_cast<size_t>(r * D) * 4, h.data(), h.size() * 4);
  return h;
}

std::vector<float> Transformer::eval(std::span<const int32_t> tokens, KVCache& kv, bool all_logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (kv.n_used + n > kv.n_slots) {
    fail("context full: ", kv.n_used, " + ", n, " tokens exceed the KV cache of ", kv.n_slots, " slots");
  }
  std::vector<int64_t> pos(static_cast<size_t>(n)), rows;
  std::iota(pos.begin(), pos.end(), kv.n_used);
  if (all_logits) {
    rows.resize(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), 0);
  } else if (n > 0) {
    rows = {n - 1};
  }
  std::vector<float> out = forward(tokens, pos, pos, kv, kv.n_used + n, rows);
  kv.n_used += n;
  return out;
}

}  // namespace cc
