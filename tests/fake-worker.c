/* A stand-in for `t3d analyze --json --progress-json --mask FILE`, for the plugin's tests: the
 * mode in $T3D_FAKE_WORKER_MODE chooses what it does. Not an engine: "truth" labels a noise-free
 * phantom (`t3d phantom-write --noise 0`) from its exact HU values (lung -850 -> class "lung",
 * nodule 40 -> "lesion"), so GUI tests can check the overlay at the known lesion while the
 * bundled model is untrained.
 *   truth     (default) progress lines, ground-truth mask, analyze-style JSON
 *   slow      progress every 50 ms for 60 s; SIGTERM ends it (cancel tests)
 *   stubborn  ignores SIGTERM, sleeps 60 s (SIGKILL escalation)
 *   abort     one progress line, then abort() (a crash)
 *   oom       one progress line, then SIGKILL to itself (what the OOM killer does)
 *   fail      "t3d: ..." on stderr, exit 1
 *   garbage   exit 0 with a stdout that is not JSON
 *   locate    prints "I J K" (rounded voxel indices) of the lesion's centre, for GUI tests */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dicom/dicom.h"
#include "core/dicom/nifti.h"

static void progress(double f, const char *stage)
{
  fprintf(stderr, "{\"progress\": %.3f, \"stage\": \"%s\"}\n", f, stage);
  fflush(stderr);
}

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int locate(const char *dir)
{
  t3d_dicom_scan *scan = NULL;
  t3d_volume *v = NULL;
  double sum[3] = {0, 0, 0};
  size_t n = 0;
  if (t3d_dicom_scan_path(dir, &scan) == T3D_OK && t3d_dicom_scan_series_count(scan) > 0 &&
      t3d_dicom_load_series(scan, 0, NULL, &v) == T3D_OK)
    for (int64_t k = 0; k < v->nz; k++)
      for (int64_t j = 0; j < v->ny; j++)
        for (int64_t i = 0; i < v->nx; i++)
          if (fabsf(v->data[(k * v->ny + j) * v->nx + i] - 40) < 0.5f) {
            sum[0] += (double)i, sum[1] += (double)j, sum[2] += (double)k;
            n++;
          }
  if (n) printf("%.0f %.0f %.0f\n", sum[0] / (double)n, sum[1] / (double)n, sum[2] / (double)n);
  else fprintf(stderr, "t3d: fake worker: no lesion voxel (40 HU) in %s\n", dir);
  t3d_volume_free(v);
  t3d_dicom_scan_free(scan);
  return n ? 0 : 1;
}

/* unfamiliar: the result also says the series is unlike the model's training cases */
static int truth(const char *dir, const char *mask_path, int unfamiliar)
{
  t3d_dicom_scan *scan = NULL;
  t3d_volume *v = NULL;
  int rc = 1;
  progress(0.0, "loading series");
  if (t3d_dicom_scan_path(dir, &scan) != T3D_OK || t3d_dicom_scan_series_count(scan) == 0 ||
      t3d_dicom_load_series(scan, 0, NULL, &v) != T3D_OK) {
    fprintf(stderr, "t3d: fake worker: cannot load %s: %s\n", dir, t3d_error_detail());
    goto cleanup;
  }
  progress(0.3, "encoder");
  sleep_ms(100);
  progress(0.7, "decoder");
  size_t n = t3d_volume_nvoxels(v), lung = 0, lesion = 0;
  for (size_t i = 0; i < n; i++) {
    float hu = v->data[i];
    float label = fabsf(hu + 850) < 0.5f ? 4 : fabsf(hu - 40) < 0.5f ? 5 : 0;
    lung += label == 4;
    lesion += label == 5;
    v->data[i] = label;
  }
  if (mask_path && t3d_nifti_write(v, mask_path) != T3D_OK) {
    fprintf(stderr, "t3d: fake worker: %s\n", t3d_error_detail());
    goto cleanup;
  }
  progress(1.0, "done");
  double ml = v->spacing[0] * v->spacing[1] * v->spacing[2] / 1000.0;
  printf("{\"series\": {\"series_uid\": \"%s\", \"modality\": \"%s\"},\n"
         " \"model\": {\"name\": \"ground truth (tests/fake-worker)\", \"path\": \"\"},\n"
         " \"findings\": [{\"name\": \"pleural effusion\", \"probability\": 0.12},\n"
         "              {\"name\": \"lung nodule\", \"probability\": 0.91},\n"
         "              {\"name\": \"emphysema\", \"probability\": 0.33, \"heldout_auroc\": 0.62,"
         " \"assessed\": false}],\n"
         " \"classes\": [\"background\", \"liver\", \"kidney\", \"spleen\", \"lung\", \"lesion\"],\n"
         " \"volumes_ml\": {\"background\": 0, \"liver\": 0, \"kidney\": 0, \"spleen\": 0, \"lung\": %.3f, "
         "\"lesion\": %.3f}%s%s%s%s}\n",
         v->meta.series_uid, v->meta.modality, (double)lung * ml, (double)lesion * ml, mask_path ? ", \"mask\": \"" : "",
         mask_path ? mask_path : "", mask_path ? "\"" : "",
         unfamiliar ? ", \"familiarity\": {\"nearest_training_cosine\": 0.42, \"threshold\": 0.81, \"familiar\": false}"
                    : "");
  rc = 0;
cleanup:
  t3d_volume_free(v);
  t3d_dicom_scan_free(scan);
  return rc;
}

int main(int argc, char **argv)
{
  const char *mode = getenv("T3D_FAKE_WORKER_MODE"), *dir = NULL, *mask = NULL;
  if (!mode || !*mode) mode = "truth";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--mask") == 0 && i + 1 < argc) mask = argv[++i];
    else if ((strcmp(argv[i], "--model") == 0 || strcmp(argv[i], "--series") == 0 ||
              strcmp(argv[i], "--threads") == 0) && i + 1 < argc) i++;
    else if (argv[i][0] != '-' && strcmp(argv[i], "analyze") != 0) dir = argv[i];
  }
  if (strcmp(mode, "locate") == 0) return dir ? locate(dir) : 2;
  if (strcmp(mode, "truth") == 0 || strcmp(mode, "unfamiliar") == 0) {
    if (!dir) {
      fprintf(stderr, "t3d: fake worker: no series folder given\n");
      return 2;
    }
    return truth(dir, mask, strcmp(mode, "unfamiliar") == 0);
  }
  if (strcmp(mode, "slow") == 0 || strcmp(mode, "stubborn") == 0) {
    if (strcmp(mode, "stubborn") == 0) signal(SIGTERM, SIG_IGN);
    for (int i = 0; i < 1200; i++) {
      progress(i / 1200.0, "encoder");
      sleep_ms(50);
    }
    return 0;
  }
  if (strcmp(mode, "abort") == 0 || strcmp(mode, "oom") == 0) {
    progress(0.1, "encoder");
    if (strcmp(mode, "oom") == 0) raise(SIGKILL);
    abort();
  }
  if (strcmp(mode, "fail") == 0) {
    fprintf(stderr, "t3d: analyze: unsupported: series 1.2.3 is MR, not CT\n");
    return 1;
  }
  if (strcmp(mode, "garbage") == 0) {
    puts("this is not JSON");
    return 0;
  }
  fprintf(stderr, "t3d: fake worker: unknown mode %s\n", mode);
  return 2;
}
