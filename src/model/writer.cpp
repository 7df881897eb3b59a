#include "model/writer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "simd/convert.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/hf_names.h"
#include "tokenizer/tokenizer_io.h"

namespace cc {

namespace fs = std::filesystem;

namespace {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Permutes the rows of a Q or K projection (or bias) between RoPE pairings, head by head.
void repair_rows(float* data, int64_t rows, int64_t cols, int64_t head_dim, RopePairing from, RopePairing to) {
  if (from == to) return;
  std::vector<float> tmp(static_cast<size_t>(head_dim * cols));
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < rows / head_dim; ++h) {
    float* head = data + h * head_dim * cols;
    std::copy(head, head + head_dim * cols, tmp.begin());
    for (int64_t i = 0; i < half; ++i) {
      // NeoX rows i and i+half form the pair that Adjacent stores at rows 2i and 2i+1.
      int64_t neox_a = i, neox_b = i + half, adj_a = 2 * i, adj_b = 2 * i + 1;
      int64_t src_a = from == RopePairing::NeoX ? neox_a : adj_a;
      int64_t src_b = from == RopePairing::NeoX ? neox_b : adj_b;
      int64_t dst_a = to == RopePairing::NeoX ? neox_a : adj_a;
      int64_t dst_b = to == RopePairing::NeoX ? neox_b : adj_b;
      std::copy_n(tmp.begin() + src_a * cols, cols, head + dst_a * cols);
      std::copy_n(tmp.begin() + src_b * cols, cols, head + dst_b * cols);
    }
  }
}

bool use_more_bits(int64_t layer, int64_t n) {
  return layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2;
}

int64_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(name.substr(4, name.find('.', 4) - 4));
}

uint32_t gguf_file_type(const WriteOptions& o) {
  if (o.q4_k_m) return 15;
  switch (o.dtype) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q8_0: return 7;
    case DType::Q4_K: return 14;  // Q4_K_S
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
  }
  return 0;
}

}  // namespace

RopePairing file_rope_pairing(WriteFormat f, Arch a) {
  if (f == WriteFormat::GGUF && a == Arch::Llama) return RopePairing::Adjacent;
  return RopePairing::NeoX;
}

TensorValues random_values(uint64_t seed) {
  return [seed](const TensorSpec& spec, float* dst) {
    uint64_t s = seed ^ fnv1a(spec.name);
    const int64_t n = numel(spec.shape);
    float center = 0, amp;
    if (ends_with(spec.name, "norm.weight")) {
      center = 1.0f, amp = 0.1f;
    } else if (ends_with(spec.name, ".bias")) {
      amp = 0.1f;
    } else if (spec.name == "token_embd.weight") {
      amp = std::sqrt(3.0f);
    } else {
      amp = std::sqrt(3.0f / static_cast<float>(spec.shape.back()));
    }
    for (int64_t i = 0; i < n; ++i) {
      // 24 random bits -> uniform in [-1, 1)
      float u = static_cast<float>(splitmix(s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
      dst[i] = center + amp * u;
    }
  };
}

TensorValues model_values(const Model& m, RopePairing target) {
  return [&m, target](const TensorSpec& spec, float* dst) {
    const Tensor& t = m.tensor(spec.name);
    if (t.shape != spec.shape) fail(m.path, ": tensor '", spec.name, "' shape differs from the config");
    std::vector<float> v = t.to_f32();
    std::copy(v.begin(), v.end(), dst);
    bool qk = spec.name.find(".attn_q.") != std::string::npos || spec.name.find(".attn_k.") != std::string::npos;
    if (qk) {
      int64_t cols = spec.shape.size() == 2 ? spec.shape[1] : 1;
      repair_rows(dst, spec.shape[0], cols, m.config.head_dim, m.config.rope_pairing, target);
    }
  };
}

DType writer_tensor_type(const TensorSpec& spec, const ModelConfig& c, const WriteOptions& o) {
  if (spec.is_vector) return DType::F32;
  DType t = o.dtype;
  if (o.q4_k_m) {
    t = DType::Q4_K;
    int64_t l = layer_of(spec.name);
    bool more = (ends_with(spec.name, "attn_v.weight") || ends_with(spec.name, "ffn_down.weight")) &&
                use_more_bits(l, c.n_layer);
    if (spec.name == "output.weight" || (spec.name == "token_embd.weight" && c.tied_embeddings) || more) {
      t = DType::Q6_K;
    }
  }
  const int64_t cols = spec.shape.back();
  auto fits = [&](DType d) { return cols % dtype_info(d).block_elems == 0; };
  if (t == DType::Q4_K && !fits(t)) t = DType::Q4_0;
  if (t == DType::Q6_K && !fits(t)) t = DType::Q8_0;
  if (t == DType::Q4_0 && !fits(t)) t = DType::Q8_0;
  if (t == DType::Q8_0 && !fits(t)) t = DType::F16;
  return t;
}

TokenizerSpec default_tokenizer(int64_t n_vocab) {
  if (n_vocab < 256 + 4) fail("default tokenizer needs a vocabulary of at least 260 tokens, got ", n_vocab);
  TokenizerSpec t;
  t.kind = TokenizerKind::BPE;
  t.pre = "qwen2";
  // GPT-2 byte-to-unicode mapping: printable bytes map to themselves, the rest to U+0100+.
  int extra = 0;
  std::vector<std::string> byte_piece(256);
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
  };
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    byte_piece[b] = utf8(printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++));
  }
  for (int b = 0; b < 256; ++b) {
    t.tokens.push_back(byte_piece[b]);
    t.types.push_back(TokenType::Normal);
  }
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    t.tokens.push_back(s);
    t.types.push_back(TokenType::Control);
  }
  t.eos_id = 256;
  t.bos_id = 256;
  t.pad_id = 256;
  t.eot_ids = {258};
  t.add_bos = false;
  while (static_cast<int64_t>(t.tokens.size()) < n_vocab) {
    t.tokens.push_back(cat("<|pad_", t.tokens.size(), "|>"));
    t.types.push_back(TokenType::Unused);
  }
  t.chat_template =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  return t;
}

void write_model(const ModelConfig& config, const TokenizerSpec& tokenizer, const TensorValues& values,
                 const std::string& out, const WriteOptions& opts) {
  config.validate("model writer");
  if (static_cast<int64_t>(tokenizer.tokens.size()) > config.n_vocab) {
    fail("model writer: tokenizer has ", tokenizer.tokens.size(), " tokens but the config's vocabulary is ",
         config.n_vocab);
  }
  TokenizerSpec tok = tokenizer;
  pad_tokenizer(tok, config.n_vocab);
  std::vector<TensorSpec> specs = expected_tensors(config);
  std::vector<float> freqs = config.rope_freq_factors();
  const std::string name = opts.name.empty() ? config.name : opts.name;

  if (opts.format == WriteFormat::GGUF) {
    Metadata md;
    const std::string a = std::string(arch_name(config.arch)) + ".";
    md.set("general.architecture", MetaValue::of_str(arch_name(config.arch)));
    md.set("general.name", MetaValue::of_str(name));
    md.set("general.file_type", MetaValue::of_u32(gguf_file_type(opts)));
    if (dtype_is_quantized(opts.dtype) || opts.q4_k_m) md.set("general.quantization_version", MetaValue::of_u32(2));
    md.set(a + "vocab_size", MetaValue::of_u32(static_cast<uint32_t>(config.n_vocab)));
    md.set(a + "context_length", MetaValue::of_u32(static_cast<uint32_t>(config.n_ctx_train)));
    md.set(a + "embedding_length", MetaValue::of_u32(static_cast<uint32_t>(config.n_embd)));
    md.set(a + "block_count", MetaValue::of_u32(static_cast<uint32_t>(config.n_layer)));
    md.set(a + "feed_forward_length", MetaValue::of_u32(static_cast<uint32_t>(config.n_ff)));
    md.set(a + "attention.head_count", MetaValue::of_u32(static_cast<uint32_t>(config.n_head)));
    md.set(a + "attention.head_count_kv", MetaValue::of_u32(static_cast<uint32_t>(config.n_head_kv)));
    md.set(a + "attention.layer_norm_rms_epsilon", MetaValue::of_f32(config.rms_eps));
    md.set(a + "rope.freq_base", MetaValue::of_f32(config.rope_theta));
    md.set(a + "rope.dimension_count", MetaValue::of_u32(static_cast<uint32_t>(config.head_dim)));
    if (config.head_dim != config.n_embd / config.n_head) {
      md.set(a + "attention.key_length", MetaValue::of_u32(static_cast<uint32_t>(config.head_dim)));
      md.set(a + "attention.value_length", MetaValue::of_u32(static_cast<uint32_t>(config.head_dim)));
    }
    if (config.rope_scaling.type == RopeScalingType::Linear) {
      md.set(a + "rope.scaling.type", MetaValue::of_str("linear"));
      md.set(a + "rope.scaling.factor", MetaValue::of_f32(config.rope_scaling.factor));
    }
    tokenizer_to_gguf(tok, md);

    // One list of tensors in file order: the RoPE factors (Llama-3 scaling) first, then the
    // weights, each with its storage type and the function that produces its f32 values.
    struct Entry {
      TensorSpec spec;
      DType type;
    };
    std::vector<Entry> entries;
    if (!freqs.empty()) entries.push_back({{"rope_freqs.weight", {config.head_dim / 2}, true}, DType::F32});
    for (const auto& s : specs) entries.push_back({s, writer_tensor_type(s, config, opts)});
    GGUFWriter w(md);
    for (const auto& e : entries) w.add_tensor(e.spec.name, e.type, e.spec.shape);
    std::vector<float> buf;
    w.write(out, [&](size_t i, uint8_t* dst) {
      const Entry& e = entries[i];
      buf.resize(static_cast<size_t>(numel(e.spec.shape)));
      if (e.spec.name == "rope_freqs.weight") {
        buf = freqs;
      } else {
        values(e.spec, buf.data());
      }
      const int64_t cols = e.spec.shape.back(), rows = numel(e.spec.shape) / cols;
      const size_t rb = dtype_row_bytes(e.type, cols);
      for (int64_t r = 0; r < rows; ++r) quantize_row(e.type, buf.data() + r * cols, dst + r * rb, cols);
    });
    return;
  }

  // Hugging Face folder.
  if (opts.q4_k_m || dtype_is_quantized(opts.dtype)) {
    fail("model writer: Hugging Face folders hold F32, F16 or BF16 weights, not ",
         opts.q4_k_m ? "Q4_K_M" : dtype_name(opts.dtype));
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) fail(out, ": cannot create folder: ", ec.message());
  nlohmann::json cj = {
      {"architectures", {config.arch == Arch::Llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM"}},
      {"model_type", arch_name(config.arch)},
      {"_name_or_path", name},
      {"vocab_size", config.n_vocab},
      {"hidden_size", config.n_embd},
      {"num_hidden_layers", config.n_layer},
      {"num_attention_heads", config.n_head},
      {"num_key_value_heads", config.n_head_kv},
      {"head_dim", config.head_dim},
      {"intermediate_size", config.n_ff},
      {"max_position_embeddings", config.n_ctx_train},
      {"rms_norm_eps", config.rms_eps},
      {"rope_theta", config.rope_theta},
      {"tie_word_embeddings", config.tied_embeddings},
      {"hidden_act", "silu"},
      {"torch_dtype", opts.dtype == DType::F32 ? "float32" : opts.dtype == DType::F16 ? "float16" : "bfloat16"},
  };
  if (tok.bos_id >= 0) cj["bos_token_id"] = tok.bos_id;
  if (tok.eos_id >= 0) cj["eos_token_id"] = tok.eos_id;
  const auto& rs = config.rope_scaling;
  if (rs.type == RopeScalingType::Linear) {
    cj["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rs.factor}};
  } else if (rs.type == RopeScalingType::Llama3) {
    if (!config.rope_freqs.empty()) {
      fail("model writer: this model's RoPE factors come from a GGUF rope_freqs tensor; the "
           "llama3 scaling parameters needed by config.json are unknown");
    }
    cj["rope_scaling"] = {{"rope_type", "llama3"},
                          {"factor", rs.factor},
                          {"low_freq_factor", rs.low_freq_factor},
                          {"high_freq_factor", rs.high_freq_factor},
                          {"original_max_position_embeddings", rs.original_context}};
  } else {
    cj["rope_scaling"] = nullptr;
  }
  std::string cs = cj.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_file_atomic((fs::path(out) / "config.json").string(), cs.data(), cs.size());

  std::vector<SafetensorsEntry> entries;
  for (const auto& s : specs) entries.push_back({canonical_to_hf(s.name), writer_tensor_type(s, config, opts), s.shape});
  std::vector<float> buf;
  safetensors_write((fs::path(out) / "model.safetensors").string(), entries, {{"format", "pt"}},
                    [&](size_t i, uint8_t* dst) {
                      const TensorSpec& s = specs[i];
                      buf.resize(static_cast<size_t>(numel(s.shape)));
                      values(s, buf.data());
                      quantize_row(entries[i].type, buf.data(), dst, numel(s.shape));
                    });
  std::string tj = tokenizer_to_hf_json(tok);
  write_file_atomic((fs::path(out) / "tokenizer.json").string(), tj.data(), tj.size());
  std::string tc = tokenizer_config_to_hf_json(tok);
  write_file_atomic((fs::path(out) / "tokenizer_config.json").string(), tc.data(), tc.size());
}

}  // namespace cc
