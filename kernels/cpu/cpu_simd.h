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
 * gives 0 where expf would give a subnormal. Written with selects so `omp simd` vectorises it. */
static inline float t3d_exp_nonpos(float x)
{
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the low bits */
  float xc = x < -87.0f ? -87.0f : x;
  float t = xc * 1.44269504088896341f + magic;
  float n = t - magic;
  float r = (xc - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 5040.0f;
  uint32_t tb, sb;
  float scale;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  memcpy(&tb, &t, sizeof tb);
  sb = (tb - 0x4B400000u + 127u) << 23; /* 2^n as float bits; n in [-126, 0] */
  memcpy(&scale, &sb, sizeof scale);
  return x < -87.0f ? 0.0f : p * scale;
}

#endif
