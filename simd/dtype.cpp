#include "simd/dtype.h"

#include <cctype>

#include "base/error.h"

namespace cc {

namespace {
constexpr DTypeInfo kF32{"F32", 1, 4};
constexpr DTypeInfo kF16{"F16", 1, 2};
constexpr DTypeInfo kBF16{"BF16", 1, 2};
constexpr DTypeInfo kQ4_0{"Q4_0", 32, 18};
constexpr DTypeInfo kQ8_0{"Q8_0", 32, 34};
constexpr DTypeInfo kQ4_K{"Q4_K", 256, 144};
constexpr DTypeInfo kQ6_K{"Q6_K", 256, 210};
}  // namespace

const DTypeInfo& dtype_info(DType t) {
  switch (t) {
    case DType::F32: return kF32;
    case DType::F16: return kF16;
    case DType::BF16: return kBF16;
    case DType::Q4_0: return kQ4_0;
    case DType::Q8_0: return kQ8_0;
    case DType::Q4_K: return kQ4_K;
    case DType::Q6_K: return kQ6_K;
  }
  CC_ASSERT(false && "unknown DType");
  return kF32;
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  switch (id) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 2: return DType::Q4_0;
    case 8: return DType::Q8_0;
    case 12: return DType::Q4_K;
    case 14: return DType::Q6_K;
    case 30: return DType::BF16;
    default: return std::nullopt;
  }
}

std::string ggml_type_name(uint32_t id) {
  static const char* names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0",
                                "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
                                "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32",
                                "I64", "F64", "IQ1_M", "BF16"};
  if (id < sizeof(names) / sizeof(names[0])) return names[id];
  return cat("type ", id);
}

std::optional<DType> dtype_from_name(std::string_view name) {
  std::string up;
  for (char c : name) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q8_0, DType::Q4_K,
                  DType::Q6_K}) {
    if (up == dtype_info(t).name) return t;
  }
  return std::nullopt;
}

size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo& i = dtype_info(t);
  CC_ASSERT(n % i.block_elems == 0);
  return static_cast<size_t>(n / i.block_elems) * i.block_bytes;
}

}  // namespace cc
