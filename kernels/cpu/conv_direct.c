/* Direct AVX2 + FMA 3x3x3 "same" convolution (stride 1, padding 1) in NCDHW, for layers with few
 * output channels: no im2col and no packed B. Each register tile is 4 output channels x 24
 * positions of one output row (12 accumulators), summed over every input channel and every
 * in-range tap straight from x's rows: out-of-range z/y taps are skipped, the x padding comes from
 * masked loads at the row ends. With 16-32 output channels (the segmentation decoder's two full-
 * resolution blocks) the packed path spends as long packing each B element as the 16-32 FMAs that
 * use it; here an input vector is loaded once per 4 channels from L1 and nothing is copied. The
 * weights are re-laid out once per call as [channel block][ci][tap][4] so a tile's four broadcasts
 * are adjacent. Not for wide layers: a row segment re-reads all Ci x 27 x Co weights. */
#include "config.h"

#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/cpu/conv.h"

#define DR 4  /* output channels per register tile */
#define DV 3  /* 8-float vectors per register tile row: 24 positions */
#define DSEG (8 * DV)

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

typedef struct {
  int64_t Ci, Co, D, H, W;
  const float *x;  /* sample n */
  const float *wp; /* [ceil(Co/4)][Ci][27][4] */
  const float *bias, *res;
  float *y; /* sample n (res likewise) */
  bool relu;
} drow;

/* Accumulator c<r><j>: channel r of the tile, positions 8j..8j+7 (named registers: arrays of
 * __m256 indexed in loops were spilled to the stack by GCC -O2). */
#define D_FMA_ROW(r)                                   \
  do {                                                 \
    const __m256 w_ = _mm256_broadcast_ss(wt + (r));   \
    c##r##0 = _mm256_fmadd_ps(w_, b0, c##r##0);        \
    c##r##1 = _mm256_fmadd_ps(w_, b1, c##r##1);        \
    c##r##2 = _mm256_fmadd_ps(w_, b2, c##r##2);        \
  } while (0)
#define D_TAP(LOAD)                                   \
  do {                                                \
    const __m256 b0 = LOAD(0), b1 = LOAD(1), b2 = LOAD(2); \
    D_FMA_ROW(0);                                     \
    D_FMA_ROW(1);                                     \
    D_FMA_ROW(2);                                     \
    D_FMA_ROW(3);                                     \
  } while (0)

/* Sums of one tile over every input channel and in-range tap: channels [co, co+4) (the weights'
 * block wb) x positions [x0, x0+24) of output row (z, yy); LOAD(j) reads vector j of tap dx (masked by
 * m where loads may fall outside [0, W): first segment, last ones, narrow rows). */
#define D_SUMS(LOAD)                                                                            \
  for (int64_t ci = 0; ci < a->Ci; ci++) {                                                           \
    const float *xc = a->x + ci * DHW, *wc = wb + ci * 27 * DR;                                      \
    for (int dz = dz0; dz <= dz1; dz++)                                                              \
      for (int dy = dy0; dy <= dy1; dy++) {                                                          \
        const float *row = xc + ((z + dz - 1) * H + (yy + dy - 1)) * W + x0 - 1;                     \
        const float *wt = wc + (dz * 9 + dy * 3) * DR;                                               \
        int dx = 0;                                                                                  \
        D_TAP(LOAD);                                                                                 \
        dx = 1, wt += DR;                                                                            \
        D_TAP(LOAD);                                                                                 \
        dx = 2, wt += DR;                                                                            \
        D_TAP(LOAD);                                                                                 \
        (void)dx;                                                                                    \
      }                                                                                              \
  }
#define D_LOADU(j) _mm256_loadu_ps(row + dx + 8 * (j))
#define D_LOADM(j) _mm256_maskload_ps(row + dx + 8 * (j), m[dx][j])

/* One tile: channels [co, co+rows) x positions [x0, x0+cols) of output row (z, yy), with bias,
 * residual and ReLU. edge: some loads fall outside [0, W) and are masked. */
__attribute__((target("avx2,fma"))) static void direct_tile(const drow *a, int64_t z, int64_t yy, int64_t co,
                                                          int rows, int64_t x0, int cols, bool edge)
{
  const int64_t H = a->H, W = a->W, DHW = a->D * H * W;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  const int dz0 = z == 0 ? 1 : 0, dz1 = z == a->D - 1 ? 1 : 2;
  const int dy0 = yy == 0 ? 1 : 0, dy1 = yy == H - 1 ? 1 : 2;
  const float *wb = a->wp + (co / DR) * a->Ci * 27 * DR;
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  if (edge) {
    __m256i m[3][DV]; /* per dx and vector: lanes whose input index x0 + 8j + lane + dx - 1 is in [0, W) */
    for (int dx = 0; dx < 3; dx++)
      for (int j = 0; j < DV; j++) {
        __m256i idx = _mm256_add_epi32(lanes, _mm256_set1_epi32((int)(x0 + 8 * j + dx - 1)));
        m[dx][j] = _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1)),
                                    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)W), idx));
      }
    D_SUMS(D_LOADM)
  } else {
    D_SUMS(D_LOADU)
  }
  __m256 acc[DR][DV] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
  const int64_t P = DHW, off = (z * H + yy) * W + x0;
  const __m256 zero = _mm256_setzero_ps();
  for (int r = 0; r < rows; r++) {
    float *yr = a->y + (co + r) * P + off;
    const float *rr = a->res ? a->res + (co + r) * P + off : NULL;
    const __m256 bias = a->bias ? _mm256_set1_ps(a->bias[co + r]) : zero;
    for (int j = 0; j < DV && 8 * j < cols; j++) {
      __m256 v = _mm256_add_ps(acc[r][j], bias);
      if (cols >= 8 * (j + 1)) {
        if (rr) v = _mm256_add_ps(v, _mm256_loadu_ps(rr + 8 * j));
        if (a->relu) v = _mm256_max_ps(v, zero);
        _mm256_storeu_ps(yr + 8 * j, v);
      } else {
        __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8 * j), lanes);
        if (rr) v = _mm256_add_ps(v, _mm256_maskload_ps(rr + 8 * j, keep));
        if (a->relu) v = _mm256_max_ps(v, zero);
        _mm256_maskstore_ps(yr + 8 * j, keep, v);
      }
    }
  }
}

t3d_status t3d_cpu_conv3d_direct3(int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                  float *y, const float *x, const float *w, const float *bias, const float *res,
                                  bool relu, const volatile int *cancel)
{
  const int64_t cblocks = (Co + DR - 1) / DR;
  const size_t wfloats = (size_t)cblocks * (size_t)Ci * 27 * DR;
  float *wp = t3d_aligned_alloc(wfloats * sizeof(float));
  if (!wp) return t3d_error(T3D_ERR_NOMEM, "conv3d: cannot allocate %zu bytes of re-laid weights", wfloats * 4);
  for (int64_t cb = 0; cb < cblocks; cb++) /* [cb][ci][tap][r] = w[cb*4 + r][ci][tap], 0 past Co */
    for (int64_t ci = 0; ci < Ci; ci++)
      for (int t = 0; t < 27; t++)
        for (int r = 0; r < DR; r++) {
          int64_t co = cb * DR + r;
          wp[((cb * Ci + ci) * 27 + t) * DR + r] = co < Co ? w[(co * Ci + ci) * 27 + t] : 0.0f;
        }
  const int64_t rowsN = N * D * H, DHW = D * H * W;
  const int64_t segs = (W + DSEG - 1) / DSEG;
  int nthr = threads < 1 ? 1 : threads;
  if (nthr > rowsN) nthr = (int)rowsN;
#pragma omp parallel for num_threads(nthr) schedule(dynamic, 4)
  for (int64_t rix = 0; rix < rowsN; rix++) {
    if (cancel && *cancel) continue;
    int64_t n = rix / (D * H), z = rix / H % D, yy = rix % H;
    drow a = {Ci, Co, D, H, W, x + n * Ci * DHW, wp, bias, res ? res + n * Co * DHW : NULL, y + n * Co * DHW, relu};
    for (int64_t s = 0; s < segs; s++) {
      int64_t x0 = s * DSEG;
      int cols = (int)(W - x0 < DSEG ? W - x0 : DSEG);
      bool edge = x0 == 0 || x0 + DSEG + 1 > W;
      for (int64_t co = 0; co < Co; co += DR)
        direct_tile(&a, z, yy, co, (int)(Co - co < DR ? Co - co : DR), x0, cols, edge);
    }
  }
  t3d_aligned_free(wp);
  if (cancel && *cancel) return t3d_error(T3D_ERR_CANCELLED, "conv3d cancelled");
  return T3D_OK;
}

#endif /* x86-64 with GCC / Clang, the only builds where conv.c calls it */
