// Blockwise (flash-style) attention with an online softmax, GQA and an explicit per-row causal
// limit by global position. Split into independent tasks (one KV head x one block of query
// rows) so a backend can spread them over its own thread team; each task uses one kernel
// table (an ISA) and a caller-provided scratch area, and never allocates.
//
// Task (g, i0): the G = n_heads / n_kv_heads query heads of KV head g for query rows
// [i0, i0 + kAttnQB) share every K and V row, so each block of kAttnKB cache slots is
// converted to f32 once and used by all of them through two small sgemms (S = Q K^T and
// acc += P V); the online-softmax step between them is a kernel of the table.
#pragma once
#include <cstddef>
#include <cstdint>

#include "simd/dtype.h"
#include "simd/kernels.h"

namespace cc::simd {

inline constexpr int64_t kAttnQB = 32, kAttnKB = 64;

struct AttnArgs {
  const float* q = nullptr;        // [n, n_heads * hd]
  const uint8_t* k_cache = nullptr;  // [n_slots, n_kv_heads * hd] of `type`
  const uint8_t* v_cache = nullptr;
  DType type = DType::F32;           // F32, F16 or BF16
  const int64_t* qpos = nullptr;     // [n]: row i sees slots with 0 <= slot_pos[s] <= qpos[i]
  const int64_t* slot_pos = nullptr; // [n_slots]; -1 = empty (never seen)
  int64_t n_slots = 0;
  float* out = nullptr;              // [n, n_heads * hd]
  float* lse = nullptr;              // optional [n, n_heads]: log-sum-exp of the scaled logits
                                     // (-inf for a row that sees no key)
  int64_t n = 0, n_heads = 0, n_kv_heads = 0, hd = 0;
  float scale = 0.0f;                // logit scale; 0 = 1 / sqrt(hd)
};

// Number of independent tasks and the scratch floats one task needs.
int64_t attention_tasks(const AttnArgs& a);
size_t attention_scratch_floats(const AttnArgs& a);
// Runs task t (0 <= t < attention_tasks(a)) with kernel table K. A row that sees no key gets a
// zero output.
void attention_task(const KernelTable& K, const AttnArgs& a, int64_t t, float* scratch);

}  // namespace cc::simd
