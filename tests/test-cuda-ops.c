/* test-cuda-ops: every op of the CUDA backend against its CPU twin on fresh random data (seed
 * printed; --seed N reproduces), through the checked t3d_op_* wrappers, at the shapes the
 * networks use plus odd ones (padding, strides, output padding, in-place calls, masked
 * attention with an all-masked batch entry, head sizes over 256, ties in argmax), and the
 * embedding's out-of-range error. Exits 77 (SKIP) without a usable GPU. Not a benchmark
 * (kernels/cuda/dev/ times kernels) and not PyTorch parity (test-ops-parity cuda).
 *
 * Usage: test-cuda-ops [--precision fp32|tf32] [--seed N] [--backend NAME]
 *   --backend cpu compares the CPU backend with itself: a check of this harness on machines
 *   without a GPU, not a test of anything else.
 * Measure per case: rel = max|got - want| / max|want| (1e-30 floor), as test-ops-parity.
 * Tolerances, fp32: 1e-4 for ops summing many products (conv, linear, attention, global mean:
 * the summation order differs between cuDNN / cuBLAS and the CPU kernels), 1e-5 for the rest,
 * argmax exact. tf32 (10-bit mantissa products in conv and linear): 5e-3 for those two. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/cuda/device.h"

#define MAX_IN 6

typedef enum { GEN_UNIFORM = 0, GEN_WIDE, GEN_OFFSET, GEN_IDS, GEN_MASK, GEN_SMALLINT } gen_kind;

typedef struct {
  t3d_dtype dtype;
  int ndim;
  int64_t shape[5];
  gen_kind gen;
} spec;

typedef struct {
  const char *name;
  t3d_op op;
  int nin;
  spec in[MAX_IN];
  spec out;
  t3d_conv3d_params conv;
  t3d_conv3d_transpose_params convt;
  t3d_pool3d_params pool;
  int heads;
  int alias; /* y is input 0 (in-place) */
  int vocab; /* embedding: ids drawn from [0, vocab) */
} op_case;

#define F32(n, ...) {T3D_F32, n, {__VA_ARGS__}, GEN_UNIFORM}
#define F32G(g, n, ...) {T3D_F32, n, {__VA_ARGS__}, g}
#define I32(g, n, ...) {T3D_I32, n, {__VA_ARGS__}, g}

/* Inputs in the order of the op's wrapper: conv3d x, w, bias, residual (an absent optional
 * input is a spec with ndim 0); attention q, k, v, mask; layernorm x, gamma, beta. */
static const op_case cases[] = {
    {"conv3d/3x3x3 pad1 bias relu", T3D_OP_CONV3D, 4, {F32(5, 2, 3, 9, 10, 11), F32(5, 5, 3, 3, 3, 3), F32(1, 5), {0}},
     F32(5, 2, 5, 9, 10, 11), .conv = {{1, 1, 1}, {1, 1, 1}, true}},
    {"conv3d/3x3x3 stride2 bias residual relu", T3D_OP_CONV3D, 4,
     {F32(5, 1, 4, 9, 8, 7), F32(5, 6, 4, 3, 3, 3), F32(1, 6), F32(5, 1, 6, 5, 4, 4)}, F32(5, 1, 6, 5, 4, 4),
     .conv = {{2, 2, 2}, {1, 1, 1}, true}},
    {"conv3d/1x1x1 stride2 (downsample)", T3D_OP_CONV3D, 4, {F32(5, 2, 8, 6, 6, 5), F32(5, 12, 8, 1, 1, 1), F32(1, 12), {0}},
     F32(5, 2, 12, 3, 3, 3), .conv = {{2, 2, 2}, {0, 0, 0}, false}},
    {"conv3d/7x7x7 stride2 pad3 (stem), no bias", T3D_OP_CONV3D, 4, {F32(5, 1, 1, 16, 20, 18), F32(5, 8, 1, 7, 7, 7), {0}, {0}},
     F32(5, 1, 8, 8, 10, 9), .conv = {{2, 2, 2}, {3, 3, 3}, true}},
    {"conv3d/anisotropic stride and pad", T3D_OP_CONV3D, 4, {F32(5, 1, 3, 7, 9, 10), F32(5, 4, 3, 3, 1, 3), F32(1, 4), {0}},
     F32(5, 1, 4, 3, 9, 10), .conv = {{2, 1, 1}, {0, 0, 1}, false}},
    {"conv3d_transpose/k2 s2 bias (decoder)", T3D_OP_CONV3D_TRANSPOSE, 3,
     {F32(5, 2, 6, 4, 5, 3), F32(5, 6, 4, 2, 2, 2), F32(1, 4)}, F32(5, 2, 4, 8, 10, 6), .convt = {{2, 2, 2}, {0, 0, 0}, {0, 0, 0}}},
    {"conv3d_transpose/k3 s2 pad1 output_pad1", T3D_OP_CONV3D_TRANSPOSE, 3,
     {F32(5, 1, 5, 3, 4, 5), F32(5, 5, 3, 3, 3, 3), {0}}, F32(5, 1, 3, 6, 8, 10), .convt = {{2, 2, 2}, {1, 1, 1}, {1, 1, 1}}},
    {"relu", T3D_OP_RELU, 1, {F32(3, 7, 33, 65)}, F32(3, 7, 33, 65)},
    {"relu/in place", T3D_OP_RELU, 1, {F32(2, 1000, 3)}, F32(2, 1000, 3), .alias = 1},
    {"add", T3D_OP_ADD, 2, {F32(2, 300, 17), F32(2, 300, 17)}, F32(2, 300, 17)},
    {"add/in place", T3D_OP_ADD, 2, {F32(1, 4099), F32(1, 4099)}, F32(1, 4099), .alias = 1},
    {"gelu/[-8,8]", T3D_OP_GELU, 1, {F32G(GEN_WIDE, 2, 129, 65)}, F32(2, 129, 65)},
    {"gelu/in place", T3D_OP_GELU, 1, {F32G(GEN_WIDE, 1, 5000)}, F32(1, 5000), .alias = 1},
    {"softmax/rows of 129", T3D_OP_SOFTMAX, 1, {F32G(GEN_WIDE, 3, 3, 7, 129)}, F32(3, 3, 7, 129)},
    {"softmax/in place, rows of 2049", T3D_OP_SOFTMAX, 1, {F32G(GEN_WIDE, 2, 5, 2049)}, F32(2, 5, 2049), .alias = 1},
    {"layernorm/gamma beta", T3D_OP_LAYERNORM, 3, {F32(3, 2, 9, 768), F32(1, 768), F32(1, 768)}, F32(3, 2, 9, 768)},
    {"layernorm/offset rows, no affine, in place", T3D_OP_LAYERNORM, 3, {F32G(GEN_OFFSET, 2, 7, 100), {0}, {0}},
     F32(2, 7, 100), .alias = 1},
    {"linear/bias", T3D_OP_LINEAR, 3, {F32(3, 2, 17, 96), F32(2, 80, 96), F32(1, 80)}, F32(3, 2, 17, 80)},
    {"linear/no bias, one row", T3D_OP_LINEAR, 3, {F32(2, 1, 768), F32(2, 512, 768), {0}}, F32(2, 1, 512)},
    {"maxpool3d/k3 s2 p1", T3D_OP_MAXPOOL3D, 1, {F32(5, 2, 3, 9, 8, 7)}, F32(5, 2, 3, 5, 4, 4),
     .pool = {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}}},
    {"maxpool3d/k2 s2 p0", T3D_OP_MAXPOOL3D, 1, {F32(5, 1, 2, 6, 7, 5)}, F32(5, 1, 2, 3, 3, 2),
     .pool = {{2, 2, 2}, {2, 2, 2}, {0, 0, 0}}},
    {"avgpool3d_global", T3D_OP_AVGPOOL3D_GLOBAL, 1, {F32G(GEN_OFFSET, 5, 2, 5, 6, 7, 8)}, F32(2, 2, 5)},
    {"avgpool3d_adaptive/uneven bins", T3D_OP_AVGPOOL3D_ADAPTIVE, 1, {F32(5, 2, 3, 9, 10, 11)}, F32(5, 2, 3, 4, 3, 5)},
    {"resample_trilinear/up", T3D_OP_RESAMPLE_TRILINEAR, 1, {F32(5, 1, 2, 5, 6, 7)}, F32(5, 1, 2, 9, 11, 13)},
    {"resample_trilinear/down, one axis kept", T3D_OP_RESAMPLE_TRILINEAR, 1, {F32(5, 2, 1, 9, 6, 8)},
     F32(5, 2, 1, 4, 6, 3)},
    {"attention/mask, one batch entry all masked", T3D_OP_ATTENTION, 4,
     {F32(3, 3, 9, 64), F32(3, 3, 13, 64), F32(3, 3, 13, 64), I32(GEN_MASK, 2, 3, 13)}, F32(3, 3, 9, 64), .heads = 4},
    {"attention/no mask, BERT-base head", T3D_OP_ATTENTION, 4,
     {F32(3, 1, 33, 768), F32(3, 1, 33, 768), F32(3, 1, 33, 768), {0}}, F32(3, 1, 33, 768), .heads = 12},
    {"attention/head size 320", T3D_OP_ATTENTION, 4,
     {F32(3, 2, 5, 640), F32(3, 2, 7, 640), F32(3, 2, 7, 640), I32(GEN_MASK, 2, 2, 7)}, F32(3, 2, 5, 640), .heads = 2},
    {"embedding", T3D_OP_EMBEDDING, 2, {I32(GEN_IDS, 2, 2, 7), F32(2, 50, 24)}, F32(3, 2, 7, 24), .vocab = 50},
    {"concat", T3D_OP_CONCAT, 2, {F32(5, 2, 3, 4, 5, 6), F32(5, 2, 5, 4, 5, 6)}, F32(5, 2, 8, 4, 5, 6)},
    {"argmax/continuous", T3D_OP_ARGMAX, 1, {F32(5, 2, 6, 5, 4, 3)}, I32(GEN_UNIFORM, 4, 2, 5, 4, 3)},
    {"argmax/ties (first wins)", T3D_OP_ARGMAX, 1, {F32G(GEN_SMALLINT, 5, 1, 7, 6, 5, 4)}, I32(GEN_UNIFORM, 4, 1, 6, 5, 4)},
};

/* ---- random data ------------------------------------------------------------------------------ */

static uint64_t rng;
static double uniform(void) /* [0, 1) */
{
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng >> 11) / 9007199254740992.0;
}

static void fill(t3d_tensor *t, const spec *s, int vocab)
{
  const int64_t n = t3d_tensor_numel(t);
  float *f = t->data;
  int32_t *k = t->data;
  for (int64_t i = 0; i < n; i++) {
    switch (s->gen) {
    case GEN_UNIFORM: f[i] = (float)(2 * uniform() - 1); break;
    case GEN_WIDE: f[i] = (float)(16 * uniform() - 8); break;
    case GEN_OFFSET: f[i] = (float)(100 + uniform()); break;
    case GEN_SMALLINT: f[i] = (float)(int)(4 * uniform()); break;
    case GEN_IDS: k[i] = (int32_t)(vocab * uniform()); break;
    case GEN_MASK: /* batch entry 0 attends to nothing; the others to about 2/3 of the keys, key 0 always */
      k[i] = i < s->shape[1] ? 0 : (i % s->shape[1] == 0 || uniform() < 0.66);
      break;
    }
  }
}

/* ---- running one case on one backend ------------------------------------------------------------ */

static t3d_status call_op(t3d_backend *be, const op_case *c, t3d_tensor *y, t3d_tensor *in)
{
  const t3d_tensor *o[MAX_IN];
  for (int i = 0; i < c->nin; i++)
    o[i] = in[i].data ? &in[i] : NULL;
  switch (c->op) {
  case T3D_OP_CONV3D: return t3d_op_conv3d(be, y, o[0], o[1], o[2], o[3], &c->conv);
  case T3D_OP_CONV3D_TRANSPOSE: return t3d_op_conv3d_transpose(be, y, o[0], o[1], o[2], &c->convt);
  case T3D_OP_RELU: return t3d_op_relu(be, y, o[0]);
  case T3D_OP_ADD: return t3d_op_add(be, y, o[0], o[1]);
  case T3D_OP_MAXPOOL3D: return t3d_op_maxpool3d(be, y, o[0], &c->pool);
  case T3D_OP_AVGPOOL3D_GLOBAL: return t3d_op_avgpool3d_global(be, y, o[0]);
  case T3D_OP_AVGPOOL3D_ADAPTIVE: return t3d_op_avgpool3d_adaptive(be, y, o[0]);
  case T3D_OP_LINEAR: return t3d_op_linear(be, y, o[0], o[1], o[2]);
  case T3D_OP_LAYERNORM: return t3d_op_layernorm(be, y, o[0], o[1], o[2], 1e-5f);
  case T3D_OP_GELU: return t3d_op_gelu(be, y, o[0]);
  case T3D_OP_SOFTMAX: return t3d_op_softmax(be, y, o[0]);
  case T3D_OP_ATTENTION: return t3d_op_attention(be, y, o[0], o[1], o[2], o[3], c->heads);
  case T3D_OP_EMBEDDING: return t3d_op_embedding(be, y, o[0], o[1]);
  case T3D_OP_CONCAT: return t3d_op_concat(be, y, o[0], o[1]);
  case T3D_OP_RESAMPLE_TRILINEAR: return t3d_op_resample_trilinear(be, y, o[0]);
  case T3D_OP_ARGMAX: return t3d_op_argmax(be, y, o[0]);
  default: return t3d_error(T3D_ERR_INTERNAL, "test-cuda-ops: no call for op %d", (int)c->op);
  }
}

/* Uploads the host inputs, runs the case, downloads y into *out (host, caller's). */
static t3d_status run_on(t3d_backend *be, const op_case *c, t3d_tensor *const *host, t3d_tensor **out)
{
  t3d_tensor dev[MAX_IN], y = {0};
  t3d_tensor *yp = &y;
  t3d_status s = T3D_OK;
  memset(dev, 0, sizeof dev);
  *out = NULL;
  for (int i = 0; i < c->nin && s == T3D_OK; i++)
    if (host[i]) {
      s = t3d_backend_tensor_new(be, &dev[i], host[i]->dtype, host[i]->ndim, host[i]->shape);
      if (s == T3D_OK) s = t3d_backend_upload(be, &dev[i], host[i]);
    }
  if (s != T3D_OK) goto cleanup;
  if (c->alias)
    yp = &dev[0];
  else if ((s = t3d_backend_tensor_new(be, &y, c->out.dtype, c->out.ndim, c->out.shape)) != T3D_OK)
    goto cleanup;
  if ((s = call_op(be, c, yp, dev)) != T3D_OK) goto cleanup;
  if ((s = t3d_tensor_new(out, c->out.dtype, c->out.ndim, c->out.shape)) != T3D_OK) goto cleanup;
  s = t3d_backend_download(be, *out, yp);
cleanup:
  for (int i = 0; i < MAX_IN; i++)
    t3d_backend_tensor_free(be, &dev[i]);
  t3d_backend_tensor_free(be, &y);
  if (s != T3D_OK) {
    t3d_tensor_free(*out);
    *out = NULL;
  }
  return s;
}

static double tolerance(t3d_op op, t3d_precision prec)
{
  switch (op) {
  case T3D_OP_CONV3D:
  case T3D_OP_CONV3D_TRANSPOSE:
  case T3D_OP_LINEAR: return prec == T3D_PRECISION_TF32 ? 5e-3 : 1e-4;
  case T3D_OP_ATTENTION:
  case T3D_OP_AVGPOOL3D_GLOBAL: return 1e-4;
  case T3D_OP_ARGMAX: return 0.0;
  default: return 1e-5;
  }
}

/* rel as described at the top; for i32 the number of differing entries. */
static double compare(const t3d_tensor *got, const t3d_tensor *want, int64_t *worst)
{
  const int64_t n = t3d_tensor_numel(want);
  double max_abs = 0, max_ref = 0, diff = 0;
  *worst = 0;
  if (want->dtype == T3D_I32) {
    const int32_t *a = got->data, *b = want->data;
    for (int64_t i = 0; i < n; i++)
      if (a[i] != b[i] && diff++ == 0)
        *worst = i;
    return diff;
  }
  const float *a = got->data, *b = want->data;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (max_abs == max_abs && !(d <= max_abs)) { /* NaN counts as the worst, and stays so */
      max_abs = d;
      *worst = i;
    }
    if (fabs((double)b[i]) > max_ref) max_ref = fabs((double)b[i]);
  }
  return max_abs / (max_ref > 1e-30 ? max_ref : 1e-30);
}

static int run_case(t3d_backend *ref, t3d_backend *test, const op_case *c, t3d_precision prec)
{
  t3d_tensor *host[MAX_IN] = {0}, *want = NULL, *got = NULL;
  t3d_status s = T3D_OK;
  int ok = 0;
  for (int i = 0; i < c->nin && s == T3D_OK; i++)
    if (c->in[i].ndim > 0 && (s = t3d_tensor_new(&host[i], c->in[i].dtype, c->in[i].ndim, c->in[i].shape)) == T3D_OK)
      fill(host[i], &c->in[i], c->vocab);
  if (s == T3D_OK) s = run_on(ref, c, host, &want);
  if (s != T3D_OK) {
    printf("FAIL %-48s CPU reference: %s: %s\n", c->name, t3d_strerror(s), t3d_error_detail());
    goto cleanup;
  }
  if ((s = run_on(test, c, host, &got)) != T3D_OK) {
    printf("FAIL %-48s %s: %s: %s\n", c->name, test->ops->name, t3d_strerror(s), t3d_error_detail());
    goto cleanup;
  }
  int64_t worst;
  double rel = compare(got, want, &worst), tol = tolerance(c->op, prec);
  ok = rel <= tol;
  if (want->dtype == T3D_I32)
    printf("%s %-48s %.0f differing indices (first at %lld: got %d, want %d), want 0\n", ok ? "PASS" : "FAIL", c->name,
           rel, (long long)worst, ((int32_t *)got->data)[worst], ((int32_t *)want->data)[worst]);
  else
    printf("%s %-48s rel %.3g (tolerance %.0e), worst at %lld: got %.9g, want %.9g\n", ok ? "PASS" : "FAIL", c->name,
           rel, tol, (long long)worst, (double)((float *)got->data)[worst], (double)((float *)want->data)[worst]);
cleanup:
  for (int i = 0; i < MAX_IN; i++)
    t3d_tensor_free(host[i]);
  t3d_tensor_free(want);
  t3d_tensor_free(got);
  t3d_error_clear();
  return ok;
}

/* An id outside the table must be T3D_ERR_INVALID_ARG from the device too (it is found there). */
static int check_embedding_error(t3d_backend *be)
{
  const int64_t is[1] = {4}, ts[2] = {3, 2}, ys[2] = {4, 2};
  const int32_t ids[4] = {0, 2, 3, 1};
  const float tab[6] = {0, 1, 2, 3, 4, 5};
  t3d_tensor hi = t3d_tensor_view(T3D_I32, 1, is, (void *)ids), ht = t3d_tensor_view(T3D_F32, 2, ts, (void *)tab);
  t3d_tensor di = {0}, dt = {0}, dy = {0};
  t3d_status s = t3d_backend_tensor_new(be, &di, T3D_I32, 1, is);
  if (s == T3D_OK) s = t3d_backend_tensor_new(be, &dt, T3D_F32, 2, ts);
  if (s == T3D_OK) s = t3d_backend_tensor_new(be, &dy, T3D_F32, 2, ys);
  if (s == T3D_OK) s = t3d_backend_upload(be, &di, &hi);
  if (s == T3D_OK) s = t3d_backend_upload(be, &dt, &ht);
  if (s == T3D_OK) s = t3d_op_embedding(be, &dy, &di, &dt);
  int ok = s == T3D_ERR_INVALID_ARG;
  printf("%s %-48s status %s (%s), want %s\n", ok ? "PASS" : "FAIL", "embedding/id 3 outside a table of 3",
         t3d_strerror(s), t3d_error_detail(), t3d_strerror(T3D_ERR_INVALID_ARG));
  t3d_error_clear();
  t3d_backend_tensor_free(be, &di);
  t3d_backend_tensor_free(be, &dt);
  t3d_backend_tensor_free(be, &dy);
  return ok;
}

int main(int argc, char **argv)
{
  const char *backend = "cuda";
  t3d_precision prec = T3D_PRECISION_FP32;
  t3d_backend *ref = NULL, *test = NULL;
  t3d_backend_cuda_params cp = t3d_backend_cuda_default_params();
  int passed = 0, failed = 0;
  unsigned long long seed = (unsigned long long)time(NULL);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--precision") == 0 && t3d_precision_parse(argv[i + 1], &prec) == T3D_OK)
      continue;
    if (strcmp(argv[i], "--seed") == 0) {
      seed = strtoull(argv[i + 1], NULL, 10);
      continue;
    }
    if (strcmp(argv[i], "--backend") == 0) {
      backend = argv[i + 1];
      continue;
    }
    fprintf(stderr, "usage: test-cuda-ops [--precision fp32|tf32] [--seed N] [--backend cuda|cpu]\n");
    return 2;
  }
  if (strcmp(backend, "cuda") == 0) {
    int count = 0;
    const char *why = "";
    if (t3d_cuda_device_count(&count, &why) != T3D_OK || count == 0) {
      printf("SKIP: no usable CUDA device (%s)\n", why);
      return 77;
    }
    cp.precision = prec;
    if (t3d_backend_cuda_create(&test, &cp) != T3D_OK) {
      printf("FAIL: a CUDA device exists but the backend cannot be made: %s\n", t3d_error_detail());
      return 1;
    }
  } else if (t3d_backend_cpu_create(&test, NULL) != T3D_OK) {
    printf("FAIL: cpu backend: %s\n", t3d_error_detail());
    return 1;
  }
  if (t3d_backend_cpu_create(&ref, NULL) != T3D_OK) {
    printf("FAIL: cpu backend: %s\n", t3d_error_detail());
    t3d_backend_free(test);
    return 1;
  }
  rng = seed * 2654435761ull + 1;
  printf("test-cuda-ops: %s (%s) against cpu, seed %llu (--seed %llu reproduces)\n", test->ops->name,
         t3d_precision_name(prec), seed, seed);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    run_case(ref, test, &cases[i], prec) ? passed++ : failed++;
  check_embedding_error(test) ? passed++ : failed++;
  printf("test-cuda-ops: %d passed, %d failed\n", passed, failed);
  t3d_backend_free(test);
  t3d_backend_free(ref);
  return failed ? 1 : 0;
}
