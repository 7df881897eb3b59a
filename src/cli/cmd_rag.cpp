// cacheclip rag / compare / precompute: RAG requests through the chunk KV store.
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "base/error.h"
#include "base/mapped_file.h"
#include "cli/commands.h"
#include "infer/sampler.h"
#include "numa/placement.h"
#include "reuse/eval.h"
#include "reuse/rag.h"

namespace cc::cli {

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Options every RAG command shares.
struct RagOpts {
  std::string model, aux, store, store_type = "f16", tokenizer, aux_tokenizer, kv_type = "f32", salt;
  std::string prefix, prefix_file, question, prompt, sep = "\n---\n", method = "cacheclip", pool = "mean", rows = "all";
  std::vector<std::string> docs;
  double mem_budget_mib = 1024;
  int64_t chunk_tokens = 0, n = 32;
  int threads = 0;
  bool chat = false, json = false, no_store_missing = false, encode_missing = false, show_recomputed = false;
  MethodParams mp;
  std::string numa, aux_cpus, primary_cpus, primary_backend, aux_backend = "cpu", device;
  int aux_cores = 0;
  int aux_layers = 0;
};

// --numa / --aux-cpus / --primary-cpus / --aux-cores over the environment's defaults.
PlacementRequest placement_of(const std::string& numa, const std::string& aux_cpus, const std::string& primary_cpus,
                              int aux_cores) {
  PlacementRequest r = placement_from_env();
  if (!numa.empty()) r.mode = parse_numa_mode(numa);
  if (!aux_cpus.empty()) r.aux_cpus = parse_cpu_list(aux_cpus);
  if (!primary_cpus.empty()) r.primary_cpus = parse_cpu_list(primary_cpus);
  if (aux_cores < 0) fail("--aux-cores must be >= 1 (or 0 for the default), got ", aux_cores);
  if (aux_cores > 0) r.aux_cores = aux_cores;
  return r;
}

void add_placement_options(CLI::App* sub, std::string& numa, std::string& aux_cpus, std::string& primary_cpus,
                           int& aux_cores) {
  sub->add_option("--numa", numa, "placement: auto, off, distribute, isolate (env CACHECLIP_NUMA; default auto)");
  sub->add_option("--aux-cpus", aux_cpus, "CPUs of the auxiliary model, e.g. 6-7 (env CACHECLIP_AUX_CPUS)");
  sub->add_option("--primary-cpus", primary_cpus, "CPUs of the primary model (env CACHECLIP_PRIMARY_CPUS)");
  sub->add_option("--aux-cores", aux_cores, "single NUMA node: cores given to the aux model (default max(1, cores/8))");
}

// Touches every page of a model's weights from a thread bound to cpus, so that pages not yet
// in memory are placed on that team's NUMA node (first touch).
void first_touch(const Model& m, const std::vector<unsigned>& cpus) {
  std::thread t([&] {
    bind_current_thread(cpus);
    volatile uint8_t sink = 0;
    for (const Tensor& x : m.tensors()) {
      for (size_t o = 0; o < x.nbytes; o += 4096) sink = sink + x.data[o];
    }
    (void)sink;
  });
  t.join();
}

void add_request_options(CLI::App* sub, RagOpts& o, bool with_method) {
  sub->add_option("-m,--model", o.model, "primary model file or folder")->required();
  sub->add_option("--aux", o.aux, "auxiliary model (same tokenizer) for cacheclip");
  sub->add_option("--aux-layers", o.aux_layers, "use the primary's first K layers as the auxiliary model");
  sub->add_option("--store", o.store, "chunk store folder (default: memory only)");
  sub->add_option("--store-type", o.store_type, "storage type of chunk KV: f16, bf16, int8, f32")->capture_default_str();
  sub->add_option("--mem-budget", o.mem_budget_mib, "memory tier budget in MiB")->capture_default_str();
  sub->add_option("--prefix", o.prefix, "shared prefix text (system prompt)");
  sub->add_option("--prefix-file", o.prefix_file, "read the shared prefix from this file, byte for byte");
  sub->add_option("--doc", o.docs, "a document file (repeatable, in retrieval order)");
  sub->add_option("-q,--question", o.question, "the question");
  sub->add_option("--prompt", o.prompt, "one prompt: PREFIX<sep>CHUNK<sep>...<sep>QUESTION (instead of --prefix/--doc/-q)");
  sub->add_option("--sep", o.sep, "chunk separator of --prompt (default: a line '---')");
  sub->add_option("--chunk-tokens", o.chunk_tokens, "split every document into chunks of N tokens (0 = one chunk per document)");
  sub->add_flag("--chat", o.chat, "apply the model's chat template around the request");
  sub->add_option("-t,--threads", o.threads, "threads (default: all cores)");
  sub->add_option("--kv-type", o.kv_type, "the request's KV cache type: f32, f16, bf16")->capture_default_str();
  sub->add_option("--salt", o.salt, "tenant salt of chunk keys");
  sub->add_option("--tokenizer", o.tokenizer, "tokenizer.bin for a llama2.c primary");
  sub->add_option("--aux-tokenizer", o.aux_tokenizer, "tokenizer.bin for a llama2.c auxiliary model");
  sub->add_option("-n,--n-predict", o.n, "tokens to generate (compare: greedy tokens compared)")->capture_default_str();
  sub->add_flag("--json", o.json, "print JSON");
  if (with_method) sub->add_option("--method", o.method, "full, prefix, naive, epic, cacheblend, ape, cacheclip")->capture_default_str();
  sub->add_option("-r,--recompute", o.mp.recompute, "recompute ratio r (cacheblend, cacheclip)")->capture_default_str();
  sub->add_option("--epic-k", o.mp.epic_k, "epic: first k tokens of each chunk")->capture_default_str();
  sub->add_option("--check-layer", o.mp.check_layer, "cacheblend: check layer")->capture_default_str();
  sub->add_option("--ape-t", o.mp.ape_t, "ape: temperature T")->capture_default_str();
  sub->add_option("--ape-s", o.mp.ape_s, "ape: scale S")->capture_default_str();
  sub->add_option("--window", o.mp.window, "cacheclip: window w")->capture_default_str();
  sub->add_option("--pool", o.pool, "cacheclip: pooling over heads, mean or max")->capture_default_str();
  sub->add_option("--rows", o.rows, "cacheclip: question rows scored, all or last")->capture_default_str();
  sub->add_flag("--snap", o.mp.snap_to_chunk_start,
                "cacheclip: a window starting fewer than w rows after its chunk's first row takes those rows too");
  add_placement_options(sub, o.numa, o.aux_cpus, o.primary_cpus, o.aux_cores);
  sub->add_option("--primary-backend", o.primary_backend,
                  "cpu, opencl or auto (default: opencl when --device is given, else cpu)");
  sub->add_option("--aux-backend", o.aux_backend, "cpu, opencl or auto")->capture_default_str();
  sub->add_option("--device", o.device, "OpenCL device: P:D, P, or part of its name (see cacheclip devices)");
  sub->add_flag("--encode-missing", o.encode_missing,
                "encode chunks missing from the store on their own (and store them) instead of recomputing "
                "their rows in the request; overlapped with the aux model when placement allows");
}

// Everything a request needs, loaded once.
struct Loaded {
  Model pm, am;
  bool has_aux = false;
  PlacementPlan plan;
  std::unique_ptr<Backend> be, aux_be;
  std::unique_ptr<RagModel> primary, aux;
  std::unique_ptr<ChunkStore> store;
  std::unique_ptr<RagEngine> eng;
  std::unique_ptr<Tokenizer> tok;
};

std::unique_ptr<Loaded> load_all(RagOpts& o, int64_t room) {
  if (o.pool != "mean" && o.pool != "max") fail("--pool must be mean or max, not '", o.pool, "'");
  if (o.rows != "all" && o.rows != "last") fail("--rows must be all or last, not '", o.rows, "'");
  o.mp.max_over_heads = o.pool == "max";
  o.mp.last_row_only = o.rows == "last";
  check_method_params(o.mp);
  if (o.chunk_tokens < 0) fail("--chunk-tokens must be >= 0");
  // An upper bound keeps the byte count representable (inf or 1e300 would wrap to 0 bytes).
  if (!(o.mem_budget_mib >= 0 && o.mem_budget_mib <= 1 << 30)) {
    fail("--mem-budget must be in 0..", 1 << 30, " MiB, got ", o.mem_budget_mib);
  }
  auto L = std::make_unique<Loaded>();
  LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  L->pm = load_model(o.model, lo);
  if (!o.aux.empty() && o.aux_layers > 0) fail("give --aux or --aux-layers, not both");
  if (!o.aux.empty()) {
    LoadOptions alo;
    alo.tokenizer_path = o.aux_tokenizer.empty() ? o.tokenizer : o.aux_tokenizer;
    L->am = load_model(o.aux, alo);
    L->has_aux = true;
  } else if (o.aux_layers > 0) {  // the primary's first layers as the auxiliary model
    L->am = truncate_layers(L->pm, o.aux_layers);
    L->has_aux = true;
  }
  // Placement: with an aux model and a machine that can be split, two bound teams that run
  // concurrently; otherwise one team shared by both models.
  const PlacementRequest req = placement_of(o.numa, o.aux_cpus, o.primary_cpus, o.aux_cores);
  L->plan = make_plan(discover_topology(), req);
  OpenClOptions clo;
  clo.device = o.device;
  const std::string pkind = !o.primary_backend.empty() ? o.primary_backend : (o.device.empty() ? "cpu" : "opencl");
  // Two CPU teams only when both models run on the CPU; a device primary or aux leaves the
  // CPU cores to the other model.
  const bool split = L->has_aux && L->plan.concurrent && pkind == "cpu" && o.aux_backend == "cpu";
  CpuBackendOptions bo;
  bo.threads = o.threads;
  if (L->plan.bind) {
    bo.cpus = split ? L->plan.primary.cpus : L->plan.all_cpus;
    if (bo.threads == 0) {
      bo.threads = split ? L->plan.primary.threads
                         : (L->plan.mode == NumaMode::Isolate ? L->plan.primary.threads + L->plan.aux.threads
                                                              : L->plan.primary.threads);
    }
  }
  L->be = make_backend(pkind, bo, clo);
  if (L->has_aux && !split && (o.aux_backend != "cpu" || pkind != "cpu")) {
    L->aux_be = make_backend(o.aux_backend, CpuBackendOptions{o.threads, {}}, clo);
  }
  if (split) {
    L->aux_be = make_cpu_backend(team_options(L->plan.aux));
    first_touch(L->pm, L->plan.primary.cpus);
    first_touch(L->am, L->plan.aux.cpus);
  }
  L->primary = std::make_unique<RagModel>(L->pm, *L->be);
  ChunkStoreOptions so;
  so.dir = o.store;
  so.type = parse_kv_store_type(o.store_type);
  so.memory_budget_bytes = static_cast<size_t>(o.mem_budget_mib * 1048576.0);
  if (L->plan.bind) so.numa_nodes = L->plan.primary.nodes;  // chunk KV where the primary runs
  L->store = std::make_unique<ChunkStore>(so);
  RagOptions ro;
  const auto kt = dtype_from_name(o.kv_type);
  if (!kt) fail("unknown KV cache type '", o.kv_type, "' (f32, f16, bf16)");
  ro.kv_type = *kt;
  ro.max_new_tokens = room;
  ro.tenant_salt = o.salt;
  ro.encode_missing = o.encode_missing;
  if (split) {
    ro = concurrent_options(L->plan, ro);
    if (o.threads != 0) ro.recompute_cpus.clear();  // -t fixes the primary's team
  }
  if (L->aux_be && !split) ro.concurrent = true;  // device primary, aux on the CPU cores: overlap
  L->eng = std::make_unique<RagEngine>(*L->primary, *L->store, ro);
  if (L->has_aux) {
    L->aux = std::make_unique<RagModel>(L->am, L->aux_be ? *L->aux_be : *L->be);
    L->eng->set_aux(L->aux.get());
  }
  // set_aux has compared the two vocabularies: from here the Tokenizer holds the only copy (the
  // primary's spec moves into it; the aux's is dropped), not three of a 150k vocabulary.
  L->tok = std::make_unique<Tokenizer>(std::move(L->pm.tokenizer));
  L->am.tokenizer = {};
  return L;
}

// Splits each document's tokens into pieces of n tokens (n = 0: unchanged).
void split_chunks(RagPrompt& p, int64_t n) {
  if (n <= 0) return;
  std::vector<std::vector<int32_t>> out;
  for (const auto& c : p.chunks) {
    for (size_t i = 0; i < c.size(); i += static_cast<size_t>(n)) {
      out.emplace_back(c.begin() + static_cast<int64_t>(i), c.begin() + static_cast<int64_t>(std::min(c.size(), i + static_cast<size_t>(n))));
    }
  }
  p.chunks = std::move(out);
}

// A document's text; a file with NUL bytes is not text (a model file, an archive, a store file).
std::string read_document(const std::string& path) {
  std::string s = read_text_file(path);
  if (const size_t z = s.find('\0'); z != std::string::npos) {
    fail(path, ": not a text document (a NUL byte at offset ", z, ")");
  }
  return s;
}

// --prefix or --prefix-file (read exactly: a shell's $(cat f) would drop trailing newlines).
std::string prefix_text(const std::string& prefix, const std::string& file) {
  if (file.empty()) return prefix;
  if (!prefix.empty()) fail("give --prefix or --prefix-file, not both");
  return read_text_file(file);
}

RagPrompt request_of(const RagOpts& o, const Tokenizer& tok) {
  RagText t;
  if (!o.prompt.empty()) {
    if (!o.docs.empty() || !o.question.empty() || !o.prefix.empty() || !o.prefix_file.empty()) {
      fail("give the request either as --prompt or as --prefix/--doc/-q, not both");
    }
    t = split_rag_text(o.prompt, o.sep);
  } else {
    if (o.docs.empty()) fail("no documents: give --doc FILE (repeatable) or --prompt");
    if (o.question.empty()) fail("no question: give -q TEXT");
    t.prefix = prefix_text(o.prefix, o.prefix_file);
    t.question = o.question;
    for (const auto& d : o.docs) t.docs.push_back(read_document(d));
  }
  RagPrompt p = tokenize_rag(tok, t, o.chat);
  split_chunks(p, o.chunk_tokens);
  return p;
}

// "a,b,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

nlohmann::json timing_json(const RagState& s) {
  return {{"tokenize_ms", s.timing.tokenize_ms}, {"load_ms", s.timing.load_ms}, {"transfer_ms", s.timing.transfer_ms}, {"aux_ms", s.timing.aux_ms},
          {"recompute_ms", s.timing.recompute_ms}, {"first_token_ms", s.timing.first_token_ms},
          {"ttft_ms", s.timing.total_ms()}, {"overlapped", s.timing.overlapped}, {"stage_ms", s.timing.stage_ms}};
}

// --show-recomputed: which rows of C2..Cn the method computed fresh. Text: each chunk's text with
// the recomputed runs marked [[like this]]; JSON: the [start, end) token ranges within each chunk.
struct Recomputed {
  std::string text;
  nlohmann::json spans = nlohmann::json::array();
};
Recomputed recomputed_view(const RagPrompt& p, const RagState& s, const Tokenizer& tok) {
  const PromptLayout L(p);
  std::vector<uint8_t> fresh(static_cast<size_t>(L.n_total), 0);
  for (int64_t r : s.recomputed) fresh[static_cast<size_t>(r)] = 1;
  Recomputed out;
  for (size_t i = 1; i < p.chunks.size(); ++i) {
    const auto& ids = p.chunks[i];
    const int64_t s0 = L.chunk_start[i], n = static_cast<int64_t>(ids.size());
    nlohmann::json runs = nlohmann::json::array();
    int64_t k = 0, marked = 0;
    out.text += "C" + std::to_string(i + 1) + ": ";
    while (k < n) {  // maximal runs of rows with the same state
      const bool f = fresh[static_cast<size_t>(s0 + k)];
      int64_t e = k;
      while (e < n && static_cast<bool>(fresh[static_cast<size_t>(s0 + e)]) == f) ++e;
      const std::string piece = tok.decode(std::span<const int32_t>(ids.data() + k, static_cast<size_t>(e - k)));
      out.text += f ? "[[" + piece + "]]" : piece;
      if (f) {
        runs.push_back({k, e});
        marked += e - k;
      }
      k = e;
    }
    out.text += "\n   (" + std::to_string(marked) + " of " + std::to_string(n) + " tokens recomputed)\n";
    out.spans.push_back({{"chunk", i + 1}, {"tokens", n}, {"recomputed", runs}});
  }
  return out;
}

}  // namespace

Runner add_rag(CLI::App& app) {
  auto* sub = app.add_subcommand("rag", "Answer a RAG request with a reuse method, printing a TTFT breakdown");
  auto o = std::make_shared<RagOpts>();
  add_request_options(sub, *o, true);
  sub->add_flag("--no-store-missing", o->no_store_missing, "do not add chunks that missed to the store");
  sub->add_flag("--show-recomputed", o->show_recomputed,
                "show which tokens of chunks 2..n were recomputed (text: marked [[so]]; JSON: ranges per chunk)");
  return [o]() {
    if (o->n < 0 || o->n > (1 << 20)) fail("-n must be in 0..1048576");
    auto L = load_all(*o, o->n + 1);
    const Method m = parse_method(o->method);
    auto t0 = Clock::now();
    const RagPrompt p = request_of(*o, *L->tok);
    const double tok_ms = ms_since(t0);
    RagState s = L->eng->prefill(p, m, o->mp);
    s.timing.tokenize_ms = tok_ms;
    if (L->aux_be && L->plan.lend_aux_cores && o->threads == 0) {  // decoding: the aux cores are free now
      L->be->set_cpus(L->plan.all_cpus, L->plan.primary.threads + L->plan.aux.threads);
    }
    auto t1 = Clock::now();
    const std::vector<int32_t> ans = L->eng->greedy(s, *L->tok, o->n);
    const double gen_ms = ms_since(t1);
    const std::string text = L->tok->decode(ans, true);
    if (!o->no_store_missing && s.missing_chunks > 0) L->eng->precompute(p);  // after the answer, outside the TTFT
    const auto st = L->store->stats();
    if (o->json) {
      nlohmann::json j = {{"method", method_name(m)},
                          {"answer", text},
                          {"tokens", s.n_tokens},
                          {"reused", s.reused},
                          {"recomputed", s.recomputed.size()},
                          {"missing_chunks", s.missing_chunks},
                          {"chunks", p.chunks.size()},
                          {"timing", timing_json(s)},
                          {"generated", ans.size()},
                          {"generation_ms", gen_ms},
                          {"store", {{"mem_hits", st.mem_hits}, {"disk_hits", st.disk_hits}, {"misses", st.misses},
                                     {"rejected", st.rejected}}}};
      if (o->show_recomputed) j["recomputed_ranges"] = recomputed_view(p, s, *L->tok).spans;
      print_json(j);
      return 0;
    }
    std::printf("%s\n", text.c_str());
    if (o->show_recomputed) std::fprintf(stderr, "\n%s", recomputed_view(p, s, *L->tok).text.c_str());
    std::fprintf(stderr, "\n%s: %lld prompt tokens (%zu chunks), %lld reused, %zu recomputed, %lld chunk(s) missing from the store\n",
                 method_name(m), static_cast<long long>(s.n_tokens), p.chunks.size(), static_cast<long long>(s.reused),
                 s.recomputed.size(), static_cast<long long>(s.missing_chunks));
    if (s.timing.overlapped) {
      std::fprintf(stderr, "TTFT %.1f ms = tokenize %.1f + [store lookup/load %.1f | aux prefill/selection %.1f, concurrent: %.1f wall] + recompute %.1f + first token %.1f\n",
                   s.timing.total_ms(), s.timing.tokenize_ms, s.timing.load_ms, s.timing.aux_ms, s.timing.stage_ms,
                   s.timing.recompute_ms, s.timing.first_token_ms);
    } else {
      std::fprintf(stderr, "TTFT %.1f ms = tokenize %.1f + store lookup/load %.1f (of which transfer to the backend %.1f) + aux prefill/selection %.1f + recompute %.1f + first token %.1f\n",
                   s.timing.total_ms(), s.timing.tokenize_ms, s.timing.load_ms, s.timing.transfer_ms, s.timing.aux_ms,
                   s.timing.recompute_ms, s.timing.first_token_ms);
    }
    std::fprintf(stderr, "placement: %s; primary %s%s\n", numa_mode_name(L->plan.mode), L->be->name().c_str(),
                 L->aux_be ? cat(", aux ", L->aux_be->name()).c_str() : "");
    std::fprintf(stderr, "generation: %zu tokens in %.1f ms; store: %llu memory hits, %llu disk hits, %llu misses, %llu rejected\n",
                 ans.size(), gen_ms, static_cast<unsigned long long>(st.mem_hits), static_cast<unsigned long long>(st.disk_hits),
                 static_cast<unsigned long long>(st.misses), static_cast<unsigned long long>(st.rejected));
    return 0;
  };
}

Runner add_compare(CLI::App& app) {
  auto* sub = app.add_subcommand("compare", "Run a request with full prefill and with each method: fidelity and TTFT");
  auto o = std::make_shared<RagOpts>();
  o->n = 32;
  add_request_options(sub, *o, false);
  auto methods = std::make_shared<std::string>("prefix,naive,epic,cacheblend,ape,cacheclip");
  sub->add_option("--methods", *methods, "comma-separated methods to compare with full")->capture_default_str();
  return [o, methods]() {
    if (o->n < 1 || o->n > 4096) fail("-n must be in 1..4096");
    auto L = load_all(*o, o->n + 1);
    std::vector<Method> ms;
    for (const auto& m : split_list(*methods)) ms.push_back(parse_method(m));
    const RagPrompt p = request_of(*o, *L->tok);
    L->eng->precompute(p);  // chunks in the store, as in production
    (void)L->eng->prefill(p, Method::Full, o->mp);  // warm-up: thread teams, page faults, scratch
    RagState full = L->eng->prefill(p, Method::Full, o->mp);
    const std::vector<float> full_logits = full.logits, full_hidden = full.hidden;
    const double full_ms = full.timing.total_ms();
    const std::vector<int32_t> ref = L->eng->greedy(full, *L->tok, o->n);
    nlohmann::json rows = nlohmann::json::array();
    std::printf("%zu prompt tokens (prefix %zu, %zu chunks, question %zu); reference: full prefill %.1f ms\n",
                static_cast<size_t>(p.size()), p.prefix.size(), p.chunks.size(), p.question.size(), full_ms);
    std::printf("| method     | recomputed | TTFT ms  | speed-up | KL(full||m) | top-1 agree | hidden rel err |\n");
    std::printf("|------------|------------|----------|----------|-------------|-------------|----------------|\n");
    for (Method m : ms) {
      if (m == Method::CacheClip && !L->has_aux) {
        std::printf("| %-10s | (skipped: no --aux model) |\n", method_name(m));
        continue;
      }
      RagState s = L->eng->prefill(p, m, o->mp);
      const double kl = kl_divergence(full_logits, s.logits);
      double num = 0, den = 0;
      for (size_t i = 0; i < full_hidden.size(); ++i) {
        num += (static_cast<double>(s.hidden[i]) - full_hidden[i]) * (static_cast<double>(s.hidden[i]) - full_hidden[i]);
        den += static_cast<double>(full_hidden[i]) * full_hidden[i];
      }
      const double rel = std::sqrt(num / std::max(den, 1e-30));
      // Top-1 agreement: the method's argmax against the full model's greedy tokens, fed them.
      int64_t agree = 0;
      std::vector<float> logits = s.logits;
      for (size_t i = 0; i < ref.size(); ++i) {
        agree += argmax_token(logits) == ref[i];
        if (i + 1 < ref.size()) logits = L->eng->step(s, ref[i]);
      }
      const double top1 = ref.empty() ? 1.0 : static_cast<double>(agree) / static_cast<double>(ref.size());
      const double ms_ = s.timing.total_ms();
      std::printf("| %-10s | %10zu | %8.1f | %7.2fx | %11.3g | %11.3f | %14.3g |\n", method_name(m), s.recomputed.size(),
                  ms_, full_ms / std::max(ms_, 1e-3), kl, top1, rel);
      rows.push_back({{"method", method_name(m)}, {"recomputed", s.recomputed.size()}, {"ttft_ms", ms_},
                      {"speedup", full_ms / std::max(ms_, 1e-3)}, {"kl", kl}, {"top1", top1}, {"hidden_rel_err", rel},
                      {"timing", timing_json(s)}});
    }
    nlohmann::json out = {{"tokens", p.size()}, {"full_ttft_ms", full_ms}, {"methods", rows}};
    if (L->has_aux) {
      const auto prim = context_scores(L->primary->tf, p, o->mp.max_over_heads, o->mp.last_row_only);
      const auto aux = context_scores(L->aux->tf, p, o->mp.max_over_heads, o->mp.last_row_only);
      const AttentionSimilarity sim = attention_similarity(PromptLayout(p), prim, aux, o->mp.recompute);
      std::printf("premise (last-layer attention over the context, aux vs primary): KL %.4f, Pearson %.3f, top-%.0f%% Jaccard %.3f\n",
                  sim.kl, sim.pearson, o->mp.recompute * 100, sim.jaccard);
      out["premise"] = {{"kl", sim.kl}, {"pearson", sim.pearson}, {"jaccard", sim.jaccard}};
    }
    if (o->json) print_json(out);
    return 0;
  };
}

// The documents of a folder, sorted by name (precompute and ask read the same order): its
// regular files, less hidden files, editor backups (name~) and chunk store files (*.cckv*,
// should a store share the folder).
std::vector<fs::path> doc_files(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, ": not a folder of documents");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || name.back() == '~' || name.find(".cckv") != std::string::npos) continue;
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) fail(dir, ": no files");
  return files;
}

// Display text of an answer on one line, at most n characters.
std::string one_line(const std::string& s, size_t n) {
  std::string t;
  for (char c : s) t += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  const size_t a = t.find_first_not_of(' ');
  t = a == std::string::npos ? "" : t.substr(a, t.find_last_not_of(' ') - a + 1);
  return t.size() > n ? t.substr(0, n - 3) + "..." : t;
}

Runner add_ask(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "ask", "Ask questions over a document set with several methods: the answers side by side, with TTFT and reuse");
  auto o = std::make_shared<RagOpts>();
  o->n = 24;
  add_request_options(sub, *o, false);
  struct A {
    std::string docs_dir, questions, methods = "full,cacheclip";
  };
  auto a = std::make_shared<A>();
  sub->add_option("--docs", a->docs_dir, "folder of documents, one chunk per file in name order (as precompute)");
  sub->add_option("--questions", a->questions,
                  "JSON list of {\"question\", \"answers\"} (answers optional) instead of -q");
  sub->add_option("--methods", a->methods, "comma-separated methods, side by side")->capture_default_str();
  return [o, a]() {
    if (o->n < 1 || o->n > 4096) fail("-n must be in 1..4096");
    if (!o->prompt.empty()) fail("ask takes --docs or --doc and -q/--questions, not --prompt");
    struct Q {
      std::string text;
      std::vector<std::string> answers;
    };
    std::vector<Q> qs;
    if (!a->questions.empty()) {
      if (!o->question.empty()) fail("give -q or --questions, not both");
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_text_file(a->questions));
      } catch (const nlohmann::json::exception& e) {
        fail(a->questions, ": not valid JSON (", e.what(), ")");
      }
      if (!j.is_array() || j.empty()) fail(a->questions, ": expected a non-empty JSON list of {\"question\", \"answers\"}");
      for (size_t i = 0; i < j.size(); ++i) {
        const auto& e = j[i];
        if (!e.is_object() || !e.contains("question") || !e["question"].is_string()) {
          fail(a->questions, ": entry ", i, " needs \"question\" (a string)");
        }
        Q q{e["question"].get<std::string>(), {}};
        if (q.text.empty()) fail(a->questions, ": entry ", i, ": the question is empty");
        if (e.contains("answers")) {
          if (!e["answers"].is_array()) fail(a->questions, ": entry ", i, ": \"answers\" must be a list of strings");
          for (const auto& x : e["answers"]) {
            if (!x.is_string()) fail(a->questions, ": entry ", i, ": every answer must be a string");
            q.answers.push_back(x.get<std::string>());
          }
        }
        qs.push_back(std::move(q));
      }
    } else {
      if (o->question.empty()) fail("no question: give -q TEXT or --questions FILE");
      qs.push_back({o->question, {}});
    }
    if (!a->docs_dir.empty()) {
      if (!o->docs.empty()) fail("give --docs DIR or --doc FILE..., not both");
      for (const auto& f : doc_files(a->docs_dir)) o->docs.push_back(f.string());
    }
    std::vector<Method> ms;
    for (const auto& m : split_list(a->methods)) ms.push_back(parse_method(m));
    if (ms.empty()) fail("--methods is empty");
    auto L = load_all(*o, o->n + 1);
    for (Method m : ms) {
      if (m == Method::CacheClip && !L->has_aux) fail("cacheclip needs an auxiliary model: give --aux or --aux-layers");
    }
    struct Cell {
      std::string answer;
      double ttft = 0;
      int64_t reused = 0, recomputed = 0, missing = 0;
      bool correct = false;
    };
    std::vector<std::vector<Cell>> cells(qs.size(), std::vector<Cell>(ms.size()));
    int64_t n_tokens = 0;
    bool warmed = false;
    for (size_t qi = 0; qi < qs.size(); ++qi) {
      o->question = qs[qi].text;
      const RagPrompt p = request_of(*o, *L->tok);
      n_tokens = static_cast<int64_t>(p.size());
      if (!warmed) {  // thread teams, page faults, scratch: not part of any request's TTFT
        (void)L->eng->prefill(p, Method::Full, o->mp);
        warmed = true;
      }
      for (size_t mi = 0; mi < ms.size(); ++mi) {
        RagState s = L->eng->prefill(p, ms[mi], o->mp);
        Cell& c = cells[qi][mi];
        c.ttft = s.timing.total_ms();
        c.reused = s.reused;
        c.recomputed = static_cast<int64_t>(s.recomputed.size());
        c.missing = s.missing_chunks;
        c.answer = L->tok->decode(L->eng->greedy(s, *L->tok, o->n), true);
        c.correct = !qs[qi].answers.empty() && exact_match(c.answer, qs[qi].answers) > 0;
      }
    }
    const bool has_answers = std::any_of(qs.begin(), qs.end(), [](const Q& q) { return !q.answers.empty(); });
    if (o->json) {
      nlohmann::json rows = nlohmann::json::array();
      for (size_t qi = 0; qi < qs.size(); ++qi) {
        nlohmann::json r = {{"question", qs[qi].text}, {"answers", qs[qi].answers}};
        for (size_t mi = 0; mi < ms.size(); ++mi) {
          const Cell& c = cells[qi][mi];
          r[method_name(ms[mi])] = {{"answer", c.answer}, {"ttft_ms", c.ttft}, {"reused", c.reused},
                                    {"recomputed", c.recomputed}, {"missing_chunks", c.missing}, {"correct", c.correct}};
        }
        rows.push_back(r);
      }
      print_json({{"documents", o->docs.size()}, {"tokens", n_tokens}, {"questions", rows}});
      return 0;
    }
    std::printf("%zu documents, ~%lld prompt tokens per question; TTFT in ms; reused/recomputed in prompt tokens\n\n",
                o->docs.size(), static_cast<long long>(n_tokens));
    std::string head = "| # | question                                 |" + std::string(has_answers ? " expected   |" : "");
    std::string rule = "|---|------------------------------------------|" + std::string(has_answers ? "------------|" : "");
    for (Method m : ms) {
      head += cat(" ", method_name(m), std::string(std::max<size_t>(1, 13 - std::strlen(method_name(m))), ' '),
                  "| TTFT ms | reused/recomp |");
      rule += "--------------|---------|---------------|";
    }
    std::printf("%s\n%s\n", head.c_str(), rule.c_str());
    std::vector<double> sum_ttft(ms.size(), 0.0);
    std::vector<int> n_correct(ms.size(), 0);
    for (size_t qi = 0; qi < qs.size(); ++qi) {
      std::string q = qs[qi].text;
      if (q.rfind("Question: ", 0) == 0) q = q.substr(10);
      const size_t cut = q.find("\nAnswer:");
      if (cut != std::string::npos) q = q.substr(0, cut);
      std::printf("| %zu | %-40s |", qi + 1, one_line(q, 40).c_str());
      if (has_answers) std::printf(" %-10s |", one_line(qs[qi].answers.empty() ? "" : qs[qi].answers[0], 10).c_str());
      for (size_t mi = 0; mi < ms.size(); ++mi) {
        const Cell& c = cells[qi][mi];
        sum_ttft[mi] += c.ttft;
        n_correct[mi] += c.correct;
        const std::string mark = has_answers ? (c.correct ? " ok" : " x ") : "";
        std::printf(" %-*s%s | %7.1f | %6lld/%-6lld |", has_answers ? 9 : 12, one_line(c.answer, has_answers ? 9 : 12).c_str(),
                    mark.c_str(), c.ttft, static_cast<long long>(c.reused), static_cast<long long>(c.recomputed));
      }
      std::printf("\n");
    }
    std::printf("\n");
    for (size_t mi = 0; mi < ms.size(); ++mi) {
      const double mean = sum_ttft[mi] / static_cast<double>(qs.size());
      std::printf("%-10s mean TTFT %7.1f ms (%.2fx vs %s)", method_name(ms[mi]), mean, (sum_ttft[0] / qs.size()) / std::max(mean, 1e-3),
                  method_name(ms[0]));
      if (has_answers) std::printf(", %d/%zu correct", n_correct[mi], qs.size());
      std::printf("\n");
    }
    const auto st = L->store->stats();
    std::printf("store: %llu memory hits, %llu disk hits, %llu misses%s\n", static_cast<unsigned long long>(st.mem_hits),
                static_cast<unsigned long long>(st.disk_hits), static_cast<unsigned long long>(st.misses),
                st.misses > 0 ? " (run cacheclip precompute on the documents with the same --prefix first)" : "");
    return 0;
  };
}

Runner add_precompute(CLI::App& app) {
  auto* sub = app.add_subcommand("precompute", "Fill a chunk store from a folder of documents");
  struct P {
    std::string model, store, store_type = "f16", docs, prefix, prefix_file, tokenizer, salt;
    int64_t chunk_tokens = 0;
    int threads = 0;
    bool chat = false;
  };
  auto o = std::make_shared<P>();
  sub->add_option("-m,--model", o->model, "primary model")->required();
  sub->add_option("--store", o->store, "chunk store folder")->required();
  sub->add_option("--store-type", o->store_type, "f16, bf16, int8, f32")->capture_default_str();
  sub->add_option("--docs", o->docs, "folder of documents (one file per chunk, sorted by name)")->required();
  sub->add_option("--prefix", o->prefix, "the shared prefix the requests will use");
  sub->add_option("--prefix-file", o->prefix_file, "read the shared prefix from this file, byte for byte");
  sub->add_option("--chunk-tokens", o->chunk_tokens, "split documents into chunks of N tokens (0 = one per file)");
  sub->add_flag("--chat", o->chat, "the requests use the chat template");
  sub->add_option("-t,--threads", o->threads, "threads");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.bin for a llama2.c model");
  sub->add_option("--salt", o->salt, "tenant salt");
  return [o]() {
    if (o->chunk_tokens < 0) fail("--chunk-tokens must be >= 0");
    const std::vector<fs::path> files = doc_files(o->docs);
    LoadOptions lo;
    lo.tokenizer_path = o->tokenizer;
    Model m = load_model(o->model, lo);
    CpuBackendOptions bo;
    bo.threads = o->threads;
    auto be = make_cpu_backend(bo);
    RagModel rm(m, *be);
    ChunkStoreOptions so;
    so.dir = o->store;
    so.type = parse_kv_store_type(o->store_type);
    so.memory_budget_bytes = 0;  // straight to disk
    ChunkStore store(so);
    RagOptions ro;
    ro.tenant_salt = o->salt;
    RagEngine eng(rm, store, ro);
    Tokenizer tok(std::move(m.tokenizer));  // the fingerprint was taken by RagModel; one copy of the vocabulary
    RagText t;
    t.prefix = prefix_text(o->prefix, o->prefix_file);
    t.question = "?";
    int computed = 0;
    size_t total_chunks = 0;
    auto t0 = Clock::now();
    const bool tty = isatty(2);
    for (size_t i = 0; i < files.size(); ++i) {
      t.docs = {read_text_file(files[i].string())};
      if (t.docs[0].empty() || t.docs[0].find('\0') != std::string::npos) {
        std::fprintf(stderr, "cacheclip: warning: %s is %s, skipped\n", files[i].c_str(),
                     t.docs[0].empty() ? "empty" : "not a text document (it has NUL bytes)");
        continue;
      }
      RagPrompt p = tokenize_rag(tok, t, o->chat);
      split_chunks(p, o->chunk_tokens);
      total_chunks += p.chunks.size();
      computed += eng.precompute(p);
      const int width = 30, done = static_cast<int>(width * (i + 1) / files.size());
      std::fprintf(stderr, "%s[%s%s] %zu/%zu documents, %zu chunks, %.1f s%s", tty ? "\r" : "",
                   std::string(static_cast<size_t>(done), '#').c_str(), std::string(static_cast<size_t>(width - done), ' ').c_str(),
                   i + 1, files.size(), total_chunks, ms_since(t0) / 1000.0, tty ? "" : "\n");
    }
    std::fprintf(stderr, "%s", tty ? "\n" : "");
    const auto st = store.stats();
    std::printf("%zu chunks from %zu documents: %d KV entries computed (the prefix counts as one), the rest already "
                "stored; %llu files written to %s (%s)\n",
                total_chunks, files.size(), computed, static_cast<unsigned long long>(st.disk_writes), o->store.c_str(),
                o->store_type.c_str());
    return 0;
  };
}

Runner add_eval(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "Quality of every reuse method against full attention, with TTFT");
  auto o = std::make_shared<RagOpts>();
  o->n = 8;
  add_request_options(sub, *o, false);
  struct E {
    std::string methods = "naive,epic,epic-r,cacheblend,ape,cacheclip", ratios = "0.05,0.1,0.2,0.4", text, json_out, svg_out, samples_out;
    std::vector<std::string> tasks_json;
    bool continuation = false, one_doc = false;
    int examples = 8, chunks = 4, chunk_len = 64, cont = 16, max_answer = 16;
    uint64_t seed = 1;
  };
  auto e = std::make_shared<E>();
  sub->add_option("--methods", e->methods, "methods compared with full (epic-r: EPIC with k matched to each ratio's budget; "
                  "cacheclip-snap: cacheclip with --snap)")->capture_default_str();
  sub->add_option("--ratios", e->ratios, "recompute ratios of cacheblend, cacheclip and epic-r")->capture_default_str();
  sub->add_flag("--continuation", e->continuation, "the continuation task (passages of --text)");
  sub->add_flag("--one-doc", e->one_doc,
                "continuation: each prompt's chunks are consecutive pieces of one passage (task continuation-1doc)");
  sub->add_option("--text", e->text, "text for the continuation task (default ../shared/corpus/wikipedia-nq-passages.txt)");
  sub->add_option("--tasks", e->tasks_json, "a JSON list of {chunks, question, answers} (repeatable)");
  sub->add_option("-N,--examples", e->examples, "prompts per task")->capture_default_str();
  sub->add_option("--eval-chunks", e->chunks, "continuation: passages per prompt")->capture_default_str();
  sub->add_option("--eval-chunk-len", e->chunk_len, "continuation: tokens per passage")->capture_default_str();
  sub->add_option("--cont", e->cont, "continuation: tokens to predict")->capture_default_str();
  sub->add_option("--max-answer", e->max_answer, "json tasks: answer tokens generated")->capture_default_str();
  sub->add_option("--seed", e->seed, "seed of the prompts")->capture_default_str();
  sub->add_option("--json-out", e->json_out, "write the report as JSON");
  sub->add_option("--svg", e->svg_out, "write the retention / speed-up plot (SVG)");
  sub->add_option("--samples-out", e->samples_out,
                  "write every prompt's result per method as JSON Lines (answer, accepted answers, exact, f1, ppl)");
  return [o, e]() {
    // Bounds first: these add up into token counts and cache sizes.
    constexpr int kMaxTokens = 1 << 20;
    auto in_range = [&](const char* opt, int v, int lo) {
      if (v < lo || v > kMaxTokens) fail(opt, " must be in ", lo, "..", kMaxTokens, ", got ", v);
    };
    in_range("-N", e->examples, 1);
    in_range("--eval-chunks", e->chunks, 1);
    in_range("--eval-chunk-len", e->chunk_len, 1);
    in_range("--cont", e->cont, 1);
    in_range("--max-answer", e->max_answer, 1);
    auto L = load_all(*o, std::max(e->cont, e->max_answer) + 1);
    EvalOptions eo;
    for (const auto& m : split_list(e->methods)) {
      if (m == "epic-r") eo.epic_per_ratio = true;
      else if (m == "cacheclip-snap") eo.cacheclip_snap = true;
      else eo.methods.push_back(parse_method(m));
    }
    eo.ratios.clear();
    for (const auto& r : split_list(e->ratios)) {
      char* end = nullptr;
      const double v = std::strtod(r.c_str(), &end);
      if (end == r.c_str() || *end || !(v >= 0 && v <= 1)) fail("bad recompute ratio '", r, "' (expected numbers in [0, 1])");
      eo.ratios.push_back(v);
    }
    const bool selecting = eo.epic_per_ratio || eo.cacheclip_snap || std::any_of(eo.methods.begin(), eo.methods.end(), [](Method m) {
                             return m == Method::CacheBlend || m == Method::CacheClip;
                           });
    if (eo.ratios.empty() && selecting) fail("--ratios is empty but cacheblend, cacheclip or epic-r needs a recompute ratio");
    eo.params = o->mp;
    eo.max_answer_tokens = e->max_answer;
    std::vector<EvalTask> tasks;
    if (e->one_doc && !e->continuation) fail("--one-doc shapes the continuation task: give --continuation too");
    if (e->continuation) {
      std::string path = e->text;
      if (path.empty()) {
        const char* sh = std::getenv("CACHECLIP_SHARED");
        path = std::string(sh && *sh ? sh : "../shared") + "/corpus/wikipedia-nq-passages.txt";
      }
      tasks.push_back(continuation_task(*L->tok, read_text_file(path), e->examples, e->chunks, e->chunk_len, e->cont,
                                        e->seed, e->one_doc));
      if (e->one_doc && tasks.back().n_passages < static_cast<size_t>(e->examples)) {
        std::fprintf(stderr, "note: %s has %zu passages long enough for --one-doc; %d prompts reuse some at other offsets\n",
                     path.c_str(), tasks.back().n_passages, e->examples);
      }
    }
    for (const auto& j : e->tasks_json) tasks.push_back(json_task(*L->tok, j, o->chat, e->examples));
    if (tasks.empty()) fail("no tasks: give --continuation and/or --tasks FILE.json");
    const bool tty = isatty(2);
    auto t0 = Clock::now();
    eo.progress = [&](size_t done, size_t total) {
      if (!tty && done != total && done % std::max<size_t>(1, total / 20) != 0) return;
      const int width = 30, k = static_cast<int>(width * done / std::max<size_t>(total, 1));
      std::fprintf(stderr, "%s[%s%s] %zu/%zu runs, %.1f s%s", tty ? "\r" : "", std::string(static_cast<size_t>(k), '#').c_str(),
                   std::string(static_cast<size_t>(width - k), ' ').c_str(), done, total, ms_since(t0) / 1000.0,
                   tty ? "" : "\n");
    };
    const EvalReport rep = run_eval(*L->eng, *L->tok, tasks, eo);
    if (tty) std::fprintf(stderr, "\n");
    std::printf("%s", eval_table(rep).c_str());
    if (!e->json_out.empty()) write_file_atomic(e->json_out, eval_json(rep).data(), eval_json(rep).size());
    if (!e->samples_out.empty()) {
      const std::string lines = eval_samples_jsonl(rep);
      write_file_atomic(e->samples_out, lines.data(), lines.size());
    }
    if (!e->svg_out.empty()) {
      const std::string svg = eval_svg(rep);
      write_file_atomic(e->svg_out, svg.data(), svg.size());
    }
    if (o->json) std::printf("%s\n", eval_json(rep).c_str());
    return 0;
  };
}

Runner add_devices(CLI::App& app) {
  auto* sub = app.add_subcommand("devices", "List OpenCL platforms and devices");
  auto json = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "print JSON");
  return [json]() {
    const auto devs = list_opencl_devices();
    if (*json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& d : devs) {
        j.push_back({{"id", cat(d.platform, ":", d.device)}, {"platform", d.platform_name}, {"name", d.name},
                     {"type", d.type}, {"version", d.version}, {"global_mem", d.global_mem}, {"max_alloc", d.max_alloc},
                     {"compute_units", d.compute_units}});
      }
      print_json(j);
      return 0;
    }
    if (devs.empty()) {
      std::printf("no OpenCL platform found (install an OpenCL driver, e.g. pocl-opencl-icd)\n");
      return 0;
    }
    std::printf("| id  | platform             | device                         | type | memory     | max alloc  | CUs | version\n");
    for (const auto& d : devs) {
      std::printf("| %d:%d | %-20.20s | %-30.30s | %-4s | %7.0f MiB | %7.0f MiB | %3d | %s\n", d.platform, d.device,
                  d.platform_name.c_str(), d.name.c_str(), d.type.c_str(), d.global_mem / 1048576.0, d.max_alloc / 1048576.0,
                  d.compute_units, d.version.c_str());
    }
    return 0;
  };
}

Runner add_topology(CLI::App& app) {
  auto* sub = app.add_subcommand("topology", "Print the machine (hwloc) and the placement plan of the two models");
  struct T {
    std::string numa, aux_cpus, primary_cpus, synthetic, xml, model, aux, tokenizer;
    int aux_cores = 0;
  };
  auto o = std::make_shared<T>();
  add_placement_options(sub, o->numa, o->aux_cpus, o->primary_cpus, o->aux_cores);
  sub->add_option("--synthetic", o->synthetic, "plan for a synthetic topology, e.g. 'pack:2 numa:2 core:4 pu:1'");
  sub->add_option("--xml", o->xml, "plan for a topology saved as hwloc XML");
  sub->add_option("-m,--model", o->model, "also place this primary model's weights and report bytes per node");
  sub->add_option("--aux", o->aux, "... and this auxiliary model's");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.bin for llama2.c models");
  return [o]() {
    if (!o->synthetic.empty() && !o->xml.empty()) fail("give --synthetic or --xml, not both");
    const Topology t = !o->synthetic.empty() ? synthetic_topology(o->synthetic)
                       : !o->xml.empty()     ? xml_topology(o->xml)
                                             : discover_topology();
    const PlacementPlan plan = make_plan(t, placement_of(o->numa, o->aux_cpus, o->primary_cpus, o->aux_cores));
    std::printf("machine     %s\n", t.summary().c_str());
    for (const auto& n : t.nodes) {
      std::printf("node %-6u CPUs %s, %.1f GiB\n", n.os_index, cpu_list_text(n.cpus).c_str(), n.memory_bytes / 1073741824.0);
    }
    std::printf("%s", plan.describe().c_str());
    if (!o->model.empty()) {
      if (!o->synthetic.empty() || !o->xml.empty()) fail("--model places weights on this machine: drop --synthetic/--xml");
      LoadOptions lo;
      lo.tokenizer_path = o->tokenizer;
      auto report = [&](const char* who, const std::string& path, const TeamPlan& team) {
        Model m = load_model(path, lo);
        if (plan.bind) first_touch(m, team.cpus);
        std::map<int, size_t> per;
        for (const Tensor& x : m.tensors()) {
          for (const auto& [node, bytes] : bytes_per_node(x.data, x.nbytes)) per[node] += bytes;
        }
        std::printf("%-11s %s: %.1f MiB of weights;", who, path.c_str(), m.weight_bytes() / 1048576.0);
        for (const auto& [node, bytes] : per) std::printf(" node %d ~%.1f MiB", node, bytes / 1048576.0);
        std::printf("%s\n", per.empty() ? " (residency unknown)" : "");
      };
      report("primary", o->model, plan.primary);
      if (!o->aux.empty()) report("aux", o->aux, plan.aux);
    }
    return 0;
  };
}

}  // namespace cc::cli
