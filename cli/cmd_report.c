/* `t3d report SERIES_DIR`: analyses a CT series with the T3D model and writes the draft report
 * (core/report/report.h) as text, Markdown, DICOM SR and/or DICOM SEG. Not an editor or a
 * signing tool: what it writes is a machine draft. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libintl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/index_cli.h"
#include "core/base/sha256.h"
#include "core/dicom/dicom.h"
#include "core/index/index.h"
#include "core/model/model.h"
#include "core/report/report.h"

#define _(s) gettext(s)

enum { OUT_TEXT = 1, OUT_MD = 2, OUT_SR = 4, OUT_SEG = 8, OUT_ALL = 15 };

#define REPORT_INDEX_NEIGHBOURS 5 /* nearest indexed cases offered to the phrasing rule */

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d report SERIES_DIR [--model FILE] [--format text|md|sr|seg|all] [-o PATH]\n"
                "                  [--series UID] [--threads N] [--index PATH | --no-index | --neighbours FILE.json]\n"
                "                  [--threshold P] [--timestamp T] [--device DEV]\n\n"
                "Analyses a CT series and writes a draft report for a radiologist to review: findings over\n"
                "the threshold, organ volumes, lesion count and largest diameter, the model and its SHA-256.\n"
                "  --model FILE       model file (default as for 't3d analyze')\n"
                "  --format F         text (default, to stdout without -o), md, sr (DICOM SR, TID 1500),\n"
                "                     seg (DICOM SEG), or all (-o names a folder: report.txt, report.md,\n"
                "                     report-sr.dcm, report-seg.dcm)\n"
                "  -o, --output PATH  file to write (a folder for --format all)\n"
                "  --series UID       which series when the folder holds several (default: the first CT)\n"
                "  --threads N        CPU threads (default: all cores)\n"
                "  --device DEV       auto (default: the GPU when usable, else the CPU), cpu, cuda or cuda:N\n"
                "  --index PATH       case index for the wording of similar cases (default: the XDG index\n"
                "                     when it exists); the 5 nearest by image embedding are used\n"
                "  --no-index         do not look for similar cases\n"
                "  --neighbours FILE  similar cases as JSON instead of the index: [{\"label\", \"text\",\n"
                "                     \"similarity\", \"findings\": [names]}]\n"
                "  --threshold P      report findings with probability >= P (default 0.5)\n"
                "  --timestamp T      written into the report (YYYYMMDDHHMMSS also sets DICOM dates);\n"
                "                     without it the text holds no time and is the same on every run\n"));
  t3d_cli_precision_help(to);
}

/* Neighbours from JSON; the json_t keeps the strings alive. */
static t3d_status load_neighbours(const char *path, json_t **root, t3d_report_neighbour **out, size_t *n,
                                  const char ***names)
{
  json_error_t err;
  *root = json_load_file(path, 0, &err);
  if (!*root || !json_is_array(*root))
    return t3d_error(T3D_ERR_FORMAT, "%s: not a JSON array of neighbours (%s, line %d)", path, err.text, err.line);
  size_t count = json_array_size(*root), total = 0;
  for (size_t i = 0; i < count; i++) total += json_array_size(json_object_get(json_array_get(*root, i), "findings"));
  *out = calloc(count ? count : 1, sizeof **out);
  *names = calloc(total ? total : 1, sizeof **names);
  if (!*out || !*names) return t3d_error(T3D_ERR_NOMEM, "out of memory reading %s", path);
  size_t used = 0;
  for (size_t i = 0; i < count; i++) {
    json_t *o = json_array_get(*root, i), *f = json_object_get(o, "findings");
    json_t *sim = json_object_get(o, "similarity");
    if (!json_is_object(o) || !json_is_number(sim))
      return t3d_error(T3D_ERR_FORMAT, "%s: neighbour %zu lacks a numeric \"similarity\"", path, i + 1);
    (*out)[i].label = json_string_value(json_object_get(o, "label"));
    (*out)[i].text = json_string_value(json_object_get(o, "text"));
    (*out)[i].similarity = json_number_value(sim);
    (*out)[i].findings = *names + used;
    for (size_t k = 0; k < json_array_size(f); k++) {
      const char *s = json_string_value(json_array_get(f, k));
      if (s) (*names)[used++] = s, (*out)[i].nfindings++;
    }
  }
  *n = count;
  return T3D_OK;
}

/* Neighbours from the case index: the REPORT_INDEX_NEIGHBOURS nearest analyses of the same
 * model file by image embedding (this series left out), each with its stored reports and the
 * findings it scored >= threshold. No index at the default path is not an error (no neighbours). */
typedef struct {
  t3d_report_neighbour nb[REPORT_INDEX_NEIGHBOURS];
  t3d_index_case *cases[REPORT_INDEX_NEIGHBOURS];
  char labels[REPORT_INDEX_NEIGHBOURS][2 * T3D_META_MAX];
  size_t n;
} index_neighbours;

static void index_neighbours_free(index_neighbours *in)
{
  for (size_t i = 0; i < in->n; i++) t3d_index_case_free(in->cases[i]);
  in->n = 0;
}

static t3d_status load_index_neighbours(const char *index_path, const char *model_hash, const t3d_volume *vol,
                                        const t3d_analysis_result *res, double threshold, index_neighbours *out)
{
  char def[4096];
  t3d_index *ix = NULL;
  t3d_index_hit *hits = NULL;
  size_t nhits = 0;
  t3d_status s;

  out->n = 0;
  if (!res->embedding || res->dim <= 0) return T3D_OK;
  if (!index_path) {
    if (t3d_index_default_path(def, sizeof def) != T3D_OK || access(def, R_OK) != 0) {
      t3d_error_clear();
      return T3D_OK;
    }
    index_path = def;
  }
  if ((s = t3d_cli_open_index(index_path, true, &ix)) != T3D_OK) return s;
  t3d_index_search_opts o = t3d_index_search_default_opts();
  o.k = REPORT_INDEX_NEIGHBOURS;
  o.exclude_series_uid = vol->meta.series_uid;
  s = t3d_index_search(ix, model_hash, res->embedding, res->dim, NULL, &o, &hits, &nhits);
  for (size_t i = 0; s == T3D_OK && i < nhits && out->n < REPORT_INDEX_NEIGHBOURS; i++) {
    t3d_index_case *c = NULL;
    if ((s = t3d_index_case_get(ix, hits[i].analysis_id, threshold, &c)) != T3D_OK) break;
    size_t k = out->n++;
    out->cases[k] = c;
    snprintf(out->labels[k], sizeof out->labels[k], "%s%s%s", hits[i].study_date, *hits[i].description ? " " : "",
             *hits[i].description ? hits[i].description : (*hits[i].study_date ? "" : hits[i].series_uid));
    out->nb[k] = (t3d_report_neighbour){out->labels[k], c->text, hits[i].cosine, (const char *const *)c->findings,
                                        c->nfindings};
  }
  free(hits);
  t3d_index_free(ix);
  return s;
}

static int parse_format(const char *s)
{
  if (strcmp(s, "text") == 0) return OUT_TEXT;
  if (strcmp(s, "md") == 0 || strcmp(s, "markdown") == 0) return OUT_MD;
  if (strcmp(s, "sr") == 0) return OUT_SR;
  if (strcmp(s, "seg") == 0) return OUT_SEG;
  if (strcmp(s, "all") == 0) return OUT_ALL;
  return 0;
}

/* dir + "/" + name into buf. */
static const char *join(char *buf, size_t size, const char *dir, const char *name)
{
  snprintf(buf, size, "%s/%s", dir, name);
  return buf;
}

int t3d_cmd_report(int argc, char **argv)
{
  const char *model_path = NULL, *out = NULL, *series_uid = NULL, *nb_path = NULL, *timestamp = NULL;
  const char *index_path = NULL, *device = NULL;
  int format = OUT_TEXT, threads = 0, no_index = 0, c, rc = 1;
  t3d_precision precision = T3D_PRECISION_AUTO;
  double threshold = T3D_REPORT_FINDING_THRESHOLD;
  static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                       {"format", required_argument, NULL, 'f'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"series", required_argument, NULL, 's'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"neighbours", required_argument, NULL, 'n'},
                                       {"index", required_argument, NULL, 'i'},
                                       {"no-index", no_argument, NULL, 'N'},
                                       {"threshold", required_argument, NULL, 'P'},
                                       {"timestamp", required_argument, NULL, 'T'},
                                       {"device", required_argument, NULL, T3D_CLI_OPT_DEVICE},
                                       {"precision", required_argument, NULL, 'R'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    switch (c) {
    case 'm': model_path = optarg; break;
    case 'f':
      if (!(format = parse_format(optarg))) {
        fprintf(stderr, _("t3d report: unknown --format '%s' (text, md, sr, seg, all)\n"), optarg);
        return 2;
      }
      break;
    case 'o': out = optarg; break;
    case 's': series_uid = optarg; break;
    case 't': threads = atoi(optarg); break;
    case T3D_CLI_OPT_DEVICE: device = optarg; break;
    case 'R':
      if (t3d_cli_parse_precision("report", optarg, &precision)) return 2;
      break;
    case 'n': nb_path = optarg; break;
    case 'i': index_path = optarg; break;
    case 'N': no_index = 1; break;
    case 'P': {
      char *end = NULL;
      threshold = strtod(optarg, &end);
      if (!end || *end || !(threshold >= 0 && threshold <= 1)) {
        fprintf(stderr, _("t3d report: --threshold wants a probability in [0, 1], not '%s'\n"), optarg);
        return 2;
      }
      break;
    }
    case 'T': timestamp = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  if (!out && format != OUT_TEXT && format != OUT_MD) {
    fprintf(stderr, _("t3d report: --format sr, seg and all need -o PATH\n"));
    return 2;
  }
  const char *dir = argv[optind];

  t3d_dicom_scan *scan = NULL;
  t3d_volume *vol = NULL;
  t3d_cli_model cm = {0};
  t3d_analysis_result *res = NULL;
  t3d_report *rep = NULL;
  t3d_report_source *src = NULL;
  t3d_report_neighbour *nbs = NULL;
  const char **nb_names = NULL, **classes = NULL, **files = NULL;
  json_t *nb_json = NULL;
  index_neighbours inb = {0};
  size_t idx = 0, nnb = 0;
  char hash[T3D_SHA256_HEX], path[4200];
  const char *what = "report";
  t3d_status s;

  if (nb_path && (s = load_neighbours(nb_path, &nb_json, &nbs, &nnb, &nb_names)) != T3D_OK) goto fail;
  if ((s = t3d_dicom_scan_path(dir, &scan)) != T3D_OK) {
    what = dir;
    goto fail;
  }
  if (t3d_dicom_scan_series_count(scan) == 0) {
    s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no DICOM series found (%zu files examined)", dir,
                  t3d_dicom_scan_file_count(scan));
    goto fail;
  }
  if (series_uid) {
    if ((s = t3d_dicom_scan_find_series(scan, series_uid, &idx)) != T3D_OK) goto fail;
  } else {
    size_t ns = t3d_dicom_scan_series_count(scan);
    if ((idx = t3d_dicom_scan_first_ct(scan)) == ns) idx = 0;
  }
  if ((s = t3d_dicom_load_series(scan, idx, NULL, &vol)) != T3D_OK) goto fail;
  if ((s = t3d_cli_model_load(model_path, device, threads, precision, &cm)) != T3D_OK) {
    what = "loading the model";
    goto fail;
  }
  if ((s = t3d_sha256_file(cm.path, hash)) != T3D_OK) {
    what = "hashing the model";
    goto fail;
  }
  s = t3d_analyze(cm.model, vol, NULL, NULL, NULL, &res);
  if (t3d_cli_gpu_failed(s, cm.path, threads, precision, &cm.be, &cm.model)) /* once more, on the CPU */
    s = t3d_analyze(cm.model, vol, NULL, NULL, NULL, &res);
  if (s != T3D_OK) goto fail;

  if (!nb_path && !no_index && (s = load_index_neighbours(index_path, cm.hash, vol, res, threshold, &inb)) != T3D_OK) {
    what = "looking up similar cases";
    goto fail;
  }

  t3d_report_params rp = t3d_report_default_params();
  rp.finding_threshold = threshold;
  rp.model_name = t3d_model_config_of(cm.model)->name;
  rp.model_sha256 = hash;
  rp.neighbours = nb_path ? nbs : inb.nb;
  rp.nneighbours = nb_path ? nnb : inb.n;
  rp.timestamp = timestamp;
  if (res->labels) {
    rp.nclasses = t3d_model_class_count(cm.model);
    if (!(classes = calloc(rp.nclasses, sizeof *classes))) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory");
      goto fail;
    }
    for (size_t k = 0; k < rp.nclasses; k++) classes[k] = t3d_model_class_name(cm.model, k);
    rp.class_names = classes;
  }
  if ((s = t3d_report_create(vol, res, &rp, &rep)) != T3D_OK) goto fail;

  if (format == OUT_ALL && mkdir(out, 0700) != 0 && errno != EEXIST) {
    s = t3d_error(T3D_ERR_IO, "%s: cannot create the folder: %s", out, strerror(errno));
    goto fail;
  }
  if (format & (OUT_SR | OUT_SEG)) {
    size_t nf = t3d_dicom_series_file_count(scan, idx);
    if (!(files = calloc(nf ? nf : 1, sizeof *files))) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory");
      goto fail;
    }
    for (size_t f = 0; f < nf; f++) files[f] = t3d_dicom_series_file(scan, idx, f);
    if ((s = t3d_report_source_read(vol, files, nf, &src)) != T3D_OK) goto fail;
  }
  if (format == OUT_TEXT || format == OUT_MD) {
    t3d_report_format f = format == OUT_MD ? T3D_REPORT_MARKDOWN : T3D_REPORT_TEXT;
    if (out)
      s = t3d_report_write_text(rep, f, out);
    else
      fputs(t3d_report_text(rep, f), stdout);
  } else if (format == OUT_SR) {
    s = t3d_report_write_sr(rep, src, NULL, out);
  } else if (format == OUT_SEG) {
    s = t3d_report_write_seg(rep, src, NULL, out);
  } else {
    s = t3d_report_write_text(rep, T3D_REPORT_TEXT, join(path, sizeof path, out, "report.txt"));
    if (s == T3D_OK) s = t3d_report_write_text(rep, T3D_REPORT_MARKDOWN, join(path, sizeof path, out, "report.md"));
    if (s == T3D_OK) s = t3d_report_write_sr(rep, src, NULL, join(path, sizeof path, out, "report-sr.dcm"));
    if (s == T3D_OK && res->labels)
      s = t3d_report_write_seg(rep, src, NULL, join(path, sizeof path, out, "report-seg.dcm"));
    else if (s == T3D_OK)
      fprintf(stderr, _("t3d report: no DICOM SEG: the model has no segmentation head\n"));
  }
  if (s != T3D_OK) goto fail;
  if (out) fprintf(stderr, _("t3d report: wrote %s (machine draft: review before use)\n"), out);
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, what);
cleanup:
  t3d_report_source_free(src);
  t3d_report_free(rep);
  t3d_analysis_result_free(res);
  t3d_cli_model_free(&cm);
  t3d_volume_free(vol);
  t3d_dicom_scan_free(scan);
  free(files);
  free(classes);
  free(nbs);
  free(nb_names);
  json_decref(nb_json);
  index_neighbours_free(&inb);
  return rc;
}
