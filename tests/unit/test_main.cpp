// The gtest binaries' main: idle OpenMP threads sleep here too (base/openmp_env.h), so two test
// binaries run side by side by ctest -j2 do not spin against each other.
#include <gtest/gtest.h>

#include "base/openmp_env.h"

int main(int argc, char** argv) {
  cc::ensure_passive_openmp(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
