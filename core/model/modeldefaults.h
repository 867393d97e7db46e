/* The vocabulary, findings and segmentation classes that `t3d model-init` puts into a fresh
 * model file: a small radiology WordPiece vocabulary, ten findings with prompt pairs, and the
 * organ/lesion classes of the synthetic phantoms. Not a tokenizer (see tokenizer.h). */
#ifndef T3D_MODELDEFAULTS_H
#define T3D_MODELDEFAULTS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A zero-shot finding: softmax over (positive, negative) prompt similarities. A model file may
 * calibrate it (calibrated = 1): the probability is then sigmoid(slope * (logit_pos - logit_neg)
 * + intercept), fitted on held-out cases (train/export.py); slope >= 0 keeps the ranking. The
 * calibration may also give auroc (has_auroc = 1): how well the finding's score ranked those
 * held-out cases (the area under the ROC curve against their truth, in [0, 1]). Below
 * T3D_FINDING_MIN_AUROC (model.h) the finding is "not assessed": its probability is shown, never
 * reported as present or absent. */
typedef struct {
  const char *name;
  const char *positive;
  const char *negative;
  int calibrated;
  double slope, intercept;
  int has_auroc;
  double auroc;
} t3d_finding;

/* Static arrays; *count receives their length. The vocabulary starts with
 * [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0..4). */
const char *const *t3d_default_vocab(size_t *count);
size_t t3d_default_vocab_size(void);
const t3d_finding *t3d_default_findings(size_t *count);
const char *const *t3d_default_classes(size_t *count);

#ifdef __cplusplus
}
#endif
#endif
