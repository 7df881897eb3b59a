// xsimd kernel bodies, templated on the xsimd architecture A and on a converter C that holds
// the ISA's half/bfloat16 conversions (xsimd 8.1 has none). Included only by the per-ISA
// translation units (kernels_avx2.cpp, kernels_avx512.cpp), each compiled with its own flags.
// C also provides dot_q8_0 / dot_q4_0(row, x, n_blocks): ggml block rows dotted with f32 x.
#pragma once
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "simd/convert.h"
#include "simd/kernels.h"

namespace cc::simd {

template <class A, class C>
struct XKernels {
  using B = xsimd::batch<float, A>;
  static constexpr int64_t W = static_cast<int64_t>(B::size);

  static float dot(const float* a, const float* b, int64_t n) {
    B s0(0.f), s1(0.f), s2(0.f), s3(0.f);
    int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
      s0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), s0);
      s1 = xsimd::fma(B::load_unaligned(a + i + W), B::load_unaligned(b + i + W), s1);
      s2 = xsimd::fma(B::load_unaligned(a + i + 2 * W), B::load_unaligned(b + i + 2 * W), s2);
      s3 = xsimd::fma(B::load_unaligned(a + i + 3 * W), B::load_unaligned(b + i + 3 * W), s3);
    }
    for (; i + W <= n; i += W) s0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), s0);
    float s = xsimd::hadd((s0 + s1) + (s2 + s3));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }

  static void axpy(float a, const float* x, float* y, int64_t n) {
    const B va(a);
    int64_t i = 0;
    for (; i + W <= n; i += W) xsimd::fma(va, B::load_unaligned(x + i), B::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += a * x[i];
  }

  static void scale(float* x, float s, int64_t n) {
    const B vs(s);
    int64_t i = 0;
    for (; i + W <= n; i += W) (B::load_unaligned(x + i) * vs).store_unaligned(x + i);
    for (; i < n; ++i) x[i] *= s;
  }

  static void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
    const float ss = dot(x, x, n);
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    const B vr(r);
    int64_t i = 0;
    for (; i + W <= n; i += W) (B::load_unaligned(x + i) * vr * B::load_unaligned(w + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] = x[i] * r * w[i];
  }

  static void swiglu(const float* g, const float* u, float* y, int64_t n) {
    const B one(1.f);
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      B gv = B::load_unaligned(g + i);
      (gv / (one + xsimd::exp(-gv)) * B::load_unaligned(u + i)).store_unaligned(y + i);
    }
    for (; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }

  static void softmax(float* x, int64_t n) {
    B vm(-INFINITY);
    int64_t i = 0;
    for (; i + W <= n; i += W) vm = xsimd::max(vm, B::load_unaligned(x + i));
    alignas(64) float lanes[64];
    vm.store_unaligned(lanes);
    float m = -INFINITY;
    for (int64_t k = 0; k < W; ++k) m = std::max(m, lanes[k]);
    for (; i < n; ++i) m = std::max(m, x[i]);
    const B bm(m);
    B vs(0.f);
    i = 0;
    for (; i + W <= n; i += W) {
      B e = xsimd::exp(B::load_unaligned(x + i) - bm);
      e.store_unaligned(x + i);
      vs += e;
    }
    float s = xsimd::hadd(vs);
    for (; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
    scale(x, 1.0f / s, n);
  }

  static void to_f32(DType t, const void* src, float* dst, int64_t n) {
    switch (t) {
      case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
      case DType::F16: C::f16_to_f32(static_cast<const uint16_t*>(src), dst, n); return;
      case DType::BF16: C::bf16_to_f32(static_cast<const uint16_t*>(src), dst, n); return;
      default: dequantize_row(t, src, dst, n); return;
    }
  }

  static void from_f32(DType t, const float* src, void* dst, int64_t n) {
    switch (t) {
      case DType::F16: C::f32_to_f16(src, static_cast<uint16_t*>(dst), n); return;
      default: quantize_row(t, src, dst, n); return;
    }
  }

  // dot(row of type t, x): the matrix-vector kernel of decode. Blocks are decoded into a small
  // stack buffer and consumed at once, so weights stream from memory exactly once.
  static float dot_row(DType t, const void* row, const float* x, int64_t n) {
    const auto* p = static_cast<const uint8_t*>(row);
    alignas(64) float tmp[256];
    float s = 0;
    switch (t) {
      case DType::F32: return dot(static_cast<const float*>(row), x, n);
      case DType::F16:
      case DType::BF16:
        for (int64_t i = 0; i < n; i += 256) {
          const int64_t len = std::min<int64_t>(256, n - i);
          if (t == DType::F16) C::f16_to_f32(reinterpret_cast<const uint16_t*>(p) + i, tmp, len);
          else C::bf16_to_f32(reinterpret_cast<const uint16_t*>(p) + i, tmp, len);
          s += dot(tmp, x + i, len);
        }
        return s;
      case DType::Q8_0: return C::dot_q8_0(p, x, n / 32);
      case DType::Q4_0: return C::dot_q4_0(p, x, n / 32);
      default: {  // K-quants: decode one 256-element super-block at a time
        const size_t bb = dtype_info(t).block_bytes;
        for (int64_t b = 0; b < n / 256; ++b) {
          dequantize_row(t, p + b * bb, tmp, 256);
          s += dot(tmp, x + 256 * b, 256);
        }
        return s;
      }
    }
  }

  static KernelTable table(const char* name) {
    return KernelTable{name, dot, axpy, scale, rmsnorm, swiglu, softmax, to_f32, from_f32, dot_row};
  }
};

}  // namespace cc::simd
