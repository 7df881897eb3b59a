// Chunk KV store: keys, encodings, the file format's validation, LRU eviction, threads and
// processes sharing one directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include "base/error.h"
#include "base/mapped_file.h"
#include "reuse/chunk_store.h"
#include "simd/convert.h"
#include "test_util.h"

namespace cc {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A unique folder for one test, removed with everything in it at the end.
struct TempDir {
  std::string path;
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path = (fs::temp_directory_path() /
            cat("cacheclip-chunkstore-", ::getpid(), "-", counter++, "-", std::hex, rd()))
               .string();
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<float> values(uint64_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-4.f, 4.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  if (n > 3) v[n / 2] = 0.f;  // exact zeros survive every encoding
  return v;
}

size_t n_floats(const ChunkLayout& l) {
  return static_cast<size_t>(l.n_layer) * static_cast<size_t>(l.n_tokens) * static_cast<size_t>(l.kv_dim);
}

ChunkKey key_of(int i) {
  std::vector<int32_t> prefix{1, 2, 3};
  std::vector<int32_t> chunk{i, i + 1, i * 7};
  return make_chunk_key({"model-A", 1, DType::F16, "theta=10000", prefix, chunk, ""});
}

struct Data {
  std::vector<float> k, v;
};
Data data_for(const ChunkLayout& l, uint64_t seed) {
  return {values(2 * seed, n_floats(l)), values(2 * seed + 1, n_floats(l))};
}

std::shared_ptr<const ChunkKV> build(const ChunkLayout& l, const ChunkKey& key, uint64_t seed) {
  Data d = data_for(l, seed);
  return ChunkKV::from_f32(l, key, d.k, d.v);
}

// All K then all V rows decoded, layer by layer.
std::vector<float> decode_all(const ChunkKV& c) {
  const ChunkLayout& l = c.layout();
  const size_t per = static_cast<size_t>(l.n_tokens) * static_cast<size_t>(l.kv_dim);
  std::vector<float> out(2 * n_floats(l));
  for (int layer = 0; layer < l.n_layer; ++layer) {
    c.k_rows_f32(layer, out.data() + static_cast<size_t>(layer) * per);
    c.v_rows_f32(layer, out.data() + n_floats(l) + static_cast<size_t>(layer) * per);
  }
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Checks every decoded element of c against the f32 source it was built from.
void expect_matches_source(const ChunkKV& c, const Data& d) {
  const ChunkLayout& l = c.layout();
  const int kd = l.kv_dim;
  std::vector<float> row(static_cast<size_t>(kd)), rows(static_cast<size_t>(l.n_tokens) * kd);
  for (int which = 0; which < 2; ++which) {
    const std::vector<float>& src = which ? d.v : d.k;
    for (int layer = 0; layer < l.n_layer; ++layer) {
      if (which) c.v_rows_f32(layer, rows.data());
      else c.k_rows_f32(layer, rows.data());
      for (int t = 0; t < l.n_tokens; ++t) {
        if (which) c.v_row_f32(layer, t, row.data());
        else c.k_row_f32(layer, t, row.data());
        const float* x = src.data() + (static_cast<size_t>(layer) * l.n_tokens + t) * kd;
        float m = 0;
        for (int j = 0; j < kd; ++j) m = std::max(m, std::fabs(x[j]));
        const float scale = m / 127.f;
        for (int j = 0; j < kd; ++j) {
          ASSERT_EQ(row[j], rows[static_cast<size_t>(t) * kd + j]) << "row and bulk decode differ";
          float want = 0;
          switch (l.type) {
            case KVStoreType::F16: want = fp16_to_f32(f32_to_fp16(x[j])); break;
            case KVStoreType::BF16: want = bf16_to_f32(f32_to_bf16(x[j])); break;
            case KVStoreType::F32: want = x[j]; break;
            case KVStoreType::I8:
              ASSERT_LE(std::fabs(row[j] - x[j]), scale * 0.5f * (1 + 1e-5f) + 1e-30f)
                  << "layer " << layer << " token " << t << " dim " << j;
              continue;
          }
          ASSERT_EQ(row[j], want) << kv_store_type_name(l.type) << " layer " << layer << " token " << t
                                  << " dim " << j << " x " << x[j];
        }
      }
    }
  }
}

ChunkStoreOptions disk_opts(const std::string& dir, size_t budget = 1ull << 30) {
  ChunkStoreOptions o;
  o.dir = dir;
  o.memory_budget_bytes = budget;
  return o;
}

std::vector<std::string> stray_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp.") != std::string::npos || name.find(".bad.") != std::string::npos) out.push_back(name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Keys

TEST(ChunkKey, StableAndSensitiveToEveryInput) {
  const std::vector<int32_t> prefix{10, 20, 30}, chunk{40, 50};
  ChunkKeyInputs base{"model-A", 3, DType::F16, "theta=1e6 pairs=half", prefix, chunk, "tenant-1"};
  const ChunkKey k0 = make_chunk_key(base);
  EXPECT_EQ(make_chunk_key(base), k0);
  {
    const std::vector<int32_t> p2 = prefix, c2 = chunk;  // same values, other storage
    ChunkKeyInputs same = base;
    same.prefix_tokens = p2;
    same.chunk_tokens = c2;
    EXPECT_EQ(make_chunk_key(same), k0);
  }
  std::vector<ChunkKey> keys{k0};
  auto variant = [&](const std::function<void(ChunkKeyInputs&)>& change) {
    ChunkKeyInputs in = base;
    change(in);
    keys.push_back(make_chunk_key(in));
  };
  const std::vector<int32_t> prefix2{10, 21, 30}, chunk2{40, 51}, prefix_short{10, 20}, chunk_long{30, 40, 50};
  variant([](ChunkKeyInputs& in) { in.model_fingerprint = "model-B"; });
  variant([](ChunkKeyInputs& in) { in.layout_version = 4; });
  variant([](ChunkKeyInputs& in) { in.dtype = DType::BF16; });
  variant([](ChunkKeyInputs& in) { in.rope_config = "theta=1e4 pairs=half"; });
  variant([&](ChunkKeyInputs& in) { in.prefix_tokens = prefix2; });
  variant([&](ChunkKeyInputs& in) { in.chunk_tokens = chunk2; });
  variant([](ChunkKeyInputs& in) { in.tenant_salt = "tenant-2"; });
  variant([](ChunkKeyInputs& in) { in.tenant_salt = ""; });
  // A token moved from the prefix into the chunk: same concatenation, different key.
  variant([&](ChunkKeyInputs& in) {
    in.prefix_tokens = prefix_short;
    in.chunk_tokens = chunk_long;
  });
  // Field boundaries are unambiguous: ("ab","c") != ("a","bc").
  variant([](ChunkKeyInputs& in) {
    in.model_fingerprint = "model-A" + std::string("t");
    in.rope_config = "heta=1e6 pairs=half";
  });
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = i + 1; j < keys.size(); ++j) EXPECT_NE(keys[i], keys[j]) << "variants " << i << " and " << j;
  }
  ChunkKeyInputs a{"ab", 1, DType::F16, "c", {}, {}, ""}, b{"a", 1, DType::F16, "bc", {}, {}, ""};
  EXPECT_NE(make_chunk_key(a), make_chunk_key(b));
  ChunkKeyInputs c{"x", 1, DType::F16, "", {}, {}, "y"}, d{"x", 1, DType::F16, "y", {}, {}, ""};
  EXPECT_NE(make_chunk_key(c), make_chunk_key(d));
}

TEST(ChunkKey, HexRoundTrip) {
  for (ChunkKey k : {ChunkKey{0, 0}, ChunkKey{~0ull, ~0ull}, ChunkKey{0x0123456789abcdefull, 0xfedcba9876543210ull},
                     key_of(1), key_of(2)}) {
    const std::string h = k.hex();
    ASSERT_EQ(h.size(), 32u);
    for (char c : h) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << h;
    EXPECT_EQ(ChunkKey::from_hex(h), k);
    std::string upper = h;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(ChunkKey::from_hex(upper), k);
  }
  EXPECT_EQ(ChunkKey({0x0123456789abcdefull, 0x10ull}).hex(), "0123456789abcdef0000000000000010");
  EXPECT_EQ(std::hash<ChunkKey>()(key_of(1)), std::hash<ChunkKey>()(key_of(1)));
}

TEST(ChunkKey, BadHexRejected) {
  const std::string good = key_of(3).hex();
  for (const std::string& bad : {std::string(), good.substr(1), good + "0", "g" + good.substr(1),
                                 " " + good.substr(1), "0x" + good.substr(2), good.substr(0, 31) + "-"}) {
    EXPECT_THAT(test::error_of([&] { ChunkKey::from_hex(bad); }), HasSubstr("chunk key")) << "'" << bad << "'";
  }
}

TEST(KVStoreType, NamesRoundTripAndUnknownIsAnError) {
  for (KVStoreType t : {KVStoreType::F16, KVStoreType::BF16, KVStoreType::I8}) {
    EXPECT_EQ(parse_kv_store_type(kv_store_type_name(t)), t);
  }
  EXPECT_STREQ(kv_store_type_name(KVStoreType::I8), "int8");
  EXPECT_EQ(parse_kv_store_type("BF16"), KVStoreType::BF16);
  const std::string e = test::error_of([] { parse_kv_store_type("fp8"); });
  EXPECT_THAT(e, HasSubstr("'fp8'"));
  EXPECT_THAT(e, HasSubstr("f16, bf16, int8 or f32"));
}

// ---------------------------------------------------------------------------------------------
// Encodings and round trips

class RoundTrip : public ::testing::TestWithParam<KVStoreType> {};

TEST_P(RoundTrip, MemoryFileAndStoreTiers) {
  const KVStoreType type = GetParam();
  TempDir dir;
  const std::vector<std::array<int32_t, 3>> shapes{{1, 1, 7}, {2, 5, 33}, {3, 1, 1}, {2, 17, 64}, {1, 3, 129}};
  int i = 0;
  for (const auto& s : shapes) {
    SCOPED_TRACE(cat(kv_store_type_name(type), " n_layer=", s[0], " n_tokens=", s[1], " kv_dim=", s[2]));
    const ChunkLayout l{s[0], s[1], s[2], type};
    const ChunkKey key = key_of(100 + i);
    const Data d = data_for(l, static_cast<uint64_t>(i++));
    auto c = ChunkKV::from_f32(l, key, d.k, d.v);
    EXPECT_EQ(c->layout(), l);
    EXPECT_EQ(c->key(), key);
    EXPECT_EQ(c->bytes(), chunk_payload_bytes(l));
    EXPECT_FALSE(c->mapped());
    expect_matches_source(*c, d);
    const std::vector<float> mem = decode_all(*c);

    // Plain file round trip: the same bytes, the same decode.
    const std::string path = dir.path + "/" + key.hex() + ".cckv";
    write_chunk_file(path, *c);
    EXPECT_EQ(fs::file_size(path), kChunkHeaderBytes + c->bytes());
    auto f = read_chunk_file(path, &key, &l);
    EXPECT_TRUE(f->mapped());
    ASSERT_EQ(f->bytes(), c->bytes());
    EXPECT_EQ(std::memcmp(f->data(), c->data(), c->bytes()), 0);
    EXPECT_TRUE(same_bits(decode_all(*f), mem));
    fs::remove(path);

    // Store: memory tier, then a fresh store reading the disk tier.
    {
      ChunkStore s1(disk_opts(dir.path));
      s1.put(c);
      auto m = s1.get(key, l);
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(m.get(), c.get());
      EXPECT_EQ(s1.stats().mem_hits, 1u);
      EXPECT_EQ(s1.stats().disk_writes, 1u);
    }
    ChunkStore s2(disk_opts(dir.path));
    EXPECT_TRUE(s2.contains(key));
    auto g = s2.get(key, l);
    ASSERT_NE(g, nullptr);
    EXPECT_TRUE(g->mapped());
    EXPECT_EQ(g->key(), key);
    EXPECT_TRUE(same_bits(decode_all(*g), mem));
    expect_matches_source(*g, d);
    EXPECT_EQ(s2.stats().disk_hits, 1u);
    EXPECT_EQ(s2.stats().mem_entries, 1u);  // promoted
    EXPECT_EQ(s2.get(key, l), g);
    EXPECT_EQ(s2.stats().mem_hits, 1u);
    EXPECT_TRUE(s2.take_warnings().empty());
  }
  EXPECT_TRUE(stray_files(dir.path).empty());
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip, ::testing::Values(KVStoreType::F16, KVStoreType::BF16, KVStoreType::I8, KVStoreType::F32),
                         [](const auto& info) { return std::string(kv_store_type_name(info.param)); });

TEST(ChunkKV, Int8EdgeRows) {
  const ChunkLayout l{1, 3, 5, KVStoreType::I8};
  std::vector<float> k{0, 0, 0, 0, 0,  1, -1, 0.5f, 127, -127,  1e-20f, -3e-20f, 0, 2e-20f, 1e-21f};
  std::vector<float> v(k.rbegin(), k.rend());
  auto c = ChunkKV::from_f32(l, key_of(1), k, v);
  std::vector<float> out(15);
  c->k_rows_f32(0, out.data());
  for (int j = 0; j < 5; ++j) EXPECT_EQ(out[j], 0.f);  // all-zero row stays exactly zero
  EXPECT_EQ(out[8], 127.f);                             // the max element is exact
  EXPECT_EQ(out[9], -127.f);
  EXPECT_EQ(out[5], 1.f);
  expect_matches_source(*c, {k, v});
}

TEST(ChunkKV, BadInputsAreErrors) {
  const ChunkLayout l{2, 3, 4, KVStoreType::F16};
  std::vector<float> ok(24), short_(23);
  EXPECT_THAT(test::error_of([&] { ChunkKV::from_f32(l, {}, short_, ok); }), HasSubstr("needs 24 each"));
  EXPECT_THAT(test::error_of([&] { ChunkKV::from_f32({0, 3, 4, KVStoreType::F16}, {}, ok, ok); }),
              HasSubstr("n_layer 0 is out of range"));
  EXPECT_THAT(test::error_of([&] { ChunkKV::from_f32({2, 3, 4, static_cast<KVStoreType>(7)}, {}, ok, ok); }),
              HasSubstr("unknown storage type 7"));
  ChunkStore s(ChunkStoreOptions{});
  EXPECT_THAT(test::error_of([&] { s.put(nullptr); }), HasSubstr("null chunk"));
  EXPECT_THAT(test::error_of([&] { s.get(key_of(1), {1, -1, 4, KVStoreType::F16}); }), HasSubstr("n_tokens -1"));
}

TEST(ChunkStore, MemoryOnlyPutGetContainsErase) {
  ChunkStoreOptions o;
  o.type = KVStoreType::BF16;
  ChunkStore s(o);
  const ChunkLayout l = s.layout(2, 4, 8);
  EXPECT_EQ(l.type, KVStoreType::BF16);
  const Data d = data_for(l, 7);
  auto c = s.make(key_of(1), 2, 4, 8, d.k, d.v);
  EXPECT_EQ(c->layout(), l);
  EXPECT_EQ(s.get(key_of(1), l), nullptr);
  EXPECT_FALSE(s.contains(key_of(1)));
  s.put(c);
  EXPECT_TRUE(s.contains(key_of(1)));
  EXPECT_EQ(s.get(key_of(1), l), c);
  // Asking for another layout: dropped and reported, never returned.
  EXPECT_EQ(s.get(key_of(1), {2, 4, 8, KVStoreType::F16}), nullptr);
  auto w = s.take_warnings();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_THAT(w[0], HasSubstr("not the expected"));
  EXPECT_FALSE(s.contains(key_of(1)));
  s.put(c);
  s.erase(key_of(1));
  EXPECT_FALSE(s.contains(key_of(1)));
  EXPECT_EQ(s.get(key_of(1), l), nullptr);
  const auto st = s.stats();
  EXPECT_EQ(st.puts, 2u);
  EXPECT_EQ(st.mem_hits, 1u);
  EXPECT_EQ(st.misses, 3u);
  EXPECT_EQ(st.rejected, 1u);
  EXPECT_EQ(st.mem_bytes, 0u);
  EXPECT_EQ(st.mem_entries, 0u);
  EXPECT_EQ(st.disk_writes, 0u);
}

// ---------------------------------------------------------------------------------------------
// Rejected files

const ChunkLayout kLayout{2, 6, 33, KVStoreType::F16};

// Writes the chunk of key_of(1) through a store and returns its file's bytes.
std::vector<uint8_t> good_file(const std::string& dir, std::string* path) {
  ChunkStore s(disk_opts(dir));
  s.put(build(kLayout, key_of(1), 1));
  *path = s.file_path(key_of(1));
  return test::read_bytes(*path);
}

// A fresh store (empty memory tier) must reject the file at `path` with a warning containing
// `problem` and the file name, delete it, and then work normally again.
void expect_rejected(const std::string& dir, const std::string& path, const std::string& problem,
                     const ChunkLayout& expected = kLayout) {
  ChunkStore s(disk_opts(dir));
  testing::internal::CaptureStderr();
  auto g = s.get(key_of(1), expected);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(g, nullptr);
  auto w = s.take_warnings();
  ASSERT_EQ(w.size(), 1u) << problem;
  EXPECT_THAT(w[0], HasSubstr(problem));
  EXPECT_THAT(w[0], HasSubstr(fs::path(path).filename().string()));
  EXPECT_THAT(w[0], HasSubstr("deleted"));
  EXPECT_EQ(err.rfind("cacheclip: warning: ", 0), 0u) << err;
  EXPECT_THAT(err, HasSubstr(problem));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
  EXPECT_FALSE(fs::exists(path)) << problem;
  EXPECT_EQ(s.stats().rejected, 1u);
  EXPECT_EQ(s.stats().misses, 1u);
  EXPECT_TRUE(s.take_warnings().empty());
  // Recompute + put + get works, also from disk in another store.
  const Data d = data_for(expected, 1);
  s.put(ChunkKV::from_f32(expected, key_of(1), d.k, d.v));
  ASSERT_NE(s.get(key_of(1), expected), nullptr);
  ChunkStore s2(disk_opts(dir));
  auto g2 = s2.get(key_of(1), expected);
  ASSERT_NE(g2, nullptr);
  EXPECT_TRUE(g2->mapped());
  expect_matches_source(*g2, d);
  EXPECT_TRUE(s2.take_warnings().empty());
  EXPECT_TRUE(stray_files(dir).empty());
  fs::remove(path);
}

TEST(ChunkStoreRejects, CorruptPayload) {
  TempDir dir;
  std::string path;
  const std::vector<uint8_t> good = good_file(dir.path, &path);
  for (size_t off : {kChunkHeaderBytes, kChunkHeaderBytes + 1000, good.size() - 1}) {
    std::vector<uint8_t> bad = good;
    bad[off] ^= 0x10;
    test::write_bytes(path, bad);
    expect_rejected(dir.path, path, "payload checksum mismatch");
  }
}

TEST(ChunkStoreRejects, CorruptHeader) {
  TempDir dir;
  std::string path;
  const std::vector<uint8_t> good = good_file(dir.path, &path);
  const std::vector<std::pair<size_t, std::string>> cases{
      {0, "bad magic"},
      {3, "bad magic"},
      {4, "unsupported chunk format version"},
      {8, "header checksum mismatch"},   // key
      {20, "header checksum mismatch"},  // key
      {24, "header checksum mismatch"},  // n_layer
      {32, "header checksum mismatch"},  // kv_dim
      {36, "header checksum mismatch"},  // type
      {40, "header checksum mismatch"},  // payload bytes
      {48, "header checksum mismatch"},  // payload checksum
      {63, "header checksum mismatch"},  // header checksum
  };
  for (const auto& [off, problem] : cases) {
    SCOPED_TRACE(cat("offset ", off));
    std::vector<uint8_t> bad = good;
    bad[off] ^= 0x01;
    test::write_bytes(path, bad);
    expect_rejected(dir.path, path, problem);
  }
}

// Headers that pass the header checksum but describe something impossible.
TEST(ChunkStoreRejects, OutOfRangeFields) {
  TempDir dir;
  std::string path;
  const std::vector<uint8_t> good = good_file(dir.path, &path);
  auto with = [&](size_t off, auto value) {
    std::vector<uint8_t> b = good;
    std::memcpy(b.data() + off, &value, sizeof value);
    const uint64_t h = XXH3_64bits(b.data(), 56);
    std::memcpy(b.data() + 56, &h, 8);
    return b;
  };
  const std::vector<std::pair<std::vector<uint8_t>, std::string>> cases{
      {with(24, int32_t{0}), "n_layer 0 is out of range"},
      {with(24, int32_t{1 << 30}), "n_layer 1073741824 is out of range"},
      {with(28, int32_t{-5}), "n_tokens -5 is out of range"},
      {with(32, int32_t{0x7fffffff}), "kv_dim 2147483647 is out of range"},
      {with(36, uint32_t{9}), "unknown storage type 9"},
      {with(40, uint64_t{1} << 62), "payload bytes but layout"},
      {with(40, uint64_t{0}), "payload bytes but layout"},
      {with(28, int32_t{5}), "payload bytes but layout"},  // n_tokens changed, payload bytes not
  };
  for (const auto& [bytes, problem] : cases) {
    test::write_bytes(path, bytes);
    expect_rejected(dir.path, path, problem);
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  test::write_bytes(path, longer);
  expect_rejected(dir.path, path, "size mismatch");
  test::write_bytes(path, std::vector<uint8_t>(200, 'x'));
  expect_rejected(dir.path, path, "bad magic");
}

TEST(ChunkStoreRejects, Truncated) {
  TempDir dir;
  std::string path;
  const std::vector<uint8_t> good = good_file(dir.path, &path);
  for (size_t len : {size_t{0}, size_t{1}, size_t{40}, kChunkHeaderBytes - 1, kChunkHeaderBytes,
                     kChunkHeaderBytes + 1, good.size() / 2, good.size() - 1}) {
    SCOPED_TRACE(cat("length ", len));
    test::write_bytes(path, std::vector<uint8_t>(good.begin(), good.begin() + static_cast<ptrdiff_t>(len)));
    expect_rejected(dir.path, path, "truncated");
  }
}

TEST(ChunkStoreRejects, ForeignFiles) {
  TempDir dir;
  const std::string path = dir.path + "/" + key_of(1).hex() + ".cckv";
  // Another layout under the right key.
  for (const ChunkLayout& other : {ChunkLayout{2, 6, 32, KVStoreType::F16}, ChunkLayout{3, 6, 33, KVStoreType::F16},
                                   ChunkLayout{2, 7, 33, KVStoreType::F16}, ChunkLayout{2, 6, 33, KVStoreType::BF16},
                                   ChunkLayout{2, 6, 33, KVStoreType::I8}}) {
    SCOPED_TRACE(to_string(other));
    write_chunk_file(path, *build(other, key_of(1), 1));
    expect_rejected(dir.path, path, "differs from the expected");
  }
  // The file of another key renamed to key_of(1)'s name.
  write_chunk_file(dir.path + "/other.cckv", *build(kLayout, key_of(2), 1));
  fs::rename(dir.path + "/other.cckv", path);
  expect_rejected(dir.path, path, "holds the chunk of key " + key_of(2).hex());
  // A valid int8 file asked for as f16, through the store's own writer.
  {
    ChunkStoreOptions o = disk_opts(dir.path);
    o.type = KVStoreType::I8;
    ChunkStore s(o);
    const Data d = data_for(kLayout, 1);
    s.put(s.make(key_of(1), kLayout.n_layer, kLayout.n_tokens, kLayout.kv_dim, d.k, d.v));
  }
  expect_rejected(dir.path, path, "type=int8 differs from the expected");
}

// A FIFO (or a directory) under a chunk's name is a miss with a warning: opening it must not
// wait for a writer. read_text_file refuses a directory instead of reading it as empty text.
TEST(ChunkStoreRejects, FifoOrDirectoryInAChunksPlaceIsAMissNotAHang) {
  TempDir dir;
  const std::string path = dir.path + "/" + key_of(1).hex() + ".cckv";
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  {
    ChunkStore s(disk_opts(dir.path));
    auto got = std::async(std::launch::async, [&] { return s.get(key_of(1), kLayout); });
    if (got.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);  // releases the blocked reader
      if (fd >= 0) ::close(fd);
      FAIL() << "ChunkStore::get blocked on a FIFO";
    }
    EXPECT_EQ(got.get(), nullptr);
    const auto w = s.take_warnings();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_THAT(w[0], HasSubstr("not a regular file; treated as a miss"));
  }
  EXPECT_THAT(test::error_of([&] { MappedFile::open(path); }), HasSubstr("not a regular file"));
  fs::remove(path);
  fs::create_directory(path);
  EXPECT_THAT(test::error_of([&] { MappedFile::open(path); }), HasSubstr("is a directory, not a file"));
  EXPECT_THAT(test::error_of([&] { read_text_file(path); }), HasSubstr("is a directory, not a file"));
  ChunkStore s(disk_opts(dir.path));
  EXPECT_EQ(s.get(key_of(1), kLayout), nullptr);
  EXPECT_TRUE(fs::is_directory(path)) << "a directory in the store is not the store's to delete";
}

TEST(ChunkStore, PutReplacesAnInvalidFileAndKeepsAValidOne) {
  TempDir dir;
  std::string path;
  const std::vector<uint8_t> good = good_file(dir.path, &path);
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  {
    ChunkStore s(disk_opts(dir.path));
    s.put(build(kLayout, key_of(1), 1));  // a valid file is there: not rewritten
    EXPECT_EQ(s.stats().disk_writes, 0u);
    EXPECT_TRUE(s.take_warnings().empty());
  }
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);

  test::write_bytes(path, std::vector<uint8_t>(good.begin(), good.begin() + 100));
  {
    ChunkStore s(disk_opts(dir.path));
    testing::internal::CaptureStderr();
    s.put(build(kLayout, key_of(1), 1));
    testing::internal::GetCapturedStderr();
    EXPECT_EQ(s.stats().disk_writes, 1u);
    EXPECT_EQ(s.stats().rejected, 1u);
    auto w = s.take_warnings();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_THAT(w[0], HasSubstr("truncated"));
    EXPECT_THAT(w[0], HasSubstr("replacing it"));
  }
  EXPECT_EQ(test::read_bytes(path), good);
  EXPECT_TRUE(stray_files(dir.path).empty());
}

TEST(ChunkStore, EraseRemovesBothTiers) {
  TempDir dir;
  ChunkStore s(disk_opts(dir.path));
  s.put(build(kLayout, key_of(1), 1));
  ASSERT_TRUE(fs::exists(s.file_path(key_of(1))));
  s.erase(key_of(1));
  EXPECT_FALSE(s.contains(key_of(1)));
  EXPECT_FALSE(fs::exists(s.file_path(key_of(1))));
  EXPECT_EQ(s.get(key_of(1), kLayout), nullptr);
  s.erase(key_of(1));  // erasing nothing is fine
  EXPECT_TRUE(s.take_warnings().empty());
}

TEST(ChunkStore, UnusableDirectoryIsAnError) {
  TempDir dir;
  test::write_bytes(dir.path + "/file", {1, 2, 3});
  EXPECT_THAT(test::error_of([&] { ChunkStore s(disk_opts(dir.path + "/file")); }),
              HasSubstr("cannot use as the chunk store folder"));
}

// ---------------------------------------------------------------------------------------------
// Eviction

TEST(ChunkStore, LruEvictionUnderByteBudget) {
  const ChunkLayout l{1, 4, 16, KVStoreType::F16};
  const size_t one = chunk_payload_bytes(l);  // 256 bytes
  for (bool with_dir : {false, true}) {
    SCOPED_TRACE(with_dir ? "memory + disk" : "memory only");
    TempDir dir;
    ChunkStoreOptions o;
    if (with_dir) o.dir = dir.path;
    o.memory_budget_bytes = 3 * one + one / 2;  // three fit
    ChunkStore s(o);
    std::vector<std::shared_ptr<const ChunkKV>> c;
    for (int i = 0; i < 6; ++i) c.push_back(build(l, key_of(i), static_cast<uint64_t>(i)));
    auto in_memory = [&](int i) {
      const uint64_t hits = s.stats().mem_hits;
      auto g = s.get(key_of(i), l);  // note: also an LRU touch / a promotion from disk
      return g != nullptr && s.stats().mem_hits == hits + 1;
    };
    s.put(c[0]);
    s.put(c[1]);
    s.put(c[2]);
    EXPECT_EQ(s.stats().mem_entries, 3u);
    EXPECT_EQ(s.stats().mem_bytes, 3 * one);
    EXPECT_NE(s.get(key_of(0), l), nullptr);  // touch 0: now 1 is the least recently used
    s.put(c[3]);                              // evicts 1
    EXPECT_LE(s.stats().mem_bytes, o.memory_budget_bytes);
    EXPECT_EQ(s.stats().evictions, 1u);
    EXPECT_TRUE(in_memory(0));
    EXPECT_TRUE(in_memory(2));
    EXPECT_TRUE(in_memory(3));
    // Order now (most recent first): 3, 2, 0.
    s.put(c[4]);  // evicts 0
    EXPECT_EQ(s.stats().evictions, 2u);
    EXPECT_LE(s.stats().mem_bytes, o.memory_budget_bytes);
    if (!with_dir) {
      EXPECT_EQ(s.get(key_of(1), l), nullptr);
      EXPECT_EQ(s.get(key_of(0), l), nullptr);
      EXPECT_TRUE(in_memory(2));
    } else {
      // Evicted entries come back from the disk tier (and are promoted, evicting others).
      const uint64_t disk = s.stats().disk_hits;
      auto g = s.get(key_of(1), l);
      ASSERT_NE(g, nullptr);
      EXPECT_TRUE(g->mapped());
      EXPECT_TRUE(same_bits(decode_all(*g), decode_all(*c[1])));
      EXPECT_EQ(s.stats().disk_hits, disk + 1);
      EXPECT_TRUE(in_memory(1));
      EXPECT_LE(s.stats().mem_bytes, o.memory_budget_bytes);
      EXPECT_NE(s.get(key_of(0), l), nullptr);
      EXPECT_EQ(s.stats().disk_hits, disk + 2);
    }
    EXPECT_LE(s.stats().mem_bytes, o.memory_budget_bytes);
    EXPECT_EQ(s.stats().mem_entries, 3u);

    // Larger than the whole budget: not kept in memory, but on disk when there is one.
    const ChunkLayout big{4, 4, 16, KVStoreType::F16};
    const auto entries = s.stats().mem_entries;
    s.put(build(big, key_of(9), 9));
    EXPECT_EQ(s.stats().mem_entries, entries);
    EXPECT_LE(s.stats().mem_bytes, o.memory_budget_bytes);
    auto g = s.get(key_of(9), big);
    EXPECT_EQ(g != nullptr, with_dir);
    EXPECT_LE(s.stats().mem_bytes, o.memory_budget_bytes);
    EXPECT_TRUE(s.take_warnings().empty());
  }
}

TEST(ChunkStore, ZeroBudgetKeepsNothingInMemory) {
  TempDir dir;
  ChunkStore s(disk_opts(dir.path, 0));
  auto c = build(kLayout, key_of(1), 1);
  s.put(c);
  EXPECT_EQ(s.stats().mem_entries, 0u);
  auto g = s.get(key_of(1), kLayout);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(same_bits(decode_all(*g), decode_all(*c)));
  EXPECT_EQ(s.stats().mem_bytes, 0u);
  EXPECT_EQ(s.stats().disk_hits, 1u);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

constexpr int kKeys = 20;

struct Expected {
  std::vector<std::shared_ptr<const ChunkKV>> chunks;  // what is put for key i
  std::vector<std::vector<float>> decoded;             // and its decode
};

// Layouts differ by key (so a chunk of one key can never pass for another's).
Expected expected_chunks(KVStoreType type) {
  Expected e;
  for (int i = 0; i < kKeys; ++i) {
    const ChunkLayout l{2, 8 + i % 3, 33, type};
    e.chunks.push_back(build(l, key_of(i), 1000 + static_cast<uint64_t>(i)));
    e.decoded.push_back(decode_all(*e.chunks.back()));
  }
  return e;
}

// Random put/get/erase against `s` for `seconds`; returns the number of wrong chunks seen.
int hammer(ChunkStore& s, const Expected& e, uint64_t seed, double seconds, int* gets_ok) {
  std::mt19937_64 rng(seed);
  int wrong = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    const int i = static_cast<int>(rng() % kKeys);
    const int op = static_cast<int>(rng() % 100);
    if (op < 35) {
      s.put(e.chunks[static_cast<size_t>(i)]);
    } else if (op < 38) {
      s.erase(key_of(i));
    } else {
      auto g = s.get(key_of(i), e.chunks[static_cast<size_t>(i)]->layout());
      if (g == nullptr) continue;
      ++*gets_ok;
      if (g->key() != key_of(i) || g->layout() != e.chunks[static_cast<size_t>(i)]->layout() ||
          !same_bits(decode_all(*g), e.decoded[static_cast<size_t>(i)])) {
        ++wrong;
      }
    }
  }
  return wrong;
}

TEST(ChunkStoreConcurrency, FourThreadsOneStore) {
  TempDir dir;
  const Expected e = expected_chunks(KVStoreType::F16);
  ChunkStore s(disk_opts(dir.path, 6 * e.chunks[0]->bytes()));  // ~6 of 20 fit: disk reads too
  std::atomic<int> wrong{0}, ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      int gets = 0;
      wrong += hammer(s, e, 77 + static_cast<uint64_t>(t), 1.0, &gets);
      ok += gets;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(ok.load(), 100);
  const auto st = s.stats();
  EXPECT_GT(st.disk_hits, 0u);
  EXPECT_GT(st.mem_hits, 0u);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.rejected, 0u);
  EXPECT_EQ(st.write_errors, 0u);
  EXPECT_LE(st.mem_bytes, 6 * e.chunks[0]->bytes());
  EXPECT_TRUE(s.take_warnings().empty());
  EXPECT_TRUE(stray_files(dir.path).empty());
}

TEST(ChunkStoreConcurrency, TwoProcessesOneDirectory) {
  TempDir dir;
  const Expected e = expected_chunks(KVStoreType::I8);
  std::vector<pid_t> kids;
  for (int p = 0; p < 2; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: never return into gtest; _exit skips the parent's atexit handlers.
      int code = 0;
      try {
        ChunkStore s(disk_opts(dir.path, 4 * e.chunks[0]->bytes()));
        int gets = 0;
        if (hammer(s, e, 1234 + static_cast<uint64_t>(p), 1.5, &gets) != 0) code = 1;
        else if (s.stats().rejected != 0 || !s.take_warnings().empty()) code = 2;
        else if (gets == 0 || s.stats().disk_hits == 0) code = 3;
      } catch (...) {
        code = 4;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child " << pid << " died (status " << status << ")";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1 = wrong chunk, 2 = rejection/warning, 3 = no disk traffic, 4 = exception";
  }
  EXPECT_TRUE(stray_files(dir.path).empty()) << ::testing::PrintToString(stray_files(dir.path));
  // Whatever is left on disk is valid.
  ChunkStore s(disk_opts(dir.path));
  int found = 0;
  for (int i = 0; i < kKeys; ++i) {
    auto g = s.get(key_of(i), e.chunks[static_cast<size_t>(i)]->layout());
    if (g == nullptr) continue;
    ++found;
    EXPECT_TRUE(same_bits(decode_all(*g), e.decoded[static_cast<size_t>(i)]));
  }
  EXPECT_GT(found, 0);
  EXPECT_TRUE(s.take_warnings().empty());
}

}  // namespace
}  // namespace cc
