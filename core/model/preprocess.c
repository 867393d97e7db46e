/* Preprocessing with geometry (see preprocess.h for the grids and the index mapping): separable
 * axis-aligned resampling between grids that share direction cosines, HU windowing, and the
 * inverse mapping of model outputs. Not a general (rotating) resampler: no grid here is ever
 * rotated against another, which is what keeps every step separable and exact. */
#include "core/model/preprocess.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Resampled sizes beyond this per axis are almost certainly a spacing in the wrong unit. */
#define T3D_PREPROCESS_MAX_AXIS 8192

static const char *const axis_name[3] = {"x", "y", "z"};

t3d_preprocess_params t3d_preprocess_default_params(void)
{
  t3d_preprocess_params p;
  memset(&p, 0, sizeof p);
  p.spacing_mm[0] = p.spacing_mm[1] = p.spacing_mm[2] = 1.5;
  p.shape[0] = 160;
  p.shape[1] = 224;
  p.shape[2] = 224;
  p.hu_min = -1000.0f;
  p.hu_max = 1000.0f;
  p.norm = T3D_NORM_MINMAX;
  p.zscore_mean = 0.0f;
  p.zscore_std = 0.0f;
  p.pad_value = -1024.0f;
  p.interp = T3D_INTERP_TRILINEAR;
  return p;
}

static int max_threads(void)
{
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

static int thread_num(void)
{
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* ---- one axis of a separable resample ------------------------------------------------------
 * Output indices [lo, hi) of n_out take (1 - w1[o]) * src[i0[o]] + w1[o] * src[i1[o]] (arrays
 * indexed by o - lo); the others take the fill value. src_lo/src_hi bound the source indices
 * used, so passes touch only the rows they need. */
typedef struct {
  int64_t n_out, lo, hi;
  int64_t src_lo, src_hi;
  int64_t *i0, *i1;
  float *w1;
} axis_map;

static void axis_map_free(axis_map *m)
{
  free(m->i0);
  free(m->i1);
  free(m->w1);
  memset(m, 0, sizeof *m);
}

static t3d_status axis_map_alloc(axis_map *m, int64_t n_out, int64_t lo, int64_t hi)
{
  size_t n = (size_t)(hi > lo ? hi - lo : 1);
  memset(m, 0, sizeof *m);
  m->n_out = n_out;
  m->lo = lo;
  m->hi = hi > lo ? hi : lo;
  m->i0 = malloc(n * sizeof *m->i0);
  m->i1 = malloc(n * sizeof *m->i1);
  m->w1 = malloc(n * sizeof *m->w1);
  if (!m->i0 || !m->i1 || !m->w1) {
    axis_map_free(m);
    return t3d_error(T3D_ERR_NOMEM, "out of memory for resampling tables (%lld entries)", (long long)n);
  }
  return T3D_OK;
}

/* Sets entry o (absolute output index) to sample position x in source index space, clamped to
 * [clamp_lo, clamp_hi]. Linear: the two neighbours; nearest: the closer one, ties up. */
static void axis_map_set(axis_map *m, int64_t o, double x, int64_t clamp_lo, int64_t clamp_hi, t3d_interp interp)
{
  int64_t e = o - m->lo, i0;
  double w;
  if (x < (double)clamp_lo)
    x = (double)clamp_lo;
  if (x > (double)clamp_hi)
    x = (double)clamp_hi;
  if (interp == T3D_INTERP_NEAREST) {
    i0 = (int64_t)floor(x + 0.5);
    if (i0 > clamp_hi)
      i0 = clamp_hi;
    m->i0[e] = m->i1[e] = i0;
    m->w1[e] = 0.0f;
    return;
  }
  i0 = (int64_t)floor(x);
  if (i0 >= clamp_hi) {
    i0 = clamp_hi;
    w = 0.0;
  } else {
    w = x - (double)i0;
  }
  m->i0[e] = i0;
  m->i1[e] = w > 0.0 ? i0 + 1 : i0;
  m->w1[e] = (float)w;
}

static void axis_map_bounds(axis_map *m)
{
  m->src_lo = 0;
  m->src_hi = 0;
  for (int64_t o = m->lo; o < m->hi; o++) {
    int64_t e = o - m->lo;
    if (o == m->lo || m->i0[e] < m->src_lo)
      m->src_lo = m->i0[e];
    if (o == m->lo || m->i1[e] + 1 > m->src_hi)
      m->src_hi = m->i1[e] + 1;
  }
}

static inline float lerp_at(const float *src, int64_t stride, const axis_map *m, int64_t e)
{
  float w = m->w1[e];
  return (1.0f - w) * src[m->i0[e] * stride] + w * src[m->i1[e] * stride];
}

/* Reduces source slice z to the x and y tables: [vy, vx] into red, through `tmp`. The y pass
 * blends whole rows (vectorises); the x pass gathers. Downsampling in-plane, y first gathers
 * fewer voxels; upsampling, x first does. tmp holds [yn, vx] (x first) or [vy, xn] (y first). */
static void reduce_slice(float *red, float *tmp, const float *src, int64_t snx, int64_t sny, int64_t z,
                         const axis_map *mx, const axis_map *my, bool y_first)
{
  const int64_t vx = mx->hi - mx->lo, vy = my->hi - my->lo;
  const int64_t xn = mx->src_hi - mx->src_lo, yn = my->src_hi - my->src_lo;
  const float *slice = src + (size_t)z * (size_t)(sny * snx);
  if (y_first) {
    for (int64_t e = 0; e < vy; e++) {
      const float *r0 = slice + (size_t)my->i0[e] * (size_t)snx + mx->src_lo;
      const float *r1 = slice + (size_t)my->i1[e] * (size_t)snx + mx->src_lo;
      const float w = my->w1[e];
      float *d = tmp + e * xn;
      for (int64_t x = 0; x < xn; x++)
        d[x] = (1.0f - w) * r0[x] + w * r1[x];
    }
    for (int64_t j = 0; j < vy; j++) {
      const float *s = tmp + j * xn - mx->src_lo;
      float *d = red + j * vx;
      for (int64_t e = 0; e < vx; e++)
        d[e] = lerp_at(s, 1, mx, e);
    }
    return;
  }
  for (int64_t j = 0; j < yn; j++) {
    const float *s = slice + (size_t)(my->src_lo + j) * (size_t)snx;
    float *r = tmp + j * vx;
    for (int64_t e = 0; e < vx; e++)
      r[e] = lerp_at(s, 1, mx, e);
  }
  for (int64_t e = 0; e < vy; e++) {
    const float *r0 = tmp + (my->i0[e] - my->src_lo) * vx, *r1 = tmp + (my->i1[e] - my->src_lo) * vx;
    const float w = my->w1[e];
    float *d = red + e * vx;
    for (int64_t x = 0; x < vx; x++)
      d[x] = (1.0f - w) * r0[x] + w * r1[x];
  }
}

/* dst f32[mz.n_out, my.n_out, mx.n_out] from src f32[snz, sny, snx]: in-plane within each
 * source slice ("reduced" slices, see reduce_slice), then z between two reduced slices. Each thread takes a run
 * of output slices and keeps the two reduced slices it last used: source indices only grow
 * along a run, so each source slice is reduced about once, and memory stays at three slices
 * per thread whatever the sizes -- never a full-resolution intermediate. */
static t3d_status resample3(float *dst, const float *src, int64_t snx, int64_t sny, const axis_map *mx,
                            const axis_map *my, const axis_map *mz, float fill)
{
  const int64_t ox = mx->n_out, oy = my->n_out, oz = mz->n_out;
  const int64_t vx = mx->hi - mx->lo, vy = my->hi - my->lo;
  const int64_t xn = mx->src_hi - mx->src_lo, yn = my->src_hi - my->src_lo;
  const bool any = vx > 0 && vy > 0 && mz->hi > mz->lo;
  /* cost in blends, a gather counted as three */
  const bool y_first = 3 * vy * vx + vy * xn < 3 * yn * vx + vy * vx;
  const int nthreads = max_threads();
  const size_t per_thread = any ? (size_t)(2 * vy * vx + (y_first ? vy * xn : yn * vx)) : 0;
  float *scratch = NULL;

  if (any) {
    scratch = t3d_aligned_alloc((size_t)nthreads * per_thread * sizeof(float));
    if (!scratch)
      return t3d_error(T3D_ERR_NOMEM, "out of memory for resampling buffers (%zu MiB)",
                       ((size_t)nthreads * per_thread * sizeof(float)) >> 20);
  }

#pragma omp parallel num_threads(nthreads)
  {
    float *slot[2] = {NULL, NULL}, *tmp = NULL;
    int64_t tag[2] = {-1, -1};
    if (any) {
      slot[0] = scratch + (size_t)thread_num() * per_thread;
      slot[1] = slot[0] + vy * vx;
      tmp = slot[1] + vy * vx;
    }
#pragma omp for schedule(static)
    for (int64_t z = 0; z < oz; z++) {
      float *out = dst + (size_t)z * (size_t)(oy * ox);
      const float *p[2] = {NULL, NULL};
      float w = 0.0f;
      if (!any || z < mz->lo || z >= mz->hi) {
        for (int64_t i = 0; i < oy * ox; i++)
          out[i] = fill;
        continue;
      }
      {
        const int64_t e = z - mz->lo, want0 = mz->i0[e], want1 = mz->i1[e];
        int at0 = tag[0] == want0 ? 0 : (tag[1] == want0 ? 1 : -1), at1;
        if (at0 < 0) {
          at0 = tag[0] == want1 ? 1 : 0; /* keep the one needed next */
          reduce_slice(slot[at0], tmp, src, snx, sny, want0, mx, my, y_first);
          tag[at0] = want0;
        }
        at1 = tag[0] == want1 ? 0 : (tag[1] == want1 ? 1 : -1);
        if (at1 < 0) {
          at1 = 1 - at0;
          reduce_slice(slot[at1], tmp, src, snx, sny, want1, mx, my, y_first);
          tag[at1] = want1;
        }
        p[0] = slot[at0];
        p[1] = slot[at1];
        w = mz->w1[e];
      }
      for (int64_t y = 0; y < oy; y++) {
        float *d = out + y * ox;
        if (y < my->lo || y >= my->hi) {
          for (int64_t x = 0; x < ox; x++)
            d[x] = fill;
          continue;
        }
        const float *a = p[0] + (y - my->lo) * vx, *b = p[1] + (y - my->lo) * vx;
        for (int64_t x = 0; x < mx->lo; x++)
          d[x] = fill;
        for (int64_t x = 0; x < vx; x++)
          d[mx->lo + x] = (1.0f - w) * a[x] + w * b[x];
        for (int64_t x = mx->hi; x < ox; x++)
          d[x] = fill;
      }
    }
  }
  t3d_aligned_free(scratch);
  return T3D_OK;
}

/* ---- geometry --------------------------------------------------------------------------- */

static t3d_status check_volume(const t3d_volume *in)
{
  if (!in || !in->data)
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: no input volume");
  if (in->nx < 1 || in->ny < 1 || in->nz < 1)
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: input volume is empty (%lldx%lldx%lld)", (long long)in->nx,
                     (long long)in->ny, (long long)in->nz);
  for (int a = 0; a < 3; a++)
    if (!(in->spacing[a] > 0.0) || !isfinite(in->spacing[a]))
      return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: input spacing along %s is %g mm; it must be positive",
                       axis_name[a], in->spacing[a]);
  return T3D_OK;
}

/* Resampled grid size along one axis: round(n * s / t), at least 1. */
static t3d_status resampled_size(int64_t n, double s, double t, int a, int64_t *m)
{
  double v;
  if (!(t > 0.0) || !isfinite(t))
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: target spacing along %s is %g mm; it must be positive",
                     axis_name[a], t);
  v = floor((double)n * s / t + 0.5);
  if (!(v <= T3D_PREPROCESS_MAX_AXIS))
    return t3d_error(T3D_ERR_INVALID_ARG,
                     "preprocess: resampling %lld voxels of %g mm to %g mm gives %.0f voxels along %s "
                     "(limit %d); check that both spacings are in mm",
                     (long long)n, s, t, v, axis_name[a], T3D_PREPROCESS_MAX_AXIS);
  *m = v < 1.0 ? 1 : (int64_t)v;
  return T3D_OK;
}

/* Fills the geometric part of *tr: series grid, model grid (shape_zyx), crop offsets and the
 * index affines. shape_zyx NULL means the model grid is the whole resampled grid. */
static t3d_status make_transform(const t3d_volume *in, const double spacing[3], const int64_t *shape_zyx,
                                 t3d_preprocess_transform *tr)
{
  const int64_t n[3] = {in->nx, in->ny, in->nz};
  t3d_status st;

  memset(tr, 0, sizeof *tr);
  for (int a = 0; a < 3; a++) {
    int64_t m = 0, T;
    double ratio, off;
    if ((st = resampled_size(n[a], in->spacing[a], spacing[a], a, &m)) != T3D_OK)
      return st;
    T = shape_zyx ? shape_zyx[2 - a] : m;
    if (T < 1 || T > T3D_PREPROCESS_MAX_AXIS)
      return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: target shape along %s is %lld; it must be 1..%d",
                       axis_name[a], (long long)T, T3D_PREPROCESS_MAX_AXIS);
    tr->resampled_size_xyz[a] = m;
    /* floor((m - T) / 2) for either sign */
    tr->crop_offset_xyz[a] = (m - T) >= 0 ? (m - T) / 2 : -((T - m + 1) / 2);
    tr->model_shape[2 - a] = T;
    tr->series_shape[2 - a] = n[a];
    /* series x = (n-1)/2 + (model + crop - (m-1)/2) * t/s */
    ratio = spacing[a] / in->spacing[a];
    off = ratio * ((double)tr->crop_offset_xyz[a] - 0.5 * (double)(m - 1)) + 0.5 * (double)(n[a] - 1);
    tr->model_to_series[a][a] = ratio;
    tr->model_to_series[a][3] = off;
    tr->series_to_model[a][a] = 1.0 / ratio;
    tr->series_to_model[a][3] = -off / ratio;
    tr->spacing[a] = spacing[a];
    tr->series_spacing[a] = in->spacing[a];
  }
  tr->model_to_series[3][3] = tr->series_to_model[3][3] = 1.0;
  memcpy(tr->series_origin, in->origin, sizeof tr->series_origin);
  memcpy(tr->series_dir, in->dir, sizeof tr->series_dir);
  memcpy(tr->dir, in->dir, sizeof tr->dir);
  /* model origin = LPS of the series position of model index 0 */
  for (int r = 0; r < 3; r++) {
    tr->origin[r] = in->origin[r];
    for (int c = 0; c < 3; c++)
      tr->origin[r] += in->dir[r][c] * in->spacing[c] * tr->model_to_series[c][3];
  }
  return T3D_OK;
}

/* Forward tables: model index -> series index, valid where the model voxel lies in the
 * resampled grid (not padding). */
static t3d_status forward_map(const t3d_preprocess_transform *tr, int a, t3d_interp interp, axis_map *m)
{
  const int64_t T = tr->model_shape[2 - a], n = tr->series_shape[2 - a];
  const int64_t crop = tr->crop_offset_xyz[a], msz = tr->resampled_size_xyz[a];
  int64_t lo = crop < 0 ? -crop : 0, hi = msz - crop < T ? msz - crop : T;
  t3d_status st = axis_map_alloc(m, T, lo, hi);
  if (st != T3D_OK)
    return st;
  for (int64_t q = m->lo; q < m->hi; q++)
    axis_map_set(m, q, tr->model_to_series[a][a] * (double)q + tr->model_to_series[a][3], 0, n - 1, interp);
  axis_map_bounds(m);
  return T3D_OK;
}

/* Series index p -> nearest model index, or -1 when that lies outside the model grid. The
 * resampled index is clamped to the resampled grid first, as the image was. */
static int64_t inverse_nearest(const t3d_preprocess_transform *tr, int a, int64_t p)
{
  const int64_t T = tr->model_shape[2 - a], crop = tr->crop_offset_xyz[a], msz = tr->resampled_size_xyz[a];
  double q = tr->series_to_model[a][a] * (double)p + tr->series_to_model[a][3];
  int64_t r = (int64_t)floor(q + (double)crop + 0.5);
  if (r < 0)
    r = 0;
  if (r > msz - 1)
    r = msz - 1;
  return (r - crop >= 0 && r - crop < T) ? r - crop : -1;
}

/* Inverse tables: series index -> model index, valid where inverse_nearest is; the valid
 * series indices form one run because the mapping is monotone. */
static t3d_status inverse_map(const t3d_preprocess_transform *tr, int a, t3d_interp interp, axis_map *m)
{
  const int64_t n = tr->series_shape[2 - a], T = tr->model_shape[2 - a];
  const int64_t crop = tr->crop_offset_xyz[a], msz = tr->resampled_size_xyz[a];
  /* model indices that came from the series */
  const int64_t qlo = crop < 0 ? -crop : 0, qhi = (msz - crop < T ? msz - crop : T) - 1;
  int64_t lo = n, hi = n;
  t3d_status st;

  for (int64_t p = 0; p < n; p++)
    if (inverse_nearest(tr, a, p) >= 0) {
      if (lo == n)
        lo = p;
      hi = p + 1;
    }
  if (lo == n)
    lo = hi = 0;
  if ((st = axis_map_alloc(m, n, lo, hi)) != T3D_OK)
    return st;
  for (int64_t p = m->lo; p < m->hi; p++)
    axis_map_set(m, p, tr->series_to_model[a][a] * (double)p + tr->series_to_model[a][3], qlo, qhi, interp);
  axis_map_bounds(m);
  return T3D_OK;
}

void t3d_preprocess_model_to_series(const t3d_preprocess_transform *tr, const double model_idx[3],
                                    double series_idx[3])
{
  for (int r = 0; r < 3; r++) {
    series_idx[r] = tr->model_to_series[r][3];
    for (int c = 0; c < 3; c++)
      series_idx[r] += tr->model_to_series[r][c] * model_idx[c];
  }
}

void t3d_preprocess_model_to_lps(const t3d_preprocess_transform *tr, const double model_idx[3], double lps[3])
{
  for (int r = 0; r < 3; r++) {
    lps[r] = tr->origin[r];
    for (int c = 0; c < 3; c++)
      lps[r] += tr->dir[r][c] * tr->spacing[c] * model_idx[c];
  }
}

t3d_status t3d_preprocess_lps_to_series(const t3d_preprocess_transform *tr, const double lps[3],
                                        double series_idx[3])
{
  double m[3][3], d[3], det;
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++)
      m[r][c] = tr->series_dir[r][c] * tr->series_spacing[c];
    d[r] = lps[r] - tr->series_origin[r];
  }
  det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
        m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  if (!(fabs(det) > 1e-12) || !isfinite(det))
    return t3d_error(T3D_ERR_INVALID_ARG, "series direction cosines are degenerate (det %g); cannot invert", det);
  /* Cramer's rule: column c of m replaced by d */
  for (int c = 0; c < 3; c++) {
    double mc[3][3];
    memcpy(mc, m, sizeof mc);
    for (int r = 0; r < 3; r++)
      mc[r][c] = d[r];
    series_idx[c] = (mc[0][0] * (mc[1][1] * mc[2][2] - mc[1][2] * mc[2][1]) -
                     mc[0][1] * (mc[1][0] * mc[2][2] - mc[1][2] * mc[2][0]) +
                     mc[0][2] * (mc[1][0] * mc[2][1] - mc[1][1] * mc[2][0])) /
                    det;
  }
  return T3D_OK;
}

/* ---- public pipeline -------------------------------------------------------------------- */

t3d_status t3d_preprocess_resample(const t3d_volume *in, const double spacing_mm[3], t3d_interp interp,
                                   t3d_volume **out)
{
  t3d_preprocess_transform tr;
  axis_map m[3];
  t3d_volume *v = NULL;
  t3d_status st;

  memset(m, 0, sizeof m);
  *out = NULL;
  if ((st = check_volume(in)) != T3D_OK)
    return st;
  if (interp != T3D_INTERP_TRILINEAR && interp != T3D_INTERP_NEAREST)
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: unknown interpolation %d", (int)interp);
  if ((st = make_transform(in, spacing_mm, NULL, &tr)) != T3D_OK)
    return st;
  for (int a = 0; a < 3; a++)
    if ((st = forward_map(&tr, a, interp, &m[a])) != T3D_OK)
      goto cleanup;
  if ((st = t3d_volume_new(&v, tr.model_shape[2], tr.model_shape[1], tr.model_shape[0])) != T3D_OK)
    goto cleanup;
  if ((st = resample3(v->data, in->data, in->nx, in->ny, &m[0], &m[1], &m[2], 0.0f)) != T3D_OK)
    goto cleanup;
  for (int a = 0; a < 3; a++)
    v->spacing[a] = tr.spacing[a];
  memcpy(v->origin, tr.origin, sizeof v->origin);
  memcpy(v->dir, tr.dir, sizeof v->dir);
  v->meta = in->meta;
  memcpy(v->geometry_note, in->geometry_note, sizeof v->geometry_note);
  *out = v;
  v = NULL;

cleanup:
  for (int a = 0; a < 3; a++)
    axis_map_free(&m[a]);
  t3d_volume_free(v);
  return st;
}

static t3d_status check_params(const t3d_preprocess_params *p)
{
  if (!(isfinite(p->hu_min) && isfinite(p->hu_max) && p->hu_min < p->hu_max))
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: HU window [%g, %g] is empty; hu_min must be below hu_max",
                     (double)p->hu_min, (double)p->hu_max);
  if (p->norm != T3D_NORM_MINMAX && p->norm != T3D_NORM_ZSCORE)
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: unknown normalisation %d", (int)p->norm);
  if (p->interp != T3D_INTERP_TRILINEAR && p->interp != T3D_INTERP_NEAREST)
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: unknown interpolation %d", (int)p->interp);
  if (!isfinite(p->pad_value))
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: pad value %g is not finite", (double)p->pad_value);
  if (p->norm == T3D_NORM_ZSCORE && !(isfinite(p->zscore_mean) && isfinite(p->zscore_std)))
    return t3d_error(T3D_ERR_INVALID_ARG, "preprocess: z-score mean %g / std %g are not finite",
                     (double)p->zscore_mean, (double)p->zscore_std);
  return T3D_OK;
}

/* NaN (from a corrupt voxel) becomes lo rather than poisoning the whole encoder input. */
static inline float clip_hu(float v, float lo, float hi) { return v >= lo ? (v > hi ? hi : v) : lo; }

/* Mean and standard deviation of the clipped HU in the box [lo, hi) of x, y, z of a [oz,oy,ox]
 * array. Per-slice partial sums added in slice order: the result does not depend on the
 * number of threads. */
static t3d_status box_stats(const float *v, const int64_t o[3], const int64_t lo[3], const int64_t hi[3], float hu_min,
                            float hu_max, double *mean, double *std)
{
  int64_t nzb = hi[2] - lo[2];
  double *part = calloc((size_t)(nzb > 0 ? nzb : 1) * 2, sizeof *part);
  double s = 0.0, s2 = 0.0, count = (double)(hi[0] - lo[0]) * (double)(hi[1] - lo[1]) * (double)nzb;
  if (!part)
    return t3d_error(T3D_ERR_NOMEM, "out of memory for z-score statistics");
#pragma omp parallel for schedule(static)
  for (int64_t z = lo[2]; z < hi[2]; z++) {
    double a = 0.0, b = 0.0;
    for (int64_t y = lo[1]; y < hi[1]; y++) {
      const float *row = v + ((size_t)z * (size_t)o[1] + (size_t)y) * (size_t)o[0];
      for (int64_t x = lo[0]; x < hi[0]; x++) {
        double c = clip_hu(row[x], hu_min, hu_max);
        a += c;
        b += c * c;
      }
    }
    part[2 * (z - lo[2])] = a;
    part[2 * (z - lo[2]) + 1] = b;
  }
  for (int64_t z = 0; z < nzb; z++) {
    s += part[2 * z];
    s2 += part[2 * z + 1];
  }
  free(part);
  *mean = count > 0 ? s / count : 0.0;
  *std = count > 0 ? sqrt(fmax(s2 / count - *mean * *mean, 0.0)) : 0.0;
  return T3D_OK;
}

t3d_status t3d_preprocess(const t3d_volume *in, const t3d_preprocess_params *params, t3d_tensor **out,
                          t3d_preprocess_transform *tr)
{
  t3d_preprocess_params p = params ? *params : t3d_preprocess_default_params();
  axis_map m[3];
  t3d_tensor *t = NULL;
  float *v;
  int64_t shape[5], count;
  t3d_status st;

  memset(m, 0, sizeof m);
  *out = NULL;
  if ((st = check_volume(in)) != T3D_OK || (st = check_params(&p)) != T3D_OK)
    return st;
  if ((st = make_transform(in, p.spacing_mm, p.shape, tr)) != T3D_OK)
    return st;
  for (int a = 0; a < 3; a++)
    if ((st = forward_map(tr, a, p.interp, &m[a])) != T3D_OK)
      goto cleanup;
  shape[0] = shape[1] = 1;
  shape[2] = tr->model_shape[0];
  shape[3] = tr->model_shape[1];
  shape[4] = tr->model_shape[2];
  if ((st = t3d_tensor_new(&t, T3D_F32, 5, shape)) != T3D_OK)
    goto cleanup;
  v = t->data;

  /* (1) resample, padding with the pad value in HU */
  if ((st = resample3(v, in->data, in->nx, in->ny, &m[0], &m[1], &m[2], p.pad_value)) != T3D_OK)
    goto cleanup;

  /* (2) clip and normalise, padding included (so it becomes the normalised pad value) */
  tr->hu_min = p.hu_min;
  tr->hu_max = p.hu_max;
  if (p.norm == T3D_NORM_MINMAX) {
    tr->norm_shift = p.hu_min;
    tr->norm_scale = (float)(1.0 / ((double)p.hu_max - (double)p.hu_min));
  } else {
    double mean = p.zscore_mean, sd = p.zscore_std;
    if (!(p.zscore_std > 0.0f)) {
      const int64_t o[3] = {tr->model_shape[2], tr->model_shape[1], tr->model_shape[0]};
      const int64_t lo[3] = {m[0].lo, m[1].lo, m[2].lo}, hi[3] = {m[0].hi, m[1].hi, m[2].hi};
      if ((st = box_stats(v, o, lo, hi, p.hu_min, p.hu_max, &mean, &sd)) != T3D_OK)
        goto cleanup;
    }
    if (sd < 1e-6)
      sd = 1.0;
    tr->norm_shift = (float)mean;
    tr->norm_scale = (float)(1.0 / sd);
  }
  tr->pad_normalised = (clip_hu(p.pad_value, p.hu_min, p.hu_max) - tr->norm_shift) * tr->norm_scale;
  count = t3d_tensor_numel(t);
  {
    const float lo = tr->hu_min, hi = tr->hu_max, shift = tr->norm_shift, scale = tr->norm_scale;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; i++)
      v[i] = (clip_hu(v[i], lo, hi) - shift) * scale;
  }
  /* (3) the crop/pad happened in (1): the tables only cover the model grid. */
  *out = t;
  t = NULL;

cleanup:
  for (int a = 0; a < 3; a++)
    axis_map_free(&m[a]);
  t3d_tensor_free(t);
  return st;
}

/* ---- back to the series grid ------------------------------------------------------------ */

/* Accepts [Z,Y,X] or [1,1,Z,Y,X] equal to the model shape. */
static t3d_status check_model_tensor(const t3d_preprocess_transform *tr, const t3d_tensor *t, const char *what)
{
  const int64_t *s;
  if (!tr || !t || !t->data)
    return t3d_error(T3D_ERR_INVALID_ARG, "%s: no transform or no tensor", what);
  if (t->ndim == 5 && t->shape[0] == 1 && t->shape[1] == 1)
    s = t->shape + 2;
  else if (t->ndim == 3)
    s = t->shape;
  else
    return t3d_error(T3D_ERR_SHAPE, "%s: expected a [Z,Y,X] or [1,1,Z,Y,X] tensor, got %d dimensions", what, t->ndim);
  if (s[0] != tr->model_shape[0] || s[1] != tr->model_shape[1] || s[2] != tr->model_shape[2])
    return t3d_error(T3D_ERR_SHAPE, "%s: tensor is %lldx%lldx%lld (z,y,x) but the model grid is %lldx%lldx%lld", what,
                     (long long)s[0], (long long)s[1], (long long)s[2], (long long)tr->model_shape[0],
                     (long long)tr->model_shape[1], (long long)tr->model_shape[2]);
  return T3D_OK;
}

t3d_status t3d_preprocess_labels_to_series(const t3d_preprocess_transform *tr, const t3d_tensor *labels,
                                           t3d_tensor **out)
{
  int64_t *idx[3] = {NULL, NULL, NULL};
  t3d_tensor *t = NULL;
  t3d_status st;
  int64_t nl;

  *out = NULL;
  if ((st = check_model_tensor(tr, labels, "labels to series")) != T3D_OK)
    return st;
  if (labels->dtype != T3D_U8 && labels->dtype != T3D_I32)
    return t3d_error(T3D_ERR_SHAPE, "labels to series: labels must be U8 or I32, not %s", t3d_dtype_name(labels->dtype));
  nl = t3d_tensor_numel(labels);
  if (labels->dtype == T3D_I32) {
    const int32_t *l = labels->data;
    for (int64_t i = 0; i < nl; i++)
      if (l[i] < 0 || l[i] > 255)
        return t3d_error(T3D_ERR_INVALID_ARG, "labels to series: label %d at voxel %lld is outside 0..255", (int)l[i],
                         (long long)i);
  }
  if ((st = t3d_tensor_new(&t, T3D_U8, 3, tr->series_shape)) != T3D_OK)
    goto cleanup;
  /* per axis: series index -> flat model offset along that axis, or -1 */
  for (int a = 0; a < 3; a++) {
    const int64_t n = tr->series_shape[2 - a];
    const int64_t stride = a == 0 ? 1 : (a == 1 ? tr->model_shape[2] : tr->model_shape[2] * tr->model_shape[1]);
    idx[a] = malloc((size_t)n * sizeof *idx[a]);
    if (!idx[a]) {
      st = t3d_error(T3D_ERR_NOMEM, "labels to series: out of memory");
      goto cleanup;
    }
    for (int64_t p = 0; p < n; p++) {
      int64_t q = inverse_nearest(tr, a, p);
      idx[a][p] = q < 0 ? -1 : q * stride;
    }
  }
  {
    const int64_t nz = tr->series_shape[0], ny = tr->series_shape[1], nx = tr->series_shape[2];
    const bool is_u8 = labels->dtype == T3D_U8;
    const uint8_t *l8 = labels->data;
    const int32_t *l32 = labels->data;
    uint8_t *o = t->data;
    int64_t *const ix = idx[0], *const iy = idx[1], *const iz = idx[2];
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < nz; k++) {
      for (int64_t j = 0; j < ny; j++) {
        uint8_t *d = o + ((size_t)k * (size_t)ny + (size_t)j) * (size_t)nx;
        if (iz[k] < 0 || iy[j] < 0)
          continue; /* already 0 */
        for (int64_t i = 0; i < nx; i++) {
          int64_t off = iz[k] + iy[j] + ix[i];
          if (ix[i] >= 0)
            d[i] = is_u8 ? l8[off] : (uint8_t)l32[off];
        }
      }
    }
  }
  *out = t;
  t = NULL;

cleanup:
  for (int a = 0; a < 3; a++)
    free(idx[a]);
  t3d_tensor_free(t);
  return st;
}

t3d_status t3d_preprocess_scores_to_series(const t3d_preprocess_transform *tr, const t3d_tensor *scores,
                                           t3d_tensor **out)
{
  axis_map m[3];
  t3d_tensor *t = NULL;
  uint8_t *top = NULL;
  const int64_t *s;
  t3d_status st = T3D_OK;

  memset(m, 0, sizeof m);
  *out = NULL;
  if (!tr || !scores || !scores->data)
    return t3d_error(T3D_ERR_INVALID_ARG, "scores to series: no transform or no tensor");
  if (scores->dtype != T3D_F32)
    return t3d_error(T3D_ERR_SHAPE, "scores to series: scores must be F32, not %s", t3d_dtype_name(scores->dtype));
  if (scores->ndim == 5 && scores->shape[0] == 1)
    s = scores->shape + 1;
  else if (scores->ndim == 4)
    s = scores->shape;
  else
    return t3d_error(T3D_ERR_SHAPE, "scores to series: expected a [C,Z,Y,X] or [1,C,Z,Y,X] tensor, got %d dimensions",
                     scores->ndim);
  if (s[0] < 1 || s[0] > 255)
    return t3d_error(T3D_ERR_SHAPE, "scores to series: %lld classes; labels hold 1..255", (long long)s[0]);
  if (s[1] != tr->model_shape[0] || s[2] != tr->model_shape[1] || s[3] != tr->model_shape[2])
    return t3d_error(T3D_ERR_SHAPE, "scores to series: scores are %lldx%lldx%lld (z,y,x) but the model grid is %lldx%lldx%lld",
                     (long long)s[1], (long long)s[2], (long long)s[3], (long long)tr->model_shape[0],
                     (long long)tr->model_shape[1], (long long)tr->model_shape[2]);
  {
    const int C = (int)s[0];
    const int64_t plane = s[2] * s[3], cs = s[1] * plane;
    const float *src = scores->data;

    /* the class each model voxel gives: where all eight around a series voxel agree, so does
     * the interpolation (a convex combination, the same weights for every class) */
    top = malloc((size_t)cs);
    if (!top) {
      st = t3d_error(T3D_ERR_NOMEM, "scores to series: out of memory");
      goto cleanup;
    }
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < cs; q++) {
      float v = src[q];
      int b = 0;
      for (int c = 1; c < C; c++)
        if (src[(size_t)c * (size_t)cs + (size_t)q] > v) {
          v = src[(size_t)c * (size_t)cs + (size_t)q];
          b = c;
        }
      top[q] = (uint8_t)b;
    }
    for (int a = 0; a < 3; a++)
      if ((st = inverse_map(tr, a, T3D_INTERP_TRILINEAR, &m[a])) != T3D_OK)
        goto cleanup;
    if ((st = t3d_tensor_new(&t, T3D_U8, 3, tr->series_shape)) != T3D_OK)
      goto cleanup;
    {
      const int64_t ny = tr->series_shape[1], nx = tr->series_shape[2];
      const axis_map *mx = &m[0], *my = &m[1], *mz = &m[2];
      uint8_t *o = t->data;
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t k = mz->lo; k < mz->hi; k++) {
        const int64_t ez = k - mz->lo, z0 = mz->i0[ez] * plane, z1 = mz->i1[ez] * plane;
        const float wz = mz->w1[ez];
        for (int64_t j = my->lo; j < my->hi; j++) {
          const int64_t ey = j - my->lo, y0 = my->i0[ey] * s[3], y1 = my->i1[ey] * s[3];
          const float wy = my->w1[ey];
          uint8_t *d = o + ((size_t)k * (size_t)ny + (size_t)j) * (size_t)nx;
          for (int64_t i = mx->lo; i < mx->hi; i++) {
            const int64_t ex = i - mx->lo, x0 = mx->i0[ex], x1 = mx->i1[ex];
            const int64_t off[8] = {z0 + y0 + x0, z0 + y0 + x1, z0 + y1 + x0, z0 + y1 + x1,
                                    z1 + y0 + x0, z1 + y0 + x1, z1 + y1 + x0, z1 + y1 + x1};
            const uint8_t b = top[off[0]];
            if (top[off[1]] == b && top[off[2]] == b && top[off[3]] == b && top[off[4]] == b && top[off[5]] == b &&
                top[off[6]] == b && top[off[7]] == b) {
              d[i] = b;
              continue;
            }
            {
              const float wx = mx->w1[ex];
              const float w[8] = {(1 - wz) * (1 - wy) * (1 - wx), (1 - wz) * (1 - wy) * wx, (1 - wz) * wy * (1 - wx),
                                  (1 - wz) * wy * wx,             wz * (1 - wy) * (1 - wx), wz * (1 - wy) * wx,
                                  wz * wy * (1 - wx),             wz * wy * wx};
              float bv = 0;
              int bc = 0;
              for (int c = 0; c < C; c++) {
                const float *p = src + (size_t)c * (size_t)cs;
                float v = 0;
                for (int n = 0; n < 8; n++)
                  v += w[n] * p[off[n]];
                if (c == 0 || v > bv) {
                  bv = v;
                  bc = c;
                }
              }
              d[i] = (uint8_t)bc;
            }
          }
        }
      }
    }
  }
  *out = t;
  t = NULL;

cleanup:
  for (int a = 0; a < 3; a++)
    axis_map_free(&m[a]);
  free(top);
  t3d_tensor_free(t);
  return st;
}

t3d_status t3d_preprocess_map_to_series(const t3d_preprocess_transform *tr, const t3d_tensor *map,
                                        t3d_tensor **out)
{
  axis_map m[3];
  t3d_tensor *t = NULL;
  t3d_status st;

  memset(m, 0, sizeof m);
  *out = NULL;
  if ((st = check_model_tensor(tr, map, "map to series")) != T3D_OK)
    return st;
  if (map->dtype != T3D_F32)
    return t3d_error(T3D_ERR_SHAPE, "map to series: map must be F32, not %s", t3d_dtype_name(map->dtype));
  for (int a = 0; a < 3; a++)
    if ((st = inverse_map(tr, a, T3D_INTERP_TRILINEAR, &m[a])) != T3D_OK)
      goto cleanup;
  if ((st = t3d_tensor_new(&t, T3D_F32, 3, tr->series_shape)) != T3D_OK)
    goto cleanup;
  if ((st = resample3(t->data, map->data, tr->model_shape[2], tr->model_shape[1], &m[0], &m[1], &m[2], 0.0f)) != T3D_OK)
    goto cleanup;
  *out = t;
  t = NULL;

cleanup:
  for (int a = 0; a < 3; a++)
    axis_map_free(&m[a]);
  t3d_tensor_free(t);
  return st;
}

t3d_status t3d_label_volumes_ml(const t3d_tensor *labels, const double spacing[3], const double dir[3][3],
                                int nclasses, double *ml)
{
  int64_t n, *count = NULL;
  double det = 1.0, voxel;

  if (!labels || !labels->data || !spacing || !ml || nclasses < 1 || nclasses > 256)
    return t3d_error(T3D_ERR_INVALID_ARG, "label volumes: need labels, spacing, 1..256 classes and an output array");
  if (labels->dtype != T3D_U8 && labels->dtype != T3D_I32)
    return t3d_error(T3D_ERR_SHAPE, "label volumes: labels must be U8 or I32, not %s", t3d_dtype_name(labels->dtype));
  if (dir)
    det = dir[0][0] * (dir[1][1] * dir[2][2] - dir[1][2] * dir[2][1]) -
          dir[0][1] * (dir[1][0] * dir[2][2] - dir[1][2] * dir[2][0]) +
          dir[0][2] * (dir[1][0] * dir[2][1] - dir[1][1] * dir[2][0]);
  voxel = fabs(det) * spacing[0] * spacing[1] * spacing[2];
  if (!(voxel > 0.0) || !isfinite(voxel))
    return t3d_error(T3D_ERR_INVALID_ARG, "label volumes: voxel volume %g mm^3 from spacing %g x %g x %g", voxel,
                     spacing[0], spacing[1], spacing[2]);
  count = calloc(256, sizeof *count);
  if (!count)
    return t3d_error(T3D_ERR_NOMEM, "label volumes: out of memory");
  n = t3d_tensor_numel(labels);
  if (labels->dtype == T3D_U8) {
    const uint8_t *l = labels->data;
    for (int64_t i = 0; i < n; i++)
      count[l[i]]++;
  } else {
    const int32_t *l = labels->data;
    for (int64_t i = 0; i < n; i++)
      if (l[i] >= 0 && l[i] < nclasses)
        count[l[i]]++;
  }
  for (int c = 0; c < nclasses; c++)
    ml[c] = (double)count[c] * voxel / 1000.0;
  free(count);
  return T3D_OK;
}
