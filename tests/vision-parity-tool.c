/* Helper of tests/test-vision-parity.sh: `config NAME` prints a built-in config as JSON (the
 * reference script builds its PyTorch nets from it); `run MODEL IO` runs t3d's vision encoder,
 * projection and decoder on IO's "input" and compares with IO's reference outputs (cosine and
 * max relative error), exiting 1 on a tolerance miss. Not a general model runner. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/modelfile.h"
#include "core/model/vision.h"
#include "kernels/backend.h"
#include "tests/parity-compare.h"

static int failures;

static void compare(const char *what, const float *a, const float *r, size_t n, double cos_min, double rel_max)
{
  if (!parity_compare(what, 10, a, r, n, cos_min, rel_max))
    failures++;
}

static int fail(t3d_status s, const char *what)
{
  fprintf(stderr, "vision-parity-tool: %s: %s: %s\n", what, t3d_strerror(s), t3d_error_detail());
  return 2;
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "config") == 0) {
    t3d_model_config cfg;
    json_t *j = NULL;
    t3d_status s = t3d_model_config_builtin(&cfg, argv[2]);
    if (s == T3D_OK) s = t3d_model_config_to_json(&cfg, &j);
    if (s != T3D_OK) return fail(s, "config");
    char *txt = json_dumps(j, JSON_COMPACT);
    puts(txt);
    free(txt);
    json_decref(j);
    return 0;
  }
  if (argc < 4 || strcmp(argv[1], "run") != 0) {
    fprintf(stderr, "usage: vision-parity-tool config NAME | run MODEL IO [THREADS]\n");
    return 2;
  }
  t3d_modelfile *mf = NULL, *io = NULL;
  t3d_backend *be = NULL;
  t3d_vision *v = NULL;
  t3d_vision_run *run = NULL;
  t3d_vision_projection *proj = NULL;
  float *pooled = NULL, *emb = NULL, *logits = NULL;
  int rc = 2;
  t3d_status s;
  const t3d_tensor *x, *rp, *re, *rl;
  t3d_backend_params bp = t3d_backend_default_params();
  if (argc > 4) bp.threads = atoi(argv[4]);

  if ((s = t3d_modelfile_open(&mf, argv[2])) != T3D_OK) { rc = fail(s, "open model"); goto cleanup; }
  if ((s = t3d_modelfile_open(&io, argv[3])) != T3D_OK) { rc = fail(s, "open io"); goto cleanup; }
  const t3d_model_config *cfg = t3d_modelfile_config(mf);
  x = t3d_modelfile_get(io, "input");
  rp = t3d_modelfile_get(io, "pooled");
  re = t3d_modelfile_get(io, "embedding");
  rl = t3d_modelfile_get(io, "logits");
  if (!cfg || !x || !rp || !re) {
    fprintf(stderr, "vision-parity-tool: model without config or io without input/pooled/embedding\n");
    goto cleanup;
  }
  if ((s = t3d_backend_cpu_create(&be, &bp)) != T3D_OK) { rc = fail(s, "backend"); goto cleanup; }
  if ((s = t3d_vision_load(&v, be, mf, cfg)) != T3D_OK) { rc = fail(s, "vision load"); goto cleanup; }
  if ((s = t3d_vision_projection_load(&proj, be, mf, "vision_proj", t3d_vision_features(v), cfg->projection.hidden,
                                      cfg->projection.dim)) != T3D_OK) {
    rc = fail(s, "projection load");
    goto cleanup;
  }
  if ((s = t3d_vision_run_new(&run, v, x->shape, rl != NULL, false)) != T3D_OK) { rc = fail(s, "plan"); goto cleanup; }
  printf("%s input %lldx%lldx%lldx%lldx%lld: arena %.1f MiB, encoder %.2f GFLOP, decoder %.2f GFLOP\n", cfg->name,
         (long long)x->shape[0], (long long)x->shape[1], (long long)x->shape[2], (long long)x->shape[3],
         (long long)x->shape[4], t3d_vision_run_arena_bytes(run) / 1048576.0, t3d_vision_run_flops(run, false) / 1e9,
         t3d_vision_run_flops(run, true) / 1e9);
  int64_t n = x->shape[0], c4 = t3d_vision_features(v);
  pooled = malloc((size_t)(n * c4) * sizeof(float));
  emb = malloc((size_t)(n * cfg->projection.dim) * sizeof(float));
  if (rl) logits = malloc(t3d_tensor_nbytes(rl));
  if (!pooled || !emb || (rl && !logits)) goto cleanup;
  if ((s = t3d_vision_encode(run, x, pooled, NULL)) != T3D_OK) { rc = fail(s, "encode"); goto cleanup; }
  if ((s = t3d_vision_projection_apply(proj, pooled, n, emb)) != T3D_OK) { rc = fail(s, "project"); goto cleanup; }
  if (rl && (s = t3d_vision_decode(run, logits, NULL, NULL)) != T3D_OK) { rc = fail(s, "decode"); goto cleanup; }
  if (t3d_tensor_numel(rp) != n * c4 || t3d_tensor_numel(re) != n * cfg->projection.dim) {
    fprintf(stderr, "vision-parity-tool: reference sizes differ from the model's\n");
    goto cleanup;
  }
  compare("pooled", pooled, rp->data, (size_t)(n * c4), 0.99999, 1e-4);
  compare("embedding", emb, re->data, (size_t)(n * cfg->projection.dim), 0.99999, 1e-4);
  if (rl) compare("logits", logits, rl->data, (size_t)t3d_tensor_numel(rl), 0.99999, 1e-4);
  rc = failures ? 1 : 0;
cleanup:
  free(pooled);
  free(emb);
  free(logits);
  t3d_vision_run_free(run);
  t3d_vision_projection_free(proj);
  t3d_vision_free(v);
  t3d_backend_free(be);
  t3d_modelfile_close(io);
  t3d_modelfile_close(mf);
  return rc;
}
