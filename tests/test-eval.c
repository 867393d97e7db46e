/* Unit tests of core/model/eval: AUROC (ties half) against hand-computed values and a brute-force
 * pair count, recall@k with ties, Dice counts, and the manifest / labels.json readers on good and
 * corrupt input (errors name the line and the case). Not the CLI (tests/test-eval-cli.sh). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/eval.h"
#include "tests/check.h"

static double auroc_of(const double *s, const bool *p, size_t n)
{
  double a = -1;
  CHECK_STATUS(t3d_eval_auroc(s, p, n, &a), T3D_OK);
  return a;
}

/* O(n^2) definition: over all positive-negative pairs, 1 when the positive scores higher, 1/2 on a tie. */
static double auroc_pairs(const double *s, const bool *p, size_t n)
{
  double u = 0, pairs = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      if (p[i] && !p[j]) {
        pairs++;
        u += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
      }
  return u / pairs;
}

static void test_auroc(void)
{
  /* pos 0.35 beats 0.1, loses to 0.4; pos 0.8 beats both: 3 of 4 pairs */
  double s1[] = {0.1, 0.4, 0.35, 0.8};
  bool p1[] = {false, false, true, true};
  CHECK_NEAR(auroc_of(s1, p1, 4), 0.75, 1e-15);
  /* one tie between a positive and a negative: (1 + 0.5 + 2) / 4 */
  double s2[] = {0.2, 0.5, 0.5, 0.9};
  bool p2[] = {false, true, false, true};
  CHECK_NEAR(auroc_of(s2, p2, 4), 0.875, 1e-15);
  /* all tied: chance */
  double s3[] = {0.5, 0.5, 0.5, 0.5, 0.5};
  bool p3[] = {true, false, true, false, false};
  CHECK_NEAR(auroc_of(s3, p3, 5), 0.5, 1e-15);
  /* perfectly wrong, perfectly right */
  double s4[] = {0.9, 0.8, 0.1, 0.2};
  bool p4[] = {false, false, true, true};
  CHECK_NEAR(auroc_of(s4, p4, 4), 0.0, 1e-15);
  bool p5[] = {true, true, false, false};
  CHECK_NEAR(auroc_of(s4, p5, 4), 1.0, 1e-15);
  /* many ties, random order: equals the pair definition */
  enum { N = 301 };
  double s[N];
  bool p[N];
  uint32_t x = 12345;
  for (int i = 0; i < N; i++) {
    x = x * 1664525u + 1013904223u;
    s[i] = (double)((x >> 8) % 7) / 7.0;
    p[i] = ((x >> 20) % 3) == 0 ? true : (x >> 27) % 5 < (uint32_t)(s[i] * 5);
  }
  CHECK_NEAR(auroc_of(s, p, N), auroc_pairs(s, p, N), 1e-12);
  /* undefined without positives or negatives, NaN refused */
  double a = 0;
  bool none[] = {false, false, false, false};
  CHECK_STATUS(t3d_eval_auroc(s1, none, 4, &a), T3D_ERR_INVALID_ARG);
  CHECK(isnan(a));
  bool all[] = {true, true, true, true};
  CHECK_STATUS(t3d_eval_auroc(s1, all, 4, &a), T3D_ERR_INVALID_ARG);
  double sn[] = {0.1, NAN, 0.3, 0.4};
  CHECK_STATUS(t3d_eval_auroc(sn, p1, 4, &a), T3D_ERR_INVALID_ARG);
}

static double recall(const float *sim, size_t n, bool col, size_t k)
{
  double r = -1;
  CHECK_STATUS(t3d_eval_recall_at_k(sim, n, col, k, &r), T3D_OK);
  return r;
}

static void test_recall(void)
{
  /* rows are queries: q0 first; q1 beaten by one; q2 tied with two others (expected 1/3 at k=1) */
  const float sim[9] = {0.9f, 0.1f, 0.2f, /**/ 0.8f, 0.5f, 0.1f, /**/ 0.3f, 0.3f, 0.3f};
  CHECK_NEAR(recall(sim, 3, false, 1), (1 + 0 + 1.0 / 3) / 3, 1e-12);
  CHECK_NEAR(recall(sim, 3, false, 2), (1 + 1 + 2.0 / 3) / 3, 1e-12);
  CHECK_NEAR(recall(sim, 3, false, 3), 1.0, 1e-12);
  CHECK_NEAR(recall(sim, 3, false, 10), 1.0, 1e-12);
  /* columns are queries: every diagonal entry is its column's maximum */
  CHECK_NEAR(recall(sim, 3, true, 1), 1.0, 1e-12);
  /* a reversed ranking: the correct one last of 4 */
  const float rev[16] = {0, 1, 2, 3, /**/ 3, 0, 2, 1, /**/ 3, 2, 0, 1, /**/ 3, 2, 1, 0};
  CHECK_NEAR(recall(rev, 4, false, 1), 0.0, 1e-12);
  CHECK_NEAR(recall(rev, 4, false, 3), 0.0, 1e-12);
  CHECK_NEAR(recall(rev, 4, false, 4), 1.0, 1e-12);
  double r;
  CHECK_STATUS(t3d_eval_recall_at_k(sim, 3, false, 0, &r), T3D_ERR_INVALID_ARG);
  const float bad[4] = {1, NAN, 0, 1};
  CHECK_STATUS(t3d_eval_recall_at_k(bad, 2, false, 1, &r), T3D_ERR_INVALID_ARG);
}

static void test_dice(void)
{
  const uint8_t truth[] = {0, 1, 1, 2, 2, 2, 0, 0, 5};
  const uint8_t pred[] = {0, 1, 2, 2, 2, 0, 0, 3, 7};
  const uint8_t tid[] = {1, 2, 3, 5, 6}, pid[] = {1, 2, 3, 7, 8};
  t3d_eval_overlap ov[5];
  CHECK_STATUS(t3d_eval_overlap_count(truth, pred, 9, tid, pid, 5, ov), T3D_OK);
  CHECK_INT_EQ(ov[0].truth, 2);
  CHECK_INT_EQ(ov[0].pred, 1);
  CHECK_INT_EQ(ov[0].both, 1);
  CHECK_NEAR(t3d_eval_dice(ov[0]), 2.0 / 3, 1e-15); /* 2*1 / (2+1) */
  CHECK_NEAR(t3d_eval_dice(ov[1]), 4.0 / 6, 1e-15); /* 2*2 / (3+3) */
  CHECK_NEAR(t3d_eval_dice(ov[2]), 0.0, 1e-15);     /* predicted only */
  CHECK_NEAR(t3d_eval_dice(ov[3]), 1.0, 1e-15);     /* truth 5 <-> pred 7: different ids, one voxel */
  CHECK(isnan(t3d_eval_dice(ov[4])));               /* absent from both */
  const uint8_t twice_t[] = {1, 1}, twice_p[] = {1, 2};
  CHECK_STATUS(t3d_eval_overlap_count(truth, pred, 9, twice_t, twice_p, 2, ov), T3D_ERR_INVALID_ARG);
}

#define GOOD_LINE(name)                                                                                       \
  "{\"case\":\"" name "\",\"seed\":7,\"series\":\"" name "/dicom\",\"labels\":\"" name "/labels.nii.gz\","    \
  "\"report\":\"FINDINGS: Small right pleural effusion.\\nIMPRESSION: Effusion.\","                           \
  "\"truth\":{\"pleural effusion\":{\"present\":true,\"side\":\"right\"},\"pneumothorax\":{\"present\":false}}," \
  "\"acquisition\":{\"matrix\":[64,64,24]}}"

static t3d_status parse(const char *text, t3d_eval_manifest **m)
{
  return t3d_eval_manifest_parse(text, strlen(text), "manifest.jsonl", m);
}

/* The parse fails with T3D_ERR_FORMAT and a message holding each of the given fragments. */
static void expect_bad(const char *text, const char *frag1, const char *frag2)
{
  t3d_eval_manifest *m = NULL;
  CHECK_STATUS(parse(text, &m), T3D_ERR_FORMAT);
  CHECK(m == NULL);
  const char *d = t3d_error_detail();
  if (frag1 && !strstr(d, frag1)) {
    check_failures++;
    fprintf(stderr, "FAIL: message \"%s\" lacks \"%s\"\n", d, frag1);
  }
  if (frag2 && !strstr(d, frag2)) {
    check_failures++;
    fprintf(stderr, "FAIL: message \"%s\" lacks \"%s\"\n", d, frag2);
  }
  t3d_eval_manifest_free(m);
}

static void test_manifest(void)
{
  t3d_eval_manifest *m = NULL;
  CHECK_STATUS(parse(GOOD_LINE("case-00000") "\n\n  \r\n" GOOD_LINE("case-00001"), &m), T3D_OK);
  CHECK_INT_EQ(t3d_eval_manifest_count(m), 2);
  const t3d_eval_case *c = t3d_eval_manifest_case(m, 1);
  CHECK(c && strcmp(c->name, "case-00001") == 0);
  CHECK(c && strcmp(c->series, "case-00001/dicom") == 0);
  CHECK(c && strcmp(c->labels, "case-00001/labels.nii.gz") == 0);
  CHECK(c && strstr(c->report, "\nIMPRESSION") != NULL);
  CHECK_INT_EQ(c ? c->line : 0, 4);
  CHECK_INT_EQ(c ? c->ntruth : 0, 2);
  bool present = false;
  CHECK(t3d_eval_case_truth(c, "pleural effusion", &present) && present);
  CHECK(t3d_eval_case_truth(c, "pneumothorax", &present) && !present);
  CHECK(!t3d_eval_case_truth(c, "ascites", &present));
  CHECK(t3d_eval_manifest_case(m, 2) == NULL);
  t3d_eval_manifest_free(m);
  m = NULL;
  /* no labels member: accepted, labels NULL */
  CHECK_STATUS(parse("{\"case\":\"a\",\"series\":\"a\",\"report\":\"\",\"truth\":{}}", &m), T3D_OK);
  CHECK(m && t3d_eval_manifest_case(m, 0)->labels == NULL);
  t3d_eval_manifest_free(m);

  expect_bad("", "no cases", NULL);
  expect_bad("\n \n", "no cases", NULL);
  expect_bad(GOOD_LINE("a") "\n{\"case\":\"b\",", "line 2", "malformed JSON");
  expect_bad("[1,2]", "line 1", "not a JSON object");
  expect_bad("{\"series\":\"a\",\"report\":\"\",\"truth\":{}}", "line 1", "\"case\"");
  expect_bad("{\"case\":\"c7\",\"report\":\"\",\"truth\":{}}", "case c7", "\"series\"");
  expect_bad("{\"case\":\"c7\",\"series\":\"x\",\"truth\":{}}", "case c7", "\"report\"");
  expect_bad("{\"case\":\"c7\",\"series\":\"x\",\"report\":\"\"}", "case c7", "\"truth\"");
  expect_bad("{\"case\":\"c7\",\"series\":3,\"report\":\"\",\"truth\":{}}", "case c7", "not a string");
  expect_bad("{\"case\":\"c7\",\"series\":\"/etc\",\"report\":\"\",\"truth\":{}}", "case c7", "relative path");
  expect_bad("{\"case\":\"c7\",\"series\":\"a/../../b\",\"report\":\"\",\"truth\":{}}", "case c7", "relative path");
  expect_bad("{\"case\":\"c7\",\"series\":\"a\",\"labels\":\"..\",\"report\":\"\",\"truth\":{}}", "case c7",
             "\"labels\"");
  expect_bad("{\"case\":\"c7\",\"series\":\"a\",\"report\":\"\",\"truth\":{\"ascites\":{\"present\":1}}}", "case c7",
             "ascites");
  expect_bad("{\"case\":\"c7\",\"series\":\"a\",\"report\":\"\",\"truth\":{\"ascites\":true}}", "case c7", "present");
  expect_bad("{\"case\":\"c7\",\"case\":\"c8\",\"series\":\"a\",\"report\":\"\",\"truth\":{}}", "line 1", "duplicate");
  expect_bad(GOOD_LINE("a") "\n" GOOD_LINE("a"), "line 2", "already given on line 1");
  expect_bad("{\"case\":\"\",\"series\":\"a\",\"report\":\"\",\"truth\":{}}", "empty", NULL);
  /* bytes that are not UTF-8, a NUL inside a line */
  expect_bad("{\"case\":\"\xff\xfe\",\"series\":\"a\",\"report\":\"\",\"truth\":{}}", "line 1", NULL);
  static const char nul[] = "{\"case\":\"a\0b\",\"series\":\"a\",\"report\":\"\",\"truth\":{}}";
  CHECK_STATUS(t3d_eval_manifest_parse(nul, sizeof nul - 1, "m", &m), T3D_ERR_FORMAT);
  CHECK(m == NULL);

  CHECK_STATUS(t3d_eval_manifest_load("/nonexistent/manifest.jsonl", &m), T3D_ERR_IO);
  CHECK(strstr(t3d_error_detail(), "/nonexistent/manifest.jsonl") != NULL);
}

static void test_label_names(void)
{
  char **names = NULL;
  size_t n = 0;
  const char *good = "{\"classes\": [\"background\", \"body\", \"lung\"]}";
  CHECK_STATUS(t3d_eval_label_names_parse(good, strlen(good), "labels.json", &names, &n), T3D_OK);
  CHECK_INT_EQ(n, 3);
  CHECK(n == 3 && strcmp(names[2], "lung") == 0);
  t3d_eval_free_names(names, n);
  const char *bad[] = {"{\"classes\": []}", "{\"classes\": [\"a\", 2]}", "{\"classes\": [\"a\", \"a\"]}",
                       "{\"class\": [\"a\"]}", "[\"a\"]", "{\"classes\": [\"a\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    names = NULL, n = 0;
    CHECK_STATUS(t3d_eval_label_names_parse(bad[i], strlen(bad[i]), "labels.json", &names, &n), T3D_ERR_FORMAT);
    CHECK(names == NULL && n == 0);
  }
}

int main(void)
{
  test_auroc();
  test_recall();
  test_dice();
  test_manifest();
  test_label_names();
  return check_finish("test-eval");
}
