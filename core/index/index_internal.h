/* Internals of core/index shared between index.c and scan.c; not installed, not API. */
#ifndef T3D_INDEX_INTERNAL_H
#define T3D_INDEX_INTERNAL_H

#include "core/index/index.h"

/* t3d_index_matrix_create without the copy: takes ownership of v (normalised in place), ids
 * and dates (both [n]), and frees them on failure. */
t3d_status t3d_index_matrix_adopt(float *v, int64_t *ids, int32_t *dates, size_t n, int dim, unsigned modes_mask,
                                  t3d_index_matrix **out);

#endif
