/* `t3d index DIR...`: finds the CT series under the folders, analyses new or changed ones with
 * the T3D model and stores each (with its report, when one comes with it) in the case index,
 * one transaction per series. A second thread hashes and decodes the next series while the
 * model runs (queue of one). Not a scheduler for many machines and not the search (cmd_search.c). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libintl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/index_cli.h"
#include "cli/progress.h"
#include "core/dicom/dicom.h"
#include "core/dicom/nifti.h"

#define _(s) gettext(s)

/* ---- shared helpers (index_cli.h) ---------------------------------------------------------- */

t3d_status t3d_cli_open_index(const char *path, bool read_only, t3d_index **out)
{
  char def[4096];
  if (!path) {
    T3D_TRY(t3d_index_default_path(def, sizeof def));
    path = def;
  }
  t3d_index_open_opts o = t3d_index_default_opts();
  o.read_only = read_only;
  return t3d_index_open(path, &o, out);
}

t3d_status t3d_cli_model_load(const char *path, const char *device, int threads, t3d_precision precision,
                              t3d_cli_model *out)
{
  memset(out, 0, sizeof *out);
  out->path = path ? path : t3d_cli_default_model();
  T3D_TRY(t3d_index_hash_files(&out->path, 1, out->hash));
  t3d_status s = t3d_cli_model_open(out->path, device, threads, precision, &out->be, &out->model);
  if (s != T3D_OK) {
    t3d_error_prefix("%s: ", out->path);
    t3d_cli_model_free(out);
  }
  return s;
}

void t3d_cli_model_free(t3d_cli_model *m)
{
  t3d_model_free(m->model);
  t3d_backend_free(m->be);
  m->model = NULL, m->be = NULL;
}

/* ---- reports ------------------------------------------------------------------------------- */

typedef struct {
  char *key, *text;
  size_t order; /* row number in the file */
} report_row;

typedef struct {
  report_row *rows; /* sorted by key after loading */
  size_t n, cap;
} report_map;

static void report_map_free(report_map *r)
{
  for (size_t i = 0; i < r->n; i++) free(r->rows[i].key), free(r->rows[i].text);
  free(r->rows);
}

static int cmp_key(const void *a, const void *b)
{
  return strcmp(((const report_row *)a)->key, ((const report_row *)b)->key);
}

static int cmp_row(const void *a, const void *b)
{
  const report_row *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : x->order < y->order ? -1 : x->order > y->order;
}

/* One CSV field at *p (RFC 4180: quotes, doubled quotes, newlines inside quotes) into a new
 * string; *p moves past the field and its comma; *eol is set at the end of a record. */
static char *csv_field(const char **p, int *eol)
{
  const char *s = *p;
  size_t cap = 64, n = 0;
  char *out = malloc(cap);
  if (!out) return NULL;
  bool quoted = *s == '"';
  if (quoted) s++;
  for (;;) {
    char c = *s;
    if (c == '\0') break;
    if (quoted && c == '"') {
      if (s[1] == '"') {
        c = '"', s++;
      } else {
        s++, quoted = false;
        continue;
      }
    } else if (!quoted && (c == ',' || c == '\n' || c == '\r')) {
      break;
    }
    if (n + 2 > cap) {
      char *g = realloc(out, cap *= 2);
      if (!g) {
        free(out);
        return NULL;
      }
      out = g;
    }
    out[n++] = c, s++;
  }
  out[n] = '\0';
  *eol = *s != ',';
  if (*s == ',') s++;
  else {
    while (*s == '\r' || *s == '\n') s++;
  }
  *p = s;
  return out;
}

/* FILE.csv: rows "key,text" where key is a SeriesInstanceUID or an AccessionNumber; a first row
 * whose key is a column name is skipped; extra columns are ignored. */
static t3d_status report_map_load(const char *path, report_map *r)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  t3d_status s = T3D_OK;
  if (!f) return t3d_error(T3D_ERR_IO, "%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (len < 0 || !(buf = malloc((size_t)len + 1)) || fread(buf, 1, (size_t)len, f) != (size_t)len) {
    s = t3d_error(T3D_ERR_IO, "%s: cannot read", path);
    goto cleanup;
  }
  buf[len] = '\0';
  const char *p = buf;
  for (size_t row = 0; *p; row++) {
    int eol = 0;
    char *key = csv_field(&p, &eol), *text = eol ? strdup("") : csv_field(&p, &eol);
    while (!eol && *p) free(csv_field(&p, &eol));
    if (!key || !text) {
      free(key), free(text);
      s = t3d_error(T3D_ERR_NOMEM, "%s", path);
      goto cleanup;
    }
    bool header = row == 0 && (strcasecmp(key, "SeriesInstanceUID") == 0 || strcasecmp(key, "AccessionNumber") == 0 ||
                               strcasecmp(key, "key") == 0 || strcasecmp(key, "uid") == 0);
    if (header || !key[0] || !text[0]) {
      free(key), free(text);
      continue;
    }
    if (r->n == r->cap) {
      size_t nc = r->cap ? r->cap * 2 : 64;
      report_row *nr = realloc(r->rows, nc * sizeof *nr);
      if (!nr) {
        free(key), free(text);
        s = t3d_error(T3D_ERR_NOMEM, "%s", path);
        goto cleanup;
      }
      r->rows = nr, r->cap = nc;
    }
    r->rows[r->n] = (report_row){key, text, r->n};
    r->n++;
  }
  /* Sorted for lookups; of rows with the same key the last one in the file is kept. */
  if (r->n) qsort(r->rows, r->n, sizeof *r->rows, cmp_row);
  size_t keep = 0;
  for (size_t i = 0; i < r->n; i++) {
    if (i + 1 < r->n && strcmp(r->rows[i].key, r->rows[i + 1].key) == 0) {
      free(r->rows[i].key), free(r->rows[i].text);
      continue;
    }
    r->rows[keep++] = r->rows[i];
  }
  r->n = keep;
cleanup:
  free(buf);
  fclose(f);
  return s;
}

static const char *report_map_get(const report_map *r, const char *key)
{
  if (!key || !*key || r->n == 0) return NULL;
  report_row want = {(char *)key, NULL, 0};
  const report_row *hit = bsearch(&want, r->rows, r->n, sizeof *r->rows, cmp_key);
  return hit ? hit->text : NULL;
}

/* report.txt in the series' folder or the folder above it (case-N/report.txt beside
 * case-N/dicom/); malloc'ed text and *where, or NULL. */
static char *read_report_near(const char *file, char *where, size_t where_size)
{
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", file);
  for (int up = 0; up < 2; up++) {
    char *slash = strrchr(dir, '/');
    if (!slash) return NULL;
    *slash = '\0';
    snprintf(where, where_size, "%s/report.txt", dir);
    FILE *f = fopen(where, "rb");
    if (!f) continue;
    char *text = malloc(1 << 20);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) return NULL;
    text[n] = '\0';
    return text;
  }
  return NULL;
}

/* ---- masks ------------------------------------------------------------------------------- */

/* The label volume on the series grid as DIR/<series UID>.nii.gz (folder made 0700: patient
 * data); the path into out. */
static t3d_status write_labels(const char *dir, const t3d_volume *series, const t3d_tensor *labels, char *out,
                               size_t size)
{
  t3d_volume *m = NULL;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return t3d_error(T3D_ERR_IO, "%s: %s", dir, strerror(errno));
  if (snprintf(out, size, "%s/%s.nii.gz", dir, series->meta.series_uid) >= (int)size)
    return t3d_error(T3D_ERR_INVALID_ARG, "mask path too long");
  T3D_TRY(t3d_volume_new(&m, series->nx, series->ny, series->nz));
  memcpy(m->spacing, series->spacing, sizeof m->spacing);
  memcpy(m->origin, series->origin, sizeof m->origin);
  memcpy(m->dir, series->dir, sizeof m->dir);
  m->meta = series->meta;
  const uint8_t *l = labels->data;
  for (size_t i = 0, n = t3d_volume_nvoxels(m); i < n; i++) m->data[i] = l[i];
  t3d_status s = t3d_nifti_write(m, out);
  t3d_volume_free(m);
  return s;
}

/* ---- the pipeline -------------------------------------------------------------------------- */

typedef struct {
  t3d_dicom_scan *scan;
  size_t series;
} job;

typedef struct {
  size_t job;
  int state; /* 0 analyse, 1 known (skipped), 2 failed */
  t3d_volume *vol;
  char hash[17];
  char path[4096];
  char *report;
  char report_source[4200];
  char error[1024];
} item;

typedef struct {
  job *jobs;
  size_t njobs;
  const char *index_path, *model_hash;
  const report_map *reports;
  /* queue of one */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  item *slot;
  bool stop, decoder_done;
} pipeline;

static void item_free(item *it)
{
  if (!it) return;
  t3d_volume_free(it->vol);
  free(it->report);
  free(it);
}

static void put_slot(pipeline *p, item *it)
{
  pthread_mutex_lock(&p->mu);
  while (p->slot && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
  if (p->stop) {
    item_free(it);
  } else {
    p->slot = it;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
}

/* Decoder thread: for each job hash the files, skip known ones, else load the volume. It has
 * its own index handle (one per thread) and is the only user of the scans while it runs. */
static void *decoder(void *arg)
{
  pipeline *p = arg;
  t3d_index *ix = NULL;
  t3d_status s = t3d_cli_open_index(p->index_path, true, &ix);
  for (size_t j = 0; j < p->njobs; j++) {
    item *it = calloc(1, sizeof *it);
    if (!it) break;
    it->job = j;
    const job *jb = &p->jobs[j];
    const t3d_dicom_series_info *info = t3d_dicom_scan_series(jb->scan, jb->series);
    size_t nf = t3d_dicom_series_file_count(jb->scan, jb->series);
    const char **files = calloc(nf ? nf : 1, sizeof *files);
    for (size_t i = 0; files && i < nf; i++) files[i] = t3d_dicom_series_file(jb->scan, jb->series, i);
    bool known = false;
    if (s != T3D_OK) {
      it->state = 2;
    } else if (!files) {
      s = t3d_error(T3D_ERR_NOMEM, "file list"), it->state = 2;
    } else if ((s = t3d_index_hash_files(files, nf, it->hash)) != T3D_OK ||
               (s = t3d_index_is_known(ix, info->meta.series_uid, it->hash, p->model_hash, &known)) != T3D_OK) {
      it->state = 2;
    } else if (known) {
      it->state = 1;
    } else if ((s = t3d_dicom_load_series(jb->scan, jb->series, NULL, &it->vol)) != T3D_OK) {
      it->state = 2;
    } else {
      const char *dir_of = nf ? files[0] : "";
      snprintf(it->path, sizeof it->path, "%s", dir_of);
      char *slash = strrchr(it->path, '/');
      if (slash) *slash = '\0';
      const char *csv = report_map_get(p->reports, info->meta.series_uid);
      if (!csv) csv = report_map_get(p->reports, info->meta.accession_number);
      if (csv) {
        it->report = strdup(csv);
        snprintf(it->report_source, sizeof it->report_source, "csv");
      } else if (nf) {
        it->report = read_report_near(files[0], it->report_source, sizeof it->report_source);
      }
    }
    if (it->state == 2) {
      snprintf(it->error, sizeof it->error, "%s: %s", t3d_strerror(s), t3d_error_detail());
      if (ix) s = T3D_OK; /* one bad series does not stop the rest */
    }
    free(files);
    put_slot(p, it);
    pthread_mutex_lock(&p->mu);
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop) break;
  }
  t3d_index_free(ix);
  pthread_mutex_lock(&p->mu);
  p->decoder_done = true; /* the consumer stops waiting even if an item could not be made */
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static item *take_slot(pipeline *p)
{
  pthread_mutex_lock(&p->mu);
  while (!p->slot && !p->decoder_done) pthread_cond_wait(&p->cv, &p->mu);
  item *it = p->slot; /* NULL: the decoder ended early (out of memory) */
  p->slot = NULL;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return it;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
  (void)sig;
  interrupted = 1;
}

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d index DIR... [--index PATH] [--model FILE] [--reports FILE.csv] [--masks DIR]\n"
                "                 [--threads N] [--device DEV]\n\n"
                "Finds the DICOM series under each DIR, analyses CT series that are new or changed\n"
                "(SeriesInstanceUID plus a hash of the files' contents) and stores them in the case\n"
                "index; known ones are skipped. Each series is committed on its own, so an interrupted\n"
                "run (even kill -9) leaves a consistent index and a rerun does the rest.\n"
                "Reports: report.txt in the series' folder or its parent, or --reports.\n"
                "  --index PATH       index database (default: $XDG_DATA_HOME/t3d/index.db,\n"
                "                     else ~/.local/share/t3d/index.db); created mode 0600\n"
                "  --model FILE       model file (default: $T3D_MODEL or the bundled t3d-tiny model)\n"
                "  --reports FILE.csv rows \"key,text\": key a SeriesInstanceUID or AccessionNumber\n"
                "  --masks DIR        write each label mask as DIR/<SeriesInstanceUID>.nii.gz and\n"
                "                     record it in the index (folder created mode 0700)\n"
                "  --threads N        CPU threads for the model (default: all cores)\n"
                "  --device DEV       auto (default: the GPU when usable, else the CPU), cpu, cuda or cuda:N\n"));
  t3d_cli_precision_help(to);
}

int t3d_cmd_index(int argc, char **argv)
{
  const char *index_path = NULL, *model_path = NULL, *reports_path = NULL, *masks_dir = NULL, *device = NULL;
  int threads = 0, c, rc = 1;
  t3d_precision precision = T3D_PRECISION_AUTO;
  static const struct option opts[] = {{"index", required_argument, NULL, 'i'},
                                       {"model", required_argument, NULL, 'm'},
                                       {"reports", required_argument, NULL, 'r'},
                                       {"masks", required_argument, NULL, 'M'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"device", required_argument, NULL, T3D_CLI_OPT_DEVICE},
                                       {"precision", required_argument, NULL, 'P'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'P':
      if (t3d_cli_parse_precision("index", optarg, &precision)) return 2;
      break;
    case 'i': index_path = optarg; break;
    case 'm': model_path = optarg; break;
    case 'r': reports_path = optarg; break;
    case 'M': masks_dir = optarg; break;
    case 't': threads = atoi(optarg); break;
    case T3D_CLI_OPT_DEVICE: device = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind >= argc || threads < 0) {
    usage(stderr);
    return 2;
  }

  t3d_index *ix = NULL;
  t3d_cli_model cm = {0};
  report_map reports = {0};
  t3d_dicom_scan **scans = calloc((size_t)(argc - optind), sizeof *scans);
  size_t nscans = 0, analysed = 0, skipped = 0, failed = 0, done = 0;
  job *jobs = NULL;
  size_t njobs = 0;
  pipeline p = {0};
  bool thread_started = false;
  pthread_t tid;
  const char *what = "index";
  t3d_status s = T3D_OK;
  char index_def[4096];

  if (!scans) {
    s = t3d_error(T3D_ERR_NOMEM, "scans");
    goto fail;
  }
  if (!index_path) {
    if ((s = t3d_index_default_path(index_def, sizeof index_def)) != T3D_OK) goto fail;
    index_path = index_def;
  }
  if ((s = t3d_cli_open_index(index_path, false, &ix)) != T3D_OK) goto fail;
  if (reports_path && (s = report_map_load(reports_path, &reports)) != T3D_OK) goto fail;
  for (int a = optind; a < argc; a++) {
    if ((s = t3d_dicom_scan_path(argv[a], &scans[nscans])) != T3D_OK) {
      what = argv[a];
      goto fail;
    }
    t3d_dicom_scan *sc = scans[nscans++];
    size_t ns = t3d_dicom_scan_series_count(sc);
    job *nj = realloc(jobs, (njobs + ns + 1) * sizeof *jobs);
    if (!nj) {
      s = t3d_error(T3D_ERR_NOMEM, "job list");
      goto fail;
    }
    jobs = nj;
    for (size_t i = 0; i < ns; i++) {
      const char *mod = t3d_dicom_scan_series(sc, i)->meta.modality;
      if (mod[0] && strcmp(mod, "CT") != 0) continue; /* the model reads CT only */
      jobs[njobs++] = (job){sc, i};
    }
  }
  fprintf(stderr, _("t3d index: %zu CT series under %d folder(s); index %s\n"), njobs, argc - optind, index_path);
  if (njobs == 0) {
    rc = 0;
    goto cleanup;
  }
  /* The model's file hash decides what is known; the model itself loads only when a series
   * needs analysing, so a rerun over a finished archive costs no model load. */
  const char *mpath = model_path ? model_path : t3d_cli_default_model();
  char mhash[17];
  what = "hashing the model file";
  if ((s = t3d_index_hash_files(&mpath, 1, mhash)) != T3D_OK) goto fail;
  what = "index";

  p.jobs = jobs, p.njobs = njobs, p.index_path = index_path, p.model_hash = mhash, p.reports = &reports;
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  if (pthread_create(&tid, NULL, decoder, &p) != 0) {
    /* never reached in practice; without a thread nothing can be decoded */
    s = t3d_error(T3D_ERR_INTERNAL, "cannot start the decoder thread");
    goto fail;
  }
  thread_started = true;
  signal(SIGINT, on_sigint);
  t3d_cli_progress bar = {0};
  t3d_cli_progress_start(&bar);
  while (done < njobs && !interrupted) {
    item *it = take_slot(&p);
    if (!it) break;
    const t3d_dicom_series_info *info = t3d_dicom_scan_series(jobs[it->job].scan, jobs[it->job].series);
    if (it->state == 1) {
      skipped++;
    } else if (it->state == 2) {
      failed++;
      fprintf(stderr, _("\nt3d index: series %s: %s\n"), info->meta.series_uid, it->error);
    } else if (!cm.model && (s = t3d_cli_model_load(mpath, device, threads, precision, &cm)) != T3D_OK) {
      fprintf(stderr, _("\nt3d index: loading the model: %s: %s\n"), t3d_strerror(s), t3d_error_detail());
      item_free(it);
      break;
    } else {
      const t3d_model_config *cfg = t3d_model_config_of(cm.model);
      t3d_analysis_result *res = NULL;
      t3d_analyze_opts ao = t3d_analyze_default_opts();
      s = t3d_analyze(cm.model, it->vol, &ao, NULL, (const volatile int *)&interrupted, &res);
      if (t3d_cli_gpu_failed(s, cm.path, threads, precision, &cm.be, &cm.model)) { /* this and later series on the CPU */
        cfg = t3d_model_config_of(cm.model);
        s = t3d_analyze(cm.model, it->vol, &ao, NULL, (const volatile int *)&interrupted, &res);
      }
      t3d_index_named_value *fv = NULL, *ov = NULL;
      size_t nfv = res ? res->nfindings : 0, nov = res && res->volumes_ml ? res->nclasses : 0;
      if (s == T3D_OK && (!(fv = calloc(nfv + 1, sizeof *fv)) || !(ov = calloc(nov + 1, sizeof *ov))))
        s = t3d_error(T3D_ERR_NOMEM, "result lists");
      char mask_path[4400] = "";
      if (s == T3D_OK && masks_dir && res->labels)
        s = write_labels(masks_dir, it->vol, res->labels, mask_path, sizeof mask_path);
      if (s == T3D_OK) {
        for (size_t i = 0; i < nfv; i++) fv[i] = (t3d_index_named_value){res->findings[i].name, res->findings[i].probability};
        for (size_t i = 0; i < nov; i++) ov[i] = (t3d_index_named_value){t3d_model_class_name(cm.model, i), res->volumes_ml[i]};
        t3d_index_entry e = {
          .meta = &it->vol->meta, .shape = {it->vol->nx, it->vol->ny, it->vol->nz},
          .spacing = {it->vol->spacing[0], it->vol->spacing[1], it->vol->spacing[2]}, .source_path = it->path,
          .content_hash = it->hash, .geometry_note = it->vol->geometry_note, .model_name = cfg->name,
          .model_hash = mhash, .device = "cpu", .ms_preprocess = res->ms.preprocess, .ms_encoder = res->ms.encoder,
          .ms_decoder = res->ms.decoder, .ms_total = res->ms.total, .embedding = res->embedding, .dim = res->dim,
          .findings = fv, .nfindings = nfv, .organ_ml = ov, .norgans = nov, .report_text = it->report,
          .report_source = it->report_source, .mask_path = mask_path[0] ? mask_path : NULL,
          .mask_format = "nifti"};
        s = t3d_index_put(ix, &e, NULL);
      }
      free(fv), free(ov);
      t3d_analysis_result_free(res);
      if (s == T3D_OK) {
        analysed++;
      } else if (s == T3D_ERR_CANCELLED) {
        item_free(it);
        break;
      } else {
        failed++;
        fprintf(stderr, _("\nt3d index: series %s: %s: %s\n"), info->meta.series_uid, t3d_strerror(s),
                t3d_error_detail());
        if (s == T3D_ERR_IO || s == T3D_ERR_FORMAT) { /* the index itself is unusable: stop */
          item_free(it);
          done++;
          break;
        }
      }
    }
    item_free(it);
    done++;
    char label[64];
    snprintf(label, sizeof label, _("%zu/%zu series, %zu failed"), done, njobs, failed);
    t3d_cli_progress_draw(&bar, (double)done / (double)njobs, label);
  }
  t3d_cli_progress_end(&bar);
  signal(SIGINT, SIG_DFL);
  fprintf(stderr, _("t3d index: %zu analysed, %zu known, %zu failed\n"), analysed, skipped, failed);
  if (done < njobs)
    fprintf(stderr, _("t3d index: stopped after %zu of %zu series; run it again to finish (committed series are kept)\n"),
            done, njobs);
  rc = failed || done < njobs ? 1 : 0;
  goto cleanup;
fail:
  t3d_cli_fail(s, what);
cleanup:
  if (thread_started) {
    pthread_mutex_lock(&p.mu);
    p.stop = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(tid, NULL);
    item_free(p.slot);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
  }
  t3d_cli_model_free(&cm);
  for (size_t i = 0; i < nscans; i++) t3d_dicom_scan_free(scans[i]);
  free(scans), free(jobs);
  report_map_free(&reports);
  t3d_index_free(ix);
  return rc;
}
