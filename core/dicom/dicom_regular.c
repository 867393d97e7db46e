/* Puts a series whose slices are sheared (gantry tilt) or unevenly spaced onto a regular grid in
 * patient space: bilinear within each slice, linear between slices. Geometry only: the loader
 * (dicom.c) decides whether a series needs it, and records what was done. */
#include <math.h>

#include "core/dicom/dicom_internal.h"

/* Shifts within this many pixels of a whole number count as whole: positions are written with
 * a few decimals, and a grid must not grow by a column for 1e-9 of one. */
#define T3D_PIXEL_EPS 1e-6

void t3d_dcm_grid_for(const t3d_dcm_stack *st, double dz, t3d_dcm_grid *g)
{
  double min_i = 0, max_i = 0, min_j = 0, max_j = 0;
  for (size_t k = 0; k < st->nslots; k++) {
    double oi = st->off[2 * k], oj = st->off[2 * k + 1];
    min_i = fmin(min_i, oi), max_i = fmax(max_i, oi);
    min_j = fmin(min_j, oj), max_j = fmax(max_j, oj);
  }
  g->lo_i = (int64_t)floor(min_i + T3D_PIXEL_EPS);
  g->lo_j = (int64_t)floor(min_j + T3D_PIXEL_EPS);
  g->nx = st->nx + (int64_t)ceil(max_i - T3D_PIXEL_EPS) - g->lo_i;
  g->ny = st->ny + (int64_t)ceil(max_j - T3D_PIXEL_EPS) - g->lo_j;
  g->z0 = st->z[0];
  g->dz = dz;
  g->nz = st->nslots > 1 ? (int64_t)floor((st->z[st->nslots - 1] - st->z[0]) / dz + 1e-6) + 1 : 1;
}

/* Value of slice s at pixel (x, y), bilinear; NAN outside the slice. */
static float sample(const float *s, int64_t nx, int64_t ny, double x, double y)
{
  if (x < -T3D_PIXEL_EPS || y < -T3D_PIXEL_EPS || x > (double)(nx - 1) + T3D_PIXEL_EPS ||
      y > (double)(ny - 1) + T3D_PIXEL_EPS)
    return NAN;
  int64_t x0 = (int64_t)floor(x), y0 = (int64_t)floor(y);
  if (x0 < 0)
    x0 = 0;
  if (y0 < 0)
    y0 = 0;
  if (x0 > nx - 1)
    x0 = nx - 1;
  if (y0 > ny - 1)
    y0 = ny - 1;
  double fx = x - (double)x0, fy = y - (double)y0;
  int64_t x1 = fx > T3D_PIXEL_EPS && x0 + 1 < nx ? x0 + 1 : x0, y1 = fy > T3D_PIXEL_EPS && y0 + 1 < ny ? y0 + 1 : y0;
  if (x1 == x0)
    fx = 0;
  if (y1 == y0)
    fy = 0;
  const float *r0 = s + y0 * nx, *r1 = s + y1 * nx;
  double top = r0[x0] + fx * (r0[x1] - r0[x0]), bottom = r1[x0] + fx * (r1[x1] - r1[x0]);
  return (float)(top + fy * (bottom - top));
}

void t3d_dcm_resample(const t3d_dcm_stack *st, const float *src, const t3d_dcm_grid *g, float fill, float *dst)
{
  size_t a = 0, plane = (size_t)(st->nx * st->ny);
  for (int64_t k = 0; k < g->nz; k++) {
    double z = g->z0 + (double)k * g->dz, t = 0;
    while (a + 1 < st->nslots && st->z[a + 1] <= z + 1e-6)
      a++;
    if (a + 1 < st->nslots) {
      t = (z - st->z[a]) / (st->z[a + 1] - st->z[a]);
      if (t < 1e-6)
        t = 0;
    }
    size_t b = t > 0 ? a + 1 : a;
    const float *sa = src + a * plane, *sb = src + b * plane;
    float *out = dst + (size_t)k * (size_t)(g->nx * g->ny);
    for (int64_t j = 0; j < g->ny; j++)
      for (int64_t i = 0; i < g->nx; i++) {
        double x = (double)(i + g->lo_i), y = (double)(j + g->lo_j);
        float va = sample(sa, st->nx, st->ny, x - st->off[2 * a], y - st->off[2 * a + 1]);
        float vb = b == a ? va : sample(sb, st->nx, st->ny, x - st->off[2 * b], y - st->off[2 * b + 1]);
        out[j * g->nx + i] = isnan(va) || isnan(vb) ? fill : (float)(va + t * ((double)vb - va));
      }
  }
}
