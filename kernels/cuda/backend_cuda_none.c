/* The CUDA backend's entry points in builds without CUDA (configure found no toolkit or was
 * given --without-cuda): creation says so; callers need no #ifdef. Not a CPU fallback: that is
 * t3d_backend_create_for_device (kernels/backend_select.c). */
#include "kernels/backend.h"

#include <stddef.h>

t3d_status t3d_backend_cuda_create(t3d_backend **out, const t3d_backend_cuda_params *params)
{
  (void)params;
  if (out)
    *out = NULL;
  return t3d_error(T3D_ERR_UNSUPPORTED, "t3d was built without CUDA (configure found no CUDA toolkit)");
}

void t3d_backend_cuda_memory(const t3d_backend *be, size_t *current, size_t *peak)
{
  (void)be;
  if (current)
    *current = 0;
  if (peak)
    *peak = 0;
}
