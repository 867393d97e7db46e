/* libFuzzer target for the report's handling of untrusted text: the first line of the input
 * names a finding, the rest is a similar case's report text that the phrasing rule scans for a
 * sentence to reuse (core/report/report.h). Not a correctness test (tests/test-report-text.c
 * is): it looks for crashes, leaks and UB in sentence splitting and matching.
 * Build: ./configure --enable-fuzzers CC=clang CXX=clang++; run: tests/fuzz/fuzz-report DIR
 * (tests/fuzz/fuzz-corpus-report --write DIR writes seeds). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char hash[] = "0000000000000000000000000000000000000000000000000000000000000000";
  t3d_volume *v = NULL;
  t3d_report *r = NULL;
  char *text = malloc(size + 1);
  if (!text || t3d_volume_new(&v, 2, 2, 2) != T3D_OK) {
    free(text);
    return 0;
  }
  memcpy(text, data, size);
  text[size] = '\0';
  char *nl = strchr(text, '\n');
  const char *body = nl ? nl + 1 : "";
  if (nl) *nl = '\0';

  t3d_finding_result f[2];
  memset(f, 0, sizeof f);
  strncpy(f[0].name, text, sizeof f[0].name - 1);
  f[0].probability = 0.9;
  strcpy(f[1].name, "pleural effusion");
  f[1].probability = 0.7;
  t3d_analysis_result res;
  memset(&res, 0, sizeof res);
  res.findings = f;
  res.nfindings = 2;
  const char *names[2] = {f[0].name, f[1].name};
  t3d_report_neighbour nb[2] = {{"a", body, 0.9, names, 2}, {NULL, body, 0.95, names + 1, 1}};
  t3d_report_params p = t3d_report_default_params();
  p.model_name = "fuzz";
  p.model_sha256 = hash;
  p.neighbours = nb;
  p.nneighbours = 2;
  if (t3d_report_create(v, &res, &p, &r) == T3D_OK) {
    if (!strstr(t3d_report_text(r, T3D_REPORT_TEXT), "FINDINGS")) __builtin_trap();
    /* phrasing only ever comes from the one close neighbour set that lists the finding */
    int from = t3d_report_finding_phrased_from(r, 1);
    if (from != -1 && from != 0 && from != 1) __builtin_trap();
  }
  t3d_report_free(r);
  t3d_volume_free(v);
  free(text);
  return 0;
}
