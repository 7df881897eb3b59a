// Block decoding of ggml's Q8_0, Q4_0, Q4_K and Q6_K layouts, inline so that every translation
// unit that includes it compiles the loops with its own ISA flags (the per-ISA kernel tables
// decode super-blocks with AVX2 / AVX-512 code this way; convert.cpp is the portable one).
#pragma once
#include <cstdint>
#include <cstring>

#include "simd/convert.h"

namespace cc::kq {

inline uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Q4_0: the low nibbles are elements 0..15, the high ones 16..31 (values - 8), one f16 scale.
inline void dequant_q4_0(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 18, y += 32) {
    const float d = fp16_to_f32(rd16(b));
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) y[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
    for (int j = 0; j < 16; ++j) y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

inline void dequant_q8_0(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 34, y += 32) {
    const float d = fp16_to_f32(rd16(b));
    const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
  }
}

// Q4_K 6-bit scale/min unpacking (ggml get_scale_min_k4).
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

inline void dequant_q4_k(const uint8_t* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, b += 144) {
    float d = fp16_to_f32(rd16(b));
    float dmin = fp16_to_f32(rd16(b + 2));
    const uint8_t* scales = b + 4;
    const uint8_t* q = b + 16;
    int is = 0;
    for (int j = 0; j < 256; j += 64) {
      uint8_t sc, m;
      scale_min_k4(is, scales, &sc, &m);
      float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(is + 1, scales, &sc, &m);
      float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

inline void dequant_q6_k(const uint8_t* b, float* y, int64_t nb) {
  // Two passes the compiler vectorizes: byte arithmetic into 6-bit values, then int8 -> float
  // times the scale of each group of 16 (element e of a 128-half uses scale e / 16).
  for (int64_t i = 0; i < nb; ++i, b += 210, y += 256) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = fp16_to_f32(rd16(b + 208));
    int8_t q[256];
    for (int n = 0; n < 2; ++n) {
      const uint8_t* L = ql + 64 * n;
      const uint8_t* Hh = qh + 32 * n;
      int8_t* o = q + 128 * n;
      for (int l = 0; l < 32; ++l) {
        o[l] = static_cast<int8_t>(((L[l] & 0xF) | ((Hh[l] & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((L[l + 32] & 0xF) | (((Hh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((L[l] >> 4) | (((Hh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((L[l + 32] >> 4) | (((Hh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    for (int g = 0; g < 16; ++g) {
      const float s = d * static_cast<float>(sc[g]);
      for (int e = 0; e < 16; ++e) y[16 * g + e] = s * static_cast<float>(q[16 * g + e]);
    }
  }
}

}  // namespace cc::kq
