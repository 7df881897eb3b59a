// The model writer: GGUF files and Hugging Face folders, from random seeded weights (for
// tests and benchmarks of any config) or from a loaded Model (format conversion).
#pragma once
#include <functional>
#include <string>

#include "model/model.h"

namespace cc {

enum class WriteFormat { GGUF, HuggingFace };

struct WriteOptions {
  WriteFormat format = WriteFormat::GGUF;
  // Weight type of matrices (1-D norms and biases always stay F32). Quantized types whose
  // block does not divide a row fall back: Q4_K -> Q4_0 -> Q8_0 -> F16 (llama.cpp does the same
  // kind of fallback). HF folders take F32, F16 or BF16 only.
  DType dtype = DType::F32;
  bool q4_k_m = false;  // llama.cpp's Q4_K_M mix: Q4_K, with Q6_K for output / some attn_v, ffn_down
  uint64_t seed = 42;   // random weights: same seed + config = same bytes
  std::string name;     // general.name / _name_or_path; default: config.name
};

// Fills dst (numel floats, row-major) with the values of the tensor described by spec.
using TensorValues = std::function<void(const TensorSpec& spec, float* dst)>;

// Seeded random values: matrices uniform with std 1/sqrt(cols), embedding std 1, norms 1+-0.1,
// biases +-0.1. Each tensor's stream depends only on (seed, tensor name).
TensorValues random_values(uint64_t seed);
// Values of an existing model, re-paired for `target` RoPE layout when the model's differs.
TensorValues model_values(const Model& m, RopePairing target);

// The RoPE pairing a file of this format and architecture uses (see config.h).
RopePairing file_rope_pairing(WriteFormat f, Arch a);

// Writes a complete model: GGUF (tokenizer and chat template inside) or an HF folder
// (config.json, model.safetensors, tokenizer.json, tokenizer_config.json). Atomic per file.
void write_model(const ModelConfig& config, const TokenizerSpec& tokenizer, const TensorValues& values,
                 const std::string& out_path, const WriteOptions& opts);

// Chosen storage type of one tensor under opts (exposed for tests).
DType writer_tensor_type(const TensorSpec& spec, const ModelConfig& c, const WriteOptions& opts);

// A byte-level BPE tokenizer with the 256 byte tokens and no merges, padded with
// "<|pad_N|>" unused tokens and ChatML control tokens to n_vocab entries. Used when the user
// gives no tokenizer; real text still round-trips (one token per byte).
TokenizerSpec default_tokenizer(int64_t n_vocab);

}  // namespace cc
