// Portable kernels: plain loops the compiler may auto-vectorise. Also the test oracle.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "simd/convert.h"
#include "simd/kernels.h"
#include "base/error.h"
#include <algorithm>
#include <cpuid.h>

namespace cc::simd {

namespace {

float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
}

void swiglu(const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void softmax(float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  const float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void to_f32(DType t, const void* src, float* dst, int64_t n) { dequantize_row(t, src, dst, n); }
void from_f32(DType t, const float* src, void* dst, int64_t n) { quantize_row(t, src, dst, n); }

float dot_row(DType t, const void* row, const float* x, int64_t n) {
  const int64_t be = dtype_info(t).block_elems == 1 ? 256 : dtype_info(t).block_elems;
  const size_t bb = dtype_row_bytes(t, be);
  const auto* p = static_cast<const uint8_t*>(row);
  float tmp[256];
  double s = 0;
  for (int64_t i = 0; i < n; i += be) {
    const int64_t len = std::min(be, n - i);
    dequantize_row(t, p + (i / be) * bb, tmp, len);
    s += dot(tmp, x + i, len);
  }
  return static_cast<float>(s);
}

void rope(float* x, int64_t n_heads, int64_t hd, const float* cs, const float* sn, bool neox) {
  const int64_t half = hd / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * hd;
    for (int64_t j = 0; j < half; ++j) {
      const int64_t a = neox ? j : 2 * j, b = neox ? j + half : 2 * j + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[j] - x1 * sn[j];
      v[b] = x0 * sn[j] + x1 * cs[j];
    }
  }
}

float softmax_step(float* s, int64_t n, float* m, float* l) {
  float bm = -INFINITY;
  for (int64_t i = 0; i < n; ++i) bm = s[i] > bm ? s[i] : bm;
  if (bm == -INFINITY) {
    for (int64_t i = 0; i < n; ++i) s[i] = 0.0f;
    return 1.0f;
  }
  const float nm = *m > bm ? *m : bm;
  const float corr = std::exp(*m - nm);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (s[i] = s[i] == -INFINITY ? 0.0f : std::exp(s[i] - nm));
  *l = *l * corr + sum;
  *m = nm;
  return corr;
}

const KernelTable kGeneric{"generic", dot,     axpy,    scale, rmsnorm, swiglu, softmax,
                           to_f32,    from_f32, dot_row, rope,  softmax_step};

bool cpu_has_f16c() {  // CPUID.1:ECX bit 29 (not every compiler's __builtin_cpu_supports knows it)
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
bool cpu_has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}
bool cpu_has_avx512() {
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

}  // namespace

const KernelTable& avx2_kernels();    // kernels_avx2.cpp
const KernelTable& avx512_kernels();  // kernels_avx512.cpp

const KernelTable& generic_kernels() { return kGeneric; }

void gemm_bf16_avx512(const uint16_t* x, int64_t n, const uint16_t* w, int64_t m, int64_t K, float* y, int64_t ldy);
void f32_to_bf16_avx512(const float* s, uint16_t* d, int64_t n);
bool cpu_has_avx512_bf16();

namespace {
// 16 independent partial sums per product (as vdpbf16ps keeps 16 lanes), so the compiler can
// vectorise the loop without reassociating a single sum.
void gemm_bf16_portable(const uint16_t* x, int64_t n, const uint16_t* w, int64_t m, int64_t K, float* y, int64_t ldy) {
  constexpr int64_t L = 16;
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* xr = x + i * K;
    for (int64_t j = 0; j < m; ++j) {
      const uint16_t* wr = w + j * K;
      float acc[L] = {};
      int64_t k = 0;
      for (; k + L <= K; k += L) {
        for (int64_t l = 0; l < L; ++l) {
          uint32_t a = static_cast<uint32_t>(xr[k + l]) << 16, b = static_cast<uint32_t>(wr[k + l]) << 16;
          float fa, fb;
          std::memcpy(&fa, &a, 4);
          std::memcpy(&fb, &b, 4);
          acc[l] += fa * fb;
        }
      }
      float s = 0;
      for (int64_t l = 0; l < L; ++l) s += acc[l];
      for (; k < K; ++k) s += bf16_to_f32(xr[k]) * bf16_to_f32(wr[k]);
      y[i * ldy + j] = s;
    }
  }
}
void f32_to_bf16_portable(const float* s, uint16_t* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(s[i]);
}
}  // namespace

const Bf16Gemm& portable_bf16_gemm() {
  static const Bf16Gemm table{gemm_bf16_portable, f32_to_bf16_portable};
  return table;
}

const Bf16Gemm* bf16_gemm() {
  static const Bf16Gemm table{gemm_bf16_avx512, f32_to_bf16_avx512};
  static const Bf16Gemm* chosen =
      (std::string(kernels().isa) == "avx512" && cpu_has_avx512_bf16()) ? &table : nullptr;
  return chosen;
}

std::vector<const KernelTable*> runnable_kernels() {
  std::vector<const KernelTable*> out = {&kGeneric};
  if (cpu_has_avx2()) out.push_back(&avx2_kernels());
  if (cpu_has_avx512()) out.push_back(&avx512_kernels());
  return out;
}

const KernelTable& kernels() {
  static const KernelTable* chosen = [] {
    const auto all = runnable_kernels();
    const char* env = std::getenv("CACHECLIP_ISA");
    if (!env || !*env) return all.back();
    std::string names;
    for (const auto* t : all) {
      if (env == std::string(t->isa)) return t;
      names += (names.empty() ? "" : ", ") + std::string(t->isa);
    }
    fail("CACHECLIP_ISA=", env, " is not an ISA this build and CPU can run (available: ", names, ")");
  }();
  return *chosen;
}

}  // namespace cc::simd
