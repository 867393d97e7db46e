/* Which ISA the CPU backend's bf16 path runs on: cpuid + xgetbv, the AMX tile-data permission
 * (arch_prctl), the T3D_CPU_ISA cap; and whether bf16 pays on it (the measured multiply-add rate of
 * vdpbf16ps against fp32 FMAs, for --precision auto). The kernels are in gemm_bf16.c; the
 * backend's precision is fixed in backend_cpu.c. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/base/log.h"
#include "kernels/cpu/bf16.h"

static const char *const isa_names[T3D_CPU_ISA_COUNT] = {"scalar", "avx2", "avx512f", "avx512bf16", "amx"};

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
  bool avx512f = avx2 && (x & XCR0_AVX512) == XCR0_AVX512 && (b7 & bit_AVX512F) && (b7 & bit_AVX512BW);
  bool avx512bf16 = avx512f && (a71 & (1u << 5));
  bool amx = (x & XCR0_AMX) == XCR0_AMX && (d7 & (1u << 24)) && (d7 & (1u << 22));
  if (amx && amx_permitted()) return T3D_CPU_ISA_AMX;
  if (amx) T3D_WARN("this CPU has AMX but the kernel refused tile data (arch_prctl); bf16 runs without AMX");
  if (avx512bf16) return T3D_CPU_ISA_AVX512BF16;
  if (avx512f) return T3D_CPU_ISA_AVX512F;
  return avx2 ? T3D_CPU_ISA_AVX2 : T3D_CPU_ISA_SCALAR;
}
#else
static t3d_cpu_isa detect(void) { return T3D_CPU_ISA_SCALAR; }
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static t3d_cpu_isa hw = T3D_CPU_ISA_SCALAR; /* the CPU's, capped by T3D_CPU_ISA */
static t3d_cpu_isa detected = T3D_CPU_ISA_SCALAR; /* what runs: hw, or avx512f where that is faster */
static t3d_cpu_isa test_cap = T3D_CPU_ISA_COUNT;
static double gain; /* measured where hw is avx512bf16 */
static double measure_gain(void);
/* Below this gain (vdpbf16ps multiply-adds per second over fp32 FMAs', see "does bf16 pay here?")
 * bf16 runs on the FMAs: the avx512f ISA computes the same exact products at the FMAs' rate and
 * through the fp32 convolution kernels (Winograd among them). Measured on the Xeon named below
 * (gain 0.5), 2 threads, t3d bench --precision bf16: the encoder 2835-3032 ms with vdpbf16ps
 * against 1089-1186 on the FMAs, encoder + segmentation 7924-7977 against 2397-2444, text 286-327
 * against 192-195. Between 1 and GAIN_MIN, where neither clearly wins, the native kernels stay. */
#define FMA_GAIN_MAX 1.0

static void detect_once(void)
{
  const char *env = getenv("T3D_CPU_ISA");
  hw = detect();
  bool capped = false;
  if (env && *env) {
    int i = 0;
    while (i < T3D_CPU_ISA_COUNT && strcmp(env, isa_names[i]) != 0) i++;
    if (i == T3D_CPU_ISA_COUNT)
      T3D_WARN("T3D_CPU_ISA=%s is not one of scalar, avx2, avx512f, avx512bf16, amx: ignored", env);
    else if ((t3d_cpu_isa)i <= hw)
      hw = (t3d_cpu_isa)i, capped = true;
  }
  if (hw == T3D_CPU_ISA_AVX512BF16) gain = measure_gain();
  detected = hw;
  /* a CPU whose vdpbf16ps does fewer multiply-adds per second than its FMAs computes the same
     products faster on the FMAs (see FMA_GAIN_MAX); an explicit cap is taken as asked */
  if (!capped && hw == T3D_CPU_ISA_AVX512BF16 && gain < FMA_GAIN_MAX) detected = T3D_CPU_ISA_AVX512F;
}

t3d_cpu_isa t3d_cpu_bf16_isa(void)
{
  pthread_once(&once, detect_once);
  if (test_cap < T3D_CPU_ISA_COUNT) return test_cap < hw ? test_cap : hw;
  return detected;
}

t3d_cpu_isa t3d_cpu_bf16_hw_isa(void)
{
  pthread_once(&once, detect_once);
  return hw;
}

t3d_cpu_isa t3d_cpu_bf16_cap_isa(t3d_cpu_isa cap)
{
  t3d_cpu_isa old = test_cap;
  test_cap = cap;
  return old;
}

const char *t3d_backend_cpu_bf16_isa(void) { return t3d_cpu_isa_name(t3d_cpu_bf16_isa()); }

bool t3d_backend_cpu_bf16_native(void) { return t3d_cpu_bf16_isa() >= T3D_CPU_ISA_AVX512BF16; }

const char *t3d_backend_cpu_bf16_engine(void)
{
  t3d_cpu_isa isa = t3d_cpu_bf16_isa();
  return isa >= T3D_CPU_ISA_AVX512BF16 ? "native" : isa == T3D_CPU_ISA_AVX512F ? "fp32 FMAs" : "portable";
}

/* ---- does bf16 pay here? ------------------------------------------------------------------------
 * AVX512-BF16 is not faster everywhere. One vdpbf16ps does 32 multiply-adds against an FMA's 16,
 * but the CPUs differ in how many of each they issue per cycle: measured on an Intel Xeon with
 * AVX512-BF16 and AVX512-FP16 but no AMX (a virtual machine), 1.0e9 vdpbf16ps/s against 4.1e9
 * 512-bit FMAs/s, i.e. bf16 at half fp32's rate, and the t3d-r50 encoder 2.3x slower in bf16. So
 * auto asks the CPU: 12 independent chains of each instruction, timed in turn a few times (about
 * a millisecond, once per process), the best rate of each kept. bf16 must reach GAIN_MIN times
 * fp32's multiply-add rate; the ratios expected are about 2 (AMD Zen 4, where both are split into
 * 256-bit halves) or 0.5 (the Xeon above), far from the threshold, so noise cannot flip it. AMX
 * (16x16 tiles) is taken without asking. */
#define GAIN_MIN 1.25

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static double seconds(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum { CHAINS = 12, PROBE_ITERS = 4000, PROBE_ROUNDS = 5 };
/* Multiply-adds per second of PROBE_ITERS rounds of CHAINS = 12 independent vdpbf16ps (32 each)
 * or 512-bit FMAs (16 each), written in asm so that every build (sanitizers, -O0) times the same
 * instructions on registers: compiled C at low optimisation spilled the chains to the stack and
 * made fp32 look slow (a sanitizer build measured 1.8x and took bf16). */
#define PROBE_LOOP(insn)                                                                                       \
  __asm__ volatile("vpxord %%zmm0, %%zmm0, %%zmm0\n\t"                                                          \
                   "vpternlogd $0xff, %%zmm15, %%zmm15, %%zmm15\n\t"                                           \
                   "vpsrld $2, %%zmm15, %%zmm15\n\t" /* 0x3fffffff: fp32 2.0, bf16 pairs 2.0 (no denormals) */          \
                   "1:\n\t" insn(1) insn(2) insn(3) insn(4) insn(5) insn(6) insn(7) insn(8) insn(9) insn(10)   \
                       insn(11) insn(12) "dec %0\n\t"                                                            \
                   "jnz 1b\n\t"                                                                                \
                   : "+r"(n)                                                                                   \
                   :                                                                                           \
                   : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",  \
                     "xmm11", "xmm12", "xmm15", "cc")
#define DP(i) "vdpbf16ps %%zmm15, %%zmm15, %%zmm" #i "\n\t"
#define FM(i) "vfmadd231ps %%zmm15, %%zmm15, %%zmm" #i "\n\t"

/* Called only where the CPU has AVX512-BF16 (so the FMA loop may share the target). */
__attribute__((target("avx512f,avx512bf16"))) static double probe_rate(bool bf16)
{
  long n = PROBE_ITERS;
  double t = seconds();
  if (bf16) PROBE_LOOP(DP);
  else PROBE_LOOP(FM);
  t = seconds() - t;
  return t > 0 ? (bf16 ? 32.0 : 16.0) * CHAINS * PROBE_ITERS / t : 0;
}

static double measure_gain(void)
{
  double bf = 0, fp = 0;
  for (int r = 0; r < PROBE_ROUNDS; r++) {
    double b = probe_rate(true), f = probe_rate(false);
    if (b > bf) bf = b;
    if (f > fp) fp = f;
  }
  return fp > 0 ? bf / fp : 0;
}
#else
static double measure_gain(void) { return 0; }
#endif

double t3d_backend_cpu_bf16_gain(void)
{
  return t3d_cpu_bf16_hw_isa() == T3D_CPU_ISA_AVX512BF16 ? gain : 0;
}

unsigned t3d_cpu_bf16_auto_ops(t3d_cpu_isa isa, double gain)
{
  if (isa == T3D_CPU_ISA_AMX) return 1u << T3D_OP_LINEAR; /* see t3d_backend_cpu_bf16_auto_ops */
  if (isa == T3D_CPU_ISA_AVX512BF16 && gain >= GAIN_MIN) return T3D_BF16_OPS_ALL;
  return 0;
}

unsigned t3d_backend_cpu_bf16_auto_ops(void)
{
  t3d_cpu_isa isa = t3d_cpu_bf16_isa();
  return t3d_cpu_bf16_auto_ops(isa, isa == T3D_CPU_ISA_AVX512BF16 ? t3d_backend_cpu_bf16_gain() : 0);
}

bool t3d_backend_cpu_bf16_pays(void) { return t3d_backend_cpu_bf16_auto_ops() != 0; }
