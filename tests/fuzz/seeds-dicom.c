/* Seeds for the DICOM fuzz target: one file of a small phantom series written by
 * t3d_dicom_write_ct_series in every transfer syntax and storage type, and the Enhanced CT
 * multi-frame file. UIDs and dates are fixed where the writer takes them from the metadata. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "core/dicom/dicomwrite.h"
#include "core/model/phantom.h"
#include "tests/fuzz/run-corpus.h"

const char fuzz_target_name[] = "dicom";
const size_t fuzz_min_seeds = 8;

/* Adds the first (by name) non-hidden file in dir. */
static bool add_first_file(fuzz_seeds *s, const char *name, const char *dir)
{
  char best[256] = "", path[4400];
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cannot list %s\n", dir);
    return false;
  }
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && (!best[0] || strcmp(e->d_name, best) < 0))
      snprintf(best, sizeof best, "%s", e->d_name);
  closedir(d);
  if (!best[0]) {
    fprintf(stderr, "the writer left no file in %s\n", dir);
    return false;
  }
  snprintf(path, sizeof path, "%s/%s", dir, best);
  return fuzz_seeds_add_file(s, name, path);
}

bool fuzz_make_seeds(fuzz_seeds *s)
{
  char dir[4096], sub[4200];
  t3d_volume *v = NULL;
  bool ok = false;

  if (!fuzz_tmpdir(dir, sizeof dir))
    return false;
  t3d_phantom_params pp = t3d_phantom_default_params();
  pp.nx = 8, pp.ny = 6, pp.nz = 2;
  if (t3d_phantom_ct(&pp, &v) != T3D_OK)
    goto done;
  t3d_volume_meta *m = &v->meta;
  snprintf(m->study_uid, sizeof m->study_uid, "2.25.1");
  snprintf(m->series_uid, sizeof m->series_uid, "2.25.2");
  snprintf(m->frame_of_reference_uid, sizeof m->frame_of_reference_uid, "2.25.3");
  snprintf(m->study_date, sizeof m->study_date, "20260101");
  snprintf(m->study_time, sizeof m->study_time, "120000");
  for (int syn = 0; syn < T3D_DICOM_SYNTAX_COUNT + 3; syn++) {
    t3d_dicom_write_params p = t3d_dicom_write_default_params();
    char name[64];
    if (syn < T3D_DICOM_SYNTAX_COUNT) {
      p.syntax = (t3d_dicom_syntax)syn;
      snprintf(name, sizeof name, "%s.dcm", t3d_dicom_syntax_name(p.syntax));
    } else if (syn == T3D_DICOM_SYNTAX_COUNT) {
      p.enhanced_multiframe = 1;
      snprintf(name, sizeof name, "enhanced.dcm");
    } else {
      p.storage = syn == T3D_DICOM_SYNTAX_COUNT + 1 ? T3D_DICOM_STORE_U8 : T3D_DICOM_STORE_U12;
      snprintf(name, sizeof name, "storage-%s.dcm", t3d_dicom_storage_name(p.storage));
    }
    snprintf(sub, sizeof sub, "%s/%d", dir, syn);
    if (t3d_dicom_write_ct_series(v, sub, &p) != T3D_OK) {
      fprintf(stderr, "writing %s: %s\n", name, t3d_error_detail());
      goto done;
    }
    bool added = add_first_file(s, name, sub);
    fuzz_rmtree(sub);
    if (!added)
      goto done;
  }
  ok = true;
done:
  t3d_volume_free(v);
  fuzz_rmtree(dir);
  return ok;
}
