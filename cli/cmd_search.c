/* `t3d search "findings text"` and `t3d similar SERIES`: rank the indexed cases by the text's
 * (or a series') embedding, fused with report full-text search by reciprocal-rank fusion
 * (core/index/index.h). Printing only: the ranking lives in the library. */
#include "config.h"

#include <getopt.h>
#include <libintl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/index_cli.h"
#include "core/dicom/dicom.h"

#define _(s) gettext(s)

static int parse_mode(const char *s, t3d_index_scan_mode *m)
{
  if (strcmp(s, "fp32") == 0) *m = T3D_INDEX_SCAN_FP32;
  else if (strcmp(s, "fp16") == 0) *m = T3D_INDEX_SCAN_FP16;
  else if (strcmp(s, "int8") == 0) *m = T3D_INDEX_SCAN_INT8;
  else return -1;
  return 0;
}

static void print_hits(const t3d_index_hit *h, size_t n, bool json)
{
  if (json) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
      json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:i, s:i}", "rank", (json_int_t)(i + 1),
                            "series_uid", h[i].series_uid, "study_uid", h[i].study_uid, "patient", h[i].patient_key,
                            "study_date", h[i].study_date, "description", h[i].description, "path", h[i].path,
                            "score", h[i].score, "vector_rank", h[i].vector_rank, "text_rank", h[i].text_rank);
      json_object_set_new(o, "cosine", isnan(h[i].cosine) ? json_null() : json_real(h[i].cosine));
      json_object_set_new(o, "bm25", isnan(h[i].bm25) ? json_null() : json_real(h[i].bm25));
      json_array_append_new(arr, o);
    }
    char *txt = json_dumps(arr, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (txt) puts(txt);
    free(txt);
    json_decref(arr);
    return;
  }
  if (n == 0) {
    printf(_("No matching cases.\n"));
    return;
  }
  printf("%-4s %-8s %-7s %-5s %-5s %-10s %-44s %s\n", _("rank"), _("score"), _("cosine"), _("vrank"), _("trank"),
         _("date"), _("series UID"), _("path"));
  for (size_t i = 0; i < n; i++) {
    char cos[16] = "-", vr[8] = "-", tr[8] = "-";
    if (!isnan(h[i].cosine)) snprintf(cos, sizeof cos, "%.4f", h[i].cosine);
    if (h[i].vector_rank) snprintf(vr, sizeof vr, "%d", h[i].vector_rank);
    if (h[i].text_rank) snprintf(tr, sizeof tr, "%d", h[i].text_rank);
    printf("%-4zu %-8.5f %-7s %-5s %-5s %-10s %-44s %s\n", i + 1, h[i].score, cos, vr, tr, h[i].study_date,
           h[i].series_uid, h[i].path);
  }
}

typedef struct {
  const char *index_path, *model_path, *since, *series, *device;
  size_t k;
  bool json;
  int threads;
  t3d_index_scan_mode mode;
  t3d_precision precision;
} search_args;

/* Common options; returns the index of the first positional argument, or -1 (usage printed). */
static int parse_args(int argc, char **argv, search_args *a, void (*usage)(FILE *))
{
  static const struct option opts[] = {{"k", required_argument, NULL, 'k'},
                                       {"since", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"index", required_argument, NULL, 'i'},
                                       {"model", required_argument, NULL, 'm'},
                                       {"mode", required_argument, NULL, 'o'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"series", required_argument, NULL, 'S'},
                                       {"device", required_argument, NULL, T3D_CLI_OPT_DEVICE},
                                       {"precision", required_argument, NULL, 'P'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  memset(a, 0, sizeof *a);
  a->k = 10;
  a->precision = T3D_PRECISION_AUTO;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'k': {
      long k = atol(optarg);
      if (k < 1 || k > 10000) {
        fprintf(stderr, _("t3d: --k must be 1..10000\n"));
        return -1;
      }
      a->k = (size_t)k;
      break;
    }
    case 's': a->since = optarg; break;
    case 'j': a->json = true; break;
    case 'i': a->index_path = optarg; break;
    case 'm': a->model_path = optarg; break;
    case 't': a->threads = atoi(optarg); break;
    case 'S': a->series = optarg; break;
    case T3D_CLI_OPT_DEVICE: a->device = optarg; break;
    case 'P':
      if (t3d_cli_parse_precision(argv[0], optarg, &a->precision)) return -1;
      break;
    case 'o':
      if (parse_mode(optarg, &a->mode) != 0) {
        fprintf(stderr, _("t3d: --mode must be fp32, fp16 or int8\n"));
        return -1;
      }
      break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); return -1;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return -1;
  }
  return optind;
}

static void search_usage(FILE *to)
{
  fprintf(to, _("Usage: t3d search \"findings text\" [--k N] [--since DATE] [--json] [--index PATH] [--model FILE]\n"
                "                  [--mode fp32|fp16|int8] [--threads N] [--device DEV]\n\n"
                "Ranks the indexed cases for typed findings. Two lists are fused by reciprocal-rank\n"
                "fusion, score = sum of 1/(60 + rank) over the lists a case is in (rank 1-based):\n"
                "  - cosine between the text's embedding and each case's volume embedding (exact scan,\n"
                "    only cases analysed by the same model file, by hash);\n"
                "  - BM25 of the stored reports (SQLite FTS5), each word of the text as a phrase, OR-ed.\n"
                "  --k N          cases to show (default 10)\n"
                "  --since DATE   only studies on or after DATE (YYYY-MM-DD or YYYYMMDD)\n"
                "  --json         print JSON\n"
                "  --index PATH   index database (default: $XDG_DATA_HOME/t3d/index.db)\n"
                "  --model FILE   model file (default: $T3D_MODEL or the bundled t3d-tiny model)\n"
                "  --mode M       vector scan: fp32 (exact, default), fp16 or int8 (+ exact rescoring)\n"
                "  --device DEV   auto (default: the GPU when usable, else the CPU), cpu, cuda or cuda:N\n"));
  t3d_cli_precision_help(to);
}

int t3d_cmd_search(int argc, char **argv)
{
  search_args a;
  int first = parse_args(argc, argv, &a, search_usage), rc = 1;
  if (first < 0) return 2;
  const char *text = argv[first];
  t3d_index *ix = NULL;
  t3d_cli_model cm = {0};
  t3d_index_hit *hits = NULL;
  size_t nhits = 0;
  float *q = NULL;
  t3d_status s;
  int32_t d;

  if (a.since && (s = t3d_index_parse_date(a.since, &d)) != T3D_OK) goto fail;
  if ((s = t3d_cli_open_index(a.index_path, true, &ix)) != T3D_OK) goto fail;
  if ((s = t3d_cli_model_load(a.model_path, a.device, a.threads, a.precision, &cm)) != T3D_OK) goto fail;
  int dim = t3d_model_config_of(cm.model)->projection.dim;
  if (!(q = calloc((size_t)dim, sizeof *q))) {
    s = t3d_error(T3D_ERR_NOMEM, "query");
    goto fail;
  }
  if ((s = t3d_encode_text(cm.model, text, q)) != T3D_OK) goto fail;
  t3d_index_search_opts so = t3d_index_search_default_opts();
  so.k = a.k, so.since = a.since, so.scan.mode = a.mode;
  if ((s = t3d_index_search(ix, cm.hash, q, dim, text, &so, &hits, &nhits)) != T3D_OK) goto fail;
  print_hits(hits, nhits, a.json);
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "search");
cleanup:
  free(hits), free(q);
  t3d_cli_model_free(&cm);
  t3d_index_free(ix);
  return rc;
}

static void similar_usage(FILE *to)
{
  fprintf(to, _("Usage: t3d similar SERIES_DIR|SERIES_UID [--k N] [--since DATE] [--json] [--index PATH]\n"
                "                   [--model FILE] [--series UID] [--mode fp32|fp16|int8] [--threads N]\n"
                "                   [--device DEV]\n\n"
                "Lists the indexed cases nearest to a series by cosine of the volume embeddings (same\n"
                "model file only). A series already in the index uses its stored embedding; a folder\n"
                "that is not indexed is analysed first (its first CT series, or --series UID).\n"));
  t3d_cli_precision_help(to);
}

int t3d_cmd_similar(int argc, char **argv)
{
  search_args a;
  int first = parse_args(argc, argv, &a, similar_usage), rc = 1;
  if (first < 0) return 2;
  const char *what = argv[first];
  t3d_index *ix = NULL;
  t3d_cli_model cm = {0};
  t3d_dicom_scan *scan = NULL;
  t3d_volume *vol = NULL;
  t3d_analysis_result *res = NULL;
  t3d_index_hit *hits = NULL;
  size_t nhits = 0;
  float *q = malloc(T3D_INDEX_MAX_DIM * sizeof *q);
  char uid[T3D_UID_MAX] = "", model_hash[80] = "";
  int dim = 0;
  t3d_status s = T3D_OK;
  struct stat sb;

  if (!q) {
    s = t3d_error(T3D_ERR_NOMEM, "query");
    goto fail;
  }
  if ((s = t3d_cli_open_index(a.index_path, true, &ix)) != T3D_OK) goto fail;
  size_t idx = 0;
  if (stat(what, &sb) == 0) {
    if ((s = t3d_dicom_scan_path(what, &scan)) != T3D_OK) goto fail;
    size_t ns = t3d_dicom_scan_series_count(scan);
    if (a.series) {
      if ((s = t3d_dicom_scan_find_series(scan, a.series, &idx)) != T3D_OK) goto fail;
    } else {
      if ((idx = t3d_dicom_scan_first_ct(scan)) == ns) {
        s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no CT series found", what);
        goto fail;
      }
    }
    snprintf(uid, sizeof uid, "%s", t3d_dicom_scan_series(scan, idx)->meta.series_uid);
  } else {
    snprintf(uid, sizeof uid, "%s", what);
  }
  /* A model given explicitly decides which embeddings compare; otherwise the stored one's. */
  s = a.model_path ? T3D_ERR_NOT_FOUND : t3d_index_series_embedding(ix, uid, q, &dim, model_hash, sizeof model_hash);
  if (s != T3D_OK) {
    if (s != T3D_ERR_NOT_FOUND || !scan) {
      if (s == T3D_ERR_NOT_FOUND) t3d_error_prefix("%s is no folder and ", what);
      goto fail;
    }
    t3d_error_clear();
    if ((s = t3d_cli_model_load(a.model_path, a.device, a.threads, a.precision, &cm)) != T3D_OK) goto fail;
    snprintf(model_hash, sizeof model_hash, "%s", cm.hash);
    if ((s = t3d_dicom_load_series(scan, idx, NULL, &vol)) != T3D_OK) goto fail;
    t3d_analyze_opts ao = t3d_analyze_default_opts();
    ao.segment = false, ao.zero_shot = false;
    s = t3d_analyze(cm.model, vol, &ao, NULL, NULL, &res);
    if (t3d_cli_gpu_failed(s, cm.path, a.threads, a.precision, &cm.be, &cm.model)) /* once more, on the CPU */
      s = t3d_analyze(cm.model, vol, &ao, NULL, NULL, &res);
    if (s != T3D_OK) goto fail;
    dim = res->dim;
    memcpy(q, res->embedding, (size_t)dim * sizeof *q);
  }
  t3d_index_search_opts so = t3d_index_search_default_opts();
  so.k = a.k, so.since = a.since, so.scan.mode = a.mode, so.exclude_series_uid = uid;
  if ((s = t3d_index_search(ix, model_hash, q, dim, NULL, &so, &hits, &nhits)) != T3D_OK) goto fail;
  print_hits(hits, nhits, a.json);
  rc = 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, "similar");
cleanup:
  free(hits), free(q);
  t3d_analysis_result_free(res);
  t3d_volume_free(vol);
  t3d_dicom_scan_free(scan);
  t3d_cli_model_free(&cm);
  t3d_index_free(ix);
  return rc;
}
