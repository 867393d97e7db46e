/* Times the CPU 3-D convolutions of the T3D vision encoder (MONAI 3D ResNet-50, input
 * 1x1x160x224x224) one distinct layer shape at a time, then the segmentation decoder's.
 * A benchmark, not a test: it checks nothing. Compare with tests/reference/bench_conv.py.
 *
 *   bench-conv [--threads T] [--reps R] [--only NAME] [--path 0-8] [--budget FLOATS] [--wino-width 256|512] [--bf16]
 *              [--bf16-wino -1|0|1] [--bf16-x16 -1|0]
 *            [--stream-min BYTES]
 * --stream-min BYTES: outputs from this size leave by non-temporal stores (default 64 MiB).
 * --bf16: the bf16 path (weights packed once as a bf16 backend does at load; fp32 activations);
 * --bf16-wino: its 3x3x3 "same" layers by AUTO's choice (-1), im2col (0) or Winograd (1);
 * --bf16-x16 0: its im2col panels from fp32 im2col lines instead of a bf16 copy of x.
 * --wino-width 256: the Winograd kernel's GEMM in AVX2 even where the CPU has AVX-512 (default 512).
 * --path: 0 auto, 1 AVX-512 packed, 2 im2col + OpenBLAS, 3 im2col + own sgemm, 4 AVX2 packed,
 *         5 direct AVX2 (3x3x3 stride-1 "same" layers only; others as auto), 6 stride-2 rows, 7 Winograd
 *         F(2,3), 8 Winograd F(4,3) (AVX-512; 3x3x3 stride-1 "same" layers only, others as auto).
 *
 * On a machine shared with other work, run it with OMP_PROC_BIND=true: unbound, the two OpenMP
 * threads of a 2-core VM were seen sharing one core for whole layers (every layer's time doubled,
 * now and then; the encoder's sum 1450 ms unbound against 971 bound, the same build, minutes
 * apart), which bound threads cannot.
 *
 * Prints one line per layer: name, count in the network, shapes, best-of-R wall ms, GFLOP/s,
 * the kernel's scratch memory and best-of-R process CPU ms (all threads; on a busy machine
 * the steadier figure at --threads 1); then the totals of the encoder's and of the decoder's rows (sum
 * of count x wall ms; the decoder's include its transposed convs). Every conv has a
 * bias, like the BatchNorm-folded model; no ReLU or residual so PyTorch runs the same work. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/tensor.h"
#include "kernels/backend.h"
#include "kernels/cpu/bf16.h"
#include "kernels/cpu/conv.h"

typedef struct {
  const char *name;
  int count; /* times this shape occurs in one forward pass */
  int ci, co, d, h, w, k, s, pad;
  bool transpose;
} layer;

/* Spatial sizes follow the network: conv1 stride 2 -> 80x112x112, max-pool stride 2 ->
 * 40x56x56 (layer1), then stride 2 in the first block of layers 2-4. */
static const layer layers[] = {
  {"conv1", 1, 1, 64, 160, 224, 224, 7, 2, 3, false},
  {"l1.b0.conv1", 1, 64, 64, 40, 56, 56, 1, 1, 0, false},
  {"l1.conv2", 3, 64, 64, 40, 56, 56, 3, 1, 1, false},
  {"l1.conv3+ds", 4, 64, 256, 40, 56, 56, 1, 1, 0, false},
  {"l1.conv1", 2, 256, 64, 40, 56, 56, 1, 1, 0, false},
  {"l2.b0.conv1", 1, 256, 128, 40, 56, 56, 1, 1, 0, false},
  {"l2.b0.conv2", 1, 128, 128, 40, 56, 56, 3, 2, 1, false},
  {"l2.conv3", 4, 128, 512, 20, 28, 28, 1, 1, 0, false},
  {"l2.ds", 1, 256, 512, 40, 56, 56, 1, 2, 0, false},
  {"l2.conv1", 3, 512, 128, 20, 28, 28, 1, 1, 0, false},
  {"l2.conv2", 3, 128, 128, 20, 28, 28, 3, 1, 1, false},
  {"l3.b0.conv1", 1, 512, 256, 20, 28, 28, 1, 1, 0, false},
  {"l3.b0.conv2", 1, 256, 256, 20, 28, 28, 3, 2, 1, false},
  {"l3.conv3", 6, 256, 1024, 10, 14, 14, 1, 1, 0, false},
  {"l3.ds", 1, 512, 1024, 20, 28, 28, 1, 2, 0, false},
  {"l3.conv1", 5, 1024, 256, 10, 14, 14, 1, 1, 0, false},
  {"l3.conv2", 5, 256, 256, 10, 14, 14, 3, 1, 1, false},
  {"l4.b0.conv1", 1, 1024, 512, 10, 14, 14, 1, 1, 0, false},
  {"l4.b0.conv2", 1, 512, 512, 10, 14, 14, 3, 2, 1, false},
  {"l4.conv3", 3, 512, 2048, 5, 7, 7, 1, 1, 0, false},
  {"l4.ds", 1, 1024, 2048, 10, 14, 14, 1, 2, 0, false},
  {"l4.conv1", 2, 2048, 512, 5, 7, 7, 1, 1, 0, false},
  {"l4.conv2", 2, 512, 512, 5, 7, 7, 3, 1, 1, false},
  /* segmentation decoder (widths 256-16): per block a transposed conv (kernel 2, stride 2) from
   * the block below, then a 3^3 conv over cat(upsampled, skip); the 1^3 head at full size */
  {"dec0.up", 1, 2048, 256, 5, 7, 7, 2, 2, 0, true},
  {"dec0.conv", 1, 1280, 256, 10, 14, 14, 3, 1, 1, false},
  {"dec1.up", 1, 256, 128, 10, 14, 14, 2, 2, 0, true},
  {"dec1.conv", 1, 640, 128, 20, 28, 28, 3, 1, 1, false},
  {"dec2.up", 1, 128, 64, 20, 28, 28, 2, 2, 0, true},
  {"dec2.conv", 1, 320, 64, 40, 56, 56, 3, 1, 1, false},
  {"dec3.up", 1, 64, 32, 40, 56, 56, 2, 2, 0, true},
  {"dec3.conv", 1, 96, 32, 80, 112, 112, 3, 1, 1, false},
  {"dec4.up", 1, 32, 16, 80, 112, 112, 2, 2, 0, true},
  {"dec4.conv", 1, 17, 16, 160, 224, 224, 3, 1, 1, false},
  {"head", 1, 16, 9, 160, 224, 224, 1, 1, 0, false},
};

static double now_ms(clockid_t clk)
{
  struct timespec ts;
  clock_gettime(clk, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static t3d_tensor *tnew(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e)
{
  int64_t shape[5] = {a, b, c, d, e};
  t3d_tensor *t = NULL;
  if (t3d_tensor_new(&t, T3D_F32, e ? 5 : 1, e ? shape : &a) != T3D_OK) return NULL;
  float *p = t->data;
  uint32_t s = 12345;
  for (int64_t i = 0; i < t3d_tensor_numel(t); i++) s = s * 1664525u + 1013904223u, p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
  return t;
}

int main(int argc, char **argv)
{
  int threads = 2, reps = 3;
  const char *only = NULL;
  bool bf16 = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!strcmp(argv[i], "--path") && i + 1 < argc) t3d_cpu_conv_force_path((t3d_cpu_conv_path)atoi(argv[++i]));
    else if (!strcmp(argv[i], "--budget") && i + 1 < argc) t3d_cpu_conv_set_col_budget((size_t)atol(argv[++i]));
    else if (!strcmp(argv[i], "--wino-width") && i + 1 < argc) t3d_cpu_wino_cap_width(atoi(argv[++i]));
    else if (!strcmp(argv[i], "--bf16")) bf16 = true;
    else if (!strcmp(argv[i], "--bf16-wino") && i + 1 < argc) t3d_cpu_bf16_force_wino(atoi(argv[++i]));
    else if (!strcmp(argv[i], "--bf16-x16") && i + 1 < argc) t3d_cpu_bf16_force_x16_pack(atoi(argv[++i]));
    else if (!strcmp(argv[i], "--stream-min") && i + 1 < argc) t3d_cpu_conv_set_stream_min(atoll(argv[++i]));
    else {
      fprintf(stderr, "usage: %s [--threads T] [--reps R] [--only NAME] [--path 0-8] [--budget FLOATS] [--wino-width 256|512] [--bf16] [--bf16-wino -1|0|1] [--bf16-x16 -1|0] [--stream-min BYTES]\n",
              argv[0]);
      return 2;
    }
  }
  t3d_backend be = {.threads = threads}, *b16 = NULL;
  if (bf16) {
    t3d_backend_params bp = t3d_backend_default_params();
    bp.threads = threads;
    bp.precision = T3D_PRECISION_BF16;
    if (t3d_backend_cpu_create(&b16, &bp) != T3D_OK) {
      fprintf(stderr, "bf16 backend: %s\n", t3d_error_detail());
      return 1;
    }
  }
  printf("# threads %d, best of %d%s\n", threads, reps, bf16 ? ", bf16 path" : "");
  printf("%-12s %3s %-26s %10s %8s %10s %10s\n", "layer", "n", "shape", "ms", "GFLOP/s", "scratchMB", "cpu_ms");
  double total[2] = {0, 0}; /* encoder, decoder */
  for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
    const layer *L = &layers[li];
    if (only && strcmp(only, L->name)) continue;
    int64_t od, oh, ow;
    if (L->transpose) {
      od = (L->d - 1) * L->s - 2 * L->pad + L->k, oh = (L->h - 1) * L->s - 2 * L->pad + L->k;
      ow = (L->w - 1) * L->s - 2 * L->pad + L->k;
    } else {
      od = (L->d + 2 * L->pad - L->k) / L->s + 1, oh = (L->h + 2 * L->pad - L->k) / L->s + 1;
      ow = (L->w + 2 * L->pad - L->k) / L->s + 1;
    }
    t3d_tensor *x = tnew(1, L->ci, L->d, L->h, L->w), *y = tnew(1, L->co, od, oh, ow), *b = tnew(L->co, 0, 0, 0, 0);
    t3d_tensor *w = L->transpose ? tnew(L->ci, L->co, L->k, L->k, L->k) : tnew(L->co, L->ci, L->k, L->k, L->k);
    if (!x || !y || !b || !w) {
      fprintf(stderr, "%s: out of memory\n", L->name);
      return 1;
    }
    /* the decoder's layers are the segmentation network's: tolerant, as the model runs them */
    t3d_conv3d_params p = {{L->s, L->s, L->s}, {L->pad, L->pad, L->pad}, false, !strncmp(L->name, "dec", 3)};
    t3d_conv3d_transpose_params tp = {{L->s, L->s, L->s}, {L->pad, L->pad, L->pad}, {0, 0, 0}};
    t3d_tensor wb = {0};
    if (bf16 && t3d_backend_weight_upload(b16, &wb, w, L->transpose ? T3D_OP_CONV3D_TRANSPOSE : T3D_OP_CONV3D) != T3D_OK) {
      fprintf(stderr, "%s: %s\n", L->name, t3d_error_detail());
      return 1;
    }
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r <= reps; r++) { /* r == 0 warms up */
      double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
      t3d_status st = bf16 ? (L->transpose ? t3d_cpu_conv3d_transpose_bf16(b16, y, x, &wb, b, &tp)
                                           : t3d_cpu_conv3d_bf16(b16, y, x, &wb, b, NULL, &p))
                    : L->transpose ? t3d_cpu_conv3d_transpose(&be, y, x, w, b, &tp)
                                   : t3d_cpu_conv3d(&be, y, x, w, b, NULL, &p);
      double t1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
      if (st != T3D_OK) {
        fprintf(stderr, "%s: %s\n", L->name, t3d_error_detail());
        return 1;
      }
      if (r > 0 && t1 - t0 < best) best = t1 - t0;
      if (r > 0 && c1 - c0 < best_cpu) best_cpu = c1 - c0;
      if (r == 0 && t1 - t0 > 2000 && reps > 1) reps = 1; /* very slow layer: one timed run */
    }
    /* multiply-adds: every output sums Ci*k^3 taps (transposed: every input scatters Co*k^3) */
    double flops = L->transpose ? 2.0 * L->ci * L->co * L->k * L->k * L->k * L->d * L->h * L->w
                                : 2.0 * L->ci * L->co * L->k * L->k * L->k * od * oh * ow;
    size_t scratch = L->transpose || bf16 ? 0 : t3d_cpu_conv3d_scratch_bytes(y, x, w, &p, threads);
    char shape[64];
    snprintf(shape, sizeof shape, "%d>%d,%dx%dx%d,k%ds%d%s", L->ci, L->co, L->d, L->h, L->w, L->k, L->s,
             L->transpose ? ",T" : "");
    char scr[32] = "<=1/thread"; /* transposed: one column tile of at most 1 MiB per thread */
    if (!L->transpose) snprintf(scr, sizeof scr, "%.2f", scratch / 1048576.0);
    printf("%-12s %3d %-26s %10.2f %8.1f %10s %10.2f\n", L->name, L->count, shape, best, flops / best * 1e-6, scr,
           best_cpu);
    fflush(stdout);
    total[!strncmp(L->name, "dec", 3) || !strcmp(L->name, "head")] += L->count * best;
    t3d_tensor_free(x), t3d_tensor_free(y), t3d_tensor_free(b), t3d_tensor_free(w);
    if (bf16) t3d_backend_tensor_free(b16, &wb);
  }
  t3d_backend_free(b16);
  printf("encoder convs total (sum of n x ms): %.1f ms\n", total[0]);
  printf("decoder total (sum of n x ms): %.1f ms\n", total[1]);
  return 0;
}
