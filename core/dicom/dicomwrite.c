/* CT Image Storage series writer (Secondary Capture for 8-bit storage): IOD content, rescale, UIDs, per-slice geometry, JPEG 2000
 * encoding (OpenJPEG) and the temporary-name/rename protocol. DCMTK is reached only through
 * core/dicom/dicom_write_shim.h. Not a reader and not a general DICOM editor. */
#include "config.h"

#include "core/dicom/dicomwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openjpeg.h>

#include "core/dicom/dicom_write_shim.h"
#include "core/base/log.h"

#define CT_IMAGE_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define CT_ENHANCED_STORAGE "1.2.840.10008.5.1.4.1.1.2.1"
#define SC_IMAGE_STORAGE "1.2.840.10008.5.1.4.1.1.7"
#define DS_MAX 16 /* DICOM Decimal String: 16 characters per value */

t3d_dicom_write_params t3d_dicom_write_default_params(void)
{
  t3d_dicom_write_params p;
  memset(&p, 0, sizeof p);
  p.storage = T3D_DICOM_STORE_S16;
  p.syntax = T3D_DICOM_SYNTAX_EXPLICIT_LE;
  p.first_instance = 1;
  return p;
}

/* ---- names ------------------------------------------------------------------------------ */

static const struct {
  const char *name, *uid;
} syntaxes[T3D_DICOM_SYNTAX_COUNT] = {
  [T3D_DICOM_SYNTAX_EXPLICIT_LE] = {"explicit", "1.2.840.10008.1.2.1"},
  [T3D_DICOM_SYNTAX_IMPLICIT_LE] = {"implicit", "1.2.840.10008.1.2"},
  [T3D_DICOM_SYNTAX_DEFLATED] = {"deflate", "1.2.840.10008.1.2.1.99"},
  [T3D_DICOM_SYNTAX_RLE] = {"rle", "1.2.840.10008.1.2.5"},
  [T3D_DICOM_SYNTAX_JPEG_LOSSLESS] = {"jpeg-lossless", "1.2.840.10008.1.2.4.70"},
  [T3D_DICOM_SYNTAX_JPEGLS_LOSSLESS] = {"jpegls", "1.2.840.10008.1.2.4.80"},
  [T3D_DICOM_SYNTAX_J2K_LOSSLESS] = {"j2k", "1.2.840.10008.1.2.4.90"},
};

static const char *const storage_names[] = {"s16", "u16", "u12", "u8"};

const char *t3d_dicom_syntax_name(t3d_dicom_syntax s)
{
  return (unsigned)s < T3D_DICOM_SYNTAX_COUNT ? syntaxes[s].name : "?";
}

const char *t3d_dicom_syntax_uid(t3d_dicom_syntax s)
{
  return (unsigned)s < T3D_DICOM_SYNTAX_COUNT ? syntaxes[s].uid : "";
}

int t3d_dicom_syntax_parse(const char *name, t3d_dicom_syntax *out)
{
  for (int s = 0; s < T3D_DICOM_SYNTAX_COUNT; s++)
    if (name && strcmp(name, syntaxes[s].name) == 0) {
      *out = (t3d_dicom_syntax)s;
      return 0;
    }
  return -1;
}

const char *t3d_dicom_storage_name(t3d_dicom_storage s)
{
  return (unsigned)s <= T3D_DICOM_STORE_U8 ? storage_names[s] : "?";
}

int t3d_dicom_storage_parse(const char *name, t3d_dicom_storage *out)
{
  for (int s = 0; s <= T3D_DICOM_STORE_U8; s++)
    if (name && strcmp(name, storage_names[s]) == 0) {
      *out = (t3d_dicom_storage)s;
      return 0;
    }
  return -1;
}

/* ---- UIDs --------------------------------------------------------------------------------- */

static bool uid_valid(const char *u)
{
  size_t n = strlen(u);
  if (n == 0 || n > 64 || u[0] == '.' || u[n - 1] == '.')
    return false;
  for (size_t i = 0; i < n; i++) {
    if (u[i] == '.') {
      if (u[i + 1] == '.' || (u[i + 1] == '0' && u[i + 2] && u[i + 2] != '.'))
        return false; /* empty component or leading zero */
    } else if (u[i] < '0' || u[i] > '9') {
      return false;
    }
  }
  return !(u[0] == '0' && u[1] && u[1] != '.');
}

static void random_bytes(uint8_t *b, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(b + got, n - got, 0);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got < n) { /* no getrandom: time, pid and address bits; UIDs stay unique in practice */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40) ^ (uintptr_t)b;
    for (size_t i = got; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b[i] = (uint8_t)x;
    }
  }
}

t3d_status t3d_dicom_new_uid(const char *root, char buf[T3D_UID_MAX])
{
  uint8_t r[16];
  random_bytes(r, sizeof r);
  if (!root) {
    /* UUID version 4, variant 10 (RFC 4122), written as one decimal integer (ITU-T X.667). */
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    uint32_t limb[4];
    for (int i = 0; i < 4; i++)
      limb[i] = (uint32_t)r[4 * i] << 24 | (uint32_t)r[4 * i + 1] << 16 | (uint32_t)r[4 * i + 2] << 8 | r[4 * i + 3];
    char digits[48];
    int nd = 0;
    bool zero;
    do { /* repeated division of the 128-bit number by 10 */
      uint64_t rem = 0;
      zero = true;
      for (int i = 0; i < 4; i++) {
        uint64_t cur = rem << 32 | limb[i];
        limb[i] = (uint32_t)(cur / 10);
        rem = cur % 10;
        if (limb[i])
          zero = false;
      }
      digits[nd++] = (char)('0' + rem);
    } while (!zero);
    char *o = buf + sprintf(buf, "2.25.");
    while (nd > 0)
      *o++ = digits[--nd];
    *o = '\0';
    return T3D_OK;
  }
  size_t n = strlen(root);
  if (!uid_valid(root) || n >= 60)
    return t3d_error(T3D_ERR_INVALID_ARG,
                     "UID root \"%s\" is not a valid UID prefix of at most 59 characters (digits and dots)", root);
  /* root '.' then up to 64-n-1 digits, first digit non-zero, at most 30 digits */
  size_t nd = 64 - n - 1;
  if (nd > 30)
    nd = 30;
  memcpy(buf, root, n);
  buf[n] = '.';
  for (size_t i = 0; i < nd; i++)
    buf[n + 1 + i] = (char)((i == 0 ? '1' + r[i % 16] % 9 : '0' + (r[i % 16] ^ (uint8_t)(i * 37)) % 10));
  buf[n + 1 + nd] = '\0';
  return T3D_OK;
}

/* ---- rescale ------------------------------------------------------------------------------ */

/* Rounds x up to 6 significant digits (so the DS string holds it exactly). */
static double round_up_6(double x)
{
  char s[32];
  snprintf(s, sizeof s, "%.5e", x);
  double y = strtod(s, NULL);
  if (y < x) {
    double e = floor(log10(x)) - 5;
    y += pow(10, e);
    snprintf(s, sizeof s, "%.5e", y);
    y = strtod(s, NULL);
  }
  return y;
}

/* Formats x as a DICOM DS value of at most 16 characters, as precise as fits. */
static void ds_format(char out[DS_MAX + 1], double x)
{
  if (x == 0) { /* also turns -0 into 0 */
    strcpy(out, "0");
    return;
  }
  for (int prec = 12; prec > 0; prec--) {
    char s[40];
    snprintf(s, sizeof s, "%.*g", prec, x);
    if (strlen(s) <= DS_MAX) {
      strcpy(out, s);
      return;
    }
  }
  strcpy(out, "0");
}

static double ds_exact(double x)
{
  char s[DS_MAX + 1];
  ds_format(s, x);
  return strtod(s, NULL);
}

t3d_status t3d_dicom_choose_rescale(const t3d_volume *v, t3d_dicom_storage s, t3d_dicom_rescale *out)
{
  memset(out, 0, sizeof *out);
  if ((unsigned)s > T3D_DICOM_STORE_U8)
    return t3d_error(T3D_ERR_INVALID_ARG, "unknown DICOM storage type %d", (int)s);
  size_t n = t3d_volume_nvoxels(v);
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    float x = v->data[i];
    if (!isfinite(x))
      return t3d_error(T3D_ERR_INVALID_ARG, "voxel %zu is %g; DICOM pixels must be finite", i, (double)x);
    if (x < lo)
      lo = x;
    if (x > hi)
      hi = x;
  }
  switch (s) {
  case T3D_DICOM_STORE_S16: out->stored_min = -32768, out->stored_max = 32767, out->bits_stored = 16; break;
  case T3D_DICOM_STORE_U16: out->stored_min = 0, out->stored_max = 65535, out->bits_stored = 16; break;
  case T3D_DICOM_STORE_U12: out->stored_min = 0, out->stored_max = 4095, out->bits_stored = 12; break;
  case T3D_DICOM_STORE_U8: out->stored_min = 0, out->stored_max = 255, out->bits_stored = 8; break;
  }
  out->bits_allocated = s == T3D_DICOM_STORE_U8 ? 8 : 16;
  out->pixel_representation = s == T3D_DICOM_STORE_S16;

  double range = (double)out->stored_max - out->stored_min;
  if (s == T3D_DICOM_STORE_S16 && round(lo) >= out->stored_min && round(hi) <= out->stored_max) {
    out->slope = 1, out->intercept = 0;
  } else if (s != T3D_DICOM_STORE_S16 && round(hi) - floor(lo) <= range) {
    out->slope = 1, out->intercept = ds_exact(floor(lo));
  } else {
    out->slope = round_up_6((hi - lo) / range);
    out->intercept = ds_exact(lo - out->slope * out->stored_min);
  }
  return T3D_OK;
}

int32_t t3d_dicom_rescale_store(const t3d_dicom_rescale *r, float hu)
{
  double s = round(((double)hu - r->intercept) / r->slope);
  if (s < r->stored_min)
    s = r->stored_min;
  if (s > r->stored_max)
    s = r->stored_max;
  return (int32_t)s;
}

float t3d_dicom_rescale_read(const t3d_dicom_rescale *r, int32_t stored)
{
  return (float)(r->slope * stored + r->intercept);
}

/* ---- metadata sanitising ------------------------------------------------------------------- */

/* Copies src into dst (cap bytes) keeping at most maxlen characters and no backslash or control
 * characters (they would split or corrupt the value); warns when something was changed. */
static void clean_text(char *dst, size_t cap, const char *src, size_t maxlen, const char *what)
{
  size_t o = 0;
  bool changed = false;
  for (size_t i = 0; src[i]; i++) {
    unsigned char c = (unsigned char)src[i];
    if (c == '\\' || c < 0x20) {
      changed = true;
      continue;
    }
    if (o >= maxlen || o + 1 >= cap) {
      /* do not cut a UTF-8 sequence in half */
      while (o > 0 && ((unsigned char)dst[o - 1] & 0xc0) == 0x80)
        o--;
      if (o > 0 && ((unsigned char)dst[o - 1] & 0xc0) == 0xc0)
        o--;
      changed = true;
      break;
    }
    dst[o++] = (char)c;
  }
  dst[o] = '\0';
  if (changed)
    T3D_WARN("DICOM export: %s \"%s\" shortened to \"%s\" to fit its value representation", what, src, dst);
}

static bool all_digits(const char *s, size_t n)
{
  if (strlen(s) != n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

static bool has_non_ascii(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s >= 0x80)
      return true;
  return false;
}

/* Body parts (PS3.16 CID 4031 defined terms) that are not paired, so need no Laterality. */
static bool body_part_unpaired(const char *bp)
{
  static const char *const unpaired[] = {"ABDOMEN", "ABDOMENPELVIS", "BRAIN", "CHEST", "CHESTABDOMEN",
                                         "CHESTABDPELVIS", "CSPINE", "HEAD", "HEADNECK", "HEART", "LSPINE",
                                         "NECK", "PELVIS", "SPINE", "TSPINE", "WHOLEBODY"};
  for (size_t i = 0; i < sizeof unpaired / sizeof unpaired[0]; i++)
    if (strcmp(bp, unpaired[i]) == 0)
      return true;
  return false;
}

/* The values written for the patient, study and series, all valid for their VRs. */
typedef struct {
  char patient_name[65], patient_id[65], birth_date[9], sex[2];
  char study_uid[T3D_UID_MAX], study_date[9], study_time[15], study_description[65], accession[17];
  char series_uid[T3D_UID_MAX], series_description[65], series_number[13], body_part[17];
  char frame_uid[T3D_UID_MAX];
  char content_date[9], content_time[15];
  bool utf8;
} series_meta;

static t3d_status uid_or_new(char *dst, const char *given, const char *root, const char *what)
{
  if (given[0] && uid_valid(given)) {
    strcpy(dst, given);
    return T3D_OK;
  }
  if (given[0])
    T3D_WARN("DICOM export: %s \"%s\" is not a valid UID; generating a new one", what, given);
  return t3d_dicom_new_uid(root, dst);
}

/* base + suffix (a printf format with one long long) as a UID, for derive_uids. */
static t3d_status derived_uid(char dst[T3D_UID_MAX], const char *base, const char *fmt, long long n)
{
  char suffix[32];
  snprintf(suffix, sizeof suffix, fmt, n);
  size_t nb = strlen(base), ns = strlen(suffix);
  if (nb + ns > 64)
    return t3d_error(T3D_ERR_INVALID_ARG, "DICOM export: UID %s%s is longer than 64 characters", base, suffix);
  memcpy(dst, base, nb);
  memcpy(dst + nb, suffix, ns + 1);
  return T3D_OK;
}

static t3d_status make_series_meta(series_meta *m, const t3d_volume_meta *in, const char *root, bool derive)
{
  t3d_status st;
  memset(m, 0, sizeof *m);
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(m->content_date, sizeof m->content_date, "%Y%m%d", &tm);
  strftime(m->content_time, sizeof m->content_time, "%H%M%S", &tm);

  clean_text(m->patient_name, sizeof m->patient_name, in->patient_name[0] ? in->patient_name : "T3D^Phantom", 64,
             "patient name");
  clean_text(m->patient_id, sizeof m->patient_id, in->patient_id[0] ? in->patient_id : "T3D-PHANTOM", 64,
             "patient ID");
  if (all_digits(in->patient_birth_date, 8))
    strcpy(m->birth_date, in->patient_birth_date);
  else if (in->patient_birth_date[0])
    T3D_WARN("DICOM export: birth date \"%s\" is not YYYYMMDD; left empty", in->patient_birth_date);
  if (strcmp(in->patient_sex, "M") == 0 || strcmp(in->patient_sex, "F") == 0 || strcmp(in->patient_sex, "O") == 0)
    strcpy(m->sex, in->patient_sex);
  else if (in->patient_sex[0])
    T3D_WARN("DICOM export: patient sex \"%s\" is not M, F or O; left empty", in->patient_sex);

  if ((st = uid_or_new(m->study_uid, in->study_uid, root, "study UID")) != T3D_OK)
    return st;
  if (all_digits(in->study_date, 8)) {
    strcpy(m->study_date, in->study_date);
  } else {
    if (in->study_date[0])
      T3D_WARN("DICOM export: study date \"%s\" is not YYYYMMDD; using today", in->study_date);
    strcpy(m->study_date, m->content_date);
  }
  {
    /* TM: HHMMSS with an optional .FFFFFF fraction */
    const char *t = in->study_time;
    size_t n = strlen(t);
    bool ok = n >= 2 && n <= 14;
    for (size_t i = 0; ok && i < n; i++)
      ok = (t[i] >= '0' && t[i] <= '9') || (t[i] == '.' && i == 6 && n > 7);
    if (ok)
      strcpy(m->study_time, t);
    else {
      if (t[0])
        T3D_WARN("DICOM export: study time \"%s\" is not HHMMSS[.FFFFFF]; using now", t);
      strcpy(m->study_time, m->content_time);
    }
  }
  clean_text(m->study_description, sizeof m->study_description, in->study_description, 64, "study description");
  clean_text(m->accession, sizeof m->accession, in->accession_number, 16, "accession number");
  if ((st = uid_or_new(m->series_uid, in->series_uid, root, "series UID")) != T3D_OK)
    return st;
  clean_text(m->series_description, sizeof m->series_description,
             in->series_description[0] ? in->series_description : "t3d export", 64, "series description");
  {
    char *end = NULL;
    long sn = in->series_number[0] ? strtol(in->series_number, &end, 10) : 1;
    if (in->series_number[0] && (*end || sn < 0 || sn > 999999999)) {
      T3D_WARN("DICOM export: series number \"%s\" is not an integer; using 1", in->series_number);
      sn = 1;
    }
    snprintf(m->series_number, sizeof m->series_number, "%ld", sn);
  }
  {
    /* CS: upper case letters, digits, space, underscore; at most 16 */
    size_t o = 0;
    for (size_t i = 0; in->body_part[i] && o < 16; i++) {
      char c = in->body_part[i];
      if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
      m->body_part[o++] = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ? c : '_';
    }
    m->body_part[o] = '\0';
    if (strcmp(m->body_part, in->body_part) != 0)
      T3D_WARN("DICOM export: body part \"%s\" written as \"%s\" (code string rules)", in->body_part, m->body_part);
  }
  if ((st = uid_or_new(m->frame_uid, in->frame_of_reference_uid, root, "frame of reference UID")) != T3D_OK)
    return st;
  if (derive) {
    if (!in->study_uid[0] || !in->series_uid[0] || !in->frame_of_reference_uid[0] || !all_digits(in->study_date, 8) ||
        strcmp(m->study_time, in->study_time) != 0)
      return t3d_error(T3D_ERR_INVALID_ARG, "DICOM export: derived UIDs need the study, series and frame of "
                                            "reference UIDs and the study date and time in the metadata");
    strcpy(m->content_date, m->study_date);
    snprintf(m->content_time, sizeof m->content_time, "%s", m->study_time);
  }
  m->utf8 = has_non_ascii(m->patient_name) || has_non_ascii(m->patient_id) ||
            has_non_ascii(m->study_description) || has_non_ascii(m->accession) ||
            has_non_ascii(m->series_description);
  return T3D_OK;
}

/* ---- JPEG 2000 (OpenJPEG) -------------------------------------------------------------------- */

typedef struct {
  uint8_t *data;
  size_t len, cap, pos;
  bool failed;
} membuf;

static bool membuf_reserve(membuf *b, size_t need)
{
  if (need <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 1 << 16;
  while (cap < need)
    cap *= 2;
  uint8_t *d = realloc(b->data, cap);
  if (!d) {
    b->failed = true;
    return false;
  }
  b->data = d;
  b->cap = cap;
  return true;
}

static OPJ_SIZE_T mb_write(void *buf, OPJ_SIZE_T n, void *user)
{
  membuf *b = user;
  if (!membuf_reserve(b, b->pos + n))
    return (OPJ_SIZE_T)-1;
  if (b->pos > b->len)
    memset(b->data + b->len, 0, b->pos - b->len);
  memcpy(b->data + b->pos, buf, n);
  b->pos += n;
  if (b->pos > b->len)
    b->len = b->pos;
  return n;
}

static OPJ_OFF_T mb_skip(OPJ_OFF_T n, void *user)
{
  membuf *b = user;
  if (n < 0 && (size_t)(-n) > b->pos)
    return -1;
  if (n > 0 && !membuf_reserve(b, b->pos + (size_t)n))
    return -1;
  b->pos = (size_t)((OPJ_OFF_T)b->pos + n);
  return n;
}

static OPJ_BOOL mb_seek(OPJ_OFF_T n, void *user)
{
  membuf *b = user;
  if (n < 0 || !membuf_reserve(b, (size_t)n))
    return OPJ_FALSE;
  b->pos = (size_t)n;
  return OPJ_TRUE;
}

static void opj_quiet(const char *msg, void *user) { (void)msg, (void)user; }

static void opj_error_cb(const char *msg, void *user)
{
  char *dst = user;
  if (!dst[0])
    snprintf(dst, 200, "%s", msg);
}

/* Lossless (reversible 5/3, one quality layer) J2K codestream of one frame of stored values. */
static t3d_status j2k_encode(const int32_t *vals, int rows, int cols, int prec, bool sgnd, membuf *out)
{
  t3d_status st = T3D_OK;
  opj_image_t *img = NULL;
  opj_codec_t *codec = NULL;
  opj_stream_t *stream = NULL;
  char err[208] = "";
  opj_cparameters_t par;
  opj_image_cmptparm_t cp;

  opj_set_default_encoder_parameters(&par);
  par.tcp_numlayers = 1;
  par.tcp_rates[0] = 0; /* lossless */
  par.cp_disto_alloc = 1;
  par.irreversible = 0;
  int minside = rows < cols ? rows : cols;
  par.numresolution = 1; /* each further level needs the image to halve: 2^(levels) <= side */
  while (par.numresolution < 6 && (1 << par.numresolution) <= minside)
    par.numresolution++;

  memset(&cp, 0, sizeof cp);
  cp.dx = cp.dy = 1;
  cp.w = (OPJ_UINT32)cols;
  cp.h = (OPJ_UINT32)rows;
  cp.prec = (OPJ_UINT32)prec;
  cp.sgnd = sgnd;
  img = opj_image_create(1, &cp, OPJ_CLRSPC_GRAY);
  if (!img) {
    st = t3d_error(T3D_ERR_NOMEM, "OpenJPEG could not allocate a %dx%d image", cols, rows);
    goto cleanup;
  }
  img->x0 = img->y0 = 0;
  img->x1 = (OPJ_UINT32)cols;
  img->y1 = (OPJ_UINT32)rows;
  memcpy(img->comps[0].data, vals, (size_t)rows * cols * sizeof(int32_t));

  codec = opj_create_compress(OPJ_CODEC_J2K);
  stream = opj_stream_create(1 << 16, OPJ_FALSE);
  if (!codec || !stream) {
    st = t3d_error(T3D_ERR_NOMEM, "OpenJPEG could not create an encoder");
    goto cleanup;
  }
  opj_set_info_handler(codec, opj_quiet, NULL);
  opj_set_warning_handler(codec, opj_quiet, NULL);
  opj_set_error_handler(codec, opj_error_cb, err);
  opj_stream_set_write_function(stream, mb_write);
  opj_stream_set_skip_function(stream, mb_skip);
  opj_stream_set_seek_function(stream, mb_seek);
  opj_stream_set_user_data(stream, out, NULL);
  if (!opj_setup_encoder(codec, &par, img) || !opj_start_compress(codec, img, stream) ||
      !opj_encode(codec, stream) || !opj_end_compress(codec, stream) || out->failed) {
    st = out->failed ? t3d_error(T3D_ERR_NOMEM, "out of memory encoding JPEG 2000")
                     : t3d_error(T3D_ERR_UNSUPPORTED, "OpenJPEG failed to encode a %dx%d frame: %s", cols, rows,
                                 err[0] ? err : "no detail");
    goto cleanup;
  }
cleanup:
  if (stream)
    opj_stream_destroy(stream);
  if (codec)
    opj_destroy_codec(codec);
  if (img)
    opj_image_destroy(img);
  return st;
}

/* ---- files ------------------------------------------------------------------------------------ */

static t3d_status mkdir_p(const char *dir)
{
  char path[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof path)
    return t3d_error(T3D_ERR_INVALID_ARG, "output directory name is empty or too long");
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] == '/' || path[i] == '\0') {
      char c = path[i];
      path[i] = '\0';
      if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return t3d_error(T3D_ERR_IO, "cannot create directory %s: %s", path, strerror(errno));
      path[i] = c;
    }
  }
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return t3d_error(T3D_ERR_IO, "%s is not a directory", dir);
  return T3D_OK;
}

static bool skipped(const t3d_dicom_write_params *p, int64_t k)
{
  for (size_t i = 0; i < p->n_skip_slices; i++)
    if (p->skip_slices[i] == k)
      return true;
  return false;
}

static void ds_multi(char *out, size_t cap, const double *x, int n)
{
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    char s[DS_MAX + 1];
    ds_format(s, x[i]);
    o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", i ? "\\" : "", s);
  }
}

/* A growing attribute list plus the strings it owns. */
typedef struct {
  t3d_dcmw_attr *a;
  size_t n, cap;
  char **owned;
  size_t nowned, capowned;
  bool oom;
} attr_list;

#define TAG(g, e) ((uint32_t)(g) << 16 | (uint32_t)(e))

static void put_in(attr_list *l, int depth, const uint32_t *seq, const int32_t *item, uint32_t tag, const char *value)
{
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    t3d_dcmw_attr *a = realloc(l->a, cap * sizeof *a);
    if (!a) {
      l->oom = true;
      return;
    }
    l->a = a, l->cap = cap;
  }
  t3d_dcmw_attr *x = &l->a[l->n++];
  memset(x, 0, sizeof *x);
  x->tag = tag, x->value = value, x->depth = depth;
  for (int d = 0; d < depth; d++)
    x->seq[d] = seq[d], x->item[d] = item[d];
}

static void put(attr_list *l, uint16_t g, uint16_t e, const char *value) { put_in(l, 0, NULL, NULL, TAG(g, e), value); }

/* A copy of s owned by the list (NULL, and l->oom set, when out of memory). */
static const char *keep(attr_list *l, const char *s)
{
  if (l->nowned == l->capowned) {
    size_t cap = l->capowned ? 2 * l->capowned : 64;
    char **o = realloc(l->owned, cap * sizeof *o);
    if (!o) {
      l->oom = true;
      return NULL;
    }
    l->owned = o, l->capowned = cap;
  }
  char *c = strdup(s);
  if (!c)
    l->oom = true;
  else
    l->owned[l->nowned++] = c;
  return c;
}

static void attr_list_clear(attr_list *l)
{
  for (size_t i = 0; i < l->nowned; i++)
    free(l->owned[i]);
  free(l->owned);
  free(l->a);
  memset(l, 0, sizeof *l);
}

/* Series-constant attribute values. */
typedef struct {
  char rows[24], cols[24], bits_alloc[16], bits_stored[16], high_bit[16], pixrep[16];
  char slope[DS_MAX + 1], intercept[DS_MAX + 1], thickness[DS_MAX + 1], tilt[DS_MAX + 1];
  char pixel_spacing[2 * DS_MAX + 2], iop[6 * (DS_MAX + 1)];
  char patient_orientation[8]; /* e.g. "L\\P": row and column directions as patient letters */
} series_text;

/* Patient Orientation letters (LPS: +x L, +y P, +z H) of direction d, strongest component
 * first, components below 1e-4 left out (PS3.3 C.7.6.1.1.1). */
static size_t orientation_letters(char *out, const double d[3])
{
  static const char pos[3] = {'L', 'P', 'H'}, neg[3] = {'R', 'A', 'F'};
  int order[3] = {0, 1, 2};
  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++)
      if (fabs(d[order[j]]) > fabs(d[order[i]])) {
        int x = order[i];
        order[i] = order[j], order[j] = x;
      }
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    if (fabs(d[order[i]]) >= 1e-4)
      out[n++] = d[order[i]] > 0 ? pos[order[i]] : neg[order[i]];
  return n;
}

/* Patient, study, series, frame of reference, equipment, SOP common and image pixel attributes
 * shared by the single-frame CT and the Enhanced CT file. */
static void put_common(attr_list *l, const series_meta *m, const series_text *t, const char *sop_class,
                       const char *sop_uid, const char *instance)
{
  if (m->utf8)
    put(l, 0x0008, 0x0005, "ISO_IR 192");
  put(l, 0x0008, 0x0016, sop_class);
  put(l, 0x0008, 0x0018, sop_uid);
  put(l, 0x0008, 0x0020, m->study_date);
  put(l, 0x0008, 0x0023, m->content_date);
  put(l, 0x0008, 0x0030, m->study_time);
  put(l, 0x0008, 0x0033, m->content_time);
  put(l, 0x0008, 0x0050, m->accession);
  put(l, 0x0008, 0x0060, "CT");
  put(l, 0x0008, 0x0070, "t3d");
  put(l, 0x0008, 0x0090, "");
  put(l, 0x0008, 0x1030, m->study_description);
  put(l, 0x0008, 0x103e, m->series_description);
  put(l, 0x0010, 0x0010, m->patient_name);
  put(l, 0x0010, 0x0020, m->patient_id);
  put(l, 0x0010, 0x0030, m->birth_date);
  put(l, 0x0010, 0x0040, m->sex);
  if (m->body_part[0])
    put(l, 0x0018, 0x0015, m->body_part);
  if (!body_part_unpaired(m->body_part)) /* Laterality is 2C: needed for paired parts; unknown */
    put(l, 0x0020, 0x0060, "");          /* here, so present and empty */
  put(l, 0x0018, 0x5100, "HFS");
  put(l, 0x0020, 0x000d, m->study_uid);
  put(l, 0x0020, 0x000e, m->series_uid);
  put(l, 0x0020, 0x0010, "1"); /* StudyID: empty is legal but DICOMDIR builders warn */
  put(l, 0x0020, 0x0011, m->series_number);
  put(l, 0x0020, 0x0013, instance);
  put(l, 0x0020, 0x0052, m->frame_uid);
  put(l, 0x0020, 0x1040, "");
  put(l, 0x0028, 0x0002, "1");
  put(l, 0x0028, 0x0004, "MONOCHROME2");
  put(l, 0x0028, 0x0010, t->rows);
  put(l, 0x0028, 0x0011, t->cols);
  put(l, 0x0028, 0x0100, t->bits_alloc);
  put(l, 0x0028, 0x0101, t->bits_stored);
  put(l, 0x0028, 0x0102, t->high_bit);
  put(l, 0x0028, 0x0103, t->pixrep);
}

/* Enhanced CT Image: everything per frame lives in functional groups; frames are DERIVED so the
 * acquisition-only groups (CT Acquisition Type/Details, Exposure, ...) are not required. */
static void put_enhanced(attr_list *l, const series_meta *m, const series_text *t, const char *nframes,
                         const char *dim_uid, const char *event_uid, const char *const *ipp, size_t n)
{
  static const char frame_type[] = "DERIVED\\PRIMARY\\VOLUME\\NONE";
  const uint32_t shared = TAG(0x5200, 0x9229), per_frame = TAG(0x5200, 0x9230);
  const int32_t i0[3] = {0, 0, 0};
  put(l, 0x0008, 0x0008, frame_type);
  put(l, 0x0008, 0x1090, "t3d");
  put(l, 0x0008, 0x9205, "MONOCHROME");
  put(l, 0x0008, 0x9206, "VOLUME");
  put(l, 0x0008, 0x9207, "NONE");
  put(l, 0x0018, 0x1000, "0");
  put(l, 0x0018, 0x1020, "t3d " VERSION);
  put(l, 0x0018, 0x9004, "RESEARCH");
  put(l, 0x0028, 0x0008, nframes);
  put(l, 0x0028, 0x0301, "NO");
  put(l, 0x0028, 0x2110, "00");
  put(l, 0x2050, 0x0020, "IDENTITY");
  put(l, 0x0040, 0x0555, NULL); /* Acquisition Context Sequence: type 2, empty */
  {
    uint32_t s[1] = {TAG(0x0020, 0x9221)};
    put_in(l, 1, s, i0, TAG(0x0020, 0x9164), dim_uid);
    s[0] = TAG(0x0020, 0x9222);
    put_in(l, 1, s, i0, TAG(0x0020, 0x9164), dim_uid);
    put_in(l, 1, s, i0, TAG(0x0020, 0x9165), "(0020,0032)"); /* dimension: Image Position (Patient) */
    put_in(l, 1, s, i0, TAG(0x0020, 0x9167), "(0020,9113)"); /* in Plane Position Sequence */
    put_in(l, 1, s, i0, TAG(0x0020, 0x9421), "Image Position");
  }
  {
    uint32_t s[3] = {shared, TAG(0x0028, 0x9110), 0};
    put_in(l, 2, s, i0, TAG(0x0028, 0x0030), t->pixel_spacing);
    put_in(l, 2, s, i0, TAG(0x0018, 0x0050), t->thickness);
    s[1] = TAG(0x0020, 0x9116);
    put_in(l, 2, s, i0, TAG(0x0020, 0x0037), t->iop);
    s[1] = TAG(0x0028, 0x9145);
    put_in(l, 2, s, i0, TAG(0x0028, 0x1052), t->intercept);
    put_in(l, 2, s, i0, TAG(0x0028, 0x1053), t->slope);
    put_in(l, 2, s, i0, TAG(0x0028, 0x1054), "HU");
    s[1] = TAG(0x0028, 0x9132);
    put_in(l, 2, s, i0, TAG(0x0028, 0x1050), "40");
    put_in(l, 2, s, i0, TAG(0x0028, 0x1051), "400");
    s[1] = TAG(0x0018, 0x9329);
    put_in(l, 2, s, i0, TAG(0x0008, 0x9007), frame_type);
    put_in(l, 2, s, i0, TAG(0x0008, 0x9205), "MONOCHROME");
    put_in(l, 2, s, i0, TAG(0x0008, 0x9206), "VOLUME");
    put_in(l, 2, s, i0, TAG(0x0008, 0x9207), "NONE");
    /* Frame Anatomy: chest when the body part says so, else the entire body (SNOMED CT codes). */
    bool chest = strcmp(m->body_part, "CHEST") == 0;
    s[1] = TAG(0x0020, 0x9071);
    s[2] = TAG(0x0008, 0x2218);
    put_in(l, 3, s, i0, TAG(0x0008, 0x0100), chest ? "43799004" : "38266002");
    put_in(l, 3, s, i0, TAG(0x0008, 0x0102), "SCT");
    put_in(l, 3, s, i0, TAG(0x0008, 0x0104), chest ? "Chest" : "Entire body");
    put_in(l, 2, s, i0, TAG(0x0020, 0x9072), "U");
    /* dciodvfy requires the Irradiation Event Identification group even for DERIVED frames */
    s[1] = TAG(0x0018, 0x9477);
    put_in(l, 2, s, i0, TAG(0x0008, 0x3010), event_uid);
  }
  for (size_t f = 0; f < n; f++) {
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", f + 1);
    uint32_t s[2] = {per_frame, TAG(0x0020, 0x9111)};
    int32_t it[2] = {(int32_t)f, 0};
    put_in(l, 2, s, it, TAG(0x0020, 0x9157), keep(l, idx)); /* Dimension Index Values */
    s[1] = TAG(0x0020, 0x9113);
    put_in(l, 2, s, it, TAG(0x0020, 0x0032), ipp[f]);
  }
}

t3d_status t3d_dicom_write_ct_series(const t3d_volume *v, const char *out_dir, const t3d_dicom_write_params *params)
{
  t3d_status st = T3D_OK;
  t3d_dicom_write_params p = params ? *params : t3d_dicom_write_default_params();
  t3d_dicom_rescale rs;
  series_meta m;
  series_text t;
  attr_list l = {0};
  char **tmp_names = NULL, **final_names = NULL, **ipps = NULL;
  uint8_t *pixels = NULL, **j2k_frames = NULL;
  size_t *j2k_lens = NULL;
  int32_t *stored = NULL;
  int64_t nwritten = 0, nframes = 0;

  if (!v || !v->data || !out_dir)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_dicom_write_ct_series: volume and output directory are required");
  if (v->nx > 65535 || v->ny > 65535)
    return t3d_error(T3D_ERR_INVALID_ARG, "slices of %lldx%lld pixels exceed DICOM's 65535 rows/columns",
                     (long long)v->nx, (long long)v->ny);
  if ((unsigned)p.syntax >= T3D_DICOM_SYNTAX_COUNT)
    return t3d_error(T3D_ERR_INVALID_ARG, "unknown transfer syntax %d", (int)p.syntax);
  if (!(fabs(p.gantry_tilt_deg) < 60))
    return t3d_error(T3D_ERR_INVALID_ARG, "gantry tilt %g degrees is outside (-60, 60)", p.gantry_tilt_deg);
  if (p.first_instance < 0 || p.first_instance > 99999999 - v->nz)
    return t3d_error(T3D_ERR_INVALID_ARG, "first instance number %d out of range", (int)p.first_instance);
  for (int a = 0; a < 3; a++)
    if (!(v->spacing[a] > 0) || !isfinite(v->spacing[a]))
      return t3d_error(T3D_ERR_INVALID_ARG, "voxel spacing %g along axis %d must be positive", v->spacing[a], a);
  if (p.enhanced_multiframe && p.storage == T3D_DICOM_STORE_U8)
    return t3d_error(T3D_ERR_INVALID_ARG, "Enhanced CT allows only 16 allocated bits; choose s16, u16 or u12, not u8 "
                     "(u8 is written only as single-frame Secondary Capture files)");
  if (p.enhanced_multiframe && (uint64_t)v->nx * (uint64_t)v->ny * (uint64_t)v->nz * 2 > 0xfffffffeull)
    return t3d_error(T3D_ERR_INVALID_ARG, "%lldx%lldx%lld voxels do not fit one DICOM pixel data element (4 GiB); "
                     "write single-frame files instead", (long long)v->nx, (long long)v->ny, (long long)v->nz);
  const char *prefix = p.file_prefix ? p.file_prefix : "CT";
  if (strchr(prefix, '/') || strlen(prefix) > 64)
    return t3d_error(T3D_ERR_INVALID_ARG, "file prefix \"%s\" must be a plain name of at most 64 characters", prefix);
  if ((st = t3d_dicom_choose_rescale(v, p.storage, &rs)) != T3D_OK)
    return st;
  if ((st = make_series_meta(&m, p.meta ? p.meta : &v->meta, p.uid_root, p.derive_uids != 0)) != T3D_OK)
    return st;
  if ((st = mkdir_p(out_dir)) != T3D_OK)
    return st;

  size_t npix = (size_t)v->nx * (size_t)v->ny;
  size_t nz = (size_t)v->nz, frame_bytes = npix * (size_t)(rs.bits_allocated / 8);
  tmp_names = calloc(nz, sizeof *tmp_names);
  final_names = calloc(nz, sizeof *final_names);
  ipps = calloc(nz, sizeof *ipps);
  j2k_frames = calloc(nz, sizeof *j2k_frames);
  j2k_lens = calloc(nz, sizeof *j2k_lens);
  pixels = malloc((p.enhanced_multiframe ? nz : 1) * frame_bytes);
  stored = malloc(npix * sizeof *stored);
  if (!tmp_names || !final_names || !ipps || !j2k_frames || !j2k_lens || !pixels || !stored) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory preparing DICOM slices");
    goto cleanup;
  }

  snprintf(t.rows, sizeof t.rows, "%lld", (long long)v->ny);
  snprintf(t.cols, sizeof t.cols, "%lld", (long long)v->nx);
  snprintf(t.bits_alloc, sizeof t.bits_alloc, "%d", rs.bits_allocated);
  snprintf(t.bits_stored, sizeof t.bits_stored, "%d", rs.bits_stored);
  snprintf(t.high_bit, sizeof t.high_bit, "%d", rs.bits_stored - 1);
  snprintf(t.pixrep, sizeof t.pixrep, "%d", rs.pixel_representation);
  ds_format(t.slope, rs.slope);
  ds_format(t.intercept, rs.intercept);
  ds_format(t.thickness, v->spacing[2]);
  ds_format(t.tilt, p.gantry_tilt_deg);
  {
    double ps[2] = {v->spacing[1], v->spacing[0]}; /* row spacing (y) \ column spacing (x) */
    ds_multi(t.pixel_spacing, sizeof t.pixel_spacing, ps, 2);
    double cosines[6] = {v->dir[0][0], v->dir[1][0], v->dir[2][0], v->dir[0][1], v->dir[1][1], v->dir[2][1]};
    ds_multi(t.iop, sizeof t.iop, cosines, 6);
    size_t o = orientation_letters(t.patient_orientation, cosines);
    t.patient_orientation[o++] = '\\';
    o += orientation_letters(t.patient_orientation + o, cosines + 3);
    t.patient_orientation[o] = '\0';
  }
  const bool sc = rs.bits_allocated == 8; /* Secondary Capture: see t3d_dicom_storage */
  /* Slice normal (row x column direction), for SliceLocation. */
  double normal[3] = {v->dir[1][0] * v->dir[2][1] - v->dir[2][0] * v->dir[1][1],
                      v->dir[2][0] * v->dir[0][1] - v->dir[0][0] * v->dir[2][1],
                      v->dir[0][0] * v->dir[1][1] - v->dir[1][0] * v->dir[0][1]};
  double shear = tan(p.gantry_tilt_deg * M_PI / 180.0);
  size_t dl = strlen(out_dir) + strlen(prefix) + 64;

  for (int64_t k = 0; k < v->nz; k++) {
    if (skipped(&p, k))
      continue;
    char sop_uid[T3D_UID_MAX], instance[24], location[DS_MAX + 1];
    double pos[3];
    t3d_volume_index_to_lps(v, 0, 0, (double)k, pos);
    for (int r = 0; r < 3; r++)
      pos[r] += (double)k * v->spacing[2] * shear * v->dir[r][1];
    ipps[nframes] = malloc(3 * (DS_MAX + 1));
    if (!ipps[nframes]) {
      st = t3d_error(T3D_ERR_NOMEM, "out of memory preparing DICOM slices");
      goto cleanup;
    }
    ds_multi(ipps[nframes], 3 * (DS_MAX + 1), pos, 3);
    ds_format(location, pos[0] * normal[0] + pos[1] * normal[1] + pos[2] * normal[2]);

    const float *src = v->data + (size_t)k * npix;
    uint8_t *dst = pixels + (p.enhanced_multiframe ? (size_t)nframes * frame_bytes : 0);
    for (size_t i = 0; i < npix; i++)
      stored[i] = t3d_dicom_rescale_store(&rs, src[i]);
    if (rs.bits_allocated == 8)
      for (size_t i = 0; i < npix; i++)
        dst[i] = (uint8_t)stored[i];
    else
      for (size_t i = 0; i < npix; i++)
        ((uint16_t *)dst)[i] = (uint16_t)(stored[i] & 0xffff); /* two's complement for S16 */
    if (p.syntax == T3D_DICOM_SYNTAX_J2K_LOSSLESS) {
      membuf j2k = {0};
      st = j2k_encode(stored, (int)v->ny, (int)v->nx, rs.bits_stored, rs.pixel_representation, &j2k);
      j2k_frames[nframes] = j2k.data; /* owned from here, even on failure */
      j2k_lens[nframes] = j2k.len;
      if (st != T3D_OK)
        goto cleanup;
    }
    nframes++;
    if (p.enhanced_multiframe)
      continue; /* one file for all frames, below */

    int64_t inst = p.first_instance + k;
    if ((st = p.derive_uids ? derived_uid(sop_uid, m.series_uid, ".%lld", (long long)inst)
                            : t3d_dicom_new_uid(p.uid_root, sop_uid)) != T3D_OK)
      goto cleanup;
    snprintf(instance, sizeof instance, "%lld", (long long)inst);
    attr_list_clear(&l);
    put_common(&l, &m, &t, sc ? SC_IMAGE_STORAGE : CT_IMAGE_STORAGE, sop_uid, instance);
    put(&l, 0x0008, 0x0008, "DERIVED\\SECONDARY\\AXIAL");
    if (sc) {
      put(&l, 0x0008, 0x0064, "WSD");              /* SC Equipment: Conversion Type, workstation */
      put(&l, 0x0018, 0x1012, m.content_date);     /* SC Image: Date/Time of Secondary Capture */
      put(&l, 0x0018, 0x1014, m.content_time);
      put(&l, 0x0020, 0x0020, t.patient_orientation); /* General Image 2C: no Image Plane in SC */
    }
    put(&l, 0x0018, 0x0050, t.thickness);
    if (!sc)
      put(&l, 0x0018, 0x0060, ""); /* KVP: CT Image module only */
    put(&l, 0x0018, 0x0088, t.thickness);
    if (p.gantry_tilt_deg != 0)
      put(&l, 0x0018, 0x1120, t.tilt);
    put(&l, 0x0020, 0x0012, "1");
    put(&l, 0x0020, 0x0032, ipps[nframes - 1]);
    put(&l, 0x0020, 0x0037, t.iop);
    put(&l, 0x0020, 0x1041, location);
    put(&l, 0x0028, 0x0030, t.pixel_spacing);
    put(&l, 0x0028, 0x1050, "40");
    put(&l, 0x0028, 0x1051, "400");
    put(&l, 0x0028, 0x1052, t.intercept);
    put(&l, 0x0028, 0x1053, t.slope);
    put(&l, 0x0028, 0x1054, "HU");
    if (l.oom) {
      st = t3d_error(T3D_ERR_NOMEM, "out of memory preparing DICOM attributes");
      goto cleanup;
    }
    t3d_dcmw_image img = {l.a, l.n, rs.bits_allocated, pixels, npix, p.syntax, NULL, NULL, 1};
    if (p.syntax == T3D_DICOM_SYNTAX_J2K_LOSSLESS) {
      img.encapsulated = (const uint8_t *const *)&j2k_frames[nframes - 1];
      img.encapsulated_len = &j2k_lens[nframes - 1];
    }
    tmp_names[nwritten] = malloc(dl);
    final_names[nwritten] = malloc(dl);
    if (!tmp_names[nwritten] || !final_names[nwritten]) {
      st = t3d_error(T3D_ERR_NOMEM, "out of memory preparing DICOM file names");
      nwritten++; /* so cleanup frees whichever of the two was allocated */
      goto cleanup;
    }
    snprintf(tmp_names[nwritten], dl, "%s/.%s%05lld.dcm.t3d-tmp-%ld", out_dir, prefix, (long long)inst,
             (long)getpid());
    snprintf(final_names[nwritten], dl, "%s/%s%05lld.dcm", out_dir, prefix, (long long)inst);
    nwritten++;
    if ((st = t3d_dcmw_write_file(&img, tmp_names[nwritten - 1])) != T3D_OK) {
      if (st == T3D_ERR_IO) /* DCMTK does not say why; disk full and permissions are the usual causes */
        t3d_error_prefix("%s (disk full or no permission?): ", final_names[nwritten - 1]);
      goto cleanup;
    }
  }

  if (p.enhanced_multiframe) {
    char sop_uid[T3D_UID_MAX], dim_uid[T3D_UID_MAX], event_uid[T3D_UID_MAX], instance[24], nf[24];
    if (nframes == 0) {
      st = t3d_error(T3D_ERR_INVALID_ARG, "every slice is skipped: nothing to write");
      goto cleanup;
    }
    if (p.derive_uids) {
      if ((st = derived_uid(sop_uid, m.series_uid, ".%lld", (long long)p.first_instance)) != T3D_OK ||
          (st = derived_uid(dim_uid, m.series_uid, ".0.1", 0LL)) != T3D_OK ||
          (st = derived_uid(event_uid, m.series_uid, ".0.2", 0LL)) != T3D_OK)
        goto cleanup;
    } else if ((st = t3d_dicom_new_uid(p.uid_root, sop_uid)) != T3D_OK ||
               (st = t3d_dicom_new_uid(p.uid_root, dim_uid)) != T3D_OK ||
               (st = t3d_dicom_new_uid(p.uid_root, event_uid)) != T3D_OK)
      goto cleanup;
    snprintf(instance, sizeof instance, "%lld", (long long)p.first_instance);
    snprintf(nf, sizeof nf, "%lld", (long long)nframes);
    attr_list_clear(&l);
    put_common(&l, &m, &t, CT_ENHANCED_STORAGE, sop_uid, instance);
    put_enhanced(&l, &m, &t, nf, dim_uid, event_uid, (const char *const *)ipps, (size_t)nframes);
    if (l.oom) {
      st = t3d_error(T3D_ERR_NOMEM, "out of memory preparing DICOM attributes");
      goto cleanup;
    }
    t3d_dcmw_image img = {l.a, l.n, rs.bits_allocated, pixels, npix * (size_t)nframes, p.syntax, NULL, NULL,
                          (size_t)nframes};
    if (p.syntax == T3D_DICOM_SYNTAX_J2K_LOSSLESS) {
      img.encapsulated = (const uint8_t *const *)j2k_frames;
      img.encapsulated_len = j2k_lens;
    }
    tmp_names[0] = malloc(dl);
    final_names[0] = malloc(dl);
    nwritten = 1;
    if (!tmp_names[0] || !final_names[0]) {
      st = t3d_error(T3D_ERR_NOMEM, "out of memory preparing DICOM file names");
      goto cleanup;
    }
    snprintf(tmp_names[0], dl, "%s/.%s%05lld.dcm.t3d-tmp-%ld", out_dir, prefix, (long long)p.first_instance,
             (long)getpid());
    snprintf(final_names[0], dl, "%s/%s%05lld.dcm", out_dir, prefix, (long long)p.first_instance);
    if ((st = t3d_dcmw_write_file(&img, tmp_names[0])) != T3D_OK) {
      if (st == T3D_ERR_IO)
        t3d_error_prefix("%s (disk full or no permission?): ", final_names[0]);
      goto cleanup;
    }
  }

  for (int64_t i = 0; i < nwritten; i++) {
    if (rename(tmp_names[i], final_names[i]) != 0) {
      st = t3d_error(T3D_ERR_IO, "cannot rename %s to %s: %s", tmp_names[i], final_names[i], strerror(errno));
      goto cleanup;
    }
    free(tmp_names[i]);
    tmp_names[i] = NULL; /* renamed: nothing left to remove */
  }

cleanup:
  if (tmp_names)
    for (int64_t i = 0; i < nwritten; i++)
      if (tmp_names[i]) {
        if (st != T3D_OK)
          unlink(tmp_names[i]);
        free(tmp_names[i]);
      }
  if (final_names)
    for (int64_t i = 0; i < nwritten; i++)
      free(final_names[i]);
  for (size_t i = 0; ipps && i < nz; i++)
    free(ipps[i]);
  for (size_t i = 0; j2k_frames && i < nz; i++)
    free(j2k_frames[i]);
  free(tmp_names);
  free(final_names);
  free(ipps);
  free(j2k_frames);
  free(j2k_lens);
  free(pixels);
  free(stored);
  attr_list_clear(&l);
  return st;
}
