#include <cstring>
#include <thread>

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

// ---------------------------------------------------------------------------------------------
// Placement plans (issue 6) on synthetic topologies.
#include "numa/placement.h"

namespace cc {
namespace {

using ::testing::HasSubstr;
using V = std::vector<unsigned>;

TEST(CpuList, ParsesAndPrints) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11"), (V{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5,1,1"), (V{1, 5}));
  EXPECT_EQ(cpu_list_text({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_THAT(test::error_of([] { parse_cpu_list("1-x"); }), HasSubstr("not a CPU number"));
  EXPECT_THAT(test::error_of([] { parse_cpu_list("4-2"); }), HasSubstr("reversed"));
  EXPECT_THAT(test::error_of([] { parse_cpu_list(""); }), HasSubstr("not a CPU number"));
  EXPECT_THAT(test::error_of([] { parse_numa_mode("spread"); }), HasSubstr("auto, off, distribute or isolate"));
}

TEST(Placement, OneNodeTwoCoresSplitsOneAndOne) {
  const Topology t = synthetic_topology("pack:1 numa:1 core:2 pu:1");
  const PlacementPlan p = make_plan(t, {});
  EXPECT_EQ(p.mode, NumaMode::Isolate);
  EXPECT_TRUE(p.concurrent);
  EXPECT_EQ(p.aux.cpus, (V{1}));
  EXPECT_EQ(p.primary.cpus, (V{0}));
  EXPECT_EQ(p.aux.threads + p.primary.threads, 2) << "no oversubscription";
  EXPECT_TRUE(p.lend_aux_cores);
  PlacementRequest off;
  off.mode = NumaMode::Off;
  const PlacementPlan q = make_plan(t, off);
  EXPECT_FALSE(q.concurrent);
  EXPECT_EQ(q.primary.cpus, (V{0, 1}));
  EXPECT_EQ(q.primary.threads, 2);
}

TEST(Placement, TwoPackagesOneNodeEachEightCores) {
  const Topology t = synthetic_topology("pack:2 numa:1 core:8 pu:1");
  ASSERT_EQ(t.nodes.size(), 2u);
  const PlacementPlan p = make_plan(t, {});
  EXPECT_EQ(p.aux.cpus, (V{8, 9, 10, 11, 12, 13, 14, 15})) << "the last node";
  EXPECT_EQ(p.aux.nodes, (V{1}));
  EXPECT_EQ(p.primary.cpus, (V{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(p.primary.nodes, (V{0}));
  EXPECT_FALSE(p.lend_aux_cores) << "several nodes: the teams keep their memory local";
  PlacementRequest r;
  r.aux_node = 0;
  EXPECT_EQ(make_plan(t, r).aux.nodes, (V{0}));
  r.aux_node = 5;
  EXPECT_THAT(test::error_of([&] { make_plan(t, r); }), HasSubstr("aux node 5 does not exist"));
}

TEST(Placement, TwoPackagesTwoNodesFourCores) {
  const Topology t = synthetic_topology("pack:2 numa:2 core:4 pu:1");
  const PlacementPlan p = make_plan(t, {});
  EXPECT_EQ(p.aux.cpus, (V{12, 13, 14, 15}));
  EXPECT_EQ(p.aux.threads, 4);
  EXPECT_EQ(p.primary.nodes, (V{0, 1, 2}));
  EXPECT_EQ(p.primary.threads, 12);
}

TEST(Placement, FourNodesWithSmtCountsCoresNotThreads) {
  const Topology t = synthetic_topology("pack:1 numa:4 core:2 pu:2");
  const PlacementPlan p = make_plan(t, {});
  EXPECT_EQ(p.aux.cpus.size(), 4u) << "both PUs of both cores of the last node";
  EXPECT_EQ(p.aux.threads, 2) << "one thread per core";
  EXPECT_EQ(p.primary.threads, 6);
  EXPECT_EQ(p.primary.nodes.size(), 3u);
}

TEST(Placement, SingleNodeSplitDefaultAndOverride) {
  const Topology t = synthetic_topology("pack:1 numa:1 core:16 pu:1");
  PlacementPlan p = make_plan(t, {});
  EXPECT_EQ(p.aux.cpus, (V{14, 15})) << "max(1, 16 / 8) = 2 cores";
  PlacementRequest r;
  r.aux_cores = 4;
  p = make_plan(t, r);
  EXPECT_EQ(p.aux.cpus, (V{12, 13, 14, 15}));
  r.aux_cores = 16;
  EXPECT_THAT(test::error_of([&] { make_plan(t, r); }), HasSubstr("the primary needs at least one"));
}

TEST(Placement, UserCpuSetsAndBadOnes) {
  const Topology t = synthetic_topology("pack:1 numa:1 core:8 pu:1");
  PlacementRequest r;
  r.aux_cpus = {0, 1};
  PlacementPlan p = make_plan(t, r);
  EXPECT_EQ(p.aux.cpus, (V{0, 1}));
  EXPECT_EQ(p.primary.cpus, (V{2, 3, 4, 5, 6, 7}));
  r.primary_cpus = {4, 5};
  p = make_plan(t, r);
  EXPECT_EQ(p.primary.cpus, (V{4, 5}));
  EXPECT_EQ(p.all_cpus, (V{0, 1, 4, 5})) << "the plan uses only the CPUs it names";
  r.aux_cpus = {3, 99};
  EXPECT_THAT(test::error_of([&] { make_plan(t, r); }), HasSubstr("--aux-cpus names CPU 99, which this machine does not have (its CPUs: 0-7)"));
  r.aux_cpus = {4};
  EXPECT_THAT(test::error_of([&] { make_plan(t, r); }), HasSubstr("CPU 4 is in both"));
  r = {};
  r.mode = NumaMode::Off;
  r.aux_cpus = {1};
  EXPECT_THAT(test::error_of([&] { make_plan(t, r); }), HasSubstr("need --numa isolate"));
}

TEST(Placement, SavedXmlTopology) {
  const std::string path = test::temp_dir() + "/machine.xml";
  save_synthetic_xml("pack:2 numa:1 core:3 pu:2", path);
  const Topology t = xml_topology(path);
  EXPECT_EQ(t.cores, 6);
  EXPECT_EQ(t.pus, 12);
  const PlacementPlan p = make_plan(t, {});
  EXPECT_EQ(p.aux.threads, 3);
  EXPECT_EQ(p.aux.cpus.size(), 6u);
  EXPECT_THAT(test::error_of([] { xml_topology("/nonexistent/machine.xml"); }), HasSubstr("machine.xml"));
}

TEST(Placement, MemoryOnlyNodesHostNoTeam) {
  // Two nodes with cores and a CPU-less one (a CXL expander or HBM in flat mode), listed last.
  Topology t;
  t.packages = 1;
  t.cores = t.pus = 4;
  t.nodes = {{0, {0, 1}, 0}, {1, {2, 3}, 0}, {2, {}, 0}};
  for (unsigned c = 0; c < 4; ++c) t.core_list.push_back({c < 2 ? 0u : 1u, {c}});
  const PlacementPlan p = make_plan(t, {});
  EXPECT_EQ(p.aux.cpus, (V{2, 3})) << "the last node that has CPUs";
  EXPECT_EQ(p.primary.cpus, (V{0, 1}));
  // One node with cores (+ a memory-only one): the single-node split.
  Topology u = t;
  u.nodes = {{0, {0, 1, 2, 3}, 0}, {1, {}, 0}};
  for (auto& c : u.core_list) c.node = 0;
  const PlacementPlan q = make_plan(u, {});
  EXPECT_EQ(q.aux.cpus, (V{3}));
  EXPECT_TRUE(q.lend_aux_cores);
}

TEST(Placement, OneCoreFallsBackToSharing) {
  const Topology t = synthetic_topology("pack:1 numa:1 core:1 pu:1");
  EXPECT_FALSE(make_plan(t, {}).concurrent);
  PlacementRequest r;
  r.mode = NumaMode::Isolate;
  EXPECT_THAT(test::error_of([&] { make_plan(t, r); }), HasSubstr("at least two cores"));
}

TEST(Placement, ThreadsAreBoundWhereThePlanSays) {
  const Topology t = discover_topology();
  const std::vector<unsigned> before = current_thread_cpus();
  ASSERT_FALSE(before.empty());
  const unsigned cpu = t.core_list.back().pus.front();
  std::vector<unsigned> seen;
  std::thread th([&] {
    if (bind_current_thread({cpu})) seen = current_thread_cpus();
  });
  th.join();
  if (seen.empty()) GTEST_SKIP() << "the OS refused to bind a thread (no affinity control here)";
  EXPECT_EQ(seen, (std::vector<unsigned>{cpu}));
  EXPECT_EQ(current_thread_cpus(), before) << "binding another thread leaves this one alone";
}

TEST(Placement, BytesPerNodeOfTouchedMemory) {
  NumaBuffer b(1 << 22, {});
  std::memset(b.data(), 1, b.size());
  size_t total = 0;
  for (const auto& [node, bytes] : bytes_per_node(b.data(), b.size(), 1)) total += bytes;
  if (total == 0) GTEST_SKIP() << "move_pages is not available here";
  EXPECT_EQ(total, b.size());
}

}  // namespace
}  // namespace cc
