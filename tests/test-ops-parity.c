/* test-ops-parity: runs every case of a reference file written by tests/reference/ops_reference.py
 * (PyTorch 1.13 CPU) on one backend through the checked t3d_op_* wrappers and compares.
 * Not a benchmark and not a generator of references: it only reads the file and judges.
 *
 * Usage: test-ops-parity [--threads N] BACKEND REFERENCE.safetensors...   (BACKEND: cpu or cuda;
 *   cuda exits 77 (SKIP) where there is no usable GPU or t3d was built without CUDA)
 *   --threads N: backend worker threads (default: all online cores; odd counts split work unevenly)
 *
 * Error measure, per case, over all n elements of the output a (the backend's) and b (the reference):
 *   max_abs = max_i |a_i - b_i|
 *   rel     = max_abs / max(max_i |b_i|, PARITY_TINY)
 * i.e. the worst error relative to the largest reference magnitude of the whole output. This is
 * stable where b_i crosses zero (unlike a per-element ratio) and scale-free across ops. Where b_i
 * is NaN or infinite (documented cases: softmax of an all -inf row), a_i must be the same; a NaN
 * or infinity in a where b differs makes rel infinite. An all-zero reference (PARITY_TINY = 1e-30)
 * thus demands an all-zero result. Integer outputs (argmax) must match exactly: for them max_abs
 * is 0 or 1 and rel is the number of differing indices.
 * A case passes when rel <= the tolerance of its op (see op_tolerance).
 * The references are PyTorch's ops evaluated in float64 on the fp32 inputs (see ops_reference.py);
 * each line also shows PyTorch's own fp32 rel against them ("torch fp32"), for comparison. */
#include "config.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/modelfile.h"
#include "core/base/status.h"
#include "core/base/tensor.h"
#include "kernels/backend.h"
#include "kernels/cuda/device.h"

#define PARITY_TINY 1e-30

typedef struct {
  t3d_backend *be;
  bool must_support_all; /* the CPU backend is the reference: an unsupported op is a failure */
  int passed, failed;
  const char *seed;
} parity;

/* ---- reading the reference file (core/model/modelfile.h reads safetensors) ----------------------------- */

/* A host view of tensor `name` in the mapped file (read-only; valid until the file is closed). */
static t3d_status ref_tensor(const t3d_modelfile *mf, const char *name, t3d_tensor *out)
{
  const t3d_tensor *t = name ? t3d_modelfile_get(mf, name) : NULL;
  if (!t)
    return t3d_error(T3D_ERR_NOT_FOUND, "%s: reference tensor '%s' missing", t3d_modelfile_path(mf),
                     name ? name : "(unnamed)");
  *out = *t;
  out->owned = false;
  return T3D_OK;
}

/* ---- tolerances --------------------------------------------------------------------------------- */

/* Largest accepted rel (see the top of the file) for an fp32 backend against the float64 reference.
 * 1e-5: ops where each output comes from a few inputs through a fixed formula (relu, add, gelu,
 *   softmax, layernorm, embedding, concat, resampling, pooling over small windows): fp32
 *   evaluation is off by a few ulp (~1e-7) of the largest output, so 1e-5 leaves ~100x margin yet
 *   catches any wrong index, weight or missing term.
 * 1e-4: ops summing hundreds to thousands of products (convolution, GEMM, attention, global
 *   means): fp32 accumulation error grows with the number of terms and depends on the summation
 *   order (blocked GEMM, OpenBLAS); PyTorch's own fp32 result is typically 1e-7..1e-6 here.
 * argmax: exact (0 differing indices); inputs are continuous, ties are drawn on integer inputs. */
static double op_tolerance(const char *op)
{
  static const char *const loose[] = {"conv3d", "conv3d_transpose", "linear", "attention",
                                      "avgpool3d_global", "batchnorm_fold"};
  for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++)
    if (strcmp(op, loose[i]) == 0)
      return 1e-4;
  if (strcmp(op, "argmax") == 0)
    return 0.0;
  return 1e-5;
}

/* ---- comparing ---------------------------------------------------------------------------------- */

static void format_index(char *buf, size_t size, const t3d_tensor *t, int64_t flat)
{
  int64_t idx[T3D_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) {
    idx[d] = flat % t->shape[d];
    flat /= t->shape[d];
  }
  size_t n = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < t->ndim && n < size; d++)
    n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, d ? "," : "", idx[d]);
  if (n < size)
    snprintf(buf + n, size - n, "]");
}

/* Prints the case line; returns true on PASS. */
static bool judge(parity *pp, const char *name, const char *op, const char *shapes, const t3d_tensor *got,
                  const t3d_tensor *want, double torch_rel)
{
  double tol = op_tolerance(op);
  int64_t n = t3d_tensor_numel(want), worst = 0, mismatches = 0;
  double max_abs = 0, max_ref = 0, rel;
  if (want->dtype == T3D_I32) {
    const int32_t *a = got->data, *b = want->data;
    for (int64_t i = 0; i < n; i++)
      if (a[i] != b[i] && mismatches++ == 0)
        worst = i;
    max_abs = mismatches ? 1 : 0;
    rel = (double)mismatches;
  } else {
    const float *a = got->data, *b = want->data;
    bool nonfinite = false; /* a non-finite value where the reference differs */
    for (int64_t i = 0; i < n; i++) {
      bool bad;
      if (!isfinite(b[i]))
        bad = isnan(b[i]) ? !isnan(a[i]) : a[i] != b[i];
      else
        bad = !isfinite(a[i]);
      if (bad) {
        if (!nonfinite)
          worst = i;
        nonfinite = true;
        continue;
      }
      if (!isfinite(b[i]))
        continue; /* the same NaN or infinity on both sides */
      double d = fabs((double)a[i] - (double)b[i]);
      if (fabs((double)b[i]) > max_ref)
        max_ref = fabs((double)b[i]);
      if (!nonfinite && d > max_abs) {
        max_abs = d;
        worst = i;
      }
    }
    rel = nonfinite ? INFINITY : max_abs / fmax(max_ref, PARITY_TINY);
    if (nonfinite)
      max_abs = INFINITY;
  }
  bool pass = rel <= tol;
  printf("%-4s %-58s %-44s max_abs %.2e rel %.2e (tol %.0e; torch fp32 %.1e)\n", pass ? "PASS" : "FAIL", name,
         shapes, max_abs, rel, tol, torch_rel);
  if (!pass) {
    char where[96];
    format_index(where, sizeof where, want, worst);
    if (want->dtype == T3D_I32)
      printf("     %" PRId64 " of %" PRId64 " indices differ; first at %s: got %d, want %d\n", mismatches, n, where,
             ((const int32_t *)got->data)[worst], ((const int32_t *)want->data)[worst]);
    else
      printf("     worst at %s: got %.9g, want %.9g (max |want| %.6g)\n", where, ((const float *)got->data)[worst],
             ((const float *)want->data)[worst], max_ref);
    pp->failed++;
  } else {
    pp->passed++;
  }
  return pass;
}

/* ---- running one case ------------------------------------------------------------------------ */

enum { MAX_INPUTS = 8 };

typedef struct {
  const char *role;
  t3d_tensor host; /* view into the reference file */
  t3d_tensor dev;  /* backend copy */
  bool present;
} input;

typedef struct {
  input in[MAX_INPUTS];
  int n;
} inputs;

static const t3d_tensor *dev_in(const inputs *ins, const char *role)
{
  for (int i = 0; i < ins->n; i++)
    if (strcmp(ins->in[i].role, role) == 0)
      return ins->in[i].present ? &ins->in[i].dev : NULL;
  return NULL;
}

static const t3d_tensor *host_in(const inputs *ins, const char *role)
{
  for (int i = 0; i < ins->n; i++)
    if (strcmp(ins->in[i].role, role) == 0)
      return ins->in[i].present ? &ins->in[i].host : NULL;
  return NULL;
}

static void param_ints3(json_t *params, const char *key, int out[3])
{
  json_t *a = json_object_get(params, key);
  for (int i = 0; i < 3; i++)
    out[i] = (int)json_integer_value(json_array_get(a, (size_t)i));
}

static void describe_shapes(char *buf, size_t size, const inputs *ins, const t3d_tensor *want)
{
  const t3d_tensor *first = NULL;
  for (int i = 0; i < ins->n && !first; i++)
    if (ins->in[i].present)
      first = &ins->in[i].host;
  char a[64] = "", b[64] = "";
  if (first)
    t3d_tensor_describe(first, a, sizeof a);
  t3d_tensor_describe(want, b, sizeof b);
  snprintf(buf, size, "%s->%s", a, b);
}

/* How y relates to the inputs: a separate tensor, or the in-place forms the interface allows
 * (y = x for relu/gelu/softmax/layernorm; y = a or y = b for add). For the in-place forms the caller has
 * uploaded that input into y already. */
typedef enum { ALIAS_NONE = 0, ALIAS_FIRST, ALIAS_SECOND } alias_form;

static int alias_forms(const char *op)
{
  if (!strcmp(op, "add"))
    return 3;
  return !strcmp(op, "relu") || !strcmp(op, "gelu") || !strcmp(op, "softmax") || !strcmp(op, "layernorm") ? 2 : 1;
}

static t3d_status call_op(t3d_backend *be, const char *op, json_t *params, const inputs *ins, t3d_tensor *y,
                          alias_form alias)
{
  if (strcmp(op, "conv3d") == 0) {
    t3d_conv3d_params p = {0};
    param_ints3(params, "stride", p.stride);
    param_ints3(params, "pad", p.pad);
    p.relu = json_is_true(json_object_get(params, "relu"));
    return t3d_op_conv3d(be, y, dev_in(ins, "x"), dev_in(ins, "w"), dev_in(ins, "bias"), dev_in(ins, "residual"), &p);
  }
  if (strcmp(op, "conv3d_transpose") == 0) {
    t3d_conv3d_transpose_params p = {0};
    param_ints3(params, "stride", p.stride);
    param_ints3(params, "pad", p.pad);
    param_ints3(params, "output_pad", p.output_pad);
    return t3d_op_conv3d_transpose(be, y, dev_in(ins, "x"), dev_in(ins, "w"), dev_in(ins, "bias"), &p);
  }
  if (strcmp(op, "relu") == 0)
    return t3d_op_relu(be, y, alias ? y : dev_in(ins, "x"));
  if (strcmp(op, "gelu") == 0)
    return t3d_op_gelu(be, y, alias ? y : dev_in(ins, "x"));
  if (strcmp(op, "softmax") == 0)
    return t3d_op_softmax(be, y, alias ? y : dev_in(ins, "x"));
  if (strcmp(op, "add") == 0)
    return t3d_op_add(be, y, alias == ALIAS_FIRST ? y : dev_in(ins, "a"), alias == ALIAS_SECOND ? y : dev_in(ins, "b"));
  if (strcmp(op, "maxpool3d") == 0) {
    t3d_pool3d_params p = {0};
    param_ints3(params, "kernel", p.kernel);
    param_ints3(params, "stride", p.stride);
    param_ints3(params, "pad", p.pad);
    return t3d_op_maxpool3d(be, y, dev_in(ins, "x"), &p);
  }
  if (strcmp(op, "avgpool3d_global") == 0)
    return t3d_op_avgpool3d_global(be, y, dev_in(ins, "x"));
  if (strcmp(op, "avgpool3d_adaptive") == 0)
    return t3d_op_avgpool3d_adaptive(be, y, dev_in(ins, "x"));
  if (strcmp(op, "linear") == 0)
    return t3d_op_linear(be, y, dev_in(ins, "x"), dev_in(ins, "w"), dev_in(ins, "b"));
  if (strcmp(op, "layernorm") == 0)
    return t3d_op_layernorm(be, y, alias ? y : dev_in(ins, "x"), dev_in(ins, "gamma"), dev_in(ins, "beta"),
                            (float)json_number_value(json_object_get(params, "eps")));
  if (strcmp(op, "attention") == 0)
    return t3d_op_attention(be, y, dev_in(ins, "q"), dev_in(ins, "k"), dev_in(ins, "v"), dev_in(ins, "key_mask"),
                            (int)json_integer_value(json_object_get(params, "heads")));
  if (strcmp(op, "embedding") == 0)
    return t3d_op_embedding(be, y, dev_in(ins, "ids"), dev_in(ins, "table"));
  if (strcmp(op, "concat") == 0)
    return t3d_op_concat(be, y, dev_in(ins, "a"), dev_in(ins, "b"));
  if (strcmp(op, "resample_trilinear") == 0)
    return t3d_op_resample_trilinear(be, y, dev_in(ins, "x"));
  if (strcmp(op, "argmax") == 0)
    return t3d_op_argmax(be, y, dev_in(ins, "x"));
  return t3d_error(T3D_ERR_UNSUPPORTED, "unknown op '%s' in the reference file", op);
}

/* batchnorm_fold: fold on the host (as model loading does), then convolve on the backend. */
static t3d_status run_batchnorm_fold(t3d_backend *be, json_t *params, const inputs *ins, t3d_tensor *y)
{
  t3d_tensor *w = NULL, *bias = NULL;
  t3d_tensor dw = {0}, db = {0};
  const t3d_tensor *hw = host_in(ins, "w"), *hb = host_in(ins, "bias");
  t3d_status st = t3d_tensor_new(&w, T3D_F32, hw->ndim, hw->shape);
  if (st != T3D_OK)
    goto cleanup;
  memcpy(w->data, hw->data, t3d_tensor_nbytes(hw));
  if (hb) {
    if ((st = t3d_tensor_new(&bias, T3D_F32, hb->ndim, hb->shape)) != T3D_OK)
      goto cleanup;
    memcpy(bias->data, hb->data, t3d_tensor_nbytes(hb));
  }
  st = t3d_fold_batchnorm(w, &bias, host_in(ins, "gamma"), host_in(ins, "beta"), host_in(ins, "mean"),
                          host_in(ins, "var"), (float)json_number_value(json_object_get(params, "eps")));
  if (st != T3D_OK)
    goto cleanup;
  if (!bias) {
    st = t3d_error(T3D_ERR_INTERNAL, "t3d_fold_batchnorm returned OK but no bias");
    goto cleanup;
  }
  if ((st = t3d_backend_tensor_new(be, &dw, T3D_F32, w->ndim, w->shape)) != T3D_OK ||
      (st = t3d_backend_upload(be, &dw, w)) != T3D_OK ||
      (st = t3d_backend_tensor_new(be, &db, T3D_F32, bias->ndim, bias->shape)) != T3D_OK ||
      (st = t3d_backend_upload(be, &db, bias)) != T3D_OK)
    goto cleanup;
  t3d_conv3d_params p = {0};
  param_ints3(params, "stride", p.stride);
  param_ints3(params, "pad", p.pad);
  st = t3d_op_conv3d(be, y, dev_in(ins, "x"), &dw, &db, NULL, &p);
cleanup:
  t3d_backend_tensor_free(be, &dw);
  t3d_backend_tensor_free(be, &db);
  t3d_tensor_free(w);
  t3d_tensor_free(bias);
  return st;
}

static void run_case(parity *pp, const t3d_modelfile *rf, json_t *c)
{
  const char *name = json_string_value(json_object_get(c, "name"));
  const char *op = json_string_value(json_object_get(c, "op"));
  json_t *params = json_object_get(c, "params");
  json_t *jin = json_object_get(c, "inputs");
  inputs ins = {0};
  t3d_tensor want = {0}, y = {0}, *got = NULL, *poison = NULL;
  char shapes[160] = "?";
  t3d_status st = T3D_OK;
  const char *role;
  json_t *jname;

  if (!name || !op || !json_is_object(jin)) {
    st = t3d_error(T3D_ERR_FORMAT, "malformed case entry");
    goto cleanup;
  }
  json_object_foreach(jin, role, jname) {
    if (ins.n == MAX_INPUTS) {
      st = t3d_error(T3D_ERR_FORMAT, "more than %d inputs", MAX_INPUTS);
      goto cleanup;
    }
    input *in = &ins.in[ins.n++];
    in->role = role;
    if (json_is_null(jname))
      continue;
    if ((st = ref_tensor(rf, json_string_value(jname), &in->host)) != T3D_OK ||
        (st = t3d_backend_tensor_new(pp->be, &in->dev, in->host.dtype, in->host.ndim, in->host.shape)) != T3D_OK)
      goto cleanup;
    in->present = true;
    if ((st = t3d_backend_upload(pp->be, &in->dev, &in->host)) != T3D_OK)
      goto cleanup;
  }
  if ((st = ref_tensor(rf, json_string_value(json_object_get(c, "expected")), &want)) != T3D_OK)
    goto cleanup;
  describe_shapes(shapes, sizeof shapes, &ins, &want);
  if ((st = t3d_backend_tensor_new(pp->be, &y, want.dtype, want.ndim, want.shape)) != T3D_OK ||
      (st = t3d_tensor_new(&got, want.dtype, want.ndim, want.shape)) != T3D_OK ||
      (st = t3d_tensor_new(&poison, want.dtype, want.ndim, want.shape)) != T3D_OK)
    goto cleanup;
  /* y starts as NaN (or -1 for indices): an op that reads its output before writing shows */
  for (int64_t i = 0, n = t3d_tensor_numel(poison); i < n; i++) {
    if (poison->dtype == T3D_I32)
      ((int32_t *)poison->data)[i] = -1;
    else
      ((float *)poison->data)[i] = NAN;
  }

  for (int alias = ALIAS_NONE; alias < alias_forms(op); alias++) {
    const t3d_tensor *y0 = alias == ALIAS_NONE ? poison
                           : alias == ALIAS_FIRST ? host_in(&ins, strcmp(op, "add") == 0 ? "a" : "x")
                                                  : host_in(&ins, "b");
    if ((st = t3d_backend_upload(pp->be, &y, y0)) != T3D_OK)
      goto cleanup;
    if (strcmp(op, "batchnorm_fold") == 0)
      st = run_batchnorm_fold(pp->be, params, &ins, &y);
    else
      st = call_op(pp->be, op, params, &ins, &y, (alias_form)alias);
    if (st == T3D_OK)
      st = t3d_backend_download(pp->be, got, &y);
    if (st != T3D_OK)
      goto cleanup;
    char label[128];
    snprintf(label, sizeof label, "%s%s", name,
             alias == ALIAS_FIRST ? " (in place)" : alias == ALIAS_SECOND ? " (in place, y = b)" : "");
    json_t *jt = json_object_get(c, "torch_f32_rel");
    judge(pp, label, op, shapes, got, &want, json_is_number(jt) ? json_number_value(jt) : NAN);
  }

cleanup:
  if (st != T3D_OK) {
    bool skip = st == T3D_ERR_UNSUPPORTED && !pp->must_support_all;
    printf("%-4s %-58s %-44s %s: %s\n", skip ? "SKIP" : "FAIL", name ? name : "?", shapes, t3d_strerror(st),
           t3d_error_detail());
    if (!skip)
      pp->failed++;
  }
  for (int i = 0; i < ins.n; i++)
    if (ins.in[i].present)
      t3d_backend_tensor_free(pp->be, &ins.in[i].dev);
  t3d_backend_tensor_free(pp->be, &y);
  t3d_tensor_free(got);
  t3d_tensor_free(poison);
}

/* Checks that need no reference: documented error statuses of the wrappers. */
static void run_error_checks(parity *pp)
{
  int64_t ids_shape[1] = {3}, table_shape[2] = {4, 2}, y_shape[2] = {3, 2};
  int32_t ids_host[3] = {0, 4, -1}; /* 4 and -1 are outside [0, 4) */
  float table_host[8] = {0};
  t3d_tensor hids = t3d_tensor_view(T3D_I32, 1, ids_shape, ids_host);
  t3d_tensor htab = t3d_tensor_view(T3D_F32, 2, table_shape, table_host);
  t3d_tensor ids = {0}, tab = {0}, y = {0};
  t3d_status st = T3D_ERR_INTERNAL;
  if (t3d_backend_tensor_new(pp->be, &ids, T3D_I32, 1, ids_shape) == T3D_OK &&
      t3d_backend_upload(pp->be, &ids, &hids) == T3D_OK &&
      t3d_backend_tensor_new(pp->be, &tab, T3D_F32, 2, table_shape) == T3D_OK &&
      t3d_backend_upload(pp->be, &tab, &htab) == T3D_OK &&
      t3d_backend_tensor_new(pp->be, &y, T3D_F32, 2, y_shape) == T3D_OK)
    st = t3d_op_embedding(pp->be, &y, &ids, &tab);
  bool ok = st == T3D_ERR_INVALID_ARG;
  printf("%-4s %-58s %-44s status %s, want %s\n", ok ? "PASS" : "FAIL", "embedding/id-out-of-range",
         "i32[3]->f32[3,2]", t3d_strerror(st), t3d_strerror(T3D_ERR_INVALID_ARG));
  if (ok)
    pp->passed++;
  else
    pp->failed++;

  /* add with mismatched shapes: the wrapper must refuse with T3D_ERR_SHAPE */
  int64_t other_shape[2] = {2, 3};
  t3d_tensor b = {0};
  st = T3D_ERR_INTERNAL;
  if (t3d_backend_tensor_new(pp->be, &b, T3D_F32, 2, other_shape) == T3D_OK)
    st = t3d_op_add(pp->be, &y, &y, &b);
  ok = st == T3D_ERR_SHAPE;
  printf("%-4s %-58s %-44s status %s, want %s\n", ok ? "PASS" : "FAIL", "add/shape-mismatch", "f32[3,2]+f32[2,3]",
         t3d_strerror(st), t3d_strerror(T3D_ERR_SHAPE));
  if (ok)
    pp->passed++;
  else
    pp->failed++;
  t3d_backend_tensor_free(pp->be, &ids);
  t3d_backend_tensor_free(pp->be, &tab);
  t3d_backend_tensor_free(pp->be, &y);
  t3d_backend_tensor_free(pp->be, &b);
  t3d_error_clear();
}

/* ---- backends ------------------------------------------------------------------------------------ */

/* Returns 0 and sets *out, 1 when creation fails, 2 when the name is unknown. A new backend
 * (CUDA) adds its name here, returning 77 (SKIP) where it cannot run (no GPU); the reference
 * files stay the same, and op_tolerance may then depend on the backend (tf32/bf16). */
static int create_backend(const char *name, int threads, t3d_backend **out)
{
  t3d_backend_params params = t3d_backend_default_params();
  params.threads = threads;
  if (strcmp(name, "cpu") == 0) {
    t3d_status st = t3d_backend_cpu_create(out, &params);
    if (st != T3D_OK) {
      fprintf(stderr, "test-ops-parity: cpu backend: %s: %s\n", t3d_strerror(st), t3d_error_detail());
      return 1;
    }
    return 0;
  }
  if (strcmp(name, "cuda") == 0) {
    int count = 0;
    const char *why = "";
    if (t3d_cuda_device_count(&count, &why) != T3D_OK || count == 0) {
      printf("SKIP: test-ops-parity: no CUDA device (%s)\n", why);
      return 77;
    }
    t3d_status st = t3d_backend_cuda_create(out, NULL); /* fp32: the same tolerances as the CPU */
    if (st != T3D_OK) {
      fprintf(stderr, "test-ops-parity: cuda backend: %s: %s\n", t3d_strerror(st), t3d_error_detail());
      return 1;
    }
    return 0;
  }
  fprintf(stderr, "test-ops-parity: unknown backend '%s' (known: cpu, cuda)\n", name);
  return 2;
}

int main(int argc, char **argv)
{
  int threads = 0;
  if (argc > 2 && strcmp(argv[1], "--threads") == 0) {
    threads = atoi(argv[2]);
    argc -= 2;
    argv += 2;
  }
  if (argc < 3 || threads < 0) {
    fprintf(stderr, "usage: test-ops-parity [--threads N] BACKEND REFERENCE.safetensors...\n  BACKEND: cpu or cuda\n");
    return 2;
  }
  parity pp = {0};
  int rc = create_backend(argv[1], threads, &pp.be);
  if (rc != 0)
    return rc;
  pp.must_support_all = strcmp(argv[1], "cpu") == 0 || strcmp(argv[1], "cuda") == 0; /* both have every op */
  printf("test-ops-parity: backend %s, %d threads\n", pp.be->ops->name, pp.be->threads);
  rc = 0;
  for (int f = 2; f < argc; f++) {
    t3d_modelfile *rf = NULL;
    t3d_status st = t3d_modelfile_open(&rf, argv[f]);
    if (st != T3D_OK) {
      fprintf(stderr, "test-ops-parity: %s: %s\n", t3d_strerror(st), t3d_error_detail());
      rc = 1;
      continue;
    }
    pp.seed = t3d_modelfile_metadata(rf, "t3d.parity.seed");
    const char *cases_text = t3d_modelfile_metadata(rf, "t3d.parity.cases");
    json_error_t jerr;
    json_t *cases = cases_text ? json_loads(cases_text, 0, &jerr) : NULL;
    if (!json_is_array(cases) || json_array_size(cases) == 0) {
      fprintf(stderr, "test-ops-parity: %s: no case list in __metadata__ t3d.parity.cases\n", argv[f]);
      rc = 1;
    } else {
      printf("test-ops-parity: %s: %zu cases, seed %s\n", argv[f], json_array_size(cases), pp.seed ? pp.seed : "?");
      size_t i;
      json_t *c;
      json_array_foreach(cases, i, c) run_case(&pp, rf, c);
    }
    json_decref(cases);
    if (pp.failed)
      printf("test-ops-parity: to reproduce: T3D_SEED=%s tests/test-ops-parity.sh (or ops_reference.py)\n",
             pp.seed ? pp.seed : "?");
    t3d_modelfile_close(rf);
    pp.seed = NULL;
  }
  run_error_checks(&pp);
  printf("test-ops-parity: backend %s: %d passed, %d failed\n", argv[1], pp.passed, pp.failed);
  t3d_backend_free(pp.be);
  return rc || pp.failed ? 1 : 0;
}
