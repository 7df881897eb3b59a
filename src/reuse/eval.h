// The quality harness (issue 5): what each reuse method keeps of full attention, on seeded
// prompts that go through the chunk store exactly as in production.
//
// Tasks:
//   continuation  passages of real text as chunks; the prompt ends in the middle of the last
//                 passage (its first half is the question part, always recomputed); the metric is
//                 the perplexity of the true continuation, retention = ppl_full / ppl_method
//   json          a user's list of {"chunks": [...], "question": "...", "answers": [...]}:
//                 greedy answers scored by exact match and token F1, retention = acc / acc_full
// Per (task, method, ratio): accuracy, retention, KL at the answer position, top-1 agreement
// with full attention (teacher-forced on the reference), perplexity of the reference relative
// to full, TTFT and speed-up, and the recompute fraction actually used. Per task: the premise
// (aux vs primary last-layer attention: KL, Pearson, top-r% Jaccard; recall of the aux
// selection against the primary's own top-r% rows).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "reuse/rag.h"

namespace cc {

struct EvalExample {
  RagPrompt prompt;
  std::vector<int32_t> reference;         // continuation (or the first answer) to score
  std::vector<std::string> answers;       // json tasks: accepted answers (empty: continuation)
};

struct EvalTask {
  std::string name;
  std::vector<EvalExample> examples;
  size_t n_passages = 0;  // continuation tasks: passages of the text long enough to be used
};

// n examples from passages of `text` (split at blank lines; a passage's first line is kept):
// each of n_chunks passages truncated to chunk_tokens, the last one split into a question part
// and cont_tokens of continuation. Seeded; cc::Error when the text has too few passages.
// one_passage: the whole prompt is one consecutive piece of ONE passage (a long document
// chunked for retrieval): n_chunks - 1 chunks of chunk_tokens, then the last chunk split as
// above, so every chunk depends on the ones before it. Passages are used in a seeded order
// and again (at other seeded offsets) only when n exceeds their number. The task is then
// named "continuation-1doc".
EvalTask continuation_task(const Tokenizer& tok, const std::string& text, int n, int n_chunks, int chunk_tokens,
                           int cont_tokens, uint64_t seed, bool one_passage = false);
// A JSON list of {"chunks": [..], "question": "..", "answers": [..]} (cc::Error naming the file
// and the entry that is malformed); the first n entries (n <= 0: all).
EvalTask json_task(const Tokenizer& tok, const std::string& path, bool chat, int n);

struct EvalRow {
  std::string task, method;
  double ratio = -1;  // -1: the method has no ratio
  double accuracy = 0, f1 = 0, retention = 0, kl = 0, top1 = 0, ppl_ratio = 0, ttft_ms = 0, speedup = 0,
         recompute_fraction = 0;
};
struct PremiseRow {
  std::string task;
  double kl = 0, pearson = 0, jaccard = 0, recall = 0;
};
// One prompt under one method: what it answered (QA tasks) or the reference's perplexity
// (continuation), for looking at the prompts a method gets wrong.
struct EvalSample {
  std::string task, method;
  double ratio = -1;
  size_t index = 0;                  // the prompt's place in its task
  std::string answer;                // greedy answer (QA tasks; empty for continuation)
  std::vector<std::string> answers;  // accepted answers (QA tasks)
  double exact = 0, f1 = 0;          // QA tasks
  double ppl = 0;                    // perplexity of the reference (teacher-forced)
};
struct EvalReport {
  std::vector<EvalRow> rows;
  std::vector<PremiseRow> premise;
  std::vector<EvalSample> samples;  // every (task, method, ratio, prompt), full attention included
};

struct EvalOptions {
  std::vector<Method> methods;
  std::vector<double> ratios = {0.05, 0.1, 0.2, 0.4};
  // EPIC at each ratio's budget too (rows "epic-r"): k per prompt from epic_k_for_ratio, so it
  // recomputes about as many rows as cacheblend and cacheclip.
  bool epic_per_ratio = false;
  // cacheclip with its windows snapped to their chunk's start too (rows "cacheclip-snap",
  // MethodParams::snap_to_chunk_start), so both selections are compared on the same prompts.
  bool cacheclip_snap = false;
  MethodParams params;
  int max_answer_tokens = 16;
  std::function<void(size_t done, size_t total)> progress;
};

// EPIC's k at ratio r's budget for this prompt: the largest k >= 1 whose rows, the sum of
// min(k, |Ci|) over C2..Cn, fit cacheclip's budget floor(r x the rows of C2..Cn) (k = the
// longest chunk at r = 1).
int epic_k_for_ratio(const RagPrompt& p, double r);

// Runs every task; the engine's store is filled per example first (precompute), as production.
// cacheclip and the premise use the engine's auxiliary model (cc::Error for cacheclip without).
EvalReport run_eval(RagEngine& eng, const Tokenizer& tok, const std::vector<EvalTask>& tasks, const EvalOptions& o);

std::string eval_table(const EvalReport& r);
std::string eval_json(const EvalReport& r);
// Two panels (retention and TTFT speed-up against the recompute ratio), one line per method.
std::string eval_svg(const EvalReport& r);
// The samples as JSON Lines, one object per prompt and method (ratio null where none).
std::string eval_samples_jsonl(const EvalReport& r);

// SQuAD-style answer normalisation (lower case, no punctuation or articles, single spaces),
// exact match and token F1 (max over the answers).
std::string normalize_answer(const std::string& s);
double exact_match(const std::string& pred, const std::vector<std::string>& answers);
double token_f1(const std::string& pred, const std::vector<std::string>& answers);

// The first k layers of m as a model of its own (shares the tensors and the tokenizer): an
// auxiliary model for any primary.
Model truncate_layers(const Model& m, int64_t k);

}  // namespace cc
