// Shared helpers for cacheclip tests.
#pragma once
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cc::test {

// $CACHECLIP_SHARED or "../shared"; empty string when the folder does not exist.
std::string shared_dir();
// A fresh temporary directory for this test (removed at process exit).
std::string temp_dir();
std::vector<uint8_t> read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::vector<uint8_t>& data);

// Normalized squared error sum((a-b)^2) / sum(b^2) (the plain squared error when b is all 0).
double nse(const std::vector<float>& a, const std::vector<float>& b);

// Runs fn and returns the cc::Error message; fails the test if nothing (or something else) is thrown.
std::string error_of(const std::function<void()>& fn);

}  // namespace cc::test

#define CC_SKIP_WITHOUT_SHARED(sub)                                                         \
  do {                                                                                      \
    if (::cc::test::shared_dir().empty() ||                                                 \
        !std::filesystem::exists(::cc::test::shared_dir() + "/" + (sub)))                   \
      GTEST_SKIP() << "shared test data '" << (sub) << "' not found (set CACHECLIP_SHARED " \
                   << "or place ../shared beside the repository)";                          \
  } while (0)
