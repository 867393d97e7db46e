/* The one comparison the model parity tools (vision, text) print and judge by: cosine
 * similarity and max |a - r| / max |r| over n values, with the worst index shown.
 * Test-only; not the op parity test, which judges per op with its own tolerances. */
#ifndef T3D_TESTS_PARITY_COMPARE_H
#define T3D_TESTS_PARITY_COMPARE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Prints one line (label padded to `width`) and returns true when cosine >= cos_min and the
 * relative error <= rel_max, neither NaN. */
static bool parity_compare(const char *what, int width, const float *a, const float *r, size_t n, double cos_min,
                           double rel_max)
{
  double dot = 0, na = 0, nr = 0, maxd = 0, maxr = 0;
  size_t worst = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - r[i]);
    dot += (double)a[i] * r[i];
    na += (double)a[i] * a[i];
    nr += (double)r[i] * r[i];
    if (d > maxd || isnan(d)) {
      maxd = d;
      worst = i;
    }
    if (fabs(r[i]) > maxr)
      maxr = fabs(r[i]);
  }
  double cosv = dot / (sqrt(na) * sqrt(nr) + 1e-300), rel = maxd / (maxr > 0 ? maxr : 1);
  bool ok = cosv >= cos_min && rel <= rel_max && !isnan(cosv) && !isnan(rel);
  printf("%-*s n=%-8zu cosine %.9f  max rel err %.3e  (worst [%zu]: t3d %.7g ref %.7g)  %s\n", width, what, n, cosv,
         rel, worst, n ? a[worst] : 0.0, n ? r[worst] : 0.0, ok ? "ok" : "FAIL");
  return ok;
}

#endif
