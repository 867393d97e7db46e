/* CPU linear layer (F.linear through t3d_cpu_sgemm) and multi-head scaled dot-product attention
 * with a key padding mask (per batch, head and block of queries: GEMM, masked softmax, GEMM).
 * fp32. No causal mask, no dropout. Shapes were checked by kernels/backend.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_simd.h"

/* y[M, Out] = x[M, In] w[Out, In]^T + b: y is filled with b first and the GEMM adds to it. */
t3d_status t3d_cpu_linear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *b)
{
  const int64_t in = w->shape[1], out = w->shape[0], M = t3d_tensor_numel(x) / in;
  float *yd = y->data;
  if (b) {
    const float *bd = b->data;
#pragma omp parallel for num_threads(t3d_cpu_threads_for(be->threads, M * out)) schedule(static)
    for (int64_t i = 0; i < M; i++)
      memcpy(yd + i * out, bd, (size_t)out * sizeof *yd);
  }
  t3d_cpu_sgemm(false, true, M, out, in, 1.0f, x->data, in, w->data, in, b ? 1.0f : 0.0f, yd, out, be->threads);
  return T3D_OK;
}

#define QBLOCK 64 /* query rows per task: scores block QBLOCK x Lk stays in L2 for Lk <= 1024 */

/* y[b, i, h*Dh:(h+1)*Dh] = softmax(q_bh k_bh^T / sqrt(Dh), masked keys -inf) v_bh.
 * A batch whose keys are all masked gets zeros (PyTorch would give NaN; zeros keep a padded
 * batch entry from poisoning later sums). */
t3d_status t3d_cpu_attention(t3d_backend *be, t3d_tensor *y, const t3d_tensor *q, const t3d_tensor *k,
                             const t3d_tensor *v, const t3d_tensor *key_mask, int heads)
{
  const int64_t B = q->shape[0], Lq = q->shape[1], Lk = k->shape[1], E = q->shape[2], Dh = E / heads;
  const int64_t qblocks = (Lq + QBLOCK - 1) / QBLOCK, tasks = B * heads * qblocks;
  const float scale = 1.0f / sqrtf((float)Dh);
  const float *qd = q->data, *kd = k->data, *vd = v->data;
  const int32_t *mask = key_mask ? key_mask->data : NULL;
  float *yd = y->data, **scores = NULL;
  int nt = t3d_cpu_threads_for(be->threads, B * heads * Lq * Lk * Dh);
  t3d_status status = T3D_OK;

  if (nt > tasks)
    nt = (int)tasks;
  scores = calloc((size_t)nt, sizeof *scores);
  if (!scores)
    return t3d_error(T3D_ERR_NOMEM, "attention: out of memory");
  for (int t = 0; t < nt; t++)
    if (!(scores[t] = t3d_aligned_alloc((size_t)(QBLOCK * Lk) * sizeof(float)))) {
      status = t3d_error(T3D_ERR_NOMEM, "attention: out of memory for a %dx%lld score block", QBLOCK, (long long)Lk);
      goto cleanup;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic)
  for (int64_t t = 0; t < tasks; t++) {
    const int64_t bi = t / (heads * qblocks), h = (t / qblocks) % heads, i0 = (t % qblocks) * QBLOCK;
    const int64_t rows = Lq - i0 < QBLOCK ? Lq - i0 : QBLOCK;
    const int32_t *m = mask ? mask + bi * Lk : NULL;
    const float *qb = qd + (bi * Lq + i0) * E + h * Dh, *kb = kd + bi * Lk * E + h * Dh, *vb = vd + bi * Lk * E + h * Dh;
    float *yb = yd + (bi * Lq + i0) * E + h * Dh, *s = scores[nt > 1 ? t3d_cpu_omp_thread() : 0];
    int64_t attended = Lk;

    if (m) {
      attended = 0;
      for (int64_t j = 0; j < Lk; j++)
        attended += m[j] != 0;
    }
    if (attended == 0) {
      for (int64_t i = 0; i < rows; i++)
        memset(yb + i * E, 0, (size_t)Dh * sizeof *yb);
      continue;
    }
    t3d_cpu_sgemm_blocked(false, true, rows, Lk, Dh, scale, qb, E, kb, E, 0.0f, s, Lk, 1);
    if (m)
      for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < Lk; j++)
          if (!m[j])
            s[i * Lk + j] = -INFINITY;
    t3d_cpu_softmax_rows(s, s, rows, Lk);
    t3d_cpu_sgemm_blocked(false, false, rows, Dh, Lk, 1.0f, s, Lk, vb, E, 0.0f, yb, E, 1);
  }
cleanup:
  for (int t = 0; t < nt; t++)
    t3d_aligned_free(scores[t]);
  free(scores);
  return status;
}
