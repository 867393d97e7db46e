/* "Analyze series" as a worker process (see analysis-job.h): temporary folder with links to
 * the series' files and the mask, command line, result parsing, mask reading.
 * Not the display of results: plugin.c hands them to ui/ and the host. */
#include "config.h"

#include "plugin/analysis-job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <jansson.h>

#include "core/dicom/nifti.h"

#define CANCEL_GRACE_MS 2000

struct t3d_analysis_job {
  t3d_worker *worker;
  char *tmpdir;     /* private (0700) folder: series/ links and mask.nii.gz */
  char *mask_path;
  t3d_worker_progress_fn progress;
  t3d_analysis_job_done_fn done;
  void *user;
};

void t3d_analysis_outcome_free(t3d_analysis_outcome *o)
{
  if (!o) return;
  for (size_t i = 0; i < o->nfindings; i++) g_free(o->findings[i].name);
  g_free(o->findings);
  for (size_t i = 0; i < o->nvolumes; i++) g_free(o->volumes[i].name);
  g_free(o->volumes);
  g_strfreev(o->classes);
  g_free(o->findings_unavailable);
  g_free(o->series_uid);
  g_free(o->model_name);
  g_free(o->json);
  t3d_volume_free(o->labels);
  g_free(o);
}

static int by_probability_desc(const void *a, const void *b)
{
  double pa = ((const t3d_job_finding *)a)->probability, pb = ((const t3d_job_finding *)b)->probability;
  return pa < pb ? 1 : pa > pb ? -1 : strcmp(((const t3d_job_finding *)a)->name, ((const t3d_job_finding *)b)->name);
}

t3d_analysis_outcome *t3d_analysis_outcome_parse(const char *json, GError **error)
{
  json_error_t je;
  json_t *root = json_loads(json, 0, &je);
  t3d_analysis_outcome *o = NULL;
  if (!json_is_object(root)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("The analysis process did not return a result (line %d: %s)."), je.line, je.text);
    goto cleanup;
  }
  json_t *find = json_object_get(root, "findings"), *vols = json_object_get(root, "volumes_ml"),
         *classes = json_object_get(root, "classes");
  if (!json_is_array(find) || (vols && !json_is_object(vols)) || (classes && !json_is_array(classes))) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("The analysis result lacks its findings or volumes; engine and plugin versions may differ."));
    goto cleanup;
  }
  o = g_new0(t3d_analysis_outcome, 1);
  o->findings = g_new0(t3d_job_finding, json_array_size(find) + 1);
  for (size_t i = 0; i < json_array_size(find); i++) {
    json_t *f = json_array_get(find, i);
    const char *name = json_string_value(json_object_get(f, "name"));
    json_t *p = json_object_get(f, "probability");
    if (!name || !json_is_number(p)) continue;
    json_t *assessed = json_object_get(f, "assessed"); /* absent from older engines: assessed */
    o->findings[o->nfindings].name = g_strdup(name);
    o->findings[o->nfindings].assessed = !json_is_false(assessed);
    o->findings[o->nfindings++].probability = json_number_value(p);
  }
  qsort(o->findings, o->nfindings, sizeof *o->findings, by_probability_desc);
  const char *why = json_string_value(json_object_get(root, "findings_unavailable"));
  o->findings_unavailable = why ? g_strdup(why) : NULL;
  json_t *fam = json_object_get(root, "familiarity");
  json_t *fam_ok = json_object_get(fam, "familiar");
  o->familiar = !json_is_boolean(fam_ok) ? 0 : json_is_true(fam_ok) ? 1 : -1;
  o->familiarity = json_number_value(json_object_get(fam, "nearest_training_cosine"));
  o->familiarity_threshold = json_number_value(json_object_get(fam, "threshold"));

  /* Class order: "classes" when present, else the order of volumes_ml (jansson keeps it). */
  GPtrArray *names = g_ptr_array_new();
  if (classes) {
    for (size_t i = 0; i < json_array_size(classes); i++) {
      const char *n = json_string_value(json_array_get(classes, i));
      g_ptr_array_add(names, g_strdup(n ? n : "?"));
    }
  } else if (vols) {
    const char *key;
    json_t *v;
    json_object_foreach(vols, key, v) g_ptr_array_add(names, g_strdup(key));
  }
  o->nclasses = names->len;
  g_ptr_array_add(names, NULL);
  o->classes = (char **)g_ptr_array_free(names, FALSE);
  o->volumes = g_new0(t3d_job_volume, o->nclasses + 1);
  for (size_t c = 1; c < o->nclasses; c++) {
    json_t *v = vols ? json_object_get(vols, o->classes[c]) : NULL;
    if (!json_is_number(v)) continue;
    o->volumes[o->nvolumes].name = g_strdup(o->classes[c]);
    o->volumes[o->nvolumes++].ml = json_number_value(v);
  }
  const char *uid = json_string_value(json_object_get(json_object_get(root, "series"), "series_uid"));
  const char *model = json_string_value(json_object_get(json_object_get(root, "model"), "name"));
  o->series_uid = g_strdup(uid ? uid : "");
  o->model_name = g_strdup(model ? model : "");
  o->json = g_strdup(json);
cleanup:
  json_decref(root);
  return o;
}

void t3d_series_links_remove(const char *dir)
{
  if (!dir) return;
  char *sub = g_build_filename(dir, "series", NULL);
  const char *levels[] = {sub, dir};
  for (int i = 0; i < 2; i++) {
    GDir *gd = g_dir_open(levels[i], 0, NULL);
    const char *n;
    while (gd && (n = g_dir_read_name(gd))) {
      char *p = g_build_filename(levels[i], n, NULL);
      g_unlink(p);
      g_free(p);
    }
    if (gd) g_dir_close(gd);
    g_rmdir(levels[i]);
  }
  g_free(sub);
}

char *t3d_series_links_new(const char *const *files, GError **error)
{
  char *dir = NULL, *series_dir = NULL;
  if (!files || !files[0]) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _("The open series has no files to analyze."));
    return NULL;
  }
  if (!(dir = g_dir_make_tmp("t3d-series-XXXXXX", error))) return NULL;
  series_dir = g_build_filename(dir, "series", NULL);
  if (g_mkdir(series_dir, 0700) != 0) {
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), _("Cannot create %s: %s"), series_dir,
                g_strerror(errno));
    goto fail;
  }
  for (size_t i = 0; files[i]; i++) {
    char *abs = g_canonicalize_filename(files[i], NULL);
    char *name = g_strdup_printf("%06zu.dcm", i);
    char *link = g_build_filename(series_dir, name, NULL);
    int rc = symlink(abs, link), e = errno;
    g_free(abs);
    g_free(name);
    g_free(link);
    if (rc != 0) {
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), _("Cannot link the series' files: %s"), g_strerror(e));
      goto fail;
    }
  }
  g_free(series_dir);
  return dir;
fail:
  g_free(series_dir);
  t3d_series_links_remove(dir);
  g_free(dir);
  return NULL;
}

static void on_worker_done(void *user, const t3d_worker_result *r)
{
  t3d_analysis_job *job = user;
  t3d_analysis_outcome *o = NULL;
  char *message = NULL;
  GError *err = NULL;
  if (r->outcome != T3D_WORKER_OK) {
    message = g_strdup(r->message);
    goto done;
  }
  if (!(o = t3d_analysis_outcome_parse(r->out, &err))) {
    message = g_strdup(err->message);
    goto done;
  }
  o->wall_ms = r->wall_ms;
  o->first_progress_ms = r->first_progress_ms;
  if (o->nclasses > 1 && g_file_test(job->mask_path, G_FILE_TEST_EXISTS)) {
    t3d_status s = t3d_nifti_read(job->mask_path, &o->labels, NULL);
    if (s != T3D_OK) {
      message = g_strdup_printf(_("The analysis finished but its mask could not be read: %s: %s"), t3d_strerror(s),
                                t3d_error_detail());
      t3d_analysis_outcome_free(o);
      o = NULL;
    }
  }
done:
  t3d_series_links_remove(job->tmpdir);
  g_clear_pointer(&job->tmpdir, g_free);
  job->done(job->user, o, r->outcome == T3D_WORKER_CANCELLED, message ? message : "");
  g_free(message);
  g_clear_error(&err);
}

static void on_worker_progress(void *user, double f, const char *stage)
{
  t3d_analysis_job *job = user;
  if (job->progress) job->progress(job->user, f, stage);
}

t3d_analysis_job *t3d_analysis_job_start(const t3d_analysis_job_params *p, t3d_worker_progress_fn progress,
                                         t3d_analysis_job_done_fn done, void *user, GError **error)
{
  g_return_val_if_fail(p && p->files && done, NULL);
  t3d_analysis_job *job = g_new0(t3d_analysis_job, 1);
  GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
  char *series_dir = NULL, *dev_env = NULL;
  job->progress = progress;
  job->done = done;
  job->user = user;

  if (!(job->tmpdir = t3d_series_links_new(p->files, error))) goto fail;
  series_dir = g_build_filename(job->tmpdir, "series", NULL);
  job->mask_path = g_build_filename(job->tmpdir, "mask.nii", NULL); /* uncompressed: gzip cost more than the disk */

  const char *worker = g_getenv("T3D_WORKER");
  g_ptr_array_add(argv, g_strdup(worker && *worker ? worker : t3d_worker_engine_path()));
  g_ptr_array_add(argv, g_strdup("analyze"));
  g_ptr_array_add(argv, g_strdup(series_dir));
  g_ptr_array_add(argv, g_strdup("--json"));
  g_ptr_array_add(argv, g_strdup("--progress-json"));
  g_ptr_array_add(argv, g_strdup("--mask"));
  g_ptr_array_add(argv, g_strdup(job->mask_path));
  if (p->series_uid && *p->series_uid) {
    g_ptr_array_add(argv, g_strdup("--series"));
    g_ptr_array_add(argv, g_strdup(p->series_uid));
  }
  if (p->model_path && *p->model_path) {
    g_ptr_array_add(argv, g_strdup("--model"));
    g_ptr_array_add(argv, g_strdup(p->model_path));
  }
  if (p->threads > 0) {
    g_ptr_array_add(argv, g_strdup("--threads"));
    g_ptr_array_add(argv, g_strdup_printf("%d", p->threads));
  }
  g_ptr_array_add(argv, NULL);
  dev_env = g_strdup_printf("T3D_DEVICE=%s", p->device && *p->device ? p->device : "auto");
  const char *env[] = {dev_env, NULL};
  job->worker = t3d_worker_start((const char *const *)argv->pdata, env, on_worker_progress, on_worker_done, job, error);
  if (!job->worker) goto fail;
  g_ptr_array_unref(argv);
  g_free(series_dir);
  g_free(dev_env);
  return job;
fail:
  g_ptr_array_unref(argv);
  g_free(series_dir);
  g_free(dev_env);
  t3d_analysis_job_free(job);
  return NULL;
}

void t3d_analysis_job_cancel(t3d_analysis_job *job)
{
  if (job) t3d_worker_cancel(job->worker, CANCEL_GRACE_MS);
}

gboolean t3d_analysis_job_running(const t3d_analysis_job *job) { return job && t3d_worker_running(job->worker); }

void t3d_analysis_job_free(t3d_analysis_job *job)
{
  if (!job) return;
  t3d_worker_free(job->worker);
  t3d_series_links_remove(job->tmpdir);
  g_free(job->tmpdir);
  g_free(job->mask_path);
  g_free(job);
}
