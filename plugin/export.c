/* "Export draft report" in the plugin: the export dialog (ui/export-dialog.h) with its preview
 * and the file written by `t3d report SERIES --format F --output FILE` in a worker process.
 * Not the report writer (core/report, through the engine); a build without the command gets a
 * message in the dialog. SR and SEG are binary: their preview shows the report's text. */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "plugin/plugin-internal.h"

static void close_dialog(t3d_plugin *pl)
{
  t3d_worker_free(pl->preview_worker);
  t3d_worker_free(pl->export_worker);
  pl->preview_worker = pl->export_worker = NULL;
  if (pl->export_dialog) gtk_widget_destroy(GTK_WIDGET(pl->export_dialog));
  pl->export_dialog = NULL;
  if (pl->preview_path) g_unlink(pl->preview_path);
  g_clear_pointer(&pl->preview_path, g_free);
  t3d_series_links_remove(pl->export_links);
  g_clear_pointer(&pl->export_links, g_free);
  g_clear_pointer(&pl->export_dest, g_free);
}

static t3d_worker *run_report(t3d_plugin *pl, const char *format, const char *output, t3d_worker_done_fn done,
                              GError **error)
{
  GPtrArray *argv = t3d_plugin_engine_argv(pl, "report", TRUE, TRUE);
  g_ptr_array_add(argv, g_build_filename(pl->export_links, "series", NULL));
  g_ptr_array_add(argv, g_strdup("--format"));
  g_ptr_array_add(argv, g_strdup(format));
  g_ptr_array_add(argv, g_strdup("--output"));
  g_ptr_array_add(argv, g_strdup(output));
  g_ptr_array_add(argv, NULL);
  t3d_worker *w = t3d_worker_start((const char *const *)argv->pdata, NULL, NULL, done, pl, error);
  g_ptr_array_unref(argv);
  return w;
}

static void on_preview_done(void *user, const t3d_worker_result *r)
{
  t3d_plugin *pl = user;
  if (!pl->export_dialog) return;
  if (r->outcome != T3D_WORKER_OK) {
    char *m = t3d_plugin_command_failure("report", r);
    t3d_export_dialog_show_message(pl->export_dialog, GTK_MESSAGE_ERROR, m);
    t3d_export_dialog_set_preview(pl->export_dialog, "");
    g_free(m);
    return;
  }
  char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(pl->preview_path, &text, &len, NULL) || !g_utf8_validate(text, (gssize)len, NULL)) {
    t3d_export_dialog_show_message(pl->export_dialog, GTK_MESSAGE_ERROR, _("The report preview could not be read."));
    g_free(text);
    return;
  }
  t3d_export_format f = t3d_export_dialog_get_format(pl->export_dialog);
  if (f == T3D_EXPORT_DICOM_SR || f == T3D_EXPORT_DICOM_SEG) {
    char *with = g_strdup_printf("%s\n\n%s",
                                 f == T3D_EXPORT_DICOM_SR
                                   ? _("[A DICOM Structured Report holding this content will be written.]")
                                   : _("[A DICOM Segmentation of the mask will be written; the report reads:]"),
                                 text);
    g_free(text);
    text = with;
  }
  t3d_export_dialog_set_preview(pl->export_dialog, text);
  g_free(text);
}

static void on_format_changed(T3dExportDialog *d, gpointer data)
{
  t3d_plugin *pl = data;
  t3d_worker_free(pl->preview_worker);
  pl->preview_worker = NULL;
  t3d_export_format f = t3d_export_dialog_get_format(d);
  const char *fmt = f == T3D_EXPORT_MARKDOWN ? "markdown" : "text";
  g_free(pl->preview_path);
  pl->preview_path = g_build_filename(pl->export_links, f == T3D_EXPORT_MARKDOWN ? "preview.md" : "preview.txt", NULL);
  t3d_export_dialog_set_preview(d, _("Preparing the preview…"));
  GError *err = NULL;
  pl->preview_worker = run_report(pl, fmt, pl->preview_path, on_preview_done, &err);
  if (!pl->preview_worker) {
    t3d_export_dialog_show_message(d, GTK_MESSAGE_ERROR, err->message);
    g_clear_error(&err);
  }
}

static void on_export_done(void *user, const t3d_worker_result *r)
{
  t3d_plugin *pl = user;
  if (!pl->export_dialog) return;
  gtk_dialog_set_response_sensitive(GTK_DIALOG(pl->export_dialog), GTK_RESPONSE_ACCEPT, TRUE);
  GStatBuf st;
  if (r->outcome == T3D_WORKER_OK && g_stat(pl->export_dest, &st) == 0 && st.st_size > 0) {
    char *m = g_strdup_printf(_("Draft report written to %s"), pl->export_dest);
    pl->f->set_status(pl->host, m);
    g_free(m);
    close_dialog(pl);
    return;
  }
  char *m = r->outcome == T3D_WORKER_OK
              ? g_strdup_printf(_("The report command finished but %s was not written."), pl->export_dest)
              : t3d_plugin_command_failure("report", r);
  t3d_export_dialog_show_message(pl->export_dialog, GTK_MESSAGE_ERROR, m);
  g_free(m);
}

static void on_response(GtkDialog *d, gint response, gpointer data)
{
  t3d_plugin *pl = data;
  if (response != GTK_RESPONSE_ACCEPT) {
    close_dialog(pl);
    return;
  }
  T3dExportDialog *ed = T3D_EXPORT_DIALOG(d);
  const char *dest = t3d_export_dialog_get_destination(ed);
  if (!*dest || !g_path_is_absolute(dest)) {
    t3d_export_dialog_show_message(ed, GTK_MESSAGE_WARNING, _("Choose a destination file (a full path)."));
    return;
  }
  t3d_worker_free(pl->export_worker);
  g_free(pl->export_dest);
  pl->export_dest = g_strdup(dest);
  GError *err = NULL;
  pl->export_worker = run_report(pl, t3d_export_format_id(t3d_export_dialog_get_format(ed)), dest, on_export_done, &err);
  if (!pl->export_worker) {
    t3d_export_dialog_show_message(ed, GTK_MESSAGE_ERROR, err->message);
    g_clear_error(&err);
    return;
  }
  gtk_dialog_set_response_sensitive(d, GTK_RESPONSE_ACCEPT, FALSE);
}

void t3d_plugin_export_activate(t3d_host *host, void *user)
{
  t3d_plugin *pl = user;
  const t3d_host_series *s = pl->f->series(host);
  if (pl->export_dialog) {
    gtk_window_present(GTK_WINDOW(pl->export_dialog));
    return;
  }
  if (!s || !pl->result) {
    pl->f->show_message(host, GTK_MESSAGE_INFO, _("Analyze the series first: the draft report describes its analysis."));
    return;
  }
  const char **files = g_new0(const char *, s->n_files + 1);
  for (size_t i = 0; i < s->n_files; i++) files[i] = s->files[i];
  GError *err = NULL;
  pl->export_links = t3d_series_links_new(files, &err);
  g_free(files);
  if (!pl->export_links) {
    pl->f->show_message(host, GTK_MESSAGE_ERROR, err->message);
    g_clear_error(&err);
    return;
  }
  const char *docs = g_get_user_special_dir(G_USER_DIRECTORY_DOCUMENTS);
  char *name = g_strdup_printf("t3d-draft-%s", s->patient_id && *s->patient_id ? s->patient_id : "report");
  g_strdelimit(name, "/\\ :", '_');
  GtkWidget *d = t3d_export_dialog_new(pl->f->main_window(host), docs ? docs : g_get_home_dir(), name);
  g_free(name);
  pl->export_dialog = T3D_EXPORT_DIALOG(d);
  g_signal_connect(d, "format-changed", G_CALLBACK(on_format_changed), pl);
  g_signal_connect(d, "response", G_CALLBACK(on_response), pl);
  gtk_widget_show(d);
}

void t3d_plugin_export_cleanup(t3d_plugin *pl) { close_dialog(pl); }
