/* T3dOverlayControls: the mask overlay's controls, which are also its legend: an opacity
 * slider and one toggle per class with its colour swatch; and the colour each class is drawn
 * in, so that legend and overlay agree. A GTK 3 widget only: it does not draw the overlay.
 *
 * Widget names: t3d-opacity-scale, t3d-class-toggle-NAME (NAME as given). */
#ifndef T3D_UI_OVERLAY_CONTROLS_H
#define T3D_UI_OVERLAY_CONTROLS_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define T3D_TYPE_OVERLAY_CONTROLS (t3d_overlay_controls_get_type())
G_DECLARE_FINAL_TYPE(T3dOverlayControls, t3d_overlay_controls, T3D, OVERLAY_CONTROLS, GtkBox)

/* The colour of class `index` named name: fixed colours for the classes t3d models know
 * ("lesion" red, "lung" blue, "liver", "kidney", "spleen"), a palette by index for others. */
void t3d_ui_class_color(const char *name, size_t index, GdkRGBA *out);

GtkWidget *t3d_overlay_controls_new(void);

/* Replaces the class list: n classes (label value i+first_label = names[i]), all visible.
 * Background is not listed: pass the names from label 1 on with first_label 1. */
void t3d_overlay_controls_set_classes(T3dOverlayControls *c, const char *const *names, size_t n, int first_label);
double t3d_overlay_controls_get_opacity(T3dOverlayControls *c);
void t3d_overlay_controls_set_opacity(T3dOverlayControls *c, double opacity);
/* Whether label value `label` is shown (TRUE for labels not listed). */
gboolean t3d_overlay_controls_class_visible(T3dOverlayControls *c, int label);

/* Signals: "changed" () after the opacity or any toggle changed. */

G_END_DECLS

#endif
