// GGUF v2/v3 reader and writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
// File layout (all little-endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x { string key | u32 value_type | value }         string = u64 len + bytes (no NUL)
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | tensor data (each offset aligned, relative
//   to the start of the data section)
// ne[0] is the innermost (contiguous) dimension. cacheclip's Tensor shapes are row-major
// (outermost first), so readers reverse ne.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "simd/dtype.h"

namespace cc {

enum class GGUFType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GGUFType t);

// One metadata value. Scalars keep their declared GGUF type so a file written back is
// identical; arrays hold their element type and elements (arrays of arrays are allowed).
struct MetaValue {
  GGUFType type = GGUFType::U32;
  GGUFType elem = GGUFType::U32;  // element type when type == ARRAY
  uint64_t u = 0;                 // U8..U64, BOOL
  int64_t i = 0;                  // I8..I64
  double f = 0;                   // F32, F64
  std::string s;                  // STRING
  std::vector<MetaValue> arr;     // ARRAY

  static MetaValue of_u32(uint32_t v);
  static MetaValue of_i32(int32_t v);
  static MetaValue of_u64(uint64_t v);
  static MetaValue of_f32(float v);
  static MetaValue of_bool(bool v);
  static MetaValue of_str(std::string v);
  static MetaValue of_strs(const std::vector<std::string>& v);
  static MetaValue of_f32s(const std::vector<float>& v);
  static MetaValue of_i32s(const std::vector<int32_t>& v);

  bool is_int() const;      // any integer type (or BOOL)
  bool is_float() const;    // F32/F64
  // Conversions throw cc::Error naming `key` when the stored type does not fit.
  int64_t as_int(const std::string& key) const;
  double as_float(const std::string& key) const;  // also accepts integers
  bool as_bool(const std::string& key) const;
  const std::string& as_str(const std::string& key) const;
  const std::vector<MetaValue>& as_array(const std::string& key, GGUFType elem) const;
  std::string to_display(size_t max_elems = 8) const;  // short human form for `inspect`
};

// Ordered key/value metadata (order preserved for writing).
class Metadata {
 public:
  void set(const std::string& key, MetaValue v);
  const MetaValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Typed getters: required versions throw "<file>: missing metadata key '<key>'".
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key, double def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_str(const std::string& key, const std::string& def) const;
  std::string get_str(const std::string& key) const;
  std::vector<std::string> get_strs(const std::string& key) const;  // [] if absent
  std::vector<float> get_f32s(const std::string& key) const;        // [] if absent
  std::vector<int32_t> get_i32s(const std::string& key) const;      // [] if absent

  const std::vector<std::pair<std::string, MetaValue>>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  std::string source;  // file name used in error messages

 private:
  std::vector<std::pair<std::string, MetaValue>> items_;
  std::map<std::string, size_t> index_;
};

struct GGUFTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major (outermost first): reversed GGUF ne[]
  DType type = DType::F32;
  uint64_t offset = 0;         // relative to the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr;  // points into the mapped file
};

// A parsed, validated GGUF file. Tensor data stays in the mapping (no copy).
struct GGUFFile {
  std::shared_ptr<MappedFile> file;
  uint32_t version = 0;
  uint64_t alignment = 32;
  Metadata meta;
  std::vector<GGUFTensorInfo> tensors;
};

// Parses and validates everything: magic, version (2 or 3), counts and string lengths against
// the file size, value types, tensor dims/types, offsets and sizes inside the file, alignment,
// duplicate names. Every failure throws cc::Error naming the file and the problem.
GGUFFile gguf_read(const std::string& path);
// Same, over bytes in memory (used by the fuzz harness); `name` is used in messages.
GGUFFile gguf_parse(const uint8_t* data, size_t size, const std::string& name);

// Streams a GGUF v3 file: metadata and tensor infos first, then each tensor's bytes.
class GGUFWriter {
 public:
  explicit GGUFWriter(Metadata meta, uint64_t alignment = 32);
  // shape row-major; nbytes must equal the tensor's size for its type and shape.
  void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape);
  // Writes to path atomically (temporary file + rename). `fill(i, dst)` writes tensor i's bytes
  // into dst (exactly its nbytes), so callers can generate data without holding all tensors.
  void write(const std::string& path,
             const std::function<void(size_t index, uint8_t* dst)>& fill) const;

 private:
  Metadata meta_;
  uint64_t alignment_;
  std::vector<GGUFTensorInfo> tensors_;
};

}  // namespace cc
