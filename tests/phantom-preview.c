/* Side-by-side PNG of a real CT and a phantom case (lung and soft-tissue windows, chest and
 * upper-abdomen levels) with HU statistics per tissue range, to keep the phantom honest
 * (docs/phantom-vs-real.png). A development tool, not part of the t3d command.
 * Usage: phantom-preview REAL_SERIES_DIR SEED OUT.png [contrast|plain] (default: as drawn) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/dicom/dicom.h"
#include "core/model/phantom.h"

#define PANEL 300
#define FOV_MM 400.0

/* Bilinear HU at LPS point p on slice k of v (in-plane index from the slice's own axes). */
static float sample_slice(const t3d_volume *v, int64_t k, double x, double y)
{
  /* x, y: mm from the slice centre along the volume's first two axes */
  double fi = x / v->spacing[0] + (double)(v->nx - 1) / 2, fj = y / v->spacing[1] + (double)(v->ny - 1) / 2;
  int64_t i = (int64_t)floor(fi), j = (int64_t)floor(fj);
  if (i < 0 || j < 0 || i + 1 >= v->nx || j + 1 >= v->ny)
    return -1024;
  double a = fi - (double)i, b = fj - (double)j;
  const float *s = v->data + (size_t)k * (size_t)(v->nx * v->ny);
  return (float)((1 - a) * (1 - b) * s[j * v->nx + i] + a * (1 - b) * s[j * v->nx + i + 1] +
                 (1 - a) * b * s[(j + 1) * v->nx + i] + a * b * s[(j + 1) * v->nx + i + 1]);
}

static void render(uint8_t *img, int stride, int col, int row, const t3d_volume *v, int64_t k, double level,
                   double width)
{
  for (int py = 0; py < PANEL; py++)
    for (int px = 0; px < PANEL; px++) {
      double x = ((px + 0.5) / PANEL - 0.5) * FOV_MM, y = ((py + 0.5) / PANEL - 0.5) * FOV_MM;
      double hu = sample_slice(v, k, x, y);
      double g = (hu - (level - width / 2)) / width * 255;
      img[(size_t)(row * PANEL + py) * (size_t)stride + (size_t)(col * PANEL + px)] =
        (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
    }
}

/* Label ids of slice k as grey levels (id * 28), nearest neighbour. */
static void render_labels(uint8_t *img, int stride, int col, int row, const t3d_volume *v, const uint8_t *lab,
                          int64_t k)
{
  for (int py = 0; py < PANEL; py++)
    for (int px = 0; px < PANEL; px++) {
      double x = ((px + 0.5) / PANEL - 0.5) * FOV_MM, y = ((py + 0.5) / PANEL - 0.5) * FOV_MM;
      int64_t i = (int64_t)floor(x / v->spacing[0] + (double)(v->nx - 1) / 2 + 0.5);
      int64_t j = (int64_t)floor(y / v->spacing[1] + (double)(v->ny - 1) / 2 + 0.5);
      uint8_t g = 0;
      if (i >= 0 && j >= 0 && i < v->nx && j < v->ny)
        g = (uint8_t)(lab[((size_t)k * (size_t)v->ny + (size_t)j) * (size_t)v->nx + (size_t)i] * 28);
      img[(size_t)(row * PANEL + py) * (size_t)stride + (size_t)(col * PANEL + px)] = g;
    }
}

static void stats(const char *name, const t3d_volume *v, int64_t k)
{
  static const struct {
    const char *tissue;
    double lo, hi;
  } r[] = {{"air", -1100, -960}, {"lung", -960, -600}, {"fat", -200, -30}, {"soft", -30, 250}, {"bone", 250, 3100}};
  const float *s = v->data + (size_t)k * (size_t)(v->nx * v->ny);
  size_t n = 0, all = (size_t)(v->nx * v->ny);
  for (size_t i = 0; i < all; i++)
    n += s[i] >= -960; /* fractions of what is not air */
  printf("%-8s", name);
  for (int t = 1; t < 5; t++) {
    double sum = 0;
    size_t c = 0;
    for (size_t i = 0; i < all; i++)
      if (s[i] >= r[t].lo && s[i] < r[t].hi)
        sum += s[i], c++;
    printf("  %s %5.1f%% mean %6.0f", r[t].tissue, 100.0 * (double)c / (double)n, c ? sum / (double)c : 0.0);
  }
  printf("\n");
}

static void put32(FILE *f, uint32_t x)
{
  uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
  fwrite(b, 1, 4, f);
}

static void chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n)
{
  put32(f, n);
  fwrite(type, 1, 4, f);
  if (n)
    fwrite(data, 1, n, f);
  uLong crc = crc32(0, (const Bytef *)type, 4);
  crc = crc32(crc, data, n);
  put32(f, (uint32_t)crc);
}

static int write_png(const char *path, const uint8_t *img, int w, int h)
{
  size_t raw_n = (size_t)h * (size_t)(w + 1);
  uint8_t *raw = malloc(raw_n);
  uLongf zn = compressBound((uLong)raw_n);
  uint8_t *z = malloc(zn);
  FILE *f = fopen(path, "wb");
  int ok = raw && z && f;
  if (ok) {
    for (int y = 0; y < h; y++) {
      raw[(size_t)y * (size_t)(w + 1)] = 0;
      memcpy(raw + (size_t)y * (size_t)(w + 1) + 1, img + (size_t)y * (size_t)w, (size_t)w);
    }
    ok = compress2(z, &zn, raw, (uLong)raw_n, 9) == Z_OK;
  }
  if (ok) {
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    uint8_t ihdr[13] = {0};
    for (int i = 0; i < 4; i++)
      ihdr[i] = (uint8_t)((uint32_t)w >> (24 - 8 * i)), ihdr[4 + i] = (uint8_t)((uint32_t)h >> (24 - 8 * i));
    ihdr[8] = 8; /* 8-bit greyscale */
    fwrite(sig, 1, 8, f);
    chunk(f, "IHDR", ihdr, 13);
    chunk(f, "IDAT", z, (uint32_t)zn);
    chunk(f, "IEND", NULL, 0);
  }
  if (f && fclose(f) != 0)
    ok = 0;
  free(raw);
  free(z);
  return ok ? 0 : -1;
}

/* The slice of an axial volume whose centre lies nearest to height z (LPS S, mm). */
static int64_t slice_at(const t3d_volume *v, double z)
{
  int64_t best = 0;
  double bd = 1e9;
  for (int64_t k = 0; k < v->nz; k++) {
    double p[3];
    t3d_volume_index_to_lps(v, 0, 0, (double)k, p);
    if (fabs(p[2] - z) < bd)
      bd = fabs(p[2] - z), best = k;
  }
  return best;
}

int main(int argc, char **argv)
{
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s REAL_SERIES_DIR SEED OUT.png\n", argv[0]);
    return 2;
  }
  t3d_dicom_scan *scan = NULL;
  t3d_volume *real = NULL;
  t3d_phantom_case *c = NULL;
  int rc = 1;
  if (t3d_dicom_scan_path(argv[1], &scan) != T3D_OK || t3d_dicom_scan_series_count(scan) < 1 ||
      t3d_dicom_load_series(scan, 0, NULL, &real) != T3D_OK) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], t3d_error_detail());
    goto cleanup;
  }
  t3d_phantom_case_params p = t3d_phantom_case_default_params();
  p.matrix = 512, p.fov_mm = 0, p.slice_mm = 5, p.orientation = T3D_PHANTOM_AXIAL;
  p.max_voxels = 512 * 512 * 100; /* the whole chest-abdomen range */
  p.coverage = T3D_PHANTOM_CHEST_ABDOMEN;
  if (argc > 4)
    p.contrast = strcmp(argv[4], "plain") != 0;
  if (t3d_phantom_case_generate(&p, strtoull(argv[2], NULL, 10), &c) != T3D_OK) {
    fprintf(stderr, "phantom: %s\n", t3d_error_detail());
    goto cleanup;
  }
  const t3d_volume *ph = t3d_phantom_case_volume(c);
  int64_t kr = real->nz / 2, kc = slice_at(ph, -55), ka = slice_at(ph, -150);
  int w = 3 * PANEL, h = 3 * PANEL;
  uint8_t *img = calloc((size_t)w * (size_t)h, 1);
  if (!img)
    goto cleanup;
  render(img, w, 0, 0, real, kr, -600, 1500);
  render(img, w, 1, 0, ph, kc, -600, 1500);
  render(img, w, 2, 0, ph, ka, -600, 1500);
  render(img, w, 0, 1, real, kr, 40, 400);
  render(img, w, 1, 1, ph, kc, 40, 400);
  render(img, w, 2, 1, ph, ka, 40, 400);
  render_labels(img, w, 1, 2, ph, t3d_phantom_case_labels(c), kc);
  render_labels(img, w, 2, 2, ph, t3d_phantom_case_labels(c), ka);
  printf("columns: real CT slice %lld | phantom seed %s chest | phantom upper abdomen; rows: lung W1500/L-600, "
         "soft tissue W400/L40, phantom label ids\n",
         (long long)kr, argv[2]);
  stats("real", real, kr);
  stats("phantom", ph, kc);
  printf("truth: %s\n", t3d_phantom_case_truth_json(c));
  rc = write_png(argv[3], img, w, h) == 0 ? 0 : 1;
  free(img);
cleanup:
  t3d_phantom_case_free(c);
  t3d_volume_free(real);
  t3d_dicom_scan_free(scan);
  return rc;
}
