// AVX-512 (F, BW, DQ, VL) + F16C kernels (compiled with -mavx512f -mavx512bw -mavx512dq
// -mavx512vl -mfma -mf16c).
#include <immintrin.h>

#include "simd/kernels_impl.h"

namespace cc::simd {

namespace {
struct CvtAvx512 {
  static void f16_to_f32(const uint16_t* s, float* d, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
    for (; i < n; ++i) d[i] = fp16_to_f32(s[i]);
  }
  static void bf16_to_f32(const uint16_t* s, float* d, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
      _mm512_storeu_ps(d + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
    for (; i < n; ++i) d[i] = cc::bf16_to_f32(s[i]);
  }
  static void f32_to_f16(const float* s, uint16_t* d, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) d[i] = cc::f32_to_fp16(s[i]);
  }
};
}  // namespace

const KernelTable& avx512_kernels() {
  static const KernelTable t = XKernels<xsimd::avx512bw, CvtAvx512>::table("avx512");
  return t;
}

}  // namespace cc::simd
