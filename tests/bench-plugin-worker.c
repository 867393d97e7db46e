/* What the plugin's worker process costs: "Analyze series" in-process (model load + analysis on
 * the loaded volume) against the worker (process start, series load, model load, analysis,
 * mask written as NIfTI, JSON read, mask read back), and a bare engine start (`t3d version`).
 * Usage: bench-plugin-worker SERIES_DIR MODEL [REPEATS]; T3D_ENGINE names the t3d to run.
 * Not a test: it prints milliseconds (median of REPEATS, default 3). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "core/dicom/dicom.h"
#include "core/model/model.h"
#include "kernels/backend.h"
#include "plugin/analysis-job.h"

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

static double now_ms(void) { return (double)g_get_monotonic_time() / 1000.0; }

typedef struct {
  GMainLoop *loop;
  gboolean ok;
  double wall, first;
} run;

static void on_job(void *user, t3d_analysis_outcome *o, gboolean cancelled, const char *message)
{
  run *r = user;
  r->ok = o != NULL;
  if (!o) fprintf(stderr, "worker failed: %s\n", message);
  t3d_analysis_outcome_free(o);
  g_main_loop_quit(r->loop);
}

static void on_plain(void *user, const t3d_worker_result *res)
{
  run *r = user;
  r->ok = res->outcome == T3D_WORKER_OK;
  r->wall = res->wall_ms;
  g_main_loop_quit(r->loop);
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: %s SERIES_DIR MODEL [REPEATS]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1], *model_path = argv[2];
  int reps = argc > 3 ? atoi(argv[3]) : 3;
  if (reps < 1 || reps > 100) reps = 3;
  double *load = calloc((size_t)reps, sizeof(double)), *ana = calloc((size_t)reps, sizeof(double)),
         *wk = calloc((size_t)reps, sizeof(double)), *start = calloc((size_t)reps, sizeof(double));
  t3d_dicom_scan *scan = NULL;
  t3d_volume *vol = NULL;
  t3d_backend *be = NULL;
  int rc = 1;
  double ts = now_ms();
  if (t3d_dicom_scan_path(dir, &scan) != T3D_OK || t3d_dicom_load_series(scan, 0, NULL, &vol) != T3D_OK) {
    fprintf(stderr, "cannot load %s: %s\n", dir, t3d_error_detail());
    goto cleanup;
  }
  double series_ms = now_ms() - ts; /* the host has paid this already; the worker pays it again */
  t3d_backend_params bp = t3d_backend_default_params();
  if (t3d_backend_cpu_create(&be, &bp) != T3D_OK) goto cleanup;
  for (int i = 0; i < reps; i++) {
    t3d_model *m = NULL;
    t3d_analysis_result *res = NULL;
    double t0 = now_ms();
    if (t3d_model_load(model_path, be, &m) != T3D_OK) goto cleanup;
    double t1 = now_ms();
    t3d_status s = t3d_analyze(m, vol, NULL, NULL, NULL, &res);
    double t2 = now_ms();
    t3d_analysis_result_free(res);
    t3d_model_free(m);
    if (s != T3D_OK) goto cleanup;
    load[i] = t1 - t0;
    ana[i] = t2 - t1;
  }
  size_t nf = t3d_dicom_series_file_count(scan, 0);
  const char **files = g_new0(const char *, nf + 1);
  for (size_t i = 0; i < nf; i++) files[i] = t3d_dicom_series_file(scan, 0, i);
  g_setenv("T3D_MODEL", model_path, TRUE);
  for (int i = 0; i < reps; i++) {
    run r = {g_main_loop_new(NULL, FALSE), FALSE, 0, 0};
    t3d_analysis_job_params p = {.files = files, .model_path = model_path, .device = "cpu"};
    double t0 = now_ms();
    t3d_analysis_job *job = t3d_analysis_job_start(&p, NULL, on_job, &r, NULL);
    if (job) g_main_loop_run(r.loop);
    wk[i] = now_ms() - t0;
    t3d_analysis_job_free(job);
    g_main_loop_unref(r.loop);
    if (!r.ok) goto cleanup;

    run v = {g_main_loop_new(NULL, FALSE), FALSE, 0, 0};
    const char *args[] = {t3d_worker_engine_path(), "version", NULL};
    t3d_worker *w = t3d_worker_start(args, NULL, NULL, on_plain, &v, NULL);
    if (w) g_main_loop_run(v.loop);
    start[i] = v.wall;
    t3d_worker_free(w);
    g_main_loop_unref(v.loop);
  }
  g_free(files);
  double l = median(load, reps), a = median(ana, reps), w = median(wk, reps), st = median(start, reps);
  printf("series %lldx%lldx%lld, %d repeats, medians:\n", (long long)vol->nx, (long long)vol->ny, (long long)vol->nz,
         reps);
  printf("  in-process: model load %.1f ms + analysis %.1f ms = %.1f ms\n", l, a, l + a);
  printf("  worker:     %.1f ms end to end (bare engine start %.1f ms; reading the series again %.1f ms, "
         "first run)\n", w, st, series_ms);
  printf("  worker overhead over in-process load+analysis: %.1f ms (%.0f%%)\n", w - (l + a),
         100.0 * (w - (l + a)) / (l + a));
  rc = 0;
cleanup:
  if (rc) fprintf(stderr, "bench-plugin-worker: failed: %s\n", t3d_error_detail());
  t3d_backend_free(be);
  t3d_volume_free(vol);
  t3d_dicom_scan_free(scan);
  free(load);
  free(ana);
  free(wk);
  free(start);
  return rc;
}
