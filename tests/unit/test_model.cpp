// Model writer + loaders: round trips in every format and type, and bad model files.
#include <cstring>
#include <filesystem>
#include <map>
#include <fstream>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "model/writer.h"
#include "simd/convert.h"
#include "test_util.h"

namespace cc {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string write_random(const std::string& preset, WriteFormat fmt, DType type, bool q4km = false,
                         uint64_t seed = 3) {
  ModelConfig c = config_preset(preset);
  c.n_vocab = 300;
  WriteOptions w;
  w.format = fmt;
  w.dtype = type;
  w.q4_k_m = q4km;
  w.seed = seed;
  std::string out = test::temp_dir() + (fmt == WriteFormat::GGUF ? "/m.gguf" : "/hf");
  write_model(c, default_tokenizer(c.n_vocab), random_values(seed), out, w);
  return out;
}

// Expected f32 values of a tensor after storage in `type`.
std::vector<float> expected_values(const TensorSpec& s, DType type, uint64_t seed) {
  int64_t n = 1;
  for (auto d : s.shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n)), out(v.size());
  random_values(seed)(s, v.data());
  const int64_t cols = s.shape.back();
  std::vector<uint8_t> q(dtype_row_bytes(type, cols));
  for (int64_t r = 0; r < n / cols; ++r) {
    quantize_row(type, v.data() + r * cols, q.data(), cols);
    dequantize_row(type, q.data(), out.data() + r * cols, cols);
  }
  return out;
}

struct Case {
  std::string preset;
  WriteFormat fmt;
  DType type;
  bool q4km;
};

class WriterRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(WriterRoundTrip, LoadsBackIdentical) {
  const Case& k = GetParam();
  std::string path = write_random(k.preset, k.fmt, k.type, k.q4km);
  Model m = load_model(path);
  ModelConfig ref = config_preset(k.preset);
  ref.n_vocab = 300;
  EXPECT_EQ(m.config.arch, ref.arch);
  EXPECT_EQ(m.config.n_embd, ref.n_embd);
  EXPECT_EQ(m.config.n_layer, ref.n_layer);
  EXPECT_EQ(m.config.n_head, ref.n_head);
  EXPECT_EQ(m.config.n_head_kv, ref.n_head_kv);
  EXPECT_EQ(m.config.n_ff, ref.n_ff);
  EXPECT_EQ(m.config.n_vocab, 300);
  EXPECT_EQ(m.config.tied_embeddings, ref.tied_embeddings);
  EXPECT_EQ(m.config.qkv_bias, ref.qkv_bias);
  EXPECT_FLOAT_EQ(m.config.rope_theta, ref.rope_theta);
  EXPECT_FLOAT_EQ(m.config.rms_eps, ref.rms_eps);
  EXPECT_EQ(m.config.rope_freq_factors(), ref.rope_freq_factors());
  EXPECT_EQ(m.tokenizer.tokens.size(), 300u);
  WriteOptions w;
  w.dtype = k.type;
  w.q4_k_m = k.q4km;
  for (const auto& s : expected_tensors(ref)) {
    const Tensor& t = m.tensor(s.name);
    DType want = writer_tensor_type(s, ref, w);
    EXPECT_EQ(t.type, want) << s.name;
    EXPECT_EQ(t.to_f32(), expected_values(s, want, 3)) << s.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, WriterRoundTrip,
    ::testing::Values(Case{"tiny-llama", WriteFormat::GGUF, DType::F32, false},
                      Case{"tiny-llama", WriteFormat::GGUF, DType::F16, false},
                      Case{"tiny-llama", WriteFormat::GGUF, DType::BF16, false},
                      Case{"tiny-llama", WriteFormat::GGUF, DType::Q8_0, false},
                      Case{"tiny-llama", WriteFormat::GGUF, DType::Q4_0, false},
                      Case{"tiny-qwen2", WriteFormat::GGUF, DType::Q4_K, false},
                      Case{"tiny-qwen2", WriteFormat::GGUF, DType::Q6_K, false},
                      Case{"tiny-qwen2", WriteFormat::GGUF, DType::F32, true},
                      Case{"tiny-qwen2", WriteFormat::GGUF, DType::F16, false},
                      Case{"tiny-llama3", WriteFormat::GGUF, DType::F32, false},
                      Case{"tiny-llama", WriteFormat::HuggingFace, DType::F32, false},
                      Case{"tiny-qwen2", WriteFormat::HuggingFace, DType::BF16, false},
                      Case{"tiny-llama3", WriteFormat::HuggingFace, DType::F16, false}),
    [](const auto& info) {
      return info.param.preset.substr(5) + "_" + (info.param.fmt == WriteFormat::GGUF ? "gguf" : "hf") + "_" +
             (info.param.q4km ? "Q4_K_M" : dtype_name(info.param.type));
    });

TEST(Writer, Q4KMixUsesQ6KWhereLlamaCppDoes) {
  ModelConfig c = config_preset("qwen2.5-0.5b");
  WriteOptions w;
  w.q4_k_m = true;
  auto type_of = [&](const std::string& n) {
    for (const auto& s : expected_tensors(c)) {
      if (s.name == n) return writer_tensor_type(s, c, w);
    }
    ADD_FAILURE() << n;
    return DType::F32;
  };
  // 896 columns are not a multiple of 256: Q4_K falls back to Q4_0 and Q6_K to Q8_0.
  EXPECT_EQ(type_of("blk.5.attn_q.weight"), DType::Q4_0);
  EXPECT_EQ(type_of("blk.0.attn_v.weight"), DType::Q8_0);
  EXPECT_EQ(type_of("blk.0.attn_norm.weight"), DType::F32);
  // ffn_down has 4864 = 19 x 256 columns: real K-quants.
  EXPECT_EQ(type_of("blk.0.ffn_down.weight"), DType::Q6_K);
  EXPECT_EQ(type_of("blk.4.ffn_down.weight"), DType::Q4_K);
}

// Rows of 256 columns, so K-quants are really used (tiny presets fall back to Q4_0/Q8_0).
TEST(Writer, KQuantModelsStoreKQuantsAndRoundTrip) {
  ModelConfig c = config_preset("tiny-llama");
  c.n_vocab = 300, c.n_embd = 256, c.n_head = 4, c.head_dim = 64, c.n_head_kv = 2, c.n_ff = 512;
  for (bool mix : {false, true}) {
    for (DType t : {DType::Q4_K, DType::Q6_K}) {
      if (mix && t == DType::Q6_K) continue;
      WriteOptions w;
      w.dtype = t;
      w.q4_k_m = mix;
      std::string out = test::temp_dir() + "/k.gguf";
      write_model(c, default_tokenizer(c.n_vocab), random_values(3), out, w);
      Model m = load_model(out);
      std::map<DType, int> seen;
      for (const auto& s : expected_tensors(c)) {
        const Tensor& tt = m.tensor(s.name);
        seen[tt.type]++;
        EXPECT_EQ(tt.type, writer_tensor_type(s, c, w)) << s.name;
        EXPECT_EQ(tt.to_f32(), expected_values(s, tt.type, 3)) << s.name;
      }
      if (mix) {
        EXPECT_GT(seen[DType::Q4_K], 0);
        EXPECT_GT(seen[DType::Q6_K], 0);
      } else {
        EXPECT_GT(seen[t], 0) << dtype_name(t) << " was requested but never stored";
      }
    }
  }
}

TEST(Writer, TokenizerIsPaddedToTheVocabulary) {
  ModelConfig c = config_preset("tiny-qwen2");
  c.n_vocab = 400;
  std::string out = test::temp_dir() + "/p.gguf";
  write_model(c, default_tokenizer(300), random_values(1), out, WriteOptions{});
  Model m = load_model(out);
  ASSERT_EQ(m.tokenizer.tokens.size(), 400u);
  EXPECT_EQ(m.tokenizer.tokens[350], "[PAD350]");
  EXPECT_EQ(m.tokenizer.types[350], TokenType::Unused);
}

TEST(Writer, SameSeedSameBytesOtherSeedOtherBytes) {
  auto a = test::read_bytes(write_random("tiny-llama", WriteFormat::GGUF, DType::F16, false, 9));
  auto b = test::read_bytes(write_random("tiny-llama", WriteFormat::GGUF, DType::F16, false, 9));
  auto c = test::read_bytes(write_random("tiny-llama", WriteFormat::GGUF, DType::F16, false, 10));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Convert, LlamaGgufToHfPermutesRopePairsAndBack) {
  std::string g1 = write_random("tiny-llama", WriteFormat::GGUF, DType::F32);
  Model m = load_model(g1);
  EXPECT_EQ(m.config.rope_pairing, RopePairing::Adjacent);
  std::string hf = test::temp_dir() + "/hf";
  WriteOptions w;
  w.format = WriteFormat::HuggingFace;
  write_model(m.config, m.tokenizer, model_values(m, RopePairing::NeoX), hf, w);
  Model h = load_model(hf);
  EXPECT_EQ(h.config.rope_pairing, RopePairing::NeoX);
  // Row 2i+1 of a GGUF (adjacent) head is row i + d/2 of the HF (neox) head.
  const int64_t hd = m.config.head_dim, D = m.config.n_embd;
  auto gq = m.tensor("blk.0.attn_q.weight").to_f32();
  auto hq = h.tensor("blk.0.attn_q.weight").to_f32();
  for (int64_t head = 0; head < m.config.n_head; ++head) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      for (int64_t col = 0; col < D; ++col) {
        ASSERT_EQ(gq[(head * hd + 2 * i) * D + col], hq[(head * hd + i) * D + col]);
        ASSERT_EQ(gq[(head * hd + 2 * i + 1) * D + col], hq[(head * hd + i + hd / 2) * D + col]);
      }
    }
  }
  EXPECT_EQ(m.tensor("blk.1.attn_v.weight").to_f32(), h.tensor("blk.1.attn_v.weight").to_f32());
  std::string g2 = test::temp_dir() + "/back.gguf";
  WriteOptions wg;
  write_model(h.config, h.tokenizer, model_values(h, RopePairing::Adjacent), g2, wg);
  Model back = load_model(g2);
  for (const auto& t : m.tensors()) EXPECT_EQ(t.to_f32(), back.tensor(t.name).to_f32()) << t.name;
}

TEST(Model, ParameterAndKvBytesCounts) {
  Model m = load_model(write_random("tiny-qwen2", WriteFormat::GGUF, DType::F16));
  const auto& c = m.config;
  int64_t per_layer = 2 * c.n_embd + c.n_embd * c.n_head * c.head_dim + c.n_head * c.head_dim +
                      2 * (c.n_embd * c.n_head_kv * c.head_dim + c.n_head_kv * c.head_dim) +
                      c.n_head * c.head_dim * c.n_embd + 3 * c.n_embd * c.n_ff;
  EXPECT_EQ(m.n_params(), c.n_vocab * c.n_embd + c.n_layer * per_layer + c.n_embd);
  EXPECT_EQ(m.kv_bytes_per_token(DType::F16), static_cast<size_t>(2 * c.n_layer * c.n_head_kv * c.head_dim * 2));
  EXPECT_EQ(m.kv_bytes_per_token(DType::F32), static_cast<size_t>(2 * c.n_layer * c.n_head_kv * c.head_dim * 4));
}

TEST(Model, ShardedHuggingFaceFolder) {
  std::string hf = write_random("tiny-qwen2", WriteFormat::HuggingFace, DType::F32);
  SafetensorsFile whole = safetensors_read(hf + "/model.safetensors");
  std::vector<SafetensorsEntry> a, b;
  std::vector<const SafetensorsTensor*> ta, tb;
  std::string index = "{\"weight_map\": {";
  for (size_t i = 0; i < whole.tensors.size(); ++i) {
    const auto& t = whole.tensors[i];
    bool first = i < whole.tensors.size() / 2;
    (first ? a : b).push_back({t.name, t.type, t.shape});
    (first ? ta : tb).push_back(&t);
    index += (i ? ",\"" : "\"") + t.name + "\":\"" + (first ? "s1.safetensors" : "s2.safetensors") + "\"";
  }
  index += "}}";
  safetensors_write(hf + "/s1.safetensors", a, {}, [&](size_t i, uint8_t* d) { std::memcpy(d, ta[i]->data, ta[i]->nbytes); });
  safetensors_write(hf + "/s2.safetensors", b, {}, [&](size_t i, uint8_t* d) { std::memcpy(d, tb[i]->data, tb[i]->nbytes); });
  Model ref = load_model(hf);
  std::vector<std::pair<std::string, std::vector<float>>> want;
  for (const auto& t : ref.tensors()) want.emplace_back(t.name, t.to_f32());
  fs::remove(hf + "/model.safetensors");
  std::ofstream(hf + "/model.safetensors.index.json") << index;
  Model m = load_model(hf);
  for (const auto& [n, v] : want) EXPECT_EQ(m.tensor(n).to_f32(), v) << n;
  // An index naming a tensor its shard does not contain is an error.
  std::ofstream(hf + "/model.safetensors.index.json") << R"({"weight_map": {"model.norm.weight": "s1.safetensors"}})";
  EXPECT_THAT(test::error_of([&] { load_model(hf); }), HasSubstr("index lists tensor 'model.norm.weight' in s1.safetensors"));
}

// Rewrites a GGUF model with metadata edits and a tensor filter.
std::string rewrite_gguf(const std::string& src, const std::function<void(Metadata&)>& edit,
                         const std::function<bool(const std::string&)>& keep = nullptr,
                         const std::string& extra_tensor = "") {
  GGUFFile g = gguf_read(src);
  Metadata md = g.meta;
  edit(md);
  GGUFWriter w(md);
  std::vector<const GGUFTensorInfo*> ts;
  for (const auto& t : g.tensors) {
    if (keep && !keep(t.name)) continue;
    w.add_tensor(t.name, t.type, t.shape);
    ts.push_back(&t);
  }
  if (!extra_tensor.empty()) w.add_tensor(extra_tensor, DType::F32, {4});
  std::string out = test::temp_dir() + "/edited.gguf";
  w.write(out, [&](size_t i, uint8_t* d) {
    if (i < ts.size()) std::memcpy(d, ts[i]->data, ts[i]->nbytes);
    else std::memset(d, 0, 16);
  });
  return out;
}

TEST(ModelBad, ShapeDoesNotMatchConfig) {
  std::string p = rewrite_gguf(write_random("tiny-llama", WriteFormat::GGUF, DType::F32),
                               [](Metadata& m) { m.set("llama.feed_forward_length", MetaValue::of_u32(128)); });
  EXPECT_THAT(test::error_of([&] { load_model(p); }),
              HasSubstr("tensor 'blk.0.ffn_gate.weight' has shape [160, 64] but the config"));
}

TEST(ModelBad, UnsupportedArchitecture) {
  std::string p = rewrite_gguf(write_random("tiny-llama", WriteFormat::GGUF, DType::F32),
                               [](Metadata& m) { m.set("general.architecture", MetaValue::of_str("gptneox")); });
  EXPECT_THAT(test::error_of([&] { load_model(p); }), HasSubstr("unsupported architecture 'gptneox'"));
}

TEST(ModelBad, MissingTensor) {
  std::string p = rewrite_gguf(write_random("tiny-llama", WriteFormat::GGUF, DType::F32), [](Metadata&) {},
                               [](const std::string& n) { return n != "blk.1.ffn_up.weight"; });
  EXPECT_THAT(test::error_of([&] { load_model(p); }), HasSubstr("missing tensor 'blk.1.ffn_up.weight'"));
}

TEST(ModelBad, UnexpectedTensor) {
  std::string p = rewrite_gguf(write_random("tiny-llama", WriteFormat::GGUF, DType::F32), [](Metadata&) {}, nullptr,
                               "blk.0.mystery.weight");
  EXPECT_THAT(test::error_of([&] { load_model(p); }), HasSubstr("unexpected tensor 'blk.0.mystery.weight'"));
}

TEST(ModelBad, MissingHyperParameter) {
  std::string p = rewrite_gguf(write_random("tiny-llama", WriteFormat::GGUF, DType::F32), [](Metadata& m) {
    Metadata copy;
    for (const auto& [k, v] : m.items()) {
      if (k != "llama.block_count") copy.set(k, v);
    }
    m = copy;
  });
  EXPECT_THAT(test::error_of([&] { load_model(p); }), HasSubstr("missing metadata key 'llama.block_count'"));
}

TEST(ModelBad, AbsurdHyperParameter) {
  std::string p = rewrite_gguf(write_random("tiny-llama", WriteFormat::GGUF, DType::F32),
                               [](Metadata& m) { m.set("llama.attention.head_count_kv", MetaValue::of_u32(3)); });
  EXPECT_THAT(test::error_of([&] { load_model(p); }), HasSubstr("head count 4 is not a multiple of the KV head count 3"));
}

TEST(ModelBad, TruncatedModelFile) {
  std::string p = write_random("tiny-llama", WriteFormat::GGUF, DType::F32);
  auto bytes = test::read_bytes(p);
  bytes.resize(bytes.size() / 2);
  test::write_bytes(p, bytes);
  EXPECT_THAT(test::error_of([&] { load_model(p); }), HasSubstr("points outside the file"));
}

TEST(ModelBad, UnrecognisedFormat) {
  std::string p = test::temp_dir() + "/junk.bin";
  test::write_bytes(p, std::vector<uint8_t>(1000, 0xFF));
  EXPECT_THAT(test::error_of([&] { load_model(p); }), HasSubstr("junk.bin: unrecognised model format"));
  EXPECT_THAT(test::error_of([&] { load_model("/no/such/model.gguf"); }), HasSubstr("no such file or directory"));
}

TEST(ModelBad, HuggingFaceConfigProblems) {
  std::string hf = write_random("tiny-llama", WriteFormat::HuggingFace, DType::F32);
  std::string cfg = hf + "/config.json";
  auto good = test::read_bytes(cfg);
  std::ofstream(cfg) << "{ this is not json";
  EXPECT_THAT(test::error_of([&] { load_model(hf); }), HasSubstr("config.json: not valid JSON"));
  std::ofstream(cfg) << R"({"model_type": "bert"})";
  EXPECT_THAT(test::error_of([&] { load_model(hf); }), HasSubstr("unsupported model_type 'bert'"));
  std::ofstream(cfg) << R"({"model_type": "llama", "vocab_size": "many"})";
  EXPECT_THAT(test::error_of([&] { load_model(hf); }), HasSubstr("\"vocab_size\" has the wrong type"));
  test::write_bytes(cfg, good);
  EXPECT_NO_THROW(load_model(hf));
  fs::remove(hf + "/model.safetensors");
  EXPECT_THAT(test::error_of([&] { load_model(hf); }), HasSubstr("no model.safetensors"));
}

TEST(ModelBad, HuggingFaceWeightsDoNotMatchConfig) {
  std::string hf = write_random("tiny-llama", WriteFormat::HuggingFace, DType::F32);
  std::string cfg = hf + "/config.json";
  std::string text(reinterpret_cast<const char*>(test::read_bytes(cfg).data()), test::read_bytes(cfg).size());
  auto pos = text.find("\"intermediate_size\": 160");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 24, "\"intermediate_size\": 161");
  std::ofstream(cfg) << text;
  EXPECT_THAT(test::error_of([&] { load_model(hf); }), HasSubstr("has shape [160, 64] but the config"));
}

}  // namespace
}  // namespace cc
