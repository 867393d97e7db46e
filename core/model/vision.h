/* The T3D vision network: the MONAI-layout 3-D ResNet encoder (basic or bottleneck blocks, BN
 * folded into the convolutions at load) and the UNet-style segmentation decoder of
 * core/model/modelconfig.h, run through the backend op table with every activation in one arena.
 * Not the projection heads, the text side or preprocessing (see core/model/model.h).
 *
 * Use: t3d_vision_load once per model; per input shape a t3d_vision_run (it plans the arena:
 * the whole forward is simulated once with a first-fit allocator over one buffer, so the peak is
 * known before anything runs and nothing is allocated mid-inference); then t3d_vision_encode
 * (pooled layer-4 feature, feature pyramid left in the arena) and, optionally,
 * t3d_vision_decode (segmentation logits and/or labels). */
#ifndef T3D_VISION_H
#define T3D_VISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model/modelconfig.h"
#include "core/model/modelfile.h"
#include "core/base/status.h"
#include "core/base/tensor.h"
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct t3d_vision t3d_vision;
typedef struct t3d_vision_run t3d_vision_run;

/* Progress and cancellation for long forwards. progress (may be NULL) gets the fraction of the
 * pass done (encode or decode, by arithmetic work, mapped into [frac_begin, frac_end]) and a static stage
 * name ("encoder layer2", "decoder block 4"); it is called from the calling thread only. cancel
 * (may be NULL): when *cancel becomes nonzero the forward stops with T3D_ERR_CANCELLED at the
 * next check (between layers, and inside convolutions through the backend's cancel pointer,
 * which the forward sets to this flag while it runs). */
typedef void (*t3d_progress_fn)(void *user, double fraction, const char *stage);
typedef struct {
  t3d_progress_fn progress;
  void *user;
  const volatile int *cancel;
  double frac_begin, frac_end; /* both 0: the full range [0, 1] */
} t3d_vision_hooks;

/* Reads the vision.* (and, when cfg has segmentation, seg.*) tensors of mf (F32/F16/BF16),
 * folds every BatchNorm (eps 1e-5) into its convolution and uploads the weights to be.
 * A "vision.layer*.0.downsample.0.bias" present in the file (MONAI bias_downsample=True) is
 * used; absent means no bias. *out is the caller's (t3d_vision_free); be must outlive it.
 * Errors name the missing or misshapen tensor (T3D_ERR_NOT_FOUND / T3D_ERR_SHAPE). */
t3d_status t3d_vision_load(t3d_vision **out, t3d_backend *be, const t3d_modelfile *mf, const t3d_model_config *cfg);
void t3d_vision_free(t3d_vision *v); /* NULL is a no-op */

int t3d_vision_features(const t3d_vision *v); /* C4: channels of the pooled feature */
bool t3d_vision_has_decoder(const t3d_vision *v);
int t3d_vision_classes(const t3d_vision *v); /* segmentation classes, 0 without a decoder */

/* Plans (and, unless plan_only, allocates) the arena for input x[N, in_channels, D, H, W].
 * segment: keep the pyramid and plan the decoder. D, H, W must be multiples of the encoder
 * stride when segmenting (T3D_ERR_SHAPE otherwise) and large enough that layer 4 is at least
 * 1 voxel. *out is the caller's (t3d_vision_run_free); v must outlive it. */
t3d_status t3d_vision_run_new(t3d_vision_run **out, t3d_vision *v, const int64_t shape[5], bool segment,
                              bool plan_only);
void t3d_vision_run_free(t3d_vision_run *r); /* NULL is a no-op */
/* Arena bytes this run needs (the planned peak of simultaneously live activations). */
size_t t3d_vision_run_arena_bytes(const t3d_vision_run *r);
/* Floating-point operations (multiply-add = 2) of the encoder and of the decoder. */
double t3d_vision_run_flops(const t3d_vision_run *r, bool decoder);

/* Runs the encoder on host x (f32, the run's shape). pooled (may be NULL): host [N * C4] floats,
 * the global average of layer 4 (MONAI's avgpool + flatten). The pyramid stays in the arena for
 * t3d_vision_decode. hooks may be NULL. */
t3d_status t3d_vision_encode(t3d_vision_run *r, const t3d_tensor *x, float *pooled, const t3d_vision_hooks *hooks);
/* Borrowed backend tensor of pyramid level 0 (input), 1 (stem: conv1-bn1-relu), 2..5 (layer1..4)
 * after t3d_vision_encode on a segmenting run; NULL when not kept. Valid until decode or free. */
const t3d_tensor *t3d_vision_run_feature(const t3d_vision_run *r, int level);
/* Runs the decoder after t3d_vision_encode (segmenting run only). logits (may be NULL): host
 * [N, classes, D, H, W] floats; labels (may be NULL): host [N, D, H, W] channel argmax. */
t3d_status t3d_vision_decode(t3d_vision_run *r, float *logits, int32_t *labels, const t3d_vision_hooks *hooks);

/* A projection head: nn.Sequential(Linear(in, hidden), ReLU, Linear(hidden, dim)) named
 * "<prefix>.0.*" and "<prefix>.2.*", followed by F.normalize (L2, eps 1e-12). Used for the
 * vision side ("vision_proj"); shapes from the config. *out is the caller's. */
typedef struct t3d_vision_projection t3d_vision_projection;
t3d_status t3d_vision_projection_load(t3d_vision_projection **out, t3d_backend *be, const t3d_modelfile *mf,
                                      const char *prefix, int in, int hidden, int dim);
void t3d_vision_projection_free(t3d_vision_projection *p); /* NULL is a no-op */
/* x: host [n, in] -> out: host [n, dim], each row L2-normalised. */
t3d_status t3d_vision_projection_apply(t3d_vision_projection *p, const float *x, int64_t n, float *out);

#ifdef __cplusplus
}
#endif
#endif
