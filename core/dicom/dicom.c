/* DICOM series discovery and loading policy in C: folder/DICOMDIR walking, grouping into series,
 * slice sorting along the normal, spacing and tilt checks, rescale to modality values, padding.
 * It never talks to DCMTK itself (core/dicom/dicom_shim.cc does); the policy is documented in dicom.h. */
#include "core/dicom/dicom.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dicom/dicom_internal.h"
#include "core/base/log.h"

typedef struct {
  char *path;
  t3d_dcm_header h;
} instance;

typedef struct {
  t3d_dicom_series_info info;
  char key[512];    /* grouping key: the UID, or the fallback key for UID-less files */
  size_t *inst;     /* indices into scan->inst, in path order */
  size_t ninst, cap;
} series;

struct t3d_dicom_scan {
  instance *inst;
  size_t ninst, cap_inst;
  series *ser;
  size_t nser, cap_ser;
  char **notes;
  size_t nnotes, cap_notes;
  size_t nfiles;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap)
    return 1;
  size_t n = *cap ? *cap * 2 : 16;
  while (n < need)
    n *= 2;
  void *q = realloc(*p, n * elem);
  if (!q)
    return 0;
  *p = q;
  *cap = n;
  return 1;
}

static t3d_status add_note(t3d_dicom_scan *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static t3d_status add_note(t3d_dicom_scan *s, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (!grow((void **)&s->notes, &s->cap_notes, s->nnotes + 1, sizeof *s->notes) ||
      !(s->notes[s->nnotes] = strdup(buf)))
    return t3d_error(T3D_ERR_NOMEM, "out of memory recording a DICOM scan note");
  s->nnotes++;
  T3D_INFO("dicom: %s", buf);
  return T3D_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static uint64_t fnv1a(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static int contains_value(const char *multi, const char *word)
{
  /* Image Type values are backslash-separated code strings. */
  size_t n = strlen(word);
  for (const char *p = multi; *p;) {
    const char *e = strchr(p, '\\');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len && p[len - 1] == ' ')
      len--;
    if (len == n && strncmp(p, word, n) == 0)
      return 1;
    if (!e)
      break;
    p = e + 1;
  }
  return 0;
}

/* Replaces every byte that is not part of a well-formed UTF-8 sequence with '?'. */
static void make_utf8(char *str)
{
  unsigned char *p = (unsigned char *)str;
  while (*p) {
    int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
    int ok = n >= 0;
    for (int i = 1; ok && i <= n; i++)
      ok = (p[i] & 0xC0) == 0x80;
    if (!ok) {
      *p++ = '?';
      continue;
    }
    p += n + 1;
  }
}

static void make_meta_utf8(t3d_volume_meta *m)
{
  char *fields[] = {m->patient_name, m->patient_id, m->study_description, m->series_description, m->body_part,
                    m->accession_number, m->modality, m->series_number, m->patient_sex};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
    make_utf8(fields[i]);
}

/* ---- finding files ------------------------------------------------------------------------- */

typedef struct {
  char **v;
  size_t n, cap;
} strlist;

static void strlist_free(strlist *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

static t3d_status strlist_add(strlist *l, const char *a, const char *b)
{
  size_t la = strlen(a), lb = b ? strlen(b) : 0;
  char *p = malloc(la + lb + 2);
  if (!p || !grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) {
    free(p);
    return t3d_error(T3D_ERR_NOMEM, "out of memory listing files");
  }
  memcpy(p, a, la);
  if (b) {
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
  } else {
    p[la] = '\0';
  }
  l->v[l->n++] = p;
  return T3D_OK;
}

/* Regular files under dir, recursively; symbolic links to folders are not followed (loops). */
static t3d_status walk(const char *dir, strlist *out, t3d_dicom_scan *s, int depth)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  t3d_status st = T3D_OK;
  if (!d) {
    if (depth == 0)
      return t3d_error(T3D_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    return add_note(s, "%s: cannot open folder (%s), skipped", dir, strerror(errno));
  }
  while (st == T3D_OK && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    strlist one = {0};
    if ((st = strlist_add(&one, dir, e->d_name)) != T3D_OK)
      break;
    struct stat lst, fst;
    if (lstat(one.v[0], &lst) != 0) {
      st = add_note(s, "%s: cannot stat (%s), skipped", one.v[0], strerror(errno));
    } else if (S_ISDIR(lst.st_mode)) {
      st = depth < 64 ? walk(one.v[0], out, s, depth + 1) : add_note(s, "%s: folders nested too deep, skipped", one.v[0]);
    } else if (stat(one.v[0], &fst) == 0 && S_ISREG(fst.st_mode)) {
      st = strlist_add(out, one.v[0], NULL);
    }
    strlist_free(&one);
  }
  closedir(d);
  return st;
}

/* 1: Part-10 file ("DICM" at 128) or a bare dataset starting with a group 0002/0008 tag. */
static int looks_like_dicom(const char *path)
{
  unsigned char b[132];
  FILE *f = fopen(path, "rb");
  size_t n;
  if (!f)
    return 0;
  n = fread(b, 1, sizeof b, f);
  fclose(f);
  if (n == sizeof b && memcmp(b + 128, "DICM", 4) == 0)
    return 1;
  if (n >= 8) {
    unsigned group_le = b[0] | b[1] << 8, group_be = b[1] | b[0] << 8;
    return group_le == 0x0008 || group_le == 0x0002 || group_be == 0x0008;
  }
  return 0;
}

/* ---- grouping --------------------------------------------------------------------------- */

static void fallback_key(const t3d_dcm_header *h, char *key, size_t cap)
{
  const double *o = h->geom.has_iop ? h->geom.iop : (h->n_frame_geom && h->frame_geom[0].has_iop ? h->frame_geom[0].iop : NULL);
  char ori[128] = "none";
  if (o)
    snprintf(ori, sizeof ori, "%.3f,%.3f,%.3f,%.3f,%.3f,%.3f", o[0] + 0.0, o[1] + 0.0, o[2] + 0.0, o[3] + 0.0,
             o[4] + 0.0, o[5] + 0.0);
  snprintf(key, cap, "study=%s series#=%s for=%s iop=%s", h->meta.study_uid, h->meta.series_number,
           h->meta.frame_of_reference_uid, ori);
}

static t3d_status add_to_series(t3d_dicom_scan *s, size_t ii)
{
  instance *in = &s->inst[ii];
  char key[512];
  int missing = in->h.meta.series_uid[0] == '\0';
  if (missing)
    fallback_key(&in->h, key, sizeof key);
  else
    snprintf(key, sizeof key, "%s", in->h.meta.series_uid);

  size_t si = 0;
  for (; si < s->nser; si++)
    if (s->ser[si].info.uid_missing == missing && strcmp(s->ser[si].key, key) == 0)
      break;
  if (si == s->nser) {
    if (!grow((void **)&s->ser, &s->cap_ser, s->nser + 1, sizeof *s->ser))
      return t3d_error(T3D_ERR_NOMEM, "out of memory grouping series");
    series *se = &s->ser[s->nser++];
    memset(se, 0, sizeof *se);
    snprintf(se->key, sizeof se->key, "%s", key);
    se->info.meta = in->h.meta;
    se->info.uid_missing = missing;
    se->info.rows = in->h.rows;
    se->info.cols = in->h.cols;
    snprintf(se->info.transfer_syntax, sizeof se->info.transfer_syntax, "%s", in->h.transfer_syntax);
    if (missing) {
      snprintf(se->info.meta.series_uid, sizeof se->info.meta.series_uid, "no-uid:%016llx",
               (unsigned long long)fnv1a(key));
      t3d_status st = add_note(s, "%s: no Series Instance UID; grouped as %s by %s", in->path,
                               se->info.meta.series_uid, key);
      if (st != T3D_OK)
        return st;
    }
  }
  series *se = &s->ser[si];
  if (!grow((void **)&se->inst, &se->cap, se->ninst + 1, sizeof *se->inst))
    return t3d_error(T3D_ERR_NOMEM, "out of memory grouping series");
  se->inst[se->ninst++] = ii;
  se->info.instances++;
  se->info.slices += in->h.frames > 0 ? in->h.frames : 1;
  if (in->h.frames > 1)
    se->info.multiframe = 1;
  return T3D_OK;
}

/* Sorting instance indices by SOP Instance UID, then by index (= path order). */
static _Thread_local const t3d_dicom_scan *sort_scan;

static int cmp_sop(const void *a, const void *b)
{
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  int c = strcmp(sort_scan->inst[x].h.sop_instance_uid, sort_scan->inst[y].h.sop_instance_uid);
  return c ? c : (x < y ? -1 : x > y);
}

static int cmp_size(const void *a, const void *b)
{
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* Same SOP Instance UID twice in a series: the same image stored twice (copies, re-sends).
 * The first path is kept. O(n log n), so folders of many thousand files stay quick. */
static t3d_status drop_duplicate_sops(t3d_dicom_scan *s, series *se)
{
  size_t keep = 0;
  t3d_status st = T3D_OK;
  if (se->ninst < 2)
    return T3D_OK;
  sort_scan = s; /* per thread: qsort has no user pointer in C11 */
  qsort(se->inst, se->ninst, sizeof *se->inst, cmp_sop);
  for (size_t k = 0; k < se->ninst; k++) {
    const instance *in = &s->inst[se->inst[k]];
    if (keep && in->h.sop_instance_uid[0]) {
      const instance *prev = &s->inst[se->inst[keep - 1]];
      if (strcmp(prev->h.sop_instance_uid, in->h.sop_instance_uid) == 0) {
        if ((st = add_note(s, "%s: same SOP Instance UID as %s, kept once", in->path, prev->path)) != T3D_OK)
          return st;
        se->info.instances--;
        se->info.slices -= in->h.frames > 0 ? in->h.frames : 1;
        continue;
      }
    }
    se->inst[keep++] = se->inst[k];
  }
  se->ninst = keep;
  qsort(se->inst, se->ninst, sizeof *se->inst, cmp_size); /* back to path order */
  return T3D_OK;
}

static int cmp_series(const void *a, const void *b)
{
  const series *x = a, *y = b;
  int c = strcmp(x->info.meta.study_uid, y->info.meta.study_uid);
  if (c)
    return c;
  long nx = strtol(x->info.meta.series_number, NULL, 10), ny = strtol(y->info.meta.series_number, NULL, 10);
  if (nx != ny)
    return nx < ny ? -1 : 1;
  return strcmp(x->info.meta.series_uid, y->info.meta.series_uid);
}

/* One file's header as read ahead of the scan by a worker thread (see read_headers). */
typedef struct {
  int looks;            /* looks_like_dicom */
  t3d_status st;        /* of t3d_dcm_read_header when looks */
  char detail[512];     /* its message when st != T3D_OK */
  t3d_dcm_header h;     /* when st == T3D_OK; handed over to the scan or cleared */
} header_read;

static void read_one_header(const char *path, header_read *r)
{
  memset(r, 0, sizeof *r);
  r->looks = looks_like_dicom(path);
  if (!r->looks)
    return;
  r->st = t3d_dcm_read_header(path, &r->h);
  if (r->st != T3D_OK) {
    snprintf(r->detail, sizeof r->detail, "%s", t3d_error_detail());
    t3d_error_clear();
  }
}

typedef struct {
  char **paths;
  header_read *out;
  size_t n;
  atomic_size_t next;
} header_job;

static void *header_worker(void *arg)
{
  header_job *j = arg;
  for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;)
    read_one_header(j->paths[i], &j->out[i]);
  return NULL;
}

static int load_threads(size_t nfiles);

/* Reads the headers of n files with a few threads (DCMTK parses each file's header on its own);
 * the scan then files them in path order, so results do not depend on timing. */
static void read_headers(char **paths, size_t n, header_read *out)
{
  pthread_t tid[8];
  header_job j = {paths, out, n, 0};
  int nt = load_threads(n / 8), started = 0;
  atomic_init(&j.next, 0);
  for (int t = 1; t < nt; t++) {
    if (pthread_create(&tid[t], NULL, header_worker, &j) != 0)
      break;
    started++;
  }
  header_worker(&j);
  for (int t = 1; t <= started; t++)
    pthread_join(tid[t], NULL);
}

/* Files one file into a series, or notes why not. pre: its header read ahead (taken over), or
 * NULL to read it here. */
static t3d_status scan_file(t3d_dicom_scan *s, const char *path, int from_dicomdir, header_read *pre)
{
  header_read here;
  t3d_dcm_header h;
  t3d_status st;
  s->nfiles++;
  if (!pre)
    read_one_header(path, pre = &here);
  if (!pre->looks) {
    FILE *f = fopen(path, "rb");
    if (!f)
      return add_note(s, "%s: cannot open (%s), skipped", path, strerror(errno));
    fclose(f);
    return add_note(s, "%s: not DICOM, skipped", path);
  }
  st = pre->st;
  h = pre->h;
  memset(&pre->h, 0, sizeof pre->h); /* ownership moves to h */
  if (st == T3D_ERR_NOMEM)
    return t3d_error(st, "%s", pre->detail);
  if (st != T3D_OK)
    return add_note(s, "%s: unreadable DICOM, skipped (%s)", path, pre->detail);
  make_meta_utf8(&h.meta);
  make_utf8(h.image_type);
  if (h.is_dicomdir) {
    t3d_dcm_header_clear(&h);
    return add_note(s, from_dicomdir ? "%s: DICOMDIR referenced from a DICOMDIR, skipped"
                                     : "%s: DICOMDIR index, skipped (its folder is scanned directly)", path);
  }
  if (!h.has_pixel_data || h.rows <= 0 || h.cols <= 0) {
    st = add_note(s, "%s: not an image (SOP Class %s, %s), skipped", path, h.sop_class_uid[0] ? h.sop_class_uid : "none",
                  h.has_pixel_data ? "no Rows/Columns" : "no Pixel Data");
    t3d_dcm_header_clear(&h);
    return st;
  }
  if (h.damaged && (st = add_note(s, "%s: damaged after its header (%s); its series will refuse to load", path,
                                   h.damage)) != T3D_OK) {
    t3d_dcm_header_clear(&h);
    return st;
  }
  if (contains_value(h.image_type, "LOCALIZER")) {
    st = add_note(s, "%s: localizer (Image Type %s), left out", path, h.image_type);
    t3d_dcm_header_clear(&h);
    return st;
  }
  if (!grow((void **)&s->inst, &s->cap_inst, s->ninst + 1, sizeof *s->inst) || !(s->inst[s->ninst].path = strdup(path))) {
    t3d_dcm_header_clear(&h);
    return t3d_error(T3D_ERR_NOMEM, "out of memory listing DICOM instances");
  }
  s->inst[s->ninst].h = h;
  s->ninst++;
  return add_to_series(s, s->ninst - 1);
}

t3d_status t3d_dicom_scan_path(const char *path, t3d_dicom_scan **out)
{
  t3d_dicom_scan *s = NULL;
  strlist files = {0};
  header_read *pre = NULL;
  char **refs = NULL;
  size_t nrefs = 0;
  struct stat st_;
  t3d_status st = T3D_OK;

  *out = NULL;
  if (!path || !*path)
    return t3d_error(T3D_ERR_INVALID_ARG, "no DICOM path given");
  if (stat(path, &st_) != 0)
    return t3d_error(T3D_ERR_IO, "%s: %s", path, strerror(errno));
  s = calloc(1, sizeof *s);
  if (!s)
    return t3d_error(T3D_ERR_NOMEM, "out of memory starting a DICOM scan");

  if (S_ISDIR(st_.st_mode)) {
    if ((st = walk(path, &files, s, 0)) != T3D_OK)
      goto cleanup;
    if (files.n > 1) /* results must not depend on readdir order */
      qsort(files.v, files.n, sizeof *files.v, cmp_str);
    if (!(pre = calloc(files.n ? files.n : 1, sizeof *pre))) {
      st = t3d_error(T3D_ERR_NOMEM, "out of memory reading %zu headers", files.n);
      goto cleanup;
    }
    read_headers(files.v, files.n, pre);
    for (size_t i = 0; i < files.n && st == T3D_OK; i++)
      st = scan_file(s, files.v[i], 0, &pre[i]);
  } else {
    t3d_dcm_header h;
    int is_dir_index = 0;
    if (looks_like_dicom(path) && t3d_dcm_read_header(path, &h) == T3D_OK) {
      is_dir_index = h.is_dicomdir;
      t3d_dcm_header_clear(&h);
    }
    t3d_error_clear();
    if (!is_dir_index) {
      st = scan_file(s, path, 0, NULL);
    } else {
      char *base = strdup(path);
      if (!base) {
        st = t3d_error(T3D_ERR_NOMEM, "out of memory");
        goto cleanup;
      }
      char *slash = strrchr(base, '/');
      if (slash)
        *slash = '\0';
      else
        strcpy(base, ".");
      st = t3d_dcm_read_dicomdir(path, &refs, &nrefs);
      for (size_t i = 0; i < nrefs && st == T3D_OK; i++)
        st = strlist_add(&files, base, refs[i]);
      free(base);
      if (st != T3D_OK)
        goto cleanup;
      if (files.n > 1)
        qsort(files.v, files.n, sizeof *files.v, cmp_str);
      for (size_t i = 0; i < files.n && st == T3D_OK; i++) {
        if (stat(files.v[i], &st_) != 0) {
          s->nfiles++;
          st = add_note(s, "%s: referenced by DICOMDIR %s but missing (%s), skipped", files.v[i], path, strerror(errno));
        } else {
          st = scan_file(s, files.v[i], 1, NULL);
        }
      }
    }
  }
  for (size_t i = 0; i < s->nser && st == T3D_OK; i++)
    st = drop_duplicate_sops(s, &s->ser[i]);
  if (st != T3D_OK)
    goto cleanup;
  /* Sorting moves series structs; their instance lists move with them. */
  if (s->nser > 1)
    qsort(s->ser, s->nser, sizeof *s->ser, cmp_series);
  *out = s;
  s = NULL;

cleanup:
  for (size_t i = 0; pre && i < files.n; i++)
    t3d_dcm_header_clear(&pre[i].h);
  free(pre);
  strlist_free(&files);
  for (size_t i = 0; i < nrefs; i++)
    free(refs[i]);
  free(refs);
  t3d_dicom_scan_free(s);
  return st;
}

void t3d_dicom_scan_free(t3d_dicom_scan *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->ninst; i++) {
    free(s->inst[i].path);
    t3d_dcm_header_clear(&s->inst[i].h);
  }
  free(s->inst);
  for (size_t i = 0; i < s->nser; i++)
    free(s->ser[i].inst);
  free(s->ser);
  for (size_t i = 0; i < s->nnotes; i++)
    free(s->notes[i]);
  free(s->notes);
  free(s);
}

size_t t3d_dicom_scan_series_count(const t3d_dicom_scan *s) { return s ? s->nser : 0; }

const t3d_dicom_series_info *t3d_dicom_scan_series(const t3d_dicom_scan *s, size_t i)
{
  return s && i < s->nser ? &s->ser[i].info : NULL;
}

t3d_status t3d_dicom_scan_find_series(const t3d_dicom_scan *s, const char *uid, size_t *index)
{
  for (size_t i = 0; s && uid && i < s->nser; i++)
    if (strcmp(s->ser[i].info.meta.series_uid, uid) == 0) {
      *index = i;
      return T3D_OK;
    }
  return t3d_error(T3D_ERR_NOT_FOUND, "no series with UID %s among the %zu series found", uid ? uid : "(null)",
                   s ? s->nser : 0);
}

size_t t3d_dicom_scan_first_ct(const t3d_dicom_scan *s)
{
  size_t i = 0;
  while (s && i < s->nser && strcmp(s->ser[i].info.meta.modality, "CT") != 0) i++;
  return s ? i : 0;
}

size_t t3d_dicom_scan_file_count(const t3d_dicom_scan *s) { return s ? s->nfiles : 0; }
size_t t3d_dicom_scan_note_count(const t3d_dicom_scan *s) { return s ? s->nnotes : 0; }
const char *t3d_dicom_scan_note(const t3d_dicom_scan *s, size_t i) { return s && i < s->nnotes ? s->notes[i] : NULL; }

size_t t3d_dicom_series_file_count(const t3d_dicom_scan *s, size_t series)
{
  return s && series < s->nser ? s->ser[series].ninst : 0;
}

const char *t3d_dicom_series_file(const t3d_dicom_scan *s, size_t series, size_t i)
{
  if (!s || series >= s->nser || i >= s->ser[series].ninst)
    return NULL;
  return s->inst[s->ser[series].inst[i]].path;
}

/* ---- loading ---------------------------------------------------------------------------------- */

t3d_dicom_load_opts t3d_dicom_load_default_opts(void)
{
  t3d_dicom_load_opts o;
  o.spacing_tolerance = 0.1;
  o.max_inplane_offset_mm = 0.01;
  o.strict_geometry = 0;
  o.padding_value = NAN;
  return o;
}

typedef struct {
  size_t inst;     /* index into scan->inst */
  int frame;
  double pos[3];
  double d;        /* position projected on the slice normal */
  t3d_dcm_geom g;
  size_t slot;     /* z index in the volume */
} slice;

/* qsort has no user pointer in C11: the slice array being ordered by file (per thread). */
static _Thread_local const slice *sort_slices;

static int cmp_slice(const void *a, const void *b)
{
  const slice *x = a, *y = b;
  if (x->d != y->d)
    return x->d < y->d ? -1 : 1;
  if (x->inst != y->inst)
    return x->inst < y->inst ? -1 : 1;
  return x->frame - y->frame;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void cross(const double a[3], const double b[3], double out[3])
{
  out[0] = a[1] * b[2] - a[2] * b[1];
  out[1] = a[2] * b[0] - a[0] * b[2];
  out[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

static int normalize(double v[3])
{
  double n = sqrt(dot(v, v));
  if (!(n > 1e-6))
    return 0;
  for (int i = 0; i < 3; i++)
    v[i] /= n;
  return 1;
}

static int32_t stored_value(uint32_t word, const t3d_dcm_header *h)
{
  int shift = h->high_bit + 1 - h->bits_stored;
  uint32_t mask = h->bits_stored >= 32 ? 0xFFFFFFFFu : ((uint32_t)1 << h->bits_stored) - 1;
  uint32_t v = (word >> (shift > 0 ? shift : 0)) & mask;
  if (h->pixel_rep == 1 && h->bits_stored < 32 && (v >> (h->bits_stored - 1)) & 1)
    return (int32_t)((int64_t)v - ((int64_t)1 << h->bits_stored));
  return (int32_t)v;
}

/* Checks the pixel-format attributes loading relies on. */
static t3d_status check_format(const instance *in)
{
  const t3d_dcm_header *h = &in->h;
  if (h->damaged)
    return t3d_error(T3D_ERR_FORMAT, "%s: damaged or truncated after its header (%s); restore the file or remove it "
                     "knowing the series then misses a slice", in->path, h->damage);
  if (h->samples_per_pixel != 1)
    return t3d_error(T3D_ERR_UNSUPPORTED, "%s: %d samples per pixel (%s); t3d reads grey images only", in->path,
                     h->samples_per_pixel, h->photometric);
  if (strcmp(h->photometric, "MONOCHROME1") != 0 && strcmp(h->photometric, "MONOCHROME2") != 0 && h->photometric[0])
    return t3d_error(T3D_ERR_UNSUPPORTED, "%s: Photometric Interpretation %s; t3d reads MONOCHROME1/2", in->path,
                     h->photometric);
  if (h->bits_allocated != 8 && h->bits_allocated != 16)
    return t3d_error(T3D_ERR_UNSUPPORTED, "%s: Bits Allocated %d; t3d reads 8 or 16", in->path, h->bits_allocated);
  if (h->bits_stored < 1 || h->bits_stored > h->bits_allocated || h->high_bit >= h->bits_allocated ||
      h->high_bit < h->bits_stored - 1)
    return t3d_error(T3D_ERR_FORMAT, "%s: inconsistent Bits Stored %d / High Bit %d for Bits Allocated %d", in->path,
                     h->bits_stored, h->high_bit, h->bits_allocated);
  if (h->pixel_rep != 0 && h->pixel_rep != 1)
    return t3d_error(T3D_ERR_FORMAT, "%s: Pixel Representation %d", in->path, h->pixel_rep);
  if (h->frames < 1)
    return t3d_error(T3D_ERR_FORMAT, "%s: Number of Frames %d", in->path, h->frames);
  /* Uncompressed pixels must fit in the file: catches truncation before any big allocation. */
  struct stat sb;
  uint64_t need = (uint64_t)h->rows * (uint64_t)h->cols * (uint64_t)h->frames * (uint64_t)(h->bits_allocated / 8);
  if (t3d_dcm_xfer_is_native(h->transfer_syntax) && stat(in->path, &sb) == 0 && (uint64_t)sb.st_size < need)
    return t3d_error(T3D_ERR_FORMAT, "%s: truncated: %d frame(s) of %dx%d at %d bits need %llu bytes of Pixel Data, "
                     "the file has %llu bytes in all", in->path, h->frames, h->cols, h->rows, h->bits_allocated,
                     (unsigned long long)need, (unsigned long long)sb.st_size);
  return T3D_OK;
}

/* Builds the slice list of a series: one entry per frame with its position and transform. */
static t3d_status collect_slices(t3d_dicom_scan *s, const series *se, slice **out, size_t *nout)
{
  size_t n = 0, k = 0;
  slice *sl = NULL;
  t3d_status st = T3D_OK;
  for (size_t i = 0; i < se->ninst; i++)
    n += (size_t)s->inst[se->inst[i]].h.frames;
  sl = calloc(n ? n : 1, sizeof *sl);
  if (!sl)
    return t3d_error(T3D_ERR_NOMEM, "out of memory listing %zu slices", n);
  for (size_t i = 0; i < se->ninst; i++) {
    const instance *in = &s->inst[se->inst[i]];
    const t3d_dcm_header *h = &in->h;
    if ((st = check_format(in)) != T3D_OK)
      goto fail;
    for (int f = 0; f < h->frames; f++, k++) {
      slice *x = &sl[k];
      x->inst = se->inst[i];
      x->frame = f;
      x->g = h->frame_geom ? h->frame_geom[f] : h->geom;
      if (h->frame_geom && !x->g.has_rescale && h->geom.has_rescale) { /* rescale only at top level */
        x->g.slope = h->geom.slope, x->g.intercept = h->geom.intercept, x->g.has_rescale = 1;
      }
      if (!x->g.has_iop || !x->g.has_ipp) {
        st = t3d_error(T3D_ERR_FORMAT, "%s%s: no Image Position/Orientation (Patient)%s; cannot place it in 3-D", in->path,
                       h->frames > 1 ? " (a frame)" : "", h->frame_geom ? " in its functional groups" : "");
        goto fail;
      }
      if (!x->g.has_spacing) {
        st = t3d_error(T3D_ERR_FORMAT, "%s: no Pixel Spacing; cannot give the volume a size in mm", in->path);
        goto fail;
      }
      /* Non-finite values would break sorting and every later check. */
      int finite = isfinite(x->g.slope) && isfinite(x->g.intercept);
      for (int a = 0; a < 6; a++)
        finite = finite && isfinite(x->g.iop[a]) && (a >= 3 || isfinite(x->g.ipp[a]));
      if (!finite || !(x->g.pixel_spacing[0] > 0 && x->g.pixel_spacing[1] > 0) || !isfinite(x->g.pixel_spacing[0]) ||
          !isfinite(x->g.pixel_spacing[1])) {
        st = t3d_error(T3D_ERR_FORMAT, "%s: non-finite position, orientation or rescale, or a Pixel Spacing that is not "
                       "positive", in->path);
        goto fail;
      }
      memcpy(x->pos, x->g.ipp, sizeof x->pos);
      if (h->frames > 1 && !h->frame_geom) {
        double r[3] = {x->g.iop[0], x->g.iop[1], x->g.iop[2]}, c[3] = {x->g.iop[3], x->g.iop[4], x->g.iop[5]}, nn[3];
        double off;
        cross(r, c, nn);
        normalize(nn);
        if (h->n_grid_offsets == h->frames)
          off = h->grid_offsets[f];
        else if (h->spacing_between_slices > 0)
          off = f * h->spacing_between_slices;
        else {
          st = t3d_error(T3D_ERR_FORMAT, "%s: %d frames without per-frame positions, Grid Frame Offset Vector or "
                         "Spacing Between Slices; cannot place the frames in 3-D", in->path, h->frames);
          goto fail;
        }
        for (int a = 0; a < 3; a++)
          x->pos[a] = h->geom.ipp[a] + off * nn[a];
        if (f == 0 && (st = add_note(s, "%s: classic multi-frame; frames placed along the slice normal by %s", in->path,
                                     h->n_grid_offsets == h->frames ? "Grid Frame Offset Vector"
                                                                    : "Spacing Between Slices")) != T3D_OK)
          goto fail;
      }
    }
  }
  *out = sl;
  *nout = n;
  return T3D_OK;
fail:
  free(sl);
  return st;
}

/* Orientation, size and spacing must agree across the series; names the first file that differs. */
static t3d_status check_consistent(const t3d_dicom_scan *s, const char *uid, const slice *sl, size_t n)
{
  const instance *i0 = &s->inst[sl[0].inst];
  for (size_t k = 1; k < n; k++) {
    const instance *ik = &s->inst[sl[k].inst];
    if (ik->h.rows != i0->h.rows || ik->h.cols != i0->h.cols)
      return t3d_error(T3D_ERR_UNSUPPORTED, "series %s mixes image sizes: %s is %dx%d, %s is %dx%d (columns x rows); "
                       "refusing", uid, i0->path, i0->h.cols, i0->h.rows, ik->path, ik->h.cols, ik->h.rows);
    for (int a = 0; a < 6; a++)
      if (fabs(sl[k].g.iop[a] - sl[0].g.iop[a]) > 1e-4)
        return t3d_error(T3D_ERR_UNSUPPORTED, "series %s mixes orientations: %s has %.4f\\%.4f\\%.4f\\%.4f\\%.4f\\%.4f, "
                         "%s has %.4f\\%.4f\\%.4f\\%.4f\\%.4f\\%.4f; refusing", uid, i0->path, sl[0].g.iop[0],
                         sl[0].g.iop[1], sl[0].g.iop[2], sl[0].g.iop[3], sl[0].g.iop[4], sl[0].g.iop[5], ik->path,
                         sl[k].g.iop[0], sl[k].g.iop[1], sl[k].g.iop[2], sl[k].g.iop[3], sl[k].g.iop[4], sl[k].g.iop[5]);
    for (int a = 0; a < 2; a++)
      if (fabs(sl[k].g.pixel_spacing[a] - sl[0].g.pixel_spacing[a]) > 1e-3)
        return t3d_error(T3D_ERR_UNSUPPORTED, "series %s mixes pixel spacings: %s has %g\\%g mm, %s has %g\\%g mm; refusing",
                         uid, i0->path, sl[0].g.pixel_spacing[0], sl[0].g.pixel_spacing[1], ik->path,
                         sl[k].g.pixel_spacing[0], sl[k].g.pixel_spacing[1]);
  }
  return T3D_OK;
}

/* Where a series' slices lie: distinct positions along the normal (slots), each slot's in-plane
 * shift from the first (gantry tilt) and the steps between slots. Owned arrays; plan_free. */
typedef struct {
  size_t nslots;
  double *d;          /* measured position of each slot along the normal, ascending */
  double *z;          /* where the grid takes each slot to lie: d when resampled along z, else
                         d[0] + k*median (steps within the tolerance count as the median) */
  double *off;        /* 2 per slot: in-plane shift from slot 0 in pixels (columns, rows) */
  double med, min_step, max_step;
  int tilted, uneven; /* the series needs an in-plane / along-normal resampling */
  double tilt_deg;    /* signed; as Gantry/Detector Tilt says when it agrees with the positions */
  double max_shift_mm;
} plan;

static void plan_free(plan *p)
{
  free(p->d);
  free(p->z);
  free(p->off);
  memset(p, 0, sizeof *p);
}

/* Sorts along the normal, assigns z slots (same position -> same slot), measures tilt and steps
 * and refuses what no regular grid can honestly hold (see dicom.h). */
static t3d_status place_slices(const t3d_dicom_scan *s, const char *uid, const t3d_dicom_load_opts *o, slice *sl,
                               size_t n, const double row[3], const double col[3], const double nrm[3], plan *pl)
{
  double *steps = NULL, *sorted = NULL;
  size_t m = 0, *first = NULL;
  t3d_status st = T3D_OK;
  const double sx = sl[0].g.pixel_spacing[1], sy = sl[0].g.pixel_spacing[0];
  memset(pl, 0, sizeof *pl);
  for (size_t k = 0; k < n; k++)
    sl[k].d = dot(sl[k].pos, nrm);
  qsort(sl, n, sizeof *sl, cmp_slice);
  pl->d = malloc(n * sizeof *pl->d);
  pl->z = malloc(n * sizeof *pl->z);
  pl->off = malloc(2 * n * sizeof *pl->off);
  steps = malloc(n * sizeof *steps);
  sorted = malloc(n * sizeof *sorted);
  first = calloc(n, sizeof *first);
  if (!pl->d || !pl->z || !pl->off || !steps || !sorted || !first) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory sorting slices");
    goto cleanup;
  }
  for (size_t k = 0; k < n; k++) {
    if (k == 0 || sl[k].d - pl->d[m - 1] >= 1e-3) {
      first[m] = k;
      pl->d[m++] = sl[k].d;
    }
    sl[k].slot = m - 1;
  }
  pl->nslots = m;
  /* Slices at one depth must coincide: else the series mixes fields of view. */
  for (size_t k = 1; k < n; k++) {
    if (sl[k].slot != sl[k - 1].slot)
      continue;
    double w[3], t = sl[k].d - sl[k - 1].d;
    for (int a = 0; a < 3; a++)
      w[a] = sl[k].pos[a] - sl[k - 1].pos[a] - t * nrm[a];
    double off = sqrt(dot(w, w));
    if (off > o->max_inplane_offset_mm) {
      st = t3d_error(T3D_ERR_UNSUPPORTED, "series %s: %s and %s lie at the same depth z=%.2f but %.2f mm apart in-plane "
                     "(the series mixes fields of view); refusing", uid, s->inst[sl[k - 1].inst].path,
                     s->inst[sl[k].inst].path, sl[k].d, off);
      goto cleanup;
    }
  }
  /* Tilt: positions off the line through the first one along the normal. A gantry tilt shifts
   * each slice in-plane in proportion to its distance along the normal: fit that shear (least
   * squares through slot 0) and refuse positions that stray from it (not a tilt). */
  {
    double worst = 0, along = 0, shear[3] = {0, 0, 0}, tt = 0;
    size_t wk = 0;
    const slice *s0 = &sl[first[0]];
    for (size_t k = 0; k < m; k++) {
      const slice *x = &sl[first[k]];
      double w[3], t = x->d - s0->d;
      for (int a = 0; a < 3; a++)
        w[a] = x->pos[a] - s0->pos[a] - t * nrm[a];
      pl->off[2 * k] = dot(w, row) / sx;
      pl->off[2 * k + 1] = dot(w, col) / sy;
      double off = sqrt(dot(w, w));
      if (off > worst)
        worst = off, along = t, wk = first[k];
      for (int a = 0; a < 3; a++)
        shear[a] += t * w[a];
      tt += t * t;
    }
    if (worst > o->max_inplane_offset_mm) {
      double deg = atan2(worst, fabs(along)) * 180.0 / M_PI;
      if (o->strict_geometry) {
        st = t3d_error(T3D_ERR_UNSUPPORTED,
                       "series %s: slice positions step off the slice normal (gantry/detector tilt of about %.1f "
                       "degrees: %s lies %.2f mm sideways of the first slice, %.2f mm along the normal); strict "
                       "geometry: t3d does not resample tilted series; refusing",
                       uid, deg, s->inst[sl[wk].inst].path, worst, along);
        goto cleanup;
      }
      double resid = 0, lim = fmax(o->max_inplane_offset_mm, 0.1 * fmin(sx, sy));
      size_t rk = 0;
      for (int a = 0; a < 3; a++)
        shear[a] /= tt;
      for (size_t k = 0; k < m; k++) {
        const slice *x = &sl[first[k]];
        double w[3], t = x->d - s0->d;
        for (int a = 0; a < 3; a++)
          w[a] = x->pos[a] - s0->pos[a] - t * nrm[a] - t * shear[a];
        if (sqrt(dot(w, w)) > resid)
          resid = sqrt(dot(w, w)), rk = first[k];
      }
      if (resid > lim) {
        st = t3d_error(T3D_ERR_UNSUPPORTED,
                       "series %s: slice positions step off the slice normal irregularly (%s lies %.2f mm off the "
                       "shear a gantry tilt of %.1f degrees would give); not a gantry tilt t3d can undo; refusing",
                       uid, s->inst[sl[rk].inst].path, resid, atan(sqrt(dot(shear, shear))) * 180.0 / M_PI);
        goto cleanup;
      }
      /* Sign: the shear's direction along the columns (the usual tilt axis), unless the scanner's
       * Gantry/Detector Tilt agrees in size, whose sign convention then wins. */
      double meas = atan(sqrt(dot(shear, shear))) * 180.0 / M_PI;
      const t3d_dcm_header *h0 = &s->inst[s0->inst].h;
      pl->tilt_deg = dot(shear, col) < 0 ? -meas : meas;
      if (h0->has_gantry_tilt && fabs(fabs(h0->gantry_tilt) - meas) < 0.5 && h0->gantry_tilt != 0)
        pl->tilt_deg = h0->gantry_tilt < 0 ? -meas : meas;
      pl->tilted = 1;
      pl->max_shift_mm = worst;
    } else {
      memset(pl->off, 0, 2 * m * sizeof *pl->off);
    }
  }
  /* Steps along the normal: a step of about twice the median or more, and twice its neighbours,
   * is a missing slice (refused); others off the median by more than the tolerance are
   * resampled to the smallest. */
  pl->med = 0;
  for (size_t k = 0; k < m; k++)
    pl->z[k] = pl->d[k];
  if (m >= 2) {
    for (size_t k = 0; k + 1 < m; k++)
      steps[k] = sorted[k] = pl->d[k + 1] - pl->d[k];
    qsort(sorted, m - 1, sizeof *sorted, cmp_double);
    double med = (m - 1) % 2 ? sorted[(m - 1) / 2] : 0.5 * (sorted[(m - 1) / 2 - 1] + sorted[(m - 1) / 2]);
    pl->med = med;
    pl->min_step = sorted[0];
    pl->max_step = sorted[m - 2];
    size_t bad = 0, gaps = 0, first_bad = 0, first_gap = 0;
    for (size_t k = 0; k + 1 < m; k++) {
      /* A gap is about twice the median and twice its neighbours: a protocol that changes its
       * step (thin slices, then thicker ones) has a neighbour of the same size. */
      double g = (2.0 - o->spacing_tolerance) * med, prev = k > 0 ? steps[k - 1] : 0, next = k + 2 < m ? steps[k + 1] : 0;
      if (steps[k] >= g && steps[k] >= (2.0 - o->spacing_tolerance) * fmax(prev, next)) {
        if (!gaps++)
          first_gap = k;
      }
      if (fabs(steps[k] - med) > o->spacing_tolerance * med) {
        if (!bad++)
          first_bad = k;
      }
    }
    if (gaps || (bad && o->strict_geometry)) {
      size_t f = gaps ? first_gap : first_bad, cnt = gaps ? gaps : bad;
      char more[64] = "";
      if (cnt > 1)
        snprintf(more, sizeof more, gaps ? " (%zu gaps in all)" : " (%zu uneven steps in all)", cnt);
      st = t3d_error(T3D_ERR_UNSUPPORTED,
                     "series %s has %zu slices but %s of %.2f mm between z=%.2f and z=%.2f, expected %.2f mm%s; "
                     "refusing%s", uid, m, steps[f] > med ? "a gap" : "a step", steps[f], pl->d[f], pl->d[f + 1],
                     med, more, gaps ? "" : " (strict geometry: uneven steps are not resampled)");
      goto cleanup;
    }
    if (bad) {
      /* Resampling to the smallest step keeps the finest detail acquired; refuse grids that
       * would invent many times more slices than were acquired. */
      double span = pl->d[m - 1] - pl->d[0];
      if (span / pl->min_step + 1 > 4.0 * (double)m + 16) {
        st = t3d_error(T3D_ERR_UNSUPPORTED,
                       "series %s: slice steps from %.2f to %.2f mm; resampling %zu slices to the smallest step "
                       "would make %.0f; refusing", uid, pl->min_step, pl->max_step, m, span / pl->min_step + 1);
        goto cleanup;
      }
      pl->uneven = 1;
    } else {
      for (size_t k = 0; k < m; k++)
        pl->z[k] = pl->d[0] + (double)k * med;
    }
  }
cleanup:
  free(steps);
  free(sorted);
  free(first);
  return st;
}

/* ---- pixels to values ----------------------------------------------------------------------- */

static int host_little_endian(void)
{
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

/* How one frame's stored values become modality values. */
typedef struct {
  const t3d_dcm_header *h;
  int bits_allocated;   /* as decoded (a decoder may have changed it) */
  int invert;           /* MONOCHROME1 without rescale */
  int32_t lo, hi;       /* stored range, for the inversion */
  int pad;              /* Pixel Padding Value present */
  long pad_lo, pad_hi;  /* padding range, stored-value space */
  double slope, intercept;
} value_map;

static void value_map_init(value_map *vm, const t3d_dcm_header *h, const slice *x, int bits_allocated)
{
  memset(vm, 0, sizeof *vm);
  vm->h = h;
  vm->bits_allocated = bits_allocated;
  vm->invert = strcmp(h->photometric, "MONOCHROME1") == 0 && !x->g.has_rescale;
  vm->lo = h->pixel_rep ? -(1 << (h->bits_stored - 1)) : 0;
  vm->hi = h->pixel_rep ? (1 << (h->bits_stored - 1)) - 1 : (int32_t)((1u << h->bits_stored) - 1);
  vm->slope = x->g.slope;
  vm->intercept = x->g.intercept;
  if (h->has_padding) {
    long pv = h->padding_value, pl = h->has_padding_range ? h->padding_range_limit : h->padding_value;
    /* US-encoded padding for signed pixels (VR of 'xs' elements read as US) */
    if (h->pixel_rep == 1 && h->bits_allocated == 16) {
      if (pv > 32767 && pv < 65536)
        pv -= 65536;
      if (pl > 32767 && pl < 65536)
        pl -= 65536;
    }
    vm->pad = 1;
    vm->pad_lo = pv < pl ? pv : pl;
    vm->pad_hi = pv < pl ? pl : pv;
  }
}

/* Padding -> NAN (counted in *npad), MONOCHROME1 inversion, rescale. */
static inline float map_value(const value_map *vm, int32_t sv, size_t *npad)
{
  if (vm->pad && sv >= vm->pad_lo && sv <= vm->pad_hi) {
    (*npad)++;
    return NAN;
  }
  if (vm->invert)
    sv = vm->hi + vm->lo - sv;
  return (float)(sv * vm->slope + vm->intercept);
}

/* 16-bit words to values in blocks of 8 (fixed-length inner loops the compiler turns into SIMD
 * at -O2) and a scalar tail. With slope 1 and an integer intercept the sum is exact in int32
 * and then in float, as the double path would give; otherwise double, as map_value computes. */
#define T3D_CONVERT_16(T)                                                                       \
  static void convert_##T(const T *w, size_t n, double sl, double ic, float *dst)             \
  {                                                                                           \
    size_t i = 0;                                                                             \
    if (sl == 1.0 && ic == floor(ic) && fabs(ic) <= 1048576.0) {                              \
      int32_t add = (int32_t)ic;                                                              \
      for (; i + 8 <= n; i += 8)                                                              \
        for (int k = 0; k < 8; k++)                                                           \
          dst[i + k] = (float)((int32_t)w[i + k] + add);                                      \
      for (; i < n; i++)                                                                      \
        dst[i] = (float)((int32_t)w[i] + add);                                                \
      return;                                                                                 \
    }                                                                                         \
    for (; i + 8 <= n; i += 8)                                                                \
      for (int k = 0; k < 8; k++)                                                             \
        dst[i + k] = (float)(w[i + k] * sl + ic);                                             \
    for (; i < n; i++)                                                                        \
      dst[i] = (float)(w[i] * sl + ic);                                                       \
  }
T3D_CONVERT_16(int16_t)
T3D_CONVERT_16(uint16_t)

/* One frame of native words (bits_allocated bits, host order) to values. The plain 16-bit case
 * (all bits stored, no padding, no inversion: nearly every CT) takes the block loops above. */
static void convert_words(const value_map *vm, const uint8_t *p, size_t npix, float *dst, size_t *npad)
{
  const t3d_dcm_header *h = vm->h;
  if (vm->bits_allocated == 16 && h->bits_stored == 16 && !vm->pad && !vm->invert) {
    if (h->pixel_rep)
      convert_int16_t((const int16_t *)(const void *)p, npix, vm->slope, vm->intercept, dst);
    else
      convert_uint16_t((const uint16_t *)(const void *)p, npix, vm->slope, vm->intercept, dst);
    return;
  }
  t3d_dcm_header hh = *h;
  hh.bits_allocated = vm->bits_allocated;
  if (vm->bits_allocated == 16) {
    const uint16_t *w = (const uint16_t *)(const void *)p;
    for (size_t i = 0; i < npix; i++)
      dst[i] = map_value(vm, stored_value(w[i], &hh), npad);
  } else {
    for (size_t i = 0; i < npix; i++)
      dst[i] = map_value(vm, stored_value(p[i], &hh), npad);
  }
}

/* Per-thread buffers, grown as needed and freed by scratch_free. */
typedef struct {
  uint8_t *buf;   /* a native file's element header and Pixel Data; an RLE frame's words and planes */
  size_t cap;
  int32_t *vals;  /* one JPEG 2000 frame's stored values */
  uint8_t *j2k;   /* one JPEG 2000 frame's codestream */
  size_t j2k_cap;
} scratch;

static void scratch_free(scratch *sc)
{
  free(sc->buf);
  free(sc->vals);
  free(sc->j2k);
  memset(sc, 0, sizeof *sc);
}

static int scratch_grow(uint8_t **p, size_t *cap, size_t need)
{
  if (need <= *cap)
    return 1;
  uint8_t *q = realloc(*p, need);
  if (!q)
    return 0;
  *p = q;
  *cap = need;
  return 1;
}

/* Reads the Pixel Data of a file DCMTK found to be native little endian with Pixel Data last
 * (see native_pixel_length), checking its element header first. 1: *raw holds it; 0: not as
 * expected (the caller asks DCMTK instead); -1: error set. */
static int read_native(const instance *in, scratch *sc, const uint8_t **raw, size_t *raw_size, t3d_status *st)
{
  const t3d_dcm_header *h = &in->h;
  size_t hdr = h->native_explicit_vr ? 12 : 8, len = (size_t)h->native_pixel_length;
  struct stat sb;
  int fd = open(in->path, O_RDONLY | O_CLOEXEC), rc = 0;
  if (fd < 0) {
    *st = t3d_error(T3D_ERR_IO, "%s: cannot open: %s", in->path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < (uint64_t)len + hdr)
    goto done; /* changed since the scan: let DCMTK say what is wrong */
  if (!scratch_grow(&sc->buf, &sc->cap, len + hdr)) {
    *st = t3d_error(T3D_ERR_NOMEM, "%s: out of memory for %zu bytes of pixels", in->path, len);
    rc = -1;
    goto done;
  }
  off_t at = (off_t)((uint64_t)sb.st_size - len - hdr);
  size_t got = 0;
  while (got < len + hdr) {
    ssize_t r = pread(fd, sc->buf + got, len + hdr - got, at + (off_t)got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      goto done;
    got += (size_t)r;
  }
  const uint8_t *b = sc->buf;
  uint32_t l32 = (uint32_t)b[hdr - 4] | (uint32_t)b[hdr - 3] << 8 | (uint32_t)b[hdr - 2] << 16 | (uint32_t)b[hdr - 1] << 24;
  int tag_ok = b[0] == 0xE0 && b[1] == 0x7F && b[2] == 0x10 && b[3] == 0x00 && l32 == len;
  if (tag_ok && h->native_explicit_vr)
    tag_ok = b[4] == 'O' && (b[5] == 'W' || b[5] == 'B') && b[6] == 0 && b[7] == 0;
  if (tag_ok) {
    *raw = sc->buf + hdr;
    *raw_size = len;
    rc = 1;
  }
done:
  close(fd);
  return rc;
}

static t3d_status check_decoded_bits(const instance *in, int bits)
{
  const t3d_dcm_header *h = &in->h;
  if (h->high_bit >= bits || h->bits_stored > bits)
    return t3d_error(T3D_ERR_FORMAT, "%s: Bits Stored %d do not fit the decoded %d-bit pixels", in->path, h->bits_stored,
                     bits);
  return T3D_OK;
}

/* Decodes the frames of one file listed in idx (cnt slices of sl) into targets[c] (NULL: skip
 * that frame): native Pixel Data directly, anything else through DCMTK or OpenJPEG. */
static t3d_status load_file(const instance *in, const slice *sl, const size_t *idx, size_t cnt, float *const *targets,
                            size_t npix, scratch *sc, size_t *npad)
{
  const t3d_dcm_header *h = &in->h;
  t3d_dcm_pixels px;
  size_t *fstart = NULL, *fcount = NULL;
  const uint8_t *raw = NULL;
  size_t raw_size = 0;
  int bits = h->bits_allocated, native = 0;
  t3d_status st = T3D_OK;
  memset(&px, 0, sizeof px);

  if (h->native_pixel_length && host_little_endian() &&
      (native = read_native(in, sc, &raw, &raw_size, &st)) < 0)
    return st;
  if (!native) {
    if ((st = t3d_dcm_read_pixels(in->path, &px)) != T3D_OK)
      goto cleanup;
    if ((px.is_j2k || px.is_rle) && (st = t3d_dcm_frames_from_fragments(&px, h->frames, &fstart, &fcount)) != T3D_OK) {
      t3d_error_prefix("%s: ", in->path);
      goto cleanup;
    }
    raw = px.raw;
    raw_size = px.raw_size;
    if (!px.is_j2k && !px.is_rle)
      bits = px.bits_allocated;
  }
  int encap = px.is_j2k || px.is_rle;
  if (!encap) {
    size_t fbytes = npix * (size_t)(bits / 8);
    if ((st = check_decoded_bits(in, bits)) != T3D_OK)
      goto cleanup;
    if (raw_size < (size_t)h->frames * fbytes) {
      st = t3d_error(T3D_ERR_FORMAT, "%s: Pixel Data has %zu bytes; %d frame(s) of %dx%d at %d bits need %zu "
                     "(truncated?)", in->path, raw_size, h->frames, h->cols, h->rows, bits, (size_t)h->frames * fbytes);
      goto cleanup;
    }
  } else if (px.is_rle ? !scratch_grow(&sc->buf, &sc->cap, npix * 4)
                       : !sc->vals && !(sc->vals = malloc(npix * sizeof *sc->vals))) {
    st = t3d_error(T3D_ERR_NOMEM, "%s: out of memory decoding a frame", in->path);
    goto cleanup;
  }
  for (size_t c = 0; c < cnt; c++) {
    const slice *x = &sl[idx[c]];
    value_map vm;
    if (!targets[c])
      continue;
    value_map_init(&vm, h, x, bits);
    if (!encap) {
      convert_words(&vm, raw + (size_t)x->frame * npix * (size_t)(bits / 8), npix, targets[c], npad);
      continue;
    }
    size_t total = 0, f = (size_t)x->frame;
    for (size_t i = 0; i < fcount[f]; i++)
      total += px.frags[fstart[f] + i].size;
    if (!scratch_grow(&sc->j2k, &sc->j2k_cap, total ? total : 1)) {
      st = t3d_error(T3D_ERR_NOMEM, "%s: out of memory for a %zu-byte frame", in->path, total);
      goto cleanup;
    }
    size_t at = 0;
    for (size_t i = 0; i < fcount[f]; i++) {
      memcpy(sc->j2k + at, px.frags[fstart[f] + i].data, px.frags[fstart[f] + i].size);
      at += px.frags[fstart[f] + i].size;
    }
    if (px.is_rle) {
      if ((st = check_decoded_bits(in, h->bits_allocated)) != T3D_OK ||
          (st = t3d_dcm_rle_decode(sc->j2k, total, npix, h->bits_allocated, sc->buf, sc->buf + npix * 2)) != T3D_OK) {
        t3d_error_prefix("%s frame %d: ", in->path, x->frame + 1);
        goto cleanup;
      }
      convert_words(&vm, sc->buf, npix, targets[c], npad);
      continue;
    }
    if ((st = t3d_dcm_j2k_decode(sc->j2k, total, h->rows, h->cols, h->bits_stored, h->pixel_rep, sc->vals)) != T3D_OK) {
      t3d_error_prefix("%s frame %d: ", in->path, x->frame + 1);
      goto cleanup;
    }
    for (size_t p = 0; p < npix; p++)
      targets[c][p] = map_value(&vm, sc->vals[p], npad);
  }
cleanup:
  t3d_dcm_pixels_clear(&px);
  free(fstart);
  free(fcount);
  return st;
}

/* The files of a series decoded by a few threads, each file by one thread: every slot's first
 * slice (its owner) goes straight into its plane. */
typedef struct {
  const t3d_dicom_scan *s;
  const series *se;
  const slice *sl;
  const size_t *order;      /* slice indices grouped by file (se->inst order), frames ascending */
  const size_t *fstart;     /* order[fstart[i] .. fstart[i+1]) are file i's slices */
  const unsigned char *own; /* per slice: 1 when it owns its slot */
  float *planes;            /* nslots planes of npix */
  size_t npix;
  atomic_size_t next;       /* next file to take */
  atomic_int stop;
  atomic_size_t npad;
  pthread_mutex_t mu;
  size_t err_file;          /* smallest file index that failed (SIZE_MAX: none) */
  t3d_status err;
  char detail[1024];
} load_job;

static void *load_worker(void *arg)
{
  load_job *j = arg;
  scratch sc;
  float **targets = NULL;
  size_t tcap = 0, npad = 0;
  memset(&sc, 0, sizeof sc);
  for (;;) {
    size_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->se->ninst || atomic_load(&j->stop))
      break;
    size_t a = j->fstart[i], cnt = j->fstart[i + 1] - a;
    t3d_status st = T3D_OK;
    if (cnt > tcap) {
      float **t = realloc(targets, cnt * sizeof *t);
      if (!t)
        st = t3d_error(T3D_ERR_NOMEM, "out of memory loading series %s", j->se->info.meta.series_uid);
      else
        targets = t, tcap = cnt;
    }
    for (size_t c = 0; st == T3D_OK && c < cnt; c++) {
      size_t k = j->order[a + c];
      targets[c] = j->own[k] ? j->planes + j->sl[k].slot * j->npix : NULL;
    }
    if (st == T3D_OK)
      st = load_file(&j->s->inst[j->se->inst[i]], j->sl, j->order + a, cnt, targets, j->npix, &sc, &npad);
    if (st != T3D_OK) {
      pthread_mutex_lock(&j->mu);
      if (i < j->err_file) {
        j->err_file = i;
        j->err = st;
        snprintf(j->detail, sizeof j->detail, "%s", t3d_error_detail());
      }
      pthread_mutex_unlock(&j->mu);
      atomic_store(&j->stop, 1);
      break;
    }
  }
  atomic_fetch_add(&j->npad, npad);
  scratch_free(&sc);
  free(targets);
  return NULL;
}

static int load_threads(size_t nfiles)
{
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  size_t t = ncpu > 0 ? (size_t)ncpu : 1;
  if (t > 8)
    t = 8;
  if (t > nfiles)
    t = nfiles;
  return t ? (int)t : 1;
}

/* Decodes every slot's owner into planes with a few threads; *npad counts padding voxels. */
static t3d_status load_planes(load_job *j, size_t *npad)
{
  pthread_t tid[8];
  int nt = load_threads(j->se->ninst), started = 0;
  for (int t = 1; t < nt; t++) {
    if (pthread_create(&tid[t], NULL, load_worker, j) != 0)
      break; /* fewer threads is still correct */
    started++;
  }
  load_worker(j);
  for (int t = 1; t <= started; t++)
    pthread_join(tid[t], NULL);
  *npad = atomic_load(&j->npad);
  if (j->err_file != SIZE_MAX)
    return t3d_error(j->err, "%s", j->detail);
  return T3D_OK;
}

static int cmp_by_file(const void *a, const void *b)
{
  const slice *x = sort_slices + *(const size_t *)a, *y = sort_slices + *(const size_t *)b;
  if (x->inst != y->inst)
    return x->inst < y->inst ? -1 : 1;
  return x->frame - y->frame;
}

/* Fill for padding and for grid points outside every slice: the caller's padding value, else
 * -1024 for CT (or the minimum when lower), else the minimum of the values. */
static float fill_value(const t3d_dicom_load_opts *o, const char *modality, float vmin)
{
  if (!isnan(o->padding_value))
    return o->padding_value;
  if (strcmp(modality, "CT") == 0)
    return vmin < -1024.0f ? vmin : -1024.0f;
  return isfinite(vmin) ? vmin : 0.0f;
}

static float min_value(const float *v, size_t n)
{
  float m = INFINITY;
  for (size_t p = 0; p < n; p++)
    if (v[p] < m) /* false for NAN */
      m = v[p];
  return m;
}

t3d_status t3d_dicom_load_series(t3d_dicom_scan *s, size_t index, const t3d_dicom_load_opts *opts, t3d_volume **out)
{
  t3d_dicom_load_opts o = opts ? *opts : t3d_dicom_load_default_opts();
  slice *sl = NULL;
  size_t n = 0;
  double row[3], col[3], nrm[3];
  t3d_volume *v = NULL;
  float *planes = NULL, *tmp = NULL;
  size_t *order = NULL, *fstart = NULL;
  unsigned char *own = NULL;
  plan pl;
  size_t npad = 0;
  int mono1_kept = 0, mono1_inverted = 0, mu_init = 0, regular_planes = 1; /* planes is v->data (or NULL) */
  load_job job;
  scratch sc;
  t3d_status st = T3D_OK;

  memset(&pl, 0, sizeof pl);
  memset(&sc, 0, sizeof sc);
  *out = NULL;
  if (!s || index >= s->nser)
    return t3d_error(T3D_ERR_NOT_FOUND, "series index %zu out of range (%zu series found)", index, s ? s->nser : 0);
  const series *se = &s->ser[index];
  const char *uid = se->info.meta.series_uid;
  if (se->ninst == 0)
    return t3d_error(T3D_ERR_NOT_FOUND, "series %s has no images", uid);

  if ((st = collect_slices(s, se, &sl, &n)) != T3D_OK)
    goto cleanup;
  if ((st = check_consistent(s, uid, sl, n)) != T3D_OK)
    goto cleanup;
  memcpy(row, sl[0].g.iop, sizeof row);
  memcpy(col, sl[0].g.iop + 3, sizeof col);
  if (!normalize(row) || !normalize(col) || fabs(dot(row, col)) > 1e-3) {
    st = t3d_error(T3D_ERR_FORMAT, "%s: Image Orientation (Patient) is not two orthogonal unit vectors",
                   s->inst[sl[0].inst].path);
    goto cleanup;
  }
  cross(row, col, nrm);
  normalize(nrm);
  if ((st = place_slices(s, uid, &o, sl, n, row, col, nrm, &pl)) != T3D_OK)
    goto cleanup;

  const t3d_dcm_header *h0 = &s->inst[sl[0].inst].h;
  int rows = h0->rows, cols = h0->cols;
  size_t npix = (size_t)rows * (size_t)cols, nz = pl.nslots;
  int regular = !pl.tilted && !pl.uneven;
  t3d_dcm_stack stack = {cols, rows, nz, pl.z, pl.off};
  t3d_dcm_grid grid = {0, 0, cols, rows, (int64_t)nz, pl.d[0], pl.med};
  if (!regular)
    t3d_dcm_grid_for(&stack, pl.uneven ? pl.min_step : pl.med, &grid);
  if ((double)npix * (double)nz > 2147483648.0 || (double)grid.nx * (double)grid.ny * (double)grid.nz > 2147483648.0) {
    st = t3d_error(T3D_ERR_UNSUPPORTED, "series %s would be %dx%dx%zu voxels; refusing volumes over 2^31 voxels", uid,
                   cols, rows, nz);
    goto cleanup;
  }
  /* A regular series is decoded straight into the volume; others into planes resampled after. */
  if ((st = t3d_volume_new_uninit(&v, grid.nx, grid.ny, grid.nz)) != T3D_OK)
    goto cleanup;
  if (regular) {
    planes = v->data;
  } else if (regular_planes = 0, !(planes = t3d_aligned_alloc(npix * nz * sizeof *planes))) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory loading series %s (%zu MiB of slices)", uid,
                   (npix * nz * sizeof *planes) >> 20);
    goto cleanup;
  }
  v->spacing[0] = sl[0].g.pixel_spacing[1]; /* Pixel Spacing is row spacing \ column spacing */
  v->spacing[1] = sl[0].g.pixel_spacing[0];
  v->spacing[2] = nz > 1 ? grid.dz : (h0->slice_thickness > 0 ? h0->slice_thickness : 1.0);
  for (int a = 0; a < 3; a++) {
    v->dir[a][0] = row[a];
    v->dir[a][1] = col[a];
    v->dir[a][2] = nrm[a];
    v->origin[a] = sl[0].pos[a] + (double)grid.lo_i * v->spacing[0] * row[a] + (double)grid.lo_j * v->spacing[1] * col[a];
  }
  v->meta = se->info.meta;

  order = malloc(n * sizeof *order);
  fstart = malloc((se->ninst + 1) * sizeof *fstart);
  own = calloc(n, 1);
  if (!order || !fstart || !own) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory loading series %s", uid);
    goto cleanup;
  }
  for (size_t k = 0; k < n; k++) {
    order[k] = k;
    own[k] = k == 0 || sl[k].slot != sl[k - 1].slot;
    int mono1 = strcmp(s->inst[sl[k].inst].h.photometric, "MONOCHROME1") == 0;
    mono1_inverted |= mono1 && !sl[k].g.has_rescale;
    mono1_kept |= mono1 && sl[k].g.has_rescale;
  }
  sort_slices = sl;
  qsort(order, n, sizeof *order, cmp_by_file);
  for (size_t i = 0, k = 0; i <= se->ninst; i++) {
    fstart[i] = k;
    while (i < se->ninst && k < n && sl[order[k]].inst == se->inst[i])
      k++;
  }

  memset(&job, 0, sizeof job);
  job.s = s, job.se = se, job.sl = sl, job.order = order, job.fstart = fstart, job.own = own;
  job.planes = planes, job.npix = npix, job.err_file = SIZE_MAX;
  atomic_init(&job.next, 0);
  atomic_init(&job.stop, 0);
  atomic_init(&job.npad, 0);
  if (pthread_mutex_init(&job.mu, NULL) != 0) {
    st = t3d_error(T3D_ERR_NOMEM, "cannot create a mutex loading series %s", uid);
    goto cleanup;
  }
  mu_init = 1;
  if ((st = load_planes(&job, &npad)) != T3D_OK)
    goto cleanup;

  /* Further slices at an owned position: kept once when their values are the same. */
  for (size_t i = 0; i < se->ninst; i++) {
    size_t a = fstart[i], cnt = fstart[i + 1] - a, dups = 0, ignored = 0;
    float *targets[1];
    for (size_t c = 0; c < cnt; c++)
      dups += !own[order[a + c]];
    if (!dups)
      continue;
    if (!tmp && !(tmp = malloc(npix * sizeof *tmp))) {
      st = t3d_error(T3D_ERR_NOMEM, "out of memory loading series %s", uid);
      goto cleanup;
    }
    const instance *in = &s->inst[se->inst[i]];
    for (size_t c = 0; c < cnt; c++) {
      const slice *x = &sl[order[a + c]];
      if (own[order[a + c]])
        continue;
      targets[0] = tmp;
      if ((st = load_file(in, sl, order + a + c, 1, targets, npix, &sc, &ignored)) != T3D_OK)
        goto cleanup;
      size_t ow = order[a + c];
      while (!own[ow])
        ow--; /* the owner is the first slice of the slot in sorted order */
      const float *dst = planes + x->slot * npix;
      for (size_t p = 0; p < npix; p++)
        if (!(dst[p] == tmp[p] || (isnan(dst[p]) && isnan(tmp[p])))) {
          st = t3d_error(T3D_ERR_UNSUPPORTED, "series %s: %s (frame %d) and %s (frame %d) lie at the same position "
                         "z=%.2f but differ in pixel values; refusing", uid, s->inst[sl[ow].inst].path,
                         sl[ow].frame + 1, in->path, x->frame + 1, x->d);
          goto cleanup;
        }
      if ((st = add_note(s, "%s (frame %d): same position and pixels as %s (frame %d), kept once", in->path,
                         x->frame + 1, s->inst[sl[ow].inst].path, sl[ow].frame + 1)) != T3D_OK)
        goto cleanup;
    }
  }

  float fill = NAN;
  if (npad) {
    size_t nv = npix * nz;
    fill = fill_value(&o, se->info.meta.modality, min_value(planes, nv));
    for (size_t p = 0; p < nv; p++)
      if (isnan(planes[p]))
        planes[p] = fill;
    if ((st = add_note(s, "series %s: %zu voxels of Pixel Padding Value set to %g", uid, npad, fill)) != T3D_OK)
      goto cleanup;
  }
  if (!regular) {
    char tilt[200] = "", steps[200] = "";
    if (isnan(fill))
      fill = fill_value(&o, se->info.meta.modality, min_value(planes, npix * nz));
    t3d_dcm_resample(&stack, planes, &grid, fill, v->data);
    if (pl.tilted)
      snprintf(tilt, sizeof tilt, "gantry tilt %.1f\u00b0 corrected (slices shifted in-plane by up to %.2f mm onto a "
               "%lldx%lld grid)", pl.tilt_deg, pl.max_shift_mm, (long long)grid.nx, (long long)grid.ny);
    if (pl.uneven)
      snprintf(steps, sizeof steps, "slices resampled from uneven steps %.2f\u2013%.2f mm to %.2f mm (%zu to %lld "
               "slices, linear)", pl.min_step, pl.max_step, grid.dz, nz, (long long)grid.nz);
    snprintf(v->geometry_note, sizeof v->geometry_note, "%s%s%s", tilt, tilt[0] && steps[0] ? "; " : "", steps);
    if ((st = add_note(s, "series %s: %s", uid, v->geometry_note)) != T3D_OK)
      goto cleanup;
  }
  if (mono1_inverted && (st = add_note(s, "series %s: MONOCHROME1 without rescale; stored values inverted so that "
                                       "larger means brighter", uid)) != T3D_OK)
    goto cleanup;
  if (mono1_kept && (st = add_note(s, "series %s: MONOCHROME1 with Rescale Slope/Intercept; rescaled values kept "
                                   "as they are (display inversion is the viewer's)", uid)) != T3D_OK)
    goto cleanup;
  *out = v;
  v = NULL;

cleanup:
  if (mu_init)
    pthread_mutex_destroy(&job.mu);
  if (!regular_planes)
    t3d_aligned_free(planes);
  scratch_free(&sc);
  free(sl);
  free(tmp);
  free(order);
  free(fstart);
  free(own);
  plan_free(&pl);
  t3d_volume_free(v);
  return st;
}

t3d_status t3d_dicom_load_series_uid(t3d_dicom_scan *s, const char *uid, const t3d_dicom_load_opts *opts,
                                     t3d_volume **out)
{
  size_t index = 0;
  *out = NULL;
  t3d_status st = t3d_dicom_scan_find_series(s, uid, &index);
  if (st != T3D_OK)
    return st;
  return t3d_dicom_load_series(s, index, opts, out);
}
