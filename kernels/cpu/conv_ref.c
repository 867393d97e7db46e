/* Reference 3-D convolution and transposed convolution on the CPU: one direct loop per output
 * element and tap, accumulated in double. It is the oracle the fast kernels (conv.c) and other
 * backends are tested against; it is deliberately simple and slow, never used by models. */
#include <assert.h>
#include <stddef.h>

#include "kernels/cpu/conv.h"

t3d_status t3d_cpu_conv3d_ref(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                              const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  (void)be;
  assert(x->ndim == 5 && w->ndim == 5 && y->ndim == 5);
  const int64_t N = x->shape[0], Ci = x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Co = w->shape[0], KD = w->shape[2], KH = w->shape[3], KW = w->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  assert(w->shape[1] == Ci && y->shape[0] == N && y->shape[1] == Co);
  const float *xd = x->data, *wd = w->data;
  const float *bd = bias ? bias->data : NULL, *rd = residual ? residual->data : NULL;
  float *yd = y->data;

  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t od = 0; od < Do; od++)
        for (int64_t oh = 0; oh < Ho; oh++)
          for (int64_t ow = 0; ow < Wo; ow++) {
            double acc = bd ? bd[co] : 0.0;
            for (int64_t ci = 0; ci < Ci; ci++)
              for (int64_t kd = 0; kd < KD; kd++) {
                int64_t id = od * p->stride[0] - p->pad[0] + kd;
                if (id < 0 || id >= D) continue;
                for (int64_t kh = 0; kh < KH; kh++) {
                  int64_t ih = oh * p->stride[1] - p->pad[1] + kh;
                  if (ih < 0 || ih >= H) continue;
                  for (int64_t kw = 0; kw < KW; kw++) {
                    int64_t iw = ow * p->stride[2] - p->pad[2] + kw;
                    if (iw < 0 || iw >= W) continue;
                    acc += (double)xd[(((n * Ci + ci) * D + id) * H + ih) * W + iw] *
                           (double)wd[(((co * Ci + ci) * KD + kd) * KH + kh) * KW + kw];
                  }
                }
              }
            int64_t o = (((n * Co + co) * Do + od) * Ho + oh) * Wo + ow;
            if (rd) acc += rd[o];
            if (p->relu && acc < 0) acc = 0;
            yd[o] = (float)acc;
          }
  return T3D_OK;
}

/* Gathers, for each output element, every input element and tap that scatters into it:
 * od = id*stride - pad + kd, so id = (od + pad - kd) / stride when that divides exactly. */
t3d_status t3d_cpu_conv3d_transpose_ref(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                        const t3d_tensor *bias, const t3d_conv3d_transpose_params *p)
{
  (void)be;
  assert(x->ndim == 5 && w->ndim == 5 && y->ndim == 5);
  const int64_t N = x->shape[0], Ci = x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Co = w->shape[1], KD = w->shape[2], KH = w->shape[3], KW = w->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  assert(w->shape[0] == Ci && y->shape[0] == N && y->shape[1] == Co);
  const int64_t sd = p->stride[0], sh = p->stride[1], sw = p->stride[2];
  const float *xd = x->data, *wd = w->data, *bd = bias ? bias->data : NULL;
  float *yd = y->data;

  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t od = 0; od < Do; od++)
        for (int64_t oh = 0; oh < Ho; oh++)
          for (int64_t ow = 0; ow < Wo; ow++) {
            double acc = bd ? bd[co] : 0.0;
            for (int64_t ci = 0; ci < Ci; ci++)
              for (int64_t kd = 0; kd < KD; kd++) {
                int64_t td = od + p->pad[0] - kd;
                if (td < 0 || td % sd || td / sd >= D) continue;
                for (int64_t kh = 0; kh < KH; kh++) {
                  int64_t th = oh + p->pad[1] - kh;
                  if (th < 0 || th % sh || th / sh >= H) continue;
                  for (int64_t kw = 0; kw < KW; kw++) {
                    int64_t tw = ow + p->pad[2] - kw;
                    if (tw < 0 || tw % sw || tw / sw >= W) continue;
                    acc += (double)xd[(((n * Ci + ci) * D + td / sd) * H + th / sh) * W + tw / sw] *
                           (double)wd[(((ci * Co + co) * KD + kd) * KH + kh) * KW + kw];
                  }
                }
              }
            yd[(((n * Co + co) * Do + od) * Ho + oh) * Wo + ow] = (float)acc;
          }
  return T3D_OK;
}
