// OpenCL backend: the same Backend interface as the CPU backend, on any OpenCL 1.2 device
// (a GPU with its vendor driver, or PoCL on the CPU). Activations and KV caches are device
// buffers; weights are uploaded once per model: F32, F16 and BF16 as stored (converted in the
// kernels), the block-quantized types (Q8_0, Q4_0, Q4_K, Q6_K) dequantized at upload to F16.
// Kernels (opencl_kernels.cl) are built once per device and source; built programs are cached
// on disk (CACHECLIP_OPENCL_CACHE, else $XDG_CACHE_HOME or ~/.cache, /cacheclip/opencl).
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "base/mapped_file.h"
#include "ops/backend.h"
#include "simd/convert.h"
#include "simd/kernels.h"

namespace cc {

namespace {

const char* kKernelSource =
#include "opencl_kernels.inc"
    ;

const char* cl_error_name(cl_int e) {
  switch (e) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_BINARY: return "CL_INVALID_BINARY";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL platform installed)";
    default: return "OpenCL error";
  }
}

// A string property through an OpenCL getter (size query, then the bytes; trailing NULs dropped).
template <class Get, class Obj, class Info>
std::string cl_string(Get get, Obj obj, Info what) {
  size_t n = 0;
  get(obj, what, 0, nullptr, &n);
  std::string s(n, '\0');
  get(obj, what, n, s.data(), nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}
std::string dev_str(cl_device_id d, cl_device_info what) { return cl_string(clGetDeviceInfo, d, what); }
std::string plat_str(cl_platform_id p, cl_platform_info what) { return cl_string(clGetPlatformInfo, p, what); }
template <typename T>
T dev_val(cl_device_id d, cl_device_info what) {
  T v{};
  clGetDeviceInfo(d, what, sizeof v, &v, nullptr);
  return v;
}

std::vector<cl_platform_id> platforms() {
  cl_uint n = 0;
  if (clGetPlatformIDs(0, nullptr, &n) != CL_SUCCESS || n == 0) return {};
  std::vector<cl_platform_id> p(n);
  clGetPlatformIDs(n, p.data(), nullptr);
  return p;
}
std::vector<cl_device_id> devices_of(cl_platform_id p) {
  cl_uint n = 0;
  if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &n) != CL_SUCCESS || n == 0) return {};
  std::vector<cl_device_id> d(n);
  clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, n, d.data(), nullptr);
  return d;
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string cache_dir() {
  if (const char* e = std::getenv("CACHECLIP_OPENCL_CACHE"); e && *e) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/cacheclip/opencl";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/cacheclip/opencl";
  return "";
}

int type_code(DType t) { return t == DType::F32 ? 0 : t == DType::F16 ? 1 : 2; }

class ClBuffer final : public DeviceBuffer {
 public:
  ClBuffer(cl_mem m, size_t bytes) : mem_(m), bytes_(bytes) {}
  ~ClBuffer() override {
    if (mem_) clReleaseMemObject(mem_);
  }
  size_t bytes() const override { return bytes_; }
  cl_mem mem() const { return mem_; }

 private:
  cl_mem mem_;
  size_t bytes_;
};

class ClWeight final : public DeviceWeight {
 public:
  ClWeight(const WeightView& v, cl_mem m, int code) : v_(v), mem_(m), code_(code) {}
  ~ClWeight() override {
    if (mem_) clReleaseMemObject(mem_);
  }
  const WeightView& view() const override { return v_; }
  cl_mem mem() const { return mem_; }
  int code() const { return code_; }

 private:
  WeightView v_;
  cl_mem mem_;
  int code_;
};

const ClBuffer& clb(const DeviceBuffer& b) { return static_cast<const ClBuffer&>(b); }
const ClWeight& clw(const DeviceWeight& w) { return static_cast<const ClWeight&>(w); }

class OpenClBackend final : public Backend {
 public:
  explicit OpenClBackend(const OpenClOptions& o) {
    const auto plats = platforms();
    if (plats.empty()) {
      fail("no OpenCL platform found (install an OpenCL driver, e.g. Debian's pocl-opencl-icd, or use --primary-backend cpu)");
    }
    pick_device(plats, o.device);
    name_ = dev_str(dev_, CL_DEVICE_NAME);
    global_mem_ = dev_val<cl_ulong>(dev_, CL_DEVICE_GLOBAL_MEM_SIZE);
    max_alloc_ = dev_val<cl_ulong>(dev_, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    cl_int err = CL_SUCCESS;
    ctx_ = clCreateContext(nullptr, 1, &dev_, nullptr, nullptr, &err);
    check(err, "creating a context");
    queue_ = clCreateCommandQueue(ctx_, dev_, 0, &err);
    check(err, "creating a command queue");
    build(o.build_options);
    for (const char* k : {"get_rows", "rms_norm", "matmul", "matvec", "rope", "kv_store", "attention", "merge_attention", "swiglu", "add"}) {
      cl_kernel kk = clCreateKernel(prog_, k, &err);
      check(err, cat("creating kernel ", k));
      kernels_[k] = kk;
    }
  }
  ~OpenClBackend() override {
    for (auto& [n, k] : kernels_) clReleaseKernel(k);
    if (prog_) clReleaseProgram(prog_);
    if (queue_) clReleaseCommandQueue(queue_);
    if (ctx_) clReleaseContext(ctx_);
  }

  std::string name() const override { return cat("opencl (", name_, ")"); }
  void sync() override { check(clFinish(queue_), "waiting for the queue"); }

  std::unique_ptr<DeviceBuffer> alloc(size_t bytes) override {
    const size_t n = std::max<size_t>(bytes, 4);
    if (n > max_alloc_) {
      fail("OpenCL device '", name_, "': a buffer of ", n / 1048576.0, " MiB exceeds its largest allocation (",
           max_alloc_ / 1048576, " MiB)");
    }
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(ctx_, CL_MEM_READ_WRITE, n, nullptr, &err);
    check(err, cat("allocating ", n, " bytes"));
    const cl_uchar zero = 0;
    err = clEnqueueFillBuffer(queue_, m, &zero, 1, 0, n, 0, nullptr, nullptr);
    if (err != CL_SUCCESS) {
      clReleaseMemObject(m);
      check(err, "clearing a buffer");
    }
    return std::make_unique<ClBuffer>(m, bytes);
  }
  void upload(DeviceBuffer& dst, size_t off, const void* src, size_t n) override {
    CC_ASSERT(off + n <= dst.bytes());
    if (n) check(clEnqueueWriteBuffer(queue_, clb(dst).mem(), CL_TRUE, off, n, src, 0, nullptr, nullptr), "uploading");
  }
  void download(const DeviceBuffer& src, size_t off, void* dst, size_t n) override {
    CC_ASSERT(off + n <= src.bytes());
    if (n) check(clEnqueueReadBuffer(queue_, clb(src).mem(), CL_TRUE, off, n, dst, 0, nullptr, nullptr), "downloading");
  }
  void copy_rows(const DeviceBuffer& src, int64_t sr, DeviceBuffer& dst, int64_t dr, int64_t n, size_t row_bytes) override {
    CC_ASSERT((sr + n) * row_bytes <= src.bytes() && (dr + n) * row_bytes <= dst.bytes());
    if (n == 0) return;
    if (&src == &dst) {  // OpenCL forbids overlapping copies within one buffer: go through a temporary
      auto tmp = alloc(static_cast<size_t>(n) * row_bytes);
      copy_rows(src, sr, *tmp, 0, n, row_bytes);
      copy_rows(*tmp, 0, dst, dr, n, row_bytes);
      return;
    }
    check(clEnqueueCopyBuffer(queue_, clb(src).mem(), clb(dst).mem(), static_cast<size_t>(sr) * row_bytes,
                              static_cast<size_t>(dr) * row_bytes, static_cast<size_t>(n) * row_bytes, 0, nullptr, nullptr),
          "copying rows");
  }

  std::unique_ptr<DeviceWeight> load_weight(const WeightView& w) override {
    const int64_t count = w.rows * w.cols;
    std::vector<uint8_t> host;
    const void* src = w.data;
    DType t = w.type;
    size_t bytes = dtype_row_bytes(w.type, w.cols) * static_cast<size_t>(w.rows);
    if (w.rows == 1 && w.type != DType::F32) {  // vectors (norms, biases): F32 on the device
      host.resize(static_cast<size_t>(count) * 4);
      simd::kernels().to_f32(w.type, w.data, reinterpret_cast<float*>(host.data()), count);
      src = host.data();
      t = DType::F32;
      bytes = host.size();
    } else if (dtype_is_quantized(w.type)) {  // dequantized at upload, stored as F16
      host.resize(static_cast<size_t>(count) * 2);
      std::vector<float> row(static_cast<size_t>(w.cols));
      const size_t rb = dtype_row_bytes(w.type, w.cols);
      for (int64_t r = 0; r < w.rows; ++r) {
        simd::kernels().to_f32(w.type, static_cast<const uint8_t*>(w.data) + r * rb, row.data(), w.cols);
        simd::kernels().from_f32(DType::F16, row.data(), host.data() + r * w.cols * 2, w.cols);
      }
      src = host.data();
      t = DType::F16;
      bytes = host.size();
    }
    if (used_ + bytes > global_mem_) {
      fail("OpenCL device '", name_, "' has ", global_mem_ / 1048576, " MiB of memory; the weights need more than that (",
           (used_ + bytes) / 1048576, " MiB so far)");
    }
    if (bytes > max_alloc_) {
      fail("OpenCL device '", name_, "': a weight of ", bytes / 1048576.0, " MiB exceeds its largest allocation (",
           max_alloc_ / 1048576, " MiB)");
    }
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(ctx_, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, std::max<size_t>(bytes, 4),
                              const_cast<void*>(src), &err);
    check(err, cat("uploading a weight of ", bytes, " bytes"));
    used_ += bytes;
    return std::make_unique<ClWeight>(w, m, type_code(t));
  }

  void get_rows(const DeviceWeight& table, std::span<const int32_t> ids, DeviceBuffer& out) override {
    if (ids.empty()) return;
    const ClWeight& w = clw(table);
    Tmp idb(*this, ids.data(), ids.size_bytes());
    const cl_int cols = static_cast<cl_int>(w.view().cols);
    run("get_rows", {round_up(cols, 64), ids.size()}, {}, w.mem(), w.code(), idb.m, clb(out).mem(), cols);
  }

  void rms_norm(const DeviceBuffer& x, const DeviceWeight& w, DeviceBuffer& y, int64_t n, int64_t d, float eps) override {
    if (n == 0) return;
    run("rms_norm", {static_cast<size_t>(n) * 64}, {64}, clb(x).mem(), clw(w).mem(), clw(w).code(), clb(y).mem(),
        static_cast<cl_int>(d), eps);
  }

  void matmul(const DeviceWeight& wt, const DeviceWeight* bias, const DeviceBuffer& x, DeviceBuffer& y, int64_t n) override {
    if (n == 0) return;
    const WeightView& v = wt.view();
    cl_mem b = bias ? clw(*bias).mem() : clw(wt).mem();
    if (n <= 4) {  // decode: one work-item per output feature, each weight row read once
      run("matvec", {static_cast<size_t>(v.rows)}, {}, clb(x).mem(), clw(wt).mem(), clw(wt).code(), b,
          static_cast<cl_int>(bias != nullptr), clb(y).mem(), static_cast<cl_int>(n), static_cast<cl_int>(v.rows),
          static_cast<cl_int>(v.cols));
      return;
    }
    run("matmul", {round_up(v.rows, 16), round_up(n, 16)}, {16, 16}, clb(x).mem(), clw(wt).mem(), clw(wt).code(), b,
        static_cast<cl_int>(bias != nullptr), clb(y).mem(), static_cast<cl_int>(n), static_cast<cl_int>(v.rows),
        static_cast<cl_int>(v.cols));
  }

  void rope(DeviceBuffer& x, int64_t n, int64_t n_heads, std::span<const int64_t> pos, const RopeParams& p) override {
    if (n == 0) return;
    Tmp pb(*this, pos.data(), static_cast<size_t>(n) * 8);
    Tmp fb(*this, p.inv_freq.data(), p.inv_freq.size() * 4);
    run("rope", {static_cast<size_t>(p.head_dim / 2), static_cast<size_t>(n_heads), static_cast<size_t>(n)}, {},
        clb(x).mem(), pb.m, fb.m, static_cast<cl_int>(n_heads), static_cast<cl_int>(p.head_dim),
        static_cast<cl_int>(p.mode == RopeMode::NeoX));
  }

  void kv_store(DeviceBuffer& kc, DeviceBuffer& vc, DType t, const DeviceBuffer& k, const DeviceBuffer& v,
                std::span<const int64_t> slot, int64_t kv_dim) override {
    if (slot.empty()) return;
    Tmp sb(*this, slot.data(), slot.size_bytes());
    run("kv_store", {round_up(kv_dim, 64), slot.size()}, {}, clb(kc).mem(), clb(vc).mem(), type_code(t), clb(k).mem(),
        clb(v).mem(), sb.m, static_cast<cl_int>(kv_dim));
  }

  void attention(const DeviceBuffer& q, const DeviceBuffer& kc, const DeviceBuffer& vc, DType t,
                 std::span<const int64_t> qpos, std::span<const int64_t> slot_pos, DeviceBuffer& out, int64_t n,
                 int64_t n_heads, int64_t n_kv_heads, int64_t hd, float scale, DeviceBuffer* lse) override {
    if (n == 0) return;
    if (hd > 256) fail("OpenCL attention supports head_dim <= 256, got ", hd);
    Tmp qp(*this, qpos.data(), static_cast<size_t>(n) * 8);
    Tmp sp(*this, slot_pos.empty() ? nullptr : slot_pos.data(), slot_pos.size_bytes());
    const float sc = scale != 0.0f ? scale : 1.0f / std::sqrt(static_cast<float>(hd));
    cl_mem lm = lse ? clb(*lse).mem() : clb(out).mem();
    run("attention", {static_cast<size_t>(n_heads), static_cast<size_t>(n)}, {}, clb(q).mem(), clb(kc).mem(),
        clb(vc).mem(), type_code(t), qp.m, sp.m, static_cast<cl_int>(slot_pos.size()), clb(out).mem(), lm,
        static_cast<cl_int>(lse != nullptr), static_cast<cl_int>(n), static_cast<cl_int>(n_heads),
        static_cast<cl_int>(n_kv_heads), static_cast<cl_int>(hd), sc);
  }

  void merge_attention(const DeviceBuffer& o1, const DeviceBuffer& l1, float a1, const DeviceBuffer& o2,
                       const DeviceBuffer& l2, float a2, DeviceBuffer& out, int64_t n_vec, int64_t hd) override {
    if (n_vec == 0) return;
    run("merge_attention", {static_cast<size_t>(n_vec)}, {}, clb(o1).mem(), clb(l1).mem(), a1, clb(o2).mem(),
        clb(l2).mem(), a2, clb(out).mem(), static_cast<cl_int>(hd));
  }

  void swiglu(const DeviceBuffer& g, const DeviceBuffer& u, DeviceBuffer& y, int64_t count) override {
    if (count == 0) return;
    run("swiglu", {static_cast<size_t>(count)}, {}, clb(g).mem(), clb(u).mem(), clb(y).mem(), static_cast<cl_int>(count));
  }

  void add(const DeviceBuffer& x, DeviceBuffer& y, int64_t count) override {
    if (count == 0) return;
    run("add", {static_cast<size_t>(count)}, {}, clb(x).mem(), clb(y).mem(), static_cast<cl_int>(count));
  }

 private:
  // A short-lived device copy of host indices (positions, slots, ids).
  struct Tmp {
    cl_mem m = nullptr;
    Tmp(OpenClBackend& be, const void* data, size_t bytes) {
      cl_int err = CL_SUCCESS;
      static const int64_t dummy = 0;
      if (bytes == 0 || !data) {
        data = &dummy;
        bytes = sizeof dummy;
      }
      m = clCreateBuffer(be.ctx_, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, const_cast<void*>(data), &err);
      be.check(err, "uploading indices");
    }
    ~Tmp() {
      if (m) clReleaseMemObject(m);
    }
    Tmp(const Tmp&) = delete;
    Tmp& operator=(const Tmp&) = delete;
  };

  static size_t round_up(int64_t v, int64_t m) { return static_cast<size_t>((v + m - 1) / m * m); }

  void check(cl_int err, const std::string& what) const {
    if (err != CL_SUCCESS) fail("OpenCL device '", name_, "': ", what, " failed (", cl_error_name(err), ", code ", err, ")");
  }

  template <typename T>
  void set_arg(cl_kernel k, cl_uint i, const T& v) {
    check(clSetKernelArg(k, i, sizeof(T), &v), cat("setting argument ", i));
  }
  template <typename... A>
  void run(const char* name, std::vector<size_t> global, std::vector<size_t> local, const A&... args) {
    std::lock_guard<std::mutex> lock(mu_);
    cl_kernel k = kernels_.at(name);
    cl_uint i = 0;
    (set_arg(k, i++, args), ...);
    check(clEnqueueNDRangeKernel(queue_, k, static_cast<cl_uint>(global.size()), nullptr, global.data(),
                                 local.empty() ? nullptr : local.data(), 0, nullptr, nullptr),
          cat("running kernel ", name));
  }

  void pick_device(const std::vector<cl_platform_id>& plats, const std::string& spec) {
    std::string names;
    int pi = 0;
    for (cl_platform_id p : plats) {
      int di = 0;
      for (cl_device_id d : devices_of(p)) {
        const std::string nm = dev_str(d, CL_DEVICE_NAME);
        names += cat(names.empty() ? "" : ", ", pi, ":", di, " '", nm, "'");
        const bool match = spec.empty() || spec == cat(pi, ":", di) || spec == cat(pi) ||
                           (spec.find(':') == std::string::npos && nm.find(spec) != std::string::npos);
        if (match && !dev_) dev_ = d;
        ++di;
      }
      ++pi;
    }
    if (!dev_) {
      if (names.empty()) fail("the OpenCL platforms have no devices");
      fail("no OpenCL device matches '", spec, "' (devices: ", names, ")");
    }
  }

  void build(const std::string& extra) {
    const std::string opts = "-cl-std=CL1.2 " + extra;
    const std::string key = cat(std::hex, fnv1a(opts + "|" + dev_str(dev_, CL_DEVICE_NAME) + "|" +
                                               dev_str(dev_, CL_DRIVER_VERSION) + "|" + dev_str(dev_, CL_DEVICE_VERSION) +
                                               "|" + kKernelSource));
    const std::string dir = cache_dir();
    const std::string path = dir.empty() ? "" : dir + "/" + key + ".bin";
    cl_int err = CL_SUCCESS;
    if (!path.empty() && std::filesystem::exists(path)) {  // a built program from an earlier run
      std::ifstream f(path, std::ios::binary);
      std::vector<unsigned char> bin((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const unsigned char* bp = bin.data();
      const size_t bn = bin.size();
      cl_int status = CL_SUCCESS;
      prog_ = clCreateProgramWithBinary(ctx_, 1, &dev_, &bn, &bp, &status, &err);
      if (err == CL_SUCCESS && status == CL_SUCCESS && clBuildProgram(prog_, 1, &dev_, opts.c_str(), nullptr, nullptr) == CL_SUCCESS) {
        from_cache_ = true;
        return;
      }
      if (prog_) clReleaseProgram(prog_);
      prog_ = nullptr;
      std::error_code ec;
      std::filesystem::remove(path, ec);  // stale or corrupt: rebuild from source
    }
    const char* src = kKernelSource;
    const size_t len = std::strlen(src);
    prog_ = clCreateProgramWithSource(ctx_, 1, &src, &len, &err);
    check(err, "creating the program");
    if (clBuildProgram(prog_, 1, &dev_, opts.c_str(), nullptr, nullptr) != CL_SUCCESS) {
      size_t n = 0;
      clGetProgramBuildInfo(prog_, dev_, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
      std::string log(n, '\0');
      clGetProgramBuildInfo(prog_, dev_, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
      fail("OpenCL device '", name_, "': building the kernels failed; build log:\n", log);
    }
    if (!path.empty()) {
      size_t bn = 0;
      clGetProgramInfo(prog_, CL_PROGRAM_BINARY_SIZES, sizeof bn, &bn, nullptr);
      if (bn > 0) {
        std::vector<unsigned char> bin(bn);
        unsigned char* bp = bin.data();
        if (clGetProgramInfo(prog_, CL_PROGRAM_BINARIES, sizeof bp, &bp, nullptr) == CL_SUCCESS) {
          std::error_code ec;
          std::filesystem::create_directories(dir, ec);
          try {
            write_file_atomic(path, bin.data(), bin.size());
          } catch (const std::exception&) {
            // a cache that cannot be written only costs a rebuild next time
          }
        }
      }
    }
  }

  cl_device_id dev_ = nullptr;
  cl_context ctx_ = nullptr;
  cl_command_queue queue_ = nullptr;
  cl_program prog_ = nullptr;
  std::map<std::string, cl_kernel> kernels_;
  std::mutex mu_;
  std::string name_;
  uint64_t global_mem_ = 0, max_alloc_ = 0, used_ = 0;
  bool from_cache_ = false;
};

}  // namespace

std::vector<OpenClDeviceInfo> list_opencl_devices() {
  std::vector<OpenClDeviceInfo> out;
  int pi = 0;
  for (cl_platform_id p : platforms()) {
    int di = 0;
    for (cl_device_id d : devices_of(p)) {
      OpenClDeviceInfo info;
      info.platform = pi;
      info.device = di++;
      info.platform_name = plat_str(p, CL_PLATFORM_NAME);
      info.name = dev_str(d, CL_DEVICE_NAME);
      info.version = dev_str(d, CL_DEVICE_VERSION);
      const auto type = dev_val<cl_device_type>(d, CL_DEVICE_TYPE);
      info.type = type & CL_DEVICE_TYPE_GPU ? "GPU" : type & CL_DEVICE_TYPE_CPU ? "CPU" : type & CL_DEVICE_TYPE_ACCELERATOR ? "accelerator" : "other";
      info.global_mem = dev_val<cl_ulong>(d, CL_DEVICE_GLOBAL_MEM_SIZE);
      info.max_alloc = dev_val<cl_ulong>(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
      info.compute_units = static_cast<int>(dev_val<cl_uint>(d, CL_DEVICE_MAX_COMPUTE_UNITS));
      out.push_back(info);
    }
    ++pi;
  }
  return out;
}

std::unique_ptr<Backend> make_opencl_backend(const OpenClOptions& opts) { return std::make_unique<OpenClBackend>(opts); }

std::unique_ptr<Backend> make_backend(const std::string& kind, const CpuBackendOptions& cpu, const OpenClOptions& cl) {
  if (kind == "cpu") return make_cpu_backend(cpu);
  if (kind == "opencl") return make_opencl_backend(cl);
  if (kind == "auto") {
    if (!list_opencl_devices().empty()) return make_opencl_backend(cl);
    return make_cpu_backend(cpu);
  }
  fail("unknown backend '", kind, "' (expected cpu, opencl or auto)");
}

}  // namespace cc
