/* The case index on SQLite: opening (permissions, pragmas, schema creation and migration),
 * storing analysed series, counting, checking and case search with RRF fusion.
 * Not the vector scan itself (core/index/scan.c) and not the indexing pipeline (cli/cmd_index.c). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/index/index.h"
#include "core/index/index_internal.h"

/* Prepared statements kept for the handle's life (SQLITE_PREPARE_PERSISTENT). */
enum {
  ST_PATIENT, ST_STUDY, ST_SERIES, ST_DEL_ANALYSIS, ST_ANALYSIS, ST_EMBEDDING, ST_FINDING, ST_ORGAN,
  ST_MASK, ST_DEL_REPORT, ST_REPORT, ST_KNOWN, ST_COUNT
};

static const char *const STMT_SQL[ST_COUNT] = {
  [ST_PATIENT] = "INSERT INTO patients(patient_key, name, birth_date, sex) VALUES(?1, ?2, ?3, ?4) "
                 "ON CONFLICT(patient_key) DO UPDATE SET name = excluded.name, birth_date = excluded.birth_date, "
                 "sex = excluded.sex RETURNING id",
  [ST_STUDY] = "INSERT INTO studies(study_uid, patient_id, study_date, description, accession) VALUES(?1, ?2, ?3, ?4, ?5) "
               "ON CONFLICT(study_uid) DO UPDATE SET patient_id = excluded.patient_id, study_date = excluded.study_date, "
               "description = excluded.description, accession = excluded.accession RETURNING id",
  [ST_SERIES] = "INSERT INTO series(series_uid, study_id, modality, description, path, content_hash, nx, ny, nz, sx, sy, "
                "sz, indexed_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) ON CONFLICT(series_uid) DO UPDATE SET "
                "study_id = excluded.study_id, modality = excluded.modality, description = excluded.description, "
                "path = excluded.path, content_hash = excluded.content_hash, nx = excluded.nx, ny = excluded.ny, "
                "nz = excluded.nz, sx = excluded.sx, sy = excluded.sy, sz = excluded.sz, "
                "indexed_at = excluded.indexed_at RETURNING id",
  [ST_DEL_ANALYSIS] = "DELETE FROM analyses WHERE series_id = ?1 AND model_hash = ?2",
  [ST_ANALYSIS] = "INSERT INTO analyses(series_id, model_name, model_hash, device, ms_preprocess, ms_encoder, "
                  "ms_decoder, ms_total, created_at, geometry_note) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                  "strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?9)",
  [ST_EMBEDDING] = "INSERT INTO embeddings(analysis_id, model_hash, dim, vec) VALUES(?1, ?2, ?3, ?4)",
  [ST_FINDING] = "INSERT INTO findings(analysis_id, name, probability) VALUES(?1, ?2, ?3)",
  [ST_ORGAN] = "INSERT INTO organ_volumes(analysis_id, name, volume_ml) VALUES(?1, ?2, ?3)",
  [ST_MASK] = "INSERT INTO mask_locations(analysis_id, path, format) VALUES(?1, ?2, ?3)",
  [ST_DEL_REPORT] = "DELETE FROM reports WHERE series_id = ?1 AND source = ?2",
  [ST_REPORT] = "INSERT INTO reports(series_id, source, text) VALUES(?1, ?2, ?3)",
  [ST_KNOWN] = "SELECT 1 FROM series s JOIN analyses a ON a.series_id = s.id WHERE s.series_uid = ?1 "
               "AND s.content_hash = ?2 AND a.model_hash = ?3 LIMIT 1",
};

struct t3d_index {
  sqlite3 *db;
  char *path;
  bool read_only;
  int version;
  sqlite3_stmt *stmt[ST_COUNT];
  /* Search matrix of one model hash, loaded on first search, dropped by t3d_index_put. */
  t3d_index_matrix *matrix;
  unsigned matrix_modes;
  char matrix_model[80];
};

/* ---- schema ------------------------------------------------------------------------------ */

/* Version 2, created directly for a new file. Version 1 is this minus the two v2 additions. */
static const char SCHEMA_V2[] =
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
  " ms_decoder REAL, ms_total REAL, created_at TEXT NOT NULL DEFAULT '',"
  " geometry_note TEXT NOT NULL DEFAULT '');"
  "CREATE INDEX analyses_series ON analyses(series_id, model_hash);"
  "CREATE TABLE embeddings(analysis_id INTEGER PRIMARY KEY REFERENCES analyses(id) ON DELETE CASCADE,"
  " model_hash TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);"
  "CREATE INDEX embeddings_model ON embeddings(model_hash);"
  "CREATE TABLE findings(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
  " name TEXT NOT NULL, probability REAL NOT NULL, PRIMARY KEY(analysis_id, name));"
  "CREATE TABLE organ_volumes(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
  " name TEXT NOT NULL, volume_ml REAL NOT NULL, PRIMARY KEY(analysis_id, name));"
  "CREATE TABLE mask_locations(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
  " path TEXT NOT NULL, format TEXT NOT NULL DEFAULT '');"
  "CREATE INDEX mask_locations_analysis ON mask_locations(analysis_id);"
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
  "PRAGMA user_version = 2;";

/* Migration steps: MIGRATIONS[v] takes a version-v file to v+1. */
static const char *const MIGRATIONS[T3D_INDEX_SCHEMA_VERSION] = {
  [1] = "ALTER TABLE analyses ADD COLUMN geometry_note TEXT NOT NULL DEFAULT '';"
        "CREATE TABLE mask_locations(analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,"
        " path TEXT NOT NULL, format TEXT NOT NULL DEFAULT '');"
        "CREATE INDEX mask_locations_analysis ON mask_locations(analysis_id);"
        "PRAGMA user_version = 2;",
};

/* ---- errors -------------------------------------------------------------------------------- */

static t3d_status db_error(const t3d_index *ix, sqlite3 *db, int rc, const char *what)
{
  const char *path = ix && ix->path ? ix->path : "index";
  const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
  case SQLITE_FULL:
    return t3d_error(T3D_ERR_IO, "%s: %s: the index is full (disk full or size limit reached); nothing was changed "
                                 "(sqlite: %s)", path, what, msg);
  case SQLITE_READONLY:
    return t3d_error(T3D_ERR_IO, "%s: %s: the index is read-only (file or folder permissions, read-only medium); "
                                 "nothing was changed (sqlite: %s)", path, what, msg);
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    return t3d_error(T3D_ERR_FORMAT, "%s: %s: not a t3d index or damaged; left as it is -- restore it from a backup or "
                                     "move it aside and index again (sqlite: %s)", path, what, msg);
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return t3d_error(T3D_ERR_IO, "%s: %s: another process holds the index (sqlite: %s)", path, what, msg);
  case SQLITE_NOMEM: return t3d_error(T3D_ERR_NOMEM, "%s: %s: out of memory", path, what);
  case SQLITE_CANTOPEN:
  case SQLITE_IOERR:
  case SQLITE_PERM:
    return t3d_error(T3D_ERR_IO, "%s: %s: %s", path, what, msg);
  default: return t3d_error(T3D_ERR_IO, "%s: %s: sqlite: %s", path, what, msg);
  }
}

static t3d_status exec(t3d_index *ix, const char *sql, const char *what)
{
  int rc = sqlite3_exec(ix->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? T3D_OK : db_error(ix, ix->db, rc, what);
}

static t3d_status get_stmt(t3d_index *ix, int which, sqlite3_stmt **out)
{
  if (!ix->stmt[which]) {
    int rc = sqlite3_prepare_v3(ix->db, STMT_SQL[which], -1, SQLITE_PREPARE_PERSISTENT, &ix->stmt[which], NULL);
    if (rc != SQLITE_OK) return db_error(ix, ix->db, rc, "preparing a statement");
  }
  sqlite3_reset(ix->stmt[which]);
  sqlite3_clear_bindings(ix->stmt[which]);
  *out = ix->stmt[which];
  return T3D_OK;
}

/* Steps a statement to completion (or its first row, when want_id) and resets it. */
static t3d_status step(t3d_index *ix, sqlite3_stmt *st, int64_t *id, const char *what)
{
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && id) *id = sqlite3_column_int64(st, 0);
  while (rc == SQLITE_ROW) rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? T3D_OK : db_error(ix, ix->db, rc, what);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
  sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

/* ---- open ---------------------------------------------------------------------------------- */

t3d_index_open_opts t3d_index_default_opts(void)
{
  t3d_index_open_opts o = {.read_only = false, .busy_timeout_ms = 30000, .max_page_count = 0};
  return o;
}

t3d_status t3d_index_default_path(char *buf, size_t size)
{
  const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
  int n;
  if (xdg && xdg[0] == '/')
    n = snprintf(buf, size, "%s/t3d/index.db", xdg);
  else if (home && home[0] == '/')
    n = snprintf(buf, size, "%s/.local/share/t3d/index.db", home);
  else
    return t3d_error(T3D_ERR_NOT_FOUND, "no index path: set XDG_DATA_HOME or HOME, or give --index PATH");
  if (n < 0 || (size_t)n >= size) return t3d_error(T3D_ERR_INVALID_ARG, "index path too long");
  return T3D_OK;
}

/* mkdir -p of path's folder, new folders mode 0700. */
static t3d_status make_parent(const char *path)
{
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) return t3d_error(T3D_ERR_INVALID_ARG, "path too long");
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return T3D_OK;
  *slash = '\0';
  for (char *p = dir + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return t3d_error(T3D_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
      *p = c;
      if (c == '\0') break;
    }
  }
  return T3D_OK;
}

/* The database, -wal and -shm must not be readable by group or others. The file is created
 * 0600 before SQLite opens it, and SQLite gives -wal/-shm the database's mode; this checks
 * both and narrows anything wider (an older file, a copy). */
static t3d_status check_modes(const t3d_index *ix)
{
  static const char *const suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s%s", ix->path, suffix[i]);
    if (stat(p, &sb) != 0) continue;
    if ((sb.st_mode & 077) != 0 && chmod(p, sb.st_mode & 0700) != 0)
      return t3d_error(T3D_ERR_IO, "%s is readable by others (mode %03o) and cannot be narrowed to 0600: %s", p,
                       (unsigned)(sb.st_mode & 0777), strerror(errno));
  }
  return T3D_OK;
}

static t3d_status set_wal(t3d_index *ix)
{
  /* Changing the journal mode needs a moment alone with the file; the busy handler does not
   * cover it, so a second opener racing the first retries here. */
  for (int tries = 0;; tries++) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    bool wal = rc == SQLITE_ROW && sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (wal) return T3D_OK;
    if (rc == SQLITE_ROW)
      return t3d_error(T3D_ERR_IO, "%s: cannot switch the index to WAL mode (file system without shared memory?)",
                       ix->path);
    if ((rc & 0xff) != SQLITE_BUSY || tries > 300) return db_error(ix, ix->db, rc, "enabling WAL");
    sqlite3_sleep(20);
  }
}

static t3d_status read_version(t3d_index *ix, int *v)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? T3D_OK : db_error(ix, ix->db, rc, "reading the schema version");
}

static t3d_status refuse_newer(const t3d_index *ix, int v)
{
  return t3d_error(T3D_ERR_UNSUPPORTED,
                   "%s was written by a newer t3d (index schema %d; this t3d knows up to %d): upgrade t3d, or give "
                   "another --index", ix->path, v, T3D_INDEX_SCHEMA_VERSION);
}

/* Creates or migrates the schema inside one write transaction, re-reading the version under
 * the lock so two processes opening a new file at once create it once. */
static t3d_status ensure_schema(t3d_index *ix)
{
  int v = 0;
  t3d_status s = read_version(ix, &v);
  if (s != T3D_OK) return s;
  if (v > T3D_INDEX_SCHEMA_VERSION) return refuse_newer(ix, v);
  if (v == T3D_INDEX_SCHEMA_VERSION || ix->read_only) {
    ix->version = v;
    if (ix->read_only && v != T3D_INDEX_SCHEMA_VERSION)
      return t3d_error(T3D_ERR_UNSUPPORTED, "%s: index schema %d needs migrating to %d; open it once for writing",
                       ix->path, v, T3D_INDEX_SCHEMA_VERSION);
    return T3D_OK;
  }
  /* foreign keys cannot be switched inside a transaction; migrations do not need them off. */
  if ((s = exec(ix, "BEGIN IMMEDIATE", "starting the schema update")) != T3D_OK) return s;
  if ((s = read_version(ix, &v)) != T3D_OK) goto rollback;
  if (v > T3D_INDEX_SCHEMA_VERSION) {
    s = refuse_newer(ix, v);
    goto rollback;
  }
  if (v == 0) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
    int ntables = -1;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) ntables = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (ntables != 0) {
      s = t3d_error(T3D_ERR_FORMAT, "%s: an SQLite database that is not a t3d index (schema version 0, %d objects); "
                                    "left as it is", ix->path, ntables);
      goto rollback;
    }
    if ((s = exec(ix, SCHEMA_V2, "creating the index")) != T3D_OK) goto rollback;
    v = T3D_INDEX_SCHEMA_VERSION;
  }
  for (; v < T3D_INDEX_SCHEMA_VERSION; v++)
    if ((s = exec(ix, MIGRATIONS[v], "migrating the index schema")) != T3D_OK) {
      t3d_error_prefix("from version %d: ", v);
      goto rollback;
    }
  if ((s = exec(ix, "COMMIT", "committing the schema update")) != T3D_OK) goto rollback;
  ix->version = v;
  return T3D_OK;
rollback:
  sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
  return s;
}

t3d_status t3d_index_open(const char *path, const t3d_index_open_opts *opts, t3d_index **out)
{
  t3d_index_open_opts o = opts ? *opts : t3d_index_default_opts();
  t3d_index *ix = NULL;
  t3d_status s = T3D_OK;
  int fd = -1;
  bool fresh = false;
  *out = NULL;
  if (!path || !*path) return t3d_error(T3D_ERR_INVALID_ARG, "no index path");
  ix = calloc(1, sizeof *ix);
  if (!ix || !(ix->path = strdup(path))) {
    s = t3d_error(T3D_ERR_NOMEM, "index handle");
    goto cleanup;
  }
  ix->read_only = o.read_only;
  if (o.read_only) {
    if (access(path, F_OK) != 0) {
      s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no index there (run `t3d index` first)", path);
      goto cleanup;
    }
  } else {
    if ((s = make_parent(path)) != T3D_OK) goto cleanup;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      s = t3d_error(T3D_ERR_IO, "%s: cannot open the index for writing: %s", path, strerror(errno));
      goto cleanup;
    }
    struct stat sb;
    fresh = fstat(fd, &sb) == 0 && sb.st_size == 0;
    close(fd);
  }
  int flags = o.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  int rc = sqlite3_open_v2(path, &ix->db, flags, NULL);
  if (rc != SQLITE_OK) {
    s = db_error(ix, ix->db, rc, "opening");
    goto cleanup;
  }
  sqlite3_extended_result_codes(ix->db, 1);
  sqlite3_busy_timeout(ix->db, o.busy_timeout_ms > 0 ? o.busy_timeout_ms : 0);
  /* 16 KiB pages for a new file: an embedding row of dimension 512 takes ~2 KiB, so 4 KiB
   * pages would hold one row each and double the file. Only possible before WAL is set. */
  if (fresh && (s = exec(ix, "PRAGMA page_size = 16384", "setting the page size")) != T3D_OK) goto cleanup;
  if (!o.read_only && (s = set_wal(ix)) != T3D_OK) goto cleanup;
  if ((s = exec(ix, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", "setting pragmas")) != T3D_OK)
    goto cleanup;
  if (o.max_page_count > 0) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)o.max_page_count);
    if ((s = exec(ix, sql, "setting the size limit")) != T3D_OK) goto cleanup;
  }
  if ((s = ensure_schema(ix)) != T3D_OK) goto cleanup;
  if (!o.read_only && (s = check_modes(ix)) != T3D_OK) goto cleanup;
  *out = ix;
  ix = NULL;
cleanup:
  t3d_index_free(ix);
  return s;
}

void t3d_index_free(t3d_index *ix)
{
  if (!ix) return;
  for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(ix->stmt[i]);
  t3d_index_matrix_free(ix->matrix);
  sqlite3_close(ix->db);
  free(ix->path);
  free(ix);
}

int t3d_index_schema_version(const t3d_index *ix)
{
  return ix->version;
}

/* ---- storing ------------------------------------------------------------------------------- */

static t3d_status put_one(t3d_index *ix, const t3d_index_entry *e, int64_t *analysis_id)
{
  const t3d_volume_meta *m = e->meta;
  sqlite3_stmt *st;
  int64_t patient = 0, study = 0, series = 0, analysis = 0;
  char key[T3D_META_MAX + 16];
  void *blob = NULL;
  t3d_status s;

  if (m->patient_id[0])
    snprintf(key, sizeof key, "%s", m->patient_id);
  else
    snprintf(key, sizeof key, "(no id) %s", m->patient_name);
  if ((s = get_stmt(ix, ST_PATIENT, &st)) != T3D_OK) return s;
  bind_text(st, 1, key), bind_text(st, 2, m->patient_name), bind_text(st, 3, m->patient_birth_date);
  bind_text(st, 4, m->patient_sex);
  if ((s = step(ix, st, &patient, "storing the patient")) != T3D_OK) return s;

  if ((s = get_stmt(ix, ST_STUDY, &st)) != T3D_OK) return s;
  bind_text(st, 1, m->study_uid[0] ? m->study_uid : m->series_uid), sqlite3_bind_int64(st, 2, patient);
  bind_text(st, 3, m->study_date), bind_text(st, 4, m->study_description), bind_text(st, 5, m->accession_number);
  if ((s = step(ix, st, &study, "storing the study")) != T3D_OK) return s;

  if ((s = get_stmt(ix, ST_SERIES, &st)) != T3D_OK) return s;
  bind_text(st, 1, m->series_uid), sqlite3_bind_int64(st, 2, study), bind_text(st, 3, m->modality);
  bind_text(st, 4, m->series_description), bind_text(st, 5, e->source_path), bind_text(st, 6, e->content_hash);
  for (int i = 0; i < 3; i++) {
    sqlite3_bind_int64(st, 7 + i, e->shape[i]);
    sqlite3_bind_double(st, 10 + i, e->spacing[i]);
  }
  if ((s = step(ix, st, &series, "storing the series")) != T3D_OK) return s;

  if ((s = get_stmt(ix, ST_DEL_ANALYSIS, &st)) != T3D_OK) return s;
  sqlite3_bind_int64(st, 1, series), bind_text(st, 2, e->model_hash);
  if ((s = step(ix, st, NULL, "replacing the old analysis")) != T3D_OK) return s;

  if ((s = get_stmt(ix, ST_ANALYSIS, &st)) != T3D_OK) return s;
  sqlite3_bind_int64(st, 1, series), bind_text(st, 2, e->model_name), bind_text(st, 3, e->model_hash);
  bind_text(st, 4, e->device), sqlite3_bind_double(st, 5, e->ms_preprocess), sqlite3_bind_double(st, 6, e->ms_encoder);
  sqlite3_bind_double(st, 7, e->ms_decoder), sqlite3_bind_double(st, 8, e->ms_total);
  bind_text(st, 9, e->geometry_note);
  if ((s = step(ix, st, NULL, "storing the analysis")) != T3D_OK) return s;
  analysis = sqlite3_last_insert_rowid(ix->db);

  if (e->embedding && e->dim > 0) {
    size_t n = t3d_index_embedding_blob_size(e->dim);
    if (!(blob = malloc(n))) return t3d_error(T3D_ERR_NOMEM, "embedding blob");
    t3d_index_embedding_encode(e->embedding, e->dim, blob);
    if ((s = get_stmt(ix, ST_EMBEDDING, &st)) != T3D_OK) goto cleanup;
    sqlite3_bind_int64(st, 1, analysis), bind_text(st, 2, e->model_hash), sqlite3_bind_int(st, 3, e->dim);
    sqlite3_bind_blob(st, 4, blob, (int)n, SQLITE_STATIC);
    if ((s = step(ix, st, NULL, "storing the embedding")) != T3D_OK) goto cleanup;
  }
  for (size_t i = 0; i < e->nfindings; i++) {
    if ((s = get_stmt(ix, ST_FINDING, &st)) != T3D_OK) goto cleanup;
    sqlite3_bind_int64(st, 1, analysis), bind_text(st, 2, e->findings[i].name);
    sqlite3_bind_double(st, 3, e->findings[i].value);
    if ((s = step(ix, st, NULL, "storing findings")) != T3D_OK) goto cleanup;
  }
  for (size_t i = 0; i < e->norgans; i++) {
    if ((s = get_stmt(ix, ST_ORGAN, &st)) != T3D_OK) goto cleanup;
    sqlite3_bind_int64(st, 1, analysis), bind_text(st, 2, e->organ_ml[i].name);
    sqlite3_bind_double(st, 3, e->organ_ml[i].value);
    if ((s = step(ix, st, NULL, "storing organ volumes")) != T3D_OK) goto cleanup;
  }
  if (e->mask_path) {
    if ((s = get_stmt(ix, ST_MASK, &st)) != T3D_OK) goto cleanup;
    sqlite3_bind_int64(st, 1, analysis), bind_text(st, 2, e->mask_path), bind_text(st, 3, e->mask_format);
    if ((s = step(ix, st, NULL, "storing the mask location")) != T3D_OK) goto cleanup;
  }
  if (e->report_text) {
    if ((s = get_stmt(ix, ST_DEL_REPORT, &st)) != T3D_OK) goto cleanup;
    sqlite3_bind_int64(st, 1, series), bind_text(st, 2, e->report_source);
    if ((s = step(ix, st, NULL, "replacing the report")) != T3D_OK) goto cleanup;
    if ((s = get_stmt(ix, ST_REPORT, &st)) != T3D_OK) goto cleanup;
    sqlite3_bind_int64(st, 1, series), bind_text(st, 2, e->report_source), bind_text(st, 3, e->report_text);
    if ((s = step(ix, st, NULL, "storing the report")) != T3D_OK) goto cleanup;
  }
  if (analysis_id) *analysis_id = analysis;
cleanup:
  free(blob);
  return s;
}

static t3d_status check_entry(const t3d_index_entry *e)
{
  if (!e || !e->meta || !e->meta->series_uid[0])
    return t3d_error(T3D_ERR_INVALID_ARG, "index entry without a series UID");
  if (!e->model_hash || !*e->model_hash) return t3d_error(T3D_ERR_INVALID_ARG, "index entry without a model hash");
  if (e->embedding && (e->dim <= 0 || e->dim > T3D_INDEX_MAX_DIM))
    return t3d_error(T3D_ERR_INVALID_ARG, "embedding dimension %d outside 1..%d", e->dim, T3D_INDEX_MAX_DIM);
  for (int i = 0; e->embedding && i < e->dim; i++)
    if (!isfinite(e->embedding[i]))
      return t3d_error(T3D_ERR_INVALID_ARG, "series %s: embedding value %d is not finite", e->meta->series_uid, i);
  return T3D_OK;
}

t3d_status t3d_index_put_many(t3d_index *ix, const t3d_index_entry *e, size_t n)
{
  t3d_status s;
  if (ix->read_only)
    return t3d_error(T3D_ERR_IO, "%s: opened read-only; nothing was changed", ix->path);
  for (size_t i = 0; i < n; i++) T3D_TRY(check_entry(&e[i]));
  if ((s = exec(ix, "BEGIN IMMEDIATE", "starting a write")) != T3D_OK) return s;
  for (size_t i = 0; i < n; i++)
    if ((s = put_one(ix, &e[i], NULL)) != T3D_OK) goto rollback;
  if ((s = exec(ix, "COMMIT", "committing")) != T3D_OK) goto rollback;
  t3d_index_matrix_free(ix->matrix);
  ix->matrix = NULL;
  return T3D_OK;
rollback:
  sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
  return s;
}

t3d_status t3d_index_put(t3d_index *ix, const t3d_index_entry *e, int64_t *analysis_id)
{
  t3d_status s;
  if (ix->read_only)
    return t3d_error(T3D_ERR_IO, "%s: opened read-only; nothing was changed", ix->path);
  T3D_TRY(check_entry(e));
  if ((s = exec(ix, "BEGIN IMMEDIATE", "starting a write")) != T3D_OK) return s;
  if ((s = put_one(ix, e, analysis_id)) != T3D_OK) goto rollback;
  if ((s = exec(ix, "COMMIT", "committing")) != T3D_OK) goto rollback;
  t3d_index_matrix_free(ix->matrix);
  ix->matrix = NULL;
  return T3D_OK;
rollback:
  sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
  return s;
}

t3d_status t3d_index_is_known(t3d_index *ix, const char *series_uid, const char *content_hash,
                              const char *model_hash, bool *known)
{
  sqlite3_stmt *st;
  *known = false;
  T3D_TRY(get_stmt(ix, ST_KNOWN, &st));
  bind_text(st, 1, series_uid), bind_text(st, 2, content_hash), bind_text(st, 3, model_hash);
  int rc = sqlite3_step(st);
  *known = rc == SQLITE_ROW;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? T3D_OK : db_error(ix, ix->db, rc, "looking up a series");
}

/* ---- reading ------------------------------------------------------------------------------- */

static t3d_status query_int64(t3d_index *ix, const char *sql, int64_t *out)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(ix->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? T3D_OK : db_error(ix, ix->db, rc, "reading counts");
}

t3d_status t3d_index_count(t3d_index *ix, t3d_index_counts *c)
{
  memset(c, 0, sizeof *c);
  T3D_TRY(query_int64(ix, "SELECT count(*) FROM patients", &c->patients));
  T3D_TRY(query_int64(ix, "SELECT count(*) FROM studies", &c->studies));
  T3D_TRY(query_int64(ix, "SELECT count(*) FROM series", &c->series));
  T3D_TRY(query_int64(ix, "SELECT count(*) FROM analyses", &c->analyses));
  T3D_TRY(query_int64(ix, "SELECT count(*) FROM embeddings", &c->embeddings));
  T3D_TRY(query_int64(ix, "SELECT count(*) FROM findings", &c->findings));
  T3D_TRY(query_int64(ix, "SELECT count(*) FROM reports", &c->reports));
  return T3D_OK;
}

t3d_status t3d_index_check(t3d_index *ix)
{
  sqlite3_stmt *st = NULL;
  t3d_status s = T3D_OK;
  int rc = sqlite3_prepare_v2(ix->db, "PRAGMA integrity_check", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    s = db_error(ix, ix->db, rc, "integrity check");
  } else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
    s = t3d_error(T3D_ERR_FORMAT, "%s: integrity check: %s", ix->path, (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  if (s != T3D_OK) return s;
  rc = sqlite3_prepare_v2(ix->db, "PRAGMA foreign_key_check", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    s = t3d_error(T3D_ERR_FORMAT, "%s: foreign key check: table %s row %lld refers to a missing %s", ix->path,
                  (const char *)sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1),
                  (const char *)sqlite3_column_text(st, 2));
  else if (rc != SQLITE_DONE)
    s = db_error(ix, ix->db, rc, "foreign key check");
  sqlite3_finalize(st);
  return s;
}

t3d_status t3d_index_series_embedding(t3d_index *ix, const char *series_uid, float *out, int *dim,
                                      char *model_hash, size_t model_hash_size)
{
  sqlite3_stmt *st = NULL;
  t3d_status s;
  int rc = sqlite3_prepare_v2(ix->db,
                              "SELECT e.vec, e.dim, e.model_hash, a.id FROM series s JOIN analyses a ON a.series_id = s.id "
                              "JOIN embeddings e ON e.analysis_id = a.id WHERE s.series_uid = ?1 ORDER BY a.id DESC LIMIT 1",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) return db_error(ix, ix->db, rc, "looking up an embedding");
  bind_text(st, 1, series_uid);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    s = t3d_index_embedding_parse(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                                  sqlite3_column_int(st, 1), out, dim);
    if (s != T3D_OK) t3d_error_prefix("%s: analysis %lld: ", ix->path, (long long)sqlite3_column_int64(st, 3));
    snprintf(model_hash, model_hash_size, "%s", (const char *)sqlite3_column_text(st, 2));
  } else if (rc == SQLITE_DONE) {
    s = t3d_error(T3D_ERR_NOT_FOUND, "series %s is not in the index (or has no embedding)", series_uid);
  } else {
    s = db_error(ix, ix->db, rc, "looking up an embedding");
  }
  sqlite3_finalize(st);
  return s;
}

/* ---- embeddings, hashes, small parsers ----------------------------------------------------- */

size_t t3d_index_embedding_blob_size(int dim)
{
  return 8 + 4 * (size_t)dim;
}

void t3d_index_embedding_encode(const float *v, int dim, void *out)
{
  uint8_t *b = out;
  memcpy(b, "T3E1", 4);
  for (int i = 0; i < 4; i++) b[4 + i] = (uint8_t)((uint32_t)dim >> (8 * i));
  for (int k = 0; k < dim; k++) {
    uint32_t u;
    memcpy(&u, &v[k], 4);
    for (int i = 0; i < 4; i++) b[8 + 4 * k + i] = (uint8_t)(u >> (8 * i));
  }
}

t3d_status t3d_index_embedding_parse(const void *blob, size_t len, int expect_dim, float *out, int *dim)
{
  const uint8_t *b = blob;
  if (!b || len < 8 || memcmp(b, "T3E1", 4) != 0)
    return t3d_error(T3D_ERR_FORMAT, "embedding: not a t3d embedding (%zu bytes, bad magic)", len);
  uint32_t d = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
  if (d == 0 || d > T3D_INDEX_MAX_DIM)
    return t3d_error(T3D_ERR_FORMAT, "embedding: dimension %u outside 1..%d", d, T3D_INDEX_MAX_DIM);
  if (len != t3d_index_embedding_blob_size((int)d))
    return t3d_error(T3D_ERR_FORMAT, "embedding: %zu bytes for dimension %u (want %zu)", len, d,
                     t3d_index_embedding_blob_size((int)d));
  if (expect_dim > 0 && (int)d != expect_dim)
    return t3d_error(T3D_ERR_FORMAT, "embedding: dimension %u, the row says %d", d, expect_dim);
  for (uint32_t k = 0; k < d; k++) {
    const uint8_t *p = b + 8 + 4 * (size_t)k;
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    memcpy(&out[k], &u, 4);
    if (!isfinite(out[k])) return t3d_error(T3D_ERR_FORMAT, "embedding: value %u is not finite", k);
  }
  *dim = (int)d;
  return T3D_OK;
}

t3d_status t3d_index_hash_files(const char *const *paths, size_t n, char hex[17])
{
  uint64_t h = 0xcbf29ce484222325ull;
  const uint64_t prime = 0x100000001b3ull;
  enum { BUF = 1 << 16 };
  uint8_t *buf = malloc(BUF);
  t3d_status s = T3D_OK;
  if (!buf) return t3d_error(T3D_ERR_NOMEM, "hash buffer");
  for (size_t i = 0; i < n; i++) {
    FILE *f = fopen(paths[i], "rb");
    uint64_t size = 0;
    if (!f) {
      s = t3d_error(T3D_ERR_IO, "%s: %s", paths[i], strerror(errno));
      goto cleanup;
    }
    size_t got;
    while ((got = fread(buf, 1, BUF, f)) > 0) {
      size_t k = 0;
      for (; k + 8 <= got; k += 8) { /* 8-byte words: FNV-1a's structure at 8x its byte speed */
        uint64_t w;
        memcpy(&w, buf + k, 8);
        h = (h ^ w) * prime;
      }
      for (; k < got; k++) h = (h ^ buf[k]) * prime;
      size += got;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
      s = t3d_error(T3D_ERR_IO, "%s: read error", paths[i]);
      goto cleanup;
    }
    h = (h ^ size) * prime; /* file boundaries count */
  }
  snprintf(hex, 17, "%016llx", (unsigned long long)h);
cleanup:
  free(buf);
  return s;
}

static bool isalnum_ascii(unsigned char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

t3d_status t3d_index_fts_query(const char *text, char *buf, size_t size)
{
  size_t o = 0;
  const unsigned char *p = (const unsigned char *)(text ? text : "");
  if (size == 0) return t3d_error(T3D_ERR_INVALID_ARG, "no room for the text query");
  buf[0] = '\0';
  while (*p) {
    while (*p && !(isalnum_ascii(*p) || *p >= 0x80)) p++;
    if (!*p) break;
    const unsigned char *w = p;
    while (*p && (isalnum_ascii(*p) || *p >= 0x80)) p++;
    size_t wl = (size_t)(p - w), need = wl + 2 + (o ? 4 : 0);
    if (o + need + 1 > size) return t3d_error(T3D_ERR_INVALID_ARG, "search text too long (%zu bytes max)", size);
    if (o) memcpy(buf + o, " OR ", 4), o += 4;
    buf[o++] = '"';
    memcpy(buf + o, w, wl), o += wl;
    buf[o++] = '"';
    buf[o] = '\0';
  }
  return T3D_OK;
}

t3d_status t3d_index_parse_date(const char *s, int32_t *out)
{
  int y, m, d, n = 0;
  size_t len = s ? strlen(s) : 0;
  bool ok = false;
  if (len == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) == 3 && n == 10) ok = true;
  if (len == 8 && sscanf(s, "%4d%2d%2d%n", &y, &m, &d, &n) == 3 && n == 8) ok = true;
  for (size_t i = 0; ok && i < len; i++)
    if (!(s[i] >= '0' && s[i] <= '9') && !(len == 10 && (i == 4 || i == 7))) ok = false;
  if (!ok || m < 1 || m > 12 || d < 1 || d > 31)
    return t3d_error(T3D_ERR_INVALID_ARG, "'%s' is not a date (YYYY-MM-DD or YYYYMMDD)", s ? s : "");
  *out = y * 10000 + m * 100 + d;
  return T3D_OK;
}

/* ---- search -------------------------------------------------------------------------------- */

t3d_status t3d_index_matrix_load(t3d_index *ix, const char *model_hash, unsigned modes_mask, t3d_index_matrix **out)
{
  sqlite3_stmt *st = NULL;
  float *v = NULL;
  int64_t *ids = NULL;
  int32_t *dates = NULL;
  size_t n = 0, cap = 0;
  int dim = 0, rc;
  t3d_status s = T3D_OK;
  *out = NULL;
  /* One read transaction, so the count and the rows agree; sized once (a million rows of 512
   * are 2 GB: no doubling copies). */
  if ((s = exec(ix, "BEGIN", "loading embeddings")) != T3D_OK) return s;
  rc = sqlite3_prepare_v2(ix->db, "SELECT count(*), max(dim) FROM embeddings WHERE model_hash = ?1", -1, &st, NULL);
  if (rc == SQLITE_OK) {
    bind_text(st, 1, model_hash);
    rc = sqlite3_step(st);
  }
  if (rc != SQLITE_ROW) {
    s = db_error(ix, ix->db, rc, "counting embeddings");
    goto cleanup;
  }
  cap = (size_t)sqlite3_column_int64(st, 0);
  dim = sqlite3_column_int(st, 1);
  sqlite3_finalize(st);
  st = NULL;
  if (cap == 0) {
    s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no embeddings of model %s in the index (index some series with it first)",
                  ix->path, model_hash);
    goto cleanup;
  }
  if (dim <= 0 || dim > T3D_INDEX_MAX_DIM) {
    s = t3d_error(T3D_ERR_FORMAT, "%s: embedding dimension %d outside 1..%d", ix->path, dim, T3D_INDEX_MAX_DIM);
    goto cleanup;
  }
  if (!(v = malloc(cap * (size_t)dim * sizeof *v)) || !(ids = malloc(cap * sizeof *ids)) ||
      !(dates = calloc(cap, sizeof *dates))) {
    s = t3d_error(T3D_ERR_NOMEM, "%zu embeddings of dimension %d", cap, dim);
    goto cleanup;
  }
  rc = sqlite3_prepare_v2(ix->db,
                          "SELECT e.analysis_id, e.dim, e.vec, st.study_date FROM embeddings e "
                          "JOIN analyses a ON a.id = e.analysis_id JOIN series s ON s.id = a.series_id "
                          "JOIN studies st ON st.id = s.study_id WHERE e.model_hash = ?1 ORDER BY e.analysis_id",
                          -1, &st, NULL);
  if (rc != SQLITE_OK) {
    s = db_error(ix, ix->db, rc, "loading embeddings");
    goto cleanup;
  }
  bind_text(st, 1, model_hash);
  while (n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    int got = 0;
    if (sqlite3_column_int(st, 1) != dim) {
      s = t3d_error(T3D_ERR_FORMAT, "%s: analysis %lld: embedding dimension %d, others of model %s have %d", ix->path,
                    (long long)id, sqlite3_column_int(st, 1), model_hash, dim);
      goto cleanup;
    }
    s = t3d_index_embedding_parse(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), dim,
                                  v + n * (size_t)dim, &got);
    if (s != T3D_OK) {
      t3d_error_prefix("%s: analysis %lld: ", ix->path, (long long)id);
      goto cleanup;
    }
    const char *date = (const char *)sqlite3_column_text(st, 3);
    int32_t dv = 0;
    if (date && *date && t3d_index_parse_date(date, &dv) != T3D_OK) dv = 0, t3d_error_clear();
    ids[n] = id, dates[n] = dv;
    n++;
  }
  if (n < cap && rc != SQLITE_DONE) {
    s = db_error(ix, ix->db, rc, "loading embeddings");
    goto cleanup;
  }
  if (n == 0) { /* embeddings without their analysis rows: foreign keys were off when written */
    s = t3d_error(T3D_ERR_FORMAT, "%s: embeddings of model %s have no analyses (run t3d_index_check)", ix->path,
                  model_hash);
    goto cleanup;
  }
  s = t3d_index_matrix_adopt(v, ids, dates, n, dim, modes_mask, out);
  v = NULL, ids = NULL, dates = NULL;
cleanup:
  sqlite3_finalize(st);
  sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL);
  free(v), free(ids), free(dates);
  return s;
}

t3d_index_search_opts t3d_index_search_default_opts(void)
{
  t3d_index_search_opts o = {.k = 10, .since = NULL, .scan = t3d_index_scan_default_opts(), .exclude_series_uid = NULL};
  return o;
}

typedef struct {
  int64_t id;
  double cosine, bm25;
  int vrank, trank;
} fused;

static fused *fused_find(fused *f, size_t n, int64_t id)
{
  for (size_t i = 0; i < n; i++)
    if (f[i].id == id) return &f[i];
  return NULL;
}

static double rrf(const fused *f)
{
  return (f->vrank ? 1.0 / (T3D_INDEX_RRF_K + f->vrank) : 0) + (f->trank ? 1.0 / (T3D_INDEX_RRF_K + f->trank) : 0);
}

static int cmp_fused(const void *a, const void *b)
{
  const fused *x = a, *y = b;
  double sx = rrf(x), sy = rrf(y);
  if (sx != sy) return sx > sy ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

static t3d_status fill_hit(t3d_index *ix, const fused *f, t3d_index_hit *h)
{
  sqlite3_stmt *st = NULL;
  memset(h, 0, sizeof *h);
  int rc = sqlite3_prepare_v2(ix->db,
                              "SELECT s.series_uid, st.study_uid, p.patient_key, st.study_date, s.description, s.path "
                              "FROM analyses a JOIN series s ON s.id = a.series_id JOIN studies st ON st.id = s.study_id "
                              "JOIN patients p ON p.id = st.patient_id WHERE a.id = ?1",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, f->id);
    rc = sqlite3_step(st);
  }
  if (rc == SQLITE_ROW) {
#define COL(i) ((const char *)sqlite3_column_text(st, i) ? (const char *)sqlite3_column_text(st, i) : "")
    snprintf(h->series_uid, sizeof h->series_uid, "%s", COL(0));
    snprintf(h->study_uid, sizeof h->study_uid, "%s", COL(1));
    snprintf(h->patient_key, sizeof h->patient_key, "%s", COL(2));
    snprintf(h->study_date, sizeof h->study_date, "%s", COL(3));
    snprintf(h->description, sizeof h->description, "%s", COL(4));
    snprintf(h->path, sizeof h->path, "%s", COL(5));
#undef COL
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(ix, ix->db, rc, "reading a hit");
  h->analysis_id = f->id;
  h->score = rrf(f);
  h->cosine = f->vrank ? f->cosine : NAN;
  h->bm25 = f->trank ? f->bm25 : NAN;
  h->vector_rank = f->vrank, h->text_rank = f->trank;
  return T3D_OK;
}

t3d_status t3d_index_search(t3d_index *ix, const char *model_hash, const float *query, int dim, const char *text,
                            const t3d_index_search_opts *opts, t3d_index_hit **hits, size_t *nhits)
{
  t3d_index_search_opts o = opts ? *opts : t3d_index_search_default_opts();
  size_t k = o.k ? o.k : 10, list = k * 4 > 100 ? k * 4 : 100, nf = 0;
  fused *f = NULL;
  t3d_index_scored *sc = NULL;
  t3d_index_hit *out = NULL;
  sqlite3_stmt *st = NULL;
  char *fts = NULL;
  int32_t since = 0;
  int64_t exclude = -1;
  t3d_status s = T3D_OK;
  *hits = NULL, *nhits = 0;

  if (o.since && (s = t3d_index_parse_date(o.since, &since)) != T3D_OK) return s;
  if (!(f = calloc(2 * list, sizeof *f)) || !(sc = calloc(list, sizeof *sc))) {
    s = t3d_error(T3D_ERR_NOMEM, "search lists");
    goto cleanup;
  }
  if (o.exclude_series_uid) {
    int rc = sqlite3_prepare_v2(ix->db,
                                "SELECT a.id FROM analyses a JOIN series s ON s.id = a.series_id "
                                "WHERE s.series_uid = ?1 AND a.model_hash = ?2",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
      bind_text(st, 1, o.exclude_series_uid), bind_text(st, 2, model_hash);
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) exclude = sqlite3_column_int64(st, 0), rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
      s = db_error(ix, ix->db, rc, "looking up the query series");
      goto cleanup;
    }
  }
  if (query) {
    unsigned need = 1u << o.scan.mode;
    if (!ix->matrix || strcmp(ix->matrix_model, model_hash) != 0 || (ix->matrix_modes & need) != need) {
      t3d_index_matrix_free(ix->matrix);
      ix->matrix = NULL;
      if ((s = t3d_index_matrix_load(ix, model_hash, need, &ix->matrix)) != T3D_OK) {
        if (s != T3D_ERR_NOT_FOUND) goto cleanup;
        t3d_error_clear(); /* nothing stored yet: the text list may still answer */
        s = T3D_OK;
      } else {
        ix->matrix_modes = need;
        snprintf(ix->matrix_model, sizeof ix->matrix_model, "%s", model_hash);
      }
    }
    if (ix->matrix) {
      if (t3d_index_matrix_dim(ix->matrix) != dim) {
        s = t3d_error(T3D_ERR_SHAPE, "query dimension %d, stored embeddings of model %s have %d", dim, model_hash,
                      t3d_index_matrix_dim(ix->matrix));
        goto cleanup;
      }
      t3d_index_scan_opts so = o.scan;
      so.min_date = since;
      so.exclude_id = exclude;
      size_t nsc = 0;
      if ((s = t3d_index_matrix_search(ix->matrix, query, list, &so, sc, &nsc)) != T3D_OK) goto cleanup;
      for (size_t i = 0; i < nsc; i++) {
        f[nf].id = sc[i].id, f[nf].cosine = sc[i].score, f[nf].vrank = (int)i + 1;
        nf++;
      }
    }
  }
  if (text) {
    size_t fl = strlen(text) * 3 + 16;
    if (!(fts = malloc(fl))) {
      s = t3d_error(T3D_ERR_NOMEM, "text query");
      goto cleanup;
    }
    if ((s = t3d_index_fts_query(text, fts, fl)) != T3D_OK) goto cleanup;
  }
  if (fts && fts[0]) {
    /* Every value is bound: the user's words reach FTS5 only as quoted phrases (see above). */
    int rc = sqlite3_prepare_v2(
      ix->db,
      "WITH m AS MATERIALIZED (SELECT rowid AS rid, bm25(reports_fts) AS b FROM reports_fts WHERE reports_fts MATCH ?1) "
      "SELECT a.id, min(m.b) AS best FROM m JOIN reports r ON r.id = m.rid JOIN series s ON s.id = r.series_id "
      "JOIN studies st ON st.id = s.study_id JOIN analyses a ON a.series_id = s.id AND a.model_hash = ?2 "
      "WHERE (?3 = 0 OR CAST(replace(st.study_date, '-', '') AS INTEGER) >= ?3) AND a.id != ?4 "
      "GROUP BY a.id ORDER BY best, a.id LIMIT ?5",
      -1, &st, NULL);
    if (rc == SQLITE_OK) {
      bind_text(st, 1, fts), bind_text(st, 2, model_hash), sqlite3_bind_int(st, 3, since);
      sqlite3_bind_int64(st, 4, exclude), sqlite3_bind_int64(st, 5, (sqlite3_int64)list);
      int rank = 0;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        fused *e = fused_find(f, nf, id);
        if (!e) e = &f[nf++], e->id = id;
        e->trank = ++rank, e->bm25 = sqlite3_column_double(st, 1);
      }
    }
    if (rc != SQLITE_DONE) {
      s = db_error(ix, ix->db, rc, "searching reports");
      goto cleanup;
    }
  }
  qsort(f, nf, sizeof *f, cmp_fused);
  size_t n = nf < k ? nf : k;
  if (n && !(out = calloc(n, sizeof *out))) {
    s = t3d_error(T3D_ERR_NOMEM, "search hits");
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++)
    if ((s = fill_hit(ix, &f[i], &out[i])) != T3D_OK) goto cleanup;
  *hits = out, *nhits = n;
  out = NULL;
cleanup:
  sqlite3_finalize(st);
  free(out), free(f), free(sc), free(fts);
  return s;
}

/* ---- a stored case as a report's neighbour ---------------------------------------------- */

void t3d_index_case_free(t3d_index_case *c)
{
  if (!c) return;
  for (size_t i = 0; i < c->nfindings; i++) free(c->findings[i]);
  free(c->findings);
  free(c->text);
  free(c);
}

t3d_status t3d_index_case_get(t3d_index *ix, int64_t analysis_id, double min_probability, t3d_index_case **out)
{
  sqlite3_stmt *st = NULL;
  t3d_index_case *c = NULL;
  t3d_status s = T3D_OK;
  size_t len = 0, cap = 0;
  int rc;

  *out = NULL;
  c = calloc(1, sizeof *c);
  if (!c || !(c->text = strdup(""))) {
    s = t3d_error(T3D_ERR_NOMEM, "out of memory reading a case");
    goto cleanup;
  }
  rc = sqlite3_prepare_v2(ix->db,
                          "SELECT r.text FROM analyses a JOIN reports r ON r.series_id = a.series_id "
                          "WHERE a.id = ?1 ORDER BY r.source, r.id",
                          -1, &st, NULL);
  if (rc != SQLITE_OK) goto db_fail;
  sqlite3_bind_int64(st, 1, analysis_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    size_t n = t ? strlen(t) : 0;
    if (len + n + 3 > cap) {
      cap = 2 * (len + n + 3);
      char *p = realloc(c->text, cap);
      if (!p) {
        s = t3d_error(T3D_ERR_NOMEM, "out of memory reading a case's reports");
        goto cleanup;
      }
      c->text = p;
    }
    if (len) memcpy(c->text + len, "\n\n", 2), len += 2;
    memcpy(c->text + len, t ? t : "", n);
    len += n;
    c->text[len] = '\0';
  }
  if (rc != SQLITE_DONE) goto db_fail;
  sqlite3_finalize(st);
  st = NULL;

  rc = sqlite3_prepare_v2(ix->db,
                          "SELECT f.name FROM analyses a LEFT JOIN findings f ON f.analysis_id = a.id "
                          "AND f.probability >= ?2 WHERE a.id = ?1 ORDER BY f.name",
                          -1, &st, NULL);
  if (rc != SQLITE_OK) goto db_fail;
  sqlite3_bind_int64(st, 1, analysis_id);
  sqlite3_bind_double(st, 2, min_probability);
  int rows = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    rows++;
    const char *name = (const char *)sqlite3_column_text(st, 0);
    if (!name) continue; /* the analysis exists but has no such finding */
    char **f = realloc(c->findings, (c->nfindings + 1) * sizeof *f);
    if (!f) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory reading a case's findings");
      goto cleanup;
    }
    c->findings = f;
    if (!(f[c->nfindings] = strdup(name))) {
      s = t3d_error(T3D_ERR_NOMEM, "out of memory reading a case's findings");
      goto cleanup;
    }
    c->nfindings++;
  }
  if (rc != SQLITE_DONE) goto db_fail;
  if (rows == 0) {
    s = t3d_error(T3D_ERR_NOT_FOUND, "%s: no analysis %lld", ix->path, (long long)analysis_id);
    goto cleanup;
  }
  *out = c;
  c = NULL;
  goto cleanup;
db_fail:
  s = db_error(ix, ix->db, rc, "reading a case");
cleanup:
  sqlite3_finalize(st);
  t3d_index_case_free(c);
  return s;
}
