/* Text encoder unit test without Python (HF parity is tests/test-text-parity.sh): on a random
 * t3d-tiny text model it checks unit-norm embeddings, that batching and padding do not change a
 * text's embedding, forward/project/embed agreement, the load errors (no vocabulary, wrong
 * vocabulary size, missing tensor), argument errors, and the zero-shot arithmetic. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/modelfile.h"
#include "core/model/text.h"
#include "kernels/backend.h"
#include "tests/check.h"
#include "tests/text-testmodel.h"

static char path[] = "/tmp/t3d-test-text.XXXXXX";

static double max_abs_diff(const float *a, const float *b, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

/* Loading a model written with (skip, vocab_delta) must fail with want and a detail containing needle. */
static void check_load_error(t3d_backend *be, const t3d_model_config *cfg, const char *skip, int vocab_delta,
                             t3d_status want, const char *needle)
{
  t3d_modelfile *mf = NULL;
  t3d_text_encoder *te = NULL;
  CHECK_STATUS(t3d_test_write_text_model(cfg, path, skip, vocab_delta), T3D_OK);
  CHECK_STATUS(t3d_modelfile_open(&mf, path), T3D_OK);
  if (!mf)
    return;
  CHECK_STATUS(t3d_text_encoder_load(&te, be, mf, cfg), want);
  if (!strstr(t3d_error_detail(), needle)) {
    fprintf(stderr, "load error detail \"%s\" lacks \"%s\"\n", t3d_error_detail(), needle);
    CHECK(0);
  }
  CHECK(te == NULL);
  t3d_modelfile_close(mf);
}

static void test_zero_shot(void)
{
  const float e0[4] = {1, 0, 0, 0}, e1[4] = {0, 1, 0, 0};
  float p[2];
  CHECK_NEAR(t3d_logit_scale_from_param(logf(1.0f / 0.07f)), 1.0 / 0.07, 1e-4);
  CHECK_NEAR(t3d_logit_scale_from_param(logf(1000.0f)), 100.0, 0);
  CHECK_NEAR(t3d_logit_scale_from_param(NAN), 100.0, 0);
  CHECK_NEAR(t3d_logit_scale_from_param(-INFINITY), 0.0, 0);
  float pos[8], neg[8];
  memcpy(pos, e0, sizeof e0); /* finding 0: image matches the positive prompt */
  memcpy(neg, e1, sizeof e1);
  memcpy(pos + 4, e1, sizeof e1); /* finding 1: matches neither: 0.5 */
  memcpy(neg + 4, e1, sizeof e1);
  CHECK_STATUS(t3d_zero_shot_score(e0, pos, neg, 2, 4, 1.0f, p), T3D_OK);
  CHECK_NEAR(p[0], 1.0 / (1.0 + exp(-1.0)), 1e-7);
  CHECK_NEAR(p[1], 0.5, 1e-7);
  CHECK_STATUS(t3d_zero_shot_score(e0, neg, pos, 1, 4, 100.0f, p), T3D_OK); /* negative wins by 100 */
  CHECK(p[0] >= 0 && p[0] < 1e-40 && !isnan(p[0]));
  CHECK_STATUS(t3d_zero_shot_score(e0, pos, neg, 1, 4, INFINITY, p), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_zero_shot_score(NULL, pos, neg, 1, 4, 1.0f, p), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_zero_shot_score(NULL, NULL, NULL, 0, 4, 1.0f, NULL), T3D_OK);
}

int main(void)
{
  t3d_model_config cfg;
  t3d_backend *be = NULL;
  t3d_modelfile *mf = NULL;
  t3d_text_encoder *te = NULL;
  t3d_backend_params bp = t3d_backend_default_params();
  int fd = mkstemp(path);

  if (fd < 0) {
    perror("mkstemp");
    return 1;
  }
  close(fd);
  bp.threads = 2;
  CHECK_STATUS(t3d_model_config_builtin(&cfg, "t3d-tiny"), T3D_OK);
  CHECK_STATUS(t3d_backend_cpu_create(&be, &bp), T3D_OK);
  test_zero_shot();
  t3d_text_encoder_free(NULL);

  /* load errors */
  check_load_error(be, &cfg, NULL, INT32_MIN, T3D_ERR_FORMAT, "no t3d.vocab");
  check_load_error(be, &cfg, NULL, -1, T3D_ERR_FORMAT, "vocab_size");
  check_load_error(be, &cfg, "text.encoder.layer.1.output.dense.weight", 0, T3D_ERR_NOT_FOUND,
                   "text.encoder.layer.1.output.dense.weight");
  check_load_error(be, &cfg, "text_proj.2.bias", 0, T3D_ERR_NOT_FOUND, "text_proj.2.bias");

  CHECK_STATUS(t3d_test_write_text_model(&cfg, path, NULL, 0), T3D_OK);
  CHECK_STATUS(t3d_modelfile_open(&mf, path), T3D_OK);
  CHECK_STATUS(t3d_text_encoder_load(&te, be, mf, &cfg), T3D_OK);
  t3d_modelfile_close(mf); /* the encoder keeps its own weights */
  if (!te)
    goto done;
  const int H = t3d_text_encoder_hidden(te), D = t3d_text_encoder_dim(te), T = t3d_text_encoder_max_tokens(te);
  CHECK_INT_EQ(H, cfg.text.hidden);
  CHECK_INT_EQ(D, cfg.projection.dim);
  CHECK_INT_EQ(T, cfg.text.max_positions < 256 ? cfg.text.max_positions : 256);

  /* 10 texts (more than one batch of T3D_TEXT_BATCH) of different lengths */
  const char *texts[10] = {"no focal consolidation",
                           "right lower lobe nodule with pleural effusion",
                           "liver",
                           "",
                           "mild cardiomegaly. no pneumothorax. small hiatal hernia.",
                           "kidney cyst",
                           "spleen",
                           "enlarged lymph nodes in the mediastinum",
                           "liver",
                           "pleural effusion"};
  float all[10 * 128], one[128], cls[10 * 128];
  CHECK_INT_EQ(D, 128);
  CHECK_STATUS(t3d_text_encoder_embed(te, texts, 10, all), T3D_OK);
  for (int i = 0; i < 10; i++) {
    double ss = 0;
    for (int j = 0; j < D; j++)
      ss += (double)all[i * D + j] * all[i * D + j];
    CHECK_NEAR(sqrt(ss), 1.0, 1e-5);
    CHECK_STATUS(t3d_text_encoder_embed(te, &texts[i], 1, one), T3D_OK);
    CHECK_NEAR(max_abs_diff(one, all + i * D, (size_t)D), 0.0, 1e-5); /* alone == padded in a batch */
  }
  CHECK_NEAR(max_abs_diff(all + 2 * D, all + 8 * D, (size_t)D), 0.0, 1e-6); /* same text, other batch */
  CHECK(max_abs_diff(all, all + D, (size_t)D) > 1e-3);                   /* different texts differ */

  /* forward + project == embed; padding with mask 0 leaves [CLS] unchanged */
  int32_t ids[16], mask[16], padded[16], pmask[16];
  size_t len = 0;
  CHECK_STATUS(t3d_text_encoder_tokenize(te, texts[1], ids, 16, &len), T3D_ERR_INVALID_ARG); /* capacity < T */
  int32_t *big = malloc((size_t)T * sizeof *big);
  CHECK_STATUS(t3d_text_encoder_tokenize(te, texts[1], big, (size_t)T, &len), T3D_OK);
  CHECK(len >= 3 && len <= 16);
  const t3d_tokenizer *tok = t3d_text_encoder_tokenizer(te);
  CHECK_INT_EQ(big[0], t3d_tokenizer_token_to_id(tok, "[CLS]"));
  CHECK_INT_EQ(big[len - 1], t3d_tokenizer_token_to_id(tok, "[SEP]"));
  if (len > 16)
    len = 16;
  for (size_t i = 0; i < 16; i++) {
    ids[i] = i < len ? big[i] : 0;
    mask[i] = 1;
    padded[i] = i < len ? big[i] : t3d_tokenizer_pad_id(tok);
    pmask[i] = i < len;
  }
  free(big);
  float hidden[16 * 128], c1[128], c2[128], e[128];
  CHECK_STATUS(t3d_text_encoder_forward(te, ids, mask, 1, (int64_t)len, hidden, c1), T3D_OK);
  CHECK_NEAR(max_abs_diff(hidden, c1, (size_t)H), 0.0, 0); /* [CLS] = row 0 of the hidden state */
  CHECK_STATUS(t3d_text_encoder_forward(te, padded, pmask, 1, 16, NULL, c2), T3D_OK);
  CHECK_NEAR(max_abs_diff(c1, c2, (size_t)H), 0.0, 1e-5);
  CHECK_STATUS(t3d_text_encoder_project(te, c1, 1, e), T3D_OK);
  CHECK_NEAR(max_abs_diff(e, all + D, (size_t)D), 0.0, 1e-5);
  CHECK_STATUS(t3d_text_encoder_forward(te, ids, mask, 2, 8, NULL, cls), T3D_OK); /* batch of 2 x 8 */
  { /* without hidden states the last layer runs on the [CLS] rows alone: the same [CLS] states,
     * here for a batch of two with padding in the second sequence */
    int32_t m2[16];
    float h2[16 * 128], full[2 * 128];
    for (int i = 0; i < 16; i++)
      m2[i] = i < 13; /* sequence 1: 5 tokens, 3 padding */
    CHECK_STATUS(t3d_text_encoder_forward(te, ids, m2, 2, 8, h2, full), T3D_OK);
    CHECK_STATUS(t3d_text_encoder_forward(te, ids, m2, 2, 8, NULL, cls), T3D_OK);
    CHECK_NEAR(max_abs_diff(full, cls, (size_t)(2 * H)), 0.0, 1e-6);
    CHECK_NEAR(max_abs_diff(h2 + 8 * H, full + H, (size_t)H), 0.0, 0); /* cls = row 0 of each sequence */
  }

  /* argument errors */
  CHECK_STATUS(t3d_text_encoder_forward(te, ids, mask, 1, 0, NULL, c1), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_text_encoder_forward(te, ids, mask, 1, T + 1, NULL, c1), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_text_encoder_forward(te, NULL, mask, 1, 4, NULL, c1), T3D_ERR_INVALID_ARG);
  ids[1] = cfg.text.vocab_size; /* out of the vocabulary */
  CHECK_STATUS(t3d_text_encoder_forward(te, ids, mask, 1, 4, NULL, c1), T3D_ERR_INVALID_ARG);
  const char *with_null[2] = {"liver", NULL};
  CHECK_STATUS(t3d_text_encoder_embed(te, with_null, 2, all), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_text_encoder_embed(te, NULL, 0, NULL), T3D_OK);

done:
  t3d_text_encoder_free(te);
  t3d_backend_free(be);
  unlink(path);
  return check_finish("test-text");
}
