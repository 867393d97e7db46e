/* Scratch harness shared by the kernel workbenches in kernels/cuda/dev/ (one per hand-written
 * kernel family): random inputs, the CPU backend's op as the reference, the error measure of
 * tests/test-cuda-ops, and timing with CUDA events. Built by `make cuda-dev` only, never part of
 * libt3d or make check; a variant that wins moves into kernels/cuda/ops.cu. */
#ifndef T3D_CUDA_DEV_HARNESS_H
#define T3D_CUDA_DEV_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_impl.h"

#define DEV_CHECK(call)                                                                       \
  do {                                                                                        \
    cudaError_t e_ = (call);                                                                  \
    if (e_ != cudaSuccess) {                                                                  \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

#define DEV_OK(call)                                                                                   \
  do {                                                                                                 \
    t3d_status s_ = (call);                                                                            \
    if (s_ != T3D_OK) {                                                                                \
      fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call, t3d_strerror(s_), t3d_error_detail()); \
      exit(1);                                                                                         \
    }                                                                                                  \
  } while (0)

struct dev_ctx {
  t3d_backend *cpu;
  cudaStream_t stream;
  cudaEvent_t start, stop;
  int failures;
};

static inline void dev_init(dev_ctx *c)
{
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    printf("no CUDA device: nothing to run\n");
    exit(77);
  }
  DEV_OK(t3d_backend_cpu_create(&c->cpu, NULL));
  DEV_CHECK(cudaStreamCreate(&c->stream));
  DEV_CHECK(cudaEventCreate(&c->start));
  DEV_CHECK(cudaEventCreate(&c->stop));
  c->failures = 0;
}

static inline int dev_finish(dev_ctx *c)
{
  t3d_backend_free(c->cpu);
  cudaEventDestroy(c->start);
  cudaEventDestroy(c->stop);
  cudaStreamDestroy(c->stream);
  printf("%s\n", c->failures ? "SOME VARIANTS FAILED" : "all variants match the CPU");
  return c->failures ? 1 : 0;
}

static inline std::vector<float> dev_random(size_t n, float lo, float hi, unsigned seed)
{
  std::vector<float> v(n);
  unsigned long long s = seed * 2654435761ull + 12345;
  for (auto &x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = lo + (hi - lo) * (float)((s >> 40) / 16777216.0);
  }
  return v;
}

template <class T> static inline T *dev_upload(const std::vector<T> &h)
{
  T *d = NULL;
  DEV_CHECK(cudaMalloc(&d, std::max<size_t>(1, h.size()) * sizeof(T)));
  DEV_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <class T> static inline T *dev_alloc(size_t n)
{
  T *d = NULL;
  DEV_CHECK(cudaMalloc(&d, std::max<size_t>(1, n) * sizeof(T)));
  return d;
}

template <class T> static inline std::vector<T> dev_download(const T *d, size_t n)
{
  std::vector<T> h(n);
  DEV_CHECK(cudaDeviceSynchronize());
  DEV_CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

/* A host tensor view (the CPU backend's memory is host memory). */
template <class T> static inline t3d_tensor dev_view(t3d_dtype dt, std::vector<int64_t> shape, std::vector<T> &v)
{
  return t3d_tensor_view(dt, (int)shape.size(), shape.data(), v.data());
}

/* max |got - want| / max |want|, as tests/test-cuda-ops; integers: the count of differences */
template <class T> static inline double dev_rel(const std::vector<T> &got, const std::vector<T> &want)
{
  double max_abs = 0, max_ref = 0;
  for (size_t i = 0; i < want.size(); i++) {
    double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= max_abs)) max_abs = d;
    max_ref = std::max(max_ref, fabs((double)want[i]));
  }
  return max_abs / std::max(max_ref, 1e-30);
}

/* Median ms of reps runs of launch() on the stream, after one warm-up, timed with events. */
template <class F> static inline float dev_time(dev_ctx *c, F launch, int reps = 20)
{
  std::vector<float> ms;
  launch();
  DEV_CHECK(cudaStreamSynchronize(c->stream));
  for (int i = 0; i < reps; i++) {
    float t = 0;
    DEV_CHECK(cudaEventRecord(c->start, c->stream));
    launch();
    DEV_CHECK(cudaEventRecord(c->stop, c->stream));
    DEV_CHECK(cudaEventSynchronize(c->stop));
    DEV_CHECK(cudaEventElapsedTime(&t, c->start, c->stop));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/* One line per variant: error against the CPU, time, effective bandwidth. */
static inline void dev_report(dev_ctx *c, const char *kernel, const char *variant, double rel, double tol, float ms,
                              double bytes)
{
  bool ok = rel <= tol;
  if (!ok) c->failures++;
  printf("%-4s %-22s %-26s rel %-9.3g (tol %.0e)  %8.4f ms  %7.1f GB/s\n", ok ? "ok" : "FAIL", kernel, variant, rel, tol,
         ms, bytes / (ms * 1e-3) / 1e9);
}

#endif
