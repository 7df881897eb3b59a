// Tokenizer on small hand-made vocabularies: BPE merges, SPM merges and byte fallback, special
// token parsing, decode rules, spec validation, and the chat templates.
#include <algorithm>
#include <string>
#include <vector>

#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace cc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

int32_t add_token(TokenizerSpec& s, const std::string& piece, TokenType type = TokenType::Normal,
                  float score = 0.0f) {
  s.tokens.push_back(piece);
  s.types.push_back(type);
  if (s.kind == TokenizerKind::SPM) s.scores.push_back(score);
  return static_cast<int32_t>(s.tokens.size() - 1);
}

// Byte-level BPE: the 256 byte tokens, merges building "hello" and "Ġhello", three specials.
TokenizerSpec tiny_bpe() {
  TokenizerSpec s;
  s.kind = TokenizerKind::BPE;
  s.pre = "gpt-2";
  for (int b = 0; b < 256; ++b) add_token(s, tok::bytes_to_byte_level(std::string(1, char(b))));
  for (const char* p : {"he", "ll", "hell", "hello", "Ġhello"}) add_token(s, p);
  s.merges = {"h e", "l l", "he ll", "hell o", "Ġ hello"};
  add_token(s, "<|im_start|>", TokenType::Control);
  s.eos_id = add_token(s, "<|im_end|>", TokenType::Control);
  add_token(s, "<tool>", TokenType::UserDefined);
  return s;
}

// SentencePiece-style: <unk> <s> </s>, 256 byte tokens, pieces scored so that "▁hello▁world"
// merges into two tokens.
TokenizerSpec tiny_spm() {
  TokenizerSpec s;
  s.kind = TokenizerKind::SPM;
  s.unk_id = add_token(s, "<unk>", TokenType::Unknown);
  s.bos_id = add_token(s, "<s>", TokenType::Control);
  s.eos_id = add_token(s, "</s>", TokenType::Control);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    add_token(s, std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", TokenType::Byte);
  }
  for (const char* p : {"▁", "h", "e", "l", "o", "w", "r", "d"}) add_token(s, p, TokenType::Normal, -100);
  float score = -1;
  for (const char* p : {"he", "ll", "llo", "hello", "▁hello", "or", "▁w", "▁wor", "ld", "▁world"}) {
    add_token(s, p, TokenType::Normal, score--);
  }
  s.add_bos = true;
  s.add_space_prefix = true;
  return s;
}

int32_t id_of(const Tokenizer& t, const std::string& piece) {
  auto id = t.find_token(piece);
  EXPECT_TRUE(id.has_value()) << piece;
  return id.value_or(-1);
}

TEST(TokenizerBpe, MergesByRank) {
  Tokenizer t(tiny_bpe());
  EXPECT_THAT(t.encode("hello hello", false, false), ElementsAre(id_of(t, "hello"), id_of(t, "Ġhello")));
  EXPECT_EQ(t.decode(t.encode("hello hello", false, false)), "hello hello");
  // "hel" cannot finish: "he" + "l".
  EXPECT_THAT(t.encode("hel", false, false), ElementsAre(id_of(t, "he"), id_of(t, "l")));
}

TEST(TokenizerBpe, ArbitraryBytesRoundTrip) {
  Tokenizer t(tiny_bpe());
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  all += "\xE2\x82 broken \xFF\xFE utf-8 \xC3";
  EXPECT_EQ(t.decode(t.encode(all, false, false)), all);
  EXPECT_TRUE(t.encode("", true, true).empty());
}

TEST(TokenizerBpe, LongWordIsNotQuadratic) {
  Tokenizer t(tiny_bpe());
  std::string word;
  for (int i = 0; i < 20000; ++i) word += "hello";  // one 100 KB pre-tokenizer word
  const auto ids = t.encode(word, false, false);
  ASSERT_EQ(ids.size(), 20000u);
  EXPECT_EQ(ids[0], id_of(t, "hello"));
  EXPECT_EQ(t.decode(ids), word);
}

TEST(TokenizerBpe, SpecialTokensOnlyWhenParsed) {
  Tokenizer t(tiny_bpe());
  const int32_t start = id_of(t, "<|im_start|>"), end = id_of(t, "<|im_end|>"), tool = id_of(t, "<tool>");
  const std::string text = "<|im_start|>hello<tool><|im_end|>";
  EXPECT_THAT(t.encode(text, false, true), ElementsAre(start, id_of(t, "hello"), tool, end));
  const auto plain = t.encode(text, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), start), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), tool), 0);
  EXPECT_EQ(t.decode(plain), text);
  // decode: control tokens give their text unless skipped; user-defined ones always do.
  EXPECT_EQ(t.decode(t.encode(text, false, true)), text);
  EXPECT_EQ(t.decode(t.encode(text, false, true), /*skip_special=*/true), "hello<tool>");
}

TEST(TokenizerBpe, AddSpecialUsesFlags) {
  TokenizerSpec s = tiny_bpe();
  s.bos_id = s.eos_id;
  s.add_bos = true;
  s.add_eos = true;
  Tokenizer t(std::move(s));
  EXPECT_THAT(t.encode("hello", true, false),
              ElementsAre(t.spec().bos_id, id_of(t, "hello"), t.spec().eos_id));
  EXPECT_THAT(t.encode("hello", false, false), ElementsAre(id_of(t, "hello")));
}

TEST(TokenizerBpe, EogFindTokenAndPieces) {
  TokenizerSpec s = tiny_bpe();
  const int32_t start = 261;  // <|im_start|>
  s.eot_ids = {start};
  Tokenizer t(std::move(s));
  EXPECT_TRUE(t.is_eog(t.spec().eos_id));
  EXPECT_TRUE(t.is_eog(start));
  EXPECT_FALSE(t.is_eog(id_of(t, "hello")));
  EXPECT_FALSE(t.is_eog(-1));
  EXPECT_FALSE(t.is_eog(t.n_vocab()));
  EXPECT_EQ(t.token_to_piece(id_of(t, "Ġhello")), " hello");
  EXPECT_EQ(t.token_to_piece(start), "<|im_start|>");
  EXPECT_FALSE(t.find_token("nope").has_value());
  EXPECT_EQ(t.n_vocab(), 264);
}

TEST(TokenizerBpe, DecodeRejectsOutOfRangeIds) {
  Tokenizer t(tiny_bpe());
  const std::vector<int32_t> ids = {1, 9999};
  EXPECT_THAT(test::error_of([&] { t.decode(ids); }), HasSubstr("token id 9999 out of range"));
  EXPECT_THAT(test::error_of([&] { t.token_to_piece(-5); }), HasSubstr("token id -5"));
}

TEST(TokenizerSpm, MergesByScoreWithDummyPrefix) {
  Tokenizer t(tiny_spm());
  EXPECT_THAT(t.encode("hello world", false, false), ElementsAre(id_of(t, "▁hello"), id_of(t, "▁world")));
  EXPECT_THAT(t.encode("hello world", true, false), ElementsAre(1, id_of(t, "▁hello"), id_of(t, "▁world")));
  EXPECT_TRUE(t.encode("", false, false).empty());
  EXPECT_THAT(t.encode("", true, false), ElementsAre(1));
}

TEST(TokenizerSpm, ByteFallbackAndUnk) {
  Tokenizer t(tiny_spm());
  // "é" (C3 A9) is not in the vocabulary: byte tokens.
  EXPECT_THAT(t.encode("hé", false, false),
              ElementsAre(id_of(t, "▁"), id_of(t, "h"), id_of(t, "<0xC3>"), id_of(t, "<0xA9>")));
  EXPECT_EQ(t.decode(t.encode("hé", false, false)), "hé");
  // Without byte tokens, unknown characters become <unk>.
  TokenizerSpec s = tiny_spm();
  for (int b = 0; b < 256; ++b) s.types[3 + b] = TokenType::Unused;
  for (int b = 0; b < 256; ++b) s.tokens[3 + b] = "[unused" + std::to_string(b) + "]";
  Tokenizer u(std::move(s));
  EXPECT_THAT(u.encode("hé", false, false), ElementsAre(id_of(u, "▁"), id_of(u, "h"), 0));
}

TEST(TokenizerSpm, InvalidUtf8IsLossless) {
  Tokenizer t(tiny_spm());
  // A stray lead byte must not swallow the "▁" that stands for the following space.
  for (const std::string text : {"h\xD5 world", "\xE2\x96 x", "\xFF\xFE", "x \xC3"}) {
    EXPECT_EQ(t.decode(t.encode(text, false, false)), text);
  }
}

TEST(TokenizerSpm, DecodeStripsOnlyTheDummyPrefix) {
  Tokenizer t(tiny_spm());
  for (const std::string text : {"hello world", " hello", "  world ", "\n"}) {
    EXPECT_EQ(t.decode(t.encode(text, false, false)), text) << text;
    EXPECT_EQ(t.decode(t.encode(text, true, false), true), text) << text;
    EXPECT_EQ(t.decode(t.encode(text, true, false)), "<s>" + text) << text;
  }
  // Without the flag nothing is stripped.
  TokenizerSpec s = tiny_spm();
  s.add_space_prefix = false;
  Tokenizer n(std::move(s));
  EXPECT_EQ(n.decode(n.encode(" hello", false, false)), " hello");
}

TEST(TokenizerSpm, SpecialTokensGetAPrefixSpaceAfterThem) {
  Tokenizer t(tiny_spm());
  EXPECT_THAT(t.encode("<s>hello</s>world", false, true),
              ElementsAre(1, id_of(t, "▁hello"), 2, id_of(t, "▁world")));
  const auto plain = t.encode("<s>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
}

TEST(TokenizerSpec, ValidationErrors) {
  auto err = [](TokenizerSpec s) { return test::error_of([&] { Tokenizer t(std::move(s)); }); };
  {
    TokenizerSpec s = tiny_bpe();
    s.merges.push_back("he xyz");
    EXPECT_THAT(err(s), HasSubstr("refers to 'xyz', which is not in the vocabulary"));
  }
  {
    TokenizerSpec s = tiny_bpe();
    s.merges.push_back("hello hello");
    EXPECT_THAT(err(s), HasSubstr("yields 'hellohello'"));
  }
  {
    TokenizerSpec s = tiny_bpe();
    s.merges.push_back("nospace");
    EXPECT_THAT(err(s), HasSubstr("is not \"left right\""));
  }
  {
    TokenizerSpec s = tiny_bpe();
    s.pre = "klingon";
    EXPECT_THAT(err(s), HasSubstr("unknown pre-tokenizer 'klingon'"));
  }
  {
    TokenizerSpec s = tiny_bpe();
    s.bos_id = 100000;
    EXPECT_THAT(err(s), HasSubstr("bos id 100000 out of range"));
  }
  {
    TokenizerSpec s = tiny_bpe();
    s.add_bos = true;
    EXPECT_THAT(err(s), HasSubstr("add_bos is set but there is no bos id"));
  }
  {
    TokenizerSpec s = tiny_bpe();
    s.tokens.push_back("hello");
    s.types.push_back(TokenType::Normal);
    EXPECT_THAT(err(s), HasSubstr("duplicate token 'hello'"));
  }
  {
    TokenizerSpec s = tiny_spm();
    s.scores.pop_back();
    EXPECT_THAT(err(s), HasSubstr("scores for"));
  }
  {
    TokenizerSpec s = tiny_spm();
    s.types[5] = static_cast<TokenType>(42);
    EXPECT_THAT(err(s), HasSubstr("invalid type 42"));
  }
  EXPECT_THAT(err(TokenizerSpec{}), HasSubstr("vocabulary is empty"));
}

TEST(TokenizerPre, KnownNamesBuild) {
  // Every advertised pre-tokenizer compiles and splits (the GPT-2 byte tokens suffice).
  for (const char* pre : {"default", "gpt-2", "llama3", "llama-bpe", "qwen2", "falcon", "starcoder", "smollm",
                          "refact", "command-r", "olmo", "dbrx", "deepseek-llm", "deepseek-coder",
                          "deepseek-v3", "gpt-4o", "tekken", "viking", "bloom"}) {
    TokenizerSpec s = tiny_bpe();
    s.pre = pre;
    Tokenizer t(std::move(s));
    const std::string text = "Hello, world! 12345 ÄÖÜ 你好 \t\n  x's";
    EXPECT_EQ(t.decode(t.encode(text, false, false)), text) << pre;
  }
}

// ---- chat templates ----------------------------------------------------------------------------

TokenizerSpec chat_spec(const std::string& bos, const std::string& eos, const std::string& tmpl) {
  TokenizerSpec s;
  s.tokens = {"a", bos, eos};
  s.bos_id = 1;
  s.eos_id = 2;
  s.chat_template = tmpl;
  return s;
}

// Excerpt of Qwen2.5's template (the default system prompt is a literal in it).
const char* kQwen25Template =
    R"({%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %})";
const char* kChatMLTemplate =
    R"({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";
const char* kLlama3Template =
    R"({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %})";
const char* kLlama2Template =
    R"({% for message in loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}{% endfor %})";

TEST(ChatTemplate, Detect) {
  EXPECT_EQ(detect_chat_format(kQwen25Template), ChatFormat::ChatML);
  EXPECT_EQ(detect_chat_format(kLlama3Template), ChatFormat::Llama3);
  EXPECT_EQ(detect_chat_format(kLlama2Template), ChatFormat::Llama2);
  EXPECT_EQ(chat_format_name(ChatFormat::ChatML), "ChatML");
  EXPECT_EQ(chat_format_name(ChatFormat::Llama2), "Llama-2");
  EXPECT_EQ(chat_format_name(ChatFormat::Llama3), "Llama-3");
  const std::string msg = test::error_of([] { detect_chat_format("{{ messages | gemma_style }}"); });
  EXPECT_THAT(msg, HasSubstr("unknown chat template (first 60 chars: {{ messages | gemma_style }})"));
  EXPECT_THAT(msg, HasSubstr("supported: ChatML/Qwen, Llama-2, Llama-3"));
}

TEST(ChatTemplate, ChatMLQwen25DefaultSystemPrompt) {
  const TokenizerSpec s = chat_spec("<|endoftext|>", "<|im_end|>", kQwen25Template);
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, {{"user", "Hi"}}, true, s),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML,
                                {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}}, false, s),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n");
}

TEST(ChatTemplate, ChatMLPlain) {
  TokenizerSpec s = chat_spec("<s>", "<|im_end|>", kChatMLTemplate);
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, {{"user", " Hi \n"}}, true, s),
            "<|im_start|>user\n Hi \n<|im_end|>\n<|im_start|>assistant\n");
  s.add_bos = true;  // a ChatML model that wants BOS gets it in the text
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, {{"user", "Hi"}}, false, s),
            "<s><|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama3) {
  const TokenizerSpec s = chat_spec("<|begin_of_text|>", "<|eot_id|>", kLlama3Template);
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama3, {{"system", "Be brief. "}, {"user", "\nHi"}}, true, s),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama3, {{"user", "Hi"}}, false, s),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, Llama31SystemHeader) {
  const TokenizerSpec s =
      chat_spec("<|begin_of_text|>", "<|eot_id|>",
                std::string(kLlama3Template) + R"({{- "Cutting Knowledge Date: December 2023\n" }})");
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama3, {{"user", "Hi"}}, true, s),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2) {
  const TokenizerSpec s = chat_spec("<s>", "</s>", kLlama2Template);
  EXPECT_EQ(apply_chat_template(
                ChatFormat::Llama2,
                {{"system", "Be brief."}, {"user", "Hi "}, {"assistant", "Hello!"}, {"user", "How are you?"}},
                true, s),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
            "<s>[INST] How are you? [/INST]");
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama2, {{"user", "Hi"}}, false, s), "<s>[INST] Hi [/INST]");
  EXPECT_THAT(test::error_of([&] {
                apply_chat_template(ChatFormat::Llama2, {{"user", "a"}, {"user", "b"}}, false, s);
              }),
              HasSubstr("roles must alternate"));
}

TEST(ChatTemplate, EncodesWithoutDoubleBos) {
  // BPE vocabulary with Llama-3 style specials; the rendered text carries BOS itself.
  TokenizerSpec s = tiny_bpe();
  s.bos_id = add_token(s, "<|begin_of_text|>", TokenType::Control);
  add_token(s, "<|start_header_id|>", TokenType::Control);
  add_token(s, "<|end_header_id|>", TokenType::Control);
  add_token(s, "<|eot_id|>", TokenType::Control);
  s.add_bos = true;
  s.chat_template = kLlama3Template;
  Tokenizer t(s);
  const std::string text = apply_chat_template(ChatFormat::Llama3, {{"user", "hello"}}, true, s);
  const auto ids = t.encode(text, /*add_special=*/false, /*parse_special=*/true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], s.bos_id);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), s.bos_id), 1);
  EXPECT_TRUE(t.is_eog(id_of(t, "<|eot_id|>")));
  EXPECT_EQ(t.decode(ids), text);
}

}  // namespace
}  // namespace cc
