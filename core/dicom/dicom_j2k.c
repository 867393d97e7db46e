/* JPEG 2000 Pixel Data (transfer syntaxes 1.2.840.10008.1.2.4.90/.91) decoded with OpenJPEG,
 * since open-source DCMTK has no J2K codec: fragment-to-frame grouping and one-frame decoding
 * from memory. Not a general J2K reader: one grey component, the DICOM frame size, no JPIP. */
#include <openjpeg.h>
#include <stdlib.h>
#include <string.h>

#include "core/dicom/dicom_internal.h"

typedef struct {
  const uint8_t *buf;
  size_t size, pos;
} mem_stream;

static OPJ_SIZE_T mem_read(void *dst, OPJ_SIZE_T n, void *user)
{
  mem_stream *m = user;
  if (m->pos >= m->size)
    return (OPJ_SIZE_T)-1;
  if (n > m->size - m->pos)
    n = m->size - m->pos;
  memcpy(dst, m->buf + m->pos, n);
  m->pos += n;
  return n;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user)
{
  mem_stream *m = user;
  if (n < 0) {
    if ((size_t)-n > m->pos)
      n = -(OPJ_OFF_T)m->pos;
  } else if ((size_t)n > m->size - m->pos) {
    n = (OPJ_OFF_T)(m->size - m->pos);
  }
  m->pos = (size_t)((OPJ_OFF_T)m->pos + n);
  return n;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T n, void *user)
{
  mem_stream *m = user;
  if (n < 0 || (size_t)n > m->size)
    return OPJ_FALSE;
  m->pos = (size_t)n;
  return OPJ_TRUE;
}

/* OpenJPEG reports through callbacks; keep the last error line for our message. */
static void on_error(const char *msg, void *user)
{
  char *last = user;
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    n--;
  if (n > 199)
    n = 199;
  memcpy(last, msg, n);
  last[n] = '\0';
}

static void on_quiet(const char *msg, void *user) { (void)msg, (void)user; }

t3d_status t3d_dcm_j2k_decode(const uint8_t *buf, size_t size, int rows, int cols, int bits_stored,
                              int pixel_rep, int32_t *out)
{
  static const uint8_t jp2_magic[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 13, 10, 0x87, 10};
  mem_stream m = {buf, size, 0};
  opj_stream_t *stream = NULL;
  opj_codec_t *codec = NULL;
  opj_image_t *image = NULL;
  opj_dparameters_t params;
  char last_error[200] = "";
  t3d_status st = T3D_OK;

  if (size < 12)
    return t3d_error(T3D_ERR_FORMAT, "JPEG 2000 frame of %zu bytes is too short", size);
  codec = opj_create_decompress(memcmp(buf, jp2_magic, 12) == 0 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
  stream = opj_stream_create(size, OPJ_TRUE);
  if (!codec || !stream) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory creating a JPEG 2000 decoder");
    goto cleanup;
  }
  opj_set_error_handler(codec, on_error, last_error);
  opj_set_warning_handler(codec, on_quiet, NULL);
  opj_set_info_handler(codec, on_quiet, NULL);
  opj_stream_set_user_data(stream, &m, NULL);
  opj_stream_set_user_data_length(stream, size);
  opj_stream_set_read_function(stream, mem_read);
  opj_stream_set_skip_function(stream, mem_skip);
  opj_stream_set_seek_function(stream, mem_seek);
  opj_set_default_decoder_parameters(&params);
  if (!opj_setup_decoder(codec, &params)) {
    st = t3d_error(T3D_ERR_INTERNAL, "OpenJPEG rejected the default decoder parameters");
    goto cleanup;
  }
  /* Code-blocks decode in parallel: a 512x512 CT frame takes ~30 ms on one core. */
  {
    int ncpu = opj_get_num_cpus();
    if (ncpu > 1)
      opj_codec_set_threads(codec, ncpu > 8 ? 8 : ncpu);
  }
  if (!opj_read_header(stream, codec, &image) ||
      !opj_decode(codec, stream, image) || !opj_end_decompress(codec, stream)) {
    st = t3d_error(T3D_ERR_FORMAT, "JPEG 2000 decoding failed: %s", last_error[0] ? last_error : "corrupt codestream");
    goto cleanup;
  }
  if (image->numcomps < 1 || image->comps[0].w != (OPJ_UINT32)cols || image->comps[0].h != (OPJ_UINT32)rows ||
      !image->comps[0].data) {
    st = t3d_error(T3D_ERR_FORMAT, "JPEG 2000 frame is %ux%u with %u components; the DICOM header says %dx%d grey",
                   image->numcomps ? image->comps[0].w : 0, image->numcomps ? image->comps[0].h : 0, image->numcomps,
                   cols, rows);
    goto cleanup;
  }
  if (image->numcomps != 1) {
    st = t3d_error(T3D_ERR_UNSUPPORTED, "JPEG 2000 frame has %u components; t3d reads grey images only",
                   image->numcomps);
    goto cleanup;
  }
  {
    const opj_image_comp_t *c = &image->comps[0];
    /* Some encoders store signed DICOM data as an unsigned codestream of the same precision;
     * the header's Pixel Representation decides, so sign-extend at bits_stored. */
    int fix_sign = pixel_rep == 1 && !c->sgnd && bits_stored > 0 && bits_stored < 32;
    int64_t half = fix_sign ? (int64_t)1 << (bits_stored - 1) : 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
      int64_t v = c->data[i];
      if (fix_sign && v >= half)
        v -= 2 * half;
      out[i] = (int32_t)v;
    }
  }

cleanup:
  if (image)
    opj_image_destroy(image);
  if (stream)
    opj_stream_destroy(stream);
  if (codec)
    opj_destroy_codec(codec);
  return st;
}

static int starts_codestream(const t3d_dcm_fragment *f)
{
  static const uint8_t jp2_magic[4] = {0, 0, 0, 12};
  return f->size >= 4 && ((f->data[0] == 0xFF && f->data[1] == 0x4F && f->data[2] == 0xFF && f->data[3] == 0x51) ||
                          memcmp(f->data, jp2_magic, 4) == 0);
}

t3d_status t3d_dcm_frames_from_fragments(const t3d_dcm_pixels *px, int frames, size_t **starts, size_t **counts)
{
  size_t *s = NULL, *n = NULL;
  *starts = *counts = NULL;
  if (frames < 1)
    return t3d_error(T3D_ERR_FORMAT, "Number of Frames %d", frames);
  s = calloc((size_t)frames, sizeof *s);
  n = calloc((size_t)frames, sizeof *n);
  if (!s || !n) {
    free(s);
    free(n);
    return t3d_error(T3D_ERR_NOMEM, "out of memory grouping %d frames", frames);
  }
  if (frames == 1) { /* a single frame may span all fragments */
    s[0] = 0;
    n[0] = px->nfrags;
  } else if (px->nfrags == (size_t)frames) {
    for (int f = 0; f < frames; f++)
      s[f] = (size_t)f, n[f] = 1;
  } else if (px->noffsets == (size_t)frames) {
    /* Offsets count bytes from the first fragment's item tag; each item adds an 8-byte header. */
    size_t f = 0;
    uint64_t pos = 0;
    for (size_t i = 0; i < px->nfrags && f < (size_t)frames; i++) {
      while (f < (size_t)frames && px->offsets[f] == pos) {
        s[f] = i;
        f++;
      }
      if (f)
        n[f - 1]++;
      pos += 8 + px->frags[i].size;
    }
    if (f != (size_t)frames)
      goto bad;
  } else { /* no usable table: a frame begins where a codestream begins */
    int f = -1;
    for (size_t i = 0; i < px->nfrags; i++) {
      if (starts_codestream(&px->frags[i]) && f + 1 < frames)
        s[++f] = i;
      if (f < 0)
        goto bad;
      n[f]++;
    }
    if (f != frames - 1)
      goto bad;
  }
  *starts = s;
  *counts = n;
  return T3D_OK;
bad:
  free(s);
  free(n);
  return t3d_error(T3D_ERR_FORMAT, "cannot match %zu JPEG 2000 fragments to %d frames (offset table has %zu entries)",
                   px->nfrags, frames, px->noffsets);
}
