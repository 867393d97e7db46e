/* `t3d bench-search`: synthetic L2-normalised embeddings stored in a real SQLite index, loaded
 * back into the search matrix, and searched one query at a time in each scan mode beside FAISS
 * IndexFlatIP (tools/bench-faiss.py, same vectors through a raw .f32 file, same thread count).
 * Prints load time, p50/p99 latency and recall@k against a double-precision scalar reference.
 * Not a test of ranking quality: the vectors are random. */
#include "config.h"

#include <getopt.h>
#include <libintl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/commands.h"
#include "core/index/index.h"

#define _(s) gettext(s)

#ifndef T3D_PYTHON_DEFAULT
#define T3D_PYTHON_DEFAULT "python3"
#endif
#ifndef T3D_BENCH_FAISS_PY
#define T3D_BENCH_FAISS_PY "tools/bench-faiss.py"
#endif

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1Dull;
}

/* n unit vectors of dimension dim with Gaussian components (xorshift64* + Box-Muller). */
static void random_unit(float *v, size_t n, int dim, uint64_t seed)
{
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < n; r++) {
    uint64_t s = seed ^ (0x9E3779B97F4A7C15ull * (r + 1));
    for (int w = 0; w < 4; w++) rng_next(&s);
    double ss = 0;
    float *x = v + r * (size_t)dim;
    for (int i = 0; i < dim; i += 2) {
      double u1 = ((double)(rng_next(&s) >> 11) + 1) / 9007199254740993.0, u2 = (double)(rng_next(&s) >> 11) / 9007199254740992.0;
      double rad = sqrt(-2 * log(u1));
      x[i] = (float)(rad * cos(2 * M_PI * u2));
      if (i + 1 < dim) x[i + 1] = (float)(rad * sin(2 * M_PI * u2));
    }
    for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
    for (int i = 0; i < dim; i++) x[i] = (float)(x[i] / sqrt(ss));
  }
}

/* Scalar double-precision top-k of q against v (indices), the reference for recall. */
static void reference_topk(const float *v, size_t n, int dim, const float *q, size_t k, int64_t *out)
{
  int nt = 1;
#ifdef _OPENMP
  nt = omp_get_max_threads();
#endif
  double *best = calloc((size_t)nt * k, sizeof *best);
  int64_t *bid = calloc((size_t)nt * k, sizeof *bid);
  if (!best || !bid) goto cleanup;
  for (size_t i = 0; i < (size_t)nt * k; i++) best[i] = -INFINITY, bid[i] = -1;
#pragma omp parallel num_threads(nt)
  {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    double *b = best + (size_t)t * k;
    int64_t *id = bid + (size_t)t * k;
#pragma omp for schedule(static)
    for (size_t r = 0; r < n; r++) {
      double s = 0;
      for (int i = 0; i < dim; i++) s += (double)v[r * (size_t)dim + i] * q[i];
      if (s <= b[k - 1]) continue;
      size_t j = k - 1;
      while (j > 0 && s > b[j - 1]) b[j] = b[j - 1], id[j] = id[j - 1], j--;
      b[j] = s, id[j] = (int64_t)r;
    }
  }
  for (size_t i = 0; i < k; i++) { /* merge: k rounds of picking the best head */
    int bt = -1;
    size_t bj = 0;
    for (int t = 0; t < nt; t++)
      for (size_t j = 0; j < k; j++)
        if (bid[(size_t)t * k + j] >= 0 && (bt < 0 || best[(size_t)t * k + j] > best[(size_t)bt * k + bj]))
          bt = t, bj = j;
    out[i] = bt < 0 ? -1 : bid[(size_t)bt * k + bj];
    if (bt >= 0) bid[(size_t)bt * k + bj] = -1;
  }
cleanup:
  free(best), free(bid);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double recall(const int64_t *got, const int64_t *ref, size_t k)
{
  size_t hit = 0;
  for (size_t i = 0; i < k; i++)
    for (size_t j = 0; j < k; j++)
      if (got[i] == ref[j]) {
        hit++;
        break;
      }
  return (double)hit / (double)k;
}

static int write_f32(const char *path, const float *v, size_t count)
{
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(v, sizeof *v, count, f);
  return fclose(f) == 0 && w == count ? 0 : -1;
}

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d bench-search [--n 100000,1000000] [--dim 512] [--threads N] [--queries 200]\n"
                "                        [--ref-queries 50] [--k 10] [--oversample 4] [--dir DIR] [--no-faiss]\n\n"
                "Stores n random unit embeddings in a fresh SQLite index under DIR (default $TMPDIR),\n"
                "loads them into the search matrix and times single-query searches in each mode (fp32\n"
                "exact; fp16 and int8 scans with exact fp32 rescoring of oversample*k candidates)\n"
                "beside FAISS IndexFlatIP at the same thread count (PyPI faiss-cpu via $T3D_PYTHON).\n"
                "recall@k is against a double-precision scalar scan over the first --ref-queries.\n"
                "Memory: about n*dim*7 bytes for t3d plus n*dim*4 for FAISS.\n"));
}

int t3d_cmd_bench_search(int argc, char **argv)
{
  const char *ns_arg = "100000,1000000", *dir_arg = NULL;
  int dim = 512, threads = 0, nq = 200, nref = 50, c, no_faiss = 0;
  size_t k = 10, oversample = 4;
  static const struct option opts[] = {{"n", required_argument, NULL, 'n'},
                                       {"dim", required_argument, NULL, 'd'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"queries", required_argument, NULL, 'q'},
                                       {"ref-queries", required_argument, NULL, 'r'},
                                       {"k", required_argument, NULL, 'k'},
                                       {"oversample", required_argument, NULL, 'o'},
                                       {"dir", required_argument, NULL, 'D'},
                                       {"no-faiss", no_argument, NULL, 'F'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'n': ns_arg = optarg; break;
    case 'd': dim = atoi(optarg); break;
    case 't': threads = atoi(optarg); break;
    case 'q': nq = atoi(optarg); break;
    case 'r': nref = atoi(optarg); break;
    case 'k': k = (size_t)atol(optarg); break;
    case 'o': oversample = (size_t)atol(optarg); break;
    case 'D': dir_arg = optarg; break;
    case 'F': no_faiss = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || dim < 1 || dim > T3D_INDEX_MAX_DIM || nq < 1 || nref < 1 || k < 1 || k > 1000 ||
      oversample < 1 || threads < 0) {
    usage(stderr);
    return 2;
  }
  if (nref > nq) nref = nq;
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
  threads = omp_get_max_threads();
#else
  threads = 1;
#endif
  char tmpl[4096];
  const char *tmp = dir_arg ? dir_arg : getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmpl, sizeof tmpl, "%s/t3d-bench-search-XXXXXX", tmp);
  if (!mkdtemp(tmpl)) {
    fprintf(stderr, _("t3d bench-search: cannot create a folder under %s\n"), tmp);
    return 1;
  }
  const char *py = getenv("T3D_PYTHON") && *getenv("T3D_PYTHON") ? getenv("T3D_PYTHON") : T3D_PYTHON_DEFAULT;
  printf(_("bench-search: dim %d, %d queries (recall@%zu over the first %d), %d thread(s), oversample %zu\n"), dim, nq,
         k, nref, threads, oversample);
  printf("%-9s %-22s %9s %9s %9s %9s %10s\n", "n", _("method"), _("load s"), _("p50 ms"), _("p99 ms"), _("recall"),
         _("MiB"));

  int rc = 0;
  const char *p = ns_arg;
  while (*p && rc == 0) {
    char *end;
    long long nll = strtoll(p, &end, 10);
    if (end == p || nll < 1) {
      fprintf(stderr, _("t3d bench-search: bad --n list '%s'\n"), ns_arg);
      rc = 2;
      break;
    }
    p = *end == ',' ? end + 1 : end;
    size_t n = (size_t)nll;
    char db[4200], basef[4200], qf[4200], idf[4200];
    snprintf(db, sizeof db, "%s/bench.db", tmpl);
    snprintf(basef, sizeof basef, "%s/base.f32", tmpl);
    snprintf(qf, sizeof qf, "%s/queries.f32", tmpl);
    snprintf(idf, sizeof idf, "%s/faiss-ids.i64", tmpl);
    float *v = malloc(n * (size_t)dim * sizeof *v), *qs = malloc((size_t)nq * (size_t)dim * sizeof *qs);
    int64_t *ref = malloc((size_t)nref * k * sizeof *ref), *got = malloc(k * sizeof *got);
    double *ms = malloc((size_t)nq * sizeof *ms);
    t3d_index_entry *batch = calloc(10000, sizeof *batch);
    t3d_volume_meta *metas = calloc(10000, sizeof *metas);
    t3d_index_scored *sc = malloc(k * sizeof *sc);
    t3d_index *ix = NULL;
    t3d_index_matrix *m = NULL;
    t3d_status s = T3D_OK;
    if (!v || !qs || !ref || !got || !ms || !batch || !metas || !sc) {
      fprintf(stderr, _("t3d bench-search: out of memory for n = %zu\n"), n);
      rc = 1;
      goto next;
    }
    random_unit(v, n, dim, 0x7433645365617263ull + n);
    random_unit(qs, (size_t)nq, dim, 0x51756572796e6f77ull + n);

    /* Store in a real index: one patient and study, a series + analysis + embedding per row. */
    t3d_index_open_opts oo = t3d_index_default_opts();
    unlink(db);
    double t0 = now_s();
    if ((s = t3d_index_open(db, &oo, &ix)) != T3D_OK) goto fail;
    for (size_t i = 0; i < n;) {
      size_t b = n - i < 10000 ? n - i : 10000;
      for (size_t j = 0; j < b; j++) {
        t3d_volume_meta *mt = &metas[j];
        snprintf(mt->patient_id, sizeof mt->patient_id, "bench");
        snprintf(mt->study_uid, sizeof mt->study_uid, "2.25.1");
        snprintf(mt->study_date, sizeof mt->study_date, "20260101");
        snprintf(mt->series_uid, sizeof mt->series_uid, "2.25.1.%zu", i + j);
        batch[j] = (t3d_index_entry){.meta = mt, .model_hash = "bench", .model_name = "bench",
                                     .embedding = v + (i + j) * (size_t)dim, .dim = dim};
      }
      if ((s = t3d_index_put_many(ix, batch, b)) != T3D_OK) goto fail;
      i += b;
    }
    t3d_index_free(ix);
    ix = NULL;
    double t_store = now_s() - t0;
    fprintf(stderr, _("n = %zu: stored in %.1f s (%s)\n"), n, t_store, db);

    /* The reference and FAISS's copy come from the generated vectors, which are then freed:
     * peak memory is the matrix (about 7 bytes per value) rather than that plus them. */
    for (int i = 0; i < nref; i++) reference_topk(v, n, dim, qs + (size_t)i * dim, k, ref + (size_t)i * k);
    if (!no_faiss && (write_f32(basef, v, n * (size_t)dim) != 0 || write_f32(qf, qs, (size_t)nq * dim) != 0)) {
      s = t3d_error(T3D_ERR_IO, "%s: cannot write the vectors for FAISS", tmpl);
      goto fail;
    }
    free(v);
    v = NULL;

    /* Load once from SQLite (fresh handle), building the fp16 and int8 copies too. */
    t0 = now_s();
    oo.read_only = true;
    if ((s = t3d_index_open(db, &oo, &ix)) != T3D_OK ||
        (s = t3d_index_matrix_load(ix, "bench", (1u << T3D_INDEX_SCAN_FP16) | (1u << T3D_INDEX_SCAN_INT8), &m)) != T3D_OK)
      goto fail;
    double t_load = now_s() - t0;
    if (t3d_index_matrix_rows(m) != n) {
      s = t3d_error(T3D_ERR_INTERNAL, "loaded %zu rows, stored %zu", t3d_index_matrix_rows(m), n);
      goto fail;
    }

    static const char *const names[] = {"t3d fp32 (exact)", "t3d fp16+rescore", "t3d int8+rescore"};
    for (int mode = 0; mode < 3; mode++) {
      t3d_index_scan_opts so = t3d_index_scan_default_opts();
      so.mode = (t3d_index_scan_mode)mode, so.oversample = oversample;
      double rsum = 0;
      for (int i = 0; i < nq; i++) {
        size_t nout = 0;
        double t = now_s();
        if ((s = t3d_index_matrix_search(m, qs + (size_t)i * dim, k, &so, sc, &nout)) != T3D_OK) goto fail;
        ms[i] = (now_s() - t) * 1e3;
        if (i < nref) {
          for (size_t j = 0; j < k; j++) got[j] = j < nout ? sc[j].id - 1 : -2; /* analysis ids start at 1 */
          rsum += recall(got, ref + (size_t)i * k, k);
        }
      }
      qsort(ms, (size_t)nq, sizeof *ms, cmp_double);
      size_t bytes = (size_t)n * dim * (mode == 0 ? 4 : mode == 1 ? 6 : 5);
      printf("%-9zu %-22s %9.2f %9.2f %9.2f %9.4f %10.0f\n", n, names[mode], t_load, ms[nq / 2],
             ms[(size_t)(nq * 0.99) < (size_t)nq ? (size_t)(nq * 0.99) : (size_t)nq - 1], rsum / nref,
             (double)bytes / 1048576.0);
      fflush(stdout);
    }
    t3d_index_matrix_free(m);
    m = NULL;

    if (!no_faiss) {
      char cmd[20000], line[1024] = "";
      snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' %zu %d '%s' %d %d %zu '%s'", py, T3D_BENCH_FAISS_PY, basef, n, dim, qf,
               nq, threads, k, idf);
      FILE *pp = popen(cmd, "r");
      if (pp) {
        if (!fgets(line, sizeof line, pp)) line[0] = '\0';
        pclose(pp);
      }
      double fl = NAN, f50 = NAN, f99 = NAN;
      const char *a = strstr(line, "\"load_s\": "), *b = strstr(line, "\"p50_ms\": "), *d = strstr(line, "\"p99_ms\": ");
      if (a && b && d) fl = atof(a + 10), f50 = atof(b + 10), f99 = atof(d + 10);
      double rsum = 0;
      FILE *fi = isnan(f50) ? NULL : fopen(idf, "rb");
      for (int i = 0; fi && i < nref; i++) {
        if (fread(got, sizeof *got, k, fi) != k) break;
        rsum += recall(got, ref + (size_t)i * k, k);
      }
      if (fi) fclose(fi);
      if (isnan(f50))
        printf("%-9zu %-22s %s\n", n, "faiss IndexFlatIP", _("unavailable (pip install faiss-cpu into $T3D_PYTHON)"));
      else
        printf("%-9zu %-22s %9.2f %9.2f %9.2f %9.4f %10.0f\n", n, "faiss IndexFlatIP", fl, f50, f99, rsum / nref,
               (double)n * dim * 4 / 1048576.0);
      fflush(stdout);
    }
    goto next;
  fail:
    t3d_cli_fail(s, "bench-search");
    rc = 1;
  next:
    t3d_index_matrix_free(m);
    t3d_index_free(ix);
    free(v), free(qs), free(ref), free(got), free(ms), free(batch), free(metas), free(sc);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
      char f[4300];
      snprintf(f, sizeof f, "%s%s", db, suffix[i]);
      unlink(f);
    }
    unlink(basef), unlink(qf), unlink(idf);
  }
  rmdir(tmpl);
  return rc;
}
