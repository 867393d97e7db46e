/* t3d_volume: a scalar 3-D image in patient space: float voxels (HU for CT) plus LPS
 * geometry, as loaded from a DICOM series or produced by preprocessing. Not a DICOM object:
 * it carries only the identifying metadata analysis and export need.
 *
 * Voxel (i, j, k) -- i along x (columns), j along y (rows), k along z (slices) -- lies at
 *   P = origin + i*spacing[0]*dir[:,0] + j*spacing[1]*dir[:,1] + k*spacing[2]*dir[:,2]
 * in DICOM patient coordinates (LPS, millimetres). dir[r][c]: row r (L, P, S), column c (axis).
 * Data is stored z-major: data[(k*ny + j)*nx + i]. */
#ifndef T3D_VOLUME_H
#define T3D_VOLUME_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define T3D_UID_MAX 65     /* DICOM UIDs: 64 characters + NUL */
#define T3D_META_MAX 128
#define T3D_NOTE_MAX 512

typedef struct {
  char patient_name[T3D_META_MAX];
  char patient_id[T3D_META_MAX];
  char patient_birth_date[16]; /* YYYYMMDD */
  char patient_sex[8];
  char study_uid[T3D_UID_MAX];
  char study_date[16];
  char study_time[32];
  char study_description[T3D_META_MAX];
  char accession_number[32];
  char series_uid[T3D_UID_MAX];
  char series_description[T3D_META_MAX];
  char series_number[16];
  char modality[16];
  char body_part[T3D_META_MAX];
  char frame_of_reference_uid[T3D_UID_MAX];
} t3d_volume_meta;

typedef struct t3d_volume {
  int64_t nx, ny, nz;  /* columns, rows, slices */
  double spacing[3];   /* mm along x, y, z */
  double origin[3];    /* LPS position of voxel (0,0,0) centre, mm */
  double dir[3][3];    /* unit axis directions as columns, LPS */
  float *data;         /* nz*ny*nx voxels, owned by the volume */
  t3d_volume_meta meta;
  /* What loading did to the geometry, in words a clinician reads ("gantry tilt 18.5 deg
   * corrected; ..."); empty when the series was used as acquired. Shown by `t3d info` and
   * `t3d analyze`, kept with an analysis in the index and written into reports. */
  char geometry_note[T3D_NOTE_MAX];
} t3d_volume;

/* A zero-filled volume with identity direction, unit spacing, origin 0; *out is the caller's. */
t3d_status t3d_volume_new(t3d_volume **out, int64_t nx, int64_t ny, int64_t nz);
/* The same with the voxels left uninitialised, for loaders that write every one of them: large
 * volumes are then first touched where they are filled, by whichever thread fills them. */
t3d_status t3d_volume_new_uninit(t3d_volume **out, int64_t nx, int64_t ny, int64_t nz);
void t3d_volume_free(t3d_volume *v); /* NULL is a no-op */
size_t t3d_volume_nvoxels(const t3d_volume *v);
/* Borrowed f32[1,1,nz,ny,nx] tensor view over the voxels. */
t3d_tensor t3d_volume_tensor(const t3d_volume *v);
/* LPS position (mm) of voxel index (i, j, k) (fractional indices allowed). */
void t3d_volume_index_to_lps(const t3d_volume *v, double i, double j, double k, double lps[3]);
/* 4x4 index-to-LPS affine, row-major. */
void t3d_volume_affine(const t3d_volume *v, double affine[4][4]);

#ifdef __cplusplus
}
#endif
#endif
