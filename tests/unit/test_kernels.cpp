// Every kernel of every ISA this CPU runs, against the generic (scalar) oracle: sizes that are
// not multiples of any vector width, and pointers misaligned by one float.
#include <cmath>
#include <random>

#include "simd/attention.h"
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

TEST_P(Kernels, DequantizationMatchesOracleExactly) {
  const KernelTable& k = *GetParam();
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t be = dtype_info(t).block_elems;
    for (int64_t n : {be, be * 3, be * 7}) {
      auto w = randv(n, 31, 2.0f);
      std::vector<uint8_t> q(dtype_row_bytes(t, n) + 1);
      quantize_row(t, w.data(), q.data() + 1, n);  // misaligned blocks
      std::vector<float> y1(static_cast<size_t>(n) + 1), y2(static_cast<size_t>(n));
      k.to_f32(t, q.data() + 1, y1.data() + 1, n);  // misaligned output
      generic_kernels().to_f32(t, q.data() + 1, y2.data(), n);
      EXPECT_EQ(std::vector<float>(y1.begin() + 1, y1.end()), y2) << k.isa << " " << dtype_name(t) << " n=" << n;
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

TEST_P(Kernels, RopeBothPairingsMatchOracle) {
  const KernelTable& k = *GetParam();
  for (int64_t hd : {2, 6, 16, 34, 64, 128}) {
    for (int64_t heads : {1, 3}) {
      for (bool neox : {false, true}) {
        const int64_t half = hd / 2;
        auto x = randv(heads * hd, 11), cs = randv(half, 12), sn = randv(half, 13);
        for (int64_t j = 0; j < half; ++j) {  // a real rotation: cos^2 + sin^2 = 1
          const float a = cs[j] * 3.0f;
          cs[j] = std::cos(a);
          sn[j] = std::sin(a);
        }
        std::vector<float> y1(x.begin() + 1, x.begin() + 1 + heads * hd), y2 = y1, orig = y1;
        k.rope(y1.data(), heads, hd, cs.data(), sn.data(), neox);
        generic_kernels().rope(y2.data(), heads, hd, cs.data(), sn.data(), neox);
        EXPECT_LE(nse(y1.data(), y2.data(), heads * hd), 1e-12) << k.isa << " hd=" << hd << " neox=" << neox;
        // Pair (a, b) really is the one the pairing names: rotate by 90 degrees of one pair only.
        std::vector<float> c90(static_cast<size_t>(half), 1.0f), s90(static_cast<size_t>(half), 0.0f);
        c90[half - 1] = 0.0f;
        s90[half - 1] = 1.0f;
        std::vector<float> z = orig;
        k.rope(z.data(), heads, hd, c90.data(), s90.data(), neox);
        const int64_t a = neox ? half - 1 : hd - 2, b = neox ? hd - 1 : hd - 1;
        EXPECT_FLOAT_EQ(z[a], -orig[b]) << k.isa;
        EXPECT_FLOAT_EQ(z[b], orig[a]) << k.isa;
        // Rotating back with -sin restores the input (the re-positioning identity).
        std::vector<float> nsn(sn.begin(), sn.begin() + half);
        for (auto& v : nsn) v = -v;
        k.rope(y1.data(), heads, hd, cs.data(), nsn.data(), neox);
        EXPECT_LE(nse(y1.data(), orig.data(), heads * hd), 1e-12) << k.isa;
      }
    }
  }
}

TEST_P(Kernels, SoftmaxStepMatchesOracle) {
  const KernelTable& k = *GetParam();
  for (int64_t n : kSizes) {
    auto x = randv(n, 14, 4.0f);
    for (int64_t i = 0; i < n; i += 3) x[i + 1] = -INFINITY;  // masked entries
    std::vector<float> s1(x.begin() + 1, x.begin() + 1 + n), s2 = s1;
    float m1 = 0.5f, l1 = 2.0f, m2 = 0.5f, l2 = 2.0f;
    const float c1 = k.softmax_step(s1.data(), n, &m1, &l1), c2 = generic_kernels().softmax_step(s2.data(), n, &m2, &l2);
    EXPECT_FLOAT_EQ(m1, m2);
    EXPECT_NEAR(c1, c2, 1e-6 * c2);
    EXPECT_NEAR(l1, l2, 1e-5 * l2) << k.isa << " n=" << n;
    EXPECT_LE(nse(s1.data(), s2.data(), n), 1e-11) << k.isa << " n=" << n;
    for (int64_t i = 0; i < n; i += 3) EXPECT_EQ(s1[i], 0.0f) << "masked entry must be 0";
    // Fully masked block: nothing changes, factor 1.
    std::vector<float> all(static_cast<size_t>(n), -INFINITY);
    float m = -INFINITY, l = 0.0f;
    EXPECT_EQ(k.softmax_step(all.data(), n, &m, &l), 1.0f);
    EXPECT_EQ(l, 0.0f);
    EXPECT_EQ(m, -INFINITY);
    for (float v : all) EXPECT_EQ(v, 0.0f);
  }
}

// Naive attention in double: softmax over every slot with 0 <= slot_pos <= qpos.
void attention_reference(const AttnArgs& a, const std::vector<float>& kf, const std::vector<float>& vf,
                         std::vector<double>& out, std::vector<double>& lse) {
  const int64_t hd = a.hd, G = a.n_heads / a.n_kv_heads, kvd = a.n_kv_heads * hd;
  const double scale = a.scale != 0 ? a.scale : 1.0 / std::sqrt(static_cast<double>(hd));
  out.assign(static_cast<size_t>(a.n * a.n_heads * hd), 0.0);
  lse.assign(static_cast<size_t>(a.n * a.n_heads), -INFINITY);
  for (int64_t i = 0; i < a.n; ++i) {
    for (int64_t h = 0; h < a.n_heads; ++h) {
      const int64_t g = h / G;
      std::vector<double> w(static_cast<size_t>(a.n_slots), 0.0);
      double mx = -INFINITY;
      for (int64_t s = 0; s < a.n_slots; ++s) {
        if (a.slot_pos[s] < 0 || a.slot_pos[s] > a.qpos[i]) continue;
        double d = 0;
        for (int64_t e = 0; e < hd; ++e) d += static_cast<double>(a.q[(i * a.n_heads + h) * hd + e]) * kf[s * kvd + g * hd + e];
        w[s] = d * scale;
        mx = std::max(mx, w[s]);
      }
      if (mx == -INFINITY) continue;
      double sum = 0;
      for (int64_t s = 0; s < a.n_slots; ++s) {
        const bool vis = a.slot_pos[s] >= 0 && a.slot_pos[s] <= a.qpos[i];
        w[s] = vis ? std::exp(w[s] - mx) : 0.0;
        sum += w[s];
      }
      for (int64_t s = 0; s < a.n_slots; ++s) {
        for (int64_t e = 0; e < hd; ++e) out[(i * a.n_heads + h) * hd + e] += w[s] / sum * vf[s * kvd + g * hd + e];
      }
      lse[i * a.n_heads + h] = mx + std::log(sum);
    }
  }
}

TEST_P(Kernels, BlockwiseAttentionMatchesNaiveReference) {
  const KernelTable& k = *GetParam();
  struct Shape { int64_t n, n_slots, H, KV, hd; };
  for (const Shape sh : {Shape{1, 1, 1, 1, 2}, Shape{3, 70, 4, 2, 6}, Shape{33, 33, 2, 1, 16}, Shape{40, 129, 6, 2, 34},
                          Shape{65, 200, 14, 2, 64}}) {
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
      for (float scale : {0.0f, 0.37f}) {
        const int64_t kvd = sh.KV * sh.hd;
        auto q = randv(sh.n * sh.H * sh.hd, 21), kraw = randv(sh.n_slots * kvd, 22), vraw = randv(sh.n_slots * kvd, 23);
        // Cache in type t; the reference uses the same rounded values.
        std::vector<uint8_t> kc(dtype_row_bytes(t, kvd) * sh.n_slots), vc(kc.size());
        generic_kernels().from_f32(t, kraw.data(), kc.data(), sh.n_slots * kvd);
        generic_kernels().from_f32(t, vraw.data(), vc.data(), sh.n_slots * kvd);
        std::vector<float> kf(static_cast<size_t>(sh.n_slots * kvd)), vf(kf.size());
        generic_kernels().to_f32(t, kc.data(), kf.data(), sh.n_slots * kvd);
        generic_kernels().to_f32(t, vc.data(), vf.data(), sh.n_slots * kvd);
        // Scrambled slot positions with holes (-1), and per-row limits that are not "the last N".
        std::mt19937 rng(static_cast<unsigned>(sh.n * 7 + sh.n_slots));
        std::vector<int64_t> slot_pos(static_cast<size_t>(sh.n_slots)), qpos(static_cast<size_t>(sh.n));
        for (int64_t s = 0; s < sh.n_slots; ++s) slot_pos[s] = (rng() % 9 == 0) ? -1 : static_cast<int64_t>(rng() % 300);
        for (int64_t i = 0; i < sh.n; ++i) qpos[i] = static_cast<int64_t>(rng() % 320) - 10;  // some see nothing
        std::vector<float> out(static_cast<size_t>(sh.n * sh.H * sh.hd), 123.0f), lse(static_cast<size_t>(sh.n * sh.H));
        AttnArgs a;
        a.q = q.data() + 1;  // misaligned
        a.k_cache = kc.data();
        a.v_cache = vc.data();
        a.type = t;
        a.qpos = qpos.data();
        a.slot_pos = slot_pos.data();
        a.n_slots = sh.n_slots;
        a.out = out.data();
        a.lse = lse.data();
        a.n = sh.n;
        a.n_heads = sh.H;
        a.n_kv_heads = sh.KV;
        a.hd = sh.hd;
        a.scale = scale;
        std::vector<float> scratch(attention_scratch_floats(a));
        for (int64_t task = 0; task < attention_tasks(a); ++task) attention_task(k, a, task, scratch.data());
        std::vector<double> ro, rl;
        attention_reference(a, kf, vf, ro, rl);
        std::vector<float> rof(ro.begin(), ro.end());
        EXPECT_LE(nse(out.data(), rof.data(), static_cast<int64_t>(out.size())), 1e-10)
            << k.isa << " " << dtype_name(t) << " n=" << sh.n << " slots=" << sh.n_slots << " hd=" << sh.hd;
        for (size_t i = 0; i < lse.size(); ++i) {
          if (std::isinf(rl[i])) {
            EXPECT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << "row sees no key: lse must be -inf";
            for (int64_t e = 0; e < sh.hd; ++e) EXPECT_EQ(out[i * sh.hd + e], 0.0f) << "and its output zero";
          } else {
            EXPECT_NEAR(lse[i], rl[i], 1e-4 * (1 + std::abs(rl[i]))) << k.isa << " lse " << i;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, Kernels, ::testing::ValuesIn(runnable_kernels()),
                         [](const auto& info) { return std::string(info.param->isa); });

// The AVX512-BF16 kernel where this CPU has it, and the portable one everywhere: products
// against double precision on edge shapes, conversion against the scalar rounding.
void check_bf16_gemm(const Bf16Gemm* g) {
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

TEST(Bf16Gemm, MatchesDoublePrecisionOnEdgeShapes) {
  const Bf16Gemm* g = bf16_gemm();
  if (!g) GTEST_SKIP() << "this CPU (or CACHECLIP_ISA) has no AVX512-BF16";
  check_bf16_gemm(g);
}

TEST(Bf16Gemm, PortableMatchesDoublePrecisionOnEdgeShapes) {
  ASSERT_NE(&portable_bf16_gemm(), bf16_gemm());
  check_bf16_gemm(&portable_bf16_gemm());
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
