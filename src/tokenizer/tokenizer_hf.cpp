// TokenizerSpec <-> Hugging Face tokenizer.json / tokenizer_config.json.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/error.h"
#include "base/mapped_file.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_io.h"
#include "tokenizer/unicode.h"

namespace cc {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// Ids may leave a few holes (filled with "[PAD<id>]"), but not arbitrarily many.
constexpr int64_t kMaxHoles = 1024;

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const json* non_null_member(const json& obj, const char* key) {
  const json* v = member(obj, key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

std::string type_of(const json& obj) {
  const json* t = member(obj, "type");
  return t != nullptr && t->is_string() ? t->get<std::string>() : std::string();
}

bool bool_member(const json& obj, const char* key, bool def) {
  const json* v = member(obj, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : def;
}

json parse_json(std::string_view text, const std::string& name, const char* file) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail(name, ": ", file, " is not valid JSON: ", e.what());
  }
}

std::string pad_name(int64_t id) {
  return cat("[PAD", id, "]");
}

// What the pre-tokenizer and normalizer say about the tokenizer family.
struct Pipeline {
  std::vector<std::string> steps;  // pretokenizer.h step keys, in order
  bool byte_level = false;         // a ByteLevel pre-tokenizer is present
  bool metaspace = false;          // Metaspace pre-tokenizer or Replace(" " -> "▁") normalizer
  bool prepend_space = false;      // Prepend("▁") normalizer or Metaspace prepend
};

void walk_pre_tokenizer(const json& pt, Pipeline& p, const std::string& name, int depth) {
  if (pt.is_null()) return;
  if (depth > 16) fail(name, ": tokenizer.json: pre_tokenizer nesting is too deep");
  const std::string t = type_of(pt);
  if (t == "Sequence") {
    const json* list = member(pt, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      fail(name, ": tokenizer.json: Sequence pre_tokenizer without a \"pretokenizers\" array");
    }
    for (const json& sub : *list) walk_pre_tokenizer(sub, p, name, depth + 1);
  } else if (t == "ByteLevel") {
    if (bool_member(pt, "add_prefix_space", false)) {
      fail(name, ": tokenizer.json: ByteLevel add_prefix_space=true is not supported");
    }
    p.byte_level = true;
    if (bool_member(pt, "use_regex", true)) p.steps.push_back("bytelevel");
  } else if (t == "Split") {
    const json* pat = member(pt, "pattern");
    std::string regex;
    if (const json* r = pat != nullptr ? member(*pat, "Regex") : nullptr; r && r->is_string()) {
      regex = r->get<std::string>();
    } else if (const json* s = pat != nullptr ? member(*pat, "String") : nullptr; s && s->is_string()) {
      regex = "\\Q" + s->get<std::string>() + "\\E";
    } else {
      fail(name, ": tokenizer.json: Split pre_tokenizer without a Regex/String pattern");
    }
    const json* behavior = member(pt, "behavior");
    if (behavior == nullptr || !behavior->is_string() || behavior->get<std::string>() != "Isolated" ||
        bool_member(pt, "invert", false)) {
      fail(name,
           ": tokenizer.json: only Split pre-tokenizers with behavior Isolated and "
           "invert=false are supported");
    }
    p.steps.push_back("split:" + regex);
  } else if (t == "Digits") {
    p.steps.push_back(bool_member(pt, "individual_digits", false) ? "digits:individual" : "digits");
  } else if (t == "Punctuation") {
    const json* b = member(pt, "behavior");
    const bool contiguous = b != nullptr && b->is_string() && b->get<std::string>() == "Contiguous";
    p.steps.push_back(contiguous ? "punct:contiguous" : "punct");
  } else if (t == "Metaspace") {
    const json* repl = member(pt, "replacement");
    if (repl != nullptr && !(repl->is_string() && repl->get<std::string>() == tok::kSpmSpace)) {
      fail(name, ": tokenizer.json: Metaspace replacement must be \"\u2581\"");
    }
    p.metaspace = true;
    const json* scheme = member(pt, "prepend_scheme");
    if (scheme != nullptr && scheme->is_string()) {
      p.prepend_space = scheme->get<std::string>() != "never";
    } else {
      p.prepend_space = bool_member(pt, "add_prefix_space", true);
    }
  } else {
    fail(name, ": tokenizer.json: unsupported pre_tokenizer type '", t, "'");
  }
}

void walk_normalizer(const json& n, Pipeline& p, const std::string& name, int depth) {
  if (n.is_null()) return;
  if (depth > 16) fail(name, ": tokenizer.json: normalizer nesting is too deep");
  const std::string t = type_of(n);
  if (t == "Sequence") {
    const json* list = member(n, "normalizers");
    if (list == nullptr || !list->is_array()) {
      fail(name, ": tokenizer.json: Sequence normalizer without a \"normalizers\" array");
    }
    for (const json& sub : *list) walk_normalizer(sub, p, name, depth + 1);
  } else if (t == "Prepend") {
    const json* v = member(n, "prepend");
    if (v == nullptr || !v->is_string() || v->get<std::string>() != tok::kSpmSpace) {
      fail(name, ": tokenizer.json: only Prepend(\"\u2581\") normalizers are supported");
    }
    p.prepend_space = true;
  } else if (t == "Replace") {
    const json* pat = member(n, "pattern");
    const json* s = pat != nullptr ? member(*pat, "String") : nullptr;
    const json* c = member(n, "content");
    if (s == nullptr || !s->is_string() || s->get<std::string>() != " " || c == nullptr || !c->is_string() ||
        c->get<std::string>() != tok::kSpmSpace) {
      fail(name, ": tokenizer.json: only Replace(\" \" -> \"\u2581\") normalizers are supported");
    }
    p.metaspace = true;
  } else if (t == "NFC") {
    // Qwen2 ships an NFC normalizer; like llama.cpp, text is tokenized as given.
  } else {
    fail(name, ": tokenizer.json: unsupported normalizer type '", t, "'");
  }
}

// Finds TemplateProcessing (possibly inside a Sequence) and reports whether its "single"
// template starts / ends with a special token, and which.
struct TemplateInfo {
  bool found = false;
  std::string first_special, last_special;
};

void walk_post_processor(const json& pp, TemplateInfo& info, int depth) {
  if (pp.is_null() || depth > 16) return;
  const std::string t = type_of(pp);
  if (t == "Sequence") {
    const json* list = member(pp, "processors");
    if (list != nullptr && list->is_array()) {
      for (const json& sub : *list) walk_post_processor(sub, info, depth + 1);
    }
    return;
  }
  if (t != "TemplateProcessing") return;
  const json* single = member(pp, "single");
  if (single == nullptr || !single->is_array()) return;
  info.found = true;
  auto special_of = [](const json& item) -> std::string {
    const json* st = member(item, "SpecialToken");
    const json* id = st != nullptr ? member(*st, "id") : nullptr;
    return id != nullptr && id->is_string() ? id->get<std::string>() : std::string();
  };
  if (!single->empty()) {
    info.first_special = special_of(single->front());
    info.last_special = special_of(single->back());
    if (single->size() == 1) info.last_special.clear();
  }
}

// The token a tokenizer_config.json entry refers to: a string, {"content": ...}, or null.
// Returns -2 when the key is absent, -1 for null.
int32_t config_token(const json& cfg, const char* key, const std::unordered_map<std::string, int32_t>& ids,
                     const std::string& name) {
  const json* v = member(cfg, key);
  if (v == nullptr) return -2;
  if (v->is_null()) return -1;
  std::string content;
  if (v->is_string()) {
    content = v->get<std::string>();
  } else if (const json* c = member(*v, "content"); c != nullptr && c->is_string()) {
    content = c->get<std::string>();
  } else {
    fail(name, ": tokenizer_config.json: ", key, " is neither a string nor {\"content\": ...}");
  }
  auto it = ids.find(content);
  if (it == ids.end()) {
    fail(name, ": tokenizer_config.json: ", key, " '", content, "' is not in the vocabulary");
  }
  return it->second;
}

TokenizerSpec from_hf_impl(std::string_view tokenizer_json, std::string_view config_json,
                           const std::string& name) {
  const json t = parse_json(tokenizer_json, name, "tokenizer.json");
  if (!t.is_object()) fail(name, ": tokenizer.json: the top level is not a JSON object");
  const json* model = member(t, "model");
  if (model == nullptr || !model->is_object()) {
    fail(name, ": tokenizer.json: missing \"model\" object");
  }
  std::string mtype = type_of(*model);
  if (mtype.empty() && member(*model, "merges") != nullptr) mtype = "BPE";
  if (mtype != "BPE") {
    fail(name, ": tokenizer.json: unsupported model type '", mtype,
         "' (only BPE: byte-level or SentencePiece-style)");
  }
  const json* vocab = member(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    fail(name, ": tokenizer.json: model.vocab is missing or not an object");
  }
  const json* added = member(t, "added_tokens");
  if (added != nullptr && !added->is_null() && !added->is_array()) {
    fail(name, ": tokenizer.json: added_tokens is not an array");
  }
  const size_t n_added = added != nullptr && added->is_array() ? added->size() : 0;
  const int64_t limit = static_cast<int64_t>(vocab->size() + n_added) + kMaxHoles;

  // id -> piece from vocab, then added_tokens.
  std::map<int64_t, std::string> by_id;
  std::unordered_map<std::string, int32_t> ids;
  auto add_entry = [&](const std::string& piece, const json& idv, const char* where) {
    if (!idv.is_number_integer()) {
      fail(name, ": tokenizer.json: ", where, " entry '", piece, "' has a non-integer id");
    }
    const int64_t id = idv.get<int64_t>();
    if (id < 0 || id >= limit) {
      fail(name, ": tokenizer.json: ", where, " id ", id, " for '", piece, "' is out of range [0, ", limit,
           ")");
    }
    auto [it, inserted] = by_id.emplace(id, piece);
    if (!inserted && it->second != piece) {
      fail(name, ": tokenizer.json: duplicate id ", id, " for '", it->second, "' and '", piece, "'");
    }
    auto [jt, ins2] = ids.emplace(piece, static_cast<int32_t>(id));
    if (!ins2 && jt->second != id) {
      fail(name, ": tokenizer.json: piece '", piece, "' has two ids ", jt->second, " and ", id);
    }
  };
  for (auto it = vocab->begin(); it != vocab->end(); ++it) add_entry(it.key(), it.value(), "vocab");

  struct Added {
    int32_t id;
    bool special;
  };
  std::vector<Added> added_list;
  if (added != nullptr && added->is_array()) {
    for (const json& a : *added) {
      const json* id = member(a, "id");
      const json* content = member(a, "content");
      if (id == nullptr || content == nullptr || !content->is_string()) {
        fail(name, ": tokenizer.json: an added_tokens entry lacks \"id\" or \"content\"");
      }
      const std::string piece = content->get<std::string>();
      add_entry(piece, *id, "added_tokens");
      added_list.push_back({static_cast<int32_t>(id->get<int64_t>()), bool_member(a, "special", false)});
    }
  }
  if (by_id.empty()) fail(name, ": tokenizer.json: the vocabulary is empty");

  Pipeline pipe;
  if (const json* n = member(t, "normalizer")) walk_normalizer(*n, pipe, name, 0);
  if (const json* pt = member(t, "pre_tokenizer")) walk_pre_tokenizer(*pt, pipe, name, 0);

  std::string cfg_text(config_json);
  json cfg = json::object();
  if (cfg_text.find_first_not_of(" \t\r\n") != std::string::npos) {
    cfg = parse_json(config_json, name, "tokenizer_config.json");
    if (!cfg.is_object()) fail(name, ": tokenizer_config.json: the top level is not a JSON object");
  }

  TokenizerSpec s;
  const bool byte_fallback = bool_member(*model, "byte_fallback", false);
  if (pipe.metaspace) {
    s.kind = TokenizerKind::SPM;
    s.add_space_prefix = pipe.prepend_space;
  } else if (pipe.byte_level) {
    s.kind = TokenizerKind::BPE;
  } else {
    fail(name,
         ": tokenizer.json: unsupported pre-tokenizer: need ByteLevel (byte-level BPE) or "
         "Metaspace / Replace(\" \" -> \"\u2581\") (SentencePiece-style BPE)");
  }

  // Tokens and types.
  const int64_t n = by_id.rbegin()->first + 1;
  s.tokens.assign(static_cast<size_t>(n), std::string());
  s.types.assign(static_cast<size_t>(n), TokenType::Unused);
  for (const auto& [id, piece] : by_id) {
    s.tokens[static_cast<size_t>(id)] = piece;
    s.types[static_cast<size_t>(id)] = TokenType::Normal;
    if (s.kind == TokenizerKind::SPM && byte_fallback && tok::parse_byte_token(piece) >= 0) {
      s.types[static_cast<size_t>(id)] = TokenType::Byte;
    }
  }
  for (int64_t id = 0; id < n; ++id) {
    if (!by_id.count(id)) s.tokens[static_cast<size_t>(id)] = pad_name(id);
  }
  int32_t model_unk = -1;
  if (const json* u = non_null_member(*model, "unk_token")) {
    if (!u->is_string()) fail(name, ": tokenizer.json: model.unk_token is not a string");
    auto it = ids.find(u->get<std::string>());
    if (it == ids.end()) {
      fail(name, ": tokenizer.json: model.unk_token '", u->get<std::string>(), "' is not in the vocabulary");
    }
    model_unk = it->second;
  }
  for (const Added& a : added_list) {
    TokenType& ty = s.types[static_cast<size_t>(a.id)];
    if (a.special) {
      ty = TokenType::Control;
    } else if (s.tokens[static_cast<size_t>(a.id)] == pad_name(a.id)) {
      ty = TokenType::Unused;
    } else {
      ty = TokenType::UserDefined;
    }
  }
  if (model_unk >= 0) s.types[static_cast<size_t>(model_unk)] = TokenType::Unknown;
  // Types HF cannot express, as written by tokenizer_config_to_hf_json.
  for (auto [key, type] : {std::pair{"cacheclip_unused_token_ids", TokenType::Unused},
                           std::pair{"cacheclip_unknown_token_ids", TokenType::Unknown}}) {
    const json* list = member(cfg, key);
    if (list == nullptr || !list->is_array()) continue;
    for (const json& u : *list) {
      if (!u.is_number_integer() || u.get<int64_t>() < 0 || u.get<int64_t>() >= n) {
        fail(name, ": tokenizer_config.json: ", key, " holds an invalid id");
      }
      s.types[static_cast<size_t>(u.get<int64_t>())] = type;
    }
  }

  // Merges.
  const json* merges = member(*model, "merges");
  if (merges != nullptr && !merges->is_null() && !merges->is_array()) {
    fail(name, ": tokenizer.json: model.merges is not an array");
  }
  if (merges != nullptr && merges->is_array()) {
    s.merges.reserve(merges->size());
    size_t r = 0;
    for (const json& m : *merges) {
      std::string left, right;
      if (m.is_string()) {
        const std::string str = m.get<std::string>();
        const size_t sp = str.size() > 1 ? str.find(' ', 1) : std::string::npos;
        if (sp == std::string::npos)
          fail(name, ": tokenizer.json: merge ", r, " '", str, "' is not \"left right\"");
        left = str.substr(0, sp);
        right = str.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        left = m[0].get<std::string>();
        right = m[1].get<std::string>();
        if (left.empty() || left.find(' ') != std::string::npos || right.find(' ') != std::string::npos) {
          fail(name, ": tokenizer.json: merge ", r, " has a piece with a space or an empty piece");
        }
      } else {
        fail(name, ": tokenizer.json: merge ", r, " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      for (const std::string* p : {&left, &right}) {
        if (!ids.count(*p)) {
          fail(name, ": tokenizer.json: merge ", r, " refers to unknown piece '", *p, "'");
        }
      }
      if (!ids.count(left + right)) {
        fail(name, ": tokenizer.json: merge ", r, " yields '", left + right,
             "', which is not in the vocabulary");
      }
      s.merges.push_back(left + " " + right);
      ++r;
    }
  }

  // Pre-tokenizer name.
  std::string hint;
  if (const json* h = member(cfg, "cacheclip_pre_tokenizer"); h != nullptr && h->is_string()) {
    hint = h->get<std::string>();
  }
  if (s.kind == TokenizerKind::BPE) {
    std::vector<std::string> derived;
    for (const auto& step : pipe.steps) derived.push_back(tok::hf_step_regex(step));
    auto matches = [&](const tok::PreTokenizerDef& def) {
      if (derived == def.regexes) return true;
      std::vector<std::string> hf;
      for (const auto& step : def.hf_steps) hf.push_back(tok::hf_step_regex(step));
      return derived == hf;
    };
    const tok::PreTokenizerDef* hinted = hint.empty() ? nullptr : tok::find_pre_tokenizer(hint);
    if (hinted != nullptr && matches(*hinted)) {
      s.pre = hint;
    } else {
      s.pre.clear();
      for (const auto& def : tok::pre_tokenizers()) {
        if (matches(def)) {
          s.pre = def.names[0];
          break;
        }
      }
      if (s.pre.empty()) {
        std::string shown = derived.empty() ? std::string("(none)") : derived[0];
        fail(name, ": tokenizer.json: unsupported pre-tokenizer regexes (first: '", shown,
             "'); known: gpt-2, llama3, qwen2, starcoder/smollm, falcon, deepseek-*, ...");
      }
    }
  } else {
    s.pre = hint.empty() ? "default" : hint;
  }

  // SPM scores from merge ranks: the token made by merge r scores -r; the rest score below.
  if (s.kind == TokenizerKind::SPM) {
    const float floor = -static_cast<float>(s.merges.size());
    s.scores.assign(static_cast<size_t>(n), 0.0f);
    std::vector<char> set(static_cast<size_t>(n), 0);
    for (size_t r = 0; r < s.merges.size(); ++r) {
      const std::string& m = s.merges[r];
      const size_t sp = m.find(' ', 1);
      const int32_t id = ids.at(m.substr(0, sp) + m.substr(sp + 1));
      if (!set[static_cast<size_t>(id)]) {
        set[static_cast<size_t>(id)] = 1;
        s.scores[static_cast<size_t>(id)] = -static_cast<float>(r);
      }
    }
    for (int64_t id = 0; id < n; ++id) {
      if (!set[static_cast<size_t>(id)] && s.types[static_cast<size_t>(id)] == TokenType::Normal) {
        s.scores[static_cast<size_t>(id)] = floor - static_cast<float>(id);
      }
    }
  }

  // Special ids and flags.
  TemplateInfo tmpl;
  if (const json* pp = member(t, "post_processor")) walk_post_processor(*pp, tmpl, 0);
  auto lookup = [&](const std::string& piece) -> int32_t {
    auto it = ids.find(piece);
    return it == ids.end() ? -1 : it->second;
  };
  const bool spm = s.kind == TokenizerKind::SPM;
  int32_t v = config_token(cfg, "bos_token", ids, name);
  s.bos_id = v != -2                       ? v
             : !tmpl.first_special.empty() ? lookup(tmpl.first_special)
             : spm                         ? lookup("<s>")
                                           : -1;
  v = config_token(cfg, "eos_token", ids, name);
  s.eos_id = v != -2 ? v : spm ? lookup("</s>") : -1;
  v = config_token(cfg, "unk_token", ids, name);
  s.unk_id = v != -2 ? v : model_unk;
  v = config_token(cfg, "pad_token", ids, name);
  s.pad_id = v >= 0 ? v : -1;

  const json* ab = member(cfg, "add_bos_token");
  if (ab != nullptr && ab->is_boolean()) {
    s.add_bos = ab->get<bool>();
  } else if (tmpl.found) {
    s.add_bos = !tmpl.first_special.empty();
  } else if (spm) {
    s.add_bos = true;
  } else {
    const tok::PreTokenizerDef* def = tok::find_pre_tokenizer(s.pre);
    s.add_bos = def != nullptr && def->default_add_bos;
  }
  const json* ae = member(cfg, "add_eos_token");
  if (ae != nullptr && ae->is_boolean()) {
    s.add_eos = ae->get<bool>();
  } else {
    s.add_eos = tmpl.found && !tmpl.last_special.empty();
  }
  if (s.add_bos && s.bos_id < 0) s.add_bos = false;
  if (s.add_eos && s.eos_id < 0) s.add_eos = false;

  // Chat template.
  if (const json* ct = non_null_member(cfg, "chat_template")) {
    if (ct->is_string()) {
      s.chat_template = ct->get<std::string>();
    } else if (ct->is_array()) {
      const json* chosen = nullptr;
      for (const json& e : *ct) {
        const json* nm = member(e, "name");
        const json* tp = member(e, "template");
        if (tp == nullptr || !tp->is_string()) continue;
        if (chosen == nullptr) chosen = tp;
        if (nm != nullptr && nm->is_string() && nm->get<std::string>() == "default") {
          chosen = tp;
          break;
        }
      }
      if (chosen != nullptr) s.chat_template = chosen->get<std::string>();
    } else {
      fail(name, ": tokenizer_config.json: chat_template is neither a string nor a list");
    }
  }

  // End-of-turn ids.
  if (const json* eot = member(cfg, "cacheclip_eot_tokens"); eot != nullptr && eot->is_array()) {
    for (const json& e : *eot) {
      if (!e.is_string() || lookup(e.get<std::string>()) < 0) {
        fail(name, ": tokenizer_config.json: cacheclip_eot_tokens holds an unknown token");
      }
      s.eot_ids.push_back(lookup(e.get<std::string>()));
    }
  } else {
    for (const char* text :
         {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<EOT>", "<|endoftext|>"}) {
      const int32_t id = lookup(text);
      if (id >= 0 && id != s.eos_id) {
        s.eot_ids.push_back(id);
        break;
      }
    }
    const int32_t eom = lookup("<|eom_id|>");
    if (eom >= 0 && eom != s.eos_id) s.eot_ids.push_back(eom);
  }
  return s;
}

bool mergeable(TokenType t) {
  return t == TokenType::Normal || t == TokenType::UserDefined || t == TokenType::Undefined;
}

// Merges for an SPM vocabulary: every split of a mergeable token into two mergeable tokens,
// ordered by the merged token's score (best first), then its id, then the left piece's length.
std::vector<std::string> spm_merges_from_scores(const TokenizerSpec& s) {
  std::unordered_map<std::string_view, int32_t> ids;
  const auto type = [&](size_t i) { return s.types.empty() ? TokenType::Normal : s.types[i]; };
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    if (mergeable(type(i)) && !s.tokens[i].empty()) ids.emplace(s.tokens[i], static_cast<int32_t>(i));
  }
  struct Cand {
    float score;
    int32_t id;
    size_t split;
  };
  std::vector<Cand> cands;
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    const std::string& p = s.tokens[i];
    if (!mergeable(type(i)) || p.find(' ') != std::string::npos) continue;
    for (size_t k = tok::utf8_len(static_cast<uint8_t>(p[0])); k < p.size();
         k += tok::utf8_len(static_cast<uint8_t>(p[k]))) {
      const std::string_view left(p.data(), k), right(p.data() + k, p.size() - k);
      if (ids.count(left) && ids.count(right)) {
        cands.push_back({s.scores.empty() ? 0.0f : s.scores[i], static_cast<int32_t>(i), k});
      }
    }
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.id != b.id) return a.id < b.id;
    return a.split < b.split;
  });
  std::vector<std::string> out;
  out.reserve(cands.size());
  for (const Cand& c : cands) {
    const std::string& p = s.tokens[static_cast<size_t>(c.id)];
    out.push_back(p.substr(0, c.split) + " " + p.substr(c.split));
  }
  return out;
}

ojson hf_step_json(const std::string& step) {
  if (step == "bytelevel") {
    return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  }
  if (step == "digits" || step == "digits:individual") {
    return {{"type", "Digits"}, {"individual_digits", step == "digits:individual"}};
  }
  if (step == "punct" || step == "punct:contiguous") {
    return {{"type", "Punctuation"}, {"behavior", step == "punct" ? "Isolated" : "Contiguous"}};
  }
  return {{"type", "Split"},
          {"pattern", {{"Regex", tok::hf_step_regex(step)}}},
          {"behavior", "Isolated"},
          {"invert", false}};
}

std::string dump(const ojson& j, const char* what) {
  try {
    return j.dump(2);
  } catch (const ojson::exception& e) {
    fail("tokenizer: cannot write ", what, ": ", e.what());
  }
}

}  // namespace

TokenizerSpec tokenizer_from_hf_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                                     const std::string& name) {
  try {
    return from_hf_impl(tokenizer_json, tokenizer_config_json, name);
  } catch (const json::exception& e) {  // any access this code did not anticipate
    fail(name, ": malformed tokenizer JSON: ", e.what());
  } catch (const std::out_of_range& e) {
    fail(name, ": malformed tokenizer JSON: ", e.what());
  }
}

TokenizerSpec tokenizer_from_hf(const std::string& dir) {
  const std::string tj = read_text_file(dir + "/tokenizer.json");
  std::string cj;
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (FILE* f = std::fopen(cfg_path.c_str(), "rb")) {
    std::fclose(f);
    cj = read_text_file(cfg_path);
  }
  return tokenizer_from_hf_json(tj, cj, dir + "/tokenizer.json");
}

std::string tokenizer_to_hf_json(const TokenizerSpec& s) {
  const size_t n = s.tokens.size();
  const auto type = [&](size_t i) { return s.types.empty() ? TokenType::Normal : s.types[i]; };
  const bool spm = s.kind == TokenizerKind::SPM;

  ojson added = ojson::array();
  ojson vocab = ojson::object();
  // model.unk_token names the Unknown-type token (the reader types it Unknown); the unk id itself
  // travels in tokenizer_config.json.
  int32_t unk = s.unk_id >= 0 && static_cast<size_t>(s.unk_id) < n &&
                        type(static_cast<size_t>(s.unk_id)) == TokenType::Unknown
                    ? s.unk_id
                    : -1;
  bool has_bytes = false;
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = type(i);
    if (t == TokenType::Unknown && unk < 0) unk = static_cast<int32_t>(i);
    has_bytes = has_bytes || t == TokenType::Byte;
    if (t == TokenType::Control || t == TokenType::Unknown || t == TokenType::UserDefined ||
        t == TokenType::Unused) {
      added.push_back({{"id", i},
                       {"content", s.tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", t == TokenType::Control || t == TokenType::Unknown}});
    }
    if (t != TokenType::Unused && !s.tokens[i].empty()) vocab[s.tokens[i]] = i;
  }

  ojson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = std::move(added);
  if (spm) {
    ojson norms = ojson::array();
    if (s.add_space_prefix) norms.push_back({{"type", "Prepend"}, {"prepend", tok::kSpmSpace}});
    norms.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", tok::kSpmSpace}});
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", norms}};
    j["pre_tokenizer"] = nullptr;
  } else {
    const tok::PreTokenizerDef* def = tok::find_pre_tokenizer(s.pre);
    if (def == nullptr) fail("tokenizer: cannot write tokenizer.json: unknown pre-tokenizer '", s.pre, "'");
    j["normalizer"] = nullptr;
    if (def->hf_steps == std::vector<std::string>{"bytelevel"}) {
      j["pre_tokenizer"] = hf_step_json("bytelevel");
    } else {
      ojson steps = ojson::array();
      bool has_bytelevel = false;
      for (const auto& st : def->hf_steps) {
        steps.push_back(hf_step_json(st));
        has_bytelevel = has_bytelevel || st == "bytelevel";
      }
      if (!has_bytelevel) {
        steps.push_back({{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", true},
                         {"use_regex", false}});
      }
      j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    }
  }
  if (s.add_bos || s.add_eos) {
    ojson single = ojson::array();
    ojson special = ojson::object();
    auto add_special = [&](int32_t id) {
      if (id < 0 || static_cast<size_t>(id) >= n) return;
      const std::string& p = s.tokens[static_cast<size_t>(id)];
      single.push_back({{"SpecialToken", {{"id", p}, {"type_id", 0}}}});
      special[p] = {{"id", p}, {"ids", {id}}, {"tokens", {p}}};
    };
    if (s.add_bos) add_special(s.bos_id);
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (s.add_eos) add_special(s.eos_id);
    ojson pair = single;
    pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
    j["post_processor"] = {
        {"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", special}};
  } else {
    j["post_processor"] = nullptr;
  }
  if (spm) {
    ojson decs = ojson::array();
    decs.push_back({{"type", "Replace"}, {"pattern", {{"String", tok::kSpmSpace}}}, {"content", " "}});
    decs.push_back({{"type", "ByteFallback"}});
    decs.push_back({{"type", "Fuse"}});
    if (s.add_space_prefix) decs.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    j["decoder"] = {{"type", "Sequence"}, {"decoders", decs}};
  } else {
    j["decoder"] = {
        {"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  }
  const tok::PreTokenizerDef* def = spm ? nullptr : tok::find_pre_tokenizer(s.pre);
  ojson model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  if (unk >= 0 && static_cast<size_t>(unk) < n) {
    model["unk_token"] = s.tokens[static_cast<size_t>(unk)];
  } else {
    model["unk_token"] = nullptr;
  }
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = spm;
  model["byte_fallback"] = spm && has_bytes;
  model["ignore_merges"] = def != nullptr && def->ignore_merges;
  model["vocab"] = std::move(vocab);
  model["merges"] = spm && s.merges.empty() ? spm_merges_from_scores(s) : s.merges;
  j["model"] = std::move(model);
  return dump(j, "tokenizer.json");
}

std::string tokenizer_config_to_hf_json(const TokenizerSpec& s) {
  auto piece = [&](int32_t id) -> ojson {
    if (id < 0 || static_cast<size_t>(id) >= s.tokens.size()) return nullptr;
    return s.tokens[static_cast<size_t>(id)];
  };
  ojson j;
  j["add_bos_token"] = s.add_bos;
  j["add_eos_token"] = s.add_eos;
  j["bos_token"] = piece(s.bos_id);
  j["eos_token"] = piece(s.eos_id);
  j["unk_token"] = piece(s.unk_id);
  j["pad_token"] = piece(s.pad_id);
  j["clean_up_tokenization_spaces"] = false;
  j["tokenizer_class"] = s.kind == TokenizerKind::SPM ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast";
  if (!s.chat_template.empty()) j["chat_template"] = s.chat_template;
  j["cacheclip_pre_tokenizer"] = s.pre;
  ojson eot = ojson::array();
  for (int32_t id : s.eot_ids) eot.push_back(piece(id));
  j["cacheclip_eot_tokens"] = eot;
  ojson unused = ojson::array(), unknown = ojson::array();
  for (size_t i = 0; i < s.types.size(); ++i) {
    if (s.types[i] == TokenType::Unused) unused.push_back(i);
    if (s.types[i] == TokenType::Unknown) unknown.push_back(i);
  }
  j["cacheclip_unused_token_ids"] = unused;
  j["cacheclip_unknown_token_ids"] = unknown;
  return dump(j, "tokenizer_config.json");
}

}  // namespace cc
