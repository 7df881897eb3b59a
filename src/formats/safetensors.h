// safetensors reader/writer (https://huggingface.co/docs/safetensors): u64 header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data section; offsets are relative to its start. Shapes are row-major.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "simd/dtype.h"

namespace cc {

struct SafetensorsTensor {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> shape;     // row-major
  const uint8_t* data = nullptr;  // into the mapped file
  size_t nbytes = 0;
};

struct SafetensorsFile {
  std::shared_ptr<MappedFile> file;
  std::map<std::string, std::string> metadata;  // "__metadata__"
  std::vector<SafetensorsTensor> tensors;       // in data-offset order
};

// Validates header size, JSON, dtypes (F32/F16/BF16), shapes vs byte ranges, ranges inside the
// data section and not overlapping. Throws cc::Error naming the file and the problem.
SafetensorsFile safetensors_parse(const uint8_t* data, size_t size, const std::string& name);
SafetensorsFile safetensors_read(const std::string& path);

struct SafetensorsEntry {
  std::string name;
  DType type;
  std::vector<int64_t> shape;
};
// Writes atomically; fill(i, dst) writes entry i's bytes.
void safetensors_write(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<void(size_t, uint8_t*)>& fill);

}  // namespace cc
