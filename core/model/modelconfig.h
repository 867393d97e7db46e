/* T3D model configuration: the "t3d.config" JSON of a model file parsed into a C struct,
 * the built-in named configs, and the list of tensors (name, shape, initialiser) a config needs.
 * Not a model: no weights live here, and nothing here runs a network.
 *
 * Config JSON schema (format version 1). Every key is required unless marked optional;
 * unknown keys are ignored so later versions can append fields.
 *
 *   {"model": {
 *     "name": "t3d-tiny",                     string, 1..63 bytes
 *     "vision": {                             MONAI-layout 3-D ResNet
 *       "arch": "resnet",
 *       "block": "basic" | "bottleneck",      expansion 1 | 4
 *       "layers": [n1,n2,n3,n4],              blocks per stage, each 1..64
 *       "widths": [w1,w2,w3,w4],              planes per stage (stage output = w*expansion)
 *       "in_channels": 1,
 *       "conv1_kernel": 7,                    odd, 1..11; padding kernel/2
 *       "conv1_stride": 2,                    1 or 2
 *       "maxpool": true,                      optional (default true): 3^3 max-pool stride 2
 *       "downsample_bias": true               optional (default true, as MONAI): the 1^3 shortcut
 *                                             conv has a bias (MedicalNet: false)
 *     },
 *     "text": {                               HF-layout BERT encoder, [CLS] hidden state pooled
 *       "arch": "bert", "vocab_size", "hidden", "layers", "heads", "intermediate",
 *       "max_positions", "type_vocab_size",   positive integers; hidden % heads == 0
 *       "layer_norm_eps",                     number > 0
 *       "lowercase", "strip_accents"          booleans (WordPiece normalisation)
 *     },
 *     "projection": {"dim": D, "hidden": H,   2-layer MLP per side: Linear-ReLU-Linear to D
 *       "class_histogram_hu": [e0,...,eB]     optional, needs "segmentation": B + 1 (2..65) strictly
 *                                             increasing HU edges. The vision projection then reads
 *                                             the pooled feature followed by, for each class c and
 *                                             bin b, log(1 + sum over the model grid of the
 *                                             decoder's softmax p_c at voxels whose HU lies in
 *                                             [e_b, e_b+1)) (HU = input * (hu_max - hu_min) +
 *                                             hu_min clamped to the window; below e0 counts in
 *                                             bin 0, from eB on in bin B - 1): the intensities
 *                                             inside each organ the model segments
 *       "class_histogram_erosion": r          optional, needs "class_histogram_hu": an integer 1..8.
 *                                             The same histograms follow a second time, of the
 *                                             probabilities eroded: q_c(v) = the minimum of p_c
 *                                             over the voxels inside the model grid within r
 *                                             voxels of v along each axis (a (2r+1)^3 cube): the
 *                                             intensities in each organ's interior, where its
 *                                             edges' partial volume no longer hides what lies
 *                                             inside it (a hypodense liver lesion)
 *     },
 *     "segmentation": {                       optional: absent means no segmentation head
 *       "classes": C,                         count, background included (= len of t3d.classes)
 *       "decoder_widths": [d0,d1,d2,d3,d4]    one per decoder block, deepest first
 *     },
 *     "preprocess": {
 *       "spacing_mm": [x,y,z],                model voxel spacing, > 0
 *       "shape": [z,y,x],                     model grid; each a multiple of the encoder stride
 *       "hu_min", "hu_max",                   clip window in HU; hu_min < hu_max; the clipped
 *                                             value maps linearly to [0,1]
 *       "pad_value"                           HU used where the crop/pad leaves the volume
 *     },
 *     "logit_scale_init": 2.6593              optional (default ln(1/0.07)); stored as ln(scale)
 *   }}
 *
 * Tensor names (all F32 when written by t3d; see t3d_model_config_tensors for shapes):
 *   vision.conv1.weight [w1, in, k, k, k], vision.bn1.{weight,bias,running_mean,running_var}
 *   vision.layer{s}.{b}.conv1.weight, .bn1.*, .conv2.*, .bn2.* (+ .conv3, .bn3 for bottleneck),
 *   vision.layer{s}.{b}.downsample.0.{weight,bias} (1^3 conv) and .downsample.1.* (BN) where the
 *   block changes stride or width -- the MONAI / MedicalNet ResNet names behind "vision.".
 *   text.embeddings.{word,position,token_type}_embeddings.weight, text.embeddings.LayerNorm.*,
 *   text.encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias},
 *   text.encoder.layer.{i}.attention.output.dense.*, .attention.output.LayerNorm.*,
 *   text.encoder.layer.{i}.intermediate.dense.*, .output.dense.*, .output.LayerNorm.*
 *   -- Hugging Face BertModel names behind "text." (no pooler: [CLS] hidden state is used).
 *   vision_proj.{0,2}.{weight,bias}, text_proj.{0,2}.{weight,bias}: nn.Sequential(Linear, ReLU,
 *   Linear) over the pooled layer-4 feature / the [CLS] feature.
 *   seg.blocks.{i}.up.{weight,bias}: ConvTranspose3d k2 s2, weight [in, d_i, 2, 2, 2];
 *   seg.blocks.{i}.conv.weight [d_i, d_i + skip_i, 3, 3, 3] and seg.blocks.{i}.bn.*;
 *   the skips of blocks 0..4 are layer3, layer2, layer1, the stem (conv1-bn1-relu output)
 *   and the input volume; seg.head.{weight [C, d4, 1, 1, 1], bias [C]}.
 *   logit_scale [1].
 * The segmentation decoder needs conv1_stride 2 and the max-pool (encoder stride 32). */
#ifndef T3D_MODELCONFIG_H
#define T3D_MODELCONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define T3D_RESNET_STAGES 4
#define T3D_SEG_BLOCKS 5
#define T3D_MODEL_NAME_MAX 64
#define T3D_CLASS_HIST_EDGES_MAX 65
#define T3D_CLASS_HIST_EROSION_MAX 8 /* "class_histogram_erosion" */

typedef enum { T3D_BLOCK_BASIC = 0, T3D_BLOCK_BOTTLENECK } t3d_block_kind;

typedef struct {
  t3d_block_kind block;
  int expansion; /* derived: 1 for basic, 4 for bottleneck */
  int layers[T3D_RESNET_STAGES];
  int widths[T3D_RESNET_STAGES];
  int in_channels;
  int conv1_kernel;
  int conv1_stride;
  bool maxpool;
  bool downsample_bias; /* MONAI's default (true); MedicalNet checkpoints have none (false) */
} t3d_vision_config;

typedef struct {
  int vocab_size, hidden, layers, heads, intermediate, max_positions, type_vocab_size;
  double layer_norm_eps;
  bool lowercase, strip_accents;
} t3d_text_config;

typedef struct {
  char name[T3D_MODEL_NAME_MAX];
  t3d_vision_config vision;
  t3d_text_config text;
  struct {
    int dim, hidden;
    int class_hist_bins;                             /* 0: none; else B ("class_histogram_hu") */
    double class_hist_hu[T3D_CLASS_HIST_EDGES_MAX]; /* B + 1 edges */
    int class_hist_erosion;                          /* 0: none; else r ("class_histogram_erosion") */
  } projection;
  bool has_segmentation;
  struct {
    int classes;
    int decoder_widths[T3D_SEG_BLOCKS];
  } segmentation;
  struct {
    double spacing_mm[3]; /* x, y, z */
    int shape[3];         /* z, y, x */
    double hu_min, hu_max, pad_value;
  } preprocess;
  double logit_scale_init;
} t3d_model_config;

/* Parses and validates a config object ({"model": {...}}). On failure returns T3D_ERR_FORMAT
 * with the JSON path of the offending key ("model.vision.layers[2]: must be an integer
 * 1..64, got -1"); *out is then unspecified. */
t3d_status t3d_model_config_parse(t3d_model_config *out, const json_t *root);
/* Same from JSON text (len bytes, need not be NUL-terminated). */
t3d_status t3d_model_config_parse_text(t3d_model_config *out, const char *text, size_t len);
/* Serialises cfg into a new JSON object (caller's reference, json_decref it). Round-trips through
 * t3d_model_config_parse. Fails only with T3D_ERR_NOMEM. */
t3d_status t3d_model_config_to_json(const t3d_model_config *cfg, json_t **out);

/* Built-in configs: "t3d-tiny" (bundled, trainable on a CPU) and "t3d-r50" (full size).
 * T3D_ERR_NOT_FOUND naming the known ones for any other name. */
t3d_status t3d_model_config_builtin(t3d_model_config *out, const char *name);
/* NULL-terminated list of built-in config names (static). */
const char *const *t3d_model_config_builtin_names(void);

/* Encoder geometry derived from a config. */
int t3d_model_config_vision_features(const t3d_model_config *cfg); /* layer4 channels */
/* Inputs of the vision projection: layer4 channels + classes x class_hist_bins. */
int t3d_model_config_projection_inputs(const t3d_model_config *cfg);
int t3d_model_config_stage_channels(const t3d_model_config *cfg, int stage); /* stage 0..3 */
int t3d_model_config_encoder_stride(const t3d_model_config *cfg); /* input / layer4 size */

/* How a freshly initialised tensor is filled (t3d model-init; training from scratch). */
typedef enum {
  T3D_INIT_ZEROS = 0,
  T3D_INIT_ONES,
  T3D_INIT_HE_NORMAL,   /* N(0, 2/fan_out): convolutions followed by ReLU (MONAI's choice) */
  T3D_INIT_NORMAL_002,  /* N(0, 0.02^2): BERT weights and embeddings */
  T3D_INIT_LINEAR,      /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): projection Linear layers */
  T3D_INIT_LOGIT_SCALE  /* constant cfg->logit_scale_init */
} t3d_init_kind;

typedef struct {
  char name[96];
  int ndim;
  int64_t shape[T3D_MAX_DIMS];
  t3d_init_kind init;
  int64_t fan_in, fan_out; /* for the random initialisers; 0 otherwise */
} t3d_tensor_spec;

/* Every tensor cfg needs, in a fixed order (vision, text, projections, seg, logit_scale).
 * *specs is the caller's (free()); T3D_ERR_NOMEM on allocation failure. */
t3d_status t3d_model_config_tensors(const t3d_model_config *cfg, t3d_tensor_spec **specs, size_t *count);
/* Sum of numel over the specs whose name starts with prefix ("" = all, "vision." ...). */
int64_t t3d_model_config_param_count(const t3d_tensor_spec *specs, size_t count, const char *prefix);

/* Fills dst (numel floats of spec's shape) with spec's initialiser. The random stream depends
 * only on seed and the tensor name, so adding a tensor never changes the others. */
void t3d_tensor_spec_init(const t3d_tensor_spec *spec, const t3d_model_config *cfg, uint64_t seed, float *dst);

#ifdef __cplusplus
}
#endif
#endif
