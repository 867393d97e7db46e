/* Random f32 tensors for the kernel tests (test-conv, test-bf16): a xorshift generator whose
 * state `rng` a test may seed, and owned tensors filled from it. Test-only: exits when memory
 * runs out. */
#ifndef T3D_TESTS_RANDOM_TENSOR_H
#define T3D_TESTS_RANDOM_TENSOR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/base/tensor.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform in [-1, 1) */
{
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 40) * (1.0 / 8388608.0) - 1.0);
}

/* New owned f32 tensor (t3d_tensor_free), uniform in [-1, 1) when random, else zeros. */
static t3d_tensor *tnew(int ndim, const int64_t *shape, bool random)
{
  t3d_tensor *t = NULL;
  if (t3d_tensor_new(&t, T3D_F32, ndim, shape) != T3D_OK) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  if (random) {
    float *d = t->data;
    for (int64_t i = 0; i < t3d_tensor_numel(t); i++) d[i] = frand();
  }
  return t;
}

#endif
