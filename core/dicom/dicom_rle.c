/* DICOM RLE Lossless (PS3.5 Annex G) decoding of one frame: a 64-byte header of segment offsets,
 * then one PackBits segment per byte plane, most significant plane first. Ours because the
 * general-purpose decoder costs several times more per slice; not an encoder. */
#include <stdint.h>
#include <string.h>

#include "core/dicom/dicom_internal.h"

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Expands PackBits src[0..n) into the npix bytes of dst. 0 when the segment ends early or
 * overruns the plane. */
static int unpack_plane(const uint8_t *src, size_t n, uint8_t *dst, size_t npix)
{
  size_t i = 0, o = 0;
  while (o < npix) {
    if (i >= n)
      return 0;
    int c = (int8_t)src[i++];
    if (c >= 0) {
      size_t len = (size_t)c + 1;
      if (len > n - i || len > npix - o)
        return 0;
      memcpy(dst + o, src + i, len);
      i += len;
      o += len;
    } else if (c != -128) {
      size_t len = (size_t)(1 - c);
      if (i >= n || len > npix - o)
        return 0;
      uint8_t b = src[i++];
      memset(dst + o, b, len);
      o += len;
    }
  }
  return 1;
}

t3d_status t3d_dcm_rle_decode(const uint8_t *buf, size_t size, size_t npix, int bits_allocated, uint8_t *out,
                              uint8_t *planes)
{
  size_t nplanes = (size_t)bits_allocated / 8;
  if ((bits_allocated != 8 && bits_allocated != 16) || size < 64)
    return t3d_error(T3D_ERR_FORMAT, "RLE frame of %zu bytes at %d bits allocated: no room for its header", size,
                     bits_allocated);
  uint32_t nseg = le32(buf);
  if (nseg != nplanes)
    return t3d_error(T3D_ERR_FORMAT, "RLE frame has %u segments; %d-bit grey pixels need %zu", (unsigned)nseg,
                     bits_allocated, nplanes);
  for (size_t s = 0; s < nplanes; s++) {
    uint32_t at = le32(buf + 4 + 4 * s), end = s + 1 < nplanes ? le32(buf + 8 + 4 * s) : (uint32_t)size;
    if (at < 64 || end < at || end > size)
      return t3d_error(T3D_ERR_FORMAT, "RLE segment %zu at bytes %u..%u lies outside its %zu-byte frame", s + 1,
                       (unsigned)at, (unsigned)end, size);
    if (!unpack_plane(buf + at, end - at, nplanes == 1 ? out : planes + s * npix, npix))
      return t3d_error(T3D_ERR_FORMAT, "RLE segment %zu does not decode to %zu samples", s + 1, npix);
  }
  if (nplanes == 2) { /* segment 1 holds the most significant bytes */
    const uint8_t *msb = planes, *lsb = planes + npix;
    uint16_t *w = (uint16_t *)(void *)out;
    for (size_t i = 0; i < npix; i++)
      w[i] = (uint16_t)(msb[i] << 8 | lsb[i]);
  }
  return T3D_OK;
}
