#include "reuse/rag.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <thread>

#include "base/error.h"
#include "simd/kernels.h"
#include "tokenizer/chat_template.h"

namespace cc {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Bumped whenever what a stored chunk means changes (pre-RoPE K, V, rows after P).
constexpr uint32_t kChunkLayoutVersion = 1;

std::string rope_config_text(const ModelConfig& c) {
  return cat("theta=", c.rope_theta, " pairing=", c.rope_pairing == RopePairing::Adjacent ? "adjacent" : "neox",
             " scaling=", static_cast<int>(c.rope_scaling.type), ":", c.rope_scaling.factor, " hd=", c.head_dim);
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Prompts

int64_t RagPrompt::size() const {
  int64_t n = static_cast<int64_t>(prefix.size() + question.size());
  for (const auto& c : chunks) n += static_cast<int64_t>(c.size());
  return n;
}

std::vector<int32_t> RagPrompt::flat() const {
  std::vector<int32_t> out(prefix);
  for (const auto& c : chunks) out.insert(out.end(), c.begin(), c.end());
  out.insert(out.end(), question.begin(), question.end());
  return out;
}

RagText split_rag_text(const std::string& prompt, const std::string& sep) {
  if (sep.empty()) fail("the chunk separator is empty");
  std::vector<std::string> parts;
  size_t at = 0;
  for (;;) {
    const size_t k = prompt.find(sep, at);
    if (k == std::string::npos) {
      parts.push_back(prompt.substr(at));
      break;
    }
    parts.push_back(prompt.substr(at, k - at));
    at = k + sep.size();
  }
  if (parts.size() < 3) {
    fail("the prompt has ", parts.size() - 1, " separator(s) '", sep,
         "'; expected PREFIX", sep, "CHUNK", sep, "...", sep, "QUESTION (at least two)");
  }
  RagText t;
  t.prefix = parts.front();
  t.question = parts.back();
  t.docs.assign(parts.begin() + 1, parts.end() - 1);
  return t;
}

RagPrompt tokenize_rag(const Tokenizer& tok, const RagText& t, bool chat) {
  const TokenizerSpec& spec = tok.spec();
  RagPrompt p;
  if (t.docs.empty()) fail("a RAG request needs at least one document");
  if (chat) {
    if (spec.chat_template.empty()) fail("the model has no chat template; drop --chat");
    const ChatFormat f = detect_chat_format(spec.chat_template);
    const std::string mark = "\x1e\x1e" "CACHECLIP_DOCUMENTS" "\x1e\x1e";
    std::vector<ChatMessage> msgs;
    if (!t.prefix.empty()) msgs.push_back({"system", t.prefix});
    msgs.push_back({"user", mark});
    const std::string r = apply_chat_template(f, msgs, true, spec);
    const size_t at = r.find(mark);
    if (at == std::string::npos) fail("internal: the chat template dropped the document marker");
    p.prefix = tok.encode(r.substr(0, at), false, true);
    p.question = tok.encode(t.question, false, false);
    const auto tail = tok.encode(r.substr(at + mark.size()), false, true);
    p.question.insert(p.question.end(), tail.begin(), tail.end());
  } else {
    p.prefix = tok.encode(t.prefix, true, false);
    p.question = tok.encode(t.question, false, false);
  }
  for (size_t i = 0; i < t.docs.size(); ++i) {
    if (t.docs[i].empty()) fail("document ", i + 1, " is empty");
    p.chunks.push_back(tok.encode(t.docs[i], false, false));
    if (p.chunks.back().empty()) fail("document ", i + 1, " has no tokens");
  }
  if (p.question.empty()) fail("the question is empty");
  return p;
}

PromptLayout::PromptLayout(const RagPrompt& p) {
  n_prefix = static_cast<int64_t>(p.prefix.size());
  int64_t at = n_prefix;
  for (const auto& c : p.chunks) {
    chunk_start.push_back(at);
    chunk_len.push_back(static_cast<int64_t>(c.size()));
    at += static_cast<int64_t>(c.size());
  }
  q_start = at;
  n_total = at + static_cast<int64_t>(p.question.size());
}

int64_t PromptLayout::n_ctx() const {
  int64_t n = 0;
  for (size_t i = 1; i < chunk_len.size(); ++i) n += chunk_len[i];
  return n;
}

// ---------------------------------------------------------------------------------------------
// Methods and selectors

const char* method_name(Method m) {
  switch (m) {
    case Method::Full: return "full";
    case Method::Prefix: return "prefix";
    case Method::Naive: return "naive";
    case Method::Epic: return "epic";
    case Method::CacheBlend: return "cacheblend";
    case Method::Ape: return "ape";
    case Method::CacheClip: return "cacheclip";
  }
  return "?";
}

std::vector<Method> all_methods() {
  return {Method::Full, Method::Prefix, Method::Naive, Method::Epic, Method::CacheBlend, Method::Ape, Method::CacheClip};
}

Method parse_method(const std::string& name) {
  std::string names;
  for (Method m : all_methods()) {
    if (name == method_name(m)) return m;
    names += (names.empty() ? "" : ", ") + std::string(method_name(m));
  }
  fail("unknown method '", name, "' (expected one of: ", names, ")");
}

void check_method_params(const MethodParams& p) {
  if (!(p.recompute >= 0.0 && p.recompute <= 1.0)) fail("recompute ratio must be in [0, 1], got ", p.recompute);
  if (p.epic_k < 0) fail("epic k must be >= 0, got ", p.epic_k);
  if (p.check_layer < 0) fail("cacheblend check layer must be >= 0, got ", p.check_layer);
  if (!(p.ape_t > 0.0f) || !(p.ape_s > 0.0f)) fail("APE temperature and scale must be > 0");
  if (p.window < 1) fail("cacheclip window must be >= 1, got ", p.window);
}

namespace {
// Rows of C2..Cn that are reusable (not already computed fresh in the request).
int64_t reusable(const PromptLayout& L, std::span<const uint8_t> fresh) {
  int64_t n = 0;
  for (size_t i = 1; i < L.chunk_start.size(); ++i) {
    for (int64_t j = 0; j < L.chunk_len[i]; ++j) {
      const int64_t row = L.chunk_start[i] + j;
      n += fresh.empty() || !fresh[static_cast<size_t>(row)];
    }
  }
  return n;
}
int64_t budget_of(const PromptLayout& L, double r, std::span<const uint8_t> fresh) {
  const int64_t n = reusable(L, fresh);
  return std::min<int64_t>(n, static_cast<int64_t>(std::floor(r * static_cast<double>(n) + 1e-9)));
}
bool is_fresh(std::span<const uint8_t> fresh, int64_t row) { return !fresh.empty() && fresh[static_cast<size_t>(row)]; }
}  // namespace

std::vector<int64_t> select_epic(const PromptLayout& L, int k) {
  std::vector<int64_t> out;
  for (size_t i = 1; i < L.chunk_start.size(); ++i) {
    for (int64_t j = 0; j < std::min<int64_t>(k, L.chunk_len[i]); ++j) out.push_back(L.chunk_start[i] + j);
  }
  return out;
}

std::vector<int64_t> select_top(const PromptLayout& L, const std::vector<float>& score, double r,
                                std::span<const uint8_t> fresh) {
  CC_ASSERT(static_cast<int64_t>(score.size()) >= L.n_total);
  std::vector<int64_t> cand;
  for (size_t i = 1; i < L.chunk_start.size(); ++i) {
    for (int64_t j = 0; j < L.chunk_len[i]; ++j) {
      if (!is_fresh(fresh, L.chunk_start[i] + j)) cand.push_back(L.chunk_start[i] + j);
    }
  }
  const int64_t B = budget_of(L, r, fresh);
  std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  cand.resize(static_cast<size_t>(B));
  std::sort(cand.begin(), cand.end());
  return cand;
}

std::vector<int64_t> select_windows(const PromptLayout& L, const std::vector<float>& score, double r, int w,
                                    std::span<const uint8_t> fresh, bool snap) {
  CC_ASSERT(static_cast<int64_t>(score.size()) >= L.n_total && w >= 1);
  const int64_t B = budget_of(L, r, fresh);
  struct Win {
    int64_t start, len, chunk_start;
    double g;
  };
  std::vector<Win> wins;
  for (size_t i = 1; i < L.chunk_start.size(); ++i) {
    if (is_fresh(fresh, L.chunk_start[i])) continue;  // a chunk computed fresh anyway (missing)
    const int64_t s0 = L.chunk_start[i], n = L.chunk_len[i], len = std::min<int64_t>(w, n);
    double g = 0;
    for (int64_t j = 0; j < len; ++j) g += score[s0 + j];
    for (int64_t t = 0; t + len <= n; ++t) {  // g(t) by a running sum
      if (t > 0) g += static_cast<double>(score[s0 + t + len - 1]) - score[s0 + t - 1];
      wins.push_back({s0 + t, len, s0, g});
    }
  }
  std::stable_sort(wins.begin(), wins.end(), [](const Win& a, const Win& b) { return a.g > b.g; });
  std::vector<uint8_t> taken(static_cast<size_t>(L.n_total), 0);
  int64_t have = 0;
  for (const Win& win : wins) {
    if (have >= B) break;
    bool free = true;
    for (int64_t j = 0; j < win.len && free; ++j) free = !taken[static_cast<size_t>(win.start + j)];
    if (!free) continue;
    // Snapping: the rows between the chunk's start and the window, when fewer than w. They are
    // free whenever the window is: every window taken so far is whole and w rows long (a chunk
    // shorter than w has one window, at its start), so none fits before this one in its chunk.
    const int64_t from = snap && win.start - win.chunk_start < w ? win.chunk_start : win.start;
    std::vector<int64_t> rows(static_cast<size_t>(win.start + win.len - from));
    std::iota(rows.begin(), rows.end(), from);
    if (have + static_cast<int64_t>(rows.size()) > B) {
      // The last window: its best rows only, so the budget is exact (snapped rows first).
      std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) {
        const bool sa = a < win.start, sb = b < win.start;
        return sa != sb ? sa : score[a] > score[b];
      });
      rows.resize(static_cast<size_t>(B - have));
    }
    for (int64_t row : rows) taken[static_cast<size_t>(row)] = 1;
    have += static_cast<int64_t>(rows.size());
  }
  if (have < B) {  // gaps narrower than a window remain: fill them by score
    std::vector<int64_t> rest;
    for (size_t i = 1; i < L.chunk_start.size(); ++i) {
      for (int64_t j = 0; j < L.chunk_len[i]; ++j) {
        const int64_t row = L.chunk_start[i] + j;
        if (!taken[static_cast<size_t>(row)] && !is_fresh(fresh, row)) rest.push_back(row);
      }
    }
    std::stable_sort(rest.begin(), rest.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    for (size_t k = 0; k < rest.size() && have < B; ++k, ++have) taken[static_cast<size_t>(rest[k])] = 1;
  }
  std::vector<int64_t> out;
  for (int64_t i = 0; i < L.n_total; ++i) {
    if (taken[static_cast<size_t>(i)]) out.push_back(i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Attention scores of the last layer

std::vector<float> last_layer_attention(Transformer& tf, std::unique_ptr<DeviceBuffer>& x, const PromptLayout& L, KVCache& kv, bool max_over_heads, bool last_row_only) {
  // Runs the model's last layer on x (all rows, layers 0..n-2 already applied) and scores.
  const ModelConfig& c = tf.config();
  const int64_t N = L.n_total, H = c.n_head, KVh = c.n_head_kv, hd = c.head_dim, kvd = KVh * hd, G = H / KVh;
  const int64_t last = c.n_layer - 1;
  std::vector<int64_t> pos(static_cast<size_t>(N));
  std::iota(pos.begin(), pos.end(), 0);
  std::vector<float> q;
  LayerHooks hooks;
  hooks.q_out = &q;
  tf.run_layer(last, *x, pos, pos, kv, N, hooks);
  // The layer's keys (post-RoPE) as f32.
  std::vector<float> K(static_cast<size_t>(N * kvd));
  std::vector<uint8_t> raw(dtype_row_bytes(kv.type, kvd) * static_cast<size_t>(N));
  tf.backend().download(*kv.k[static_cast<size_t>(last)], 0, raw.data(), raw.size());
  simd::kernels().to_f32(kv.type, raw.data(), K.data(), N * kvd);
  const auto& kt = simd::kernels();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<float> score(static_cast<size_t>(N), 0.0f), row(static_cast<size_t>(N)), pooled(static_cast<size_t>(N));
  const int64_t r0 = last_row_only ? N - 1 : L.q_start;
  for (int64_t i = r0; i < N; ++i) {
    std::fill(pooled.begin(), pooled.end(), 0.0f);
    for (int64_t h = 0; h < H; ++h) {
      const float* qi = q.data() + (i * H + h) * hd;
      for (int64_t j = 0; j <= i; ++j) row[static_cast<size_t>(j)] = kt.dot(qi, K.data() + j * kvd + (h / G) * hd, hd) * scale;
      kt.softmax(row.data(), i + 1);
      for (int64_t j = 0; j <= i; ++j) {
        float& p = pooled[static_cast<size_t>(j)];
        p = max_over_heads ? std::max(p, row[static_cast<size_t>(j)]) : p + row[static_cast<size_t>(j)] / static_cast<float>(H);
      }
    }
    for (int64_t j = 0; j <= i; ++j) score[static_cast<size_t>(j)] += pooled[static_cast<size_t>(j)];
  }
  for (int64_t j = 0; j < N; ++j) {
    if (j < L.n_prefix || j >= L.q_start) score[static_cast<size_t>(j)] = 0.0f;  // context rows only
  }
  return score;
}

std::vector<float> context_scores(Transformer& tf, const RagPrompt& p, bool max_over_heads, bool last_row_only) {
  const PromptLayout L(p);
  const int64_t N = L.n_total;
  const std::vector<int32_t> tokens = p.flat();
  KVCache kv = tf.make_cache(N, DType::F32);
  auto x = tf.embed(tokens);
  std::vector<int64_t> pos(static_cast<size_t>(N));
  std::iota(pos.begin(), pos.end(), 0);
  for (int64_t l = 0; l + 1 < tf.config().n_layer; ++l) tf.run_layer(l, *x, pos, pos, kv, N);
  return last_layer_attention(tf, x, L, kv, max_over_heads, last_row_only);
}

// ---------------------------------------------------------------------------------------------
// Models

std::string model_fingerprint(const Model& m) {
  XXH3_state_t* st = XXH3_createState();
  if (!st) fail("out of memory hashing the model");
  XXH3_128bits_reset(st);
  const ModelConfig& c = m.config;
  const std::string head = cat("arch=", static_cast<int>(c.arch), " vocab=", c.n_vocab, " d=", c.n_embd, " l=", c.n_layer,
                               " h=", c.n_head, " kv=", c.n_head_kv, " hd=", c.head_dim, " ff=", c.n_ff, " eps=", c.rms_eps,
                               " ", rope_config_text(c), " tied=", c.tied_embeddings);
  XXH3_128bits_update(st, head.data(), head.size());
  for (const Tensor& t : m.tensors()) {
    std::string d = cat(t.name, ":", dtype_name(t.type), ":", t.nbytes, ":");
    for (int64_t s : t.shape) d += cat(s, ",");
    XXH3_128bits_update(st, d.data(), d.size());
    const size_t win = 4096;
    if (t.nbytes <= 17 * win) {
      XXH3_128bits_update(st, t.data, t.nbytes);
    } else {
      for (size_t k = 0; k < 16; ++k) XXH3_128bits_update(st, t.data + (t.nbytes - win) / 16 * k, win);
      XXH3_128bits_update(st, t.data + t.nbytes - win, win);
    }
  }
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

RagModel::RagModel(const Model& m, Backend& be) : model(m), tf(m, be), fingerprint(model_fingerprint(m)) {}

// ---------------------------------------------------------------------------------------------
// Engine

CpuBackendOptions team_options(const TeamPlan& team) {
  CpuBackendOptions o;
  o.cpus = team.cpus;
  o.threads = team.threads;
  return o;
}

RagOptions concurrent_options(const PlacementPlan& plan, RagOptions base) {
  base.concurrent = true;
  base.primary_cpus = plan.primary.cpus;
  base.primary_threads = plan.primary.threads;
  base.aux_cpus = plan.aux.cpus;
  base.aux_threads = plan.aux.threads;
  if (plan.lend_aux_cores) {
    base.recompute_cpus = plan.all_cpus;
    base.recompute_threads = plan.primary.threads + plan.aux.threads;
  }
  return base;
}

RagEngine::RagEngine(RagModel& primary, ChunkStore& store, RagOptions opts)
    : primary_(primary), store_(store), opts_(std::move(opts)) {
  if (opts_.kv_type != DType::F32 && opts_.kv_type != DType::F16 && opts_.kv_type != DType::BF16) {
    fail("KV cache type must be f32, f16 or bf16");
  }
}

void RagEngine::set_aux(RagModel* aux) {
  if (aux && aux->model.config.n_vocab != primary_.model.config.n_vocab) {
    fail("the auxiliary model's vocabulary (", aux->model.config.n_vocab, ") differs from the primary's (",
         primary_.model.config.n_vocab, "): it must share the primary's tokenizer");
  }
  if (aux && aux->model.tokenizer.tokens != primary_.model.tokenizer.tokens) {
    fail("the auxiliary model's tokenizer differs from the primary's (same size, other tokens)");
  }
  aux_ = aux;
}

ChunkKey RagEngine::chunk_key(const std::vector<int32_t>& prefix, const std::vector<int32_t>& tokens) const {
  ChunkKeyInputs in;
  in.model_fingerprint = primary_.fingerprint;
  in.layout_version = kChunkLayoutVersion;
  in.rope_config = rope_config_text(primary_.model.config);
  in.prefix_tokens = prefix;
  in.chunk_tokens = tokens;
  in.tenant_salt = opts_.tenant_salt;
  // The storage type is part of the key, so stores of different types can share a folder.
  switch (store_.options().type) {
    case KVStoreType::F32: in.dtype = DType::F32; break;
    case KVStoreType::F16: in.dtype = DType::F16; break;
    case KVStoreType::BF16: in.dtype = DType::BF16; break;
    case KVStoreType::I8: in.dtype = DType::Q8_0; break;  // int8 rows (its own id)
  }
  return make_chunk_key(in);
}

std::shared_ptr<const ChunkKV> RagEngine::compute_chunk(const std::vector<int32_t>& prefix,
                                                        const std::vector<int32_t>& tokens) {
  Transformer& tf = primary_.tf;
  const ModelConfig& c = tf.config();
  const int64_t np = static_cast<int64_t>(prefix.size()), n = static_cast<int64_t>(tokens.size());
  const int64_t kvd = c.n_head_kv * c.head_dim;
  if (n == 0) fail("cannot compute the KV of an empty chunk");
  KVCache kv = tf.make_cache(np + n, DType::F32);
  std::vector<int32_t> all(prefix);
  all.insert(all.end(), tokens.begin(), tokens.end());
  tf.eval(all, kv);
  // Rows of the chunk, per layer: K un-rotated to before RoPE (fp32), V as is.
  std::vector<float> k_all(static_cast<size_t>(c.n_layer * n * kvd)), v_all(k_all.size());
  const auto& rope = tf.rope();
  const int64_t half = c.head_dim / 2;
  std::vector<float> cs(static_cast<size_t>(half)), sn(cs.size());
  for (int64_t l = 0; l < c.n_layer; ++l) {
    float* kd = k_all.data() + l * n * kvd;
    tf.backend().download(*kv.k[static_cast<size_t>(l)], static_cast<size_t>(np * kvd) * 4, kd,
                          static_cast<size_t>(n * kvd) * 4);
    tf.backend().download(*kv.v[static_cast<size_t>(l)], static_cast<size_t>(np * kvd) * 4,
                          v_all.data() + l * n * kvd, static_cast<size_t>(n * kvd) * 4);
    for (int64_t i = 0; i < n; ++i) {
      const float p = static_cast<float>(np + i);
      for (int64_t j = 0; j < half; ++j) {
        const float a = p * rope.inv_freq[static_cast<size_t>(j)];
        cs[static_cast<size_t>(j)] = std::cos(a);
        sn[static_cast<size_t>(j)] = -std::sin(a);  // R(-p)
      }
      simd::kernels().rope(kd + i * kvd, c.n_head_kv, c.head_dim, cs.data(), sn.data(), rope.mode == RopeMode::NeoX);
    }
  }
  return store_.make(chunk_key(prefix, tokens), static_cast<int32_t>(c.n_layer), static_cast<int32_t>(n),
                     static_cast<int32_t>(kvd), k_all, v_all);
}

int RagEngine::precompute(const RagPrompt& p) {
  const ModelConfig& c = primary_.tf.config();
  const int32_t kvd = static_cast<int32_t>(c.n_head_kv * c.head_dim);
  int computed = 0;
  auto ensure = [&](const std::vector<int32_t>& prefix, const std::vector<int32_t>& tokens) {
    if (tokens.empty()) return;
    const ChunkKey key = chunk_key(prefix, tokens);
    if (store_.get(key, store_.layout(static_cast<int32_t>(c.n_layer), static_cast<int32_t>(tokens.size()), kvd))) return;
    store_.put(compute_chunk(prefix, tokens));
    ++computed;
  };
  ensure({}, p.prefix);
  for (const auto& ch : p.chunks) ensure(p.prefix, ch);
  return computed;
}

void RagEngine::write_rows(KVCache& kv, const ChunkKV& ck, int64_t row0, int64_t pos0) {
  Transformer& tf = primary_.tf;
  Backend& be = tf.backend();
  const ModelConfig& c = tf.config();
  const int64_t n = ck.layout().n_tokens, kvd = ck.layout().kv_dim;
  std::vector<float> kf(static_cast<size_t>(n * kvd)), vf(kf.size());
  auto kb = be.alloc(kf.size() * 4), vb = be.alloc(vf.size() * 4);
  std::vector<int64_t> pos(static_cast<size_t>(n)), slot(static_cast<size_t>(n));
  std::iota(pos.begin(), pos.end(), pos0);
  std::iota(slot.begin(), slot.end(), row0);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    ck.k_rows_f32(static_cast<int>(l), kf.data());
    ck.v_rows_f32(static_cast<int>(l), vf.data());
    const auto u0 = Clock::now();
    be.upload(*kb, 0, kf.data(), kf.size() * 4);
    be.upload(*vb, 0, vf.data(), vf.size() * 4);
    transfer_ms_ += ms_since(u0);
    be.rope(*kb, n, c.n_head_kv, pos, tf.rope());  // to the global positions, in fp32
    be.kv_store(*kv.k[static_cast<size_t>(l)], *kv.v[static_cast<size_t>(l)], kv.type, *kb, *vb, slot, kvd);
  }
  for (int64_t i = 0; i < n; ++i) kv.slot_pos[static_cast<size_t>(row0 + i)] = pos0 + i;
}

bool RagEngine::assemble_part(const RagPrompt& p, int part, KVCache& kv, int64_t row0, int64_t pos0,
                              bool compute_if_missing) {
  const ModelConfig& c = primary_.tf.config();
  const std::vector<int32_t> none;
  const std::vector<int32_t>& prefix = part < 0 ? none : p.prefix;
  const std::vector<int32_t>& tokens = part < 0 ? p.prefix : p.chunks[static_cast<size_t>(part)];
  if (tokens.empty()) return true;
  const ChunkLayout want = store_.layout(static_cast<int32_t>(c.n_layer), static_cast<int32_t>(tokens.size()),
                                         static_cast<int32_t>(c.n_head_kv * c.head_dim));
  auto ck = store_.get(chunk_key(prefix, tokens), want);
  if (!ck) {
    if (!compute_if_missing) return false;
    ck = compute_chunk(prefix, tokens);
    if (part < 0 || opts_.encode_missing) store_.put(ck);  // kept for the next request
  }
  write_rows(kv, *ck, row0, pos0);
  return true;
}

RagState RagEngine::prefill(const RagPrompt& p, Method m, const MethodParams& mp) {
  check_method_params(mp);
  Transformer& tf = primary_.tf;
  const ModelConfig& c = tf.config();
  const PromptLayout L(p);
  const int64_t N = L.n_total;
  if (p.question.empty()) fail("the question is empty");
  const std::vector<int32_t> tokens = p.flat();
  for (int32_t t : tokens) {
    if (t < 0 || t >= c.n_vocab) fail("token id ", t, " is out of range for a vocabulary of ", c.n_vocab);
  }
  RagState s;
  s.method = m;
  s.n_tokens = N;
  tf.warn_past_trained_context(N + std::max<int64_t>(opts_.max_new_tokens - 1, 0));
  s.kv = tf.make_cache(N + std::max<int64_t>(opts_.max_new_tokens, 1), opts_.kv_type);
  // Positions: contiguous, except APE, where every chunk starts at |P| and Q after the longest.
  std::vector<int64_t> pos(static_cast<size_t>(N));
  std::iota(pos.begin(), pos.end(), 0);
  int64_t max_chunk = 0;
  for (int64_t len : L.chunk_len) max_chunk = std::max(max_chunk, len);
  if (m == Method::Ape) {
    for (size_t i = 0; i < L.chunk_start.size(); ++i) {
      for (int64_t j = 0; j < L.chunk_len[i]; ++j) pos[static_cast<size_t>(L.chunk_start[i] + j)] = L.n_prefix + j;
    }
    for (int64_t j = L.q_start; j < N; ++j) pos[static_cast<size_t>(j)] = L.n_prefix + max_chunk + (j - L.q_start);
  }
  std::vector<uint8_t> fresh(static_cast<size_t>(N), 0);  // rows computed in this request
  for (int64_t j = L.q_start; j < N; ++j) fresh[static_cast<size_t>(j)] = 1;

  // 1. Store lookup and assembly (re-positioned chunk KV in the cache), and 2. the selection.
  // The cacheclip aux model runs in a thread of its own when the pipeline is concurrent.
  const bool use_aux = m == Method::CacheClip && !mp.given_scores;
  if (use_aux && !aux_) fail("method cacheclip needs an auxiliary model (--aux)");
  std::thread aux_thread;
  std::exception_ptr aux_error;
  double aux_ms = 0;
  Backend& pbe = tf.backend();
  const bool lend = !opts_.recompute_cpus.empty();
  auto run_aux = [&] {
    try {
      const auto a0 = Clock::now();
      s.aux_scores = context_scores(aux_->tf, p, mp.max_over_heads, mp.last_row_only);
      aux_ms = ms_since(a0);
    } catch (...) {
      aux_error = std::current_exception();
    }
  };
  // Work of the primary that needs no selection: the prefix when it is not stored, and (with
  // encode_missing) chunks missing from the store. Only then is there something to overlap the
  // aux model with; otherwise the aux model runs first on every core of the plan.
  bool primary_work = false;
  if (use_aux && opts_.concurrent && (!lend || opts_.overlap_shared_cores)) {
    primary_work = !p.prefix.empty() && !store_.contains(chunk_key({}, p.prefix));
    for (size_t i = 0; i < p.chunks.size() && opts_.encode_missing && !primary_work; ++i) {
      primary_work = !store_.contains(chunk_key(p.prefix, p.chunks[i]));
    }
  }
  // The primary's team: on a single node the aux cores are lent to it for everything it does
  // while the aux model is not running (all of the request unless the two overlap); its own
  // team is restored at the end.
  const int saved_threads = opts_.primary_threads > 0 ? opts_.primary_threads : pbe.threads();
  struct Restore {
    Backend& be;
    const std::vector<unsigned>* cpus;
    int threads;
    bool active;
    ~Restore() {
      if (active) be.set_cpus(*cpus, threads);
    }
  };
  const std::vector<unsigned> primary_cpus = opts_.primary_cpus;
  const bool overlap = use_aux && opts_.concurrent && primary_work;
  // Restored only after an overlap: otherwise the primary simply keeps every core (changing a
  // team back and forth around each request costs more than it saves).
  Restore restore{pbe, &primary_cpus, saved_threads, lend && overlap};
  if (lend && !overlap && pbe.threads() != opts_.recompute_threads) pbe.set_cpus(opts_.recompute_cpus, opts_.recompute_threads);
  const auto stage0 = Clock::now();
  if (use_aux && opts_.concurrent && primary_work) {
    // Each model on its own team for the overlap (an earlier request may have lent them all).
    Backend& abe = aux_->tf.backend();
    if (lend && opts_.aux_threads > 0 && abe.threads() != opts_.aux_threads) abe.set_cpus(opts_.aux_cpus, opts_.aux_threads);
    if (lend && pbe.threads() != saved_threads) pbe.set_cpus(primary_cpus, saved_threads);
    aux_thread = std::thread([&] {
      run_aux();
      // Its cores go to the primary as soon as the selection input is ready (single node).
      if (lend) pbe.set_cpus(opts_.recompute_cpus, opts_.recompute_threads);
    });
  } else if (use_aux && opts_.concurrent) {
    // Nothing to overlap: the aux model runs first, on every core (and keeps them).
    Backend& abe = aux_->tf.backend();
    if (lend && abe.threads() != opts_.recompute_threads) abe.set_cpus(opts_.recompute_cpus, opts_.recompute_threads);
    run_aux();
  }
  transfer_ms_ = 0;
  auto t0 = Clock::now();
  try {
    if (m == Method::Full) {
      std::fill(fresh.begin(), fresh.end(), 1);
    } else {
      assemble_part(p, -1, s.kv, 0, 0, true);
      const size_t n_reused_chunks = m == Method::Prefix ? std::min<size_t>(1, p.chunks.size()) : p.chunks.size();
      for (size_t i = 0; i < p.chunks.size(); ++i) {
        const int64_t r0 = L.chunk_start[i];
        // APE never recomputes in the request: a chunk missing from the store is encoded on
        // its own after P (as the store would have it) and used like a stored one.
        const bool standalone = m == Method::Ape || opts_.encode_missing;
        if (standalone && i < n_reused_chunks && !store_.contains(chunk_key(p.prefix, p.chunks[i]))) ++s.missing_chunks;
        const bool ok = i < n_reused_chunks &&
                        assemble_part(p, static_cast<int>(i), s.kv, r0, pos[static_cast<size_t>(r0)], standalone);
        if (!ok) {
          if (i < n_reused_chunks) ++s.missing_chunks;
          for (int64_t j = 0; j < L.chunk_len[i]; ++j) fresh[static_cast<size_t>(r0 + j)] = 1;
        }
      }
    }
    tf.backend().sync();
  } catch (...) {
    if (aux_thread.joinable()) aux_thread.join();
    throw;
  }
  s.timing.load_ms = ms_since(t0);
  s.timing.transfer_ms = transfer_ms_;
  if (use_aux && !opts_.concurrent) run_aux();
  if (aux_thread.joinable()) aux_thread.join();
  if (aux_error) std::rethrow_exception(aux_error);

  t0 = Clock::now();
  std::vector<int64_t> extra;
  if (m == Method::Epic) extra = select_epic(L, mp.epic_k);
  if (m == Method::CacheClip) {
    if (mp.given_scores) {
      if (static_cast<int64_t>(mp.given_scores->size()) != N) fail("given scores have ", mp.given_scores->size(), " rows, the prompt ", N);
      s.aux_scores = *mp.given_scores;
    }
    extra = select_windows(L, s.aux_scores, mp.recompute, mp.window, fresh, mp.snap_to_chunk_start);
  }
  for (int64_t r : extra) fresh[static_cast<size_t>(r)] = 1;
  s.timing.aux_ms = aux_ms + ms_since(t0);
  s.timing.overlapped = use_aux && opts_.concurrent && primary_work;
  s.timing.stage_ms = ms_since(stage0);

  // The aux cores belong to the primary from here on (single node).
  if (lend && pbe.threads() != opts_.recompute_threads) pbe.set_cpus(opts_.recompute_cpus, opts_.recompute_threads);

  // 3. Recomputation (METHODS.md block 6), layer by layer over the chosen rows.
  t0 = Clock::now();
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < N; ++i) {
    if (fresh[static_cast<size_t>(i)]) rows.push_back(i);
  }
  if (m == Method::Ape) {
    s.ape = std::make_unique<ApeAttention>();
    s.ape->in_context.assign(static_cast<size_t>(s.kv.n_slots), 0);
    for (int64_t i = L.n_prefix; i < L.q_start; ++i) s.ape->in_context[static_cast<size_t>(i)] = 1;
    s.ape->temperature = mp.ape_t;
    s.ape->scale = mp.ape_s;
  }
  LayerHooks hooks;
  hooks.ape = s.ape.get();
  std::unique_ptr<DeviceBuffer> x;
  int64_t last_row = -1;  // index of the last prompt row in the rows that run
  if (m == Method::CacheBlend) {
    // Layers 0..check: every row fresh; at the check layer, score reusable rows by the squared
    // distance of fresh and cached values, then only the kept rows (+ fresh ones) continue.
    const int64_t check = std::min<int64_t>(mp.check_layer, c.n_layer - 1);
    const int64_t kvd = c.n_head_kv * c.head_dim;
    std::vector<int64_t> all(static_cast<size_t>(N));
    std::iota(all.begin(), all.end(), 0);
    x = tf.embed(tokens);
    for (int64_t l = 0; l <= check; ++l) {
      std::vector<float> cached(static_cast<size_t>(N * kvd)), vnew;
      if (l == check) {
        std::vector<uint8_t> raw(dtype_row_bytes(s.kv.type, kvd) * static_cast<size_t>(N));
        tf.backend().download(*s.kv.v[static_cast<size_t>(l)], 0, raw.data(), raw.size());
        simd::kernels().to_f32(s.kv.type, raw.data(), cached.data(), N * kvd);
        hooks.v_out = &vnew;
      }
      tf.run_layer(l, *x, all, all, s.kv, N, hooks);
      hooks.v_out = nullptr;
      if (l == check) {
        std::vector<float> score(static_cast<size_t>(N), 0.0f);
        for (int64_t i = 0; i < N; ++i) {
          double d = 0;
          for (int64_t e = 0; e < kvd; ++e) {
            const double df = static_cast<double>(vnew[static_cast<size_t>(i * kvd + e)]) - cached[static_cast<size_t>(i * kvd + e)];
            d += df * df;
          }
          score[static_cast<size_t>(i)] = static_cast<float>(d);
        }
        const std::vector<uint8_t> before = fresh;  // rows of missing chunks are not candidates
        for (int64_t r : select_top(L, score, mp.recompute, before)) fresh[static_cast<size_t>(r)] = 1;
      }
    }
    rows.clear();
    for (int64_t i = 0; i < N; ++i) {
      if (fresh[static_cast<size_t>(i)]) rows.push_back(i);
    }
    auto xs = tf.backend().alloc(rows.size() * static_cast<size_t>(c.n_embd) * 4);
    for (size_t k = 0; k < rows.size(); ++k) {
      tf.backend().copy_rows(*x, rows[k], *xs, static_cast<int64_t>(k), 1, static_cast<size_t>(c.n_embd) * 4);
    }
    x = std::move(xs);
    std::vector<int64_t> rpos(rows.size());
    for (size_t k = 0; k < rows.size(); ++k) rpos[k] = pos[static_cast<size_t>(rows[k])];
    for (int64_t l = check + 1; l < c.n_layer; ++l) tf.run_layer(l, *x, rpos, rows, s.kv, N, hooks);
    s.recomputed = rows;
    s.reused = N - static_cast<int64_t>(rows.size());
  } else {
    std::vector<int32_t> rt(rows.size());
    std::vector<int64_t> rpos(rows.size());
    for (size_t k = 0; k < rows.size(); ++k) {
      rt[k] = tokens[static_cast<size_t>(rows[k])];
      rpos[k] = pos[static_cast<size_t>(rows[k])];
    }
    x = tf.embed(rt);
    for (int64_t l = 0; l < c.n_layer; ++l) tf.run_layer(l, *x, rpos, rows, s.kv, N, hooks);
    s.recomputed = rows;
    s.reused = N - static_cast<int64_t>(rows.size());
  }
  tf.backend().sync();
  last_row = static_cast<int64_t>(rows.size()) - 1;  // the last question row is always last
  CC_ASSERT(last_row >= 0 && rows.back() == N - 1);
  s.timing.recompute_ms = ms_since(t0);

  t0 = Clock::now();
  const std::vector<int64_t> lr = {last_row};
  s.logits = tf.logits(*x, lr);
  s.hidden = tf.hidden_row(*x, last_row);
  s.timing.first_token_ms = ms_since(t0);
  s.next_pos = s.prompt_next_pos = pos.back() + 1;
  s.next_slot = N;
  s.kv.n_used = N;
  return s;
}

std::vector<float> RagEngine::step(RagState& s, int32_t token) {
  Transformer& tf = primary_.tf;
  if (s.next_slot >= s.kv.n_slots) fail("context full: the request's cache has room for ", s.kv.n_slots, " tokens");
  const std::vector<int32_t> t = {token};
  const std::vector<int64_t> pos = {s.next_pos}, slot = {s.next_slot};
  auto x = tf.embed(t);
  LayerHooks hooks;
  hooks.ape = s.ape.get();
  for (int64_t l = 0; l < tf.config().n_layer; ++l) tf.run_layer(l, *x, pos, slot, s.kv, s.next_slot + 1, hooks);
  ++s.next_pos;
  ++s.next_slot;
  s.kv.n_used = s.next_slot;
  const std::vector<int64_t> r0 = {0};
  return tf.logits(*x, r0);
}

std::vector<int32_t> RagEngine::greedy(RagState& s, const Tokenizer& tok, int64_t n) {
  std::vector<int32_t> out;
  std::vector<float> logits = s.logits;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = argmax_token(logits);
    if (tok.is_eog(t)) break;
    out.push_back(t);
    if (i + 1 < n) logits = step(s, t);
  }
  return out;
}

void RagEngine::rewind(RagState& s) {
  for (int64_t k = s.n_tokens; k < s.next_slot; ++k) s.kv.slot_pos[static_cast<size_t>(k)] = -1;
  s.next_slot = s.n_tokens;
  s.next_pos = s.prompt_next_pos;
  s.kv.n_used = s.n_tokens;
}

// ---------------------------------------------------------------------------------------------
// Fidelity

int32_t argmax_token(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

double kl_divergence(const std::vector<float>& ref, const std::vector<float>& got) {
  CC_ASSERT(ref.size() == got.size() && !ref.empty());
  auto logsm = [](const std::vector<float>& v) {
    double m = -INFINITY;
    for (float x : v) m = std::max(m, static_cast<double>(x));
    double s = 0;
    for (float x : v) s += std::exp(x - m);
    std::vector<double> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] - m - std::log(s);
    return out;
  };
  const auto lp = logsm(ref), lq = logsm(got);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(0.0, kl);
}

AttentionSimilarity attention_similarity(const PromptLayout& L, const std::vector<float>& a,
                                         const std::vector<float>& b, double r) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < L.chunk_start.size(); ++i) {
    for (int64_t j = 0; j < L.chunk_len[i]; ++j) rows.push_back(L.chunk_start[i] + j);
  }
  AttentionSimilarity out;
  if (rows.empty()) return out;
  double sa = 0, sb = 0;
  for (int64_t i : rows) {
    sa += a[static_cast<size_t>(i)];
    sb += b[static_cast<size_t>(i)];
  }
  const double eps = 1e-12;
  double ma = 0, mb = 0;
  const double n = static_cast<double>(rows.size());
  for (int64_t i : rows) {
    const double pa = a[static_cast<size_t>(i)] / std::max(sa, eps), pb = b[static_cast<size_t>(i)] / std::max(sb, eps);
    if (pa > 0) out.kl += pa * (std::log(pa) - std::log(std::max(pb, eps)));
    ma += pa / n;
    mb += pb / n;
  }
  double cov = 0, va = 0, vb = 0;
  for (int64_t i : rows) {
    const double pa = a[static_cast<size_t>(i)] / std::max(sa, eps) - ma, pb = b[static_cast<size_t>(i)] / std::max(sb, eps) - mb;
    cov += pa * pb;
    va += pa * pa;
    vb += pb * pb;
  }
  out.pearson = (va > 0 && vb > 0) ? cov / std::sqrt(va * vb) : 0.0;
  const size_t k = std::max<size_t>(1, static_cast<size_t>(std::floor(r * n)));
  auto top = [&](const std::vector<float>& v) {
    std::vector<int64_t> idx = rows;
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return v[static_cast<size_t>(x)] > v[static_cast<size_t>(y)]; });
    idx.resize(std::min(k, idx.size()));
    std::sort(idx.begin(), idx.end());
    return idx;
  };
  const auto ta = top(a), tb = top(b);
  std::vector<int64_t> inter;
  std::set_intersection(ta.begin(), ta.end(), tb.begin(), tb.end(), std::back_inserter(inter));
  out.jaccard = static_cast<double>(inter.size()) / static_cast<double>(ta.size() + tb.size() - inter.size());
  out.kl = std::max(0.0, out.kl);
  return out;
}

}  // namespace cc
