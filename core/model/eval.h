/* Evaluation of a T3D model on a labelled data set (`t3d eval`): the phantom manifest and
 * labels.json readers (untrusted bytes), and the metrics: AUROC (Mann-Whitney, ties half),
 * recall@k for paired retrieval, Dice per class. Not the model run itself (model.h) and not
 * the generator of the data (phantom.h); the manifest format is notes/PHANTOM-CONTRACT.md. */
#ifndef T3D_EVAL_H
#define T3D_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- manifest.jsonl: one JSON object per line ---------------------------------------------
 * {"case":"case-00000","series":"case-00000/dicom","labels":"case-00000/labels.nii.gz",
 *  "report":"FINDINGS: ...","truth":{"pleural effusion":{"present":false}, ...}, ...}
 * case, series, report and truth are required; labels is optional (no Dice for that case).
 * Paths are relative to the manifest's folder and may not be absolute or contain "..".
 * Other members (seed, acquisition, finding attributes) are accepted and ignored. Blank lines
 * are skipped. */

typedef struct {
  char *name;    /* finding name as in the manifest */
  bool present;
} t3d_eval_truth;

typedef struct {
  char *name;   /* "case" */
  char *series; /* relative path of the DICOM series folder */
  char *labels; /* relative path of the label NIfTI, or NULL */
  char *report; /* free text */
  t3d_eval_truth *truth; /* in the order of the line */
  size_t ntruth;
  size_t line; /* 1-based line number in the manifest, for messages */
} t3d_eval_case;

typedef struct t3d_eval_manifest t3d_eval_manifest;

/* Parses size bytes of JSON lines (borrowed). name labels messages ("manifest.jsonl"); every
 * error names the line and, once known, the case. *out is the caller's (t3d_eval_manifest_free).
 * Errors: T3D_ERR_FORMAT (malformed JSON, missing or mistyped member, duplicate case or finding,
 * unsafe path, no case at all), T3D_ERR_NOMEM. */
t3d_status t3d_eval_manifest_parse(const void *data, size_t size, const char *name, t3d_eval_manifest **out);
/* Reads and parses path. Errors: T3D_ERR_IO naming the file, then as t3d_eval_manifest_parse. */
t3d_status t3d_eval_manifest_load(const char *path, t3d_eval_manifest **out);
void t3d_eval_manifest_free(t3d_eval_manifest *m); /* NULL is a no-op */
size_t t3d_eval_manifest_count(const t3d_eval_manifest *m);
const t3d_eval_case *t3d_eval_manifest_case(const t3d_eval_manifest *m, size_t i); /* borrowed; NULL out of range */
/* Whether finding `name` is in the case's truth (*present gets its value); false when absent. */
bool t3d_eval_case_truth(const t3d_eval_case *c, const char *name, bool *present);

/* labels.json: {"classes": ["background", "body", ...]}, id = position (at most 256 names).
 * *names is the caller's (t3d_eval_free_names). Errors: T3D_ERR_FORMAT, T3D_ERR_NOMEM,
 * T3D_ERR_IO (load only). */
t3d_status t3d_eval_label_names_parse(const void *data, size_t size, const char *name, char ***names,
                                      size_t *count);
t3d_status t3d_eval_label_names_load(const char *path, char ***names, size_t *count);
void t3d_eval_free_names(char **names, size_t count); /* NULL is a no-op */

/* ---- metrics ------------------------------------------------------------------------------ */

/* Area under the ROC curve of scores score[0..n) against positive[0..n), exactly: the
 * Mann-Whitney U statistic over (#positives * #negatives), a positive-negative pair with equal
 * scores counting one half. O(n log n). Errors: T3D_ERR_INVALID_ARG when there is no positive
 * or no negative or a score is NaN (AUROC undefined), T3D_ERR_NOMEM. */
t3d_status t3d_eval_auroc(const double *score, const bool *positive, size_t n, double *out);

/* Paired retrieval recall@k over an n x n similarity matrix sim (row-major, sim[q*n + c]): query
 * q's one correct candidate is c = q. by_column false: rows are the queries (text->volume when
 * rows are texts); true: columns are (volume->text). A query whose correct candidate ties with
 * t others and is beaten by g counts min(1, max(0, (k - g) / (t + 1))): its expected hit under
 * a random order of the tied candidates. *out is the mean over the n queries. Errors:
 * T3D_ERR_INVALID_ARG (n or k 0, NaN similarity). */
t3d_status t3d_eval_recall_at_k(const float *sim, size_t n, bool by_column, size_t k, double *out);

/* Voxel counts of one class pair for Dice: |truth|, |pred|, |truth and pred|. */
typedef struct {
  uint64_t truth, pred, both;
} t3d_eval_overlap;

/* For each of the m matched classes j (truth id truth_ids[j], predicted id pred_ids[j]) counts
 * the voxels of truth[0..n) and pred[0..n) into ov[j] (overwritten). Errors:
 * T3D_ERR_INVALID_ARG (a truth id or a pred id matched twice). */
t3d_status t3d_eval_overlap_count(const uint8_t *truth, const uint8_t *pred, size_t n, const uint8_t *truth_ids,
                                  const uint8_t *pred_ids, size_t m, t3d_eval_overlap *ov);
/* Dice 2|T and P| / (|T| + |P|); NaN when the class is absent from both (no evidence, so the
 * callers leave such a case out of the class's mean). */
double t3d_eval_dice(t3d_eval_overlap ov);

#ifdef __cplusplus
}
#endif
#endif
