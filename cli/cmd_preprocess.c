/* `t3d preprocess`: the training cache. Every case of a phantom manifest (DIR/manifest.jsonl) is
 * loaded from its DICOM series and preprocessed exactly as `t3d analyze` does for the model
 * (t3d_model_preprocess_params), and its label volume is put on the same model grid (nearest
 * voxel). Not a trainer and not an augmenter: it writes what inference would see, once. */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <libintl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/base/status.h"
#include "core/dicom/dicom.h"
#include "core/dicom/nifti.h"
#include "core/model/model.h"
#include "core/model/modelfile.h"
#include "core/model/preprocess.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d preprocess --data DIR (--model FILE | --config NAME) -o CACHE [--progress]\n"
                "Preprocesses every case of DIR/manifest.jsonl (as written by `t3d phantom`) for the model:\n"
                "the DICOM series exactly as `t3d analyze` feeds it to the encoder, and the label volume\n"
                "on the same model grid (nearest voxel). Writes a safetensors file with\n"
                "input f32[N,Z,Y,X], labels u8[N,Z,Y,X] and the case names (metadata t3d.cases).\n\n"
                "  --data DIR      phantom folder with manifest.jsonl\n"
                "  --model FILE    take the preprocessing from this model file's config\n"
                "  --config NAME   or from a built-in config (t3d-tiny, t3d-r50)\n"
                "  -o, --output F  cache file to write\n"
                "  --progress      show progress on stderr\n"));
}

/* Loads the one CT series under dir. */
static t3d_status load_series(const char *dir, t3d_volume **out)
{
  t3d_dicom_scan *scan = NULL;
  t3d_status s = t3d_dicom_scan_path(dir, &scan);
  if (s != T3D_OK) goto cleanup;
  if (t3d_dicom_scan_series_count(scan) != 1) {
    s = t3d_error(T3D_ERR_FORMAT, "%s: expected one DICOM series, found %zu", dir, t3d_dicom_scan_series_count(scan));
    goto cleanup;
  }
  s = t3d_dicom_load_series(scan, 0, NULL, out);
cleanup:
  t3d_dicom_scan_free(scan);
  return s;
}

/* Labels (NIfTI on the series grid) onto the model grid: the series geometry, nearest voxel, ids
 * carried through the [0,255] -> [0,1] window and back. */
static t3d_status labels_to_model(const t3d_volume *series, const char *path, const t3d_preprocess_params *pp,
                                  uint8_t *dst)
{
  t3d_volume *lab = NULL;
  t3d_tensor *x = NULL;
  t3d_preprocess_transform tr;
  t3d_status s = t3d_nifti_read(path, &lab, NULL);
  if (s != T3D_OK) goto cleanup;
  if (lab->nx != series->nx || lab->ny != series->ny || lab->nz != series->nz) {
    s = t3d_error(T3D_ERR_SHAPE, "%s: labels are %lldx%lldx%lld voxels, the series %lldx%lldx%lld", path,
                  (long long)lab->nx, (long long)lab->ny, (long long)lab->nz, (long long)series->nx,
                  (long long)series->ny, (long long)series->nz);
    goto cleanup;
  }
  for (int a = 0; a < 3; a++)
    if (fabs(lab->origin[a] - series->origin[a]) > 0.05 || fabs(lab->spacing[a] - series->spacing[a]) > 1e-3) {
      s = t3d_error(T3D_ERR_FORMAT, "%s: label geometry differs from the series (origin/spacing axis %d)", path, a);
      goto cleanup;
    }
  memcpy(lab->spacing, series->spacing, sizeof lab->spacing);
  memcpy(lab->origin, series->origin, sizeof lab->origin);
  memcpy(lab->dir, series->dir, sizeof lab->dir);
  t3d_preprocess_params lp = *pp;
  lp.interp = T3D_INTERP_NEAREST;
  lp.norm = T3D_NORM_MINMAX;
  lp.hu_min = 0.0f;
  lp.hu_max = 255.0f;
  lp.pad_value = 0.0f;
  if ((s = t3d_preprocess(lab, &lp, &x, &tr)) != T3D_OK) goto cleanup;
  size_t n = t3d_tensor_numel(x);
  const float *v = x->data;
  for (size_t i = 0; i < n; i++) dst[i] = (uint8_t)lrintf(v[i] * 255.0f);
cleanup:
  t3d_tensor_free(x);
  t3d_volume_free(lab);
  return s;
}

static t3d_status read_manifest(const char *dir, json_t **cases)
{
  char path[4096];
  char *line = NULL;
  size_t cap = 0;
  t3d_status s = T3D_OK;
  snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
  FILE *f = fopen(path, "r");
  if (!f) return t3d_error(T3D_ERR_NOT_FOUND, "%s: cannot open", path);
  *cases = json_array();
  int lineno = 0;
  while (getline(&line, &cap, f) > 0) {
    lineno++;
    if (line[strspn(line, " \t\r\n")] == '\0') continue;
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    if (!o || !json_is_object(o) || !json_is_string(json_object_get(o, "series")) ||
        !json_is_string(json_object_get(o, "labels")) || !json_is_string(json_object_get(o, "case"))) {
      json_decref(o);
      s = t3d_error(T3D_ERR_FORMAT, "%s:%d: not a manifest line (needs case, series, labels)", path, lineno);
      break;
    }
    json_array_append_new(*cases, o);
  }
  free(line);
  fclose(f);
  if (s == T3D_OK && json_array_size(*cases) == 0) s = t3d_error(T3D_ERR_FORMAT, "%s: no cases", path);
  if (s != T3D_OK) {
    json_decref(*cases);
    *cases = NULL;
  }
  return s;
}

int t3d_cmd_preprocess(int argc, char **argv)
{
  const char *data = NULL, *model_path = NULL, *config = NULL, *output = NULL;
  int show_progress = 0, c;
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"model", required_argument, NULL, 'm'},
                                       {"config", required_argument, NULL, 'c'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"progress", no_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'd': data = optarg; break;
    case 'm': model_path = optarg; break;
    case 'c': config = optarg; break;
    case 'o': output = optarg; break;
    case 'p': show_progress = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!data || !output || (!model_path == !config) || optind != argc) {
    usage(stderr);
    return 2;
  }

  t3d_model_config cfg;
  t3d_modelfile *mf = NULL;
  json_t *cases = NULL, *names = json_array();
  float *input = NULL;
  uint8_t *labels = NULL;
  t3d_volume *vol = NULL;
  t3d_tensor *x = NULL;
  t3d_modelfile_writer *w = NULL;
  t3d_status s;
  int rc = 1;

  if (model_path) {
    if ((s = t3d_modelfile_open(&mf, model_path)) != T3D_OK) goto fail;
    if (!t3d_modelfile_config(mf)) {
      s = t3d_error(T3D_ERR_FORMAT, "%s: no t3d.config", model_path);
      goto fail;
    }
    cfg = *t3d_modelfile_config(mf);
  } else if ((s = t3d_model_config_builtin(&cfg, config)) != T3D_OK) {
    goto fail;
  }
  t3d_preprocess_params pp = t3d_model_preprocess_params(&cfg);
  if ((s = read_manifest(data, &cases)) != T3D_OK) goto fail;
  size_t n = json_array_size(cases);
  size_t per = (size_t)(pp.shape[0] * pp.shape[1] * pp.shape[2]);
  input = malloc(n * per * sizeof *input);
  labels = malloc(n * per);
  if (!input || !labels || !names) {
    s = t3d_error(T3D_ERR_NOMEM, "out of memory for %zu cases", n);
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *o = json_array_get(cases, i);
    char path[4096];
    t3d_preprocess_transform tr;
    snprintf(path, sizeof path, "%s/%s", data, json_string_value(json_object_get(o, "series")));
    if ((s = load_series(path, &vol)) != T3D_OK) goto fail;
    if ((s = t3d_preprocess(vol, &pp, &x, &tr)) != T3D_OK) goto fail;
    memcpy(input + i * per, x->data, per * sizeof *input);
    snprintf(path, sizeof path, "%s/%s", data, json_string_value(json_object_get(o, "labels")));
    if ((s = labels_to_model(vol, path, &pp, labels + i * per)) != T3D_OK) goto fail;
    json_array_append(names, json_object_get(o, "case"));
    t3d_tensor_free(x);
    x = NULL;
    t3d_volume_free(vol);
    vol = NULL;
    if (show_progress) fprintf(stderr, "\r%s %zu/%zu", _("preprocess"), i + 1, n);
  }
  if (show_progress) fprintf(stderr, "\n");

  int64_t shape[4] = {(int64_t)n, pp.shape[0], pp.shape[1], pp.shape[2]};
  t3d_tensor ti = t3d_tensor_view(T3D_F32, 4, shape, input);
  t3d_tensor tl = t3d_tensor_view(T3D_U8, 4, shape, labels);
  json_t *ppj = json_pack("{s:[f,f,f], s:[I,I,I], s:f, s:f, s:f}", "spacing_mm", pp.spacing_mm[0], pp.spacing_mm[1],
                          pp.spacing_mm[2], "shape", (json_int_t)pp.shape[0], (json_int_t)pp.shape[1],
                          (json_int_t)pp.shape[2], "hu_min", (double)pp.hu_min, "hu_max", (double)pp.hu_max,
                          "pad_value", (double)pp.pad_value);
  if ((s = t3d_modelfile_writer_new(&w)) != T3D_OK || (s = t3d_modelfile_writer_add(w, "input", &ti, false)) != T3D_OK ||
      (s = t3d_modelfile_writer_add(w, "labels", &tl, false)) != T3D_OK ||
      (s = t3d_modelfile_writer_set_json(w, "t3d.cases", names)) != T3D_OK ||
      (s = t3d_modelfile_writer_set_json(w, "t3d.preprocess", ppj)) != T3D_OK ||
      (s = t3d_modelfile_writer_write(w, output)) != T3D_OK) {
    json_decref(ppj);
    goto fail;
  }
  json_decref(ppj);
  rc = 0;
  goto cleanup;
fail:
  rc = t3d_cli_fail(s, "preprocess");
cleanup:
  t3d_modelfile_writer_free(w);
  t3d_tensor_free(x);
  t3d_volume_free(vol);
  free(input);
  free(labels);
  json_decref(cases);
  json_decref(names);
  t3d_modelfile_close(mf);
  return rc;
}
