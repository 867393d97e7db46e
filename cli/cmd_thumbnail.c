/* `t3d thumbnail SERIES_DIR -o OUT.pgm`: the middle slice of a series, windowed for soft tissue
 * and scaled to fit a square, as a binary PGM, for the viewer plugin's similar-case list (which
 * runs it as a worker process, so a bad file never reaches the viewer). Not an image exporter:
 * one slice as stored, grey only. */
#include "config.h"

#include <getopt.h>
#include <libintl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/dicom/dicom.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d thumbnail SERIES_DIR -o OUT.pgm [--size N] [--series UID]\n"
                "Writes the middle slice of a series (window 400/40 HU) scaled to fit N x N pixels\n"
                "(default 96) as a binary PGM image.\n"));
}

/* Nearest-neighbour samples of slice k, aspect kept by pixel spacing, into a w x h grey image. */
static t3d_status write_pgm(const t3d_volume *v, int size, const char *path)
{
  int64_t k = v->nz / 2;
  double wmm = (double)v->nx * v->spacing[0], hmm = (double)v->ny * v->spacing[1];
  double scale = size / fmax(wmm, hmm);
  int w = (int)fmax(1, round(wmm * scale)), h = (int)fmax(1, round(hmm * scale));
  unsigned char *img = malloc((size_t)w * (size_t)h);
  if (!img) return t3d_error(T3D_ERR_NOMEM, "thumbnail: %dx%d pixels", w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int64_t i = (int64_t)((x + 0.5) * (double)v->nx / w), j = (int64_t)((y + 0.5) * (double)v->ny / h);
      float hu = v->data[(k * v->ny + j) * v->nx + i];
      double g = (hu - (40.0 - 200.0)) / 400.0 * 255.0;
      img[(size_t)y * (size_t)w + (size_t)x] = (unsigned char)(g < 0 ? 0 : g > 255 ? 255 : g);
    }
  FILE *f = fopen(path, "wb");
  t3d_status s = T3D_OK;
  if (!f || fprintf(f, "P5\n%d %d\n255\n", w, h) < 0 || fwrite(img, 1, (size_t)w * (size_t)h, f) != (size_t)w * (size_t)h)
    s = t3d_error(T3D_ERR_IO, "%s: cannot write", path);
  if (f && fclose(f) != 0 && s == T3D_OK) s = t3d_error(T3D_ERR_IO, "%s: cannot write", path);
  free(img);
  return s;
}

int t3d_cmd_thumbnail(int argc, char **argv)
{
  const char *out = NULL, *uid = NULL;
  int size = 96, c, rc = 1;
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"size", required_argument, NULL, 's'},
                                       {"series", required_argument, NULL, 'u'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'o': out = optarg; break;
    case 's': size = atoi(optarg); break;
    case 'u': uid = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1 || !out || size < 8 || size > 1024) {
    usage(stderr);
    return 2;
  }
  t3d_dicom_scan *scan = NULL;
  t3d_volume *v = NULL;
  t3d_status s;
  size_t idx = 0, n = 0;
  if ((s = t3d_dicom_scan_path(argv[optind], &scan)) != T3D_OK) goto fail;
  n = t3d_dicom_scan_series_count(scan);
  if (n == 0) {
    s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no DICOM series found", argv[optind]);
    goto fail;
  }
  if (uid) {
    if ((s = t3d_dicom_scan_find_series(scan, uid, &idx)) != T3D_OK) goto fail;
  } else {
    if ((idx = t3d_dicom_scan_first_ct(scan)) == n) idx = 0;
  }
  if ((s = t3d_dicom_load_series(scan, idx, NULL, &v)) != T3D_OK) goto fail;
  if ((s = write_pgm(v, size, out)) != T3D_OK) goto fail;
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "thumbnail");
cleanup:
  t3d_volume_free(v);
  t3d_dicom_scan_free(scan);
  return rc;
}
