/* Test helper (not a test): compares two NIfTI files voxel by voxel in world space, so files
 * with different voxel orders (dcm2niix flips rows and may reverse slices) still compare.
 * For every voxel of A: world position -> B's index through B's inverse affine; that index must
 * be an integer voxel inside B whose world position is within --tol-mm of A's, and B's value
 * (after its scl_slope/scl_inter) must equal A's within --tol-value. Also requires the same
 * voxel count. Exit 0 when equal, 1 (with the first mismatches printed) when not.
 * Options for resampled volumes (gantry tilt, uneven steps):
 *   --subset         A may have fewer voxels than B (every one of A's must still map into B)
 *   --skip-value V   voxels of A or B holding V (a resampler's fill outside the slices) are
 *                    not compared; with --min-compared F at least that fraction of A's must be
 *   --interp         B is sampled trilinearly at A's voxel positions (B may be sheared: its
 *                    whole affine is inverted); A's voxels outside B are not compared */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dicom/nifti.h"
#include "core/base/status.h"

static int invert3(const double m[4][4], double inv[3][3])
{
  double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
               m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  if (fabs(det) < 1e-12)
    return -1;
  inv[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det;
  inv[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
  inv[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
  inv[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det;
  inv[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
  inv[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
  inv[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det;
  inv[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
  inv[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
  return 0;
}

/* B at continuous index q, trilinear; 0 when q lies outside B (1e-6 of a voxel allowed). */
static int sample_trilinear(const t3d_volume *b, const double q[3], float *out)
{
  const int64_t n[3] = {b->nx, b->ny, b->nz};
  int64_t lo[3], hi[3];
  double f[3];
  for (int r = 0; r < 3; r++) {
    if (q[r] < -1e-6 || q[r] > (double)(n[r] - 1) + 1e-6)
      return 0;
    double c = fmin(fmax(q[r], 0), (double)(n[r] - 1));
    lo[r] = (int64_t)floor(c);
    hi[r] = lo[r] + 1 < n[r] ? lo[r] + 1 : lo[r];
    f[r] = c - (double)lo[r];
  }
  double v = 0;
  for (int c = 0; c < 8; c++) {
    int64_t x = c & 1 ? hi[0] : lo[0], y = c & 2 ? hi[1] : lo[1], z = c & 4 ? hi[2] : lo[2];
    double w = (c & 1 ? f[0] : 1 - f[0]) * (c & 2 ? f[1] : 1 - f[1]) * (c & 4 ? f[2] : 1 - f[2]);
    if (w > 0)
      v += w * b->data[(z * b->ny + y) * b->nx + x];
  }
  *out = (float)v;
  return 1;
}

int main(int argc, char **argv)
{
  double tol_mm = 1e-3, tol_value = 0, skip_value = NAN, min_compared = 0;
  int subset = 0, interp = 0;
  const char *pa = NULL, *pb = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--tol-mm") == 0 && i + 1 < argc)
      tol_mm = atof(argv[++i]);
    else if (strcmp(argv[i], "--skip-value") == 0 && i + 1 < argc)
      skip_value = atof(argv[++i]);
    else if (strcmp(argv[i], "--min-compared") == 0 && i + 1 < argc)
      min_compared = atof(argv[++i]);
    else if (strcmp(argv[i], "--subset") == 0)
      subset = 1;
    else if (strcmp(argv[i], "--interp") == 0)
      interp = 1;
    else if (strcmp(argv[i], "--tol-value") == 0 && i + 1 < argc)
      tol_value = atof(argv[++i]);
    else if (!pa)
      pa = argv[i];
    else if (!pb)
      pb = argv[i];
  }
  if (!pa || !pb) {
    fprintf(stderr, "usage: nifti-compare A.nii[.gz] B.nii[.gz] [--tol-mm 1e-3] [--tol-value 0]\n");
    return 2;
  }
  t3d_volume *a = NULL, *b = NULL;
  t3d_status st;
  if ((st = t3d_nifti_read(pa, &a, NULL)) != T3D_OK || (st = t3d_nifti_read(pb, &b, NULL)) != T3D_OK) {
    fprintf(stderr, "nifti-compare: %s: %s\n", t3d_strerror(st), t3d_error_detail());
    t3d_volume_free(a);
    return 1;
  }
  int rc = 1;
  double A[4][4], B[4][4], Binv[3][3];
  t3d_volume_affine(a, A);
  t3d_volume_affine(b, B);
  if (!interp && (subset ? t3d_volume_nvoxels(a) > t3d_volume_nvoxels(b) : t3d_volume_nvoxels(a) != t3d_volume_nvoxels(b))) {
    fprintf(stderr, "nifti-compare: %s has %lldx%lldx%lld voxels, %s has %lldx%lldx%lld\n", pa, (long long)a->nx,
            (long long)a->ny, (long long)a->nz, pb, (long long)b->nx, (long long)b->ny, (long long)b->nz);
    goto done;
  }
  if (invert3(B, Binv) != 0) {
    fprintf(stderr, "nifti-compare: %s has a singular affine\n", pb);
    goto done;
  }
  double max_mm = 0, max_dv = 0;
  long long bad_pos = 0, bad_val = 0, compared = 0;
  for (int64_t k = 0; k < a->nz; k++)
    for (int64_t j = 0; j < a->ny; j++)
      for (int64_t i = 0; i < a->nx; i++) {
        double p[3], d[3], q[3];
        t3d_volume_index_to_lps(a, (double)i, (double)j, (double)k, p);
        for (int r = 0; r < 3; r++)
          d[r] = p[r] - B[r][3];
        for (int r = 0; r < 3; r++)
          q[r] = Binv[r][0] * d[0] + Binv[r][1] * d[1] + Binv[r][2] * d[2];
        float va = a->data[(k * a->ny + j) * a->nx + i];
        if (va == (float)skip_value)
          continue;
        if (interp) {
          float vb;
          if (!sample_trilinear(b, q, &vb) || vb == (float)skip_value)
            continue;
          double dv = fabs((double)va - vb);
          compared++;
          if (dv > max_dv)
            max_dv = dv;
          if (!(dv <= tol_value) && bad_val++ < 5)
            fprintf(stderr, "nifti-compare: voxel (%lld,%lld,%lld) of A = %.6g, B at (%.3f,%.3f,%.3f) = %.6g\n",
                    (long long)i, (long long)j, (long long)k, (double)va, q[0], q[1], q[2], (double)vb);
          continue;
        }
        long long qi = llround(q[0]), qj = llround(q[1]), qk = llround(q[2]);
        double pb_[3];
        t3d_volume_index_to_lps(b, (double)qi, (double)qj, (double)qk, pb_);
        double mm = sqrt((pb_[0] - p[0]) * (pb_[0] - p[0]) + (pb_[1] - p[1]) * (pb_[1] - p[1]) +
                         (pb_[2] - p[2]) * (pb_[2] - p[2]));
        if (mm > max_mm)
          max_mm = mm;
        if (qi < 0 || qj < 0 || qk < 0 || qi >= b->nx || qj >= b->ny || qk >= b->nz || mm > tol_mm) {
          if (bad_pos++ < 5)
            fprintf(stderr,
                    "nifti-compare: voxel (%lld,%lld,%lld) of A at LPS (%.4f,%.4f,%.4f) maps to (%.4f,%.4f,%.4f) "
                    "in B: outside B or %.6f mm off its nearest voxel (tol %g)\n",
                    (long long)i, (long long)j, (long long)k, p[0], p[1], p[2], q[0], q[1], q[2], mm, tol_mm);
          continue;
        }
        float vb = b->data[(qk * b->ny + qj) * b->nx + qi];
        if (vb == (float)skip_value)
          continue;
        compared++;
        double dv = fabs((double)va - vb);
        if (dv > max_dv)
          max_dv = dv;
        if (!(dv <= tol_value) && bad_val++ < 5)
          fprintf(stderr, "nifti-compare: voxel (%lld,%lld,%lld) of A = %.6g, B(%lld,%lld,%lld) = %.6g\n",
                  (long long)i, (long long)j, (long long)k, (double)va, qi, qj, qk, (double)vb);
      }
  printf("nifti-compare: %s vs %s: %zu voxels, %lld compared, max position error %.2e mm, max value difference "
         "%.3g, %lld misplaced, %lld different\n",
         pa, pb, t3d_volume_nvoxels(a), compared, max_mm, max_dv, bad_pos, bad_val);
  rc = bad_pos || bad_val ? 1 : 0;
  if ((double)compared < min_compared * (double)t3d_volume_nvoxels(a)) {
    fprintf(stderr, "nifti-compare: only %lld of %zu voxels compared, want at least %.0f%%\n", compared,
            t3d_volume_nvoxels(a), 100 * min_compared);
    rc = 1;
  }
done:
  t3d_volume_free(a);
  t3d_volume_free(b);
  return rc;
}
