/* Small parts every t3d panel and dialog uses: the info bar for errors and notices (a GtkInfoBar
 * with one wrapping label and a close button, hidden until shown; a new message replaces the
 * old one) and a section heading. Not a widget of its own. */
#ifndef T3D_UI_PANEL_PARTS_H
#define T3D_UI_PANEL_PARTS_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* A hidden info bar named name (gtk_widget_set_name), for packing into a container. */
GtkWidget *t3d_ui_infobar_new(const char *name);
/* Sets type (GTK_MESSAGE_ERROR, _WARNING, _INFO) and text, and shows it. */
void t3d_ui_infobar_show(GtkWidget *bar, GtkMessageType type, const char *text);
/* The text shown, "" when hidden. Borrowed. For tests. */
const char *t3d_ui_infobar_text(GtkWidget *bar);

/* A bold, left-aligned section heading ("Findings"). */
GtkWidget *t3d_ui_heading_new(const char *text);

G_END_DECLS

#endif
