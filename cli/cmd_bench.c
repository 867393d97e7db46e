/* `t3d bench`: speed and peak memory of t3d-r50 (random weights) on the CPU next to PyTorch
 * (MONAI ResNet + our decoder, tests/reference/t3d_reference.py) at the reference input, each
 * row measured in its own process (VmHWM) so one side's memory never counts for the other.
 * With --device cuda the t3d rows run on the GPU (peak GPU memory of the backend reported) and
 * the PyTorch peer is tools/bench-torch-gpu.py, which tools/gpu-check.sh runs beside it.
 * Not a correctness check (that is tests/test-vision-parity.sh). */
#include <dirent.h>
#include <sys/stat.h>
#include "config.h"

#include <getopt.h>
#include <libintl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench_peers.h"
#include "cli/commands.h"
#include "core/model/model.h"
#include "core/model/modelfile.h"
#include "core/model/text.h"
#include "core/model/vision.h"
#include "kernels/backend.h"

#define _(s) gettext(s)

#ifndef T3D_REFERENCE_PY
#define T3D_REFERENCE_PY "tests/reference/t3d_reference.py"
#endif
#ifndef T3D_PEER_PY
#define T3D_PEER_PY "tests/reference/peer_bench.py"
#endif
#ifndef T3D_PYTHON_DEFAULT
#define T3D_PYTHON_DEFAULT "python3"
#endif

/* Whether a t3d child times another run (the rule of T3D_BENCH_MIN_MS in bench_peers.h). */
static bool bench_more(int timed, int repeat, double timed_ms)
{
  return timed < repeat || (timed < T3D_BENCH_MAX_RUNS && timed_ms < T3D_BENCH_MIN_MS);
}

static void usage(FILE *to)
{
  fprintf(to,
          _("Usage: t3d bench [--threads N] [--no-torch] [--repeat R] [--config NAME] [--shape D,H,W]\n"
          "                 [--device DEV] [--precision P] [--json] [--no-peers] [--peers-json FILE]\n\n"
          "Times t3d-r50 with random weights at 1x1x160x224x224: the encoder, encoder + segmentation and\n"
          "the text encoder on 256 tokens, each next to PyTorch (MONAI ResNet + our decoder; Hugging Face\n"
          "BertModel + projection) with the same thread count, every row in its own process; prints wall\n"
          "ms (best of R), CPU ms of that run, peak RSS (VmHWM) and the ratios, and the cancel latency.\n"
          "  --threads N    threads for both sides (default: all cores)\n"
          "  --no-torch     no PyTorch timing rows\n"
          "  --no-peers     no OpenVINO / ONNX Runtime rows (ONNX export of the PyTorch reference with\n"
          "                 t3d's weights; OpenVINO at f32 and bf16 inference precision; each row with its\n"
          "                 agreement with PyTorch fp32 and the ISA / kernels each side used; CPU only)\n"
          "  --peers-json FILE  also write every peer-table row as one JSON line to FILE\n"
          "  --repeat R     runs per row, best kept (default 2)\n"
          "  --config NAME  built-in config (default t3d-r50)\n"
          "  --shape D,H,W  input size (default 160,224,224)\n"
          "  --cancel-after S  also measure cancel latency with the flag set after S seconds (default: half of\n"
          "                 the encoder+segmentation row's time, at most 3; 0 = skip)\n"
          "  --device DEV   cpu (default), cuda, cuda:N or auto: where the t3d rows run; on a GPU the\n"
          "                 rows also report the backend's peak GPU memory and PyTorch's CPU rows are skipped\n"
          "  --precision P  fp32 (default) or tf32 for the CUDA backend's convolutions and GEMMs\n"
          "  --json         also print every row as one JSON object on the last line\n"
          "On a GPU an end-to-end row follows: a host HU volume of the input size through t3d_analyze\n"
          "(preprocessing, encoder, zero-shot, decoder, labels back on the series grid).\n"
          "Environment: T3D_PYTHON (python with torch + monai; openvino, onnxruntime for the peers),\n"
          "T3D_REFERENCE_PY (reference script), T3D_PEER_PY (tests/reference/peer_bench.py).\n"));
  t3d_cli_precision_help(to); /* of the t3d rows */
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long vmhwm_kib(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) v = strtol(line + 6, NULL, 10);
  fclose(f);
  return v;
}

/* ---- child: one t3d row ------------------------------------------------------------------- */

typedef struct {
  volatile int flag;
  double after_ms, set_at;
} cancel_ctx;

static void *cancel_thread(void *arg)
{
  cancel_ctx *c = arg;
  struct timespec ts = {(time_t)(c->after_ms / 1000), (long)(fmod(c->after_ms, 1000.0) * 1e6)};
  nanosleep(&ts, NULL);
  c->set_at = now_ms();
  c->flag = 1;
  return NULL;
}

/* The backend of a child row and the JSON fields that describe it (backend name, peak GPU MiB). */
typedef struct {
  const char *device;
  t3d_precision precision;
} bench_dev;

/* The ops the CPU rows compute in bf16, as the children's CPU backend resolves the precision
 * (a t3d_backend.bf16_ops mask). */
static unsigned cpu_bf16_ops(const bench_dev *dv)
{
  if (strcmp(dv->device, "cpu") != 0) return 0;
  if (dv->precision == T3D_PRECISION_BF16) return T3D_BF16_OPS_ALL;
  return dv->precision == T3D_PRECISION_AUTO ? t3d_backend_cpu_bf16_auto_ops() : 0;
}

/* The JSON fields after the timings: backend, peak GPU MiB, the precision the row ran in and the
 * kernels (the bf16 path where the row's ops, row_ops, are bf16 on this backend, else the fp32
 * ones). */
static void dev_fields(const t3d_backend *be, const bench_dev *dv, unsigned row_ops, char *buf, size_t n)
{
  size_t peak = 0;
  t3d_backend_cuda_memory(be, NULL, &peak);
  const bool bf16 = be && be->precision == T3D_PRECISION_BF16 && (be->bf16_ops & row_ops);
  snprintf(buf, n, "\"backend\": \"%s\", \"gpu_peak_mib\": %.1f, \"precision\": \"%s\", \"isa\": \"%s%s%s%s%s%s\"",
           be ? be->ops->name : "none", (double)peak / 1048576.0,
           bf16 ? "bf16" : dv->precision == T3D_PRECISION_TF32 ? "tf32" : "f32", bf16 ? "bf16 path " : "",
           bf16 ? t3d_backend_cpu_bf16_isa() : "", bf16 ? " (" : "", bf16 ? t3d_backend_cpu_bf16_engine() : "",
           bf16 ? ") for convolutions and GEMMs; fp32: " : "",
           t3d_backend_cpu_kernels());
}

/* The text row: one report of 256 tokens ([CLS] + 254 pieces + [SEP]) through BERT + projection. */
static int child_text(const char *model, int threads, int repeat, const bench_dev *dv, const char *dump)
{
  t3d_modelfile *mf = NULL;
  t3d_backend *be = NULL;
  t3d_text_encoder *te = NULL;
  t3d_status s;
  char *text = NULL, devj[768];
  int32_t *ids = NULL;
  float *out = NULL;
  size_t len = 0;
  double best = INFINITY, best_cpu = 0, total = 0;
  int rc = 1;
  if ((s = t3d_modelfile_open(&mf, model)) != T3D_OK) goto fail;
  if ((s = t3d_cli_backend(dv->device, threads, dv->precision, &be)) != T3D_OK) goto fail;
  if ((s = t3d_text_encoder_load(&te, be, mf, t3d_modelfile_config(mf))) != T3D_OK) goto fail;
  t3d_modelfile_close(mf);
  mf = NULL;
  static const char sentence[] = "the liver is normal in size with a small lesion . ";
  size_t reps = 60, sl = strlen(sentence);
  text = malloc(reps * sl + 1);
  ids = malloc((size_t)t3d_text_encoder_max_tokens(te) * sizeof(int32_t));
  out = malloc((size_t)t3d_text_encoder_dim(te) * sizeof(float));
  if (!text || !ids || !out) {
    s = t3d_error(T3D_ERR_NOMEM, "bench: out of memory");
    goto fail;
  }
  for (size_t i = 0; i < reps; i++) memcpy(text + i * sl, sentence, sl);
  text[reps * sl] = 0;
  if ((s = t3d_text_encoder_tokenize(te, text, ids, (size_t)t3d_text_encoder_max_tokens(te), &len)) != T3D_OK)
    goto fail;
  for (int i = 0, timed = 0; i == 0 || bench_more(timed, repeat, total); i++) {
    /* the first run plans the activation buffer: not timed */
    double t0 = now_ms(), c0 = cpu_ms();
    const char *one = text;
    if ((s = t3d_text_encoder_embed(te, &one, 1, out)) != T3D_OK) goto fail;
    double t = now_ms() - t0;
    if (i == 0) continue;
    timed++, total += t;
    if (t < best) {
      best = t;
      best_cpu = cpu_ms() - c0;
    }
  }
  long hwm = vmhwm_kib();
  if (dump && ((s = t3d_bench_dump(dump, "ids.i32", ids, len * sizeof *ids)) != T3D_OK ||
               (s = t3d_bench_dump(dump, "t3d-text.f32", out, (size_t)t3d_text_encoder_dim(te) * sizeof *out)) != T3D_OK))
    goto fail;
  dev_fields(be, dv, 1u << T3D_OP_LINEAR, devj, sizeof devj);
  printf("{\"ms\": %.1f, \"cpu_ms\": %.1f, \"vmhwm_kib\": %ld, \"tokens\": %zu, %s}\n", best, best_cpu, hwm, len,
         devj);
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "bench text");
cleanup:
  free(text);
  free(ids);
  free(out);
  t3d_text_encoder_free(te);
  t3d_backend_free(be);
  t3d_modelfile_close(mf);
  return rc;
}

/* The end-to-end row: a host HU volume of the input size at the model's spacing (so that
 * preprocessing keeps the grid) through t3d_analyze to labels on the series grid. */
static int child_e2e(const char *model_path, int threads, const int64_t shape[5], int repeat, const bench_dev *dv)
{
  t3d_backend *be = NULL;
  t3d_model *model = NULL;
  t3d_volume *vol = NULL;
  t3d_status s;
  double best = INFINITY, best_cpu = 0;
  char devj[768];
  int rc = 1;
  if ((s = t3d_cli_backend(dv->device, threads, dv->precision, &be)) != T3D_OK) goto fail;
  if ((s = t3d_model_load(model_path, be, &model)) != T3D_OK) goto fail;
  if ((s = t3d_volume_new(&vol, shape[4], shape[3], shape[2])) != T3D_OK) goto fail;
  for (int a = 0; a < 3; a++) vol->spacing[a] = t3d_model_config_of(model)->preprocess.spacing_mm[a];
  snprintf(vol->meta.modality, sizeof vol->meta.modality, "CT");
  for (int64_t z = 0; z < vol->nz; z++) /* a body-sized ellipsoid of soft tissue in air */
    for (int64_t y = 0; y < vol->ny; y++)
      for (int64_t x = 0; x < vol->nx; x++) {
        double u = (x - vol->nx / 2.0) / (0.4 * vol->nx), v = (y - vol->ny / 2.0) / (0.3 * vol->ny);
        double w = (z - vol->nz / 2.0) / (0.45 * vol->nz);
        vol->data[(z * vol->ny + y) * vol->nx + x] = u * u + v * v + w * w < 1 ? 40.0f + (float)((x * 7 + y * 3 + z) % 50) : -1000.0f;
      }
  double total = 0;
  for (int i = 0, timed = 0; i == 0 || bench_more(timed, repeat, total); i++) {
    /* the first run finds the GPU algorithms: not timed */
    t3d_analysis_result *res = NULL;
    double t0 = now_ms(), c0 = cpu_ms();
    if ((s = t3d_analyze(model, vol, NULL, NULL, NULL, &res)) != T3D_OK) goto fail;
    double t = now_ms() - t0;
    t3d_analysis_result_free(res);
    if (i == 0) continue;
    timed++, total += t;
    if (t < best) {
      best = t;
      best_cpu = cpu_ms() - c0;
    }
  }
  dev_fields(be, dv, T3D_BF16_OPS_ALL, devj, sizeof devj);
  printf("{\"ms\": %.1f, \"cpu_ms\": %.1f, \"vmhwm_kib\": %ld, %s}\n", best, best_cpu, vmhwm_kib(), devj);
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "bench end to end");
cleanup:
  t3d_volume_free(vol);
  t3d_model_free(model);
  t3d_backend_free(be);
  return rc;
}

static int child(const char *model, const char *row, int threads, const int64_t shape[5], int repeat,
                 double cancel_after, const bench_dev *dv, const char *dump)
{
  t3d_modelfile *mf = NULL;
  t3d_backend *be = NULL;
  t3d_vision *v = NULL;
  t3d_vision_run *run = NULL;
  t3d_tensor *x = NULL;
  float *pooled = NULL;
  float *logits = NULL;
  int32_t *labels = NULL;
  bool seg = strcmp(row, "segment") == 0 || strcmp(row, "cancel") == 0;
  t3d_status s;
  double best = INFINITY, best_cpu = 0;
  char devj[768];
  int rc = 1;

  if ((s = t3d_modelfile_open(&mf, model)) != T3D_OK) goto fail;
  if ((s = t3d_cli_backend(dv->device, threads, dv->precision, &be)) != T3D_OK) goto fail;
  if ((s = t3d_vision_load(&v, be, mf, t3d_modelfile_config(mf))) != T3D_OK) goto fail;
  t3d_modelfile_close(mf); /* weights live in the backend now */
  mf = NULL;
  if ((s = t3d_vision_run_new(&run, v, shape, seg, false)) != T3D_OK) goto fail;
  if ((s = t3d_tensor_new(&x, T3D_F32, 5, shape)) != T3D_OK) goto fail;
  {
    float *d = x->data;
    uint64_t st = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < t3d_tensor_numel(x); i++) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      d[i] = (float)(st >> 40) / 16777216.0f;
    }
  }
  pooled = malloc((size_t)(shape[0] * t3d_vision_features(v)) * sizeof(float));
  if (seg) labels = malloc((size_t)(shape[0] * shape[2] * shape[3] * shape[4]) * sizeof(int32_t));
  if (!pooled || (seg && !labels)) {
    s = t3d_error(T3D_ERR_NOMEM, "bench: out of memory");
    goto fail;
  }
  if (strcmp(row, "cancel") == 0) {
    cancel_ctx c = {0, cancel_after * 1000, 0};
    pthread_t th;
    t3d_vision_hooks h = {NULL, NULL, &c.flag, 0, 0};
    pthread_create(&th, NULL, cancel_thread, &c);
    s = t3d_vision_encode(run, x, pooled, &h);
    if (s == T3D_OK) s = t3d_vision_decode(run, NULL, labels, &h);
    double end = now_ms();
    pthread_join(th, NULL);
    if (s != T3D_ERR_CANCELLED) {
      fprintf(stderr, "bench: forward ended (%s) before the cancel flag was set\n", t3d_strerror(s));
      goto cleanup;
    }
    printf("{\"cancel_latency_ms\": %.1f}\n", end - c.set_at);
    rc = 0;
    goto cleanup;
  }
  /* On a GPU the first run finds the convolution algorithms (cuDNN measures them): not timed. */
  const int warm = strcmp(be->ops->name, "cpu") != 0;
  double total = 0;
  for (int i = 0, timed = 0; i < warm || bench_more(timed, repeat, total); i++) {
    double t0 = now_ms(), c0 = cpu_ms();
    if ((s = t3d_vision_encode(run, x, pooled, NULL)) != T3D_OK) goto fail;
    if (seg && (s = t3d_vision_decode(run, NULL, labels, NULL)) != T3D_OK) goto fail;
    double t = now_ms() - t0;
    if (i < warm) continue;
    timed++, total += t;
    if (t < best) {
      best = t;
      best_cpu = cpu_ms() - c0;
    }
  }
  long hwm = vmhwm_kib(); /* before the outputs for the agreement check are kept */
  if (dump) {
    size_t nx = (size_t)t3d_tensor_numel(x);
    if ((s = t3d_bench_dump(dump, "input.f32", x->data, nx * sizeof(float))) != T3D_OK) goto fail;
    if (!seg) {
      s = t3d_bench_dump(dump, "t3d-encoder.f32", pooled, (size_t)(shape[0] * t3d_vision_features(v)) * sizeof(float));
    } else {
      size_t nl = nx / (size_t)shape[1] * (size_t)t3d_vision_classes(v);
      if (!(logits = malloc(nl * sizeof *logits))) {
        s = t3d_error(T3D_ERR_NOMEM, "bench: out of memory");
        goto fail;
      }
      if ((s = t3d_vision_encode(run, x, pooled, NULL)) == T3D_OK &&
          (s = t3d_vision_decode(run, logits, NULL, NULL)) == T3D_OK)
        s = t3d_bench_dump(dump, "t3d-segment.f32", logits, nl * sizeof *logits);
    }
    if (s != T3D_OK) goto fail;
  }
  dev_fields(be, dv, 1u << T3D_OP_CONV3D, devj, sizeof devj);
  printf("{\"ms\": %.1f, \"cpu_ms\": %.1f, \"vmhwm_kib\": %ld, \"arena_bytes\": %zu, \"gflop\": %.1f, %s}\n",
         best, best_cpu, hwm,
         t3d_vision_run_arena_bytes(run),
         (t3d_vision_run_flops(run, false) + (seg ? t3d_vision_run_flops(run, true) : 0)) / 1e9, devj);
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "bench");
cleanup:
  free(pooled);
  free(logits);
  free(labels);
  t3d_tensor_free(x);
  t3d_vision_run_free(run);
  t3d_vision_free(v);
  t3d_backend_free(be);
  t3d_modelfile_close(mf);
  return rc;
}

/* ---- parent ------------------------------------------------------------------------------- */

/* Writes every tensor of cfg (seeded initialisers), the config and a vocabulary of the config's
 * size (the built-in one padded with [unusedN]) into path. */
static t3d_status write_model(const t3d_model_config *cfg, const char *path)
{
  t3d_tensor_spec *specs = NULL;
  size_t n = 0;
  t3d_modelfile_writer *w = NULL;
  json_t *cj = NULL;
  t3d_tensor **ts = NULL;
  t3d_status s;
  if ((s = t3d_model_config_tensors(cfg, &specs, &n)) != T3D_OK) return s;
  ts = calloc(n, sizeof *ts);
  if (!ts) {
    s = t3d_error(T3D_ERR_NOMEM, "bench: out of memory");
    goto cleanup;
  }
  if ((s = t3d_modelfile_writer_new(&w)) != T3D_OK) goto cleanup;
  for (size_t i = 0; i < n; i++) {
    if ((s = t3d_tensor_new(&ts[i], T3D_F32, specs[i].ndim, specs[i].shape)) != T3D_OK) goto cleanup;
    t3d_tensor_spec_init(&specs[i], cfg, 7, ts[i]->data);
    if ((s = t3d_modelfile_writer_add(w, specs[i].name, ts[i], false)) != T3D_OK) goto cleanup;
  }
  if ((s = t3d_model_config_to_json(cfg, &cj)) != T3D_OK) goto cleanup;
  if ((s = t3d_modelfile_writer_set_json(w, "t3d.config", cj)) != T3D_OK) goto cleanup;
  {
    size_t nv = 0;
    const char *const *dv = t3d_default_vocab(&nv);
    json_t *voc = json_array();
    char buf[32];
    for (size_t i = 0; voc && i < (size_t)cfg->text.vocab_size; i++) {
      snprintf(buf, sizeof buf, "[unused%zu]", i - nv);
      json_array_append_new(voc, json_string(i < nv ? dv[i] : buf));
    }
    s = voc ? t3d_modelfile_writer_set_json(w, "t3d.vocab", voc) : t3d_error(T3D_ERR_NOMEM, "bench: out of memory");
    json_decref(voc);
    if (s != T3D_OK) goto cleanup;
  }
  s = t3d_modelfile_writer_write(w, path);
cleanup:
  t3d_modelfile_writer_free(w);
  for (size_t i = 0; ts && i < n; i++) t3d_tensor_free(ts[i]);
  free(ts);
  free(specs);
  json_decref(cj);
  return s;
}

static t3d_status write_config_json(const t3d_model_config *cfg, const char *path)
{
  json_t *j = NULL;
  t3d_status s = t3d_model_config_to_json(cfg, &j);
  if (s != T3D_OK) return s;
  if (json_dump_file(j, path, JSON_COMPACT) != 0) s = t3d_error(T3D_ERR_IO, "bench: cannot write %s", path);
  json_decref(j);
  return s;
}

/* Removes the files of the exchange folder (flat) and the folder. */
static void remove_tree(const char *path)
{
  DIR *d = opendir(path);
  struct dirent *e;
  char f[1024];
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      snprintf(f, sizeof f, "%s/%s", path, e->d_name);
      remove(f);
    }
  if (d) closedir(d);
  rmdir(path);
}

/* The command line of a t3d child timing one row (extra: more options, e.g. --dump). */
static void child_cmd(char *buf, size_t n, const char *self, const char *row, const char *model, int threads,
                      int repeat, const int64_t shape[5], const bench_dev *dv, const char *extra)
{
  snprintf(buf, n,
           "'%s' bench --child %s --model '%s' --threads %d --repeat %d --shape %lld,%lld,%lld --device '%s' "
           "--precision %s%s",
           self, row, model, threads, repeat, (long long)shape[2], (long long)shape[3], (long long)shape[4],
           dv->device, t3d_precision_name(dv->precision), extra);
}

static void row_line(const char *label, const json_t *a, const json_t *b)
{
  double ms = t3d_bench_num(a, "ms"), tms = t3d_bench_num(b, "ms"), kib = t3d_bench_num(a, "vmhwm_kib"), tkib = t3d_bench_num(b, "vmhwm_kib");
  double cpu = t3d_bench_num(a, "cpu_ms"), tcpu = t3d_bench_num(b, "cpu_ms");
  printf("%-22s %9.0f %9.0f %7.2f | %9.0f %9.0f %7.2f | %9.0f %9.0f %7.2f\n", label, ms, tms, tms / ms, cpu, tcpu,
         tcpu / cpu, kib / 1024, tkib / 1024, kib / tkib);
  fflush(stdout);
}

int t3d_cmd_bench(int argc, char **argv)
{
  int threads = 0, repeat = 2, no_torch = 0, json_out = 0, no_peers = 0, c;
  const char *cfgname = "t3d-r50", *child_row = NULL, *child_model = NULL, *dump = NULL, *json_path = NULL;
  bench_dev dv = {"cpu", T3D_PRECISION_AUTO};
  int64_t shape[5] = {1, 1, 160, 224, 224};
  double cancel_after = -1; /* -1: half of the encoder+segmentation row, at most 3 s */
  static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
                                       {"no-torch", no_argument, NULL, 'n'},
                                       {"repeat", required_argument, NULL, 'r'},
                                       {"config", required_argument, NULL, 'c'},
                                       {"shape", required_argument, NULL, 's'},
                                       {"cancel-after", required_argument, NULL, 'a'},
                                       {"child", required_argument, NULL, 'C'},
                                       {"model", required_argument, NULL, 'm'},
                                       {"device", required_argument, NULL, T3D_CLI_OPT_DEVICE},
                                       {"precision", required_argument, NULL, 'P'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"no-peers", no_argument, NULL, 0x201},
                                       {"peers-json", required_argument, NULL, 0x202},
                                       {"dump", required_argument, NULL, 0x203},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 't': threads = atoi(optarg); break;
    case 'n': no_torch = 1; break;
    case 'r': repeat = atoi(optarg); break;
    case 'c': cfgname = optarg; break;
    case 'a': cancel_after = atof(optarg); break;
    case 's': {
      long long d, h, w;
      if (sscanf(optarg, "%lld,%lld,%lld", &d, &h, &w) != 3 || d < 1 || h < 1 || w < 1) {
        fprintf(stderr, _("t3d bench: --shape wants D,H,W\n"));
        return 2;
      }
      shape[2] = d, shape[3] = h, shape[4] = w;
      break;
    }
    case 'C': child_row = optarg; break;
    case 'm': child_model = optarg; break;
    case T3D_CLI_OPT_DEVICE: dv.device = optarg; break;
    case 'P':
      if (t3d_cli_parse_precision("bench", optarg, &dv.precision)) return 2;
      break;
    case 'j': json_out = 1; break;
    case 0x201: no_peers = 1; break;
    case 0x202: json_path = optarg; break;
    case 0x203: dump = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (repeat < 1) repeat = 1;
  if (threads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (int)n : 1;
  }
  if (child_row) {
    if (!child_model) return 2;
    if (strcmp(child_row, "text") == 0) return child_text(child_model, threads, repeat, &dv, dump);
    if (strcmp(child_row, "e2e") == 0) return child_e2e(child_model, threads, shape, repeat, &dv);
    return child(child_model, child_row, threads, shape, repeat, cancel_after, &dv, dump);
  }

  t3d_model_config cfg;
  t3d_status s = t3d_model_config_builtin(&cfg, cfgname);
  if (s != T3D_OK) return t3d_cli_fail(s, "bench");
  for (int a = 0; a < 3; a++) cfg.preprocess.shape[a] = (int)shape[2 + a]; /* the end-to-end row's model grid */
  if (strspn(dv.device, "abcdefghijklmnopqrstuvwxyz0123456789:") != strlen(dv.device)) {
    fprintf(stderr, _("t3d bench: --device wants auto, cpu, cuda or cuda:N\n"));
    return 2;
  }
  const bool on_cpu = strcmp(dv.device, "cpu") == 0;
  if (!on_cpu) no_torch = 1; /* PyTorch's GPU peer is tools/bench-torch-gpu.py (tools/gpu-check.sh) */
  if (!on_cpu) no_peers = 1; /* the OpenVINO / ONNX Runtime peers are CPU engines */
  char dir[] = "/tmp/t3d-bench.XXXXXX", model[256], cfgjson[256], cmd[2048], self[1024], io[256], dumparg[300] = "";
  if (!mkdtemp(dir)) return t3d_cli_fail(t3d_error(T3D_ERR_IO, "cannot create a temporary folder"), "bench");
  snprintf(io, sizeof io, "%s/io", dir);
  if (!no_peers) {
    if (mkdir(io, 0700) == 0)
      snprintf(dumparg, sizeof dumparg, " --dump '%s'", io);
    else
      no_peers = 1;
  }
  snprintf(model, sizeof model, "%s/model.safetensors", dir);
  snprintf(cfgjson, sizeof cfgjson, "%s/config.json", dir);
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) return t3d_cli_fail(t3d_error(T3D_ERR_IO, "cannot find /proc/self/exe"), "bench");
  self[sl] = 0;
  if ((s = write_model(&cfg, model)) != T3D_OK || (s = write_config_json(&cfg, cfgjson)) != T3D_OK) {
    remove(model);
    rmdir(dir);
    return t3d_cli_fail(s, "bench");
  }
  const char *py = getenv("T3D_PYTHON") ? getenv("T3D_PYTHON") : T3D_PYTHON_DEFAULT;
  const char *ref = getenv("T3D_REFERENCE_PY") ? getenv("T3D_REFERENCE_PY") : T3D_REFERENCE_PY;
  double la[3] = {0, 0, 0};
  FILE *lf = fopen("/proc/loadavg", "r");
  if (lf) {
    if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = la[1] = la[2] = 0;
    fclose(lf);
  }
  printf(_("t3d bench: %s, random weights, input 1x%lldx%lldx%lldx%lld, %d threads, best of %d "
           "(load average %.2f on %ld cores)\n"),
         cfg.name, (long long)shape[1], (long long)shape[2], (long long)shape[3], (long long)shape[4], threads,
         repeat, la[0], sysconf(_SC_NPROCESSORS_ONLN));
  printf(_("rows with less than %.0f ms of timed runs get more runs, at most %d (t3d, the peers and PyTorch "
           "alike)\n"),
         T3D_BENCH_MIN_MS, T3D_BENCH_MAX_RUNS);
  if (!on_cpu)
    printf(_("t3d bench: device %s, precision %s (PyTorch CPU rows skipped; GPU peer: tools/bench-torch-gpu.py)\n"),
           dv.device, t3d_precision_name(dv.precision));
  /* what the t3d rows compute in, as the children's CPU backend resolves it */
  printf(_("t3d rows: %s (bf16 path on this CPU: %s, %s)\n"), t3d_cli_bf16_ops_desc(cpu_bf16_ops(&dv)),
         t3d_backend_cpu_bf16_isa(), t3d_backend_cpu_bf16_engine());
  if (t3d_backend_cpu_bf16_gain() > 0)
    printf(_("CPU bf16 speed: vdpbf16ps does %.2fx the multiply-adds per second of fp32 FMAs (auto takes bf16 "
             "from 1.25x)\n"),
           t3d_backend_cpu_bf16_gain());
  printf("%-22s %9s %9s %7s | %9s %9s %7s | %9s %9s %7s\n", _("row"), _("t3d ms"), _("torch ms"), _("speedup"),
         _("t3d cpu"), _("torch cpu"), _("ratio"), _("t3d MiB"), _("torch MiB"), _("mem x"));
  static const char *const rows[4] = {"encoder", "segment", "text", "e2e"};
  static const char *const labels[4] = {"encoder", "encoder+segmentation", "text (256 tokens)", "end to end"};
  json_t *all = json_object();
  int rc = 0;
  if (all) {
    json_object_set_new(all, "device", json_string(dv.device));
    json_object_set_new(all, "precision", json_string(t3d_precision_name(dv.precision)));
    json_object_set_new(all, "shape", json_pack("[I,I,I]", (json_int_t)shape[2], (json_int_t)shape[3], (json_int_t)shape[4]));
    json_t *cj = NULL; /* the config, so a peer (tools/bench-torch-gpu.py) builds the same network */
    if (t3d_model_config_to_json(&cfg, &cj) == T3D_OK) json_object_set_new(all, "config", cj);
  }
  json_t *mine[T3D_BENCH_ROWS] = {NULL, NULL, NULL};
  for (int i = 0; i < (on_cpu ? 3 : 4); i++) { /* end to end on GPUs only: on a CPU it adds minutes */
    json_t *a, *b = NULL;
    child_cmd(cmd, sizeof cmd, self, rows[i], model, threads, repeat, shape, &dv, i < 3 ? dumparg : "");
    a = t3d_bench_run_json(cmd);
    if (!no_torch && i < 3) {
      if (i < 2)
        snprintf(cmd, sizeof cmd,
                 "'%s' '%s' bench --config '%s' --shape 1,%lld,%lld,%lld,%lld --threads %d --segment %d --repeat %d "
                 "--min-ms %.0f --max-runs %d",
                 py, ref, cfgjson, (long long)shape[1], (long long)shape[2], (long long)shape[3],
                 (long long)shape[4], threads, i, repeat, T3D_BENCH_MIN_MS, T3D_BENCH_MAX_RUNS);
      else /* as many tokens as the t3d side (max_positions caps both) */
        snprintf(cmd, sizeof cmd,
                 "'%s' '%s' bench-text --config '%s' --tokens 256 --threads %d --repeat %d --min-ms %.0f "
                 "--max-runs %d",
                 py, ref, cfgjson, threads, repeat, T3D_BENCH_MIN_MS, T3D_BENCH_MAX_RUNS);
      b = t3d_bench_run_json(cmd);
    }
    if (!a) rc = 1;
    char label[64];
    if (i == 2 && !isnan(t3d_bench_num(a, "tokens")))
      snprintf(label, sizeof label, "text (%.0f tokens)", t3d_bench_num(a, "tokens"));
    else
      snprintf(label, sizeof label, "%s", labels[i]);
    const char *prec = a ? json_string_value(json_object_get(a, "precision")) : NULL;
    if (prec && strcmp(prec, "bf16") == 0) snprintf(label + strlen(label), sizeof label - strlen(label), " bf16");
    row_line(label, a, b);
    if (i == 1 && a)
      printf(_("%-22s vision arena %.0f MiB (all activations of encoder+decoder, planned up front)\n"), "",
             t3d_bench_num(a, "arena_bytes") / 1048576.0);
    if (!on_cpu && a)
      printf(_("%-22s backend %s, peak GPU memory of the backend %.0f MiB\n"), "",
             json_string_value(json_object_get(a, "backend")), t3d_bench_num(a, "gpu_peak_mib"));
    if (all && a) json_object_set(all, rows[i], a);
    if (i < 3)
      mine[i] = a; /* the peers' table compares against them */
    else
      json_decref(a);
    json_decref(b);
  }
  if (!no_peers) {
    FILE *jf = json_path ? fopen(json_path, "w") : NULL;
    if (json_path && !jf) fprintf(stderr, _("t3d bench: cannot write %s\n"), json_path);
    const char *peer = getenv("T3D_PEER_PY") ? getenv("T3D_PEER_PY") : T3D_PEER_PY;
    t3d_bench_peers_params pp = {py, peer, io, cfgjson, model, shape, threads, repeat, jf, {NULL, NULL, NULL}};
    char again[T3D_BENCH_ROWS][2048];
    for (int i = 0; i < T3D_BENCH_ROWS; i++) {
      child_cmd(again[i], sizeof again[i], self, rows[i], model, threads, repeat, shape, &dv, dumparg);
      pp.t3d_cmd[i] = again[i];
    }
    if (t3d_bench_peers(&pp, mine) != 0) rc = 1;
    if (jf) fclose(jf);
  }
  /* the flag mid-way through a forward that a faster build or machine may finish in under 3 s */
  if (cancel_after < 0) {
    const double seg_ms = mine[1] ? t3d_bench_num(mine[1], "ms") : NAN;
    cancel_after = isnan(seg_ms) || seg_ms >= 6000 ? 3 : seg_ms / 2000;
  }
  for (int i = 0; i < 3; i++) json_decref(mine[i]);
  if (cancel_after > 0) {
    char extra[64];
    snprintf(extra, sizeof extra, " --cancel-after %g", cancel_after);
    child_cmd(cmd, sizeof cmd, self, "cancel", model, threads, repeat, shape, &dv, extra);
    json_t *c = t3d_bench_run_json(cmd);
    const double lat = t3d_bench_num(c, "cancel_latency_ms");
    if (isnan(lat))
      printf(_("cancel latency: not measured (encoder+segmentation ended before the flag was set %.1f s into it; "
               "try a smaller --cancel-after)\n"),
             cancel_after);
    else
      printf(_("cancel latency (flag set %.1f s into encoder+segmentation): %.0f ms\n"), cancel_after, lat);
    json_decref(c);
  }
  if (json_out && all) {
    char *txt = json_dumps(all, JSON_COMPACT);
    if (txt) printf("%s\n", txt);
    free(txt);
  }
  json_decref(all);
  if (!no_peers) remove_tree(io);
  remove(model);
  remove(cfgjson);
  rmdir(dir);
  return rc;
}
