#include "reuse/chunk_store.h"

#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/mapped_file.h"
#include "simd/kernels.h"

namespace cc {

static_assert(std::endian::native == std::endian::little, "chunk files and keys are little-endian");

namespace {

constexpr size_t kMaxWarnings = 1024;

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void store_le(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

std::string hex64(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool is_i8(const ChunkLayout& l) { return l.type == KVStoreType::I8; }
DType half_dtype(KVStoreType t) {
  return t == KVStoreType::BF16 ? DType::BF16 : t == KVStoreType::F32 ? DType::F32 : DType::F16;
}
size_t elem_bytes(KVStoreType t) { return t == KVStoreType::F32 ? 4 : 2; }

// Bytes of one [n_tokens, kv_dim] K or V section of one layer (int8: its scales included).
size_t section_bytes(const ChunkLayout& l) {
  const size_t n = static_cast<size_t>(l.n_tokens);
  const size_t d = static_cast<size_t>(l.kv_dim);
  return is_i8(l) ? n * (sizeof(float) + d) : n * d * elem_bytes(l.type);
}



// One int8 row: scale = max|x| / 127, q = round(x / scale) in [-127, 127]. NaN inputs are
// ignored by the max and stored as 0.
void encode_i8_row(const float* x, int64_t d, float* scale_out, int8_t* q) {
  float m = 0;
  for (int64_t j = 0; j < d; ++j) m = std::max(m, std::fabs(x[j]));
  const float scale = m / 127.0f;
  *scale_out = scale;
  if (!(scale > 0)) {
    std::memset(q, 0, static_cast<size_t>(d));
    return;
  }
  for (int64_t j = 0; j < d; ++j) {
    float r = std::nearbyint(x[j] / scale);
    r = std::clamp(r, -127.0f, 127.0f);
    q[j] = std::isnan(r) ? int8_t{0} : static_cast<int8_t>(r);
  }
}

// Fills the 64-byte header for a chunk (format in chunk_store.h).
void encode_header(uint8_t* h, const ChunkKV& c) {
  std::memset(h, 0, kChunkHeaderBytes);
  std::memcpy(h, "CCKV", 4);
  store_le<uint32_t>(h + 4, kChunkFileVersion);
  store_le<uint64_t>(h + 8, c.key().hi);
  store_le<uint64_t>(h + 16, c.key().lo);
  store_le<int32_t>(h + 24, c.layout().n_layer);
  store_le<int32_t>(h + 28, c.layout().n_tokens);
  store_le<int32_t>(h + 32, c.layout().kv_dim);
  store_le<uint32_t>(h + 36, static_cast<uint32_t>(c.layout().type));
  store_le<uint64_t>(h + 40, c.bytes());
  store_le<uint64_t>(h + 48, XXH3_64bits(c.data(), c.bytes()));
  store_le<uint64_t>(h + 56, XXH3_64bits(h, 56));
}

// Identity of a file on disk: our writers never modify a file in place (they rename complete
// new files over the name), so device + inode, with size and mtime against inode reuse, tell
// whether the name still holds the file we looked at.
bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

// Deletes the rejected file at `path`, but only if it is still the file `validated` describes.
// A plain stat + unlink would race: between the two calls another process may rename a fresh,
// good file over the name, and we would delete that one. So the file is first renamed to a name
// only this call uses (atomic; afterwards nobody else can swap what we hold), then compared with
// what we validated. The same file: unlinked. Another one (replaced in the meantime): it is put
// back under the name with link(), which fails harmlessly (EEXIST) when an even newer file has
// appeared there since, and our private name is removed. Readers may see a miss in between,
// which only costs a recompute. Returns whether the rejected file was deleted.
bool remove_if_unchanged(const std::string& path, const struct stat& validated) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = cat(path, ".bad.", ::getpid(), ".", counter.fetch_add(1, std::memory_order_relaxed));
  if (std::rename(path.c_str(), tmp.c_str()) != 0) return false;  // already gone
  struct stat st {};
  if (::stat(tmp.c_str(), &st) == 0 && same_file(st, validated)) {
    ::unlink(tmp.c_str());
    return true;
  }
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    // EEXIST: a newer file is in place already; anything else: the good file is lost, which
    // is only a recompute.
  }
  ::unlink(tmp.c_str());
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Keys

std::string ChunkKey::hex() const {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(hi),
                static_cast<unsigned long long>(lo));
  return std::string(buf, 32);
}

ChunkKey ChunkKey::from_hex(std::string_view s) {
  if (s.size() != 32) fail("chunk key '", s, "': expected 32 hex characters, got ", s.size());
  uint64_t parts[2] = {0, 0};
  for (size_t i = 0; i < 32; ++i) {
    const char c = s[i];
    unsigned v;
    if (c >= '0' && c <= '9') v = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v = static_cast<unsigned>(c - 'A' + 10);
    else fail("chunk key '", s, "': character ", i, " ('", c, "') is not a hex digit");
    parts[i / 16] = (parts[i / 16] << 4) | v;
  }
  return ChunkKey{parts[0], parts[1]};
}

ChunkKey make_chunk_key(const ChunkKeyInputs& in) {
  std::string buf;
  buf.reserve(128 + in.model_fingerprint.size() + in.rope_config.size() + in.tenant_salt.size() +
              4 * (in.prefix_tokens.size() + in.chunk_tokens.size()));
  auto u32 = [&](uint32_t v) { buf.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { buf.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](std::string_view s) {
    u64(s.size());
    buf.append(s);
  };
  auto tokens = [&](std::span<const int32_t> t) {
    u64(t.size());
    buf.append(reinterpret_cast<const char*>(t.data()), t.size() * sizeof(int32_t));
  };
  str("cacheclip.chunk_key");  // domain tag
  u32(1);                      // serialisation version
  str(in.model_fingerprint);
  u32(in.layout_version);
  u32(static_cast<uint32_t>(in.dtype));
  str(in.rope_config);
  tokens(in.prefix_tokens);
  tokens(in.chunk_tokens);
  str(in.tenant_salt);
  const XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  return ChunkKey{h.high64, h.low64};
}

// ---------------------------------------------------------------------------------------------
// Types and layouts

const char* kv_store_type_name(KVStoreType t) {
  switch (t) {
    case KVStoreType::F16: return "f16";
    case KVStoreType::BF16: return "bf16";
    case KVStoreType::I8: return "int8";
    case KVStoreType::F32: return "f32";
  }
  return "unknown";
}

KVStoreType parse_kv_store_type(std::string_view name) {
  std::string s(name);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "f16") return KVStoreType::F16;
  if (s == "bf16") return KVStoreType::BF16;
  if (s == "int8") return KVStoreType::I8;
  if (s == "f32") return KVStoreType::F32;
  fail("unknown KV storage type '", name, "' (expected f16, bf16, int8 or f32)");
}

std::string to_string(const ChunkLayout& l) {
  const auto t = static_cast<uint32_t>(l.type);
  return cat("n_layer=", l.n_layer, " n_tokens=", l.n_tokens, " kv_dim=", l.kv_dim,
             " type=", t <= 3 ? std::string(kv_store_type_name(l.type)) : cat("#", t));
}

void check_chunk_layout(const ChunkLayout& l, const std::string& what) {
  auto range = [&](const char* name, int32_t v, int32_t max) {
    if (v < 1 || v > max) fail(what, ": ", name, " ", v, " is out of range 1..", max);
  };
  range("n_layer", l.n_layer, kMaxChunkLayers);
  range("n_tokens", l.n_tokens, kMaxChunkTokens);
  range("kv_dim", l.kv_dim, kMaxChunkKVDim);
  if (static_cast<uint32_t>(l.type) > 3) fail(what, ": unknown storage type ", static_cast<uint32_t>(l.type));
}

size_t chunk_payload_bytes(const ChunkLayout& l) {
  return static_cast<size_t>(l.n_layer) * 2 * section_bytes(l);
}

// ---------------------------------------------------------------------------------------------
// ChunkKV

ChunkKV::~ChunkKV() = default;

std::shared_ptr<ChunkKV> ChunkKV::from_f32(const ChunkLayout& layout, const ChunkKey& key,
                                           std::span<const float> k_all, std::span<const float> v_all,
                                           const std::vector<unsigned>& nodes) {
  check_chunk_layout(layout, "ChunkKV::from_f32");
  const size_t per_layer = static_cast<size_t>(layout.n_tokens) * static_cast<size_t>(layout.kv_dim);
  const size_t n = static_cast<size_t>(layout.n_layer) * per_layer;
  if (k_all.size() != n || v_all.size() != n) {
    fail("ChunkKV::from_f32: K and V hold ", k_all.size(), " and ", v_all.size(), " floats, layout ",
         to_string(layout), " needs ", n, " each");
  }
  std::shared_ptr<ChunkKV> c(new ChunkKV());
  c->layout_ = layout;
  c->key_ = key;
  c->bytes_ = chunk_payload_bytes(layout);
  c->buffer_ = NumaBuffer(c->bytes_, nodes);
  auto* p = static_cast<uint8_t*>(c->buffer_.data());
  c->data_ = p;
  const size_t sec = section_bytes(layout);
  const int64_t d = layout.kv_dim;
  const auto& kt = simd::kernels();
  for (int32_t layer = 0; layer < layout.n_layer; ++layer) {
    for (int v = 0; v < 2; ++v) {
      const float* src = (v ? v_all : k_all).data() + static_cast<size_t>(layer) * per_layer;
      uint8_t* dst = p + (2 * static_cast<size_t>(layer) + static_cast<size_t>(v)) * sec;
      if (is_i8(layout)) {
        auto* q = reinterpret_cast<int8_t*>(dst + static_cast<size_t>(layout.n_tokens) * sizeof(float));
        for (int32_t t = 0; t < layout.n_tokens; ++t) {
          float scale;
          encode_i8_row(src + t * d, d, &scale, q + t * d);
          std::memcpy(dst + static_cast<size_t>(t) * sizeof(float), &scale, sizeof(float));
        }
      } else {
        kt.from_f32(half_dtype(layout.type), src, dst, static_cast<int64_t>(per_layer));
      }
    }
  }
  return c;
}

std::shared_ptr<ChunkKV> ChunkKV::from_mapped(std::shared_ptr<const MappedFile> file, const ChunkKey* expected_key,
                                              const ChunkLayout* expected_layout) {
  CC_ASSERT(file != nullptr);
  const std::string& path = file->path();
  const size_t size = file->size();
  const uint8_t* h = file->data();
  if (size < kChunkHeaderBytes) {
    fail(path, ": truncated: ", size, " bytes, shorter than the ", kChunkHeaderBytes, "-byte chunk header");
  }
  if (std::memcmp(h, "CCKV", 4) != 0) fail(path, ": bad magic (not a cacheclip chunk file)");
  const auto version = load_le<uint32_t>(h + 4);
  if (version != kChunkFileVersion) {
    fail(path, ": unsupported chunk format version ", version, " (this build reads version ", kChunkFileVersion,
         ")");
  }
  const auto header_sum = load_le<uint64_t>(h + 56);
  const uint64_t header_computed = XXH3_64bits(h, 56);
  if (header_sum != header_computed) {
    fail(path, ": header checksum mismatch (stored ", hex64(header_sum), ", computed ", hex64(header_computed),
         ")");
  }
  const ChunkKey key{load_le<uint64_t>(h + 8), load_le<uint64_t>(h + 16)};
  ChunkLayout l;
  l.n_layer = load_le<int32_t>(h + 24);
  l.n_tokens = load_le<int32_t>(h + 28);
  l.kv_dim = load_le<int32_t>(h + 32);
  l.type = static_cast<KVStoreType>(load_le<uint32_t>(h + 36));
  check_chunk_layout(l, path);
  const auto payload = load_le<uint64_t>(h + 40);
  const size_t needed = chunk_payload_bytes(l);
  if (payload != needed) {
    fail(path, ": header says ", payload, " payload bytes but layout ", to_string(l), " needs ", needed);
  }
  if (size != kChunkHeaderBytes + needed) {
    fail(path, size < kChunkHeaderBytes + needed ? ": truncated: " : ": size mismatch: ", "the file has ", size,
         " bytes, its header says ", kChunkHeaderBytes + needed);
  }
  if (expected_key != nullptr && key != *expected_key) {
    fail(path, ": holds the chunk of key ", key.hex(), ", not the expected key ", expected_key->hex());
  }
  if (expected_layout != nullptr && l != *expected_layout) {
    fail(path, ": layout ", to_string(l), " differs from the expected ", to_string(*expected_layout));
  }
  const auto payload_sum = load_le<uint64_t>(h + 48);
  const uint64_t payload_computed = XXH3_64bits(h + kChunkHeaderBytes, needed);
  if (payload_sum != payload_computed) {
    fail(path, ": payload checksum mismatch (stored ", hex64(payload_sum), ", computed ",
         hex64(payload_computed), ")");
  }
  std::shared_ptr<ChunkKV> c(new ChunkKV());
  c->layout_ = l;
  c->key_ = key;
  c->bytes_ = needed;
  c->data_ = h + kChunkHeaderBytes;
  c->file_ = std::move(file);
  return c;
}

const uint8_t* ChunkKV::section(int layer, bool v) const {
  return data_ + (2 * static_cast<size_t>(layer) + (v ? 1 : 0)) * section_bytes(layout_);
}

void ChunkKV::rows_f32(int layer, bool v, int token0, int n, float* out) const {
  CC_ASSERT(layer >= 0 && layer < layout_.n_layer);
  CC_ASSERT(token0 >= 0 && n >= 0 && token0 <= layout_.n_tokens - n);
  const uint8_t* s = section(layer, v);
  const int64_t d = layout_.kv_dim;
  if (!is_i8(layout_)) {
    simd::kernels().to_f32(half_dtype(layout_.type), s + static_cast<size_t>(token0 * d) * elem_bytes(layout_.type), out,
                           n * d);
    return;
  }
  const auto* q = reinterpret_cast<const int8_t*>(s + static_cast<size_t>(layout_.n_tokens) * sizeof(float));
  for (int r = token0; r < token0 + n; ++r) {
    const float scale = load_le<float>(s + static_cast<size_t>(r) * sizeof(float));
    const int8_t* qr = q + r * d;
    float* o = out + (r - token0) * d;
    for (int64_t j = 0; j < d; ++j) o[j] = scale * static_cast<float>(qr[j]);
  }
}

void ChunkKV::k_row_f32(int layer, int token, float* out) const { rows_f32(layer, false, token, 1, out); }
void ChunkKV::v_row_f32(int layer, int token, float* out) const { rows_f32(layer, true, token, 1, out); }
void ChunkKV::k_rows_f32(int layer, float* out) const { rows_f32(layer, false, 0, layout_.n_tokens, out); }
void ChunkKV::v_rows_f32(int layer, float* out) const { rows_f32(layer, true, 0, layout_.n_tokens, out); }

void write_chunk_file(const std::string& path, const ChunkKV& chunk) {
  write_file_mapped(path, kChunkHeaderBytes + chunk.bytes(), [&](uint8_t* p) {
    encode_header(p, chunk);
    std::memcpy(p + kChunkHeaderBytes, chunk.data(), chunk.bytes());
  });
}

std::shared_ptr<ChunkKV> read_chunk_file(const std::string& path, const ChunkKey* expected_key,
                                         const ChunkLayout* expected_layout) {
  return ChunkKV::from_mapped(MappedFile::open(path), expected_key, expected_layout);
}

// ---------------------------------------------------------------------------------------------
// ChunkStore

ChunkStore::ChunkStore(ChunkStoreOptions opts) : opts_(std::move(opts)) {
  if (opts_.dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(opts_.dir, ec);
  std::error_code ec2;
  if (!std::filesystem::is_directory(opts_.dir, ec2)) {
    fail(opts_.dir, ": cannot use as the chunk store folder: ", ec ? ec.message() : "not a directory");
  }
}

ChunkStore::~ChunkStore() = default;

std::string ChunkStore::file_path(const ChunkKey& key) const {
  CC_ASSERT(!opts_.dir.empty());
  return cat(opts_.dir, "/", key.hex(), ".cckv");
}

ChunkLayout ChunkStore::layout(int32_t n_layer, int32_t n_tokens, int32_t kv_dim) const {
  return ChunkLayout{n_layer, n_tokens, kv_dim, opts_.type};
}

std::shared_ptr<const ChunkKV> ChunkStore::make(const ChunkKey& key, int32_t n_layer, int32_t n_tokens,
                                                int32_t kv_dim, std::span<const float> k_all,
                                                std::span<const float> v_all) const {
  return ChunkKV::from_f32(layout(n_layer, n_tokens, kv_dim), key, k_all, v_all, opts_.numa_nodes);
}

void ChunkStore::warn(const std::string& msg, bool rejection) {
  std::lock_guard<std::mutex> lk(mu_);
  if (rejection) ++stats_.rejected;
  if (warnings_.size() >= kMaxWarnings) warnings_.erase(warnings_.begin());
  warnings_.push_back(msg);
  std::fprintf(stderr, "cacheclip: warning: %s\n", msg.c_str());
}

void ChunkStore::remove_locked(const ChunkKey& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  stats_.mem_bytes -= it->second->chunk->bytes();
  lru_.erase(it->second);
  index_.erase(it);
}

void ChunkStore::insert_locked(std::shared_ptr<const ChunkKV> chunk) {
  const ChunkKey key = chunk->key();
  remove_locked(key);
  if (chunk->bytes() > opts_.memory_budget_bytes) return;  // never fits: disk tier only
  stats_.mem_bytes += chunk->bytes();
  lru_.push_front(Entry{key, std::move(chunk)});
  index_[key] = lru_.begin();
  while (stats_.mem_bytes > opts_.memory_budget_bytes) {  // the new entry (front) fits alone
    Entry& e = lru_.back();
    stats_.mem_bytes -= e.chunk->bytes();
    index_.erase(e.key);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

std::shared_ptr<const ChunkKV> ChunkStore::get(const ChunkKey& key, const ChunkLayout& expected) {
  check_chunk_layout(expected, "ChunkStore::get: expected layout");
  std::string mismatch;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      std::shared_ptr<const ChunkKV> c = it->second->chunk;
      if (c->layout() == expected) {
        lru_.splice(lru_.begin(), lru_, it->second);
        ++stats_.mem_hits;
        return c;
      }
      mismatch = cat("chunk ", key.hex(), " in memory has layout ", to_string(c->layout()), ", not the expected ",
                     to_string(expected), "; dropped from the memory tier");
      remove_locked(key);
    }
  }
  if (!mismatch.empty()) warn(mismatch, true);
  std::shared_ptr<const ChunkKV> loaded = opts_.dir.empty() ? nullptr : load(key, expected);
  std::lock_guard<std::mutex> lk(mu_);
  if (loaded == nullptr) {
    ++stats_.misses;
    return nullptr;
  }
  ++stats_.disk_hits;
  auto it = index_.find(key);
  if (it != index_.end() && it->second->chunk->layout() == expected) {  // another thread was faster
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->chunk;
  }
  insert_locked(loaded);
  return loaded;
}

// Reads and validates the disk file of key. A missing file (also one deleted by another process
// while we look) is a plain miss. An invalid one is rejected and deleted -- if the name still
// holds the file we validated: stat before opening and after validating; when the two differ
// the name changed under us (another process replaced or removed it) and we look again.
std::shared_ptr<const ChunkKV> ChunkStore::load(const ChunkKey& key, const ChunkLayout& expected) {
  const std::string path = file_path(key);
  constexpr int kAttempts = 3;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    struct stat before {};
    if (::stat(path.c_str(), &before) != 0) {
      const int e = errno;
      if (e != ENOENT) warn(cat(path, ": cannot stat: ", std::strerror(e), "; treated as a miss"), false);
      return nullptr;
    }
    std::shared_ptr<const MappedFile> file;
    try {
      file = MappedFile::open(path);
    } catch (const Error& e) {
      struct stat now {};
      if (::stat(path.c_str(), &now) != 0) return nullptr;  // removed meanwhile: a miss
      if (!same_file(before, now)) continue;                // replaced meanwhile: look again
      warn(cat(e.what(), "; treated as a miss"), false);
      return nullptr;
    }
    try {
      return ChunkKV::from_mapped(std::move(file), &key, &expected);
    } catch (const Error& e) {
      struct stat after {};
      if (::stat(path.c_str(), &after) != 0) return nullptr;  // removed meanwhile: a miss
      if (!same_file(before, after)) continue;                // replaced meanwhile: look again
      const bool removed = remove_if_unchanged(path, before);
      warn(cat(e.what(), removed ? "; file deleted" : "; file already replaced", ", the chunk will be recomputed"),
           true);
      return nullptr;
    }
  }
  return nullptr;  // the file kept changing under us: a miss
}

void ChunkStore::put(std::shared_ptr<const ChunkKV> chunk) {
  if (chunk == nullptr) fail("ChunkStore::put: null chunk");
  bool write = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.puts;
    insert_locked(chunk);
    if (!opts_.dir.empty()) write = writing_.insert(chunk->key()).second;  // one writer per key
  }
  if (!write) return;
  struct Done {
    ChunkStore* s;
    ChunkKey key;
    ~Done() {
      std::lock_guard<std::mutex> lk(s->mu_);
      s->writing_.erase(key);
    }
  } done{this, chunk->key()};
  write_if_needed(*chunk);
}

void ChunkStore::write_if_needed(const ChunkKV& chunk) {
  const std::string path = file_path(chunk.key());
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    try {
      read_chunk_file(path, &chunk.key(), &chunk.layout());
      return;  // a valid file is there already
    } catch (const Error& e) {
      struct stat now {};
      // Gone meanwhile (erased by someone): write ours. Otherwise the invalid file is replaced
      // by the rename below.
      if (::stat(path.c_str(), &now) == 0) warn(cat(e.what(), "; replacing it"), true);
    }
  }
  try {
    write_chunk_file(path, chunk);
  } catch (const Error& e) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++stats_.write_errors;
    }
    warn(cat(e.what(), "; chunk ", chunk.key().hex(), " stays in memory only"), false);
    return;
  }
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.disk_writes;
}

bool ChunkStore::contains(const ChunkKey& key) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (index_.count(key) != 0) return true;
  }
  if (opts_.dir.empty()) return false;
  struct stat st {};
  return ::stat(file_path(key).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void ChunkStore::erase(const ChunkKey& key) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    remove_locked(key);
  }
  if (opts_.dir.empty()) return;
  const std::string path = file_path(key);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    const int e = errno;
    warn(cat(path, ": cannot delete: ", std::strerror(e)), false);
  }
}

ChunkStore::Stats ChunkStore::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  Stats s = stats_;
  s.mem_entries = index_.size();
  return s;
}

std::vector<std::string> ChunkStore::take_warnings() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::string> out;
  out.swap(warnings_);
  return out;
}

}  // namespace cc
