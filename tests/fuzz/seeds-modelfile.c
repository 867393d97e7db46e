/* Seeds for the model-file fuzz target: the malformed and valid model files of
 * tests/modelfile-corpus.c (shared with test-modelfile-corrupt). */
#include <stdio.h>

#include "tests/fuzz/run-corpus.h"
#include "tests/modelfile-corpus.h"

const char fuzz_target_name[] = "modelfile";
const size_t fuzz_min_seeds = 20;

bool fuzz_make_seeds(fuzz_seeds *s)
{
  mf_case *cases = NULL;
  size_t n = mf_corpus_build(&cases);
  bool ok = n > 0;
  for (size_t i = 0; ok && i < n; i++)
    ok = fuzz_seeds_add(s, cases[i].name, cases[i].bytes, cases[i].len);
  mf_corpus_free(cases, n);
  return ok;
}
