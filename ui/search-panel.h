/* T3dSearchPanel: "Similar cases": an entry to type findings, a Search button, the ranked
 * cases with thumbnails, and an info bar. Activating a case emits "open-case" with its rank.
 * A GTK 3 widget only: searching is the caller's (it connects to "search").
 *
 * Widget names: t3d-search-entry, t3d-search-button, t3d-search-results, t3d-search-infobar.
 * Signals: "search" (const char *text), "open-case" (int rank, 0 = best). */
#ifndef T3D_UI_SEARCH_PANEL_H
#define T3D_UI_SEARCH_PANEL_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define T3D_TYPE_SEARCH_PANEL (t3d_search_panel_get_type())
G_DECLARE_FINAL_TYPE(T3dSearchPanel, t3d_search_panel, T3D, SEARCH_PANEL, GtkBox)

GtkWidget *t3d_search_panel_new(void);

void t3d_search_panel_set_busy(T3dSearchPanel *s, gboolean busy);
void t3d_search_panel_clear(T3dSearchPanel *s);
/* Appends a case: title (patient/study line), detail (series, date), score (similarity), thumb
 * (may be NULL: a placeholder icon; the panel takes its own reference). */
void t3d_search_panel_add_result(T3dSearchPanel *s, const char *title, const char *detail, double score,
                                 GdkPixbuf *thumb);
/* Replaces the picture of the case at rank (0 = best) once it is known; thumb as above. */
void t3d_search_panel_set_thumbnail(T3dSearchPanel *s, size_t rank, GdkPixbuf *thumb);
size_t t3d_search_panel_result_count(T3dSearchPanel *s);
void t3d_search_panel_show_message(T3dSearchPanel *s, GtkMessageType type, const char *text);
const char *t3d_search_panel_message(T3dSearchPanel *s); /* "" when none; for tests */

G_END_DECLS

#endif
