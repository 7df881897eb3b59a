// Element conversion and (de)quantization, scalar reference implementations. These are the
// oracle the xsimd kernels are tested against, and what the loaders/model writer use.
// Block layouts are ggml's, byte for byte (so GGUF files interoperate with llama.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd/dtype.h"

namespace cc {

// IEEE half <-> float, round-to-nearest-even, with inf/NaN/subnormals.
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);

// bfloat16 <-> float (round-to-nearest-even; NaN stays NaN).
inline float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);

// Decodes n elements (n a multiple of t's block size) from src (raw bytes of type t) into dst.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Encodes n floats into type t (n a multiple of the block size). dst must hold
// dtype_row_bytes(t, n) bytes. Quantizers use the plain ggml reference schemes.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace cc
