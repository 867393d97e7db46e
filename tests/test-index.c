/* Case index API: schema creation (0600), storing and replacing, counts, the v1 -> v2
 * migration of a real version-1 file, refusal of newer/corrupt/foreign files (left unchanged),
 * SQLITE_FULL (simulated with max_page_count) and read-only handles leaving data as it was,
 * SQL/FTS injection through search text and filters, embedding BLOB checks, RRF fusion, and the
 * scan kernels (AVX2 and portable) against a double-precision reference. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/index/index.h"
#include "tests/check.h"

static char dir[256];

static void path_in(char *buf, size_t size, const char *name)
{
  snprintf(buf, size, "%s/%s", dir, name);
}

/* The whole file, for "left as it was" comparisons; *len set. */
static unsigned char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

static int same_file(const char *path, const unsigned char *before, size_t len)
{
  size_t n = 0;
  unsigned char *now = slurp(path, &n);
  int same = now && n == len && memcmp(now, before, len) == 0;
  free(now);
  return same;
}

static void copy_file(const char *from, const char *to)
{
  size_t n = 0;
  unsigned char *b = slurp(from, &n);
  FILE *f = fopen(to, "wb");
  if (b && f) fwrite(b, 1, n, f);
  if (f) fclose(f);
  free(b);
}

static int raw_exec(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  int rc = sqlite3_open(path, &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) fprintf(stderr, "raw_exec(%s): %s\n", sql, sqlite3_errmsg(db));
  sqlite3_close(db);
  return rc;
}

/* A synthetic case: series i of study i/2, embedding along axis i%dim plus a little of axis 0. */
typedef struct {
  t3d_volume_meta meta;
  float emb[16];
  t3d_index_named_value findings[2];
  t3d_index_entry e;
} fake_case;

static void make_case(fake_case *c, int i, const char *date, const char *report)
{
  memset(c, 0, sizeof *c);
  snprintf(c->meta.patient_id, sizeof c->meta.patient_id, "P%d", i / 4);
  snprintf(c->meta.patient_name, sizeof c->meta.patient_name, "Test^%d", i / 4);
  snprintf(c->meta.study_uid, sizeof c->meta.study_uid, "1.2.3.%d", i / 2);
  snprintf(c->meta.series_uid, sizeof c->meta.series_uid, "1.2.3.%d.%d", i / 2, i);
  snprintf(c->meta.study_date, sizeof c->meta.study_date, "%s", date);
  snprintf(c->meta.accession_number, sizeof c->meta.accession_number, "ACC%d", i);
  c->emb[i % 16] = 1.0f;
  c->emb[0] += 0.1f;
  c->findings[0] = (t3d_index_named_value){"nodule", 0.1 * (i % 10)};
  c->findings[1] = (t3d_index_named_value){"effusion", 0.5};
  c->e = (t3d_index_entry){.meta = &c->meta, .shape = {64, 64, 24}, .spacing = {0.8, 0.8, 2.5},
                           .source_path = "/data/x", .content_hash = "00000000000000aa", .geometry_note = "",
                           .model_name = "test", .model_hash = "m1", .device = "cpu", .embedding = c->emb,
                           .dim = 16, .findings = c->findings, .nfindings = 2, .report_text = report,
                           .report_source = report ? "report.txt" : NULL};
}

static void test_create_and_store(void)
{
  char db[512];
  path_in(db, sizeof db, "sub/dir/index.db");
  t3d_index *ix = NULL;
  CHECK_STATUS(t3d_index_open(db, NULL, &ix), T3D_OK);
  if (!ix) return;
  CHECK_INT_EQ(t3d_index_schema_version(ix), T3D_INDEX_SCHEMA_VERSION);
  struct stat sb;
  CHECK(stat(db, &sb) == 0);
  CHECK_INT_EQ(sb.st_mode & 0777, 0600);
  fake_case c;
  static const char *const reports[] = {"Right lower lobe nodule.", NULL, "Large pleural effusion on the left.",
                                        "No acute findings.", "Pleural effusion, small.", NULL};
  /* one date per study (cases 2k and 2k+1 share study k) */
  static const char *const dates[] = {"20200101", "20200101", "20220101", "20220101", "20240101", "20240101"};
  for (int i = 0; i < 6; i++) {
    make_case(&c, i, dates[i], reports[i]);
    CHECK_STATUS(t3d_index_put(ix, &c.e, NULL), T3D_OK);
  }
  char wal[600];
  snprintf(wal, sizeof wal, "%s-wal", db);
  if (stat(wal, &sb) == 0) CHECK_INT_EQ(sb.st_mode & 0777, 0600);
  snprintf(wal, sizeof wal, "%s-shm", db);
  if (stat(wal, &sb) == 0) CHECK_INT_EQ(sb.st_mode & 0777, 0600);

  /* Re-storing a series with the same model replaces its analysis; its report is replaced too. */
  make_case(&c, 2, dates[2], "Large pleural effusion on the left, unchanged.");
  CHECK_STATUS(t3d_index_put(ix, &c.e, NULL), T3D_OK);
  t3d_index_counts n;
  CHECK_STATUS(t3d_index_count(ix, &n), T3D_OK);
  CHECK_INT_EQ(n.series, 6);
  CHECK_INT_EQ(n.analyses, 6);
  CHECK_INT_EQ(n.embeddings, 6);
  CHECK_INT_EQ(n.findings, 12);
  CHECK_INT_EQ(n.reports, 4);
  CHECK_INT_EQ(n.studies, 3);
  CHECK_INT_EQ(n.patients, 2);
  CHECK_STATUS(t3d_index_check(ix), T3D_OK);

  bool known = false;
  CHECK_STATUS(t3d_index_is_known(ix, "1.2.3.1.2", "00000000000000aa", "m1", &known), T3D_OK);
  CHECK(known);
  CHECK_STATUS(t3d_index_is_known(ix, "1.2.3.1.2", "00000000000000ab", "m1", &known), T3D_OK);
  CHECK(!known);
  CHECK_STATUS(t3d_index_is_known(ix, "1.2.3.1.2", "00000000000000aa", "m2", &known), T3D_OK);
  CHECK(!known);

  /* An entry with a NaN embedding is refused before anything is written. */
  make_case(&c, 7, "20200101", NULL);
  c.emb[3] = NAN;
  CHECK_STATUS(t3d_index_put(ix, &c.e, NULL), T3D_ERR_INVALID_ARG);

  /* Vector list only: the query along axis 3 finds case 3 first with cosine 1/sqrt(1.01)... */
  float q[16] = {0};
  q[3] = 1;
  t3d_index_hit *hits = NULL;
  size_t nh = 0;
  t3d_index_search_opts so = t3d_index_search_default_opts();
  so.k = 3;
  CHECK_STATUS(t3d_index_search(ix, "m1", q, 16, NULL, &so, &hits, &nh), T3D_OK);
  CHECK_INT_EQ(nh, 3);
  if (nh == 3) {
    CHECK(strcmp(hits[0].series_uid, "1.2.3.1.3") == 0);
    CHECK_NEAR(hits[0].cosine, 1 / sqrt(1.01), 1e-5);
    CHECK_INT_EQ(hits[0].vector_rank, 1);
    CHECK_INT_EQ(hits[0].text_rank, 0);
    CHECK_NEAR(hits[0].score, 1.0 / (T3D_INDEX_RRF_K + 1), 1e-12);
  }
  free(hits);

  /* Fused: "pleural effusion" matches cases 2 and 4 in text; case 4 is also the vector's best. */
  q[3] = 0, q[4] = 1;
  CHECK_STATUS(t3d_index_search(ix, "m1", q, 16, "pleural effusion", &so, &hits, &nh), T3D_OK);
  CHECK(nh >= 2);
  if (nh >= 2) {
    CHECK(strcmp(hits[0].series_uid, "1.2.3.2.4") == 0);
    CHECK_INT_EQ(hits[0].vector_rank, 1);
    CHECK(hits[0].text_rank >= 1);
    CHECK_NEAR(hits[0].score, 1.0 / (T3D_INDEX_RRF_K + 1) + 1.0 / (T3D_INDEX_RRF_K + hits[0].text_rank), 1e-12);
    CHECK(strcmp(hits[1].series_uid, "1.2.3.1.2") == 0);
    CHECK(hits[1].text_rank >= 1 && hits[1].vector_rank >= 2);
    CHECK(!isnan(hits[1].bm25));
  }
  free(hits);

  /* --since: only studies on or after 2022-01-01 (cases 2 to 5), in both lists. */
  so.k = 10, so.since = "2022-01-01";
  CHECK_STATUS(t3d_index_search(ix, "m1", q, 16, "effusion", &so, &hits, &nh), T3D_OK);
  CHECK_INT_EQ(nh, 4);
  for (size_t i = 0; i < nh; i++) CHECK(strcmp(hits[i].study_date, "20220101") >= 0);
  free(hits);
  so.since = "20220102";
  CHECK_STATUS(t3d_index_search(ix, "m1", NULL, 0, "effusion", &so, &hits, &nh), T3D_OK);
  CHECK_INT_EQ(nh, 1); /* text list only: case 4 */
  if (nh == 1) CHECK(strcmp(hits[0].series_uid, "1.2.3.2.4") == 0);
  free(hits);

  /* Injection: search text and filters are data. FTS syntax and SQL in the text neither fail
   * nor change anything; a filter that is not a date is refused. */
  static const char *const evil[] = {"\"foo", "NEAR(", "effusion\" OR \"x", "'); DROP TABLE reports; --",
                                     "* ^ : - + () {col} AND OR NOT", "x\" ) UNION SELECT 1, 2 --", ""};
  so.since = NULL;
  for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
    hits = NULL;
    CHECK_STATUS(t3d_index_search(ix, "m1", q, 16, evil[i], &so, &hits, &nh), T3D_OK);
    free(hits);
  }
  so.since = "2020-01-01' OR 1=1 --";
  CHECK_STATUS(t3d_index_search(ix, "m1", q, 16, "effusion", &so, &hits, &nh), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_index_count(ix, &n), T3D_OK);
  CHECK_INT_EQ(n.reports, 4);
  CHECK_INT_EQ(n.series, 6);
  /* A model hash that looks like SQL finds nothing rather than everything. */
  so.since = NULL;
  CHECK_STATUS(t3d_index_search(ix, "m1' OR '1'='1", NULL, 0, "effusion", &so, &hits, &nh), T3D_OK);
  CHECK_INT_EQ(nh, 0);
  free(hits);

  /* similar: the stored embedding of a series, itself excluded. */
  float emb[T3D_INDEX_MAX_DIM];
  int dim = 0;
  char mh[80];
  CHECK_STATUS(t3d_index_series_embedding(ix, "1.2.3.0.1", emb, &dim, mh, sizeof mh), T3D_OK);
  CHECK_INT_EQ(dim, 16);
  CHECK(strcmp(mh, "m1") == 0);
  so.exclude_series_uid = "1.2.3.0.1";
  CHECK_STATUS(t3d_index_search(ix, "m1", emb, dim, NULL, &so, &hits, &nh), T3D_OK);
  CHECK_INT_EQ(nh, 5);
  for (size_t i = 0; i < nh; i++) CHECK(strcmp(hits[i].series_uid, "1.2.3.0.1") != 0);
  free(hits);
  CHECK_STATUS(t3d_index_series_embedding(ix, "9.9.9", emb, &dim, mh, sizeof mh), T3D_ERR_NOT_FOUND);
  t3d_index_free(ix);
}

static void test_fts_query_and_dates(void)
{
  char b[256];
  CHECK_STATUS(t3d_index_fts_query("\"foo NEAR( bar*", b, sizeof b), T3D_OK);
  CHECK(strcmp(b, "\"foo\" OR \"NEAR\" OR \"bar\"") == 0);
  CHECK_STATUS(t3d_index_fts_query("  ;;; \"\" ", b, sizeof b), T3D_OK);
  CHECK(strcmp(b, "") == 0);
  CHECK_STATUS(t3d_index_fts_query("l\xc3\xa4sion 8mm", b, sizeof b), T3D_OK);
  CHECK(strcmp(b, "\"l\xc3\xa4sion\" OR \"8mm\"") == 0);
  CHECK_STATUS(t3d_index_fts_query("a b c d e f", b, 12), T3D_ERR_INVALID_ARG);
  int32_t d = 0;
  CHECK_STATUS(t3d_index_parse_date("2024-02-29", &d), T3D_OK);
  CHECK_INT_EQ(d, 20240229);
  CHECK_STATUS(t3d_index_parse_date("20240229", &d), T3D_OK);
  CHECK_STATUS(t3d_index_parse_date("2024-13-01", &d), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_index_parse_date("2024-1-011", &d), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_index_parse_date("+2024-01-1", &d), T3D_ERR_INVALID_ARG);
  CHECK_STATUS(t3d_index_parse_date("", &d), T3D_ERR_INVALID_ARG);

  char p[512];
  setenv("XDG_DATA_HOME", "/x/data", 1);
  CHECK_STATUS(t3d_index_default_path(p, sizeof p), T3D_OK);
  CHECK(strcmp(p, "/x/data/t3d/index.db") == 0);
  setenv("XDG_DATA_HOME", "relative", 1); /* XDG: relative paths are ignored */
  setenv("HOME", "/home/u", 1);
  CHECK_STATUS(t3d_index_default_path(p, sizeof p), T3D_OK);
  CHECK(strcmp(p, "/home/u/.local/share/t3d/index.db") == 0);
}

/* The version-1 schema exactly as t3d created it before geometry_note and mask_locations. */
static const char SCHEMA_V1[] =
  "CREATE TABLE patients(id INTEGER PRIMARY KEY, patient_key TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '',"
  " birth_date TEXT NOT NULL DEFAULT '', sex TEXT NOT NULL DEFAULT '');"
  "CREATE TABLE studies(id INTEGER PRIMARY KEY, study_uid TEXT NOT NULL UNIQUE,"
  " patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE, study_date TEXT NOT NULL DEFAULT '',"
  " description TEXT NOT NULL DEFAULT '', accession TEXT NOT NULL DEFAULT '');"
  "CREATE INDEX studies_patient ON studies(patient_id);"
  "CREATE INDEX studies_accession ON studies(accession);"
  "CREATE TABLE series(id INTEGER PRIMARY KEY, series_uid TEXT NOT NULL UNIQUE,"
  " study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE, modality TEXT NOT NULL DEFAULT '',"
  " description TEXT NOT NULL DEFAULT '', path TEXT NOT NULL DEFAULT '', content_hash TEXT NOT NULL DEFAULT '',"
  " nx INTEGER, ny INTEGER, nz INTEGER, sx REAL, sy REAL, sz REAL, indexed_at TEXT NOT NULL DEFAULT '');"
  "CREATE INDEX series_study ON series(study_id);"
  "CREATE TABLE analyses(id INTEGER PRIMARY KEY,"
  " series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE, model_name TEXT NOT NULL DEFAULT '',"
  " model_hash TEXT NOT NULL, device TEXT NOT NULL DEFAULT '', ms_preprocess REAL, ms_encoder REAL,"
  " ms_decoder REAL, ms_total REAL, created_at TEXT NOT NULL DEFAULT '');"
  "CREATE INDEX analyses_series ON analyses(series_id, model_hash);"
  "CREATE TABLE embeddings(analysis_id INTEGER PRIMARY KEY REFERENCES analyses(id) ON DELETE CASCADE,"
  " model_hash TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);"
  "CREATE INDEX embeddings_model ON embeddings(model_hash);"
  "CREATE TABLE findings(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
  " name TEXT NOT NULL, probability REAL NOT NULL, PRIMARY KEY(analysis_id, name));"
  "CREATE TABLE organ_volumes(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
  " name TEXT NOT NULL, volume_ml REAL NOT NULL, PRIMARY KEY(analysis_id, name));"
  "CREATE TABLE reports(id INTEGER PRIMARY KEY,"
  " series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE, source TEXT NOT NULL DEFAULT '',"
  " text TEXT NOT NULL);"
  "CREATE INDEX reports_series ON reports(series_id);"
  "CREATE VIRTUAL TABLE reports_fts USING fts5(text, content='reports', content_rowid='id');"
  "CREATE TRIGGER reports_ai AFTER INSERT ON reports BEGIN"
  " INSERT INTO reports_fts(rowid, text) VALUES(new.id, new.text); END;"
  "CREATE TRIGGER reports_ad AFTER DELETE ON reports BEGIN"
  " INSERT INTO reports_fts(reports_fts, rowid, text) VALUES('delete', old.id, old.text); END;"
  "CREATE TRIGGER reports_au AFTER UPDATE ON reports BEGIN"
  " INSERT INTO reports_fts(reports_fts, rowid, text) VALUES('delete', old.id, old.text);"
  " INSERT INTO reports_fts(rowid, text) VALUES(new.id, new.text); END;"
  "PRAGMA journal_mode = WAL;"
  "PRAGMA user_version = 1;";

static void test_migration(void)
{
  char db[512];
  path_in(db, sizeof db, "v1.db");
  CHECK_INT_EQ(raw_exec(db, SCHEMA_V1), SQLITE_OK);
  /* One version-1 case with its embedding and report. */
  float v[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  unsigned char blob[8 + 16];
  t3d_index_embedding_encode(v, 4, blob);
  char sql[1024], hex[2 * sizeof blob + 1];
  for (size_t i = 0; i < sizeof blob; i++) snprintf(hex + 2 * i, 3, "%02x", blob[i]);
  snprintf(sql, sizeof sql,
           "INSERT INTO patients(patient_key) VALUES('P0');"
           "INSERT INTO studies(study_uid, patient_id, study_date) VALUES('9.1', 1, '20190505');"
           "INSERT INTO series(series_uid, study_id, content_hash) VALUES('9.1.1', 1, 'abc');"
           "INSERT INTO analyses(series_id, model_hash) VALUES(1, 'm1');"
           "INSERT INTO embeddings VALUES(1, 'm1', 4, x'%s');"
           "INSERT INTO reports(series_id, text) VALUES(1, 'old emphysema report');",
           hex);
  CHECK_INT_EQ(raw_exec(db, sql), SQLITE_OK);

  t3d_index *ix = NULL;
  t3d_index_open_opts ro = t3d_index_default_opts();
  ro.read_only = true; /* a read-only handle cannot migrate and says so */
  CHECK_STATUS(t3d_index_open(db, &ro, &ix), T3D_ERR_UNSUPPORTED);
  CHECK_STATUS(t3d_index_open(db, NULL, &ix), T3D_OK);
  if (!ix) return;
  CHECK_INT_EQ(t3d_index_schema_version(ix), 2);
  CHECK_STATUS(t3d_index_check(ix), T3D_OK);
  t3d_index_counts n;
  CHECK_STATUS(t3d_index_count(ix, &n), T3D_OK);
  CHECK_INT_EQ(n.analyses, 1);
  CHECK_INT_EQ(n.reports, 1);
  /* The old case is searchable by text and vector, and new v2 data (mask location, geometry
   * note) can be stored beside it. */
  t3d_index_hit *hits = NULL;
  size_t nh = 0;
  CHECK_STATUS(t3d_index_search(ix, "m1", v, 4, "emphysema", NULL, &hits, &nh), T3D_OK);
  CHECK_INT_EQ(nh, 1);
  if (nh == 1) CHECK_INT_EQ(hits[0].text_rank, 1);
  free(hits);
  fake_case c;
  make_case(&c, 1, "20200101", NULL);
  c.e.dim = 4, c.e.embedding = v, c.e.mask_path = "/masks/x.nii.gz", c.e.mask_format = "nifti";
  c.e.geometry_note = "gantry tilt 5 deg corrected";
  CHECK_STATUS(t3d_index_put(ix, &c.e, NULL), T3D_OK);
  t3d_index_free(ix);
  sqlite3 *raw = NULL;
  sqlite3_stmt *st = NULL;
  sqlite3_open(db, &raw);
  CHECK_INT_EQ(sqlite3_prepare_v2(raw, "SELECT (SELECT count(*) FROM mask_locations), "
                                       "(SELECT geometry_note FROM analyses WHERE id = 1), "
                                       "(SELECT geometry_note FROM analyses WHERE id = 2)", -1, &st, NULL),
               SQLITE_OK);
  CHECK_INT_EQ(sqlite3_step(st), SQLITE_ROW);
  CHECK_INT_EQ(sqlite3_column_int(st, 0), 1);
  CHECK(strcmp((const char *)sqlite3_column_text(st, 1), "") == 0);
  CHECK(strcmp((const char *)sqlite3_column_text(st, 2), "gantry tilt 5 deg corrected") == 0);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

static void test_refusals(void)
{
  char good[512], db[512];
  path_in(good, sizeof good, "good.db");
  t3d_index *ix = NULL;
  fake_case c;
  CHECK_STATUS(t3d_index_open(good, NULL, &ix), T3D_OK);
  make_case(&c, 0, "20200101", "a report");
  CHECK_STATUS(t3d_index_put(ix, &c.e, NULL), T3D_OK);
  t3d_index_free(ix); /* checkpoints: the whole index is in the main file now */
  size_t len = 0;
  unsigned char *orig = slurp(good, &len);
  CHECK(orig != NULL);

  /* Newer schema: refused with a message, bytes untouched. */
  path_in(db, sizeof db, "newer.db");
  copy_file(good, db);
  CHECK_INT_EQ(raw_exec(db, "PRAGMA user_version = 3"), SQLITE_OK);
  size_t nlen = 0;
  unsigned char *newer = slurp(db, &nlen);
  ix = NULL;
  CHECK_STATUS(t3d_index_open(db, NULL, &ix), T3D_ERR_UNSUPPORTED);
  CHECK(ix == NULL);
  CHECK(strstr(t3d_error_detail(), "newer t3d") != NULL);
  CHECK(newer && same_file(db, newer, nlen));
  free(newer);

  /* Not a database at all (garbage over the header): T3D_ERR_FORMAT, bytes untouched. */
  path_in(db, sizeof db, "corrupt.db");
  copy_file(good, db);
  FILE *f = fopen(db, "r+b");
  if (f) {
    fwrite("this is not an SQLite header, just some bytes.....", 1, 50, f);
    fclose(f);
  }
  size_t clen = 0;
  unsigned char *corrupt = slurp(db, &clen);
  CHECK_STATUS(t3d_index_open(db, NULL, &ix), T3D_ERR_FORMAT);
  CHECK(strstr(t3d_error_detail(), "not a t3d index or damaged") != NULL);
  CHECK(corrupt && same_file(db, corrupt, clen));
  free(corrupt);

  /* Damaged pages inside a valid header: the check names it and stores nothing. */
  path_in(db, sizeof db, "damaged.db");
  copy_file(good, db);
  f = fopen(db, "r+b");
  if (f) {
    unsigned char junk[4096], hdr[18];
    memset(junk, 0xA5, sizeof junk);
    long page = fread(hdr, 1, sizeof hdr, f) == sizeof hdr ? (hdr[16] << 8 | hdr[17]) : 4096;
    fseek(f, 2 * (page == 1 ? 65536 : page), SEEK_SET); /* page 3 onwards: table b-trees */
    fwrite(junk, 1, sizeof junk, f);
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
  }
  corrupt = slurp(db, &clen);
  t3d_status s = t3d_index_open(db, NULL, &ix);
  CHECK(s == T3D_OK || s == T3D_ERR_FORMAT);
  if (s == T3D_OK) {
    CHECK_STATUS(t3d_index_check(ix), T3D_ERR_FORMAT);
    t3d_index_free(ix);
    ix = NULL;
  }
  CHECK(corrupt && same_file(db, corrupt, clen));
  free(corrupt);

  /* Another program's SQLite file: refused, not taken over. */
  path_in(db, sizeof db, "foreign.db");
  CHECK_INT_EQ(raw_exec(db, "CREATE TABLE notes(x)"), SQLITE_OK);
  CHECK_STATUS(t3d_index_open(db, NULL, &ix), T3D_ERR_FORMAT);

  /* Read-only: a read-only handle refuses to write; a file without write permission (when
   * not root, who ignores permissions) cannot be opened for writing. Data unchanged. */
  t3d_index_open_opts ro = t3d_index_default_opts();
  ro.read_only = true;
  CHECK_STATUS(t3d_index_open(good, &ro, &ix), T3D_OK);
  if (ix) {
    make_case(&c, 1, "20200101", NULL);
    CHECK_STATUS(t3d_index_put(ix, &c.e, NULL), T3D_ERR_IO);
    CHECK(strstr(t3d_error_detail(), "read-only") != NULL);
    t3d_index_free(ix);
    ix = NULL;
  }
  if (geteuid() != 0) {
    chmod(good, 0400);
    CHECK_STATUS(t3d_index_open(good, NULL, &ix), T3D_ERR_IO);
    chmod(good, 0600);
  } else {
    fprintf(stderr, "note: running as root, file-permission read-only case not testable (root bypasses modes)\n");
  }
  CHECK(orig && same_file(good, orig, len));

  /* Full disk, simulated with PRAGMA max_page_count (/dev/full cannot hold a database): the
   * failing write is rolled back; the index holds exactly what it held. */
  t3d_index_open_opts lim = t3d_index_default_opts();
  ix = NULL;
  CHECK_STATUS(t3d_index_open(good, NULL, &ix), T3D_OK);
  int64_t pages = 0;
  if (ix) {
    t3d_index_counts before, after;
    CHECK_STATUS(t3d_index_count(ix, &before), T3D_OK);
    t3d_index_free(ix);
    ix = NULL;
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    sqlite3_open(good, &raw);
    if (sqlite3_prepare_v2(raw, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      pages = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    lim.max_page_count = pages + 2;
    CHECK_STATUS(t3d_index_open(good, &lim, &ix), T3D_OK);
    t3d_status last = T3D_OK;
    char big[20000];
    memset(big, 'w', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    int stored = 0;
    for (int i = 0; ix && i < 50 && last == T3D_OK; i++) {
      make_case(&c, 10 + i, "20200101", big);
      last = t3d_index_put(ix, &c.e, NULL);
      if (last == T3D_OK) stored++;
    }
    CHECK_INT_EQ(last, T3D_ERR_IO);
    CHECK(strstr(t3d_error_detail(), "full") != NULL);
    CHECK_STATUS(t3d_index_count(ix, &after), T3D_OK);
    CHECK_INT_EQ(after.series, before.series + stored);
    CHECK_INT_EQ(after.reports, before.reports + stored);
    CHECK_STATUS(t3d_index_check(ix), T3D_OK);
    t3d_index_free(ix);
  }
  free(orig);
}

static void test_embedding_blob(void)
{
  float v[5] = {1, -2, 3.5f, 0, -0.25f}, out[T3D_INDEX_MAX_DIM];
  unsigned char b[8 + 20];
  int dim = 0;
  CHECK_INT_EQ(t3d_index_embedding_blob_size(5), sizeof b);
  t3d_index_embedding_encode(v, 5, b);
  CHECK_STATUS(t3d_index_embedding_parse(b, sizeof b, 5, out, &dim), T3D_OK);
  CHECK_INT_EQ(dim, 5);
  CHECK(memcmp(out, v, sizeof v) == 0);
  CHECK_STATUS(t3d_index_embedding_parse(b, sizeof b, 0, out, &dim), T3D_OK);
  CHECK_STATUS(t3d_index_embedding_parse(b, sizeof b, 6, out, &dim), T3D_ERR_FORMAT); /* dimension column */
  CHECK_STATUS(t3d_index_embedding_parse(b, sizeof b - 1, 0, out, &dim), T3D_ERR_FORMAT); /* short */
  CHECK_STATUS(t3d_index_embedding_parse(b, 7, 0, out, &dim), T3D_ERR_FORMAT);
  CHECK_STATUS(t3d_index_embedding_parse(NULL, 0, 0, out, &dim), T3D_ERR_FORMAT);
  v[2] = NAN;
  t3d_index_embedding_encode(v, 5, b);
  CHECK_STATUS(t3d_index_embedding_parse(b, sizeof b, 5, out, &dim), T3D_ERR_FORMAT); /* finiteness */
  b[0] = 'X';
  CHECK_STATUS(t3d_index_embedding_parse(b, sizeof b, 5, out, &dim), T3D_ERR_FORMAT); /* magic */

  /* A bad BLOB in the index fails the matrix load naming the analysis, without crashing. */
  char db[512];
  path_in(db, sizeof db, "badblob.db");
  t3d_index *ix = NULL;
  fake_case c;
  CHECK_STATUS(t3d_index_open(db, NULL, &ix), T3D_OK);
  make_case(&c, 0, "20200101", NULL);
  CHECK_STATUS(t3d_index_put(ix, &c.e, NULL), T3D_OK);
  t3d_index_free(ix);
  CHECK_INT_EQ(raw_exec(db, "UPDATE embeddings SET vec = x'5433453110000000'"), SQLITE_OK);
  CHECK_STATUS(t3d_index_open(db, NULL, &ix), T3D_OK);
  t3d_index_matrix *m = NULL;
  if (ix) {
    CHECK_STATUS(t3d_index_matrix_load(ix, "m1", 0, &m), T3D_ERR_FORMAT);
    CHECK(strstr(t3d_error_detail(), "analysis 1") != NULL);
    CHECK(m == NULL);
  }
  t3d_index_free(ix);
}

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* Every mode against a double-precision reference, with the AVX2 kernels and the portable ones. */
static void test_scan(int dim, size_t n)
{
  float *v = malloc(n * (size_t)dim * sizeof *v), q[600];
  int32_t *dates = malloc(n * sizeof *dates);
  for (size_t i = 0; i < n * (size_t)dim; i++) v[i] = (float)(urand() - 0.5);
  for (size_t i = 0; i < n; i++) dates[i] = 20200101 + (int32_t)(i % 5) * 10000;
  t3d_index_matrix *m = NULL;
  CHECK_STATUS(t3d_index_matrix_create(v, NULL, dates, n, dim, 6, &m), T3D_OK);
  if (!m) return;
  const size_t k = 10;
  for (int trial = 0; trial < 5; trial++) {
    for (int i = 0; i < dim; i++) q[i] = (float)(urand() - 0.5);
    /* reference: double cosine, rows dated 2022 or later, row 7 excluded */
    double qn = 0;
    for (int i = 0; i < dim; i++) qn += (double)q[i] * q[i];
    double best[10];
    int64_t bid[10];
    for (size_t j = 0; j < k; j++) best[j] = -INFINITY, bid[j] = -1;
    for (size_t r = 0; r < n; r++) {
      if (dates[r] < 20220101 || r == 7) continue;
      double d = 0, rn = 0;
      for (int i = 0; i < dim; i++) d += (double)v[r * dim + i] * q[i], rn += (double)v[r * dim + i] * v[r * dim + i];
      d /= sqrt(rn * qn);
      if (d <= best[k - 1]) continue;
      size_t j = k - 1;
      while (j > 0 && d > best[j - 1]) best[j] = best[j - 1], bid[j] = bid[j - 1], j--;
      best[j] = d, bid[j] = (int64_t)r;
    }
    t3d_index_scored first[10];
    for (int simd = 1; simd >= 0; simd--) {
      if (!simd) setenv("T3D_INDEX_NO_SIMD", "1", 1);
      for (int mode = 0; mode < 3; mode++) {
        t3d_index_scan_opts o = t3d_index_scan_default_opts();
        o.mode = (t3d_index_scan_mode)mode, o.min_date = 20220101, o.exclude_id = 7, o.oversample = 8;
        t3d_index_scored out[10];
        size_t nout = 0;
        CHECK_STATUS(t3d_index_matrix_search(m, q, k, &o, out, &nout), T3D_OK);
        CHECK_INT_EQ(nout, k);
        for (size_t j = 0; j < nout; j++) {
          if (out[j].id != bid[j])
            fprintf(stderr, "dim %d mode %d simd %d rank %zu: id %lld (%.7f) vs reference %lld (%.7f)\n", dim, mode,
                    simd, j, (long long)out[j].id, out[j].score, (long long)bid[j], best[j]);
          CHECK_INT_EQ(out[j].id, bid[j]);
          /* fp32 sums over <= 600 terms of |x| < 1: 1e-5 covers reordering and rounding */
          CHECK_NEAR(out[j].score, best[j], 1e-5);
          if (mode == 0 && simd) first[j] = out[j];
          if (mode == 0 && !simd) CHECK_NEAR(out[j].score, first[j].score, 1e-5);
        }
      }
      unsetenv("T3D_INDEX_NO_SIMD");
    }
  }
  t3d_index_scan_opts o = t3d_index_scan_default_opts();
  o.mode = T3D_INDEX_SCAN_INT8;
  t3d_index_matrix_free(m);
  CHECK_STATUS(t3d_index_matrix_create(v, NULL, NULL, n, dim, 0, &m), T3D_OK);
  t3d_index_scored out[10];
  size_t nout = 0;
  if (m) CHECK_STATUS(t3d_index_matrix_search(m, q, k, &o, out, &nout), T3D_ERR_UNSUPPORTED);
  t3d_index_matrix_free(m);
  memset(v, 0, (size_t)dim * sizeof *v); /* a zero row has no direction */
  CHECK_STATUS(t3d_index_matrix_create(v, NULL, NULL, n, dim, 0, &m), T3D_ERR_INVALID_ARG);
  free(v), free(dates);
}

int main(void)
{
  const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir, sizeof dir, "%s/t3d-test-index-XXXXXX", tmp);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_create_and_store();
  test_fts_query_and_dates();
  test_migration();
  test_refusals();
  test_embedding_blob();
  test_scan(16, 500);
  test_scan(77, 3000);  /* tails of every kernel */
  test_scan(512, 2000); /* the model's dimension */
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_finish("test-index");
}
