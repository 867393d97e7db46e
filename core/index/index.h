/* t3d_index: the local case index -- one SQLite database (WAL) holding patients, studies,
 * series, analyses (model, timings, geometry note), embeddings, findings, organ volumes, mask
 * locations and reports (FTS5) -- and exact search over it. Not the model (the caller passes
 * embeddings in) and not a server: one workstation, one file, many readers, one writer at a time.
 *
 * Schema (PRAGMA user_version = T3D_INDEX_SCHEMA_VERSION; older files are migrated forward in
 * one transaction per step, newer ones are refused):
 *   patients(id, patient_key UNIQUE, name, birth_date, sex)
 *   studies(id, study_uid UNIQUE, patient_id -> patients, study_date, description, accession)
 *   series(id, series_uid UNIQUE, study_id -> studies, modality, description, path,
 *          content_hash, nx, ny, nz, sx, sy, sz, indexed_at)
 *   analyses(id, series_id -> series, model_name, model_hash, device, ms_preprocess,
 *            ms_encoder, ms_decoder, ms_total, created_at, geometry_note [v2])
 *   embeddings(analysis_id -> analyses, model_hash, dim, vec BLOB)   blob format below
 *   findings(analysis_id, name, probability);  organ_volumes(analysis_id, name, volume_ml)
 *   mask_locations(analysis_id, path, format)                         [v2]
 *   reports(id, series_id -> series, source, text) + reports_fts (FTS5, external content,
 *   kept in step by triggers)
 * Child rows go with their parent (ON DELETE CASCADE, foreign_keys=ON). Version 1 lacked
 * analyses.geometry_note and mask_locations; migration 1 -> 2 adds both.
 *
 * Embedding BLOB (little-endian): "T3E1", uint32 dim, dim float32. Read back only when the
 * length is exactly 8 + 4*dim, dim matches the row's dim column and every value is finite.
 *
 * Search: vector list = cosine of the query against every stored embedding of the same model
 * hash (an exact scan over an in-memory matrix, see t3d_index_matrix); text list = FTS5 BM25
 * over reports, the user's words each quoted as a phrase and OR-ed (no FTS syntax reaches
 * SQLite). The two are fused by reciprocal-rank fusion: score(case) = sum over the lists it
 * appears in of 1 / (60 + rank), rank 1-based (T3D_INDEX_RRF_K = 60).
 *
 * Files: the database and its -wal/-shm are created mode 0600 (they hold patient data): the
 * file is created 0600 before SQLite opens it (not by changing the umask, which is process-wide
 * and would race other threads of the host viewer), SQLite gives -wal/-shm the database's mode,
 * and after opening all three are checked and narrowed when wider. A handle is used by one
 * thread at a time; use one handle per thread. */
#ifndef T3D_INDEX_H
#define T3D_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/status.h"
#include "core/base/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

#define T3D_INDEX_SCHEMA_VERSION 2
#define T3D_INDEX_RRF_K 60
#define T3D_INDEX_MAX_DIM 4096

typedef struct t3d_index t3d_index;

typedef struct {
  bool read_only;         /* open without writing (and without creating) */
  int busy_timeout_ms;    /* wait this long for another writer; default 30000 */
  int64_t max_page_count; /* 0 = no limit; a cap (PRAGMA max_page_count) for quotas and tests */
} t3d_index_open_opts;
t3d_index_open_opts t3d_index_default_opts(void);

/* $XDG_DATA_HOME/t3d/index.db, else $HOME/.local/share/t3d/index.db, into buf. Does not create
 * anything. T3D_ERR_NOT_FOUND when neither variable is set to an absolute path. */
t3d_status t3d_index_default_path(char *buf, size_t size);

/* Opens (creating when absent and not read_only, with its folder, mode 0700) the index at path;
 * migrates an older schema forward; refuses a newer one (T3D_ERR_UNSUPPORTED), a file that is
 * not an index (T3D_ERR_FORMAT) and an unwritable one (T3D_ERR_IO), each with a message.
 * opts NULL = defaults. *out is the caller's (t3d_index_free). */
t3d_status t3d_index_open(const char *path, const t3d_index_open_opts *opts, t3d_index **out);
void t3d_index_free(t3d_index *ix); /* NULL is a no-op */
int t3d_index_schema_version(const t3d_index *ix);

typedef struct {
  const char *name;
  double value;
} t3d_index_named_value;

/* One analysed series, as stored by t3d_index_put. Strings may be NULL (stored as ''). */
typedef struct {
  const t3d_volume_meta *meta; /* patient, study and series identity (series_uid required) */
  int64_t shape[3];            /* nx, ny, nz */
  double spacing[3];           /* mm */
  const char *source_path;     /* where the series was read from */
  const char *content_hash;    /* of the series' files (t3d_index_hash_files) */
  const char *geometry_note;   /* t3d_volume.geometry_note */
  const char *model_name, *model_hash, *device;
  double ms_preprocess, ms_encoder, ms_decoder, ms_total;
  const float *embedding; /* [dim], may be NULL (dim 0) */
  int dim;
  const t3d_index_named_value *findings; /* probabilities */
  size_t nfindings;
  const t3d_index_named_value *organ_ml; /* volumes in mL */
  size_t norgans;
  const char *mask_path, *mask_format;    /* may be NULL: no mask stored */
  const char *report_text, *report_source; /* may be NULL: no report */
} t3d_index_entry;

/* Stores e in one transaction: upserts patient, study and series, replaces any analysis of the
 * series by the same model hash, adds embedding, findings, organs, mask and report (a report of
 * the same source replaces the old one). On failure nothing is changed. *analysis_id may be NULL. */
t3d_status t3d_index_put(t3d_index *ix, const t3d_index_entry *e, int64_t *analysis_id);

/* Several entries in one transaction (a batch import; the benchmark fills a million rows so):
 * all stored or, on failure, none. */
t3d_status t3d_index_put_many(t3d_index *ix, const t3d_index_entry *e, size_t n);

/* *known = the series is stored with this content hash and analysed by this model hash. */
t3d_status t3d_index_is_known(t3d_index *ix, const char *series_uid, const char *content_hash,
                              const char *model_hash, bool *known);

typedef struct {
  int64_t patients, studies, series, analyses, embeddings, findings, reports;
} t3d_index_counts;
t3d_status t3d_index_count(t3d_index *ix, t3d_index_counts *out);
/* PRAGMA integrity_check and foreign_key_check; T3D_ERR_FORMAT naming the first problem. */
t3d_status t3d_index_check(t3d_index *ix);

/* The stored embedding of series_uid's latest analysis: out (T3D_INDEX_MAX_DIM floats),
 * *dim and model_hash (at least 65 bytes). T3D_ERR_NOT_FOUND when it has none. */
t3d_status t3d_index_series_embedding(t3d_index *ix, const char *series_uid, float *out, int *dim,
                                      char *model_hash, size_t model_hash_size);

/* ---- embeddings and hashes ---- */
size_t t3d_index_embedding_blob_size(int dim);
/* Writes the BLOB for v[dim] into out (t3d_index_embedding_blob_size(dim) bytes). */
void t3d_index_embedding_encode(const float *v, int dim, void *out);
/* Parses an untrusted BLOB into out (room for T3D_INDEX_MAX_DIM floats): T3D_ERR_FORMAT on a
 * bad magic, length or non-finite value, or when expect_dim > 0 and the dimension differs. */
t3d_status t3d_index_embedding_parse(const void *blob, size_t len, int expect_dim, float *out, int *dim);

/* Content hash of files (in the given order: contents and sizes, not names) as 16 hex digits
 * + NUL into hex[17]; FNV-1a 64 over 8-byte words. T3D_ERR_IO naming a file that cannot be read. */
t3d_status t3d_index_hash_files(const char *const *paths, size_t n, char hex[17]);

/* ---- exact search ---- */
typedef enum {
  T3D_INDEX_SCAN_FP32 = 0, /* exact */
  T3D_INDEX_SCAN_FP16,     /* fp16 scan of oversample*k candidates, exact fp32 rescoring */
  T3D_INDEX_SCAN_INT8,     /* int8 (per-row scale) scan, exact fp32 rescoring */
} t3d_index_scan_mode;

typedef struct {
  int64_t id;   /* row id: the analysis id for a loaded index */
  float score;  /* cosine */
} t3d_index_scored;

/* An in-memory matrix of L2-normalised embeddings with their ids (and study dates), loaded once
 * and scanned many times. Scans run on OpenMP threads over rows, with AVX2/FMA kernels chosen
 * at run time (portable C otherwise). Read-only after creation: safe to search from many
 * threads. */
typedef struct t3d_index_matrix t3d_index_matrix;

/* Every embedding of model_hash in ix. Rows with a bad BLOB fail the load (T3D_ERR_FORMAT
 * naming the analysis). modes_mask: bit (1 << mode) for each quantised copy to build (fp32
 * is always kept for exact rescoring). *out is the caller's (t3d_index_matrix_free). */
t3d_status t3d_index_matrix_load(t3d_index *ix, const char *model_hash, unsigned modes_mask,
                                 t3d_index_matrix **out);
/* From n rows of v[n*dim] (normalised here), ids[n] (NULL: 0..n-1); dates may be NULL. */
t3d_status t3d_index_matrix_create(const float *v, const int64_t *ids, const int32_t *dates, size_t n, int dim,
                                   unsigned modes_mask, t3d_index_matrix **out);
void t3d_index_matrix_free(t3d_index_matrix *m); /* NULL is a no-op */
size_t t3d_index_matrix_rows(const t3d_index_matrix *m);
int t3d_index_matrix_dim(const t3d_index_matrix *m);
size_t t3d_index_matrix_bytes(const t3d_index_matrix *m);

typedef struct {
  t3d_index_scan_mode mode;
  size_t oversample;    /* quantised modes rescore oversample*k candidates; default 4 */
  int32_t min_date;     /* YYYYMMDD; rows dated earlier (or undated) are skipped; 0 = all */
  int64_t exclude_id;   /* a row id to leave out (the query case itself); -1 = none */
} t3d_index_scan_opts;
t3d_index_scan_opts t3d_index_scan_default_opts(void);

/* The k best rows by cosine with q[dim] (normalised here), best first, into out[k]; *nout <= k.
 * Ties go to the smaller row index. T3D_ERR_UNSUPPORTED when the mode's copy was not built. */
t3d_status t3d_index_matrix_search(const t3d_index_matrix *m, const float *q, size_t k,
                                   const t3d_index_scan_opts *opts, t3d_index_scored *out, size_t *nout);

/* ---- case search (vector + reports, fused) ---- */
typedef struct {
  int64_t analysis_id;
  char series_uid[T3D_UID_MAX], study_uid[T3D_UID_MAX];
  char patient_key[T3D_META_MAX], study_date[16], description[T3D_META_MAX];
  char path[1024];
  double score;             /* RRF */
  double cosine;            /* NAN when not in the vector list */
  int vector_rank, text_rank; /* 1-based; 0 when absent from that list */
  double bm25;              /* FTS5 bm25 (lower is better); NAN when absent */
} t3d_index_hit;

typedef struct {
  size_t k;                 /* hits wanted; default 10 */
  const char *since;        /* "YYYY-MM-DD" or "YYYYMMDD": studies on or after; NULL = all */
  t3d_index_scan_opts scan; /* mode and oversample of the vector list */
  const char *exclude_series_uid; /* NULL = none */
} t3d_index_search_opts;
t3d_index_search_opts t3d_index_search_default_opts(void);

/* Ranks stored cases of model_hash: the vector list from query[dim] (NULL: none), the text list
 * from text (NULL or no words: none), each cut at max(4k, 100), fused by RRF. The matrix is
 * loaded on first use and kept in ix until t3d_index_put changes the index. *hits is the
 * caller's (free()). */
t3d_status t3d_index_search(t3d_index *ix, const char *model_hash, const float *query, int dim, const char *text,
                            const t3d_index_search_opts *opts, t3d_index_hit **hits, size_t *nhits);

/* text as an FTS5 query: each run of letters/digits (bytes >= 0x80 count as letters) quoted
 * as a phrase, joined by OR; "" when text has no words. Into buf; T3D_ERR_INVALID_ARG when it
 * does not fit. */
t3d_status t3d_index_fts_query(const char *text, char *buf, size_t size);
/* "YYYY-MM-DD" or "YYYYMMDD" -> YYYYMMDD as an integer; T3D_ERR_INVALID_ARG otherwise. */
t3d_status t3d_index_parse_date(const char *s, int32_t *out);

/* ---- a stored case as a report's neighbour ---- */
typedef struct {
  char *text;        /* the series' stored reports, joined by a blank line (by source); "" when none */
  char **findings;   /* names of the analysis' findings with probability >= min_probability, by name */
  size_t nfindings;
} t3d_index_case;

/* Reports and findings of analysis_id (a t3d_index_hit's), for the report's phrasing rule
 * (core/report/report.h). T3D_ERR_NOT_FOUND when the index has no such analysis. *out is the
 * caller's (t3d_index_case_free). */
t3d_status t3d_index_case_get(t3d_index *ix, int64_t analysis_id, double min_probability, t3d_index_case **out);
void t3d_index_case_free(t3d_index_case *c); /* NULL is a no-op */

#ifdef __cplusplus
}
#endif
#endif
