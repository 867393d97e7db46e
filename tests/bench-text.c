/* Times t3d's text encoder on one sequence of T tokens (default 256, the maximum) with the BERT of
 * a built-in config (default t3d-r50: BERT-base, 12 layers) and seeded random weights, or of a
 * model file; prints median and best ms and peak RSS. tests/bench-text.sh runs it beside
 * tests/reference/text_bench.py (HF BertModel, same thread count). Run by hand, not a test:
 *   tests/bench-text [--config NAME | --model FILE] [--threads N] [--tokens T] [--reps R] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/model/modelfile.h"
#include "core/model/text.h"
#include "kernels/backend.h"
#include "tests/text-testmodel.h"

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int fail(t3d_status s, const char *what)
{
  fprintf(stderr, "bench-text: %s: %s: %s\n", what, t3d_strerror(s), t3d_error_detail());
  return 1;
}

int main(int argc, char **argv)
{
  const char *config = "t3d-r50", *model = NULL;
  int threads = 0, tokens = 256, reps = 5, rc = 1;
  char tmp[] = "/tmp/t3d-bench-text.XXXXXX";
  int tmp_made = 0;
  static const struct option opts[] = {{"config", 1, 0, 'c'}, {"model", 1, 0, 'm'}, {"threads", 1, 0, 't'},
                                       {"tokens", 1, 0, 'n'}, {"reps", 1, 0, 'r'}, {0, 0, 0, 0}};
  for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    if (c == 'c') config = optarg;
    else if (c == 'm') model = optarg;
    else if (c == 't') threads = atoi(optarg);
    else if (c == 'n') tokens = atoi(optarg);
    else if (c == 'r') reps = atoi(optarg);
    else {
      fprintf(stderr, "usage: bench-text [--config NAME | --model FILE] [--threads N] [--tokens T] [--reps R]\n");
      return 2;
    }
  }
  if (reps < 1 || reps > 1000 || tokens < 2) {
    fprintf(stderr, "bench-text: --reps 1..1000 and --tokens >= 2\n");
    return 2;
  }
  t3d_modelfile *mf = NULL;
  t3d_backend *be = NULL;
  t3d_text_encoder *te = NULL;
  int32_t *ids = NULL, *mask = NULL;
  float *cls = NULL, *emb = NULL;
  double *ms = calloc((size_t)reps, sizeof *ms);
  t3d_status s;

  if (!model) {
    t3d_model_config cfg;
    int fd = mkstemp(tmp);
    if (fd < 0) {
      perror("bench-text: mkstemp");
      goto cleanup;
    }
    close(fd);
    tmp_made = 1;
    if ((s = t3d_model_config_builtin(&cfg, config)) != T3D_OK || (s = t3d_test_write_text_model(&cfg, tmp, NULL, 0)) != T3D_OK) {
      rc = fail(s, "random weights");
      goto cleanup;
    }
    model = tmp;
  }
  t3d_backend_params bp = t3d_backend_default_params();
  bp.threads = threads;
  if ((s = t3d_modelfile_open(&mf, model)) != T3D_OK || (s = t3d_backend_cpu_create(&be, &bp)) != T3D_OK) {
    rc = fail(s, model);
    goto cleanup;
  }
  if (!t3d_modelfile_config(mf)) {
    fprintf(stderr, "bench-text: %s has no config\n", model);
    goto cleanup;
  }
  const t3d_model_config cfgv = *t3d_modelfile_config(mf), *cfg = &cfgv;
  if ((s = t3d_text_encoder_load(&te, be, mf, cfg)) != T3D_OK) {
    rc = fail(s, "load");
    goto cleanup;
  }
  t3d_modelfile_close(mf); /* the encoder holds its own copy of the weights */
  mf = NULL;
  if (tokens > t3d_text_encoder_max_tokens(te))
    tokens = t3d_text_encoder_max_tokens(te);
  const int H = t3d_text_encoder_hidden(te), D = t3d_text_encoder_dim(te);
  ids = malloc((size_t)tokens * sizeof *ids);
  mask = malloc((size_t)tokens * sizeof *mask);
  cls = malloc((size_t)H * sizeof *cls);
  emb = malloc((size_t)D * sizeof *emb);
  if (!ids || !mask || !cls || !emb || !ms) {
    fprintf(stderr, "bench-text: out of memory\n");
    goto cleanup;
  }
  /* [CLS] w ... w [SEP]: ids as the reference script uses them (fixed pseudo-random words) */
  for (int i = 0; i < tokens; i++) {
    ids[i] = 1000 + (int32_t)((i * 7919u) % (unsigned)(cfg->text.vocab_size - 1000 > 0 ? cfg->text.vocab_size - 1000 : 1));
    if (ids[i] >= cfg->text.vocab_size)
      ids[i] = i % cfg->text.vocab_size;
    mask[i] = 1;
  }
  ids[0] = t3d_tokenizer_token_to_id(t3d_text_encoder_tokenizer(te), "[CLS]");
  ids[tokens - 1] = t3d_tokenizer_token_to_id(t3d_text_encoder_tokenizer(te), "[SEP]");
  for (int r = -1; r < reps; r++) { /* one warm-up run */
    double t0 = now_ms();
    if ((s = t3d_text_encoder_forward(te, ids, mask, 1, tokens, NULL, cls)) != T3D_OK ||
        (s = t3d_text_encoder_project(te, cls, 1, emb)) != T3D_OK) {
      rc = fail(s, "forward");
      goto cleanup;
    }
    if (r >= 0)
      ms[r] = now_ms() - t0;
  }
  qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("t3d text: %s BERT %d layers hidden %d, %d tokens, %d threads: median %.1f ms, best %.1f ms, "
         "peak RSS %.0f MiB\n",
         cfg->name, cfg->text.layers, H, tokens, be->threads, ms[reps / 2], ms[0], ru.ru_maxrss / 1024.0);
  rc = 0;
cleanup:
  t3d_text_encoder_free(te);
  t3d_backend_free(be);
  t3d_modelfile_close(mf);
  if (tmp_made)
    unlink(tmp);
  free(ids);
  free(mask);
  free(cls);
  free(emb);
  free(ms);
  return rc;
}
