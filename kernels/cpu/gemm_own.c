/* t3d's own single-threaded sgemm for builds without OpenBLAS: BLIS-style blocking (B panel
 * in L2, A strip and B micro-panel in L1) around an AVX-512, AVX2+FMA or plain C micro-kernel
 * picked at run time. Only what the conv kernels need: row-major, optional A^T, beta 0 or 1. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define T3D_GEMM_X86 1
#endif

#include "kernels/cpu/conv.h"

#define KC 256  /* depth of a packed panel */
#define MC 96   /* rows of a packed A block: a multiple of every MR below */
#define NC 1024 /* columns of a packed B panel */
#define NR_MAX 32

typedef void (*micro_kernel)(int kc, const float *ap, const float *bp, float *c, int ldc, bool accumulate);

typedef struct {
  int mr, nr;
  micro_kernel kern;
} kernel_info;

/* c[MR x NR] (+)= sum_k ap[k*MR + i] * bp[k*NR + j] */
static void kernel_c(int kc, const float *ap, const float *bp, float *c, int ldc, bool accumulate)
{
  enum { MR = 4, NR = 8 };
  float acc[MR][NR] = {{0}};
  for (int k = 0; k < kc; k++, ap += MR, bp += NR)
    for (int i = 0; i < MR; i++)
      for (int j = 0; j < NR; j++) acc[i][j] += ap[i] * bp[j];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#ifdef T3D_GEMM_X86
__attribute__((target("avx2,fma"))) static void kernel_avx2(int kc, const float *ap, const float *bp, float *c,
                                                            int ldc, bool accumulate)
{
  enum { MR = 6 };
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int k = 0; k < kc; k++, ap += MR, bp += 16) {
    __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      __m256 a = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < MR; i++) {
    float *ci = c + (size_t)i * ldc;
    if (accumulate) {
      acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
      acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
    }
    _mm256_storeu_ps(ci, acc[i][0]);
    _mm256_storeu_ps(ci + 8, acc[i][1]);
  }
}

__attribute__((target("avx512f"))) static void kernel_avx512(int kc, const float *ap, const float *bp, float *c,
                                                             int ldc, bool accumulate)
{
  enum { MR = 8 };
  __m512 acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int k = 0; k < kc; k++, ap += MR, bp += 32) {
    __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      __m512 a = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < MR; i++) {
    float *ci = c + (size_t)i * ldc;
    if (accumulate) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(ci));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(ci + 16));
    }
    _mm512_storeu_ps(ci, acc[i][0]);
    _mm512_storeu_ps(ci + 16, acc[i][1]);
  }
}
#endif

static int forced_isa; /* test hook: 0 auto, 1 plain C, 2 AVX2, 3 AVX-512 */

int t3d_cpu_sgemm_own_force_isa(int isa)
{
  int old = forced_isa;
  forced_isa = isa;
  return old;
}

static kernel_info pick_kernel(void)
{
#ifdef T3D_GEMM_X86
  bool avx512 = __builtin_cpu_supports("avx512f");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512 && (forced_isa == 0 || forced_isa == 3)) return (kernel_info){8, 32, kernel_avx512};
  if (avx2 && forced_isa != 1) return (kernel_info){6, 16, kernel_avx2};
#endif
  return (kernel_info){4, 8, kernel_c};
}

size_t t3d_cpu_sgemm_own_ws_floats(int n)
{
  int nc = n < NC ? n : NC;
  nc = (nc + NR_MAX - 1) / NR_MAX * NR_MAX;
  return (size_t)MC * KC + (size_t)KC * (size_t)nc;
}

/* ap[strip][k][r] = A(i0 + strip*mr + r, p0 + k), zero beyond the last row. */
static void pack_a(float *ap, bool trans_a, const float *a, int lda, int i0, int mc, int p0, int kc, int mr)
{
  for (int s = 0; s < mc; s += mr) {
    int rows = mc - s < mr ? mc - s : mr;
    for (int k = 0; k < kc; k++) {
      for (int r = 0; r < rows; r++) {
        int i = i0 + s + r, kk = p0 + k;
        ap[k * mr + r] = trans_a ? a[(size_t)kk * lda + i] : a[(size_t)i * lda + kk];
      }
      for (int r = rows; r < mr; r++) ap[k * mr + r] = 0.0f;
    }
    ap += (size_t)mr * kc;
  }
}

/* bp[strip][k][j] = B(p0 + k, j0 + strip*nr + j), zero beyond the last column. */
static void pack_b(float *bp, const float *b, int ldb, int p0, int kc, int j0, int nc, int nr)
{
  for (int s = 0; s < nc; s += nr) {
    int cols = nc - s < nr ? nc - s : nr;
    for (int k = 0; k < kc; k++) {
      const float *src = b + (size_t)(p0 + k) * ldb + j0 + s;
      memcpy(bp + k * nr, src, (size_t)cols * sizeof(float));
      for (int j = cols; j < nr; j++) bp[k * nr + j] = 0.0f;
    }
    bp += (size_t)nr * kc;
  }
}

void t3d_cpu_sgemm_own(bool trans_a, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                       float beta, float *c, int ldc, float *ws)
{
  assert(ws && ((uintptr_t)ws % 64) == 0);
  assert(beta == 0.0f || beta == 1.0f);
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (beta == 0.0f)
      for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof(float));
    return;
  }
  const kernel_info ki = pick_kernel();
  const int mr = ki.mr, nr = ki.nr;
  float *ap = ws, *bp = ws + (size_t)MC * KC;
  float tile[8 * NR_MAX] __attribute__((aligned(64)));

  for (int j0 = 0; j0 < n; j0 += NC) {
    int nc = n - j0 < NC ? n - j0 : NC;
    for (int p0 = 0; p0 < k; p0 += KC) {
      int kc = k - p0 < KC ? k - p0 : KC;
      bool acc = p0 > 0 || beta != 0.0f;
      pack_b(bp, b, ldb, p0, kc, j0, nc, nr);
      for (int i0 = 0; i0 < m; i0 += MC) {
        int mc = m - i0 < MC ? m - i0 : MC;
        pack_a(ap, trans_a, a, lda, i0, mc, p0, kc, mr);
        for (int jr = 0; jr < nc; jr += nr) {
          int cols = nc - jr < nr ? nc - jr : nr;
          const float *bs = bp + (size_t)jr * kc;
          for (int ir = 0; ir < mc; ir += mr) {
            int rows = mc - ir < mr ? mc - ir : mr;
            const float *as = ap + (size_t)ir * kc;
            float *ct = c + (size_t)(i0 + ir) * ldc + j0 + jr;
            if (rows == mr && cols == nr) {
              ki.kern(kc, as, bs, ct, ldc, acc);
            } else { /* edge: full tile into a buffer, then the valid part */
              ki.kern(kc, as, bs, tile, nr, false);
              for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                  ct[(size_t)i * ldc + j] = acc ? ct[(size_t)i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
            }
          }
        }
      }
    }
  }
}
