// The process-wide hwloc topology (loaded once, on first use) used for memory and CPU binding
// inside numa/. nullptr when hwloc cannot load the machine's topology. Internal to cc_numa.
#pragma once
#include <hwloc.h>

namespace cc {
hwloc_topology_t process_topology();
}  // namespace cc
