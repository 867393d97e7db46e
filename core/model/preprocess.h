/* Preprocessing with geometry: a CT series (t3d_volume, HU) becomes the encoder's input tensor
 * (resample to the model spacing, clip and normalise HU, centre crop or pad to the model shape),
 * and model-grid outputs (labels, probability maps) go back onto the series grid through the
 * recorded transform. Not augmentation (training crops live in the trainer) and not a general
 * registration tool: the model grid always keeps the series' direction cosines.
 *
 * Grids. Index triples (i, j, k) are always in x, y, z order, as in core/base/volume.h; tensor shapes
 * are [.., z, y, x]. Three grids take part:
 *   series grid    -- the input volume: n[a] voxels of spacing s[a] along axis a;
 *   resampled grid -- the whole series at the target spacing t[a]:
 *                     m[a] = round(n[a] * s[a] / t[a]) voxels (at least 1), same direction
 *                     cosines, centred on the series' physical centre;
 *   model grid     -- the target shape cut from the resampled grid, centred: model index
 *                     q maps to resampled index q + crop[a], crop[a] = floor((m[a] - T[a]) / 2)
 *                     (negative when padding).
 * Voxel-centre model: a voxel's value belongs to its centre, and a grid of n voxels covers
 * [-0.5, n - 0.5] in index. The series index of resampled index r is
 *   x = (n - 1)/2 + (r - (m - 1)/2) * t/s
 * which keeps the physical centre and the exact target spacing. Written as
 *   x = (r + 0.5) * t/s - 0.5 + (n - m*t/s)/2
 * it is PyTorch's F.interpolate(mode='trilinear', align_corners=False) mapping
 * (src = (dst + 0.5) * in/out - 0.5, clamped to [0, n-1]) whenever the size is scale-consistent
 * (m*t/s == n): then the last term is zero and in/out == t/s. Otherwise the two differ by that
 * sub-voxel shift, and PyTorch stretches the spacing to in/out instead of keeping t.
 * Positions that fall between the last voxel centre and the grid edge take the edge value
 * (clamped, as PyTorch does); resampled voxel centres never lie outside the series extent. */
#ifndef T3D_PREPROCESS_H
#define T3D_PREPROCESS_H

#include <stdint.h>

#include "core/base/status.h"
#include "core/base/tensor.h"
#include "core/base/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  T3D_NORM_MINMAX = 0, /* [hu_min, hu_max] -> [0, 1] */
  T3D_NORM_ZSCORE,     /* zero mean, unit standard deviation (see zscore_* below) */
} t3d_norm_mode;

typedef enum {
  T3D_INTERP_TRILINEAR = 0,
  T3D_INTERP_NEAREST, /* nearest voxel centre (ties round up); for label-like inputs */
} t3d_interp;

typedef struct {
  double spacing_mm[3]; /* target spacing along x, y, z */
  int64_t shape[3];     /* target shape z, y, x (the tensor's last three dimensions) */
  float hu_min, hu_max; /* HU window: values are clipped to it before normalisation
                           (non-finite HU become hu_min, as do interpolated values
                           next to them; a loaded series has none) */
  t3d_norm_mode norm;
  /* T3D_NORM_ZSCORE only: with zscore_std > 0 the mean and std are these fixed numbers (in
   * clipped HU); otherwise they are computed over the model-grid voxels that come from the
   * series (padding excluded), after clipping. A std below 1e-6 HU is taken as 1. */
  float zscore_mean, zscore_std;
  float pad_value; /* HU written where the model grid extends beyond the series; clipped and
                      normalised like any other voxel */
  t3d_interp interp;
} t3d_preprocess_params;

/* 1.5 mm isotropic, 160x224x224 (z,y,x), HU window [-1000, 1000] -> [0, 1], pad -1024 HU,
 * trilinear. */
t3d_preprocess_params t3d_preprocess_default_params(void);

/* Everything needed to go between the model grid, the series grid and patient space (LPS).
 * Plain data: copy it, store it, no free. */
typedef struct {
  /* series grid (the input volume's geometry) */
  int64_t series_shape[3]; /* z, y, x */
  double series_origin[3]; /* LPS mm of series voxel (0,0,0) */
  double series_spacing[3];
  double series_dir[3][3]; /* columns are the x, y, z axis directions, as t3d_volume */
  /* model grid (the output tensor's last three dimensions) */
  int64_t model_shape[3]; /* z, y, x */
  double origin[3];       /* LPS mm of model voxel (0,0,0) -- may lie in the padding */
  double spacing[3];      /* = params spacing_mm */
  double dir[3][3];       /* = series_dir */
  /* how the model grid was cut from the resampled grid, per axis x, y, z */
  int64_t resampled_size_xyz[3];
  int64_t crop_offset_xyz[3]; /* resampled index of model index 0; negative = padding */
  /* series index (x,y,z,1) = model_to_series * model index (x,y,z,1); row-major. Diagonal
   * scale t/s plus translation, since both grids share the direction cosines. */
  double model_to_series[4][4];
  double series_to_model[4][4];
  /* intensity: normalised = (clip(hu, hu_min, hu_max) - norm_shift) * norm_scale, in float */
  float hu_min, hu_max;
  float norm_shift, norm_scale;
  float pad_normalised; /* the value written into padding */
} t3d_preprocess_transform;

/* Step 1 alone: resamples `in` onto the resampled grid for `spacing_mm` (x, y, z) with the
 * same direction cosines and physical centre (see the header comment). Values stay in HU.
 * *out is the caller's (t3d_volume_free); meta is copied. */
t3d_status t3d_preprocess_resample(const t3d_volume *in, const double spacing_mm[3], t3d_interp interp,
                                   t3d_volume **out);

/* The whole pipeline: resample, clip + normalise, centre crop/pad. *out is a new owned
 * f32[1,1,Z,Y,X] tensor (the caller's, t3d_tensor_free); *tr (caller's storage) receives the
 * transform. `params` NULL means the defaults. */
t3d_status t3d_preprocess(const t3d_volume *in, const t3d_preprocess_params *params, t3d_tensor **out,
                          t3d_preprocess_transform *tr);

/* Geometry helpers. Indices are (x, y, z), fractional allowed. */
void t3d_preprocess_model_to_series(const t3d_preprocess_transform *tr, const double model_idx[3],
                                    double series_idx[3]);
void t3d_preprocess_model_to_lps(const t3d_preprocess_transform *tr, const double model_idx[3], double lps[3]);
/* Fails with T3D_ERR_INVALID_ARG when the series direction/spacing matrix is singular. */
t3d_status t3d_preprocess_lps_to_series(const t3d_preprocess_transform *tr, const double lps[3],
                                        double series_idx[3]);

/* Maps labels on the model grid (I32 or U8, shape [Z,Y,X] or [1,1,Z,Y,X] = model_shape) onto
 * the series grid: each series voxel centre takes the label of the nearest model voxel
 * centre (nearest resampled index, clamped to the resampled grid as the image was, so never
 * a padding voxel); series voxels whose nearest model voxel lies outside the model grid get 0.
 * *out is a new owned u8[nz,ny,nx] tensor (the caller's). Labels must be in 0..255. */
t3d_status t3d_preprocess_labels_to_series(const t3d_preprocess_transform *tr, const t3d_tensor *labels,
                                           t3d_tensor **out);

/* Labels on the series grid from per-class scores on the model grid (F32 [C,Z,Y,X] or
 * [1,C,Z,Y,X], e.g. the decoder's softmax probabilities; 1 <= C <= 255): each series voxel takes
 * the class whose score, interpolated trilinearly between model voxel centres (clamped to the
 * part of the model grid that came from the series, as t3d_preprocess_map_to_series), is the
 * highest (the lowest class on ties). The same series voxels as t3d_preprocess_labels_to_series
 * are labelled (the rest get 0), and where the eight model voxels around a series voxel agree,
 * both give their class; between them, boundaries follow the scores instead of stepping at the
 * model grid's spacing (6 mm for t3d-tiny). *out is a new owned u8[nz,ny,nx] tensor. */
t3d_status t3d_preprocess_scores_to_series(const t3d_preprocess_transform *tr, const t3d_tensor *scores,
                                           t3d_tensor **out);

/* The same for a float map (F32, [Z,Y,X] or [1,1,Z,Y,X]): trilinear between model voxel
 * centres, clamped at the edge of the part of the model grid that came from the series;
 * series voxels outside it get 0. *out is a new owned f32[nz,ny,nx] tensor (the caller's). */
t3d_status t3d_preprocess_map_to_series(const t3d_preprocess_transform *tr, const t3d_tensor *map,
                                        t3d_tensor **out);

/* Per-class volumes in mL of a label volume (U8 or I32, any shape) whose voxels have the given
 * spacing (mm, x,y,z) and direction columns (dir NULL = orthonormal): ml[c] = count(label == c)
 * * |det(dir)| * sx*sy*sz / 1000 for c in 0..nclasses-1; labels outside that range are not
 * counted. */
t3d_status t3d_label_volumes_ml(const t3d_tensor *labels, const double spacing[3], const double dir[3][3],
                                int nclasses, double *ml);

#ifdef __cplusplus
}
#endif
#endif
