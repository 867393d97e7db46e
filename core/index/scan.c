/* Exact nearest-neighbour scan over an in-memory embedding matrix (t3d_index_matrix): fp32,
 * fp16 and int8 row copies, AVX2/FMA/F16C kernels picked at run time with portable C kernels
 * as the reference, OpenMP threads over row blocks, per-thread top lists merged at the end.
 * Not an approximate index (no graph, no clustering): every row is scored on every query. */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/index/index.h"
#include "core/index/index_internal.h"

struct t3d_index_matrix {
  size_t n;
  int dim;
  float *f32;       /* [n][dim], L2-normalised: exact scores and rescoring */
  uint16_t *f16;    /* [n][dim] IEEE half, or NULL */
  int8_t *i8;       /* [n][dim] round(x / scale), or NULL */
  float *i8_scale;  /* [n]: max|x| / 127 per row */
  int64_t *ids;     /* [n] */
  int32_t *dates;   /* [n] YYYYMMDD, 0 = unknown */
};

/* ---- conversions (portable; run once at load) -------------------------------------------- */

static uint16_t f32_to_f16(float f)
{
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  if (exp >= 31) return (uint16_t)(sign | 0x7c00); /* finite inputs only: saturate to inf */
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t)(14 - exp), half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* round to nearest even; carries into exp */
  return (uint16_t)h;
}

static float f16_to_f32(uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
  if (exp == 0) {
    float f = ldexpf((float)mant, -24);
    return sign ? -f : f;
  }
  x = exp == 31 ? sign | 0x7f800000 | (mant << 13) : sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  memcpy(&f, &x, 4);
  return f;
}

/* v[dim] as int8 with scale; returns the scale (0 for a zero row). */
static float quantize_i8(const float *v, int dim, int8_t *out)
{
  float mx = 0;
  for (int i = 0; i < dim; i++) mx = fmaxf(mx, fabsf(v[i]));
  float scale = mx / 127.0f, inv = mx > 0 ? 127.0f / mx : 0;
  for (int i = 0; i < dim; i++) out[i] = (int8_t)lrintf(v[i] * inv);
  return scale;
}

/* ---- kernels: one row dot product each; portable references first ------------------------- */

static float dot_f32_ref(const float *a, const float *b, int n)
{
  float s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static float dot_f16_ref(const uint16_t *a, const float *b, int n)
{
  float s = 0;
  for (int i = 0; i < n; i++) s += f16_to_f32(a[i]) * b[i];
  return s;
}

static int32_t dot_i8_ref(const int8_t *a, const int8_t *b, int n)
{
  int32_t s = 0;
  for (int i = 0; i < n; i++) s += (int32_t)a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v)
{
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *a, const float *b, int n)
{
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const uint16_t *a, const float *b, int n)
{
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
    __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i + 8)));
    s0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))), _mm256_loadu_ps(b + i), s0);
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += f16_to_f32(a[i]) * b[i];
  return s;
}

/* int8 row x int8 query, exact in int32: |q| times sign(r, q) keeps one operand unsigned for
 * maddubs (u8 x s8 -> pairwise s16 sums; |values| <= 127 so 2 * 127 * 127 cannot saturate),
 * then madd with ones widens to int32. Equals the reference bit for bit. */
__attribute__((target("avx2"))) static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, int n)
{
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  int i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256i q0 = _mm256_loadu_si256((const __m256i *)(b + i)), q1 = _mm256_loadu_si256((const __m256i *)(b + i + 32));
    __m256i r0 = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a + i)), q0);
    __m256i r1 = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a + i + 32)), q1);
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(q0), r0), ones));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(q1), r1), ones));
  }
  for (; i + 32 <= n; i += 32) {
    __m256i q0 = _mm256_loadu_si256((const __m256i *)(b + i));
    __m256i r0 = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a + i)), q0);
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(q0), r0), ones));
  }
  s0 = _mm256_add_epi32(s0, s1);
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(s0), _mm256_extracti128_si256(s0, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
  int32_t s = _mm_cvtsi128_si32(x);
  for (; i < n; i++) s += (int32_t)a[i] * b[i];
  return s;
}

typedef struct {
  float (*f32)(const float *, const float *, int);
  float (*f16)(const uint16_t *, const float *, int);
  int32_t (*i8)(const int8_t *, const int8_t *, int);
} kernels;

/* AVX2 kernels when the CPU has AVX2, FMA and F16C and T3D_INDEX_NO_SIMD is unset (the tests
 * set it to run the references through the same search code). */
static kernels pick_kernels(void)
{
  kernels k = {dot_f32_ref, dot_f16_ref, dot_i8_ref};
  const char *off = getenv("T3D_INDEX_NO_SIMD");
  if ((!off || !*off || strcmp(off, "0") == 0) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    k = (kernels){dot_f32_avx2, dot_f16_avx2, dot_i8_avx2};
  return k;
}

/* ---- top lists ----------------------------------------------------------------------------- */

typedef struct {
  float score;
  size_t row;
} cand;

/* a ranks before b: higher score, then smaller row. */
static inline bool before(float sa, size_t ra, float sb, size_t rb)
{
  return sa > sb || (sa == sb && ra < rb);
}

/* Keeps the best cap candidates sorted best first; *n grows up to cap. */
static inline void top_push(cand *t, size_t *n, size_t cap, float score, size_t row)
{
  if (*n == cap && !before(score, row, t[cap - 1].score, t[cap - 1].row)) return;
  size_t i = *n < cap ? (*n)++ : cap - 1;
  while (i > 0 && before(score, row, t[i - 1].score, t[i - 1].row)) {
    t[i] = t[i - 1];
    i--;
  }
  t[i] = (cand){score, row};
}

static int cmp_cand(const void *a, const void *b)
{
  const cand *x = a, *y = b;
  return before(x->score, x->row, y->score, y->row) ? -1 : before(y->score, y->row, x->score, x->row) ? 1 : 0;
}

/* ---- matrix -------------------------------------------------------------------------------- */

/* Takes ownership of v (normalised in place), ids and dates, freeing them on failure. */
t3d_status t3d_index_matrix_adopt(float *v, int64_t *ids, int32_t *dates, size_t n, int dim, unsigned modes_mask,
                                  t3d_index_matrix **out)
{
  t3d_index_matrix *m = NULL;
  t3d_status s = T3D_OK;
  *out = NULL;
  if (n == 0 || dim <= 0 || dim > T3D_INDEX_MAX_DIM) {
    s = t3d_error(T3D_ERR_INVALID_ARG, "matrix of %zu rows of dimension %d", n, dim);
    goto fail;
  }
  size_t nd = n * (size_t)dim;
  if (!(m = calloc(1, sizeof *m))) {
    s = t3d_error(T3D_ERR_NOMEM, "search matrix");
    goto fail;
  }
  m->n = n, m->dim = dim, m->f32 = v, m->ids = ids, m->dates = dates;
  v = NULL, ids = NULL, dates = NULL;
  if (((modes_mask & (1u << T3D_INDEX_SCAN_FP16)) && !(m->f16 = malloc(nd * sizeof *m->f16))) ||
      ((modes_mask & (1u << T3D_INDEX_SCAN_INT8)) &&
       (!(m->i8 = malloc(nd)) || !(m->i8_scale = malloc(n * sizeof *m->i8_scale))))) {
    s = t3d_error(T3D_ERR_NOMEM, "search matrix of %zu x %d", n, dim);
    goto fail;
  }
  bool bad = false;
#pragma omp parallel for schedule(static) reduction(|| : bad)
  for (size_t r = 0; r < n; r++) {
    float *x = m->f32 + r * (size_t)dim;
    double ss = 0;
    for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
    if (!(ss > 0) || !isfinite(ss)) {
      bad = true;
      continue;
    }
    float inv = (float)(1.0 / sqrt(ss));
    for (int i = 0; i < dim; i++) x[i] *= inv;
    if (m->f16)
      for (int i = 0; i < dim; i++) m->f16[r * (size_t)dim + i] = f32_to_f16(x[i]);
    if (m->i8) m->i8_scale[r] = quantize_i8(x, dim, m->i8 + r * (size_t)dim);
  }
  if (bad) {
    s = t3d_error(T3D_ERR_INVALID_ARG, "search matrix: a row is zero or not finite and has no direction");
    goto fail;
  }
  *out = m;
  return T3D_OK;
fail:
  t3d_index_matrix_free(m);
  free(v), free(ids), free(dates);
  return s;
}

t3d_status t3d_index_matrix_create(const float *v, const int64_t *ids, const int32_t *dates, size_t n, int dim,
                                   unsigned modes_mask, t3d_index_matrix **out)
{
  *out = NULL;
  if (n == 0 || dim <= 0 || dim > T3D_INDEX_MAX_DIM)
    return t3d_error(T3D_ERR_INVALID_ARG, "matrix of %zu rows of dimension %d", n, dim);
  size_t nd = n * (size_t)dim;
  float *cv = malloc(nd * sizeof *cv);
  int64_t *ci = malloc(n * sizeof *ci);
  int32_t *cd = calloc(n, sizeof *cd);
  if (!cv || !ci || !cd) {
    free(cv), free(ci), free(cd);
    return t3d_error(T3D_ERR_NOMEM, "search matrix of %zu x %d", n, dim);
  }
  memcpy(cv, v, nd * sizeof *cv);
  for (size_t r = 0; r < n; r++) ci[r] = ids ? ids[r] : (int64_t)r;
  if (dates) memcpy(cd, dates, n * sizeof *cd);
  return t3d_index_matrix_adopt(cv, ci, cd, n, dim, modes_mask, out);
}

void t3d_index_matrix_free(t3d_index_matrix *m)
{
  if (!m) return;
  free(m->f32), free(m->f16), free(m->i8), free(m->i8_scale), free(m->ids), free(m->dates);
  free(m);
}

size_t t3d_index_matrix_rows(const t3d_index_matrix *m)
{
  return m->n;
}

int t3d_index_matrix_dim(const t3d_index_matrix *m)
{
  return m->dim;
}

size_t t3d_index_matrix_bytes(const t3d_index_matrix *m)
{
  size_t nd = m->n * (size_t)m->dim;
  return nd * 4 + (m->f16 ? nd * 2 : 0) + (m->i8 ? nd + m->n * 4 : 0) + m->n * 12;
}

t3d_index_scan_opts t3d_index_scan_default_opts(void)
{
  t3d_index_scan_opts o = {.mode = T3D_INDEX_SCAN_FP32, .oversample = 4, .min_date = 0, .exclude_id = -1};
  return o;
}

t3d_status t3d_index_matrix_search(const t3d_index_matrix *m, const float *q_in, size_t k,
                                   const t3d_index_scan_opts *opts, t3d_index_scored *out, size_t *nout)
{
  t3d_index_scan_opts o = opts ? *opts : t3d_index_scan_default_opts();
  const int dim = m->dim;
  float *q = NULL;
  int8_t *q8 = NULL;
  cand *all = NULL;
  t3d_status s = T3D_OK;
  *nout = 0;
  if (k == 0) return T3D_OK;
  if ((o.mode == T3D_INDEX_SCAN_FP16 && !m->f16) || (o.mode == T3D_INDEX_SCAN_INT8 && !m->i8) ||
      o.mode > T3D_INDEX_SCAN_INT8)
    return t3d_error(T3D_ERR_UNSUPPORTED, "search mode %d was not built for this matrix", (int)o.mode);
  size_t cap = o.mode == T3D_INDEX_SCAN_FP32 ? k : k * (o.oversample ? o.oversample : 1);
  if (cap > m->n) cap = m->n;
  if (!(q = malloc((size_t)dim * sizeof *q)) || !(q8 = malloc((size_t)dim))) {
    s = t3d_error(T3D_ERR_NOMEM, "query");
    goto cleanup;
  }
  double ss = 0;
  for (int i = 0; i < dim; i++) ss += (double)q_in[i] * q_in[i];
  if (!(ss > 0) || !isfinite(ss)) {
    s = t3d_error(T3D_ERR_INVALID_ARG, "query vector is zero or not finite");
    goto cleanup;
  }
  for (int i = 0; i < dim; i++) q[i] = (float)(q_in[i] / sqrt(ss));
  /* int8 mode: the query is quantised like the rows (its error, like theirs, is what the
   * oversampled fp32 rescoring absorbs); 127 * 127 * T3D_INDEX_MAX_DIM < 2^31. */
  float qscale = o.mode == T3D_INDEX_SCAN_INT8 ? quantize_i8(q, dim, q8) : 0;

  const kernels kn = pick_kernels();
  int nthreads = 1;
#ifdef _OPENMP
  nthreads = omp_get_max_threads();
  /* Below ~4M multiply-adds (about a millisecond on one core) one thread is faster: the
   * barrier at the end of a parallel region waits for every thread to be scheduled, which on a
   * busy machine costs milliseconds. */
  if (m->n * (size_t)dim < ((size_t)1 << 22)) nthreads = 1;
#endif
  if (!(all = malloc((size_t)nthreads * cap * sizeof *all))) {
    s = t3d_error(T3D_ERR_NOMEM, "candidate lists");
    goto cleanup;
  }
  size_t counts[256] = {0};
  if (nthreads > 256) nthreads = 256;
  /* Blocks of rows handed out dynamically: on a shared machine a descheduled thread's share
   * goes to the others instead of holding up the query. */
  const size_t block = 8192, nblocks = (m->n + block - 1) / block;
  const bool filter = o.min_date != 0 || o.exclude_id != -1;
#pragma omp parallel num_threads(nthreads)
  {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    size_t cnt = 0;
    cand *top = all + (size_t)t * cap;
#pragma omp for schedule(dynamic, 1) nowait
    for (size_t b = 0; b < nblocks; b++) {
      size_t hi = (b + 1) * block < m->n ? (b + 1) * block : m->n;
      for (size_t r = b * block; r < hi; r++) {
        if (filter && ((o.min_date && m->dates[r] < o.min_date) || m->ids[r] == o.exclude_id)) continue;
        float sc;
        if (o.mode == T3D_INDEX_SCAN_FP32)
          sc = kn.f32(m->f32 + r * (size_t)dim, q, dim);
        else if (o.mode == T3D_INDEX_SCAN_FP16)
          sc = kn.f16(m->f16 + r * (size_t)dim, q, dim);
        else
          sc = (float)kn.i8(m->i8 + r * (size_t)dim, q8, dim) * (m->i8_scale[r] * qscale);
        top_push(top, &cnt, cap, sc, r);
      }
    }
    counts[t] = cnt;
  }
  /* Merge the per-thread lists: compact, sort, keep cap. */
  size_t total = 0;
  for (int t = 0; t < nthreads; t++) {
    memmove(all + total, all + (size_t)t * cap, counts[t] * sizeof *all);
    total += counts[t];
  }
  if (o.mode != T3D_INDEX_SCAN_FP32)
    for (size_t i = 0; i < total; i++) /* exact rescoring of the quantised candidates */
      all[i].score = kn.f32(m->f32 + all[i].row * (size_t)dim, q, dim);
  qsort(all, total, sizeof *all, cmp_cand);
  size_t n = total < k ? total : k;
  for (size_t i = 0; i < n; i++) out[i] = (t3d_index_scored){m->ids[all[i].row], all[i].score};
  *nout = n;
cleanup:
  free(q), free(q8), free(all);
  return s;
}
