#include "formats/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace cc {

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // same limit as the reference implementation

std::optional<DType> st_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  return std::nullopt;
}

const char* st_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default: return nullptr;
  }
}

}  // namespace

SafetensorsFile safetensors_parse(const uint8_t* data, size_t size, const std::string& name) {
  using nlohmann::json;
  SafetensorsFile out;
  ByteReader r(data, size, name);
  uint64_t n = r.read<uint64_t>("header length");
  if (n > kMaxHeader) fail(name, ": safetensors header length ", n, " exceeds the 100 MB limit (not a safetensors file?)");
  if (n > r.remaining()) fail(name, ": truncated: safetensors header of ", n, " bytes but the file has ", size, " bytes");
  const char* hp = reinterpret_cast<const char*>(r.take(n, "header"));
  json h;
  try {
    h = json::parse(hp, hp + n);
  } catch (const json::exception& e) {
    fail(name, ": safetensors header is not valid JSON: ", e.what());
  }
  if (!h.is_object()) fail(name, ": safetensors header is not a JSON object");
  if ((8 + n) % 8 != 0) {
    fail(name, ": safetensors data section starts at byte ", 8 + n, ", not a multiple of 8 (the format pads the header)");
  }
  const uint8_t* base = data + 8 + n;
  const size_t data_size = size - 8 - n;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) fail(name, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(name, ": __metadata__ value '", m.key(), "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail(name, ": tensor '", key, "': entry is not an object");
    auto dt_it = v.find("dtype");
    auto sh_it = v.find("shape");
    auto off_it = v.find("data_offsets");
    if (dt_it == v.end() || !dt_it->is_string()) fail(name, ": tensor '", key, "': missing or non-string dtype");
    if (sh_it == v.end() || !sh_it->is_array()) fail(name, ": tensor '", key, "': missing or non-array shape");
    if (off_it == v.end() || !off_it->is_array() || off_it->size() != 2) {
      fail(name, ": tensor '", key, "': data_offsets must be [begin, end]");
    }
    SafetensorsTensor t;
    t.name = key;
    auto dt = st_dtype(dt_it->get<std::string>());
    if (!dt) {
      fail(name, ": tensor '", key, "' has unsupported dtype ", dt_it->get<std::string>(),
           " (supported: F32, F16, BF16)");
    }
    t.type = *dt;
    if (sh_it->size() > 8) fail(name, ": tensor '", key, "' has ", sh_it->size(), " dimensions");
    uint64_t nelem = 1;
    for (const auto& d : *sh_it) {
      if (!d.is_number_unsigned()) fail(name, ": tensor '", key, "': shape entries must be non-negative integers");
      uint64_t dv = d.get<uint64_t>();
      if (dv > (1ull << 40)) fail(name, ": tensor '", key, "' has a dimension of ", dv);
      if (__builtin_mul_overflow(nelem, dv, &nelem) || nelem > (1ull << 42)) {
        fail(name, ": tensor '", key, "' has an absurd element count");
      }
      t.shape.push_back(static_cast<int64_t>(dv));
    }
    const auto& o = *off_it;
    if (!o[0].is_number_unsigned() || !o[1].is_number_unsigned()) {
      fail(name, ": tensor '", key, "': data_offsets must be non-negative integers");
    }
    uint64_t b = o[0].get<uint64_t>(), e = o[1].get<uint64_t>();
    if (b > e || e > data_size) {
      fail(name, ": tensor '", key, "' byte range [", b, ", ", e, ") lies outside the data section (",
           data_size, " bytes); the file is truncated or corrupt");
    }
    t.nbytes = static_cast<size_t>(nelem) * dtype_info(t.type).block_bytes;
    if (e - b != t.nbytes) {
      fail(name, ": tensor '", key, "' has ", e - b, " bytes but its shape and dtype need ", t.nbytes);
    }
    t.data = base + b;
    out.tensors.push_back(std::move(t));
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.data < b.data; });
  for (size_t i = 1; i < out.tensors.size(); ++i) {
    const auto& p = out.tensors[i - 1];
    if (p.data + p.nbytes > out.tensors[i].data) {
      fail(name, ": tensors '", p.name, "' and '", out.tensors[i].name, "' overlap");
    }
  }
  return out;
}

SafetensorsFile safetensors_read(const std::string& path) {
  auto f = MappedFile::open(path);
  SafetensorsFile s = safetensors_parse(f->data(), f->size(), path);
  s.file = std::move(f);
  return s;
}

void safetensors_write(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<void(size_t, uint8_t*)>& fill) {
  using nlohmann::json;
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::vector<size_t> offs;
  size_t off = 0;
  for (const auto& e : entries) {
    const char* dn = st_name(e.type);
    if (!dn) fail("safetensors writer: tensor '", e.name, "': type ", dtype_name(e.type), " is not a safetensors dtype");
    size_t nelem = 1;
    for (int64_t d : e.shape) nelem *= static_cast<size_t>(d);
    size_t nb = nelem * dtype_info(e.type).block_bytes;
    h[e.name] = {{"dtype", dn}, {"shape", e.shape}, {"data_offsets", {off, off + nb}}};
    offs.push_back(off);
    off += nb;
  }
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8 != 0) hs += ' ';  // align the data section to 8 bytes
  size_t total = 8 + hs.size() + off;
  write_file_mapped(path, total, [&](uint8_t* p) {
    uint64_t n = hs.size();
    std::memcpy(p, &n, 8);
    std::memcpy(p + 8, hs.data(), hs.size());
    for (size_t i = 0; i < entries.size(); ++i) fill(i, p + 8 + hs.size() + offs[i]);
  });
}

}  // namespace cc
