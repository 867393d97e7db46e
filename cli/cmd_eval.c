/* `t3d eval --data DIR`: runs the T3D model through the C engine on every case of a phantom
 * manifest (notes/PHANTOM-CONTRACT.md) and reports zero-shot AUROC, report<->volume retrieval
 * R@1/5/10 and Dice per class, as a table or JSON. The metrics and the manifest reader live in
 * core/model/eval.c; this file is the loop, the class/finding matching and the output. */
#include "config.h"

#include <getopt.h>
#include <libintl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/dicom/dicom.h"
#include "core/dicom/nifti.h"
#include "core/model/displaynames.h"
#include "core/model/eval.h"
#include "core/model/model.h"
#include "kernels/backend.h"

#define _(s) gettext(s)
#define N_(s) (s)

/* How far apart (mm) a corner voxel of the label volume and of the series may lie: the NIfTI
 * affine is stored in float32, so a few micrometres of rounding is expected, never 0.05 mm. */
#define GEOMETRY_TOL_MM 0.05

static const size_t RECALL_K[3] = {1, 5, 10};

static volatile int interrupted;

static void on_sigint(int sig)
{
  (void)sig;
  interrupted = 1;
}

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d eval --data DIR [--model FILE] [--json] [--limit N] [--threads N]\n"
                "                [--progress | --no-progress] [--device DEV]\n\n"
                "Evaluates a model on a labelled data set (DIR/manifest.jsonl, DIR/labels.json, as\n"
                "`t3d phantom` writes them) with the C engine:\n"
                "  zero-shot AUROC per finding and macro AUROC (findings with positives and negatives),\n"
                "  retrieval R@1/5/10 with each case's report as the query (text->volume) and each\n"
                "  volume as the query (volume->text), Dice per segmentation class.\n"
                "  --data DIR      folder holding manifest.jsonl\n"
                "  --model FILE    model file (default as for `t3d analyze`)\n"
                "  --json          print JSON instead of the table\n"
                "  --limit N       only the first N cases\n"
                "  --threads N     CPU threads (default: all cores)\n"
                "  --device DEV    auto (default: the GPU when usable, else the CPU), cpu, cuda or cuda:N\n"
                "  --progress      draw the progress bar on stderr even when it is not a terminal\n"
                "  --no-progress   never draw it (default: drawn when stderr is a terminal)\n"));
  t3d_cli_precision_help(to);
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* DIR/rel into buf; T3D_ERR_INVALID_ARG when it does not fit. */
static t3d_status join(char *buf, size_t size, const char *dir, const char *rel)
{
  int n = snprintf(buf, size, "%s/%s", dir, rel);
  if (n < 0 || (size_t)n >= size) return t3d_error(T3D_ERR_INVALID_ARG, "path too long: %s/%s", dir, rel);
  return T3D_OK;
}

/* The case's series: the first CT series in its folder (the first series when none is CT). */
static t3d_status load_series(const char *path, t3d_volume **vol)
{
  t3d_dicom_scan *scan = NULL;
  t3d_status s = t3d_dicom_scan_path(path, &scan);
  if (s == T3D_OK) {
    size_t ns = t3d_dicom_scan_series_count(scan), idx = t3d_dicom_scan_first_ct(scan);
    if (idx == ns) idx = 0;
    if (ns == 0)
      s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no DICOM series found (%zu files examined)", path,
                    t3d_dicom_scan_file_count(scan));
    else
      s = t3d_dicom_load_series(scan, idx, NULL, vol);
  }
  t3d_dicom_scan_free(scan);
  return s;
}

/* Reads the case's label NIfTI into labels (nvoxels of the series) after checking it lies on the
 * series grid: same shape, corner voxels within GEOMETRY_TOL_MM, integer ids 0..255. */
static t3d_status load_labels(const char *path, const t3d_volume *series, uint8_t *labels)
{
  t3d_volume *lv = NULL;
  t3d_status s = t3d_nifti_read(path, &lv, NULL);
  if (s != T3D_OK) return s;
  if (lv->nx != series->nx || lv->ny != series->ny || lv->nz != series->nz) {
    s = t3d_error(T3D_ERR_SHAPE, "%s: label volume is %lldx%lldx%lld voxels, the series %lldx%lldx%lld", path,
                  (long long)lv->nx, (long long)lv->ny, (long long)lv->nz, (long long)series->nx,
                  (long long)series->ny, (long long)series->nz);
    goto cleanup;
  }
  for (int corner = 0; corner < 8; corner++) {
    double i = (corner & 1) ? (double)(lv->nx - 1) : 0, j = (corner & 2) ? (double)(lv->ny - 1) : 0,
           k = (corner & 4) ? (double)(lv->nz - 1) : 0, a[3], b[3];
    t3d_volume_index_to_lps(lv, i, j, k, a);
    t3d_volume_index_to_lps(series, i, j, k, b);
    double d = sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
    if (!(d <= GEOMETRY_TOL_MM)) {
      s = t3d_error(T3D_ERR_SHAPE,
                    "%s: label geometry does not match the series: voxel (%.0f,%.0f,%.0f) lies at LPS "
                    "(%.2f, %.2f, %.2f) mm in the labels and (%.2f, %.2f, %.2f) mm in the series, %.2f mm apart",
                    path, i, j, k, a[0], a[1], a[2], b[0], b[1], b[2], d);
      goto cleanup;
    }
  }
  size_t n = t3d_volume_nvoxels(lv);
  for (size_t v = 0; v < n; v++) {
    float x = lv->data[v];
    if (!(x >= 0 && x <= 255 && x == floorf(x))) {
      s = t3d_error(T3D_ERR_FORMAT, "%s: voxel %zu holds %g, not a label id 0..255", path, v, (double)x);
      goto cleanup;
    }
    labels[v] = (uint8_t)x;
  }
cleanup:
  t3d_volume_free(lv);
  return s;
}

/* What one run gathers; arrays are indexed [case * width + column]. */
typedef struct {
  size_t ncases, nfind, dim, nclass;
  const char **find_names;  /* model finding names evaluated */
  const char **skip_names;  /* findings not evaluated ... */
  const char **skip_reason; /* ... and why */
  size_t nskip;
  double *prob;   /* [ncases * nfind] */
  bool *truth;    /* [ncases * nfind] */
  bool *assessed; /* [ncases * nfind]: t3d_finding_assessed (held-out AUROC, familiar series) */
  float *vemb;    /* [ncases * dim] volume embeddings */
  float *temb;    /* [ncases * dim] report embeddings */
  bool retrieval; /* embeddings gathered (the model has the text encoder) */
  const char *retrieval_note;
  /* segmentation: matched classes */
  const char **class_names;
  uint8_t *truth_ids, *pred_ids;
  double *dice_sum;
  size_t *dice_n;
  char **label_names;
  size_t nlabels;
  const char *dice_note;    /* why no class is scored, or NULL */
  const char **cskip_names; /* classes on one side only ... */
  const char **cskip_reason;
  size_t ncskip;
  double ms_load, ms_analyze, ms_text, ms_total;
  size_t familiar_checked, unfamiliar; /* cases checked against the model's familiarity reference */
  double familiarity_min;
} eval_run;

static void run_free(eval_run *r)
{
  free(r->find_names);
  free(r->skip_names);
  free(r->skip_reason);
  free(r->prob);
  free(r->assessed);
  free(r->truth);
  free(r->vemb);
  free(r->temb);
  free(r->class_names);
  free(r->truth_ids);
  free(r->pred_ids);
  free(r->dice_sum);
  free(r->dice_n);
  free(r->cskip_names);
  free(r->cskip_reason);
  t3d_eval_free_names(r->label_names, r->nlabels);
}

/* Chooses the findings (model findings in every case's truth) and the classes (model classes
 * named in labels.json, background left out). */
static t3d_status plan(eval_run *r, const t3d_model *model, const t3d_eval_manifest *man, size_t ncases,
                       const char *data_dir)
{
  size_t nmf = t3d_model_finding_count(model), nmc = t3d_model_class_count(model);
  const t3d_eval_case *c0 = t3d_eval_manifest_case(man, 0);
  size_t maxskip = nmf + c0->ntruth;
  r->find_names = calloc(nmf + 1, sizeof *r->find_names);
  r->skip_names = calloc(maxskip + 1, sizeof *r->skip_names);
  r->skip_reason = calloc(maxskip + 1, sizeof *r->skip_reason);
  if (!r->find_names || !r->skip_names || !r->skip_reason) return t3d_error(T3D_ERR_NOMEM, "out of memory");
  if (t3d_model_has_text(model)) {
    for (size_t f = 0; f < nmf; f++) {
      const char *name = t3d_model_finding_name(model, f);
      size_t missing = ncases;
      for (size_t i = 0; i < ncases && missing == ncases; i++)
        if (!t3d_eval_case_truth(t3d_eval_manifest_case(man, i), name, NULL)) missing = i;
      if (missing < ncases) {
        r->skip_names[r->nskip] = name;
        r->skip_reason[r->nskip++] = t3d_eval_manifest_case(man, missing)->name; /* see print: "not in the truth of" */
      } else {
        r->find_names[r->nfind++] = name;
      }
    }
  }
  for (size_t t = 0; t < c0->ntruth; t++) {
    bool known = false;
    for (size_t f = 0; f < nmf && !known; f++) known = strcmp(c0->truth[t].name, t3d_model_finding_name(model, f)) == 0;
    if (!known) {
      r->skip_names[r->nskip] = c0->truth[t].name;
      r->skip_reason[r->nskip++] = NULL; /* not a model finding */
    }
  }

  /* classes */
  if (nmc == 0) {
    r->dice_note = N_("the model has no segmentation head");
    return T3D_OK;
  }
  char path[PATH_MAX];
  T3D_TRY(join(path, sizeof path, data_dir, "labels.json"));
  if (access(path, F_OK) != 0) {
    r->dice_note = N_("the data folder has no labels.json");
    return T3D_OK;
  }
  T3D_TRY(t3d_eval_label_names_load(path, &r->label_names, &r->nlabels));
  r->class_names = calloc(nmc, sizeof *r->class_names);
  r->truth_ids = calloc(nmc, 1);
  r->pred_ids = calloc(nmc, 1);
  r->dice_sum = calloc(nmc, sizeof *r->dice_sum);
  r->dice_n = calloc(nmc, sizeof *r->dice_n);
  r->cskip_names = calloc(nmc + r->nlabels, sizeof *r->cskip_names);
  r->cskip_reason = calloc(nmc + r->nlabels, sizeof *r->cskip_reason);
  if (!r->class_names || !r->truth_ids || !r->pred_ids || !r->dice_sum || !r->dice_n || !r->cskip_names ||
      !r->cskip_reason)
    return t3d_error(T3D_ERR_NOMEM, "out of memory");
  for (size_t c = 0; c < nmc && c < 256; c++) {
    const char *name = t3d_model_class_name(model, c);
    size_t l = 0;
    while (l < r->nlabels && strcmp(r->label_names[l], name) != 0) l++;
    if (strcmp(name, "background") == 0) continue;
    if (l == r->nlabels) {
      r->cskip_names[r->ncskip] = name;
      r->cskip_reason[r->ncskip++] = N_("not in labels.json");
      continue;
    }
    r->class_names[r->nclass] = name;
    r->truth_ids[r->nclass] = (uint8_t)l;
    r->pred_ids[r->nclass++] = (uint8_t)c;
  }
  for (size_t l = 0; l < r->nlabels; l++) {
    bool known = strcmp(r->label_names[l], "background") == 0;
    for (size_t c = 0; c < nmc && !known; c++) known = strcmp(r->label_names[l], t3d_model_class_name(model, c)) == 0;
    if (!known) {
      r->cskip_names[r->ncskip] = r->label_names[l];
      r->cskip_reason[r->ncskip++] = N_("not a class of the model");
    }
  }
  return T3D_OK;
}

typedef struct {
  t3d_cli_progress *bar;
  size_t index, count;
  const char *name;
  int show;
} case_progress;

static void case_progress_cb(void *user, double f, const char *stage)
{
  case_progress *cp = user;
  char label[128];
  if (!cp->show) return;
  snprintf(label, sizeof label, "%s (%zu/%zu) %s", cp->name, cp->index + 1, cp->count, stage);
  /* the last case's analysis ending is not the end of the run: the caller draws 100% */
  double frac = ((double)cp->index + f * 0.98) / (double)cp->count;
  t3d_cli_progress_draw(cp->bar, frac >= 1 ? 0.9999 : frac, label);
}

static t3d_status run_case(eval_run *r, t3d_model *model, const char *dir, const t3d_eval_case *c, size_t i,
                           case_progress *cp)
{
  char path[PATH_MAX];
  t3d_volume *vol = NULL;
  t3d_analysis_result *res = NULL;
  uint8_t *labels = NULL;
  t3d_eval_overlap *ov = NULL;
  t3d_status s;
  double t0 = now_ms();

  if ((s = join(path, sizeof path, dir, c->series)) != T3D_OK) goto cleanup;
  if ((s = load_series(path, &vol)) != T3D_OK) goto cleanup;
  r->ms_load += now_ms() - t0;

  t0 = now_ms();
  t3d_analyze_opts ao = t3d_analyze_default_opts();
  ao.segment = r->nclass > 0;
  ao.user = cp;
  if ((s = t3d_analyze(model, vol, &ao, case_progress_cb, &interrupted, &res)) != T3D_OK) goto cleanup;
  r->ms_analyze += now_ms() - t0;
  if ((size_t)res->dim != r->dim) {
    s = t3d_error(T3D_ERR_INTERNAL, "embedding of %d values, expected %zu", res->dim, r->dim);
    goto cleanup;
  }
  memcpy(r->vemb + i * r->dim, res->embedding, r->dim * sizeof *r->vemb);
  if (res->familiar) {
    r->familiarity_min = r->familiar_checked ? fmin(r->familiarity_min, res->familiarity) : res->familiarity;
    r->familiar_checked++;
    r->unfamiliar += res->familiar < 0;
  }
  for (size_t f = 0; f < r->nfind; f++) {
    size_t j = 0;
    while (j < res->nfindings && strcmp(res->findings[j].name, r->find_names[f]) != 0) j++;
    if (j == res->nfindings) {
      s = t3d_error(T3D_ERR_INTERNAL, "the analysis lacks finding \"%s\" (%s)", r->find_names[f],
                    res->zero_shot_message);
      goto cleanup;
    }
    r->prob[i * r->nfind + f] = res->findings[j].probability;
    r->assessed[i * r->nfind + f] = t3d_finding_assessed(&res->findings[j]);
    bool present = false;
    t3d_eval_case_truth(c, r->find_names[f], &present);
    r->truth[i * r->nfind + f] = present;
  }

  if (r->retrieval) {
    t0 = now_ms();
    if ((s = t3d_encode_text(model, c->report, r->temb + i * r->dim)) != T3D_OK) {
      t3d_error_prefix("encoding the report: ");
      goto cleanup;
    }
    r->ms_text += now_ms() - t0;
  }

  if (r->nclass && c->labels && res->labels) {
    t0 = now_ms();
    size_t n = t3d_volume_nvoxels(vol);
    if (!(labels = malloc(n)) || !(ov = calloc(r->nclass, sizeof *ov))) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory for %zu label voxels", n);
      goto cleanup;
    }
    if ((s = join(path, sizeof path, dir, c->labels)) != T3D_OK) goto cleanup;
    if ((s = load_labels(path, vol, labels)) != T3D_OK) goto cleanup;
    if ((s = t3d_eval_overlap_count(labels, res->labels->data, n, r->truth_ids, r->pred_ids, r->nclass, ov)) !=
        T3D_OK)
      goto cleanup;
    for (size_t k = 0; k < r->nclass; k++) {
      double d = t3d_eval_dice(ov[k]);
      if (!isnan(d)) r->dice_sum[k] += d, r->dice_n[k]++;
    }
    r->ms_load += now_ms() - t0;
  }
cleanup:
  if (s != T3D_OK) t3d_error_prefix("case %s (manifest line %zu): ", c->name, c->line);
  free(ov);
  free(labels);
  t3d_analysis_result_free(res);
  t3d_volume_free(vol);
  return s;
}

static json_t *num_or_null(double x) { return isfinite(x) ? json_real(x) : json_null(); }

/* Case-findings read as present at probability > 0.5, what a reader of the probability would take
 * it to say: how many, how many right, false positives, false negatives. */
typedef struct {
  size_t n, right, false_pos, false_neg;
} yes_no;

static void yes_no_add(yes_no *t, bool said, bool present)
{
  t->n++;
  t->right += said == present;
  t->false_pos += said && !present;
  t->false_neg += !said && present;
}

static double yes_no_accuracy(const yes_no *t) { return t->n ? (double)t->right / (double)t->n : NAN; }

/* {"accuracy", "case_findings", "false_positives", "false_negatives"} */
static json_t *yes_no_json(const yes_no *t)
{
  return json_pack("{s:o, s:I, s:I, s:I}", "accuracy", num_or_null(yes_no_accuracy(t)), "case_findings",
                   (json_int_t)t->n, "false_positives", (json_int_t)t->false_pos, "false_negatives",
                   (json_int_t)t->false_neg);
}

typedef struct {
  double *auroc; /* [nfind], NaN when undefined */
  size_t *npos;
  double macro;
  size_t nmacro;
  double recall[2][3]; /* t2v, v2t x k */
  yes_no at_half; /* every case-finding */
  yes_no stated;  /* those the model assesses (what analyze and the draft report state) */
} eval_scores;

static t3d_status score(const eval_run *r, eval_scores *sc)
{
  t3d_status s = T3D_OK;
  double *col = malloc((r->ncases ? r->ncases : 1) * sizeof *col);
  bool *pos = malloc((r->ncases ? r->ncases : 1) * sizeof *pos);
  float *sim = NULL;
  sc->auroc = calloc(r->nfind + 1, sizeof *sc->auroc);
  sc->npos = calloc(r->nfind + 1, sizeof *sc->npos);
  if (!col || !pos || !sc->auroc || !sc->npos) {
    s = t3d_error(T3D_ERR_NOMEM, "out of memory");
    goto cleanup;
  }
  double sum = 0;
  sc->nmacro = 0;
  for (size_t f = 0; f < r->nfind; f++) {
    for (size_t i = 0; i < r->ncases; i++) {
      col[i] = r->prob[i * r->nfind + f];
      pos[i] = r->truth[i * r->nfind + f];
      sc->npos[f] += pos[i];
      const bool said = col[i] > 0.5;
      yes_no_add(&sc->at_half, said, pos[i]);
      if (r->assessed[i * r->nfind + f]) yes_no_add(&sc->stated, said, pos[i]);
    }
    sc->auroc[f] = NAN;
    if (sc->npos[f] == 0 || sc->npos[f] == r->ncases) continue;
    if ((s = t3d_eval_auroc(col, pos, r->ncases, &sc->auroc[f])) != T3D_OK) goto cleanup;
    sum += sc->auroc[f];
    sc->nmacro++;
  }
  sc->macro = sc->nmacro ? sum / (double)sc->nmacro : NAN;

  for (int d = 0; d < 2; d++)
    for (int k = 0; k < 3; k++) sc->recall[d][k] = NAN;
  if (r->retrieval) {
    size_t n = r->ncases, D = r->dim;
    if (!(sim = malloc(n * n * sizeof *sim))) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory for the %zux%zu similarity matrix", n, n);
      goto cleanup;
    }
    /* cosine similarity, report t (row) against volume v (column) */
    for (size_t t = 0; t < n; t++)
      for (size_t v = 0; v < n; v++) {
        const float *a = r->temb + t * D, *b = r->vemb + v * D;
        double ab = 0, aa = 0, bb = 0;
        for (size_t e = 0; e < D; e++) ab += (double)a[e] * b[e], aa += (double)a[e] * a[e], bb += (double)b[e] * b[e];
        sim[t * n + v] = aa > 0 && bb > 0 ? (float)(ab / sqrt(aa * bb)) : 0.0f;
      }
    for (int d = 0; d < 2; d++)
      for (int k = 0; k < 3; k++)
        if ((s = t3d_eval_recall_at_k(sim, n, d == 1, RECALL_K[k], &sc->recall[d][k])) != T3D_OK) goto cleanup;
  }
cleanup:
  free(sim);
  free(col);
  free(pos);
  return s;
}

static json_t *to_json(const eval_run *r, const eval_scores *sc, const char *model_name, const char *model_path,
                       const char *dir)
{
  json_t *root = json_object(), *au = json_object(), *npos = json_object(), *skipped = json_object(),
         *dice = json_object(), *dn = json_object();
  for (size_t f = 0; f < r->nfind; f++) {
    json_object_set_new(au, r->find_names[f], num_or_null(sc->auroc[f]));
    json_object_set_new(npos, r->find_names[f], json_integer((json_int_t)sc->npos[f]));
    if (!isfinite(sc->auroc[f]))
      json_object_set_new(skipped, r->find_names[f],
                          json_string(sc->npos[f] ? "no negative case" : "no positive case"));
  }
  for (size_t k = 0; k < r->nskip; k++) {
    char why[300];
    if (r->skip_reason[k])
      snprintf(why, sizeof why, "not in the truth of case %s", r->skip_reason[k]);
    else
      snprintf(why, sizeof why, "not a finding of the model");
    json_object_set_new(skipped, r->skip_names[k], json_string(why));
  }
  for (size_t c = 0; c < r->nclass; c++) {
    json_object_set_new(dice, r->class_names[c], num_or_null(r->dice_n[c] ? r->dice_sum[c] / (double)r->dice_n[c] : NAN));
    json_object_set_new(dn, r->class_names[c], json_integer((json_int_t)r->dice_n[c]));
  }
  json_object_set_new(root, "model", json_pack("{s:s, s:s}", "name", model_name, "path", model_path));
  json_object_set_new(root, "data", json_string(dir));
  json_object_set_new(root, "cases", json_integer((json_int_t)r->ncases));
  json_object_set_new(root, "macro_auroc", num_or_null(sc->macro));
  json_object_set_new(root, "macro_auroc_findings", json_integer((json_int_t)sc->nmacro));
  json_object_set_new(root, "auroc", au);
  json_object_set_new(root, "positives", npos);
  json_object_set_new(root, "auroc_skipped", skipped);
  json_object_set_new(root, "at_half", yes_no_json(&sc->at_half));
  json_t *stated = yes_no_json(&sc->stated);
  json_object_set_new(stated, "not_assessed", json_integer((json_int_t)(sc->at_half.n - sc->stated.n)));
  json_object_set_new(root, "assessed", stated);
  if (r->retrieval) {
    json_t *ret = json_object();
    static const char *const dirs[2] = {"t2v", "v2t"}, *const ks[3] = {"r1", "r5", "r10"};
    for (int d = 0; d < 2; d++) {
      json_t *o = json_object();
      for (int k = 0; k < 3; k++) json_object_set_new(o, ks[k], num_or_null(sc->recall[d][k]));
      json_object_set_new(ret, dirs[d], o);
    }
    json_object_set_new(root, "retrieval", ret);
  } else {
    json_object_set_new(root, "retrieval", json_null());
    json_object_set_new(root, "retrieval_unavailable", json_string(r->retrieval_note));
  }
  json_object_set_new(root, "dice", dice);
  json_object_set_new(root, "dice_cases", dn);
  json_t *cskip = json_object();
  for (size_t k = 0; k < r->ncskip; k++) json_object_set_new(cskip, r->cskip_names[k], json_string(r->cskip_reason[k]));
  json_object_set_new(root, "dice_skipped", cskip);
  if (r->dice_note) json_object_set_new(root, "dice_unavailable", json_string(r->dice_note));
  if (r->familiar_checked)
    json_object_set_new(root, "familiarity",
                        json_pack("{s:I, s:I, s:f}", "checked", (json_int_t)r->familiar_checked, "unfamiliar",
                                  (json_int_t)r->unfamiliar, "lowest_cosine", r->familiarity_min));
  json_object_set_new(root, "dice_rule",
                      json_string("mean over the cases where the class is in the truth or the prediction; a case "
                                  "where it is in neither is left out; null when no case counts"));
  json_object_set_new(root, "timings_ms",
                      json_pack("{s:f, s:f, s:f, s:f, s:f}", "total", r->ms_total, "load", r->ms_load, "analyze",
                                r->ms_analyze, "text", r->ms_text, "per_case",
                                r->ncases ? r->ms_total / (double)r->ncases : 0.0));
  return root;
}

static void print_table(const eval_run *r, const eval_scores *sc, const char *model_name, const char *model_path,
                        const char *dir)
{
  printf(_("Model   %s (%s)\n"), model_name, model_path);
  printf(_("Data    %s: %zu cases\n\n"), dir, r->ncases);
  if (r->nfind) {
    printf("%-28s %7s %9s %9s\n", _("Zero-shot finding"), _("AUROC"), _("positive"), _("negative"));
    for (size_t f = 0; f < r->nfind; f++) {
      if (isfinite(sc->auroc[f]))
        printf("%-28s %7.3f %9zu %9zu\n", t3d_finding_display_name(r->find_names[f]), sc->auroc[f], sc->npos[f], r->ncases - sc->npos[f]);
      else
        printf("%-28s %7s %9zu %9zu  %s\n", t3d_finding_display_name(r->find_names[f]), "-", sc->npos[f], r->ncases - sc->npos[f],
               sc->npos[f] ? _("(skipped: no negative case)") : _("(skipped: no positive case)"));
    }
    if (sc->nmacro)
      printf(_("%-28s %7.3f  (mean over %zu of %zu findings)\n"), _("Macro AUROC"), sc->macro, sc->nmacro,
             r->nfind);
    else
      printf(_("%-28s %7s  (no finding has both positive and negative cases)\n"), _("Macro AUROC"), "-");
    const yes_no *h = &sc->at_half, *st = &sc->stated;
    if (h->n)
      printf(_("%-28s %7.3f  (%zu false positives, %zu false negatives of %zu)\n"), _("Right at p > 0.5"),
             yes_no_accuracy(h), h->false_pos, h->false_neg, h->n);
    if (st->n && st->n < h->n) /* what analyze and the draft report state */
      printf(_("%-28s %7.3f  (%zu false positives, %zu false negatives of %zu assessed; %zu not assessed)\n"),
             _("  where assessed"), yes_no_accuracy(st), st->false_pos, st->false_neg, st->n, h->n - st->n);
    else if (h->n && !st->n)
      printf(_("%-28s %7s  (the model assessed none of the %zu)\n"), _("  where assessed"), "-", h->n);
  }
  for (size_t k = 0; k < r->nskip; k++) {
    if (r->skip_reason[k])
      printf(_("Not scored: %s (not in the truth of case %s)\n"), t3d_finding_display_name(r->skip_names[k]), r->skip_reason[k]);
    else
      printf(_("Not scored: %s (not a finding of the model)\n"), t3d_finding_display_name(r->skip_names[k]));
  }
  if (r->retrieval) {
    printf("\n%-28s %7s %7s %7s\n", _("Retrieval (reports)"), "R@1", "R@5", "R@10");
    const char *names[2] = {_("text -> volume"), _("volume -> text")};
    for (int d = 0; d < 2; d++)
      printf("%-28s %7.3f %7.3f %7.3f\n", names[d], sc->recall[d][0], sc->recall[d][1], sc->recall[d][2]);
  } else {
    printf(_("\nRetrieval and zero-shot: %s\n"), r->retrieval_note);
  }
  if (r->nclass) {
    printf("\n%-28s %7s %9s\n", _("Segmentation class"), _("Dice"), _("cases"));
    for (size_t c = 0; c < r->nclass; c++) {
      if (r->dice_n[c])
        printf("%-28s %7.3f %9zu\n", t3d_class_display_name(r->class_names[c]), r->dice_sum[c] / (double)r->dice_n[c], r->dice_n[c]);
      else
        printf("%-28s %7s %9zu\n", t3d_class_display_name(r->class_names[c]), "-", r->dice_n[c]);
    }
    printf(_("(Dice: mean over the cases where the class is in the truth or the prediction)\n"));
  }
  for (size_t k = 0; k < r->ncskip; k++)
    printf(_("Class not scored: %s (%s)\n"), t3d_class_display_name(r->cskip_names[k]), _(r->cskip_reason[k]));
  if (r->dice_note) printf(_("\nSegmentation not scored: %s\n"), _(r->dice_note));
  if (r->familiar_checked)
    printf(_("\nFamiliarity: %zu of %zu cases unlike the model's training cases (lowest nearest cosine %.3f)\n"),
           r->unfamiliar, r->familiar_checked, r->familiarity_min);
  printf(_("\nTimings: %.1f s in all, %.0f ms per case (load %.0f ms, analyze %.0f ms, report text %.0f ms)\n"),
         r->ms_total / 1e3, r->ncases ? r->ms_total / (double)r->ncases : 0.0,
         r->ncases ? r->ms_load / (double)r->ncases : 0.0, r->ncases ? r->ms_analyze / (double)r->ncases : 0.0,
         r->ncases ? r->ms_text / (double)r->ncases : 0.0);
}

int t3d_cmd_eval(int argc, char **argv)
{
  const char *model_path = NULL, *dir = NULL, *device = NULL;
  int json = 0, threads = 0, progress = isatty(STDERR_FILENO), c, rc = 1;
  long limit = -1;
  t3d_precision precision = T3D_PRECISION_AUTO;
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"model", required_argument, NULL, 'm'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"limit", required_argument, NULL, 'l'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"progress", no_argument, NULL, 'p'},
                                       {"no-progress", no_argument, NULL, 'q'},
                                       {"device", required_argument, NULL, T3D_CLI_OPT_DEVICE},
                                       {"precision", required_argument, NULL, 'P'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 'd': dir = optarg; break;
    case 'm': model_path = optarg; break;
    case 'j': json = 1; break;
    case 'l':
      limit = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || limit < 1) {
        fprintf(stderr, _("t3d eval: --limit needs a positive number, not '%s'\n"), optarg);
        return 2;
      }
      break;
    case 't':
      threads = (int)strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || threads < 0) {
        fprintf(stderr, _("t3d eval: --threads needs a number >= 0, not '%s'\n"), optarg);
        return 2;
      }
      break;
    case T3D_CLI_OPT_DEVICE: device = optarg; break;
    case 'p': progress = 1; break;
    case 'q': progress = 0; break;
    case 'P':
      if (t3d_cli_parse_precision("eval", optarg, &precision)) return 2;
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || !dir) {
    if (!dir) fprintf(stderr, _("t3d eval: --data DIR is required\n"));
    usage(stderr);
    return 2;
  }
  if (!model_path) model_path = t3d_cli_default_model();

  eval_run r;
  eval_scores sc;
  memset(&r, 0, sizeof r);
  memset(&sc, 0, sizeof sc);
  t3d_eval_manifest *man = NULL;
  t3d_backend *be = NULL;
  t3d_model *model = NULL;
  t3d_cli_progress bar;
  t3d_status s;
  const char *what = NULL;
  char path[PATH_MAX];
  double t_start = now_ms();

  t3d_cli_progress_start(&bar);
  if ((s = join(path, sizeof path, dir, "manifest.jsonl")) != T3D_OK) goto fail;
  if ((s = t3d_eval_manifest_load(path, &man)) != T3D_OK) goto fail;
  r.ncases = t3d_eval_manifest_count(man);
  if (limit > 0 && (size_t)limit < r.ncases) r.ncases = (size_t)limit;

  if ((s = t3d_cli_model_open(model_path, device, threads, precision, &be, &model)) != T3D_OK) {
    what = _("loading the model");
    goto fail;
  }
  if ((s = plan(&r, model, man, r.ncases, dir)) != T3D_OK) goto fail;
  r.retrieval = t3d_model_has_text(model);
  r.retrieval_note = r.retrieval ? "" : "the model file has no text encoder";
  r.dim = (size_t)t3d_model_config_of(model)->projection.dim;
  r.prob = calloc(r.ncases * (r.nfind ? r.nfind : 1), sizeof *r.prob);
  r.truth = calloc(r.ncases * (r.nfind ? r.nfind : 1), sizeof *r.truth);
  r.assessed = calloc(r.ncases * (r.nfind ? r.nfind : 1), sizeof *r.assessed);
  r.vemb = calloc(r.ncases * r.dim, sizeof *r.vemb);
  r.temb = calloc(r.ncases * r.dim, sizeof *r.temb);
  if (!r.prob || !r.truth || !r.assessed || !r.vemb || !r.temb) {
    s = t3d_error(T3D_ERR_NOMEM, "out of memory for %zu cases", r.ncases);
    goto fail;
  }

  signal(SIGINT, on_sigint);
  for (size_t i = 0; i < r.ncases; i++) {
    const t3d_eval_case *cs = t3d_eval_manifest_case(man, i);
    case_progress cp = {&bar, i, r.ncases, cs->name, progress};
    s = run_case(&r, model, dir, cs, i, &cp);
    if (t3d_cli_gpu_failed(s, model_path, threads, precision, &be, &model)) /* this and later cases on the CPU */
      s = run_case(&r, model, dir, cs, i, &cp);
    if (s != T3D_OK) break;
  }
  signal(SIGINT, SIG_DFL);
  if (s != T3D_OK) goto fail;
  if ((s = score(&r, &sc)) != T3D_OK) goto fail;
  r.ms_total = now_ms() - t_start;
  if (progress) t3d_cli_progress_draw(&bar, 1.0, _("evaluated"));

  const char *model_name = t3d_model_config_of(model)->name;
  if (json) {
    json_t *j = to_json(&r, &sc, model_name, model_path, dir);
    char *txt = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!txt) {
      s = t3d_error(T3D_ERR_NOMEM, "cannot format the JSON result");
      goto fail;
    }
    puts(txt);
    free(txt);
  } else {
    print_table(&r, &sc, model_name, model_path, dir);
  }
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_progress_end(&bar);
  t3d_cli_fail(s, what ? what : "eval");
cleanup:
  free(sc.auroc);
  free(sc.npos);
  run_free(&r);
  t3d_model_free(model);
  t3d_backend_free(be);
  t3d_eval_manifest_free(man);
  return rc;
}
