// Sampler (greedy, top-k, temperature, top-p, repetition penalty, seeding) and StopMatcher.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "infer/sampler.h"
#include "test_util.h"

namespace cc {
namespace {

using ::testing::HasSubstr;

std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);  // values only feed the tests' inputs
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

int32_t sample(Sampler& s, const std::vector<float>& logits, const std::vector<int32_t>& hist = {}) {
  return s.sample(logits, hist);
}

SamplerConfig cfg_t(float t, uint64_t seed = 0) {
  SamplerConfig c;
  c.temperature = t;
  c.seed = seed;
  return c;
}

// Empirical counts of `n` draws.
std::vector<int64_t> counts(Sampler& s, const std::vector<float>& logits, int n,
                            const std::vector<int32_t>& hist = {}) {
  std::vector<int64_t> c(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++c[static_cast<size_t>(s.sample(logits, hist))];
  return c;
}

// Pearson chi-square of counts against probabilities (cells with p == 0 must have no draws).
double chi_square(const std::vector<int64_t>& c, const std::vector<double>& p, int n) {
  double chi = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(c[i], 0) << "token " << i << " has probability 0 but was drawn";
      continue;
    }
    double e = p[i] * n;
    chi += (c[i] - e) * (c[i] - e) / e;
  }
  return chi;
}

std::vector<double> softmax(const std::vector<float>& l, double t) {
  double m = *std::max_element(l.begin(), l.end());
  std::vector<double> p(l.size());
  double s = 0;
  for (size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp((l[i] - m) / t);
  for (double& x : p) x /= s;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Greedy

TEST(Sampler, GreedyIsArgmax) {
  Sampler s(cfg_t(0.0f));
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto l = random_logits(1000, seed);
    int32_t want = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    EXPECT_EQ(sample(s, l), want);
  }
  EXPECT_EQ(sample(s, {-5.0f}), 0);
  EXPECT_EQ(sample(s, {-std::numeric_limits<float>::infinity(), -1e30f}), 1);
}

TEST(Sampler, GreedyTiesGoToLowestId) {
  Sampler s(cfg_t(0.0f));
  EXPECT_EQ(sample(s, {1.0f, 3.0f, 2.0f, 3.0f, 3.0f}), 1);
  EXPECT_EQ(sample(s, {0.0f, 0.0f, 0.0f}), 0);
  EXPECT_EQ(sample(s, {-1.0f, 7.5f, 7.5f}), 1);
}

TEST(Sampler, GreedyUsesNoRandomness) {
  // Greedy calls interleaved with sampled ones leave the random stream untouched.
  auto l = random_logits(50, 7, 1.0f);
  SamplerConfig c = cfg_t(1.0f, 99);
  Sampler a(c), b(c);
  Sampler greedy(cfg_t(0.0f, 99));
  std::vector<int32_t> x, y;
  for (int i = 0; i < 20; ++i) {
    x.push_back(sample(a, l));
    EXPECT_EQ(sample(greedy, l), sample(greedy, l));
    y.push_back(sample(b, l));
  }
  EXPECT_EQ(x, y);
}

TEST(Sampler, TopK1EqualsGreedyAtAnyTemperature) {
  Sampler greedy(cfg_t(0.0f));
  for (float t : {0.01f, 0.5f, 1.0f, 2.0f, 100.0f}) {
    SamplerConfig c = cfg_t(t, 5);
    c.top_k = 1;
    Sampler s(c);
    for (uint64_t seed = 0; seed < 10; ++seed) {
      auto l = random_logits(5000, seed);
      EXPECT_EQ(sample(s, l), sample(greedy, l)) << "temperature " << t;
    }
    // Ties: the lowest id, as greedy.
    EXPECT_EQ(sample(s, {1.0f, 4.0f, 4.0f, 4.0f}), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding

TEST(Sampler, SameSeedSameTokensDifferentSeedsDiffer) {
  auto l = random_logits(32000, 3, 1.0f);
  auto run = [&](SamplerConfig c) {
    Sampler s(c);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(sample(s, l));
    return out;
  };
  for (int variant = 0; variant < 3; ++variant) {
    SamplerConfig c = cfg_t(1.0f, 1234);
    if (variant == 1) c.top_k = 40;
    if (variant == 2) c.top_p = 0.9f;
    auto a = run(c), b = run(c);
    EXPECT_EQ(a, b);
    c.seed = 1235;
    EXPECT_NE(run(c), a) << "variant " << variant;
  }
}

TEST(Sampler, ResetReplaysTheStream) {
  auto l = random_logits(1000, 4, 1.0f);
  Sampler s(cfg_t(0.8f, 1));
  std::vector<int32_t> first, second;
  for (int i = 0; i < 50; ++i) first.push_back(sample(s, l));
  s.reset(1);
  for (int i = 0; i < 50; ++i) second.push_back(sample(s, l));
  EXPECT_EQ(first, second);
  s.reset(2);
  EXPECT_EQ(s.config().seed, 2u);
  std::vector<int32_t> third;
  for (int i = 0; i < 50; ++i) third.push_back(sample(s, l));
  EXPECT_NE(first, third);
}

TEST(Sampler, DocumentedDrawIsReproducible) {
  // The header specifies the draw: u = (mt19937_64() >> 11) * 2^-53, walking the tokens in id
  // order when nothing is cut. Reproduce it here for a 3-token distribution.
  std::vector<float> l = {0.0f, std::log(2.0f), std::log(5.0f)};  // p = 1/8, 2/8, 5/8
  Sampler s(cfg_t(1.0f, 77));
  std::mt19937_64 rng(77);
  for (int i = 0; i < 200; ++i) {
    double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    int32_t want = u < 0.125 ? 0 : (u < 0.375 ? 1 : 2);
    if (std::abs(u - 0.125) < 1e-6 || std::abs(u - 0.375) < 1e-6) continue;  // rounding boundary
    ASSERT_EQ(sample(s, l), want) << "draw " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Distributions (fixed seeds: deterministic, bounds chosen so a correct sampler passes with
// probability > 1 - 3e-6 for any seed)

// Upper tail of chi-square: P(df 7 > 38.0) = 3e-6, P(df 3 > 30.7) = P(df 2 > 27.6) = 1e-6.
TEST(Sampler, FrequenciesMatchSoftmax) {
  std::vector<float> l = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 1.5f, 0.2f};
  const int n = 200000;
  for (float t : {1.0f, 0.7f, 1.8f}) {
    Sampler s(cfg_t(t, 2024));
    auto c = counts(s, l, n);
    double chi = chi_square(c, softmax(l, t), n);
    EXPECT_LT(chi, 38.0) << "temperature " << t;
  }
}

TEST(Sampler, TopKFrequenciesAreRenormalised) {
  std::vector<float> l = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 1.5f, 0.2f};
  SamplerConfig c = cfg_t(1.0f, 11);
  c.top_k = 3;  // tokens 0, 6, 1
  Sampler s(c);
  const int n = 100000;
  auto cnt = counts(s, l, n);
  std::vector<float> top = {l[0], l[6], l[1]};
  auto pt = softmax(top, 1.0);
  std::vector<double> p(l.size(), 0.0);
  p[0] = pt[0], p[6] = pt[1], p[1] = pt[2];
  EXPECT_LT(chi_square(cnt, p, n), 27.6);
}

TEST(Sampler, TopPExcludesTailExactlyAtBoundary) {
  // p = 1/2, 1/4, 1/8, 1/8 (tokens 3 and 1 tie).
  std::vector<float> l = {std::log(0.25f), std::log(0.125f), std::log(0.5f), std::log(0.125f)};
  auto drawn = [&](float top_p) {
    SamplerConfig c = cfg_t(1.0f, 3);
    c.top_p = top_p;
    Sampler s(c);
    auto cnt = counts(s, l, 20000);
    std::vector<int32_t> ids;
    for (size_t i = 0; i < cnt.size(); ++i)
      if (cnt[i] > 0) ids.push_back(static_cast<int32_t>(i));
    return ids;
  };
  EXPECT_EQ(drawn(0.5f), (std::vector<int32_t>{2}));           // 1/2 reaches 0.5 exactly
  EXPECT_EQ(drawn(0.5001f), (std::vector<int32_t>{0, 2}));     // needs the next token
  EXPECT_EQ(drawn(0.75f), (std::vector<int32_t>{0, 2}));       // 1/2 + 1/4 exactly
  EXPECT_EQ(drawn(0.7501f), (std::vector<int32_t>{0, 1, 2}));  // tie 1/3: lower id first
  EXPECT_EQ(drawn(0.875f), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(drawn(0.8751f), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(drawn(1.0f), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(drawn(1e-6f), (std::vector<int32_t>{2}));  // always at least one token
}

TEST(Sampler, TopPFrequenciesAreRenormalised) {
  std::vector<float> l = {std::log(0.25f), std::log(0.125f), std::log(0.5f), std::log(0.125f)};
  SamplerConfig c = cfg_t(1.0f, 8);
  c.top_p = 0.8f;  // keeps 2, 0, 1: p = 4/7, 2/7, 1/7
  Sampler s(c);
  const int n = 100000;
  auto cnt = counts(s, l, n);
  EXPECT_LT(chi_square(cnt, {2.0 / 7, 1.0 / 7, 4.0 / 7, 0.0}, n), 27.6);
}

TEST(Sampler, TopPOnLargeVocabularyKeepsTheNucleus) {
  // 150k equal logits: top_p 0.01 keeps ids 0..1499 (ties: lower ids first); the nucleus is
  // larger than the first sorted head, so the head has to grow.
  std::vector<float> l(150000, 0.5f);
  SamplerConfig c = cfg_t(1.0f, 21);
  c.top_p = 0.01f;
  Sampler s(c);
  int32_t max_id = 0;
  for (int i = 0; i < 300; ++i) {
    int32_t t = sample(s, l);
    ASSERT_LT(t, 1500);
    max_id = std::max(max_id, t);
  }
  EXPECT_GT(max_id, 1400);  // P(all 300 draws below 1400) = (14/15)^300 ~ 1e-9
}

// A straightforward reference (full sort) with the documented draw; the sampler must pick the
// same tokens for the same seed.
int32_t reference_sample(const std::vector<float>& logits, const std::vector<int32_t>& hist,
                         const SamplerConfig& c, std::mt19937_64& rng) {
  std::vector<float> l = logits;
  if (c.repetition_penalty != 1.0f && c.repeat_last_n != 0) {
    size_t n =
        c.repeat_last_n < 0 ? hist.size() : std::min(hist.size(), static_cast<size_t>(c.repeat_last_n));
    std::vector<int32_t> w(hist.end() - static_cast<std::ptrdiff_t>(n), hist.end());
    std::sort(w.begin(), w.end());
    w.erase(std::unique(w.begin(), w.end()), w.end());
    for (int32_t t : w) l[t] = l[t] > 0 ? l[t] / c.repetition_penalty : l[t] * c.repetition_penalty;
  }
  if (c.temperature == 0) return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
  std::vector<int32_t> ids(l.size());
  std::iota(ids.begin(), ids.end(), 0);
  bool cut = (c.top_k > 0 && static_cast<size_t>(c.top_k) < l.size()) || c.top_p < 1.0f;
  if (cut) std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return l[a] > l[b]; });
  if (c.top_k > 0 && static_cast<size_t>(c.top_k) < ids.size()) ids.resize(static_cast<size_t>(c.top_k));
  double m = -std::numeric_limits<double>::infinity();
  for (int32_t i : ids) m = std::max(m, static_cast<double>(l[i]));
  std::vector<double> p;
  double total = 0;
  for (int32_t i : ids) total += p.emplace_back(std::exp((l[i] - m) / c.temperature));
  size_t keep = ids.size();
  double mass = total;
  if (c.top_p < 1.0f) {
    double cum = 0;
    size_t k = 0;
    while (k < ids.size()) {
      cum += p[k++];
      if (cum >= c.top_p * total * (1 - 1e-6)) break;
    }
    keep = k, mass = cum;
  }
  double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * mass;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];
}

TEST(Sampler, MatchesFullSortReference) {
  auto l = random_logits(50000, 12, 2.0f);
  std::vector<int32_t> hist;
  for (int i = 0; i < 100; ++i) hist.push_back(static_cast<int32_t>((i * 7919) % 300));
  struct Case {
    float t;
    int32_t k;
    float p;
    float pen;
    int32_t last_n;
  };
  for (Case cs :
       {Case{1.0f, 0, 1.0f, 1.0f, 64}, Case{0.7f, 40, 1.0f, 1.0f, 64}, Case{1.0f, 0, 0.9f, 1.0f, 64},
        Case{0.8f, 100, 0.95f, 1.3f, 64}, Case{1.2f, 0, 0.5f, 1.1f, -1}, Case{0.0f, 0, 1.0f, 1.5f, 10},
        Case{2.0f, 50000, 0.99f, 0.8f, 32}, Case{1.5f, 3, 0.3f, 1.0f, 0}}) {
    SamplerConfig c = cfg_t(cs.t, 31);
    c.top_k = cs.k, c.top_p = cs.p, c.repetition_penalty = cs.pen, c.repeat_last_n = cs.last_n;
    Sampler s(c);
    std::mt19937_64 rng(31);
    for (int i = 0; i < 30; ++i) {
      ASSERT_EQ(sample(s, l, hist), reference_sample(l, hist, c, rng))
          << "draw " << i << " t " << cs.t << " k " << cs.k << " p " << cs.p << " pen " << cs.pen;
    }
  }
}

TEST(Sampler, HandlesInfiniteLogits) {
  const float inf = std::numeric_limits<float>::infinity();
  Sampler s(cfg_t(1.0f, 4));
  for (int i = 0; i < 100; ++i) {
    int32_t t = sample(s, {-inf, 0.0f, -inf, 1.0f, -inf});
    EXPECT_TRUE(t == 1 || t == 3);
  }
  for (int i = 0; i < 100; ++i) {
    int32_t t = sample(s, {1.0f, inf, 2.0f, inf});
    EXPECT_TRUE(t == 1 || t == 3);
  }
}

// ---------------------------------------------------------------------------------------------
// Repetition penalty

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  SamplerConfig c = cfg_t(0.0f);
  c.repetition_penalty = 2.0f;
  Sampler s(c);
  // 3 -> 1.5 < 2: token 2 wins instead of token 0.
  EXPECT_EQ(sample(s, {3.0f, -1.0f, 2.0f, -3.0f}, {0, 1}), 2);
  EXPECT_EQ(sample(s, {3.0f, -1.0f, 2.0f, -3.0f}, {}), 0);
  // Negative: -1 -> -2 < -1.5: token 1 wins instead of token 0.
  EXPECT_EQ(sample(s, {-1.0f, -1.5f, -3.0f}, {0}), 1);
  // Each distinct token once: 3 / 2 = 1.5 > 1.4 (not 3 / 8).
  EXPECT_EQ(sample(s, {3.0f, 1.4f}, {0, 0, 0}), 0);
  EXPECT_EQ(sample(s, {3.0f, 1.6f}, {0, 0, 0}), 1);
}

TEST(Sampler, RepetitionPenaltyLowersSampledProbability) {
  std::vector<float> l = {1.0f, 1.0f, -1.0f, -1.0f};
  SamplerConfig c = cfg_t(1.0f, 6);
  c.repetition_penalty = 2.0f;
  Sampler s(c);
  const int n = 100000;
  // Tokens 0 (1 -> 0.5) and 2 (-1 -> -2) repeated.
  auto cnt = counts(s, l, n, {0, 2});
  EXPECT_LT(chi_square(cnt, softmax({0.5f, 1.0f, -2.0f, -1.0f}, 1.0), n), 30.7);
  EXPECT_LT(cnt[0], cnt[1]);
  EXPECT_LT(cnt[2], cnt[3]);
}

TEST(Sampler, RepetitionPenaltyWindow) {
  SamplerConfig c = cfg_t(0.0f);
  c.repetition_penalty = 10.0f;
  c.repeat_last_n = 3;
  std::vector<float> l = {5.0f, 4.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  EXPECT_EQ(Sampler(c).sample(l, std::vector<int32_t>{0, 5, 6, 7}), 0);  // 0 is outside the last 3
  EXPECT_EQ(Sampler(c).sample(l, std::vector<int32_t>{5, 6, 0}), 1);
  c.repeat_last_n = 0;  // disabled
  EXPECT_EQ(Sampler(c).sample(l, std::vector<int32_t>{0}), 0);
  c.repeat_last_n = -1;  // the whole history
  std::vector<int32_t> long_hist(1000, 3);
  long_hist[0] = 0;
  EXPECT_EQ(Sampler(c).sample(l, long_hist), 1);
  c.repetition_penalty = 0.5f;  // < 1 favours repeats
  c.repeat_last_n = 64;
  EXPECT_EQ(Sampler(c).sample(l, std::vector<int32_t>{1}), 1);  // 4 / 0.5 = 8 > 5
}

TEST(Sampler, HistoryOutsideVocabularyIsAnError) {
  SamplerConfig c = cfg_t(0.0f);
  c.repetition_penalty = 1.1f;
  Sampler s(c);
  std::string e = test::error_of([&] { sample(s, {1.0f, 2.0f}, {0, 2}); });
  EXPECT_THAT(e, HasSubstr("history token 2"));
  EXPECT_THAT(e, HasSubstr("vocabulary"));
  e = test::error_of([&] { sample(s, {1.0f, 2.0f}, {-1}); });
  EXPECT_THAT(e, HasSubstr("history token -1"));
}

// ---------------------------------------------------------------------------------------------
// Invalid input

TEST(Sampler, InvalidConfigsNameTheField) {
  auto err = [](auto mutate) {
    SamplerConfig c;
    mutate(c);
    return test::error_of([&] { Sampler s(c); });
  };
  EXPECT_THAT(err([](SamplerConfig& c) { c.temperature = -0.1f; }), HasSubstr("temperature"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.temperature = std::nanf(""); }), HasSubstr("temperature"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.top_k = -1; }), HasSubstr("top_k"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.top_p = 0.0f; }), HasSubstr("top_p"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.top_p = 1.5f; }), HasSubstr("top_p"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.top_p = std::nanf(""); }), HasSubstr("top_p"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.repetition_penalty = 0.0f; }), HasSubstr("repetition_penalty"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.repetition_penalty = -1.0f; }), HasSubstr("repetition_penalty"));
  EXPECT_THAT(err([](SamplerConfig& c) { c.repeat_last_n = -2; }), HasSubstr("repeat_last_n"));
  // The value is in the message, on one line.
  std::string e = err([](SamplerConfig& c) { c.top_k = -7; });
  EXPECT_THAT(e, HasSubstr("-7"));
  EXPECT_EQ(e.find('\n'), std::string::npos);
  // Boundaries that are valid.
  SamplerConfig ok;
  ok.top_p = 1.0f, ok.top_k = 0, ok.temperature = 0.0f, ok.repeat_last_n = -1;
  EXPECT_NO_THROW(Sampler{ok});
}

TEST(Sampler, InvalidLogits) {
  Sampler s(cfg_t(1.0f));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_THAT(test::error_of([&] { sample(s, {}); }), HasSubstr("empty logits"));
  EXPECT_THAT(test::error_of([&] { sample(s, {1.0f, std::nanf("")}); }), HasSubstr("NaN"));
  EXPECT_THAT(test::error_of([&] { sample(s, {-inf, -inf}); }), HasSubstr("-inf"));
  Sampler g(cfg_t(0.0f));
  EXPECT_THAT(test::error_of([&] { sample(g, {std::nanf(""), 1.0f}); }), HasSubstr("NaN"));
}

// ---------------------------------------------------------------------------------------------
// StopMatcher

std::string feed_all(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.feed(p);
  return out;
}

TEST(StopMatcher, StopSplitAcrossPieces) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.feed("Hello <"), "Hello ");  // "<" held back
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.feed("/"), "");
  EXPECT_EQ(m.feed("s> and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched_index(), 0);
  EXPECT_EQ(m.feed("ignored"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, TextBeforeStopInSamePiece) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.feed("abc"), "abc");
  EXPECT_EQ(m.feed("deSTOPfgh"), "de");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, PartialMatchThatIsNotAStopIsReleased) {
  StopMatcher m({"<|im_end|>"});
  EXPECT_EQ(m.feed("a <|im"), "a ");
  EXPECT_EQ(m.feed("_e"), "");
  EXPECT_EQ(m.feed("x"), "<|im_ex");  // diverged: everything released
  EXPECT_FALSE(m.stopped());
  // A released partial match followed by a new one.
  EXPECT_EQ(m.feed("<<"), "<");
  EXPECT_EQ(m.feed("|im_end|>"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, OverlappingPrefixes) {
  StopMatcher m({"aab"});
  EXPECT_EQ(feed_all(m, {"a", "a", "a", "b"}), "a");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"abc"});
  EXPECT_EQ(feed_all(n, {"ab", "abc"}), "ab");
  EXPECT_TRUE(n.stopped());
}

TEST(StopMatcher, MultipleStopStrings) {
  StopMatcher m({"\n\n", "User:", "###"});
  EXPECT_EQ(m.feed("one\n"), "one");
  EXPECT_EQ(m.feed("two Us"), "\ntwo ");
  EXPECT_EQ(m.feed("e"), "");
  EXPECT_EQ(m.feed("r:"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched_index(), 1);

  // The stop that completes first wins, whatever the split.
  for (auto pieces : std::vector<std::vector<std::string>>{{"xabcd"}, {"xab", "cd"}, {"xabc", "d"}}) {
    StopMatcher k({"abcd", "bc"});
    EXPECT_EQ(feed_all(k, pieces), "xa");
    EXPECT_TRUE(k.stopped());
    EXPECT_EQ(k.matched_index(), 1);
  }
  // Same end: the longer (earlier) one.
  StopMatcher k({"c", "abc"});
  EXPECT_EQ(feed_all(k, {"xabcy"}), "x");
  EXPECT_EQ(k.matched_index(), 1);
}

TEST(StopMatcher, FlushReleasesHeldText) {
  StopMatcher m({"</s>", "END"});
  EXPECT_EQ(m.feed("the EN"), "the ");
  EXPECT_EQ(m.flush(), "EN");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "");
  EXPECT_EQ(m.matched_index(), -1);
}

TEST(StopMatcher, NoStopsPassesThroughAndEmptyStopIsAnError) {
  StopMatcher m({});
  EXPECT_EQ(m.feed("abc"), "abc");
  EXPECT_EQ(m.feed(""), "");
  EXPECT_EQ(m.flush(), "");
  EXPECT_THAT(test::error_of([] { StopMatcher bad({"ok", ""}); }), HasSubstr("entry 1 is empty"));
}

TEST(StopMatcher, Utf8StopStrings) {
  StopMatcher m({"\xe3\x80\x82"});  // "。"
  EXPECT_EQ(m.feed("\xe4\xbd\xa0\xe5\xa5\xbd\xe3"), "\xe4\xbd\xa0\xe5\xa5\xbd");
  EXPECT_EQ(m.feed("\x80\x82!"), "");
  EXPECT_TRUE(m.stopped());
}

// Property: for random texts and random splits, the emitted text (+ flush) equals the text up
// to the first stop to complete, computed naively.
TEST(StopMatcher, RandomSplitsMatchNaiveReference) {
  std::mt19937_64 rng(2024);
  const std::vector<std::string> stops = {"ab", "bca", "cc", "abca"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    size_t len = rng() % 30;
    for (size_t i = 0; i < len; ++i) text += static_cast<char>('a' + rng() % 4);
    // Reference: the first end position where a stop completes; the longest such stop.
    std::string want = text;
    bool want_stop = false;
    for (size_t e = 1; e <= text.size() && !want_stop; ++e) {
      for (size_t L : {4, 3, 2}) {
        for (const auto& s : stops) {
          if (s.size() == L && e >= L && text.compare(e - L, L, s) == 0 && !want_stop) {
            want = text.substr(0, e - L), want_stop = true;
          }
        }
      }
    }
    StopMatcher m(stops);
    std::string got;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t n = std::min(text.size() - pos, static_cast<size_t>(rng() % 5));
      got += m.feed(std::string_view(text).substr(pos, n));
      pos += n;
    }
    got += m.flush();
    ASSERT_EQ(got, want) << "text '" << text << "'";
    ASSERT_EQ(m.stopped(), want_stop) << "text '" << text << "'";
  }
}

}  // namespace
}  // namespace cc
