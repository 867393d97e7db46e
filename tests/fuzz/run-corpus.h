/* Seed corpus for a libFuzzer target, built by the test itself (no data files), and the
 * interface between tests/fuzz/run-corpus.c (the shared driver) and each target's seed file
 * tests/fuzz/seeds-<target>.c. Test code only: it checks harnesses, not parser results. */
#ifndef T3D_TESTS_FUZZ_RUN_CORPUS_H
#define T3D_TESTS_FUZZ_RUN_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char name[64];  /* file name under --write DIR */
  uint8_t *bytes; /* owned by the list */
  size_t len;
} fuzz_seed;

typedef struct {
  fuzz_seed *v;
  size_t n, cap;
} fuzz_seeds;

/* Appends a copy of len bytes; false (message on stderr) when out of memory. */
bool fuzz_seeds_add(fuzz_seeds *s, const char *name, const void *bytes, size_t len);
/* Appends the contents of the file at path. */
bool fuzz_seeds_add_file(fuzz_seeds *s, const char *name, const char *path);
/* A fresh temporary directory path into buf (mkdtemp under $TMPDIR or /tmp); false on failure.
 * fuzz_rmtree removes it and its files (one level deep) again. */
bool fuzz_tmpdir(char *buf, size_t size);
void fuzz_rmtree(const char *dir);

/* Provided by each target's seed file: its name in messages, the fewest seeds it must produce,
 * and the generator (valid files from t3d's own writers, variants and regression inputs; the
 * driver adds truncations and bit flips). Returns false, message on stderr, on failure. */
extern const char fuzz_target_name[];
extern const size_t fuzz_min_seeds;
bool fuzz_make_seeds(fuzz_seeds *s);

/* The target's libFuzzer entry point (tests/fuzz/fuzz-<target>.c). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
