// llama2.c checkpoints: the real stories260K file and malformed ones.
#include <climits>
#include <cstring>

#include "formats/llama2c.h"
#include "model/model.h"
#include "test_util.h"

namespace cc {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> synthetic_v0(int32_t vocab_signed, bool with_freqs = true) {
  const int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv = 1, seq = 4;
  const int32_t V = std::abs(vocab_signed);
  int32_t h[7] = {dim, hidden, layers, heads, kv, vocab_signed, seq};
  std::vector<uint8_t> f(sizeof h);
  std::memcpy(f.data(), h, sizeof h);
  const int64_t hs = dim / heads, kvd = hs * kv;
  int64_t n = V * dim + layers * (dim + dim * dim + 2 * kvd * dim + dim * dim + dim + 3 * hidden * dim) + dim;
  if (with_freqs) n += seq * hs;  // freq_cis_real + imag
  if (vocab_signed < 0) n += V * dim;
  f.resize(f.size() + static_cast<size_t>(n) * 4);
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(i);
    std::memcpy(f.data() + 28 + i * 4, &v, 4);
  }
  return f;
}

TEST(Llama2c, SyntheticLegacyLayout) {
  auto f = synthetic_v0(10);
  Llama2cFile m = llama2c_parse(f.data(), f.size(), "s.bin");
  EXPECT_TRUE(m.config.shared_classifier);
  // token embedding is first: element 0 is 0.0; blk.0.attn_norm follows it.
  const auto& emb = m.tensors[0];
  EXPECT_EQ(emb.name, "token_embd.weight");
  float first;
  std::memcpy(&first, m.tensors[1].data, 4);
  EXPECT_EQ(m.tensors[1].name, "blk.0.attn_norm.weight");
  EXPECT_EQ(first, 80.0f);  // after 10 x 8 embedding values
  auto g = synthetic_v0(-10);
  Llama2cFile u = llama2c_parse(g.data(), g.size(), "u.bin");
  EXPECT_FALSE(u.config.shared_classifier);
  EXPECT_EQ(u.tensors.back().name, "output.weight");
}

TEST(Llama2cBad, TruncatedAndOversized) {
  auto f = synthetic_v0(10);
  auto cut = f;
  cut.resize(cut.size() - 4);
  EXPECT_THAT(test::error_of([&] { llama2c_parse(cut.data(), cut.size(), "s.bin"); }),
              HasSubstr("s.bin: truncated: the llama2.c config"));
  auto big = f;
  big.resize(big.size() + 8);
  EXPECT_THAT(test::error_of([&] { llama2c_parse(big.data(), big.size(), "s.bin"); }),
              HasSubstr("8 unexpected bytes after the last tensor"));
}

TEST(Llama2cBad, InvalidHeader) {
  auto f = synthetic_v0(10);
  int32_t bad_heads = 3;  // does not divide dim 8
  std::memcpy(f.data() + 12, &bad_heads, 4);
  EXPECT_THAT(test::error_of([&] { llama2c_parse(f.data(), f.size(), "s.bin"); }),
              HasSubstr("n_heads (must divide dim) = 3 is invalid"));
  std::vector<uint8_t> v2(256, 0);
  uint32_t magic = 0x616b3432;
  int32_t version = 2;
  std::memcpy(v2.data(), &magic, 4);
  std::memcpy(v2.data() + 4, &version, 4);
  EXPECT_THAT(test::error_of([&] { llama2c_parse(v2.data(), v2.size(), "q.bin"); }),
              HasSubstr("llama2.c export version 2 is not supported"));
}

// Found by fuzz_llama2c (before the fix, negating INT32_MIN was undefined behaviour).
TEST(Llama2cBad, MostNegativeVocabSize) {
  auto f = synthetic_v0(10);
  int32_t v = INT32_MIN;
  std::memcpy(f.data() + 20, &v, 4);
  EXPECT_THAT(test::error_of([&] { llama2c_parse(f.data(), f.size(), "s.bin"); }),
              HasSubstr("vocab_size = -2147483648 is invalid"));
}

TEST(Llama2c, Stories260KLoads) {
  CC_SKIP_WITHOUT_SHARED("models/stories260K/stories260K.bin");
  const std::string dir = test::shared_dir() + "/models/stories260K";
  LoadOptions lo;
  lo.tokenizer_path = dir + "/tok512.bin";
  Model m = load_model(dir + "/stories260K.bin", lo);
  EXPECT_EQ(m.format, ModelFormat::Llama2c);
  EXPECT_EQ(m.config.n_embd, 64);
  EXPECT_EQ(m.config.n_ff, 172);
  EXPECT_EQ(m.config.n_layer, 5);
  EXPECT_EQ(m.config.n_head, 8);
  EXPECT_EQ(m.config.n_head_kv, 4);
  EXPECT_EQ(m.config.n_vocab, 512);
  EXPECT_EQ(m.config.n_ctx_train, 512);
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_EQ(m.config.rope_pairing, RopePairing::Adjacent);
  EXPECT_EQ(m.n_params(), 260032);
  EXPECT_EQ(m.tokenizer.tokens.size(), 512u);
  // Views, not copies: tensor data lies inside the mapped checkpoint.
  const Tensor& e = m.tensor("token_embd.weight");
  EXPECT_EQ(e.nbytes, 512u * 64 * 4);
}

TEST(Llama2c, Stories260KFindsTokenizerBesideIt) {
  CC_SKIP_WITHOUT_SHARED("models/stories260K/stories260K.bin");
  Model m = load_model(test::shared_dir() + "/models/stories260K/stories260K.bin");
  EXPECT_EQ(m.tokenizer.tokens.size(), 512u);
}

}  // namespace
}  // namespace cc
