// The forward pass: a real pretrained model's golden text, an independent NumPy reference,
// incremental decoding, quantized weights, and the exact per-row causal mask.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "base/error.h"
#include "infer/transformer.h"
#include "model/model.h"
#include "model/writer.h"
#include "simd/convert.h"
#include "simd/kernels.h"
#include "tokenizer/tokenizer.h"
#include "test_util.h"

namespace cc {
namespace {

using ::testing::HasSubstr;

using test::nse;

std::string make(const std::string& preset, DType type, uint64_t seed = 5) {
  ModelConfig c = config_preset(preset);
  c.n_vocab = 320;
  WriteOptions w;
  w.dtype = type;
  w.seed = seed;
  std::string out = test::temp_dir() + "/" + preset + ".gguf";
  write_model(c, default_tokenizer(c.n_vocab), random_values(seed), out, w);
  return out;
}

std::vector<int32_t> random_tokens(int n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<unsigned>(vocab));
  return t;
}

struct Engine {
  Model model;
  std::unique_ptr<Backend> be;
  std::unique_ptr<Transformer> tf;
  explicit Engine(const std::string& path, const LoadOptions& lo = {}, const CpuBackendOptions& bo = {})
      : model(load_model(path, lo)) {
    be = make_cpu_backend(bo);
    tf = std::make_unique<Transformer>(model, *be);
  }
};

// Every weight type the backend multiplies by, and seeded N(0, 1) vectors for them.
constexpr DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};
struct NormalValues {
  std::mt19937 rng;
  std::normal_distribution<float> nd{0.0f, 1.0f};
  explicit NormalValues(unsigned seed) : rng(seed) {}
  std::vector<float> operator()(size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
  }
};

// The CPU backend's fused FFN (F walked in 512-feature slices, each multiplied into y at once)
// against the interface's composition of matmul, swiglu and add: every weight type,
// decode and prefill row counts, F below, at and above one slice and not a slice multiple,
// residual y kept, one, two and nine threads. Then again on the BF16 route (bf16 activations and
// decoded weights; portable kernels, so it runs on CPUs without AVX512-BF16 too), which must
// agree with the fp32 route to bf16 rounding and not be it.
TEST(CpuBackend, FfnEqualsSwigluThenDownThenAdd) {
  NormalValues randv(4);
  // The interface's default ffn, on the same CPU backend's ops.
  struct Composed : Backend {
    Backend& b;
    explicit Composed(Backend& be) : b(be) {}
    std::string name() const override { return "composed"; }
    int threads() const override { return b.threads(); }
    std::unique_ptr<DeviceBuffer> alloc(size_t n) override { return b.alloc(n); }
    void upload(DeviceBuffer& d, size_t o, const void* s, size_t n) override { b.upload(d, o, s, n); }
    void download(const DeviceBuffer& s, size_t o, void* d, size_t n) override { b.download(s, o, d, n); }
    void copy_rows(const DeviceBuffer& s, int64_t sr, DeviceBuffer& d, int64_t dr, int64_t n, size_t rb) override {
      b.copy_rows(s, sr, d, dr, n, rb);
    }
    std::unique_ptr<DeviceWeight> load_weight(const WeightView& w) override { return b.load_weight(w); }
    void get_rows(const DeviceWeight& t, std::span<const int32_t> ids, DeviceBuffer& o) override { b.get_rows(t, ids, o); }
    void rms_norm(const DeviceBuffer& x, const DeviceWeight& w, DeviceBuffer& y, int64_t n, int64_t d, float e) override {
      b.rms_norm(x, w, y, n, d, e);
    }
    void matmul(const DeviceWeight& w, const DeviceWeight* bias, const DeviceBuffer& x, DeviceBuffer& y, int64_t n) override {
      b.matmul(w, bias, x, y, n);
    }
    void rope(DeviceBuffer& x, int64_t n, int64_t h, std::span<const int64_t> pos, const RopeParams& p) override {
      b.rope(x, n, h, pos, p);
    }
    void kv_store(DeviceBuffer& kc, DeviceBuffer& vc, DType t, const DeviceBuffer& k, const DeviceBuffer& v,
                  std::span<const int64_t> slot, int64_t kvd) override {
      b.kv_store(kc, vc, t, k, v, slot, kvd);
    }
    void attention(const DeviceBuffer& q, const DeviceBuffer& kc, const DeviceBuffer& vc, DType t,
                   std::span<const int64_t> qp, std::span<const int64_t> sp, DeviceBuffer& o, int64_t n, int64_t h,
                   int64_t kvh, int64_t hd, float sc, DeviceBuffer* lse) override {
      b.attention(q, kc, vc, t, qp, sp, o, n, h, kvh, hd, sc, lse);
    }
    void merge_attention(const DeviceBuffer& o1, const DeviceBuffer& l1, float a1, const DeviceBuffer& o2,
                         const DeviceBuffer& l2, float a2, DeviceBuffer& o, int64_t nv, int64_t hd) override {
      b.merge_attention(o1, l1, a1, o2, l2, a2, o, nv, hd);
    }
    void swiglu(const DeviceBuffer& g, const DeviceBuffer& u, DeviceBuffer& y, int64_t c) override { b.swiglu(g, u, y, c); }
    void add(const DeviceBuffer& x, DeviceBuffer& y, int64_t c) override { b.add(x, y, c); }
  };
  for (auto [threads, portable_bf16] : {std::pair{1, false}, std::pair{2, false}, std::pair{9, false},
                                         std::pair{1, true}, std::pair{9, true}}) {  // 9: slices grow to 1,536
    CpuBackendOptions o;
    o.threads = threads;
    if (portable_bf16) o.bf16 = CpuBackendOptions::Bf16Route::Portable;
    auto be = make_cpu_backend(o);
    o.bf16 = CpuBackendOptions::Bf16Route::Off;
    auto fp32 = make_cpu_backend(o);  // the fp32 route on every CPU
    if (portable_bf16) {
      ASSERT_THAT(be->name(), HasSubstr("portable bf16"));
    }
    Composed ref(*be);
    for (DType t : kWeightTypes) {
      const bool bf16_route = portable_bf16 && (t == DType::BF16 || dtype_is_quantized(t));
      const int64_t blk = dtype_info(t).block_elems;
      const int64_t cols = blk == 1 ? 37 : blk, D = blk == 1 ? 45 : blk;
      // F = 300 and 800 end in a partial 64-feature tile (block-1 and block-32 types).
      const int64_t odd_f = blk == 1 ? 300 : blk == 32 ? 800 : 768;
      for (int64_t F : {int64_t{256}, int64_t{512}, int64_t{1280}, odd_f}) {
        std::vector<std::vector<uint8_t>> wq;
        for (auto [rows, width] : {std::pair{F, cols}, std::pair{F, cols}, std::pair{D, F}}) {
          std::vector<uint8_t> w(dtype_row_bytes(t, width) * static_cast<size_t>(rows));
          const auto wf = randv(static_cast<size_t>(rows * width));
          for (int64_t r = 0; r < rows; ++r) {
            quantize_row(t, wf.data() + r * width, w.data() + r * dtype_row_bytes(t, width), width);
          }
          wq.push_back(std::move(w));
        }
        auto gate = be->load_weight(WeightView{t, wq[0].data(), F, cols});
        auto up = be->load_weight(WeightView{t, wq[1].data(), F, cols});
        auto down = be->load_weight(WeightView{t, wq[2].data(), D, F});
        auto gate32 = fp32->load_weight(WeightView{t, wq[0].data(), F, cols});
        auto up32 = fp32->load_weight(WeightView{t, wq[1].data(), F, cols});
        auto down32 = fp32->load_weight(WeightView{t, wq[2].data(), D, F});
        for (int64_t n : {1, 4, 5, 70}) {
          const auto x = randv(static_cast<size_t>(n * cols)), y0 = randv(static_cast<size_t>(n * D));
          auto bx = be->alloc(x.size() * 4), ya = be->alloc(y0.size() * 4), yb = be->alloc(y0.size() * 4);
          be->upload(*bx, 0, x.data(), x.size() * 4);
          be->upload(*ya, 0, y0.data(), y0.size() * 4);
          be->upload(*yb, 0, y0.data(), y0.size() * 4);
          ref.ffn(*gate, *up, *down, *bx, *ya, n);
          be->ffn(*gate, *up, *down, *bx, *yb, n);
          std::vector<float> want(y0.size()), got(y0.size()), delta(y0.size());
          be->download(*ya, 0, want.data(), want.size() * 4);
          be->download(*yb, 0, got.data(), got.size() * 4);
          for (size_t i = 0; i < y0.size(); ++i) delta[i] = want[i] - y0[i];
          const std::string what = cat(dtype_name(t), " F=", F, " n=", n, " threads=", threads,
                                       portable_bf16 ? " portable bf16" : "");
          EXPECT_LE(nse(got, want), 1e-12) << what;
          EXPECT_GT(std::inner_product(delta.begin(), delta.end(), delta.begin(), 0.0), 1e-3 * static_cast<double>(n));
          if (!portable_bf16 || threads != 1) continue;
          // The BF16 route (prefill rows only: decode rows keep fp32 activations) against fp32.
          auto bx32 = fp32->alloc(x.size() * 4), y32 = fp32->alloc(y0.size() * 4);
          fp32->upload(*bx32, 0, x.data(), x.size() * 4);
          fp32->upload(*y32, 0, y0.data(), y0.size() * 4);
          fp32->ffn(*gate32, *up32, *down32, *bx32, *y32, n);
          std::vector<float> exact(y0.size()), dg(y0.size()), de(y0.size());
          fp32->download(*y32, 0, exact.data(), exact.size() * 4);
          for (size_t i = 0; i < y0.size(); ++i) dg[i] = got[i] - y0[i], de[i] = exact[i] - y0[i];
          const double err = nse(dg, de);
          if (bf16_route && n > 4) {
            EXPECT_LE(err, 1e-4) << what;
            EXPECT_GT(err, 1e-12) << what << ": the BF16 route was not taken";
          } else {
            EXPECT_LE(err, 1e-12) << what;
          }
        }
      }
    }
  }
}

TEST(Forward, Stories260KGreedyGolden) {
  CC_SKIP_WITHOUT_SHARED("models/stories260K/golden-greedy-200.txt");
  const std::string dir = test::shared_dir() + "/models/stories260K";
  LoadOptions lo;
  lo.tokenizer_path = dir + "/tok512.bin";
  Engine e(dir + "/stories260K.bin", lo);
  Tokenizer tok(e.model.tokenizer);
  for (DType kv_type : {DType::F32, DType::F16}) {
    KVCache kv = e.tf->make_cache(512, kv_type);
    std::vector<int32_t> seq = {e.model.tokenizer.bos_id};
    std::vector<float> logits = e.tf->eval(seq, kv);
    for (int step = 0; step < 200; ++step) {
      int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      seq.push_back(next);
      if (step + 1 < 200) logits = e.tf->eval(std::span<const int32_t>(&next, 1), kv);
    }
    std::ifstream in(dir + "/golden-greedy-200.txt", std::ios::binary);
    std::string golden((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(tok.decode(seq, true), golden) << "KV " << dtype_name(kv_type);
  }
}

class ReferenceLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceLogits, MatchNumpyFloat64) {
  if (!std::filesystem::exists("/usr/bin/python3") ||
      std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    if (std::getenv("CI")) FAIL() << "CI must have /usr/bin/python3 with numpy (scripts/setup.sh installs it)";
    GTEST_SKIP() << "/usr/bin/python3 with numpy (Debian python3-numpy) is needed for the reference";
  }
  const std::string path = make(GetParam(), DType::F32);
  Engine e(path);
  const std::vector<int32_t> toks = random_tokens(37, 320, 11);
  KVCache kv = e.tf->make_cache(64, DType::F32);
  std::vector<float> got = e.tf->eval(toks, kv, true);
  std::string list;
  for (size_t i = 0; i < toks.size(); ++i) {
    if (i) list += ',';
    list += std::to_string(toks[i]);
  }
  const std::string out = test::temp_dir() + "/ref.bin";
  const std::string cmd = "/usr/bin/python3 tests/reference/forward_ref.py " + path + " --tokens " + list +
                          " --out " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto bytes = test::read_bytes(out);
  std::vector<float> ref(bytes.size() / 4);
  std::memcpy(ref.data(), bytes.data(), bytes.size());
  ASSERT_EQ(ref.size(), got.size());
  EXPECT_LE(nse(got, ref), 1e-8) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Presets, ReferenceLogits, ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-llama3"),
                         [](const auto& i) { return i.param.substr(5); });

TEST(Forward, PrefillThenDecodeEqualsOnePrefill) {
  // Quantized weights too: decode rows go through dot_row, prefill through dequantize + sgemm.
  for (auto [preset, type] : {std::pair{"tiny-llama", DType::F32}, std::pair{"tiny-qwen2", DType::F32},
                              std::pair{"tiny-qwen2", DType::Q8_0}, std::pair{"tiny-llama", DType::Q4_0},
                              std::pair{"tiny-qwen2", DType::BF16}}) {
    Engine e(make(preset, type));
    const auto toks = random_tokens(24, 320, 3);
    KVCache kv1 = e.tf->make_cache(32, DType::F32);
    std::vector<float> all = e.tf->eval(toks, kv1, true);
    KVCache kv2 = e.tf->make_cache(32, DType::F32);
    const size_t V = 320, k = 10;
    std::vector<float> first = e.tf->eval(std::span<const int32_t>(toks.data(), k), kv2, true);
    std::vector<float> inc(first);
    for (size_t i = k; i < toks.size(); ++i) {
      std::vector<float> r = e.tf->eval(std::span<const int32_t>(&toks[i], 1), kv2);
      inc.insert(inc.end(), r.begin(), r.end());
    }
    ASSERT_EQ(inc.size(), toks.size() * V);
    // On CPUs with AVX512-BF16, prefill with BF16 or block-quantized weights rounds activations
    // and decoded weights to bf16 (as llama.cpp does for bf16); decode keeps f32 activations.
    // Allow that rounding (~2^-9 relative per element) there; exact agreement otherwise.
    const bool bf16_route = simd::bf16_gemm() != nullptr && (type == DType::BF16 || dtype_is_quantized(type));
    const double tol = bf16_route ? 1e-4 : 1e-10;
    EXPECT_LE(nse(inc, all), tol) << preset << " " << dtype_name(type);
  }
}

TEST(Forward, Bf16RouteAgreesWithFp32Route) {
  // What CPUs with AVX512-BF16 run for prefill with BF16 and block-quantized weights, here with
  // the portable kernels: the whole forward pass within bf16 rounding of the fp32 route, but
  // not equal to it (the route is taken); decode rows stay on fp32 activations.
  using R = CpuBackendOptions::Bf16Route;
  for (auto [preset, type] : {std::pair{"tiny-qwen2", DType::BF16}, std::pair{"tiny-llama", DType::Q8_0},
                              std::pair{"tiny-qwen2", DType::Q4_0}, std::pair{"tiny-llama", DType::Q4_K}}) {
    const std::string path = make(preset, type);
    CpuBackendOptions bo;
    bo.bf16 = R::Off;
    Engine exact(path, {}, bo);
    bo.bf16 = R::Portable;
    Engine route(path, {}, bo);
    const auto toks = random_tokens(24, 320, 5);
    KVCache k1 = exact.tf->make_cache(32, DType::F32), k2 = route.tf->make_cache(32, DType::F32);
    const auto want = exact.tf->eval(toks, k1, true), got = route.tf->eval(toks, k2, true);
    const double err = nse(got, want);
    EXPECT_LE(err, 1e-4) << preset << " " << dtype_name(type);
    EXPECT_GT(err, 1e-12) << preset << " " << dtype_name(type) << ": the BF16 route was not taken";
    const int32_t next = 7;
    const auto d1 = exact.tf->eval(std::span<const int32_t>(&next, 1), k1),
               d2 = route.tf->eval(std::span<const int32_t>(&next, 1), k2);
    EXPECT_LE(nse(d2, d1), 1e-4) << "decode after a BF16-route prefill, " << dtype_name(type);
  }
}

TEST(Forward, MicroBatchesEqualOneBatch) {
  // 1,100 rows run as micro-batches of 512 inside forward(); the same rows given as shuffled
  // slots in one call (not increasing, so one batch) must agree.
  Engine e(make("tiny-qwen2", DType::F32));
  const int n = 1100;
  const auto toks = random_tokens(n, 320, 12);
  std::vector<int64_t> pos(n), rows = {0, 511, 512, 700, n - 1};
  std::iota(pos.begin(), pos.end(), 0);
  KVCache a = e.tf->make_cache(n, DType::F32);
  auto la = e.tf->forward(toks, pos, pos, a, n, rows);
  // Same rows, reversed order: positions decrease, so forward() runs them as one batch.
  std::vector<int32_t> rt(toks.rbegin(), toks.rend());
  std::vector<int64_t> rp(pos.rbegin(), pos.rend()), rr;
  for (int64_t r : rows) rr.push_back(n - 1 - r);
  KVCache b = e.tf->make_cache(n, DType::F32);
  auto lb = e.tf->forward(rt, rp, rp, b, n, rr);
  EXPECT_LE(nse(la, lb), 1e-10);
}

TEST(Forward, UbatchOverrideIsExactAndChecked) {
  // CACHECLIP_UBATCH=7: 40 rows run as 6 micro-batches, same logits as the default (one batch).
  const std::string m = make("tiny-llama", DType::F32);
  const int n = 40;
  const auto toks = random_tokens(n, 256, 3);
  std::vector<int64_t> pos(n), rows = {0, 6, 7, 20, n - 1};
  std::iota(pos.begin(), pos.end(), 0);
  Engine base(m);
  KVCache a = base.tf->make_cache(n, DType::F32);
  const auto la = base.tf->forward(toks, pos, pos, a, n, rows);
  ::setenv("CACHECLIP_UBATCH", "7", 1);
  Engine small(m);
  ::unsetenv("CACHECLIP_UBATCH");
  EXPECT_EQ(small.tf->ubatch(), 7);
  KVCache b = small.tf->make_cache(n, DType::F32);
  EXPECT_LE(nse(la, small.tf->forward(toks, pos, pos, b, n, rows)), 1e-10);
  ::setenv("CACHECLIP_UBATCH", "12x", 1);
  EXPECT_THROW(Engine bad(m), cc::Error);
  ::unsetenv("CACHECLIP_UBATCH");
}

TEST(Forward, Q8_0LogitsCloseToF32) {
  // Same seed, weights stored in Q8_0 vs F32. Tolerance: NSE <= 1e-3 of the logits.
  Engine f32(make("tiny-qwen2", DType::F32, 8));
  Engine q8(make("tiny-qwen2", DType::Q8_0, 8));
  const auto toks = random_tokens(20, 320, 4);
  KVCache a = f32.tf->make_cache(32, DType::F32), b = q8.tf->make_cache(32, DType::F32);
  auto la = f32.tf->eval(toks, a, true), lb = q8.tf->eval(toks, b, true);
  const double err = nse(lb, la);
  EXPECT_LE(err, 1e-3);
  EXPECT_GT(err, 0.0) << "quantized weights gave bit-identical logits: not actually quantized?";
}

TEST(Forward, KvCacheTypesAgree) {
  Engine e(make("tiny-llama", DType::F32));
  const auto toks = random_tokens(16, 320, 9);
  KVCache a = e.tf->make_cache(16, DType::F32), b = e.tf->make_cache(16, DType::F16),
          c = e.tf->make_cache(16, DType::BF16);
  auto la = e.tf->eval(toks, a, true), lb = e.tf->eval(toks, b, true), lc = e.tf->eval(toks, c, true);
  EXPECT_LE(nse(lb, la), 1e-5);
  EXPECT_LE(nse(lc, la), 1e-3);
}

TEST(Forward, MaskIsExactLaterTokensNeverChangeEarlierRows) {
  Engine e(make("tiny-qwen2", DType::F32));
  auto toks = random_tokens(20, 320, 5);
  KVCache a = e.tf->make_cache(20, DType::F32);
  auto la = e.tf->eval(toks, a, true);
  for (size_t i = 12; i < toks.size(); ++i) toks[i] = (toks[i] + 7) % 320;
  KVCache b = e.tf->make_cache(20, DType::F32);
  auto lb = e.tf->eval(toks, b, true);
  const size_t V = 320;
  for (size_t r = 0; r < 12; ++r) {
    for (size_t j = 0; j < V; ++j) ASSERT_EQ(la[r * V + j], lb[r * V + j]) << "row " << r;
  }
  bool changed = false;
  for (size_t j = 12 * V; j < la.size(); ++j) changed |= la[j] != lb[j];
  EXPECT_TRUE(changed);
}

TEST(Forward, SlotOrderDoesNotMatterOnlyPositions) {
  // The same tokens written into scrambled cache slots give the same logits: attention is
  // masked by each key's position, not by its slot index.
  Engine e(make("tiny-llama", DType::F32));
  const auto toks = random_tokens(12, 320, 6);
  KVCache a = e.tf->make_cache(12, DType::F32);
  auto la = e.tf->eval(toks, a, true);
  std::vector<int64_t> pos(12), slot(12), rows(12);
  std::iota(pos.begin(), pos.end(), 0);
  std::iota(rows.begin(), rows.end(), 0);
  for (int i = 0; i < 12; ++i) slot[static_cast<size_t>(i)] = (i * 5) % 12;  // a permutation
  KVCache b = e.tf->make_cache(12, DType::F32);
  auto lb = e.tf->forward(toks, pos, slot, b, 12, rows);
  EXPECT_LE(nse(lb, la), 1e-12);
}

TEST(ForwardBad, InvalidInputsAreErrors) {
  Engine e(make("tiny-llama", DType::F32));
  KVCache kv = e.tf->make_cache(4, DType::F32);
  std::vector<int32_t> bad = {1, 320};
  EXPECT_THAT(test::error_of([&] { e.tf->eval(bad, kv); }), HasSubstr("token id 320 is out of range for a vocabulary of 320"));
  std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_THAT(test::error_of([&] { e.tf->eval(five, kv); }), HasSubstr("context full"));
  EXPECT_THAT(test::error_of([&] { e.tf->make_cache(4, DType::Q8_0); }), HasSubstr("KV cache type must be f32, f16 or bf16"));
}

}  // namespace
}  // namespace cc
