// Conversion and (de)quantization reference kernels.
#include <cmath>
#include <random>

#include "simd/convert.h"
#include "test_util.h"

namespace cc {
namespace {

TEST(Fp16, AllHalfValuesRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_f32(static_cast<uint16_t>(h));
    uint16_t back = f32_to_fp16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_f32(back))) << h;
    } else {
      EXPECT_EQ(back, h) << "half 0x" << std::hex << h;
    }
  }
}

TEST(Fp16, MatchesCompilerHalfConversionOnRandomFloats) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    float f;
    std::memcpy(&f, &u, 4);
    if (std::isnan(f)) continue;
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t rb;
    std::memcpy(&rb, &ref, 2);
    ASSERT_EQ(f32_to_fp16(f), rb) << "float bits 0x" << std::hex << u;
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  float halfway;  // 1 + 2^-8: exactly between two bf16 values, rounds to even (1.0)
  uint32_t u = 0x3F808000u;
  std::memcpy(&halfway, &u, 4);
  EXPECT_EQ(f32_to_bf16(halfway), 0x3F80);
  u = 0x3F818000u;  // halfway above an odd mantissa: rounds up
  std::memcpy(&halfway, &u, 4);
  EXPECT_EQ(f32_to_bf16(halfway), 0x3F82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = bf16_to_f32(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      EXPECT_EQ(f32_to_bf16(f), b);
    }
  }
}

// Quantize -> dequantize error relative to the signal, per type (random normal data).
class QuantRoundTrip : public ::testing::TestWithParam<std::pair<DType, double>> {};

TEST_P(QuantRoundTrip, ErrorWithinBound) {
  auto [type, max_nse] = GetParam();
  const int64_t n = 256 * 12;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n), y(n);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(dtype_row_bytes(type, n));
  quantize_row(type, x.data(), q.data(), n);
  dequantize_row(type, q.data(), y.data(), n);
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += x[i] * x[i];
  }
  EXPECT_LT(num / den, max_nse) << dtype_name(type);
  EXPECT_GT(num / den, 0.0) << "a lossy type reproduced random data exactly: suspicious";
}

INSTANTIATE_TEST_SUITE_P(Types, QuantRoundTrip,
                         ::testing::Values(std::make_pair(DType::F16, 1e-6), std::make_pair(DType::BF16, 3e-5),
                                           std::make_pair(DType::Q8_0, 1e-4), std::make_pair(DType::Q6_K, 2e-3),
                                           std::make_pair(DType::Q4_0, 1.5e-2),
                                           std::make_pair(DType::Q4_K, 1.5e-2)));

TEST(Dequant, Q8_0HandBuiltBlock) {
  uint8_t b[34];
  uint16_t d = f32_to_fp16(0.5f);
  std::memcpy(b, &d, 2);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  float y[32];
  dequantize_row(DType::Q8_0, b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_FLOAT_EQ(y[j], 0.5f * (j - 16));
}

TEST(Dequant, Q4_0HandBuiltBlock) {
  uint8_t b[18];
  uint16_t d = f32_to_fp16(2.0f);
  std::memcpy(b, &d, 2);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_0, b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_FLOAT_EQ(y[j], 2.0f * (j - 8));           // low nibbles: first half
    EXPECT_FLOAT_EQ(y[j + 16], 2.0f * (15 - j - 8));  // high nibbles: second half
  }
}

TEST(Dequant, Q4_KHandBuiltBlock) {
  // d = 1, dmin = 0.5; sub-block j has scale j+1 and min j (6-bit packing of ggml).
  uint8_t b[144] = {};
  uint16_t d = f32_to_fp16(1.0f), dm = f32_to_fp16(0.5f);
  std::memcpy(b, &d, 2);
  std::memcpy(b + 2, &dm, 2);
  uint8_t* sc = b + 4;
  for (int j = 0; j < 8; ++j) {
    uint8_t ls = static_cast<uint8_t>(j + 1 + (j >= 4 ? 16 : 0)), lm = static_cast<uint8_t>(j + (j >= 4 ? 32 : 0));
    if (j < 4) {
      sc[j] = ls, sc[j + 4] = lm;
    } else {
      sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      sc[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      sc[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  for (int l = 0; l < 128; ++l) b[16 + l] = static_cast<uint8_t>((l % 16) | ((15 - l % 16) << 4));
  float y[256];
  dequantize_row(DType::Q4_K, b, y, 256);
  for (int j = 0; j < 8; ++j) {
    float s = static_cast<float>(j + 1 + (j >= 4 ? 16 : 0)), m = 0.5f * static_cast<float>(j + (j >= 4 ? 32 : 0));
    int chunk = j / 2;  // 64 values per pair of sub-blocks share 32 bytes
    for (int l = 0; l < 32; ++l) {
      uint8_t byte = b[16 + chunk * 32 + l];
      int q = (j % 2 == 0) ? (byte & 0xF) : (byte >> 4);
      ASSERT_FLOAT_EQ(y[32 * j + l], s * q - m) << "sub-block " << j << " elem " << l;
    }
  }
}

}  // namespace
}  // namespace cc
