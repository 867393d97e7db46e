/* Minimal test assertions for t3d's C tests: every failure prints the expression, both values
 * and the location, and the test exits non-zero at the end. Not a framework: one header. */
#ifndef T3D_TESTS_CHECK_H
#define T3D_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    check_count++;                                                                  \
    if (!(cond)) {                                                                  \
      check_failures++;                                                             \
      fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond);              \
    }                                                                               \
  } while (0)

#define CHECK_INT_EQ(a, b)                                                          \
  do {                                                                              \
    long long va_ = (long long)(a), vb_ = (long long)(b);                           \
    check_count++;                                                                  \
    if (va_ != vb_) {                                                               \
      check_failures++;                                                             \
      fprintf(stderr, "%s:%d: FAIL: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
              #a, #b, va_, vb_);                                                    \
    }                                                                               \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                       \
  do {                                                                              \
    double va_ = (double)(a), vb_ = (double)(b);                                    \
    check_count++;                                                                  \
    if (!(fabs(va_ - vb_) <= (tol))) {                                              \
      check_failures++;                                                             \
      fprintf(stderr, "%s:%d: FAIL: %s ~ %s (%.9g vs %.9g, tol %g)\n", __FILE__,    \
              __LINE__, #a, #b, va_, vb_, (double)(tol));                           \
    }                                                                               \
  } while (0)

/* Expect a t3d status; prints the detail message on mismatch. */
#define CHECK_STATUS(expr, want)                                                    \
  do {                                                                              \
    int got_ = (int)(expr);                                                         \
    check_count++;                                                                  \
    if (got_ != (int)(want)) {                                                      \
      check_failures++;                                                             \
      fprintf(stderr, "%s:%d: FAIL: %s returned %d (%s), want %d: %s\n", __FILE__,  \
              __LINE__, #expr, got_, t3d_strerror((t3d_status)got_), (int)(want),   \
              t3d_error_detail());                                                  \
    }                                                                               \
  } while (0)

static inline int check_finish(const char *name)
{
  if (check_count == 0) {
    fprintf(stderr, "%s: no checks ran\n", name);
    return 1;
  }
  fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

#endif
