/* The `t3d` subcommands. Each lives in its own cli/cmd_*.c and returns a process exit code:
 * 0 success, 1 failure (message already printed), 2 usage error. */
#ifndef T3D_CLI_COMMANDS_H
#define T3D_CLI_COMMANDS_H

#include "kernels/backend.h"

typedef struct {
  const char *name;
  const char *summary; /* one line, shown by `t3d help` (translated) */
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} t3d_command;

/* one declaration per command, alphabetical */
int t3d_cmd_analyze(int argc, char **argv);
int t3d_cmd_bench(int argc, char **argv);
int t3d_cmd_bench_dicom(int argc, char **argv);
int t3d_cmd_bench_ops(int argc, char **argv);
int t3d_cmd_bench_search(int argc, char **argv);
int t3d_cmd_devices(int argc, char **argv);
int t3d_cmd_eval(int argc, char **argv);
int t3d_cmd_index(int argc, char **argv);
int t3d_cmd_info(int argc, char **argv);
int t3d_cmd_model_info(int argc, char **argv);
int t3d_cmd_model_init(int argc, char **argv);
int t3d_cmd_phantom(int argc, char **argv);
int t3d_cmd_phantom_write(int argc, char **argv);
int t3d_cmd_preprocess(int argc, char **argv);
int t3d_cmd_report(int argc, char **argv);
int t3d_cmd_search(int argc, char **argv);
int t3d_cmd_similar(int argc, char **argv);
int t3d_cmd_thumbnail(int argc, char **argv);
int t3d_cmd_volume(int argc, char **argv);

/* Prints "t3d: <strerror>: <detail>" for a failed status; returns 1 for use as exit code. */
int t3d_cli_fail(int status, const char *what);

/* The model file commands use without --model: $T3D_MODEL, else the build tree's t3d-tiny-init
 * model (T3D_BUILD_MODEL, when it exists), else PKGDATADIR/t3d-tiny-init.safetensors. Static storage. */
const char *t3d_cli_default_model(void);

/* --precision (cli/precision.c): parse (0, or 2 after printing why), the help line, and what
 * a backend computes in, e.g. "bf16 (avx2)" (returns buf). */
#include <stddef.h>
#include <stdio.h>
#include "kernels/backend.h"
int t3d_cli_parse_precision(const char *cmd, const char *arg, t3d_precision *out);
void t3d_cli_precision_help(FILE *to);
const char *t3d_cli_precision_desc(const t3d_backend *be, char *buf, size_t size);
/* What a t3d_backend.bf16_ops mask runs in bf16, for people: "bf16", "fp32" or which ops (translated). */
const char *t3d_cli_bf16_ops_desc(unsigned ops);
/* --device DEV (cli/device_cli.c): the backend for DEV ("auto", "cpu", "cuda", "cuda:N"; NULL means
 * $T3D_DEVICE, else "auto"), falling back to the CPU with one "t3d: note:" line on stderr when
 * the GPU cannot be used. threads: CPU backend threads. *out is the caller's. */
t3d_status t3d_cli_backend(const char *device, int threads, t3d_precision precision, t3d_backend **out);
/* The model at path loaded onto the backend for device at precision (--precision); when that is CUDA and the load
 * fails there (memory, CUDA error), one note and the CPU instead. *be, *model are the caller's
 * (free the model first). */
struct t3d_model;
/* After a model call failed with T3D_ERR_BACKEND on a GPU backend (a kernel that failed to launch
 * or run): one note, the model at path reloaded onto the CPU into *be / *model (the old ones
 * freed), and true: the caller repeats the call. False (nothing changed) for any other status, a
 * CPU backend, or when the CPU reload fails. */
bool t3d_cli_gpu_failed(t3d_status s, const char *path, int threads, t3d_precision precision, t3d_backend **be,
                        struct t3d_model **model);
/* getopt_long value and help line of --device, the same in every command */
#define T3D_CLI_OPT_DEVICE 0x1de
#define T3D_CLI_DEVICE_HELP "  --device DEV    auto (default: the GPU when usable, else the CPU), cpu, cuda or cuda:N\n"
t3d_status t3d_cli_model_open(const char *path, const char *device, int threads, t3d_precision precision,
                              t3d_backend **be, struct t3d_model **model);

#endif
