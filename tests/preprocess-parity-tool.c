/* Writes inputs and outputs of t3d_preprocess_resample for the PyTorch parity reference
 * (tests/reference/preprocess_reference.py): raw little-endian f32 files plus a text line of
 * sizes. Not a test by itself; tests/test-preprocess-parity.sh drives both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/model/preprocess.h"
#include "core/base/status.h"
#include "core/base/volume.h"

static int write_f32(const char *dir, const char *name, const float *v, size_t n)
{
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (!f || fwrite(v, sizeof *v, n, f) != n) {
    fprintf(stderr, "preprocess-parity-tool: cannot write %s\n", path);
    if (f)
      fclose(f);
    return 1;
  }
  return fclose(f) != 0;
}

/* usage: preprocess-parity-tool OUTDIR CASE  (CASE 0 or 1) */
int main(int argc, char **argv)
{
  static const struct {
    int64_t n[3];
    double s[3], t[3];
  } cases[2] = {
      /* scale-consistent: n*s/t integer on every axis; mixes down- and up-sampling */
      {{45, 30, 12}, {0.7, 0.5, 2.5}, {1.5, 0.75, 1.0}},  /* -> 21 x 20 x 30 */
      {{64, 48, 20}, {1.0, 1.0, 1.0}, {2.0, 0.5, 0.8}},   /* -> 32 x 96 x 25 */
  };
  t3d_volume *v = NULL, *r = NULL;
  FILE *meta;
  char path[4096];
  int c, rc = 1;

  if (argc != 3 || (c = atoi(argv[2])) < 0 || c > 1) {
    fprintf(stderr, "usage: %s OUTDIR CASE(0|1)\n", argv[0]);
    return 2;
  }
  if (t3d_volume_new(&v, cases[c].n[0], cases[c].n[1], cases[c].n[2]) != T3D_OK)
    goto cleanup;
  for (int a = 0; a < 3; a++)
    v->spacing[a] = cases[c].s[a];
  /* smooth structure plus noise, in a CT-like range */
  {
    uint32_t st = 7u;
    for (int64_t k = 0; k < v->nz; k++)
      for (int64_t j = 0; j < v->ny; j++)
        for (int64_t i = 0; i < v->nx; i++) {
          st = st * 1664525u + 1013904223u;
          v->data[(k * v->ny + j) * v->nx + i] =
              (float)(400.0 * sin(0.3 * i) * cos(0.2 * j) + 300.0 * sin(0.5 * k + 0.1 * i) +
                      200.0 * ((double)(st >> 8) / 16777216.0 - 0.5) - 100.0);
        }
  }
  if (t3d_preprocess_resample(v, cases[c].t, T3D_INTERP_TRILINEAR, &r) != T3D_OK) {
    fprintf(stderr, "preprocess-parity-tool: %s\n", t3d_error_detail());
    goto cleanup;
  }
  snprintf(path, sizeof path, "%s/meta.txt", argv[1]);
  meta = fopen(path, "w");
  if (!meta)
    goto cleanup;
  /* input z y x, output z y x */
  fprintf(meta, "%lld %lld %lld %lld %lld %lld\n", (long long)v->nz, (long long)v->ny, (long long)v->nx,
          (long long)r->nz, (long long)r->ny, (long long)r->nx);
  fclose(meta);
  if (write_f32(argv[1], "input.f32", v->data, t3d_volume_nvoxels(v)) ||
      write_f32(argv[1], "output.f32", r->data, t3d_volume_nvoxels(r)))
    goto cleanup;
  rc = 0;

cleanup:
  t3d_volume_free(v);
  t3d_volume_free(r);
  return rc;
}
