#include "simd/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace cc::simd {

namespace {
int64_t group(const AttnArgs& a) { return a.n_heads / a.n_kv_heads; }
}  // namespace

int64_t attention_tasks(const AttnArgs& a) { return (a.n + kAttnQB - 1) / kAttnQB * a.n_kv_heads; }

size_t attention_scratch_floats(const AttnArgs& a) {
  const int64_t R = kAttnQB * group(a), hd = a.hd;
  // Q [R, hd], K and V blocks [KB, hd], S [R, KB], m and l [R], acc [R, hd].
  return static_cast<size_t>(R * hd + 2 * kAttnKB * hd + R * kAttnKB + 2 * R + R * hd);
}

void attention_task(const KernelTable& K, const AttnArgs& a, int64_t task, float* scratch) {
  const int64_t G = group(a), R = kAttnQB * G, hd = a.hd, kv_dim = a.n_kv_heads * hd;
  const size_t rb = dtype_row_bytes(a.type, kv_dim), hb = dtype_row_bytes(a.type, hd);
  const float scale = a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(hd));
  float* Qm = scratch;
  float* Kf = Qm + R * hd;
  float* Vf = Kf + kAttnKB * hd;
  float* S = Vf + kAttnKB * hd;
  float* m = S + R * kAttnKB;
  float* l = m + R;
  float* acc = l + R;

  const int64_t g = task % a.n_kv_heads, i0 = (task / a.n_kv_heads) * kAttnQB, qn = std::min(kAttnQB, a.n - i0);
  const int64_t rows = qn * G;  // query vector r = (row i0 + r / G, head g * G + r % G)
  int64_t max_pos = -1;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r / G, h = g * G + r % G;
    const float* src = a.q + (i * a.n_heads + h) * hd;
    for (int64_t d = 0; d < hd; ++d) Qm[r * hd + d] = src[d] * scale;
    max_pos = std::max(max_pos, a.qpos[i]);
  }
  std::fill(m, m + rows, -INFINITY);
  std::fill(l, l + rows, 0.0f);
  std::fill(acc, acc + rows * hd, 0.0f);
  for (int64_t s0 = 0; s0 < a.n_slots; s0 += kAttnKB) {
    const int64_t sn = std::min(kAttnKB, a.n_slots - s0);
    bool any = false;
    for (int64_t s = 0; s < sn; ++s) {
      const int64_t p = a.slot_pos[s0 + s];
      any |= p >= 0 && p <= max_pos;
    }
    if (!any) continue;  // fully masked block (e.g. the causal future): skip its work
    for (int64_t s = 0; s < sn; ++s) {
      K.to_f32(a.type, a.k_cache + (s0 + s) * rb + g * hb, Kf + s * hd, hd);
      K.to_f32(a.type, a.v_cache + (s0 + s) * rb + g * hb, Vf + s * hd, hd);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(sn),
                static_cast<int>(hd), 1.0f, Qm, static_cast<int>(hd), Kf, static_cast<int>(hd), 0.0f, S,
                static_cast<int>(kAttnKB));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t limit = a.qpos[i0 + r / G];
      float* sr = S + r * kAttnKB;
      for (int64_t s = 0; s < sn; ++s) {
        const int64_t p = a.slot_pos[s0 + s];
        if (p < 0 || p > limit) sr[s] = -INFINITY;
      }
      const float corr = K.softmax_step(sr, sn, m + r, l + r);
      if (corr != 1.0f) K.scale(acc + r * hd, corr, hd);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(hd),
                static_cast<int>(sn), 1.0f, S, static_cast<int>(kAttnKB), Vf, static_cast<int>(hd), 1.0f, acc,
                static_cast<int>(hd));
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r / G, h = g * G + r % G;
    float* o = a.out + (i * a.n_heads + h) * hd;
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;  // no visible key: zero output
    for (int64_t d = 0; d < hd; ++d) o[d] = acc[r * hd + d] * inv;
    if (a.lse) a.lse[i * a.n_heads + h] = l[r] > 0 ? m[r] + std::log(l[r]) : -INFINITY;
  }
}

}  // namespace cc::simd
