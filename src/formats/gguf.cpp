#include "formats/gguf.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "base/error.h"

namespace cc {

namespace {

constexpr uint32_t kMaxDims = 4;        // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 4;     // arrays of arrays of ... (defensive)
constexpr uint64_t kMaxStringLen = 1ull << 30;
// Each parsed array element costs ~90 bytes of memory whatever its size in the file, so the
// total is capped: real files hold well under 1M (vocabularies of 256k tokens, 3 arrays).
constexpr uint64_t kMaxArrayElements = 8ull << 20;

size_t scalar_size(GGUFType t) {
  switch (t) {
    case GGUFType::U8: case GGUFType::I8: case GGUFType::BOOL: return 1;
    case GGUFType::U16: case GGUFType::I16: return 2;
    case GGUFType::U32: case GGUFType::I32: case GGUFType::F32: return 4;
    case GGUFType::U64: case GGUFType::I64: case GGUFType::F64: return 8;
    case GGUFType::STRING: return 8;  // at least the length prefix
    case GGUFType::ARRAY: return 12;  // at least type + count
  }
  return 0;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GGUFType::F64); }

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name) : r_(data, size, name), name_(name) {}

  std::string str(const char* field) {
    uint64_t n = r_.read<uint64_t>(field);
    if (n > kMaxStringLen || n > r_.remaining()) {
      fail(name_, ": ", field, " has length ", n, " at offset ", r_.offset() - 8,
           " but only ", r_.remaining(), " bytes remain");
    }
    const uint8_t* p = r_.take(n, field);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

  MetaValue value(GGUFType t, const std::string& key, int depth) {
    MetaValue v;
    v.type = t;
    const char* f = "metadata value";
    switch (t) {
      case GGUFType::U8: v.u = r_.read<uint8_t>(f); break;
      case GGUFType::I8: v.i = r_.read<int8_t>(f); break;
      case GGUFType::U16: v.u = r_.read<uint16_t>(f); break;
      case GGUFType::I16: v.i = r_.read<int16_t>(f); break;
      case GGUFType::U32: v.u = r_.read<uint32_t>(f); break;
      case GGUFType::I32: v.i = r_.read<int32_t>(f); break;
      case GGUFType::U64: v.u = r_.read<uint64_t>(f); break;
      case GGUFType::I64: v.i = r_.read<int64_t>(f); break;
      case GGUFType::F32: v.f = r_.read<float>(f); break;
      case GGUFType::F64: v.f = r_.read<double>(f); break;
      case GGUFType::BOOL: {
        uint8_t b = r_.read<uint8_t>(f);
        if (b > 1) fail(name_, ": metadata key '", key, "': bool value ", int(b), " is not 0 or 1");
        v.u = b;
        break;
      }
      case GGUFType::STRING: v.s = str("metadata string"); break;
      case GGUFType::ARRAY: {
        if (depth >= kMaxArrayNesting) fail(name_, ": metadata key '", key, "': arrays nested too deeply");
        uint32_t et = r_.read<uint32_t>("array element type");
        if (!valid_type(et)) fail(name_, ": metadata key '", key, "': invalid array element type ", et);
        v.elem = static_cast<GGUFType>(et);
        uint64_t n = r_.read<uint64_t>("array length");
        size_t min_elem = scalar_size(v.elem);
        if (n > r_.remaining() / min_elem) {
          fail(name_, ": metadata key '", key, "': array of ", n, " ", gguf_type_name(v.elem),
               " elements cannot fit in the ", r_.remaining(), " bytes that remain");
        }
        array_elems_ += n;
        if (array_elems_ > kMaxArrayElements) {
          fail(name_, ": metadata key '", key, "': more than ", kMaxArrayElements,
               " array elements in total (limit of this reader)");
        }
        v.arr.reserve(n);
        for (uint64_t k = 0; k < n; ++k) v.arr.push_back(value(v.elem, key, depth + 1));
        break;
      }
    }
    return v;
  }

  ByteReader r_;
  std::string name_;
  uint64_t array_elems_ = 0;
};

}  // namespace

const char* gguf_type_name(GGUFType t) {
  static const char* n[] = {"u8",  "i8",    "u16",   "i16", "u32", "i32", "f32",
                            "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? n[i] : "invalid";
}

// ---------------------------------------------------------------------------------------------
// MetaValue

MetaValue MetaValue::of_u32(uint32_t v) { MetaValue m; m.type = GGUFType::U32; m.u = v; return m; }
MetaValue MetaValue::of_i32(int32_t v) { MetaValue m; m.type = GGUFType::I32; m.i = v; return m; }
MetaValue MetaValue::of_u64(uint64_t v) { MetaValue m; m.type = GGUFType::U64; m.u = v; return m; }
MetaValue MetaValue::of_f32(float v) { MetaValue m; m.type = GGUFType::F32; m.f = v; return m; }
MetaValue MetaValue::of_bool(bool v) { MetaValue m; m.type = GGUFType::BOOL; m.u = v; return m; }
MetaValue MetaValue::of_str(std::string v) {
  MetaValue m;
  m.type = GGUFType::STRING;
  m.s = std::move(v);
  return m;
}
MetaValue MetaValue::of_strs(const std::vector<std::string>& v) {
  MetaValue m;
  m.type = GGUFType::ARRAY;
  m.elem = GGUFType::STRING;
  m.arr.reserve(v.size());
  for (const auto& s : v) m.arr.push_back(of_str(s));
  return m;
}
MetaValue MetaValue::of_f32s(const std::vector<float>& v) {
  MetaValue m;
  m.type = GGUFType::ARRAY;
  m.elem = GGUFType::F32;
  m.arr.reserve(v.size());
  for (float x : v) m.arr.push_back(of_f32(x));
  return m;
}
MetaValue MetaValue::of_i32s(const std::vector<int32_t>& v) {
  MetaValue m;
  m.type = GGUFType::ARRAY;
  m.elem = GGUFType::I32;
  m.arr.reserve(v.size());
  for (int32_t x : v) m.arr.push_back(of_i32(x));
  return m;
}

bool MetaValue::is_int() const {
  switch (type) {
    case GGUFType::U8: case GGUFType::I8: case GGUFType::U16: case GGUFType::I16:
    case GGUFType::U32: case GGUFType::I32: case GGUFType::U64: case GGUFType::I64:
    case GGUFType::BOOL:
      return true;
    default:
      return false;
  }
}
bool MetaValue::is_float() const { return type == GGUFType::F32 || type == GGUFType::F64; }

int64_t MetaValue::as_int(const std::string& key) const {
  switch (type) {
    case GGUFType::U8: case GGUFType::U16: case GGUFType::U32: case GGUFType::U64:
      if (u > static_cast<uint64_t>(INT64_MAX)) fail("metadata key '", key, "': value ", u, " too large");
      return static_cast<int64_t>(u);
    case GGUFType::I8: case GGUFType::I16: case GGUFType::I32: case GGUFType::I64:
      return i;
    default:
      fail("metadata key '", key, "' has type ", gguf_type_name(type), ", expected an integer");
  }
}
double MetaValue::as_float(const std::string& key) const {
  if (is_float()) return f;
  if (is_int() && type != GGUFType::BOOL) return static_cast<double>(as_int(key));
  fail("metadata key '", key, "' has type ", gguf_type_name(type), ", expected a number");
}
bool MetaValue::as_bool(const std::string& key) const {
  if (type == GGUFType::BOOL) return u != 0;
  fail("metadata key '", key, "' has type ", gguf_type_name(type), ", expected bool");
}
const std::string& MetaValue::as_str(const std::string& key) const {
  if (type != GGUFType::STRING) fail("metadata key '", key, "' has type ", gguf_type_name(type), ", expected string");
  return s;
}
const std::vector<MetaValue>& MetaValue::as_array(const std::string& key, GGUFType e) const {
  if (type != GGUFType::ARRAY) fail("metadata key '", key, "' has type ", gguf_type_name(type), ", expected array");
  if (elem != e) {
    fail("metadata key '", key, "' is an array of ", gguf_type_name(elem), ", expected array of ",
         gguf_type_name(e));
  }
  return arr;
}

std::string MetaValue::to_display(size_t max_elems) const {
  std::ostringstream os;
  switch (type) {
    case GGUFType::U8: case GGUFType::U16: case GGUFType::U32: case GGUFType::U64: os << u; break;
    case GGUFType::I8: case GGUFType::I16: case GGUFType::I32: case GGUFType::I64: os << i; break;
    case GGUFType::F32: case GGUFType::F64: os << f; break;
    case GGUFType::BOOL: os << (u ? "true" : "false"); break;
    case GGUFType::STRING: {
      std::string t = s.size() > 60 ? s.substr(0, 57) + "..." : s;
      for (char& c : t) if (c == '\n') c = ' ';
      os << '"' << t << '"';
      break;
    }
    case GGUFType::ARRAY: {
      os << "[" << gguf_type_name(elem) << " x " << arr.size() << "]";
      if (!arr.empty() && max_elems > 0) {
        os << " {";
        for (size_t k = 0; k < arr.size() && k < max_elems; ++k) os << (k ? ", " : "") << arr[k].to_display(0);
        if (arr.size() > max_elems) os << ", ...";
        os << "}";
      }
      break;
    }
  }
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// Metadata

void Metadata::set(const std::string& key, MetaValue v) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    items_[it->second].second = std::move(v);
    return;
  }
  index_[key] = items_.size();
  items_.emplace_back(key, std::move(v));
}

const MetaValue* Metadata::find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

int64_t Metadata::get_int(const std::string& key) const {
  const MetaValue* v = find(key);
  if (!v) fail(source, ": missing metadata key '", key, "'");
  try {
    return v->as_int(key);
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
}
int64_t Metadata::get_int(const std::string& key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}
double Metadata::get_float(const std::string& key, double def) const {
  const MetaValue* v = find(key);
  if (!v) return def;
  try {
    return v->as_float(key);
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
}
bool Metadata::get_bool(const std::string& key, bool def) const {
  const MetaValue* v = find(key);
  if (!v) return def;
  try {
    return v->as_bool(key);
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
}
std::string Metadata::get_str(const std::string& key, const std::string& def) const {
  return has(key) ? get_str(key) : def;
}
std::string Metadata::get_str(const std::string& key) const {
  const MetaValue* v = find(key);
  if (!v) fail(source, ": missing metadata key '", key, "'");
  try {
    return v->as_str(key);
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
}
std::vector<std::string> Metadata::get_strs(const std::string& key) const {
  std::vector<std::string> out;
  const MetaValue* v = find(key);
  if (!v) return out;
  try {
    for (const auto& e : v->as_array(key, GGUFType::STRING)) out.push_back(e.s);
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
  return out;
}
std::vector<float> Metadata::get_f32s(const std::string& key) const {
  std::vector<float> out;
  const MetaValue* v = find(key);
  if (!v) return out;
  try {
    for (const auto& e : v->as_array(key, GGUFType::F32)) out.push_back(static_cast<float>(e.f));
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
  return out;
}
std::vector<int32_t> Metadata::get_i32s(const std::string& key) const {
  std::vector<int32_t> out;
  const MetaValue* v = find(key);
  if (!v) return out;
  if (v->type != GGUFType::ARRAY || !(v->elem == GGUFType::I32 || v->elem == GGUFType::U32)) {
    fail(source, ": metadata key '", key, "' is not an array of i32");
  }
  for (const auto& e : v->arr) {
    int64_t x = e.as_int(key);
    if (x < INT32_MIN || x > INT32_MAX) fail(source, ": metadata key '", key, "': value ", x, " out of int32 range");
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reader

GGUFFile gguf_parse(const uint8_t* data, size_t size, const std::string& name) {
  GGUFFile g;
  g.meta.source = name;
  Parser p(data, size, name);
  ByteReader& r = p.r_;
  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) {
    fail(name, ": not a GGUF file (bad magic; expected \"GGUF\")");
  }
  r.take(4, "magic");
  g.version = r.read<uint32_t>("version");
  if (g.version == 1) fail(name, ": GGUF version 1 is not supported (only 2 and 3)");
  if (g.version != 2 && g.version != 3) fail(name, ": unsupported GGUF version ", g.version, " (expected 2 or 3)");
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  // Every kv needs >= 8 (key len) + 4 (type) + 1 bytes; every tensor info >= 8+4+8+4+8.
  if (n_kv > r.remaining() / 13) {
    fail(name, ": metadata count ", n_kv, " is impossible for a file of ", size, " bytes");
  }
  if (n_tensors > r.remaining() / 32) {
    fail(name, ": tensor count ", n_tensors, " is impossible for a file of ", size, " bytes");
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = p.str("metadata key");
    uint32_t t = r.read<uint32_t>("metadata value type");
    if (!valid_type(t)) fail(name, ": metadata key '", key, "' has invalid value type ", t);
    if (g.meta.has(key)) fail(name, ": duplicate metadata key '", key, "'");
    g.meta.set(key, p.value(static_cast<GGUFType>(t), key, 0));
  }
  if (const MetaValue* a = g.meta.find("general.alignment")) {
    if (a->type != GGUFType::U32) fail(name, ": general.alignment must be u32, got ", gguf_type_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0) fail(name, ": general.alignment ", a->u, " is not a power of two");
    g.alignment = a->u;
  }

  std::set<std::string> names;
  g.tensors.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GGUFTensorInfo ti;
    ti.name = p.str("tensor name");
    if (!names.insert(ti.name).second) fail(name, ": duplicate tensor name '", ti.name, "'");
    uint32_t nd = r.read<uint32_t>("tensor dimension count");
    if (nd == 0 || nd > kMaxDims) fail(name, ": tensor '", ti.name, "' has ", nd, " dimensions (1..4 allowed)");
    std::vector<int64_t> ne(nd);
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t v = r.read<uint64_t>("tensor dimension");
      if (v == 0 || v > (1ull << 40)) fail(name, ": tensor '", ti.name, "' dimension ", d, " is ", v);
      if (__builtin_mul_overflow(nelem, v, &nelem) || nelem > (1ull << 42)) {
        fail(name, ": tensor '", ti.name, "' has an absurd element count");
      }
      ne[d] = static_cast<int64_t>(v);
    }
    uint32_t type = r.read<uint32_t>("tensor type");
    auto dt = dtype_from_ggml(type);
    if (!dt) {
      fail(name, ": tensor '", ti.name, "' has unsupported type ", ggml_type_name(type),
           " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)");
    }
    ti.type = *dt;
    const DTypeInfo& info = dtype_info(ti.type);
    if (ne[0] % info.block_elems != 0) {
      fail(name, ": tensor '", ti.name, "' row length ", ne[0], " is not a multiple of the ",
           info.name, " block size ", info.block_elems);
    }
    ti.nbytes = static_cast<size_t>(nelem / info.block_elems) * info.block_bytes;
    ti.offset = r.read<uint64_t>("tensor offset");
    if (ti.offset % g.alignment != 0) {
      fail(name, ": tensor '", ti.name, "' offset ", ti.offset, " is not aligned to ", g.alignment);
    }
    ti.shape.assign(ne.rbegin(), ne.rend());
    g.tensors.push_back(std::move(ti));
  }
  // Data section starts at the next multiple of the alignment.
  uint64_t data_start = (r.offset() + g.alignment - 1) / g.alignment * g.alignment;
  // Tensor data lies back to back in the order of the infos, each padded to the alignment (as
  // llama.cpp requires too): a corrupt type or dimension, or a bad offset, shows up here as
  // data that would overlap another tensor's or be read as something else.
  uint64_t expect = 0;
  for (auto& ti : g.tensors) {
    if (ti.offset != expect) {
      fail(name, ": tensor '", ti.name, "' data starts at offset ", ti.offset, ", expected ", expect,
           " (where the previous tensor's data ends): a tensor's type, shape or offset is corrupt");
    }
    if (__builtin_add_overflow(expect, ti.nbytes, &expect) ||
        __builtin_add_overflow(expect, g.alignment - 1, &expect)) {
      fail(name, ": tensor '", ti.name, "' has an absurd size");
    }
    expect = expect / g.alignment * g.alignment;
    uint64_t end;
    if (__builtin_add_overflow(data_start, ti.offset, &end) || __builtin_add_overflow(end, ti.nbytes, &end) ||
        end > size) {
      fail(name, ": tensor '", ti.name, "' (", ti.nbytes, " bytes at data offset ", ti.offset,
           ") points outside the file (", size, " bytes); the file is truncated or corrupt");
    }
    ti.data = data + data_start + ti.offset;
  }
  return g;
}

GGUFFile gguf_read(const std::string& path) {
  auto f = MappedFile::open(path);
  GGUFFile g = gguf_parse(f->data(), f->size(), path);
  g.file = std::move(f);
  return g;
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

void put_bytes(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <typename T>
void put(std::string& out, T v) { put_bytes(out, &v, sizeof(T)); }
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_value(std::string& out, const MetaValue& v) {
  switch (v.type) {
    case GGUFType::U8: put<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case GGUFType::I8: put<int8_t>(out, static_cast<int8_t>(v.i)); break;
    case GGUFType::U16: put<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case GGUFType::I16: put<int16_t>(out, static_cast<int16_t>(v.i)); break;
    case GGUFType::U32: put<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case GGUFType::I32: put<int32_t>(out, static_cast<int32_t>(v.i)); break;
    case GGUFType::U64: put<uint64_t>(out, v.u); break;
    case GGUFType::I64: put<int64_t>(out, v.i); break;
    case GGUFType::F32: put<float>(out, static_cast<float>(v.f)); break;
    case GGUFType::F64: put<double>(out, v.f); break;
    case GGUFType::BOOL: put<uint8_t>(out, v.u ? 1 : 0); break;
    case GGUFType::STRING: put_str(out, v.s); break;
    case GGUFType::ARRAY:
      put<uint32_t>(out, static_cast<uint32_t>(v.elem));
      put<uint64_t>(out, v.arr.size());
      for (const auto& e : v.arr) {
        CC_ASSERT(e.type == v.elem);
        put_value(out, e);
      }
      break;
  }
}

}  // namespace

GGUFWriter::GGUFWriter(Metadata meta, uint64_t alignment) : meta_(std::move(meta)), alignment_(alignment) {
  CC_ASSERT(alignment_ > 0 && (alignment_ & (alignment_ - 1)) == 0);
  if (alignment_ != 32 || meta_.has("general.alignment")) {
    meta_.set("general.alignment", MetaValue::of_u32(static_cast<uint32_t>(alignment_)));
  }
}

void GGUFWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape) {
  CC_ASSERT(!shape.empty() && shape.size() <= kMaxDims);
  for (const auto& t : tensors_) {
    if (t.name == name) fail("GGUF writer: duplicate tensor name '", name, "'");
  }
  GGUFTensorInfo ti;
  ti.name = name;
  ti.type = type;
  ti.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const DTypeInfo& info = dtype_info(type);
  if (shape.back() % info.block_elems != 0) {
    fail("GGUF writer: tensor '", name, "' row length ", shape.back(), " is not a multiple of the ",
         info.name, " block size ", info.block_elems);
  }
  ti.nbytes = static_cast<size_t>(n / info.block_elems) * info.block_bytes;
  uint64_t off = 0;
  if (!tensors_.empty()) {
    const auto& last = tensors_.back();
    off = (last.offset + last.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  ti.offset = off;
  tensors_.push_back(std::move(ti));
}

void GGUFWriter::write(const std::string& path,
                       const std::function<void(size_t, uint8_t*)>& fill) const {
  std::string head;
  head.append("GGUF", 4);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, meta_.size());
  for (const auto& [k, v] : meta_.items()) {
    put_str(head, k);
    put<uint32_t>(head, static_cast<uint32_t>(v.type));
    put_value(head, v);
  }
  for (const auto& t : tensors_) {
    put_str(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(head, static_cast<uint64_t>(*it));
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, t.offset);
  }
  size_t data_start = (head.size() + alignment_ - 1) / alignment_ * alignment_;
  size_t total = data_start;
  if (!tensors_.empty()) {
    const auto& last = tensors_.back();
    total = data_start + last.offset + last.nbytes;
    total = (total + alignment_ - 1) / alignment_ * alignment_;
  }

  write_file_mapped(path, total, [&](uint8_t* base) {
    std::memcpy(base, head.data(), head.size());
    for (size_t i = 0; i < tensors_.size(); ++i) fill(i, base + data_start + tensors_[i].offset);
  });
}

}  // namespace cc
