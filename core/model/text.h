/* The T3D text side: WordPiece tokenization with the model file's vocabulary, the BERT encoder
 * (Hugging Face BertModel layout and arithmetic, [CLS] hidden state pooled), the text projection
 * MLP with L2 normalisation, and zero-shot scoring against cached prompt embeddings.
 * Not the tokenizer itself (core/model/tokenizer.h), not training, and not the vision side.
 *
 * Use: t3d_text_encoder_load once per model file; t3d_text_encoder_embed for whole texts, or the
 * lower-level tokenize / forward / project steps (parity tests and retrieval use those).
 * Activations live in one backend buffer planned from (batch, sequence length, config) before a
 * forward runs; a later, larger batch re-plans it between forwards, never during one.
 *
 * Thread safety: an encoder owns its activation buffer, so calls on one encoder must not
 * overlap; separate encoders may run concurrently. */
#ifndef T3D_TEXT_H
#define T3D_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/model/modelconfig.h"
#include "core/model/modelfile.h"
#include "core/base/status.h"
#include "core/model/tokenizer.h"
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest token sequence t3d encodes, [CLS] and [SEP] included (DESIGN.md: max 256 tokens);
 * lower when the config's max_positions is lower. Longer reports are truncated. */
#define T3D_TEXT_MAX_TOKENS 256
/* Texts per forward in t3d_text_encoder_embed; more are run in consecutive batches. */
#define T3D_TEXT_BATCH 8
/* CLIP clamps the learned temperature: exp(logit_scale) is used, capped at this value. */
#define T3D_LOGIT_SCALE_MAX 100.0f

typedef struct t3d_text_encoder t3d_text_encoder;

/* Builds the text encoder of mf for cfg: the tokenizer from the "t3d.vocab" metadata (its size
 * must equal cfg->text.vocab_size; lowercase / strip_accents from cfg), the text.* BERT weights
 * and text_proj.{0,2}.{weight,bias} (F32, F16 or BF16, converted to f32 and uploaded to be).
 * *out is the caller's (t3d_text_encoder_free); be must outlive it, mf need not.
 * Errors: T3D_ERR_NOT_FOUND / T3D_ERR_SHAPE naming the missing or misshapen tensor,
 * T3D_ERR_FORMAT when the vocabulary is absent or does not fit the config. */
t3d_status t3d_text_encoder_load(t3d_text_encoder **out, t3d_backend *be, const t3d_modelfile *mf,
                                 const t3d_model_config *cfg);
void t3d_text_encoder_free(t3d_text_encoder *te); /* NULL is a no-op */

/* Embeds n texts (UTF-8, NUL-terminated): out gets n rows of cfg->projection.dim floats, each
 * the L2-normalised projection of the text's [CLS] feature. n == 0 does nothing. */
t3d_status t3d_text_encoder_embed(t3d_text_encoder *te, const char *const *texts, size_t n, float *out);

/* ---- lower level ---------------------------------------------------------------------------- */

int t3d_text_encoder_hidden(const t3d_text_encoder *te);    /* H: BERT hidden size */
int t3d_text_encoder_dim(const t3d_text_encoder *te);       /* D: projected embedding size */
int t3d_text_encoder_max_tokens(const t3d_text_encoder *te); /* min(256, max_positions) */
/* The encoder's tokenizer (borrowed; lives as long as te). */
const t3d_tokenizer *t3d_text_encoder_tokenizer(const t3d_text_encoder *te);

/* Tokenizes text as BertTokenizer(text, truncation=True, max_length=max_tokens) would:
 * [CLS] pieces [SEP]; ids gets *len (<= max_tokens) entries; capacity must be >= max_tokens. */
t3d_status t3d_text_encoder_tokenize(const t3d_text_encoder *te, const char *text, int32_t *ids, size_t capacity,
                                     size_t *len);

/* BERT forward over a padded batch, as BertModel(input_ids, attention_mask) in eval mode with
 * token_type_ids 0 and position ids 0..len-1. ids, mask: host [batch, len] (mask 1 = token,
 * 0 = padding; HF convention); 1 <= len <= max_tokens. hidden (may be NULL): host [batch, len, H]
 * last hidden state (padding rows too, as HF computes them); cls (may be NULL): host [batch, H],
 * the hidden state at position 0. Without hidden, the last layer runs on the position-0 rows only
 * (nothing else of it reaches cls); cls is the same either way. */
t3d_status t3d_text_encoder_forward(t3d_text_encoder *te, const int32_t *ids, const int32_t *mask, int64_t batch,
                                    int64_t len, float *hidden, float *cls);

/* Projection MLP text_proj: Linear(H, hidden) - ReLU - Linear(hidden, D), then each row
 * L2-normalised (F.normalize, eps 1e-12). cls: host [n, H]; out: host [n, D]. */
t3d_status t3d_text_encoder_project(t3d_text_encoder *te, const float *cls, int64_t n, float *out);

/* ---- zero-shot ------------------------------------------------------------------------------ */

/* The multiplier applied to cosine similarities: exp(logit_scale_param), where the model file's
 * "logit_scale" tensor holds ln(scale) (CLIP's parameterisation), clamped to
 * [0, T3D_LOGIT_SCALE_MAX] as CLIP clamps it in training (a NaN parameter gives the cap). */
float t3d_logit_scale_from_param(float logit_scale_param);

/* Zero-shot probabilities of nfind findings for one image embedding image[dim] (L2-normalised):
 * for finding i, with s_pos = scale * <image, pos[i]> and s_neg = scale * <image, neg[i]>
 * (pos, neg: [nfind, dim], L2-normalised prompt embeddings),
 *   prob[i] = softmax(s_pos, s_neg)[0] = 1 / (1 + exp(s_neg - s_pos)).
 * scale is t3d_logit_scale_from_param of the model's parameter. T3D_ERR_INVALID_ARG on NULL
 * arrays (with nfind > 0), dim < 1 or a non-finite scale. */
t3d_status t3d_zero_shot_score(const float *image, const float *pos, const float *neg, size_t nfind, int dim,
                               float scale, float *prob);
/* 1 / (1 + exp(-z)) without overflow for any sign of z: the zero-shot softmax above is
 * t3d_logistic(s_pos - s_neg), and a calibrated finding's probability (t3d_analyze) is
 * t3d_logistic(slope * (logit_pos - logit_neg) + intercept). */
double t3d_logistic(double z);

#ifdef __cplusplus
}
#endif
#endif
