/* Helpers shared by the CPU op files: runtime-dispatched SIMD clones, the OpenMP thread count
 * rule and a vectorisable exp for non-positive arguments. Private to kernels/cpu/. */
#ifndef T3D_KERNELS_CPU_SIMD_H
#define T3D_KERNELS_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* gcc builds one clone per ISA and picks at load time (ifunc); `#pragma omp simd` inside makes
 * the vectoriser run at -O2 too. The sanitizer build keeps the clones (ASan copes with ifunc). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define T3D_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define T3D_SIMD_CLONES
#endif

/* Threads for a loop of `work` elementary steps: one thread below ~64 k steps, where forking
 * costs more than it saves. */
static inline int t3d_cpu_threads_for(int threads, int64_t work)
{
  if (threads < 1 || work < (1 << 16))
    return 1;
  return threads;
}

/* Threads for a streaming elementwise or per-row op (relu, add, GELU, softmax, layernorm) whose
 * single-thread run takes about `ns` nanoseconds, the caller's estimate from its element count
 * and the T3D_CPU_NS_* costs below. Below T3D_CPU_SPLIT_NS it runs on one thread.
 * Why: under load (the 2-core test machine shared by 7 builds, load average ~3) a loop split over
 * 2 OpenMP threads now and then waits a whole scheduler slice, 5-20 ms, for a descheduled worker
 * at the join barrier; unloaded, the split halves the time. `t3d bench-ops`-style timings,
 * 60 runs each, ms as min / median / p90, t3d_cpu_threads_for(2, ...) splitting from 64 k elements:
 *   layernorm [256,768]       1 thread 0.072/0.083/0.097   2 threads 0.046/0.056/7.99
 *   softmax   [12,256,256]    1 thread 0.60/0.63/0.73      2 threads 0.26/5.41/10.3 (another run 0.28/0.33/0.41)
 *   gelu      [256,3072]      1 thread 0.24/0.29/0.45      2 threads 0.11/0.16/0.21 (another run 0.11/11.8/19.9)
 *   add       [1,256,40,56,56] 1 thread 27.4/27.8         2 threads 13.0/13.5
 * A split saves T1/2 and risks one ~8 ms stall, so it pays only when T1/2 is well above the
 * unloaded fork/join cost (~10 us) and a stall is not the common case. The threshold was 0.2 ms of
 * single-thread work (layernorm and the residual adds at BERT size on one thread); 0.05 ms splits
 * them too, which in the text tower, whose GEMMs and attention split anyway, saves 2 ms a forward
 * (text child, 2 threads, interleaved: 146.9-149.5 -> 143.7-147.5 ms). */
#define T3D_CPU_SPLIT_NS 50000.0
/* Measured single-thread cost per element, AVX-512 Xeon, data in L2 or streamed. */
#define T3D_CPU_NS_ADD 0.3       /* relu, add: memory-bound, 0.84 ns at 32 M elements */
#define T3D_CPU_NS_GELU 0.3      /* 0.22 in L2, 0.31 at [256,3072] */
#define T3D_CPU_NS_SOFTMAX 0.75  /* 0.76 at [12,256,256] */
#define T3D_CPU_NS_LAYERNORM 0.4 /* 0.38 at [256,768] */

static inline int t3d_cpu_threads_stream(int threads, int64_t elements, double ns_per_element)
{
  if (threads < 1 || (double)elements * ns_per_element < T3D_CPU_SPLIT_NS)
    return 1;
  return threads;
}

/* Index of the calling thread inside a parallel region (0 outside, or without OpenMP). */
static inline int t3d_cpu_omp_thread(void)
{
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* e^x for x <= 0 (and -inf -> 0, NaN -> NaN), within 2 ulp of expf for x >= -87; smaller x
 * gives 0 where expf would give a subnormal. Branch-free with bit masks, not selects: GCC 12 at
 * -O2 if-converts selects only with AVX-512 masks, so the AVX2 clones of `omp simd` loops over
 * it stayed scalar (the attention softmax: 6.5 % of the text encoder in a profile). */
static inline float t3d_exp_nonpos(float x)
{
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the low bits */
  const float lo = -87.0f;
  const uint32_t keep = (uint32_t)0 - (uint32_t) !(x < lo); /* all ones unless x < -87 (NaN: kept) */
  uint32_t xb, lb, tb, sb;
  float xc, scale;
  memcpy(&xb, &x, sizeof xb);
  memcpy(&lb, &lo, sizeof lb);
  xb = (xb & keep) | (lb & ~keep); /* x clamped to -87 */
  memcpy(&xc, &xb, sizeof xc);
  float t = xc * 1.44269504088896341f + magic;
  float n = t - magic;
  float r = (xc - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  memcpy(&tb, &t, sizeof tb);
  sb = ((tb - 0x4B400000u + 127u) << 23) & keep; /* 2^n as float bits, n in [-126, 0]; +0 below -87 */
  memcpy(&scale, &sb, sizeof scale);
  return p * scale;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* t3d_exp_nonpos on 16 lanes: the same clamp, reduction and polynomial; x < -87 gives 0. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 t3d_exp_nonpos16(__m512 x)
{
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __mmask16 small = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
  const __m512 xc = _mm512_mask_mov_ps(x, small, _mm512_set1_ps(-87.0f));
  const __m512 t = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504088896341f), magic);
  const __m512 n = _mm512_sub_ps(t, magic);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f),
                                    _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc));
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  /* 2^n from the exponent bits, n in [-126, 0] */
  const __m512i sb = _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(127 - 0x4B400000)), 23);
  return _mm512_maskz_mul_ps((__mmask16)~small, p, _mm512_castsi512_ps(sb));
}
#endif

#endif
