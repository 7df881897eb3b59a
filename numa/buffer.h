// Page-aligned buffers bound to NUMA nodes (hwloc_alloc_membind). On machines or kernels that
// cannot bind, memory is still allocated (first-touch) and bound() reports false.
#pragma once
#include <cstddef>
#include <vector>

namespace cc {

class NumaBuffer {
 public:
  NumaBuffer() = default;
  // Allocates `bytes` bound to `nodes` (OS indices; interleaved when several; empty = local).
  // Throws cc::Error when the allocation fails.
  NumaBuffer(size_t bytes, const std::vector<unsigned>& nodes);
  ~NumaBuffer();
  NumaBuffer(NumaBuffer&& o) noexcept;
  NumaBuffer& operator=(NumaBuffer&& o) noexcept;
  NumaBuffer(const NumaBuffer&) = delete;
  NumaBuffer& operator=(const NumaBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  bool bound() const { return bound_; }

 private:
  void release();
  void* data_ = nullptr;
  size_t size_ = 0;
  bool bound_ = false;
  bool from_hwloc_ = false;
};

}  // namespace cc
