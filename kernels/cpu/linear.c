/* CPU linear layer (F.linear through t3d_cpu_sgemm) and multi-head scaled dot-product attention
 * with a key padding mask (per batch, head and block of queries: GEMM, masked softmax, GEMM).
 * fp32. No causal mask, no dropout. Shapes were checked by kernels/backend.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_simd.h"

/* Linear weights in t3d_cpu_sgemm_packed's layout, made once here instead of per call (packing the
 * [Out, In] weight of every GEMM was ~15 % of the text tower's time). Only where t3d's own GEMM
 * runs: OpenBLAS, where it fits this CPU, packs in its own way. */
t3d_status t3d_cpu_pack_weight_f32(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op,
                                   bool *packed)
{
  void *data = NULL;
  *packed = false;
  if (op != T3D_OP_LINEAR || host->ndim != 2 || t3d_cpu_openblas_fits())
    return T3D_OK;
  const int64_t out = host->shape[0], in = host->shape[1];
  T3D_TRY(be->ops->alloc(be, &data, t3d_cpu_sgemm_packed_b_floats(out, in) * sizeof(float)));
  t3d_cpu_sgemm_pack_b(data, true, host->data, in, out, in);
  memset(dev, 0, sizeof *dev);
  dev->dtype = T3D_F32;
  dev->ndim = 2;
  dev->shape[0] = out;
  dev->shape[1] = in;
  dev->data = data;
  dev->layout = T3D_LAYOUT_PACKED;
  *packed = true;
  return T3D_OK;
}

/* y[M, Out] = x[M, In] w[Out, In]^T + b: y is filled with b first and the GEMM adds to it. */
t3d_status t3d_cpu_linear(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                          const t3d_tensor *b)
{
  const int64_t in = w->shape[1], out = w->shape[0], M = t3d_tensor_numel(x) / in;
  float *yd = y->data;
  if (w->layout == T3D_LAYOUT_PACKED) { /* the bias goes in with the GEMM's first K slice */
    t3d_cpu_sgemm_packed_bias(false, M, out, in, x->data, in, w->data, b ? b->data : NULL, yd, out, be->threads);
    return T3D_OK;
  }
  if (b) {
    const float *bd = b->data;
#pragma omp parallel for num_threads(t3d_cpu_threads_for(be->threads, M * out)) schedule(static)
    for (int64_t i = 0; i < M; i++)
      memcpy(yd + i * out, bd, (size_t)out * sizeof *yd);
  }
  t3d_cpu_sgemm(false, true, M, out, in, 1.0f, x->data, in, w->data, in, b ? 1.0f : 0.0f, yd, out, be->threads);
  return T3D_OK;
}

/* Softmax down the columns of s[Lk, n] (one column per query), skipping masked keys (their
 * rows become 0). Leaves the numerators in s and 1/sum per column in inv, so the caller scales
 * the n output rows instead of the Lk x n probabilities. Columns run in SIMD lanes. */
T3D_SIMD_CLONES
static void column_softmax(float *s, float *inv, float *colmax, int64_t Lk, int64_t n, const int32_t *mask)
{
  for (int64_t i = 0; i < n; i++) {
    colmax[i] = -INFINITY;
    inv[i] = 0.0f;
  }
  for (int64_t j = 0; j < Lk; j++) {
    const float *sj = s + j * n;
    if (mask && !mask[j])
      continue;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) /* NaN is ignored here but reaches the sum below */
      colmax[i] = sj[i] > colmax[i] ? sj[i] : colmax[i];
  }
  for (int64_t j = 0; j < Lk; j++) {
    float *sj = s + j * n;
    if (mask && !mask[j]) {
      memset(sj, 0, (size_t)n * sizeof *sj);
      continue;
    }
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float e = t3d_exp_nonpos(sj[i] - colmax[i]);
      sj[i] = e;
      inv[i] += e;
    }
  }
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    inv[i] = 1.0f / inv[i];
}

/* y[b, i, h*Dh:(h+1)*Dh] = softmax(q_bh k_bh^T / sqrt(Dh), masked keys -inf) v_bh.
 * Per task (batch, head, block of queries) the scores are computed transposed, s = k q^T
 * [Lk, rows], so that the softmax runs across SIMD lanes and the second GEMM reads s with
 * contiguous packing. A batch whose keys are all masked gets zeros (PyTorch would give NaN;
 * zeros keep a padded batch entry from poisoning later sums). Where t3d's AVX-512 GEMM kernel runs,
 * each task is one fused head instead (t3d_cpu_attention_head in gemm.c: 32 queries at a time,
 * their scores, softmax and output in L1/L2, no score matrix per head). */
t3d_status t3d_cpu_attention(t3d_backend *be, t3d_tensor *y, const t3d_tensor *q, const t3d_tensor *k,
                             const t3d_tensor *v, const t3d_tensor *key_mask, int heads)
{
  const int64_t B = q->shape[0], Lq = q->shape[1], Lk = k->shape[1], E = q->shape[2], Dh = E / heads;
  const float scale = 1.0f / sqrtf((float)Dh);
  const float *qd = q->data, *kd = k->data, *vd = v->data;
  const int32_t *mask = key_mask ? key_mask->data : NULL;
  float *yd = y->data, **scratch = NULL;
  int nt = t3d_cpu_threads_for(be->threads, B * heads * Lq * Lk * Dh);
  int64_t qblock, qblocks, tasks;
  t3d_status status = T3D_OK;

  /* Query block. Fused (AVX-512, t3d_cpu_attention_head): a whole head per task, split into blocks
   * of a multiple of 32 rows (its own query block) only when there would be fewer than two tasks a
   * thread. Else: scores of at most 256 Ki floats (1 MiB, L2-sized), one block per head when it
   * fits, split further only when there would be fewer tasks than threads. */
  const size_t fused = t3d_cpu_attention_head_floats(Lk, Dh);
  if (fused) {
    qblock = Lq;
    while (qblock > 32 && B * heads * ((Lq + qblock - 1) / qblock) < 2 * (int64_t)nt)
      qblock = (qblock / 2 + 31) / 32 * 32;
  } else {
    qblock = ((int64_t)1 << 18) / Lk;
    qblock = qblock < 16 ? 16 : qblock > Lq ? Lq : qblock;
    while (qblock > 16 && B * heads * ((Lq + qblock - 1) / qblock) < nt)
      qblock = (qblock + 1) / 2;
  }
  qblocks = (Lq + qblock - 1) / qblock;
  tasks = B * heads * qblocks;
  if (nt > tasks)
    nt = (int)tasks;
  const size_t per_thread = fused ? fused : (size_t)(qblock * (Lk + 2));
  scratch = calloc((size_t)nt, sizeof *scratch);
  if (!scratch)
    return t3d_error(T3D_ERR_NOMEM, "attention: out of memory");
  for (int t = 0; t < nt; t++)
    if (!(scratch[t] = t3d_aligned_alloc(per_thread * sizeof(float)))) {
      status = t3d_error(T3D_ERR_NOMEM, "attention: out of memory for %zu floats of scratch (%lld keys, %lld queries)",
                         per_thread, (long long)Lk, (long long)qblock);
      goto cleanup;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic)
  for (int64_t t = 0; t < tasks; t++) {
    const int64_t bi = t / (heads * qblocks), h = (t / qblocks) % heads, i0 = (t % qblocks) * qblock;
    const int64_t rows = Lq - i0 < qblock ? Lq - i0 : qblock;
    const int32_t *m = mask ? mask + bi * Lk : NULL;
    const float *qb = qd + (bi * Lq + i0) * E + h * Dh;
    const float *kb = kd + bi * Lk * E + h * Dh, *vb = vd + bi * Lk * E + h * Dh;
    float *yb = yd + (bi * Lq + i0) * E + h * Dh, *s = scratch[nt > 1 ? t3d_cpu_omp_thread() : 0];
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
    if (fused) {
      t3d_cpu_attention_head(qb, kb, vb, E, rows, Lk, Dh, scale, m, yb, E, s);
      continue;
    }
    float *inv = s + Lk * rows, *colmax = inv + rows;
    t3d_cpu_sgemm_blocked(false, true, Lk, rows, Dh, scale, kb, E, qb, E, 0.0f, s, rows, 1);
    column_softmax(s, inv, colmax, Lk, rows, m);
    t3d_cpu_sgemm_blocked(true, false, rows, Dh, Lk, 1.0f, s, rows, vb, E, 0.0f, yb, E, 1);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t d = 0; d < Dh; d++)
        yb[i * E + d] *= inv[i];
  }
cleanup:
  for (int t = 0; t < nt; t++)
    t3d_aligned_free(scratch[t]);
  free(scratch);
  return status;
}
