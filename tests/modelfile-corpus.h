/* Malformed (and a few valid) model files, built in memory, shared by the corruption test and
 * the fuzz-corpus test. Test code only: each case says the status and message it must produce. */
#ifndef T3D_TESTS_MODELFILE_CORPUS_H
#define T3D_TESTS_MODELFILE_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char name[64];
  int want;           /* t3d_status expected from open (or from check_model when check_model) */
  const char *expect; /* substring the error detail must contain ("" for T3D_OK) */
  bool check_model;   /* open must succeed; t3d_modelfile_check_model gives `want` */
  uint8_t *bytes;
  size_t len;
} mf_case;

/* Builds every case; returns the count, or 0 when something failed (message on stderr).
 * Free with mf_corpus_free. */
size_t mf_corpus_build(mf_case **cases);
void mf_corpus_free(mf_case *cases, size_t n);

/* A complete, tiny model file (micro config, every tensor present) written with the t3d writer
 * and read back; *bytes is malloc'ed. Returns false on failure. */
bool mf_corpus_valid_model(uint8_t **bytes, size_t *len);

#endif
