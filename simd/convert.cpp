#include "simd/convert.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "simd/kquants_impl.h"

namespace cc {

float fp16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3FF) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7F800000u | (mant << 13);
  } else {
    u = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0));
  }
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (ax < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to 0
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - e;  // value = m * 2^(e-150) = half_m * 2^-24
    uint32_t half_m = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_m & 1))) ++half_m;
    return static_cast<uint16_t>(sign | half_m);
  }
  uint32_t e = (ax >> 23) - 112;
  uint32_t m = ax & 0x7FFFFF;
  uint32_t h = (e << 10) | (m >> 13);
  uint32_t rem = m & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into exponent: correct
  return static_cast<uint16_t>(sign | h);
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

namespace {

inline uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void wr16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

void quant_q4_0(const float* x, uint8_t* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, b += 18) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    float d = max / -8;
    float id = d != 0 ? 1.0f / d : 0.0f;
    wr16(b, f32_to_fp16(d));
    for (int j = 0; j < 16; ++j) {
      int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      int q1 = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
      b[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quant_q8_0(const float* x, uint8_t* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, b += 34) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    float d = amax / 127;
    float id = d != 0 ? 1.0f / d : 0.0f;
    wr16(b, f32_to_fp16(d));
    for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[j] * id)));
  }
}

void quant_q4_k(const float* x, uint8_t* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 256, b += 144) {
    float scales[8], mins[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float lo = x[32 * j], hi = x[32 * j];
      for (int l = 1; l < 32; ++l) {
        lo = std::min(lo, x[32 * j + l]);
        hi = std::max(hi, x[32 * j + l]);
      }
      if (lo > 0) lo = 0;
      scales[j] = (hi - lo) / 15;
      mins[j] = -lo;
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    uint8_t* sc = b + 4;
    std::memset(sc, 0, 12);
    for (int j = 0; j < 8; ++j) {
      ls[j] = static_cast<uint8_t>(std::min(63L, std::lround(inv_scale * scales[j])));
      lm[j] = static_cast<uint8_t>(std::min(63L, std::lround(inv_min * mins[j])));
      if (j < 4) {
        sc[j] = ls[j];
        sc[j + 4] = lm[j];
      } else {
        sc[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
        sc[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
        sc[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
      }
    }
    uint16_t dh = f32_to_fp16(max_scale / 63.f), mh = f32_to_fp16(max_min / 63.f);
    wr16(b, dh);
    wr16(b + 2, mh);
    float d = fp16_to_f32(dh), dmin = fp16_to_f32(mh);
    uint8_t L[256];
    for (int j = 0; j < 8; ++j) {
      uint8_t s, m;
      kq::scale_min_k4(j, sc, &s, &m);
      float dd = d * s, dm = dmin * m;
      for (int l = 0; l < 32; ++l) {
        int q = dd > 0 ? static_cast<int>(std::lround((x[32 * j + l] + dm) / dd)) : 0;
        L[32 * j + l] = static_cast<uint8_t>(std::clamp(q, 0, 15));
      }
    }
    uint8_t* qs = b + 16;
    for (int j = 0; j < 256; j += 64) {
      for (int l = 0; l < 32; ++l) qs[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      qs += 32;
    }
  }
}

void quant_q6_k(const float* x, uint8_t* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 256, b += 210) {
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      float amax = 0, mx = 0;
      for (int l = 0; l < 16; ++l) {
        float v = x[16 * ib + l];
        if (std::fabs(v) > amax) {
          amax = std::fabs(v);
          mx = v;
        }
      }
      scales[ib] = mx / -32.f;
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    uint8_t* ql = b;
    uint8_t* qh = b + 128;
    auto* sc = reinterpret_cast<int8_t*>(b + 192);
    if (max_abs_scale == 0) {
      std::memset(b, 0, 210);
      continue;
    }
    float iscale = -128.f / max_scale;
    uint16_t dh = f32_to_fp16(1.f / iscale);
    wr16(b + 208, dh);
    float d = fp16_to_f32(dh);
    uint8_t L[256];
    for (int ib = 0; ib < 16; ++ib) {
      sc[ib] = static_cast<int8_t>(std::clamp(std::lround(iscale * scales[ib]), -128L, 127L));
      float dd = d * sc[ib];
      for (int l = 0; l < 16; ++l) {
        int q = dd != 0 ? static_cast<int>(std::lround(x[16 * ib + l] / dd)) : 0;
        L[16 * ib + l] = static_cast<uint8_t>(std::clamp(q, -32, 31) + 32);
      }
    }
    for (int j = 0; j < 256; j += 128) {
      for (int l = 0; l < 32; ++l) {
        uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF,
                q4 = L[j + l + 96] & 0xF;
        ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                     ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  const int64_t nb = n / dtype_info(t).block_elems;
  CC_ASSERT(n % dtype_info(t).block_elems == 0);
  switch (t) {
    case DType::F32: std::memcpy(dst, s, static_cast<size_t>(n) * 4); break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(rd16(s + 2 * i));
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(rd16(s + 2 * i));
      break;
    case DType::Q4_0: kq::dequant_q4_0(s, dst, nb); break;
    case DType::Q8_0: kq::dequant_q8_0(s, dst, nb); break;
    case DType::Q4_K: kq::dequant_q4_k(s, dst, nb); break;
    case DType::Q6_K: kq::dequant_q6_k(s, dst, nb); break;
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  const int64_t nb = n / dtype_info(t).block_elems;
  CC_ASSERT(n % dtype_info(t).block_elems == 0);
  switch (t) {
    case DType::F32: std::memcpy(d, src, static_cast<size_t>(n) * 4); break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) wr16(d + 2 * i, f32_to_fp16(src[i]));
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) wr16(d + 2 * i, f32_to_bf16(src[i]));
      break;
    case DType::Q4_0: quant_q4_0(src, d, nb); break;
    case DType::Q8_0: quant_q8_0(src, d, nb); break;
    case DType::Q4_K: quant_q4_k(src, d, nb); break;
    case DType::Q6_K: quant_q6_k(src, d, nb); break;
  }
}

}  // namespace cc
