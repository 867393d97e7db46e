/* 3x3x3 stride-1 padding-1 convolution in NCDHW by Winograd's minimal filtering F(2x2x2, 3x3x3)
 * (Lavin & Gray 2016, in three dimensions), AVX2 + FMA. A 2x2x2 block of outputs ("tile") is
 *   y = A^T [ (G w G^T) . (B^T d B) ] A   applied along z, y and x,
 * with d the tile's 4x4x4 input patch: 64 products per input channel instead of 8 x 27 = 216, so
 * the GEMM work drops 3.375x for a few additions per element in the transforms. Per call the
 * weights are transformed once, U[e][co/4][ci][co%4] (e: the 64 transform-domain positions). A
 * work item is a run of up to WT consecutive tiles of one sample (a row of tiles may end inside
 * it): their inputs are transformed to V[e][ci][t], then for each e the product U_e (Co x Ci) V_e
 * (Ci x WT) goes to M[co][e][t] through 4 x 24 register tiles (ymm), and the output transform writes y
 * with the bias, residual and ReLU. On CPUs with AVX-512 the GEMM runs 8 x 32 register tiles of
 * zmm instead (runs of 32 tiles, U in groups of 8 channels), and both transforms 16 tiles at a time. The transforms vectorise over 8 tiles along x: a tile's x
 * inputs are inputs 2t-1 .. 2t+2, the even/odd lanes of the row. Measured (perf, l1.conv2): the
 * GEMM is about 60 % of the time, the input transform 30 % (its 64 scattered stores per tile and
 * channel; a V[ci][e][t] layout that makes them contiguous was slower overall), the output 15 %.
 * Accuracy: the transforms add up to 3 x 3 x 3 terms per dimension and G halves; the error
 * against the exact sum stays within a small multiple of the direct sum's (tests/test-conv.c
 * bounds it). On AVX-512 the same schedule (wino_run) also runs F(4x4x4, 3x3x3), 4x4x4 output
 * tiles from 6x6x6 patches (below: "F(4x4x4, 3x3x3)"), which conv.c takes for the layers with
 * few channels. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/cpu_simd.h"

#define WT 24 /* tiles per work item (GEMM columns) with AVX2: 48 was slower on every ResNet-50 layer */
#define WT512 32 /* the same with the AVX-512 GEMM: two zmm of columns */
#define NE 64 /* transform-domain positions of a 4x4x4 patch */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* U[e][co / g][ci][co % g] = (G (x) G (x) G) w[co][ci], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 * along kz, ky, kx; g = 4 (AVX2) or 8 (AVX-512) channels, a register tile's rows; CoG = Co rounded
 * up to g (the padding channels are zero). The g channels of a register tile are adjacent, so its
 * A operand is one sequential stream. One call makes the g channels of group cg for every ci, the
 * g lanes side by side, so each e gets g contiguous floats per ci and the 64 output streams are
 * written sequentially (one channel at a time scattered 4-byte stores over 64 streams and touched
 * every cache line g times: 30-47 % of a 10x14x14 or 5x7x7 layer's Winograd time, perf). */
#define TW_G 8 /* the widest g */
__attribute__((target("avx2"))) static void transform_weights(int64_t cg, int64_t Ci, int64_t Co, int64_t CoG, int g, const float *w, float *U)
{
  for (int64_t ci = 0; ci < Ci; ci++) {
    float k[27][TW_G], a[3][3][4][TW_G], b[3][4][4][TW_G];
    for (int j = 0; j < TW_G; j++) { /* lanes past g (AVX2: 4) computed on zeros, never stored */
      const int64_t co = cg * g + j;
      for (int t = 0; t < 27; t++) k[t][j] = j < g && co < Co ? w[(co * Ci + ci) * 27 + t] : 0.0f;
    }
    for (int z = 0; z < 3; z++)
      for (int y = 0; y < 3; y++) {
        const float(*r)[TW_G] = k + (z * 3 + y) * 3;
        for (int j = 0; j < TW_G; j++) {
          a[z][y][0][j] = r[0][j];
          a[z][y][1][j] = 0.5f * (r[0][j] + r[1][j] + r[2][j]);
          a[z][y][2][j] = 0.5f * (r[0][j] - r[1][j] + r[2][j]);
          a[z][y][3][j] = r[2][j];
        }
      }
    for (int z = 0; z < 3; z++)
      for (int x = 0; x < 4; x++)
        for (int j = 0; j < TW_G; j++) {
          b[z][0][x][j] = a[z][0][x][j];
          b[z][1][x][j] = 0.5f * (a[z][0][x][j] + a[z][1][x][j] + a[z][2][x][j]);
          b[z][2][x][j] = 0.5f * (a[z][0][x][j] - a[z][1][x][j] + a[z][2][x][j]);
          b[z][3][x][j] = a[z][2][x][j];
        }
    float *u = U + (cg * g * Ci + ci * g);
    const int64_t es = CoG * Ci; /* floats from one e to the next */
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 4; x++) {
        /* all TW_G lanes (a constant trip count, so vectorised: a loop to g ran scalar), the first
           g stored: l3.conv2 (256 -> 256 at 10x14x14, bench-conv, 2 threads) 13.6-13.8 -> 12.5-13.1
           ms. What is left of the transform (~15 % of such a layer) is writing U itself, 14-17
           MiB a call: U written a block of input channels at a time made no difference */
        float o[4][TW_G];
        for (int j = 0; j < TW_G; j++) {
          o[0][j] = b[0][y][x][j];
          o[1][j] = 0.5f * (b[0][y][x][j] + b[1][y][x][j] + b[2][y][x][j]);
          o[2][j] = 0.5f * (b[0][y][x][j] - b[1][y][x][j] + b[2][y][x][j]);
          o[3][j] = b[2][y][x][j];
        }
        for (int z = 0; z < 4; z++) {
          float *uz = u + (z * 16 + y * 4 + x) * es;
          if (g == TW_G) memcpy(uz, o[z], sizeof o[z]);
          else memcpy(uz, o[z], 4 * sizeof(float)); /* g = 4: the AVX2 GEMM */
        }
      }
  }
}

/* B^T along one dimension: (d0 - d2, d1 + d2, d2 - d1, d1 - d3). */
#define BT4(o, d0, d1, d2, d3)                                                                                 \
  do {                                                                                                         \
    (o)[0] = _mm256_sub_ps(d0, d2);                                                                            \
    (o)[1] = _mm256_add_ps(d1, d2);                                                                            \
    (o)[2] = _mm256_sub_ps(d2, d1);                                                                            \
    (o)[3] = _mm256_sub_ps(d1, d3);                                                                            \
  } while (0)

/* Input transform of m <= 8 tiles (tz, ty, tx0 .. tx0+m-1) of one channel xc into V columns
 * vcol[e * estride + j], prefetching the rows it reads next floats further on (the next channel;
 * 0: none). A tile row's x inputs are the 18 floats from x0 = 2 tx0 - 1: d0 / d1 the
 * even / odd ones of the first 16, d2 / d3 the same shifted by one lane (the next tile's d0 / d1).
 * At the volume's x ends the row is read by masked loads (zeros in the padding: masked lanes are
 * not read, so nothing past the row is touched). */
__attribute__((target("avx2,fma"))) static void input_tiles(const float *xc, int64_t D, int64_t H, int64_t W,
                                                            int64_t tz, int64_t ty, int64_t tx0, int m, float *vcol,
                                                            int64_t estride, int64_t next, bool rnd)
{
  (void)rnd; /* bf16 operands run on the AVX-512 kinds only (t3d_cpu_conv3d_wino_rounded) */
  __m256 X[4][4][4]; /* [pz][py][ex] */
  const int64_t x0 = 2 * tx0 - 1;
  const bool inside = x0 >= 0 && x0 + 24 <= W;
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i lm[3]; /* lanes of the 24 floats from x0 inside [0, W) */
  for (int j = 0; j < 3; j++) {
    __m256i ix = _mm256_add_epi32(lanes, _mm256_set1_epi32((int)(x0 + 8 * j)));
    lm[j] = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), ix),
                                _mm256_cmpgt_epi32(_mm256_set1_epi32((int)W), ix));
  }
  const __m256i up = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0), l0 = _mm256_setzero_si256();
  const __m256i l1 = _mm256_set1_epi32(1);
  for (int pz = 0; pz < 4; pz++) {
    const int64_t iz = 2 * tz + pz - 1;
    for (int py = 0; py < 4; py++) {
      const int64_t iy = 2 * ty + py - 1;
      if (iz < 0 || iz >= D || iy < 0 || iy >= H) {
        for (int e = 0; e < 4; e++) X[pz][py][e] = _mm256_setzero_ps();
        continue;
      }
      const float *p = xc + (iz * H + iy) * W + x0;
      if (next) { /* the same row of the next channel, read by the next call */
        _mm_prefetch((const char *)(p + next), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + next + 23), _MM_HINT_T0);
      }
      __m256 v0, v1, v2;
      if (inside) v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8), v2 = _mm256_loadu_ps(p + 16);
      else
        v0 = _mm256_maskload_ps(p, lm[0]), v1 = _mm256_maskload_ps(p + 8, lm[1]),
        v2 = _mm256_maskload_ps(p + 16, lm[2]);
      __m256 e = _mm256_shuffle_ps(v0, v1, 0x88), o = _mm256_shuffle_ps(v0, v1, 0xdd);
      const __m256 d0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8));
      const __m256 d1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xd8));
      const __m256 d2 = _mm256_blend_ps(_mm256_permutevar8x32_ps(d0, up), _mm256_permutevar8x32_ps(v2, l0), 0x80);
      const __m256 d3 = _mm256_blend_ps(_mm256_permutevar8x32_ps(d1, up), _mm256_permutevar8x32_ps(v2, l1), 0x80);
      BT4(X[pz][py], d0, d1, d2, d3);
    }
  }
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(m), lanes);
  for (int ex = 0; ex < 4; ex++) {
    __m256 Y[4][4]; /* [pz][ey] */
    for (int pz = 0; pz < 4; pz++) BT4(Y[pz], X[pz][0][ex], X[pz][1][ex], X[pz][2][ex], X[pz][3][ex]);
    for (int ey = 0; ey < 4; ey++) {
      __m256 Z[4];
      BT4(Z, Y[0][ey], Y[1][ey], Y[2][ey], Y[3][ey]);
      for (int ez = 0; ez < 4; ez++) {
        float *dst = vcol + (ez * 16 + ey * 4 + ex) * estride;
        if (m == 8) _mm256_storeu_ps(dst, Z[ez]);
        else _mm256_maskstore_ps(dst, mask, Z[ez]);
      }
    }
  }
}

/* The same for m <= 16 tiles in zmm (with the AVX-512 GEMM): a tile row's x inputs are the 34
 * floats from x0, read as three 16-float vectors by masked loads (lanes outside [0, W) are zeros
 * and are not read), the even / odd lanes gathered by two-source permutes. */
#define BT4Z(o, d0, d1, d2, d3)                                                                                \
  do {                                                                                                         \
    (o)[0] = _mm512_sub_ps(d0, d2);                                                                            \
    (o)[1] = _mm512_add_ps(d1, d2);                                                                            \
    (o)[2] = _mm512_sub_ps(d2, d1);                                                                            \
    (o)[3] = _mm512_sub_ps(d1, d3);                                                                            \
  } while (0)

static __mmask16 inside_mask(int64_t first, int64_t W, int lanes)
{
  int64_t lo = first < 0 ? -first : 0, hi = W - first < lanes ? W - first : lanes;
  if (hi <= lo) return 0;
  return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

__attribute__((target("avx512f"))) static void input_tiles512(const float *xc, int64_t D, int64_t H, int64_t W,
                                                              int64_t tz, int64_t ty, int64_t tx0, int m, float *vcol,
                                                              int64_t estride, int64_t next, bool rnd)
{
  __m512 X[4][4][4]; /* [pz][py][ex] */
  const int64_t x0 = 2 * tx0 - 1;
  const __mmask16 k0 = inside_mask(x0, W, 16), k1 = inside_mask(x0 + 16, W, 16), k2 = inside_mask(x0 + 32, W, 2);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i sh0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i sh1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
  for (int pz = 0; pz < 4; pz++) {
    const int64_t iz = 2 * tz + pz - 1;
    for (int py = 0; py < 4; py++) {
      const int64_t iy = 2 * ty + py - 1;
      if (iz < 0 || iz >= D || iy < 0 || iy >= H) {
        for (int e = 0; e < 4; e++) X[pz][py][e] = _mm512_setzero_ps();
        continue;
      }
      const float *p = xc + (iz * H + iy) * W + x0;
      if (next) { /* the same row of the next channel, read by the next call */
        _mm_prefetch((const char *)(p + next), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + next + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + next + 33), _MM_HINT_T0);
      }
      __m512 v0 = _mm512_maskz_loadu_ps(k0, p), v1 = _mm512_maskz_loadu_ps(k1, p + 16);
      __m512 v2 = _mm512_maskz_loadu_ps(k2, p + 32);
      if (rnd) { /* bf16 operands: x rounded as it is read */
        v0 = t3d_bf16_round_ps(v0);
        v1 = t3d_bf16_round_ps(v1);
        v2 = t3d_bf16_round_ps(v2);
      }
      const __m512 d0 = _mm512_permutex2var_ps(v0, even, v1), d1 = _mm512_permutex2var_ps(v0, odd, v1);
      const __m512 d2 = _mm512_permutex2var_ps(d0, sh0, v2), d3 = _mm512_permutex2var_ps(d1, sh1, v2);
      BT4Z(X[pz][py], d0, d1, d2, d3);
    }
  }
  const __mmask16 mask = (__mmask16)((1u << m) - 1u);
  for (int ex = 0; ex < 4; ex++) {
    __m512 Y[4][4]; /* [pz][ey] */
    for (int pz = 0; pz < 4; pz++) BT4Z(Y[pz], X[pz][0][ex], X[pz][1][ex], X[pz][2][ex], X[pz][3][ex]);
    for (int ey = 0; ey < 4; ey++) {
      __m512 Z[4];
      BT4Z(Z, Y[0][ey], Y[1][ey], Y[2][ey], Y[3][ey]);
      for (int ez = 0; ez < 4; ez++) _mm512_mask_storeu_ps(vcol + (ez * 16 + ey * 4 + ex) * estride, mask, Z[ez]);
    }
  }
}

/* A^T along one dimension: (m0 + m1 + m2, m1 - m2 - m3). */
#define AT2(o, m0, m1, m2, m3)                                                                                 \
  do {                                                                                                         \
    (o)[0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);                                                         \
    (o)[1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);                                                         \
  } while (0)

/* Output transform of m <= 8 tiles of channel co: M columns mcol[e * wt + j] -> y rows, plus
 * bias, residual (same layout as y) and ReLU. */
__attribute__((target("avx2,fma"))) static void output_tiles(const float *mcol, int64_t wt, float *yc, const float *rc,
                                                             float bias, bool relu, int64_t D, int64_t H, int64_t W,
                                                             int64_t tz, int64_t ty, int64_t tx0, int m, bool stream)
{
  (void)stream; /* non-temporal stores on the AVX-512 kernels only */
  __m256 Zt[2][4][4]; /* [dz][ey][ex] */
  for (int ey = 0; ey < 4; ey++)
    for (int ex = 0; ex < 4; ex++) {
      const float *s = mcol + (ey * 4 + ex) * wt;
      __m256 o[2];
      AT2(o, _mm256_loadu_ps(s), _mm256_loadu_ps(s + 16 * wt), _mm256_loadu_ps(s + 32 * wt),
          _mm256_loadu_ps(s + 48 * wt));
      Zt[0][ey][ex] = o[0], Zt[1][ey][ex] = o[1];
    }
  const int64_t ox0 = 2 * tx0;
  const int n = (int)min64(2 * m, W - ox0); /* outputs of the row these tiles cover */
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mlo = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes);
  const __m256i mhi = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lanes);
  const __m256 vb = _mm256_set1_ps(bias), zero = _mm256_setzero_ps();
  for (int dz = 0; dz < 2; dz++) {
    const int64_t oz = 2 * tz + dz;
    if (oz >= D) break;
    __m256 Yv[2][4]; /* [dy][ex] */
#pragma GCC unroll 4
    for (int ex = 0; ex < 4; ex++) {
      __m256 t[2];
      AT2(t, Zt[dz][0][ex], Zt[dz][1][ex], Zt[dz][2][ex], Zt[dz][3][ex]);
      Yv[0][ex] = t[0], Yv[1][ex] = t[1];
    }
#pragma GCC unroll 2
    for (int dy = 0; dy < 2; dy++) {
      const int64_t oy = 2 * ty + dy;
      if (oy >= H) break;
      __m256 o[2];
      AT2(o, Yv[dy][0], Yv[dy][1], Yv[dy][2], Yv[dy][3]); /* o[dx]: lane j = output x 2(tx0 + j) + dx */
      __m256 lo = _mm256_unpacklo_ps(o[0], o[1]), hi = _mm256_unpackhi_ps(o[0], o[1]);
      __m256 v0 = _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), vb);
      __m256 v1 = _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x31), vb);
      const int64_t off = (oz * H + oy) * W + ox0;
      if (n == 16) {
        if (rc) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rc + off)), v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rc + off + 8));
        if (relu) v0 = _mm256_max_ps(v0, zero), v1 = _mm256_max_ps(v1, zero);
        _mm256_storeu_ps(yc + off, v0);
        _mm256_storeu_ps(yc + off + 8, v1);
      } else {
        if (rc)
          v0 = _mm256_add_ps(v0, _mm256_maskload_ps(rc + off, mlo)),
          v1 = _mm256_add_ps(v1, _mm256_maskload_ps(rc + off + 8, mhi));
        if (relu) v0 = _mm256_max_ps(v0, zero), v1 = _mm256_max_ps(v1, zero);
        _mm256_maskstore_ps(yc + off, mlo, v0);
        _mm256_maskstore_ps(yc + off + 8, mhi, v1);
      }
    }
  }
}

/* The same for m <= 16 tiles in zmm (with the AVX-512 GEMM): o[dx] holds output x 2(tx0 + j) + dx
 * in lane j, interleaved into 32 consecutive outputs by two-source permutes. */
#define AT2Z(o, m0, m1, m2, m3)                                                                                \
  do {                                                                                                         \
    (o)[0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);                                                         \
    (o)[1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);                                                         \
  } while (0)

__attribute__((target("avx512f"))) static void output_tiles512(const float *mcol, int64_t wt, float *yc,
                                                               const float *rc, float bias, bool relu, int64_t D,
                                                               int64_t H, int64_t W, int64_t tz, int64_t ty,
                                                               int64_t tx0, int m, bool stream)
{
  __m512 Zt[2][4][4]; /* [dz][ey][ex] */
  for (int ey = 0; ey < 4; ey++)
    for (int ex = 0; ex < 4; ex++) {
      const float *s = mcol + (ey * 4 + ex) * wt;
      __m512 o[2];
      AT2Z(o, _mm512_loadu_ps(s), _mm512_loadu_ps(s + 16 * wt), _mm512_loadu_ps(s + 32 * wt),
           _mm512_loadu_ps(s + 48 * wt));
      Zt[0][ey][ex] = o[0], Zt[1][ey][ex] = o[1];
    }
  const int64_t ox0 = 2 * tx0;
  const int n = (int)min64(2 * m, W - ox0); /* outputs of the row these tiles cover */
  const __mmask16 mlo = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
  const __mmask16 mhi = (__mmask16)(n >= 32 ? 0xffffu : n <= 16 ? 0u : (1u << (n - 16)) - 1u);
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 vb = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
  for (int dz = 0; dz < 2; dz++) {
    const int64_t oz = 2 * tz + dz;
    if (oz >= D) break;
    __m512 Yv[2][4]; /* [dy][ex] */
    for (int ex = 0; ex < 4; ex++) {
      __m512 t[2];
      AT2Z(t, Zt[dz][0][ex], Zt[dz][1][ex], Zt[dz][2][ex], Zt[dz][3][ex]);
      Yv[0][ex] = t[0], Yv[1][ex] = t[1];
    }
    for (int dy = 0; dy < 2; dy++) {
      const int64_t oy = 2 * ty + dy;
      if (oy >= H) break;
      __m512 o[2];
      AT2Z(o, Yv[dy][0], Yv[dy][1], Yv[dy][2], Yv[dy][3]);
      __m512 v0 = _mm512_add_ps(_mm512_permutex2var_ps(o[0], ilo, o[1]), vb);
      __m512 v1 = _mm512_add_ps(_mm512_permutex2var_ps(o[0], ihi, o[1]), vb);
      const int64_t off = (oz * H + oy) * W + ox0;
      if (rc)
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(mlo, rc + off)),
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(mhi, rc + off + 16));
      if (relu) v0 = _mm512_max_ps(v0, zero), v1 = _mm512_max_ps(v1, zero);
      if (stream && mhi == 0xffff && ((uintptr_t)(yc + off) & 63) == 0) { /* two whole lines */
        _mm512_stream_ps(yc + off, v0);
        _mm512_stream_ps(yc + off + 16, v1);
      } else {
        _mm512_mask_storeu_ps(yc + off, mlo, v0);
        _mm512_mask_storeu_ps(yc + off + 16, mhi, v1);
      }
    }
  }
}

/* ---- F(4x4x4, 3x3x3), AVX-512 only ------------------------------------------------------------
 * A tile is a 4x4x4 block of outputs from a 6x6x6 input patch: 216 products per input channel
 * for 64 outputs (3.4 per output against F(2,3)'s 8 and the direct sum's 27), with
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 *   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * (Lavin & Gray's points 0, +-1, +-2). The schedule is F(2,3)'s: runs of WT4 tiles, their inputs
 * transformed to V[e][ci][t], per e the product U_e V_e into M[co][e][t] by the same 8 x 16 /
 * 8 x 32 register tiles, and the output transform with bias, residual and ReLU. Both transforms
 * work on 16 tiles along x at a time: a tile's x inputs are 4t-1 .. 4t+4, the four phases of the
 * row (x mod 4) taken apart by two-source permutes. The transformed weights are 216 x Co x Ci
 * floats, made per call and read again (from L2, or L3 when larger) for every run of tiles, so
 * AUTO takes this kernel only for layers with few channels (see conv.c). Accuracy: the larger coefficients (5, 8, 1/24) cost about 40x F(2,3)'s
 * rounding error (measured 1e-6 of the magnitude at 256 channels, against 2.4e-8; float64 exact
 * to 3e-15); tests/test-conv.c bounds it. */
#define NE4 216
#define WT4 32

/* U[e][co / 8][ci][co % 8] = (G (x) G (x) G) w[co][ci], a group of 8 output channels per call */
__attribute__((target("avx2"))) static void transform_weights4(int64_t cg, int64_t Ci, int64_t Co, int64_t CoG,
                                                               int g, const float *w, float *U)
{
  (void)g; /* always 8: F(4,3) runs on the AVX-512 GEMM only */
  const float c4 = 0.25f, c6 = 1.0f / 6.0f, c12 = 1.0f / 12.0f, c24 = 1.0f / 24.0f;
  for (int64_t ci = 0; ci < Ci; ci++) {
    float k[27][TW_G], a[3][3][6][TW_G], b[3][6][6][TW_G];
    for (int j = 0; j < TW_G; j++) {
      const int64_t co = cg * TW_G + j;
      for (int t = 0; t < 27; t++) k[t][j] = co < Co ? w[(co * Ci + ci) * 27 + t] : 0.0f;
    }
#define G6(o, r0, r1, r2)                                                                                      \
  do {                                                                                                         \
    (o)[0] = c4 * (r0);                                                                                        \
    (o)[1] = -c6 * ((r0) + (r1) + (r2));                                                                       \
    (o)[2] = -c6 * ((r0) - (r1) + (r2));                                                                       \
    (o)[3] = c24 * (r0) + c12 * (r1) + c6 * (r2);                                                              \
    (o)[4] = c24 * (r0) - c12 * (r1) + c6 * (r2);                                                              \
    (o)[5] = (r2);                                                                                             \
  } while (0)
    for (int z = 0; z < 3; z++)
      for (int y = 0; y < 3; y++)
        for (int j = 0; j < TW_G; j++) {
          float o[6];
          G6(o, k[(z * 3 + y) * 3][j], k[(z * 3 + y) * 3 + 1][j], k[(z * 3 + y) * 3 + 2][j]);
          for (int x = 0; x < 6; x++) a[z][y][x][j] = o[x];
        }
    for (int z = 0; z < 3; z++)
      for (int x = 0; x < 6; x++)
        for (int j = 0; j < TW_G; j++) {
          float o[6];
          G6(o, a[z][0][x][j], a[z][1][x][j], a[z][2][x][j]);
          for (int y = 0; y < 6; y++) b[z][y][x][j] = o[y];
        }
    const int64_t es = CoG * Ci;
    float *u = U + (cg * TW_G * Ci + ci * TW_G);
    for (int y = 0; y < 6; y++)
      for (int x = 0; x < 6; x++) {
        float o[6][TW_G];
        for (int j = 0; j < TW_G; j++) {
          float t[6];
          G6(t, b[0][y][x][j], b[1][y][x][j], b[2][y][x][j]);
          for (int z = 0; z < 6; z++) o[z][j] = t[z];
        }
        for (int z = 0; z < 6; z++) memcpy(u + (z * 36 + y * 6 + x) * es, o[z], sizeof o[z]);
      }
#undef G6
  }
}

/* B^T along one dimension (6 -> 6). */
#define BT6Z(o, d0, d1, d2, d3, d4, d5)                                                                        \
  do {                                                                                                         \
    const __m512 f4 = _mm512_set1_ps(4.0f), f5 = _mm512_set1_ps(5.0f), f2 = _mm512_set1_ps(2.0f);             \
    const __m512 s12 = _mm512_add_ps(d1, d2), s34 = _mm512_add_ps(d3, d4), m12 = _mm512_sub_ps(d1, d2);        \
    const __m512 m43 = _mm512_sub_ps(d4, d3), m42 = _mm512_sub_ps(d4, d2), m31 = _mm512_sub_ps(d3, d1);        \
    (o)[0] = _mm512_fmadd_ps(f4, d0, _mm512_fnmadd_ps(f5, d2, d4));                                            \
    (o)[1] = _mm512_fnmadd_ps(f4, s12, s34);                                                                   \
    (o)[2] = _mm512_fmadd_ps(f4, m12, m43);                                                                    \
    (o)[3] = _mm512_fmadd_ps(f2, m31, m42);                                                                    \
    (o)[4] = _mm512_fnmadd_ps(f2, m31, m42);                                                                   \
    (o)[5] = _mm512_fmadd_ps(f4, d1, _mm512_fnmadd_ps(f5, d3, d5));                                            \
  } while (0)

/* Input transform of m <= 16 tiles of one channel along x: V columns vcol[e * estride + j];
 * next as input_tiles512. */
__attribute__((target("avx512f"))) static void input_tiles4_512(const float *xc, int64_t D, int64_t H, int64_t W,
                                                                int64_t tz, int64_t ty, int64_t tx0, int m, float *vcol,
                                                                int64_t estride, int64_t next, bool rnd)
{
  __m512 T[6][6][6]; /* [pz][py][ex] */
  const int64_t x0 = 4 * tx0 - 1;
  __mmask16 k[5];
  for (int i = 0; i < 4; i++) k[i] = inside_mask(x0 + 16 * i, W, 16);
  k[4] = inside_mask(x0 + 64, W, 2);
  __m512i ph[4]; /* phase r: lane j takes element (4j + r) mod 32 of a pair of vectors */
  for (int r = 0; r < 4; r++)
    ph[r] = _mm512_setr_epi32(r, 4 + r, 8 + r, 12 + r, 16 + r, 20 + r, 24 + r, 28 + r, r, 4 + r, 8 + r, 12 + r, 16 + r,
                              20 + r, 24 + r, 28 + r);
  const __m512i sh0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i sh1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
  for (int pz = 0; pz < 6; pz++) {
    const int64_t iz = 4 * tz + pz - 1;
    for (int py = 0; py < 6; py++) {
      const int64_t iy = 4 * ty + py - 1;
      if (iz < 0 || iz >= D || iy < 0 || iy >= H) {
        for (int e = 0; e < 6; e++) T[pz][py][e] = _mm512_setzero_ps();
        continue;
      }
      const float *p = xc + (iz * H + iy) * W + x0;
      if (next) /* the same row of the next channel, read by the next call */
        for (int i = 0; i < 5; i++) _mm_prefetch((const char *)(p + next + 16 * i), _MM_HINT_T0);
      __m512 v[5];
      for (int i = 0; i < 5; i++) v[i] = _mm512_maskz_loadu_ps(k[i], p + 16 * i);
      if (rnd) /* bf16 operands: x rounded as it is read */
        for (int i = 0; i < 5; i++) v[i] = t3d_bf16_round_ps(v[i]);
      __m512 d[4];
      for (int r = 0; r < 4; r++)
        d[r] = _mm512_mask_blend_ps((__mmask16)0xff00, _mm512_permutex2var_ps(v[0], ph[r], v[1]),
                                    _mm512_permutex2var_ps(v[2], ph[r], v[3]));
      const __m512 d4 = _mm512_permutex2var_ps(d[0], sh0, v[4]), d5 = _mm512_permutex2var_ps(d[1], sh1, v[4]);
      BT6Z(T[pz][py], d[0], d[1], d[2], d[3], d4, d5);
    }
  }
  const __mmask16 mask = (__mmask16)((1u << m) - 1u);
  for (int ex = 0; ex < 6; ex++) {
    __m512 Y[6][6]; /* [pz][ey] */
    for (int pz = 0; pz < 6; pz++)
      BT6Z(Y[pz], T[pz][0][ex], T[pz][1][ex], T[pz][2][ex], T[pz][3][ex], T[pz][4][ex], T[pz][5][ex]);
    for (int ey = 0; ey < 6; ey++) {
      __m512 Z[6];
      BT6Z(Z, Y[0][ey], Y[1][ey], Y[2][ey], Y[3][ey], Y[4][ey], Y[5][ey]);
      for (int ez = 0; ez < 6; ez++) _mm512_mask_storeu_ps(vcol + (ez * 36 + ey * 6 + ex) * estride, mask, Z[ez]);
    }
  }
}

/* A^T along one dimension (6 -> 4). */
#define AT4Z(o, m0, m1, m2, m3, m4, m5)                                                                        \
  do {                                                                                                         \
    const __m512 a12 = _mm512_add_ps(m1, m2), s12 = _mm512_sub_ps(m1, m2);                                     \
    const __m512 a34 = _mm512_add_ps(m3, m4), s34 = _mm512_sub_ps(m3, m4);                                     \
    (o)[0] = _mm512_add_ps(_mm512_add_ps(m0, a12), a34);                                                       \
    (o)[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), s34, s12);                                                  \
    (o)[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), a34, a12);                                                  \
    (o)[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), s34, s12), m5);                               \
  } while (0)

/* Output transform of m <= 16 tiles of channel co: M columns mcol[e * wt + j] -> y rows, plus
 * bias, residual (same layout as y) and ReLU; o[dx] holds output x 4(tx0 + j) + dx in lane j,
 * interleaved into 64 consecutive outputs by two rounds of two-source permutes. */
__attribute__((target("avx512f"))) static void output_tiles4_512(const float *mcol, int64_t wt, float *yc,
                                                                 const float *rc, float bias, bool relu, int64_t D,
                                                                 int64_t H, int64_t W, int64_t tz, int64_t ty,
                                                                 int64_t tx0, int m, bool stream)
{
  __m512 Zt[4][6][6]; /* [dz][ey][ex] */
  for (int ey = 0; ey < 6; ey++)
    for (int ex = 0; ex < 6; ex++) {
      const float *s = mcol + (ey * 6 + ex) * wt;
      __m512 o[4];
      AT4Z(o, _mm512_loadu_ps(s), _mm512_loadu_ps(s + 36 * wt), _mm512_loadu_ps(s + 72 * wt),
           _mm512_loadu_ps(s + 108 * wt), _mm512_loadu_ps(s + 144 * wt), _mm512_loadu_ps(s + 180 * wt));
      for (int dz = 0; dz < 4; dz++) Zt[dz][ey][ex] = o[dz];
    }
  const int64_t ox0 = 4 * tx0;
  const int n = (int)min64(4 * m, W - ox0); /* outputs of the row these tiles cover */
  __mmask16 q[4];
  for (int i = 0; i < 4; i++) {
    const int left = n - 16 * i;
    q[i] = (__mmask16)(left >= 16 ? 0xffffu : left <= 0 ? 0u : (1u << left) - 1u);
  }
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i jlo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i jhi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const __m512 vb = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
  for (int dz = 0; dz < 4; dz++) {
    const int64_t oz = 4 * tz + dz;
    if (oz >= D) break;
    __m512 Yv[4][6]; /* [dy][ex] */
    for (int ex = 0; ex < 6; ex++) {
      __m512 t[4];
      AT4Z(t, Zt[dz][0][ex], Zt[dz][1][ex], Zt[dz][2][ex], Zt[dz][3][ex], Zt[dz][4][ex], Zt[dz][5][ex]);
      for (int dy = 0; dy < 4; dy++) Yv[dy][ex] = t[dy];
    }
    for (int dy = 0; dy < 4; dy++) {
      const int64_t oy = 4 * ty + dy;
      if (oy >= H) break;
      __m512 o[4];
      AT4Z(o, Yv[dy][0], Yv[dy][1], Yv[dy][2], Yv[dy][3], Yv[dy][4], Yv[dy][5]);
      const __m512 a = _mm512_permutex2var_ps(o[0], ilo, o[1]), b = _mm512_permutex2var_ps(o[0], ihi, o[1]);
      const __m512 c = _mm512_permutex2var_ps(o[2], ilo, o[3]), d = _mm512_permutex2var_ps(o[2], ihi, o[3]);
      __m512 v[4] = {_mm512_permutex2var_ps(a, jlo, c), _mm512_permutex2var_ps(a, jhi, c),
                     _mm512_permutex2var_ps(b, jlo, d), _mm512_permutex2var_ps(b, jhi, d)};
      const int64_t off = (oz * H + oy) * W + ox0;
      const bool whole = stream && q[3] == 0xffff && ((uintptr_t)(yc + off) & 63) == 0;
      for (int i = 0; i < 4; i++) {
        if (!q[i]) break;
        v[i] = _mm512_add_ps(v[i], vb);
        if (rc) v[i] = _mm512_add_ps(v[i], _mm512_maskz_loadu_ps(q[i], rc + off + 16 * i));
        if (relu) v[i] = _mm512_max_ps(v[i], zero);
        if (whole) _mm512_stream_ps(yc + off + 16 * i, v[i]);
        else _mm512_mask_storeu_ps(yc + off + 16 * i, q[i], v[i]);
      }
    }
  }
}


/* C[r][0 .. 8nv) = sum_k a[4k + r] B[k][0 .. 8nv) for r < rows (<= 4): a 4 x 24 register tile, B
 * rows ldb apart, C rows ldc apart, written (not accumulated). */
#define W_FMA(r)                                                                                               \
  do {                                                                                                         \
    const __m256 s = _mm256_broadcast_ss(a + 4 * k + r);                                                       \
    c##r##0 = _mm256_fmadd_ps(s, b0, c##r##0);                                                                 \
    if (nv > 1) c##r##1 = _mm256_fmadd_ps(s, b1, c##r##1);                                                     \
    if (nv > 2) c##r##2 = _mm256_fmadd_ps(s, b2, c##r##2);                                                     \
  } while (0)
#define W_STORE(r)                                                                                             \
  if (r < rows) {                                                                                              \
    _mm256_storeu_ps(c + r * ldc, c##r##0);                                                                    \
    if (nv > 1) _mm256_storeu_ps(c + r * ldc + 8, c##r##1);                                                    \
    if (nv > 2) _mm256_storeu_ps(c + r * ldc + 16, c##r##2);                                                   \
  }
#define W_KERNEL(NV)                                                                                           \
  __attribute__((target("avx2,fma"))) static void gemm_tile##NV(int64_t kc, const float *a, const float *b,   \
                                                                int64_t ldb, float *c, int64_t ldc, int rows)  \
  {                                                                                                            \
    const int nv = NV;                                                                                         \
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;                   \
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                                   \
    for (int64_t k = 0; k < kc; k++, b += ldb) {                                                               \
      const __m256 b0 = _mm256_loadu_ps(b);                                                                    \
      const __m256 b1 = nv > 1 ? _mm256_loadu_ps(b + 8) : b0, b2 = nv > 2 ? _mm256_loadu_ps(b + 16) : b0;     \
      W_FMA(0);                                                                                                \
      W_FMA(1);                                                                                                \
      W_FMA(2);                                                                                                \
      W_FMA(3);                                                                                                \
    }                                                                                                          \
    W_STORE(0)                                                                                                 \
    W_STORE(1)                                                                                                 \
    W_STORE(2)                                                                                                 \
    W_STORE(3)                                                                                                 \
  }
W_KERNEL(1)
W_KERNEL(2)
W_KERNEL(3)

/* The AVX-512 GEMM tile: C[r][0 .. 16nv) = sum_k a[8k + r] B[k][0 .. 16nv) for r < rows (<= 8),
 * 8 x 32 (16 accumulators; per k two B loads and 8 broadcasts for 16 FMAs), written. */
#define W5_KERNEL(NV)                                                                                          \
  __attribute__((target("avx512f"))) static void gemm512_tile##NV(int64_t kc, const float *a, const float *b,  \
                                                                  int64_t ldb, float *c, int64_t ldc, int rows) \
  {                                                                                                            \
    __m512 acc[8][NV];                                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++)                                                        \
      _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();                   \
    for (int64_t k = 0; k < kc; k++, b += ldb) {                                                               \
      __m512 bv[NV];                                                                                           \
      _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);               \
      _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++) {                                                    \
        const __m512 s = _mm512_set1_ps(a[8 * k + r]);                                                         \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(s, bv[v], acc[r][v]); \
      }                                                                                                        \
    }                                                                                                          \
    for (int r = 0; r < rows; r++)                                                                             \
      for (int v = 0; v < NV; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);                          \
  }
W5_KERNEL(1)
W5_KERNEL(2)

/* 512: the AVX-512 GEMM where the CPU has it, else 256 (AVX2); t3d_cpu_wino_cap_width caps it. */
static int width_cap = 512;

static int gemm_width(void)
{
  return width_cap >= 512 && __builtin_cpu_supports("avx512f") ? 512 : 256;
}

bool t3d_cpu_wino_avx512(void) { return gemm_width() == 512; }

int t3d_cpu_wino_cap_width(int bits)
{
  int old = width_cap;
  width_cap = bits;
  return old;
}

/* One kind of the kernel: F(2,3) with the AVX2 or the AVX-512 GEMM, or F(4,3) (AVX-512). */
typedef struct {
  int side;      /* outputs per tile side: 2 or 4 */
  int ne;        /* transform-domain positions per tile: 64 or 216 */
  int lanes;     /* tiles per transform call: 8 (AVX2) or 16 */
  int64_t wt, g; /* tiles per run (GEMM columns); output channels per A panel (register tile rows) */
  bool w512;     /* the AVX-512 GEMM tiles */
  bool rnd;      /* bf16 operands: the input transform rounds x to bf16 as it reads it (AVX-512) */
  void (*weights)(int64_t cg, int64_t Ci, int64_t Co, int64_t CoG, int g, const float *w, float *U);
  void (*input)(const float *xc, int64_t D, int64_t H, int64_t W, int64_t tz, int64_t ty, int64_t tx0, int m,
                float *vcol, int64_t estride, int64_t next, bool rnd);
  void (*output)(const float *mcol, int64_t wt, float *yc, const float *rc, float bias, bool relu, int64_t D,
                 int64_t H, int64_t W, int64_t tz, int64_t ty, int64_t tx0, int m, bool stream);
} wino_kind;

static wino_kind wino_kind_of(int side)
{
  if (side == 4)
    return (wino_kind){4, NE4, 16, WT4, 8, true, false, transform_weights4, input_tiles4_512, output_tiles4_512};
  if (gemm_width() == 512)
    return (wino_kind){2, NE, 16, WT512, 8, true, false, transform_weights, input_tiles512, output_tiles512};
  return (wino_kind){2, NE, 8, WT, 4, false, false, transform_weights, input_tiles, output_tiles};
}

static size_t wino_scratch_floats(const wino_kind *k, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H,
                                  int64_t W, int threads)
{
  const int64_t tiles = ceil_div(D, k->side) * ceil_div(H, k->side) * ceil_div(W, k->side);
  const int64_t items = N * ceil_div(tiles, k->wt);
  const int64_t nthr = min64(threads < 1 ? 1 : threads, items);
  return (size_t)k->ne * (size_t)((Co + k->g - 1) / k->g * k->g) * (size_t)Ci +
         (size_t)nthr * ((size_t)(k->ne * (Ci * k->wt + 16) + Co * (k->ne * k->wt + 16)) + 16);
}

/* The input transform of tiles [t0, t0 + nt) of sample xn, a row of tiles (<= lanes at a time)
 * after another, into V[e][ci][t - t0] (rows VS floats apart). */
static void wino_inputs(const wino_kind *k, const float *xn, int64_t Ci, int64_t D, int64_t H, int64_t W, int64_t t0,
                        int64_t nt, float *V, int64_t VS)
{
  const int64_t TH = ceil_div(H, k->side), TW = ceil_div(W, k->side), DHW = D * H * W;
  for (int64_t ci = 0; ci < Ci; ci++)
    for (int64_t t = t0; t < t0 + nt;) {
      const int64_t tx = t % TW, ty = t / TW % TH, tz = t / (TW * TH);
      const int m = (int)min64(k->lanes, min64(TW - tx, t0 + nt - t));
      k->input(xn + ci * DHW, D, H, W, tz, ty, tx, m, V + ci * k->wt + (t - t0), VS, ci + 1 < Ci ? DHW : 0, k->rnd);
      t += m;
    }
}

/* The output transform of the same tiles from M[co][e][t - t0] (rows MS floats apart) into
 * sample n of y, with bias, residual and ReLU. */
static void wino_outputs(const wino_kind *k, const float *M, int64_t MS, int64_t n, int64_t Co, int64_t D, int64_t H,
                         int64_t W, int64_t t0, int64_t nt, float *y, const float *res, const float *bias, bool relu,
                         bool stream)
{
  const int64_t TH = ceil_div(H, k->side), TW = ceil_div(W, k->side), DHW = D * H * W;
  for (int64_t co = 0; co < Co; co++) {
    float *yc = y + (n * Co + co) * DHW;
    const float *rc = res ? res + (n * Co + co) * DHW : NULL;
    for (int64_t t = t0; t < t0 + nt;) {
      const int64_t tx = t % TW, ty = t / TW % TH, tz = t / (TW * TH);
      const int m = (int)min64(k->lanes, min64(TW - tx, t0 + nt - t));
      k->output(M + (size_t)co * MS + (t - t0), k->wt, yc, rc, bias ? bias[co] : 0.0f, relu, D, H, W, tz, ty, tx, m,
                stream);
      t += m;
    }
  }
}

static t3d_status wino_run(const wino_kind *k, int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H,
                           int64_t W, float *y, const float *x, const float *w, const float *bias, const float *res,
                           bool relu, const volatile int *cancel)
{
  threads = threads < 1 ? 1 : threads;
  const int64_t wt = k->wt, g = k->g, ne = k->ne, sd = k->side;
  const int64_t TD = ceil_div(D, sd), TH = ceil_div(H, sd), TW = ceil_div(W, sd), tiles = TD * TH * TW;
  const int64_t blocks = ceil_div(tiles, wt), items = N * blocks;
  const int nthr = (int)min64(threads, items);
  /* V[e] rows Ci*wt + 16 floats apart and M[co] rows ne*wt + 16: at a multiple of 4 KiB a tile's
     stores (one per e) or a register tile's rows would all fall into the same L1 sets */
  const int64_t VS = Ci * wt + 16, MS = ne * wt + 16;
  /* + 16: the output transform reads whole vectors of M, up to 15 floats past a short segment at
     the end of the last row */
  const size_t per_thread = (size_t)(ne * VS + Co * MS) + 16;
  const size_t floats = wino_scratch_floats(k, N, Ci, Co, D, H, W, threads);
  float *U = t3d_cpu_scratch_alloc(floats * sizeof(float));
  if (!U) return t3d_error(T3D_ERR_NOMEM, "conv3d: cannot allocate %zu bytes of Winograd buffers", floats * sizeof(float));
  const int64_t CoG = (Co + g - 1) / g * g;
  float *scratch = U + (size_t)(ne * CoG * Ci);
  const int64_t DHW = D * H * W;
  const bool stream = k->w512 && t3d_cpu_conv_stream_out(N * Co * DHW * (int64_t)sizeof(float));

#pragma omp parallel num_threads(nthr)
  {
#pragma omp for schedule(static)
    for (int64_t cg = 0; cg < CoG / g; cg++) k->weights(cg, Ci, Co, CoG, (int)g, w, U);
    float *V = scratch + (size_t)t3d_cpu_omp_thread() * per_thread, *M = V + (size_t)ne * VS;
    /* a short last item's GEMM reads whole vectors past its columns (their results are never
       stored): defined values there */
    memset(V, 0, (size_t)ne * VS * sizeof(float));
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t it = 0; it < items; it++) {
      if (cancel && *cancel) continue;
      const int64_t n = it / blocks, t0 = it % blocks * wt, nt = min64(wt, tiles - t0);
      wino_inputs(k, x + n * Ci * DHW, Ci, D, H, W, t0, nt, V, VS);
      /* M[co][e][t] = sum_ci U[e][co][ci] V[e][ci][t] */
      if (k->w512)
        for (int64_t e = 0; e < ne; e++) {
          const float *b = V + (size_t)e * VS;
          for (int64_t co = 0; co < Co; co += 8) {
            const float *a = U + ((size_t)e * CoG + co) * Ci;
            float *c = M + (size_t)co * MS + (size_t)e * wt;
            const int rows = (int)min64(8, Co - co);
            if (nt > 16) gemm512_tile2(Ci, a, b, wt, c, MS, rows);
            else gemm512_tile1(Ci, a, b, wt, c, MS, rows);
          }
        }
      else
        for (int64_t e = 0; e < ne; e++)
          for (int64_t h = 0; h * 24 < nt; h++) {
            const int nv = (int)ceil_div(min64(24, nt - 24 * h), 8);
            const float *b = V + (size_t)e * VS + 24 * h;
            for (int64_t co = 0; co < Co; co += 4) {
              const float *a = U + ((size_t)e * CoG + co) * Ci;
              float *c = M + (size_t)co * MS + (size_t)e * wt + 24 * h;
              const int rows = (int)min64(4, Co - co);
              if (nv == 3) gemm_tile3(Ci, a, b, wt, c, MS, rows);
              else if (nv == 2) gemm_tile2(Ci, a, b, wt, c, MS, rows);
              else gemm_tile1(Ci, a, b, wt, c, MS, rows);
            }
          }
      wino_outputs(k, M, MS, n, Co, D, H, W, t0, nt, y, res, bias, relu, stream);
    }
    if (k->w512) _mm_sfence(); /* this thread's streamed stores, before the region's closing barrier */
  }
  t3d_cpu_scratch_free(U);
  if (cancel && *cancel) return t3d_error(T3D_ERR_CANCELLED, "conv3d cancelled");
  return T3D_OK;
}

/* ---- F(2x2x2, 3x3x3) with bf16 products (bf16.h) ---------------------------------------------
 * The fp32 schedule above with its GEMM swapped for the bf16 one: the transforms stay fp32 (the
 * same input and output kernels), each e's V_e is rounded to bf16 into one B strip (32 tiles of
 * Ci pairs) and U_e V_e runs through t3d_cpu_bf16_gemm_block, so AMX, AVX512-BF16 and the
 * portable kernels all serve it. The transformed weights U16[e][CoP][CiP] (CoP, CiP: Co, Ci
 * rounded up to 32, zeros in the padding) are made per call from the bf16 weights: widened,
 * transformed in fp32 by transform_weights, rounded to bf16 (so each weight is rounded twice).
 * Only F(2,3): F(4,3)'s coefficients (up to 8 and 1/24) would multiply bf16's 2^-9 roundings
 * about 40x. Error: each product U_e V_e carries at most 3 x 2^-9 relative (2 roundings of U,
 * one of V), and the transforms add them with |A^T| |...| |A|: |y - y32| <= (3 x 2^-9 + fp32
 * accumulation) x the algorithm run on |x|, |w|, |A|, |B|, |G| (tests/test-bf16.c checks it). */
#define WCH 64 /* input channels per weight-transform chunk: 8 x 64 x 27 and 64 x 64 x 8 floats */

t3d_status t3d_cpu_conv3d_wino3_bf16(int threads, t3d_cpu_isa isa, int64_t N, int64_t Ci, int64_t Co, int64_t D,
                                     int64_t H, int64_t W, float *y, const float *x, const uint16_t *wb, int64_t kpad,
                                     const float *bias, const float *res, bool relu, const volatile int *cancel)
{
  threads = threads < 1 ? 1 : threads;
  const wino_kind k = wino_kind_of(2); /* the AVX-512 F(2,3): callers check t3d_cpu_wino_avx512 */
  const int64_t wt = k.wt, ne = k.ne;
  const int64_t tiles = ceil_div(D, 2) * ceil_div(H, 2) * ceil_div(W, 2);
  const int64_t blocks = ceil_div(tiles, wt), items = N * blocks;
  const int nthr = (int)min64(threads, items);
  const int64_t CoP = ceil_div(Co, 32) * 32, CiP = ceil_div(Ci, 32) * 32;
  const int64_t VS = Ci * wt + 16, MS = ne * wt + 16; /* as wino_run */
  /* per thread: V (fp32), M (CoP rows), a B strip (CiP x 32 bf16), a line of zeros; and the
     weight transform's 8 x WCH x 27 widened weights and 64 x WCH x 8 results, in the same space */
  const size_t item_floats = (size_t)(ne * VS + CoP * MS) + (size_t)(CiP * 16) + (size_t)wt + 16;
  const size_t tw_floats = (size_t)(8 * WCH * 27 + NE * WCH * 8);
  const size_t per_thread = item_floats > tw_floats ? item_floats : tw_floats;
  const size_t ubytes = (size_t)(ne * CoP * CiP) * sizeof(uint16_t);
  const size_t bytes = ubytes + (size_t)nthr * per_thread * sizeof(float) + 64;
  uint16_t *U = t3d_cpu_scratch_alloc(bytes);
  if (!U) return t3d_error(T3D_ERR_NOMEM, "conv3d (bf16): cannot allocate %zu bytes of Winograd buffers", bytes);
  float *scratch = (float *)((char *)U + (ubytes + 63) / 64 * 64);
  const int64_t DHW = D * H * W;
  const bool stream = t3d_cpu_conv_stream_out(N * Co * DHW * (int64_t)sizeof(float));
  const int64_t groups = CoP / 8, chunks = ceil_div(Ci, WCH);

#pragma omp parallel num_threads(nthr)
  {
    float *mine = scratch + (size_t)t3d_cpu_omp_thread() * per_thread;
    /* U16[e][co][ci] for 8 output channels and up to WCH input channels at a time */
#pragma omp for schedule(dynamic, 1)
    for (int64_t gc = 0; gc < groups * chunks; gc++) {
      const int64_t cg = gc / chunks, ci0 = gc % chunks * WCH, ch = min64(WCH, Ci - ci0);
      const int64_t cn = min64(8, Co - cg * 8); /* real channels of the group (<= 0: padding) */
      float *w8 = mine, *ut = mine + 8 * WCH * 27;
      for (int64_t j = 0; j < 8; j++)
        for (int64_t c = 0; c < ch; c++)
          for (int t = 0; t < 27; t++)
            w8[(j * ch + c) * 27 + t] = j < cn ? t3d_bf16_widen(wb[(cg * 8 + j) * kpad + (ci0 + c) * 27 + t]) : 0.0f;
      transform_weights(0, ch, 8, 8, 8, w8, ut); /* ut[e][c][j] */
      for (int64_t e = 0; e < ne; e++)
        for (int64_t j = 0; j < 8; j++) {
          uint16_t *row = U + (e * CoP + cg * 8 + j) * CiP;
          for (int64_t c = 0; c < ch; c++) row[ci0 + c] = t3d_bf16_round(ut[(e * ch + c) * 8 + j]);
          if (ci0 + ch == Ci)
            for (int64_t c = Ci; c < CiP; c++) row[c] = 0;
        }
    }
    float *V = mine, *M = V + (size_t)ne * VS, *zeros = M + (size_t)(CoP * MS);
    uint16_t *strip = (uint16_t *)(zeros + wt);
    memset(V, 0, (size_t)ne * VS * sizeof(float));
    memset(zeros, 0, (size_t)wt * sizeof(float));
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t it = 0; it < items; it++) {
      if (cancel && *cancel) continue;
      const int64_t n = it / blocks, t0 = it % blocks * wt, nt = min64(wt, tiles - t0);
      wino_inputs(&k, x + n * Ci * DHW, Ci, D, H, W, t0, nt, V, VS);
      /* M[co][e][t] = sum_ci U16[e][co][ci] bf16(V[e][ci][t]) */
      for (int64_t e = 0; e < ne; e++) {
        const float *ve = V + (size_t)e * VS;
        for (int64_t ci = 0; ci < CiP; ci += 2)
          t3d_cpu_bf16_pack_pair(strip + ci * 32, CiP * 32, 1, ci < Ci ? ve + ci * wt : zeros,
                                 ci + 1 < Ci ? ve + (ci + 1) * wt : NULL, nt);
        t3d_cpu_bf16_gemm_block(isa, CoP, 1, CiP, U + (size_t)e * CoP * CiP, CiP, strip, CiP * 32,
                                M + (size_t)e * wt, MS, true);
      }
      wino_outputs(&k, M, MS, n, Co, D, H, W, t0, nt, y, res, bias, relu, stream);
    }
    _mm_sfence();
  }
  t3d_cpu_scratch_free(U);
  if (cancel && *cancel) return t3d_error(T3D_ERR_CANCELLED, "conv3d cancelled");
  return T3D_OK;
}

size_t t3d_cpu_conv3d_wino3_scratch_floats(int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                           int threads)
{
  const wino_kind k = wino_kind_of(2);
  return wino_scratch_floats(&k, N, Ci, Co, D, H, W, threads);
}

t3d_status t3d_cpu_conv3d_wino3(int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                float *y, const float *x, const float *w, const float *bias, const float *res,
                                bool relu, const volatile int *cancel)
{
  const wino_kind k = wino_kind_of(2);
  return wino_run(&k, threads, N, Ci, Co, D, H, W, y, x, w, bias, res, relu, cancel);
}

size_t t3d_cpu_conv3d_wino4_scratch_floats(int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                           int threads)
{
  const wino_kind k = wino_kind_of(4);
  return wino_scratch_floats(&k, N, Ci, Co, D, H, W, threads);
}

t3d_status t3d_cpu_conv3d_wino4(int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H, int64_t W,
                                float *y, const float *x, const float *w, const float *bias, const float *res,
                                bool relu, const volatile int *cancel)
{
  const wino_kind k = wino_kind_of(4);
  return wino_run(&k, threads, N, Ci, Co, D, H, W, y, x, w, bias, res, relu, cancel);
}

t3d_status t3d_cpu_conv3d_wino_rounded(int side, int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H,
                                       int64_t W, float *y, const float *x, const float *w, const float *bias,
                                       const float *res, bool relu, const volatile int *cancel)
{
  wino_kind k = wino_kind_of(side);
  if (!k.w512) return t3d_error(T3D_ERR_UNSUPPORTED, "conv3d: no AVX-512 Winograd kernel for bf16 operands here");
  k.rnd = true;
  return wino_run(&k, threads, N, Ci, Co, D, H, W, y, x, w, bias, res, relu, cancel);
}

#else
int t3d_cpu_wino_cap_width(int bits) { return bits; } /* no Winograd kernel to cap */
t3d_status t3d_cpu_conv3d_wino3_bf16(int threads, t3d_cpu_isa isa, int64_t N, int64_t Ci, int64_t Co, int64_t D,
                                     int64_t H, int64_t W, float *y, const float *x, const uint16_t *wb, int64_t kpad,
                                     const float *bias, const float *res, bool relu, const volatile int *cancel)
{
  (void)threads, (void)isa, (void)N, (void)Ci, (void)Co, (void)D, (void)H, (void)W, (void)y, (void)x, (void)wb;
  (void)kpad, (void)bias, (void)res, (void)relu, (void)cancel;
  return t3d_error(T3D_ERR_UNSUPPORTED, "conv3d (bf16): no Winograd kernel in this build");
}
bool t3d_cpu_wino_avx512(void) { return false; }
t3d_status t3d_cpu_conv3d_wino_rounded(int side, int threads, int64_t N, int64_t Ci, int64_t Co, int64_t D, int64_t H,
                                       int64_t W, float *y, const float *x, const float *w, const float *bias,
                                       const float *res, bool relu, const volatile int *cancel)
{
  (void)side, (void)threads, (void)N, (void)Ci, (void)Co, (void)D, (void)H, (void)W, (void)y, (void)x, (void)w;
  (void)bias, (void)res, (void)relu, (void)cancel;
  return t3d_error(T3D_ERR_UNSUPPORTED, "conv3d: no Winograd kernel in this build");
}
#endif /* x86-64 with GCC / Clang, the only builds where conv.c calls it */
