// safetensors reader/writer: round trip and malformed files.
#include <cstring>

#include "formats/safetensors.h"
#include "test_util.h"

namespace cc {
namespace {

using ::testing::HasSubstr;

// Builds a file from a header JSON string (space-padded so the data section is 8-byte aligned,
// as the format requires, unless pad is false) and `data_bytes` bytes of data.
std::vector<uint8_t> make_file(std::string header, size_t data_bytes, bool pad = true) {
  while (pad && header.size() % 8 != 0) header += ' ';
  std::vector<uint8_t> f(8 + header.size() + data_bytes, 0x5A);
  uint64_t n = header.size();
  std::memcpy(f.data(), &n, 8);
  std::memcpy(f.data() + 8, header.data(), header.size());
  return f;
}

std::string parse_error(const std::vector<uint8_t>& f) {
  return test::error_of([&] { safetensors_parse(f.data(), f.size(), "m.safetensors"); });
}

TEST(Safetensors, RoundTrip) {
  std::string path = test::temp_dir() + "/m.safetensors";
  std::vector<SafetensorsEntry> e = {{"w", DType::F32, {2, 3}}, {"h", DType::F16, {5}}, {"b", DType::BF16, {1, 1, 4}}};
  safetensors_write(path, e, {{"format", "pt"}}, [](size_t i, uint8_t* dst) {
    const size_t sz[] = {24, 10, 8};
    for (size_t k = 0; k < sz[i]; ++k) dst[k] = static_cast<uint8_t>(100 * i + k);
  });
  SafetensorsFile f = safetensors_read(path);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  ASSERT_EQ(f.tensors.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto& t = f.tensors[i];
    EXPECT_EQ(t.name, e[i].name);
    EXPECT_EQ(t.type, e[i].type);
    EXPECT_EQ(t.shape, e[i].shape);
    for (size_t k = 0; k < t.nbytes; ++k) ASSERT_EQ(t.data[k], static_cast<uint8_t>(100 * i + k));
  }
}

TEST(SafetensorsBad, EveryTruncationIsReported) {
  auto f = make_file(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 16);
  for (size_t n = 0; n < f.size(); ++n) {
    std::vector<uint8_t> cut(f.begin(), f.begin() + static_cast<long>(n));
    std::string msg = test::error_of([&] { safetensors_parse(cut.data(), cut.size(), "cut.safetensors"); });
    ASSERT_THAT(msg, HasSubstr("cut.safetensors")) << n;
  }
}

TEST(SafetensorsBad, HugeHeaderLength) {
  std::vector<uint8_t> f(16, 0);
  uint64_t n = 1ull << 40;
  std::memcpy(f.data(), &n, 8);
  EXPECT_THAT(parse_error(f), HasSubstr("header length 1099511627776 exceeds the 100 MB limit"));
}

TEST(SafetensorsBad, HeaderLongerThanFile) {
  auto f = make_file("{}", 0);
  uint64_t n = 1000;
  std::memcpy(f.data(), &n, 8);
  EXPECT_THAT(parse_error(f), HasSubstr("truncated: safetensors header of 1000 bytes"));
}

TEST(SafetensorsBad, NotJson) {
  EXPECT_THAT(parse_error(make_file("{not json", 0)), HasSubstr("header is not valid JSON"));
  EXPECT_THAT(parse_error(make_file("[1,2]", 0)), HasSubstr("header is not a JSON object"));
}

TEST(SafetensorsBad, UnsupportedDtype) {
  auto f = make_file(R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", 16);
  EXPECT_THAT(parse_error(f), HasSubstr("tensor 'a' has unsupported dtype I64"));
}

TEST(SafetensorsBad, ShapeDoesNotMatchBytes) {
  auto f = make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16);
  EXPECT_THAT(parse_error(f), HasSubstr("tensor 'a' has 16 bytes but its shape and dtype need 12"));
}

TEST(SafetensorsBad, RangeOutsideData) {
  auto f = make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  EXPECT_THAT(parse_error(f), HasSubstr("byte range [0, 16) lies outside the data section (8 bytes)"));
}

TEST(SafetensorsBad, OverlappingTensors) {
  auto f = make_file(
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      16);
  EXPECT_THAT(parse_error(f), HasSubstr("overlap"));
}

TEST(SafetensorsBad, MisalignedDataSection) {
  auto f = make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, false);
  EXPECT_THAT(parse_error(f), HasSubstr("data section starts at byte 62, not a multiple of 8"));
}

TEST(SafetensorsBad, AbsurdDimension) {
  auto f = make_file(R"({"a":{"dtype":"F32","shape":[0, 99999999999999],"data_offsets":[0,0]}})", 0);
  EXPECT_THAT(parse_error(f), HasSubstr("has a dimension of 99999999999999"));
}

TEST(SafetensorsBad, MalformedEntries) {
  EXPECT_THAT(parse_error(make_file(R"({"a":5})", 0)), HasSubstr("tensor 'a': entry is not an object"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4)),
              HasSubstr("missing or non-string dtype"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)),
              HasSubstr("shape entries must be non-negative integers"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4)),
              HasSubstr("data_offsets must be [begin, end]"));
  EXPECT_THAT(parse_error(make_file(R"({"__metadata__":{"k":1}})", 0)), HasSubstr("__metadata__ value 'k' is not a string"));
}

}  // namespace
}  // namespace cc
