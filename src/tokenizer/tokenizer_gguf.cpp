// TokenizerSpec <-> GGUF tokenizer.ggml.* metadata.
#include <cmath>

#include "base/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_io.h"

namespace cc {
namespace {

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTypes = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kEot = "tokenizer.ggml.eot_token_id";
constexpr const char* kEom = "tokenizer.ggml.eom_token_id";
constexpr const char* kEotList = "cacheclip.tokenizer.eot_token_ids";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpace = "tokenizer.ggml.add_space_prefix";
constexpr const char* kChatTemplate = "tokenizer.chat_template";

struct Defaults {
  int32_t bos, eos, unk;
  bool add_bos, add_space_prefix;
};

Defaults defaults_for(TokenizerKind kind, const std::string& pre) {
  if (kind == TokenizerKind::SPM) return {1, 2, 0, true, true};
  const tok::PreTokenizerDef* def = tok::find_pre_tokenizer(pre);
  return {11, 11, -1, def != nullptr && def->default_add_bos, false};
}

// An id key: absent -> def; present but outside [0, n) -> -1 (llama.cpp ignores such ids).
int32_t read_id(const Metadata& meta, const char* key, int32_t def, size_t n) {
  if (!meta.has(key)) return def;
  const int64_t v = meta.get_int(key);
  if (v < 0 || static_cast<uint64_t>(v) >= n) return -1;
  return static_cast<int32_t>(v);
}

}  // namespace

TokenizerSpec tokenizer_from_gguf(const Metadata& meta) {
  TokenizerSpec s;
  const std::string model = meta.get_str(kModel);
  if (model == "gpt2") {
    s.kind = TokenizerKind::BPE;
  } else if (model == "llama") {
    s.kind = TokenizerKind::SPM;
  } else {
    fail(meta.source, ": unsupported tokenizer model '", model,
         "' (supported: 'gpt2' byte-level BPE, 'llama' SentencePiece BPE)");
  }
  s.pre = meta.get_str(kPre, "default");
  if (!meta.has(kTokens)) fail(meta.source, ": missing metadata key '", kTokens, "'");
  s.tokens = meta.get_strs(kTokens);
  const size_t n = s.tokens.size();
  if (n == 0) fail(meta.source, ": ", kTokens, " is empty");
  s.scores = meta.get_f32s(kScores);
  if (!s.scores.empty() && s.scores.size() != n) {
    fail(meta.source, ": ", kScores, " has ", s.scores.size(), " entries for ", n, " tokens");
  }
  for (size_t i = 0; i < s.scores.size(); ++i) {
    if (std::isnan(s.scores[i])) fail(meta.source, ": ", kScores, "[", i, "] is NaN");
  }
  const std::vector<int32_t> types = meta.get_i32s(kTypes);
  if (!types.empty() && types.size() != n) {
    fail(meta.source, ": ", kTypes, " has ", types.size(), " entries for ", n, " tokens");
  }
  s.types.reserve(types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] < 0 || types[i] > static_cast<int32_t>(TokenType::Byte)) {
      fail(meta.source, ": ", kTypes, "[", i, "] = ", types[i], " is not a token type (0..6)");
    }
    s.types.push_back(static_cast<TokenType>(types[i]));
  }
  s.merges = meta.get_strs(kMerges);
  if (s.kind == TokenizerKind::BPE && !meta.has(kMerges)) {
    fail(meta.source, ": missing metadata key '", kMerges, "' (required for a gpt2 tokenizer)");
  }

  const Defaults d = defaults_for(s.kind, s.pre);
  s.bos_id = read_id(meta, kBos, d.bos < static_cast<int32_t>(n) ? d.bos : -1, n);
  s.eos_id = read_id(meta, kEos, d.eos < static_cast<int32_t>(n) ? d.eos : -1, n);
  s.unk_id = read_id(meta, kUnk, d.unk < static_cast<int32_t>(n) ? d.unk : -1, n);
  s.pad_id = read_id(meta, kPad, -1, n);
  if (meta.has(kEotList)) {
    for (int32_t id : meta.get_i32s(kEotList)) {
      if (id < 0 || static_cast<size_t>(id) >= n) {
        fail(meta.source, ": ", kEotList, " holds id ", id, " outside [0, ", n, ")");
      }
      s.eot_ids.push_back(id);
    }
  } else {
    for (const char* key : {kEot, kEom}) {
      const int32_t id = read_id(meta, key, -1, n);
      if (id >= 0) s.eot_ids.push_back(id);
    }
  }
  s.add_bos = meta.get_bool(kAddBos, d.add_bos);
  s.add_eos = meta.get_bool(kAddEos, false);
  s.add_space_prefix = meta.get_bool(kAddSpace, d.add_space_prefix);
  s.chat_template = meta.get_str(kChatTemplate, "");
  return s;
}

void tokenizer_to_gguf(const TokenizerSpec& spec, Metadata& meta) {
  meta.set(kModel, MetaValue::of_str(spec.kind == TokenizerKind::BPE ? "gpt2" : "llama"));
  meta.set(kPre, MetaValue::of_str(spec.pre));
  meta.set(kTokens, MetaValue::of_strs(spec.tokens));
  if (!spec.scores.empty()) meta.set(kScores, MetaValue::of_f32s(spec.scores));
  if (!spec.types.empty()) {
    std::vector<int32_t> types;
    types.reserve(spec.types.size());
    for (TokenType t : spec.types) types.push_back(static_cast<int32_t>(t));
    meta.set(kTypes, MetaValue::of_i32s(types));
  }
  if (!spec.merges.empty() || spec.kind == TokenizerKind::BPE) {
    meta.set(kMerges, MetaValue::of_strs(spec.merges));
  }
  const Defaults d = defaults_for(spec.kind, spec.pre);
  auto put_id = [&](const char* key, int32_t id, int32_t def) {
    if (id >= 0) {
      meta.set(key, MetaValue::of_u32(static_cast<uint32_t>(id)));
    } else if (def >= 0 && def < static_cast<int32_t>(spec.tokens.size())) {
      meta.set(key, MetaValue::of_u32(0xFFFFFFFFu));  // explicit "none"
    }
  };
  put_id(kBos, spec.bos_id, d.bos);
  put_id(kEos, spec.eos_id, d.eos);
  put_id(kUnk, spec.unk_id, d.unk);
  put_id(kPad, spec.pad_id, -1);
  if (!spec.eot_ids.empty()) meta.set(kEot, MetaValue::of_u32(static_cast<uint32_t>(spec.eot_ids[0])));
  if (spec.eot_ids.size() > 1) meta.set(kEom, MetaValue::of_u32(static_cast<uint32_t>(spec.eot_ids[1])));
  if (spec.eot_ids.size() > 2) meta.set(kEotList, MetaValue::of_i32s(spec.eot_ids));
  meta.set(kAddBos, MetaValue::of_bool(spec.add_bos));
  meta.set(kAddEos, MetaValue::of_bool(spec.add_eos));
  meta.set(kAddSpace, MetaValue::of_bool(spec.add_space_prefix));
  if (!spec.chat_template.empty()) meta.set(kChatTemplate, MetaValue::of_str(spec.chat_template));
}

}  // namespace cc
