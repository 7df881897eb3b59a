// The OpenCL backend (PoCL here) against the CPU backend, op by op and on whole models.
// Every test skips with a message when no OpenCL platform exists at all.
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>

#include "infer/transformer.h"
#include "model/model.h"
#include "model/writer.h"
#include "reuse/rag.h"
#include "simd/convert.h"
#include "test_util.h"

namespace cc {
namespace {

// These compare the backends at fp32 tolerances (NSE 1e-5 and below). On a CPU with AVX512-BF16
// the CPU backend's default BF16 route (x rounded to bf16) is ~2e-5 off fp32 (measured on an
// AVX-512 Xeon), so it is pinned off here unless the environment says otherwise;
// test_kernels checks the BF16 route itself.
const bool kBf16Off = (setenv("CACHECLIP_BF16", "off", 0), true);

using ::testing::HasSubstr;

#define CC_SKIP_WITHOUT_OPENCL()                                                                 \
  do {                                                                                           \
    if (list_opencl_devices().empty()) GTEST_SKIP() << "no OpenCL platform/device on this machine"; \
  } while (0)

using test::nse;

std::vector<float> randv(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Runs one op on both backends with the same inputs and returns (cpu, opencl) outputs.
struct Pair {
  std::unique_ptr<Backend> cpu = make_cpu_backend(), cl = make_opencl_backend();
  std::unique_ptr<DeviceBuffer> up(Backend& be, const std::vector<float>& v) {
    auto b = be.alloc(v.size() * 4);
    be.upload(*b, 0, v.data(), v.size() * 4);
    return b;
  }
  std::vector<float> down(Backend& be, const DeviceBuffer& b, size_t n) {
    std::vector<float> v(n);
    be.download(b, 0, v.data(), n * 4);
    return v;
  }
};

TEST(OpenCl, ListsDevicesAndNamesThemInErrors) {
  CC_SKIP_WITHOUT_OPENCL();
  const auto devs = list_opencl_devices();
  EXPECT_FALSE(devs.front().name.empty());
  EXPECT_GT(devs.front().global_mem, 0u);
  EXPECT_GT(devs.front().compute_units, 0);
  OpenClOptions o;
  o.device = "no-such-device-xyz";
  EXPECT_THAT(test::error_of([&] { make_opencl_backend(o); }), HasSubstr("no OpenCL device matches 'no-such-device-xyz' (devices: 0:0"));
  EXPECT_THAT(test::error_of([&] { make_backend("gpu", {}, {}); }), HasSubstr("unknown backend 'gpu'"));
  EXPECT_THAT(make_backend("opencl", {}, {})->name(), HasSubstr("opencl ("));
  EXPECT_THAT(test::error_of([&] {
                OpenClOptions b;
                b.build_options = "-D BROKEN -cl-unknown-option-xyz";
                make_opencl_backend(b);
              }),
              HasSubstr("OpenCL device '"));
}

TEST(OpenCl, ElementwiseNormAndRopeOnOddSizes) {
  CC_SKIP_WITHOUT_OPENCL();
  Pair p;
  for (int64_t n : {1, 3, 17}) {
    for (int64_t d : {6, 33, 130}) {
      const auto x = randv(static_cast<size_t>(n * d), 1), y = randv(static_cast<size_t>(n * d), 2), w = randv(static_cast<size_t>(d), 3);
      std::vector<std::vector<float>> out;
      for (Backend* be : {p.cpu.get(), p.cl.get()}) {
        auto bx = p.up(*be, x), by = p.up(*be, y), bo = be->alloc(x.size() * 4);
        WeightView wv{DType::F32, w.data(), 1, d};
        auto bw = be->load_weight(wv);
        be->rms_norm(*bx, *bw, *bo, n, d, 1e-5f);
        out.push_back(p.down(*be, *bo, x.size()));
        be->swiglu(*bx, *by, *bo, n * d);
        out.push_back(p.down(*be, *bo, x.size()));
        be->add(*bx, *by, n * d);
        out.push_back(p.down(*be, *by, x.size()));
      }
      for (size_t k = 0; k < 3; ++k) EXPECT_LE(nse(out[k + 3], out[k]), 1e-11) << "op " << k << " n=" << n << " d=" << d;
    }
  }
  for (RopeMode mode : {RopeMode::Adjacent, RopeMode::NeoX}) {
    RopeParams rp;
    rp.head_dim = 34;
    rp.mode = mode;
    for (int64_t j = 0; j < 17; ++j) rp.inv_freq.push_back(std::pow(10000.0f, -2.0f * j / 34.0f));
    const int64_t n = 5, H = 3;
    const auto x = randv(static_cast<size_t>(n * H * 34), 4);
    const std::vector<int64_t> pos = {0, 7, 100, 3, 4095};
    std::vector<std::vector<float>> out;
    for (Backend* be : {p.cpu.get(), p.cl.get()}) {
      auto bx = p.up(*be, x);
      be->rope(*bx, n, H, pos, rp);
      out.push_back(p.down(*be, *bx, x.size()));
    }
    EXPECT_LE(nse(out[1], out[0]), 1e-10) << "rope";
  }
}

TEST(OpenCl, MatmulEveryWeightType) {
  CC_SKIP_WITHOUT_OPENCL();
  Pair p;
  // Tolerances per type (normalized squared error against the CPU backend): F32/F16/BF16 use
  // the same weights exactly; quantized types are dequantized to F16 at upload.
  const std::pair<DType, double> types[] = {{DType::F32, 1e-11}, {DType::F16, 1e-11}, {DType::BF16, 1e-11},
                                            {DType::Q8_0, 1e-5},  {DType::Q4_0, 1e-5}, {DType::Q4_K, 1e-5},
                                            {DType::Q6_K, 1e-5}};
  for (const auto& [t, tol] : types) {
    const int64_t be_elems = dtype_info(t).block_elems;
    const int64_t cols = be_elems == 1 ? 37 : be_elems * 2, rows = 19;
    for (int64_t n : {1, 5, 33}) {
      const auto wf = randv(static_cast<size_t>(rows * cols), 5), x = randv(static_cast<size_t>(n * cols), 6),
                 bias = randv(static_cast<size_t>(rows), 7);
      std::vector<uint8_t> wq(dtype_row_bytes(t, cols) * rows);
      for (int64_t r = 0; r < rows; ++r) quantize_row(t, wf.data() + r * cols, wq.data() + r * dtype_row_bytes(t, cols), cols);
      std::vector<std::vector<float>> out;
      for (Backend* be : {p.cpu.get(), p.cl.get()}) {
        auto w = be->load_weight(WeightView{t, wq.data(), rows, cols});
        // The bias stored as F16 (as HF bf16/f16 folders have it): converted on upload.
        std::vector<uint16_t> bias16(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) bias16[static_cast<size_t>(r)] = f32_to_fp16(bias[static_cast<size_t>(r)]);
        auto bb = n == 5 ? be->load_weight(WeightView{DType::F16, bias16.data(), 1, rows})
                         : be->load_weight(WeightView{DType::F32, bias.data(), 1, rows});
        auto bx = p.up(*be, x), by = be->alloc(static_cast<size_t>(n * rows) * 4);
        be->matmul(*w, bb.get(), *bx, *by, n);
        out.push_back(p.down(*be, *by, static_cast<size_t>(n * rows)));
      }
      EXPECT_LE(nse(out[1], out[0]), tol) << dtype_name(t) << " n=" << n;
    }
  }
}

// The interface's default ffn (matmuls, swiglu and add on the device) against the CPU
// backend's fused one (two slices of F here), residual included.
TEST(OpenCl, FfnMatchesTheCpuBackend) {
  CC_SKIP_WITHOUT_OPENCL();
  Pair p;
  for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
    const double tol = t == DType::Q8_0 ? 1e-5 : 1e-10;
    const int64_t cols = t == DType::Q8_0 ? 64 : 37, D = cols, F = 640, n = 9;
    std::vector<std::vector<uint8_t>> wq;
    for (auto [rows, width] : {std::pair{F, cols}, std::pair{F, cols}, std::pair{D, F}}) {
      const auto wf = randv(static_cast<size_t>(rows * width), 20 + static_cast<unsigned>(wq.size()));
      std::vector<uint8_t> w(dtype_row_bytes(t, width) * static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) quantize_row(t, wf.data() + r * width, w.data() + r * dtype_row_bytes(t, width), width);
      wq.push_back(std::move(w));
    }
    const auto x = randv(static_cast<size_t>(n * cols), 23), y0 = randv(static_cast<size_t>(n * D), 24);
    std::vector<std::vector<float>> out;
    for (Backend* be : {p.cpu.get(), p.cl.get()}) {
      auto g = be->load_weight(WeightView{t, wq[0].data(), F, cols}), u = be->load_weight(WeightView{t, wq[1].data(), F, cols}),
           d = be->load_weight(WeightView{t, wq[2].data(), D, F});
      auto bx = p.up(*be, x), by = p.up(*be, y0);
      be->ffn(*g, *u, *d, *bx, *by, n);
      out.push_back(p.down(*be, *by, y0.size()));
    }
    EXPECT_LE(nse(out[1], out[0]), tol) << dtype_name(t);
    EXPECT_GT(nse(out[0], y0), 1e-4) << "the FFN added nothing";
  }
}

TEST(OpenCl, KvStoreAndAttentionWithPerRowLimits) {
  CC_SKIP_WITHOUT_OPENCL();
  Pair p;
  const int64_t n = 7, H = 6, KV = 2, hd = 34, slots = 70, kvd = KV * hd;
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    const auto q = randv(static_cast<size_t>(n * H * hd), 8), k = randv(static_cast<size_t>(slots * kvd), 9),
               v = randv(static_cast<size_t>(slots * kvd), 10);
    std::vector<int64_t> slot(static_cast<size_t>(slots)), slot_pos(static_cast<size_t>(slots));
    std::iota(slot.begin(), slot.end(), 0);
    std::mt19937 rng(3);
    for (auto& s : slot_pos) s = rng() % 11 == 0 ? -1 : static_cast<int64_t>(rng() % 200);
    const std::vector<int64_t> qpos = {0, 50, 199, 120, -5, 7, 300};
    std::vector<std::vector<float>> out;
    for (Backend* be : {p.cpu.get(), p.cl.get()}) {
      const size_t cb = dtype_row_bytes(t, kvd) * slots;
      auto kc = be->alloc(cb), vc = be->alloc(cb), bk = p.up(*be, k), bv = p.up(*be, v), bq = p.up(*be, q);
      be->kv_store(*kc, *vc, t, *bk, *bv, slot, kvd);
      std::vector<uint8_t> raw(cb);
      be->download(*kc, 0, raw.data(), cb);
      std::vector<float> kf(static_cast<size_t>(slots * kvd));
      dequantize_row(t, raw.data(), kf.data(), slots * kvd);
      out.push_back(kf);
      auto o = be->alloc(q.size() * 4), lse = be->alloc(static_cast<size_t>(n * H) * 4);
      be->attention(*bq, *kc, *vc, t, qpos, slot_pos, *o, n, H, KV, hd, 0.21f, lse.get());
      out.push_back(p.down(*be, *o, q.size()));
      std::vector<float> l = p.down(*be, *lse, static_cast<size_t>(n * H));
      for (auto& x : l) x = std::isinf(x) ? -1e30f : x;  // compare "no key" as a number
      out.push_back(l);
    }
    EXPECT_EQ(out[3], out[0]) << "kv_store converts exactly as the CPU (" << dtype_name(t) << ")";
    EXPECT_LE(nse(out[4], out[1]), 1e-10) << "attention " << dtype_name(t);
    EXPECT_LE(nse(out[5], out[2]), 1e-10) << "lse " << dtype_name(t);
  }
}

std::string make(const std::string& preset, DType type, uint64_t seed) {
  ModelConfig c = config_preset(preset);
  c.n_vocab = 320;
  WriteOptions w;
  w.dtype = type;
  w.seed = seed;
  std::string out = test::temp_dir() + "/" + preset + "-" + dtype_name(type) + ".gguf";
  write_model(c, default_tokenizer(c.n_vocab), random_values(seed), out, w);
  return out;
}

TEST(OpenCl, WholeModelLogitsMatchTheCpuBackend) {
  CC_SKIP_WITHOUT_OPENCL();
  // Tolerance: NSE <= 1e-8 for f32 weights (the kernels sum in another order, and an f16 KV
  // cache rounds the slightly different K/V differently), 1e-6 for Q8_0 (dequantized to F16 on
  // the device, activations kept f32, where the CPU path multiplies the f32-decoded blocks).
  for (const auto& [preset, type, tol] : {std::tuple<const char*, DType, double>{"tiny-llama", DType::F32, 1e-8},
                                          {"tiny-qwen2", DType::F32, 1e-8}, {"tiny-qwen2", DType::Q8_0, 1e-6}}) {
    Model m = load_model(make(preset, type, 3));
    auto cpu = make_cpu_backend(), cl = make_opencl_backend();
    Transformer a(m, *cpu), b(m, *cl);
    std::vector<int32_t> toks(40);
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>((i * 37 + 11) % 320);
    KVCache ka = a.make_cache(64, DType::F16), kb = b.make_cache(64, DType::F16);
    const auto la = a.eval(toks, ka, true), lb = b.eval(toks, kb, true);
    EXPECT_LE(nse(lb, la), tol) << preset << " " << dtype_name(type);
    const std::vector<int32_t> next = {5};
    EXPECT_LE(nse(b.eval(next, kb), a.eval(next, ka)), tol) << "decode";
  }
}

TEST(OpenCl, Stories260KGoldenText) {
  CC_SKIP_WITHOUT_OPENCL();
  CC_SKIP_WITHOUT_SHARED("models/stories260K/golden-greedy-200.txt");
  const std::string dir = test::shared_dir() + "/models/stories260K";
  LoadOptions lo;
  lo.tokenizer_path = dir + "/tok512.bin";
  Model m = load_model(dir + "/stories260K.bin", lo);
  auto cl = make_opencl_backend();
  Transformer tf(m, *cl);
  Tokenizer tok(m.tokenizer);
  KVCache kv = tf.make_cache(256, DType::F32);
  std::vector<int32_t> seq = {m.tokenizer.bos_id};
  std::vector<float> logits = tf.eval(seq, kv);
  for (int step = 0; step < 200; ++step) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    seq.push_back(next);
    if (step + 1 < 200) logits = tf.eval(std::span<const int32_t>(&seq.back(), 1), kv);
  }
  const auto golden = test::read_bytes(dir + "/golden-greedy-200.txt");
  std::string want(golden.begin(), golden.end());
  while (!want.empty() && (want.back() == '\n' || want.back() == '\r')) want.pop_back();
  std::string got = tok.decode(seq, true);
  while (!got.empty() && (got.back() == '\n' || got.back() == '\r')) got.pop_back();
  EXPECT_EQ(got, want);
}

TEST(OpenCl, CacheClipAtRatioOneEqualsFullOnTheDevice) {
  CC_SKIP_WITHOUT_OPENCL();
  Model pm = load_model(make("tiny-qwen2", DType::F32, 21));
  ModelConfig ac = config_preset("tiny-qwen2");
  ac.n_vocab = 320;
  ac.n_layer = 1;
  const std::string ap = test::temp_dir() + "/aux-cl.gguf";
  write_model(ac, default_tokenizer(320), random_values(22), ap, WriteOptions{});
  Model am = load_model(ap);
  auto cl = make_opencl_backend(), cpu = make_cpu_backend();
  RagModel primary(pm, *cl), aux(am, *cpu);  // primary on the device, aux on CPU cores
  ChunkStoreOptions so;
  so.type = KVStoreType::F32;
  ChunkStore store(so);
  RagOptions ro;
  ro.max_new_tokens = 4;
  RagEngine eng(primary, store, ro);
  eng.set_aux(&aux);
  RagPrompt p;
  for (int i = 0; i < 4; ++i) p.prefix.push_back(i + 1);
  for (int c = 0; c < 3; ++c) {
    p.chunks.emplace_back();
    for (int i = 0; i < 11; ++i) p.chunks.back().push_back((c * 31 + i * 7) % 320);
  }
  p.question = {9, 8, 7, 6};
  eng.precompute(p);
  MethodParams mp;
  const RagState full = eng.prefill(p, Method::Full, mp);
  mp.recompute = 1.0;
  EXPECT_LE(nse(eng.prefill(p, Method::CacheClip, mp).logits, full.logits), 1e-8);
  mp.recompute = 0.2;
  EXPECT_GT(nse(eng.prefill(p, Method::Naive, mp).logits, full.logits), 1e-10);
}

}  // namespace
}  // namespace cc
