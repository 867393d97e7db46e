/* t3d_tensor: a dense, row-major (C-order) array of up to 5 dimensions, owned or borrowed.
 * Volumes are N,C,D,H,W (z,y,x last three). Not a graph node and not device-aware by itself:
 * a backend interprets `data` as its own memory (see kernels/backend.h). */
#ifndef T3D_TENSOR_H
#define T3D_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define T3D_MAX_DIMS 5
#define T3D_ALIGN 64 /* every owned tensor and arena block starts on a cache line */

typedef enum { T3D_F32 = 0, T3D_F16, T3D_BF16, T3D_I32, T3D_U8, T3D_DTYPE_COUNT } t3d_dtype;

/* How `data` holds the elements. PLAIN: dense row-major, as above. PACKED: a weight laid out by
 * a backend for the one op it was uploaded for (t3d_backend_weight_upload); only that op reads
 * it, transfers and every other op refuse it. The shape stays the logical one. */
typedef enum { T3D_LAYOUT_PLAIN = 0, T3D_LAYOUT_PACKED } t3d_layout;

typedef struct t3d_tensor {
  t3d_dtype dtype;
  int ndim;
  int64_t shape[T3D_MAX_DIMS]; /* shape[0] is the slowest-varying dimension */
  void *data;
  bool owned; /* t3d_tensor_free releases data only when owned */
  t3d_layout layout;
} t3d_tensor;

size_t t3d_dtype_size(t3d_dtype dtype);
/* Safetensors spelling: "F32", "F16", "BF16", "I32", "U8". */
const char *t3d_dtype_name(t3d_dtype dtype);
/* Returns true and sets *out when name is one of the spellings above. */
bool t3d_dtype_from_name(const char *name, t3d_dtype *out);

int64_t t3d_tensor_numel(const t3d_tensor *t);
size_t t3d_tensor_nbytes(const t3d_tensor *t);
/* Writes "f32[1,64,80,112,112]" into buf (always NUL-terminated); returns buf. */
char *t3d_tensor_describe(const t3d_tensor *t, char *buf, size_t size);
bool t3d_tensor_same_shape(const t3d_tensor *a, const t3d_tensor *b);

/* New zero-filled owned tensor; *out is the caller's, released with t3d_tensor_free.
 * Fails with T3D_ERR_INVALID_ARG on ndim outside 1..5 or a negative dimension,
 * T3D_ERR_NOMEM when the size overflows or allocation fails. */
t3d_status t3d_tensor_new(t3d_tensor **out, t3d_dtype dtype, int ndim, const int64_t *shape);
/* Borrowed view over memory the caller keeps alive; nothing to free. */
t3d_tensor t3d_tensor_view(t3d_dtype dtype, int ndim, const int64_t *shape, void *data);
/* Frees data when owned, then the struct itself. NULL is a no-op. */
void t3d_tensor_free(t3d_tensor *t);

/* Validates dims and computes numel*size without overflow; false on overflow/bad dims. */
bool t3d_shape_nbytes(t3d_dtype dtype, int ndim, const int64_t *shape, size_t *nbytes);

/* Half-precision conversions (round-to-nearest-even), for loading F16/BF16 weights. */
float t3d_f16_to_f32(uint16_t h);
uint16_t t3d_f32_to_f16(float f);
float t3d_bf16_to_f32(uint16_t h);
uint16_t t3d_f32_to_bf16(float f);
/* Converts n elements of any float dtype into f32. */
void t3d_convert_to_f32(float *dst, const void *src, t3d_dtype src_dtype, size_t n);

/* 64-byte aligned allocation for tensor data; free with t3d_aligned_free. */
void *t3d_aligned_alloc(size_t bytes);
void t3d_aligned_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
