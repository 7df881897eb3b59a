// Element types of weights and caches. Numeric ids are ggml's (GGUF tensor_info.type), so a
// GGUF file's type field maps 1:1. Block-quantized types follow ggml's block layouts exactly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cc {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,   // block 32: f16 d, 16 bytes of nibbles; x = d * (q - 8)
  Q8_0 = 8,   // block 32: f16 d, 32 x int8;           x = d * q
  Q4_K = 12,  // super-block 256: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes nibbles
  Q6_K = 14,  // super-block 256: 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d
  BF16 = 30,
};

struct DTypeInfo {
  const char* name;
  int64_t block_elems;  // elements per block (1 for plain types)
  size_t block_bytes;   // bytes per block
};

// Info for a supported type. The id must be one of the enum values above.
const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }

// Maps a raw ggml type id to a supported DType; nullopt for ids cacheclip does not support.
std::optional<DType> dtype_from_ggml(uint32_t id);
// Human name of any ggml type id (also unsupported ones), for error messages: "Q5_K", "type 99".
std::string ggml_type_name(uint32_t id);
// Parses "f32", "F16", "bf16", "q8_0", "Q4_K"... (case-insensitive); nullopt if unknown.
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes of a row of n elements. n must be a multiple of the block size (checked by callers
// that validate files; CC_ASSERT here).
size_t dtype_row_bytes(DType t, int64_t n);
inline bool dtype_is_quantized(DType t) { return dtype_info(t).block_elems > 1; }

}  // namespace cc
