/* Runs the libFuzzer entry point (tests/fuzz/fuzz-modelfile.c) over the generated corpus in the
 * normal build, so the harness itself is compiled and exercised by `make check`.
 * With --write DIR it instead saves the corpus as seed files for a real fuzzing run. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"
#include "tests/check.h"
#include "tests/modelfile-corpus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int write_seeds(const char *dir, const mf_case *cases, size_t n)
{
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
    f = fopen(path, "wb");
    if (!f || fwrite(cases[i].bytes, 1, cases[i].len, f) != cases[i].len || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", path);
      return 1;
    }
  }
  printf("wrote %zu seeds to %s\n", n, dir);
  return 0;
}

int main(int argc, char **argv)
{
  mf_case *cases = NULL;
  size_t n = mf_corpus_build(&cases);
  int rc;

  CHECK(n >= 20);
  if (argc == 3 && strcmp(argv[1], "--write") == 0) {
    rc = write_seeds(argv[2], cases, n);
    mf_corpus_free(cases, n);
    return rc;
  }
  for (size_t i = 0; i < n; i++) {
    CHECK_INT_EQ(LLVMFuzzerTestOneInput(cases[i].bytes, cases[i].len), 0);
    /* every prefix of the small cases too: truncation at each byte must be refused cleanly */
    if (cases[i].len <= 512)
      for (size_t k = 0; k < cases[i].len; k++)
        LLVMFuzzerTestOneInput(cases[i].bytes, k);
  }
  printf("fuzz entry ran over %zu corpus files\n", n);
  mf_corpus_free(cases, n);
  return check_finish("test-fuzz-corpus");
}
