/* Chest-abdomen phantom cases, part 2 (see phantom.h): the acquisition grid drawn from the
 * seed, sampling the anatomy (phantom_case.c) on it with blur and noise, truth from what the
 * grid shows, JSON, and the files of one case. Not the anatomy and not the report wording. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dicom/nifti.h"
#include "core/model/phantom_case_internal.h"
#include "core/model/phantom_internal.h"

struct t3d_phantom_case {
  uint64_t seed;
  t3d_volume *vol;
  uint8_t *labels;
  char *report, *truth_json, *acq_json;
  t3d_dicom_storage storage;
  t3d_dicom_syntax syntax;
  t3d_phantom_orientation orientation;
  pc_truth truth[T3D_PHANTOM_NFINDINGS];
};

static const char *const label_names[T3D_PHANTOM_NLABELS] = {"background", "body",   "lung",   "heart", "liver",
                                                              "spleen",     "kidney", "bone",   "lesion"};
static const char *const finding_names[T3D_PHANTOM_NFINDINGS] = {
  "pulmonary nodule", "pleural effusion", "pneumothorax", "consolidation", "emphysema",      "cardiomegaly",
  "liver lesion",     "renal cyst",       "splenomegaly", "ascites",       "lymphadenopathy"};

const char *const *t3d_phantom_label_names(size_t *count)
{
  if (count)
    *count = T3D_PHANTOM_NLABELS;
  return label_names;
}

const char *const *t3d_phantom_finding_names(size_t *count)
{
  if (count)
    *count = T3D_PHANTOM_NFINDINGS;
  return finding_names;
}

t3d_phantom_case_params t3d_phantom_case_default_params(void)
{
  t3d_phantom_case_params p;
  memset(&p, 0, sizeof p);
  p.orientation = -1;
  p.storage = -1;
  p.syntax = -1;
  p.noise_hu = -1;
  p.coverage = -1;
  p.contrast = -1;
  p.table = -1;
  for (int f = 0; f < T3D_PHANTOM_NFINDINGS; f++)
    p.findings[f] = -1;
  return p;
}

/* ---- a growable string ------------------------------------------------------------------------ */

typedef struct {
  char *s;
  size_t len, cap;
  int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
  if (b->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->failed = 1;
      return;
    }
    b->s = s, b->cap = cap;
  }
}

static void sb_json_string(sbuf *b, const char *s)
{
  sb_printf(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      sb_printf(b, "\\%c", c);
    else if (c == '\n')
      sb_printf(b, "\\n");
    else if (c < 0x20)
      sb_printf(b, "\\u%04x", c);
    else
      sb_printf(b, "%c", c);
  }
  sb_printf(b, "\"");
}

static char *sb_take(sbuf *b)
{
  if (b->failed || !b->s) {
    free(b->s);
    return NULL;
  }
  return b->s;
}

/* ---- acquisition -------------------------------------------------------------------------------- */

static const char *side_name(int side) { return side == 2 ? "bilateral" : side < 0 ? "right" : "left"; }
static const char *const severity_names[3] = {"mild", "moderate", "severe"};
static const char *const amount_names[3] = {"small", "moderate", "large"};

static const char *orientation_name(t3d_phantom_orientation o)
{
  static const char *const n[] = {"axial", "sagittal", "coronal", "oblique"};
  return n[o];
}

static const char *const coverage_names[3] = {"chest-abdomen", "chest", "abdomen"};

const char *t3d_phantom_coverage_name(t3d_phantom_coverage c)
{
  return (unsigned)c < 3 ? coverage_names[c] : "unknown";
}

int t3d_phantom_coverage_parse(const char *name, t3d_phantom_coverage *out)
{
  for (int i = 0; i < 3; i++)
    if (name && strcmp(name, coverage_names[i]) == 0) {
      *out = (t3d_phantom_coverage)i;
      return 0;
    }
  return -1;
}

static double pick(uint64_t *r, const double *v, int n) { return v[(int)(t3d_phantom_uniform(r) * n) % n]; }

static void make_uids(t3d_volume_meta *m, uint64_t seed)
{
  uint64_t r = t3d_phantom_stream(seed, 0x7a3d5c1bull);
  unsigned __int128 x = ((unsigned __int128)t3d_phantom_next_u64(&r) << 64) | t3d_phantom_next_u64(&r);
  x &= ~((unsigned __int128)0xf << 76), x |= (unsigned __int128)0x4 << 76; /* UUID version 4 */
  x &= ~((unsigned __int128)0x3 << 62), x |= (unsigned __int128)0x2 << 62; /* RFC 4122 variant */
  char digits[48];
  int n = 0;
  do {
    digits[n++] = (char)('0' + (int)(x % 10));
    x /= 10;
  } while (x && n < 47);
  char base[T3D_UID_MAX] = "2.25.";
  for (int i = 0; i < n; i++)
    base[5 + i] = digits[n - 1 - i];
  base[5 + n] = '\0';
  snprintf(m->study_uid, sizeof m->study_uid, "%s", base);
  snprintf(m->series_uid, sizeof m->series_uid, "%s.1", base);
  snprintf(m->frame_of_reference_uid, sizeof m->frame_of_reference_uid, "%s.2", base);
}

static void make_meta(t3d_volume_meta *m, uint64_t seed, const char *orientation, double slice_mm, int coverage,
                      int contrast)
{
  uint64_t r = t3d_phantom_stream(seed, 0x13579bdfull);
  memset(m, 0, sizeof *m);
  make_uids(m, seed);
  int day = (int)(seed % 3650);
  int y = 2015 + day / 365, doy = day % 365, mon = doy / 31 + 1, dd = doy % 28 + 1;
  snprintf(m->study_date, sizeof m->study_date, "%04d%02d%02d", y, mon > 12 ? 12 : mon, dd);
  snprintf(m->study_time, sizeof m->study_time, "%02d%02d%02d", 7 + (int)(seed % 11), (int)(seed % 60),
           (int)((seed / 60) % 60));
  int age = 30 + (int)(t3d_phantom_uniform(&r) * 55);
  snprintf(m->patient_birth_date, sizeof m->patient_birth_date, "%04d0101", y - age);
  snprintf(m->patient_sex, sizeof m->patient_sex, "%s", t3d_phantom_uniform(&r) < 0.5 ? "F" : "M");
  snprintf(m->patient_name, sizeof m->patient_name, "T3D^Phantom^%llu", (unsigned long long)seed);
  snprintf(m->patient_id, sizeof m->patient_id, "T3D-PH-%llu", (unsigned long long)seed);
  snprintf(m->accession_number, sizeof m->accession_number, "PH%llu", (unsigned long long)(seed % 100000000000ull));
  snprintf(m->study_description, sizeof m->study_description, "CT %s %s",
           coverage == T3D_PHANTOM_CHEST     ? "CHEST"
           : coverage == T3D_PHANTOM_ABDOMEN ? "ABDOMEN"
                                             : "CHEST ABDOMEN",
           contrast ? "WITH CONTRAST" : "WITHOUT CONTRAST");
  snprintf(m->series_description, sizeof m->series_description, "t3d phantom %s %.3g mm", orientation, slice_mm);
  snprintf(m->series_number, sizeof m->series_number, "%d", 2 + (int)(seed % 5));
  snprintf(m->modality, sizeof m->modality, "CT");
  snprintf(m->body_part, sizeof m->body_part, "%s", coverage == T3D_PHANTOM_ABDOMEN ? "ABDOMEN" : "CHEST");
}

typedef struct {
  int64_t n, nz;
  double px, dz, centre[3], rot; /* centre of the grid in LPS; patient rotation about S */
  t3d_phantom_orientation orientation;
  t3d_dicom_storage storage;
  t3d_dicom_syntax syntax;
  double noise;
  t3d_phantom_coverage coverage;
} pc_grid;

static t3d_status choose_grid(const t3d_phantom_case_params *p, const pc_anatomy *A, uint64_t seed, pc_grid *g)
{
  uint64_t rs = t3d_phantom_stream(seed, 0xd1342543ull), *r = &rs;
  static const double matrices[] = {256, 320, 384, 448, 512};
  static const double slices[] = {0.625, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0};
  memset(g, 0, sizeof *g);
  g->n = p->matrix > 0 ? p->matrix : (int64_t)pick(r, matrices, 5);
  double fov = p->fov_mm > 0 ? p->fov_mm : 340 + 140 * t3d_phantom_uniform(r);
  double need = 2 * fmax(A->a_chest, A->a_abd) + 30;
  if (p->fov_mm <= 0 && fov < need)
    fov = need;
  g->px = fov / (double)g->n;
  g->dz = p->slice_mm > 0 ? p->slice_mm : pick(r, slices, 8);
  double u = t3d_phantom_uniform(r);
  g->orientation = p->orientation >= 0 ? (t3d_phantom_orientation)p->orientation
                   : u < 0.7          ? T3D_PHANTOM_AXIAL
                   : u < 0.8          ? T3D_PHANTOM_CORONAL
                   : u < 0.9          ? T3D_PHANTOM_SAGITTAL
                                      : T3D_PHANTOM_OBLIQUE;
  u = t3d_phantom_uniform(r);
  g->storage = p->storage >= 0 ? (t3d_dicom_storage)p->storage
               : u < 0.5       ? T3D_DICOM_STORE_S16
               : u < 0.75      ? T3D_DICOM_STORE_U16
                               : T3D_DICOM_STORE_U12;
  static const t3d_dicom_syntax syntaxes[10] = {
    T3D_DICOM_SYNTAX_EXPLICIT_LE,   T3D_DICOM_SYNTAX_EXPLICIT_LE,   T3D_DICOM_SYNTAX_EXPLICIT_LE,
    T3D_DICOM_SYNTAX_EXPLICIT_LE,   T3D_DICOM_SYNTAX_IMPLICIT_LE,   T3D_DICOM_SYNTAX_DEFLATED,
    T3D_DICOM_SYNTAX_RLE,           T3D_DICOM_SYNTAX_RLE,           T3D_DICOM_SYNTAX_JPEG_LOSSLESS,
    T3D_DICOM_SYNTAX_JPEGLS_LOSSLESS};
  g->syntax = p->syntax >= 0 ? (t3d_dicom_syntax)p->syntax : syntaxes[(int)(t3d_phantom_uniform(r) * 10) % 10];
  g->noise = p->noise_hu >= 0 ? p->noise_hu : 8 + 12 * t3d_phantom_uniform(r);
  g->rot = (t3d_phantom_uniform(r) - 0.5) * 0.14;
  if (g->n < 8 || g->n > 1024 || !(g->dz >= 0.1 && g->dz <= 20) || !(g->px >= 0.1 && g->px <= 20) ||
      (unsigned)g->orientation > T3D_PHANTOM_OBLIQUE || (unsigned)g->storage > T3D_DICOM_STORE_U12 ||
      (unsigned)g->syntax >= T3D_DICOM_SYNTAX_COUNT || p->coverage > T3D_PHANTOM_ABDOMEN)
    return t3d_error(T3D_ERR_INVALID_ARG,
                     "phantom: matrix 8-1024, slice 0.1-20 mm, pixel 0.1-20 mm, storage s16/u16/u12, a known "
                     "orientation, syntax and coverage are required");
  /* The scanned S range [lo, hi], from its own stream so that the draws above stay as they were. */
  uint64_t rcs = t3d_phantom_stream(seed, 0x9e3779b97full), *rc = &rcs;
  u = t3d_phantom_uniform(rc);
  g->coverage = p->coverage >= 0 ? (t3d_phantom_coverage)p->coverage
                : u < 0.55       ? T3D_PHANTOM_CHEST_ABDOMEN
                : u < 0.85       ? T3D_PHANTOM_CHEST
                                 : T3D_PHANTOM_ABDOMEN;
  double lo = A->z_bottom, hi = A->z_top;
  u = t3d_phantom_uniform(rc);
  if (g->coverage == T3D_PHANTOM_CHEST) /* apices to the upper abdomen */
    lo = A->z_dome_r - 40 - 40 * u;
  else if (g->coverage == T3D_PHANTOM_ABDOMEN) /* from the lung bases down */
    hi = A->z_dome_l + 15 + 30 * u;
  /* Extent along the slice axis: the S range for axial and oblique, the body for the others. */
  double range = hi - lo;
  double ext = g->orientation == T3D_PHANTOM_SAGITTAL  ? fov
               : g->orientation == T3D_PHANTOM_CORONAL ? 2 * fmax(A->b_chest, A->b_abd) + 30
                                                       : range;
  int64_t budget = p->max_voxels > 0 ? p->max_voxels : 12 * 1000 * 1000;
  int64_t cap = budget / (g->n * g->n);
  g->nz = (int64_t)ceil(ext / g->dz);
  if (g->nz > cap)
    g->nz = cap;
  if (g->nz < 1)
    return t3d_error(T3D_ERR_INVALID_ARG, "phantom: max_voxels %lld leaves no slice at matrix %lld",
                     (long long)budget, (long long)g->n);
  /* Covered S range and the slab's position within the chest-abdomen range. */
  double cover = (g->orientation == T3D_PHANTOM_AXIAL || g->orientation == T3D_PHANTOM_OBLIQUE) ? g->nz * g->dz : fov;
  double zc = (hi + lo) / 2;
  if (cover < range)
    zc = lo + cover / 2 + (range - cover) * t3d_phantom_uniform(r);
  g->centre[0] = (t3d_phantom_uniform(r) - 0.5) * 30;
  g->centre[1] = (t3d_phantom_uniform(r) - 0.5) * 30;
  g->centre[2] = zc;
  return T3D_OK;
}

/* ---- sampling ----------------------------------------------------------------------------------- */

/* [a, 1-2a, a] along axis `axis` of the nz*ny*nx field (edges repeat): partial-volume blur of
 * about 1 mm, so a = 1/4 at 1 mm voxels and less for coarser ones (a wide blur in voxel units
 * would wash small lesions out far more than a scanner does). */
static void blur_axis(float *f, int64_t nx, int64_t ny, int64_t nz, int axis, double spacing)
{
  float a = (float)(0.25 * fmin(1.0, 1.0 / spacing)), c = 1 - 2 * a;
  int64_t n = axis == 0 ? nx : axis == 1 ? ny : nz;
  int64_t stride = axis == 0 ? 1 : axis == 1 ? nx : nx * ny;
  int64_t lines = nx * ny * nz / n;
  if (n < 3)
    return;
#pragma omp parallel for schedule(static)
  for (int64_t l = 0; l < lines; l++) {
    int64_t base;
    if (axis == 0)
      base = l * nx;
    else if (axis == 1)
      base = (l / nx) * nx * ny + l % nx;
    else
      base = l;
    float prev = f[base], cur = f[base];
    for (int64_t i = 0; i < n; i++) {
      float next = i + 1 < n ? f[base + (i + 1) * stride] : cur;
      f[base + i * stride] = a * prev + c * cur + a * next;
      prev = cur, cur = next;
    }
  }
}

static t3d_status sample_grid(t3d_phantom_case *c, const pc_anatomy *A, const pc_grid *g)
{
  t3d_status st;
  int64_t *counts = NULL;
  t3d_volume *v = NULL;
  if ((st = t3d_volume_new(&v, g->n, g->n, g->nz)) != T3D_OK)
    return st;
  v->spacing[0] = v->spacing[1] = g->px, v->spacing[2] = g->dz;
  t3d_phantom_set_directions(v, g->orientation);
  double half[3] = {(double)(v->nx - 1) / 2, (double)(v->ny - 1) / 2, (double)(v->nz - 1) / 2};
  for (int rr = 0; rr < 3; rr++) {
    v->origin[rr] = g->centre[rr];
    for (int cc = 0; cc < 3; cc++)
      v->origin[rr] -= v->dir[rr][cc] * v->spacing[cc] * half[cc];
  }
  size_t nv = t3d_volume_nvoxels(v);
  c->labels = malloc(nv);
  counts = calloc((size_t)v->nz * PC_MAX_ITEMS, sizeof *counts);
  if (!c->labels || !counts) {
    st = t3d_error(T3D_ERR_NOMEM, "phantom: out of memory for %zu voxels", nv);
    goto cleanup;
  }
  double cr = cos(g->rot), sr = sin(g->rot);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t k = 0; k < v->nz; k++)
    for (int64_t j = 0; j < v->ny; j++)
      for (int64_t i = 0; i < v->nx; i++) {
        double p[3], q[3];
        t3d_volume_index_to_lps(v, (double)i, (double)j, (double)k, p);
        q[0] = cr * p[0] + sr * p[1], q[1] = -sr * p[0] + cr * p[1], q[2] = p[2];
        pc_sample_out s;
        pc_classify(A, q, &s);
        size_t idx = (size_t)((k * v->ny + j) * v->nx + i);
        v->data[idx] = s.hu;
        c->labels[idx] = s.label;
        if (s.item >= 0)
          counts[k * PC_MAX_ITEMS + s.item]++;
      }
  for (int a = 0; a < 3; a++)
    blur_axis(v->data, v->nx, v->ny, v->nz, a, v->spacing[a]);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < v->nz; k++) {
    uint64_t r = t3d_phantom_stream(c->seed, 0x2545f491ull) + (uint64_t)k * 0x632be59bd9b4e019ull;
    float *d = v->data + (size_t)k * (size_t)(v->nx * v->ny);
    int64_t m = v->nx * v->ny;
    for (int64_t i = 0; i < m; i += 2) {
      double u1 = t3d_phantom_uniform(&r), u2 = t3d_phantom_uniform(&r);
      double rad = sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * g->noise;
      double h0 = round(d[i] + rad * cos(2 * M_PI * u2));
      d[i] = (float)(h0 < -1024 ? -1024 : h0 > 3071 ? 3071 : h0);
      if (i + 1 < m) {
        double h1 = round(d[i + 1] + rad * sin(2 * M_PI * u2));
        d[i + 1] = (float)(h1 < -1024 ? -1024 : h1 > 3071 ? 3071 : h1);
      }
    }
  }
  /* item voxel counts */
  pc_anatomy *Am = (pc_anatomy *)A;
  for (int it = 0; it < A->n_items; it++) {
    int64_t n = 0;
    for (int64_t k = 0; k < v->nz; k++)
      n += counts[k * PC_MAX_ITEMS + it];
    Am->items[it].voxels = n;
  }
  c->vol = v;
  v = NULL;
  st = T3D_OK;
cleanup:
  free(counts);
  t3d_volume_free(v);
  return st;
}

/* ---- truth ---------------------------------------------------------------------------------------- */

static int centre_inside(const t3d_volume *v, const double c_anat[3], double rot)
{
  /* anatomy -> LPS (inverse of the rotation used while sampling), then LPS -> index */
  double cr = cos(rot), sr = sin(rot);
  double p[3] = {cr * c_anat[0] - sr * c_anat[1], sr * c_anat[0] + cr * c_anat[1], c_anat[2]};
  for (int a = 0; a < 3; a++) {
    double d = 0;
    for (int r = 0; r < 3; r++)
      d += (p[r] - v->origin[r]) * v->dir[r][a];
    double idx = d / v->spacing[a];
    int64_t n = a == 0 ? v->nx : a == 1 ? v->ny : v->nz;
    if (idx < -0.5 || idx > (double)n - 0.5)
      return 0;
  }
  return 1;
}

static void make_truth(t3d_phantom_case *c, pc_anatomy *A, const pc_grid *g)
{
  const t3d_volume *v = c->vol;
  double voxel_cm3 = v->spacing[0] * v->spacing[1] * v->spacing[2] / 1000;
  pc_truth *t = c->truth;
  memset(c->truth, 0, sizeof c->truth);
  for (int it = 0; it < A->n_items; it++) {
    pc_item *m = &A->items[it];
    m->visible = m->voxels > 0 && (!m->need_centre || centre_inside(v, m->c, g->rot)) &&
                 (double)m->voxels * voxel_cm3 >= m->min_cm3;
    if (!m->visible)
      continue;
    pc_truth *f = &t[m->finding];
    switch (m->finding) {
    case PC_NODULE:
    case PC_LIVER_LESION:
    case PC_LYMPH:
    case PC_RENAL_CYST:
      f->count++;
      if (m->size_mm > f->size_mm) {
        f->size_mm = m->size_mm, f->lobe = m->lobe, f->station = m->station;
        f->side = m->side;
      }
      f->present = 1;
      break;
    case PC_EFFUSION:
      f->side = f->present ? 2 : m->side;
      f->present = 1;
      break;
    case PC_CARDIOMEGALY:
      f->present = A->want_cardiomegaly;
      f->value = m->size_mm;
      break;
    case PC_SPLENOMEGALY:
      f->present = A->want_splenomegaly;
      f->value = m->size_mm;
      break;
    default:
      f->present = 1;
      f->side = m->side, f->lobe = m->lobe, f->severity = m->severity;
      break;
    }
  }
}

static char *truth_json(const pc_truth *t)
{
  sbuf b = {0};
  sb_printf(&b, "{");
  for (int f = 0; f < T3D_PHANTOM_NFINDINGS; f++) {
    sb_printf(&b, "%s\"%s\":{\"present\":%s", f ? "," : "", finding_names[f], t[f].present ? "true" : "false");
    if (t[f].present) {
      switch (f) {
      case PC_NODULE:
        sb_printf(&b, ",\"count\":%d,\"size_mm\":%.1f,\"lobe\":\"%s\"", t[f].count, t[f].size_mm,
                  pc_lobe_names[t[f].lobe]);
        break;
      case PC_EFFUSION:
      case PC_PNEUMOTHORAX:
        sb_printf(&b, ",\"side\":\"%s\"", side_name(t[f].side));
        break;
      case PC_CONSOLIDATION:
        sb_printf(&b, ",\"lobe\":\"%s\"", pc_lobe_names[t[f].lobe]);
        break;
      case PC_EMPHYSEMA:
        sb_printf(&b, ",\"severity\":\"%s\"", severity_names[t[f].severity]);
        break;
      case PC_CARDIOMEGALY:
        sb_printf(&b, ",\"ctr\":%.2f", t[f].value);
        break;
      case PC_LIVER_LESION:
        sb_printf(&b, ",\"count\":%d,\"size_mm\":%.1f", t[f].count, t[f].size_mm);
        break;
      case PC_RENAL_CYST:
        sb_printf(&b, ",\"side\":\"%s\",\"size_mm\":%.1f", side_name(t[f].side), t[f].size_mm);
        break;
      case PC_SPLENOMEGALY:
        sb_printf(&b, ",\"length_mm\":%.1f", t[f].value);
        break;
      case PC_ASCITES:
        sb_printf(&b, ",\"amount\":\"%s\"", amount_names[t[f].severity]);
        break;
      case PC_LYMPH:
        sb_printf(&b, ",\"count\":%d,\"size_mm\":%.1f,\"station\":\"%s\"", t[f].count, t[f].size_mm, t[f].station);
        break;
      }
    }
    sb_printf(&b, "}");
  }
  sb_printf(&b, "}");
  return sb_take(&b);
}

/* The report's first line: what was scanned and whether with contrast, in one of a few wordings. */
static void technique_line(uint64_t seed, t3d_phantom_coverage coverage, int contrast, char *out, size_t n)
{
  uint64_t rs = t3d_phantom_stream(seed, 0x6a09e667f3ull), *r = &rs;
  static const char *const region[3][2] = {{"CT of the chest, abdomen and pelvis", "CT chest and abdomen"},
                                           {"CT of the chest", "CT chest"},
                                           {"CT of the abdomen", "CT abdomen and pelvis"}};
  static const char *const with[2][3] = {
    {"without intravenous contrast", "without contrast", "without IV contrast"},
    {"with intravenous contrast, portal venous phase", "with IV contrast", "after intravenous contrast"}};
  int a = t3d_phantom_uniform(r) < 0.5, b = (int)(t3d_phantom_uniform(r) * 3) % 3;
  snprintf(out, n, "%s %s.", region[coverage][a], with[contrast != 0][b]);
}

t3d_status t3d_phantom_case_generate(const t3d_phantom_case_params *p, uint64_t seed, t3d_phantom_case **out)
{
  t3d_status st;
  t3d_phantom_case *c = NULL;
  pc_anatomy *A = NULL;
  t3d_phantom_case_params defaults = t3d_phantom_case_default_params();
  if (!out)
    return t3d_error(T3D_ERR_INVALID_ARG, "phantom: out is required");
  *out = NULL;
  if (!p)
    p = &defaults;
  c = calloc(1, sizeof *c);
  A = malloc(sizeof *A);
  if (!c || !A) {
    st = t3d_error(T3D_ERR_NOMEM, "phantom: out of memory");
    goto cleanup;
  }
  c->seed = seed;
  if (p->contrast > 1 || p->table > 1) {
    st = t3d_error(T3D_ERR_INVALID_ARG, "phantom: contrast and table are -1, 0 or 1");
    goto cleanup;
  }
  pc_anatomy_draw(A, seed, p->findings, p->contrast, p->table);
  pc_grid g;
  if ((st = choose_grid(p, A, seed, &g)) != T3D_OK)
    goto cleanup;
  c->storage = g.storage, c->syntax = g.syntax, c->orientation = g.orientation;
  if ((st = sample_grid(c, A, &g)) != T3D_OK)
    goto cleanup;
  make_meta(&c->vol->meta, seed, orientation_name(g.orientation), g.dz, (int)g.coverage, A->contrast);
  make_truth(c, A, &g);
  c->truth_json = truth_json(c->truth);
  char technique[96];
  technique_line(seed, g.coverage, A->contrast, technique, sizeof technique);
  c->report = pc_report(c->truth, seed, (int)g.coverage, technique);
  sbuf b = {0};
  sb_printf(&b, "{\"matrix\":[%lld,%lld,%lld],\"spacing_mm\":[%.4f,%.4f,%.4f],\"orientation\":\"%s\",",
            (long long)c->vol->nx, (long long)c->vol->ny, (long long)c->vol->nz, c->vol->spacing[0],
            c->vol->spacing[1], c->vol->spacing[2], orientation_name(g.orientation));
  sb_printf(&b, "\"storage\":\"%s\",\"syntax\":\"%s\",\"noise_hu\":%.1f,", t3d_dicom_storage_name(g.storage),
            t3d_dicom_syntax_name(g.syntax), g.noise);
  sb_printf(&b, "\"coverage\":\"%s\",\"contrast\":%s,\"table\":%s}", coverage_names[g.coverage],
            A->contrast ? "true" : "false", A->table ? "true" : "false");
  c->acq_json = sb_take(&b);
  if (!c->truth_json || !c->report || !c->acq_json) {
    st = t3d_error(T3D_ERR_NOMEM, "phantom: out of memory for the report");
    goto cleanup;
  }
  *out = c;
  c = NULL;
  st = T3D_OK;
cleanup:
  free(A);
  t3d_phantom_case_free(c);
  return st;
}

void t3d_phantom_case_free(t3d_phantom_case *c)
{
  if (!c)
    return;
  t3d_volume_free(c->vol);
  free(c->labels);
  free(c->report);
  free(c->truth_json);
  free(c->acq_json);
  free(c);
}

const t3d_volume *t3d_phantom_case_volume(const t3d_phantom_case *c) { return c->vol; }
const uint8_t *t3d_phantom_case_labels(const t3d_phantom_case *c) { return c->labels; }
const char *t3d_phantom_case_report(const t3d_phantom_case *c) { return c->report; }
const char *t3d_phantom_case_truth_json(const t3d_phantom_case *c) { return c->truth_json; }
const char *t3d_phantom_case_acquisition_json(const t3d_phantom_case *c) { return c->acq_json; }

int t3d_phantom_case_has_finding(const t3d_phantom_case *c, size_t i)
{
  return i < T3D_PHANTOM_NFINDINGS && c->truth[i].present;
}

void t3d_phantom_case_storage(const t3d_phantom_case *c, t3d_dicom_storage *storage, t3d_dicom_syntax *syntax)
{
  if (storage)
    *storage = c->storage;
  if (syntax)
    *syntax = c->syntax;
}

/* ---- files -------------------------------------------------------------------------------------- */

static t3d_status make_dir(const char *path)
{
  if (mkdir(path, 0777) != 0 && errno != EEXIST)
    return t3d_error(T3D_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  return T3D_OK;
}

t3d_status t3d_phantom_case_write(const t3d_phantom_case *c, const char *case_dir)
{
  t3d_status st;
  char path[4096];
  if (!c || !case_dir)
    return t3d_error(T3D_ERR_INVALID_ARG, "phantom: case and directory are required");
  if ((st = make_dir(case_dir)) != T3D_OK)
    return st;
  t3d_dicom_write_params wp = t3d_dicom_write_default_params();
  wp.storage = c->storage;
  wp.syntax = c->syntax;
  wp.derive_uids = 1;
  snprintf(path, sizeof path, "%s/dicom", case_dir);
  if ((st = t3d_dicom_write_ct_series(c->vol, path, &wp)) != T3D_OK)
    return st;
  snprintf(path, sizeof path, "%s/labels.nii.gz", case_dir);
  if ((st = t3d_nifti_write_u8(c->vol, c->labels, path)) != T3D_OK)
    return st;
  snprintf(path, sizeof path, "%s/report.txt", case_dir);
  FILE *f = fopen(path, "wb");
  if (!f)
    return t3d_error(T3D_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  int ok = fputs(c->report, f) >= 0 && fputc('\n', f) != EOF;
  if (fclose(f) != 0 || !ok)
    return t3d_error(T3D_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  return T3D_OK;
}

t3d_status t3d_phantom_case_manifest_line(const t3d_phantom_case *c, const char *name, char **out)
{
  sbuf b = {0};
  *out = NULL;
  sb_printf(&b, "{\"case\":");
  sb_json_string(&b, name);
  sb_printf(&b, ",\"seed\":%llu,\"series\":", (unsigned long long)c->seed);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s/dicom", name);
  sb_json_string(&b, tmp);
  snprintf(tmp, sizeof tmp, "%s/labels.nii.gz", name);
  sb_printf(&b, ",\"labels\":");
  sb_json_string(&b, tmp);
  snprintf(tmp, sizeof tmp, "%s/report.txt", name);
  sb_printf(&b, ",\"report_file\":");
  sb_json_string(&b, tmp);
  sb_printf(&b, ",\"report\":");
  sb_json_string(&b, c->report);
  sb_printf(&b, ",\"truth\":%s,\"acquisition\":%s}", c->truth_json, c->acq_json);
  if (!(*out = sb_take(&b)))
    return t3d_error(T3D_ERR_NOMEM, "phantom: out of memory for the manifest line");
  return T3D_OK;
}
