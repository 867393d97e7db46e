/* CPU pooling and resampling of volumes x[N,C,D,H,W]: max pool (PyTorch MaxPool3d, ceil_mode
 * false), global and adaptive average pool, trilinear resampling (align_corners=False). fp32,
 * OpenMP over channels and output planes. Shapes were checked by kernels/backend.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_simd.h"

/* torch's max: a NaN anywhere in the window wins. */
static inline float nanmax(float a, float b) { return (b > a || b != b) ? b : a; }

/* Valid input range [*lo, *hi) of output index o's window; padding is -inf so it is skipped. */
static inline void window(int64_t o, int k, int s, int p, int64_t in, int64_t *lo, int64_t *hi)
{
  int64_t start = o * s - p, end = start + k;
  *lo = start < 0 ? 0 : start;
  *hi = end > in ? in : end;
}

T3D_SIMD_CLONES
static void max_into(float *restrict dst, const float *restrict src, int64_t n)
{
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    dst[i] = (src[i] > dst[i] || src[i] != src[i]) ? src[i] : dst[i];
}

/* dst[i] = max(src[i], ..., src[i+k-1]) for i < n - k + 1: every window start of a buffer of
 * rows laid end to end (starts whose window crosses a row end are computed but never used). */
T3D_SIMD_CLONES
static void sliding_max(float *restrict dst, const float *restrict src, int64_t n, int k)
{
  const int64_t starts = n - k + 1;
  memcpy(dst, src, (size_t)starts * sizeof *dst);
  for (int j = 1; j < k; j++) {
#pragma omp simd
    for (int64_t i = 0; i < starts; i++)
      dst[i] = (src[i + j] > dst[i] || src[i + j] != src[i + j]) ? src[i + j] : dst[i];
  }
}

/* Max is separable: per output plane, max over the D window (whole planes, long vector loops),
 * then over the H window (rows), then along W (sliding max, picked at the stride). Padding is
 * -inf, so each pass just skips the out-of-range part of its window. */
t3d_status t3d_cpu_maxpool3d(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_pool3d_params *p)
{
  const int64_t NC = x->shape[0] * x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  const int kw = p->kernel[2], sw = p->stride[2], pw = p->pad[2];
  const float *xd = x->data;
  float *yd = y->data;
  int nt = t3d_cpu_threads_for(be->threads, NC * Do * Ho * Wo * p->kernel[0] * p->kernel[1] * p->kernel[2]);
  float **bufs = calloc((size_t)nt, sizeof *bufs);
  t3d_status status = T3D_OK;

  if (!bufs)
    return t3d_error(T3D_ERR_NOMEM, "maxpool3d: out of memory");
  for (int t = 0; t < nt; t++)
    if (!(bufs[t] = malloc((size_t)(H * W + 2 * Ho * W) * sizeof(float)))) {
      status = t3d_error(T3D_ERR_NOMEM, "maxpool3d: out of memory for %lldx%lld scratch planes", (long long)H,
                         (long long)W);
      goto cleanup;
    }
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static)
  for (int64_t nc = 0; nc < NC; nc++)
    for (int64_t od = 0; od < Do; od++) {
      float *dmax = bufs[nt > 1 ? t3d_cpu_omp_thread() : 0], *hmax = dmax + H * W, *wmax = hmax + Ho * W;
      float *out = yd + (nc * Do + od) * Ho * Wo;
      int64_t dlo, dhi;
      window(od, p->kernel[0], p->stride[0], p->pad[0], D, &dlo, &dhi);
      memcpy(dmax, xd + (nc * D + dlo) * H * W, (size_t)(H * W) * sizeof *dmax);
      for (int64_t d = dlo + 1; d < dhi; d++)
        max_into(dmax, xd + (nc * D + d) * H * W, H * W);
      for (int64_t oh = 0; oh < Ho; oh++) {
        int64_t hlo, hhi;
        window(oh, p->kernel[1], p->stride[1], p->pad[1], H, &hlo, &hhi);
        memcpy(hmax + oh * W, dmax + hlo * W, (size_t)W * sizeof *hmax);
        for (int64_t h = hlo + 1; h < hhi; h++)
          max_into(hmax + oh * W, dmax + h * W, W);
      }
      if (Ho * W >= kw)
        sliding_max(wmax, hmax, Ho * W, kw);
      for (int64_t oh = 0; oh < Ho; oh++) {
        const float *row = hmax + oh * W, *slid = wmax + oh * W;
        for (int64_t ow = 0; ow < Wo; ow++) {
          int64_t start = ow * sw - pw, lo, hi;
          if (start >= 0 && start + kw <= W) {
            out[oh * Wo + ow] = slid[start];
            continue;
          }
          window(ow, kw, sw, pw, W, &lo, &hi);
          float m = row[lo];
          for (int64_t j = lo + 1; j < hi; j++)
            m = nanmax(m, row[j]);
          out[oh * Wo + ow] = m;
        }
      }
    }
cleanup:
  for (int t = 0; t < nt; t++)
    free(bufs[t]);
  free(bufs);
  return status;
}

T3D_SIMD_CLONES
static double sum_f32(const float *x, int64_t n)
{
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++)
    s += x[i];
  return s;
}

/* Means accumulate in double, as PyTorch's CPU kernels do for float input. */
t3d_status t3d_cpu_avgpool3d_global(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t NC = x->shape[0] * x->shape[1], S = x->shape[2] * x->shape[3] * x->shape[4];
  const float *xd = x->data;
  float *yd = y->data;
#pragma omp parallel for num_threads(t3d_cpu_threads_for(be->threads, NC * S)) schedule(static)
  for (int64_t nc = 0; nc < NC; nc++)
    yd[nc] = (float)(sum_f32(xd + nc * S, S) / (double)S);
  return T3D_OK;
}

/* PyTorch's adaptive bin i of `out` over `in`: [floor(i*in/out), ceil((i+1)*in/out)). */
static inline void adaptive_bin(int64_t i, int64_t in, int64_t out, int64_t *lo, int64_t *hi)
{
  *lo = (i * in) / out;
  *hi = ((i + 1) * in + out - 1) / out;
}

t3d_status t3d_cpu_avgpool3d_adaptive(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t NC = x->shape[0] * x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  const float *xd = x->data;
  float *yd = y->data;
#pragma omp parallel for collapse(2) num_threads(t3d_cpu_threads_for(be->threads, NC * D * H * W)) schedule(static)
  for (int64_t nc = 0; nc < NC; nc++)
    for (int64_t od = 0; od < Do; od++) {
      int64_t d0, d1;
      adaptive_bin(od, D, Do, &d0, &d1);
      for (int64_t oh = 0; oh < Ho; oh++) {
        int64_t h0, h1;
        adaptive_bin(oh, H, Ho, &h0, &h1);
        for (int64_t ow = 0; ow < Wo; ow++) {
          int64_t w0, w1;
          double s = 0.0;
          adaptive_bin(ow, W, Wo, &w0, &w1);
          for (int64_t d = d0; d < d1; d++)
            for (int64_t h = h0; h < h1; h++)
              s += sum_f32(xd + ((nc * D + d) * H + h) * W + w0, w1 - w0);
          yd[((nc * Do + od) * Ho + oh) * Wo + ow] = (float)(s / (double)((d1 - d0) * (h1 - h0) * (w1 - w0)));
        }
      }
    }
  return T3D_OK;
}

/* Linear interpolation taps along one axis, align_corners=False with the output size given.
 * Matches torch 1.13 bit for bit (measured): the scale in/out is rounded to float, the source
 * coordinate (o + 0.5) * scale - 0.5 is computed in double, clamped at 0, and lambda rounded to
 * float; an axis of equal size is copied. */
typedef struct {
  int64_t i0, i1;
  float l0, l1;
} taps;

static void linear_taps(taps *t, int64_t in, int64_t out)
{
  const double scale = (double)((float)in / (float)out);
  for (int64_t o = 0; o < out; o++) {
    double src;
    int64_t i0;
    if (in == out) {
      t[o] = (taps){.i0 = o, .i1 = o, .l0 = 1.0f, .l1 = 0.0f};
      continue;
    }
    src = scale * ((double)o + 0.5) - 0.5;
    if (src < 0.0)
      src = 0.0;
    i0 = (int64_t)src;
    if (i0 > in - 1)
      i0 = in - 1;
    t[o].i0 = i0;
    t[o].i1 = i0 < in - 1 ? i0 + 1 : i0;
    t[o].l1 = (float)(src - (double)i0); /* in [0, 1): src >= 0 and i0 = floor(src) */
    t[o].l0 = 1.0f - t[o].l1;
  }
}

T3D_SIMD_CLONES
static void resample_row(float *restrict out, const float *restrict r00, const float *restrict r01,
                         const float *restrict r10, const float *restrict r11, const taps *tw, int64_t Wo,
                         float ld0, float ld1, float lh0, float lh1)
{
#pragma omp simd
  for (int64_t ow = 0; ow < Wo; ow++) {
    int64_t a = tw[ow].i0, b = tw[ow].i1;
    float l0 = tw[ow].l0, l1 = tw[ow].l1;
    out[ow] = ld0 * (lh0 * (l0 * r00[a] + l1 * r00[b]) + lh1 * (l0 * r01[a] + l1 * r01[b])) +
              ld1 * (lh0 * (l0 * r10[a] + l1 * r10[b]) + lh1 * (l0 * r11[a] + l1 * r11[b]));
  }
}

t3d_status t3d_cpu_resample_trilinear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x)
{
  const int64_t NC = x->shape[0] * x->shape[1], D = x->shape[2], H = x->shape[3], W = x->shape[4];
  const int64_t Do = y->shape[2], Ho = y->shape[3], Wo = y->shape[4];
  const float *xd = x->data;
  float *yd = y->data;
  taps *td = malloc((size_t)(Do + Ho + Wo) * sizeof *td), *th, *tw;

  if (!td)
    return t3d_error(T3D_ERR_NOMEM, "resample_trilinear: out of memory");
  th = td + Do;
  tw = th + Ho;
  linear_taps(td, D, Do);
  linear_taps(th, H, Ho);
  linear_taps(tw, W, Wo);
  const int nt = t3d_cpu_threads_for(be->threads, NC * Do * Ho * Wo * 8);
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static)
  for (int64_t nc = 0; nc < NC; nc++)
    for (int64_t od = 0; od < Do; od++) {
      const float *p0 = xd + (nc * D + td[od].i0) * H * W, *p1 = xd + (nc * D + td[od].i1) * H * W;
      for (int64_t oh = 0; oh < Ho; oh++) {
        int64_t h0 = th[oh].i0 * W, h1 = th[oh].i1 * W;
        resample_row(yd + ((nc * Do + od) * Ho + oh) * Wo, p0 + h0, p0 + h1, p1 + h0, p1 + h1, tw, Wo, td[od].l0,
                     td[od].l1, th[oh].l0, th[oh].l1);
      }
    }
  free(td);
  return T3D_OK;
}
