/* t3d_volume allocation and geometry helpers. Loading (dicom) and resampling (preprocess)
 * live in their own modules. */
#include "core/base/volume.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Asks for transparent huge pages over the 2 MiB-aligned interior of a large block not yet
 * touched: filling it then takes one page fault per 2 MiB instead of per 4 KiB. Advice only. */
static void advise_huge_pages(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + n) & ~(huge - 1);
  if (n >= 8 * huge && b > a)
    (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
  (void)p, (void)n;
#endif
}

static t3d_status volume_alloc(t3d_volume **out, int64_t nx, int64_t ny, int64_t nz, int zero)
{
  t3d_volume *v = NULL;
  int64_t shape[3] = {nz, ny, nx};
  size_t nbytes = 0;

  *out = NULL;
  if (nx < 1 || ny < 1 || nz < 1 || !t3d_shape_nbytes(T3D_F32, 3, shape, &nbytes))
    return t3d_error(T3D_ERR_INVALID_ARG, "volume size %lldx%lldx%lld is empty or too large", (long long)nx,
                     (long long)ny, (long long)nz);
  v = calloc(1, sizeof *v);
  if (!v)
    return t3d_error(T3D_ERR_NOMEM, "out of memory allocating a volume header");
  v->data = t3d_aligned_alloc(nbytes);
  if (!v->data) {
    free(v);
    return t3d_error(T3D_ERR_NOMEM, "out of memory allocating a %lldx%lldx%lld volume (%zu MiB)", (long long)nx,
                     (long long)ny, (long long)nz, nbytes >> 20);
  }
  if (zero)
    memset(v->data, 0, nbytes);
  else
    advise_huge_pages(v->data, nbytes);
  v->nx = nx;
  v->ny = ny;
  v->nz = nz;
  for (int a = 0; a < 3; a++) {
    v->spacing[a] = 1.0;
    v->dir[a][a] = 1.0;
  }
  *out = v;
  return T3D_OK;
}

t3d_status t3d_volume_new(t3d_volume **out, int64_t nx, int64_t ny, int64_t nz)
{
  return volume_alloc(out, nx, ny, nz, 1);
}

t3d_status t3d_volume_new_uninit(t3d_volume **out, int64_t nx, int64_t ny, int64_t nz)
{
  return volume_alloc(out, nx, ny, nz, 0);
}

void t3d_volume_free(t3d_volume *v)
{
  if (!v)
    return;
  t3d_aligned_free(v->data);
  free(v);
}

size_t t3d_volume_nvoxels(const t3d_volume *v) { return (size_t)(v->nx * v->ny * v->nz); }

t3d_tensor t3d_volume_tensor(const t3d_volume *v)
{
  int64_t shape[5] = {1, 1, v->nz, v->ny, v->nx};
  return t3d_tensor_view(T3D_F32, 5, shape, v->data);
}

void t3d_volume_index_to_lps(const t3d_volume *v, double i, double j, double k, double lps[3])
{
  double idx[3] = {i, j, k};
  for (int r = 0; r < 3; r++) {
    lps[r] = v->origin[r];
    for (int c = 0; c < 3; c++)
      lps[r] += v->dir[r][c] * v->spacing[c] * idx[c];
  }
}

void t3d_volume_affine(const t3d_volume *v, double affine[4][4])
{
  memset(affine, 0, 16 * sizeof(double));
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++)
      affine[r][c] = v->dir[r][c] * v->spacing[c];
    affine[r][3] = v->origin[r];
  }
  affine[3][3] = 1.0;
}
