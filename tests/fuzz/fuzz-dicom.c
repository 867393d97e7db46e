/* libFuzzer target for the DICOM reader: each input is one file, scanned and (when it forms a
 * series) loaded, through DCMTK, our shim, the J2K path and the C policy. Not a unit test.
 * Build: ./configure --enable-fuzzers CC=clang CXX=clang++; run: tests/fuzz/fuzz-dicom CORPUS_DIR
 * (tests/dicom-testgen-cli DIR writes seed files). The reader takes paths, so the input goes
 * through one temporary file per process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/dicom/dicom.h"

static char path[4096];

static void remove_tmp(void)
{
  remove(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!path[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz-dicom-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
      abort(); /* the harness, not the library: no way to run without a file */
    close(fd);
    atexit(remove_tmp); /* make check runs this entry point too: leave nothing behind */
  }
  FILE *f = fopen(path, "wb");
  if (!f)
    return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  t3d_dicom_scan *scan = NULL;
  if (t3d_dicom_scan_path(path, &scan) == T3D_OK) {
    for (size_t i = 0; i < t3d_dicom_scan_series_count(scan); i++) {
      t3d_volume *v = NULL;
      if (t3d_dicom_load_series(scan, i, NULL, &v) == T3D_OK)
        t3d_volume_free(v);
    }
  }
  t3d_dicom_scan_free(scan);
  return 0;
}
