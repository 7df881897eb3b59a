// Machine topology from hwloc: packages, NUMA nodes, cores, PUs. Placement plans (issue 6)
// are built on this; it can also describe a synthetic topology so plans are testable anywhere.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cc {

struct NumaNodeInfo {
  unsigned os_index = 0;
  std::vector<unsigned> cpus;  // OS indices of the PUs local to this node
  uint64_t memory_bytes = 0;   // local memory (0 when unknown)
};

struct CoreInfo {
  unsigned node = 0;           // OS index of the NUMA node the core belongs to
  std::vector<unsigned> pus;   // OS indices of its hardware threads
};

struct Topology {
  int packages = 0;
  int cores = 0;
  int pus = 0;
  std::vector<NumaNodeInfo> nodes;
  std::vector<CoreInfo> core_list;  // every core in hwloc's logical order
  std::string summary() const;  // one line: "1 package, 1 NUMA node, 2 cores, 2 PUs"
};

// The machine this process runs on.
Topology discover_topology();
// A synthetic hwloc description, e.g. "pack:2 numa:2 core:4 pu:1". Throws cc::Error if invalid.
Topology synthetic_topology(const std::string& description);
// A topology saved as hwloc XML (e.g. by `lstopo machine.xml`). Throws cc::Error naming the file.
Topology xml_topology(const std::string& path);
// Writes the synthetic topology `description` as hwloc XML to path (for tests and examples).
void save_synthetic_xml(const std::string& description, const std::string& path);

}  // namespace cc
