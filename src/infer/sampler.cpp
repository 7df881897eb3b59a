#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "base/error.h"

namespace cc {

namespace {

// Relative slack of the top-p comparison, so a prefix whose probabilities sum to top_p
// exactly (up to rounding) is kept without the next token.
constexpr double kTopPSlack = 1e-6;

// Strict total order: higher logit first, then lower id (deterministic top-k and ties).
template <typename C>
bool better(const C& a, const C& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

Sampler::Sampler(SamplerConfig cfg) : cfg_(cfg), rng_(cfg.seed) {
  if (!(std::isfinite(cfg_.temperature) && cfg_.temperature >= 0.0f)) {
    fail("sampler: temperature = ", cfg_.temperature, " (must be a finite value >= 0; 0 = greedy)");
  }
  if (cfg_.top_k < 0) fail("sampler: top_k = ", cfg_.top_k, " (must be >= 0; 0 = disabled)");
  if (!(cfg_.top_p > 0.0f && cfg_.top_p <= 1.0f)) {
    fail("sampler: top_p = ", cfg_.top_p, " (must be in (0, 1]; 1 = disabled)");
  }
  if (!(std::isfinite(cfg_.repetition_penalty) && cfg_.repetition_penalty > 0.0f)) {
    fail("sampler: repetition_penalty = ", cfg_.repetition_penalty,
         " (must be a finite value > 0; 1 = disabled)");
  }
  if (cfg_.repeat_last_n < -1) {
    fail("sampler: repeat_last_n = ", cfg_.repeat_last_n, " (must be >= -1; -1 = whole history, 0 = none)");
  }
}

void Sampler::reset(uint64_t seed) {
  cfg_.seed = seed;
  rng_.seed(seed);
}

double Sampler::uniform() {
  // 53 random bits -> [0, 1): identical on every standard library.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

void Sampler::collect_penalties(std::span<const int32_t> history, size_t n_vocab) {
  penalized_.clear();
  if (cfg_.repetition_penalty == 1.0f || cfg_.repeat_last_n == 0 || history.empty()) return;
  size_t n = cfg_.repeat_last_n < 0 ? history.size()
                                    : std::min(history.size(), static_cast<size_t>(cfg_.repeat_last_n));
  size_t first = history.size() - n;
  window_.assign(history.begin() + static_cast<std::ptrdiff_t>(first), history.end());
  for (size_t i = 0; i < window_.size(); ++i) {
    int32_t t = window_[i];
    if (t < 0 || static_cast<size_t>(t) >= n_vocab) {
      fail("sampler: history token ", t, " at position ", first + i, " is outside the vocabulary [0, ",
           n_vocab, ")");
    }
  }
  std::sort(window_.begin(), window_.end());
  window_.erase(std::unique(window_.begin(), window_.end()), window_.end());
  for (int32_t t : window_) penalized_.emplace_back(t, 0.0f);  // values filled by sample()
}

int32_t Sampler::argmax(std::span<const float> logits) const {
  // Penalized values replace the raw logits of the tokens in penalized_ (sorted by id).
  int32_t best = 0;
  float best_v = -std::numeric_limits<float>::infinity();
  size_t j = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    float v = logits[i];
    if (j < penalized_.size() && static_cast<size_t>(penalized_[j].first) == i) v = penalized_[j++].second;
    if (v > best_v) best = static_cast<int32_t>(i), best_v = v;  // strict: ties keep the lowest id
    if (std::isnan(v)) fail("sampler: logit ", i, " is NaN");
  }
  if (best_v == -std::numeric_limits<float>::infinity())
    fail("sampler: every logit is -inf (nothing can be sampled)");
  return best;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const size_t n_vocab = logits.size();
  if (n_vocab == 0) fail("sampler: empty logits");
  if (n_vocab > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    fail("sampler: ", n_vocab, " logits exceed the int32 token id range");
  }

  // 1. Repetition penalty: the penalized values of the distinct recent tokens.
  collect_penalties(history, n_vocab);
  const float pen = cfg_.repetition_penalty;
  for (auto& [id, v] : penalized_) {
    float l = logits[static_cast<size_t>(id)];
    v = l > 0.0f ? l / pen : l * pen;
  }

  // 2. Greedy.
  if (cfg_.temperature == 0.0f) return argmax(logits);

  // 3. Candidates (penalized logits): the top k by a bounded heap scan (no copy of the whole
  //    vocabulary; most logits fail one comparison with the heap's worst), else all tokens.
  auto cmp = [](const Cand& a, const Cand& b) { return better(a, b); };
  const bool use_top_k = cfg_.top_k > 0 && static_cast<size_t>(cfg_.top_k) < n_vocab;
  cands_.clear();
  {
    const size_t k = use_top_k ? static_cast<size_t>(cfg_.top_k) : n_vocab;
    cands_.reserve(k);
    size_t j = 0;
    for (size_t i = 0; i < n_vocab; ++i) {
      float v = logits[i];
      if (j < penalized_.size() && static_cast<size_t>(penalized_[j].first) == i) v = penalized_[j++].second;
      if (std::isnan(v)) fail("sampler: logit ", i, " is NaN");
      Cand c{v, static_cast<int32_t>(i), 0.0};
      if (cands_.size() < k) {
        cands_.push_back(c);
        if (use_top_k) std::push_heap(cands_.begin(), cands_.end(), cmp);  // front = worst kept
      } else if (better(c, cands_.front())) {
        std::pop_heap(cands_.begin(), cands_.end(), cmp);
        cands_.back() = c;
        std::push_heap(cands_.begin(), cands_.end(), cmp);
      }
    }
  }
  bool sorted = false;
  if (use_top_k) {
    std::sort(cands_.begin(), cands_.end(), cmp);  // k log k
    sorted = true;
  }

  // 4. Softmax with temperature (max subtracted; +inf logits share all the mass).
  float max_logit = -std::numeric_limits<float>::infinity();
  for (const Cand& c : cands_) max_logit = std::max(max_logit, c.logit);
  if (max_logit == -std::numeric_limits<float>::infinity()) {
    fail("sampler: every logit is -inf (nothing can be sampled)");
  }
  const double inv_t = 1.0 / static_cast<double>(cfg_.temperature);
  const bool inf_max = std::isinf(max_logit);
  const double max_d = max_logit;
  // Histogram of the candidates by log-probability (buckets of width 1/kScale below the
  // maximum), used to find the top-p nucleus without sorting the tail.
  constexpr int kBuckets = 128;
  constexpr double kScale = 4.0;
  auto bucket = [&](const Cand& c) -> int {
    if (inf_max) return c.logit == max_logit ? 0 : kBuckets - 1;
    double nx = (max_d - static_cast<double>(c.logit)) * inv_t * kScale;  // >= 0
    return nx < kBuckets - 1 ? static_cast<int>(nx) : kBuckets - 1;
  };
  const bool use_top_p = cfg_.top_p < 1.0f;
  double bucket_mass[kBuckets] = {};
  double total = 0.0;
  for (Cand& c : cands_) {
    if (inf_max) {
      c.p = c.logit == max_logit ? 1.0 : 0.0;
    } else {
      c.p = std::exp((static_cast<double>(c.logit) - max_d) * inv_t);
    }
    total += c.p;
    if (use_top_p && !sorted) bucket_mass[bucket(c)] += c.p;
  }

  // 5. Top-p: the smallest descending prefix with cumulative probability >= top_p.
  size_t keep = cands_.size();
  double kept_mass = total;
  if (use_top_p) {
    const double target = static_cast<double>(cfg_.top_p) * total * (1.0 - kTopPSlack);
    size_t n = cands_.size();
    if (!sorted) {
      // Every token of the nucleus lies in the buckets up to the one where the cumulative
      // bucket mass reaches the target: move those to the front (one cheap pass).
      int last = kBuckets - 1;
      double cb = 0.0;
      for (int b = 0; b < kBuckets; ++b) {
        cb += bucket_mass[b];
        if (cb >= target) {
          last = b;
          break;
        }
      }
      if (last < kBuckets - 1) {
        n = static_cast<size_t>(
            std::partition(cands_.begin(), cands_.end(), [&](const Cand& c) { return bucket(c) <= last; }) -
            cands_.begin());
      }
    }
    // Sort a growing head of those (256, 1024, ...) until it holds the nucleus.
    size_t sorted_end = sorted ? n : 0;
    size_t m = sorted ? n : std::min<size_t>(n, 256);
    double cum = 0.0;
    size_t k = 0;
    bool done = false;
    while (!done) {
      if (sorted_end < m) {
        auto b = cands_.begin() + static_cast<std::ptrdiff_t>(sorted_end);
        auto e = cands_.begin() + static_cast<std::ptrdiff_t>(m);
        if (m < n) std::nth_element(b, e, cands_.begin() + static_cast<std::ptrdiff_t>(n), cmp);
        std::sort(b, e, cmp);
        sorted_end = m;
      }
      while (k < sorted_end) {
        cum += cands_[k++].p;
        if (cum >= target) {
          done = true;
          break;
        }
      }
      if (!done) {
        if (sorted_end == n) break;  // rounding left the target unreached: keep them all
        m = std::min(n, 4 * m);
      }
    }
    keep = std::max<size_t>(k, 1);
    kept_mass = cum > 0.0 ? cum : cands_[0].p;
  }

  // 6. Draw from the renormalised kept candidates.
  const double u = uniform() * kept_mass;
  double acc = 0.0;
  int32_t last_positive = cands_[0].id;
  for (size_t i = 0; i < keep; ++i) {
    const Cand& c = cands_[i];
    if (c.p <= 0.0) continue;
    acc += c.p;
    last_positive = c.id;
    if (u < acc) return c.id;
  }
  return last_positive;  // u rounded up to the kept mass
}

// ---------------------------------------------------------------------------------------------

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (stops_[i].empty()) fail("stop strings: entry ", i, " is empty");
  }
}

std::string StopMatcher::feed(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  if (stops_.empty()) return std::exchange(pending_, std::string());

  // A completed stop string. The one that completes first wins (smallest end; then the
  // longer one, i.e. the earlier start; then the first listed), so the result does not depend
  // on how the text was split into pieces.
  size_t best = std::string::npos, best_end = std::string::npos;
  for (size_t s = 0; s < stops_.size(); ++s) {
    size_t at = pending_.find(stops_[s]);  // the first occurrence also ends first
    if (at == std::string::npos) continue;
    size_t end = at + stops_[s].size();
    if (end < best_end || (end == best_end && at < best)) {
      best = at, best_end = end, matched_ = static_cast<int32_t>(s);
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, best);
    pending_.clear();
    return out;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    size_t max_len = std::min(s.size() - 1, pending_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(pending_, std::string());
}

}  // namespace cc
