/* Chest-abdomen phantom cases (core/model/phantom.h): determinism, HU per label with and without
 * contrast, coverage, the table, each finding's truth against what the volume and labels show,
 * manifest JSON, and the written series and
 * labels.nii.gz read back equal to the in-memory case. Small matrices: quick under sanitizers. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dicom/dicom.h"
#include "core/dicom/nifti.h"
#include "core/model/phantom.h"
#include "tests/check.h"

static t3d_phantom_case_params small_params(void)
{
  t3d_phantom_case_params p = t3d_phantom_case_default_params();
  p.matrix = 72, p.fov_mm = 440, p.slice_mm = 7, p.orientation = T3D_PHANTOM_AXIAL;
  p.coverage = T3D_PHANTOM_CHEST_ABDOMEN, p.contrast = 1; /* every finding can show */
  return p;
}

static t3d_phantom_case *make(const t3d_phantom_case_params *p, uint64_t seed)
{
  t3d_phantom_case *c = NULL;
  CHECK_STATUS(t3d_phantom_case_generate(p, seed, &c), T3D_OK);
  return c;
}

static void test_determinism(void)
{
  t3d_phantom_case_params p = small_params();
  t3d_phantom_case *a = make(&p, 11), *b = make(&p, 11), *c = make(&p, 12);
  if (!a || !b || !c)
    goto done;
  const t3d_volume *va = t3d_phantom_case_volume(a), *vb = t3d_phantom_case_volume(b);
  size_t n = (size_t)(va->nx * va->ny * va->nz);
  CHECK(memcmp(va->data, vb->data, n * sizeof(float)) == 0);
  CHECK(memcmp(t3d_phantom_case_labels(a), t3d_phantom_case_labels(b), n) == 0);
  CHECK(strcmp(t3d_phantom_case_report(a), t3d_phantom_case_report(b)) == 0);
  CHECK(strcmp(t3d_phantom_case_truth_json(a), t3d_phantom_case_truth_json(b)) == 0);
  CHECK(strcmp(va->meta.series_uid, vb->meta.series_uid) == 0);
  /* another seed is another case */
  CHECK(strcmp(va->meta.series_uid, t3d_phantom_case_volume(c)->meta.series_uid) != 0);
done:
  t3d_phantom_case_free(a);
  t3d_phantom_case_free(b);
  t3d_phantom_case_free(c);
}

static int cmp_float(const void *x, const void *y)
{
  float a = *(const float *)x, b = *(const float *)y;
  return (a > b) - (a < b);
}

/* Median HU of each label, over several seeds with drawn findings and noise. */
static double label_median(const t3d_volume *v, const uint8_t *lab, int l, float *buf)
{
  size_t n = (size_t)(v->nx * v->ny * v->nz), m = 0;
  for (size_t i = 0; i < n; i++)
    if (lab[i] == l)
      buf[m++] = v->data[i];
  if (m < 20)
    return NAN;
  qsort(buf, m, sizeof *buf, cmp_float);
  return buf[m / 2];
}

static void test_hu_per_label(void)
{
  /* lesions: an 8 mm nodule loses much of its contrast to the surrounding lung by partial volume
   * at 3 mm voxels, so its median is bounded loosely and its brightest voxel checked too */
  static const double lo[T3D_PHANTOM_NLABELS] = {-1024, -150, -920, 60, 85, 85, 80, 200, -500};
  static const double hi[T3D_PHANTOM_NLABELS] = {-950, 80, -760, 220, 140, 150, 220, 1200, 80};
  t3d_phantom_case_params p = small_params();
  p.matrix = 128, p.fov_mm = 400, p.slice_mm = 4, p.max_voxels = 128 * 128 * 40; /* a 160 mm slab */
  for (uint64_t seed = 21; seed < 24; seed++) {
    t3d_phantom_case *c = make(&p, seed);
    if (!c)
      continue;
    const t3d_volume *v = t3d_phantom_case_volume(c);
    const uint8_t *lab = t3d_phantom_case_labels(c);
    size_t n = (size_t)(v->nx * v->ny * v->nz);
    float *buf = malloc(n * sizeof(float));
    int integer = 1;
    for (size_t i = 0; i < n; i++)
      integer &= v->data[i] == roundf(v->data[i]) && v->data[i] >= -1024 && v->data[i] <= 3071;
    CHECK(integer);
    for (int l = 0; l < T3D_PHANTOM_NLABELS; l++) {
      size_t m = 0;
      for (size_t i = 0; i < n; i++)
        if (lab[i] == l)
          buf[m++] = v->data[i];
      if (m < 20) /* not in this slab, or too few voxels for a median */
        continue;
      qsort(buf, m, sizeof *buf, cmp_float);
      double med = buf[m / 2];
      if (l == 8 && !(buf[m - 1] > -100))
        fprintf(stderr, "seed %llu: %zu lesion voxels, brightest %g HU\n", (unsigned long long)seed, m, buf[m - 1]);
      if (l == 8)
        CHECK(buf[m - 1] > -100);
      if (med < lo[l] || med > hi[l])
        fprintf(stderr, "seed %llu label %d: median %g outside [%g, %g]\n", (unsigned long long)seed, l, med, lo[l],
                hi[l]);
      CHECK(med >= lo[l] && med <= hi[l]);
    }
    free(buf);
    t3d_phantom_case_free(c);
  }
}

/* ---- findings: the same seed with one finding forced, against all forced off ---- */

typedef struct {
  const t3d_volume *v0, *v1;
  const uint8_t *l0, *l1;
  double voxel_cm3;
} pair;

/* LPS x of voxel index i (patient right is x < 0) and y (posterior is y > 0). */
static void lps_of(const t3d_volume *v, size_t idx, double p[3])
{
  int64_t i = (int64_t)(idx % (size_t)v->nx), j = (int64_t)((idx / (size_t)v->nx) % (size_t)v->ny),
          k = (int64_t)(idx / (size_t)(v->nx * v->ny));
  t3d_volume_index_to_lps(v, (double)i, (double)j, (double)k, p);
}

/* Counts voxels (cm^3) going from label a (-1 any) to label b (-1 any) with new HU in [lo, hi]
 * and HU change of at least dmin (signed: >0 rise, <0 fall, 0 any); side -1 right, 1 left, 0 any;
 * ap -1 anterior, 1 posterior, 0 any. */
static double changed(const pair *q, int a, int b, double lo, double hi, double dmin, int side, int ap)
{
  size_t n = (size_t)(q->v0->nx * q->v0->ny * q->v0->nz), c = 0;
  for (size_t i = 0; i < n; i++) {
    if ((a >= 0 && q->l0[i] != a) || (b >= 0 && q->l1[i] != b))
      continue;
    double h0 = q->v0->data[i], h1 = q->v1->data[i], d = h1 - h0;
    if (h1 < lo || h1 > hi || (dmin > 0 && d < dmin) || (dmin < 0 && d > dmin))
      continue;
    if (side || ap) {
      double p[3];
      lps_of(q->v0, i, p);
      if ((side < 0 && p[0] > 0) || (side > 0 && p[0] < 0) || (ap < 0 && p[1] > 0) || (ap > 0 && p[1] < 0))
        continue;
    }
    c++;
  }
  return (double)c * q->voxel_cm3;
}

static size_t label_count(const uint8_t *l, size_t n, int id)
{
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += l[i] == id;
  return c;
}

static int side_of(const char *json, const char *finding)
{
  json_error_t err;
  json_t *t = json_loads(json, 0, &err);
  json_t *f = json_object_get(t, finding);
  const char *s = json_string_value(json_object_get(f, "side"));
  const char *lobe = json_string_value(json_object_get(f, "lobe"));
  int side = 0;
  if (!s)
    s = lobe;
  if (s)
    side = strncmp(s, "right", 5) == 0 ? -1 : strncmp(s, "left", 4) == 0 ? 1 : 2;
  json_decref(t);
  return side;
}

/* Without contrast the heart, liver, spleen and kidneys drop to unenhanced HU (blood no brighter
 * than muscle, liver above spleen); the same seed with contrast has them enhanced. */
static void test_unenhanced(void)
{
  t3d_phantom_case_params p = small_params();
  p.matrix = 128, p.fov_mm = 400, p.slice_mm = 4, p.noise_hu = 0;
  for (uint64_t seed = 21; seed < 24; seed++) {
    double med[2][T3D_PHANTOM_NLABELS];
    for (int enhanced = 0; enhanced < 2; enhanced++) {
      p.contrast = enhanced;
      t3d_phantom_case *c = make(&p, seed);
      if (!c)
        return;
      const t3d_volume *v = t3d_phantom_case_volume(c);
      float *buf = malloc((size_t)(v->nx * v->ny * v->nz) * sizeof(float));
      for (int l = 0; l < T3D_PHANTOM_NLABELS; l++)
        med[enhanced][l] = label_median(v, t3d_phantom_case_labels(c), l, buf);
      const char *acq = t3d_phantom_case_acquisition_json(c);
      CHECK(strstr(acq, enhanced ? "\"contrast\":true" : "\"contrast\":false") != NULL);
      CHECK(strstr(t3d_phantom_case_report(c), enhanced ? "contrast" : "without") != NULL);
      free(buf);
      t3d_phantom_case_free(c);
    }
    fprintf(stderr, "seed %llu unenhanced / enhanced medians: heart %g / %g, liver %g / %g, spleen %g / %g, "
                    "kidney %g / %g\n",
            (unsigned long long)seed, med[0][3], med[1][3], med[0][4], med[1][4], med[0][5], med[1][5], med[0][6],
            med[1][6]);
    CHECK(med[0][3] >= 25 && med[0][3] <= 60 && med[1][3] >= 100);
    CHECK(med[0][4] >= 50 && med[0][4] <= 70 && med[1][4] >= 95);
    CHECK(med[0][5] >= 38 && med[0][5] < med[0][4] && med[1][5] >= 95);
    CHECK(med[0][6] >= 20 && med[0][6] <= 45 && med[1][6] >= 100);
    CHECK(fabs(med[0][2] - med[1][2]) <= 15 && fabs(med[0][7] - med[1][7]) <= 15); /* lung and bone as they were */
  }
}

/* Coverage: a chest scan shows lungs and heart but no kidneys, an abdomen scan kidneys and liver
 * and little lung; the report speaks only of what was scanned. The table: label 0 with CT numbers
 * of a solid under the body with it, none without it. */
static void test_coverage_and_table(void)
{
  t3d_phantom_case_params p = small_params();
  p.noise_hu = 0;
  memset(p.findings, 0, sizeof p.findings);
  for (uint64_t seed = 31; seed < 33; seed++) {
    size_t lung[3] = {0}, kidney[3] = {0}, heart[3] = {0};
    for (int cov = 0; cov < 3; cov++) {
      p.coverage = cov;
      t3d_phantom_case *c = make(&p, seed);
      if (!c)
        return;
      const t3d_volume *v = t3d_phantom_case_volume(c);
      size_t n = (size_t)(v->nx * v->ny * v->nz);
      lung[cov] = label_count(t3d_phantom_case_labels(c), n, 2);
      kidney[cov] = label_count(t3d_phantom_case_labels(c), n, 6);
      heart[cov] = label_count(t3d_phantom_case_labels(c), n, 3);
      char want[64];
      snprintf(want, sizeof want, "\"coverage\":\"%s\"", t3d_phantom_coverage_name((t3d_phantom_coverage)cov));
      CHECK(strstr(t3d_phantom_case_acquisition_json(c), want) != NULL);
      const char *report = t3d_phantom_case_report(c);
      CHECK(strncmp(report, "TECHNIQUE: CT", 13) == 0);
      if (cov == T3D_PHANTOM_CHEST)
        CHECK(!strstr(report, "kidney") && !strstr(report, "ascites") && !strstr(report, "spleen"));
      if (cov == T3D_PHANTOM_ABDOMEN)
        CHECK(!strstr(report, "eart") && !strstr(report, "lymph"));
      t3d_phantom_case_free(c);
    }
    fprintf(stderr, "seed %llu lung / kidney / heart voxels, chest-abdomen %zu / %zu / %zu, chest %zu / %zu / %zu, "
                    "abdomen %zu / %zu / %zu\n",
            (unsigned long long)seed, lung[0], kidney[0], heart[0], lung[1], kidney[1], heart[1], lung[2], kidney[2],
            heart[2]);
    CHECK(kidney[0] > 0 && lung[0] > 0);
    CHECK(kidney[1] == 0 && lung[1] >= lung[0] * 9 / 10 && heart[1] > 0);
    CHECK(kidney[2] >= kidney[0] * 9 / 10 && lung[2] < lung[0] / 3);
  }
  p.coverage = T3D_PHANTOM_CHEST;
  for (int table = 0; table < 2; table++) {
    p.table = table;
    t3d_phantom_case *c = make(&p, 31);
    if (!c)
      return;
    const t3d_volume *v = t3d_phantom_case_volume(c);
    const uint8_t *lab = t3d_phantom_case_labels(c);
    size_t n = (size_t)(v->nx * v->ny * v->nz), solid = 0, below = 0;
    for (size_t i = 0; i < n; i++)
      if (lab[i] == 0 && v->data[i] > -300) {
        double q[3];
        lps_of(v, i, q);
        solid++;
        below += q[1] > 60; /* posterior of the back's middle */
      }
    fprintf(stderr, "table %d: %zu background voxels above -300 HU, %zu of them posterior\n", table, solid, below);
    CHECK(table ? solid > 200 && below == solid : solid == 0);
    CHECK(strstr(t3d_phantom_case_acquisition_json(c), table ? "\"table\":true" : "\"table\":false") != NULL);
    t3d_phantom_case_free(c);
  }
}

static void test_findings(void)
{
  size_t nf;
  const char *const *names = t3d_phantom_finding_names(&nf);
  CHECK_INT_EQ(nf, 11);
  t3d_phantom_case_params p = small_params();
  p.matrix = 96, p.slice_mm = 5, p.noise_hu = 0;
  memset(p.findings, 0, sizeof p.findings);
  const char *env = getenv("T3D_PHANTOM_TEST_SEED"); /* to try other seeds by hand */
  const uint64_t seed = env ? strtoull(env, NULL, 10) : 5;
  t3d_phantom_case *base = make(&p, seed);
  if (!base)
    return;
  for (size_t i = 0; i < nf; i++)
    CHECK(!t3d_phantom_case_has_finding(base, i));
  const t3d_volume *v0 = t3d_phantom_case_volume(base);
  size_t n = (size_t)(v0->nx * v0->ny * v0->nz);
  for (size_t f = 0; f < nf; f++) {
    t3d_phantom_case_params q = p;
    q.findings[f] = 1;
    t3d_phantom_case *c = make(&q, seed);
    if (!c)
      continue;
    pair pr = {v0, t3d_phantom_case_volume(c), t3d_phantom_case_labels(base), t3d_phantom_case_labels(c),
               v0->spacing[0] * v0->spacing[1] * v0->spacing[2] / 1000};
    for (size_t g = 0; g < nf; g++)
      if (t3d_phantom_case_has_finding(c, g) != (g == f)) {
        fprintf(stderr, "forcing %s: truth of %s is %d\n", names[f], names[g], t3d_phantom_case_has_finding(c, g));
        CHECK(0);
      }
    int side = side_of(t3d_phantom_case_truth_json(c), names[f]);
    double got = 0, want = 0, wrong = 0;
    switch (f) {
    case 0: /* nodule: lesion voxels that were lung, none elsewhere */
      got = changed(&pr, 2, 8, -1024, 3071, 0, side == 2 ? 0 : side, 0), want = 0.1;
      wrong = changed(&pr, -1, 8, -1024, 3071, 0, 0, 0) - changed(&pr, 2, 8, -1024, 3071, 0, 0, 0);
      break;
    case 1: /* effusion: dependent fluid where lung was, on the stated side */
      got = changed(&pr, 2, 1, -20, 45, 0, side == 2 ? -1 : side, 1), want = 1;
      if (side == 2)
        got = fmin(got, changed(&pr, 2, 1, -20, 45, 0, 1, 1));
      wrong = side == 2 ? 0 : changed(&pr, 2, 1, -20, 45, 0, -side, 0);
      break;
    case 2: /* pneumothorax: air where lung was, on the stated side */
      got = changed(&pr, 2, 1, -1024, -900, 0, side, 0), want = 1;
      wrong = changed(&pr, 2, 1, -1024, -900, 0, -side, 0);
      break;
    case 3: /* consolidation: lung becoming dense on the lobe's side */
      got = changed(&pr, 2, 2, -100, 200, 300, side, 0), want = 1;
      wrong = changed(&pr, 2, 2, -100, 200, 300, -side, 0);
      break;
    case 4: /* emphysema: lung losing attenuation */
      got = changed(&pr, 2, 2, -1024, -920, -30, 0, 0), want = 5;
      break;
    case 5: /* cardiomegaly */
      got = (double)label_count(pr.l1, n, 3) / (double)label_count(pr.l0, n, 3), want = 1.3;
      break;
    case 6: /* liver lesion: hypodense lesion voxels that were liver */
      got = changed(&pr, 4, 8, -1024, 3071, -15, 0, 0), want = 0.05;
      wrong = changed(&pr, -1, 8, -1024, 3071, 0, 0, 0) - changed(&pr, 4, 8, -1024, 3071, 0, 0, 0);
      break;
    case 7: /* renal cyst: fluid lesion on the stated side */
      got = changed(&pr, -1, 8, -1024, 40, 0, side, 0), want = 0.1;
      wrong = changed(&pr, -1, 8, -1024, 3071, 0, -side, 0);
      break;
    case 8: /* splenomegaly */
      got = (double)label_count(pr.l1, n, 5) / (double)label_count(pr.l0, n, 5), want = 1.5;
      break;
    case 9: /* ascites: new fluid in the body, not in the chest */
      got = changed(&pr, -1, 1, -15, 35, 0, 0, 0) - changed(&pr, 2, 1, -15, 35, 0, 0, 0), want = 5;
      break;
    case 10: /* lymphadenopathy: node tissue where fat, lung or vessel was */
      got = changed(&pr, -1, 1, -300, 200, 40, 0, 0) + changed(&pr, -1, 1, -300, 200, -40, 0, 0), want = 0.3;
      break;
    }
    if (!(got >= want) || wrong > 0.05)
      fprintf(stderr, "%s (side %d): got %g (want >= %g), wrong place %g cm3\n%s\n", names[f], side, got, want,
              wrong, t3d_phantom_case_truth_json(c));
    CHECK(got >= want);
    CHECK(wrong <= 0.05);
    t3d_phantom_case_free(c);
  }
  t3d_phantom_case_free(base);
}

static void test_manifest_json(void)
{
  t3d_phantom_case_params p = small_params();
  for (int f = 0; f < T3D_PHANTOM_NFINDINGS; f++)
    p.findings[f] = f % 2;
  t3d_phantom_case *c = make(&p, 3);
  char *line = NULL;
  if (!c)
    return;
  CHECK_STATUS(t3d_phantom_case_manifest_line(c, "case-00003", &line), T3D_OK);
  json_error_t err;
  json_t *j = line ? json_loads(line, 0, &err) : NULL;
  CHECK(j != NULL);
  if (j) {
    CHECK(strcmp(json_string_value(json_object_get(j, "case")), "case-00003") == 0);
    CHECK_INT_EQ(json_integer_value(json_object_get(j, "seed")), 3);
    CHECK(strcmp(json_string_value(json_object_get(j, "series")), "case-00003/dicom") == 0);
    CHECK(strcmp(json_string_value(json_object_get(j, "labels")), "case-00003/labels.nii.gz") == 0);
    const char *report = json_string_value(json_object_get(j, "report"));
    CHECK(report && strcmp(report, t3d_phantom_case_report(c)) == 0);
    CHECK(report && (strstr(report, "IMPRESSION:") || strstr(report, "Impression:")));
    CHECK(report && (strstr(report, "FINDINGS:") || strstr(report, "Findings:")));
    json_t *truth = json_object_get(j, "truth");
    size_t nf;
    const char *const *names = t3d_phantom_finding_names(&nf);
    CHECK_INT_EQ(json_object_size(truth), 11);
    for (size_t i = 0; i < nf; i++) {
      json_t *present = json_object_get(json_object_get(truth, names[i]), "present");
      CHECK(json_is_boolean(present));
      CHECK_INT_EQ(json_is_true(present), t3d_phantom_case_has_finding(c, i));
    }
    json_t *acq = json_object_get(j, "acquisition");
    CHECK_INT_EQ(json_array_size(json_object_get(acq, "matrix")), 3);
    CHECK_INT_EQ(json_array_size(json_object_get(acq, "spacing_mm")), 3);
    CHECK(json_is_string(json_object_get(acq, "orientation")));
    json_decref(j);
  }
  free(line);
  t3d_phantom_case_free(c);
}

/* Written series and labels read back equal to the case, for a few storages and orientations. */
static void test_written_case(void)
{
  static const struct {
    int orientation, storage, syntax;
  } cfg[] = {{T3D_PHANTOM_AXIAL, T3D_DICOM_STORE_S16, T3D_DICOM_SYNTAX_EXPLICIT_LE},
             {T3D_PHANTOM_SAGITTAL, T3D_DICOM_STORE_U12, T3D_DICOM_SYNTAX_RLE},
             {T3D_PHANTOM_OBLIQUE, T3D_DICOM_STORE_U16, T3D_DICOM_SYNTAX_JPEGLS_LOSSLESS}};
  char tmpl[] = "/tmp/t3d-phantom-XXXXXX";
  char *dir = mkdtemp(tmpl);
  CHECK(dir != NULL);
  if (!dir)
    return;
  for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
    t3d_phantom_case_params p = small_params();
    p.matrix = 48, p.slice_mm = 12;
    p.orientation = cfg[t].orientation, p.storage = cfg[t].storage, p.syntax = cfg[t].syntax;
    t3d_phantom_case *c = make(&p, 30 + t);
    if (!c)
      continue;
    char casedir[512], series[600], labels[600];
    snprintf(casedir, sizeof casedir, "%s/case-%zu", dir, t);
    snprintf(series, sizeof series, "%s/dicom", casedir);
    snprintf(labels, sizeof labels, "%s/labels.nii.gz", casedir);
    CHECK_STATUS(t3d_phantom_case_write(c, casedir), T3D_OK);
    const t3d_volume *v = t3d_phantom_case_volume(c);
    t3d_dicom_scan *scan = NULL;
    t3d_volume *back = NULL, *lab = NULL;
    CHECK_STATUS(t3d_dicom_scan_path(series, &scan), T3D_OK);
    if (scan && t3d_dicom_scan_series_count(scan) == 1)
      CHECK_STATUS(t3d_dicom_load_series(scan, 0, NULL, &back), T3D_OK);
    CHECK(back != NULL);
    if (back) {
      CHECK_INT_EQ(back->nx, v->nx);
      CHECK_INT_EQ(back->ny, v->ny);
      CHECK_INT_EQ(back->nz, v->nz);
      if (back->nx == v->nx && back->ny == v->ny && back->nz == v->nz) {
        size_t n = t3d_volume_nvoxels(v), diff = 0;
        for (size_t i = 0; i < n; i++)
          diff += back->data[i] != v->data[i];
        CHECK_INT_EQ(diff, 0);
      }
      double a0[4][4], a1[4][4];
      t3d_volume_affine(v, a0);
      t3d_volume_affine(back, a1);
      for (int r = 0; r < 3; r++)
        for (int k = 0; k < 4; k++)
          CHECK_NEAR(a1[r][k], a0[r][k], 1e-3);
    }
    CHECK_STATUS(t3d_nifti_read(labels, &lab, NULL), T3D_OK);
    if (lab && back) {
      double a1[4][4], a2[4][4];
      t3d_volume_affine(back, a1);
      t3d_volume_affine(lab, a2);
      for (int r = 0; r < 3; r++)
        for (int k = 0; k < 4; k++)
          CHECK_NEAR(a2[r][k], a1[r][k], 1e-3);
      CHECK_INT_EQ(t3d_volume_nvoxels(lab), t3d_volume_nvoxels(v));
      if (t3d_volume_nvoxels(lab) == t3d_volume_nvoxels(v)) {
        const uint8_t *l = t3d_phantom_case_labels(c);
        size_t diff = 0;
        for (size_t i = 0; i < t3d_volume_nvoxels(v); i++)
          diff += lab->data[i] != (float)l[i];
        CHECK_INT_EQ(diff, 0);
      }
    }
    t3d_volume_free(lab);
    t3d_volume_free(back);
    t3d_dicom_scan_free(scan);
    t3d_phantom_case_free(c);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", casedir);
    CHECK(system(cmd) == 0);
  }
  rmdir(dir);
}

int main(void)
{
  test_determinism();
  test_hu_per_label();
  test_unenhanced();
  test_coverage_and_table();
  test_findings();
  test_manifest_json();
  test_written_case();
  return check_finish("test-phantom-case");
}
