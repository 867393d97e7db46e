/* DICOM writer C API: rescale choice and its error bound per storage type, UID format and
 * uniqueness, files and names written (gaps included), no temporaries left after success or
 * failure, T3D_ERR_IO naming the path, awkward metadata sanitised so dciodvfy (when installed)
 * still finds no error. The full IOD/codec/dcm2niix checks are tests/test-dicom-write.sh. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dicom/dicomwrite.h"
#include "core/model/phantom.h"
#include "core/base/status.h"
#include "tests/check.h"

static char dir[256];

static const char *sub(const char *name)
{
  static char buf[4][512];
  static int n;
  char *p = buf[n++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

/* Counts entries in d: final .dcm files and anything else (temporaries). */
static void count_files(const char *d, int *dcm, int *other)
{
  *dcm = *other = 0;
  DIR *dp = opendir(d);
  if (!dp)
    return;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    size_t n = strlen(e->d_name);
    if (e->d_name[0] != '.' && n > 4 && strcmp(e->d_name + n - 4, ".dcm") == 0)
      (*dcm)++;
    else
      (*other)++;
  }
  closedir(dp);
}

static void test_rescale(void)
{
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_volume_new(&v, 50, 40, 2), T3D_OK);
  if (!v)
    return;
  size_t n = t3d_volume_nvoxels(v);
  for (size_t i = 0; i < n; i++)
    v->data[i] = (float)(-1000 + (double)i * 4000.0 / (double)(n - 1)); /* -1000 .. 3000, fractional */
  static const struct {
    t3d_dicom_storage s;
    double slope, intercept;
  } want[] = {
    {T3D_DICOM_STORE_S16, 1, 0},
    {T3D_DICOM_STORE_U16, 1, -1000},
    {T3D_DICOM_STORE_U12, 1, -1000},
    {T3D_DICOM_STORE_U8, 15.6863, -1000}, /* 4000/255 = 15.686274.. rounded up to 6 digits */
  };
  for (int t = 0; t < 4; t++) {
    t3d_dicom_rescale r;
    CHECK_STATUS(t3d_dicom_choose_rescale(v, want[t].s, &r), T3D_OK);
    CHECK_NEAR(r.slope, want[t].slope, 1e-12);
    CHECK_NEAR(r.intercept, want[t].intercept, 1e-9);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
      int32_t s = t3d_dicom_rescale_store(&r, v->data[i]);
      CHECK(s >= r.stored_min && s <= r.stored_max);
      double e = fabs(t3d_dicom_rescale_read(&r, s) - v->data[i]);
      if (worst == worst && !(e <= worst)) /* a NaN stays the worst */
        worst = e;
    }
    CHECK_NEAR(worst, 0, r.slope / 2 + 1e-3); /* documented bound: slope/2 */
  }
  /* A range beyond 16 bits: S16 must scale too, and still within slope/2. */
  v->data[0] = -40000, v->data[1] = 90000;
  t3d_dicom_rescale r;
  CHECK_STATUS(t3d_dicom_choose_rescale(v, T3D_DICOM_STORE_S16, &r), T3D_OK);
  CHECK(r.slope > 1);
  CHECK_NEAR(t3d_dicom_rescale_read(&r, t3d_dicom_rescale_store(&r, 90000)), 90000, r.slope / 2 + 1e-3);
  CHECK_NEAR(t3d_dicom_rescale_read(&r, t3d_dicom_rescale_store(&r, -40000)), -40000, r.slope / 2 + 1e-3);
  v->data[3] = NAN;
  CHECK_STATUS(t3d_dicom_choose_rescale(v, T3D_DICOM_STORE_S16, &r), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("nan"), NULL), T3D_ERR_INVALID_ARG);
  struct stat sb;
  CHECK(stat(sub("nan"), &sb) != 0); /* refused before anything was created */
  t3d_volume_free(v);
}

static void test_uids(void)
{
  char a[T3D_UID_MAX], b[T3D_UID_MAX];
  for (int i = 0; i < 200; i++) {
    CHECK_STATUS(t3d_dicom_new_uid(NULL, a), T3D_OK);
    CHECK(strncmp(a, "2.25.", 5) == 0);
    CHECK(strlen(a) <= 64 && strlen(a) > 6);
    CHECK(a[5] != '0' || a[6] == '\0');
    CHECK(strspn(a + 5, "0123456789") == strlen(a + 5));
    CHECK_STATUS(t3d_dicom_new_uid(NULL, b), T3D_OK);
    CHECK(strcmp(a, b) != 0);
  }
  CHECK_STATUS(t3d_dicom_new_uid("1.2.826.0.1.3680043.10.999", a), T3D_OK);
  CHECK_INT_EQ(strlen(a), 26 + 1 + 30);
  CHECK(strspn(a, "0123456789.") == strlen(a));
  CHECK_STATUS(t3d_dicom_new_uid("1.2.", a), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_dicom_new_uid("1.02.3", a), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_dicom_new_uid("1.2.x", a), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_dicom_new_uid("1.2.3456789012345678901234567890123456789012345678901234567890", a),
               T3D_ERR_INVALID_ARG);
}

/* Whether file path holds the n bytes b somewhere (a UID with its padding, say). */
static int file_has(const char *path, const char *b, size_t n)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  char buf[1 << 16];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  for (size_t i = 0; i + n <= len; i++)
    if (memcmp(buf + i, b, n) == 0)
      return 1;
  return 0;
}

static t3d_volume *small_phantom(int nz)
{
  t3d_phantom_params pp = t3d_phantom_default_params();
  pp.nx = 9, pp.ny = 7, pp.nz = nz;
  t3d_volume *v = NULL;
  CHECK_STATUS(t3d_phantom_ct(&pp, &v), T3D_OK);
  return v;
}

static void test_files(void)
{
  t3d_volume *v = small_phantom(5);
  if (!v)
    return;
  int dcm, other;
  /* defaults (NULL params), nested directory created */
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("a/b/c"), NULL), T3D_OK);
  count_files(sub("a/b/c"), &dcm, &other);
  CHECK_INT_EQ(dcm, 5);
  CHECK_INT_EQ(other, 0);

  /* SOP class: CT Image Storage for 16-bit storage; 8-bit storage is Secondary Capture Image
   * Storage (CT allows only 16 allocated bits) with Conversion Type WSD and Rescale Type HU.
   * UIDs of odd length are padded with one NUL. */
  static const char ct_uid[] = "1.2.840.10008.5.1.4.1.1.2", sc_uid[] = "1.2.840.10008.5.1.4.1.1.7";
  CHECK(file_has(sub("a/b/c/CT00001.dcm"), ct_uid, sizeof ct_uid));
  CHECK(!file_has(sub("a/b/c/CT00001.dcm"), sc_uid, sizeof sc_uid));
  {
    t3d_dicom_write_params p8 = t3d_dicom_write_default_params();
    p8.storage = T3D_DICOM_STORE_U8;
    CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("u8"), &p8), T3D_OK);
    count_files(sub("u8"), &dcm, &other);
    CHECK_INT_EQ(dcm, 5);
    CHECK_INT_EQ(other, 0);
    CHECK(file_has(sub("u8/CT00003.dcm"), sc_uid, sizeof sc_uid));
    CHECK(!file_has(sub("u8/CT00003.dcm"), ct_uid, sizeof ct_uid));
    /* (0008,0064) CS "WSD " and (0028,1054) LO "HU", explicit VR little endian */
    CHECK(file_has(sub("u8/CT00003.dcm"), "\x08\x00\x64\x00" "CS\x04\x00" "WSD ", 12));
    CHECK(file_has(sub("u8/CT00003.dcm"), "\x28\x00\x54\x10" "LO\x02\x00" "HU", 10));
  }

  /* gaps: slices 1 and 3 left out; instance numbers (and names) keep the slice index */
  t3d_dicom_write_params p = t3d_dicom_write_default_params();
  int64_t skip[2] = {1, 3};
  p.skip_slices = skip;
  p.n_skip_slices = 2;
  p.file_prefix = "IM";
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("gaps"), &p), T3D_OK);
  count_files(sub("gaps"), &dcm, &other);
  CHECK_INT_EQ(dcm, 3);
  CHECK_INT_EQ(other, 0);
  CHECK(access(sub("gaps/IM00001.dcm"), F_OK) == 0);
  CHECK(access(sub("gaps/IM00002.dcm"), F_OK) != 0);
  CHECK(access(sub("gaps/IM00003.dcm"), F_OK) == 0);
  CHECK(access(sub("gaps/IM00005.dcm"), F_OK) == 0);

  /* Enhanced CT: one file whatever the slice count (gaps too); 8-bit refused */
  p.enhanced_multiframe = 1;
  p.file_prefix = NULL;
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("enh"), &p), T3D_OK);
  count_files(sub("enh"), &dcm, &other);
  CHECK_INT_EQ(dcm, 1);
  CHECK_INT_EQ(other, 0);
  CHECK(access(sub("enh/CT00001.dcm"), F_OK) == 0);
  p.storage = T3D_DICOM_STORE_U8;
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("enh8"), &p), T3D_ERR_INVALID_ARG);
  int64_t all[5] = {0, 1, 2, 3, 4};
  p.storage = T3D_DICOM_STORE_S16;
  p.skip_slices = all;
  p.n_skip_slices = 5;
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("enh0"), &p), T3D_ERR_INVALID_ARG);

  /* output below a regular file: T3D_ERR_IO naming the path */
  FILE *f = fopen(sub("plain"), "w");
  if (f)
    fclose(f);
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("plain/series"), NULL), T3D_ERR_IO);
  CHECK(strstr(t3d_error_detail(), "plain") != NULL);

  /* failure after some slices were written: a directory sits where slice 3's final name goes,
   * so its rename fails; every temporary must be gone afterwards */
  CHECK(mkdir(sub("blocked"), 0777) == 0);
  CHECK(mkdir(sub("blocked/CT00003.dcm"), 0777) == 0);
  CHECK(mkdir(sub("blocked/CT00003.dcm/x"), 0777) == 0);
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("blocked"), NULL), T3D_ERR_IO);
  CHECK(strstr(t3d_error_detail(), "CT00003.dcm") != NULL);
  count_files(sub("blocked"), &dcm, &other);
  CHECK_INT_EQ(other, 0);

  /* bad parameters are refused before anything is written */
  p = t3d_dicom_write_default_params();
  p.syntax = (t3d_dicom_syntax)99;
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("bad"), &p), T3D_ERR_INVALID_ARG);
  p = t3d_dicom_write_default_params();
  p.gantry_tilt_deg = 75;
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("bad"), &p), T3D_ERR_INVALID_ARG);
  p = t3d_dicom_write_default_params();
  p.file_prefix = "../x";
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("bad"), &p), T3D_ERR_INVALID_ARG);
  p = t3d_dicom_write_default_params();
  p.uid_root = "1..2";
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("bad"), &p), T3D_ERR_INVALID_ARG);
  CHECK(access(sub("bad"), F_OK) != 0);
  t3d_volume_free(v);
}

/* Metadata that would make an invalid file if written as given. */
static void test_awkward_meta(void)
{
  t3d_volume *v = small_phantom(2);
  if (!v)
    return;
  t3d_volume_meta m;
  memset(&m, 0, sizeof m);
  /* 70 characters of UTF-8 name (PN allows 64) with a backslash; must be cut and charset set */
  snprintf(m.patient_name, sizeof m.patient_name, "Müller^Jürgen\\%s", "ÄÖÜäöüßéèêëáàâ Øresund-Ålesund-Smörgåsbord");
  snprintf(m.patient_id, sizeof m.patient_id, "ID-1");
  snprintf(m.patient_birth_date, sizeof m.patient_birth_date, "1970-01-01");
  snprintf(m.patient_sex, sizeof m.patient_sex, "male");
  snprintf(m.study_uid, sizeof m.study_uid, "not-a-uid");
  snprintf(m.study_date, sizeof m.study_date, "2026");
  snprintf(m.accession_number, sizeof m.accession_number, "ACC-0123456789-0123456789");
  snprintf(m.series_number, sizeof m.series_number, "x7");
  snprintf(m.body_part, sizeof m.body_part, "chest/abdomen");
  snprintf(m.series_uid, sizeof m.series_uid, "1.2.840.99999.1.2.3");
  t3d_dicom_write_params p = t3d_dicom_write_default_params();
  p.meta = &m;
  p.uid_root = "1.2.826.0.1.3680043.10.999";
  CHECK_STATUS(t3d_dicom_write_ct_series(v, sub("meta"), &p), T3D_OK);
  if (system("command -v dciodvfy >/dev/null 2>&1") == 0) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "for f in '%s'/*.dcm; do dciodvfy \"$f\" 2>&1; done | grep '^Error'", sub("meta"));
    int rc = system(cmd); /* grep exits 0 when it found an Error line */
    if (rc == 0)
      fprintf(stderr, "dciodvfy found errors in the series written with awkward metadata (above)\n");
    CHECK(rc != 0);
  } else {
    fprintf(stderr, "note: dciodvfy not installed; awkward-metadata series not validated\n");
  }
  t3d_volume_free(v);
}

int main(void)
{
  snprintf(dir, sizeof dir, "%s/t3d-test-dicomw.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_rescale();
  test_uids();
  test_files();
  test_awkward_meta();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_finish("test-dicom-write-api");
}
