/* Arena: one allocation sized up front (e.g. all activations of a forward pass), handed out
 * in 64-byte aligned pieces and released all at once. It never grows: running out is a
 * status the caller sees (T3D_ERR_NOMEM), not a hidden realloc mid-inference. */
#ifndef T3D_ARENA_H
#define T3D_ARENA_H

#include <stddef.h>

#include "core/base/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct t3d_arena t3d_arena;

/* Reserves capacity bytes; *out is the caller's, released with t3d_arena_free. */
t3d_status t3d_arena_create(t3d_arena **out, size_t capacity);
void t3d_arena_free(t3d_arena *a); /* NULL is a no-op */

/* Rounds bytes up to T3D_ALIGN for a planner that sums sizes before creating the arena. */
size_t t3d_arena_round(size_t bytes);

/* Returns aligned memory owned by the arena, or NULL (with t3d_error detail set) when full. */
void *t3d_arena_alloc(t3d_arena *a, size_t bytes);
/* A borrowed tensor whose data lives in the arena; T3D_ERR_NOMEM when it does not fit. */
t3d_status t3d_arena_tensor(t3d_arena *a, t3d_tensor *out, t3d_dtype dtype, int ndim, const int64_t *shape);

size_t t3d_arena_used(const t3d_arena *a);
size_t t3d_arena_capacity(const t3d_arena *a);
size_t t3d_arena_high_water(const t3d_arena *a);
/* Position markers for scoped reuse: mark, allocate temporaries, reset to the mark. */
size_t t3d_arena_mark(const t3d_arena *a);
void t3d_arena_reset_to(t3d_arena *a, size_t mark);
void t3d_arena_reset(t3d_arena *a);

#ifdef __cplusplus
}
#endif
#endif
