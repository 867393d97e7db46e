/* `t3d model-info`: describes a model file (format version, config, metadata, tensor table,
 * parameter counts) as text or JSON, and says whether it is a complete model for its config.
 * Read-only: it never changes the file. */
#include "config.h"

#include <getopt.h>
#include <libintl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/model/modelfile.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d model-info FILE [--json] [--check]\n\n"
                "Describes a t3d model file.\n"
                "  --json    machine-readable output\n"
                "  --check   exit 1 when the file is not a complete model for its config\n"));
}

static bool is_buffer(const char *name)
{
  size_t n = strlen(name);
  return (n > 13 && strcmp(name + n - 13, ".running_mean") == 0) ||
         (n > 12 && strcmp(name + n - 12, ".running_var") == 0);
}

typedef struct {
  int64_t params, buffers, bytes;
  int64_t by_part[5]; /* vision, text, projections, seg, other */
} totals;

static int part_of(const char *name)
{
  if (strncmp(name, "vision.", 7) == 0)
    return 0;
  if (strncmp(name, "text.", 5) == 0)
    return 1;
  if (strncmp(name, "vision_proj.", 12) == 0 || strncmp(name, "text_proj.", 10) == 0)
    return 2;
  if (strncmp(name, "seg.", 4) == 0)
    return 3;
  return 4;
}

static totals count(const t3d_modelfile *mf)
{
  totals t = {0};
  for (size_t i = 0; i < t3d_modelfile_tensor_count(mf); i++) {
    const char *name;
    const t3d_tensor *x = t3d_modelfile_tensor_at(mf, i, &name);
    int64_t n = t3d_tensor_numel(x);
    t.bytes += (int64_t)t3d_tensor_nbytes(x);
    if (is_buffer(name)) {
      t.buffers += n;
    } else {
      t.params += n;
      t.by_part[part_of(name)] += n;
    }
  }
  return t;
}

static void print_ints(const int *v, int n)
{
  for (int i = 0; i < n; i++)
    printf("%s%d", i ? "," : "[", v[i]);
  printf("]");
}

static void print_text(const t3d_modelfile *mf, t3d_status check, const char *check_msg)
{
  const t3d_model_config *c = t3d_modelfile_config(mf);
  size_t nv, nf, nc;
  const char *const *classes;
  totals t = count(mf);
  char desc[128];

  t3d_modelfile_vocab(mf, &nv);
  t3d_modelfile_findings(mf, &nf);
  classes = t3d_modelfile_classes(mf, &nc);
  printf(_("file:            %s (%zu bytes, header %zu bytes)\n"), t3d_modelfile_path(mf), t3d_modelfile_size(mf),
         t3d_modelfile_header_size(mf));
  printf(_("format version:  %d\n"), t3d_modelfile_format_version(mf));
  if (c) {
    printf(_("model:           %s\n"), c->name);
    printf("  vision:        resnet %s layers ", c->vision.block == T3D_BLOCK_BOTTLENECK ? "bottleneck" : "basic");
    print_ints(c->vision.layers, T3D_RESNET_STAGES);
    printf(" widths ");
    print_ints(c->vision.widths, T3D_RESNET_STAGES);
    printf(", in %d, conv1 %d^3 stride %d%s, features %d\n", c->vision.in_channels, c->vision.conv1_kernel,
           c->vision.conv1_stride, c->vision.maxpool ? " + max-pool" : "", t3d_model_config_vision_features(c));
    printf("  text:          bert vocab %d, hidden %d, layers %d, heads %d, intermediate %d, max positions %d\n",
           c->text.vocab_size, c->text.hidden, c->text.layers, c->text.heads, c->text.intermediate,
           c->text.max_positions);
    printf("  projection:    dim %d, hidden %d; logit scale init %.4f\n", c->projection.dim, c->projection.hidden,
           c->logit_scale_init);
    if (c->projection.class_hist_bins)
      printf("  vision input:  %d pooled features + %d classes x %d HU bins [%g, %g] of the segmentation\n",
             t3d_model_config_vision_features(c), c->segmentation.classes, c->projection.class_hist_bins,
             c->projection.class_hist_hu[0], c->projection.class_hist_hu[c->projection.class_hist_bins]);
    if (c->projection.class_hist_erosion)
      printf("                 + the same of the classes eroded by a %d-voxel cube (their interiors)\n",
             2 * c->projection.class_hist_erosion + 1);
    if (c->has_segmentation) {
      printf("  segmentation:  %d classes, decoder widths ", c->segmentation.classes);
      print_ints(c->segmentation.decoder_widths, T3D_SEG_BLOCKS);
      printf("\n");
    }
    printf("  preprocess:    spacing %g,%g,%g mm (x,y,z), shape %d,%d,%d (z,y,x), HU [%g, %g], pad %g\n",
           c->preprocess.spacing_mm[0], c->preprocess.spacing_mm[1], c->preprocess.spacing_mm[2],
           c->preprocess.shape[0], c->preprocess.shape[1], c->preprocess.shape[2], c->preprocess.hu_min,
           c->preprocess.hu_max, c->preprocess.pad_value);
  } else {
    printf("%s", _("model:           (no t3d.config)\n"));
  }
  printf(_("metadata:        %zu keys; vocab %zu tokens; %zu findings; %zu classes"), t3d_modelfile_metadata_count(mf),
         nv, nf, nc);
  for (size_t i = 0; i < nc; i++)
    printf("%s%s", i ? ", " : " (", classes[i]);
  printf("%s\n", nc ? ")" : "");
  printf(_("model check:     %s\n"), check == T3D_OK ? _("complete") : check_msg);
  printf("\n%-60s %-5s %-24s %12s\n", _("tensor"), _("dtype"), _("shape"), _("bytes"));
  for (size_t i = 0; i < t3d_modelfile_tensor_count(mf); i++) {
    const char *name;
    const t3d_tensor *x = t3d_modelfile_tensor_at(mf, i, &name);
    char *shape = desc;
    t3d_tensor_describe(x, desc, sizeof desc);
    shape = strchr(desc, '[') ? strchr(desc, '[') : desc;
    printf("%-60s %-5s %-24s %12zu\n", name, t3d_dtype_name(x->dtype), shape, t3d_tensor_nbytes(x));
  }
  printf(_("\n%zu tensors, %" PRId64 " parameters (vision %" PRId64 ", text %" PRId64 ", projections %" PRId64
           ", segmentation %" PRId64 ", other %" PRId64 ") + %" PRId64 " BN running statistics, %" PRId64
           " bytes of data\n"),
         t3d_modelfile_tensor_count(mf), t.params, t.by_part[0], t.by_part[1], t.by_part[2], t.by_part[3],
         t.by_part[4], t.buffers, t.bytes);
}

static int print_json(const t3d_modelfile *mf, t3d_status check, const char *check_msg)
{
  json_t *root = json_object(), *tensors = json_array(), *meta = json_object(), *classes = json_array(),
         *findings = json_array();
  const json_t *cfg = t3d_modelfile_config_json(mf);
  size_t nv, nf, nc;
  const char *const *cl = t3d_modelfile_classes(mf, &nc);
  const t3d_finding *f = t3d_modelfile_findings(mf, &nf);
  totals t = count(mf);
  char *text;

  t3d_modelfile_vocab(mf, &nv);
  for (size_t i = 0; i < t3d_modelfile_metadata_count(mf); i++) {
    const char *key = t3d_modelfile_metadata_at(mf, i, NULL);
    /* the big t3d.* values are summarised below, not repeated */
    json_object_set_new(meta, key, json_integer((json_int_t)strlen(t3d_modelfile_metadata(mf, key))));
  }
  for (size_t i = 0; i < nc; i++)
    json_array_append_new(classes, json_string(cl[i]));
  for (size_t i = 0; i < nf; i++)
    json_array_append_new(findings, json_string(f[i].name));
  for (size_t i = 0; i < t3d_modelfile_tensor_count(mf); i++) {
    const char *name;
    const t3d_tensor *x = t3d_modelfile_tensor_at(mf, i, &name);
    json_t *shape = json_array();
    for (int d = 0; d < x->ndim; d++)
      json_array_append_new(shape, json_integer(x->shape[d]));
    json_array_append_new(tensors, json_pack("{s:s, s:s, s:o, s:I}", "name", name, "dtype", t3d_dtype_name(x->dtype),
                                             "shape", shape, "bytes", (json_int_t)t3d_tensor_nbytes(x)));
  }
  json_object_set_new(root, "file", json_string(t3d_modelfile_path(mf)));
  json_object_set_new(root, "size", json_integer((json_int_t)t3d_modelfile_size(mf)));
  json_object_set_new(root, "format_version", json_integer(t3d_modelfile_format_version(mf)));
  json_object_set_new(root, "config", cfg ? json_deep_copy(cfg) : json_null());
  json_object_set_new(root, "metadata_value_bytes", meta);
  json_object_set_new(root, "vocab_size", json_integer((json_int_t)nv));
  json_object_set_new(root, "findings", findings);
  json_object_set_new(root, "classes", classes);
  json_object_set_new(root, "complete", json_boolean(check == T3D_OK));
  json_object_set_new(root, "check", json_string(check == T3D_OK ? "complete" : check_msg));
  json_object_set_new(root, "parameters", json_integer(t.params));
  json_object_set_new(root, "buffers", json_integer(t.buffers));
  json_object_set_new(root, "data_bytes", json_integer(t.bytes));
  json_object_set_new(root, "tensors", tensors);
  text = json_dumps(root, JSON_INDENT(2));
  json_decref(root);
  if (!text)
    return t3d_cli_fail(t3d_error(T3D_ERR_NOMEM, "out of memory formatting JSON"), "model-info");
  puts(text);
  free(text);
  return 0;
}

int t3d_cmd_model_info(int argc, char **argv)
{
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"check", no_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool json = false, strict = false;
  t3d_modelfile *mf = NULL;
  t3d_status st, check;
  char check_msg[1024];
  int c, rc;

  optind = 1;
  while ((c = getopt_long(argc, argv, "jch", opts, NULL)) != -1) {
    switch (c) {
    case 'j':
      json = true;
      break;
    case 'c':
      strict = true;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  if ((st = t3d_modelfile_open(&mf, argv[optind])) != T3D_OK)
    return t3d_cli_fail(st, "model-info");
  check = t3d_modelfile_check_model(mf);
  snprintf(check_msg, sizeof check_msg, "%s", check == T3D_OK ? "" : t3d_error_detail());
  rc = json ? print_json(mf, check, check_msg) : (print_text(mf, check, check_msg), 0);
  if (rc == 0 && strict && check != T3D_OK) {
    fprintf(stderr, _("t3d: model-info: %s: %s\n"), _(t3d_strerror(check)), check_msg);
    rc = 1;
  }
  t3d_modelfile_close(mf);
  return rc;
}
