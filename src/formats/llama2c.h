// llama2.c checkpoints (karpathy/llama2.c): "legacy v0" (7 x int32 header, fp32 tensors,
// negative vocab_size = separate classifier) and "v1" (magic "ak42", version 1, 256-byte header,
// fp32). Tensors are exposed under cacheclip's canonical (GGUF) names as views into the mapping.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "simd/dtype.h"

namespace cc {

struct Llama2cConfig {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  bool shared_classifier = true;
  int version = 0;  // 0 = legacy, 1 = ak42 v1
};

struct Llama2cTensor {
  std::string name;             // canonical name, e.g. "blk.0.attn_q.weight"
  std::vector<int64_t> shape;   // row-major
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

struct Llama2cFile {
  std::shared_ptr<MappedFile> file;
  Llama2cConfig config;
  std::vector<Llama2cTensor> tensors;  // all F32
};

// Validates the header (positive sizes, heads dividing dim, kv heads dividing heads, sane
// limits) and that the file size is exactly what the config implies.
Llama2cFile llama2c_parse(const uint8_t* data, size_t size, const std::string& name);
Llama2cFile llama2c_read(const std::string& path);
// True when the bytes look like a llama2.c checkpoint (used for format detection).
bool llama2c_sniff(const uint8_t* data, size_t size);

}  // namespace cc
