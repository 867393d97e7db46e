/* Internals shared by the chest-abdomen phantom files: the anatomy drawn from a seed
 * (phantom_case.c), the grid sampling and files (phantom_write.c) and the report text
 * (phantom_report.c). Not installed, not an API. */
#ifndef T3D_PHANTOM_CASE_INTERNAL_H
#define T3D_PHANTOM_CASE_INTERNAL_H

#include <stdint.h>

#include "core/model/phantom.h"

/* Finding indices, in t3d_phantom_finding_names order. */
enum {
  PC_NODULE = 0,
  PC_EFFUSION,
  PC_PNEUMOTHORAX,
  PC_CONSOLIDATION,
  PC_EMPHYSEMA,
  PC_CARDIOMEGALY,
  PC_LIVER_LESION,
  PC_RENAL_CYST,
  PC_SPLENOMEGALY,
  PC_ASCITES,
  PC_LYMPH
};

enum { PC_VESSEL = 0, PC_AIRWAY = 1 };

typedef struct {
  double c[3], r[3], rot; /* centre, semi-axes (mm), rotation about S (radians) */
  double cs, sn, bound;   /* cos and sin of rot, largest in-plane semi-axis (set when drawn) */
} pc_ellipsoid;

typedef struct {
  double a[3], b[3];   /* axis end points */
  double ra, rb, wall; /* radius at a and b; airway wall thickness outside the lumen */
  double rmax, hu;
  int kind;
} pc_capsule;

/* The pulmonary trees in a coarse grid of cells listing the capsules that reach into them. */
#define PC_CELL 16.0
#define PC_GRID_X0 (-256.0)
#define PC_GRID_Y0 (-256.0)
#define PC_GRID_Z0 (-240.0)
#define PC_GX 32
#define PC_GY 32
#define PC_GZ 32
#define PC_CELL_MAX 96
typedef struct {
  int n;
  int16_t idx[PC_CELL_MAX];
} pc_cell;

/* One visible-or-not piece of a finding (a nodule, one side's effusion, ...). */
typedef struct {
  int finding;
  double c[3];        /* centre (lesions) */
  int need_centre;    /* visible only with the centre inside the grid */
  double min_cm3;     /* visible only with at least this volume on the grid */
  double size_mm;     /* lesion diameter, node short axis, spleen length; cardiothoracic ratio */
  int lobe, side, severity;
  const char *station;
  int64_t voxels;     /* counted while sampling */
  int visible;
} pc_item;

#define PC_MAX_VESSELS 24
#define PC_MAX_AIRWAYS 12
#define PC_MAX_TREE 2400
#define PC_MAX_LESIONS 6
#define PC_MAX_ITEMS 40

typedef struct {
  double a_chest, b_chest, a_abd, b_abd, fat_chest, fat_abd, muscle;
  double z_apex, z_dome_r, z_dome_l, z_fissure, z_bottom, z_top;
  double r_vert, y_spine, vert_period, z_vert0, rib_step, z_rib0;
  double liver_hu, spleen_hu, ctr, spleen_length;
  int contrast;    /* 1 portal venous phase, 0 unenhanced */
  double blood_hu; /* heart chambers and systemic veins and arteries (pulmonary ones too when unenhanced) */
  int table;       /* patient table below the back */
  double table_y, table_r, table_half, table_shell, table_core, table_shell_hu, table_core_hu;
  pc_ellipsoid heart, liver[2], spleen, kidney[2], stomach, gallbladder, cons;
  pc_capsule vessels[PC_MAX_VESSELS], airways[PC_MAX_AIRWAYS], hepatic[4], esophagus;
  int n_vessels, n_airways, n_hepatic;
  pc_capsule tree[PC_MAX_TREE];
  int n_tree;
  pc_cell cells[PC_GX * PC_GY * PC_GZ];
  /* findings */
  pc_ellipsoid nodules[PC_MAX_LESIONS], liver_lesions[PC_MAX_LESIONS], cysts[2], nodes[4];
  double liver_lesion_hu[PC_MAX_LESIONS];
  int n_nodules, n_liver_lesions, n_cysts, n_nodes;
  double eff_depth[2]; /* [right, left], 0 none */
  int ptx_side[2];
  double ptx_rim, ascites_t, emph_thr;
  int cons_lobe, want_cardiomegaly, want_splenomegaly;
  pc_item items[PC_MAX_ITEMS];
  int n_items;
  int item_nodule[PC_MAX_LESIONS], item_liver_lesion[PC_MAX_LESIONS], item_cyst[2], item_node[4];
  int item_eff[2], item_ptx, item_cons, item_emph, item_heart, item_spleen, item_ascites;
} pc_anatomy;

typedef struct {
  float hu;
  uint8_t label;
  int8_t item;
} pc_sample_out;

extern const char *const pc_lobe_names[5];

/* Draws the anatomy and findings of `seed`; force[f] >= 0 overrides whether finding f is drawn,
 * contrast and table >= 0 whether the case is enhanced and lies on a table (-1: drawn). */
void pc_anatomy_draw(pc_anatomy *A, uint64_t seed, const int8_t force[T3D_PHANTOM_NFINDINGS], int contrast,
                     int table);
/* HU, label and truth item at anatomy-frame point q (mm: x to the patient's left, y posterior,
 * z superior, origin at the carina level). Pure: safe from several threads. */
void pc_classify(const pc_anatomy *A, const double q[3], pc_sample_out *out);

/* Per-finding truth after sampling. */
typedef struct {
  int present;
  int count;
  double size_mm, value; /* value: cardiothoracic ratio or spleen length */
  int lobe, side, severity;
  const char *station;
} pc_truth;

/* The report for truth (deterministic in seed) of a scan with `coverage` (t3d_phantom_coverage:
 * normal statements only about what it shows); technique, if not NULL, is its first line.
 * malloc'd, NULL when out of memory. */
char *pc_report(const pc_truth truth[T3D_PHANTOM_NFINDINGS], uint64_t seed, int coverage, const char *technique);

#endif
