/* GPU discovery for choosing a backend: how many CUDA devices this machine has, what they are,
 * and which CUDA runtime / cuDNN versions t3d was built against. Not the CUDA backend's op table
 * (that is kernels/cuda/backend_cuda.*); this part works, and answers "none", without a GPU. */
#ifndef T3D_CUDA_DEVICE_H
#define T3D_CUDA_DEVICE_H

#include <stddef.h>

#include "core/base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char name[256];
  int compute_major, compute_minor;
  size_t total_memory; /* bytes */
  size_t free_memory;  /* bytes, at query time */
  int multiprocessors;
} t3d_cuda_device_info;

/* Number of usable CUDA devices; 0 (and T3D_OK) when the build has CUDA but the machine has no
 * GPU or no driver, with the runtime's reason in *why (static string) when why is non-NULL.
 * Returns T3D_ERR_UNSUPPORTED when t3d was built without CUDA. */
t3d_status t3d_cuda_device_count(int *count, const char **why);
t3d_status t3d_cuda_device_info_get(int index, t3d_cuda_device_info *info);
/* Versions as the libraries report them (e.g. 13000, 90100); 0 when unknown. */
int t3d_cuda_runtime_version(void);
int t3d_cudnn_version(void);

/* The failure T3D_CUDA_FORCE_FAIL asks to simulate: "nodriver", "nodevice" (the device count
 * answers 0 with that reason), "nomem" or "launch" (t3d_backend_cuda_create fails with that
 * reason), "kernel" (t3d_backend_create_for_device gives a backend named "cuda" whose conv3d
 * fails like a failed launch: the callers' recovery); NULL when unset, empty or unknown. For
 * tests of the CPU fallback without a GPU. */
const char *t3d_cuda_forced_failure(void);

#ifdef __cplusplus
}
#endif
#endif
