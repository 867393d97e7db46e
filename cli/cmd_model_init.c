/* `t3d model-init`: writes a fresh model file from a config (built-in name or JSON file), with
 * the default vocabulary, findings and class names and seeded random weights. Not training:
 * the weights are initialisers only (He-normal convolutions, identity BN, BERT N(0,0.02)). */
#include "config.h"

#include <errno.h>
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
  fprintf(to, _("Usage: t3d model-init --config NAME|FILE.json [--seed N] -o FILE\n"
              "       t3d model-init --config NAME|FILE.json --list\n\n"
              "Writes a model file with seeded random weights, or lists the tensors a config needs.\n"
              "  --config NAME   built-in config (t3d-tiny, t3d-r50) or a JSON file {\"model\": {...}}\n"
              "  --seed N        random seed (default 1)\n"
              "  -o, --output F  model file to write (atomically replaced)\n"
              "  --list          print \"name shape...\" for every tensor of the config; write nothing\n"));
}

static t3d_status load_config(t3d_model_config *cfg, const char *arg)
{
  FILE *f;
  char *text = NULL;
  size_t len = 0, cap = 0;
  t3d_status st;
  if (t3d_model_config_builtin(cfg, arg) == T3D_OK)
    return T3D_OK;
  if (!strchr(arg, '/') && !strstr(arg, ".json"))
    return t3d_model_config_builtin(cfg, arg); /* re-raise the NOT_FOUND message */
  f = fopen(arg, "rb");
  if (!f)
    return t3d_error(T3D_ERR_IO, "%s: cannot open config: %s", arg, strerror(errno));
  for (;;) {
    if (len == cap) {
      char *p = realloc(text, cap = cap ? 2 * cap : 4096);
      if (!p) {
        free(text);
        fclose(f);
        return t3d_error(T3D_ERR_NOMEM, "out of memory reading %s", arg);
      }
      text = p;
    }
    size_t got = fread(text + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  fclose(f);
  st = t3d_model_config_parse_text(cfg, text, len);
  free(text);
  if (st != T3D_OK)
    t3d_error_prefix("%s: ", arg);
  return st;
}

/* Default vocabulary padded with [unusedN] up to the config's vocab_size. */
static t3d_status make_vocab(const t3d_model_config *cfg, json_t **out)
{
  size_t n;
  const char *const *v = t3d_default_vocab(&n);
  json_t *a = json_array();
  *out = NULL;
  if ((size_t)cfg->text.vocab_size < n)
    return json_decref(a), t3d_error(T3D_ERR_INVALID_ARG, "model.text.vocab_size %d is smaller than the built-in "
                                                          "vocabulary (%zu tokens)", cfg->text.vocab_size, n);
  for (size_t i = 0; a && i < (size_t)cfg->text.vocab_size; i++) {
    char buf[32];
    if (i >= n)
      snprintf(buf, sizeof buf, "[unused%zu]", i - n);
    if (json_array_append_new(a, json_string(i < n ? v[i] : buf)) != 0) {
      json_decref(a);
      a = NULL;
    }
  }
  if (!a)
    return t3d_error(T3D_ERR_NOMEM, "out of memory building the vocabulary");
  *out = a;
  return T3D_OK;
}

static json_t *make_classes(const t3d_model_config *cfg)
{
  size_t n;
  const char *const *names = t3d_default_classes(&n);
  json_t *a = json_array();
  for (int i = 0; a && i < cfg->segmentation.classes; i++) {
    char buf[32];
    snprintf(buf, sizeof buf, "class%d", i);
    json_array_append_new(a, json_string((size_t)i < n ? names[i] : buf));
  }
  return a;
}

static json_t *make_findings(void)
{
  size_t n;
  const t3d_finding *f = t3d_default_findings(&n);
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", f[i].name, "positive", f[i].positive, "negative",
                                       f[i].negative));
  return a;
}

int t3d_cmd_model_init(int argc, char **argv)
{
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"list", no_argument, NULL, 'l'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL, *output = NULL;
  uint64_t seed = 1;
  t3d_model_config cfg;
  t3d_tensor_spec *specs = NULL;
  size_t n = 0, max_numel = 0;
  t3d_modelfile_writer *w = NULL;
  json_t *cj = NULL, *vocab = NULL, *classes = NULL, *findings = NULL;
  float *buf = NULL;
  t3d_status st;
  int c, rc = 1;
  bool list = false;
  char seedtext[32];

  optind = 1;
  while ((c = getopt_long(argc, argv, "c:s:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      config = optarg;
      break;
    case 's': {
      char *end;
      seed = strtoull(optarg, &end, 10);
      if (!*optarg || *end) {
        fprintf(stderr, _("t3d model-init: --seed needs a non-negative integer, got '%s'\n"), optarg);
        return 2;
      }
      break;
    }
    case 'o':
      output = optarg;
      break;
    case 'l':
      list = true;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (!config || (!output && !list) || optind != argc) {
    usage(stderr);
    return 2;
  }

  if ((st = load_config(&cfg, config)) != T3D_OK)
    return t3d_cli_fail(st, "model-init");
  if (list) {
    if ((st = t3d_model_config_tensors(&cfg, &specs, &n)) != T3D_OK)
      return t3d_cli_fail(st, "model-init");
    for (size_t i = 0; i < n; i++) {
      printf("%s", specs[i].name);
      for (int d = 0; d < specs[i].ndim; d++)
        printf(" %" PRId64, specs[i].shape[d]);
      printf("\n");
    }
    free(specs);
    return 0;
  }
  if ((st = t3d_model_config_tensors(&cfg, &specs, &n)) != T3D_OK || (st = t3d_modelfile_writer_new(&w)) != T3D_OK ||
      (st = t3d_model_config_to_json(&cfg, &cj)) != T3D_OK || (st = make_vocab(&cfg, &vocab)) != T3D_OK)
    goto cleanup;
  classes = make_classes(&cfg);
  findings = make_findings();
  snprintf(seedtext, sizeof seedtext, "%" PRIu64, seed);
  if (!classes || !findings) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory building the metadata");
    goto cleanup;
  }
  if ((st = t3d_modelfile_writer_set_json(w, "t3d.config", cj)) != T3D_OK ||
      (st = t3d_modelfile_writer_set_json(w, "t3d.vocab", vocab)) != T3D_OK ||
      (st = t3d_modelfile_writer_set_json(w, "t3d.findings", findings)) != T3D_OK ||
      (cfg.has_segmentation && (st = t3d_modelfile_writer_set_json(w, "t3d.classes", classes)) != T3D_OK) ||
      (st = t3d_modelfile_writer_set_metadata(w, "t3d.created_by", "t3d model-init " PACKAGE_VERSION)) != T3D_OK ||
      (st = t3d_modelfile_writer_set_metadata(w, "t3d.init_seed", seedtext)) != T3D_OK)
    goto cleanup;

  for (size_t i = 0; i < n; i++) {
    size_t numel = 1;
    for (int d = 0; d < specs[i].ndim; d++)
      numel *= (size_t)specs[i].shape[d];
    if (numel > max_numel)
      max_numel = numel;
  }
  buf = malloc((max_numel ? max_numel : 1) * sizeof *buf);
  if (!buf) {
    st = t3d_error(T3D_ERR_NOMEM, "out of memory for a %zu-element tensor", max_numel);
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++) {
    t3d_tensor t = t3d_tensor_view(T3D_F32, specs[i].ndim, specs[i].shape, buf);
    t3d_tensor_spec_init(&specs[i], &cfg, seed, buf);
    if ((st = t3d_modelfile_writer_add(w, specs[i].name, &t, true)) != T3D_OK)
      goto cleanup;
  }
  if ((st = t3d_modelfile_writer_write(w, output)) != T3D_OK)
    goto cleanup;
  printf(_("wrote %s: %s, %zu tensors, %" PRId64 " values, seed %" PRIu64 "\n"), output, cfg.name, n,
         t3d_model_config_param_count(specs, n, ""), seed);
  rc = 0;

cleanup:
  if (st != T3D_OK)
    rc = t3d_cli_fail(st, "model-init");
  free(buf);
  free(specs);
  json_decref(cj);
  json_decref(vocab);
  json_decref(classes);
  json_decref(findings);
  t3d_modelfile_writer_free(w);
  return rc;
}
