/* Preferences dialog (see prefs-dialog.h): two entries with file choosers and a device combo.
 * Not the settings file. */
#include "config.h"

#include "ui/prefs-dialog.h"

#include <glib/gi18n-lib.h>

static void on_browse(GtkButton *b, gpointer data)
{
  GtkEntry *entry = data;
  gboolean save = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "t3d-save"));
  GtkFileChooserNative *fc = gtk_file_chooser_native_new(
    save ? _("Index file") : _("Model file"), GTK_WINDOW(gtk_widget_get_toplevel(GTK_WIDGET(b))),
    save ? GTK_FILE_CHOOSER_ACTION_SAVE : GTK_FILE_CHOOSER_ACTION_OPEN, _("_Choose"), _("_Cancel"));
  if (*gtk_entry_get_text(entry)) gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(fc), gtk_entry_get_text(entry));
  if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
    char *f = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
    if (f) gtk_entry_set_text(entry, f);
    g_free(f);
  }
  g_object_unref(fc);
}

static GtkWidget *path_row(GtkGrid *grid, int row, const char *label, const char *name, const char *value,
                           const char *placeholder, gboolean save)
{
  GtkWidget *l = gtk_label_new_with_mnemonic(label);
  gtk_label_set_xalign(GTK_LABEL(l), 1);
  GtkWidget *e = gtk_entry_new();
  gtk_widget_set_name(e, name);
  gtk_widget_set_hexpand(e, TRUE);
  gtk_entry_set_text(GTK_ENTRY(e), value ? value : "");
  gtk_entry_set_placeholder_text(GTK_ENTRY(e), placeholder);
  gtk_label_set_mnemonic_widget(GTK_LABEL(l), e);
  GtkWidget *b = gtk_button_new_with_label(_("Browse…"));
  g_object_set_data(G_OBJECT(b), "t3d-save", GINT_TO_POINTER(save));
  g_signal_connect(b, "clicked", G_CALLBACK(on_browse), e);
  gtk_grid_attach(grid, l, 0, row, 1, 1);
  gtk_grid_attach(grid, e, 1, row, 1, 1);
  gtk_grid_attach(grid, b, 2, row, 1, 1);
  return e;
}

GtkWidget *t3d_ui_prefs_dialog_new(GtkWindow *parent, const char *model, const char *device, const char *index)
{
  GtkWidget *d = gtk_dialog_new_with_buttons(_("T3D preferences"), parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                             _("_Cancel"), GTK_RESPONSE_CANCEL, _("_Save"), GTK_RESPONSE_ACCEPT, NULL);
  gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT);
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 8);
  gtk_container_set_border_width(GTK_CONTAINER(grid), 10);
  GtkWidget *m = path_row(GTK_GRID(grid), 0, _("_Model file"), "t3d-prefs-model", model, _("bundled model"), FALSE);
  GtkWidget *l = gtk_label_new_with_mnemonic(_("_Device"));
  gtk_label_set_xalign(GTK_LABEL(l), 1);
  GtkWidget *dev = gtk_combo_box_text_new();
  gtk_widget_set_name(dev, "t3d-prefs-device");
  gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(dev), "auto", _("Automatic (GPU when available)"));
  gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(dev), "cpu", _("CPU"));
  gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(dev), "gpu", _("GPU"));
  if (!gtk_combo_box_set_active_id(GTK_COMBO_BOX(dev), device && *device ? device : "auto"))
    gtk_combo_box_set_active(GTK_COMBO_BOX(dev), 0);
  gtk_label_set_mnemonic_widget(GTK_LABEL(l), dev);
  gtk_grid_attach(GTK_GRID(grid), l, 0, 1, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), dev, 1, 1, 2, 1);
  GtkWidget *ix = path_row(GTK_GRID(grid), 2, _("_Index"), "t3d-prefs-index", index, _("default index"), TRUE);
  g_object_set_data(G_OBJECT(d), "t3d-model", m);
  g_object_set_data(G_OBJECT(d), "t3d-device", dev);
  g_object_set_data(G_OBJECT(d), "t3d-index", ix);
  gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(d))), grid);
  gtk_widget_show_all(grid);
  return d;
}

void t3d_ui_prefs_dialog_get(GtkWidget *dialog, char **model, char **device, char **index)
{
  GtkWidget *m = g_object_get_data(G_OBJECT(dialog), "t3d-model"), *dev = g_object_get_data(G_OBJECT(dialog), "t3d-device"),
            *ix = g_object_get_data(G_OBJECT(dialog), "t3d-index");
  const char *id = gtk_combo_box_get_active_id(GTK_COMBO_BOX(dev));
  *model = g_strdup(gtk_entry_get_text(GTK_ENTRY(m)));
  *device = g_strdup(id ? id : "auto");
  *index = g_strdup(gtk_entry_get_text(GTK_ENTRY(ix)));
}
