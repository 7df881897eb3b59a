// The compute backend: every heavy operation of the forward pass goes through this interface,
// so the primary model can run on an accelerator (OpenCL, issue 8) while the auxiliary model
// stays on CPU cores. Shaped by what a device needs: activations and KV live in backend
// buffers, weights are uploaded once, transfers are explicit. No backend types leak out.
//
// Shapes (row-major, f32 activations):
//   x, y        [n, d]        n token rows of width d
//   q           [n, H * hd]   query heads of each row, contiguous per head
//   k, v        [n, KV * hd]
//   KV cache    per layer: K and V [n_slots, KV * hd] in the cache dtype (F32/F16/BF16);
//               slot s holds the key/value of the token at position slot_pos[s] (post-RoPE K)
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "simd/dtype.h"

namespace cc {

// A matrix as stored in the model file (a view; the backend decides whether to copy).
struct WeightView {
  DType type = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
};

class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  virtual size_t bytes() const = 0;
};

class DeviceWeight {
 public:
  virtual ~DeviceWeight() = default;
  virtual const WeightView& view() const = 0;
};

enum class RopeMode { Adjacent, NeoX };

// Precomputed RoPE frequencies: inv_freq[i] = base^(-2i/hd) / freq_factor[i] / linear_factor.
struct RopeParams {
  int64_t head_dim = 0;
  RopeMode mode = RopeMode::NeoX;
  std::vector<float> inv_freq;  // head_dim / 2
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Host threads of a CPU team (1 for a device backend) and, for CPU backends, the CPUs the team
  // is bound to (empty = unbound); a device backend ignores the call.
  virtual int threads() const { return 1; }
  virtual void set_cpus(const std::vector<unsigned>& cpus, int threads) {
    (void)cpus;
    (void)threads;
  }
  // The CPUs each thread of the team may run on, read back from the OS inside a parallel
  // region (CPU backends; empty for a device backend). For tests and `cacheclip topology`.
  virtual std::vector<std::vector<unsigned>> team_bindings() { return {}; }

  // Waits until every operation issued so far has finished (device backends run
  // asynchronously; the CPU backend is synchronous). For timing stages.
  virtual void sync() {}

  // --- memory ---
  virtual std::unique_ptr<DeviceBuffer> alloc(size_t bytes) = 0;  // zero-filled
  virtual void upload(DeviceBuffer& dst, size_t offset, const void* src, size_t n) = 0;
  virtual void download(const DeviceBuffer& src, size_t offset, void* dst, size_t n) = 0;
  // Copy rows between buffers (device to device): dst[dst_row + i] = src[src_row + i].
  virtual void copy_rows(const DeviceBuffer& src, int64_t src_row, DeviceBuffer& dst, int64_t dst_row,
                         int64_t n_rows, size_t row_bytes) = 0;
  // Once per model; the CPU backend keeps a view into the mapped file (no copy).
  virtual std::unique_ptr<DeviceWeight> load_weight(const WeightView& w) = 0;

  // --- ops (all f32 activations) ---
  // out[i] = row ids[i] of table (e.g. the token embedding), dequantized.
  virtual void get_rows(const DeviceWeight& table, std::span<const int32_t> ids, DeviceBuffer& out) = 0;
  // y = rmsnorm(x) * w per row; w has d elements (F32). y may be x.
  virtual void rms_norm(const DeviceBuffer& x, const DeviceWeight& w, DeviceBuffer& y, int64_t n, int64_t d,
                        float eps) = 0;
  // y[n, W.rows] = x[n, W.cols] . W^T (+ bias, a [W.rows] vector, when given).
  virtual void matmul(const DeviceWeight& w, const DeviceWeight* bias, const DeviceBuffer& x, DeviceBuffer& y,
                      int64_t n) = 0;
  // Rotates n rows of n_heads heads in place; row i is at position pos[i].
  virtual void rope(DeviceBuffer& x, int64_t n, int64_t n_heads, std::span<const int64_t> pos,
                    const RopeParams& p) = 0;
  // Writes n rows of k and v into cache slots slot[i] (converted to the cache dtype).
  virtual void kv_store(DeviceBuffer& k_cache, DeviceBuffer& v_cache, DType cache_type, const DeviceBuffer& k,
                        const DeviceBuffer& v, std::span<const int64_t> slot, int64_t kv_dim) = 0;
  // out[i] = softmax(q_i . K^T / sqrt(hd), masked) . V over cache slots [0, n_slots) whose
  // position slot_pos[s] <= qpos[i] (exact causal mask by global position). GQA: query head h
  // uses KV head h / (n_heads / n_kv_heads). scale replaces 1/sqrt(hd) when non-zero; lse, when
  // given ([n, n_heads] f32), receives each query's log-sum-exp of its scaled logits (-inf when
  // it sees no key), so partial attentions over disjoint key sets can be merged (APE).
  virtual void attention(const DeviceBuffer& q, const DeviceBuffer& k_cache, const DeviceBuffer& v_cache,
                         DType cache_type, std::span<const int64_t> qpos, std::span<const int64_t> slot_pos,
                         DeviceBuffer& out, int64_t n, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                         float scale = 0.0f, DeviceBuffer* lse = nullptr) = 0;
  // Merges two partial attentions over disjoint key sets (APE): for each of n_vec query vectors
  // of hd dims, out = w1 o1 + w2 o2 with [w1, w2] = softmax([a1 lse1, a2 lse2]); zero where
  // both are -inf. out may be o1.
  virtual void merge_attention(const DeviceBuffer& o1, const DeviceBuffer& lse1, float a1, const DeviceBuffer& o2,
                               const DeviceBuffer& lse2, float a2, DeviceBuffer& out, int64_t n_vec,
                               int64_t hd) = 0;
  // y = silu(g) * u, count elements; y may be g.
  virtual void swiglu(const DeviceBuffer& g, const DeviceBuffer& u, DeviceBuffer& y, int64_t count) = 0;
  // y += x, count elements.
  virtual void add(const DeviceBuffer& x, DeviceBuffer& y, int64_t count) = 0;

  // The whole SwiGLU FFN with its residual add: y[n, D] += (silu(x . gate^T) * (x . up^T)) .
  // down^T, with D = down.rows and F = down.cols = gate.rows = up.rows; y must not be x. A
  // backend that fuses it never holds the [n, F] activations (the CPU backend works through F in
  // slices of 512 features or more, each multiplied into y at once: 17 MiB less per 512-row
  // micro-batch on a 0.5B model). This default composes matmul, swiglu and add through buffers
  // it keeps for the next call.
  virtual void ffn(const DeviceWeight& gate, const DeviceWeight& up, const DeviceWeight& down, const DeviceBuffer& x,
                   DeviceBuffer& y, int64_t n) {
    const int64_t F = down.view().cols, D = down.view().rows;
    if (up.view().rows != F || gate.view().rows != F) {
      fail("ffn: down takes ", F, " features but gate and up make ", gate.view().rows, " and ", up.view().rows);
    }
    auto keep = [&](std::unique_ptr<DeviceBuffer>& b, int64_t elems) -> DeviceBuffer& {
      const size_t need = static_cast<size_t>(elems) * 4;
      if (!b || b->bytes() < need) b = alloc(need);
      return *b;
    };
    DeviceBuffer &h = keep(ffn_h_, n * F), &u = keep(ffn_u_, n * F), &o = keep(ffn_o_, n * D);
    matmul(gate, nullptr, x, h, n);
    matmul(up, nullptr, x, u, n);
    swiglu(h, u, h, n * F);
    matmul(down, nullptr, h, o, n);
    add(o, y, n * D);
  }

 private:
  std::unique_ptr<DeviceBuffer> ffn_h_, ffn_u_, ffn_o_;
};

struct CpuBackendOptions {
  int threads = 0;             // 0 = all cores of the process's CPU set (or one per cpus entry)
  std::vector<unsigned> cpus;  // bind every team thread to these CPUs (empty = unbound)
  // Prefill products with BF16 or block-quantized weights: Auto takes the BF16 route
  // (activations and decoded weights rounded to bf16, vdpbf16ps) where the CPU has AVX512-BF16;
  // Off keeps every product in fp32; Portable takes the BF16 route with the portable scalar
  // kernels, so tests check that route on any CPU (slow: not for production). With Auto, the
  // environment variable CACHECLIP_BF16=auto|off|portable chooses.
  enum class Bf16Route { Auto, Off, Portable } bf16 = Bf16Route::Auto;
};
std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& opts = {});

// OpenCL (src/ops/opencl_backend.cpp): any OpenCL 1.2 device; PoCL runs it on the CPU.
struct OpenClOptions {
  // "" = the first device; "P:D" = platform P, device D; "P" = platform P's first device; any
  // other text = the first device whose name contains it.
  std::string device;
  std::string build_options;  // extra compiler options for the kernels
};
struct OpenClDeviceInfo {
  int platform = 0, device = 0;
  std::string platform_name, name, version, type;
  uint64_t global_mem = 0, max_alloc = 0;
  int compute_units = 0;
};
// Every device of every platform (empty when no OpenCL platform is installed).
std::vector<OpenClDeviceInfo> list_opencl_devices();
// Throws cc::Error naming the device: no platform, no matching device (the devices are
// listed), a kernel build failure (with the build log).
std::unique_ptr<Backend> make_opencl_backend(const OpenClOptions& opts = {});
// "cpu", "opencl", or "auto" (OpenCL when a device exists, else the CPU). Nothing else falls
// back: asking for opencl without a device is an error.
std::unique_ptr<Backend> make_backend(const std::string& kind, const CpuBackendOptions& cpu, const OpenClOptions& cl);

}  // namespace cc
