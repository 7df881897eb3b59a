// GGUF reader/writer: round trip of every metadata type, and every kind of bad file.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "formats/gguf.h"
#include "test_util.h"

namespace cc {
namespace {

using ::testing::HasSubstr;

Metadata sample_meta() {
  Metadata m;
  MetaValue v;
  v.type = GGUFType::U8, v.u = 200;
  m.set("t.u8", v);
  v = {};
  v.type = GGUFType::I8, v.i = -100;
  m.set("t.i8", v);
  v = {};
  v.type = GGUFType::U16, v.u = 60000;
  m.set("t.u16", v);
  v = {};
  v.type = GGUFType::I16, v.i = -30000;
  m.set("t.i16", v);
  m.set("t.u32", MetaValue::of_u32(4000000000u));
  m.set("t.i32", MetaValue::of_i32(-2000000000));
  m.set("t.u64", MetaValue::of_u64(1ull << 60));
  v = {};
  v.type = GGUFType::I64, v.i = -(1ll << 60);
  m.set("t.i64", v);
  m.set("t.f32", MetaValue::of_f32(1.5f));
  v = {};
  v.type = GGUFType::F64, v.f = 3.25;
  m.set("t.f64", v);
  m.set("t.bool", MetaValue::of_bool(true));
  m.set("t.str", MetaValue::of_str("hello\nworld"));
  m.set("t.strs", MetaValue::of_strs({"a", "", "ccc"}));
  m.set("t.f32s", MetaValue::of_f32s({1.0f, -2.0f}));
  m.set("t.i32s", MetaValue::of_i32s({7, -8, 9}));
  MetaValue nested;  // array of arrays
  nested.type = GGUFType::ARRAY, nested.elem = GGUFType::ARRAY;
  nested.arr = {MetaValue::of_i32s({1, 2}), MetaValue::of_i32s({3})};
  m.set("t.nested", nested);
  m.set("t.empty", MetaValue::of_strs({}));
  return m;
}

std::string write_sample(const std::string& dir, uint64_t alignment = 32) {
  GGUFWriter w(sample_meta(), alignment);
  w.add_tensor("a", DType::F32, {3, 5});
  w.add_tensor("b", DType::F16, {7});
  w.add_tensor("c", DType::Q8_0, {2, 64});
  w.add_tensor("d", DType::BF16, {2, 3, 4});
  std::string path = dir + "/sample.gguf";
  w.write(path, [](size_t i, uint8_t* dst) {
    static const size_t sizes[] = {60, 14, 2 * 2 * 34, 48};
    for (size_t k = 0; k < sizes[i]; ++k) dst[k] = static_cast<uint8_t>(i * 31 + k);
  });
  return path;
}

TEST(Gguf, RoundTripEveryValueType) {
  std::string path = write_sample(test::temp_dir());
  GGUFFile g = gguf_read(path);
  EXPECT_EQ(g.version, 3u);
  Metadata ref = sample_meta();
  ASSERT_EQ(g.meta.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const auto& [k, v] = ref.items()[i];
    const auto& [k2, v2] = g.meta.items()[i];
    EXPECT_EQ(k, k2);
    EXPECT_EQ(v.type, v2.type) << k;
    EXPECT_EQ(v.to_display(100), v2.to_display(100)) << k;
  }
  EXPECT_EQ(g.meta.get_int("t.u32"), 4000000000ll);
  EXPECT_EQ(g.meta.get_int("t.i64"), -(1ll << 60));
  EXPECT_EQ(g.meta.get_str("t.str"), "hello\nworld");
  EXPECT_EQ(g.meta.get_strs("t.strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(g.meta.get_i32s("t.i32s"), (std::vector<int32_t>{7, -8, 9}));
  EXPECT_TRUE(g.meta.get_bool("t.bool", false));
  ASSERT_EQ(g.tensors.size(), 4u);
  EXPECT_EQ(g.tensors[0].shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(g.tensors[2].type, DType::Q8_0);
  EXPECT_EQ(g.tensors[2].nbytes, 136u);
  EXPECT_EQ(g.tensors[3].shape, (std::vector<int64_t>{2, 3, 4}));
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const auto& t = g.tensors[i];
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, 0u) << "tensor data must be aligned in the mapping";
    for (size_t k = 0; k < t.nbytes; ++k) ASSERT_EQ(t.data[k], static_cast<uint8_t>(i * 31 + k));
  }
}

TEST(Gguf, CustomAlignmentIsWrittenAndHonoured) {
  std::string path = write_sample(test::temp_dir(), 64);
  GGUFFile g = gguf_read(path);
  EXPECT_EQ(g.alignment, 64u);
  for (const auto& t : g.tensors) EXPECT_EQ(t.offset % 64, 0u);
}

TEST(Gguf, TypedGettersNameTheKey) {
  GGUFFile g = gguf_read(write_sample(test::temp_dir()));
  EXPECT_THAT(test::error_of([&] { g.meta.get_int("t.str"); }), HasSubstr("'t.str' has type string"));
  EXPECT_THAT(test::error_of([&] { g.meta.get_str("missing.key"); }), HasSubstr("missing metadata key 'missing.key'"));
}

// Every prefix of a valid file must be rejected with a clear error, never a crash.
TEST(GgufBad, EveryTruncationIsReported) {
  auto bytes = test::read_bytes(write_sample(test::temp_dir()));
  // The file ends with alignment padding after the last tensor; cutting only padding is fine.
  GGUFFile whole = gguf_parse(bytes.data(), bytes.size(), "whole.gguf");
  const size_t data_end = static_cast<size_t>(whole.tensors.back().data + whole.tensors.back().nbytes - bytes.data());
  ASSERT_LE(data_end, bytes.size());
  EXPECT_NO_THROW(gguf_parse(bytes.data(), data_end, "exact.gguf"));
  for (size_t n = 0; n < data_end; ++n) {
    std::string msg = test::error_of([&] { gguf_parse(bytes.data(), n, "cut.gguf"); });
    ASSERT_THAT(msg, HasSubstr("cut.gguf")) << "at length " << n;
    ASSERT_TRUE(msg.find("truncated") != std::string::npos || msg.find("outside the file") != std::string::npos ||
                msg.find("impossible") != std::string::npos || msg.find("bad magic") != std::string::npos ||
                msg.find("cannot fit") != std::string::npos || msg.find("remain") != std::string::npos)
        << "at length " << n << ": " << msg;
  }
}

struct Patch {
  size_t at;
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> le64(uint64_t v) {
  std::vector<uint8_t> b(8);
  std::memcpy(b.data(), &v, 8);
  return b;
}
std::vector<uint8_t> le32(uint32_t v) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

// A minimal file: header, one string kv, one F32 tensor [4].
std::vector<uint8_t> minimal(uint32_t version = 3, uint32_t type = 0, uint64_t offset = 0) {
  std::vector<uint8_t> f = {'G', 'G', 'U', 'F'};
  auto app = [&](const std::vector<uint8_t>& b) { f.insert(f.end(), b.begin(), b.end()); };
  app(le32(version));
  app(le64(1));  // tensors
  app(le64(1));  // kv
  app(le64(3));
  f.insert(f.end(), {'k', 'e', 'y'});
  app(le32(8));  // string
  app(le64(2));
  f.insert(f.end(), {'h', 'i'});
  app(le64(1));
  f.push_back('w');
  app(le32(1));  // n_dims
  app(le64(32));
  app(le32(type));
  app(le64(offset));
  while (f.size() % 32) f.push_back(0);
  f.resize(f.size() + 128, 0);
  return f;
}

TEST(GgufBad, MinimalFileParses) {
  auto f = minimal();
  GGUFFile g = gguf_parse(f.data(), f.size(), "m.gguf");
  EXPECT_EQ(g.meta.get_str("key"), "hi");
  EXPECT_EQ(g.tensors.at(0).shape, (std::vector<int64_t>{32}));
}

TEST(GgufBad, WrongMagic) {
  auto f = minimal();
  f[0] = 'X';
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("m.gguf: not a GGUF file (bad magic"));
}

TEST(GgufBad, UnsupportedVersion) {
  auto f = minimal(1);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }), HasSubstr("version 1 is not supported"));
  f = minimal(7);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("unsupported GGUF version 7"));
}

TEST(GgufBad, AbsurdTensorCount) {
  auto f = minimal();
  auto b = le64(1ull << 50);
  std::copy(b.begin(), b.end(), f.begin() + 8);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("tensor count 1125899906842624 is impossible"));
}

TEST(GgufBad, AbsurdMetadataCount) {
  auto f = minimal();
  auto b = le64(1ull << 40);
  std::copy(b.begin(), b.end(), f.begin() + 16);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }), HasSubstr("metadata count"));
}

TEST(GgufBad, AbsurdStringLength) {
  auto f = minimal();
  auto b = le64(~0ull);  // key length
  std::copy(b.begin(), b.end(), f.begin() + 24);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("metadata key has length 18446744073709551615"));
}

TEST(GgufBad, AbsurdArrayLength) {
  Metadata m;
  m.set("arr", MetaValue::of_i32s({1, 2, 3}));
  GGUFWriter w(m);
  std::string path = test::temp_dir() + "/a.gguf";
  w.write(path, [](size_t, uint8_t*) {});
  auto f = test::read_bytes(path);
  // header(24) + key len(8) + "arr"(3) + type(4) + elem type(4) -> array length at 43
  auto b = le64(1ull << 61);
  std::copy(b.begin(), b.end(), f.begin() + 43);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "a.gguf"); }),
              HasSubstr("array of 2305843009213693952 i32 elements cannot fit"));
}

TEST(GgufBad, InvalidValueType) {
  auto f = minimal();
  auto b = le32(99);
  std::copy(b.begin(), b.end(), f.begin() + 35);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("metadata key 'key' has invalid value type 99"));
}

TEST(GgufBad, UnsupportedTensorType) {
  auto f = minimal(3, 13);  // Q5_K
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("tensor 'w' has unsupported type Q5_K"));
  f = minimal(3, 1234);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }), HasSubstr("unsupported type type 1234"));
}

TEST(GgufBad, TensorOutsideFile) {
  auto f = minimal();
  f.resize(f.size() - 100);  // the data section cut short
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("tensor 'w' (128 bytes at data offset 0) points outside the file"));
}

TEST(GgufBad, TensorDataMustLieBackToBack) {
  auto f = minimal(3, 0, 1 << 20);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("tensor 'w' data starts at offset 1048576, expected 0"));
  // One corrupt type field: tensor 'a' (F32 [3, 5], 64 bytes padded) read as F16 would end at
  // 32, so 'b' (written at 64) no longer follows it; without the check both would load, 'a'
  // reinterpreted.
  std::ifstream in(write_sample(test::temp_dir()), std::ios::binary);
  std::vector<uint8_t> g((std::istreambuf_iterator<char>(in)), {});
  const uint8_t info[] = {1, 0, 0, 0, 0, 0, 0, 0, 'a', 2, 0, 0, 0};
  auto at = std::search(g.begin(), g.end(), std::begin(info), std::end(info));
  ASSERT_NE(at, g.end());
  const size_t type_at = static_cast<size_t>(at - g.begin()) + sizeof(info) + 16;
  ASSERT_EQ(g[type_at], 0);  // GGML F32
  g[type_at] = 1;            // GGML F16
  EXPECT_THAT(test::error_of([&] { gguf_parse(g.data(), g.size(), "s.gguf"); }),
              HasSubstr("tensor 'b' data starts at offset 64, expected 32"));
}

TEST(GgufBad, MisalignedTensorOffset) {
  auto f = minimal(3, 0, 4);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("offset 4 is not aligned to 32"));
}

TEST(GgufBad, TooManyDimensionsAndZeroDims) {
  auto f = minimal();
  // tensor info starts after header(24) + kv (8+3+4+8+2=25) = 49: name len(8) + "w" -> n_dims at 58
  auto b = le32(5);
  std::copy(b.begin(), b.end(), f.begin() + 58);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }), HasSubstr("has 5 dimensions"));
  f = minimal();
  b = le64(0);
  std::copy(b.begin(), b.end(), f.begin() + 62);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }), HasSubstr("dimension 0 is 0"));
}

TEST(GgufBad, RowNotMultipleOfBlock) {
  auto f = minimal(3, 8);  // Q8_0 with 32 elements is fine...
  EXPECT_NO_THROW(gguf_parse(f.data(), f.size(), "m.gguf"));
  auto b = le64(33);  // ...33 is not
  std::copy(b.begin(), b.end(), f.begin() + 62);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "m.gguf"); }),
              HasSubstr("row length 33 is not a multiple of the Q8_0 block size 32"));
}

TEST(GgufBad, DuplicateKeyAndTensor) {
  Metadata m;
  m.set("k", MetaValue::of_u32(1));
  GGUFWriter w(m);
  std::string path = test::temp_dir() + "/d.gguf";
  w.add_tensor("x", DType::F32, {4});
  EXPECT_THAT(test::error_of([&] { w.add_tensor("x", DType::F32, {4}); }), HasSubstr("duplicate tensor name 'x'"));
}

TEST(GgufBad, ReaderRejectsDuplicateKeysAndTensors) {
  Metadata m;
  m.set("ka", MetaValue::of_u32(1));
  m.set("kb", MetaValue::of_u32(2));
  GGUFWriter w(m);
  w.add_tensor("ta", DType::F32, {4});
  w.add_tensor("tb", DType::F32, {4});
  std::string path = test::temp_dir() + "/dup.gguf";
  w.write(path, [](size_t, uint8_t* d) { std::memset(d, 0, 16); });
  auto f = test::read_bytes(path);
  auto patch = [&](const std::string& from, const std::string& to) {
    auto g = f;
    auto it = std::search(g.begin(), g.end(), from.begin(), from.end());
    EXPECT_NE(it, g.end());
    std::copy(to.begin(), to.end(), it);
    return g;
  };
  auto k = patch("kb", "ka");
  EXPECT_THAT(test::error_of([&] { gguf_parse(k.data(), k.size(), "d.gguf"); }), HasSubstr("duplicate metadata key 'ka'"));
  auto t = patch("tb", "ta");
  EXPECT_THAT(test::error_of([&] { gguf_parse(t.data(), t.size(), "d.gguf"); }), HasSubstr("duplicate tensor name 'ta'"));
}

TEST(GgufBad, HugeTotalOfArrayElementsIsRefused) {
  Metadata m;
  std::vector<int32_t> big(5u << 20);  // two arrays of 5M: over the 8M-element budget
  m.set("a1", MetaValue::of_i32s(big));
  m.set("a2", MetaValue::of_i32s(big));
  GGUFWriter w(m);
  std::string path = test::temp_dir() + "/big.gguf";
  w.write(path, [](size_t, uint8_t*) {});
  EXPECT_THAT(test::error_of([&] { gguf_read(path); }), HasSubstr("array elements in total"));
}

TEST(GgufBad, BadAlignmentValue) {
  // Write by hand: the writer refuses non-powers of two by assertion, so patch a valid file.
  GGUFWriter w(Metadata{}, 64);
  std::string path = test::temp_dir() + "/al.gguf";
  w.write(path, [](size_t, uint8_t*) {});
  auto f = test::read_bytes(path);
  // the only kv is general.alignment (u32): value at 24 + 8 + 17 + 4 = 53
  auto b = le32(48);
  std::copy(b.begin(), b.end(), f.begin() + 53);
  EXPECT_THAT(test::error_of([&] { gguf_parse(f.data(), f.size(), "al.gguf"); }),
              HasSubstr("general.alignment 48 is not a power of two"));
}

TEST(GgufBad, MissingFileNamesPath) {
  EXPECT_THAT(test::error_of([] { gguf_read("/nonexistent/model.gguf"); }),
              HasSubstr("/nonexistent/model.gguf: cannot open"));
}

}  // namespace
}  // namespace cc
