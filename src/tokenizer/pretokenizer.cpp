#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace cc::tok {
namespace {

// GPT-2's word regex (HF ByteLevel use_regex=true; llama.cpp drops the redundant final "|\s+").
const char* const kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
// Llama-3 / Qwen2 as shipped in tokenizer.json, and with the case-insensitive group spelled out
// as llama.cpp does (no Unicode case folding of 's'/'k' to U+017F/U+212A).
const char* const kLlama3Hf =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kQwen2Hf =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kPunctContiguous = R"re([\p{P}\$\+<=>\^~\|`]+)re";
const char* const kPunct = R"re([\p{P}\$\+<=>\^~\|`])re";
const char* const kBloom = R"re( ?[^(\s|.,!?…。，、।۔،)]+)re";
const char* const kTekken =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kGpt4oHf =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// DeepSeek LLM's letter class (code points written out: several of its characters have
// singleton canonical decompositions, so literal text would not survive normalising editors).
const char* const kDeepseekLatin =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF})re"
    R"re(\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F})re"
    R"re(\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481})re"
    R"re(\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD})re"
    R"re(\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77})re"
    R"re(\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45})re"
    R"re(\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})re"
    R"re(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})re"
    R"re(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})re"
    R"re(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124})re"
    R"re(\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})re"
    R"re(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})re"
    R"re(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})re"
    R"re(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})re"
    R"re(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})re"
    R"re(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})re"
    R"re(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re";
const char* const kDeepseekPunct = R"re(\s?[!-/:-~！-／：-～‘-‟　-。]+)re";
const char* const kCjk = R"re([一-龥ࠀ-一가-퟿]+)re";

std::vector<std::string> splits(const std::vector<std::string>& regexes) {
  std::vector<std::string> steps;
  for (const auto& r : regexes) steps.push_back("split:" + r);
  return steps;
}

std::vector<PreTokenizerDef> make_defs() {
  std::vector<PreTokenizerDef> d;
  // GPT-2 family. "default" is GPT-2's regex here (llama.cpp's legacy "default" list, used for
  // GGUFs that predate tokenizer.ggml.pre, is not reproduced).
  d.push_back({{"gpt-2", "default", "gpt2", "phi-2", "mpt", "olmo", "jais", "roberta-bpe", "gigachat",
                "trillion", "granite-docling"},
               {kGpt2},
               {"bytelevel"},
               false,
               false});
  d.push_back({{"llama3", "llama-bpe", "llama-v3", "falcon3"},
               {kLlama3},
               {std::string("split:") + kLlama3Hf},
               true,
               true});
  d.push_back(
      {{"dbrx", "smaug-bpe", "chatglm-bpe"}, {kLlama3}, {std::string("split:") + kLlama3Hf}, false, false});
  d.push_back({{"qwen2", "stablelm2", "megrez", "hunyuan", "grok-2"},
               {kQwen2},
               {std::string("split:") + kQwen2Hf},
               false,
               false});
  d.push_back({{"falcon"},
               {kPunctContiguous, kGpt2, "[0-9][0-9][0-9]"},
               {"punct:contiguous", "bytelevel", "digits", "split:[0-9][0-9][0-9]"},
               false,
               false});
  d.push_back({{"starcoder", "smollm", "refact", "command-r", "codeshell", "exaone", "minerva-7b"},
               {R"re(\p{N})re", kGpt2},
               {"digits:individual", "bytelevel"},
               false,
               false});
  {
    std::vector<std::string> r = {"[\r\n]",      kDeepseekLatin, kDeepseekPunct,
                                  R"re(\s+$)re", kCjk,           R"re(\p{N}+)re"};
    d.push_back({{"deepseek-llm"}, r, splits(r), false, false});
  }
  {
    std::vector<std::string> r = {"[\r\n]", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjk, R"re(\p{N})re"};
    d.push_back({{"deepseek-coder"}, r, splits(r), false, false});
  }
  {
    std::vector<std::string> r = {
        R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re",
        R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
    d.push_back({{"deepseek-v3"}, r, splits(r), false, false});
  }
  d.push_back({{"poro-chat", "bloom", "gpt3-finnish"}, {kBloom}, splits({kBloom}), false, false});
  {
    std::vector<std::string> r = {kBloom, R"re(\p{N})re"};
    d.push_back({{"viking"}, r, splits(r), false, false});
  }
  d.push_back({{"tekken"}, {kTekken}, splits({kTekken}), true, true});
  d.push_back({{"gpt-4o", "minimax-m2"}, {kGpt4o}, {std::string("split:") + kGpt4oHf}, false, false});
  return d;
}

}  // namespace

const std::vector<PreTokenizerDef>& pre_tokenizers() {
  static const std::vector<PreTokenizerDef> defs = make_defs();
  return defs;
}

const PreTokenizerDef* find_pre_tokenizer(std::string_view name) {
  for (const auto& def : pre_tokenizers()) {
    for (const auto& n : def.names) {
      if (n == name) return &def;
    }
  }
  return nullptr;
}

std::string hf_step_regex(std::string_view step) {
  if (step == "bytelevel") return kGpt2;
  if (step == "digits") return R"re(\p{N}+)re";
  if (step == "digits:individual") return R"re(\p{N})re";
  if (step == "punct") return kPunct;
  if (step == "punct:contiguous") return kPunctContiguous;
  if (step.substr(0, 6) == "split:") return std::string(step.substr(6));
  return "";
}

struct RegexSplitter::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// Per-thread match state: PCRE2 match data and a JIT stack larger than the 32 KiB default so
// long runs of letters or spaces cannot exhaust it.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    if (context != nullptr && jit_stack != nullptr) {
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
  }
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return cat("PCRE2 error ", code);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

RegexSplitter::RegexSplitter(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto code = std::make_unique<Code>();
    code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                               PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
    if (code->code == nullptr) {
      fail("tokenizer: pre-tokenizer regex '", p, "' does not compile at offset ", err_off, ": ",
           pcre2_message(err));
    }
    // JIT is an optimisation only: without it (or if it fails) pcre2_match interprets.
    (void)pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);
    codes_.push_back(std::move(code));
  }
}

RegexSplitter::~RegexSplitter() = default;

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  thread_local MatchState state;
  if (state.data == nullptr) fail("tokenizer: out of memory creating PCRE2 match data");
  std::vector<std::string_view> cur{text}, next;
  if (text.empty()) return;
  for (const auto& code : codes_) {
    next.clear();
    for (std::string_view frag : cur) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(frag.data());
      size_t pos = 0, last = 0;
      while (pos <= frag.size()) {
        const int rc = pcre2_match(code->code, subject, frag.size(), pos, 0, state.data, state.context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) fail("tokenizer: pre-tokenizer regex match failed: ", pcre2_message(rc));
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
        const size_t s = ov[0], e = ov[1];
        if (e > s) {
          if (s > last) next.push_back(frag.substr(last, s - last));
          next.push_back(frag.substr(s, e - s));
          last = e;
          pos = e;
        } else {  // empty match: step over one character
          if (e >= frag.size()) break;
          pos = e + utf8_len(static_cast<uint8_t>(frag[e]));
        }
      }
      if (last < frag.size()) next.push_back(frag.substr(last));
    }
    cur.swap(next);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace cc::tok
