/* Synthetic CT phantoms for tests and demos: a body ellipse of soft tissue (~0 HU), two lungs
 * (-850 HU), a spine (700 HU) and a lung nodule, sampled in patient (LPS) space so every
 * orientation and spacing shows the same anatomy. The seed of the real phantom generator that
 * makes training data; deliberately tiny for now (no organs beyond these, no lesions library). */
#ifndef T3D_PHANTOM_H
#define T3D_PHANTOM_H

#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  T3D_PHANTOM_AXIAL = 0, /* rows along +L, columns along +P, slices along +S */
  T3D_PHANTOM_SAGITTAL,  /* rows +P, columns -S (IOP 0\1\0\0\0\-1), slices along -L */
  T3D_PHANTOM_CORONAL,   /* rows +L, columns -S (IOP 1\0\0\0\0\-1), slices along +P */
  T3D_PHANTOM_OBLIQUE,   /* axial rotated 20 degrees about L then 15 degrees about S */
} t3d_phantom_orientation;

typedef struct {
  int64_t nx, ny, nz;     /* voxels */
  double spacing[3];      /* mm */
  t3d_phantom_orientation orientation;
  uint64_t seed;          /* nodule placement and noise */
  double noise_hu;        /* standard deviation of added noise (default 10) */
} t3d_phantom_params;

/* 64x64x24 voxels of 0.8x0.8x2.5 mm, axial, seed 1, noise 10 HU. */
t3d_phantom_params t3d_phantom_default_params(void);

/* A new volume (*out is the caller's, t3d_volume_free) centred on the LPS origin, with integer
 * HU values in [-1024, 3071], meta filled with phantom patient/series descriptions (UIDs empty).
 * The anatomy scales with the field of view. Errors: T3D_ERR_INVALID_ARG for bad sizes. */
t3d_status t3d_phantom_ct(const t3d_phantom_params *p, t3d_volume **out);

/* "axial", "sagittal", "coronal", "oblique"; parse returns 0 on success. */
int t3d_phantom_orientation_parse(const char *name, t3d_phantom_orientation *out);

#ifdef __cplusplus
}
#endif
#endif
