#include "numa/topology.h"

#include <hwloc.h>

#include <memory>

#include "base/error.h"

namespace cc {

namespace {

struct TopoHandle {
  hwloc_topology_t t = nullptr;
  ~TopoHandle() {
    if (t) hwloc_topology_destroy(t);
  }
};

Topology describe(hwloc_topology_t t) {
  Topology out;
  out.packages = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
  out.cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
  out.pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  int nn = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < nn; ++i) {
    hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    NumaNodeInfo info;
    info.os_index = n->os_index;
    info.memory_bytes = n->attr ? n->attr->numanode.local_memory : 0;
    unsigned id;
    hwloc_bitmap_foreach_begin(id, n->cpuset) { info.cpus.push_back(id); }
    hwloc_bitmap_foreach_end();
    out.nodes.push_back(std::move(info));
  }
  for (int i = 0; i < out.cores; ++i) {
    hwloc_obj_t c = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, static_cast<unsigned>(i));
    CoreInfo ci;
    const int first = c->nodeset ? hwloc_bitmap_first(c->nodeset) : -1;
    ci.node = first >= 0 ? static_cast<unsigned>(first) : (out.nodes.empty() ? 0u : out.nodes.front().os_index);
    unsigned id;
    hwloc_bitmap_foreach_begin(id, c->cpuset) { ci.pus.push_back(id); }
    hwloc_bitmap_foreach_end();
    out.core_list.push_back(std::move(ci));
  }
  return out;
}

}  // namespace

std::string Topology::summary() const {
  auto pl = [](int n, const char* w) { return cat(n, " ", w, n == 1 ? "" : "s"); };
  return cat(pl(packages, "package"), ", ", pl(static_cast<int>(nodes.size()), "NUMA node"), ", ",
             pl(cores, "core"), ", ", pl(pus, "PU"));
}

Topology discover_topology() {
  TopoHandle h;
  if (hwloc_topology_init(&h.t) != 0 || hwloc_topology_load(h.t) != 0) fail("hwloc: cannot load the machine topology");
  return describe(h.t);
}

Topology synthetic_topology(const std::string& description) {
  TopoHandle h;
  if (hwloc_topology_init(&h.t) != 0) fail("hwloc: cannot initialise a topology");
  if (hwloc_topology_set_synthetic(h.t, description.c_str()) != 0) {
    fail("invalid synthetic topology '", description, "'");
  }
  if (hwloc_topology_load(h.t) != 0) fail("hwloc: cannot load synthetic topology '", description, "'");
  return describe(h.t);
}

Topology xml_topology(const std::string& path) {
  TopoHandle h;
  if (hwloc_topology_init(&h.t) != 0) fail("hwloc: cannot initialise a topology");
  if (hwloc_topology_set_xml(h.t, path.c_str()) != 0) fail(path, ": not a readable hwloc XML topology");
  if (hwloc_topology_load(h.t) != 0) fail(path, ": hwloc cannot load this XML topology");
  return describe(h.t);
}

void save_synthetic_xml(const std::string& description, const std::string& path) {
  TopoHandle h;
  if (hwloc_topology_init(&h.t) != 0) fail("hwloc: cannot initialise a topology");
  if (hwloc_topology_set_synthetic(h.t, description.c_str()) != 0 || hwloc_topology_load(h.t) != 0) {
    fail("invalid synthetic topology '", description, "'");
  }
  if (hwloc_topology_export_xml(h.t, path.c_str(), 0) != 0) fail(path, ": cannot write the XML topology");
}

}  // namespace cc
