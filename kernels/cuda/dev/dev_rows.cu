/* Workbench for the row kernels of ops.cu (softmax, layernorm): the production block-per-row
 * kernels and a warp-per-row variant of each, checked against the CPU backend and timed at
 * BERT-base shapes (rows of 768 for layernorm, 12x256 rows of 256 for softmax). Not built by
 * default: `make cuda-dev`. */
#include "kernels/cuda/dev/harness.h"

static __device__ __forceinline__ float wsum(float v)
{
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ float wmax(float v)
{
  for (int o = 16; o > 0; o >>= 1) {
    float u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

static __global__ void softmax_warp_k(float *y, const float *x, int64_t rows, int64_t n)
{
  const int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const float *xr = x + r * n;
  float *yr = y + r * n;
  float mx = -INFINITY, sum = 0;
  for (int64_t i = lane; i < n; i += 32) mx = xr[i] > mx ? xr[i] : mx;
  mx = wmax(mx);
  for (int64_t i = lane; i < n; i += 32) {
    float e = expf(xr[i] - mx);
    yr[i] = e;
    sum += e;
  }
  const float inv = 1.0f / wsum(sum);
  for (int64_t i = lane; i < n; i += 32) yr[i] *= inv;
}

static __global__ void layernorm_warp_k(float *y, const float *x, const float *g, const float *b, int64_t rows,
                                        int64_t n, float eps)
{
  const int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const float *xr = x + r * n;
  float *yr = y + r * n;
  const float x0 = xr[0];
  float s = 0, q = 0;
  for (int64_t i = lane; i < n; i += 32) s += xr[i] - x0;
  const float dm = wsum(s) / n;
  for (int64_t i = lane; i < n; i += 32) {
    float d = xr[i] - x0 - dm;
    q += d * d;
  }
  const float rstd = 1.0f / sqrtf(wsum(q) / n + eps);
  for (int64_t i = lane; i < n; i += 32) yr[i] = (xr[i] - x0 - dm) * rstd * g[i] + b[i];
}

int main(void)
{
  dev_ctx c;
  dev_init(&c);
  { /* softmax: attention probabilities of BERT-base, 12 heads x 256 queries x 256 keys */
    const int64_t rows = 12 * 256, n = 256;
    std::vector<float> x = dev_random(rows * n, -8, 8, 4), want(rows * n);
    t3d_tensor tx = dev_view(T3D_F32, {rows, n}, x), tw = dev_view(T3D_F32, {rows, n}, want);
    DEV_OK(t3d_op_softmax(c.cpu, &tw, &tx));
    float *dx = dev_upload(x), *dy = dev_alloc<float>(rows * n);
    float ms = dev_time(&c, [&] { t3d_cuda_softmax(c.stream, dy, dx, rows, n); });
    dev_report(&c, "softmax", "block/row (production)", dev_rel(dev_download(dy, rows * n), want), 1e-5, ms,
               8.0 * rows * n);
    ms = dev_time(&c, [&] { softmax_warp_k<<<(unsigned)((rows * 32 + 255) / 256), 256, 0, c.stream>>>(dy, dx, rows, n); });
    dev_report(&c, "softmax", "warp/row", dev_rel(dev_download(dy, rows * n), want), 1e-5, ms, 8.0 * rows * n);
    cudaFree(dx);
    cudaFree(dy);
  }
  { /* layernorm: BERT-base hidden states, 256 tokens x 768 */
    const int64_t rows = 256, n = 768;
    std::vector<float> x = dev_random(rows * n, -3, 5, 5), g = dev_random(n, 0.5, 1.5, 6), b = dev_random(n, -1, 1, 7);
    std::vector<float> want(rows * n);
    t3d_tensor tx = dev_view(T3D_F32, {rows, n}, x), tg = dev_view(T3D_F32, {n}, g), tb = dev_view(T3D_F32, {n}, b);
    t3d_tensor tw = dev_view(T3D_F32, {rows, n}, want);
    DEV_OK(t3d_op_layernorm(c.cpu, &tw, &tx, &tg, &tb, 1e-12f));
    float *dx = dev_upload(x), *dg = dev_upload(g), *db = dev_upload(b), *dy = dev_alloc<float>(rows * n);
    float ms = dev_time(&c, [&] { t3d_cuda_layernorm(c.stream, dy, dx, dg, db, rows, n, 1e-12f); });
    dev_report(&c, "layernorm", "block/row (production)", dev_rel(dev_download(dy, rows * n), want), 1e-5, ms,
               8.0 * rows * n);
    ms = dev_time(&c, [&] {
      layernorm_warp_k<<<(unsigned)((rows * 32 + 255) / 256), 256, 0, c.stream>>>(dy, dx, dg, db, rows, n, 1e-12f);
    });
    dev_report(&c, "layernorm", "warp/row", dev_rel(dev_download(dy, rows * n), want), 1e-5, ms, 8.0 * rows * n);
    cudaFree(dx);
    cudaFree(dg);
    cudaFree(db);
    cudaFree(dy);
  }
  return dev_finish(&c);
}
