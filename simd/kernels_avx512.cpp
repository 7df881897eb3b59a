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
  // Q8_0 block: f16 d, 32 x int8. Sum over blocks of d * (q . x), one accumulator.
  static float dot_q8_0(const uint8_t* p, const float* x, int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, p += 34, x += 32) {
      uint16_t dh;
      std::memcpy(&dh, p, 2);
      const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
      const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18));
      __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), _mm512_loadu_ps(x));
      t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), _mm512_loadu_ps(x + 16), t);
      acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(dh)), t, acc);
    }
    return _mm512_reduce_add_ps(acc);
  }
  // Q4_0 block: f16 d, 16 bytes; low nibbles are elements 0..15, high nibbles 16..31; q - 8.
  static float dot_q4_0(const uint8_t* p, const float* x, int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    const __m512i mask = _mm512_set1_epi32(0xF), eight = _mm512_set1_epi32(8);
    for (int64_t b = 0; b < nb; ++b, p += 18, x += 32) {
      uint16_t dh;
      std::memcpy(&dh, p, 2);
      const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, mask), eight));
      const __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight));
      __m512 t = _mm512_mul_ps(lo, _mm512_loadu_ps(x));
      t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), t);
      acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(dh)), t, acc);
    }
    return _mm512_reduce_add_ps(acc);
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
