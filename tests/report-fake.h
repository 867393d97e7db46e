/* Test fixture shared by test-report-text.c and report-fake-export.c: a constructed analysis
 * result with known findings, organ volumes and spherical lesions on an oblique grid, so report
 * content and exports are checked without running the model. Not a phantom generator. */
#ifndef T3D_TESTS_REPORT_FAKE_H
#define T3D_TESTS_REPORT_FAKE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/model.h"

/* An oblique nx x ny x nz grid (at least 44x40x24), 0.8 x 0.9 x 1.5 mm, with two lesion spheres (radius 9 mm and 4 mm),
 * a liver block, and a 1-voxel speck below the lesion size floor. */
typedef struct {
  t3d_volume *vol;
  t3d_analysis_result res;
  t3d_tensor *labels;
  double volumes[4];
  t3d_finding_result findings[3];
} fake_case;

static void make_case(fake_case *fc, int64_t nx, int64_t ny, int64_t nz)
{
  memset(fc, 0, sizeof *fc);
  if (t3d_volume_new(&fc->vol, nx, ny, nz) != T3D_OK) exit(1);
  t3d_volume *v = fc->vol;
  v->spacing[0] = 0.8, v->spacing[1] = 0.9, v->spacing[2] = 1.5;
  double a = 20 * M_PI / 180, b = 15 * M_PI / 180; /* rotate about x then z */
  double R[3][3] = {{cos(b), -sin(b) * cos(a), sin(b) * sin(a)},
                    {sin(b), cos(b) * cos(a), -cos(b) * sin(a)},
                    {0, sin(a), cos(a)}};
  memcpy(v->dir, R, sizeof R);
  v->origin[0] = -20, v->origin[1] = 15, v->origin[2] = -30;
  strcpy(v->meta.series_uid, "1.2.3.4");
  strcpy(v->meta.modality, "CT");
  strcpy(v->meta.patient_name, "Test^Patient");
  strcpy(v->geometry_note, "gantry tilt 12.0 deg corrected");
  int64_t shape[3] = {nz, ny, nx};
  if (t3d_tensor_new(&fc->labels, T3D_U8, 3, shape) != T3D_OK) exit(1);
  uint8_t *l = fc->labels->data;
  double c1[3], c2[3];
  t3d_volume_index_to_lps(v, 20.3, 22.1, 15.2, c1); /* big sphere centre */
  t3d_volume_index_to_lps(v, (double)nx - 12, (double)ny - 12, (double)nz - 10, c2); /* small sphere centre */
  size_t counts[4] = {0};
  for (int64_t k = 0; k < nz; k++)
    for (int64_t j = 0; j < ny; j++)
      for (int64_t i = 0; i < nx; i++) {
        double p[3];
        t3d_volume_index_to_lps(v, (double)i, (double)j, (double)k, p);
        double d1 = sqrt((p[0] - c1[0]) * (p[0] - c1[0]) + (p[1] - c1[1]) * (p[1] - c1[1]) +
                         (p[2] - c1[2]) * (p[2] - c1[2]));
        double d2 = sqrt((p[0] - c2[0]) * (p[0] - c2[0]) + (p[1] - c2[1]) * (p[1] - c2[1]) +
                         (p[2] - c2[2]) * (p[2] - c2[2]));
        uint8_t lab = 0;
        if (d1 <= 9.0 || d2 <= 4.0) lab = 3;
        else if (i < 10 && j < 10) lab = 1;
        if (i == nx - 1 && j == 0 && k == 0) lab = 3; /* 1.08 mm3 speck: below 10 mm3, not a lesion */
        l[(k * ny + j) * nx + i] = lab;
        v->data[(k * ny + j) * nx + i] = lab ? 40.0f + 20.0f * lab : -100.0f;
        counts[lab]++;
      }
  double vox_ml = 0.8 * 0.9 * 1.5 / 1000;
  for (int c = 0; c < 4; c++) fc->volumes[c] = (double)counts[c] * vox_ml;
  strcpy(fc->findings[0].name, "pleural effusion");
  fc->findings[0].probability = 0.91;
  strcpy(fc->findings[1].name, "lung nodule");
  fc->findings[1].probability = 0.62;
  strcpy(fc->findings[2].name, "ascites");
  fc->findings[2].probability = 0.12;
  fc->res.findings = fc->findings;
  fc->res.nfindings = 3;
  fc->res.labels = fc->labels;
  fc->res.volumes_ml = fc->volumes;
  fc->res.nclasses = 4;
}

static const char *const class_names[] = {"background", "liver", "spleen", "lesion"};

#endif
