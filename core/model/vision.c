/* The 3-D ResNet encoder and the segmentation decoder on a t3d backend (see vision.h): weight
 * loading with BatchNorm folding, the arena planner and the forward passes.
 * Not preprocessing, projections or zero-shot scoring (core/model/model.c), and no kernels here. */
#include "core/model/vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/arena.h"
#include "core/base/log.h"

#define BN_EPS 1e-5f
#define MAX_LIVE 64

/* ---- weights ------------------------------------------------------------------------------ */

typedef struct {
  t3d_tensor w, b; /* backend tensors; b always present after folding */
  int k, stride, pad;
  bool tolerant; /* t3d_conv3d_params.tolerant: the segmentation decoder's convolutions */
} conv_w;

typedef struct {
  conv_w c1, c2, c3, ds;
  bool has_ds;
} block_w;

typedef struct {
  t3d_tensor upw, upb;
  conv_w conv;
} dec_w;

struct t3d_vision {
  t3d_backend *be;
  t3d_model_config cfg;
  conv_w stem;
  block_w *blocks[T3D_RESNET_STAGES];
  int nblocks[T3D_RESNET_STAGES];
  bool has_dec;
  dec_w dec[T3D_SEG_BLOCKS];
  conv_w head;
  int c4;
};

/* Owned host f32 copy of a required tensor (any float dtype in the file). */
static t3d_status host_f32(const t3d_modelfile *mf, const char *name, int ndim, const int64_t *shape,
                           t3d_tensor **out)
{
  const t3d_tensor *view = NULL;
  *out = NULL;
  T3D_TRY(t3d_modelfile_require(mf, name, T3D_MODELFILE_ANY_FLOAT, ndim, shape, &view));
  T3D_TRY(t3d_tensor_new(out, T3D_F32, ndim, shape));
  t3d_convert_to_f32((*out)->data, view->data, view->dtype, (size_t)t3d_tensor_numel(view));
  t3d_modelfile_release_pages(mf, view);
  return T3D_OK;
}

static t3d_status upload_new(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host)
{
  T3D_TRY(t3d_backend_tensor_new(be, dev, T3D_F32, host->ndim, host->shape));
  return t3d_backend_upload(be, dev, host);
}

/* Loads conv "<prefix>.weight" [cout, cin, k, k, k] (+ optional "<prefix>.bias" when bias_name
 * is given and present) and folds BatchNorm "<bn>.*" into it. */
static t3d_status load_conv_bn(t3d_vision *v, const t3d_modelfile *mf, conv_w *cw, const char *wname,
                               const char *bias_name, const char *bn, int64_t cout, int64_t cin, int k, int stride,
                               int pad)
{
  t3d_tensor *w = NULL, *b = NULL, *p[4] = {NULL, NULL, NULL, NULL};
  static const char *const bn_keys[4] = {"weight", "bias", "running_mean", "running_var"};
  int64_t wshape[5] = {cout, cin, k, k, k};
  char name[160];
  t3d_status s;

  cw->k = k;
  cw->tolerant = false;
  cw->stride = stride;
  cw->pad = pad;
  if ((s = host_f32(mf, wname, 5, wshape, &w)) != T3D_OK) goto cleanup;
  if (bias_name && t3d_modelfile_get(mf, bias_name))
    if ((s = host_f32(mf, bias_name, 1, &cout, &b)) != T3D_OK) goto cleanup;
  if (bn) {
    for (int i = 0; i < 4; i++) {
      snprintf(name, sizeof name, "%s.%s", bn, bn_keys[i]);
      if ((s = host_f32(mf, name, 1, &cout, &p[i])) != T3D_OK) goto cleanup;
    }
    if ((s = t3d_fold_batchnorm(w, &b, p[0], p[1], p[2], p[3], BN_EPS)) != T3D_OK) {
      t3d_error_prefix("%s: ", wname);
      goto cleanup;
    }
  }
  if (!b && (s = t3d_tensor_new(&b, T3D_F32, 1, &cout)) != T3D_OK) goto cleanup;
  if ((s = t3d_backend_weight_upload(v->be, &cw->w, w, T3D_OP_CONV3D)) != T3D_OK) goto cleanup;
  s = upload_new(v->be, &cw->b, b);
cleanup:
  t3d_tensor_free(w);
  t3d_tensor_free(b);
  for (int i = 0; i < 4; i++) t3d_tensor_free(p[i]);
  return s;
}

static void free_conv(t3d_backend *be, conv_w *c)
{
  t3d_backend_tensor_free(be, &c->w);
  t3d_backend_tensor_free(be, &c->b);
}

void t3d_vision_free(t3d_vision *v)
{
  if (!v) return;
  free_conv(v->be, &v->stem);
  for (int s = 0; s < T3D_RESNET_STAGES; s++) {
    for (int b = 0; v->blocks[s] && b < v->nblocks[s]; b++) {
      block_w *bw = &v->blocks[s][b];
      free_conv(v->be, &bw->c1);
      free_conv(v->be, &bw->c2);
      free_conv(v->be, &bw->c3);
      free_conv(v->be, &bw->ds);
    }
    free(v->blocks[s]);
  }
  for (int i = 0; i < T3D_SEG_BLOCKS; i++) {
    t3d_backend_tensor_free(v->be, &v->dec[i].upw);
    t3d_backend_tensor_free(v->be, &v->dec[i].upb);
    free_conv(v->be, &v->dec[i].conv);
  }
  free_conv(v->be, &v->head);
  free(v);
}

/* A tensor as it is; weights of `op` (T3D_OP_COUNT: not a weight) in the backend's precision. */
static t3d_status load_plain(t3d_vision *v, const t3d_modelfile *mf, t3d_tensor *dev, const char *name, int ndim,
                             const int64_t *shape, t3d_op op)
{
  t3d_tensor *h = NULL;
  t3d_status s = host_f32(mf, name, ndim, shape, &h);
  if (s == T3D_OK) s = op == T3D_OP_COUNT ? upload_new(v->be, dev, h) : t3d_backend_weight_upload(v->be, dev, h, op);
  t3d_tensor_free(h);
  return s;
}

t3d_status t3d_vision_load(t3d_vision **out, t3d_backend *be, const t3d_modelfile *mf, const t3d_model_config *cfg)
{
  t3d_vision *v;
  t3d_status s = T3D_OK;
  char wn[160], bn[160], bias[160];
  const t3d_vision_config *vc;

  if (!out || !be || !mf || !cfg) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_load: NULL argument");
  *out = NULL;
  vc = &cfg->vision;
  if (vc->in_channels < 1 || vc->conv1_kernel < 1 || (vc->conv1_kernel & 1) == 0)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_load: config %s has an invalid stem (kernel %d, %d channels)",
                     cfg->name, vc->conv1_kernel, vc->in_channels);
  v = calloc(1, sizeof *v);
  if (!v) return t3d_error(T3D_ERR_NOMEM, "t3d_vision_load: out of memory");
  v->be = be;
  v->cfg = *cfg;
  v->c4 = t3d_model_config_vision_features(cfg);

  s = load_conv_bn(v, mf, &v->stem, "vision.conv1.weight", NULL, "vision.bn1", vc->widths[0], vc->in_channels,
                   vc->conv1_kernel, vc->conv1_stride, vc->conv1_kernel / 2);
  int64_t in = vc->widths[0];
  for (int st = 0; s == T3D_OK && st < T3D_RESNET_STAGES; st++) {
    int64_t planes = vc->widths[st], outc = planes * (vc->block == T3D_BLOCK_BOTTLENECK ? 4 : 1);
    v->nblocks[st] = vc->layers[st];
    v->blocks[st] = calloc((size_t)vc->layers[st], sizeof(block_w));
    if (!v->blocks[st]) {
      s = t3d_error(T3D_ERR_NOMEM, "t3d_vision_load: out of memory");
      break;
    }
    for (int b = 0; s == T3D_OK && b < vc->layers[st]; b++) {
      block_w *bw = &v->blocks[st][b];
      int stride = (b == 0 && st > 0) ? 2 : 1;
#define NAMES(conv, norm)                                                                                              \
  snprintf(wn, sizeof wn, "vision.layer%d.%d.%s.weight", st + 1, b, conv);                                             \
  snprintf(bn, sizeof bn, "vision.layer%d.%d.%s", st + 1, b, norm)
      if (vc->block == T3D_BLOCK_BOTTLENECK) {
        NAMES("conv1", "bn1");
        s = load_conv_bn(v, mf, &bw->c1, wn, NULL, bn, planes, in, 1, 1, 0);
        NAMES("conv2", "bn2");
        if (s == T3D_OK) s = load_conv_bn(v, mf, &bw->c2, wn, NULL, bn, planes, planes, 3, stride, 1);
        NAMES("conv3", "bn3");
        if (s == T3D_OK) s = load_conv_bn(v, mf, &bw->c3, wn, NULL, bn, outc, planes, 1, 1, 0);
      } else {
        NAMES("conv1", "bn1");
        s = load_conv_bn(v, mf, &bw->c1, wn, NULL, bn, planes, in, 3, stride, 1);
        NAMES("conv2", "bn2");
        if (s == T3D_OK) s = load_conv_bn(v, mf, &bw->c2, wn, NULL, bn, outc, planes, 3, 1, 1);
      }
      if (s == T3D_OK && b == 0 && (stride != 1 || in != outc)) {
        bw->has_ds = true;
        NAMES("downsample.0", "downsample.1");
        snprintf(bias, sizeof bias, "vision.layer%d.%d.downsample.0.bias", st + 1, b);
        s = load_conv_bn(v, mf, &bw->ds, wn, bias, bn, outc, in, 1, stride, 0);
      }
#undef NAMES
      in = outc;
    }
  }
  if (s == T3D_OK && cfg->has_segmentation) {
    const int *d = cfg->segmentation.decoder_widths;
    int64_t skips[T3D_SEG_BLOCKS] = {t3d_model_config_stage_channels(cfg, 2), t3d_model_config_stage_channels(cfg, 1),
                                     t3d_model_config_stage_channels(cfg, 0), vc->widths[0], vc->in_channels};
    int64_t cin = v->c4;
    v->has_dec = true;
    for (int i = 0; s == T3D_OK && i < T3D_SEG_BLOCKS; i++) {
      int64_t o = d[i];
      snprintf(wn, sizeof wn, "seg.blocks.%d.up.weight", i);
      s = load_plain(v, mf, &v->dec[i].upw, wn, 5, (int64_t[]){cin, o, 2, 2, 2}, T3D_OP_CONV3D_TRANSPOSE);
      snprintf(wn, sizeof wn, "seg.blocks.%d.up.bias", i);
      if (s == T3D_OK) s = load_plain(v, mf, &v->dec[i].upb, wn, 1, &o, T3D_OP_COUNT);
      snprintf(wn, sizeof wn, "seg.blocks.%d.conv.weight", i);
      snprintf(bn, sizeof bn, "seg.blocks.%d.bn", i);
      if (s == T3D_OK) s = load_conv_bn(v, mf, &v->dec[i].conv, wn, NULL, bn, o, o + skips[i], 3, 1, 1);
      v->dec[i].conv.tolerant = true; /* labels only: bf16 may take Winograd (conv_bf16.c) */
      cin = o;
    }
    if (s == T3D_OK)
      s = load_conv_bn(v, mf, &v->head, "seg.head.weight", NULL, NULL, cfg->segmentation.classes, cin, 1, 1, 0);
    if (s == T3D_OK) {
      int64_t c = cfg->segmentation.classes;
      t3d_tensor *hb = NULL;
      s = host_f32(mf, "seg.head.bias", 1, &c, &hb);
      if (s == T3D_OK) s = t3d_backend_upload(be, &v->head.b, hb);
      t3d_tensor_free(hb);
    }
  }
  if (s != T3D_OK) {
    t3d_vision_free(v);
    return s;
  }
  *out = v;
  return T3D_OK;
}

int t3d_vision_features(const t3d_vision *v) { return v ? v->c4 : 0; }
bool t3d_vision_has_decoder(const t3d_vision *v) { return v && v->has_dec; }
int t3d_vision_classes(const t3d_vision *v) { return v && v->has_dec ? v->cfg.segmentation.classes : 0; }

/* ---- arena planner ------------------------------------------------------------------------
 * First-fit over one address range. The forward is run twice with the same sequence of
 * allocations and releases: once planning (no ops, base address fake) to find the peak, then
 * for real inside one backend buffer of that size, where the offsets come out identical. */

typedef struct {
  size_t off, size;
} span;

struct t3d_vision_run {
  t3d_vision *v;
  int64_t shape[5];
  bool segment, planning, encoded;
  span live[MAX_LIVE];
  int nlive;
  size_t peak;
  uintptr_t base;
  void *mem; /* backend buffer (NULL while planning) */
  size_t bytes;
  t3d_tensor feat[6]; /* pyramid: input, stem, layer1..4 (data NULL when not kept) */
  double flops_enc, flops_dec, flops_done, flops_total;
  const t3d_vision_hooks *hooks;
  const char *stage;
};

static t3d_status arena_take(t3d_vision_run *r, size_t bytes, size_t *off)
{
  size_t at = 0;
  int i;
  bytes = t3d_arena_round(bytes);
  for (i = 0; i < r->nlive; i++) {
    if (r->live[i].off >= at + bytes) break;
    at = r->live[i].off + r->live[i].size;
  }
  if (r->nlive == MAX_LIVE) return t3d_error(T3D_ERR_INTERNAL, "vision arena: more than %d live buffers", MAX_LIVE);
  if (!r->planning && at + bytes > r->bytes)
    return t3d_error(T3D_ERR_INTERNAL, "vision arena: replay exceeds the planned %zu bytes", r->bytes);
  memmove(&r->live[i + 1], &r->live[i], (size_t)(r->nlive - i) * sizeof(span));
  r->live[i] = (span){at, bytes};
  r->nlive++;
  if (at + bytes > r->peak) r->peak = at + bytes;
  *off = at;
  return T3D_OK;
}

/* An activation [n, c, d, h, w] (dtype f32 or i32) in the arena. */
static t3d_status act(t3d_vision_run *r, t3d_tensor *t, t3d_dtype dt, int ndim, const int64_t *shape)
{
  size_t bytes, off = 0;
  if (!t3d_shape_nbytes(dt, ndim, shape, &bytes))
    return t3d_error(T3D_ERR_NOMEM, "vision arena: activation size overflows");
  T3D_TRY(arena_take(r, bytes, &off));
  *t = t3d_tensor_view(dt, ndim, shape, (void *)(r->base + off));
  return T3D_OK;
}

static void release(t3d_vision_run *r, t3d_tensor *t)
{
  if (!t->data) return;
  size_t off = (size_t)((uintptr_t)t->data - r->base);
  for (int i = 0; i < r->nlive; i++)
    if (r->live[i].off == off) {
      memmove(&r->live[i], &r->live[i + 1], (size_t)(r->nlive - i - 1) * sizeof(span));
      r->nlive--;
      break;
    }
  t->data = NULL;
}

static bool is_feature(const t3d_vision_run *r, const t3d_tensor *t)
{
  for (int i = 0; i < 6; i++)
    if (r->feat[i].data && r->feat[i].data == t->data) return true;
  return false;
}

static void release_unless_feature(t3d_vision_run *r, t3d_tensor *t)
{
  if (!is_feature(r, t)) release(r, t);
  t->data = NULL;
}

/* ---- forward helpers ---------------------------------------------------------------------- */

static t3d_status check_cancel(t3d_vision_run *r)
{
  const t3d_vision_hooks *h = r->hooks;
  if (!r->planning && h && h->cancel && *h->cancel)
    return t3d_error(T3D_ERR_CANCELLED, "vision forward cancelled during %s", r->stage ? r->stage : "setup");
  return T3D_OK;
}

static void report(t3d_vision_run *r)
{
  const t3d_vision_hooks *h = r->hooks;
  if (r->planning || !h || !h->progress || r->flops_total <= 0) return;
  double b = h->frac_begin, e = h->frac_end;
  if (b == 0 && e == 0) e = 1;
  double f = r->flops_done / r->flops_total;
  h->progress(h->user, b + (e - b) * (f > 1 ? 1 : f), r->stage);
}

static void count(t3d_vision_run *r, double flops)
{
  if (r->planning) {
    if (r->encoded)
      r->flops_dec += flops;
    else
      r->flops_enc += flops;
  } else
    r->flops_done += flops;
}

static void spatial_out(const t3d_tensor *x, int k, int stride, int pad, int64_t sp[3])
{
  for (int a = 0; a < 3; a++) sp[a] = t3d_conv_out_size(x->shape[2 + a], k, stride, pad);
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* T3D_LOG=debug: one line per op with its time and rate (profiling aid). */
static void log_op(const t3d_vision_run *r, const char *op, const t3d_tensor *y, double t0, double flops)
{
  char d[96];
  double ms = now_ms() - t0;
  T3D_DEBUG("vision %s: %s -> %s %.1f ms (%.1f GFLOP/s)", r->stage, op, t3d_tensor_describe(y, d, sizeof d), ms,
            ms > 0 ? flops / ms / 1e6 : 0.0);
}

/* y = relu?(conv(x) + b + residual), allocating y. Cancellation inside the convolution comes
 * from the backend's cancel pointer (set for the duration of a forward). */
static t3d_status conv(t3d_vision_run *r, t3d_tensor *y, const t3d_tensor *x, const conv_w *cw,
                       const t3d_tensor *res, bool relu)
{
  int64_t sp[3], co = cw->w.shape[0];
  spatial_out(x, cw->k, cw->stride, cw->pad, sp);
  if (sp[0] < 1 || sp[1] < 1 || sp[2] < 1)
    return t3d_error(T3D_ERR_SHAPE, "vision: input too small: %s reaches an empty grid (%lldx%lldx%lld)",
                     r->stage, (long long)x->shape[2], (long long)x->shape[3], (long long)x->shape[4]);
  T3D_TRY(act(r, y, T3D_F32, 5, (int64_t[]){x->shape[0], co, sp[0], sp[1], sp[2]}));
  double flops = 2.0 * (double)t3d_tensor_numel(y) * (double)x->shape[1] * cw->k * cw->k * cw->k;
  count(r, flops);
  if (r->planning) return T3D_OK;
  t3d_conv3d_params p = {{cw->stride, cw->stride, cw->stride}, {cw->pad, cw->pad, cw->pad}, relu, cw->tolerant};
  bool dbg = t3d_log_get_level() <= T3D_LOG_DEBUG;
  double t0 = dbg ? now_ms() : 0;
  t3d_status s = t3d_op_conv3d(r->v->be, y, x, &cw->w, &cw->b, res, &p);
  if (s == T3D_ERR_CANCELLED) return t3d_error(s, "vision forward cancelled during %s", r->stage);
  T3D_TRY(s);
  if (dbg) log_op(r, cw->k == 1 ? "conv1^3" : cw->k == 3 ? "conv3^3" : "conv", y, t0, flops);
  return T3D_OK;
}

static t3d_status block(t3d_vision_run *r, t3d_tensor *out, t3d_tensor *x, const block_w *bw, bool bottleneck)
{
  t3d_tensor t1 = {0}, t2 = {0}, ds = {0};
  const t3d_tensor *res = x;
  T3D_TRY(conv(r, &t1, x, &bw->c1, NULL, true));
  T3D_TRY(check_cancel(r));
  if (bottleneck) {
    T3D_TRY(conv(r, &t2, &t1, &bw->c2, NULL, true));
    release(r, &t1);
    T3D_TRY(check_cancel(r));
  } else {
    t2 = t1;
  }
  if (bw->has_ds) {
    T3D_TRY(conv(r, &ds, x, &bw->ds, NULL, false));
    release_unless_feature(r, x);
    res = &ds;
  }
  T3D_TRY(conv(r, out, &t2, bottleneck ? &bw->c3 : &bw->c2, res, true));
  release(r, &t2);
  if (bw->has_ds)
    release(r, &ds);
  else
    release_unless_feature(r, x);
  return check_cancel(r);
}

/* Progress is reported when a stage starts (named after it) and after each of its blocks. */
static const char *const layer_names[4] = {"encoder layer1", "encoder layer2", "encoder layer3", "encoder layer4"};
static const char *const dec_names[5] = {"decoder block 0", "decoder block 1", "decoder block 2", "decoder block 3",
                                         "decoder block 4"};

static t3d_status encode_pass(t3d_vision_run *r, const t3d_tensor *xh, float *pooled)
{
  t3d_vision *v = r->v;
  t3d_backend *be = v->be;
  t3d_tensor x = {0}, stem = {0}, cur = {0}, nxt = {0}, pool = {0};
  bool bott = v->cfg.vision.block == T3D_BLOCK_BOTTLENECK;

  r->nlive = 0;
  memset(r->feat, 0, sizeof r->feat);
  r->stage = "encoder stem";
  report(r);
  T3D_TRY(act(r, &x, T3D_F32, 5, r->shape));
  if (!r->planning) T3D_TRY(t3d_backend_upload(be, &x, xh));
  if (r->segment) r->feat[0] = x;
  T3D_TRY(conv(r, &stem, &x, &v->stem, NULL, true));
  if (!r->segment) release(r, &x);
  T3D_TRY(check_cancel(r));
  if (v->cfg.vision.maxpool) {
    int64_t sp[3];
    spatial_out(&stem, 3, 2, 1, sp);
    T3D_TRY(act(r, &cur, T3D_F32, 5, (int64_t[]){stem.shape[0], stem.shape[1], sp[0], sp[1], sp[2]}));
    t3d_pool3d_params pp = {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}};
    double t0 = now_ms();
    if (!r->planning) {
      T3D_TRY(t3d_op_maxpool3d(be, &cur, &stem, &pp));
      log_op(r, "maxpool", &cur, t0, 0);
    }
    if (r->segment)
      r->feat[1] = stem;
    else
      release(r, &stem);
  } else {
    cur = stem;
    if (r->segment) r->feat[1] = stem;
  }
  report(r);
  for (int st = 0; st < T3D_RESNET_STAGES; st++) {
    r->stage = layer_names[st];
    report(r);
    for (int b = 0; b < v->nblocks[st]; b++) {
      T3D_TRY(block(r, &nxt, &cur, &v->blocks[st][b], bott));
      cur = nxt;
      report(r);
    }
    if (r->segment) r->feat[2 + st] = cur;
  }
  r->stage = "encoder pool";
  T3D_TRY(act(r, &pool, T3D_F32, 2, (int64_t[]){cur.shape[0], cur.shape[1]}));
  if (!r->planning) {
    T3D_TRY(t3d_op_avgpool3d_global(be, &pool, &cur));
    if (pooled) {
      t3d_tensor ph = t3d_tensor_view(T3D_F32, 2, pool.shape, pooled);
      T3D_TRY(t3d_backend_download(be, &ph, &pool));
    }
  }
  release(r, &pool);
  if (!r->segment) release(r, &cur);
  r->encoded = true;
  return T3D_OK;
}

static t3d_status decode_pass(t3d_vision_run *r, float *logits, int32_t *labels)
{
  t3d_vision *v = r->v;
  t3d_backend *be = v->be;
  t3d_tensor d = r->feat[5], up = {0}, cat = {0}, out = {0}, lg = {0}, lab = {0};
  t3d_conv3d_transpose_params tp = {{2, 2, 2}, {0, 0, 0}, {0, 0, 0}};

  for (int i = 0; i < T3D_SEG_BLOCKS; i++) {
    t3d_tensor *skip = &r->feat[4 - i];
    int64_t o = v->dec[i].upw.shape[1], n = d.shape[0];
    r->stage = dec_names[i];
    report(r);
    for (int a = 0; a < 3; a++)
      if (skip->shape[2 + a] != 2 * d.shape[2 + a])
        return t3d_error(T3D_ERR_SHAPE,
                         "vision decoder: block %d upsamples %lldx%lldx%lld to twice that but the skip is %lldx%lldx%lld "
                         "(input sides must be multiples of the encoder stride)",
                         i, (long long)d.shape[2], (long long)d.shape[3], (long long)d.shape[4],
                         (long long)skip->shape[2], (long long)skip->shape[3], (long long)skip->shape[4]);
    /* One sample: the transposed convolution writes straight into the head of the concatenation
     * (channels 0..o-1 of cat are contiguous), so concat copies the skip only, and the upsampled
     * tensor (the decoder's largest but one) never exists on its own. */
    const int64_t upshape[5] = {n, o, skip->shape[2], skip->shape[3], skip->shape[4]};
    const int64_t catshape[5] = {n, o + skip->shape[1], skip->shape[2], skip->shape[3], skip->shape[4]};
    const bool in_place = n == 1;
    if (in_place) {
      T3D_TRY(act(r, &cat, T3D_F32, 5, catshape));
      up = t3d_tensor_view(T3D_F32, 5, upshape, cat.data);
    } else {
      T3D_TRY(act(r, &up, T3D_F32, 5, upshape));
    }
    count(r, 2.0 * (double)t3d_tensor_numel(&up) * (double)d.shape[1]);
    double t0 = now_ms();
    if (!r->planning) {
      T3D_TRY(t3d_op_conv3d_transpose(be, &up, &d, &v->dec[i].upw, &v->dec[i].upb, &tp));
      log_op(r, "convT2^3", &up, t0, 2.0 * (double)t3d_tensor_numel(&up) * (double)d.shape[1]);
    }
    release(r, &d);
    T3D_TRY(check_cancel(r));
    if (!in_place)
      T3D_TRY(act(r, &cat, T3D_F32, 5, catshape));
    t0 = now_ms();
    if (!r->planning) {
      T3D_TRY(t3d_op_concat(be, &cat, &up, skip));
      log_op(r, "concat", &cat, t0, 0);
    }
    if (in_place)
      up.data = NULL; /* a view of cat: nothing of its own to release */
    else
      release(r, &up);
    release(r, skip);
    T3D_TRY(conv(r, &out, &cat, &v->dec[i].conv, NULL, true));
    release(r, &cat);
    T3D_TRY(check_cancel(r));
    d = out;
    report(r);
  }
  r->stage = "segmentation head";
  report(r);
  T3D_TRY(conv(r, &lg, &d, &v->head, NULL, false));
  release(r, &d);
  if (!r->planning && logits) {
    t3d_tensor lh = t3d_tensor_view(T3D_F32, 5, lg.shape, logits);
    T3D_TRY(t3d_backend_download(be, &lh, &lg));
  }
  T3D_TRY(act(r, &lab, T3D_I32, 4, (int64_t[]){lg.shape[0], lg.shape[2], lg.shape[3], lg.shape[4]}));
  if (!r->planning) {
    T3D_TRY(t3d_op_argmax(be, &lab, &lg));
    if (labels) {
      t3d_tensor lh = t3d_tensor_view(T3D_I32, 4, lab.shape, labels);
      T3D_TRY(t3d_backend_download(be, &lh, &lab));
    }
  }
  release(r, &lg);
  release(r, &lab);
  report(r);
  return T3D_OK;
}

/* ---- runs --------------------------------------------------------------------------------- */

t3d_status t3d_vision_run_new(t3d_vision_run **out, t3d_vision *v, const int64_t shape[5], bool segment,
                              bool plan_only)
{
  t3d_vision_run *r;
  t3d_status s;
  if (!out || !v || !shape) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_run_new: NULL argument");
  *out = NULL;
  if (shape[0] < 1 || shape[1] != v->cfg.vision.in_channels || shape[2] < 1 || shape[3] < 1 || shape[4] < 1)
    return t3d_error(T3D_ERR_SHAPE, "vision: input must be [N>=1, %d, D, H, W], got [%lld,%lld,%lld,%lld,%lld]",
                     v->cfg.vision.in_channels, (long long)shape[0], (long long)shape[1], (long long)shape[2],
                     (long long)shape[3], (long long)shape[4]);
  if (segment && !v->has_dec)
    return t3d_error(T3D_ERR_UNSUPPORTED, "vision: model %s has no segmentation head", v->cfg.name);
  if (segment) {
    int stride = t3d_model_config_encoder_stride(&v->cfg);
    for (int a = 2; a < 5; a++)
      if (shape[a] % stride != 0)
        return t3d_error(T3D_ERR_SHAPE,
                         "vision: segmentation needs input sides that are multiples of %d (the encoder stride), got "
                         "%lldx%lldx%lld",
                         stride, (long long)shape[2], (long long)shape[3], (long long)shape[4]);
  }
  r = calloc(1, sizeof *r);
  if (!r) return t3d_error(T3D_ERR_NOMEM, "vision: out of memory");
  r->v = v;
  memcpy(r->shape, shape, sizeof r->shape);
  r->segment = segment;
  r->planning = true;
  r->base = 64; /* fake, never dereferenced while planning */
  s = encode_pass(r, NULL, NULL);
  if (s == T3D_OK && segment) s = decode_pass(r, NULL, NULL);
  if (s != T3D_OK) {
    free(r);
    return s;
  }
  r->bytes = r->peak;
  r->flops_total = r->flops_enc + r->flops_dec;
  r->planning = false;
  r->encoded = false;
  if (!plan_only) {
    s = v->be->ops->alloc(v->be, &r->mem, r->bytes);
    if (s != T3D_OK) {
      t3d_error_prefix("vision arena of %zu MiB for input %lldx%lldx%lld: ", r->bytes >> 20, (long long)shape[2],
                       (long long)shape[3], (long long)shape[4]);
      free(r);
      return s;
    }
    r->base = (uintptr_t)r->mem;
  }
  *out = r;
  return T3D_OK;
}

void t3d_vision_run_free(t3d_vision_run *r)
{
  if (!r) return;
  if (r->mem) r->v->be->ops->free(r->v->be, r->mem);
  free(r);
}

size_t t3d_vision_run_arena_bytes(const t3d_vision_run *r) { return r ? r->bytes : 0; }

double t3d_vision_run_flops(const t3d_vision_run *r, bool decoder)
{
  return r ? (decoder ? r->flops_dec : r->flops_enc) : 0;
}

t3d_status t3d_vision_encode(t3d_vision_run *r, const t3d_tensor *x, float *pooled, const t3d_vision_hooks *hooks)
{
  char d1[96];
  t3d_status s;
  if (!r || !x) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_encode: NULL argument");
  if (!r->mem) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_encode: run was created plan_only");
  if (x->dtype != T3D_F32 || x->ndim != 5 || memcmp(x->shape, r->shape, sizeof r->shape) != 0)
    return t3d_error(T3D_ERR_SHAPE, "t3d_vision_encode: input %s differs from the planned f32[%lld,%lld,%lld,%lld,%lld]",
                     t3d_tensor_describe(x, d1, sizeof d1), (long long)r->shape[0], (long long)r->shape[1],
                     (long long)r->shape[2], (long long)r->shape[3], (long long)r->shape[4]);
  r->hooks = hooks;
  r->encoded = false;
  r->flops_done = 0;
  r->flops_total = r->flops_enc;
  const volatile int *saved = r->v->be->cancel;
  if (hooks && hooks->cancel) r->v->be->cancel = hooks->cancel;
  s = encode_pass(r, x, pooled);
  r->v->be->cancel = saved;
  r->hooks = NULL;
  if (s != T3D_OK) r->encoded = false;
  return s;
}

const t3d_tensor *t3d_vision_run_feature(const t3d_vision_run *r, int level)
{
  if (!r || level < 0 || level > 5 || !r->encoded || !r->feat[level].data) return NULL;
  return &r->feat[level];
}

t3d_status t3d_vision_decode(t3d_vision_run *r, float *logits, int32_t *labels, const t3d_vision_hooks *hooks)
{
  t3d_status s;
  if (!r) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_decode: NULL run");
  if (!r->segment) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_decode: run was created without segmentation");
  if (!r->encoded) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_decode: call t3d_vision_encode first");
  r->hooks = hooks;
  r->flops_done = 0;
  r->flops_total = r->flops_dec;
  const volatile int *saved = r->v->be->cancel;
  if (hooks && hooks->cancel) r->v->be->cancel = hooks->cancel;
  s = decode_pass(r, logits, labels);
  r->v->be->cancel = saved;
  r->hooks = NULL;
  r->encoded = false; /* the pyramid was consumed */
  return s;
}

/* ---- projection head ---------------------------------------------------------------------- */

struct t3d_vision_projection {
  t3d_backend *be;
  t3d_tensor w0, b0, w2, b2;
  int in, hidden, dim;
};

void t3d_vision_projection_free(t3d_vision_projection *p)
{
  if (!p) return;
  t3d_backend_tensor_free(p->be, &p->w0);
  t3d_backend_tensor_free(p->be, &p->b0);
  t3d_backend_tensor_free(p->be, &p->w2);
  t3d_backend_tensor_free(p->be, &p->b2);
  free(p);
}

t3d_status t3d_vision_projection_load(t3d_vision_projection **out, t3d_backend *be, const t3d_modelfile *mf,
                                      const char *prefix, int in, int hidden, int dim)
{
  t3d_vision_projection *p;
  t3d_status s;
  char n[4][128];
  if (!out || !be || !mf || !prefix || in < 1 || hidden < 1 || dim < 1)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_projection_load: bad argument");
  *out = NULL;
  p = calloc(1, sizeof *p);
  if (!p) return t3d_error(T3D_ERR_NOMEM, "projection: out of memory");
  p->be = be;
  p->in = in;
  p->hidden = hidden;
  p->dim = dim;
  snprintf(n[0], sizeof n[0], "%s.0.weight", prefix);
  snprintf(n[1], sizeof n[1], "%s.0.bias", prefix);
  snprintf(n[2], sizeof n[2], "%s.2.weight", prefix);
  snprintf(n[3], sizeof n[3], "%s.2.bias", prefix);
  int64_t h = hidden, d = dim;
  t3d_vision v = {.be = be};
  /* fp32 at any precision (T3D_OP_COUNT): see the text projection in text.c */
  s = load_plain(&v, mf, &p->w0, n[0], 2, (int64_t[]){hidden, in}, T3D_OP_COUNT);
  if (s == T3D_OK) s = load_plain(&v, mf, &p->b0, n[1], 1, &h, T3D_OP_COUNT);
  if (s == T3D_OK) s = load_plain(&v, mf, &p->w2, n[2], 2, (int64_t[]){dim, hidden}, T3D_OP_COUNT);
  if (s == T3D_OK) s = load_plain(&v, mf, &p->b2, n[3], 1, &d, T3D_OP_COUNT);
  if (s != T3D_OK) {
    t3d_vision_projection_free(p);
    return s;
  }
  *out = p;
  return T3D_OK;
}

t3d_status t3d_vision_projection_apply(t3d_vision_projection *p, const float *x, int64_t n, float *out)
{
  t3d_tensor dx = {0}, dh = {0}, dy = {0};
  t3d_status s;
  if (!p || !x || !out || n < 1) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_vision_projection_apply: bad argument");
  int64_t sx[2] = {n, p->in}, sh[2] = {n, p->hidden}, sy[2] = {n, p->dim};
  t3d_tensor hx = t3d_tensor_view(T3D_F32, 2, sx, (void *)x), hy = t3d_tensor_view(T3D_F32, 2, sy, out);
  if ((s = t3d_backend_tensor_new(p->be, &dx, T3D_F32, 2, sx)) != T3D_OK) goto cleanup;
  if ((s = t3d_backend_tensor_new(p->be, &dh, T3D_F32, 2, sh)) != T3D_OK) goto cleanup;
  if ((s = t3d_backend_tensor_new(p->be, &dy, T3D_F32, 2, sy)) != T3D_OK) goto cleanup;
  if ((s = t3d_backend_upload(p->be, &dx, &hx)) != T3D_OK) goto cleanup;
  if ((s = t3d_op_linear(p->be, &dh, &dx, &p->w0, &p->b0)) != T3D_OK) goto cleanup;
  if ((s = t3d_op_relu(p->be, &dh, &dh)) != T3D_OK) goto cleanup;
  if ((s = t3d_op_linear(p->be, &dy, &dh, &p->w2, &p->b2)) != T3D_OK) goto cleanup;
  if ((s = t3d_backend_download(p->be, &hy, &dy)) != T3D_OK) goto cleanup;
  for (int64_t i = 0; i < n; i++) {
    float *row = out + i * p->dim;
    double ss = 0;
    for (int j = 0; j < p->dim; j++) ss += (double)row[j] * row[j];
    double nrm = sqrt(ss);
    if (nrm < 1e-12) nrm = 1e-12;
    for (int j = 0; j < p->dim; j++) row[j] = (float)(row[j] / nrm);
  }
cleanup:
  t3d_backend_tensor_free(p->be, &dx);
  t3d_backend_tensor_free(p->be, &dh);
  t3d_backend_tensor_free(p->be, &dy);
  return s;
}
