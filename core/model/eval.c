/* Manifest and labels.json readers and the evaluation metrics behind `t3d eval` (eval.h).
 * Not the evaluation loop (cli/cmd_eval.c runs the model and gathers the numbers). */
#include "core/model/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct t3d_eval_manifest {
  t3d_eval_case *cases;
  size_t n, cap;
};

/* ---- reading ------------------------------------------------------------------------------ */

static t3d_status read_whole(const char *path, char **out, size_t *size)
{
  *out = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return t3d_error(T3D_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  t3d_status s = T3D_OK;
  for (;;) {
    if (cap - len < 65536) {
      size_t ncap = cap ? cap * 2 : 65536;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        s = t3d_error(T3D_ERR_NOMEM, "%s: out of memory reading the file", path);
        goto cleanup;
      }
      buf = nb, cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    s = t3d_error(T3D_ERR_IO, "%s: read error", path);
    goto cleanup;
  }
  *out = buf, *size = len;
  buf = NULL;
cleanup:
  free(buf);
  fclose(f);
  return s;
}

static char *dup_string(const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* ---- manifest ----------------------------------------------------------------------------- */

static void case_clear(t3d_eval_case *c)
{
  free(c->name);
  free(c->series);
  free(c->labels);
  free(c->report);
  for (size_t i = 0; i < c->ntruth; i++) free(c->truth[i].name);
  free(c->truth);
  memset(c, 0, sizeof *c);
}

void t3d_eval_manifest_free(t3d_eval_manifest *m)
{
  if (!m) return;
  for (size_t i = 0; i < m->n; i++) case_clear(&m->cases[i]);
  free(m->cases);
  free(m);
}

size_t t3d_eval_manifest_count(const t3d_eval_manifest *m) { return m ? m->n : 0; }

const t3d_eval_case *t3d_eval_manifest_case(const t3d_eval_manifest *m, size_t i)
{
  return m && i < m->n ? &m->cases[i] : NULL;
}

bool t3d_eval_case_truth(const t3d_eval_case *c, const char *name, bool *present)
{
  for (size_t i = 0; c && i < c->ntruth; i++)
    if (strcmp(c->truth[i].name, name) == 0) {
      if (present) *present = c->truth[i].present;
      return true;
    }
  return false;
}

/* A relative path that stays inside the data folder: not empty, not absolute, no ".." part. */
static bool safe_relative_path(const char *p)
{
  if (!*p || *p == '/') return false;
  for (const char *s = p; *s;) {
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 2 && s[0] == '.' && s[1] == '.') return false;
    s += n;
    if (*s == '/') s++;
  }
  return true;
}

/* obj[key] as a fresh string into *out. required false: a missing key leaves *out NULL. */
static t3d_status member_string(json_t *obj, const char *key, bool required, bool path, const char *where,
                                char **out)
{
  *out = NULL;
  json_t *v = json_object_get(obj, key);
  if (!v) return required ? t3d_error(T3D_ERR_FORMAT, "%s: no \"%s\"", where, key) : T3D_OK;
  if (!json_is_string(v)) return t3d_error(T3D_ERR_FORMAT, "%s: \"%s\" is not a string", where, key);
  const char *s = json_string_value(v);
  if (path && !safe_relative_path(s))
    return t3d_error(T3D_ERR_FORMAT, "%s: \"%s\" must be a relative path inside the data folder, not \"%.200s\"",
                     where, key, s);
  if (!(*out = dup_string(s))) return t3d_error(T3D_ERR_NOMEM, "%s: out of memory", where);
  return T3D_OK;
}

static t3d_status parse_case(json_t *root, const char *where_line, t3d_eval_case *c)
{
  char where[512];
  t3d_status s;
  if (!json_is_object(root)) return t3d_error(T3D_ERR_FORMAT, "%s: not a JSON object", where_line);
  T3D_TRY(member_string(root, "case", true, false, where_line, &c->name));
  if (!*c->name) return t3d_error(T3D_ERR_FORMAT, "%s: \"case\" is empty", where_line);
  snprintf(where, sizeof where, "%s (case %.200s)", where_line, c->name);
  if ((s = member_string(root, "series", true, true, where, &c->series)) != T3D_OK) return s;
  if ((s = member_string(root, "labels", false, true, where, &c->labels)) != T3D_OK) return s;
  if ((s = member_string(root, "report", true, false, where, &c->report)) != T3D_OK) return s;
  json_t *truth = json_object_get(root, "truth");
  if (!json_is_object(truth)) return t3d_error(T3D_ERR_FORMAT, "%s: \"truth\" missing or not an object", where);
  size_t nt = json_object_size(truth);
  c->truth = calloc(nt ? nt : 1, sizeof *c->truth);
  if (!c->truth) return t3d_error(T3D_ERR_NOMEM, "%s: out of memory", where);
  const char *key;
  json_t *v;
  json_object_foreach(truth, key, v)
  {
    json_t *p = json_is_object(v) ? json_object_get(v, "present") : NULL;
    if (!json_is_boolean(p))
      return t3d_error(T3D_ERR_FORMAT, "%s: truth \"%.200s\" has no boolean \"present\"", where, key);
    if (!(c->truth[c->ntruth].name = dup_string(key))) return t3d_error(T3D_ERR_NOMEM, "%s: out of memory", where);
    c->truth[c->ntruth++].present = json_is_true(p);
  }
  return T3D_OK;
}

t3d_status t3d_eval_manifest_parse(const void *data, size_t size, const char *name, t3d_eval_manifest **out)
{
  t3d_eval_manifest *m = NULL;
  json_t *root = NULL;
  t3d_status s = T3D_OK;
  const char *p = data, *end = p + size;
  size_t line = 0;

  if (!out) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_eval_manifest_parse: out is NULL");
  *out = NULL;
  if (!name) name = "manifest";
  if (!data && size) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_eval_manifest_parse: data is NULL");
  if (!(m = calloc(1, sizeof *m))) return t3d_error(T3D_ERR_NOMEM, "%s: out of memory", name);
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    line++;
    const char *q = p;
    while (q < le && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
    if (q < le) {
      char where[256];
      snprintf(where, sizeof where, "%.120s line %zu", name, line);
      json_error_t err;
      root = json_loadb(q, (size_t)(le - q), JSON_REJECT_DUPLICATES, &err);
      if (!root) {
        s = t3d_error(T3D_ERR_FORMAT, "%s: malformed JSON at column %d: %s", where, err.column, err.text);
        goto cleanup;
      }
      if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        t3d_eval_case *nc = realloc(m->cases, ncap * sizeof *nc);
        if (!nc) {
          s = t3d_error(T3D_ERR_NOMEM, "%s: out of memory", where);
          goto cleanup;
        }
        m->cases = nc, m->cap = ncap;
      }
      t3d_eval_case *c = &m->cases[m->n++];
      memset(c, 0, sizeof *c);
      c->line = line;
      if ((s = parse_case(root, where, c)) != T3D_OK) goto cleanup;
      for (size_t i = 0; i + 1 < m->n; i++)
        if (strcmp(m->cases[i].name, c->name) == 0) {
          s = t3d_error(T3D_ERR_FORMAT, "%s: case \"%.200s\" already given on line %zu", where, c->name,
                        m->cases[i].line);
          goto cleanup;
        }
      json_decref(root);
      root = NULL;
    }
    p = nl ? nl + 1 : end;
  }
  if (m->n == 0) {
    s = t3d_error(T3D_ERR_FORMAT, "%s: no cases", name);
    goto cleanup;
  }
  *out = m;
  m = NULL;
cleanup:
  json_decref(root);
  t3d_eval_manifest_free(m);
  return s;
}

t3d_status t3d_eval_manifest_load(const char *path, t3d_eval_manifest **out)
{
  char *buf = NULL;
  size_t n = 0;
  if (out) *out = NULL;
  if (!path || !out) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_eval_manifest_load: NULL argument");
  T3D_TRY(read_whole(path, &buf, &n));
  t3d_status s = t3d_eval_manifest_parse(buf, n, path, out);
  free(buf);
  return s;
}

/* ---- labels.json -------------------------------------------------------------------------- */

void t3d_eval_free_names(char **names, size_t count)
{
  if (!names) return;
  for (size_t i = 0; i < count; i++) free(names[i]);
  free(names);
}

t3d_status t3d_eval_label_names_parse(const void *data, size_t size, const char *name, char ***names,
                                      size_t *count)
{
  json_t *root = NULL;
  char **v = NULL;
  size_t n = 0;
  t3d_status s = T3D_OK;
  json_error_t err;

  if (!names || !count || (!data && size))
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_eval_label_names_parse: NULL argument");
  *names = NULL, *count = 0;
  if (!name) name = "labels.json";
  if (!(root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &err))) {
    s = t3d_error(T3D_ERR_FORMAT, "%s: malformed JSON at line %d column %d: %s", name, err.line, err.column,
                  err.text);
    goto cleanup;
  }
  json_t *classes = json_is_object(root) ? json_object_get(root, "classes") : NULL;
  if (!json_is_array(classes) || json_array_size(classes) == 0 || json_array_size(classes) > 256) {
    s = t3d_error(T3D_ERR_FORMAT, "%s: \"classes\" must be an array of 1 to 256 names", name);
    goto cleanup;
  }
  size_t nc = json_array_size(classes);
  if (!(v = calloc(nc, sizeof *v))) {
    s = t3d_error(T3D_ERR_NOMEM, "%s: out of memory", name);
    goto cleanup;
  }
  for (n = 0; n < nc; n++) {
    json_t *e = json_array_get(classes, n);
    if (!json_is_string(e)) {
      s = t3d_error(T3D_ERR_FORMAT, "%s: class %zu is not a string", name, n);
      goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
      if (strcmp(v[i], json_string_value(e)) == 0) {
        s = t3d_error(T3D_ERR_FORMAT, "%s: class \"%.200s\" given twice (ids %zu and %zu)", name, v[i], i, n);
        goto cleanup;
      }
    if (!(v[n] = dup_string(json_string_value(e)))) {
      s = t3d_error(T3D_ERR_NOMEM, "%s: out of memory", name);
      goto cleanup;
    }
  }
  *names = v, *count = n;
  v = NULL;
cleanup:
  t3d_eval_free_names(v, n);
  json_decref(root);
  return s;
}

t3d_status t3d_eval_label_names_load(const char *path, char ***names, size_t *count)
{
  char *buf = NULL;
  size_t n = 0;
  if (!path) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_eval_label_names_load: NULL path");
  T3D_TRY(read_whole(path, &buf, &n));
  t3d_status s = t3d_eval_label_names_parse(buf, n, path, names, count);
  free(buf);
  return s;
}

/* ---- metrics ------------------------------------------------------------------------------ */

typedef struct {
  double score;
  bool positive;
} scored;

static int cmp_scored(const void *a, const void *b)
{
  double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
  return (x > y) - (x < y);
}

t3d_status t3d_eval_auroc(const double *score, const bool *positive, size_t n, double *out)
{
  if (!out || (n && (!score || !positive))) return t3d_error(T3D_ERR_INVALID_ARG, "t3d_eval_auroc: NULL argument");
  *out = NAN;
  size_t npos = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(score[i])) return t3d_error(T3D_ERR_INVALID_ARG, "AUROC: score %zu is NaN", i);
    npos += positive[i];
  }
  if (npos == 0 || npos == n)
    return t3d_error(T3D_ERR_INVALID_ARG, "AUROC undefined: %zu positives and %zu negatives", npos, n - npos);
  scored *v = malloc(n * sizeof *v);
  if (!v) return t3d_error(T3D_ERR_NOMEM, "AUROC: out of memory for %zu scores", n);
  for (size_t i = 0; i < n; i++) v[i] = (scored){score[i], positive[i]};
  qsort(v, n, sizeof *v, cmp_scored);
  /* U = sum over positives of (#negatives below + half the negatives tied with it), by tie group. */
  double u = 0;
  size_t neg_below = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i, pos = 0;
    while (j < n && v[j].score == v[i].score) pos += v[j++].positive;
    size_t neg = (j - i) - pos;
    u += (double)pos * ((double)neg_below + 0.5 * (double)neg);
    neg_below += neg;
    i = j;
  }
  free(v);
  *out = u / ((double)npos * (double)(n - npos));
  return T3D_OK;
}

t3d_status t3d_eval_recall_at_k(const float *sim, size_t n, bool by_column, size_t k, double *out)
{
  if (!out || !sim || n == 0 || k == 0)
    return t3d_error(T3D_ERR_INVALID_ARG, "recall@k: need a non-empty matrix and k >= 1");
  *out = NAN;
  double sum = 0;
  for (size_t q = 0; q < n; q++) {
    float self = sim[q * n + q];
    size_t greater = 0, tied = 0;
    for (size_t c = 0; c < n; c++) {
      float x = by_column ? sim[c * n + q] : sim[q * n + c];
      if (isnan(x)) return t3d_error(T3D_ERR_INVALID_ARG, "recall@k: similarity (%zu, %zu) is NaN", q, c);
      if (c == q) continue;
      greater += x > self;
      tied += x == self;
    }
    double hit = ((double)k - (double)greater) / (double)(tied + 1);
    sum += hit < 0 ? 0 : hit > 1 ? 1 : hit;
  }
  *out = sum / (double)n;
  return T3D_OK;
}

t3d_status t3d_eval_overlap_count(const uint8_t *truth, const uint8_t *pred, size_t n, const uint8_t *truth_ids,
                                  const uint8_t *pred_ids, size_t m, t3d_eval_overlap *ov)
{
  int tmap[256], pmap[256];
  if ((n && (!truth || !pred)) || (m && (!truth_ids || !pred_ids || !ov)))
    return t3d_error(T3D_ERR_INVALID_ARG, "Dice: NULL argument");
  for (int i = 0; i < 256; i++) tmap[i] = pmap[i] = -1;
  for (size_t j = 0; j < m; j++) {
    if (tmap[truth_ids[j]] >= 0 || pmap[pred_ids[j]] >= 0)
      return t3d_error(T3D_ERR_INVALID_ARG, "Dice: class id %u/%u matched twice", truth_ids[j], pred_ids[j]);
    tmap[truth_ids[j]] = pmap[pred_ids[j]] = (int)j;
    ov[j] = (t3d_eval_overlap){0, 0, 0};
  }
  for (size_t i = 0; i < n; i++) {
    int a = tmap[truth[i]], b = pmap[pred[i]];
    if (a >= 0) ov[a].truth++;
    if (b >= 0) ov[b].pred++;
    if (a >= 0 && a == b) ov[a].both++;
  }
  return T3D_OK;
}

double t3d_eval_dice(t3d_eval_overlap ov)
{
  if (ov.truth + ov.pred == 0) return NAN;
  return 2.0 * (double)ov.both / ((double)ov.truth + (double)ov.pred);
}
