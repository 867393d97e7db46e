/* t3d's own CUDA kernels for the ops cuDNN and cuBLAS do not cover: elementwise (relu, add,
 * GELU, the convolution epilogue), row ops (softmax, layernorm), argmax, embedding, pooling,
 * trilinear resampling and fused attention. Each mirrors its CPU twin in kernels/cpu/ (same
 * NaN and padding rules) and is checked against it by tests/test-cuda-ops. Simple first: one
 * thread per output or one block per row, grid-stride loops; kernels/cuda/dev/ times variants. */
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_impl.h"

#define THREADS 256

/* Blocks for n work items of a grid-stride loop (capped: the loop covers the rest). */
static unsigned grid_for(int64_t n, int per_block)
{
  int64_t b = (n + per_block - 1) / per_block;
  if (b < 1)
    b = 1;
  return (unsigned)(b > (1 << 20) ? (1 << 20) : b);
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ---- reductions ---------------------------------------------------------------------------- */

/* max as the CPU kernels take it: a NaN never wins the comparison (it reaches the sums instead) */
static __device__ __forceinline__ float max_nan_ignored(float a, float b) { return b > a ? b : a; }

static __device__ __forceinline__ float warp_sum(float v)
{
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ double warp_sum_d(double v)
{
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ float warp_max(float v)
{
  for (int o = 16; o > 0; o >>= 1)
    v = max_nan_ignored(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Sum or max over the block (blockDim a multiple of 32); every thread gets the result. sh holds
 * 32 values; the leading barrier lets consecutive calls share it. */
template <bool MAX> static __device__ float block_reduce(float v, float *sh)
{
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = MAX ? warp_max(v) : warp_sum(v);
  __syncthreads();
  if (lane == 0)
    sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? sh[lane] : (MAX ? -INFINITY : 0.0f);
    v = MAX ? warp_max(v) : warp_sum(v);
    if (lane == 0)
      sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

static __device__ double block_sum_d(double v, double *sh)
{
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum_d(v);
  __syncthreads();
  if (lane == 0)
    sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? sh[lane] : 0.0;
    v = warp_sum_d(v);
    if (lane == 0)
      sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

/* ---- elementwise --------------------------------------------------------------------------- */

static __global__ void relu_k(float *y, const float *x, int64_t n)
{
  GRID_STRIDE(i, n)
  {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v; /* NaN passes, as torch.relu */
  }
}

static __global__ void add_k(float *y, const float *a, const float *b, int64_t n)
{
  GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

/* Exact GELU as x Phi(x); normcdff keeps relative precision for x < 0 like the CPU's erfc form. */
static __global__ void gelu_k(float *y, const float *x, int64_t n)
{
  GRID_STRIDE(i, n)
  {
    const float v = x[i];
    y[i] = v * normcdff(v);
  }
}

static __global__ void bias_act_k(float *y, const float *bias, const float *res, int64_t n, int64_t C, int64_t inner,
                           bool relu)
{
  GRID_STRIDE(i, n)
  {
    float v = y[i];
    if (bias)
      v += bias[(i / inner) % C];
    if (res)
      v += res[i];
    y[i] = relu && v < 0.0f ? 0.0f : v;
  }
}

t3d_status t3d_cuda_relu(cudaStream_t s, float *y, const float *x, int64_t n)
{
  relu_k<<<grid_for(n, THREADS), THREADS, 0, s>>>(y, x, n);
  return t3d_cuda_check_launch("relu");
}

t3d_status t3d_cuda_add(cudaStream_t s, float *y, const float *a, const float *b, int64_t n)
{
  add_k<<<grid_for(n, THREADS), THREADS, 0, s>>>(y, a, b, n);
  return t3d_cuda_check_launch("add");
}

t3d_status t3d_cuda_gelu(cudaStream_t s, float *y, const float *x, int64_t n)
{
  gelu_k<<<grid_for(n, THREADS), THREADS, 0, s>>>(y, x, n);
  return t3d_cuda_check_launch("gelu");
}

t3d_status t3d_cuda_bias_act(cudaStream_t s, float *y, const float *bias, const float *res, int64_t N, int64_t C,
                             int64_t inner, bool relu)
{
  const int64_t n = N * C * inner;
  if (!bias && !res && !relu)
    return T3D_OK;
  bias_act_k<<<grid_for(n, THREADS), THREADS, 0, s>>>(y, bias, res, n, C, inner, relu);
  return t3d_cuda_check_launch("convolution epilogue (bias, residual, relu)");
}

/* ---- rows: softmax, layernorm ------------------------------------------------------------- */

/* One block per row. y may be x: each element is read before it is written, at the same index,
 * and the reductions end in barriers. A row of all -inf (or holding a NaN) gives NaN. */
static __global__ void softmax_k(float *y, const float *x, int64_t rows, int64_t n)
{
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      mx = max_nan_ignored(mx, xr[i]);
    mx = block_reduce<true>(mx, sh);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float e = expf(xr[i] - mx);
      yr[i] = e;
      sum += e;
    }
    const float inv = 1.0f / block_reduce<false>(sum, sh);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      yr[i] *= inv;
  }
}

/* F.layer_norm over a row, biased variance, two passes over values shifted by the row's first
 * element (as the CPU kernel, so a large common offset costs no precision). y may be x: x0 is
 * read by every thread before the barriers of the first reduction. */
static __global__ void layernorm_k(float *y, const float *x, const float *gamma, const float *beta, int64_t rows, int64_t n,
                            float eps)
{
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    const float x0 = xr[0];
    float s = 0.0f, q = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      s += xr[i] - x0;
    const float dm = block_reduce<false>(s, sh) / (float)n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float d = (xr[i] - x0) - dm;
      q += d * d;
    }
    const float rstd = 1.0f / sqrtf(block_reduce<false>(q, sh) / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      yr[i] = ((xr[i] - x0) - dm) * rstd * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    __syncthreads(); /* the next row's x0 may be this row's last y when rows alias */
  }
}

t3d_status t3d_cuda_softmax(cudaStream_t s, float *y, const float *x, int64_t rows, int64_t n)
{
  softmax_k<<<grid_for(rows, 1), THREADS, 0, s>>>(y, x, rows, n);
  return t3d_cuda_check_launch("softmax");
}

t3d_status t3d_cuda_layernorm(cudaStream_t s, float *y, const float *x, const float *gamma, const float *beta,
                              int64_t rows, int64_t n, float eps)
{
  layernorm_k<<<grid_for(rows, 1), THREADS, 0, s>>>(y, x, gamma, beta, rows, n, eps);
  return t3d_cuda_check_launch("layernorm");
}

/* ---- argmax, embedding --------------------------------------------------------------------- */

/* First index wins ties; a NaN beats every number and the first NaN wins (torch.argmax). */
static __global__ void argmax_k(int32_t *y, const float *x, int64_t N, int64_t C, int64_t inner)
{
  GRID_STRIDE(i, N * inner)
  {
    const int64_t n = i / inner, sp = i % inner;
    const float *p = x + n * C * inner + sp;
    float best = p[0];
    int32_t bi = 0;
    for (int64_t c = 1; c < C && best == best; c++) {
      const float v = p[c * inner];
      if (v > best || v != v) {
        best = v;
        bi = (int32_t)c;
      }
    }
    y[i] = bi;
  }
}

static __global__ void embedding_k(float *y, const int32_t *ids, const float *table, int64_t nids, int64_t V, int64_t E,
                            unsigned long long *first_bad)
{
  GRID_STRIDE(i, nids * E)
  {
    const int64_t r = i / E, e = i % E;
    const int32_t id = ids[r];
    if (id < 0 || id >= V) {
      if (e == 0)
        atomicMin(first_bad, (unsigned long long)r);
      y[i] = 0.0f;
    } else {
      y[i] = table[(int64_t)id * E + e];
    }
  }
}

t3d_status t3d_cuda_argmax(cudaStream_t s, int32_t *y, const float *x, int64_t N, int64_t C, int64_t inner)
{
  argmax_k<<<grid_for(N * inner, THREADS), THREADS, 0, s>>>(y, x, N, C, inner);
  return t3d_cuda_check_launch("argmax");
}

t3d_status t3d_cuda_embedding(cudaStream_t s, float *y, const int32_t *ids, const float *table, int64_t nids,
                              int64_t V, int64_t E, unsigned long long *first_bad)
{
  embedding_k<<<grid_for(nids * E, THREADS), THREADS, 0, s>>>(y, ids, table, nids, V, E, first_bad);
  return t3d_cuda_check_launch("embedding");
}

/* ---- pooling and resampling of volumes [N, C, D, H, W] ----------------------------------------- */

struct dims5 {
  int64_t C, D, H, W, Do, Ho, Wo;
};

static dims5 dims_of(const int64_t xs[5], const int64_t ys[5])
{
  dims5 d = {xs[1], xs[2], xs[3], xs[4], ys[2], ys[3], ys[4]};
  return d;
}

/* Window [lo, hi) of output o: -inf padding, so only the in-range part counts. */
static __device__ __forceinline__ void pool_window(int64_t o, int k, int s, int p, int64_t in, int64_t *lo, int64_t *hi)
{
  const int64_t start = o * s - p, end = start + k;
  *lo = start < 0 ? 0 : start;
  *hi = end > in ? in : end;
}

static __global__ void maxpool3d_k(float *y, const float *x, int64_t total, dims5 d, t3d_pool3d_params p)
{
  GRID_STRIDE(i, total)
  {
    const int64_t ow = i % d.Wo, oh = (i / d.Wo) % d.Ho, od = (i / (d.Wo * d.Ho)) % d.Do, nc = i / (d.Wo * d.Ho * d.Do);
    int64_t d0, d1, h0, h1, w0, w1;
    pool_window(od, p.kernel[0], p.stride[0], p.pad[0], d.D, &d0, &d1);
    pool_window(oh, p.kernel[1], p.stride[1], p.pad[1], d.H, &h0, &h1);
    pool_window(ow, p.kernel[2], p.stride[2], p.pad[2], d.W, &w0, &w1);
    float m = -INFINITY;
    for (int64_t z = d0; z < d1; z++)
      for (int64_t h = h0; h < h1; h++) {
        const float *row = x + ((nc * d.D + z) * d.H + h) * d.W;
        for (int64_t w = w0; w < w1; w++) {
          const float v = row[w];
          if (m == m && (v > m || v != v)) /* a NaN anywhere wins and stays, as torch */
            m = v;
        }
      }
    y[i] = m;
  }
}

/* One block per (n, c); sums in double as the CPU kernel (and PyTorch's CPU kernels) do. */
static __global__ void avgpool_global_k(float *y, const float *x, int64_t NC, int64_t S)
{
  __shared__ double sh[32];
  for (int64_t nc = blockIdx.x; nc < NC; nc += gridDim.x) {
    const float *p = x + nc * S;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < S; i += blockDim.x)
      s += p[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0)
      y[nc] = (float)(s / (double)S);
  }
}

/* PyTorch's adaptive bin i of out over in: [floor(i*in/out), ceil((i+1)*in/out)). */
static __device__ __forceinline__ void adaptive_bin(int64_t i, int64_t in, int64_t out, int64_t *lo, int64_t *hi)
{
  *lo = (i * in) / out;
  *hi = ((i + 1) * in + out - 1) / out;
}

static __global__ void avgpool_adaptive_k(float *y, const float *x, int64_t total, dims5 d)
{
  GRID_STRIDE(i, total)
  {
    const int64_t ow = i % d.Wo, oh = (i / d.Wo) % d.Ho, od = (i / (d.Wo * d.Ho)) % d.Do, nc = i / (d.Wo * d.Ho * d.Do);
    int64_t d0, d1, h0, h1, w0, w1;
    adaptive_bin(od, d.D, d.Do, &d0, &d1);
    adaptive_bin(oh, d.H, d.Ho, &h0, &h1);
    adaptive_bin(ow, d.W, d.Wo, &w0, &w1);
    double s = 0.0;
    for (int64_t z = d0; z < d1; z++)
      for (int64_t h = h0; h < h1; h++) {
        const float *row = x + ((nc * d.D + z) * d.H + h) * d.W;
        for (int64_t w = w0; w < w1; w++)
          s += row[w];
      }
    y[i] = (float)(s / (double)((d1 - d0) * (h1 - h0) * (w1 - w0)));
  }
}

/* Linear taps along one axis, align_corners=False with the output size given, computed as the
 * CPU kernel does (scale rounded to float, source coordinate in double, clamped at 0). */
static __device__ __forceinline__ void linear_tap(int64_t o, int64_t in, int64_t out, int64_t *i0, int64_t *i1, float *l0,
                                           float *l1)
{
  if (in == out) {
    *i0 = *i1 = o;
    *l0 = 1.0f;
    *l1 = 0.0f;
    return;
  }
  const double scale = (double)((float)in / (float)out);
  double src = scale * ((double)o + 0.5) - 0.5;
  if (src < 0.0)
    src = 0.0;
  int64_t a = (int64_t)src;
  if (a > in - 1)
    a = in - 1;
  *i0 = a;
  *i1 = a < in - 1 ? a + 1 : a;
  *l1 = (float)(src - (double)a);
  *l0 = 1.0f - *l1;
}

static __global__ void resample_trilinear_k(float *y, const float *x, int64_t total, dims5 d)
{
  GRID_STRIDE(i, total)
  {
    const int64_t ow = i % d.Wo, oh = (i / d.Wo) % d.Ho, od = (i / (d.Wo * d.Ho)) % d.Do, nc = i / (d.Wo * d.Ho * d.Do);
    int64_t z0, z1, h0, h1, w0, w1;
    float lz0, lz1, lh0, lh1, lw0, lw1;
    linear_tap(od, d.D, d.Do, &z0, &z1, &lz0, &lz1);
    linear_tap(oh, d.H, d.Ho, &h0, &h1, &lh0, &lh1);
    linear_tap(ow, d.W, d.Wo, &w0, &w1, &lw0, &lw1);
    const float *p0 = x + (nc * d.D + z0) * d.H * d.W, *p1 = x + (nc * d.D + z1) * d.H * d.W;
    const float *r00 = p0 + h0 * d.W, *r01 = p0 + h1 * d.W, *r10 = p1 + h0 * d.W, *r11 = p1 + h1 * d.W;
    y[i] = lz0 * (lh0 * (lw0 * r00[w0] + lw1 * r00[w1]) + lh1 * (lw0 * r01[w0] + lw1 * r01[w1])) +
           lz1 * (lh0 * (lw0 * r10[w0] + lw1 * r10[w1]) + lh1 * (lw0 * r11[w0] + lw1 * r11[w1]));
  }
}

t3d_status t3d_cuda_maxpool3d(cudaStream_t s, float *y, const float *x, const int64_t xs[5], const int64_t ys[5],
                              const t3d_pool3d_params *p)
{
  const int64_t total = ys[0] * ys[1] * ys[2] * ys[3] * ys[4];
  maxpool3d_k<<<grid_for(total, THREADS), THREADS, 0, s>>>(y, x, total, dims_of(xs, ys), *p);
  return t3d_cuda_check_launch("maxpool3d");
}

t3d_status t3d_cuda_avgpool_global(cudaStream_t s, float *y, const float *x, int64_t NC, int64_t S)
{
  avgpool_global_k<<<grid_for(NC, 1), THREADS, 0, s>>>(y, x, NC, S);
  return t3d_cuda_check_launch("avgpool3d_global");
}

t3d_status t3d_cuda_avgpool_adaptive(cudaStream_t s, float *y, const float *x, const int64_t xs[5],
                                     const int64_t ys[5])
{
  const int64_t total = ys[0] * ys[1] * ys[2] * ys[3] * ys[4];
  avgpool_adaptive_k<<<grid_for(total, THREADS), THREADS, 0, s>>>(y, x, total, dims_of(xs, ys));
  return t3d_cuda_check_launch("avgpool3d_adaptive");
}

t3d_status t3d_cuda_resample_trilinear(cudaStream_t s, float *y, const float *x, const int64_t xs[5],
                                       const int64_t ys[5])
{
  const int64_t total = ys[0] * ys[1] * ys[2] * ys[3] * ys[4];
  resample_trilinear_k<<<grid_for(total, THREADS), THREADS, 0, s>>>(y, x, total, dims_of(xs, ys));
  return t3d_cuda_check_launch("resample_trilinear");
}

/* ---- attention ------------------------------------------------------------------------------ */

#define ATT_PER_LANE 8 /* output dims a lane accumulates per pass: 256 per warp */
#define ATT_WARPS 4

/* One warp per (batch, head, query): an online softmax over the keys (running max and sum,
 * rescaling the accumulated output), so no score matrix is stored and any Lk works. Head dims
 * beyond 256 take further passes over the keys. Masked keys are skipped; a query whose keys
 * are all masked gets y = 0 (as the CPU op). Scores are scale * (q . k), as the CPU GEMM. */
static __global__ void attention_k(float *y, const float *q, const float *k, const float *v, const int32_t *mask, int64_t B,
                            int64_t Lq, int64_t Lk, int64_t E, int heads, float scale)
{
  const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  const int64_t Dh = E / heads;
  if (warp >= B * heads * Lq)
    return; /* whole warps leave together: warp is uniform across its lanes */
  const int64_t i = warp % Lq, h = (warp / Lq) % heads, b = warp / (Lq * heads);
  const float *qr = q + (b * Lq + i) * E + h * Dh;
  const float *kb = k + b * Lk * E + h * Dh, *vb = v + b * Lk * E + h * Dh;
  const int32_t *m = mask ? mask + b * Lk : NULL;
  float *yr = y + (b * Lq + i) * E + h * Dh;

  for (int64_t d0 = 0; d0 < Dh; d0 += 32 * ATT_PER_LANE) {
    float acc[ATT_PER_LANE], mx = -INFINITY, sum = 0.0f;
    bool any = false;
#pragma unroll
    for (int r = 0; r < ATT_PER_LANE; r++)
      acc[r] = 0.0f;
    for (int64_t j = 0; j < Lk; j++) {
      if (m && !m[j])
        continue;
      const float *kj = kb + j * E, *vj = vb + j * E;
      float part = 0.0f;
      for (int64_t d = lane; d < Dh; d += 32)
        part += qr[d] * kj[d];
      const float sc = scale * warp_sum(part);
      const float mnew = max_nan_ignored(mx, sc);
      const float corr = any ? expf(mx - mnew) : 0.0f, p = expf(sc - mnew);
      sum = sum * corr + p;
#pragma unroll
      for (int r = 0; r < ATT_PER_LANE; r++) {
        const int64_t d = d0 + lane + 32 * r;
        if (d < Dh)
          acc[r] = acc[r] * corr + p * vj[d];
      }
      mx = mnew;
      any = true;
    }
    const float inv = any ? 1.0f / sum : 0.0f;
#pragma unroll
    for (int r = 0; r < ATT_PER_LANE; r++) {
      const int64_t d = d0 + lane + 32 * r;
      if (d < Dh)
        yr[d] = any ? acc[r] * inv : 0.0f;
    }
  }
}

t3d_status t3d_cuda_attention(cudaStream_t s, float *y, const float *q, const float *k, const float *v,
                              const int32_t *mask, int64_t B, int64_t Lq, int64_t Lk, int64_t E, int heads)
{
  const int64_t warps = B * heads * Lq, blocks = (warps + ATT_WARPS - 1) / ATT_WARPS;
  const float scale = 1.0f / sqrtf((float)(E / heads));
  if (blocks > 0x7fffffff)
    return t3d_error(T3D_ERR_UNSUPPORTED, "CUDA attention: %lld queries x heads is too many for one launch",
                     (long long)warps);
  attention_k<<<(unsigned)blocks, 32 * ATT_WARPS, 0, s>>>(y, q, k, v, mask, B, Lq, Lk, E, heads, scale);
  return t3d_cuda_check_launch("attention");
}
