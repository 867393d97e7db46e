/* Private contract between core/dicom/dicom.c (C: scanning policy, sorting, geometry, rescale), the
 * DCMTK shim core/dicom/dicom_shim.cc (the only code that talks to DCMTK) and core/dicom/dicom_j2k.c
 * (JPEG 2000 through OpenJPEG). Not installed and not a public API: see core/dicom/dicom.h. */
#ifndef T3D_DICOM_INTERNAL_H
#define T3D_DICOM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry and value transform of one frame; has_* say which attributes were present. */
typedef struct {
  double ipp[3];
  int has_ipp;
  double iop[6];
  int has_iop;
  double pixel_spacing[2]; /* DICOM order: row spacing (between rows), column spacing */
  int has_spacing;
  double slope, intercept;
  int has_rescale;
} t3d_dcm_geom;

/* Everything the scan and the loader need from a file's header (all before Pixel Data). */
typedef struct {
  char sop_class_uid[T3D_UID_MAX];
  char sop_instance_uid[T3D_UID_MAX];
  char transfer_syntax[T3D_UID_MAX];
  t3d_volume_meta meta;
  char image_type[T3D_META_MAX];   /* backslash-separated values as stored */
  char photometric[24];
  int is_dicomdir;                 /* Media Storage Directory (a DICOMDIR index) */
  int has_pixel_data;
  int damaged;                     /* the header parsed but the rest did not (truncated file) */
  char damage[160];                /* DCMTK's reason when damaged */
  int instance_number, has_instance_number;
  int rows, cols, frames, samples_per_pixel;
  int bits_allocated, bits_stored, high_bit, pixel_rep;
  int has_padding, has_padding_range;
  long padding_value, padding_range_limit; /* stored-value space */
  double slice_thickness, spacing_between_slices; /* 0 when absent */
  double gantry_tilt;              /* Gantry/Detector Tilt (0018,1120), degrees */
  int has_gantry_tilt;
  /* Uncompressed little-endian Pixel Data of defined length that is the data set's last element:
   * its value is the file's last native_pixel_length bytes, preceded by an element header of
   * 12 (explicit VR) or 8 (implicit VR) bytes, which the loader checks before reading the value
   * itself instead of through DCMTK. 0 when not so (the loader then asks DCMTK). */
  uint64_t native_pixel_length;
  int native_explicit_vr;
  t3d_dcm_geom geom;               /* top-level attributes (classic images) */
  t3d_dcm_geom *frame_geom;        /* malloc'd; n_frame_geom == frames when the file has
                                      functional groups (shared merged into per-frame), else NULL */
  int n_frame_geom;
  double *grid_offsets;            /* malloc'd Grid Frame Offset Vector (RT Dose style), or NULL */
  int n_grid_offsets;
} t3d_dcm_header;

/* Reads the header of one file (Pixel Data is not loaded into memory). T3D_ERR_FORMAT with a
 * detail naming the reason when DCMTK cannot parse it. h is zeroed first; release with
 * t3d_dcm_header_clear. */
t3d_status t3d_dcm_read_header(const char *path, t3d_dcm_header *h);
void t3d_dcm_header_clear(t3d_dcm_header *h);

/* Referenced File IDs of a DICOMDIR's records, as relative paths with '/' separators.
 * *files (malloc'd array of malloc'd strings) is the caller's; free each then the array. */
t3d_status t3d_dcm_read_dicomdir(const char *path, char ***files, size_t *nfiles);

typedef struct {
  uint8_t *data;
  size_t size;
} t3d_dcm_fragment;

/* Pixel Data of one file, either native (raw, host-order words of bits_allocated bits, all
 * frames back to back, after DCMTK decoded any compressed syntax it has a codec for) or, for
 * JPEG 2000, the encapsulated fragments and the basic offset table for dicom_j2k.c. */
typedef struct {
  int is_j2k;
  int is_rle;              /* RLE Lossless fragments for dicom_rle.c (frags/offsets as for J2K) */
  int bits_allocated;      /* of raw, as after decoding (8 or 16) */
  uint8_t *raw;
  size_t raw_size;
  t3d_dcm_fragment *frags; /* fragments after the basic offset table item */
  size_t nfrags;
  uint32_t *offsets;       /* basic offset table (may be empty) */
  size_t noffsets;
} t3d_dcm_pixels;

t3d_status t3d_dcm_read_pixels(const char *path, t3d_dcm_pixels *px);
void t3d_dcm_pixels_clear(t3d_dcm_pixels *px);

/* Name of a transfer syntax UID ("JPEG 2000 Image Compression"), or "unknown transfer syntax". */
const char *t3d_dcm_xfer_name(const char *uid);
/* 1 when Pixel Data is stored uncompressed (not encapsulated, not deflated). */
int t3d_dcm_xfer_is_native(const char *uid);
/* 1 when the syntax is one of the two JPEG 2000 image compression syntaxes (.90/.91). */
int t3d_dcm_xfer_is_j2k(const char *uid);

/* Decodes one JPEG 2000 codestream (or JP2 file) of rows x cols single-component samples into
 * out as stored values: signed per pixel_rep with bits_stored precision. */
t3d_status t3d_dcm_j2k_decode(const uint8_t *buf, size_t size, int rows, int cols, int bits_stored,
                              int pixel_rep, int32_t *out);

/* Decodes one RLE Lossless frame (PS3.5 Annex G) of npix samples of bits_allocated (8 or 16)
 * into out (npix*bits_allocated/8 bytes) as host-order words; planes is scratch of 2*npix
 * bytes. T3D_ERR_FORMAT naming what does not fit. */
t3d_status t3d_dcm_rle_decode(const uint8_t *buf, size_t size, size_t npix, int bits_allocated, uint8_t *out,
                              uint8_t *planes);

/* Groups encapsulated fragments into frames (basic offset table, one fragment per frame, or
 * codestream start markers). On success (*starts)[f] is the first fragment of frame f and
 * (*counts)[f] how many; both malloc'd, the caller's. */
t3d_status t3d_dcm_frames_from_fragments(const t3d_dcm_pixels *px, int frames, size_t **starts, size_t **counts);

/* ---- regular grid (core/dicom/dicom_regular.c) ------------------------------------------------
 * A series' distinct slice positions as the loader placed them: slot k's pixel (x, y) lies at
 * first + (x + off[2k]) * sx * row + (y + off[2k+1]) * sy * col + (z[k] - z[0]) * normal, i.e.
 * off is slot k's in-plane shift from slot 0 in pixels (nonzero under gantry tilt) and z its
 * position along the normal (uneven under variable spacing). */
typedef struct {
  int64_t nx, ny;     /* pixels per slice (columns, rows) */
  size_t nslots;      /* >= 1 */
  const double *z;    /* nslots positions along the normal, mm, strictly ascending */
  const double *off;  /* 2*nslots in-plane shifts from slot 0, pixels (columns, rows) */
} t3d_dcm_stack;

/* The regular grid a stack is resampled onto: voxel (i, j, k) lies at slot 0's pixel
 * (i + lo_i, j + lo_j) moved by z0 - z[0] + k*dz along the normal. */
typedef struct {
  int64_t lo_i, lo_j; /* where the grid starts in slot 0's pixels (<= 0) */
  int64_t nx, ny, nz;
  double z0, dz;
} t3d_dcm_grid;

/* The smallest grid with the slices' pixel spacing that covers every shifted slice, from z[0]
 * to z[last] in steps of dz (> 0; the last step may stop short of z[last] by less than dz). */
void t3d_dcm_grid_for(const t3d_dcm_stack *st, double dz, t3d_dcm_grid *g);
/* Resamples src (nslots slices of nx*ny, z-major) onto g: bilinear within a slice at its own
 * shift, linear between the two slots around each grid z. Grid points outside a slice that
 * they need get fill. dst has g->nx*g->ny*g->nz floats. */
void t3d_dcm_resample(const t3d_dcm_stack *st, const float *src, const t3d_dcm_grid *g, float fill, float *dst);

#ifdef __cplusplus
}
#endif
#endif
