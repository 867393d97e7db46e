/* Helper of tests/test-text-parity.sh: `config NAME` prints a built-in config as JSON and `vocab`
 * the default vocabulary (one token a line), for the reference script to build its BertModel;
 * `run MODEL REF SENTENCES` runs t3d's text encoder on the sentences and compares with the
 * Hugging Face outputs in REF (ids, [CLS] features, hidden states, projected embeddings):
 * cosine >= 0.99999 and max |a-r| / max |r| <= 1e-4, exiting 1 on a miss. Not a model runner. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/modelfile.h"
#include "core/model/text.h"
#include "kernels/backend.h"
#include "tests/parity-compare.h"

#define COS_MIN 0.99999
#define REL_MAX 1e-4

static int failures;

static void compare(const char *what, const float *a, const float *r, size_t n)
{
  if (!parity_compare(what, 22, a, r, n, COS_MIN, REL_MAX))
    failures++;
}

static int fail(t3d_status s, const char *what)
{
  fprintf(stderr, "text-parity-tool: %s: %s: %s\n", what, t3d_strerror(s), t3d_error_detail());
  return 2;
}

static int cmd_config(const char *name)
{
  t3d_model_config cfg;
  json_t *j = NULL;
  t3d_status s = t3d_model_config_builtin(&cfg, name);
  if (s == T3D_OK)
    s = t3d_model_config_to_json(&cfg, &j);
  if (s != T3D_OK)
    return fail(s, name);
  json_dumpf(j, stdout, JSON_INDENT(1));
  printf("\n");
  json_decref(j);
  return 0;
}

static int cmd_vocab(void)
{
  size_t n;
  const char *const *v = t3d_default_vocab(&n);
  for (size_t i = 0; i < n; i++)
    printf("%s\n", v[i]);
  return 0;
}

static const float *ref_tensor(const t3d_modelfile *ref, const char *name, t3d_dtype dt, int ndim,
                               const int64_t *shape)
{
  const t3d_tensor *t = NULL;
  if (t3d_modelfile_require(ref, name, dt, ndim, shape, &t) != T3D_OK) {
    fprintf(stderr, "text-parity-tool: reference: %s\n", t3d_error_detail());
    return NULL;
  }
  return t->data;
}

static int cmd_run(const char *model_path, const char *ref_path, const char *sentences_path)
{
  t3d_modelfile *mf = NULL, *ref = NULL;
  t3d_backend *be = NULL;
  t3d_text_encoder *te = NULL;
  json_t *js = NULL;
  const char **texts = NULL;
  float *hidden = NULL, *cls = NULL, *emb = NULL, *hsel = NULL, *rsel = NULL;
  int32_t *ids = NULL;
  int rc = 2;
  t3d_status s;

  if ((s = t3d_modelfile_open(&mf, model_path)) != T3D_OK || (s = t3d_modelfile_open(&ref, ref_path)) != T3D_OK) {
    rc = fail(s, "open");
    goto cleanup;
  }
  const t3d_model_config *cfg = t3d_modelfile_config(mf);
  if (!cfg) {
    fprintf(stderr, "text-parity-tool: %s has no config\n", model_path);
    goto cleanup;
  }
  t3d_backend_params bp = t3d_backend_default_params();
  if ((s = t3d_backend_cpu_create(&be, &bp)) != T3D_OK || (s = t3d_text_encoder_load(&te, be, mf, cfg)) != T3D_OK) {
    rc = fail(s, "load");
    goto cleanup;
  }
  json_error_t err;
  if (!(js = json_load_file(sentences_path, 0, &err)) || !json_is_array(js)) {
    fprintf(stderr, "text-parity-tool: %s: %s\n", sentences_path, err.text);
    goto cleanup;
  }
  const size_t n = json_array_size(js);
  const t3d_tensor *idt = t3d_modelfile_get(ref, "input_ids");
  if (!idt || idt->ndim != 2 || idt->shape[0] != (int64_t)n) {
    fprintf(stderr, "text-parity-tool: reference input_ids missing or not [%zu, L]\n", n);
    goto cleanup;
  }
  const int64_t L = idt->shape[1], H = t3d_text_encoder_hidden(te), D = t3d_text_encoder_dim(te);
  const int32_t *rids = idt->data;
  const t3d_tensor *mt = t3d_modelfile_get(ref, "attention_mask");
  const float *rcls = ref_tensor(ref, "cls", T3D_F32, 2, (int64_t[]){(int64_t)n, H});
  const float *remb = ref_tensor(ref, "embedding", T3D_F32, 2, (int64_t[]){(int64_t)n, D});
  const float *rhid = ref_tensor(ref, "hidden", T3D_F32, 3, (int64_t[]){(int64_t)n, L, H});
  if (!mt || mt->dtype != T3D_I32 || !t3d_tensor_same_shape(mt, idt) || !rcls || !remb || !rhid) {
    fprintf(stderr, "text-parity-tool: reference tensors incomplete\n");
    goto cleanup;
  }
  const int32_t *rmask = mt->data;
  texts = calloc(n, sizeof *texts);
  ids = malloc((size_t)t3d_text_encoder_max_tokens(te) * sizeof *ids);
  hidden = malloc((size_t)(n * L * H) * sizeof *hidden);
  hsel = malloc((size_t)(n * L * H) * sizeof *hsel);
  rsel = malloc((size_t)(n * L * H) * sizeof *rsel);
  cls = malloc((size_t)(n * H) * sizeof *cls);
  emb = malloc((size_t)(n * D) * sizeof *emb);
  if (!texts || !ids || !hidden || !hsel || !rsel || !cls || !emb) {
    fprintf(stderr, "text-parity-tool: out of memory\n");
    goto cleanup;
  }

  /* 1. tokenizer: our ids equal BertTokenizer's (padding excluded) */
  int id_mismatch = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = 0, want = 0;
    texts[i] = json_string_value(json_array_get(js, i));
    if (!texts[i]) {
      fprintf(stderr, "text-parity-tool: sentence %zu is not a string\n", i);
      goto cleanup;
    }
    if ((s = t3d_text_encoder_tokenize(te, texts[i], ids, (size_t)t3d_text_encoder_max_tokens(te), &len)) != T3D_OK) {
      rc = fail(s, "tokenize");
      goto cleanup;
    }
    for (int64_t j = 0; j < L; j++)
      want += rmask[i * L + j] != 0;
    int same = len == want;
    for (size_t j = 0; same && j < len; j++)
      same = ids[j] == rids[i * L + (int64_t)j];
    if (!same) {
      fprintf(stderr, "text-parity-tool: sentence %zu: %zu ids differ from HF's %zu (first ids %d vs %d)\n", i, len,
              want, len ? ids[0] : -1, rids[i * L]);
      id_mismatch++;
    }
  }
  printf("%-22s %zu sentences, %d differ  %s\n", "token ids", n, id_mismatch, id_mismatch ? "FAIL" : "ok");
  failures += id_mismatch != 0;

  /* 2. forward on HF's own padded batch: hidden states of real tokens, [CLS] features */
  if ((s = t3d_text_encoder_forward(te, rids, rmask, (int64_t)n, L, hidden, cls)) != T3D_OK) {
    rc = fail(s, "forward");
    goto cleanup;
  }
  size_t m = 0;
  for (int64_t t = 0; t < (int64_t)n * L; t++)
    if (rmask[t]) {
      memcpy(hsel + m * H, hidden + t * H, (size_t)H * sizeof *hsel);
      memcpy(rsel + m * H, rhid + t * H, (size_t)H * sizeof *rsel);
      m++;
    }
  compare("hidden (real tokens)", hsel, rsel, m * (size_t)H);
  compare("[CLS] feature", cls, rcls, (size_t)(n * H));
  for (size_t i = 0; i < n; i++) {
    char what[40];
    snprintf(what, sizeof what, "[CLS] sentence %zu", i);
    compare(what, cls + i * H, rcls + i * H, (size_t)H);
  }

  /* 3. whole path, our own tokenization and batching: projected, L2-normalised embeddings */
  if ((s = t3d_text_encoder_embed(te, texts, n, emb)) != T3D_OK) {
    rc = fail(s, "embed");
    goto cleanup;
  }
  compare("embedding", emb, remb, (size_t)(n * D));
  for (size_t i = 0; i < n; i++) {
    char what[40];
    snprintf(what, sizeof what, "embedding sentence %zu", i);
    compare(what, emb + i * D, remb + i * D, (size_t)D);
  }
  rc = failures ? 1 : 0;
  printf("%s\n", rc ? "FAIL" : "PASS");
cleanup:
  free(texts);
  free(ids);
  free(hidden);
  free(hsel);
  free(rsel);
  free(cls);
  free(emb);
  json_decref(js);
  t3d_text_encoder_free(te);
  t3d_backend_free(be);
  t3d_modelfile_close(ref);
  t3d_modelfile_close(mf);
  return rc;
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "config") == 0)
    return cmd_config(argv[2]);
  if (argc == 2 && strcmp(argv[1], "vocab") == 0)
    return cmd_vocab();
  if (argc == 5 && strcmp(argv[1], "run") == 0)
    return cmd_run(argv[2], argv[3], argv[4]);
  fprintf(stderr, "usage: text-parity-tool config NAME | vocab | run MODEL REF.safetensors SENTENCES.json\n");
  return 2;
}
