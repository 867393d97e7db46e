/* The T3D model API: load a model file onto a backend (vision encoder + decoder, projections,
 * text encoder with the findings' prompt embeddings cached), analyse a CT volume (embedding,
 * zero-shot findings, organ labels on the series grid with volumes in mL, timings) and encode
 * free text. Not the DICOM reader (core/dicom/dicom.h) and not the viewer: a volume comes in, plain
 * results go out. */
#ifndef T3D_MODEL_H
#define T3D_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/model/modelconfig.h"
#include "core/model/preprocess.h"
#include "core/base/status.h"
#include "core/base/tensor.h"
#include "core/model/vision.h"
#include "core/base/volume.h"
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct t3d_model t3d_model;

/* Opens path, parses its config, loads the vision network (BN folded), the projection heads,
 * logit_scale, the text encoder, and embeds every finding's positive and negative prompt once.
 * The file is closed before returning (the model keeps its own copies). be must outlive the
 * model. When the file lacks the text encoder weights (a vision-only file), the model
 * loads without zero-shot: t3d_model_has_text is false and zero-shot reports T3D_ERR_UNSUPPORTED.
 * *out is the caller's (t3d_model_free). */
t3d_status t3d_model_load(const char *path, t3d_backend *be, t3d_model **out);
void t3d_model_free(t3d_model *m); /* NULL is a no-op */

const t3d_model_config *t3d_model_config_of(const t3d_model *m); /* borrowed */
bool t3d_model_has_text(const t3d_model *m);
size_t t3d_model_class_count(const t3d_model *m);            /* 0 without segmentation */
const char *t3d_model_class_name(const t3d_model *m, size_t i); /* borrowed; NULL out of range */
size_t t3d_model_finding_count(const t3d_model *m);
const char *t3d_model_finding_name(const t3d_model *m, size_t i); /* borrowed */
float t3d_model_logit_scale(const t3d_model *m); /* exp(stored logit_scale), capped at 100 (CLIP) */
/* How many training embeddings the familiarity check compares with (0: the file has none). */
size_t t3d_model_calibration_cases(const t3d_model *m);

typedef struct {
  bool segment;   /* run the decoder (ignored without a segmentation head); default true */
  bool zero_shot; /* score the findings (needs the text encoder); default true */
  void *user;     /* passed to the progress callback */
  /* segment the whole series: where it extends beyond the model grid (t3d-tiny: a 384 mm cube),
   * in overlapping model-grid windows whose class probabilities are blended; default true.
   * false: the centre window alone (the one the embedding and the findings see). */
  bool whole_series;
} t3d_analyze_opts;
t3d_analyze_opts t3d_analyze_default_opts(void);

typedef struct {
  char name[128];
  double probability; /* softmax over (scale*<img,pos>, scale*<img,neg>), first entry; where the model
                       * file calibrates the finding, sigmoid(slope * (logit_pos - logit_neg) + intercept) */
  double logit_pos, logit_neg;
  bool has_heldout_auroc; /* the model file gives this finding's AUROC on held-out cases: */
  double heldout_auroc;   /* that AUROC, in [0, 1] */
  bool series_unfamiliar; /* the series failed the familiarity check (familiar < 0): the model
                           * abstains on every finding of it */
} t3d_finding_result;

/* Below this held-out AUROC a finding is "not assessed": the model ranks cases with and without it
 * too poorly for its probability to say "present" or "absent" (a draft report that wrote "no
 * pulmonary nodule" from a score at AUROC 0.6 would mislead). */
#define T3D_FINDING_MIN_AUROC 0.8

/* Whether f may be reported: its series is not flagged unfamiliar, and its held-out AUROC reaches
 * T3D_FINDING_MIN_AUROC or the model file does not give one (older files: as before). On a series
 * unlike every training case the scores are extrapolation (a phantom-trained model on real CT
 * calls pleural effusion at 0.99 where there is none: README), so nothing is assessed there. */
bool t3d_finding_assessed(const t3d_finding_result *f);

typedef struct {
  float *embedding; /* [dim], L2-normalised; owned */
  int dim;
  t3d_finding_result *findings; /* owned; nfindings may be 0 */
  size_t nfindings;
  t3d_status zero_shot_status; /* T3D_OK, or why findings is empty (T3D_ERR_UNSUPPORTED: no text) */
  char zero_shot_message[256];
  /* Familiarity: the cosine between the series' embedding, or its pooled encoder features when
   * the file's t3d.calibration says "space": "pooled", and the nearest training case's (the model
   * file's calib.reference). familiar is 1 when it reaches the file's threshold (set at export
   * so that ~99 % of held-out cases do), -1 when it does not (the series is unlike anything the
   * model learned from: its findings are not to be trusted), 0 when not checked (the file has no
   * reference; familiarity NAN). */
  double familiarity, familiarity_threshold;
  int familiar;
  t3d_tensor *labels;     /* u8[nz, ny, nx] on the series grid, or NULL without segmentation; owned */
  double *volumes_ml;     /* [nclasses] per class (background first); owned */
  size_t nclasses;
  t3d_preprocess_transform transform; /* model grid <-> series grid */
  size_t arena_bytes;                 /* activation arena of the vision network */
  int seg_windows;                    /* model-grid windows segmented (1: the centre one) */
  struct {
    double preprocess, encoder, projection, zero_shot, decoder, labels, total;
  } ms;
} t3d_analysis_result;

/* The preprocessing a model with this config applies to every series (t3d_analyze, and the
 * training cache of `t3d preprocess`, so training and inference see the same tensors). */
t3d_preprocess_params t3d_model_preprocess_params(const t3d_model_config *cfg);

/* Analyses a CT volume (HU). Refuses a series whose modality is set and not "CT"
 * (T3D_ERR_UNSUPPORTED). progress (may be NULL) gets (opts->user, fraction 0..1, stage name)
 * from the calling thread; cancel (may be NULL): set *cancel nonzero from any thread to stop
 * with T3D_ERR_CANCELLED (checked between layers and inside large convolutions). opts NULL
 * means the defaults. *out is the caller's (t3d_analysis_result_free). */
t3d_status t3d_analyze(t3d_model *m, const t3d_volume *vol, const t3d_analyze_opts *opts, t3d_progress_fn progress,
                       const volatile int *cancel, t3d_analysis_result **out);
void t3d_analysis_result_free(t3d_analysis_result *r); /* NULL is a no-op */

/* The user's language's caution for a series the familiarity check found unlike the training
 * cases (r->familiar < 0), into buf (n bytes; 512 hold it); "" otherwise. Returns buf. */
const char *t3d_familiarity_caution(const t3d_analysis_result *r, char *buf, size_t n);

/* The projected, L2-normalised text embedding of text into out_D (dim floats).
 * T3D_ERR_UNSUPPORTED without the text encoder. */
t3d_status t3d_encode_text(t3d_model *m, const char *text, float *out_D);

#ifdef __cplusplus
}
#endif
#endif
