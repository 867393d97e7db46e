/* Checks a GL view screenshot of the plugin's overlay against one of the same view before the
 * analysis: the pixel where the known lesion lies carries the lesion colour (red dominates),
 * the corners of the image (air outside the body) are unchanged, every changed pixel is
 * lesion-coloured (other classes toggled off), and the view before had no lesion colour at all.
 * Usage: overlay-pixels-check BEFORE.png AFTER.png NX NY SX SY I J R G B ALPHA
 *   the series' in-plane size and spacing (mm) and the lesion's voxel column I and row J, for a
 *   view that fits the image (zoom 1), centred, row 0 at the top, column 0 at the left; the
 *   lesion colour R G B (0..255) at overlay opacity ALPHA: the lesion pixel must be
 *   (1 - ALPHA) * before + ALPHA * colour within 3 per channel.
 * Not a general image comparison. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <gdk-pixbuf/gdk-pixbuf.h>

typedef struct {
  int w, h, stride, nch;
  const guchar *px;
} image;

static int load(const char *path, GdkPixbuf **pb, image *im)
{
  GError *err = NULL;
  *pb = gdk_pixbuf_new_from_file(path, &err);
  if (!*pb) {
    fprintf(stderr, "FAIL: cannot read %s: %s\n", path, err->message);
    g_error_free(err);
    return -1;
  }
  im->w = gdk_pixbuf_get_width(*pb), im->h = gdk_pixbuf_get_height(*pb);
  im->stride = gdk_pixbuf_get_rowstride(*pb), im->nch = gdk_pixbuf_get_n_channels(*pb);
  im->px = gdk_pixbuf_read_pixels(*pb);
  return 0;
}

static const guchar *at(const image *im, int x, int y) { return im->px + (size_t)y * (size_t)im->stride + (size_t)x * (size_t)im->nch; }
static int lesion_coloured(const guchar *p) { return p[0] >= p[1] + 50 && p[0] >= p[2] + 50; }
static int same(const guchar *a, const guchar *b) { return a[0] == b[0] && a[1] == b[1] && a[2] == b[2]; }

int main(int argc, char **argv)
{
  if (argc != 13) {
    fprintf(stderr, "usage: %s BEFORE.png AFTER.png NX NY SX SY I J R G B ALPHA\n", argv[0]);
    return 2;
  }
  GdkPixbuf *pb0 = NULL, *pb1 = NULL;
  image a, b;
  int fail = 0;
  if (load(argv[1], &pb0, &a) || load(argv[2], &pb1, &b)) return 1;
  if (a.w != b.w || a.h != b.h) {
    fprintf(stderr, "FAIL: sizes differ: %dx%d vs %dx%d\n", a.w, a.h, b.w, b.h);
    return 1;
  }
  double nx = atof(argv[3]), ny = atof(argv[4]), sx = atof(argv[5]), sy = atof(argv[6]), li = atof(argv[7]),
         lj = atof(argv[8]);
  double s = fmin(a.w / (nx * sx), a.h / (ny * sy)); /* pixels per mm when the image fits */
#define PX(i) (a.w / 2.0 + ((i) + 0.5 - nx / 2) * sx * s)
#define PY(j) (a.h / 2.0 + ((j) + 0.5 - ny / 2) * sy * s)
  int x = (int)floor(PX(li)), y = (int)floor(PY(lj));
  if (x < 0 || y < 0 || x >= a.w || y >= a.h) {
    fprintf(stderr, "FAIL: lesion pixel (%d, %d) outside the %dx%d view\n", x, y, a.w, a.h);
    return 1;
  }
  const guchar *p = at(&b, x, y), *q = at(&a, x, y);
  printf("lesion voxel (%.0f, %.0f) -> pixel (%d, %d): before (%d,%d,%d), after (%d,%d,%d)\n", li, lj, x, y, q[0], q[1],
         q[2], p[0], p[1], p[2]);
  double alpha = atof(argv[12]);
  for (int c = 0; c < 3; c++) {
    double want = (1 - alpha) * q[c] + alpha * atof(argv[9 + c]);
    if (fabs(p[c] - want) > 3) {
      fprintf(stderr, "FAIL: the lesion pixel's channel %d is %d, want %.1f (before %d blended with %s at %.2f)\n", c,
              p[c], want, q[c], argv[9 + c], alpha);
      fail = 1;
    }
  }
  /* corners of the image: air outside the body */
  double ci[2] = {1, nx - 2}, cj[2] = {1, ny - 2};
  for (int u = 0; u < 2; u++)
    for (int v = 0; v < 2; v++) {
      int cx = (int)floor(PX(ci[u])), cy = (int)floor(PY(cj[v]));
      const guchar *c0 = at(&a, cx, cy), *c1 = at(&b, cx, cy);
      if (!same(c0, c1) || lesion_coloured(c1)) {
        fprintf(stderr, "FAIL: outside the body, pixel (%d, %d) changed: (%d,%d,%d) -> (%d,%d,%d)\n", cx, cy, c0[0],
                c0[1], c0[2], c1[0], c1[1], c1[2]);
        fail = 1;
      }
    }
  long changed = 0, changed_not_lesion = 0, before_lesion = 0;
  for (int yy = 0; yy < a.h; yy++)
    for (int xx = 0; xx < a.w; xx++) {
      const guchar *c0 = at(&a, xx, yy), *c1 = at(&b, xx, yy);
      before_lesion += lesion_coloured(c0);
      if (!same(c0, c1)) {
        changed++;
        changed_not_lesion += !lesion_coloured(c1);
      }
    }
  printf("changed pixels %ld (not lesion-coloured %ld); lesion-coloured before the analysis %ld\n", changed,
         changed_not_lesion, before_lesion);
  if (changed == 0 || changed_not_lesion > changed / 20 || before_lesion > 0) {
    fprintf(stderr, "FAIL: the overlay changed %ld pixels, %ld of them not to the lesion colour; %ld lesion-coloured "
                    "pixels before\n", changed, changed_not_lesion, before_lesion);
    fail = 1;
  }
  g_object_unref(pb0);
  g_object_unref(pb1);
  return fail;
}
