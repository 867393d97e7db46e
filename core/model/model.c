/* t3d_model (see model.h): model file -> networks on a backend, and the analysis pipeline
 * preprocess -> encoder -> projection -> zero-shot, decoder -> labels on the series grid -> mL.
 * Not the networks themselves (vision.c, text.c) and not DICOM or file output. */
#include <config.h>

#include "core/model/model.h"

#include <libintl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/index/index.h"
#include "core/model/modelfile.h"

#include "core/model/text.h"

#define _(s) dgettext(GETTEXT_PACKAGE, s)

struct t3d_model {
  t3d_backend *be;
  t3d_model_config cfg;
  t3d_vision *vision;
  t3d_vision_projection *vproj;
  t3d_text_encoder *text;
  char text_missing[200]; /* why there is no text encoder */
  float logit_scale;
  size_t nfind;
  char **find_names;
  /* [nfind]: the file's calibration of each finding (Platt slope and intercept, held-out AUROC) */
  struct { int on, has_auroc; double slope, intercept, auroc; } *find_cal;
  float *prompt_emb; /* [2][nfind][dim]: positive prompts, then negative prompts */
  size_t nclasses;
  char **class_names;
  t3d_index_matrix *calib_ref; /* the training cases' reference vectors (exact cosine search), or NULL */
  double calib_threshold;
  int calib_pooled; /* the reference holds pooled encoder features ("space": "pooled"), not embeddings */
};

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void free_strings(char **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

void t3d_model_free(t3d_model *m)
{
  if (!m) return;
  t3d_vision_free(m->vision);
  t3d_vision_projection_free(m->vproj);
  t3d_text_encoder_free(m->text);
  free_strings(m->find_names, m->nfind);
  free(m->find_cal);
  free_strings(m->class_names, m->nclasses);
  free(m->prompt_emb);
  t3d_index_matrix_free(m->calib_ref);
  free(m);
}

/* The optional familiarity reference: tensor calib.reference [N, dim] and metadata t3d.calibration
 * {"threshold": T, "space": S, ...}; both or neither. S "embedding" (the default): the training
 * cases' embeddings; "pooled": their pooled encoder features, which keep how a scan looks (an
 * aligned embedding keeps mostly what a report says of it). */
static t3d_status load_calibration(t3d_model *m, const t3d_modelfile *mf)
{
  const char *path = t3d_modelfile_path(mf), *meta = t3d_modelfile_metadata(mf, "t3d.calibration");
  const t3d_tensor *ref = t3d_modelfile_get(mf, "calib.reference");
  if (!ref && !meta) return T3D_OK;
  if (!ref || !meta)
    return t3d_error(T3D_ERR_FORMAT, "%s: %s without %s: the familiarity reference is incomplete", path,
                     ref ? "tensor calib.reference" : "metadata t3d.calibration",
                     ref ? "metadata t3d.calibration" : "tensor calib.reference");
  json_error_t jerr;
  json_t *j = json_loads(meta, 0, &jerr);
  json_t *th = j ? json_object_get(j, "threshold") : NULL, *sp = j ? json_object_get(j, "space") : NULL;
  double t = json_is_number(th) ? json_number_value(th) : NAN;
  int space = !sp ? 0 : !json_is_string(sp) ? -1 : !strcmp(json_string_value(sp), "embedding") ? 0
              : !strcmp(json_string_value(sp), "pooled") ? 1 : -1;
  json_decref(j);
  if (!(t >= -1 && t <= 1))
    return t3d_error(T3D_ERR_FORMAT, "%s: t3d.calibration needs a \"threshold\" cosine in [-1, 1]", path);
  if (space < 0)
    return t3d_error(T3D_ERR_FORMAT, "%s: t3d.calibration \"space\" must be \"embedding\" or \"pooled\"", path);
  const int dim = space ? t3d_vision_features(m->vision) : m->cfg.projection.dim;
  if (ref->ndim != 2 || ref->shape[1] != dim || ref->shape[0] < 2 || ref->shape[0] > 1000000)
    return t3d_error(T3D_ERR_SHAPE, "%s: calib.reference must be [N >= 2, %d] (the %s size)", path, dim,
                     space ? "pooled feature" : "embedding");
  if (ref->dtype != T3D_F32 && ref->dtype != T3D_F16 && ref->dtype != T3D_BF16)
    return t3d_error(T3D_ERR_FORMAT, "%s: calib.reference is not a float tensor", path);
  size_t n = (size_t)ref->shape[0];
  float *rows = malloc(n * (size_t)dim * sizeof(float));
  if (!rows) return t3d_error(T3D_ERR_NOMEM, "model: out of memory for the familiarity reference");
  t3d_convert_to_f32(rows, ref->data, ref->dtype, n * (size_t)dim);
  /* the case index's search matrix: rows normalised (the check is a cosine whatever the writer
   * did), zero or non-finite rows refused, exact fp32 nearest-row search */
  t3d_status s = t3d_index_matrix_create(rows, NULL, NULL, n, dim, 0, &m->calib_ref);
  free(rows);
  if (s != T3D_OK) {
    char why[256];
    snprintf(why, sizeof why, "%s", t3d_error_detail());
    return t3d_error(T3D_ERR_FORMAT, "%s: calib.reference: %s", path, why);
  }
  m->calib_threshold = t;
  m->calib_pooled = space;
  return T3D_OK;
}

static t3d_status load_text(t3d_model *m, const t3d_modelfile *mf)
{
  size_t nf = 0;
  const t3d_finding *f = t3d_modelfile_findings(mf, &nf);
  t3d_status s;
  if (!t3d_modelfile_get(mf, "text.embeddings.word_embeddings.weight")) {
    snprintf(m->text_missing, sizeof m->text_missing, "%s has no text encoder weights",
             t3d_modelfile_path(mf));
    return T3D_OK;
  }
  if ((s = t3d_text_encoder_load(&m->text, m->be, mf, &m->cfg)) != T3D_OK) return s;
  if (nf == 0) return T3D_OK;
  const char **texts = malloc(2 * nf * sizeof *texts);
  m->prompt_emb = malloc(2 * nf * (size_t)m->cfg.projection.dim * sizeof(float));
  if (!texts || !m->prompt_emb) {
    free(texts);
    return t3d_error(T3D_ERR_NOMEM, "model: out of memory for prompt embeddings");
  }
  for (size_t i = 0; i < nf; i++) {
    texts[i] = f[i].positive; /* rows 0..nf-1: positives, nf..2nf-1: negatives */
    texts[nf + i] = f[i].negative;
  }
  s = t3d_text_encoder_embed(m->text, texts, 2 * nf, m->prompt_emb);
  free(texts);
  if (s != T3D_OK) t3d_error_prefix("embedding the findings' prompts: ");
  return s;
}

t3d_status t3d_model_load(const char *path, t3d_backend *be, t3d_model **out)
{
  t3d_modelfile *mf = NULL;
  t3d_model *m = NULL;
  const t3d_model_config *cfg;
  t3d_status s;
  size_t n = 0;

  if (!out || !path || !be) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_model_load: NULL argument");
  *out = NULL;
  if ((s = t3d_modelfile_open(&mf, path)) != T3D_OK) return s;
  cfg = t3d_modelfile_config(mf);
  if (!cfg) {
    s = t3d_error(T3D_ERR_FORMAT, "%s: no t3d.config: not a t3d model file (make one with t3d model-init or the "
                                  "converters in tools/)", path);
    goto cleanup;
  }
  m = calloc(1, sizeof *m);
  if (!m) {
    s = t3d_error(T3D_ERR_NOMEM, "model: out of memory");
    goto cleanup;
  }
  m->be = be;
  m->cfg = *cfg;
  if ((s = t3d_vision_load(&m->vision, be, mf, cfg)) != T3D_OK) goto cleanup;
  if ((s = t3d_vision_projection_load(&m->vproj, be, mf, "vision_proj", t3d_model_config_projection_inputs(cfg),
                                      cfg->projection.hidden, cfg->projection.dim)) != T3D_OK)
    goto cleanup;
  {
    const t3d_tensor *ls = NULL;
    int64_t one = 1;
    if ((s = t3d_modelfile_require(mf, "logit_scale", T3D_MODELFILE_ANY_FLOAT, 1, &one, &ls)) != T3D_OK) goto cleanup;
    float v;
    t3d_convert_to_f32(&v, ls->data, ls->dtype, 1);
    m->logit_scale = t3d_logit_scale_from_param(v); /* exp, clamped as CLIP does */
  }
  const char *const *classes = t3d_modelfile_classes(mf, &n);
  if (cfg->has_segmentation) {
    if (classes && n != (size_t)cfg->segmentation.classes) {
      s = t3d_error(T3D_ERR_FORMAT, "%s: t3d.classes has %zu names but the config has %d classes", path, n,
                    cfg->segmentation.classes);
      goto cleanup;
    }
    m->nclasses = (size_t)cfg->segmentation.classes;
    m->class_names = calloc(m->nclasses, sizeof(char *));
    if (!m->class_names) {
      s = t3d_error(T3D_ERR_NOMEM, "model: out of memory");
      goto cleanup;
    }
    for (size_t i = 0; i < m->nclasses; i++) {
      char buf[32];
      snprintf(buf, sizeof buf, "class %zu", i);
      if (!(m->class_names[i] = strdup(classes ? classes[i] : buf))) {
        s = t3d_error(T3D_ERR_NOMEM, "model: out of memory");
        goto cleanup;
      }
    }
  }
  {
    const t3d_finding *f = t3d_modelfile_findings(mf, &n);
    m->nfind = n;
    m->find_names = calloc(n ? n : 1, sizeof(char *));
    m->find_cal = calloc(n ? n : 1, sizeof *m->find_cal);
    if (!m->find_names || !m->find_cal) {
      s = t3d_error(T3D_ERR_NOMEM, "model: out of memory");
      goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
      if (!(m->find_names[i] = strdup(f[i].name))) {
        s = t3d_error(T3D_ERR_NOMEM, "model: out of memory");
        goto cleanup;
      }
      m->find_cal[i].on = f[i].calibrated;
      m->find_cal[i].slope = f[i].slope;
      m->find_cal[i].intercept = f[i].intercept;
      m->find_cal[i].has_auroc = f[i].has_auroc;
      m->find_cal[i].auroc = f[i].auroc;
    }
  }
  if ((s = load_text(m, mf)) != T3D_OK) goto cleanup;
  if ((s = load_calibration(m, mf)) != T3D_OK) goto cleanup;
cleanup:
  t3d_modelfile_close(mf);
  if (s != T3D_OK) {
    t3d_model_free(m);
    return s;
  }
  *out = m;
  return T3D_OK;
}

const t3d_model_config *t3d_model_config_of(const t3d_model *m) { return m ? &m->cfg : NULL; }
bool t3d_model_has_text(const t3d_model *m) { return m && m->text; }
size_t t3d_model_class_count(const t3d_model *m) { return m ? m->nclasses : 0; }
const char *t3d_model_class_name(const t3d_model *m, size_t i)
{
  return m && i < m->nclasses ? m->class_names[i] : NULL;
}
size_t t3d_model_finding_count(const t3d_model *m) { return m ? m->nfind : 0; }
const char *t3d_model_finding_name(const t3d_model *m, size_t i) { return m && i < m->nfind ? m->find_names[i] : NULL; }
float t3d_model_logit_scale(const t3d_model *m) { return m ? m->logit_scale : 0; }
const char *t3d_familiarity_caution(const t3d_analysis_result *r, char *buf, size_t n)
{
  if (n) buf[0] = '\0';
  if (r && r->familiar < 0)
    snprintf(buf, n,
             _("Caution: this series is unlike every case the model was trained on (nearest cosine %.3f, "
               "threshold %.3f); its findings are not reliable."),
             r->familiarity, r->familiarity_threshold);
  return buf;
}

size_t t3d_model_calibration_cases(const t3d_model *m)
{
  return m && m->calib_ref ? t3d_index_matrix_rows(m->calib_ref) : 0;
}

t3d_analyze_opts t3d_analyze_default_opts(void) { return (t3d_analyze_opts){true, true, NULL, true}; }

bool t3d_finding_assessed(const t3d_finding_result *f)
{
  return !f || (!f->series_unfamiliar && (!f->has_heldout_auroc || f->heldout_auroc >= T3D_FINDING_MIN_AUROC));
}

void t3d_analysis_result_free(t3d_analysis_result *r)
{
  if (!r) return;
  free(r->embedding);
  free(r->findings);
  t3d_tensor_free(r->labels);
  free(r->volumes_ml);
  free(r);
}

t3d_status t3d_encode_text(t3d_model *m, const char *text, float *out_D)
{
  if (!m || !text || !out_D) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_encode_text: NULL argument");
  if (m->text) return t3d_text_encoder_embed(m->text, &text, 1, out_D);
  return t3d_error(T3D_ERR_UNSUPPORTED, "text encoding unavailable: %s", m->text_missing);
}

static t3d_status cancelled(const volatile int *cancel, const char *where)
{
  if (cancel && *cancel) return t3d_error(T3D_ERR_CANCELLED, "analysis cancelled %s", where);
  return T3D_OK;
}

t3d_preprocess_params t3d_model_preprocess_params(const t3d_model_config *cfg)
{
  t3d_preprocess_params pp = t3d_preprocess_default_params();
  for (int a = 0; a < 3; a++) {
    pp.spacing_mm[a] = cfg->preprocess.spacing_mm[a];
    pp.shape[a] = cfg->preprocess.shape[a];
  }
  pp.hu_min = (float)cfg->preprocess.hu_min;
  pp.hu_max = (float)cfg->preprocess.hu_max;
  pp.pad_value = (float)cfg->preprocess.pad_value;
  pp.norm = T3D_NORM_MINMAX;
  return pp;
}

/* In place over [classes, nvox] (class-major): each voxel's scores become its softmax. */
static void softmax_classes(float *x, size_t ncls, size_t nvox)
{
#pragma omp parallel for schedule(static)
  for (size_t v = 0; v < nvox; v++) {
    float mx = x[v], sum = 0;
    for (size_t c = 1; c < ncls; c++)
      mx = fmaxf(mx, x[c * nvox + v]);
    for (size_t c = 0; c < ncls; c++)
      sum += x[c * nvox + v] = expf(x[c * nvox + v] - mx);
    for (size_t c = 0; c < ncls; c++)
      x[c * nvox + v] /= sum;
  }
}

/* The class histograms the vision projection reads after the pooled feature (modelconfig.h,
 * "class_histogram_hu"): out[c * B + b] = log(1 + the sum of prob[c, v] over the voxels v whose
 * HU, from the normalised input x, falls in bin b). prob: [classes, nvox] softmax. As
 * train/model.py class_histograms computes it: HU in float, clamped to the window, edges
 * half-open [e_b, e_b+1), the outer bins open-ended. */
static t3d_status class_histograms(const t3d_model_config *cfg, const float *x, const float *prob, size_t ncls,
                                   size_t nvox, float *out)
{
  const int B = cfg->projection.class_hist_bins;
  const double *e = cfg->projection.class_hist_hu;
  const float lo = (float)cfg->preprocess.hu_min, hi = (float)cfg->preprocess.hu_max, span = hi - lo;
  double *h = calloc(ncls * (size_t)B, sizeof(double));
  if (!h) return t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory for the class histograms");
  for (size_t v = 0; v < nvox; v++) {
    float hu = x[v] * span + lo;
    hu = hu < lo ? lo : hu > hi ? hi : hu;
    int a = 0, b = B; /* the last edge e[k] <= hu among e[0..B-1], or 0 */
    while (b - a > 1) {
      int mid = (a + b) / 2;
      if ((double)hu >= e[mid]) a = mid;
      else b = mid;
    }
    for (size_t c = 0; c < ncls; c++)
      h[c * (size_t)B + (size_t)a] += prob[c * nvox + v];
  }
  for (size_t i = 0; i < ncls * (size_t)B; i++)
    out[i] = (float)log1p(h[i]);
  free(h);
  return T3D_OK;
}

/* The eroded class probabilities of "class_histogram_erosion" (modelconfig.h): q[c, v] = the
 * minimum of prob[c, u] over the voxels u of the grid within r of v along each axis, as
 * erode_classes in tests/reference/t3d_reference.py (what the trainer uses) computes it. The
 * cube's minimum is taken one axis at a time (exact for a minimum): X, then Y, then Z, through
 * tmp. prob, q and tmp: [ncls, nz, ny, nx]. */
static void erode_classes(const float *prob, size_t ncls, const int64_t *dims, int r, float *q, float *tmp)
{
  const size_t n[3] = {(size_t)dims[0], (size_t)dims[1], (size_t)dims[2]};
  const size_t stride[3] = {n[1] * n[2], n[2], 1}, nvox = n[0] * n[1] * n[2];
  const float *src = prob;
  for (int axis = 2; axis >= 0; axis--) {
    float *dst = axis == 1 ? tmp : q; /* X: prob -> q, Y: q -> tmp, Z: tmp -> q */
    const size_t len = n[axis], st = stride[axis];
    for (size_t c = 0; c < ncls; c++)
      for (size_t v = 0; v < nvox; v++) {
        const size_t i = v / st % len; /* v's position along the axis */
        const size_t a = i >= (size_t)r ? i - (size_t)r : 0, b = i + (size_t)r < len ? i + (size_t)r : len - 1;
        const float *line = src + c * nvox + v - i * st;
        float m = line[a * st];
        for (size_t k = a + 1; k <= b; k++)
          m = line[k * st] < m ? line[k * st] : m;
        dst[c * nvox + v] = m;
      }
    src = dst;
  }
}

/* Window offsets along one axis of g voxels for a window of t <= g: from 0 to g - t, evenly
 * spaced at most t / 2 apart (half-window overlap); *n of them (1 when g == t). */
static int window_offsets(int64_t g, int64_t t, int64_t *off, int max)
{
  int n = g > t ? (int)((2 * (g - t) + t - 1) / t) + 1 : 1;
  if (n > max)
    n = max;
  for (int k = 0; k < n; k++)
    off[k] = n > 1 ? (int64_t)floor((double)k * (double)(g - t) / (double)(n - 1) + 0.5) : 0;
  return n;
}

/* Weights of one window's voxels along an axis of t: a Gaussian centred on the window (sigma
 * t / 8), at least 1e-3 of its peak, so that where windows overlap each voxel leans on the
 * window it lies deepest in. */
static void window_weights(int64_t t, float *w)
{
  const double c = 0.5 * (double)(t - 1), sd = (double)t / 8.0;
  for (int64_t i = 0; i < t; i++)
    w[i] = (float)fmax(exp(-0.5 * ((double)i - c) * ((double)i - c) / (sd * sd)), 1e-3);
}

/* Segmentation of the whole series. The run (created for the model grid, segmenting) holds the
 * centre window, the one the embedding saw and the one the model was trained on: its class
 * probabilities stand wherever it reaches. Where the resampled series extends beyond it (and
 * `whole`), the series is preprocessed onto a grid as large as the resampled series (padded as
 * the centre window is where that is smaller than the model grid) and cut into model-grid
 * windows at half-window steps; each window that reaches beyond the centre window is encoded
 * and decoded, and their probabilities, blended with window_weights, fill what the centre
 * window does not cover. (Measured on the evaluation phantoms: blending every window
 * everywhere lost organ Dice -- kidney 0.72 -> 0.50 -- because the model saw only centred
 * anatomy in training; README, "The bundled model".) Then t3d_preprocess_scores_to_series.
 * *centre_prob: the centre window's softmax when t3d_analyze decoded it already (the embedding's
 * class histograms), taken over (freed here, *centre_prob set to NULL); NULL: decoded here. */
static t3d_status segment_series(t3d_model *m, const t3d_volume *vol, const t3d_preprocess_params *pp,
                                 const t3d_preprocess_transform *centre, t3d_vision_run **run, bool whole,
                                 float **centre_prob, const t3d_vision_hooks *hk, t3d_tensor **labels,
                                 int *windows, double *map_ms)
{
  enum { MAX_WINDOWS_AXIS = 64 };
  const size_t C = m->nclasses;
  const int64_t *T = centre->model_shape; /* z, y, x */
  const size_t tvox = (size_t)(T[0] * T[1] * T[2]);
  t3d_preprocess_params pf = *pp;
  t3d_preprocess_transform trf;
  t3d_tensor *full = NULL, *win = NULL;
  float *cprob = NULL, *logits = NULL, *acc = NULL, *wsum = NULL, *wt[3] = {NULL, NULL, NULL};
  int64_t G[3], c0[3], off[3][MAX_WINDOWS_AXIS];
  int n[3], beyond = 0;
  bool tiled = false;
  double t;
  t3d_status s = T3D_OK;

  for (int a = 0; a < 3; a++) { /* a: z, y, x */
    const int64_t r = centre->resampled_size_xyz[2 - a];
    G[a] = whole && r > T[a] ? r : T[a];
    c0[a] = G[a] > T[a] ? centre->crop_offset_xyz[2 - a] : 0; /* the centre window in the grid */
    n[a] = window_offsets(G[a], T[a], off[a], MAX_WINDOWS_AXIS);
    tiled |= G[a] > T[a];
  }
  /* the windows that reach beyond the centre window along some axis */
  for (int iz = 0; iz < n[0]; iz++)
    for (int iy = 0; iy < n[1]; iy++)
      for (int ix = 0; ix < n[2]; ix++)
        beyond += off[0][iz] != c0[0] || off[1][iy] != c0[1] || off[2][ix] != c0[2];
  *windows = 1 + beyond;
  if (*centre_prob) { /* decoded and softmaxed already, for the embedding's class histograms: taken over */
    cprob = *centre_prob;
    *centre_prob = NULL;
  } else {
    cprob = malloc(C * tvox * sizeof(float));
    if (!cprob) return t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory for the class scores");
    t3d_vision_hooks h = *hk;
    h.frac_end = hk->frac_begin + (hk->frac_end - hk->frac_begin) / (double)*windows;
    if ((s = t3d_vision_decode(*run, cprob, NULL, &h)) != T3D_OK) goto cleanup;
    softmax_classes(cprob, C, tvox);
  }
  if (!tiled) { /* the centre window is the whole series */
    t3d_vision_run_free(*run); /* release the arena before mapping back */
    *run = NULL;
    if (hk->progress) hk->progress(hk->user, hk->frac_end, "labels to series grid");
    t = now_ms();
    t3d_tensor sv = t3d_tensor_view(T3D_F32, 4, (int64_t[]){(int64_t)C, T[0], T[1], T[2]}, cprob);
    s = t3d_preprocess_scores_to_series(centre, &sv, labels);
    *map_ms = now_ms() - t;
    goto cleanup;
  }

  memcpy(pf.shape, G, sizeof pf.shape);
  const size_t gvox = (size_t)(G[0] * G[1] * G[2]);
  if ((s = t3d_preprocess(vol, &pf, &full, &trf)) != T3D_OK) goto cleanup;
  if ((s = t3d_tensor_new(&win, T3D_F32, 5, (int64_t[]){1, 1, T[0], T[1], T[2]})) != T3D_OK) goto cleanup;
  logits = malloc(C * tvox * sizeof(float));
  acc = calloc(C * gvox, sizeof(float));
  wsum = calloc(gvox, sizeof(float));
  for (int a = 0; a < 3; a++)
    wt[a] = malloc((size_t)T[a] * sizeof(float));
  if (!logits || !acc || !wsum || !wt[0] || !wt[1] || !wt[2]) {
    s = t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory for segmenting %lldx%lldx%lld voxels in windows",
                  (long long)G[0], (long long)G[1], (long long)G[2]);
    goto cleanup;
  }
  for (int a = 0; a < 3; a++)
    window_weights(T[a], wt[a]);
  {
    const double step = (hk->frac_end - hk->frac_begin) / (double)*windows;
    int k = 1;
    for (int iz = 0; iz < n[0]; iz++)
      for (int iy = 0; iy < n[1]; iy++)
        for (int ix = 0; ix < n[2]; ix++) {
          const int64_t oz = off[0][iz], oy = off[1][iy], ox = off[2][ix];
          if (oz == c0[0] && oy == c0[1] && ox == c0[2])
            continue;
          const float *src = full->data;
          float *dst = win->data;
          for (int64_t z = 0; z < T[0]; z++)
            for (int64_t y = 0; y < T[1]; y++)
              memcpy(dst + ((size_t)z * (size_t)T[1] + (size_t)y) * (size_t)T[2],
                     src + ((size_t)(oz + z) * (size_t)G[1] + (size_t)(oy + y)) * (size_t)G[2] + (size_t)ox,
                     (size_t)T[2] * sizeof(float));
          t3d_vision_hooks h = *hk;
          h.frac_begin = hk->frac_begin + step * k;
          h.frac_end = hk->frac_begin + step * (k + 0.5);
          if ((s = t3d_vision_encode(*run, win, NULL, &h)) != T3D_OK) goto cleanup;
          h.frac_begin = h.frac_end;
          h.frac_end = hk->frac_begin + step * (k + 1);
          if ((s = t3d_vision_decode(*run, logits, NULL, &h)) != T3D_OK) goto cleanup;
          k++;
          softmax_classes(logits, C, tvox);
#pragma omp parallel for schedule(static)
          for (int64_t z = 0; z < T[0]; z++)
            for (int64_t y = 0; y < T[1]; y++) {
              const float wzy = wt[0][z] * wt[1][y];
              const size_t g = ((size_t)(oz + z) * (size_t)G[1] + (size_t)(oy + y)) * (size_t)G[2] + (size_t)ox;
              const size_t l = ((size_t)z * (size_t)T[1] + (size_t)y) * (size_t)T[2];
              for (int64_t x = 0; x < T[2]; x++)
                wsum[g + (size_t)x] += wzy * wt[2][x];
              for (size_t c = 0; c < C; c++)
                for (int64_t x = 0; x < T[2]; x++)
                  acc[c * gvox + g + (size_t)x] += wzy * wt[2][x] * logits[c * tvox + l + (size_t)x];
            }
        }
  }
  t3d_vision_run_free(*run);
  *run = NULL;
  t3d_tensor_free(full);
  full = NULL;
  if (hk->progress) hk->progress(hk->user, hk->frac_end, "labels to series grid");
  t = now_ms();
  /* the centre window's probabilities where it reaches; the other windows' blend elsewhere
   * (every voxel there lies in a window that was run: the offsets run from 0 to G - T) */
#pragma omp parallel for schedule(static)
  for (int64_t z = 0; z < G[0]; z++)
    for (int64_t y = 0; y < G[1]; y++)
      for (int64_t x = 0; x < G[2]; x++) {
        const size_t v = ((size_t)z * (size_t)G[1] + (size_t)y) * (size_t)G[2] + (size_t)x;
        const int64_t lz = z - c0[0], ly = y - c0[1], lx = x - c0[2];
        if (lz >= 0 && lz < T[0] && ly >= 0 && ly < T[1] && lx >= 0 && lx < T[2]) {
          const size_t l = ((size_t)lz * (size_t)T[1] + (size_t)ly) * (size_t)T[2] + (size_t)lx;
          for (size_t c = 0; c < C; c++)
            acc[c * gvox + v] = cprob[c * tvox + l];
        } else {
          for (size_t c = 0; c < C; c++)
            acc[c * gvox + v] /= wsum[v];
        }
      }
  {
    t3d_tensor sv = t3d_tensor_view(T3D_F32, 4, (int64_t[]){(int64_t)C, G[0], G[1], G[2]}, acc);
    s = t3d_preprocess_scores_to_series(&trf, &sv, labels);
  }
  *map_ms = now_ms() - t;

cleanup:
  t3d_tensor_free(full);
  t3d_tensor_free(win);
  free(cprob);
  free(logits);
  free(acc);
  free(wsum);
  for (int a = 0; a < 3; a++)
    free(wt[a]);
  return s;
}

t3d_status t3d_analyze(t3d_model *m, const t3d_volume *vol, const t3d_analyze_opts *opts_in, t3d_progress_fn progress,
                       const volatile int *cancel, t3d_analysis_result **out)
{
  t3d_analyze_opts opts = opts_in ? *opts_in : t3d_analyze_default_opts();
  t3d_analysis_result *r = NULL;
  t3d_tensor *x = NULL;
  t3d_vision_run *run = NULL;
  float *pooled = NULL, *cprob = NULL;
  t3d_status s;
  double t0 = now_ms(), t;

  if (!m || !vol || !out) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_analyze: NULL argument");
  *out = NULL;
  if (vol->meta.modality[0] && strcmp(vol->meta.modality, "CT") != 0)
    return t3d_error(T3D_ERR_UNSUPPORTED,
                     "series %s has modality %s: t3d analyses CT only (Hounsfield units are what the model was "
                     "trained on)",
                     vol->meta.series_uid[0] ? vol->meta.series_uid : "(no UID)", vol->meta.modality);
  bool segment = opts.segment && t3d_vision_has_decoder(m->vision);
  /* the embedding reads class histograms of the centre window's segmentation (modelconfig.h) */
  const bool hist = m->cfg.projection.class_hist_bins > 0;
  r = calloc(1, sizeof *r);
  if (!r) return t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory");
  r->dim = m->cfg.projection.dim;

  /* preprocess */
  if (progress) progress(opts.user, 0.0, "preprocess");
  t3d_preprocess_params pp = t3d_model_preprocess_params(&m->cfg);
  if ((s = t3d_preprocess(vol, &pp, &x, &r->transform)) != T3D_OK) goto cleanup;
  t = now_ms();
  r->ms.preprocess = t - t0;
  if ((s = cancelled(cancel, "after preprocessing")) != T3D_OK) goto cleanup;

  /* encoder */
  if ((s = t3d_vision_run_new(&run, m->vision, x->shape, segment || hist, false)) != T3D_OK) goto cleanup;
  r->arena_bytes = t3d_vision_run_arena_bytes(run);
  double fe = t3d_vision_run_flops(run, false), fd = segment || hist ? t3d_vision_run_flops(run, true) : 0;
  double split = 0.05 + 0.9 * fe / (fe + fd);
  t3d_vision_hooks hk = {progress, opts.user, cancel, 0.05, split};
  const size_t C = m->nclasses, tvox = (size_t)(x->shape[2] * x->shape[3] * x->shape[4]);
  pooled = malloc((size_t)t3d_model_config_projection_inputs(&m->cfg) * sizeof(float));
  r->embedding = malloc((size_t)r->dim * sizeof(float));
  if (!pooled || !r->embedding) {
    s = t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory");
    goto cleanup;
  }
  if ((s = t3d_vision_encode(run, x, pooled, &hk)) != T3D_OK) goto cleanup;
  if (hist) { /* the centre window's segmentation, which segment_series then reuses */
    t3d_vision_hooks hd = hk;
    hd.frac_begin = split;
    hd.frac_end = split = split + (0.95 - split) * (segment ? 0.5 : 1.0);
    if (!(cprob = malloc(C * tvox * sizeof(float)))) {
      s = t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory for the class scores");
      goto cleanup;
    }
    if ((s = t3d_vision_decode(run, cprob, NULL, &hd)) != T3D_OK) goto cleanup;
    softmax_classes(cprob, C, tvox);
    float *hout = pooled + t3d_vision_features(m->vision);
    if ((s = class_histograms(&m->cfg, x->data, cprob, C, tvox, hout)) != T3D_OK)
      goto cleanup;
    if (m->cfg.projection.class_hist_erosion) { /* the classes' interiors, after the whole classes */
      float *q = malloc(2 * C * tvox * sizeof(float));
      if (!q) {
        s = t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory for the eroded class scores");
        goto cleanup;
      }
      erode_classes(cprob, C, x->shape + 2, m->cfg.projection.class_hist_erosion, q, q + C * tvox);
      s = class_histograms(&m->cfg, x->data, q, C, tvox, hout + C * (size_t)m->cfg.projection.class_hist_bins);
      free(q);
      if (s != T3D_OK)
        goto cleanup;
    }
  }
  double t1 = now_ms();
  r->ms.encoder = t1 - t;
  t3d_tensor_free(x); /* the arena holds the input now */
  x = NULL;
  if ((s = t3d_vision_projection_apply(m->vproj, pooled, 1, r->embedding)) != T3D_OK) goto cleanup;
  r->familiar = 0;
  r->familiarity = NAN;
  if (m->calib_ref) { /* nearest training case by cosine */
    t3d_index_scored best;
    size_t found = 0;
    if ((s = t3d_index_matrix_search(m->calib_ref, m->calib_pooled ? pooled : r->embedding, 1, NULL, &best,
                                     &found)) != T3D_OK)
      goto cleanup;
    r->familiarity = found ? best.score : -1;
    r->familiarity_threshold = m->calib_threshold;
    r->familiar = r->familiarity >= m->calib_threshold ? 1 : -1;
  }
  t = now_ms();
  r->ms.projection = t - t1;

  /* zero-shot */
  if (opts.zero_shot) {
    if (!m->text || !m->prompt_emb) {
      r->zero_shot_status = T3D_ERR_UNSUPPORTED;
      snprintf(r->zero_shot_message, sizeof r->zero_shot_message, "zero-shot findings unavailable: %s",
               m->text ? "the model file lists no findings" : m->text_missing);
    } else {
      r->findings = calloc(m->nfind, sizeof *r->findings);
      if (!r->findings) {
        s = t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory");
        goto cleanup;
      }
      r->nfindings = m->nfind;
      const float *pos = m->prompt_emb, *neg = m->prompt_emb + m->nfind * (size_t)r->dim;
      float *prob = malloc(m->nfind * sizeof(float));
      if (!prob) {
        s = t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory");
        goto cleanup;
      }
      s = t3d_zero_shot_score(r->embedding, pos, neg, m->nfind, r->dim, m->logit_scale, prob);
      for (size_t i = 0; s == T3D_OK && i < m->nfind; i++) {
        double dp = 0, dn = 0;
        for (int j = 0; j < r->dim; j++) {
          dp += (double)r->embedding[j] * pos[i * (size_t)r->dim + j];
          dn += (double)r->embedding[j] * neg[i * (size_t)r->dim + j];
        }
        t3d_finding_result *f = &r->findings[i];
        snprintf(f->name, sizeof f->name, "%s", m->find_names[i]);
        f->logit_pos = m->logit_scale * dp;
        f->logit_neg = m->logit_scale * dn;
        f->probability = prob[i];
        f->has_heldout_auroc = m->find_cal[i].has_auroc;
        f->heldout_auroc = m->find_cal[i].auroc;
        f->series_unfamiliar = r->familiar < 0;
        if (m->find_cal[i].on) { /* Platt scaling of the logit difference, fitted on held-out cases */
          f->probability =
              t3d_logistic(m->find_cal[i].slope * (f->logit_pos - f->logit_neg) + m->find_cal[i].intercept);
        }
      }
      free(prob);
      if (s != T3D_OK) goto cleanup;
    }
  }
  t1 = now_ms();
  r->ms.zero_shot = t1 - t;

  /* segmentation: class probabilities over the whole series, interpolated onto the series grid,
   * argmax there (segment_series; README, "The bundled model") */
  if (segment) {
    double map_ms = 0;
    hk.frac_begin = split;
    hk.frac_end = 0.95;
    s = segment_series(m, vol, &pp, &r->transform, &run, opts.whole_series, &cprob, &hk, &r->labels, &r->seg_windows,
                       &map_ms);
    if (s != T3D_OK) goto cleanup;
    if ((s = cancelled(cancel, "after segmentation")) != T3D_OK) goto cleanup;
    t = now_ms();
    r->ms.decoder = t - t1 - map_ms;
    r->nclasses = m->nclasses;
    r->volumes_ml = calloc(m->nclasses ? m->nclasses : 1, sizeof(double));
    if (!r->volumes_ml) {
      s = t3d_error(T3D_ERR_NOMEM, "t3d_analyze: out of memory");
      goto cleanup;
    }
    if ((s = t3d_label_volumes_ml(r->labels, vol->spacing, vol->dir, (int)m->nclasses, r->volumes_ml)) != T3D_OK)
      goto cleanup;
    r->ms.labels = now_ms() - t + map_ms;
  }
  r->ms.total = now_ms() - t0;
  if (progress) progress(opts.user, 1.0, "done");
  s = T3D_OK;
cleanup:
  t3d_tensor_free(x);
  t3d_vision_run_free(run);
  free(pooled);
  free(cprob);
  if (s != T3D_OK) {
    t3d_analysis_result_free(r);
    return s;
  }
  *out = r;
  return T3D_OK;
}
