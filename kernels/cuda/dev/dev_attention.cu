/* Workbench for the fused attention kernel of ops.cu (one warp per query, online softmax)
 * against a three-step variant (scores to global memory, row softmax, scores x V), both checked
 * against the CPU backend at BERT-base, 256 tokens with the last 40 keys padded. Not built by
 * default: `make cuda-dev`. */
#include "kernels/cuda/dev/harness.h"

/* s[b,h,i,j] = scale q.k, -inf for masked keys */
static __global__ void scores_k(float *s, const float *q, const float *k, const int32_t *mask, int64_t B, int64_t L,
                                int64_t E, int H, float scale)
{
  const int64_t total = B * H * L * L;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t j = t % L, i = (t / L) % L, h = (t / (L * L)) % H, b = t / (L * L * H), D = E / H;
    const float *qi = q + (b * L + i) * E + h * D, *kj = k + (b * L + j) * E + h * D;
    float acc = 0;
    for (int64_t d = 0; d < D; d++) acc += qi[d] * kj[d];
    s[t] = mask[b * L + j] ? scale * acc : -INFINITY;
  }
}

static __global__ void pv_k(float *y, const float *p, const float *v, int64_t B, int64_t L, int64_t E, int H)
{
  const int64_t total = B * L * E;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t e = t % E, i = (t / E) % L, b = t / (E * L), D = E / H, h = e / D;
    const float *pr = p + ((b * H + h) * L + i) * L;
    float acc = 0;
    for (int64_t j = 0; j < L; j++) acc += pr[j] * v[(b * L + j) * E + e];
    y[t] = acc;
  }
}

int main(void)
{
  dev_ctx c;
  dev_init(&c);
  const int64_t B = 1, L = 256, E = 768;
  const int H = 12;
  std::vector<float> q = dev_random(B * L * E, -1, 1, 8), k = dev_random(B * L * E, -1, 1, 9);
  std::vector<float> v = dev_random(B * L * E, -1, 1, 10), want(B * L * E);
  std::vector<int32_t> mask(B * L);
  for (int64_t j = 0; j < B * L; j++) mask[j] = j % L < L - 40;
  t3d_tensor tq = dev_view(T3D_F32, {B, L, E}, q), tk = dev_view(T3D_F32, {B, L, E}, k);
  t3d_tensor tv = dev_view(T3D_F32, {B, L, E}, v), tm = dev_view(T3D_I32, {B, L}, mask);
  t3d_tensor tw = dev_view(T3D_F32, {B, L, E}, want);
  DEV_OK(t3d_op_attention(c.cpu, &tw, &tq, &tk, &tv, &tm, H));
  float *dq = dev_upload(q), *dk = dev_upload(k), *dv = dev_upload(v), *dy = dev_alloc<float>(B * L * E);
  float *ds = dev_alloc<float>(B * H * L * L);
  int32_t *dm = dev_upload(mask);
  const double bytes = 4.0 * 4 * B * L * E;
  float ms = dev_time(&c, [&] { t3d_cuda_attention(c.stream, dy, dq, dk, dv, dm, B, L, L, E, H); });
  dev_report(&c, "attention", "warp/query (production)", dev_rel(dev_download(dy, B * L * E), want), 1e-4, ms, bytes);
  ms = dev_time(&c, [&] {
    scores_k<<<1024, 256, 0, c.stream>>>(ds, dq, dk, dm, B, L, E, H, 1.0f / sqrtf((float)(E / H)));
    t3d_cuda_softmax(c.stream, ds, ds, B * H * L, L);
    pv_k<<<1024, 256, 0, c.stream>>>(dy, ds, dv, B, L, E, H);
  });
  dev_report(&c, "attention", "3 steps via global", dev_rel(dev_download(dy, B * L * E), want), 1e-4, ms, bytes);
  cudaFree(dq);
  cudaFree(dk);
  cudaFree(dv);
  cudaFree(dy);
  cudaFree(ds);
  cudaFree(dm);
  return dev_finish(&c);
}
