/* Test-only DICOM generator (DCMTK encoders + OpenJPEG for JPEG 2000): writes CT-like images with
 * every attribute the reader's tests vary. Test code, never linked into libt3d; it checks little
 * and is not a model of a conforming DICOM writer (that is core/dicomwrite). */
#ifndef T3D_TESTS_DICOM_TESTGEN_H
#define T3D_TESTS_DICOM_TESTGEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int rows, cols, frames;     /* frames > 1: multi-frame; enhanced picks functional groups */
  int enhanced;               /* Enhanced CT with shared + per-frame functional groups */
  int bits_allocated, bits_stored, high_bit, pixel_rep;
  const int32_t *values;      /* frames*rows*cols stored values, row-major per frame */
  int has_rescale;
  double slope, intercept;
  const double *frame_slope, *frame_intercept; /* enhanced: per-frame rescale when set */
  double ipp[3];
  const double *frame_ipp;    /* enhanced: 3*frames positions */
  double iop[6], pixel_spacing[2], slice_thickness, spacing_between_slices;
  const char *sop_uid;        /* NULL: generated */
  const char *series_uid;     /* NULL: attribute left out; "": present but empty */
  const char *study_uid, *for_uid, *modality, *image_type, *photometric;
  const char *patient_name, *patient_id, *study_date, *series_description, *body_part;
  const char *charset;        /* Specific Character Set, NULL: none (names are raw bytes) */
  int series_number, instance_number;
  int has_padding;
  long padding_value;
  /* "ele" (default) "ile" "ebe" "deflate" "rle" "jpeg-ll" "jpegls" "j2k" "j2k-lossy" "mpeg2" (junk
   * fragments under an undecodable syntax) */
  const char *syntax;
} tg_image;

void tg_defaults(tg_image *img);
/* 0 on success; else err holds the reason. */
int tg_write(const char *path, const tg_image *img, char *err, size_t errlen);
/* A minimal DICOMDIR at dir/DICOMDIR whose records reference the given relative files. */
int tg_write_dicomdir(const char *dir, const char *const *rel, size_t n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
