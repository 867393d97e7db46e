/* Report content without running the model: a constructed analysis result (known findings,
 * organ volumes, a label volume with spheres of known radius on an oblique grid) must give the
 * expected statements, lesion count and diameter, neighbour phrasing by the documented rule, and
 * byte-identical text on a second run; plus SHA-256 test vectors (FIPS 180-4 examples). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/sha256.h"
#include "core/report/report.h"
#include "tests/check.h"
#include "tests/report-fake.h"

#define CHECK_HAS(text, needle)                                                                 \
  do {                                                                                          \
    check_count++;                                                                              \
    if (!strstr((text), (needle))) {                                                            \
      check_failures++;                                                                         \
      fprintf(stderr, "%s:%d: FAIL: text lacks \"%s\"; text:\n%s\n", __FILE__, __LINE__, (needle), \
              (text));                                                                          \
    }                                                                                           \
  } while (0)
#define CHECK_LACKS(text, needle)                                                               \
  do {                                                                                          \
    check_count++;                                                                              \
    if (strstr((text), (needle))) {                                                             \
      check_failures++;                                                                         \
      fprintf(stderr, "%s:%d: FAIL: text holds \"%s\"; text:\n%s\n", __FILE__, __LINE__, (needle), \
              (text));                                                                          \
    }                                                                                           \
  } while (0)

static void test_sha256(void)
{
  char hex[T3D_SHA256_HEX];
  t3d_sha256_hex("abc", 3, hex);
  CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  t3d_sha256_hex("", 0, hex);
  CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  t3d_sha256_hex(two, strlen(two), hex);
  if (strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") != 0) {
    fprintf(stderr, "sha256(two-block message) = %s\n", hex);
    CHECK(0);
  }
  /* one million 'a' through the streaming interface, in uneven pieces */
  t3d_sha256_ctx c;
  uint8_t d[32];
  char a[997];
  memset(a, 'a', sizeof a);
  t3d_sha256_init(&c);
  size_t left = 1000000;
  while (left) {
    size_t n = left < sizeof a ? left : sizeof a;
    t3d_sha256_update(&c, a, n);
    left -= n;
  }
  t3d_sha256_final(&c, d);
  CHECK_INT_EQ(d[0], 0xcd);
  CHECK_INT_EQ(d[1], 0xc7);
  CHECK_INT_EQ(d[31], 0xd0);
}

static const char *const hash = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

/* The report parameters of these tests: model "t3d-test" with the fixed hash, and these classes. */
static t3d_report_params test_params(const char *const *names, size_t nclasses)
{
  t3d_report_params p = t3d_report_default_params();
  p.model_name = "t3d-test";
  p.model_sha256 = hash;
  p.class_names = names;
  p.nclasses = nclasses;
  return p;
}

static void test_content(void)
{
  fake_case fc;
  make_case(&fc, 60, 50, 40);
  t3d_report_params p = test_params(class_names, 4);
  t3d_report *r = NULL, *r2 = NULL;
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r), T3D_OK);
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r2), T3D_OK);
  if (!r || !r2) goto done;
  const char *t = t3d_report_text(r, T3D_REPORT_TEXT), *md = t3d_report_text(r, T3D_REPORT_MARKDOWN);
  CHECK(strcmp(t, t3d_report_text(r2, T3D_REPORT_TEXT)) == 0);
  CHECK(strcmp(md, t3d_report_text(r2, T3D_REPORT_MARKDOWN)) == 0);
  CHECK_HAS(t, "DRAFT REPORT - MACHINE GENERATED, NOT REVIEWED");
  CHECK_HAS(t, "t3d-test");
  CHECK_HAS(t, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
  CHECK_HAS(t, "FINDINGS");
  CHECK_HAS(t, "IMPRESSION");
  CHECK_HAS(t, "Appearance suggests pleural effusion. (model probability 0.910)");
  CHECK_HAS(t, "Appearance suggests lung nodule. (model probability 0.620)");
  CHECK_HAS(t, "Below threshold 0.50: ascites 0.120.");
  CHECK_LACKS(t, "suggests ascites");
  CHECK_HAS(t, "1. Pleural effusion (probability 0.91).");
  CHECK_HAS(t, "2. Lung nodule (probability 0.62).");
  CHECK_HAS(t, "3. 2 segmented lesion(s)");
  CHECK_HAS(t, "Spleen: not segmented.");
  CHECK_HAS(t, "gantry tilt 12.0 deg corrected");
  CHECK_LACKS(t, "Generated:");
  CHECK_HAS(md, "# DRAFT REPORT");
  CHECK_HAS(md, "## FINDINGS");
  char liver[64];
  snprintf(liver, sizeof liver, "Liver volume: %.1f mL.", fc.volumes[1]);
  CHECK_HAS(t, liver);

  /* two lesions (the speck is under the floor); the big sphere's voxel-centre diameter is within
   * one voxel diagonal of 18 mm */
  CHECK_INT_EQ(t3d_report_lesion_count(r), 2);
  double dmax = t3d_report_lesion_max_diameter_mm(r);
  CHECK_NEAR(dmax, 18.0 - 0.75, 1.0);
  CHECK(dmax <= 18.0 + 1e-9);
  CHECK_NEAR(t3d_report_lesion_volume_ml(r, 0), 4.0 / 3.0 * M_PI * 729 / 1000, 0.15);
  CHECK_NEAR(t3d_report_lesion_volume_ml(r, 1), 4.0 / 3.0 * M_PI * 64 / 1000, 0.03);
  char diam[64];
  snprintf(diam, sizeof diam, "largest diameter %.1f mm", dmax);
  CHECK_HAS(t, diam);
  CHECK_INT_EQ(t3d_report_finding_present(r, 2), 0);

  /* a timestamp appears only when given */
  t3d_report *r3 = NULL;
  p.timestamp = "20260102030405";
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r3), T3D_OK);
  if (r3) CHECK_HAS(t3d_report_text(r3, T3D_REPORT_TEXT), "Generated: 20260102030405");
  t3d_report_free(r3);

  /* bad inputs */
  p.model_sha256 = "abc";
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r3), T3D_ERR_INVALID_ARG);
  p.model_sha256 = hash;
  p.nclasses = 3;
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r3), T3D_ERR_INVALID_ARG);
done:
  t3d_report_free(r);
  t3d_report_free(r2);
  t3d_tensor_free(fc.labels);
  t3d_volume_free(fc.vol);
}

static void test_neighbours(void)
{
  fake_case fc;
  make_case(&fc, 60, 50, 40);
  static const char *const f_eff[] = {"pleural effusion"}, *const f_both[] = {"pleural effusion", "lung nodule"},
                           *const f_none[] = {"ascites"};
  t3d_report_neighbour nb[4] = {
      {"case A", "No lung nodule. Small left pleural effusion with basal atelectasis. Heart normal.", 0.93, f_eff, 1},
      {"case B", "Moderate bilateral pleural effusion. A 6 mm lung nodule in the right upper lobe.", 0.95, f_both,
       2},
      {"case C", "Large pleural effusion.", 0.70, f_eff, 1},             /* not close: ignored */
      {"case D", "Ascites. No pleural effusion.", 0.85, f_none, 1}};     /* close, disagrees */
  t3d_report_params p = test_params(class_names, 4);
  p.neighbours = nb;
  p.nneighbours = 4;
  t3d_report *r = NULL;
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r), T3D_OK);
  if (r) {
    const char *t = t3d_report_text(r, T3D_REPORT_TEXT);
    /* effusion: 2 of 3 close neighbours agree; B is the most similar of them */
    CHECK_INT_EQ(t3d_report_finding_phrased_from(r, 0), 1);
    CHECK_HAS(t, "- Moderate bilateral pleural effusion. (model probability 0.910) [wording from similar case 2: "
                 "case B, similarity 0.95]");
    /* nodule: only 1 of 3 close neighbours lists it (< 0.5): the fixed sentence */
    CHECK_INT_EQ(t3d_report_finding_phrased_from(r, 1), -1);
    CHECK_HAS(t, "Appearance suggests lung nodule.");
    CHECK_LACKS(t, "No lung nodule");
  }
  t3d_report_free(r);
  /* with the agreement fraction lowered, the nodule takes B's sentence; A's negated one never */
  p.neighbour_min_agreement = 0.3;
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r), T3D_OK);
  if (r) {
    CHECK_INT_EQ(t3d_report_finding_phrased_from(r, 1), 1);
    CHECK_HAS(t3d_report_text(r, T3D_REPORT_TEXT), "- A 6 mm lung nodule in the right upper lobe.");
  }
  t3d_report_free(r);
  t3d_tensor_free(fc.labels);
  t3d_volume_free(fc.vol);
}

static void test_no_findings(void)
{
  fake_case fc;
  make_case(&fc, 60, 50, 40);
  fc.res.nfindings = 0;
  fc.res.labels = NULL;
  fc.res.volumes_ml = NULL;
  t3d_report_params p = test_params(NULL, 0);
  t3d_report *r = NULL;
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r), T3D_OK);
  if (r) {
    const char *t = t3d_report_text(r, T3D_REPORT_TEXT);
    CHECK_HAS(t, "No findings were scored");
    CHECK_HAS(t, "No segmentation");
    CHECK_HAS(t, "1. No finding reached the reporting threshold");
    CHECK(strstr(t, "unlike every case") == NULL); /* familiarity not checked: no caution */
    CHECK_STATUS(t3d_report_write_seg(r, NULL, NULL, "/nonexistent/x.dcm"), T3D_ERR_UNSUPPORTED);
  }
  t3d_report_free(r);
  /* a series the familiarity check found unlike the training cases: the notice says so */
  fc.res.familiar = -1, fc.res.familiarity = 0.421, fc.res.familiarity_threshold = 0.812;
  r = NULL;
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r), T3D_OK);
  if (r) {
    CHECK_HAS(t3d_report_text(r, T3D_REPORT_TEXT), "unlike every case the model was trained on (nearest cosine 0.421, "
                                                    "threshold 0.812)");
    CHECK_HAS(t3d_report_text(r, T3D_REPORT_MARKDOWN), "its findings are not reliable");
  }
  t3d_report_free(r);
  t3d_tensor_free(fc.labels);
  t3d_volume_free(fc.vol);
}

/* A finding whose held-out AUROC lies below T3D_FINDING_MIN_AUROC is "not assessed": never present
 * (even at probability 0.62, above the threshold), never among those below the threshold, named
 * with its AUROC on a line of its own; one at or above it, or without one, reads as before. */
static void test_not_assessed(void)
{
  fake_case fc;
  make_case(&fc, 60, 50, 40);
  fc.res.findings[0].has_heldout_auroc = fc.res.findings[1].has_heldout_auroc = true;
  fc.res.findings[0].heldout_auroc = 0.97;                               /* pleural effusion 0.91 */
  fc.res.findings[1].heldout_auroc = T3D_FINDING_MIN_AUROC - 0.19;       /* lung nodule 0.62 */
  t3d_report_params p = test_params(class_names, 4);
  t3d_report *r = NULL;
  CHECK(t3d_finding_assessed(&fc.res.findings[0]) && !t3d_finding_assessed(&fc.res.findings[1]) &&
        t3d_finding_assessed(&fc.res.findings[2]));
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r), T3D_OK);
  if (r) {
    const char *t = t3d_report_text(r, T3D_REPORT_TEXT);
    CHECK_HAS(t, "Appearance suggests pleural effusion. (model probability 0.910)");
    CHECK_LACKS(t, "suggests lung nodule");
    CHECK_LACKS(t, "Lung nodule (probability");
    CHECK_HAS(t, "Below threshold 0.50: ascites 0.120.");
    CHECK_HAS(t, "- Not assessed by the model (held-out AUROC below 0.80; review the images): lung nodule (AUROC 0.61).");
    CHECK_HAS(t, "2. 2 segmented lesion(s)");
    for (size_t i = 0; i < 3; i++)
      if (strcmp(t3d_report_finding_name(r, i), "lung nodule") == 0) CHECK_INT_EQ(t3d_report_finding_present(r, i), 0);
  }
  t3d_report_free(r);
  /* a series that fails the familiarity check: every finding not assessed, none stated */
  fc.res.familiar = -1, fc.res.familiarity = 0.5, fc.res.familiarity_threshold = 0.9;
  for (int i = 0; i < 3; i++) fc.res.findings[i].series_unfamiliar = true;
  CHECK(!t3d_finding_assessed(&fc.res.findings[0]) && !t3d_finding_assessed(&fc.res.findings[2]));
  r = NULL;
  CHECK_STATUS(t3d_report_create(fc.vol, &fc.res, &p, &r), T3D_OK);
  if (r) {
    const char *t = t3d_report_text(r, T3D_REPORT_TEXT);
    CHECK_LACKS(t, "Appearance suggests");
    CHECK_LACKS(t, "Below threshold");
    CHECK_LACKS(t, "No finding reached");
    CHECK_HAS(t, "- Not assessed by the model (the series is unlike every case it was trained on; review the images): "
                 "pleural effusion, lung nodule, ascites.");
    CHECK_HAS(t, "1. The model assessed no finding (see FINDINGS)");
    CHECK_LACKS(t, "1. No finding reached");
    CHECK_HAS(t, "2. 2 segmented lesion(s)");
  }
  t3d_report_free(r);
  t3d_tensor_free(fc.labels);
  t3d_volume_free(fc.vol);
}

/* A sphere of radius 30 mm on a 1 mm grid has ~11000 surface voxels: the diameter then comes
 * from extreme points along fixed directions (report.h), still within a voxel of 60 mm. */
static void test_big_lesion(void)
{
  t3d_volume *v = NULL;
  t3d_tensor *l = NULL;
  int64_t n = 70, shape[3] = {70, 70, 70};
  if (t3d_volume_new(&v, n, n, n) != T3D_OK || t3d_tensor_new(&l, T3D_U8, 3, shape) != T3D_OK) exit(1);
  uint8_t *lab = l->data;
  size_t count = 0;
  for (int64_t k = 0; k < n; k++)
    for (int64_t j = 0; j < n; j++)
      for (int64_t i = 0; i < n; i++) {
        double d2 = (double)((i - 35) * (i - 35) + (j - 35) * (j - 35) + (k - 35) * (k - 35));
        lab[(k * n + j) * n + i] = d2 <= 900.0;
        count += d2 <= 900.0;
      }
  static const char *const names[] = {"background", "lesion"};
  double vols[2] = {0, (double)count / 1000};
  t3d_analysis_result res;
  memset(&res, 0, sizeof res);
  res.labels = l;
  res.volumes_ml = vols;
  res.nclasses = 2;
  t3d_report_params p = test_params(names, 2);
  t3d_report *r = NULL;
  CHECK_STATUS(t3d_report_create(v, &res, &p, &r), T3D_OK);
  if (r) {
    CHECK_INT_EQ(t3d_report_lesion_count(r), 1);
    CHECK_NEAR(t3d_report_lesion_max_diameter_mm(r), 59.5, 0.5);
    CHECK_NEAR(t3d_report_lesion_volume_ml(r, 0), 4.0 / 3.0 * M_PI * 27000 / 1000, 1.0);
  }
  t3d_report_free(r);
  t3d_tensor_free(l);
  t3d_volume_free(v);
}

int main(void)
{
  test_big_lesion();
  test_sha256();
  test_content();
  test_neighbours();
  test_no_findings();
  test_not_assessed();
  return check_finish("test-report-text");
}
