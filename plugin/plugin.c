/* t3d-plugin.so: implements the viewer plugin ABI (viewer-glue/t3d-plugin-abi.h) and wires the
 * ui/ widgets to the engine: "Analyze series" in a worker process with progress and Cancel, the
 * mask overlay with its controls, findings and volumes, preflight, preferences. Similar cases
 * are search.c, the draft report export.c. Not the engine: everything heavy runs in `t3d`.
 * Tests press its widgets by name (t3d-analyze, t3d-analyze-button, t3d-cancel-button, ...). */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "plugin/plugin-internal.h"
#include "plugin/preflight.h"
#include "ui/prefs-dialog.h"

#ifndef LOCALEDIR
#define LOCALEDIR "/usr/local/share/locale"
#endif

GPtrArray *t3d_plugin_engine_argv(t3d_plugin *pl, const char *command, gboolean with_model, gboolean with_index)
{
  GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(a, g_strdup(t3d_worker_engine_path()));
  g_ptr_array_add(a, g_strdup(command));
  if (with_model && pl->prefs->model_path[0]) {
    g_ptr_array_add(a, g_strdup("--model"));
    g_ptr_array_add(a, g_strdup(pl->prefs->model_path));
  }
  if (with_index && pl->prefs->index_path[0]) {
    g_ptr_array_add(a, g_strdup("--index"));
    g_ptr_array_add(a, g_strdup(pl->prefs->index_path));
  }
  return a;
}

char *t3d_plugin_command_failure(const char *command, const t3d_worker_result *r)
{
  if (r->outcome == T3D_WORKER_FAILED && r->exit_status == 2 && strstr(r->message, "unknown command"))
    return g_strdup_printf(_("This t3d installation has no \"%s\" command (%s); update t3d to use this feature."),
                           command, t3d_worker_engine_path());
  return g_strdup(r->message);
}

/* ---- results ---------------------------------------------------------------------------- */

static void clear_results(t3d_plugin *pl)
{
  t3d_analysis_outcome_free(pl->result);
  pl->result = NULL;
  t3d_analysis_panel_clear_results(pl->analysis);
  t3d_overlay_controls_set_classes(pl->overlay, NULL, 0, 1);
  pl->f->overlay_clear(pl->host);
}

/* The mask as the host wants it: u8 labels on the open series' grid, a colour per class. */
static gboolean show_overlay(t3d_plugin *pl, const t3d_analysis_outcome *o, char **why)
{
  const t3d_host_series *s = pl->f->series(pl->host);
  const t3d_volume *m = o->labels;
  if (!s || !m) return TRUE;
  if (m->nx != s->dims[0] || m->ny != s->dims[1] || m->nz != s->dims[2]) {
    *why = g_strdup_printf(_("The mask's grid (%lldx%lldx%lld) differs from the open series' (%lldx%lldx%lld); it "
                             "is not shown."),
                           (long long)m->nx, (long long)m->ny, (long long)m->nz, (long long)s->dims[0],
                           (long long)s->dims[1], (long long)s->dims[2]);
    return FALSE;
  }
  size_t n = t3d_volume_nvoxels(m), ncol = MIN(o->nclasses, 256);
  uint8_t *labels = g_malloc(n);
  for (size_t i = 0; i < n; i++) {
    float v = m->data[i];
    labels[i] = v >= 1 && v < (float)ncol ? (uint8_t)v : 0;
  }
  t3d_host_rgba *colours = g_new0(t3d_host_rgba, ncol);
  for (size_t c = 1; c < ncol; c++) {
    GdkRGBA rgba;
    t3d_ui_class_color(o->classes[c], c, &rgba);
    colours[c] = (t3d_host_rgba){(uint8_t)(rgba.red * 255 + 0.5), (uint8_t)(rgba.green * 255 + 0.5),
                                 (uint8_t)(rgba.blue * 255 + 0.5), 255};
  }
  t3d_plugin_status st = pl->f->overlay_set(pl->host, labels, m->nx, m->ny, m->nz, colours, ncol,
                                            t3d_overlay_controls_get_opacity(pl->overlay));
  g_free(labels);
  g_free(colours);
  if (st != T3D_PLUGIN_OK) {
    *why = g_strdup(_("The viewer did not accept the mask overlay."));
    return FALSE;
  }
  if (ncol > 1) t3d_overlay_controls_set_classes(pl->overlay, (const char *const *)o->classes + 1, ncol - 1, 1);
  return TRUE;
}

static void show_result(t3d_plugin *pl, t3d_analysis_outcome *o)
{
  const char **names = g_new0(const char *, o->nfindings + o->nvolumes + 1);
  double *vals = g_new0(double, o->nfindings + o->nvolumes + 1);
  gboolean *assessed = g_new0(gboolean, o->nfindings + 1);
  for (size_t i = 0; i < o->nfindings; i++)
    names[i] = o->findings[i].name, vals[i] = o->findings[i].probability, assessed[i] = o->findings[i].assessed;
  t3d_analysis_panel_set_findings(pl->analysis, names, vals, assessed, o->nfindings, o->findings_unavailable);
  g_free(assessed);
  for (size_t i = 0; i < o->nvolumes; i++) names[i] = o->volumes[i].name, vals[i] = o->volumes[i].ml;
  t3d_analysis_panel_set_volumes(pl->analysis, names, vals, o->nvolumes);
  g_free(names);
  g_free(vals);
  char *summary = g_strdup_printf(_("Model %s; analysis took %.1f s. A machine draft: review before use."),
                                  o->model_name, o->wall_ms / 1000.0);
  t3d_analysis_panel_set_summary(pl->analysis, summary);
  g_free(summary);
  char *why = NULL;
  if (!show_overlay(pl, o, &why)) t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_WARNING, why);
  g_free(why);
  if (o->familiar < 0) {
    char *caution = g_strdup_printf(_("This series is unlike every case the model was trained on (similarity %.2f, "
                                      "expected at least %.2f): its findings are not reliable."),
                                    o->familiarity, o->familiarity_threshold);
    t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_WARNING, caution);
    g_free(caution);
  }
  t3d_analysis_outcome_free(pl->result);
  pl->result = o;
}

/* ---- analysis ---------------------------------------------------------------------------- */

static void set_busy(t3d_plugin *pl, gboolean busy)
{
  t3d_analysis_panel_set_running(pl->analysis, busy);
  gtk_widget_set_sensitive(pl->toolbar_analyze, !busy);
  gtk_widget_set_sensitive(pl->menu_analyze, !busy);
  if (!busy) pl->f->progress_done(pl->host);
}

static void on_job_progress(void *user, double f, const char *stage)
{
  t3d_plugin *pl = user;
  t3d_analysis_panel_set_progress(pl->analysis, f, stage);
  pl->f->set_progress(pl->host, f, stage);
}

static void on_job_done(void *user, t3d_analysis_outcome *o, gboolean cancelled, const char *message)
{
  t3d_plugin *pl = user;
  set_busy(pl, FALSE);
  if (o) {
    show_result(pl, o);
    char *st = g_strdup_printf(_("Analysis finished in %.1f s"), o->wall_ms / 1000.0);
    pl->f->set_status(pl->host, st);
    g_free(st);
  } else if (cancelled) {
    t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_INFO, _("The analysis was cancelled."));
    pl->f->set_status(pl->host, _("Analysis cancelled"));
  } else {
    t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_ERROR, message);
    pl->f->set_status(pl->host, _("Analysis failed"));
  }
  /* The finished job stays in pl->job (not running) until the next start or cleanup frees it:
   * freeing it here, inside its own callback, would pull the worker from under its caller. */
}

/* Facts from what the host already holds (headers, geometry): no pixel data is read. */
static char *preflight(t3d_plugin *pl)
{
  const t3d_host_series *s = pl->f->series(pl->host);
  if (!s) return g_strdup(_("Open a CT series to analyze it."));
  if (!s->files || s->n_files == 0) return g_strdup(_("The viewer did not say which files make up this series."));
  t3d_preflight_facts f;
  memset(&f, 0, sizeof f);
  g_strlcpy(f.modality, s->modality ? s->modality : "", sizeof f.modality);
  f.slices = s->dims[2];
  f.rows = (int)s->dims[1];
  f.cols = (int)s->dims[0];
  memcpy(f.spacing, s->spacing, sizeof f.spacing);
  f.series_count = 1;
  return t3d_preflight_check(&f);
}

static void update_can_analyze(t3d_plugin *pl)
{
  char *why = preflight(pl);
  t3d_analysis_panel_set_can_analyze(pl->analysis, why == NULL, why);
  gboolean idle = !t3d_analysis_job_running(pl->job);
  gtk_widget_set_sensitive(pl->toolbar_analyze, idle && why == NULL);
  gtk_widget_set_sensitive(pl->menu_analyze, idle && why == NULL);
  if (why) gtk_widget_set_tooltip_text(pl->toolbar_analyze, why);
  else gtk_widget_set_tooltip_text(pl->toolbar_analyze, _("Analyze series (Ctrl+Shift+A)"));
  g_free(why);
}

static void start_analysis(t3d_plugin *pl)
{
  if (t3d_analysis_job_running(pl->job)) return;
  char *why = preflight(pl);
  if (why) {
    t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_WARNING, why);
    g_free(why);
    return;
  }
  const t3d_host_series *s = pl->f->series(pl->host);
  t3d_analysis_job_free(pl->job); /* the previous, finished one */
  pl->job = NULL;
  t3d_analysis_panel_hide_message(pl->analysis);
  clear_results(pl);
  t3d_analysis_job_params p = {.model_path = pl->prefs->model_path, .device = pl->prefs->device};
  GError *err = NULL;
  /* The ABI gives n_files, not a NULL terminator: our own terminated copy. */
  const char **files = g_new0(const char *, s->n_files + 1);
  for (size_t i = 0; i < s->n_files; i++) files[i] = s->files[i];
  p.files = files;
  pl->job = t3d_analysis_job_start(&p, on_job_progress, on_job_done, pl, &err);
  g_free(files);
  if (!pl->job) {
    char *m = g_strdup_printf(_("The analysis could not be started: %s"), err->message);
    t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_ERROR, m);
    g_free(m);
    g_clear_error(&err);
    return;
  }
  set_busy(pl, TRUE);
  pl->f->set_progress(pl->host, 0, _("Starting the analysis"));
  pl->f->set_status(pl->host, _("Analyzing the series…"));
}

static void on_panel_analyze(T3dAnalysisPanel *p, gpointer data) { start_analysis(data); }
static void on_panel_cancel(T3dAnalysisPanel *p, gpointer data) { t3d_analysis_job_cancel(((t3d_plugin *)data)->job); }
static void on_host_analyze(t3d_host *host, void *user)
{
  start_analysis(user); /* the same path as the panel's button */
}

static void on_overlay_changed(T3dOverlayControls *c, gpointer data)
{
  t3d_plugin *pl = data;
  pl->f->overlay_set_opacity(pl->host, t3d_overlay_controls_get_opacity(c));
  for (size_t l = 1; pl->result && l < pl->result->nclasses && l < 256; l++)
    pl->f->overlay_set_label_visible(pl->host, (unsigned)l, t3d_overlay_controls_class_visible(c, (int)l));
}

/* ---- preferences ------------------------------------------------------------------------- */

static void on_prefs_response(GtkDialog *d, gint response, gpointer data)
{
  t3d_plugin *pl = data;
  if (response == GTK_RESPONSE_ACCEPT) {
    char *model, *device, *index;
    t3d_ui_prefs_dialog_get(GTK_WIDGET(d), &model, &device, &index);
    t3d_prefs_set(&pl->prefs->model_path, model);
    t3d_prefs_set(&pl->prefs->device, device);
    t3d_prefs_set(&pl->prefs->index_path, index);
    g_free(model);
    g_free(device);
    g_free(index);
    GError *err = NULL;
    if (!t3d_prefs_save(pl->prefs, pl->prefs_path, &err)) {
      t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_ERROR, err->message);
      g_clear_error(&err);
    }
  }
  gtk_widget_destroy(GTK_WIDGET(d));
}

static void on_prefs_destroyed(GtkWidget *w, gpointer data) { ((t3d_plugin *)data)->prefs_dialog = NULL; }

/* Not modal-blocking (no gtk_dialog_run): a nested main loop inside the host is the host's
 * business, not a plugin's. */
static void on_prefs(t3d_host *host, void *user)
{
  t3d_plugin *pl = user;
  if (pl->prefs_dialog) {
    gtk_window_present(GTK_WINDOW(pl->prefs_dialog));
    return;
  }
  pl->prefs_dialog = t3d_ui_prefs_dialog_new(pl->f->main_window(host), pl->prefs->model_path, pl->prefs->device,
                                             pl->prefs->index_path);
  g_signal_connect(pl->prefs_dialog, "response", G_CALLBACK(on_prefs_response), pl);
  g_signal_connect(pl->prefs_dialog, "destroy", G_CALLBACK(on_prefs_destroyed), pl);
  gtk_widget_show(pl->prefs_dialog);
}

/* ---- host events ------------------------------------------------------------------------ */

static void on_event(t3d_host *host, t3d_host_event ev, void *user)
{
  t3d_plugin *pl = user;
  if (ev == T3D_HOST_EVENT_SERIES_CLOSED) {
    t3d_analysis_job_free(pl->job); /* kills a running worker: its result would be for another series */
    pl->job = NULL;
    set_busy(pl, FALSE);
    clear_results(pl);
    t3d_analysis_panel_set_can_analyze(pl->analysis, FALSE, _("Open a CT series to analyze it."));
    gtk_widget_set_sensitive(pl->toolbar_analyze, FALSE);
    gtk_widget_set_sensitive(pl->menu_analyze, FALSE);
  } else if (ev == T3D_HOST_EVENT_SERIES_OPENED) {
    clear_results(pl);
    t3d_analysis_panel_hide_message(pl->analysis);
    update_can_analyze(pl);
    char *why = preflight(pl);
    if (why) pl->f->set_status(host, why); /* say it where the user looks, not only in the panel */
    g_free(why);
  }
}

/* ---- init / cleanup ---------------------------------------------------------------------- */

static t3d_plugin_status plugin_init(t3d_host *host, char **message)
{
  static gboolean domain_bound;
  if (!domain_bound) {
    const char *dir = g_getenv("T3D_LOCALEDIR");
    bindtextdomain(GETTEXT_PACKAGE, dir && *dir ? dir : host->locale_dir && *host->locale_dir ? host->locale_dir
                                                                                                 : LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    domain_bound = TRUE;
  }
  t3d_plugin *pl = g_new0(t3d_plugin, 1);
  pl->host = host;
  pl->f = host->funcs;
  pl->prefs_path = t3d_prefs_default_path();
  char *warning = NULL;
  pl->prefs = t3d_prefs_load(pl->prefs_path, &warning);

  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  pl->analysis = T3D_ANALYSIS_PANEL(t3d_analysis_panel_new());
  pl->overlay = T3D_OVERLAY_CONTROLS(t3d_overlay_controls_new());
  gtk_box_pack_start(GTK_BOX(box), GTK_WIDGET(pl->analysis), FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(box), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL), FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(box), GTK_WIDGET(pl->overlay), FALSE, FALSE, 0);
  GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_container_add(GTK_CONTAINER(scroll), box);
  gtk_widget_set_name(scroll, "t3d-side-panel");
  gtk_widget_show_all(scroll);
  g_signal_connect(pl->analysis, "analyze", G_CALLBACK(on_panel_analyze), pl);
  g_signal_connect(pl->analysis, "cancel", G_CALLBACK(on_panel_cancel), pl);
  g_signal_connect(pl->overlay, "changed", G_CALLBACK(on_overlay_changed), pl);

  pl->side = pl->f->add_side_panel(host, scroll, _("T3D analysis"));
  pl->toolbar_analyze = pl->f->add_toolbar_button(host, "t3d-analyze", "system-run-symbolic", _("Analyze series"),
                                                   on_host_analyze, pl);
  pl->menu_analyze =
    pl->f->add_menu_item(host, "t3d-analyze-menu", _("_Analyze series"), "<Primary><Shift>a", on_host_analyze, pl);
  pl->menu_export = pl->f->add_menu_item(host, "t3d-export-menu", _("_Export draft report…"), NULL,
                                         t3d_plugin_export_activate, pl);
  pl->menu_prefs = pl->f->add_menu_item(host, "t3d-prefs-menu", _("T3D _preferences…"), NULL, on_prefs, pl);
  t3d_plugin_search_init(pl);
  pl->listener = pl->f->add_listener(host, on_event, pl);
  host->plugin_data = pl;

  if (warning) t3d_analysis_panel_show_message(pl->analysis, GTK_MESSAGE_WARNING, warning);
  g_free(warning);
  if (pl->f->series(host)) update_can_analyze(pl);
  else t3d_analysis_panel_set_can_analyze(pl->analysis, FALSE, _("Open a CT series to analyze it."));
  *message = NULL;
  return T3D_PLUGIN_OK;
}

static void plugin_cleanup(t3d_host *host)
{
  t3d_plugin *pl = host->plugin_data;
  if (!pl) return;
  t3d_analysis_job_free(pl->job);
  if (pl->prefs_dialog) gtk_widget_destroy(pl->prefs_dialog);
  t3d_plugin_export_cleanup(pl);
  t3d_plugin_search_cleanup(pl);
  pl->f->remove_listener(host, pl->listener);
  pl->f->overlay_clear(host);
  pl->f->progress_done(host);
  pl->f->remove_item(host, pl->menu_prefs);
  pl->f->remove_item(host, pl->menu_export);
  pl->f->remove_item(host, pl->menu_analyze);
  pl->f->remove_item(host, pl->toolbar_analyze);
  pl->f->remove_item(host, pl->side);
  t3d_analysis_outcome_free(pl->result);
  t3d_prefs_free(pl->prefs);
  g_free(pl->prefs_path);
  g_free(pl);
  host->plugin_data = NULL;
}

static const t3d_plugin_descriptor descriptor = {
  .abi_version = T3D_PLUGIN_ABI_VERSION,
  .api_min = 1,
  .name = "T3D",
  .version = PACKAGE_VERSION,
  .description = "T3D analysis: organ and lesion masks, findings, similar cases, draft reports",
  .init = plugin_init,
  .cleanup = plugin_cleanup,
};

T3D_PLUGIN_DEFINE(descriptor)
