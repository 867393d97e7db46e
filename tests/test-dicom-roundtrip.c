/* Writer -> reader round trip: the CT phantom written by core/dicomwrite in every orientation,
 * storage type and transfer syntax, as single-frame files and as Enhanced CT multi-frame, must load through core/dicom with the same geometry (1e-6)
 * and exactly the HU the writer's rescale promises; its gap test data must be refused with the
 * reader's message, its tilt test data loaded (with a geometry note) or, with strict geometry,
 * refused. Not a test of either side alone (see test-dicom-read, -write-api). */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dicom/dicom.h"
#include "core/dicom/dicomwrite.h"
#include "core/model/phantom.h"
#include "tests/check.h"

static char root[256];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static t3d_volume *phantom(t3d_phantom_orientation o)
{
  t3d_phantom_params pp = t3d_phantom_default_params();
  t3d_volume *v = NULL;
  pp.nx = 32, pp.ny = 24, pp.nz = 6;
  pp.spacing[0] = 0.9, pp.spacing[1] = 0.7, pp.spacing[2] = 2.0;
  pp.orientation = o;
  CHECK_STATUS(t3d_phantom_ct(&pp, &v), T3D_OK);
  return v;
}

/* Writes v with (storage, syntax) to a new folder, loads it back and compares. */
static void round_trip(const t3d_volume *v, t3d_dicom_storage sto, t3d_dicom_syntax syn, int enhanced,
                       const char *label)
{
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", root, label);
  t3d_dicom_write_params wp = t3d_dicom_write_default_params();
  wp.storage = sto;
  wp.syntax = syn;
  wp.enhanced_multiframe = enhanced;
  t3d_dicom_rescale r;
  CHECK_STATUS(t3d_dicom_choose_rescale(v, sto, &r), T3D_OK);
  t3d_status s = t3d_dicom_write_ct_series(v, dir, &wp);
  CHECK_STATUS(s, T3D_OK);
  if (s != T3D_OK)
    return;
  t3d_dicom_scan *sc = NULL;
  t3d_volume *w = NULL;
  CHECK_STATUS(t3d_dicom_scan_path(dir, &sc), T3D_OK);
  CHECK_INT_EQ(t3d_dicom_scan_series_count(sc), 1);
  if (enhanced && t3d_dicom_scan_series(sc, 0))
    CHECK(t3d_dicom_scan_series(sc, 0)->multiframe && t3d_dicom_scan_series(sc, 0)->instances == 1);
  s = t3d_dicom_load_series(sc, 0, NULL, &w);
  CHECK_STATUS(s, T3D_OK);
  if (w) {
    int before = check_failures;
    CHECK_INT_EQ(w->nx, v->nx);
    CHECK_INT_EQ(w->ny, v->ny);
    CHECK_INT_EQ(w->nz, v->nz);
    for (int a = 0; a < 3; a++) {
      CHECK_NEAR(w->spacing[a], v->spacing[a], 1e-6);
      CHECK_NEAR(w->origin[a], v->origin[a], 1e-6);
      for (int b = 0; b < 3; b++)
        CHECK_NEAR(w->dir[a][b], v->dir[a][b], 1e-6);
    }
    size_t n = t3d_volume_nvoxels(v), bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
      float want = t3d_dicom_rescale_read(&r, t3d_dicom_rescale_store(&r, v->data[i]));
      if (fabsf(w->data[i] - want) > 1e-3f * fmaxf(1.0f, fabsf(want)) && !bad++)
        first = i;
    }
    check_count++;
    if (bad) {
      check_failures++;
      fprintf(stderr, "%s:%d: FAIL: %zu voxels differ, first #%zu: %g read, %g written\n", __FILE__, __LINE__, bad,
              first, w->data[first], t3d_dicom_rescale_read(&r, t3d_dicom_rescale_store(&r, v->data[first])));
    }
    if (check_failures != before)
      fprintf(stderr, "  (case %s)\n", label);
  }
  t3d_volume_free(w);
  t3d_dicom_scan_free(sc);
}

static void expect_refusal(const t3d_volume *v, const t3d_dicom_write_params *wp, const char *label, int strict,
                           const char *needle)
{
  t3d_dicom_load_opts o = t3d_dicom_load_default_opts();
  o.strict_geometry = strict;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", root, label);
  CHECK_STATUS(t3d_dicom_write_ct_series(v, dir, wp), T3D_OK);
  t3d_dicom_scan *sc = NULL;
  t3d_volume *w = NULL;
  CHECK_STATUS(t3d_dicom_scan_path(dir, &sc), T3D_OK);
  CHECK_STATUS(t3d_dicom_load_series(sc, 0, &o, &w), T3D_ERR_UNSUPPORTED);
  const char *d = t3d_error_detail();
  check_count++;
  if (!strstr(d, needle)) {
    check_failures++;
    fprintf(stderr, "%s:%d: FAIL: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, d, needle);
  }
  t3d_volume_free(w);
  t3d_dicom_scan_free(sc);
}

int main(void)
{
  const char *base = getenv("T3D_BUILDDIR");
  snprintf(root, sizeof root, "%s/test-dicom-roundtrip-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(root)) {
    perror(root);
    return 1;
  }
  static const char *oname[] = {"axial", "sagittal", "coronal", "oblique"};
  for (int o = 0; o < 4; o++) {
    t3d_volume *v = phantom((t3d_phantom_orientation)o);
    char label[64];
    snprintf(label, sizeof label, "%s", oname[o]);
    if (v)
      round_trip(v, T3D_DICOM_STORE_S16, T3D_DICOM_SYNTAX_EXPLICIT_LE, 0, label);
    snprintf(label, sizeof label, "%s-enhanced", oname[o]);
    if (v)
      round_trip(v, T3D_DICOM_STORE_S16, T3D_DICOM_SYNTAX_EXPLICIT_LE, 1, label);
    t3d_volume_free(v);
  }
  t3d_volume *v = phantom(T3D_PHANTOM_OBLIQUE);
  if (v) {
    for (int sto = 0; sto <= T3D_DICOM_STORE_U8; sto++)
      for (int syn = 0; syn < T3D_DICOM_SYNTAX_COUNT; syn++) {
        char label[64];
        snprintf(label, sizeof label, "%s-%s", t3d_dicom_storage_name((t3d_dicom_storage)sto),
                 t3d_dicom_syntax_name((t3d_dicom_syntax)syn));
        round_trip(v, (t3d_dicom_storage)sto, (t3d_dicom_syntax)syn, 0, label);
        if (sto == T3D_DICOM_STORE_U12) { /* and as one Enhanced CT file */
          snprintf(label, sizeof label, "%s-%s-enhanced", t3d_dicom_storage_name((t3d_dicom_storage)sto),
                   t3d_dicom_syntax_name((t3d_dicom_syntax)syn));
          round_trip(v, (t3d_dicom_storage)sto, (t3d_dicom_syntax)syn, 1, label);
        }
      }
    t3d_dicom_write_params wp = t3d_dicom_write_default_params();
    int64_t skip[1] = {3};
    wp.skip_slices = skip;
    wp.n_skip_slices = 1;
    expect_refusal(v, &wp, "gap", 0, "has 5 slices but a gap of 4.00 mm");
    wp = t3d_dicom_write_default_params();
    wp.gantry_tilt_deg = 12.0;
    expect_refusal(v, &wp, "tilt", 1, "tilt of about 12.0 degrees");
    {
      t3d_dicom_scan *sc = NULL;
      t3d_volume *w = NULL;
      char dir[512];
      snprintf(dir, sizeof dir, "%s/tilt", root);
      CHECK_STATUS(t3d_dicom_scan_path(dir, &sc), T3D_OK);
      CHECK_STATUS(t3d_dicom_load_series(sc, 0, NULL, &w), T3D_OK);
      check_count++;
      if (!w || !strstr(w->geometry_note, "gantry tilt 12.0\u00b0 corrected")) {
        check_failures++;
        fprintf(stderr, "%s:%d: FAIL: geometry note \"%s\" does not say the 12 degree tilt was corrected\n", __FILE__,
                __LINE__, w ? w->geometry_note : "(not loaded)");
      }
      t3d_volume_free(w);
      t3d_dicom_scan_free(sc);
    }
  }
  t3d_volume_free(v);
  int rc = check_finish("test-dicom-roundtrip");
  if (rc == 0 || !getenv("T3D_KEEP_TEST_DATA"))
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return rc;
}
