// The reuse engine: selectors on hand-made inputs, prompt splitting, and every method against
// full prefill on tiny random models and on stories260K.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include "model/model.h"
#include "numa/placement.h"
#include "model/writer.h"
#include "reuse/rag.h"
#include "test_util.h"

namespace cc {
namespace {

using ::testing::HasSubstr;

using test::nse;

RagPrompt hand_prompt(int np, std::vector<int> chunk_lens, int nq) {
  RagPrompt p;
  int32_t t = 1;
  for (int i = 0; i < np; ++i) p.prefix.push_back(t++);
  for (int len : chunk_lens) {
    p.chunks.emplace_back();
    for (int i = 0; i < len; ++i) p.chunks.back().push_back(t++);
  }
  for (int i = 0; i < nq; ++i) p.question.push_back(t++);
  return p;
}

TEST(Selectors, EpicTakesChunkHeadsAfterC1) {
  const PromptLayout L(hand_prompt(3, {5, 4, 2}, 2));  // C1 rows 3..7, C2 8..11, C3 12..13
  EXPECT_EQ(select_epic(L, 3), (std::vector<int64_t>{8, 9, 10, 12, 13}));
  EXPECT_EQ(select_epic(L, 0), std::vector<int64_t>{});
}

TEST(Selectors, TopIsExactBudgetAndNeverChargesC1) {
  const PromptLayout L(hand_prompt(2, {4, 5, 5}, 3));  // C1 2..5, C2 6..10, C3 11..15; n_ctx 10
  EXPECT_EQ(L.n_ctx(), 10);
  std::vector<float> s(static_cast<size_t>(L.n_total), 0.0f);
  for (int i = 2; i <= 5; ++i) s[i] = 100.0f;  // C1 scores high: must not be chosen
  s[7] = 5;
  s[12] = 4;
  s[15] = 3;
  s[16] = 99;  // a question row: not a candidate
  const auto sel = select_top(L, s, 0.3);
  EXPECT_EQ(sel, (std::vector<int64_t>{7, 12, 15}));
  EXPECT_EQ(select_top(L, s, 1.0).size(), 10u);
  EXPECT_TRUE(select_top(L, s, 0.0).empty());
}

TEST(Selectors, WindowsStayInsideChunksAndMeetTheBudgetExactly) {
  const PromptLayout L(hand_prompt(1, {6, 7, 9, 3}, 2));
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> s(static_cast<size_t>(L.n_total));
    for (auto& v : s) v = static_cast<float>(rng() % 1000) / 1000.0f;
    const double r = (trial % 11) / 10.0;
    const int w = 1 + trial % 5;
    const auto sel = select_windows(L, s, r, w);
    EXPECT_EQ(static_cast<int64_t>(sel.size()), static_cast<int64_t>(std::floor(r * L.n_ctx() + 1e-9)))
        << "r=" << r << " w=" << w;
    for (int64_t row : sel) {
      EXPECT_GE(row, L.chunk_start[1]) << "C1 and the prefix are never charged";
      EXPECT_LT(row, L.q_start) << "question rows are not part of the budget";
    }
    EXPECT_TRUE(std::is_sorted(sel.begin(), sel.end()));
  }
  // One hot window inside C2 and a hot pair straddling the C2/C3 boundary: the window is taken
  // whole inside C2; the straddling pair can only be reached by windows within one chunk.
  std::vector<float> s(static_cast<size_t>(L.n_total), 0.0f);
  const int64_t c2 = L.chunk_start[1], c3 = L.chunk_start[2];
  for (int j = 1; j < 4; ++j) s[static_cast<size_t>(c2 + j)] = 1.0f;
  s[static_cast<size_t>(c3 - 1)] = 0.9f;
  s[static_cast<size_t>(c3)] = 0.9f;
  const PromptLayout L2 = L;
  const auto sel = select_windows(L2, s, 3.0 / static_cast<double>(L.n_ctx()), 3);
  EXPECT_EQ(sel, (std::vector<int64_t>{c2 + 1, c2 + 2, c2 + 3}));
}

TEST(Selectors, SnapPullsAWindowBackToItsChunkStart) {
  // C2 rows 5..16, C3 rows 17..28 (n_ctx 24). The best window of C2 starts one row after the
  // chunk's first row (as on a boundary needle, where the stale first row is the space after
  // "... is"): METHODS.md's grouping leaves that row out, and no later window can take it.
  const PromptLayout L(hand_prompt(1, {4, 12, 12}, 2));
  const int64_t c2 = L.chunk_start[1], c3 = L.chunk_start[2];
  std::vector<float> s(static_cast<size_t>(L.n_total), 0.0f);
  for (int j = 1; j <= 4; ++j) s[static_cast<size_t>(c2 + j)] = 1.0f;
  s[static_cast<size_t>(c2 + 8)] = 0.2f;  // a weaker row later in C2
  for (int j = 6; j < 10; ++j) s[static_cast<size_t>(c3 + j)] = 0.5f;  // a window 6 rows into C3
  const double r8 = 8.0 / static_cast<double>(L.n_ctx());
  EXPECT_EQ(select_windows(L, s, r8, 4),
            (std::vector<int64_t>{c2 + 1, c2 + 2, c2 + 3, c2 + 4, c3 + 6, c3 + 7, c3 + 8, c3 + 9}));
  // Snapped: C2's first row joins its window; C3's window is 6 >= w rows in and stays, cut to
  // its best 3 rows so the budget of 8 is met exactly.
  const auto snapped = select_windows(L, s, r8, 4, {}, true);
  EXPECT_EQ(snapped.size(), 8u);
  EXPECT_EQ(std::vector<int64_t>(snapped.begin(), snapped.begin() + 5),
            (std::vector<int64_t>{c2, c2 + 1, c2 + 2, c2 + 3, c2 + 4}));
  for (size_t k = 5; k < snapped.size(); ++k) {
    EXPECT_GE(snapped[k], c3 + 6);
    EXPECT_LE(snapped[k], c3 + 9);
  }
  // A budget that ends inside the snapped window keeps the chunk's first row before the
  // window's own lowest-scored rows.
  const auto tight = select_windows(L, s, 3.0 / static_cast<double>(L.n_ctx()), 4, {}, true);
  EXPECT_EQ(tight, (std::vector<int64_t>{c2, c2 + 1, c2 + 2}));
  // Two overlapping candidates near C2's start: the better one snaps to c2, the other stays out
  // (windows never overlap).
  std::vector<float> s2(static_cast<size_t>(L.n_total), 0.0f);
  for (int j = 2; j <= 5; ++j) s2[static_cast<size_t>(c2 + j)] = 1.0f;
  s2[static_cast<size_t>(c2)] = 0.9f;  // C2's first window c2..c2+3 then scores 2.9, c2+2..c2+5 4.0
  const auto both = select_windows(L, s2, 8.0 / static_cast<double>(L.n_ctx()), 4, {}, true);
  EXPECT_EQ(std::count_if(both.begin(), both.end(), [&](int64_t row) { return row >= c2 && row < c2 + 6; }), 6)
      << "the best window snaps to c2 (rows c2..c2+5), leaving the overlapping one out";
  for (int trial = 0; trial < 50; ++trial) {  // and the budget is exact whatever the scores
    std::mt19937 rng(trial);
    for (auto& v : s2) v = static_cast<float>(rng() % 1000) / 1000.0f;
    const double r = (trial % 11) / 10.0;
    const auto sel = select_windows(L, s2, r, 1 + trial % 5, {}, true);
    EXPECT_EQ(static_cast<int64_t>(sel.size()), static_cast<int64_t>(std::floor(r * L.n_ctx() + 1e-9)));
    EXPECT_TRUE(std::adjacent_find(sel.begin(), sel.end()) == sel.end());
    for (int64_t row : sel) EXPECT_GE(row, c2);
  }
}

TEST(Selectors, RowsComputedAnywayAreNeitherCandidatesNorBudget) {
  const PromptLayout L(hand_prompt(1, {4, 6, 6}, 2));  // C2 rows 5..10, C3 rows 11..16
  std::vector<float> s(static_cast<size_t>(L.n_total), 0.0f);
  for (int64_t i = 11; i < 17; ++i) s[static_cast<size_t>(i)] = 9.0f;  // C3 scores high ...
  std::vector<uint8_t> fresh(static_cast<size_t>(L.n_total), 0);
  for (int64_t i = 11; i < 17; ++i) fresh[static_cast<size_t>(i)] = 1;  // ... but is missing (fresh anyway)
  s[7] = 2.0f;
  const auto top = select_top(L, s, 0.5, fresh);
  EXPECT_EQ(top.size(), 3u) << "floor(0.5 * 6 reusable rows)";
  for (int64_t r : top) EXPECT_LT(r, 11);
  EXPECT_EQ(top.front(), 5);
  const auto win = select_windows(L, s, 0.5, 2, fresh);
  EXPECT_EQ(win.size(), 3u);
  for (int64_t r : win) EXPECT_LT(r, 11);
}

TEST(Prompt, SplitBySeparatorAndTokenizeEachPartAlone) {
  const RagText t = split_rag_text("sys text<SEP>doc one<SEP>doc two<SEP>what?", "<SEP>");
  EXPECT_EQ(t.prefix, "sys text");
  EXPECT_EQ(t.docs, (std::vector<std::string>{"doc one", "doc two"}));
  EXPECT_EQ(t.question, "what?");
  EXPECT_THAT(test::error_of([] { split_rag_text("a<SEP>b", "<SEP>"); }), HasSubstr("at least two"));
  EXPECT_THAT(test::error_of([] { split_rag_text("a", ""); }), HasSubstr("separator is empty"));
  EXPECT_THAT(test::error_of([] { parse_method("blend"); }), HasSubstr("cacheblend"));
}

TEST(Prompt, ChatTemplateAroundTheRequest) {
  ModelConfig c = config_preset("tiny-qwen2");
  c.n_vocab = 320;
  const std::string path = test::temp_dir() + "/chat-qwen.gguf";
  write_model(c, default_tokenizer(c.n_vocab), random_values(1), path, WriteOptions{});
  Model m = load_model(path);
  ASSERT_FALSE(m.tokenizer.chat_template.empty());
  Tokenizer tok(m.tokenizer);
  RagText t;
  t.prefix = "Answer from the documents.";
  t.docs = {"first doc", "second doc"};
  t.question = "which doc?";
  const RagPrompt p = tokenize_rag(tok, t, true);
  const std::string head = tok.decode(p.prefix, false), tail = tok.decode(p.question, false);
  EXPECT_THAT(head, HasSubstr("<|im_start|>system\nAnswer from the documents.<|im_end|>"));
  EXPECT_THAT(head, ::testing::EndsWith("<|im_start|>user\n"));
  EXPECT_THAT(tail, ::testing::StartsWith("which doc?<|im_end|>"));
  EXPECT_THAT(tail, ::testing::EndsWith("<|im_start|>assistant\n"));
  EXPECT_EQ(p.chunks[1], tok.encode("second doc", false, false)) << "chunks are plain text, tokenized alone";
  // The same request as one string, split at the separator, gives the same ids.
  const RagPrompt q = tokenize_rag(tok, split_rag_text("Answer from the documents.##first doc##second doc##which doc?", "##"), true);
  EXPECT_EQ(q.flat(), p.flat());
  EXPECT_THAT(test::error_of([&] {
                RagText e = t;
                e.docs = {""};
                tokenize_rag(tok, e, true);
              }),
              HasSubstr("document 1 is empty"));
}

// ---------------------------------------------------------------------------------------------

std::string make(const std::string& preset, uint64_t seed, int64_t n_layer = 0) {
  ModelConfig c = config_preset(preset);
  c.n_vocab = 320;
  if (n_layer) c.n_layer = n_layer;
  WriteOptions w;
  w.dtype = DType::F32;
  w.seed = seed;
  std::string out = test::temp_dir() + "/" + preset + "-" + std::to_string(seed) + "-" + std::to_string(n_layer) + ".gguf";
  write_model(c, default_tokenizer(c.n_vocab), random_values(seed), out, w);
  return out;
}

RagPrompt random_prompt(int np, std::vector<int> lens, int nq, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  RagPrompt p = hand_prompt(np, lens, nq);
  for (auto* v : {&p.prefix, &p.question}) {
    for (auto& t : *v) t = static_cast<int32_t>(rng() % static_cast<unsigned>(vocab));
  }
  for (auto& c : p.chunks) {
    for (auto& t : c) t = static_cast<int32_t>(rng() % static_cast<unsigned>(vocab));
  }
  return p;
}

struct Rig {
  Model pm, am;
  std::unique_ptr<Backend> be;
  std::unique_ptr<RagModel> primary, aux;
  std::unique_ptr<ChunkStore> store;
  std::unique_ptr<RagEngine> eng;
  Rig(const std::string& ppath, const std::string& apath, KVStoreType st = KVStoreType::F32, const LoadOptions& lo = {})
      : pm(load_model(ppath, lo)), am(load_model(apath, lo)) {
    be = make_cpu_backend();
    primary = std::make_unique<RagModel>(pm, *be);
    aux = std::make_unique<RagModel>(am, *be);
    ChunkStoreOptions so;
    so.type = st;
    store = std::make_unique<ChunkStore>(so);
    RagOptions ro;
    ro.kv_type = DType::F32;
    ro.max_new_tokens = 8;
    eng = std::make_unique<RagEngine>(*primary, *store, ro);
    eng->set_aux(aux.get());
  }
};

class EveryArch : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryArch, RatioOneEqualsFullForEverySelectingMethod) {
  Rig s(make(GetParam(), 11), make(GetParam(), 12, 1));
  const RagPrompt p = random_prompt(5, {13, 9, 17}, 6, 320, 1);
  s.eng->precompute(p);
  MethodParams mp;
  const RagState full = s.eng->prefill(p, Method::Full, mp);
  mp.recompute = 1.0;
  for (Method m : {Method::CacheBlend, Method::CacheClip, Method::Prefix}) {
    const RagState st = s.eng->prefill(p, m, mp);
    EXPECT_LE(nse(st.logits, full.logits), 1e-8) << method_name(m);
    EXPECT_LE(nse(st.hidden, full.hidden), 1e-8) << method_name(m);
  }
  mp.epic_k = 1000;  // epic with k >= every chunk: every row after C1 recomputed
  EXPECT_LE(nse(s.eng->prefill(p, Method::Epic, mp).logits, full.logits), 1e-8);
  // Decoding after a reuse prefill continues exactly as after a full prefill.
  RagState a = s.eng->prefill(p, Method::CacheClip, mp), b = s.eng->prefill(p, Method::Full, mp);
  const std::vector<float> after_b = s.eng->step(b, 7);
  EXPECT_LE(nse(s.eng->step(a, 7), after_b), 1e-8);
  // rewind: the decoded tokens are forgotten, the prompt's KV stays.
  s.eng->step(a, 11);
  s.eng->rewind(a);
  EXPECT_LE(nse(s.eng->step(a, 7), after_b), 1e-8);
  s.eng->rewind(a);
  EXPECT_GT(nse(s.eng->step(a, 8), after_b), 1e-6) << "another token gives other logits";
}

TEST_P(EveryArch, NaiveWithOneChunkAndApeNeutralEqualFull) {
  Rig s(make(GetParam(), 21), make(GetParam(), 22, 1));
  const RagPrompt p = random_prompt(4, {19}, 5, 320, 2);
  s.eng->precompute(p);
  MethodParams mp;
  const RagState full = s.eng->prefill(p, Method::Full, mp);
  // One chunk after P is exactly what full prefill computes for those rows (un-rotated to
  // before RoPE in the store, rotated back at assembly).
  EXPECT_LE(nse(s.eng->prefill(p, Method::Naive, mp).logits, full.logits), 1e-8);
  // APE with T = S = 1 and one chunk: the two-group merge is the plain softmax over all keys.
  mp.ape_t = 1.0f;
  mp.ape_s = 1.0f;
  RagState ape = s.eng->prefill(p, Method::Ape, mp);
  EXPECT_LE(nse(ape.logits, full.logits), 1e-8);
  RagState f2 = s.eng->prefill(p, Method::Full, mp);
  EXPECT_LE(nse(s.eng->step(ape, 3), s.eng->step(f2, 3)), 1e-8) << "APE decode";
  // With the paper's T = S = 0.9 it must differ (the temperature really applies).
  mp.ape_t = 0.9f;
  mp.ape_s = 0.9f;
  EXPECT_GT(nse(s.eng->prefill(p, Method::Ape, mp).logits, full.logits), 1e-10);
}

TEST_P(EveryArch, MaskIsExactForRecomputedRows) {
  // Epic recomputes the first rows of C2 and C3; changing the question (later rows) must not
  // change what those rows wrote into the cache at the last layer.
  Rig s(make(GetParam(), 31), make(GetParam(), 32, 1));
  RagPrompt p = random_prompt(3, {8, 8, 8}, 4, 320, 3);
  s.eng->precompute(p);
  MethodParams mp;
  mp.epic_k = 3;
  RagState a = s.eng->prefill(p, Method::Epic, mp);
  for (auto& t : p.question) t = (t + 17) % 320;
  RagState b = s.eng->prefill(p, Method::Epic, mp);
  const ModelConfig& c = s.pm.config;
  const int64_t kvd = c.n_head_kv * c.head_dim, L = c.n_layer - 1;
  for (int64_t row : {11, 12, 13, 19, 20, 21}) {
    std::vector<float> ka(static_cast<size_t>(kvd)), kb(ka.size()), va(ka.size()), vb(ka.size());
    s.be->download(*a.kv.k[L], static_cast<size_t>(row * kvd) * 4, ka.data(), ka.size() * 4);
    s.be->download(*b.kv.k[L], static_cast<size_t>(row * kvd) * 4, kb.data(), kb.size() * 4);
    s.be->download(*a.kv.v[L], static_cast<size_t>(row * kvd) * 4, va.data(), va.size() * 4);
    s.be->download(*b.kv.v[L], static_cast<size_t>(row * kvd) * 4, vb.data(), vb.size() * 4);
    EXPECT_LE(nse(kb, ka), 1e-12) << "row " << row;
    EXPECT_LE(nse(vb, va), 1e-12) << "row " << row;
  }
  EXPECT_GT(nse(a.logits, b.logits), 1e-6) << "the question did change";
}

INSTANTIATE_TEST_SUITE_P(Archs, EveryArch, ::testing::Values("tiny-llama", "tiny-qwen2"));

TEST(RagEngine, StoreHitsMissesAndMissingChunks) {
  Rig s(make("tiny-llama", 41), make("tiny-llama", 42, 1), KVStoreType::F16);
  const RagPrompt p = random_prompt(4, {10, 12}, 3, 320, 4);
  MethodParams mp;
  RagState cold = s.eng->prefill(p, Method::Naive, mp);  // nothing stored: chunks computed in the request
  EXPECT_EQ(cold.missing_chunks, 2);
  EXPECT_EQ(cold.recomputed.size(), 10u + 12u + 3u);
  EXPECT_EQ(s.eng->precompute(p), 2) << "two chunks (the prefix was stored on first use)";
  EXPECT_EQ(s.eng->precompute(p), 0);
  RagState warm = s.eng->prefill(p, Method::Naive, mp);
  EXPECT_EQ(warm.missing_chunks, 0);
  EXPECT_EQ(warm.recomputed.size(), 3u);
  EXPECT_EQ(warm.reused, 4 + 10 + 12);
  // The cold request computed the chunks fully in context (= full prefill).
  const RagState full = s.eng->prefill(p, Method::Full, mp);
  EXPECT_LE(nse(cold.logits, full.logits), 1e-8);
  EXPECT_GT(nse(warm.logits, full.logits), 1e-8) << "naive reuse of two chunks loses the C2 -> C1 attention";
  // A chunk's key depends on the prefix and the model, never on its neighbours.
  RagPrompt q = p;
  std::swap(q.chunks[0], q.chunks[1]);
  EXPECT_EQ(s.eng->prefill(q, Method::Naive, mp).missing_chunks, 0);
  RagPrompt r = p;
  r.prefix[1] = (r.prefix[1] + 1) % 320;
  EXPECT_NE(s.eng->chunk_key(r.prefix, r.chunks[0]), s.eng->chunk_key(p.prefix, p.chunks[0]));
  // CacheBlend with C2 missing spends its budget on C1.. no: on the reusable chunks only.
  RagPrompt three = random_prompt(4, {10, 12, 12}, 3, 320, 8);
  s.eng->precompute(three);
  s.store->erase(s.eng->chunk_key(three.prefix, three.chunks[2]));
  MethodParams half;
  half.recompute = 0.5;
  const RagState cb = s.eng->prefill(three, Method::CacheBlend, half);
  int64_t c2_rows = 0;
  for (int64_t r : cb.recomputed) c2_rows += r >= 14 && r < 26;
  EXPECT_EQ(c2_rows, 6) << "floor(0.5 * 12) rows of the stored C2, none wasted on the missing C3";
  EXPECT_EQ(cb.recomputed.size(), 6u + 12u + 3u);
  // Bad input: out-of-vocabulary ids, no question, bad parameters.
  RagPrompt bad = p;
  bad.chunks[0][0] = 5000;
  EXPECT_THAT(test::error_of([&] { s.eng->prefill(bad, Method::Naive, mp); }), HasSubstr("out of range"));
  bad = p;
  bad.question.clear();
  EXPECT_THAT(test::error_of([&] { s.eng->prefill(bad, Method::Naive, mp); }), HasSubstr("question is empty"));
  mp.recompute = 1.5;
  EXPECT_THAT(test::error_of([&] { s.eng->prefill(p, Method::CacheClip, mp); }), HasSubstr("recompute ratio"));
}

TEST(RagEngine, CacheClipSelectsTheBudgetAndNeedsAnAux) {
  Rig s(make("tiny-qwen2", 51), make("tiny-qwen2", 52, 1));
  const RagPrompt p = random_prompt(3, {16, 16, 16, 16}, 4, 320, 5);
  s.eng->precompute(p);
  MethodParams mp;
  mp.recompute = 0.25;
  RagState st = s.eng->prefill(p, Method::CacheClip, mp);
  EXPECT_EQ(static_cast<int64_t>(st.recomputed.size()), 12 + 4) << "floor(0.25 * 48) + |Q|";
  EXPECT_EQ(st.aux_scores.size(), static_cast<size_t>(3 + 64 + 4));
  double mass = 0;
  for (size_t i = 3; i < 3 + 64; ++i) mass += st.aux_scores[i];
  EXPECT_GT(mass, 0.0);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(st.aux_scores[i], 0.0f) << "prefix rows are not context";
  RagEngine no_aux(*s.primary, *s.store, RagOptions{});
  EXPECT_THAT(test::error_of([&] { no_aux.prefill(p, Method::CacheClip, mp); }), HasSubstr("auxiliary"));
  // An aux with another vocabulary is refused.
  ModelConfig c = config_preset("tiny-qwen2");
  c.n_vocab = 300;
  const std::string other = test::temp_dir() + "/other-vocab.gguf";
  write_model(c, default_tokenizer(c.n_vocab), random_values(1), other, WriteOptions{});
  Model om = load_model(other);
  RagModel orm(om, *s.be);
  EXPECT_THAT(test::error_of([&] { no_aux.set_aux(&orm); }), HasSubstr("vocabulary"));
}

TEST(RagEngine, ConcurrentPipelineIsBitIdenticalToSequential) {
  // The placement of this machine (on 2 cores: aux on CPU 1, primary on CPU 0, the aux core
  // lent to the primary for recomputation), each model on its own bound backend.
  const PlacementPlan plan = make_plan(discover_topology(), PlacementRequest{});
  if (!plan.concurrent) GTEST_SKIP() << "one core: no concurrent placement";
  Model pm = load_model(make("tiny-qwen2", 61)), am = load_model(make("tiny-qwen2", 62, 1));
  auto pbe = make_cpu_backend(team_options(plan.primary)), abe = make_cpu_backend(team_options(plan.aux));
  RagModel primary(pm, *pbe), aux(am, *abe);
  ChunkStoreOptions so;
  so.numa_nodes = plan.primary.nodes;
  ChunkStore store(so);
  const RagPrompt p = random_prompt(4, {24, 24, 24}, 5, 320, 6);
  MethodParams mp;
  mp.recompute = 0.3;
  for (bool encode : {false, true}) {
    std::vector<std::vector<float>> logits;
    for (bool conc : {false, true}) {
      RagOptions ro = concurrent_options(plan);
      ro.concurrent = conc;  // the same teams either way; only the overlap differs
      ro.encode_missing = encode;
      ro.overlap_shared_cores = true;  // exercise the overlapped path even on one node
      RagEngine eng(primary, store, ro);
      eng.set_aux(&aux);
      eng.precompute(p);
      store.erase(eng.chunk_key(p.prefix, p.chunks[2]));  // one chunk missing: work to overlap
      RagState st = eng.prefill(p, Method::CacheClip, mp);
      EXPECT_EQ(st.timing.overlapped, conc && encode) << "overlap only when the primary has work of its own";
      EXPECT_EQ(st.missing_chunks, 1);
      EXPECT_EQ(store.contains(eng.chunk_key(p.prefix, p.chunks[2])), encode) << "encoded chunks are stored";
      logits.push_back(st.logits);
      logits.push_back(eng.step(st, 9));
      // After an overlapped request the primary's own team is restored; otherwise, on a single
      // node, both models keep every core (no team changes around each request).
      const bool overlapped = conc && encode;
      EXPECT_EQ(pbe->threads(), overlapped || !plan.lend_aux_cores ? plan.primary.threads
                                                                   : plan.primary.threads + plan.aux.threads);
    }
    EXPECT_EQ(logits[0], logits[2]) << "prefill logits must be bit-identical (encode_missing " << encode << ")";
    EXPECT_EQ(logits[1], logits[3]) << "and so must the first decode step";
  }
}

TEST(Placement, EachTeamRunsWhereThePlanSays) {
  // Two bound CPU backends driven from two host threads at once, as in the concurrent
  // pipeline: every thread of each team reads back a binding inside its team's CPU set.
  const PlacementPlan plan = make_plan(discover_topology(), PlacementRequest{});
  if (!plan.concurrent) GTEST_SKIP() << "one core: no split placement";
  auto pbe = make_cpu_backend(team_options(plan.primary)), abe = make_cpu_backend(team_options(plan.aux));
  std::vector<std::vector<unsigned>> pb, ab;
  std::thread t([&] { ab = abe->team_bindings(); });
  pb = pbe->team_bindings();
  t.join();
  if (current_thread_cpus().empty()) GTEST_SKIP() << "no affinity control here";
  ASSERT_EQ(static_cast<int>(pb.size()), plan.primary.threads);
  ASSERT_EQ(static_cast<int>(ab.size()), plan.aux.threads);
  for (const auto& b : pb) EXPECT_EQ(b, plan.primary.cpus);
  for (const auto& b : ab) EXPECT_EQ(b, plan.aux.cpus);
  // A CPU-set change (the aux cores lent to the primary) is followed by every thread.
  pbe->set_cpus(plan.all_cpus, plan.primary.threads + plan.aux.threads);
  for (const auto& b : pbe->team_bindings()) EXPECT_EQ(b, plan.all_cpus);
}

TEST(RagEngine, Stories260KCacheClipBeatsNaive) {
  CC_SKIP_WITHOUT_SHARED("models/stories260K/stories260K.bin");
  const std::string dir = test::shared_dir() + "/models/stories260K";
  LoadOptions lo;
  lo.tokenizer_path = dir + "/tok512.bin";
  // Aux: the model itself (a real model; the premise check is aux == primary's own attention).
  Rig s(dir + "/stories260K.bin", dir + "/stories260K.bin", KVStoreType::F16, lo);
  Tokenizer tok(s.pm.tokenizer);
  RagText t;
  t.prefix = "Once upon a time, there was a little girl named Lily.";
  t.docs = {"She loved to play outside in the park with her dog Max.",
            "One day, Max found a big red ball under a tree. He barked and ran to Lily.",
            "Lily's mom said they had to go home, because it was going to rain soon.",
            "At home, Lily gave Max a bath and they sat by the warm fire together."};
  t.question = "The next day, Lily and Max went back to the park to find the";
  const RagPrompt p = tokenize_rag(tok, t, false);
  EXPECT_EQ(p.prefix.front(), s.pm.tokenizer.bos_id);
  EXPECT_EQ(p.chunks[1], tok.encode(t.docs[1], false, false)) << "a chunk's ids are its text's ids alone";
  s.eng->precompute(p);
  MethodParams mp;
  mp.recompute = 0.2;
  const RagState full = s.eng->prefill(p, Method::Full, mp);
  const double kl_naive = kl_divergence(full.logits, s.eng->prefill(p, Method::Naive, mp).logits);
  const double kl_clip = kl_divergence(full.logits, s.eng->prefill(p, Method::CacheClip, mp).logits);
  EXPECT_LT(kl_clip, kl_naive) << "cacheclip " << kl_clip << " vs naive " << kl_naive;
  EXPECT_GT(kl_naive, 1e-6) << "naive reuse must lose something across 4 chunks";
}

}  // namespace
}  // namespace cc
