// The forward pass of the llama / qwen2 architectures over a Backend.
//
// One call processes n token rows, each with its own global position and KV-cache slot, and
// attends over the cache slots [0, n_attend) with an exact causal mask by position
// (slot_pos[s] <= pos[i]). Plain generation appends rows at the end of the cache; the reuse
// methods (issue 4) recompute chosen rows of an assembled cache with the same call.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/model.h"
#include "ops/backend.h"

namespace cc {

// Per-sequence KV cache: per layer K (post-RoPE) and V [n_slots, n_kv_heads * head_dim].
struct KVCache {
  DType type = DType::F16;
  int64_t n_slots = 0;
  int64_t kv_dim = 0;
  std::vector<std::unique_ptr<DeviceBuffer>> k, v;  // [n_layer]
  std::vector<int64_t> slot_pos;                    // position held by each slot; -1 = empty
  int64_t n_used = 0;                               // slots [0, n_used) are filled in order

  void clear();  // marks every slot empty (contents stay allocated)
};

// Two-group attention of APE (Adaptive Parallel Encoding, METHODS.md): for every query row,
// context slots (in_context[s]) are seen without causal constraint with logits scaled by
// 1 / (sqrt(d) T); the other slots causally as usual; outputs merged with the weights
// softmax([S T LSE_ctx, LSE_other]).
struct ApeAttention {
  std::vector<uint8_t> in_context;  // [n_slots]
  float temperature = 0.9f, scale = 0.9f;
};

// Optional observers / variants of one layer step.
struct LayerHooks {
  std::vector<float>* q_out = nullptr;  // post-RoPE queries [n, n_head * head_dim]
  std::vector<float>* k_out = nullptr;  // fresh pre-RoPE keys [n, kv_dim]
  std::vector<float>* v_out = nullptr;  // fresh values [n, kv_dim] (before they are stored)
  const ApeAttention* ape = nullptr;
};

class Transformer {
 public:
  // Uploads every weight once. The model must outlive the transformer.
  Transformer(const Model& model, Backend& backend);

  const ModelConfig& config() const { return model_.config; }
  Backend& backend() { return be_; }

  // KV cache storage type F32, F16 or BF16 (anything else -> cc::Error).
  KVCache make_cache(int64_t n_slots, DType type) const;

  // A request that will use positions up to n_positions - 1: prints one warning to stderr
  // (once per Transformer) when that passes the model's trained context, where quality
  // degrades. A trained context of 0 (unknown) never warns.
  void warn_past_trained_context(int64_t n_positions) const;

  // Runs rows (tokens[i], pos[i]) into slots slot[i]; attends over slots [0, n_attend).
  // Returns logits [logit_rows.size(), n_vocab] for the requested row indices (into tokens).
  // Throws cc::Error for a token id outside the vocabulary, a slot outside the cache or
  // mismatched spans.
  std::vector<float> forward(std::span<const int32_t> tokens, std::span<const int64_t> pos,
                             std::span<const int64_t> slot, KVCache& kv, int64_t n_attend,
                             std::span<const int64_t> logit_rows);

  // Appends tokens after the cache's last filled slot (position = slot index) and returns the
  // logits of the last row (or of every row when all_logits).
  std::vector<float> eval(std::span<const int32_t> tokens, KVCache& kv, bool all_logits = false);

  // --- Layer-level API (the reuse methods: selective recomputation layer by layer) ---
  // Hidden states of n rows [n, n_embd] on the backend.
  std::unique_ptr<DeviceBuffer> embed(std::span<const int32_t> tokens);
  // Runs layer l on the n rows of x in place: their fresh K/V go into slots slot[i] and they
  // attend over slots [0, n_attend) by position (or as hooks.ape says). Validation as forward.
  void run_layer(int64_t l, DeviceBuffer& x, std::span<const int64_t> pos, std::span<const int64_t> slot,
                 KVCache& kv, int64_t n_attend, const LayerHooks& hooks = {});
  // Final norm + output projection of the given rows of x: [rows.size(), n_vocab].
  std::vector<float> logits(const DeviceBuffer& x, std::span<const int64_t> rows);
  // Row r of x to the host (the final hidden state, before the output norm).
  std::vector<float> hidden_row(const DeviceBuffer& x, int64_t r);
  const RopeParams& rope() const { return rope_; }
  int64_t ubatch() const { return ubatch_; }

 private:
  // Rows per micro-batch: activations stay O(ubatch x (n_embd + 512)) however long the prompt
  // (the CPU backend's fused FFN holds 512 features at a time). 512; CACHECLIP_UBATCH=N trades
  // prefill speed for memory (docs/PERFORMANCE.md).
  int64_t ubatch_ = 512;
  mutable std::atomic<bool> warned_ctx_{false};
  std::vector<float> forward_batch(std::span<const int32_t> tokens, std::span<const int64_t> pos,
                                   std::span<const int64_t> slot, KVCache& kv, int64_t n_attend,
                                   std::span<const int64_t> logit_rows);
  void check_rows(std::span<const int64_t> pos, std::span<const int64_t> slot, const KVCache& kv, int64_t n_attend) const;
  // Activation buffers sized for the largest call so far (one host thread per transformer).
  struct Workspace {
    int64_t rows = 0;
    std::unique_ptr<DeviceBuffer> xn, q, k, v, att, att2, lse, lse2;
  };
  Workspace& workspace(int64_t n, bool ape);
  Workspace ws_;
  std::vector<int64_t> ape_pos_ctx_, ape_pos_rest_, ape_qpos_;
  struct Layer {
    std::unique_ptr<DeviceWeight> attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, gate, up, down;
  };
  const Model& model_;
  Backend& be_;
  RopeParams rope_;
  std::unique_ptr<DeviceWeight> embd_, out_norm_, output_;
  std::vector<Layer> layers_;
};

}  // namespace cc
