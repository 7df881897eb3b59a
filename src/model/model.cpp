#include "model/model.h"

#include <filesystem>

#include "base/error.h"
#include "simd/convert.h"

namespace cc {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void Tensor::row_f32(int64_t r, float* dst) const {
  CC_ASSERT(r >= 0 && r < rows());
  const size_t rb = dtype_row_bytes(type, cols());
  dequantize_row(type, data + static_cast<size_t>(r) * rb, dst, cols());
}

std::vector<float> Tensor::to_f32() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  const int64_t nr = numel() / cols();
  const size_t rb = dtype_row_bytes(type, cols());
  for (int64_t r = 0; r < nr; ++r) {
    dequantize_row(type, data + static_cast<size_t>(r) * rb, out.data() + r * cols(), cols());
  }
  return out;
}

const char* model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::GGUF: return "gguf";
    case ModelFormat::HuggingFace: return "huggingface";
    case ModelFormat::Llama2c: return "llama2c";
  }
  return "?";
}

void Model::add_tensor(Tensor t) {
  if (index_.count(t.name)) fail(path, ": duplicate tensor '", t.name, "'");
  index_[t.name] = tensors_.size();
  tensors_.push_back(std::move(t));
}

const Tensor* Model::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const Tensor& Model::tensor(const std::string& name) const {
  const Tensor* t = find(name);
  if (!t) fail(path, ": missing tensor '", name, "'");
  return *t;
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const auto& t : tensors_) {
    if (t.name == "rope_freqs.weight") continue;  // derived constants, not parameters
    n += t.numel();
  }
  return n;
}

size_t Model::weight_bytes() const {
  size_t n = 0;
  for (const auto& t : tensors_) n += t.nbytes;
  return n;
}

size_t Model::kv_bytes_per_token(DType kv_type) const {
  const int64_t per_layer = 2 * config.n_head_kv * config.head_dim;  // K and V
  return dtype_row_bytes(kv_type, per_layer) * static_cast<size_t>(config.n_layer);
}

static std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

void pad_tokenizer(TokenizerSpec& t, int64_t n_vocab) {
  const bool scores = !t.scores.empty();
  while (static_cast<int64_t>(t.tokens.size()) < n_vocab) {
    t.tokens.push_back(cat("[PAD", t.tokens.size(), "]"));
    if (!t.types.empty()) t.types.push_back(TokenType::Unused);
    if (scores) t.scores.push_back(0.0f);
  }
}

void validate_model(const Model& m) {
  m.config.validate(m.path);
  std::map<std::string, bool> seen;
  for (const auto& t : m.tensors()) seen[t.name] = false;
  for (const auto& spec : expected_tensors(m.config)) {
    const Tensor* t = m.find(spec.name);
    if (!t) {
      fail(m.path, ": missing tensor '", spec.name, "' (expected shape ", shape_str(spec.shape), ")");
    }
    if (t->shape != spec.shape) {
      fail(m.path, ": tensor '", spec.name, "' has shape ", shape_str(t->shape), " but the config (",
           arch_name(m.config.arch), ", embd ", m.config.n_embd, ", heads ", m.config.n_head, "/",
           m.config.n_head_kv, ", ff ", m.config.n_ff, ", vocab ", m.config.n_vocab, ") needs ",
           shape_str(spec.shape));
    }
    seen[spec.name] = true;
  }
  if (const Tensor* rf = m.find("rope_freqs.weight")) {
    if (rf->shape != std::vector<int64_t>{m.config.head_dim / 2}) {
      fail(m.path, ": tensor 'rope_freqs.weight' has shape ", shape_str(rf->shape), ", expected [",
           m.config.head_dim / 2, "]");
    }
    seen["rope_freqs.weight"] = true;
  }
  for (const auto& [name, ok] : seen) {
    if (!ok) fail(m.path, ": unexpected tensor '", name, "' for architecture ", arch_name(m.config.arch));
  }
  const size_t nt = m.tokenizer.tokens.size();
  if (nt == 0) fail(m.path, ": the model has no tokenizer");
  if (static_cast<int64_t>(nt) > m.config.n_vocab) {
    fail(m.path, ": tokenizer has ", nt, " tokens but the embedding has only ", m.config.n_vocab, " rows");
  }
}

}  // namespace cc
