/* `t3d analyze SERIES_DIR`: loads a CT series (core/dicom/dicom.h), runs the T3D model on it
 * (t3d_analyze) and prints findings, organ volumes and timings, as text or JSON, optionally
 * writing the label mask on the series grid as NIfTI. Not a batch tool or a viewer. */
#include "config.h"

#include <getopt.h>
#include <libintl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/dicom/dicom.h"
#include "core/model/model.h"
#include "core/model/displaynames.h"
#include "core/dicom/nifti.h"
#include "kernels/backend.h"

#define _(s) gettext(s)

static volatile int interrupted;

static void on_sigint(int sig)
{
  (void)sig;
  interrupted = 1;
}

static void usage(FILE *to)
{
  fprintf(to, "Usage: t3d analyze SERIES_DIR [--model FILE] [--json] [--mask OUT.nii.gz] [--threads N]\n"
              "                   [--series UID] [--no-segment] [--seg-centre] [--progress] [--progress-json]\n"
              "                   [--strict-geometry] [--device DEV] [--precision auto|fp32|bf16]\n\n"
              "Runs the T3D model on a CT series: zero-shot findings with probabilities, organ volumes\n"
              "(mL) from the segmentation, and timings.\n"
              "  --model FILE    model file (default: $T3D_MODEL, the source tree's trained t3d-tiny,\n"
              "                  or %s/t3d-tiny.safetensors)\n"
              "  --json          print JSON (includes the image embedding)\n"
              "  --mask FILE     write the label volume on the series grid as NIfTI (.nii or .nii.gz)\n"
              "  --threads N     CPU threads (default: all cores)\n"
              T3D_CLI_DEVICE_HELP
              "  --series UID    which series when the folder holds several (default: the first CT)\n"
              "  --no-segment    skip the segmentation decoder\n"
              "  --seg-centre    segment the centre model-grid window only (the one the findings see);\n"
              "                  by default a series larger than the model grid is segmented whole, in\n"
              "                  overlapping windows (JSON: segmentation_windows)\n"
              "  --progress      show progress on stderr (Ctrl-C cancels)\n"
              "  --progress-json one JSON line per progress step on stderr, {\"progress\":F,\"stage\":S};\n"
              "                  SIGTERM and SIGINT cancel cleanly (the viewer plugin's worker protocol)\n"
              "  --strict-geometry  refuse tilted or unevenly spaced series instead of resampling them\n",
          T3D_PKGDATADIR);
  t3d_cli_precision_help(to);
}

/* The worker protocol (plugin/worker.h): one self-contained JSON object per line. */
static void progress_json_cb(void *user, double f, const char *stage)
{
  (void)user;
  json_t *j = json_pack("{s:f, s:s}", "progress", f, "stage", stage ? stage : "");
  char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (txt) fprintf(stderr, "%s\n", txt);
  fflush(stderr);
  free(txt);
  json_decref(j);
}

static void progress_cb(void *user, double f, const char *stage)
{
  t3d_cli_progress_draw(user, f, stage); /* the bar with ETA, shared with `t3d eval` */
}

/* The series grid as a float volume holding the labels, for the NIfTI writer. */
static t3d_status write_mask(const t3d_volume *series, const t3d_tensor *labels, const char *path)
{
  t3d_volume *m = NULL;
  t3d_status s = t3d_volume_new(&m, series->nx, series->ny, series->nz);
  if (s != T3D_OK) return s;
  memcpy(m->spacing, series->spacing, sizeof m->spacing);
  memcpy(m->origin, series->origin, sizeof m->origin);
  memcpy(m->dir, series->dir, sizeof m->dir);
  m->meta = series->meta;
  const uint8_t *l = labels->data;
  for (size_t i = 0; i < t3d_volume_nvoxels(m); i++) m->data[i] = l[i];
  s = t3d_nifti_write(m, path);
  t3d_volume_free(m);
  return s;
}

static json_t *result_json(const t3d_model *model, const char *model_path, const t3d_volume *vol,
                           const t3d_analysis_result *r, const char *mask)
{
  json_t *root = json_object(), *emb = json_array(), *find = json_array(), *vols = json_object();
  for (int i = 0; i < r->dim; i++) json_array_append_new(emb, json_real(r->embedding[i]));
  for (size_t i = 0; i < r->nfindings; i++) {
    const t3d_finding_result *f = &r->findings[i];
    json_array_append_new(find, json_pack("{s:s, s:f, s:f, s:f, s:o, s:b}", "name", f->name, "probability",
                                          f->probability, "logit_positive", f->logit_pos, "logit_negative",
                                          f->logit_neg, "heldout_auroc",
                                          f->has_heldout_auroc ? json_real(f->heldout_auroc) : json_null(), "assessed",
                                          t3d_finding_assessed(f)));
  }
  json_t *classes = json_array(); /* label value -> name, for readers of the mask */
  for (size_t c = 0; r->volumes_ml && c < r->nclasses; c++) {
    json_object_set_new(vols, t3d_model_class_name(model, c), json_real(r->volumes_ml[c]));
    json_array_append_new(classes, json_string(t3d_model_class_name(model, c)));
  }
  json_object_set_new(root, "series",
                      json_pack("{s:s, s:s, s:s, s:[I,I,I], s:[f,f,f]}", "series_uid", vol->meta.series_uid,
                                "modality", vol->meta.modality, "description", vol->meta.series_description,
                                "shape_xyz", (json_int_t)vol->nx, (json_int_t)vol->ny, (json_int_t)vol->nz,
                                "spacing_mm", vol->spacing[0], vol->spacing[1], vol->spacing[2]));
  json_object_set_new(json_object_get(root, "series"), "geometry_note", json_string(vol->geometry_note));
  json_object_set_new(root, "model", json_pack("{s:s, s:s}", "name", t3d_model_config_of(model)->name, "path",
                                               model_path));
  json_object_set_new(root, "embedding", emb);
  json_object_set_new(root, "findings", find);
  if (r->zero_shot_status != T3D_OK)
    json_object_set_new(root, "findings_unavailable", json_string(r->zero_shot_message));
  if (r->familiar != 0)
    json_object_set_new(root, "familiarity",
                        json_pack("{s:f, s:f, s:b}", "nearest_training_cosine", r->familiarity, "threshold",
                                  r->familiarity_threshold, "familiar", r->familiar > 0));
  json_object_set_new(root, "volumes_ml", vols);
  json_object_set_new(root, "classes", classes);
  if (mask) json_object_set_new(root, "mask", json_string(mask));
  json_object_set_new(root, "arena_bytes", json_integer((json_int_t)r->arena_bytes));
  if (r->labels) json_object_set_new(root, "segmentation_windows", json_integer(r->seg_windows));
  json_object_set_new(root, "timings_ms",
                      json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "preprocess", r->ms.preprocess, "encoder",
                                r->ms.encoder, "projection", r->ms.projection, "zero_shot", r->ms.zero_shot,
                                "decoder", r->ms.decoder, "labels", r->ms.labels, "total", r->ms.total));
  return root;
}

int t3d_cmd_analyze(int argc, char **argv)
{
  const char *model_path = NULL, *mask = NULL, *series_uid = NULL, *dir = NULL, *device = NULL;
  int json = 0, threads = 0, no_segment = 0, show_progress = 0, progress_json = 0, c, rc = 1;
  int strict_geometry = 0, seg_centre = 0;
  t3d_precision precision = T3D_PRECISION_AUTO;
  static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"mask", required_argument, NULL, 'k'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"series", required_argument, NULL, 's'},
                                       {"no-segment", no_argument, NULL, 'n'},
                                       {"seg-centre", no_argument, NULL, 'C'},
                                       {"progress", no_argument, NULL, 'p'},
                                       {"strict-geometry", no_argument, NULL, 'g'},
                                       {"progress-json", no_argument, NULL, 'J'},
                                       {"device", required_argument, NULL, T3D_CLI_OPT_DEVICE},
                                       {"precision", required_argument, NULL, 'P'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'm': model_path = optarg; break;
    case 'j': json = 1; break;
    case 'k': mask = optarg; break;
    case 't': threads = atoi(optarg); break;
    case T3D_CLI_OPT_DEVICE: device = optarg; break;
    case 's': series_uid = optarg; break;
    case 'n': no_segment = 1; break;
    case 'C': seg_centre = 1; break;
    case 'p': show_progress = 1; break;
    case 'g': strict_geometry = 1; break;
    case 'J': progress_json = 1; break;
    case 'P':
      if (t3d_cli_parse_precision("analyze", optarg, &precision)) return 2;
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  dir = argv[optind];
  if (!model_path) model_path = t3d_cli_default_model();
  if (threads < 0) {
    fprintf(stderr, "t3d analyze: --threads must be >= 0\n");
    return 2;
  }

  t3d_dicom_scan *scan = NULL;
  t3d_volume *vol = NULL;
  t3d_backend *be = NULL;
  t3d_model *model = NULL;
  t3d_analysis_result *res = NULL;
  t3d_cli_progress bar = {0};
  t3d_status s;
  size_t idx = 0;
  const char *what = "analyze";

  if ((s = t3d_dicom_scan_path(dir, &scan)) != T3D_OK) {
    what = dir;
    goto fail;
  }
  size_t ns = t3d_dicom_scan_series_count(scan);
  if (ns == 0) {
    s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no DICOM series found (%zu files examined)", dir,
                  t3d_dicom_scan_file_count(scan));
    goto fail;
  }
  if (series_uid) {
    if ((s = t3d_dicom_scan_find_series(scan, series_uid, &idx)) != T3D_OK) goto fail;
  } else if (ns > 1) {
    if ((idx = t3d_dicom_scan_first_ct(scan)) == ns) idx = 0;
    fprintf(stderr, "t3d analyze: %s holds %zu series; analysing %s (%s), choose another with --series UID\n", dir,
            ns, t3d_dicom_scan_series(scan, idx)->meta.series_uid, t3d_dicom_scan_series(scan, idx)->meta.modality);
  }
  t3d_dicom_load_opts lo = t3d_dicom_load_default_opts();
  lo.strict_geometry = strict_geometry;
  if ((s = t3d_dicom_load_series(scan, idx, &lo, &vol)) != T3D_OK) goto fail;
  if ((s = t3d_cli_model_open(model_path, device, threads, precision, &be, &model)) != T3D_OK) {
    what = "loading the model";
    goto fail;
  }
  t3d_analyze_opts ao = t3d_analyze_default_opts();
  t3d_cli_progress_start(&bar);
  ao.user = &bar;
  ao.segment = !no_segment;
  ao.whole_series = !seg_centre;
  if (show_progress || progress_json) signal(SIGINT, on_sigint);
  if (progress_json) signal(SIGTERM, on_sigint);
  s = t3d_analyze(model, vol, &ao, progress_json ? progress_json_cb : show_progress ? progress_cb : NULL,
                  &interrupted, &res);
  if (t3d_cli_gpu_failed(s, model_path, threads, precision, &be, &model)) /* once more, on the CPU */
    s = t3d_analyze(model, vol, &ao, progress_json ? progress_json_cb : show_progress ? progress_cb : NULL,
                    &interrupted, &res);
  if (show_progress || progress_json) signal(SIGINT, SIG_DFL);
  if (progress_json) signal(SIGTERM, SIG_DFL);
  if (s != T3D_OK) goto fail;
  if (mask) {
    if (!res->labels) {
      s = t3d_error(T3D_ERR_UNSUPPORTED, "--mask: the model has no segmentation head (or --no-segment was given)");
      goto fail;
    }
    if ((s = write_mask(vol, res->labels, mask)) != T3D_OK) goto fail;
  }

  if (json) {
    json_t *j = result_json(model, model_path, vol, res, mask);
    char pdesc[64];
    if (j) json_object_set_new(j, "precision", json_string(t3d_cli_precision_desc(be, pdesc, sizeof pdesc)));
    char *txt = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    if (!txt) {
      json_decref(j);
      s = t3d_error(T3D_ERR_NOMEM, "cannot format the JSON result");
      goto fail;
    }
    puts(txt);
    free(txt);
    json_decref(j);
  } else {
    printf("Series   %s  %s  %lldx%lldx%lld voxels, %.3gx%.3gx%.3g mm\n", vol->meta.series_uid, vol->meta.modality,
           (long long)vol->nx, (long long)vol->ny, (long long)vol->nz, vol->spacing[0], vol->spacing[1],
           vol->spacing[2]);
    if (vol->geometry_note[0]) printf("Geometry %s\n", vol->geometry_note);
    printf("Model    %s (%s)\n\n", t3d_model_config_of(model)->name, model_path);
    if (res->nfindings) {
      bool any_auroc = false, any_unassessed = false;
      for (size_t i = 0; i < res->nfindings; i++) {
        any_auroc |= res->findings[i].has_heldout_auroc;
        any_unassessed |= !t3d_finding_assessed(&res->findings[i]);
      }
      if (any_auroc)
        printf("%-32s %11s %15s\n", _("Finding"), _("probability"), _("held-out AUROC"));
      else
        printf("%-32s %11s\n", _("Finding"), _("probability"));
      for (size_t i = 0; i < res->nfindings; i++) {
        const t3d_finding_result *f = &res->findings[i];
        printf("%-32s %11.3f", t3d_finding_display_name(f->name), f->probability);
        if (f->has_heldout_auroc) printf(" %15.2f", f->heldout_auroc);
        else if (any_auroc) printf(" %15s", "-");
        if (!t3d_finding_assessed(f)) printf("  %s", _("not assessed"));
        printf("\n");
      }
      if (res->familiar < 0)
        printf(_("Not assessed: the series is unlike every case the model was trained on (below), so none of "
                 "these probabilities says present or absent.\n"));
      else if (any_unassessed)
        printf(_("Not assessed: the model ranks held-out cases too poorly for these (AUROC below %.2f) for their "
                 "probabilities to say present or absent.\n"),
               T3D_FINDING_MIN_AUROC);
    } else if (res->zero_shot_status != T3D_OK) {
      printf(_("Findings: %s\n"), res->zero_shot_message);
    }
    char caution[512];
    if (res->familiar < 0)
      printf("\n%s\n", t3d_familiarity_caution(res, caution, sizeof caution));
    else if (res->familiar > 0)
      printf(_("\nFamiliarity: nearest training case at cosine %.3f (threshold %.3f)\n"), res->familiarity,
             res->familiarity_threshold);
    if (res->volumes_ml) {
      printf("\n%-32s %11s\n", _("Structure"), _("volume mL"));
      for (size_t cl = 1; cl < res->nclasses; cl++)
        printf("%-32s %11.1f\n", t3d_class_display_name(t3d_model_class_name(model, cl)), res->volumes_ml[cl]);
    }
    printf(_("\nTimings (ms): preprocess %.0f, encoder %.0f, projection %.1f, zero-shot %.1f, decoder %.0f, labels "
             "%.0f, total %.0f\n"),
           res->ms.preprocess, res->ms.encoder, res->ms.projection, res->ms.zero_shot, res->ms.decoder,
           res->ms.labels, res->ms.total);
    if (mask) printf(_("Mask written to %s\n"), mask);
  }
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_progress_end(&bar);
  t3d_cli_fail(s, what);
cleanup:
  t3d_analysis_result_free(res);
  t3d_model_free(model);
  t3d_backend_free(be);
  t3d_volume_free(vol);
  t3d_dicom_scan_free(scan);
  return rc;
}
