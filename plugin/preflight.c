/* Preflight checks (see preflight.h): header facts -> a reason not to analyze, or none.
 * Not a validator of DICOM conformance. */
#include "config.h"

#include "plugin/preflight.h"

#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "core/dicom/dicom.h"

char *t3d_preflight_check(const t3d_preflight_facts *f)
{
  if (f->series_count > 1)
    return g_strdup_printf(_("The open files hold %d series; open one series to analyze it."), f->series_count);
  if (f->modality[0] && strcmp(f->modality, "CT") != 0)
    return g_strdup_printf(_("This series is %s, not CT: the T3D model reads CT images only."), f->modality);
  if (f->slices > 0 && f->slices < T3D_PREFLIGHT_MIN_SLICES)
    return g_strdup_printf(ngettext("This series has %d slice; the analysis needs at least %d (a full volume, "
                                    "not a localizer or a few images).",
                                    "This series has %d slices; the analysis needs at least %d (a full volume, "
                                    "not a localizer or a few images).",
                                    (unsigned long)f->slices),
                           (int)f->slices, T3D_PREFLIGHT_MIN_SLICES);
  if ((f->rows > 0 && f->rows < T3D_PREFLIGHT_MIN_MATRIX) || (f->cols > 0 && f->cols < T3D_PREFLIGHT_MIN_MATRIX))
    return g_strdup_printf(_("The images are only %dx%d pixels; the analysis needs at least %dx%d."), f->cols, f->rows,
                           T3D_PREFLIGHT_MIN_MATRIX, T3D_PREFLIGHT_MIN_MATRIX);
  for (int a = 0; a < 3; a++)
    if (!isfinite(f->spacing[a]) || f->spacing[a] < 0)
      return g_strdup(_("The series' voxel spacing is not a valid number; its geometry cannot be used."));
  if (f->spacing[0] > T3D_PREFLIGHT_MAX_PIXEL_MM || f->spacing[1] > T3D_PREFLIGHT_MAX_PIXEL_MM)
    return g_strdup_printf(_("The pixels are %.1f x %.1f mm; the analysis needs %.0f mm or finer."), f->spacing[0],
                           f->spacing[1], T3D_PREFLIGHT_MAX_PIXEL_MM);
  if (f->spacing[2] > T3D_PREFLIGHT_MAX_SLICE_MM)
    return g_strdup_printf(_("The slices are %.1f mm apart; the analysis needs %.0f mm or less (use a thinner "
                             "reconstruction)."),
                           f->spacing[2], T3D_PREFLIGHT_MAX_SLICE_MM);
  if (f->slices > 0 && f->spacing[2] > 0 && (double)f->slices * f->spacing[2] < T3D_PREFLIGHT_MIN_COVERAGE_MM)
    return g_strdup_printf(_("The series covers only %.0f mm; the analysis needs at least %.0f mm."),
                           (double)f->slices * f->spacing[2], T3D_PREFLIGHT_MIN_COVERAGE_MM);
  return NULL;
}

gboolean t3d_preflight_scan(const char *dir, const char *series_uid, t3d_preflight_facts *out, char **reason)
{
  t3d_dicom_scan *scan = NULL;
  gboolean ok = FALSE;
  memset(out, 0, sizeof *out);
  *reason = NULL;
  if (t3d_dicom_scan_path(dir, &scan) != T3D_OK) {
    *reason = g_strdup_printf(_("The series' files cannot be read: %s"), t3d_error_detail());
    goto cleanup;
  }
  size_t n = t3d_dicom_scan_series_count(scan), idx = n;
  if (n == 0) {
    const char *note = t3d_dicom_scan_note_count(scan) ? t3d_dicom_scan_note(scan, 0) : "";
    *reason = g_strdup_printf(_("No DICOM images were found among the open files (%zu examined). %s"),
                              t3d_dicom_scan_file_count(scan), note);
    g_strchomp(*reason);
    goto cleanup;
  }
  if (series_uid && *series_uid) {
    if (t3d_dicom_scan_find_series(scan, series_uid, &idx) != T3D_OK) idx = n;
  } else {
    for (size_t i = 0; i < n && idx == n; i++)
      if (strcmp(t3d_dicom_scan_series(scan, i)->meta.modality, "CT") == 0) idx = i;
  }
  if (idx == n) idx = 0;
  const t3d_dicom_series_info *si = t3d_dicom_scan_series(scan, idx);
  g_strlcpy(out->modality, si->meta.modality, sizeof out->modality);
  out->slices = si->slices;
  out->rows = si->rows;
  out->cols = si->cols;
  out->series_count = series_uid && *series_uid ? 1 : (int)n;
  ok = TRUE;
cleanup:
  t3d_dicom_scan_free(scan);
  return ok;
}
