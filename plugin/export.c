/* "Export draft report" in the plugin: the export dialog (ui/export-dialog.h) over one run of
 * `t3d report SERIES --format all -o FOLDER` in a worker process (report.txt, report.md,
 * report-sr.dcm, report-seg.dcm), started when the dialog opens: the preview shows the text or
 * Markdown file, Export copies the chosen file to the destination. One analysis serves every
 * format. Not the report writer (core/report, through the engine); a build without the command
 * gets a message in the dialog. SR and SEG are binary: their preview shows the report's text. */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "plugin/plugin-internal.h"

/* What `t3d report --format all` writes, per t3d_export_format. */
static const char *const report_files[] = {"report.txt", "report.md", "report-sr.dcm", "report-seg.dcm"};

static char *report_file(t3d_plugin *pl, t3d_export_format f)
{
  return g_build_filename(pl->export_links, "report", report_files[(unsigned)f % G_N_ELEMENTS(report_files)], NULL);
}

static void close_dialog(t3d_plugin *pl)
{
  t3d_worker_free(pl->export_worker);
  pl->export_worker = NULL;
  if (pl->export_dialog) gtk_widget_destroy(GTK_WIDGET(pl->export_dialog));
  pl->export_dialog = NULL;
  if (pl->export_links) {
    char *dir = g_build_filename(pl->export_links, "report", NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(report_files); i++) {
      char *p = g_build_filename(dir, report_files[i], NULL);
      g_unlink(p);
      g_free(p);
    }
    g_rmdir(dir);
    g_free(dir);
  }
  t3d_series_links_remove(pl->export_links);
  g_clear_pointer(&pl->export_links, g_free);
  g_clear_pointer(&pl->export_message, g_free);
  pl->export_ready = FALSE;
}

static void show_preview(t3d_plugin *pl)
{
  T3dExportDialog *d = pl->export_dialog;
  if (!d) return;
  if (pl->export_message) {
    t3d_export_dialog_set_preview(d, "");
    t3d_export_dialog_show_message(d, GTK_MESSAGE_ERROR, pl->export_message);
    return;
  }
  if (!pl->export_ready) {
    t3d_export_dialog_set_preview(d, _("Preparing the draft report…"));
    return;
  }
  t3d_export_format f = t3d_export_dialog_get_format(d);
  char *path = report_file(pl, f == T3D_EXPORT_MARKDOWN ? T3D_EXPORT_MARKDOWN : T3D_EXPORT_TEXT), *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, NULL) || !g_utf8_validate(text, (gssize)len, NULL)) {
    t3d_export_dialog_show_message(d, GTK_MESSAGE_ERROR, _("The report preview could not be read."));
    t3d_export_dialog_set_preview(d, "");
  } else if (f == T3D_EXPORT_DICOM_SR || f == T3D_EXPORT_DICOM_SEG) {
    char *with = g_strdup_printf("%s\n\n%s",
                                 f == T3D_EXPORT_DICOM_SR
                                   ? _("[A DICOM Structured Report holding this content will be written.]")
                                   : _("[A DICOM Segmentation of the mask will be written; the report reads:]"),
                                 text);
    t3d_export_dialog_set_preview(d, with);
    g_free(with);
  } else {
    t3d_export_dialog_set_preview(d, text);
  }
  g_free(text);
  g_free(path);
}

static void on_report_done(void *user, const t3d_worker_result *r)
{
  t3d_plugin *pl = user;
  if (r->outcome == T3D_WORKER_OK) pl->export_ready = TRUE;
  else pl->export_message = t3d_plugin_command_failure("report", r);
  show_preview(pl);
}

static void on_format_changed(T3dExportDialog *d, gpointer data) { show_preview(data); }

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
  if (!pl->export_ready) {
    t3d_export_dialog_show_message(ed, GTK_MESSAGE_INFO,
                                   pl->export_message ? pl->export_message
                                                      : _("The draft report is still being prepared; try again in a "
                                                          "moment."));
    return;
  }
  char *src = report_file(pl, t3d_export_dialog_get_format(ed));
  GFile *from = g_file_new_for_path(src), *to = g_file_new_for_path(dest);
  GError *err = NULL;
  if (g_file_copy(from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &err)) {
    char *m = g_strdup_printf(_("Draft report written to %s"), dest);
    pl->f->set_status(pl->host, m);
    g_free(m);
    close_dialog(pl);
  } else {
    char *m = g_strdup_printf(_("The draft report could not be written: %s"), err->message);
    t3d_export_dialog_show_message(ed, GTK_MESSAGE_ERROR, m);
    g_free(m);
    g_clear_error(&err);
  }
  g_object_unref(from);
  g_object_unref(to);
  g_free(src);
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

  char *out = g_build_filename(pl->export_links, "report", NULL);
  g_mkdir(out, 0700);
  g_free(out);
  GPtrArray *argv = t3d_plugin_engine_argv(pl, "report", TRUE, FALSE);
  g_ptr_array_add(argv, g_build_filename(pl->export_links, "series", NULL));
  g_ptr_array_add(argv, g_strdup("--format"));
  g_ptr_array_add(argv, g_strdup("all"));
  g_ptr_array_add(argv, g_strdup("--output"));
  g_ptr_array_add(argv, g_build_filename(pl->export_links, "report", NULL));
  g_ptr_array_add(argv, NULL);
  pl->export_worker = t3d_worker_start((const char *const *)argv->pdata, NULL, NULL, on_report_done, pl, &err);
  g_ptr_array_unref(argv);
  if (!pl->export_worker) {
    pl->export_message = g_strdup(err->message);
    g_clear_error(&err);
  }
  gtk_widget_show(d);
}

void t3d_plugin_export_cleanup(t3d_plugin *pl) { close_dialog(pl); }
