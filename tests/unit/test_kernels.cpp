// Every kernel of every ISA this CPU runs, against the generic (scalar) oracle: sizes that are
// not multiples of any vector width, and pointers misaligned by one float.
#include <cmath>
#include <random>

#include "simd/convert.h"
#include "simd/kernels.h"
#include "test_util.h"

namespace cc::simd {
namespace {

double nse(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return den == 0 ? num : num / den;
}

const int64_t kSizes[] = {1, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 255, 257, 1000, 4099};

std::vector<float> randv(int64_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n) + 1);  // +1: room for a misaligned view
  for (auto& x : v) x = nd(rng);
  return v;
}

class Kernels : public ::testing::TestWithParam<const KernelTable*> {};

TEST_P(Kernels, VectorOpsMatchOracle) {
  const KernelTable& k = *GetParam();
  const KernelTable& g = generic_kernels();
  for (int64_t n : kSizes) {
    for (int off : {0, 1}) {
      auto a = randv(n, 1), b = randv(n, 2), w = randv(n, 3);
      const float* pa = a.data() + off;
      const float* pb = b.data() + off;
      const float d = k.dot(pa, pb, n), dg = g.dot(pa, pb, n);
      EXPECT_NEAR(d, dg, 1e-4 * (1 + std::sqrt(static_cast<double>(n)))) << k.isa << " n=" << n;

      std::vector<float> y1(b.begin() + off, b.begin() + off + n), y2 = y1;
      k.axpy(0.75f, pa, y1.data(), n);
      g.axpy(0.75f, pa, y2.data(), n);
      EXPECT_LE(nse(y1.data(), y2.data(), n), 1e-12) << "axpy " << k.isa << " n=" << n;

      std::vector<float> r1(static_cast<size_t>(n)), r2(r1);
      k.rmsnorm(pa, w.data() + off, r1.data(), n, 1e-5f);
      g.rmsnorm(pa, w.data() + off, r2.data(), n, 1e-5f);
      EXPECT_LE(nse(r1.data(), r2.data(), n), 1e-10) << "rmsnorm " << k.isa << " n=" << n;

      k.swiglu(pa, pb, r1.data(), n);
      g.swiglu(pa, pb, r2.data(), n);
      EXPECT_LE(nse(r1.data(), r2.data(), n), 1e-10) << "swiglu " << k.isa << " n=" << n;

      std::vector<float> s1(a.begin() + off, a.begin() + off + n), s2 = s1;
      for (auto& x : s1) x *= 8;  // larger logits
      for (auto& x : s2) x *= 8;
      k.softmax(s1.data(), n);
      g.softmax(s2.data(), n);
      EXPECT_LE(nse(s1.data(), s2.data(), n), 1e-10) << "softmax " << k.isa << " n=" << n;
      double sum = 0;
      for (float x : s1) sum += x;
      EXPECT_NEAR(sum, 1.0, 1e-5);

      k.scale(s1.data(), 3.0f, n);
      g.scale(s2.data(), 3.0f, n);
      EXPECT_LE(nse(s1.data(), s2.data(), n), 1e-10) << "scale " << k.isa;
    }
  }
}

TEST_P(Kernels, ConversionsMatchOracleExactly) {
  const KernelTable& k = *GetParam();
  for (int64_t n : kSizes) {
    auto x = randv(n, 4, 3.0f);
    for (DType t : {DType::F16, DType::BF16}) {
      std::vector<uint8_t> q1(dtype_row_bytes(t, n) + 2), q2(q1.size());
      k.from_f32(t, x.data() + 1, q1.data() + 2, n);  // misaligned source and destination
      generic_kernels().from_f32(t, x.data() + 1, q2.data() + 2, n);
      EXPECT_EQ(q1, q2) << k.isa << " " << dtype_name(t) << " n=" << n;
      std::vector<float> y1(static_cast<size_t>(n)), y2(y1);
      k.to_f32(t, q1.data() + 2, y1.data(), n);
      generic_kernels().to_f32(t, q1.data() + 2, y2.data(), n);
      EXPECT_EQ(y1, y2) << k.isa << " " << dtype_name(t) << " n=" << n;
    }
  }
}

TEST_P(Kernels, DotRowEveryWeightType) {
  const KernelTable& k = *GetParam();
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t be = dtype_info(t).block_elems;
    for (int64_t n : {be * 1, be * 3, be * 9 + (be == 1 ? 5 : 0)}) {
      auto w = randv(n, 5), x = randv(n, 6);
      std::vector<uint8_t> q(dtype_row_bytes(t, n) + 1);
      quantize_row(t, w.data(), q.data() + 1, n);  // misaligned weight row
      std::vector<float> deq(static_cast<size_t>(n));
      dequantize_row(t, q.data() + 1, deq.data(), n);
      double ref = 0;
      for (int64_t i = 0; i < n; ++i) ref += static_cast<double>(deq[i]) * x[i + 1];
      const float got = k.dot_row(t, q.data() + 1, x.data() + 1, n);
      EXPECT_NEAR(got, ref, 1e-4 * (1 + std::sqrt(static_cast<double>(n)))) << k.isa << " " << dtype_name(t) << " n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, Kernels, ::testing::ValuesIn(runnable_kernels()),
                         [](const auto& info) { return std::string(info.param->isa); });

TEST(Bf16Gemm, MatchesDoublePrecisionOnEdgeShapes) {
  const Bf16Gemm* g = bf16_gemm();
  if (!g) GTEST_SKIP() << "this CPU (or CACHECLIP_ISA) has no AVX512-BF16";
  for (int64_t K : {2, 30, 32, 34, 62, 64, 898}) {
    for (int64_t n : {1, 3, 4, 5, 9}) {
      for (int64_t m : {1, 2, 4, 7, 13}) {
        auto xf = randv(n * K, 7), wf = randv(m * K, 8);
        std::vector<uint16_t> x(static_cast<size_t>(n * K)), w(static_cast<size_t>(m * K));
        g->f32_to_bf16(xf.data(), x.data(), n * K);
        for (int64_t i = 0; i < n * K; ++i) ASSERT_EQ(x[i], f32_to_bf16(xf[i])) << "rounding differs at " << i;
        for (int64_t i = 0; i < m * K; ++i) w[i] = f32_to_bf16(wf[i]);
        const int64_t ldy = m + 3;
        std::vector<float> y(static_cast<size_t>(n * ldy), -1.0f), ref(y.size(), -1.0f);
        g->gemm(x.data(), n, w.data(), m, K, y.data(), ldy);
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t j = 0; j < m; ++j) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k) s += static_cast<double>(bf16_to_f32(x[i * K + k])) * bf16_to_f32(w[j * K + k]);
            ref[i * ldy + j] = static_cast<float>(s);
          }
        }
        EXPECT_LE(nse(y.data(), ref.data(), static_cast<int64_t>(y.size())), 1e-12)
            << "n=" << n << " m=" << m << " K=" << K << " (padding columns must stay untouched too)";
      }
    }
  }
}

TEST(KernelDispatch, BestIsaIsChosenAndAllAreListed) {
  const auto all = runnable_kernels();
  ASSERT_FALSE(all.empty());
  EXPECT_STREQ(all.front()->isa, "generic");
  if (std::getenv("CACHECLIP_ISA") == nullptr) {
    EXPECT_EQ(&kernels(), all.back());
  }
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
    EXPECT_STREQ(all.back()->isa, "avx512") << "this CPU has AVX-512: its kernels must be tested";
  }
}

}  // namespace
}  // namespace cc::simd
