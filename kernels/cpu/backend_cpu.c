/* The CPU backend: its op table, host memory (64-byte aligned) and thread count. It is the
 * reference every other backend is tested against. Not the ops themselves (elementwise.c,
 * pool.c, linear.c, gemm.c, conv.c) and no shape checks (kernels/backend.c does those). */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "core/base/log.h"
#include "kernels/cpu/bf16.h"
#include "kernels/cpu/cpu.h"

#define CPU_MAX_THREADS 1024

static bool cpu_supports_op(const t3d_backend *be, t3d_op op, t3d_dtype dtype)
{
  (void)be;
  if (dtype == T3D_BF16) /* bf16 weights (kernels/cpu/bf16.h) */
    return op == T3D_OP_CONV3D || op == T3D_OP_CONV3D_TRANSPOSE || op == T3D_OP_LINEAR;
  return (unsigned)op < T3D_OP_COUNT && dtype == T3D_F32;
}

/* The weight's dtype picks the kernel: bf16 weights exist only on a bf16 backend. */
static t3d_status cpu_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                             const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  if (w->dtype == T3D_BF16) return t3d_cpu_conv3d_bf16(be, y, x, w, bias, residual, p);
  return t3d_cpu_conv3d(be, y, x, w, bias, residual, p);
}

static t3d_status cpu_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                       const t3d_tensor *bias, const t3d_conv3d_transpose_params *p)
{
  if (w->dtype == T3D_BF16) return t3d_cpu_conv3d_transpose_bf16(be, y, x, w, bias, p);
  return t3d_cpu_conv3d_transpose(be, y, x, w, bias, p);
}

static t3d_status cpu_linear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                             const t3d_tensor *b)
{
  if (w->dtype == T3D_BF16) return t3d_cpu_linear_bf16(be, y, x, w, b);
  return t3d_cpu_linear(be, y, x, w, b);
}

/* ---- kernel scratch: one idle block kept for the next call ------------------------------------
 * glibc serves every block over 32 MiB by a fresh mmap, so a kernel whose buffers are that large
 * paid a page fault per 4 KiB of zeroed pages on every call: the decoder's 640 -> 128 Winograd
 * layer at 20x28x28 (32 MiB) ran 133-141 ms without this block and 124-126 with it (bench-conv,
 * 2 threads, bound, interleaved). The block is 64-byte aligned behind a 64-byte header holding its
 * size; the larger of two idle blocks is kept, a larger request frees the idle one before it
 * allocates (never two resident for one call), and t3d_cpu_scratch_trim (a CPU backend's destroy)
 * frees it: between analyses a host process keeps at most the largest convolution's buffers. */
#define SCRATCH_HEAD 64
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *scratch_idle; /* a block's base (header), or NULL */

static size_t scratch_size(const unsigned char *base)
{
  size_t n;
  memcpy(&n, base, sizeof n);
  return n;
}

void *t3d_cpu_scratch_alloc(size_t bytes)
{
  unsigned char *base = NULL, *small = NULL;
  pthread_mutex_lock(&scratch_mu);
  if (scratch_idle && scratch_size(scratch_idle) >= bytes) base = scratch_idle;
  else small = scratch_idle; /* freed first: never two blocks resident for one */
  scratch_idle = NULL;
  pthread_mutex_unlock(&scratch_mu);
  t3d_aligned_free(small);
  if (!base) {
    if (bytes > SIZE_MAX - SCRATCH_HEAD) return NULL;
    base = t3d_aligned_alloc(bytes + SCRATCH_HEAD);
    if (!base) return NULL;
    memcpy(base, &bytes, sizeof bytes);
  }
  return base + SCRATCH_HEAD;
}

void t3d_cpu_scratch_free(void *p)
{
  if (!p) return;
  unsigned char *base = (unsigned char *)p - SCRATCH_HEAD, *drop = base;
  pthread_mutex_lock(&scratch_mu);
  if (!scratch_idle || scratch_size(scratch_idle) < scratch_size(base)) drop = scratch_idle, scratch_idle = base;
  pthread_mutex_unlock(&scratch_mu);
  t3d_aligned_free(drop);
}

void t3d_cpu_scratch_trim(void)
{
  pthread_mutex_lock(&scratch_mu);
  unsigned char *drop = scratch_idle;
  scratch_idle = NULL;
  pthread_mutex_unlock(&scratch_mu);
  t3d_aligned_free(drop);
}

static void cpu_destroy(t3d_backend *be)
{
  t3d_cpu_scratch_trim();
  free(be);
}

static t3d_status cpu_alloc(t3d_backend *be, void **dev, size_t bytes)
{
  (void)be;
  *dev = t3d_aligned_alloc(bytes);
  if (!*dev)
    return t3d_error(T3D_ERR_NOMEM, "CPU backend: out of memory allocating %zu bytes", bytes);
  return T3D_OK;
}

static void cpu_free(t3d_backend *be, void *dev)
{
  (void)be;
  t3d_aligned_free(dev);
}

static t3d_status cpu_copy(t3d_backend *be, void *dst, const void *src, size_t bytes)
{
  (void)be;
  if (bytes)
    memcpy(dst, src, bytes);
  return T3D_OK;
}

static t3d_status cpu_synchronize(t3d_backend *be)
{
  (void)be;
  return T3D_OK; /* every CPU op has finished when it returns */
}

static const t3d_backend_ops cpu_ops = {
    .name = "cpu",
    .supports_op = cpu_supports_op,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .synchronize = cpu_synchronize,
    .conv3d = cpu_conv3d,
    .conv3d_transpose = cpu_conv3d_transpose,
    .relu = t3d_cpu_relu,
    .add = t3d_cpu_add,
    .maxpool3d = t3d_cpu_maxpool3d,
    .avgpool3d_global = t3d_cpu_avgpool3d_global,
    .avgpool3d_adaptive = t3d_cpu_avgpool3d_adaptive,
    .linear = cpu_linear,
    .layernorm = t3d_cpu_layernorm,
    .gelu = t3d_cpu_gelu,
    .softmax = t3d_cpu_softmax,
    .attention = t3d_cpu_attention,
    .embedding = t3d_cpu_embedding,
    .concat = t3d_cpu_concat,
    .resample_trilinear = t3d_cpu_resample_trilinear,
    .argmax = t3d_cpu_argmax,
    .pack_weight = t3d_cpu_bf16_pack_weight,
    .pack_weight_f32 = t3d_cpu_pack_weight_f32,
};

/* AUTO -> BF16 where the CPU runs some op faster in bf16 (t3d_backend_cpu_bf16_auto_ops: which
 * ones becomes bf16_ops); an explicit BF16 where it does not runs every op in bf16 anyway: said
 * once per process, with how (the avx512f ISA at about fp32's speed, the portable one slower). */
static t3d_precision resolve_precision(t3d_precision want)
{
  static int told;
  if (want == T3D_PRECISION_AUTO) return t3d_backend_cpu_bf16_pays() ? T3D_PRECISION_BF16 : T3D_PRECISION_FP32;
  if (want != T3D_PRECISION_BF16 || t3d_backend_cpu_bf16_pays() || __atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
    return want;
  t3d_cpu_isa isa = t3d_cpu_bf16_isa();
  if (isa == T3D_CPU_ISA_AVX512F && t3d_backend_cpu_bf16_gain() > 0)
    T3D_WARN("bf16 requested: this CPU's AVX512-BF16 does %.2fx the multiply-adds per second of its fp32 FMAs, "
             "so the bf16 operands are multiplied on the FMAs: same numerics, no speed over fp32 here",
             t3d_backend_cpu_bf16_gain());
  else if (isa == T3D_CPU_ISA_AVX512F)
    T3D_WARN("bf16 requested: this CPU has no AVX512-BF16, so the bf16 operands are multiplied on fp32 AVX-512 "
             "FMAs: same numerics, no speed over fp32 here");
  else if (!t3d_backend_cpu_bf16_native())
    T3D_WARN("bf16 requested, but this CPU has neither AVX512-BF16 nor AMX: running the portable %s bf16 path "
             "(same numerics, slower than fp32)",
             t3d_backend_cpu_bf16_isa());
  else
    T3D_WARN("bf16 requested: this CPU's AVX512-BF16 does %.2fx the multiply-adds per second of its fp32 FMAs, "
             "so bf16 runs slower than fp32 here (same numerics)",
             t3d_backend_cpu_bf16_gain());
  return want;
}

/* Online cores this process may run on: a container or taskset may allow fewer than the host has. */
static long usable_cores(void)
{
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  return sysconf(_SC_NPROCESSORS_ONLN);
}

t3d_status t3d_backend_cpu_create(t3d_backend **out, const t3d_backend_params *params)
{
  t3d_backend_params p = params ? *params : t3d_backend_default_params();
  t3d_backend *be;

  if (!out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_cpu_create: out is NULL");
  *out = NULL;
  if (p.threads < 0 || p.threads > CPU_MAX_THREADS)
    return t3d_error(T3D_ERR_INVALID_ARG, "CPU backend: threads must be 0 (all cores) to %d, got %d",
                     CPU_MAX_THREADS, p.threads);
  if ((unsigned)p.precision > T3D_PRECISION_TF32)
    return t3d_error(T3D_ERR_INVALID_ARG, "CPU backend: unknown precision %d", (int)p.precision);
  if (p.precision == T3D_PRECISION_TF32) p.precision = T3D_PRECISION_FP32; /* a GPU mode: fp32 here */
  if (p.threads == 0) {
    long n = usable_cores();
    p.threads = n < 1 ? 1 : n > CPU_MAX_THREADS ? CPU_MAX_THREADS : (int)n;
  }
  be = calloc(1, sizeof *be);
  if (!be)
    return t3d_error(T3D_ERR_NOMEM, "CPU backend: out of memory");
  be->ops = &cpu_ops;
  be->threads = p.threads;
  be->impl = NULL;
  be->precision = resolve_precision(p.precision);
  be->bf16_ops = be->precision != T3D_PRECISION_BF16 ? 0
                 : p.precision == T3D_PRECISION_AUTO ? t3d_backend_cpu_bf16_auto_ops()
                                                     : T3D_BF16_OPS_ALL;
#ifdef HAVE_OPENBLAS
  /* Process-wide: OpenBLAS stays single-threaded and t3d_cpu_sgemm splits GEMMs over the
   * backend's OpenMP threads instead (see gemm.c for why). */
  openblas_set_num_threads(1);
#endif
  *out = be;
  return T3D_OK;
}
