/* t3d-plugin.so in a minimal host under a display (Xvfb): loads the built module with GModule
 * (only its entry point exported), runs init, opens a noise-free phantom series, then through
 * the real widgets (found by name, pressed with gtk_button_clicked): Analyze -> progress ->
 * overlay labels at the known lesion in the lesion colour, nothing outside the body, findings
 * sorted, legend; Cancel mid-run -> worker killed, panel usable again; Similar cases and Export
 * -> a clear message when the engine lacks the command, or results/files when it has them;
 * cleanup removes every item. The worker is tests/fake-worker ("truth": ground-truth labels
 * from the phantom's exact HU values), since the bundled model is untrained.
 * Exit 77 without a display. Not the GL drawing: the viewer's own test checks pixels. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gmodule.h>
#include <gtk/gtk.h>

#include "core/dicom/dicom.h"
#include "tests/check.h"
#include "ui/panel-parts.h"
#include "viewer-glue/t3d-plugin-abi.h"

typedef struct {
  GtkWidget *window, *toolbar, *menu, *side;
  t3d_volume *vol;
  t3d_host_series series;
  char **files;
  gboolean series_open;
  t3d_host_event_fn listener;
  void *listener_data;
  /* what the plugin did */
  uint8_t *labels;
  t3d_host_rgba colours[256];
  size_t n_colours;
  double opacity;
  int overlay_sets, progress_calls, items;
  gboolean progress_shown;
  char status[512];
} mock_host;

static mock_host M;

static const t3d_host_series *h_series(t3d_host *h) { return M.series_open ? &M.series : NULL; }
static const float *h_voxels(t3d_host *h) { return M.series_open ? M.vol->data : NULL; }
static t3d_plugin_status h_position(t3d_host *h, t3d_host_position *out)
{
  memset(out, 0, sizeof *out);
  return M.series_open ? T3D_PLUGIN_OK : T3D_PLUGIN_NO_SERIES;
}
static t3d_plugin_status h_set_position(t3d_host *h, t3d_plane p, const int64_t v[3]) { return T3D_PLUGIN_OK; }
static t3d_plugin_status h_open_series(t3d_host *h, const char *path, const char *uid) { return T3D_PLUGIN_OK; }
static GtkWindow *h_main_window(t3d_host *h) { return GTK_WINDOW(M.window); }

typedef struct {
  t3d_host_activate_fn fn;
  void *data;
  t3d_host *host;
} activation;

static void on_activate(GtkWidget *w, gpointer d)
{
  activation *a = d;
  a->fn(a->host, a->data);
}

static GtkWidget *h_add_toolbar_button(t3d_host *h, const char *name, const char *icon, const char *label,
                                       t3d_host_activate_fn fn, void *data)
{
  GtkWidget *b = gtk_button_new_with_label(label);
  if (name) gtk_widget_set_name(b, name);
  activation *a = g_new(activation, 1);
  *a = (activation){fn, data, h};
  g_signal_connect_data(b, "clicked", G_CALLBACK(on_activate), a, (GClosureNotify)(void (*)(void))g_free, 0);
  gtk_container_add(GTK_CONTAINER(M.toolbar), b);
  gtk_widget_show(b);
  M.items++;
  return b;
}

static GtkWidget *h_add_menu_item(t3d_host *h, const char *name, const char *label, const char *accel,
                                  t3d_host_activate_fn fn, void *data)
{
  GtkWidget *mi = gtk_menu_item_new_with_mnemonic(label);
  if (name) gtk_widget_set_name(mi, name);
  activation *a = g_new(activation, 1);
  *a = (activation){fn, data, h};
  g_signal_connect_data(mi, "activate", G_CALLBACK(on_activate), a, (GClosureNotify)(void (*)(void))g_free, 0);
  gtk_menu_shell_append(GTK_MENU_SHELL(M.menu), mi);
  M.items++;
  return mi;
}

static GtkWidget *h_add_side_panel(t3d_host *h, GtkWidget *panel, const char *title)
{
  gtk_notebook_append_page(GTK_NOTEBOOK(M.side), panel, gtk_label_new(title));
  gtk_widget_show(panel);
  M.items++;
  return panel;
}

static void h_remove_item(t3d_host *h, GtkWidget *item)
{
  if (item) gtk_widget_destroy(item);
  M.items--;
}

static void h_set_status(t3d_host *h, const char *t) { g_strlcpy(M.status, t ? t : "", sizeof M.status); }
static void h_set_progress(t3d_host *h, double f, const char *t)
{
  M.progress_calls++;
  M.progress_shown = TRUE;
}
static void h_progress_done(t3d_host *h) { M.progress_shown = FALSE; }
static void h_show_message(t3d_host *h, GtkMessageType type, const char *t) { h_set_status(h, t); }

static t3d_plugin_status h_overlay_set(t3d_host *h, const uint8_t *labels, int64_t nx, int64_t ny, int64_t nz,
                                       const t3d_host_rgba *colours, size_t n, double opacity)
{
  if (!M.series_open || nx != M.vol->nx || ny != M.vol->ny || nz != M.vol->nz || n > 256) return T3D_PLUGIN_BAD_ARG;
  g_free(M.labels);
  M.labels = g_memdup2(labels, (gsize)(nx * ny * nz));
  memcpy(M.colours, colours, n * sizeof *colours);
  M.n_colours = n;
  M.opacity = opacity;
  M.overlay_sets++;
  return T3D_PLUGIN_OK;
}
static void h_overlay_opacity(t3d_host *h, double o) { M.opacity = o; }
static void h_overlay_visible(t3d_host *h, unsigned l, gboolean v) {}
static void h_overlay_clear(t3d_host *h) { g_clear_pointer(&M.labels, g_free); }

static unsigned h_add_listener(t3d_host *h, t3d_host_event_fn fn, void *data)
{
  M.listener = fn;
  M.listener_data = data;
  return 1;
}
static void h_remove_listener(t3d_host *h, unsigned id) { M.listener = NULL; }
static unsigned h_call(t3d_host *h, t3d_host_main_fn fn, void *data, GDestroyNotify destroy)
{
  return g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, fn, data, destroy);
}
static void h_cancel_call(t3d_host *h, unsigned id) { g_source_remove(id); }

static const t3d_host_funcs funcs = {
  h_series, h_voxels, h_position, h_set_position, h_open_series, h_main_window, h_add_toolbar_button,
  h_add_menu_item, h_add_side_panel, h_remove_item, h_set_status, h_set_progress, h_progress_done, h_show_message,
  h_overlay_set, h_overlay_opacity, h_overlay_visible, h_overlay_clear, h_add_listener, h_remove_listener, h_call,
  h_cancel_call,
};

/* ---- helpers ---- */

static GtkWidget *find_named(GtkWidget *w, const char *name);

/* The text of every label inside a widget, joined by spaces (newly allocated). */
static void row_text_add(GtkWidget *w, gpointer acc)
{
  if (GTK_IS_LABEL(w)) {
    g_string_append(acc, gtk_label_get_text(GTK_LABEL(w)));
    g_string_append_c(acc, ' ');
  } else if (GTK_IS_CONTAINER(w)) {
    gtk_container_foreach(GTK_CONTAINER(w), row_text_add, acc);
  }
}

static char *row_text(GtkWidget *row)
{
  GString *acc = g_string_new(NULL);
  row_text_add(row, acc);
  return g_string_free(acc, FALSE);
}

typedef struct {
  const char *name;
  GtkWidget *found;
} find_ctx;

static void find_cb(GtkWidget *w, gpointer d)
{
  find_ctx *c = d;
  if (!c->found) c->found = find_named(w, c->name);
}

static GtkWidget *find_named(GtkWidget *w, const char *name)
{
  if (g_strcmp0(gtk_widget_get_name(w), name) == 0) return w;
  if (!GTK_IS_CONTAINER(w)) return NULL;
  find_ctx c = {name, NULL};
  gtk_container_forall(GTK_CONTAINER(w), find_cb, &c);
  return c.found;
}

static GtkWidget *find_anywhere(const char *name)
{
  GList *tops = gtk_window_list_toplevels();
  GtkWidget *w = NULL;
  for (GList *l = tops; l && !w; l = l->next) w = find_named(l->data, name);
  g_list_free(tops);
  return w;
}

static GtkWidget *must_find(const char *name)
{
  GtkWidget *w = find_anywhere(name);
  if (!w) {
    fprintf(stderr, "FAIL: no widget named %s\n", name);
    check_failures++;
  }
  return w;
}

static gboolean quit_loop(gpointer loop)
{
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

/* Runs the main loop until cond() holds or timeout_ms passes; returns cond(). */
static gboolean wait_for(gboolean (*cond)(void), int timeout_ms)
{
  gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  while (!cond() && g_get_monotonic_time() < end) {
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    g_timeout_add(20, quit_loop, loop);
    g_main_loop_run(loop);
    g_main_loop_unref(loop);
  }
  return cond();
}

static gboolean analyze_idle(void)
{
  GtkWidget *b = find_named(M.window, "t3d-analyze-button");
  return b && gtk_widget_get_sensitive(b) && !M.progress_shown;
}
static gboolean overlay_arrived(void) { return M.overlay_sets > 0 && analyze_idle(); }
static gboolean progress_started(void) { return M.progress_calls >= 3; }
static gboolean search_done(void)
{
  GtkWidget *b = find_named(M.window, "t3d-search-button");
  return b && gtk_widget_get_sensitive(b);
}

static gboolean export_settled(void)
{
  GtkWidget *bar = find_anywhere("t3d-export-infobar"), *pv = find_anywhere("t3d-export-preview");
  if (bar && *t3d_ui_infobar_text(bar)) return TRUE;
  if (!pv) return FALSE;
  GtkTextBuffer *b = gtk_text_view_get_buffer(GTK_TEXT_VIEW(pv));
  GtkTextIter s, e;
  gtk_text_buffer_get_bounds(b, &s, &e);
  char *t = gtk_text_buffer_get_text(b, &s, &e, FALSE);
  gboolean done = *t && !g_str_has_prefix(t, "Preparing");
  g_free(t);
  return done;
}

static char *export_dest;
static gboolean export_written(void)
{
  GtkWidget *bar = find_anywhere("t3d-export-infobar");
  return g_file_test(export_dest, G_FILE_TEST_EXISTS) || (bar && *t3d_ui_infobar_text(bar));
}

/* The window as drawn, for people to look at (tests/artifacts/plugin/NAME). */
static void screenshot(GtkWidget *toplevel, const char *name)
{
  for (int i = 0; i < 20; i++) /* let it draw */
    while (gtk_events_pending()) gtk_main_iteration();
  GdkWindow *w = gtk_widget_get_window(toplevel);
  GdkPixbuf *pb = gdk_pixbuf_get_from_window(w, 0, 0, gdk_window_get_width(w), gdk_window_get_height(w));
  char *dir = g_build_filename(g_getenv("T3D_BUILDDIR"), "tests", "artifacts", "plugin", NULL);
  g_mkdir_with_parents(dir, 0755);
  char *path = g_build_filename(dir, name, NULL);
  CHECK(pb && gdk_pixbuf_save(pb, path, "png", NULL, NULL));
  printf("screenshot: %s\n", path);
  if (pb) g_object_unref(pb);
  g_free(path);
  g_free(dir);
}

static void open_series(const char *dir)
{
  t3d_dicom_scan *scan = NULL;
  CHECK_STATUS(t3d_dicom_scan_path(dir, &scan), T3D_OK);
  CHECK_STATUS(t3d_dicom_load_series(scan, 0, NULL, &M.vol), T3D_OK);
  size_t n = t3d_dicom_series_file_count(scan, 0);
  M.files = g_new0(char *, n + 1);
  for (size_t i = 0; i < n; i++) M.files[i] = g_strdup(t3d_dicom_series_file(scan, 0, i));
  t3d_dicom_scan_free(scan);
  t3d_host_series *s = &M.series;
  s->dims[0] = M.vol->nx, s->dims[1] = M.vol->ny, s->dims[2] = M.vol->nz;
  memcpy(s->spacing, M.vol->spacing, sizeof s->spacing);
  memcpy(s->origin, M.vol->origin, sizeof s->origin);
  memcpy(s->direction, M.vol->dir, sizeof s->direction);
  s->series_uid = M.vol->meta.series_uid;
  s->modality = M.vol->meta.modality;
  s->patient_id = M.vol->meta.patient_id;
  s->patient_name = M.vol->meta.patient_name;
  s->source_path = dir;
  s->n_files = n;
  s->files = (const char *const *)M.files;
  M.series_open = TRUE;
  if (M.listener) M.listener(NULL, T3D_HOST_EVENT_SERIES_OPENED, M.listener_data);
}

/* ---- the checks ---- */

static void check_overlay(void)
{
  CHECK_INT_EQ(M.overlay_sets, 1);
  CHECK_INT_EQ(M.n_colours, 6);
  if (!M.labels || M.n_colours != 6) return;
  /* lesion = class 5: red, opaque; background transparent */
  CHECK_INT_EQ(M.colours[0].a, 0);
  CHECK(M.colours[5].r > 200 && M.colours[5].g < 60 && M.colours[5].b < 60 && M.colours[5].a == 255);
  size_t n = (size_t)(M.vol->nx * M.vol->ny * M.vol->nz), lesion = 0, outside_labelled = 0, mismatch = 0;
  for (size_t i = 0; i < n; i++) {
    float hu = M.vol->data[i];
    lesion += M.labels[i] == 5;
    if (hu < -950 && M.labels[i] != 0) outside_labelled++; /* air outside the body */
    if ((fabsf(hu - 40) < 0.5f) != (M.labels[i] == 5)) mismatch++;
  }
  CHECK(lesion > 10);
  CHECK_INT_EQ(outside_labelled, 0);
  CHECK_INT_EQ(mismatch, 0);
  printf("overlay: %zu lesion voxels in the lesion colour (%d,%d,%d), none outside the body\n", lesion,
         M.colours[5].r, M.colours[5].g, M.colours[5].b);
}

static void press(const char *name)
{
  GtkWidget *b = must_find(name);
  if (b) gtk_button_clicked(GTK_BUTTON(b));
}

int main(int argc, char **argv)
{
  const char *bd = g_getenv("T3D_BUILDDIR");
  if (!g_getenv("DISPLAY") || !gtk_init_check(&argc, &argv)) {
    fprintf(stderr, "SKIP: no display (run under xvfb-run)\n");
    return 77;
  }
  if (!bd) return 1;
  char *tmp = g_dir_make_tmp("t3d-test-plugin-host-XXXXXX", NULL);
  char *cfg = g_build_filename(tmp, "config", NULL), *ph = g_build_filename(tmp, "phantom", NULL);
  g_setenv("XDG_CONFIG_HOME", cfg, TRUE);
  char *cmd = g_strdup_printf("%s/t3d phantom-write %s --noise 0", bd, ph);
  int status = 1;
  g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL);
  CHECK_INT_EQ(status, 0);
  /* A small case index for "Similar cases": two series whose reports differ, indexed by the real
   * engine into $XDG_DATA_HOME/t3d/index.db (the plugin's default index). */
  char *data = g_build_filename(tmp, "data", NULL);
  g_setenv("XDG_DATA_HOME", data, TRUE);
  char *idx_cmd = g_strdup_printf(
      "sh -c 'set -e; a=%s/archive/nodule; b=%s/archive/effusion; "
      "%s/t3d phantom-write $a --size 64,64,24 --seed 3 >/dev/null; "
      "%s/t3d phantom-write $b --size 48,48,20 --seed 4 >/dev/null; "
      "echo \"Right lower lobe nodule measuring 12 mm.\" > $a/report.txt; "
      "echo \"Large left pleural effusion.\" > $b/report.txt; "
      "%s/t3d index %s/archive >/dev/null 2>&1'",
      tmp, tmp, bd, bd, bd, tmp);
  status = 1;
  g_spawn_command_line_sync(idx_cmd, NULL, NULL, &status, NULL);
  CHECK_INT_EQ(status, 0);
  g_free(idx_cmd);
  g_free(data);
  char *fake = g_build_filename(bd, "tests", "fake-worker", NULL), *engine = g_build_filename(bd, "t3d", NULL);
  g_setenv("T3D_WORKER", fake, TRUE);
  g_setenv("T3D_ENGINE", engine, FALSE); /* one from the environment wins: try another t3d build */
  g_setenv("T3D_FAKE_WORKER_MODE", "truth", TRUE);

  M.window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
  gtk_window_set_default_size(GTK_WINDOW(M.window), 900, 700);
  GtkWidget *vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  M.toolbar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  M.menu = gtk_menu_new();
  M.side = gtk_notebook_new();
  gtk_box_pack_start(GTK_BOX(vbox), M.toolbar, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(vbox), M.side, TRUE, TRUE, 0);
  gtk_container_add(GTK_CONTAINER(M.window), vbox);
  gtk_widget_show_all(M.window);

  char *so = g_build_filename(bd, "plugin", ".libs", "t3d-plugin.so", NULL);
  GModule *mod = g_module_open(so, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
  t3d_plugin_describe_fn describe = NULL;
  t3d_host host = {T3D_PLUGIN_ABI_VERSION, T3D_PLUGIN_API_VERSION, &funcs, "mock", "0", so, NULL, NULL, NULL};
  CHECK(mod != NULL);
  if (!mod) {
    fprintf(stderr, "  %s\n", g_module_error());
    goto cleanup;
  }
  CHECK(g_module_symbol(mod, T3D_PLUGIN_ENTRY_SYMBOL, (gpointer *)&describe) && describe);
  gpointer internal = NULL;
  CHECK(!g_module_symbol(mod, "t3d_analysis_job_start", &internal)); /* only the entry point is exported */
  if (!describe) goto cleanup;
  const t3d_plugin_descriptor *d = describe();
  CHECK_INT_EQ(d->abi_version, T3D_PLUGIN_ABI_VERSION);
  CHECK(d->api_min <= T3D_PLUGIN_API_VERSION);
  char *msg = NULL;
  CHECK_INT_EQ(d->init(&host, &msg), T3D_PLUGIN_OK);
  g_free(msg);
  CHECK_INT_EQ(M.items, 6); /* toolbar button, 3 menu items, 2 side panels */
  GtkWidget *ab = must_find("t3d-analyze-button");
  CHECK(ab && !gtk_widget_get_sensitive(ab)); /* no series yet */

  /* Analyze through the panel's button: ground-truth overlay, findings sorted */
  open_series(ph);
  CHECK(ab && gtk_widget_get_sensitive(ab));
  press("t3d-analyze-button");
  CHECK(wait_for(overlay_arrived, 30000));
  check_overlay();
  GtkWidget *legend = must_find("t3d-class-toggle-lesion");
  CHECK(legend != NULL);
  GtkWidget *scale = must_find("t3d-opacity-scale");
  if (scale) {
    gtk_range_set_value(GTK_RANGE(scale), 0.8);
    CHECK_NEAR(M.opacity, 0.8, 1e-9);
  }
  GtkWidget *chart = must_find("t3d-findings-chart");
  CHECK(chart && gtk_widget_get_allocated_height(chart) >= 0);
  CHECK(strstr(M.status, "finished") != NULL);
  screenshot(M.window, "plugin-host-analysis.png");

  /* Cancel mid-run: the worker dies, the panel says so, Analyze works again */
  g_setenv("T3D_FAKE_WORKER_MODE", "slow", TRUE);
  M.progress_calls = 0;
  press("t3d-analyze");
  CHECK(wait_for(progress_started, 10000));
  GtkWidget *cancel = must_find("t3d-cancel-button");
  CHECK(cancel && gtk_widget_get_visible(cancel) && gtk_widget_get_sensitive(cancel));
  gint64 t0 = g_get_monotonic_time();
  press("t3d-cancel-button");
  CHECK(wait_for(analyze_idle, 5000));
  double ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
  CHECK(ms < 3000);
  GtkWidget *bar = must_find("t3d-analysis-infobar");
  CHECK(bar && strstr(t3d_ui_infobar_text(bar), "cancelled"));
  printf("cancel: panel idle %.0f ms after Cancel; info bar: %s\n", ms, bar ? t3d_ui_infobar_text(bar) : "");
  g_setenv("T3D_FAKE_WORKER_MODE", "truth", TRUE);
  M.overlay_sets = 0;
  press("t3d-analyze-button"); /* usable again */
  CHECK(wait_for(overlay_arrived, 30000));
  CHECK(bar && !strstr(t3d_ui_infobar_text(bar), "unlike"));

  /* A series unlike the model's training cases: results shown, with the caution in the info bar */
  g_setenv("T3D_FAKE_WORKER_MODE", "unfamiliar", TRUE);
  M.overlay_sets = 0;
  press("t3d-analyze-button");
  CHECK(wait_for(overlay_arrived, 30000));
  CHECK(bar && strstr(t3d_ui_infobar_text(bar), "unlike every case the model was trained on") &&
        strstr(t3d_ui_infobar_text(bar), "0.42"));
  printf("unfamiliar: %s\n", bar ? t3d_ui_infobar_text(bar) : "");

  /* A crashing worker: an error info bar, the host lives on */
  g_setenv("T3D_FAKE_WORKER_MODE", "abort", TRUE);
  press("t3d-analyze-button");
  CHECK(wait_for(analyze_idle, 10000));
  CHECK(bar && strstr(t3d_ui_infobar_text(bar), "stopped unexpectedly"));
  printf("crash: %s\n", bar ? t3d_ui_infobar_text(bar) : "");

  /* Similar cases through the engine: results, or the message that the command is missing */
  GtkWidget *entry = must_find("t3d-search-entry");
  if (entry) gtk_entry_set_text(GTK_ENTRY(entry), "right lung nodule");
  press("t3d-search-button");
  CHECK(wait_for(search_done, 20000));
  GtkWidget *sbar = must_find("t3d-search-infobar"), *list = must_find("t3d-search-results");
  GList *rows = list ? gtk_container_get_children(GTK_CONTAINER(list)) : NULL;
  const char *smsg = sbar ? t3d_ui_infobar_text(sbar) : "";
  /* The nodule case must come first: its report matches the typed words (BM25) and RRF adds both
   * lists, so it outranks the effusion case whatever the embedding order. */
  CHECK_INT_EQ(g_list_length(rows), 2);
  char *first = rows ? row_text(rows->data) : g_strdup("");
  printf("search: %u results; first: %s; message: %s\n", g_list_length(rows), first, smsg);
  CHECK(strstr(first, "64x64x24") != NULL);
  g_free(first);
  gtk_notebook_set_current_page(GTK_NOTEBOOK(M.side), 1);
  if (g_list_length(rows) > 0) {
    GMainLoop *loop = g_main_loop_new(NULL, FALSE); /* thumbnails come one worker at a time */
    g_timeout_add(3000, quit_loop, loop);
    g_main_loop_run(loop);
    g_main_loop_unref(loop);
  }
  screenshot(M.window, "plugin-host-search.png");
  gtk_notebook_set_current_page(GTK_NOTEBOOK(M.side), 0);
  g_list_free(rows);

  /* Export: the dialog previews and writes through `t3d report`, or says the command is missing */
  g_setenv("T3D_FAKE_WORKER_MODE", "truth", TRUE);
  M.overlay_sets = 0;
  press("t3d-analyze-button");
  CHECK(wait_for(overlay_arrived, 30000));
  GtkWidget *mi = must_find("t3d-export-menu");
  if (mi) gtk_menu_item_activate(GTK_MENU_ITEM(mi));
  CHECK(wait_for(export_settled, 60000));
  GtkWidget *ebar = must_find("t3d-export-infobar"), *dest = must_find("t3d-export-destination");
  if (dest) screenshot(gtk_widget_get_toplevel(dest), "plugin-host-export.png");
  export_dest = g_build_filename(tmp, "draft.txt", NULL);
  if (dest) gtk_entry_set_text(GTK_ENTRY(dest), export_dest);
  GtkWidget *dlg = dest ? gtk_widget_get_toplevel(dest) : NULL;
  if (dlg && GTK_IS_DIALOG(dlg)) {
    if (ebar) gtk_widget_hide(ebar);
    gtk_dialog_response(GTK_DIALOG(dlg), GTK_RESPONSE_ACCEPT);
    CHECK(wait_for(export_written, 60000));
  }
  gboolean written = g_file_test(export_dest, G_FILE_TEST_EXISTS);
  const char *emsg = !written && ebar ? t3d_ui_infobar_text(ebar) : "";
  CHECK(written || strstr(emsg, "\"report\" command"));
  printf("export: %s%s\n", written ? "written " : "not written: ", written ? export_dest : emsg);
  g_free(export_dest);

  /* Preferences: the dialog writes $XDG_CONFIG_HOME/t3d/plugin.ini */
  GtkWidget *pm = must_find("t3d-prefs-menu");
  if (pm) gtk_menu_item_activate(GTK_MENU_ITEM(pm));
  GtkWidget *dev = must_find("t3d-prefs-device"), *model = must_find("t3d-prefs-model");
  if (dev && model) {
    CHECK(gtk_combo_box_set_active_id(GTK_COMBO_BOX(dev), "cpu"));
    gtk_entry_set_text(GTK_ENTRY(model), "/opt/models/t3d-r50.safetensors");
    gtk_dialog_response(GTK_DIALOG(gtk_widget_get_toplevel(dev)), GTK_RESPONSE_ACCEPT);
    char *ini = g_build_filename(cfg, "t3d", "plugin.ini", NULL), *text = NULL;
    CHECK(g_file_get_contents(ini, &text, NULL, NULL));
    CHECK(text && strstr(text, "device=cpu") && strstr(text, "model=/opt/models/t3d-r50.safetensors"));
    printf("preferences saved:\n%s", text ? text : "(none)\n");
    g_free(text);
    g_free(ini);
  }
  CHECK(find_anywhere("t3d-prefs-device") == NULL); /* the dialog is gone */

  /* cleanup undoes init */
  d->cleanup(&host);
  CHECK_INT_EQ(M.items, 0);
  CHECK(M.listener == NULL);
cleanup:
  if (mod) g_module_close(mod);
  gtk_widget_destroy(M.window);
  t3d_volume_free(M.vol);
  g_strfreev(M.files);
  g_free(M.labels);
  char *rm = g_strdup_printf("rm -rf %s", tmp);
  g_spawn_command_line_sync(rm, NULL, NULL, NULL, NULL);
  g_free(rm);
  g_free(so);
  g_free(fake);
  g_free(engine);
  g_free(cmd);
  g_free(cfg);
  g_free(ph);
  g_free(tmp);
  return check_finish("test-plugin-host");
}
