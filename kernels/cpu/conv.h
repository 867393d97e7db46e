/* CPU 3-D convolution and transposed convolution: the fast GEMM-based kernels, the naive
 * direct-loop references they are tested against, and t3d's own sgemm (used when configured
 * --without-openblas). Private to kernels/cpu: the model reaches these through the op table. */
#ifndef T3D_KERNELS_CPU_CONV_H
#define T3D_KERNELS_CPU_CONV_H

#include <stdbool.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* nn.Conv3d (groups=1, dilation=1) with a fused epilogue:
 *   y[N,Co,Do,Ho,Wo] = relu?(conv(x[N,Ci,D,H,W], w[Co,Ci,kD,kH,kW]) + bias[Co] + residual)
 * bias and residual (shape of y) may be NULL. Shapes are validated by t3d_op_conv3d; here
 * they are only asserted. Uses be->threads threads. Extra memory: one column tile per thread
 * (t3d_cpu_conv3d_scratch_bytes). Fails only with T3D_ERR_NOMEM. */
t3d_status t3d_cpu_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p);

/* nn.ConvTranspose3d (groups=1, dilation=1): x[N,Ci,D,H,W], w[Ci,Co,kD,kH,kW] -> y[N,Co,Do,Ho,Wo]
 * with Do = (D-1)*stride - 2*pad + kD + output_pad; bias[Co] may be NULL. */
t3d_status t3d_cpu_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                    const t3d_tensor *bias, const t3d_conv3d_transpose_params *p);

/* The references: direct loops over every output and every tap, double accumulation,
 * single-threaded. Slow on purpose; the fast kernels above are tested against them. */
t3d_status t3d_cpu_conv3d_ref(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                              const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p);
t3d_status t3d_cpu_conv3d_transpose_ref(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                        const t3d_tensor *bias, const t3d_conv3d_transpose_params *p);

/* Peak extra memory (bytes) t3d_cpu_conv3d allocates for these shapes and thread count. */
size_t t3d_cpu_conv3d_scratch_bytes(const t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                    const t3d_conv3d_params *p, int threads);

/* t3d's own single-threaded sgemm, row-major:
 *   C[M,N] = A[M,K] B[K,N] + (beta ? C : 0)     (beta is 0 or 1)
 * where A is read as a[i*lda + k] (trans_a false) or a[k*lda + i] (trans_a true), and
 * B as b[k*ldb + j]. ws: caller's scratch of t3d_cpu_sgemm_own_ws_floats(n) floats, 64-byte
 * aligned (A and B are packed there into cache-sized panels). AVX-512/AVX2 micro-kernels are
 * chosen at run time. The conv kernels use it when built --without-openblas. */
void t3d_cpu_sgemm_own(bool trans_a, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                       float beta, float *c, int ldc, float *ws);
size_t t3d_cpu_sgemm_own_ws_floats(int n);
/* Test-only: 0 picks the micro-kernel by CPU (default); 1 plain C, 2 AVX2+FMA, 3 AVX-512
 * (a choice the CPU lacks falls back to the next one down). Returns the previous setting. */
int t3d_cpu_sgemm_own_force_isa(int isa);

/* Test-only: which implementation t3d_cpu_conv3d uses. AUTO: the AVX-512 packed kernel when
 * the CPU has AVX-512F, else im2col tiles through OpenBLAS (or our sgemm without it). A path
 * the build or CPU lacks falls back as AUTO would. Transposed conv knows only BLAS/OWN_GEMM.
 * Returns the previous setting. Not thread-safe. */
typedef enum {
  T3D_CPU_CONV_AUTO = 0,
  T3D_CPU_CONV_AVX512, /* packed weights, im2col straight into GEMM panels, fused epilogue */
  T3D_CPU_CONV_BLAS,   /* im2col tiles + OpenBLAS sgemm, epilogue per tile */
  T3D_CPU_CONV_OWN_GEMM /* im2col tiles + t3d_cpu_sgemm_own */
} t3d_cpu_conv_path;
t3d_cpu_conv_path t3d_cpu_conv_force_path(t3d_cpu_conv_path path);

/* Test-only: the per-thread column tile budget in floats (0: the default), so small shapes
 * exercise every tiling path. Returns the previous budget. Not thread-safe. */
size_t t3d_cpu_conv_set_col_budget(size_t floats);

#ifdef __cplusplus
}
#endif
#endif
