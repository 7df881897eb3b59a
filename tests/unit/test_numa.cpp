#include <cstring>

#include "numa/buffer.h"
#include "numa/topology.h"
#include "test_util.h"

namespace cc {
namespace {

TEST(Topology, SyntheticTwoPackagesTwoNodesEach) {
  Topology t = synthetic_topology("pack:2 numa:2 core:4 pu:1");
  EXPECT_EQ(t.packages, 2);
  EXPECT_EQ(t.nodes.size(), 4u);
  EXPECT_EQ(t.cores, 16);
  EXPECT_EQ(t.pus, 16);
  for (const auto& n : t.nodes) EXPECT_EQ(n.cpus.size(), 4u);
  EXPECT_EQ(t.summary(), "2 packages, 4 NUMA nodes, 16 cores, 16 PUs");
}

TEST(Topology, SyntheticWithSmt) {
  Topology t = synthetic_topology("pack:1 numa:4 core:2 pu:2");
  EXPECT_EQ(t.nodes.size(), 4u);
  EXPECT_EQ(t.pus, 16);
  EXPECT_EQ(t.cores, 8);
}

TEST(Topology, InvalidSyntheticIsAnError) {
  EXPECT_THAT(test::error_of([] { synthetic_topology("pack:two"); }), ::testing::HasSubstr("invalid synthetic topology"));
}

TEST(Topology, RealMachineHasCpus) {
  Topology t = discover_topology();
  EXPECT_GE(t.pus, 1);
  EXPECT_GE(t.nodes.size(), 1u);
  size_t cpus = 0;
  for (const auto& n : t.nodes) cpus += n.cpus.size();
  EXPECT_EQ(static_cast<int>(cpus), t.pus);
}

TEST(NumaBuffer, AllocatesWritableAlignedMemoryOnNode) {
  Topology t = discover_topology();
  NumaBuffer b(1 << 20, {t.nodes.front().os_index});
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 4096, 0u);
  std::memset(b.data(), 7, b.size());
  NumaBuffer moved = std::move(b);
  EXPECT_EQ(static_cast<uint8_t*>(moved.data())[12345], 7);
  EXPECT_EQ(b.data(), nullptr);
}

}  // namespace
}  // namespace cc
