/* NIfTI-1 single-file (.nii, .nii.gz) export of a t3d_volume and a reader for what we and
 * dcm2niix write (3-D scalar volumes), used by exports and tests. Not a full NIfTI library:
 * no .hdr/.img pairs, no NIfTI-2, no 4-D series, no extensions (they are skipped).
 *
 * Geometry: NIfTI world space is RAS, t3d's is DICOM LPS; the conversion negates x and y. The
 * writer stores the voxel order unchanged (i fastest, then j, then k) with sform_code = 1 and
 * qform_code = 1 (scanner), as dcm2niix does. */
#ifndef T3D_NIFTI_H
#define T3D_NIFTI_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a read file declared, for checks beyond the volume itself. */
typedef struct {
  int datatype;              /* NIfTI code: 2 uint8, 4 int16, 8 int32, 16 float32, 64 float64,
                                256 int8, 512 uint16, 768 uint32 */
  int bitpix;
  double scl_slope, scl_inter; /* as stored; slope 0 means "no scaling" */
  int qform_code, sform_code;
  double qform_ras[4][4];    /* index -> RAS mm from the quaternion fields */
  double sform_ras[4][4];    /* srow_x/y/z; zero when sform_code is 0 */
  double qfac;
} t3d_nifti_info;

/* Writes v as float32 voxels to path; gzip-compressed when path ends in ".gz".
 * Errors: T3D_ERR_IO naming the file (cannot create or write). */
t3d_status t3d_nifti_write(const t3d_volume *v, const char *path);
/* The same for a uint8 volume (label maps): nz*ny*nx values at labels in the voxel order of
 * geometry, whose size and geometry the file takes (its voxels are not read; data may be NULL). */
t3d_status t3d_nifti_write_u8(const t3d_volume *geometry, const uint8_t *labels, const char *path);

/* Reads a 3-D NIfTI-1 file (plain or gzip) into a new float volume (*out is the caller's,
 * t3d_volume_free). Voxels are scaled by scl_slope/scl_inter when the slope is non-zero.
 * Geometry comes from the sform when sform_code > 0, else the qform when qform_code > 0, else
 * pixdim alone; it is converted to LPS. info may be NULL.
 * Errors: T3D_ERR_IO (cannot open/read), T3D_ERR_FORMAT (malformed or truncated header or data),
 * T3D_ERR_UNSUPPORTED (valid NIfTI that t3d does not read: 4-D, complex/RGB, NIfTI-2, pairs). */
t3d_status t3d_nifti_read(const char *path, t3d_volume **out, t3d_nifti_info *info);

/* The same reader over size bytes at data (borrowed; plain, or gzip when they start 1f 8b), for
 * callers and fuzzers that hold the file in memory. name labels messages (NULL: "NIfTI data").
 * Errors as t3d_nifti_read, with T3D_ERR_IO for corrupt gzip data. */
t3d_status t3d_nifti_read_memory(const void *data, size_t size, const char *name, t3d_volume **out,
                                 t3d_nifti_info *info);

#ifdef __cplusplus
}
#endif
#endif
