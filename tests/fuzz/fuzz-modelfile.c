/* libFuzzer target for the model file parser: any bytes go through t3d_modelfile_open_memory,
 * and whatever opens is walked completely (tensors, metadata, config, model check).
 * Not a correctness test: it looks for crashes, leaks and undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/model/modelfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  t3d_modelfile *mf = NULL;
  volatile unsigned sink = 0;
  size_t n;

  if (t3d_modelfile_open_memory(&mf, data, size) != T3D_OK)
    return 0;
  for (size_t i = 0; i < t3d_modelfile_tensor_count(mf); i++) {
    const char *name = NULL;
    const t3d_tensor *t = t3d_modelfile_tensor_at(mf, i, &name);
    size_t nbytes = t3d_tensor_nbytes(t);
    /* touch the first and last byte: a view reaching outside the input trips ASan */
    if (nbytes)
      sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[nbytes - 1];
    if (t3d_modelfile_get(mf, name) != t)
      __builtin_trap();
    sink += (unsigned)t3d_modelfile_require(mf, name, t->dtype, t->ndim, t->shape, NULL);
  }
  for (size_t i = 0; i < t3d_modelfile_metadata_count(mf); i++) {
    const char *value = NULL, *key = t3d_modelfile_metadata_at(mf, i, &value);
    sink += (unsigned)strlen(key) + (unsigned)strlen(value);
  }
  if (t3d_modelfile_config(mf)) {
    json_t *j = NULL;
    if (t3d_model_config_to_json(t3d_modelfile_config(mf), &j) == T3D_OK) {
      t3d_model_config again;
      if (t3d_model_config_parse(&again, j) != T3D_OK) /* what parsed once must round-trip */
        __builtin_trap();
      json_decref(j);
    }
  }
  t3d_modelfile_vocab(mf, &n);
  t3d_modelfile_classes(mf, &n);
  t3d_modelfile_findings(mf, &n);
  sink += (unsigned)t3d_modelfile_check_model(mf);
  t3d_modelfile_close(mf);
  (void)sink;
  return 0;
}
