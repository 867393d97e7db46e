/* libFuzzer target for the NIfTI-1 reader: any bytes, plain or gzip, go through
 * t3d_nifti_read_memory (the parser t3d_nifti_read uses), and a volume that loads is walked.
 * Not a correctness test (tests/test-nifti.c is): it looks for crashes, leaks and UB.
 * Build: ./configure --enable-fuzzers CC=clang CXX=clang++; run: tests/fuzz/fuzz-nifti DIR
 * (tests/fuzz/fuzz-corpus-nifti --write DIR writes seeds). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dicom/nifti.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  t3d_volume *v = NULL;
  t3d_nifti_info info;
  volatile float sink = 0;

  if (t3d_nifti_read_memory(data, size, "fuzz.nii", &v, &info) != T3D_OK) {
    if (v)
      __builtin_trap(); /* a failed read must not hand out a volume */
    return 0;
  }
  size_t n = t3d_volume_nvoxels(v);
  if (n == 0)
    __builtin_trap(); /* the reader promises a non-empty volume */
  for (int c = 0; c < 3; c++) { /* ... with geometry later stages can compute with */
    if (!(v->spacing[c] > 0) || !isfinite(v->spacing[c]) || !isfinite(v->origin[c]))
      __builtin_trap();
    double len2 = 0;
    for (int r = 0; r < 3; r++)
      len2 += v->dir[r][c] * v->dir[r][c];
    if (!(fabs(len2 - 1) < 1e-6)) /* unit direction columns */
      __builtin_trap();
  }
  sink += v->data[0] + v->data[n - 1]; /* first and last voxel: ASan sees a short buffer */
  double p[3];
  t3d_volume_index_to_lps(v, (double)(v->nx - 1), (double)(v->ny - 1), (double)(v->nz - 1), p);
  sink += (float)p[0];
  t3d_volume_free(v);
  (void)sink;
  return 0;
}
