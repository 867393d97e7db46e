/* T3dOverlayControls (see overlay-controls.h): the slider, the toggles, the swatches and the
 * class colour table. Not the GL overlay: the host draws it from these choices. */
#include "config.h"

#include "ui/overlay-controls.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "ui/panel-parts.h"

#define DEFAULT_OPACITY 0.5

struct _T3dOverlayControls {
  GtkBox parent;
  GtkWidget *scale, *list, *empty;
  GArray *visible; /* gboolean per listed class */
  int first_label;
};

G_DEFINE_TYPE(T3dOverlayControls, t3d_overlay_controls, GTK_TYPE_BOX)

static guint changed_signal;

void t3d_ui_class_color(const char *name, size_t index, GdkRGBA *out)
{
  static const struct {
    const char *name;
    double r, g, b;
  } fixed[] = {
    {"lesion", 1.00, 0.10, 0.10}, {"nodule", 1.00, 0.10, 0.10}, {"lung", 0.20, 0.55, 1.00},
    {"liver", 0.80, 0.45, 0.15},  {"kidney", 1.00, 0.85, 0.10}, {"spleen", 0.65, 0.30, 0.90},
  };
  static const double palette[][3] = {{0.10, 0.80, 0.30}, {0.95, 0.40, 0.70}, {0.10, 0.80, 0.80},
                                      {0.60, 0.80, 0.10}, {0.90, 0.60, 0.20}, {0.50, 0.50, 1.00}};
  for (size_t i = 0; name && i < G_N_ELEMENTS(fixed); i++)
    if (g_ascii_strcasecmp(name, fixed[i].name) == 0) {
      *out = (GdkRGBA){fixed[i].r, fixed[i].g, fixed[i].b, 1.0};
      return;
    }
  const double *c = palette[index % G_N_ELEMENTS(palette)];
  *out = (GdkRGBA){c[0], c[1], c[2], 1.0};
}

static void t3d_overlay_controls_finalize(GObject *o)
{
  g_array_unref(T3D_OVERLAY_CONTROLS(o)->visible);
  G_OBJECT_CLASS(t3d_overlay_controls_parent_class)->finalize(o);
}

static void t3d_overlay_controls_class_init(T3dOverlayControlsClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = t3d_overlay_controls_finalize;
  changed_signal = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                G_TYPE_NONE, 0);
}

static void on_opacity(GtkRange *r, gpointer data) { g_signal_emit(data, changed_signal, 0); }

static void t3d_overlay_controls_init(T3dOverlayControls *c)
{
  GtkBox *box = GTK_BOX(c);
  c->visible = g_array_new(FALSE, TRUE, sizeof(gboolean));
  gtk_orientable_set_orientation(GTK_ORIENTABLE(c), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing(box, 4);
  gtk_container_set_border_width(GTK_CONTAINER(c), 6);
  gtk_box_pack_start(box, t3d_ui_heading_new(_("Overlay")), FALSE, FALSE, 0);

  GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_pack_start(GTK_BOX(row), gtk_label_new(_("Opacity")), FALSE, FALSE, 0);
  c->scale = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, 1, 0.05);
  gtk_widget_set_name(c->scale, "t3d-opacity-scale");
  gtk_scale_set_draw_value(GTK_SCALE(c->scale), FALSE);
  gtk_range_set_value(GTK_RANGE(c->scale), DEFAULT_OPACITY);
  g_signal_connect(c->scale, "value-changed", G_CALLBACK(on_opacity), c);
  gtk_box_pack_start(GTK_BOX(row), c->scale, TRUE, TRUE, 0);
  gtk_box_pack_start(box, row, FALSE, FALSE, 0);

  c->list = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  gtk_box_pack_start(box, c->list, FALSE, FALSE, 0);
  c->empty = gtk_label_new(_("No mask yet: analyze the series."));
  gtk_widget_set_sensitive(c->empty, FALSE);
  gtk_label_set_xalign(GTK_LABEL(c->empty), 0);
  gtk_box_pack_start(GTK_BOX(c->list), c->empty, FALSE, FALSE, 0);
}

GtkWidget *t3d_overlay_controls_new(void) { return g_object_new(T3D_TYPE_OVERLAY_CONTROLS, NULL); }

static gboolean draw_swatch(GtkWidget *w, cairo_t *cr, gpointer data)
{
  GdkRGBA *rgba = data;
  int wd = gtk_widget_get_allocated_width(w), ht = gtk_widget_get_allocated_height(w);
  gdk_cairo_set_source_rgba(cr, rgba);
  cairo_rectangle(cr, 1, 1, wd - 2, ht - 2);
  cairo_fill_preserve(cr);
  cairo_set_source_rgba(cr, 0, 0, 0, 0.6);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  return FALSE;
}

static void on_toggle(GtkToggleButton *b, gpointer data)
{
  T3dOverlayControls *c = data;
  guint i = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(b), "t3d-class"));
  if (i < c->visible->len) g_array_index(c->visible, gboolean, i) = gtk_toggle_button_get_active(b);
  g_signal_emit(c, changed_signal, 0);
}

void t3d_overlay_controls_set_classes(T3dOverlayControls *c, const char *const *names, size_t n, int first_label)
{
  g_return_if_fail(T3D_IS_OVERLAY_CONTROLS(c));
  GList *old = gtk_container_get_children(GTK_CONTAINER(c->list));
  for (GList *l = old; l; l = l->next)
    if (l->data != c->empty) gtk_widget_destroy(l->data);
  g_list_free(old);
  g_array_set_size(c->visible, n);
  c->first_label = first_label;
  for (size_t i = 0; i < n; i++) {
    g_array_index(c->visible, gboolean, i) = TRUE;
    GtkWidget *check = gtk_check_button_new();
    GtkWidget *inner = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *swatch = gtk_drawing_area_new();
    GdkRGBA *rgba = g_new(GdkRGBA, 1);
    t3d_ui_class_color(names[i], i + (size_t)first_label, rgba);
    gtk_widget_set_size_request(swatch, 14, 14);
    gtk_widget_set_valign(swatch, GTK_ALIGN_CENTER);
    g_signal_connect_data(swatch, "draw", G_CALLBACK(draw_swatch), rgba, (GClosureNotify)(void (*)(void))g_free, 0);
    gtk_box_pack_start(GTK_BOX(inner), swatch, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(inner), gtk_label_new(names[i]), FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(check), inner);
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(check), TRUE);
    char *wname = g_strdup_printf("t3d-class-toggle-%s", names[i]);
    gtk_widget_set_name(check, wname);
    g_free(wname);
    g_object_set_data(G_OBJECT(check), "t3d-class", GUINT_TO_POINTER((guint)i));
    g_signal_connect(check, "toggled", G_CALLBACK(on_toggle), c);
    gtk_box_pack_start(GTK_BOX(c->list), check, FALSE, FALSE, 0);
  }
  gtk_widget_show_all(c->list);
  gtk_widget_set_visible(c->empty, n == 0);
}

double t3d_overlay_controls_get_opacity(T3dOverlayControls *c) { return gtk_range_get_value(GTK_RANGE(c->scale)); }

void t3d_overlay_controls_set_opacity(T3dOverlayControls *c, double opacity)
{
  gtk_range_set_value(GTK_RANGE(c->scale), CLAMP(opacity, 0.0, 1.0));
}

gboolean t3d_overlay_controls_class_visible(T3dOverlayControls *c, int label)
{
  int i = label - c->first_label;
  return i < 0 || (guint)i >= c->visible->len || g_array_index(c->visible, gboolean, (guint)i);
}
