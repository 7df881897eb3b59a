// Vector kernels used by the CPU backend. One table per ISA, chosen once at start-up
// (CACHECLIP_ISA=generic|avx2|avx512 forces one). All pointers may be unaligned; n may be any
// size. Kernels never throw and never allocate.
#pragma once
#include <cstdint>

#include "simd/dtype.h"

namespace cc::simd {

struct KernelTable {
  const char* isa;
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a * x
  void (*scale)(float* x, float s, int64_t n);
  // y = x / sqrt(mean(x^2) + eps) * w  (y may alias x)
  void (*rmsnorm)(const float* x, const float* w, float* y, int64_t n, float eps);
  // y = silu(g) * u  (y may alias g or u)
  void (*swiglu)(const float* g, const float* u, float* y, int64_t n);
  // in place, numerically stable
  void (*softmax)(float* x, int64_t n);
  // n elements of type t (n a multiple of its block size) -> f32
  void (*to_f32)(DType t, const void* src, float* dst, int64_t n);
  // f32 -> F32/F16/BF16 (cache storage)
  void (*from_f32)(DType t, const float* src, void* dst, int64_t n);
};

// The table in use (selected on first call; thread-safe).
const KernelTable& kernels();
// The portable reference implementation (always available; the oracle for tests).
const KernelTable& generic_kernels();

}  // namespace cc::simd
