/* Chest-abdomen CT phantom cases (see phantom.h): an anatomy drawn from the seed in LPS
 * millimetres, sampled voxel by voxel on the series grid, with findings, truth and labels.
 * Not a CT physics simulator: HU are assigned per tissue, then blurred and noised. */
#include "core/model/phantom_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model/phantom_case_internal.h"

/* ---- small geometry helpers ----------------------------------------------------------------- */

static double sq(double x) { return x * x; }
static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
static double smooth01(double t)
{
  t = clampd(t, 0, 1);
  return t * t * (3 - 2 * t);
}
static double lerp(double a, double b, double t) { return a + (b - a) * t; }
static double urange(uint64_t *r, double lo, double hi) { return lo + (hi - lo) * t3d_phantom_uniform(r); }

/* Smooth deterministic texture in [-1, 1] with a ~5-8 mm grain; f picks a variant. */
static double texture(const double q[3], double f)
{
  return 0.5 * (sin(0.83 * q[0] + 1.7 * f) * sin(0.71 * q[1] + 0.3) * sin(0.77 * q[2] + 2.9 * f) +
                sin(0.53 * (q[0] + q[2]) + 0.9) * sin(0.61 * (q[1] - q[2]) + f));
}

/* Squared distance from p to segment ab and the segment parameter t in [0, 1]. */
static double seg_dist2(const double p[3], const double a[3], const double b[3], double *t)
{
  double ab[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, ap[3] = {p[0] - a[0], p[1] - a[1], p[2] - a[2]};
  double l2 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
  double u = l2 > 0 ? (ap[0] * ab[0] + ap[1] * ab[1] + ap[2] * ab[2]) / l2 : 0;
  u = clampd(u, 0, 1);
  *t = u;
  return sq(ap[0] - u * ab[0]) + sq(ap[1] - u * ab[1]) + sq(ap[2] - u * ab[2]);
}

/* Ellipsoid rotated by angle rot about S: normalised squared radius of p (< 1 inside; 2 for
 * points outside its bounding box). pc_ellipsoid_finish must have run on e. */
static double ell(const pc_ellipsoid *e, const double p[3])
{
  double dx = p[0] - e->c[0], dy = p[1] - e->c[1], dz = p[2] - e->c[2];
  if (fabs(dz) >= 1.25 * e->r[2] || fabs(dx) >= e->bound || fabs(dy) >= e->bound)
    return 2;
  double u = e->cs * dx + e->sn * dy, v = -e->sn * dx + e->cs * dy;
  return sq(u / e->r[0]) + sq(v / e->r[1]) + sq(dz / e->r[2]);
}

static void finish(pc_ellipsoid *e)
{
  e->cs = cos(e->rot), e->sn = sin(e->rot);
  e->bound = 1.25 * fmax(e->r[0], e->r[1]);
}

static pc_ellipsoid E(double cx, double cy, double cz, double rx, double ry, double rz, double rot)
{
  pc_ellipsoid e = {{cx, cy, cz}, {rx, ry, rz}, rot, 0, 0, 0};
  finish(&e);
  return e;
}

static int capsule_hit(const pc_capsule *c, const double p[3])
{
  for (int a = 0; a < 3; a++) {
    double lo = fmin(c->a[a], c->b[a]) - c->rmax, hi = fmax(c->a[a], c->b[a]) + c->rmax;
    if (p[a] < lo || p[a] > hi)
      return 0;
  }
  double t, d2 = seg_dist2(p, c->a, c->b, &t);
  double r = lerp(c->ra, c->rb, t);
  if (d2 < sq(r))
    return 2;
  return d2 < sq(r + c->wall) ? 1 : 0;
}

/* ---- anatomy frame ---------------------------------------------------------------------------- */

/* Body semi-axes at height z: a (left-right), bf (front), bb (back). */
static void body_axes(const pc_anatomy *A, double z, double *a, double *bf, double *bb)
{
  double t = smooth01((A->z_dome_r - 20 - z) / 90);
  *a = lerp(A->a_chest, A->a_abd, t);
  *bf = lerp(A->b_chest, A->b_abd, t);
  *bb = *bf * 0.92;
}

static double ellipse2(double x, double y, double a, double bf, double bb)
{
  return sq(x / a) + sq(y / (y < 0 ? bf : bb));
}

static double fat_at(const pc_anatomy *A, double z)
{
  return lerp(A->fat_chest, A->fat_abd, smooth01((A->z_dome_r - 20 - z) / 90));
}

/* Width of the rib ring inside the muscle: 10 mm in the chest, none low in the abdomen. */
static double ring_at(const pc_anatomy *A, double z)
{
  return 10 * smooth01((z - (A->z_dome_r - 130)) / 40);
}

static double diaphragm(const pc_anatomy *A, double x, double y)
{
  double w = smooth01((x + 20) / 40); /* 0 right, 1 left */
  double top = lerp(A->z_dome_r, A->z_dome_l, w);
  return top - 0.0040 * sq(fabs(x) - 70) - 0.0030 * sq(y + 10);
}

static double spine_y(const pc_anatomy *A, double z)
{
  return A->y_spine + 8 * sin((z - A->z_dome_r) / 160);
}

/* Which lung the point lies in: -1 right, +1 left, 0 none (before findings). Also gives the
 * normalised radius rho within the thoracic cavity (1 at the chest wall). */
static int lung_side(const pc_anatomy *A, const double q[3], double *rho)
{
  double x = q[0], y = q[1], z = q[2];
  if (z >= A->z_apex || z <= diaphragm(A, x, y))
    return 0;
  double a, bf, bb;
  body_axes(A, z, &a, &bf, &bb);
  double fat = fat_at(A, z), in = fat + A->muscle + ring_at(A, z) + 2;
  double ac = a - in, bfc = bf - in, bbc = spine_y(A, z) + 45;
  double f = 1;
  double h = 70;
  if (z > A->z_apex - h)
    f = sqrt(fmax(0, 1 - sq((z - (A->z_apex - h)) / h)));
  if (f < 0.05)
    return 0;
  int s = x < 0 ? -1 : 1;
  double xs = x - s * ac * 0.45 * (1 - f);
  double e = sq(xs / (ac * f)) + sq(y / ((y < 0 ? bfc : bbc) * f));
  if (e >= 1)
    return 0;
  double band = 10 + 18 * exp(-sq((z - 30) / 50));
  double ys = spine_y(A, z);
  if (y > ys - A->r_vert - 8)
    band = fmax(band, A->r_vert + 6);
  if (fabs(x - 5) < band)
    return 0;
  *rho = sqrt(e);
  return s;
}

const char *const pc_lobe_names[5] = {"right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe",
                                      "left lower lobe"};

static int lobe_of(const pc_anatomy *A, const double q[3])
{
  double oblique = A->z_fissure + 0.75 * q[1];
  if (q[0] < 0) {
    if (q[2] < oblique)
      return 2;
    return q[2] > A->z_fissure + 15 ? 0 : 1;
  }
  return q[2] < oblique ? 4 : 3;
}

/* ---- classification of one point -------------------------------------------------------------- */

typedef pc_sample_out pc_sample; /* item: the truth item the point belongs to, -1 none */

/* HU of blood-filled structures: `enhanced` in the portal venous phase, else the case's plain blood. */
static double enh(const pc_anatomy *A, double enhanced) { return A->contrast ? enhanced : A->blood_hu; }

static void set(pc_sample *s, double hu, int label, int item)
{
  s->hu = (float)hu;
  s->label = (uint8_t)label;
  s->item = (int8_t)item;
}

static int in_list(const pc_ellipsoid *e, int n, const double q[3], int *which)
{
  for (int i = 0; i < n; i++)
    if (ell(&e[i], q) < 1) {
      *which = i;
      return 1;
    }
  return 0;
}

/* Spine, paraspinal muscles, sternum and ribs; returns 1 when the point is one of them. */
static int skeleton(const pc_anatomy *A, const double q[3], double tx, double a, double bf, double bb, double ai, double bfi,
                    double bbi, double rw, pc_sample *s)
{
  double x = q[0], y = q[1], z = q[2];
  double ys = spine_y(A, z), rv = A->r_vert + 3 * smooth01((A->z_dome_r - 60 - z) / 120);
  double dy = y - ys;
  double ph = fmod(z - A->z_vert0 + 10000 * A->vert_period, A->vert_period);
  double r2 = x * x + dy * dy;
  if (r2 < rv * rv) {
    if (ph < 5)
      set(s, 85 + 10 * tx, 1, -1); /* intervertebral disc */
    else if (r2 > sq(rv - 2.2))
      set(s, 850 + 150 * tx, 7, -1);
    else
      set(s, 320 + 40 * tx, 7, -1);
    return 1;
  }
  double cy = ys + rv + 9;
  if (x * x + sq(y - cy) < 64) {
    set(s, 15 + 5 * tx, 1, -1); /* spinal canal */
    return 1;
  }
  if (ph > 8 && ph < A->vert_period - 3) {
    int arch = dy > rv && dy < rv + 24 && fabs(x) < 15;
    int spinous = dy >= rv + 24 && dy < rv + 46 && fabs(x) < 4.5;
    int transverse = dy > rv + 6 && dy < rv + 13 && fabs(x) < 30 && ph > 12 && ph < A->vert_period - 8;
    if (arch || spinous || transverse) {
      set(s, 600 + 150 * tx, 7, -1);
      return 1;
    }
  }
  /* paraspinal muscles */
  for (int side = -1; side <= 1; side += 2)
    if (sq((x - side * 34) / 22) + sq((y - (ys + rv + 36)) / 19) < 1) {
      set(s, 50 + 8 * tx, 1, -1);
      return 1;
    }
  /* sternum: just inside the anterior muscle */
  if (fabs(x) < 15 && y < -bfi + 12 && y > -bfi - 2 && z < A->z_apex - 25 && z > A->z_dome_r - 5) {
    int edge = fabs(x) > 12.5 || y < -bfi + 0.5 || y > -bfi + 9.5;
    set(s, edge ? 700 : 330 + 40 * tx, 7, -1);
    return 1;
  }
  (void)a, (void)bf, (void)bb;
  if (rw <= 1)
    return 0;
  /* ribs: in the ring between the muscle and the thoracic cavity */
  double am = ai - rw / 2, bfm = bfi - rw / 2, bbm = bbi - rw / 2;
  double rho = sqrt(ellipse2(x, y, am, bfm, bbm));
  double dr = (rho - 1) * 0.5 * (am + (y < 0 ? bfm : bbm));
  if (fabs(dr) > 5)
    return 0;
  double phi = atan2(fabs(x), y); /* 0 posterior, pi anterior */
  double drop = 110 * (1 - cos(phi)) / 2;
  double kf = (A->z_rib0 - (z + drop)) / A->rib_step;
  int k = (int)floor(kf + 0.5);
  if (k < 0 || k > 11)
    return 0;
  double dz = z - (A->z_rib0 - k * A->rib_step - drop);
  double limit = k < 7 ? 2.75 : k < 10 ? 2.3 : 1.6;
  if (phi > limit || sq(dr / 4.5) + sq(dz / 6) >= 1)
    return 0;
  if (k < 7 && phi > 2.45)
    set(s, 120 + 15 * tx, 7, -1); /* costal cartilage */
  else if (sq(dr / 2.5) + sq(dz / 4) < 1)
    set(s, 300 + 40 * tx, 7, -1);
  else
    set(s, 900 + 150 * tx, 7, -1);
  return 1;
}

static double vessel_hit(const pc_anatomy *A, const double q[3], int *airway, int *in_cons_air)
{
  int cx = (int)floor((q[0] - PC_GRID_X0) / PC_CELL), cy = (int)floor((q[1] - PC_GRID_Y0) / PC_CELL),
      cz = (int)floor((q[2] - PC_GRID_Z0) / PC_CELL);
  *airway = 0;
  *in_cons_air = 0;
  if (cx < 0 || cy < 0 || cz < 0 || cx >= PC_GX || cy >= PC_GY || cz >= PC_GZ)
    return 0;
  const pc_cell *cell = &A->cells[(cz * PC_GY + cy) * PC_GX + cx];
  double best = 0;
  for (int i = 0; i < cell->n; i++) {
    const pc_capsule *c = &A->tree[cell->idx[i]];
    int h = capsule_hit(c, q);
    if (!h)
      continue;
    if (c->kind == PC_AIRWAY) {
      *airway = h; /* 2 lumen, 1 wall */
      return c->ra;
    }
    if (h == 2 && c->ra > best)
      best = c->ra;
  }
  return best;
}

static void lung_point(const pc_anatomy *A, const double q[3], double tx, int side, double rho, pc_sample *s)
{
  double x = q[0], y = q[1], z = q[2];
  int si = side < 0 ? 0 : 1;
  double a, bf, bb;
  body_axes(A, z, &a, &bf, &bb);
  double hu = -865 + 40 * clampd(y / bb, -1, 1) + 12 * tx;
  /* pneumothorax: non-dependent air rim, no lung markings */
  if (A->ptx_side[si] && rho > 1 - A->ptx_rim / (0.5 * a) && y < 0.3 * bb) {
    set(s, -1000 + 4 * tx, 1, A->item_ptx);
    return;
  }
  if (A->ptx_side[si])
    hu += 80; /* partly collapsed lung */
  /* pleural effusion: dependent fluid in the posterior pleural space */
  if (A->eff_depth[si] > 0) {
    double depth = A->eff_depth[si] * (0.55 + 0.45 * clampd(fabs(x) / (0.6 * a), 0, 1)) *
                   (1 - 0.6 * smooth01((z - A->z_dome_r) / 160));
    double yb = y / fmax(rho, 1e-3); /* the posterior wall along the same ray */
    if (y > 0 && yb - y < depth) {
      set(s, 12 + 5 * tx, 1, A->item_eff[si]);
      return;
    }
  }
  int which;
  if (in_list(A->nodules, A->n_nodules, q, &which)) {
    set(s, 38 + 10 * tx, 8, A->item_nodule[which]);
    return;
  }
  int airway, unused;
  double vr = vessel_hit(A, q, &airway, &unused);
  int lobe = -1;
  if (A->cons_lobe >= 0 && ell(&A->cons, q) + 0.25 * texture(q, 2.3) < 1 && (lobe = lobe_of(A, q)) == A->cons_lobe) {
    if (airway == 2 || (vr > 1.6 && !airway))
      set(s, -900 + 20 * tx, 2, A->item_cons); /* air bronchogram */
    else
      set(s, 38 + 10 * tx, 2, A->item_cons);
    return;
  }
  if (airway == 2) {
    set(s, -990, 2, -1);
    return;
  }
  if (airway == 1) {
    set(s, -150 + 30 * tx, 2, -1);
    return;
  }
  if (vr > 0) {
    set(s, enh(A, 120) + 20 * tx, 2, -1);
    return;
  }
  /* peripheral vessels below the tree's resolution: tubes where two smooth fields both cross
   * zero, thinner away from the hilum */
  {
    double f1 = sin(0.12 * x + 0.8 * sin(0.07 * z)) + 0.8 * sin(0.10 * y + 0.6 * sin(0.05 * x + 1));
    double f2 = sin(0.11 * z + 0.9 * sin(0.06 * y)) + 0.8 * sin(0.13 * (x + y) + 2);
    double g1 = sin(0.15 * y + 0.7 * sin(0.05 * z + 2)) + 0.8 * sin(0.09 * z + 0.5 * sin(0.08 * x));
    double g2 = sin(0.14 * x + 0.6 * sin(0.06 * z + 1)) + 0.8 * sin(0.12 * (y - z) + 0.4);
    double dist = sqrt(sq(fabs(x) - 45) + sq(y) + sq(z + 15));
    double w = 0.11 * clampd(1.2 - dist / 160, 0.35, 1);
    if ((fabs(f1) < w && fabs(f2) < w) || (fabs(g1) < w && fabs(g2) < w)) {
      set(s, (A->contrast ? 90 : 30) + 20 * tx, 2, -1);
      return;
    }
  }
  if (A->emph_thr < 9) {
    /* blobs of 10-20 mm, the grain of bullae and confluent centrilobular emphysema */
    double e = sin(0.17 * x + 0.7) * sin(0.15 * y + 1.9) * sin(0.18 * z + 0.2) + 0.6 * sin(0.13 * (x - z) + 2.2);
    double thr = A->emph_thr + 0.5 * smooth01((A->z_fissure + 20 - z) / 80); /* upper zones first */
    if (e > thr) {
      set(s, -975 + 8 * tx, 2, A->item_emph);
      return;
    }
  }
  set(s, hu, 2, -1);
}

static void thorax_point(const pc_anatomy *A, const double q[3], double tx, pc_sample *s)
{
  int which;
  if (in_list(A->nodes, A->n_nodes, q, &which)) { /* nodes indent the airways and vessels next to them */
    set(s, 45 + 8 * tx, 1, A->item_node[which]);
    return;
  }
  for (int i = 0; i < A->n_airways; i++) {
    int h = capsule_hit(&A->airways[i], q);
    if (h) {
      double rho;
      int lung = lung_side(A, q, &rho) != 0;
      set(s, h == 2 ? -995 : 30 + 10 * tx, lung ? 2 : 1, -1);
      return;
    }
  }
  for (int i = 0; i < A->n_vessels; i++)
    if (capsule_hit(&A->vessels[i], q) == 2) {
      set(s, A->vessels[i].hu + 10 * tx, 1, -1);
      return;
    }
  double eh = ell(&A->heart, q);
  if (eh < 1) {
    pc_ellipsoid in = A->heart;
    for (int a = 0; a < 3; a++)
      in.r[a] -= 9;
    finish(&in);
    double cs = cos(A->heart.rot), sn = sin(A->heart.rot);
    double u = cs * (q[0] - in.c[0]) + sn * (q[1] - in.c[1]);
    int blood = ell(&in, q) < 1 && fabs(u + 0.1 * in.r[0]) > 4.5;
    double myocardium = A->contrast ? 95 : 48, chamber = enh(A, 185);
    set(s, (blood ? chamber : myocardium) + 10 * tx, 3, A->item_heart);
    return;
  }
  if (eh < sq(1 + 6 / A->heart.r[1])) {
    set(s, -90 + 10 * tx, 1, -1); /* pericardial fat */
    return;
  }
  if (capsule_hit(&A->esophagus, q) == 2) {
    set(s, 40 + 8 * tx, 1, -1);
    return;
  }
  double rho;
  int side = lung_side(A, q, &rho);
  if (side) {
    lung_point(A, q, tx, side, rho, s);
    return;
  }
  set(s, -95 + 12 * tx, 1, -1); /* mediastinal and neck fat */
}

static void abdomen_point(const pc_anatomy *A, const double q[3], double tx, double ai, double bfi, double bbi,
                          double zd, pc_sample *s)
{
  double x = q[0], y = q[1], z = q[2];
  int which;
  if (z > zd - 4) {
    set(s, 45 + 8 * tx, 1, -1); /* diaphragm */
    return;
  }
  for (int i = 0; i < A->n_vessels; i++)
    if (capsule_hit(&A->vessels[i], q) == 2) {
      set(s, A->vessels[i].hu + 10 * tx, 1, -1);
      return;
    }
  if (in_list(A->cysts, A->n_cysts, q, &which)) {
    set(s, 6 + 5 * tx, 8, A->item_cyst[which]);
    return;
  }
  for (int k = 0; k < 2; k++) {
    double e = ell(&A->kidney[k], q);
    if (e < 1) {
      double hu = e > 0.55 ? (A->contrast ? 175 : 33) : e > 0.2 ? (A->contrast ? 125 : 30) : -70;
      set(s, hu + 12 * tx, 6, -1);
      return;
    }
    if (e < 1.3) {
      set(s, -90 + 10 * tx, 1, -1); /* perirenal fat */
      return;
    }
  }
  int liver = (ell(&A->liver[0], q) < 1 || ell(&A->liver[1], q) < 1) && z < zd - 3;
  if (liver) {
    if (in_list(A->liver_lesions, A->n_liver_lesions, q, &which)) {
      set(s, A->liver_lesion_hu[which] + 8 * tx, 8, A->item_liver_lesion[which]);
      return;
    }
    for (int i = 0; i < A->n_hepatic; i++)
      if (capsule_hit(&A->hepatic[i], q) == 2) {
        set(s, 165 + 10 * tx, 4, -1);
        return;
      }
    set(s, A->liver_hu + 6 * tx, 4, -1);
    return;
  }
  if (ell(&A->spleen, q) < 1 && z < zd - 3) {
    set(s, A->spleen_hu + 6 * tx, 5, A->item_spleen);
    return;
  }
  double es = ell(&A->stomach, q);
  if (es < 1) {
    pc_ellipsoid in = A->stomach;
    for (int a = 0; a < 3; a++)
      in.r[a] -= 4;
    finish(&in);
    if (ell(&in, q) >= 1)
      set(s, (A->contrast ? 55 : 40) + 8 * tx, 1, -1);
    else
      set(s, y < A->stomach.c[1] - 12 ? -1000 : 18 + 6 * tx, 1, -1);
    return;
  }
  if (ell(&A->gallbladder, q) < 1) {
    set(s, 8 + 5 * tx, 1, -1);
    return;
  }
  /* psoas muscles below the kidneys' upper poles */
  double ys = spine_y(A, z), rv = A->r_vert + 3;
  double rp = clampd(0.15 * (A->kidney[0].c[2] + 20 - z), 0, 24);
  for (int side = -1; side <= 1; side += 2)
    if (rp > 0 && sq(x - side * (rv + rp)) + sq(y - ys) < sq(rp)) {
      set(s, 50 + 8 * tx, 1, -1);
      return;
    }
  if (A->ascites_t > 0) {
    double t = A->ascites_t;
    int wall = ellipse2(x, y, ai, bfi, bbi) > sq(1 - t / ai) && y < ys - rv;
    pc_ellipsoid around = A->liver[0];
    for (int a = 0; a < 3; a++)
      around.r[a] += t;
    finish(&around);
    int perihepatic = ell(&around, q) < 1;
    double b = sin(0.23 * x + 0.4) * sin(0.19 * y + 1.3) + sin(0.21 * z + 2.0) * sin(0.17 * (x + y) + 0.8);
    int between = z < A->kidney[0].c[2] && b > 0.55;
    if (wall || perihepatic || between) {
      set(s, 10 + 5 * tx, 1, A->item_ascites);
      return;
    }
  }
  /* bowel loops anterior to the retroperitoneum, below the liver */
  if (y < ys - rv - 15 && z < A->z_dome_r - 90) {
    double b = sin(0.23 * x + 0.4) * sin(0.19 * y + 1.3) + sin(0.21 * z + 2.0) * sin(0.17 * (x + y) + 0.8);
    double g = sin(0.11 * x + 2.2) * sin(0.13 * z + 0.5) * sin(0.09 * y + 1.1);
    if (fabs(b) < 0.22) {
      set(s, (A->contrast ? 42 : 35) + 8 * tx, 1, -1);
      return;
    }
    if (b > 0.22) {
      set(s, g > 0.45 ? -990 : 22 + 8 * tx, 1, -1);
      return;
    }
  }
  set(s, -98 + 12 * tx, 1, -1); /* intra-abdominal and retroperitoneal fat */
}

/* The patient table at (x, y) outside the body: a cupped carbon-fibre shell (top and bottom
 * skins) around a foam core, running the whole length; -1000 (air) elsewhere. */
static double table_hu(const pc_anatomy *A, double x, double y, double tx)
{
  if (!A->table || fabs(x) > A->table_half)
    return -1000;
  double top = A->table_y - x * x / (2 * A->table_r); /* the top rises toward the edges */
  double d = y - top, thick = 2 * A->table_shell + A->table_core;
  if (d < 0 || d > thick)
    return -1000;
  if (d < A->table_shell || d > thick - A->table_shell || fabs(x) > A->table_half - A->table_shell)
    return A->table_shell_hu + 30 * tx;
  return A->table_core_hu + 15 * tx;
}

void pc_classify(const pc_anatomy *A, const double q[3], pc_sample_out *out)
{
  pc_sample s;
  double x = q[0], y = q[1], z = q[2];
  double a, bf, bb;
  body_axes(A, z, &a, &bf, &bb);
  double tx = texture(q, 0.1);
  if (z > A->z_top || z < A->z_bottom || ellipse2(x, y, a, bf, bb) >= 1) {
    /* outside the body or the anatomy's range [z_bottom, z_top]: air, or the table under it */
    set(&s, table_hu(A, x, y, tx), 0, -1);
    goto done;
  }
  double fat = fat_at(A, z);
  double af = a - fat, bff = bf - fat, bbf = bb - fat * 0.6;
  if (ellipse2(x, y, af, bff, bbf) >= 1) {
    set(&s, -105 + 12 * tx, 1, -1);
    goto done;
  }
  double ai = af - A->muscle, bfi = bff - A->muscle, bbi = bbf - A->muscle;
  double rw = ring_at(A, z);
  if (skeleton(A, q, tx, a, bf, bb, ai, bfi, bbi, rw, &s))
    goto done;
  if (ellipse2(x, y, ai, bfi, bbi) >= 1) {
    set(&s, 48 + 8 * tx, 1, -1); /* chest and abdominal wall muscle */
    goto done;
  }
  if (ellipse2(x, y, ai - rw, bfi - rw, bbi - rw) >= 1) {
    set(&s, 45 + 8 * tx, 1, -1); /* intercostal muscle */
    goto done;
  }
  double zd = diaphragm(A, x, y);
  if (z > zd)
    thorax_point(A, q, tx, &s);
  else
    abdomen_point(A, q, tx, ai, bfi, bbi, zd, &s);
done:
  *out = s;
}

/* ---- drawing the anatomy ------------------------------------------------------------------------ */

static void capsule_set(pc_capsule *c, const double a[3], const double b[3], double ra, double rb, double wall,
                        double hu, int kind)
{
  memcpy(c->a, a, sizeof c->a);
  memcpy(c->b, b, sizeof c->b);
  c->ra = ra, c->rb = rb, c->wall = wall, c->hu = hu, c->kind = kind;
  c->rmax = fmax(ra, rb) + wall;
}

static void add_vessel(pc_anatomy *A, double ax, double ay, double az, double bx, double by, double bz, double r,
                       double hu)
{
  if (A->n_vessels >= PC_MAX_VESSELS)
    return;
  double a[3] = {ax, ay, az}, b[3] = {bx, by, bz};
  capsule_set(&A->vessels[A->n_vessels++], a, b, r, r, 0, hu, PC_VESSEL);
}

static void add_airway(pc_anatomy *A, const double a[3], const double b[3], double r)
{
  if (A->n_airways < PC_MAX_AIRWAYS)
    capsule_set(&A->airways[A->n_airways++], a, b, r, r * 0.9, 1.6, 0, PC_AIRWAY);
}

static void normalize(double v[3])
{
  double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  for (int i = 0; i < 3; i++)
    v[i] /= n;
}

/* A random unit vector perpendicular to d. */
static void perpendicular(const double d[3], uint64_t *r, double out[3])
{
  double t[3] = {t3d_phantom_gaussian(r), t3d_phantom_gaussian(r), t3d_phantom_gaussian(r)};
  double dot = t[0] * d[0] + t[1] * d[1] + t[2] * d[2];
  for (int i = 0; i < 3; i++)
    out[i] = t[i] - dot * d[i];
  normalize(out);
}

/* Pulmonary vessel (and companion bronchus) tree from p along d. */
static void grow_tree(pc_anatomy *A, uint64_t *r, const double p[3], const double d[3], double radius, double len,
                      int depth)
{
  if (A->n_tree >= PC_MAX_TREE - 2)
    return;
  double e[3];
  for (int i = 0; i < 3; i++)
    e[i] = p[i] + d[i] * len;
  capsule_set(&A->tree[A->n_tree++], p, e, radius, radius * 0.85, 0, 0, PC_VESSEL);
  if (radius >= 2.2) { /* bronchus running beside the artery */
    double o[3], a2[3], b2[3];
    perpendicular(d, r, o);
    for (int i = 0; i < 3; i++)
      a2[i] = p[i] + o[i] * (radius + 2.0), b2[i] = e[i] + o[i] * (radius + 2.0);
    capsule_set(&A->tree[A->n_tree++], a2, b2, radius * 0.7, radius * 0.6, 1.0, 0, PC_AIRWAY);
  }
  if (depth == 0)
    return;
  for (int c = 0; c < 2; c++) {
    double o[3], nd[3];
    perpendicular(d, r, o);
    double ang = urange(r, 0.35, 0.7);
    for (int i = 0; i < 3; i++)
      nd[i] = d[i] * cos(ang) + o[i] * sin(ang);
    normalize(nd);
    grow_tree(A, r, e, nd, radius * urange(r, 0.68, 0.8), len * urange(r, 0.7, 0.9), depth - 1);
  }
}

static void build_cells(pc_anatomy *A)
{
  for (int i = 0; i < A->n_tree; i++) {
    const pc_capsule *c = &A->tree[i];
    int lo[3], hi[3];
    const double g0[3] = {PC_GRID_X0, PC_GRID_Y0, PC_GRID_Z0};
    const int gn[3] = {PC_GX, PC_GY, PC_GZ};
    for (int a = 0; a < 3; a++) {
      lo[a] = (int)floor((fmin(c->a[a], c->b[a]) - c->rmax - g0[a]) / PC_CELL);
      hi[a] = (int)floor((fmax(c->a[a], c->b[a]) + c->rmax - g0[a]) / PC_CELL);
      lo[a] = lo[a] < 0 ? 0 : lo[a];
      hi[a] = hi[a] >= gn[a] ? gn[a] - 1 : hi[a];
    }
    for (int z = lo[2]; z <= hi[2]; z++)
      for (int y = lo[1]; y <= hi[1]; y++)
        for (int x = lo[0]; x <= hi[0]; x++) {
          pc_cell *cell = &A->cells[(z * PC_GY + y) * PC_GX + x];
          if (cell->n < PC_CELL_MAX)
            cell->idx[cell->n++] = (int16_t)i;
        }
  }
}

/* A random point inside the lung on `side` (0 either) at least margin mm from its edge, or 0. */
static int random_lung_point(const pc_anatomy *A, uint64_t *r, int side, double margin, int lobe, double out[3])
{
  for (int tries = 0; tries < 3000; tries++) {
    double q[3] = {urange(r, -A->a_chest, A->a_chest), urange(r, -A->b_chest, A->b_chest),
                   urange(r, A->z_dome_r - 60, A->z_apex - 10)};
    double rho;
    int s = lung_side(A, q, &rho);
    if (!s || (side && s != side) || (lobe >= 0 && lobe_of(A, q) != lobe))
      continue;
    int ok = 1;
    for (int k = 0; k < 6 && ok; k++) {
      double p[3] = {q[0], q[1], q[2]};
      p[k / 2] += (k % 2 ? margin : -margin);
      ok = lung_side(A, p, &rho) == s;
    }
    ok = ok && ell(&A->heart, q) > sq(1 + (margin + 6) / A->heart.r[1]);
    for (int k = 0; k < A->n_vessels && ok; k++) {
      double t;
      ok = seg_dist2(q, A->vessels[k].a, A->vessels[k].b, &t) > sq(A->vessels[k].ra + margin);
    }
    for (int k = 0; k < A->n_airways && ok; k++) {
      double t;
      ok = seg_dist2(q, A->airways[k].a, A->airways[k].b, &t) > sq(A->airways[k].ra + 2 + margin);
    }
    if (ok) {
      memcpy(out, q, sizeof q);
      return 1;
    }
  }
  return 0;
}

static int new_item(pc_anatomy *A, int finding, const double c[3], int need_centre, double min_cm3)
{
  if (A->n_items >= PC_MAX_ITEMS)
    return -1;
  pc_item *it = &A->items[A->n_items];
  memset(it, 0, sizeof *it);
  it->finding = finding;
  if (c)
    memcpy(it->c, c, sizeof it->c);
  it->need_centre = need_centre;
  it->min_cm3 = min_cm3;
  return A->n_items++;
}

void pc_anatomy_draw(pc_anatomy *A, uint64_t seed, const int8_t force[T3D_PHANTOM_NFINDINGS], int contrast,
                     int table)
{
  /* Three streams: anatomy, findings, and the scan's setting (contrast, table), so that forcing a
   * finding changes only the finding and forcing contrast or the table only those. */
  uint64_t rs = t3d_phantom_stream(seed, 0x51ed27a11ull), fs = t3d_phantom_stream(seed, 0x7f4a7c15f1ull);
  uint64_t ss = t3d_phantom_stream(seed, 0x3c6ef372fe94ull);
  uint64_t *r = &rs, *rf = &fs, *rset = &ss;
  memset(A, 0, sizeof *A);
  A->contrast = t3d_phantom_uniform(rset) >= 0.3;
  if (contrast >= 0)
    A->contrast = contrast != 0;
  A->blood_hu = urange(rset, 35, 50); /* unenhanced blood */
  A->table = t3d_phantom_uniform(rset) < 0.8;
  if (table >= 0)
    A->table = table != 0;
  A->table_r = urange(rset, 700, 1600);      /* the top is cupped: it rises toward the sides */
  A->table_half = urange(rset, 200, 240);    /* half width */
  A->table_shell = urange(rset, 1.5, 3.0);   /* carbon-fibre skins */
  A->table_core = urange(rset, 25, 45);      /* foam core */
  A->table_shell_hu = urange(rset, 150, 400);
  A->table_core_hu = urange(rset, -950, -800);
  double table_gap = urange(rset, 2, 12);
  A->item_ptx = A->item_cons = A->item_emph = A->item_heart = A->item_spleen = A->item_ascites = -1;
  A->item_eff[0] = A->item_eff[1] = -1;
  A->cons_lobe = -1;
  A->emph_thr = 10;

  /* body */
  A->a_chest = urange(r, 140, 175);
  A->b_chest = A->a_chest * urange(r, 0.74, 0.86);
  A->a_abd = A->a_chest * urange(r, 0.92, 1.05);
  A->b_abd = A->b_chest * urange(r, 0.95, 1.12);
  A->fat_chest = urange(r, 5, 22);
  A->fat_abd = A->fat_chest * urange(r, 1.1, 1.7);
  A->muscle = urange(r, 5, 10);
  A->z_apex = urange(r, 95, 120);
  A->z_dome_r = urange(r, -110, -80);
  A->z_dome_l = A->z_dome_r - urange(r, 8, 20);
  A->z_top = A->z_apex + 25;
  A->z_fissure = urange(r, -35, -15);
  A->r_vert = urange(r, 15, 19);
  A->y_spine = A->b_chest * 0.92 - A->fat_chest * 0.6 - 72;
  A->vert_period = urange(r, 25, 30);
  A->z_vert0 = urange(r, 0, 30);
  A->rib_step = urange(r, 21, 25);
  A->z_rib0 = A->z_apex - urange(r, 0, 8);
  A->liver_hu = urange(r, 102, 125);
  A->spleen_hu = A->liver_hu + urange(r, -5, 12);
  if (!A->contrast) { /* unenhanced: liver 55-66 HU, spleen 5-12 below it */
    double enhanced = A->liver_hu;
    A->liver_hu = 55 + (enhanced - 102) * 0.5;
    A->spleen_hu = A->liver_hu - 10 + (A->spleen_hu - enhanced) * 0.4;
  }

  /* findings: which are drawn (15 % fully normal, else each 35 %) */
  int want[T3D_PHANTOM_NFINDINGS];
  int normal = t3d_phantom_uniform(rf) < 0.15;
  for (int f = 0; f < T3D_PHANTOM_NFINDINGS; f++) {
    int drawn = !normal && t3d_phantom_uniform(rf) < 0.35;
    want[f] = force && force[f] >= 0 ? force[f] : drawn;
  }

  double zr = A->z_dome_r, zl = A->z_dome_l;
  double ys = A->y_spine, rv = A->r_vert;
  /* heart: normal cardiothoracic ratio 0.38-0.48, enlarged 0.56-0.66 */
  double inner = A->a_chest - A->fat_chest - A->muscle - 14;
  double ctr_normal = urange(r, 0.38, 0.48), ctr_big = urange(rf, 0.56, 0.66);
  double ctr = want[PC_CARDIOMEGALY] ? ctr_big : ctr_normal;
  double rot = urange(r, -0.75, -0.45);
  double hr0 = 1.0, hr1 = urange(r, 0.78, 0.88), hz = urange(r, 0.85, 0.95);
  double half_width = ctr * inner; /* heart width = ctr * thoracic width = ctr * 2 * inner */
  double ex = sqrt(sq(hr0 * cos(rot)) + sq(hr1 * sin(rot)));
  double scale = half_width / ex;
  A->heart.rot = rot;
  A->heart.r[0] = hr0 * scale, A->heart.r[1] = hr1 * scale, A->heart.r[2] = hz * scale * 0.9;
  A->heart.c[0] = urange(r, 10, 22), A->heart.c[1] = -0.35 * A->b_chest + urange(r, -5, 5);
  A->heart.c[2] = zr + A->heart.r[2] * 0.9;
  finish(&A->heart);
  A->ctr = ctr;
  A->table_y = 0.92 * A->b_chest + table_gap; /* under the back at chest level; a wider abdomen presses into it */

  /* great vessels, trachea, bronchi, oesophagus */
  double yd = ys - rv + 2; /* descending aorta, left anterior of the spine */
  double ar = urange(r, 11, 14);
  double asc[3] = {A->heart.c[0] - 12, A->heart.c[1] + 8, A->heart.c[2] + A->heart.r[2] * 0.6};
  add_vessel(A, 8, yd - 14, zr - 400, 16, yd - 12, zr - 40, ar, enh(A, 190));
  add_vessel(A, 16, yd - 12, zr - 40, 26, yd, 30, ar, enh(A, 190));
  add_vessel(A, 26, yd, 30, 12, (yd + asc[1]) / 2, 52, ar, enh(A, 190));
  add_vessel(A, 12, (yd + asc[1]) / 2, 52, asc[0], asc[1], 38, ar + 2, enh(A, 190));
  add_vessel(A, asc[0], asc[1], 38, asc[0], asc[1], asc[2] - 10, ar + 3, enh(A, 190));
  add_vessel(A, 8, (yd + asc[1]) / 2 - 5, 50, -12, -20, 160, 6, enh(A, 190));
  add_vessel(A, 18, (yd + asc[1]) / 2, 50, 22, -8, 160, 5, enh(A, 190));
  double pa[3] = {0, asc[1] + 25, 12}, pt[3] = {A->heart.c[0] + 5, A->heart.c[1] - 20, A->heart.c[2] + 20};
  add_vessel(A, pt[0], pt[1], pt[2], pa[0], pa[1], pa[2], 13, enh(A, 175));
  add_vessel(A, pa[0], pa[1], pa[2], -42, pa[1] + 12, 0, 10, enh(A, 175));
  add_vessel(A, pa[0], pa[1], pa[2], 42, pa[1] + 14, 6, 10, enh(A, 175));
  add_vessel(A, -28, asc[1] - 2, 130, -26, asc[1], asc[2] - 20, 10, enh(A, 210)); /* superior vena cava */
  add_vessel(A, -22, ys - rv - 6, zr - 400, -22, ys - rv - 6, zr + 5, 11, enh(A, 150)); /* inferior vena cava */
  double yt = ys - rv - 30;
  double carina[3] = {0, yt + 4, urange(r, -10, 5)}, top[3] = {0, yt - 6, 200};
  double rb1[3] = {-28, yt + 12, carina[2] - 18}, rb2[3] = {-48, yt + 18, carina[2] - 50},
         rul[3] = {-52, yt + 6, carina[2] + 5};
  double lb1[3] = {34, yt + 14, carina[2] - 28}, lb2[3] = {55, yt + 22, carina[2] - 60},
         lul[3] = {58, yt + 2, carina[2] - 12};
  double tr = urange(r, 8, 10);
  add_airway(A, top, carina, tr);
  add_airway(A, carina, rb1, tr * 0.75);
  add_airway(A, rb1, rb2, tr * 0.55);
  add_airway(A, rb1, rul, tr * 0.5);
  add_airway(A, carina, lb1, tr * 0.7);
  add_airway(A, lb1, lb2, tr * 0.55);
  add_airway(A, lb1, lul, tr * 0.5);
  {
    double a[3] = {6, ys - rv - 10, zr - 40}, b[3] = {2, yt + 20, 200};
    capsule_set(&A->esophagus, a, b, 8, 7, 0, 40, PC_VESSEL);
  }

  /* pulmonary vessel trees from both hila */
  for (int side = -1; side <= 1; side += 2) {
    double hil[3] = {side * 44.0, pa[1] + 12, carina[2] - 15};
    static const double dirs[6][3] = {{0.3, 0.1, 1},   {0.8, -0.7, -0.3}, {0.5, 0.5, -1},
                                      {0.7, 0.8, 0.1}, {0.6, -0.6, 0.6},  {0.9, 0.1, -0.6}};
    for (int k = 0; k < 6; k++) {
      double d[3] = {side * dirs[k][0] + urange(r, -0.15, 0.15), dirs[k][1] + urange(r, -0.15, 0.15),
                     dirs[k][2] + urange(r, -0.15, 0.15)};
      normalize(d);
      grow_tree(A, r, hil, d, 5.5, urange(r, 26, 34), 6);
    }
  }
  build_cells(A);

  /* abdominal organs */
  double ls = urange(r, 0.9, 1.1);
  A->liver[0] = E(-62, 2, zr - 72, 88 * ls, 0.8 * A->b_abd, 80 * ls, 0);
  A->liver[1] = E(18, -0.45 * A->b_abd, zr - 48, 58 * ls, 0.38 * A->b_abd, 42 * ls, 0.2);
  double spl_normal = urange(r, 0.85, 1.05), spl_big = urange(rf, 1.45, 1.75);
  double spl = want[PC_SPLENOMEGALY] ? spl_big : spl_normal;
  A->spleen = E(A->a_abd * 0.6, 0.45 * A->b_abd, zl - 50 * spl, 30 * spl, 52 * spl, 52 * spl, 0.5);
  A->spleen_length = 2 * A->spleen.r[2];
  A->kidney[0] = E(-72, ys - 5, zr - 160 + urange(r, -10, 10), 28, 24, 55, -0.5);
  A->kidney[1] = E(72, ys - 5, zl - 140 + urange(r, -10, 10), 28, 24, 55, 0.5);
  A->stomach = E(55, -0.35 * A->b_abd, zl - 60, 42, 36, 50, 0.3);
  A->gallbladder = E(-45, -0.45 * A->b_abd, zr - 115, 16, 16, 32, 0);
  {
    double ivc[3] = {-22, ys - rv - 6, zr - 25};
    double ends[3][3] = {{-100, -10, zr - 45}, {-45, -55, zr - 50}, {15, -45, zr - 35}};
    for (int k = 0; k < 3; k++)
      capsule_set(&A->hepatic[A->n_hepatic++], ivc, ends[k], 6, 2.5, 0, enh(A, 165), PC_VESSEL);
    double pv0[3] = {-5, 0, zr - 115}, pv1[3] = {-55, 0, zr - 80};
    capsule_set(&A->hepatic[A->n_hepatic++], pv0, pv1, 7, 4, 0, enh(A, 160), PC_VESSEL);
  }
  A->z_bottom = fmin(A->kidney[0].c[2], A->kidney[1].c[2]) - 75;

  /* ---- findings ---- */
  double c[3];
  if (want[PC_NODULE]) {
    int n = 1 + (t3d_phantom_uniform(rf) < 0.3) + (t3d_phantom_uniform(rf) < 0.15);
    for (int i = 0; i < n && A->n_nodules < PC_MAX_LESIONS; i++) {
      double d = urange(rf, 8, 30);
      int found = 0;
      for (int shrink = 0; shrink < 4 && !found; shrink++, d = fmax(8, d * 0.8))
        found = random_lung_point(A, rf, 0, d / 2 + 4, -1, c);
      if (!found)
        continue;
      int k = A->n_nodules++;
      double flat = urange(rf, 0.85, 1), turn = urange(rf, 0, 3);
      A->nodules[k] = E(c[0], c[1], c[2], d / 2, d / 2 * flat, d / 2, turn);
      A->item_nodule[k] = new_item(A, PC_NODULE, c, 1, 0);
      A->items[A->item_nodule[k]].size_mm = d;
      A->items[A->item_nodule[k]].lobe = lobe_of(A, c);
    }
  }
  int eff_side = 0, ptx_side = 0;
  if (want[PC_EFFUSION]) {
    double u = t3d_phantom_uniform(rf);
    eff_side = u < 0.45 ? -1 : u < 0.8 ? 1 : 2; /* right, left, bilateral */
    for (int si = 0; si < 2; si++)
      if (eff_side == 2 || eff_side == (si ? 1 : -1)) {
        A->eff_depth[si] = urange(rf, 15, 45);
        A->item_eff[si] = new_item(A, PC_EFFUSION, NULL, 0, 1.0);
        A->items[A->item_eff[si]].side = si ? 1 : -1;
      }
  }
  if (want[PC_PNEUMOTHORAX]) {
    ptx_side = t3d_phantom_uniform(rf) < 0.5 ? -1 : 1;
    if (eff_side == 2 || eff_side == ptx_side)
      ptx_side = -ptx_side;
    if (eff_side == 2)
      ptx_side = 0; /* no room: bilateral effusion */
    if (ptx_side) {
      A->ptx_side[ptx_side < 0 ? 0 : 1] = 1;
      A->ptx_rim = urange(rf, 12, 30);
      A->item_ptx = new_item(A, PC_PNEUMOTHORAX, NULL, 0, 1.0);
      A->items[A->item_ptx].side = ptx_side;
    }
  }
  if (want[PC_CONSOLIDATION]) {
    int lobe = (int)(t3d_phantom_uniform(rf) * 5);
    if (random_lung_point(A, rf, 0, 10, lobe, c)) {
      double rad = urange(rf, 28, 48);
      double turn = urange(rf, 0, 3);
      A->cons = E(c[0], c[1], c[2], rad, rad * 0.9, rad * 1.1, turn);
      A->cons_lobe = lobe;
      A->item_cons = new_item(A, PC_CONSOLIDATION, NULL, 0, 1.0);
      A->items[A->item_cons].lobe = lobe;
    }
  }
  if (want[PC_EMPHYSEMA]) {
    int sev = (int)(t3d_phantom_uniform(rf) * 3);
    A->emph_thr = sev == 0 ? 0.75 : sev == 1 ? 0.5 : 0.25;
    A->item_emph = new_item(A, PC_EMPHYSEMA, NULL, 0, 5.0);
    A->items[A->item_emph].severity = sev;
  }
  A->item_heart = new_item(A, PC_CARDIOMEGALY, A->heart.c, 1, 0);
  A->items[A->item_heart].size_mm = ctr;
  if (want[PC_LIVER_LESION]) {
    int n = 1 + (int)(t3d_phantom_uniform(rf) * 3.5);
    for (int i = 0; i < n && A->n_liver_lesions < PC_MAX_LESIONS; i++) {
      const pc_ellipsoid *lv = &A->liver[0];
      double d = urange(rf, 8, 35);
      int ok = 0;
      for (int t = 0; t < 400 && !ok; t++) {
        if (t == 200)
          d = fmax(8, d * 0.7);
        for (int a = 0; a < 3; a++)
          c[a] = lv->c[a] + urange(rf, -0.7, 0.7) * lv->r[a];
        ok = ell(lv, c) < sq(1 - (d / 2 + 6) / lv->r[1]) && c[2] < diaphragm(A, c[0], c[1]) - d / 2 - 6;
        for (int k = 0; k < 7 && ok; k++) { /* centre and the six poles lie in liver tissue */
          double p[3] = {c[0], c[1], c[2]};
          if (k)
            p[(k - 1) / 2] += (k % 2 ? 1 : -1) * (d / 2 + 2);
          pc_sample_out sm;
          pc_classify(A, p, &sm);
          ok = sm.label == 4;
        }
        for (int j = 0; j < A->n_liver_lesions && ok; j++)
          ok = sq(c[0] - A->liver_lesions[j].c[0]) + sq(c[1] - A->liver_lesions[j].c[1]) +
                   sq(c[2] - A->liver_lesions[j].c[2]) >
               sq(d / 2 + A->liver_lesions[j].r[0] + 4);
      }
      if (!ok)
        continue;
      int k = A->n_liver_lesions++;
      A->liver_lesions[k] = E(c[0], c[1], c[2], d / 2, d / 2, d / 2, 0);
      A->liver_lesion_hu[k] = t3d_phantom_uniform(rf) < 0.4 ? urange(rf, 5, 15) : urange(rf, 35, 60);
      if (!A->contrast && A->liver_lesion_hu[k] > 20) /* solid lesions: 15-30 HU below the unenhanced liver */
        A->liver_lesion_hu[k] = A->liver_hu - 15 - (60 - A->liver_lesion_hu[k]) * 0.6;
      A->item_liver_lesion[k] = new_item(A, PC_LIVER_LESION, c, 1, 0);
      A->items[A->item_liver_lesion[k]].size_mm = d;
    }
  }
  if (want[PC_RENAL_CYST]) {
    int side = t3d_phantom_uniform(rf) < 0.5 ? -1 : 1;
    const pc_ellipsoid *kd = &A->kidney[side < 0 ? 0 : 1];
    double d = urange(rf, 12, 40), ang = urange(rf, -1.2, 1.2);
    c[0] = kd->c[0] + side * kd->r[0] * 0.8 * cos(ang);
    c[1] = kd->c[1] - kd->r[1] * 0.6 * sin(ang);
    c[2] = kd->c[2] - urange(rf, 0, 0.6) * kd->r[2]; /* lower half: clear of the liver */
    A->cysts[A->n_cysts] = E(c[0], c[1], c[2], d / 2, d / 2, d / 2, 0);
    A->item_cyst[A->n_cysts] = new_item(A, PC_RENAL_CYST, c, 1, 0);
    A->items[A->item_cyst[A->n_cysts]].size_mm = d;
    A->items[A->item_cyst[A->n_cysts]].side = side;
    A->n_cysts++;
  }
  A->item_spleen = new_item(A, PC_SPLENOMEGALY, A->spleen.c, 1, 0);
  A->items[A->item_spleen].size_mm = A->spleen_length;
  if (want[PC_ASCITES]) {
    int amount = (int)(t3d_phantom_uniform(rf) * 3);
    A->ascites_t = amount == 0 ? 8 : amount == 1 ? 15 : 25;
    for (int a = 0; a < 3; a++)
      A->liver[0].r[a] -= A->ascites_t * 0.6;
    finish(&A->liver[0]);
    A->item_ascites = new_item(A, PC_ASCITES, NULL, 0, 5.0);
    A->items[A->item_ascites].severity = amount;
  }
  {
    /* mediastinal nodes: enlarged ones with lymphadenopathy, else 0-2 small normal ones */
    static const char *const stations[6] = {"right paratracheal", "subcarinal", "aortopulmonary window",
                                            "prevascular", "right hilar", "left hilar"};
    double pos[6][3] = {{-18, yt - 4, 35},
                        {0, yt + 22, carina[2] - 22},
                        {14, yt - 2, 28},
                        {2, asc[1] - 22, 60},
                        {-52, pa[1] + 2, carina[2] - 14},
                        {52, pa[1] + 4, carina[2] - 10}};
    /* the normal nodes come from the anatomy stream, enlarged ones from the findings stream */
    uint64_t *rn = want[PC_LYMPH] ? rf : r;
    int n = want[PC_LYMPH] ? 1 + (int)(t3d_phantom_uniform(rn) * 3) : (int)(t3d_phantom_uniform(rn) * 3);
    int used = 0;
    for (int i = 0; i < n; i++) {
      int st = (int)(t3d_phantom_uniform(rn) * 6);
      if (used & (1 << st))
        continue;
      used |= 1 << st;
      double sa = want[PC_LYMPH] ? urange(rn, 15, 30) : urange(rn, 5, 8);
      int k = A->n_nodes++;
      A->nodes[k] = E(pos[st][0], pos[st][1], pos[st][2], sa / 2, sa / 2, sa * 0.65, 0);
      A->item_node[k] = -1;
      if (want[PC_LYMPH]) {
        A->item_node[k] = new_item(A, PC_LYMPH, A->nodes[k].c, 1, 0);
        A->items[A->item_node[k]].size_mm = sa;
        A->items[A->item_node[k]].station = stations[st];
      }
    }
  }
  A->want_cardiomegaly = want[PC_CARDIOMEGALY];
  A->want_splenomegaly = want[PC_SPLENOMEGALY];
}
