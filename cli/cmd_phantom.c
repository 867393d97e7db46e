/* `t3d phantom`: writes N chest-abdomen CT phantom cases (DICOM series, labels, report) and a
 * manifest for training and evaluation. Argument parsing and the loop only; the cases are
 * core/model/phantom_case.c and friends. */
#include "config.h"

#include <errno.h>
#include <libintl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "core/model/phantom.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d phantom --count N --seed S --out DIR [options]\n"
                "Writes N synthetic chest-abdomen CT cases with findings: DIR/case-NNNNN/dicom/ (series),\n"
                "labels.nii.gz (label ids), report.txt, plus DIR/manifest.jsonl and DIR/labels.json.\n"
                "Case i uses seed S+i. Acquisition is drawn from the seed unless given:\n\n"
                "  --matrix N            in-plane pixels (256-512 drawn)\n"
                "  --fov MM              in-plane field of view (340-480 drawn)\n"
                "  --slice MM            slice spacing (0.625-5 drawn)\n"
                "  --orientation O       axial|sagittal|coronal|oblique\n"
                "  --storage S           s16|u16|u12\n"
                "  --syntax T            explicit|implicit|deflate|rle|jpeg-lossless|jpegls|j2k\n"
                "  --noise HU            noise standard deviation (8-20 drawn)\n"
                "  --max-voxels N        cap on voxels per case (default 12000000)\n"
                "  --coverage C          chest-abdomen|chest|abdomen (55/30/15 %% drawn)\n"
                "  --contrast yes|no     intravenous contrast (yes in 70 %% drawn)\n"
                "  --table yes|no        patient table under the back (yes in 80 %% drawn)\n"
                "  --quiet               no progress lines\n"));
}

static int write_labels_json(const char *dir)
{
  char path[4096];
  size_t n;
  const char *const *names = t3d_phantom_label_names(&n);
  snprintf(path, sizeof path, "%s/labels.json", dir);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fprintf(f, "{\"classes\": [");
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%s\"%s\"", i ? ", " : "", names[i]);
  fprintf(f, "]}\n");
  return fclose(f) == 0 ? 0 : -1;
}

int t3d_cmd_phantom(int argc, char **argv)
{
  t3d_phantom_case_params p = t3d_phantom_case_default_params();
  const char *out = NULL;
  long long count = -1;
  unsigned long long seed = 0;
  int have_seed = 0, quiet = 0, rc = 1;
  FILE *manifest = NULL;
  char path[4096];

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--quiet") == 0) {
      quiet = 1;
      continue;
    }
    if (!val) {
      fprintf(stderr, _("t3d phantom: %s needs a value\n"), a);
      return 2;
    }
    i++;
    errno = 0;
    if (strcmp(a, "--count") == 0) {
      count = strtoll(val, &end, 10);
      if (*end || count < 0 || count > 10000000) {
        fprintf(stderr, _("t3d phantom: --count wants a number of cases, got '%s'\n"), val);
        return 2;
      }
    } else if (strcmp(a, "--seed") == 0) {
      seed = strtoull(val, &end, 10);
      if (*end || errno || val[0] == '-') {
        fprintf(stderr, _("t3d phantom: --seed wants a non-negative integer, got '%s'\n"), val);
        return 2;
      }
      have_seed = 1;
    } else if (strcmp(a, "--out") == 0) {
      out = val;
    } else if (strcmp(a, "--matrix") == 0) {
      p.matrix = strtoll(val, &end, 10);
    } else if (strcmp(a, "--fov") == 0) {
      p.fov_mm = strtod(val, &end);
    } else if (strcmp(a, "--slice") == 0) {
      p.slice_mm = strtod(val, &end);
    } else if (strcmp(a, "--noise") == 0) {
      p.noise_hu = strtod(val, &end);
    } else if (strcmp(a, "--max-voxels") == 0) {
      p.max_voxels = strtoll(val, &end, 10);
    } else if (strcmp(a, "--orientation") == 0) {
      t3d_phantom_orientation o;
      if (t3d_phantom_orientation_parse(val, &o) != 0) {
        fprintf(stderr, _("t3d phantom: unknown orientation '%s'\n"), val);
        return 2;
      }
      p.orientation = (int)o;
    } else if (strcmp(a, "--storage") == 0) {
      t3d_dicom_storage s;
      if (t3d_dicom_storage_parse(val, &s) != 0 || s == T3D_DICOM_STORE_U8) {
        fprintf(stderr, _("t3d phantom: unknown storage '%s' (s16, u16, u12)\n"), val);
        return 2;
      }
      p.storage = (int)s;
    } else if (strcmp(a, "--coverage") == 0) {
      t3d_phantom_coverage c;
      if (t3d_phantom_coverage_parse(val, &c) != 0) {
        fprintf(stderr, _("t3d phantom: unknown coverage '%s' (chest-abdomen, chest, abdomen)\n"), val);
        return 2;
      }
      p.coverage = (int)c;
    } else if (strcmp(a, "--contrast") == 0 || strcmp(a, "--table") == 0) {
      int yes = strcmp(val, "yes") == 0, no = strcmp(val, "no") == 0;
      if (!yes && !no) {
        fprintf(stderr, _("t3d phantom: %s wants yes or no, got '%s'\n"), a, val);
        return 2;
      }
      *(strcmp(a, "--table") == 0 ? &p.table : &p.contrast) = yes;
    } else if (strcmp(a, "--syntax") == 0) {
      t3d_dicom_syntax s;
      if (t3d_dicom_syntax_parse(val, &s) != 0) {
        fprintf(stderr, _("t3d phantom: unknown transfer syntax '%s'\n"), val);
        return 2;
      }
      p.syntax = (int)s;
    } else {
      fprintf(stderr, _("t3d phantom: unknown option '%s'\n"), a);
      usage(stderr);
      return 2;
    }
    if (end && *end) {
      fprintf(stderr, _("t3d phantom: %s wants a number, got '%s'\n"), a, val);
      return 2;
    }
  }
  if (!out || count < 0 || !have_seed) {
    usage(stderr);
    return 2;
  }
  if (mkdir(out, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, _("t3d phantom: cannot create %s: %s\n"), out, strerror(errno));
    return 1;
  }
  if (write_labels_json(out) != 0) {
    fprintf(stderr, _("t3d phantom: cannot write %s/labels.json\n"), out);
    return 1;
  }
  snprintf(path, sizeof path, "%s/manifest.jsonl", out);
  if (!(manifest = fopen(path, "w"))) {
    fprintf(stderr, _("t3d phantom: cannot create %s: %s\n"), path, strerror(errno));
    return 1;
  }
  for (long long i = 0; i < count; i++) {
    t3d_phantom_case *c = NULL;
    char name[32], *line = NULL;
    snprintf(name, sizeof name, "case-%05lld", i);
    t3d_status st = t3d_phantom_case_generate(&p, (uint64_t)(seed + (unsigned long long)i), &c);
    if (st == T3D_OK) {
      snprintf(path, sizeof path, "%s/%s", out, name);
      st = t3d_phantom_case_write(c, path);
    }
    if (st == T3D_OK)
      st = t3d_phantom_case_manifest_line(c, name, &line);
    if (st != T3D_OK) {
      t3d_phantom_case_free(c);
      rc = t3d_cli_fail(st, name);
      goto cleanup;
    }
    if (fprintf(manifest, "%s\n", line) < 0) {
      free(line);
      t3d_phantom_case_free(c);
      fprintf(stderr, _("t3d phantom: cannot write the manifest: %s\n"), strerror(errno));
      goto cleanup;
    }
    fflush(manifest);
    if (!quiet) {
      const t3d_volume *v = t3d_phantom_case_volume(c);
      fprintf(stderr, _("%s: %lldx%lldx%lld, %.2fx%.2fx%.2f mm\n"), name, (long long)v->nx, (long long)v->ny,
              (long long)v->nz, v->spacing[0], v->spacing[1], v->spacing[2]);
    }
    free(line);
    t3d_phantom_case_free(c);
  }
  rc = 0;
cleanup:
  if (manifest && fclose(manifest) != 0 && rc == 0) {
    fprintf(stderr, _("t3d phantom: cannot write the manifest: %s\n"), strerror(errno));
    rc = 1;
  }
  return rc;
}
