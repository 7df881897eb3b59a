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
#include "simd/kquants_impl.h"

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

  static float max_of(const float* x, int64_t n) {  // -inf for n == 0
    B vm(-INFINITY);
    int64_t i = 0;
    for (; i + W <= n; i += W) vm = xsimd::max(vm, B::load_unaligned(x + i));
    alignas(64) float lanes[64];
    vm.store_aligned(lanes);
    float m = -INFINITY;
    for (int64_t k = 0; k < W; ++k) m = std::max(m, lanes[k]);
    for (; i < n; ++i) m = std::max(m, x[i]);
    return m;
  }

  static void softmax(float* x, int64_t n) {
    const float m = max_of(x, n);
    const B bm(m);
    B vs(0.f);
    int64_t i = 0;
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
      // Block formats decoded by this ISA's compilation of the shared loops.
      case DType::Q8_0: kq::dequant_q8_0(static_cast<const uint8_t*>(src), dst, n / 32); return;
      case DType::Q4_0: kq::dequant_q4_0(static_cast<const uint8_t*>(src), dst, n / 32); return;
      case DType::Q4_K: kq::dequant_q4_k(static_cast<const uint8_t*>(src), dst, n / 256); return;
      case DType::Q6_K: kq::dequant_q6_k(static_cast<const uint8_t*>(src), dst, n / 256); return;
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
      default: {  // K-quants: decode one 256-element super-block at a time, with this ISA's code
        const size_t bb = dtype_info(t).block_bytes;
        for (int64_t b = 0; b < n / 256; ++b) {
          if (t == DType::Q4_K) kq::dequant_q4_k(p + b * bb, tmp, 1);
          else if (t == DType::Q6_K) kq::dequant_q6_k(p + b * bb, tmp, 1);
          else dequantize_row(t, p + b * bb, tmp, 256);
          s += dot(tmp, x + 256 * b, 256);
        }
        return s;
      }
    }
  }

  static void rope(float* x, int64_t n_heads, int64_t hd, const float* cs, const float* sn, bool neox) {
    const int64_t half = hd / 2;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * hd;
      if (neox) {  // halves are contiguous: straight vector loads
        int64_t j = 0;
        for (; j + W <= half; j += W) {
          const B x0 = B::load_unaligned(v + j), x1 = B::load_unaligned(v + half + j);
          const B c = B::load_unaligned(cs + j), s = B::load_unaligned(sn + j);
          xsimd::fms(x0, c, x1 * s).store_unaligned(v + j);
          xsimd::fma(x0, s, x1 * c).store_unaligned(v + half + j);
        }
        for (; j < half; ++j) {
          const float x0 = v[j], x1 = v[half + j];
          v[j] = x0 * cs[j] - x1 * sn[j];
          v[half + j] = x0 * sn[j] + x1 * cs[j];
        }
      } else {  // interleaved pairs: gather W pairs into even/odd lanes, rotate, scatter back
        alignas(64) float ev[64], od[64];
        int64_t j = 0;
        for (; j + W <= half; j += W) {
          for (int64_t t = 0; t < W; ++t) {
            ev[t] = v[2 * (j + t)];
            od[t] = v[2 * (j + t) + 1];
          }
          const B x0 = B::load_aligned(ev), x1 = B::load_aligned(od);
          const B c = B::load_unaligned(cs + j), s = B::load_unaligned(sn + j);
          xsimd::fms(x0, c, x1 * s).store_aligned(ev);
          xsimd::fma(x0, s, x1 * c).store_aligned(od);
          for (int64_t t = 0; t < W; ++t) {
            v[2 * (j + t)] = ev[t];
            v[2 * (j + t) + 1] = od[t];
          }
        }
        for (; j < half; ++j) {
          const float x0 = v[2 * j], x1 = v[2 * j + 1];
          v[2 * j] = x0 * cs[j] - x1 * sn[j];
          v[2 * j + 1] = x0 * sn[j] + x1 * cs[j];
        }
      }
    }
  }

  static float softmax_step(float* s, int64_t n, float* m, float* l) {
    const float bm = max_of(s, n);
    if (bm == -INFINITY) {
      std::fill(s, s + n, 0.0f);
      return 1.0f;
    }
    const float nm = std::max(*m, bm);
    const float corr = std::exp(*m - nm);  // 0 when *m was -inf
    const B bnm(nm), ninf(-INFINITY), zero(0.f);
    B vs(0.f);
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const B x = B::load_unaligned(s + i);
      const B e = xsimd::select(x == ninf, zero, xsimd::exp(x - bnm));
      e.store_unaligned(s + i);
      vs += e;
    }
    float sum = xsimd::hadd(vs);
    for (; i < n; ++i) sum += (s[i] = s[i] == -INFINITY ? 0.0f : std::exp(s[i] - nm));
    *l = *l * corr + sum;
    *m = nm;
    return corr;
  }

  static KernelTable table(const char* name) {
    return KernelTable{name, dot, axpy, scale, rmsnorm, swiglu, softmax, to_f32, from_f32, dot_row, rope, softmax_step};
  }
};

}  // namespace cc::simd
