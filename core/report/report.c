/* Draft report content: findings over the threshold, phrasing from agreeing neighbours, organ
 * volumes, lesion count and diameter from the label volume, rendered as text and Markdown; the
 * source-instance list and temp-file writing for the DICOM exports. The DICOM encoding itself
 * is in report_shim.cc. Not a template engine: one fixed layout. */
#include "config.h"

#include "core/report/report.h"

#include <ctype.h>
#include <errno.h>
#include <libintl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dicom/dicomwrite.h"
#include "core/report/report_internal.h"

#define _(s) dgettext(GETTEXT_PACKAGE, s)

t3d_report_params t3d_report_default_params(void)
{
  t3d_report_params p;
  memset(&p, 0, sizeof p);
  p.finding_threshold = T3D_REPORT_FINDING_THRESHOLD;
  p.neighbour_min_similarity = T3D_REPORT_NEIGHBOUR_MIN_SIMILARITY;
  p.neighbour_min_agreement = T3D_REPORT_NEIGHBOUR_MIN_AGREEMENT;
  p.min_lesion_mm3 = T3D_REPORT_MIN_LESION_MM3;
  p.min_organ_ml = T3D_REPORT_MIN_ORGAN_ML;
  return p;
}

t3d_report_dicom_params t3d_report_dicom_default_params(void)
{
  t3d_report_dicom_params p = {NULL, 900};
  return p;
}

const char *t3d_report_fmt(char *buf, size_t size, int decimals, double v)
{
  snprintf(buf, size, "%.*f", decimals, v);
  for (char *c = buf; *c; c++)
    if (*c == ',') *c = '.';
  return buf;
}

/* ---- a growing string ---- */

typedef struct {
  char *s;
  size_t len, cap;
  int failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(strbuf *b, const char *fmt, ...)
{
  va_list ap;
  if (b->failed) return;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->failed = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static char *sb_take(strbuf *b)
{
  if (b->failed) {
    free(b->s);
    return NULL;
  }
  if (!b->s) return strdup("");
  return b->s;
}

static char *dupstr(const char *s) { return strdup(s ? s : ""); }

/* ---- lesions: 6-connected components and their voxel-centre Feret diameters ---- */

/* Largest distance between two of pts[n][3]: exact when n <= 4096, else over the extreme
 * points along 1024 Fibonacci-sphere directions (see the header). */
static double feret_diameter(const double (*pts)[3], size_t n)
{
  double best = 0;
  if (n <= 4096) {
    for (size_t a = 0; a < n; a++)
      for (size_t b = a + 1; b < n; b++) {
        double dx = pts[a][0] - pts[b][0], dy = pts[a][1] - pts[b][1], dz = pts[a][2] - pts[b][2];
        double d2 = dx * dx + dy * dy + dz * dz;
        if (d2 > best) best = d2;
      }
    return sqrt(best);
  }
  enum { NDIR = 1024 };
  size_t cand[2 * NDIR];
  for (int d = 0; d < NDIR; d++) {
    double z = 1.0 - (2.0 * d + 1.0) / NDIR, r = sqrt(1.0 - z * z), phi = d * 2.399963229728653;
    double u[3] = {r * cos(phi), r * sin(phi), z}, lo = INFINITY, hi = -INFINITY;
    size_t ilo = 0, ihi = 0;
    for (size_t a = 0; a < n; a++) {
      double t = pts[a][0] * u[0] + pts[a][1] * u[1] + pts[a][2] * u[2];
      if (t < lo) lo = t, ilo = a;
      if (t > hi) hi = t, ihi = a;
    }
    cand[2 * d] = ilo;
    cand[2 * d + 1] = ihi;
  }
  for (size_t a = 0; a < 2 * NDIR; a++)
    for (size_t b = a + 1; b < 2 * NDIR; b++) {
      const double *p = pts[cand[a]], *q = pts[cand[b]];
      double d2 = (p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) + (p[2] - q[2]) * (p[2] - q[2]);
      if (d2 > best) best = d2;
    }
  return sqrt(best);
}

static int cmp_desc(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

static t3d_status measure_lesions(t3d_report *r)
{
  const t3d_volume *g = &r->grid;
  const int64_t nx = g->nx, ny = g->ny, nz = g->nz;
  const size_t nvox = (size_t)(nx * ny * nz);
  const double voxel_mm3 = g->spacing[0] * g->spacing[1] * g->spacing[2];
  const uint8_t cls = (uint8_t)r->lesion_class;
  uint8_t *seen = NULL;
  size_t *queue = NULL, cap_ml = 0;
  double(*surf)[3] = NULL;
  t3d_status s = T3D_OK;

  size_t nles = 0; /* queue and surface points are sized by the lesion voxels, not the grid */
  for (size_t v = 0; v < nvox; v++) nles += r->labels[v] == cls;
  if (nles == 0) return T3D_OK;
  seen = calloc(nvox, 1);
  queue = malloc(nles * sizeof *queue);
  surf = malloc(nles * sizeof *surf);
  if (!seen || !queue || !surf) {
    s = t3d_error(T3D_ERR_NOMEM, "out of memory measuring lesions on a %lldx%lldx%lld grid", (long long)nx,
                  (long long)ny, (long long)nz);
    goto cleanup;
  }
  for (size_t start = 0; start < nvox; start++) {
    if (r->labels[start] != cls || seen[start]) continue;
    size_t head = 0, tail = 0, nsurf = 0;
    queue[tail++] = start;
    seen[start] = 1;
    while (head < tail) {
      size_t v = queue[head++];
      int64_t i = (int64_t)(v % (size_t)nx), j = (int64_t)(v / (size_t)nx % (size_t)ny),
              k = (int64_t)(v / (size_t)(nx * ny));
      const int64_t d[6][3] = {{-1, 0, 0}, {1, 0, 0}, {0, -1, 0}, {0, 1, 0}, {0, 0, -1}, {0, 0, 1}};
      int surface = 0;
      for (int e = 0; e < 6; e++) {
        int64_t a = i + d[e][0], b = j + d[e][1], c = k + d[e][2];
        if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) {
          surface = 1;
          continue;
        }
        size_t w = (size_t)((c * ny + b) * nx + a);
        if (r->labels[w] != cls) {
          surface = 1;
          continue;
        }
        if (!seen[w]) {
          seen[w] = 1;
          queue[tail++] = w;
        }
      }
      if (surface) t3d_volume_index_to_lps(g, (double)i, (double)j, (double)k, surf[nsurf++]);
    }
    double mm3 = (double)tail * voxel_mm3;
    if (mm3 < r->min_lesion_mm3) continue;
    if (r->nlesions == cap_ml) {
      cap_ml = cap_ml ? 2 * cap_ml : 16;
      double *ml = realloc(r->lesion_ml, cap_ml * sizeof *ml);
      if (!ml) {
        s = t3d_error(T3D_ERR_NOMEM, "out of memory listing lesions");
        goto cleanup;
      }
      r->lesion_ml = ml;
    }
    r->lesion_ml[r->nlesions++] = mm3 / 1000.0;
    double diam = feret_diameter((const double(*)[3])surf, nsurf);
    if (diam > r->lesion_max_diameter_mm) r->lesion_max_diameter_mm = diam;
  }
  if (r->nlesions) qsort(r->lesion_ml, r->nlesions, sizeof *r->lesion_ml, cmp_desc);
cleanup:
  free(seen);
  free(queue);
  free(surf);
  return s;
}

/* ---- phrasing from neighbours ---- */

static int has_ci(const char *hay, size_t len, const char *needle)
{
  size_t n = strlen(needle);
  if (n == 0 || n > len) return 0;
  for (size_t i = 0; i + n <= len; i++) {
    size_t k = 0;
    while (k < n && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k])) k++;
    if (k == n) return 1;
  }
  return 0;
}

static int lists_finding(const t3d_report_neighbour *nb, const char *name)
{
  for (size_t i = 0; i < nb->nfindings; i++)
    if (nb->findings[i] && strcasecmp(nb->findings[i], name) == 0) return 1;
  return 0;
}

/* The first usable sentence of text naming `name` (see the header), as a new string, or NULL. */
static char *pick_sentence(const char *text, const char *name)
{
  static const char *const negations[] = {" no ", " not ", "without", "negative", "absent", "free of", "resolved"};
  const char *p = text;
  while (p && *p) {
    while (*p && (isspace((unsigned char)*p) || *p == '-' || *p == '*')) p++;
    const char *e = p;
    while (*e && !strchr(".!?\n\r", *e)) e++;
    size_t len = (size_t)(e - p) + (*e && strchr(".!?", *e) ? 1 : 0);
    int ok = len >= 8 && len <= 300 && has_ci(p, len, name);
    if (ok) {
      char padded[310]; /* a leading space so " no " also matches a sentence that starts with it */
      snprintf(padded, sizeof padded, " %.*s", (int)len, p);
      for (size_t i = 0; i < sizeof negations / sizeof negations[0]; i++)
        if (has_ci(padded, strlen(padded), negations[i])) ok = 0;
    }
    if (ok) {
      char *out = malloc(len + 2);
      if (!out) return NULL;
      memcpy(out, p, len);
      out[len] = '\0';
      if (!strchr(".!?", out[len - 1])) strcat(out, ".");
      return out;
    }
    p = *e ? e + 1 : e;
  }
  return NULL;
}

/* Sets f->sentence and f->phrased_from per the rule in the header. */
static t3d_status phrase_finding(t3d_report_finding *f, const t3d_report_params *p)
{
  size_t close = 0, agree = 0;
  for (size_t n = 0; n < p->nneighbours; n++) {
    if (!(p->neighbours[n].similarity >= p->neighbour_min_similarity)) continue;
    close++;
    agree += lists_finding(&p->neighbours[n], f->name);
  }
  f->phrased_from = -1;
  if (agree > 0 && (double)agree >= p->neighbour_min_agreement * (double)close) {
    int best = -1;
    char *best_sentence = NULL;
    for (size_t n = 0; n < p->nneighbours; n++) {
      const t3d_report_neighbour *nb = &p->neighbours[n];
      if (!(nb->similarity >= p->neighbour_min_similarity) || !lists_finding(nb, f->name) || !nb->text) continue;
      if (best >= 0 && !(nb->similarity > p->neighbours[best].similarity)) continue;
      char *s = pick_sentence(nb->text, f->name);
      if (!s) continue;
      free(best_sentence);
      best_sentence = s;
      best = (int)n;
    }
    if (best >= 0) {
      f->sentence = best_sentence;
      f->phrased_from = best;
      return T3D_OK;
    }
  }
  strbuf b = {0};
  sb_printf(&b, _("Appearance suggests %s."), f->name);
  f->sentence = sb_take(&b);
  return f->sentence ? T3D_OK : t3d_error(T3D_ERR_NOMEM, "out of memory phrasing a finding");
}

/* ---- rendering ---- */

static int by_probability(const void *a, const void *b)
{
  const t3d_report_finding *x = *(t3d_report_finding *const *)a, *y = *(t3d_report_finding *const *)b;
  if (x->probability != y->probability) return x->probability < y->probability ? 1 : -1;
  return strcmp(x->name, y->name);
}

static void capitalised(strbuf *b, const char *s)
{
  if (!*s) return;
  sb_printf(b, "%c%s", toupper((unsigned char)s[0]), s + 1);
}

/* FINDINGS (bullets = "- " in both formats) and IMPRESSION bodies. */
static void render_sections(const t3d_report *r, t3d_report_finding **order, const t3d_report_params *p, strbuf *fb,
                            strbuf *ib)
{
  char n1[64], n2[64];
  size_t npresent = 0, nbelow = 0, nunassessed = 0;
  for (size_t i = 0; i < r->nfindings; i++) {
    const t3d_report_finding *f = order[i];
    if (!f->assessed) {
      nunassessed++;
      continue;
    }
    if (!f->present) {
      nbelow++;
      continue;
    }
    npresent++;
    sb_printf(fb, "- %s ", f->sentence);
    sb_printf(fb, _("(model probability %s)"), t3d_report_fmt(n1, sizeof n1, 3, f->probability));
    if (f->phrased_from >= 0) {
      const t3d_report_neighbour *nb = &p->neighbours[f->phrased_from];
      sb_printf(fb, " ");
      sb_printf(fb, _("[wording from similar case %d%s%s, similarity %s]"), f->phrased_from + 1,
                nb->label ? ": " : "", nb->label ? nb->label : "", t3d_report_fmt(n2, sizeof n2, 2, nb->similarity));
    }
    sb_printf(fb, "\n");
  }
  if (r->nfindings == 0)
    sb_printf(fb, "- %s\n", _("No findings were scored (the model has no text encoder)."));
  else if (npresent == 0 && nunassessed < r->nfindings)
    sb_printf(fb, _("- No finding reached the reporting threshold (probability >= %s).\n"),
              t3d_report_fmt(n1, sizeof n1, 2, r->threshold));
  if (nbelow) {
    sb_printf(fb, _("- Below threshold %s:"), t3d_report_fmt(n1, sizeof n1, 2, r->threshold));
    const char *sep = " ";
    for (size_t i = 0; i < r->nfindings; i++)
      if (order[i]->assessed && !order[i]->present) {
        sb_printf(fb, "%s%s %s", sep, order[i]->name, t3d_report_fmt(n1, sizeof n1, 3, order[i]->probability));
        sep = ", ";
      }
    sb_printf(fb, ".\n");
  }
  if (nunassessed) { /* neither present nor absent: the model cannot tell (unfamiliar series, held-out AUROC) */
    bool unfamiliar = false;
    for (size_t i = 0; i < r->nfindings; i++) unfamiliar |= order[i]->unfamiliar;
    if (unfamiliar)
      sb_printf(fb, "%s", _("- Not assessed by the model (the series is unlike every case it was trained on; review "
                            "the images):"));
    else
      sb_printf(fb, _("- Not assessed by the model (held-out AUROC below %s; review the images):"),
                t3d_report_fmt(n1, sizeof n1, 2, T3D_FINDING_MIN_AUROC));
    const char *sep = " ";
    for (size_t i = 0; i < r->nfindings; i++) /* in the model's order: their probabilities rank nothing */
      if (!r->findings[i].assessed) {
        sb_printf(fb, "%s%s", sep, r->findings[i].name);
        if (!r->findings[i].unfamiliar)
          sb_printf(fb, _(" (AUROC %s)"), t3d_report_fmt(n1, sizeof n1, 2, r->findings[i].auroc));
        sep = ", ";
      }
    sb_printf(fb, ".\n");
  }
  if (r->volumes_ml) {
    for (size_t c = 1; c < r->nclasses; c++) {
      if ((int)c == r->lesion_class) continue;
      if (r->volumes_ml[c] >= r->min_organ_ml) {
        sb_printf(fb, "- ");
        capitalised(fb, r->class_names[c]);
        sb_printf(fb, _(" volume: %s mL.\n"), t3d_report_fmt(n1, sizeof n1, 1, r->volumes_ml[c]));
      } else {
        sb_printf(fb, "- ");
        capitalised(fb, r->class_names[c]);
        sb_printf(fb, _(": not segmented.\n"));
      }
    }
  } else {
    sb_printf(fb, "- %s\n", _("No segmentation: no volumes measured."));
  }
  if (r->lesion_class >= 0) {
    if (r->nlesions)
      sb_printf(fb, _("- Lesions: %zu (6-connected components of at least %s mm3); largest diameter %s mm, largest "
                      "volume %s mL.\n"),
                r->nlesions, t3d_report_fmt(n1, sizeof n1, 0, r->min_lesion_mm3),
                t3d_report_fmt(n2, sizeof n2, 1, r->lesion_max_diameter_mm),
                t3d_report_fmt((char[64]){0}, 64, 2, r->lesion_ml[0]));
    else
      sb_printf(fb, _("- Lesions: none segmented (no component of at least %s mm3).\n"),
                t3d_report_fmt(n1, sizeof n1, 0, r->min_lesion_mm3));
  }

  int item = 0;
  if (r->nfindings && nunassessed == r->nfindings)
    sb_printf(ib, "%d. %s\n", ++item, _("The model assessed no finding (see FINDINGS): the images need a full review."));
  for (size_t i = 0; i < r->nfindings; i++) {
    if (!order[i]->present) continue;
    sb_printf(ib, "%d. ", ++item);
    capitalised(ib, order[i]->name);
    sb_printf(ib, _(" (probability %s).\n"), t3d_report_fmt(n1, sizeof n1, 2, order[i]->probability));
  }
  if (r->nlesions) {
    sb_printf(ib, "%d. ", ++item);
    sb_printf(ib, _("%zu segmented lesion(s), the largest %s mm in diameter.\n"), r->nlesions,
              t3d_report_fmt(n1, sizeof n1, 1, r->lesion_max_diameter_mm));
  }
  if (item == 0)
    sb_printf(ib, _("1. No finding reached the reporting threshold of the model (probability >= %s).\n"),
              t3d_report_fmt(n1, sizeof n1, 2, r->threshold));
}

static char *render_whole(const t3d_report *r, t3d_report_format fmt)
{
  const t3d_volume *g = &r->grid;
  const t3d_volume_meta *m = &g->meta;
  strbuf b = {0};
  char s0[64], s1[64], s2[64];
  int md = fmt == T3D_REPORT_MARKDOWN;
  const char *h1 = md ? "# " : "", *h2 = md ? "## " : "", *bold = md ? "**" : "";

  sb_printf(&b, "%s%s\n\n", h1, _("DRAFT REPORT - MACHINE GENERATED, NOT REVIEWED"));
  sb_printf(&b, "%s%s%s\n\n", bold, r->notice, bold);
  sb_printf(&b, md ? "| | |\n|---|---|\n" : "");
  const char *row = md ? "| %s | %s |\n" : "%-10s %s\n";
  sb_printf(&b, row, _("Patient:"), *m->patient_name || *m->patient_id ? m->patient_name : "-");
  if (*m->patient_id) sb_printf(&b, row, _("ID:"), m->patient_id);
  if (*m->study_date || *m->study_description) {
    strbuf st = {0};
    sb_printf(&st, "%s%s%s", m->study_date, *m->study_date && *m->study_description ? ", " : "", m->study_description);
    char *t = sb_take(&st);
    sb_printf(&b, row, _("Study:"), t ? t : "");
    free(t);
  }
  if (*m->accession_number) sb_printf(&b, row, _("Accession:"), m->accession_number);
  {
    strbuf st = {0};
    sb_printf(&st, "%s %s, %lld x %lld x %lld voxels of %s x %s x %s mm", *m->modality ? m->modality : "?",
              m->series_uid, (long long)g->nx, (long long)g->ny, (long long)g->nz,
              t3d_report_fmt(s0, sizeof s0, 2, g->spacing[0]), t3d_report_fmt(s1, sizeof s1, 2, g->spacing[1]),
              t3d_report_fmt(s2, sizeof s2, 2, g->spacing[2]));
    if (*m->series_description) sb_printf(&st, " (%s)", m->series_description);
    char *t = sb_take(&st);
    sb_printf(&b, row, _("Series:"), t ? t : "");
    free(t);
  }
  if (r->timestamp) sb_printf(&b, row, _("Generated:"), r->timestamp);
  if (*g->geometry_note) sb_printf(&b, row, _("Geometry:"), g->geometry_note);
  sb_printf(&b, "\n%s%s\n%s\n%s%s\n%s", h2, _("FINDINGS"), r->findings_text, h2, _("IMPRESSION"),
            r->impression_text);
  return sb_take(&b);
}

/* "2.25." + the first 128 bits of the model hash as a decimal number: one stable UID per model
 * file, so every SR from the same model names the same observing device. */
static void uid_from_hash(const char *hex, char out[T3D_UID_MAX])
{
  uint8_t n[16];
  char digits[48];
  int nd = 0;
  for (int i = 0; i < 16; i++) {
    unsigned hi = (unsigned)(isdigit((unsigned char)hex[2 * i]) ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
    unsigned lo = (unsigned)(isdigit((unsigned char)hex[2 * i + 1]) ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10);
    n[i] = (uint8_t)(hi << 4 | lo);
  }
  for (;;) { /* long division by 10, most significant byte first */
    unsigned rem = 0;
    int zero = 1;
    for (int i = 0; i < 16; i++) {
      unsigned cur = rem << 8 | n[i];
      n[i] = (uint8_t)(cur / 10);
      rem = cur % 10;
      if (n[i]) zero = 0;
    }
    digits[nd++] = (char)('0' + rem);
    if (zero) break;
  }
  int o = snprintf(out, T3D_UID_MAX, "2.25.");
  while (nd > 0) out[o++] = digits[--nd];
  out[o] = '\0';
}

/* ---- create / free / accessors ---- */

void t3d_report_free(t3d_report *r)
{
  if (!r) return;
  for (size_t i = 0; i < r->nfindings; i++) {
    free(r->findings[i].name);
    free(r->findings[i].sentence);
  }
  free(r->findings);
  for (size_t c = 0; c < r->nclasses; c++) free(r->class_names[c]);
  free(r->class_names);
  free(r->volumes_ml);
  free(r->labels);
  free(r->lesion_ml);
  free(r->model_name);
  free(r->timestamp);
  free(r->notice);
  free(r->findings_text);
  free(r->impression_text);
  free(r->text);
  free(r->markdown);
  free(r);
}

t3d_status t3d_report_create(const t3d_volume *vol, const t3d_analysis_result *res, const t3d_report_params *p,
                             t3d_report **out)
{
  t3d_report *r = NULL;
  t3d_report_finding **order = NULL;
  t3d_status s = T3D_OK;
  strbuf fb = {0}, ib = {0}, nb = {0};

  if (!out) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_report_create: out is NULL");
  *out = NULL;
  if (!vol || !res || !p) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_report_create: volume, result or params NULL");
  if (!p->model_name || !*p->model_name)
    return t3d_error(T3D_ERR_INVALID_ARG, "a report needs the model's name");
  if (!p->model_sha256 || strlen(p->model_sha256) != 64 || strspn(p->model_sha256, "0123456789abcdefABCDEF") != 64)
    return t3d_error(T3D_ERR_INVALID_ARG, "a report needs the model file's SHA-256 as 64 hex digits, got '%s'",
                     p->model_sha256 ? p->model_sha256 : "(null)");
  if (res->labels) {
    const t3d_tensor *l = res->labels;
    if (l->dtype != T3D_U8 || l->ndim != 3 || l->shape[0] != vol->nz || l->shape[1] != vol->ny ||
        l->shape[2] != vol->nx)
      return t3d_error(T3D_ERR_INVALID_ARG,
                       "label volume is not u8[%lld,%lld,%lld] on the series grid", (long long)vol->nz,
                       (long long)vol->ny, (long long)vol->nx);
    if (p->nclasses != res->nclasses || !p->class_names || p->nclasses < 1)
      return t3d_error(T3D_ERR_INVALID_ARG, "the result has %zu classes but %zu class names were given",
                       res->nclasses, p->nclasses);
  }
  if (!(p->finding_threshold >= 0 && p->finding_threshold <= 1))
    return t3d_error(T3D_ERR_INVALID_ARG, "finding threshold %g is outside [0, 1]", p->finding_threshold);

  r = calloc(1, sizeof *r);
  if (!r) return t3d_error(T3D_ERR_NOMEM, "out of memory for a report");
  r->grid = *vol;
  r->grid.data = NULL;
  r->threshold = p->finding_threshold;
  r->min_organ_ml = p->min_organ_ml;
  r->min_lesion_mm3 = p->min_lesion_mm3;
  r->lesion_class = -1;
  for (int i = 0; i < 64; i++) r->model_sha256[i] = (char)tolower((unsigned char)p->model_sha256[i]);
  r->model_sha256[64] = '\0';
  uid_from_hash(r->model_sha256, r->device_uid);
  r->model_name = dupstr(p->model_name);
  r->timestamp = p->timestamp ? dupstr(p->timestamp) : NULL;
  if (!r->model_name || (p->timestamp && !r->timestamp)) goto nomem;

  if (res->nfindings) {
    r->findings = calloc(res->nfindings, sizeof *r->findings);
    order = calloc(res->nfindings, sizeof *order);
    if (!r->findings || !order) goto nomem;
  }
  for (size_t i = 0; i < res->nfindings; i++) {
    t3d_report_finding *f = &r->findings[i];
    r->nfindings++;
    f->name = dupstr(res->findings[i].name);
    if (!f->name) goto nomem;
    f->probability = res->findings[i].probability;
    f->assessed = t3d_finding_assessed(&res->findings[i]);
    f->unfamiliar = res->findings[i].series_unfamiliar;
    f->auroc = res->findings[i].heldout_auroc;
    f->present = f->assessed && f->probability >= p->finding_threshold;
    f->phrased_from = -1;
    if (f->present && (s = phrase_finding(f, p)) != T3D_OK) goto cleanup;
    order[i] = f;
  }
  if (r->nfindings) qsort(order, r->nfindings, sizeof *order, by_probability);

  if (res->labels) {
    size_t nvox = t3d_volume_nvoxels(vol);
    r->class_names = calloc(p->nclasses, sizeof *r->class_names);
    r->labels = malloc(nvox);
    if (!r->class_names || !r->labels) goto nomem;
    memcpy(r->labels, res->labels->data, nvox);
    for (size_t c = 0; c < p->nclasses; c++) {
      r->nclasses++;
      if (!(r->class_names[c] = dupstr(p->class_names[c]))) goto nomem;
      if (c > 0 && r->lesion_class < 0 && strcasecmp(p->class_names[c], "lesion") == 0) r->lesion_class = (int)c;
    }
    if (res->volumes_ml) {
      if (!(r->volumes_ml = malloc(r->nclasses * sizeof *r->volumes_ml))) goto nomem;
      memcpy(r->volumes_ml, res->volumes_ml, r->nclasses * sizeof *r->volumes_ml);
    }
    if (r->lesion_class >= 0 && (s = measure_lesions(r)) != T3D_OK) goto cleanup;
  }

  sb_printf(&nb, _("Machine-generated draft from the model %s (model file SHA-256 %s). It needs review: a "
                   "radiologist must check, correct and sign it before any clinical use."),
            r->model_name, r->model_sha256);
  char caution[512];
  if (res->familiar < 0) sb_printf(&nb, " %s", t3d_familiarity_caution(res, caution, sizeof caution));
  render_sections(r, order, p, &fb, &ib);
  r->notice = sb_take(&nb);
  r->findings_text = sb_take(&fb);
  r->impression_text = sb_take(&ib);
  nb.s = fb.s = ib.s = NULL;
  if (!r->notice || !r->findings_text || !r->impression_text) goto nomem;
  r->text = render_whole(r, T3D_REPORT_TEXT);
  r->markdown = render_whole(r, T3D_REPORT_MARKDOWN);
  if (!r->text || !r->markdown) goto nomem;
  *out = r;
  r = NULL;
  goto cleanup;
nomem:
  s = t3d_error(T3D_ERR_NOMEM, "out of memory building a report");
cleanup:
  free(nb.s);
  free(fb.s);
  free(ib.s);
  free(order);
  t3d_report_free(r);
  return s;
}

const char *t3d_report_text(const t3d_report *r, t3d_report_format f)
{
  return f == T3D_REPORT_MARKDOWN ? r->markdown : r->text;
}
const char *t3d_report_findings_text(const t3d_report *r) { return r->findings_text; }
const char *t3d_report_impression_text(const t3d_report *r) { return r->impression_text; }
size_t t3d_report_finding_count(const t3d_report *r) { return r->nfindings; }
const char *t3d_report_finding_name(const t3d_report *r, size_t i)
{
  return i < r->nfindings ? r->findings[i].name : NULL;
}
double t3d_report_finding_probability(const t3d_report *r, size_t i)
{
  return i < r->nfindings ? r->findings[i].probability : 0.0;
}
int t3d_report_finding_present(const t3d_report *r, size_t i) { return i < r->nfindings && r->findings[i].present; }
int t3d_report_finding_phrased_from(const t3d_report *r, size_t i)
{
  return i < r->nfindings ? r->findings[i].phrased_from : -1;
}
size_t t3d_report_lesion_count(const t3d_report *r) { return r->nlesions; }
double t3d_report_lesion_max_diameter_mm(const t3d_report *r) { return r->lesion_max_diameter_mm; }
double t3d_report_lesion_volume_ml(const t3d_report *r, size_t i) { return i < r->nlesions ? r->lesion_ml[i] : 0.0; }

/* ---- files ---- */

/* "<dir>/.<base>.tmpXXXXXX" beside path, created (mkstemp); *fd open. */
static t3d_status temp_beside(const char *path, char *tmp, size_t size, int *fd)
{
  const char *slash = strrchr(path, '/');
  int dirlen = slash ? (int)(slash - path + 1) : 0;
  if (snprintf(tmp, size, "%.*s.%s.tmpXXXXXX", dirlen, path, slash ? slash + 1 : path) >= (int)size)
    return t3d_error(T3D_ERR_INVALID_ARG, "%s: path too long", path);
  *fd = mkstemp(tmp);
  if (*fd < 0) return t3d_error(T3D_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
  return T3D_OK;
}

static t3d_status commit_temp(const char *tmp, const char *path)
{
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return t3d_error(T3D_ERR_IO, "%s: cannot rename the finished file into place: %s", path, strerror(e));
  }
  return T3D_OK;
}

t3d_status t3d_report_write_text(const t3d_report *r, t3d_report_format f, const char *path)
{
  char tmp[4200];
  int fd = -1;
  T3D_TRY(temp_beside(path, tmp, sizeof tmp, &fd));
  const char *t = t3d_report_text(r, f);
  size_t n = strlen(t), done = 0;
  while (done < n) {
    ssize_t w = write(fd, t + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return t3d_error(T3D_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    done += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return t3d_error(T3D_ERR_IO, "%s: write failed: %s", path, strerror(e));
  }
  return commit_temp(tmp, path);
}

/* ---- source instances ---- */

void t3d_report_source_free(t3d_report_source *s)
{
  if (!s) return;
  free(s->inst);
  free(s->slice_inst);
  free(s);
}

size_t t3d_report_source_count(const t3d_report_source *s) { return s->n; }

const char *t3d_report_source_slice_uid(const t3d_report_source *s, int64_t k)
{
  return k >= 0 && k < s->nz ? s->inst[s->slice_inst[k]].sop_instance_uid : NULL;
}

t3d_status t3d_report_source_read(const t3d_volume *vol, const char *const *files, size_t nfiles,
                                  t3d_report_source **out)
{
  t3d_report_source *src = NULL;
  t3d_status s = T3D_OK;
  const size_t none = (size_t)-1;

  *out = NULL;
  if (!vol || !files || nfiles == 0) return t3d_error(T3D_ERR_INVALID_ARG, "no source files for the report");
  src = calloc(1, sizeof *src);
  if (!src || !(src->inst = calloc(nfiles, sizeof *src->inst)) ||
      !(src->slice_inst = malloc((size_t)vol->nz * sizeof *src->slice_inst))) {
    s = t3d_error(T3D_ERR_NOMEM, "out of memory listing %zu source files", nfiles);
    goto cleanup;
  }
  src->nz = vol->nz;
  for (int64_t k = 0; k < vol->nz; k++) src->slice_inst[k] = none;
  for (size_t f = 0; f < nfiles; f++) {
    t3d_report_instance *in = &src->inst[src->n];
    if ((s = t3d_report_shim_read_header(files[f], in)) != T3D_OK) goto cleanup;
    if (in->nframes > 1) {
      s = t3d_error(T3D_ERR_UNSUPPORTED, "%s: multi-frame source instance (%ld frames); DICOM export references "
                                         "single-frame series only", files[f], in->nframes);
      goto cleanup;
    }
    if (!in->has_ipp) {
      s = t3d_error(T3D_ERR_UNSUPPORTED, "%s: no Image Position (Patient); cannot place it on the volume", files[f]);
      goto cleanup;
    }
    /* offset from the origin in the volume's axes */
    double d[3] = {in->ipp[0] - vol->origin[0], in->ipp[1] - vol->origin[1], in->ipp[2] - vol->origin[2]}, a[3];
    for (int c = 0; c < 3; c++) a[c] = d[0] * vol->dir[0][c] + d[1] * vol->dir[1][c] + d[2] * vol->dir[2][c];
    double kf = a[2] / vol->spacing[2];
    int64_t k = (int64_t)llround(kf);
    if (fabs(a[0]) > 0.01 || fabs(a[1]) > 0.01 || fabs(kf - (double)k) > 0.1 || k < 0 || k >= vol->nz) {
      s = t3d_error(T3D_ERR_UNSUPPORTED, "%s: Image Position (Patient) lies on no slice of the volume (slice %.2f, "
                                         "in-plane offset %.3f, %.3f mm)", files[f], kf, a[0], a[1]);
      goto cleanup;
    }
    if (src->slice_inst[k] != none) /* a duplicate the loader kept once (it refuses differing ones) */
      continue;
    src->slice_inst[k] = src->n++;
  }
  for (int64_t k = 0; k < vol->nz; k++)
    if (src->slice_inst[k] == none) {
      s = t3d_error(T3D_ERR_INVALID_ARG, "slice %lld of the volume has no source file among the %zu given",
                    (long long)k, nfiles);
      goto cleanup;
    }
  *out = src;
  src = NULL;
cleanup:
  t3d_report_source_free(src);
  return s;
}

typedef t3d_status (*shim_writer)(const t3d_report *, const t3d_report_source *, const char *, const char *, int,
                                  const char *);

static t3d_status write_dicom(const t3d_report *r, const t3d_report_source *src, const t3d_report_dicom_params *p,
                              const char *path, shim_writer w, int series_offset)
{
  char series_uid[T3D_UID_MAX], inst_uid[T3D_UID_MAX], tmp[4200];
  t3d_report_dicom_params dp = p ? *p : t3d_report_dicom_default_params();
  int fd = -1;
  if (!r || !src || !path) return t3d_error(T3D_ERR_INVALID_ARG, "DICOM export: report, source or path NULL");
  if (src->nz != r->grid.nz) return t3d_error(T3D_ERR_INVALID_ARG, "source list and report differ in slices");
  T3D_TRY(t3d_dicom_new_uid(dp.uid_root, series_uid));
  T3D_TRY(t3d_dicom_new_uid(dp.uid_root, inst_uid));
  T3D_TRY(temp_beside(path, tmp, sizeof tmp, &fd));
  close(fd);
  t3d_status s = w(r, src, series_uid, inst_uid, dp.series_number + series_offset, tmp);
  if (s != T3D_OK) {
    unlink(tmp);
    t3d_error_prefix("%s: ", path);
    return s;
  }
  return commit_temp(tmp, path);
}

t3d_status t3d_report_write_sr(const t3d_report *r, const t3d_report_source *src, const t3d_report_dicom_params *p,
                               const char *path)
{
  return write_dicom(r, src, p, path, t3d_report_shim_write_sr, 0);
}

t3d_status t3d_report_write_seg(const t3d_report *r, const t3d_report_source *src, const t3d_report_dicom_params *p,
                                const char *path)
{
  if (r && !r->labels)
    return t3d_error(T3D_ERR_UNSUPPORTED, "no label volume: the model has no segmentation head or it was not run");
  return write_dicom(r, src, p, path, t3d_report_shim_write_seg, 1);
}
