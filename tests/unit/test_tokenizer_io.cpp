// Tokenizer IO on synthetic data: GGUF metadata and HF JSON round trips, HF tokenizer.json
// variants (Qwen2-style byte-level, Llama-2-style SentencePiece), llama2.c tokenizer.bin, and
// every kind of malformed input, each checked for its error message.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_io.h"
#include "tokenizer/unicode.h"

namespace cc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

void expect_same_spec(const TokenizerSpec& a, const TokenizerSpec& b, bool compare_scores) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.pre, b.pre);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.types, b.types);
  if (compare_scores) {
    EXPECT_EQ(a.scores, b.scores);
  }
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
  EXPECT_EQ(a.unk_id, b.unk_id);
  EXPECT_EQ(a.pad_id, b.pad_id);
  EXPECT_EQ(a.eot_ids, b.eot_ids);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_eos, b.add_eos);
  EXPECT_EQ(a.add_space_prefix, b.add_space_prefix);
  EXPECT_EQ(a.chat_template, b.chat_template);
}

TokenizerSpec qwen_like_bpe() {
  TokenizerSpec s;
  s.kind = TokenizerKind::BPE;
  s.pre = "qwen2";
  for (int b = 0; b < 256; ++b) {
    s.tokens.push_back(tok::bytes_to_byte_level(std::string(1, static_cast<char>(b))));
  }
  for (const char* p : {"he", "ll", "hell", "hello", "Ġhello"}) s.tokens.push_back(p);
  s.merges = {"h e", "l l", "he ll", "hell o", "Ġ hello"};
  s.types.assign(s.tokens.size(), TokenType::Normal);
  for (const char* p : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    s.tokens.push_back(p);
    s.types.push_back(TokenType::Control);
  }
  s.tokens.push_back("<think>");
  s.types.push_back(TokenType::UserDefined);
  s.tokens.push_back("[PAD266]");
  s.types.push_back(TokenType::Unused);
  s.eos_id = 263;  // <|im_end|>
  s.pad_id = 261;
  s.eot_ids = {261};
  s.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}";
  return s;
}

TokenizerSpec llama_like_spm() {
  TokenizerSpec s;
  s.kind = TokenizerKind::SPM;
  s.tokens = {"<unk>", "<s>", "</s>"};
  s.types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
  s.scores = {0, 0, 0};
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    s.tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    s.types.push_back(TokenType::Byte);
    s.scores.push_back(0);
  }
  float score = 0;
  for (const char* p : {"▁t", "he", "▁the", "▁a", "▁c", "at", "▁cat", "▁", "t", "h", "e", "a", "c"}) {
    s.tokens.push_back(p);
    s.types.push_back(TokenType::Normal);
    s.scores.push_back(score--);
  }
  s.unk_id = 0;
  s.bos_id = 1;
  s.eos_id = 2;
  s.add_bos = true;
  s.add_space_prefix = true;
  s.pre = "default";
  s.chat_template = "[INST] {{ content }} [/INST]";
  return s;
}

// ---- GGUF --------------------------------------------------------------------------------------

TEST(TokenizerGguf, MetadataRoundTrip) {
  for (TokenizerSpec s : {qwen_like_bpe(), llama_like_spm()}) {
    Metadata meta;
    meta.source = "mem.gguf";
    tokenizer_to_gguf(s, meta);
    EXPECT_EQ(meta.find("tokenizer.ggml.tokens")->elem, GGUFType::STRING);
    EXPECT_EQ(meta.find("tokenizer.ggml.token_type")->elem, GGUFType::I32);
    EXPECT_EQ(meta.find("tokenizer.ggml.eos_token_id")->type, GGUFType::U32);
    EXPECT_EQ(meta.find("tokenizer.ggml.add_bos_token")->type, GGUFType::BOOL);
    expect_same_spec(tokenizer_from_gguf(meta), s, true);
  }
}

TEST(TokenizerGguf, FileRoundTripWithAbsentIdsAndManyEotIds) {
  TokenizerSpec s = llama_like_spm();
  s.bos_id = -1;  // differs from llama.cpp's SPM default (1): must survive the round trip
  s.add_bos = false;
  s.unk_id = -1;
  s.eot_ids = {2, 1, 0};
  Metadata meta;
  tokenizer_to_gguf(s, meta);
  const std::string path = test::temp_dir() + "/tok.gguf";
  GGUFWriter(meta).write(path, [](size_t, uint8_t*) {});
  const GGUFFile g = gguf_read(path);
  expect_same_spec(tokenizer_from_gguf(g.meta), s, true);
}

TEST(TokenizerGguf, LlamaCppDefaults) {
  Metadata meta;
  meta.source = "old.gguf";
  meta.set("tokenizer.ggml.model", MetaValue::of_str("llama"));
  meta.set("tokenizer.ggml.tokens", MetaValue::of_strs({"<unk>", "<s>", "</s>", "▁a"}));
  TokenizerSpec s = tokenizer_from_gguf(meta);
  EXPECT_EQ(s.kind, TokenizerKind::SPM);
  EXPECT_EQ(s.bos_id, 1);
  EXPECT_EQ(s.eos_id, 2);
  EXPECT_EQ(s.unk_id, 0);
  EXPECT_TRUE(s.add_bos);
  EXPECT_TRUE(s.add_space_prefix);
  EXPECT_EQ(s.pre, "default");

  Metadata bpe;
  bpe.set("tokenizer.ggml.model", MetaValue::of_str("gpt2"));
  bpe.set("tokenizer.ggml.pre", MetaValue::of_str("llama-bpe"));
  bpe.set("tokenizer.ggml.tokens", MetaValue::of_strs({"a", "b", "ab"}));
  bpe.set("tokenizer.ggml.merges", MetaValue::of_strs({"a b"}));
  bpe.set("tokenizer.ggml.bos_token_id", MetaValue::of_u32(0));
  bpe.set("tokenizer.ggml.eos_token_id", MetaValue::of_u32(7));  // out of range: ignored
  s = tokenizer_from_gguf(bpe);
  EXPECT_EQ(s.kind, TokenizerKind::BPE);
  EXPECT_TRUE(s.add_bos);  // llama3 pre-tokenizers default to add_bos
  EXPECT_EQ(s.eos_id, -1);
  EXPECT_FALSE(s.add_space_prefix);
}

TEST(TokenizerGguf, Errors) {
  auto err = [](const Metadata& m) { return test::error_of([&] { tokenizer_from_gguf(m); }); };
  Metadata m;
  m.source = "bad.gguf";
  EXPECT_THAT(err(m), HasSubstr("bad.gguf: missing metadata key 'tokenizer.ggml.model'"));
  m.set("tokenizer.ggml.model", MetaValue::of_str("bert"));
  EXPECT_THAT(err(m), HasSubstr("bad.gguf: unsupported tokenizer model 'bert'"));
  m.set("tokenizer.ggml.model", MetaValue::of_str("gpt2"));
  EXPECT_THAT(err(m), HasSubstr("missing metadata key 'tokenizer.ggml.tokens'"));
  m.set("tokenizer.ggml.tokens", MetaValue::of_strs({"a", "b"}));
  EXPECT_THAT(err(m), HasSubstr("tokenizer.ggml.merges"));
  m.set("tokenizer.ggml.merges", MetaValue::of_strs({}));
  m.set("tokenizer.ggml.token_type", MetaValue::of_i32s({1}));
  EXPECT_THAT(err(m), HasSubstr("token_type has 1 entries for 2 tokens"));
  m.set("tokenizer.ggml.token_type", MetaValue::of_i32s({1, 9}));
  EXPECT_THAT(err(m), HasSubstr("token_type[1] = 9 is not a token type"));
  m.set("tokenizer.ggml.token_type", MetaValue::of_f32s({1, 1}));
  EXPECT_THAT(err(m), HasSubstr("tokenizer.ggml.token_type"));
  m.set("tokenizer.ggml.token_type", MetaValue::of_i32s({1, 1}));
  m.set("tokenizer.ggml.scores", MetaValue::of_f32s({1}));
  EXPECT_THAT(err(m), HasSubstr("scores has 1 entries for 2 tokens"));
}

// ---- Hugging Face --------------------------------------------------------------------------------

TEST(TokenizerHf, RoundTripBpe) {
  for (const char* pre : {"qwen2", "llama3", "gpt-2", "default", "smollm", "falcon", "deepseek-coder"}) {
    TokenizerSpec s = qwen_like_bpe();
    s.pre = pre;
    s.add_bos = std::string(pre) == "llama3";
    if (s.add_bos) s.bos_id = 262;
    const TokenizerSpec r =
        tokenizer_from_hf_json(tokenizer_to_hf_json(s), tokenizer_config_to_hf_json(s), "rt");
    SCOPED_TRACE(pre);
    expect_same_spec(r, s, true);
    Tokenizer a(s), b(r);
    const std::string text = "<|im_start|>hello hello 123 <think>\n";
    EXPECT_EQ(a.encode(text, true, true), b.encode(text, true, true));
  }
}

TEST(TokenizerHf, RoundTripSpm) {
  const TokenizerSpec s = llama_like_spm();
  const std::string tj = tokenizer_to_hf_json(s);
  EXPECT_THAT(tj, HasSubstr("\"byte_fallback\": true"));
  const TokenizerSpec r = tokenizer_from_hf_json(tj, tokenizer_config_to_hf_json(s), "rt");
  TokenizerSpec expected = s;
  expected.merges = r.merges;  // generated from the scores
  expect_same_spec(r, expected, false);
  EXPECT_FALSE(r.merges.empty());
  Tokenizer a(s), b(r);
  for (const std::string text : {"the cat", " that cat ", "ach\n☃", ""}) {
    EXPECT_EQ(a.encode(text, true, false), b.encode(text, true, false)) << text;
  }
  // A second round trip is exact, scores included.
  const TokenizerSpec r2 =
      tokenizer_from_hf_json(tokenizer_to_hf_json(r), tokenizer_config_to_hf_json(r), "rt2");
  expect_same_spec(r2, r, true);
}

// The shape of Qwen2.5's tokenizer.json (abridged).
const char* kQwenJson = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 5, "content": "<|endoftext|>", "special": true},
    {"id": 6, "content": "<|im_start|>", "special": true},
    {"id": 7, "content": "<|im_end|>", "special": true},
    {"id": 8, "content": "<tool_call>", "special": false}
  ],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
  "post_processor": {"type": "ByteLevel", "add_prefix_space": false},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "byte_fallback": false,
            "vocab": {"h": 0, "i": 1, "Ġ": 2, "hi": 3, "Ġhi": 4},
            "merges": [["h", "i"], "Ġ hi"]}
})";
const char* kQwenConfig = R"({
  "add_bos_token": false, "bos_token": null, "eos_token": "<|im_end|>",
  "pad_token": {"content": "<|endoftext|>", "lstrip": false},
  "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
})";

TEST(TokenizerHf, QwenStyle) {
  const TokenizerSpec s = tokenizer_from_hf_json(kQwenJson, kQwenConfig, "qwen");
  EXPECT_EQ(s.kind, TokenizerKind::BPE);
  EXPECT_EQ(s.pre, "qwen2");
  EXPECT_EQ(s.tokens.size(), 9u);
  EXPECT_THAT(s.merges, ElementsAre("h i", "Ġ hi"));
  EXPECT_EQ(s.types[5], TokenType::Control);
  EXPECT_EQ(s.types[8], TokenType::UserDefined);
  EXPECT_EQ(s.types[4], TokenType::Normal);
  EXPECT_EQ(s.bos_id, -1);
  EXPECT_EQ(s.eos_id, 7);
  EXPECT_EQ(s.pad_id, 5);
  EXPECT_THAT(s.eot_ids, ElementsAre(5));  // <|endoftext|> (<|im_end|> is EOS)
  EXPECT_FALSE(s.add_bos);
  EXPECT_EQ(s.chat_template, "D");
  Tokenizer t(s);
  EXPECT_THAT(t.encode("hi hi<|im_end|>", false, true), ElementsAre(3, 4, 7));
}

TEST(TokenizerHf, Llama2Style) {
  const char* tj = R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true},
                     {"id": 1, "content": "<s>", "special": true},
                     {"id": 2, "content": "</s>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "▁"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": null,
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
      "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "▁": 4, "a": 5, "b": 6, "ab": 7, "▁ab": 8},
      "merges": ["a b", "▁ ab"]}
  })";
  const TokenizerSpec s = tokenizer_from_hf_json(tj, "", "llama2");
  EXPECT_EQ(s.kind, TokenizerKind::SPM);
  EXPECT_TRUE(s.add_space_prefix);
  EXPECT_TRUE(s.add_bos);
  EXPECT_EQ(s.bos_id, 1);
  EXPECT_EQ(s.eos_id, 2);
  EXPECT_EQ(s.unk_id, 0);
  EXPECT_EQ(s.types[0], TokenType::Unknown);
  EXPECT_EQ(s.types[1], TokenType::Control);
  EXPECT_EQ(s.types[3], TokenType::Byte);
  EXPECT_GT(s.scores[7], s.scores[8]);  // merge 0 before merge 1
  Tokenizer t(s);
  EXPECT_THAT(t.encode("ab\n", true, false), ElementsAre(1, 8, 3));
  EXPECT_EQ(t.decode(t.encode("ab\n", true, false), true), "ab\n");
}

TEST(TokenizerHf, MalformedInputs) {
  auto err = [](const std::string& tj, const std::string& cfg = "") {
    return test::error_of([&] { tokenizer_from_hf_json(tj, cfg, "x/tokenizer.json"); });
  };
  const std::string vocab = R"("vocab": {"a": 0, "b": 1, "ab": 2})";
  const std::string bl = R"("pre_tokenizer": {"type": "ByteLevel"})";
  EXPECT_THAT(err("{not json"), HasSubstr("x/tokenizer.json: tokenizer.json is not valid JSON"));
  EXPECT_THAT(err("[1, 2]"), HasSubstr("top level is not a JSON object"));
  EXPECT_THAT(err("{}"), HasSubstr("x/tokenizer.json: tokenizer.json: missing \"model\""));
  EXPECT_THAT(err(R"({"model": {"type": "Unigram", "vocab": []}})"),
              HasSubstr("unsupported model type 'Unigram'"));
  EXPECT_THAT(err(R"({"model": {"type": "WordPiece", "vocab": {}}})"),
              HasSubstr("unsupported model type 'WordPiece'"));
  EXPECT_THAT(err(R"({"model": {"type": "BPE"}})"), HasSubstr("model.vocab is missing"));
  EXPECT_THAT(err(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}}})"),
              HasSubstr("vocab entry 'a' has a non-integer id"));
  EXPECT_THAT(err(R"({"model": {"type": "BPE", "vocab": {"a": -1}}})"),
              HasSubstr("vocab id -1 for 'a' is out of range"));
  EXPECT_THAT(err(R"({"model": {"type": "BPE", "vocab": {"a": 99999999}}})"),
              HasSubstr("vocab id 99999999 for 'a' is out of range"));
  EXPECT_THAT(err(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}})"), HasSubstr("duplicate id 0"));
  EXPECT_THAT(err("{" + bl + R"(, "model": {"type": "BPE", )" + vocab + R"(, "merges": ["a c"]}})"),
              HasSubstr("merge 0 refers to unknown piece 'c'"));
  EXPECT_THAT(err("{" + bl + R"(, "model": {"type": "BPE", )" + vocab + R"(, "merges": ["b a"]}})"),
              HasSubstr("merge 0 yields 'ba', which is not in the vocabulary"));
  EXPECT_THAT(err("{" + bl + R"(, "model": {"type": "BPE", )" + vocab + R"(, "merges": [42]}})"),
              HasSubstr("merge 0 is neither"));
  EXPECT_THAT(err(R"({"model": {"type": "BPE", )" + vocab + "}}"),
              HasSubstr("unsupported pre-tokenizer: need ByteLevel"));
  EXPECT_THAT(err(R"({"pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "BPE", )" + vocab + "}}"),
              HasSubstr("unsupported pre_tokenizer type 'Whitespace'"));
  EXPECT_THAT(
      err(R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "x+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}, "model": {"type": "BPE", )" +
          vocab + "}}"),
      HasSubstr("unsupported pre-tokenizer regexes (first: 'x+')"));
  EXPECT_THAT(err(R"({"normalizer": {"type": "Lowercase"}, "model": {"type": "BPE", )" + vocab + "}}"),
              HasSubstr("unsupported normalizer type 'Lowercase'"));
  const std::string ok = "{" + bl + R"(, "model": {"type": "BPE", )" + vocab + R"(, "merges": ["a b"]}})";
  EXPECT_NO_THROW(tokenizer_from_hf_json(ok, "", "ok"));
  EXPECT_THAT(err(ok, "{oops"), HasSubstr("tokenizer_config.json is not valid JSON"));
  EXPECT_THAT(err(ok, R"({"eos_token": "</s>"})"),
              HasSubstr("tokenizer_config.json: eos_token '</s>' is not in the vocabulary"));
  EXPECT_THAT(err(ok, R"({"bos_token": 5})"), HasSubstr("bos_token is neither a string"));
}

TEST(TokenizerHf, NeverCrashesOnMutatedInput) {
  // A small libFuzzer-like sweep: random byte edits of valid files either parse or throw
  // cc::Error (anything else escapes and fails the test).
  const TokenizerSpec base = qwen_like_bpe();
  const std::string tj = tokenizer_to_hf_json(base), cj = tokenizer_config_to_hf_json(base);
  std::mt19937 rng(1234);
  int parsed = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string a = tj, b = cj;
    std::string& target = iter % 3 == 0 ? b : a;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % target.size();
      switch (rng() % 3) {
        case 0:
          target[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          target.erase(pos, 1 + rng() % 8);
          break;
        default:
          target.insert(pos, 1, "{}[]\":,0-e"[rng() % 11]);
          break;
      }
      if (target.empty()) target.push_back('x');
    }
    try {
      const TokenizerSpec s = tokenizer_from_hf_json(a, b, "fuzz");
      ++parsed;
      try {
        Tokenizer t(s);
        (void)t.encode("hello <|im_end|> 12", true, true);
      } catch (const Error&) {
      }
    } catch (const Error&) {
    }
  }
  EXPECT_GT(parsed, 0);
}

// ---- llama2.c ----------------------------------------------------------------------------------

void put_i32(std::vector<uint8_t>& out, int32_t v) {
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}
void put_token(std::vector<uint8_t>& out, float score, const std::string& piece) {
  uint8_t b[4];
  std::memcpy(b, &score, 4);
  out.insert(out.end(), b, b + 4);
  put_i32(out, static_cast<int32_t>(piece.size()));
  out.insert(out.end(), piece.begin(), piece.end());
}

// <unk>, "\n<s>\n", "\n</s>\n", <0x0A>, " ", "a", "b", " a", "ab", " ab".
std::vector<uint8_t> tiny_llama2c() {
  std::vector<uint8_t> d;
  put_i32(d, 6);
  put_token(d, 0, "<unk>");
  put_token(d, 0, "\n<s>\n");
  put_token(d, 0, "\n</s>\n");
  put_token(d, 0, "<0x0A>");
  put_token(d, -10, " ");
  put_token(d, -11, "a");
  put_token(d, -12, "b");
  put_token(d, -1, " a");
  put_token(d, -2, "ab");
  put_token(d, -3, " ab");
  return d;
}

TEST(TokenizerLlama2c, Parses) {
  const auto d = tiny_llama2c();
  const std::string path = test::temp_dir() + "/tok.bin";
  test::write_bytes(path, d);
  const TokenizerSpec s = tokenizer_from_llama2c(path, 10);
  EXPECT_EQ(s.kind, TokenizerKind::SPM);
  EXPECT_THAT(std::vector<std::string>(s.tokens.begin(), s.tokens.begin() + 5),
              ElementsAre("<unk>", "<s>", "</s>", "<0x0A>", "▁"));
  EXPECT_EQ(s.tokens[9], "▁ab");
  EXPECT_EQ(s.types[0], TokenType::Unknown);
  EXPECT_EQ(s.types[1], TokenType::Control);
  EXPECT_EQ(s.types[3], TokenType::Byte);
  EXPECT_EQ(s.types[9], TokenType::Normal);
  EXPECT_FLOAT_EQ(s.scores[9], -3);
  Tokenizer t(s);
  // "▁a" (-1) merges before "ab" (-2), then "▁a" + "b" makes "▁ab"; "\n" is a byte token.
  EXPECT_THAT(t.encode("ab\n", true, false), ElementsAre(1, 9, 3));
  EXPECT_THAT(t.encode("b a", false, false), ElementsAre(4, 6, 7));
  EXPECT_EQ(t.decode(t.encode("ab\n", true, false), true), "ab\n");
  EXPECT_TRUE(t.is_eog(2));
}

TEST(TokenizerLlama2c, Errors) {
  const auto good = tiny_llama2c();
  auto err = [](std::vector<uint8_t> d, int32_t n) {
    return test::error_of([&] { tokenizer_from_llama2c_bytes(d.data(), d.size(), n, "t.bin"); });
  };
  EXPECT_THAT(err(good, 11),
              HasSubstr("t.bin: truncated: the file ends after 10 tokens but vocab_size is 11"));
  EXPECT_THAT(err(good, 9), HasSubstr("t.bin: 11 trailing bytes after 9 tokens (vocab_size mismatch?)"));
  EXPECT_THAT(err(good, 0), HasSubstr("vocab_size 0 is too small"));
  EXPECT_THAT(err(good, 1 << 30), HasSubstr("cannot hold 1073741824 tokens"));
  EXPECT_THAT(err({1, 0}, 10), HasSubstr("t.bin: truncated"));
  auto cut = good;
  cut.resize(good.size() - 2);
  EXPECT_THAT(err(cut, 10), HasSubstr("t.bin: truncated: reading token bytes"));
  auto neg = good;
  const int32_t minus = -5;
  std::memcpy(neg.data() + 4 + 4, &minus, 4);  // length of token 0
  EXPECT_THAT(err(neg, 10), HasSubstr("token 0 has length -5 outside [0, max_token_length=6]"));
  auto huge = good;
  const int32_t big = 1 << 30;
  std::memcpy(huge.data(), &big, 4);  // max_token_length
  EXPECT_THAT(err(huge, 10), HasSubstr("max_token_length 1073741824 is not in"));
  auto longer = good;
  const int32_t seven = 7;
  std::memcpy(longer.data() + 4 + 4, &seven, 4);
  EXPECT_THAT(err(longer, 10), HasSubstr("token 0 has length 7 outside"));
  EXPECT_THAT(test::error_of([] { tokenizer_from_llama2c("/nonexistent/tok.bin", 32000); }),
              HasSubstr("/nonexistent/tok.bin"));
}

}  // namespace
}  // namespace cc
