/* t3d_model API on the bundled t3d-tiny model: analysis of a synthetic CT volume (result
 * fields, progress monotonic to 1, labels on the series grid, volumes summing to the series
 * volume), refusal of a non-CT modality, cancellation, t3d_encode_text's status, and the
 * familiarity check against a calib.reference written into a copy of the model file (and its
 * refusal of incomplete or malformed references); with the bundled trained model, segmentation
 * of a series larger than the model grid (whole series against the centre window alone). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/model.h"
#include "core/model/modelfile.h"
#include "tests/check.h"

static double last_fraction = -1;
static int progress_calls, progress_backwards;

static void on_progress(void *user, double f, const char *stage)
{
  (void)user;
  (void)stage;
  if (f < last_fraction - 1e-12) progress_backwards++;
  last_fraction = f;
  progress_calls++;
}

static int cancel_at_calls;
static volatile int cancel_flag;
static void cancel_progress(void *user, double f, const char *stage)
{
  (void)user;
  (void)f;
  (void)stage;
  if (++cancel_at_calls == 3) cancel_flag = 1;
}

/* Writes a copy of src with calib.reference = rows [n][dim] (NULL: none) and t3d.calibration =
 * meta (NULL: none) to dst. */
static t3d_status write_calibrated(const char *src, const char *dst, const float *rows, int64_t n, int64_t dim,
                                   const char *meta)
{
  t3d_modelfile *mf = NULL;
  t3d_modelfile_writer *w = NULL;
  t3d_status s;
  if ((s = t3d_modelfile_open(&mf, src)) != T3D_OK) return s;
  if ((s = t3d_modelfile_writer_new(&w)) != T3D_OK) goto done;
  for (size_t i = 0; i < t3d_modelfile_tensor_count(mf); i++) {
    const char *name;
    const t3d_tensor *t = t3d_modelfile_tensor_at(mf, i, &name);
    if ((s = t3d_modelfile_writer_add(w, name, t, true)) != T3D_OK) goto done;
  }
  for (size_t i = 0; i < t3d_modelfile_metadata_count(mf); i++) {
    const char *value, *key = t3d_modelfile_metadata_at(mf, i, &value);
    if ((s = t3d_modelfile_writer_set_metadata(w, key, value)) != T3D_OK) goto done;
  }
  if (rows) {
    int64_t shape[2] = {n, dim};
    t3d_tensor t = t3d_tensor_view(T3D_F32, 2, shape, (void *)rows);
    if ((s = t3d_modelfile_writer_add(w, "calib.reference", &t, true)) != T3D_OK) goto done;
  }
  if (meta && (s = t3d_modelfile_writer_set_metadata(w, "t3d.calibration", meta)) != T3D_OK) goto done;
  s = t3d_modelfile_writer_write(w, dst);
done:
  t3d_modelfile_writer_free(w);
  t3d_modelfile_close(mf);
  return s;
}

/* The nearest-cosine check: a reference holding the volume's own embedding calls it familiar
 * (cosine 1), one holding its opposite and an orthogonal vector does not; bad references are
 * refused at load with a reason. (The "pooled" space is checked end to end by
 * tests/test-train-inputs.sh, whose export writes one.) */
static void test_familiarity(const char *path, t3d_backend *be, const t3d_volume *v, const float *emb, int dim)
{
  char dst[] = "/tmp/t3d-calib-XXXXXX";
  int fd = mkstemp(dst);
  CHECK(fd >= 0);
  if (fd < 0) return;
  close(fd);
  float *rows = calloc(3 * (size_t)dim, sizeof(float));
  int k = 0; /* a unit vector orthogonal to emb: e_k minus its projection */
  for (int i = 1; i < dim; i++) k = fabsf(emb[i]) < fabsf(emb[k]) ? i : k;
  double dot = emb[k], nn = 0;
  for (int i = 0; i < dim; i++) {
    rows[i] = -emb[i];
    rows[dim + i] = (float)((i == k) - dot * emb[i]);
    rows[2 * dim + i] = 2.5f * emb[i]; /* not normalised: the loader normalises */
    nn += (double)rows[dim + i] * rows[dim + i];
  }
  for (int i = 0; i < dim; i++) rows[dim + i] = (float)(rows[dim + i] / sqrt(nn));
  const char *meta = "{\"threshold\":0.99,\"cases\":2}";
  struct {
    int64_t n;
    int want; /* familiar */
  } cases[2] = {{2, -1}, {3, 1}};
  for (int c = 0; c < 2; c++) {
    t3d_model *m = NULL;
    t3d_analysis_result *r = NULL;
    CHECK_STATUS(write_calibrated(path, dst, rows, cases[c].n, dim, meta), T3D_OK);
    CHECK_STATUS(t3d_model_load(dst, be, &m), T3D_OK);
    if (!m) continue;
    CHECK_INT_EQ((long long)t3d_model_calibration_cases(m), cases[c].n);
    t3d_analyze_opts o = t3d_analyze_default_opts();
    o.segment = false;
    CHECK_STATUS(t3d_analyze(m, v, &o, NULL, NULL, &r), T3D_OK);
    if (r) {
      CHECK_INT_EQ(r->familiar, cases[c].want);
      CHECK_NEAR(r->familiarity, cases[c].want > 0 ? 1.0 : 0.0, 1e-4);
      CHECK_NEAR(r->familiarity_threshold, 0.99, 1e-12);
    }
    t3d_analysis_result_free(r);
    t3d_model_free(m);
  }
  /* refused: reference without threshold, threshold without reference, wrong width, bad threshold */
  t3d_model *bad = NULL;
  CHECK_STATUS(write_calibrated(path, dst, rows, 2, dim, NULL), T3D_OK);
  CHECK_STATUS(t3d_model_load(dst, be, &bad), T3D_ERR_FORMAT);
  CHECK(strstr(t3d_error_detail(), "incomplete") != NULL);
  CHECK_STATUS(write_calibrated(path, dst, NULL, 0, dim, meta), T3D_OK);
  CHECK_STATUS(t3d_model_load(dst, be, &bad), T3D_ERR_FORMAT);
  CHECK_STATUS(write_calibrated(path, dst, rows, 3, dim - 1, meta), T3D_OK);
  CHECK_STATUS(t3d_model_load(dst, be, &bad), T3D_ERR_SHAPE);
  CHECK_STATUS(write_calibrated(path, dst, rows, 2, dim, "{\"threshold\":2}"), T3D_OK);
  CHECK_STATUS(t3d_model_load(dst, be, &bad), T3D_ERR_FORMAT);
  CHECK(strstr(t3d_error_detail(), "threshold") != NULL);
  CHECK_STATUS(write_calibrated(path, dst, rows, 2, dim, "{\"threshold\":0.5,\"space\":\"report\"}"), T3D_OK);
  CHECK_STATUS(t3d_model_load(dst, be, &bad), T3D_ERR_FORMAT);
  CHECK(strstr(t3d_error_detail(), "space") != NULL);
  CHECK_STATUS(write_calibrated(path, dst, rows, 2, dim, "{\"threshold\":0.5,\"space\":\"embedding\"}"), T3D_OK);
  CHECK_STATUS(t3d_model_load(dst, be, &bad), T3D_OK); /* the default, named */
  t3d_model_free(bad);
  bad = NULL;
  CHECK(bad == NULL);
  unlink(dst);
  free(rows);
}

/* Whole-series segmentation with the bundled (trained) model: a body longer and wider than the
 * 384 mm model grid. Beyond the centre window the windows label the body (the centre window
 * alone leaves it background); well inside it both give the same labels. */
static void test_whole_series(t3d_backend *be)
{
  const char *src = getenv("T3D_SRCDIR");
  char path[4096];
  t3d_model *m = NULL;
  t3d_volume *v = NULL;
  t3d_analysis_result *whole = NULL, *centre = NULL;
  t3d_analyze_opts o = t3d_analyze_default_opts();

  snprintf(path, sizeof path, "%s/models/t3d-tiny.safetensors", src ? src : "..");
  CHECK_STATUS(t3d_model_load(path, be, &m), T3D_OK);
  /* 100 x 60 x 110 voxels of 4.5 x 5 x 4 mm: 450 x 300 x 440 mm (z and x beyond 384 mm, y not) */
  CHECK_STATUS(t3d_volume_new(&v, 100, 60, 110), T3D_OK);
  if (!m || !v) goto cleanup;
  v->spacing[0] = 4.5;
  v->spacing[1] = 5.0;
  v->spacing[2] = 4.0;
  snprintf(v->meta.modality, sizeof v->meta.modality, "CT");
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        const double x = (i - 49.5) / 48.0, y = (j - 29.5) / 26.0, r = x * x + y * y;
        float hu = -1000.0f; /* an elliptic cylinder through every slice: fat, muscle, soft tissue */
        if (r < 1) hu = r > 0.8 ? -100.0f : (r > 0.6 ? 50.0f : 40.0f + (float)((i + j + k) % 5));
        v->data[(k * v->ny + j) * v->nx + i] = hu;
      }
  last_fraction = -1;
  progress_calls = progress_backwards = 0;
  CHECK_STATUS(t3d_analyze(m, v, &o, on_progress, NULL, &whole), T3D_OK);
  CHECK_INT_EQ(progress_backwards, 0); /* through the five windows */
  CHECK_NEAR(last_fraction, 1.0, 1e-12);
  o.whole_series = false;
  CHECK_STATUS(t3d_analyze(m, v, &o, NULL, NULL, &centre), T3D_OK);
  if (!whole || !centre || !whole->labels || !centre->labels) goto cleanup;
  /* x: 75 resampled voxels -> windows at 0 and 11; z: 73 -> 0 and 9; y: 50, padded, one */
  CHECK_INT_EQ(whole->seg_windows, 5);
  CHECK_INT_EQ(centre->seg_windows, 1);
  CHECK(memcmp(whole->embedding, centre->embedding, (size_t)whole->dim * sizeof(float)) == 0);
  {
    const t3d_preprocess_transform *tr = &centre->transform;
    const uint8_t *lw = whole->labels->data, *lc = centre->labels->data;
    int64_t out_body = 0, out_centre = 0, out_n = 0, in_n = 0, in_diff = 0;
    for (int64_t k = 0; k < v->nz; k++)
      for (int64_t j = 0; j < v->ny; j++)
        for (int64_t i = 0; i < v->nx; i++) {
          const int64_t p[3] = {i, j, k};
          const size_t at = (size_t)((k * v->ny + j) * v->nx + i);
          bool outside = false, deep = true;
          for (int a = 0; a < 3; a++) {
            const double q = tr->series_to_model[a][a] * (double)p[a] + tr->series_to_model[a][3];
            outside |= q < -0.5 || q > (double)tr->model_shape[2 - a] - 0.5;
            deep &= q >= 1.0 && q <= (double)tr->model_shape[2 - a] - 2.0;
          }
          const double x = (i - 49.5) / 48.0, y = (j - 29.5) / 26.0;
          if (outside && x * x + y * y < 0.5) { /* inside the body, beyond the centre window */
            out_n++;
            out_body += lw[at] != 0;
            out_centre += lc[at] != 0;
          }
          if (deep && tr->series_to_model[1][1] * (double)j + tr->series_to_model[1][3] >= 0) {
            in_n++;
            in_diff += lw[at] != lc[at];
          }
        }
    fprintf(stderr, "whole series: %lld of %lld body voxels beyond the centre window labelled (centre alone: %lld); "
                    "%lld of %lld well inside it differ\n",
            (long long)out_body, (long long)out_n, (long long)out_centre, (long long)in_diff, (long long)in_n);
    CHECK(out_n > 10000);
    CHECK_INT_EQ(out_centre, 0);
    CHECK(out_body > out_n * 9 / 10);
    CHECK(in_n > 100000);
    CHECK(in_diff * 10000 <= in_n); /* the same probabilities; the weights' last bits may differ */
  }
cleanup:
  t3d_analysis_result_free(whole);
  t3d_analysis_result_free(centre);
  t3d_volume_free(v);
  t3d_model_free(m);
}

int main(void)
{
  const char *build = getenv("T3D_BUILDDIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/models/t3d-tiny-init.safetensors", build ? build : ".");
  t3d_backend_params bp = t3d_backend_default_params();
  bp.threads = 2;
  t3d_backend *be = NULL;
  t3d_model *m = NULL;
  t3d_volume *v = NULL;
  t3d_analysis_result *r = NULL;

  CHECK_STATUS(t3d_backend_cpu_create(&be, &bp), T3D_OK);
  CHECK_STATUS(t3d_model_load(path, be, &m), T3D_OK);
  if (!m) return check_finish("test-model-api");
  CHECK_STATUS(t3d_model_load("/nonexistent/model.safetensors", be, &(t3d_model *){NULL}), T3D_ERR_NOT_FOUND);
  CHECK_INT_EQ((long long)t3d_model_class_count(m), 9);
  CHECK(t3d_model_class_name(m, 0) != NULL);
  CHECK(t3d_model_logit_scale(m) > 1.0f);

  /* a 70x60x25 volume at 1x1.2x4 mm: body-like ellipsoid of soft tissue in air */
  CHECK_STATUS(t3d_volume_new(&v, 70, 60, 25), T3D_OK);
  v->spacing[0] = 1.0;
  v->spacing[1] = 1.2;
  v->spacing[2] = 4.0;
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        double x = (i - 35) / 30.0, y = (j - 30) / 25.0, z = (k - 12) / 11.0;
        v->data[(k * v->ny + j) * v->nx + i] = x * x + y * y + z * z < 1 ? 40.0f + (float)(i % 7) : -1000.0f;
      }

  snprintf(v->meta.modality, sizeof v->meta.modality, "MR");
  CHECK_STATUS(t3d_analyze(m, v, NULL, NULL, NULL, &r), T3D_ERR_UNSUPPORTED);
  CHECK(strstr(t3d_error_detail(), "CT only") != NULL);
  snprintf(v->meta.modality, sizeof v->meta.modality, "CT");

  t3d_analyze_opts o = t3d_analyze_default_opts();
  CHECK_STATUS(t3d_analyze(m, v, &o, on_progress, NULL, &r), T3D_OK);
  if (r) {
    double n2 = 0, total = 0;
    for (int i = 0; i < r->dim; i++) n2 += (double)r->embedding[i] * r->embedding[i];
    CHECK_INT_EQ(r->dim, 128);
    CHECK_NEAR(sqrt(n2), 1.0, 1e-5);
    CHECK(r->labels != NULL);
    if (r->labels) {
      CHECK_INT_EQ((long long)r->labels->shape[0], 25);
      CHECK_INT_EQ((long long)r->labels->shape[1], 60);
      CHECK_INT_EQ((long long)r->labels->shape[2], 70);
    }
    CHECK_INT_EQ((long long)r->nclasses, 9);
    for (size_t c = 0; c < r->nclasses; c++) total += r->volumes_ml[c];
    /* every series voxel whose model voxel exists gets a class: at most the series volume */
    CHECK(total <= 70 * 60 * 25 * 1.0 * 1.2 * 4.0 / 1000 + 1e-6);
    CHECK(total > 0);
    if (t3d_model_has_text(m)) {
      CHECK(r->nfindings > 0);
      for (size_t i = 0; i < r->nfindings; i++)
        CHECK(r->findings[i].probability >= 0 && r->findings[i].probability <= 1);
    } else {
      CHECK_INT_EQ(r->zero_shot_status, T3D_ERR_UNSUPPORTED);
      CHECK(strstr(r->zero_shot_message, "unavailable") != NULL);
    }
    CHECK(r->ms.total >= r->ms.encoder && r->ms.encoder > 0);
    CHECK(r->arena_bytes > 0);
    CHECK_INT_EQ(r->familiar, 0); /* this file has no familiarity reference */
    CHECK(isnan(r->familiarity));
    test_familiarity(path, be, v, r->embedding, r->dim);
  }
  CHECK(progress_calls >= 8);
  CHECK_INT_EQ(progress_backwards, 0);
  CHECK_NEAR(last_fraction, 1.0, 1e-12);
  t3d_analysis_result_free(r);
  r = NULL;

  /* cancellation: the flag set from the progress callback stops the analysis */
  CHECK_STATUS(t3d_analyze(m, v, &o, cancel_progress, &cancel_flag, &r), T3D_ERR_CANCELLED);
  CHECK(r == NULL);
  cancel_flag = 1;
  CHECK_STATUS(t3d_analyze(m, v, &o, NULL, &cancel_flag, &r), T3D_ERR_CANCELLED);
  cancel_flag = 0;

  /* text */
  float *emb = malloc(128 * sizeof(float));
  t3d_status ts = t3d_encode_text(m, "liver lesion", emb);
  if (t3d_model_has_text(m)) {
    CHECK_INT_EQ(ts, T3D_OK);
  } else {
    CHECK_INT_EQ(ts, T3D_ERR_UNSUPPORTED);
  }
  free(emb);

  t3d_volume_free(v);
  t3d_model_free(m);
  test_whole_series(be);
  t3d_backend_free(be);
  return check_finish("test-model-api");
}
