// Model = architecture config + named weight tensors + tokenizer, whatever file it came from.
// Tensor data is a view into the memory-mapped file(s): f32/f16/bf16 and quantized weights are
// never copied at load time.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "simd/dtype.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "tokenizer/spec.h"

namespace cc {

struct Tensor {
  std::string name;               // canonical (GGUF) name, e.g. "blk.3.ffn_up.weight"
  DType type = DType::F32;
  std::vector<int64_t> shape;     // row-major: [rows, cols] for matrices
  const uint8_t* data = nullptr;  // view into a mapped file
  size_t nbytes = 0;

  int64_t numel() const;
  int64_t rows() const { return shape.size() >= 2 ? shape[0] : 1; }
  int64_t cols() const { return shape.back(); }
  // Row r decoded to f32 (dst holds cols() floats). Works for every supported dtype.
  void row_f32(int64_t r, float* dst) const;
  // The whole tensor decoded to f32 (a copy: use for tests and conversion, not inference).
  std::vector<float> to_f32() const;
};

enum class ModelFormat { GGUF, HuggingFace, Llama2c };
const char* model_format_name(ModelFormat f);

struct LoadOptions {
  // llama2.c checkpoints carry no tokenizer: path of tokenizer.bin. Empty: look beside the
  // checkpoint for tokenizer.bin, then tok<vocab>.bin.
  std::string tokenizer_path;
};

class Model {
 public:
  ModelConfig config;
  TokenizerSpec tokenizer;
  ModelFormat format = ModelFormat::GGUF;
  std::string path;

  const Tensor& tensor(const std::string& name) const;  // throws naming the model and tensor
  const Tensor* find(const std::string& name) const;
  const std::vector<Tensor>& tensors() const { return tensors_; }

  int64_t n_params() const;          // every stored element once (tied embedding counted once)
  size_t weight_bytes() const;       // bytes of all tensor data
  // Bytes of K and V for one token across all layers in the given cache dtype.
  size_t kv_bytes_per_token(DType kv_type) const;

  // Loader internals: add tensors and keep their backing storage alive.
  void add_tensor(Tensor t);
  void keep_alive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

 private:
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t> index_;
  std::vector<std::shared_ptr<const void>> owners_;
};

// Detects the format (GGUF magic, a Hugging Face folder or its .safetensors/config.json, a
// llama2.c checkpoint), loads config, tensors and tokenizer, and validates every tensor's
// presence, shape and type against the config. Throws cc::Error naming the file and problem.
Model load_model(const std::string& path, const LoadOptions& opts = {});

// Pads the tokenizer with "[PAD<id>]" tokens of type Unused up to n_vocab entries, as
// llama.cpp's converter does: every embedding row then has a token (llama.cpp requires it, and
// a sampled id always decodes).
void pad_tokenizer(TokenizerSpec& t, int64_t n_vocab);

// Validation shared by all loaders (exposed for tests): every expected tensor present with the
// expected shape, no unknown tensors, vocabulary size consistent with the tokenizer.
void validate_model(const Model& m);

}  // namespace cc
