/* Private header of the CPU backend: the op functions its table points at, shared between
 * backend_cpu.c, the op files and conv.c, plus the fp32 GEMM they build on. Not public API:
 * model code goes through kernels/backend.h; shapes are already checked by the t3d_op_* wrappers.
 * Threading: ops run OpenMP loops with be->threads threads; call them from outside a parallel region. */
#ifndef T3D_KERNELS_CPU_H
#define T3D_KERNELS_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row-major single-precision GEMM, cblas conventions:
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
 * op(A) = A (lda >= K) or, when trans_a, A^T with A stored [K,M] (lda >= M); likewise B.
 * beta == 0 ignores the old contents of C (NaN in C does not leak through).
 * t3d_cpu_sgemm uses OpenBLAS when built with it and its kernels fit the CPU (kept single-threaded: the GEMM is split over
 * `threads` OpenMP threads, one OpenBLAS call per slice; inside a parallel region it runs on the
 * calling thread), else t3d_cpu_sgemm_blocked. t3d_cpu_sgemm_blocked is t3d's own
 * cache-blocked, vectorised GEMM (AVX-512 / AVX2+FMA / C micro-kernels chosen at run time),
 * always compiled; threads <= 1 runs it on the calling thread, so inside a parallel region call
 * it with threads = 1. Neither allocates more than ~3 MiB of scratch, and neither can fail. */
void t3d_cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                   int64_t ldc, int threads);
/* Whether t3d_cpu_sgemm hands GEMMs to OpenBLAS: built with it, and its kernels (picked by CPU
 * model when it loads) use this CPU's widest vectors; T3D_GEMM=openblas|t3d overrides. Decided once
 * per process. t3d_cpu_gemm_desc says which GEMM runs and why, e.g. "t3d sgemm (avx512f; OpenBLAS's
 * Prescott kernels do not fit this CPU)". */
bool t3d_cpu_openblas_fits(void);
const char *t3d_cpu_gemm_desc(void);
void t3d_cpu_sgemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                           float *C, int64_t ldc, int threads);
/* op(B)[K, N] packed once (a weight, at load) for t3d_cpu_sgemm_packed, which then skips packing
 * B on every call: t3d_cpu_sgemm_packed_b_floats(N, K) floats, the layout t3d_cpu_sgemm_blocked's
 * micro-kernels read (NR = 16 columns a panel, [panel][K][16], zeros past N). A linear layer's
 * w[Out, In] is op(B) with trans_b, N = Out, K = In. t3d_cpu_sgemm_packed is
 * t3d_cpu_sgemm_blocked (same sums, same order) with that B; it never calls OpenBLAS. */
size_t t3d_cpu_sgemm_packed_b_floats(int64_t N, int64_t K);
void t3d_cpu_sgemm_pack_b(float *dst, bool trans_b, const float *B, int64_t ldb, int64_t N, int64_t K);
void t3d_cpu_sgemm_packed(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                          const float *Bp, float beta, float *C, int64_t ldc, int threads);
/* C[M, N] = op(A) Bp + bias (bias: N values added to every row, NULL: none), C not read: what a
 * linear layer computes, without a pass that fills C with the bias first. */
void t3d_cpu_sgemm_packed_bias(bool trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *Bp, const float *bias, float *C, int64_t ldc, int threads);

/* kernels/cpu/backend_cpu.c: kernels' scratch buffers (64-byte aligned). One idle block is kept
 * for the next call (glibc maps and zeroes blocks over 32 MiB afresh on every malloc);
 * t3d_cpu_scratch_trim frees it (a CPU backend's destroy does). Thread-safe. */
void *t3d_cpu_scratch_alloc(size_t bytes);
void t3d_cpu_scratch_free(void *p);
void t3d_cpu_scratch_trim(void);

/* kernels/cpu/conv.c */
t3d_status t3d_cpu_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p);
t3d_status t3d_cpu_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                    const t3d_tensor *bias, const t3d_conv3d_transpose_params *p);

/* kernels/cpu/elementwise.c: relu, add, gelu, softmax, layernorm, argmax, concat, embedding */
t3d_status t3d_cpu_relu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_cpu_add(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b);
t3d_status t3d_cpu_gelu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_cpu_softmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_cpu_layernorm(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *gamma,
                             const t3d_tensor *beta, float eps);
t3d_status t3d_cpu_argmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_cpu_concat(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b);
t3d_status t3d_cpu_embedding(t3d_backend *be, t3d_tensor *y, const t3d_tensor *ids, const t3d_tensor *table);

/* kernels/cpu/pool.c: pooling and trilinear resampling of volumes */
t3d_status t3d_cpu_maxpool3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_pool3d_params *p);
t3d_status t3d_cpu_avgpool3d_global(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_cpu_avgpool3d_adaptive(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);
t3d_status t3d_cpu_resample_trilinear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x);

/* gemm.c: one head of attention fused (t3d_cpu_attention's kernel where the AVX-512 GEMM runs):
 * y[i, :Dh] = softmax(q_i k^T * scale; keys with mask 0 excluded) v for i < nq; q, k, v rows ld
 * floats apart, y rows ldy; scratch of t3d_cpu_attention_head_floats(Lk, Dh) floats, which is 0
 * where this CPU has no such kernel (AVX-512F): call it only where that is not 0. */
size_t t3d_cpu_attention_head_floats(int64_t Lk, int64_t Dh);
void t3d_cpu_attention_head(const float *q, const float *k, const float *v, int64_t ld, int64_t nq, int64_t Lk,
                            int64_t Dh, float scale, const int32_t *mask, float *y, int64_t ldy, float *scratch);

/* kernels/cpu/linear.c: linear and multi-head attention */
/* w: plain [Out, In], or packed by t3d_cpu_pack_weight_f32 (the backend's pack_weight_f32) */
t3d_status t3d_cpu_linear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *b);
t3d_status t3d_cpu_pack_weight_f32(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op,
                                   bool *packed);
t3d_status t3d_cpu_attention(t3d_backend *be, t3d_tensor *y, const t3d_tensor *q, const t3d_tensor *k,
                             const t3d_tensor *v, const t3d_tensor *key_mask, int heads);

#ifdef __cplusplus
}
#endif
#endif
