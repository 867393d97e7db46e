/* TEMPORARY placeholder, written by the cpuops helper only so that the CPU backend links before
 * the conv helper's kernels/cpu/conv.c is merged: naive direct loops, slow, single-threaded.
 * At merge, take the conv helper's kernels/cpu/conv.c (and kernels/conv.mk) instead of this. */
#include "kernels/cpu/cpu.h"

t3d_status t3d_cpu_conv3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p)
{
  const int64_t N = x->shape[0], Ci = x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Co = w->shape[0], kD = w->shape[2], kH = w->shape[3], kW = w->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  const float *xd = x->data, *wd = w->data, *bd = bias ? bias->data : NULL, *rd = residual ? residual->data : NULL;
  float *yd = y->data;
  (void)be;
  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t od = 0; od < Do; od++)
        for (int64_t oh = 0; oh < Ho; oh++)
          for (int64_t ow = 0; ow < Wo; ow++) {
            double acc = bd ? bd[co] : 0.0;
            for (int64_t ci = 0; ci < Ci; ci++)
              for (int64_t a = 0; a < kD; a++) {
                int64_t d = od * p->stride[0] - p->pad[0] + a;
                if (d < 0 || d >= D)
                  continue;
                for (int64_t b = 0; b < kH; b++) {
                  int64_t h = oh * p->stride[1] - p->pad[1] + b;
                  if (h < 0 || h >= H)
                    continue;
                  for (int64_t c = 0; c < kW; c++) {
                    int64_t ww = ow * p->stride[2] - p->pad[2] + c;
                    if (ww < 0 || ww >= W)
                      continue;
                    acc += (double)xd[(((n * Ci + ci) * D + d) * H + h) * W + ww] *
                           wd[(((co * Ci + ci) * kD + a) * kH + b) * kW + c];
                  }
                }
              }
            int64_t yi = (((n * Co + co) * Do + od) * Ho + oh) * Wo + ow;
            float v = (float)acc + (rd ? rd[yi] : 0.0f);
            yd[yi] = p->relu && v < 0.0f ? 0.0f : v;
          }
  return T3D_OK;
}

t3d_status t3d_cpu_conv3d_transpose(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                    const t3d_tensor *bias, const t3d_conv3d_transpose_params *p)
{
  const int64_t N = x->shape[0], Ci = x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Co = w->shape[1], kD = w->shape[2], kH = w->shape[3], kW = w->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  const float *xd = x->data, *wd = w->data, *bd = bias ? bias->data : NULL;
  float *yd = y->data;
  (void)be;
  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t i = 0; i < Do * Ho * Wo; i++)
        yd[(n * Co + co) * Do * Ho * Wo + i] = bd ? bd[co] : 0.0f;
  /* scatter: input voxel (d,h,w) lands on output (d*s - p + a, ...) */
  for (int64_t n = 0; n < N; n++)
    for (int64_t ci = 0; ci < Ci; ci++)
      for (int64_t d = 0; d < D; d++)
        for (int64_t h = 0; h < H; h++)
          for (int64_t ww = 0; ww < W; ww++) {
            float xv = xd[(((n * Ci + ci) * D + d) * H + h) * W + ww];
            for (int64_t co = 0; co < Co; co++)
              for (int64_t a = 0; a < kD; a++) {
                int64_t od = d * p->stride[0] - p->pad[0] + a;
                if (od < 0 || od >= Do)
                  continue;
                for (int64_t b = 0; b < kH; b++) {
                  int64_t oh = h * p->stride[1] - p->pad[1] + b;
                  if (oh < 0 || oh >= Ho)
                    continue;
                  for (int64_t c = 0; c < kW; c++) {
                    int64_t ow = ww * p->stride[2] - p->pad[2] + c;
                    if (ow < 0 || ow >= Wo)
                      continue;
                    yd[(((n * Co + co) * Do + od) * Ho + oh) * Wo + ow] +=
                        xv * wd[(((ci * Co + co) * kD + a) * kH + b) * kW + c];
                  }
                }
              }
          }
  return T3D_OK;
}
