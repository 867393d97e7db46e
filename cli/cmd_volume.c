/* `t3d volume`: loads one DICOM series through the reader (core/dicom/dicom.h) and exports it
 * (NIfTI for now), printing the volume's size and geometry. Argument routing only; no loading
 * or format logic of its own. */
#include "config.h"

#include <libintl.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/dicom/dicom.h"
#include "core/dicom/nifti.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d volume SERIES_DIR [--series UID] [--nifti OUT.nii[.gz]] [--strict-geometry]\n"
                "Loads a DICOM series (a folder, DICOMDIR or file) and prints its size and geometry.\n\n"
                "  --series UID   which series when the folder holds several\n"
                "  --nifti FILE   write the volume (float HU, RAS sform/qform) as NIfTI-1\n"
                "  --strict-geometry  refuse tilted and unevenly spaced series instead of resampling them\n"));
}

int t3d_cmd_volume(int argc, char **argv)
{
  const char *path = NULL, *uid = NULL, *nifti = NULL;
  t3d_dicom_load_opts lo = t3d_dicom_load_default_opts();
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--series") == 0 && i + 1 < argc) {
      uid = argv[++i];
    } else if (strcmp(argv[i], "--nifti") == 0 && i + 1 < argc) {
      nifti = argv[++i];
    } else if (strcmp(argv[i], "--strict-geometry") == 0) {
      lo.strict_geometry = 1;
    } else if (argv[i][0] != '-' && !path) {
      path = argv[i];
    } else {
      fprintf(stderr, _("t3d volume: unexpected argument '%s'\n"), argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (!path) {
    usage(stderr);
    return 2;
  }

  int rc = 1;
  t3d_dicom_scan *scan = NULL;
  t3d_volume *v = NULL;
  t3d_status st = t3d_dicom_scan_path(path, &scan);
  if (st != T3D_OK)
    return t3d_cli_fail(st, path);
  size_t nseries = t3d_dicom_scan_series_count(scan), index = 0;
  if (uid) {
    if ((st = t3d_dicom_scan_find_series(scan, uid, &index)) != T3D_OK) {
      rc = t3d_cli_fail(st, uid);
      goto cleanup;
    }
  } else if (nseries != 1) {
    fprintf(stderr, _("t3d volume: %s holds %zu series; choose one with --series:\n"), path, nseries);
    for (size_t i = 0; i < nseries; i++)
      fprintf(stderr, "  %s\n", t3d_dicom_scan_series(scan, i)->meta.series_uid);
    for (size_t i = 0; nseries == 0 && i < t3d_dicom_scan_note_count(scan); i++)
      fprintf(stderr, "  %s\n", t3d_dicom_scan_note(scan, i));
    goto cleanup;
  }
  if ((st = t3d_dicom_load_series(scan, index, &lo, &v)) != T3D_OK) {
    rc = t3d_cli_fail(st, "loading the series");
    goto cleanup;
  }
  for (size_t i = 0; i < t3d_dicom_scan_note_count(scan); i++)
    fprintf(stderr, "note: %s\n", t3d_dicom_scan_note(scan, i));
  printf("series %s\nsize %lld x %lld x %lld\nspacing %.6g %.6g %.6g mm\norigin (LPS) %.4f %.4f %.4f mm\n",
         v->meta.series_uid, (long long)v->nx, (long long)v->ny, (long long)v->nz, v->spacing[0], v->spacing[1],
         v->spacing[2], v->origin[0], v->origin[1], v->origin[2]);
  if (v->geometry_note[0])
    printf(_("geometry %s\n"), v->geometry_note);
  if (nifti && (st = t3d_nifti_write(v, nifti)) != T3D_OK) {
    rc = t3d_cli_fail(st, "writing NIfTI");
    goto cleanup;
  }
  rc = 0;
cleanup:
  t3d_volume_free(v);
  t3d_dicom_scan_free(scan);
  return rc;
}
