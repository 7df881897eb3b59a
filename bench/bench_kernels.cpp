// Kernel micro-benchmarks (Google Benchmark): every kernel table this CPU runs (generic, avx2,
// avx512) on the same inputs, so ISAs compare as ratios within one run. Figures, not tests.
//   build/bench/bench_kernels --benchmark_filter=dot_row
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "simd/convert.h"
#include "simd/kernels.h"

namespace {

using cc::DType;
using cc::simd::KernelTable;

std::vector<float> randv(size_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// One weight row of 4864 columns (Qwen2.5-0.5B FFN width) dotted with an activation row.
void BM_dot_row(benchmark::State& st, const KernelTable* k, DType t) {
  const int64_t n = 4864 - 4864 % 256;
  auto w = randv(static_cast<size_t>(n)), x = randv(static_cast<size_t>(n));
  std::vector<uint8_t> q(cc::dtype_row_bytes(t, n));
  cc::quantize_row(t, w.data(), q.data(), n);
  for (auto _ : st) benchmark::DoNotOptimize(k->dot_row(t, q.data(), x.data(), n));
  st.SetBytesProcessed(st.iterations() * static_cast<int64_t>(q.size()));
}

void BM_vector(benchmark::State& st, const KernelTable* k, int op) {
  const int64_t n = 4864;
  auto a = randv(n), b = randv(n), y = randv(n);
  for (auto _ : st) {
    switch (op) {
      case 0: benchmark::DoNotOptimize(k->dot(a.data(), b.data(), n)); break;
      case 1: k->rmsnorm(a.data(), b.data(), y.data(), n, 1e-6f); break;
      case 2: k->swiglu(a.data(), b.data(), y.data(), n); break;
      case 3: k->softmax(y.data(), n); break;
    }
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void BM_convert(benchmark::State& st, const KernelTable* k, DType t) {
  const int64_t n = 4864 - 4864 % 256;
  auto x = randv(static_cast<size_t>(n));
  std::vector<uint8_t> q(cc::dtype_row_bytes(t, n));
  std::vector<float> y(static_cast<size_t>(n));
  cc::quantize_row(t, x.data(), q.data(), n);
  for (auto _ : st) {
    k->to_f32(t, q.data(), y.data(), n);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * n);
}

const int registered = [] {
  const char* ops[] = {"dot", "rmsnorm", "swiglu", "softmax"};
  for (const KernelTable* k : cc::simd::runnable_kernels()) {
    const std::string isa = k->isa;
    for (int op = 0; op < 4; ++op) benchmark::RegisterBenchmark((std::string(ops[op]) + "/" + isa).c_str(), BM_vector, k, op);
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
      benchmark::RegisterBenchmark(("dot_row/" + std::string(cc::dtype_name(t)) + "/" + isa).c_str(), BM_dot_row, k, t);
      if (t != DType::F32) {
        benchmark::RegisterBenchmark(("to_f32/" + std::string(cc::dtype_name(t)) + "/" + isa).c_str(), BM_convert, k, t);
      }
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
