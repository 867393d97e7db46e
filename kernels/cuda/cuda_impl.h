/* Private header of the CUDA backend (C++, nvcc only): the backend state behind be->impl, the
 * error helpers, and the launchers of t3d's own kernels (kernels/cuda/ops.cu) that the op table
 * (kernels/cuda/backend_cuda.cu) calls. Not public API: model code sees kernels/backend.h only.
 * Every launcher queues work on impl->stream and returns a launch error as a t3d_status. */
#ifndef T3D_KERNELS_CUDA_IMPL_H
#define T3D_KERNELS_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <unordered_map>
#include <vector>

extern "C" {
#include "kernels/backend.h"
}

/* Everything declared below is internal to libt3d (hidden: not part of its ABI). */
#pragma GCC visibility push(hidden)

/* One cached cuDNN plan: descriptors and the measured-best algorithm for one convolution
 * shape (forward, or backward data for the transposed convolution). */
struct t3d_cuda_conv_plan {
  bool transpose;
  int64_t x[5], w[5], y[5];
  int stride[3], pad[3];
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  int algo; /* cudnnConvolutionFwdAlgo_t or cudnnConvolutionBwdDataAlgo_t */
  size_t ws_bytes;
};

struct t3d_cuda_impl {
  int device;
  t3d_precision precision;
  size_t workspace_limit;
  cudaStream_t stream;
  cudnnHandle_t cudnn;
  cublasHandle_t cublas;
  void *ws;        /* convolution workspace: grown to the largest plan's need, reused by all */
  size_t ws_bytes;
  unsigned long long *flag; /* device: first bad flat index of embedding ids (ULLONG_MAX: none) */
  size_t mem_now, mem_peak; /* bytes of our allocations (model, arenas, workspace) */
  std::unordered_map<void *, size_t> sizes;
  std::vector<t3d_cuda_conv_plan> plans;
};

/* The backend's state, with its device made current on the calling thread (ops may come from
 * any thread: a viewer's worker, a bench's cancel thread; kernels go to the current device). */
t3d_cuda_impl *t3d_cuda_of(t3d_backend *be);

/* T3D_ERR_BACKEND with the runtime's message, or T3D_OK. Clears the sticky-free last error. */
t3d_status t3d_cuda_check(cudaError_t err, const char *what);
/* Checks the launch of the kernel just queued (cudaGetLastError). */
t3d_status t3d_cuda_check_launch(const char *what);
/* Opens cuBLAS (dlopen, once per process) for the backend's GEMMs; T3D_ERR_BACKEND naming the
 * library when it cannot. */
t3d_status t3d_cuda_cublas_open(void);

/* ---- launchers (kernels/cuda/ops.cu); sizes in elements, pointers device memory ------------ */
t3d_status t3d_cuda_relu(cudaStream_t s, float *y, const float *x, int64_t n);
t3d_status t3d_cuda_add(cudaStream_t s, float *y, const float *a, const float *b, int64_t n);
t3d_status t3d_cuda_gelu(cudaStream_t s, float *y, const float *x, int64_t n);
/* y[n, c, i] = relu?(y[n, c, i] + bias[c] + res[n, c, i]); bias, res may be NULL */
t3d_status t3d_cuda_bias_act(cudaStream_t s, float *y, const float *bias, const float *res, int64_t N, int64_t C,
                             int64_t inner, bool relu);
t3d_status t3d_cuda_softmax(cudaStream_t s, float *y, const float *x, int64_t rows, int64_t n);
t3d_status t3d_cuda_layernorm(cudaStream_t s, float *y, const float *x, const float *gamma, const float *beta,
                              int64_t rows, int64_t n, float eps);
t3d_status t3d_cuda_argmax(cudaStream_t s, int32_t *y, const float *x, int64_t N, int64_t C, int64_t inner);
/* *first_bad (set to ULLONG_MAX before) gets the smallest flat index of an id outside [0, V) */
t3d_status t3d_cuda_embedding(cudaStream_t s, float *y, const int32_t *ids, const float *table, int64_t nids,
                              int64_t V, int64_t E, unsigned long long *first_bad);
t3d_status t3d_cuda_maxpool3d(cudaStream_t s, float *y, const float *x, const int64_t xs[5], const int64_t ys[5],
                              const t3d_pool3d_params *p);
t3d_status t3d_cuda_avgpool_global(cudaStream_t s, float *y, const float *x, int64_t NC, int64_t S);
t3d_status t3d_cuda_avgpool_adaptive(cudaStream_t s, float *y, const float *x, const int64_t xs[5],
                                     const int64_t ys[5]);
t3d_status t3d_cuda_resample_trilinear(cudaStream_t s, float *y, const float *x, const int64_t xs[5],
                                       const int64_t ys[5]);
/* q[B,Lq,E], k,v[B,Lk,E], mask i32[B,Lk] or NULL -> y[B,Lq,E], E = heads * Dh */
t3d_status t3d_cuda_attention(cudaStream_t s, float *y, const float *q, const float *k, const float *v,
                              const int32_t *mask, int64_t B, int64_t Lq, int64_t Lk, int64_t E, int heads);

#pragma GCC visibility pop
#endif
