/* --device for every command that computes: the backend for a device string (with the CPU
 * fallback of t3d_backend_create_for_device and its one message on stderr), and a model loaded
 * onto it that falls back to the CPU when the GPU cannot hold it. Not option parsing (each
 * command keeps its getopt table) and not the backends. */
#include "config.h"

#include <libintl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/model/model.h"

#define _(s) gettext(s)

static const char *device_or_default(const char *device)
{
  const char *env = getenv("T3D_DEVICE");
  if (device)
    return device;
  return env && *env ? env : "auto";
}

t3d_status t3d_cli_backend(const char *device, int threads, t3d_precision precision, t3d_backend **out)
{
  t3d_backend_params bp = t3d_backend_default_params();
  t3d_backend_cuda_params cp = t3d_backend_cuda_default_params();
  char note[512];
  bp.threads = threads;
  bp.precision = precision;
  cp.precision = precision;
  t3d_status s = t3d_backend_create_for_device(out, device_or_default(device), &bp, &cp, note, sizeof note);
  if (s == T3D_OK && note[0])
    fprintf(stderr, _("t3d: note: %s\n"), note);
  return s;
}

/* The model at path on a new CPU backend (the fallback of both functions below). */
static t3d_status load_on_cpu(const char *path, int threads, t3d_precision precision, t3d_backend **be,
                              struct t3d_model **model)
{
  t3d_backend_params bp = t3d_backend_default_params();
  t3d_status s;
  bp.threads = threads;
  bp.precision = precision;
  T3D_TRY(t3d_backend_cpu_create(be, &bp));
  if ((s = t3d_model_load(path, *be, model)) != T3D_OK) {
    t3d_backend_free(*be);
    *be = NULL;
  }
  return s;
}

t3d_status t3d_cli_model_open(const char *path, const char *device, int threads, t3d_precision precision,
                              t3d_backend **be, struct t3d_model **model)
{
  t3d_status s;
  *be = NULL;
  *model = NULL;
  T3D_TRY(t3d_cli_backend(device, threads, precision, be));
  s = t3d_model_load(path, *be, model);
  if (s == T3D_OK || s == T3D_ERR_CANCELLED || strcmp((*be)->ops->name, "cuda") != 0 ||
      (s != T3D_ERR_NOMEM && s != T3D_ERR_BACKEND))
    return s;
  /* The GPU could not hold or run the model: the same model on the CPU, said once. */
  fprintf(stderr, _("t3d: note: the model does not load on the GPU (%s: %s): running on the CPU\n"), t3d_strerror(s),
          t3d_error_detail());
  t3d_error_clear();
  t3d_backend_free(*be);
  *be = NULL;
  return load_on_cpu(path, threads, precision, be, model);
}

bool t3d_cli_gpu_failed(t3d_status s, const char *path, int threads, t3d_precision precision, t3d_backend **be,
                        struct t3d_model **model)
{
  t3d_backend *cpu = NULL;
  struct t3d_model *m = NULL;
  if (s != T3D_ERR_BACKEND || !*be || strcmp((*be)->ops->name, "cpu") == 0)
    return false;
  fprintf(stderr, _("t3d: note: the GPU failed (%s): running on the CPU\n"), t3d_error_detail());
  t3d_error_clear();
  if (load_on_cpu(path, threads, precision, &cpu, &m) != T3D_OK)
    return false;
  t3d_model_free(*model);
  t3d_backend_free(*be);
  *model = m;
  *be = cpu;
  return true;
}
