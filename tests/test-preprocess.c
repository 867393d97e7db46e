/* Preprocessing with geometry on synthetic volumes of known geometry (anisotropic spacing,
 * oblique direction cosines, odd sizes): physical positions survive resample + crop/pad, masks
 * map back onto the same voxels, the identity case is exact, bad input is refused. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/model/preprocess.h"
#include "core/base/status.h"
#include "core/base/tensor.h"
#include "core/base/volume.h"
#include "tests/check.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Columns of R = Rz(a) * Rx(b): an oblique but orthonormal axis frame. */
static void oblique_dir(double dir[3][3], double a_deg, double b_deg)
{
  double a = a_deg * M_PI / 180.0, b = b_deg * M_PI / 180.0;
  double rz[3][3] = {{cos(a), -sin(a), 0}, {sin(a), cos(a), 0}, {0, 0, 1}};
  double rx[3][3] = {{1, 0, 0}, {0, cos(b), -sin(b)}, {0, sin(b), cos(b)}};
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++) {
      dir[r][c] = 0;
      for (int k = 0; k < 3; k++)
        dir[r][c] += rz[r][k] * rx[k][c];
    }
}

static t3d_volume *make_volume(int64_t nx, int64_t ny, int64_t nz, const double sp[3], double a_deg, double b_deg)
{
  t3d_volume *v = NULL;
  if (t3d_volume_new(&v, nx, ny, nz) != T3D_OK)
    return NULL;
  for (int a = 0; a < 3; a++)
    v->spacing[a] = sp[a];
  v->origin[0] = -31.7;
  v->origin[1] = 12.9;
  v->origin[2] = 104.3;
  oblique_dir(v->dir, a_deg, b_deg);
  return v;
}

static uint32_t rng_state = 12345u;
static float rnd(void) /* uniform in [0, 1) */
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)(rng_state >> 8) / 16777216.0f;
}

static double dist3(const double a[3], const double b[3])
{
  return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

/* ---- identity: same spacing and shape -> values are exactly clip+normalise ----------------- */
static void test_identity_is_exact(void)
{
  const double sp[3] = {0.8, 0.9, 1.7};
  t3d_volume *v = make_volume(23, 17, 9, sp, 25.0, -12.0);
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL, *back = NULL, *lab_back = NULL, *lab = NULL;
  size_t n;
  int mismatches = 0;

  CHECK(v != NULL);
  if (!v)
    return;
  n = t3d_volume_nvoxels(v);
  for (size_t i = 0; i < n; i++)
    v->data[i] = -1500.0f + 4000.0f * rnd();
  memcpy(p.spacing_mm, sp, sizeof p.spacing_mm);
  p.shape[0] = 9;
  p.shape[1] = 17;
  p.shape[2] = 23;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_OK);
  if (!out)
    goto cleanup;
  CHECK_INT_EQ(out->ndim, 5);
  CHECK_INT_EQ(out->shape[2], 9);
  CHECK_INT_EQ(out->shape[4], 23);
  {
    const float scale = (float)(1.0 / ((double)p.hu_max - (double)p.hu_min));
    const float *o = out->data;
    for (size_t i = 0; i < n; i++) {
      float c = v->data[i] < p.hu_min ? p.hu_min : (v->data[i] > p.hu_max ? p.hu_max : v->data[i]);
      float want = (c - p.hu_min) * scale;
      if (memcmp(&want, &o[i], sizeof want) != 0 && mismatches++ < 3)
        fprintf(stderr, "identity voxel %zu: got %.9g want %.9g\n", i, (double)o[i], (double)want);
    }
    CHECK_INT_EQ(mismatches, 0);
  }
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++)
      CHECK(tr.model_to_series[r][c] == (r == c ? 1.0 : 0.0));
  for (int a = 0; a < 3; a++) {
    CHECK(tr.origin[a] == v->origin[a]);
    CHECK_INT_EQ(tr.crop_offset_xyz[a], 0);
  }

  /* back to the series: labels and float maps land on exactly the same voxels */
  {
    int64_t shape[3] = {9, 17, 23};
    CHECK_STATUS(t3d_tensor_new(&lab, T3D_U8, 3, shape), T3D_OK);
    if (!lab)
      goto cleanup;
    for (size_t i = 0; i < n; i++)
      ((uint8_t *)lab->data)[i] = (uint8_t)(rnd() * 7.0f);
    CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, lab, &lab_back), T3D_OK);
    CHECK_STATUS(t3d_preprocess_map_to_series(&tr, out, &back), T3D_OK);
    if (!lab_back || !back)
      goto cleanup;
    CHECK(memcmp(lab_back->data, lab->data, n) == 0);
    CHECK(memcmp(back->data, out->data, n * sizeof(float)) == 0);
  }

cleanup:
  t3d_tensor_free(out);
  t3d_tensor_free(back);
  t3d_tensor_free(lab);
  t3d_tensor_free(lab_back);
  t3d_volume_free(v);
}

/* ---- non-finite HU do not poison the encoder input ---------------------------------------- */
static void test_non_finite_hu_are_clipped(void)
{
  const double sp[3] = {1.0, 1.0, 1.0};
  t3d_volume *v = make_volume(5, 4, 3, sp, 0.0, 0.0);
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL;

  if (!v) {
    CHECK(v != NULL);
    return;
  }
  v->data[7] = NAN;
  v->data[8] = INFINITY;
  v->data[9] = -INFINITY;
  memcpy(p.spacing_mm, sp, sizeof p.spacing_mm);
  p.shape[0] = 3;
  p.shape[1] = 4;
  p.shape[2] = 5;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_OK);
  if (out) {
    const float *o = out->data;
    CHECK_NEAR(o[7], 0.0, 0);
    CHECK_NEAR(o[8], 0.0, 0); /* inf * 0 weight is NaN in the interpolation: also hu_min */
    CHECK_NEAR(o[9], 0.0, 0);
    CHECK_NEAR(o[6], 0.5, 0); /* neighbours untouched */
    CHECK_NEAR(o[10], 0.5, 0);
  }
  t3d_tensor_free(out);
  t3d_volume_free(v);
}

/* ---- crop and pad place the resampled grid centrally ------------------------------------- */
static void check_layout(int64_t n, int64_t T, int64_t want_crop)
{
  const double sp[3] = {1.0, 1.0, 1.0};
  t3d_volume *v = make_volume(n, 3, 2, sp, 0.0, 0.0);
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL;

  if (!v) {
    CHECK(v != NULL);
    return;
  }
  for (int64_t k = 0; k < 2; k++)
    for (int64_t j = 0; j < 3; j++)
      for (int64_t i = 0; i < n; i++)
        v->data[(k * 3 + j) * n + i] = (float)i;
  memcpy(p.spacing_mm, sp, sizeof p.spacing_mm);
  p.shape[0] = 2;
  p.shape[1] = 3;
  p.shape[2] = T;
  p.hu_min = -100.0f;
  p.hu_max = 100.0f;
  p.pad_value = -1024.0f; /* clipped to -100 -> 0 after normalisation */
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_OK);
  if (out) {
    const float *o = out->data;
    CHECK_INT_EQ(tr.crop_offset_xyz[0], want_crop);
    CHECK_INT_EQ(tr.resampled_size_xyz[0], n);
    CHECK_NEAR(tr.pad_normalised, 0.0, 0);
    for (int64_t x = 0; x < T; x++) {
      int64_t r = x + want_crop;
      double want = (r >= 0 && r < n) ? ((double)r + 100.0) / 200.0 : 0.0;
      CHECK_NEAR(o[(1 * 3 + 2) * T + x], want, 1e-6);
    }
  }
  t3d_tensor_free(out);
  t3d_volume_free(v);
}

static void test_crop_and_pad_layout(void)
{
  check_layout(10, 7, 1);   /* crop, odd difference: one more voxel dropped at the end */
  check_layout(10, 13, -2); /* pad, odd difference: one more pad voxel before */
  check_layout(9, 9, 0);
  check_layout(9, 4, 2);
  check_layout(4, 9, -3);
}

/* ---- a linear function of position is reproduced by trilinear resampling ------------------ */
static void test_resample_keeps_positions(void)
{
  const double sp[3] = {0.7, 0.7, 2.5}, t[3] = {1.1, 1.3, 0.9};
  const double g[3] = {0.3, -0.2, 0.5};
  t3d_volume *v = make_volume(37, 31, 11, sp, 30.0, 15.0), *r = NULL;
  double cin[3], cout[3];
  int bad = 0;

  if (!v) {
    CHECK(v != NULL);
    return;
  }
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        double p[3];
        t3d_volume_index_to_lps(v, (double)i, (double)j, (double)k, p);
        v->data[(k * v->ny + j) * v->nx + i] = (float)(g[0] * p[0] + g[1] * p[1] + g[2] * p[2]);
      }
  CHECK_STATUS(t3d_preprocess_resample(v, t, T3D_INTERP_TRILINEAR, &r), T3D_OK);
  if (!r)
    goto cleanup;
  CHECK_INT_EQ(r->nx, 24); /* round(37*0.7/1.1) = round(23.55) */
  CHECK_INT_EQ(r->ny, 17); /* round(16.69) */
  CHECK_INT_EQ(r->nz, 31); /* round(30.56) */
  CHECK_NEAR(r->spacing[1], 1.3, 0);
  /* physical centres agree */
  t3d_volume_index_to_lps(v, (v->nx - 1) / 2.0, (v->ny - 1) / 2.0, (v->nz - 1) / 2.0, cin);
  t3d_volume_index_to_lps(r, (r->nx - 1) / 2.0, (r->ny - 1) / 2.0, (r->nz - 1) / 2.0, cout);
  CHECK(dist3(cin, cout) < 1e-9);
  /* inside the span of series voxel centres, the resampled value is the function there */
  for (int64_t k = 0; k < r->nz; k++)
    for (int64_t j = 0; j < r->ny; j++)
      for (int64_t i = 0; i < r->nx; i++) {
        double p[3], want, got = r->data[(k * r->ny + j) * r->nx + i];
        double si[3] = {((double)i - (r->nx - 1) / 2.0) * t[0] / sp[0] + (v->nx - 1) / 2.0,
                        ((double)j - (r->ny - 1) / 2.0) * t[1] / sp[1] + (v->ny - 1) / 2.0,
                        ((double)k - (r->nz - 1) / 2.0) * t[2] / sp[2] + (v->nz - 1) / 2.0};
        if (si[0] < 0 || si[0] > v->nx - 1 || si[1] < 0 || si[1] > v->ny - 1 || si[2] < 0 || si[2] > v->nz - 1)
          continue;
        t3d_volume_index_to_lps(r, (double)i, (double)j, (double)k, p);
        want = g[0] * p[0] + g[1] * p[1] + g[2] * p[2];
        if (!(fabs(got - want) < 1e-3) && bad++ < 3)
          fprintf(stderr, "resampled (%lld,%lld,%lld): got %.6f want %.6f\n", (long long)i, (long long)j,
                  (long long)k, got, want);
      }
  CHECK_INT_EQ(bad, 0);

cleanup:
  t3d_volume_free(r);
  t3d_volume_free(v);
}

/* ---- a physical sphere: centre, masks back on the series, volume in mL -------------------- */
typedef struct {
  t3d_volume *v;
  double centre[3]; /* LPS */
  double radius;
  uint8_t *truth; /* series-grid sphere */
  int64_t truth_count;
} sphere_case;

static int make_sphere(sphere_case *s)
{
  const double sp[3] = {0.7, 0.7, 2.5};
  memset(s, 0, sizeof *s);
  s->v = make_volume(81, 77, 23, sp, 20.0, 10.0);
  if (!s->v)
    return 0;
  s->radius = 18.0;
  t3d_volume_index_to_lps(s->v, 40.3, 37.6, 11.4, s->centre);
  s->truth = calloc(t3d_volume_nvoxels(s->v), 1);
  if (!s->truth)
    return 0;
  for (int64_t k = 0; k < s->v->nz; k++)
    for (int64_t j = 0; j < s->v->ny; j++)
      for (int64_t i = 0; i < s->v->nx; i++) {
        size_t at = (size_t)((k * s->v->ny + j) * s->v->nx + i);
        double p[3], d, f;
        t3d_volume_index_to_lps(s->v, (double)i, (double)j, (double)k, p);
        d = dist3(p, s->centre);
        f = 0.5 - (d - s->radius) / 1.0; /* 1 mm soft edge */
        f = f < 0 ? 0 : (f > 1 ? 1 : f);
        s->v->data[at] = (float)(-800.0 + 1000.0 * f);
        s->truth[at] = d <= s->radius;
        s->truth_count += s->truth[at];
      }
  return 1;
}

static double dice_u8(const uint8_t *a, const uint8_t *b, size_t n, uint8_t label)
{
  size_t na = 0, nb = 0, both = 0;
  for (size_t i = 0; i < n; i++) {
    na += a[i] == label;
    nb += b[i] == label;
    both += a[i] == label && b[i] == label;
  }
  return na + nb ? 2.0 * (double)both / (double)(na + nb) : 1.0;
}

static void check_sphere(const sphere_case *s, int64_t T, int expect_pad)
{
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL, *lab = NULL, *back = NULL, *prob = NULL, *pback = NULL;
  const size_t ns = t3d_volume_nvoxels(s->v);
  double ml[2];

  p.shape[0] = p.shape[1] = p.shape[2] = T;
  CHECK_STATUS(t3d_preprocess(s->v, &p, &out, &tr), T3D_OK);
  if (!out)
    return;
  /* resampled sizes: round(81*.7/1.5)=38, round(77*.7/1.5)=36, round(23*2.5/1.5)=38 */
  CHECK_INT_EQ(tr.resampled_size_xyz[0], 38);
  CHECK_INT_EQ(tr.resampled_size_xyz[1], 36);
  CHECK_INT_EQ(tr.resampled_size_xyz[2], 38);
  for (int a = 0; a < 3; a++)
    CHECK(expect_pad ? tr.crop_offset_xyz[a] < 0 : tr.crop_offset_xyz[a] > 0);

  /* centre of the bright sphere on the model grid, located in LPS through the transform */
  {
    const float *o = out->data;
    const float bg = (-800.0f - tr.norm_shift) * tr.norm_scale;
    double sw = 0, sc[3] = {0, 0, 0}, idx[3], lps[3], minv = 1e30;
    for (int64_t k = 0; k < T; k++)
      for (int64_t j = 0; j < T; j++)
        for (int64_t i = 0; i < T; i++) {
          double w = o[(k * T + j) * T + i] - bg;
          minv = fmin(minv, o[(k * T + j) * T + i]);
          if (w <= 0)
            continue;
          sw += w;
          sc[0] += w * i;
          sc[1] += w * j;
          sc[2] += w * k;
        }
    for (int a = 0; a < 3; a++)
      idx[a] = sc[a] / sw;
    t3d_preprocess_model_to_lps(&tr, idx, lps);
    CHECK_NEAR(dist3(lps, s->centre), 0.0, 0.75); /* half a 1.5 mm model voxel */
    if (expect_pad) {
      CHECK_NEAR(o[0], tr.pad_normalised, 0);
      CHECK_NEAR(minv, tr.pad_normalised, 0);
      CHECK(tr.pad_normalised < bg);
    } else {
      CHECK_NEAR(minv, bg, 1e-6); /* no padding anywhere */
    }
  }

  /* labels made on the model grid from the physical sphere, mapped back */
  {
    int64_t shape[3] = {T, T, T};
    CHECK_STATUS(t3d_tensor_new(&lab, T3D_I32, 3, shape), T3D_OK);
    CHECK_STATUS(t3d_tensor_new(&prob, T3D_F32, 3, shape), T3D_OK);
    if (!lab || !prob)
      goto cleanup;
    for (int64_t k = 0; k < T; k++)
      for (int64_t j = 0; j < T; j++)
        for (int64_t i = 0; i < T; i++) {
          double idx[3] = {(double)i, (double)j, (double)k}, lps[3], d;
          t3d_preprocess_model_to_lps(&tr, idx, lps);
          d = dist3(lps, s->centre);
          ((int32_t *)lab->data)[(k * T + j) * T + i] = d <= s->radius;
          /* a probability falling linearly across the boundary: 0.5 on the sphere */
          ((float *)prob->data)[(k * T + j) * T + i] = (float)fmax(0.0, fmin(1.0, 0.5 - (d - s->radius) / 6.0));
        }
    CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, lab, &back), T3D_OK);
    CHECK_STATUS(t3d_preprocess_map_to_series(&tr, prob, &pback), T3D_OK);
    if (!back || !pback)
      goto cleanup;
    CHECK_INT_EQ(back->shape[0], s->v->nz);
    CHECK_INT_EQ(back->shape[2], s->v->nx);
    {
      double dice = dice_u8(back->data, s->truth, ns, 1);
      double want_ml = 4.0 / 3.0 * M_PI * pow(s->radius, 3) / 1000.0;
      uint8_t *thr = malloc(ns);
      if (thr) {
        for (size_t i = 0; i < ns; i++)
          thr[i] = ((float *)pback->data)[i] >= 0.5f;
        CHECK_NEAR(dice_u8(thr, s->truth, ns, 1), 1.0, 0.05);
        free(thr);
      }
      fprintf(stderr, "sphere T=%lld: Dice %.4f\n", (long long)T, dice);
      CHECK(dice > 0.95);
      CHECK_STATUS(t3d_label_volumes_ml(back, s->v->spacing, (const double(*)[3])s->v->dir, 2, ml), T3D_OK);
      CHECK_NEAR(ml[1] / want_ml, 1.0, 0.03);
      CHECK_NEAR(ml[0] + ml[1], ns * 0.7 * 0.7 * 2.5 / 1000.0, 1e-9);
    }
  }

  /* the index affine round trip: model index -> LPS -> series index */
  {
    const double probes[4][3] = {{0, 0, 0}, {3.25, -7.5, 11.0}, {T - 1.0, T / 2.0, 0.5}, {1e3, -2e2, 40.0}};
    for (int t = 0; t < 4; t++) {
      double lps[3], via_lps[3], direct[3], back_m[3];
      t3d_preprocess_model_to_lps(&tr, probes[t], lps);
      CHECK_STATUS(t3d_preprocess_lps_to_series(&tr, lps, via_lps), T3D_OK);
      t3d_preprocess_model_to_series(&tr, probes[t], direct);
      for (int a = 0; a < 3; a++) {
        back_m[a] = tr.series_to_model[a][3];
        for (int c = 0; c < 3; c++)
          back_m[a] += tr.series_to_model[a][c] * direct[c];
      }
      for (int a = 0; a < 3; a++) {
        CHECK_NEAR(via_lps[a], direct[a], 1e-9);
        CHECK_NEAR(back_m[a], probes[t][a], 1e-9);
      }
    }
  }

cleanup:
  t3d_tensor_free(out);
  t3d_tensor_free(lab);
  t3d_tensor_free(back);
  t3d_tensor_free(prob);
  t3d_tensor_free(pback);
}

/* ---- class scores to series labels: trilinear scores, argmax ------------------------------ */
/* The reference: each series voxel of the domain labels_to_series labels, its model index
 * clamped to the part of the model grid that came from the series, the scores interpolated in
 * double, the highest class (lowest on ties). */
static int reference_label(const t3d_preprocess_transform *tr, const float *sc, int C, int64_t i, int64_t j, int64_t k,
                           double *margin)
{
  const int64_t p[3] = {i, j, k};
  int64_t i0[3], i1[3];
  double w[3], best = -1e300, second = -1e300;
  int bc = 0;
  for (int a = 0; a < 3; a++) {
    const int64_t T = tr->model_shape[2 - a], crop = tr->crop_offset_xyz[a], msz = tr->resampled_size_xyz[a];
    const double lo = crop < 0 ? (double)-crop : 0.0, hi = (double)((msz - crop < T ? msz - crop : T) - 1);
    double x = tr->series_to_model[a][a] * (double)p[a] + tr->series_to_model[a][3];
    x = x < lo ? lo : (x > hi ? hi : x);
    i0[a] = (int64_t)floor(x);
    w[a] = x - (double)i0[a];
    i1[a] = w[a] > 0 ? i0[a] + 1 : i0[a];
  }
  const int64_t X = tr->model_shape[2], Y = tr->model_shape[1], cs = X * Y * tr->model_shape[0];
  for (int c = 0; c < C; c++) {
    double v = 0;
    for (int n = 0; n < 8; n++) {
      const int bx = n & 1, by = (n >> 1) & 1, bz = (n >> 2) & 1;
      const double wt = (bx ? w[0] : 1 - w[0]) * (by ? w[1] : 1 - w[1]) * (bz ? w[2] : 1 - w[2]);
      const int64_t q = ((bz ? i1[2] : i0[2]) * Y + (by ? i1[1] : i0[1])) * X + (bx ? i1[0] : i0[0]);
      v += wt * sc[c * cs + q];
    }
    if (v > best) {
      second = best;
      best = v;
      bc = c;
    } else if (v > second) {
      second = v;
    }
  }
  *margin = best - second;
  return bc;
}

static void check_scores(const sphere_case *s, int64_t T)
{
  enum { C = 4 };
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL, *sc = NULL, *two = NULL, *ones = NULL, *back = NULL, *dom = NULL, *nearest = NULL;
  const size_t ns = t3d_volume_nvoxels(s->v);
  int64_t wrong = 0, slow = 0, labelled = 0;

  p.shape[0] = p.shape[1] = p.shape[2] = T;
  CHECK_STATUS(t3d_preprocess(s->v, &p, &out, &tr), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&sc, T3D_F32, 4, (int64_t[]){C, T, T, T}), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&two, T3D_F32, 5, (int64_t[]){1, 2, T, T, T}), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&ones, T3D_U8, 3, (int64_t[]){T, T, T}), T3D_OK);
  if (!out || !sc || !two || !ones)
    goto cleanup;
  {
    const int64_t cs = T * T * T;
    float *v = sc->data, *b = two->data;
    /* class 0 with one model voxel in six of another class, scores noisy: the eight model
     * voxels around a series voxel all agree, all but one agree (often), or several disagree */
    for (int64_t k = 0; k < T; k++)
      for (int64_t j = 0; j < T; j++)
        for (int64_t i = 0; i < T; i++) {
          const float r = rnd();
          const int cls = r < 1.0f / 6.0f ? 1 + (int)(r * 18.0f) : 0; /* 1..3 or 0 */
          for (int c = 0; c < C; c++)
            v[c * cs + (k * T + j) * T + i] = (c == cls ? 1.0f : 0.0f) + 0.3f * rnd();
        }
    /* the sphere as [1 - prob, prob], prob falling linearly across its surface */
    for (int64_t k = 0; k < T; k++)
      for (int64_t j = 0; j < T; j++)
        for (int64_t i = 0; i < T; i++) {
          double idx[3] = {(double)i, (double)j, (double)k}, lps[3];
          const int64_t q = (k * T + j) * T + i;
          t3d_preprocess_model_to_lps(&tr, idx, lps);
          b[cs + q] = (float)fmax(0.0, fmin(1.0, 0.5 - (dist3(lps, s->centre) - s->radius) / 6.0));
          b[q] = 1.0f - b[cs + q];
        }
  }
  /* the domain: where labels_to_series labels */
  memset(ones->data, 1, (size_t)(T * T * T));
  CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, ones, &dom), T3D_OK);
  CHECK_STATUS(t3d_preprocess_scores_to_series(&tr, sc, &back), T3D_OK);
  if (!dom || !back)
    goto cleanup;
  CHECK_INT_EQ(back->dtype, T3D_U8);
  CHECK_INT_EQ(back->shape[0], s->v->nz);
  CHECK_INT_EQ(back->shape[2], s->v->nx);
  for (int64_t k = 0; k < s->v->nz; k++)
    for (int64_t j = 0; j < s->v->ny; j++)
      for (int64_t i = 0; i < s->v->nx; i++) {
        const size_t at = (size_t)((k * s->v->ny + j) * s->v->nx + i);
        const uint8_t got = ((uint8_t *)back->data)[at];
        double margin;
        if (!((uint8_t *)dom->data)[at]) {
          wrong += got != 0;
          continue;
        }
        labelled++;
        int want = reference_label(&tr, sc->data, C, i, j, k, &margin);
        if (got != want && margin > 1e-5 && wrong++ < 3)
          fprintf(stderr, "scores to series T=%lld voxel (%lld,%lld,%lld): got %d want %d (margin %g)\n", (long long)T,
                  (long long)i, (long long)j, (long long)k, got, want, margin);
        slow += margin < 0.5;
      }
  CHECK_INT_EQ(wrong, 0);
  CHECK(labelled > 0);
  CHECK(slow > labelled / 10); /* the interpolation decides many of them */

  /* the sphere: smoother than the nearest model voxel's label, and as exact as thresholding the
   * interpolated probability */
  t3d_tensor_free(back);
  back = NULL;
  {
    const float *b = two->data;
    uint8_t *l = ones->data;
    for (int64_t q = 0; q < T * T * T; q++)
      l[q] = b[T * T * T + q] > b[q];
  }
  CHECK_STATUS(t3d_preprocess_scores_to_series(&tr, two, &back), T3D_OK);
  CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, ones, &nearest), T3D_OK);
  if (back && nearest) {
    const double d_smooth = dice_u8(back->data, s->truth, ns, 1), d_near = dice_u8(nearest->data, s->truth, ns, 1);
    fprintf(stderr, "sphere T=%lld: Dice %.4f from scores, %.4f from the nearest label\n", (long long)T, d_smooth, d_near);
    CHECK(d_smooth > d_near);
    CHECK(d_smooth > 0.98);
  }

cleanup:
  t3d_tensor_free(out);
  t3d_tensor_free(sc);
  t3d_tensor_free(two);
  t3d_tensor_free(ones);
  t3d_tensor_free(back);
  t3d_tensor_free(dom);
  t3d_tensor_free(nearest);
}

static void test_sphere_geometry_crop_and_pad(void)
{
  sphere_case s;
  CHECK(make_sphere(&s));
  if (s.v && s.truth) {
    check_sphere(&s, 41, 1); /* model grid 61.5 mm: pads on every axis */
    check_sphere(&s, 30, 0); /* 45 mm: crops on every axis; the 36 mm sphere stays inside */
    check_scores(&s, 41);    /* class scores to series labels, padded and cropped */
    check_scores(&s, 30);
  }
  free(s.truth);
  t3d_volume_free(s.v);
}

/* ---- labels outside a small model grid map to background --------------------------------- */
static void test_labels_outside_model_grid_are_background(void)
{
  sphere_case s;
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL, *lab = NULL, *back = NULL;
  int64_t shape[3] = {8, 10, 10}, ones = 0, wrong = 0, unsure = 0;

  CHECK(make_sphere(&s));
  if (!s.v || !s.truth)
    goto cleanup;
  memcpy(p.shape, shape, sizeof p.shape);
  CHECK_STATUS(t3d_preprocess(s.v, &p, &out, &tr), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&lab, T3D_U8, 3, shape), T3D_OK);
  if (!out || !lab)
    goto cleanup;
  memset(lab->data, 3, 800);
  CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, lab, &back), T3D_OK);
  if (!back)
    goto cleanup;
  for (int64_t k = 0; k < s.v->nz; k++)
    for (int64_t j = 0; j < s.v->ny; j++)
      for (int64_t i = 0; i < s.v->nx; i++) {
        uint8_t got = ((uint8_t *)back->data)[(k * s.v->ny + j) * s.v->nx + i];
        double lps[3], si[3];
        int inside = 1, edge = 0;
        t3d_volume_index_to_lps(s.v, (double)i, (double)j, (double)k, lps);
        /* model index of this series voxel's centre, found from patient space */
        if (t3d_preprocess_lps_to_series(&tr, lps, si) != T3D_OK) {
          wrong++;
          continue;
        }
        for (int a = 0; a < 3; a++) {
          double mi = tr.series_to_model[a][3] + tr.series_to_model[a][a] * si[a];
          double hi = (double)tr.model_shape[2 - a] - 0.5;
          inside &= mi >= -0.5 && mi < hi;
          edge |= fabs(mi + 0.5) < 1e-6 || fabs(mi - hi) < 1e-6;
        }
        ones += got == 3;
        unsure += edge;
        if (!edge && got != (inside ? 3 : 0))
          wrong++;
      }
  CHECK_INT_EQ(wrong, 0);
  CHECK_INT_EQ(unsure, 0); /* the grid sizes were chosen so that no centre lies on an edge */
  /* a 15 x 15 x 12 mm box: 21 x 21 x 5 series voxels of 0.7 x 0.7 x 2.5 mm */
  CHECK_INT_EQ(ones, 21 * 21 * 5);

cleanup:
  t3d_tensor_free(out);
  t3d_tensor_free(lab);
  t3d_tensor_free(back);
  free(s.truth);
  t3d_volume_free(s.v);
}

/* ---- z-score: zero mean / unit std over the voxels from the series ----------------------- */
static void test_zscore(void)
{
  const double sp[3] = {0.9, 0.9, 2.0};
  t3d_volume *v = make_volume(35, 29, 13, sp, 5.0, 0.0);
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL;

  if (!v) {
    CHECK(v != NULL);
    return;
  }
  for (size_t i = 0; i < t3d_volume_nvoxels(v); i++)
    v->data[i] = -300.0f + 600.0f * rnd();
  p.norm = T3D_NORM_ZSCORE;
  p.shape[0] = 20; /* resampled z: round(13*2/1.5) = 17 -> 3 slices of padding */
  p.shape[1] = 17; /* round(29*.9/1.5) = 17 -> as is */
  p.shape[2] = 19; /* round(35*.9/1.5) = 21 -> cropped */
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_OK);
  if (out) {
    const float *o = out->data;
    double s = 0, s2 = 0, n = 0;
    int64_t pads = 0;
    for (int64_t i = 0; i < t3d_tensor_numel(out); i++) {
      if (o[i] == tr.pad_normalised) {
        pads++;
        continue;
      }
      s += o[i];
      s2 += (double)o[i] * o[i];
      n++;
    }
    CHECK_INT_EQ(tr.resampled_size_xyz[2], 17);
    CHECK_INT_EQ(tr.crop_offset_xyz[0], 1);
    CHECK_INT_EQ(pads, 3 * 17 * 19);
    CHECK_NEAR(s / n, 0.0, 1e-4);
    CHECK_NEAR(sqrt(s2 / n - (s / n) * (s / n)), 1.0, 1e-4);
    CHECK_NEAR(tr.pad_normalised, (-1000.0 - tr.norm_shift) * tr.norm_scale, 1e-4);
  }
  t3d_tensor_free(out);
  out = NULL;
  p.zscore_mean = 40.0f;
  p.zscore_std = 350.0f;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_OK);
  CHECK_NEAR(tr.norm_shift, 40.0, 0);
  CHECK_NEAR(tr.norm_scale, 1.0 / 350.0, 1e-9);
  t3d_tensor_free(out);
  t3d_volume_free(v);
}

/* ---- bad input is refused with a message --------------------------------------------------- */
static void test_bad_input_is_refused(void)
{
  const double sp[3] = {1, 1, 1};
  t3d_volume *v = make_volume(8, 8, 8, sp, 0, 0), *r = NULL;
  t3d_preprocess_params p = t3d_preprocess_default_params();
  t3d_preprocess_transform tr;
  t3d_tensor *out = NULL, *lab = NULL, *back = NULL;
  int64_t bad_shape[3] = {4, 4, 4};

  if (!v) {
    CHECK(v != NULL);
    return;
  }
  CHECK_STATUS(t3d_preprocess(NULL, &p, &out, &tr), T3D_ERR_INVALID_ARG);
  p.hu_min = 100.0f;
  p.hu_max = 100.0f;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_ERR_INVALID_ARG);
  CHECK(strstr(t3d_error_detail(), "hu_min") != NULL);
  p = t3d_preprocess_default_params();
  p.spacing_mm[1] = 0.0;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_ERR_INVALID_ARG);
  p.spacing_mm[1] = 1e-6; /* metres given as millimetres, or similar */
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_ERR_INVALID_ARG);
  CHECK(strstr(t3d_error_detail(), "mm") != NULL);
  p = t3d_preprocess_default_params();
  p.shape[0] = 0;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_ERR_INVALID_ARG);
  p = t3d_preprocess_default_params();
  p.norm = (t3d_norm_mode)7;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_ERR_INVALID_ARG);
  CHECK(out == NULL);
  v->spacing[2] = -1.0;
  CHECK_STATUS(t3d_preprocess_resample(v, sp, T3D_INTERP_TRILINEAR, &r), T3D_ERR_INVALID_ARG);
  CHECK(r == NULL);
  v->spacing[2] = 1.0;

  /* labels of the wrong shape, type or range */
  p = t3d_preprocess_default_params();
  p.shape[0] = p.shape[1] = p.shape[2] = 6;
  CHECK_STATUS(t3d_preprocess(v, NULL, &out, &tr), T3D_OK); /* NULL params: defaults */
  t3d_tensor_free(out);
  out = NULL;
  CHECK_STATUS(t3d_preprocess(v, &p, &out, &tr), T3D_OK);
  CHECK_STATUS(t3d_tensor_new(&lab, T3D_I32, 3, bad_shape), T3D_OK);
  CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, lab, &back), T3D_ERR_SHAPE);
  CHECK(back == NULL);
  CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, out, &back), T3D_ERR_SHAPE); /* F32 */
  t3d_tensor_free(lab);
  lab = NULL;
  {
    int64_t s6[3] = {6, 6, 6};
    CHECK_STATUS(t3d_tensor_new(&lab, T3D_I32, 3, s6), T3D_OK);
    if (lab) {
      ((int32_t *)lab->data)[17] = 300;
      CHECK_STATUS(t3d_preprocess_labels_to_series(&tr, lab, &back), T3D_ERR_INVALID_ARG);
      CHECK(strstr(t3d_error_detail(), "300") != NULL);
      CHECK_STATUS(t3d_preprocess_map_to_series(&tr, lab, &back), T3D_ERR_SHAPE); /* I32 */
    }
  }
  { /* class scores: F32 [C,Z,Y,X] or [1,C,Z,Y,X] on the model grid, 1..255 classes */
    t3d_tensor *sc = NULL;
    CHECK_STATUS(t3d_preprocess_scores_to_series(&tr, out, &back), T3D_OK); /* [1,1,Z,Y,X]: one class */
    if (back)
      for (int64_t i = 0; i < t3d_tensor_numel(back); i++)
        CHECK_INT_EQ(((uint8_t *)back->data)[i], 0);
    t3d_tensor_free(back);
    back = NULL;
    CHECK_STATUS(t3d_preprocess_scores_to_series(&tr, lab, &back), T3D_ERR_SHAPE); /* I32, 3 dims */
    CHECK(back == NULL);
    CHECK_STATUS(t3d_tensor_new(&sc, T3D_F32, 4, (int64_t[]){256, 6, 6, 6}), T3D_OK);
    CHECK_STATUS(t3d_preprocess_scores_to_series(&tr, sc, &back), T3D_ERR_SHAPE);
    CHECK(back == NULL && strstr(t3d_error_detail(), "256") != NULL);
    t3d_tensor_free(sc);
    CHECK_STATUS(t3d_tensor_new(&sc, T3D_F32, 4, (int64_t[]){3, 6, 7, 6}), T3D_OK);
    CHECK_STATUS(t3d_preprocess_scores_to_series(&tr, sc, &back), T3D_ERR_SHAPE);
    CHECK(back == NULL);
    t3d_tensor_free(sc);
  }
  {
    double ml[2];
    CHECK_STATUS(t3d_label_volumes_ml(lab, sp, NULL, 0, ml), T3D_ERR_INVALID_ARG);
  }
  t3d_tensor_free(out);
  t3d_tensor_free(lab);
  t3d_volume_free(v);
}

int main(void)
{
  test_identity_is_exact();
  test_non_finite_hu_are_clipped();
  test_crop_and_pad_layout();
  test_resample_keeps_positions();
  test_sphere_geometry_crop_and_pad();
  test_labels_outside_model_grid_are_background();
  test_zscore();
  test_bad_input_is_refused();
  return check_finish("test-preprocess");
}
