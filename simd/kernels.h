// Vector kernels used by the CPU backend. One table per ISA, chosen once at start-up
// (CACHECLIP_ISA=generic|avx2|avx512 forces one). All pointers may be unaligned; n may be any
// size. Kernels never throw and never allocate.
#pragma once
#include <cstdint>
#include <vector>

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
  // f32 -> F32/F16/BF16 (cache storage) or any quantized type
  void (*from_f32)(DType t, const float* src, void* dst, int64_t n);
  // sum_i row[i] * x[i] for a weight row of type t (n a multiple of its block size):
  // the matrix-vector kernel of decode, reading the row once in its stored format.
  float (*dot_row)(DType t, const void* row, const float* x, int64_t n);
  // RoPE on one row of n_heads heads of hd dims, in place: pair (a, b) of head h is rotated by
  // the angle whose cosine and sine are cs[j], sn[j] (j < hd / 2). Pairs are (j, j + hd/2) when
  // neox, (2j, 2j+1) otherwise. Passing -sn rotates back (R(-p) = R(p)^-1).
  void (*rope)(float* x, int64_t n_heads, int64_t hd, const float* cs, const float* sn, bool neox);
  // One step of an online softmax over a block of n scores (-inf = masked): with the running
  // max m and sum l of the row so far, sets s[i] = exp(s[i] - m') (0 where masked), l = l * c +
  // sum(s), m = m', and returns the factor c = exp(m - m') by which earlier partial outputs must
  // be scaled (1 when the block is fully masked, and then s is all zeros).
  float (*softmax_step)(float* s, int64_t n, float* m, float* l);
};

// The table in use. Chosen once, on first use, as the best ISA this CPU runs, or the one
// named by CACHECLIP_ISA (generic, avx2, avx512). Throws cc::Error (on first use only) when
// CACHECLIP_ISA names an unknown ISA or one this CPU cannot run.
const KernelTable& kernels();
// Matrix product for bf16 weights with AVX512-BF16 (vdpbf16ps), or nullptr when the CPU or
// CACHECLIP_ISA (anything but avx512) rules it out. y[i*ldy + j] = sum_k x[i,k] w[j,k], with x
// [n, K] and w [m, K] bf16. The activations must be rounded to bf16 first (f32_to_bf16).
struct Bf16Gemm {
  void (*gemm)(const uint16_t* x, int64_t n, const uint16_t* w, int64_t m, int64_t K, float* y, int64_t ldy);
  void (*f32_to_bf16)(const float* src, uint16_t* dst, int64_t n);
};
const Bf16Gemm* bf16_gemm();
// The same two operations in plain scalar code (fp32 accumulation, round-to-nearest-even), on
// any CPU: the oracle the AVX512-BF16 kernel is tested against, and what lets tests run the CPU
// backend's BF16 route where the CPU lacks AVX512-BF16 (CpuBackendOptions::bf16 = Portable).
// Slow: never chosen for production.
const Bf16Gemm& portable_bf16_gemm();

// The portable reference implementation (always available; the oracle for tests).
const KernelTable& generic_kernels();
// Every table compiled in that this CPU can run, generic first.
std::vector<const KernelTable*> runnable_kernels();

}  // namespace cc::simd
