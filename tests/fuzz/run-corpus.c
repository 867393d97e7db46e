/* Shared driver that runs one libFuzzer entry point over its generated seed corpus in every
 * `make check` (gcc or clang, no libFuzzer needed), so harnesses are compiled and exercised:
 * each seed, its prefixes and deterministic bit flips/byte overwrites. Not a fuzzer.
 * Usage: fuzz-corpus-<t>           run the corpus (the test)
 *        fuzz-corpus-<t> --write D write the seeds into directory D for a real fuzzing run
 *        fuzz-corpus-<t> FILE...   run the entry point over files (reproduce a crash) */
#include "tests/fuzz/run-corpus.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/check.h"

enum { MAX_PREFIXES = 512, FLIPS_PER_SEED = 96 }; /* all prefixes of seeds up to 512 bytes */

bool fuzz_seeds_add(fuzz_seeds *s, const char *name, const void *bytes, size_t len)
{
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 32;
    fuzz_seed *v = realloc(s->v, cap * sizeof *v);
    if (!v)
      goto oom;
    s->v = v, s->cap = cap;
  }
  fuzz_seed *e = &s->v[s->n];
  snprintf(e->name, sizeof e->name, "%s", name);
  e->len = len;
  e->bytes = malloc(len ? len : 1);
  if (!e->bytes)
    goto oom;
  if (len)
    memcpy(e->bytes, bytes, len);
  s->n++;
  return true;
oom:
  fprintf(stderr, "out of memory for seed %s\n", name);
  return false;
}

bool fuzz_seeds_add_file(fuzz_seeds *s, const char *name, const char *path)
{
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  bool ok = false;
  if (!f) {
    fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
    return false;
  }
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : 65536;
      uint8_t *b = realloc(buf, cap);
      if (!b)
        goto done;
      buf = b;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  ok = !ferror(f) && fuzz_seeds_add(s, name, buf, len);
done:
  if (!ok)
    fprintf(stderr, "cannot read %s\n", path);
  fclose(f);
  free(buf);
  return ok;
}

bool fuzz_tmpdir(char *buf, size_t size)
{
  const char *t = getenv("TMPDIR");
  snprintf(buf, size, "%s/t3d-fuzz-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(buf)) {
    fprintf(stderr, "cannot create a directory %s: %s\n", buf, strerror(errno));
    return false;
  }
  return true;
}

void fuzz_rmtree(const char *dir)
{
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      char p[4096];
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      remove(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static void seeds_free(fuzz_seeds *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i].bytes);
  free(s->v);
}

static int write_seeds(const char *dir, const fuzz_seeds *s)
{
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < s->n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->v[i].name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->v[i].bytes, 1, s->v[i].len, f) != s->v[i].len || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", path);
      return 1;
    }
  }
  printf("wrote %zu %s seeds to %s\n", s->n, fuzz_target_name, dir);
  return 0;
}

static uint64_t next_rand(uint64_t *x) /* xorshift64: deterministic mutations */
{
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static int run_files(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    fuzz_seeds one = {0};
    if (!fuzz_seeds_add_file(&one, "input", argv[i])) {
      seeds_free(&one);
      return 1;
    }
    LLVMFuzzerTestOneInput(one.v[0].bytes, one.v[0].len);
    printf("ran %s (%zu bytes)\n", argv[i], one.v[0].len);
    seeds_free(&one);
  }
  return 0;
}

int main(int argc, char **argv)
{
  fuzz_seeds s = {0};
  size_t runs = 0;
  char test_name[96];

  snprintf(test_name, sizeof test_name, "fuzz-corpus-%s", fuzz_target_name);
  if (argc > 1 && strcmp(argv[1], "--write") != 0)
    return run_files(argc, argv);
  bool made = fuzz_make_seeds(&s);
  CHECK(made);
  CHECK(s.n >= fuzz_min_seeds);
  if (!made || s.n < fuzz_min_seeds)
    fprintf(stderr, "%s: %zu seeds, want at least %zu\n", test_name, s.n, fuzz_min_seeds);
  if (argc == 3 && strcmp(argv[1], "--write") == 0) {
    int rc = made ? write_seeds(argv[2], &s) : 1;
    seeds_free(&s);
    return rc;
  }
  uint8_t *mut = NULL;
  for (size_t i = 0; i < s.n; i++) {
    const fuzz_seed *e = &s.v[i];
    CHECK_INT_EQ(LLVMFuzzerTestOneInput(e->bytes, e->len), 0);
    runs++;
    /* prefixes: every one for small seeds, evenly spaced ones (plus the short ones) otherwise */
    size_t step = e->len <= MAX_PREFIXES ? 1 : e->len / MAX_PREFIXES;
    for (size_t k = 0; k < e->len; k += (k < 64 ? 1 : step)) {
      LLVMFuzzerTestOneInput(e->bytes, k);
      runs++;
    }
    if (e->len == 0)
      continue;
    uint8_t *m = realloc(mut, e->len);
    if (!m) {
      CHECK(m != NULL);
      break;
    }
    mut = m;
    uint64_t x = 0x9e3779b97f4a7c15ull ^ (i + 1);
    for (int f = 0; f < FLIPS_PER_SEED; f++) {
      memcpy(mut, e->bytes, e->len);
      int edits = 1 + (int)(next_rand(&x) % 4);
      for (int k = 0; k < edits; k++) {
        size_t pos = (size_t)(next_rand(&x) % e->len);
        uint64_t r = next_rand(&x);
        static const uint8_t special[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
        if (r & 1)
          mut[pos] ^= (uint8_t)(1u << (r >> 1) % 8);
        else
          mut[pos] = special[(r >> 1) % sizeof special];
      }
      LLVMFuzzerTestOneInput(mut, e->len);
      runs++;
    }
  }
  free(mut);
  printf("%s: entry point ran %zu times over %zu seeds\n", test_name, runs, s.n);
  seeds_free(&s);
  return check_finish(test_name);
}
