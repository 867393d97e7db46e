/* `t3d devices`: what this machine offers for inference (CPU cores and vector ISA, CUDA GPUs,
 * library versions), so a site engineer can choose hardware. It only reports; it runs nothing. */
#include "config.h"

#include <jansson.h>
#include <libintl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "kernels/backend.h"
#include "kernels/cuda/device.h"

#define _(s) gettext(s)

static const char *cpu_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return "avx512f";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return "avx2+fma";
  if (__builtin_cpu_supports("avx"))
    return "avx";
  return "sse2";
#else
  return "generic";
#endif
}

int t3d_cmd_devices(int argc, char **argv)
{
  int json = 0, count = 0;
  const char *why = "";
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  t3d_status st;
  json_t *root = NULL, *gpus = NULL;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--help") == 0) {
      printf(_("Usage: t3d devices [--json]\nLists the CPU and CUDA GPUs t3d can run on.\n"));
      return 0;
    } else {
      fprintf(stderr, _("t3d devices: unknown option '%s'\n"), argv[i]);
      return 2;
    }
  }

  st = t3d_cuda_device_count(&count, &why);
  root = json_object();
  gpus = json_array();
  json_object_set_new(root, "cpu_cores", json_integer(cores));
  json_object_set_new(root, "cpu_isa", json_string(cpu_isa()));
  json_object_set_new(root, "cpu_kernels", json_string(t3d_backend_cpu_kernels()));
  json_object_set_new(root, "cpu_bf16_isa", json_string(t3d_backend_cpu_bf16_isa()));
  /* "native", "fp32 FMAs" (avx512f: bf16 operands on fp32 FMAs) or "portable" */
  json_object_set_new(root, "cpu_bf16_engine", json_string(t3d_backend_cpu_bf16_engine()));
  json_object_set_new(root, "cpu_bf16_gain", json_real(t3d_backend_cpu_bf16_gain()));
  const unsigned auto_ops = t3d_backend_cpu_bf16_auto_ops();
  /* "bf16", "fp32", or "mixed" with cpu_auto_bf16_ops naming the ops that run bf16 */
  json_object_set_new(root, "cpu_auto_precision",
                      json_string(auto_ops == T3D_BF16_OPS_ALL ? "bf16" : auto_ops ? "mixed" : "fp32"));
  json_t *ops = json_array();
  static const t3d_op bf16_capable[3] = {T3D_OP_CONV3D, T3D_OP_CONV3D_TRANSPOSE, T3D_OP_LINEAR};
  for (int i = 0; ops && i < 3; i++)
    if (auto_ops & (1u << bf16_capable[i])) json_array_append_new(ops, json_string(t3d_op_name(bf16_capable[i])));
  if (ops) json_object_set_new(root, "cpu_auto_bf16_ops", ops);
  json_object_set_new(root, "cuda_built", json_boolean(st != T3D_ERR_UNSUPPORTED));
  json_object_set_new(root, "cuda_runtime_version", json_integer(t3d_cuda_runtime_version()));
  json_object_set_new(root, "cudnn_version", json_integer(t3d_cudnn_version()));
  for (int d = 0; d < count; d++) {
    t3d_cuda_device_info info;
    if (t3d_cuda_device_info_get(d, &info) != T3D_OK)
      continue;
    char cc[16];
    snprintf(cc, sizeof cc, "%d.%d", info.compute_major, info.compute_minor);
    json_array_append_new(gpus, json_pack("{s:i,s:s,s:s,s:I,s:I,s:i}", "index", d, "name", info.name, "compute", cc,
                                          "memory_bytes", (json_int_t)info.total_memory, "free_bytes",
                                          (json_int_t)info.free_memory, "multiprocessors", info.multiprocessors));
  }
  json_object_set_new(root, "gpus", gpus);
  json_object_set_new(root, "backend", json_string(count > 0 ? "cuda" : "cpu"));

  if (json) {
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
      puts(s);
    free(s);
  } else {
    printf(_("CPU: %ld cores, %s\n"), cores, cpu_isa());
    printf(_("CPU kernels: %s\n"), t3d_backend_cpu_kernels());
    printf(_("CPU bf16 path: %s, %s; --precision auto runs %s\n"), t3d_backend_cpu_bf16_isa(),
           t3d_backend_cpu_bf16_engine(), t3d_cli_bf16_ops_desc(t3d_backend_cpu_bf16_auto_ops()));
    if (t3d_backend_cpu_bf16_gain() > 0)
      printf(_("CPU bf16 speed: vdpbf16ps does %.2fx the multiply-adds per second of fp32 FMAs (auto takes bf16 "
               "from 1.25x)\n"),
             t3d_backend_cpu_bf16_gain());
    if (st == T3D_ERR_UNSUPPORTED) {
      printf(_("CUDA: not built (%s)\n"), why);
    } else {
      printf(_("CUDA runtime %d, cuDNN %d: %d device(s)%s%s\n"), t3d_cuda_runtime_version(), t3d_cudnn_version(),
             count, *why ? " — " : "", why);
      for (size_t d = 0; d < json_array_size(gpus); d++) {
        json_t *g = json_array_get(gpus, d);
        printf("  [%d] %s, compute %s, %.1f GiB (%.1f GiB free), %d SMs\n",
               (int)json_integer_value(json_object_get(g, "index")),
               json_string_value(json_object_get(g, "name")), json_string_value(json_object_get(g, "compute")),
               (double)json_integer_value(json_object_get(g, "memory_bytes")) / (1 << 30),
               (double)json_integer_value(json_object_get(g, "free_bytes")) / (1 << 30),
               (int)json_integer_value(json_object_get(g, "multiprocessors")));
      }
    }
    printf(_("Backend t3d will use: %s\n"), count > 0 ? "cuda" : "cpu");
  }
  json_decref(root);
  return 0;
}
