/* fp32 GEMM for the CPU backend: t3d_cpu_sgemm (OpenBLAS when configured, else ours) and
 * t3d_cpu_sgemm_blocked, a BLIS-style packed, cache-blocked GEMM with AVX-512 / AVX2+FMA / plain C
 * micro-kernels picked at run time. Not a full BLAS: row-major, no complex, no batched calls. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define T3D_X86 1
#endif

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_simd.h"

/* Blocking: KC deep slices keep one NR-wide B micro-panel (KC*NR*4 = 16 KiB) in L1 and the
 * packed A block in L2; NC columns of packed B (KC*NC*4 = 2 MiB) in L3. */
#define NR 16
#define KC 256
#define NC 2048
#define MB_PANELS 64 /* MR-row panels of A packed at once */
#define MAX_MR 12
#define TILE_MP 4 /* a parallel task: TILE_MP A panels by TILE_NP B panels */
#define TILE_NP 8

/* C[mr,nr] += alpha * Ap(kc x MR panel) * Bp(kc x NR panel); Ap/Bp zero-padded to full panels. */
typedef void (*ukernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr,
                           float alpha);

static void write_back(float *c, int64_t ldc, const float *acc, int mr, int nr, float alpha)
{
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++)
      c[i * ldc + j] += alpha * acc[i * NR + j];
}

static void ukernel_c(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, float alpha)
{
  enum { MR = 4 };
  float acc[MR * NR] = {0};
  for (int64_t k = 0; k < kc; k++) {
    const float *bk = b + k * NR;
    for (int i = 0; i < MR; i++) {
      float ai = a[k * MR + i];
#pragma omp simd
      for (int j = 0; j < NR; j++)
        acc[i * NR + j] += ai * bk[j];
    }
  }
  write_back(c, ldc, acc, mr, nr, alpha);
}

#ifdef T3D_X86
__attribute__((target("avx2,fma"))) static void ukernel_avx2(int64_t kc, const float *a, const float *b, float *c,
                                                             int64_t ldc, int mr, int nr, float alpha)
{
  enum { MR = 6 };
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; k++) {
    const float *ak = a + k * MR;
    __m256 b0 = _mm256_loadu_ps(b + k * NR), b1 = _mm256_loadu_ps(b + k * NR + 8), ai;
    ai = _mm256_broadcast_ss(ak + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(ak + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(ak + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(ak + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(ak + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(ak + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
  }
  {
    __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 va = _mm256_set1_ps(alpha);
    if (mr == MR && nr == NR) {
      for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, rows[i][0], _mm256_loadu_ps(ci)));
        _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, rows[i][1], _mm256_loadu_ps(ci + 8)));
      }
    } else {
      float acc[MR * NR];
      for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(acc + i * NR, rows[i][0]);
        _mm256_storeu_ps(acc + i * NR + 8, rows[i][1]);
      }
      write_back(c, ldc, acc, mr, nr, alpha);
    }
  }
}

#define FMA_ROW(i) c##i = _mm512_fmadd_ps(_mm512_set1_ps(ak[i]), bk, c##i)
__attribute__((target("avx512f"))) static void ukernel_avx512(int64_t kc, const float *a, const float *b, float *c,
                                                              int64_t ldc, int mr, int nr, float alpha)
{
  enum { MR = 12 };
  __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  __m512 c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (int64_t k = 0; k < kc; k++) {
    const float *ak = a + k * MR;
    __m512 bk = _mm512_loadu_ps(b + k * NR);
    FMA_ROW(0);
    FMA_ROW(1);
    FMA_ROW(2);
    FMA_ROW(3);
    FMA_ROW(4);
    FMA_ROW(5);
    FMA_ROW(6);
    FMA_ROW(7);
    FMA_ROW(8);
    FMA_ROW(9);
    FMA_ROW(10);
    FMA_ROW(11);
  }
  {
    __m512 rows[MR] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
    __m512 va = _mm512_set1_ps(alpha);
    if (mr == MR && nr == NR) {
      for (int i = 0; i < MR; i++)
        _mm512_storeu_ps(c + i * ldc, _mm512_fmadd_ps(va, rows[i], _mm512_loadu_ps(c + i * ldc)));
    } else {
      float acc[MR * NR];
      for (int i = 0; i < MR; i++)
        _mm512_storeu_ps(acc + i * NR, rows[i]);
      write_back(c, ldc, acc, mr, nr, alpha);
    }
  }
}
#undef FMA_ROW
#endif

typedef struct {
  int mr;
  ukernel_fn fn;
} ukernel;

static ukernel pick_ukernel(void)
{
#ifdef T3D_X86 /* libgcc's constructor has filled the CPU model by now: no __builtin_cpu_init */
  if (__builtin_cpu_supports("avx512f"))
    return (ukernel){12, ukernel_avx512};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return (ukernel){6, ukernel_avx2};
#endif
  return (ukernel){4, ukernel_c};
}

/* Packs rows [i0, i0+rows) x depth [p0, p0+kc) of op(A) into one MR-row panel, dst[k*mr + r],
 * zero-padding rows past the end. The untransposed case is a small transpose: it reads the rows
 * in parallel streams, one k at a time, so every store is contiguous. */
T3D_SIMD_CLONES
static void pack_a_panel(float *restrict dst, bool trans, const float *restrict A, int64_t lda, int64_t i0,
                         int64_t rows, int64_t p0, int64_t kc, int mr)
{
  if (trans) {
    for (int64_t k = 0; k < kc; k++) {
      const float *src = A + (p0 + k) * lda + i0;
      if (rows >= mr) {
#pragma omp simd
        for (int r = 0; r < mr; r++)
          dst[k * mr + r] = src[r];
      } else {
        for (int r = 0; r < mr; r++)
          dst[k * mr + r] = r < rows ? src[r] : 0.0f;
      }
    }
  } else {
    int64_t off[MAX_MR];
    for (int r = 0; r < mr; r++) /* rows past the end re-read the last row; zeroed below */
      off[r] = (i0 + (r < rows ? r : rows - 1)) * lda + p0;
    for (int64_t k = 0; k < kc; k++) {
#pragma omp simd
      for (int r = 0; r < mr; r++)
        dst[k * mr + r] = A[off[r] + k];
    }
    for (int r = (int)rows; r < mr; r++)
      for (int64_t k = 0; k < kc; k++)
        dst[k * mr + r] = 0.0f;
  }
}

/* Packs columns [j0, j0+cols) x depth [p0, p0+kc) of op(B) into one NR-column panel, dst[k*NR + c]. */
T3D_SIMD_CLONES
static void pack_b_panel(float *restrict dst, bool trans, const float *restrict B, int64_t ldb, int64_t j0,
                         int64_t cols, int64_t p0, int64_t kc)
{
  if (trans) {
    int64_t off[NR];
    for (int c = 0; c < NR; c++)
      off[c] = (j0 + (c < cols ? c : cols - 1)) * ldb + p0;
    for (int64_t k = 0; k < kc; k++) {
#pragma omp simd
      for (int c = 0; c < NR; c++)
        dst[k * NR + c] = B[off[c] + k];
    }
    for (int c = (int)cols; c < NR; c++)
      for (int64_t k = 0; k < kc; k++)
        dst[k * NR + c] = 0.0f;
  } else {
    for (int64_t k = 0; k < kc; k++) {
      const float *src = B + (p0 + k) * ldb + j0;
      if (cols >= NR) {
#pragma omp simd
        for (int c = 0; c < NR; c++)
          dst[k * NR + c] = src[c];
      } else {
        for (int c = 0; c < NR; c++)
          dst[k * NR + c] = c < cols ? src[c] : 0.0f;
      }
    }
  }
}

/* C = beta * C, where beta == 0 clears (so NaN/garbage in C never leaks through). */
static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc, int nt)
{
  if (beta == 1.0f)
    return;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float *ci = C + i * ldc;
    if (beta == 0.0f)
      memset(ci, 0, (size_t)N * sizeof *ci);
    else
      for (int64_t j = 0; j < N; j++)
        ci[j] *= beta;
  }
}

/* Unpacked fallback when scratch memory cannot be had: slow, but the GEMM cannot fail. */
static void sgemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float *C, int64_t ldc)
{
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < K; k++) {
      float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
      for (int64_t j = 0; j < N; j++)
        C[i * ldc + j] += a * (tb ? B[j * ldb + k] : B[k * ldb + j]);
    }
}

void t3d_cpu_sgemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, int threads)
{
  const ukernel uk = pick_ukernel();
  const int mr = uk.mr;
  const int64_t mb_max = (int64_t)MB_PANELS * mr;
  int nt;
  float *bpack = NULL, *apack = NULL;

  if (M <= 0 || N <= 0)
    return;
  nt = t3d_cpu_threads_for(threads, M * N * (K > 0 ? K : 1));
  scale_c(M, N, beta, C, ldc, nt);
  if (K <= 0 || alpha == 0.0f)
    return;
  { /* scratch sized to the problem, so small GEMMs (attention heads) stay cheap to set up */
    const int64_t kc = K < KC ? K : KC, ncols = N < NC ? (N + NR - 1) / NR * NR : NC;
    const int64_t mrows = M < mb_max ? (M + mr - 1) / mr * mr : mb_max;
    bpack = t3d_aligned_alloc((size_t)(kc * ncols) * sizeof(float));
    apack = t3d_aligned_alloc((size_t)(kc * mrows) * sizeof(float));
  }
  if (!bpack || !apack) {
    sgemm_naive(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, C, ldc);
    goto cleanup;
  }
#pragma omp parallel num_threads(nt)
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = N - jc < NC ? N - jc : NC, npanels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = K - pc < KC ? K - pc : KC;
#pragma omp for schedule(static)
      for (int64_t q = 0; q < npanels; q++)
        pack_b_panel(bpack + q * NR * kc, trans_b, B, ldb, jc + q * NR, nc - q * NR, pc, kc);
      for (int64_t ic = 0; ic < M; ic += mb_max) {
        const int64_t mb = M - ic < mb_max ? M - ic : mb_max, mpanels = (mb + mr - 1) / mr;
        const int64_t tm = (mpanels + TILE_MP - 1) / TILE_MP, tn = (npanels + TILE_NP - 1) / TILE_NP;
#pragma omp for schedule(static)
        for (int64_t p = 0; p < mpanels; p++)
          pack_a_panel(apack + p * mr * kc, trans_a, A, lda, ic + p * mr, mb - p * mr, pc, kc, mr);
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < tm * tn; t++) {
          const int64_t p0 = (t / tn) * TILE_MP, q0 = (t % tn) * TILE_NP;
          for (int64_t q = q0; q < q0 + TILE_NP && q < npanels; q++) {
            const int64_t cols = nc - q * NR < NR ? nc - q * NR : NR;
            for (int64_t p = p0; p < p0 + TILE_MP && p < mpanels; p++) {
              const int64_t rows = mb - p * mr < mr ? mb - p * mr : mr;
              uk.fn(kc, apack + p * mr * kc, bpack + q * NR * kc, C + (ic + p * mr) * ldc + jc + q * NR, ldc,
                    (int)rows, (int)cols, alpha);
            }
          }
        }
      }
    }
  }
cleanup:
  t3d_aligned_free(apack);
  t3d_aligned_free(bpack);
}

void t3d_cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, int threads)
{
#ifdef HAVE_OPENBLAS
  if (M > 0 && N > 0 && K > 0 && M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX &&
      ldb <= INT32_MAX && ldc <= INT32_MAX) {
    /* OpenBLAS runs single-threaded (set at backend create) and we split the GEMM over our own
     * OpenMP threads: one thread pool, so OpenBLAS's spinning pthreads never fight the OpenMP
     * workers of the ops before and after (measured 5x+ slower on a loaded 2-core machine). Inside a
     * parallel region this is one plain call. Slices: the longer of M and N, whole micro-tiles. */
    const int nt = t3d_cpu_threads_for(threads, M * N * K / 64);
    const bool by_cols = N >= M;
    const int64_t len = by_cols ? N : M, step = by_cols ? 16 : 8;
    const int64_t chunk = ((len + nt - 1) / nt + step - 1) / step * step;
    /* beta == 0: OpenBLAS clears C rather than multiplying it, so NaN there cannot leak. */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
      const int64_t s0 = t * chunk, n = len - s0 < chunk ? len - s0 : chunk;
      if (n <= 0)
        continue;
      if (by_cols)
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                    (int)n, (int)K, alpha, A, (int)lda, trans_b ? B + s0 * ldb : B + s0, (int)ldb, beta, C + s0,
                    (int)ldc);
      else
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)n,
                    (int)N, (int)K, alpha, trans_a ? A + s0 : A + s0 * lda, (int)lda, B, (int)ldb, beta,
                    C + s0 * ldc, (int)ldc);
    }
    return;
  }
#endif
  t3d_cpu_sgemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
}
