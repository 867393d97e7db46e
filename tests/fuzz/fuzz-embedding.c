/* libFuzzer target for the index's embedding BLOB parser (t3d_index_embedding_parse): any bytes
 * as a BLOB; an accepted one must have a sane dimension, finite values and re-encode to the same
 * bytes, and must be refused under any other expected dimension. Not a correctness test
 * (tests/test-index.c is): it looks for crashes, leaks and UB.
 * Build: ./configure --enable-fuzzers CC=clang CXX=clang++; run: tests/fuzz/fuzz-embedding DIR
 * (tests/fuzz/fuzz-corpus-embedding --write DIR writes seeds). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static float out[T3D_INDEX_MAX_DIM];
  int dim = 0;
  if (t3d_index_embedding_parse(data, size, 0, out, &dim) != T3D_OK) return 0;
  if (dim < 1 || dim > T3D_INDEX_MAX_DIM || size != t3d_index_embedding_blob_size(dim)) __builtin_trap();
  for (int i = 0; i < dim; i++)
    if (!isfinite(out[i])) __builtin_trap();
  uint8_t *again = malloc(size);
  if (!again) return 0;
  t3d_index_embedding_encode(out, dim, again);
  if (memcmp(again, data, size) != 0) __builtin_trap(); /* the format has one spelling per vector */
  free(again);
  int other = 0;
  if (t3d_index_embedding_parse(data, size, dim + 1, out, &other) == T3D_OK) __builtin_trap();
  return 0;
}
