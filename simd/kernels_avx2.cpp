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
  static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Q8_0 block: f16 d, 32 x int8.
  static float dot_q8_0(const uint8_t* p, const float* x, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, p += 34, x += 32) {
      uint16_t dh;
      std::memcpy(&dh, p, 2);
      __m256 t = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k) {
        const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * k));
        t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_loadu_ps(x + 8 * k), t);
      }
      acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(dh)), t, acc);
    }
    return hsum(acc);
  }
  // Q4_0 block: f16 d, 16 bytes of nibbles (low: elements 0..15, high: 16..31), q - 8.
  static float dot_q4_0(const uint8_t* p, const float* x, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i mask = _mm256_set1_epi32(0xF), eight = _mm256_set1_epi32(8);
    for (int64_t b = 0; b < nb; ++b, p += 18, x += 32) {
      uint16_t dh;
      std::memcpy(&dh, p, 2);
      __m256 t = _mm256_setzero_ps();
      for (int k = 0; k < 2; ++k) {
        const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * k)));
        const __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v, mask), eight));
        const __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v, 4), eight));
        t = _mm256_fmadd_ps(lo, _mm256_loadu_ps(x + 8 * k), t);
        t = _mm256_fmadd_ps(hi, _mm256_loadu_ps(x + 16 + 8 * k), t);
      }
      acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(dh)), t, acc);
    }
    return hsum(acc);
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
