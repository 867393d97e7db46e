/* Choosing a backend from a device string ("auto", "cpu", "cuda", "cuda:N") with the one CPU
 * fallback rule every command shares, and the precision names. Not the backends themselves
 * (kernels/cpu, kernels/cuda) and no printing: the caller shows the fallback note. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cuda/device.h"

t3d_backend_cuda_params t3d_backend_cuda_default_params(void)
{
  t3d_backend_cuda_params p = {.device = 0, .precision = T3D_PRECISION_FP32, .workspace_limit = 0, .min_free_bytes = 0};
  return p;
}

const char *t3d_cuda_forced_failure(void)
{
  static const char *const modes[] = {"nodriver", "nodevice", "nomem", "launch", "kernel"};
  const char *e = getenv("T3D_CUDA_FORCE_FAIL");
  for (unsigned i = 0; e && i < sizeof modes / sizeof *modes; i++)
    if (strcmp(e, modes[i]) == 0)
      return modes[i];
  return NULL;
}

/* T3D_CUDA_FORCE_FAIL=kernel: a stand-in for a GPU whose kernels fail after the backend was made
 * (a launch failure in the middle of a forward): the CPU backend's table under the name "cuda"
 * with a convolution that fails as a failed launch would. Lets machines without a GPU test the
 * callers' recovery (repeat on the CPU); never chosen without the variable. */
static t3d_backend_ops kernel_fail_ops;

static t3d_status kernel_fail_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                     const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  (void)be, (void)y, (void)x, (void)w, (void)bias, (void)residual, (void)p;
  return t3d_error(T3D_ERR_BACKEND, "CUDA conv3d: unspecified launch failure (forced by T3D_CUDA_FORCE_FAIL=kernel)");
}

static t3d_status kernel_fail_backend(t3d_backend **out, const t3d_backend_params *cpu)
{
  T3D_TRY(t3d_backend_cpu_create(out, cpu));
  kernel_fail_ops = *(*out)->ops;
  kernel_fail_ops.name = "cuda";
  kernel_fail_ops.conv3d = kernel_fail_conv3d;
  (*out)->ops = &kernel_fail_ops;
  return T3D_OK;
}

/* "auto" / NULL -> -1, "cpu" -> -2, "cuda" -> 0, "cuda:N" -> N; T3D_ERR_INVALID_ARG otherwise. */
static t3d_status parse_device(const char *device, int *index)
{
  char *end = NULL;
  long n;
  if (!device || strcmp(device, "auto") == 0) {
    *index = -1;
    return T3D_OK;
  }
  if (strcmp(device, "cpu") == 0) {
    *index = -2;
    return T3D_OK;
  }
  if (strcmp(device, "cuda") == 0 || strcmp(device, "gpu") == 0) { /* "gpu": the viewer plugin's word */
    *index = 0;
    return T3D_OK;
  }
  if (strncmp(device, "cuda:", 5) == 0 && device[5] >= '0' && device[5] <= '9') {
    n = strtol(device + 5, &end, 10);
    if (*end == '\0' && n >= 0 && n < 4096) {
      *index = (int)n;
      return T3D_OK;
    }
  }
  return t3d_error(T3D_ERR_INVALID_ARG, "unknown device '%s' (want auto, cpu, cuda, cuda:N or gpu)", device);
}

t3d_status t3d_backend_create_for_device(t3d_backend **out, const char *device, const t3d_backend_params *cpu,
                                         const t3d_backend_cuda_params *cuda, char *note, size_t note_size)
{
  t3d_backend_cuda_params cp = cuda ? *cuda : t3d_backend_cuda_default_params();
  const char *why = "", *forced = t3d_cuda_forced_failure();
  int index = -1, count = 0;
  bool explicit_gpu;
  t3d_status s;

  if (note && note_size)
    note[0] = '\0';
  if (!out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_create_for_device: out is NULL");
  *out = NULL;
  T3D_TRY(parse_device(device, &index));
  if (index == -2)
    return t3d_backend_cpu_create(out, cpu);
  explicit_gpu = index >= 0;
  if (index < 0)
    index = 0;

  s = t3d_cuda_device_count(&count, &why);
  if (s == T3D_ERR_UNSUPPORTED) {
    t3d_error_clear();
    if (explicit_gpu && note && note_size)
      snprintf(note, note_size, "%s was asked for but t3d was built without CUDA: running on the CPU", device);
    return t3d_backend_cpu_create(out, cpu);
  }
  if (forced && strcmp(forced, "kernel") == 0)
    return kernel_fail_backend(out, cpu);
  /* nomem / launch are failures of a present GPU: let the create below report them */
  if (forced && (strcmp(forced, "nomem") == 0 || strcmp(forced, "launch") == 0) && count == 0)
    count = index + 1;
  if (s != T3D_OK || count == 0) {
    t3d_error_clear();
    if (explicit_gpu && note && note_size)
      snprintf(note, note_size, "%s was asked for but no usable CUDA GPU was found (%s): running on the CPU", device,
               why && *why ? why : "no device");
    return t3d_backend_cpu_create(out, cpu);
  }
  if (index >= count) {
    if (note && note_size)
      snprintf(note, note_size, "%s was asked for but this machine has %d CUDA device%s: running on the CPU", device,
               count, count == 1 ? "" : "s");
    return t3d_backend_cpu_create(out, cpu);
  }
  cp.device = index;
  s = t3d_backend_cuda_create(out, &cp);
  if (s == T3D_OK)
    return T3D_OK;
  if (note && note_size)
    snprintf(note, note_size, "CUDA device %d cannot be used (%s: %s): running on the CPU", index, t3d_strerror(s),
             t3d_error_detail());
  t3d_error_clear();
  return t3d_backend_cpu_create(out, cpu);
}
