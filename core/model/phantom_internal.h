/* Shared internals of the phantom generators (core/model/phantom*.c): the seedable random
 * numbers and the grid directions per orientation. Not installed, not an API. */
#ifndef T3D_PHANTOM_INTERNAL_H
#define T3D_PHANTOM_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "core/model/phantom.h"

/* splitmix64: small, seedable, identical on every platform. */
static inline uint64_t t3d_phantom_next_u64(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Start state of an independent stream `salt` for `seed`: mixed, so that nearby seeds do not
 * give shifted copies of the same sequence. */
static inline uint64_t t3d_phantom_stream(uint64_t seed, uint64_t salt)
{
  uint64_t s = seed ^ salt;
  return t3d_phantom_next_u64(&s);
}

/* Uniform in [0, 1). */
static inline double t3d_phantom_uniform(uint64_t *s)
{
  return (double)(t3d_phantom_next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double t3d_phantom_gaussian(uint64_t *s)
{
  double u = t3d_phantom_uniform(s), v = t3d_phantom_uniform(s);
  return sqrt(-2.0 * log(u > 1e-300 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* Sets v->dir for orientation o (see t3d_phantom_orientation). */
void t3d_phantom_set_directions(t3d_volume *v, t3d_phantom_orientation o);

#endif
