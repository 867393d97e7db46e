/* Workbench for the volume kernels of ops.cu (max pool, global and adaptive average pool,
 * trilinear resampling, channel argmax, concat is cudaMemcpy2D): the production kernels checked
 * against the CPU backend and timed at the shapes of t3d-r50 on 1x160x224x224 (stem max pool,
 * layer4 global pool, labels resampled and argmaxed at half resolution). Not built by default:
 * `make cuda-dev`. */
#include "kernels/cuda/dev/harness.h"

static int64_t numel(const std::vector<int64_t> &s)
{
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

int main(void)
{
  dev_ctx c;
  dev_init(&c);
  { /* stem max pool k3 s2 p1: 1x64x80x112x112 -> 1x64x40x56x56 */
    std::vector<int64_t> xs = {1, 64, 80, 112, 112}, ys = {1, 64, 40, 56, 56};
    std::vector<float> x = dev_random(numel(xs), -1, 1, 11), want(numel(ys));
    t3d_pool3d_params p = {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}};
    t3d_tensor tx = dev_view(T3D_F32, xs, x), tw = dev_view(T3D_F32, ys, want);
    DEV_OK(t3d_op_maxpool3d(c.cpu, &tw, &tx, &p));
    float *dx = dev_upload(x), *dy = dev_alloc<float>(numel(ys));
    float ms = dev_time(&c, [&] { t3d_cuda_maxpool3d(c.stream, dy, dx, xs.data(), ys.data(), &p); });
    dev_report(&c, "maxpool3d", "thread/output", dev_rel(dev_download(dy, numel(ys)), want), 0, ms,
               4.0 * (numel(xs) + numel(ys)));
    cudaFree(dx);
    cudaFree(dy);
  }
  { /* global average pool of layer4: 1x2048x5x7x7 */
    std::vector<int64_t> xs = {1, 2048, 5, 7, 7};
    std::vector<float> x = dev_random(numel(xs), 0, 4, 12), want(2048);
    t3d_tensor tx = dev_view(T3D_F32, xs, x), tw = dev_view(T3D_F32, {1, 2048}, want);
    DEV_OK(t3d_op_avgpool3d_global(c.cpu, &tw, &tx));
    float *dx = dev_upload(x), *dy = dev_alloc<float>(2048);
    float ms = dev_time(&c, [&] { t3d_cuda_avgpool_global(c.stream, dy, dx, 2048, 5 * 7 * 7); });
    dev_report(&c, "avgpool3d_global", "block/channel", dev_rel(dev_download(dy, 2048), want), 1e-6, ms,
               4.0 * numel(xs));
    cudaFree(dx);
    cudaFree(dy);
  }
  { /* adaptive average pool 1x256x20x28x28 -> 1x256x6x6x6 (uneven bins) */
    std::vector<int64_t> xs = {1, 256, 20, 28, 28}, ys = {1, 256, 6, 6, 6};
    std::vector<float> x = dev_random(numel(xs), -1, 1, 13), want(numel(ys));
    t3d_tensor tx = dev_view(T3D_F32, xs, x), tw = dev_view(T3D_F32, ys, want);
    DEV_OK(t3d_op_avgpool3d_adaptive(c.cpu, &tw, &tx));
    float *dx = dev_upload(x), *dy = dev_alloc<float>(numel(ys));
    float ms = dev_time(&c, [&] { t3d_cuda_avgpool_adaptive(c.stream, dy, dx, xs.data(), ys.data()); });
    dev_report(&c, "avgpool3d_adaptive", "thread/output", dev_rel(dev_download(dy, numel(ys)), want), 1e-5, ms,
               4.0 * numel(xs));
    cudaFree(dx);
    cudaFree(dy);
  }
  { /* trilinear 1x8x80x112x112 -> 1x8x160x224x224 */
    std::vector<int64_t> xs = {1, 8, 80, 112, 112}, ys = {1, 8, 160, 224, 224};
    std::vector<float> x = dev_random(numel(xs), -1, 1, 14), want(numel(ys));
    t3d_tensor tx = dev_view(T3D_F32, xs, x), tw = dev_view(T3D_F32, ys, want);
    DEV_OK(t3d_op_resample_trilinear(c.cpu, &tw, &tx));
    float *dx = dev_upload(x), *dy = dev_alloc<float>(numel(ys));
    float ms = dev_time(&c, [&] { t3d_cuda_resample_trilinear(c.stream, dy, dx, xs.data(), ys.data()); });
    dev_report(&c, "resample_trilinear", "thread/output", dev_rel(dev_download(dy, numel(ys)), want), 1e-5, ms,
               4.0 * (numel(xs) + numel(ys)));
    cudaFree(dx);
    cudaFree(dy);
  }
  { /* argmax of 14 class logits at 1x14x80x112x112 */
    std::vector<int64_t> xs = {1, 14, 80, 112, 112}, ys = {1, 80, 112, 112};
    std::vector<float> x = dev_random(numel(xs), -1, 1, 15);
    std::vector<int32_t> want(numel(ys));
    t3d_tensor tx = dev_view(T3D_F32, xs, x), tw = dev_view(T3D_I32, ys, want);
    DEV_OK(t3d_op_argmax(c.cpu, &tw, &tx));
    float *dx = dev_upload(x);
    int32_t *dy = dev_alloc<int32_t>(numel(ys));
    float ms = dev_time(&c, [&] { t3d_cuda_argmax(c.stream, dy, dx, 1, 14, 80 * 112 * 112); });
    dev_report(&c, "argmax", "thread/voxel", dev_rel(dev_download(dy, numel(ys)), want), 0, ms,
               4.0 * (numel(xs) + numel(ys)));
    cudaFree(dx);
    cudaFree(dy);
  }
  return dev_finish(&c);
}
