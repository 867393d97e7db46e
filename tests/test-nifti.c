/* NIfTI-1 writer/reader: round trips (plain and gzip, oblique and left-handed grids) keep voxels
 * and LPS geometry; the header says float32, sform/qform code 1 and the RAS affine; scaled
 * int16 and big-endian files read back scaled; malformed files fail with the right status and a
 * message instead of crashing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/dicom/nifti.h"
#include "core/model/phantom.h"
#include "core/base/status.h"
#include "tests/check.h"

static char dir[256];

static const char *tmp_path(const char *name)
{
  static char buf[4][512];
  static int n;
  char *p = buf[n++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

static void check_same_volume(const t3d_volume *a, const t3d_volume *b)
{
  CHECK_INT_EQ(a->nx, b->nx);
  CHECK_INT_EQ(a->ny, b->ny);
  CHECK_INT_EQ(a->nz, b->nz);
  for (int r = 0; r < 3; r++) {
    CHECK_NEAR(a->spacing[r], b->spacing[r], 1e-5);
    CHECK_NEAR(a->origin[r], b->origin[r], 1e-4);
    for (int c = 0; c < 3; c++)
      CHECK_NEAR(a->dir[r][c], b->dir[r][c], 1e-6);
  }
  if (a->nx == b->nx && a->ny == b->ny && a->nz == b->nz) {
    size_t bad = 0, n = t3d_volume_nvoxels(a);
    for (size_t i = 0; i < n; i++)
      bad += a->data[i] != b->data[i];
    CHECK_INT_EQ(bad, 0);
  }
}

static void test_round_trip(t3d_phantom_orientation o, int left_handed, const char *name)
{
  t3d_phantom_params pp = t3d_phantom_default_params();
  pp.nx = 13, pp.ny = 11, pp.nz = 7;
  pp.spacing[0] = 0.7, pp.spacing[1] = 1.3, pp.spacing[2] = 2.5;
  pp.orientation = o;
  t3d_volume *v = NULL, *r = NULL;
  CHECK_STATUS(t3d_phantom_ct(&pp, &v), T3D_OK);
  if (!v)
    return;
  if (left_handed) /* slices stacked the other way: det < 0, qfac must be -1 */
    for (int i = 0; i < 3; i++)
      v->dir[i][2] = -v->dir[i][2];
  v->data[5] = 1234.5f; /* a non-integer value survives float32 storage */
  const char *p = tmp_path(name);
  CHECK_STATUS(t3d_nifti_write(v, p), T3D_OK);
  t3d_nifti_info info;
  CHECK_STATUS(t3d_nifti_read(p, &r, &info), T3D_OK);
  if (r) {
    check_same_volume(v, r);
    CHECK_INT_EQ(info.datatype, 16);
    CHECK_INT_EQ(info.bitpix, 32);
    CHECK_INT_EQ(info.sform_code, 1);
    CHECK_INT_EQ(info.qform_code, 1);
    CHECK_NEAR(info.qfac, left_handed ? -1 : 1, 0);
    double a[4][4];
    t3d_volume_affine(v, a);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++) {
        double ras = (i < 2 ? -1 : 1) * a[i][j]; /* LPS -> RAS negates x and y */
        CHECK_NEAR(info.sform_ras[i][j], ras, 1e-4);
        CHECK_NEAR(info.qform_ras[i][j], ras, 1e-4);
      }
  }
  t3d_volume_free(v);
  t3d_volume_free(r);
}

/* A hand-made header: 3-D int16, scl_slope 2, scl_inter -1024, no sform, qform identity. */
static void make_header(uint8_t h[352], int big_endian)
{
  memset(h, 0, 352);
#define P16(off, v) (big_endian ? (h[off] = (uint8_t)((v) >> 8), h[(off) + 1] = (uint8_t)(v)) \
                                : (h[off] = (uint8_t)(v), h[(off) + 1] = (uint8_t)((v) >> 8)))
#define P32(off, v)                                                                    \
  do {                                                                                 \
    uint32_t u_ = (v);                                                                 \
    for (int b_ = 0; b_ < 4; b_++)                                                     \
      h[(off) + (big_endian ? 3 - b_ : b_)] = (uint8_t)(u_ >> (8 * b_));               \
  } while (0)
#define PF(off, x)                                                                     \
  do {                                                                                 \
    float f_ = (x);                                                                    \
    uint32_t u2_;                                                                      \
    memcpy(&u2_, &f_, 4);                                                              \
    P32(off, u2_);                                                                     \
  } while (0)
  P32(0, 348);
  P16(40, 3);
  P16(42, 4);
  P16(44, 3);
  P16(46, 2);
  P16(70, 4);
  P16(72, 16);
  PF(76, 1.0f);
  PF(80, 0.5f);
  PF(84, 0.75f);
  PF(88, 3.0f);
  PF(108, 352.0f);
  PF(112, 2.0f);
  PF(116, -1024.0f);
  P16(252, 1);
  memcpy(h + 344, "n+1", 4);
}

static void write_file(const char *path, const void *a, size_t na, const void *b, size_t nb)
{
  FILE *f = fopen(path, "wb");
  if (!f)
    return;
  if (na)
    fwrite(a, 1, na, f);
  if (nb)
    fwrite(b, 1, nb, f);
  fclose(f);
}

static void test_scaled_int16(int big_endian)
{
  uint8_t h[352], d[48];
  make_header(h, big_endian);
  for (int i = 0; i < 24; i++) {
    int16_t x = (int16_t)(i * 100 - 50);
    uint16_t u = (uint16_t)x;
    d[2 * i + (big_endian ? 1 : 0)] = (uint8_t)u;
    d[2 * i + (big_endian ? 0 : 1)] = (uint8_t)(u >> 8);
  }
  const char *p = tmp_path(big_endian ? "be.nii" : "le.nii");
  write_file(p, h, 352, d, sizeof d);
  t3d_volume *v = NULL;
  t3d_nifti_info info;
  CHECK_STATUS(t3d_nifti_read(p, &v, &info), T3D_OK);
  if (!v)
    return;
  CHECK_INT_EQ(v->nx * 100 + v->ny * 10 + v->nz, 432);
  CHECK_INT_EQ(info.datatype, 4);
  for (int i = 0; i < 24; i++)
    CHECK_NEAR(v->data[i], 2.0 * (i * 100 - 50) - 1024, 0);
  /* qform identity in RAS -> LPS directions (-1, -1, 1), spacing from pixdim */
  CHECK_NEAR(v->dir[0][0], -1, 1e-9);
  CHECK_NEAR(v->dir[1][1], -1, 1e-9);
  CHECK_NEAR(v->dir[2][2], 1, 1e-9);
  CHECK_NEAR(v->spacing[0], 0.5, 1e-7);
  CHECK_NEAR(v->spacing[1], 0.75, 1e-7);
  CHECK_NEAR(v->spacing[2], 3.0, 1e-7);
  t3d_volume_free(v);
}

/* Writes a variant of the good int16 file with a patch applied, and expects status want. */
static void expect_bad(const char *what, int off, const void *patch, size_t n, size_t data_bytes, t3d_status want)
{
  uint8_t h[352], d[96] = {0}; /* up to 96 data bytes (the 4-D case) */
  make_header(h, 0);
  if (patch)
    memcpy(h + off, patch, n);
  const char *p = tmp_path("bad.nii");
  write_file(p, h, off < 0 ? (size_t)-off : 352, d, off < 0 ? 0 : data_bytes);
  t3d_volume *v = NULL;
  t3d_status st = t3d_nifti_read(p, &v, NULL);
  if (st != want || (v != NULL) != (want == T3D_OK) || (st != T3D_OK && t3d_error_detail()[0] == '\0'))
    fprintf(stderr, "case %s: got %s (%s)\n", what, t3d_strerror(st), t3d_error_detail());
  CHECK_INT_EQ(st, want);
  CHECK((v != NULL) == (want == T3D_OK));
  CHECK(st == T3D_OK || t3d_error_detail()[0] != '\0');
  t3d_volume_free(v);
}

static void test_malformed(void)
{
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_nifti_read(tmp_path("does-not-exist.nii"), &v, NULL), T3D_ERR_IO);
  CHECK(strstr(t3d_error_detail(), "does-not-exist.nii") != NULL);
  write_file(tmp_path("empty.nii"), "", 0, "", 0);
  CHECK_STATUS(t3d_nifti_read(tmp_path("empty.nii"), &v, NULL), T3D_ERR_FORMAT);

  int16_t i16;
  uint32_t u32;
  float f;
  expect_bad("short header", -100, NULL, 0, 0, T3D_ERR_FORMAT);
  u32 = 349;
  expect_bad("sizeof_hdr", 0, &u32, 4, 48, T3D_ERR_FORMAT);
  u32 = 540;
  expect_bad("nifti-2", 0, &u32, 4, 48, T3D_ERR_UNSUPPORTED);
  expect_bad("magic", 344, "xx1", 4, 48, T3D_ERR_FORMAT);
  expect_bad("pair", 344, "ni1", 4, 48, T3D_ERR_UNSUPPORTED);
  i16 = 0;
  expect_bad("dim0 0", 40, &i16, 2, 48, T3D_ERR_FORMAT);
  i16 = 9;
  expect_bad("dim0 9", 40, &i16, 2, 48, T3D_ERR_FORMAT);
  i16 = -4;
  expect_bad("negative dim", 42, &i16, 2, 48, T3D_ERR_FORMAT);
  {
    int16_t four_d[5] = {4, 4, 3, 2, 2};
    expect_bad("4-D", 40, four_d, sizeof four_d, 96, T3D_ERR_UNSUPPORTED);
  }
  i16 = 128; /* RGB */
  expect_bad("rgb", 70, &i16, 2, 48, T3D_ERR_UNSUPPORTED);
  i16 = 8;
  expect_bad("bitpix", 72, &i16, 2, 48, T3D_ERR_FORMAT);
  f = 100;
  expect_bad("vox_offset", 108, &f, 4, 48, T3D_ERR_FORMAT);
  f = 352.5f;
  expect_bad("fractional vox_offset", 108, &f, 4, 48, T3D_ERR_FORMAT);
  f = 1.0f / 0.0f;
  expect_bad("inf slope", 112, &f, 4, 48, T3D_ERR_FORMAT);
  expect_bad("truncated data", 0, NULL, 0, 47, T3D_ERR_FORMAT);
  expect_bad("no data", 0, NULL, 0, 0, T3D_ERR_FORMAT);
  {
    int16_t huge[4] = {3, 32767, 32767, 32767}; /* 35e12 voxels claimed, none present */
    expect_bad("huge", 40, huge, sizeof huge, 48, T3D_ERR_FORMAT);
  }
  expect_bad("good", 0, NULL, 0, 48, T3D_OK);

  /* gzip: a truncated stream and a corrupted one */
  t3d_volume *g = NULL;
  t3d_phantom_params pp = t3d_phantom_default_params();
  pp.nx = 16, pp.ny = 16, pp.nz = 4;
  CHECK_STATUS(t3d_phantom_ct(&pp, &g), T3D_OK);
  const char *gz = tmp_path("g.nii.gz");
  CHECK_STATUS(t3d_nifti_write(g, gz), T3D_OK);
  t3d_volume_free(g);
  FILE *fp = fopen(gz, "rb");
  uint8_t buf[65536];
  size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
  if (fp)
    fclose(fp);
  CHECK(n > 100);
  write_file(tmp_path("trunc.nii.gz"), buf, n / 2, "", 0);
  t3d_status st = t3d_nifti_read(tmp_path("trunc.nii.gz"), &v, NULL);
  CHECK(st == T3D_ERR_FORMAT || st == T3D_ERR_IO);
  CHECK(v == NULL);
  for (size_t i = n / 3; i < n / 3 + 64 && i < n; i++)
    buf[i] ^= 0x5a;
  write_file(tmp_path("corrupt.nii.gz"), buf, n, "", 0);
  st = t3d_nifti_read(tmp_path("corrupt.nii.gz"), &v, NULL);
  CHECK(st == T3D_ERR_FORMAT || st == T3D_ERR_IO);
  CHECK(v == NULL);
}

static void test_write_errors(void)
{
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_volume_new(&v, 2, 2, 2), T3D_OK);
  CHECK_STATUS(t3d_nifti_write(v, tmp_path("no/such/dir/x.nii")), T3D_ERR_IO);
  CHECK(strstr(t3d_error_detail(), "x.nii") != NULL);
  CHECK_STATUS(t3d_nifti_write(v, tmp_path("no/such/dir/x.nii.gz")), T3D_ERR_IO);
  if (access("/dev/full", W_OK) == 0) {
    CHECK_STATUS(t3d_nifti_write(v, "/dev/full"), T3D_ERR_IO); /* "disk full" */
  }
  t3d_volume_free(v);
}

int main(void)
{
  snprintf(dir, sizeof dir, "%s/t3d-test-nifti.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip(T3D_PHANTOM_AXIAL, 0, "axial.nii");
  test_round_trip(T3D_PHANTOM_OBLIQUE, 0, "oblique.nii.gz");
  test_round_trip(T3D_PHANTOM_SAGITTAL, 0, "sagittal.nii.gz");
  test_round_trip(T3D_PHANTOM_CORONAL, 1, "coronal-left.nii");
  test_round_trip(T3D_PHANTOM_OBLIQUE, 1, "oblique-left.nii.gz");
  test_scaled_int16(0);
  test_scaled_int16(1);
  test_malformed();
  test_write_errors();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_finish("test-nifti");
}
