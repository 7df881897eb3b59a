// TTFT of every reuse method against full prefill, in one process (issue 4's benchmark).
//   bench_rag PRIMARY AUX [-t threads] [-r reps] [--prefix 64] [--chunks 8] [--chunk-len 512]
//             [--question 32] [--recompute 0.2] [--scaling 2048,4096,8192,16384] [--kv-type f32]
// Random token ids (speed does not depend on them); the chunks are put in a memory store first,
// as in production; every figure is the median of the repetitions. Prints tables.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/openmp_env.h"
#include "base/error.h"
#include "numa/placement.h"
#include "reuse/rag.h"

using namespace cc;

namespace {

RagPrompt make_prompt(int np, int n_chunks, int len, int nq, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  auto tok = [&] { return static_cast<int32_t>(rng() % static_cast<unsigned>(vocab)); };
  RagPrompt p;
  for (int i = 0; i < np; ++i) p.prefix.push_back(tok());
  for (int c = 0; c < n_chunks; ++c) {
    p.chunks.emplace_back();
    for (int i = 0; i < len; ++i) p.chunks.back().push_back(tok());
  }
  for (int i = 0; i < nq; ++i) p.question.push_back(tok());
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  size_t a = 0;
  while (a < s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    out.push_back(std::stoi(s.substr(a, b - a)));
    a = b + 1;
  }
  return out;
}

struct Row {
  Method m;
  double ttft = 0, load = 0, aux = 0, rec = 0;
  size_t recomputed = 0;
};

Row run(RagEngine& eng, const RagPrompt& p, Method m, const MethodParams& mp, int reps,
        const std::function<void()>& before = {}) {
  Row r{m};
  std::vector<double> t, l, a, c;
  for (int i = 0; i < reps; ++i) {
    if (before) before();
    RagState s = eng.prefill(p, m, mp);
    t.push_back(s.timing.total_ms());
    l.push_back(s.timing.load_ms);
    a.push_back(s.timing.aux_ms);
    c.push_back(s.timing.recompute_ms);
    r.recomputed = s.recomputed.size();
  }
  r.ttft = median(t);
  r.load = median(l);
  r.aux = median(a);
  r.rec = median(c);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  cc::ensure_passive_openmp(argv);  // before any OpenMP team: see base/openmp_env.h
  try {
    if (argc < 3) {
      std::fprintf(stderr, "usage: bench_rag PRIMARY AUX [-t N] [-r N] [--prefix N] [--chunks N] [--chunk-len N] "
                           "[--question N] [--recompute R] [--scaling L1,L2,...] [--kv-type f32|f16|bf16] [--pipeline 1] [--methods 0]\n");
      return 2;
    }
    int threads = 0, reps = 3, np = 64, n_chunks = 8, len = 512, nq = 32;
    double r = 0.2;
    std::string scaling, kv = "f32";
    bool pipeline = false, methods = true;
    for (int i = 3; i + 1 < argc; i += 2) {
      const std::string a = argv[i], v = argv[i + 1];
      if (a == "-t") threads = std::stoi(v);
      else if (a == "-r") reps = std::stoi(v);
      else if (a == "--prefix") np = std::stoi(v);
      else if (a == "--chunks") n_chunks = std::stoi(v);
      else if (a == "--chunk-len") len = std::stoi(v);
      else if (a == "--question") nq = std::stoi(v);
      else if (a == "--recompute") r = std::stod(v);
      else if (a == "--scaling") scaling = v;
      else if (a == "--kv-type") kv = v;
      else if (a == "--pipeline") pipeline = v == "1" || v == "yes";
      else if (a == "--methods") methods = v == "1" || v == "yes";
      else fail("unknown option ", a);
    }
    Model pm = load_model(argv[1]), am = load_model(argv[2]);
    CpuBackendOptions bo;
    bo.threads = threads;
    auto be = make_cpu_backend(bo);
    RagModel primary(pm, *be), aux(am, *be);
    ChunkStoreOptions so;
    so.type = KVStoreType::F16;
    so.memory_budget_bytes = size_t{16} << 30;
    ChunkStore store(so);
    RagOptions ro;
    ro.kv_type = *dtype_from_name(kv);
    ro.max_new_tokens = 1;
    RagEngine eng(primary, store, ro);
    eng.set_aux(&aux);
    MethodParams mp;
    mp.recompute = r;
    std::printf("primary %s (%.1fM params), aux %s (%.1fM params), %s, KV %s, store f16 (memory)\n", argv[1],
                pm.n_params() / 1e6, argv[2], am.n_params() / 1e6, be->name().c_str(), kv.c_str());

    const RagPrompt p = make_prompt(np, n_chunks, len, nq, static_cast<int>(pm.config.n_vocab), 1);
    eng.precompute(p);
    std::printf("\nprompt: prefix %d + %d chunks x %d + question %d = %lld tokens, chunks in the store; recompute r = %.2f; "
                "median of %d\n\n", np, n_chunks, len, nq, static_cast<long long>(p.size()), r, reps);
    if (methods) {
    std::printf("| method     | recomputed rows | TTFT ms   | speed-up vs full | load ms | aux ms  | recompute ms |\n");
    std::printf("|------------|-----------------|-----------|------------------|---------|---------|--------------|\n");
    const Row full = run(eng, p, Method::Full, mp, reps);
    for (Method m : all_methods()) {
      const Row x = m == Method::Full ? full : run(eng, p, m, mp, reps);
      std::printf("| %-10s | %15zu | %9.1f | %15.2fx | %7.1f | %7.1f | %12.1f |\n", method_name(m), x.recomputed, x.ttft,
                  full.ttft / x.ttft, x.load, x.aux, x.rec);
      std::fflush(stdout);
    }
    }
    if (pipeline) {
      // Issue 6: the concurrent pipeline (aux and primary on their own bound teams, the aux
      // cores lent to the primary for recomputation on a single node) against the sequential
      // one (both models sharing all cores) and against a selection handed in for free.
      const PlacementPlan plan = make_plan(discover_topology(), PlacementRequest{});
      std::printf("\nplacement:\n%s\n", plan.describe().c_str());
      // Two scenarios: every chunk stored (nothing for the primary to overlap: the engine runs
      // the aux first on every core), and 2 of the chunks missing, encoded on their own while
      // the aux model runs (encode_missing; the same work in both pipelines).
      RagPrompt pm2 = p;
      std::vector<ChunkKey> fresh_keys;
      for (size_t c = 0; c < 2 && c < pm2.chunks.size(); ++c) {
        for (auto& t : pm2.chunks[pm2.chunks.size() - 1 - c]) t = (t + 7919) % static_cast<int32_t>(pm.config.n_vocab);
        fresh_keys.push_back(eng.chunk_key(pm2.prefix, pm2.chunks[pm2.chunks.size() - 1 - c]));
      }
      auto drop = [&] {
        for (const auto& k : fresh_keys) store.erase(k);
      };
      auto pbe = make_cpu_backend(team_options(plan.primary)), abe = make_cpu_backend(team_options(plan.aux));
      RagModel cp(pm, *pbe), ca(am, *abe);
      RagOptions co = concurrent_options(plan, ro), so2 = ro;
      co.encode_missing = so2.encode_missing = true;
      RagOptions fo = co;
      fo.overlap_shared_cores = true;
      RagEngine ce(cp, store, co), fe(cp, store, fo), se(primary, store, so2);
      ce.set_aux(&ca);
      fe.set_aux(&ca);
      se.set_aux(&aux);
      std::printf("| cacheclip pipeline                        | chunks stored | TTFT ms   | aux + selection ms | vs free selection |\n");
      std::printf("|-------------------------------------------|---------------|-----------|--------------------|-------------------|\n");
      for (int scenario = 0; scenario < 2; ++scenario) {
        const RagPrompt& q = scenario == 0 ? p : pm2;
        const std::function<void()> before = scenario == 0 ? std::function<void()>() : std::function<void()>(drop);
        const std::vector<float> scores = context_scores(aux.tf, q, false, false);
        MethodParams given = mp;
        given.given_scores = &scores;
        const Row seq = run(se, q, Method::CacheClip, mp, reps, before);
        const Row free_sel = run(se, q, Method::CacheClip, given, reps, before);
        const Row conc = plan.concurrent ? run(ce, q, Method::CacheClip, mp, reps, before) : seq;
        const Row forced = plan.concurrent && plan.lend_aux_cores && scenario == 1
                               ? run(fe, q, Method::CacheClip, mp, reps, before) : conc;
        const char* stored = scenario == 0 ? "all" : "all but 2";
        std::printf("| sequential (both models share all cores)  | %13s | %9.1f | %18.1f | %16.3fx |\n", stored, seq.ttft, seq.aux,
                    seq.ttft / free_sel.ttft);
        std::printf("| concurrent (%-29s) | %13s | %9.1f | %18.1f | %16.3fx |\n",
                    plan.concurrent ? "bound teams, aux cores lent" : "not possible: one core", stored, conc.ttft, conc.aux,
                    conc.ttft / free_sel.ttft);
        if (plan.lend_aux_cores && scenario == 1) {
          std::printf("| concurrent, overlap forced on shared cores | %12s | %9.1f | %18.1f | %16.3fx |\n", stored, forced.ttft,
                      forced.aux, forced.ttft / free_sel.ttft);
        }
        std::printf("| selection handed in for free              | %13s | %9.1f | %18.1f | %16.3fx |\n", stored, free_sel.ttft,
                    free_sel.aux, 1.0);
        std::printf("|   aux model's share of the sequential TTFT: %.1f%%; concurrent / sequential = %.3f\n",
                    100.0 * (seq.ttft - free_sel.ttft) / seq.ttft, conc.ttft / seq.ttft);
        std::fflush(stdout);
      }
    }
    if (!scaling.empty()) {
      std::printf("\nTTFT scaling (chunks of %d tokens, prefix %d, question %d; median of %d):\n\n", len, np, nq, reps);
      std::printf("| prompt tokens | full ms   | cacheblend ms | cacheclip ms | cacheblend speed-up | cacheclip speed-up |\n");
      std::printf("|---------------|-----------|---------------|--------------|---------------------|--------------------|\n");
      for (int total : parse_list(scaling)) {
        const int nc = std::max(1, (total - np - nq) / len);
        const RagPrompt q = make_prompt(np, nc, len, nq, static_cast<int>(pm.config.n_vocab), 7u + static_cast<unsigned>(total));
        eng.precompute(q);
        const Row f = run(eng, q, Method::Full, mp, reps), b = run(eng, q, Method::CacheBlend, mp, reps),
                  c = run(eng, q, Method::CacheClip, mp, reps);
        std::printf("| %13lld | %9.1f | %13.1f | %12.1f | %18.2fx | %17.2fx |\n", static_cast<long long>(q.size()), f.ttft,
                    b.ttft, c.ttft, f.ttft / b.ttft, f.ttft / c.ttft);
        std::fflush(stdout);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_rag: %s\n", e.what());
    return 1;
  }
}
