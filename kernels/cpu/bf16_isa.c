/* Which ISA the CPU backend's bf16 path runs on: cpuid + xgetbv, the AMX tile-data permission
 * (arch_prctl), the T3D_CPU_ISA cap. Detection only: the kernels are in gemm_bf16.c, and nothing
 * here decides fp32 or bf16 (backend_cpu.c does, from the backend's precision). */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/base/log.h"
#include "kernels/cpu/bf16.h"

static const char *const isa_names[T3D_CPU_ISA_COUNT] = {"scalar", "avx2", "avx512bf16", "amx"};

const char *t3d_cpu_isa_name(t3d_cpu_isa isa)
{
  return (unsigned)isa < T3D_CPU_ISA_COUNT ? isa_names[isa] : "unknown";
}

#if defined(__x86_64__) && defined(__GNUC__)
#define XCR0_AVX 0x6u           /* SSE and AVX state */
#define XCR0_AVX512 0xe6u       /* + opmask, upper ZMM0-15, ZMM16-31 */
#define XCR0_AMX 0x60000u       /* XTILECFG, XTILEDATA */
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static uint64_t xcr0(void)
{
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

/* Linux hands out the 8 KiB of tile data only to processes that ask (since 5.16); without the
 * permission the first tile instruction faults. Process-wide, so once is enough. */
static bool amx_permitted(void)
{
  unsigned long mask = 0;
  if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return false;
  if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mask) != 0) return false;
  return (mask >> XFEATURE_XTILEDATA) & 1u;
}

static t3d_cpu_isa detect(void)
{
  unsigned a1, b1, c1, d1, a7, b7, c7, d7, a71 = 0, b71, c71, d71;
  if (!__get_cpuid(1, &a1, &b1, &c1, &d1) || !(c1 & bit_OSXSAVE)) return T3D_CPU_ISA_SCALAR;
  if (!__get_cpuid_count(7, 0, &a7, &b7, &c7, &d7)) return T3D_CPU_ISA_SCALAR;
  if (a7 >= 1) __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71);
  uint64_t x = xcr0();
  bool avx2 = (x & XCR0_AVX) == XCR0_AVX && (b7 & bit_AVX2) && (c1 & bit_FMA);
  bool avx512bf16 = (x & XCR0_AVX512) == XCR0_AVX512 && (b7 & bit_AVX512F) && (b7 & bit_AVX512BW) &&
                    (a71 & (1u << 5));
  bool amx = (x & XCR0_AMX) == XCR0_AMX && (d7 & (1u << 24)) && (d7 & (1u << 22));
  if (amx && amx_permitted()) return T3D_CPU_ISA_AMX;
  if (amx) T3D_WARN("this CPU has AMX but the kernel refused tile data (arch_prctl); bf16 runs without AMX");
  if (avx512bf16) return T3D_CPU_ISA_AVX512BF16;
  return avx2 ? T3D_CPU_ISA_AVX2 : T3D_CPU_ISA_SCALAR;
}
#else
static t3d_cpu_isa detect(void) { return T3D_CPU_ISA_SCALAR; }
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static t3d_cpu_isa detected = T3D_CPU_ISA_SCALAR;
static t3d_cpu_isa test_cap = T3D_CPU_ISA_COUNT;

static void detect_once(void)
{
  const char *env = getenv("T3D_CPU_ISA");
  detected = detect();
  if (!env || !*env) return;
  for (int i = 0; i < T3D_CPU_ISA_COUNT; i++)
    if (strcmp(env, isa_names[i]) == 0) {
      if ((t3d_cpu_isa)i < detected) detected = (t3d_cpu_isa)i;
      return;
    }
  T3D_WARN("T3D_CPU_ISA=%s is not one of scalar, avx2, avx512bf16, amx: ignored", env);
}

t3d_cpu_isa t3d_cpu_bf16_isa(void)
{
  pthread_once(&once, detect_once);
  return detected < test_cap ? detected : test_cap;
}

t3d_cpu_isa t3d_cpu_bf16_cap_isa(t3d_cpu_isa cap)
{
  t3d_cpu_isa old = test_cap;
  test_cap = cap;
  return old;
}

const char *t3d_backend_cpu_bf16_isa(void) { return t3d_cpu_isa_name(t3d_cpu_bf16_isa()); }

bool t3d_backend_cpu_bf16_native(void) { return t3d_cpu_bf16_isa() >= T3D_CPU_ISA_AVX512BF16; }
