/* The ONNX peer rows of `t3d bench`: OpenVINO (f32 and bf16 inference precision) and ONNX
 * Runtime on an ONNX export of the PyTorch reference networks with t3d's weights, each row in
 * its own Python process (tests/reference/peer_bench.py), scored against PyTorch fp32.
 * Not the t3d or PyTorch rows themselves (cli/cmd_bench.c runs those). */
#ifndef T3D_CLI_BENCH_PEERS_H
#define T3D_CLI_BENCH_PEERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/base/status.h"

#define T3D_BENCH_ROWS 3 /* encoder, segment, text */

/* How many runs a row times, every engine alike: at least --repeat, and more while the timed runs
 * add up to less than T3D_BENCH_MIN_MS, at most T3D_BENCH_MAX_RUNS. A best of 2 or 3 runs of a
 * 0.15 s row was at the mercy of one descheduled thread on a shared machine (the text row once
 * came out 1.4x its other runs). t3d's children apply it here (cmd_bench.c); the peers
 * (peer_bench.py run) and the PyTorch rows (t3d_reference.py bench, bench-text) get both values
 * as --min-ms and --max-runs. */
#define T3D_BENCH_MIN_MS 1000.0
#define T3D_BENCH_MAX_RUNS 20

typedef struct {
  const char *python;      /* interpreter with torch, monai, transformers (+ openvino, onnxruntime) */
  const char *script;      /* tests/reference/peer_bench.py */
  const char *io;          /* folder the t3d children dumped their input and outputs into */
  const char *config_json; /* {"model": ...} of the benchmarked config */
  const char *model;       /* t3d model file (the weights every engine gets) */
  const int64_t *shape;    /* vision input N,C,D,H,W */
  int threads, repeat;
  FILE *json;              /* every row as one JSON line, or NULL */
  /* the t3d child of each row (NULL: none), run again right before that row's engines, so that
   * t3d and its peers are timed minutes apart at most: on a shared machine the speed drifts
   * (measured here: 20 % between runs of the same binary a few minutes apart) */
  const char *t3d_cmd[T3D_BENCH_ROWS];
} t3d_bench_peers_params;

/* Exports, runs every engine row and prints the peer table; t3d[i] is the t3d child's JSON of
 * row i (encoder, segment, text: ms, cpu_ms, vmhwm_kib, isa) or NULL, replaced by the rerun of
 * t3d_cmd[i] where that succeeds. Missing Python packages
 * give a skip note, not a failure. Returns 0, or 1 when an engine that imported failed a row. */
int t3d_bench_peers(const t3d_bench_peers_params *p, json_t *const t3d[T3D_BENCH_ROWS]);

/* Runs cmd; the last line of its output that starts with '{', parsed (caller's), or NULL. */
json_t *t3d_bench_run_json(const char *cmd);
/* j[key] as a number, NAN when j is NULL or key is missing or not a number. */
double t3d_bench_num(const json_t *j, const char *key);

/* Writes n bytes to io/name (the child's side of the exchange). */
t3d_status t3d_bench_dump(const char *io, const char *name, const void *data, size_t n);

#endif
