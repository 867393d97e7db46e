/* Fast CPU 3-D convolution and transposed convolution in the model's NCDHW layout: GEMMs over
 * tiles of output positions (im2col for kernels > 1, direct for 1x1x1 stride 1), with bias,
 * residual and ReLU applied to each tile while it is still in cache. Threads own tiles.
 * Not the reference (conv_ref.c) and not a direct/Winograd convolution. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "kernels/cpu/conv.h"

/* Column tile budget per thread, in floats. 256 Ki floats = 1 MiB: half of one core's L2 on
 * the machines we measured on, leaving room for the GEMM's own packed panels. */
#define COL_BUDGET_FLOATS (256 * 1024)
/* Fewer output positions per tile than this makes the GEMM inefficient; split K instead. */
#define MIN_TILE_P 128

static bool force_own_gemm;
static int64_t col_budget = COL_BUDGET_FLOATS;

size_t t3d_cpu_conv_set_col_budget(size_t floats)
{
  size_t old = (size_t)col_budget;
  col_budget = floats ? (int64_t)floats : COL_BUDGET_FLOATS;
  return old;
}

bool t3d_cpu_conv_force_own_gemm(bool on)
{
  bool old = force_own_gemm;
  force_own_gemm = on;
  return old;
}

static bool use_own_gemm(void)
{
#ifdef HAVE_OPENBLAS
  return force_own_gemm;
#else
  return true;
#endif
}

/* C[m,n] = op(A)[m,k] B[k,n] (+ C when beta is 1). ws: scratch for our own GEMM (may be NULL
 * only when OpenBLAS is used). */
static void gemm(bool trans_a, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc, float *ws)
{
#ifdef HAVE_OPENBLAS
  if (!force_own_gemm) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b,
                ldb, beta, c, ldc);
    return;
  }
#endif
  t3d_cpu_sgemm_own(trans_a, m, n, k, a, lda, b, ldb, beta, c, ldc, ws);
}

/* OpenBLAS's own threads would fight ours: each of our threads runs a single-threaded GEMM
 * on its tile. The previous setting is restored on exit. */
typedef struct {
  int saved;
} blas_threads_guard;

static blas_threads_guard blas_threads_single(void)
{
  blas_threads_guard g = {0};
#ifdef HAVE_OPENBLAS
  g.saved = openblas_get_num_threads();
  if (g.saved != 1) openblas_set_num_threads(1);
#endif
  return g;
}

static void blas_threads_restore(blas_threads_guard g)
{
#ifdef HAVE_OPENBLAS
  if (g.saved != 1) openblas_set_num_threads(g.saved);
#else
  (void)g;
#endif
}

static int clamp_threads(const t3d_backend *be)
{
  int t = be ? be->threads : 1;
  return t < 1 ? 1 : t;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
/* Scratch pieces start on 64-byte boundaries (the GEMM's packed panels need it). */
static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* ---- forward convolution ------------------------------------------------------------- */

typedef struct {
  int64_t N, Ci, D, H, W;    /* input */
  int64_t Co, KD, KH, KW;    /* weights */
  int64_t Do, Ho, Wo;        /* output */
  int64_t sd, sh, sw, pd, ph, pw;
  int64_t kvol, K, P;        /* taps per channel, GEMM depth Ci*kvol, output positions */
  bool direct;               /* 1x1x1, stride 1, no padding: the input is already the B matrix */
  /* tiling */
  int64_t pt;                /* output positions per tile */
  int64_t cc;                /* input channels per K chunk */
  int64_t mb;                /* output channels per M block */
} conv_plan;

static void conv_plan_make(conv_plan *c, const t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                           const t3d_conv3d_params *p, int threads)
{
  c->N = x->shape[0], c->Ci = x->shape[1], c->D = x->shape[2], c->H = x->shape[3], c->W = x->shape[4];
  c->Co = w->shape[0], c->KD = w->shape[2], c->KH = w->shape[3], c->KW = w->shape[4];
  c->Do = y->shape[2], c->Ho = y->shape[3], c->Wo = y->shape[4];
  c->sd = p->stride[0], c->sh = p->stride[1], c->sw = p->stride[2];
  c->pd = p->pad[0], c->ph = p->pad[1], c->pw = p->pad[2];
  c->kvol = c->KD * c->KH * c->KW;
  c->K = c->Ci * c->kvol;
  c->P = c->Do * c->Ho * c->Wo;
  c->direct = c->kvol == 1 && c->sd == 1 && c->sh == 1 && c->sw == 1 && c->pd == 0 && c->ph == 0 && c->pw == 0;

  /* Tile of output positions: as wide as the column budget allows for the whole depth K,
   * but at least MIN_TILE_P; when K is too deep for that, chunk the input channels. */
  int64_t pt = col_budget / c->K;
  if (c->direct) pt = col_budget / max64(c->Co, 1); /* bound the hot output tile instead */
  pt = max64(pt, MIN_TILE_P);
  pt = pt >= 64 ? pt / 16 * 16 : pt;
  c->pt = min64(pt, c->P);
  c->cc = c->direct ? c->Ci : max64(1, min64(c->Ci, col_budget / (c->kvol * c->pt)));

  /* Enough work items for the threads: when the positions give too few tiles, also split
   * the output channels (each block rebuilds the same column tile: cheap next to the GEMM). */
  int64_t tiles = c->N * ceil_div(c->P, c->pt);
  int64_t want = threads > 1 ? 4 * (int64_t)threads : 1;
  int64_t nmb = tiles >= want ? 1 : ceil_div(want, tiles);
  int64_t mb = ceil_div(c->Co, nmb);
  mb = max64(mb, 32);
  c->mb = min64(ceil_div(mb, 16) * 16, c->Co);
}

/* Columns for input channels [c0, c0+cn) and output positions [p0, p0+pn) of image xn:
 * col[((ci-c0)*kvol + tap) * pn + (p-p0)] = x[ci, od*sd-pd+kd, oh*sh-ph+kh, ow*sw-pw+kw] or 0. */
static void im2col_tile(const conv_plan *c, const float *xn, int64_t c0, int64_t cn, int64_t p0, int64_t pn,
                        float *col)
{
  const int64_t HW = c->H * c->W, Wi = c->W;
  for (int64_t ci = c0; ci < c0 + cn; ci++) {
    const float *xc = xn + ci * c->D * HW;
    for (int64_t kd = 0; kd < c->KD; kd++)
      for (int64_t kh = 0; kh < c->KH; kh++)
        for (int64_t kw = 0; kw < c->KW; kw++) {
          float *dst = col;
          col += pn;
          /* valid ow: 0 <= ow*sw - pw + kw < W */
          int64_t lo_num = c->pw - kw;
          int64_t ow_lo = lo_num <= 0 ? 0 : ceil_div(lo_num, c->sw);
          int64_t ow_hi = Wi - 1 + c->pw - kw < 0 ? 0 : (Wi - 1 + c->pw - kw) / c->sw + 1; /* exclusive */
          ow_hi = min64(ow_hi, c->Wo);
          int64_t p = p0, pend = p0 + pn;
          int64_t ow = p % c->Wo, t = p / c->Wo, oh = t % c->Ho, od = t / c->Ho;
          while (p < pend) {
            int64_t seg = min64(c->Wo - ow, pend - p);
            int64_t id = od * c->sd - c->pd + kd, ih = oh * c->sh - c->ph + kh;
            if (id < 0 || id >= c->D || ih < 0 || ih >= c->H) {
              memset(dst, 0, (size_t)seg * sizeof *dst);
            } else {
              const float *src = xc + id * HW + ih * Wi - c->pw + kw; /* src[ow*sw] */
              int64_t a = max64(ow, ow_lo), b = min64(ow + seg, ow_hi);
              int64_t i = ow;
              for (; i < a && i < ow + seg; i++) dst[i - ow] = 0.0f;
              if (c->sw == 1) {
                if (b > a) memcpy(dst + (a - ow), src + a, (size_t)(b - a) * sizeof *dst);
                i = b > a ? b : i;
              } else if (c->sw == 2) {
                for (; i < b; i++) dst[i - ow] = src[2 * i];
              } else {
                for (; i < b; i++) dst[i - ow] = src[i * c->sw];
              }
              for (; i < ow + seg; i++) dst[i - ow] = 0.0f;
            }
            dst += seg;
            p += seg;
            ow = 0;
            if (++oh == c->Ho) oh = 0, od++;
          }
        }
  }
}

/* y tile rows [m0, m0+mn), columns [p0, p0+pn), row stride P: + bias, + residual, ReLU. */
static void epilogue(float *yt, const float *rt, const float *bias, int64_t mn, int64_t pn, int64_t ld, bool relu)
{
  for (int64_t m = 0; m < mn; m++) {
    float *yr = yt + m * ld;
    const float *rr = rt ? rt + m * ld : NULL;
    float b = bias ? bias[m] : 0.0f;
    if (rr)
      for (int64_t j = 0; j < pn; j++) yr[j] += b + rr[j];
    else if (bias)
      for (int64_t j = 0; j < pn; j++) yr[j] += b;
    if (relu)
      for (int64_t j = 0; j < pn; j++) yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
  }
}

static size_t conv_thread_floats(const conv_plan *c)
{
  size_t col = c->direct ? 0 : round16((size_t)(c->cc * c->kvol * c->pt));
  size_t ws = use_own_gemm() ? round16(t3d_cpu_sgemm_own_ws_floats((int)c->pt)) : 0;
  return col + ws + 16; /* never zero */
}

static int conv_threads_used(const conv_plan *c, int threads)
{
  int64_t items = c->N * ceil_div(c->P, c->pt) * ceil_div(c->Co, c->mb);
  return (int)min64(threads, items);
}

size_t t3d_cpu_conv3d_scratch_bytes(const t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                    const t3d_conv3d_params *p, int threads)
{
  conv_plan c;
  threads = threads < 1 ? 1 : threads;
  conv_plan_make(&c, y, x, w, p, threads);
  return (size_t)conv_threads_used(&c, threads) * conv_thread_floats(&c) * sizeof(float);
}

t3d_status t3d_cpu_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  assert(x->ndim == 5 && w->ndim == 5 && y->ndim == 5 && x->dtype == T3D_F32);
  assert(w->shape[1] == x->shape[1] && y->shape[1] == w->shape[0] && y->shape[0] == x->shape[0]);
  assert(!residual || t3d_tensor_same_shape(residual, y));
  assert(!bias || t3d_tensor_numel(bias) == w->shape[0]);
  int threads = clamp_threads(be);
  conv_plan c;
  conv_plan_make(&c, y, x, w, p, threads);
  if (c.P == 0 || c.Co == 0 || c.N == 0) return T3D_OK;
  if (c.K == 0) { /* no input channels: y is the epilogue of zeros */
    memset(y->data, 0, t3d_tensor_nbytes(y));
    for (int64_t n = 0; n < c.N; n++)
      epilogue((float *)y->data + n * c.Co * c.P, residual ? (const float *)residual->data + n * c.Co * c.P : NULL,
               bias ? bias->data : NULL, c.Co, c.P, c.P, p->relu);
    return T3D_OK;
  }

  const int64_t ptiles = ceil_div(c.P, c.pt), mblocks = ceil_div(c.Co, c.mb);
  const int64_t items = c.N * ptiles * mblocks;
  const int nthr = conv_threads_used(&c, threads);
  const size_t per_thread = conv_thread_floats(&c);
  float *scratch = t3d_aligned_alloc((size_t)nthr * per_thread * sizeof(float));
  if (!scratch)
    return t3d_error(T3D_ERR_NOMEM, "conv3d: cannot allocate %zu bytes of column tiles",
                     (size_t)nthr * per_thread * sizeof(float));

  const float *xd = x->data, *wd = w->data;
  const float *bd = bias ? bias->data : NULL, *rd = residual ? residual->data : NULL;
  float *yd = y->data;
  blas_threads_guard guard = blas_threads_single();

#pragma omp parallel num_threads(nthr)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float *mine = scratch + (size_t)tid * per_thread;
    float *col = mine;
    float *ws = mine + (c.direct ? 0 : round16((size_t)(c.cc * c.kvol * c.pt)));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
      int64_t mbi = it % mblocks, pti = (it / mblocks) % ptiles, n = it / (mblocks * ptiles);
      int64_t m0 = mbi * c.mb, mn = min64(c.mb, c.Co - m0);
      int64_t p0 = pti * c.pt, pn = min64(c.pt, c.P - p0);
      const float *xn = xd + n * c.Ci * c.D * c.H * c.W;
      float *yt = yd + (n * c.Co + m0) * c.P + p0;
      if (c.direct) {
        gemm(false, (int)mn, (int)pn, (int)c.Ci, wd + m0 * c.K, (int)c.K, xn + p0, (int)c.P, 0.0f, yt, (int)c.P, ws);
      } else {
        for (int64_t c0 = 0; c0 < c.Ci; c0 += c.cc) {
          int64_t cn = min64(c.cc, c.Ci - c0);
          im2col_tile(&c, xn, c0, cn, p0, pn, col);
          gemm(false, (int)mn, (int)pn, (int)(cn * c.kvol), wd + m0 * c.K + c0 * c.kvol, (int)c.K, col, (int)pn,
               c0 == 0 ? 0.0f : 1.0f, yt, (int)c.P, ws);
        }
      }
      epilogue(yt, rd ? rd + (n * c.Co + m0) * c.P + p0 : NULL, bd ? bd + m0 : NULL, mn, pn, c.P, p->relu);
    }
  }

  blas_threads_restore(guard);
  t3d_aligned_free(scratch);
  return T3D_OK;
}

/* ---- transposed convolution ----------------------------------------------------------- */

/* Adds the column tile (rows: output channels [co0, co0+cn) x taps; columns: input positions
 * [p0, p0+pn)) into yn: y[co, id*sd-pd+kd, ih*sh-ph+kh, iw*sw-pw+kw] += col. */
static void col2im_tile(const float *col, int64_t cn, int64_t p0, int64_t pn, float *yc0, int64_t D, int64_t H,
                        int64_t W, int64_t Do, int64_t Ho, int64_t Wo, int64_t KD, int64_t KH, int64_t KW,
                        const int64_t s[3], const int64_t pad[3])
{
  const int64_t OHW = Ho * Wo;
  for (int64_t co = 0; co < cn; co++) {
    float *yc = yc0 + co * Do * OHW;
    for (int64_t kd = 0; kd < KD; kd++)
      for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++) {
          const float *src = col;
          col += pn;
          /* valid iw: 0 <= iw*sw - pw + kw < Wo */
          int64_t lo_num = pad[2] - kw;
          int64_t iw_lo = lo_num <= 0 ? 0 : ceil_div(lo_num, s[2]);
          int64_t iw_hi = Wo - 1 + pad[2] - kw < 0 ? 0 : (Wo - 1 + pad[2] - kw) / s[2] + 1;
          iw_hi = min64(iw_hi, W);
          int64_t p = p0, pend = p0 + pn;
          int64_t iw = p % W, t = p / W, ih = t % H, id = t / H;
          while (p < pend) {
            int64_t seg = min64(W - iw, pend - p);
            int64_t od = id * s[0] - pad[0] + kd, oh = ih * s[1] - pad[1] + kh;
            if (od >= 0 && od < Do && oh >= 0 && oh < Ho) {
              float *dst = yc + od * OHW + oh * Wo - pad[2] + kw; /* dst[iw*sw] */
              int64_t a = max64(iw, iw_lo), b = min64(iw + seg, iw_hi);
              const float *sr = src - iw;
              if (s[2] == 1)
                for (int64_t i = a; i < b; i++) dst[i] += sr[i];
              else if (s[2] == 2)
                for (int64_t i = a; i < b; i++) dst[2 * i] += sr[i];
              else
                for (int64_t i = a; i < b; i++) dst[i * s[2]] += sr[i];
            }
            src += seg;
            p += seg;
            iw = 0;
            if (++ih == H) ih = 0, id++;
          }
        }
  }
}

t3d_status t3d_cpu_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                    const t3d_tensor *bias, const t3d_conv3d_transpose_params *p)
{
  assert(x->ndim == 5 && w->ndim == 5 && y->ndim == 5 && x->dtype == T3D_F32);
  assert(w->shape[0] == x->shape[1] && y->shape[1] == w->shape[1] && y->shape[0] == x->shape[0]);
  assert(!bias || t3d_tensor_numel(bias) == w->shape[1]);
  const int64_t N = x->shape[0], Ci = x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Co = w->shape[1], KD = w->shape[2], KH = w->shape[3], KW = w->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  const int64_t kvol = KD * KH * KW, Pin = D * H * W, Pout = Do * Ho * Wo;
  const int64_t s[3] = {p->stride[0], p->stride[1], p->stride[2]};
  const int64_t pad[3] = {p->pad[0], p->pad[1], p->pad[2]};
  const float *xd = x->data, *wd = w->data, *bd = bias ? bias->data : NULL;
  float *yd = y->data;
  int threads = clamp_threads(be);
  if (N == 0 || Co == 0 || Pout == 0) return T3D_OK;

  /* Output channels are split into blocks so threads never add into the same outputs. */
  int64_t want = threads > 1 ? 4 * (int64_t)threads : 1;
  int64_t nb = min64(Co, ceil_div(want, N));
  int64_t cb = ceil_div(Co, nb);
  nb = ceil_div(Co, cb);
  int64_t pt = max64(16, col_budget / (cb * kvol));
  pt = min64(pt, max64(Pin, 1));
  const int64_t items = N * nb;
  const int nthr = (int)min64(threads, items);
  const size_t col_floats = round16((size_t)(cb * kvol * pt));
  const size_t per_thread = col_floats + (use_own_gemm() ? round16(t3d_cpu_sgemm_own_ws_floats((int)pt)) : 0);
  float *scratch = t3d_aligned_alloc((size_t)nthr * per_thread * sizeof(float));
  if (!scratch)
    return t3d_error(T3D_ERR_NOMEM, "conv3d_transpose: cannot allocate %zu bytes of column tiles",
                     (size_t)nthr * per_thread * sizeof(float));
  blas_threads_guard guard = blas_threads_single();

#pragma omp parallel num_threads(nthr)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float *col = scratch + (size_t)tid * per_thread;
    float *ws = col + col_floats;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
      int64_t n = it / nb, co0 = (it % nb) * cb, cn = min64(cb, Co - co0);
      float *yc = yd + (n * Co + co0) * Pout;
      for (int64_t co = 0; co < cn; co++) {
        float b = bd ? bd[co0 + co] : 0.0f;
        for (int64_t i = 0; i < Pout; i++) yc[co * Pout + i] = b;
      }
      if (Ci == 0) continue;
      const float *xn = xd + n * Ci * Pin;
      for (int64_t p0 = 0; p0 < Pin; p0 += pt) {
        int64_t pn = min64(pt, Pin - p0);
        /* col[(co,tap), p] = sum_ci w[ci, co, tap] x[ci, p] */
        gemm(true, (int)(cn * kvol), (int)pn, (int)Ci, wd + co0 * kvol, (int)(Co * kvol), xn + p0, (int)Pin, 0.0f,
             col, (int)pn, ws);
        col2im_tile(col, cn, p0, pn, yc, D, H, W, Do, Ho, Wo, KD, KH, KW, s, pad);
      }
    }
  }

  blas_threads_restore(guard);
  t3d_aligned_free(scratch);
  return T3D_OK;
}
