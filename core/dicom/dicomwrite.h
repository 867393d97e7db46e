/* Writing a t3d_volume as a DICOM CT Image Storage series (one file per slice; 8-bit storage as
 * Secondary Capture), for export and for generating reader test data (gaps, gantry tilt, every
 * storage type and transfer syntax).
 * Not a general DICOM editor and not the reader (core/dicom/dicom.h); the DCMTK calls live in
 * core/dicom/dicom_write_shim.cc, everything else (IOD content, rescale, UIDs, files) here in C. */
#ifndef T3D_DICOMWRITE_H
#define T3D_DICOMWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How HU are stored. Every type uses RescaleSlope/RescaleIntercept (HU = slope*stored + intercept)
 * chosen per series from the volume's HU range (see t3d_dicom_choose_rescale).
 *
 * U8 is not written as CT: the CT Image and Enhanced CT IODs allow only 16 allocated bits. An 8-bit
 * series is one Secondary Capture Image Storage file per slice (1.2.840.10008.5.1.4.1.1.7), the
 * single-frame IOD that allows 8-bit grey pixels and still has the Modality LUT module, so HU
 * survive: RescaleSlope/RescaleIntercept with RescaleType "HU". It carries the SC Equipment module
 * (ConversionType "WSD"), Modality "CT", Patient Orientation letters, and, as standard attributes
 * outside that IOD (a Standard Extended SOP Class), the Image Plane attributes the reader needs
 * (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness) plus
 * FrameOfReferenceUID and SpacingBetweenSlices. dciodvfy reports no errors for it, only warnings
 * that those attributes are not in the SC IOD. Not chosen: the Multi-frame Grayscale Byte SC IOD,
 * which requires identity rescale (slope 1, intercept 0, type "US") and so cannot carry HU for
 * a range wider than 256 HU. Enhanced (multi-frame) output refuses U8. */
typedef enum {
  T3D_DICOM_STORE_S16 = 0, /* 16 bits signed (PixelRepresentation 1) */
  T3D_DICOM_STORE_U16,     /* 16 bits unsigned */
  T3D_DICOM_STORE_U12,     /* 12 bits stored in 16 allocated, unsigned (0..4095) */
  T3D_DICOM_STORE_U8,      /* 8 bits unsigned, as Secondary Capture Image Storage (see above) */
} t3d_dicom_storage;

typedef enum {
  T3D_DICOM_SYNTAX_EXPLICIT_LE = 0, /* 1.2.840.10008.1.2.1 (default) */
  T3D_DICOM_SYNTAX_IMPLICIT_LE,     /* 1.2.840.10008.1.2 */
  T3D_DICOM_SYNTAX_DEFLATED,        /* 1.2.840.10008.1.2.1.99 */
  T3D_DICOM_SYNTAX_RLE,             /* 1.2.840.10008.1.2.5 */
  T3D_DICOM_SYNTAX_JPEG_LOSSLESS,   /* 1.2.840.10008.1.2.4.70, process 14, selection value 1 */
  T3D_DICOM_SYNTAX_JPEGLS_LOSSLESS, /* 1.2.840.10008.1.2.4.80 */
  T3D_DICOM_SYNTAX_J2K_LOSSLESS,    /* 1.2.840.10008.1.2.4.90, reversible 5/3 via OpenJPEG */
  T3D_DICOM_SYNTAX_COUNT
} t3d_dicom_syntax;

/* Stored value s reads back as HU = slope*s + intercept; s in [stored_min, stored_max]. */
typedef struct {
  double slope, intercept; /* exactly the values written as DS strings */
  int32_t stored_min, stored_max;
  int bits_allocated, bits_stored, pixel_representation;
} t3d_dicom_rescale;

typedef struct {
  t3d_dicom_storage storage;
  t3d_dicom_syntax syntax;
  /* Patient/study/series fields; NULL means use v->meta. Empty fields get defaults (patient
   * "T3D^Phantom", today's date, generated UIDs). Too-long or malformed values are truncated or
   * dropped with a warning rather than written invalid. */
  const t3d_volume_meta *meta;
  /* UID root for generated UIDs (study, series, frame of reference, instances). NULL: each UID
   * is 2.25.<random 128-bit UUID as decimal> (ITU-T X.667), needing no registered root. A root
   * gets ".<random decimal digits>" appended up to 64 characters. */
  const char *uid_root;
  const char *file_prefix;   /* final names are <prefix><instance, 5 digits>.dcm; NULL: "CT" */
  int32_t first_instance;    /* InstanceNumber of slice 0 (default 1) */
  /* Test-data options (keep 0/NULL for a faithful export): */
  const int64_t *skip_slices; /* slice indices k not written (gaps); InstanceNumbers keep k */
  size_t n_skip_slices;
  /* Gantry tilt: slice k is written at origin + k*sz*(dir2 + tan(tilt)*dir1), i.e. the slice
   * stack is sheared along the column direction, and GantryDetectorTilt is set to this angle.
   * Pixels are not resampled: the volume's voxels are taken to lie on that sheared grid. */
  double gantry_tilt_deg;
  /* One Enhanced CT Image Storage file (1.2.840.10008.5.1.4.1.1.2.1) holding every slice as a
   * frame (per-frame Plane Position, shared Pixel Measures/Plane Orientation/Pixel Value
   * Transformation functional groups; frames DERIVED) instead of one CT Image file per slice.
   * 16-bit storage types only. */
  int enhanced_multiframe;
  /* Deterministic output (generated test and training data): meta must give the study, series
   * and frame of reference UIDs and the study date and time. Instance UIDs are then
   * <series UID>.<InstanceNumber> (Enhanced: .<InstanceNumber>, .0.1, .0.2 for SOP, dimension
   * and concatenation-event UIDs) and content date/time equal the study date/time, so the same
   * volume and meta give the same bytes. Fails with T3D_ERR_INVALID_ARG when a UID is missing
   * or too long to extend. */
  int derive_uids;
} t3d_dicom_write_params;

/* Explicit VR little endian, signed 16 bits, metadata from the volume, 2.25 UIDs. */
t3d_dicom_write_params t3d_dicom_write_default_params(void);

/* Chooses how v's HU range [min, max] is stored with storage type s:
 * slope 1 and intercept 0 (S16) or intercept floor(min) (unsigned types) when the whole range
 * fits the stored range at integer HU; otherwise slope = (max-min)/(stored range), rounded up to
 * 6 significant digits, intercept = min. Stored value = round((HU - intercept)/slope) clamped, so
 * the read-back error is at most slope/2 (zero for integer HU with slope 1).
 * Fails on NaN/Inf voxels (T3D_ERR_INVALID_ARG). */
t3d_status t3d_dicom_choose_rescale(const t3d_volume *v, t3d_dicom_storage s, t3d_dicom_rescale *out);
/* The stored integer for hu, and the HU a reader gets back for it. */
int32_t t3d_dicom_rescale_store(const t3d_dicom_rescale *r, float hu);
float t3d_dicom_rescale_read(const t3d_dicom_rescale *r, int32_t stored);

/* Writes v as nz CT Image Storage files (Secondary Capture for U8, see t3d_dicom_storage) or one
 * Enhanced CT file (see above) into out_dir (created if missing, parents included).
 * Files are written under hidden temporary names and renamed only after every slice succeeded,
 * so a failed or killed write leaves no partial series under final names; on failure the
 * temporaries are removed. p may be NULL (defaults). Errors: T3D_ERR_IO naming the file,
 * T3D_ERR_INVALID_ARG for bad parameters or non-finite voxels, T3D_ERR_UNSUPPORTED when a
 * codec rejects the data. The rescale used is t3d_dicom_choose_rescale(v, p->storage). */
t3d_status t3d_dicom_write_ct_series(const t3d_volume *v, const char *out_dir, const t3d_dicom_write_params *p);

/* Name on the command line ("explicit", "implicit", "deflate", "rle", "jpeg-lossless", "jpegls",
 * "j2k") and the transfer syntax UID; parse returns 0 on success. */
const char *t3d_dicom_syntax_name(t3d_dicom_syntax s);
const char *t3d_dicom_syntax_uid(t3d_dicom_syntax s);
int t3d_dicom_syntax_parse(const char *name, t3d_dicom_syntax *out);
/* "s16", "u16", "u12", "u8". */
const char *t3d_dicom_storage_name(t3d_dicom_storage s);
int t3d_dicom_storage_parse(const char *name, t3d_dicom_storage *out);

/* A new UID: 2.25.<random UUID v4 as decimal> when root is NULL, else root.<random digits>.
 * buf must hold T3D_UID_MAX bytes. Fails only when the root is malformed or too long (>= 60). */
t3d_status t3d_dicom_new_uid(const char *root, char buf[T3D_UID_MAX]);

#ifdef __cplusplus
}
#endif
#endif
