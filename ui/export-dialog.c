/* T3dExportDialog (see export-dialog.h): format combo, destination entry with a file chooser,
 * a read-only monospace preview. Not the report writer. */
#include "config.h"

#include "ui/export-dialog.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "ui/panel-parts.h"

struct _T3dExportDialog {
  GtkDialog parent;
  GtkWidget *infobar, *format, *dest, *preview;
  char *default_name;
};

G_DEFINE_TYPE(T3dExportDialog, t3d_export_dialog, GTK_TYPE_DIALOG)

static guint format_changed_signal;

static const struct {
  const char *id, *suffix, *label;
} formats[] = {
  {"text", ".txt", N_("Plain text")},
  {"md", ".md", N_("Markdown")},
  {"sr", ".sr.dcm", N_("DICOM Structured Report (SR)")},
  {"seg", ".seg.dcm", N_("DICOM Segmentation (SEG)")},
};

const char *t3d_export_format_id(t3d_export_format f) { return formats[(unsigned)f % G_N_ELEMENTS(formats)].id; }
const char *t3d_export_format_suffix(t3d_export_format f)
{
  return formats[(unsigned)f % G_N_ELEMENTS(formats)].suffix;
}

static void t3d_export_dialog_finalize(GObject *o)
{
  g_free(T3D_EXPORT_DIALOG(o)->default_name);
  G_OBJECT_CLASS(t3d_export_dialog_parent_class)->finalize(o);
}

static void t3d_export_dialog_class_init(T3dExportDialogClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = t3d_export_dialog_finalize;
  format_changed_signal = g_signal_new("format-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                       NULL, G_TYPE_NONE, 0);
}

/* Keeps the destination's suffix in step with the format. */
static void on_format(GtkComboBox *c, gpointer data)
{
  T3dExportDialog *d = data;
  const char *path = gtk_entry_get_text(GTK_ENTRY(d->dest));
  if (*path) {
    char *base = g_strdup(path);
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
      if (g_str_has_suffix(base, formats[i].suffix)) {
        base[strlen(base) - strlen(formats[i].suffix)] = '\0';
        break;
      }
    char *np = g_strconcat(base, t3d_export_format_suffix(t3d_export_dialog_get_format(d)), NULL);
    gtk_entry_set_text(GTK_ENTRY(d->dest), np);
    g_free(np);
    g_free(base);
  }
  g_signal_emit(d, format_changed_signal, 0);
}

static void on_choose(GtkButton *b, gpointer data)
{
  T3dExportDialog *d = data;
  GtkFileChooserNative *fc = gtk_file_chooser_native_new(_("Export draft report to"), GTK_WINDOW(d),
                                                         GTK_FILE_CHOOSER_ACTION_SAVE, _("_Choose"), _("_Cancel"));
  gtk_file_chooser_set_do_overwrite_confirmation(GTK_FILE_CHOOSER(fc), TRUE);
  const char *cur = gtk_entry_get_text(GTK_ENTRY(d->dest));
  if (*cur) gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(fc), cur);
  if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
    char *f = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
    if (f) gtk_entry_set_text(GTK_ENTRY(d->dest), f);
    g_free(f);
  }
  g_object_unref(fc);
}

static void on_dest_changed(GtkEditable *e, gpointer data)
{
  T3dExportDialog *d = data;
  gtk_dialog_set_response_sensitive(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT, *gtk_entry_get_text(GTK_ENTRY(d->dest)) != 0);
}

static void on_map(GtkWidget *w, gpointer data) { g_signal_emit(w, format_changed_signal, 0); }

static void t3d_export_dialog_init(T3dExportDialog *d)
{
  gtk_window_set_title(GTK_WINDOW(d), _("Export draft report"));
  gtk_window_set_default_size(GTK_WINDOW(d), 620, 480);
  gtk_dialog_add_button(GTK_DIALOG(d), _("_Cancel"), GTK_RESPONSE_CANCEL);
  gtk_widget_set_name(gtk_dialog_add_button(GTK_DIALOG(d), _("_Export"), GTK_RESPONSE_ACCEPT), "t3d-export-button");
  gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT);
  GtkBox *area = GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(d)));
  gtk_box_set_spacing(area, 6);
  gtk_container_set_border_width(GTK_CONTAINER(area), 8);

  d->infobar = t3d_ui_infobar_new("t3d-export-infobar");
  gtk_box_pack_start(area, d->infobar, FALSE, FALSE, 0);

  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 8);
  GtkWidget *l1 = gtk_label_new_with_mnemonic(_("_Format")), *l2 = gtk_label_new_with_mnemonic(_("_Destination"));
  gtk_label_set_xalign(GTK_LABEL(l1), 1);
  gtk_label_set_xalign(GTK_LABEL(l2), 1);
  d->format = gtk_combo_box_text_new();
  gtk_widget_set_name(d->format, "t3d-export-format");
  for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(d->format), formats[i].id, _(formats[i].label));
  gtk_combo_box_set_active(GTK_COMBO_BOX(d->format), 0);
  gtk_label_set_mnemonic_widget(GTK_LABEL(l1), d->format);
  d->dest = gtk_entry_new();
  gtk_widget_set_name(d->dest, "t3d-export-destination");
  gtk_widget_set_hexpand(d->dest, TRUE);
  gtk_label_set_mnemonic_widget(GTK_LABEL(l2), d->dest);
  GtkWidget *choose = gtk_button_new_with_mnemonic(_("C_hoose…"));
  g_signal_connect(choose, "clicked", G_CALLBACK(on_choose), d);
  gtk_grid_attach(GTK_GRID(grid), l1, 0, 0, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), d->format, 1, 0, 2, 1);
  gtk_grid_attach(GTK_GRID(grid), l2, 0, 1, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), d->dest, 1, 1, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), choose, 2, 1, 1, 1);
  gtk_box_pack_start(area, grid, FALSE, FALSE, 0);

  GtkWidget *pl = gtk_label_new(_("Preview"));
  gtk_label_set_xalign(GTK_LABEL(pl), 0);
  gtk_box_pack_start(area, pl, FALSE, FALSE, 0);
  GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
  gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(scroll), GTK_SHADOW_IN);
  d->preview = gtk_text_view_new();
  gtk_widget_set_name(d->preview, "t3d-export-preview");
  gtk_text_view_set_editable(GTK_TEXT_VIEW(d->preview), FALSE);
  gtk_text_view_set_monospace(GTK_TEXT_VIEW(d->preview), TRUE);
  gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(d->preview), GTK_WRAP_WORD_CHAR);
  gtk_container_add(GTK_CONTAINER(scroll), d->preview);
  gtk_box_pack_start(area, scroll, TRUE, TRUE, 0);
  gtk_widget_show_all(GTK_WIDGET(area));

  g_signal_connect(d->format, "changed", G_CALLBACK(on_format), d);
  g_signal_connect(d->dest, "changed", G_CALLBACK(on_dest_changed), d);
  g_signal_connect(d, "map", G_CALLBACK(on_map), NULL);
  gtk_dialog_set_response_sensitive(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT, FALSE);
}

GtkWidget *t3d_export_dialog_new(GtkWindow *parent, const char *default_dir, const char *default_name)
{
  T3dExportDialog *d = g_object_new(T3D_TYPE_EXPORT_DIALOG, "use-header-bar", FALSE, NULL);
  if (parent) {
    gtk_window_set_transient_for(GTK_WINDOW(d), parent);
    gtk_window_set_modal(GTK_WINDOW(d), TRUE);
  }
  if (default_dir && default_name) {
    char *base = g_strconcat(default_name, t3d_export_format_suffix(T3D_EXPORT_TEXT), NULL);
    char *p = g_build_filename(default_dir, base, NULL);
    gtk_entry_set_text(GTK_ENTRY(d->dest), p);
    g_free(p);
    g_free(base);
  }
  return GTK_WIDGET(d);
}

t3d_export_format t3d_export_dialog_get_format(T3dExportDialog *d)
{
  int i = gtk_combo_box_get_active(GTK_COMBO_BOX(d->format));
  return i < 0 ? T3D_EXPORT_TEXT : (t3d_export_format)i;
}

void t3d_export_dialog_set_format(T3dExportDialog *d, t3d_export_format f)
{
  gtk_combo_box_set_active(GTK_COMBO_BOX(d->format), (int)f);
}

const char *t3d_export_dialog_get_destination(T3dExportDialog *d) { return gtk_entry_get_text(GTK_ENTRY(d->dest)); }

void t3d_export_dialog_set_destination(T3dExportDialog *d, const char *path)
{
  gtk_entry_set_text(GTK_ENTRY(d->dest), path ? path : "");
}

void t3d_export_dialog_set_preview(T3dExportDialog *d, const char *text)
{
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(d->preview)), text ? text : "", -1);
}

void t3d_export_dialog_show_message(T3dExportDialog *d, GtkMessageType type, const char *text)
{
  t3d_ui_infobar_show(d->infobar, type, text);
}
