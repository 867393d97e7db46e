/* Helpers shared by the index commands (`t3d index`, `search`, `similar`, `bench-search`):
 * where the index is, which model, and the model with its file hash loaded on a CPU backend.
 * Not a library API: core/index/index.h is. */
#ifndef T3D_CLI_INDEX_CLI_H
#define T3D_CLI_INDEX_CLI_H

#include "cli/commands.h" /* t3d_cli_default_model */
#include "core/base/status.h"
#include "core/index/index.h"
#include "core/model/model.h"
#include "kernels/backend.h"

/* --index PATH, else the XDG default; opens it (read_only for the search commands). */
t3d_status t3d_cli_open_index(const char *path, bool read_only, t3d_index **out);

typedef struct {
  t3d_backend *be;
  t3d_model *model;
  char hash[17];  /* content hash of the model file: only embeddings of the same hash compare */
  const char *path;
} t3d_cli_model;

/* device: as --device (cli/commands.h t3d_cli_backend); precision: --precision (T3D_PRECISION_AUTO
 * when the command has no say) */
t3d_status t3d_cli_model_load(const char *path, const char *device, int threads, t3d_precision precision,
                              t3d_cli_model *out);
void t3d_cli_model_free(t3d_cli_model *m);

#endif
