/* Model config: built-ins validate and round-trip through JSON, bad values are refused with
 * their JSON path, the tensor list has the MONAI/HF names and shapes, and the parameter counts
 * match the published architecture sizes (3-D ResNet-50 about 46 M, BERT-base about 110 M). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/modelconfig.h"
#include "core/model/modeldefaults.h"
#include "tests/check.h"

static const t3d_tensor_spec *find(const t3d_tensor_spec *s, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(s[i].name, name) == 0)
      return &s[i];
  return NULL;
}

static void check_shape(const t3d_tensor_spec *s, size_t n, const char *name, int ndim, const int64_t *shape)
{
  const t3d_tensor_spec *t = find(s, n, name);
  check_count++;
  if (!t) {
    check_failures++;
    fprintf(stderr, "FAIL: tensor %s not in the list\n", name);
    return;
  }
  if (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) != 0) {
    check_failures++;
    fprintf(stderr, "FAIL: tensor %s has ndim %d shape [%lld,%lld,...], want ndim %d [%lld,%lld,...]\n", name,
            t->ndim, (long long)t->shape[0], (long long)t->shape[1], ndim, (long long)shape[0],
            (long long)(ndim > 1 ? shape[1] : 0));
  }
}

static void test_roundtrip(const char *name)
{
  t3d_model_config a, b;
  json_t *j = NULL;
  char *text;
  CHECK_STATUS(t3d_model_config_builtin(&a, name), T3D_OK);
  CHECK_STATUS(t3d_model_config_to_json(&a, &j), T3D_OK);
  text = json_dumps(j, JSON_COMPACT);
  CHECK(text != NULL);
  CHECK_STATUS(t3d_model_config_parse_text(&b, text, strlen(text)), T3D_OK);
  CHECK(memcmp(&a, &b, sizeof a) == 0); /* both memset to 0 first, so padding matches too */
  CHECK_INT_EQ(b.vision.expansion, strcmp(name, "t3d-r50") == 0 ? 4 : 1);
  free(text);
  json_decref(j);
}

/* Replaces one value in the tiny config's JSON (path like "vision.layers") and expects failure. */
static void expect_refused(const char *section, const char *key, json_t *value, const char *want_msg)
{
  t3d_model_config c;
  json_t *j = NULL, *obj;
  CHECK_STATUS(t3d_model_config_builtin(&c, "t3d-tiny"), T3D_OK);
  CHECK_STATUS(t3d_model_config_to_json(&c, &j), T3D_OK);
  obj = json_object_get(j, "model");
  if (section)
    obj = json_object_get(obj, section);
  if (value)
    json_object_set_new(obj, key, value);
  else
    json_object_del(obj, key);
  CHECK_STATUS(t3d_model_config_parse(&c, j), T3D_ERR_FORMAT);
  printf("refused: %s\n", t3d_error_detail());
  if (!strstr(t3d_error_detail(), want_msg)) {
    check_failures++;
    fprintf(stderr, "FAIL: expected \"%s\" in \"%s\"\n", want_msg, t3d_error_detail());
  }
  check_count++;
  json_decref(j);
}

static void test_refusals(void)
{
  t3d_model_config c;
  expect_refused("vision", "layers", json_pack("[i,i,i]", 1, 1, 1), "model.vision.layers: must be an array of 4");
  expect_refused("vision", "widths", json_pack("[i,i,f,i]", 1, 1, 2.5, 1), "model.vision.widths[2]: must be an integer");
  expect_refused("vision", "block", json_string("wide"), "model.vision.block: must be \"basic\" or \"bottleneck\"");
  expect_refused("vision", "arch", json_string("vit"), "model.vision.arch: must be \"resnet\"");
  expect_refused("vision", "conv1_kernel", json_integer(4), "conv1_kernel: must be odd, got 4");
  expect_refused("vision", "conv1_stride", json_integer(1), "the decoder needs model.vision.conv1_stride 2");
  expect_refused("text", "heads", json_integer(3), "hidden (128) must be a multiple of heads (3)");
  expect_refused("text", "hidden", NULL, "model.text.hidden: missing");
  expect_refused("text", "lowercase", json_string("yes"), "model.text.lowercase: must be true or false");
  expect_refused("text", "layer_norm_eps", json_integer(0), "model.text.layer_norm_eps: must be a number");
  expect_refused("projection", "dim", json_integer(0), "model.projection.dim: must be an integer 1..65536, got 0");
  expect_refused("preprocess", "shape", json_pack("[i,i,i]", 64, 60, 64),
                 "model.preprocess.shape[1] (y = 60): must be a multiple of the encoder stride 32");
  expect_refused("preprocess", "hu_max", json_integer(-2000), "hu_min (-1000) must be below hu_max (-2000)");
  expect_refused("preprocess", "spacing_mm", json_pack("[f,f,f]", 1.0, -1.0, 1.0),
                 "model.preprocess.spacing_mm[1]: must be a number");
  expect_refused(NULL, "name", json_string(""), "model.name: must be a string");
  expect_refused(NULL, "vision", json_integer(1), "model.vision: must be an object");
  expect_refused("segmentation", "decoder_widths", json_pack("[i]", 8), "model.segmentation.decoder_widths: must be");

  CHECK_STATUS(t3d_model_config_parse_text(&c, "{\"model\":", 9), T3D_ERR_FORMAT);
  CHECK(strstr(t3d_error_detail(), "line 1") != NULL);
  CHECK_STATUS(t3d_model_config_parse_text(&c, "{\"model\":{},\"model\":{}}", 23), T3D_ERR_FORMAT);
  CHECK(strstr(t3d_error_detail(), "duplicate") != NULL);
  CHECK_STATUS(t3d_model_config_builtin(&c, "t3d-huge"), T3D_ERR_NOT_FOUND);
  CHECK(strstr(t3d_error_detail(), "t3d-tiny") != NULL);
}

/* vision_proj.0 reads `inputs` features, and the config survives JSON and back unchanged. */
static void check_width_and_round_trip(const t3d_model_config *a, int64_t inputs)
{
  t3d_model_config b;
  t3d_tensor_spec *specs = NULL;
  size_t n = 0;
  json_t *j = NULL;
  CHECK_STATUS(t3d_model_config_tensors(a, &specs, &n), T3D_OK);
  check_shape(specs, n, "vision_proj.0.weight", 2, (int64_t[]){256, inputs});
  free(specs);
  CHECK_STATUS(t3d_model_config_to_json(a, &j), T3D_OK);
  char *text = json_dumps(j, JSON_COMPACT);
  CHECK_STATUS(t3d_model_config_parse_text(&b, text, strlen(text)), T3D_OK);
  CHECK(memcmp(a, &b, sizeof b) == 0);
  free(text);
  json_decref(j);
}

/* "class_histogram_hu": parsed, round-tripped, widening vision_proj.0 by classes x bins; refused
 * when not increasing, too short, or without a segmentation head to take the histograms in. */
static void test_class_histogram(void)
{
  t3d_model_config a;
  json_t *j = NULL;
  CHECK_STATUS(t3d_model_config_builtin(&a, "t3d-tiny"), T3D_OK);
  CHECK_INT_EQ(a.projection.class_hist_bins, 0);
  CHECK_INT_EQ(t3d_model_config_projection_inputs(&a), 64);
  CHECK_STATUS(t3d_model_config_to_json(&a, &j), T3D_OK);
  json_t *proj = json_object_get(json_object_get(j, "model"), "projection");
  json_object_set_new(proj, "class_histogram_hu", json_pack("[i,i,f,i]", -1000, -500, 20.5, 1000));
  CHECK_STATUS(t3d_model_config_parse(&a, j), T3D_OK);
  CHECK_INT_EQ(a.projection.class_hist_bins, 3);
  CHECK_NEAR(a.projection.class_hist_hu[2], 20.5, 0);
  CHECK_INT_EQ(t3d_model_config_projection_inputs(&a), 64 + 9 * 3);
  json_decref(j);
  check_width_and_round_trip(&a, 64 + 27);

  expect_refused("projection", "class_histogram_hu", json_pack("[i,i,i]", -1000, 0, 0),
                 "model.projection.class_histogram_hu[2]: must be above the edge before it (0), got 0");
  expect_refused("projection", "class_histogram_hu", json_pack("[i]", 0),
                 "model.projection.class_histogram_hu: must be an array of 2..65 HU edges");
  expect_refused("projection", "class_histogram_hu", json_pack("[i,s]", 0, "x"),
                 "model.projection.class_histogram_hu[1]: must be a number");
  CHECK_STATUS(t3d_model_config_builtin(&a, "t3d-tiny"), T3D_OK);
  CHECK_STATUS(t3d_model_config_to_json(&a, &j), T3D_OK);
  json_object_set_new(json_object_get(json_object_get(j, "model"), "projection"), "class_histogram_hu",
                      json_pack("[i,i]", -1000, 1000));
  json_object_del(json_object_get(j, "model"), "segmentation");
  CHECK_STATUS(t3d_model_config_parse(&a, j), T3D_ERR_FORMAT);
  CHECK(strstr(t3d_error_detail(), "class_histogram_hu: needs model.segmentation") != NULL);
  json_decref(j);
}

/* "class_histogram_erosion": the eroded classes' histograms double the histogram inputs. */
static void test_class_histogram_erosion(void)
{
  t3d_model_config a;
  json_t *j = NULL;
  CHECK_STATUS(t3d_model_config_builtin(&a, "t3d-tiny"), T3D_OK);
  CHECK_STATUS(t3d_model_config_to_json(&a, &j), T3D_OK);
  json_t *proj = json_object_get(json_object_get(j, "model"), "projection");
  json_object_set_new(proj, "class_histogram_hu", json_pack("[i,i,i,i]", -1000, -500, 20, 1000));
  json_object_set_new(proj, "class_histogram_erosion", json_integer(2));
  CHECK_STATUS(t3d_model_config_parse(&a, j), T3D_OK);
  CHECK_INT_EQ(a.projection.class_hist_erosion, 2);
  CHECK_INT_EQ(t3d_model_config_projection_inputs(&a), 64 + 2 * 9 * 3);
  json_decref(j);
  check_width_and_round_trip(&a, 64 + 54);

  for (int bad = 0; bad < 3; bad++) { /* 0, 9 and a string: refused with the key's path */
    CHECK_STATUS(t3d_model_config_builtin(&a, "t3d-tiny"), T3D_OK);
    CHECK_STATUS(t3d_model_config_to_json(&a, &j), T3D_OK);
    proj = json_object_get(json_object_get(j, "model"), "projection");
    json_object_set_new(proj, "class_histogram_hu", json_pack("[i,i]", -1000, 1000));
    json_object_set_new(proj, "class_histogram_erosion", bad == 2 ? json_string("2") : json_integer(bad ? 9 : 0));
    CHECK_STATUS(t3d_model_config_parse(&a, j), T3D_ERR_FORMAT);
    CHECK(strstr(t3d_error_detail(), "model.projection.class_histogram_erosion: must be an integer 1..8") != NULL);
    json_decref(j);
  }
  /* without the histograms it erodes */
  expect_refused("projection", "class_histogram_erosion", json_integer(1),
                 "model.projection.class_histogram_erosion: needs model.projection.class_histogram_hu");
}

static void test_optional_keys(void)
{
  t3d_model_config c;
  json_t *j = NULL;
  CHECK_STATUS(t3d_model_config_builtin(&c, "t3d-tiny"), T3D_OK);
  CHECK_STATUS(t3d_model_config_to_json(&c, &j), T3D_OK);
  json_object_del(json_object_get(j, "model"), "segmentation");
  json_object_del(json_object_get(j, "model"), "logit_scale_init");
  json_object_del(json_object_get(json_object_get(j, "model"), "vision"), "maxpool");
  json_object_set_new(json_object_get(j, "model"), "future_key", json_true()); /* unknown keys are ignored */
  CHECK_STATUS(t3d_model_config_parse(&c, j), T3D_OK);
  CHECK(!c.has_segmentation);
  CHECK(c.vision.maxpool);
  CHECK_NEAR(c.logit_scale_init, log(1.0 / 0.07), 1e-12);
  json_decref(j);
}

static void test_tensors_tiny(void)
{
  t3d_model_config c;
  t3d_tensor_spec *s = NULL;
  size_t n = 0;
  CHECK_STATUS(t3d_model_config_builtin(&c, "t3d-tiny"), T3D_OK);
  CHECK_INT_EQ(c.text.vocab_size, (long long)t3d_default_vocab_size());
  CHECK_STATUS(t3d_model_config_tensors(&c, &s, &n), T3D_OK);
  check_shape(s, n, "vision.conv1.weight", 5, (int64_t[]){8, 1, 7, 7, 7});
  check_shape(s, n, "vision.bn1.running_var", 1, (int64_t[]){8});
  check_shape(s, n, "vision.layer1.0.conv1.weight", 5, (int64_t[]){8, 8, 3, 3, 3});
  CHECK(find(s, n, "vision.layer1.0.downsample.0.weight") == NULL); /* same stride and width */
  check_shape(s, n, "vision.layer2.0.downsample.0.weight", 5, (int64_t[]){16, 8, 1, 1, 1});
  check_shape(s, n, "vision.layer2.0.downsample.0.bias", 1, (int64_t[]){16});
  check_shape(s, n, "vision.layer4.0.conv2.weight", 5, (int64_t[]){64, 64, 3, 3, 3});
  check_shape(s, n, "text.embeddings.word_embeddings.weight", 2, (int64_t[]){c.text.vocab_size, 128});
  check_shape(s, n, "text.encoder.layer.1.attention.self.query.weight", 2, (int64_t[]){128, 128});
  check_shape(s, n, "text.encoder.layer.1.intermediate.dense.weight", 2, (int64_t[]){512, 128});
  check_shape(s, n, "text.encoder.layer.1.output.dense.weight", 2, (int64_t[]){128, 512});
  CHECK(find(s, n, "text.encoder.layer.2.output.dense.weight") == NULL);
  check_shape(s, n, "vision_proj.0.weight", 2, (int64_t[]){256, 64});
  check_shape(s, n, "text_proj.2.weight", 2, (int64_t[]){128, 256});
  check_shape(s, n, "seg.blocks.0.up.weight", 5, (int64_t[]){64, 32, 2, 2, 2});
  check_shape(s, n, "seg.blocks.0.conv.weight", 5, (int64_t[]){32, 32 + 32, 3, 3, 3});
  check_shape(s, n, "seg.blocks.3.conv.weight", 5, (int64_t[]){8, 8 + 8, 3, 3, 3});
  check_shape(s, n, "seg.blocks.4.conv.weight", 5, (int64_t[]){6, 6 + 1, 3, 3, 3});
  check_shape(s, n, "seg.head.weight", 5, (int64_t[]){9, 6, 1, 1, 1});
  check_shape(s, n, "logit_scale", 1, (int64_t[]){1});
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(s[i].name, s[j].name) == 0) {
        check_failures++;
        fprintf(stderr, "FAIL: tensor %s listed twice\n", s[i].name);
      }
  free(s);
}

static void test_tensors_r50(void)
{
  t3d_model_config c;
  t3d_tensor_spec *s = NULL;
  size_t n = 0;
  int64_t vision, text;
  CHECK_STATUS(t3d_model_config_builtin(&c, "t3d-r50"), T3D_OK);
  CHECK_STATUS(t3d_model_config_tensors(&c, &s, &n), T3D_OK);
  check_shape(s, n, "vision.conv1.weight", 5, (int64_t[]){64, 1, 7, 7, 7});
  check_shape(s, n, "vision.layer1.0.conv3.weight", 5, (int64_t[]){256, 64, 1, 1, 1});
  check_shape(s, n, "vision.layer1.0.downsample.0.weight", 5, (int64_t[]){256, 64, 1, 1, 1});
  check_shape(s, n, "vision.layer3.5.conv2.weight", 5, (int64_t[]){256, 256, 3, 3, 3});
  CHECK(find(s, n, "vision.layer3.6.conv2.weight") == NULL);
  check_shape(s, n, "vision.layer4.2.bn3.weight", 1, (int64_t[]){2048});
  check_shape(s, n, "vision_proj.0.weight", 2, (int64_t[]){2048, 2048});
  check_shape(s, n, "vision_proj.2.weight", 2, (int64_t[]){512, 2048});
  check_shape(s, n, "text.encoder.layer.11.output.LayerNorm.bias", 1, (int64_t[]){768});
  /* learnable parameters only (BN running statistics are buffers), as torch counts them */
  vision = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(s[i].name, "vision.", 7) == 0 && !strstr(s[i].name, "running_")) {
      int64_t k = 1;
      for (int d = 0; d < s[i].ndim; d++)
        k *= s[i].shape[d];
      vision += k;
    }
  text = t3d_model_config_param_count(s, n, "text.");
  printf("t3d-r50: vision %lld parameters, text %lld\n", (long long)vision, (long long)text);
  /* MONAI 1.1 ResNet(bottleneck, [3,4,6,3], n_input_channels=1, shortcut B, no fc), counted
   * with torch: 46,158,912 (tests/test-modelfile-interop.sh compares every name and shape) */
  CHECK_INT_EQ(vision, 46158912);
  /* HF bert-base-uncased without the pooler: 109,482,240 - 590,592 = 108,891,648 (512 positions) */
  CHECK_INT_EQ(text, 108891648);
  free(s);
}

static void test_init(void)
{
  t3d_model_config c;
  t3d_tensor_spec *s = NULL;
  size_t n = 0;
  const t3d_tensor_spec *conv, *ln, *ls;
  float *a, *b;
  double sum = 0, sum2 = 0;
  int64_t numel;
  CHECK_STATUS(t3d_model_config_builtin(&c, "t3d-tiny"), T3D_OK);
  CHECK_STATUS(t3d_model_config_tensors(&c, &s, &n), T3D_OK);
  conv = find(s, n, "vision.layer4.0.conv2.weight");
  ln = find(s, n, "text.embeddings.LayerNorm.weight");
  ls = find(s, n, "logit_scale");
  CHECK(conv && ln && ls);
  if (!conv || !ln || !ls) {
    free(s);
    return;
  }
  numel = 64 * 64 * 27;
  a = malloc((size_t)numel * sizeof *a);
  b = malloc((size_t)numel * sizeof *b);
  t3d_tensor_spec_init(conv, &c, 42, a);
  t3d_tensor_spec_init(conv, &c, 42, b);
  CHECK(memcmp(a, b, (size_t)numel * sizeof *a) == 0); /* deterministic */
  t3d_tensor_spec_init(conv, &c, 43, b);
  CHECK(memcmp(a, b, (size_t)numel * sizeof *a) != 0); /* seed matters */
  for (int64_t i = 0; i < numel; i++)
    sum += a[i], sum2 += (double)a[i] * a[i];
  /* He-normal, fan_out mode: std = sqrt(2 / (64 * 27)) */
  CHECK_NEAR(sum / (double)numel, 0.0, 0.002);
  CHECK_NEAR(sqrt(sum2 / (double)numel), sqrt(2.0 / (64 * 27)), 0.001);
  t3d_tensor_spec_init(ln, &c, 42, a);
  CHECK_NEAR(a[0], 1.0, 0);
  CHECK_NEAR(a[127], 1.0, 0);
  t3d_tensor_spec_init(ls, &c, 42, a);
  CHECK_NEAR(a[0], log(1.0 / 0.07), 1e-6);
  free(a);
  free(b);
  free(s);
}

int main(void)
{
  test_roundtrip("t3d-tiny");
  test_roundtrip("t3d-r50");
  test_class_histogram();
  test_class_histogram_erosion();
  test_refusals();
  test_optional_keys();
  test_tensors_tiny();
  test_tensors_r50();
  test_init();
  return check_finish("test-modelconfig");
}
