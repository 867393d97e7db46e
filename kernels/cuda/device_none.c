/* device.h for builds configured --without-cuda: every query says "not built with CUDA".
 * Kept so callers (the CLI, the plugin) need no #ifdef. */
#include "kernels/cuda/device.h"

#include <string.h>

t3d_status t3d_cuda_device_count(int *count, const char **why)
{
  *count = 0;
  if (why)
    *why = "t3d was built without CUDA (configure --without-cuda or no toolkit found)";
  return t3d_error(T3D_ERR_UNSUPPORTED, "t3d was built without CUDA");
}

t3d_status t3d_cuda_device_info_get(int index, t3d_cuda_device_info *info)
{
  memset(info, 0, sizeof *info);
  return t3d_error(T3D_ERR_UNSUPPORTED, "t3d was built without CUDA; no device %d", index);
}

int t3d_cuda_runtime_version(void) { return 0; }
int t3d_cudnn_version(void) { return 0; }
