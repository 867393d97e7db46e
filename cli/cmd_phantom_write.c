/* `t3d phantom-write`: writes the synthetic CT phantom as a DICOM series (and optionally the
 * same voxels as NIfTI), for demos and for reader/exporter tests. Argument parsing only; the
 * phantom is core/model/phantom.c and the writer core/dicom/dicomwrite.c. */
#include "config.h"

#include <libintl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/dicom/dicomwrite.h"
#include "core/dicom/nifti.h"
#include "core/model/phantom.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d phantom-write OUT_DIR [options]\n"
                "Writes a synthetic CT phantom as a DICOM CT Image Storage series\n"
                "(u8: Secondary Capture Image Storage, the CT IOD allows only 16-bit pixels).\n\n"
                "  --size X,Y,Z          voxels (default 64,64,24)\n"
                "  --spacing SX,SY,SZ    mm (default 0.8,0.8,2.5)\n"
                "  --orientation O       axial|sagittal|coronal|oblique (default axial)\n"
                "  --storage S           s16|u16|u12|u8 (default s16)\n"
                "  --syntax T            explicit|implicit|deflate|rle|jpeg-lossless|jpegls|j2k\n"
                "  --seed N              nodule placement and noise (default 1)\n"
                "  --noise HU            noise standard deviation (default 10)\n"
                "  --skip K1,K2,...      leave out these slice indices (test data with gaps)\n"
                "  --tilt DEG            shear the slice stack as a gantry tilt would (test data)\n"
                "  --tilt-no-tag         with --tilt: leave the Gantry/Detector Tilt attribute out\n"
                "  --slice-z Z0,Z1,...   write slice k at Zk mm along the stack (uneven steps; test data)\n"
                "  --enhanced            one Enhanced CT multi-frame file instead of one file per slice\n"
                "  --nifti FILE          also write the voxels as read back from the DICOM files\n"
                "                        (after rescale rounding) as NIfTI (.nii or .nii.gz)\n"));
}

static int parse_list(const char *s, double *out, int max)
{
  int n = 0;
  char *end;
  while (n < max) {
    out[n++] = strtod(s, &end);
    if (end == s)
      return -1;
    if (*end == '\0')
      return n;
    if (*end != ',')
      return -1;
    s = end + 1;
  }
  return -1;
}

int t3d_cmd_phantom_write(int argc, char **argv)
{
  t3d_phantom_params pp = t3d_phantom_default_params();
  t3d_dicom_write_params wp = t3d_dicom_write_default_params();
  const char *out_dir = NULL, *nifti = NULL;
  int64_t skip[256];
  double slice_z[256];
  int rc = 1, n_slice_z = 0;
  t3d_volume *v = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    double x[256];
    int n;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--tilt-no-tag") == 0) {
      wp.omit_tilt_tag = 1;
      continue;
    }
    if (strcmp(a, "--enhanced") == 0) {
      wp.enhanced_multiframe = 1;
      continue;
    }
    if (a[0] != '-') {
      if (out_dir) {
        fprintf(stderr, _("t3d phantom-write: more than one output directory given\n"));
        return 2;
      }
      out_dir = a;
      continue;
    }
    if (!val) {
      fprintf(stderr, _("t3d phantom-write: %s needs a value\n"), a);
      return 2;
    }
    i++;
    if (strcmp(a, "--size") == 0) {
      if (parse_list(val, x, 3) != 3 || x[0] < 1 || x[1] < 1 || x[2] < 1 || x[0] > 4096 || x[1] > 4096 ||
          x[2] > 4096) {
        fprintf(stderr, _("t3d phantom-write: --size wants X,Y,Z between 1 and 4096, got '%s'\n"), val);
        return 2;
      }
      pp.nx = (int64_t)x[0], pp.ny = (int64_t)x[1], pp.nz = (int64_t)x[2];
    } else if (strcmp(a, "--spacing") == 0) {
      if (parse_list(val, x, 3) != 3 || !(x[0] > 0 && x[1] > 0 && x[2] > 0)) {
        fprintf(stderr, _("t3d phantom-write: --spacing wants three positive mm values, got '%s'\n"), val);
        return 2;
      }
      memcpy(pp.spacing, x, sizeof pp.spacing);
    } else if (strcmp(a, "--orientation") == 0) {
      if (t3d_phantom_orientation_parse(val, &pp.orientation) != 0) {
        fprintf(stderr, _("t3d phantom-write: unknown orientation '%s'\n"), val);
        return 2;
      }
    } else if (strcmp(a, "--storage") == 0) {
      if (t3d_dicom_storage_parse(val, &wp.storage) != 0) {
        fprintf(stderr, _("t3d phantom-write: unknown storage '%s' (s16, u16, u12, u8)\n"), val);
        return 2;
      }
    } else if (strcmp(a, "--syntax") == 0) {
      if (t3d_dicom_syntax_parse(val, &wp.syntax) != 0) {
        fprintf(stderr, _("t3d phantom-write: unknown transfer syntax '%s'\n"), val);
        return 2;
      }
    } else if (strcmp(a, "--seed") == 0) {
      pp.seed = strtoull(val, NULL, 10);
    } else if (strcmp(a, "--noise") == 0) {
      pp.noise_hu = atof(val);
    } else if (strcmp(a, "--slice-z") == 0) {
      if ((n = parse_list(val, slice_z, 256)) < 1) {
        fprintf(stderr, _("t3d phantom-write: --slice-z wants positions Z0,Z1,... in mm, got '%s'\n"), val);
        return 2;
      }
      wp.slice_z_mm = slice_z;
      n_slice_z = n;
    } else if (strcmp(a, "--tilt") == 0) {
      wp.gantry_tilt_deg = atof(val);
    } else if (strcmp(a, "--skip") == 0) {
      if ((n = parse_list(val, x, 256)) < 1) {
        fprintf(stderr, _("t3d phantom-write: --skip wants slice indices K1,K2,..., got '%s'\n"), val);
        return 2;
      }
      for (int k = 0; k < n; k++)
        skip[k] = (int64_t)x[k];
      wp.skip_slices = skip;
      wp.n_skip_slices = (size_t)n;
    } else if (strcmp(a, "--nifti") == 0) {
      nifti = val;
    } else {
      fprintf(stderr, _("t3d phantom-write: unknown option '%s'\n"), a);
      usage(stderr);
      return 2;
    }
  }
  if (!out_dir) {
    usage(stderr);
    return 2;
  }

  if (n_slice_z && n_slice_z != pp.nz) {
    fprintf(stderr, _("t3d phantom-write: --slice-z gives %d positions for %d slices\n"), n_slice_z, (int)pp.nz);
    return 2;
  }
  t3d_status st = t3d_phantom_ct(&pp, &v);
  if (st != T3D_OK)
    return t3d_cli_fail(st, "phantom");
  if ((st = t3d_dicom_write_ct_series(v, out_dir, &wp)) != T3D_OK) {
    rc = t3d_cli_fail(st, "writing DICOM");
    goto cleanup;
  }
  if (nifti) {
    t3d_dicom_rescale rs;
    if ((st = t3d_dicom_choose_rescale(v, wp.storage, &rs)) != T3D_OK) {
      rc = t3d_cli_fail(st, "rescale");
      goto cleanup;
    }
    size_t n = t3d_volume_nvoxels(v);
    for (size_t i = 0; i < n; i++)
      v->data[i] = t3d_dicom_rescale_read(&rs, t3d_dicom_rescale_store(&rs, v->data[i]));
    if ((st = t3d_nifti_write(v, nifti)) != T3D_OK) {
      rc = t3d_cli_fail(st, "writing NIfTI");
      goto cleanup;
    }
  }
  rc = 0;
cleanup:
  t3d_volume_free(v);
  return rc;
}
