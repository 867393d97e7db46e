/* Checks the CPU backend's bf16 path (kernels/cpu/bf16.h) on fresh random data every run (the
 * seed is printed; T3D_TEST_SEED=N repeats a run): conv3d, conv3d_transpose and linear with bf16
 * weights against
 *  (a) the double-accumulated reference on the same bf16-rounded operands: only fp32
 *      accumulation error may remain, |y - ref| <= gamma_{K+3} * mag (gamma_n = n u / (1 - n u),
 *      u = 2^-24, mag = the op on |x|, |w| plus |bias| + |residual|): catches layout and packing bugs;
 *  (b) the fp32 op: |y - y32| <= (2^-7 + 2^-16 + 2 gamma_{K+3}) * mag (each product of two bf16
 *      roundings, each <= 2^-8 relative, plus accumulation on both sides);
 *  (c) every other ISA and thread count against the scalar kernel: 2 gamma_{K+64} * mag;
 * and the 3x3x3 "same" convolutions once more by Winograd F(2,3) (CPUs with AVX-512F), which
 * rounds the transformed operands instead, so (a) does not apply and (b) is against Winograd's
 * magnitude (wino_mag) at 3 x 2^-9;
 * the portable kernels (scalar, AVX2) bit for bit equal; every ISA this CPU has; 1 and 3 threads;
 * the stored weight layouts (transposed conv, linear); precision names and what auto resolves to. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core/base/tensor.h"
#include "kernels/backend.h"
#include "kernels/cpu/bf16.h"
#include "kernels/cpu/conv.h"

#include "random-tensor.h"

/* copy of t with every value f(value): bf16-rounded, absolute, or both */
static t3d_tensor *tmap(const t3d_tensor *t, bool round, bool absolute)
{
  if (!t) return NULL;
  t3d_tensor *o = tnew(t->ndim, t->shape, false);
  const float *s = t->data;
  float *d = o->data;
  for (int64_t i = 0; i < t3d_tensor_numel(t); i++) {
    float v = round ? t3d_bf16_to_f32(t3d_f32_to_bf16(s[i])) : s[i];
    d[i] = absolute ? fabsf(v) : v;
  }
  return o;
}

static double gamma_n(int64_t n)
{
  double u = ldexp(1.0, -24);
  return (double)n * u / (1.0 - (double)n * u);
}

/* max_i |a_i - b_i| / mag_i (a zero magnitude needs an exact match) */
static double rel_err(const t3d_tensor *a, const t3d_tensor *b, const t3d_tensor *mag)
{
  const float *x = a->data, *y = b->data, *m = mag->data;
  double worst = 0;
  for (int64_t i = 0; i < t3d_tensor_numel(a); i++) {
    double d = fabs((double)x[i] - y[i]);
    double r = m[i] > 0 ? d / m[i] : (d > 0 ? INFINITY : 0);
    if (worst == worst && !(r <= worst)) worst = r; /* a NaN stays the worst */
  }
  return worst;
}

static bool bit_equal(const t3d_tensor *a, const t3d_tensor *b)
{
  return memcmp(a->data, b->data, t3d_tensor_nbytes(a)) == 0;
}

static t3d_backend *backend(t3d_precision p, int threads)
{
  t3d_backend_params bp = t3d_backend_default_params();
  t3d_backend *be = NULL;
  bp.threads = threads;
  bp.precision = p;
  if (t3d_backend_cpu_create(&be, &bp) != T3D_OK) {
    fprintf(stderr, "backend: %s\n", t3d_error_detail());
    exit(1);
  }
  return be;
}

/* The checks (a), (b) for one op result y computed at every ISA up to the CPU's and with 1 and 3
 * threads; run(be, y) computes the op on a bf16 backend. */
typedef struct {
  const char *name;
  const t3d_tensor *y32, *refb, *mag; /* refb NULL: no bf16-operand reference (Winograd) */
  int64_t K;
  bool wino; /* the bf16 Winograd kernel: mag is Winograd's (wino_mag), (b) allows 3 x 2^-9 */
} expect;

static void check_result(const expect *e, const t3d_tensor *y, const char *how)
{
  double ea = e->refb ? rel_err(y, e->refb, e->mag) : 0, eb = rel_err(y, e->y32, e->mag);
  double ta = gamma_n(e->K + 3) * 1.01;
  double tb = (e->wino ? 3 * ldexp(1.0, -9) : ldexp(1.0, -7)) + ldexp(1.0, -16) + 2 * gamma_n(e->K + 3);
  check_count++;
  if (!(ea <= ta) || !(eb <= tb)) {
    check_failures++;
    fprintf(stderr, "FAIL: %s [%s]: vs bf16-operand reference %.3g (tol %.3g), vs fp32 %.3g (tol %.3g)\n", e->name,
            how, ea, ta, eb, tb);
  } else if (strcmp(how, "default") == 0) {
    if (e->refb)
      printf("  %-44s vs bf16-operand ref %.2e (tol %.1e)  vs fp32 %.2e (tol %.1e)\n", e->name, ea, ta, eb, tb);
    else
      printf("  %-44s vs fp32 %.2e of Winograd's magnitude (tol %.1e)\n", e->name, eb, tb);
  }
}


/* One op with bf16 weights made from the f32 ones by this backend (as the model loads them). */
typedef struct {
  t3d_op op;
  const t3d_tensor *x, *b, *r, *w32;
  t3d_conv3d_params cp;
  t3d_conv3d_transpose_params tp;
} op_ctx;

static t3d_status run_op(t3d_backend *be, t3d_tensor *y, const op_ctx *c)
{
  t3d_tensor w;
  t3d_status s;
  T3D_TRY(t3d_backend_weight_upload(be, &w, c->w32, c->op));
  if (w.dtype != T3D_BF16)
    s = t3d_error(T3D_ERR_INVALID_ARG, "weights are not bf16");
  else if (c->op == T3D_OP_CONV3D)
    s = t3d_op_conv3d(be, y, c->x, &w, c->b, c->r, &c->cp);
  else if (c->op == T3D_OP_CONV3D_TRANSPOSE)
    s = t3d_op_conv3d_transpose(be, y, c->x, &w, c->b, &c->tp);
  else
    s = t3d_op_linear(be, y, c->x, &w, c->b);
  t3d_backend_tensor_free(be, &w);
  return s;
}

/* ---- every ISA, 1 and 3 threads --------------------------------------------------------------- */

static void check_all_isas(const expect *e, t3d_tensor *y, const op_ctx *ctx)
{
  t3d_cpu_isa top = t3d_cpu_bf16_hw_isa(); /* native ones too where avx512f runs by default */
  t3d_tensor *portable[2] = {NULL, NULL};
  for (int threads = 1; threads <= 3; threads += 2) {
    t3d_backend *be = backend(T3D_PRECISION_BF16, threads);
    for (int isa = 0; isa <= (int)top; isa++) {
      char how[64];
      /* avx512f runs no bf16 Winograd: its convolutions take the fp32 kernels' path whatever
         t3d_cpu_bf16_force_wino says, checked in the im2col pass and by test_fma_paths */
      if (e->wino && isa == T3D_CPU_ISA_AVX512F) continue;
      snprintf(how, sizeof how, "%s, %d thread%s", t3d_cpu_isa_name((t3d_cpu_isa)isa), threads, threads > 1 ? "s" : "");
      t3d_cpu_bf16_cap_isa((t3d_cpu_isa)isa);
      memset(y->data, 0xff, t3d_tensor_nbytes(y)); /* NaN: a missed output shows */
      CHECK_STATUS(run_op(be, y, ctx), T3D_OK);
      check_result(e, y, how);
      if (isa <= T3D_CPU_ISA_AVX2 && threads == 1) portable[isa] = tmap(y, false, false);
      else if (isa == T3D_CPU_ISA_AVX512F && ctx->op != T3D_OP_CONV3D && portable[1]) {
        /* its GEMM block adds the same products in the same order as the AVX2 kernel */
        check_count++;
        if (!bit_equal(y, portable[1])) {
          check_failures++;
          fprintf(stderr, "FAIL: %s [%s]: differs from the avx2 kernel (max rel diff %.3g)\n", e->name, how,
                  rel_err(y, portable[1], e->mag));
        }
      }
      else if (portable[0]) { /* the same bf16 operands: only fp32 summation order may differ */
        double d = rel_err(y, portable[0], e->mag), tol = 2 * gamma_n(e->K + 64);
        check_count++;
        if (!(d <= tol)) {
          check_failures++;
          fprintf(stderr, "FAIL: %s [%s]: vs the scalar kernel %.3g (tol %.3g)\n", e->name, how, d, tol);
        }
      }
    }
    t3d_cpu_bf16_cap_isa(T3D_CPU_ISA_COUNT);
    if (e->wino && t3d_cpu_bf16_isa() == T3D_CPU_ISA_AVX512F) t3d_cpu_bf16_cap_isa(top); /* as above */
    memset(y->data, 0xff, t3d_tensor_nbytes(y));
    CHECK_STATUS(run_op(be, y, ctx), T3D_OK);
    t3d_cpu_bf16_cap_isa(T3D_CPU_ISA_COUNT);
    if (threads == 1) check_result(e, y, "default");
    t3d_backend_free(be);
  }
  if (portable[0] && portable[1]) {
    check_count++;
    if (!bit_equal(portable[0], portable[1])) {
      check_failures++;
      fprintf(stderr, "FAIL: %s: scalar and avx2 kernels differ (max rel diff %.3g)\n", e->name,
              rel_err(portable[0], portable[1], e->mag));
    }
  }
  t3d_tensor_free(portable[0]);
  t3d_tensor_free(portable[1]);
}

/* ---- conv3d ---------------------------------------------------------------------------------- */

/* Winograd F(2,3)'s magnitude: the algorithm run in double on |x|, |w| and the absolute values of
 * its transforms, |A^T| [(|G| |w| |G^T|) . (|B^T| |d| |B|)] |A| summed over input channels, plus
 * |bias| + |residual|: each product U_e V_e carries at most 3 x 2^-9 of its magnitude in bf16
 * (U rounded twice, V once), and the output transform adds them with |A^T|'s weights. */
static void wino_mag(t3d_tensor *mag, const t3d_tensor *x, const t3d_tensor *w, const t3d_tensor *b,
                     const t3d_tensor *r)
{
  static const double G[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, .5, .5}, {0, 0, 1}};
  static const double BT[4][4] = {{1, 0, 1, 0}, {0, 1, 1, 0}, {0, 1, 1, 0}, {0, 1, 0, 1}};
  static const double AT[2][4] = {{1, 1, 1, 0}, {0, 1, 1, 1}};
  const int64_t N = x->shape[0], Ci = x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Co = w->shape[0], TD = (D + 1) / 2, TH = (H + 1) / 2, TW = (W + 1) / 2;
  const float *xd = x->data, *wd = w->data;
  float *md = mag->data;
  double *U = malloc(sizeof(double) * (size_t)(Co * Ci * 64)), *V = malloc(sizeof(double) * (size_t)(Ci * 64));
  if (!U || !V) exit(1);
  for (int64_t oc = 0; oc < Co * Ci; oc++)
    for (int e = 0; e < 64; e++) {
      double s = 0;
      for (int t = 0; t < 27; t++) s += G[e / 16][t / 9] * G[e / 4 % 4][t / 3 % 3] * G[e % 4][t % 3] * fabs(wd[oc * 27 + t]);
      U[oc * 64 + e] = s;
    }
  for (int64_t n = 0; n < N; n++)
    for (int64_t tz = 0; tz < TD; tz++)
      for (int64_t ty = 0; ty < TH; ty++)
        for (int64_t tx = 0; tx < TW; tx++) {
          for (int64_t ci = 0; ci < Ci; ci++)
            for (int e = 0; e < 64; e++) {
              double s = 0;
              for (int q = 0; q < 64; q++) {
                int64_t iz = 2 * tz - 1 + q / 16, iy = 2 * ty - 1 + q / 4 % 4, ix = 2 * tx - 1 + q % 4;
                if (iz < 0 || iz >= D || iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += BT[e / 16][q / 16] * BT[e / 4 % 4][q / 4 % 4] * BT[e % 4][q % 4] *
                     fabs(xd[(((n * Ci + ci) * D + iz) * H + iy) * W + ix]);
              }
              V[ci * 64 + e] = s;
            }
          for (int64_t co = 0; co < Co; co++)
            for (int o = 0; o < 8; o++) {
              int64_t oz = 2 * tz + o / 4, oy = 2 * ty + o / 2 % 2, ox = 2 * tx + o % 2;
              if (oz >= D || oy >= H || ox >= W) continue;
              double s = 0;
              for (int e = 0; e < 64; e++) {
                double a = AT[o / 4][e / 16] * AT[o / 2 % 2][e / 4 % 4] * AT[o % 2][e % 4];
                if (a == 0) continue;
                for (int64_t ci = 0; ci < Ci; ci++) s += a * U[(co * Ci + ci) * 64 + e] * V[ci * 64 + e];
              }
              int64_t i = (((n * Co + co) * D + oz) * H + oy) * W + ox;
              md[i] = (float)(s + (b ? fabs(((const float *)b->data)[co]) : 0) + (r ? fabs(((const float *)r->data)[i]) : 0));
            }
        }
  free(U);
  free(V);
}

static void test_conv(int64_t n, int64_t ci, int64_t d, int64_t h, int64_t w_, int64_t co, int k, int stride,
                      int pad, bool bias, bool residual, bool relu)
{
  char name[128];
  int64_t xs[5] = {n, ci, d, h, w_}, ws[5] = {co, ci, k, k, k}, bs[1] = {co};
  int64_t ys[5] = {n, co, (d + 2 * pad - k) / stride + 1, (h + 2 * pad - k) / stride + 1,
                   (w_ + 2 * pad - k) / stride + 1};
  t3d_tensor *x = tnew(5, xs, true), *w = tnew(5, ws, true), *b = bias ? tnew(1, bs, true) : NULL;
  t3d_tensor *r = residual ? tnew(5, ys, true) : NULL;
  t3d_tensor *y = tnew(5, ys, false), *y32 = tnew(5, ys, false), *refb = tnew(5, ys, false), *mag = tnew(5, ys, false);
  t3d_tensor *xr = tmap(x, true, false), *wr = tmap(w, true, false);
  t3d_tensor *xa = tmap(x, false, true), *wa = tmap(w, false, true), *ba = tmap(b, false, true), *ra = tmap(r, false, true);
  t3d_conv3d_params p = {{stride, stride, stride}, {pad, pad, pad}, relu, false}, pm = p;
  t3d_backend *be32 = backend(T3D_PRECISION_FP32, 2);
  pm.relu = false;
  CHECK_STATUS(t3d_op_conv3d(be32, y32, x, w, b, r, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_ref(be32, refb, xr, wr, b, r, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_ref(be32, mag, xa, wa, ba, ra, &pm), T3D_OK);
  op_ctx c = {.op = T3D_OP_CONV3D, .x = x, .b = b, .r = r, .w32 = w, .cp = p};
  /* im2col, then (3x3x3 "same" layers on CPUs with AVX-512F) Winograd */
  for (int wino = 0; wino <= 1; wino++) {
    int old = t3d_cpu_bf16_force_wino(wino);
    if (!wino || t3d_cpu_conv3d_bf16_wino(x, w, &p)) {
      snprintf(name, sizeof name, "conv3d x[%lld,%lld,%lld,%lld,%lld] w[%lld,k%d] s%d p%d%s%s%s%s", (long long)n,
               (long long)ci, (long long)d, (long long)h, (long long)w_, (long long)co, k, stride, pad,
               bias ? " +b" : "", residual ? " +res" : "", relu ? " relu" : "", wino ? " wino" : "");
      t3d_tensor *magd = wino ? tmap(mag, false, false) : NULL; /* the direct sum's magnitude */
      if (wino) wino_mag(mag, x, w, b, r);
      expect e = {name, y32, wino ? NULL : refb, mag, ci * k * k * k, wino};
      check_all_isas(&e, y, &c);
      if (!wino && k > 1) { /* the bf16-copy packing must give conv_pack's panels exactly */
        t3d_backend *b1 = backend(T3D_PRECISION_BF16, 2);
        t3d_tensor *ya = tnew(5, ys, false), *yb = tnew(5, ys, false);
        t3d_cpu_isa hw = t3d_cpu_bf16_hw_isa(); /* an ISA whose convolutions pack bf16 panels */
        t3d_cpu_bf16_cap_isa(hw == T3D_CPU_ISA_AVX512F ? T3D_CPU_ISA_AVX2 : hw);
        int was = t3d_cpu_bf16_force_x16_pack(0);
        CHECK_STATUS(run_op(b1, ya, &c), T3D_OK);
        t3d_cpu_bf16_force_x16_pack(-1);
        CHECK_STATUS(run_op(b1, yb, &c), T3D_OK);
        t3d_cpu_bf16_force_x16_pack(was);
        t3d_cpu_bf16_cap_isa(T3D_CPU_ISA_COUNT);
        check_count++;
        if (!bit_equal(ya, yb)) {
          check_failures++;
          fprintf(stderr, "FAIL: %s: the bf16-copy packing differs from the im2col lines (max rel %.3g)\n", name,
                  rel_err(ya, yb, mag));
        }
        t3d_tensor_free(ya);
        t3d_tensor_free(yb);
        t3d_backend_free(b1);
      }
      if (wino) { /* y holds the default run's result: its error in the direct sum's terms, for the record */
        printf("  %-44s vs fp32 %.2e of the direct sum's magnitude\n", "", rel_err(y, y32, magd));
        t3d_tensor_free(magd);
      }
    }
    t3d_cpu_bf16_force_wino(old);
  }
  t3d_backend_free(be32);
  t3d_tensor *all[] = {x, w, b, r, y, y32, refb, mag, xr, wr, xa, wa, ba, ra};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) t3d_tensor_free(all[i]);
}

/* ---- avx512f: the fp32 kernels on bf16 operands ------------------------------------------------
 * Every path the avx512f ISA's convolutions take (forced through t3d_cpu_conv_force_path): packed
 * "same", gather, im2col rows, 1x1 rows (copied, not read in place), Winograd F(2,3) and F(4,3).
 * Against the bf16-operand reference: fp32 accumulation's gamma_{K+3} on the packed paths, and the
 * fp32 Winograd kernels' own bounds (tests/test-conv.c: 8 gamma_{K+67}, 16 gamma_{K+219}) on
 * Winograd's; against fp32 the bf16 bound above plus those. */
static void fma_case(int64_t ci, int64_t d, int64_t h, int64_t w_, int64_t co, int k, int stride, int pad, bool res)
{
  int64_t xs[5] = {1, ci, d, h, w_}, ws[5] = {co, ci, k, k, k}, bs[1] = {co};
  int64_t ys[5] = {1, co, (d + 2 * pad - k) / stride + 1, (h + 2 * pad - k) / stride + 1, (w_ + 2 * pad - k) / stride + 1};
  t3d_tensor *x = tnew(5, xs, true), *w = tnew(5, ws, true), *b = tnew(1, bs, true), *r = res ? tnew(5, ys, true) : NULL;
  t3d_tensor *y = tnew(5, ys, false), *y32 = tnew(5, ys, false), *refb = tnew(5, ys, false), *mag = tnew(5, ys, false);
  t3d_tensor *xr = tmap(x, true, false), *wr = tmap(w, true, false);
  t3d_tensor *xa = tmap(x, false, true), *wa = tmap(w, false, true), *ba = tmap(b, false, true), *ra = tmap(r, false, true);
  t3d_conv3d_params p = {{stride, stride, stride}, {pad, pad, pad}, true, false}, pm = p;
  pm.relu = false;
  t3d_backend *be32 = backend(T3D_PRECISION_FP32, 2);
  CHECK_STATUS(t3d_op_conv3d(be32, y32, x, w, b, r, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_ref(be32, refb, xr, wr, b, r, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_ref(be32, mag, xa, wa, ba, ra, &pm), T3D_OK);
  const int64_t K = ci * k * k * k;
  const bool same3 = k == 3 && stride == 1 && pad == 1;
  static const t3d_cpu_conv_path paths[] = {T3D_CPU_CONV_AVX512, T3D_CPU_CONV_WINOGRAD, T3D_CPU_CONV_WINOGRAD4};
  op_ctx c = {.op = T3D_OP_CONV3D, .x = x, .b = b, .r = r, .w32 = w, .cp = p};
  t3d_cpu_bf16_cap_isa(T3D_CPU_ISA_AVX512F);
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    if (i > 0 && !same3) break;
    for (int run = 0; run < 4; run++) { /* 1 and 3 threads; the default tiles, then small ones (many
                                           K chunks and channel blocks: each widens its own weights) */
      const int threads = run % 2 ? 3 : 1;
      t3d_backend *be = backend(T3D_PRECISION_BF16, threads);
      t3d_cpu_conv_path old = t3d_cpu_conv_force_path(paths[i]);
      size_t old_budget = t3d_cpu_conv_set_col_budget(run >= 2 ? 600 : 0);
      memset(y->data, 0xff, t3d_tensor_nbytes(y));
      CHECK_STATUS(run_op(be, y, &c), T3D_OK);
      t3d_cpu_conv_set_col_budget(old_budget);
      t3d_cpu_conv_force_path(old);
      double ta = paths[i] == T3D_CPU_CONV_WINOGRAD4 ? 16 * gamma_n(K + 3 + 216)
                  : paths[i] == T3D_CPU_CONV_WINOGRAD ? 8 * gamma_n(K + 3 + 64)
                                                      : gamma_n(K + 3) * 1.01;
      double tb = ldexp(1.0, -7) + ldexp(1.0, -16) + 2 * gamma_n(K + 3) + ta;
      double ea = rel_err(y, refb, mag), eb = rel_err(y, y32, mag);
      check_count++;
      if (!(ea <= ta) || !(eb <= tb)) {
        check_failures++;
        fprintf(stderr, "FAIL: avx512f conv3d ci%lld %lldx%lldx%lld co%lld k%d s%d p%d path %d, %d threads: vs bf16-operand "
                "reference %.3g (tol %.3g), vs fp32 %.3g (tol %.3g)%s\n", (long long)ci, (long long)d, (long long)h,
                (long long)w_, (long long)co, k, stride, pad, (int)paths[i], threads, ea, ta, eb, tb,
                run >= 2 ? " (small tiles)" : "");
      } else if (run == 0) {
        printf("  avx512f conv3d ci%lld co%lld k%d s%d path %d: vs bf16-operand ref %.2e (tol %.1e)  vs fp32 %.2e\n",
               (long long)ci, (long long)co, k, stride, (int)paths[i], ea, ta, eb);
      }
      t3d_backend_free(be);
    }
  }
  t3d_cpu_bf16_cap_isa(T3D_CPU_ISA_COUNT);
  t3d_backend_free(be32);
  t3d_tensor *all[] = {x, w, b, r, y, y32, refb, mag, xr, wr, xa, wa, ba, ra};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) t3d_tensor_free(all[i]);
}

static void test_fma_paths(void)
{
  if (t3d_cpu_bf16_hw_isa() < T3D_CPU_ISA_AVX512F) {
    printf("  avx512f bf16 ISA: not on this CPU, skipped\n");
    return;
  }
  fma_case(12, 9, 10, 37, 20, 3, 1, 1, true); /* "same": packed, Winograd F(2,3) and F(4,3) */
  fma_case(3, 5, 6, 7, 9, 3, 1, 1, false);    /* few channels, ragged tiles */
  fma_case(1, 9, 12, 11, 16, 7, 2, 3, false); /* the stem: gathered strips */
  fma_case(5, 6, 7, 80, 12, 3, 2, 1, true);   /* wide rows, stride 2: im2col rows */
  fma_case(40, 5, 6, 7, 72, 1, 1, 0, true);   /* 1x1: x's rows copied and rounded */
}

/* ---- conv3d_transpose ------------------------------------------------------------------------- */

static void test_convt(int64_t n, int64_t ci, int64_t d, int64_t h, int64_t w_, int64_t co, int k, int stride,
                       int pad, int opad)
{
  char name[128];
  int64_t xs[5] = {n, ci, d, h, w_}, ws[5] = {ci, co, k, k, k}, bs[1] = {co};
  int64_t ys[5] = {n, co, (d - 1) * stride - 2 * pad + k + opad, (h - 1) * stride - 2 * pad + k + opad,
                   (w_ - 1) * stride - 2 * pad + k + opad};
  snprintf(name, sizeof name, "conv3d_transpose x[%lld,%lld,%lld,%lld,%lld] co%lld k%d s%d p%d op%d", (long long)n,
           (long long)ci, (long long)d, (long long)h, (long long)w_, (long long)co, k, stride, pad, opad);
  t3d_tensor *x = tnew(5, xs, true), *w = tnew(5, ws, true), *b = tnew(1, bs, true);
  t3d_tensor *y = tnew(5, ys, false), *y32 = tnew(5, ys, false), *refb = tnew(5, ys, false), *mag = tnew(5, ys, false);
  t3d_tensor *xr = tmap(x, true, false), *wr = tmap(w, true, false);
  t3d_tensor *xa = tmap(x, false, true), *wa = tmap(w, false, true), *ba = tmap(b, false, true);
  t3d_conv3d_transpose_params p = {{stride, stride, stride}, {pad, pad, pad}, {opad, opad, opad}};
  t3d_backend *be32 = backend(T3D_PRECISION_FP32, 2);
  CHECK_STATUS(t3d_op_conv3d_transpose(be32, y32, x, w, b, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(be32, refb, xr, wr, b, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(be32, mag, xa, wa, ba, &p), T3D_OK);
  op_ctx c = {.op = T3D_OP_CONV3D_TRANSPOSE, .x = x, .b = b, .w32 = w, .tp = p};
  expect e = {name, y32, refb, mag, ci * k * k * k, false}; /* at most Ci*k^3 taps reach one output */
  check_all_isas(&e, y, &c);
  t3d_backend_free(be32);
  t3d_tensor *all[] = {x, w, b, y, y32, refb, mag, xr, wr, xa, wa, ba};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) t3d_tensor_free(all[i]);
}

/* ---- linear ------------------------------------------------------------------------------------- */

/* y[t, o] = sum_i w[o, i] x[t, i] + b[o] in double */
static void linear_ref(t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w, const t3d_tensor *b)
{
  int64_t out = w->shape[0], in = w->shape[1], T = t3d_tensor_numel(x) / in;
  const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
  float *yd = y->data;
  for (int64_t t = 0; t < T; t++)
    for (int64_t o = 0; o < out; o++) {
      double s = bd ? bd[o] : 0.0;
      for (int64_t i = 0; i < in; i++) s += (double)wd[o * in + i] * xd[t * in + i];
      yd[t * out + o] = (float)s;
    }
}

static void test_linear(int64_t a, int64_t t, int64_t in, int64_t out, bool bias)
{
  char name[128];
  int64_t xs[3] = {a, t, in}, ws[2] = {out, in}, bs[1] = {out}, ys[3] = {a, t, out};
  snprintf(name, sizeof name, "linear x[%lld,%lld,%lld] w[%lld,%lld]%s", (long long)a, (long long)t, (long long)in,
           (long long)out, (long long)in, bias ? " +b" : "");
  t3d_tensor *x = tnew(3, xs, true), *w = tnew(2, ws, true), *b = bias ? tnew(1, bs, true) : NULL;
  t3d_tensor *y = tnew(3, ys, false), *y32 = tnew(3, ys, false), *refb = tnew(3, ys, false), *mag = tnew(3, ys, false);
  t3d_tensor *xr = tmap(x, true, false), *wr = tmap(w, true, false);
  t3d_tensor *xa = tmap(x, false, true), *wa = tmap(w, false, true), *ba = tmap(b, false, true);
  t3d_backend *be32 = backend(T3D_PRECISION_FP32, 2);
  CHECK_STATUS(t3d_op_linear(be32, y32, x, w, b), T3D_OK);
  linear_ref(refb, xr, wr, b);
  linear_ref(mag, xa, wa, ba);
  op_ctx c = {.op = T3D_OP_LINEAR, .x = x, .b = b, .w32 = w};
  expect e = {name, y32, refb, mag, in, false};
  check_all_isas(&e, y, &c);
  t3d_backend_free(be32);
  t3d_tensor *all[] = {x, w, b, y, y32, refb, mag, xr, wr, xa, wa, ba};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) t3d_tensor_free(all[i]);
}

/* ---- layout, precision --------------------------------------------------------------------------- */

static void test_layout(void)
{
  int64_t ws[5] = {3, 5, 2, 2, 2}; /* conv3d_transpose: Ci 5, Co 3, 8 taps -> A [24 (+pad) rows][5 (+pad)] */
  t3d_tensor *w = tnew(5, ws, true), dev;
  t3d_backend *be = backend(T3D_PRECISION_BF16, 1);
  t3d_bf16_layout l;
  CHECK_STATUS(t3d_backend_weight_upload(be, &dev, w, T3D_OP_CONV3D_TRANSPOSE), T3D_OK);
  CHECK(t3d_bf16_layout_of(T3D_OP_CONV3D_TRANSPOSE, w, &l));
  CHECK_INT_EQ(dev.dtype, T3D_BF16);
  CHECK_INT_EQ(l.m, 2 * 2 * 2 * 5);
  CHECK_INT_EQ(l.k, 3);
  CHECK_INT_EQ(l.rows, 64 + 32);
  CHECK_INT_EQ(l.kpad, 32);
  const uint16_t *a = dev.data;
  const float *h = w->data;
  int bad = 0;
  for (int64_t r = 0; r < l.rows; r++)
    for (int64_t c = 0; c < l.kpad; c++) {
      uint16_t want = r < l.m && c < l.k ? t3d_f32_to_bf16(h[c * l.m + r]) : 0;
      bad += a[r * l.kpad + c] != want;
    }
  CHECK_INT_EQ(bad, 0);
  t3d_backend_tensor_free(be, &dev);
  /* linear w[40, 3]: B strips, output o at column o % 32 of strip o / 32, input pairs side by side */
  int64_t ls[2] = {40, 3};
  t3d_tensor *lw = tnew(2, ls, true);
  CHECK_STATUS(t3d_backend_weight_upload(be, &dev, lw, T3D_OP_LINEAR), T3D_OK);
  CHECK(t3d_bf16_layout_of(T3D_OP_LINEAR, lw, &l));
  CHECK_INT_EQ(l.rows, 64);
  CHECK_INT_EQ(l.kpad, 32);
  a = dev.data;
  h = lw->data;
  bad = 0;
  for (int64_t o = 0; o < l.rows; o++)
    for (int64_t i = 0; i < l.kpad; i++) {
      uint16_t want = o < 40 && i < 3 ? t3d_f32_to_bf16(h[o * 3 + i]) : 0;
      bad += a[(o / 32) * l.kpad * 32 + (i / 2) * 64 + (o % 32) * 2 + i % 2] != want;
    }
  CHECK_INT_EQ(bad, 0);
  t3d_backend_tensor_free(be, &dev);
  t3d_tensor_free(lw);
  /* an fp32 backend keeps f32 weights; a weight of the wrong rank is refused */
  t3d_backend *b32 = backend(T3D_PRECISION_FP32, 1);
  CHECK_STATUS(t3d_backend_weight_upload(b32, &dev, w, T3D_OP_CONV3D), T3D_OK);
  CHECK_INT_EQ(dev.dtype, T3D_F32);
  t3d_backend_tensor_free(b32, &dev);
  CHECK_STATUS(t3d_backend_weight_upload(be, &dev, w, T3D_OP_LINEAR), T3D_ERR_SHAPE);
  CHECK_STATUS(t3d_backend_weight_upload(be, &dev, w, T3D_OP_RELU), T3D_ERR_INVALID_ARG);
  t3d_backend_free(b32);
  t3d_backend_free(be);
  t3d_tensor_free(w);
}

/* Where AUTO takes the bf16 Winograd kernel: 3x3x3 "same" layers marked tolerant (the
 * segmentation decoder), large enough, on CPUs with AVX-512F; never the encoder's (its
 * embedding's tolerance has no room for Winograd's larger error, see conv_bf16.c). */
static void test_wino_choice(void)
{
  t3d_tensor x = {.dtype = T3D_F32, .ndim = 5, .shape = {1, 64, 16, 16, 16}};
  t3d_tensor w = {.dtype = T3D_BF16, .ndim = 5, .shape = {64, 64, 3, 3, 3}};
  t3d_conv3d_params p = {{1, 1, 1}, {1, 1, 1}, true, false};
  const bool avx512 = t3d_cpu_wino_avx512();
  CHECK(!t3d_cpu_conv3d_bf16_wino(&x, &w, &p)); /* not tolerant: im2col */
  p.tolerant = true;
  CHECK(t3d_cpu_conv3d_bf16_wino(&x, &w, &p) == avx512);
  x.shape[2] = x.shape[3] = x.shape[4] = 8; /* 512 outputs: too few */
  CHECK(!t3d_cpu_conv3d_bf16_wino(&x, &w, &p));
  x.shape[2] = x.shape[3] = x.shape[4] = 16;
  p.stride[0] = 2; /* not "same" */
  CHECK(!t3d_cpu_conv3d_bf16_wino(&x, &w, &p));
  p.stride[0] = 1;
  int old = t3d_cpu_bf16_force_wino(0);
  CHECK(!t3d_cpu_conv3d_bf16_wino(&x, &w, &p));
  t3d_cpu_bf16_force_wino(1);
  p.tolerant = false;
  CHECK(t3d_cpu_conv3d_bf16_wino(&x, &w, &p) == avx512);
  t3d_cpu_bf16_force_wino(old);
  printf("  bf16 Winograd: %s\n", avx512 ? "AVX-512F: the decoder's large 3x3x3 layers" : "none (no AVX-512F)");
}

static void test_precision(void)
{
  t3d_precision p = T3D_PRECISION_FP32;
  CHECK(t3d_precision_from_name("bf16", &p) && p == T3D_PRECISION_BF16);
  CHECK(t3d_precision_from_name("auto", &p) && p == T3D_PRECISION_AUTO);
  CHECK(!t3d_precision_from_name("fp16", &p) && p == T3D_PRECISION_AUTO);
  CHECK(strcmp(t3d_precision_name(T3D_PRECISION_FP32), "fp32") == 0);
  t3d_backend *be = backend(T3D_PRECISION_AUTO, 1);
  CHECK_INT_EQ(be->precision, t3d_backend_cpu_bf16_pays() ? T3D_PRECISION_BF16 : T3D_PRECISION_FP32);
  CHECK_INT_EQ(be->bf16_ops, t3d_backend_cpu_bf16_auto_ops());
  /* auto never takes the portable path, and measures only where there is AVX512-BF16 to measure */
  CHECK(!t3d_backend_cpu_bf16_pays() || t3d_backend_cpu_bf16_native());
  CHECK((t3d_backend_cpu_bf16_gain() > 0) == (t3d_cpu_bf16_hw_isa() == T3D_CPU_ISA_AVX512BF16));
  /* avx512bf16 runs unless its vdpbf16ps is slower than the FMAs (then avx512f), and an
     avx512f is the ISA of an AVX-512 CPU without AVX512-BF16 */
  if (!getenv("T3D_CPU_ISA") && t3d_cpu_bf16_hw_isa() == T3D_CPU_ISA_AVX512BF16)
    CHECK_INT_EQ(t3d_cpu_bf16_isa(), t3d_backend_cpu_bf16_gain() < 1.0 ? T3D_CPU_ISA_AVX512F : T3D_CPU_ISA_AVX512BF16);
  else
    CHECK_INT_EQ(t3d_cpu_bf16_isa(), t3d_cpu_bf16_hw_isa());
  t3d_backend_free(be);
  be = backend(T3D_PRECISION_FP32, 1);
  CHECK_INT_EQ(be->precision, T3D_PRECISION_FP32);
  CHECK_INT_EQ(be->bf16_ops, 0);
  t3d_backend_free(be);
  /* what auto runs in bf16 per CPU: on AMX the linear layers alone (its convolutions measured
     slower than fp32 there), on AVX512-BF16 everything where vdpbf16ps pays, else nothing */
  const unsigned lin = 1u << T3D_OP_LINEAR;
  CHECK_INT_EQ(t3d_cpu_bf16_auto_ops(T3D_CPU_ISA_AMX, 0), lin);
  CHECK_INT_EQ(t3d_cpu_bf16_auto_ops(T3D_CPU_ISA_AVX512BF16, 0.5), 0);
  CHECK_INT_EQ(t3d_cpu_bf16_auto_ops(T3D_CPU_ISA_AVX512BF16, 1.3), T3D_BF16_OPS_ALL);
  CHECK_INT_EQ(t3d_cpu_bf16_auto_ops(T3D_CPU_ISA_AVX2, 0), 0);
  CHECK_INT_EQ(t3d_cpu_bf16_auto_ops(T3D_CPU_ISA_AVX512F, 0.5), 0); /* fp32's speed: no gain */
  /* a bf16 backend with the linear layers alone in bf16 (auto on AMX): the convolutions' weights
     stay fp32, so their fp32 kernels run */
  be = backend(T3D_PRECISION_BF16, 1);
  CHECK_INT_EQ(be->bf16_ops, T3D_BF16_OPS_ALL);
  be->bf16_ops = lin;
  int64_t cs[5] = {4, 3, 3, 3, 3}, ls[2] = {5, 7};
  t3d_tensor *cw = tnew(5, cs, true), *lw = tnew(2, ls, true), dc, dl;
  CHECK_STATUS(t3d_backend_weight_upload(be, &dc, cw, T3D_OP_CONV3D), T3D_OK);
  CHECK_STATUS(t3d_backend_weight_upload(be, &dl, lw, T3D_OP_LINEAR), T3D_OK);
  CHECK_INT_EQ(dc.dtype, T3D_F32);
  CHECK_INT_EQ(dl.dtype, T3D_BF16);
  t3d_backend_tensor_free(be, &dc);
  t3d_backend_tensor_free(be, &dl);
  t3d_tensor_free(cw);
  t3d_tensor_free(lw);
  t3d_backend_free(be);
  t3d_backend_params bp = t3d_backend_default_params();
  CHECK_INT_EQ(bp.precision, T3D_PRECISION_FP32); /* the library default stays the reference */
  bp.precision = (t3d_precision)7;
  CHECK_STATUS(t3d_backend_cpu_create(&be, &bp), T3D_ERR_INVALID_ARG);
  printf("  bf16 ISA on this CPU: %s (%s; vdpbf16ps / fp32 FMA multiply-add rate %.2f; auto takes %s)\n",
         t3d_backend_cpu_bf16_isa(), t3d_backend_cpu_bf16_engine(),
         t3d_backend_cpu_bf16_gain(), t3d_backend_cpu_bf16_pays() ? "bf16" : "fp32");
}

int main(void)
{
  const char *env = getenv("T3D_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  rng = seed * 0x9e3779b97f4a7c15ull | 1; /* xorshift needs a nonzero state */
  printf("test-bf16: seed %llu (T3D_TEST_SEED=%llu repeats this run)\n", (unsigned long long)seed,
         (unsigned long long)seed);
  test_precision();
  test_layout();
  test_wino_choice();
  test_fma_paths();
  /* conv3d: the stem (1 channel, 7^3, stride 2), "same" 3^3, 1x1 direct and strided, odd sizes,
   * Co not a multiple of 32, K over one 256-row chunk, residual + ReLU, two images */
  test_conv(1, 1, 9, 12, 11, 16, 7, 2, 3, true, false, true);
  test_conv(2, 12, 6, 7, 9, 20, 3, 1, 1, true, true, true);
  test_conv(1, 40, 5, 6, 7, 72, 1, 1, 0, true, false, false);
  test_conv(1, 33, 7, 5, 6, 40, 1, 2, 0, false, true, true);
  test_conv(1, 19, 5, 6, 5, 35, 3, 2, 1, true, false, false);
  test_conv(1, 70, 4, 4, 5, 9, 3, 1, 1, false, false, false);
  /* Winograd's cases too: rows of more than 16 tiles, several runs of 32 tiles, Ci padded to 64 */
  test_conv(1, 40, 5, 6, 35, 35, 3, 1, 1, true, true, true);
  /* stride 1 with another kernel and padding (the bf16-copy packing's windows at the edges) */
  test_conv(1, 17, 7, 9, 40, 12, 5, 1, 1, true, false, true);
  test_conv(2, 9, 6, 6, 6, 8, 3, 1, 0, false, false, false);
  /* conv3d_transpose: the decoder's 2^3 stride 2 (disjoint), overlapping with padding and
   * output padding, stride 1, Ci over one chunk */
  test_convt(1, 24, 3, 4, 5, 10, 2, 2, 0, 0);
  test_convt(2, 7, 3, 3, 4, 5, 3, 2, 1, 1);
  test_convt(1, 9, 4, 3, 5, 6, 3, 1, 1, 0);
  test_convt(1, 300, 2, 3, 2, 4, 2, 2, 0, 1);
  /* linear: odd sizes, K over one chunk, more tokens than one tile */
  test_linear(1, 7, 45, 13, true);
  test_linear(2, 150, 300, 70, true);
  test_linear(1, 3, 600, 33, false);
  return check_finish("test-bf16");
}
