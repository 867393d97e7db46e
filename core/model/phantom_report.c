/* Free-text radiology reports for phantom cases (see phantom.h): FINDINGS and IMPRESSION in
 * varied wording (several phrasings per finding, negations, measurements, laterality, normal
 * statements), chosen by the seed. Not a report generator for real studies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/phantom_case_internal.h"
#include "core/model/phantom_internal.h"

typedef struct {
  char *s;
  size_t len, cap;
  int failed;
} text;

static void put(text *t, const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (t->failed || n < 0)
    return;
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = (t->cap + (size_t)n + 1) * 2;
    char *s = realloc(t->s, cap);
    if (!s) {
      t->failed = 1;
      return;
    }
    t->s = s, t->cap = cap;
  }
  memcpy(t->s + t->len, buf, (size_t)n + 1);
  t->len += (size_t)n;
}

/* One of n phrasings. */
static const char *one(uint64_t *r, int n, const char *const *v) { return v[(int)(t3d_phantom_uniform(r) * n) % n]; }
#define ONE(r, ...) one(r, (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)), \
                        (const char *const[]){__VA_ARGS__})

static const char *side_word(int side) { return side == 2 ? "bilateral" : side < 0 ? "right" : "left"; }

/* Size in mm or cm, as radiologists write both. */
static void size_text(uint64_t *r, double mm, char *buf, size_t n)
{
  if (t3d_phantom_uniform(r) < 0.7)
    snprintf(buf, n, "%.0f mm", mm);
  else
    snprintf(buf, n, "%.1f cm", mm / 10);
}

/* Sentences start with a capital ("left renal cyst." -> "Left renal cyst."); no space before a
 * line break or at the end. */
static void tidy(char *s)
{
  size_t w = 0;
  int start = 1;
  for (size_t i = 0; s[i]; i++) {
    char ch = s[i];
    if (ch == ' ' && (s[i + 1] == '\n' || s[i + 1] == '\0'))
      continue;
    if (start && ch >= 'a' && ch <= 'z')
      ch = (char)(ch - 'a' + 'A');
    if (ch != ' ' && !(ch >= '0' && ch <= '9'))
      start = ch == '.' || ch == '\n' || ch == ':';
    else if (ch >= '0' && ch <= '9')
      start = 0;
    s[w++] = ch;
  }
  s[w] = '\0';
}

char *pc_report(const pc_truth T[T3D_PHANTOM_NFINDINGS], uint64_t seed, int coverage, const char *technique)
{
  /* normal statements only about organs the scan shows: a chest scan shows the upper liver, not
   * the kidneys or the pelvis; an abdomen scan the lung bases, not the heart or mediastinum */
  const int chest = coverage != T3D_PHANTOM_ABDOMEN, abdomen = coverage != T3D_PHANTOM_CHEST;
  uint64_t rs = t3d_phantom_stream(seed, 0x5e9047ull), *r = &rs;
  text t = {0};
  char sz[32];
  /* impression items */
  char imp[T3D_PHANTOM_NFINDINGS][160];
  int nimp = 0;
  if (technique)
    put(&t, "TECHNIQUE: %s\n", technique);
  put(&t, "%s\n", ONE(r, "FINDINGS:", "FINDINGS:", "Findings:"));

  /* lungs and pleura */
  if (T[PC_NODULE].present) {
    size_text(r, T[PC_NODULE].size_mm, sz, sizeof sz);
    const char *lobe = pc_lobe_names[T[PC_NODULE].lobe];
    if (T[PC_NODULE].count > 1)
      put(&t, ONE(r, "Multiple pulmonary nodules, the largest measuring %s in the %s.",
                  "Several pulmonary nodules; the dominant one measures %s in the %s."),
          sz, lobe);
    else
      put(&t, ONE(r, "A %s solid nodule in the %s.", "There is a %s pulmonary nodule in the %s.",
                  "Solid pulmonary nodule measuring %s in the %s."),
          sz, lobe);
    put(&t, " ");
    snprintf(imp[nimp++], sizeof imp[0], ONE(r, "%s pulmonary nodule, %s.", "Pulmonary nodule (%s), %s."), sz, lobe);
  } else if (t3d_phantom_uniform(r) < 0.6) {
    put(&t, "%s ", ONE(r, "No pulmonary nodules.", "No suspicious pulmonary nodule.", "No lung nodule or mass."));
  }
  if (T[PC_CONSOLIDATION].present) {
    const char *lobe = pc_lobe_names[T[PC_CONSOLIDATION].lobe];
    put(&t, ONE(r, "Consolidation in the %s with air bronchograms. ", "Dense airspace consolidation of the %s. ",
                "There is lobar consolidation in the %s, likely infectious. "),
        lobe);
    snprintf(imp[nimp++], sizeof imp[0], ONE(r, "Consolidation in the %s.", "%s consolidation, likely pneumonia."),
             lobe);
  } else if (t3d_phantom_uniform(r) < 0.5) {
    put(&t, "%s ", ONE(r, "No consolidation.", "No focal consolidation.", "No airspace consolidation."));
  }
  if (T[PC_EMPHYSEMA].present) {
    const char *sev = T[PC_EMPHYSEMA].severity == 0 ? "Mild" : T[PC_EMPHYSEMA].severity == 1 ? "Moderate" : "Severe";
    put(&t, ONE(r, "%s centrilobular emphysema, upper lobe predominant. ", "%s emphysematous changes in both lungs. "),
        sev);
    snprintf(imp[nimp++], sizeof imp[0], "%s emphysema.", sev);
  } else if (t3d_phantom_uniform(r) < 0.4) {
    put(&t, "%s ", ONE(r, "No emphysema.", "No emphysematous change."));
  }
  if (T[PC_PNEUMOTHORAX].present) {
    const char *s = side_word(T[PC_PNEUMOTHORAX].side);
    put(&t, ONE(r, "There is a %s pneumothorax with partial collapse of the lung. ", "%s-sided pneumothorax. ",
                "Anterior %s pneumothorax. "),
        s);
    snprintf(imp[nimp++], sizeof imp[0], ONE(r, "%s pneumothorax.", "Pneumothorax on the %s."), s);
  } else if (t3d_phantom_uniform(r) < 0.6) {
    put(&t, "%s ", ONE(r, "No pneumothorax.", "There is no pneumothorax."));
  }
  if (T[PC_EFFUSION].present) {
    const char *s = side_word(T[PC_EFFUSION].side);
    if (T[PC_EFFUSION].side == 2)
      put(&t, "%s ", ONE(r, "Bilateral pleural effusions.", "Small bilateral dependent pleural effusions."));
    else
      put(&t, ONE(r, "%s pleural effusion. ", "Moderate %s pleural effusion layering dependently. ",
                  "There is a %s pleural effusion. "),
          s);
    snprintf(imp[nimp++], sizeof imp[0], ONE(r, "%s pleural effusion.", "Pleural effusion, %s."), s);
  } else if (t3d_phantom_uniform(r) < 0.7) {
    put(&t, "%s ", ONE(r, "No pleural effusion.", "No pleural effusions.", "The pleural spaces are clear."));
  }
  put(&t, "\n");

  /* mediastinum and heart */
  if (T[PC_CARDIOMEGALY].present) {
    put(&t, ONE(r, "The heart is enlarged (cardiothoracic ratio %.2f). ", "Cardiomegaly, cardiothoracic ratio %.2f. "),
        T[PC_CARDIOMEGALY].value);
    snprintf(imp[nimp++], sizeof imp[0], "%s", ONE(r, "Cardiomegaly.", "Enlarged heart."));
  } else if (chest) {
    put(&t, "%s ", ONE(r, "Heart size is normal.", "Normal heart size.", "The heart is not enlarged."));
  }
  if (T[PC_LYMPH].present) {
    size_text(r, T[PC_LYMPH].size_mm, sz, sizeof sz);
    put(&t, ONE(r, "Enlarged mediastinal lymph node measuring %s in short axis. ",
                "Mediastinal lymphadenopathy, the largest node %s in short axis. "),
        sz);
    snprintf(imp[nimp++], sizeof imp[0], "%s",
             ONE(r, "Mediastinal lymphadenopathy.", "Enlarged mediastinal lymph nodes."));
  } else if (chest && t3d_phantom_uniform(r) < 0.6) {
    put(&t, "%s ", ONE(r, "No lymphadenopathy.", "No enlarged mediastinal or hilar lymph nodes.",
                       "No mediastinal adenopathy."));
  }
  put(&t, "\n");

  /* abdomen */
  if (T[PC_LIVER_LESION].present) {
    size_text(r, T[PC_LIVER_LESION].size_mm, sz, sizeof sz);
    if (T[PC_LIVER_LESION].count > 1)
      put(&t, ONE(r, "%d hypodense liver lesions, the largest %s. ", "Multiple hepatic lesions (%d), up to %s. "),
          T[PC_LIVER_LESION].count, sz);
    else
      put(&t, ONE(r, "A %s hypodense lesion in the liver. ", "Single hepatic lesion measuring %s. "), sz);
    snprintf(imp[nimp++], sizeof imp[0], "%s",
             T[PC_LIVER_LESION].count > 1 ? "Multiple liver lesions." : "Liver lesion.");
  } else if (t3d_phantom_uniform(r) < 0.6) {
    put(&t, "%s ", ONE(r, "The liver is unremarkable.", "No focal liver lesion.", "Normal liver."));
  }
  if (T[PC_SPLENOMEGALY].present) {
    put(&t, ONE(r, "The spleen is enlarged, measuring %.0f mm. ", "Splenomegaly (%.0f mm craniocaudal). "),
        T[PC_SPLENOMEGALY].value);
    snprintf(imp[nimp++], sizeof imp[0], "%s", ONE(r, "Splenomegaly.", "Enlarged spleen."));
  } else if (abdomen && t3d_phantom_uniform(r) < 0.5) {
    put(&t, "%s ", ONE(r, "Normal spleen size.", "The spleen is not enlarged."));
  }
  if (T[PC_RENAL_CYST].present) {
    size_text(r, T[PC_RENAL_CYST].size_mm, sz, sizeof sz);
    const char *s = side_word(T[PC_RENAL_CYST].side);
    put(&t, ONE(r, "Simple cyst in the %s kidney measuring %s. ", "%s renal cyst, %s. "), s, sz);
    snprintf(imp[nimp++], sizeof imp[0], ONE(r, "%s renal cyst.", "Simple cyst of the %s kidney."), s);
  } else if (abdomen && t3d_phantom_uniform(r) < 0.5) {
    put(&t, "%s ", ONE(r, "The kidneys are unremarkable.", "No renal cyst.", "Normal kidneys."));
  }
  if (T[PC_ASCITES].present) {
    const char *a = T[PC_ASCITES].severity == 0 ? "small" : T[PC_ASCITES].severity == 1 ? "moderate" : "large";
    put(&t, ONE(r, "There is a %s amount of ascites. ", "%s volume ascites around the liver and bowel. "), a);
    snprintf(imp[nimp++], sizeof imp[0], "%s", ONE(r, "Ascites.", "Free fluid in the abdomen (ascites)."));
  } else if (abdomen && t3d_phantom_uniform(r) < 0.5) {
    put(&t, "%s ", ONE(r, "No ascites.", "No free fluid."));
  }
  put(&t, "\n%s\n", ONE(r, "IMPRESSION:", "IMPRESSION:", "Impression:"));
  if (nimp == 0) {
    static const char *const normal[3][2] = {
      {"Normal CT of the chest and abdomen.", "No significant abnormality in the chest or abdomen."},
      {"Normal CT of the chest.", "No significant abnormality in the chest."},
      {"Normal CT of the abdomen.", "No significant abnormality in the abdomen."}};
    int cov = coverage >= 0 && coverage < 3 ? coverage : 0;
    put(&t, "%s", ONE(r, "No acute abnormality.", normal[cov][0], normal[cov][1]));
  }
  for (int i = 0; i < nimp; i++) {
    if (nimp > 1)
      put(&t, "%d. ", i + 1);
    put(&t, "%s%s", imp[i], i + 1 < nimp ? "\n" : "");
  }
  if (t.failed) {
    free(t.s);
    return NULL;
  }
  tidy(t.s);
  return t.s;
}
