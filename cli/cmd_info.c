/* `t3d info PATH [--json]`: lists the DICOM series in a folder, DICOMDIR or file, and the notes
 * on files left out. Presentation only: discovery and its policy live in core/dicom. */
#include "config.h"

#include <jansson.h>
#include <libintl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "core/dicom/dicom.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d info PATH [--json] [--load] [--strict-geometry]\n"
                "Lists the DICOM series under PATH (a folder, scanned recursively; a DICOMDIR; or one file)\n"
                "with modality, UID, description, patient, study date, instance count and dimensions,\n"
                "then a note for every file left out and why.\n"
                "  --json   print one JSON object instead of the table\n"
                "  --load   also load every series: its volume geometry, or why t3d refuses it\n"
                "  --strict-geometry  refuse tilted and unevenly spaced series instead of resampling them\n"
                "Exit status: 0 when at least one series was found, 1 when none or on error.\n"));
}

static json_t *series_json(size_t i, const t3d_dicom_series_info *s)
{
  const t3d_volume_meta *m = &s->meta;
  return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:b, s:s}",
                   "index", (json_int_t)i, "modality", m->modality, "series_uid", m->series_uid, "uid_missing",
                   s->uid_missing, "series_number", m->series_number, "series_description", m->series_description,
                   "body_part", m->body_part, "patient_name", m->patient_name, "patient_id", m->patient_id,
                   "study_uid", m->study_uid, "study_date", m->study_date, "study_description",
                   m->study_description, "frame_of_reference_uid", m->frame_of_reference_uid, "instances",
                   (json_int_t)s->instances, "slices", (json_int_t)s->slices, "rows", s->rows, "cols", s->cols,
                   "multiframe", s->multiframe, "transfer_syntax", s->transfer_syntax);
}

/* Loads series i; on success fills *geom with a one-line description, else returns the status
 * (the reason is in t3d_error_detail()). */
static int strict_geometry;

static t3d_status try_load(t3d_dicom_scan *scan, size_t i, char *geom, size_t cap, char *note, size_t note_cap,
                           double *seconds)
{
  t3d_volume *v = NULL;
  t3d_dicom_load_opts o = t3d_dicom_load_default_opts();
  o.strict_geometry = strict_geometry;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  t3d_status st = t3d_dicom_load_series(scan, i, &o, &v);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  if (st == T3D_OK)
    snprintf(geom, cap, "%lldx%lldx%lld voxels, spacing %.4g x %.4g x %.4g mm, origin (%.2f, %.2f, %.2f) LPS",
             (long long)v->nx, (long long)v->ny, (long long)v->nz, v->spacing[0], v->spacing[1], v->spacing[2],
             v->origin[0], v->origin[1], v->origin[2]);
  snprintf(note, note_cap, "%s", st == T3D_OK ? v->geometry_note : "");
  t3d_volume_free(v);
  return st;
}

static int print_json(const char *path, t3d_dicom_scan *scan, int load)
{
  json_t *root = json_object(), *series = json_array(), *notes = json_array();
  int rc = 1;
  if (!root || !series || !notes)
    goto cleanup;
  for (size_t i = 0; i < t3d_dicom_scan_series_count(scan); i++) {
    json_t *js = series_json(i, t3d_dicom_scan_series(scan, i));
    if (!js || json_array_append_new(series, js))
      goto cleanup;
    if (load) {
      char geom[256], note[T3D_NOTE_MAX];
      double sec = 0;
      t3d_status st = try_load(scan, i, geom, sizeof geom, note, sizeof note, &sec);
      json_object_set_new(js, "load", st == T3D_OK ? json_pack("{s:b, s:s, s:s, s:f}", "ok", 1, "volume", geom,
                                                               "geometry_note", note, "seconds", sec)
                                                   : json_pack("{s:b, s:s}", "ok", 0, "reason", t3d_error_detail()));
    }
  }
  for (size_t i = 0; i < t3d_dicom_scan_note_count(scan); i++)
    if (json_array_append_new(notes, json_string(t3d_dicom_scan_note(scan, i))))
      goto cleanup;
  json_object_set_new(root, "path", json_string(path));
  json_object_set_new(root, "files", json_integer((json_int_t)t3d_dicom_scan_file_count(scan)));
  json_object_set(root, "series", series);
  json_object_set(root, "notes", notes);
  if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) == 0) {
    putchar('\n');
    rc = 0;
  }
cleanup:
  if (rc)
    fprintf(stderr, "t3d: info: out of memory building JSON\n");
  json_decref(series);
  json_decref(notes);
  json_decref(root);
  return rc;
}

static void print_loads(t3d_dicom_scan *scan)
{
  size_t n = t3d_dicom_scan_series_count(scan);
  if (n)
    printf(_("Loading:\n"));
  for (size_t i = 0; i < n; i++) {
    char geom[256], note[T3D_NOTE_MAX];
    double sec = 0;
    t3d_status st = try_load(scan, i, geom, sizeof geom, note, sizeof note, &sec);
    if (st != T3D_OK) {
      printf(_("  %zu: refused: %s\n"), i, t3d_error_detail());
      continue;
    }
    printf(_("  %zu: ok, %s (%.2f s)\n"), i, geom, sec);
    if (note[0])
      printf(_("     geometry: %s\n"), note);
  }
}

static void print_table(const char *path, const t3d_dicom_scan *scan)
{
  size_t n = t3d_dicom_scan_series_count(scan);
  printf(_("%s: %zu file(s), %zu series\n"), path, t3d_dicom_scan_file_count(scan), n);
  if (n) {
    printf("%-3s %-4s %-44s %-24s %-20s %-10s %6s %s\n", "#", _("mod"), _("series UID"), _("description"),
           _("patient"), _("study date"), _("inst"), _("cols x rows x slices"));
    for (size_t i = 0; i < n; i++) {
      const t3d_dicom_series_info *s = t3d_dicom_scan_series(scan, i);
      printf("%-3zu %-4s %-44s %-24.24s %-20.20s %-10s %6lld %dx%dx%lld\n", i, s->meta.modality, s->meta.series_uid,
             s->meta.series_description, s->meta.patient_name, s->meta.study_date, (long long)s->instances, s->cols,
             s->rows, (long long)s->slices);
    }
  }
}

static void print_notes(const t3d_dicom_scan *scan)
{
  size_t nn = t3d_dicom_scan_note_count(scan);
  if (nn) {
    printf(_("Notes:\n"));
    for (size_t i = 0; i < nn; i++)
      printf("  %s\n", t3d_dicom_scan_note(scan, i));
  }
}

int t3d_cmd_info(int argc, char **argv)
{
  const char *path = NULL;
  int json = 0, load = 0, rc = 0;
  t3d_dicom_scan *scan = NULL;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--load") == 0) {
      load = 1;
    } else if (strcmp(argv[i], "--strict-geometry") == 0) {
      strict_geometry = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, _("t3d info: unknown option '%s'\n"), argv[i]);
      usage(stderr);
      return 2;
    } else if (!path) {
      path = argv[i];
    } else {
      fprintf(stderr, _("t3d info: one PATH only ('%s' is extra)\n"), argv[i]);
      return 2;
    }
  }
  if (!path) {
    usage(stderr);
    return 2;
  }
  t3d_status st = t3d_dicom_scan_path(path, &scan);
  if (st != T3D_OK)
    return t3d_cli_fail(st, "info");
  if (json) {
    rc = print_json(path, scan, load);
  } else {
    print_table(path, scan);
    if (load) /* loading adds notes (padding, duplicates), so notes come last */
      print_loads(scan);
    print_notes(scan);
  }
  if (!json || rc == 0)
    rc = t3d_dicom_scan_series_count(scan) ? 0 : 1;
  if (!json && rc)
    fprintf(stderr, _("t3d info: no DICOM image series found under %s (see the notes)\n"), path);
  t3d_dicom_scan_free(scan);
  return rc;
}
