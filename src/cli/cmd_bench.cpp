// `cacheclip bench`: prefill (pp) and decode (tg) speed in the manner of llama-bench.
// pp N = one forward pass over N random tokens into an empty cache; tg N = N single-token
// steps from an empty cache. Each test runs `reps` times after one warm-up; the table shows the
// median tokens/s and the spread (min..max).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "base/error.h"
#include "cli/commands.h"
#include "infer/transformer.h"
#include "model/model.h"

namespace cc::cli {

namespace {

std::vector<int> parse_list(const std::string& s, const char* what) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      int v = std::stoi(item, &used);
      if (used != item.size() || v <= 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      fail("bad ", what, " list '", s, "': '", item, "' is not a positive integer");
    }
  }
  if (out.empty()) fail("empty ", what, " list");
  return out;
}

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // Linux: KiB
}

}  // namespace

Runner add_bench(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "Measure prefill and decode speed (llama-bench style)");
  struct Opts {
    std::string model, threads, pp = "128,512,2048", tg = "32", kv_type = "f16", tokenizer, backend = "cpu", device;
    int reps = 3;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "model file or folder")->required();
  sub->add_option("-t,--threads", o->threads, "comma-separated thread counts (default: all cores)");
  sub->add_option("-p,--n-prompt", o->pp, "comma-separated prefill lengths")->capture_default_str();
  sub->add_option("-n,--n-gen", o->tg, "comma-separated decode lengths")->capture_default_str();
  sub->add_option("-r,--repetitions", o->reps, "repetitions of each test")->capture_default_str();
  sub->add_option("--kv-type", o->kv_type, "KV cache type: f32, f16, bf16")->capture_default_str();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.bin for a llama2.c checkpoint");
  sub->add_option("--backend", o->backend, "cpu, opencl or auto")->capture_default_str();
  sub->add_option("--device", o->device, "OpenCL device: P:D, P, or part of its name");
  sub->add_flag("--json", o->json, "print JSON instead of the table");
  return [o]() {
    if (o->reps < 1) fail("--repetitions must be >= 1");
    auto kv_type = dtype_from_name(o->kv_type);
    if (!kv_type) fail("unknown KV cache type '", o->kv_type, "' (f32, f16, bf16)");
    LoadOptions lo;
    lo.tokenizer_path = o->tokenizer;
    Model m = load_model(o->model, lo);
    std::vector<int> threads = o->threads.empty() ? std::vector<int>{0} : parse_list(o->threads, "thread");
    std::vector<int> pps = o->pp == "0" ? std::vector<int>{} : parse_list(o->pp, "prefill length");
    std::vector<int> tgs = o->tg == "0" ? std::vector<int>{} : parse_list(o->tg, "decode length");
    std::map<std::string, int> types;
    for (const auto& t : m.tensors()) {
      if (t.shape.size() == 2) types[dtype_name(t.type)]++;
    }
    std::string wtype;
    for (const auto& [k, v] : types) wtype += (wtype.empty() ? "" : "+") + k;
    std::mt19937 rng(1);
    auto tokens = [&](int n) {
      std::vector<int32_t> t(static_cast<size_t>(n));
      for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(m.config.n_vocab));
      return t;
    };
    nlohmann::json results = nlohmann::json::array();
    if (!o->json) {
      std::printf("model: %s (%s, %.1fM params, weights %s, KV %s)\n", m.path.c_str(), arch_name(m.config.arch),
                  m.n_params() / 1e6, wtype.c_str(), dtype_name(*kv_type));
      std::printf("| %-28s | %7s | %8s | %12s | %19s |\n", "backend", "threads", "test", "tokens/s", "min .. max");
      std::printf("|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(9, '-').c_str(),
                  std::string(10, '-').c_str(), std::string(14, '-').c_str(), std::string(21, '-').c_str());
    }
    for (int th : threads) {
      CpuBackendOptions bo;
      bo.threads = th;
      OpenClOptions clo;
      clo.device = o->device;
      auto be = make_backend(o->backend, bo, clo);
      Transformer tf(m, *be);
      auto run = [&](const std::string& name, int n, bool decode) {
        const int64_t ctx = std::max(n, 1) + 1;
        auto once = [&]() {
          KVCache kv = tf.make_cache(ctx, *kv_type);
          std::vector<int32_t> t = tokens(n);
          auto t0 = std::chrono::steady_clock::now();
          if (decode) {
            for (int i = 0; i < n; ++i) tf.eval(std::span<const int32_t>(&t[static_cast<size_t>(i)], 1), kv);
          } else {
            tf.eval(t, kv);
          }
          double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          return n / s;
        };
        once();  // warm-up: page in weights, start the thread team
        std::vector<double> v;
        for (int r = 0; r < o->reps; ++r) v.push_back(once());
        std::sort(v.begin(), v.end());
        const double med = v[v.size() / 2];
        results.push_back({{"backend", be->name()}, {"threads", th}, {"test", name}, {"n_tokens", n},
                           {"tokens_per_s", med}, {"min", v.front()}, {"max", v.back()}, {"samples", v}});
        if (!o->json) {
          std::printf("| %-28s | %7d | %8s | %12.2f | %8.2f .. %8.2f |\n", be->name().c_str(), th, name.c_str(),
                      med, v.front(), v.back());
          std::fflush(stdout);
        }
      };
      for (int n : pps) run("pp" + std::to_string(n), n, false);
      for (int n : tgs) run("tg" + std::to_string(n), n, true);
    }
    if (o->json) {
      nlohmann::json j = {{"model", m.path},       {"architecture", arch_name(m.config.arch)},
                          {"n_params", m.n_params()}, {"weights", wtype},
                          {"kv_type", dtype_name(*kv_type)}, {"repetitions", o->reps},
                          {"results", results},    {"peak_rss_mib", peak_rss_mib()}};
      print_json(j);
    } else {
      std::printf("peak memory: %.1f MiB (weights file %.1f MiB, mapped)\n", peak_rss_mib(), m.weight_bytes() / 1048576.0);
    }
    return 0;
  };
}

}  // namespace cc::cli
