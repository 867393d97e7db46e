/* The report's and the source list's insides, shared by core/report/report.c (text, measurements)
 * and core/report/report_shim.cc (DICOM SR and SEG through DCMTK). Not public API. */
#ifndef T3D_REPORT_INTERNAL_H
#define T3D_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/base/sha256.h"
#include "core/report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  char *name;
  char *sentence;  /* the FINDINGS sentence (template or reused), without the probability */
  double probability;
  int present;      /* assessed and at or above the threshold */
  int assessed;     /* t3d_finding_assessed: a familiar series and a held-out AUROC that allow a statement */
  int unfamiliar;   /* not assessed because the series failed the familiarity check */
  double auroc;     /* the finding's held-out AUROC where the model file gives it */
  int phrased_from; /* neighbour index or -1 */
} t3d_report_finding;

struct t3d_report {
  t3d_volume grid;             /* geometry, meta and geometry_note of the series; data NULL */
  char *model_name;
  char model_sha256[T3D_SHA256_HEX];
  char device_uid[T3D_UID_MAX]; /* SR Device Observer UID: 2.25.<first 128 bits of the hash> */
  double threshold;
  char *timestamp;             /* NULL when none was given */
  t3d_report_finding *findings;
  size_t nfindings;
  char **class_names;          /* [nclasses], background first */
  double *volumes_ml;          /* [nclasses] or NULL */
  size_t nclasses;
  double min_organ_ml;
  uint8_t *labels;             /* u8[nz*ny*nx] or NULL */
  int lesion_class;            /* -1 when no class is named "lesion" */
  double *lesion_ml;           /* [nlesions], largest first */
  size_t nlesions;
  double lesion_max_diameter_mm;
  double min_lesion_mm3;
  char *notice;                /* the draft notice line (model, hash) */
  char *findings_text, *impression_text, *text, *markdown;
};

typedef struct {
  char path[4096];
  char sop_class_uid[T3D_UID_MAX], sop_instance_uid[T3D_UID_MAX];
  char study_uid[T3D_UID_MAX], series_uid[T3D_UID_MAX];
  double ipp[3];
  int has_ipp;
  long nframes;
} t3d_report_instance;

struct t3d_report_source {
  t3d_report_instance *inst; /* [n], in the order given */
  size_t n;
  size_t *slice_inst;        /* [nz]: instance on slice k */
  int64_t nz;
};

/* Shim (report_shim.cc). Reads one file's header into out (path copied). */
t3d_status t3d_report_shim_read_header(const char *path, t3d_report_instance *out);
/* Writes the SR / SEG to path (the caller handles the temporary name). uids: series, instance. */
t3d_status t3d_report_shim_write_sr(const t3d_report *r, const t3d_report_source *src, const char *series_uid,
                                    const char *instance_uid, int series_number, const char *path);
t3d_status t3d_report_shim_write_seg(const t3d_report *r, const t3d_report_source *src, const char *series_uid,
                                     const char *instance_uid, int series_number, const char *path);

/* Locale-independent "%.*f" into buf (always '.' as decimal separator). */
const char *t3d_report_fmt(char *buf, size_t size, int decimals, double v);

#ifdef __cplusplus
}
#endif
#endif
