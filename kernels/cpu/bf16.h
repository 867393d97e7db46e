/* The CPU backend's bf16 compute path for conv3d, conv3d_transpose and linear: which ISA runs it,
 * the weight layout made once at load, the bf16 GEMM block and the three ops built on it.
 * Private to kernels/cpu (model code asks for it with t3d_backend_params.precision); not the fp32
 * kernels (conv.c, gemm.c, linear.c), which stay the reference.
 *
 * Numerics, the same on every ISA: weights and activations are rounded to bf16 (round to nearest
 * even, 8 significant bits) as they are packed; each product of two bf16 values is exact in fp32
 * and is added to an fp32 accumulator (no bf16 partial sums, no rounding to bf16 at the output);
 * bias, residual and ReLU are applied in fp32. Between ops activations stay fp32 in memory: only
 * the GEMM operands are bf16. The ISAs differ only in the order of the two fp32 additions of a
 * K pair and in denormals (AVX512-BF16 and AMX flush them), i.e. by fp32 rounding noise; avx512f's
 * convolutions also in the fp32 algorithm (Winograd's fp32 transforms of the rounded operands,
 * within the fp32 kernels' own bounds: tests/test-bf16.c test_fma_paths).
 *   amx         _tile_dpbf16ps on 2x2 tiles of 16x16 (Intel Sapphire Rapids and later);
 *   avx512bf16  _mm512_dpbf16_ps, 8 rows x 32 columns in registers (Intel Cooper Lake, AMD Zen 4);
 *   avx512f     the same bf16 operands multiplied by fp32 AVX-512 FMAs (each product of two bf16 is
 *               exact in fp32, so only the fp32 summation differs): convolutions through the fp32
 *               kernels (conv.c: Winograd, packed) with x rounded to bf16 as they load it and the
 *               weights widened per call; transposed convolutions and linear layers through the
 *               GEMM block below (A widened, B's pairs split in registers). Taken where a CPU with
 *               AVX512-BF16 runs vdpbf16ps at under the multiply-add rate of its FMAs (measured,
 *               see bf16_isa.c), and on AVX-512 CPUs without AVX512-BF16;
 *   avx2        the portable path: bf16 widened to fp32 by a 16-bit shift, FMA in fp32;
 *   scalar      the same in plain C (bit-identical to avx2, which the tests check).
 * The native kernels are built with per-function target attributes, so the library stays
 * portable; t3d_cpu_bf16_isa picks one at run time (cpuid + xgetbv; AMX also needs the kernel's
 * permission for tile data, arch_prctl(ARCH_REQ_XCOMP_PERM), and falls back to avx512bf16 or
 * avx2 when refused). T3D_CPU_ISA=scalar|avx2|avx512f|avx512bf16|amx caps the choice (tests,
 * bisection): a cap is taken as asked where the CPU has it, even where avx512f would be faster.
 *
 * Tolerances (tests/test-bf16.c on fresh random data each run, tests/test-bf16-model.c on the
 * shipped t3d-tiny model and a phantom), why they hold:
 *  - per op, against the same op with the bf16-rounded operands summed in double:
 *    |y - ref| <= gamma_{K+3} * mag, gamma_n = n u / (1 - n u), u = 2^-24, mag = the op on |x|
 *    and |w| plus |bias| + |residual| (only fp32 accumulation error is left: catches layout and
 *    packing bugs; measured 2e-8..1.2e-7 relative);
 *  - per op, against the fp32 op: |y - y32| <= (2^-7 + 2^-16 + 2 gamma_{K+3}) * mag (each
 *    product carries two bf16 roundings of at most 2^-8 relative each, plus accumulation on both
 *    sides; measured 3e-4..3e-3 relative);
 *  - end to end, bf16 against fp32 on the same model and volume: embedding cosine >= 0.9999,
 *    each zero-shot probability within 0.01, segmentation labels equal on >= 99.5 % of voxels
 *    (labels can only flip where two classes' logits are within the rounding noise); and below
 *    that, the vision network's pooled feature cosine >= 0.9999 and its logits' relative RMS
 *    error <= 0.02 (t3d-tiny, measured: 0.999997 and 0.002).
 *  - the segmentation decoder's 3x3x3 layers (t3d_conv3d_params.tolerant) run Winograd F(2,3)
 *    on CPUs with AVX-512F: the transformed inputs and weights are what is rounded to bf16, and
 *    the bound is Winograd's (t3d_cpu_conv3d_wino3_bf16 below); the labels' tolerance holds.
 * Why bf16 at all: AVX512-BF16 does 2 multiply-adds per fp32 lane and AMX about 16x that, and
 * the operands take half the cache; the portable path is slower than fp32 and exists so that the
 * numerics are testable on every machine. */
#ifndef T3D_KERNELS_CPU_BF16_H
#define T3D_KERNELS_CPU_BF16_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  T3D_CPU_ISA_SCALAR = 0,
  T3D_CPU_ISA_AVX2,
  T3D_CPU_ISA_AVX512F,
  T3D_CPU_ISA_AVX512BF16,
  T3D_CPU_ISA_AMX,
  T3D_CPU_ISA_COUNT
} t3d_cpu_isa;

/* "scalar", "avx2", "avx512f", "avx512bf16", "amx". */
const char *t3d_cpu_isa_name(t3d_cpu_isa isa);
/* The ISA the bf16 path runs on: the fastest this CPU and kernel allow (avx512f instead of
 * avx512bf16 where vdpbf16ps is slower than FMAs), or the T3D_CPU_ISA cap; detected once per
 * process (thread-safe). Requests AMX tile permission the first time it sees AMX. */
t3d_cpu_isa t3d_cpu_bf16_isa(void);
/* The most this CPU has (capped by T3D_CPU_ISA, not demoted for speed): what tests iterate up to. */
t3d_cpu_isa t3d_cpu_bf16_hw_isa(void);
/* What --precision auto runs in bf16 on a CPU with this bf16 ISA and vdpbf16ps gain: a
 * t3d_backend.bf16_ops mask (t3d_backend_cpu_bf16_auto_ops applies it to this CPU). */
unsigned t3d_cpu_bf16_auto_ops(t3d_cpu_isa isa, double gain);
/* Test-only: run this ISA (capped by the hardware's) for this process (T3D_CPU_ISA_COUNT: back to
 * t3d_cpu_bf16_isa's choice). Returns the previous cap. Not thread-safe. */
t3d_cpu_isa t3d_cpu_bf16_cap_isa(t3d_cpu_isa cap);

/* ---- weight layout (made once at load by t3d_cpu_bf16_pack_weight) ------------------------
 * Convolution weights are the A operand of C[M, P] = A[M, K] * B[K, P] (P: output or input
 * positions, packed per tile from the activations), stored row-major as bf16 [rows][kpad] with
 * kpad = K rounded up to 32 and rows >= M rounded up to 32, zeros in the padding, so every
 * kernel reads whole 32 x 32 blocks:
 *   conv3d            w[Co, Ci, kD, kH, kW]: M = Co, K = Ci*kD*kH*kW (row = output channel);
 *   conv3d_transpose  w[Ci, Co, kD, kH, kW]: M = Co*kD*kH*kW (row = (co, tap)), K = Ci, i.e. the
 *                     transpose, with 32 extra zero rows (blocks start at a channel's first tap).
 * Linear weights are the B operand of y[T, Out] = x[T, In] * w^T (the tokens, converted once per
 * call, are A): w[Out, In], M = Out, K = In, in rows/32 B strips (layout below) of kpad/2 pairs
 * each, strip s holding outputs [32 s, 32 s + 32), strip stride kpad * 32 elements.
 * The tensor keeps the logical shape and dtype T3D_BF16; its bytes are this layout. */
typedef struct {
  int64_t m, k;       /* logical GEMM sizes */
  int64_t rows, kpad; /* stored sizes */
} t3d_bf16_layout;
/* false when op has no bf16 form or w's shape does not fit it */
bool t3d_bf16_layout_of(t3d_op op, const t3d_tensor *w, t3d_bf16_layout *out);
/* host f32 -> dev bf16 in the layout above (dev->data the backend's, t3d_backend_tensor_free). */
t3d_status t3d_cpu_bf16_pack_weight(t3d_backend *be, t3d_tensor *dev, const t3d_tensor *host, t3d_op op);

/* ---- the GEMM block --------------------------------------------------------------------------
 * B strips: 32 columns each, [kc/2][32][2] bf16 (the two K values of a pair side by side, as
 * vdpbf16ps and tdpbf16ps read them), strip s at b + s*bstride (>= kc*32).
 * C[mb, ns*32] (row stride ldc floats) = (zero ? 0 : C) + A[mb, kc] * B, A bf16 with row stride
 * lda elements. mb and kc are multiples of 32; C must hold all mb x ns*32 values. */
void t3d_cpu_bf16_gemm_block(t3d_cpu_isa isa, int64_t mb, int64_t ns, int64_t kc, const uint16_t *a, int64_t lda,
                             const uint16_t *b, int64_t bstride, float *c, int64_t ldc, bool zero);

/* f32 -> bf16, round to nearest even, NaN kept quiet (what t3d_f32_to_bf16 does), inline so the
 * packing loops vectorise. */
static inline uint16_t t3d_bf16_round(float f)
{
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uint32_t nan = (u >> 16) | 0x40u;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

static inline float t3d_bf16_widen(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* One K pair of every strip: dst points at pair row kp of strip 0 (strip stride `sstride`
 * elements); r0, r1 are fp32 rows of n values (r1 NULL: zeros, the padding past K); columns from
 * n to ns*32 are zero. */
void t3d_cpu_bf16_pack_pair(uint16_t *dst, int64_t sstride, int64_t ns, const float *r0, const float *r1, int64_t n);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 16 floats rounded to bf16 precision and kept as fp32 (widen(round(v)) lane by lane, NaN quiet):
 * what the avx512f ISA's fp32 kernels apply to x as they load it. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 t3d_bf16_round_ps(__m512 v)
{
  const __m512i u = _mm512_castps_si512(v), hi = _mm512_set1_epi32((int)0xffff0000u);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), hi);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_and_si512(_mm512_or_si512(u, _mm512_set1_epi32(0x00400000)), hi));
  return _mm512_castsi512_ps(r);
}
#endif

/* The avx512f ISA's conv3d (conv.c): the fp32 convolution kernels on bf16 operands (weights w
 * in the layout above, widened per call; x rounded to bf16 as the kernels load it). false (and
 * nothing done) where this build or CPU has no such kernel for the shape; else *st is the
 * result. */
bool t3d_cpu_conv3d_bf16_fma(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                             const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p,
                             t3d_status *st);

/* ---- the ops (w dtype T3D_BF16 in the layout above; everything else as the fp32 ops) -------- */
t3d_status t3d_cpu_conv3d_bf16(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                               const t3d_tensor *bias, const t3d_tensor *residual, const t3d_conv3d_params *p);
t3d_status t3d_cpu_conv3d_transpose_bf16(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                                         const t3d_tensor *bias, const t3d_conv3d_transpose_params *p);
t3d_status t3d_cpu_linear_bf16(t3d_backend *be, t3d_tensor *y, const t3d_tensor *x, const t3d_tensor *w,
                               const t3d_tensor *b);

/* The bf16 3x3x3 stride-1 padding-1 convolution by Winograd F(2x2x2, 3x3x3) (conv_wino.c): fp32
 * transforms, bf16 products in t3d_cpu_bf16_gemm_block on isa, weights wb in the conv3d layout
 * above (row stride kpad); x[N,Ci,D,H,W] -> y[N,Co,D,H,W]; bias, res may be NULL. Needs AVX-512F
 * (t3d_cpu_wino_avx512); t3d_cpu_conv3d_bf16 takes it by itself (t3d_cpu_conv3d_bf16_wino). Its
 * error bound is Winograd's own (see conv_wino.c), not the direct sum's of the bound above. */
t3d_status t3d_cpu_conv3d_wino3_bf16(int threads, t3d_cpu_isa isa, int64_t N, int64_t Ci, int64_t Co, int64_t D,
                                     int64_t H, int64_t W, float *y, const float *x, const uint16_t *wb, int64_t kpad,
                                     const float *bias, const float *res, bool relu, const volatile int *cancel);
/* Whether t3d_cpu_conv3d_bf16 runs these shapes by Winograd (above) rather than im2col. */
bool t3d_cpu_conv3d_bf16_wino(const t3d_tensor *x, const t3d_tensor *w, const t3d_conv3d_params *p);
/* Test-only: -1 (default) im2col convolutions with a kernel wider than 1x1x1 and a width stride of
 * 1 or 2 pack their B panels from a bf16 copy of x (AVX512BW), 0 always from the fp32 im2col
 * lines (the same panels, bit for bit). Returns the previous setting. Not thread-safe. */
int t3d_cpu_bf16_force_x16_pack(int mode);
/* Test-only: -1 (default) AUTO's choice, 0 never Winograd, 1 Winograd wherever it applies (3x3x3
 * stride 1 padding 1 "same", AVX-512F). Returns the previous setting. Not thread-safe. */
int t3d_cpu_bf16_force_wino(int mode);

#ifdef __cplusplus
}
#endif
#endif
