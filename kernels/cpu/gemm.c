/* fp32 GEMM for the CPU backend: t3d_cpu_sgemm (OpenBLAS when configured, else ours) and
 * t3d_cpu_sgemm_blocked, a BLIS-style packed, cache-blocked GEMM with AVX-512 / AVX2+FMA / plain C
 * micro-kernels picked at run time. Not a full BLAS: row-major, no complex, no batched calls. */
#include "config.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
 * packed A block in L2; NC columns of packed B (KC*NC*4 = 2 MiB) in L3. The AVX-512 kernels take
 * deeper slices (KC_WIDE below): fewer passes over C and fewer barriers. */
#define NR 16
#define KC 256
#define NC 2048
#define MB_PANELS 64 /* MR-row panels of A packed at once */
/* AVX-512 (the 12 x 32 kernel): slices up to KC_WIDE deep while the packed A block stays within
 * A_BLOCK_FLOATS (1.2 MiB of a 2 MiB L2). Measured, M = 256 with prepacked B, 2 threads, GFLOP/s
 * at KC 256 / 768 / 1024 / 1536: [768 x 768] 272 / 287 / 293 / 290, [3072 x 768] 281 / 295 / 296 /
 * 296, [768 x 3072] 263 / 281 / 285 / 274 (the text tower's GEMMs; B pairs come from L2 then,
 * not L1, and that costs less than re-reading C and a barrier per 256-deep slice). */
#define KC_WIDE 1024
#define A_BLOCK_FLOATS (300 * 1024)
#define MAX_MR 12
#define TILE_MP 4 /* a parallel task: TILE_MP A panels by TILE_NP B panels */
#define TILE_NP 8

/* C[mr,nr] = (load ? C : bias) + alpha * Ap(kc x MR panel) * Bp(kc x NR panel); Ap/Bp zero-padded
 * to full panels; bias (the tile's first column's, per column) NULL: zeros. A product's first K
 * slice stores without reading C when the caller's beta is 0 (no clearing pass, no bias pass). */
typedef void (*ukernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr,
                           float alpha, const float *bias, bool load);

static void write_back(float *c, int64_t ldc, const float *acc, int mr, int nr, float alpha, const float *bias,
                       bool load)
{
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++)
      c[i * ldc + j] = (load ? c[i * ldc + j] : bias ? bias[j] : 0.0f) + alpha * acc[i * NR + j];
}

static void ukernel_c(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, float alpha,
                      const float *bias, bool load)
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
  write_back(c, ldc, acc, mr, nr, alpha, bias, load);
}

#ifdef T3D_X86
__attribute__((target("avx2,fma"))) static void ukernel_avx2(int64_t kc, const float *a, const float *b, float *c,
                                                             int64_t ldc, int mr, int nr, float alpha,
                                                             const float *bias, bool load)
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
      const __m256 z = _mm256_setzero_ps();
      const __m256 b0 = bias ? _mm256_loadu_ps(bias) : z, b1 = bias ? _mm256_loadu_ps(bias + 8) : z;
      for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, rows[i][0], load ? _mm256_loadu_ps(ci) : b0));
        _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, rows[i][1], load ? _mm256_loadu_ps(ci + 8) : b1));
      }
    } else {
      float acc[MR * NR];
      for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(acc + i * NR, rows[i][0]);
        _mm256_storeu_ps(acc + i * NR + 8, rows[i][1]);
      }
      write_back(c, ldc, acc, mr, nr, alpha, bias, load);
    }
  }
}

#define FMA_ROW(i) c##i = _mm512_fmadd_ps(_mm512_set1_ps(ak[i]), bk, c##i)
__attribute__((target("avx512f"))) static void ukernel_avx512(int64_t kc, const float *a, const float *b, float *c,
                                                              int64_t ldc, int mr, int nr, float alpha,
                                                              const float *bias, bool load)
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
      const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
      for (int i = 0; i < MR; i++)
        _mm512_storeu_ps(c + i * ldc, _mm512_fmadd_ps(va, rows[i], load ? _mm512_loadu_ps(c + i * ldc) : b0));
    } else {
      float acc[MR * NR];
      for (int i = 0; i < MR; i++)
        _mm512_storeu_ps(acc + i * NR, rows[i]);
      write_back(c, ldc, acc, mr, nr, alpha, bias, load);
    }
  }
}
#undef FMA_ROW

/* The k loop of ukernel_avx512_wide_as from k_begin to k_end. rows: 4, 8 or 12, a constant where
 * it is expanded: a panel's last rows past M (the text tower's 256 tokens fill 21 panels of 12 and 4
 * rows of a 22nd) cost only the rows they have */
#define WIDE_LOOP(k_begin, k_end, rows)                                                                        \
  for (int64_t k = (k_begin); k < (k_end); k++) {                                                              \
    const float *ak = a + k * as;                                                                              \
    __m512 bk0 = _mm512_loadu_ps(b0 + k * NR), bk1 = _mm512_loadu_ps(b1 + k * NR);                             \
    _Pragma("GCC unroll 12") for (int i = 0; i < (rows); i++) {                                                \
      __m512 ai = _mm512_set1_ps(ak[i]);                                                                       \
      acc[i][0] = _mm512_fmadd_ps(ai, bk0, acc[i][0]);                                                         \
      acc[i][1] = _mm512_fmadd_ps(ai, bk1, acc[i][1]);                                                         \
    }                                                                                                          \
  }
/* The whole k loop; with pf, a line of each of the next two B panels every step iterations, so
 * that pf_rows rows reach L2 spread over the tile rather than in a burst. */
#define WIDE_RUN(rows)                                                                                         \
  do {                                                                                                         \
    if (pf) {                                                                                                  \
      const float *pf1 = pf + (b1 - b0);                                                                       \
      const int64_t step = kc / pf_rows;                                                                       \
      int64_t r = 0;                                                                                           \
      for (int64_t k0 = 0; k0 < kc; k0 += step) {                                                              \
        if (r < pf_rows) {                                                                                     \
          _mm_prefetch((const char *)(pf + r * NR), _MM_HINT_T1);                                              \
          _mm_prefetch((const char *)(pf1 + r * NR), _MM_HINT_T1);                                             \
          r++;                                                                                                 \
        }                                                                                                      \
        WIDE_LOOP(k0, k0 + step < kc ? k0 + step : kc, rows)                                                   \
      }                                                                                                        \
    } else                                                                                                     \
      WIDE_LOOP(0, kc, rows)                                                                                   \
  } while (0)
/* Two adjacent B panels at once, 12 x 32: 24 accumulators, and per k two B loads and 12
 * broadcasts for 24 FMAs. The 12 x 16 kernel above needs 13 loads for 12 FMAs, so the load ports,
 * not the FMA units, bound it on CPUs with two 512-bit FMA units (measured, one thread, the
 * [256,768]x[768,3072] GEMM: 12 x 16 at 80-100 GFLOP/s, OpenBLAS's SkylakeX kernel 105-113).
 * nr <= 32 columns, the first 16 from b0; partial tiles are written with masked stores. A's row
 * k (mr values) is at a + k * as: 12 in a packed panel; the fused attention's output reads its
 * transposed scores where they stand (as = 32). Inlined, so each caller's as is a constant.
 * pf (NULL: none): pf_rows rows (<= kc) of the next two B panels (same distance apart as b0, b1),
 * fetched into L2 while this tile runs: prepacked weights come from memory, and the first A panel
 * against a new pair of B panels otherwise waits on them. Every tile of a task fetches its share
 * of the next pair, spread over its k loop: when the first tile fetched the whole pair (a line of
 * each per k), that tile took 10 % of the kernel's samples for 1/22 of its work in the text tower
 * (perf, 2 threads), bound by memory requests rather than FMAs. */
__attribute__((target("avx512f"), always_inline)) static inline void
ukernel_avx512_wide_as(int64_t kc, const float *a, int64_t as, const float *b0, const float *b1, float *c, int64_t ldc,
                       int mr, int nr, float alpha, const float *bias, bool load, const float *pf, int64_t pf_rows)
{
  enum { MR = 12 };
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  if (!pf || pf_rows <= 0 || pf_rows > kc)
    pf = NULL;
  if (mr <= 4)
    WIDE_RUN(4);
  else if (mr <= 8)
    WIDE_RUN(8);
  else
    WIDE_RUN(MR);
  const __m512 va = _mm512_set1_ps(alpha);
  const int n0 = nr < NR ? nr : NR, n1 = nr - NR > 0 ? nr - NR : 0;
  const __mmask16 m0 = (__mmask16)((1u << n0) - 1u), m1 = (__mmask16)((1u << n1) - 1u);
  /* the first slice of a beta-0 product: C = bias + alpha acc, C unread */
  const __m512 z = _mm512_setzero_ps();
  const __m512 bv0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : z, bv1 = bias && n1 ? _mm512_maskz_loadu_ps(m1, bias + NR) : z;
  if (mr == MR && nr == 2 * NR) {
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
      float *ci = c + i * ldc;
      _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, acc[i][0], load ? _mm512_loadu_ps(ci) : bv0));
      _mm512_storeu_ps(ci + NR, _mm512_fmadd_ps(va, acc[i][1], load ? _mm512_loadu_ps(ci + NR) : bv1));
    }
  } else { /* unrolled too, so acc stays in registers (a loop to mr spilled all 24 to the stack) */
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
      if (i >= mr) break;
      float *ci = c + i * ldc;
      _mm512_mask_storeu_ps(ci, m0, _mm512_fmadd_ps(va, acc[i][0], load ? _mm512_maskz_loadu_ps(m0, ci) : bv0));
      _mm512_mask_storeu_ps(ci + NR, m1, _mm512_fmadd_ps(va, acc[i][1], load ? _mm512_maskz_loadu_ps(m1, ci + NR) : bv1));
    }
  }
}

/* The packed-panel case: A row k at a + k * 12 */
__attribute__((target("avx512f"))) static void ukernel_avx512_wide(int64_t kc, const float *a, const float *b0,
                                                                   const float *b1, float *c, int64_t ldc, int mr,
                                                                   int nr, float alpha, const float *bias, bool load,
                                                                   const float *pf, int64_t pf_rows)
{
  ukernel_avx512_wide_as(kc, a, 12, b0, b1, c, ldc, mr, nr, alpha, bias, load, pf, pf_rows);
}
#endif

/* C[mr, nr <= 2 NR] from one A panel and two adjacent B panels (b1 = b0 + kc * NR). */
typedef void (*ukernel_wide_fn)(int64_t kc, const float *a, const float *b0, const float *b1, float *c, int64_t ldc,
                                int mr, int nr, float alpha, const float *bias, bool load, const float *pf,
                                int64_t pf_rows);

typedef struct {
  int mr;
  ukernel_fn fn;
  ukernel_wide_fn wide; /* NULL: one panel at a time */
} ukernel;

static ukernel pick_ukernel(void)
{
#ifdef T3D_X86 /* libgcc's constructor has filled the CPU model by now: no __builtin_cpu_init */
  if (__builtin_cpu_supports("avx512f"))
    return (ukernel){12, ukernel_avx512, ukernel_avx512_wide};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return (ukernel){6, ukernel_avx2, NULL};
#endif
  return (ukernel){4, ukernel_c, NULL};
}

#ifdef T3D_X86
/* 16 rows of depth kc (rows[i] + k) into dst[k * ld + i] for the lanes i in keep, 16 x 16 blocks
 * transposed in registers: a linear layer's weights [out, in] are B transposed, and its
 * activations are A untransposed, and packing either element by element (a gather per k) took
 * a fifth of the [256,768]x[768,3072] GEMM's time (B) and 6 % of the text tower's (A) next to
 * the 12 x 32 kernel. Returns the depth done (a multiple of 16); the caller packs the rest. */
__attribute__((target("avx512f"))) static int64_t pack_trans16_avx512(float *restrict dst, int64_t ld, __mmask16 keep,
                                                                      const float *const *rows, int64_t kc)
{
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
    __m512 t[16], u[16], o[16];
    for (int i = 0; i < 16; i += 2) {
      __m512 a = _mm512_loadu_ps(rows[i] + k), b = _mm512_loadu_ps(rows[i + 1] + k);
      t[i] = _mm512_unpacklo_ps(a, b); /* per 128-bit block q: a[4q], b[4q], a[4q+1], b[4q+1] */
      t[i + 1] = _mm512_unpackhi_ps(a, b); /* a[4q+2], b[4q+2], a[4q+3], b[4q+3] */
    }
    for (int g = 0; g < 16; g += 4) { /* rows g..g+3: u[g + j] holds their column 4q + j in block q */
      __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
      __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
      u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
      u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
      u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
      u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int j = 0; j < 4; j++) { /* columns j, 4 + j, 8 + j, 12 + j from the 4 row groups */
      __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
      __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
      o[j] = _mm512_shuffle_f32x4(v0, w0, 0x88);
      o[8 + j] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
      o[4 + j] = _mm512_shuffle_f32x4(v1, w1, 0x88);
      o[12 + j] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
    for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(dst + (k + j) * ld, keep, o[j]);
  }
  return k;
}

#endif

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
    int64_t k0 = 0;
#ifdef T3D_X86
    if (mr == 12 && __builtin_cpu_supports("avx512f")) { /* rows past the end: the last row, zeroed below */
      const float *rp[16];
      for (int r = 0; r < 16; r++) rp[r] = A + (i0 + (r < rows ? r : rows - 1)) * lda + p0;
      k0 = pack_trans16_avx512(dst, mr, (__mmask16)0x0fff, rp, kc);
    }
#endif
    int64_t off[MAX_MR];
    for (int r = 0; r < mr; r++) /* rows past the end re-read the last row; zeroed below */
      off[r] = (i0 + (r < rows ? r : rows - 1)) * lda + p0;
    for (int64_t k = k0; k < kc; k++) {
#pragma omp simd
      for (int r = 0; r < mr; r++)
        dst[k * mr + r] = A[off[r] + k];
    }
    if (rows < mr)
      for (int64_t k = 0; k < kc; k++) /* one contiguous run a k */
        memset(dst + k * mr + rows, 0, (size_t)(mr - rows) * sizeof *dst);
  }
}

#ifdef T3D_X86
/* dst[k * 16 + c] = src[k * ld + c], c < 16, k < kc */
__attribute__((target("avx512f"))) static void copy_rows16_avx512(float *restrict dst, const float *restrict src,
                                                                  int64_t ld, int64_t kc)
{
  for (int64_t k = 0; k < kc; k++) _mm512_storeu_ps(dst + k * 16, _mm512_loadu_ps(src + k * ld));
}
#endif

/* Packs columns [j0, j0+cols) x depth [p0, p0+kc) of op(B) into one NR-column panel, dst[k*NR + c]. */
T3D_SIMD_CLONES
static void pack_b_panel(float *restrict dst, bool trans, const float *restrict B, int64_t ldb, int64_t j0,
                         int64_t cols, int64_t p0, int64_t kc)
{
  if (trans) {
#ifdef T3D_X86
    if (cols >= NR && NR == 16 && __builtin_cpu_supports("avx512f")) {
      const float *rows[16];
      for (int c = 0; c < 16; c++) rows[c] = B + (j0 + c) * ldb + p0;
      const int64_t done = pack_trans16_avx512(dst, NR, (__mmask16)0xffff, rows, kc);
      for (int64_t k = done; k < kc; k++)
        for (int c = 0; c < NR; c++) dst[k * NR + c] = rows[c][k];
      return;
    }
#endif
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
#ifdef T3D_X86
    if (cols >= NR && NR == 16 && __builtin_cpu_supports("avx512f")) {
      /* one vector a row: the loop below became a 64-byte memcpy call per row (7 % of attention) */
      copy_rows16_avx512(dst, B + p0 * ldb + j0, ldb, kc);
      return;
    }
#endif
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

/* The blocked GEMM. B is packed per KC slice here, or, when bpre is given, was packed once for the
 * whole depth by t3d_cpu_sgemm_pack_b (panel q of NR columns at bpre + q * K * NR, row k of it
 * at + k * NR), and B, ldb and trans_b are unused. bias (N values, NULL: none) is added to every
 * row of C; only with beta 0. With beta 0 the first K slice writes C without reading it. */
static void sgemm_run(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, const float *bpre, const float *bias, float beta,
                      float *C, int64_t ldc, int threads)
{
  const ukernel uk = pick_ukernel();
  const int mr = uk.mr;
  const int64_t mb_max = (int64_t)MB_PANELS * mr;
  int nt;
  float *bpack = NULL, *apack = NULL;

  if (M <= 0 || N <= 0)
    return;
  /* slice depth: KC, or on AVX-512 as deep as keeps the A block in L2 (at most KC_WIDE) */
  int64_t kcd = KC;
  if (uk.wide) {
    const int64_t rows = M < mb_max ? (M + mr - 1) / mr * mr : mb_max;
    kcd = A_BLOCK_FLOATS / rows;
    kcd = kcd > KC_WIDE ? KC_WIDE : kcd < KC ? KC : kcd / 16 * 16;
  }
  nt = t3d_cpu_threads_for(threads, M * N * (K > 0 ? K : 1));
  const bool fresh = beta == 0.0f && K > 0 && alpha != 0.0f; /* C written by the first slice */
  { /* scratch sized to the problem, so small GEMMs (attention heads) stay cheap to set up */
    const int64_t kc = K < kcd ? K : kcd, ncols = N < NC ? (N + NR - 1) / NR * NR : NC;
    const int64_t mrows = M < mb_max ? (M + mr - 1) / mr * mr : mb_max;
    if (!bpre)
      bpack = t3d_aligned_alloc((size_t)(kc * ncols) * sizeof(float));
    apack = t3d_aligned_alloc((size_t)(kc * mrows) * sizeof(float));
  }
  if ((!bpre && !bpack) || !apack || !fresh) {
    scale_c(M, N, beta, C, ldc, nt);
    if (bias)
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] += bias[j];
  }
  if (K <= 0 || alpha == 0.0f)
    goto cleanup;
  if ((!bpre && !bpack) || !apack) {
    if (bpre)
      for (int64_t i = 0; i < M; i++) /* the packed panels read element by element */
        for (int64_t k = 0; k < K; k++) {
          const float a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
          for (int64_t j = 0; j < N; j++)
            C[i * ldc + j] += a * bpre[(j / NR) * K * NR + k * NR + j % NR];
        }
    else
      sgemm_naive(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, C, ldc);
    goto cleanup;
  }
  /* column blocks: NC where B is packed here (an L3-sized block); prepacked B needs no block, so
     each A slice is packed once, not once per NC columns (the text tower's [256,768]x[768,3072]) */
  const int64_t ncb = bpre ? N : NC;
#pragma omp parallel num_threads(nt)
  for (int64_t jc = 0; jc < N; jc += ncb) {
    const int64_t nc = N - jc < ncb ? N - jc : ncb, npanels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += kcd) {
      const int64_t kc = K - pc < kcd ? K - pc : kcd;
      const bool load = !fresh || pc > 0;
      /* panel q of this block and slice, and the distance to panel q + 1 */
      const float *bslice = bpre ? bpre + (jc / NR) * K * NR + pc * NR : bpack;
      const int64_t bstep = bpre ? K * NR : kc * NR;
      if (!bpre) {
#pragma omp for schedule(static)
        for (int64_t q = 0; q < npanels; q++)
          pack_b_panel(bpack + q * NR * kc, trans_b, B, ldb, jc + q * NR, nc - q * NR, pc, kc);
      }
      for (int64_t ic = 0; ic < M; ic += mb_max) {
        const int64_t mb = M - ic < mb_max ? M - ic : mb_max, mpanels = (mb + mr - 1) / mr;
        /* A task: tile_mp A panels by tile_np B panels. Where the B panels alone give every thread
         * several tasks, a task takes every A panel (the packed block, in L2) against two B
         * panels, so B (a weight: from memory) is read once per slice, not once per TILE_MP. */
        const bool all_a = npanels / 2 >= 4 * (int64_t)nt;
        const int64_t tile_mp = all_a ? mpanels : TILE_MP, tile_np = all_a ? 2 : TILE_NP;
        const int64_t tm = (mpanels + tile_mp - 1) / tile_mp, tn = (npanels + tile_np - 1) / tile_np;
        const int64_t pfchunk = (kc + tile_mp - 1) / tile_mp; /* next pair's rows each tile prefetches */
#pragma omp for schedule(static)
        for (int64_t p = 0; p < mpanels; p++)
          pack_a_panel(apack + p * mr * kc, trans_a, A, lda, ic + p * mr, mb - p * mr, pc, kc, mr);
        /* one task: B panels [q0, q0 + tile_np) against A panels [p0, p0 + tile_mp); pf_next: the
           task's tiles fetch the next task's B panels (the same thread's, under a static schedule)
           into L2, pfchunk rows each */
#define GEMM_TASK(pf_next)                                                                                     \
  do {                                                                                                         \
    const int64_t p0 = (t / tn) * tile_mp, q0 = (t % tn) * tile_np;                                            \
    for (int64_t q = q0; q < q0 + tile_np && q < npanels;) {                                                   \
      const bool pair = uk.wide && q + 1 < q0 + tile_np && q + 1 < npanels; /* tile_np is even */             \
      const int64_t width = pair ? 2 * NR : NR, cols = nc - q * NR < width ? nc - q * NR : width;              \
      const float *bq = bias && !load ? bias + jc + q * NR : NULL;                                             \
      for (int64_t p = p0; p < p0 + tile_mp && p < mpanels; p++) {                                             \
        const int64_t rows = mb - p * mr < mr ? mb - p * mr : mr;                                              \
        const float *ap = apack + p * mr * kc, *bp = bslice + q * bstep;                                       \
        float *cp = C + (ic + p * mr) * ldc + jc + q * NR;                                                     \
        const int64_t pfr = kc - (p - p0) * pfchunk < pfchunk ? kc - (p - p0) * pfchunk : pfchunk;               \
        const float *pf = (pf_next) && pfr > 0 && q + 3 < npanels ? bp + 2 * bstep + (p - p0) * pfchunk * NR : NULL; \
        if (pair)                                                                                              \
          uk.wide(kc, ap, bp, bp + bstep, cp, ldc, (int)rows, (int)cols, alpha, bq, load, pf, pfr);             \
        else                                                                                                   \
          uk.fn(kc, ap, bp, cp, ldc, (int)rows, (int)cols, alpha, bq, load);                                   \
      }                                                                                                        \
      q += pair ? 2 : 1;                                                                                       \
    }                                                                                                          \
  } while (0)
        if (all_a && bpre) { /* weights from memory: contiguous pairs per thread, the next one prefetched */
#pragma omp for schedule(static)
          for (int64_t t = 0; t < tm * tn; t++) GEMM_TASK(true);
        } else {
#pragma omp for schedule(dynamic)
          for (int64_t t = 0; t < tm * tn; t++) GEMM_TASK(false);
        }
#undef GEMM_TASK
      }
    }
  }
cleanup:
  t3d_aligned_free(apack);
  t3d_aligned_free(bpack);
}

/* ---- one attention head, fused (t3d_cpu_attention) --------------------------------------------
 * softmax(q k^T * scale, masked keys excluded) v for query rows [0, nq) of one head, 32 queries at a
 * time, everything in L1/L2. K is packed once into A panels (12 keys each) and V into B panels;
 * per block the block's queries become a pair of B panels (q^T), so the wide kernel writes the
 * scores transposed, s^T [keys][32]; the softmax runs down its columns (a query per lane, no
 * horizontal reductions), and s^T's columns are the A rows of the output's kernel as they stand
 * (rows 32 floats apart: ukernel_avx512_wide_as), 12, 12 and 8 queries; the output is scaled by
 * 1/sum last (as the unfused path). The scores used to be computed a query per row, their rows
 * then transposed into an A panel (16 x 16 transposes, 14 % of the head's time) and reduced
 * across lanes. */
#ifdef T3D_X86
enum { HEAD_QB = 2 * NR }; /* queries a block: one pair of B panels */

size_t t3d_cpu_attention_head_floats(int64_t Lk, int64_t Dh)
{
  if (pick_ukernel().wide != ukernel_avx512_wide) return 0; /* no fused kernel on this CPU */
  const int64_t lkp = (Lk + 11) / 12 * 12, dhp = (Dh + 2 * NR - 1) / (2 * NR) * (2 * NR);
  /* K panels [lkp / 12][Dh][12], V panels [Lk][dhp], the queries' pair [2][Dh][16], the scores
     [lkp][32], 1/sum [32] */
  return (size_t)(lkp * Dh + Lk * dhp + HEAD_QB * Dh + lkp * HEAD_QB + HEAD_QB) + 64 + 4 * 16; /* + alignment */
}

/* s[j][c] = exp(s[j][c] - max_j) down the n rows (keys) of the 32 columns of s (row stride 32),
 * rows with mask[j] == 0 set to 0; inv[c] = 1 / the column's sum. A NaN score makes its column's
 * sum, and so its query's output, NaN (as in torch), whichever max it meets. */
__attribute__((target("avx512f"))) static void column_softmax32(float *s, int64_t n, const int32_t *mask, float *inv)
{
  __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, s0 = _mm512_setzero_ps(), s1 = s0;
  for (int64_t j = 0; j < n; j++) {
    if (mask && !mask[j]) continue;
    m0 = _mm512_max_ps(m0, _mm512_load_ps(s + j * HEAD_QB));
    m1 = _mm512_max_ps(m1, _mm512_load_ps(s + j * HEAD_QB + NR));
  }
  for (int64_t j = 0; j < n; j++) {
    float *sj = s + j * HEAD_QB;
    if (mask && !mask[j]) {
      _mm512_store_ps(sj, _mm512_setzero_ps());
      _mm512_store_ps(sj + NR, _mm512_setzero_ps());
      continue;
    }
    const __m512 e0 = t3d_exp_nonpos16(_mm512_sub_ps(_mm512_load_ps(sj), m0));
    const __m512 e1 = t3d_exp_nonpos16(_mm512_sub_ps(_mm512_load_ps(sj + NR), m1));
    _mm512_store_ps(sj, e0);
    _mm512_store_ps(sj + NR, e1);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
  }
  const __m512 one = _mm512_set1_ps(1.0f);
  _mm512_storeu_ps(inv, _mm512_div_ps(one, s0));
  _mm512_storeu_ps(inv + NR, _mm512_div_ps(one, s1));
}

__attribute__((target("avx512f"))) static void attention_head_512(const float *q, const float *k, const float *v,
                                                                  int64_t ld, int64_t nq, int64_t Lk, int64_t Dh,
                                                                  float scale, const int32_t *mask, float *y,
                                                                  int64_t ldy, float *scratch)
{
  enum { MR = 12 };
  const int64_t lkp = (Lk + MR - 1) / MR * MR, dhp = (Dh + 2 * NR - 1) / (2 * NR) * (2 * NR);
#define A16(n) (((n) + 15) / 16 * 16) /* whole cache lines: s^T is read by aligned loads */
  float *kp = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *vp = kp + A16(lkp * Dh);
  float *qb = vp + A16(Lk * dhp), *st = qb + A16(HEAD_QB * Dh), *inv = st + A16(lkp * HEAD_QB);
#undef A16
  /* A panels of K (12 keys, depth Dh; zero keys past Lk) and B panels of V (depth Lk, 16 dims) */
  for (int64_t j = 0; j < Lk; j += MR) pack_a_panel(kp + j * Dh, false, k, ld, j, Lk - j < MR ? Lk - j : MR, 0, Dh, MR);
  for (int64_t j = 0; j < dhp; j += NR) pack_b_panel(vp + j * Lk, false, v, ld, j, Dh - j, 0, Lk);
  for (int64_t i0 = 0; i0 < nq; i0 += HEAD_QB) {
    const int64_t rows = nq - i0 < HEAD_QB ? nq - i0 : HEAD_QB;
    /* the block's queries as B panels (zeros past rows), then s^T = k q^T * scale, 12 keys a tile */
    for (int64_t c = 0; c < HEAD_QB; c += NR)
      if (rows > c)
        pack_b_panel(qb + c * Dh, true, q, ld, i0 + c, rows - c, 0, Dh);
      else
        memset(qb + c * Dh, 0, (size_t)(NR * Dh) * sizeof *qb);
    for (int64_t j = 0; j < lkp; j += MR)
      ukernel_avx512_wide_as(Dh, kp + j * Dh, MR, qb, qb + NR * Dh, st + j * HEAD_QB, HEAD_QB,
                             (int)(Lk - j < MR ? Lk - j : MR), HEAD_QB, scale, NULL, false, NULL, 0);
    column_softmax32(st, Lk, mask, inv);
    for (int64_t i = 0; i < rows; i += MR) { /* y rows i0 + i: A = s^T's columns [i, i + 12) */
      const int r = (int)(rows - i < MR ? rows - i : MR);
      for (int64_t j = 0; j < dhp; j += 2 * NR) {
        const int64_t cols = Dh - j < 2 * NR ? Dh - j : 2 * NR;
        const float *b0 = vp + j * Lk;
        ukernel_avx512_wide_as(Lk, st + i, HEAD_QB, b0, cols > NR ? b0 + NR * Lk : b0, y + (i0 + i) * ldy + j, ldy, r,
                               (int)cols, 1.0f, NULL, false, NULL, 0);
      }
    }
    for (int64_t r = 0; r < rows; r++) {
      float *yr = y + (i0 + r) * ldy;
      const __m512 s = _mm512_set1_ps(inv[r]);
      for (int64_t d = 0; d < Dh; d += NR) {
        const __mmask16 m = Dh - d >= NR ? (__mmask16)0xffff : (__mmask16)((1u << (Dh - d)) - 1u);
        _mm512_mask_storeu_ps(yr + d, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yr + d), s));
      }
    }
  }
}

void t3d_cpu_attention_head(const float *q, const float *k, const float *v, int64_t ld, int64_t nq, int64_t Lk,
                            int64_t Dh, float scale, const int32_t *mask, float *y, int64_t ldy, float *scratch)
{
  assert(pick_ukernel().wide == ukernel_avx512_wide); /* t3d_cpu_attention_head_floats > 0 */
  attention_head_512(q, k, v, ld, nq, Lk, Dh, scale, mask, y, ldy, scratch);
}
#else
size_t t3d_cpu_attention_head_floats(int64_t Lk, int64_t Dh)
{
  (void)Lk, (void)Dh;
  return 0;
}
void t3d_cpu_attention_head(const float *q, const float *k, const float *v, int64_t ld, int64_t nq, int64_t Lk,
                            int64_t Dh, float scale, const int32_t *mask, float *y, int64_t ldy, float *scratch)
{
  (void)q, (void)k, (void)v, (void)ld, (void)nq, (void)Lk, (void)Dh, (void)scale, (void)mask, (void)y, (void)ldy;
  (void)scratch;
  assert(!"t3d_cpu_attention_head: no fused kernel in this build (t3d_cpu_attention_head_floats is 0)");
}
#endif

void t3d_cpu_sgemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, int threads)
{
  sgemm_run(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, NULL, NULL, beta, C, ldc, threads);
}

size_t t3d_cpu_sgemm_packed_b_floats(int64_t N, int64_t K)
{
  return N > 0 && K > 0 ? (size_t)((N + NR - 1) / NR) * NR * (size_t)K : 0;
}

void t3d_cpu_sgemm_pack_b(float *dst, bool trans_b, const float *B, int64_t ldb, int64_t N, int64_t K)
{
  const int64_t npanels = (N + NR - 1) / NR;
#pragma omp parallel for schedule(static) if (N * K >= (1 << 16))
  for (int64_t q = 0; q < npanels; q++)
    pack_b_panel(dst + q * K * NR, trans_b, B, ldb, q * NR, N - q * NR, 0, K);
}

void t3d_cpu_sgemm_packed(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                          const float *Bp, float beta, float *C, int64_t ldc, int threads)
{
  sgemm_run(trans_a, false, M, N, K, alpha, A, lda, NULL, 0, Bp, NULL, beta, C, ldc, threads);
}

void t3d_cpu_sgemm_packed_bias(bool trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                               const float *Bp, const float *bias, float *C, int64_t ldc, int threads)
{
  sgemm_run(trans_a, false, M, N, K, 1.0f, A, lda, NULL, 0, Bp, bias, 0.0f, C, ldc, threads);
}

/* ---- whether OpenBLAS's kernels fit this CPU ------------------------------------------------
 * OpenBLAS picks its kernels by CPU model once, when it loads. A model it does not know (a newer
 * Xeon, or a virtual machine that reports a generic "Intel Xeon Processor") gets its oldest SSE3
 * kernels, "Prescott": measured on such a machine (AVX-512, OpenBLAS 0.3.21), the text tower's
 * [256,768]x[768,3072] GEMM ran at 17 GFLOP/s there against 80-100 in t3d's own AVX-512 kernel and
 * 105-113 in OpenBLAS's SkylakeX one (OPENBLAS_CORETYPE=SKYLAKEX), and the whole text row took
 * 2.4 s instead of 0.56. So OpenBLAS is used only when its kernels use the CPU's widest vectors;
 * otherwise t3d_cpu_sgemm_blocked runs. T3D_GEMM=openblas or T3D_GEMM=t3d overrides the choice. */

#if defined(HAVE_OPENBLAS) && defined(T3D_X86)
static bool core_in(const char *core, const char *const *names)
{
  for (; *names; names++)
    if (strcasecmp(core, *names) == 0) return true;
  return false;
}
#endif

static bool blas_fits;
static char gemm_desc[128];
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static const char *own_isa(void)
{
#ifdef T3D_X86
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2+fma";
#endif
  return "C";
}

static void decide_blas(void)
{
#ifdef HAVE_OPENBLAS
  const char *env = getenv("T3D_GEMM"), *core = openblas_get_corename();
  if (!core) core = "unknown";
  blas_fits = true;
  if (env && strcmp(env, "t3d") == 0) {
    blas_fits = false;
  } else if (!(env && strcmp(env, "openblas") == 0)) {
#ifdef T3D_X86
    static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    if (__builtin_cpu_supports("avx512f"))
      blas_fits = core_in(core, avx512_cores);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      blas_fits = core_in(core, avx2_cores);
#endif
  }
  if (blas_fits)
    snprintf(gemm_desc, sizeof gemm_desc, "OpenBLAS sgemm (%s)", core);
  else
    snprintf(gemm_desc, sizeof gemm_desc, "t3d sgemm (%s; OpenBLAS's %s kernels %s)", own_isa(), core,
             env && strcmp(env, "t3d") == 0 ? "not used: T3D_GEMM=t3d" : "do not fit this CPU");
#else
  blas_fits = false;
  snprintf(gemm_desc, sizeof gemm_desc, "t3d sgemm (%s)", own_isa());
#endif
}

bool t3d_cpu_openblas_fits(void)
{
  pthread_once(&blas_once, decide_blas);
  return blas_fits;
}

const char *t3d_cpu_gemm_desc(void)
{
  pthread_once(&blas_once, decide_blas);
  return gemm_desc;
}

void t3d_cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, int threads)
{
#ifdef HAVE_OPENBLAS
  if (t3d_cpu_openblas_fits() && M > 0 && N > 0 && K > 0 && M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX &&
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
