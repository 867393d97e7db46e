/* `t3d bench-ops`: times each backend op at the shapes of the reference models (3D ResNet-50 on a
 * 1x1x160x224x224 volume, BERT-base at 256 tokens) and, in the same run, PyTorch on the same
 * shapes and thread count (tests/reference/bench_ops.py, timings back as JSON on stdout).
 * Not a correctness check (tests/test-ops-parity is) and not an end-to-end model benchmark. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libintl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/base/status.h"
#include "core/base/tensor.h"
#include "kernels/backend.h"

#define _(s) gettext(s)

#ifndef T3D_BENCH_PYTHON
#define T3D_BENCH_PYTHON "python3"
#endif
#ifndef T3D_BENCH_SRCDIR
#define T3D_BENCH_SRCDIR "."
#endif
#ifndef T3D_PKGDATADIR
#define T3D_PKGDATADIR "."
#endif

/* How many timed runs, from the warm-up time and --repeat: slow ops are capped at BENCH_BUDGET_S
 * of timed runs (at least one); fast ops run until BENCH_MIN_S is timed (at most BENCH_MAX_REPS
 * runs) so that their median is not one preempted run on a busy machine. bench_ops.py gets the
 * same numbers and applies the same rule (bench_reps). */
#define BENCH_BUDGET_S 5.0
#define BENCH_MIN_S 0.25
#define BENCH_MAX_REPS 200

typedef enum {
  B_CONV3D,
  B_CONV3D_TRANSPOSE,
  B_MAXPOOL3D,
  B_ADD_RELU,
  B_AVGPOOL3D_GLOBAL,
  B_RESAMPLE_TRILINEAR,
  B_ARGMAX,
  B_LINEAR,
  B_LAYERNORM,
  B_GELU,
  B_SOFTMAX,
  B_ATTENTION,
  B_EMBEDDING,
} bench_kind;

static const char *const kind_names[] = {
  "conv3d", "conv3d_transpose", "maxpool3d", "add_relu", "avgpool3d_global", "resample_trilinear",
  "argmax", "linear", "layernorm", "gelu", "softmax", "attention", "embedding",
};

/* One row of the table. `in` is the input shape (ids shape for embedding, q/k/v for attention);
 * out_c: conv/linear output channels, embedding width; size: resample output D,H,W. */
typedef struct {
  const char *name;
  bench_kind kind;
  int ndim;
  int64_t in[5];
  int64_t out_c;
  int k, s, p;
  int64_t size[3];
  int heads;
  int64_t vocab;
} bench_case;

/* Shapes from DESIGN.md: 3D ResNet-50 (MONAI layout) on 1x1x160x224x224; BERT-base, 256 tokens. */
static const bench_case full_cases[] = {
  {"conv1 7^3 s2", B_CONV3D, 5, {1, 1, 160, 224, 224}, 64, 7, 2, 3, {0}, 0, 0},
  {"maxpool 3 s2 p1", B_MAXPOOL3D, 5, {1, 64, 80, 112, 112}, 0, 3, 2, 1, {0}, 0, 0},
  {"layer1 conv 3^3", B_CONV3D, 5, {1, 64, 40, 56, 56}, 64, 3, 1, 1, {0}, 0, 0},
  {"layer1 conv 1^3 64->256", B_CONV3D, 5, {1, 64, 40, 56, 56}, 256, 1, 1, 0, {0}, 0, 0},
  {"layer2 conv 3^3 s2", B_CONV3D, 5, {1, 128, 40, 56, 56}, 128, 3, 2, 1, {0}, 0, 0},
  {"layer4 conv 1^3 512->2048", B_CONV3D, 5, {1, 512, 5, 7, 7}, 2048, 1, 1, 0, {0}, 0, 0},
  {"residual add+relu", B_ADD_RELU, 5, {1, 256, 40, 56, 56}, 0, 0, 0, 0, {0}, 0, 0},
  {"global avgpool", B_AVGPOOL3D_GLOBAL, 5, {1, 2048, 5, 7, 7}, 0, 0, 0, 0, {0}, 0, 0},
  {"convT 2^3 s2 64->32", B_CONV3D_TRANSPOSE, 5, {1, 64, 40, 56, 56}, 32, 2, 2, 0, {0}, 0, 0},
  {"resample trilinear", B_RESAMPLE_TRILINEAR, 5, {1, 1, 160, 224, 224}, 0, 0, 0, 0, {80, 112, 112}, 0, 0},
  {"argmax 4 classes", B_ARGMAX, 5, {1, 4, 160, 224, 224}, 0, 0, 0, 0, {0}, 0, 0},
  {"linear 768->768", B_LINEAR, 2, {256, 768}, 768, 0, 0, 0, {0}, 0, 0},
  {"linear 768->3072", B_LINEAR, 2, {256, 768}, 3072, 0, 0, 0, {0}, 0, 0},
  {"linear 3072->768", B_LINEAR, 2, {256, 3072}, 768, 0, 0, 0, {0}, 0, 0},
  {"layernorm", B_LAYERNORM, 2, {256, 768}, 0, 0, 0, 0, {0}, 0, 0},
  {"gelu", B_GELU, 2, {256, 3072}, 0, 0, 0, 0, {0}, 0, 0},
  {"softmax", B_SOFTMAX, 3, {12, 256, 256}, 0, 0, 0, 0, {0}, 0, 0},
  {"attention H12 Dh64", B_ATTENTION, 3, {1, 256, 768}, 0, 0, 0, 0, {0}, 12, 0},
  {"embedding 30522x768", B_EMBEDDING, 1, {256}, 768, 0, 0, 0, {0}, 0, 30522},
};
enum { N_CASES = sizeof full_cases / sizeof full_cases[0] };

/* --quick: the same rows at a quarter of the spatial extent and 64 tokens (a smoke test). */
static bench_case quick_case(bench_case c)
{
  switch (c.kind) {
  case B_LINEAR: case B_LAYERNORM: case B_GELU:
    c.in[0] = 64;
    break;
  case B_SOFTMAX:
    c.in[1] = c.in[2] = 64;
    break;
  case B_ATTENTION:
    c.in[1] = 64;
    break;
  case B_EMBEDDING:
    c.in[0] = 64;
    c.vocab = 3000;
    break;
  default:
    for (int d = 2; d < 5; d++)
      c.in[d] = (c.in[d] + 3) / 4;
    for (int d = 0; d < 3; d++)
      c.size[d] = (c.size[d] + 3) / 4;
    break;
  }
  return c;
}

/* ---- shapes, work and the op call ---------------------------------------------------------- */

typedef struct {
  t3d_tensor t[6]; /* operands: y first, then inputs */
  int n;
  int64_t yshape[5];
  int yndim;
  double flops; /* floating-point operations per call, 0 for memory-bound ops */
  double bytes; /* bytes each call must read and write at least */
} bench_setup;

static double numel(int ndim, const int64_t *s)
{
  double n = 1;
  for (int i = 0; i < ndim; i++)
    n *= (double)s[i];
  return n;
}

/* Output shape and the work of one call. */
static void plan(const bench_case *c, bench_setup *b)
{
  memcpy(b->yshape, c->in, sizeof b->yshape);
  b->yndim = c->ndim;
  double nin = numel(c->ndim, c->in);
  switch (c->kind) {
  case B_CONV3D:
    b->yshape[1] = c->out_c;
    for (int d = 2; d < 5; d++)
      b->yshape[d] = t3d_conv_out_size(c->in[d], c->k, c->s, c->p);
    b->flops = 2.0 * numel(5, b->yshape) * (double)c->in[1] * c->k * c->k * c->k;
    break;
  case B_CONV3D_TRANSPOSE:
    b->yshape[1] = c->out_c;
    for (int d = 2; d < 5; d++)
      b->yshape[d] = t3d_conv_transpose_out_size(c->in[d], c->k, c->s, c->p, 0);
    b->flops = 2.0 * nin * (double)c->out_c * c->k * c->k * c->k;
    break;
  case B_MAXPOOL3D:
    for (int d = 2; d < 5; d++)
      b->yshape[d] = t3d_conv_out_size(c->in[d], c->k, c->s, c->p);
    b->bytes = 4.0 * (nin + numel(5, b->yshape));
    break;
  case B_ADD_RELU:
    b->bytes = 4.0 * 5 * nin; /* add reads a, b, writes y; relu reads and writes y */
    break;
  case B_AVGPOOL3D_GLOBAL:
    b->yndim = 2;
    b->bytes = 4.0 * nin;
    break;
  case B_RESAMPLE_TRILINEAR:
    memcpy(b->yshape + 2, c->size, sizeof c->size);
    b->bytes = 4.0 * (nin + numel(5, b->yshape));
    break;
  case B_ARGMAX:
    b->yshape[1] = c->in[2], b->yshape[2] = c->in[3], b->yshape[3] = c->in[4];
    b->yndim = 4;
    b->bytes = 4.0 * (nin + numel(4, b->yshape));
    break;
  case B_LINEAR:
    b->yshape[c->ndim - 1] = c->out_c;
    b->flops = 2.0 * nin * (double)c->out_c;
    break;
  case B_LAYERNORM: case B_GELU: case B_SOFTMAX:
    b->bytes = 8.0 * nin;
    break;
  case B_ATTENTION:
    /* q k^T and p v: 2 * 2 * B * L * L * E */
    b->flops = 4.0 * (double)c->in[0] * (double)c->in[1] * (double)c->in[1] * (double)c->in[2];
    break;
  case B_EMBEDDING:
    b->yshape[1] = c->out_c;
    b->yndim = 2;
    b->bytes = 8.0 * nin * (double)c->out_c + 4.0 * nin;
    break;
  }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float rng_uniform(void) /* [-1, 1) */
{
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* Allocates operand i with the shape given, filled with random host data (ids in [0, vocab)). */
static t3d_status operand(t3d_backend *be, bench_setup *b, t3d_dtype dt, int ndim, const int64_t *shape,
                          float scale, int64_t vocab)
{
  t3d_tensor *host = NULL;
  t3d_tensor *dev = &b->t[b->n];
  t3d_status st = t3d_tensor_new(&host, dt, ndim, shape);
  if (st != T3D_OK)
    return st;
  int64_t n = t3d_tensor_numel(host);
  for (int64_t i = 0; i < n; i++) {
    if (dt == T3D_I32)
      ((int32_t *)host->data)[i] = (int32_t)((rng_uniform() * 0.5f + 0.5f) * (float)vocab) % (int32_t)vocab;
    else
      ((float *)host->data)[i] = rng_uniform() * scale;
  }
  st = t3d_backend_tensor_new(be, dev, dt, ndim, shape);
  if (st == T3D_OK) {
    b->n++;
    st = t3d_backend_upload(be, dev, host);
  }
  t3d_tensor_free(host);
  return st;
}

static t3d_status setup(t3d_backend *be, const bench_case *c, bench_setup *b)
{
  t3d_status st;
  int64_t w[5];
  plan(c, b);
  if ((st = operand(be, b, c->kind == B_ARGMAX ? T3D_I32 : T3D_F32, b->yndim, b->yshape, 0.0f, 1)) != T3D_OK)
    return st;
  switch (c->kind) {
  case B_CONV3D: case B_CONV3D_TRANSPOSE: {
    int64_t wshape[5] = {c->kind == B_CONV3D ? c->out_c : c->in[1], c->kind == B_CONV3D ? c->in[1] : c->out_c,
                         c->k, c->k, c->k};
    int64_t bshape[1] = {c->out_c};
    if ((st = operand(be, b, T3D_F32, 5, c->in, 1.0f, 0)) != T3D_OK ||
        (st = operand(be, b, T3D_F32, 5, wshape, 0.05f, 0)) != T3D_OK)
      return st;
    return operand(be, b, T3D_F32, 1, bshape, 1.0f, 0);
  }
  case B_ADD_RELU:
    if ((st = operand(be, b, T3D_F32, c->ndim, c->in, 1.0f, 0)) != T3D_OK)
      return st;
    return operand(be, b, T3D_F32, c->ndim, c->in, 1.0f, 0);
  case B_LINEAR:
    w[0] = c->out_c, w[1] = c->in[c->ndim - 1];
    if ((st = operand(be, b, T3D_F32, c->ndim, c->in, 1.0f, 0)) != T3D_OK ||
        (st = operand(be, b, T3D_F32, 2, w, 0.05f, 0)) != T3D_OK)
      return st;
    return operand(be, b, T3D_F32, 1, w, 1.0f, 0);
  case B_LAYERNORM:
    w[0] = c->in[c->ndim - 1];
    if ((st = operand(be, b, T3D_F32, c->ndim, c->in, 1.0f, 0)) != T3D_OK ||
        (st = operand(be, b, T3D_F32, 1, w, 1.0f, 0)) != T3D_OK)
      return st;
    return operand(be, b, T3D_F32, 1, w, 1.0f, 0);
  case B_ATTENTION:
    for (int i = 0; i < 3; i++)
      if ((st = operand(be, b, T3D_F32, c->ndim, c->in, 1.0f, 0)) != T3D_OK)
        return st;
    return T3D_OK;
  case B_EMBEDDING:
    w[0] = c->vocab, w[1] = c->out_c;
    if ((st = operand(be, b, T3D_I32, c->ndim, c->in, 0.0f, c->vocab)) != T3D_OK)
      return st;
    return operand(be, b, T3D_F32, 2, w, 1.0f, 0);
  default: /* one input shaped like c->in */
    return operand(be, b, T3D_F32, c->ndim, c->in, 1.0f, 0);
  }
}

static void teardown(t3d_backend *be, bench_setup *b)
{
  for (int i = 0; i < b->n; i++)
    t3d_backend_tensor_free(be, &b->t[i]);
  b->n = 0;
}

static t3d_status call(t3d_backend *be, const bench_case *c, bench_setup *b)
{
  t3d_tensor *t = b->t;
  switch (c->kind) {
  case B_CONV3D: {
    t3d_conv3d_params p = {{c->s, c->s, c->s}, {c->p, c->p, c->p}, false, false};
    return t3d_op_conv3d(be, &t[0], &t[1], &t[2], &t[3], NULL, &p);
  }
  case B_CONV3D_TRANSPOSE: {
    t3d_conv3d_transpose_params p = {{c->s, c->s, c->s}, {c->p, c->p, c->p}, {0, 0, 0}};
    return t3d_op_conv3d_transpose(be, &t[0], &t[1], &t[2], &t[3], &p);
  }
  case B_MAXPOOL3D: {
    t3d_pool3d_params p = {{c->k, c->k, c->k}, {c->s, c->s, c->s}, {c->p, c->p, c->p}};
    return t3d_op_maxpool3d(be, &t[0], &t[1], &p);
  }
  case B_ADD_RELU: {
    t3d_status st = t3d_op_add(be, &t[0], &t[1], &t[2]);
    return st != T3D_OK ? st : t3d_op_relu(be, &t[0], &t[0]);
  }
  case B_AVGPOOL3D_GLOBAL: return t3d_op_avgpool3d_global(be, &t[0], &t[1]);
  case B_RESAMPLE_TRILINEAR: return t3d_op_resample_trilinear(be, &t[0], &t[1]);
  case B_ARGMAX: return t3d_op_argmax(be, &t[0], &t[1]);
  case B_LINEAR: return t3d_op_linear(be, &t[0], &t[1], &t[2], &t[3]);
  case B_LAYERNORM: return t3d_op_layernorm(be, &t[0], &t[1], &t[2], &t[3], 1e-12f);
  case B_GELU: return t3d_op_gelu(be, &t[0], &t[1]);
  case B_SOFTMAX: return t3d_op_softmax(be, &t[0], &t[1]);
  case B_ATTENTION: return t3d_op_attention(be, &t[0], &t[1], &t[2], &t[3], NULL, c->heads);
  case B_EMBEDDING: return t3d_op_embedding(be, &t[0], &t[1], &t[2]);
  }
  return t3d_error(T3D_ERR_INTERNAL, "bench-ops: unknown kind %d", (int)c->kind);
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int bench_reps(double warm_ms, int repeat)
{
  double warm_s = warm_ms > 1e-6 ? warm_ms * 1e-3 : 1e-9;
  if (warm_s * repeat > BENCH_BUDGET_S)
    return BENCH_BUDGET_S / warm_s < 1 ? 1 : (int)(BENCH_BUDGET_S / warm_s);
  if (warm_s * repeat < BENCH_MIN_S) {
    double n = BENCH_MIN_S / warm_s;
    return n > BENCH_MAX_REPS ? BENCH_MAX_REPS : n > repeat ? (int)n : repeat;
  }
  return repeat;
}

/* One warm-up, then bench_reps timed calls; *ms is their median. */
static t3d_status time_case(t3d_backend *be, const bench_case *c, int repeat, double *ms)
{
  bench_setup b = {0};
  double *times = NULL;
  t3d_status st = setup(be, c, &b);
  if (st != T3D_OK)
    goto cleanup;
  double t0 = now_ms();
  if ((st = call(be, c, &b)) != T3D_OK || (st = be->ops->synchronize(be)) != T3D_OK)
    goto cleanup;
  double warm = now_ms() - t0;
  int reps = bench_reps(warm, repeat);
  times = malloc(sizeof *times * (size_t)reps);
  if (!times) {
    st = t3d_error(T3D_ERR_NOMEM, "bench-ops: out of memory");
    goto cleanup;
  }
  for (int r = 0; r < reps; r++) {
    t0 = now_ms();
    if ((st = call(be, c, &b)) != T3D_OK || (st = be->ops->synchronize(be)) != T3D_OK)
      goto cleanup;
    times[r] = now_ms() - t0;
  }
  qsort(times, (size_t)reps, sizeof *times, cmp_double);
  *ms = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
cleanup:
  free(times);
  teardown(be, &b);
  return st;
}

/* ---- the PyTorch side ------------------------------------------------------------------------------ */

static const char *find_bench_script(char *buf, size_t size)
{
  const char *dirs[3] = {getenv("T3D_SRCDIR"), T3D_BENCH_SRCDIR, NULL};
  for (int i = 0; i < 2; i++) {
    if (!dirs[i] || !*dirs[i])
      continue;
    snprintf(buf, size, "%s/tests/reference/bench_ops.py", dirs[i]);
    if (access(buf, R_OK) == 0)
      return buf;
  }
  snprintf(buf, size, "%s/bench_ops.py", T3D_PKGDATADIR);
  return access(buf, R_OK) == 0 ? buf : NULL;
}

/* Single-quotes s for /bin/sh. */
static void shell_quote(char *out, size_t size, const char *s)
{
  size_t n = 0;
  if (size < 3)
    return;
  out[n++] = '\'';
  for (; *s && n + 5 < size; s++) {
    if (*s == '\'') {
      memcpy(out + n, "'\\''", 4);
      n += 4;
    } else {
      out[n++] = *s;
    }
  }
  out[n++] = '\'';
  out[n] = '\0';
}

/* Runs bench_ops.py on the same cases; returns its "ms" object (caller's reference) or NULL
 * after printing why. */
static json_t *run_torch(const bench_case *cases, int n, int threads, int repeat)
{
  char script[4096], tmpl[4096], cmd[16384], q1[4200], q2[4200], q3[4200];
  json_t *list = NULL, *result = NULL, *ms = NULL;
  char *out = NULL;
  size_t len = 0, cap = 0;
  FILE *p = NULL;
  int fd = -1;
  const char *python = getenv("T3D_PYTHON");
  if (!python || !*python)
    python = T3D_BENCH_PYTHON;
  if (!find_bench_script(script, sizeof script)) {
    fprintf(stderr, _("t3d bench-ops: bench_ops.py not found (set T3D_SRCDIR to the source tree); "
                      "PyTorch columns left empty\n"));
    return NULL;
  }
  const char *tmpdir = getenv("TMPDIR");
  snprintf(tmpl, sizeof tmpl, "%s/t3d-bench-ops-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  list = json_array();
  for (int i = 0; i < n; i++) {
    const bench_case *c = &cases[i];
    json_t *shape = json_array();
    for (int d = 0; d < c->ndim; d++)
      json_array_append_new(shape, json_integer(c->in[d]));
    json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:i, s:i, s:i, s:[I,I,I], s:i, s:I}", "name", c->name, "kind",
                          kind_names[c->kind], "in", shape, "out_c", (json_int_t)c->out_c, "k", c->k, "s", c->s,
                          "p", c->p, "size", (json_int_t)c->size[0], (json_int_t)c->size[1],
                          (json_int_t)c->size[2], "heads", c->heads, "vocab", (json_int_t)c->vocab);
    json_array_append_new(list, o);
  }
  fd = mkstemp(tmpl);
  if (fd < 0 || json_dumpfd(list, fd, 0) != 0) {
    fprintf(stderr, _("t3d bench-ops: cannot write %s: %s; PyTorch columns left empty\n"), tmpl, strerror(errno));
    goto cleanup;
  }
  close(fd);
  fd = -1;
  shell_quote(q1, sizeof q1, python);
  shell_quote(q2, sizeof q2, script);
  shell_quote(q3, sizeof q3, tmpl);
  snprintf(cmd, sizeof cmd, "%s %s %s --threads %d --repeat %d --budget-s %g --min-s %g --max-reps %d", q1, q2,
           q3, threads, repeat, BENCH_BUDGET_S, BENCH_MIN_S, BENCH_MAX_REPS);
  fflush(stdout);
  p = popen(cmd, "r");
  if (!p) {
    fprintf(stderr, _("t3d bench-ops: cannot run %s: %s\n"), python, strerror(errno));
    goto cleanup;
  }
  for (;;) {
    if (len + 4096 + 1 > cap) {
      char *grown = realloc(out, cap = cap * 2 + 8192);
      if (!grown)
        break;
      out = grown;
    }
    size_t got = fread(out + len, 1, 4096, p);
    if (got == 0)
      break;
    len += got;
  }
  int rc = pclose(p);
  if (rc != 0 || !out) {
    fprintf(stderr, _("t3d bench-ops: '%s' failed (status %d); PyTorch columns left empty\n"), cmd, rc);
    goto cleanup;
  }
  out[len] = '\0';
  json_error_t jerr;
  result = json_loads(out, 0, &jerr);
  ms = json_incref(json_object_get(result, "ms"));
  if (!json_is_object(ms))
    fprintf(stderr, _("t3d bench-ops: bench_ops.py printed no timings (%s)\n"), jerr.text);
cleanup:
  if (fd >= 0)
    close(fd);
  if (!strstr(tmpl, "XXXXXX")) /* mkstemp made it */
    unlink(tmpl);
  free(out);
  json_decref(list);
  json_decref(result);
  return ms;
}

/* ---- the command ------------------------------------------------------------------------------------ */

static void usage(FILE *to)
{
  fprintf(to,
          _("Usage: t3d bench-ops [--threads N] [--repeat N] [--quick] [--no-torch]\n"
          "Times each op at the shapes of 3D ResNet-50 (1x1x160x224x224) and BERT-base (256 tokens)\n"
          "on the CPU backend, and PyTorch on the same shapes and threads (T3D_PYTHON).\n"
          "  --threads N  worker threads for t3d and PyTorch (default: all online cores)\n"
          "  --repeat N   timed runs per op after one warm-up; the median is shown (default 5;\n"
          "               fewer when they would take over %.0f s, more (up to %d) for ops\n"
          "               faster than %.2f s in all)\n"
          "  --quick      a quarter of the spatial sizes and 64 tokens (smoke test)\n"
          "  --no-torch   do not run PyTorch\n"
          "ratio = torch ms / t3d ms: above 1 means t3d is faster.\n"),
          BENCH_BUDGET_S, BENCH_MAX_REPS, BENCH_MIN_S);
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *s)
{
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < ndim && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, i ? "x" : "", s[i]);
}

int t3d_cmd_bench_ops(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"threads", required_argument, NULL, 't'}, {"repeat", required_argument, NULL, 'r'},
    {"quick", no_argument, NULL, 'q'},         {"no-torch", no_argument, NULL, 'n'},
    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
  };
  int threads = 0, repeat = 5, opt;
  bool quick = false, torch = true;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    char *end = NULL;
    switch (opt) {
    case 't':
      threads = (int)strtol(optarg, &end, 10);
      if (*end || threads < 1) {
        fprintf(stderr, _("t3d bench-ops: --threads wants a positive integer, not '%s'\n"), optarg);
        return 2;
      }
      break;
    case 'r':
      repeat = (int)strtol(optarg, &end, 10);
      if (*end || repeat < 1) {
        fprintf(stderr, _("t3d bench-ops: --repeat wants a positive integer, not '%s'\n"), optarg);
        return 2;
      }
      break;
    case 'q': quick = true; break;
    case 'n': torch = false; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, _("t3d bench-ops: unexpected argument '%s'\n"), argv[optind]);
    return 2;
  }

  bench_case cases[N_CASES];
  for (int i = 0; i < N_CASES; i++)
    cases[i] = quick ? quick_case(full_cases[i]) : full_cases[i];

  t3d_backend *be = NULL;
  t3d_backend_params params = t3d_backend_default_params();
  params.threads = threads;
  t3d_status st = t3d_backend_cpu_create(&be, &params);
  if (st != T3D_OK)
    return t3d_cli_fail(st, "bench-ops: CPU backend");

  double t3d_ms[N_CASES];
  int failed = 0;
  bool progress = isatty(STDERR_FILENO);
  for (int i = 0; i < N_CASES; i++) {
    if (progress)
      fprintf(stderr, "t3d bench-ops: %-28s ...\r", cases[i].name);
    st = time_case(be, &cases[i], repeat, &t3d_ms[i]);
    if (st != T3D_OK) {
      fprintf(stderr, "t3d bench-ops: %s: %s: %s\n", cases[i].name, _(t3d_strerror(st)), t3d_error_detail());
      t3d_ms[i] = -1;
      failed++;
    }
  }
  if (progress)
    fprintf(stderr, "%-60s\r", "");
  json_t *torch_ms = torch ? run_torch(cases, N_CASES, be->threads, repeat) : NULL;

  printf(quick ? _("t3d bench-ops: backend %s, %d threads, quick sizes, median of %d runs after 1 warm-up "
                   "(fewer for ops over %.0f s, more for ops under %.2f s)\n")
               : _("t3d bench-ops: backend %s, %d threads, full sizes, median of %d runs after 1 warm-up "
                   "(fewer for ops over %.0f s, more for ops under %.2f s)\n"),
         be->ops->name, be->threads, repeat, BENCH_BUDGET_S / repeat, BENCH_MIN_S / repeat);
  double load[1];
  if (getloadavg(load, 1) == 1) /* timings on a busy machine are not comparable: say so */
    printf(_("load average %.2f on %ld online CPUs\n"), load[0], sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-26s %-34s %10s %16s %10s %7s\n", _("op"), _("input shape"), _("t3d ms"), _("rate"), _("torch ms"),
         _("ratio"));
  for (int i = 0; i < N_CASES; i++) {
    bench_setup b = {0};
    char shape[64], rate[32] = "-", tms[32] = "-", ratio[32] = "-", ms[32] = "failed";
    plan(&cases[i], &b);
    format_shape(shape, sizeof shape, cases[i].ndim, cases[i].in);
    if (cases[i].kind == B_EMBEDDING) /* ids, then the table they index */
      snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "ids/%" PRId64 "x%" PRId64, cases[i].vocab,
               cases[i].out_c);
    if (t3d_ms[i] >= 0) {
      snprintf(ms, sizeof ms, "%.3f", t3d_ms[i]);
      if (b.flops > 0)
        snprintf(rate, sizeof rate, "%.1f GFLOP/s", b.flops / (t3d_ms[i] * 1e6));
      else
        snprintf(rate, sizeof rate, "%.1f GB/s", b.bytes / (t3d_ms[i] * 1e6));
    }
    json_t *tv = json_object_get(torch_ms, cases[i].name);
    if (json_is_number(tv)) {
      snprintf(tms, sizeof tms, "%.3f", json_number_value(tv));
      if (t3d_ms[i] > 0)
        snprintf(ratio, sizeof ratio, "%.2f", json_number_value(tv) / t3d_ms[i]);
    }
    printf("%-26s %-34s %10s %16s %10s %7s\n", cases[i].name, shape, ms, rate, tms, ratio);
  }
  json_decref(torch_ms);
  t3d_backend_free(be);
  return failed ? 1 : 0;
}
