/* Seeds for the NIfTI fuzz target: files from t3d_nifti_write (.nii and .nii.gz) and header
 * variants covering each datatype, byte order, geometry source, extension, 4-D and
 * unsupported-format branch of the reader, gzip-compressed ones too, plus regression inputs.
 * Also checks that t3d_nifti_read_memory reads the writer's files as t3d_nifti_read does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/dicom/nifti.h"
#include "core/model/phantom.h"
#include "tests/fuzz/run-corpus.h"

const char fuzz_target_name[] = "nifti";
const size_t fuzz_min_seeds = 20;

static void put16(uint8_t *b, size_t off, int v)
{
  b[off] = (uint8_t)v, b[off + 1] = (uint8_t)(v >> 8);
}

static void putf(uint8_t *b, size_t off, float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  for (int i = 0; i < 4; i++)
    b[off + i] = (uint8_t)(u >> (8 * i));
}

static void swap_bytes(uint8_t *b, size_t off, size_t width)
{
  for (size_t i = 0; i < width / 2; i++) {
    uint8_t t = b[off + i];
    b[off + i] = b[off + width - 1 - i], b[off + width - 1 - i] = t;
  }
}

/* Whole file converted to big-endian (header fields and float32 voxels). */
static void to_big_endian(uint8_t *b, size_t len)
{
  static const struct { size_t off, width, count; } fields[] = {
    {0, 4, 1}, {40, 2, 8}, {56, 4, 3}, {68, 2, 3}, {76, 4, 8}, {108, 4, 3}, {120, 2, 1},
    {124, 4, 6}, {252, 2, 2}, {256, 4, 22}};
  for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
    for (size_t k = 0; k < fields[f].count; k++)
      swap_bytes(b, fields[f].off + k * fields[f].width, fields[f].width);
  for (size_t off = 352; off + 4 <= len; off += 4)
    swap_bytes(b, off, 4);
}

/* gzip of len bytes, as `members` concatenated members; *out is malloc'ed. */
static bool gzip_bytes(const uint8_t *in, size_t len, int members, uint8_t **out, size_t *out_len)
{
  size_t cap = len + 256 * (size_t)members + 1024, have = 0;
  uint8_t *buf = malloc(cap);
  if (!buf)
    return false;
  size_t per = len / (size_t)members + 1;
  for (int m = 0; m < members; m++) {
    size_t a = per * (size_t)m < len ? per * (size_t)m : len, b = a + per < len ? a + per : len;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      goto fail;
    zs.next_in = (Bytef *)(uintptr_t)(in + a);
    zs.avail_in = (uInt)(b - a);
    zs.next_out = buf + have;
    zs.avail_out = (uInt)(cap - have);
    int zr = deflate(&zs, Z_FINISH);
    have = cap - zs.avail_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END)
      goto fail;
  }
  *out = buf, *out_len = have;
  return true;
fail:
  free(buf);
  return false;
}

static bool add_gz(fuzz_seeds *s, const char *name, const uint8_t *b, size_t len, int members)
{
  uint8_t *gz = NULL;
  size_t n = 0;
  bool ok = gzip_bytes(b, len, members, &gz, &n) && fuzz_seeds_add(s, name, gz, n);
  free(gz);
  if (!ok)
    fprintf(stderr, "cannot gzip seed %s\n", name);
  return ok;
}

/* t3d_nifti_read on the file at path and t3d_nifti_read_memory on its bytes must agree: same
 * status, and the same volume and info when both succeed. */
static bool same_read(const char *path, const uint8_t *bytes, size_t len)
{
  t3d_volume *a = NULL, *b = NULL;
  t3d_nifti_info ia, ib;
  t3d_status sa = t3d_nifti_read(path, &a, &ia), sb = t3d_nifti_read_memory(bytes, len, path, &b, &ib);
  bool ok = sa == sb;
  if (ok && sa == T3D_OK)
    ok = a->nx == b->nx && a->ny == b->ny && a->nz == b->nz &&
         memcmp(a->data, b->data, t3d_volume_nvoxels(a) * sizeof(float)) == 0 &&
         memcmp(a->spacing, b->spacing, sizeof a->spacing) == 0 && memcmp(a->dir, b->dir, sizeof a->dir) == 0 &&
         memcmp(a->origin, b->origin, sizeof a->origin) == 0 && memcmp(&ia, &ib, sizeof ia) == 0;
  if (!ok)
    fprintf(stderr, "%s: t3d_nifti_read (status %d) and t3d_nifti_read_memory (status %d) disagree\n", path, sa, sb);
  t3d_volume_free(a);
  t3d_volume_free(b);
  return ok;
}

bool fuzz_make_seeds(fuzz_seeds *s)
{
  char dir[4096], path[4200];
  t3d_volume *v = NULL;
  uint8_t *b = NULL, *orig = NULL;
  bool ok = false;

  if (!fuzz_tmpdir(dir, sizeof dir))
    return false;
  t3d_phantom_params pp = t3d_phantom_default_params();
  pp.nx = 6, pp.ny = 5, pp.nz = 3;
  pp.orientation = T3D_PHANTOM_OBLIQUE;
  if (t3d_phantom_ct(&pp, &v) != T3D_OK)
    goto done;
  snprintf(v->meta.series_description, sizeof v->meta.series_description, "fuzz seed");
  const char *kinds[2] = {".nii", ".nii.gz"};
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "%s/valid%s", dir, kinds[k]);
    if (t3d_nifti_write(v, path) != T3D_OK || !fuzz_seeds_add_file(s, path + strlen(dir) + 1, path))
      goto done;
  }
  /* the plain file, copied: s->v moves as it grows */
  size_t len = s->v[s->n - 2].len, nvox = t3d_volume_nvoxels(v);
  orig = malloc(len);
  b = malloc(len + 8 * nvox + 64); /* room for float64 voxels or an extension */
  if (!orig || !b)
    goto done;
  memcpy(orig, s->v[s->n - 2].bytes, len);

#define VARIANT(name, edit, n_bytes)                                                    \
  do {                                                                                  \
    memcpy(b, orig, len);                                                               \
    edit;                                                                               \
    if (!fuzz_seeds_add(s, name, b, n_bytes))                                           \
      goto done;                                                                        \
  } while (0)

  /* datatype variants (code, bitpix); float64 gets twice the data (the extra is zeros) */
  static const int types[][2] = {{2, 8}, {256, 8}, {4, 16}, {512, 16}, {8, 32}, {768, 32}, {64, 64},
                                 {128, 24}, {32, 64}, {4, 8}};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    char name[32];
    snprintf(name, sizeof name, "dt%d-bp%d.nii", types[t][0], types[t][1]);
    VARIANT(name, (put16(b, 70, types[t][0]), put16(b, 72, types[t][1]), memset(b + len, 0, 4 * nvox)),
            types[t][0] == 64 ? len + 4 * nvox : len);
  }
  VARIANT("scaled-int16.nii", (put16(b, 70, 4), put16(b, 72, 16), putf(b, 112, 2.0f), putf(b, 116, -1024.0f)), len);
  VARIANT("qform-only.nii", put16(b, 254, 0), len);
  VARIANT("pixdim-only.nii", (put16(b, 252, 0), put16(b, 254, 0), putf(b, 80, -2.0f), putf(b, 84, 0.0f)), len);
  VARIANT("qform-180.nii", (put16(b, 254, 0), putf(b, 256, 1.0f), putf(b, 260, 0.0f), putf(b, 264, 0.0f)), len);
  VARIANT("qfac-neg.nii", (put16(b, 254, 0), putf(b, 76, -1.0f)), len);
  VARIANT("sform-zero-col.nii", (putf(b, 280, 0.0f), putf(b, 296, 0.0f), putf(b, 312, 0.0f)), len);
  VARIANT("sform-inf.nii", putf(b, 284, 1e38f * 10.0f), len);
  VARIANT("2d.nii", put16(b, 40, 2), len);
  VARIANT("4d-1.nii", (put16(b, 40, 4), put16(b, 48, 1)), len);
  VARIANT("4d-2.nii", (put16(b, 40, 4), put16(b, 48, 2)), len);
  VARIANT("dim0-8.nii", put16(b, 40, 8), len);
  VARIANT("dim-neg.nii", put16(b, 44, -5), len);
  VARIANT("huge-dims.nii", (put16(b, 42, 32767), put16(b, 44, 32767), put16(b, 46, 32767)), len);
  VARIANT("pair-ni1.nii", memcpy(b + 344, "ni1", 4), len);
  VARIANT("nifti2.nii", (b[0] = 0x1c, b[1] = 0x02), len);
  VARIANT("bad-magic.nii", b[345] = 'x', len);
  VARIANT("vox-offset-frac.nii", putf(b, 108, 352.5f), len);
  VARIANT("vox-offset-far.nii", putf(b, 108, 1e8f), len);
  VARIANT("slope-nan.nii", putf(b, 112, 0.0f / 0.0f), len);
  /* an extension: flag 1, then (esize 32, ecode 6, 24 bytes) before the voxels */
  VARIANT("extension.nii",
          (memmove(b + 384, orig + 352, len - 352), memset(b + 348, 0, 36), b[348] = 1, b[352] = 32, b[356] = 6,
           putf(b, 108, 384.0f)),
          len + 32);
  VARIANT("big-endian.nii", to_big_endian(b, len), len);
  memcpy(b, orig, len);
  to_big_endian(b, len);
  if (!add_gz(s, "big-endian.nii.gz", b, len, 1) || !add_gz(s, "two-members.nii.gz", orig, len, 2) ||
      !add_gz(s, "header-only.nii.gz", orig, 352, 1))
    goto done;
#undef VARIANT

  /* every seed, read from a file and from memory, must give the same result */
  for (size_t i = 0; i < s->n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, s->v[i].name);
    FILE *f = fopen(path, "wb");
    bool written = f && fwrite(s->v[i].bytes, 1, s->v[i].len, f) == s->v[i].len;
    if (f && fclose(f) != 0)
      written = false;
    if (!written) {
      fprintf(stderr, "cannot write %s\n", path);
      goto done;
    }
    if (!same_read(path, s->v[i].bytes, s->v[i].len))
      goto done;
  }
  ok = true;
done:
  free(orig);
  free(b);
  t3d_volume_free(v);
  fuzz_rmtree(dir);
  return ok;
}
