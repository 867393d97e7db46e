/* CPU ops that work elementwise or along one row: relu, add, exact GELU, softmax and layernorm
 * over the last dimension, argmax over dimension 1, concat on dimension 1, embedding lookup.
 * fp32, OpenMP over rows/blocks, SIMD via gcc clones. Shapes were checked by kernels/backend.c. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_simd.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define T3D_GELU_X86 1 /* explicit AVX-512 / AVX2 GELU, chosen at run time */
#include <immintrin.h>
#endif

#define BLOCK 16384 /* elements per parallel chunk of elementwise loops */

T3D_SIMD_CLONES
static void relu_block(float *restrict y, const float *restrict x, int64_t n)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN passes through, as in torch.relu */
}

/* In place (y == x) needs its own loop: restrict would be a lie. */
T3D_SIMD_CLONES
static void relu_block_inplace(float *y, int64_t n)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    y[i] = y[i] < 0.0f ? 0.0f : y[i];
}

t3d_status t3d_cpu_relu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t n = t3d_tensor_numel(x), nblocks = (n + BLOCK - 1) / BLOCK;
  float *yd = y->data;
  const float *xd = x->data;
#pragma omp parallel for num_threads(t3d_cpu_threads_stream(be->threads, n, T3D_CPU_NS_ADD)) schedule(static)
  for (int64_t b = 0; b < nblocks; b++) {
    int64_t i0 = b * BLOCK, len = n - i0 < BLOCK ? n - i0 : BLOCK;
    if (yd == xd)
      relu_block_inplace(yd + i0, len);
    else
      relu_block(yd + i0, xd + i0, len);
  }
  return T3D_OK;
}

T3D_SIMD_CLONES
static void add_block(float *y, const float *a, const float *b, int64_t n)
{
  /* y may be a or b: each element is read before it is written, at the same index. */
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    y[i] = a[i] + b[i];
}

t3d_status t3d_cpu_add(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b)
{
  const int64_t n = t3d_tensor_numel(a), nblocks = (n + BLOCK - 1) / BLOCK;
  float *yd = y->data;
  const float *ad = a->data, *bd = b->data;
#pragma omp parallel for num_threads(t3d_cpu_threads_stream(be->threads, n, T3D_CPU_NS_ADD)) schedule(static)
  for (int64_t k = 0; k < nblocks; k++) {
    int64_t i0 = k * BLOCK, len = n - i0 < BLOCK ? n - i0 : BLOCK;
    add_block(yd + i0, ad + i0, bd + i0, len);
  }
  return T3D_OK;
}

/* erfc(t) for t >= 0 as exp(-t^2) R(u), u = 1/(1 + t/2), R a degree-9 polynomial we fitted
 * (relative-error least squares on Chebyshev nodes, t in [0, 9.5]; beyond, exp(-t^2) is 0 in
 * float). Max relative error of R in float arithmetic 3e-7; vectorises, unlike erfcf. */
static inline float erfc_nonneg(float t)
{
  const float u = 1.0f / (1.0f + 0.5f * t);
  float r = -5.412839353e-02f;
  r = r * u + 2.590737641e-01f;
  r = r * u - 4.305871725e-01f;
  r = r * u + 2.073377520e-01f;
  r = r * u + 2.800084464e-02f;
  r = r * u + 1.757294536e-01f;
  r = r * u + 2.515767217e-01f;
  r = r * u + 2.807443142e-01f;
  r = r * u + 2.822605371e-01f;
  r = r * u - 7.845733307e-06f;
  return r * t3d_exp_nonpos(-t * t);
}

/* Exact GELU, x Phi(x) with Phi from erfc of |x|/sqrt 2. For x < 0 this keeps relative
 * precision where PyTorch's 0.5 x (1 + erf) cancels. Measured against the exact value: ours
 * 1.1e-6 relative on [-3, 3], 4e-6 on [-6, -3], 1.5e-5 below -9 (values < 1e-18); torch 1.13
 * 6e-5 relative on x > -3 and worse below; ours vs torch at most 5e-7 absolute on [-12, 12].
 * gelu_block is the portable reference; x86-64 runs gelu_block_avx512 / gelu_block_avx2 below:
 * the same formula with explicit FMAs (the project builds with -std=c11, which turns gcc's FMA
 * contraction off, so the auto-vectorised clone paid for separate multiplies and adds), and on
 * AVX-512 a table of polynomials for |x| < 4 (2.0e-7 relative on [-3, 3]; 3.7e-6 on [-6, -3]
 * and the tails as above, measured over 2.4 M points of [-12, 12] against double erfc). */
T3D_SIMD_CLONES
static void gelu_block(float *y, const float *x, int64_t n)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i], e = erfc_nonneg(fabsf(v) * 0.70710678118654752f);
    y[i] = v * (v >= 0.0f ? 1.0f - 0.5f * e : 0.5f * e);
  }
}

#ifdef T3D_GELU_X86

/* Coefficients of R in erfc_nonneg, highest degree first. */
static const float gelu_r[10] = {
  -5.412839353e-02f, 2.590737641e-01f, -4.305871725e-01f, 2.073377520e-01f, 2.800084464e-02f,
  1.757294536e-01f,  2.515767217e-01f, 2.807443142e-01f,  2.822605371e-01f, -7.845733307e-06f,
};

/* 16 lanes of gelu_block. t is clamped to 10 (erfc is 0 in float from 9.2 on) so 1 + t/2 stays
 * finite; NaN inputs give NaN through the final multiply by v. 1/(1 + t/2) is rcp14 plus one
 * Newton step (relative error ~2^-28, below float rounding), not a division. */
__attribute__((target("avx512f"))) static inline __m512 gelu16(__m512 v)
{
  const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
  const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
  const __m512 t = _mm512_min_ps(_mm512_mul_ps(a, _mm512_set1_ps(0.70710678118654752f)), _mm512_set1_ps(10.0f));
  const __m512 d = _mm512_fmadd_ps(half, t, one);
  __m512 u = _mm512_rcp14_ps(d), r, x2, p, e;
  u = _mm512_fmadd_ps(_mm512_fnmadd_ps(d, u, one), u, u);
  r = _mm512_set1_ps(gelu_r[0]);
#pragma GCC unroll 10
  for (int j = 1; j < 10; j++)
    r = _mm512_fmadd_ps(r, u, _mm512_set1_ps(gelu_r[j]));
  /* e^(-t^2); from -87 down (t > 9.3) erfc is 0 in float: t3d_exp_nonpos16 flushes below -87, the
     mask at -87 itself */
  x2 = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), t), t);
  p = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x2, _mm512_set1_ps(-87.0f), _CMP_GT_OQ), t3d_exp_nonpos16(x2));
  e = _mm512_mul_ps(_mm512_mul_ps(r, p), half); /* erfc(t) / 2 = Phi(-|x|) */
  /* x >= 0: x (1 - e); x < 0: x e. A NaN x takes the x >= 0 form; both give NaN. */
  return _mm512_mul_ps(v, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ),
                                               _mm512_sub_ps(one, e), e));
}

/* Phi(-a) for a in [0, 4), piecewise: 16 intervals [i/4, (i+1)/4), on each a degree-6
 * polynomial in s = a - (i + 1/2)/4 (relative-error least squares on Chebyshev nodes, fitted
 * against double erfc). Max relative error in float arithmetic 1.7e-7. Row j holds the
 * coefficients of s^(6-j) for the 16 intervals, picked per lane by vpermps: no exp, no division. */
static const float gelu_tab[7][16] __attribute__((aligned(64))) = {
  {1.023838413e-03f, 2.632220974e-03f, 3.192772390e-03f, 2.608426148e-03f, 1.294890535e-03f, -1.042551448e-04f, -1.066012192e-03f, -1.392118051e-03f, -1.196090016e-03f, -7.461532950e-04f, -2.942169376e-04f, 1.867363608e-05f, 1.668179757e-04f, 1.931078441e-04f, 1.574002090e-04f, 1.055709290e-04f},
  {-9.556862526e-03f, -6.725006271e-03f, -2.212514635e-03f, 2.267959761e-03f, 5.259857979e-03f, 6.141380407e-03f, 5.202094559e-03f, 3.286427818e-03f, 1.293131616e-03f, -1.851999841e-04f, -9.626878309e-04f, -1.154878875e-03f, -1.000504708e-03f, -7.199686370e-04f, -4.518859496e-04f, -2.532296348e-04f},
  {-6.152892020e-03f, -1.661367528e-02f, -2.229923941e-02f, -2.216180973e-02f, -1.722506806e-02f, -9.852062911e-03f, -2.592280740e-03f, 2.770891646e-03f, 5.598669872e-03f, 6.211742759e-03f, 5.414503161e-03f, 4.035733175e-03f, 2.662413521e-03f, 1.582439058e-03f, 8.563115844e-04f, 4.247530596e-04f},
  {6.494188309e-02f, 5.326035619e-02f, 3.332885355e-02f, 1.062727533e-02f, -9.379778057e-03f, -2.300948277e-02f, -2.913147956e-02f, -2.884007618e-02f, -2.444593422e-02f, -1.838613674e-02f, -1.249227766e-02f, -7.747751195e-03f, -4.415339325e-03f, -2.322508954e-03f, -1.131220255e-03f, -5.114047672e-04f},
  {2.473985590e-02f, 6.972283125e-02f, 1.025503054e-01f, 1.190240607e-01f, 1.191806123e-01f, 1.065709293e-01f, 8.656234294e-02f, 6.448713690e-02f, 4.432854801e-02f, 2.822913229e-02f, 1.670048945e-02f, 9.197298437e-03f, 4.722278100e-03f, 2.263138071e-03f, 1.013298868e-03f, 4.241799179e-04f},
  {-3.958376944e-01f, -3.718550801e-01f, -3.281609714e-01f, -2.720550001e-01f, -2.118766457e-01f, -1.550122648e-01f, -1.065382659e-01f, -6.878627837e-02f, -4.172098637e-02f, -2.377190068e-02f, -1.272418164e-02f, -6.398120429e-03f, -3.022257937e-03f, -1.341118827e-03f, -5.590615328e-04f, -2.189316438e-04f},
  {4.502617717e-01f, 3.538302481e-01f, 2.659855187e-01f, 1.907869577e-01f, 1.302945167e-01f, 8.456572145e-02f, 5.208127946e-02f, 3.039636090e-02f, 1.679330692e-02f, 8.774475195e-03f, 4.332448356e-03f, 2.020137385e-03f, 8.890252793e-04f, 3.690784506e-04f, 1.444807276e-04f, 5.331234934e-05f},
};

/* 16 lanes; every |x| < 4 (NaN is not). Same result as gelu16 to ~2e-7 relative. */
__attribute__((target("avx512f"))) static inline __m512 gelu16_table(__m512 v, __m512 a)
{
  const __m512i idx = _mm512_cvttps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(4.0f)));
  const __m512 s = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(idx), _mm512_set1_ps(0.25f), _mm512_sub_ps(a, _mm512_set1_ps(0.125f)));
  __m512 q = _mm512_permutexvar_ps(idx, _mm512_load_ps(gelu_tab[0]));
#pragma GCC unroll 8
  for (int j = 1; j < 7; j++)
    q = _mm512_fmadd_ps(q, s, _mm512_permutexvar_ps(idx, _mm512_load_ps(gelu_tab[j])));
  return _mm512_mul_ps(v, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ),
                                               _mm512_sub_ps(_mm512_set1_ps(1.0f), q), q));
}

/* The table when all 16 |x| are below 4 (almost always for transformer activations), else the
 * erfc form, which also covers the tails, infinities and NaN. */
__attribute__((target("avx512f"))) static inline __m512 gelu16_any(__m512 v)
{
  const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
  if (_mm512_cmp_ps_mask(a, _mm512_set1_ps(4.0f), _CMP_NLT_UQ))
    return gelu16(v);
  return gelu16_table(v, a);
}

__attribute__((target("avx512f"))) static void gelu_block_avx512(float *y, const float *x, int64_t n)
{
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, gelu16_any(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, gelu16_any(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

/* 8 lanes, AVX2 + FMA: as gelu16 with a true division (rcp_ps has only 12 bits) and the 2^n
 * scale built from the exponent bits as in t3d_exp_nonpos. */
__attribute__((target("avx2,fma"))) static inline __m256 gelu8(__m256 v)
{
  const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
  const __m256 t = _mm256_min_ps(_mm256_mul_ps(a, _mm256_set1_ps(0.70710678118654752f)), _mm256_set1_ps(10.0f));
  const __m256 u = _mm256_div_ps(one, _mm256_fmadd_ps(half, t, one));
  __m256 r = _mm256_set1_ps(gelu_r[0]), x2, k, n, f, p, e, scale;
#pragma GCC unroll 10
  for (int j = 1; j < 10; j++)
    r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(gelu_r[j]));
  x2 = _mm256_max_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), t), t), _mm256_set1_ps(-87.0f));
  k = _mm256_fmadd_ps(x2, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(12582912.0f));
  n = _mm256_sub_ps(k, _mm256_set1_ps(12582912.0f));
  f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x2);
  f = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f), f);
  p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, f, half);
  p = _mm256_fmadd_ps(p, f, one);
  p = _mm256_fmadd_ps(p, f, one);
  scale = _mm256_castsi256_ps(_mm256_slli_epi32(
    _mm256_add_epi32(_mm256_castps_si256(k), _mm256_set1_epi32((int)(127u - 0x4B400000u))), 23));
  p = _mm256_and_ps(_mm256_mul_ps(p, scale), _mm256_cmp_ps(x2, _mm256_set1_ps(-87.0f), _CMP_GT_OQ));
  e = _mm256_mul_ps(_mm256_mul_ps(r, p), half);
  return _mm256_mul_ps(v, _mm256_blendv_ps(_mm256_sub_ps(one, e), e,
                                           _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ)));
}

__attribute__((target("avx2,fma"))) static void gelu_block_avx2(float *y, const float *x, int64_t n)
{
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float tx[8] = {0}, ty[8];
    memcpy(tx, x + i, (size_t)(n - i) * sizeof *tx);
    _mm256_storeu_ps(ty, gelu8(_mm256_loadu_ps(tx)));
    memcpy(y + i, ty, (size_t)(n - i) * sizeof *ty);
  }
}
#endif

typedef void (*gelu_fn)(float *, const float *, int64_t);

/* The widest GELU block the CPU runs. T3D_CPU_GELU=c (or avx2) in the environment caps it at the
 * portable (or AVX2) one, so that tests/test-cpu-ops checks every path on one machine. */
static gelu_fn gelu_pick(void)
{
  const char *cap = getenv("T3D_CPU_GELU");
  if (cap && strcmp(cap, "c") == 0)
    return gelu_block;
#ifdef T3D_GELU_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && !(cap && strcmp(cap, "avx2") == 0))
    return gelu_block_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return gelu_block_avx2;
#endif
  return gelu_block;
}

t3d_status t3d_cpu_gelu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t n = t3d_tensor_numel(x), nblocks = (n + BLOCK - 1) / BLOCK;
  float *yd = y->data;
  const float *xd = x->data;
  const gelu_fn fn = gelu_pick();
#pragma omp parallel for num_threads(t3d_cpu_threads_stream(be->threads, n, T3D_CPU_NS_GELU)) schedule(static)
  for (int64_t k = 0; k < nblocks; k++) {
    int64_t i0 = k * BLOCK, len = n - i0 < BLOCK ? n - i0 : BLOCK;
    fn(yd + i0, xd + i0, len); /* y may be x: same index read then written */
  }
  return T3D_OK;
}

/* One row of softmax; y may be x. Max-subtracted, so no overflow; a row of all -inf gives NaN,
 * as torch.softmax does. */
T3D_SIMD_CLONES
static void softmax_row(float *y, const float *x, int64_t n)
{
  float mx = -INFINITY, sum = 0.0f, inv;
  /* A NaN anywhere makes the sum, and so the whole row, NaN (as in torch) whatever max says. */
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < n; i++)
    mx = x[i] > mx ? x[i] : mx;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; i++) {
    float e = t3d_exp_nonpos(x[i] - mx);
    y[i] = e;
    sum += e;
  }
  inv = 1.0f / sum;
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    y[i] *= inv;
}

t3d_status t3d_cpu_softmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t n = x->shape[x->ndim - 1], rows = t3d_tensor_numel(x) / n;
  float *yd = y->data;
  const float *xd = x->data;
#pragma omp parallel for num_threads(t3d_cpu_threads_stream(be->threads, rows * n, T3D_CPU_NS_SOFTMAX)) schedule(static)
  for (int64_t r = 0; r < rows; r++)
    softmax_row(yd + r * n, xd + r * n, n);
  return T3D_OK;
}

/* One row of F.layer_norm. Sums run in float over values shifted by the row's first element, so
 * a large common offset does not cost precision (what double accumulation bought before); mean
 * and variance are two-pass. y may be x: each y[i] is written after its last read. */
T3D_SIMD_CLONES
static void layernorm_row(float *y, const float *x, const float *gamma, const float *beta, int64_t n, float eps)
{
  const float x0 = x[0];
  float s = 0.0f, q = 0.0f, dm, rstd;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++)
    s += x[i] - x0;
  dm = s / (float)n; /* mean - x0 */
#pragma omp simd reduction(+ : q)
  for (int64_t i = 0; i < n; i++) {
    float d = (x[i] - x0) - dm;
    q += d * d;
  }
  rstd = 1.0f / sqrtf(q / (float)n + eps);
  if (gamma && beta) { /* the selects below keep GCC -O2 from vectorising the AVX2 clone */
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
      y[i] = ((x[i] - x0) - dm) * rstd * gamma[i] + beta[i];
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    y[i] = ((x[i] - x0) - dm) * rstd * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
}

/* The same arithmetic with AVX-512 and four independent accumulators per sum, so the two
 * reductions are not one long chain of dependent adds (the float loop above runs at the add
 * latency). Rows shorter than 64 use the loop above. */
__attribute__((target("avx512f"))) static void layernorm_row_avx512(float *y, const float *x, const float *gamma,
                                                                    const float *beta, int64_t n, float eps)
{
  const float x0 = x[0]; /* kept: y may be x, and y[0] is written before the tail is done */
  const __m512 vx0 = _mm512_set1_ps(x0);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, vdm, vr;
  int64_t i, n64 = n & ~(int64_t)63;
  float s, q, dm, rstd;
  for (i = 0; i < n64; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_sub_ps(_mm512_loadu_ps(x + i), vx0));
    a1 = _mm512_add_ps(a1, _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vx0));
    a2 = _mm512_add_ps(a2, _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), vx0));
    a3 = _mm512_add_ps(a3, _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), vx0));
  }
  s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; i++)
    s += x[i] - x0;
  dm = s / (float)n;
  vdm = _mm512_set1_ps(dm);
  a0 = a1 = a2 = a3 = _mm512_setzero_ps();
  for (i = 0; i < n64; i += 64) {
    __m512 d0 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vx0), vdm);
    __m512 d1 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vx0), vdm);
    __m512 d2 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 32), vx0), vdm);
    __m512 d3 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 48), vx0), vdm);
    a0 = _mm512_fmadd_ps(d0, d0, a0);
    a1 = _mm512_fmadd_ps(d1, d1, a1);
    a2 = _mm512_fmadd_ps(d2, d2, a2);
    a3 = _mm512_fmadd_ps(d3, d3, a3);
  }
  q = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; i++) {
    float d = (x[i] - x0) - dm;
    q += d * d;
  }
  rstd = 1.0f / sqrtf(q / (float)n + eps);
  vr = _mm512_set1_ps(rstd);
  for (i = 0; i + 16 <= n; i += 16) {
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vx0), vdm), vr);
    if (gamma)
      v = _mm512_mul_ps(v, _mm512_loadu_ps(gamma + i));
    if (beta)
      v = _mm512_add_ps(v, _mm512_loadu_ps(beta + i));
    _mm512_storeu_ps(y + i, v);
  }
  for (; i < n; i++)
    y[i] = ((x[i] - x0) - dm) * rstd * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
}

t3d_status t3d_cpu_layernorm(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *gamma,
                             const t3d_tensor *beta, float eps)
{
  const int64_t n = x->shape[x->ndim - 1], rows = t3d_tensor_numel(x) / n;
  float *yd = y->data;
  const float *xd = x->data, *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;
  const bool use_avx512 = n >= 64 && __builtin_cpu_supports("avx512f");
#pragma omp parallel for num_threads(t3d_cpu_threads_stream(be->threads, rows * n, T3D_CPU_NS_LAYERNORM)) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    if (use_avx512)
      layernorm_row_avx512(yd + r * n, xd + r * n, g, b, n, eps);
    else
      layernorm_row(yd + r * n, xd + r * n, g, b, n, eps);
  }
  return T3D_OK;
}

/* argmax over channels for `len` consecutive spatial positions; x points at channel 0 of the
 * first one and channels are `stride` apart. First index wins ties; a NaN beats every number
 * and the first NaN wins, as torch.argmax does. */
T3D_SIMD_CLONES
static void argmax_run(int32_t *restrict y, const float *restrict x, int64_t channels, int64_t stride, int64_t len)
{
  float best[256];
  for (int64_t s = 0; s < len; s++) {
    best[s] = x[s];
    y[s] = 0;
  }
  for (int64_t c = 1; c < channels; c++) {
    const float *xc = x + c * stride;
#pragma omp simd
    for (int64_t s = 0; s < len; s++) {
      float v = xc[s], b = best[s];
      bool take = (v > b || v != v) && b == b;
      best[s] = take ? v : b;
      y[s] = take ? (int32_t)c : y[s];
    }
  }
}

t3d_status t3d_cpu_argmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t N = x->shape[0], C = x->shape[1], S = t3d_tensor_numel(x) / (N * C);
  const int64_t runs = (S + 255) / 256;
  int32_t *yd = y->data;
  const float *xd = x->data;
#pragma omp parallel for collapse(2) num_threads(t3d_cpu_threads_for(be->threads, N * C * S)) schedule(static)
  for (int64_t n = 0; n < N; n++)
    for (int64_t r = 0; r < runs; r++) {
      int64_t s0 = r * 256, len = S - s0 < 256 ? S - s0 : 256;
      argmax_run(yd + n * S + s0, xd + n * C * S + s0, C, S, len);
    }
  return T3D_OK;
}

t3d_status t3d_cpu_concat(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b)
{
  const int64_t N = a->shape[0];
  const size_t abytes = t3d_tensor_nbytes(a) / (size_t)N, bbytes = t3d_tensor_nbytes(b) / (size_t)N;
  char *yd = y->data;
  const char *ad = a->data, *bd = b->data;
#pragma omp parallel for num_threads(t3d_cpu_threads_for(be->threads, N > 1 ? (int64_t)(abytes + bbytes) : 0))
  for (int64_t n = 0; n < N; n++) {
    if (ad != yd) /* else a is y's head already (N = 1, see backend.h) */
      memcpy(yd + (size_t)n * (abytes + bbytes), ad + (size_t)n * abytes, abytes);
    memcpy(yd + (size_t)n * (abytes + bbytes) + abytes, bd + (size_t)n * bbytes, bbytes);
  }
  return T3D_OK;
}

t3d_status t3d_cpu_embedding(t3d_backend *be, t3d_tensor *y, const t3d_tensor *ids, const t3d_tensor *table)
{
  const int64_t n = t3d_tensor_numel(ids), V = table->shape[0], E = table->shape[1];
  const int32_t *id = ids->data;
  const float *td = table->data;
  float *yd = y->data;

  for (int64_t i = 0; i < n; i++) {
    if (id[i] < 0 || id[i] >= V) {
      char pos[96], d[96];
      int64_t idx[T3D_MAX_DIMS], rest = i;
      size_t used;
      for (int k = ids->ndim - 1; k >= 0; k--) { /* flat index -> position in ids, e.g. [1,17] */
        idx[k] = rest % ids->shape[k];
        rest /= ids->shape[k];
      }
      used = (size_t)snprintf(pos, sizeof pos, "[");
      for (int k = 0; k < ids->ndim && used < sizeof pos; k++)
        used += (size_t)snprintf(pos + used, sizeof pos - used, k ? ",%lld" : "%lld", (long long)idx[k]);
      if (used < sizeof pos)
        snprintf(pos + used, sizeof pos - used, "]");
      return t3d_error(T3D_ERR_INVALID_ARG,
                       "embedding: id %d at position %s of ids %s is outside the table's [0, %lld)",
                       (int)id[i], pos, t3d_tensor_describe(ids, d, sizeof d), (long long)V);
    }
  }
#pragma omp parallel for num_threads(t3d_cpu_threads_for(be->threads, n * E)) schedule(static)
  for (int64_t i = 0; i < n; i++)
    memcpy(yd + i * E, td + (int64_t)id[i] * E, (size_t)E * sizeof *yd);
  return T3D_OK;
}
