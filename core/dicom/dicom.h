/* t3d_dicom: list the DICOM series in a folder or DICOMDIR and load one as a t3d_volume (float
 * modality values -- HU for CT -- with LPS geometry). Reading only: writing is core/dicom/dicomwrite.h.
 * Not a DICOM toolkit: it reads what analysis needs, resamples tilted and unevenly spaced series
 * onto a regular grid saying so, and refuses, with a reason, what it cannot place on one.
 *
 * Scanning (t3d_dicom_scan_path)
 *   - A folder is walked recursively (symbolic links to folders are not followed); a DICOMDIR
 *     file is read for its Referenced File IDs; a single file is scanned alone.
 *   - Only headers are read (values over 4 KiB, Pixel Data above all, stay on disk).
 *   - Every file that does not become part of a series gets a note: not DICOM, unreadable,
 *     DICOMDIR index, not an image, localizer (Image Type contains LOCALIZER), duplicate.
 *   - A file whose header reads but whose remainder does not (truncated Pixel Data) stays in its
 *     series with a note, and loading that series fails naming it: a silently missing slice
 *     would otherwise pass as a wider slice spacing.
 *   - Text fields are converted to UTF-8 per Specific Character Set; bytes that still are not
 *     UTF-8 become '?'.
 *   - Series are grouped by Series Instance UID. A file with a missing or empty one is never
 *     merged into a series that has a UID: it is grouped with other UID-less files of the same
 *     Study Instance UID, Series Number, Frame of Reference UID and Image Orientation (rounded to
 *     1e-3), and that group is named "no-uid:" + 16 hex digits (a hash of that key); a note
 *     says so.
 *   - Instances with the same SOP Instance UID in one series are kept once (the first path in
 *     byte order); a note names the one left out.
 *   - Series are listed by Study Instance UID, then Series Number (numeric), then UID.
 *
 * Loading (t3d_dicom_load_series) -- policy
 *   - Value: v = stored * Rescale Slope + Rescale Intercept, per frame (slope 1, intercept 0
 *     when absent). Bits Allocated 8 or 16; Bits Stored <= Bits Allocated, sign per Pixel
 *     Representation; Samples per Pixel must be 1.
 *   - Pixel Padding Value (and Padding Range Limit): those voxels get opts.padding_value when it
 *     is not NAN, else -1024 for CT (or the series minimum when that is lower), else the series
 *     minimum of the non-padding voxels; a note counts them.
 *   - MONOCHROME1: when the file has a Rescale Slope/Intercept (a modality LUT), its output is
 *     already a physical quantity (HU) and is kept as is; otherwise stored values are inverted
 *     within the Bits Stored range (max + min - v) so larger always means brighter. Either
 *     way a note says what was done.
 *   - Geometry: row/column direction cosines from Image Orientation (Patient), slice normal
 *     n = row x column; slices are sorted by the projection of Image Position (Patient) on n
 *     (file names and Instance Numbers do not matter); z spacing is the median difference of
 *     those projections, never Slice Thickness (a single slice gets Slice Thickness, or 1 mm).
 *     The volume's axes are (row, column, n), so
 *     the index-to-LPS matrix is right-handed; origin is the first slice's position.
 *   - Frames of enhanced multi-frame files take their position, orientation, pixel spacing and
 *     rescale from the per-frame functional groups over the shared ones. Classic multi-frame
 *     files without per-frame positions use Grid Frame Offset Vector, else Spacing Between
 *     Slices, along n (a note says which); with neither they are refused.
 *   - Refused, with a message naming the files/positions: differing Rows/Columns, differing
 *     orientation (> 1e-4 in any cosine), differing pixel spacing (> 1e-3 mm); missing slices: a
 *     step of (2 - opts.spacing_tolerance) x the median or more (one slice left out gives twice
 *     the median) that is also that many times both neighbouring steps (a protocol changing from
 *     thin to thick slices has a neighbour of its own size) is named with its positions and the
 *     expected spacing.
 *   - Gantry/detector tilt: positions that lie off the line along n through the first one by more
 *     than opts.max_inplane_offset_mm. Whether the scanner wrote the shear into the positions
 *     (GE, Siemens) or into the orientation (Philips: tilted image planes stacked along the
 *     table), and with or without Gantry/Detector Tilt (0018,1120), the slices are then shifted
 *     in-plane, each by its own offset (bilinear interpolation), onto a regular grid in patient
 *     space with axes (row, column, n): the grid keeps the pixel spacing, starts at whole pixels
 *     of the first slice and widens to cover every shifted slice; points outside a slice get the
 *     fill value below. The offsets must follow one shear (least-squares fit through the first
 *     slice; none straying by more than max(opts.max_inplane_offset_mm, 0.1 pixel)), else the
 *     series is refused as not a tilt. The angle recorded is the measured one, signed as the
 *     tilt attribute when that agrees within 0.5 degrees, else positive when the shear runs
 *     along +column.
 *   - Uneven steps: steps within opts.spacing_tolerance (relative) of the median are taken as
 *     the median, as acquired. When any step differs more (and none is a missing slice), the
 *     stack is resampled along n to the smallest step, linear between the two slices around each
 *     grid plane, from the first slice to the last (the grid stops short of it by less than a
 *     step); refused when that would make more than 4 x (slices) + 16 planes.
 *   - Either correction is written to the volume's geometry_note ("gantry tilt 18.5° corrected
 *     (...); slices resampled from uneven steps 1.00–1.50 mm to 1.00 mm (...)") and to the
 *     scan's notes; the fill value for points outside the slices is that of Pixel Padding below
 *     (CT: -1024 or the lower minimum). opts.strict_geometry = 1 refuses tilted and unevenly
 *     spaced series instead, with a message naming the positions (t3d before this change).
 *   - Two slices at the same position (|dz| < 1e-3 mm): identical values -> kept once with a
 *     note; different values -> refused, naming both files. Same depth but shifted in-plane
 *     (mixed fields of view) -> refused.
 *   - Non-finite positions, orientations or rescale values and non-positive pixel spacing are
 *     refused (T3D_ERR_FORMAT) naming the file.
 *   - Non-CT modalities load (meta.modality says which); analysis decides what it accepts.
 *   - Speed: files are decoded by up to 8 threads (one per core), each file by one thread,
 *     straight into the volume's planes; uncompressed little-endian Pixel Data that ends the
 *     file is read with one pread after checking its element header (DCMTK has parsed the rest
 *     at scan time), and RLE is decoded by t3d; the volume is the only full-size allocation
 *     for a regular series (a corrected one also holds the acquired slices while resampling).
 *   - Transfer syntaxes: everything DCMTK decodes (native, deflated, RLE, JPEG baseline/
 *     extended/lossless, JPEG-LS) plus JPEG 2000 through OpenJPEG; anything else fails with
 *     T3D_ERR_UNSUPPORTED naming the transfer syntax UID and name.
 *
 * Thread safety: different scans may be used from different threads; one scan must not be
 * used by two threads at once (loading appends notes to it). No function throws or aborts. */
#ifndef T3D_DICOM_H
#define T3D_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct t3d_dicom_scan t3d_dicom_scan;

typedef struct {
  t3d_volume_meta meta; /* of the series' first instance; series_uid may be "no-uid:..." */
  int uid_missing;      /* 1 when the files had no Series Instance UID (see grouping above) */
  int64_t instances;    /* files in the series after duplicates and localizers were left out */
  int64_t slices;       /* frames over all those files */
  int rows, cols;       /* of the first instance */
  int multiframe;       /* 1 when any instance has more than one frame */
  char transfer_syntax[T3D_UID_MAX]; /* of the first instance */
} t3d_dicom_series_info;

/* Scans a folder (recursively), a DICOMDIR or one file. Unreadable files become notes, not
 * errors; the call fails only when path itself cannot be read. *out is the caller's
 * (t3d_dicom_scan_free). A scan with zero series is a success: check the notes. */
t3d_status t3d_dicom_scan_path(const char *path, t3d_dicom_scan **out);
void t3d_dicom_scan_free(t3d_dicom_scan *scan); /* NULL is a no-op */

size_t t3d_dicom_scan_series_count(const t3d_dicom_scan *scan);
/* Borrowed; valid until the scan is freed. NULL when i is out of range. */
const t3d_dicom_series_info *t3d_dicom_scan_series(const t3d_dicom_scan *scan, size_t i);
/* Index of the series with this UID (or "no-uid:..." name); T3D_ERR_NOT_FOUND otherwise. */
t3d_status t3d_dicom_scan_find_series(const t3d_dicom_scan *scan, const char *uid, size_t *index);
/* The series a command analyses when none is named: the first CT series in scan order; the
 * series count when there is no CT series (callers decide: fall back to series 0, or refuse). */
size_t t3d_dicom_scan_first_ct(const t3d_dicom_scan *scan);
/* Files examined (regular files found, or DICOMDIR records). */
size_t t3d_dicom_scan_file_count(const t3d_dicom_scan *scan);
/* Notes, in the order they arose ("<file>: not DICOM, skipped"); borrowed strings. */
size_t t3d_dicom_scan_note_count(const t3d_dicom_scan *scan);
const char *t3d_dicom_scan_note(const t3d_dicom_scan *scan, size_t i);
/* Paths of a series' files in slice order is not known before loading; these are in byte
 * order of path. Borrowed. */
size_t t3d_dicom_series_file_count(const t3d_dicom_scan *scan, size_t series);
const char *t3d_dicom_series_file(const t3d_dicom_scan *scan, size_t series, size_t i);

typedef struct {
  double spacing_tolerance;   /* relative deviation of a slice step from the median; 0.1 */
  double max_inplane_offset_mm; /* largest distance of a slice position from the line through the
                                   first position along n before the series counts as tilted;
                                   0.01 mm */
  float padding_value;        /* value for Pixel Padding voxels; NAN = policy above */
  int strict_geometry;        /* 1: refuse tilted and unevenly spaced series instead of
                                 resampling them (t3d before 2026-12; `--strict-geometry`) */
} t3d_dicom_load_opts;

t3d_dicom_load_opts t3d_dicom_load_default_opts(void);

/* Loads series `index` of the scan into a new volume (*out is the caller's, t3d_volume_free).
 * opts NULL = defaults. Notes about what was done (padding, duplicates, MONOCHROME1) are
 * appended to the scan's notes. Errors name the series and, where one is to blame, the file. */
t3d_status t3d_dicom_load_series(t3d_dicom_scan *scan, size_t index, const t3d_dicom_load_opts *opts,
                                 t3d_volume **out);
t3d_status t3d_dicom_load_series_uid(t3d_dicom_scan *scan, const char *uid, const t3d_dicom_load_opts *opts,
                                     t3d_volume **out);

#ifdef __cplusplus
}
#endif
#endif
