/* The bf16 GEMM block of the CPU backend (bf16 A and B, fp32 accumulation) in four kernels,
 * AMX, AVX512-BF16, AVX2 and scalar, plus the bf16 weight layout and B packing they share (see
 * bf16.h). Not the convolutions or linear themselves (conv_bf16.c) and not ISA detection
 * (bf16_isa.c). The native kernels carry target attributes: compiled everywhere, run only where
 * t3d_cpu_bf16_isa says the CPU has them. */
#include "config.h"

#include <assert.h>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/cpu_simd.h"

static int64_t round32(int64_t n) { return (n + 31) / 32 * 32; }

/* ---- weight layout ------------------------------------------------------------------------- */

bool t3d_bf16_layout_of(t3d_op op, const t3d_tensor *w, t3d_bf16_layout *out)
{
  memset(out, 0, sizeof *out);
  if (op == T3D_OP_CONV3D && w->ndim == 5) {
    out->m = w->shape[0];
    out->k = w->shape[1] * w->shape[2] * w->shape[3] * w->shape[4];
    out->rows = round32(out->m);
  } else if (op == T3D_OP_CONV3D_TRANSPOSE && w->ndim == 5) {
    out->m = w->shape[1] * w->shape[2] * w->shape[3] * w->shape[4];
    out->k = w->shape[0];
    out->rows = round32(out->m) + 32;
  } else if (op == T3D_OP_LINEAR && w->ndim == 2) {
    out->m = w->shape[0];
    out->k = w->shape[1];
    out->rows = round32(out->m);
  } else {
    return false;
  }
  out->kpad = round32(out->k);
  return out->m > 0 && out->k > 0;
}

t3d_status t3d_cpu_bf16_pack_weight(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op)
{
  t3d_bf16_layout l;
  void *data = NULL;
  char d[96];
  memset(dev, 0, sizeof *dev);
  if (host->dtype != T3D_F32 || !host->data || !t3d_bf16_layout_of(op, host, &l))
    return t3d_error(T3D_ERR_SHAPE, "bf16 weights for %s: %s is not an f32 weight of that op", t3d_op_name(op),
                     t3d_tensor_describe(host, d, sizeof d));
  size_t bytes = (size_t)l.rows * (size_t)l.kpad * sizeof(uint16_t);
  T3D_TRY(be->ops->alloc(be, &data, bytes));
  uint16_t *a = data;
  const float *h = host->data;
  memset(a, 0, bytes);
  for (int64_t r = 0; r < l.m; r++)
    for (int64_t c = 0; c < l.k; c++) {
      /* conv3d_transpose stores the transpose: A[(co, tap)][ci] = w[ci][co][tap]; linear stores
       * B strips: output o is column o % 32 of strip o / 32, input pairs side by side */
      uint16_t v = t3d_f32_to_bf16(op == T3D_OP_CONV3D_TRANSPOSE ? h[c * l.m + r] : h[r * l.k + c]);
      if (op == T3D_OP_LINEAR)
        a[(r / 32) * l.kpad * 32 + (c / 2) * 64 + (r % 32) * 2 + c % 2] = v;
      else
        a[r * l.kpad + c] = v;
    }
  dev->dtype = T3D_BF16;
  dev->ndim = host->ndim;
  memcpy(dev->shape, host->shape, sizeof dev->shape);
  dev->data = data;
  dev->owned = false;
  dev->layout = T3D_LAYOUT_PACKED;
  return T3D_OK;
}

/* ---- B packing ----------------------------------------------------------------------------- */

/* Vectorised per ISA (cpu_simd.h): the packing runs once per K pair and column of every tile, so
 * on the native paths it is a sizeable part of the time next to the GEMM itself. */
T3D_SIMD_CLONES void t3d_cpu_bf16_pack_pair(uint16_t *dst, int64_t sstride, int64_t ns, const float *r0,
                                            const float *r1, int64_t n)
{
  for (int64_t s = 0; s < ns; s++) {
    uint16_t *d = dst + s * sstride;
    int64_t j0 = s * 32, cnt = n - j0 < 0 ? 0 : n - j0 > 32 ? 32 : n - j0;
    const float *a = r0 + j0;
    if (r1) {
      const float *b = r1 + j0;
#pragma omp simd
      for (int64_t j = 0; j < cnt; j++) {
        d[2 * j] = t3d_bf16_round(a[j]);
        d[2 * j + 1] = t3d_bf16_round(b[j]);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < cnt; j++) {
        d[2 * j] = t3d_bf16_round(a[j]);
        d[2 * j + 1] = 0;
      }
    }
    if (cnt < 32) memset(d + 2 * cnt, 0, (size_t)(32 - cnt) * 2 * sizeof *d);
  }
}

/* ---- kernels --------------------------------------------------------------------------------
 * Each computes C[mb, ns*32] (+)= A[mb, kc] B for whole 32 x 32 blocks. Within a K pair the even
 * product is added before the odd one (the AMX order); both are exact in fp32. */

/* The two bf16 of A's pair kp in row ar, as one 32-bit word (even K value in the low half). */
static inline uint32_t a_pair(const uint16_t *ar, int64_t kp)
{
  uint32_t v;
  memcpy(&v, ar + 2 * kp, sizeof v);
  return v;
}

static void block_scalar(int64_t mb, int64_t ns, int64_t kc, const uint16_t *a, int64_t lda, const uint16_t *b, int64_t bstride,
                         float *c, int64_t ldc, bool zero)
{
  for (int64_t s = 0; s < ns; s++) {
    const uint16_t *bs = b + s * bstride;
    for (int64_t m = 0; m < mb; m++) {
      const uint16_t *ar = a + m * lda;
      float *cr = c + m * ldc + s * 32, acc[32];
      for (int j = 0; j < 32; j++) acc[j] = zero ? 0.0f : cr[j];
      for (int64_t kp = 0; kp < kc / 2; kp++) {
        float a0 = t3d_bf16_widen(ar[2 * kp]), a1 = t3d_bf16_widen(ar[2 * kp + 1]);
        const uint16_t *bp = bs + kp * 64;
        for (int j = 0; j < 32; j++) {
          acc[j] += a0 * t3d_bf16_widen(bp[2 * j]);
          acc[j] += a1 * t3d_bf16_widen(bp[2 * j + 1]);
        }
      }
      memcpy(cr, acc, sizeof acc);
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* 4 rows x 16 columns per register tile: 8 accumulators, 4 widened B vectors, 2 broadcasts. */
__attribute__((target("avx2,fma"))) static void block_avx2(int64_t mb, int64_t ns, int64_t kc, const uint16_t *a,
                                                           int64_t lda, const uint16_t *b, int64_t bstride, float *c, int64_t ldc,
                                                           bool zero)
{
  const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
  for (int64_t s = 0; s < ns; s++) {
    const uint16_t *bs = b + s * bstride;
    for (int h = 0; h < 2; h++)
      for (int64_t m = 0; m < mb; m += 4) {
        __m256 acc[4][2];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
          for (int v = 0; v < 2; v++)
            acc[r][v] = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(c + (m + r) * ldc + s * 32 + h * 16 + v * 8);
        for (int64_t kp = 0; kp < kc / 2; kp++) {
          const uint16_t *bp = bs + kp * 64 + h * 32;
          __m256i v0 = _mm256_loadu_si256((const __m256i *)bp), v1 = _mm256_loadu_si256((const __m256i *)(bp + 16));
          __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), o0 = _mm256_castsi256_ps(_mm256_and_si256(v0, hi));
          __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), o1 = _mm256_castsi256_ps(_mm256_and_si256(v1, hi));
#pragma GCC unroll 4
          for (int r = 0; r < 4; r++) {
            uint32_t p = a_pair(a + (m + r) * lda, kp);
            __m256 a0 = _mm256_castsi256_ps(_mm256_set1_epi32((int)(p << 16)));
            __m256 a1 = _mm256_castsi256_ps(_mm256_set1_epi32((int)(p & 0xffff0000u)));
            acc[r][0] = _mm256_fmadd_ps(a1, o0, _mm256_fmadd_ps(a0, e0, acc[r][0]));
            acc[r][1] = _mm256_fmadd_ps(a1, o1, _mm256_fmadd_ps(a0, e1, acc[r][1]));
          }
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
          for (int v = 0; v < 2; v++) _mm256_storeu_ps(c + (m + r) * ldc + s * 32 + h * 16 + v * 8, acc[r][v]);
      }
  }
}

/* 8 rows x 32 columns per register tile: 16 zmm accumulators, 2 B vectors of 16 pairs, one
 * broadcast A pair per row; vdpbf16ps adds both products of a pair into each fp32 lane. */
__attribute__((target("avx512f,avx512bf16"))) static void block_avx512bf16(int64_t mb, int64_t ns, int64_t kc,
                                                                           const uint16_t *a, int64_t lda,
                                                                           const uint16_t *b, int64_t bstride, float *c, int64_t ldc,
                                                                           bool zero)
{
  for (int64_t s = 0; s < ns; s++) {
    const uint16_t *bs = b + s * bstride;
    for (int64_t m = 0; m < mb; m += 8) {
      __m512 acc[8][2];
#pragma GCC unroll 8
      for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++)
          acc[r][v] = zero ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (m + r) * ldc + s * 32 + v * 16);
      for (int64_t kp = 0; kp < kc / 2; kp++) {
        __m512i b0 = _mm512_loadu_si512(bs + kp * 64), b1 = _mm512_loadu_si512(bs + kp * 64 + 32);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
          __m512i ap = _mm512_set1_epi32((int)a_pair(a + (m + r) * lda, kp));
          acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)ap, (__m512bh)b0);
          acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)ap, (__m512bh)b1);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++) _mm512_storeu_ps(c + (m + r) * ldc + s * 32 + v * 16, acc[r][v]);
    }
  }
}

/* The same operands on fp32 FMAs (the avx512f ISA): 8 rows x 32 columns per register tile, 16
 * accumulators. A's 8 rows are widened to fp32 once per row block and K chunk (AF_KC), so each
 * product takes a plain broadcast; B's 16-column pair vectors are split in registers into the even
 * and the odd K value's columns (a 16-bit shift, an and). Per K pair 32 FMAs against 4 splits and
 * 16 broadcast loads, where vdpbf16ps needs 16 instructions: the FMA form wins on CPUs that issue
 * vdpbf16ps at under half the FMA rate. Even product before odd, as every kernel here, and both
 * exact: the results equal block_avx2's bit for bit. */
#define AF_KC 512
__attribute__((target("avx512f"))) static void block_avx512f(int64_t mb, int64_t ns, int64_t kc, const uint16_t *a,
                                                             int64_t lda, const uint16_t *b, int64_t bstride, float *c,
                                                             int64_t ldc, bool zero)
{
  float aw[8 * AF_KC] __attribute__((aligned(64))); /* [row][k] of the block, fp32 */
  const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
  for (int64_t m = 0; m < mb; m += 8)
    for (int64_t k0 = 0; k0 < kc; k0 += AF_KC) {
      const int64_t kn = kc - k0 < AF_KC ? kc - k0 : AF_KC; /* a multiple of 32 */
      for (int r = 0; r < 8; r++)
        for (int64_t k = 0; k < kn; k += 16) {
          __m256i h = _mm256_loadu_si256((const __m256i *)(a + (m + r) * lda + k0 + k));
          _mm512_store_si512(aw + r * AF_KC + k, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        }
      const bool from_zero = zero && k0 == 0;
      for (int64_t s = 0; s < ns; s++) {
        const uint16_t *bs = b + s * bstride + k0 * 32;
        float *cs = c + m * ldc + s * 32;
        __m512 acc[8][2];
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
          for (int v = 0; v < 2; v++) acc[r][v] = from_zero ? _mm512_setzero_ps() : _mm512_loadu_ps(cs + r * ldc + v * 16);
        for (int64_t kp = 0; kp < kn / 2; kp++) {
          const __m512i v0 = _mm512_loadu_si512(bs + kp * 64), v1 = _mm512_loadu_si512(bs + kp * 64 + 32);
          const __m512 e0 = _mm512_castsi512_ps(_mm512_slli_epi32(v0, 16));
          const __m512 o0 = _mm512_castsi512_ps(_mm512_and_si512(v0, hi));
          const __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16));
          const __m512 o1 = _mm512_castsi512_ps(_mm512_and_si512(v1, hi));
          const float *ak = aw + 2 * kp;
#pragma GCC unroll 8
          for (int r = 0; r < 8; r++) {
            const __m512 a0 = _mm512_set1_ps(ak[r * AF_KC]), a1 = _mm512_set1_ps(ak[r * AF_KC + 1]);
            acc[r][0] = _mm512_fmadd_ps(a1, o0, _mm512_fmadd_ps(a0, e0, acc[r][0]));
            acc[r][1] = _mm512_fmadd_ps(a1, o1, _mm512_fmadd_ps(a0, e1, acc[r][1]));
          }
        }
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
          for (int v = 0; v < 2; v++) _mm512_storeu_ps(cs + r * ldc + v * 16, acc[r][v]);
      }
    }
}

/* AMX: tiles 0-3 hold a 32 x 32 C block (2 x 2 tiles of 16 x 16 fp32), 4-5 two A tiles of
 * 16 rows x 32 K, 6-7 two B tiles of 16 K pairs x 16 columns (a strip's row is 128 bytes). */
typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_config;

__attribute__((target("amx-tile,amx-bf16"))) static void block_amx(int64_t mb, int64_t ns, int64_t kc,
                                                                   const uint16_t *a, int64_t lda, const uint16_t *b, int64_t bstride,
                                                                   float *c, int64_t ldc, bool zero)
{
  amx_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  /* the tile asm names only part of what it reads: make every store before it happen first */
  __asm__ volatile("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
  const long sa = (long)(lda * 2), sb = 128, sc = (long)(ldc * 4);
  for (int64_t m = 0; m < mb; m += 32)
    for (int64_t s = 0; s < ns; s++) {
      const uint16_t *bs = b + s * bstride, *a0 = a + m * lda, *a1 = a + (m + 16) * lda;
      float *c0 = c + m * ldc + s * 32, *c1 = c0 + 16 * ldc;
      if (zero) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      } else {
        _tile_loadd(0, c0, sc);
        _tile_loadd(1, c0 + 16, sc);
        _tile_loadd(2, c1, sc);
        _tile_loadd(3, c1 + 16, sc);
      }
      for (int64_t k = 0; k < kc; k += 32) {
        _tile_loadd(4, a0 + k, sa);
        _tile_loadd(5, a1 + k, sa);
        _tile_loadd(6, bs + k * 32, sb);
        _tile_loadd(7, bs + k * 32 + 32, sb);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, c0, sc);
      _tile_stored(1, c0 + 16, sc);
      _tile_stored(2, c1, sc);
      _tile_stored(3, c1 + 16, sc);
    }
  __asm__ volatile("" ::: "memory");
  _tile_release();
}
#endif

void t3d_cpu_bf16_gemm_block(t3d_cpu_isa isa, int64_t mb, int64_t ns, int64_t kc, const uint16_t *a, int64_t lda,
                             const uint16_t *b, int64_t bstride, float *c, int64_t ldc, bool zero)
{
  assert(mb % 32 == 0 && kc % 32 == 0 && ldc >= ns * 32 && bstride >= kc * 32);
  if (mb <= 0 || ns <= 0) return;
#if defined(__x86_64__) && defined(__GNUC__)
  switch (isa) {
  case T3D_CPU_ISA_AMX: block_amx(mb, ns, kc, a, lda, b, bstride, c, ldc, zero); return;
  case T3D_CPU_ISA_AVX512BF16: block_avx512bf16(mb, ns, kc, a, lda, b, bstride, c, ldc, zero); return;
  case T3D_CPU_ISA_AVX512F: block_avx512f(mb, ns, kc, a, lda, b, bstride, c, ldc, zero); return;
  case T3D_CPU_ISA_AVX2: block_avx2(mb, ns, kc, a, lda, b, bstride, c, ldc, zero); return;
  default: break;
  }
#endif
  (void)isa;
  block_scalar(mb, ns, kc, a, lda, b, bstride, c, ldc, zero);
}
