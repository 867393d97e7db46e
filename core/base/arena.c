/* Bump allocator over a single aligned block. Not thread-safe: one arena per worker. */
#include "core/base/arena.h"

#include <stdint.h>
#include <stdlib.h>

struct t3d_arena {
  unsigned char *base;
  size_t capacity;
  size_t used;
  size_t high_water;
};

size_t t3d_arena_round(size_t bytes)
{
  return (bytes + (T3D_ALIGN - 1)) & ~(size_t)(T3D_ALIGN - 1);
}

t3d_status t3d_arena_create(t3d_arena **out, size_t capacity)
{
  t3d_arena *a = NULL;
  *out = NULL;
  a = calloc(1, sizeof *a);
  if (!a)
    return t3d_error(T3D_ERR_NOMEM, "out of memory allocating an arena header");
  capacity = t3d_arena_round(capacity);
  a->base = t3d_aligned_alloc(capacity);
  if (!a->base) {
    free(a);
    return t3d_error(T3D_ERR_NOMEM, "cannot reserve an arena of %zu MiB", capacity >> 20);
  }
  a->capacity = capacity;
  *out = a;
  return T3D_OK;
}

void t3d_arena_free(t3d_arena *a)
{
  if (!a)
    return;
  t3d_aligned_free(a->base);
  free(a);
}

void *t3d_arena_alloc(t3d_arena *a, size_t bytes)
{
  size_t need = t3d_arena_round(bytes);
  void *p;
  if (need < bytes || need > a->capacity - a->used) {
    t3d_error(T3D_ERR_NOMEM, "arena exhausted: %zu bytes requested, %zu of %zu free", bytes,
              a->capacity - a->used, a->capacity);
    return NULL;
  }
  p = a->base + a->used;
  a->used += need;
  if (a->used > a->high_water)
    a->high_water = a->used;
  return p;
}

t3d_status t3d_arena_tensor(t3d_arena *a, t3d_tensor *out, t3d_dtype dtype, int ndim, const int64_t *shape)
{
  size_t nbytes;
  void *p;
  if (ndim < 1 || ndim > T3D_MAX_DIMS || !t3d_shape_nbytes(dtype, ndim, shape, &nbytes))
    return t3d_error(T3D_ERR_INVALID_ARG, "arena tensor with bad shape (ndim %d)", ndim);
  p = t3d_arena_alloc(a, nbytes);
  if (!p)
    return T3D_ERR_NOMEM;
  *out = t3d_tensor_view(dtype, ndim, shape, p);
  return T3D_OK;
}

size_t t3d_arena_used(const t3d_arena *a) { return a->used; }
size_t t3d_arena_capacity(const t3d_arena *a) { return a->capacity; }
size_t t3d_arena_high_water(const t3d_arena *a) { return a->high_water; }
size_t t3d_arena_mark(const t3d_arena *a) { return a->used; }
void t3d_arena_reset_to(t3d_arena *a, size_t mark)
{
  if (mark <= a->used)
    a->used = mark;
}
void t3d_arena_reset(t3d_arena *a) { a->used = 0; }
