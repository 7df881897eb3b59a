// CPU backend: f32 activations in host memory, weights used in place from the mapped file.
// Matrix products: OpenBLAS sgemm on f32 weights; other weight types are dequantized one tile
// of rows at a time into per-thread scratch and multiplied with sgemm. Parallelism is ours
// (OpenMP over independent tiles/rows); OpenBLAS is pinned to one thread so the two never
// oversubscribe the cores.
#include <cblas.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cmath>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "base/error.h"
#include "numa/placement.h"
#include "ops/backend.h"
#include "simd/attention.h"
#include "simd/kernels.h"

namespace cc {

namespace {

class CpuBuffer final : public DeviceBuffer {
 public:
  // Zero-filled. Large buffers (KV caches, micro-batch activations) are anonymous mappings: the
  // kernel's zero pages, resident only once written (a cache sized for a whole request, a
  // workspace sized for 512 rows used by one), and unmapped when freed instead of left as holes
  // in the heap. Small ones come from the heap.
  explicit CpuBuffer(size_t bytes) : bytes_(bytes) {
    size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    if (rounded >= kMapBytes) {
      void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) fail("cannot map ", bytes, " bytes of activation memory: ", std::strerror(errno));
      data_ = static_cast<uint8_t*>(p);
      mapped_ = rounded;
      return;
    }
    data_ = static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
    if (!data_) fail("cannot allocate ", bytes, " bytes of activation memory");
    std::memset(data_, 0, rounded);
  }
  ~CpuBuffer() override {
    if (mapped_) munmap(data_, mapped_);
    else std::free(data_);
  }
  size_t bytes() const override { return bytes_; }
  uint8_t* data() const { return data_; }
  float* f() const { return reinterpret_cast<float*>(data_); }

 private:
  static constexpr size_t kMapBytes = 64 * 1024;
  uint8_t* data_;
  size_t bytes_;
  size_t mapped_ = 0;  // length of the mapping; 0: heap
};

class CpuWeight final : public DeviceWeight {
 public:
  explicit CpuWeight(const WeightView& v) : v_(v) {}
  const WeightView& view() const override { return v_; }

 private:
  WeightView v_;
};

const CpuBuffer& cb(const DeviceBuffer& b) { return static_cast<const CpuBuffer&>(b); }
CpuBuffer& cb(DeviceBuffer& b) { return static_cast<CpuBuffer&>(b); }

// A small f32 vector weight (norm, bias): used in place when F32, else converted per call.
const float* vec_f32(const WeightView& w, int64_t n, std::vector<float>& tmp) {
  CC_ASSERT(w.rows * w.cols == n || w.cols == n);
  if (w.type == DType::F32) return static_cast<const float*>(w.data);
  tmp.resize(static_cast<size_t>(n));
  simd::kernels().to_f32(w.type, w.data, tmp.data(), n);
  return tmp.data();
}

class CpuBackend final : public Backend {
  static constexpr int64_t kGemvRows = 4;  // up to this many rows, matrix-vector kernels beat sgemm
  // Features per slice of the fused FFN (at least; larger teams take larger slices): a multiple
  // of every block size (256 for the K-quants) and of the 64-row tiles; the down projection's
  // products have depth 512, near sgemm's best.
  static constexpr int64_t kFfnSlice = 512;

 public:
  explicit CpuBackend(const CpuBackendOptions& o) {
    // A team far beyond the machine only oversubscribes it, and libgomp fails (or overflows
    // its stack) when asked for tens of thousands of threads: refuse it up front.
    constexpr int kMaxThreads = 1024;
    if (o.threads < 0 || o.threads > kMaxThreads) {
      fail("thread count ", o.threads, " is out of range: give 1 to ", kMaxThreads, " (0 or none = all cores; this machine has ",
           omp_get_num_procs(), ")");
    }
    team_ = o.threads > 0 ? o.threads : (o.cpus.empty() ? omp_get_num_procs() : static_cast<int>(o.cpus.size()));
    cpus_ = o.cpus;
    using R = CpuBackendOptions::Bf16Route;
    R route = o.bf16;
    if (const char* env = std::getenv("CACHECLIP_BF16"); route == R::Auto && env && *env) {
      const std::string v = env;
      if (v == "off") route = R::Off;
      else if (v == "portable") route = R::Portable;
      else if (v != "auto") fail("CACHECLIP_BF16=", v, " is not auto, off or portable");
    }
    bg_ = route == R::Portable ? &simd::portable_bf16_gemm() : route == R::Off ? nullptr : simd::bf16_gemm();
    generation_ = next_generation();
    simd::kernels();  // selects the ISA now, so a bad CACHECLIP_ISA is reported here
    openblas_set_num_threads(1);
  }

  std::string name() const override {
    std::lock_guard<std::mutex> lock(cpus_mu_);
    return cat("cpu (", team_.load(), " threads", cpus_.empty() ? "" : cat(" on CPUs ", cpu_list_text(cpus_)), ", ",
               simd::kernels().isa, bg_ == &simd::portable_bf16_gemm() ? ", portable bf16" : "", ")");
  }
  int threads() const override { return team_.load(); }
  std::vector<std::vector<unsigned>> team_bindings() override {
    const int nt = team_.load();
    std::vector<std::vector<unsigned>> out(static_cast<size_t>(nt));
#pragma omp parallel num_threads(nt)
    {
      pin();
      out[static_cast<size_t>(omp_get_thread_num())] = current_thread_cpus();
    }
    return out;
  }
  void set_cpus(const std::vector<unsigned>& cpus, int threads) override {
    if (threads < 1) fail("a thread team needs at least one thread");
    // May be called from another host thread while this team works (the aux thread lending its
    // cores): every op reads the team size once at its start, and pin() rebinds on the next one.
    std::lock_guard<std::mutex> lock(cpus_mu_);
    cpus_ = cpus;
    team_ = threads;
    generation_ = next_generation();
  }

  std::unique_ptr<DeviceBuffer> alloc(size_t bytes) override { return std::make_unique<CpuBuffer>(bytes); }
  void upload(DeviceBuffer& dst, size_t off, const void* src, size_t n) override {
    CC_ASSERT(off + n <= dst.bytes());
    std::memcpy(cb(dst).data() + off, src, n);
  }
  void download(const DeviceBuffer& src, size_t off, void* dst, size_t n) override {
    CC_ASSERT(off + n <= src.bytes());
    std::memcpy(dst, cb(src).data() + off, n);
  }
  void copy_rows(const DeviceBuffer& src, int64_t sr, DeviceBuffer& dst, int64_t dr, int64_t n,
                 size_t row_bytes) override {
    CC_ASSERT((sr + n) * row_bytes <= src.bytes() && (dr + n) * row_bytes <= dst.bytes());
    std::memmove(cb(dst).data() + dr * row_bytes, cb(src).data() + sr * row_bytes, n * row_bytes);
  }
  std::unique_ptr<DeviceWeight> load_weight(const WeightView& w) override { return std::make_unique<CpuWeight>(w); }

  void get_rows(const DeviceWeight& table, std::span<const int32_t> ids, DeviceBuffer& out) override {
    const WeightView& w = table.view();
    const size_t rb = dtype_row_bytes(w.type, w.cols);
    float* o = cb(out).f();
    for (size_t i = 0; i < ids.size(); ++i) {
      CC_ASSERT(ids[i] >= 0 && ids[i] < w.rows);
      simd::kernels().to_f32(w.type, static_cast<const uint8_t*>(w.data) + ids[i] * rb, o + i * w.cols, w.cols);
    }
  }

  void rms_norm(const DeviceBuffer& x, const DeviceWeight& w, DeviceBuffer& y, int64_t n, int64_t d,
                float eps) override {
    const int nt = team_.load();
    std::vector<float> tmp;
    const float* wf = vec_f32(w.view(), d, tmp);
    const float* xs = cb(x).f();
    float* ys = cb(y).f();
#pragma omp parallel num_threads(nt) if (n > 4)
    {
      pin();
#pragma omp for
    for (int64_t i = 0; i < n; ++i) simd::kernels().rmsnorm(xs + i * d, wf, ys + i * d, d, eps);
    }
  }

  void matmul(const DeviceWeight& wt, const DeviceWeight* bias, const DeviceBuffer& x, DeviceBuffer& y,
              int64_t n) override {
    const int nt = team_.load();
    const WeightView& w = wt.view();
    const float* xs = cb(x).f();
    float* ys = cb(y).f();
    const int64_t rows = w.rows, cols = w.cols;
    CC_ASSERT(static_cast<size_t>(n * cols) * 4 <= x.bytes() && static_cast<size_t>(n * rows) * 4 <= y.bytes());
    if (n <= kGemvRows) {
      // Few rows (decode): read each weight row once in its stored format; no scratch.
      const Gemv gv(w);
#pragma omp parallel num_threads(nt)
      {
        pin();
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) gv.row(r, xs, n, ys + r, rows);
      }
    } else {
      const Gemm g = prepare_gemm({&w}, xs, n, nt, main_ws_);
#pragma omp parallel num_threads(nt)
      {
        pin();
        const int me = omp_get_thread_num();
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < g.n_tiles; ++t) {
          const int64_t r0 = t * g.tile;
          gemm_tile(g, w, r0, std::min(g.tile, rows - r0), ys + r0, rows, me);
        }
      }
    }
    if (bias) {
      std::vector<float> tmp;
      const float* b = vec_f32(bias->view(), rows, tmp);
      for (int64_t i = 0; i < n; ++i) simd::kernels().axpy(1.0f, b, ys + i * rows, rows);
    }
  }

  // Fused: F is walked in slices of kFfnSlice features (or more). Each slice's gate/up/SwiGLU
  // columns (64-feature tiles: gate straight into the buffer, up into per-thread scratch) go into an [n, slice] buffer, which the down
  // projection's matching column slice then multiplies straight into y, pipelined one slice
  // behind. Only two [n, slice] buffers are ever held, and every weight element is still
  // decoded once per call.
  void ffn(const DeviceWeight& gate, const DeviceWeight& up, const DeviceWeight& down, const DeviceBuffer& x,
           DeviceBuffer& y, int64_t n) override {
    const WeightView &wg = gate.view(), &wu = up.view(), &wd = down.view();
    const int64_t F = wd.cols, D = wd.rows;
    if (n <= kGemvRows) {
      Backend::ffn(gate, up, down, x, y, n);  // decode rows: the matrix-vector route, [n, F] is tiny
      return;
    }
    CC_ASSERT(wg.rows == F && wu.rows == F && wg.cols == wu.cols);
    CC_ASSERT(&x != &y);  // y is written from the first slice on while x is still being read
    CC_ASSERT(kFfnSlice % dtype_info(wd.type).block_elems == 0);
    const int nt = team_.load();
    const float* xs = cb(x).f();
    float* ys = cb(y).f();
    CC_ASSERT(static_cast<size_t>(n * wg.cols) * 4 <= x.bytes() && static_cast<size_t>(n * D) * 4 <= y.bytes());
    const auto& K = simd::kernels();
    // At least two 64-feature tiles per thread in each slice's gate/up pass.
    const int64_t slice = std::min(std::max(kFfnSlice, (2 * nt * 64 + kFfnSlice - 1) / kFfnSlice * kFfnSlice), F);
    const int64_t n_slices = (F + slice - 1) / slice, hsz = n * slice;
    // Two [n, slice] buffers: step s makes slice s in one while slice s - 1, in the other, is
    // multiplied into y, so each step is one work-shared loop (one barrier per slice).
    float* h = grow(h_ws_, static_cast<size_t>(2 * hsz));
    const Gemm gx = prepare_gemm({&wg, &wu}, xs, n, nt, main_ws_);
    Gemm gd = prepare_gemm({&wd}, h, n, nt, down_ws_, slice, false, true);
    if (gd.xb) gd.xb = grow(down_ws_.xb, static_cast<size_t>(2 * hsz));  // bf16 copies of both
    const int64_t ta = std::min<int64_t>(gx.tile, 64);
    float* us = grow(u_ws_, static_cast<size_t>(nt * n * ta));
#pragma omp parallel num_threads(nt)
    {
      pin();
      const int me = omp_get_thread_num();
      float* ut = us + static_cast<size_t>(me) * n * ta;
      for (int64_t st = 0; st <= n_slices; ++st) {
        const int64_t na = st < n_slices ? (std::min(slice, F - st * slice) + ta - 1) / ta : 0;
        const int64_t nb = st > 0 ? gd.n_tiles : 0;
        // Gate/up tiles (the heavier ones) first, then the down tiles of the previous slice.
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < na + nb; ++t) {
          if (t < na) {
            const int64_t k0 = st * slice, kc = std::min(slice, F - k0), j0 = t * ta, nr = std::min(ta, kc - j0);
            float* hb = h + (st % 2) * hsz;
            gemm_tile(gx, wg, k0 + j0, nr, hb + j0, kc, me);
            gemm_tile(gx, wu, k0 + j0, nr, ut, nr, me);
            for (int64_t i = 0; i < n; ++i) {
              float* hi = hb + i * kc + j0;
              K.swiglu(hi, ut + i * nr, hi, nr);
              if (gd.xb) bg_->f32_to_bf16(hi, gd.xb + (st % 2) * hsz + i * kc + j0, nr);
            }
          } else {
            const int64_t sp = st - 1, k0 = sp * slice, r0 = (t - na) * gd.tile;
            Gemm gs = gd;
            gs.cols = std::min(slice, F - k0);
            gs.xs = h + (sp % 2) * hsz;
            if (gd.xb) gs.xb = gd.xb + (sp % 2) * hsz;
            gemm_tile(gs, wd, r0, std::min(gd.tile, D - r0), ys + r0, D, me, k0, true);
          }
        }
      }
    }
  }

  void rope(DeviceBuffer& x, int64_t n, int64_t n_heads, std::span<const int64_t> pos, const RopeParams& p) override {
    const int nt = team_.load();
    const int64_t hd = p.head_dim, half = hd / 2;
    float* xs = cb(x).f();
    CC_ASSERT(half <= 512);
    const bool neox = p.mode == RopeMode::NeoX;
#pragma omp parallel num_threads(nt) if (n > 4)
    {
      pin();
#pragma omp for
    for (int64_t i = 0; i < n; ++i) {
      float c[512], s[512];
      for (int64_t j = 0; j < half; ++j) {
        const float a = static_cast<float>(pos[static_cast<size_t>(i)]) * p.inv_freq[static_cast<size_t>(j)];
        c[j] = std::cos(a);
        s[j] = std::sin(a);
      }
      simd::kernels().rope(xs + i * n_heads * hd, n_heads, hd, c, s, neox);
    }
    }
  }

  void kv_store(DeviceBuffer& kc, DeviceBuffer& vc, DType t, const DeviceBuffer& k, const DeviceBuffer& v,
                std::span<const int64_t> slot, int64_t kv_dim) override {
    const size_t rb = dtype_row_bytes(t, kv_dim);
    for (size_t i = 0; i < slot.size(); ++i) {
      CC_ASSERT((slot[i] + 1) * rb <= kc.bytes());
      simd::kernels().from_f32(t, cb(k).f() + i * kv_dim, cb(kc).data() + slot[i] * rb, kv_dim);
      simd::kernels().from_f32(t, cb(v).f() + i * kv_dim, cb(vc).data() + slot[i] * rb, kv_dim);
    }
  }

  // Blocked attention with an online softmax (simd/attention.h): tasks of one KV head x 32
  // query rows spread over our team, each with its own scratch.
  void attention(const DeviceBuffer& q, const DeviceBuffer& kc, const DeviceBuffer& vc, DType t,
                 std::span<const int64_t> qpos, std::span<const int64_t> slot_pos, DeviceBuffer& out, int64_t n,
                 int64_t n_heads, int64_t n_kv_heads, int64_t hd, float scale, DeviceBuffer* lse) override {
    const int nt = team_.load();
    simd::AttnArgs a;
    a.q = cb(q).f();
    a.k_cache = cb(kc).data();
    a.v_cache = cb(vc).data();
    a.type = t;
    a.qpos = qpos.data();
    a.slot_pos = slot_pos.data();
    a.n_slots = static_cast<int64_t>(slot_pos.size());
    a.out = cb(out).f();
    a.lse = lse ? cb(*lse).f() : nullptr;
    a.n = n;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.hd = hd;
    a.scale = scale;
    CC_ASSERT(static_cast<int64_t>(qpos.size()) >= n && n_heads % n_kv_heads == 0);
    CC_ASSERT(!lse || lse->bytes() >= static_cast<size_t>(n * n_heads) * 4);
    const size_t per = simd::attention_scratch_floats(a);
    float* scratch = grow(attn_ws_, per * static_cast<size_t>(nt));
    const int64_t n_tasks = simd::attention_tasks(a);
    const auto& K = simd::kernels();
#pragma omp parallel num_threads(nt)
    {
      pin();
      float* mine = scratch + per * static_cast<size_t>(omp_get_thread_num());
#pragma omp for schedule(dynamic)
      for (int64_t task = 0; task < n_tasks; ++task) simd::attention_task(K, a, task, mine);
    }
  }

  void merge_attention(const DeviceBuffer& o1, const DeviceBuffer& lse1, float a1, const DeviceBuffer& o2,
                       const DeviceBuffer& lse2, float a2, DeviceBuffer& out, int64_t n_vec, int64_t hd) override {
    CC_ASSERT(o1.bytes() >= static_cast<size_t>(n_vec * hd) * 4 && lse1.bytes() >= static_cast<size_t>(n_vec) * 4);
    const float *p1 = cb(o1).f(), *p2 = cb(o2).f(), *l1 = cb(lse1).f(), *l2 = cb(lse2).f();
    float* po = cb(out).f();
    for (int64_t i = 0; i < n_vec; ++i) {
      const float z1 = std::isinf(l1[i]) && l1[i] < 0 ? -INFINITY : a1 * l1[i];
      const float z2 = std::isinf(l2[i]) && l2[i] < 0 ? -INFINITY : a2 * l2[i];
      const float mz = std::max(z1, z2);
      float w1 = 0.0f, w2 = 0.0f;
      if (mz != -INFINITY) {
        const float e1 = std::exp(z1 - mz), e2 = std::exp(z2 - mz);
        w1 = e1 / (e1 + e2);
        w2 = e2 / (e1 + e2);
      }
      for (int64_t d = 0; d < hd; ++d) po[i * hd + d] = w1 * p1[i * hd + d] + w2 * p2[i * hd + d];
    }
  }

  void swiglu(const DeviceBuffer& g, const DeviceBuffer& u, DeviceBuffer& y, int64_t count) override {
    const int nt = team_.load();
    const int64_t chunk = 4096;
    const float *gs = cb(g).f(), *us = cb(u).f();
    float* ys = cb(y).f();
#pragma omp parallel num_threads(nt) if (count > 4 * chunk)
    {
      pin();
#pragma omp for
    for (int64_t c = 0; c < (count + chunk - 1) / chunk; ++c) {
      const int64_t a = c * chunk, len = std::min(chunk, count - a);
      simd::kernels().swiglu(gs + a, us + a, ys + a, len);
    }
    }
  }

  void add(const DeviceBuffer& x, DeviceBuffer& y, int64_t count) override {
    simd::kernels().axpy(1.0f, cb(x).f(), cb(y).f(), count);
  }

 private:
  // The matrix-vector route: out[i * ldo] = x_i . W_r for the n rows of x, reading row r once in
  // its stored format. Everything per matrix is looked up once (this runs per weight row).
  struct Gemv {
    const simd::KernelTable* K;
    const uint8_t* wb;
    size_t rb;
    DType type;
    int64_t cols;
    explicit Gemv(const WeightView& w)
        : K(&simd::kernels()), wb(static_cast<const uint8_t*>(w.data)), rb(dtype_row_bytes(w.type, w.cols)),
          type(w.type), cols(w.cols) {}
    void row(int64_t r, const float* xs, int64_t n, float* out, int64_t ldo) const {
      const uint8_t* p = wb + r * rb;
      for (int64_t i = 0; i < n; ++i) out[i * ldo] = K->dot_row(type, p, xs + i * cols, cols);
    }
  };

  // How one x[n, cols] is multiplied by tiles of weight rows, with the scratch taken before the
  // parallel region (nothing in a region allocates):
  //   AVX512-BF16 route (twice the fp32 FMA rate) for BF16 and block-quantized weights when the
  //     CPU has it: x rounded to bf16 once; BF16 weights used in place, quantized ones decoded a
  //     64-row tile at a time and rounded to bf16 (<= 2^-9 relative, far below their own error);
  //   F32 weights: single-threaded OpenBLAS sgemm on tiles of ~rows / (4 threads);
  //   other types: a 64-row tile decoded to f32 into per-thread scratch, then sgemm.
  // `cols` may be a slice [k0, k0 + cols) of the weights' columns (the FFN's down projection
  // works through F a slice at a time); k0 is then given to gemm_tile.
  struct Gemm {
    const float* xs = nullptr;
    uint16_t* xb = nullptr;        // x in bf16 when some weight takes the BF16 route
    int64_t n = 0, cols = 0, tile = 64, n_tiles = 0;
    float* fscratch = nullptr;     // per thread: tile * cols
    uint16_t* bscratch = nullptr;  // per thread: tile * cols
    float* acc = nullptr;          // per thread: n * tile (the BF16 route's accumulating products)
  };
  // One Gemm's scratch; two sets let the FFN keep its input's Gemm while it runs the down one.
  struct GemmScratch {
    std::vector<float> f, acc;
    std::vector<uint16_t> xb, b;
  };
  bool bf16_route(const WeightView& w) const {
    return bg_ && w.cols % 2 == 0 && (w.type == DType::BF16 || dtype_is_quantized(w.type));
  }
  // convert_x: round x to bf16 now (else the caller fills g.xb, [n, cols], before gemm_tile).
  // accumulate: gemm_tile will be asked to add into its output.
  Gemm prepare_gemm(std::initializer_list<const WeightView*> ws, const float* xs, int64_t n, int nt, GemmScratch& s,
                    int64_t cols = -1, bool convert_x = true, bool accumulate = false) {
    Gemm g;
    g.xs = xs;
    g.n = n;
    const WeightView& w0 = **ws.begin();
    g.cols = cols < 0 ? w0.cols : cols;
    bool any_bf16 = false, all_f32 = true, need_f = false, need_b = false;
    for (const WeightView* w : ws) {
      CC_ASSERT((cols < 0 ? g.cols == w->cols : g.cols <= w->cols) && w->rows == w0.rows);
      const bool b = bf16_route(*w);
      any_bf16 |= b;
      all_f32 &= w->type == DType::F32;
      need_f |= w->type != DType::F32 && !(b && w->type == DType::BF16);
      need_b |= b && (w->type != DType::BF16 || g.cols != w->cols);
    }
    if (all_f32) g.tile = std::max<int64_t>(16, (w0.rows + nt * 4 - 1) / (nt * 4));
    if (any_bf16) {
      g.xb = grow(s.xb, static_cast<size_t>(n * g.cols));
      if (convert_x) {
        const simd::Bf16Gemm* bg = bg_;
        const int64_t chunk = 4096;
#pragma omp parallel num_threads(nt)
        {
          pin();
#pragma omp for
          for (int64_t c = 0; c < (n * g.cols + chunk - 1) / chunk; ++c) {
            bg->f32_to_bf16(xs + c * chunk, g.xb + c * chunk, std::min(chunk, n * g.cols - c * chunk));
          }
        }
      }
      if (need_b) g.bscratch = grow(s.b, static_cast<size_t>(nt * g.tile * g.cols));
      if (accumulate) g.acc = grow(s.acc, static_cast<size_t>(nt * n * g.tile));
    }
    if (need_f) g.fscratch = grow(s.f, static_cast<size_t>(nt * g.tile * g.cols));
    g.n_tiles = (w0.rows + g.tile - 1) / g.tile;
    return g;
  }
  // out[i * ldo + j] (+)= x_i . W_{r0 + j}[k0, k0 + g.cols) for j < nr, on team thread `me`;
  // k0 is a multiple of the weight type's block.
  void gemm_tile(const Gemm& g, const WeightView& w, int64_t r0, int64_t nr, float* out, int64_t ldo, int me,
                 int64_t k0 = 0, bool accumulate = false) const {
    const int64_t n = g.n, cols = g.cols;
    const int64_t blk = dtype_info(w.type).block_elems;
    CC_ASSERT(k0 % blk == 0 && k0 + cols <= w.cols && nr <= g.tile);
    const size_t rb = dtype_row_bytes(w.type, w.cols);
    const auto* wb = static_cast<const uint8_t*>(w.data) + r0 * rb + dtype_row_bytes(w.type, k0);
    if (bf16_route(w)) {
      const simd::Bf16Gemm* bg = bg_;
      const uint16_t* wt;
      if (w.type == DType::BF16 && cols == w.cols) {
        wt = reinterpret_cast<const uint16_t*>(wb);
      } else if (w.type == DType::BF16) {
        uint16_t* bt = g.bscratch + static_cast<size_t>(me) * g.tile * cols;
        for (int64_t r = 0; r < nr; ++r) std::memcpy(bt + r * cols, wb + r * rb, static_cast<size_t>(cols) * 2);
        wt = bt;
      } else {
        uint16_t* bt = g.bscratch + static_cast<size_t>(me) * g.tile * cols;
        float* ft = g.fscratch + static_cast<size_t>(me) * g.tile * cols;
        for (int64_t r = 0; r < nr; ++r) simd::kernels().to_f32(w.type, wb + r * rb, ft + r * cols, cols);
        bg->f32_to_bf16(ft, bt, nr * cols);
        wt = bt;
      }
      if (!accumulate) {
        bg->gemm(g.xb, n, wt, nr, cols, out, ldo);
        return;
      }
      CC_ASSERT(g.acc);
      float* acc = g.acc + static_cast<size_t>(me) * n * g.tile;
      bg->gemm(g.xb, n, wt, nr, cols, acc, nr);
      for (int64_t i = 0; i < n; ++i) simd::kernels().axpy(1.0f, acc + i * nr, out + i * ldo, nr);
      return;
    }
    const float* wf;
    int64_t ldw = cols;
    if (w.type == DType::F32) {
      wf = reinterpret_cast<const float*>(wb);
      ldw = w.cols;
    } else {
      float* sc = g.fscratch + static_cast<size_t>(me) * g.tile * cols;
      for (int64_t r = 0; r < nr; ++r) simd::kernels().to_f32(w.type, wb + r * rb, sc + r * cols, cols);
      wf = sc;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(nr),
                static_cast<int>(cols), 1.0f, g.xs, static_cast<int>(cols), wf, static_cast<int>(ldw),
                accumulate ? 1.0f : 0.0f, out, static_cast<int>(ldo));
  }

  // Reusable scratch: grows to the largest request and is never zero-filled again, so a
  // prefill does not allocate and clear megabytes in every matmul and attention call. A
  // backend instance is used by one host thread at a time.
  template <typename T>
  static T* grow(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
  }
  // Binds the calling team thread to this backend's CPUs, once per (backend, CPU-set change):
  // every parallel region starts with it, so pooled OpenMP threads follow the plan too.
  void pin() const {
    thread_local const CpuBackend* owner = nullptr;
    thread_local uint64_t gen = 0;
    const uint64_t g = generation_.load();
    if (owner == this && gen == g) return;
    std::vector<unsigned> cpus;
    {
      std::lock_guard<std::mutex> lock(cpus_mu_);
      cpus = cpus_;
    }
    if (!cpus.empty()) bind_current_thread(cpus);
    owner = this;
    gen = g;
  }
  std::atomic<int> team_{1};
  mutable std::mutex cpus_mu_;
  std::vector<unsigned> cpus_;
  const simd::Bf16Gemm* bg_ = nullptr;  // the BF16 route's kernels; null: that route is off
  // Process-wide, so a backend created at a freed one's address never looks "already bound".
  static uint64_t next_generation() {
    static std::atomic<uint64_t> g{0};
    return ++g;
  }
  std::atomic<uint64_t> generation_{0};
  GemmScratch main_ws_, down_ws_;  // down_ws_: the FFN's down projection, beside its input's
  std::vector<float> u_ws_, h_ws_, attn_ws_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& opts) { return std::make_unique<CpuBackend>(opts); }

}  // namespace cc
