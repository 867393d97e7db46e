/* The CUDA backend: its op table, device memory, one stream, cuDNN convolutions (plans with the
 * measured-best algorithm cached per shape, one shared workspace), cuBLAS linear, and creation
 * with the checks that decide whether a GPU is usable. Not the hand-written kernels (ops.cu) and
 * no shape checks (kernels/backend.c does those before any entry here is called). */
#include "config.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>
#include <unordered_map>

#include "kernels/cuda/cuda_impl.h"

extern "C" {
#include "kernels/cuda/device.h"
}

#define MIB ((size_t)1 << 20)

t3d_status t3d_cuda_check(cudaError_t err, const char *what)
{
  if (err == cudaSuccess)
    return T3D_OK;
  cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed for it */
  if (err == cudaErrorMemoryAllocation)
    return t3d_error(T3D_ERR_NOMEM, "CUDA %s: %s", what, cudaGetErrorString(err));
  return t3d_error(T3D_ERR_BACKEND, "CUDA %s: %s", what, cudaGetErrorString(err));
}

t3d_status t3d_cuda_check_launch(const char *what) { return t3d_cuda_check(cudaGetLastError(), what); }

t3d_cuda_impl *t3d_cuda_of(t3d_backend *be)
{
  t3d_cuda_impl *c = (t3d_cuda_impl *)be->impl;
  int current = -1; /* asked each time (a host-side query): other code may have switched devices */
  if (c && (cudaGetDevice(&current) != cudaSuccess || current != c->device))
    cudaSetDevice(c->device);
  return c;
}

static t3d_status cudnn_check(cudnnStatus_t st, const char *what)
{
  if (st == CUDNN_STATUS_SUCCESS)
    return T3D_OK;
  return t3d_error(st == CUDNN_STATUS_ALLOC_FAILED ? T3D_ERR_NOMEM : T3D_ERR_BACKEND, "cuDNN %s: %s", what,
                   cudnnGetErrorString(st));
}

/* cuBLAS is opened when the first CUDA backend is created, not linked: loading it (with the
 * libcublasLt it needs) raised every t3d process's peak resident memory by ~150 MiB, CPU-only runs
 * and the viewer plugin included (measured: VmHWM of `t3d version` 232 MiB linked). The handful
 * of entry points the backend uses come from dlsym. */
#define T3D_STR2(x) #x
#define T3D_STR(x) T3D_STR2(x)
/* cublasGemmEx is overloaded in C++ (an _64 form): this one, checked against the header unevaluated */
typedef cublasStatus_t (*gemm_ex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                                     const void *, cudaDataType, int, const void *, cudaDataType, int, const void *,
                                     void *, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
static_assert(sizeof(static_cast<gemm_ex_fn>(&cublasGemmEx)) > 0, "cublasGemmEx signature");
static struct { /* the header's own declarations give the types */
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  gemm_ex_fn gemm_ex;
  decltype(&cublasGetStatusString) status_string;
  char error[320];
} cublas_api;
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;

static void cublas_load(void)
{
  static const char *const names[] = {"libcublas.so." T3D_STR(CUBLAS_VER_MAJOR),
#ifdef T3D_CUDA_LIBDIR
                                      T3D_CUDA_LIBDIR "/libcublas.so." T3D_STR(CUBLAS_VER_MAJOR),
#endif
                                      NULL};
  void *h = NULL;
  for (int i = 0; names[i] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(cublas_api.error, sizeof cublas_api.error, "cannot open %s: %s", names[0], dlerror());
    return;
  }
  static const char *const syms[] = {"cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2", "cublasGemmEx",
                                     "cublasGetStatusString"};
  void *f[5];
  for (int i = 0; i < 5; i++)
    if (!(f[i] = dlsym(h, syms[i]))) {
      snprintf(cublas_api.error, sizeof cublas_api.error, "%s lacks %s", names[0], syms[i]);
      return;
    }
  cublas_api.create = (decltype(cublas_api.create))f[0];
  cublas_api.destroy = (decltype(cublas_api.destroy))f[1];
  cublas_api.set_stream = (decltype(cublas_api.set_stream))f[2];
  cublas_api.gemm_ex = (decltype(cublas_api.gemm_ex))f[3];
  cublas_api.status_string = (decltype(cublas_api.status_string))f[4];
}

t3d_status t3d_cuda_cublas_open(void)
{
  pthread_once(&cublas_once, cublas_load);
  if (!cublas_api.status_string)
    return t3d_error(T3D_ERR_BACKEND, "cuBLAS: %s", cublas_api.error);
  return T3D_OK;
}

static t3d_status cublas_check(cublasStatus_t st, const char *what)
{
  if (st == CUBLAS_STATUS_SUCCESS)
    return T3D_OK;
  return t3d_error(st == CUBLAS_STATUS_ALLOC_FAILED ? T3D_ERR_NOMEM : T3D_ERR_BACKEND, "cuBLAS %s: %s", what,
                   cublas_api.status_string(st));
}

static t3d_status cancelled(const t3d_backend *be, const char *op)
{
  if (be->cancel && *be->cancel)
    return t3d_error(T3D_ERR_CANCELLED, "%s cancelled", op);
  return T3D_OK;
}

/* ---- memory ----------------------------------------------------------------------------------- */

static bool cuda_supports_op(const t3d_backend *be, t3d_op op, t3d_dtype dtype)
{
  (void)be;
  return (unsigned)op < T3D_OP_COUNT && dtype == T3D_F32;
}

static t3d_status cuda_alloc(t3d_backend *be, void **dev, size_t bytes)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  *dev = NULL;
  if (bytes == 0)
    bytes = 1; /* a distinct, freeable pointer, as the CPU backend gives */
  cudaError_t err = cudaMalloc(dev, bytes);
  if (err != cudaSuccess) {
    *dev = NULL;
    cudaGetLastError();
    return t3d_error(T3D_ERR_NOMEM, "CUDA device %d: cannot allocate %zu MiB (%s)", c->device, (bytes + MIB - 1) / MIB,
                     cudaGetErrorString(err));
  }
  try {
    c->sizes[*dev] = bytes;
  } catch (const std::bad_alloc &) {
    cudaFree(*dev);
    *dev = NULL;
    return t3d_error(T3D_ERR_NOMEM, "CUDA backend: out of host memory");
  }
  c->mem_now += bytes;
  if (c->mem_now > c->mem_peak)
    c->mem_peak = c->mem_now;
  return T3D_OK;
}

static void cuda_free(t3d_backend *be, void *dev)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  if (!dev)
    return;
  auto it = c->sizes.find(dev);
  if (it != c->sizes.end()) {
    c->mem_now -= it->second;
    c->sizes.erase(it);
  }
  cudaFree(dev);
  cudaGetLastError();
}

static t3d_status cuda_upload(t3d_backend *be, void *dst, const void *src, size_t bytes)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  /* Waits for the copy: the caller may free or reuse src as soon as this returns. */
  T3D_TRY(t3d_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream), "upload"));
  return t3d_cuda_check(cudaStreamSynchronize(c->stream), "upload (waiting for the stream)");
}

static t3d_status cuda_download(t3d_backend *be, void *dst, const void *src, size_t bytes)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  T3D_TRY(t3d_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "download"));
  return t3d_cuda_check(cudaStreamSynchronize(c->stream), "download (a kernel before it failed, or the copy)");
}

static t3d_status cuda_synchronize(t3d_backend *be)
{
  return t3d_cuda_check(cudaStreamSynchronize(t3d_cuda_of(be)->stream), "synchronize");
}

/* The shared convolution workspace, grown (never shrunk) to `bytes`. Growing waits for the
 * stream: queued kernels may still use the old one. */
static t3d_status ensure_workspace(t3d_cuda_impl *c, size_t bytes)
{
  if (bytes <= c->ws_bytes)
    return T3D_OK;
  T3D_TRY(t3d_cuda_check(cudaStreamSynchronize(c->stream), "workspace resize"));
  if (c->ws) {
    cudaFree(c->ws);
    c->mem_now -= c->ws_bytes;
  }
  c->ws = NULL;
  c->ws_bytes = 0;
  if (cudaMalloc(&c->ws, bytes) != cudaSuccess) {
    cudaGetLastError();
    c->ws = NULL;
    return t3d_error(T3D_ERR_NOMEM, "CUDA device %d: cannot allocate a %zu MiB convolution workspace", c->device,
                     (bytes + MIB - 1) / MIB);
  }
  c->ws_bytes = bytes;
  c->mem_now += bytes;
  if (c->mem_now > c->mem_peak)
    c->mem_peak = c->mem_now;
  return T3D_OK;
}

/* ---- convolutions (cuDNN) --------------------------------------------------------------------- */

static void plan_destroy(t3d_cuda_conv_plan *p)
{
  if (p->xd) cudnnDestroyTensorDescriptor(p->xd);
  if (p->yd) cudnnDestroyTensorDescriptor(p->yd);
  if (p->wd) cudnnDestroyFilterDescriptor(p->wd);
  if (p->cd) cudnnDestroyConvolutionDescriptor(p->cd);
  p->xd = p->yd = NULL;
  p->wd = NULL;
  p->cd = NULL;
}

static t3d_status tensor_desc(cudnnTensorDescriptor_t d, const int64_t s[5])
{
  int dims[5], strides[5];
  int64_t st = 1;
  for (int i = 4; i >= 0; i--) {
    if (s[i] > INT_MAX || st > INT_MAX)
      return t3d_error(T3D_ERR_UNSUPPORTED, "cuDNN: tensor dimension beyond 2^31 elements");
    dims[i] = (int)s[i];
    strides[i] = (int)st;
    st *= s[i];
  }
  return cudnn_check(cudnnSetTensorNdDescriptor(d, CUDNN_DATA_FLOAT, 5, dims, strides), "tensor descriptor");
}

static cudnnMathType_t math_of(const t3d_cuda_impl *c)
{
  /* FMA: fp32 products only (no TF32 tensor cores), so fp32 results track the CPU backend;
   * TENSOR_OP on fp32 data is TF32 (as PyTorch's allow_tf32), never ALLOW_CONVERSION (fp16) */
  return c->precision == T3D_PRECISION_TF32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

/* Whether an algorithm measured with this math type keeps the precision asked for: fp32 takes
 * no tensor-core (TF32) products, and no mode takes a conversion of the data to fp16. */
static bool math_allowed(const t3d_cuda_impl *c, cudnnMathType_t m)
{
  if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
    return false;
  return c->precision == T3D_PRECISION_TF32 || m != CUDNN_TENSOR_OP_MATH;
}

/* A search workspace for cudnnFind*Ex: the limit, halved until it fits in free memory. */
static void *search_workspace(t3d_cuda_impl *c, size_t *bytes)
{
  size_t b = c->workspace_limit;
  void *p = NULL;
  if (c->ws_bytes >= b) {
    *bytes = c->ws_bytes;
    return c->ws;
  }
  while (b >= MIB) {
    if (cudaMalloc(&p, b) == cudaSuccess) {
      *bytes = b;
      return p;
    }
    cudaGetLastError();
    b /= 2;
  }
  *bytes = 0;
  return NULL;
}

/* The fastest measured algorithm (cuDNN sorts by time) that ran, fits the workspace and, in fp32,
 * uses no tensor-core TF32; sets the plan's workspace size and math type. -1 when none. */
template <class Perf>
static int pick_algo(const t3d_cuda_impl *c, t3d_cuda_conv_plan *p, const Perf *perf, int n, size_t ws_limit)
{
  const bool tf32 = c->precision == T3D_PRECISION_TF32;
  for (int i = 0; i < n; i++)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ws_limit && math_allowed(c, perf[i].mathType)) {
      p->ws_bytes = perf[i].memory;
      cudnnSetConvolutionMathType(p->cd, tf32 ? perf[i].mathType : CUDNN_FMA_MATH);
      return i;
    }
  return -1;
}

static bool same5(const int64_t *a, const int64_t *b) { return memcmp(a, b, 5 * sizeof *a) == 0; }

/* The cached plan for this convolution, made (descriptors, algorithm measured with
 * cudnnFind*Ex on the real buffers) on first use. ys is the forward output (the transposed
 * convolution's input x), xs the forward input (its output y). */
static t3d_status get_plan(t3d_cuda_impl *c, bool transpose, const t3d_tensor *x, const t3d_tensor *w,
                           const t3d_tensor *y, const int stride[3], const int pad[3], t3d_cuda_conv_plan **out)
{
  for (auto &p : c->plans)
    if (p.transpose == transpose && same5(p.x, x->shape) && same5(p.w, w->shape) && same5(p.y, y->shape) &&
        memcmp(p.stride, stride, sizeof p.stride) == 0 && memcmp(p.pad, pad, sizeof p.pad) == 0) {
      *out = &p;
      return T3D_OK;
    }

  t3d_cuda_conv_plan p;
  memset(&p, 0, sizeof p);
  p.transpose = transpose;
  memcpy(p.x, x->shape, sizeof p.x);
  memcpy(p.w, w->shape, sizeof p.w);
  memcpy(p.y, y->shape, sizeof p.y);
  memcpy(p.stride, stride, sizeof p.stride);
  memcpy(p.pad, pad, sizeof p.pad);
  /* forward-convolution view: input fx -> output fy; transposed = backward data of fy -> fx */
  const t3d_tensor *fx = transpose ? y : x, *fy = transpose ? x : y;
  int wdims[5], padv[3] = {pad[0], pad[1], pad[2]}, strv[3] = {stride[0], stride[1], stride[2]}, dil[3] = {1, 1, 1};
  int got[5];
  void *sw = NULL;
  size_t sw_bytes = 0;
  t3d_status s = T3D_OK;
  for (int i = 0; i < 5; i++) {
    if (w->shape[i] > INT_MAX)
      return t3d_error(T3D_ERR_UNSUPPORTED, "cuDNN: filter dimension beyond 2^31");
    wdims[i] = (int)w->shape[i];
  }
  if ((s = cudnn_check(cudnnCreateTensorDescriptor(&p.xd), "descriptor")) != T3D_OK) goto fail;
  if ((s = cudnn_check(cudnnCreateTensorDescriptor(&p.yd), "descriptor")) != T3D_OK) goto fail;
  if ((s = cudnn_check(cudnnCreateFilterDescriptor(&p.wd), "descriptor")) != T3D_OK) goto fail;
  if ((s = cudnn_check(cudnnCreateConvolutionDescriptor(&p.cd), "descriptor")) != T3D_OK) goto fail;
  if ((s = tensor_desc(p.xd, fx->shape)) != T3D_OK) goto fail;
  if ((s = tensor_desc(p.yd, fy->shape)) != T3D_OK) goto fail;
  /* w is [out, in, k...] of the forward view in both cases: Conv3d w[Co, Ci], ConvTranspose3d
   * w[Ci, Co] is the forward conv from Co channels back to Ci */
  if ((s = cudnn_check(cudnnSetFilterNdDescriptor(p.wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 5, wdims), "filter")) != T3D_OK)
    goto fail;
  if ((s = cudnn_check(cudnnSetConvolutionNdDescriptor(p.cd, 3, padv, strv, dil, CUDNN_CROSS_CORRELATION,
                                                       CUDNN_DATA_FLOAT),
                       "convolution descriptor")) != T3D_OK)
    goto fail;
  if ((s = cudnn_check(cudnnSetConvolutionMathType(p.cd, math_of(c)), "math type")) != T3D_OK) goto fail;
  if ((s = cudnn_check(cudnnGetConvolutionNdForwardOutputDim(p.cd, p.xd, p.wd, 5, got), "output size")) != T3D_OK)
    goto fail;
  for (int i = 0; i < 5; i++)
    if (got[i] != fy->shape[i]) {
      s = t3d_error(T3D_ERR_INTERNAL, "cuDNN computes a different %s output size along axis %d (%d, want %lld)",
                    transpose ? "transposed convolution" : "convolution", i, got[i], (long long)fy->shape[i]);
      goto fail;
    }

  sw = search_workspace(c, &sw_bytes);
  {
    int n = 0, best = -1;
    if (!transpose) {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      s = cudnn_check(cudnnFindConvolutionForwardAlgorithmEx(c->cudnn, p.xd, x->data, p.wd, w->data, p.cd, p.yd, y->data,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, sw, sw_bytes),
                      "convolution algorithm search");
      if (s == T3D_OK && (best = pick_algo(c, &p, perf, n, sw_bytes)) >= 0) p.algo = (int)perf[best].algo;
    } else {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      s = cudnn_check(cudnnFindConvolutionBackwardDataAlgorithmEx(c->cudnn, p.wd, w->data, p.yd, x->data, p.cd, p.xd,
                                                                  y->data, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n,
                                                                  perf, sw, sw_bytes),
                      "transposed convolution algorithm search");
      if (s == T3D_OK && (best = pick_algo(c, &p, perf, n, sw_bytes)) >= 0) p.algo = (int)perf[best].algo;
    }
    if (s == T3D_OK && best < 0)
      s = t3d_error(T3D_ERR_BACKEND, "cuDNN found no %s algorithm for these shapes within a %zu MiB workspace",
                    transpose ? "transposed convolution" : "convolution", sw_bytes / MIB);
  }
  if (sw && sw != c->ws)
    cudaFree(sw);
  if (s != T3D_OK) goto fail;
  if ((s = ensure_workspace(c, p.ws_bytes)) != T3D_OK) goto fail;
  try {
    c->plans.push_back(p);
  } catch (const std::bad_alloc &) {
    s = t3d_error(T3D_ERR_NOMEM, "CUDA backend: out of memory for a convolution plan");
    goto fail;
  }
  *out = &c->plans.back();
  return T3D_OK;
fail:
  plan_destroy(&p);
  return s;
}

static t3d_status cuda_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                              const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  t3d_cuda_conv_plan *plan = NULL;
  const float one = 1.0f, zero = 0.0f;
  T3D_TRY(cancelled(be, "conv3d"));
  T3D_TRY(get_plan(c, false, x, w, y, p->stride, p->pad, &plan));
  T3D_TRY(cudnn_check(cudnnConvolutionForward(c->cudnn, &one, plan->xd, x->data, plan->wd, w->data, plan->cd,
                                              (cudnnConvolutionFwdAlgo_t)plan->algo, c->ws, plan->ws_bytes, &zero,
                                              plan->yd, y->data),
                      "convolution"));
  return t3d_cuda_bias_act(c->stream, (float *)y->data, bias ? (const float *)bias->data : NULL,
                           residual ? (const float *)residual->data : NULL, y->shape[0], y->shape[1],
                           y->shape[2] * y->shape[3] * y->shape[4], p->relu);
}

/* nn.ConvTranspose3d is cuDNN's backward data of the forward convolution y -> x; output_pad
 * only enlarges y, which the descriptors already carry. */
static t3d_status cuda_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                        const t3d_tensor *bias, const t3d_conv3d_transpose_params *p)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  t3d_cuda_conv_plan *plan = NULL;
  const float one = 1.0f, zero = 0.0f;
  T3D_TRY(cancelled(be, "conv3d_transpose"));
  T3D_TRY(get_plan(c, true, x, w, y, p->stride, p->pad, &plan));
  T3D_TRY(cudnn_check(cudnnConvolutionBackwardData(c->cudnn, &one, plan->wd, w->data, plan->yd, x->data, plan->cd,
                                                   (cudnnConvolutionBwdDataAlgo_t)plan->algo, c->ws, plan->ws_bytes,
                                                   &zero, plan->xd, y->data),
                      "transposed convolution"));
  return t3d_cuda_bias_act(c->stream, (float *)y->data, bias ? (const float *)bias->data : NULL, NULL, y->shape[0],
                           y->shape[1], y->shape[2] * y->shape[3] * y->shape[4], false);
}

/* ---- linear (cuBLAS) ---------------------------------------------------------------------------- */

/* Row-major y[M, Out] = x[M, In] w[Out, In]^T is column-major y^T = w^T-as-stored... i.e.
 * C(Out x M) = op_T(W: In x Out, ld In) * X(In x M, ld In), ldc Out. Bias by the epilogue. */
static t3d_status cuda_linear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                              const t3d_tensor *b)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  const int64_t in = w->shape[1], out = w->shape[0], M = t3d_tensor_numel(x) / in;
  const float one = 1.0f, zero = 0.0f;
  if (in > INT_MAX || out > INT_MAX || M > INT_MAX)
    return t3d_error(T3D_ERR_UNSUPPORTED, "CUDA linear: a dimension beyond 2^31 (%lld x %lld x %lld)", (long long)M,
                     (long long)in, (long long)out);
  T3D_TRY(cublas_check(cublas_api.gemm_ex(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)M, (int)in, &one, w->data,
                                    CUDA_R_32F, (int)in, x->data, CUDA_R_32F, (int)in, &zero, y->data, CUDA_R_32F,
                                    (int)out,
                                    c->precision == T3D_PRECISION_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                       : CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT),
                       "linear (GEMM)"));
  if (!b)
    return T3D_OK;
  /* bias[Out] broadcast over the M rows: the epilogue with N = M, C = Out, inner = 1 */
  return t3d_cuda_bias_act(c->stream, (float *)y->data, (const float *)b->data, NULL, M, out, 1, false);
}

/* ---- the other ops: thin wrappers around ops.cu ------------------------------------------------ */

static t3d_status cuda_relu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  return t3d_cuda_relu(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data, t3d_tensor_numel(x));
}

static t3d_status cuda_add(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b)
{
  return t3d_cuda_add(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)a->data, (const float *)b->data,
                      t3d_tensor_numel(a));
}

static t3d_status cuda_gelu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  return t3d_cuda_gelu(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data, t3d_tensor_numel(x));
}

static t3d_status cuda_softmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t n = x->shape[x->ndim - 1];
  return t3d_cuda_softmax(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data, t3d_tensor_numel(x) / n,
                          n);
}

static t3d_status cuda_layernorm(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *gamma,
                                 const t3d_tensor *beta, float eps)
{
  const int64_t n = x->shape[x->ndim - 1];
  return t3d_cuda_layernorm(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data,
                            gamma ? (const float *)gamma->data : NULL, beta ? (const float *)beta->data : NULL,
                            t3d_tensor_numel(x) / n, n, eps);
}

static t3d_status cuda_maxpool3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_pool3d_params *p)
{
  return t3d_cuda_maxpool3d(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data, x->shape, y->shape, p);
}

static t3d_status cuda_avgpool3d_global(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  return t3d_cuda_avgpool_global(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data,
                                 x->shape[0] * x->shape[1], x->shape[2] * x->shape[3] * x->shape[4]);
}

static t3d_status cuda_avgpool3d_adaptive(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  return t3d_cuda_avgpool_adaptive(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data, x->shape,
                                   y->shape);
}

static t3d_status cuda_resample_trilinear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  return t3d_cuda_resample_trilinear(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)x->data, x->shape,
                                     y->shape);
}

static t3d_status cuda_argmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t N = x->shape[0], C = x->shape[1];
  return t3d_cuda_argmax(t3d_cuda_of(be)->stream, (int32_t *)y->data, (const float *)x->data, N, C,
                         t3d_tensor_numel(x) / (N * C));
}

static t3d_status cuda_attention(t3d_backend *be, t3d_tensor *y, const t3d_tensor *q, const t3d_tensor *k,
                                 const t3d_tensor *v, const t3d_tensor *key_mask, int heads)
{
  return t3d_cuda_attention(t3d_cuda_of(be)->stream, (float *)y->data, (const float *)q->data, (const float *)k->data,
                            (const float *)v->data, key_mask ? (const int32_t *)key_mask->data : NULL, q->shape[0],
                            q->shape[1], k->shape[1], q->shape[2], heads);
}

/* Two strided copies: per batch entry, a's block then b's block. */
static t3d_status cuda_concat(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  const int64_t N = a->shape[0];
  const size_t ab = t3d_tensor_nbytes(a) / (size_t)N, bb = t3d_tensor_nbytes(b) / (size_t)N;
  char *yd = (char *)y->data;
  if (a->data != y->data) /* else a is y's head already (N = 1, see backend.h) */
    T3D_TRY(t3d_cuda_check(cudaMemcpy2DAsync(yd, ab + bb, a->data, ab, ab, (size_t)N, cudaMemcpyDeviceToDevice,
                                             c->stream),
                           "concat"));
  return t3d_cuda_check(cudaMemcpy2DAsync(yd + ab, ab + bb, b->data, bb, bb, (size_t)N, cudaMemcpyDeviceToDevice,
                                          c->stream),
                        "concat");
}

/* The id check needs the ids, which live on the device: the kernel records the first bad
 * position and this op waits for it (embedding runs once per text batch, not per layer). */
static t3d_status cuda_embedding(t3d_backend *be, t3d_tensor *y, const t3d_tensor *ids, const t3d_tensor *table)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  const int64_t n = t3d_tensor_numel(ids), V = table->shape[0], E = table->shape[1];
  unsigned long long bad = 0;
  int32_t id = 0;
  T3D_TRY(t3d_cuda_check(cudaMemsetAsync(c->flag, 0xff, sizeof *c->flag, c->stream), "embedding"));
  T3D_TRY(t3d_cuda_embedding(c->stream, (float *)y->data, (const int32_t *)ids->data, (const float *)table->data, n,
                             V, E, c->flag));
  T3D_TRY(t3d_cuda_check(cudaMemcpyAsync(&bad, c->flag, sizeof bad, cudaMemcpyDeviceToHost, c->stream), "embedding"));
  T3D_TRY(t3d_cuda_check(cudaStreamSynchronize(c->stream), "embedding"));
  if (bad == ULLONG_MAX)
    return T3D_OK;
  T3D_TRY(t3d_cuda_check(cudaMemcpy(&id, (const int32_t *)ids->data + bad, sizeof id, cudaMemcpyDeviceToHost),
                         "embedding"));
  char d[96];
  return t3d_error(T3D_ERR_INVALID_ARG, "embedding: id %d at flat position %llu of ids %s is outside the table's [0, %lld)",
                   (int)id, bad, t3d_tensor_describe(ids, d, sizeof d), (long long)V);
}

/* ---- create / destroy --------------------------------------------------------------------------- */

static void cuda_destroy(t3d_backend *be)
{
  t3d_cuda_impl *c = t3d_cuda_of(be);
  if (c) {
    if (c->stream)
      cudaStreamSynchronize(c->stream);
    for (auto &p : c->plans)
      plan_destroy(&p);
    if (c->ws) cudaFree(c->ws);
    if (c->flag) cudaFree(c->flag);
    if (c->cublas) cublas_api.destroy(c->cublas);
    if (c->cudnn) cudnnDestroy(c->cudnn);
    if (c->stream) cudaStreamDestroy(c->stream);
    cudaGetLastError();
    delete c;
  }
  free(be);
}

static const t3d_backend_ops cuda_ops = {
    "cuda",
    cuda_supports_op,
    cuda_destroy,
    cuda_alloc,
    cuda_free,
    cuda_upload,
    cuda_download,
    cuda_synchronize,
    cuda_conv3d,
    cuda_conv3d_transpose,
    cuda_relu,
    cuda_add,
    cuda_maxpool3d,
    cuda_avgpool3d_global,
    cuda_avgpool3d_adaptive,
    cuda_linear,
    cuda_layernorm,
    cuda_gelu,
    cuda_softmax,
    cuda_attention,
    cuda_embedding,
    cuda_concat,
    cuda_resample_trilinear,
    cuda_argmax,
};

/* A tiny relu through the whole path (upload, launch, download): a device whose architecture
 * the binary has no code for, or a broken driver, fails here instead of in the first forward. */
static t3d_status probe_launch(t3d_backend *be)
{
  const float in[4] = {-1.0f, 2.0f, -3.0f, 4.0f};
  float out[4] = {0, 0, 0, 0};
  void *d = NULL;
  t3d_status s;
  if ((s = cuda_alloc(be, &d, sizeof in)) != T3D_OK) return s;
  if ((s = cuda_upload(be, d, in, sizeof in)) == T3D_OK &&
      (s = t3d_cuda_relu(t3d_cuda_of(be)->stream, (float *)d, (const float *)d, 4)) == T3D_OK &&
      (s = cuda_download(be, out, d, sizeof out)) == T3D_OK &&
      !(out[0] == 0.0f && out[1] == 2.0f && out[2] == 0.0f && out[3] == 4.0f))
    s = t3d_error(T3D_ERR_BACKEND, "test kernel gave wrong results (%g %g %g %g)", (double)out[0], (double)out[1],
                  (double)out[2], (double)out[3]);
  cuda_free(be, d);
  return s;
}

static t3d_status forced(const char *mode, int device)
{
  if (strcmp(mode, "nodriver") == 0)
    return t3d_error(T3D_ERR_BACKEND, "CUDA driver not found (forced by T3D_CUDA_FORCE_FAIL=nodriver)");
  if (strcmp(mode, "nodevice") == 0)
    return t3d_error(T3D_ERR_BACKEND, "no CUDA device %d (forced by T3D_CUDA_FORCE_FAIL=nodevice)", device);
  if (strcmp(mode, "nomem") == 0)
    return t3d_error(T3D_ERR_NOMEM, "CUDA device %d has too little free memory (forced by T3D_CUDA_FORCE_FAIL=nomem)",
                     device);
  return t3d_error(T3D_ERR_BACKEND, "CUDA device %d: test kernel launch failed (forced by T3D_CUDA_FORCE_FAIL=launch)",
                   device);
}

extern "C" t3d_status t3d_backend_cuda_create(t3d_backend **out, const t3d_backend_cuda_params *params)
{
  t3d_backend_cuda_params p = params ? *params : t3d_backend_cuda_default_params();
  const char *mode = t3d_cuda_forced_failure();
  t3d_backend *be = NULL;
  t3d_cuda_impl *c = NULL;
  size_t free_b = 0, total_b = 0;
  int count = 0;
  t3d_status s = T3D_OK;

  if (!out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_cuda_create: out is NULL");
  *out = NULL;
  if (p.device < 0)
    return t3d_error(T3D_ERR_INVALID_ARG, "CUDA backend: device index %d is negative", p.device);
  if ((unsigned)p.precision > T3D_PRECISION_TF32)
    return t3d_error(T3D_ERR_INVALID_ARG, "CUDA backend: unknown precision %d", (int)p.precision);
  if (p.precision == T3D_PRECISION_AUTO) p.precision = T3D_PRECISION_FP32;
  if (p.precision == T3D_PRECISION_BF16)
    return t3d_error(T3D_ERR_UNSUPPORTED, "CUDA backend: bf16 is not implemented (use fp32 or tf32)");
  if (mode && strcmp(mode, "kernel") != 0) /* "kernel" is simulated by t3d_backend_create_for_device */
    return forced(mode, p.device);
  if (p.workspace_limit == 0) p.workspace_limit = (size_t)1 << 30;
  if (p.min_free_bytes == 0) p.min_free_bytes = 256 * MIB;

  T3D_TRY(t3d_cuda_check(cudaGetDeviceCount(&count), "device count"));
  if (p.device >= count)
    return t3d_error(T3D_ERR_BACKEND, "no CUDA device %d (%d found)", p.device, count);
  T3D_TRY(t3d_cuda_check(cudaSetDevice(p.device), "set device"));
  T3D_TRY(t3d_cuda_check(cudaMemGetInfo(&free_b, &total_b), "memory query"));
  if (free_b < p.min_free_bytes)
    return t3d_error(T3D_ERR_NOMEM, "CUDA device %d has %zu MiB free, fewer than the %zu MiB wanted", p.device,
                     free_b / MIB, p.min_free_bytes / MIB);

  be = (t3d_backend *)calloc(1, sizeof *be);
  c = new (std::nothrow) t3d_cuda_impl();
  if (!be || !c) {
    free(be);
    delete c;
    return t3d_error(T3D_ERR_NOMEM, "CUDA backend: out of memory");
  }
  be->ops = &cuda_ops;
  be->threads = 1;
  be->impl = c;
  c->device = p.device;
  c->precision = p.precision;
  c->workspace_limit = p.workspace_limit;
  if ((s = t3d_cuda_check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "stream")) != T3D_OK) goto fail;
  if ((s = cudnn_check(cudnnCreate(&c->cudnn), "create")) != T3D_OK) goto fail;
  if ((s = cudnn_check(cudnnSetStream(c->cudnn, c->stream), "set stream")) != T3D_OK) goto fail;
  if ((s = t3d_cuda_cublas_open()) != T3D_OK) goto fail;
  if ((s = cublas_check(cublas_api.create(&c->cublas), "create")) != T3D_OK) goto fail;
  if ((s = cublas_check(cublas_api.set_stream(c->cublas, c->stream), "set stream")) != T3D_OK) goto fail;
  if ((s = t3d_cuda_check(cudaMalloc((void **)&c->flag, sizeof *c->flag), "flag")) != T3D_OK) goto fail;
  if ((s = probe_launch(be)) != T3D_OK) goto fail;
  *out = be;
  return T3D_OK;
fail:
  t3d_error_prefix("CUDA device %d: ", p.device);
  cuda_destroy(be);
  return s;
}

extern "C" void t3d_backend_cuda_memory(const t3d_backend *be, size_t *current, size_t *peak)
{
  size_t now = 0, top = 0;
  if (be && be->ops == &cuda_ops && be->impl) {
    now = ((const t3d_cuda_impl *)be->impl)->mem_now;
    top = ((const t3d_cuda_impl *)be->impl)->mem_peak;
  }
  if (current) *current = now;
  if (peak) *peak = top;
}
