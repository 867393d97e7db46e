/* Internal boundary between the C writer (core/dicomwrite.c) and DCMTK (core/dicom_write_shim.cc):
 * the C side decides every attribute value; the shim only builds the data set, compresses and
 * saves it. Not public API; never throws (every C++ exception becomes a t3d_status). */
#ifndef T3D_DICOM_WRITE_SHIM_H
#define T3D_DICOM_WRITE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/dicomwrite.h"
#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One attribute, value as its DICOM string form (multiple values separated by '\\'); the VR
 * comes from DCMTK's data dictionary. */
typedef struct {
  uint16_t group, element;
  const char *value;
} t3d_dcmw_attr;

typedef struct {
  const t3d_dcmw_attr *attrs;
  size_t nattrs;
  int bits_allocated;          /* 8 or 16: native pixels are uint8 or 16-bit words */
  const void *pixels;          /* rows*cols samples, row-major; used unless encapsulated is set */
  size_t npixels;
  t3d_dicom_syntax syntax;
  const uint8_t *encapsulated; /* J2K: one already compressed frame (codestream) */
  size_t encapsulated_len;
} t3d_dcmw_image;

/* Writes one file at path (created or truncated) in img->syntax. Errors: T3D_ERR_IO (cannot
 * write; message names path), T3D_ERR_UNSUPPORTED (codec refused), T3D_ERR_NOMEM. */
t3d_status t3d_dcmw_write_file(const t3d_dcmw_image *img, const char *path);

#ifdef __cplusplus
}
#endif
#endif
