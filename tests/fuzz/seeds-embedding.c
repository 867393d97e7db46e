/* Seeds for the embedding BLOB fuzz target: valid BLOBs from t3d_index_embedding_encode (small,
 * the model's 512, the largest dimension, odd sizes) and broken ones (bad magic, dimension 0 and
 * beyond the limit, short and long, NaN and infinity). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/index.h"
#include "tests/fuzz/run-corpus.h"

const char fuzz_target_name[] = "embedding";
const size_t fuzz_min_seeds = 10;

static bool add_vector(fuzz_seeds *s, const char *name, int dim, float poison, int where, size_t trim, size_t extra)
{
  size_t n = t3d_index_embedding_blob_size(dim);
  float *v = malloc((size_t)dim * sizeof *v);
  uint8_t *b = calloc(n + extra, 1);
  bool ok = v && b;
  for (int i = 0; ok && i < dim; i++) v[i] = sinf((float)i * 0.37f) / sqrtf((float)dim);
  if (ok && where >= 0) v[where] = poison;
  if (ok) t3d_index_embedding_encode(v, dim, b);
  ok = ok && fuzz_seeds_add(s, name, b, n + extra - trim);
  free(v), free(b);
  return ok;
}

bool fuzz_make_seeds(fuzz_seeds *s)
{
  static const uint8_t bad_magic[16] = {'T', '3', 'E', '2', 2, 0, 0, 0};
  static const uint8_t dim0[8] = {'T', '3', 'E', '1', 0, 0, 0, 0};
  static const uint8_t huge[12] = {'T', '3', 'E', '1', 0xff, 0xff, 0xff, 0xff};
  static const uint8_t over[12] = {'T', '3', 'E', '1', 0x01, 0x10, 0, 0}; /* 4097 */
  return add_vector(s, "dim1", 1, 0, -1, 0, 0) && add_vector(s, "dim7", 7, 0, -1, 0, 0) &&
         add_vector(s, "dim512", 512, 0, -1, 0, 0) && add_vector(s, "dim4096", T3D_INDEX_MAX_DIM, 0, -1, 0, 0) &&
         add_vector(s, "nan", 16, NAN, 3, 0, 0) && add_vector(s, "inf", 16, -INFINITY, 15, 0, 0) &&
         add_vector(s, "short", 16, 0, -1, 3, 0) && add_vector(s, "long", 16, 0, -1, 0, 4) &&
         fuzz_seeds_add(s, "bad-magic", bad_magic, sizeof bad_magic) && fuzz_seeds_add(s, "dim0", dim0, sizeof dim0) &&
         fuzz_seeds_add(s, "dim-huge", huge, sizeof huge) && fuzz_seeds_add(s, "dim-over", over, sizeof over) &&
         fuzz_seeds_add(s, "empty", "", 0);
}
