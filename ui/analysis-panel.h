/* T3dAnalysisPanel: the side panel of "Analyze series": the Analyze button (or why analysis is
 * not offered), the running stage with a progress bar and Cancel, findings sorted by
 * probability with a bar chart drawn by cairo, organ volumes, and an info bar for errors.
 * A GTK 3 widget only: it knows neither the viewer ABI nor the engine; it emits "analyze" and
 * "cancel" and shows what it is given.
 *
 * Widget names (for tests and CSS): t3d-analyze-button, t3d-cancel-button, t3d-progress,
 * t3d-findings-chart, t3d-volumes, t3d-analysis-infobar. */
#ifndef T3D_UI_ANALYSIS_PANEL_H
#define T3D_UI_ANALYSIS_PANEL_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define T3D_TYPE_ANALYSIS_PANEL (t3d_analysis_panel_get_type())
G_DECLARE_FINAL_TYPE(T3dAnalysisPanel, t3d_analysis_panel, T3D, ANALYSIS_PANEL, GtkBox)

GtkWidget *t3d_analysis_panel_new(void);

/* Enables "Analyze series", or disables it and shows reason (a sentence) instead. */
void t3d_analysis_panel_set_can_analyze(T3dAnalysisPanel *p, gboolean can, const char *reason);
/* Running: progress row with Cancel shown, Analyze insensitive; not running: the reverse. */
void t3d_analysis_panel_set_running(T3dAnalysisPanel *p, gboolean running);
void t3d_analysis_panel_set_progress(T3dAnalysisPanel *p, double fraction, const char *stage);
/* Copies n findings (name, probability 0..1) and shows them sorted, highest first.
 * assessed: NULL, or per finding FALSE where the model does not assess it (t3d_finding_assessed:
 * a held-out AUROC too low, or a series unlike its training cases): its bar is greyed and marked
 * "not assessed".
 * unavailable: when not NULL, shown instead of an empty list (why there are no findings). */
void t3d_analysis_panel_set_findings(T3dAnalysisPanel *p, const char *const *names, const double *probabilities,
                                     const gboolean *assessed, size_t n, const char *unavailable);
/* Organ volumes in mL, in the order given. */
void t3d_analysis_panel_set_volumes(T3dAnalysisPanel *p, const char *const *names, const double *ml, size_t n);
/* One line under the results ("t3d-tiny, 0.6 s"); NULL clears it. */
void t3d_analysis_panel_set_summary(T3dAnalysisPanel *p, const char *text);
void t3d_analysis_panel_clear_results(T3dAnalysisPanel *p);
/* Info bar: GTK_MESSAGE_ERROR, _WARNING or _INFO; the user closes it, or hide_message does. */
void t3d_analysis_panel_show_message(T3dAnalysisPanel *p, GtkMessageType type, const char *text);
void t3d_analysis_panel_hide_message(T3dAnalysisPanel *p);

/* Read-back for tests: the findings in display order. Borrowed until the next set_findings. */
size_t t3d_analysis_panel_finding_count(T3dAnalysisPanel *p);
const char *t3d_analysis_panel_finding_name(T3dAnalysisPanel *p, size_t i);

G_END_DECLS

#endif
