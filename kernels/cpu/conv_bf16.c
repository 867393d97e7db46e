/* conv3d, conv3d_transpose and linear on bf16 weights (bf16.h): tiles of the fp32 activations are
 * rounded to bf16 as they are packed into B strips, t3d_cpu_bf16_gemm_block multiplies them with
 * the weights in fp32 accumulators, and bias, residual and ReLU are applied in fp32 as each tile
 * leaves. Threads own tiles. Not the fp32 kernels (conv.c, linear.c) and not the GEMM (gemm_bf16.c). */
#include "config.h"

#include <assert.h>
#include <stdlib.h>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/cpu_simd.h"

#define TILE_P 256           /* output positions (columns) per work item, multiple of 32 */
#define TILE_C (64 * 1024)   /* floats of the fp32 C tile per thread: 256 KiB, inside L2 */
#define TILE_K 256           /* K rows per packed chunk: a 256 x 256 bf16 B panel is 128 KiB */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round32(int64_t n) { return ceil_div(n, 32) * 32; }
static bool cancelled(const t3d_backend *be) { return be->cancel && *be->cancel; }

/* ---- work items and per-thread scratch -------------------------------------------------------- */

/* Items of `pt` columns x `mb` C rows (multiples of 32) over `cols` columns and `rows` rows,
 * n times: the largest tiles whose C fits TILE_C, then halved (rows first) until every thread
 * gets about 4 items or the tiles are 32 x 32. */
typedef struct {
  int64_t pt, mb, ptiles, mblocks, items;
  int nthr;
} tiling;

static tiling tiling_make(int64_t n, int64_t cols, int64_t rows, int threads)
{
  tiling t;
  t.pt = min64(round32(cols), TILE_P);
  t.mb = min64(round32(rows), max64(32, TILE_C / t.pt / 32 * 32));
  int64_t want = threads > 1 ? 4 * (int64_t)threads : 1;
  for (;;) {
    t.items = n * ceil_div(cols, t.pt) * ceil_div(rows, t.mb);
    if (t.items >= want) break;
    if (t.mb > 32) t.mb = round32(t.mb / 2);
    else if (t.pt > 32) t.pt = round32(t.pt / 2);
    else break;
  }
  t.ptiles = ceil_div(cols, t.pt);
  t.mblocks = ceil_div(rows, t.mb);
  t.items = n * t.ptiles * t.mblocks;
  t.nthr = (int)max64(1, min64(threads, t.items));
  return t;
}

/* Per thread: the C tile (mb x pt floats), the B panel (pt x TILE_K bf16), three fp32 lines of
 * pt values (two im2col rows and a row of zeros). */
typedef struct {
  float *c;
  uint16_t *b;
  float *line0, *line1, *zeros;
} scratch;

static size_t scratch_floats(const tiling *t)
{
  return (size_t)(t->mb * t->pt + t->pt * TILE_K / 2 + 3 * t->pt);
}

static scratch scratch_at(float *base, const tiling *t, int tid)
{
  scratch s;
  float *p = base + (size_t)tid * scratch_floats(t);
  s.c = p;
  s.b = (uint16_t *)(p + t->mb * t->pt);
  s.line0 = p + t->mb * t->pt + t->pt * TILE_K / 2;
  s.line1 = s.line0 + t->pt;
  s.zeros = s.line1 + t->pt;
  memset(s.zeros, 0, (size_t)t->pt * sizeof(float));
  return s;
}

static t3d_status scratch_alloc(const char *op, const tiling *t, float **out)
{
  size_t bytes = (size_t)t->nthr * scratch_floats(t) * sizeof(float);
  *out = t3d_aligned_alloc(bytes);
  if (!*out) return t3d_error(T3D_ERR_NOMEM, "%s (bf16): cannot allocate %zu bytes of tiles", op, bytes);
  return T3D_OK;
}

/* ---- conv3d ------------------------------------------------------------------------------------ */

typedef struct {
  int64_t Ci, D, H, W, Co, KD, KH, KW, Do, Ho, Wo;
  int64_t s[3], pad[3];
  int64_t kvol, K, P;
  bool direct; /* 1x1x1, stride 1, no padding: row k of B is input channel k as it is */
} conv_geom;

/* Row k = (ci, kd, kh, kw) of the im2col matrix over output positions [p0, p0+pn), into line
 * (or, for direct convolutions, straight from x). */
static const float *im2col_line(const conv_geom *g, const float *xn, int64_t k, int64_t p0, int64_t pn, float *line)
{
  int64_t ci = k / g->kvol, tap = k % g->kvol;
  int64_t kd = tap / (g->KH * g->KW), kh = tap / g->KW % g->KH, kw = tap % g->KW;
  const float *xc = xn + ci * g->D * g->H * g->W;
  if (g->direct) return xc + p0;
  /* output columns whose input column iw = ow*s - pad + kw lies inside [0, W) */
  int64_t first = g->pad[2] - kw <= 0 ? 0 : ceil_div(g->pad[2] - kw, g->s[2]);
  int64_t last = g->W - 1 + g->pad[2] - kw < 0 ? -1 : (g->W - 1 + g->pad[2] - kw) / g->s[2];
  int64_t ow = p0 % g->Wo, oh = p0 / g->Wo % g->Ho, od = p0 / (g->Wo * g->Ho);
  for (int64_t j = 0; j < pn;) {
    int64_t run = min64(g->Wo - ow, pn - j);
    int64_t id = od * g->s[0] - g->pad[0] + kd, ih = oh * g->s[1] - g->pad[1] + kh;
    float *dst = line + j;
    int64_t lo = max64(first, ow), hi = min64(last + 1, ow + run); /* valid ow in [lo, hi) */
    if (id < 0 || id >= g->D || ih < 0 || ih >= g->H || hi <= lo) {
      memset(dst, 0, (size_t)run * sizeof *dst);
    } else {
      const float *src = xc + (id * g->H + ih) * g->W - g->pad[2] + kw;
      for (int64_t o = ow; o < lo; o++) dst[o - ow] = 0.0f;
      for (int64_t o = lo; o < hi; o++) dst[o - ow] = src[o * g->s[2]];
      for (int64_t o = hi; o < ow + run; o++) dst[o - ow] = 0.0f;
    }
    j += run;
    ow = 0;
    if (++oh == g->Ho) oh = 0, od++;
  }
  return line;
}

/* B panel of K rows [k0, k0+kc) (kc a multiple of 32; rows past K are zero) for positions
 * [p0, p0+pn) of image xn. */
static void conv_pack(const conv_geom *g, const float *xn, int64_t k0, int64_t kc, int64_t p0, int64_t pn,
                      const scratch *sc)
{
  int64_t ns = ceil_div(pn, 32);
  for (int64_t kp = 0; kp < kc / 2; kp++) {
    int64_t k = k0 + 2 * kp;
    const float *r0 = k < g->K ? im2col_line(g, xn, k, p0, pn, sc->line0) : sc->zeros;
    const float *r1 = k + 1 < g->K ? im2col_line(g, xn, k + 1, p0, pn, sc->line1) : NULL;
    t3d_cpu_bf16_pack_pair(sc->b + kp * 64, kc * 32, ns, r0, r1, pn);
  }
}

/* ---- B panels from a bf16 copy of x (kernels wider than 1x1x1, width stride 1 or 2) -------------
 * The same B panel as conv_pack, bit for bit, built another way: x is rounded to bf16 once per
 * call (x16, the rounding pack_pair does), and each strip row of 32 columns is two 32-lane
 * windows of x16 (the pair's two taps; masked loads, zeros outside the volume and past the
 * columns) interleaved by one two-source permute; with a width stride of 2 each window is the
 * even elements of two loads; any depth and height stride. conv_pack builds two fp32 im2col
 * lines per K pair and converts them, about as much work per element as the GEMM does with 64
 * output channels (l1.conv2), so that layer ran at 0.6 of the bf16 kernel's speed. AVX512BW. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static __mmask32 lane_mask(int64_t lo, int64_t hi) /* lanes [lo, hi) of 32 */
{
  if (hi <= lo) return 0;
  uint64_t m = ((hi >= 32 ? ~0ull : (1ull << hi) - 1)) & ~((1ull << lo) - 1);
  return (__mmask32)m;
}

/* A run of a strip's columns along one output row: lanes [l0, l0 + n) are outputs (od, oh, ow..). */
typedef struct {
  int32_t l0, n, od, oh, ow;
} col_run;

/* One tap's window into the run's lanes of v (zeros outside the volume stay zero). */
__attribute__((target("avx512f,avx512bw"))) static inline __m512i tap_window(__m512i v, const conv_geom *g,
                                                                             const uint16_t *xc, const int32_t *tap,
                                                                             const col_run *r)
{
  const int64_t id = r->od * g->s[0] - g->pad[0] + tap[0], ih = r->oh * g->s[1] - g->pad[1] + tap[1];
  const int64_t iw0 = r->ow - g->pad[2] + tap[2];
  if (id < 0 || id >= g->D || ih < 0 || ih >= g->H) return v;
  const int64_t lo = iw0 < 0 ? -iw0 : 0, hi = g->W - iw0 < r->n ? g->W - iw0 : r->n; /* valid lanes of the run */
  const __mmask32 m = lane_mask(r->l0 + lo, r->l0 + hi);
  if (!m) return v;
  /* lane l reads iw0 + (l - l0): the address of lane 0 may lie before the row (masked lanes are not read) */
  return _mm512_mask_loadu_epi16(v, m, xc + (id * g->H + ih) * g->W + iw0 - r->l0);
}

/* The same with a width stride of 2: lane l reads iw0 + 2 (l - l0), so the run's lanes are the
 * even elements of 64 consecutive ones, loaded into lo (elements 0-31) and hi (32-63) and taken
 * apart by the caller. Odd elements may be loaded too: they are dropped. */
__attribute__((target("avx512f,avx512bw"))) static inline void tap_window_s2(__m512i *lo_v, __m512i *hi_v,
                                                                            const conv_geom *g, const uint16_t *xc,
                                                                            const int32_t *tap, const col_run *r)
{
  const int64_t id = r->od * g->s[0] - g->pad[0] + tap[0], ih = r->oh * g->s[1] - g->pad[1] + tap[1];
  const int64_t iw0 = 2 * r->ow - g->pad[2] + tap[2], e0 = 2 * (int64_t)r->l0; /* element e reads iw0 - e0 + e */
  if (id < 0 || id >= g->D || ih < 0 || ih >= g->H) return;
  int64_t elo = e0 > e0 - iw0 ? e0 : e0 - iw0, ehi = e0 + 2 * r->n; /* elements of the run inside [0, W) */
  if (ehi > e0 - iw0 + g->W) ehi = e0 - iw0 + g->W;
  if (ehi <= elo) return;
  const uint16_t *base = xc + (id * g->H + ih) * g->W + iw0 - e0;
  const __mmask32 m0 = lane_mask(elo, ehi), m1 = lane_mask(elo - 32 > 0 ? elo - 32 : 0, ehi - 32);
  if (m0) *lo_v = _mm512_mask_loadu_epi16(*lo_v, m0, base);
  if (m1) *hi_v = _mm512_mask_loadu_epi16(*hi_v, m1, base + 32);
}

#define MAX_STRIPS (TILE_P / 32)

/* The column runs of a tile's strips, the same for every K row of every chunk: strip s owns
 * run[first[s] .. first[s + 1]). */
typedef struct {
  col_run run[MAX_STRIPS * 33];
  int first[MAX_STRIPS + 1];
} strip_runs;

static void strip_runs_make(const conv_geom *g, int64_t p0, int64_t pn, strip_runs *sr)
{
  sr->first[0] = 0;
  for (int64_t s = 0, r = 0; s < ceil_div(pn, 32); s++) {
    const int64_t c0 = p0 + 32 * s, c1 = p0 + (pn < 32 * (s + 1) ? pn : 32 * (s + 1));
    int64_t ow = c0 % g->Wo, oh = c0 / g->Wo % g->Ho, od = c0 / (g->Wo * g->Ho);
    for (int64_t c = c0; c < c1; r++) {
      const int64_t n = g->Wo - ow < c1 - c ? g->Wo - ow : c1 - c;
      sr->run[r] = (col_run){(int32_t)(c - c0), (int32_t)n, (int32_t)od, (int32_t)oh, (int32_t)ow};
      c += n;
      ow = 0;
      if (++oh == g->Ho) oh = 0, od++;
    }
    sr->first[s + 1] = (int)r;
  }
}

/* taps: (kd, kh, kw) of every tap index, 3 per tap; sr: strip_runs_make of (p0, pn). */
__attribute__((target("avx512f,avx512bw"))) static void conv_pack_x16(const conv_geom *g, const uint16_t *x16n,
                                                                      const int32_t *taps, const strip_runs *sr,
                                                                      int64_t k0, int64_t kc, int64_t pn,
                                                                      const scratch *sc)
{
  const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                          37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi_idx = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24, 55, 23, 54,
                                          22, 53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
  const __m512i even_idx = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30, 28, 26,
                                            24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const int64_t ns = ceil_div(pn, 32), DHW = g->D * g->H * g->W;
  int64_t ci = k0 / g->kvol, t = k0 % g->kvol; /* K row k0 = (ci, tap t), advanced one row at a time */
  for (int64_t kp = 0; kp < kc / 2; kp++) {
    const uint16_t *xc[2] = {NULL, NULL};
    const int32_t *tp[2];
    for (int j = 0; j < 2; j++) {
      if (ci < g->Ci) xc[j] = x16n + ci * DHW; /* else past K: zeros */
      tp[j] = taps + 3 * t;
      if (++t == g->kvol) t = 0, ci++;
    }
    for (int64_t s = 0; s < ns; s++) {
      __m512i v0 = _mm512_setzero_si512(), v1 = _mm512_setzero_si512();
      if (g->s[2] == 1) {
        for (int r = sr->first[s]; r < sr->first[s + 1]; r++) {
          if (xc[0]) v0 = tap_window(v0, g, xc[0], tp[0], &sr->run[r]);
          if (xc[1]) v1 = tap_window(v1, g, xc[1], tp[1], &sr->run[r]);
        }
      } else { /* width stride 2 */
        __m512i h0 = _mm512_setzero_si512(), h1 = _mm512_setzero_si512();
        for (int r = sr->first[s]; r < sr->first[s + 1]; r++) {
          if (xc[0]) tap_window_s2(&v0, &h0, g, xc[0], tp[0], &sr->run[r]);
          if (xc[1]) tap_window_s2(&v1, &h1, g, xc[1], tp[1], &sr->run[r]);
        }
        v0 = _mm512_permutex2var_epi16(v0, even_idx, h0);
        v1 = _mm512_permutex2var_epi16(v1, even_idx, h1);
      }
      uint16_t *dst = sc->b + s * kc * 32 + kp * 64;
      _mm512_storeu_si512(dst, _mm512_permutex2var_epi16(v0, lo_idx, v1));
      _mm512_storeu_si512(dst + 32, _mm512_permutex2var_epi16(v0, hi_idx, v1));
    }
  }
}
#endif

/* -1 (default): the x16 packing where it applies (a kernel wider than 1x1x1, width stride 1 or 2,
 * AVX512BW); 0: never (conv_pack, the reference it must equal bit for bit). The 1x1x1 layers pack
 * each element once anyway: the copy did not pay there (bench-conv, tried). */
static int x16_mode = -1;

int t3d_cpu_bf16_force_x16_pack(int mode)
{
  int old = x16_mode;
  x16_mode = mode;
  return old;
}

static bool use_x16(const conv_geom *g)
{
#if defined(__x86_64__) && defined(__GNUC__)
  return x16_mode != 0 && !g->direct && g->kvol > 1 && (g->s[2] == 1 || g->s[2] == 2) &&
         __builtin_cpu_supports("avx512bw");
#else
  (void)g;
  return false;
#endif
}

/* y rows [m0, m0+mn) x columns [p0, p0+pn) of image n from the C tile (row stride ldc). */
static void conv_epilogue(float *yn, const float *rn, const float *bias, const float *c, int64_t ldc, int64_t m0,
                          int64_t mn, int64_t p0, int64_t pn, int64_t P, bool relu)
{
  for (int64_t m = 0; m < mn; m++) {
    float *yr = yn + (m0 + m) * P + p0;
    const float *rr = rn ? rn + (m0 + m) * P + p0 : NULL, *cr = c + m * ldc;
    float b = bias ? bias[m0 + m] : 0.0f;
    for (int64_t j = 0; j < pn; j++) {
      float v = cr[j] + b + (rr ? rr[j] : 0.0f);
      yr[j] = relu ? (v > 0.0f ? v : 0.0f) : v; /* as the fp32 epilogue: NaN becomes 0 */
    }
  }
}

/* Winograd F(2,3) (conv_wino.c) or im2col in bf16, for 3x3x3 stride-1 padding-1 layers.
 * Winograd rounds the transformed operands to bf16, and its output transform adds up products
 * larger than the output, so its error is about 3x im2col's (tests/test-bf16.c, against fp32 in
 * the direct sum's magnitude: 0.8-2.5e-3 against 3-16e-4). On the shipped t3d-tiny the encoder
 * in bf16 already takes most of the tolerance (test-bf16-model: a zero-shot probability 0.0093
 * from fp32, the bound is 0.01; with Winograd in the encoder too, 0.0108), so AUTO takes Winograd
 * only in layers marked tolerant, the segmentation decoder's (labels equal on 99.65 % and 99.82 %
 * of the two phantoms' voxels either way, 99.85 % on the real CT against 99.86 %). Speed there
 * (bench-conv --bf16, 2 threads, bound, AVX512-BF16 Xeon, im2col -> Winograd ms): 1280 -> 256 at
 * 10x14x14 296 -> 166, 640 -> 128 at 20x28x28 624 -> 205, 320 -> 64 at 40x56x56 1394 -> 493,
 * 96 -> 32 at 80x112x112 2159 -> 635, 17 -> 16 at 160x224x224 3363 -> 1341; even 512 -> 512 at
 * 5x7x7 57 -> 51. The fp32 path's F(4,3) is not offered: its larger coefficients would multiply
 * bf16's error about 40x. */
static int wino_mode = -1;

int t3d_cpu_bf16_force_wino(int mode)
{
  int old = wino_mode;
  wino_mode = mode;
  return old;
}

#define WINO_BF16_MIN_P 1536 /* outputs: the fp32 kernel's AVX-512 bound (conv.c WINO_MIN_P512) */
bool t3d_cpu_conv3d_bf16_wino(const t3d_tensor *x, const t3d_tensor *w, const t3d_conv3d_params *p)
{
  if (wino_mode == 0 || !t3d_cpu_wino_avx512()) return false;
  for (int i = 0; i < 3; i++)
    if (w->shape[2 + i] != 3 || p->stride[i] != 1 || p->pad[i] != 1) return false;
  if (wino_mode == 1) return true;
  const int64_t Ci = x->shape[1], Co = w->shape[0], P = x->shape[2] * x->shape[3] * x->shape[4];
  return p->tolerant && Ci >= 8 && Co >= 8 && P >= WINO_BF16_MIN_P;
}

t3d_status t3d_cpu_conv3d_bf16(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                               const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  t3d_bf16_layout l;
  bool ok = t3d_bf16_layout_of(T3D_OP_CONV3D, w, &l);
  assert(ok && w->dtype == T3D_BF16 && x->dtype == T3D_F32);
  (void)ok;
  t3d_status fst;
  if (t3d_cpu_bf16_isa() == T3D_CPU_ISA_AVX512F && t3d_cpu_conv3d_bf16_fma(be, y, x, w, bias, residual, p, &fst))
    return fst;
  if (t3d_cpu_conv3d_bf16_wino(x, w, p))
    return t3d_cpu_conv3d_wino3_bf16(be->threads, t3d_cpu_bf16_isa(), x->shape[0], x->shape[1], w->shape[0],
                                     x->shape[2], x->shape[3], x->shape[4], y->data, x->data, w->data, l.kpad,
                                     bias ? bias->data : NULL, residual ? residual->data : NULL, p->relu, be->cancel);
  conv_geom g = {x->shape[1], x->shape[2], x->shape[3], x->shape[4], w->shape[0], w->shape[2], w->shape[3],
                 w->shape[4], y->shape[2], y->shape[3], y->shape[4], {p->stride[0], p->stride[1], p->stride[2]},
                 {p->pad[0], p->pad[1], p->pad[2]}, 0, 0, 0, false};
  g.kvol = g.KD * g.KH * g.KW;
  g.K = g.Ci * g.kvol;
  g.P = g.Do * g.Ho * g.Wo;
  g.direct = g.kvol == 1 && g.s[0] == 1 && g.s[1] == 1 && g.s[2] == 1 && g.pad[0] == 0 && g.pad[1] == 0 &&
             g.pad[2] == 0;
  const int64_t N = x->shape[0];
  const tiling t = tiling_make(N, g.P, l.rows, be->threads);
  const t3d_cpu_isa isa = t3d_cpu_bf16_isa();
  const uint16_t *wd = w->data;
  const float *xd = x->data, *bd = bias ? bias->data : NULL, *rd = residual ? residual->data : NULL;
  float *yd = y->data, *base = NULL;
  T3D_TRY(scratch_alloc("conv3d", &t, &base));
  uint16_t *x16 = NULL;
  int32_t *taps = NULL;
  const bool fast = use_x16(&g);
  const int64_t xn_elems = g.Ci * g.D * g.H * g.W;
  if (fast) {
    x16 = t3d_aligned_alloc((size_t)(N * xn_elems) * sizeof *x16);
    taps = malloc((size_t)(3 * g.kvol) * sizeof *taps);
    if (taps)
      for (int64_t t = 0; t < g.kvol; t++) {
        taps[3 * t] = (int32_t)(t / (g.KH * g.KW));
        taps[3 * t + 1] = (int32_t)(t / g.KW % g.KH);
        taps[3 * t + 2] = (int32_t)(t % g.KW);
      }
    if (!x16 || !taps) {
      t3d_aligned_free(x16);
      free(taps);
      t3d_aligned_free(base);
      return t3d_error(T3D_ERR_NOMEM, "conv3d (bf16): cannot allocate %lld bytes for x in bf16",
                       (long long)(N * xn_elems * 2));
    }
  }

#pragma omp parallel num_threads(t.nthr)
  {
    scratch sc = scratch_at(base, &t, t3d_cpu_omp_thread());
    if (fast) {
#pragma omp for schedule(static)
      for (int64_t r = 0; r < N * g.Ci * g.D; r++) { /* one depth plane of one channel at a time */
        const float *src = xd + r * g.H * g.W;
        uint16_t *dst = x16 + r * g.H * g.W;
#pragma omp simd
        for (int64_t i = 0; i < g.H * g.W; i++) dst[i] = t3d_bf16_round(src[i]);
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < t.items; it++) {
      if (cancelled(be)) continue;
      int64_t mbi = it % t.mblocks, pti = it / t.mblocks % t.ptiles, n = it / (t.mblocks * t.ptiles);
      int64_t m0 = mbi * t.mb, mrows = min64(t.mb, l.rows - m0), p0 = pti * t.pt, pn = min64(t.pt, g.P - p0);
      const float *xn = xd + n * g.Ci * g.D * g.H * g.W;
#if defined(__x86_64__) && defined(__GNUC__)
      strip_runs sr;
      if (fast) strip_runs_make(&g, p0, pn, &sr);
#endif
      for (int64_t k0 = 0; k0 < l.kpad; k0 += TILE_K) {
        int64_t kc = min64(TILE_K, l.kpad - k0);
#if defined(__x86_64__) && defined(__GNUC__)
        if (fast) conv_pack_x16(&g, x16 + n * xn_elems, taps, &sr, k0, kc, pn, &sc);
        else
#endif
          conv_pack(&g, xn, k0, kc, p0, pn, &sc);
        t3d_cpu_bf16_gemm_block(isa, mrows, ceil_div(pn, 32), kc, wd + m0 * l.kpad + k0, l.kpad, sc.b, kc * 32, sc.c,
                                t.pt, k0 == 0);
      }
      conv_epilogue(yd + n * g.Co * g.P, rd ? rd + n * g.Co * g.P : NULL, bd, sc.c, t.pt, m0,
                    min64(mrows, g.Co - m0), p0, pn, g.P, p->relu);
    }
  }
  t3d_aligned_free(x16);
  free(taps);
  t3d_aligned_free(base);
  return cancelled(be) ? t3d_error(T3D_ERR_CANCELLED, "conv3d cancelled") : T3D_OK;
}

/* ---- conv3d_transpose ----------------------------------------------------------------------------
 * col[(co, tap), p] = sum_ci w[ci, co, tap] x[ci, p] as a GEMM (A: the transposed weights, B: x's
 * rows), then each column is added at its output position. An item owns whole output channels;
 * when kernel == stride and no padding every output has one source, so items also split the
 * input positions (the decoder's 2x2x2 upsampling). */

typedef struct {
  int64_t Ci, D, H, W, Co, KD, KH, KW, Do, Ho, Wo, kvol, Pin, Pout;
  int64_t s[3], pad[3];
} convt_geom;

/* C rows (co, tap) x input positions [p0, p0+pn) into yn: added, or, when every output has one
 * source (disjoint), stored with the bias so y needs no initialisation pass. */
static void convt_scatter(const convt_geom *g, const float *c, int64_t ldc, int64_t co0, int64_t cn, int64_t p0,
                          int64_t pn, float *yn, bool disjoint, const float *bias)
{
  for (int64_t r = 0; r < cn * g->kvol; r++) {
    int64_t co = co0 + r / g->kvol, tap = r % g->kvol;
    int64_t kd = tap / (g->KH * g->KW), kh = tap / g->KW % g->KH, kw = tap % g->KW;
    float *yc = yn + co * g->Pout, b = bias ? bias[co] : 0.0f;
    const float *cr = c + r * ldc;
    int64_t iw = p0 % g->W, ih = p0 / g->W % g->H, id = p0 / (g->W * g->H);
    for (int64_t j = 0; j < pn;) {
      int64_t run = min64(g->W - iw, pn - j);
      int64_t od = id * g->s[0] - g->pad[0] + kd, oh = ih * g->s[1] - g->pad[1] + kh;
      if (od >= 0 && od < g->Do && oh >= 0 && oh < g->Ho) {
        float *yrow = yc + (od * g->Ho + oh) * g->Wo;
        for (int64_t i = 0; i < run; i++) {
          int64_t ow = (iw + i) * g->s[2] - g->pad[2] + kw;
          if (ow >= 0 && ow < g->Wo) yrow[ow] = disjoint ? cr[j + i] + b : yrow[ow] + cr[j + i];
        }
      }
      j += run;
      iw = 0;
      if (++ih == g->H) ih = 0, id++;
    }
  }
}

t3d_status t3d_cpu_conv3d_transpose_bf16(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                         const t3d_tensor *bias, const t3d_conv3d_transpose_params *p)
{
  t3d_bf16_layout l;
  bool ok = t3d_bf16_layout_of(T3D_OP_CONV3D_TRANSPOSE, w, &l);
  assert(ok && w->dtype == T3D_BF16 && x->dtype == T3D_F32);
  (void)ok;
  convt_geom g = {x->shape[1], x->shape[2], x->shape[3], x->shape[4], w->shape[1], w->shape[2], w->shape[3],
                  w->shape[4], y->shape[2], y->shape[3], y->shape[4], 0, 0, 0,
                  {p->stride[0], p->stride[1], p->stride[2]}, {p->pad[0], p->pad[1], p->pad[2]}};
  g.kvol = g.KD * g.KH * g.KW;
  g.Pin = g.D * g.H * g.W;
  g.Pout = g.Do * g.Ho * g.Wo;
  const int64_t N = x->shape[0];
  const bool disjoint = g.pad[0] == 0 && g.pad[1] == 0 && g.pad[2] == 0 && g.s[0] == g.KD && g.s[1] == g.KH &&
                        g.s[2] == g.KW;
  /* rows of C are (co, tap): plan in channels, then turn the row tile into channels per item */
  tiling t = tiling_make(N, disjoint ? g.Pin : 1, g.Co * g.kvol, be->threads);
  int64_t cb = max64(1, t.mb / g.kvol); /* channels per item */
  if (!disjoint) t.pt = min64(round32(g.Pin), TILE_P), t.ptiles = 1;
  t.mb = round32(cb * g.kvol);
  if (t.mb * t.pt > TILE_C && cb > 1) { /* one channel's taps may exceed the budget; keep >= 1 channel */
    cb = max64(1, TILE_C / t.pt / g.kvol);
    t.mb = round32(cb * g.kvol);
  }
  t.mblocks = ceil_div(g.Co, cb);
  t.items = N * t.mblocks * t.ptiles;
  t.nthr = (int)max64(1, min64(be->threads, t.items));
  const int64_t ptile_cols = disjoint ? t.pt : g.Pin; /* input positions per item */
  const t3d_cpu_isa isa = t3d_cpu_bf16_isa();
  const uint16_t *wd = w->data;
  const float *xd = x->data, *bd = bias ? bias->data : NULL;
  float *yd = y->data, *base = NULL;
  T3D_TRY(scratch_alloc("conv3d_transpose", &t, &base));

#pragma omp parallel num_threads(t.nthr)
  {
    scratch sc = scratch_at(base, &t, t3d_cpu_omp_thread());
    /* outputs no input reaches (output_pad, or every output when sources overlap) start at the bias */
    const bool init = !disjoint || g.Do != g.D * g.KD || g.Ho != g.H * g.KH || g.Wo != g.W * g.KW;
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < (init ? N * g.Co : 0); nc++) {
      float *yc = yd + nc * g.Pout, b = bd ? bd[nc % g.Co] : 0.0f;
      for (int64_t i = 0; i < g.Pout; i++) yc[i] = b;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < t.items; it++) {
      if (cancelled(be)) continue;
      int64_t pti = it % t.ptiles, bi = it / t.ptiles % t.mblocks, n = it / (t.ptiles * t.mblocks);
      int64_t co0 = bi * cb, cn = min64(cb, g.Co - co0), mrows = round32(cn * g.kvol);
      const float *xn = xd + n * g.Ci * g.Pin;
      int64_t q0 = pti * ptile_cols, q1 = min64(g.Pin, q0 + ptile_cols);
      for (int64_t p0 = q0; p0 < q1; p0 += t.pt) {
        int64_t pn = min64(t.pt, q1 - p0), ns = ceil_div(pn, 32);
        for (int64_t k0 = 0; k0 < l.kpad; k0 += TILE_K) {
          int64_t kc = min64(TILE_K, l.kpad - k0);
          for (int64_t kp = 0; kp < kc / 2; kp++) {
            int64_t ci = k0 + 2 * kp;
            const float *r0 = ci < g.Ci ? xn + ci * g.Pin + p0 : sc.zeros;
            const float *r1 = ci + 1 < g.Ci ? xn + (ci + 1) * g.Pin + p0 : NULL;
            t3d_cpu_bf16_pack_pair(sc.b + kp * 64, kc * 32, ns, r0, r1, pn);
          }
          t3d_cpu_bf16_gemm_block(isa, mrows, ns, kc, wd + co0 * g.kvol * l.kpad + k0, l.kpad, sc.b, kc * 32, sc.c,
                                  t.pt, k0 == 0);
        }
        convt_scatter(&g, sc.c, t.pt, co0, cn, p0, pn, yd + n * g.Co * g.Pout, disjoint, bd);
      }
    }
  }
  t3d_aligned_free(base);
  return cancelled(be) ? t3d_error(T3D_ERR_CANCELLED, "conv3d_transpose cancelled") : T3D_OK;
}

/* ---- linear ----------------------------------------------------------------------------------------
 * y[t, o] = sum_i x[t, i] w[o, i] + b[o] with the tokens as A (converted to bf16 once per call, all
 * threads sharing it) and the weights as B, already in strips at load: C is y's own layout. */

t3d_status t3d_cpu_linear_bf16(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                               const t3d_tensor *b)
{
  t3d_bf16_layout l;
  bool ok = t3d_bf16_layout_of(T3D_OP_LINEAR, w, &l);
  assert(ok && w->dtype == T3D_BF16 && x->dtype == T3D_F32);
  (void)ok;
  const int64_t in = l.k, out = l.m, T = t3d_tensor_numel(x) / in, tpad = round32(T);
  const tiling t = tiling_make(1, out, T, be->threads); /* pt: output columns, mb: tokens per item */
  const t3d_cpu_isa isa = t3d_cpu_bf16_isa();
  const uint16_t *wd = w->data;
  const float *xd = x->data, *bd = b ? b->data : NULL;
  float *yd = y->data;
  size_t abytes = (size_t)(tpad * l.kpad) * sizeof(uint16_t), cfloats = (size_t)(t.mb * t.pt);
  uint16_t *xa = t3d_aligned_alloc(abytes);
  float *cbase = t3d_aligned_alloc((size_t)t.nthr * cfloats * sizeof(float));
  if (!xa || !cbase) {
    t3d_aligned_free(xa);
    t3d_aligned_free(cbase);
    return t3d_error(T3D_ERR_NOMEM, "linear (bf16): cannot allocate %zu bytes", abytes + (size_t)t.nthr * cfloats * 4);
  }

#pragma omp parallel num_threads(t.nthr)
  {
    float *c = cbase + (size_t)t3d_cpu_omp_thread() * cfloats;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < tpad; r++) { /* A rows: tokens, zero past T and past In */
      uint16_t *ar = xa + r * l.kpad;
      const float *xr = xd + (r < T ? r : 0) * in;
      int64_t n = r < T ? in : 0;
#pragma omp simd
      for (int64_t i = 0; i < n; i++) ar[i] = t3d_bf16_round(xr[i]);
      memset(ar + n, 0, (size_t)(l.kpad - n) * sizeof *ar);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < t.items; it++) {
      int64_t mbi = it % t.mblocks, pti = it / t.mblocks;
      int64_t m0 = mbi * t.mb, mrows = min64(t.mb, tpad - m0), o0 = pti * t.pt, on = min64(t.pt, out - o0);
      for (int64_t k0 = 0; k0 < l.kpad; k0 += TILE_K)
        t3d_cpu_bf16_gemm_block(isa, mrows, ceil_div(on, 32), min64(TILE_K, l.kpad - k0), xa + m0 * l.kpad + k0,
                                l.kpad, wd + o0 * l.kpad + k0 * 32, l.kpad * 32, c, t.pt, k0 == 0);
      for (int64_t r = 0; r < min64(mrows, T - m0); r++) {
        float *yr = yd + (m0 + r) * out + o0;
        const float *cr = c + r * t.pt;
        for (int64_t j = 0; j < on; j++) yr[j] = cr[j] + (bd ? bd[o0 + j] : 0.0f);
      }
    }
  }
  t3d_aligned_free(xa);
  t3d_aligned_free(cbase);
  return T3D_OK;
}
