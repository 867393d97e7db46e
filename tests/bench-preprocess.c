/* Times t3d_preprocess on a CT-sized volume: 512x512x300 at 0.7x0.7x1.0 mm to the default
 * 1.5 mm / 160x224x224, plus the label, map and class-score inverses (the scores: 9 classes in
 * slabs along x, 8 boundaries through the volume). Not run by make check; threads come
 * from OMP_NUM_THREADS. usage: tests/bench-preprocess [repeats] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/model/preprocess.h"
#include "core/base/status.h"
#include "core/base/tensor.h"
#include "core/base/volume.h"

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
  int reps = argc > 1 ? atoi(argv[1]) : 3;
  t3d_volume *v = NULL;
  t3d_preprocess_transform tr;
  t3d_preprocess_params p = t3d_preprocess_default_params();
  double best = 1e30, best_lab = 1e30, best_map = 1e30, best_sc = 1e30;
  int64_t lshape[3];
  t3d_tensor *lab = NULL, *map = NULL, *sc = NULL;

  if (t3d_volume_new(&v, 512, 512, 300) != T3D_OK)
    return 1;
  v->spacing[0] = v->spacing[1] = 0.7;
  v->spacing[2] = 1.0;
  for (size_t i = 0; i < t3d_volume_nvoxels(v); i++)
    v->data[i] = (float)((int)(i * 2654435761u % 3000u) - 1024);
  for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
    t3d_tensor *out = NULL, *back = NULL;
    double t0 = now(), t1, t2, t3;
    if (t3d_preprocess(v, &p, &out, &tr) != T3D_OK) {
      fprintf(stderr, "bench-preprocess: %s\n", t3d_error_detail());
      return 1;
    }
    t1 = now();
    if (!lab) {
      for (int a = 0; a < 3; a++)
        lshape[a] = tr.model_shape[a];
      if (t3d_tensor_new(&lab, T3D_U8, 3, lshape) != T3D_OK || t3d_tensor_new(&map, T3D_F32, 3, lshape) != T3D_OK ||
          t3d_tensor_new(&sc, T3D_F32, 4, (int64_t[]){9, lshape[0], lshape[1], lshape[2]}) != T3D_OK)
        return 1;
      for (int64_t c = 0, n = lshape[0] * lshape[1] * lshape[2]; c < 9; c++)
        for (int64_t q = 0; q < n; q++)
          ((float *)sc->data)[c * n + q] = (q % lshape[2]) * 9 / lshape[2] == c ? 0.9f : 0.0125f;
    }
    if (t3d_preprocess_labels_to_series(&tr, lab, &back) != T3D_OK)
      return 1;
    t2 = now();
    t3d_tensor_free(back);
    back = NULL;
    t3 = now();
    if (t3d_preprocess_map_to_series(&tr, map, &back) != T3D_OK)
      return 1;
    best_map = (now() - t3) < best_map ? now() - t3 : best_map;
    t3d_tensor_free(back);
    back = NULL;
    t3 = now();
    if (t3d_preprocess_scores_to_series(&tr, sc, &back) != T3D_OK)
      return 1;
    best_sc = (now() - t3) < best_sc ? now() - t3 : best_sc;
    best = t1 - t0 < best ? t1 - t0 : best;
    best_lab = t2 - t1 < best_lab ? t2 - t1 : best_lab;
    t3d_tensor_free(back);
    t3d_tensor_free(out);
  }
  printf("preprocess 512x512x300 @0.7x0.7x1.0 -> 1.5 mm, 160x224x224: %.1f ms (best of %d)\n", best * 1e3, reps);
  printf("labels_to_series (u8): %.1f ms; map_to_series (f32 trilinear): %.1f ms; scores_to_series (9 classes): "
         "%.1f ms\n", best_lab * 1e3, best_map * 1e3, best_sc * 1e3);
  t3d_tensor_free(lab);
  t3d_tensor_free(map);
  t3d_tensor_free(sc);
  t3d_volume_free(v);
  return 0;
}
