// The chunk KV store: precomputed per-chunk KV caches, kept in a memory tier (LRU under a byte
// budget) and a disk tier (one file per chunk), keyed by a content hash.
//
// A chunk's KV is computed once as [P, Ci] at positions |P|..|P|+|Ci|-1 and stored before RoPE
// (docs/ARCHITECTURE.md). Its key (make_chunk_key) depends only on ChunkKeyInputs: the model,
// the cache layout version, the dtype, the RoPE configuration, the prefix tokens, the chunk's own
// tokens and the tenant salt -- never on the neighbouring chunks or the question, so the same
// chunk retrieved into a different prompt finds the same entry.
//
// Disk file format, "<dir>/<keyhex>.cckv", all integers little-endian:
//
//   offset size  field
//        0    4  magic "CCKV"
//        4    4  u32 format version (kChunkFileVersion = 1)
//        8    8  u64 key.hi
//       16    8  u64 key.lo
//       24    4  i32 n_layer                     1 .. kMaxChunkLayers
//       28    4  i32 n_tokens                    1 .. kMaxChunkTokens
//       32    4  i32 kv_dim                      1 .. kMaxChunkKVDim
//       36    4  u32 storage type                0 = f16, 1 = bf16, 2 = int8 (KVStoreType)
//       40    8  u64 payload bytes               must equal chunk_payload_bytes(layout)
//       48    8  u64 XXH3-64 of the payload
//       56    8  u64 XXH3-64 of header bytes [0, 56)
//       64       payload; the file is exactly 64 + payload bytes long
//
// Payload, layer after layer, sections packed without padding (readers never assume alignment):
//   f16 / bf16: K rows [n_tokens][kv_dim] u16, then V rows [n_tokens][kv_dim] u16.
//   int8:       K scales [n_tokens] f32, K rows [n_tokens][kv_dim] i8, then V scales, V rows.
//               Row r: scale = max|x| / 127 (0 for an all-zero row), q = round(x / scale)
//               clamped to [-127, 127]; decoded x = q * scale (error <= scale / 2).
// The in-memory payload of a ChunkKV is the same bytes, so writing is one copy and reading
// from disk uses the mapping in place.
//
// A file is accepted only when every check passes: size >= 64, magic, version, header checksum,
// every field in range, payload bytes matching the layout, file size matching the header, the
// key matching the file name, the layout matching what the caller expects and the payload
// checksum. Anything else is a rejection: the store records a warning, deletes the file and
// reports a miss, so the caller recomputes the chunk.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "numa/buffer.h"
#include "simd/dtype.h"

namespace cc {

class MappedFile;

// 128-bit content key of a chunk.
struct ChunkKey {
  uint64_t hi = 0, lo = 0;

  // 32 lowercase hex characters, hi first.
  std::string hex() const;
  // Parses 32 hex characters (either case); cc::Error on any other input.
  static ChunkKey from_hex(std::string_view s);

  bool operator==(const ChunkKey&) const = default;
};

struct ChunkKeyHash {
  size_t operator()(const ChunkKey& k) const noexcept {
    return static_cast<size_t>(k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull));
  }
};

// Everything a chunk's KV depends on. Keys depend only on these fields, never on the text
// around the chunk (other chunks, the question).
struct ChunkKeyInputs {
  std::string model_fingerprint;           // identifies the weights (e.g. a hash of the model file)
  uint32_t layout_version = 0;             // bump when the stored KV's meaning changes
  DType dtype = DType::F16;                // the cache dtype the KV is meant for
  std::string rope_config;                 // RoPE theta / scaling / pairing, as text
  std::span<const int32_t> prefix_tokens;  // the shared prefix P the chunk was computed after
  std::span<const int32_t> chunk_tokens;   // the chunk's own tokens
  std::string tenant_salt;                 // isolates tenants (empty = shared)
};

// XXH3-128 over a length-prefixed serialisation of the inputs (a domain tag, then every field
// with its length or count), so no two different inputs serialise to the same bytes: ("ab","c")
// and ("a","bc") give different keys.
ChunkKey make_chunk_key(const ChunkKeyInputs& in);

// Storage type of a chunk's K/V rows. I8 = int8 with one f32 scale per row.
enum class KVStoreType : uint32_t { F16 = 0, BF16 = 1, I8 = 2, F32 = 3 };  // F32: exact (tests, references)

// "f16", "bf16", "int8".
const char* kv_store_type_name(KVStoreType t);
// Parses "f16", "bf16", "int8" (case-insensitive); cc::Error naming the accepted names otherwise.
KVStoreType parse_kv_store_type(std::string_view name);

struct ChunkLayout {
  int32_t n_layer = 0;
  int32_t n_tokens = 0;
  int32_t kv_dim = 0;
  KVStoreType type = KVStoreType::F16;

  bool operator==(const ChunkLayout&) const = default;
};

inline constexpr uint32_t kChunkFileVersion = 1;
inline constexpr size_t kChunkHeaderBytes = 64;
inline constexpr int32_t kMaxChunkLayers = 4096;
inline constexpr int32_t kMaxChunkTokens = 1 << 24;
inline constexpr int32_t kMaxChunkKVDim = 1 << 20;

// "n_layer=2 n_tokens=16 kv_dim=64 type=f16", for messages.
std::string to_string(const ChunkLayout& l);
// Throws cc::Error (prefixed with `what`) when a field is out of range.
void check_chunk_layout(const ChunkLayout& l, const std::string& what);
// Payload bytes of a chunk with this layout (see the format above). The layout must be valid.
size_t chunk_payload_bytes(const ChunkLayout& l);

// One chunk's KV: per layer K and V, each [n_tokens, kv_dim], in the storage type. Immutable
// once built, so it is shared freely between threads (std::shared_ptr<const ChunkKV>).
class ChunkKV {
 public:
  // Encodes k_all / v_all ([n_layer][n_tokens][kv_dim] contiguous f32) into the layout's
  // storage type. The payload lives in a NumaBuffer bound to `nodes` (empty = local).
  // cc::Error on an invalid layout or spans of the wrong size.
  static std::shared_ptr<ChunkKV> from_f32(const ChunkLayout& layout, const ChunkKey& key,
                                           std::span<const float> k_all, std::span<const float> v_all,
                                           const std::vector<unsigned>& nodes = {});
  // A chunk read in place from a mapped chunk file (the mapping is kept alive). Validates the
  // whole file (see the format above) against expected_key / expected_layout when given;
  // cc::Error naming the file and the problem on any failure.
  static std::shared_ptr<ChunkKV> from_mapped(std::shared_ptr<const MappedFile> file,
                                              const ChunkKey* expected_key = nullptr,
                                              const ChunkLayout* expected_layout = nullptr);

  ~ChunkKV();
  ChunkKV(const ChunkKV&) = delete;
  ChunkKV& operator=(const ChunkKV&) = delete;

  const ChunkLayout& layout() const { return layout_; }
  const ChunkKey& key() const { return key_; }
  size_t bytes() const { return bytes_; }           // payload bytes
  const uint8_t* data() const { return data_; }     // the encoded payload (format above)
  bool mapped() const { return file_ != nullptr; }  // read in place from a disk file

  // One row [kv_dim] of K / V of `layer` at token index `token`, decoded to f32.
  void k_row_f32(int layer, int token, float* out) const;
  void v_row_f32(int layer, int token, float* out) const;
  // All rows of one layer, [n_tokens, kv_dim] f32.
  void k_rows_f32(int layer, float* out) const;
  void v_rows_f32(int layer, float* out) const;

 private:
  ChunkKV() = default;
  const uint8_t* section(int layer, bool v) const;
  void rows_f32(int layer, bool v, int token0, int n, float* out) const;

  ChunkLayout layout_;
  ChunkKey key_;
  const uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
  NumaBuffer buffer_;                       // owner when built from f32
  std::shared_ptr<const MappedFile> file_;  // owner when read from disk
};

// Writes a chunk file (format above) atomically: temp file + rename (write_file_mapped).
void write_chunk_file(const std::string& path, const ChunkKV& chunk);
// MappedFile::open + ChunkKV::from_mapped.
std::shared_ptr<ChunkKV> read_chunk_file(const std::string& path, const ChunkKey* expected_key = nullptr,
                                         const ChunkLayout* expected_layout = nullptr);

struct ChunkStoreOptions {
  std::string dir;                          // disk tier folder (created if missing); empty = memory only
  size_t memory_budget_bytes = 1ull << 30;  // payload bytes the memory tier may hold
  KVStoreType type = KVStoreType::F16;      // storage type of chunks built by make()
  std::vector<unsigned> numa_nodes;         // where make() puts payloads (empty = local)
};

// Memory tier (LRU by payload bytes) over an optional disk tier. Every public method may be
// called from several threads at once, and several processes may share one directory: files
// appear only by rename (complete), and every file is validated fully before it is used.
class ChunkStore {
 public:
  // cc::Error when dir cannot be created or is not a directory.
  explicit ChunkStore(ChunkStoreOptions opts);
  ~ChunkStore();
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;

  const ChunkStoreOptions& options() const { return opts_; }
  // The layout of a chunk this store builds: options().type.
  ChunkLayout layout(int32_t n_layer, int32_t n_tokens, int32_t kv_dim) const;
  // ChunkKV::from_f32 with options().type and options().numa_nodes (does not put it).
  std::shared_ptr<const ChunkKV> make(const ChunkKey& key, int32_t n_layer, int32_t n_tokens, int32_t kv_dim,
                                      std::span<const float> k_all, std::span<const float> v_all) const;

  // The chunk for key, or nullptr (the caller recomputes). Memory tier first (an LRU touch),
  // then the disk tier (validated, then promoted to the memory tier, still backed by the
  // mapping). A disk file that fails validation or whose layout differs from `expected` is
  // rejected: a warning (take_warnings, and one "cacheclip: warning:" line on stderr), the file
  // deleted, counted in stats().rejected, and nullptr. A memory entry with another layout is
  // dropped the same way (its disk file is left to the disk check).
  std::shared_ptr<const ChunkKV> get(const ChunkKey& key, const ChunkLayout& expected);
  // Inserts into the memory tier (evicting least-recently-used entries until the payload bytes
  // fit the budget; a chunk larger than the budget is not kept in memory) and, with a dir,
  // writes "<dir>/<keyhex>.cckv" unless a valid file for it is already there. Disk write
  // failures are warnings (the memory tier still has the chunk), not exceptions.
  void put(std::shared_ptr<const ChunkKV> chunk);
  // In the memory tier, or a file for it exists (not validated until get).
  bool contains(const ChunkKey& key);
  // Removes key from the memory tier and deletes its disk file.
  void erase(const ChunkKey& key);

  struct Stats {
    uint64_t mem_hits = 0;
    uint64_t disk_hits = 0;
    uint64_t misses = 0;    // every get that returned nullptr (rejections included)
    uint64_t rejected = 0;  // files (or memory entries) found invalid or of another layout
    uint64_t evictions = 0;
    uint64_t puts = 0;
    uint64_t disk_writes = 0;   // files written by put
    uint64_t write_errors = 0;  // failed disk writes (each also a warning)
    size_t mem_bytes = 0;       // payload bytes in the memory tier (<= memory_budget_bytes)
    size_t mem_entries = 0;
  };
  Stats stats() const;
  // The warnings recorded since the last call (oldest first; at most the last 1024), and clears them.
  std::vector<std::string> take_warnings();

  // "<dir>/<keyhex>.cckv" (dir must be set).
  std::string file_path(const ChunkKey& key) const;

 private:
  struct Entry {
    ChunkKey key;
    std::shared_ptr<const ChunkKV> chunk;
  };
  void insert_locked(std::shared_ptr<const ChunkKV> chunk);
  void remove_locked(const ChunkKey& key);
  void warn(const std::string& msg, bool rejection);
  std::shared_ptr<const ChunkKV> load(const ChunkKey& key, const ChunkLayout& expected);
  void write_if_needed(const ChunkKV& chunk);

  ChunkStoreOptions opts_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<ChunkKey, std::list<Entry>::iterator, ChunkKeyHash> index_;
  std::unordered_set<ChunkKey, ChunkKeyHash> writing_;  // keys a thread of ours is writing
  Stats stats_;
  std::vector<std::string> warnings_;
};

}  // namespace cc

template <>
struct std::hash<cc::ChunkKey> {
  size_t operator()(const cc::ChunkKey& k) const noexcept { return cc::ChunkKeyHash()(k); }
};
