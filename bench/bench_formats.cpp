// Reference (scalar) conversion kernels: elements per second of dequantize/quantize per dtype.
// These are the oracle implementations; the xsimd kernels of simd/ are compared to them.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "simd/convert.h"

namespace {

void BM_Dequantize(benchmark::State& state, cc::DType t) {
  const int64_t n = 4096 * 16;
  std::vector<float> x(n), y(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(cc::dtype_row_bytes(t, n));
  cc::quantize_row(t, x.data(), q.data(), n);
  for (auto _ : state) {
    cc::dequantize_row(t, q.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Quantize(benchmark::State& state, cc::DType t) {
  const int64_t n = 4096 * 16;
  std::vector<float> x(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(cc::dtype_row_bytes(t, n));
  for (auto _ : state) {
    cc::quantize_row(t, x.data(), q.data(), n);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

}  // namespace

BENCHMARK_CAPTURE(BM_Dequantize, F16, cc::DType::F16);
BENCHMARK_CAPTURE(BM_Dequantize, BF16, cc::DType::BF16);
BENCHMARK_CAPTURE(BM_Dequantize, Q8_0, cc::DType::Q8_0);
BENCHMARK_CAPTURE(BM_Dequantize, Q4_0, cc::DType::Q4_0);
BENCHMARK_CAPTURE(BM_Dequantize, Q4_K, cc::DType::Q4_K);
BENCHMARK_CAPTURE(BM_Dequantize, Q6_K, cc::DType::Q6_K);
BENCHMARK_CAPTURE(BM_Quantize, F16, cc::DType::F16);
BENCHMARK_CAPTURE(BM_Quantize, Q8_0, cc::DType::Q8_0);
BENCHMARK_CAPTURE(BM_Quantize, Q4_K, cc::DType::Q4_K);
BENCHMARK_CAPTURE(BM_Quantize, Q6_K, cc::DType::Q6_K);
BENCHMARK_MAIN();
