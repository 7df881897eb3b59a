// Portable kernels: plain loops the compiler may auto-vectorise. Also the test oracle.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "simd/convert.h"
#include "simd/kernels.h"

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

const KernelTable kGeneric{"generic", dot, axpy, scale, rmsnorm, swiglu, softmax, to_f32, from_f32};

}  // namespace

const KernelTable& generic_kernels() { return kGeneric; }

const KernelTable& kernels() {
  // Only the generic table exists so far; CACHECLIP_ISA names are validated so a typo is seen.
  static const KernelTable& chosen = [] () -> const KernelTable& {
    const char* env = std::getenv("CACHECLIP_ISA");
    if (env && *env && std::string(env) != "generic") {
      std::fprintf(stderr, "cacheclip: CACHECLIP_ISA=%s is not compiled in; using generic\n", env);
    }
    return kGeneric;
  }();
  return chosen;
}

}  // namespace cc::simd
