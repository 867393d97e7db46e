/* Times the CPU backend's non-convolution ops at the model's sizes (BERT-base linear layers,
 * softmax/layernorm/GELU, attention, input resampling, the stem max pool). A measuring tool run
 * by hand, not a test: `tests/bench-cpu-ops [threads]`; prints best-of-N times. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/base/status.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu.h"

static t3d_backend *be;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static t3d_tensor mk(t3d_dtype dtype, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t d4)
{
  int64_t shape[5] = {d0, d1, d2, d3, d4};
  t3d_tensor t;
  if (t3d_backend_tensor_new(be, &t, dtype, ndim, shape) != T3D_OK) {
    fprintf(stderr, "bench: %s\n", t3d_error_detail());
    exit(1);
  }
  if (dtype == T3D_F32)
    for (int64_t i = 0; i < t3d_tensor_numel(&t); i++)
      ((float *)t.data)[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  return t;
}

/* Best-of time in seconds of `expr`, run until ~0.5 s or 20 repetitions after a warm-up. */
#define TIME(best, expr)                                                     \
  do {                                                                       \
    double t0_, start_ = now();                                              \
    if ((expr) != T3D_OK) {                                                  \
      fprintf(stderr, "bench: %s\n", t3d_error_detail());                    \
      exit(1);                                                               \
    }                                                                        \
    best = 1e30;                                                             \
    for (int r_ = 0; r_ < 20 && (r_ < 3 || now() - start_ < 0.5); r_++) {    \
      t0_ = now();                                                           \
      (void)(expr);                                                          \
      t0_ = now() - t0_;                                                     \
      if (t0_ < best)                                                        \
        best = t0_;                                                          \
    }                                                                        \
  } while (0)

static t3d_status blocked_linear(t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w)
{
  t3d_cpu_sgemm_blocked(false, true, x->shape[0], w->shape[0], w->shape[1], 1.0f, x->data, x->shape[1], w->data,
                        w->shape[1], 0.0f, y->data, w->shape[0], be->threads);
  return T3D_OK;
}

int main(int argc, char **argv)
{
  t3d_backend_params p = t3d_backend_default_params();
  double t;
  if (argc > 1)
    p.threads = atoi(argv[1]);
  if (t3d_backend_cpu_create(&be, &p) != T3D_OK) {
    fprintf(stderr, "bench: %s\n", t3d_error_detail());
    return 1;
  }
  printf("CPU backend, %d threads\n", be->threads);

  const int64_t outs[2] = {768, 3072};
  for (int i = 0; i < 2; i++) {
    t3d_tensor x = mk(T3D_F32, 2, 256, 768, 0, 0, 0), w = mk(T3D_F32, 2, outs[i], 768, 0, 0, 0);
    t3d_tensor b = mk(T3D_F32, 1, outs[i], 0, 0, 0, 0), y = mk(T3D_F32, 2, 256, outs[i], 0, 0, 0);
    double flop = 2.0 * 256 * 768 * (double)outs[i];
    TIME(t, t3d_op_linear(be, &y, &x, &w, &b));
    printf("linear [256,768]x[%lld,768]^T (t3d_cpu_sgemm)  %8.3f ms  %6.1f GFLOP/s\n", (long long)outs[i], t * 1e3,
           flop / t * 1e-9);
    TIME(t, blocked_linear(&y, &x, &w));
    printf("linear [256,768]x[%lld,768]^T (own blocked)    %8.3f ms  %6.1f GFLOP/s\n", (long long)outs[i], t * 1e3,
           flop / t * 1e-9);
    t3d_backend_tensor_free(be, &x);
    t3d_backend_tensor_free(be, &w);
    t3d_backend_tensor_free(be, &b);
    t3d_backend_tensor_free(be, &y);
  }

  {
    t3d_tensor a = mk(T3D_F32, 2, 256, 3072, 0, 0, 0), s = mk(T3D_F32, 3, 12, 256, 256, 0, 0);
    t3d_tensor g = mk(T3D_F32, 1, 3072, 0, 0, 0, 0), bb = mk(T3D_F32, 1, 3072, 0, 0, 0, 0);
    t3d_tensor ya = mk(T3D_F32, 2, 256, 3072, 0, 0, 0), ys = mk(T3D_F32, 3, 12, 256, 256, 0, 0);
    t3d_tensor *ins[2] = {&a, &s}, *outs2[2] = {&ya, &ys};
    const char *names[2] = {"[256,3072]", "[12,256,256]"};
    for (int i = 0; i < 2; i++) {
      double gb = 2.0 * (double)t3d_tensor_nbytes(ins[i]) * 1e-9;
      TIME(t, t3d_op_softmax(be, outs2[i], ins[i]));
      printf("softmax   %-14s %8.3f ms  %6.2f GB/s\n", names[i], t * 1e3, gb / t);
      TIME(t, t3d_op_gelu(be, outs2[i], ins[i]));
      printf("gelu      %-14s %8.3f ms  %6.2f GB/s\n", names[i], t * 1e3, gb / t);
    }
    TIME(t, t3d_op_layernorm(be, &ya, &a, &g, &bb, 1e-12f));
    printf("layernorm %-14s %8.3f ms  %6.2f GB/s\n", names[0], t * 1e3, 2.0 * (double)t3d_tensor_nbytes(&a) * 1e-9 / t);
    {
      int64_t sh[2] = {12 * 256, 256};
      t3d_tensor s2 = t3d_tensor_view(T3D_F32, 2, sh, s.data), ys2 = t3d_tensor_view(T3D_F32, 2, sh, ys.data);
      t3d_tensor g2 = mk(T3D_F32, 1, 256, 0, 0, 0, 0), b2 = mk(T3D_F32, 1, 256, 0, 0, 0, 0);
      TIME(t, t3d_op_layernorm(be, &ys2, &s2, &g2, &b2, 1e-12f));
      printf("layernorm %-14s %8.3f ms  %6.2f GB/s\n", names[1], t * 1e3,
             2.0 * (double)t3d_tensor_nbytes(&s) * 1e-9 / t);
      t3d_backend_tensor_free(be, &g2);
      t3d_backend_tensor_free(be, &b2);
    }
    t3d_backend_tensor_free(be, &a);
    t3d_backend_tensor_free(be, &s);
    t3d_backend_tensor_free(be, &g);
    t3d_backend_tensor_free(be, &bb);
    t3d_backend_tensor_free(be, &ya);
    t3d_backend_tensor_free(be, &ys);
  }

  {
    t3d_tensor q = mk(T3D_F32, 3, 1, 256, 768, 0, 0), k = mk(T3D_F32, 3, 1, 256, 768, 0, 0);
    t3d_tensor v = mk(T3D_F32, 3, 1, 256, 768, 0, 0), y = mk(T3D_F32, 3, 1, 256, 768, 0, 0);
    t3d_tensor m = mk(T3D_I32, 2, 1, 256, 0, 0, 0);
    for (int j = 0; j < 256; j++)
      ((int32_t *)m.data)[j] = j < 200;
    double flop = 4.0 * 12 * 256 * 256 * 64;
    TIME(t, t3d_op_attention(be, &y, &q, &k, &v, &m, 12));
    printf("attention B=1 L=256 H=12 Dh=64  %8.3f ms  %6.1f GFLOP/s\n", t * 1e3, flop / t * 1e-9);
    t3d_backend_tensor_free(be, &q);
    t3d_backend_tensor_free(be, &k);
    t3d_backend_tensor_free(be, &v);
    t3d_backend_tensor_free(be, &y);
    t3d_backend_tensor_free(be, &m);
  }

  {
    t3d_tensor x = mk(T3D_F32, 5, 1, 1, 160, 224, 224), y = mk(T3D_F32, 5, 1, 1, 80, 112, 112);
    double gb = (double)(t3d_tensor_nbytes(&x) + t3d_tensor_nbytes(&y)) * 1e-9;
    TIME(t, t3d_op_resample_trilinear(be, &y, &x));
    printf("resample 1x1x160x224x224 -> 80x112x112  %8.3f ms  %6.2f GB/s (in+out bytes)\n", t * 1e3, gb / t);
    t3d_backend_tensor_free(be, &x);
    t3d_backend_tensor_free(be, &y);
  }

  {
    t3d_tensor x = mk(T3D_F32, 5, 1, 64, 80, 112, 112), y = mk(T3D_F32, 5, 1, 64, 40, 56, 56);
    t3d_pool3d_params pp = {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}};
    double gb = (double)(t3d_tensor_nbytes(&x) + t3d_tensor_nbytes(&y)) * 1e-9;
    TIME(t, t3d_op_maxpool3d(be, &y, &x, &pp));
    printf("maxpool 1x64x80x112x112 k3 s2 p1  %8.3f ms  %6.2f GB/s (in+out bytes)\n", t * 1e3, gb / t);
    t3d_backend_tensor_free(be, &x);
    t3d_backend_tensor_free(be, &y);
  }
  t3d_backend_free(be);
  return 0;
}
