// The RAG request engine: a prompt P + C1..Cn + Q, chunk KV from the ChunkStore re-positioned
// to global positions, and every reuse method of ../shared/docs/METHODS.md behind one call.
//
//  full        every row computed (the reference)
//  prefix      the KV of P and C1 (an exact token prefix) reused, C2..Cn and Q computed
//  naive       every chunk's KV reused, re-positioned; only Q computed
//  epic        + the first k rows of C2..Cn recomputed (static)
//  cacheblend  layers 0..check computed for all rows; the top r of C2..Cn by |v_fresh - v_cached|^2
//              at the check layer (plus Q) recomputed in the layers after it
//  ape         no re-positioning (chunks overlap at |P|..), no recomputation; every query attends
//              to the context with temperature T and the merge weight S (two-group attention)
//  cacheclip   an auxiliary model prefills the whole prompt; its last-layer attention from the Q
//              rows scores the context; the best non-overlapping windows of w rows inside C2..Cn
//              fill the budget floor(r * |C2..Cn|); those rows + Q recomputed from layer 0
//
// Selective recomputation (METHODS.md block 6) is Transformer::run_layer over the chosen rows,
// with the exact causal mask by global position; rows not chosen keep their cached KV.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "infer/transformer.h"
#include "numa/placement.h"
#include "reuse/chunk_store.h"
#include "tokenizer/tokenizer.h"

namespace cc {

// Token ids of a request. Each part is tokenized on its own, so a chunk's ids (and hence its
// cache key) never depend on the text around it.
struct RagPrompt {
  std::vector<int32_t> prefix;
  std::vector<std::vector<int32_t>> chunks;
  std::vector<int32_t> question;
  int64_t size() const;
  std::vector<int32_t> flat() const;  // P C1 .. Cn Q
};

struct RagText {
  std::string prefix;
  std::vector<std::string> docs;
  std::string question;
};

// "P<sep>C1<sep>...<sep>Cn<sep>Q" split at the separator string (as text, before tokenizing).
// cc::Error when sep is empty or occurs fewer than twice (no chunk).
RagText split_rag_text(const std::string& prompt, const std::string& sep);

// Tokenizes a request. With chat, P = the chat template's head with the prefix text as the
// system message and the start of the user turn; Q = the question followed by the template's
// tail (end of the user turn, assistant header); chunks are the documents' plain text. Without
// chat, P = BOS (when the tokenizer adds one) + prefix text. cc::Error for an empty document.
RagPrompt tokenize_rag(const Tokenizer& tok, const RagText& text, bool chat);

// Where each part of a request sits (flat row indices).
struct PromptLayout {
  int64_t n_prefix = 0, n_total = 0, q_start = 0;
  std::vector<int64_t> chunk_start, chunk_len;
  explicit PromptLayout(const RagPrompt& p);
  int64_t n_ctx() const;  // rows of C2..Cn: the budget base (C1 is exact after P, never charged)
};

enum class Method { Full, Prefix, Naive, Epic, CacheBlend, Ape, CacheClip };
const char* method_name(Method m);
Method parse_method(const std::string& name);  // cc::Error listing the names
std::vector<Method> all_methods();

struct MethodParams {
  double recompute = 0.2;  // r: cacheblend, cacheclip (1.0 = every row of C2..Cn)
  int epic_k = 16;         // epic: first k rows of each chunk after C1
  int check_layer = 1;     // cacheblend
  float ape_t = 0.9f, ape_s = 0.9f;
  int window = 8;              // cacheclip: w
  bool max_over_heads = false;  // cacheclip score pooling: mean (default) or max over heads
  bool last_row_only = false;   // cacheclip: sum over Q rows (default) or the last row only
  // cacheclip, off by default (METHODS.md's grouping): a window that starts fewer than w rows
  // after its chunk's first row is extended back to that row. No later window fits in such a
  // gap, and a reused chunk's first rows are the ones that miss the previous chunk most (a
  // value cut off by the chunk boundary begins there).
  bool snap_to_chunk_start = false;
  // cacheclip: use these context scores instead of running the auxiliary model (the "free
  // selection" baseline of the benchmarks).
  const std::vector<float>* given_scores = nullptr;
};
void check_method_params(const MethodParams& p);  // cc::Error naming the bad parameter

// Selectors (pure; flat row indices, ascending). Budget and grouping exactly as METHODS.md.
std::vector<int64_t> select_epic(const PromptLayout& L, int k);
// Top floor(r * n_ctx) rows of C2..Cn by score (ties: earlier row first).
// fresh (optional, one flag per flat row): rows already computed in the request (chunks missing
// from the store); they are neither candidates nor counted in the budget's base.
std::vector<int64_t> select_top(const PromptLayout& L, const std::vector<float>& score, double r,
                                std::span<const uint8_t> fresh = {});
// Window grouping: g(t) = sum of w consecutive scores inside one chunk of C2..Cn; the best
// non-overlapping windows are taken greedily until floor(r * n_ctx) rows; the last window is cut
// to the rows that remain (so the budget is met exactly); windows never cross a chunk boundary
// (a chunk shorter than w is one window).
// snap: a window starting fewer than w rows after its chunk's first row also takes the rows
// before it (MethodParams::snap_to_chunk_start); the budget stays exact, the last window keeping
// those rows first.
std::vector<int64_t> select_windows(const PromptLayout& L, const std::vector<float>& score, double r, int w,
                                    std::span<const uint8_t> fresh = {}, bool snap = false);

// Per-row attention mass that the Q rows (or the last row) put on every row of the prompt at
// the model's last layer, averaged (or max) over heads: computed from the queries and the
// layer's keys in the cache. Rows outside the context get 0.
std::vector<float> last_layer_attention(Transformer& tf, std::unique_ptr<DeviceBuffer>& x, const PromptLayout& L, KVCache& kv, bool max_over_heads, bool last_row_only);

// A full-attention prefill of the whole prompt on tf (in its own f32 cache), then
// last_layer_attention: what the cacheclip selector scores with on the auxiliary model, and
// the primary's own attention for the premise check.
std::vector<float> context_scores(Transformer& tf, const RagPrompt& p, bool max_over_heads, bool last_row_only);

// A model taking part in requests: its transformer and the fingerprint its chunk keys use.
struct RagModel {
  RagModel(const Model& m, Backend& be);
  const Model& model;
  Transformer tf;
  std::string fingerprint;  // model_fingerprint(model)
};
// Hash of the architecture, every tensor's name, shape and type, and sampled bytes of each
// tensor's data (16 strided 4 KiB windows + the last bytes): two files with the same shapes but
// different weights get different fingerprints without reading gigabytes.
std::string model_fingerprint(const Model& m);

struct RagTiming {
  double tokenize_ms = 0, load_ms = 0, aux_ms = 0, recompute_ms = 0, first_token_ms = 0;
  double transfer_ms = 0;  // part of load_ms: chunk KV moved from the store to the backend
  // Concurrent pipeline: the aux prefill/selection ran beside the store lookup/assembly; the
  // wall time of that stage is stage_ms (<= load_ms + aux_ms).
  bool overlapped = false;
  double stage_ms = 0;
  double total_ms() const {
    return tokenize_ms + (overlapped ? stage_ms : load_ms + aux_ms) + recompute_ms + first_token_ms;
  }
};

// An answered prefill: the cache ready for decoding, and what it cost.
struct RagState {
  Method method = Method::Full;
  KVCache kv;
  std::vector<float> logits;  // at the last prompt row
  std::vector<float> hidden;  // final hidden state of the last prompt row (before the norm)
  std::vector<int64_t> recomputed;  // flat rows computed fresh (every layer, or after the check layer)
  int64_t reused = 0, n_tokens = 0, missing_chunks = 0;
  std::vector<float> aux_scores;    // cacheclip: the auxiliary model's context scores
  RagTiming timing;
  int64_t next_pos = 0, next_slot = 0;
  int64_t prompt_next_pos = 0;        // next_pos right after the prefill (for rewind)
  std::unique_ptr<ApeAttention> ape;  // ape: the context mask, kept for decoding
};

struct RagOptions {
  DType kv_type = DType::F32;  // the request's working cache
  int64_t max_new_tokens = 256;  // cache room after the prompt
  std::string tenant_salt;
  // Concurrent pipeline (numa/placement.h): the aux model (on its own backend and CPUs) runs in
  // a thread of its own while the primary assembles the chunk KV; selective recomputation
  // starts when the selection is ready. Same results as the sequential pipeline.
  bool concurrent = false;
  // When not empty: the primary's team for recomputation (the aux cores lent back on a single
  // node), restored afterwards.
  std::vector<unsigned> recompute_cpus;
  int recompute_threads = 0;
  std::vector<unsigned> primary_cpus;  // the primary's own team, restored after recomputation
  int primary_threads = 0;
  std::vector<unsigned> aux_cpus;      // the aux model's own team (for overlapped requests)
  int aux_threads = 0;
  // Chunks missing from the store are encoded on their own after P (and stored) instead of
  // being recomputed in the request; the concurrent pipeline overlaps that with the aux model.
  bool encode_missing = false;
  // On a single node the two teams share the same cores and memory: overlapping the aux model
  // with the primary's own work cannot beat running each on every core in turn, so the engine
  // overlaps only when the primary runs elsewhere (another node, a device), unless this is set.
  bool overlap_shared_cores = false;
};

// The CPU team of one model in a placement plan (its CPUs, one thread per core).
CpuBackendOptions team_options(const TeamPlan& team);
// base with the concurrent pipeline of plan switched on: the primary's own team, the aux
// model's, and on a single node the aux cores lent to the primary while the aux model is idle.
RagOptions concurrent_options(const PlacementPlan& plan, RagOptions base = {});

class RagEngine {
 public:
  RagEngine(RagModel& primary, ChunkStore& store, RagOptions opts = {});
  void set_aux(RagModel* aux);  // needed by cacheclip; must share the primary's vocabulary

  // Puts the prefix's and every chunk's KV into the store when missing; returns how many were
  // computed.
  int precompute(const RagPrompt& p);
  // The chunk KV of `tokens` computed after `prefix` (pre-RoPE K and V of its rows only).
  std::shared_ptr<const ChunkKV> compute_chunk(const std::vector<int32_t>& prefix, const std::vector<int32_t>& tokens);
  ChunkKey chunk_key(const std::vector<int32_t>& prefix, const std::vector<int32_t>& tokens) const;

  // Prefill of a request with a method. Chunks missing from the store are computed in the
  // request (their rows join the recomputed set) and are not stored.
  RagState prefill(const RagPrompt& p, Method m, const MethodParams& params);
  // Feeds one token after the state (position next_pos) and returns its logits.
  std::vector<float> step(RagState& s, int32_t token);
  // Greedy continuation from the end of the prompt (s.logits): at most n tokens, stopping at
  // an end-of-generation token (not included).
  std::vector<int32_t> greedy(RagState& s, const Tokenizer& tok, int64_t n);
  // Forgets every token fed with step() since the prefill; the prompt's KV stays, so one
  // prefill serves several continuations.
  void rewind(RagState& s);

  RagModel& primary() { return primary_; }
  RagModel* aux() { return aux_; }
  ChunkStore& store() { return store_; }

 private:
  // Loads (or computes) the chunk KV of part `part` (-1 = the prefix) into the cache rows
  // [row0, row0 + n) at positions pos0.. ; returns false when it had to be computed.
  bool assemble_part(const RagPrompt& p, int part, KVCache& kv, int64_t row0, int64_t pos0, bool compute_if_missing);
  void write_rows(KVCache& kv, const ChunkKV& c, int64_t row0, int64_t pos0);
  double transfer_ms_ = 0;  // accumulated by write_rows during one prefill
  RagModel& primary_;
  RagModel* aux_ = nullptr;
  ChunkStore& store_;
  RagOptions opts_;
};

// Fidelity of one method against full prefill (cacheclip compare / eval).
struct Fidelity {
  double kl = 0;            // KL(full || method) of the next-token distribution at the last prompt row
  double top1 = 0;          // fraction of the full model's first greedy tokens that the method's
                            // argmax reproduces, fed the same (full) continuation
  double hidden_rel = 0;    // |h_method - h_full| / |h_full| at the last prompt row
  double ttft_ms = 0;
  int64_t recomputed = 0;
};
double kl_divergence(const std::vector<float>& ref_logits, const std::vector<float>& logits);
int32_t argmax_token(const std::vector<float>& logits);  // lowest id among ties
// Attention similarity over the context rows: KL(primary || aux), Pearson, top-r% Jaccard.
struct AttentionSimilarity {
  double kl = 0, pearson = 0, jaccard = 0;
};
AttentionSimilarity attention_similarity(const PromptLayout& L, const std::vector<float>& primary,
                                         const std::vector<float>& aux, double r);

}  // namespace cc
