/* Internal boundary between the C writer (core/dicom/dicomwrite.c) and DCMTK (core/dicom/dicom_write_shim.cc):
 * the C side decides every attribute value; the shim only builds the data set, compresses and
 * saves it. Not public API; never throws (every C++ exception becomes a t3d_status). */
#ifndef T3D_DICOM_WRITE_SHIM_H
#define T3D_DICOM_WRITE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/dicom/dicomwrite.h"
#include "core/base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One attribute, value as its DICOM string form (multiple values separated by '\\'); the VR
 * comes from DCMTK's data dictionary. depth > 0 places it inside sequence items: item[d] of
 * sequence seq[d], nested in that order (created as needed, so list a sequence's items in
 * order). value NULL inserts the element empty (an empty sequence for SQ tags). */
#define T3D_DCMW_MAX_DEPTH 3
typedef struct {
  uint32_t tag; /* group << 16 | element */
  const char *value;
  int depth;
  uint32_t seq[T3D_DCMW_MAX_DEPTH];
  int32_t item[T3D_DCMW_MAX_DEPTH];
} t3d_dcmw_attr;

typedef struct {
  const t3d_dcmw_attr *attrs;
  size_t nattrs;
  int bits_allocated;          /* 8 or 16: native pixels are uint8 or 16-bit words */
  const void *pixels;          /* nframes*rows*cols samples, frame by frame, row-major; used
                                  unless encapsulated frames are given */
  size_t npixels;
  t3d_dicom_syntax syntax;
  const uint8_t *const *encapsulated; /* J2K: one already compressed codestream per frame */
  const size_t *encapsulated_len;
  size_t nframes;
} t3d_dcmw_image;

/* Writes one file at path (created or truncated) in img->syntax. Errors: T3D_ERR_IO (cannot
 * write; message names path), T3D_ERR_UNSUPPORTED (codec refused), T3D_ERR_NOMEM. */
t3d_status t3d_dcmw_write_file(const t3d_dcmw_image *img, const char *path);

#ifdef __cplusplus
}
#endif
#endif
