/* The ONNX peer rows of `t3d bench` (OpenVINO f32/bf16, ONNX Runtime f32): export once, one
 * Python process per engine row, a table with speed, peak RSS, agreement with PyTorch fp32 and
 * the kernels each side used. Not the engines themselves (tests/reference/peer_bench.py). */
#include "config.h"

#include <libintl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_peers.h"

#define _(s) gettext(s)

json_t *t3d_bench_run_json(const char *cmd)
{
  FILE *p = popen(cmd, "r");
  char line[4096], last[4096] = "";
  json_error_t err;
  if (!p) return NULL;
  while (fgets(line, sizeof line, p))
    if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
  pclose(p);
  return json_loads(last, 0, &err);
}

double t3d_bench_num(const json_t *j, const char *key)
{
  const json_t *v = j ? json_object_get(j, key) : NULL;
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *j, const char *key, const char *dflt)
{
  const json_t *v = j ? json_object_get(j, key) : NULL;
  return json_is_string(v) ? json_string_value(v) : dflt;
}

t3d_status t3d_bench_dump(const char *io, const char *name, const void *data, size_t n)
{
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", io, name);
  FILE *f = fopen(path, "wb");
  if (!f) return t3d_error(T3D_ERR_IO, "bench: cannot write %s", path);
  size_t w = fwrite(data, 1, n, f);
  if (fclose(f) != 0 || w != n) return t3d_error(T3D_ERR_IO, "bench: cannot write %s", path);
  return T3D_OK;
}

/* The last lines of io/log, to stderr, when a peer process gave no JSON. */
static void show_log(const char *io, const char *log)
{
  char path[1024], line[512], tail[8][512];
  int n = 0;
  snprintf(path, sizeof path, "%s/%s", io, log);
  FILE *f = fopen(path, "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) snprintf(tail[n++ % 8], sizeof tail[0], "%s", line);
  fclose(f);
  for (int i = n > 8 ? n - 8 : 0; i < n; i++) fprintf(stderr, "  %s", tail[i % 8]);
}

static void print_line(const char *row, const char *engine, const char *prec, const json_t *r, double t3d_ms)
{
  double ms = t3d_bench_num(r, "ms");
  printf("%-21s %-20s %-27s %8.0f %8.0f %7.0f %6.2f %11.8f %11.2e  %s\n", row, engine, prec, ms,
         t3d_bench_num(r, "cpu_ms"), t3d_bench_num(r, "vmhwm_kib") / 1024, ms / t3d_ms, t3d_bench_num(r, "cosine"),
         t3d_bench_num(r, "max_rel_err"), str(r, "isa", ""));
  fflush(stdout);
}

static void emit_json(FILE *to, const char *row, const char *engine, json_t *r)
{
  if (!to || !r) return;
  json_t *o = json_deep_copy(r);
  if (!o) return;
  json_object_set_new(o, "row", json_string(row));
  json_object_set_new(o, "engine", json_string(engine));
  char *s = json_dumps(o, JSON_COMPACT);
  if (s) fprintf(to, "%s\n", s);
  free(s);
  json_decref(o);
}

int t3d_bench_peers(const t3d_bench_peers_params *p, json_t *const t3d[T3D_BENCH_ROWS])
{
  static const char *const rows[T3D_BENCH_ROWS] = {"encoder", "segment", "text"};
  static const char *const labels[T3D_BENCH_ROWS] = {"encoder", "encoder+segmentation", "text"};
  static const struct {
    const char *engine, *name, *precision;
  } engines[] = {{"openvino", "OpenVINO", "f32"}, {"openvino", "OpenVINO", "bf16"}, {"onnxruntime", "ONNX Runtime", "f32"}};
  char cmd[4096];
  int rc = 0;

  snprintf(cmd, sizeof cmd,
           "'%s' '%s' export --config '%s' --model '%s' --shape %lld,%lld,%lld,%lld,%lld --io '%s' --threads %d "
           "2>'%s/export.log'",
           p->python, p->script, p->config_json, p->model, (long long)p->shape[0], (long long)p->shape[1],
           (long long)p->shape[2], (long long)p->shape[3], (long long)p->shape[4], p->io, p->threads, p->io);
  json_t *ex = t3d_bench_run_json(cmd);
  if (!ex || json_object_get(ex, "skip")) {
    printf(_("peer rows (OpenVINO, ONNX Runtime) skipped: %s\n"),
           ex ? str(ex, "skip", "") : _("the ONNX export failed (its log follows)"));
    if (!ex) show_log(p->io, "export.log");
    json_decref(ex);
    return ex ? 0 : 1;
  }
  printf(_("peers: ONNX (opset %.0f, exported by torch %s) of the PyTorch reference with t3d's weights, %d threads, "
           "best of %d; agreement = cosine and max|out - ref| / max|ref| against PyTorch fp32 on the same input; "
           "x t3d = engine ms / t3d ms\n"),
         t3d_bench_num(ex, "opset"), str(ex, "torch", "?"), p->threads, p->repeat);
  const char *key;
  json_t *why;
  json_object_foreach(json_object_get(ex, "failed"), key, why)
    printf(_("%s: not exported to ONNX (%s)\n"), key, json_string_value(why) ? json_string_value(why) : "?");
  printf(_("t3d's rows here were timed again right before each row's engines: a shared machine's speed drifts "
           "between runs\n"));
  printf("%-21s %-20s %-27s %8s %8s %7s %6s %11s %11s  %s\n", _("row"), _("engine"), _("precision"), _("ms"),
         _("cpu ms"), _("MiB"), _("x t3d"), _("cosine"), _("max rel err"), _("ISA / kernels"));
  for (int i = 0; i < T3D_BENCH_ROWS; i++) {
    json_t *again = p->t3d_cmd[i] ? t3d_bench_run_json(p->t3d_cmd[i]) : NULL;
    const json_t *ours = again && !isnan(t3d_bench_num(again, "ms")) ? again : t3d[i];
    double t3d_ms = t3d_bench_num(ours, "ms");
    json_t *mine = NULL;
    if (ours) {
      snprintf(cmd, sizeof cmd, "'%s' '%s' agree --io '%s' --row %s 2>>'%s/agree.log'", p->python, p->script, p->io,
               rows[i], p->io);
      json_t *ag = t3d_bench_run_json(cmd);
      mine = json_deep_copy(ours);
      if (mine && ag) json_object_update(mine, ag);
      if (!ag) show_log(p->io, "agree.log");
      json_decref(ag);
    }
    char label[64];
    if (i == 2 && !isnan(t3d_bench_num(ours, "tokens")))
      snprintf(label, sizeof label, "text (%.0f tokens)", t3d_bench_num(ours, "tokens"));
    else
      snprintf(label, sizeof label, "%s", labels[i]);
    if (mine) {
      print_line(label, "t3d", str(mine, "precision", "f32"), mine, t3d_ms);
      emit_json(p->json, rows[i], "t3d", mine);
    }
    json_decref(mine);
    for (size_t e = 0; e < sizeof engines / sizeof engines[0]; e++) {
      char log[64], prec[64], name[64];
      snprintf(log, sizeof log, "%s-%s-%s.log", rows[i], engines[e].engine, engines[e].precision);
      snprintf(cmd, sizeof cmd,
               "'%s' '%s' run --engine %s --precision %s --row %s --io '%s' --threads %d --repeat %d --min-ms %.0f "
               "--max-runs %d 2>'%s/%s'",
               p->python, p->script, engines[e].engine, engines[e].precision, rows[i], p->io, p->threads, p->repeat,
               T3D_BENCH_MIN_MS, T3D_BENCH_MAX_RUNS, p->io, log);
      json_t *r = t3d_bench_run_json(cmd);
      const char *ver = str(r, "version", "");
      snprintf(name, sizeof name, "%s %s", engines[e].name, ver);
      if (!r || (!json_object_get(r, "skip") && isnan(t3d_bench_num(r, "ms")))) {
        printf(_("%-21s %-20s %-27s failed (log follows)\n"), label, engines[e].name, engines[e].precision);
        show_log(p->io, log);
        rc = 1;
      } else if (json_object_get(r, "skip")) {
        printf(_("%-21s %-20s %-27s skipped: %s\n"), label, engines[e].name, engines[e].precision,
               str(r, "skip", ""));
      } else {
        const char *ran = str(r, "ran", "?");
        if (strcmp(ran, engines[e].precision) == 0)
          snprintf(prec, sizeof prec, "%s", ran);
        else
          snprintf(prec, sizeof prec, _("%s (not native: ran %s)"), engines[e].precision, ran);
        print_line(label, name, prec, r, t3d_ms);
        emit_json(p->json, rows[i], engines[e].engine, r);
      }
      json_decref(r);
    }
    json_decref(again);
  }
  json_decref(ex);
  return rc;
}
