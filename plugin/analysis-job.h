/* t3d_analysis_job: "Analyze series" run as a worker process (plugin/worker.h): builds the
 * `t3d analyze --json --progress-json --mask` command line for the series' files, gives the
 * worker a private temporary folder, parses the JSON result and reads the mask back as a label
 * volume on the series grid. Knows nothing of GTK or of the viewer ABI.
 *
 * The worker program is $T3D_WORKER when set (tests use it to supply ground-truth labels),
 * else the t3d engine (t3d_worker_engine_path). */
#ifndef T3D_PLUGIN_ANALYSIS_JOB_H
#define T3D_PLUGIN_ANALYSIS_JOB_H

#include <gio/gio.h>

#include "core/base/volume.h"
#include "plugin/worker.h"

G_BEGIN_DECLS

typedef struct {
  char *name;
  double probability;
  gboolean assessed; /* FALSE: not assessed (t3d_finding_assessed: a held-out AUROC too low to say
                      * present or absent, or a series unlike the model's training cases) */
} t3d_job_finding;

typedef struct {
  char *name;
  double ml;
} t3d_job_volume;

typedef struct {
  t3d_job_finding *findings; /* highest probability first */
  size_t nfindings;
  char *findings_unavailable; /* why there are no findings (no text encoder), or NULL */
  int familiar;               /* 1, -1 (unlike the training cases: findings unreliable), 0 not checked */
  double familiarity, familiarity_threshold; /* nearest training-case cosine and the model's threshold */
  char **classes;             /* label value -> class name, NULL-terminated; [0] is background */
  size_t nclasses;
  t3d_job_volume *volumes;    /* per class except background, in class order */
  size_t nvolumes;
  t3d_volume *labels;         /* label values on the series grid, or NULL without segmentation */
  char *series_uid, *model_name;
  char *json;                 /* the worker's result as printed */
  double wall_ms, first_progress_ms; /* as t3d_worker_result */
} t3d_analysis_outcome;

void t3d_analysis_outcome_free(t3d_analysis_outcome *o); /* NULL is a no-op */

/* Parses the JSON that `t3d analyze --json` prints (findings sorted here; labels not read).
 * Returns NULL and sets *error (G_IO_ERROR_INVALID_DATA) when it is not such a result. */
t3d_analysis_outcome *t3d_analysis_outcome_parse(const char *json, GError **error);

typedef struct {
  const char *const *files; /* the series' DICOM files, NULL-terminated (required) */
  const char *series_uid;   /* passed as --series when set */
  const char *model_path;   /* --model when set, else the engine's default */
  const char *device;       /* "auto", "cpu" or "gpu": exported as T3D_DEVICE to the worker */
  int threads;              /* --threads when > 0 */
} t3d_analysis_job_params;

/* A private (0700) temporary folder holding series/, one symbolic link per file, so that an
 * engine command that takes a folder reads exactly the open series. Returns the folder (g_free
 * after t3d_series_links_remove), or NULL with *error. */
char *t3d_series_links_new(const char *const *files, GError **error);
/* Removes what t3d_series_links_new made and any plain files the worker left at its top. */
void t3d_series_links_remove(const char *dir);

typedef struct t3d_analysis_job t3d_analysis_job;

/* outcome is the callee's (t3d_analysis_outcome_free) and non-NULL exactly when the worker
 * succeeded and its result read; otherwise message says why, for a person, and cancelled
 * tells a cancel apart from a failure. */
typedef void (*t3d_analysis_job_done_fn)(void *user, t3d_analysis_outcome *outcome, gboolean cancelled,
                                         const char *message);

/* Starts the worker; progress and done run on the calling thread's main context.
 * Returns NULL and sets *error when it cannot be started. */
t3d_analysis_job *t3d_analysis_job_start(const t3d_analysis_job_params *p, t3d_worker_progress_fn progress,
                                         t3d_analysis_job_done_fn done, void *user, GError **error);
void t3d_analysis_job_cancel(t3d_analysis_job *job); /* SIGTERM, SIGKILL after 2 s */
gboolean t3d_analysis_job_running(const t3d_analysis_job *job);
/* Kills a running worker, removes the temporary folder, frees; no callback afterwards. */
void t3d_analysis_job_free(t3d_analysis_job *job);

G_END_DECLS

#endif
