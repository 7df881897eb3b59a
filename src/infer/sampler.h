// Token sampling and stop strings for generation.
//
// Sampler turns one row of logits into a token id. Order of operations (llama.cpp's sampler
// chain, restricted to these samplers):
//   1. repetition penalty over the last `repeat_last_n` tokens of the history
//   2. temperature == 0: argmax (ties -> lowest id), done
//   3. top-k: keep the k largest logits (ties -> lower ids first)
//   4. softmax(logit / temperature), numerically stable (max subtracted), in double
//   5. top-p: keep the smallest prefix of the descending distribution whose cumulative
//      probability is >= top_p (at least one token)
//   6. renormalise and draw with std::mt19937_64: u = (rng() >> 11) * 2^-53, a uniform double
//      in [0, 1) computed the same way by every standard library (std::discrete_distribution
//      and std::uniform_real_distribution are not), so a seed gives the same tokens with any
//      standard library (up to last-bit differences of std::exp between math libraries).
//      The token is the first kept one whose cumulative probability exceeds u * (kept mass),
//      walking the kept tokens by descending logit (ties: lower id first) when top-k
//      (0 < top_k < vocabulary) or top-p (top_p < 1) is active, else in id order. Each
//      non-greedy call uses one random number; greedy calls use none.
// Cost per call, never a full sort of a 150k vocabulary: greedy is one pass; top-k one pass
// with a k-entry heap (most logits cost one comparison) and k exponentials; otherwise one
// exp per token, and top-p then moves the tokens of the probability buckets that can hold
// the nucleus to the front (one pass) and sorts a growing head of them (nth_element) until
// it holds the nucleus. Scratch buffers are reused: no allocation per token after the first.
//
// Errors (cc::Error, one line): invalid configuration at construction; empty logits, NaN
// logits, logits that are all -inf and history tokens outside the vocabulary at sample().
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cc {

struct SamplerConfig {
  // Softmax temperature. 0 (default) = greedy: the argmax, ties broken towards the lowest
  // token id, and no randomness is consumed. Must be >= 0.
  float temperature = 0.0f;
  // Keep only the top_k most likely tokens before the softmax. 0 (default) = disabled.
  // Must be >= 0; values >= the vocabulary size are the same as disabled.
  int32_t top_k = 0;
  // Nucleus sampling: keep the smallest set of most likely tokens whose probabilities sum to
  // at least top_p (always at least one token). 1 (default) = disabled. Must be in (0, 1].
  // The comparison allows a relative 1e-6 of rounding (float logits and top_p are only that
  // precise), so a prefix summing to top_p exactly is kept without the next token.
  float top_p = 1.0f;
  // CTRL / llama.cpp repetition penalty for tokens that occur in the last repeat_last_n
  // entries of the history (each distinct token once): logit > 0 ? logit / p : logit * p.
  // 1 (default) = disabled. Must be > 0 (values < 1 favour repetition).
  float repetition_penalty = 1.0f;
  // How many of the most recent history tokens the penalty looks at. 64 by default;
  // 0 = none, -1 = the whole history. Must be >= -1.
  int32_t repeat_last_n = 64;
  // Seed of the random generator: the same seed, config, logits and history give the same
  // tokens. 0 by default.
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Validates the configuration: throws cc::Error naming the field and its value when
  // temperature < 0, top_k < 0, top_p outside (0, 1], repetition_penalty <= 0 (or any of
  // them not finite) or repeat_last_n < -1.
  explicit Sampler(SamplerConfig cfg);

  // Picks the next token from one row of logits (size = vocabulary). history = the tokens
  // before it (prompt + generated so far); only the penalty reads it.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // Restarts the random stream from `seed` (the config's seed is replaced).
  void reset(uint64_t seed);

  const SamplerConfig& config() const { return cfg_; }

 private:
  struct Cand {
    float logit;
    int32_t id;
    double p;
  };
  void collect_penalties(std::span<const int32_t> history, size_t n_vocab);
  int32_t argmax(std::span<const float> logits) const;
  double uniform();

  SamplerConfig cfg_;
  std::mt19937_64 rng_;
  // Scratch reused between calls (no allocation per token after the first).
  std::vector<std::pair<int32_t, float>> penalized_;  // (id, penalized logit), sorted by id
  std::vector<int32_t> window_;
  std::vector<Cand> cands_;
};

// Stop strings for streamed text. Feed the generated text piece by piece (one token's text at
// a time); feed() returns what can be printed now and holds back any tail that could still be
// the beginning of a stop string. When a stop string completes, stopped() becomes true, the
// text before it is returned and the stop string itself (and everything after it) is dropped.
// Matching is on bytes, so stop strings may contain any UTF-8.
class StopMatcher {
 public:
  // Throws cc::Error for an empty stop string. No stop strings: feed() passes text through.
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `piece` and returns the text that is safe to emit now. After a stop, returns "".
  std::string feed(std::string_view piece);
  // End of generation without a stop: returns the held-back text (then nothing is held).
  // Returns "" after a stop.
  std::string flush();
  bool stopped() const { return stopped_; }
  // Index in `stops` of the stop string that matched, -1 while not stopped. When several
  // occur, the one that completes first in the text wins (then the longer, then the first
  // listed), whatever the split into pieces.
  int32_t matched_index() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // held back: a suffix that is a prefix of some stop string
  bool stopped_ = false;
  int32_t matched_ = -1;
};

}  // namespace cc
