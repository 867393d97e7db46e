/* Synthetic CT phantoms, sampled in patient (LPS) space so every orientation and spacing shows
 * the same anatomy. Two generators: t3d_phantom_ct, a tiny fixed body/lungs/spine/nodule volume
 * for reader and exporter tests, and t3d_phantom_case_*, chest-abdomen CT cases with organs, 11
 * findings with known truth, a label volume and a free-text report (training and evaluation
 * data, contract in issue 7). Neither is a CT physics simulator nor patient data. */
#ifndef T3D_PHANTOM_H
#define T3D_PHANTOM_H

#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"
#include "core/dicom/dicomwrite.h"

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


/* ---- chest-abdomen cases (t3d phantom) ------------------------------------------------------
 *
 * A case is generated in memory from (params, seed) and is deterministic for them: the same
 * voxels, labels, report and truth, byte for byte, on every run. Anatomy (body outline with
 * subcutaneous fat and muscle, lungs with vessels and airways, trachea and main bronchi, heart,
 * aorta, liver, spleen, kidneys, bowel, spine, ribs, sternum) is placed in LPS millimetres with
 * seed-varied size, shape and position; the grid (matrix, spacing, orientation) samples it.
 *
 * HU as a scanner shows them, after intravenous contrast (portal venous phase) or without it:
 * air -1000, lung about -850, fat about -100, muscle and soft tissue 30-60, cancellous bone
 * 200-350, cortical bone 700-1200; with contrast liver 100-130, spleen 110-130, kidney cortex
 * 150-190, aorta and heart blood 150-220; without it liver 55-66, spleen 45-60, kidney 30-35,
 * blood 35-50 (heart and vessels no brighter than muscle);
 * then partial-volume blur (about 1 mm: [a, 1-2a, a] along each axis, a = 1/4 at 1 mm voxels,
 * less for coarser ones) and Gaussian noise (8-20 HU), rounded to
 * integer HU in [-1024, 3071] so the DICOM writer stores them exactly.
 *
 * Findings (names as the model's defaults, t3d_phantom_finding_names): each is drawn with
 * probability 0.35 unless the case is drawn fully normal (probability 0.15). A finding is
 * "present" in the truth only when it is visible on the grid (a lesion's centre inside the
 * field of view; at least 1 cm^3 of effusion, pneumothorax, consolidation, ascites; 5 cm^3 of
 * emphysema; the heart or spleen centre inside the field of view for cardiomegaly and
 * splenomegaly), so truth, labels and report always agree with what the volume shows.
 * Lung nodules and liver lesions are 8-35 mm, renal cysts 12-40 mm, enlarged nodes 15-30 mm
 * short axis: at least two voxels of a 4 mm analysis grid.
 *
 * Coverage: a chest-abdomen scan (lung apices to below the kidneys), a chest scan (apices to
 * 40-80 mm below the right dome of the diaphragm, the upper abdomen in view) or an abdomen scan
 * (from just above the diaphragm down); findings outside the covered range are absent from the
 * truth and the report's normal statements follow the coverage. Most cases lie on a patient
 * table (a carbon-fibre shell around foam, label 0) a few millimetres below the back.
 *
 * Data size: the slice count is capped so nx*ny*nz <= params.max_voxels (default 12 M voxels,
 * 24 MB at 16 bits); with a large matrix and thin slices the case covers a slab of the
 * chest-abdomen (its position drawn from the seed) rather than all of it.
 *
 * Label ids (t3d_phantom_label_names): 0 background (air and the table outside the body), 1 body (fat, muscle,
 * soft tissue, vessels outside the organs, trachea, mediastinal nodes, effusion/ascites fluid,
 * pneumothorax air), 2 lung (both lungs with their vessels, airways, emphysema, consolidation),
 * 3 heart, 4 liver, 5 spleen, 6 kidney (both), 7 bone (spine, ribs, sternum), 8 lesion (lung
 * nodules, liver lesions, renal cysts). */

#define T3D_PHANTOM_NFINDINGS 11
#define T3D_PHANTOM_NLABELS 9

typedef struct t3d_phantom_case t3d_phantom_case;

/* The scanned range along S (t3d_phantom_case_params.coverage). */
typedef enum {
  T3D_PHANTOM_CHEST_ABDOMEN = 0,
  T3D_PHANTOM_CHEST,
  T3D_PHANTOM_ABDOMEN,
} t3d_phantom_coverage;

/* "chest-abdomen", "chest", "abdomen"; parse returns 0 on success. */
const char *t3d_phantom_coverage_name(t3d_phantom_coverage c);
int t3d_phantom_coverage_parse(const char *name, t3d_phantom_coverage *out);

/* Acquisition and content choices. Zero (or -1 where stated) means "draw from the seed". */
typedef struct {
  int64_t matrix;          /* in-plane pixels (square); 0: 256, 320, 384, 448 or 512 */
  double fov_mm;           /* in-plane field of view; 0: 340-480 mm */
  double slice_mm;         /* slice spacing; 0: one of 0.625, 1, 1.25, 1.5, 2, 2.5, 3, 5 mm */
  int orientation;         /* t3d_phantom_orientation; -1: axial 70 %, others 10 % each */
  int storage;             /* t3d_dicom_storage s16/u16/u12; -1: drawn */
  int syntax;              /* lossless t3d_dicom_syntax; -1: drawn */
  double noise_hu;         /* noise standard deviation; < 0: 8-20 HU */
  int64_t max_voxels;      /* cap on nx*ny*nz (see above); 0: 12 M */
  int coverage;            /* t3d_phantom_coverage; -1: chest-abdomen 55 %, chest 30 %, abdomen 15 % (the
                            * S range of axial and oblique grids; coronal and sagittal ones, whose S
                            * extent is the field of view, are centred on it) */
  int contrast;            /* 1 intravenous contrast (portal venous), 0 none; -1: none in 30 % */
  int table;               /* 1 patient table under the back, 0 none; -1: a table in 80 % */
  /* Per finding (t3d_phantom_finding_names order): -1 drawn, 0 absent, 1 present (when the
   * grid shows it). Tests use it to get a finding for sure. */
  int8_t findings[T3D_PHANTOM_NFINDINGS];
} t3d_phantom_case_params;

/* Everything drawn from the seed (the fields above at 0 / -1). */
t3d_phantom_case_params t3d_phantom_case_default_params(void);

/* Generates case `seed` into *out (the caller's, t3d_phantom_case_free). Errors:
 * T3D_ERR_INVALID_ARG for out-of-range params, T3D_ERR_NOMEM. */
t3d_status t3d_phantom_case_generate(const t3d_phantom_case_params *p, uint64_t seed, t3d_phantom_case **out);
void t3d_phantom_case_free(t3d_phantom_case *c); /* NULL is a no-op */

/* Borrowed views, valid until t3d_phantom_case_free. */
const t3d_volume *t3d_phantom_case_volume(const t3d_phantom_case *c); /* integer HU, series grid */
const uint8_t *t3d_phantom_case_labels(const t3d_phantom_case *c);    /* nz*ny*nx label ids, same order */
const char *t3d_phantom_case_report(const t3d_phantom_case *c);       /* "FINDINGS:\n...IMPRESSION:\n..." */
/* {"pulmonary nodule":{"present":true,"count":1,"size_mm":12.0,"lobe":"right lower lobe"}, ...}
 * with every finding; attributes of present findings: nodule count/size_mm/lobe, effusion side,
 * pneumothorax side, consolidation lobe, emphysema severity, cardiomegaly ctr (cardiothoracic
 * ratio), liver lesion count/size_mm, renal cyst side/size_mm, splenomegaly length_mm, ascites
 * amount, lymphadenopathy count/size_mm (largest short axis). side: "left"/"right"/"bilateral". */
const char *t3d_phantom_case_truth_json(const t3d_phantom_case *c);
/* {"matrix":[nx,ny,nz],"spacing_mm":[sx,sy,sz],"orientation":"axial","storage":"s16","syntax":"rle",
 *  "noise_hu":12.0,"coverage":"chest","contrast":true,"table":true} */
const char *t3d_phantom_case_acquisition_json(const t3d_phantom_case *c);
/* Whether finding i (t3d_phantom_finding_names order) is present in the truth. */
int t3d_phantom_case_has_finding(const t3d_phantom_case *c, size_t i);
/* How the case is to be stored (drawn or from params). */
void t3d_phantom_case_storage(const t3d_phantom_case *c, t3d_dicom_storage *storage, t3d_dicom_syntax *syntax);

/* Writes case_dir/dicom/ (the series; UIDs derived from the seed, so the files are deterministic
 * too), case_dir/labels.nii.gz (uint8, same affine as the series) and case_dir/report.txt.
 * Errors: T3D_ERR_IO naming the file, errors of the DICOM writer. */
t3d_status t3d_phantom_case_write(const t3d_phantom_case *c, const char *case_dir);

/* One manifest line (no newline) for the case stored under DIR/name:
 * {"case":name,"seed":S,"series":"name/dicom","labels":"name/labels.nii.gz","report":...,
 *  "truth":{...},"acquisition":{...}}. *out is the caller's (free). T3D_ERR_NOMEM only. */
t3d_status t3d_phantom_case_manifest_line(const t3d_phantom_case *c, const char *name, char **out);

/* The 9 label names (ids = positions) and the 11 finding names; static strings. */
const char *const *t3d_phantom_label_names(size_t *count);
const char *const *t3d_phantom_finding_names(size_t *count);

#ifdef __cplusplus
}
#endif
#endif
