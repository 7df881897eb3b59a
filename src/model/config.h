// Architecture hyper-parameters, independent of the file format they came from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "simd/dtype.h"

namespace cc {

enum class Arch { Llama, Qwen2 };
const char* arch_name(Arch a);  // "llama", "qwen2"

// Which dimensions of a head form a RoPE pair.
enum class RopePairing {
  Adjacent,  // (2i, 2i+1): GPT-J / llama2.c / GGUF "llama" (llama.cpp permutes HF Q/K weights)
  NeoX,      // (i, i + d/2): Hugging Face layout, GGUF "qwen2"
};
const char* rope_pairing_name(RopePairing p);

enum class RopeScalingType { None, Linear, Llama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  float factor = 1.0f;              // Linear: positions divided by factor; Llama3: low-freq divisor
  float low_freq_factor = 1.0f;     // Llama3 only
  float high_freq_factor = 4.0f;    // Llama3 only
  int64_t original_context = 8192;  // Llama3 only
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string name;             // free text (general.name)
  int64_t n_vocab = 0;
  int64_t n_embd = 0;           // hidden size D
  int64_t n_layer = 0;
  int64_t n_head = 0;           // query heads H
  int64_t n_head_kv = 0;        // key/value heads (GQA when < H)
  int64_t head_dim = 0;         // usually D / H
  int64_t n_ff = 0;             // SwiGLU inner size F
  int64_t n_ctx_train = 0;      // trained context length
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopePairing rope_pairing = RopePairing::NeoX;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;  // output projection = token embedding
  bool qkv_bias = false;         // qwen2: Q/K/V projections have biases
  // Explicit per-frequency RoPE divisors (GGUF's rope_freqs.weight); when empty they are
  // derived from rope_scaling.
  std::vector<float> rope_freqs;

  // Per-frequency divisors for RoPE (size head_dim/2), derived from rope_scaling; empty = none.
  // theta_i = pos * rope_theta^(-2i/head_dim) / freq_factors[i]  (as llama.cpp's rope_freqs).
  std::vector<float> rope_freq_factors() const;

  // Throws cc::Error naming `source` when values are missing, non-positive or inconsistent.
  void validate(const std::string& source) const;
};

// Shape every tensor must have, by canonical name (GGUF naming), for this config. Row-major.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool is_vector;  // norms/biases: kept in F32 by the writer
};
std::vector<TensorSpec> expected_tensors(const ModelConfig& c);

// Named presets for the model writer: "tiny-llama", "tiny-qwen2", "tiny-llama3",
// "qwen2.5-0.5b", "qwen2.5-1.5b". n_vocab 0 means "take it from the tokenizer".
ModelConfig config_preset(const std::string& name);
std::vector<std::string> config_preset_names();

}  // namespace cc
