#include "numa/buffer.h"
#include "numa/hwloc_process.h"

#include <hwloc.h>

#include <cstdlib>
#include <mutex>

#include "base/error.h"

namespace cc {


hwloc_topology_t process_topology() {
  static hwloc_topology_t topo = [] {
    hwloc_topology_t t = nullptr;
    if (hwloc_topology_init(&t) != 0 || hwloc_topology_load(t) != 0) return static_cast<hwloc_topology_t>(nullptr);
    return t;
  }();
  return topo;
}


NumaBuffer::NumaBuffer(size_t bytes, const std::vector<unsigned>& nodes) : size_(bytes) {
  if (bytes == 0) return;
  hwloc_topology_t t = process_topology();
  if (t != nullptr && !nodes.empty()) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    for (unsigned n : nodes) hwloc_bitmap_set(set, n);
    auto policy = nodes.size() > 1 ? HWLOC_MEMBIND_INTERLEAVE : HWLOC_MEMBIND_BIND;
    data_ = hwloc_alloc_membind(t, bytes, set, policy, HWLOC_MEMBIND_BYNODESET);
    hwloc_bitmap_free(set);
    if (data_ != nullptr) {
      bound_ = true;
      from_hwloc_ = true;
      return;
    }
  }
  // No binding possible (single node, container without mbind): page-aligned, first-touch.
  if (posix_memalign(&data_, 4096, bytes) != 0) {
    data_ = nullptr;
    fail("cannot allocate ", bytes, " bytes");
  }
}

void NumaBuffer::release() {
  if (data_ == nullptr) return;
  if (from_hwloc_) {
    hwloc_free(process_topology(), data_, size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
}

NumaBuffer::~NumaBuffer() { release(); }

NumaBuffer::NumaBuffer(NumaBuffer&& o) noexcept
    : data_(o.data_), size_(o.size_), bound_(o.bound_), from_hwloc_(o.from_hwloc_) {
  o.data_ = nullptr;
}

NumaBuffer& NumaBuffer::operator=(NumaBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = o.data_, size_ = o.size_, bound_ = o.bound_, from_hwloc_ = o.from_hwloc_;
    o.data_ = nullptr;
  }
  return *this;
}

}  // namespace cc
