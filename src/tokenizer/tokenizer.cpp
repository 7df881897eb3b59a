#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <queue>

#include "base/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace cc {
namespace {

// Slots for an open-addressing table of n entries: a power of two, at most half full.
size_t table_slots(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  return cap;
}

// The vocabulary's id lookup: open addressing over the ids, keyed by the pieces themselves (held
// once, in the spec): a 150k vocabulary takes 1 MiB here instead of a second copy of every
// string in hash-map nodes (~9 MiB).
class PieceIndex {
 public:
  void reserve(size_t n) { slots_.assign(table_slots(n), -1); }
  // The id of `piece` in `tokens`, or -1.
  int32_t find(std::string_view piece, const std::vector<std::string>& tokens) const {
    if (slots_.empty()) return -1;
    const size_t mask = slots_.size() - 1;
    for (size_t i = std::hash<std::string_view>{}(piece) & mask;; i = (i + 1) & mask) {
      const int32_t id = slots_[i];
      if (id < 0) return -1;
      if (tokens[static_cast<size_t>(id)] == piece) return id;
    }
  }
  // Adds id (whose piece is tokens[id]); returns the id already holding that piece, or -1.
  int32_t insert(int32_t id, const std::vector<std::string>& tokens) {
    const std::string& piece = tokens[static_cast<size_t>(id)];
    const size_t mask = slots_.size() - 1;
    for (size_t i = std::hash<std::string_view>{}(piece) & mask;; i = (i + 1) & mask) {
      if (slots_[i] < 0) {
        slots_[i] = id;
        return -1;
      }
      if (tokens[static_cast<size_t>(slots_[i])] == piece) return slots_[i];
    }
  }

 private:
  std::vector<int32_t> slots_;
};

// BPE merges: (left id, right id) -> (rank, result id), open addressing on the packed pair.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  void reserve(size_t n) {
    keys_.assign(table_slots(n), kEmpty);
    vals_.assign(keys_.size(), Merge{0, 0});
  }
  // Keeps the first merge given for a pair (the best rank).
  void insert(int32_t left, int32_t right, Merge m) {
    const uint64_t key = pack(left, right);
    const size_t mask = keys_.size() - 1;
    for (size_t i = slot(key);; i = (i + 1) & mask) {
      if (keys_[i] == key) return;
      if (keys_[i] == kEmpty) {
        keys_[i] = key;
        vals_[i] = m;
        return;
      }
    }
  }
  const Merge* find(int32_t left, int32_t right) const {
    if (keys_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    const size_t mask = keys_.size() - 1;
    for (size_t i = slot(key);; i = (i + 1) & mask) {
      if (keys_[i] == key) return &vals_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are < 2^31: no pair packs to this
  static uint64_t pack(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & (keys_.size() - 1); }
  std::vector<uint64_t> keys_;
  std::vector<Merge> vals_;
};

bool is_control_like(TokenType t) {
  return t == TokenType::Control || t == TokenType::Unknown;
}

// Token texts that llama.cpp treats as end of generation whatever the metadata says.
constexpr std::string_view kEogTexts[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                          "<|endoftext|>", "<|eom_id|>", "<EOT>"};

// A piece of the input: raw text, or a special token matched in it.
struct Fragment {
  std::string_view text;
  int32_t id = -1;  // >= 0: a matched special token
};

}  // namespace

struct Tokenizer::Impl {
  TokenizerSpec spec;  // as given, except merges: compiled into the merge table, not kept
  PieceIndex piece_to_id;
  std::string piece_bytes;           // decoded bytes of every token, concatenated
  std::vector<uint32_t> piece_off;   // id -> its bytes: [piece_off[id], piece_off[id + 1])
  std::vector<char> eog;                                         // id -> end of generation
  std::array<std::vector<int32_t>, 256> specials_by_first_byte;  // longest first
  std::array<int32_t, 256> byte_ids{};  // BPE: id of the byte's code point; SPM: <0xXX>

  // BPE
  std::unique_ptr<tok::RegexSplitter> splitter;
  bool ignore_merges = false;
  MergeTable merges;

  // SPM
  std::vector<char> spm_mergeable;  // id -> may be produced by merging (Normal/UserDefined/...)

  int32_t find(std::string_view piece) const { return piece_to_id.find(piece, spec.tokens); }
  std::string_view piece(int32_t id) const {
    const auto i = static_cast<size_t>(id);
    return std::string_view(piece_bytes).substr(piece_off[i], piece_off[i + 1] - piece_off[i]);
  }
  TokenType type(int32_t id) const {
    return spec.types.empty() ? TokenType::Normal : spec.types[static_cast<size_t>(id)];
  }
  float score(int32_t id) const { return spec.scores.empty() ? 0.0f : spec.scores[static_cast<size_t>(id)]; }

  void validate_and_build();
  void split_special(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  int32_t spm_lookup(std::string_view text) const {
    const int32_t id = find(text);
    if (id < 0 || !spm_mergeable[static_cast<size_t>(id)]) return -1;
    return id;
  }
};

void Tokenizer::Impl::validate_and_build() {
  const size_t n = spec.tokens.size();
  if (n == 0) fail("tokenizer: the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) fail("tokenizer: vocabulary of ", n, " tokens is too large");
  if (!spec.types.empty() && spec.types.size() != n) {
    fail("tokenizer: ", spec.types.size(), " token types for ", n, " tokens");
  }
  if (!spec.scores.empty() && spec.scores.size() != n) {
    fail("tokenizer: ", spec.scores.size(), " scores for ", n, " tokens");
  }
  for (size_t i = 0; i < spec.types.size(); ++i) {
    const auto t = static_cast<int32_t>(spec.types[i]);
    if (t < 0 || t > static_cast<int32_t>(TokenType::Byte)) {
      fail("tokenizer: token ", i, " has invalid type ", t);
    }
  }
  for (size_t i = 0; i < spec.scores.size(); ++i) {
    if (std::isnan(spec.scores[i])) fail("tokenizer: token ", i, " has a NaN score");
  }
  const auto n32 = static_cast<int32_t>(n);
  auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= n32) fail("tokenizer: ", what, " id ", id, " out of range [0, ", n32, ")");
  };
  check_id(spec.bos_id, "bos");
  check_id(spec.eos_id, "eos");
  check_id(spec.unk_id, "unk");
  check_id(spec.pad_id, "pad");
  for (int32_t id : spec.eot_ids) {
    if (id < 0) fail("tokenizer: eot id ", id, " out of range [0, ", n32, ")");
    check_id(id, "eot");
  }
  if (spec.add_bos && spec.bos_id < 0) fail("tokenizer: add_bos is set but there is no bos id");
  if (spec.add_eos && spec.eos_id < 0) fail("tokenizer: add_eos is set but there is no eos id");

  piece_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = spec.tokens[i];
    if (p.empty()) continue;  // unreachable placeholder
    const int32_t prev = piece_to_id.insert(static_cast<int32_t>(i), spec.tokens);
    if (prev >= 0) fail("tokenizer: duplicate token '", p, "' at ids ", prev, " and ", i);
  }

  // Decoded pieces.
  piece_off.assign(n + 1, 0);
  const bool spm = spec.kind == TokenizerKind::SPM;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = spec.tokens[i];
    const TokenType t = type(static_cast<int32_t>(i));
    out.clear();
    switch (t) {
      case TokenType::Control:
      case TokenType::Unknown:
      case TokenType::UserDefined:
        out = p;
        break;
      case TokenType::Unused:
        break;
      case TokenType::Byte: {
        const int b = tok::parse_byte_token(p);
        if (b >= 0) {
          out.assign(1, static_cast<char>(b));
          break;
        }
        [[fallthrough]];
      }
      case TokenType::Normal:
      case TokenType::Undefined:
        if (spm) {
          out = tok::replace_all(p, tok::kSpmSpace, " ");
        } else {
          tok::byte_level_to_bytes(p, out);
        }
        break;
    }
    piece_bytes += out;
    if (piece_bytes.size() > UINT32_MAX) fail("tokenizer: the vocabulary's pieces exceed 4 GiB");
    piece_off[i + 1] = static_cast<uint32_t>(piece_bytes.size());
  }
  piece_bytes.shrink_to_fit();

  // Special tokens matched by parse_special, longest first per first byte.
  std::vector<int32_t> specials;
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = type(static_cast<int32_t>(i));
    if ((is_control_like(t) || t == TokenType::UserDefined) && !spec.tokens[i].empty()) {
      specials.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(specials.begin(), specials.end(), [&](int32_t a, int32_t b) {
    return spec.tokens[static_cast<size_t>(a)].size() > spec.tokens[static_cast<size_t>(b)].size();
  });
  for (int32_t id : specials) {
    const auto first = static_cast<uint8_t>(spec.tokens[static_cast<size_t>(id)][0]);
    specials_by_first_byte[first].push_back(id);
  }

  // End-of-generation set.
  eog.assign(n, 0);
  if (spec.eos_id >= 0) eog[static_cast<size_t>(spec.eos_id)] = 1;
  for (int32_t id : spec.eot_ids) eog[static_cast<size_t>(id)] = 1;
  for (std::string_view text : kEogTexts) {
    if (const int32_t id = find(text); id >= 0) eog[static_cast<size_t>(id)] = 1;
  }

  byte_ids.fill(-1);
  if (spm) {
    spm_mergeable.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      const TokenType t = type(static_cast<int32_t>(i));
      spm_mergeable[i] = t == TokenType::Normal || t == TokenType::UserDefined || t == TokenType::Undefined;
    }
    for (int b = 0; b < 256; ++b) {
      static const char* hex = "0123456789ABCDEF";
      const char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
      byte_ids[b] = find(std::string_view(name, 6));
    }
    return;
  }

  // Byte-level BPE.
  const tok::PreTokenizerDef* def = tok::find_pre_tokenizer(spec.pre);
  if (def == nullptr) fail("tokenizer: unknown pre-tokenizer '", spec.pre, "'");
  splitter = std::make_unique<tok::RegexSplitter>(def->regexes);
  ignore_merges = def->ignore_merges;
  const auto& bu = tok::byte_unicode();
  for (int b = 0; b < 256; ++b) byte_ids[b] = find(bu.byte_to_utf8[b]);
  merges.reserve(spec.merges.size());
  std::string joined;
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    const std::string& m = spec.merges[r];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos) fail("tokenizer: merge ", r, " '", m, "' is not \"left right\"");
    const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    const int32_t l = find(left), rr = find(right);
    if (l < 0 || rr < 0) {
      fail("tokenizer: merge ", r, " '", m, "' refers to '", l < 0 ? left : right,
           "', which is not in the vocabulary");
    }
    joined.assign(left);
    joined += right;
    const int32_t res = find(joined);
    if (res < 0) fail("tokenizer: merge ", r, " '", m, "' yields '", joined, "', which is not in the vocabulary");
    merges.insert(l, rr, {static_cast<int32_t>(r), res});  // first (best) rank wins
  }
  // Compiled into the table: the strings are not needed again (4-5 MiB for 150k merges).
  std::vector<std::string>().swap(spec.merges);
}

void Tokenizer::Impl::split_special(std::string_view text, bool parse_special,
                                    std::vector<Fragment>& out) const {
  if (text.empty()) return;
  if (!parse_special) {
    out.push_back({text, -1});
    return;
  }
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const auto& cands = specials_by_first_byte[static_cast<uint8_t>(text[i])];
    int32_t hit = -1;
    for (int32_t id : cands) {
      const std::string& p = spec.tokens[static_cast<size_t>(id)];
      if (text.compare(i, p.size(), p) == 0) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({text.substr(start, i - start), -1});
    out.push_back({{}, hit});
    i += spec.tokens[static_cast<size_t>(hit)].size();
    start = i;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
}

void Tokenizer::Impl::encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    if (const int32_t id = find(tok::bytes_to_byte_level(word)); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, left, lid, rid;
    bool operator<(const Cand& o) const {  // priority_queue pops the "largest": lowest rank, leftmost
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  const auto n = static_cast<int32_t>(word.size());
  std::vector<Sym> syms(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    syms[static_cast<size_t>(i)] = {byte_ids[static_cast<uint8_t>(word[static_cast<size_t>(i)])], i - 1,
                                    i + 1 < n ? i + 1 : -1};
  }
  std::priority_queue<Cand> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const int32_t lid = syms[static_cast<size_t>(l)].id, rid = syms[static_cast<size_t>(r)].id;
    if (lid < 0 || rid < 0) return;
    if (const MergeTable::Merge* m = merges.find(lid, rid)) queue.push({m->rank, l, lid, rid});
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_pair(i, i + 1);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Sym& left = syms[static_cast<size_t>(c.left)];
    if (left.id != c.lid || left.next < 0) continue;
    Sym& right = syms[static_cast<size_t>(left.next)];
    if (right.id != c.rid) continue;
    left.id = merges.find(c.lid, c.rid)->result;
    right.id = -2;  // dead
    left.next = right.next;
    if (left.next >= 0) syms[static_cast<size_t>(left.next)].prev = c.left;
    try_pair(left.prev, c.left);
    try_pair(c.left, left.next);
  }
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    const int32_t id = syms[static_cast<size_t>(i)].id;
    if (id >= 0) {
      out.push_back(id);
    } else if (spec.unk_id >= 0) {  // a byte whose code point is missing from the vocabulary
      out.push_back(spec.unk_id);
    }
  }
}

void Tokenizer::Impl::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string_view> words;
  splitter->split(text, words);
  for (std::string_view w : words) encode_bpe_word(w, out);
}

void Tokenizer::Impl::encode_spm(std::string_view escaped, std::vector<int32_t>& out) const {
  struct Sym {
    size_t start, len;
    int32_t prev, next;
  };
  struct Cand {
    float score;
    int32_t left, right;
    size_t size;
    bool operator<(const Cand& o) const {  // pops highest score, then leftmost
      return score != o.score ? score < o.score : left > o.left;
    }
  };
  std::vector<Sym> syms;
  for (size_t off = 0; off < escaped.size();) {
    // Invalid UTF-8 bytes stand alone (llama.cpp would glue a stray lead byte to the next
    // character, losing a following "▁" to byte fallback).
    const size_t len = tok::utf8_char_len(escaped, off);
    const auto idx = static_cast<int32_t>(syms.size());
    syms.push_back({off, len, idx - 1, off + len < escaped.size() ? idx + 1 : -1});
    off += len;
  }
  std::priority_queue<Cand> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Sym& a = syms[static_cast<size_t>(l)];
    const Sym& b = syms[static_cast<size_t>(r)];
    const int32_t id = spm_lookup(escaped.substr(a.start, a.len + b.len));
    if (id >= 0) queue.push({score(id), l, r, a.len + b.len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) try_pair(i - 1, i);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Sym& left = syms[static_cast<size_t>(c.left)];
    Sym& right = syms[static_cast<size_t>(c.right)];
    if (left.len == 0 || right.len == 0 || left.len + right.len != c.size) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) syms[static_cast<size_t>(right.next)].prev = c.left;
    try_pair(left.prev, c.left);
    try_pair(c.left, left.next);
  }
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    const Sym& s = syms[static_cast<size_t>(i)];
    const std::string_view text = escaped.substr(s.start, s.len);
    const int32_t id = spm_lookup(text);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    bool all_bytes = true;
    for (char ch : text) all_bytes = all_bytes && byte_ids[static_cast<uint8_t>(ch)] >= 0;
    if (all_bytes) {
      for (char ch : text) out.push_back(byte_ids[static_cast<uint8_t>(ch)]);
    } else if (spec.unk_id >= 0) {
      out.push_back(spec.unk_id);
    }
  }
}

Tokenizer::Tokenizer(TokenizerSpec spec) : impl_(std::make_unique<Impl>()) {
  impl_->spec = std::move(spec);
  impl_->validate_and_build();
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && m.spec.add_bos) out.push_back(m.spec.bos_id);
  std::vector<Fragment> frags;
  m.split_special(text, parse_special, frags);
  if (m.spec.kind == TokenizerKind::SPM) {
    bool prev_special = true;  // the start of the text counts as "after a special token"
    std::string buf;
    for (const Fragment& f : frags) {
      if (f.id >= 0) {
        out.push_back(f.id);
        prev_special = true;
        continue;
      }
      buf.clear();
      if (m.spec.add_space_prefix && prev_special) buf.push_back(' ');
      buf.append(f.text);
      m.encode_spm(tok::replace_all(buf, " ", tok::kSpmSpace), out);
      prev_special = false;
    }
  } else {
    for (const Fragment& f : frags) {
      if (f.id >= 0) {
        out.push_back(f.id);
      } else {
        m.encode_bpe(f.text, out);
      }
    }
  }
  if (add_special && m.spec.add_eos) out.push_back(m.spec.eos_id);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::string out;
  bool strip = m.spec.kind == TokenizerKind::SPM && m.spec.add_space_prefix;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab()) {
      fail("tokenizer: decode: token id ", id, " out of range [0, ", n_vocab(), ")");
    }
    const std::string_view piece = m.piece(id);
    if (is_control_like(m.type(id))) {
      if (!skip_special) out += piece;
      continue;
    }
    if (strip && !piece.empty()) {
      strip = false;
      out += piece.substr(piece[0] == ' ' ? 1 : 0);
      continue;
    }
    out += piece;
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) {
    fail("tokenizer: token id ", id, " out of range [0, ", n_vocab(), ")");
  }
  return std::string(impl_->piece(id));
}

int32_t Tokenizer::n_vocab() const {
  return static_cast<int32_t>(impl_->spec.tokens.size());
}

const TokenizerSpec& Tokenizer::spec() const {
  return impl_->spec;
}

bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && id < n_vocab() && impl_->eog[static_cast<size_t>(id)] != 0;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view piece) const {
  const int32_t id = impl_->find(piece);
  if (id < 0) return std::nullopt;
  return id;
}

const char* tokenizer_kind_name(TokenizerKind kind) {
  return kind == TokenizerKind::BPE ? "BPE" : "SPM";
}

}  // namespace cc
