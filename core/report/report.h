/* t3d_report: a draft radiology report from one t3d analysis (findings, labels on the series
 * grid, organ volumes) and its series, as plain text or Markdown, and its export as DICOM SR
 * (TID 1500) and DICOM SEG referencing the source instances. Not a signed report and not a
 * reporting system: every output says it is a machine draft that needs review.
 *
 * Content rules (all thresholds are fields of t3d_report_params; defaults in brackets)
 *   - A finding is reported as present when its zero-shot probability >= finding_threshold
 *     [0.5]; present findings are listed by probability (descending, then name) in FINDINGS and
 *     IMPRESSION; the others are listed once with their probabilities as "below threshold".
 *   - Organ volumes are the analysis' volumes_ml (one per class, from the label volume on the
 *     series grid); a class is reported with its volume when it has >= min_organ_ml [1 mL],
 *     else as "not segmented".
 *   - Lesions: voxels of the class named "lesion" (case-insensitive) are grouped into
 *     6-connected components (faces); components of at least min_lesion_mm3 [10 mm^3] count.
 *     A lesion's diameter is the largest distance in patient space (mm) between the centres of
 *     two of its voxels: a voxel-centre Feret diameter, which reads up to one voxel short of
 *     the true extent. Exact over all surface voxels up to 4096 of them; above that over the
 *     extreme surface voxels along 1024 fixed directions (then a lower bound within 0.5%).
 *   - Phrasing from similar cases: neighbours with similarity >= neighbour_min_similarity
 *     [0.80] are "close". A present finding takes its sentence from a close neighbour's report
 *     only when the close neighbours agree: at least neighbour_min_agreement [0.5] of them (and
 *     at least one) list that finding. The sentence comes from the most similar agreeing
 *     neighbour (first on ties): its first sentence (split at . ! ? or a line break, 8..300
 *     characters) that names the finding (case-insensitive) and holds no negation ("no ",
 *     "not ", "without", "negative", "absent", "free of", "resolved"). Otherwise the finding gets
 *     the fixed sentence "Appearance suggests <finding>." Reused sentences name their source.
 *   - The volume's geometry_note is written when non-empty; the header names the model and the
 *     SHA-256 of its file. No clock is read: a time appears only when params.timestamp is set,
 *     so the same inputs give byte-identical text.
 *   - Numbers use '.' as decimal separator whatever the locale. Sentence templates are
 *     translated through gettext (domain "t3d"), so the text follows LANGUAGE.
 *
 * DICOM export (t3d_report_write_sr / t3d_report_write_seg) reads the headers of the series'
 * files to reference each source instance (SOP Class/Instance UID) and to place it on the
 * volume's slice grid; see t3d_report_source_read. Files are written to a hidden temporary name
 * beside path and renamed over it only when complete. */
#ifndef T3D_REPORT_H
#define T3D_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"
#include "core/model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define T3D_REPORT_FINDING_THRESHOLD 0.5
#define T3D_REPORT_NEIGHBOUR_MIN_SIMILARITY 0.80
#define T3D_REPORT_NEIGHBOUR_MIN_AGREEMENT 0.5
#define T3D_REPORT_MIN_LESION_MM3 10.0
#define T3D_REPORT_MIN_ORGAN_ML 1.0

/* A similar earlier case, as plain data (from the index or anywhere else). All borrowed. */
typedef struct {
  const char *label;               /* names the case in attributions (e.g. accession); may be NULL */
  const char *text;                /* its report text; may be NULL (then it gives no phrasing) */
  double similarity;               /* cosine similarity to this case, in [-1, 1] */
  const char *const *findings;     /* names of the findings that case had */
  size_t nfindings;
} t3d_report_neighbour;

typedef struct {
  const char *model_name;          /* required */
  const char *model_sha256;        /* required: SHA-256 of the model file, 64 hex digits */
  const char *const *class_names;  /* segmentation classes, background first; nclasses must
                                      match the result's (NULL/0 when it has no labels) */
  size_t nclasses;
  const t3d_report_neighbour *neighbours; /* may be NULL */
  size_t nneighbours;
  double finding_threshold, neighbour_min_similarity, neighbour_min_agreement;
  double min_lesion_mm3, min_organ_ml;
  /* Written verbatim as "Generated: ..." in the text, and, when it is YYYYMMDDHHMMSS, as the
   * DICOM content/series date and time. NULL: no time in the text, the clock's in DICOM. */
  const char *timestamp;
} t3d_report_params;

/* The defaults above; model_name, model_sha256 and classes still to be set. */
t3d_report_params t3d_report_default_params(void);

typedef struct t3d_report t3d_report;

/* Builds the draft from the series grid vol (geometry, meta, geometry_note) and the analysis res
 * (findings; labels and volumes_ml when segmented; labels must be u8[nz,ny,nx] of vol's size).
 * Copies what it needs (the labels included): vol and res may be freed afterwards. Errors:
 * T3D_ERR_INVALID_ARG (missing model name/hash, class count or label shape mismatch). *out is
 * the caller's (t3d_report_free). */
t3d_status t3d_report_create(const t3d_volume *vol, const t3d_analysis_result *res, const t3d_report_params *p,
                             t3d_report **out);
void t3d_report_free(t3d_report *r); /* NULL is a no-op */

typedef enum { T3D_REPORT_TEXT = 0, T3D_REPORT_MARKDOWN } t3d_report_format;

/* The whole draft, NUL-terminated UTF-8; borrowed, valid until t3d_report_free. */
const char *t3d_report_text(const t3d_report *r, t3d_report_format f);
/* The FINDINGS and IMPRESSION sections alone as plain text (what the SR carries); borrowed. */
const char *t3d_report_findings_text(const t3d_report *r);
const char *t3d_report_impression_text(const t3d_report *r);
/* t3d_report_text to path via a temporary file (mode 0600: patient data) and rename.
 * T3D_ERR_IO naming path. The DICOM exports below are written the same way. */
t3d_status t3d_report_write_text(const t3d_report *r, t3d_report_format f, const char *path);

/* Findings in the result's order. phrased_from: index of the neighbour whose sentence was
 * reused, or -1. */
size_t t3d_report_finding_count(const t3d_report *r);
const char *t3d_report_finding_name(const t3d_report *r, size_t i); /* borrowed; NULL out of range */
double t3d_report_finding_probability(const t3d_report *r, size_t i);
int t3d_report_finding_present(const t3d_report *r, size_t i);
int t3d_report_finding_phrased_from(const t3d_report *r, size_t i);

/* Lesion measurements (see the rules above); count 0 and diameter 0 without a lesion class. */
size_t t3d_report_lesion_count(const t3d_report *r);
double t3d_report_lesion_max_diameter_mm(const t3d_report *r);
double t3d_report_lesion_volume_ml(const t3d_report *r, size_t i); /* largest first; 0 out of range */

/* ---- DICOM export ---- */

/* The source instances of the series behind the volume: each file's SOP Class/Instance UID,
 * Study/Series UIDs, and the slice k of the volume its Image Position (Patient) lies on (within
 * 10% of the slice spacing and 0.01 mm in-plane). Only headers are read. A second file on an
 * occupied slice (a duplicate the loader kept once) is left out of the references. Errors name
 * the file: T3D_ERR_IO/T3D_ERR_FORMAT (unreadable, no SOP Instance UID), T3D_ERR_UNSUPPORTED (a
 * multi-frame instance, or an instance that lies on no slice of vol), T3D_ERR_INVALID_ARG (a
 * slice with no instance). *out is the caller's. */
typedef struct t3d_report_source t3d_report_source;
t3d_status t3d_report_source_read(const t3d_volume *vol, const char *const *files, size_t nfiles,
                                  t3d_report_source **out);
void t3d_report_source_free(t3d_report_source *s); /* NULL is a no-op */
size_t t3d_report_source_count(const t3d_report_source *s);
/* SOP Instance UID of the instance on slice k; borrowed; NULL out of range. */
const char *t3d_report_source_slice_uid(const t3d_report_source *s, int64_t k);

typedef struct {
  const char *uid_root;       /* NULL: 2.25 UUID UIDs (see t3d_dicom_new_uid) */
  int series_number;          /* of the new series; default 900 (SR), the SEG gets +1 */
} t3d_report_dicom_params;
t3d_report_dicom_params t3d_report_dicom_default_params(void);

/* Enhanced SR (the IOD DCMTK picks for this content), TID 1500 Imaging Measurement Report, in
 * the source study (patient and study attributes copied from the first source instance): language,
 * device observer (the model), procedure "CT unspecified body region", an image library listing
 * every source instance (also listed as evidence), one measurement group (TID 1501) per
 * segmentation class with its volume (SCT 118565006 Volume, cm3 = mL) and one for the largest
 * lesion diameter (SCT 81827009 Diameter, mm), qualitative evaluations in text: each finding
 * as (DCM 121071 Finding) "<name>: probability <p>, present|below threshold <t>", the
 * findings section, the impression (DCM 121073 Impression), the lesion count and the draft
 * notice with model and hash (DCM 121106 Comment). Completion PARTIAL, verification UNVERIFIED.
 * Errors: T3D_ERR_IO naming path, T3D_ERR_FORMAT when DCMTK refuses the content. */
t3d_status t3d_report_write_sr(const t3d_report *r, const t3d_report_source *src, const t3d_report_dicom_params *p,
                               const char *path);

/* Segmentation Storage, BINARY, one segment per non-background class (coded anatomy below),
 * frames = (segment, slice) pairs where the segment has voxels (one empty frame for an empty
 * segment), each with Plane Position (Patient), Frame Content (segment, slice position) and a
 * Derivation Image reference to its source instance; the source study/series and every source
 * instance are referenced (Common Instance Reference); Spatial Locations Preserved is YES. Pixel
 * Data is packed by t3d, frames back to back without padding, first pixel in the least
 * significant bit (PS3.5 8.1.1): DCMTK 3.6.7's own packing goes wrong when rows x columns is not
 * a multiple of 8 (fixed upstream in 3.6.9; here 27x23-pixel slices read back with overlapping
 * segments in highdicom). Category / type codes (SNOMED CT): liver 10200004, lung 39607008, spleen 78961009,
 * kidney 64033007, heart 80891009, bone 272673000 (bone structure), body 38266002 (entire
 * body), all with category 123037004 (anatomical structure); lesion 52988006 with category
 * 49755003 (morphologically abnormal structure); any other class name: type 91723000
 * (anatomical structure) with its name as the segment label. Errors: T3D_ERR_UNSUPPORTED
 * without labels; T3D_ERR_IO naming path; T3D_ERR_FORMAT when DCMTK refuses the content. */
t3d_status t3d_report_write_seg(const t3d_report *r, const t3d_report_source *src, const t3d_report_dicom_params *p,
                                const char *path);

#ifdef __cplusplus
}
#endif
#endif
