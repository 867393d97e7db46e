/* See text-testmodel.h: a text-only model file with seeded random weights, for tests and benches. */
#include "tests/text-testmodel.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/modelfile.h"

t3d_status t3d_test_write_text_model(const t3d_model_config *cfg, const char *path, const char *skip,
                                     int vocab_delta)
{
  t3d_tensor_spec *specs = NULL;
  size_t nspec = 0, nvocab = 0;
  t3d_modelfile_writer *w = NULL;
  json_t *cj = NULL, *vj = NULL;
  float **bufs = NULL;
  t3d_status s;

  if ((s = t3d_model_config_tensors(cfg, &specs, &nspec)) != T3D_OK)
    return s;
  if (!(bufs = calloc(nspec, sizeof *bufs))) {
    s = t3d_error(T3D_ERR_NOMEM, "out of memory");
    goto cleanup;
  }
  if ((s = t3d_modelfile_writer_new(&w)) != T3D_OK)
    goto cleanup;
  for (size_t i = 0; i < nspec; i++) {
    const t3d_tensor_spec *sp = &specs[i];
    if (strncmp(sp->name, "text.", 5) != 0 && strncmp(sp->name, "text_proj.", 10) != 0)
      continue;
    if (skip && strcmp(sp->name, skip) == 0)
      continue;
    t3d_tensor t = t3d_tensor_view(T3D_F32, sp->ndim, sp->shape, NULL);
    if (!(bufs[i] = malloc(t3d_tensor_nbytes(&t)))) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory for %s", sp->name);
      goto cleanup;
    }
    t3d_tensor_spec_init(sp, cfg, 1, bufs[i]);
    t.data = bufs[i];
    if ((s = t3d_modelfile_writer_add(w, sp->name, &t, false)) != T3D_OK)
      goto cleanup;
  }
  if ((s = t3d_model_config_to_json(cfg, &cj)) != T3D_OK || (s = t3d_modelfile_writer_set_json(w, "t3d.config", cj)) != T3D_OK)
    goto cleanup;
  if (vocab_delta != INT32_MIN) {
    const char *const *base = t3d_default_vocab(&nvocab);
    const int n = cfg->text.vocab_size + vocab_delta;
    vj = json_array();
    for (int i = 0; vj && i < n; i++) {
      char tok[32];
      snprintf(tok, sizeof tok, "[unused%d]", i);
      json_array_append_new(vj, json_string((size_t)i < nvocab ? base[i] : tok));
    }
    if (!vj) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory");
      goto cleanup;
    }
    if ((s = t3d_modelfile_writer_set_json(w, "t3d.vocab", vj)) != T3D_OK)
      goto cleanup;
  }
  s = t3d_modelfile_writer_write(w, path);
cleanup:
  t3d_modelfile_writer_free(w);
  for (size_t i = 0; bufs && i < nspec; i++)
    free(bufs[i]);
  free(bufs);
  free(specs);
  json_decref(cj);
  json_decref(vj);
  return s;
}
