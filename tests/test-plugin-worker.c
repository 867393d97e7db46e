/* The plugin's worker process and preflight without a display: progress streamed as JSON lines,
 * the result and ground-truth mask read back, failures, crashes and OOM kills reported in words,
 * Cancel (SIGTERM, then SIGKILL for a worker that ignores it), freeing a running job, the real
 * `t3d analyze` as worker, and the header-only preflight refusals.
 * Needs $T3D_BUILDDIR (t3d, tests/fake-worker, the bundled model). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "core/base/status.h"
#include "plugin/analysis-job.h"
#include "plugin/preflight.h"
#include "tests/check.h"

typedef struct {
  GMainLoop *loop;
  int nprogress;
  double last_fraction;
  gboolean monotonic;
  char stage[128];
  gboolean done, cancelled;
  char *message;
  t3d_analysis_outcome *outcome;
  t3d_analysis_job *job;
  gboolean cancel_on_progress;
  gint64 cancel_at_us, done_at_us;
} run_state;

static void on_progress(void *user, double f, const char *stage)
{
  run_state *st = user;
  if (f < st->last_fraction) st->monotonic = FALSE;
  st->last_fraction = f;
  st->nprogress++;
  g_strlcpy(st->stage, stage, sizeof st->stage);
  if (st->cancel_on_progress && !st->cancel_at_us && st->nprogress >= 3) {
    st->cancel_at_us = g_get_monotonic_time();
    t3d_analysis_job_cancel(st->job);
  }
}

static void on_done(void *user, t3d_analysis_outcome *o, gboolean cancelled, const char *message)
{
  run_state *st = user;
  st->done = TRUE;
  st->done_at_us = g_get_monotonic_time();
  st->outcome = o;
  st->cancelled = cancelled;
  st->message = g_strdup(message);
  g_main_loop_quit(st->loop);
}

static gboolean on_timeout(gpointer data)
{
  g_main_loop_quit(data);
  return G_SOURCE_REMOVE;
}

static char **series_files(const char *dir)
{
  GPtrArray *a = g_ptr_array_new();
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name(d))) g_ptr_array_add(a, g_build_filename(dir, n, NULL));
  if (d) g_dir_close(d);
  g_ptr_array_add(a, NULL);
  return (char **)g_ptr_array_free(a, FALSE);
}

/* Runs one analysis job with the fake worker in mode (NULL: the real engine) to its end. */
static void run_job(run_state *st, const char *mode, char **files, gboolean cancel, int timeout_s)
{
  memset(st, 0, sizeof *st);
  st->monotonic = TRUE;
  st->cancel_on_progress = cancel;
  st->loop = g_main_loop_new(NULL, FALSE);
  char *fake = g_build_filename(g_getenv("T3D_BUILDDIR"), "tests", "fake-worker", NULL);
  if (mode) {
    g_setenv("T3D_WORKER", fake, TRUE);
    g_setenv("T3D_FAKE_WORKER_MODE", mode, TRUE);
  } else {
    g_unsetenv("T3D_WORKER");
  }
  t3d_analysis_job_params p = {.files = (const char *const *)files, .device = "cpu", .threads = 2};
  GError *err = NULL;
  st->job = t3d_analysis_job_start(&p, on_progress, on_done, st, &err);
  if (!st->job) {
    fprintf(stderr, "FAIL: cannot start the job (%s): %s\n", mode ? mode : "engine", err->message);
    check_failures++;
    g_clear_error(&err);
  } else {
    guint t = g_timeout_add_seconds((guint)timeout_s, on_timeout, st->loop);
    g_main_loop_run(st->loop);
    if (st->done) g_source_remove(t);
    else fprintf(stderr, "FAIL: %s: no result after %d s\n", mode ? mode : "engine", timeout_s);
  }
  CHECK(st->done);
  g_free(fake);
}

static void run_free(run_state *st)
{
  t3d_analysis_job_free(st->job);
  t3d_analysis_outcome_free(st->outcome);
  g_free(st->message);
  g_main_loop_unref(st->loop);
}

static int count_label(const t3d_volume *v, float label)
{
  int n = 0;
  for (size_t i = 0; v && i < t3d_volume_nvoxels(v); i++) n += v->data[i] == label;
  return n;
}

static void test_truth(char **files)
{
  run_state st;
  run_job(&st, "truth", files, FALSE, 60);
  CHECK(st.outcome != NULL);
  if (!st.outcome) fprintf(stderr, "  message: %s\n", st.message);
  CHECK(st.nprogress >= 3);
  CHECK(st.monotonic);
  CHECK(strcmp(st.stage, "done") == 0);
  if (st.outcome) {
    t3d_analysis_outcome *o = st.outcome;
    CHECK_INT_EQ(o->nfindings, 3);
    CHECK(o->nfindings == 3 && strcmp(o->findings[0].name, "lung nodule") == 0); /* sorted, highest first */
    CHECK(o->nfindings == 3 && o->findings[0].probability >= o->findings[1].probability &&
          o->findings[1].probability >= o->findings[2].probability);
    /* "assessed": false (held-out AUROC too low) reaches the panel; absent reads as assessed */
    CHECK(o->nfindings == 3 && o->findings[0].assessed && strcmp(o->findings[1].name, "emphysema") == 0 &&
          !o->findings[1].assessed && o->findings[2].assessed);
    CHECK_INT_EQ(o->nclasses, 6);
    CHECK(o->nclasses == 6 && strcmp(o->classes[5], "lesion") == 0);
    CHECK_INT_EQ(o->nvolumes, 5);
    CHECK(o->labels != NULL);
    if (o->labels) {
      CHECK_INT_EQ(o->labels->nx, 64);
      CHECK_INT_EQ(o->labels->ny, 64);
      CHECK_INT_EQ(o->labels->nz, 24);
      int lesion = count_label(o->labels, 5), lung = count_label(o->labels, 4);
      CHECK(lesion > 10);
      CHECK(lung > lesion);
      /* The volumes in the result match the mask read back. */
      double ml = o->labels->spacing[0] * o->labels->spacing[1] * o->labels->spacing[2] / 1000.0;
      CHECK_NEAR(o->volumes[4].ml, lesion * ml, 1e-3);
    }
    printf("truth worker: %.0f ms wall, first progress after %.0f ms\n", o->wall_ms, o->first_progress_ms);
  }
  run_free(&st);
}

static void test_engine(char **files)
{
  run_state st;
  char *model = g_build_filename(g_getenv("T3D_BUILDDIR"), "models", "t3d-tiny-init.safetensors", NULL);
  char *engine = g_build_filename(g_getenv("T3D_BUILDDIR"), "t3d", NULL);
  g_setenv("T3D_MODEL", model, TRUE);
  g_setenv("T3D_ENGINE", engine, TRUE);
  g_free(engine);
  run_job(&st, NULL, files, FALSE, 120);
  CHECK(st.outcome != NULL);
  if (!st.outcome) fprintf(stderr, "  engine message: %s\n", st.message);
  CHECK(st.nprogress >= 5);
  CHECK(st.monotonic);
  if (st.outcome) {
    CHECK(st.outcome->nfindings > 0);
    CHECK(st.outcome->nclasses >= 2); /* whatever the bundled model's classes are */
    CHECK(st.outcome->labels != NULL);
    const t3d_volume *l = st.outcome->labels;
    if (l) {
      CHECK_INT_EQ(l->nx * l->ny * l->nz, 64 * 64 * 24);
      float max = 0;
      for (size_t i = 0; i < t3d_volume_nvoxels(l); i++) max = l->data[i] > max ? l->data[i] : max;
      CHECK(max < (float)st.outcome->nclasses); /* every label names a class */
    }
    printf("t3d analyze as worker: %.0f ms wall, first progress after %.0f ms\n", st.outcome->wall_ms,
           st.outcome->first_progress_ms);
  }
  run_free(&st);
  g_free(model);
}

static void test_failures(char **files)
{
  static const struct {
    const char *mode, *want, *also;
  } cases[] = {
    {"fail", "MR, not CT", NULL},                   /* exit 1: stderr is the message */
    {"abort", "signal 6", NULL},                    /* a crash */
    {"oom", "signal 9", "memory"},                  /* what the OOM killer does */
    {"garbage", "did not return a result", NULL},   /* exit 0 without a JSON result */
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    run_state st;
    run_job(&st, cases[i].mode, files, FALSE, 30);
    CHECK(!st.outcome && !st.cancelled);
    CHECK(st.message && strstr(st.message, cases[i].want));
    CHECK(!cases[i].also || (st.message && strstr(st.message, cases[i].also)));
    if (st.message) printf("%s: %s\n", cases[i].mode, st.message);
    run_free(&st);
  }
}

static void test_cancel(char **files)
{
  run_state st;
  run_job(&st, "slow", files, TRUE, 30);
  CHECK(st.cancelled && !st.outcome);
  double ms = (double)(st.done_at_us - st.cancel_at_us) / 1000.0;
  CHECK(ms >= 0 && ms < 1500); /* SIGTERM ends it well before the 2 s SIGKILL grace */
  printf("cancel (SIGTERM honoured): ended %.0f ms after Cancel\n", ms);
  run_free(&st);

  run_job(&st, "stubborn", files, TRUE, 30);
  CHECK(st.cancelled && !st.outcome);
  ms = (double)(st.done_at_us - st.cancel_at_us) / 1000.0;
  CHECK(ms >= 1900 && ms < 5000); /* only the SIGKILL after the grace period ends it */
  printf("cancel (SIGTERM ignored): ended %.0f ms after Cancel\n", ms);
  run_free(&st);
}

/* Freeing a running job kills its worker at once and calls nothing back. */
static void test_free_running(char **files)
{
  run_state st;
  memset(&st, 0, sizeof st);
  st.loop = g_main_loop_new(NULL, FALSE);
  char *fake = g_build_filename(g_getenv("T3D_BUILDDIR"), "tests", "fake-worker", NULL);
  g_setenv("T3D_WORKER", fake, TRUE);
  g_setenv("T3D_FAKE_WORKER_MODE", "stubborn", TRUE);
  t3d_analysis_job_params p = {.files = (const char *const *)files};
  st.job = t3d_analysis_job_start(&p, on_progress, on_done, &st, NULL);
  CHECK(st.job != NULL);
  g_timeout_add(300, on_timeout, st.loop);
  g_main_loop_run(st.loop);
  CHECK(t3d_analysis_job_running(st.job));
  t3d_analysis_job_free(st.job);
  st.job = NULL;
  g_timeout_add(500, on_timeout, st.loop);
  g_main_loop_run(st.loop);
  CHECK(!st.done);
  /* No fake worker left running. */
  char *out = NULL, *pg = g_strdup_printf("pgrep -f -x '%s analyze.*'", fake);
  g_spawn_command_line_sync(pg, &out, NULL, NULL, NULL);
  CHECK(out && out[0] == '\0');
  if (out && *out) fprintf(stderr, "  still running: %s\n", out);
  g_free(out);
  g_free(pg);
  run_free(&st);
  g_free(fake);
}

static void test_start_failure(char **files)
{
  g_setenv("T3D_WORKER", "/nonexistent/t3d-worker", TRUE);
  t3d_analysis_job_params p = {.files = (const char *const *)files};
  GError *err = NULL;
  t3d_analysis_job *job = t3d_analysis_job_start(&p, NULL, on_done, NULL, &err);
  CHECK(job == NULL);
  CHECK(err != NULL);
  if (err) printf("start failure: %s\n", err->message);
  g_clear_error(&err);
  t3d_analysis_job_free(job);
}

static void test_preflight_rules(void)
{
  t3d_preflight_facts f = {.modality = "CT", .slices = 24, .rows = 64, .cols = 64, .spacing = {0.8, 0.8, 2.5},
                           .series_count = 1};
  char *r = t3d_preflight_check(&f);
  CHECK(r == NULL);
  g_free(r);
  /* one fact changed at a time, and the words the reason must contain */
  enum { MODALITY, SLICES, ROWS, SPACING_Z, THIN_SHORT, SERIES };
  static const struct {
    int what;
    double value;
    const char *want;
  } cases[] = {
    {MODALITY, 0, "MR, not CT"},   {SLICES, 3, "3 slices"},           {ROWS, 16, "64x16"},
    {SPACING_Z, 15, "15.0 mm apart"}, {THIN_SHORT, 1.0, "covers only 10 mm"}, {SERIES, 2, "2 series"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    t3d_preflight_facts g = f;
    switch (cases[i].what) {
    case MODALITY: g_strlcpy(g.modality, "MR", sizeof g.modality); break;
    case SLICES: g.slices = (int64_t)cases[i].value; break;
    case ROWS: g.rows = (int)cases[i].value; break;
    case SPACING_Z: g.spacing[2] = cases[i].value; break;
    case THIN_SHORT: g.slices = 10, g.spacing[2] = cases[i].value; break;
    case SERIES: g.series_count = (int)cases[i].value; break;
    }
    r = t3d_preflight_check(&g);
    CHECK(r && strstr(r, cases[i].want));
    printf("preflight: %s\n", r ? r : "(accepted)");
    g_free(r);
  }
}

static void test_preflight_scan(const char *dir, const char *thin_dir, const char *empty_dir)
{
  t3d_preflight_facts f;
  char *why = NULL;
  CHECK(t3d_preflight_scan(dir, NULL, &f, &why));
  CHECK(strcmp(f.modality, "CT") == 0);
  CHECK_INT_EQ(f.slices, 24);
  CHECK_INT_EQ(f.rows, 64);
  char *r = t3d_preflight_check(&f);
  CHECK(r == NULL);
  g_free(r);
  g_free(why);
  CHECK(t3d_preflight_scan(thin_dir, NULL, &f, &why));
  CHECK_INT_EQ(f.slices, 4);
  r = t3d_preflight_check(&f);
  CHECK(r && strstr(r, "4 slices"));
  printf("preflight 4 slices: %s\n", r ? r : "(accepted)");
  g_free(r);
  g_free(why);
  CHECK(!t3d_preflight_scan(empty_dir, NULL, &f, &why));
  CHECK(why && strstr(why, "No DICOM images"));
  printf("preflight empty: %s\n", why ? why : "(none)");
  g_free(why);
}

static gboolean spawn_ok(const char *cmd)
{
  int status = 0;
  GError *err = NULL;
  gboolean ok = g_spawn_command_line_sync(cmd, NULL, NULL, &status, &err) && g_spawn_check_wait_status(status, NULL);
  if (!ok) fprintf(stderr, "FAIL: %s\n", cmd);
  g_clear_error(&err);
  return ok;
}

int main(void)
{
  const char *bd = g_getenv("T3D_BUILDDIR");
  if (!bd) {
    fprintf(stderr, "T3D_BUILDDIR is not set (run through make check)\n");
    return 1;
  }
  char *tmp = g_dir_make_tmp("t3d-test-plugin-worker-XXXXXX", NULL);
  char *ph = g_build_filename(tmp, "phantom", NULL), *thin = g_build_filename(tmp, "thin", NULL),
       *empty = g_build_filename(tmp, "empty", NULL);
  g_mkdir(empty, 0700);
  char *cmd1 = g_strdup_printf("%s/t3d phantom-write %s --noise 0", bd, ph);
  char *cmd2 = g_strdup_printf("%s/t3d phantom-write %s --size 64,64,4", bd, thin);
  char **files = NULL;
  if (!spawn_ok(cmd1) || !spawn_ok(cmd2)) {
    check_failures++;
    goto cleanup;
  }
  files = series_files(ph);
  test_preflight_rules();
  test_preflight_scan(ph, thin, empty);
  test_truth(files);
  test_failures(files);
  test_cancel(files);
  test_free_running(files);
  test_start_failure(files);
  test_engine(files);
cleanup:
  g_strfreev(files);
  char *rm = g_strdup_printf("rm -rf %s", tmp);
  g_spawn_command_line_sync(rm, NULL, NULL, NULL, NULL);
  g_free(rm);
  g_free(cmd1);
  g_free(cmd2);
  g_free(ph);
  g_free(thin);
  g_free(empty);
  g_free(tmp);
  return check_finish("test-plugin-worker");
}
