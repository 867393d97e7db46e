/* T3dExportDialog: "Export draft report": the format (text, Markdown, DICOM SR, DICOM SEG), the
 * destination file with a chooser, a preview of what will be written, and an info bar. A GTK 3
 * dialog only: making the report is the caller's, which fills the preview on "format-changed"
 * and writes the file on GTK_RESPONSE_ACCEPT.
 *
 * Widget names: t3d-export-format, t3d-export-destination, t3d-export-preview,
 * t3d-export-infobar, t3d-export-button (the dialog's GTK_RESPONSE_ACCEPT button). */
#ifndef T3D_UI_EXPORT_DIALOG_H
#define T3D_UI_EXPORT_DIALOG_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef enum {
  T3D_EXPORT_TEXT = 0,
  T3D_EXPORT_MARKDOWN,
  T3D_EXPORT_DICOM_SR,
  T3D_EXPORT_DICOM_SEG,
} t3d_export_format;

/* The `t3d report --format` value ("text", "md", "sr", "seg") and the file suffix. */
const char *t3d_export_format_id(t3d_export_format f);
const char *t3d_export_format_suffix(t3d_export_format f);

#define T3D_TYPE_EXPORT_DIALOG (t3d_export_dialog_get_type())
G_DECLARE_FINAL_TYPE(T3dExportDialog, t3d_export_dialog, T3D, EXPORT_DIALOG, GtkDialog)

/* A modal dialog over parent (may be NULL); default_dir: the folder proposed for the file. */
GtkWidget *t3d_export_dialog_new(GtkWindow *parent, const char *default_dir, const char *default_name);

t3d_export_format t3d_export_dialog_get_format(T3dExportDialog *d);
void t3d_export_dialog_set_format(T3dExportDialog *d, t3d_export_format f);
/* The destination path (borrowed until the next change); "" when none. */
const char *t3d_export_dialog_get_destination(T3dExportDialog *d);
void t3d_export_dialog_set_destination(T3dExportDialog *d, const char *path);
void t3d_export_dialog_set_preview(T3dExportDialog *d, const char *text);
void t3d_export_dialog_show_message(T3dExportDialog *d, GtkMessageType type, const char *text);

/* Signal: "format-changed" () -- also emitted once when the dialog is first shown. */

G_END_DECLS

#endif
