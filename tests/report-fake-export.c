/* Test helper for test-report-cli.sh: writes the constructed case of tests/report-fake.h (two
 * spherical lesions, oblique grid, rows x columns not a multiple of 8) as a DICOM CT series,
 * reads it back, and exports through the report API: report.txt, SR, SEG, and the expected
 * labels as NIfTI for the read-back checks. Not a test by itself.
 *   report-fake-export OUT_DIR */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dicom/dicom.h"
#include "core/dicom/dicomwrite.h"
#include "core/dicom/nifti.h"
#include "core/report/report.h"
#include "tests/report-fake.h"

static int fail(const char *what)
{
  fprintf(stderr, "report-fake-export: %s: %s\n", what, t3d_error_detail());
  return 1;
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: report-fake-export OUT_DIR\n");
    return 2;
  }
  char series[4096], path[4200];
  fake_case fc;
  make_case(&fc, 61, 47, 26);
  strcpy(fc.vol->meta.patient_name, "M\xc3\xbcller^J\xc3\xb6rg"); /* UTF-8 through SR and SEG */
  snprintf(series, sizeof series, "%s/series", argv[1]);
  mkdir(argv[1], 0700);
  if (t3d_dicom_write_ct_series(fc.vol, series, NULL) != T3D_OK) return fail("writing the series");

  t3d_dicom_scan *scan = NULL;
  t3d_volume *vol = NULL;
  if (t3d_dicom_scan_path(series, &scan) != T3D_OK || t3d_dicom_load_series(scan, 0, NULL, &vol) != T3D_OK)
    return fail("reading the series back");
  strcpy(vol->geometry_note, fc.vol->geometry_note);
  size_t nf = t3d_dicom_series_file_count(scan, 0);
  const char *files[64];
  if (nf > 64) return fail("too many files");
  for (size_t i = 0; i < nf; i++) files[i] = t3d_dicom_series_file(scan, 0, i);

  t3d_report_params p = t3d_report_default_params();
  p.model_name = "t3d-fake";
  p.model_sha256 = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";
  p.class_names = class_names;
  p.nclasses = 4;
  p.timestamp = "20261203120000";
  static const char *const nb_findings[] = {"pleural effusion"};
  t3d_report_neighbour nb = {"prior", "Pleural effusion, gr\xc3\xb6\xc3\x9f" "er als zuvor.", 0.9, nb_findings, 1};
  p.neighbours = &nb;
  p.nneighbours = 1;
  t3d_report *r = NULL;
  t3d_report_source *src = NULL;
  if (t3d_report_create(vol, &fc.res, &p, &r) != T3D_OK) return fail("building the report");
  if (t3d_report_source_read(vol, files, nf, &src) != T3D_OK) return fail("listing the source instances");
  snprintf(path, sizeof path, "%s/report.txt", argv[1]);
  if (t3d_report_write_text(r, T3D_REPORT_TEXT, path) != T3D_OK) return fail("report.txt");
  snprintf(path, sizeof path, "%s/report-sr.dcm", argv[1]);
  if (t3d_report_write_sr(r, src, NULL, path) != T3D_OK) return fail("SR");
  snprintf(path, sizeof path, "%s/report-seg.dcm", argv[1]);
  if (t3d_report_write_seg(r, src, NULL, path) != T3D_OK) return fail("SEG");

  /* expected labels on the series grid */
  const uint8_t *l = fc.labels->data;
  for (size_t i = 0; i < t3d_volume_nvoxels(vol); i++) vol->data[i] = l[i];
  snprintf(path, sizeof path, "%s/mask.nii.gz", argv[1]);
  if (t3d_nifti_write(vol, path) != T3D_OK) return fail("mask");
  printf("lesions %zu diameter %.3f\n", t3d_report_lesion_count(r), t3d_report_lesion_max_diameter_mm(r));

  t3d_report_source_free(src);
  t3d_report_free(r);
  t3d_volume_free(vol);
  t3d_dicom_scan_free(scan);
  t3d_tensor_free(fc.labels);
  t3d_volume_free(fc.vol);
  return 0;
}
