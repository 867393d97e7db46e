/* Checks the CPU 3-D convolution kernels: the naive references against hand-computed values
 * and against each other (transposed conv is the adjoint of conv), then the fast kernels
 * (AVX-512 register tiles, im2col + OpenBLAS, im2col + t3d's own GEMM) against the references
 * over many shapes, tilings and thread counts, and once through the CPU backend's op table.
 *
 * Tolerance. Every output is a float sum of n = K + 3 terms (K = Cin*kD*kH*kW products, bias,
 * residual, and the reference's own final rounding), so in any summation order
 *   |y - y_exact| <= gamma_n * sum|terms|,  gamma_n = n*u/(1 - n*u),  u = 2^-24
 * (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). The reference accumulates in
 * double, so it is exact to within one float rounding. We check
 *   max_i |y_i - ref_i| / mag_i <= min(gamma_n, 1e-4),  mag_i = conv(|x|,|w|) + |bias| + |res|
 * i.e. the relative error measured against the magnitude of the terms (immune to
 * cancellation), capped at 1e-4. ReLU is 1-Lipschitz and does not change the bound. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/base/tensor.h"
#include "kernels/backend.h"
#include "kernels/cpu/conv.h"

#include "random-tensor.h"

static t3d_tensor *tabs(const t3d_tensor *t)
{
  t3d_tensor *a = tnew(t->ndim, t->shape, false);
  const float *s = t->data;
  float *d = a->data;
  for (int64_t i = 0; i < t3d_tensor_numel(t); i++) d[i] = fabsf(s[i]);
  return a;
}

static int64_t out_size(int64_t in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static double tolerance(int64_t K)
{
  double u = ldexp(1.0, -24), n = (double)(K + 3);
  double gamma = n * u / (1.0 - n * u);
  return gamma < 1e-4 ? gamma : 1e-4;
}

/* The Winograd kernel (conv_wino.c) rounds in its transforms too, on intermediate values that
 * are sums of up to 8 inputs (B^T d B), 27 halved weights (G w G^T) and 27 products (A^T m A):
 * its error is bounded by gamma against the magnitude of the transformed terms, not mag, and
 * that can exceed mag (in one dimension, w = (1, 0, 0) and d = (0, 0, 1) give mag 0 and
 * transformed terms of 2). TOL_WINO is the factor allowed over the direct bound; measured on
 * these cases the errors stay below the direct bound itself (at most 1.7e-7 against bounds of
 * 3e-6 .. 1e-4; T3D_TEST_CONV_VERBOSE=1 prints each case's). */
#define TOL_WINO 8.0
static double tolerance_wino(int64_t K)
{
  double u = ldexp(1.0, -24), n = (double)(K + 3 + 64);
  return TOL_WINO * n * u / (1.0 - n * u);
}

/* F(4x4x4, 3x3x3): coefficients up to 5 (B^T), 8 (A^T) and 1/24 (G) scale the transformed terms
 * and their rounding against mag further; TOL_WINO4 is the factor allowed over the direct bound
 * (with the 216 transform-domain terms). Measured on these cases: at most 0.92 of the direct bound
 * itself (4.6e-6 at 3 input channels; 1e-7 .. 4.6e-6 over all), against at most 0.03 of it for
 * F(2,3). */
#define TOL_WINO4 16.0
static double tolerance_wino4(int64_t K)
{
  double u = ldexp(1.0, -24), n = (double)(K + 3 + 216);
  return TOL_WINO4 * n * u / (1.0 - n * u);
}

/* max_i |y_i - ref_i| / mag_i, printing the worst element's values on failure by the caller */
static double max_rel_err(const t3d_tensor *y, const t3d_tensor *ref, const t3d_tensor *mag, int64_t *worst)
{
  const float *a = y->data, *b = ref->data, *m = mag->data;
  double e = 0;
  *worst = 0;
  for (int64_t i = 0; i < t3d_tensor_numel(y); i++) {
    double r = fabs((double)a[i] - b[i]) / ((double)m[i] + 1e-30);
    if (r != r) { /* an output never written (y starts as NaN) or a NaN: fails whatever follows */
      *worst = i;
      return r;
    }
    if (r > e) e = r, *worst = i;
  }
  return e;
}

/* ---- references ------------------------------------------------------------------------ */

/* All-ones 3x3x3 input and kernel, pad 1: each output counts the in-bounds taps. */
static void test_ref_counts_taps(void)
{
  t3d_backend be = {.threads = 1};
  int64_t xs[5] = {1, 1, 3, 3, 3}, ws[5] = {1, 1, 3, 3, 3}, bs[1] = {1};
  t3d_tensor *x = tnew(5, xs, false), *w = tnew(5, ws, false), *y = tnew(5, xs, false), *b = tnew(1, bs, false);
  for (int i = 0; i < 27; i++) ((float *)x->data)[i] = ((float *)w->data)[i] = 1.0f;
  ((float *)b->data)[0] = 0.5f;
  t3d_conv3d_params p = {{1, 1, 1}, {1, 1, 1}, false, false};
  CHECK_STATUS(t3d_cpu_conv3d_ref(&be, y, x, w, b, NULL, &p), T3D_OK);
  const float *yd = y->data;
  CHECK_NEAR(yd[0], 8.5, 0);       /* corner: 2x2x2 taps */
  CHECK_NEAR(yd[1], 12.5, 0);      /* edge: 2x2x3 */
  CHECK_NEAR(yd[4], 18.5, 0);      /* face: 2x3x3 */
  CHECK_NEAR(yd[13], 27.5, 0);     /* centre */
  /* transposed, stride 2 kernel 2: every input lands on its own 2x2x2 block, times w */
  int64_t xs2[5] = {1, 1, 1, 1, 2}, ws2[5] = {1, 1, 2, 2, 2}, ys2[5] = {1, 1, 2, 2, 4};
  t3d_tensor *x2 = tnew(5, xs2, false), *w2 = tnew(5, ws2, false), *y2 = tnew(5, ys2, false);
  ((float *)x2->data)[0] = 2.0f, ((float *)x2->data)[1] = -3.0f;
  for (int i = 0; i < 8; i++) ((float *)w2->data)[i] = (float)(i + 1);
  t3d_conv3d_transpose_params tp = {{2, 2, 2}, {0, 0, 0}, {0, 0, 0}};
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(&be, y2, x2, w2, b, &tp), T3D_OK);
  const float *y2d = y2->data;
  for (int kd = 0; kd < 2; kd++)
    for (int kh = 0; kh < 2; kh++)
      for (int ow = 0; ow < 4; ow++) {
        float wv = (float)(kd * 4 + kh * 2 + ow % 2 + 1), xv = ow < 2 ? 2.0f : -3.0f;
        CHECK_NEAR(y2d[(kd * 2 + kh) * 4 + ow], xv * wv + 0.5f, 0);
      }
  t3d_tensor_free(x), t3d_tensor_free(w), t3d_tensor_free(y), t3d_tensor_free(b);
  t3d_tensor_free(x2), t3d_tensor_free(w2), t3d_tensor_free(y2);
}

/* <conv(x, w), g> == <x, conv_transpose(g, w)>: the same w[Co,Ci,...] memory read as
 * ConvTranspose3d weights [Cin'=Co, Cout'=Ci, ...] is the adjoint map. */
static void test_ref_adjoint(int ci, int co, int d, int h, int wd, int k, int s, int pad)
{
  t3d_backend be = {.threads = 1};
  int64_t xs[5] = {2, ci, d, h, wd}, wsh[5] = {co, ci, k, k, k};
  int64_t ys[5] = {2, co, out_size(d, k, s, pad), out_size(h, k, s, pad), out_size(wd, k, s, pad)};
  t3d_tensor *x = tnew(5, xs, true), *w = tnew(5, wsh, true), *g = tnew(5, ys, true);
  t3d_tensor *y = tnew(5, ys, false), *xt = tnew(5, xs, false);
  t3d_conv3d_params p = {{s, s, s}, {pad, pad, pad}, false, false};
  t3d_conv3d_transpose_params tp = {{s, s, s}, {pad, pad, pad}, {0, 0, 0}};
  for (int a = 0; a < 3; a++) /* output_pad recovers the input extent lost to flooring */
    tp.output_pad[a] = (int)(xs[2 + a] - ((ys[2 + a] - 1) * s - 2 * pad + k));
  CHECK_STATUS(t3d_cpu_conv3d_ref(&be, y, x, w, NULL, NULL, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(&be, xt, g, w, NULL, &tp), T3D_OK);
  double lhs = 0, rhs = 0, mag = 0;
  for (int64_t i = 0; i < t3d_tensor_numel(y); i++) {
    lhs += (double)((float *)y->data)[i] * ((float *)g->data)[i];
    mag += fabs((double)((float *)y->data)[i] * ((float *)g->data)[i]);
  }
  for (int64_t i = 0; i < t3d_tensor_numel(x); i++) rhs += (double)((float *)x->data)[i] * ((float *)xt->data)[i];
  CHECK_NEAR(lhs, rhs, 1e-6 * mag);
  t3d_tensor_free(x), t3d_tensor_free(w), t3d_tensor_free(g), t3d_tensor_free(y), t3d_tensor_free(xt);
}

/* ---- fast vs reference ----------------------------------------------------------------- */

typedef struct {
  int n, ci, co, d, h, w, kd, kh, kw, s[3], pad[3];
  bool bias, res, relu;
} conv_case;

/* Whether path runs this case on the Winograd kernel: forced, or AUTO's choice as conv.c's
 * wino_wins states it (at least 8192 outputs, or 1536 with at most 256 input channels where the
 * Winograd GEMM runs in AVX-512; 8 channels either side; test_auto_winograd checks
 * that AUTO does take it there). Every other case keeps the direct bound. */
static bool wino_case(const conv_case *cc, int path)
{
  bool fits = cc->kd == 3 && cc->kh == 3 && cc->kw == 3 && cc->s[0] == 1 && cc->s[1] == 1 && cc->s[2] == 1 &&
              cc->pad[0] == 1 && cc->pad[1] == 1 && cc->pad[2] == 1;
  const int64_t P = (int64_t)cc->d * cc->h * cc->w;
  bool auto_takes = (P >= 8192 || (P >= 1536 && cc->ci <= 256 && t3d_cpu_wino_avx512())) && cc->ci >= 8 && cc->co >= 8;
  return fits && (path == T3D_CPU_CONV_WINOGRAD || (path == T3D_CPU_CONV_AUTO && auto_takes));
}

/* The same for the F(4x4x4, 3x3x3) kernel (AVX-512 only): forced, or AUTO's choice as conv.c's
 * wino4_wins states it (at least 8192 outputs, 8 channels either side, Ci x Co <= 128 x 256). */
static bool wino4_case(const conv_case *cc, int path)
{
  bool fits = cc->kd == 3 && cc->kh == 3 && cc->kw == 3 && cc->s[0] == 1 && cc->s[1] == 1 && cc->s[2] == 1 &&
              cc->pad[0] == 1 && cc->pad[1] == 1 && cc->pad[2] == 1 && t3d_cpu_wino_avx512();
  const int64_t P = (int64_t)cc->d * cc->h * cc->w;
  bool auto_takes = P >= 8192 && cc->ci >= 8 && cc->co >= 8 && cc->ci * cc->co <= 128 * 256;
  return fits && (path == T3D_CPU_CONV_WINOGRAD4 || (path == T3D_CPU_CONV_AUTO && auto_takes));
}

/* AUTO sends a large 3x3x3 "same" layer to the Winograd kernel on an AVX2 + FMA CPU and a small
 * one elsewhere: told apart by the scratch each plan reports. */
static void test_auto_winograd(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
  int64_t xl[5] = {1, 8, 16, 24, 23}, yl[5] = {1, 9, 16, 24, 23}, xs[5] = {1, 8, 4, 5, 6}, ys[5] = {1, 9, 4, 5, 6};
  int64_t ws[5] = {9, 8, 3, 3, 3};
  t3d_tensor *x = tnew(5, xl, false), *y = tnew(5, yl, false), *x2 = tnew(5, xs, false), *y2 = tnew(5, ys, false);
  t3d_tensor *w = tnew(5, ws, false);
  t3d_conv3d_params p = {{1, 1, 1}, {1, 1, 1}, false, false};
  CHECK(t3d_cpu_conv3d_scratch_bytes(y, x, w, &p, 2) ==
        (t3d_cpu_wino_avx512() ? t3d_cpu_conv3d_wino4_scratch_floats(1, 8, 9, 16, 24, 23, 2)
                                   : t3d_cpu_conv3d_wino3_scratch_floats(1, 8, 9, 16, 24, 23, 2)) *
            sizeof(float));
  CHECK(t3d_cpu_conv3d_scratch_bytes(y2, x2, w, &p, 2) !=
        t3d_cpu_conv3d_wino3_scratch_floats(1, 8, 9, 4, 5, 6, 2) * sizeof(float));
  /* on AVX-512 also from 1536 outputs (12 x 12 x 12 = 1728) with at most 256 input channels */
  int64_t xm[5] = {1, 8, 12, 12, 12}, ym[5] = {1, 9, 12, 12, 12};
  t3d_tensor *x3 = tnew(5, xm, false), *y3 = tnew(5, ym, false);
  CHECK((t3d_cpu_conv3d_scratch_bytes(y3, x3, w, &p, 2) ==
         t3d_cpu_conv3d_wino3_scratch_floats(1, 8, 9, 12, 12, 12, 2) * sizeof(float)) == t3d_cpu_wino_avx512());
  t3d_tensor_free(x3), t3d_tensor_free(y3);
  t3d_tensor_free(x), t3d_tensor_free(y), t3d_tensor_free(x2), t3d_tensor_free(y2), t3d_tensor_free(w);
#endif
}

static void test_conv_case(const conv_case *cc)
{
  int64_t xs[5] = {cc->n, cc->ci, cc->d, cc->h, cc->w}, wsh[5] = {cc->co, cc->ci, cc->kd, cc->kh, cc->kw};
  int64_t ys[5] = {cc->n, cc->co, out_size(cc->d, cc->kd, cc->s[0], cc->pad[0]),
                   out_size(cc->h, cc->kh, cc->s[1], cc->pad[1]), out_size(cc->w, cc->kw, cc->s[2], cc->pad[2])};
  int64_t bs[1] = {cc->co};
  t3d_tensor *x = tnew(5, xs, true), *w = tnew(5, wsh, true);
  t3d_tensor *b = cc->bias ? tnew(1, bs, true) : NULL, *r = cc->res ? tnew(5, ys, true) : NULL;
  t3d_tensor *ref = tnew(5, ys, false), *mag = tnew(5, ys, false), *y = tnew(5, ys, false);
  t3d_tensor *xa = tabs(x), *wa = tabs(w), *ba = b ? tabs(b) : NULL, *ra = r ? tabs(r) : NULL;
  t3d_conv3d_params p = {{cc->s[0], cc->s[1], cc->s[2]}, {cc->pad[0], cc->pad[1], cc->pad[2]}, cc->relu, false};
  t3d_conv3d_params pm = p;
  pm.relu = false;
  t3d_backend be1 = {.threads = 1};
  CHECK_STATUS(t3d_cpu_conv3d_ref(&be1, ref, x, w, b, r, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_ref(&be1, mag, xa, wa, ba, ra, &pm), T3D_OK);
  const int64_t K = (int64_t)cc->ci * cc->kd * cc->kh * cc->kw;
  const double tol_direct = tolerance(K);

  static const int threads[] = {1, 3};
  static const size_t budgets[] = {0, 600};
  /* one path past the last: Winograd with its AVX2 GEMM, which AVX-512 CPUs do not pick by themselves */
  for (int vpath = T3D_CPU_CONV_AUTO; vpath <= T3D_CPU_CONV_WINOGRAD4 + 1; vpath++)
    for (int ti = 0; ti < 2; ti++)
      for (int bi = 0; bi < 2; bi++) {
        const int path = vpath > T3D_CPU_CONV_WINOGRAD4 ? T3D_CPU_CONV_WINOGRAD : vpath;
        t3d_backend be = {.threads = threads[ti]};
        t3d_cpu_conv_path old_path = t3d_cpu_conv_force_path((t3d_cpu_conv_path)path);
        size_t old_budget = t3d_cpu_conv_set_col_budget(budgets[bi]);
        int old_width = t3d_cpu_wino_cap_width(vpath > T3D_CPU_CONV_WINOGRAD4 ? 256 : 512);
        memset(y->data, 0xff, t3d_tensor_nbytes(y)); /* NaN: every output must be written */
        CHECK_STATUS(t3d_cpu_conv3d(&be, y, x, w, b, r, &p), T3D_OK);
        t3d_cpu_wino_cap_width(old_width);
        t3d_cpu_conv_set_col_budget(old_budget);
        t3d_cpu_conv_force_path(old_path);
        int64_t wi;
        double e = max_rel_err(y, ref, mag, &wi);
        const bool f4 = wino4_case(cc, path);
        const double tol = f4 ? tolerance_wino4(K) : wino_case(cc, path) ? tolerance_wino(K) : tol_direct;
        if (getenv("T3D_TEST_CONV_VERBOSE") && (f4 || wino_case(cc, path)))
          fprintf(stderr, "winograd %s ci%d co%d %dx%dx%d threads%d: rel err %.3g (direct bound %.3g)\n",
                  f4 ? "F(4,3)" : "F(2,3)", cc->ci, cc->co, cc->d, cc->h, cc->w, threads[ti], e, tol_direct);
        if (!(e <= tol))
          fprintf(stderr,
                  "conv3d n%d ci%d co%d %dx%dx%d k%dx%dx%d s%d,%d,%d p%d,%d,%d bias%d res%d relu%d path%d threads%d "
                  "budget%zu: rel err %.3g > tol %.3g at %lld: %.9g vs ref %.9g (mag %.9g)\n",
                  cc->n, cc->ci, cc->co, cc->d, cc->h, cc->w, cc->kd, cc->kh, cc->kw, cc->s[0], cc->s[1], cc->s[2],
                  cc->pad[0], cc->pad[1], cc->pad[2], cc->bias, cc->res, cc->relu, vpath, threads[ti], budgets[bi], e,
                  tol, (long long)wi, ((float *)y->data)[wi], ((float *)ref->data)[wi], ((float *)mag->data)[wi]);
        CHECK(e <= tol);
      }
  t3d_tensor_free(x), t3d_tensor_free(w), t3d_tensor_free(b), t3d_tensor_free(r), t3d_tensor_free(ref);
  t3d_tensor_free(mag), t3d_tensor_free(y), t3d_tensor_free(xa), t3d_tensor_free(wa), t3d_tensor_free(ba);
  t3d_tensor_free(ra);
}

typedef struct {
  int n, ci, co, d, h, w, k[3], s[3], pad[3], opad[3];
  bool bias;
} convt_case;

static void test_convt_case(const convt_case *cc)
{
  int64_t xs[5] = {cc->n, cc->ci, cc->d, cc->h, cc->w}, wsh[5] = {cc->ci, cc->co, cc->k[0], cc->k[1], cc->k[2]};
  int64_t ys[5] = {cc->n, cc->co, 0, 0, 0}, bs[1] = {cc->co};
  for (int a = 0; a < 3; a++) ys[2 + a] = (xs[2 + a] - 1) * cc->s[a] - 2 * cc->pad[a] + cc->k[a] + cc->opad[a];
  t3d_tensor *x = tnew(5, xs, true), *w = tnew(5, wsh, true), *b = cc->bias ? tnew(1, bs, true) : NULL;
  t3d_tensor *ref = tnew(5, ys, false), *mag = tnew(5, ys, false), *y = tnew(5, ys, false);
  t3d_tensor *xa = tabs(x), *wa = tabs(w), *ba = b ? tabs(b) : NULL;
  t3d_conv3d_transpose_params p = {{cc->s[0], cc->s[1], cc->s[2]}, {cc->pad[0], cc->pad[1], cc->pad[2]},
                                   {cc->opad[0], cc->opad[1], cc->opad[2]}};
  t3d_backend be1 = {.threads = 1};
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(&be1, ref, x, w, b, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(&be1, mag, xa, wa, ba, &p), T3D_OK);
  const double tol = tolerance((int64_t)cc->ci * cc->k[0] * cc->k[1] * cc->k[2]);
  static const int threads[] = {1, 3};
  static const size_t budgets[] = {0, 600};
  for (int path = T3D_CPU_CONV_AVX512; path <= T3D_CPU_CONV_AVX2; path++)
    for (int ti = 0; ti < 2; ti++)
      for (int bi = 0; bi < 2; bi++) {
        t3d_backend be = {.threads = threads[ti]};
        t3d_cpu_conv_path old_path = t3d_cpu_conv_force_path((t3d_cpu_conv_path)path);
        size_t old_budget = t3d_cpu_conv_set_col_budget(budgets[bi]);
        memset(y->data, 0xff, t3d_tensor_nbytes(y));
        CHECK_STATUS(t3d_cpu_conv3d_transpose(&be, y, x, w, b, &p), T3D_OK);
        t3d_cpu_conv_set_col_budget(old_budget);
        t3d_cpu_conv_force_path(old_path);
        int64_t wi;
        double e = max_rel_err(y, ref, mag, &wi);
        if (!(e <= tol))
          fprintf(stderr,
                  "conv3d_transpose n%d ci%d co%d %dx%dx%d k%d,%d,%d s%d,%d,%d p%d,%d,%d op%d,%d,%d bias%d path%d "
                  "threads%d budget%zu: rel err %.3g > tol %.3g at %lld: %.9g vs ref %.9g\n",
                  cc->n, cc->ci, cc->co, cc->d, cc->h, cc->w, cc->k[0], cc->k[1], cc->k[2], cc->s[0], cc->s[1],
                  cc->s[2], cc->pad[0], cc->pad[1], cc->pad[2], cc->opad[0], cc->opad[1], cc->opad[2], cc->bias, path,
                  threads[ti], budgets[bi], e, tol, (long long)wi, ((float *)y->data)[wi],
                  ((float *)ref->data)[wi]);
        CHECK(e <= tol);
      }
  t3d_tensor_free(x), t3d_tensor_free(w), t3d_tensor_free(b), t3d_tensor_free(ref), t3d_tensor_free(mag);
  t3d_tensor_free(y), t3d_tensor_free(xa), t3d_tensor_free(wa), t3d_tensor_free(ba);
}

/* Through the public API: t3d_op_conv3d / t3d_op_conv3d_transpose on the CPU backend reach
 * these kernels (op table wiring, backend memory) and match the references. */
static void test_backend_table(void)
{
  t3d_backend *be = NULL;
  t3d_backend_params bp = t3d_backend_default_params();
  bp.threads = 2;
  CHECK_STATUS(t3d_backend_cpu_create(&be, &bp), T3D_OK);
  if (!be) return;
  CHECK(t3d_backend_supports(be, T3D_OP_CONV3D, T3D_F32));
  CHECK(t3d_backend_supports(be, T3D_OP_CONV3D_TRANSPOSE, T3D_F32));
  int64_t xs[5] = {1, 5, 6, 7, 8}, wsh[5] = {9, 5, 3, 3, 3}, ys[5] = {1, 9, 6, 7, 8}, bs[1] = {9};
  int64_t tws[5] = {9, 4, 2, 2, 2}, tys[5] = {1, 4, 12, 14, 16};
  t3d_tensor *x = tnew(5, xs, true), *w = tnew(5, wsh, true), *b = tnew(1, bs, true), *r = tnew(5, ys, true);
  t3d_tensor *ref = tnew(5, ys, false), *mag = tnew(5, ys, false), *out = tnew(5, ys, false);
  t3d_tensor *tw = tnew(5, tws, true), *tref = tnew(5, tys, false), *tout = tnew(5, tys, false);
  t3d_tensor dx = {0}, dw = {0}, db = {0}, dr = {0}, dy = {0}, dtw = {0}, dty = {0};
  CHECK_STATUS(t3d_backend_tensor_new(be, &dx, T3D_F32, 5, xs), T3D_OK);
  CHECK_STATUS(t3d_backend_tensor_new(be, &dw, T3D_F32, 5, wsh), T3D_OK);
  CHECK_STATUS(t3d_backend_tensor_new(be, &db, T3D_F32, 1, bs), T3D_OK);
  CHECK_STATUS(t3d_backend_tensor_new(be, &dr, T3D_F32, 5, ys), T3D_OK);
  CHECK_STATUS(t3d_backend_tensor_new(be, &dy, T3D_F32, 5, ys), T3D_OK);
  CHECK_STATUS(t3d_backend_tensor_new(be, &dtw, T3D_F32, 5, tws), T3D_OK);
  CHECK_STATUS(t3d_backend_tensor_new(be, &dty, T3D_F32, 5, tys), T3D_OK);
  CHECK_STATUS(t3d_backend_upload(be, &dx, x), T3D_OK);
  CHECK_STATUS(t3d_backend_upload(be, &dw, w), T3D_OK);
  CHECK_STATUS(t3d_backend_upload(be, &db, b), T3D_OK);
  CHECK_STATUS(t3d_backend_upload(be, &dr, r), T3D_OK);
  CHECK_STATUS(t3d_backend_upload(be, &dtw, tw), T3D_OK);
  t3d_conv3d_params p = {{1, 1, 1}, {1, 1, 1}, true, false};
  t3d_conv3d_transpose_params tp = {{2, 2, 2}, {0, 0, 0}, {0, 0, 0}};
  CHECK_STATUS(t3d_op_conv3d(be, &dy, &dx, &dw, &db, &dr, &p), T3D_OK);
  CHECK_STATUS(t3d_backend_download(be, out, &dy), T3D_OK);
  /* the transposed conv reads the conv's output back: x' = y[1,9,...], w'[9,4,2,2,2] */
  CHECK_STATUS(t3d_op_conv3d_transpose(be, &dty, &dy, &dtw, NULL, &tp), T3D_OK);
  CHECK_STATUS(t3d_backend_download(be, tout, &dty), T3D_OK);

  t3d_backend b1 = {.threads = 1};
  t3d_tensor *xa = tabs(x), *wa = tabs(w), *ba = tabs(b), *ra = tabs(r);
  t3d_conv3d_params pm = p;
  pm.relu = false;
  CHECK_STATUS(t3d_cpu_conv3d_ref(&b1, ref, x, w, b, r, &p), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_ref(&b1, mag, xa, wa, ba, ra, &pm), T3D_OK);
  int64_t wi;
  double e = max_rel_err(out, ref, mag, &wi);
  if (!(e <= tolerance(5 * 27)))
    fprintf(stderr, "t3d_op_conv3d: rel err %.3g at %lld: %.9g vs ref %.9g\n", e, (long long)wi,
            ((float *)out->data)[wi], ((float *)ref->data)[wi]);
  CHECK(e <= tolerance(5 * 27));
  /* transposed: reference on the backend's own conv output, magnitude from |.| inputs */
  t3d_tensor *oa = tabs(out), *twa = tabs(tw), *tmag = tnew(5, tys, false);
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(&b1, tref, out, tw, NULL, &tp), T3D_OK);
  CHECK_STATUS(t3d_cpu_conv3d_transpose_ref(&b1, tmag, oa, twa, NULL, &tp), T3D_OK);
  e = max_rel_err(tout, tref, tmag, &wi);
  if (!(e <= tolerance(9 * 8)))
    fprintf(stderr, "t3d_op_conv3d_transpose: rel err %.3g at %lld: %.9g vs ref %.9g\n", e, (long long)wi,
            ((float *)tout->data)[wi], ((float *)tref->data)[wi]);
  CHECK(e <= tolerance(9 * 8));

  t3d_backend_tensor_free(be, &dx), t3d_backend_tensor_free(be, &dw), t3d_backend_tensor_free(be, &db);
  t3d_backend_tensor_free(be, &dr), t3d_backend_tensor_free(be, &dy), t3d_backend_tensor_free(be, &dtw);
  t3d_backend_tensor_free(be, &dty);
  t3d_tensor_free(x), t3d_tensor_free(w), t3d_tensor_free(b), t3d_tensor_free(r), t3d_tensor_free(ref);
  t3d_tensor_free(mag), t3d_tensor_free(out), t3d_tensor_free(tw), t3d_tensor_free(tref), t3d_tensor_free(tout);
  t3d_tensor_free(xa), t3d_tensor_free(wa), t3d_tensor_free(ba), t3d_tensor_free(ra), t3d_tensor_free(oa);
  t3d_tensor_free(twa), t3d_tensor_free(tmag);
  t3d_backend_free(be);
}

int main(void)
{
  test_auto_winograd();
  test_ref_counts_taps();
  test_ref_adjoint(3, 5, 7, 6, 9, 3, 2, 1);
  test_ref_adjoint(2, 4, 9, 8, 7, 5, 3, 2);
  test_ref_adjoint(4, 3, 5, 6, 4, 1, 1, 0);

  /* n ci co  d  h  w  kd kh kw  stride   pad      bias res relu */
  static const conv_case cases[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 1, {1, 1, 1}, {0, 0, 0}, false, false, false},
    {1, 3, 5, 6, 7, 8, 1, 1, 1, {1, 1, 1}, {0, 0, 0}, true, false, false},      /* direct GEMM */
    {2, 9, 13, 5, 6, 7, 1, 1, 1, {1, 1, 1}, {0, 0, 0}, true, true, true},
    {2, 9, 13, 9, 10, 11, 1, 1, 1, {2, 2, 2}, {0, 0, 0}, true, true, true},    /* strided 1x1x1 */
    {1, 5, 6, 7, 8, 9, 1, 1, 1, {3, 2, 1}, {1, 0, 2}, false, true, false},     /* padded 1x1x1 */
    {1, 1, 6, 13, 12, 11, 7, 7, 7, {2, 2, 2}, {3, 3, 3}, true, false, true},   /* conv1 shape */
    {2, 3, 7, 9, 10, 11, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},
    {1, 5, 9, 9, 8, 7, 3, 3, 3, {2, 2, 2}, {1, 1, 1}, false, false, true},
    {1, 4, 10, 10, 11, 12, 2, 2, 2, {2, 2, 2}, {0, 0, 0}, true, false, false},
    {1, 2, 3, 11, 10, 9, 5, 5, 5, {3, 3, 3}, {2, 2, 2}, true, true, false},
    {1, 3, 4, 8, 9, 10, 3, 2, 5, {1, 2, 3}, {0, 1, 2}, true, false, true},      /* anisotropic */
    {2, 2, 3, 4, 5, 6, 5, 5, 5, {1, 1, 1}, {3, 3, 3}, true, true, true},       /* pad > k/2 */
    {1, 3, 5, 14, 15, 16, 3, 3, 3, {1, 1, 1}, {0, 0, 0}, true, false, false},  /* several P tiles */
    {1, 100, 20, 6, 6, 6, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},    /* K chunks */
    {1, 40, 70, 4, 5, 3, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},     /* M blocks */
    {3, 7, 37, 5, 4, 6, 1, 1, 1, {1, 1, 1}, {0, 0, 0}, false, true, true},
    {1, 2, 3, 3, 3, 3, 3, 3, 3, {3, 3, 3}, {0, 0, 0}, true, false, false},     /* one output */
    {2, 3, 10, 5, 7, 9, 5, 5, 5, {1, 1, 1}, {2, 2, 2}, true, true, true},      /* "same" k5 */
    {1, 4, 9, 6, 5, 13, 3, 1, 5, {1, 1, 1}, {1, 0, 2}, true, false, true},     /* "same" anisotropic */
    {1, 17, 24, 3, 9, 20, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, false, true, false},  /* rows not 48-aligned */
    {1, 3, 5, 3, 4, 41, 1, 1, 1, {2, 2, 2}, {0, 0, 0}, true, true, false},    /* stride-2 rows of 21: vector copy + tail */
    {1, 2, 4, 5, 6, 38, 3, 3, 3, {2, 2, 2}, {1, 1, 1}, true, false, true},     /* stride-2 3x3x3, padded rows */
    {1, 2, 5, 4, 5, 70, 3, 3, 3, {1, 1, 1}, {0, 0, 0}, true, false, true},     /* wide rows: im2col */
    {1, 1, 9, 9, 8, 90, 7, 7, 7, {2, 2, 2}, {3, 3, 3}, true, true, true},      /* wide, stride 2 */
    {2, 3, 4, 5, 4, 77, 3, 3, 3, {1, 2, 3}, {1, 1, 2}, false, false, false},   /* wide, stride 3 */
    /* the direct 3x3x3 kernel (conv_direct.c): 24-wide row segments, masked row ends */
    {2, 3, 5, 1, 1, 50, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},      /* D = H = 1, an interior segment */
    {1, 17, 16, 4, 3, 73, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},    /* the decoder's last block, ragged */
    {1, 2, 6, 3, 2, 1, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, false, true},      /* rows of 1 */
    {1, 5, 33, 3, 4, 26, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, false, true, false},   /* 33 channels: a block of 1 */
    {1, 4, 8, 2, 3, 24, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, false},     /* one full segment */
    {2, 64, 13, 5, 9, 37, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},    /* Winograd: items span rows */
    {1, 8, 9, 16, 24, 23, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},    /* AUTO's Winograd (P >= 8192) */
    {1, 8, 9, 3, 4, 64, 3, 3, 3, {1, 1, 1}, {1, 1, 1}, true, true, true},     /* rows of whole lines (streamed) */
    /* the width-stride-2 row-pointer path (AUTO from 64 output columns): phase rows, ragged tiles */
    {1, 1, 6, 5, 6, 131, 7, 7, 7, {2, 2, 2}, {3, 3, 3}, true, true, true},    /* the stem's shape, 66 columns */
    {1, 2, 9, 3, 3, 224, 7, 7, 7, {2, 2, 2}, {3, 3, 3}, true, true, true},    /* the stem's 112 columns: 48 + 32 + 32 */
    {1, 1, 8, 3, 2, 128, 7, 7, 7, {2, 2, 2}, {3, 3, 3}, false, true, true},   /* 64 columns: 32 + 32 */
    {2, 3, 5, 4, 3, 140, 3, 3, 3, {1, 2, 2}, {1, 1, 1}, true, false, true},   /* 70 columns, K chunk of 7 x 27 */
    {1, 9, 7, 3, 4, 129, 3, 2, 4, {2, 1, 2}, {1, 0, 2}, false, true, false},  /* even kernel width, 65 columns */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_conv_case(&cases[i]);
  /* again with every output of the AVX-512 kernels streamed out (non-temporal stores, whole
   * aligned 16-float lines; masked ragged ends), which by default only outputs of 64 MiB take */
  const int64_t old_stream = t3d_cpu_conv_set_stream_min(0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_conv_case(&cases[i]);
  t3d_cpu_conv_set_stream_min(old_stream);

  /* n ci co  d h w  kernel     stride    pad      output_pad  bias */
  static const convt_case tcases[] = {
    {1, 4, 6, 5, 6, 7, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {0, 0, 0}, true},  /* the decoder's upsampling */
    {2, 9, 5, 3, 4, 5, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {0, 0, 0}, false},
    {1, 3, 4, 4, 5, 6, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, true},
    {1, 5, 3, 4, 5, 3, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 0, 1}, true},
    {2, 3, 2, 3, 4, 5, {5, 4, 3}, {3, 2, 1}, {2, 1, 0}, {2, 1, 0}, true},
    {1, 7, 33, 4, 4, 4, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, false},
    {1, 20, 3, 6, 5, 4, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, true},
    {2, 5, 7, 3, 4, 37, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {0, 0, 0}, true},  /* vector interleave */
    {1, 3, 4, 4, 3, 5, {3, 3, 3}, {3, 3, 3}, {0, 0, 0}, {2, 1, 0}, true},   /* disjoint, k3 */
    {1, 6, 5, 2, 3, 19, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {0, 1, 1}, false},
  };
  for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) test_convt_case(&tcases[i]);
  test_backend_table();
  return check_finish("test-conv");
}
