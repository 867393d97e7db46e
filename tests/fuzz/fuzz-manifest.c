/* libFuzzer target for the `t3d eval` manifest reader: any bytes go through
 * t3d_eval_manifest_parse (and t3d_eval_label_names_parse), and a manifest that loads is walked.
 * Not a correctness test (tests/test-eval.c is): it looks for crashes, leaks and UB.
 * Build: ./configure --enable-fuzzers CC=clang CXX=clang++; run: tests/fuzz/fuzz-manifest DIR. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/model/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  t3d_eval_manifest *m = NULL;
  volatile size_t sink = 0;

  if (t3d_eval_manifest_parse(data, size, "fuzz.jsonl", &m) == T3D_OK) {
    size_t n = t3d_eval_manifest_count(m);
    if (n == 0)
      __builtin_trap(); /* the parser promises at least one case */
    for (size_t i = 0; i < n; i++) {
      const t3d_eval_case *c = t3d_eval_manifest_case(m, i);
      if (!c || !c->name || !c->series || !c->report || !*c->name || c->series[0] == '/')
        __builtin_trap(); /* required members present, paths relative */
      sink += strlen(c->name) + strlen(c->series) + strlen(c->report) + (c->labels ? strlen(c->labels) : 0);
      for (size_t t = 0; t < c->ntruth; t++) {
        bool present;
        if (!t3d_eval_case_truth(c, c->truth[t].name, &present))
          __builtin_trap();
        sink += present;
      }
    }
    t3d_eval_manifest_free(m);
  } else if (m) {
    __builtin_trap(); /* a failed parse must not hand out a manifest */
  }

  char **names = NULL;
  size_t count = 0;
  if (t3d_eval_label_names_parse(data, size, "fuzz.json", &names, &count) == T3D_OK) {
    if (count == 0 || count > 256)
      __builtin_trap();
    for (size_t i = 0; i < count; i++)
      sink += strlen(names[i]);
    t3d_eval_free_names(names, count);
  } else if (names || count) {
    __builtin_trap();
  }
  (void)sink;
  return 0;
}
