/* Preflight: before "Analyze" is offered, decide cheaply -- from DICOM headers and the geometry
 * the host already has, never from pixel data -- whether the model can analyze the open series,
 * and if not, say why in words a clinician reads. Not the loader: refusals that need every
 * slice's position (gaps, tilt) are the loader's, which ran when the host opened the series.
 * No GTK. */
#ifndef T3D_PLUGIN_PREFLIGHT_H
#define T3D_PLUGIN_PREFLIGHT_H

#include <stdint.h>

#include <glib.h>

G_BEGIN_DECLS

#define T3D_PREFLIGHT_MIN_SLICES 8
#define T3D_PREFLIGHT_MIN_COVERAGE_MM 40.0 /* along the slice normal */
#define T3D_PREFLIGHT_MIN_MATRIX 32        /* rows and columns */
#define T3D_PREFLIGHT_MAX_SLICE_MM 12.0
#define T3D_PREFLIGHT_MAX_PIXEL_MM 5.0

typedef struct {
  char modality[16];  /* "" when unknown */
  int64_t slices;     /* 0 when unknown */
  int rows, cols;     /* 0 when unknown */
  double spacing[3];  /* mm along columns, rows, slices; 0 when unknown */
  int series_count;   /* series found among the files (for the message when it is not one) */
} t3d_preflight_facts;

/* NULL when the facts allow an analysis; otherwise why not (translated; g_free). */
char *t3d_preflight_check(const t3d_preflight_facts *f);

/* Reads the headers of the series in folder dir (core/dicom scan, pixel data stays on disk) and
 * fills *out for the series with UID series_uid (NULL or "": the first CT, else the first).
 * Returns FALSE with *reason (translated; g_free) when no series can be examined at all. */
gboolean t3d_preflight_scan(const char *dir, const char *series_uid, t3d_preflight_facts *out, char **reason);

G_END_DECLS

#endif
