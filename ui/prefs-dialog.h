/* The plugin's Preferences dialog: model file, device (automatic, CPU, GPU), index path. A GTK 3
 * dialog only: it edits three strings and leaves loading and saving to the caller.
 * Widget names: t3d-prefs-model, t3d-prefs-device, t3d-prefs-index. */
#ifndef T3D_UI_PREFS_DIALOG_H
#define T3D_UI_PREFS_DIALOG_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* A modal dialog over parent with the values given ("" = default). Its response
 * GTK_RESPONSE_ACCEPT means "save": read the values back with t3d_ui_prefs_dialog_get. */
GtkWidget *t3d_ui_prefs_dialog_new(GtkWindow *parent, const char *model, const char *device, const char *index);
/* The edited values (g_free each). device is "auto", "cpu" or "gpu". */
void t3d_ui_prefs_dialog_get(GtkWidget *dialog, char **model, char **device, char **index);

G_END_DECLS

#endif
