/* The plugin's state shared by plugin.c (analysis, overlay, preferences), search.c (similar
 * cases) and export.c (draft report). Internal to t3d-plugin.so: not an API. */
#ifndef T3D_PLUGIN_INTERNAL_H
#define T3D_PLUGIN_INTERNAL_H

#include "plugin/analysis-job.h"
#include "plugin/prefs.h"
#include "plugin/worker.h"
#include "ui/analysis-panel.h"
#include "ui/export-dialog.h"
#include "ui/overlay-controls.h"
#include "ui/search-panel.h"
#include "viewer-glue/t3d-plugin-abi.h"

typedef struct {
  t3d_host *host;
  const t3d_host_funcs *f;
  GtkWidget *toolbar_analyze, *menu_analyze, *menu_export, *menu_prefs;
  GtkWidget *side, *search_side; /* side panel pages (host items) */
  T3dAnalysisPanel *analysis;
  T3dOverlayControls *overlay;
  T3dSearchPanel *search;
  unsigned listener;
  t3d_analysis_job *job;
  t3d_analysis_outcome *result; /* of the open series, or NULL */
  t3d_prefs *prefs;
  char *prefs_path;
  GtkWidget *prefs_dialog; /* while open */
  /* similar cases */
  t3d_worker *search_worker;
  GPtrArray *hits; /* search_hit*, by rank */
  t3d_worker *thumb_worker; /* `t3d thumbnail` for hits[thumb_next] */
  guint thumb_next;
  char *thumb_dir;          /* private folder for the pictures while they are made */
  /* export */
  T3dExportDialog *export_dialog;
  t3d_worker *export_worker;  /* `t3d report --format all` for the open dialog */
  char *export_links;         /* its temporary folder: series/ links, report/ output */
  char *export_message;       /* why the report could not be made, or NULL */
  gboolean export_ready;
} t3d_plugin;

/* search.c */
void t3d_plugin_search_init(t3d_plugin *pl);
void t3d_plugin_search_cleanup(t3d_plugin *pl);

/* export.c */
void t3d_plugin_export_activate(t3d_host *host, void *user);
void t3d_plugin_export_cleanup(t3d_plugin *pl);

/* plugin.c: the argv prefix [engine, command] plus --model/--index from the preferences when
 * set (each only where the command takes it). g_ptr_array_unref; NULL-terminate before use. */
GPtrArray *t3d_plugin_engine_argv(t3d_plugin *pl, const char *command, gboolean with_model, gboolean with_index);
/* The message for a command that failed: "not in this build" for an unknown command. g_free. */
char *t3d_plugin_command_failure(const char *command, const t3d_worker_result *r);

#endif
