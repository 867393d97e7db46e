/* `t3d bench`: speed and peak memory of t3d-r50 (random weights) on the CPU next to PyTorch
 * (MONAI ResNet + our decoder, tests/reference/t3d_reference.py) at the reference input, each
 * row measured in its own process (VmHWM) so one side's memory never counts for the other.
 * Not a correctness check (that is tests/test-vision-parity.sh). */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/modelfile.h"
#include "core/vision.h"
#include "kernels/backend.h"

#ifndef T3D_REFERENCE_PY
#define T3D_REFERENCE_PY "tests/reference/t3d_reference.py"
#endif
#ifndef T3D_PYTHON_DEFAULT
#define T3D_PYTHON_DEFAULT "python3"
#endif

static void usage(FILE *to)
{
  fprintf(to,
          "Usage: t3d bench [--threads N] [--no-torch] [--repeat R] [--config NAME] [--shape D,H,W]\n\n"
          "Times t3d-r50 with random weights at 1x1x160x224x224: the encoder and encoder + segmentation,\n"
          "each next to PyTorch (MONAI ResNet + our decoder) with the same thread count, in separate\n"
          "processes; prints ms (best of R), peak RSS and the ratios, and the cancel latency.\n"
          "  --threads N    threads for both sides (default: all cores)\n"
          "  --no-torch     t3d rows only\n"
          "  --repeat R     runs per row, best kept (default 2)\n"
          "  --config NAME  built-in config (default t3d-r50)\n"
          "  --shape D,H,W  input size (default 160,224,224)\n"
          "  --cancel-after S  also measure cancel latency with the flag set after S seconds (default 3; 0 = skip)\n"
          "Environment: T3D_PYTHON (python with torch + monai), T3D_REFERENCE_PY (reference script).\n");
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
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

static int child(const char *model, const char *row, int threads, const int64_t shape[5], int repeat,
                 double cancel_after)
{
  t3d_modelfile *mf = NULL;
  t3d_backend *be = NULL;
  t3d_vision *v = NULL;
  t3d_vision_run *run = NULL;
  t3d_tensor *x = NULL;
  float *pooled = NULL;
  int32_t *labels = NULL;
  bool seg = strcmp(row, "segment") == 0 || strcmp(row, "cancel") == 0;
  t3d_backend_params bp = t3d_backend_default_params();
  t3d_status s;
  double best = INFINITY;
  int rc = 1;

  bp.threads = threads;
  if ((s = t3d_modelfile_open(&mf, model)) != T3D_OK) goto fail;
  if ((s = t3d_backend_cpu_create(&be, &bp)) != T3D_OK) goto fail;
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
  for (int i = 0; i < repeat; i++) {
    double t0 = now_ms();
    if ((s = t3d_vision_encode(run, x, pooled, NULL)) != T3D_OK) goto fail;
    if (seg && (s = t3d_vision_decode(run, NULL, labels, NULL)) != T3D_OK) goto fail;
    double t = now_ms() - t0;
    if (t < best) best = t;
  }
  printf("{\"ms\": %.1f, \"vmhwm_kib\": %ld, \"arena_bytes\": %zu, \"gflop\": %.1f}\n", best, vmhwm_kib(),
         t3d_vision_run_arena_bytes(run),
         (t3d_vision_run_flops(run, false) + (seg ? t3d_vision_run_flops(run, true) : 0)) / 1e9);
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "bench");
cleanup:
  free(pooled);
  free(labels);
  t3d_tensor_free(x);
  t3d_vision_run_free(run);
  t3d_vision_free(v);
  t3d_backend_free(be);
  t3d_modelfile_close(mf);
  return rc;
}

/* ---- parent ------------------------------------------------------------------------------- */

/* Writes the vision, segmentation and projection tensors of cfg (seeded initialisers) and the
 * config into path: what the vision rows need, without the text encoder's weights. */
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
    if (strncmp(specs[i].name, "vision", 6) != 0 && strncmp(specs[i].name, "seg.", 4) != 0 &&
        strcmp(specs[i].name, "logit_scale") != 0)
      continue;
    if ((s = t3d_tensor_new(&ts[i], T3D_F32, specs[i].ndim, specs[i].shape)) != T3D_OK) goto cleanup;
    t3d_tensor_spec_init(&specs[i], cfg, 7, ts[i]->data);
    if ((s = t3d_modelfile_writer_add(w, specs[i].name, ts[i], false)) != T3D_OK) goto cleanup;
  }
  if ((s = t3d_model_config_to_json(cfg, &cj)) != T3D_OK) goto cleanup;
  if ((s = t3d_modelfile_writer_set_json(w, "t3d.config", cj)) != T3D_OK) goto cleanup;
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

/* Runs cmd, returns the number after "key": in its last output line, or NAN. */
static double run_json(const char *cmd, const char *key, double *second, const char *key2)
{
  FILE *p = popen(cmd, "r");
  char line[4096], last[4096] = "";
  double v = NAN;
  if (!p) return NAN;
  while (fgets(line, sizeof line, p))
    if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
  pclose(p);
  json_error_t err;
  json_t *j = json_loads(last, 0, &err);
  if (!j) return NAN;
  json_t *a = json_object_get(j, key);
  if (json_is_number(a)) v = json_number_value(a);
  if (second && key2) {
    json_t *b = json_object_get(j, key2);
    *second = json_is_number(b) ? json_number_value(b) : NAN;
  }
  json_decref(j);
  return v;
}

int t3d_cmd_bench(int argc, char **argv)
{
  int threads = 0, repeat = 2, no_torch = 0, c;
  const char *cfgname = "t3d-r50", *child_row = NULL, *child_model = NULL;
  int64_t shape[5] = {1, 1, 160, 224, 224};
  double cancel_after = 3;
  static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
                                       {"no-torch", no_argument, NULL, 'n'},
                                       {"repeat", required_argument, NULL, 'r'},
                                       {"config", required_argument, NULL, 'c'},
                                       {"shape", required_argument, NULL, 's'},
                                       {"cancel-after", required_argument, NULL, 'a'},
                                       {"child", required_argument, NULL, 'C'},
                                       {"model", required_argument, NULL, 'm'},
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
        fprintf(stderr, "t3d bench: --shape wants D,H,W\n");
        return 2;
      }
      shape[2] = d, shape[3] = h, shape[4] = w;
      break;
    }
    case 'C': child_row = optarg; break;
    case 'm': child_model = optarg; break;
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
    return child(child_model, child_row, threads, shape, repeat, cancel_after);
  }

  t3d_model_config cfg;
  t3d_status s = t3d_model_config_builtin(&cfg, cfgname);
  if (s != T3D_OK) return t3d_cli_fail(s, "bench");
  char dir[] = "/tmp/t3d-bench.XXXXXX", model[256], cfgjson[256], cmd[2048], self[1024];
  if (!mkdtemp(dir)) return t3d_cli_fail(t3d_error(T3D_ERR_IO, "cannot create a temporary folder"), "bench");
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
  printf("t3d bench: %s, random weights, input 1x%lldx%lldx%lldx%lld, %d threads, best of %d "
         "(load average %.2f on %ld cores)\n",
         cfg.name, (long long)shape[1], (long long)shape[2], (long long)shape[3], (long long)shape[4], threads,
         repeat, la[0], sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-22s %10s %10s %12s %12s %8s %8s\n", "row", "t3d ms", "torch ms", "t3d peak MiB", "torch MiB",
         "speed x", "mem x");
  static const char *const rows[2] = {"encoder", "segment"};
  static const char *const labels[2] = {"encoder", "encoder+segmentation"};
  int rc = 0;
  for (int i = 0; i < 2; i++) {
    double kib = NAN, tkib = NAN, tms = NAN;
    snprintf(cmd, sizeof cmd, "'%s' bench --child %s --model '%s' --threads %d --repeat %d --shape %lld,%lld,%lld",
             self, rows[i], model, threads, repeat, (long long)shape[2], (long long)shape[3], (long long)shape[4]);
    double ms = run_json(cmd, "ms", &kib, "vmhwm_kib");
    if (!no_torch) {
      snprintf(cmd, sizeof cmd,
               "'%s' '%s' bench --config '%s' --shape 1,%lld,%lld,%lld,%lld --threads %d --segment %d --repeat %d",
               py, ref, cfgjson, (long long)shape[1], (long long)shape[2], (long long)shape[3], (long long)shape[4],
               threads, i, repeat);
      tms = run_json(cmd, "ms", &tkib, "vmhwm_kib");
    }
    if (isnan(ms)) rc = 1;
    printf("%-22s %10.0f %10.0f %12.0f %12.0f %8.2f %8.2f\n", labels[i], ms, tms, kib / 1024, tkib / 1024, tms / ms,
           kib / tkib);
    fflush(stdout);
  }
  printf("%-22s %s\n", "text (256 tokens)", "not measured here: t3d_encode_text is the text encoder's row");
  if (cancel_after > 0) {
    snprintf(cmd, sizeof cmd,
             "'%s' bench --child cancel --model '%s' --threads %d --shape %lld,%lld,%lld --cancel-after %g", self,
             model, threads, (long long)shape[2], (long long)shape[3], (long long)shape[4], cancel_after);
    double lat = run_json(cmd, "cancel_latency_ms", NULL, NULL);
    printf("cancel latency (flag set %.1f s into encoder+segmentation): %.0f ms\n", cancel_after, lat);
  }
  remove(model);
  remove(cfgjson);
  rmdir(dir);
  return rc;
}
