/* The T3D text encoder (see text.h): model file -> tokenizer + BERT weights + text projection on
 * a backend, the BERT forward over a padded batch through the backend ops, and zero-shot scoring.
 * Not a tokenizer (tokenizer.c) and not a general transformer: it is exactly HF's BertModel in
 * eval mode (post-LayerNorm, exact GELU, absolute positions, token type 0, no pooler). */
#include "core/model/text.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/arena.h"

typedef struct {
  t3d_tensor w, b; /* w[out, in], b[out] (nn.Linear) */
} linear_w;

typedef struct {
  t3d_tensor g, b; /* gamma[n], beta[n] */
} norm_w;

/* One BertLayer: attention.self.{query,key,value}, attention.output.{dense,LayerNorm},
 * intermediate.dense, output.{dense,LayerNorm}. */
typedef struct {
  linear_w q, k, v, attn_out;
  norm_w attn_norm;
  linear_w inter, out;
  norm_w out_norm;
} bert_layer;

/* Activations of one forward over [B, L] tokens, views into te->mem. */
typedef struct {
  t3d_tensor ids, pos, type, mask; /* i32[B, L] */
  t3d_tensor h;                    /* [B, L, H] hidden state between layers */
  t3d_tensor q, k, v, ctx, t;      /* [B, L, H] attention scratch; q also holds the post-attention norm */
  t3d_tensor inter;                /* [B, L, I] feed-forward */
  t3d_tensor cls, proj_h, proj_y;  /* [B, H], [B, hidden], [B, D] projection head */
} activations;

struct t3d_text_encoder {
  t3d_backend *be;
  t3d_text_config cfg;
  int proj_hidden, dim, max_tokens;
  t3d_tokenizer *tok;
  t3d_tensor word, position, token_type; /* embedding tables [V, H], [P, H], [T, H] */
  norm_w emb_norm;
  bert_layer *layers; /* cfg.layers */
  linear_w proj0, proj2;
  /* activation buffer, planned for up to plan_batch x plan_len tokens */
  void *mem;
  size_t mem_bytes;
  int64_t plan_batch, plan_len;
  int32_t *host_ids; /* host scratch: position ids, then token types, [plan_batch * plan_len] each */
};

/* ---- loading -------------------------------------------------------------------------------- */

/* Requires the named tensor (any float dtype) with the given shape and uploads it as f32, or,
 * for the weights of `op` (T3D_OP_COUNT: not a weight), in the backend's precision. */
static t3d_status load_tensor_as(t3d_text_encoder *te, const t3d_modelfile *mf, const char *name, int ndim,
                                 const int64_t *shape, t3d_tensor *dev, t3d_op op)
{
  const t3d_tensor *src = NULL;
  t3d_tensor host;
  float *tmp = NULL;
  t3d_status s;

  T3D_TRY(t3d_modelfile_require(mf, name, T3D_MODELFILE_ANY_FLOAT, ndim, shape, &src));
  host = *src;
  if (src->dtype != T3D_F32) {
    size_t n = (size_t)t3d_tensor_numel(src);
    if (!(tmp = t3d_aligned_alloc(n * sizeof *tmp)))
      return t3d_error(T3D_ERR_NOMEM, "text encoder: out of memory converting %s to f32", name);
    t3d_convert_to_f32(tmp, src->data, src->dtype, n);
    host.dtype = T3D_F32;
    host.data = tmp;
  }
  if (op != T3D_OP_COUNT) {
    s = t3d_backend_weight_upload(te->be, dev, &host, op);
  } else {
    s = t3d_backend_tensor_new(te->be, dev, T3D_F32, ndim, shape);
    if (s == T3D_OK)
      s = t3d_backend_upload(te->be, dev, &host);
  }
  if (s == T3D_OK)
    t3d_modelfile_release_pages(mf, src);
  t3d_aligned_free(tmp);
  if (s != T3D_OK)
    t3d_error_prefix("text encoder, tensor %s: ", name);
  return s;
}

static t3d_status load_tensor(t3d_text_encoder *te, const t3d_modelfile *mf, const char *name, int ndim,
                              const int64_t *shape, t3d_tensor *dev)
{
  return load_tensor_as(te, mf, name, ndim, shape, dev, T3D_OP_COUNT);
}

/* op: T3D_OP_LINEAR (weights in the backend's precision) or T3D_OP_COUNT (fp32 always) */
static t3d_status load_linear_as(t3d_text_encoder *te, const t3d_modelfile *mf, const char *base, int64_t out,
                                 int64_t in, linear_w *l, t3d_op op)
{
  char name[160];
  snprintf(name, sizeof name, "%s.weight", base);
  T3D_TRY(load_tensor_as(te, mf, name, 2, (int64_t[]){out, in}, &l->w, op));
  snprintf(name, sizeof name, "%s.bias", base);
  return load_tensor(te, mf, name, 1, &out, &l->b);
}

static t3d_status load_linear(t3d_text_encoder *te, const t3d_modelfile *mf, const char *base, int64_t out,
                              int64_t in, linear_w *l)
{
  return load_linear_as(te, mf, base, out, in, l, T3D_OP_LINEAR);
}

static t3d_status load_norm(t3d_text_encoder *te, const t3d_modelfile *mf, const char *base, int64_t n, norm_w *ln)
{
  char name[160];
  snprintf(name, sizeof name, "%s.weight", base);
  T3D_TRY(load_tensor(te, mf, name, 1, &n, &ln->g));
  snprintf(name, sizeof name, "%s.bias", base);
  return load_tensor(te, mf, name, 1, &n, &ln->b);
}

static void free_linear(t3d_backend *be, linear_w *l)
{
  t3d_backend_tensor_free(be, &l->w);
  t3d_backend_tensor_free(be, &l->b);
}

static void free_norm(t3d_backend *be, norm_w *n)
{
  t3d_backend_tensor_free(be, &n->g);
  t3d_backend_tensor_free(be, &n->b);
}

static t3d_status load_tokenizer(t3d_text_encoder *te, const t3d_modelfile *mf)
{
  size_t nv = 0;
  const char *const *vocab = t3d_modelfile_vocab(mf, &nv);
  t3d_tokenizer_params p = t3d_tokenizer_default_params();

  if (!vocab)
    return t3d_error(T3D_ERR_FORMAT, "%s: no t3d.vocab metadata: the text encoder needs its WordPiece vocabulary",
                     t3d_modelfile_path(mf));
  if (nv != (size_t)te->cfg.vocab_size)
    return t3d_error(T3D_ERR_FORMAT, "%s: t3d.vocab has %zu tokens but the config's text.vocab_size is %d",
                     t3d_modelfile_path(mf), nv, te->cfg.vocab_size);
  p.do_lower_case = te->cfg.lowercase;
  p.strip_accents = te->cfg.strip_accents ? T3D_STRIP_ACCENTS_ON : T3D_STRIP_ACCENTS_OFF;
  p.max_length = te->max_tokens;
  if (t3d_tokenizer_new_from_vocab(vocab, nv, &p, &te->tok) != T3D_OK) {
    t3d_error_prefix("%s: t3d.vocab: ", t3d_modelfile_path(mf));
    return T3D_ERR_FORMAT;
  }
  return T3D_OK;
}

t3d_status t3d_text_encoder_load(t3d_text_encoder **out, t3d_backend *be, const t3d_modelfile *mf,
                                 const t3d_model_config *cfg)
{
  t3d_text_encoder *te = NULL;
  t3d_status s = T3D_OK;
  char base[128];

  if (!out || !be || !mf || !cfg)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_text_encoder_load: NULL argument");
  *out = NULL;
  if (!(te = calloc(1, sizeof *te)))
    return t3d_error(T3D_ERR_NOMEM, "text encoder: out of memory");
  te->be = be;
  te->cfg = cfg->text;
  te->proj_hidden = cfg->projection.hidden;
  te->dim = cfg->projection.dim;
  te->max_tokens = cfg->text.max_positions < T3D_TEXT_MAX_TOKENS ? cfg->text.max_positions : T3D_TEXT_MAX_TOKENS;
  if (te->max_tokens < 2) {
    s = t3d_error(T3D_ERR_FORMAT, "text encoder: max_positions %d leaves no room for [CLS] and [SEP]",
                  cfg->text.max_positions);
    goto cleanup;
  }
  if (!(te->layers = calloc((size_t)te->cfg.layers, sizeof *te->layers))) {
    s = t3d_error(T3D_ERR_NOMEM, "text encoder: out of memory");
    goto cleanup;
  }
  if ((s = load_tokenizer(te, mf)) != T3D_OK)
    goto cleanup;

  const int64_t H = te->cfg.hidden, I = te->cfg.intermediate;
  if ((s = load_tensor(te, mf, "text.embeddings.word_embeddings.weight", 2, (int64_t[]){te->cfg.vocab_size, H},
                       &te->word)) != T3D_OK ||
      (s = load_tensor(te, mf, "text.embeddings.position_embeddings.weight", 2,
                       (int64_t[]){te->cfg.max_positions, H}, &te->position)) != T3D_OK ||
      (s = load_tensor(te, mf, "text.embeddings.token_type_embeddings.weight", 2,
                       (int64_t[]){te->cfg.type_vocab_size, H}, &te->token_type)) != T3D_OK ||
      (s = load_norm(te, mf, "text.embeddings.LayerNorm", H, &te->emb_norm)) != T3D_OK)
    goto cleanup;
  for (int i = 0; i < te->cfg.layers; i++) {
    bert_layer *l = &te->layers[i];
    static const char *const qkv[3] = {"query", "key", "value"};
    linear_w *dst[3] = {&l->q, &l->k, &l->v};
    for (int j = 0; j < 3; j++) {
      snprintf(base, sizeof base, "text.encoder.layer.%d.attention.self.%s", i, qkv[j]);
      if ((s = load_linear(te, mf, base, H, H, dst[j])) != T3D_OK)
        goto cleanup;
    }
    snprintf(base, sizeof base, "text.encoder.layer.%d.attention.output.dense", i);
    if ((s = load_linear(te, mf, base, H, H, &l->attn_out)) != T3D_OK)
      goto cleanup;
    snprintf(base, sizeof base, "text.encoder.layer.%d.attention.output.LayerNorm", i);
    if ((s = load_norm(te, mf, base, H, &l->attn_norm)) != T3D_OK)
      goto cleanup;
    snprintf(base, sizeof base, "text.encoder.layer.%d.intermediate.dense", i);
    if ((s = load_linear(te, mf, base, I, H, &l->inter)) != T3D_OK)
      goto cleanup;
    snprintf(base, sizeof base, "text.encoder.layer.%d.output.dense", i);
    if ((s = load_linear(te, mf, base, H, I, &l->out)) != T3D_OK)
      goto cleanup;
    snprintf(base, sizeof base, "text.encoder.layer.%d.output.LayerNorm", i);
    if ((s = load_norm(te, mf, base, H, &l->out_norm)) != T3D_OK)
      goto cleanup;
  }
  /* The projection stays fp32 at any precision: it is a few thousand multiply-adds, and the
   * trained model's centred embeddings (train/model.py Center, folded into its last bias) are
   * small differences of large terms, where bf16 inputs cost the embedding cosine 1e-4. */
  if ((s = load_linear_as(te, mf, "text_proj.0", te->proj_hidden, H, &te->proj0, T3D_OP_COUNT)) != T3D_OK ||
      (s = load_linear_as(te, mf, "text_proj.2", te->dim, te->proj_hidden, &te->proj2, T3D_OP_COUNT)) != T3D_OK)
    goto cleanup;
  *out = te;
  te = NULL;
cleanup:
  t3d_text_encoder_free(te);
  return s;
}

void t3d_text_encoder_free(t3d_text_encoder *te)
{
  if (!te)
    return;
  t3d_backend *be = te->be;
  t3d_tokenizer_free(te->tok);
  t3d_backend_tensor_free(be, &te->word);
  t3d_backend_tensor_free(be, &te->position);
  t3d_backend_tensor_free(be, &te->token_type);
  free_norm(be, &te->emb_norm);
  for (int i = 0; te->layers && i < te->cfg.layers; i++) {
    bert_layer *l = &te->layers[i];
    free_linear(be, &l->q);
    free_linear(be, &l->k);
    free_linear(be, &l->v);
    free_linear(be, &l->attn_out);
    free_norm(be, &l->attn_norm);
    free_linear(be, &l->inter);
    free_linear(be, &l->out);
    free_norm(be, &l->out_norm);
  }
  free(te->layers);
  free_linear(be, &te->proj0);
  free_linear(be, &te->proj2);
  if (te->mem)
    be->ops->free(be, te->mem);
  free(te->host_ids);
  free(te);
}

int t3d_text_encoder_hidden(const t3d_text_encoder *te) { return te ? te->cfg.hidden : 0; }
int t3d_text_encoder_dim(const t3d_text_encoder *te) { return te ? te->dim : 0; }
int t3d_text_encoder_max_tokens(const t3d_text_encoder *te) { return te ? te->max_tokens : 0; }
const t3d_tokenizer *t3d_text_encoder_tokenizer(const t3d_text_encoder *te) { return te ? te->tok : NULL; }

/* ---- activation buffer ---------------------------------------------------------------------- */

/* Lays out the activations of a [B, L] forward from base (NULL: only count); returns the bytes. */
static size_t layout(const t3d_text_encoder *te, int64_t B, int64_t L, char *base, activations *a)
{
  const int64_t H = te->cfg.hidden, I = te->cfg.intermediate;
  size_t off = 0;
#define PLACE(field, dt, nd, ...)                                                                                      \
  do {                                                                                                                 \
    const int64_t shp_[] = {__VA_ARGS__};                                                                              \
    a->field = t3d_tensor_view(dt, nd, shp_, base ? base + off : NULL);                                                \
    off += t3d_arena_round(t3d_tensor_nbytes(&a->field));                                                              \
  } while (0)
  PLACE(ids, T3D_I32, 2, B, L);
  PLACE(pos, T3D_I32, 2, B, L);
  PLACE(type, T3D_I32, 2, B, L);
  PLACE(mask, T3D_I32, 2, B, L);
  PLACE(h, T3D_F32, 3, B, L, H);
  PLACE(q, T3D_F32, 3, B, L, H);
  PLACE(k, T3D_F32, 3, B, L, H);
  PLACE(v, T3D_F32, 3, B, L, H);
  PLACE(ctx, T3D_F32, 3, B, L, H);
  PLACE(t, T3D_F32, 3, B, L, H);
  PLACE(inter, T3D_F32, 3, B, L, I);
  PLACE(cls, T3D_F32, 2, B, H);
  PLACE(proj_h, T3D_F32, 2, B, te->proj_hidden);
  PLACE(proj_y, T3D_F32, 2, B, te->dim);
#undef PLACE
  return off;
}

/* Makes the buffer hold a [B, L] forward, re-planning (free + one allocation) when it is
 * smaller, and lays out *a. Called before a forward, never inside one. */
static t3d_status prepare(t3d_text_encoder *te, int64_t B, int64_t L, activations *a)
{
  if (B > te->plan_batch || L > te->plan_len) {
    int64_t nb = B > te->plan_batch ? B : te->plan_batch, nl = L > te->plan_len ? L : te->plan_len;
    size_t bytes = layout(te, nb, nl, NULL, a);
    int32_t *host = malloc((size_t)(2 * nb * nl) * sizeof *host);
    void *mem = NULL;
    if (!host)
      return t3d_error(T3D_ERR_NOMEM, "text encoder: out of memory");
    if (te->mem)
      te->be->ops->free(te->be, te->mem);
    te->mem = NULL;
    te->plan_batch = te->plan_len = 0;
    t3d_status s = te->be->ops->alloc(te->be, &mem, bytes);
    if (s != T3D_OK) {
      free(host);
      t3d_error_prefix("text encoder activations (%lld x %lld tokens, %zu MiB): ", (long long)nb, (long long)nl,
                       bytes >> 20);
      return s;
    }
    free(te->host_ids);
    te->host_ids = host;
    te->mem = mem;
    te->mem_bytes = bytes;
    te->plan_batch = nb;
    te->plan_len = nl;
  }
  layout(te, B, L, te->mem, a);
  return T3D_OK;
}

/* ---- forward -------------------------------------------------------------------------------- */

/* y = LayerNorm(x + residual) over H, as BertSelfOutput / BertOutput (dropout is identity);
 * x is overwritten with the sum. */
static t3d_status add_norm(t3d_backend *be, t3d_tensor *y, t3d_tensor *x, const t3d_tensor *residual,
                           const norm_w *n, float eps)
{
  T3D_TRY(t3d_op_add(be, x, x, residual));
  return t3d_op_layernorm(be, y, x, &n->g, &n->b, eps);
}

/* A BertLayer after its keys and values (a->k, a->v over every token): the rows hq attend and go
 * through the rest of the layer into out; q, ctx, t1, inter and t2 are buffers of hq's rows (t2
 * may be hq, which is dead by then).
 *   ctx = MHA(hq Wq, k, v; key mask)           BertSelfAttention
 *   a1  = LayerNorm(ctx Wo + bo + hq)          BertSelfOutput   (in q)
 *   f   = GELU(a1 Wi + bi)                     BertIntermediate
 *   out = LayerNorm(f Wo2 + bo2 + a1)          BertOutput */
static t3d_status layer_rows(t3d_text_encoder *te, const bert_layer *l, activations *a, t3d_tensor *hq, t3d_tensor *q,
                             t3d_tensor *ctx, t3d_tensor *t1, t3d_tensor *inter, t3d_tensor *t2, t3d_tensor *out)
{
  t3d_backend *be = te->be;
  const float eps = (float)te->cfg.layer_norm_eps;
  T3D_TRY(t3d_op_linear(be, q, hq, &l->q.w, &l->q.b));
  T3D_TRY(t3d_op_attention(be, ctx, q, &a->k, &a->v, &a->mask, te->cfg.heads));
  T3D_TRY(t3d_op_linear(be, t1, ctx, &l->attn_out.w, &l->attn_out.b));
  T3D_TRY(add_norm(be, q, t1, hq, &l->attn_norm, eps));
  T3D_TRY(t3d_op_linear(be, inter, q, &l->inter.w, &l->inter.b));
  T3D_TRY(t3d_op_gelu(be, inter, inter));
  T3D_TRY(t3d_op_linear(be, t2, inter, &l->out.w, &l->out.b));
  return add_norm(be, out, t2, q, &l->out_norm, eps);
}

/* One BertLayer on a->h [B, L, H] in place (keys and values, then every row). */
static t3d_status layer_forward(t3d_text_encoder *te, const bert_layer *l, activations *a)
{
  T3D_TRY(t3d_op_linear(te->be, &a->k, &a->h, &l->k.w, &l->k.b));
  T3D_TRY(t3d_op_linear(te->be, &a->v, &a->h, &l->v.w, &l->v.b));
  return layer_rows(te, l, a, &a->h, &a->q, &a->ctx, &a->t, &a->inter, &a->t, &a->h);
}

/* The first B rows of buffer t as a [B, 1, X] tensor. */
static t3d_tensor first_rows(const t3d_tensor *t, int64_t B, int64_t X)
{
  return t3d_tensor_view(T3D_F32, 3, (int64_t[]){B, 1, X}, t->data);
}

/* The last BertLayer when only each sequence's first token ([CLS]) is read after it (the
 * embedding; no hidden states asked for): keys and values over every token, the rest of the
 * layer (layer_rows, as every other layer) on the B [CLS] rows only, which is all of it that
 * reaches the output (about 7 % of a 12-layer forward at 256 tokens). Leaves the [CLS] states in
 * a->h's first B rows. */
static t3d_status layer_forward_cls(t3d_text_encoder *te, const bert_layer *l, activations *a)
{
  t3d_backend *be = te->be;
  const int64_t B = a->h.shape[0], L = a->h.shape[1], H = te->cfg.hidden, I = te->cfg.intermediate;
  t3d_tensor rows = t3d_tensor_view(T3D_I32, 2, (int64_t[]){B, 1}, a->pos.data); /* pos is free by now */
  t3d_tensor table = t3d_tensor_view(T3D_F32, 2, (int64_t[]){B * L, H}, a->h.data);
  t3d_tensor hc = first_rows(&a->t, B, H), qc = first_rows(&a->q, B, H), ctxc = first_rows(&a->ctx, B, H);
  t3d_tensor tc = first_rows(&a->h, B, H), ic = first_rows(&a->inter, B, I);

  for (int64_t b = 0; b < B; b++)
    te->host_ids[b] = (int32_t)(b * L);
  T3D_TRY(t3d_op_linear(be, &a->k, &a->h, &l->k.w, &l->k.b));
  T3D_TRY(t3d_op_linear(be, &a->v, &a->h, &l->v.w, &l->v.b));
  T3D_TRY(t3d_backend_upload(be, &rows, &(t3d_tensor){.dtype = T3D_I32, .ndim = 2, .shape = {B, 1}, .data = te->host_ids}));
  T3D_TRY(t3d_op_embedding(be, &hc, &rows, &table)); /* hc = h[b, 0] */
  /* tc (a->h's first rows) is written only after attention has read keys and values */
  return layer_rows(te, l, a, &hc, &qc, &ctxc, &tc, &ic, &hc, &tc);
}

/* Embeddings + encoder on the ids/mask already in the buffer; leaves the last hidden state in a->h
 * (cls_only and at least one layer: the [CLS] states only, in a->h's first rows).
 *   h = LayerNorm(word[ids] + position[0..L-1] + token_type[0])   BertEmbeddings */
static t3d_status bert_forward(t3d_text_encoder *te, activations *a, bool cls_only)
{
  t3d_backend *be = te->be;
  T3D_TRY(t3d_op_embedding(be, &a->t, &a->ids, &te->word));
  T3D_TRY(t3d_op_embedding(be, &a->q, &a->pos, &te->position));
  T3D_TRY(t3d_op_embedding(be, &a->k, &a->type, &te->token_type));
  T3D_TRY(t3d_op_add(be, &a->t, &a->t, &a->q));
  T3D_TRY(t3d_op_add(be, &a->t, &a->t, &a->k));
  T3D_TRY(t3d_op_layernorm(be, &a->h, &a->t, &te->emb_norm.g, &te->emb_norm.b, (float)te->cfg.layer_norm_eps));
  for (int i = 0; i < te->cfg.layers; i++)
    T3D_TRY(cls_only && i == te->cfg.layers - 1 ? layer_forward_cls(te, &te->layers[i], a)
                                                : layer_forward(te, &te->layers[i], a));
  return T3D_OK;
}

/* Uploads ids, mask, position ids and token types for a [B, L] batch. */
static t3d_status upload_inputs(t3d_text_encoder *te, activations *a, const int32_t *ids, const int32_t *mask,
                                int64_t B, int64_t L)
{
  int32_t *pos = te->host_ids, *type = te->host_ids + B * L;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < L; i++) {
      pos[b * L + i] = (int32_t)i;
      type[b * L + i] = 0;
    }
  T3D_TRY(t3d_backend_upload(te->be, &a->ids, &(t3d_tensor){.dtype = T3D_I32, .ndim = 2, .shape = {B, L}, .data = (void *)ids}));
  T3D_TRY(t3d_backend_upload(te->be, &a->mask, &(t3d_tensor){.dtype = T3D_I32, .ndim = 2, .shape = {B, L}, .data = (void *)mask}));
  T3D_TRY(t3d_backend_upload(te->be, &a->pos, &(t3d_tensor){.dtype = T3D_I32, .ndim = 2, .shape = {B, L}, .data = pos}));
  return t3d_backend_upload(te->be, &a->type, &(t3d_tensor){.dtype = T3D_I32, .ndim = 2, .shape = {B, L}, .data = type});
}

/* Downloads row 0 of each sequence of a->h into cls [B, H] (host); stride: rows between them. */
static t3d_status download_cls(t3d_text_encoder *te, const activations *a, int64_t B, int64_t stride, float *cls)
{
  const int64_t H = te->cfg.hidden;
  for (int64_t b = 0; b < B; b++) {
    t3d_tensor row = t3d_tensor_view(T3D_F32, 1, &H, (float *)a->h.data + b * stride * H);
    t3d_tensor dst = t3d_tensor_view(T3D_F32, 1, &H, cls + b * H);
    T3D_TRY(t3d_backend_download(te->be, &dst, &row));
  }
  return T3D_OK;
}

static t3d_status check_batch(const t3d_text_encoder *te, int64_t batch, int64_t len)
{
  if (batch < 1 || batch > 65536)
    return t3d_error(T3D_ERR_INVALID_ARG, "text encoder: batch %lld outside 1..65536", (long long)batch);
  if (len < 1 || len > te->max_tokens)
    return t3d_error(T3D_ERR_INVALID_ARG, "text encoder: sequence length %lld outside 1..%d", (long long)len,
                     te->max_tokens);
  return T3D_OK;
}

t3d_status t3d_text_encoder_forward(t3d_text_encoder *te, const int32_t *ids, const int32_t *mask, int64_t batch,
                                    int64_t len, float *hidden, float *cls)
{
  activations a;
  if (!te || !ids || !mask)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_text_encoder_forward: NULL argument");
  T3D_TRY(check_batch(te, batch, len));
  T3D_TRY(prepare(te, batch, len, &a));
  T3D_TRY(upload_inputs(te, &a, ids, mask, batch, len));
  const bool cls_only = !hidden && te->cfg.layers > 0;
  T3D_TRY(bert_forward(te, &a, cls_only));
  if (hidden) {
    t3d_tensor dst = t3d_tensor_view(T3D_F32, 3, a.h.shape, hidden);
    T3D_TRY(t3d_backend_download(te->be, &dst, &a.h));
  }
  return cls ? download_cls(te, &a, batch, cls_only ? 1 : len, cls) : T3D_OK;
}

/* out[n, D] = normalize(proj2(relu(proj0(x)))) for x = a->cls (backend, [n, H]). */
static t3d_status project_rows(t3d_text_encoder *te, activations *a, int64_t n, float *out)
{
  t3d_tensor dst = t3d_tensor_view(T3D_F32, 2, (int64_t[]){n, te->dim}, out);
  T3D_TRY(t3d_op_linear(te->be, &a->proj_h, &a->cls, &te->proj0.w, &te->proj0.b));
  T3D_TRY(t3d_op_relu(te->be, &a->proj_h, &a->proj_h));
  T3D_TRY(t3d_op_linear(te->be, &a->proj_y, &a->proj_h, &te->proj2.w, &te->proj2.b));
  T3D_TRY(t3d_backend_download(te->be, &dst, &a->proj_y));
  for (int64_t r = 0; r < n; r++) {
    float *row = out + r * te->dim;
    double ss = 0;
    for (int j = 0; j < te->dim; j++)
      ss += (double)row[j] * row[j];
    const double norm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12; /* F.normalize: x / max(||x||, eps) */
    for (int j = 0; j < te->dim; j++)
      row[j] = (float)(row[j] / norm);
  }
  return T3D_OK;
}

t3d_status t3d_text_encoder_project(t3d_text_encoder *te, const float *cls, int64_t n, float *out)
{
  activations a;
  if (!te || !cls || !out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_text_encoder_project: NULL argument");
  for (int64_t done = 0; done < n; done += T3D_TEXT_BATCH) {
    const int64_t b = n - done < T3D_TEXT_BATCH ? n - done : T3D_TEXT_BATCH;
    T3D_TRY(prepare(te, b, 1, &a));
    T3D_TRY(t3d_backend_upload(te->be, &a.cls,
                           &(t3d_tensor){.dtype = T3D_F32, .ndim = 2, .shape = {b, te->cfg.hidden},
                                         .data = (void *)(cls + done * te->cfg.hidden)}));
    T3D_TRY(project_rows(te, &a, b, out + done * te->dim));
  }
  return T3D_OK;
}

t3d_status t3d_text_encoder_tokenize(const t3d_text_encoder *te, const char *text, int32_t *ids, size_t capacity,
                                     size_t *len)
{
  if (!te || !text || !ids || !len)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_text_encoder_tokenize: NULL argument");
  return t3d_tokenizer_encode(te->tok, text, strlen(text), 0, ids, NULL, capacity, len, NULL);
}

t3d_status t3d_text_encoder_embed(t3d_text_encoder *te, const char *const *texts, size_t n, float *out)
{
  const int64_t T = te ? te->max_tokens : 0;
  int32_t *ids = NULL, *mask = NULL;
  size_t *lens = NULL;
  float *cls = NULL;
  t3d_status s = T3D_OK;

  if (n == 0)
    return T3D_OK;
  if (!te || !texts || !out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_text_encoder_embed: NULL argument");
  ids = malloc((size_t)(T3D_TEXT_BATCH * T) * sizeof *ids);
  mask = malloc((size_t)(T3D_TEXT_BATCH * T) * sizeof *mask);
  lens = malloc(T3D_TEXT_BATCH * sizeof *lens);
  cls = malloc((size_t)(T3D_TEXT_BATCH * te->cfg.hidden) * sizeof *cls);
  if (!ids || !mask || !lens || !cls) {
    s = t3d_error(T3D_ERR_NOMEM, "text encoder: out of memory");
    goto cleanup;
  }
  for (size_t done = 0; done < n; done += T3D_TEXT_BATCH) {
    const int64_t B = n - done < T3D_TEXT_BATCH ? (int64_t)(n - done) : T3D_TEXT_BATCH;
    int64_t L = 1;
    /* tokenize at stride T, then pack to the longest length L with [PAD] and mask 0 */
    for (int64_t b = 0; b < B; b++) {
      if (!texts[done + b]) {
        s = t3d_error(T3D_ERR_INVALID_ARG, "t3d_text_encoder_embed: text %zu is NULL", done + (size_t)b);
        goto cleanup;
      }
      if ((s = t3d_text_encoder_tokenize(te, texts[done + b], ids + b * T, (size_t)T, &lens[b])) != T3D_OK)
        goto cleanup;
      if ((int64_t)lens[b] > L)
        L = (int64_t)lens[b];
    }
    for (int64_t b = 0; b < B; b++) {
      memmove(ids + b * L, ids + b * T, lens[b] * sizeof *ids); /* rows move left: b * L <= b * T */
      for (int64_t i = 0; i < L; i++) {
        mask[b * L + i] = i < (int64_t)lens[b];
        if (i >= (int64_t)lens[b])
          ids[b * L + i] = t3d_tokenizer_pad_id(te->tok);
      }
    }
    if ((s = t3d_text_encoder_forward(te, ids, mask, B, L, NULL, cls)) != T3D_OK ||
        (s = t3d_text_encoder_project(te, cls, B, out + done * (size_t)te->dim)) != T3D_OK)
      goto cleanup;
  }
cleanup:
  free(ids);
  free(mask);
  free(lens);
  free(cls);
  return s;
}

/* ---- zero-shot ------------------------------------------------------------------------------ */

float t3d_logit_scale_from_param(float logit_scale_param)
{
  if (isnan(logit_scale_param))
    return T3D_LOGIT_SCALE_MAX;
  const float s = expf(logit_scale_param);
  return s < T3D_LOGIT_SCALE_MAX ? s : T3D_LOGIT_SCALE_MAX;
}

double t3d_logistic(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

t3d_status t3d_zero_shot_score(const float *image, const float *pos, const float *neg, size_t nfind, int dim,
                               float scale, float *prob)
{
  if (nfind == 0)
    return T3D_OK;
  if (!image || !pos || !neg || !prob)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_zero_shot_score: NULL argument");
  if (dim < 1 || !isfinite(scale))
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_zero_shot_score: dim %d must be >= 1 and scale %g finite", dim,
                     (double)scale);
  for (size_t i = 0; i < nfind; i++) {
    double dp = 0, dn = 0;
    for (int j = 0; j < dim; j++) {
      dp += (double)image[j] * pos[i * (size_t)dim + j];
      dn += (double)image[j] * neg[i * (size_t)dim + j];
    }
    prob[i] = (float)t3d_logistic((double)scale * (dp - dn)); /* softmax over (scale*dp, scale*dn), first entry */
  }
  return T3D_OK;
}
