/* CPU 3-D convolution and transposed convolution: the fast GEMM-based kernels, the naive
 * direct-loop references they are tested against, and test hooks. Private to kernels/cpu: the
 * model reaches the convolutions through the op table (kernels/cpu/cpu.h declares them). */
#ifndef T3D_KERNELS_CPU_CONV_H
#define T3D_KERNELS_CPU_CONV_H

#include <stdbool.h>

#include "kernels/cpu/cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* t3d_cpu_conv3d and t3d_cpu_conv3d_transpose (kernels/cpu/conv.c) are declared in cpu.h:
 *   y[N,Co,Do,Ho,Wo] = relu?(conv(x[N,Ci,D,H,W], w[Co,Ci,kD,kH,kW]) + bias[Co] + residual)
 *   nn.ConvTranspose3d: x[N,Ci,D,H,W], w[Ci,Co,kD,kH,kW] -> y[N,Co,Do,Ho,Wo]
 * Shapes are validated by the t3d_op_* wrappers and only asserted there; be->threads threads
 * (call from outside a parallel region); extra memory is a few cache-sized tiles per thread
 * (t3d_cpu_conv3d_scratch_bytes: under 1 MiB for every ResNet-50 layer at 2 threads); they
 * fail only with T3D_ERR_NOMEM. */

/* The references: direct loops over every output and every tap, double accumulation,
 * single-threaded. Slow on purpose; the fast kernels are tested against them. */
t3d_status t3d_cpu_conv3d_ref(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                              const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p);
t3d_status t3d_cpu_conv3d_transpose_ref(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                        const t3d_tensor *bias, const t3d_conv3d_transpose_params *p);

/* Peak extra memory (bytes) t3d_cpu_conv3d allocates for these shapes and thread count. */
size_t t3d_cpu_conv3d_scratch_bytes(const t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                    const t3d_conv3d_params *p, int threads);

/* Test-only: which implementation t3d_cpu_conv3d uses. AUTO: with AVX2 + FMA, Winograd
 * F(2x2x2, 3x3x3) for 3x3x3 stride-1 padding-1 layers of at least 8192 outputs and 8 channels
 * (conv.c wino_wins); otherwise the packed register-tile path with AVX-512 kernels when the CPU
 * has AVX-512F; with AVX2 + FMA only, the direct kernel for
 * 3x3x3 "same" layers with few output channels, the row-pointer tiles for other same-size layers
 * and for wide width-stride-2 ones, else im2col tiles through OpenBLAS (t3d_cpu_sgemm_blocked
 * without it). A path the build or CPU lacks falls back as AUTO would. Transposed conv knows only
 * BLAS / OWN_GEMM. Returns the previous setting. Not thread-safe. */
typedef enum {
  T3D_CPU_CONV_AUTO = 0,
  T3D_CPU_CONV_AVX512, /* B strips built straight from x, register tiles, fused epilogue */
  T3D_CPU_CONV_BLAS,   /* im2col tiles + OpenBLAS sgemm, epilogue per tile */
  T3D_CPU_CONV_OWN_GEMM, /* im2col tiles + t3d_cpu_sgemm_blocked (t3d's own GEMM) */
  T3D_CPU_CONV_AVX2,    /* the packed path with AVX2 + FMA kernels (4 x 24 register tiles) */
  T3D_CPU_CONV_DIRECT,  /* 3x3x3 stride 1 padding 1 only: conv_direct.c (else as AUTO) */
  T3D_CPU_CONV_ROWS_S2, /* width stride 2 only: AVX2 phase rows + row-pointer tiles (else as AUTO) */
  T3D_CPU_CONV_WINOGRAD, /* 3x3x3 stride 1 padding 1 only: conv_wino.c (else as AUTO) */
  T3D_CPU_CONV_WINOGRAD4 /* the same by F(4x4x4, 3x3x3), AVX-512 only (else as AUTO) */
} t3d_cpu_conv_path;
t3d_cpu_conv_path t3d_cpu_conv_force_path(t3d_cpu_conv_path path);

/* The direct AVX2 + FMA 3x3x3 "same" convolution (conv_direct.c): y = relu?(conv(x, w) + bias +
 * res) for stride 1, padding 1, x[N,Ci,D,H,W] -> y[N,Co,D,H,W], threads OpenMP threads; bias and
 * res may be NULL. Built for x86-64 only (GCC / Clang) and to be called on CPUs with AVX2 and FMA:
 * t3d_cpu_conv3d picks it by itself (see use_direct in conv.c). T3D_ERR_NOMEM or
 * T3D_ERR_CANCELLED otherwise. */
t3d_status t3d_cpu_conv3d_direct3(int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                  float *y, const float *x, const float *w, const float *bias, const float *res,
                                  bool relu, const volatile int *cancel);

/* The AVX2 + FMA Winograd F(2x2x2, 3x3x3) convolution (conv_wino.c), same contract as
 * t3d_cpu_conv3d_direct3; t3d_cpu_conv3d picks it by itself (see use_wino in conv.c). Its error
 * bound is a small multiple of the direct sum's (tests/test-conv.c). scratch_floats: the floats
 * it allocates for these shapes and thread count. */
t3d_status t3d_cpu_conv3d_wino3(int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                float *y, const float *x, const float *w, const float *bias, const float *res,
                                bool relu, const volatile int *cancel);
size_t t3d_cpu_conv3d_wino3_scratch_floats(int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                           int threads);
/* F(4x4x4, 3x3x3) (conv_wino.c), same contract; only where t3d_cpu_wino_avx512 (AVX-512 and
 * the width cap at 512). */
t3d_status t3d_cpu_conv3d_wino4(int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                float *y, const float *x, const float *w, const float *bias, const float *res,
                                bool relu, const volatile int *cancel);
size_t t3d_cpu_conv3d_wino4_scratch_floats(int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                           int threads);
/* F(side x side x side, 3x3x3), side 2 or 4, same contract, on bf16 operands (the avx512f bf16 ISA,
 * bf16.h): x is rounded to bf16 as the input transform reads it; w, fp32, holds bf16 values. The
 * transforms and products are fp32: the result is the convolution of the rounded operands within
 * Winograd's fp32 bound. AVX-512 only (else T3D_ERR_UNSUPPORTED). */
t3d_status t3d_cpu_conv3d_wino_rounded(int side, int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H,
                                       int64_t W, float *y, const float *x, const float *w, const float *bias,
                                       const float *res, bool relu, const volatile int *cancel);
/* Test-only: the widest vectors the Winograd GEMM may use, 512 (the default: AVX-512 where the CPU
 * has it) or 256 (AVX2). Returns the previous cap. Not thread-safe. */
int t3d_cpu_wino_cap_width(int bits);
/* Whether the Winograd kernel's GEMM runs in AVX-512 (the CPU has it and the cap allows it): the
 * only place F(4,3) runs. */
bool t3d_cpu_wino_avx512(void);

/* Test-only: the per-thread column tile budget in floats (0: the default), so small shapes
 * exercise every tiling path. Returns the previous budget. Not thread-safe. */
size_t t3d_cpu_conv_set_col_budget(size_t floats);
/* Test hook: outputs of at least this many bytes leave the AVX-512 packed and stride-2 row
 * kernels by non-temporal stores (default 64 MiB; 0: all of them). Returns the previous bound.
 * Not thread-safe. */
int64_t t3d_cpu_conv_set_stream_min(int64_t bytes);
/* Whether an output of this many bytes goes out by non-temporal stores (the bound above). */
bool t3d_cpu_conv_stream_out(int64_t bytes);

#ifdef __cplusplus
}
#endif
#endif
