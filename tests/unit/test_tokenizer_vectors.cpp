// Tokenizers against reference data in $CACHECLIP_SHARED (label "model"; each test skips when
// the data is absent):
//   tokenizer-tests/ggml-vocab-*.gguf: llama.cpp's vocab-only GGUFs with input strings (.inp,
//     separated by "\n__ggml_vocab_test__\n", the file ending with one) and the reference
//     tokenizers' ids (.out, one line per input), encoded without BOS/EOS and without parsing
//     special tokens;
//   models/stories260K/tok512.bin + golden-greedy-200.txt: a llama2.c tokenizer and text.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_io.h"

namespace cc {
namespace {

using ::testing::ElementsAre;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Vectors {
  std::vector<std::string> inputs;
  std::vector<std::vector<int32_t>> expected;
};

Vectors load_vectors(const std::string& gguf_path) {
  Vectors v;
  const std::string inp = read_text(gguf_path + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) {  // no trailing separator: the rest is the last input
      v.inputs.push_back(inp.substr(pos));
      break;
    }
    v.inputs.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  std::istringstream out(read_text(gguf_path + ".out"));
  std::string line;
  while (std::getline(out, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ls >> id) ids.push_back(id);
    v.expected.push_back(std::move(ids));
  }
  return v;
}

// Text with a bit of everything, for comparing two tokenizers.
const char* kSample =
    "The quick brown fox jumps over the lazy dog. It's 2024-05-17, and we'd've paid $1,234.56!\n"
    "\tIndented line with    runs of   spaces\r\nÄpfel, naïve café, Straße; ελληνικά; русский; "
    "中文字符; 日本語のテキスト; 한국어; emoji 🦙🚀 and 🏳️‍🌈.\n"
    "code: for (int i = 0; i < n; ++i) { x[i] = y[i] * 2; } // done\n\n\n   trailing   ";

class GgufVocab : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    sub_ = std::string("tokenizer-tests/ggml-vocab-") + GetParam() + ".gguf";
    CC_SKIP_WITHOUT_SHARED(sub_);
    path_ = test::shared_dir() + "/" + sub_;
    const GGUFFile g = gguf_read(path_);
    spec_ = tokenizer_from_gguf(g.meta);
    vectors_ = load_vectors(path_);
  }
  std::string sub_, path_;
  TokenizerSpec spec_;
  Vectors vectors_;
};

// The special-token ids, flags and chat template of two specs agree.
void expect_same_special_fields(const TokenizerSpec& r, const TokenizerSpec& e) {
  EXPECT_EQ(r.bos_id, e.bos_id);
  EXPECT_EQ(r.eos_id, e.eos_id);
  EXPECT_EQ(r.unk_id, e.unk_id);
  EXPECT_EQ(r.pad_id, e.pad_id);
  EXPECT_EQ(r.eot_ids, e.eot_ids);
  EXPECT_EQ(r.add_bos, e.add_bos);
  EXPECT_EQ(r.add_eos, e.add_eos);
  EXPECT_EQ(r.add_space_prefix, e.add_space_prefix);
  EXPECT_EQ(r.chat_template, e.chat_template);
}

TEST_P(GgufVocab, EncodesReferenceIdsAndDecodesBack) {
  ASSERT_EQ(vectors_.inputs.size(), vectors_.expected.size()) << path_;
  ASSERT_GT(vectors_.inputs.size(), 40u);
  const Tokenizer t(spec_);
  for (size_t i = 0; i < vectors_.inputs.size(); ++i) {
    const std::string& text = vectors_.inputs[i];
    const auto ids = t.encode(text, /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, vectors_.expected[i]) << "case " << i << ": '" << text << "'";
    EXPECT_EQ(t.decode(ids), text) << "case " << i;
  }
}

TEST_P(GgufVocab, GgufMetadataRoundTrip) {
  Metadata meta;
  tokenizer_to_gguf(spec_, meta);
  const TokenizerSpec r = tokenizer_from_gguf(meta);
  EXPECT_EQ(r.kind, spec_.kind);
  EXPECT_EQ(r.pre, spec_.pre);
  EXPECT_EQ(r.tokens, spec_.tokens);
  EXPECT_EQ(r.scores, spec_.scores);
  EXPECT_EQ(r.types, spec_.types);
  EXPECT_EQ(r.merges, spec_.merges);
  expect_same_special_fields(r, spec_);
}

TEST_P(GgufVocab, HfRoundTripEncodesTheSame) {
  const TokenizerSpec r =
      tokenizer_from_hf_json(tokenizer_to_hf_json(spec_), tokenizer_config_to_hf_json(spec_), sub_);
  EXPECT_EQ(r.kind, spec_.kind);
  EXPECT_EQ(r.pre, spec_.pre);
  EXPECT_EQ(r.tokens, spec_.tokens);
  EXPECT_EQ(r.types, spec_.types);
  if (spec_.kind == TokenizerKind::BPE) {
    EXPECT_EQ(r.merges, spec_.merges);
  }
  expect_same_special_fields(r, spec_);
  const Tokenizer a(spec_), b(r);
  std::vector<std::string> texts = vectors_.inputs;
  texts.push_back(kSample);
  for (const std::string& text : texts) {
    const auto ids = a.encode(text, true, true);
    EXPECT_EQ(b.encode(text, true, true), ids) << "'" << text << "'";
    EXPECT_EQ(b.decode(ids), a.decode(ids));
  }
}

INSTANTIATE_TEST_SUITE_P(TokenizerVectors, GgufVocab,
                         ::testing::Values("gpt-2", "falcon", "starcoder", "llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

TEST(TokenizerVectors, Gpt2SpecialTokenParsing) {
  CC_SKIP_WITHOUT_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf");
  const Tokenizer t(
      tokenizer_from_gguf(gguf_read(test::shared_dir() + "/tokenizer-tests/ggml-vocab-gpt-2.gguf").meta));
  EXPECT_THAT(t.encode("Hello<|endoftext|>", false, true), ElementsAre(15496, 50256));
  const auto plain = t.encode("Hello<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 2u);
  EXPECT_EQ(t.decode(plain), "Hello<|endoftext|>");
  EXPECT_TRUE(t.is_eog(50256));
}

class Stories260K : public ::testing::Test {
 protected:
  void SetUp() override {
    CC_SKIP_WITHOUT_SHARED("models/stories260K/tok512.bin");
    const std::string dir = test::shared_dir() + "/models/stories260K";
    spec_ = tokenizer_from_llama2c(dir + "/tok512.bin", 512);
    golden_ = read_text(dir + "/golden-greedy-200.txt");
  }
  TokenizerSpec spec_;
  std::string golden_;
};

TEST_F(Stories260K, GoldenTextIsLossless) {
  ASSERT_FALSE(golden_.empty());
  const Tokenizer t(spec_);
  const auto ids = t.encode(golden_, /*add_special=*/true, /*parse_special=*/false);
  ASSERT_GT(ids.size(), 10u);
  EXPECT_EQ(ids[0], 1);                       // BOS
  EXPECT_LT(ids.size(), golden_.size() / 2);  // merges do happen
  EXPECT_EQ(t.decode(ids, /*skip_special=*/true), golden_);
  EXPECT_EQ(t.decode(ids), "<s>" + golden_);
  EXPECT_EQ(t.decode(t.encode(golden_, false, false)), golden_);
  // "Once" at the start of the text carries the dummy-prefix space: "▁Once" or pieces of it.
  EXPECT_EQ(t.token_to_piece(ids[1])[0], ' ');
}

TEST_F(Stories260K, RoundTripsThroughGgufAndHf) {
  const Tokenizer a(spec_);
  Metadata meta;
  tokenizer_to_gguf(spec_, meta);
  const Tokenizer g(tokenizer_from_gguf(meta));
  const TokenizerSpec hf =
      tokenizer_from_hf_json(tokenizer_to_hf_json(spec_), tokenizer_config_to_hf_json(spec_), "tok512");
  EXPECT_EQ(hf.tokens, spec_.tokens);
  EXPECT_EQ(hf.types, spec_.types);
  const Tokenizer h(hf);
  for (const std::string& text : std::vector<std::string>{golden_, kSample}) {
    const auto ids = a.encode(text, true, false);
    EXPECT_EQ(g.encode(text, true, false), ids);
    EXPECT_EQ(h.encode(text, true, false), ids);
  }
}

}  // namespace
}  // namespace cc
