/* T3D model config: JSON <-> struct with path-naming validation, built-in configs, and the
 * tensor list (names, shapes, initialisers) a config implies. Not a model loader: see
 * modelfile.h for reading weights and t3d_modelfile_check_model for matching them to a config. */
#include "core/model/modelconfig.h"

#include "core/model/modeldefaults.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing helpers: each names the JSON path of what is wrong --------------------------- */

static const json_t *get_key(const json_t *obj, const char *path, const char *key, bool optional, t3d_status *st)
{
  const json_t *v = json_object_get(obj, key);
  if (!v && !optional)
    *st = t3d_error(T3D_ERR_FORMAT, "%s%s%s: missing", path, *path ? "." : "", key);
  return v;
}

static const json_t *get_object(const json_t *obj, const char *path, const char *key, bool optional, t3d_status *st)
{
  const json_t *v = get_key(obj, path, key, optional, st);
  if (v && !json_is_object(v)) {
    *st = t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be an object", path, *path ? "." : "", key);
    return NULL;
  }
  return v;
}

static bool int_in_range(const json_t *v, int lo, int hi, int *out)
{
  json_int_t i;
  if (!json_is_integer(v))
    return false;
  i = json_integer_value(v);
  if (i < lo || i > hi)
    return false;
  *out = (int)i;
  return true;
}

static void describe_json(const json_t *v, char *buf, size_t size)
{
  char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  snprintf(buf, size, "%s", s ? s : "nothing");
  if (strlen(buf) == size - 1 && size > 4)
    strcpy(buf + size - 4, "...");
  free(s);
}

static t3d_status get_int(const json_t *obj, const char *path, const char *key, int lo, int hi, int *out)
{
  t3d_status st = T3D_OK;
  const json_t *v = get_key(obj, path, key, false, &st);
  char got[48];
  if (!v)
    return st;
  if (int_in_range(v, lo, hi, out))
    return T3D_OK;
  describe_json(v, got, sizeof got);
  return t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be an integer %d..%d, got %s", path, *path ? "." : "", key, lo, hi, got);
}

static t3d_status get_number(const json_t *obj, const char *path, const char *key, bool optional, double lo, double hi,
                             double *out)
{
  t3d_status st = T3D_OK;
  const json_t *v = get_key(obj, path, key, optional, &st);
  char got[48];
  if (!v)
    return st;
  if (json_is_number(v) && json_number_value(v) >= lo && json_number_value(v) <= hi) {
    *out = json_number_value(v);
    return T3D_OK;
  }
  describe_json(v, got, sizeof got);
  return t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be a number %g..%g, got %s", path, *path ? "." : "", key, lo, hi, got);
}

static t3d_status get_bool(const json_t *obj, const char *path, const char *key, bool optional, bool *out)
{
  t3d_status st = T3D_OK;
  const json_t *v = get_key(obj, path, key, optional, &st);
  if (!v)
    return st;
  if (!json_is_boolean(v))
    return t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be true or false", path, *path ? "." : "", key);
  *out = json_is_true(v);
  return T3D_OK;
}

static t3d_status get_string(const json_t *obj, const char *path, const char *key, char *out, size_t size)
{
  t3d_status st = T3D_OK;
  const json_t *v = get_key(obj, path, key, false, &st);
  if (!v)
    return st;
  if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size)
    return t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be a string of 1..%zu bytes", path, *path ? "." : "", key, size - 1);
  memcpy(out, json_string_value(v), json_string_length(v) + 1);
  return T3D_OK;
}

static t3d_status expect_string(const json_t *obj, const char *path, const char *key, const char *want)
{
  t3d_status st = T3D_OK;
  const json_t *v = get_key(obj, path, key, false, &st);
  if (!v)
    return st;
  if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
    return t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be \"%s\" (the only architecture t3d implements)", path, *path ? "." : "", key,
                     want);
  return T3D_OK;
}

static t3d_status get_int_array(const json_t *obj, const char *path, const char *key, size_t n, int lo, int hi, int *out)
{
  t3d_status st = T3D_OK;
  const json_t *v = get_key(obj, path, key, false, &st);
  char got[48];
  if (!v)
    return st;
  if (!json_is_array(v) || json_array_size(v) != n)
    return t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be an array of %zu integers", path, *path ? "." : "", key, n);
  for (size_t i = 0; i < n; i++) {
    if (!int_in_range(json_array_get(v, i), lo, hi, &out[i])) {
      describe_json(json_array_get(v, i), got, sizeof got);
      return t3d_error(T3D_ERR_FORMAT, "%s%s%s[%zu]: must be an integer %d..%d, got %s", path, *path ? "." : "", key, i, lo, hi,
                       got);
    }
  }
  return T3D_OK;
}

static t3d_status get_number_array(const json_t *obj, const char *path, const char *key, size_t n, double lo,
                                   double hi, double *out)
{
  t3d_status st = T3D_OK;
  const json_t *v = get_key(obj, path, key, false, &st);
  char got[48];
  if (!v)
    return st;
  if (!json_is_array(v) || json_array_size(v) != n)
    return t3d_error(T3D_ERR_FORMAT, "%s%s%s: must be an array of %zu numbers", path, *path ? "." : "", key, n);
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(v, i);
    if (!json_is_number(e) || json_number_value(e) < lo || json_number_value(e) > hi) {
      describe_json(e, got, sizeof got);
      return t3d_error(T3D_ERR_FORMAT, "%s%s%s[%zu]: must be a number %g..%g, got %s", path, *path ? "." : "", key, i, lo, hi,
                       got);
    }
    out[i] = json_number_value(e);
  }
  return T3D_OK;
}

/* The optional "class_histogram_hu" of model.projection: B + 1 strictly increasing HU edges. */
static t3d_status parse_class_histogram(t3d_model_config *cfg, const json_t *proj)
{
  const char *p = "model.projection.class_histogram_hu";
  t3d_status st = T3D_OK;
  const json_t *v = get_key(proj, "model.projection", "class_histogram_hu", true, &st);
  if (!v) {
    if (st == T3D_OK && json_object_get(proj, "class_histogram_erosion"))
      return t3d_error(T3D_ERR_FORMAT, "model.projection.class_histogram_erosion: needs "
                                       "model.projection.class_histogram_hu (it erodes the classes of those histograms)");
    return st;
  }
  size_t n = json_is_array(v) ? json_array_size(v) : 0;
  if (n < 2 || n > T3D_CLASS_HIST_EDGES_MAX)
    return t3d_error(T3D_ERR_FORMAT, "%s: must be an array of 2..%d HU edges", p, T3D_CLASS_HIST_EDGES_MAX);
  T3D_TRY(get_number_array(proj, "model.projection", "class_histogram_hu", n, -1e5, 1e5, cfg->projection.class_hist_hu));
  for (size_t i = 1; i < n; i++)
    if (!(cfg->projection.class_hist_hu[i] > cfg->projection.class_hist_hu[i - 1]))
      return t3d_error(T3D_ERR_FORMAT, "%s[%zu]: must be above the edge before it (%g), got %g", p, i,
                       cfg->projection.class_hist_hu[i - 1], cfg->projection.class_hist_hu[i]);
  cfg->projection.class_hist_bins = (int)n - 1;
  if (!get_key(proj, "model.projection", "class_histogram_erosion", true, &st))
    return st;
  return get_int(proj, "model.projection", "class_histogram_erosion", 1, T3D_CLASS_HIST_EROSION_MAX,
                 &cfg->projection.class_hist_erosion);
}

/* Limits are generous sanity bounds, not architecture limits: they stop a typo (or a fuzzer)
 * from asking for terabytes before any tensor is checked. */
#define BIG 1000000

static t3d_status parse_vision(t3d_vision_config *v, const json_t *obj)
{
  const char *p = "model.vision";
  const json_t *block;
  t3d_status st = T3D_OK;
  T3D_TRY(expect_string(obj, p, "arch", "resnet"));
  block = get_key(obj, p, "block", false, &st);
  if (!block)
    return st;
  if (json_is_string(block) && strcmp(json_string_value(block), "basic") == 0)
    v->block = T3D_BLOCK_BASIC, v->expansion = 1;
  else if (json_is_string(block) && strcmp(json_string_value(block), "bottleneck") == 0)
    v->block = T3D_BLOCK_BOTTLENECK, v->expansion = 4;
  else
    return t3d_error(T3D_ERR_FORMAT, "model.vision.block: must be \"basic\" or \"bottleneck\"");
  T3D_TRY(get_int_array(obj, p, "layers", T3D_RESNET_STAGES, 1, 64, v->layers));
  T3D_TRY(get_int_array(obj, p, "widths", T3D_RESNET_STAGES, 1, 8192, v->widths));
  T3D_TRY(get_int(obj, p, "in_channels", 1, 16, &v->in_channels));
  T3D_TRY(get_int(obj, p, "conv1_kernel", 1, 11, &v->conv1_kernel));
  if (v->conv1_kernel % 2 == 0)
    return t3d_error(T3D_ERR_FORMAT, "model.vision.conv1_kernel: must be odd, got %d", v->conv1_kernel);
  T3D_TRY(get_int(obj, p, "conv1_stride", 1, 2, &v->conv1_stride));
  v->maxpool = true;
  T3D_TRY(get_bool(obj, p, "maxpool", true, &v->maxpool));
  v->downsample_bias = true;
  T3D_TRY(get_bool(obj, p, "downsample_bias", true, &v->downsample_bias));
  return T3D_OK;
}

static t3d_status parse_text(t3d_text_config *t, const json_t *obj)
{
  const char *p = "model.text";
  T3D_TRY(expect_string(obj, p, "arch", "bert"));
  T3D_TRY(get_int(obj, p, "vocab_size", 6, 10 * BIG, &t->vocab_size));
  T3D_TRY(get_int(obj, p, "hidden", 1, 16384, &t->hidden));
  T3D_TRY(get_int(obj, p, "layers", 1, 128, &t->layers));
  T3D_TRY(get_int(obj, p, "heads", 1, 256, &t->heads));
  T3D_TRY(get_int(obj, p, "intermediate", 1, 65536, &t->intermediate));
  T3D_TRY(get_int(obj, p, "max_positions", 2, 65536, &t->max_positions));
  T3D_TRY(get_int(obj, p, "type_vocab_size", 1, 16, &t->type_vocab_size));
  T3D_TRY(get_number(obj, p, "layer_norm_eps", false, 1e-30, 1.0, &t->layer_norm_eps));
  T3D_TRY(get_bool(obj, p, "lowercase", false, &t->lowercase));
  T3D_TRY(get_bool(obj, p, "strip_accents", false, &t->strip_accents));
  if (t->hidden % t->heads != 0)
    return t3d_error(T3D_ERR_FORMAT, "model.text: hidden (%d) must be a multiple of heads (%d)", t->hidden,
                     t->heads);
  return T3D_OK;
}

t3d_status t3d_model_config_parse(t3d_model_config *cfg, const json_t *root)
{
  const json_t *model, *obj;
  t3d_status st = T3D_OK;

  memset(cfg, 0, sizeof *cfg);
  if (!json_is_object(root))
    return t3d_error(T3D_ERR_FORMAT, "must be a JSON object with a \"model\" key");
  model = get_object(root, "", "model", false, &st);
  if (!model)
    return st;
  T3D_TRY(get_string(model, "model", "name", cfg->name, sizeof cfg->name));

  if (!(obj = get_object(model, "model", "vision", false, &st)))
    return st;
  T3D_TRY(parse_vision(&cfg->vision, obj));
  if (!(obj = get_object(model, "model", "text", false, &st)))
    return st;
  T3D_TRY(parse_text(&cfg->text, obj));
  if (!(obj = get_object(model, "model", "projection", false, &st)))
    return st;
  T3D_TRY(get_int(obj, "model.projection", "dim", 1, 65536, &cfg->projection.dim));
  T3D_TRY(get_int(obj, "model.projection", "hidden", 1, 65536, &cfg->projection.hidden));
  T3D_TRY(parse_class_histogram(cfg, obj));

  obj = get_object(model, "model", "segmentation", true, &st);
  if (st != T3D_OK)
    return st;
  if (obj) {
    cfg->has_segmentation = true;
    T3D_TRY(get_int(obj, "model.segmentation", "classes", 2, 1024, &cfg->segmentation.classes));
    T3D_TRY(get_int_array(obj, "model.segmentation", "decoder_widths", T3D_SEG_BLOCKS, 1, 8192,
                      cfg->segmentation.decoder_widths));
    if (cfg->vision.conv1_stride != 2 || !cfg->vision.maxpool)
      return t3d_error(T3D_ERR_FORMAT, "model.segmentation: the decoder needs model.vision.conv1_stride 2 and "
                                       "maxpool true (encoder stride 32)");
  } else if (cfg->projection.class_hist_bins) {
    return t3d_error(T3D_ERR_FORMAT, "model.projection.class_histogram_hu: needs model.segmentation (the "
                                     "histograms are taken inside the segmented classes)");
  }

  if (!(obj = get_object(model, "model", "preprocess", false, &st)))
    return st;
  T3D_TRY(get_number_array(obj, "model.preprocess", "spacing_mm", 3, 1e-3, 1e3, cfg->preprocess.spacing_mm));
  T3D_TRY(get_int_array(obj, "model.preprocess", "shape", 3, 1, 4096, cfg->preprocess.shape));
  T3D_TRY(get_number(obj, "model.preprocess", "hu_min", false, -1e5, 1e5, &cfg->preprocess.hu_min));
  T3D_TRY(get_number(obj, "model.preprocess", "hu_max", false, -1e5, 1e5, &cfg->preprocess.hu_max));
  T3D_TRY(get_number(obj, "model.preprocess", "pad_value", false, -1e5, 1e5, &cfg->preprocess.pad_value));
  if (!(cfg->preprocess.hu_min < cfg->preprocess.hu_max))
    return t3d_error(T3D_ERR_FORMAT, "model.preprocess: hu_min (%g) must be below hu_max (%g)",
                     cfg->preprocess.hu_min, cfg->preprocess.hu_max);
  {
    int stride = t3d_model_config_encoder_stride(cfg);
    static const char *const axis[3] = {"z", "y", "x"};
    for (int i = 0; i < 3; i++)
      if (cfg->preprocess.shape[i] % stride != 0)
        return t3d_error(T3D_ERR_FORMAT, "model.preprocess.shape[%d] (%s = %d): must be a multiple of the "
                                         "encoder stride %d", i, axis[i], cfg->preprocess.shape[i], stride);
  }

  cfg->logit_scale_init = log(1.0 / 0.07);
  T3D_TRY(get_number(model, "model", "logit_scale_init", true, -100.0, 100.0, &cfg->logit_scale_init));
  return T3D_OK;
}

t3d_status t3d_model_config_parse_text(t3d_model_config *cfg, const char *text, size_t len)
{
  json_error_t err;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  t3d_status st;
  if (!root)
    return t3d_error(T3D_ERR_FORMAT, "config is not valid JSON: %s at line %d, column %d", err.text, err.line,
                     err.column);
  st = t3d_model_config_parse(cfg, root);
  json_decref(root);
  return st;
}

/* ---- serialising ------------------------------------------------------------------------- */

static json_t *int_array(const int *v, size_t n)
{
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    json_array_append_new(a, json_integer(v[i]));
  return a;
}

t3d_status t3d_model_config_to_json(const t3d_model_config *c, json_t **out)
{
  json_t *root = NULL, *spacing = NULL;
  *out = NULL;
  spacing = json_array();
  for (int i = 0; spacing && i < 3; i++)
    json_array_append_new(spacing, json_real(c->preprocess.spacing_mm[i]));
  /* json_pack's "o" steals the references, so nothing leaks when it fails half-way. */
  root = json_pack(
      "{s:{s:s, s:{s:s, s:s, s:o, s:o, s:i, s:i, s:i, s:b, s:b}, "
      "s:{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:b, s:b}, s:{s:i, s:i}, "
      "s:{s:o, s:o, s:f, s:f, s:f}, s:f}}",
      "model", "name", c->name,
      "vision", "arch", "resnet", "block", c->vision.block == T3D_BLOCK_BOTTLENECK ? "bottleneck" : "basic",
      "layers", int_array(c->vision.layers, T3D_RESNET_STAGES), "widths", int_array(c->vision.widths, T3D_RESNET_STAGES),
      "in_channels", c->vision.in_channels, "conv1_kernel", c->vision.conv1_kernel, "conv1_stride",
      c->vision.conv1_stride, "maxpool", (int)c->vision.maxpool, "downsample_bias", (int)c->vision.downsample_bias,
      "text", "arch", "bert", "vocab_size", c->text.vocab_size, "hidden", c->text.hidden, "layers", c->text.layers,
      "heads", c->text.heads, "intermediate", c->text.intermediate, "max_positions", c->text.max_positions,
      "type_vocab_size", c->text.type_vocab_size, "layer_norm_eps", c->text.layer_norm_eps, "lowercase",
      (int)c->text.lowercase, "strip_accents", (int)c->text.strip_accents,
      "projection", "dim", c->projection.dim, "hidden", c->projection.hidden,
      "preprocess", "spacing_mm", spacing, "shape", int_array(c->preprocess.shape, 3), "hu_min", c->preprocess.hu_min,
      "hu_max", c->preprocess.hu_max, "pad_value", c->preprocess.pad_value,
      "logit_scale_init", c->logit_scale_init);
  if (root && c->has_segmentation) {
    json_t *seg = json_pack("{s:i, s:o}", "classes", c->segmentation.classes, "decoder_widths",
                            int_array(c->segmentation.decoder_widths, T3D_SEG_BLOCKS));
    if (!seg || json_object_set_new(json_object_get(root, "model"), "segmentation", seg) != 0) {
      json_decref(root);
      root = NULL;
    }
  }
  if (root && c->projection.class_hist_bins) {
    json_t *edges = json_array();
    for (int i = 0; edges && i <= c->projection.class_hist_bins; i++)
      json_array_append_new(edges, json_real(c->projection.class_hist_hu[i]));
    json_t *proj = json_object_get(json_object_get(root, "model"), "projection");
    if (!edges || json_object_set_new(proj, "class_histogram_hu", edges) != 0 ||
        (c->projection.class_hist_erosion &&
         json_object_set_new(proj, "class_histogram_erosion", json_integer(c->projection.class_hist_erosion)) != 0)) {
      json_decref(root);
      root = NULL;
    }
  }
  if (!root)
    return t3d_error(T3D_ERR_NOMEM, "out of memory serialising the model config");
  *out = root;
  return T3D_OK;
}

/* ---- built-in configs -------------------------------------------------------------------- */

static void common_preprocess(t3d_model_config *c)
{
  c->preprocess.hu_min = -1000.0;
  c->preprocess.hu_max = 1000.0;
  c->preprocess.pad_value = -1000.0;
  c->logit_scale_init = log(1.0 / 0.07);
}

static void config_tiny(t3d_model_config *c)
{
  static const t3d_vision_config v = {T3D_BLOCK_BASIC, 1, {1, 1, 1, 1}, {8, 16, 32, 64}, 1, 7, 2, true, true};
  snprintf(c->name, sizeof c->name, "t3d-tiny");
  c->vision = v;
  c->text = (t3d_text_config){(int)t3d_default_vocab_size(), 128, 2, 2, 512, 256, 2, 1e-12, true, true};
  c->projection.dim = 128;
  c->projection.hidden = 256;
  c->has_segmentation = true;
  c->segmentation.classes = 9;
  /* Trained on 2 CPU cores in well under an hour (train/recipes/t3d-tiny.sh): a 384 mm cube at
   * 6 mm holds a whole adult chest-abdomen cross-section (scanners' fields of view are 340-500
   * mm); the network is narrow (widths 8-64, decoder 32-6) because training time on a shared
   * 2-core machine, not accuracy on phantoms, is the binding limit. */
  memcpy(c->segmentation.decoder_widths, (int[]){32, 16, 8, 8, 6}, sizeof c->segmentation.decoder_widths);
  memcpy(c->preprocess.spacing_mm, (double[]){6.0, 6.0, 6.0}, sizeof c->preprocess.spacing_mm);
  memcpy(c->preprocess.shape, (int[]){64, 64, 64}, sizeof c->preprocess.shape);
  common_preprocess(c);
}

static void config_r50(t3d_model_config *c)
{
  static const t3d_vision_config v = {T3D_BLOCK_BOTTLENECK, 4, {3, 4, 6, 3}, {64, 128, 256, 512}, 1, 7, 2, true, true};
  snprintf(c->name, sizeof c->name, "t3d-r50");
  c->vision = v;
  c->text = (t3d_text_config){30522, 768, 12, 12, 3072, 512, 2, 1e-12, true, true};
  c->projection.dim = 512;
  c->projection.hidden = 2048;
  c->has_segmentation = true;
  c->segmentation.classes = 9;
  memcpy(c->segmentation.decoder_widths, (int[]){256, 128, 64, 32, 16}, sizeof c->segmentation.decoder_widths);
  memcpy(c->preprocess.spacing_mm, (double[]){1.5, 1.5, 2.0}, sizeof c->preprocess.spacing_mm);
  memcpy(c->preprocess.shape, (int[]){160, 224, 224}, sizeof c->preprocess.shape);
  common_preprocess(c);
}

static const char *const builtin_names[] = {"t3d-r50", "t3d-tiny", NULL};

const char *const *t3d_model_config_builtin_names(void) { return builtin_names; }

t3d_status t3d_model_config_builtin(t3d_model_config *out, const char *name)
{
  memset(out, 0, sizeof *out);
  if (name && strcmp(name, "t3d-tiny") == 0)
    config_tiny(out);
  else if (name && strcmp(name, "t3d-r50") == 0)
    config_r50(out);
  else
    return t3d_error(T3D_ERR_NOT_FOUND, "no built-in model config \"%s\" (known: t3d-tiny, t3d-r50)",
                     name ? name : "(null)");
  return T3D_OK;
}

/* ---- geometry ---------------------------------------------------------------------------- */

int t3d_model_config_stage_channels(const t3d_model_config *cfg, int stage)
{
  return cfg->vision.widths[stage] * cfg->vision.expansion;
}

int t3d_model_config_vision_features(const t3d_model_config *cfg)
{
  return t3d_model_config_stage_channels(cfg, T3D_RESNET_STAGES - 1);
}

int t3d_model_config_projection_inputs(const t3d_model_config *cfg)
{
  return t3d_model_config_vision_features(cfg) +
         (cfg->has_segmentation ? cfg->segmentation.classes * cfg->projection.class_hist_bins *
                                      (cfg->projection.class_hist_erosion ? 2 : 1)
                                : 0);
}

int t3d_model_config_encoder_stride(const t3d_model_config *cfg)
{
  /* conv1, optional max-pool, then layer2..layer4 each halve the grid */
  return cfg->vision.conv1_stride * (cfg->vision.maxpool ? 2 : 1) * 8;
}

/* ---- tensor list ------------------------------------------------------------------------- */

typedef struct {
  t3d_tensor_spec *v;
  size_t n, cap;
  bool failed;
} spec_list;

static t3d_tensor_spec *add(spec_list *l, t3d_init_kind init, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static t3d_tensor_spec *add(spec_list *l, t3d_init_kind init, int ndim, const int64_t *shape, const char *fmt, ...)
{
  t3d_tensor_spec *s;
  va_list ap;
  if (l->failed)
    return NULL;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    t3d_tensor_spec *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->failed = true;
      return NULL;
    }
    l->v = v;
    l->cap = cap;
  }
  s = &l->v[l->n++];
  memset(s, 0, sizeof *s);
  va_start(ap, fmt);
  vsnprintf(s->name, sizeof s->name, fmt, ap);
  va_end(ap);
  s->ndim = ndim;
  memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
  s->init = init;
  return s;
}

static void add_conv(spec_list *l, int64_t out, int64_t in, int64_t k, const char *fmt, const char *prefix, int a, int b)
{
  char name[96];
  t3d_tensor_spec *s;
  snprintf(name, sizeof name, fmt, prefix, a, b);
  s = add(l, T3D_INIT_HE_NORMAL, 5, (int64_t[]){out, in, k, k, k}, "%s", name);
  if (s) {
    s->fan_in = in * k * k * k;
    s->fan_out = out * k * k * k;
  }
}

static void add_bn(spec_list *l, int64_t c, const char *fmt, const char *prefix, int a, int b)
{
  char base[96];
  snprintf(base, sizeof base, fmt, prefix, a, b);
  add(l, T3D_INIT_ONES, 1, &c, "%s.weight", base);
  add(l, T3D_INIT_ZEROS, 1, &c, "%s.bias", base);
  add(l, T3D_INIT_ZEROS, 1, &c, "%s.running_mean", base);
  add(l, T3D_INIT_ONES, 1, &c, "%s.running_var", base);
}

static void add_linear(spec_list *l, t3d_init_kind init, int64_t out, int64_t in, const char *base)
{
  t3d_tensor_spec *s = add(l, init, 2, (int64_t[]){out, in}, "%s.weight", base);
  if (s) {
    s->fan_in = in;
    s->fan_out = out;
  }
  s = add(l, init == T3D_INIT_LINEAR ? T3D_INIT_LINEAR : T3D_INIT_ZEROS, 1, &out, "%s.bias", base);
  if (s) {
    s->fan_in = in;
    s->fan_out = out;
  }
}

static void add_layernorm(spec_list *l, int64_t c, const char *base)
{
  add(l, T3D_INIT_ONES, 1, &c, "%s.weight", base);
  add(l, T3D_INIT_ZEROS, 1, &c, "%s.bias", base);
}

static void add_vision(spec_list *l, const t3d_vision_config *v)
{
  int64_t in = v->widths[0];
  add_conv(l, v->widths[0], v->in_channels, v->conv1_kernel, "%sconv1.weight", "vision.", 0, 0);
  add_bn(l, v->widths[0], "%sbn1", "vision.", 0, 0);
  for (int s = 0; s < T3D_RESNET_STAGES; s++) {
    int64_t planes = v->widths[s], out = planes * v->expansion;
    for (int b = 0; b < v->layers[s]; b++) {
      int stride = (s > 0 && b == 0) ? 2 : 1;
      if (v->block == T3D_BLOCK_BASIC) {
        add_conv(l, planes, in, 3, "%slayer%d.%d.conv1.weight", "vision.", s + 1, b);
        add_bn(l, planes, "%slayer%d.%d.bn1", "vision.", s + 1, b);
        add_conv(l, planes, planes, 3, "%slayer%d.%d.conv2.weight", "vision.", s + 1, b);
        add_bn(l, planes, "%slayer%d.%d.bn2", "vision.", s + 1, b);
      } else {
        add_conv(l, planes, in, 1, "%slayer%d.%d.conv1.weight", "vision.", s + 1, b);
        add_bn(l, planes, "%slayer%d.%d.bn1", "vision.", s + 1, b);
        add_conv(l, planes, planes, 3, "%slayer%d.%d.conv2.weight", "vision.", s + 1, b);
        add_bn(l, planes, "%slayer%d.%d.bn2", "vision.", s + 1, b);
        add_conv(l, out, planes, 1, "%slayer%d.%d.conv3.weight", "vision.", s + 1, b);
        add_bn(l, out, "%slayer%d.%d.bn3", "vision.", s + 1, b);
      }
      if (b == 0 && (stride != 1 || in != out)) {
        add_conv(l, out, in, 1, "%slayer%d.%d.downsample.0.weight", "vision.", s + 1, b);
        if (v->downsample_bias)
          add(l, T3D_INIT_ZEROS, 1, &out, "vision.layer%d.%d.downsample.0.bias", s + 1, b);
        add_bn(l, out, "%slayer%d.%d.downsample.1", "vision.", s + 1, b);
      }
      in = out;
    }
  }
}

static void add_text(spec_list *l, const t3d_text_config *t)
{
  int64_t h = t->hidden, inter = t->intermediate;
  char base[96];
  add(l, T3D_INIT_NORMAL_002, 2, (int64_t[]){t->vocab_size, h}, "text.embeddings.word_embeddings.weight");
  add(l, T3D_INIT_NORMAL_002, 2, (int64_t[]){t->max_positions, h}, "text.embeddings.position_embeddings.weight");
  add(l, T3D_INIT_NORMAL_002, 2, (int64_t[]){t->type_vocab_size, h}, "text.embeddings.token_type_embeddings.weight");
  add_layernorm(l, h, "text.embeddings.LayerNorm");
  for (int i = 0; i < t->layers; i++) {
    static const char *const qkv[3] = {"query", "key", "value"};
    for (int j = 0; j < 3; j++) {
      snprintf(base, sizeof base, "text.encoder.layer.%d.attention.self.%s", i, qkv[j]);
      add_linear(l, T3D_INIT_NORMAL_002, h, h, base);
    }
    snprintf(base, sizeof base, "text.encoder.layer.%d.attention.output.dense", i);
    add_linear(l, T3D_INIT_NORMAL_002, h, h, base);
    snprintf(base, sizeof base, "text.encoder.layer.%d.attention.output.LayerNorm", i);
    add_layernorm(l, h, base);
    snprintf(base, sizeof base, "text.encoder.layer.%d.intermediate.dense", i);
    add_linear(l, T3D_INIT_NORMAL_002, inter, h, base);
    snprintf(base, sizeof base, "text.encoder.layer.%d.output.dense", i);
    add_linear(l, T3D_INIT_NORMAL_002, h, inter, base);
    snprintf(base, sizeof base, "text.encoder.layer.%d.output.LayerNorm", i);
    add_layernorm(l, h, base);
  }
}

static void add_segmentation(spec_list *l, const t3d_model_config *c)
{
  const int *d = c->segmentation.decoder_widths;
  int64_t skips[T3D_SEG_BLOCKS] = {
      t3d_model_config_stage_channels(c, 2), t3d_model_config_stage_channels(c, 1),
      t3d_model_config_stage_channels(c, 0), c->vision.widths[0], c->vision.in_channels};
  int64_t in = t3d_model_config_vision_features(c);
  for (int i = 0; i < T3D_SEG_BLOCKS; i++) {
    int64_t out = d[i];
    t3d_tensor_spec *s = add(l, T3D_INIT_HE_NORMAL, 5, (int64_t[]){in, out, 2, 2, 2}, "seg.blocks.%d.up.weight", i);
    if (s) {
      s->fan_in = in * 8;
      s->fan_out = out * 8;
    }
    add(l, T3D_INIT_ZEROS, 1, &out, "seg.blocks.%d.up.bias", i);
    add_conv(l, out, out + skips[i], 3, "%sblocks.%d.conv.weight", "seg.", i, 0);
    add_bn(l, out, "%sblocks.%d.bn", "seg.", i, 0);
    in = out;
  }
  add_linear(l, T3D_INIT_LINEAR, c->segmentation.classes, in, "seg.head");
  /* the head is a 1x1x1 Conv3d: reshape the Linear weight [C, in] to [C, in, 1, 1, 1] */
  if (!l->failed) {
    t3d_tensor_spec *w = &l->v[l->n - 2];
    w->ndim = 5;
    w->shape[2] = w->shape[3] = w->shape[4] = 1;
  }
}

t3d_status t3d_model_config_tensors(const t3d_model_config *cfg, t3d_tensor_spec **specs, size_t *count)
{
  spec_list l = {0};
  int64_t one = 1;
  *specs = NULL;
  *count = 0;
  add_vision(&l, &cfg->vision);
  add_text(&l, &cfg->text);
  add_linear(&l, T3D_INIT_LINEAR, cfg->projection.hidden, t3d_model_config_projection_inputs(cfg), "vision_proj.0");
  add_linear(&l, T3D_INIT_LINEAR, cfg->projection.dim, cfg->projection.hidden, "vision_proj.2");
  add_linear(&l, T3D_INIT_LINEAR, cfg->projection.hidden, cfg->text.hidden, "text_proj.0");
  add_linear(&l, T3D_INIT_LINEAR, cfg->projection.dim, cfg->projection.hidden, "text_proj.2");
  if (cfg->has_segmentation)
    add_segmentation(&l, cfg);
  add(&l, T3D_INIT_LOGIT_SCALE, 1, &one, "logit_scale");
  if (l.failed) {
    free(l.v);
    return t3d_error(T3D_ERR_NOMEM, "out of memory listing the tensors of model config \"%s\"", cfg->name);
  }
  *specs = l.v;
  *count = l.n;
  return T3D_OK;
}

int64_t t3d_model_config_param_count(const t3d_tensor_spec *specs, size_t count, const char *prefix)
{
  int64_t total = 0;
  size_t plen = prefix ? strlen(prefix) : 0;
  for (size_t i = 0; i < count; i++) {
    int64_t n = 1;
    if (plen && strncmp(specs[i].name, prefix, plen) != 0)
      continue;
    for (int d = 0; d < specs[i].ndim; d++)
      n *= specs[i].shape[d];
    total += n;
  }
  return total;
}

/* ---- initialisers ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, never exactly 0 so log() below is finite. */
static double uniform01(uint64_t *state) { return ((double)(splitmix64(state) >> 11) + 0.5) * 0x1.0p-53; }

void t3d_tensor_spec_init(const t3d_tensor_spec *spec, const t3d_model_config *cfg, uint64_t seed, float *dst)
{
  int64_t n = 1;
  uint64_t state = seed ^ 0x7433645F696E6974ull; /* "t3d_init" */
  double std = 0.0, bound = 0.0;
  for (int d = 0; d < spec->ndim; d++)
    n *= spec->shape[d];
  for (const char *p = spec->name; *p; p++) /* FNV-1a of the name: per-tensor stream */
    state = (state ^ (unsigned char)*p) * 0x100000001B3ull;

  switch (spec->init) {
  case T3D_INIT_ZEROS:
  case T3D_INIT_ONES:
  case T3D_INIT_LOGIT_SCALE: {
    float v = spec->init == T3D_INIT_ZEROS ? 0.0f : spec->init == T3D_INIT_ONES ? 1.0f : (float)cfg->logit_scale_init;
    for (int64_t i = 0; i < n; i++)
      dst[i] = v;
    return;
  }
  case T3D_INIT_HE_NORMAL:
    std = sqrt(2.0 / (double)(spec->fan_out > 0 ? spec->fan_out : 1));
    break;
  case T3D_INIT_NORMAL_002:
    std = 0.02;
    break;
  case T3D_INIT_LINEAR:
    bound = 1.0 / sqrt((double)(spec->fan_in > 0 ? spec->fan_in : 1));
    for (int64_t i = 0; i < n; i++)
      dst[i] = (float)((2.0 * uniform01(&state) - 1.0) * bound);
    return;
  }
  for (int64_t i = 0; i < n; i += 2) { /* Box-Muller, two normals per draw */
    double r = sqrt(-2.0 * log(uniform01(&state))), a = 2.0 * M_PI * uniform01(&state);
    dst[i] = (float)(std * r * cos(a));
    if (i + 1 < n)
      dst[i + 1] = (float)(std * r * sin(a));
  }
}
