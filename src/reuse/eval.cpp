#include "reuse/eval.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/mapped_file.h"

namespace cc {

// ---------------------------------------------------------------------------------------------
// Tasks

EvalTask continuation_task(const Tokenizer& tok, const std::string& text, int n, int n_chunks, int chunk_tokens,
                           int cont_tokens, uint64_t seed, bool one_passage) {
  if (n < 1 || n_chunks < 2 || chunk_tokens < 4 || cont_tokens < 1) {
    fail("continuation task: need n >= 1, chunks >= 2, chunk tokens >= 4, continuation tokens >= 1");
  }
  // One passage holds a whole prompt's text, or each passage one chunk's (in 64 bits: the
  // product of two large counts must not wrap).
  const int64_t need = int64_t{one_passage ? n_chunks : 1} * chunk_tokens + cont_tokens;
  const int64_t total = int64_t{n_chunks} * chunk_tokens + cont_tokens;
  if (total > (int64_t{1} << 24)) {
    fail("continuation task: ", n_chunks, " chunks of ", chunk_tokens, " tokens + ", cont_tokens,
         " continuation tokens make prompts of ", total, " tokens (at most 16777216)");
  }
  std::vector<std::vector<int32_t>> passages;
  std::istringstream in(text);
  std::string line, cur;
  auto flush = [&] {
    if (!cur.empty()) {
      auto ids = tok.encode(cur, false, false);
      if (static_cast<int64_t>(ids.size()) >= need) passages.push_back(std::move(ids));
    }
    cur.clear();
  };
  while (std::getline(in, line)) {
    if (line.empty()) flush();
    else cur += (cur.empty() ? "" : " ") + line;
  }
  flush();
  const int per_prompt = one_passage ? 1 : n_chunks;
  if (static_cast<int>(passages.size()) < per_prompt) {
    fail("continuation task: the text has ", passages.size(), " passages of >= ", need, " tokens; ", per_prompt,
         " are needed per prompt");
  }
  EvalTask t;
  t.name = one_passage ? "continuation-1doc" : "continuation";
  t.n_passages = passages.size();
  std::mt19937_64 rng(seed);
  const auto bos = tok.encode("", true, false);
  if (one_passage) {
    // Passages in a seeded order, each used once before any repeats; the prompt starts at a
    // seeded offset into the passage when it is longer than needed.
    std::vector<size_t> order(passages.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int e = 0; e < n; ++e) {
      const auto& p = passages[order[static_cast<size_t>(e) % order.size()]];
      const size_t start = rng() % (p.size() - static_cast<size_t>(need) + 1);
      auto at = [&](int k) { return p.begin() + static_cast<int64_t>(start) + k; };
      EvalExample ex;
      ex.prompt.prefix = bos;
      for (int c = 0; c + 1 < n_chunks; ++c) ex.prompt.chunks.emplace_back(at(c * chunk_tokens), at((c + 1) * chunk_tokens));
      // The last piece as in the default mode: half a chunk reused, half the question part.
      const int last = (n_chunks - 1) * chunk_tokens, half = chunk_tokens / 2;
      ex.prompt.chunks.emplace_back(at(last), at(last + half));
      ex.prompt.question.assign(at(last + half), at(last + chunk_tokens));
      ex.reference.assign(at(last + chunk_tokens), at(last + chunk_tokens + cont_tokens));
      t.examples.push_back(std::move(ex));
    }
    return t;
  }
  for (int e = 0; e < n; ++e) {
    std::vector<size_t> idx(passages.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::shuffle(idx.begin(), idx.end(), rng);
    EvalExample ex;
    ex.prompt.prefix = bos;
    for (int c = 0; c + 1 < n_chunks; ++c) {
      const auto& p = passages[idx[static_cast<size_t>(c)]];
      ex.prompt.chunks.emplace_back(p.begin(), p.begin() + chunk_tokens);
    }
    // The last passage: its first chunk_tokens/2 rows are a chunk too (reused), the next
    // chunk_tokens/2 the question part (recomputed), then the continuation to predict.
    const auto& last = passages[idx[static_cast<size_t>(n_chunks - 1)]];
    const int half = chunk_tokens / 2;
    ex.prompt.chunks.emplace_back(last.begin(), last.begin() + half);
    ex.prompt.question.assign(last.begin() + half, last.begin() + chunk_tokens);
    ex.reference.assign(last.begin() + chunk_tokens, last.begin() + chunk_tokens + cont_tokens);
    t.examples.push_back(std::move(ex));
  }
  return t;
}

EvalTask json_task(const Tokenizer& tok, const std::string& path, bool chat, int n) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_array()) fail(path, ": expected a JSON list of {chunks, question, answers}");
  EvalTask t;
  t.name = std::filesystem::path(path).stem().string();
  for (size_t i = 0; i < j.size() && (n <= 0 || static_cast<int>(i) < n); ++i) {
    const auto& e = j[i];
    if (!e.is_object() || !e.contains("chunks") || !e["chunks"].is_array() || e["chunks"].empty() ||
        !e.contains("question") || !e["question"].is_string() || !e.contains("answers") || !e["answers"].is_array() ||
        e["answers"].empty()) {
      fail(path, ": entry ", i, " needs \"chunks\" (a non-empty list of strings), \"question\" (a string) and "
                 "\"answers\" (a non-empty list of strings)");
    }
    RagText rt;
    for (const auto& c : e["chunks"]) {
      if (!c.is_string()) fail(path, ": entry ", i, ": every chunk must be a string");
      rt.docs.push_back(c.get<std::string>());
    }
    rt.question = e["question"].get<std::string>();
    if (rt.question.empty()) fail(path, ": entry ", i, ": the question is empty");
    if (e.contains("prefix")) {
      if (!e["prefix"].is_string()) fail(path, ": entry ", i, ": \"prefix\" must be a string");
      rt.prefix = e["prefix"].get<std::string>();
    }
    EvalExample ex;
    ex.prompt = tokenize_rag(tok, rt, chat);
    for (const auto& a : e["answers"]) {
      if (!a.is_string()) fail(path, ": entry ", i, ": every answer must be a string");
      ex.answers.push_back(a.get<std::string>());
    }
    ex.reference = tok.encode(ex.answers.front(), false, false);
    if (ex.reference.empty()) fail(path, ": entry ", i, ": the first answer has no tokens");
    t.examples.push_back(std::move(ex));
  }
  if (t.examples.empty()) fail(path, ": no examples");
  return t;
}

// ---------------------------------------------------------------------------------------------
// Scoring

std::string normalize_answer(const std::string& s) {
  std::string t;
  for (unsigned char c : s) {
    if (std::ispunct(c)) continue;
    t += static_cast<char>(std::tolower(c));
  }
  std::istringstream in(t);
  std::string w, out;
  while (in >> w) {
    if (w == "a" || w == "an" || w == "the") continue;
    out += (out.empty() ? "" : " ") + w;
  }
  return out;
}

double exact_match(const std::string& pred, const std::vector<std::string>& answers) {
  const std::string p = normalize_answer(pred);
  for (const auto& a : answers) {
    if (p == normalize_answer(a)) return 1.0;
  }
  return 0.0;
}

double token_f1(const std::string& pred, const std::vector<std::string>& answers) {
  auto words = [](const std::string& s) {
    std::vector<std::string> w;
    std::istringstream in(normalize_answer(s));
    std::string x;
    while (in >> x) w.push_back(x);
    return w;
  };
  const auto p = words(pred);
  double best = 0;
  for (const auto& a : answers) {
    const auto g = words(a);
    std::map<std::string, int> cnt;
    for (const auto& x : g) ++cnt[x];
    int common = 0;
    for (const auto& x : p) {
      if (cnt[x] > 0) {
        --cnt[x];
        ++common;
      }
    }
    if (common == 0) continue;
    const double prec = static_cast<double>(common) / static_cast<double>(p.size());
    const double rec = static_cast<double>(common) / static_cast<double>(g.size());
    best = std::max(best, 2 * prec * rec / (prec + rec));
  }
  return best;
}

Model truncate_layers(const Model& m, int64_t k) {
  if (k < 1 || k > m.config.n_layer) fail("cannot keep ", k, " layers of a ", m.config.n_layer, "-layer model");
  Model out = m;
  out.config.n_layer = k;
  out.path = cat(m.path, " (first ", k, " layers)");
  return out;
}

namespace {

double log_softmax_at(const std::vector<float>& logits, int32_t id) {
  double mx = -INFINITY;
  for (float x : logits) mx = std::max(mx, static_cast<double>(x));
  double s = 0;
  for (float x : logits) s += std::exp(x - mx);
  return logits[static_cast<size_t>(id)] - mx - std::log(s);
}

// What one method produced on one example.
struct Outcome {
  double nll = 0;                // of the reference, teacher-forced
  std::vector<int32_t> argmaxes;  // along the reference
  std::vector<float> first_logits;
  std::string answer;             // greedy (json tasks)
  double ttft = 0, recompute_fraction = 0;
};

Outcome run_one(RagEngine& eng, const Tokenizer& tok, const EvalExample& ex, Method m, const MethodParams& mp,
                int max_answer) {
  Outcome o;
  RagState s = eng.prefill(ex.prompt, m, mp);
  o.ttft = s.timing.total_ms();
  const PromptLayout L(ex.prompt);
  const int64_t q = static_cast<int64_t>(ex.prompt.question.size());
  o.recompute_fraction = L.n_ctx() > 0 ? std::max<double>(0, static_cast<double>(s.recomputed.size()) - q) / L.n_ctx() : 0;
  o.first_logits = s.logits;
  if (!ex.answers.empty()) {  // a greedy answer (its first line), then back to the prompt's end
    o.answer = tok.decode(eng.greedy(s, tok, max_answer), true);
    const size_t nl = o.answer.find('\n');
    if (nl != std::string::npos) o.answer = o.answer.substr(0, nl);
    eng.rewind(s);
  }
  std::vector<float> lg = s.logits;
  for (size_t i = 0; i < ex.reference.size(); ++i) {
    o.nll -= log_softmax_at(lg, ex.reference[i]);
    o.argmaxes.push_back(argmax_token(lg));
    if (i + 1 < ex.reference.size()) lg = eng.step(s, ex.reference[i]);
  }
  return o;
}

}  // namespace

int epic_k_for_ratio(const RagPrompt& p, double r) {
  // The largest k whose rows, sum_i min(k, |Ci|) over C2..Cn, fit cacheclip's budget
  // floor(r x the rows of C2..Cn); at least 1.
  size_t total = 0, longest = 0;
  for (size_t i = 1; i < p.chunks.size(); ++i) {
    total += p.chunks[i].size();
    longest = std::max(longest, p.chunks[i].size());
  }
  const auto budget = static_cast<size_t>(std::floor(r * static_cast<double>(total) + 1e-9));
  int best = 1;
  for (size_t k = 1; k <= longest; ++k) {
    size_t rows = 0;
    for (size_t i = 1; i < p.chunks.size(); ++i) rows += std::min(k, p.chunks[i].size());
    if (rows > budget) break;
    best = static_cast<int>(k);
  }
  return best;
}

EvalReport run_eval(RagEngine& eng, const Tokenizer& tok, const std::vector<EvalTask>& tasks, const EvalOptions& o) {
  const bool has_aux = eng.aux() != nullptr;
  EvalReport rep;
  struct Cfg {
    Method m;
    double ratio;
    bool snap = false;  // cacheclip-snap
  };
  std::vector<Cfg> cfgs;
  for (Method m : o.methods) {
    if (m == Method::Full) continue;
    if (m == Method::CacheClip && !has_aux) fail("method cacheclip needs an auxiliary model (--aux or --aux-layers)");
    if (m == Method::CacheBlend || m == Method::CacheClip) {
      for (double r : o.ratios) cfgs.push_back({m, r});
    } else {
      cfgs.push_back({m, -1});
    }
    if (m == Method::Epic && o.epic_per_ratio) {
      for (double r : o.ratios) cfgs.push_back({m, r});
    }
  }
  if (o.epic_per_ratio && std::find(o.methods.begin(), o.methods.end(), Method::Epic) == o.methods.end()) {
    for (double r : o.ratios) cfgs.push_back({Method::Epic, r});
  }
  if (o.cacheclip_snap) {
    if (!has_aux) fail("method cacheclip-snap needs an auxiliary model (--aux or --aux-layers)");
    for (double r : o.ratios) cfgs.push_back({Method::CacheClip, r, true});
  }
  if (!tasks.empty() && !tasks.front().examples.empty()) {  // warm-up: thread teams, scratch, page faults
    const auto& ex = tasks.front().examples.front();
    eng.precompute(ex.prompt);
    (void)eng.prefill(ex.prompt, Method::Full, o.params);
  }
  size_t total = 0, done = 0;
  for (const auto& t : tasks) total += t.examples.size() * (cfgs.size() + 1);
  for (const auto& t : tasks) {
    const bool qa = !t.examples.empty() && !t.examples.front().answers.empty();
    std::vector<Outcome> full;
    PremiseRow pr;
    pr.task = t.name;
    // Scores one prompt's outcome once: the sample, and through it the row's sums.
    auto sample = [&](const std::string& method, double ratio, size_t e, const Outcome& r) -> const EvalSample& {
      EvalSample sm;
      sm.task = t.name;
      sm.method = method;
      sm.ratio = ratio;
      sm.index = e;
      const EvalExample& ex = t.examples[e];
      if (qa) {
        sm.answer = r.answer;
        sm.answers = ex.answers;
        sm.exact = exact_match(r.answer, ex.answers);
        sm.f1 = token_f1(r.answer, ex.answers);
      }
      sm.ppl = std::exp(r.nll / static_cast<double>(std::max<size_t>(ex.reference.size(), 1)));
      rep.samples.push_back(std::move(sm));
      return rep.samples.back();
    };
    double full_acc = 0, full_f1 = 0;
    for (size_t e = 0; e < t.examples.size(); ++e) {
      eng.precompute(t.examples[e].prompt);  // chunks in the store, as in production
      full.push_back(run_one(eng, tok, t.examples[e], Method::Full, o.params, o.max_answer_tokens));
      const EvalSample& sm = sample("full", -1, e, full.back());
      full_acc += sm.exact;
      full_f1 += sm.f1;
      if (o.progress) o.progress(++done, total);
    }
    double full_nll = 0, full_ms = 0;
    size_t ref_tokens = 0;
    for (size_t e = 0; e < full.size(); ++e) {
      full_nll += full[e].nll;
      full_ms += full[e].ttft;
      ref_tokens += t.examples[e].reference.size();
    }
    const double n = static_cast<double>(full.size());
    EvalRow fr;
    fr.task = t.name;
    fr.method = "full";
    fr.accuracy = full_acc / n;
    fr.retention = qa && fr.accuracy == 0 ? std::nan("") : 1.0;
    fr.top1 = 1.0;
    fr.ppl_ratio = 1.0;
    fr.ttft_ms = full_ms / n;
    fr.speedup = 1.0;
    fr.recompute_fraction = 1.0;
    fr.f1 = full_f1 / n;
    rep.rows.push_back(fr);
    for (const Cfg& c : cfgs) {
      MethodParams mp = o.params;
      if (c.ratio >= 0) mp.recompute = c.ratio;
      if (c.snap) mp.snap_to_chunk_start = true;
      EvalRow row;
      row.task = t.name;
      row.method = c.m == Method::Epic && c.ratio >= 0 ? "epic-r" : c.snap ? "cacheclip-snap" : method_name(c.m);
      row.ratio = c.ratio;
      double acc = 0, f1 = 0, kl = 0, agree = 0, nll = 0, ms = 0, frac = 0;
      size_t agree_n = 0;
      for (size_t e = 0; e < t.examples.size(); ++e) {
        if (c.m == Method::Epic && c.ratio >= 0) mp.epic_k = epic_k_for_ratio(t.examples[e].prompt, c.ratio);
        const Outcome r = run_one(eng, tok, t.examples[e], c.m, mp, o.max_answer_tokens);
        const EvalSample& sm = sample(row.method, c.ratio, e, r);
        acc += sm.exact;
        f1 += sm.f1;
        kl += kl_divergence(full[e].first_logits, r.first_logits);
        for (size_t i = 0; i < r.argmaxes.size(); ++i) agree += r.argmaxes[i] == full[e].argmaxes[i];
        agree_n += r.argmaxes.size();
        nll += r.nll;
        ms += r.ttft;
        frac += r.recompute_fraction;
        if (o.progress) o.progress(++done, total);
      }
      row.accuracy = acc / n;
      row.f1 = f1 / n;
      row.kl = kl / n;
      row.top1 = agree_n ? agree / static_cast<double>(agree_n) : 1.0;
      // Perplexity of the reference relative to full attention: exp((nll - nll_full) / tokens).
      row.ppl_ratio = std::exp((nll - full_nll) / static_cast<double>(std::max<size_t>(ref_tokens, 1)));
      // Undefined (NaN; null in JSON) when full attention answers nothing right.
      row.retention = qa ? (fr.accuracy > 0 ? row.accuracy / fr.accuracy : std::nan("")) : 1.0 / row.ppl_ratio;
      row.ttft_ms = ms / n;
      row.speedup = fr.ttft_ms / std::max(row.ttft_ms, 1e-6);
      row.recompute_fraction = frac / n;
      rep.rows.push_back(row);
    }
    if (has_aux) {  // the premise, at r = the method parameters' ratio
      const double r = o.params.recompute;
      for (const auto& ex : t.examples) {
        const PromptLayout L(ex.prompt);
        const MethodParams& mp = o.params;
        const auto prim = context_scores(eng.primary().tf, ex.prompt, mp.max_over_heads, mp.last_row_only);
        const auto auxs = context_scores(eng.aux()->tf, ex.prompt, mp.max_over_heads, mp.last_row_only);
        const AttentionSimilarity sim = attention_similarity(L, prim, auxs, r);
        pr.kl += sim.kl / n;
        pr.pearson += sim.pearson / n;
        pr.jaccard += sim.jaccard / n;
        const auto top = select_top(L, prim, r);
        const auto sel = select_windows(L, auxs, r, mp.window, {}, mp.snap_to_chunk_start);
        std::vector<int64_t> inter;
        std::set_intersection(top.begin(), top.end(), sel.begin(), sel.end(), std::back_inserter(inter));
        pr.recall += (top.empty() ? 1.0 : static_cast<double>(inter.size()) / static_cast<double>(top.size())) / n;
      }
      rep.premise.push_back(pr);
    }
  }
  return rep;
}

std::string eval_table(const EvalReport& r) {
  std::ostringstream o;
  char buf[512];
  int tw = 12;  // the task column fits the longest task name
  for (const auto& x : r.rows) tw = std::max(tw, static_cast<int>(x.task.size()));
  int mw = 10;  // and the method column the longest method name (cacheclip-snap)
  for (const auto& x : r.rows) mw = std::max(mw, static_cast<int>(x.method.size()));
  const std::string pad(static_cast<size_t>(tw - 4), ' '), dash(static_cast<size_t>(tw + 2), '-');
  const std::string mpad(static_cast<size_t>(mw - 6), ' '), mdash(static_cast<size_t>(mw + 2), '-');
  o << "| task" << pad << " | method" << mpad
    << " | ratio | accuracy | F1    | retention | KL       | top-1 | ppl/full | TTFT ms  | speed-up | recomputed |\n";
  o << "|" << dash << "|" << mdash
    << "|-------|----------|-------|-----------|----------|-------|----------|----------|----------|------------|\n";
  for (const auto& x : r.rows) {
    std::snprintf(buf, sizeof buf, "| %-*s | %-*s | %5s | %8.3f | %5.3f | %9.3f | %8.2e | %5.3f | %8.4f | %8.1f | %7.2fx | %10.3f |\n",
                  tw, x.task.c_str(), mw, x.method.c_str(), x.ratio < 0 ? "-" : cat(x.ratio).c_str(), x.accuracy, x.f1,
                  x.retention, x.kl, x.top1, x.ppl_ratio, x.ttft_ms, x.speedup, x.recompute_fraction);
    o << buf;
  }
  if (!r.premise.empty()) {
    o << "\npremise (aux vs primary last-layer attention over the context):\n";
    o << "| task" << pad << " | KL      | Pearson | top-r% Jaccard | recall of the aux selection |\n";
    o << "|" << dash << "|---------|---------|----------------|-----------------------------|\n";
    for (const auto& p : r.premise) {
      std::snprintf(buf, sizeof buf, "| %-*s | %7.4f | %7.3f | %14.3f | %27.3f |\n", tw, p.task.c_str(), p.kl, p.pearson,
                    p.jaccard, p.recall);
      o << buf;
    }
  }
  return o.str();
}

std::string eval_json(const EvalReport& r) {
  nlohmann::json j = {{"rows", nlohmann::json::array()}, {"premise", nlohmann::json::array()}};
  for (const auto& x : r.rows) {
    j["rows"].push_back({{"task", x.task}, {"method", x.method}, {"ratio", x.ratio < 0 ? nlohmann::json() : nlohmann::json(x.ratio)},
                         {"accuracy", x.accuracy}, {"f1", x.f1}, {"retention", x.retention}, {"kl", x.kl}, {"top1", x.top1},
                         {"ppl_ratio", x.ppl_ratio}, {"ttft_ms", x.ttft_ms}, {"speedup", x.speedup},
                         {"recompute_fraction", x.recompute_fraction}});
  }
  for (const auto& p : r.premise) {
    j["premise"].push_back({{"task", p.task}, {"kl", p.kl}, {"pearson", p.pearson}, {"jaccard", p.jaccard}, {"recall", p.recall}});
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string eval_samples_jsonl(const EvalReport& r) {
  std::string out;
  for (const auto& x : r.samples) {
    nlohmann::json j = {{"task", x.task}, {"method", x.method}, {"ratio", x.ratio < 0 ? nlohmann::json() : nlohmann::json(x.ratio)},
                        {"index", x.index}, {"ppl", x.ppl}};
    if (!x.answers.empty()) {
      j["answer"] = x.answer;
      j["answers"] = x.answers;
      j["exact"] = x.exact;
      j["f1"] = x.f1;
    }
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

std::string eval_svg(const EvalReport& r) {
  // Ratios on x (0 .. max ratio), one polyline per (task, method); methods without a ratio are
  // drawn flat across the panel.
  double xmax = 0.0, smax = 1.0;
  for (const auto& x : r.rows) {
    xmax = std::max(xmax, x.ratio);
    smax = std::max(smax, x.speedup);
  }
  if (xmax <= 0) xmax = 1.0;
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  std::map<std::string, std::vector<std::pair<double, std::pair<double, double>>>> lines;
  for (const auto& x : r.rows) lines[x.task + " / " + x.method].push_back({x.ratio, {x.retention, x.speedup}});
  std::ostringstream o;
  const int W = 900, pw = 380, ph = 260, top = 50, legend = top + ph + 40;
  const int H = legend + 14 * static_cast<int>(lines.size()) + 10;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int panel = 0; panel < 2; ++panel) {
    const int x0 = 60 + panel * (pw + 80);
    const double ymax = panel == 0 ? 1.05 : smax * 1.05;
    o << "<text x=\"" << x0 + pw / 2 << "\" y=\"30\" text-anchor=\"middle\" font-size=\"13\">"
      << (panel == 0 ? "retention vs recompute ratio" : "TTFT speed-up vs recompute ratio") << "</text>\n";
    o << "<rect x=\"" << x0 << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"black\"/>\n";
    for (int k = 0; k <= 4; ++k) {
      const double yv = ymax * k / 4, xv = xmax * k / 4;
      const double yy = top + ph - ph * k / 4.0, xx = x0 + pw * k / 4.0;
      o << "<text x=\"" << x0 - 5 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\">" << std::round(yv * 100) / 100 << "</text>\n";
      o << "<text x=\"" << xx << "\" y=\"" << top + ph + 15 << "\" text-anchor=\"middle\">" << std::round(xv * 100) / 100 << "</text>\n";
    }
    size_t ci = 0;
    for (const auto& [name, pts] : lines) {
      std::vector<std::pair<double, double>> xy;
      for (const auto& [ratio, v] : pts) {
        const double val = panel == 0 ? v.first : v.second;
        if (ratio < 0) {
          xy = {{0.0, val}, {xmax, val}};
          break;
        }
        xy.push_back({ratio, val});
      }
      if (name.find("/ full") != std::string::npos) xy = {{0.0, xy.front().second}, {xmax, xy.front().second}};
      std::sort(xy.begin(), xy.end());
      o << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << colors[ci % 8] << "\" points=\"";
      for (const auto& [xv, yv] : xy) {
        o << x0 + pw * xv / xmax << "," << top + ph - ph * std::min(yv, ymax) / ymax << " ";
      }
      o << "\"/>\n";
      if (panel == 1) {
        o << "<text x=\"60\" y=\"" << legend + 14 * static_cast<int>(ci) << "\" fill=\"" << colors[ci % 8] << "\">"
          << name << "</text>\n";
      }
      ++ci;
    }
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace cc
