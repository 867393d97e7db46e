/* `t3d bench`: speed and peak memory of t3d-r50 (random weights) on the CPU next to PyTorch
 * (MONAI ResNet + our decoder, tests/reference/t3d_reference.py) at the reference input, each
 * row measured in its own process (VmHWM) so one side's memory never counts for the other.
 * Not a correctness check (that is tests/test-vision-parity.sh). */
#include "config.h"

#include <dirent.h>
#include <getopt.h>
#include <libintl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/bench_peers.h"
#include "cli/commands.h"
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

static void usage(FILE *to)
{
  fprintf(to,
          _("Usage: t3d bench [--threads N] [--no-torch] [--no-peers] [--json FILE] [--repeat R] [--config NAME] [--shape D,H,W]\n\n"
          "Times t3d-r50 with random weights at 1x1x160x224x224: the encoder, encoder + segmentation and\n"
          "the text encoder on 256 tokens, each next to PyTorch (MONAI ResNet + our decoder; Hugging Face\n"
          "BertModel + projection) with the same thread count, every row in its own process; prints wall\n"
          "ms (best of R), CPU ms of that run, peak RSS (VmHWM) and the ratios, and the cancel latency.\n"
          "  --threads N    threads for both sides (default: all cores)\n"
          "  --no-torch     no PyTorch timing rows\n"
          "  --no-peers     no OpenVINO / ONNX Runtime rows (ONNX export of the PyTorch reference with\n"
          "                 t3d's weights; OpenVINO at f32 and bf16 inference precision; each row with its\n"
          "                 agreement with PyTorch fp32 and the ISA / kernels each side used)\n"
          "  --json FILE    also write every peer-table row as one JSON line to FILE\n"
          "  --repeat R     runs per row, best kept (default 2)\n"
          "  --config NAME  built-in config (default t3d-r50)\n"
          "  --shape D,H,W  input size (default 160,224,224)\n"
          "  --cancel-after S  also measure cancel latency with the flag set after S seconds (default 3; 0 = skip)\n"
          "Environment: T3D_PYTHON (python with torch + monai; openvino, onnxruntime for the peers),\n"
          "T3D_REFERENCE_PY (reference script), T3D_PEER_PY (tests/reference/peer_bench.py).\n"));
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

/* The text row: one report of 256 tokens ([CLS] + 254 pieces + [SEP]) through BERT + projection. */
static int child_text(const char *model, int threads, int repeat, const char *dump)
{
  t3d_modelfile *mf = NULL;
  t3d_backend *be = NULL;
  t3d_text_encoder *te = NULL;
  t3d_backend_params bp = t3d_backend_default_params();
  t3d_status s;
  char *text = NULL;
  int32_t *ids = NULL;
  float *out = NULL;
  size_t len = 0;
  double best = INFINITY, best_cpu = 0;
  int rc = 1;
  bp.threads = threads;
  if ((s = t3d_modelfile_open(&mf, model)) != T3D_OK) goto fail;
  if ((s = t3d_backend_cpu_create(&be, &bp)) != T3D_OK) goto fail;
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
  for (int i = 0; i < repeat + 1; i++) { /* first run plans the activation buffer: not timed */
    double t0 = now_ms(), c0 = cpu_ms();
    const char *one = text;
    if ((s = t3d_text_encoder_embed(te, &one, 1, out)) != T3D_OK) goto fail;
    double t = now_ms() - t0;
    if (i > 0 && t < best) {
      best = t;
      best_cpu = cpu_ms() - c0;
    }
  }
  long hwm = vmhwm_kib();
  if (dump && ((s = t3d_bench_dump(dump, "ids.i32", ids, len * sizeof *ids)) != T3D_OK ||
               (s = t3d_bench_dump(dump, "t3d-text.f32", out, (size_t)t3d_text_encoder_dim(te) * sizeof *out)) != T3D_OK))
    goto fail;
  printf("{\"ms\": %.1f, \"cpu_ms\": %.1f, \"vmhwm_kib\": %ld, \"tokens\": %zu, \"isa\": \"%s\"}\n", best, best_cpu,
         hwm, len, t3d_backend_cpu_kernels());
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

static int child(const char *model, const char *row, int threads, const int64_t shape[5], int repeat,
                 double cancel_after, const char *dump)
{
  t3d_modelfile *mf = NULL;
  t3d_backend *be = NULL;
  t3d_vision *v = NULL;
  t3d_vision_run *run = NULL;
  t3d_tensor *x = NULL;
  float *pooled = NULL;
  int32_t *labels = NULL;
  float *logits = NULL;
  bool seg = strcmp(row, "segment") == 0 || strcmp(row, "cancel") == 0;
  t3d_backend_params bp = t3d_backend_default_params();
  t3d_status s;
  double best = INFINITY, best_cpu = 0;
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
    double t0 = now_ms(), c0 = cpu_ms();
    if ((s = t3d_vision_encode(run, x, pooled, NULL)) != T3D_OK) goto fail;
    if (seg && (s = t3d_vision_decode(run, NULL, labels, NULL)) != T3D_OK) goto fail;
    double t = now_ms() - t0;
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
  printf("{\"ms\": %.1f, \"cpu_ms\": %.1f, \"vmhwm_kib\": %ld, \"arena_bytes\": %zu, \"gflop\": %.1f, \"isa\": \"%s\"}\n",
         best, best_cpu, hwm,
         t3d_vision_run_arena_bytes(run),
         (t3d_vision_run_flops(run, false) + (seg ? t3d_vision_run_flops(run, true) : 0)) / 1e9,
         t3d_backend_cpu_kernels());
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "bench");
cleanup:
  free(pooled);
  free(labels);
  free(logits);
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

static t3d_status write_config_json(const t3d_model_config *cfg, const char *path)
{
  json_t *j = NULL;
  t3d_status s = t3d_model_config_to_json(cfg, &j);
  if (s != T3D_OK) return s;
  if (json_dump_file(j, path, JSON_COMPACT) != 0) s = t3d_error(T3D_ERR_IO, "bench: cannot write %s", path);
  json_decref(j);
  return s;
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
  int threads = 0, repeat = 2, no_torch = 0, no_peers = 0, c;
  const char *cfgname = "t3d-r50", *child_row = NULL, *child_model = NULL, *dump = NULL, *json_path = NULL;
  int64_t shape[5] = {1, 1, 160, 224, 224};
  double cancel_after = 3;
  static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
                                       {"no-torch", no_argument, NULL, 'n'},
                                       {"no-peers", no_argument, NULL, 'P'},
                                       {"json", required_argument, NULL, 'j'},
                                       {"dump", required_argument, NULL, 'D'},
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
    case 'P': no_peers = 1; break;
    case 'j': json_path = optarg; break;
    case 'D': dump = optarg; break;
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
    if (strcmp(child_row, "text") == 0) return child_text(child_model, threads, repeat, dump);
    return child(child_model, child_row, threads, shape, repeat, cancel_after, dump);
  }

  t3d_model_config cfg;
  t3d_status s = t3d_model_config_builtin(&cfg, cfgname);
  if (s != T3D_OK) return t3d_cli_fail(s, "bench");
  char dir[] = "/tmp/t3d-bench.XXXXXX", model[256], cfgjson[256], cmd[2048], self[1024], io[256], dumparg[300] = "";
  if (!mkdtemp(dir)) return t3d_cli_fail(t3d_error(T3D_ERR_IO, "cannot create a temporary folder"), "bench");
  snprintf(model, sizeof model, "%s/model.safetensors", dir);
  snprintf(cfgjson, sizeof cfgjson, "%s/config.json", dir);
  snprintf(io, sizeof io, "%s/io", dir);
  if (!no_peers) {
    if (mkdir(io, 0700) == 0)
      snprintf(dumparg, sizeof dumparg, " --dump '%s'", io);
    else
      no_peers = 1;
  }
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
  printf("%-22s %9s %9s %7s | %9s %9s %7s | %9s %9s %7s\n", _("row"), _("t3d ms"), _("torch ms"), _("speedup"),
         _("t3d cpu"), _("torch cpu"), _("ratio"), _("t3d MiB"), _("torch MiB"), _("mem x"));
  static const char *const rows[3] = {"encoder", "segment", "text"};
  static const char *const labels[3] = {"encoder", "encoder+segmentation", "text (256 tokens)"};
  int rc = 0;
  json_t *mine[T3D_BENCH_ROWS] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    json_t *a, *b = NULL;
    snprintf(cmd, sizeof cmd, "'%s' bench --child %s --model '%s' --threads %d --repeat %d --shape %lld,%lld,%lld%s",
             self, rows[i], model, threads, repeat, (long long)shape[2], (long long)shape[3], (long long)shape[4],
             dumparg);
    a = t3d_bench_run_json(cmd);
    if (!no_torch) {
      if (i < 2)
        snprintf(cmd, sizeof cmd,
                 "'%s' '%s' bench --config '%s' --shape 1,%lld,%lld,%lld,%lld --threads %d --segment %d --repeat %d",
                 py, ref, cfgjson, (long long)shape[1], (long long)shape[2], (long long)shape[3],
                 (long long)shape[4], threads, i, repeat);
      else
        snprintf(cmd, sizeof cmd, "'%s' '%s' bench-text --config '%s' --tokens 256 --threads %d --repeat %d", py,
                 ref, cfgjson, threads, repeat); /* as many tokens as the t3d side (max_positions caps both) */
      b = t3d_bench_run_json(cmd);
    }
    if (!a) rc = 1;
    char label[64];
    if (i == 2 && !isnan(t3d_bench_num(a, "tokens")))
      snprintf(label, sizeof label, "text (%.0f tokens)", t3d_bench_num(a, "tokens"));
    else
      snprintf(label, sizeof label, "%s", labels[i]);
    row_line(label, a, b);
    if (i == 1 && a)
      printf(_("%-22s vision arena %.0f MiB (all activations of encoder+decoder, planned up front)\n"), "",
             t3d_bench_num(a, "arena_bytes") / 1048576.0);
    mine[i] = a;
    json_decref(b);
  }
  if (!no_peers) {
    FILE *jf = json_path ? fopen(json_path, "w") : NULL;
    if (json_path && !jf) fprintf(stderr, _("t3d bench: cannot write %s\n"), json_path);
    const char *peer = getenv("T3D_PEER_PY") ? getenv("T3D_PEER_PY") : T3D_PEER_PY;
    t3d_bench_peers_params pp = {py, peer, io, cfgjson, model, shape, threads, repeat, jf};
    if (t3d_bench_peers(&pp, mine) != 0) rc = 1;
    if (jf) fclose(jf);
  }
  for (int i = 0; i < 3; i++) json_decref(mine[i]);
  if (cancel_after > 0) {
    snprintf(cmd, sizeof cmd,
             "'%s' bench --child cancel --model '%s' --threads %d --shape %lld,%lld,%lld --cancel-after %g", self,
             model, threads, (long long)shape[2], (long long)shape[3], (long long)shape[4], cancel_after);
    json_t *c = t3d_bench_run_json(cmd);
    printf(_("cancel latency (flag set %.1f s into encoder+segmentation): %.0f ms\n"), cancel_after,
           t3d_bench_num(c, "cancel_latency_ms"));
    json_decref(c);
  }
  remove(model);
  remove(cfgjson);
  if (!no_peers) remove_tree(io);
  rmdir(dir);
  return rc;
}
