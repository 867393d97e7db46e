/* NIfTI-1 writer (float32, sform + qform in RAS) and a defensive reader for 3-D scalar files,
 * plain or gzip (zlib). The header is (de)serialised field by field at its fixed offsets, so
 * host struct layout and byte order do not matter. Not a full NIfTI library (see nifti.h). */
#include "core/dicom/nifti.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/base/tensor.h"

#define HDR_SIZE 348
#define VOX_OFFSET 352 /* header + 4-byte extension flag (no extensions) */

/* ---- byte helpers (little-endian on write; either order on read) ---------------------------- */

static void put16(uint8_t *b, int off, int v)
{
  b[off] = (uint8_t)v;
  b[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *b, int off, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    b[off + i] = (uint8_t)(v >> (8 * i));
}

static void putf(uint8_t *b, int off, double v)
{
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  put32(b, off, u);
}

static uint32_t get32(const uint8_t *b, int off, bool swap)
{
  uint32_t le = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
  uint32_t be = (uint32_t)b[off + 3] | (uint32_t)b[off + 2] << 8 | (uint32_t)b[off + 1] << 16 | (uint32_t)b[off] << 24;
  return swap ? be : le;
}

static int get16(const uint8_t *b, int off, bool swap)
{
  uint16_t u = swap ? (uint16_t)(b[off] << 8 | b[off + 1]) : (uint16_t)(b[off + 1] << 8 | b[off]);
  return (int16_t)u;
}

static double getf(const uint8_t *b, int off, bool swap)
{
  uint32_t u = get32(b, off, swap);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* ---- geometry ------------------------------------------------------------------------------- */

/* Quaternion (b, c, d) and qfac of the rotation closest to the direction columns of a (3x3,
 * RAS, unit columns), following the NIfTI-1 definition of quatern_b/c/d. */
static void rotation_to_quaternion(const double dir[3][3], double *qb, double *qc, double *qd, double *qfac)
{
  double r[3][3];
  /* Gram-Schmidt: columns 0 and 1 orthonormal, column 2 their cross product (proper rotation). */
  double c0[3], c1[3], n0 = 0, n1 = 0, dot = 0;
  for (int i = 0; i < 3; i++)
    c0[i] = dir[i][0], n0 += c0[i] * c0[i];
  n0 = sqrt(n0);
  for (int i = 0; i < 3; i++)
    c0[i] /= n0, dot += c0[i] * dir[i][1];
  for (int i = 0; i < 3; i++)
    c1[i] = dir[i][1] - dot * c0[i], n1 += c1[i] * c1[i];
  n1 = sqrt(n1);
  for (int i = 0; i < 3; i++)
    c1[i] /= n1;
  double c2[3] = {c0[1] * c1[2] - c0[2] * c1[1], c0[2] * c1[0] - c0[0] * c1[2], c0[0] * c1[1] - c0[1] * c1[0]};
  double side = c2[0] * dir[0][2] + c2[1] * dir[1][2] + c2[2] * dir[2][2];
  *qfac = side < 0 ? -1.0 : 1.0; /* left-handed grids flip the third axis via qfac */
  for (int i = 0; i < 3; i++)
    r[i][0] = c0[i], r[i][1] = c1[i], r[i][2] = c2[i];

  double a = r[0][0] + r[1][1] + r[2][2] + 1.0, b, c, d;
  if (a > 0.5) {
    a = 0.5 * sqrt(a);
    b = 0.25 * (r[2][1] - r[1][2]) / a;
    c = 0.25 * (r[0][2] - r[2][0]) / a;
    d = 0.25 * (r[1][0] - r[0][1]) / a;
  } else {
    double xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
    double yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
    double zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1.0) {
      b = 0.5 * sqrt(xd);
      c = 0.25 * (r[0][1] + r[1][0]) / b;
      d = 0.25 * (r[0][2] + r[2][0]) / b;
      a = 0.25 * (r[2][1] - r[1][2]) / b;
    } else if (yd > 1.0) {
      c = 0.5 * sqrt(yd);
      b = 0.25 * (r[0][1] + r[1][0]) / c;
      d = 0.25 * (r[1][2] + r[2][1]) / c;
      a = 0.25 * (r[0][2] - r[2][0]) / c;
    } else {
      d = 0.5 * sqrt(zd);
      b = 0.25 * (r[0][2] + r[2][0]) / d;
      c = 0.25 * (r[1][2] + r[2][1]) / d;
      a = 0.25 * (r[1][0] - r[0][1]) / d;
    }
    if (a < 0)
      b = -b, c = -c, d = -d;
  }
  *qb = b, *qc = c, *qd = d;
}

/* Index -> RAS affine from the quaternion fields (NIfTI-1 "method 2"). */
static void quaternion_to_affine(double b, double c, double d, double qx, double qy, double qz, const double pix[3],
                                 double qfac, double m[4][4])
{
  double a = 1.0 - (b * b + c * c + d * d);
  if (a < 1e-7) { /* 180-degree rotation: renormalise (b, c, d), a = 0 */
    double n = sqrt(b * b + c * c + d * d);
    b /= n, c /= n, d /= n;
    a = 0;
  } else {
    a = sqrt(a);
  }
  double r[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                    {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
                    {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
  double s[3] = {pix[0], pix[1], qfac * pix[2]};
  memset(m, 0, 16 * sizeof(double));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      m[i][j] = r[i][j] * s[j];
  m[0][3] = qx, m[1][3] = qy, m[2][3] = qz, m[3][3] = 1;
}

/* ---- writer ------------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* v's geometry with the voxels at data: float32 (datatype 16) or uint8 (datatype 2). */
static t3d_status write_voxels(const t3d_volume *v, const void *data, int datatype, const char *path)
{
  if (v->nx > 32767 || v->ny > 32767 || v->nz > 32767)
    return t3d_error(T3D_ERR_INVALID_ARG, "%s: NIfTI-1 dimensions are at most 32767; volume is %lldx%lldx%lld", path,
                     (long long)v->nx, (long long)v->ny, (long long)v->nz);

  uint8_t h[VOX_OFFSET];
  memset(h, 0, sizeof h);
  /* RAS affine: LPS affine with rows x and y negated. */
  double lps[4][4], ras[4][4];
  t3d_volume_affine(v, lps);
  memcpy(ras, lps, sizeof ras);
  for (int c = 0; c < 4; c++)
    ras[0][c] = -lps[0][c], ras[1][c] = -lps[1][c];
  double dir_ras[3][3];
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++)
      dir_ras[r][c] = (r < 2 ? -1 : 1) * v->dir[r][c];
  double qb, qc, qd, qfac;
  rotation_to_quaternion(dir_ras, &qb, &qc, &qd, &qfac);

  put32(h, 0, HDR_SIZE);
  h[39] = 0; /* dim_info */
  put16(h, 40, 3);
  put16(h, 42, (int)v->nx);
  put16(h, 44, (int)v->ny);
  put16(h, 46, (int)v->nz);
  for (int i = 4; i < 8; i++)
    put16(h, 40 + 2 * i, 1);
  size_t esize = datatype == 2 ? 1 : 4;
  put16(h, 70, datatype); /* DT_UINT8 or DT_FLOAT32 */
  put16(h, 72, (int)(8 * esize));
  putf(h, 76, qfac);
  for (int i = 0; i < 3; i++)
    putf(h, 80 + 4 * i, v->spacing[i]);
  for (int i = 4; i < 8; i++)
    putf(h, 76 + 4 * i, 1.0);
  putf(h, 108, VOX_OFFSET);
  putf(h, 112, 1.0); /* scl_slope */
  putf(h, 116, 0.0);
  h[123] = 2 | 8; /* xyzt_units: mm, s */
  snprintf((char *)h + 148, 80, "t3d %.75s", v->meta.series_description);
  put16(h, 252, 1); /* qform_code: scanner */
  put16(h, 254, 1); /* sform_code: scanner */
  putf(h, 256, qb);
  putf(h, 260, qc);
  putf(h, 264, qd);
  putf(h, 268, ras[0][3]);
  putf(h, 272, ras[1][3]);
  putf(h, 276, ras[2][3]);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      putf(h, 280 + 16 * r + 4 * c, ras[r][c]);
  memcpy(h + 344, "n+1", 4);

  size_t nbytes = t3d_volume_nvoxels(v) * esize;
  bool gz = ends_with(path, ".gz");
  if (gz) {
    /* Level 1: 10x faster than 6 on float CT for ~20% larger files (100 MiB: 2 s vs 21 s). */
    gzFile f = gzopen(path, "wb1");
    if (!f)
      return t3d_error(T3D_ERR_IO, "cannot create %s: %s", path, strerror(errno ? errno : ENOMEM));
    bool ok = gzwrite(f, h, VOX_OFFSET) == VOX_OFFSET;
    const uint8_t *p = (const uint8_t *)data; /* float32 little-endian: x86 and ARM hosts */
    for (size_t off = 0; ok && off < nbytes;) {
      unsigned chunk = nbytes - off > (1u << 30) ? (1u << 30) : (unsigned)(nbytes - off);
      ok = gzwrite(f, p + off, chunk) == (int)chunk;
      off += chunk;
    }
    int errnum = 0;
    const char *zmsg = ok ? "" : gzerror(f, &errnum);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", errnum == Z_ERRNO ? strerror(errno) : zmsg);
    if (gzclose(f) != Z_OK && ok) {
      ok = false;
      snprintf(msg, sizeof msg, "%s", strerror(errno));
    }
    if (!ok) {
      remove(path);
      return t3d_error(T3D_ERR_IO, "cannot write %s: %s", path, msg);
    }
    return T3D_OK;
  }
  FILE *f = fopen(path, "wb");
  if (!f)
    return t3d_error(T3D_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  bool ok = fwrite(h, 1, VOX_OFFSET, f) == VOX_OFFSET && fwrite(data, 1, nbytes, f) == nbytes;
  int err = errno;
  if (fclose(f) != 0 && ok)
    ok = false, err = errno;
  if (!ok) {
    remove(path);
    return t3d_error(T3D_ERR_IO, "cannot write %s: %s", path, strerror(err));
  }
  return T3D_OK;
}

t3d_status t3d_nifti_write(const t3d_volume *v, const char *path)
{
  if (!v || !v->data || !path)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_nifti_write: volume and path are required");
  return write_voxels(v, v->data, 16, path);
}

t3d_status t3d_nifti_write_u8(const t3d_volume *geometry, const uint8_t *labels, const char *path)
{
  if (!geometry || !labels || !path)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_nifti_write_u8: geometry, labels and path are required");
  return write_voxels(geometry, labels, 2, path);
}

/* ---- reader ------------------------------------------------------------------------------- */

/* Where the reader's bytes come from: a gzFile (a path; zlib reads plain files through too) or a
 * caller's buffer, inflated here when it starts with the gzip magic, as gzopen decides. */
typedef struct {
  gzFile gz;
  const uint8_t *mem;
  size_t mem_len, mem_pos;
  z_stream zs;
  bool inflating;
} nifti_src;

/* Up to n (<= 1 GiB) bytes into buf: the count, 0 at end of data (truncated gzip included, as
 * gzread reports it), -1 on corrupt gzip data or a read error. */
static int src_read(nifti_src *s, uint8_t *buf, unsigned n)
{
  if (s->gz) {
    int got = gzread(s->gz, buf, n);
    if (got < 0) {
      int errnum = 0;
      gzerror(s->gz, &errnum);
      return errnum == Z_BUF_ERROR ? 0 : -1;
    }
    return got;
  }
  if (!s->inflating) {
    size_t left = s->mem_len - s->mem_pos, k = left < n ? left : n;
    if (k)
      memcpy(buf, s->mem + s->mem_pos, k);
    s->mem_pos += k;
    return (int)k;
  }
  s->zs.next_out = buf;
  s->zs.avail_out = n;
  while (s->zs.avail_out > 0) {
    if (s->zs.avail_in == 0)
      break; /* input ends (mid-stream: truncated) */
    int zr = inflate(&s->zs, Z_NO_FLUSH);
    if (zr == Z_STREAM_END) {
      /* another gzip member follows (gzread concatenates them); anything else is ignored */
      if (s->zs.avail_in >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b) {
        if (inflateReset(&s->zs) != Z_OK)
          return -1;
        continue;
      }
      s->zs.avail_in = 0;
      break;
    }
    if (zr == Z_BUF_ERROR)
      break;
    if (zr != Z_OK)
      return -1;
  }
  return (int)(n - s->zs.avail_out);
}

/* Reads exactly n bytes; false at end of data or on error (*io_err says which). */
static bool read_all(nifti_src *s, void *buf, size_t n, bool *io_err)
{
  uint8_t *p = buf;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int got = src_read(s, p, chunk);
    if (got <= 0) {
      *io_err = got < 0;
      return false;
    }
    p += got;
    n -= (size_t)got;
  }
  return true;
}

static size_t datatype_size(int dt)
{
  switch (dt) {
  case 2: case 256: return 1;
  case 4: case 512: return 2;
  case 8: case 16: case 768: return 4;
  case 64: return 8;
  default: return 0;
  }
}

static double sample(const uint8_t *p, int dt, bool swap)
{
  uint8_t b[8];
  size_t n = datatype_size(dt);
  for (size_t i = 0; i < n; i++)
    b[i] = swap ? p[n - 1 - i] : p[i];
  switch (dt) {
  case 2: return b[0];
  case 256: return (int8_t)b[0];
  case 4: { int16_t x; memcpy(&x, b, 2); return x; }
  case 512: { uint16_t x; memcpy(&x, b, 2); return x; }
  case 8: { int32_t x; memcpy(&x, b, 4); return x; }
  case 768: { uint32_t x; memcpy(&x, b, 4); return x; }
  case 16: { float x; memcpy(&x, b, 4); return x; }
  case 64: { double x; memcpy(&x, b, 8); return x; }
  default: return 0;
  }
}

/* The parser proper, shared by both entry points; path names the input in messages. */
static t3d_status nifti_parse(nifti_src *src, const char *path, t3d_volume **out, t3d_nifti_info *info)
{
  t3d_status st = T3D_OK;
  uint8_t *raw = NULL;
  t3d_volume *v = NULL;
  t3d_nifti_info inf;
  uint8_t h[HDR_SIZE];
  bool io_err = false;

  memset(&inf, 0, sizeof inf);
  if (!read_all(src, h, HDR_SIZE, &io_err)) {
    st = io_err ? t3d_error(T3D_ERR_IO, "cannot read %s: corrupt gzip data or read error", path)
                : t3d_error(T3D_ERR_FORMAT, "%s: shorter than a NIfTI-1 header (348 bytes)", path);
    goto cleanup;
  }
  bool swap;
  uint32_t sz = get32(h, 0, false);
  if (sz == HDR_SIZE)
    swap = false;
  else if (get32(h, 0, true) == HDR_SIZE)
    swap = true;
  else if (sz == 540 || get32(h, 0, true) == 540) {
    st = t3d_error(T3D_ERR_UNSUPPORTED, "%s is NIfTI-2; t3d reads NIfTI-1 only", path);
    goto cleanup;
  } else {
    st = t3d_error(T3D_ERR_FORMAT, "%s is not a NIfTI-1 file (sizeof_hdr is %u, want 348)", path, (unsigned)sz);
    goto cleanup;
  }
  if (memcmp(h + 344, "n+1", 4) != 0) {
    st = memcmp(h + 344, "ni1", 4) == 0
           ? t3d_error(T3D_ERR_UNSUPPORTED, "%s is a .hdr/.img pair header; t3d reads single-file .nii only", path)
           : t3d_error(T3D_ERR_FORMAT, "%s: bad NIfTI-1 magic (want \"n+1\")", path);
    goto cleanup;
  }
  int ndim = get16(h, 40, swap);
  int64_t dim[8];
  for (int i = 0; i < 8; i++)
    dim[i] = get16(h, 40 + 2 * i, swap);
  if (ndim < 1 || ndim > 7) {
    st = t3d_error(T3D_ERR_FORMAT, "%s: dim[0] is %d, must be 1..7", path, ndim);
    goto cleanup;
  }
  for (int i = 1; i <= ndim; i++)
    if (dim[i] < 1) {
      st = t3d_error(T3D_ERR_FORMAT, "%s: dim[%d] is %lld, must be positive", path, i, (long long)dim[i]);
      goto cleanup;
    }
  for (int i = ndim + 1; i <= 3; i++)
    dim[i] = 1;
  for (int i = 4; i <= ndim; i++)
    if (dim[i] != 1) {
      st = t3d_error(T3D_ERR_UNSUPPORTED, "%s has %d dimensions (dim[%d] = %lld); t3d reads 3-D volumes only", path,
                     ndim, i, (long long)dim[i]);
      goto cleanup;
    }
  inf.datatype = get16(h, 70, swap);
  inf.bitpix = get16(h, 72, swap);
  size_t esize = datatype_size(inf.datatype);
  if (esize == 0) {
    st = t3d_error(T3D_ERR_UNSUPPORTED, "%s: NIfTI datatype %d is not a scalar type t3d reads", path, inf.datatype);
    goto cleanup;
  }
  if ((size_t)inf.bitpix != 8 * esize) {
    st = t3d_error(T3D_ERR_FORMAT, "%s: bitpix %d does not match datatype %d", path, inf.bitpix, inf.datatype);
    goto cleanup;
  }
  double pix[3], vox_offset = getf(h, 108, swap);
  for (int i = 0; i < 3; i++) {
    pix[i] = fabs(getf(h, 80 + 4 * i, swap));
    if (!(pix[i] > 0) || !isfinite(pix[i]))
      pix[i] = 1.0; /* NIfTI: non-positive pixdim means unknown */
  }
  inf.qfac = getf(h, 76, swap) < 0 ? -1.0 : 1.0;
  if (!(vox_offset >= VOX_OFFSET) || vox_offset > 1e9 || vox_offset != floor(vox_offset)) {
    st = t3d_error(T3D_ERR_FORMAT, "%s: vox_offset %g is not an integer >= 352", path, vox_offset);
    goto cleanup;
  }
  inf.scl_slope = getf(h, 112, swap);
  inf.scl_inter = getf(h, 116, swap);
  if (!isfinite(inf.scl_slope) || !isfinite(inf.scl_inter)) {
    st = t3d_error(T3D_ERR_FORMAT, "%s: scl_slope/scl_inter are not finite", path);
    goto cleanup;
  }
  inf.qform_code = get16(h, 252, swap);
  inf.sform_code = get16(h, 254, swap);
  quaternion_to_affine(getf(h, 256, swap), getf(h, 260, swap), getf(h, 264, swap), getf(h, 268, swap),
                       getf(h, 272, swap), getf(h, 276, swap), pix, inf.qfac, inf.qform_ras);
  if (inf.sform_code > 0) {
    for (int r = 0; r < 3; r++)
      for (int c = 0; c < 4; c++)
        inf.sform_ras[r][c] = getf(h, 280 + 16 * r + 4 * c, swap);
    inf.sform_ras[3][3] = 1;
  }

  double ras[4][4];
  if (inf.sform_code > 0)
    memcpy(ras, inf.sform_ras, sizeof ras);
  else if (inf.qform_code > 0)
    memcpy(ras, inf.qform_ras, sizeof ras);
  else {
    memset(ras, 0, sizeof ras);
    for (int i = 0; i < 3; i++)
      ras[i][i] = pix[i];
    ras[3][3] = 1;
  }
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      if (!isfinite(ras[r][c])) {
        st = t3d_error(T3D_ERR_FORMAT, "%s: the %s affine has non-finite entries", path,
                       inf.sform_code > 0 ? "sform" : "qform");
        goto cleanup;
      }

  /* Voxels first, into a buffer that grows with the data actually present, so a header that
   * claims a huge volume costs memory only as far as the file really goes. */
  int64_t shape[3] = {dim[3], dim[2], dim[1]};
  size_t nbytes = 0;
  if (!t3d_shape_nbytes(T3D_F32, 3, shape, &nbytes) || nbytes / 4 > SIZE_MAX / esize) {
    st = t3d_error(T3D_ERR_FORMAT, "%s: dimensions %lldx%lldx%lld overflow", path, (long long)dim[1],
                   (long long)dim[2], (long long)dim[3]);
    goto cleanup;
  }
  size_t nvox = nbytes / 4, want = nvox * esize, have = 0, cap = 0;
  size_t skip = (size_t)vox_offset - HDR_SIZE; /* extensions, if any, are ignored */
  uint8_t pad[4096];
  while (skip > 0) {
    size_t n = skip < sizeof pad ? skip : sizeof pad;
    if (!read_all(src, pad, n, &io_err)) {
      st = t3d_error(io_err ? T3D_ERR_IO : T3D_ERR_FORMAT, "%s: ends before vox_offset %g", path, vox_offset);
      goto cleanup;
    }
    skip -= n;
  }
  while (have < want) {
    if (have == cap) {
      size_t ncap = cap ? (cap > want / 2 ? want : 2 * cap) : (want < (64u << 20) ? want : (64u << 20));
      uint8_t *r = realloc(raw, ncap);
      if (!r) {
        st = t3d_error(T3D_ERR_NOMEM, "%s: out of memory for %zu voxels", path, nvox);
        goto cleanup;
      }
      raw = r, cap = ncap;
    }
    unsigned chunk = cap - have > (1u << 30) ? (1u << 30) : (unsigned)(cap - have);
    int got = src_read(src, raw + have, chunk);
    if (got <= 0) {
      st = got < 0
             ? t3d_error(T3D_ERR_IO, "cannot read %s: corrupt gzip data or read error", path)
             : t3d_error(T3D_ERR_FORMAT, "%s is truncated: header declares %zu voxels of %zu bytes, data has %zu bytes",
                         path, nvox, esize, have);
      goto cleanup;
    }
    have += (size_t)got;
  }

  if ((st = t3d_volume_new(&v, dim[1], dim[2], dim[3])) != T3D_OK) {
    t3d_error_prefix("%s: ", path);
    goto cleanup;
  }
  for (int c = 0; c < 3; c++) {
    double n = 0;
    for (int r = 0; r < 3; r++)
      n += ras[r][c] * ras[r][c];
    n = sqrt(n);
    if (!(n > 0)) {
      st = t3d_error(T3D_ERR_FORMAT, "%s: affine column %d is zero (degenerate geometry)", path, c);
      goto cleanup;
    }
    v->spacing[c] = n;
    for (int r = 0; r < 3; r++)
      v->dir[r][c] = (r < 2 ? -1 : 1) * ras[r][c] / n;
  }
  for (int r = 0; r < 3; r++)
    v->origin[r] = (r < 2 ? -1 : 1) * ras[r][3];

  bool scale = inf.scl_slope != 0 && !(inf.scl_slope == 1 && inf.scl_inter == 0);
  for (size_t i = 0; i < nvox; i++) {
    double x = sample(raw + i * esize, inf.datatype, swap);
    v->data[i] = (float)(scale ? x * inf.scl_slope + inf.scl_inter : x);
  }
  *out = v;
  v = NULL;

cleanup:
  if (info)
    *info = inf;
  free(raw);
  t3d_volume_free(v);
  return st;
}

t3d_status t3d_nifti_read(const char *path, t3d_volume **out, t3d_nifti_info *info)
{
  nifti_src src = {0};

  if (!out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_nifti_read: out is required");
  *out = NULL;
  if (!path)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_nifti_read: path is required");
  errno = 0;
  src.gz = gzopen(path, "rb");
  if (!src.gz)
    return t3d_error(T3D_ERR_IO, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
  t3d_status st = nifti_parse(&src, path, out, info);
  gzclose(src.gz);
  return st;
}

t3d_status t3d_nifti_read_memory(const void *data, size_t size, const char *name, t3d_volume **out,
                                 t3d_nifti_info *info)
{
  nifti_src src = {0};

  if (!out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_nifti_read_memory: out is required");
  *out = NULL;
  if (!data && size)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_nifti_read_memory: data is NULL");
  if (!name)
    name = "NIfTI data";
  src.mem = data;
  src.mem_len = size;
  if (size >= 2 && src.mem[0] == 0x1f && src.mem[1] == 0x8b) {
    if (size > UINT_MAX) /* zlib counts input in uInt */
      return t3d_error(T3D_ERR_UNSUPPORTED, "%s: gzip data over 4 GiB in memory; read it from a file", name);
    if (inflateInit2(&src.zs, 16 + MAX_WBITS) != Z_OK)
      return t3d_error(T3D_ERR_NOMEM, "%s: cannot start gzip decompression (out of memory)", name);
    src.zs.next_in = (Bytef *)(uintptr_t)src.mem; /* zlib's API is not const; it only reads */
    src.zs.avail_in = (uInt)size;
    src.inflating = true;
  }
  t3d_status st = nifti_parse(&src, name, out, info);
  if (src.inflating)
    inflateEnd(&src.zs);
  return st;
}
