// Format detection and the three loaders (GGUF, Hugging Face folder, llama2.c).
#include <malloc.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"
#include "model/hf_names.h"
#include "model/model.h"
#include "tokenizer/tokenizer_io.h"

namespace cc {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// GGUF

Model load_gguf(const std::string& path) {
  auto g = std::make_shared<GGUFFile>(gguf_read(path));
  Model m;
  m.path = path;
  m.format = ModelFormat::GGUF;
  const Metadata& kv = g->meta;
  const std::string arch = kv.get_str("general.architecture");
  ModelConfig& c = m.config;
  if (arch == "llama") {
    c.arch = Arch::Llama;
    c.rope_pairing = RopePairing::Adjacent;  // llama.cpp's convert permutes HF Q/K for "llama"
  } else if (arch == "qwen2") {
    c.arch = Arch::Qwen2;
    c.rope_pairing = RopePairing::NeoX;
    c.qkv_bias = true;
  } else {
    fail(path, ": unsupported architecture '", arch, "' (supported: llama, qwen2)");
  }
  const std::string a = arch + ".";
  c.name = kv.get_str("general.name", "");
  c.n_embd = kv.get_int(a + "embedding_length");
  c.n_layer = kv.get_int(a + "block_count");
  c.n_ff = kv.get_int(a + "feed_forward_length");
  c.n_head = kv.get_int(a + "attention.head_count");
  c.n_head_kv = kv.get_int(a + "attention.head_count_kv", c.n_head);
  c.n_ctx_train = kv.get_int(a + "context_length", 2048);
  c.head_dim = kv.get_int(a + "attention.key_length", c.n_head > 0 ? c.n_embd / c.n_head : 0);
  if (kv.has(a + "attention.value_length") && kv.get_int(a + "attention.value_length") != c.head_dim) {
    fail(path, ": key_length and value_length differ (unsupported)");
  }
  if (kv.has(a + "rope.dimension_count") && kv.get_int(a + "rope.dimension_count") != c.head_dim) {
    fail(path, ": partial RoPE (rope.dimension_count ", kv.get_int(a + "rope.dimension_count"),
         " != head dimension ", c.head_dim, ") is not supported");
  }
  c.rms_eps = static_cast<float>(kv.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(kv.get_float(a + "rope.freq_base", 10000.0));
  std::string scaling = kv.get_str(a + "rope.scaling.type", "none");
  if (scaling == "linear") {
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = static_cast<float>(kv.get_float(a + "rope.scaling.factor", 1.0));
  } else if (scaling != "none") {
    fail(path, ": rope scaling type '", scaling, "' is not supported (none, linear; llama3 comes as a rope_freqs tensor)");
  }
  for (const auto& ti : g->tensors) {
    m.add_tensor({ti.name, ti.type, ti.shape, ti.data, ti.nbytes});
  }
  if (const Tensor* rf = m.find("rope_freqs.weight")) {
    if (rf->type != DType::F32) fail(path, ": rope_freqs.weight must be F32");
    c.rope_freqs = rf->to_f32();
    c.rope_scaling.type = RopeScalingType::Llama3;
  }
  c.tied_embeddings = m.find("output.weight") == nullptr;
  if (const Tensor* e = m.find("token_embd.weight"); e && e->shape.size() == 2) {
    c.n_vocab = e->shape[0];
  }
  c.n_vocab = kv.get_int(a + "vocab_size", c.n_vocab);
  m.tokenizer = tokenizer_from_gguf(kv);
  m.keep_alive(g->file);  // only the mapping: the parsed metadata (MiB for a large vocabulary) is freed
  // The metadata's pages of the mapping were read once, by the parse; they need not stay resident
  // (3.6 MiB for a 150k vocabulary: the token strings and merges).
  size_t data_start = g->file->size();
  for (const auto& ti : g->tensors) data_start = std::min(data_start, static_cast<size_t>(ti.data - g->file->data()));
  g->file->release(0, data_start);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face folder

template <typename T>
T json_get(const nlohmann::json& j, const char* key, const std::string& src) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) fail(src, ": missing \"", key, "\"");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(src, ": \"", key, "\" has the wrong type");
  }
}
template <typename T>
T json_get(const nlohmann::json& j, const char* key, const std::string& src, T def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  return json_get<T>(j, key, src);
}

ModelConfig hf_config(const std::string& cfg_path) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(read_text_file(cfg_path));
  } catch (const json::exception& e) {
    fail(cfg_path, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(cfg_path, ": not a JSON object");
  ModelConfig c;
  const std::string mt = json_get<std::string>(j, "model_type", cfg_path, "");
  if (mt == "llama") {
    c.arch = Arch::Llama;
    c.qkv_bias = json_get<bool>(j, "attention_bias", cfg_path, false);
    if (c.qkv_bias) fail(cfg_path, ": llama with attention_bias is not supported");
  } else if (mt == "qwen2") {
    c.arch = Arch::Qwen2;
    c.qkv_bias = true;
  } else {
    fail(cfg_path, ": unsupported model_type '", mt, "' (supported: llama, qwen2)");
  }
  c.rope_pairing = RopePairing::NeoX;  // HF rotate_half layout
  c.name = json_get<std::string>(j, "_name_or_path", cfg_path, "");
  c.n_vocab = json_get<int64_t>(j, "vocab_size", cfg_path);
  c.n_embd = json_get<int64_t>(j, "hidden_size", cfg_path);
  c.n_layer = json_get<int64_t>(j, "num_hidden_layers", cfg_path);
  c.n_head = json_get<int64_t>(j, "num_attention_heads", cfg_path);
  c.n_head_kv = json_get<int64_t>(j, "num_key_value_heads", cfg_path, c.n_head);
  c.head_dim = json_get<int64_t>(j, "head_dim", cfg_path, c.n_head > 0 ? c.n_embd / c.n_head : 0);
  c.n_ff = json_get<int64_t>(j, "intermediate_size", cfg_path);
  c.n_ctx_train = json_get<int64_t>(j, "max_position_embeddings", cfg_path, 2048);
  c.rms_eps = static_cast<float>(json_get<double>(j, "rms_norm_eps", cfg_path, 1e-6));
  c.rope_theta = static_cast<float>(json_get<double>(j, "rope_theta", cfg_path, 10000.0));
  c.tied_embeddings = json_get<bool>(j, "tie_word_embeddings", cfg_path, false);
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) fail(cfg_path, ": rope_scaling must be an object or null");
    std::string t = json_get<std::string>(*it, "rope_type", cfg_path, "");
    if (t.empty()) t = json_get<std::string>(*it, "type", cfg_path, "");
    if (t == "linear") {
      c.rope_scaling.type = RopeScalingType::Linear;
      c.rope_scaling.factor = static_cast<float>(json_get<double>(*it, "factor", cfg_path));
    } else if (t == "llama3") {
      c.rope_scaling.type = RopeScalingType::Llama3;
      c.rope_scaling.factor = static_cast<float>(json_get<double>(*it, "factor", cfg_path));
      c.rope_scaling.low_freq_factor = static_cast<float>(json_get<double>(*it, "low_freq_factor", cfg_path));
      c.rope_scaling.high_freq_factor = static_cast<float>(json_get<double>(*it, "high_freq_factor", cfg_path));
      c.rope_scaling.original_context = json_get<int64_t>(*it, "original_max_position_embeddings", cfg_path);
    } else if (t != "default" && !t.empty()) {
      fail(cfg_path, ": rope_scaling type '", t, "' is not supported (linear, llama3)");
    }
  }
  return c;
}

Model load_hf(const std::string& dir) {
  using nlohmann::json;
  Model m;
  m.path = dir;
  m.format = ModelFormat::HuggingFace;
  m.config = hf_config((fs::path(dir) / "config.json").string());
  std::vector<std::string> files;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;  // tensor -> shard file
  std::error_code ec;
  if (fs::exists(index, ec)) {
    json j;
    try {
      j = json::parse(read_text_file(index.string()));
    } catch (const json::exception& e) {
      fail(index.string(), ": not valid JSON: ", e.what());
    }
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) fail(index.string(), ": missing \"weight_map\" object");
    std::set<std::string> uniq;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) fail(index.string(), ": weight_map entry '", it.key(), "' is not a string");
      std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
        fail(index.string(), ": shard name '", f, "' must be a file in the model folder");
      }
      weight_map[it.key()] = f;
      if (uniq.insert(f).second) files.push_back(f);
    }
  } else if (fs::exists(fs::path(dir) / "model.safetensors", ec)) {
    files.push_back("model.safetensors");
  } else {
    fail(dir, ": no model.safetensors or model.safetensors.index.json");
  }
  std::set<std::string> found;
  for (const auto& f : files) {
    auto st = std::make_shared<SafetensorsFile>(safetensors_read((fs::path(dir) / f).string()));
    for (const auto& t : st->tensors) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || it->second != f) continue;  // index says: not from this shard
      }
      found.insert(t.name);
      if (t.name.find("rotary_emb.inv_freq") != std::string::npos) continue;
      std::string cn = hf_to_canonical(t.name);
      if (cn == "output.weight" && m.config.tied_embeddings) continue;  // same as the embedding
      m.add_tensor({cn, t.type, t.shape, t.data, t.nbytes});
    }
    m.keep_alive(st);
  }
  for (const auto& [name, f] : weight_map) {
    if (!found.count(name)) fail(dir, ": index lists tensor '", name, "' in ", f, " but that file lacks it");
  }
  if (!m.config.tied_embeddings && !m.find("output.weight")) {
    fail(dir, ": config says tie_word_embeddings=false but there is no lm_head.weight");
  }
  m.tokenizer = tokenizer_from_hf(dir);
  return m;
}

// ---------------------------------------------------------------------------------------------
// llama2.c

Model load_llama2c(const std::string& path, const LoadOptions& opts) {
  auto f = std::make_shared<Llama2cFile>(llama2c_read(path));
  Model m;
  m.path = path;
  m.format = ModelFormat::Llama2c;
  const Llama2cConfig& h = f->config;
  ModelConfig& c = m.config;
  c.arch = Arch::Llama;
  c.name = fs::path(path).stem().string();
  c.n_vocab = h.vocab_size, c.n_embd = h.dim, c.n_layer = h.n_layers, c.n_head = h.n_heads;
  c.n_head_kv = h.n_kv_heads, c.head_dim = h.dim / h.n_heads, c.n_ff = h.hidden_dim;
  c.n_ctx_train = h.seq_len, c.rms_eps = 1e-5f, c.rope_theta = 10000.0f;
  c.rope_pairing = RopePairing::Adjacent;
  c.tied_embeddings = h.shared_classifier;
  for (const auto& t : f->tensors) m.add_tensor({t.name, DType::F32, t.shape, t.data, t.nbytes});
  std::string tok = opts.tokenizer_path;
  if (tok.empty()) {
    const fs::path d = fs::path(path).parent_path();
    for (const std::string& cand : std::vector<std::string>{"tokenizer.bin", cat("tok", h.vocab_size, ".bin")}) {
      std::error_code ec;
      if (fs::exists(d / cand, ec)) {
        tok = (d / cand).string();
        break;
      }
    }
    if (tok.empty()) {
      fail(path, ": llama2.c checkpoint has no tokenizer: put tokenizer.bin or tok", h.vocab_size,
           ".bin beside it or pass --tokenizer");
    }
  }
  m.tokenizer = tokenizer_from_llama2c(tok, h.vocab_size);
  m.keep_alive(f);
  return m;
}

}  // namespace

Model load_model(const std::string& path, const LoadOptions& opts) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": no such file or directory");
  Model m;
  if (fs::is_directory(path, ec)) {
    m = load_hf(path);
  } else if (path.size() > 12 && path.substr(path.size() - 12) == ".safetensors") {
    m = load_hf(fs::path(path).parent_path().string());
  } else {
    auto head = MappedFile::open(path);
    if (head->size() >= 4 && std::memcmp(head->data(), "GGUF", 4) == 0) {
      m = load_gguf(path);
    } else if (llama2c_sniff(head->data(), head->size())) {
      m = load_llama2c(path, opts);
    } else {
      fail(path, ": unrecognised model format (expected a GGUF file, a Hugging Face folder or a "
                 "llama2.c checkpoint)");
    }
  }
  validate_model(m);
  pad_tokenizer(m.tokenizer, m.config.n_vocab);
  // The parsed metadata (one MetaValue per vocabulary entry: tens of MiB for a 150k vocabulary)
  // is gone now; hand its freed heap back to the OS so it does not sit in the resident set
  // next to the weights for the whole run.
  malloc_trim(0);
  return m;
}

}  // namespace cc
