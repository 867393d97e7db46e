/* Workbench for the elementwise kernels of ops.cu (relu, add, GELU, the convolution epilogue):
 * the production launchers and a float4 variant of relu and GELU, checked against the CPU
 * backend and timed at a ResNet stem activation size (1x64x80x112x112). Not built by default:
 * `make cuda-dev`. */
#include "kernels/cuda/dev/harness.h"

static __global__ void relu4_k(float4 *y, const float4 *x, int64_t n4)
{
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
    float4 v = x[i];
    v.x = v.x < 0 ? 0 : v.x;
    v.y = v.y < 0 ? 0 : v.y;
    v.z = v.z < 0 ? 0 : v.z;
    v.w = v.w < 0 ? 0 : v.w;
    y[i] = v;
  }
}

static __global__ void gelu4_k(float4 *y, const float4 *x, int64_t n4)
{
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
    float4 v = x[i];
    v.x *= normcdff(v.x);
    v.y *= normcdff(v.y);
    v.z *= normcdff(v.z);
    v.w *= normcdff(v.w);
    y[i] = v;
  }
}

int main(void)
{
  dev_ctx c;
  dev_init(&c);
  const int64_t C = 64, S = 80 * 112 * 112, n = C * S; /* n is a multiple of 4 */
  std::vector<int64_t> shape = {1, C, 80, 112, 112};
  std::vector<float> x = dev_random(n, -8, 8, 1), b = dev_random(n, -1, 1, 2), bias = dev_random(C, -1, 1, 3);
  std::vector<float> want(n);
  float *dx = dev_upload(x), *db = dev_upload(b), *dbias = dev_upload(bias), *dy = dev_alloc<float>(n);
  t3d_tensor tx = dev_view(T3D_F32, shape, x), tb = dev_view(T3D_F32, shape, b), tw = dev_view(T3D_F32, shape, want);
  const unsigned grid = (unsigned)std::min<int64_t>((n / 4 + 255) / 256, 1 << 20);

  DEV_OK(t3d_op_relu(c.cpu, &tw, &tx));
  float ms = dev_time(&c, [&] { t3d_cuda_relu(c.stream, dy, dx, n); });
  dev_report(&c, "relu", "scalar (production)", dev_rel(dev_download(dy, n), want), 0, ms, 8.0 * n);
  ms = dev_time(&c, [&] { relu4_k<<<grid, 256, 0, c.stream>>>((float4 *)dy, (const float4 *)dx, n / 4); });
  dev_report(&c, "relu", "float4", dev_rel(dev_download(dy, n), want), 0, ms, 8.0 * n);

  DEV_OK(t3d_op_gelu(c.cpu, &tw, &tx));
  ms = dev_time(&c, [&] { t3d_cuda_gelu(c.stream, dy, dx, n); });
  dev_report(&c, "gelu", "scalar (production)", dev_rel(dev_download(dy, n), want), 1e-5, ms, 8.0 * n);
  ms = dev_time(&c, [&] { gelu4_k<<<grid, 256, 0, c.stream>>>((float4 *)dy, (const float4 *)dx, n / 4); });
  dev_report(&c, "gelu", "float4", dev_rel(dev_download(dy, n), want), 1e-5, ms, 8.0 * n);

  DEV_OK(t3d_op_add(c.cpu, &tw, &tx, &tb));
  ms = dev_time(&c, [&] { t3d_cuda_add(c.stream, dy, dx, db, n); });
  dev_report(&c, "add", "scalar (production)", dev_rel(dev_download(dy, n), want), 0, ms, 12.0 * n);

  /* epilogue: relu(y + bias[c] + residual), y starting as x */
  for (int64_t i = 0; i < n; i++) {
    float v = x[i] + bias[i / S] + b[i];
    want[i] = v < 0 ? 0 : v;
  }
  ms = dev_time(&c, [&] {
    cudaMemcpyAsync(dy, dx, n * sizeof(float), cudaMemcpyDeviceToDevice, c.stream);
    t3d_cuda_bias_act(c.stream, dy, dbias, db, 1, C, S, true);
  });
  dev_report(&c, "bias+residual+relu", "scalar (production)", dev_rel(dev_download(dy, n), want), 1e-6, ms, 24.0 * n);

  cudaFree(dx);
  cudaFree(db);
  cudaFree(dbias);
  cudaFree(dy);
  return dev_finish(&c);
}
