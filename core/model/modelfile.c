/* Model file reader (mmap + validation of every header entry and t3d metadata key) and atomic
 * writer; the format is documented in modelfile.h. Not a network: no op, no BN folding, no
 * dtype conversion happens here. Both file and memory input share one parser. */
#include "core/model/modelfile.h"
#include "core/model/modelfile-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/log.h"

#define DATA_ALIGN 64 /* writer: the data section starts on a 64-byte file offset */
#define MEMORY_NAME "<memory>"

typedef struct {
  const char *name; /* borrowed from the header JSON */
  t3d_tensor view;
  size_t begin, end;
  void *copy; /* aligned copy when the mapped address is misaligned for the dtype */
} entry;

typedef struct {
  const char *key, *value; /* borrowed from the header JSON */
} meta_entry;

/* What the t3d.* metadata keys parse into; shared by reader and writer validation. */
typedef struct {
  int format_version;
  json_t *config_json;
  t3d_model_config config;
  bool has_config;
  json_t *vocab_json, *classes_json, *findings_json;
  const char **vocab, **classes;
  size_t nvocab, nclasses;
  t3d_finding *findings;
  size_t nfindings;
} t3d_meta;

struct t3d_modelfile {
  char *path;
  const uint8_t *base;
  size_t size;
  bool mapped;
  size_t header_len;
  json_t *header;
  entry *tensors; /* sorted by name */
  size_t ntensors;
  meta_entry *meta; /* sorted by key */
  size_t nmeta;
  t3d_meta t3d;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static uint64_t read_le64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static bool host_is_little_endian(void)
{
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

/* A short, printable rendering of a JSON value for messages. */
static void json_brief(const json_t *v, char *buf, size_t size)
{
  char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  snprintf(buf, size, "%s", s ? s : "nothing");
  if (size > 4 && strlen(buf) == size - 1)
    strcpy(buf + size - 4, "...");
  free(s);
}

static int cmp_entry_name(const void *a, const void *b)
{
  return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int cmp_entry_offset(const void *a, const void *b)
{
  const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

static int cmp_meta_key(const void *a, const void *b)
{
  return strcmp(((const meta_entry *)a)->key, ((const meta_entry *)b)->key);
}

/* ---- t3d metadata ------------------------------------------------------------------------ */

static void meta_clear(t3d_meta *m)
{
  json_decref(m->config_json);
  json_decref(m->vocab_json);
  json_decref(m->classes_json);
  json_decref(m->findings_json);
  free(m->vocab);
  free(m->classes);
  free(m->findings);
  memset(m, 0, sizeof *m);
}

static t3d_status parse_json_value(const char *key, const char *text, json_t **out)
{
  json_error_t err;
  *out = json_loads(text, JSON_REJECT_DUPLICATES, &err);
  if (!*out)
    return t3d_error(T3D_ERR_FORMAT, "__metadata__ %s is not valid JSON: %s at line %d, column %d", key, err.text,
                     err.line, err.column);
  return T3D_OK;
}

typedef struct {
  const char *s;
  size_t i;
} indexed_string;

static int cmp_indexed(const void *a, const void *b)
{
  const indexed_string *x = a, *y = b;
  int c = strcmp(x->s, y->s);
  return c ? c : (x->i < y->i ? -1 : x->i > y->i);
}

/* Refuses a repeated string: in a vocabulary the later id could never be produced. */
static t3d_status check_unique(const char *key, const char **arr, size_t n)
{
  indexed_string *v;
  t3d_status st = T3D_OK;
  if (n < 2)
    return T3D_OK;
  v = malloc(n * sizeof *v);
  if (!v)
    return t3d_error(T3D_ERR_NOMEM, "out of memory checking __metadata__ %s", key);
  for (size_t i = 0; i < n; i++)
    v[i] = (indexed_string){arr[i], i};
  qsort(v, n, sizeof *v, cmp_indexed);
  for (size_t i = 1; i < n && st == T3D_OK; i++)
    if (strcmp(v[i - 1].s, v[i].s) == 0)
      st = t3d_error(T3D_ERR_FORMAT, "__metadata__ %s[%zu] \"%.60s\" repeats %s[%zu]", key, v[i].i, v[i].s, key,
                     v[i - 1].i);
  free(v);
  return st;
}

/* A JSON array of unique non-empty strings into a borrowed pointer array. */
static t3d_status parse_string_array(const char *key, const char *text, json_t **json, const char ***arr, size_t *n)
{
  t3d_status st = parse_json_value(key, text, json);
  char got[64];
  if (st != T3D_OK)
    return st;
  if (!json_is_array(*json))
    return t3d_error(T3D_ERR_FORMAT, "__metadata__ %s must be a JSON array of strings", key);
  *n = json_array_size(*json);
  *arr = calloc(*n ? *n : 1, sizeof **arr);
  if (!*arr)
    return t3d_error(T3D_ERR_NOMEM, "out of memory reading __metadata__ %s", key);
  for (size_t i = 0; i < *n; i++) {
    const json_t *e = json_array_get(*json, i);
    if (!json_is_string(e) || json_string_length(e) == 0) {
      json_brief(e, got, sizeof got);
      return t3d_error(T3D_ERR_FORMAT, "__metadata__ %s[%zu] must be a non-empty string, got %s", key, i, got);
    }
    if (strlen(json_string_value(e)) != json_string_length(e))
      return t3d_error(T3D_ERR_FORMAT, "__metadata__ %s[%zu] contains a NUL character", key, i);
    (*arr)[i] = json_string_value(e);
  }
  if (*n == 0)
    return t3d_error(T3D_ERR_FORMAT, "__metadata__ %s is an empty array", key);
  return check_unique(key, *arr, *n);
}

static t3d_status parse_findings(t3d_meta *m, const char *text)
{
  static const char *const fields[3] = {"name", "positive", "negative"};
  t3d_status st = parse_json_value("t3d.findings", text, &m->findings_json);
  if (st != T3D_OK)
    return st;
  if (!json_is_array(m->findings_json) || json_array_size(m->findings_json) == 0)
    return t3d_error(T3D_ERR_FORMAT, "__metadata__ t3d.findings must be a non-empty JSON array of "
                                     "{\"name\",\"positive\",\"negative\"} objects");
  m->nfindings = json_array_size(m->findings_json);
  m->findings = calloc(m->nfindings, sizeof *m->findings);
  if (!m->findings)
    return t3d_error(T3D_ERR_NOMEM, "out of memory reading __metadata__ t3d.findings");
  for (size_t i = 0; i < m->nfindings; i++) {
    const json_t *f = json_array_get(m->findings_json, i);
    const char *v[3];
    if (!json_is_object(f))
      return t3d_error(T3D_ERR_FORMAT, "__metadata__ t3d.findings[%zu] must be an object with name, positive and "
                                       "negative", i);
    for (int k = 0; k < 3; k++) {
      const json_t *s = json_object_get(f, fields[k]);
      if (!json_is_string(s) || json_string_length(s) == 0 || strlen(json_string_value(s)) != json_string_length(s))
        return t3d_error(T3D_ERR_FORMAT, "__metadata__ t3d.findings[%zu].%s must be a non-empty string", i,
                         fields[k]);
      v[k] = json_string_value(s);
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(m->findings[j].name, v[0]) == 0)
        return t3d_error(T3D_ERR_FORMAT, "__metadata__ t3d.findings[%zu]: name \"%s\" repeats t3d.findings[%zu]", i,
                         v[0], j);
    m->findings[i] = (t3d_finding){v[0], v[1], v[2], 0, 1.0, 0.0, 0, 0.0};
    const json_t *cal = json_object_get(f, "calibration");
    if (cal) { /* {"slope": a >= 0, "intercept": b, ...}: p = sigmoid(a * logit difference + b) */
      const json_t *a = json_object_get(cal, "slope"), *b = json_object_get(cal, "intercept");
      if (!json_is_object(cal) || !json_is_number(a) || !json_is_number(b) || !isfinite(json_number_value(a)) ||
          json_number_value(a) < 0 || !isfinite(json_number_value(b)))
        return t3d_error(T3D_ERR_FORMAT, "__metadata__ t3d.findings[%zu].calibration must be an object with a finite "
                                         "\"slope\" >= 0 and a finite \"intercept\"", i);
      m->findings[i].calibrated = 1;
      m->findings[i].slope = json_number_value(a);
      m->findings[i].intercept = json_number_value(b);
      const json_t *auc = json_object_get(cal, "auroc"); /* optional: the held-out ranking quality */
      if (auc && (!json_is_number(auc) || !(json_number_value(auc) >= 0 && json_number_value(auc) <= 1)))
        return t3d_error(T3D_ERR_FORMAT, "__metadata__ t3d.findings[%zu].calibration.auroc must be a number in [0, 1]",
                         i);
      if (auc) m->findings[i].has_auroc = 1, m->findings[i].auroc = json_number_value(auc);
    }
  }
  return T3D_OK;
}

static t3d_status parse_format_version(const char *text, int *out)
{
  long v = 0;
  if (!text)
    return t3d_error(T3D_ERR_FORMAT, "__metadata__ has no t3d.format_version (not a t3d model file?)");
  if (!*text || strlen(text) > 9 || strspn(text, "0123456789") != strlen(text) || (v = strtol(text, NULL, 10)) < 1)
    return t3d_error(T3D_ERR_FORMAT, "__metadata__ t3d.format_version must be a positive integer, got \"%.40s\"",
                     text);
  if (v > T3D_MODELFILE_FORMAT_VERSION)
    return t3d_error(T3D_ERR_UNSUPPORTED, "format version %ld was written by a newer t3d; this t3d reads up to %d",
                     v, T3D_MODELFILE_FORMAT_VERSION);
  *out = (int)v;
  return T3D_OK;
}

/* Validates every t3d.* key of a __metadata__ object (string values already checked). */
static t3d_status parse_t3d_meta(t3d_meta *m, const json_t *meta)
{
  const char *s;
  t3d_status st;
  memset(m, 0, sizeof *m);
  st = parse_format_version(json_string_value(json_object_get(meta, "t3d.format_version")), &m->format_version);
  if (st != T3D_OK)
    return st;
  if ((s = json_string_value(json_object_get(meta, "t3d.config")))) {
    if ((st = parse_json_value("t3d.config", s, &m->config_json)) != T3D_OK)
      return st;
    if ((st = t3d_model_config_parse(&m->config, m->config_json)) != T3D_OK) {
      t3d_error_prefix("__metadata__ t3d.config: ");
      return st;
    }
    m->has_config = true;
  }
  if ((s = json_string_value(json_object_get(meta, "t3d.vocab"))) &&
      (st = parse_string_array("t3d.vocab", s, &m->vocab_json, &m->vocab, &m->nvocab)) != T3D_OK)
    return st;
  if ((s = json_string_value(json_object_get(meta, "t3d.classes"))) &&
      (st = parse_string_array("t3d.classes", s, &m->classes_json, &m->classes, &m->nclasses)) != T3D_OK)
    return st;
  if ((s = json_string_value(json_object_get(meta, "t3d.findings"))) && (st = parse_findings(m, s)) != T3D_OK)
    return st;
  return T3D_OK;
}

static t3d_status check_metadata_object(const json_t *meta)
{
  const char *key;
  const json_t *v;
  if (!meta)
    return t3d_error(T3D_ERR_FORMAT, "header has no __metadata__ (a t3d model file needs t3d.format_version there)");
  if (!json_is_object(meta))
    return t3d_error(T3D_ERR_FORMAT, "__metadata__ must be a JSON object of strings");
  json_object_foreach((json_t *)meta, key, v) {
    if (!json_is_string(v))
      return t3d_error(T3D_ERR_FORMAT, "__metadata__ key \"%.200s\": value must be a string", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
      return t3d_error(T3D_ERR_FORMAT, "__metadata__ key \"%.200s\": value contains a NUL character", key);
  }
  return T3D_OK;
}

/* ---- header parsing ---------------------------------------------------------------------- */

static t3d_status parse_entry(entry *e, const char *name, const json_t *obj, size_t data_len)
{
  const json_t *dtype, *shape, *offs;
  t3d_dtype dt;
  int64_t dims[T3D_MAX_DIMS] = {0};
  json_int_t b, en;
  size_t ndim, nbytes = 0, esize;
  char got[64];

  e->name = name;
  if (strlen(name) == 0 || strlen(name) > T3D_MODELFILE_MAX_NAME)
    return t3d_error(T3D_ERR_FORMAT, "tensor name \"%.40s%s\" is %zu bytes; names must be 1..%d bytes", name,
                     strlen(name) > 40 ? "..." : "", strlen(name), T3D_MODELFILE_MAX_NAME);
  if (!json_is_object(obj))
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: entry must be an object with dtype, shape and data_offsets", name);
  dtype = json_object_get(obj, "dtype");
  shape = json_object_get(obj, "shape");
  offs = json_object_get(obj, "data_offsets");
  if (!dtype || !shape || !offs)
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: missing \"%s\"", name,
                     !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
  if (!json_is_string(dtype))
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: \"dtype\" must be a string", name);
  if (!t3d_dtype_from_name(json_string_value(dtype), &dt))
    return t3d_error(T3D_ERR_UNSUPPORTED, "tensor %s: dtype \"%.20s\" is not supported (t3d reads F32, F16, BF16, "
                                          "I32, U8)", name, json_string_value(dtype));
  if (!json_is_array(shape))
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: \"shape\" must be an array of integers", name);
  ndim = json_array_size(shape);
  if (ndim > T3D_MAX_DIMS)
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: shape has %zu dimensions; t3d supports at most %d", name, ndim,
                     T3D_MAX_DIMS);
  for (size_t i = 0; i < ndim; i++) {
    const json_t *d = json_array_get(shape, i);
    if (!json_is_integer(d) || json_integer_value(d) < 0) {
      json_brief(d, got, sizeof got);
      return t3d_error(T3D_ERR_FORMAT, "tensor %s: shape[%zu] is %s; dimensions must be integers >= 0", name, i, got);
    }
    dims[i] = json_integer_value(d);
  }
  if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
      !json_is_integer(json_array_get(offs, 1)))
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: \"data_offsets\" must be [begin, end] integers", name);
  b = json_integer_value(json_array_get(offs, 0));
  en = json_integer_value(json_array_get(offs, 1));
  if (b < 0 || en < 0)
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: data_offsets [%lld, %lld] must not be negative", name, (long long)b,
                     (long long)en);
  if (b > en)
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: data_offsets begin %lld is after end %lld", name, (long long)b,
                     (long long)en);
  if ((unsigned long long)en > data_len)
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: data_offsets [%lld, %lld] run past the data section (%zu bytes)",
                     name, (long long)b, (long long)en, data_len);
  e->view = t3d_tensor_view(dt, (int)ndim, dims, NULL);
  if (!t3d_shape_nbytes(dt, (int)ndim, dims, &nbytes))
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: shape overflows the address space", name);
  e->begin = (size_t)b;
  e->end = (size_t)en;
  if (nbytes != e->end - e->begin) {
    char desc[128];
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: shape %s needs %zu bytes but data_offsets [%zu, %zu] span %zu", name,
                     t3d_tensor_describe(&e->view, desc, sizeof desc), nbytes, e->begin, e->end, e->end - e->begin);
  }
  esize = t3d_dtype_size(dt);
  if (e->begin % esize != 0)
    return t3d_error(T3D_ERR_FORMAT, "tensor %s: data offset %zu is not a multiple of the %s element size %zu", name,
                     e->begin, t3d_dtype_name(dt), esize);
  return T3D_OK;
}

static t3d_status check_overlaps(entry *tensors, size_t n)
{
  entry **by_offset;
  const entry *last = NULL; /* the non-empty tensor reaching furthest so far */
  t3d_status st = T3D_OK;
  if (n < 2)
    return T3D_OK;
  by_offset = malloc(n * sizeof *by_offset);
  if (!by_offset)
    return t3d_error(T3D_ERR_NOMEM, "out of memory checking %zu tensor ranges", n);
  for (size_t i = 0; i < n; i++)
    by_offset[i] = &tensors[i];
  qsort(by_offset, n, sizeof *by_offset, cmp_entry_offset);
  for (size_t i = 0; i < n; i++) {
    const entry *e = by_offset[i];
    if (e->begin == e->end)
      continue; /* an empty tensor holds no bytes to share */
    if (last && e->begin < last->end) {
      st = t3d_error(T3D_ERR_FORMAT, "tensors %s [%zu, %zu] and %s [%zu, %zu] overlap in the data section", last->name,
                     last->begin, last->end, e->name, e->begin, e->end);
      break;
    }
    if (!last || e->end > last->end)
      last = e;
  }
  free(by_offset);
  return st;
}

static t3d_status parse(t3d_modelfile *mf)
{
  json_error_t err;
  const uint8_t *data;
  size_t data_len, i = 0;
  uint64_t n;
  const char *key;
  json_t *value, *meta;
  t3d_status st;

  if (!host_is_little_endian())
    return t3d_error(T3D_ERR_UNSUPPORTED, "model files are little-endian and this host is not");
  if (mf->size < 8)
    return t3d_error(T3D_ERR_FORMAT, "file is %zu bytes, shorter than the 8-byte header length", mf->size);
  n = read_le64(mf->base);
  if (n > mf->size - 8)
    return t3d_error(T3D_ERR_FORMAT, "header length %llu runs beyond the end of the file (%zu bytes)",
                     (unsigned long long)n, mf->size);
  if (n > T3D_MODELFILE_MAX_HEADER)
    return t3d_error(T3D_ERR_FORMAT, "header length %llu exceeds t3d's cap of %zu bytes (100 MiB)",
                     (unsigned long long)n, T3D_MODELFILE_MAX_HEADER);
  mf->header_len = (size_t)n;
  data = mf->base + 8 + n;
  data_len = mf->size - 8 - (size_t)n;

  mf->header = json_loadb((const char *)mf->base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &err);
  if (!mf->header)
    return t3d_error(T3D_ERR_FORMAT, "header is not valid JSON: %s at line %d, column %d", err.text, err.line,
                     err.column);
  if (!json_is_object(mf->header))
    return t3d_error(T3D_ERR_FORMAT, "header must be a JSON object (tensor name -> entry)");

  meta = json_object_get(mf->header, "__metadata__");
  mf->ntensors = json_object_size(mf->header) - (meta ? 1 : 0);
  mf->tensors = calloc(mf->ntensors ? mf->ntensors : 1, sizeof *mf->tensors);
  if (!mf->tensors)
    return t3d_error(T3D_ERR_NOMEM, "out of memory for %zu tensor entries", mf->ntensors);
  json_object_foreach(mf->header, key, value) {
    if (strcmp(key, "__metadata__") == 0)
      continue;
    if ((st = parse_entry(&mf->tensors[i++], key, value, data_len)) != T3D_OK)
      return st;
  }
  if ((st = check_overlaps(mf->tensors, mf->ntensors)) != T3D_OK)
    return st;
  qsort(mf->tensors, mf->ntensors, sizeof *mf->tensors, cmp_entry_name);

  for (i = 0; i < mf->ntensors; i++) {
    entry *e = &mf->tensors[i];
    size_t nbytes = e->end - e->begin;
    const uint8_t *p = data + e->begin;
    if ((uintptr_t)p % t3d_dtype_size(e->view.dtype) != 0) {
      /* a foreign writer left the data section misaligned in memory: copy (documented in the header) */
      e->copy = t3d_aligned_alloc(nbytes);
      if (!e->copy)
        return t3d_error(T3D_ERR_NOMEM, "out of memory copying misaligned tensor %s (%zu bytes)", e->name, nbytes);
      memcpy(e->copy, p, nbytes);
      T3D_DEBUG("%s: tensor %s is misaligned in the mapping; using an aligned copy", mf->path, e->name);
      p = e->copy;
    }
    e->view.data = (void *)p; /* read-only mapping: the API hands out const views */
  }

  if ((st = check_metadata_object(meta)) != T3D_OK)
    return st;
  mf->nmeta = json_object_size(meta);
  mf->meta = calloc(mf->nmeta ? mf->nmeta : 1, sizeof *mf->meta);
  if (!mf->meta)
    return t3d_error(T3D_ERR_NOMEM, "out of memory for %zu metadata keys", mf->nmeta);
  i = 0;
  json_object_foreach(meta, key, value) mf->meta[i++] = (meta_entry){key, json_string_value(value)};
  qsort(mf->meta, mf->nmeta, sizeof *mf->meta, cmp_meta_key);
  return parse_t3d_meta(&mf->t3d, meta);
}

static t3d_status open_common(t3d_modelfile *mf)
{
  t3d_status st = parse(mf);
  if (st != T3D_OK)
    t3d_error_prefix("%s: ", mf->path);
  return st;
}

t3d_status t3d_modelfile_open_memory(t3d_modelfile **out, const void *buf, size_t len)
{
  t3d_modelfile *mf;
  t3d_status st;
  *out = NULL;
  if (!buf && len)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_modelfile_open_memory: NULL buffer of %zu bytes", len);
  mf = calloc(1, sizeof *mf);
  if (!mf || !(mf->path = strdup(MEMORY_NAME))) {
    free(mf);
    return t3d_error(T3D_ERR_NOMEM, "out of memory opening a model file");
  }
  mf->base = buf ? buf : (const uint8_t *)"";
  mf->size = len;
  st = open_common(mf);
  if (st != T3D_OK) {
    t3d_modelfile_close(mf);
    return st;
  }
  *out = mf;
  return T3D_OK;
}

t3d_status t3d_modelfile_open(t3d_modelfile **out, const char *path)
{
  t3d_modelfile *mf = NULL;
  struct stat sb;
  int fd = -1;
  t3d_status st = T3D_OK;

  *out = NULL;
  if (!path)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_modelfile_open: no path");
  mf = calloc(1, sizeof *mf);
  if (!mf || !(mf->path = strdup(path))) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory opening %s", path);
    goto cleanup;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    st = t3d_error(errno == ENOENT ? T3D_ERR_NOT_FOUND : T3D_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    goto cleanup;
  }
  if (fstat(fd, &sb) != 0) {
    st = t3d_error(T3D_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    goto cleanup;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = t3d_error(T3D_ERR_IO, "%s: not a regular file", path);
    goto cleanup;
  }
  mf->size = (size_t)sb.st_size;
  if (mf->size >= 8) {
    void *p = mmap(NULL, mf->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      st = t3d_error(T3D_ERR_IO, "%s: cannot map %zu bytes: %s", path, mf->size, strerror(errno));
      goto cleanup;
    }
    mf->base = p;
    mf->mapped = true;
  } else {
    mf->base = (const uint8_t *)""; /* parse() refuses it by its size before reading */
  }
  st = open_common(mf);

cleanup:
  if (fd >= 0)
    close(fd);
  if (st != T3D_OK) {
    t3d_modelfile_close(mf);
    return st;
  }
  *out = mf;
  return T3D_OK;
}

void t3d_modelfile_close(t3d_modelfile *mf)
{
  if (!mf)
    return;
  for (size_t i = 0; mf->tensors && i < mf->ntensors; i++)
    t3d_aligned_free(mf->tensors[i].copy);
  free(mf->tensors);
  free(mf->meta);
  meta_clear(&mf->t3d);
  json_decref(mf->header);
  if (mf->mapped)
    munmap((void *)mf->base, mf->size);
  free(mf->path);
  free(mf);
}

/* ---- accessors --------------------------------------------------------------------------- */

const char *t3d_modelfile_path(const t3d_modelfile *mf) { return mf->path; }
size_t t3d_modelfile_size(const t3d_modelfile *mf) { return mf->size; }
size_t t3d_modelfile_header_size(const t3d_modelfile *mf) { return mf->header_len; }
size_t t3d_modelfile_tensor_count(const t3d_modelfile *mf) { return mf->ntensors; }

const t3d_tensor *t3d_modelfile_tensor_at(const t3d_modelfile *mf, size_t i, const char **name)
{
  if (i >= mf->ntensors)
    return NULL;
  if (name)
    *name = mf->tensors[i].name;
  return &mf->tensors[i].view;
}

const t3d_tensor *t3d_modelfile_get(const t3d_modelfile *mf, const char *name)
{
  entry key = {.name = name};
  const entry *e;
  if (!name)
    return NULL;
  e = bsearch(&key, mf->tensors, mf->ntensors, sizeof *mf->tensors, cmp_entry_name);
  return e ? &e->view : NULL;
}

static bool dtype_matches(t3d_dtype have, t3d_dtype want)
{
  if (want == T3D_MODELFILE_ANY_FLOAT)
    return have == T3D_F32 || have == T3D_F16 || have == T3D_BF16;
  return have == want;
}

void t3d_modelfile_release_pages(const t3d_modelfile *mf, const t3d_tensor *t)
{
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t lo, hi, start, end;
  if (!mf || !t || !mf->mapped || page <= 0)
    return;
  lo = (uintptr_t)t->data;
  hi = lo + t3d_tensor_nbytes(t);
  if (lo < (uintptr_t)mf->base || hi > (uintptr_t)mf->base + mf->size)
    return; /* not in the mapping: a tensor copied for alignment */
  /* Only whole pages inside the tensor: neighbours keep theirs. */
  start = (lo + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
  end = hi & ~((uintptr_t)page - 1);
  if (end > start)
    madvise((void *)start, end - start, MADV_DONTNEED);
}

t3d_status t3d_modelfile_require(const t3d_modelfile *mf, const char *name, t3d_dtype dtype, int ndim,
                                 const int64_t *shape, const t3d_tensor **out)
{
  const t3d_tensor *t = t3d_modelfile_get(mf, name);
  t3d_tensor want = t3d_tensor_view(dtype == T3D_MODELFILE_ANY_FLOAT ? T3D_F32 : dtype, ndim, shape, NULL);
  char wdesc[128], hdesc[128];
  const char *any = dtype == T3D_MODELFILE_ANY_FLOAT ? " (or f16/bf16)" : "";
  if (out)
    *out = NULL;
  t3d_tensor_describe(&want, wdesc, sizeof wdesc);
  if (!t)
    return t3d_error(T3D_ERR_NOT_FOUND, "%s: tensor %s missing (expected %s%s)", mf->path, name ? name : "(null)",
                     wdesc, any);
  if (!dtype_matches(t->dtype, dtype) || !t3d_tensor_same_shape(t, &want))
    return t3d_error(T3D_ERR_SHAPE, "%s: tensor %s is %s, expected %s%s", mf->path, name,
                     t3d_tensor_describe(t, hdesc, sizeof hdesc), wdesc, any);
  if (out)
    *out = t;
  return T3D_OK;
}

const char *t3d_modelfile_metadata(const t3d_modelfile *mf, const char *key)
{
  meta_entry k = {.key = key};
  const meta_entry *e = key ? bsearch(&k, mf->meta, mf->nmeta, sizeof *mf->meta, cmp_meta_key) : NULL;
  return e ? e->value : NULL;
}

size_t t3d_modelfile_metadata_count(const t3d_modelfile *mf) { return mf->nmeta; }

const char *t3d_modelfile_metadata_at(const t3d_modelfile *mf, size_t i, const char **value)
{
  if (i >= mf->nmeta)
    return NULL;
  if (value)
    *value = mf->meta[i].value;
  return mf->meta[i].key;
}

int t3d_modelfile_format_version(const t3d_modelfile *mf) { return mf->t3d.format_version; }

const t3d_model_config *t3d_modelfile_config(const t3d_modelfile *mf)
{
  return mf->t3d.has_config ? &mf->t3d.config : NULL;
}

const json_t *t3d_modelfile_config_json(const t3d_modelfile *mf) { return mf->t3d.config_json; }

const char *const *t3d_modelfile_vocab(const t3d_modelfile *mf, size_t *count)
{
  *count = mf->t3d.nvocab;
  return mf->t3d.vocab;
}

const char *const *t3d_modelfile_classes(const t3d_modelfile *mf, size_t *count)
{
  *count = mf->t3d.nclasses;
  return mf->t3d.classes;
}

const t3d_finding *t3d_modelfile_findings(const t3d_modelfile *mf, size_t *count)
{
  *count = mf->t3d.nfindings;
  return mf->t3d.findings;
}

t3d_status t3d_modelfile_check_model(const t3d_modelfile *mf)
{
  const t3d_model_config *cfg = t3d_modelfile_config(mf);
  t3d_tensor_spec *specs = NULL;
  size_t n = 0;
  t3d_status st;
  if (!cfg)
    return t3d_error(T3D_ERR_FORMAT, "%s: no t3d.config in __metadata__: not a complete t3d model", mf->path);
  if (!mf->t3d.vocab)
    return t3d_error(T3D_ERR_FORMAT, "%s: no t3d.vocab in __metadata__: the text encoder needs its vocabulary",
                     mf->path);
  if (mf->t3d.nvocab != (size_t)cfg->text.vocab_size)
    return t3d_error(T3D_ERR_FORMAT, "%s: t3d.vocab has %zu tokens but model.text.vocab_size is %d", mf->path,
                     mf->t3d.nvocab, cfg->text.vocab_size);
  if (cfg->has_segmentation && mf->t3d.nclasses != (size_t)cfg->segmentation.classes)
    return t3d_error(T3D_ERR_FORMAT, "%s: t3d.classes has %zu names but model.segmentation.classes is %d", mf->path,
                     mf->t3d.nclasses, cfg->segmentation.classes);
  if ((st = t3d_model_config_tensors(cfg, &specs, &n)) != T3D_OK)
    return st;
  for (size_t i = 0; i < n && st == T3D_OK; i++)
    st = t3d_modelfile_require(mf, specs[i].name, T3D_MODELFILE_ANY_FLOAT, specs[i].ndim, specs[i].shape, NULL);
  free(specs);
  return st;
}

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct {
  char *name;
  t3d_tensor t; /* t.data is ours when owned_data */
  bool owned_data;
} wentry;

struct t3d_modelfile_writer {
  wentry *v;
  size_t n, cap;
  json_t *meta; /* object of strings */
  size_t fail_after; /* test hook: simulated write error after this many bytes (SIZE_MAX: never) */
  int fail_errno;
  size_t written;
};

t3d_status t3d_modelfile_writer_new(t3d_modelfile_writer **out)
{
  t3d_modelfile_writer *w = calloc(1, sizeof *w);
  char v[16];
  *out = NULL;
  if (!w || !(w->meta = json_object())) {
    free(w);
    return t3d_error(T3D_ERR_NOMEM, "out of memory creating a model file writer");
  }
  w->fail_after = SIZE_MAX;
  snprintf(v, sizeof v, "%d", T3D_MODELFILE_FORMAT_VERSION);
  if (json_object_set_new(w->meta, "t3d.format_version", json_string(v)) != 0) {
    t3d_modelfile_writer_free(w);
    return t3d_error(T3D_ERR_NOMEM, "out of memory creating a model file writer");
  }
  *out = w;
  return T3D_OK;
}

void t3d_modelfile_writer_free(t3d_modelfile_writer *w)
{
  if (!w)
    return;
  for (size_t i = 0; i < w->n; i++) {
    free(w->v[i].name);
    if (w->v[i].owned_data)
      t3d_aligned_free(w->v[i].t.data);
  }
  free(w->v);
  json_decref(w->meta);
  free(w);
}

void t3d_modelfile_writer_fail_after(t3d_modelfile_writer *w, size_t bytes, int err)
{
  w->fail_after = bytes;
  w->fail_errno = err;
}

t3d_status t3d_modelfile_writer_add(t3d_modelfile_writer *w, const char *name, const t3d_tensor *t, bool copy)
{
  wentry e = {0};
  size_t nbytes = 0;
  if (!name || !*name || strlen(name) > T3D_MODELFILE_MAX_NAME || strcmp(name, "__metadata__") == 0)
    return t3d_error(T3D_ERR_INVALID_ARG, "tensor name \"%.40s\" is not allowed (1..%d bytes, not __metadata__)",
                     name ? name : "(null)", T3D_MODELFILE_MAX_NAME);
  if (!t || (unsigned)t->dtype >= T3D_DTYPE_COUNT || t->ndim < 0 || t->ndim > T3D_MAX_DIMS ||
      !t3d_shape_nbytes(t->dtype, t->ndim, t->shape, &nbytes) || (nbytes && !t->data))
    return t3d_error(T3D_ERR_INVALID_ARG, "tensor %s: needs a known dtype, 0..%d dimensions >= 0 and data", name,
                     T3D_MAX_DIMS);
  {
    json_t *probe = json_string(name); /* NULL when not valid UTF-8 */
    if (!probe)
      return t3d_error(T3D_ERR_INVALID_ARG, "tensor name \"%.40s\" is not valid UTF-8", name);
    json_decref(probe);
  }
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->v[i].name, name) == 0)
      return t3d_error(T3D_ERR_INVALID_ARG, "tensor %s added twice", name);
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    wentry *v = realloc(w->v, cap * sizeof *v);
    if (!v)
      return t3d_error(T3D_ERR_NOMEM, "out of memory adding tensor %s", name);
    w->v = v;
    w->cap = cap;
  }
  e.t = *t;
  e.t.owned = false;
  if (!(e.name = strdup(name)))
    return t3d_error(T3D_ERR_NOMEM, "out of memory adding tensor %s", name);
  if (copy) {
    e.t.data = t3d_aligned_alloc(nbytes);
    if (!e.t.data) {
      free(e.name);
      return t3d_error(T3D_ERR_NOMEM, "out of memory copying tensor %s (%zu bytes)", name, nbytes);
    }
    if (nbytes)
      memcpy(e.t.data, t->data, nbytes);
    e.owned_data = true;
  }
  w->v[w->n++] = e;
  return T3D_OK;
}

t3d_status t3d_modelfile_writer_set_metadata(t3d_modelfile_writer *w, const char *key, const char *value)
{
  if (!key || !*key || !value)
    return t3d_error(T3D_ERR_INVALID_ARG, "metadata needs a non-empty key and a value");
  if (json_object_set_new(w->meta, key, json_string(value)) != 0)
    return t3d_error(T3D_ERR_INVALID_ARG, "metadata %.100s: key and value must be valid UTF-8", key);
  return T3D_OK;
}

t3d_status t3d_modelfile_writer_set_json(t3d_modelfile_writer *w, const char *key, const json_t *value)
{
  char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
  t3d_status st;
  if (!text)
    return t3d_error(T3D_ERR_NOMEM, "out of memory serialising metadata %.100s", key ? key : "(null)");
  st = t3d_modelfile_writer_set_metadata(w, key, text);
  free(text);
  return st;
}

/* Data order: largest element size first, then name. Contiguous tensors in this order keep every
 * tensor aligned to its element size without gaps (which other safetensors readers reject). */
static int cmp_wentry(const void *a, const void *b)
{
  const wentry *x = a, *y = b;
  size_t sx = t3d_dtype_size(x->t.dtype), sy = t3d_dtype_size(y->t.dtype);
  if (sx != sy)
    return sx > sy ? -1 : 1;
  return strcmp(x->name, y->name);
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* write() until done; the test hook turns the write at fail_after into an error. */
static int write_all(t3d_modelfile_writer *w, int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    size_t chunk = len > ((size_t)1 << 30) ? (size_t)1 << 30 : len;
    ssize_t got;
    if (w->fail_after != SIZE_MAX && w->written + chunk > w->fail_after) {
      errno = w->fail_errno;
      return -1;
    }
    got = write(fd, p, chunk);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      if (got == 0)
        errno = EIO;
      return -1;
    }
    p += got;
    len -= (size_t)got;
    w->written += (size_t)got;
  }
  return 0;
}

/* Builds the padded header text; *len includes the padding, so 8 + *len is a multiple of 64. */
static t3d_status build_header(t3d_modelfile_writer *w, char **out, size_t *len)
{
  json_t *h = json_object();
  char *text = NULL, *padded = NULL;
  size_t off = 0, tlen, plen;
  t3d_status st = T3D_OK;

  *out = NULL;
  if (!h || json_object_set(h, "__metadata__", w->meta) != 0)
    goto nomem;
  /* header members and data in the order of w->v, back to back */
  for (size_t i = 0; i < w->n; i++) {
    size_t nbytes = t3d_tensor_nbytes(&w->v[i].t);
    json_t *shape = json_array(), *e;
    for (int d = 0; shape && d < w->v[i].t.ndim; d++)
      json_array_append_new(shape, json_integer(w->v[i].t.shape[d]));
    e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", t3d_dtype_name(w->v[i].t.dtype), "shape", shape, "data_offsets",
                  (json_int_t)off, (json_int_t)(off + nbytes));
    if (!e || json_object_set_new(h, w->v[i].name, e) != 0)
      goto nomem;
    off += nbytes;
  }
  text = json_dumps(h, JSON_COMPACT);
  if (!text)
    goto nomem;
  tlen = strlen(text);
  if (tlen > T3D_MODELFILE_MAX_HEADER) {
    st = t3d_error(T3D_ERR_INVALID_ARG, "model file header would be %zu bytes, over the 100 MiB cap", tlen);
    goto cleanup;
  }
  plen = round_up(8 + tlen, DATA_ALIGN) - 8;
  padded = malloc(plen);
  if (!padded)
    goto nomem;
  memcpy(padded, text, tlen);
  memset(padded + tlen, ' ', plen - tlen);
  *out = padded;
  *len = plen;
  goto cleanup;
nomem:
  st = t3d_error(T3D_ERR_NOMEM, "out of memory building the model file header");
cleanup:
  free(text);
  json_decref(h);
  return st;
}

static t3d_status write_body(t3d_modelfile_writer *w, int fd, const char *header, size_t hlen)
{
  uint8_t lenbuf[8];
  for (int i = 0; i < 8; i++)
    lenbuf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
  if (write_all(w, fd, lenbuf, 8) != 0 || write_all(w, fd, header, hlen) != 0)
    return T3D_ERR_IO;
  for (size_t i = 0; i < w->n; i++) {
    size_t nbytes = t3d_tensor_nbytes(&w->v[i].t);
    if (nbytes && write_all(w, fd, w->v[i].t.data, nbytes) != 0)
      return T3D_ERR_IO;
  }
  return T3D_OK;
}

t3d_status t3d_modelfile_writer_write(t3d_modelfile_writer *w, const char *path)
{
  t3d_meta check;
  char *header = NULL, *tmp = NULL, *dir = NULL;
  const char *slash, *base;
  size_t hlen = 0;
  int fd = -1, dfd;
  t3d_status st;

  if (!path || !*path)
    return t3d_error(T3D_ERR_INVALID_ARG, "model file writer: no output path");
  /* refuse what the reader would refuse, before touching the disk */
  memset(&check, 0, sizeof check);
  st = check_metadata_object(w->meta);
  if (st == T3D_OK)
    st = parse_t3d_meta(&check, w->meta);
  meta_clear(&check);
  if (st != T3D_OK) {
    t3d_error_prefix("%s: not written: ", path);
    return st;
  }
  {
    /* rename() would silently replace a device (-o /dev/null as root) or fail late on a folder */
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode))
      return t3d_error(T3D_ERR_IO, "%s: exists and is not a regular file; refusing to replace it", path);
  }
  qsort(w->v, w->n, sizeof *w->v, cmp_wentry);
  if ((st = build_header(w, &header, &hlen)) != T3D_OK)
    goto cleanup;

  slash = strrchr(path, '/');
  base = slash ? slash + 1 : path;
  dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
  if (!dir || asprintf(&tmp, "%s/.%s.tmp-XXXXXX", dir, base) < 0) {
    tmp = NULL;
    st = t3d_error(T3D_ERR_NOMEM, "out of memory writing %s", path);
    goto cleanup;
  }
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    st = t3d_error(T3D_ERR_IO, "%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
    free(tmp);
    tmp = NULL; /* nothing to unlink */
    goto cleanup;
  }
  w->written = 0;
  if (write_body(w, fd, header, hlen) != T3D_OK) {
    st = t3d_error(T3D_ERR_IO, "%s: write failed after %zu bytes: %s", path, w->written, strerror(errno));
    goto cleanup;
  }
  if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
    st = t3d_error(T3D_ERR_IO, "%s: cannot flush to disk: %s", path, strerror(errno));
    goto cleanup;
  }
  if (close(fd) != 0) {
    fd = -1;
    st = t3d_error(T3D_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    goto cleanup;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    st = t3d_error(T3D_ERR_IO, "%s: cannot rename the finished temporary file into place: %s", path,
                   strerror(errno));
    goto cleanup;
  }
  free(tmp);
  tmp = NULL;
  /* make the rename itself durable; a failure here leaves a complete file, so only log it */
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (fsync(dfd) != 0 && errno != EINVAL)
      T3D_WARN("%s: fsync of folder %s failed: %s", path, dir, strerror(errno));
    close(dfd);
  }

cleanup:
  if (fd >= 0)
    close(fd);
  if (tmp) {
    unlink(tmp);
    free(tmp);
  }
  free(dir);
  free(header);
  return st;
}
