/* Compute backend interface: one op table per backend (CPU, CUDA), asked with supports_op.
 * Model code calls these ops and never branches on the device. Kernels know tensors and ops,
 * not models. All ops take outputs first, then inputs, then parameters; every tensor passed to
 * an op lives in that backend's memory (t3d_backend_alloc / upload / download).
 *
 * Layouts (row-major, fp32 unless stated):
 *   volumes  x[N, C, D, H, W]           conv weights w[Cout, Cin, kD, kH, kW]
 *   transposed conv weights w[Cin, Cout, kD, kH, kW] (PyTorch ConvTranspose3d layout)
 *   sequences x[B, L, E]                linear weights w[Out, In] (PyTorch nn.Linear layout)
 */
#ifndef T3D_BACKEND_H
#define T3D_BACKEND_H

#include <stdbool.h>

#include "core/base/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  T3D_OP_CONV3D = 0,          /* nn.Conv3d, groups=1, dilation=1; fused bias/residual/ReLU */
  T3D_OP_CONV3D_TRANSPOSE,    /* nn.ConvTranspose3d, groups=1, dilation=1 */
  T3D_OP_RELU,                /* F.relu */
  T3D_OP_ADD,                 /* a + b, same shape */
  T3D_OP_MAXPOOL3D,           /* nn.MaxPool3d(ceil_mode=False), -inf padding */
  T3D_OP_AVGPOOL3D_GLOBAL,    /* x.mean((2,3,4)) -> [N, C] */
  T3D_OP_AVGPOOL3D_ADAPTIVE,  /* nn.AdaptiveAvgPool3d */
  T3D_OP_LINEAR,              /* F.linear: y = x w^T + b */
  T3D_OP_LAYERNORM,           /* F.layer_norm over the last dimension */
  T3D_OP_GELU,                /* F.gelu (exact, erf) */
  T3D_OP_SOFTMAX,             /* F.softmax over the last dimension */
  T3D_OP_ATTENTION,           /* multi-head scaled dot-product attention, key padding mask */
  T3D_OP_EMBEDDING,           /* F.embedding */
  T3D_OP_CONCAT,              /* torch.cat(dim=1) of two tensors */
  T3D_OP_RESAMPLE_TRILINEAR,  /* F.interpolate(mode="trilinear", align_corners=False, size=) */
  T3D_OP_ARGMAX,              /* x.argmax(1) -> i32 */
  T3D_OP_COUNT
} t3d_op;

const char *t3d_op_name(t3d_op op);

typedef struct {
  int stride[3];  /* d, h, w */
  int pad[3];     /* symmetric zero padding, d, h, w */
  bool relu;      /* apply ReLU after bias (and residual) */
  /* The output feeds only results that tolerate a few times bf16's rounding error (the
   * segmentation decoder: labels), so the CPU bf16 path may run Winograd there (kernels/cpu/
   * bf16.h); fp32 and CUDA ignore it. false: the tightest algorithm of the precision. */
  bool tolerant;
} t3d_conv3d_params;

typedef struct {
  int stride[3];
  int pad[3];
  int output_pad[3]; /* PyTorch output_padding */
} t3d_conv3d_transpose_params;

typedef struct {
  int kernel[3];
  int stride[3];
  int pad[3];
} t3d_pool3d_params;

typedef struct t3d_backend t3d_backend;

/* The op table. Every op returns T3D_OK or a status with t3d_error detail; shapes are checked
 * by the t3d_op_* wrappers below before the table is called, so entries may assume them. */
typedef struct t3d_backend_ops {
  const char *name;
  bool (*supports_op)(const t3d_backend *be, t3d_op op, t3d_dtype dtype);
  void (*destroy)(t3d_backend *be);

  /* memory: device pointers are opaque to the caller */
  t3d_status (*alloc)(t3d_backend *be, void **dev, size_t bytes);
  void (*free)(t3d_backend *be, void *dev);
  t3d_status (*upload)(t3d_backend *be, void *dev_dst, const void *host_src, size_t bytes);
  t3d_status (*download)(t3d_backend *be, void *host_dst, const void *dev_src, size_t bytes);
  t3d_status (*synchronize)(t3d_backend *be);

  /* y[N,Co,Do,Ho,Wo] = relu?(conv(x, w) + bias[Co] + residual); bias, residual may be NULL */
  t3d_status (*conv3d)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                       const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p);
  t3d_status (*conv3d_transpose)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                 const t3d_tensor *bias, const t3d_conv3d_transpose_params *p);
  t3d_status (*relu)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);                  /* y may be x */
  t3d_status (*add)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b); /* y may be a or b */
  t3d_status (*maxpool3d)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_pool3d_params *p);
  t3d_status (*avgpool3d_global)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);        /* y[N,C] */
  t3d_status (*avgpool3d_adaptive)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);      /* y[N,C,od,oh,ow] */
  /* y[..., Out] = x[..., In] w[Out, In]^T + b[Out]; b may be NULL */
  t3d_status (*linear)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                       const t3d_tensor *b);
  /* gamma, beta [E] or NULL (1 and 0); biased variance; y may be x */
  t3d_status (*layernorm)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *gamma,
                          const t3d_tensor *beta, float eps);
  t3d_status (*gelu)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);                  /* y may be x */
  /* y may be x; a row of all -inf (or holding a NaN) gives NaN, as torch.softmax */
  t3d_status (*softmax)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
  /* q[B,Lq,H*Dh], k,v[B,Lk,H*Dh] -> y[B,Lq,H*Dh]; key_mask i32[B,Lk] (nonzero = attend,
   * HF attention_mask convention) or NULL; scale 1/sqrt(Dh); no causal mask. Masked keys get
   * -inf before the softmax; a batch entry whose keys are all masked gives y = 0 there (torch
   * would give NaN, HF's additive mask a plain mean of v). */
  t3d_status (*attention)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *q, const t3d_tensor *k,
                          const t3d_tensor *v, const t3d_tensor *key_mask, int heads);
  /* ids i32[...] into table[V, E] -> y[..., E]; an id outside [0, V) is T3D_ERR_INVALID_ARG */
  t3d_status (*embedding)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *ids, const t3d_tensor *table);
  /* y[N, Ca+Cb, ...] = cat(a[N,Ca,...], b[N,Cb,...], dim=1); with N = 1, a may be y's own head
   * (a->data == y->data: a producer wrote it in place, as the decoder's transposed convolution
   * does), and then only b is copied */
  t3d_status (*concat)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b);
  /* x[N,C,D,H,W] -> y[N,C,Do,Ho,Wo], sizes taken from y */
  t3d_status (*resample_trilinear)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
  /* x[N,C,...] -> y i32[N,...]: index of the largest channel, first on ties; a NaN counts as
   * the largest (the first NaN wins), as torch.argmax */
  t3d_status (*argmax)(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);

  /* Optional (NULL: weights stay f32): host f32 weights of op (conv3d, conv3d_transpose, linear)
   * into dev as T3D_BF16 in the backend's own layout; called by t3d_backend_weight_upload when
   * the backend's precision is bf16. */
  t3d_status (*pack_weight)(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op);
  /* Optional (NULL: f32 weights are uploaded as they are): on an fp32 backend, host f32 weights
   * of op into dev as T3D_F32 with layout T3D_LAYOUT_PACKED, when the backend's kernel for op
   * reads that layout faster; *packed = false (dev untouched) where it keeps the plain layout. */
  t3d_status (*pack_weight_f32)(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op, bool *packed);
} t3d_backend_ops;

/* Arithmetic of the convolutions and GEMMs (conv3d, conv3d_transpose, linear); every other op is
 * fp32 always. FP32 is the reference. BF16: weights and activations rounded to bf16, products
 * accumulated in fp32 (kernels/cpu/bf16.h states the tolerances). AUTO: BF16 for the ops the CPU
 * was measured to run faster in bf16 (on AMX the linear layers; on AVX512-BF16 all three where
 * vdpbf16ps outruns fp32 FMAs, which t3d_backend_cpu_bf16_gain measures; see
 * t3d_backend_cpu_bf16_auto_ops), FP32 for the rest and elsewhere (and on a GPU). TF32: the GPU's TF32
 * tensor cores for fp32 data (CUDA backend only; the CPU backend computes it as FP32). */
typedef enum { T3D_PRECISION_FP32 = 0, T3D_PRECISION_BF16, T3D_PRECISION_AUTO, T3D_PRECISION_TF32 } t3d_precision;
const char *t3d_precision_name(t3d_precision p); /* "fp32", "bf16", "auto", "tf32" */
/* Parses "fp32", "bf16", "auto", "tf32"; false (and *out untouched) otherwise. */
bool t3d_precision_from_name(const char *name, t3d_precision *out);
/* The same as a status: T3D_ERR_INVALID_ARG naming the known values when name is unknown. */
t3d_status t3d_precision_parse(const char *s, t3d_precision *out);

struct t3d_backend {
  const t3d_backend_ops *ops;
  int threads; /* worker threads the backend uses (CPU) */
  void *impl;  /* backend-private state */
  /* Cancellation of long ops (NULL = none): model code points it at the caller's flag for the
   * duration of a forward; ops that poll it (the CPU convolutions, between their work items)
   * stop early when *cancel != 0 and return T3D_ERR_CANCELLED, leaving y unspecified. */
  const volatile int *cancel;
  /* What conv3d, conv3d_transpose and linear compute in: FP32 or BF16 (never AUTO), fixed at
   * creation from t3d_backend_params.precision. Model code does not branch on it: it uploads
   * those ops' weights with t3d_backend_weight_upload. */
  t3d_precision precision;
  /* Under BF16, the ops whose weights t3d_backend_weight_upload makes bf16 (bits 1u << op of
   * conv3d, conv3d_transpose, linear); the others keep fp32 weights, so their fp32 kernels run.
   * Explicit BF16: all three; AUTO: those the CPU was measured to run faster in bf16
   * (t3d_backend_cpu_bf16_auto_ops). 0 under FP32. */
  unsigned bf16_ops;
};

typedef struct {
  int threads; /* 0: all online cores */
  t3d_precision precision; /* default FP32 (the reference); commands default to AUTO */
} t3d_backend_params;
t3d_backend_params t3d_backend_default_params(void);

/* The CPU backend: reference for every other backend. *out is the caller's. Ops run OpenMP
 * loops on params->threads threads (0: every core the process may run on). With OpenBLAS it sets OpenBLAS's
 * process-wide thread count to 1: GEMMs are split over the backend's own OpenMP threads, so one
 * thread pool runs everything (two spinning pools measured 5x+ slower on a loaded 2-core box). */
t3d_status t3d_backend_cpu_create(t3d_backend **out, const t3d_backend_params *params);
void t3d_backend_free(t3d_backend *be); /* NULL is a no-op */
/* The ISA the CPU backend's bf16 path runs on here: "amx", "avx512bf16" (native), "avx512f" (bf16
 * operands on fp32 FMAs), "avx2" or "scalar" (the portable path, slower than fp32);
 * T3D_CPU_ISA=scalar|avx2|avx512f|avx512bf16|amx caps it. */
const char *t3d_backend_cpu_bf16_isa(void);
bool t3d_backend_cpu_bf16_native(void);
/* How that ISA computes: "native" (amx, avx512bf16), "fp32 FMAs" (avx512f: the bf16 operands on
 * fp32 FMAs, where vdpbf16ps is slower than them or absent) or "portable" (avx2, scalar). */
const char *t3d_backend_cpu_bf16_engine(void);
/* On AVX512-BF16 without AMX: vdpbf16ps's multiply-add rate over fp32 FMAs', measured once per
 * process (~1 ms; kernels/cpu/bf16_isa.c); 0 on other ISAs. */
double t3d_backend_cpu_bf16_gain(void);
/* The ops AUTO runs in bf16 here (struct t3d_backend.bf16_ops; 0: AUTO is FP32): on AMX the
 * linear layers alone (measured on a 16-core Xeon with AMX, 16 threads: the text tower 60 ms in
 * fp32 against 33 in bf16, but the encoder 305 against 419 and encoder + segmentation 618 against
 * 1626: t3d's bf16 convolutions do not yet beat its fp32 Winograd and packed ones there); on
 * AVX512-BF16 all three where the gain is at least 1.25; else none. */
unsigned t3d_backend_cpu_bf16_auto_ops(void);
/* Whether AUTO runs anything in bf16 here (t3d_backend_cpu_bf16_auto_ops() != 0). */
bool t3d_backend_cpu_bf16_pays(void);
/* The three ops with a bf16 form, as a bf16_ops mask. */
#define T3D_BF16_OPS_ALL ((1u << T3D_OP_CONV3D) | (1u << T3D_OP_CONV3D_TRANSPOSE) | (1u << T3D_OP_LINEAR))

/* The CUDA backend (kernels/cuda/): every op on one GPU, cuDNN for the convolutions (algorithm
 * found by measurement once per shape and cached), cuBLAS for linear, t3d's own kernels for the
 * rest; all work is queued on one stream, so ops return before the GPU has finished and only
 * download and synchronize wait. Precision: FP32 keeps every product in fp32 (no tensor-core
 * TF32), so results match the CPU backend to ~1e-5 relative; TF32 lets cuDNN and cuBLAS use
 * TF32 tensor cores (10-bit mantissa products: ~1e-3 relative per convolution). BF16 is not
 * implemented (T3D_ERR_UNSUPPORTED). In a build without CUDA, create is T3D_ERR_UNSUPPORTED.
 * Failures at create (no driver, no device, too little free memory, a kernel that does not
 * launch) return T3D_ERR_BACKEND / T3D_ERR_NOMEM with the reason in t3d_error_detail(); the
 * environment variable T3D_CUDA_FORCE_FAIL=nodriver|nodevice|nomem|launch forces each of them,
 * and =kernel makes t3d_backend_create_for_device give a "cuda" backend whose convolutions fail
 * (tests of the CPU fallback on machines without a GPU). *out is the caller's. */
typedef struct {
  int device;               /* CUDA device index */
  t3d_precision precision;  /* FP32 (default; AUTO is FP32) or TF32; BF16 is T3D_ERR_UNSUPPORTED */
  size_t workspace_limit;   /* most bytes a convolution algorithm may use as workspace (0: 1 GiB) */
  size_t min_free_bytes;    /* refuse the device with less free memory than this (0: 256 MiB) */
} t3d_backend_cuda_params;
t3d_backend_cuda_params t3d_backend_cuda_default_params(void);
t3d_status t3d_backend_cuda_create(t3d_backend **out, const t3d_backend_cuda_params *params);
/* Bytes of device memory the backend holds now and at most so far (allocations, workspaces,
 * library handles excluded); 0 and 0 for a backend that is not CUDA. */
void t3d_backend_cuda_memory(const t3d_backend *be, size_t *current, size_t *peak);

/* The backend for a device string, as `--device` takes it: "auto" (NULL too), "cpu", "cuda" or
 * "cuda:N" ("gpu" is "cuda", the word of the viewer plugin's preferences, which it passes to its
 * worker as $T3D_DEVICE). "auto" takes CUDA device 0 when t3d has CUDA and a usable GPU exists, else the CPU;
 * "cuda[:N]" wants that GPU. When the CUDA backend cannot be made (no driver, no device, too
 * little memory, a failed create or launch) the CPU backend is made instead and note (when
 * note_size > 0) receives one sentence saying why, for the caller to show once; note is "" when
 * nothing fell back. "auto" on a machine without a GPU (or a build without CUDA) is not a
 * fallback: the CPU is what was asked for, and note stays "". A device string that does not
 * parse is T3D_ERR_INVALID_ARG. cpu and cuda may be NULL (defaults). *out is the caller's. */
t3d_status t3d_backend_create_for_device(t3d_backend **out, const char *device, const t3d_backend_params *cpu,
                                         const t3d_backend_cuda_params *cuda, char *note, size_t note_size);

/* What the CPU backend's fp32 convolutions run on this machine, for benchmark tables, e.g.
 * "avx512f: t3d packed conv kernels" or "avx2+fma: im2col + OpenBLAS sgemm (Zen)". Static storage. */
const char *t3d_backend_cpu_kernels(void);

bool t3d_backend_supports(const t3d_backend *be, t3d_op op, t3d_dtype dtype);

/* A tensor whose data is backend memory (not initialised; owned stays false, so never pass it
 * to t3d_tensor_free); free with t3d_backend_tensor_free, which NULLs data. upload/download need
 * the same dtype and shape on both sides (T3D_ERR_SHAPE otherwise). */
t3d_status t3d_backend_tensor_new(t3d_backend *be, t3d_tensor *out, t3d_dtype dtype, int ndim, const int64_t *shape);
void t3d_backend_tensor_free(t3d_backend *be, t3d_tensor *t);
t3d_status t3d_backend_upload(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host);
t3d_status t3d_backend_download(t3d_backend *be, t3d_tensor *host, const t3d_tensor *dev);
/* Weights of op (T3D_OP_CONV3D, T3D_OP_CONV3D_TRANSPOSE or T3D_OP_LINEAR) into a new backend
 * tensor *dev (t3d_backend_tensor_free), converted and laid out once here for the backend's
 * precision: with BF16 (and a backend that packs) dev is T3D_BF16 with host's shape but the
 * backend's own byte layout, so pass it only to that op, never to download; else a plain f32
 * copy. host: f32 host memory of the op's weight shape. */
t3d_status t3d_backend_weight_upload(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op);

/* Checked op wrappers: validate dtypes and shapes (clear T3D_ERR_SHAPE message naming the
 * op and both shapes), ask supports_op, then call the table. Model code uses these.
 * Common rules, checked here so that table entries may assume them:
 *  - tensors are f32 except ids, key_mask (i32 in) and argmax's y (i32 out), and the weights w
 *    of conv3d, conv3d_transpose and linear, which may be BF16 from t3d_backend_weight_upload;
 *  - no dimension is 0 (empty tensors are T3D_ERR_SHAPE), data is not NULL;
 *  - y may alias an input only where the table says so (relu, add, gelu, softmax, layernorm);
 *    elsewhere y sharing an input's data is T3D_ERR_INVALID_ARG;
 *  - stride >= 1, pad >= 0, kernel >= 1, output_pad < stride, maxpool pad <= kernel / 2 (as
 *    PyTorch), heads >= 1 dividing E, eps finite and >= 0: else T3D_ERR_INVALID_ARG;
 *  - a backend without the op, or saying no in supports_op, is T3D_ERR_UNSUPPORTED. */
t3d_status t3d_op_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                         const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p);
t3d_status t3d_op_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                   const t3d_tensor *bias, const t3d_conv3d_transpose_params *p);
t3d_status t3d_op_relu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_op_add(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b);
t3d_status t3d_op_maxpool3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_pool3d_params *p);
t3d_status t3d_op_avgpool3d_global(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_op_avgpool3d_adaptive(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_op_linear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w, const t3d_tensor *b);
t3d_status t3d_op_layernorm(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *gamma,
                            const t3d_tensor *beta, float eps);
t3d_status t3d_op_gelu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_op_softmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_op_attention(t3d_backend *be, t3d_tensor *y, const t3d_tensor *q, const t3d_tensor *k,
                            const t3d_tensor *v, const t3d_tensor *key_mask, int heads);
t3d_status t3d_op_embedding(t3d_backend *be, t3d_tensor *y, const t3d_tensor *ids, const t3d_tensor *table);
t3d_status t3d_op_concat(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b);
t3d_status t3d_op_resample_trilinear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_op_argmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);

/* Output extent of a convolution / pooling / transposed convolution along one axis; 0 when the
 * window does not fit or a parameter is out of range (stride < 1, pad < 0, output_pad >= stride). */
int64_t t3d_conv_out_size(int64_t in, int kernel, int stride, int pad);
int64_t t3d_conv_transpose_out_size(int64_t in, int kernel, int stride, int pad, int output_pad);

/* Host-side, at model load: folds eval-mode BatchNorm (gamma, beta, running mean/var, eps)
 * into the preceding convolution. w[Cout, ...] is scaled in place; *bias (f32[Cout]) is
 * created when NULL (the caller's, t3d_tensor_free), else updated. All tensors host f32.
 * A running var + eps <= 0 is T3D_ERR_INVALID_ARG; on any failure w and *bias are unchanged. */
t3d_status t3d_fold_batchnorm(t3d_tensor *w, t3d_tensor **bias, const t3d_tensor *gamma, const t3d_tensor *beta,
                              const t3d_tensor *mean, const t3d_tensor *var, float eps);

#ifdef __cplusplus
}
#endif
#endif
