// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include "simd/kernels_impl.h"

namespace cc::simd {

namespace {
struct CvtAvx2 {
  static void f16_to_f32(const uint16_t* s, float* d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    for (; i < n; ++i) d[i] = fp16_to_f32(s[i]);
  }
  static void bf16_to_f32(const uint16_t* s, float* d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
      _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; ++i) d[i] = cc::bf16_to_f32(s[i]);
  }
  static void f32_to_f16(const float* s, uint16_t* d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) d[i] = cc::f32_to_fp16(s[i]);
  }
};
}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable t = XKernels<xsimd::fma3<xsimd::avx2>, CvtAvx2>::table("avx2");
  return t;
}

}  // namespace cc::simd
