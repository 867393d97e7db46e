/* Unit tests of the CPU backend's non-convolution ops against brute-force loops and hand-computed
 * values (odd sizes, batches, masks, padded pools, resampling up and down), of the GEMM in all
 * transpose modes, and of the t3d_op_* wrappers' error reporting. Not PyTorch parity (tests/reference). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/status.h"
#include "core/base/tensor.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu.h"
#include "tests/check.h"

static t3d_backend *be;
static unsigned rng = 12345u;

static float urand(float lo, float hi)
{
  rng = rng * 1664525u + 1013904223u;
  return lo + (hi - lo) * (float)((rng >> 8) & 0xFFFFFF) / (float)0x1000000;
}

/* A backend tensor (host memory for the CPU backend); dims beyond ndim are ignored. */
static t3d_tensor mk(t3d_dtype dtype, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t d4)
{
  int64_t shape[5] = {d0, d1, d2, d3, d4};
  t3d_tensor t;
  t3d_status s = t3d_backend_tensor_new(be, &t, dtype, ndim, shape);
  if (s != T3D_OK) {
    fprintf(stderr, "cannot allocate a test tensor: %s\n", t3d_error_detail());
    exit(1);
  }
  return t;
}

static t3d_tensor mk_rand(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t d4, float lo, float hi)
{
  t3d_tensor t = mk(T3D_F32, ndim, d0, d1, d2, d3, d4);
  float *p = t.data;
  for (int64_t i = 0; i < t3d_tensor_numel(&t); i++)
    p[i] = urand(lo, hi);
  return t;
}

static void rm(t3d_tensor *t) { t3d_backend_tensor_free(be, t); }

static float *F(const t3d_tensor *t) { return t->data; }

/* Elementwise |got - want| <= atol + rtol |want|; NaN must match NaN. Reports the first miss. */
static void check_close(const char *what, const float *got, const double *want, int64_t n, double rtol, double atol)
{
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++) {
    bool ok = isnan(want[i])   ? isnan(got[i])
              : isinf(want[i]) ? got[i] == want[i]
                               : fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i]);
    if (!ok && bad++ == 0)
      first = i;
  }
  check_count++;
  if (bad) {
    check_failures++;
    fprintf(stderr, "FAIL: %s: %lld of %lld values off; first at %lld: got %.9g want %.9g\n", what, (long long)bad,
            (long long)n, (long long)first, (double)got[first], want[first]);
  }
}

static bool detail_has(const char *needle)
{
  bool ok = strstr(t3d_error_detail(), needle) != NULL;
  if (!ok)
    fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", t3d_error_detail(), needle);
  return ok;
}

/* ---- plumbing ------------------------------------------------------------------------------ */

static void test_names_sizes_and_params(void)
{
  CHECK(strcmp(t3d_op_name(T3D_OP_LINEAR), "linear") == 0);
  CHECK(strcmp(t3d_op_name(T3D_OP_RESAMPLE_TRILINEAR), "resample_trilinear") == 0);
  CHECK(strcmp(t3d_op_name(T3D_OP_COUNT), "unknown op") == 0);
  for (int op = 0; op < T3D_OP_COUNT; op++) {
    CHECK(strcmp(t3d_op_name((t3d_op)op), "unknown op") != 0);
    CHECK(t3d_backend_supports(be, (t3d_op)op, T3D_F32));
    CHECK(!t3d_backend_supports(be, (t3d_op)op, T3D_F16));
  }
  CHECK(!t3d_backend_supports(NULL, T3D_OP_RELU, T3D_F32));
  CHECK_INT_EQ(t3d_backend_default_params().threads, 0);
  CHECK_INT_EQ(t3d_conv_out_size(224, 7, 2, 3), 112);
  CHECK_INT_EQ(t3d_conv_out_size(7, 3, 2, 1), 4);
  CHECK_INT_EQ(t3d_conv_out_size(5, 3, 1, 0), 3);
  CHECK_INT_EQ(t3d_conv_out_size(2, 5, 1, 1), 0); /* does not fit */
  CHECK_INT_EQ(t3d_conv_out_size(8, 3, 0, 1), 0); /* invalid stride */
  CHECK_INT_EQ(t3d_conv_transpose_out_size(4, 2, 2, 0, 0), 8);
  CHECK_INT_EQ(t3d_conv_transpose_out_size(3, 3, 2, 1, 1), 6);
  CHECK_INT_EQ(t3d_conv_transpose_out_size(3, 3, 2, 1, 2), 0); /* output_pad must be < stride */

  t3d_backend *b2 = NULL;
  t3d_backend_params p = {.threads = -1};
  CHECK_STATUS(t3d_backend_cpu_create(&b2, &p), T3D_ERR_INVALID_ARG);
  CHECK(b2 == NULL);
  CHECK_STATUS(t3d_backend_cpu_create(&b2, NULL), T3D_OK);
  CHECK(b2 && b2->threads >= 1);
  t3d_backend_free(b2);
  t3d_backend_free(NULL);
}

static void test_tensor_upload_download(void)
{
  int64_t shape[2] = {3, 5}, other[2] = {5, 3};
  t3d_tensor *host = NULL, *back = NULL, *wrong = NULL, dev;
  CHECK_STATUS(t3d_tensor_new(&host, T3D_F32, 2, shape), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&back, T3D_F32, 2, shape), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&wrong, T3D_F32, 2, other), T3D_OK);
  for (int i = 0; i < 15; i++)
    F(host)[i] = (float)i * 0.5f - 3.0f;
  CHECK_STATUS(t3d_backend_tensor_new(be, &dev, T3D_F32, 2, shape), T3D_OK);
  CHECK(!dev.owned);
  CHECK_STATUS(t3d_backend_upload(be, &dev, host), T3D_OK);
  CHECK_STATUS(t3d_backend_download(be, back, &dev), T3D_OK);
  CHECK(memcmp(host->data, back->data, 15 * sizeof(float)) == 0);
  CHECK_STATUS(t3d_backend_upload(be, &dev, wrong), T3D_ERR_SHAPE);
  CHECK(detail_has("f32[3,5]") && detail_has("f32[5,3]"));
  CHECK_STATUS(be->ops->synchronize(be), T3D_OK);
  rm(&dev);
  CHECK(dev.data == NULL);
  rm(&dev); /* twice is harmless */
  t3d_backend_tensor_free(be, NULL);
  t3d_tensor_free(host);
  t3d_tensor_free(back);
  t3d_tensor_free(wrong);
}

/* ---- elementwise and row ops ------------------------------------------------------------- */

static void test_relu_add(void)
{
  t3d_tensor x = mk_rand(3, 3, 7, 1001, 0, 0, -2, 2), y = mk(T3D_F32, 3, 3, 7, 1001, 0, 0);
  t3d_tensor b = mk_rand(3, 3, 7, 1001, 0, 0, -2, 2);
  int64_t n = t3d_tensor_numel(&x);
  double *want = malloc((size_t)n * sizeof *want);
  F(&x)[5] = NAN;
  for (int64_t i = 0; i < n; i++)
    want[i] = isnan(F(&x)[i]) ? NAN : F(&x)[i] < 0 ? 0.0 : F(&x)[i];
  CHECK_STATUS(t3d_op_relu(be, &y, &x), T3D_OK);
  check_close("relu", F(&y), want, n, 0, 0);
  for (int64_t i = 0; i < n; i++)
    want[i] = (double)(F(&y)[i] + F(&b)[i]);
  CHECK_STATUS(t3d_op_add(be, &y, &y, &b), T3D_OK); /* in place into a */
  check_close("add in place", F(&y), want, n, 0, 0);
  for (int64_t i = 0; i < n; i++)
    want[i] = isnan(F(&x)[i]) ? NAN : F(&x)[i] < 0 ? 0.0 : F(&x)[i];
  CHECK_STATUS(t3d_op_relu(be, &x, &x), T3D_OK); /* in place */
  check_close("relu in place", F(&x), want, n, 0, 0);
  free(want);
  rm(&x);
  rm(&y);
  rm(&b);
}

static void test_gelu(void)
{
  t3d_tensor x = mk_rand(2, 5, 2003, 0, 0, 0, -8, 8), y = mk(T3D_F32, 2, 5, 2003, 0, 0, 0);
  int64_t n = t3d_tensor_numel(&x);
  double *want = malloc((size_t)n * sizeof *want);
  const float fixed[6] = {0.0f, 1.0f, -1.0f, 3.0f, -3.0f, -10.0f};
  memcpy(F(&x), fixed, sizeof fixed);
  for (int64_t i = 0; i < n; i++) {
    double v = F(&x)[i];
    want[i] = 0.5 * v * erfc(-v / sqrt(2.0));
  }
  CHECK_STATUS(t3d_op_gelu(be, &y, &x), T3D_OK);
  check_close("gelu", F(&y), want, n, 2e-6, 1e-7);
  CHECK_NEAR(F(&y)[1], 0.841344746, 1e-6); /* hand values: x * Phi(x) */
  CHECK_NEAR(F(&y)[2], -0.158655254, 1e-6);
  CHECK_NEAR(F(&y)[4], -0.004049694, 1e-7);
  free(want);
  rm(&x);
  rm(&y);
}

/* Every GELU path this CPU has (portable C, AVX2, AVX-512 with its |x| < 4 table; T3D_CPU_GELU caps
 * the choice) on a dense grid of [-12, 12], the table's interval edges and the special values.
 * Relative tolerance 2e-6 from -3 up, 5e-6 on [-6, -3), 2e-5 below (values under 1e-9); the
 * reference path measures 1.1e-6, 3.7e-6 and 1.4e-5 there. */
static void test_gelu_paths(void)
{
  const char *caps[3] = {"c", "avx2", NULL};
  const float special[12] = {NAN, INFINITY, -INFINITY, 100.0f, -100.0f, -0.0f,
                             4.0f, -4.0f, 3.9999998f, -3.9999998f, 0.25f, -0.2499999f};
  const int64_t n = 200003; /* odd: the last vector is partial */
  t3d_tensor x = mk(T3D_F32, 1, n, 0, 0, 0, 0), y = mk(T3D_F32, 1, n, 0, 0, 0, 0);
  double *want = malloc((size_t)n * sizeof *want);
  int64_t split = 0, split3 = 0;
  for (int64_t i = 0; i < n; i++)
    F(&x)[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
  memcpy(F(&x) + 1000, special, sizeof special);
  for (int64_t i = 0; i < n; i++) {
    double v = F(&x)[i];
    want[i] = isinf(v) && v < 0 ? NAN : isinf(v) ? v : 0.5 * v * erfc(-v / sqrt(2.0));
    if (F(&x)[i] < -6.0f)
      split = i + 1;
    if (F(&x)[i] < -3.0f)
      split3 = i + 1;
  }
  for (int c = 0; c < 3; c++) {
    char what[64];
    if (caps[c])
      setenv("T3D_CPU_GELU", caps[c], 1);
    else
      unsetenv("T3D_CPU_GELU");
    CHECK_STATUS(t3d_op_gelu(be, &y, &x), T3D_OK);
    snprintf(what, sizeof what, "gelu path %s, x < -6", caps[c] ? caps[c] : "best");
    check_close(what, F(&y), want, split, 2e-5, 0);
    snprintf(what, sizeof what, "gelu path %s, -6 <= x < -3", caps[c] ? caps[c] : "best");
    check_close(what, F(&y) + split, want + split, split3 - split, 5e-6, 0);
    snprintf(what, sizeof what, "gelu path %s, x >= -3", caps[c] ? caps[c] : "best");
    check_close(what, F(&y) + split3, want + split3, n - split3, 2e-6, 0);
  }
  unsetenv("T3D_CPU_GELU");
  free(want);
  rm(&x);
  rm(&y);
}

static void softmax_ref(double *y, const float *x, int64_t rows, int64_t n)
{
  for (int64_t r = 0; r < rows; r++) {
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++)
      mx = fmax(mx, x[r * n + i]);
    for (int64_t i = 0; i < n; i++)
      s += exp(x[r * n + i] - mx);
    for (int64_t i = 0; i < n; i++)
      y[r * n + i] = exp(x[r * n + i] - mx) / s;
  }
}

static void test_softmax(void)
{
  const int64_t shapes[3][3] = {{3, 1, 7}, {2, 3, 1000}, {1, 4, 1}};
  for (int c = 0; c < 3; c++) {
    const int64_t *s = shapes[c];
    t3d_tensor x = mk_rand(3, s[0], s[1], s[2], 0, 0, -30, 30), y = mk(T3D_F32, 3, s[0], s[1], s[2], 0, 0);
    int64_t n = t3d_tensor_numel(&x), rows = n / s[2];
    double *want = malloc((size_t)n * sizeof *want);
    F(&x)[0] = 1000.0f; /* large logits must not overflow */
    F(&x)[n - 1] = -INFINITY; /* a -inf logit gets probability 0 */
    if (s[2] == 1)
      F(&x)[n - 1] = 3.0f;
    softmax_ref(want, F(&x), rows, s[2]);
    CHECK_STATUS(t3d_op_softmax(be, &y, &x), T3D_OK);
    check_close("softmax", F(&y), want, n, 1e-5, 1e-7);
    CHECK_STATUS(t3d_op_softmax(be, &x, &x), T3D_OK); /* in place */
    check_close("softmax in place", F(&x), want, n, 1e-5, 1e-7);
    free(want);
    rm(&x);
    rm(&y);
  }
  /* documented: a row of all -inf gives NaN, as torch.softmax */
  t3d_tensor x = mk(T3D_F32, 2, 2, 3, 0, 0, 0);
  float vals[6] = {-INFINITY, -INFINITY, -INFINITY, 0.0f, logf(3.0f), 0.0f};
  memcpy(x.data, vals, sizeof vals);
  CHECK_STATUS(t3d_op_softmax(be, &x, &x), T3D_OK);
  CHECK(isnan(F(&x)[0]) && isnan(F(&x)[2]));
  CHECK_NEAR(F(&x)[3], 0.2, 1e-7);
  CHECK_NEAR(F(&x)[4], 0.6, 1e-7);
  rm(&x);
}

/* Widths below 64 take the portable row loop, wider ones the AVX-512 row (where the CPU has it),
 * and widths not a multiple of 16 its scalar tail, which must survive y == x. */
static void test_layernorm_width(int64_t E)
{
  const int64_t rows = 6;
  t3d_tensor x = mk_rand(3, 2, 3, E, 0, 0, 999, 1001), y = mk(T3D_F32, 3, 2, 3, E, 0, 0);
  t3d_tensor g = mk_rand(1, E, 0, 0, 0, 0, 0.5f, 1.5f), b = mk_rand(1, E, 0, 0, 0, 0, -1, 1);
  double *want = malloc((size_t)(rows * E) * sizeof *want);
  double *want_plain = malloc((size_t)(rows * E) * sizeof *want_plain);
  for (int64_t r = 0; r < rows; r++) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < E; i++)
      mean += F(&x)[r * E + i];
    mean /= E;
    for (int64_t i = 0; i < E; i++)
      var += (F(&x)[r * E + i] - mean) * (F(&x)[r * E + i] - mean);
    var /= E; /* biased, as F.layer_norm */
    for (int64_t i = 0; i < E; i++) {
      want_plain[r * E + i] = (F(&x)[r * E + i] - mean) / sqrt(var + 1e-5);
      want[r * E + i] = want_plain[r * E + i] * F(&g)[i] + F(&b)[i];
    }
  }
  CHECK_STATUS(t3d_op_layernorm(be, &y, &x, &g, &b, 1e-5f), T3D_OK);
  check_close("layernorm", F(&y), want, rows * E, 1e-4, 2e-5);
  CHECK_STATUS(t3d_op_layernorm(be, &y, &x, NULL, NULL, 1e-5f), T3D_OK);
  check_close("layernorm without affine", F(&y), want_plain, rows * E, 1e-4, 2e-5);
  CHECK_STATUS(t3d_op_layernorm(be, &x, &x, &g, &b, 1e-5f), T3D_OK);
  check_close("layernorm in place", F(&x), want, rows * E, 1e-4, 2e-5);
  CHECK_STATUS(t3d_op_layernorm(be, &y, &x, &g, &b, -1.0f), T3D_ERR_INVALID_ARG);
  rm(&x);
  rm(&y);
  rm(&g);
  rm(&b);
  free(want);
  free(want_plain);
}

static void test_layernorm(void)
{
  test_layernorm_width(37);
  test_layernorm_width(65);
  test_layernorm_width(200);
}

static void test_argmax(void)
{
  /* x[2,3,5]: channel-wise ties resolve to the first; NaN wins, first NaN first */
  t3d_tensor x = mk(T3D_F32, 3, 2, 3, 5, 0, 0), y = mk(T3D_I32, 2, 2, 5, 0, 0, 0);
  const float v[30] = {1, 5, 2, 0, NAN, /**/ 3, 5, 2, NAN, 1, /**/ 2, 4, 2, NAN, 2,
                       -1, -2, -3, 0, 0, /**/ -1, -1, -3, 0, 7, /**/ -2, -1, -2, 1, 7};
  const int32_t want[10] = {1, 0, 0, 1, 0, 0, 1, 2, 2, 1};
  memcpy(x.data, v, sizeof v);
  CHECK_STATUS(t3d_op_argmax(be, &y, &x), T3D_OK);
  for (int i = 0; i < 10; i++)
    CHECK_INT_EQ(((int32_t *)y.data)[i], want[i]);
  rm(&x);
  rm(&y);

  /* 5-D, many positions (crosses the 256-position runs), brute force */
  x = mk_rand(5, 2, 7, 5, 9, 13, -1, 1);
  y = mk(T3D_I32, 4, 2, 5, 9, 13, 0);
  CHECK_STATUS(t3d_op_argmax(be, &y, &x), T3D_OK);
  int64_t S = 5 * 9 * 13, bad = 0;
  for (int64_t n = 0; n < 2; n++)
    for (int64_t s = 0; s < S; s++) {
      int32_t best = 0;
      for (int32_t c = 1; c < 7; c++)
        if (F(&x)[(n * 7 + c) * S + s] > F(&x)[(n * 7 + best) * S + s])
          best = c;
      bad += ((int32_t *)y.data)[n * S + s] != best;
    }
  CHECK_INT_EQ(bad, 0);
  rm(&x);
  rm(&y);
}

static void test_concat(void)
{
  t3d_tensor a = mk_rand(5, 2, 3, 2, 3, 5, -1, 1), b = mk_rand(5, 2, 1, 2, 3, 5, -1, 1);
  t3d_tensor y = mk(T3D_F32, 5, 2, 4, 2, 3, 5);
  const int64_t S = 30;
  int64_t bad = 0;
  CHECK_STATUS(t3d_op_concat(be, &y, &a, &b), T3D_OK);
  for (int64_t n = 0; n < 2; n++)
    for (int64_t c = 0; c < 4; c++)
      for (int64_t s = 0; s < S; s++) {
        float want = c < 3 ? F(&a)[(n * 3 + c) * S + s] : F(&b)[(n * 1 + c - 3) * S + s];
        bad += F(&y)[(n * 4 + c) * S + s] != want;
      }
  CHECK_INT_EQ(bad, 0);
  rm(&a);
  rm(&b);
  rm(&y);

  /* N = 1 with a already in place as y's head (the decoder's transposed convolution writes
   * there): only b is copied; with N > 1 (a's samples are not contiguous in y) it stays an alias
   * error */
  t3d_tensor y1 = mk_rand(5, 1, 4, 2, 3, 5, -1, 1), b1 = mk_rand(5, 1, 1, 2, 3, 5, -1, 1);
  t3d_tensor head = t3d_tensor_view(T3D_F32, 5, (int64_t[]){1, 3, 2, 3, 5}, y1.data);
  float keep[90];
  memcpy(keep, y1.data, sizeof keep);
  CHECK_STATUS(t3d_op_concat(be, &y1, &head, &b1), T3D_OK);
  CHECK(memcmp(keep, y1.data, sizeof keep) == 0);
  CHECK(memcmp(F(&y1) + 90, F(&b1), 30 * sizeof(float)) == 0);
  t3d_tensor y2 = mk(T3D_F32, 5, 2, 4, 2, 3, 5), b2 = mk_rand(5, 2, 1, 2, 3, 5, -1, 1);
  t3d_tensor head2 = t3d_tensor_view(T3D_F32, 5, (int64_t[]){2, 3, 2, 3, 5}, y2.data);
  CHECK_STATUS(t3d_op_concat(be, &y2, &head2, &b2), T3D_ERR_INVALID_ARG);
  rm(&y1);
  rm(&b1);
  rm(&y2);
  rm(&b2);
}

static void test_embedding(void)
{
  t3d_tensor table = mk_rand(2, 9, 6, 0, 0, 0, -1, 1), ids = mk(T3D_I32, 2, 2, 3, 0, 0, 0);
  t3d_tensor y = mk(T3D_F32, 3, 2, 3, 6, 0, 0);
  int32_t *id = ids.data;
  const int32_t v[6] = {0, 8, 3, 3, 1, 7};
  int64_t bad = 0;
  memcpy(id, v, sizeof v);
  CHECK_STATUS(t3d_op_embedding(be, &y, &ids, &table), T3D_OK);
  for (int i = 0; i < 6; i++)
    for (int e = 0; e < 6; e++)
      bad += F(&y)[i * 6 + e] != F(&table)[v[i] * 6 + e];
  CHECK_INT_EQ(bad, 0);
  id[5] = 9;
  CHECK_STATUS(t3d_op_embedding(be, &y, &ids, &table), T3D_ERR_INVALID_ARG);
  CHECK(detail_has("id 9") && detail_has("[1,2]"));
  id[5] = 0;
  id[1] = -4;
  CHECK_STATUS(t3d_op_embedding(be, &y, &ids, &table), T3D_ERR_INVALID_ARG);
  CHECK(detail_has("id -4") && detail_has("[0,1]"));
  rm(&table);
  rm(&ids);
  rm(&y);
}

/* ---- pooling and resampling -------------------------------------------------------------- */

static float at5(const t3d_tensor *t, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w)
{
  return F(t)[(((n * t->shape[1] + c) * t->shape[2] + d) * t->shape[3] + h) * t->shape[4] + w];
}

static void test_maxpool(void)
{
  static const int cfg[][9] = {
      /* kernel, stride, pad */
      {3, 3, 3, 2, 2, 2, 1, 1, 1}, {2, 2, 2, 2, 2, 2, 0, 0, 0}, {3, 3, 3, 1, 1, 1, 1, 1, 1},
      {1, 3, 2, 1, 2, 3, 0, 1, 1}, {3, 5, 4, 3, 1, 2, 1, 2, 2},
  };
  static const int64_t in[2][3] = {{7, 9, 35}, {3, 2, 1}}; /* the second is narrower than kernels */
  for (size_t c = 0; c < 2 * sizeof cfg / sizeof cfg[0]; c++) {
    const int *g = cfg[c / 2];
    const int64_t *is = in[c % 2];
    t3d_pool3d_params p = {{g[0], g[1], g[2]}, {g[3], g[4], g[5]}, {g[6], g[7], g[8]}};
    int64_t o[3];
    for (int i = 0; i < 3; i++)
      o[i] = t3d_conv_out_size(is[i], p.kernel[i], p.stride[i], p.pad[i]);
    if (o[0] < 1 || o[1] < 1 || o[2] < 1)
      continue;
    t3d_tensor x = mk_rand(5, 2, 3, is[0], is[1], is[2], -1, 1);
    t3d_tensor y = mk(T3D_F32, 5, 2, 3, o[0], o[1], o[2]);
    int64_t n_out = t3d_tensor_numel(&y), idx = 0;
    double *want = malloc((size_t)n_out * sizeof *want);
    F(&x)[t3d_tensor_numel(&x) / 2] = NAN; /* NaN propagates through max */
    for (int64_t n = 0; n < 2; n++)
      for (int64_t ch = 0; ch < 3; ch++)
        for (int64_t od = 0; od < o[0]; od++)
          for (int64_t oh = 0; oh < o[1]; oh++)
            for (int64_t ow = 0; ow < o[2]; ow++) {
              double m = -INFINITY;
              for (int a = 0; a < p.kernel[0]; a++)
                for (int b = 0; b < p.kernel[1]; b++)
                  for (int e = 0; e < p.kernel[2]; e++) {
                    int64_t d = od * p.stride[0] - p.pad[0] + a, h = oh * p.stride[1] - p.pad[1] + b,
                            w = ow * p.stride[2] - p.pad[2] + e;
                    if (d < 0 || h < 0 || w < 0 || d >= is[0] || h >= is[1] || w >= is[2])
                      continue; /* -inf padding */
                    float v = at5(&x, n, ch, d, h, w);
                    if (isnan(v) || isnan(m))
                      m = NAN;
                    else if (v > m)
                      m = v;
                  }
              want[idx++] = m;
            }
    CHECK_STATUS(t3d_op_maxpool3d(be, &y, &x, &p), T3D_OK);
    check_close("maxpool3d", F(&y), want, n_out, 0, 0);
    free(want);
    rm(&x);
    rm(&y);
  }
}

static void test_avgpools(void)
{
  t3d_tensor x = mk_rand(5, 2, 3, 7, 5, 9, -1, 3), g = mk(T3D_F32, 2, 2, 3, 0, 0, 0);
  double want_g[6];
  for (int64_t nc = 0; nc < 6; nc++) {
    double s = 0;
    for (int64_t i = 0; i < 7 * 5 * 9; i++)
      s += F(&x)[nc * 315 + i];
    want_g[nc] = s / 315.0;
  }
  CHECK_STATUS(t3d_op_avgpool3d_global(be, &g, &x), T3D_OK);
  check_close("avgpool3d_global", F(&g), want_g, 6, 1e-6, 1e-7);
  rm(&g);

  /* adaptive bins, smaller and larger than the input along different axes */
  static const int64_t outs[][3] = {{3, 5, 4}, {9, 2, 11}, {1, 1, 1}, {7, 5, 9}};
  for (size_t c = 0; c < sizeof outs / sizeof outs[0]; c++) {
    const int64_t *o = outs[c];
    t3d_tensor y = mk(T3D_F32, 5, 2, 3, o[0], o[1], o[2]);
    int64_t n_out = t3d_tensor_numel(&y), idx = 0;
    double *want = malloc((size_t)n_out * sizeof *want);
    const int64_t in[3] = {7, 5, 9};
    for (int64_t n = 0; n < 2; n++)
      for (int64_t ch = 0; ch < 3; ch++)
        for (int64_t od = 0; od < o[0]; od++)
          for (int64_t oh = 0; oh < o[1]; oh++)
            for (int64_t ow = 0; ow < o[2]; ow++) {
              int64_t id[3] = {od, oh, ow}, lo[3], hi[3];
              double s = 0;
              for (int a = 0; a < 3; a++) {
                lo[a] = (int64_t)floor((double)(id[a] * in[a]) / (double)o[a]);
                hi[a] = (int64_t)ceil((double)((id[a] + 1) * in[a]) / (double)o[a]);
              }
              for (int64_t d = lo[0]; d < hi[0]; d++)
                for (int64_t h = lo[1]; h < hi[1]; h++)
                  for (int64_t w = lo[2]; w < hi[2]; w++)
                    s += at5(&x, n, ch, d, h, w);
              want[idx++] = s / (double)((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
            }
    CHECK_STATUS(t3d_op_avgpool3d_adaptive(be, &y, &x), T3D_OK);
    check_close("avgpool3d_adaptive", F(&y), want, n_out, 1e-6, 1e-7);
    free(want);
    rm(&y);
  }
  rm(&x);
}

/* PyTorch's align_corners=False source coordinate: float scale, double coordinate (torch 1.13). */
static void ref_taps(int64_t o, int64_t in, int64_t out, int64_t *i0, int64_t *i1, double *l1)
{
  double scale = (float)in / (float)out, src;
  if (in == out) {
    *i0 = *i1 = o;
    *l1 = 0;
    return;
  }
  src = scale * (o + 0.5) - 0.5;
  if (src < 0)
    src = 0;
  *i0 = (int64_t)floor(src);
  *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
  *l1 = src - (double)*i0;
}

static void test_resample(void)
{
  /* hand values along W: [0, 4] -> 4 samples is [0, 1, 3, 4]; [0,2,4,6] -> 2 is [1, 5] */
  t3d_tensor x = mk(T3D_F32, 5, 1, 1, 1, 1, 2), y = mk(T3D_F32, 5, 1, 1, 1, 1, 4);
  F(&x)[0] = 0;
  F(&x)[1] = 4;
  CHECK_STATUS(t3d_op_resample_trilinear(be, &y, &x), T3D_OK);
  CHECK_NEAR(F(&y)[0], 0, 0);
  CHECK_NEAR(F(&y)[1], 1, 1e-6);
  CHECK_NEAR(F(&y)[2], 3, 1e-6);
  CHECK_NEAR(F(&y)[3], 4, 0);
  for (int i = 0; i < 4; i++)
    F(&y)[i] = 2.0f * (float)i;
  CHECK_STATUS(t3d_op_resample_trilinear(be, &x, &y), T3D_OK);
  CHECK_NEAR(F(&x)[0], 1, 1e-6);
  CHECK_NEAR(F(&x)[1], 5, 1e-6);
  rm(&x);
  rm(&y);

  /* brute force: up on D, down on H, non-integer on W, same size axis with inf next door */
  static const int64_t outs[][3] = {{11, 3, 13}, {4, 9, 5}, {5, 9, 10}};
  t3d_tensor v = mk_rand(5, 2, 2, 5, 9, 7, -2, 2);
  for (size_t c = 0; c < sizeof outs / sizeof outs[0]; c++) {
    const int64_t *o = outs[c], in[3] = {5, 9, 7};
    t3d_tensor r = mk(T3D_F32, 5, 2, 2, o[0], o[1], o[2]);
    int64_t n_out = t3d_tensor_numel(&r), idx = 0;
    double *want = malloc((size_t)n_out * sizeof *want);
    for (int64_t nc = 0; nc < 4; nc++)
      for (int64_t od = 0; od < o[0]; od++)
        for (int64_t oh = 0; oh < o[1]; oh++)
          for (int64_t ow = 0; ow < o[2]; ow++) {
            int64_t i0[3], i1[3], id[3] = {od, oh, ow};
            double l1[3], s = 0;
            for (int a = 0; a < 3; a++)
              ref_taps(id[a], in[a], o[a], &i0[a], &i1[a], &l1[a]);
            for (int corner = 0; corner < 8; corner++) {
              double wgt = 1;
              int64_t pos[3];
              for (int a = 0; a < 3; a++) {
                bool hi = (corner >> (2 - a)) & 1;
                pos[a] = hi ? i1[a] : i0[a];
                wgt *= hi ? l1[a] : 1 - l1[a];
              }
              if (wgt != 0)
                s += wgt * at5(&v, nc / 2, nc % 2, pos[0], pos[1], pos[2]);
            }
            want[idx++] = s;
          }
    CHECK_STATUS(t3d_op_resample_trilinear(be, &r, &v), T3D_OK);
    check_close("resample_trilinear", F(&r), want, n_out, 1e-5, 1e-6);
    free(want);
    rm(&r);
  }
  rm(&v);
}

/* ---- GEMM, linear, attention --------------------------------------------------------------- */

static void test_sgemm_modes(void)
{
  /* 300 x 70 x 400 and 70 x 300 x 400 are big enough to be split over threads, by rows and by
     columns; the last two take several K slices at the AVX-512 kernels' depths (up to 1024, less
     where M is large) */
  static const int64_t sizes[][3] = {{1, 1, 1},      {5, 7, 3},       {37, 45, 300},  {13, 2100, 3},
                                     {800, 20, 17},  {300, 70, 400},  {70, 300, 400}, {40, 70, 1500},
                                     {800, 40, 900}};
  for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++)
    for (int mode = 0; mode < 4; mode++) {
      const int64_t M = sizes[c][0], N = sizes[c][1], K = sizes[c][2];
      const bool ta = mode & 1, tb = mode & 2;
      const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
      float *A = malloc((size_t)((ta ? K : M) * lda) * sizeof *A);
      float *B = malloc((size_t)((tb ? N : K) * ldb) * sizeof *B);
      float *C = malloc((size_t)(M * ldc) * sizeof *C), *C2 = malloc((size_t)(M * ldc) * sizeof *C2);
      double *want = malloc((size_t)(M * N) * sizeof *want);
      float *got = malloc((size_t)(M * N) * sizeof *got);
      const float alpha = 0.75f, beta = c % 2 ? 0.0f : -0.5f;
      for (int64_t i = 0; i < (ta ? K : M) * lda; i++)
        A[i] = urand(-1, 1);
      for (int64_t i = 0; i < (tb ? N : K) * ldb; i++)
        B[i] = urand(-1, 1);
      for (int64_t i = 0; i < M * ldc; i++)
        C[i] = C2[i] = beta == 0.0f ? NAN : urand(-1, 1); /* beta 0: old C must be ignored */
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          double s = 0;
          for (int64_t k = 0; k < K; k++)
            s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
          want[i * N + j] = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)C[i * ldc + j]);
        }
      t3d_cpu_sgemm_blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, be->threads);
      t3d_cpu_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc, be->threads);
      for (int64_t i = 0; i < M; i++)
        memcpy(got + i * N, C + i * ldc, (size_t)N * sizeof *got);
      check_close("sgemm_blocked", got, want, M * N, 1e-4, 1e-5 * sqrt((double)K));
      for (int64_t i = 0; i < M; i++)
        memcpy(got + i * N, C2 + i * ldc, (size_t)N * sizeof *got);
      check_close("sgemm", got, want, M * N, 1e-4, 1e-5 * sqrt((double)K));
      for (int64_t i = 0; i < M; i++) /* padding columns of C untouched */
        CHECK(isnan(C[i * ldc + N]) == isnan(C2[i * ldc + N]));
      { /* B packed once (a weight's layout at load): the blocked GEMM's very sums */
        float *Bp = malloc(t3d_cpu_sgemm_packed_b_floats(N, K) * sizeof *Bp);
        t3d_cpu_sgemm_pack_b(Bp, tb, B, ldb, N, K);
        for (int64_t i = 0; i < M * ldc; i++)
          C[i] = C2[i] = beta == 0.0f ? NAN : urand(-1, 1);
        t3d_cpu_sgemm_blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, be->threads);
        t3d_cpu_sgemm_packed(ta, M, N, K, alpha, A, lda, Bp, beta, C2, ldc, be->threads);
        bool same = true;
        for (int64_t i = 0; i < M; i++)
          same &= memcmp(C + i * ldc, C2 + i * ldc, (size_t)N * sizeof *C) == 0;
        CHECK(same);
        for (int64_t i = 0; i < M; i++)
          CHECK(isnan(C2[i * ldc + N]) == (beta == 0.0f));
        /* with a bias (a linear layer): C never read, and the sums of C = bias rows, beta 1 */
        float *bias = malloc((size_t)N * sizeof *bias);
        for (int64_t j = 0; j < N; j++) bias[j] = urand(-1, 1);
        for (int64_t i = 0; i < M * ldc; i++) {
          C[i] = i % ldc < N ? bias[i % ldc] : NAN;
          C2[i] = NAN;
        }
        t3d_cpu_sgemm_blocked(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc, be->threads);
        t3d_cpu_sgemm_packed_bias(ta, M, N, K, A, lda, Bp, bias, C2, ldc, be->threads);
        same = true;
        for (int64_t i = 0; i < M; i++)
          same &= memcmp(C + i * ldc, C2 + i * ldc, (size_t)N * sizeof *C) == 0 && isnan(C2[i * ldc + N]);
        CHECK(same);
        free(bias);
        free(Bp);
      }
      free(A);
      free(B);
      free(C);
      free(C2);
      free(want);
      free(got);
    }
}

static void test_linear(void)
{
  t3d_tensor x = mk_rand(3, 2, 3, 300, 0, 0, -1, 1), w = mk_rand(2, 45, 300, 0, 0, 0, -1, 1);
  t3d_tensor b = mk_rand(1, 45, 0, 0, 0, 0, -1, 1), y = mk(T3D_F32, 3, 2, 3, 45, 0, 0);
  double want[6 * 45], want_nb[6 * 45];
  for (int64_t i = 0; i < 6; i++)
    for (int64_t o = 0; o < 45; o++) {
      double s = 0;
      for (int64_t k = 0; k < 300; k++)
        s += (double)F(&x)[i * 300 + k] * F(&w)[o * 300 + k];
      want_nb[i * 45 + o] = s;
      want[i * 45 + o] = s + F(&b)[o];
    }
  CHECK_STATUS(t3d_op_linear(be, &y, &x, &w, &b), T3D_OK);
  check_close("linear", F(&y), want, 6 * 45, 1e-4, 2e-5);
  CHECK_STATUS(t3d_op_linear(be, &y, &x, &w, NULL), T3D_OK);
  check_close("linear without bias", F(&y), want_nb, 6 * 45, 1e-4, 2e-5);
  { /* the weight as a model uploads it: packed at load where t3d's GEMM runs, the same sums */
    t3d_tensor dev, y2 = mk(T3D_F32, 3, 2, 3, 45, 0, 0), host = mk(T3D_F32, 2, 45, 300, 0, 0, 0);
    CHECK_STATUS(t3d_backend_weight_upload(be, &dev, &w, T3D_OP_LINEAR), T3D_OK);
    CHECK(dev.layout == (t3d_cpu_openblas_fits() ? T3D_LAYOUT_PLAIN : T3D_LAYOUT_PACKED));
    CHECK(dev.dtype == T3D_F32 && dev.shape[0] == 45 && dev.shape[1] == 300);
    CHECK_STATUS(t3d_op_linear(be, &y, &x, &w, &b), T3D_OK);
    CHECK_STATUS(t3d_op_linear(be, &y2, &x, &dev, &b), T3D_OK);
    if (!t3d_cpu_openblas_fits())
      CHECK(memcmp(y.data, y2.data, 6 * 45 * sizeof(float)) == 0);
    check_close("linear, packed weight", F(&y2), want, 6 * 45, 1e-4, 2e-5);
    if (dev.layout == T3D_LAYOUT_PACKED) { /* readable by linear only */
      CHECK_STATUS(t3d_backend_download(be, &host, &dev), T3D_ERR_INVALID_ARG);
      CHECK(detail_has("packed"));
      CHECK_STATUS(t3d_op_relu(be, &host, &dev), T3D_ERR_INVALID_ARG);
    }
    t3d_backend_tensor_free(be, &dev);
    rm(&y2);
    rm(&host);
  }
  rm(&x);
  rm(&w);
  rm(&b);
  rm(&y);
  /* 1-D input, as F.linear allows */
  x = mk_rand(1, 3, 0, 0, 0, 0, -1, 1);
  w = mk_rand(2, 2, 3, 0, 0, 0, -1, 1);
  y = mk(T3D_F32, 1, 2, 0, 0, 0, 0);
  CHECK_STATUS(t3d_op_linear(be, &y, &x, &w, NULL), T3D_OK);
  CHECK_NEAR(F(&y)[1], F(&x)[0] * F(&w)[3] + F(&x)[1] * F(&w)[4] + F(&x)[2] * F(&w)[5], 1e-6);
  rm(&x);
  rm(&w);
  rm(&y);
}

static void attention_ref(double *y, const t3d_tensor *q, const t3d_tensor *k, const t3d_tensor *v,
                          const int32_t *mask, int heads)
{
  const int64_t B = q->shape[0], Lq = q->shape[1], Lk = k->shape[1], E = q->shape[2], Dh = E / heads;
  double *s = malloc((size_t)Lk * sizeof *s);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < heads; h++)
      for (int64_t i = 0; i < Lq; i++) {
        double mx = -INFINITY, sum = 0;
        int64_t any = 0;
        for (int64_t j = 0; j < Lk; j++) {
          double d = 0;
          for (int64_t e = 0; e < Dh; e++)
            d += (double)F(q)[(b * Lq + i) * E + h * Dh + e] * F(k)[(b * Lk + j) * E + h * Dh + e];
          s[j] = mask && !mask[b * Lk + j] ? -INFINITY : d / sqrt((double)Dh);
          any += !(mask && !mask[b * Lk + j]);
          mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < Lk; j++)
          sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
        for (int64_t e = 0; e < Dh; e++) {
          double acc = 0;
          for (int64_t j = 0; j < Lk && any; j++)
            if (s[j] != -INFINITY)
              acc += exp(s[j] - mx) / sum * F(v)[(b * Lk + j) * E + h * Dh + e];
          y[(b * Lq + i) * E + h * Dh + e] = acc; /* documented: fully masked -> 0 */
        }
      }
  free(s);
}

static void test_attention(void)
{
  /* B, Lq, Lk, heads, Dh; 70 x 300 is split into query blocks over two threads; BERT's head size 64,
     and 40 (the fused head's partial V panels) */
  static const int64_t cfg[][5] = {{3, 5, 7, 3, 4},    {2, 70, 33, 2, 8},  {1, 1, 1, 1, 1},
                                   {1, 70, 300, 1, 8}, {2, 29, 45, 2, 64}, {1, 13, 50, 3, 40}};
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
    const int64_t B = cfg[c][0], Lq = cfg[c][1], Lk = cfg[c][2], H = cfg[c][3], E = H * cfg[c][4];
    t3d_tensor q = mk_rand(3, B, Lq, E, 0, 0, -2, 2), k = mk_rand(3, B, Lk, E, 0, 0, -2, 2);
    t3d_tensor v = mk_rand(3, B, Lk, E, 0, 0, -2, 2), y = mk(T3D_F32, 3, B, Lq, E, 0, 0);
    t3d_tensor m = mk(T3D_I32, 2, B, Lk, 0, 0, 0);
    int32_t *mask = m.data;
    double *want = malloc((size_t)(B * Lq * E) * sizeof *want);
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < Lk; j++)
        mask[b * Lk + j] = b == 1 ? 0 : (j * 7 + b) % 3 != 0 || j == 0 ? 1 + (int32_t)j : 0; /* batch 1 all masked */
    attention_ref(want, &q, &k, &v, NULL, (int)H);
    CHECK_STATUS(t3d_op_attention(be, &y, &q, &k, &v, NULL, (int)H), T3D_OK);
    check_close("attention", F(&y), want, B * Lq * E, 1e-4, 1e-5);
    attention_ref(want, &q, &k, &v, mask, (int)H);
    CHECK_STATUS(t3d_op_attention(be, &y, &q, &k, &v, &m, (int)H), T3D_OK);
    check_close("attention with key mask", F(&y), want, B * Lq * E, 1e-4, 1e-5);
    free(want);
    rm(&q);
    rm(&k);
    rm(&v);
    rm(&y);
    rm(&m);
  }
}

/* ---- conv wrapper and BatchNorm folding --------------------------------------------------- */

static void test_conv_wrapper_and_fold(void)
{
  /* 1x1x1 convolution with bias, residual and ReLU: y = relu(w x + b + r) */
  t3d_tensor x = mk_rand(5, 2, 3, 2, 3, 4, -1, 1), w = mk_rand(5, 2, 3, 1, 1, 1, -1, 1);
  t3d_tensor bias = mk_rand(1, 2, 0, 0, 0, 0, -1, 1), r = mk_rand(5, 2, 2, 2, 3, 4, -1, 1);
  t3d_tensor y = mk(T3D_F32, 5, 2, 2, 2, 3, 4);
  t3d_conv3d_params p = {{1, 1, 1}, {0, 0, 0}, true, false};
  double want[2 * 2 * 24];
  for (int64_t n = 0; n < 2; n++)
    for (int64_t co = 0; co < 2; co++)
      for (int64_t s = 0; s < 24; s++) {
        double a = F(&bias)[co] + F(&r)[(n * 2 + co) * 24 + s];
        for (int64_t ci = 0; ci < 3; ci++)
          a += (double)F(&w)[co * 3 + ci] * F(&x)[(n * 3 + ci) * 24 + s];
        want[(n * 2 + co) * 24 + s] = a < 0 ? 0 : a;
      }
  CHECK_STATUS(t3d_op_conv3d(be, &y, &x, &w, &bias, &r, &p), T3D_OK);
  check_close("conv3d 1x1x1 + bias + residual + relu", F(&y), want, 96, 1e-5, 1e-6);
  CHECK_STATUS(t3d_op_conv3d(be, &y, &x, &w, &bias, &y, &p), T3D_ERR_INVALID_ARG); /* residual is y */
  CHECK(detail_has("residual"));
  p.stride[1] = 0;
  CHECK_STATUS(t3d_op_conv3d(be, &y, &x, &w, &bias, &r, &p), T3D_ERR_INVALID_ARG);
  CHECK(detail_has("stride"));
  p.stride[1] = 2;
  CHECK_STATUS(t3d_op_conv3d(be, &y, &x, &w, &bias, NULL, &p), T3D_ERR_SHAPE);
  CHECK(detail_has("t3d_op_conv3d") && detail_has("f32[2,2,2,3,4]") && detail_has("f32[2,2,2,2,4]"));
  rm(&x);
  rm(&w);
  rm(&bias);
  rm(&r);
  rm(&y);

  /* transposed conv wrapper: w is [Cin, Cout, k...] */
  t3d_tensor xt = mk_rand(5, 1, 4, 2, 2, 2, -1, 1), wt = mk_rand(5, 4, 3, 2, 2, 2, -1, 1);
  t3d_tensor yt = mk(T3D_F32, 5, 1, 3, 4, 4, 4), ybad = mk(T3D_F32, 5, 1, 4, 4, 4, 4);
  t3d_conv3d_transpose_params tp = {{2, 2, 2}, {0, 0, 0}, {0, 0, 0}};
  CHECK_STATUS(t3d_op_conv3d_transpose(be, &yt, &xt, &wt, NULL, &tp), T3D_OK);
  CHECK_STATUS(t3d_op_conv3d_transpose(be, &ybad, &xt, &wt, NULL, &tp), T3D_ERR_SHAPE);
  CHECK(detail_has("f32[1,3,4,4,4]"));
  tp.output_pad[0] = 2;
  CHECK_STATUS(t3d_op_conv3d_transpose(be, &yt, &xt, &wt, NULL, &tp), T3D_ERR_INVALID_ARG);
  rm(&xt);
  rm(&wt);
  rm(&yt);
  rm(&ybad);

  /* BatchNorm folding: conv(x) then BN equals conv'(x) with folded w, b */
  int64_t ws[5] = {2, 1, 1, 1, 2}, cs[1] = {2};
  t3d_tensor *fw = NULL, *g = NULL, *be_ = NULL, *mu = NULL, *var = NULL, *fb = NULL;
  CHECK_STATUS(t3d_tensor_new(&fw, T3D_F32, 5, ws), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&g, T3D_F32, 1, cs), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&be_, T3D_F32, 1, cs), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&mu, T3D_F32, 1, cs), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&var, T3D_F32, 1, cs), T3D_OK);
  const float w0[4] = {1, 2, -3, 0.5f}, gv[2] = {2, 0.5f}, bv[2] = {1, -1}, mv[2] = {0.5f, -2}, vv[2] = {4, 0.25f};
  memcpy(fw->data, w0, sizeof w0);
  memcpy(g->data, gv, sizeof gv);
  memcpy(be_->data, bv, sizeof bv);
  memcpy(mu->data, mv, sizeof mv);
  memcpy(var->data, vv, sizeof vv);
  CHECK_STATUS(t3d_fold_batchnorm(fw, &fb, g, be_, mu, var, 0.0f), T3D_OK);
  CHECK(fb != NULL);
  if (fb) {
    /* eps 0: channel 0 scale 2/sqrt(4) = 1, bias (0-0.5)*1+1; channel 1 scale 0.5/sqrt(0.25) = 1 */
    CHECK_NEAR(F(fw)[0], 1.0, 1e-7);
    CHECK_NEAR(F(fw)[1], 2.0, 1e-7);
    CHECK_NEAR(F(fw)[2], -3.0, 1e-7);
    CHECK_NEAR(F(fw)[3], 0.5, 1e-7);
    CHECK_NEAR(F(fb)[0], 0.5, 1e-7);
    CHECK_NEAR(F(fb)[1], 1.0, 1e-7); /* (0+2)*1-1 */
    /* a second fold updates the existing bias: scale 4/sqrt(4) = 2 and 1/sqrt(0.25) = 2 */
    const float g2[2] = {4, 1};
    memcpy(g->data, g2, sizeof g2);
    CHECK_STATUS(t3d_fold_batchnorm(fw, &fb, g, be_, mu, var, 0.0f), T3D_OK);
    CHECK_NEAR(F(fw)[0], 2.0, 1e-7);
    CHECK_NEAR(F(fw)[2], -6.0, 1e-7);
    CHECK_NEAR(F(fb)[0], (0.5 - 0.5) * 2 + 1, 1e-7);
    CHECK_NEAR(F(fb)[1], (1.0 + 2) * 2 - 1, 1e-7);
  }
  F(var)[1] = -1.0f;
  CHECK_STATUS(t3d_fold_batchnorm(fw, &fb, g, be_, mu, var, 1e-5f), T3D_ERR_INVALID_ARG);
  CHECK(detail_has("var[1]"));
  CHECK_STATUS(t3d_fold_batchnorm(fw, &fb, g, be_, fw, var, 1e-5f), T3D_ERR_SHAPE);
  t3d_tensor_free(fw);
  t3d_tensor_free(g);
  t3d_tensor_free(be_);
  t3d_tensor_free(mu);
  t3d_tensor_free(var);
  t3d_tensor_free(fb);
}

/* ---- wrapper error reporting -------------------------------------------------------------- */

static void test_wrapper_errors(void)
{
  t3d_tensor x = mk_rand(2, 2, 3, 0, 0, 0, -1, 1), w = mk_rand(2, 4, 5, 0, 0, 0, -1, 1);
  t3d_tensor y = mk(T3D_F32, 2, 2, 4, 0, 0, 0), yi = mk(T3D_I32, 1, 2, 0, 0, 0, 0);
  t3d_tensor v5 = mk_rand(5, 1, 2, 4, 4, 4, -1, 1), v5y = mk(T3D_F32, 5, 1, 2, 2, 2, 2);
  t3d_tensor q = mk_rand(3, 1, 4, 6, 0, 0, -1, 1), qy = mk(T3D_F32, 3, 1, 4, 6, 0, 0);
  t3d_tensor fmask = mk_rand(2, 1, 4, 0, 0, 0, 0, 1);

  CHECK_STATUS(t3d_op_linear(be, &y, &x, &w, NULL), T3D_ERR_SHAPE);
  CHECK(detail_has("t3d_op_linear") && detail_has("f32[2,3]") && detail_has("f32[4,5]"));
  CHECK_STATUS(t3d_op_linear(be, &x, &x, &w, NULL), T3D_ERR_SHAPE);
  CHECK_STATUS(t3d_op_linear(NULL, &y, &x, &w, NULL), T3D_ERR_SHAPE); /* shapes are checked first */
  CHECK_STATUS(t3d_op_add(be, &y, &x, &x), T3D_ERR_SHAPE);
  CHECK(detail_has("t3d_op_add") && detail_has("f32[2,4]") && detail_has("f32[2,3]"));
  CHECK_STATUS(t3d_op_relu(be, &y, NULL), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_op_relu(NULL, &x, &x), T3D_ERR_INVALID_ARG);
  CHECK(detail_has("backend"));
  CHECK_STATUS(t3d_op_gelu(be, &yi, &yi), T3D_ERR_SHAPE);
  CHECK(detail_has("i32[2]") && detail_has("f32"));
  CHECK_STATUS(t3d_op_softmax(be, &y, &x), T3D_ERR_SHAPE);
  CHECK_STATUS(t3d_op_argmax(be, &y, &x), T3D_ERR_SHAPE); /* y must be i32 */
  CHECK_STATUS(t3d_op_argmax(be, &yi, &x), T3D_OK);
  CHECK_STATUS(t3d_op_embedding(be, &y, &x, &w), T3D_ERR_SHAPE); /* ids f32 */
  CHECK(detail_has("ids"));
  CHECK_STATUS(t3d_op_concat(be, &y, &x, &w), T3D_ERR_SHAPE);
  CHECK(detail_has("t3d_op_concat"));
  CHECK_STATUS(t3d_op_layernorm(be, &x, &x, &w, NULL, 1e-5f), T3D_ERR_SHAPE);
  CHECK(detail_has("gamma"));

  t3d_pool3d_params p = {{3, 3, 3}, {2, 2, 2}, {1, 1, 2}};
  CHECK_STATUS(t3d_op_maxpool3d(be, &v5y, &v5, &p), T3D_ERR_INVALID_ARG); /* pad > kernel/2 */
  CHECK(detail_has("half"));
  p.pad[2] = 1;
  CHECK_STATUS(t3d_op_maxpool3d(be, &v5y, &v5, &p), T3D_OK);
  p.stride[0] = 1;
  CHECK_STATUS(t3d_op_maxpool3d(be, &v5y, &v5, &p), T3D_ERR_SHAPE);
  CHECK(detail_has("f32[1,2,4,2,2]"));
  p.kernel[0] = 0;
  CHECK_STATUS(t3d_op_maxpool3d(be, &v5y, &v5, &p), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_op_maxpool3d(be, &v5y, &v5, NULL), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_op_avgpool3d_global(be, &v5y, &v5), T3D_ERR_SHAPE);
  CHECK_STATUS(t3d_op_avgpool3d_adaptive(be, &y, &v5), T3D_ERR_SHAPE);
  CHECK_STATUS(t3d_op_resample_trilinear(be, &v5, &v5), T3D_ERR_INVALID_ARG); /* aliasing */

  CHECK_STATUS(t3d_op_attention(be, &qy, &q, &q, &q, NULL, 4), T3D_ERR_INVALID_ARG); /* 4 does not divide 6 */
  CHECK(detail_has("heads"));
  CHECK_STATUS(t3d_op_attention(be, &qy, &q, &q, &q, NULL, 0), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_op_attention(be, &qy, &q, &q, &q, &fmask, 2), T3D_ERR_SHAPE); /* mask must be i32 */
  CHECK(detail_has("key_mask"));
  CHECK_STATUS(t3d_op_attention(be, &q, &q, &q, &q, NULL, 2), T3D_ERR_INVALID_ARG); /* y is q */
  CHECK_STATUS(t3d_op_attention(be, &qy, &q, &q, &q, NULL, 3), T3D_OK);
  CHECK_STATUS(t3d_op_attention(be, &qy, &q, &x, &x, NULL, 3), T3D_ERR_SHAPE);

  t3d_tensor empty = x;
  empty.shape[0] = 0;
  CHECK_STATUS(t3d_op_relu(be, &empty, &empty), T3D_ERR_SHAPE);
  CHECK(detail_has("empty"));

  rm(&x);
  rm(&w);
  rm(&y);
  rm(&yi);
  rm(&v5);
  rm(&v5y);
  rm(&q);
  rm(&qy);
  rm(&fmask);
}

static bool no_gelu(const t3d_backend *b, t3d_op op, t3d_dtype dtype)
{
  (void)b;
  return op != T3D_OP_GELU && dtype == T3D_F32;
}

/* A backend that lacks an op (NULL entry) or declines it in supports_op gets UNSUPPORTED. */
static void test_unsupported_and_bad_tensors(void)
{
  t3d_backend_ops ops = *be->ops;
  t3d_backend fake = {.ops = &ops, .threads = 1, .impl = NULL};
  t3d_tensor x = mk_rand(2, 2, 3, 0, 0, 0, -1, 1), y = mk(T3D_F32, 2, 2, 3, 0, 0, 0), out;
  int64_t bad[2] = {2, -1};
  ops.name = "fake";
  ops.supports_op = no_gelu;
  ops.relu = NULL;
  CHECK_STATUS(t3d_op_gelu(&fake, &y, &x), T3D_ERR_UNSUPPORTED);
  CHECK(detail_has("fake") && detail_has("gelu"));
  CHECK_STATUS(t3d_op_relu(&fake, &y, &x), T3D_ERR_UNSUPPORTED);
  CHECK_STATUS(t3d_op_softmax(&fake, &y, &x), T3D_OK);
  CHECK(!t3d_backend_supports(&fake, T3D_OP_GELU, T3D_F32));

  CHECK_STATUS(t3d_backend_tensor_new(be, &out, T3D_F32, 0, bad), T3D_ERR_INVALID_ARG);
  CHECK(out.data == NULL);
  CHECK_STATUS(t3d_backend_tensor_new(be, &out, T3D_F32, 2, bad), T3D_ERR_INVALID_ARG);
  CHECK(detail_has("negative"));
  bad[1] = INT64_MAX / 2;
  CHECK_STATUS(t3d_backend_tensor_new(be, &out, T3D_F32, 2, bad), T3D_ERR_NOMEM);
  CHECK_STATUS(t3d_backend_tensor_new(be, &out, T3D_DTYPE_COUNT, 1, bad), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_backend_tensor_new(NULL, &out, T3D_F32, 1, bad), T3D_ERR_INVALID_ARG);
  rm(&x);
  rm(&y);
}

/* Kernel scratch: one idle block is kept and handed to the next call that fits in it; a larger
 * request frees it first; trim (a backend's destroy) frees it. Aligned for AVX-512 loads. */
static void test_scratch_cache(void)
{
  t3d_cpu_scratch_trim();
  unsigned char *a = t3d_cpu_scratch_alloc(3u << 20);
  CHECK(a != NULL && ((uintptr_t)a & 63) == 0);
  if (!a) return;
  memset(a, 1, 3u << 20); /* all of it is ours */
  t3d_cpu_scratch_free(a);
  unsigned char *b = t3d_cpu_scratch_alloc(1u << 20); /* fits: the same block */
  CHECK(b == a);
  unsigned char *c = t3d_cpu_scratch_alloc(1u << 20); /* the idle one is taken: a new block */
  CHECK(c != NULL && c != b && ((uintptr_t)c & 63) == 0);
  t3d_cpu_scratch_free(c);
  t3d_cpu_scratch_free(b); /* the larger of the two stays idle */
  unsigned char *d = t3d_cpu_scratch_alloc(2u << 20);
  CHECK(d == a);
  t3d_cpu_scratch_free(d);
  unsigned char *e = t3d_cpu_scratch_alloc(5u << 20); /* larger than the idle block: a new one */
  CHECK(e != NULL && ((uintptr_t)e & 63) == 0);
  if (e) memset(e, 2, 5u << 20);
  t3d_cpu_scratch_free(e);
  t3d_cpu_scratch_free(NULL);
  CHECK(t3d_cpu_scratch_alloc(SIZE_MAX) == NULL); /* no overflow of the header */
  t3d_cpu_scratch_trim();
  t3d_cpu_scratch_trim();
}

int main(void)
{
  test_scratch_cache();
  /* every test runs single-threaded and with two threads, to catch partitioning bugs */
  for (int threads = 1; threads <= 2; threads++) {
    t3d_backend_params p = t3d_backend_default_params();
    p.threads = threads;
    if (t3d_backend_cpu_create(&be, &p) != T3D_OK) {
      fprintf(stderr, "cannot create the CPU backend: %s\n", t3d_error_detail());
      return 1;
    }
    test_names_sizes_and_params();
    test_tensor_upload_download();
    test_relu_add();
    test_gelu();
    test_gelu_paths();
    test_softmax();
    test_layernorm();
    test_argmax();
    test_concat();
    test_embedding();
    test_maxpool();
    test_avgpools();
    test_resample();
    test_sgemm_modes();
    test_linear();
    test_attention();
    test_conv_wrapper_and_fold();
    test_wrapper_errors();
    test_unsupported_and_bad_tensors();
    t3d_backend_free(be);
    be = NULL;
  }
  return check_finish("test-cpu-ops");
}
