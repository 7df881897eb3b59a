// AVX512-BF16 matrix product for bf16 weights (compiled with -mavx512bf16): activations are
// rounded to bf16 once per call (as llama.cpp does for bf16 weights) and multiplied with
// vdpbf16ps, which does two bf16 products per fp32 lane: twice the fp32 FMA rate.
#include <immintrin.h>

#include <algorithm>
#include <cpuid.h>

#include "simd/kernels.h"

namespace cc::simd {

namespace {

// MR rows of x times NR rows of w, full K; acc kept in MR*NR zmm registers.
template <int MR, int NR>
void micro(const uint16_t* x, const uint16_t* w, int64_t K, float* y, int64_t ldy) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  const int64_t kfull = K / 32 * 32;
  for (int64_t k = 0; k < kfull; k += 32) {
    __m512i a[MR], b[NR];
    for (int i = 0; i < MR; ++i) a[i] = _mm512_loadu_si512(x + i * K + k);
    for (int j = 0; j < NR; ++j) b[j] = _mm512_loadu_si512(w + j * K + k);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a[i], (__m512bh)b[j]);
  }
  if (kfull < K) {
    const __mmask32 m = static_cast<__mmask32>((1ull << (K - kfull)) - 1);
    __m512i a[MR], b[NR];
    for (int i = 0; i < MR; ++i) a[i] = _mm512_maskz_loadu_epi16(m, x + i * K + kfull);
    for (int j = 0; j < NR; ++j) b[j] = _mm512_maskz_loadu_epi16(m, w + j * K + kfull);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a[i], (__m512bh)b[j]);
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = _mm512_reduce_add_ps(acc[i][j]);
}

template <int MR>
void micro_rows(int nr, const uint16_t* x, const uint16_t* w, int64_t K, float* y, int64_t ldy) {
  switch (nr) {
    case 4: micro<MR, 4>(x, w, K, y, ldy); break;
    case 3: micro<MR, 3>(x, w, K, y, ldy); break;
    case 2: micro<MR, 2>(x, w, K, y, ldy); break;
    default: micro<MR, 1>(x, w, K, y, ldy); break;
  }
}

}  // namespace

// y[i * ldy + j] = sum_k x[i, k] * w[j, k] for i < n, j < m (x: [n, K], w: [m, K], bf16, row-major).
void gemm_bf16_avx512(const uint16_t* x, int64_t n, const uint16_t* w, int64_t m, int64_t K, float* y, int64_t ldy) {
  for (int64_t j0 = 0; j0 < m; j0 += 4) {
    const int nr = static_cast<int>(std::min<int64_t>(4, m - j0));
    for (int64_t i0 = 0; i0 < n; i0 += 4) {
      const int mr = static_cast<int>(std::min<int64_t>(4, n - i0));
      const uint16_t* xp = x + i0 * K;
      const uint16_t* wp = w + j0 * K;
      float* yp = y + i0 * ldy + j0;
      switch (mr) {
        case 4: micro_rows<4>(nr, xp, wp, K, yp, ldy); break;
        case 3: micro_rows<3>(nr, xp, wp, K, yp, ldy); break;
        case 2: micro_rows<2>(nr, xp, wp, K, yp, ldy); break;
        default: micro_rows<1>(nr, xp, wp, K, yp, ldy); break;
      }
    }
  }
}

// f32 -> bf16 with round-to-nearest-even, 32 at a time.
void f32_to_bf16_avx512(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + i + 16), _mm512_loadu_ps(s + i));
    _mm512_storeu_si512(d + i, (__m512i)v);
  }
  for (; i < n; ++i) {
    uint32_t u;
    __builtin_memcpy(&u, s + i, 4);
    u += 0x7FFF + ((u >> 16) & 1);
    d[i] = static_cast<uint16_t>(u >> 16);
  }
}

bool cpu_has_avx512_bf16() {  // CPUID.(EAX=7, ECX=1):EAX bit 5
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return (a & (1u << 5)) != 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

}  // namespace cc::simd
