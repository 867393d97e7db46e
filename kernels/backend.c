/* Backend plumbing shared by every backend: op names, backend tensors, output-size arithmetic,
 * BatchNorm folding and the checked t3d_op_* wrappers that validate dtypes, shapes and
 * parameters before calling a backend's table. No arithmetic on tensors lives here. */
#include "kernels/backend.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const op_names[T3D_OP_COUNT] = {
    [T3D_OP_CONV3D] = "conv3d",
    [T3D_OP_CONV3D_TRANSPOSE] = "conv3d_transpose",
    [T3D_OP_RELU] = "relu",
    [T3D_OP_ADD] = "add",
    [T3D_OP_MAXPOOL3D] = "maxpool3d",
    [T3D_OP_AVGPOOL3D_GLOBAL] = "avgpool3d_global",
    [T3D_OP_AVGPOOL3D_ADAPTIVE] = "avgpool3d_adaptive",
    [T3D_OP_LINEAR] = "linear",
    [T3D_OP_LAYERNORM] = "layernorm",
    [T3D_OP_GELU] = "gelu",
    [T3D_OP_SOFTMAX] = "softmax",
    [T3D_OP_ATTENTION] = "attention",
    [T3D_OP_EMBEDDING] = "embedding",
    [T3D_OP_CONCAT] = "concat",
    [T3D_OP_RESAMPLE_TRILINEAR] = "resample_trilinear",
    [T3D_OP_ARGMAX] = "argmax",
};

const char *t3d_op_name(t3d_op op)
{
  if ((unsigned)op >= T3D_OP_COUNT)
    return "unknown op";
  return op_names[op];
}

t3d_backend_params t3d_backend_default_params(void)
{
  t3d_backend_params p = {.threads = 0};
  return p;
}

static const char *const precision_names[] = {"fp32", "bf16", "auto", "tf32"};

const char *t3d_precision_name(t3d_precision p)
{
  return (unsigned)p <= T3D_PRECISION_TF32 ? precision_names[p] : "unknown";
}

bool t3d_precision_from_name(const char *name, t3d_precision *out)
{
  for (int i = 0; name && i <= T3D_PRECISION_TF32; i++)
    if (strcmp(name, precision_names[i]) == 0) {
      *out = (t3d_precision)i;
      return true;
    }
  return false;
}

t3d_status t3d_precision_parse(const char *s, t3d_precision *out)
{
  if (t3d_precision_from_name(s, out)) return T3D_OK;
  return t3d_error(T3D_ERR_INVALID_ARG, "unknown precision '%s' (known: fp32, bf16, auto, tf32)", s ? s : "(null)");
}

void t3d_backend_free(t3d_backend *be)
{
  if (be && be->ops && be->ops->destroy)
    be->ops->destroy(be);
}

bool t3d_backend_supports(const t3d_backend *be, t3d_op op, t3d_dtype dtype)
{
  if (!be || !be->ops || !be->ops->supports_op || (unsigned)op >= T3D_OP_COUNT)
    return false;
  return be->ops->supports_op(be, op, dtype);
}

/* ---- backend tensors ---------------------------------------------------------------------- */

t3d_status t3d_backend_tensor_new(t3d_backend *be, t3d_tensor *out, t3d_dtype dtype, int ndim, const int64_t *shape)
{
  size_t nbytes = 0;
  void *data = NULL;
  t3d_status s;

  if (!out)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_tensor_new: out is NULL");
  memset(out, 0, sizeof *out);
  if (!be || !be->ops)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_tensor_new: backend is NULL");
  if (ndim < 1 || ndim > T3D_MAX_DIMS || (unsigned)dtype >= T3D_DTYPE_COUNT || !shape)
    return t3d_error(T3D_ERR_INVALID_ARG,
                     "t3d_backend_tensor_new: tensor must have 1 to %d dimensions and a known dtype (got %d, dtype %d)",
                     T3D_MAX_DIMS, ndim, (int)dtype);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_tensor_new: dimension %d is negative (%lld)", i,
                       (long long)shape[i]);
  if (!t3d_shape_nbytes(dtype, ndim, shape, &nbytes))
    return t3d_error(T3D_ERR_NOMEM, "t3d_backend_tensor_new: the tensor's size overflows memory");
  s = be->ops->alloc(be, &data, nbytes);
  if (s != T3D_OK)
    return s;
  out->dtype = dtype;
  out->ndim = ndim;
  memcpy(out->shape, shape, (size_t)ndim * sizeof *shape);
  out->data = data;
  out->owned = false; /* backend memory: released by t3d_backend_tensor_free, never t3d_tensor_free */
  return T3D_OK;
}

void t3d_backend_tensor_free(t3d_backend *be, t3d_tensor *t)
{
  if (!t)
    return;
  if (be && be->ops && t->data)
    be->ops->free(be, t->data);
  t->data = NULL;
}

static t3d_status check_transfer(const char *fn, const t3d_tensor *dst, const t3d_tensor *src)
{
  char d1[96], d2[96];
  if (!dst || !src)
    return t3d_error(T3D_ERR_INVALID_ARG, "%s: tensor is NULL", fn);
  if (dst->layout == T3D_LAYOUT_PACKED || src->layout == T3D_LAYOUT_PACKED)
    return t3d_error(T3D_ERR_INVALID_ARG, "%s: %s is a weight in a backend's packed layout, readable by its op only",
                     fn, t3d_tensor_describe(dst->layout == T3D_LAYOUT_PACKED ? dst : src, d1, sizeof d1));
  if (dst->dtype != src->dtype || !t3d_tensor_same_shape(dst, src))
    return t3d_error(T3D_ERR_SHAPE, "%s: destination %s and source %s must have the same dtype and shape", fn,
                     t3d_tensor_describe(dst, d1, sizeof d1), t3d_tensor_describe(src, d2, sizeof d2));
  if (t3d_tensor_nbytes(src) > 0 && (!dst->data || !src->data))
    return t3d_error(T3D_ERR_INVALID_ARG, "%s: tensor %s has no data", fn, t3d_tensor_describe(src, d1, sizeof d1));
  return T3D_OK;
}

t3d_status t3d_backend_upload(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host)
{
  t3d_status s;
  if (!be || !be->ops)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_upload: backend is NULL");
  if ((s = check_transfer("t3d_backend_upload", dev, host)) != T3D_OK)
    return s;
  if (t3d_tensor_nbytes(host) == 0)
    return T3D_OK;
  return be->ops->upload(be, dev->data, host->data, t3d_tensor_nbytes(host));
}

t3d_status t3d_backend_download(t3d_backend *be, t3d_tensor *host, const t3d_tensor *dev)
{
  t3d_status s;
  if (!be || !be->ops)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_download: backend is NULL");
  if ((s = check_transfer("t3d_backend_download", host, dev)) != T3D_OK)
    return s;
  if (t3d_tensor_nbytes(dev) == 0)
    return T3D_OK;
  return be->ops->download(be, host->data, dev->data, t3d_tensor_nbytes(dev));
}

t3d_status t3d_backend_weight_upload(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op)
{
  char d[96];
  if (!dev)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_weight_upload: dev is NULL");
  memset(dev, 0, sizeof *dev);
  if (!be || !be->ops || !host)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_weight_upload: NULL argument");
  if (op != T3D_OP_CONV3D && op != T3D_OP_CONV3D_TRANSPOSE && op != T3D_OP_LINEAR)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_backend_weight_upload: %s has no weights", t3d_op_name(op));
  if (host->dtype != T3D_F32 || host->ndim != (op == T3D_OP_LINEAR ? 2 : 5) || !host->data ||
      t3d_tensor_numel(host) < 1)
    return t3d_error(T3D_ERR_SHAPE, "t3d_backend_weight_upload: %s is not an f32 weight of %s",
                     t3d_tensor_describe(host, d, sizeof d), t3d_op_name(op));
  if (be->precision == T3D_PRECISION_BF16 && (be->bf16_ops & (1u << op)) && be->ops->pack_weight &&
      t3d_backend_supports(be, op, T3D_BF16))
    return be->ops->pack_weight(be, dev, host, op);
  if (be->ops->pack_weight_f32) {
    bool packed = false;
    T3D_TRY(be->ops->pack_weight_f32(be, dev, host, op, &packed));
    if (packed)
      return T3D_OK;
  }
  T3D_TRY(t3d_backend_tensor_new(be, dev, T3D_F32, host->ndim, host->shape));
  t3d_status s = t3d_backend_upload(be, dev, host);
  if (s != T3D_OK)
    t3d_backend_tensor_free(be, dev);
  return s;
}

/* ---- output sizes ------------------------------------------------------------------------- */

int64_t t3d_conv_out_size(int64_t in, int kernel, int stride, int pad)
{
  int64_t span;
  if (in < 1 || kernel < 1 || stride < 1 || pad < 0)
    return 0;
  span = in + 2 * (int64_t)pad - kernel;
  if (span < 0)
    return 0;
  return span / stride + 1;
}

int64_t t3d_conv_transpose_out_size(int64_t in, int kernel, int stride, int pad, int output_pad)
{
  int64_t out;
  if (in < 1 || kernel < 1 || stride < 1 || pad < 0 || output_pad < 0 || output_pad >= stride)
    return 0;
  out = (in - 1) * stride - 2 * (int64_t)pad + kernel + output_pad;
  return out > 0 ? out : 0;
}

/* ---- BatchNorm folding -------------------------------------------------------------------- */

static bool is_host_f32_vector(const t3d_tensor *t, int64_t n)
{
  return t && t->dtype == T3D_F32 && t->ndim == 1 && t->shape[0] == n && t->data;
}

t3d_status t3d_fold_batchnorm(t3d_tensor *w, t3d_tensor **bias, const t3d_tensor *gamma, const t3d_tensor *beta,
                              const t3d_tensor *mean, const t3d_tensor *var, float eps)
{
  t3d_tensor *b = NULL;
  char d1[96];
  int64_t cout, per_out;
  float *wd, *bd;
  const float *g, *be, *mu, *vr;
  t3d_status s;

  if (!w || !bias || !w->data || w->dtype != T3D_F32 || w->ndim < 1)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_fold_batchnorm: weight must be a host f32 tensor [Cout, ...]");
  cout = w->shape[0];
  if (!is_host_f32_vector(gamma, cout) || !is_host_f32_vector(beta, cout) || !is_host_f32_vector(mean, cout) ||
      !is_host_f32_vector(var, cout))
    return t3d_error(T3D_ERR_SHAPE,
                     "t3d_fold_batchnorm: weight %s needs gamma, beta, running mean and running var as host f32[%lld]",
                     t3d_tensor_describe(w, d1, sizeof d1), (long long)cout);
  if (*bias && !is_host_f32_vector(*bias, cout))
    return t3d_error(T3D_ERR_SHAPE, "t3d_fold_batchnorm: bias %s must be host f32[%lld] like the weight's Cout",
                     t3d_tensor_describe(*bias, d1, sizeof d1), (long long)cout);
  if (!(eps >= 0.0f) || !isfinite(eps))
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_fold_batchnorm: eps must be finite and >= 0 (got %g)", (double)eps);
  g = gamma->data;
  be = beta->data;
  mu = mean->data;
  vr = var->data;
  /* Validate everything before touching w, so a failure leaves the caller's tensors unchanged. */
  for (int64_t c = 0; c < cout; c++)
    if (!((double)vr[c] + eps > 0.0) || !isfinite(vr[c]))
      return t3d_error(T3D_ERR_INVALID_ARG,
                       "t3d_fold_batchnorm: running var[%lld] = %g with eps %g gives no positive variance",
                       (long long)c, (double)vr[c], (double)eps);
  if (!*bias) {
    int64_t shape[1] = {cout};
    if ((s = t3d_tensor_new(&b, T3D_F32, 1, shape)) != T3D_OK)
      return s;
    *bias = b; /* zero-filled: conv without bias */
  }
  per_out = cout ? t3d_tensor_numel(w) / cout : 0;
  wd = w->data;
  bd = (*bias)->data;
  for (int64_t c = 0; c < cout; c++) {
    /* y = (conv + b - mean) / sqrt(var + eps) * gamma + beta, in double then rounded once. */
    double scale = (double)g[c] / sqrt((double)vr[c] + (double)eps);
    for (int64_t i = 0; i < per_out; i++)
      wd[c * per_out + i] = (float)((double)wd[c * per_out + i] * scale);
    bd[c] = (float)(((double)bd[c] - (double)mu[c]) * scale + (double)be[c]);
  }
  return T3D_OK;
}

/* ---- checked op wrappers ------------------------------------------------------------------ */

#define DESC(t, buf) t3d_tensor_describe((t), (buf), sizeof(buf))

/* A tensor argument: non-NULL, given dtype, ndim in [ndim_min, ndim_max], no empty dimension,
 * data present. Empty tensors are refused everywhere: no op of the model produces them. */
static t3d_status check_arg(const char *op, const char *name, const t3d_tensor *t, t3d_dtype dtype, int ndim_min,
                            int ndim_max)
{
  char d[96];
  if (!t)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_%s: %s is NULL", op, name);
  if ((unsigned)t->dtype >= T3D_DTYPE_COUNT || t->ndim < 1 || t->ndim > T3D_MAX_DIMS)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_%s: %s is not a valid tensor (dtype %d, %d dimensions)", op, name,
                     (int)t->dtype, t->ndim);
  if (t->layout == T3D_LAYOUT_PACKED && strcmp(name, "w") != 0)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_%s: %s is %s, a weight in a backend's packed layout", op, name,
                     DESC(t, d));
  if (t->dtype != dtype)
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_%s: %s is %s but must be %s", op, name, DESC(t, d),
                     dtype == T3D_I32 ? "i32" : "f32");
  if (t->ndim < ndim_min || t->ndim > ndim_max) {
    if (ndim_min == ndim_max)
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_%s: %s is %s but must have %d dimensions", op, name, DESC(t, d),
                       ndim_min);
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_%s: %s is %s but must have %d to %d dimensions", op, name, DESC(t, d),
                     ndim_min, ndim_max);
  }
  for (int i = 0; i < t->ndim; i++)
    if (t->shape[i] < 1)
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_%s: %s is %s; empty or negative dimensions are not supported", op,
                       name, DESC(t, d));
  if (!t->data)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_%s: %s %s has no data", op, name, DESC(t, d));
  return T3D_OK;
}

/* Output y must have exactly the given shape; `why` names the inputs it follows from. */
static t3d_status check_out_shape(const char *op, const t3d_tensor *y, int ndim, const int64_t *shape, const char *why)
{
  t3d_tensor want = {.dtype = y->dtype, .ndim = ndim};
  char d1[96], d2[96];
  memcpy(want.shape, shape, (size_t)ndim * sizeof *shape);
  if (t3d_tensor_same_shape(y, &want))
    return T3D_OK;
  return t3d_error(T3D_ERR_SHAPE, "t3d_op_%s: y is %s but must be %s for %s", op, DESC(y, d1), DESC(&want, d2), why);
}

static t3d_status check_no_alias(const char *op, const t3d_tensor *y, const char *name, const t3d_tensor *x)
{
  if (x && y->data == x->data)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_%s: y must not share memory with %s", op, name);
  return T3D_OK;
}

static bool has_entry(const t3d_backend_ops *o, t3d_op op)
{
  switch (op) {
  case T3D_OP_CONV3D: return o->conv3d != NULL;
  case T3D_OP_CONV3D_TRANSPOSE: return o->conv3d_transpose != NULL;
  case T3D_OP_RELU: return o->relu != NULL;
  case T3D_OP_ADD: return o->add != NULL;
  case T3D_OP_MAXPOOL3D: return o->maxpool3d != NULL;
  case T3D_OP_AVGPOOL3D_GLOBAL: return o->avgpool3d_global != NULL;
  case T3D_OP_AVGPOOL3D_ADAPTIVE: return o->avgpool3d_adaptive != NULL;
  case T3D_OP_LINEAR: return o->linear != NULL;
  case T3D_OP_LAYERNORM: return o->layernorm != NULL;
  case T3D_OP_GELU: return o->gelu != NULL;
  case T3D_OP_SOFTMAX: return o->softmax != NULL;
  case T3D_OP_ATTENTION: return o->attention != NULL;
  case T3D_OP_EMBEDDING: return o->embedding != NULL;
  case T3D_OP_CONCAT: return o->concat != NULL;
  case T3D_OP_RESAMPLE_TRILINEAR: return o->resample_trilinear != NULL;
  case T3D_OP_ARGMAX: return o->argmax != NULL;
  default: return false;
  }
}

/* Last check of every wrapper: the backend exists, has the entry and says it supports the op
 * (for bf16 weights when w is bf16). */
static t3d_status check_backend_w(const t3d_backend *be, t3d_op op, t3d_dtype wdtype)
{
  if (!be || !be->ops)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_%s: backend is NULL", t3d_op_name(op));
  if (!has_entry(be->ops, op) || !t3d_backend_supports(be, op, wdtype))
    return t3d_error(T3D_ERR_UNSUPPORTED, "t3d_op_%s: the %s backend does not support this op for %s",
                     t3d_op_name(op), be->ops->name ? be->ops->name : "unnamed", wdtype == T3D_BF16 ? "bf16" : "f32");
  return T3D_OK;
}

static t3d_status check_backend(const t3d_backend *be, t3d_op op) { return check_backend_w(be, op, T3D_F32); }

/* Weights of conv3d, conv3d_transpose, linear: f32, or bf16 from t3d_backend_weight_upload. */
static t3d_dtype weight_dtype(const t3d_tensor *w) { return w && w->dtype == T3D_BF16 ? T3D_BF16 : T3D_F32; }

static t3d_status check_triple(const char *op, const char *what, const int v[3], int min)
{
  for (int i = 0; i < 3; i++)
    if (v[i] < min)
      return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_%s: %s must be >= %d on every axis (got %d,%d,%d)", op, what,
                       min, v[0], v[1], v[2]);
  return T3D_OK;
}

t3d_status t3d_op_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                         const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  const char *op = "conv3d";
  char dx[96], dw[96], why[320];
  int64_t shape[5];

  T3D_TRY(check_arg(op, "x", x, T3D_F32, 5, 5));
  T3D_TRY(check_arg(op, "w", w, weight_dtype(w), 5, 5));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 5, 5));
  if (!p)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_conv3d: params are NULL");
  T3D_TRY(check_triple(op, "stride", p->stride, 1));
  T3D_TRY(check_triple(op, "pad", p->pad, 0));
  if (w->shape[1] != x->shape[1])
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_conv3d: x %s has %lld input channels but w %s expects %lld", DESC(x, dx),
                     (long long)x->shape[1], DESC(w, dw), (long long)w->shape[1]);
  shape[0] = x->shape[0];
  shape[1] = w->shape[0];
  for (int i = 0; i < 3; i++) {
    shape[2 + i] = t3d_conv_out_size(x->shape[2 + i], (int)w->shape[2 + i], p->stride[i], p->pad[i]);
    if (shape[2 + i] < 1 || w->shape[2 + i] > 1 << 20)
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_conv3d: kernel of w %s does not fit x %s padded by (%d,%d,%d)",
                       DESC(w, dw), DESC(x, dx), p->pad[0], p->pad[1], p->pad[2]);
  }
  snprintf(why, sizeof why, "x %s, w %s, stride (%d,%d,%d), pad (%d,%d,%d)", DESC(x, dx), DESC(w, dw), p->stride[0],
           p->stride[1], p->stride[2], p->pad[0], p->pad[1], p->pad[2]);
  T3D_TRY(check_out_shape(op, y, 5, shape, why));
  if (bias) {
    int64_t bshape[1] = {w->shape[0]};
    T3D_TRY(check_arg(op, "bias", bias, T3D_F32, 1, 1));
    if (bias->shape[0] != bshape[0])
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_conv3d: bias is %s but w %s has %lld output channels",
                       DESC(bias, dx), DESC(w, dw), (long long)bshape[0]);
  }
  if (residual) {
    T3D_TRY(check_arg(op, "residual", residual, T3D_F32, 5, 5));
    if (!t3d_tensor_same_shape(residual, y))
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_conv3d: residual %s must have the shape of y %s", DESC(residual, dx),
                       DESC(y, dw));
  }
  T3D_TRY(check_no_alias(op, y, "x", x));
  T3D_TRY(check_no_alias(op, y, "w", w));
  T3D_TRY(check_no_alias(op, y, "residual", residual));
  T3D_TRY(check_backend_w(be, T3D_OP_CONV3D, weight_dtype(w)));
  return be->ops->conv3d(be, y, x, w, bias, residual, p);
}

t3d_status t3d_op_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                   const t3d_tensor *bias, const t3d_conv3d_transpose_params *p)
{
  const char *op = "conv3d_transpose";
  char dx[96], dw[96], why[360];
  int64_t shape[5];

  T3D_TRY(check_arg(op, "x", x, T3D_F32, 5, 5));
  T3D_TRY(check_arg(op, "w", w, weight_dtype(w), 5, 5));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 5, 5));
  if (!p)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_conv3d_transpose: params are NULL");
  T3D_TRY(check_triple(op, "stride", p->stride, 1));
  T3D_TRY(check_triple(op, "pad", p->pad, 0));
  T3D_TRY(check_triple(op, "output_pad", p->output_pad, 0));
  for (int i = 0; i < 3; i++)
    if (p->output_pad[i] >= p->stride[i])
      return t3d_error(T3D_ERR_INVALID_ARG,
                       "t3d_op_conv3d_transpose: output_pad (%d,%d,%d) must be smaller than stride (%d,%d,%d)",
                       p->output_pad[0], p->output_pad[1], p->output_pad[2], p->stride[0], p->stride[1],
                       p->stride[2]);
  if (w->shape[0] != x->shape[1])
    return t3d_error(T3D_ERR_SHAPE,
                     "t3d_op_conv3d_transpose: x %s has %lld input channels but w %s [Cin,Cout,kD,kH,kW] expects %lld",
                     DESC(x, dx), (long long)x->shape[1], DESC(w, dw), (long long)w->shape[0]);
  shape[0] = x->shape[0];
  shape[1] = w->shape[1];
  for (int i = 0; i < 3; i++) {
    shape[2 + i] = w->shape[2 + i] > 1 << 20 ? 0
                                              : t3d_conv_transpose_out_size(x->shape[2 + i], (int)w->shape[2 + i],
                                                                            p->stride[i], p->pad[i], p->output_pad[i]);
    if (shape[2 + i] < 1)
      return t3d_error(T3D_ERR_SHAPE,
                       "t3d_op_conv3d_transpose: x %s with w %s and pad (%d,%d,%d) gives an empty output",
                       DESC(x, dx), DESC(w, dw), p->pad[0], p->pad[1], p->pad[2]);
  }
  snprintf(why, sizeof why, "x %s, w %s, stride (%d,%d,%d), pad (%d,%d,%d), output_pad (%d,%d,%d)", DESC(x, dx),
           DESC(w, dw), p->stride[0], p->stride[1], p->stride[2], p->pad[0], p->pad[1], p->pad[2], p->output_pad[0],
           p->output_pad[1], p->output_pad[2]);
  T3D_TRY(check_out_shape(op, y, 5, shape, why));
  if (bias) {
    T3D_TRY(check_arg(op, "bias", bias, T3D_F32, 1, 1));
    if (bias->shape[0] != w->shape[1])
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_conv3d_transpose: bias is %s but w %s has %lld output channels",
                       DESC(bias, dx), DESC(w, dw), (long long)w->shape[1]);
  }
  T3D_TRY(check_no_alias(op, y, "x", x));
  T3D_TRY(check_no_alias(op, y, "w", w));
  T3D_TRY(check_backend_w(be, T3D_OP_CONV3D_TRANSPOSE, weight_dtype(w)));
  return be->ops->conv3d_transpose(be, y, x, w, bias, p);
}

/* y = f(x) elementwise or per last-dim row: same dtype f32 and shape; y may be x. */
static t3d_status check_same(const char *op, const t3d_tensor *y, const char *xname, const t3d_tensor *x)
{
  char d1[96], d2[96];
  T3D_TRY(check_arg(op, xname, x, T3D_F32, 1, T3D_MAX_DIMS));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 1, T3D_MAX_DIMS));
  if (!t3d_tensor_same_shape(x, y))
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_%s: y %s must have the shape of %s %s", op, DESC(y, d1), xname,
                     DESC(x, d2));
  return T3D_OK;
}

t3d_status t3d_op_relu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  T3D_TRY(check_same("relu", y, "x", x));
  T3D_TRY(check_backend(be, T3D_OP_RELU));
  return be->ops->relu(be, y, x);
}

t3d_status t3d_op_add(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b)
{
  char d1[96], d2[96];
  T3D_TRY(check_same("add", y, "a", a));
  T3D_TRY(check_arg("add", "b", b, T3D_F32, 1, T3D_MAX_DIMS));
  if (!t3d_tensor_same_shape(a, b))
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_add: a %s and b %s must have the same shape (no broadcasting)",
                     DESC(a, d1), DESC(b, d2));
  T3D_TRY(check_backend(be, T3D_OP_ADD));
  return be->ops->add(be, y, a, b);
}

t3d_status t3d_op_maxpool3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_pool3d_params *p)
{
  const char *op = "maxpool3d";
  char dx[96], why[256];
  int64_t shape[5];

  T3D_TRY(check_arg(op, "x", x, T3D_F32, 5, 5));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 5, 5));
  if (!p)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_maxpool3d: params are NULL");
  T3D_TRY(check_triple(op, "kernel", p->kernel, 1));
  T3D_TRY(check_triple(op, "stride", p->stride, 1));
  T3D_TRY(check_triple(op, "pad", p->pad, 0));
  for (int i = 0; i < 3; i++)
    if (p->pad[i] > p->kernel[i] / 2) /* PyTorch's rule: a window never lies wholly in the padding */
      return t3d_error(T3D_ERR_INVALID_ARG,
                       "t3d_op_maxpool3d: pad (%d,%d,%d) must be at most half of kernel (%d,%d,%d)",
                       p->pad[0], p->pad[1], p->pad[2], p->kernel[0], p->kernel[1], p->kernel[2]);
  shape[0] = x->shape[0];
  shape[1] = x->shape[1];
  for (int i = 0; i < 3; i++) {
    shape[2 + i] = t3d_conv_out_size(x->shape[2 + i], p->kernel[i], p->stride[i], p->pad[i]);
    if (shape[2 + i] < 1)
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_maxpool3d: kernel (%d,%d,%d) does not fit x %s padded by (%d,%d,%d)",
                       p->kernel[0], p->kernel[1], p->kernel[2], DESC(x, dx), p->pad[0], p->pad[1], p->pad[2]);
  }
  snprintf(why, sizeof why, "x %s, kernel (%d,%d,%d), stride (%d,%d,%d), pad (%d,%d,%d)", DESC(x, dx), p->kernel[0],
           p->kernel[1], p->kernel[2], p->stride[0], p->stride[1], p->stride[2], p->pad[0], p->pad[1], p->pad[2]);
  T3D_TRY(check_out_shape(op, y, 5, shape, why));
  T3D_TRY(check_no_alias(op, y, "x", x));
  T3D_TRY(check_backend(be, T3D_OP_MAXPOOL3D));
  return be->ops->maxpool3d(be, y, x, p);
}

t3d_status t3d_op_avgpool3d_global(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  char dx[96], why[128];
  int64_t shape[2];
  T3D_TRY(check_arg("avgpool3d_global", "x", x, T3D_F32, 5, 5));
  T3D_TRY(check_arg("avgpool3d_global", "y", y, T3D_F32, 2, 2));
  shape[0] = x->shape[0];
  shape[1] = x->shape[1];
  snprintf(why, sizeof why, "x %s", DESC(x, dx));
  T3D_TRY(check_out_shape("avgpool3d_global", y, 2, shape, why));
  T3D_TRY(check_no_alias("avgpool3d_global", y, "x", x));
  T3D_TRY(check_backend(be, T3D_OP_AVGPOOL3D_GLOBAL));
  return be->ops->avgpool3d_global(be, y, x);
}

t3d_status t3d_op_avgpool3d_adaptive(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  char dx[96], dy[96];
  T3D_TRY(check_arg("avgpool3d_adaptive", "x", x, T3D_F32, 5, 5));
  T3D_TRY(check_arg("avgpool3d_adaptive", "y", y, T3D_F32, 5, 5));
  if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1])
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_avgpool3d_adaptive: y %s must have the batch and channels of x %s",
                     DESC(y, dy), DESC(x, dx));
  T3D_TRY(check_no_alias("avgpool3d_adaptive", y, "x", x));
  T3D_TRY(check_backend(be, T3D_OP_AVGPOOL3D_ADAPTIVE));
  return be->ops->avgpool3d_adaptive(be, y, x);
}

t3d_status t3d_op_linear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w, const t3d_tensor *b)
{
  const char *op = "linear";
  char dx[96], dw[96], why[256];
  int64_t shape[T3D_MAX_DIMS];

  T3D_TRY(check_arg(op, "x", x, T3D_F32, 1, T3D_MAX_DIMS));
  T3D_TRY(check_arg(op, "w", w, weight_dtype(w), 2, 2));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 1, T3D_MAX_DIMS));
  if (x->shape[x->ndim - 1] != w->shape[1])
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_linear: x %s has last dimension %lld but w %s [Out,In] has In %lld",
                     DESC(x, dx), (long long)x->shape[x->ndim - 1], DESC(w, dw), (long long)w->shape[1]);
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = w->shape[0];
  snprintf(why, sizeof why, "x %s and w %s", DESC(x, dx), DESC(w, dw));
  T3D_TRY(check_out_shape(op, y, x->ndim, shape, why));
  if (b) {
    T3D_TRY(check_arg(op, "b", b, T3D_F32, 1, 1));
    if (b->shape[0] != w->shape[0])
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_linear: b is %s but w %s has %lld outputs", DESC(b, dx), DESC(w, dw),
                       (long long)w->shape[0]);
  }
  T3D_TRY(check_no_alias(op, y, "x", x));
  T3D_TRY(check_no_alias(op, y, "w", w));
  T3D_TRY(check_backend_w(be, T3D_OP_LINEAR, weight_dtype(w)));
  return be->ops->linear(be, y, x, w, b);
}

t3d_status t3d_op_layernorm(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *gamma,
                            const t3d_tensor *beta, float eps)
{
  const char *op = "layernorm";
  char d1[96], d2[96];
  T3D_TRY(check_same(op, y, "x", x));
  if (gamma) {
    T3D_TRY(check_arg(op, "gamma", gamma, T3D_F32, 1, 1));
    if (gamma->shape[0] != x->shape[x->ndim - 1])
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_layernorm: gamma %s must match the last dimension of x %s",
                       DESC(gamma, d1), DESC(x, d2));
  }
  if (beta) {
    T3D_TRY(check_arg(op, "beta", beta, T3D_F32, 1, 1));
    if (beta->shape[0] != x->shape[x->ndim - 1])
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_layernorm: beta %s must match the last dimension of x %s",
                       DESC(beta, d1), DESC(x, d2));
  }
  if (!(eps >= 0.0f) || !isfinite(eps))
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_layernorm: eps must be finite and >= 0 (got %g)", (double)eps);
  T3D_TRY(check_backend(be, T3D_OP_LAYERNORM));
  return be->ops->layernorm(be, y, x, gamma, beta, eps);
}

t3d_status t3d_op_gelu(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  T3D_TRY(check_same("gelu", y, "x", x));
  T3D_TRY(check_backend(be, T3D_OP_GELU));
  return be->ops->gelu(be, y, x);
}

t3d_status t3d_op_softmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  T3D_TRY(check_same("softmax", y, "x", x));
  T3D_TRY(check_backend(be, T3D_OP_SOFTMAX));
  return be->ops->softmax(be, y, x);
}

t3d_status t3d_op_attention(t3d_backend *be, t3d_tensor *y, const t3d_tensor *q, const t3d_tensor *k,
                            const t3d_tensor *v, const t3d_tensor *key_mask, int heads)
{
  const char *op = "attention";
  char d1[96], d2[96], d3[96];
  T3D_TRY(check_arg(op, "q", q, T3D_F32, 3, 3));
  T3D_TRY(check_arg(op, "k", k, T3D_F32, 3, 3));
  T3D_TRY(check_arg(op, "v", v, T3D_F32, 3, 3));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 3, 3));
  if (k->shape[0] != q->shape[0] || k->shape[2] != q->shape[2] || !t3d_tensor_same_shape(k, v))
    return t3d_error(T3D_ERR_SHAPE,
                     "t3d_op_attention: q %s, k %s and v %s must be [B,Lq,E], [B,Lk,E], [B,Lk,E]", DESC(q, d1),
                     DESC(k, d2), DESC(v, d3));
  if (!t3d_tensor_same_shape(y, q))
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_attention: y %s must have the shape of q %s", DESC(y, d1), DESC(q, d2));
  if (heads < 1 || q->shape[2] % heads != 0)
    return t3d_error(T3D_ERR_INVALID_ARG, "t3d_op_attention: %d heads must be >= 1 and divide the width %lld of q %s",
                     heads, (long long)q->shape[2], DESC(q, d1));
  if (key_mask) {
    T3D_TRY(check_arg(op, "key_mask", key_mask, T3D_I32, 2, 2));
    if (key_mask->shape[0] != k->shape[0] || key_mask->shape[1] != k->shape[1])
      return t3d_error(T3D_ERR_SHAPE, "t3d_op_attention: key_mask %s must be i32[B,Lk] for k %s", DESC(key_mask, d1),
                       DESC(k, d2));
  }
  T3D_TRY(check_no_alias(op, y, "q", q));
  T3D_TRY(check_no_alias(op, y, "k", k));
  T3D_TRY(check_no_alias(op, y, "v", v));
  T3D_TRY(check_backend(be, T3D_OP_ATTENTION));
  return be->ops->attention(be, y, q, k, v, key_mask, heads);
}

t3d_status t3d_op_embedding(t3d_backend *be, t3d_tensor *y, const t3d_tensor *ids, const t3d_tensor *table)
{
  const char *op = "embedding";
  char d1[96], d2[96], why[256];
  int64_t shape[T3D_MAX_DIMS];
  T3D_TRY(check_arg(op, "ids", ids, T3D_I32, 1, T3D_MAX_DIMS - 1));
  T3D_TRY(check_arg(op, "table", table, T3D_F32, 2, 2));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 2, T3D_MAX_DIMS));
  memcpy(shape, ids->shape, (size_t)ids->ndim * sizeof *shape);
  shape[ids->ndim] = table->shape[1];
  snprintf(why, sizeof why, "ids %s and table %s", DESC(ids, d1), DESC(table, d2));
  T3D_TRY(check_out_shape(op, y, ids->ndim + 1, shape, why));
  T3D_TRY(check_no_alias(op, y, "table", table));
  T3D_TRY(check_backend(be, T3D_OP_EMBEDDING));
  return be->ops->embedding(be, y, ids, table);
}

t3d_status t3d_op_concat(t3d_backend *be, t3d_tensor *y, const t3d_tensor *a, const t3d_tensor *b)
{
  const char *op = "concat";
  char d1[96], d2[96], why[256];
  int64_t shape[T3D_MAX_DIMS];
  T3D_TRY(check_arg(op, "a", a, T3D_F32, 2, T3D_MAX_DIMS));
  T3D_TRY(check_arg(op, "b", b, T3D_F32, 2, T3D_MAX_DIMS));
  T3D_TRY(check_arg(op, "y", y, T3D_F32, 2, T3D_MAX_DIMS));
  bool fits = a->ndim == b->ndim;
  for (int i = 0; fits && i < a->ndim; i++)
    fits = i == 1 || a->shape[i] == b->shape[i];
  if (!fits)
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_concat: a %s and b %s must agree on every dimension but 1", DESC(a, d1),
                     DESC(b, d2));
  memcpy(shape, a->shape, sizeof shape);
  shape[1] = a->shape[1] + b->shape[1];
  snprintf(why, sizeof why, "a %s and b %s joined on dimension 1", DESC(a, d1), DESC(b, d2));
  T3D_TRY(check_out_shape(op, y, a->ndim, shape, why));
  if (!(a->data == y->data && a->shape[0] == 1)) /* a already in place as y's head: allowed */
    T3D_TRY(check_no_alias(op, y, "a", a));
  T3D_TRY(check_no_alias(op, y, "b", b));
  T3D_TRY(check_backend(be, T3D_OP_CONCAT));
  return be->ops->concat(be, y, a, b);
}

t3d_status t3d_op_resample_trilinear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  char d1[96], d2[96];
  T3D_TRY(check_arg("resample_trilinear", "x", x, T3D_F32, 5, 5));
  T3D_TRY(check_arg("resample_trilinear", "y", y, T3D_F32, 5, 5));
  if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1])
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_resample_trilinear: y %s must have the batch and channels of x %s",
                     DESC(y, d1), DESC(x, d2));
  T3D_TRY(check_no_alias("resample_trilinear", y, "x", x));
  T3D_TRY(check_backend(be, T3D_OP_RESAMPLE_TRILINEAR));
  return be->ops->resample_trilinear(be, y, x);
}

t3d_status t3d_op_argmax(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  char dx[96], why[128];
  int64_t shape[T3D_MAX_DIMS];
  T3D_TRY(check_arg("argmax", "x", x, T3D_F32, 2, T3D_MAX_DIMS));
  T3D_TRY(check_arg("argmax", "y", y, T3D_I32, 1, T3D_MAX_DIMS - 1));
  if (x->shape[1] > INT32_MAX)
    return t3d_error(T3D_ERR_SHAPE, "t3d_op_argmax: x %s has too many channels for i32 indices", DESC(x, dx));
  shape[0] = x->shape[0];
  for (int i = 2; i < x->ndim; i++)
    shape[i - 1] = x->shape[i];
  snprintf(why, sizeof why, "x %s reduced over dimension 1", DESC(x, dx));
  T3D_TRY(check_out_shape("argmax", y, x->ndim - 1, shape, why));
  T3D_TRY(check_backend(be, T3D_OP_ARGMAX));
  return be->ops->argmax(be, y, x);
}
