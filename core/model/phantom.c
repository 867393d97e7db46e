/* Minimal synthetic CT phantom (see phantom.h): analytic shapes evaluated at each voxel's
 * patient position. Not a realistic anatomy model and not a simulator of CT physics. */
#include "core/model/phantom.h"
#include "core/model/phantom_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

t3d_phantom_params t3d_phantom_default_params(void)
{
  t3d_phantom_params p;
  memset(&p, 0, sizeof p);
  p.nx = 64, p.ny = 64, p.nz = 24;
  p.spacing[0] = 0.8, p.spacing[1] = 0.8, p.spacing[2] = 2.5;
  p.orientation = T3D_PHANTOM_AXIAL;
  p.seed = 1;
  p.noise_hu = 10;
  return p;
}

int t3d_phantom_orientation_parse(const char *name, t3d_phantom_orientation *out)
{
  static const char *const names[] = {"axial", "sagittal", "coronal", "oblique"};
  for (int i = 0; i < 4; i++)
    if (name && strcmp(name, names[i]) == 0) {
      *out = (t3d_phantom_orientation)i;
      return 0;
    }
  return -1;
}

void t3d_phantom_set_directions(t3d_volume *v, t3d_phantom_orientation o)
{
  double d[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}; /* d[c] = direction of axis c */
  if (o == T3D_PHANTOM_SAGITTAL) {
    double s[3][3] = {{0, 1, 0}, {0, 0, -1}, {-1, 0, 0}};
    memcpy(d, s, sizeof d);
  } else if (o == T3D_PHANTOM_CORONAL) {
    double s[3][3] = {{1, 0, 0}, {0, 0, -1}, {0, 1, 0}};
    memcpy(d, s, sizeof d);
  } else if (o == T3D_PHANTOM_OBLIQUE) {
    double a = 20 * M_PI / 180, b = 15 * M_PI / 180;
    double rx[3][3] = {{1, 0, 0}, {0, cos(a), -sin(a)}, {0, sin(a), cos(a)}};
    double rz[3][3] = {{cos(b), -sin(b), 0}, {sin(b), cos(b), 0}, {0, 0, 1}};
    double r[3][3] = {{0}};
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++)
        for (int k = 0; k < 3; k++)
          r[i][j] += rz[i][k] * rx[k][j];
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < 3; i++)
        d[c][i] = r[i][c];
  }
  for (int c = 0; c < 3; c++)
    for (int r = 0; r < 3; r++)
      v->dir[r][c] = d[c][r];
}

static double sq(double x) { return x * x; }

t3d_status t3d_phantom_ct(const t3d_phantom_params *p, t3d_volume **out)
{
  t3d_status st;
  t3d_volume *v = NULL;
  *out = NULL;
  if (!p || (unsigned)p->orientation > T3D_PHANTOM_OBLIQUE)
    return t3d_error(T3D_ERR_INVALID_ARG, "phantom: parameters missing or unknown orientation");
  for (int a = 0; a < 3; a++)
    if (!(p->spacing[a] > 0) || !isfinite(p->spacing[a]))
      return t3d_error(T3D_ERR_INVALID_ARG, "phantom: spacing %g along axis %d must be positive", p->spacing[a], a);
  if ((st = t3d_volume_new(&v, p->nx, p->ny, p->nz)) != T3D_OK)
    return st;
  for (int a = 0; a < 3; a++)
    v->spacing[a] = p->spacing[a];
  t3d_phantom_set_directions(v, p->orientation);
  /* Centre the grid on the LPS origin. */
  double half[3] = {(double)(p->nx - 1) / 2, (double)(p->ny - 1) / 2, (double)(p->nz - 1) / 2};
  for (int r = 0; r < 3; r++) {
    v->origin[r] = 0;
    for (int c = 0; c < 3; c++)
      v->origin[r] -= v->dir[r][c] * v->spacing[c] * half[c];
  }
  /* Half extents of the grid's bounding box along L, P, S: the anatomy fills the field of view. */
  double ext[3] = {0, 0, 0};
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++)
      ext[r] += fabs(v->dir[r][c]) * v->spacing[c] * half[c];
  for (int r = 0; r < 3; r++)
    if (ext[r] < 1e-6)
      ext[r] = 1e-6;

  uint64_t rng = p->seed * 0x2545f4914f6cdd1dull + 1;
  /* Nodule in the right lung (patient right is -L), position jittered by the seed. */
  double nod[3] = {-0.42 + 0.1 * (t3d_phantom_uniform(&rng) - 0.5), -0.05 + 0.2 * (t3d_phantom_uniform(&rng) - 0.5),
                   0.4 * (t3d_phantom_uniform(&rng) - 0.5)};
  double nod_r = 0.09 + 0.04 * t3d_phantom_uniform(&rng);

  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        double w[3];
        t3d_volume_index_to_lps(v, (double)i, (double)j, (double)k, w);
        double u = w[0] / ext[0], q = w[1] / ext[1], s = w[2] / ext[2]; /* -1..1 over the box */
        double hu = -1000;                                                /* air */
        if (sq(u / 0.9) + sq(q / 0.7) < 1) {
          hu = 0; /* soft tissue */
          for (int side = -1; side <= 1; side += 2)
            if (sq((u - side * 0.42) / 0.3) + sq((q + 0.05) / 0.4) + sq(s / 0.95) < 1)
              hu = -850;
          if (sq(u / 0.12) + sq((q - 0.5) / 0.12) < 1) /* spine: posterior is +P */
            hu = 700;
          if (sq(u - nod[0]) + sq(q - nod[1]) + sq(s - nod[2]) < sq(nod_r))
            hu = 40;
        }
        if (p->noise_hu > 0)
          hu += p->noise_hu * t3d_phantom_gaussian(&rng);
        hu = round(hu);
        v->data[(k * v->ny + j) * v->nx + i] = (float)(hu < -1024 ? -1024 : hu > 3071 ? 3071 : hu);
      }

  snprintf(v->meta.patient_name, sizeof v->meta.patient_name, "T3D^Phantom");
  snprintf(v->meta.patient_id, sizeof v->meta.patient_id, "T3D-PHANTOM-%llu", (unsigned long long)p->seed);
  snprintf(v->meta.study_description, sizeof v->meta.study_description, "t3d synthetic chest phantom");
  snprintf(v->meta.series_description, sizeof v->meta.series_description, "phantom %lldx%lldx%lld",
           (long long)p->nx, (long long)p->ny, (long long)p->nz);
  snprintf(v->meta.modality, sizeof v->meta.modality, "CT");
  snprintf(v->meta.body_part, sizeof v->meta.body_part, "CHEST");
  snprintf(v->meta.series_number, sizeof v->meta.series_number, "1");
  *out = v;
  return T3D_OK;
}
