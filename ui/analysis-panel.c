/* T3dAnalysisPanel (see analysis-panel.h): layout, the cairo bar chart of findings, the volumes
 * grid. Not the analysis: callers connect to "analyze" and "cancel". */
#include "config.h"

#include "ui/analysis-panel.h"

#include <stdlib.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "ui/panel-parts.h"

#define ROW_H 22
#define NAME_W 170

typedef struct {
  char *name;
  double p;
  gboolean assessed;
} finding;

struct _T3dAnalysisPanel {
  GtkBox parent;
  GtkWidget *infobar;
  GtkWidget *analyze, *reason;
  GtkWidget *progress_row, *progress, *cancel;
  GtkWidget *findings_title, *chart, *unavailable;
  GtkWidget *volumes_title, *volumes;
  GtkWidget *summary;
  finding *findings;
  size_t nfindings;
};

G_DEFINE_TYPE(T3dAnalysisPanel, t3d_analysis_panel, GTK_TYPE_BOX)

enum { SIG_ANALYZE, SIG_CANCEL, N_SIGNALS };
static guint signals[N_SIGNALS];

static void free_findings(T3dAnalysisPanel *p)
{
  for (size_t i = 0; i < p->nfindings; i++) g_free(p->findings[i].name);
  g_clear_pointer(&p->findings, g_free);
  p->nfindings = 0;
}

static void t3d_analysis_panel_finalize(GObject *o)
{
  free_findings(T3D_ANALYSIS_PANEL(o));
  G_OBJECT_CLASS(t3d_analysis_panel_parent_class)->finalize(o);
}

static void t3d_analysis_panel_class_init(T3dAnalysisPanelClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = t3d_analysis_panel_finalize;
  signals[SIG_ANALYZE] = g_signal_new("analyze", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                      G_TYPE_NONE, 0);
  signals[SIG_CANCEL] = g_signal_new("cancel", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                     G_TYPE_NONE, 0);
}

/* Bars: name on the left, a bar proportional to the probability, the percentage on it. */
static gboolean draw_chart(GtkWidget *w, cairo_t *cr, gpointer data)
{
  T3dAnalysisPanel *p = data;
  int width = gtk_widget_get_allocated_width(w);
  GtkStyleContext *sc = gtk_widget_get_style_context(w);
  GdkRGBA fg;
  gtk_style_context_get_color(sc, gtk_style_context_get_state(sc), &fg);
  PangoLayout *layout = gtk_widget_create_pango_layout(w, NULL);
  int name_w = MIN(NAME_W, width / 2), bar_max = MAX(width - name_w - 8, 10);
  for (size_t i = 0; i < p->nfindings; i++) {
    double y = (double)i * ROW_H, prob = CLAMP(p->findings[i].p, 0.0, 1.0);
    pango_layout_set_text(layout, g_dpgettext2(GETTEXT_PACKAGE, "finding", p->findings[i].name), -1);
    pango_layout_set_width(layout, (name_w - 6) * PANGO_SCALE);
    pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
    int tw, th;
    pango_layout_get_pixel_size(layout, &tw, &th);
    gdk_cairo_set_source_rgba(cr, &fg);
    cairo_move_to(cr, 0, y + (ROW_H - th) / 2.0);
    pango_cairo_show_layout(cr, layout);
    /* track, then bar: high probabilities stand out in a warmer colour */
    cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.12);
    cairo_rectangle(cr, name_w, y + 4, bar_max, ROW_H - 8);
    cairo_fill(cr);
    if (!p->findings[i].assessed) cairo_set_source_rgba(cr, fg.red, fg.green, fg.blue, 0.30); /* greyed */
    else if (prob >= 0.5) cairo_set_source_rgb(cr, 0.85, 0.33, 0.10);
    else cairo_set_source_rgb(cr, 0.20, 0.47, 0.80);
    cairo_rectangle(cr, name_w, y + 4, bar_max * prob, ROW_H - 8);
    cairo_fill(cr);
    char pct[96];
    if (p->findings[i].assessed)
      g_snprintf(pct, sizeof pct, "%.0f %%", prob * 100);
    else /* TRANSLATORS: a finding the model does not assess (held-out AUROC too low, or an unfamiliar series) */
      g_snprintf(pct, sizeof pct, _("%.0f %% (not assessed)"), prob * 100);
    pango_layout_set_width(layout, -1);
    pango_layout_set_text(layout, pct, -1);
    pango_layout_get_pixel_size(layout, &tw, &th);
    gdk_cairo_set_source_rgba(cr, &fg);
    cairo_move_to(cr, name_w + bar_max - tw - 4, y + (ROW_H - th) / 2.0);
    pango_cairo_show_layout(cr, layout);
  }
  g_object_unref(layout);
  return FALSE;
}

static void on_analyze(GtkButton *b, gpointer data) { g_signal_emit(data, signals[SIG_ANALYZE], 0); }
static void on_cancel(GtkButton *b, gpointer data) { g_signal_emit(data, signals[SIG_CANCEL], 0); }

static void t3d_analysis_panel_init(T3dAnalysisPanel *p)
{
  GtkBox *box = GTK_BOX(p);
  gtk_orientable_set_orientation(GTK_ORIENTABLE(p), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing(box, 6);
  gtk_container_set_border_width(GTK_CONTAINER(p), 6);

  p->infobar = t3d_ui_infobar_new("t3d-analysis-infobar");
  gtk_box_pack_start(box, p->infobar, FALSE, FALSE, 0);

  p->analyze = gtk_button_new_with_mnemonic(_("_Analyze series"));
  gtk_widget_set_name(p->analyze, "t3d-analyze-button");
  gtk_widget_set_tooltip_text(p->analyze, _("Run the T3D model on the open series (Ctrl+Shift+A)"));
  g_signal_connect(p->analyze, "clicked", G_CALLBACK(on_analyze), p);
  gtk_box_pack_start(box, p->analyze, FALSE, FALSE, 0);
  p->reason = gtk_label_new(NULL);
  gtk_label_set_line_wrap(GTK_LABEL(p->reason), TRUE);
  gtk_label_set_xalign(GTK_LABEL(p->reason), 0);
  gtk_widget_set_name(p->reason, "t3d-analyze-reason");
  gtk_widget_set_no_show_all(p->reason, TRUE);
  gtk_box_pack_start(box, p->reason, FALSE, FALSE, 0);

  p->progress_row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  p->progress = gtk_progress_bar_new();
  gtk_widget_set_name(p->progress, "t3d-progress");
  gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(p->progress), TRUE);
  gtk_progress_bar_set_ellipsize(GTK_PROGRESS_BAR(p->progress), PANGO_ELLIPSIZE_END);
  gtk_widget_set_valign(p->progress, GTK_ALIGN_CENTER);
  p->cancel = gtk_button_new_with_mnemonic(_("_Cancel"));
  gtk_widget_set_name(p->cancel, "t3d-cancel-button");
  g_signal_connect(p->cancel, "clicked", G_CALLBACK(on_cancel), p);
  gtk_box_pack_start(GTK_BOX(p->progress_row), p->progress, TRUE, TRUE, 0);
  gtk_box_pack_start(GTK_BOX(p->progress_row), p->cancel, FALSE, FALSE, 0);
  gtk_widget_show(p->progress); /* the row is no-show-all: its children are shown here, once */
  gtk_widget_show(p->cancel);
  gtk_widget_set_no_show_all(p->progress_row, TRUE);
  gtk_box_pack_start(box, p->progress_row, FALSE, FALSE, 0);

  p->findings_title = t3d_ui_heading_new(_("Findings"));
  gtk_box_pack_start(box, p->findings_title, FALSE, FALSE, 4);
  p->chart = gtk_drawing_area_new();
  gtk_widget_set_name(p->chart, "t3d-findings-chart");
  gtk_widget_set_size_request(p->chart, 240, 0);
  g_signal_connect(p->chart, "draw", G_CALLBACK(draw_chart), p);
  gtk_box_pack_start(box, p->chart, FALSE, FALSE, 0);
  p->unavailable = gtk_label_new(_("No analysis yet."));
  gtk_label_set_line_wrap(GTK_LABEL(p->unavailable), TRUE);
  gtk_label_set_xalign(GTK_LABEL(p->unavailable), 0);
  gtk_widget_set_sensitive(p->unavailable, FALSE);
  gtk_box_pack_start(box, p->unavailable, FALSE, FALSE, 0);

  p->volumes_title = t3d_ui_heading_new(_("Organ volumes"));
  gtk_widget_set_no_show_all(p->volumes_title, TRUE);
  gtk_box_pack_start(box, p->volumes_title, FALSE, FALSE, 4);
  p->volumes = gtk_grid_new();
  gtk_widget_set_name(p->volumes, "t3d-volumes");
  gtk_grid_set_column_spacing(GTK_GRID(p->volumes), 12);
  gtk_box_pack_start(box, p->volumes, FALSE, FALSE, 0);

  p->summary = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(p->summary), 0);
  gtk_label_set_line_wrap(GTK_LABEL(p->summary), TRUE);
  gtk_widget_set_sensitive(p->summary, FALSE);
  gtk_box_pack_end(box, p->summary, FALSE, FALSE, 0);
}

GtkWidget *t3d_analysis_panel_new(void) { return g_object_new(T3D_TYPE_ANALYSIS_PANEL, NULL); }

void t3d_analysis_panel_set_can_analyze(T3dAnalysisPanel *p, gboolean can, const char *reason)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  gtk_widget_set_sensitive(p->analyze, can && !gtk_widget_get_visible(p->progress_row));
  gtk_label_set_text(GTK_LABEL(p->reason), reason ? reason : "");
  gtk_widget_set_visible(p->reason, !can && reason && *reason);
}

void t3d_analysis_panel_set_running(T3dAnalysisPanel *p, gboolean running)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  gtk_widget_set_visible(p->progress_row, running);
  if (running) {
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(p->progress), 0);
    gtk_progress_bar_set_text(GTK_PROGRESS_BAR(p->progress), _("Starting the analysis…"));
  }
  gtk_widget_set_sensitive(p->analyze, !running && !gtk_widget_get_visible(p->reason));
  gtk_widget_set_sensitive(p->cancel, running);
}

void t3d_analysis_panel_set_progress(T3dAnalysisPanel *p, double fraction, const char *stage)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(p->progress), CLAMP(fraction, 0.0, 1.0));
  char *t = g_strdup_printf("%s — %.0f %%", stage && *stage ? stage : _("working"), CLAMP(fraction, 0.0, 1.0) * 100);
  gtk_progress_bar_set_text(GTK_PROGRESS_BAR(p->progress), t);
  g_free(t);
}

static int by_p_desc(const void *a, const void *b)
{
  double pa = ((const finding *)a)->p, pb = ((const finding *)b)->p;
  return pa < pb ? 1 : pa > pb ? -1 : strcmp(((const finding *)a)->name, ((const finding *)b)->name);
}

void t3d_analysis_panel_set_findings(T3dAnalysisPanel *p, const char *const *names, const double *probabilities,
                                     const gboolean *assessed, size_t n, const char *unavailable)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  free_findings(p);
  p->findings = g_new0(finding, n + 1);
  for (size_t i = 0; i < n; i++) p->findings[i] = (finding){g_strdup(names[i]), probabilities[i], !assessed || assessed[i]};
  p->nfindings = n;
  qsort(p->findings, n, sizeof *p->findings, by_p_desc);
  gtk_widget_set_size_request(p->chart, 240, (int)n * ROW_H);
  gtk_widget_queue_draw(p->chart);
  gtk_label_set_text(GTK_LABEL(p->unavailable), unavailable ? unavailable : "");
  gtk_widget_set_visible(p->unavailable, n == 0 && unavailable);
}

void t3d_analysis_panel_set_volumes(T3dAnalysisPanel *p, const char *const *names, const double *ml, size_t n)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  GList *old = gtk_container_get_children(GTK_CONTAINER(p->volumes));
  for (GList *l = old; l; l = l->next) gtk_widget_destroy(l->data);
  g_list_free(old);
  for (size_t i = 0; i < n; i++) {
    GtkWidget *name = gtk_label_new(g_dpgettext2(GETTEXT_PACKAGE, "structure", names[i]));
    char *v = g_strdup_printf(_("%.1f mL"), ml[i]);
    GtkWidget *val = gtk_label_new(v);
    g_free(v);
    gtk_label_set_xalign(GTK_LABEL(name), 0);
    gtk_label_set_xalign(GTK_LABEL(val), 1);
    gtk_widget_set_hexpand(val, TRUE);
    gtk_grid_attach(GTK_GRID(p->volumes), name, 0, (int)i, 1, 1);
    gtk_grid_attach(GTK_GRID(p->volumes), val, 1, (int)i, 1, 1);
  }
  gtk_widget_show_all(p->volumes);
  gtk_widget_set_visible(p->volumes_title, n > 0);
}

void t3d_analysis_panel_set_summary(T3dAnalysisPanel *p, const char *text)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  gtk_label_set_text(GTK_LABEL(p->summary), text ? text : "");
}

void t3d_analysis_panel_clear_results(T3dAnalysisPanel *p)
{
  t3d_analysis_panel_set_findings(p, NULL, NULL, NULL, 0, _("No analysis yet."));
  t3d_analysis_panel_set_volumes(p, NULL, NULL, 0);
  t3d_analysis_panel_set_summary(p, NULL);
}

void t3d_analysis_panel_show_message(T3dAnalysisPanel *p, GtkMessageType type, const char *text)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  t3d_ui_infobar_show(p->infobar, type, text);
}

void t3d_analysis_panel_hide_message(T3dAnalysisPanel *p)
{
  g_return_if_fail(T3D_IS_ANALYSIS_PANEL(p));
  gtk_widget_hide(p->infobar);
}

size_t t3d_analysis_panel_finding_count(T3dAnalysisPanel *p) { return p->nfindings; }

const char *t3d_analysis_panel_finding_name(T3dAnalysisPanel *p, size_t i)
{
  return i < p->nfindings ? p->findings[i].name : NULL;
}
