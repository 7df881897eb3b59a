// OpenCL 1.2 C kernels of the OpenCL backend (src/ops/opencl_backend.cpp). Embedded into the
// binary at build time; compiled once per device (with a cache of built programs).
// Element types: F32 = 0, F16 = 1, BF16 = 2 (weights, KV cache). f16 goes through vload_half /
// vstore_half_rte (core OpenCL 1.2, no cl_khr_fp16 needed); bf16 is the high half of an f32.

inline float ld(__global const void* p, int type, ulong i) {
  if (type == 0) return ((__global const float*)p)[i];
  if (type == 1) return vload_half(i, (__global const half*)p);
  return as_float(((uint)((__global const ushort*)p)[i]) << 16);
}

inline void st(__global void* p, int type, ulong i, float v) {
  if (type == 0) {
    ((__global float*)p)[i] = v;
  } else if (type == 1) {
    vstore_half_rte(v, i, (__global half*)p);
  } else {  // round to nearest even, as cc::f32_to_bf16 (NaN stays NaN)
    uint u = as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      ((__global ushort*)p)[i] = (ushort)((u >> 16) | 0x40u);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      ((__global ushort*)p)[i] = (ushort)(u >> 16);
    }
  }
}

// out[i, :] = table[ids[i], :]
__kernel void get_rows(__global const void* table, int type, __global const int* ids, __global float* out, int cols) {
  const int i = get_global_id(1), c = get_global_id(0);
  if (c >= cols) return;
  out[(ulong)i * cols + c] = ld(table, type, (ulong)ids[i] * cols + c);
}

// One work-group of 64 per row.
__kernel void rms_norm(__global const float* x, __global const void* w, int wtype, __global float* y, int d,
                       float eps) {
  __local float part[64];
  const int row = get_group_id(0), l = get_local_id(0);
  __global const float* xr = x + (ulong)row * d;
  float s = 0.0f;
  for (int i = l; i < d; i += 64) s += xr[i] * xr[i];
  part[l] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int o = 32; o > 0; o >>= 1) {
    if (l < o) part[l] += part[l + o];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = 1.0f / sqrt(part[0] / (float)d + eps);
  for (int i = l; i < d; i += 64) y[(ulong)row * d + i] = xr[i] * r * ld(w, wtype, i);
}

// y[n, m] = x[n, k] . W[m, k]^T (+ bias[m]); 16 x 16 tiles through local memory.
#define TS 16
__kernel void matmul(__global const float* x, __global const void* w, int wtype, __global const float* bias,
                     int has_bias, __global float* y, int n, int m, int k) {
  __local float xs[TS][TS + 1];
  __local float ws[TS][TS + 1];
  const int lc = get_local_id(0), lr = get_local_id(1);
  const int col = get_group_id(0) * TS + lc;  // output feature
  const int row = get_group_id(1) * TS + lr;  // token row
  const int wrow = get_group_id(0) * TS + lr;  // weight row loaded by this item
  float acc = 0.0f;
  for (int t = 0; t < k; t += TS) {
    xs[lr][lc] = (row < n && t + lc < k) ? x[(ulong)row * k + t + lc] : 0.0f;
    ws[lr][lc] = (wrow < m && t + lc < k) ? ld(w, wtype, (ulong)wrow * k + t + lc) : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int j = 0; j < TS; ++j) acc += xs[lr][j] * ws[lc][j];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row < n && col < m) y[(ulong)row * m + col] = acc + (has_bias ? bias[col] : 0.0f);
}

// Few rows (decode): y[i, r] = x[i, :] . W[r, :] for i < n <= 4, one work-item per r.
__kernel void matvec(__global const float* x, __global const void* w, int wtype, __global const float* bias,
                     int has_bias, __global float* y, int n, int m, int k) {
  const int r = get_global_id(0);
  if (r >= m) return;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const ulong base = (ulong)r * k;
  for (int j = 0; j < k; ++j) {
    const float wv = ld(w, wtype, base + j);
    for (int i = 0; i < n; ++i) acc[i] += wv * x[(ulong)i * k + j];
  }
  for (int i = 0; i < n; ++i) y[(ulong)i * m + r] = acc[i] + (has_bias ? bias[r] : 0.0f);
}

// Rotates pair j of head h of row i by pos[i] * inv_freq[j]. neox: (j, j + hd/2), else (2j, 2j+1).
__kernel void rope(__global float* x, __global const long* pos, __global const float* inv_freq, int n_heads, int hd,
                   int neox) {
  const int j = get_global_id(0), h = get_global_id(1), i = get_global_id(2);
  const int half_d = hd / 2;
  if (j >= half_d) return;
  const float a = (float)pos[i] * inv_freq[j];
  const float c = cos(a), s = sin(a);
  __global float* v = x + ((ulong)i * n_heads + h) * hd;
  const int p = neox ? j : 2 * j, q = neox ? j + half_d : 2 * j + 1;
  const float x0 = v[p], x1 = v[q];
  v[p] = x0 * c - x1 * s;
  v[q] = x0 * s + x1 * c;
}

__kernel void kv_store(__global void* kc, __global void* vc, int type, __global const float* k,
                       __global const float* v, __global const long* slot, int kv_dim) {
  const int e = get_global_id(0), i = get_global_id(1);
  if (e >= kv_dim) return;
  const ulong dst = (ulong)slot[i] * kv_dim + e, src = (ulong)i * kv_dim + e;
  st(kc, type, dst, k[src]);
  st(vc, type, dst, v[src]);
}

// One work-item per (query row, head): online softmax over every visible slot
// (0 <= slot_pos[s] <= qpos[i]). hd <= 256.
__kernel void attention(__global const float* q, __global const void* kc, __global const void* vc, int type,
                        __global const long* qpos, __global const long* slot_pos, int n_slots, __global float* out,
                        __global float* lse, int has_lse, int n, int n_heads, int n_kv_heads, int hd, float scale) {
  const int h = get_global_id(0), i = get_global_id(1);
  if (h >= n_heads || i >= n) return;
  const int g = h / (n_heads / n_kv_heads), kvd = n_kv_heads * hd;
  __global const float* qi = q + ((ulong)i * n_heads + h) * hd;
  float acc[256];
  for (int d = 0; d < hd; ++d) acc[d] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const long lim = qpos[i];
  for (int s = 0; s < n_slots; ++s) {
    const long p = slot_pos[s];
    if (p < 0 || p > lim) continue;
    const ulong base = (ulong)s * kvd + (ulong)g * hd;
    float dot = 0.0f;
    for (int d = 0; d < hd; ++d) dot += qi[d] * ld(kc, type, base + d);
    dot *= scale;
    const float nm = fmax(m, dot);
    const float corr = exp(m - nm), e = exp(dot - nm);
    l = l * corr + e;
    for (int d = 0; d < hd; ++d) acc[d] = acc[d] * corr + e * ld(vc, type, base + d);
    m = nm;
  }
  __global float* o = out + ((ulong)i * n_heads + h) * hd;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int d = 0; d < hd; ++d) o[d] = acc[d] * inv;
  if (has_lse) lse[(ulong)i * n_heads + h] = l > 0.0f ? m + log(l) : -INFINITY;
}

__kernel void merge_attention(__global const float* o1, __global const float* l1, float a1, __global const float* o2,
                              __global const float* l2, float a2, __global float* out, int hd) {
  const int i = get_global_id(0);
  const float z1 = isinf(l1[i]) && l1[i] < 0 ? -INFINITY : a1 * l1[i];
  const float z2 = isinf(l2[i]) && l2[i] < 0 ? -INFINITY : a2 * l2[i];
  const float mz = fmax(z1, z2);
  float w1 = 0.0f, w2 = 0.0f;
  if (mz != -INFINITY) {
    const float e1 = exp(z1 - mz), e2 = exp(z2 - mz);
    w1 = e1 / (e1 + e2);
    w2 = e2 / (e1 + e2);
  }
  for (int d = 0; d < hd; ++d) out[(ulong)i * hd + d] = w1 * o1[(ulong)i * hd + d] + w2 * o2[(ulong)i * hd + d];
}

__kernel void swiglu(__global const float* g, __global const float* u, __global float* y, int count) {
  const int i = get_global_id(0);
  if (i < count) y[i] = g[i] / (1.0f + exp(-g[i])) * u[i];
}

__kernel void add(__global const float* x, __global float* y, int count) {
  const int i = get_global_id(0);
  if (i < count) y[i] += x[i];
}
