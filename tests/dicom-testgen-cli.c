/* Test helper for tests/test-cli-info.sh: writes a small folder (a 3-slice CT series, a localizer,
 * a text file) with tests/dicom-testgen. Test code only. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "tests/dicom-testgen.h"

int main(int argc, char **argv)
{
  char err[512], path[4096];
  int32_t vals[80];
  tg_image g;
  FILE *f;
  if (argc != 2) {
    fprintf(stderr, "usage: dicom-testgen-cli DIR\n");
    return 2;
  }
  tg_defaults(&g);
  g.values = vals;
  for (int k = 0; k < 3; k++) {
    for (int p = 0; p < 80; p++)
      vals[p] = p + k;
    g.ipp[2] = 2.5 * k;
    g.instance_number = k + 1;
    snprintf(path, sizeof path, "%s/slice%d.dcm", argv[1], k);
    if (tg_write(path, &g, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
  }
  g.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
  snprintf(path, sizeof path, "%s/scout.dcm", argv[1]);
  if (tg_write(path, &g, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  snprintf(path, sizeof path, "%s/notes.txt", argv[1]);
  if (!(f = fopen(path, "w")))
    return 1;
  fputs("hello\n", f);
  fclose(f);
  return 0;
}
