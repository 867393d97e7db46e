/* Fast CPU 3-D convolution and transposed convolution in the model's NCDHW layout: GEMMs over
 * tiles of output positions, with bias, residual and ReLU applied to each tile while it is
 * still in cache; threads own tiles. With AVX-512, our own register-tile kernel (B strips from
 * im2col rows, masked loads or gathers); otherwise im2col tiles through OpenBLAS sgemm (or
 * t3d_cpu_sgemm_blocked). Not the reference (conv_ref.c) and not a Winograd/FFT convolution. */
#include "config.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/cpu_simd.h"

/* Column tile budget per thread, in floats. 256 Ki floats = 1 MiB: half of one core's L2 on
 * the machines we measured on, leaving room for the GEMM's own packed panels. */
#define COL_BUDGET_FLOATS (256 * 1024)
/* Fewer output positions per tile than this makes the GEMM inefficient; split K instead. */
#define MIN_TILE_P 128
/* The direct 3x3x3 kernel (conv_direct.c) up to this many output channels: bench-conv, 1 thread,
 * 2-core AMD EPYC (Zen 3) shared with a training run: dec4.conv (17 -> 16) 2305 ms of CPU against
 * 3149 packed; dec3.conv (96 -> 32) 3816 against 2618 (the packed path keeps it). */
#define DIRECT_MAX_CO 16

static t3d_cpu_conv_path forced_path;
static int64_t col_budget = COL_BUDGET_FLOATS;
static int64_t stream_min = (int64_t)64 << 20; /* see stream_out */

int64_t t3d_cpu_conv_set_stream_min(int64_t bytes)
{
  int64_t old = stream_min;
  stream_min = bytes;
  return old;
}

bool t3d_cpu_conv_stream_out(int64_t bytes) { return bytes >= stream_min; }

size_t t3d_cpu_conv_set_col_budget(size_t floats)
{
  size_t old = (size_t)col_budget;
  col_budget = floats ? (int64_t)floats : COL_BUDGET_FLOATS;
  return old;
}

t3d_cpu_conv_path t3d_cpu_conv_force_path(t3d_cpu_conv_path path)
{
  t3d_cpu_conv_path old = forced_path;
  forced_path = path;
  return old;
}


static bool have_avx512(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

static bool have_avx2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

/* The packed path's kernels: 512 (AVX-512), 256 (AVX2+FMA) or 0 (im2col + GEMM). A forced
 * path the CPU lacks falls back as AUTO would. With AVX2 only, AUTO also asks avx2_packed_wins
 * per layer (use_packed). */
static int packed_isa(void)
{
  switch (forced_path) {
  case T3D_CPU_CONV_BLAS:
  case T3D_CPU_CONV_OWN_GEMM: return 0;
  case T3D_CPU_CONV_AVX2:
    if (have_avx2()) return 256;
    break;
  case T3D_CPU_CONV_AVX512:
  case T3D_CPU_CONV_DIRECT: /* layers the direct or stride-2 kernels do not take go as AUTO */
  case T3D_CPU_CONV_ROWS_S2:
  case T3D_CPU_CONV_WINOGRAD:
  case T3D_CPU_CONV_WINOGRAD4:
  case T3D_CPU_CONV_AUTO: break;
  }
  if (have_avx512()) return 512;
  return have_avx2() ? 256 : 0;
}

const char *t3d_backend_cpu_kernels(void)
{
  static char buf[320];
  const char *isa = "generic x86-64";
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) isa = "avx512f";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = "avx2+fma";
  else if (__builtin_cpu_supports("avx")) isa = "avx";
#endif
  const char *gemm = t3d_cpu_gemm_desc();
  int pk = packed_isa();
  if (pk == 512 || (pk == 256 && forced_path == T3D_CPU_CONV_AVX2))
    snprintf(buf, sizeof buf, "%s: t3d %spacked conv kernels (%s); GEMMs: %s", isa,
             pk == 512 && have_avx2()
                 ? (t3d_cpu_wino_avx512() ? "Winograd F(4,3) and F(2,3) 3x3x3 (avx512f GEMM and transforms), else "
                                              : "Winograd F(2,3) 3x3x3 (avx512f GEMM and transforms), else ")
                 : "",
             pk == 512 ? "avx512f" : "avx2+fma", gemm);
  else if (pk == 256)
    snprintf(buf, sizeof buf, "%s: t3d Winograd F(2,3) 3x3x3 (avx2+fma), implicit-GEMM (avx2+fma) for other "
             "same-size convolutions, direct 3x3x3 for <= %d output channels, else im2col + %s", isa, DIRECT_MAX_CO,
             gemm);
  else
    snprintf(buf, sizeof buf, "%s: im2col + %s", isa, gemm);
  return buf;
}

/* C[m,n] = op(A)[m,k] B[k,n] (+ C when beta is 1), single-threaded: callers own the threads.
 * OpenBLAS directly (no nested OpenMP region per tile), else t3d's own blocked GEMM. */
static void gemm(bool trans_a, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc)
{
#ifdef HAVE_OPENBLAS
  if (forced_path != T3D_CPU_CONV_OWN_GEMM && t3d_cpu_openblas_fits()) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b,
                ldb, beta, c, ldc);
    return;
  }
#endif
  t3d_cpu_sgemm_blocked(trans_a, false, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, 1);
}

/* OpenBLAS's own threads would fight ours: each of our threads runs a single-threaded GEMM
 * on its tile. The CPU backend already sets OpenBLAS to one thread when it is created; this
 * covers callers with a hand-made backend (tests, benchmarks). Restored on exit. */
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

/* The backend's cancel flag (kernels/backend.h): polled once per work item. */
static bool cancelled(const volatile int *cancel) { return cancel && *cancel; }

static t3d_status cancel_status(const char *op)
{
  return t3d_error(T3D_ERR_CANCELLED, "%s cancelled", op);
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
  bool rnd;                  /* bf16 operands (t3d_cpu_conv3d_bf16_fma): x rounded as it is packed */
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
  c->rnd = false;

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

/* AVX2 only: the layers where the packed path beat im2col + OpenBLAS in bench-conv on a
 * 2-core AMD EPYC (Zen 3) shared with other jobs, paths interleaved, process CPU ms: the "same"
 * stride-1 convolutions (l1.conv2 at 1 thread 452/514 vs 692/570 ms, l3.conv2 114/104 vs
 * 127/118). OpenBLAS kept the 1x1 convolutions (30-60% less CPU than our 4x24 tiles; again
 * with the row-pointer tiles: l1.conv1 91 vs 58 ms, l2.conv1 35 vs 25) and the strided ones
 * (the wide stride-2 stem goes to conv3d_rows_s2 instead). */
static bool avx2_packed_wins(const conv_plan *c)
{
  return c->kvol > 1 && c->sd == 1 && c->sh == 1 && c->sw == 1 && c->Do == c->D && c->Ho == c->H &&
         c->Wo == c->W;
}

/* AUTO's choice of the Winograd kernel among the layers it fits (see use_wino): from bench-conv,
 * one thread, CPU ms, packed or direct path -> Winograd, on a 2-core AMD EPYC (Zen 3, AVX2):
 * l1.conv2 510 -> 208, l2.conv2 251 -> 127, dec1 1434 -> 936, dec2 2892 -> 2197, dec3 3876 ->
 * 1536, dec4 (17 -> 16 channels) 3317 -> 1863; at 10x14x14 it was even (l3.conv2 131 -> 115,
 * dec0 652 -> 594) and at 5x7x7 three times slower (l4.conv2 63 -> 202): there the per-call
 * weight transform (64 x Ci x Co) and its streaming per item outweigh the GEMM it saves. So:
 * volumes of at least 8192 outputs, and 8 channels either side. (AVX-512 CPUs take it too: it
 * saves 3.4x the multiplications, more than the 2x of their wider vectors.) With the AVX-512 GEMM
 * and the weights transformed a group of 8 output channels at a time (contiguous stores), on an
 * AVX-512 Xeon, bench-conv, 2 threads, bound: l3.conv2 (256 -> 256 at 10x14x14) 24-27 -> 17-18 ms;
 * the decoder's 1280 -> 256 at 10x14x14 even (122-151 against 128: a run of 32 tiles' transformed
 * inputs, 64 x Ci x 32 floats, outgrows the L2 cache past 256 input channels) and 512 -> 512 at
 * 5x7x7 2.5x slower (43 against 17: its 64 MiB of transformed weights). So on AVX-512 also from
 * WINO_MIN_P512 outputs with at most WINO_MAX_CI512 input channels. */
#define WINO_MIN_P512 1536
#define WINO_MAX_CI512 256
static bool wino_wins(const conv_plan *c)
{
  if (c->Ci < 8 || c->Co < 8) return false;
  return c->P >= 8192 || (c->P >= WINO_MIN_P512 && c->Ci <= WINO_MAX_CI512 && t3d_cpu_wino_avx512());
}

/* 3x3x3, stride 1, padding 1, output the input's size, on an AVX2 + FMA CPU: what the direct
 * (conv_direct.c) and Winograd (conv_wino.c) kernels take. */
static bool avx2_same3(const conv_plan *c)
{
  return c->KD == 3 && c->KH == 3 && c->KW == 3 && c->sd == 1 && c->sh == 1 && c->sw == 1 && c->pd == 1 &&
         c->ph == 1 && c->pw == 1 && c->Do == c->D && c->Ho == c->H && c->Wo == c->W && have_avx2();
}

/* The direct kernel (conv_direct.c) for 3x3x3 stride-1 padding-1 convolutions with few output
 * channels (DIRECT_MAX_CO, from bench-conv). */
static bool use_direct(const conv_plan *c)
{
  if (!avx2_same3(c) || c->W >= ((int64_t)1 << 30)) return false;
  if (forced_path == T3D_CPU_CONV_DIRECT) return true;
  return forced_path == T3D_CPU_CONV_AUTO && c->Co <= DIRECT_MAX_CO;
}

/* Winograd F(2x2x2, 3x3x3) (conv_wino.c) for 3x3x3 stride-1 padding-1 convolutions. */
static bool use_wino(const conv_plan *c)
{
  if (!avx2_same3(c)) return false;
  if (forced_path == T3D_CPU_CONV_WINOGRAD) return true;
  return forced_path == T3D_CPU_CONV_AUTO && wino_wins(c);
}

/* F(4x4x4, 3x3x3) (conv_wino.c) on AVX-512: AUTO takes it where it beat F(2,3) by bench-conv
 * (2 threads, bound, AVX-512 Xeon, F(2,3) -> F(4,3) ms): l1.conv2 (64 -> 64 at 40x56x56) 48.2 ->
 * 34.3, l2.conv2 (128 -> 128 at 20x28x28) 29.2 -> 21.1, the decoder's 320 -> 64 at 40x56x56
 * 306 -> 196, 96 -> 32 at 80x112x112 359 -> 298, 17 -> 16 at 160x224x224 334 -> 262. It lost
 * where its 216 x Ci x Co transformed weights, made per call and read once per run of tiles, are
 * large against the work: 640 -> 128 at 20x28x28 (70 MiB of them) 124 -> 136, 256 -> 256 at
 * 10x14x14 (48 tiles) 16 -> 38, 1280 -> 256 and 512 -> 512 worse still. So: at least 8192
 * outputs, 8 channels either side and Ci x Co at most WINO4_MAX_CICO (28 MiB of weights). */
#define WINO4_MAX_CICO (128 * 256)
static bool wino4_wins(const conv_plan *c)
{
  return c->P >= 8192 && c->Ci >= 8 && c->Co >= 8 && c->Ci * c->Co <= WINO4_MAX_CICO;
}

static bool use_wino4(const conv_plan *c)
{
  if (!avx2_same3(c) || !t3d_cpu_wino_avx512()) return false;
  if (forced_path == T3D_CPU_CONV_WINOGRAD4) return true;
  return forced_path == T3D_CPU_CONV_AUTO && wino4_wins(c);
}

static bool use_packed(const conv_plan *c)
{
  int pk = packed_isa();
  return pk == 512 || (pk == 256 && (forced_path == T3D_CPU_CONV_AVX2 || avx2_packed_wins(c)));
}

/* dst[i] = src[2*i] for i < n: the stride-2 im2col rows of conv1 and the downsampling convs.
 * With AVX-512, 16 outputs are picked from two loads by one permute; the second load is
 * masked so nothing past src[2*(n-1)] is read. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static void copy_stride2_avx512(float *dst, const float *src, int64_t n)
{
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 lo = _mm512_loadu_ps(src + 2 * i), hi = _mm512_maskz_loadu_ps(0x7fff, src + 2 * i + 16);
    _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(lo, even, hi));
  }
  for (; i < n; i++) dst[i] = src[2 * i];
}

/* The same with AVX2: 8 outputs from two loads by a shuffle and a lane permute; the second
 * load reads src[2i+8 .. 2i+15], so the vector loop stops where src[2i+15] would pass
 * src[2*(n-1)]. */
__attribute__((target("avx2"))) static void copy_stride2_avx2(float *dst, const float *src, int64_t n)
{
  int64_t i = 0;
  for (; i + 9 <= n; i += 8) {
    __m256 lo = _mm256_loadu_ps(src + 2 * i), hi = _mm256_loadu_ps(src + 2 * i + 8);
    __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)); /* l0 l2 h0 h2 | l4 l6 h4 h6 */
    ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
    _mm256_storeu_ps(dst + i, ev);
  }
  for (; i < n; i++) dst[i] = src[2 * i];
}
#endif

static void copy_stride2(float *dst, const float *src, int64_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) {
    copy_stride2_avx512(dst, src, n);
    return;
  }
  if (__builtin_cpu_supports("avx2")) {
    copy_stride2_avx2(dst, src, n);
    return;
  }
#endif
  for (int64_t i = 0; i < n; i++) dst[i] = src[2 * i];
}

/* One im2col row: tap (kd, kh, kw) of input channel plane xc over output positions
 * [p0, p0+pn): dst[p-p0] = xc[od*sd-pd+kd, oh*sh-ph+kh, ow*sw-pw+kw], 0 in the padding. */
static void im2col_row(const conv_plan *c, const float *xc, int64_t kd, int64_t kh, int64_t kw, int64_t p0,
                       int64_t pn, float *dst)
{
  const int64_t HW = c->H * c->W, Wi = c->W;
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
        if (b > a) copy_stride2(dst + (a - ow), src + 2 * a, b - a);
        i = b > a ? b : i;
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

/* Columns for input channels [c0, c0+cn) and output positions [p0, p0+pn) of image xn:
 * col[((ci-c0)*kvol + tap) * pn + (p-p0)]. */
static void im2col_tile(const conv_plan *c, const float *xn, int64_t c0, int64_t cn, int64_t p0, int64_t pn,
                        float *col)
{
  for (int64_t ci = c0; ci < c0 + cn; ci++) {
    const float *xc = xn + ci * c->D * c->H * c->W;
    for (int64_t kd = 0; kd < c->KD; kd++)
      for (int64_t kh = 0; kh < c->KH; kh++)
        for (int64_t kw = 0; kw < c->KW; kw++, col += pn) im2col_row(c, xc, kd, kh, kw, p0, pn, col);
  }
}

/* ReLU over y tile rows [0, mn), columns [0, pn), row stride ld: the GEMM paths' epilogue (bias
 * and residual are already in C, see prefill). As plain loops GCC -O2 left the old epilogue scalar
 * (13 % of the encoder's time in a profile); omp simd + SIMD clones vectorise it. */
T3D_SIMD_CLONES
static void relu_rows(float *yt, int64_t mn, int64_t pn, int64_t ld)
{
  for (int64_t m = 0; m < mn; m++) {
    float *yr = yt + m * ld;
#pragma omp simd
    for (int64_t j = 0; j < pn; j++) yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
  }
}

/* y tile rows [0, mn), columns [0, pn), row stride ld, set to bias + residual (either may be
 * NULL, not both): the GEMM paths then add the product to it with beta 1, so OpenBLAS
 * skips its own pass that zeroes C for beta 0 (3 % of the encoder's time in a profile), and the
 * epilogue is the ReLU alone (relu_rows). */
T3D_SIMD_CLONES
static void prefill(float *yt, const float *rt, const float *bias, int64_t mn, int64_t pn, int64_t ld)
{
  for (int64_t m = 0; m < mn; m++) {
    float *restrict yr = yt + m * ld;
    const float *restrict rr = rt ? rt + m * ld : NULL;
    const float b = bias ? bias[m] : 0.0f;
    if (rr) {
#pragma omp simd
      for (int64_t j = 0; j < pn; j++) yr[j] = b + rr[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < pn; j++) yr[j] = b;
    }
  }
}

/* ---- AVX-512 packed path ---------------------------------------------------------------
 * GEMM y[Co, P] = W[Co, K] col[K, P] with our own blocking, so nothing is copied twice:
 * the weights are read in place (8 rows = 8 sequential streams); the im2col rows of a K chunk
 * go straight into NR-column B strips (contiguous copies for wide output rows, gathers for
 * narrow ones, masked shifted loads for "same" stride-1 convs); an MR x NR register tile
 * accumulates a K chunk and, after the last chunk, adds bias and residual and applies ReLU as
 * it stores. A B strip (KC x NR) stays in L1 while a channel block's rows stream through it. */
#if defined(__x86_64__) && defined(__GNUC__)
#define T3D_CONV_PACKED 1
#include <immintrin.h>

#define PK_MR 8    /* output channels per register tile: 8 x 3 zmm accumulators */
#define PK_NR 48   /* output positions per register tile */
#define PK_KC 160  /* K rows per chunk: a KC x NR strip is 30 KiB, inside a 48 KiB L1 */
#ifndef PK_PT
#define PK_PT 384  /* output positions per work item */
#endif
#ifndef PK_MB /* (overridable with -D for tuning experiments) */
#define PK_MB 512  /* output channels per work item: a 512 x KC panel block is 320 KiB of L2 */
#endif
#ifndef PK_PT_MB
#define PK_PT_MB (64 * 1024)  /* pt x mb: a C tile of 256 KiB */
#endif
#ifndef PK_KC_SAME
#define PK_KC_SAME 192 /* K rows per chunk on the implicit path: a 36 KiB B strip (measured:
                          108..432 are within noise of each other) */
#endif

typedef struct {
  int64_t kc;   /* rows per K chunk (last chunk may be shorter) */
  int64_t pt;   /* positions per work item */
  int64_t mb;   /* channels per work item, multiple of PK_MR */
  int64_t mpad; /* Co rounded up to PK_MR */
  bool same;    /* stride 1 and output extent == input extent: B strips by pk_pack_b_same (AVX-512)
                   or row pointers by p2_rows_same (AVX2) */
  bool gather;  /* narrow output rows: B strips by pk_pack_b_gather instead of im2col rows */
  int64_t cc;   /* input channels per K chunk on the implicit path (the largest chunk) */
  int64_t nch;  /* K chunks on the implicit path: chunk q is channels [q*Ci/nch, (q+1)*Ci/nch) */
} pk_plan;

static void pk_plan_make(pk_plan *k, const conv_plan *c, int threads)
{
  /* test budgets below the default shrink every tile so small shapes cross all boundaries */
  bool small = col_budget < COL_BUDGET_FLOATS;
  int64_t kc_max = small ? 8 : PK_KC;
  int64_t nchunks = ceil_div(c->K, kc_max);
  k->kc = ceil_div(c->K, nchunks);
  k->mpad = ceil_div(c->Co, PK_MR) * PK_MR;
  k->mb = min64(k->mpad, PK_MB);
  k->same = c->kvol > 1 && c->sd == 1 && c->sh == 1 && c->sw == 1 && c->Do == c->D && c->Ho == c->H &&
            c->Wo == c->W;
  /* int32 lane offsets must reach every input element of a channel */
  k->gather = !k->same && !c->direct && c->Wo < 32 && c->D * c->H * c->W < ((int64_t)1 << 30) &&
              packed_isa() == 512; /* the AVX2 kernels take im2col rows there */
  /* Positions first: a tile of up to PK_PT (all of P in the deep layers, no ragged second
   * tile); then as many output channels as keep the C tile (mb x pt) within PK_PT_MB floats
   * of L2 across the K chunks. Then at least 4 items per thread for balance: halve channel
   * blocks first (each re-packs the same B strips, cheap next to its GEMM), then positions. */
  k->pt = min64(small ? PK_NR : PK_PT, c->P);
  k->mb = min64(k->mpad, min64(PK_MB, max64(64, PK_PT_MB / k->pt / PK_MR * PK_MR)));
  int64_t want = threads > 1 ? 4 * (int64_t)threads : 1;
  for (;;) {
    int64_t items = c->N * ceil_div(c->P, k->pt) * ceil_div(c->Co, k->mb);
    if (items >= want) break;
    if (k->mb > 64) k->mb = ceil_div(k->mb / 2, PK_MR) * PK_MR;
    else if (k->pt > PK_NR) k->pt = max64(PK_NR, k->pt / 2 / PK_NR * PK_NR);
    else break;
  }
  /* Even blocks: 512 channels in blocks of 168 would leave a block of 8, 1960 positions in
   * tiles of 384 a tile of 40; same counts, balanced sizes (whole strips, whole MR panels). */
  int64_t nmb = ceil_div(c->Co, k->mb), npt = ceil_div(c->P, k->pt);
  k->mb = min64(k->mb, ceil_div(ceil_div(c->Co, nmb), PK_MR) * PK_MR);
  if (!small) k->pt = min64(c->P, ceil_div(ceil_div(c->P, npt), PK_NR) * PK_NR);
  /* implicit path: K chunks of whole channels, about PK_KC_SAME rows */
  /* balanced: 64 channels at 7 per chunk would leave a last chunk of 1 (a whole C-tile pass
   * for 27 rows); ceil(64 / ceil(64/7)) = 7 still does, so sizes come from the chunk count */
  k->cc = small ? 1 : max64(1, PK_KC_SAME / c->kvol);
  k->nch = ceil_div(c->Ci, k->cc);
  k->cc = ceil_div(c->Ci, k->nch); /* the largest chunk, for the B strip buffer */
}

/* One B-strip row of PK_NR floats from n <= PK_NR of src, each rounded to bf16 precision (the avx512f
 * bf16 ISA's operands), zeros past n. */
__attribute__((target("avx512f"))) static void round_strip_row(float *dst, const float *src, int64_t n)
{
  for (int j = 0; j < PK_NR; j += 16) {
    int64_t m = n - j;
    __mmask16 k = m >= 16 ? (__mmask16)0xffff : m <= 0 ? (__mmask16)0 : (__mmask16)((1u << m) - 1);
    _mm512_storeu_ps(dst + j, t3d_bf16_round_ps(_mm512_maskz_loadu_ps(k, src + j)));
  }
}

/* B strips for K rows [k0, k0+kc) and positions [p0, p0+pn): bp[s*kc*NR + k*NR + j] =
 * col(k0+k, p0 + s*NR + j), zero past pn. line: pn floats of scratch for one im2col row. */
static void pk_pack_b(const conv_plan *c, const float *xn, int64_t k0, int64_t kc, int64_t p0, int64_t pn,
                      float *line, float *bp)
{
  const int64_t strips = ceil_div(pn, PK_NR), last = pn - (strips - 1) * PK_NR, KHW = c->KH * c->KW;
  for (int64_t k = 0; k < kc; k++) {
    int64_t r = k0 + k;
    const float *src;
    if (c->direct) {
      src = xn + r * c->P + p0;
    } else {
      int64_t ci = r / c->kvol, tap = r % c->kvol;
      im2col_row(c, xn + ci * c->D * c->H * c->W, tap / KHW, tap / c->KW % c->KH, tap % c->KW, p0, pn, line);
      src = line;
    }
    float *dst = bp + k * PK_NR;
    if (c->rnd) { /* bf16 operands: every strip row rounded as it is copied, zeros past pn */
      for (int64_t s = 0; s < strips; s++)
        round_strip_row(dst + s * kc * PK_NR, src + s * PK_NR, s + 1 < strips ? PK_NR : last);
      continue;
    }
    for (int64_t s = 0; s < strips - 1; s++) memcpy(dst + s * kc * PK_NR, src + s * PK_NR, PK_NR * sizeof(float));
    float *dl = dst + (strips - 1) * kc * PK_NR;
    memcpy(dl, src + (strips - 1) * PK_NR, (size_t)last * sizeof(float));
    memset(dl + last, 0, (size_t)(PK_NR - last) * sizeof(float));
  }
}

typedef struct {
  const float *bias; /* bias of the tile's first channel, or NULL */
  const float *res;  /* residual at the tile's first element (row stride ldc), or NULL */
  bool relu;
  bool stream; /* whole 16-float lines go out with non-temporal stores (AVX-512 kernels) */
} pk_epilogue;

/* Outputs this large leave the caches anyway before the next layer reads them: their final
 * stores skip the read-for-ownership a cached store costs. Measured, bench-conv, 2 threads, on
 * an AVX-512 Xeon: l1.conv3+ds (128 MB out) 27 -> 20-22 ms, l2.b0.conv1 (64 MB) 48-54 -> 47;
 * at 32 MB (l1.conv1) it was slower, hence the bound. */
static bool stream_out(const conv_plan *c)
{
  return t3d_cpu_conv_stream_out(c->N * c->Co * c->P * (int64_t)sizeof(float));
}

/* Register-tile micro-kernels: MR output channels x NV*16 positions. A is read straight from
 * the weights (row r of the panel at a + r*lda, rows past `rows` alias row 0 and are never
 * stored): its 8 rows are 8 sequential streams, so no per-call weight packing is needed. */
#define PK_DECL1(r) __m512 c##r##0 = _mm512_setzero_ps()
#define PK_DECL2(r) PK_DECL1(r), c##r##1 = c##r##0
#define PK_DECL3(r) PK_DECL2(r), c##r##2 = c##r##0
#define PK_LOAD1(ld) __m512 b0 = ld(bp)
#define PK_LOAD2(ld) PK_LOAD1(ld), b1 = ld(bp + 16)
#define PK_LOAD3(ld) PK_LOAD2(ld), b2 = ld(bp + 32)
#define PK_FMA1(r) __m512 a##r##_ = _mm512_set1_ps(a##r[k]); c##r##0 = _mm512_fmadd_ps(a##r##_, b0, c##r##0)
#define PK_FMA2(r) PK_FMA1(r); c##r##1 = _mm512_fmadd_ps(a##r##_, b1, c##r##1)
#define PK_FMA3(r) PK_FMA2(r); c##r##2 = _mm512_fmadd_ps(a##r##_, b2, c##r##2)
#define PK_SAVE1(r) acc[r][0] = c##r##0
#define PK_SAVE2(r) PK_SAVE1(r), acc[r][1] = c##r##1
#define PK_SAVE3(r) PK_SAVE2(r), acc[r][2] = c##r##2
#define PK_ROW(r) const float *a##r = a + (r < rows ? r : 0) * lda
#define PK_ALL(M) M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7)

/* c[rows x cols] (row stride ldc) = (accumulate ? c : 0) + A[rows x kc] x B-strip[kc x cols],
 * then the epilogue when epi is not NULL (last K chunk). */
__attribute__((target("avx512f"), always_inline)) static inline void pk_store(__m512 acc[PK_MR][3], int nv, float *c, int64_t ldc,
                                                        int rows, int cols, bool accumulate,
                                                        const pk_epilogue *epi)
{
  __mmask16 mask[3];
  for (int j = 0; j < 3; j++) {
    int n = cols - 16 * j;
    mask[j] = n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < PK_MR; r++) {
    if (r >= rows) break;
    float *cr = c + r * ldc;
    __m512 bias = epi && epi->bias ? _mm512_set1_ps(epi->bias[r]) : zero;
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++) {
      __m512 v = acc[r][j];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask[j], cr + 16 * j));
      if (epi) {
        v = _mm512_add_ps(v, bias);
        if (epi->res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask[j], epi->res + r * ldc + 16 * j));
        if (epi->relu) v = _mm512_max_ps(v, zero);
      }
      if (epi && epi->stream && mask[j] == 0xffff && ((uintptr_t)(cr + 16 * j) & 63) == 0)
        _mm512_stream_ps(cr + 16 * j, v);
      else
        _mm512_mask_storeu_ps(cr + 16 * j, mask[j], v);
    }
  }
}

/* The body of both AVX-512 kernel families: B row k at BROW (an expression of k), its NV vectors
 * loaded by LD (aligned from packed strips, unaligned from rows of x). */
#define PK_BODY(NV, BROW, LD)                                                                                \
  {                                                                                                          \
    PK_ALL(PK_ROW);                                                                                          \
    PK_ALL(PK_DECL##NV);                                                                                     \
    for (int64_t k = 0; k < kc; k++) {                                                                       \
      const float *bp = BROW;                                                                                \
      PK_LOAD##NV(LD);                                                                                       \
      PK_ALL(PK_FMA##NV);                                                                                    \
    }                                                                                                        \
    __m512 acc[PK_MR][3];                                                                                    \
    PK_ALL(PK_SAVE##NV);                                                                                     \
    pk_store(acc, NV, c, ldc, rows, cols, accumulate, epi);                                                  \
  }

#define PK_KERNEL(NV)                                                                                        \
  __attribute__((target("avx512f"))) static void pk_kernel##NV(int64_t kc, const float *a, int64_t lda,      \
                                                               const float *bs, float *c, int64_t ldc,       \
                                                               int rows, int cols, bool accumulate,          \
                                                               const pk_epilogue *epi)                       \
  PK_BODY(NV, bs + k * PK_NR, _mm512_load_ps)
PK_KERNEL(1)
PK_KERNEL(2)
PK_KERNEL(3)

/* AVX2 + FMA micro-kernels on the same 48-wide B strips: an 8 x 48 block is done as 4 x 24
 * register tiles (12 ymm accumulators, 3 B loads and 4 broadcasts per K step), each reading
 * half of the strip's row; masks for ragged columns come from lane-index compares. */
#define P2_DECL1(r) __m256 c##r##0 = _mm256_setzero_ps()
#define P2_DECL2(r) P2_DECL1(r), c##r##1 = c##r##0
#define P2_DECL3(r) P2_DECL2(r), c##r##2 = c##r##0
#define P2_LOAD1 __m256 b0 = _mm256_load_ps(bp)
#define P2_LOAD2 P2_LOAD1, b1 = _mm256_load_ps(bp + 8)
#define P2_LOAD3 P2_LOAD2, b2 = _mm256_load_ps(bp + 16)
#define P2_FMA1(r) __m256 a##r##_ = _mm256_broadcast_ss(a##r + k); c##r##0 = _mm256_fmadd_ps(a##r##_, b0, c##r##0)
#define P2_FMA2(r) P2_FMA1(r); c##r##1 = _mm256_fmadd_ps(a##r##_, b1, c##r##1)
#define P2_FMA3(r) P2_FMA2(r); c##r##2 = _mm256_fmadd_ps(a##r##_, b2, c##r##2)
#define P2_SAVE1(r) acc[r][0] = c##r##0
#define P2_SAVE2(r) P2_SAVE1(r), acc[r][1] = c##r##1
#define P2_SAVE3(r) P2_SAVE2(r), acc[r][2] = c##r##2
#define P2_ROW(r) const float *a##r = a + (r < rows ? r : 0) * lda
#define P2_ALL(M) M(0); M(1); M(2); M(3)

__attribute__((target("avx2,fma"), always_inline)) static inline void p2_store(__m256 acc[4][3], int nv, float *c,
                                                                              int64_t ldc, int rows, int cols,
                                                                              bool accumulate, const pk_epilogue *epi)
{
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i mask[3];
  for (int j = 0; j < 3; j++) mask[j] = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8 * j), lanes);
  const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
    if (r >= rows) break;
    float *cr = c + r * ldc;
    const float *rr = epi && epi->res ? epi->res + r * ldc : NULL;
    __m256 bias = epi && epi->bias ? _mm256_set1_ps(epi->bias[r]) : zero;
#pragma GCC unroll 3
    for (int j = 0; j < nv; j++) {
      __m256 v = acc[r][j];
      bool full = cols >= 8 * (j + 1);
      if (accumulate) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(cr + 8 * j) : _mm256_maskload_ps(cr + 8 * j, mask[j]));
      if (epi) {
        v = _mm256_add_ps(v, bias);
        if (rr) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(rr + 8 * j) : _mm256_maskload_ps(rr + 8 * j, mask[j]));
        if (epi->relu) v = _mm256_max_ps(v, zero);
      }
      if (full) _mm256_storeu_ps(cr + 8 * j, v);
      else _mm256_maskstore_ps(cr + 8 * j, mask[j], v);
    }
  }
}

#define P2_KERNEL(NV)                                                                                        \
  __attribute__((target("avx2,fma"))) static void p2_kernel##NV(int64_t kc, const float *a, int64_t lda,    \
                                                                const float *bp, float *c, int64_t ldc,      \
                                                                int rows, int cols, bool accumulate,         \
                                                                const pk_epilogue *epi)                      \
  {                                                                                                          \
    P2_ALL(P2_ROW);                                                                                          \
    P2_ALL(P2_DECL##NV);                                                                                     \
    for (int64_t k = 0; k < kc; k++, bp += PK_NR) {                                                          \
      P2_LOAD##NV;                                                                                           \
      P2_ALL(P2_FMA##NV);                                                                                    \
    }                                                                                                        \
    __m256 acc[4][3];                                                                                        \
    P2_ALL(P2_SAVE##NV);                                                                                     \
    p2_store(acc, NV, c, ldc, rows, cols, accumulate, epi);                                                  \
  }
P2_KERNEL(1)
P2_KERNEL(2)
P2_KERNEL(3)

/* One PK_MR x PK_NR block (rows x cols valid) of the packed path: AVX-512 kernels (8 x 48 in
 * one register tile) or, with isa 256, AVX2 4 x 24 tiles. */
static void pk_block(int isa, int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc,
                     int rows, int cols, bool accumulate, const pk_epilogue *epi)
{
  if (isa == 512) {
    if (cols > 32) pk_kernel3(kc, a, lda, bp, c, ldc, rows, cols, accumulate, epi);
    else if (cols > 16) pk_kernel2(kc, a, lda, bp, c, ldc, rows, cols, accumulate, epi);
    else pk_kernel1(kc, a, lda, bp, c, ldc, rows, cols, accumulate, epi);
    return;
  }
  for (int r0 = 0; r0 < rows; r0 += 4)
    for (int h = 0; h * 24 < cols; h++) {
      int rn = rows - r0 < 4 ? rows - r0 : 4, cn = cols - h * 24 < 24 ? cols - h * 24 : 24;
      pk_epilogue e2 = {0};
      if (epi) e2 = (pk_epilogue){epi->bias ? epi->bias + r0 : NULL, epi->res ? epi->res + r0 * ldc + h * 24 : NULL,
                                  epi->relu, false};
      const float *ar = a + r0 * lda, *bh = bp + h * 24;
      float *ch = c + r0 * ldc + h * 24;
      const pk_epilogue *ep = epi ? &e2 : NULL;
      if (cn > 16) p2_kernel3(kc, ar, lda, bh, ch, ldc, rn, cn, accumulate, ep);
      else if (cn > 8) p2_kernel2(kc, ar, lda, bh, ch, ldc, rn, cn, accumulate, ep);
      else p2_kernel1(kc, ar, lda, bh, ch, ldc, rn, cn, accumulate, ep);
    }
}

/* One 48-float B-strip row from its three vectors, rounded to bf16 first for bf16 operands
 * (conv_plan.rnd). */
__attribute__((target("avx512f"), always_inline)) static inline void store_strip_row(float *dst, __m512 v0, __m512 v1,
                                                                                    __m512 v2, bool rnd)
{
  if (rnd) {
    v0 = t3d_bf16_round_ps(v0);
    v1 = t3d_bf16_round_ps(v1);
    v2 = t3d_bf16_round_ps(v2);
  }
  _mm512_store_ps(dst, v0);
  _mm512_store_ps(dst + 16, v1);
  _mm512_store_ps(dst + 32, v2);
}

/* "Same" stride-1 convolutions (3x3x3 pad 1 and the like): output position p reads input
 * position p + toff[tap] of the flattened volume, so a B strip row is one unaligned load from
 * x, masked where the tap falls into the padding or past the strip: no im2col bookkeeping.
 * Row (ci, tap) of the strip is the load at xb + ci*ci_stride + toff[tap]. */
__attribute__((target("avx512f"))) static void pk_pack_b_same(int64_t nci, int64_t kvol, const float *xb,
                                                              int64_t ci_stride, const int64_t *toff,
                                                              const __mmask16 *tmask, float *bp, bool rnd)
{
  for (int64_t ci = 0; ci < nci; ci++, xb += ci_stride)
    for (int64_t t = 0; t < kvol; t++, bp += PK_NR) {
      const float *xt = xb + toff[t];
      const __mmask16 *mk = tmask + 3 * t;
      store_strip_row(bp, _mm512_maskz_loadu_ps(mk[0], xt), _mm512_maskz_loadu_ps(mk[1], xt + 16),
                      _mm512_maskz_loadu_ps(mk[2], xt + 32), rnd);
    }
}

/* The AVX2 "same" path reads its K rows through a table of row pointers instead of a packed
 * strip: a row (input channel, tap) of a 24-column half strip is 24 consecutive floats of x
 * wherever all 24 lanes of that tap lie inside the volume, so the table points straight into x
 * there (most rows: in l1.conv2, 40x56x56, packing every row took 17 % of the layer's time) and
 * into a masked copy (zeros in the padding) only where some lane does not. bits: the strip's tap
 * masks (pk_same_masks), h: which half. pk: 24 floats of copy per masked row. */
__attribute__((target("avx2,fma"))) static void p2_rows_same(int64_t nci, int64_t kvol, const float *xb,
                                                            int64_t ci_stride, const int64_t *toff,
                                                            const __mmask16 *tmask, int h, float *pk,
                                                            const float **bt)
{
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int64_t ci = 0; ci < nci; ci++, xb += ci_stride)
    for (int64_t t = 0; t < kvol; t++) {
      const __mmask16 *mk = tmask + 3 * t;
      const uint64_t all = (uint64_t)mk[0] | (uint64_t)mk[1] << 16 | (uint64_t)mk[2] << 32;
      const uint32_t hm = (uint32_t)(all >> (24 * h)) & 0xffffffu;
      const float *xt = xb + toff[t] + 24 * h;
      if (hm == 0xffffffu) {
        *bt++ = xt;
        continue;
      }
      for (int j = 0; j < 3; j++) {
        unsigned m = (hm >> (8 * j)) & 0xffu;
        __m256 v;
        if (m == 0xffu) v = _mm256_loadu_ps(xt + 8 * j);
        else if (m == 0) v = _mm256_setzero_ps();
        else {
          __m256i mm = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bit), bit);
          v = _mm256_maskload_ps(xt + 8 * j, mm);
        }
        _mm256_store_ps(pk + 8 * j, v);
      }
      *bt++ = pk;
      pk += 24;
    }
}

/* A 4 x 24 AVX2 tile over kc K rows given by row pointers (p2_rows_same); columns past cols are
 * computed from whatever the rows hold there and not stored. */
__attribute__((target("avx2,fma"))) static void p2_kernel_rows(int64_t kc, const float *a, int64_t lda,
                                                              const float *const *bt, float *c, int64_t ldc,
                                                              int rows, int cols, bool accumulate,
                                                              const pk_epilogue *epi)
{
  P2_ALL(P2_ROW);
  P2_ALL(P2_DECL3);
  for (int64_t k = 0; k < kc; k++) {
    const float *bp = bt[k];
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), b2 = _mm256_loadu_ps(bp + 16);
    P2_ALL(P2_FMA3);
  }
  __m256 acc[4][3];
  P2_ALL(P2_SAVE3);
  p2_store(acc, 3, c, ldc, rows, cols, accumulate, epi);
}

/* Tap offsets in the flattened input, and per strip [p0, p0+cols) and tap the lanes whose
 * input lies inside the volume: tmask[t*3 + j] bit l <-> position p0 + 16j + l. */
static void pk_same_offsets(const conv_plan *c, int64_t *toff)
{
  int64_t t = 0;
  for (int64_t kd = 0; kd < c->KD; kd++)
    for (int64_t kh = 0; kh < c->KH; kh++)
      for (int64_t kw = 0; kw < c->KW; kw++, t++)
        toff[t] = ((kd - c->pd) * c->H + (kh - c->ph)) * c->W + (kw - c->pw);
}

static void pk_same_masks(const conv_plan *c, int64_t p0, int cols, __mmask16 *tmask, int32_t *base)
{
  int64_t od[PK_NR], oh[PK_NR], ow[PK_NR];
  for (int l = 0; l < PK_NR; l++) {
    int64_t p = p0 + (l < cols ? l : 0);
    ow[l] = p % c->Wo, oh[l] = p / c->Wo % c->Ho, od[l] = p / (c->Wo * c->Ho);
    if (base) base[l] = (int32_t)((od[l] * c->sd * c->H + oh[l] * c->sh) * c->W + ow[l] * c->sw);
  }
  int64_t t = 0;
  for (int64_t kd = 0; kd < c->KD; kd++)
    for (int64_t kh = 0; kh < c->KH; kh++)
      for (int64_t kw = 0; kw < c->KW; kw++, t++) {
        uint64_t bits = 0;
        for (int l = 0; l < cols; l++) {
          int64_t id = od[l] * c->sd + kd - c->pd, ih = oh[l] * c->sh + kh - c->ph, iw = ow[l] * c->sw + kw - c->pw;
          if (id >= 0 && id < c->D && ih >= 0 && ih < c->H && iw >= 0 && iw < c->W) bits |= (uint64_t)1 << l;
        }
        for (int j = 0; j < 3; j++) tmask[3 * t + j] = (__mmask16)(bits >> (16 * j));
      }
}

/* B strips by gathering: for output rows narrower than a strip, im2col segments are a few
 * floats long and their bookkeeping dominates; a strip row is instead 3 masked gathers at
 * lane offsets base[l] + toff[tap] in the input channel. */
__attribute__((target("avx512f"))) static void pk_pack_b_gather(const conv_plan *c, const float *xn, int64_t k0,
                                                                int64_t kc, int64_t strips, const int64_t *toff,
                                                                const __mmask16 *masks, const int32_t *base,
                                                                float *bp, bool rnd)
{
  const int64_t DHW = c->D * c->H * c->W;
  for (int64_t s = 0; s < strips; s++) {
    const __mmask16 *ms = masks + s * c->kvol * 3;
    __m512i b0 = _mm512_loadu_si512(base + s * PK_NR), b1 = _mm512_loadu_si512(base + s * PK_NR + 16);
    __m512i b2 = _mm512_loadu_si512(base + s * PK_NR + 32);
    float *dst = bp + s * kc * PK_NR;
    for (int64_t k = 0; k < kc; k++, dst += PK_NR) {
      int64_t r = k0 + k, ci = r / c->kvol, t = r % c->kvol;
      const float *xc = xn + ci * DHW;
      __m512i o = _mm512_set1_epi32((int32_t)toff[t]);
      const __m512 z = _mm512_setzero_ps();
      store_strip_row(dst, _mm512_mask_i32gather_ps(z, ms[3 * t], _mm512_add_epi32(b0, o), xc, 4),
                      _mm512_mask_i32gather_ps(z, ms[3 * t + 1], _mm512_add_epi32(b1, o), xc, 4),
                      _mm512_mask_i32gather_ps(z, ms[3 * t + 2], _mm512_add_epi32(b2, o), xc, 4), rnd);
    }
  }
}

static size_t pk_thread_floats(const conv_plan *c, const pk_plan *k)
{
  /* the tap masks of every strip of a tile (implicit and gather paths) */
  const size_t strips = (size_t)ceil_div(k->pt, PK_NR);
  const size_t masks = round16(strips * (size_t)c->kvol * 3 * sizeof(__mmask16) / sizeof(float) + 1);
  if (k->same) return masks + strips * PK_NR * (size_t)(k->cc * c->kvol);
  /* im2col line or gather lane offsets, then the B strips, then the masks */
  return round16((size_t)max64(k->pt, (int64_t)strips * PK_NR)) + strips * PK_NR * (size_t)k->kc + masks;
}

/* The AVX-512 counterpart of p2_kernel_rows: 8 x 16 NV tiles (up to 24 zmm accumulators; per K
 * row NV unaligned loads of consecutive floats and 8 broadcasts for 8 NV FMAs); the rows must hold
 * 16 NV readable floats (columns past cols are computed and not stored). NV follows the columns
 * left, so a row's last, narrower tile does not pay for 48. */
#define PK_ROWS_KERNEL(NV)                                                                                   \
  __attribute__((target("avx512f"))) static void pk_kernel_rows##NV(int64_t kc, const float *a, int64_t lda, \
                                                                    const float *const *bt, float *c,        \
                                                                    int64_t ldc, int rows, int cols,         \
                                                                    bool accumulate, const pk_epilogue *epi) \
  PK_BODY(NV, bt[k], _mm512_loadu_ps)
PK_ROWS_KERNEL(1)
PK_ROWS_KERNEL(2)
PK_ROWS_KERNEL(3)

/* Rows [m0, m0 + mn) x columns [k0, k0 + kc) of bf16 weights (row stride ld) widened to fp32 into
 * dst (row stride kc): the A block of one item's K chunk on the avx512f bf16 ISA. */
static void widen_block(float *dst, const uint16_t *wb, int64_t ld, int64_t m0, int64_t mn, int64_t k0, int64_t kc)
{
  for (int64_t r = 0; r < mn; r++) {
    const uint16_t *src = wb + (m0 + r) * ld + k0;
    float *d = dst + r * kc;
#pragma omp simd
    for (int64_t j = 0; j < kc; j++) d[j] = t3d_bf16_widen(src[j]);
  }
}

/* wd: fp32 weights [Co][K]; or, with wd NULL, bf16 ones wb (row stride wld, the bf16 layout),
 * widened per item and K chunk into a per-thread block (the avx512f bf16 ISA: no fp32 copy of a
 * layer's weights, 28 MiB for the encoder's last 3x3x3). */
static t3d_status conv3d_packed(int threads, const conv_plan *c, float *yd, const float *xd, const float *wd,
                                const uint16_t *wb, int64_t wld, const float *bd, const float *rd, bool relu,
                                const volatile int *cancel)
{
  pk_plan k;
  pk_plan_make(&k, c, threads);
  const int isa = packed_isa();
  const bool stream = isa == 512 && stream_out(c);
  const int64_t ptiles = ceil_div(c->P, k.pt), mblocks = ceil_div(c->Co, k.mb);
  const int64_t items = c->N * ptiles * mblocks;
  const int nthr = (int)min64(threads, items);
  /* the widened A block: mb rows of the deepest K chunk */
  const size_t ablock = wd ? 0 : round16((size_t)(k.mb * (k.same ? k.cc * c->kvol : k.kc)));
  const size_t per_thread = pk_thread_floats(c, &k) + ablock, head = round16((size_t)c->kvol * 2);
  const size_t bytes = (head + (size_t)nthr * per_thread) * sizeof(float);
  float *scratch = t3d_cpu_scratch_alloc(bytes);
  if (!scratch) return t3d_error(T3D_ERR_NOMEM, "conv3d: cannot allocate %zu bytes of packed tiles", bytes);
  int64_t *toff = (int64_t *)scratch; /* head: tap offsets of the implicit path */
  if (k.same || k.gather) pk_same_offsets(c, toff);

#pragma omp parallel num_threads(nthr)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float *line = scratch + head + (size_t)tid * per_thread;
    float *bp = line + round16((size_t)max64(k.pt, ceil_div(k.pt, PK_NR) * PK_NR));
    float *ab = line + (per_thread - ablock); /* the widened A block (bf16 weights) */
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t it = 0; it < items; it++) {
      if (cancelled(cancel)) continue;
      int64_t mbi = it % mblocks, pti = (it / mblocks) % ptiles, n = it / (mblocks * ptiles);
      int64_t m0 = mbi * k.mb, mn = min64(k.mb, c->Co - m0);
      int64_t p0 = pti * k.pt, pn = min64(k.pt, c->P - p0);
      const float *xn = xd + n * c->Ci * c->D * c->H * c->W;
      if (k.same) {
        const int64_t DHW = c->D * c->H * c->W;
        const int64_t strips_same = ceil_div(k.pt, PK_NR);
        float *bsame = line;
        __mmask16 *masks = (__mmask16 *)(line + strips_same * PK_NR * k.cc * c->kvol);
        for (int64_t s = 0; s * PK_NR < pn; s++)
          pk_same_masks(c, p0 + s * PK_NR, (int)min64(PK_NR, pn - s * PK_NR), masks + s * c->kvol * 3, NULL);
        if (isa != 512) { /* AVX2: row pointers into x (p2_rows_same), no packed strip */
          const float **bt = (const float **)bsame;
          float *pkrows = bsame + round16((size_t)(2 * k.cc * c->kvol));
          for (int64_t q = 0; q < k.nch; q++) {
            int64_t ci0 = q * c->Ci / k.nch, cn = (q + 1) * c->Ci / k.nch - ci0, kc = cn * c->kvol;
            for (int64_t s = 0; s * PK_NR < pn && !cancelled(cancel); s++)
              for (int h = 0; h < 2; h++) {
                int cols = (int)min64(24, pn - s * PK_NR - 24 * h);
                if (cols <= 0) break;
                p2_rows_same(cn, c->kvol, xn + ci0 * DHW + p0 + s * PK_NR, DHW, toff, masks + s * c->kvol * 3, h,
                             pkrows, bt);
                for (int64_t m = m0; m < m0 + mn; m += 4) {
                  int64_t off = (n * c->Co + m) * c->P + p0 + s * PK_NR + 24 * h;
                  pk_epilogue epi = {bd ? bd + m : NULL, rd ? rd + off : NULL, relu, false};
                  p2_kernel_rows(kc, wd + m * c->K + ci0 * c->kvol, c->K, bt, yd + off, c->P,
                                 (int)min64(4, c->Co - m), cols, ci0 > 0, q + 1 == k.nch ? &epi : NULL);
                }
              }
          }
          continue;
        }
        for (int64_t q = 0; q < k.nch; q++) { /* AVX-512: packed B strips */
          int64_t ci0 = q * c->Ci / k.nch, cn = (q + 1) * c->Ci / k.nch - ci0, kc = cn * c->kvol;
          bool last = q + 1 == k.nch;
          if (!wd) widen_block(ab, wb, wld, m0, mn, ci0 * c->kvol, kc);
          for (int64_t s = 0; s * PK_NR < pn; s++)
            pk_pack_b_same(cn, c->kvol, xn + ci0 * DHW + p0 + s * PK_NR, DHW, toff, masks + s * c->kvol * 3,
                           bsame + s * kc * PK_NR, c->rnd);
          for (int64_t s = 0; s * PK_NR < pn; s++) {
            if (cancelled(cancel)) break; /* polled per strip: items can be long */
            int cols = (int)min64(PK_NR, pn - s * PK_NR);
            const float *b = bsame + s * kc * PK_NR;
            for (int64_t m = m0; m < m0 + mn; m += PK_MR) {
              int64_t off = (n * c->Co + m) * c->P + p0 + s * PK_NR;
              pk_epilogue epi = {bd ? bd + m : NULL, rd ? rd + off : NULL, relu, stream};
              const float *a = wd ? wd + m * c->K + ci0 * c->kvol : ab + (m - m0) * kc;
              int rows = (int)min64(PK_MR, c->Co - m);
              const pk_epilogue *e = last ? &epi : NULL;
              pk_block(isa, kc, a, wd ? c->K : kc, b, yd + off, c->P, rows, cols, ci0 > 0, e);
            }
          }
        }
        continue;
      }
      const int64_t strips = ceil_div(pn, PK_NR);
      __mmask16 *masks = (__mmask16 *)(bp + strips * PK_NR * k.kc);
      int32_t *base = (int32_t *)line;
      if (k.gather)
        for (int64_t s = 0; s < strips; s++)
          pk_same_masks(c, p0 + s * PK_NR, (int)min64(PK_NR, pn - s * PK_NR), masks + s * c->kvol * 3,
                        base + s * PK_NR);
      for (int64_t k0 = 0; k0 < c->K; k0 += k.kc) {
        int64_t kc = min64(k.kc, c->K - k0);
        bool last = k0 + kc == c->K;
        if (c->direct && isa == 512 && p0 + strips * PK_NR <= c->P && !c->rnd) {
          /* 1x1x1 stride 1: x's rows are the B rows; the kernels read them through pointers
           * instead of a packed copy (every strip whole: no read past a channel's row) */
          const float *bt[PK_KC];
          for (int64_t s = 0; s < strips; s++) {
            if (cancelled(cancel)) break;
            for (int64_t q = 0; q < kc; q++) bt[q] = xn + (k0 + q) * c->P + p0 + s * PK_NR;
            for (int64_t m = m0; m < m0 + mn; m += PK_MR) {
              int64_t off = (n * c->Co + m) * c->P + p0 + s * PK_NR;
              pk_epilogue epi = {bd ? bd + m : NULL, rd ? rd + off : NULL, relu, stream};
              pk_kernel_rows3(kc, wd + m * c->K + k0, c->K, bt, yd + off, c->P, (int)min64(PK_MR, c->Co - m),
                              PK_NR, k0 > 0, last ? &epi : NULL);
            }
          }
          continue;
        }
        if (k.gather) pk_pack_b_gather(c, xn, k0, kc, strips, toff, masks, base, bp, c->rnd);
        else pk_pack_b(c, xn, k0, kc, p0, pn, line, bp);
        if (!wd) widen_block(ab, wb, wld, m0, mn, k0, kc);
        for (int64_t s = 0; s * PK_NR < pn; s++) {
          if (cancelled(cancel)) break; /* polled per strip: items can be long */
          int cols = (int)min64(PK_NR, pn - s * PK_NR);
          for (int64_t m = m0; m < m0 + mn; m += PK_MR) {
            int64_t off = (n * c->Co + m) * c->P + p0 + s * PK_NR;
            pk_epilogue epi = {bd ? bd + m : NULL, rd ? rd + off : NULL, relu, stream};
            const float *a = wd ? wd + m * c->K + k0 : ab + (m - m0) * kc, *b = bp + s * kc * PK_NR;
            int rows = (int)min64(PK_MR, c->Co - m);
            const pk_epilogue *e = last ? &epi : NULL;
            pk_block(isa, kc, a, wd ? c->K : kc, b, yd + off, c->P, rows, cols, k0 > 0, e);
          }
        }
      }
    }
    _mm_sfence(); /* this thread's streamed stores, before the region's closing barrier */
  }
  t3d_cpu_scratch_free(scratch);
  return cancelled(cancel) ? cancel_status("conv3d") : T3D_OK;
}


/* ---- AVX2 width-stride-2 row-pointer path --------------------------------------------------
 * The stem (7x7x7, stride 2, 1 -> 64 channels, 112-wide output rows) took 17 % of the encoder's
 * CPU time through im2col + OpenBLAS (a 343-row column matrix written, then packed again). Here,
 * per output row, the KD x KH input rows it reads are split into their even and odd elements
 * (zero-padded copies), so tap kw of 24 consecutive outputs is 24 consecutive floats of one phase
 * row, and the 4 x 24 row-pointer tiles of the same-size path (p2_kernel_rows) run on them with
 * nothing else copied. Work item: one output row; input channels in chunks of ~S2_KC K rows. Only
 * for wide output rows (S2_MIN_WO): a 24-wide tile cannot span two output rows. With AVX-512 the
 * tiles are 8 x 48 (pk_kernel_rows): one thread, the stem at 160x224x224 took 723 ms on the
 * 4 x 24 AVX2 tiles (61 GFLOP/s) on an AVX-512 Xeon. */
#define S2_MIN_WO 64
#define S2_KC 192

typedef struct {
  int64_t cc, nch; /* input channels per chunk (the largest), chunks */
  int64_t off, lb; /* phase row j holds input element 2 * (j - off) + phase; floats per phase row */
} s2_plan;

/* Tile width of the stride-2 row path: 48 with the AVX-512 kernel, else 24. */
static int s2_tile(void) { return packed_isa() == 512 ? 48 : 24; }

static void s2_plan_make(s2_plan *s, const conv_plan *c)
{
  s->cc = max64(1, min64(c->Ci, S2_KC / c->kvol));
  s->nch = ceil_div(c->Ci, s->cc);
  s->cc = ceil_div(c->Ci, s->nch);
  s->off = (c->pw + 1) / 2; /* the lowest index a tap reads: -(pw + 1) / 2 */
  /* the highest: output Wo - 1 + 47 or 23 (a tile's last lane) + (KW - 1) / 2 */
  s->lb = (int64_t)round16((size_t)(s->off + c->Wo + s2_tile() + (c->KW - 1) / 2 + 1));
}

static size_t s2_thread_floats(const conv_plan *c, const s2_plan *s)
{
  const size_t rows = (size_t)(s->cc * c->KD * c->KH * 2 * s->lb);
  return rows + round16((size_t)(s->cc * c->kvol) * sizeof(float *) / sizeof(float) + 1);
}

static bool use_rows_s2(const conv_plan *c)
{
  bool fits = have_avx2() && c->sw == 2 && c->KW > 1 && c->W < ((int64_t)1 << 30);
  if (!fits) return false;
  if (forced_path == T3D_CPU_CONV_ROWS_S2) return true;
  return forced_path == T3D_CPU_CONV_AUTO && c->Wo >= S2_MIN_WO;
}

/* dst[j] = src[2 * (j - off) + phase] where that index lies in [0, W), else 0, for j < lb. */
static void s2_phase_row(float *dst, const float *src, int64_t W, int64_t off, int64_t lb, int phase)
{
  /* in range: j from off (element phase) to off + (W - phase + 1) / 2 (exclusive); lb > off */
  const int64_t j1 = min64(off + (W - phase + 1) / 2, lb);
  memset(dst, 0, (size_t)off * sizeof *dst);
  copy_stride2(dst + off, src + phase, j1 - off);
  memset(dst + j1, 0, (size_t)(lb - j1) * sizeof *dst);
}

static t3d_status conv3d_rows_s2(int threads, const conv_plan *c, float *yd, const float *xd, const float *wd,
                                 const float *bd, const float *rd, bool relu, const volatile int *cancel)
{
  s2_plan sp;
  s2_plan_make(&sp, c);
  const int tw = s2_tile();
  const bool stream = tw == 48 && stream_out(c); /* 48: the AVX-512 kernels */
  const int64_t items = c->N * c->Do * c->Ho, HW = c->H * c->W, KDH = c->KD * c->KH;
  const int nthr = (int)min64(threads, items);
  const size_t per_thread = s2_thread_floats(c, &sp);
  float *scratch = t3d_cpu_scratch_alloc((size_t)nthr * per_thread * sizeof(float));
  if (!scratch)
    return t3d_error(T3D_ERR_NOMEM, "conv3d: cannot allocate %zu bytes of phase rows",
                     (size_t)nthr * per_thread * sizeof(float));
#pragma omp parallel num_threads(nthr)
  {
    float *rows = scratch + (size_t)t3d_cpu_omp_thread() * per_thread;
    const float **bt = (const float **)(rows + sp.cc * KDH * 2 * sp.lb);
#pragma omp for schedule(dynamic, 4) nowait
    for (int64_t it = 0; it < items; it++) {
      if (cancelled(cancel)) continue;
      const int64_t n = it / (c->Do * c->Ho), od = it / c->Ho % c->Do, oh = it % c->Ho;
      const int64_t orow = (od * c->Ho + oh) * c->Wo;
      for (int64_t q = 0; q < sp.nch; q++) {
        const int64_t ci0 = q * c->Ci / sp.nch, cn = (q + 1) * c->Ci / sp.nch - ci0, kc = cn * c->kvol;
        for (int64_t ci = 0; ci < cn; ci++)
          for (int64_t kd = 0; kd < c->KD; kd++)
            for (int64_t kh = 0; kh < c->KH; kh++) {
              float *r = rows + ((ci * c->KD + kd) * c->KH + kh) * 2 * sp.lb;
              const int64_t id = od * c->sd - c->pd + kd, ih = oh * c->sh - c->ph + kh;
              if (id < 0 || id >= c->D || ih < 0 || ih >= c->H) {
                memset(r, 0, (size_t)(2 * sp.lb) * sizeof *r);
                continue;
              }
              const float *src = xd + ((n * c->Ci + ci0 + ci) * c->D + id) * HW + ih * c->W;
              s2_phase_row(r, src, c->W, sp.off, sp.lb, 0);
              s2_phase_row(r + sp.lb, src, c->W, sp.off, sp.lb, 1);
            }
        for (int64_t ow0 = 0, cw; ow0 < c->Wo; ow0 += cw) {
          /* column tiles of tw, except that 4 vectors left go as 2 + 2, not 3 + 1: the 8 x 16
             kernel is bound by its loads (9 a k for 8 FMAs), the 8 x 32 by its FMAs (the stem's
             112 columns: 48 + 32 + 32) */
          cw = tw == 48 && c->Wo - ow0 > 48 && c->Wo - ow0 <= 64 ? 32 : tw;
          const float **b = bt;
          for (int64_t ci = 0; ci < cn; ci++)
            for (int64_t kdh = 0; kdh < KDH; kdh++)
              for (int64_t kw = 0; kw < c->KW; kw++) {
                const int64_t ph = ((kw - c->pw) % 2 + 2) % 2;
                *b++ = rows + ((ci * KDH + kdh) * 2 + ph) * sp.lb + sp.off + ow0 + (kw - c->pw - ph) / 2;
              }
          const int cols = (int)min64(cw, c->Wo - ow0);
          for (int64_t m = 0; m < c->Co; m += tw == 48 ? PK_MR : 4) {
            const int64_t off = (n * c->Co + m) * c->P + orow + ow0;
            pk_epilogue epi = {bd ? bd + m : NULL, rd ? rd + off : NULL, relu, stream};
            if (tw == 48) {
              void (*kern)(int64_t, const float *, int64_t, const float *const *, float *, int64_t, int, int, bool,
                           const pk_epilogue *) = cols > 32 ? pk_kernel_rows3 : cols > 16 ? pk_kernel_rows2
                                                                                           : pk_kernel_rows1;
              kern(kc, wd + m * c->K + ci0 * c->kvol, c->K, bt, yd + off, c->P, (int)min64(PK_MR, c->Co - m), cols,
                   ci0 > 0, q + 1 == sp.nch ? &epi : NULL);
            } else
              p2_kernel_rows(kc, wd + m * c->K + ci0 * c->kvol, c->K, bt, yd + off, c->P, (int)min64(4, c->Co - m),
                             cols, ci0 > 0, q + 1 == sp.nch ? &epi : NULL);
          }
        }
      }
    }
    _mm_sfence(); /* this thread's streamed stores, before the region's closing barrier */
  }
  t3d_cpu_scratch_free(scratch);
  return cancelled(cancel) ? cancel_status("conv3d") : T3D_OK;
}

/* A strided 1x1x1 convolution without padding (the ResNet downsamples) is a 1x1x1 stride-1 one on
 * x subsampled: x[:, :, ::sd, ::sh, ::sw] copied once into scratch (stride-2 rows by
 * copy_stride2), then the direct path, which reads x's rows in place with whole-strip tiles,
 * instead of gathering three vectors per K row for narrow output rows. AUTO on AVX-512 only.
 * bench-conv, 2 threads, interleaved, gather path -> this: l2.ds (256 -> 512, 40x56x56) 24.6 ->
 * 20.7-22.6 ms, l3.ds 10.6 -> 9.4-9.5, l4.ds 4.6 -> 4.2. */
static bool use_subsampled(const conv_plan *c)
{
  return forced_path == T3D_CPU_CONV_AUTO && packed_isa() == 512 && c->kvol == 1 && !c->direct && c->pd == 0 &&
         c->ph == 0 && c->pw == 0;
}

static t3d_status conv3d_subsampled(int threads, const conv_plan *c, t3d_tensor *y, const t3d_tensor *x,
                                    const t3d_tensor *w, const t3d_tensor *bias, const t3d_tensor *residual,
                                    const t3d_conv3d_params *p, const volatile int *cancel)
{
  const size_t bytes = (size_t)(c->N * c->Ci * c->P) * sizeof(float);
  float *xs = t3d_cpu_scratch_alloc(bytes);
  if (!xs) return t3d_error(T3D_ERR_NOMEM, "conv3d: cannot allocate %zu bytes for the subsampled input", bytes);
  const float *xd = x->data;
  const int64_t rows = c->N * c->Ci * c->Do * c->Ho;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t oh = r % c->Ho, od = r / c->Ho % c->Do, nc = r / (c->Ho * c->Do);
    const float *src = xd + ((nc * c->D + od * c->sd) * c->H + oh * c->sh) * c->W;
    float *dst = xs + r * c->Wo;
    if (c->sw == 2) copy_stride2(dst, src, c->Wo);
    else
      for (int64_t j = 0; j < c->Wo; j++) dst[j] = src[j * c->sw];
  }
  t3d_tensor xv = t3d_tensor_view(T3D_F32, 5, (int64_t[]){c->N, c->Ci, c->Do, c->Ho, c->Wo}, xs);
  t3d_conv3d_params p1 = *p;
  for (int i = 0; i < 3; i++) p1.stride[i] = 1, p1.pad[i] = 0;
  conv_plan c1;
  conv_plan_make(&c1, y, &xv, w, &p1, threads);
  t3d_status st = conv3d_packed(threads, &c1, y->data, xs, w->data, NULL, 0, bias ? bias->data : NULL,
                                residual ? residual->data : NULL, p->relu, cancel);
  t3d_cpu_scratch_free(xs);
  return st;
}
#endif

static size_t conv_thread_floats(const conv_plan *c)
{
  return (c->direct ? 0 : round16((size_t)(c->cc * c->kvol * c->pt))) + 16; /* never zero */
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
#ifdef T3D_CONV_PACKED
  if (use_wino4(&c))
    return t3d_cpu_conv3d_wino4_scratch_floats(c.N, c.Ci, c.Co, c.D, c.H, c.W, threads) * sizeof(float);
  if (use_wino(&c))
    return t3d_cpu_conv3d_wino3_scratch_floats(c.N, c.Ci, c.Co, c.D, c.H, c.W, threads) * sizeof(float);
  if (use_rows_s2(&c)) {
    s2_plan sp;
    s2_plan_make(&sp, &c);
    return (size_t)min64(threads, c.N * c.Do * c.Ho) * s2_thread_floats(&c, &sp) * sizeof(float);
  }
  if (use_packed(&c)) {
    pk_plan k;
    pk_plan_make(&k, &c, threads);
    int64_t items = c.N * ceil_div(c.P, k.pt) * ceil_div(c.Co, k.mb);
    return (round16((size_t)c.kvol * 2) + (size_t)min64(threads, items) * pk_thread_floats(&c, &k)) * sizeof(float);
  }
#endif
  return (size_t)conv_threads_used(&c, threads) * conv_thread_floats(&c) * sizeof(float);
}

t3d_status t3d_cpu_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  assert(x->ndim == 5 && w->ndim == 5 && y->ndim == 5 && x->dtype == T3D_F32);
  assert(w->shape[1] == x->shape[1] && y->shape[1] == w->shape[0] && y->shape[0] == x->shape[0]);
  assert(!residual || t3d_tensor_same_shape(residual, y));
  assert(!bias || t3d_tensor_numel(bias) == w->shape[0]);
  /* t3d_op_conv3d admits no empty dimension: the plans divide by K, P and Co */
  assert(t3d_tensor_numel(x) > 0 && t3d_tensor_numel(w) > 0 && t3d_tensor_numel(y) > 0);
  int threads = clamp_threads(be);
  conv_plan c;
  conv_plan_make(&c, y, x, w, p, threads);

#ifdef T3D_CONV_PACKED /* x86-64: the AVX2 / AVX-512 kernels are built (each still asks the CPU) */
  if (use_wino4(&c))
    return t3d_cpu_conv3d_wino4(threads, c.N, c.Ci, c.Co, c.D, c.H, c.W, y->data, x->data, w->data,
                                bias ? bias->data : NULL, residual ? residual->data : NULL, p->relu, be->cancel);
  if (use_wino(&c))
    return t3d_cpu_conv3d_wino3(threads, c.N, c.Ci, c.Co, c.D, c.H, c.W, y->data, x->data, w->data,
                                bias ? bias->data : NULL, residual ? residual->data : NULL, p->relu, be->cancel);
  if (use_direct(&c))
    return t3d_cpu_conv3d_direct3(threads, c.N, c.Ci, c.Co, c.D, c.H, c.W, y->data, x->data, w->data,
                                  bias ? bias->data : NULL, residual ? residual->data : NULL, p->relu, be->cancel);
  if (use_rows_s2(&c))
    return conv3d_rows_s2(threads, &c, y->data, x->data, w->data, bias ? bias->data : NULL,
                          residual ? residual->data : NULL, p->relu, be->cancel);
  if (use_subsampled(&c))
    return conv3d_subsampled(threads, &c, y, x, w, bias, residual, p, be->cancel);
  if (use_packed(&c))
    return conv3d_packed(threads, &c, y->data, x->data, w->data, NULL, 0, bias ? bias->data : NULL,
                         residual ? residual->data : NULL, p->relu, be->cancel);
#endif
  const int64_t ptiles = ceil_div(c.P, c.pt), mblocks = ceil_div(c.Co, c.mb);
  const int64_t items = c.N * ptiles * mblocks;
  const int nthr = conv_threads_used(&c, threads);
  const size_t per_thread = conv_thread_floats(&c);
  float *scratch = t3d_cpu_scratch_alloc((size_t)nthr * per_thread * sizeof(float));
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
    float *col = scratch + (size_t)tid * per_thread;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
      if (cancelled(be->cancel)) continue;
      int64_t mbi = it % mblocks, pti = (it / mblocks) % ptiles, n = it / (mblocks * ptiles);
      int64_t m0 = mbi * c.mb, mn = min64(c.mb, c.Co - m0);
      int64_t p0 = pti * c.pt, pn = min64(c.pt, c.P - p0);
      const float *xn = xd + n * c.Ci * c.D * c.H * c.W;
      float *yt = yd + (n * c.Co + m0) * c.P + p0;
      const float *rt = rd ? rd + (n * c.Co + m0) * c.P + p0 : NULL, *bt = bd ? bd + m0 : NULL;
      const float beta0 = rt || bt ? 1.0f : 0.0f;
      if (rt || bt) prefill(yt, rt, bt, mn, pn, c.P);
      if (c.direct) {
        gemm(false, (int)mn, (int)pn, (int)c.Ci, wd + m0 * c.K, (int)c.K, xn + p0, (int)c.P, beta0, yt, (int)c.P);
      } else {
        for (int64_t c0 = 0; c0 < c.Ci; c0 += c.cc) {
          if (cancelled(be->cancel)) break; /* polled per strip: items can be long */
          int64_t cn = min64(c.cc, c.Ci - c0);
          im2col_tile(&c, xn, c0, cn, p0, pn, col);
          gemm(false, (int)mn, (int)pn, (int)(cn * c.kvol), wd + m0 * c.K + c0 * c.kvol, (int)c.K, col, (int)pn,
               c0 == 0 ? beta0 : 1.0f, yt, (int)c.P);
        }
      }
      if (p->relu) relu_rows(yt, mn, pn, c.P);
    }
  }

  blas_threads_restore(guard);
  t3d_cpu_scratch_free(scratch);
  return cancelled(be->cancel) ? cancel_status("conv3d") : T3D_OK;
}

/* ---- bf16 operands on the fp32 kernels (the avx512f bf16 ISA, bf16.h) ------------------------
 * The weights, bf16 in t3d_cpu_bf16_pack_weight's layout, are widened to fp32 (exact: a 16-bit
 * shift) a block per item and K chunk by the packed path, whole for the call by Winograd's weight
 * transform (which AUTO gives only layers of at most 640 x 128 x 27 weights); x is rounded to bf16
 * by whatever reads it: the Winograd input transforms, the packed path's strip packers (the 1x1
 * path copies its rows instead of reading x in place). Products of two bf16 values are exact in fp32, so this is the
 * convolution of the bf16 operands with fp32 summation, as on the native ISAs, by the same
 * algorithms as fp32 (Winograd's transforms of the rounded operands in fp32). The direct and
 * AVX2 kernels take no part: where the packed AVX-512 path is not available (a forced path, a
 * capped width) the caller's bf16 GEMM path runs instead. */
bool t3d_cpu_conv3d_bf16_fma(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                             const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p,
                             t3d_status *st)
{
#ifdef T3D_CONV_PACKED
  t3d_bf16_layout l;
  if (!t3d_bf16_layout_of(T3D_OP_CONV3D, w, &l) || packed_isa() != 512) return false;
  const int threads = clamp_threads(be);
  conv_plan c;
  conv_plan_make(&c, y, x, w, p, threads);
  c.rnd = true;
  const int wino = use_wino4(&c) ? 4 : use_wino(&c) && t3d_cpu_wino_avx512() ? 2 : 0;
  const float *bd = bias ? bias->data : NULL, *rd = residual ? residual->data : NULL;
  if (!wino) { /* the packed path widens each item's weight block itself */
    *st = conv3d_packed(threads, &c, y->data, x->data, NULL, w->data, l.kpad, bd, rd, p->relu, be->cancel);
    return true;
  }
  /* Winograd transforms whole weights per call: widened first (at most 8.8 MiB in t3d-r50, the
     decoder's 640 -> 128; AUTO sends larger ones to the packed path) */
  const size_t bytes = (size_t)(c.Co * c.K) * sizeof(float);
  float *w32 = t3d_aligned_alloc(bytes);
  if (!w32) {
    *st = t3d_error(T3D_ERR_NOMEM, "conv3d (bf16): cannot allocate %zu bytes of widened weights", bytes);
    return true;
  }
#pragma omp parallel for num_threads(t3d_cpu_threads_for(threads, c.Co * c.K)) schedule(static)
  for (int64_t co = 0; co < c.Co; co++) widen_block(w32 + co * c.K, w->data, l.kpad, co, 1, 0, c.K);
  *st = t3d_cpu_conv3d_wino_rounded(wino, threads, c.N, c.Ci, c.Co, c.D, c.H, c.W, y->data, x->data, w32, bd, rd,
                                    p->relu, be->cancel);
  t3d_aligned_free(w32);
  return true;
#else
  (void)be, (void)y, (void)x, (void)w, (void)bias, (void)residual, (void)p, (void)st;
  return false;
#endif
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

/* Kernel == stride and no padding (the decoder's 2x2x2 stride-2 upsampling): every input
 * position owns its own kD x kH x kW output block, so the GEMM's columns are written, not
 * added, straight into y with the bias; no initialisation pass, any tile order, no races. */
typedef struct {
  int64_t Ci, D, H, W, Co, KD, KH, KW, Do, Ho, Wo;
} convt_dims;

#if defined(__x86_64__) && defined(__GNUC__)
/* dst[2i + kw] = src_kw[i] + b for kw = 0, 1 and i < n */
__attribute__((target("avx512f"))) static void interleave2_bias_avx512(float *dst, const float *s0, const float *s1,
                                                                       int64_t n, float b)
{
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 vb = _mm512_set1_ps(b);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 a = _mm512_add_ps(_mm512_loadu_ps(s0 + i), vb), c = _mm512_add_ps(_mm512_loadu_ps(s1 + i), vb);
    _mm512_storeu_ps(dst + 2 * i, _mm512_permutex2var_ps(a, lo, c));
    _mm512_storeu_ps(dst + 2 * i + 16, _mm512_permutex2var_ps(a, hi, c));
  }
  for (; i < n; i++) dst[2 * i] = s0[i] + b, dst[2 * i + 1] = s1[i] + b;
}
#endif

static void scatter_disjoint_row(float *dst, const float *col, int64_t pn, int64_t KW, int64_t n, float b)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (KW == 2 && __builtin_cpu_supports("avx512f")) {
    interleave2_bias_avx512(dst, col, col + pn, n, b);
    return;
  }
#endif
  for (int64_t kw = 0; kw < KW; kw++, col += pn)
    for (int64_t i = 0; i < n; i++) dst[i * KW + kw] = col[i] + b;
}

/* col rows (co - co0, kd, kh, kw), columns input positions [p0, p0+pn) -> y[co] blocks */
static void scatter_disjoint(const convt_dims *d, const float *col, int64_t cn, int64_t p0, int64_t pn,
                             float *yc0, const float *bias)
{
  const int64_t OHW = d->Ho * d->Wo;
  for (int64_t co = 0; co < cn; co++) {
    float *yc = yc0 + co * d->Do * OHW;
    float b = bias ? bias[co] : 0.0f;
    for (int64_t kd = 0; kd < d->KD; kd++)
      for (int64_t kh = 0; kh < d->KH; kh++) {
        const float *src = col + ((co * d->KD + kd) * d->KH + kh) * d->KW * pn;
        int64_t p = p0, pend = p0 + pn;
        int64_t iw = p % d->W, t = p / d->W, ih = t % d->H, id = t / d->H;
        while (p < pend) {
          int64_t seg = min64(d->W - iw, pend - p);
          float *dst = yc + (id * d->KD + kd) * OHW + (ih * d->KH + kh) * d->Wo + iw * d->KW;
          scatter_disjoint_row(dst, src + (p - p0), pn, d->KW, seg, b);
          p += seg;
          iw = 0;
          if (++ih == d->H) ih = 0, id++;
        }
      }
  }
}

/* Outputs past the last block (output_pad) receive no input: they are just the bias. */
static void fill_output_pad(const convt_dims *d, float *yc, float b)
{
  const int64_t cd = d->D * d->KD, ch = d->H * d->KH, cw = d->W * d->KW;
  for (int64_t od = 0; od < d->Do; od++)
    for (int64_t oh = 0; oh < d->Ho; oh++) {
      float *row = yc + (od * d->Ho + oh) * d->Wo;
      int64_t from = od >= cd || oh >= ch ? 0 : cw;
      for (int64_t ow = from; ow < d->Wo; ow++) row[ow] = b;
    }
}

static t3d_status conv3d_transpose_disjoint(int threads, const convt_dims *d, int64_t N, float *yd, const float *xd,
                                            const float *wd, const float *bd)
{
  const int64_t kvol = d->KD * d->KH * d->KW, Pin = d->D * d->H * d->W, Pout = d->Do * d->Ho * d->Wo;
  int64_t pt = min64(Pin, col_budget < COL_BUDGET_FLOATS ? 16 : 512);
  int64_t cb = max64(1, min64(d->Co, col_budget / (kvol * pt)));
  int64_t want = threads > 1 ? 4 * (int64_t)threads : 1;
  while (N * ceil_div(d->Co, cb) * ceil_div(Pin, pt) < want && (cb > 8 || pt > 64)) {
    if (cb > 8) cb = ceil_div(cb, 2);
    else pt = ceil_div(pt, 2);
  }
  const int64_t nb = ceil_div(d->Co, cb), ptiles = ceil_div(Pin, pt), items = N * nb * ptiles;
  const int nthr = (int)min64(threads, items);
  const size_t col_floats = round16((size_t)(cb * kvol * pt));
  const size_t per_thread = col_floats;
  float *scratch = t3d_cpu_scratch_alloc((size_t)nthr * per_thread * sizeof(float));
  if (!scratch)
    return t3d_error(T3D_ERR_NOMEM, "conv3d_transpose: cannot allocate %zu bytes of column tiles",
                     (size_t)nthr * per_thread * sizeof(float));
  const bool padded = d->Do != d->D * d->KD || d->Ho != d->H * d->KH || d->Wo != d->W * d->KW;
  blas_threads_guard guard = blas_threads_single();

#pragma omp parallel num_threads(nthr)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float *col = scratch + (size_t)tid * per_thread;
    if (padded) {
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < N * d->Co; nc++) fill_output_pad(d, yd + nc * Pout, bd ? bd[nc % d->Co] : 0.0f);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
      int64_t pti = it % ptiles, bi = (it / ptiles) % nb, n = it / (ptiles * nb);
      int64_t co0 = bi * cb, cn = min64(cb, d->Co - co0), p0 = pti * pt, pn = min64(pt, Pin - p0);
      /* col[(co,tap), p] = sum_ci w[ci, co, tap] x[ci, p] */
      gemm(true, (int)(cn * kvol), (int)pn, (int)d->Ci, wd + co0 * kvol, (int)(d->Co * kvol),
           xd + n * d->Ci * Pin + p0, (int)Pin, 0.0f, col, (int)pn);
      scatter_disjoint(d, col, cn, p0, pn, yd + (n * d->Co + co0) * Pout, bd ? bd + co0 : NULL);
    }
  }
  blas_threads_restore(guard);
  t3d_cpu_scratch_free(scratch);
  return T3D_OK;
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
  if (Ci > 0 && Pin > 0 && pad[0] == 0 && pad[1] == 0 && pad[2] == 0 && s[0] == KD && s[1] == KH && s[2] == KW) {
    convt_dims d = {Ci, D, H, W, Co, KD, KH, KW, Do, Ho, Wo};
    return conv3d_transpose_disjoint(threads, &d, N, yd, xd, wd, bd);
  }

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
  const size_t per_thread = col_floats;
  float *scratch = t3d_cpu_scratch_alloc((size_t)nthr * per_thread * sizeof(float));
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
             col, (int)pn);
        col2im_tile(col, cn, p0, pn, yc, D, H, W, Do, Ho, Wo, KD, KH, KW, s, pad);
      }
    }
  }

  blas_threads_restore(guard);
  t3d_cpu_scratch_free(scratch);
  return T3D_OK;
}
