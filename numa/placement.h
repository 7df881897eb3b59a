// Placement of the two models of a CacheClip request on the machine (issue 6): the auxiliary
// model on one NUMA node (or a few cores of a single-node machine), the primary on the rest,
// each with its own thread team bound to its CPUs, memory where the threads run.
//
// Modes (--numa, CACHECLIP_NUMA):
//   auto        isolate when the machine can be split (>= 2 cores), else off
//   isolate     aux -> one node (default: the last) and primary -> the other nodes; on a single
//               node, aux -> max(1, cores / 8) cores (or --aux-cores), primary -> the rest
//   distribute  both models share every CPU (sequential), memory interleaved over all nodes
//   off         no binding at all; both models share every CPU (sequential)
// --aux-cpus / --primary-cpus (CACHECLIP_AUX_CPUS / CACHECLIP_PRIMARY_CPUS) name OS CPU
// indices as lists ("0-3,8"); they imply isolate. One thread per core; with SMT a thread may
// use any PU of its core.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "numa/topology.h"

namespace cc {

enum class NumaMode { Auto, Off, Distribute, Isolate };
const char* numa_mode_name(NumaMode m);
NumaMode parse_numa_mode(const std::string& s);  // cc::Error listing the modes

// "0-3,8,10-11" -> {0,1,2,3,8,10,11} (sorted, unique). cc::Error on malformed text.
std::vector<unsigned> parse_cpu_list(const std::string& s);
std::string cpu_list_text(const std::vector<unsigned>& cpus);  // the inverse ("0-3,8")

struct PlacementRequest {
  NumaMode mode = NumaMode::Auto;
  std::vector<unsigned> aux_cpus, primary_cpus;  // explicit sets (empty = from the mode)
  int aux_cores = 0;                             // single-node split (0 = max(1, cores / 8))
  int aux_node = -1;                             // isolate on several nodes: node index (-1 = last)
};
// The request from the environment (CACHECLIP_NUMA, CACHECLIP_AUX_CPUS, CACHECLIP_PRIMARY_CPUS,
// CACHECLIP_AUX_CORES), for the command line to override.
PlacementRequest placement_from_env();

struct TeamPlan {
  std::vector<unsigned> cpus;   // OS PU indices the team may run on
  std::vector<unsigned> nodes;  // NUMA nodes (OS indices) of those CPUs: where its memory goes
  int threads = 0;              // one per core
};

struct PlacementPlan {
  NumaMode mode = NumaMode::Off;
  TeamPlan aux, primary;
  std::vector<unsigned> all_cpus;  // every CPU of the plan (the primary's team for recomputation
                                   // once the aux model is done, on a single node)
  bool concurrent = false;         // separate teams: the aux model can run beside the primary
  bool bind = false;               // threads are bound to their CPUs
  bool lend_aux_cores = false;     // single node: the primary uses the aux cores after selection
  std::string note;                // why a requested split was not possible, if it was not
  std::string describe() const;    // several lines for `cacheclip topology`
};

// Throws cc::Error for CPUs that the topology does not have, overlapping sets, an aux node that
// does not exist or a split that leaves a team without a core.
PlacementPlan make_plan(const Topology& topo, const PlacementRequest& req);

// Binds the calling thread to cpus (sched affinity through hwloc). Returns false where the OS
// refuses (the thread then runs unbound); throws for an empty set.
bool bind_current_thread(const std::vector<unsigned>& cpus);
// The CPUs the calling thread may run on, read back from the OS (hwloc_get_cpubind).
std::vector<unsigned> current_thread_cpus();

// Bytes of [p, p + n) resident on each NUMA node (sampled every `stride` pages through
// move_pages in query mode; pages not resident yet are not counted). Node OS index -> bytes.
std::vector<std::pair<int, size_t>> bytes_per_node(const void* p, size_t n, size_t stride = 16);

}  // namespace cc
