/* Tests core/dicom (reading): grouping and notes, exact values through every lossless transfer
 * syntax, JPEG 2000 lossless/lossy through OpenJPEG, geometry, sort order independent of file
 * names, multi-frame, and each refusal's message. Series are generated here (tests/dicom-testgen). */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dicom/dicom.h"
#include "core/base/status.h"
#include "tests/check.h"
#include "tests/dicom-testgen.h"

static char root[256];

#define CHECK_CONTAINS(hay, needle)                                                          \
  do {                                                                                       \
    const char *h_ = (hay);                                                                  \
    check_count++;                                                                           \
    if (!h_ || !strstr(h_, (needle))) {                                                      \
      check_failures++;                                                                      \
      fprintf(stderr, "%s:%d: FAIL: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,   \
              h_ ? h_ : "(null)", (needle));                                                 \
    }                                                                                        \
  } while (0)

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static char *subdir(const char *name)
{
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 512, "%s/%s", root, name);
  mkdir(p, 0755);
  return p;
}

static int must_write(const char *path, const tg_image *g)
{
  char err[512] = "";
  if (tg_write(path, g, err, sizeof err) != 0) {
    fprintf(stderr, "test generator failed for %s: %s\n", path, err);
    check_failures++;
    return 1;
  }
  return 0;
}

/* Deterministic stored values spread over the range of the format. */
static int32_t value_at(int i, int j, int k, int bits, int sgnd)
{
  int32_t range = 1 << bits;
  int32_t v = (int32_t)((i * 37 + j * 101 + k * 211 + i * j * 7) % range);
  return sgnd ? v - range / 2 : v;
}

/* Smooth image for the lossy codec (sharp noise would need a loose tolerance). */
static int32_t smooth_at(int i, int j, int k) { return (int32_t)(1000 + 300 * sin(i * 0.3) + 200 * cos(j * 0.25) + 40 * k); }

typedef struct {
  double ipp0[3], step[3];
  int n;
  const int *perm;  /* file name order; NULL = in order */
  int smooth;
} stack;

/* Writes a stack of single-frame images dir/<prefix>NN.dcm, slice k at ipp0 + k*step. */
static int write_stack(const char *dir, const char *prefix, const tg_image *base, const stack *st)
{
  tg_image g = *base;
  size_t npix = (size_t)g.rows * g.cols;
  int32_t *vals = malloc(npix * sizeof *vals);
  int rc = 0;
  for (int k = 0; k < st->n && !rc; k++) {
    for (int j = 0; j < g.rows; j++)
      for (int i = 0; i < g.cols; i++)
        vals[j * g.cols + i] = st->smooth ? smooth_at(i, j, k) : value_at(i, j, k, g.bits_stored, g.pixel_rep);
    for (int a = 0; a < 3; a++)
      g.ipp[a] = st->ipp0[a] + k * st->step[a];
    int name = st->perm ? st->perm[k] : k;
    g.instance_number = name + 1;
    g.values = vals;
    char path[600];
    snprintf(path, sizeof path, "%s/%s%02d.dcm", dir, prefix, name);
    rc = must_write(path, &g);
  }
  free(vals);
  return rc;
}

static int note_has(const t3d_dicom_scan *s, const char *needle)
{
  for (size_t i = 0; i < t3d_dicom_scan_note_count(s); i++)
    if (strstr(t3d_dicom_scan_note(s, i), needle))
      return 1;
  return 0;
}

static void dump_notes(const t3d_dicom_scan *s)
{
  for (size_t i = 0; i < t3d_dicom_scan_note_count(s); i++)
    fprintf(stderr, "  note: %s\n", t3d_dicom_scan_note(s, i));
}

#define CHECK_NOTE(s, needle)                                                          \
  do {                                                                                 \
    check_count++;                                                                     \
    if (!note_has((s), (needle))) {                                                    \
      check_failures++;                                                                \
      fprintf(stderr, "%s:%d: FAIL: no note contains \"%s\"\n", __FILE__, __LINE__, (needle)); \
      dump_notes(s);                                                                   \
    }                                                                                  \
  } while (0)

/* Compares a loaded volume with value_at(...)*slope+intercept, reporting the first mismatch. */
static void check_values(const t3d_volume *v, int bits, int sgnd, double slope, double inter, double tol, int smooth)
{
  double worst = 0;
  int64_t wi = 0, wj = 0, wk = 0;
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        double want = (smooth ? smooth_at((int)i, (int)j, (int)k) : value_at((int)i, (int)j, (int)k, bits, sgnd)) * slope + inter;
        double got = v->data[(k * v->ny + j) * v->nx + i];
        if (worst == worst && !(fabs(got - want) <= worst)) /* a NaN voxel stays the worst */
          worst = fabs(got - want), wi = i, wj = j, wk = k;
      }
  check_count++;
  if (!(worst <= tol)) {
    check_failures++;
    fprintf(stderr, "%s:%d: FAIL: voxel (%lld,%lld,%lld) off by %g (tol %g)\n", __FILE__, __LINE__, (long long)wi,
            (long long)wj, (long long)wk, worst, tol);
  }
}

static t3d_dicom_scan *scan_ok(const char *path)
{
  t3d_dicom_scan *s = NULL;
  CHECK_STATUS(t3d_dicom_scan_path(path, &s), T3D_OK);
  return s;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_listing_geometry_sort(void)
{
  const char *dir = subdir("basic");
  tg_image g;
  tg_defaults(&g);
  double c = cos(30 * M_PI / 180), s = sin(30 * M_PI / 180), cx = cos(20 * M_PI / 180), sx = sin(20 * M_PI / 180);
  double row[3] = {c, s, 0}, col[3] = {-s * cx, c * cx, sx}, nrm[3] = {s * sx, -c * sx, cx};
  memcpy(g.iop, row, sizeof row);
  memcpy(g.iop + 3, col, sizeof col);
  g.pixel_spacing[0] = 0.8; /* between rows */
  g.pixel_spacing[1] = 0.7; /* between columns */
  static const int perm[6] = {3, 0, 5, 1, 4, 2};
  stack st = {{-50.25, 20.5, 100.75}, {2.5 * nrm[0], 2.5 * nrm[1], 2.5 * nrm[2]}, 6, perm, 0};
  if (write_stack(dir, "ct", &g, &st))
    return;
  /* extras: a text file, a localizer of the same series, a byte copy (same SOP Instance UID) */
  char p[600];
  snprintf(p, sizeof p, "%s/readme.txt", dir);
  FILE *f = fopen(p, "w");
  fputs("not an image\n", f);
  fclose(f);
  tg_image loc = g;
  int32_t lv[80] = {0};
  loc.values = lv;
  loc.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
  loc.iop[0] = 0, loc.iop[1] = 1, loc.iop[2] = 0, loc.iop[3] = 0, loc.iop[4] = 0, loc.iop[5] = -1;
  snprintf(p, sizeof p, "%s/scout.dcm", dir);
  must_write(p, &loc);
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "cp '%s/ct03.dcm' '%s/zz-copy.dcm'", dir, dir);
  CHECK_INT_EQ(system(cmd), 0);

  t3d_dicom_scan *sc = scan_ok(dir);
  if (!sc)
    return;
  CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 1);
  CHECK_INT_EQ(t3d_dicom_scan_file_count(sc), 9);
  const t3d_dicom_series_info *si = t3d_dicom_scan_series(sc, 0);
  CHECK_INT_EQ(si->instances, 6);
  CHECK_INT_EQ(si->slices, 6);
  CHECK_INT_EQ(si->rows, 8);
  CHECK_INT_EQ(si->cols, 10);
  CHECK(strcmp(si->meta.modality, "CT") == 0);
  CHECK(strcmp(si->meta.patient_name, "Test^Patient") == 0);
  CHECK(strcmp(si->meta.study_date, "20240102") == 0);
  CHECK(strcmp(si->meta.series_description, "test series") == 0);
  CHECK(strcmp(si->meta.body_part, "CHEST") == 0);
  CHECK_NOTE(sc, "readme.txt: not DICOM, skipped");
  CHECK_NOTE(sc, "scout.dcm: localizer");
  CHECK_NOTE(sc, "zz-copy.dcm: same SOP Instance UID as");
  size_t idx = 99;
  CHECK_STATUS(t3d_dicom_scan_find_series(sc, "1.2.826.0.1.3680043.10.1.1", &idx), T3D_OK);
  CHECK_INT_EQ(idx, 0);
  CHECK_STATUS(t3d_dicom_scan_find_series(sc, "9.9.9", &idx), T3D_ERR_NOT_FOUND);

  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_dicom_load_series_uid(sc, "1.2.826.0.1.3680043.10.1.1", NULL, &v), T3D_OK);
  if (v) {
    CHECK_INT_EQ(v->nx, 10);
    CHECK_INT_EQ(v->ny, 8);
    CHECK_INT_EQ(v->nz, 6);
    CHECK_NEAR(v->spacing[0], 0.7, 1e-9);
    CHECK_NEAR(v->spacing[1], 0.8, 1e-9);
    CHECK_NEAR(v->spacing[2], 2.5, 1e-6);
    for (int a = 0; a < 3; a++) {
      CHECK_NEAR(v->origin[a], st.ipp0[a], 1e-6);
      CHECK_NEAR(v->dir[a][0], row[a], 1e-6);
      CHECK_NEAR(v->dir[a][1], col[a], 1e-6);
      CHECK_NEAR(v->dir[a][2], nrm[a], 1e-6);
    }
    /* value_at's k is the spatial slice index: sorting ignored names and Instance Numbers */
    check_values(v, 12, 0, 1.0, -1024.0, 0.0, 0);
    double lps[3];
    t3d_volume_index_to_lps(v, 0, 0, 5, lps);
    for (int a = 0; a < 3; a++)
      CHECK_NEAR(lps[a], st.ipp0[a] + 5 * st.step[a], 1e-6);
    CHECK(strcmp(v->meta.series_uid, "1.2.826.0.1.3680043.10.1.1") == 0);
  }
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

/* Exact values through each lossless syntax, for several storage layouts. */
static void test_syntaxes(void)
{
  static const char *syntaxes[] = {"ele", "ile", "ebe", "deflate", "rle", "jpeg-ll", "jpegls", "j2k"};
  static const struct { int ba, bs, hb, rep; double slope, inter; } fmt[] = {
      {16, 16, 15, 1, 1.0, 0.0},     /* signed 16 */
      {16, 12, 11, 0, 1.0, -1024.0}, /* unsigned 12 in 16 */
      {16, 12, 11, 1, 2.0, -10.0},   /* signed 12 in 16, slope 2 */
      {8, 8, 7, 0, 4.0, -1000.0},    /* 8-bit */
  };
  for (size_t si = 0; si < sizeof syntaxes / sizeof *syntaxes; si++)
    for (size_t fi = 0; fi < sizeof fmt / sizeof *fmt; fi++) {
      char name[64];
      /* DCMTK 3.6.7's JPEG-LS encoder (CharLS) asserts on signed samples narrower than 16 bits:
       * a limit of the test's encoder, not of the reader. */
      if (strcmp(syntaxes[si], "jpegls") == 0 && fmt[fi].rep == 1 && fmt[fi].bs < 16)
        continue;
      snprintf(name, sizeof name, "syn-%s-%zu", syntaxes[si], fi);
      const char *dir = subdir(name);
      tg_image g;
      tg_defaults(&g);
      g.rows = 16, g.cols = 20;
      g.bits_allocated = fmt[fi].ba, g.bits_stored = fmt[fi].bs, g.high_bit = fmt[fi].hb, g.pixel_rep = fmt[fi].rep;
      g.slope = fmt[fi].slope, g.intercept = fmt[fi].inter;
      g.syntax = syntaxes[si];
      if (getenv("T3D_TEST_VERBOSE"))
        fprintf(stderr, "writing %s\n", name);
      stack st = {{0, 0, 0}, {0, 0, 3.0}, 3, NULL, 0};
      if (write_stack(dir, "s", &g, &st))
        continue;
      t3d_dicom_scan *sc = scan_ok(dir);
      t3d_volume *v = NULL;
      CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 1);
      t3d_status s = t3d_dicom_load_series(sc, 0, NULL, &v);
      if (s != T3D_OK)
        fprintf(stderr, "syntax %s format %zu: %s\n", syntaxes[si], fi, t3d_error_detail());
      CHECK_STATUS(s, T3D_OK);
      if (v) {
        CHECK_INT_EQ(v->nz, 3);
        size_t nf = (size_t)check_failures;
        check_values(v, fmt[fi].bs, fmt[fi].rep, fmt[fi].slope, fmt[fi].inter, 0.0, 0);
        if ((size_t)check_failures != nf)
          fprintf(stderr, "  (syntax %s, format %zu)\n", syntaxes[si], fi);
      }
      t3d_volume_free(v);
      t3d_dicom_scan_free(sc);
    }
}

static void test_j2k_lossy(void)
{
  const char *dir = subdir("j2k-lossy");
  tg_image g;
  tg_defaults(&g);
  g.rows = 32, g.cols = 32;
  g.syntax = "j2k-lossy";
  stack st = {{0, 0, 0}, {0, 0, 2.0}, 2, NULL, 1};
  if (write_stack(dir, "l", &g, &st))
    return;
  t3d_dicom_scan *sc = scan_ok(dir);
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
  if (v) {
    /* 9/7 at 4:1 (3 bits per sample) on a smooth 12-bit image */
    check_values(v, 12, 0, 1.0, -1024.0, 8.0, 1);
    double sum = 0;
    for (int64_t k = 0; k < v->nz; k++)
      for (int64_t j = 0; j < v->ny; j++)
        for (int64_t i = 0; i < v->nx; i++)
          sum += fabs(v->data[(k * v->ny + j) * v->nx + i] - (smooth_at((int)i, (int)j, (int)k) - 1024.0));
    double mae = sum / (double)t3d_volume_nvoxels(v);
    fprintf(stderr, "j2k lossy 9/7 4:1: mean abs error %.3f\n", mae);
    CHECK(mae > 0.0 && mae < 1.0); /* lossy indeed, and close */
  }
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

static void test_multiframe(void)
{
  /* Enhanced CT: frames stored out of spatial order, per-frame rescale, in native and J2K. */
  static const char *syn[] = {"ele", "j2k", "rle"};
  for (int t = 0; t < 3; t++) {
    char name[32];
    snprintf(name, sizeof name, "enh-%s", syn[t]);
    const char *dir = subdir(name);
    tg_image g;
    tg_defaults(&g);
    g.enhanced = 1;
    g.frames = 4;
    g.syntax = syn[t];
    static const int order[4] = {2, 0, 3, 1}; /* frame f holds spatial slice order[f] */
    double ipp[12], slope[4], inter[4];
    int32_t *vals = malloc(4 * 80 * sizeof *vals);
    for (int f = 0; f < 4; f++) {
      int k = order[f];
      ipp[3 * f] = 10, ipp[3 * f + 1] = -20, ipp[3 * f + 2] = -30 + 1.25 * k;
      slope[f] = 1.0;
      inter[f] = -1024.0;
      for (int j = 0; j < 8; j++)
        for (int i = 0; i < 10; i++)
          vals[f * 80 + j * 10 + i] = value_at(i, j, k, 12, 0);
    }
    g.frame_ipp = ipp;
    g.frame_slope = t == 0 ? slope : NULL;
    g.frame_intercept = t == 0 ? inter : NULL;
    g.values = vals;
    char p[600];
    snprintf(p, sizeof p, "%s/enhanced.dcm", dir);
    must_write(p, &g);
    free(vals);
    t3d_dicom_scan *sc = scan_ok(dir);
    const t3d_dicom_series_info *si = t3d_dicom_scan_series(sc, 0);
    CHECK(si && si->multiframe && si->slices == 4 && si->instances == 1);
    t3d_volume *v = NULL;
    CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
    if (v) {
      CHECK_INT_EQ(v->nz, 4);
      CHECK_NEAR(v->spacing[2], 1.25, 1e-9);
      CHECK_NEAR(v->origin[2], -30, 1e-9);
      check_values(v, 12, 0, 1.0, -1024.0, 0.0, 0);
    }
    t3d_volume_free(v);
    t3d_dicom_scan_free(sc);
  }

  /* Classic multi-frame: one position, frames along the normal by Spacing Between Slices. */
  const char *dir = subdir("classic-mf");
  tg_image g;
  tg_defaults(&g);
  g.frames = 3;
  g.spacing_between_slices = 2.0;
  g.ipp[2] = 5.0;
  int32_t vals[240];
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < 8; j++)
      for (int i = 0; i < 10; i++)
        vals[k * 80 + j * 10 + i] = value_at(i, j, k, 12, 0);
  g.values = vals;
  char p[600];
  snprintf(p, sizeof p, "%s/classic.dcm", dir);
  must_write(p, &g);
  t3d_dicom_scan *sc = scan_ok(dir);
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
  if (v) {
    CHECK_INT_EQ(v->nz, 3);
    CHECK_NEAR(v->spacing[2], 2.0, 1e-9);
    CHECK_NEAR(v->origin[2], 5.0, 1e-9);
    check_values(v, 12, 0, 1.0, -1024.0, 0.0, 0);
  }
  CHECK_NOTE(sc, "classic multi-frame");
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

static void test_missing_uids(void)
{
  const char *dir = subdir("nouid");
  tg_image g;
  tg_defaults(&g);
  stack st = {{0, 0, 0}, {0, 0, 2.0}, 3, NULL, 0};
  write_stack(dir, "withuid", &g, &st);
  g.series_uid = NULL;
  g.series_number = 7;
  write_stack(dir, "nouid7-", &g, &st);
  g.series_uid = "";
  g.series_number = 8;
  write_stack(dir, "empty8-", &g, &st);
  t3d_dicom_scan *sc = scan_ok(dir);
  CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 3);
  int nouid = 0;
  for (size_t i = 0; i < t3d_dicom_scan_series_count(sc); i++) {
    const t3d_dicom_series_info *si = t3d_dicom_scan_series(sc, i);
    CHECK_INT_EQ(si->instances, 3);
    if (si->uid_missing) {
      nouid++;
      CHECK(strncmp(si->meta.series_uid, "no-uid:", 7) == 0);
      t3d_volume *v = NULL;
      CHECK_STATUS(t3d_dicom_load_series_uid(sc, si->meta.series_uid, NULL, &v), T3D_OK);
      t3d_volume_free(v);
    }
  }
  CHECK_INT_EQ(nouid, 2);
  CHECK_NOTE(sc, "no Series Instance UID; grouped as no-uid:");
  t3d_dicom_scan_free(sc);
}

/* Loads the single series in dir and expects a refusal whose message contains want. */
static void expect_refusal(const char *dir, t3d_status want, const char *needle)
{
  t3d_dicom_scan *sc = scan_ok(dir);
  t3d_volume *v = NULL;
  CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 1);
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), want);
  CHECK_CONTAINS(t3d_error_detail(), needle);
  CHECK(v == NULL);
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

/* ---- tilt and uneven steps: resampled onto a regular grid ---------------------------------- */

/* A world-space ramp: linear in LPS, so bilinear and linear resampling reproduce it exactly up
 * to the 0.01 HU quantum it is stored with (slope 0.01). */
static double ramp(const double p[3]) { return 2.0 * p[0] + 3.0 * p[1] - 1.5 * p[2] + 40.0; }

/* Writes n slices (rows x cols pixels of `px` mm) with orientation iop at positions
 * pos[3k..3k+2], each pixel holding f at its own world position. */
static void write_field(const char *dir, const double iop[6], const double *pos, int n, int rows, int cols, double px,
                        double (*f)(const double p[3]))
{
  tg_image g;
  tg_defaults(&g);
  g.rows = rows, g.cols = cols;
  g.pixel_spacing[0] = g.pixel_spacing[1] = px;
  g.bits_stored = 16, g.high_bit = 15, g.pixel_rep = 1;
  g.slope = 0.01, g.intercept = 0;
  memcpy(g.iop, iop, sizeof g.iop);
  int32_t *vals = malloc((size_t)rows * cols * sizeof *vals);
  for (int k = 0; vals && k < n; k++) {
    for (int j = 0; j < g.rows; j++)
      for (int i = 0; i < g.cols; i++) {
        double p[3];
        for (int a = 0; a < 3; a++)
          p[a] = pos[3 * k + a] + i * g.pixel_spacing[1] * iop[a] + j * g.pixel_spacing[0] * iop[3 + a];
        vals[j * g.cols + i] = (int32_t)lround(f(p) / 0.01);
      }
    memcpy(g.ipp, pos + 3 * k, sizeof g.ipp);
    g.values = vals;
    g.instance_number = k + 1;
    char path[600];
    snprintf(path, sizeof path, "%s/r%02d.dcm", dir, k);
    must_write(path, &g);
  }
  free(vals);
}

static void write_ramp(const char *dir, const double iop[6], const double *pos, int n)
{
  write_field(dir, iop, pos, n, 12, 14, 0.5, ramp);
}

/* Loads the ramp series in dir; every voxel that is not fill (-1024) must hold the ramp at its
 * world position (0.006 HU: the stored quantum plus float rounding), at least min_inside of them,
 * and the geometry note must contain note (NULL: be empty). */
static void check_ramp(const char *dir, const char *note, double dz, double min_inside)
{
  t3d_dicom_scan *sc = scan_ok(dir);
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
  if (!v) {
    t3d_dicom_scan_free(sc);
    return;
  }
  if (note)
    CHECK_CONTAINS(v->geometry_note, note);
  else
    CHECK_INT_EQ(v->geometry_note[0], 0);
  CHECK_NEAR(v->spacing[2], dz, 1e-6);
  size_t inside = 0, wrong = 0, nv = t3d_volume_nvoxels(v);
  double worst = 0;
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        float x = v->data[(k * v->ny + j) * v->nx + i];
        if (x == -1024.0f)
          continue;
        double p[3];
        t3d_volume_index_to_lps(v, (double)i, (double)j, (double)k, p);
        double e = fabs(x - ramp(p));
        inside++;
        if (worst == worst && !(e <= worst))
          worst = e;
        if (!(e <= 0.006) && wrong++ < 3) /* NaN counts as wrong */
          fprintf(stderr, "  %s voxel (%lld,%lld,%lld) at LPS (%.3f,%.3f,%.3f): %.4f, ramp %.4f\n", dir, (long long)i,
                  (long long)j, (long long)k, p[0], p[1], p[2], x, ramp(p));
      }
  check_count++;
  if (wrong || inside < min_inside * (double)nv) {
    check_failures++;
    fprintf(stderr, "%s:%d: FAIL: %s: %zu of %zu voxels off the ramp (worst %.4f HU), %zu inside (want >= %.0f%%)\n",
            __FILE__, __LINE__, dir, wrong, nv, worst, inside, 100 * min_inside);
  }
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

/* A solid sphere (300 HU in 0) of radius 8 mm at sphere_c. */
static const double sphere_c[3] = {1.5, -2.0, 17.0};
static double sphere(const double p[3])
{
  double d2 = 0;
  for (int a = 0; a < 3; a++)
    d2 += (p[a] - sphere_c[a]) * (p[a] - sphere_c[a]);
  return d2 <= 64.0 ? 300.0 : 0.0;
}

/* The sphere through a tilted, unevenly spaced stack: after loading, its centre (value-weighted
 * mean position) must lie within 0.3 mm of the true one and its volume (sum of values / 300 x
 * voxel volume) within 5% of 4/3 pi 8^3 = 2144.7 mm^3 (sampling a hard edge on 1-2 mm voxels).
 * Read as acquired, without the shear, the centre would be off by tan(20 deg) x 17 mm = 6.2 mm. */
static void test_sphere_phantom(void)
{
  static const double iop[6] = {1, 0, 0, 0, 1, 0};
  double pos[3 * 20], z = 0, t = tan(20 * M_PI / 180);
  for (int k = 0; k < 20; k++) {
    pos[3 * k] = -20, pos[3 * k + 1] = -20 + z * t, pos[3 * k + 2] = z;
    z += k % 2 ? 1.5 : 2.0;
  }
  const char *dir = subdir("sphere");
  write_field(dir, iop, pos, 20, 40, 40, 1.0, sphere);
  t3d_dicom_scan *sc = scan_ok(dir);
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
  if (v) {
    CHECK_CONTAINS(v->geometry_note, "gantry tilt 20.0\u00b0 corrected");
    CHECK_CONTAINS(v->geometry_note, "uneven steps 1.50\u20132.00 mm to 1.50 mm");
    double mass = 0, c[3] = {0, 0, 0};
    for (int64_t k = 0; k < v->nz; k++)
      for (int64_t j = 0; j < v->ny; j++)
        for (int64_t i = 0; i < v->nx; i++) {
          float x = v->data[(k * v->ny + j) * v->nx + i];
          if (x <= 0)
            continue;
          double p[3];
          t3d_volume_index_to_lps(v, (double)i, (double)j, (double)k, p);
          mass += x;
          for (int a = 0; a < 3; a++)
            c[a] += x * p[a];
        }
    double vol = mass / 300.0 * v->spacing[0] * v->spacing[1] * v->spacing[2], want = 4.0 / 3.0 * M_PI * 512.0;
    for (int a = 0; a < 3; a++)
      c[a] /= mass > 0 ? mass : 1;
    double off = sqrt((c[0] - sphere_c[0]) * (c[0] - sphere_c[0]) + (c[1] - sphere_c[1]) * (c[1] - sphere_c[1]) +
                      (c[2] - sphere_c[2]) * (c[2] - sphere_c[2]));
    printf("sphere phantom: centre (%.3f, %.3f, %.3f), %.3f mm from the true one; volume %.1f mm^3 (true %.1f)\n",
           c[0], c[1], c[2], off, vol, want);
    CHECK_NEAR(off, 0.0, 0.3);
    CHECK_NEAR(vol / want, 1.0, 0.05);
  }
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

static void expect_strict_refusal(const char *dir, const char *needle)
{
  t3d_dicom_scan *sc = scan_ok(dir);
  t3d_dicom_load_opts o = t3d_dicom_load_default_opts();
  t3d_volume *v = NULL;
  o.strict_geometry = 1;
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, &o, &v), T3D_ERR_UNSUPPORTED);
  CHECK_CONTAINS(t3d_error_detail(), needle);
  CHECK(v == NULL);
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

static void test_tilt_and_uneven(void)
{
  static const double axial[6] = {1, 0, 0, 0, 1, 0};
  double pos[3 * 12];
  char name[32];
  /* Positions sheared along the columns (GE/Siemens style), both signs, four orientations
   * (axial, sagittal, coronal, oblique). */
  static const double iops[4][6] = {{1, 0, 0, 0, 1, 0},
                                    {0, 1, 0, 0, 0, -1},
                                    {1, 0, 0, 0, 0, -1},
                                    {0.8660254037844387, 0.5, 0, -0.3535533905932738, 0.6123724356957945, -0.7071067811865476}};
  for (int o = 0; o < 4; o++)
    for (int sign = -1; sign <= 1; sign += 2) {
      const double *r = iops[o], *c = iops[o] + 3;
      double nrm[3] = {r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]};
      double t = sign * tan(15 * M_PI / 180);
      for (int k = 0; k < 6; k++)
        for (int a = 0; a < 3; a++)
          pos[3 * k + a] = (a == 0 ? -3 : -2) + 2.5 * k * (nrm[a] + t * c[a]);
      snprintf(name, sizeof name, "ramp-tilt%d%+d", o, sign);
      const char *dir = subdir(name);
      write_ramp(dir, iops[o], pos, 6);
      check_ramp(dir, sign > 0 ? "gantry tilt 15.0\u00b0 corrected" : "gantry tilt -15.0\u00b0 corrected", 2.5, 0.55);
      expect_strict_refusal(dir, "tilt of about 15.0 degrees");
    }
  /* Tilt only in the orientation (Philips style): image planes tilted 18.5 degrees about x,
   * positions straight along the table. */
  {
    double a = -18.5 * M_PI / 180, iop[6] = {1, 0, 0, 0, cos(a), sin(a)};
    for (int k = 0; k < 6; k++)
      pos[3 * k] = 0, pos[3 * k + 1] = 0, pos[3 * k + 2] = 3.0 * k;
    const char *dir = subdir("ramp-tilt-iop");
    write_ramp(dir, iop, pos, 6);
    check_ramp(dir, "18.5\u00b0 corrected", 3.0 * cos(a), 0.45);
  }
  /* Uneven steps 1.0 / 1.5 alternating: resampled to 1.0 mm. */
  {
    double z = 0;
    for (int k = 0; k < 8; k++) {
      pos[3 * k] = 1, pos[3 * k + 1] = -1, pos[3 * k + 2] = z;
      z += k % 2 ? 1.5 : 1.0;
    }
    const char *dir = subdir("ramp-uneven");
    write_ramp(dir, axial, pos, 8);
    check_ramp(dir, "slices resampled from uneven steps 1.00\u20131.50 mm to 1.00 mm", 1.0, 0.99);
    expect_strict_refusal(dir, "but a gap of 1.50 mm between z=1.00 and z=2.50, expected 1.00 mm (3 uneven steps in all); "
                               "refusing (strict geometry");
  }
  /* A protocol that changes step: six 1 mm steps, then three of 4 mm (4x the median, but the
   * same as its neighbour: not a missing slice). */
  {
    double z = 0;
    for (int k = 0; k < 10; k++) {
      pos[3 * k] = 0, pos[3 * k + 1] = 0, pos[3 * k + 2] = z;
      z += k < 6 ? 1.0 : 4.0;
    }
    const char *dir = subdir("ramp-two-steps");
    write_ramp(dir, axial, pos, 10);
    check_ramp(dir, "slices resampled from uneven steps 1.00\u20134.00 mm to 1.00 mm (10 to 19 slices", 1.0, 0.99);
  }
  /* Both at once, sheared the other way along the rows. */
  {
    double z = 0, t = tan(-10 * M_PI / 180);
    for (int k = 0; k < 7; k++) {
      pos[3 * k] = z * t, pos[3 * k + 1] = 0, pos[3 * k + 2] = z;
      z += k % 3 ? 2.0 : 3.0;
    }
    const char *dir = subdir("ramp-tilt-uneven");
    write_ramp(dir, axial, pos, 7);
    check_ramp(dir, "corrected (slices shifted in-plane by up to", 2.0, 0.6);
    check_ramp(dir, "; slices resampled from uneven steps 2.00\u20133.00 mm to 2.00 mm", 2.0, 0.6);
  }
  /* Still refused: a missing slice among uneven steps, and positions that wander (no tilt). */
  {
    static const double zs[6] = {0, 1, 2.5, 3.5, 7.5, 8.5};
    for (int k = 0; k < 6; k++)
      pos[3 * k] = 0, pos[3 * k + 1] = 0, pos[3 * k + 2] = zs[k];
    const char *dir = subdir("ramp-gap");
    write_ramp(dir, axial, pos, 6);
    expect_refusal(dir, T3D_ERR_UNSUPPORTED, "but a gap of 4.00 mm between z=3.50 and z=7.50, expected 1.00 mm; refusing");
    for (int k = 0; k < 6; k++)
      pos[3 * k] = k % 2 ? 3.0 : 0, pos[3 * k + 1] = 0, pos[3 * k + 2] = 2.0 * k;
    dir = subdir("ramp-wander");
    write_ramp(dir, axial, pos, 6);
    expect_refusal(dir, T3D_ERR_UNSUPPORTED, "step off the slice normal irregularly");
  }
}

static void test_policies(void)
{
  tg_image g;
  tg_defaults(&g);

  /* a missing slice: positions 0, 2.5, 5, (7.5 missing), 10, 12.5 */
  const char *dir = subdir("gap");
  static const int names[6] = {0, 1, 2, 3, 4, 5};
  stack st = {{0, 0, 0}, {0, 0, 2.5}, 3, names, 0};
  write_stack(dir, "a", &g, &st);
  stack st2 = {{0, 0, 10}, {0, 0, 2.5}, 3, names, 0};
  write_stack(dir, "b", &g, &st2);
  expect_refusal(dir, T3D_ERR_UNSUPPORTED, "has 6 slices but a gap of 5.00 mm between z=5.00 and z=10.00, expected 2.50 mm; refusing");

  /* jitter within tolerance: accepted with the median step */
  dir = subdir("jitter");
  for (int k = 0; k < 5; k++) {
    stack one = {{0, 0, 2.5 * k + (k % 2 ? 0.1 : -0.05)}, {0, 0, 0}, 1, NULL, 0};
    char pre[8];
    snprintf(pre, sizeof pre, "j%d-", k);
    write_stack(dir, pre, &g, &one);
  }
  {
    t3d_dicom_scan *sc = scan_ok(dir);
    t3d_volume *v = NULL;
    CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
    if (v)
      CHECK_NEAR(v->spacing[2], 2.5, 1e-6); /* steps 2.65, 2.35, 2.65, 2.35: median 2.5 */
    t3d_volume_free(v);
    t3d_dicom_scan_free(sc);
  }

  /* gantry tilt: each slice shifts 2.5*tan(15 deg) mm along y */
  dir = subdir("tilt");
  stack tl = {{0, 0, 0}, {0, 2.5 * tan(15 * M_PI / 180), 2.5}, 5, NULL, 0};
  write_stack(dir, "t", &g, &tl);
  expect_strict_refusal(dir, "tilt of about 15.0 degrees");

  /* mixed sizes */
  dir = subdir("sizes");
  stack s3 = {{0, 0, 0}, {0, 0, 2.5}, 3, NULL, 0};
  write_stack(dir, "a", &g, &s3);
  {
    tg_image h = g;
    h.rows = 6;
    stack s1 = {{0, 0, 7.5}, {0, 0, 0}, 1, NULL, 0};
    write_stack(dir, "b", &h, &s1);
  }
  expect_refusal(dir, T3D_ERR_UNSUPPORTED, "mixes image sizes");
  expect_refusal(dir, T3D_ERR_UNSUPPORTED, "b00.dcm is 10x6");

  /* mixed orientations */
  dir = subdir("orient");
  write_stack(dir, "a", &g, &s3);
  {
    tg_image h = g;
    h.iop[0] = 0.99995, h.iop[1] = 0.01;
    stack s1 = {{0, 0, 7.5}, {0, 0, 0}, 1, NULL, 0};
    write_stack(dir, "b", &h, &s1);
  }
  expect_refusal(dir, T3D_ERR_UNSUPPORTED, "mixes orientations");

  /* same position, different pixels */
  dir = subdir("clash");
  write_stack(dir, "a", &g, &s3);
  {
    tg_image h = g;
    h.intercept = -1000;
    stack s1 = {{0, 0, 2.5}, {0, 0, 0}, 1, NULL, 0};
    write_stack(dir, "b", &h, &s1);
  }
  expect_refusal(dir, T3D_ERR_UNSUPPORTED, "lie at the same position z=2.50 but differ in pixel values");

  /* same position, same pixels, new SOP Instance UID: kept once */
  dir = subdir("dup-pos");
  write_stack(dir, "a", &g, &s3);
  {
    stack s1 = {{0, 0, 0}, {0, 0, 2.5}, 2, NULL, 0};
    write_stack(dir, "b", &g, &s1);
    t3d_dicom_scan *sc = scan_ok(dir);
    t3d_volume *v = NULL;
    CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
    if (v) {
      CHECK_INT_EQ(v->nz, 3);
      check_values(v, 12, 0, 1.0, -1024.0, 0.0, 0);
    }
    CHECK_NOTE(sc, "same position and pixels as");
    t3d_volume_free(v);
    t3d_dicom_scan_free(sc);
  }

  /* same depth, shifted in-plane: two fields of view under one UID */
  dir = subdir("fov");
  write_stack(dir, "a", &g, &s3);
  {
    stack s1 = {{30, 0, 2.5}, {0, 0, 0}, 1, NULL, 0};
    write_stack(dir, "b", &g, &s1);
  }
  expect_refusal(dir, T3D_ERR_UNSUPPORTED, "lie at the same depth z=2.50 but 30.00 mm apart in-plane");

  /* non-positive pixel spacing */
  dir = subdir("spacing0");
  {
    tg_image h = g;
    h.pixel_spacing[0] = 0;
    write_stack(dir, "z", &h, &s3);
  }
  expect_refusal(dir, T3D_ERR_FORMAT, "Pixel Spacing that is not positive");

  /* undecodable transfer syntax */
  dir = subdir("mpeg");
  {
    tg_image h = g;
    h.syntax = "mpeg2";
    stack s1 = {{0, 0, 0}, {0, 0, 2.5}, 2, NULL, 0};
    write_stack(dir, "m", &h, &s1);
  }
  expect_refusal(dir, T3D_ERR_UNSUPPORTED, "1.2.840.10008.1.2.4.100");
}

static void test_padding_mono_modality(void)
{
  tg_image g;
  tg_defaults(&g);
  /* Padding: stored value -2000 (signed 16) marks outside-the-scan voxels. */
  const char *dir = subdir("padding");
  g.bits_stored = 16, g.high_bit = 15, g.pixel_rep = 1, g.intercept = 0;
  g.has_padding = 1;
  g.padding_value = -2000;
  int32_t vals[80];
  for (int k = 0; k < 2; k++) {
    for (int p = 0; p < 80; p++)
      vals[p] = p < 10 ? -2000 : p;
    g.values = vals;
    g.ipp[2] = 3.0 * k;
    char path[600];
    snprintf(path, sizeof path, "%s/p%d.dcm", dir, k);
    must_write(path, &g);
  }
  t3d_dicom_scan *sc = scan_ok(dir);
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
  if (v) {
    CHECK_NEAR(v->data[0], -1024.0, 0);
    CHECK_NEAR(v->data[80 + 9], -1024.0, 0);
    CHECK_NEAR(v->data[10], 10.0, 0);
    CHECK_NEAR(v->data[80 + 79], 79.0, 0);
  }
  CHECK_NOTE(sc, "20 voxels of Pixel Padding Value set to -1024");
  t3d_volume_free(v);
  t3d_dicom_load_opts o = t3d_dicom_load_default_opts();
  o.padding_value = -3000.0f;
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, &o, &v), T3D_OK);
  if (v)
    CHECK_NEAR(v->data[0], -3000.0, 0);
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);

  /* MONOCHROME1, no rescale (e.g. a DX-like MR test object): inverted within 8 bits */
  dir = subdir("mono1");
  tg_defaults(&g);
  g.bits_allocated = 8, g.bits_stored = 8, g.high_bit = 7;
  g.photometric = "MONOCHROME1";
  g.has_rescale = 0;
  g.modality = "MR";
  stack st = {{0, 0, 0}, {0, 0, 4.0}, 2, NULL, 0};
  write_stack(dir, "m", &g, &st);
  sc = scan_ok(dir);
  CHECK(strcmp(t3d_dicom_scan_series(sc, 0)->meta.modality, "MR") == 0);
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
  if (v) {
    check_values(v, 8, 0, -1.0, 255.0, 0.0, 0);
    CHECK(strcmp(v->meta.modality, "MR") == 0);
  }
  CHECK_NOTE(sc, "MONOCHROME1 without rescale");
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);

  /* MONOCHROME1 CT with rescale: HU kept */
  dir = subdir("mono1-ct");
  tg_defaults(&g);
  g.photometric = "MONOCHROME1";
  write_stack(dir, "m", &g, &st);
  sc = scan_ok(dir);
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_OK);
  if (v)
    check_values(v, 12, 0, 1.0, -1024.0, 0.0, 0);
  CHECK_NOTE(sc, "rescaled values kept");
  t3d_volume_free(v);
  t3d_dicom_scan_free(sc);
}

/* Names in Latin-1 come back as UTF-8; bytes that are no text at all become '?'. */
static void test_charsets(void)
{
  tg_image g;
  tg_defaults(&g);
  const char *dir = subdir("latin1");
  g.charset = "ISO_IR 100";
  g.patient_name = "M\xfcller^J\xf6rg";
  g.series_description = "Thorax \xb5m";
  stack st = {{0, 0, 0}, {0, 0, 2.5}, 1, NULL, 0};
  write_stack(dir, "l", &g, &st);
  t3d_dicom_scan *sc = scan_ok(dir);
  const t3d_dicom_series_info *si = t3d_dicom_scan_series(sc, 0);
  CHECK(si != NULL);
  if (si) {
    CHECK_CONTAINS(si->meta.patient_name, "M\xc3\xbcller^J\xc3\xb6rg");
    CHECK_CONTAINS(si->meta.series_description, "Thorax \xc2\xb5m");
  }
  t3d_dicom_scan_free(sc);

  dir = subdir("rawbytes");
  g.charset = NULL; /* default repertoire, yet high bytes: not convertible */
  g.series_uid = "1.2.826.0.1.3680043.10.1.77";
  g.patient_name = "Bad\xff\xfeName";
  write_stack(dir, "r", &g, &st);
  sc = scan_ok(dir);
  si = t3d_dicom_scan_series(sc, 0);
  CHECK(si != NULL);
  if (si)
    CHECK_CONTAINS(si->meta.patient_name, "Bad??Name");
  t3d_dicom_scan_free(sc);
}

/* RLE frames decoded by t3d (core/dicom/dicom_rle.c): segment offsets outside the frame and a
 * segment too short for its plane are refused with a reason, never read past. */
static void test_rle_damaged(void)
{
  for (int variant = 0; variant < 2; variant++) {
    tg_image g;
    tg_defaults(&g);
    g.syntax = "rle";
    int32_t vals[80];
    for (int p = 0; p < 80; p++)
      vals[p] = 100 + p;
    g.values = vals;
    char name[32], path[600];
    snprintf(name, sizeof name, "rle-bad%d", variant);
    const char *dir = subdir(name);
    snprintf(path, sizeof path, "%s/x.dcm", dir);
    must_write(path, &g);
    /* the RLE header: 2 segments, the first at offset 64 */
    FILE *f = fopen(path, "r+b");
    unsigned char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    long at = -1;
    for (size_t i = 0; i + 12 <= n; i++)
      if (memcmp(buf + i, "\x02\0\0\0\x40\0\0\0", 8) == 0)
        at = (long)i;
    CHECK(at >= 0);
    if (f && at >= 0) {
      /* variant 0: second segment far beyond the frame; 1: second segment starts one byte after
       * the first, which then cannot hold a plane */
      unsigned char off[4] = {0xF0, 0xFF, 0xFF, 0x0F};
      if (variant == 1)
        off[0] = 65, off[1] = off[2] = off[3] = 0;
      fseek(f, at + 8, SEEK_SET);
      fwrite(off, 1, 4, f);
    }
    if (f)
      fclose(f);
    expect_refusal(dir, T3D_ERR_FORMAT, variant == 0 ? "lies outside its" : "does not decode to 80 samples");
  }
}

static void test_dicomdir_and_broken_files(void)
{
  tg_image g;
  tg_defaults(&g);
  const char *dir = subdir("dd");
  char sub[600];
  snprintf(sub, sizeof sub, "%s/IMG", dir);
  mkdir(sub, 0755);
  stack st = {{0, 0, 0}, {0, 0, 2.5}, 3, NULL, 0};
  write_stack(sub, "I", &g, &st);
  const char *rel[] = {"IMG/I00.dcm", "IMG/I01.dcm", "IMG/I02.dcm", "IMG/MISSING"};
  char err[256];
  CHECK_INT_EQ(tg_write_dicomdir(dir, rel, 4, err, sizeof err), 0);
  char ddpath[700];
  snprintf(ddpath, sizeof ddpath, "%s/DICOMDIR", dir);
  t3d_dicom_scan *sc = scan_ok(ddpath);
  CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 1);
  CHECK_INT_EQ(t3d_dicom_scan_series(sc, 0) ? t3d_dicom_scan_series(sc, 0)->instances : -1, 3);
  CHECK_NOTE(sc, "IMG/MISSING: referenced by DICOMDIR");
  t3d_dicom_scan_free(sc);
  /* the folder scanned directly: the DICOMDIR file is noted, the images found once */
  sc = scan_ok(dir);
  CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 1);
  CHECK_NOTE(sc, "DICOMDIR index, skipped");
  t3d_dicom_scan_free(sc);

  /* truncated file (half its pixels) and a DICM-prefixed file of junk */
  dir = subdir("broken");
  stack one = {{0, 0, 0}, {0, 0, 2.5}, 2, NULL, 0};
  write_stack(dir, "x", &g, &one);
  char p[700], cmd[1600];
  snprintf(p, sizeof p, "%s/x01.dcm", dir);
  struct stat sb;
  stat(p, &sb);
  CHECK_INT_EQ(truncate(p, sb.st_size - 80), 0);
  snprintf(p, sizeof p, "%s/junk.dcm", dir);
  snprintf(cmd, sizeof cmd, "(head -c 128 /dev/zero; printf 'DICM'; head -c 300 /dev/urandom) > '%s'", p);
  CHECK_INT_EQ(system(cmd), 0);
  sc = scan_ok(dir);
  CHECK_NOTE(sc, "junk.dcm: unreadable DICOM, skipped");
  /* the truncated one stays in its series, which then refuses to load, naming it */
  CHECK_NOTE(sc, "x01.dcm: damaged after its header");
  CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 1);
  {
    t3d_volume *v = NULL;
    CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &v), T3D_ERR_FORMAT);
    CHECK_CONTAINS(t3d_error_detail(), "x01.dcm: damaged or truncated");
    t3d_volume_free(v);
  }
  t3d_dicom_scan_free(sc);

  /* errors for bad arguments */
  CHECK_STATUS(t3d_dicom_scan_path("/nonexistent/t3d", &sc), T3D_ERR_IO);
  CHECK_CONTAINS(t3d_error_detail(), "/nonexistent/t3d");
  t3d_dicom_scan_free(NULL);
}

int main(void)
{
  const char *base = getenv("T3D_BUILDDIR");
  snprintf(root, sizeof root, "%s/test-dicom-read-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(root)) {
    perror(root);
    return 1;
  }
  test_listing_geometry_sort();
  test_syntaxes();
  test_j2k_lossy();
  test_multiframe();
  test_missing_uids();
  test_policies();
  test_tilt_and_uneven();
  test_sphere_phantom();
  test_rle_damaged();
  test_padding_mono_modality();
  test_charsets();
  test_dicomdir_and_broken_files();
  int rc = check_finish("test-dicom-read");
  if (rc == 0 || getenv("T3D_KEEP_TEST_DATA") == NULL)
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  else
    fprintf(stderr, "test data kept in %s\n", root);
  return rc;
}
