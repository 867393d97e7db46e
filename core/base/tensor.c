/* Tensor bookkeeping: sizes, shapes, aligned storage and half-precision conversion.
 * No arithmetic lives here; ops are in kernels/. */
#include "core/base/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  size_t size;
} dtype_info[T3D_DTYPE_COUNT] = {
  [T3D_F32] = {"F32", 4}, [T3D_F16] = {"F16", 2}, [T3D_BF16] = {"BF16", 2},
  [T3D_I32] = {"I32", 4}, [T3D_U8] = {"U8", 1},
};

size_t t3d_dtype_size(t3d_dtype dtype)
{
  return (unsigned)dtype < T3D_DTYPE_COUNT ? dtype_info[dtype].size : 0;
}

const char *t3d_dtype_name(t3d_dtype dtype)
{
  return (unsigned)dtype < T3D_DTYPE_COUNT ? dtype_info[dtype].name : "?";
}

bool t3d_dtype_from_name(const char *name, t3d_dtype *out)
{
  for (int i = 0; name && i < T3D_DTYPE_COUNT; i++) {
    if (strcmp(name, dtype_info[i].name) == 0) {
      *out = (t3d_dtype)i;
      return true;
    }
  }
  return false;
}

bool t3d_shape_nbytes(t3d_dtype dtype, int ndim, const int64_t *shape, size_t *nbytes)
{
  size_t n = t3d_dtype_size(dtype);
  if (n == 0 || ndim < 0 || ndim > T3D_MAX_DIMS)
    return false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return false;
    if (shape[i] != 0 && n > SIZE_MAX / (size_t)shape[i])
      return false;
    n *= (size_t)shape[i];
  }
  *nbytes = n;
  return true;
}

int64_t t3d_tensor_numel(const t3d_tensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

size_t t3d_tensor_nbytes(const t3d_tensor *t)
{
  return (size_t)t3d_tensor_numel(t) * t3d_dtype_size(t->dtype);
}

char *t3d_tensor_describe(const t3d_tensor *t, char *buf, size_t size)
{
  static const char *const lower[T3D_DTYPE_COUNT] = {"f32", "f16", "bf16", "i32", "u8"};
  size_t used;
  if (size == 0)
    return buf;
  used = (size_t)snprintf(buf, size, "%s[", (unsigned)t->dtype < T3D_DTYPE_COUNT ? lower[t->dtype] : "?");
  for (int i = 0; i < t->ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)t->shape[i]);
  if (used < size)
    snprintf(buf + used, size - used, t->layout == T3D_LAYOUT_PACKED ? "] (packed)" : "]");
  return buf;
}

bool t3d_tensor_same_shape(const t3d_tensor *a, const t3d_tensor *b)
{
  if (a->ndim != b->ndim)
    return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return false;
  return true;
}

void *t3d_aligned_alloc(size_t bytes)
{
  void *p = NULL;
  if (posix_memalign(&p, T3D_ALIGN, bytes ? bytes : T3D_ALIGN) != 0)
    return NULL;
  return p;
}

void t3d_aligned_free(void *p) { free(p); }

t3d_status t3d_tensor_new(t3d_tensor **out, t3d_dtype dtype, int ndim, const int64_t *shape)
{
  t3d_tensor *t = NULL;
  size_t nbytes = 0;

  *out = NULL;
  if (ndim < 1 || ndim > T3D_MAX_DIMS || (unsigned)dtype >= T3D_DTYPE_COUNT)
    return t3d_error(T3D_ERR_INVALID_ARG, "tensor must have 1 to %d dimensions and a known dtype (got %d, dtype %d)",
                     T3D_MAX_DIMS, ndim, (int)dtype);
  if (!t3d_shape_nbytes(dtype, ndim, shape, &nbytes))
    return t3d_error(T3D_ERR_NOMEM, "tensor shape has a negative dimension or overflows memory");
  t = calloc(1, sizeof *t);
  if (!t)
    return t3d_error(T3D_ERR_NOMEM, "out of memory allocating a tensor header");
  t->data = t3d_aligned_alloc(nbytes);
  if (!t->data) {
    free(t);
    return t3d_error(T3D_ERR_NOMEM, "out of memory allocating %zu bytes of tensor data", nbytes);
  }
  memset(t->data, 0, nbytes);
  t->dtype = dtype;
  t->ndim = ndim;
  memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  t->owned = true;
  *out = t;
  return T3D_OK;
}

t3d_tensor t3d_tensor_view(t3d_dtype dtype, int ndim, const int64_t *shape, void *data)
{
  t3d_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = dtype;
  t.ndim = ndim;
  for (int i = 0; i < ndim && i < T3D_MAX_DIMS; i++)
    t.shape[i] = shape[i];
  t.data = data;
  t.owned = false;
  return t;
}

void t3d_tensor_free(t3d_tensor *t)
{
  if (!t)
    return;
  if (t->owned)
    t3d_aligned_free(t->data);
  free(t);
}

float t3d_f16_to_f32(uint16_t h)
{
  uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  float f;
  if (exp == 0) {
    /* zero or subnormal: value = mant * 2^-24 */
    f = ldexpf((float)mant, -24);
    return sign ? -f : f;
  }
  if (exp == 31)
    bits = sign | 0x7f800000u | (mant << 13);
  else
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t t3d_f32_to_f16(float f)
{
  uint32_t x;
  uint32_t sign, mant;
  int32_t exp;
  memcpy(&x, &f, sizeof x);
  sign = (x >> 16) & 0x8000;
  exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff)
    return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
  if (exp >= 31)
    return (uint16_t)(sign | 0x7c00);
  if (exp <= 0) {
    uint32_t shift, half, rem, r;
    if (exp < -10)
      return (uint16_t)sign;
    mant |= 0x800000;
    shift = (uint32_t)(14 - exp);
    half = 1u << (shift - 1);
    rem = mant & ((1u << shift) - 1);
    r = mant >> shift;
    if (rem > half || (rem == half && (r & 1)))
      r++;
    return (uint16_t)(sign | r);
  }
  {
    uint32_t r = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
      r++; /* may carry into the exponent, which is the correct rounding */
    return (uint16_t)(sign | r);
  }
}

float t3d_bf16_to_f32(uint16_t h)
{
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t t3d_f32_to_bf16(float f)
{
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffff) > 0x7f800000)
    return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

void t3d_convert_to_f32(float *dst, const void *src, t3d_dtype src_dtype, size_t n)
{
  const uint16_t *h = src;
  switch (src_dtype) {
  case T3D_F32: memcpy(dst, src, n * sizeof *dst); break;
  case T3D_F16: for (size_t i = 0; i < n; i++) dst[i] = t3d_f16_to_f32(h[i]); break;
  case T3D_BF16: for (size_t i = 0; i < n; i++) dst[i] = t3d_bf16_to_f32(h[i]); break;
  case T3D_I32: for (size_t i = 0; i < n; i++) dst[i] = (float)((const int32_t *)src)[i]; break;
  case T3D_U8: for (size_t i = 0; i < n; i++) dst[i] = (float)((const uint8_t *)src)[i]; break;
  case T3D_DTYPE_COUNT: break;
  }
}
