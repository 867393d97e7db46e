/* CUDA device discovery through the CUDA runtime and cuDNN version queries.
 * Compiled by nvcc; exposes only the C API of device.h (no CUDA types leak out). */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <string.h>

extern "C" {
#include "kernels/cuda/device.h"
}

extern "C" t3d_status t3d_cuda_device_count(int *count, const char **why)
{
  int n = 0;
  cudaError_t err;
  const char *forced = t3d_cuda_forced_failure();
  *count = 0;
  if (why)
    *why = "";
  if (forced && strcmp(forced, "nodriver") == 0) {
    if (why)
      *why = "CUDA driver not found (forced by T3D_CUDA_FORCE_FAIL=nodriver)";
    return T3D_OK;
  }
  if (forced && strcmp(forced, "nodevice") == 0) {
    if (why)
      *why = "no CUDA-capable device is detected (forced by T3D_CUDA_FORCE_FAIL=nodevice)";
    return T3D_OK;
  }
  err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    /* No driver or no device is a normal answer on a CPU-only machine, not an error. */
    if (why)
      *why = cudaGetErrorString(err);
    cudaGetLastError();
    return T3D_OK;
  }
  *count = n;
  return T3D_OK;
}

extern "C" t3d_status t3d_cuda_device_info_get(int index, t3d_cuda_device_info *info)
{
  cudaDeviceProp prop;
  cudaError_t err;
  memset(info, 0, sizeof *info);
  err = cudaGetDeviceProperties(&prop, index);
  if (err != cudaSuccess)
    return t3d_error(T3D_ERR_BACKEND, "CUDA device %d: %s", index, cudaGetErrorString(err));
  strncpy(info->name, prop.name, sizeof info->name - 1);
  info->compute_major = prop.major;
  info->compute_minor = prop.minor;
  info->total_memory = prop.totalGlobalMem;
  info->multiprocessors = prop.multiProcessorCount;
  if (cudaSetDevice(index) == cudaSuccess) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      info->free_memory = free_b;
  }
  cudaGetLastError();
  return T3D_OK;
}

extern "C" int t3d_cuda_runtime_version(void)
{
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess)
    return 0;
  return v;
}

extern "C" int t3d_cudnn_version(void) { return (int)cudnnGetVersion(); }
