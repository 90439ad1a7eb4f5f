/*
 * Drives every function of include/fstore.h from C99, the way a C user would:
 * real files, real threads, a real fork(). Each failure prints file:line and
 * the library's message and exits non-zero; success ends with
 * "N passed, 0 failed" (N counts checks).
 *
 * Environment: FSTORE_LOCK_KEY_VECTORS (the lock-key vectors JSON file,
 * required), TMPDIR (where temporary cache directories go),
 * FSTORE_TEST_PG_DSN and FSTORE_TEST_PG_SCHEMA (a PostgreSQL server and a
 * schema-name prefix for the PostgreSQL test, skipped without a server),
 * FSTORE_TEST_TIME_SCALE (multiplies sleeps and time bounds, e.g. 3 under
 * valgrind; default 1), FSTORE_TEST_SHARD (i/n: run every n-th test from the
 * i-th). Arguments, if any, name the tests to run.
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arrow_testing.h"
#include "fstore.h"
#include "lock_key_vectors.h"

/* ---- checks -------------------------------------------------------------- */

static int checks_passed = 0;

static void failed(const char *file, int line) {
  fprintf(stderr, "%s:%d: test failed\n", file, line);
  printf("%d passed, 1 failed\n", checks_passed);
  fflush(stdout);
  exit(1);
}

static void check(int ok, const char *what, const fstore_error *err, const char *file, int line) {
  if (ok) {
    checks_passed++;
    return;
  }
  fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
  if (err != NULL && err->message != NULL) {
    fprintf(stderr, "  last error: [%s] %s\n", fstore_status_name(err->status), err->message);
  }
  failed(file, line);
}

#define CHECK(cond) check((cond) != 0, #cond, NULL, __FILE__, __LINE__)
#define CHECK_ERR(cond, err) check((cond) != 0, #cond, &(err), __FILE__, __LINE__)

/* Checks that `got` is `want` and, for a failure, that `err` holds the same
 * status and a message containing `needle`; then releases `err`. */
static void check_status(fstore_status got, fstore_status want, fstore_error *err, const char *needle,
                         const char *call, const char *file, int line) {
  int ok = got == want;
  if (ok && want != FSTORE_STATUS_OK && err != NULL) ok = err->status == want;
  if (ok && needle != NULL) ok = err != NULL && err->message != NULL && strstr(err->message, needle) != NULL;
  if (!ok) {
    fprintf(stderr, "%s:%d: %s\n  returned %u (%s), expected %u (%s)", file, line, call, (unsigned)got,
            fstore_status_name(got), (unsigned)want, fstore_status_name(want));
    if (needle != NULL) fprintf(stderr, " with a message containing \"%s\"", needle);
    fprintf(stderr, "\n  error: status %u, message: %s\n", err ? (unsigned)err->status : 0u,
            err && err->message ? err->message : "(null)");
    failed(file, line);
  }
  checks_passed++;
  if (err != NULL) fstore_error_release(err);
}

#define EXPECT(call, want, err, needle) check_status((call), (want), &(err), (needle), #call, __FILE__, __LINE__)
#define EXPECT_OK(call, err) EXPECT(call, FSTORE_STATUS_OK, err, NULL)

/* ---- time, files --------------------------------------------------------- */

static double time_scale = 1.0;

static long scaled(long ms) { return (long)(ms * time_scale); }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static char *make_temp_dir(void) {
  const char *base = getenv("TMPDIR");
  char *path = (char *)malloc(4096);
  CHECK(path != NULL);
  snprintf(path, 4096, "%s/fstore-capi-XXXXXX", base && *base ? base : "/tmp");
  CHECK(mkdtemp(path) != NULL);
  return path;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_temp_dir(char *path) {
  nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(path);
}

static int parquet_files;

static int count_parquet(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  size_t n = strlen(path);
  (void)sb;
  (void)ftw;
  if (flag == FTW_F && n > 8 && strcmp(path + n - 8, ".parquet") == 0) parquet_files++;
  return 0;
}

/* Entry files under a cache directory. */
static int entry_files(const char *dir) {
  parquet_files = 0;
  nftw(dir, count_parquet, 16, FTW_PHYS);
  return parquet_files;
}

/* Flips one byte in the middle of every entry file under `path`. */
static int corrupt_parquet(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  size_t n = strlen(path);
  FILE *file;
  int byte;
  (void)ftw;
  if (flag != FTW_F || n <= 8 || strcmp(path + n - 8, ".parquet") != 0) return 0;
  file = fopen(path, "r+b");
  CHECK(file != NULL);
  CHECK(fseek(file, (long)(sb->st_size / 2), SEEK_SET) == 0);
  byte = fgetc(file);
  CHECK(byte != EOF);
  CHECK(fseek(file, (long)(sb->st_size / 2), SEEK_SET) == 0);
  CHECK(fputc(byte ^ 0xff, file) != EOF);
  CHECK(fclose(file) == 0);
  parquet_files++;
  return 0;
}

static int corrupt_entry_files(const char *dir) {
  parquet_files = 0;
  nftw(dir, corrupt_parquet, 16, FTW_PHYS);
  return parquet_files;
}

/* ---- data ---------------------------------------------------------------- */

enum { MAX_ROWS = 64 };

/* Sample columns: date (date32), close and volume (float64), all from `seed`. */
static void make_sample(struct ArrowArrayStream *out, int rows, int batches, int32_t start, double seed,
                        at_stream_kind kind) {
  int32_t dates[MAX_ROWS];
  double close[MAX_ROWS], volume[MAX_ROWS];
  at_column columns[3];
  int i;
  /* no CHECK here: compute callbacks run this on other threads */
  if (rows > MAX_ROWS) abort();
  for (i = 0; i < rows; i++) {
    dates[i] = start + i;
    close[i] = seed + i * 0.25;
    volume[i] = 1000.0 * seed + i;
  }
  columns[0].name = "date";
  columns[0].type = AT_DATE32;
  columns[0].values = dates;
  columns[1].name = "close";
  columns[1].type = AT_FLOAT64;
  columns[1].values = close;
  columns[2].name = "volume";
  columns[2].type = AT_FLOAT64;
  columns[2].values = volume;
  if (at_stream_make(out, columns, 3, rows, batches, kind) != 0) abort();
}

/* Reads `stream` (releasing it) and checks it holds make_sample's data,
 * restricted to `n_names` columns in the order of `names` when given. */
static void expect_sample_columns(struct ArrowArrayStream *stream, int rows, int32_t start, double seed,
                                  const char *const *names, int n_names, const char *file, int line) {
  static const char *const all[] = {"date", "close", "volume"};
  at_table table;
  char err[512];
  int c, i, ok = 1;
  if (names == NULL) {
    names = all;
    n_names = 3;
  }
  if (at_stream_read(stream, &table, err, sizeof err) != 0) {
    fprintf(stderr, "%s:%d: cannot read the stream: %s\n", file, line, err);
    failed(file, line);
  }
  ok = table.n_rows == rows && table.n_columns == n_names;
  for (c = 0; ok && c < n_names; c++) {
    const at_column_data *col = &table.columns[c];
    ok = strcmp(col->name, names[c]) == 0 && col->length == rows;
    for (i = 0; ok && i < rows; i++) {
      ok = !col->is_null[i];
      if (strcmp(col->name, "date") == 0) ok = ok && col->i32 != NULL && col->i32[i] == start + i;
      else if (strcmp(col->name, "close") == 0) ok = ok && col->f64 != NULL && col->f64[i] == seed + i * 0.25;
      else ok = ok && col->f64 != NULL && col->f64[i] == 1000.0 * seed + i;
    }
  }
  if (!ok) {
    fprintf(stderr, "%s:%d: the data differs from the sample (rows %lld, columns %d)\n", file, line,
            (long long)table.n_rows, table.n_columns);
    for (c = 0; c < table.n_columns; c++) {
      fprintf(stderr, "  column %s (%s)\n", table.columns[c].name, table.columns[c].format);
    }
    failed(file, line);
  }
  checks_passed++;
  at_table_free(&table);
}

#define EXPECT_SAMPLE(stream, rows, start, seed) \
  expect_sample_columns((stream), (rows), (start), (seed), NULL, 0, __FILE__, __LINE__)

static fstore_key make_key(const char *feature_set, const char *symbol, int32_t start, int32_t end,
                           const char *config) {
  fstore_key key;
  memset(&key, 0, sizeof key); /* the reserved space must be zero */
  key.feature_set = feature_set;
  key.symbol = symbol;
  key.start_date = start;
  key.end_date = end;
  key.config = config;
  return key;
}

/* ---- stores -------------------------------------------------------------- */

static fstore_store *open_store(const char *dir) {
  fstore_options *options = fstore_options_new();
  fstore_store *store = NULL;
  fstore_error err = {0};
  CHECK(options != NULL);
  EXPECT_OK(fstore_options_set(options, "cache_dir", dir, &err), err);
  EXPECT_OK(fstore_options_set(options, "wait.timeout_ms", "60000", &err), err);
  EXPECT_OK(fstore_options_set(options, "manifest", "duckdb", &err), err);
  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  CHECK(store != NULL);
  fstore_options_free(&options);
  return store;
}

static fstore_stats get_stats(const fstore_store *store) {
  fstore_stats stats;
  fstore_error err = {0};
  memset(&stats, 0, sizeof stats);
  EXPECT_OK(fstore_store_stats(store, &stats, sizeof(fstore_stats), &err), err);
  return stats;
}

/* ---- compute callbacks --------------------------------------------------- */

typedef enum compute_action {
  COMPUTE_SAMPLE,           /* fill `out` with make_sample(rows, start, seed) */
  COMPUTE_FAIL,             /* return `status` with `message` (if any) */
  COMPUTE_FAIL_AFTER_FILL,  /* fill `out`, then return `status` */
  COMPUTE_LEAVE_UNSET       /* return OK without touching `out` */
} compute_action;

typedef struct compute_ctx {
  compute_action action;
  at_stream_kind kind;
  int rows;
  int32_t start;
  double seed;
  fstore_status status;
  const char *message;
  long sleep_ms;
  /* written by the callback, under `mutex` */
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  int calls;
  int started;
  char seen_symbol[64];
  int32_t seen_start, seen_end;
} compute_ctx;

static void ctx_init(compute_ctx *ctx, compute_action action, int rows, int32_t start, double seed) {
  memset(ctx, 0, sizeof *ctx);
  ctx->action = action;
  ctx->kind = AT_STREAM_OK;
  ctx->rows = rows;
  ctx->start = start;
  ctx->seed = seed;
  ctx->status = FSTORE_STATUS_CALLBACK_FAILED;
  pthread_mutex_init(&ctx->mutex, NULL);
  pthread_cond_init(&ctx->cond, NULL);
}

static void ctx_destroy(compute_ctx *ctx) {
  pthread_mutex_destroy(&ctx->mutex);
  pthread_cond_destroy(&ctx->cond);
}

static int ctx_calls(compute_ctx *ctx) {
  int calls;
  pthread_mutex_lock(&ctx->mutex);
  calls = ctx->calls;
  pthread_mutex_unlock(&ctx->mutex);
  return calls;
}

/* Blocks until a callback of `ctx` has started. */
static void ctx_wait_started(compute_ctx *ctx) {
  pthread_mutex_lock(&ctx->mutex);
  while (!ctx->started) pthread_cond_wait(&ctx->cond, &ctx->mutex);
  pthread_mutex_unlock(&ctx->mutex);
}

static fstore_status compute(void *userdata, const fstore_key *key, struct ArrowArrayStream *out,
                             fstore_error *error) {
  compute_ctx *ctx = (compute_ctx *)userdata;
  pthread_mutex_lock(&ctx->mutex);
  ctx->calls++;
  ctx->started = 1;
  snprintf(ctx->seen_symbol, sizeof ctx->seen_symbol, "%s", key->symbol);
  ctx->seen_start = key->start_date;
  ctx->seen_end = key->end_date;
  pthread_cond_broadcast(&ctx->cond);
  pthread_mutex_unlock(&ctx->mutex);
  if (ctx->sleep_ms > 0) sleep_ms(ctx->sleep_ms);
  switch (ctx->action) {
    case COMPUTE_SAMPLE:
      make_sample(out, ctx->rows, 2, ctx->start, ctx->seed, ctx->kind);
      return FSTORE_STATUS_OK;
    case COMPUTE_FAIL_AFTER_FILL:
      make_sample(out, ctx->rows, 2, ctx->start, ctx->seed, AT_STREAM_OK);
      if (ctx->message != NULL) fstore_error_set(error, ctx->status, ctx->message);
      return ctx->status;
    case COMPUTE_FAIL:
      if (ctx->message != NULL) fstore_error_set(error, ctx->status, ctx->message);
      return ctx->status;
    case COMPUTE_LEAVE_UNSET:
      return FSTORE_STATUS_OK;
  }
  return FSTORE_STATUS_INTERNAL;
}

/* ---- a store with one good entry, for the bad-input tests ---------------- */

typedef struct fixture {
  char *dir;
  fstore_store *store;
  fstore_key good;
  int files;
  long live;
  fstore_stats stats;
} fixture;

static const char *const GOOD_CONFIG = "{\"window\": 20, \"adjusted\": true}";

static void fixture_open(fixture *f) {
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  f->dir = make_temp_dir();
  f->store = open_store(f->dir);
  f->good = make_key("returns", "AAPL", 19000, 19009, GOOD_CONFIG);
  make_sample(&stream, 10, 2, 19000, 1.5, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(f->store, &f->good, &stream, &err), err);
  f->files = entry_files(f->dir);
  CHECK(f->files == 1);
  f->live = at_live_objects();
  f->stats = get_stats(f->store);
}

/* Nothing new was stored, nothing we made leaked, the good entry still reads
 * back whole. `computes_may_change` for tests whose callback ran and failed. */
static void fixture_intact(fixture *f, int computes_may_change, const char *file, int line) {
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_stats now = get_stats(f->store);
  int ok = entry_files(f->dir) == f->files && now.bytes_written == f->stats.bytes_written &&
           at_live_objects() == f->live && (computes_may_change || now.computes == f->stats.computes);
  if (!ok) {
    fprintf(stderr, "%s:%d: store changed: files %d (was %d), bytes_written %llu (was %llu), live arrow "
            "objects %ld (was %ld), computes %llu (was %llu)\n", file, line, entry_files(f->dir), f->files,
            (unsigned long long)now.bytes_written, (unsigned long long)f->stats.bytes_written,
            at_live_objects(), f->live, (unsigned long long)now.computes,
            (unsigned long long)f->stats.computes);
    failed(file, line);
  }
  checks_passed++;
  memset(&stream, 0, sizeof stream);
  check_status(fstore_store_get(f->store, &f->good, NULL, &stream, &err), FSTORE_STATUS_OK, &err, NULL,
               "get(good key)", file, line);
  expect_sample_columns(&stream, 10, 19000, 1.5, NULL, 0, file, line);
  f->stats = get_stats(f->store);
}

#define FIXTURE_INTACT(f) fixture_intact((f), 0, __FILE__, __LINE__)
#define FIXTURE_INTACT_AFTER_COMPUTE(f) fixture_intact((f), 1, __FILE__, __LINE__)

static void fixture_close(fixture *f) {
  fstore_store_close(&f->store);
  CHECK(f->store == NULL);
  remove_temp_dir(f->dir);
}

/* ---- the tests ----------------------------------------------------------- */

static void test_version_and_status_names(void) {
  static const char *const names[] = {"ok", "invalid argument", "not found", "timeout", "cancelled",
                                      "callback failed", "invalid data", "I/O error", "database error",
                                      "corrupt entry", "invalid state", "unavailable", "internal error"};
  const char *version = fstore_version();
  unsigned major, minor, patch;
  fstore_status s;
  CHECK(version != NULL);
  CHECK(sscanf(version, "%u.%u.%u", &major, &minor, &patch) == 3);
  /* The header this program was built with describes the library it runs with. */
  CHECK(strcmp(version, FSTORE_VERSION_STRING) == 0);
  CHECK(major == FSTORE_VERSION_MAJOR && minor == FSTORE_VERSION_MINOR && patch == FSTORE_VERSION_PATCH);
  CHECK(fstore_version_number() == FSTORE_VERSION_NUMBER);
  CHECK(FSTORE_VERSION_NUMBER == major * 1000000u + minor * 1000u + patch);
  CHECK(FSTORE_STATUS_INTERNAL == 12);
  for (s = FSTORE_STATUS_OK; s <= FSTORE_STATUS_INTERNAL; s++) {
    CHECK(strcmp(fstore_status_name(s), names[s]) == 0);
  }
  CHECK(strcmp(fstore_status_name(9999), "unknown status") == 0);
}

static void test_error_struct(void) {
  fstore_error err = {0};
  size_t i;
  memset(err.reserved, 0xAB, sizeof err.reserved); /* the library writes zeros there */
  memcpy(err.sqlstate, "XXXXX", 6);
  fstore_error_set(&err, FSTORE_STATUS_IO, "disk on fire");
  CHECK(err.status == FSTORE_STATUS_IO);
  CHECK(err.sqlstate[0] == '\0'); /* no PostgreSQL error behind it */
  for (i = 0; i < sizeof err.reserved / sizeof err.reserved[0]; i++) CHECK(err.reserved[i] == NULL);
  CHECK(err.message != NULL && strcmp(err.message, "disk on fire") == 0);
  CHECK(err.release != NULL);
  /* Writing again releases the old message first (valgrind checks the leak). */
  fstore_error_set(&err, FSTORE_STATUS_TIMEOUT, NULL);
  CHECK(err.status == FSTORE_STATUS_TIMEOUT);
  CHECK(err.message == NULL || err.message[0] == '\0');
  err.release(&err);
  CHECK(err.message == NULL && err.release == NULL);
  fstore_error_release(&err); /* twice is harmless */
  fstore_error_release(NULL);
  fstore_error_set(NULL, FSTORE_STATUS_IO, "nowhere to go");
  /* A non-UTF-8 message is kept (bad bytes replaced), not dropped. */
  fstore_error_set(&err, FSTORE_STATUS_IO, "bad \xff byte");
  CHECK(err.message != NULL && strstr(err.message, "bad ") != NULL && strstr(err.message, " byte") != NULL);
  fstore_error_release(&err);
  /* Calls accept a NULL error and still return the status. */
  CHECK(fstore_lock_key(NULL, NULL, NULL) == FSTORE_STATUS_INVALID_ARGUMENT);
}

static void test_lock_keys(void) {
  const char *path = getenv("FSTORE_LOCK_KEY_VECTORS");
  lkv_vector *vectors = NULL;
  char why[512];
  char long_symbol[FSTORE_MAX_NAME_BYTES + 2];
  fstore_error err = {0};
  int64_t key = 0;
  int n, i;
  if (path == NULL || *path == '\0') {
    fprintf(stderr, "FSTORE_LOCK_KEY_VECTORS is not set\n");
    failed(__FILE__, __LINE__);
  }
  n = lkv_read(path, &vectors, why, sizeof why);
  if (n < 0) fprintf(stderr, "cannot read the vectors: %s\n", why);
  CHECK(n >= 4);
  for (i = 0; i < n; i++) {
    key = 0;
    EXPECT_OK(fstore_lock_key(vectors[i].symbol, &key, &err), err);
    if (key != vectors[i].key) {
      fprintf(stderr, "lock key of '%s': got %lld, the vector says %lld\n", vectors[i].symbol, (long long)key,
              (long long)vectors[i].key);
    }
    CHECK(key == vectors[i].key);
  }
  printf("lock keys: %d vectors from %s match\n", n, path);
  lkv_free(vectors, n);

  key = 42;
  EXPECT(fstore_lock_key(NULL, &key, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "symbol is NULL");
  EXPECT(fstore_lock_key("AAPL", NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  EXPECT(fstore_lock_key("", &key, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "symbol is empty");
  EXPECT(fstore_lock_key("\xc3\x28", &key, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "not valid UTF-8");
  memset(long_symbol, 'x', FSTORE_MAX_NAME_BYTES + 1);
  long_symbol[FSTORE_MAX_NAME_BYTES + 1] = '\0';
  EXPECT(fstore_lock_key(long_symbol, &key, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "1025 bytes");
  CHECK(key == 42); /* outputs are written only on success */
  long_symbol[FSTORE_MAX_NAME_BYTES] = '\0';
  EXPECT_OK(fstore_lock_key(long_symbol, &key, &err), err);
  CHECK(key != 42);
}

static void test_options(void) {
  fstore_options *options = fstore_options_new();
  fstore_options *none = NULL;
  fstore_store *store = NULL;
  fstore_error err = {0};
  char *dir = make_temp_dir();
  struct ArrowArrayStream stream;
  fstore_key key = make_key("returns", "MSFT", 100, 101, NULL);
  CHECK(options != NULL);
  EXPECT_OK(fstore_options_set(options, "cache_dir", dir, &err), err);
  EXPECT_OK(fstore_options_set(options, "lock.granularity", "entry", &err), err);
  EXPECT_OK(fstore_options_set(options, "lock.granularity", "symbol", &err), err);
  EXPECT_OK(fstore_options_set(options, "lock.cross_process", "false", &err), err);
  EXPECT_OK(fstore_options_set(options, "lock.cross_process", "true", &err), err);
  EXPECT_OK(fstore_options_set(options, "wait.timeout_ms", "2500", &err), err);
  EXPECT_OK(fstore_options_set(options, "verify_checksums", "true", &err), err);
  EXPECT_OK(fstore_options_set(options, "lock.namespace", "team-a", &err), err);
  EXPECT_OK(fstore_options_set(options, "manifest", "duckdb", &err), err);

  EXPECT(fstore_options_set(options, "cache_dri", "/x", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "unknown option 'cache_dri'");
  EXPECT(fstore_options_set(options, "lock.granularity", "row", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "lock.granularity");
  EXPECT(fstore_options_set(options, "lock.granularity", "row", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "'row'");
  EXPECT(fstore_options_set(options, "lock.cross_process", "maybe", &err), FSTORE_STATUS_INVALID_ARGUMENT,
         err, "lock.cross_process");
  EXPECT(fstore_options_set(options, "wait.timeout_ms", "-5", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "wait.timeout_ms");
  EXPECT(fstore_options_set(options, "verify_checksums", "", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "verify_checksums");
  EXPECT(fstore_options_set(options, "manifest", "sqlite", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "manifest");
  EXPECT(fstore_options_set(options, "postgres.port", "http", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "postgres.port");
  /* A refused value leaves the option as it was: cache_dir stays `dir`. */
  EXPECT(fstore_options_set(options, "cache_dir", "", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "cache_dir");
  EXPECT(fstore_options_set(NULL, "cache_dir", dir, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "options is NULL");
  EXPECT(fstore_options_set(options, NULL, "x", &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "key is NULL");
  EXPECT(fstore_options_set(options, "cache_dir", NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "value is NULL");
  EXPECT(fstore_options_set(options, "cache_dir\xff", "x", &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "not valid UTF-8");

  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  make_sample(&stream, 3, 1, 100, 2.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &key, &stream, &err), err);
  CHECK(entry_files(dir) == 1);
  fstore_store_close(&store);

  fstore_options_free(&options);
  CHECK(options == NULL);
  fstore_options_free(&options);
  fstore_options_free(&none);
  fstore_options_free(NULL);
  remove_temp_dir(dir);
}

static void test_open_close(void) {
  char *dir = make_temp_dir();
  fstore_options *options = fstore_options_new();
  fstore_store *store = NULL, *again = NULL;
  fstore_error err = {0};
  EXPECT_OK(fstore_options_set(options, "cache_dir", dir, &err), err);
  EXPECT(fstore_store_open(options, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  CHECK(store != NULL);
  CHECK(strcmp(fstore_store_manifest_backend(store), "duckdb") == 0);
  CHECK(fstore_store_manifest_backend(NULL) == NULL);
  /* Two stores on one directory (as two processes would have). */
  EXPECT_OK(fstore_store_open(options, &again, &err), err);
  EXPECT_OK(fstore_store_flush(store, &err), err);
  fstore_store_close(&again);
  CHECK(again == NULL);
  fstore_store_close(&store);
  CHECK(store == NULL);
  fstore_store_close(&store); /* a NULL handle */
  fstore_store_close(NULL);
  fstore_options_free(&options);
  remove_temp_dir(dir);
}

static void test_unwritable_cache_dir(void) {
  char *dir = make_temp_dir();
  char file_path[4200], cache_path[4300];
  fstore_options *options = fstore_options_new();
  fstore_store *store = NULL;
  fstore_error err = {0};
  FILE *f;
  /* Root ignores permissions, so put the cache under a regular file. */
  snprintf(file_path, sizeof file_path, "%s/plain-file", dir);
  f = fopen(file_path, "w");
  CHECK(f != NULL);
  fclose(f);
  snprintf(cache_path, sizeof cache_path, "%s/cache", file_path);
  EXPECT_OK(fstore_options_set(options, "cache_dir", cache_path, &err), err);
  EXPECT(fstore_store_open(options, &store, &err), FSTORE_STATUS_IO, err, "plain-file");
  CHECK(store == NULL);
  EXPECT_OK(fstore_options_set(options, "cache_dir", "/proc/fstore-cannot-be-here", &err), err);
  EXPECT(fstore_store_open(options, &store, &err), FSTORE_STATUS_IO, err, "/proc/fstore-cannot-be-here");
  CHECK(store == NULL);
  fstore_options_free(&options);
  remove_temp_dir(dir);
}

static void test_get_or_compute(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("returns", "GOOGL", 18000, 18019, "{\"window\": 5}");
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_stats stats;
  compute_ctx ctx;
  bool present = true;
  ctx_init(&ctx, COMPUTE_SAMPLE, 20, 18000, 7.0);

  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_get(store, &key, NULL, &stream, &err), FSTORE_STATUS_NOT_FOUND, err, NULL);
  CHECK(stream.release == NULL);
  /* NOT_FOUND comes with its status and no message. */
  CHECK(fstore_store_get(store, &key, NULL, &stream, &err) == FSTORE_STATUS_NOT_FOUND);
  CHECK(err.status == FSTORE_STATUS_NOT_FOUND && err.message == NULL);
  fstore_error_release(&err);
  EXPECT_OK(fstore_store_contains(store, &key, &present, &err), err);
  CHECK(!present);

  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  CHECK(ctx_calls(&ctx) == 1);
  CHECK(strcmp(ctx.seen_symbol, "GOOGL") == 0 && ctx.seen_start == 18000 && ctx.seen_end == 18019);
  EXPECT_SAMPLE(&stream, 20, 18000, 7.0);
  stats = get_stats(store);
  CHECK(stats.computes == 1 && stats.misses >= 1 && stats.compute_failures == 0);
  CHECK(stats.bytes_written > 0);

  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  CHECK(ctx_calls(&ctx) == 1);
  EXPECT_SAMPLE(&stream, 20, 18000, 7.0);
  stats = get_stats(store);
  CHECK(stats.computes == 1 && stats.hits >= 1 && stats.bytes_read > 0);

  EXPECT_OK(fstore_store_get(store, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 20, 18000, 7.0);
  EXPECT_OK(fstore_store_contains(store, &key, &present, &err), err);
  CHECK(present);

  /* Another store on the same directory sees it without computing. */
  {
    fstore_store *other = open_store(dir);
    EXPECT_OK(fstore_store_get_or_compute(other, &key, NULL, compute, &ctx, &stream, &err), err);
    CHECK(ctx_calls(&ctx) == 1);
    EXPECT_SAMPLE(&stream, 20, 18000, 7.0);
    fstore_store_close(&other);
  }
  ctx_destroy(&ctx);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* try_get answers what get_or_compute would without waiting or computing:
 * a hit (counted), NOT_FOUND for a miss (not counted: the get_or_compute
 * that follows counts it) and for a corrupt file (get_or_compute recomputes
 * it, where get reports CORRUPT). */
static void test_try_get(void) {
  static const char *const close_only[] = {"close"};
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("returns", "TRY", 500, 509, NULL);
  fstore_request *request = fstore_request_new();
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_stats before, after;
  compute_ctx ctx;
  ctx_init(&ctx, COMPUTE_SAMPLE, 10, 500, 4.0);

  memset(&stream, 0, sizeof stream);
  before = get_stats(store);
  CHECK(fstore_store_try_get(store, &key, NULL, &stream, &err) == FSTORE_STATUS_NOT_FOUND);
  CHECK(err.status == FSTORE_STATUS_NOT_FOUND && err.message == NULL);
  CHECK(stream.release == NULL);
  after = get_stats(store);
  CHECK(after.misses == before.misses && after.hits == before.hits);

  /* The miss is counted once, by the get_or_compute that follows. */
  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 500, 4.0);
  after = get_stats(store);
  CHECK(after.misses == before.misses + 1 && after.computes == before.computes + 1);

  before = after;
  EXPECT_OK(fstore_store_try_get(store, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 500, 4.0);
  after = get_stats(store);
  CHECK(after.hits == before.hits + 1 && after.misses == before.misses);
  EXPECT_OK(fstore_request_set_columns(request, close_only, 1, &err), err);
  EXPECT_OK(fstore_store_try_get(store, &key, request, &stream, &err), err);
  expect_sample_columns(&stream, 10, 500, 4.0, close_only, 1, __FILE__, __LINE__);
  CHECK(ctx_calls(&ctx) == 1);

  /* A corrupt file: get reports it, try_get says "compute it". */
  CHECK(corrupt_entry_files(dir) == 1);
  EXPECT(fstore_store_get(store, &key, NULL, &stream, &err), FSTORE_STATUS_CORRUPT, err, NULL);
  CHECK(fstore_store_try_get(store, &key, NULL, &stream, &err) == FSTORE_STATUS_NOT_FOUND);
  CHECK(err.message == NULL && stream.release == NULL);
  fstore_error_release(&err);
  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 500, 4.0);
  CHECK(ctx_calls(&ctx) == 2);

  EXPECT(fstore_store_try_get(NULL, &key, NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "store is NULL");
  EXPECT(fstore_store_try_get(store, NULL, NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "key is NULL");
  EXPECT(fstore_store_try_get(store, &key, NULL, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "out is NULL");

  fstore_request_free(&request);
  ctx_destroy(&ctx);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

static void test_projection(void) {
  static const char *const volume_date[] = {"volume", "date"};
  static const char *const close_only[] = {"close"};
  static const char *const unknown[] = {"close", "nope"};
  static const char *const twice[] = {"close", "close"};
  static const char *const with_null[] = {"close", NULL};
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("returns", "TSLA", 200, 211, NULL);
  fstore_key fresh = make_key("returns", "TSLA", 300, 311, NULL);
  fstore_request *request = fstore_request_new();
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  compute_ctx ctx;
  ctx_init(&ctx, COMPUTE_SAMPLE, 12, 200, 3.0);
  CHECK(request != NULL);

  EXPECT_OK(fstore_request_set_columns(request, volume_date, 2, &err), err);
  /* a miss, computed, then projected */
  EXPECT_OK(fstore_store_get_or_compute(store, &key, request, compute, &ctx, &stream, &err), err);
  expect_sample_columns(&stream, 12, 200, 3.0, volume_date, 2, __FILE__, __LINE__);
  /* a hit */
  EXPECT_OK(fstore_store_get_or_compute(store, &key, request, compute, &ctx, &stream, &err), err);
  expect_sample_columns(&stream, 12, 200, 3.0, volume_date, 2, __FILE__, __LINE__);
  EXPECT_OK(fstore_store_get(store, &key, request, &stream, &err), err);
  expect_sample_columns(&stream, 12, 200, 3.0, volume_date, 2, __FILE__, __LINE__);
  EXPECT_OK(fstore_request_set_columns(request, close_only, 1, &err), err);
  EXPECT_OK(fstore_store_get(store, &key, request, &stream, &err), err);
  expect_sample_columns(&stream, 12, 200, 3.0, close_only, 1, __FILE__, __LINE__);
  CHECK(ctx_calls(&ctx) == 1);

  EXPECT_OK(fstore_request_set_columns(request, unknown, 2, &err), err);
  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_get(store, &key, request, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "unknown column 'nope'");
  CHECK(stream.release == NULL);
  EXPECT(fstore_store_get_or_compute(store, &key, request, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_ARGUMENT, err, "unknown column 'nope'");
  CHECK(stream.release == NULL);
  /* a miss refuses it too (after computing: the columns are known only then) */
  EXPECT(fstore_store_get_or_compute(store, &fresh, request, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_ARGUMENT, err, "unknown column 'nope'");
  EXPECT_OK(fstore_request_set_columns(request, twice, 2, &err), err);
  EXPECT(fstore_store_get(store, &key, request, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "asked for twice");

  EXPECT(fstore_request_set_columns(request, with_null, 2, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "columns[1] is NULL");
  EXPECT(fstore_request_set_columns(request, NULL, 1, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "columns is NULL");
  EXPECT(fstore_request_set_columns(NULL, close_only, 1, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "request is NULL");
  /* count 0 returns every column again */
  EXPECT_OK(fstore_request_set_columns(request, NULL, 0, &err), err);
  EXPECT_OK(fstore_store_get(store, &key, request, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 12, 200, 3.0);

  fstore_request_free(&request);
  CHECK(request == NULL);
  fstore_request_free(&request);
  fstore_request_free(NULL);
  fstore_request_cancel(NULL);
  ctx_destroy(&ctx);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

static void test_put_contains_invalidate(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("volatility", "BRK.B", 500, 529, "{\"span\": [1, 2, 3]}");
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  compute_ctx ctx;
  bool present = false;
  long live = at_live_objects();
  ctx_init(&ctx, COMPUTE_SAMPLE, 30, 500, 99.0);

  make_sample(&stream, 30, 3, 500, 4.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &key, &stream, &err), err);
  CHECK(stream.release == NULL);     /* taken */
  CHECK(at_live_objects() == live);  /* and released */
  EXPECT_OK(fstore_store_contains(store, &key, &present, &err), err);
  CHECK(present);
  EXPECT_OK(fstore_store_get(store, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 30, 500, 4.0);
  /* a put entry is a hit for get_or_compute */
  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 30, 500, 4.0);
  CHECK(ctx_calls(&ctx) == 0);

  /* put replaces */
  make_sample(&stream, 5, 1, 500, 8.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &key, &stream, &err), err);
  EXPECT_OK(fstore_store_get(store, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 5, 500, 8.0);
  CHECK(entry_files(dir) == 1);

  EXPECT_OK(fstore_store_invalidate(store, &key, &err), err);
  EXPECT_OK(fstore_store_contains(store, &key, &present, &err), err);
  CHECK(!present);
  CHECK(entry_files(dir) == 0);
  EXPECT(fstore_store_get(store, &key, NULL, &stream, &err), FSTORE_STATUS_NOT_FOUND, err, NULL);
  EXPECT(fstore_store_invalidate(store, &key, &err), FSTORE_STATUS_NOT_FOUND, err, NULL);
  /* after invalidation, get_or_compute computes again */
  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 30, 500, 99.0);
  CHECK(ctx_calls(&ctx) == 1);

  /* an empty stream (no batches, no rows) is data too */
  {
    fstore_key empty = make_key("volatility", "BRK.B", 600, 600, NULL);
    make_sample(&stream, 0, 1, 600, 0.0, AT_STREAM_OK);
    EXPECT_OK(fstore_store_put(store, &empty, &stream, &err), err);
    EXPECT_OK(fstore_store_get(store, &empty, NULL, &stream, &err), err);
    EXPECT_SAMPLE(&stream, 0, 600, 0.0);
  }
  CHECK(at_live_objects() == live);
  ctx_destroy(&ctx);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

static void test_config_canonical(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_key a = make_key("returns", "ES=F", 10, 20, "{\"b\": 1, \"a\": [true, null, 1.0]}");
  fstore_key b = make_key("returns", "ES=F", 10, 20, " {\"a\":[true,null,1],\"b\":1.0}\n");
  fstore_key c = make_key("returns", "ES=F", 10, 20, "{\"a\": [true, null, 2], \"b\": 1}");
  fstore_key none = make_key("returns", "ES=F", 10, 20, NULL);
  fstore_key empty = make_key("returns", "ES=F", 10, 20, "");
  fstore_key braces = make_key("returns", "ES=F", 10, 20, "{ }");
  bool present = true;

  make_sample(&stream, 11, 1, 10, 5.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &a, &stream, &err), err);
  EXPECT_OK(fstore_store_get(store, &b, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 11, 10, 5.0);
  EXPECT_OK(fstore_store_contains(store, &c, &present, &err), err);
  CHECK(!present);

  make_sample(&stream, 11, 1, 10, 6.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &none, &stream, &err), err);
  EXPECT_OK(fstore_store_get(store, &empty, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 11, 10, 6.0);
  EXPECT_OK(fstore_store_get(store, &braces, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 11, 10, 6.0);
  CHECK(entry_files(dir) == 2);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* What identifies an entry, as bindings compare and hash keys. */
static void test_key_canonical(void) {
  fstore_error err = {0};
  char id_a[FSTORE_ENTRY_ID_SIZE], id_b[FSTORE_ENTRY_ID_SIZE], id_c[FSTORE_ENTRY_ID_SIZE];
  char *config = NULL;
  fstore_key a = make_key("returns", "ES=F", 10, 20, "{\"b\": 1, \"a\": [true, null, 1.0]}");
  fstore_key b = make_key("returns", "ES=F", 10, 20, " {\"a\":[true,null,1],\"b\":1.0}\n");
  fstore_key c = make_key("returns", "ES=F", 10, 21, "{\"a\":[true,null,1],\"b\":1}");
  fstore_key big = make_key("returns", "ES=F", 10, 20, "{\"t\": 1700000000000000001}");
  fstore_key big2 = make_key("returns", "ES=F", 10, 20, "{\"t\": 1700000000000000000}");
  fstore_key bad = make_key("returns", "ES=F", 20, 10, NULL);
  fstore_key reserved = make_key("returns", "ES=F", 10, 20, NULL);
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  struct ArrowArrayStream stream;
  compute_ctx ctx;

  EXPECT_OK(fstore_key_canonical(&a, &config, id_a, &err), err);
  CHECK(config != NULL && strcmp(config, "{\"a\":[true,null,1],\"b\":1}") == 0);
  fstore_string_free(&config);
  CHECK(config == NULL);
  fstore_string_free(&config); /* NULL is fine */
  fstore_string_free(NULL);
  CHECK(strlen(id_a) == FSTORE_ENTRY_ID_SIZE - 1);
  EXPECT_OK(fstore_key_canonical(&b, NULL, id_b, &err), err); /* the id alone */
  CHECK(strcmp(id_a, id_b) == 0);
  EXPECT_OK(fstore_key_canonical(&c, NULL, id_c, &err), err);
  CHECK(strcmp(id_a, id_c) != 0);
  EXPECT_OK(fstore_key_canonical(&big, NULL, id_b, &err), err);
  EXPECT_OK(fstore_key_canonical(&big2, NULL, id_c, &err), err);
  CHECK(strcmp(id_b, id_c) != 0); /* beyond double precision, still different */
  config = NULL;
  EXPECT(fstore_key_canonical(&bad, &config, id_b, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "before start_date");
  CHECK(config == NULL);
  EXPECT(fstore_key_canonical(&a, &config, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "entry_id is NULL");
  EXPECT(fstore_key_canonical(NULL, &config, id_b, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "key is NULL");

  /* A key whose reserved space is not zero is refused everywhere, not misread. */
  reserved.reserved[2] = &err;
  EXPECT(fstore_key_canonical(&reserved, NULL, id_b, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "reserved");
  ctx_init(&ctx, COMPUTE_SAMPLE, 5, 10, 1.0);
  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_get_or_compute(store, &reserved, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_ARGUMENT, err, "reserved");
  EXPECT(fstore_store_get(store, &reserved, NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "reserved");
  CHECK(ctx_calls(&ctx) == 0);
  CHECK(stream.release == NULL);
  ctx_destroy(&ctx);
  fstore_error_release(&err);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

static void test_list(void) {
  static const char *const symbols[] = {"AAPL", "MSFT", "^GSPC"};
  static const char *const expected_columns[] = {"entry_id", "feature_set", "symbol", "start_date", "end_date",
                                                 "config", "path", "rows", "bytes", "checksum", "created_at"};
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  at_table table;
  char why[512];
  int i, r;

  EXPECT_OK(fstore_store_list(store, &stream, &err), err);
  CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
  CHECK(table.n_rows == 0 && table.n_columns == 11);
  at_table_free(&table);

  for (i = 0; i < 3; i++) {
    fstore_key key = make_key("momentum", symbols[i], 1000 + i, 1000 + i + 6, "{\"n\": 3}");
    make_sample(&stream, 7, 1, 1000 + i, i, AT_STREAM_OK);
    EXPECT_OK(fstore_store_put(store, &key, &stream, &err), err);
  }
  EXPECT_OK(fstore_store_flush(store, &err), err);
  EXPECT_OK(fstore_store_list(store, &stream, &err), err);
  if (at_stream_read(&stream, &table, why, sizeof why) != 0) fprintf(stderr, "list: %s\n", why);
  CHECK(table.n_rows == 3);
  CHECK(table.n_columns == 11);
  for (i = 0; i < 11 && i < table.n_columns; i++) CHECK(strcmp(table.columns[i].name, expected_columns[i]) == 0);
  {
    const at_column_data *symbol = at_table_column(&table, "symbol");
    const at_column_data *feature_set = at_table_column(&table, "feature_set");
    const at_column_data *start = at_table_column(&table, "start_date");
    const at_column_data *rows = at_table_column(&table, "rows");
    const at_column_data *config = at_table_column(&table, "config");
    CHECK(symbol != NULL && symbol->str != NULL && feature_set != NULL && feature_set->str != NULL);
    CHECK(start != NULL && start->i32 != NULL && rows != NULL && rows->i64 != NULL);
    CHECK(config != NULL && config->str != NULL);
    for (i = 0; i < 3; i++) {
      int found = 0;
      for (r = 0; r < table.n_rows; r++) {
        if (symbol->str[r] != NULL && strcmp(symbol->str[r], symbols[i]) == 0) {
          found = 1;
          CHECK(strcmp(feature_set->str[r], "momentum") == 0);
          CHECK(start->i32[r] == 1000 + i);
          CHECK(rows->i64[r] == 7);
          CHECK(strcmp(config->str[r], "{\"n\":3}") == 0); /* canonical */
        }
      }
      CHECK(found);
    }
  }
  at_table_free(&table);

  {
    fstore_key gone = make_key("momentum", "MSFT", 1001, 1007, "{\"n\": 3}");
    EXPECT_OK(fstore_store_invalidate(store, &gone, &err), err);
    EXPECT_OK(fstore_store_flush(store, &err), err);
    EXPECT_OK(fstore_store_list(store, &stream, &err), err);
    CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
    CHECK(table.n_rows == 2);
    for (r = 0; r < table.n_rows; r++) CHECK(strcmp(at_table_column(&table, "symbol")->str[r], "MSFT") != 0);
    at_table_free(&table);
  }
  /* Another store on the same directory lists the same rows. */
  {
    fstore_store *other = open_store(dir);
    EXPECT_OK(fstore_store_list(other, &stream, &err), err);
    CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
    CHECK(table.n_rows == 2);
    at_table_free(&table);
    fstore_store_close(&other);
  }
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* A scan: key columns in front, the window rule, projection, a missing
 * entry reported in its own stream, hostile requests refused. */
static void test_scan(void) {
  static const char *const symbols[] = {"AAPL", "MSFT"};
  static const char *const only_msft[] = {"MSFT"};
  static const char *const volume_only[] = {"volume"};
  static const char *const unknown[] = {"nope"};
  static const char *const with_null[] = {NULL};
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  struct ArrowArrayStream stream, missing;
  fstore_scan_request scan;
  fstore_error err = {0};
  at_table table, gone;
  char why[512], path[4096];
  int i, r;

  /* AAPL [100, 104], MSFT [100, 104], MSFT [105, 109]; AAPL [98, 102] overlaps the window only. */
  for (i = 0; i < 3; i++) {
    fstore_key key = make_key("scan", symbols[i == 0 ? 0 : 1], i == 2 ? 105 : 100, i == 2 ? 109 : 104, "{\"n\": 1}");
    make_sample(&stream, 5, 1, key.start_date, i, AT_STREAM_OK);
    EXPECT_OK(fstore_store_put(store, &key, &stream, &err), err);
  }
  {
    fstore_key overlapping = make_key("scan", "AAPL", 98, 102, "{\"n\": 1}");
    make_sample(&stream, 5, 1, 98, 9, AT_STREAM_OK);
    EXPECT_OK(fstore_store_put(store, &overlapping, &stream, &err), err);
  }
  memset(&scan, 0, sizeof scan);
  scan.feature_set = "scan";
  scan.start_date = 100;
  scan.end_date = 110;
  scan.config = "{ \"n\" : 1.0 }";
  EXPECT_OK(fstore_store_scan(store, &scan, &stream, &missing, &err), err);
  CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
  CHECK(at_stream_read(&missing, &gone, why, sizeof why) == 0);
  CHECK(table.n_rows == 15 && table.n_columns == 6 && gone.n_rows == 0);
  CHECK(strcmp(table.columns[0].name, "fstore_symbol") == 0 && strcmp(table.columns[1].name, "fstore_start_date") == 0);
  CHECK(strcmp(table.columns[2].name, "fstore_end_date") == 0 && strcmp(table.columns[3].name, "date") == 0);
  {
    const at_column_data *symbol = at_table_column(&table, "fstore_symbol");
    const at_column_data *start = at_table_column(&table, "fstore_start_date");
    const at_column_data *date = at_table_column(&table, "date");
    CHECK(symbol != NULL && symbol->str != NULL && start != NULL && start->i32 != NULL && date != NULL);
    for (r = 0; r < table.n_rows; r++) {
      /* ordered by symbol, then start date; each entry's dates start at its own start */
      CHECK(strcmp(symbol->str[r], r < 5 ? "AAPL" : "MSFT") == 0);
      CHECK(start->i32[r] == (r < 10 ? 100 : 105));
      CHECK(date->i32[r] == start->i32[r] + r % 5);
    }
  }
  at_table_free(&table);
  at_table_free(&gone);

  /* One symbol, one column; then MSFT [100, 104]'s file is deleted: reported, not dropped. */
  scan.symbols = only_msft;
  scan.symbol_count = 1;
  scan.columns = volume_only;
  scan.column_count = 1;
  EXPECT_OK(fstore_store_list(store, &stream, &err), err);
  CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
  for (r = 0; r < table.n_rows; r++) {
    if (strcmp(at_table_column(&table, "symbol")->str[r], "MSFT") == 0 && at_table_column(&table, "start_date")->i32[r] == 100) {
      snprintf(path, sizeof path, "%s/%s", dir, at_table_column(&table, "path")->str[r]);
      CHECK(unlink(path) == 0);
    }
  }
  at_table_free(&table);
  EXPECT_OK(fstore_store_scan(store, &scan, &stream, &missing, &err), err);
  CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
  CHECK(at_stream_read(&missing, &gone, why, sizeof why) == 0);
  CHECK(table.n_rows == 5 && table.n_columns == 4 && strcmp(table.columns[3].name, "volume") == 0);
  CHECK(gone.n_rows == 1 && gone.n_columns == 6);
  CHECK(strcmp(at_table_column(&gone, "symbol")->str[0], "MSFT") == 0);
  CHECK(at_table_column(&gone, "start_date")->i32[0] == 100 && at_table_column(&gone, "end_date")->i32[0] == 104);
  CHECK(strcmp(at_table_column(&gone, "config")->str[0], "{\"n\":1}") == 0);
  CHECK(strcmp(at_table_column(&gone, "reason")->str[0], "its file is missing") == 0);
  at_table_free(&table);
  at_table_free(&gone);

  /* Hostile requests: clear statuses, outputs untouched. */
  memset(&stream, 0, sizeof stream);
  memset(&missing, 0, sizeof missing);
  scan.columns = unknown;
  EXPECT(fstore_store_scan(store, &scan, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "unknown column 'nope'");
  CHECK(stream.release == NULL && missing.release == NULL);
  scan.columns = with_null;
  EXPECT(fstore_store_scan(store, &scan, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "columns[0] is NULL");
  scan.column_count = 0;
  scan.symbol_count = 0;
  EXPECT(fstore_store_scan(store, &scan, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "the symbol list is empty");
  scan.symbols = NULL;
  scan.symbol_count = 2;
  EXPECT(fstore_store_scan(store, &scan, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "symbols is NULL");
  scan.symbol_count = 0;
  scan.start_date = 200;
  EXPECT(fstore_store_scan(store, &scan, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "the window is inverted");
  scan.start_date = 100;
  scan.feature_set = NULL;
  EXPECT(fstore_store_scan(store, &scan, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "scan.feature_set is NULL");
  scan.feature_set = "scan";
  EXPECT(fstore_store_scan(store, NULL, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "scan is NULL");
  EXPECT(fstore_store_scan(NULL, &scan, &stream, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_scan(store, &scan, NULL, &missing, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  EXPECT(fstore_store_scan(store, &scan, &stream, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "missing is NULL");
  CHECK(stream.release == NULL && missing.release == NULL);

  /* Nothing in the window: the key columns only. */
  scan.start_date = 5000;
  scan.end_date = 6000;
  EXPECT_OK(fstore_store_scan(store, &scan, &stream, &missing, &err), err);
  CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
  CHECK(at_stream_read(&missing, &gone, why, sizeof why) == 0);
  CHECK(table.n_rows == 0 && table.n_columns == 3 && gone.n_rows == 0);
  at_table_free(&table);
  at_table_free(&gone);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* NULL handles and outputs, for every call that takes them. */
static void test_null_arguments(void) {
  fixture f;
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_stats stats;
  compute_ctx ctx;
  bool present;
  fstore_key key;
  fixture_open(&f);
  ctx_init(&ctx, COMPUTE_SAMPLE, 4, 19000, 2.0);
  key = make_key("returns", "NULLS", 1, 2, NULL);

  EXPECT(fstore_store_get(NULL, &f.good, NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "store is NULL");
  EXPECT(fstore_store_get(f.store, NULL, NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "key is NULL");
  EXPECT(fstore_store_get(f.store, &f.good, NULL, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "out is NULL");
  EXPECT(fstore_store_get_or_compute(NULL, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_get_or_compute(f.store, NULL, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_ARGUMENT, err, "key is NULL");
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, NULL, &err),
         FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, NULL, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_ARGUMENT, err, "compute is NULL");
  CHECK(ctx_calls(&ctx) == 0);
  FIXTURE_INTACT(&f);

  /* put takes the stream whatever happens */
  make_sample(&stream, 4, 1, 1, 1.0, AT_STREAM_OK);
  EXPECT(fstore_store_put(NULL, &key, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  CHECK(stream.release == NULL);
  make_sample(&stream, 4, 1, 1, 1.0, AT_STREAM_OK);
  EXPECT(fstore_store_put(f.store, NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "key is NULL");
  CHECK(stream.release == NULL);
  EXPECT(fstore_store_put(f.store, &key, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "input is NULL");
  FIXTURE_INTACT(&f);

  EXPECT(fstore_store_contains(NULL, &f.good, &present, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "store is NULL");
  EXPECT(fstore_store_contains(f.store, NULL, &present, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "key is NULL");
  EXPECT(fstore_store_contains(f.store, &f.good, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "out is NULL");
  EXPECT(fstore_store_invalidate(NULL, &f.good, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_invalidate(f.store, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "key is NULL");
  EXPECT(fstore_store_stats(NULL, &stats, sizeof(fstore_stats), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_stats(f.store, NULL, sizeof(fstore_stats), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  EXPECT(fstore_store_stats(f.store, &stats, 0, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out_size is 0");
  {
    /* A caller built against an older, smaller fstore_stats: only its fields are written. */
    fstore_stats older;
    memset(&older, 0xab, sizeof older);
    EXPECT_OK(fstore_store_stats(f.store, &older, sizeof(uint64_t), &err), err);
    CHECK(older.hits != UINT64_C(0xabababababababab));
    CHECK(older.misses == UINT64_C(0xabababababababab));
  }
  EXPECT(fstore_store_list(NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_list(f.store, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  EXPECT(fstore_store_flush(NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_request_set_timeout_ms(NULL, 5, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "request is NULL");
  FIXTURE_INTACT(&f);

  /* One error struct reused without release: the library frees the old text. */
  CHECK(fstore_store_flush(NULL, &err) == FSTORE_STATUS_INVALID_ARGUMENT);
  CHECK(fstore_store_stats(NULL, &stats, sizeof(fstore_stats), &err) == FSTORE_STATUS_INVALID_ARGUMENT);
  CHECK_ERR(err.message != NULL && strstr(err.message, "store is NULL") != NULL, err);
  fstore_error_release(&err);
  /* And a NULL error struct is fine. */
  CHECK(fstore_store_get(NULL, &f.good, NULL, &stream, NULL) == FSTORE_STATUS_INVALID_ARGUMENT);
  CHECK(fstore_store_get(f.store, &key, NULL, &stream, NULL) == FSTORE_STATUS_NOT_FOUND);
  ctx_destroy(&ctx);
  fixture_close(&f);
}

typedef struct bad_key_case {
  const char *label;
  fstore_key key;
  const char *needle;
} bad_key_case;

/* Malformed keys, through every call that takes a key. */
static void test_bad_keys(void) {
  static char long_name[FSTORE_MAX_NAME_BYTES + 2];
  fixture f;
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  compute_ctx ctx;
  bool present;
  int i;
  bad_key_case cases[14];
  int n = 0;
  fixture_open(&f);
  ctx_init(&ctx, COMPUTE_SAMPLE, 4, 19000, 2.0);
  memset(long_name, 's', FSTORE_MAX_NAME_BYTES + 1);
  long_name[FSTORE_MAX_NAME_BYTES + 1] = '\0';

#define CASE(label_, key_, needle_)  \
  do {                               \
    cases[n].label = (label_);       \
    cases[n].key = (key_);           \
    cases[n].needle = (needle_);     \
    n++;                             \
  } while (0)
  CASE("NULL feature_set", make_key(NULL, "AAPL", 1, 2, NULL), "key.feature_set is NULL");
  CASE("NULL symbol", make_key("returns", NULL, 1, 2, NULL), "key.symbol is NULL");
  CASE("non-UTF-8 symbol", make_key("returns", "AA\xff\xfePL", 1, 2, NULL), "key.symbol is not valid UTF-8");
  CASE("non-UTF-8 feature_set", make_key("ret\xc3urns", "AAPL", 1, 2, NULL), "key.feature_set is not valid UTF-8");
  CASE("non-UTF-8 config", make_key("returns", "AAPL", 1, 2, "{\"a\": \"\xe2\x28\xa1\"}"), "key.config is not valid UTF-8");
  CASE("empty symbol", make_key("returns", "", 1, 2, NULL), "symbol is empty");
  CASE("empty feature_set", make_key("", "AAPL", 1, 2, NULL), "feature_set is empty");
  CASE("1025-byte symbol", make_key("returns", long_name, 1, 2, NULL), "symbol is 1025 bytes long");
  CASE("1025-byte feature_set", make_key(long_name, "AAPL", 1, 2, NULL), "feature_set is 1025 bytes long");
  CASE("end before start", make_key("returns", "AAPL", 19009, 19000, GOOD_CONFIG), "end_date 19000 is before start_date 19009");
  CASE("invalid JSON", make_key("returns", "AAPL", 19000, 19009, "{\"window\": 20,"), "invalid config JSON");
  CASE("JSON that is not JSON", make_key("returns", "AAPL", 19000, 19009, "window=20"), "invalid config JSON");
  CASE("duplicate JSON keys", make_key("returns", "AAPL", 19000, 19009, "{\"window\": 20, \"window\": 21}"), "duplicate member name \"window\"");
  CASE("trailing JSON text", make_key("returns", "AAPL", 19000, 19009, "{} {}"), "invalid config JSON");
#undef CASE

  for (i = 0; i < n; i++) {
    const fstore_key *key = &cases[i].key;
    const char *needle = cases[i].needle;
    printf("  bad key: %s\n", cases[i].label);
    memset(&stream, 0, sizeof stream);
    EXPECT(fstore_store_get_or_compute(f.store, key, NULL, compute, &ctx, &stream, &err),
           FSTORE_STATUS_INVALID_ARGUMENT, err, needle);
    CHECK(stream.release == NULL);
    EXPECT(fstore_store_get(f.store, key, NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, needle);
    CHECK(stream.release == NULL);
    make_sample(&stream, 4, 1, 1, 1.0, AT_STREAM_OK);
    EXPECT(fstore_store_put(f.store, key, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, needle);
    CHECK(stream.release == NULL);
    EXPECT(fstore_store_contains(f.store, key, &present, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, needle);
    EXPECT(fstore_store_invalidate(f.store, key, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, needle);
    CHECK(ctx_calls(&ctx) == 0);
    FIXTURE_INTACT(&f);
  }

  /* The limits themselves are accepted. */
  {
    fstore_key at_limit = make_key(long_name, long_name, 5, 5, NULL);
    long_name[FSTORE_MAX_NAME_BYTES] = '\0';
    EXPECT_OK(fstore_store_get_or_compute(f.store, &at_limit, NULL, compute, &ctx, &stream, &err), err);
    EXPECT_SAMPLE(&stream, 4, 19000, 2.0);
    CHECK(ctx_calls(&ctx) == 1);
    EXPECT_OK(fstore_store_contains(f.store, &at_limit, &present, &err), err);
    CHECK(present);
    EXPECT_OK(fstore_store_invalidate(f.store, &at_limit, &err), err);
  }
  ctx_destroy(&ctx);
  fixture_close(&f);
}

/* Callbacks that fail or return no data: nothing is stored, the next call retries. */
static void test_callback_failures(void) {
  fixture f;
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_stats stats;
  compute_ctx ctx;
  bool present = true;
  fstore_key key = make_key("returns", "ERR", 40, 49, "{\"source\": \"feed\"}");
  fixture_open(&f);

  /* an error status with a message */
  ctx_init(&ctx, COMPUTE_FAIL, 10, 40, 6.0);
  ctx.message = "upstream feed is down for ERR";
  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_CALLBACK_FAILED, err, "upstream feed is down for ERR");
  CHECK(stream.release == NULL);
  CHECK(ctx_calls(&ctx) == 1);
  stats = get_stats(f.store);
  CHECK(stats.compute_failures == 1);
  EXPECT_OK(fstore_store_contains(f.store, &key, &present, &err), err);
  CHECK(!present);
  FIXTURE_INTACT_AFTER_COMPUTE(&f);
  /* the next call retries, and succeeds */
  ctx.action = COMPUTE_SAMPLE;
  EXPECT_OK(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 40, 6.0);
  CHECK(ctx_calls(&ctx) == 2);
  EXPECT_OK(fstore_store_invalidate(f.store, &key, &err), err);
  f.files = entry_files(f.dir);
  f.stats = get_stats(f.store);
  ctx_destroy(&ctx);

  /* another status, and no message: still CALLBACK_FAILED, and it says so */
  ctx_init(&ctx, COMPUTE_FAIL, 10, 40, 6.0);
  ctx.status = FSTORE_STATUS_IO;
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_CALLBACK_FAILED, err, "status 7");
  CHECK(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err) ==
        FSTORE_STATUS_CALLBACK_FAILED);
  CHECK_ERR(err.message != NULL && strstr(err.message, "no message") != NULL, err);
  fstore_error_release(&err);
  CHECK(ctx_calls(&ctx) == 2);
  FIXTURE_INTACT_AFTER_COMPUTE(&f);
  ctx_destroy(&ctx);

  /* a failure that had filled the stream: the library releases it */
  ctx_init(&ctx, COMPUTE_FAIL_AFTER_FILL, 10, 40, 6.0);
  ctx.message = "half done, then gave up";
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_CALLBACK_FAILED, err, "half done, then gave up");
  FIXTURE_INTACT_AFTER_COMPUTE(&f); /* includes: no live arrow objects left */
  ctx_destroy(&ctx);

  /* OK without data */
  ctx_init(&ctx, COMPUTE_LEAVE_UNSET, 10, 40, 6.0);
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_DATA, err, "not set");
  CHECK(stream.release == NULL);
  CHECK(get_stats(f.store).compute_failures >= 4);
  FIXTURE_INTACT_AFTER_COMPUTE(&f);
  ctx_destroy(&ctx);

  /* a stream that fails midway */
  ctx_init(&ctx, COMPUTE_SAMPLE, 10, 40, 6.0);
  ctx.kind = AT_STREAM_FAIL_AFTER_FIRST;
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_DATA, err, "simulated read failure");
  FIXTURE_INTACT_AFTER_COMPUTE(&f);
  /* a stream whose schema cannot be read */
  ctx.kind = AT_STREAM_FAIL_SCHEMA;
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_DATA, err, "simulated schema failure");
  FIXTURE_INTACT_AFTER_COMPUTE(&f);
  /* a batch whose structure differs from the schema */
  ctx.kind = AT_STREAM_WRONG_CHILDREN;
  EXPECT(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_DATA, err,
         "does not match the stream's schema");
  FIXTURE_INTACT_AFTER_COMPUTE(&f);
  CHECK(ctx_calls(&ctx) == 3);
  /* after all that, a good compute of the same key */
  ctx.kind = AT_STREAM_OK;
  EXPECT_OK(fstore_store_get_or_compute(f.store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 40, 6.0);
  ctx_destroy(&ctx);
  fixture_close(&f);
}

/* Bad streams handed to put. */
static void test_bad_put_streams(void) {
  fixture f;
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_key key = make_key("returns", "PUT", 40, 49, NULL);
  bool present = true;
  fixture_open(&f);

  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_put(f.store, &key, &stream, &err), FSTORE_STATUS_INVALID_DATA, err, "not set");
  FIXTURE_INTACT(&f);
  make_sample(&stream, 10, 3, 40, 1.0, AT_STREAM_FAIL_AFTER_FIRST);
  EXPECT(fstore_store_put(f.store, &key, &stream, &err), FSTORE_STATUS_INVALID_DATA, err,
         "simulated read failure");
  CHECK(stream.release == NULL);
  FIXTURE_INTACT(&f);
  make_sample(&stream, 10, 3, 40, 1.0, AT_STREAM_FAIL_SCHEMA);
  EXPECT(fstore_store_put(f.store, &key, &stream, &err), FSTORE_STATUS_INVALID_DATA, err,
         "simulated schema failure");
  CHECK(stream.release == NULL);
  FIXTURE_INTACT(&f);
  make_sample(&stream, 10, 3, 40, 1.0, AT_STREAM_WRONG_CHILDREN);
  EXPECT(fstore_store_put(f.store, &key, &stream, &err), FSTORE_STATUS_INVALID_DATA, err,
         "does not match the stream's schema");
  CHECK(stream.release == NULL);
  FIXTURE_INTACT(&f);
  /* Arrays whose contents contradict what they declare, within honest sizes. */
  make_sample(&stream, 10, 3, 40, 1.0, AT_STREAM_NULLS_NO_BITMAP);
  EXPECT(fstore_store_put(f.store, &key, &stream, &err), FSTORE_STATUS_INVALID_DATA, err,
         "column 'volume' has null_count 1 but no validity bitmap");
  CHECK(stream.release == NULL);
  FIXTURE_INTACT(&f);
  make_sample(&stream, 10, 3, 40, 1.0, AT_STREAM_NULL_COUNT_LIE);
  EXPECT(fstore_store_put(f.store, &key, &stream, &err), FSTORE_STATUS_INVALID_DATA, err,
         "column 'volume' is invalid");
  CHECK(stream.release == NULL);
  FIXTURE_INTACT(&f);
  /* A failed put over an existing entry leaves the old data in place. */
  make_sample(&stream, 10, 3, 40, 1.0, AT_STREAM_NULL_COUNT_LIE);
  EXPECT(fstore_store_put(f.store, &f.good, &stream, &err), FSTORE_STATUS_INVALID_DATA, err,
         "null_count");
  FIXTURE_INTACT(&f);
  make_sample(&stream, 10, 3, 40, 1.0, AT_STREAM_FAIL_AFTER_FIRST);
  EXPECT(fstore_store_put(f.store, &f.good, &stream, &err), FSTORE_STATUS_INVALID_DATA, err,
         "simulated read failure");
  FIXTURE_INTACT(&f);
  EXPECT_OK(fstore_store_contains(f.store, &key, &present, &err), err);
  CHECK(!present);
  fixture_close(&f);
}

/* ---- threads ------------------------------------------------------------- */

typedef struct caller {
  pthread_t thread;
  const fstore_store *store;
  const fstore_key *key;
  const fstore_request *request;
  compute_ctx *ctx;
  fstore_status status;
  fstore_error err;
  at_table table;
  int read_failed;
  double returned_at;
} caller;

static void *caller_main(void *arg) {
  caller *c = (caller *)arg;
  struct ArrowArrayStream stream;
  char why[256];
  memset(&stream, 0, sizeof stream);
  c->status = fstore_store_get_or_compute(c->store, c->key, c->request, compute, c->ctx, &stream, &c->err);
  c->returned_at = now_ms();
  if (c->status == FSTORE_STATUS_OK) c->read_failed = at_stream_read(&stream, &c->table, why, sizeof why);
  return NULL;
}

static void caller_start(caller *c, const fstore_store *store, const fstore_key *key,
                         const fstore_request *request, compute_ctx *ctx) {
  memset(c, 0, sizeof *c);
  c->store = store;
  c->key = key;
  c->request = request;
  c->ctx = ctx;
  CHECK(pthread_create(&c->thread, NULL, caller_main, c) == 0);
}

static void caller_join(caller *c) {
  CHECK(pthread_join(c->thread, NULL) == 0);
  CHECK_ERR(c->status == FSTORE_STATUS_OK, c->err);
  CHECK(c->read_failed == 0);
  fstore_error_release(&c->err);
}

static void test_threads_compute_once(void) {
  enum { N = 6 };
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("returns", "SHARED", 70, 79, NULL);
  caller callers[N];
  compute_ctx ctx;
  fstore_stats stats;
  int i;
  ctx_init(&ctx, COMPUTE_SAMPLE, 10, 70, 12.0);
  ctx.sleep_ms = scaled(300);
  for (i = 0; i < N; i++) caller_start(&callers[i], store, &key, NULL, &ctx);
  for (i = 0; i < N; i++) {
    const at_column_data *close;
    caller_join(&callers[i]);
    close = at_table_column(&callers[i].table, "close");
    CHECK(callers[i].table.n_rows == 10 && close != NULL && close->f64[9] == 12.0 + 9 * 0.25);
    at_table_free(&callers[i].table);
  }
  CHECK(ctx_calls(&ctx) == 1);
  stats = get_stats(store);
  CHECK(stats.computes == 1);
  CHECK(stats.waits + stats.hits >= N - 1);
  ctx_destroy(&ctx);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

typedef struct canceller {
  pthread_t thread;
  const fstore_request *request;
  long delay_ms;
  double cancelled_at;
} canceller;

static void *canceller_main(void *arg) {
  canceller *c = (canceller *)arg;
  sleep_ms(c->delay_ms);
  c->cancelled_at = now_ms();
  fstore_request_cancel(c->request);
  return NULL;
}

static void test_cancel(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("returns", "SLOW", 80, 89, NULL);
  fstore_request *request = fstore_request_new();
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  compute_ctx slow, never;
  caller leader;
  canceller cancel;
  fstore_status status;
  double returned_at;
  ctx_init(&slow, COMPUTE_SAMPLE, 10, 80, 13.0);
  ctx_init(&never, COMPUTE_SAMPLE, 10, 80, 666.0);
  slow.sleep_ms = scaled(1200);

  caller_start(&leader, store, &key, NULL, &slow); /* the third thread: computes, slowly */
  ctx_wait_started(&slow);
  memset(&cancel, 0, sizeof cancel);
  cancel.request = request;
  cancel.delay_ms = scaled(200);
  CHECK(pthread_create(&cancel.thread, NULL, canceller_main, &cancel) == 0); /* the second */
  memset(&stream, 0, sizeof stream);
  status = fstore_store_get_or_compute(store, &key, request, compute, &never, &stream, &err); /* waits */
  returned_at = now_ms();
  CHECK(pthread_join(cancel.thread, NULL) == 0);
  EXPECT(status, FSTORE_STATUS_CANCELLED, err, "cancelled");
  CHECK(stream.release == NULL);
  CHECK(ctx_calls(&never) == 0);
  if (returned_at - cancel.cancelled_at > scaled(500)) {
    fprintf(stderr, "cancel took %.0f ms to take effect\n", returned_at - cancel.cancelled_at);
  }
  CHECK(returned_at - cancel.cancelled_at < scaled(500));
  CHECK(ctx_calls(&slow) == 1);
  /* the leader is still computing, and then stores */
  caller_join(&leader);
  CHECK(leader.returned_at > returned_at);
  CHECK(leader.table.n_rows == 10);
  at_table_free(&leader.table);
  EXPECT_OK(fstore_store_get(store, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 80, 13.0);
  CHECK(get_stats(store).cancellations == 1);

  /* once cancelled, stays cancelled: a later wait with it returns at once */
  {
    fstore_key other = make_key("returns", "SLOW", 90, 99, NULL);
    caller second;
    slow.started = 0;
    slow.sleep_ms = scaled(600);
    caller_start(&second, store, &other, NULL, &slow);
    ctx_wait_started(&slow);
    status = fstore_store_get_or_compute(store, &other, request, compute, &never, &stream, &err);
    EXPECT(status, FSTORE_STATUS_CANCELLED, err, "cancelled");
    caller_join(&second);
    at_table_free(&second.table);
  }
  /* a hit needs no wait, so a cancelled request still reads */
  EXPECT_OK(fstore_store_get_or_compute(store, &key, request, compute, &never, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 80, 13.0);
  CHECK(ctx_calls(&never) == 0);

  ctx_destroy(&slow);
  ctx_destroy(&never);
  fstore_request_free(&request);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* Closing a store while other threads are inside calls on it is defined:
 * their waits end (CANCELLED), a running compute finishes and is published,
 * close returns after both, and the handle answers every later call. */
static void test_close_while_in_flight(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_store *copy = store; /* what another thread of a binding still holds */
  fstore_key key = make_key("returns", "CLOSING", 30, 39, NULL);
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_stats stats;
  compute_ctx slow, never;
  caller leader, follower;
  double closed_at, waited_ms = 0;
  ctx_init(&slow, COMPUTE_SAMPLE, 10, 30, 17.0);
  ctx_init(&never, COMPUTE_SAMPLE, 10, 30, 666.0);
  slow.sleep_ms = scaled(800);

  caller_start(&leader, store, &key, NULL, &slow);
  ctx_wait_started(&slow);
  caller_start(&follower, store, &key, NULL, &never);
  while (get_stats(store).waits < 1 && waited_ms < 10000) { /* the follower is waiting */
    sleep_ms(5);
    waited_ms += 5;
  }
  CHECK(get_stats(store).waits == 1);
  fstore_store_close(&store);
  closed_at = now_ms();
  CHECK(store == NULL);

  CHECK(pthread_join(follower.thread, NULL) == 0);
  EXPECT(follower.status, FSTORE_STATUS_CANCELLED, follower.err, "closed");
  CHECK(follower.returned_at < leader.returned_at || leader.returned_at == 0);
  fstore_error_release(&follower.err);
  caller_join(&leader); /* its compute finished and it got its data */
  CHECK(leader.table.n_rows == 10);
  CHECK(closed_at >= leader.returned_at);
  at_table_free(&leader.table);
  CHECK(ctx_calls(&never) == 0);

  /* The stale copy is refused cleanly, not used after free. */
  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_get(copy, &key, NULL, &stream, &err), FSTORE_STATUS_INVALID_STATE, err, "closed");
  EXPECT(fstore_store_get_or_compute(copy, &key, NULL, compute, &never, &stream, &err), FSTORE_STATUS_INVALID_STATE,
         err, "closed");
  memset(&stats, 0, sizeof stats);
  EXPECT(fstore_store_stats(copy, &stats, sizeof stats, &err), FSTORE_STATUS_INVALID_STATE, err, "closed");
  CHECK(fstore_store_manifest_backend(copy) == NULL);
  CHECK(ctx_calls(&never) == 0 && stream.release == NULL);
  fstore_store_close(&copy); /* closing again does nothing */
  CHECK(copy == NULL);

  /* The compute that ran during the close was published. */
  store = open_store(dir);
  EXPECT_OK(fstore_store_get(store, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 30, 17.0);
  fstore_store_close(&store);
  ctx_destroy(&slow);
  ctx_destroy(&never);
  remove_temp_dir(dir);
}

typedef struct closing_compute {
  fstore_store *store; /* closed by the callback itself */
} closing_compute;

static fstore_status compute_then_close(void *userdata, const fstore_key *key, struct ArrowArrayStream *out,
                                        fstore_error *error) {
  closing_compute *c = (closing_compute *)userdata;
  (void)key;
  (void)error;
  fstore_store_close(&c->store); /* must not wait for the call it is inside */
  make_sample(out, 6, 1, key->start_date, 4.0, AT_STREAM_OK);
  return FSTORE_STATUS_OK;
}

/* A compute callback that closes its own store: close returns at once, the
 * call completes, and the store is freed when it returns. */
static void test_close_from_a_callback(void) {
  char *dir = make_temp_dir();
  closing_compute c;
  fstore_store *held;
  fstore_key key = make_key("returns", "SELFCLOSE", 40, 49, NULL);
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  c.store = open_store(dir);
  held = c.store;
  memset(&stream, 0, sizeof stream);
  EXPECT_OK(fstore_store_get_or_compute(held, &key, NULL, compute_then_close, &c, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 6, 40, 4.0);
  CHECK(c.store == NULL);
  EXPECT(fstore_store_get(held, &key, NULL, &stream, &err), FSTORE_STATUS_INVALID_STATE, err, "closed");
  held = open_store(dir);
  EXPECT_OK(fstore_store_get(held, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 6, 40, 4.0);
  fstore_store_close(&held);
  remove_temp_dir(dir);
}

static void test_timeout(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("returns", "SLUGGISH", 80, 89, NULL);
  fstore_request *request = fstore_request_new();
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  compute_ctx slow, never;
  caller leader;
  double started, elapsed;
  char needle[64];
  ctx_init(&slow, COMPUTE_SAMPLE, 10, 80, 14.0);
  ctx_init(&never, COMPUTE_SAMPLE, 10, 80, 666.0);
  slow.sleep_ms = scaled(1000);

  caller_start(&leader, store, &key, NULL, &slow);
  ctx_wait_started(&slow);
  EXPECT_OK(fstore_request_set_timeout_ms(request, scaled(200), &err), err);
  snprintf(needle, sizeof needle, "gave up after %ld ms", scaled(200));
  started = now_ms();
  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_get_or_compute(store, &key, request, compute, &never, &stream, &err),
         FSTORE_STATUS_TIMEOUT, err, needle);
  elapsed = now_ms() - started;
  CHECK(stream.release == NULL);
  if (elapsed < scaled(200) - 5 || elapsed > scaled(1200)) fprintf(stderr, "timeout after %.0f ms\n", elapsed);
  CHECK(elapsed >= scaled(200) - 5 && elapsed < scaled(1200));
  /* 0: do not wait at all */
  EXPECT_OK(fstore_request_set_timeout_ms(request, 0, &err), err);
  started = now_ms();
  EXPECT(fstore_store_get_or_compute(store, &key, request, compute, &never, &stream, &err),
         FSTORE_STATUS_TIMEOUT, err, "gave up after 0 ms");
  CHECK(now_ms() - started < scaled(500));
  CHECK(ctx_calls(&never) == 0);
  CHECK(get_stats(store).timeouts == 2);
  /* negative: back to the store's bound (60 s here), so this waits for the leader */
  EXPECT_OK(fstore_request_set_timeout_ms(request, -1, &err), err);
  EXPECT_OK(fstore_store_get_or_compute(store, &key, request, compute, &never, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 80, 14.0);
  CHECK(ctx_calls(&never) == 0);
  caller_join(&leader);
  at_table_free(&leader.table);

  ctx_destroy(&slow);
  ctx_destroy(&never);
  fstore_request_free(&request);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* ---- manifest backends, summary, maintenance, PostgreSQL ------------------ */

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  CHECK(fputs(text, f) >= 0);
  CHECK(fclose(f) == 0);
}

/* Reads the manifest of `store` (after a flush) into `table`. */
static void read_list(const fstore_store *store, at_table *table) {
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  char why[256];
  EXPECT_OK(fstore_store_flush(store, &err), err);
  EXPECT_OK(fstore_store_list(store, &stream, &err), err);
  if (at_stream_read(&stream, table, why, sizeof why) != 0) fprintf(stderr, "list: %s\n", why);
  CHECK(table->n_columns > 0);
}

static void put_sample(const fstore_store *store, const char *symbol, int32_t start, int rows) {
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_key key = make_key("returns", symbol, start, start + rows - 1, NULL);
  make_sample(&stream, rows, 1, start, 1.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &key, &stream, &err), err);
}

/* Log lines a test's callback received. */
static struct {
  int warn, other;
  char last[1024];
} log_lines;

static void log_lines_reset(void) { memset(&log_lines, 0, sizeof log_lines); }

static void log_line(void *userdata, fstore_log_level level, const char *message) {
  (void)userdata;
  if (level == FSTORE_LOG_WARN) log_lines.warn++;
  else log_lines.other++;
  snprintf(log_lines.last, sizeof log_lines.last, "%s", message);
}

static void test_log_levels(void) {
  char *dir = make_temp_dir();
  fstore_options *options = fstore_options_new();
  fstore_store *store = NULL;
  fstore_error err = {0};
  EXPECT_OK(fstore_options_set(options, "cache_dir", dir, &err), err);
  EXPECT_OK(fstore_options_set(options, "postgres.host", "127.0.0.1", &err), err);
  EXPECT_OK(fstore_options_set(options, "postgres.port", "1", &err), err);
  EXPECT_OK(fstore_options_set(options, "postgres.connect_timeout_ms", "300", &err), err);
  EXPECT(fstore_log_set_level(6, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "log level 6");
  log_lines_reset();
  fstore_log_set_callback(log_line, NULL);
  EXPECT_OK(fstore_log_set_level(FSTORE_LOG_ERROR, &err), err); /* a warning is filtered out */
  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  CHECK(fstore_store_warnings(store) != NULL);
  CHECK(log_lines.warn == 0 && log_lines.other == 0);
  fstore_store_close(&store);
  EXPECT_OK(fstore_log_set_level(FSTORE_LOG_OFF, &err), err);
  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  CHECK(log_lines.warn == 0 && log_lines.other == 0);
  fstore_store_close(&store);
  fstore_log_set_callback(NULL, NULL);
  EXPECT_OK(fstore_log_set_level(FSTORE_LOG_WARN, &err), err);
  fstore_options_free(&options);
  remove_temp_dir(dir);
}

static void test_backend_choice(void) {
  static const char *const pg_vars[] = {"PG_MANIFEST_DSN", "PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER",
                                        "PG_PASSWORD"};
  char *dir = make_temp_dir();
  fstore_options *options = fstore_options_new();
  fstore_store *store = NULL;
  fstore_error err = {0};
  fstore_pool_stats pool;
  fstore_lock_stats locks;
  fstore_migration_report migration;
  size_t i;
  /* Only the options decide here, not the environment. */
  for (i = 0; i < sizeof pg_vars / sizeof pg_vars[0]; i++) unsetenv(pg_vars[i]);
  EXPECT_OK(fstore_options_set(options, "cache_dir", dir, &err), err);

  /* auto, no server configured: the embedded manifest, silently */
  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  CHECK(strcmp(fstore_store_manifest_backend(store), "duckdb") == 0);
  CHECK(fstore_store_warnings(store) == NULL);
  CHECK(fstore_store_warnings(NULL) == NULL);
  memset(&pool, 0xAB, sizeof pool);
  CHECK(fstore_store_pool_stats(store, &pool, sizeof(fstore_pool_stats), &err) == FSTORE_STATUS_NOT_FOUND);
  CHECK(err.status == FSTORE_STATUS_NOT_FOUND && err.message == NULL);
  CHECK(pool.size == 0xABABABABu); /* outputs are written only on success */
  CHECK(fstore_store_lock_stats(store, &locks, sizeof(fstore_lock_stats), &err) == FSTORE_STATUS_NOT_FOUND);
  CHECK(err.status == FSTORE_STATUS_NOT_FOUND && err.message == NULL);
  EXPECT(fstore_store_pool_stats(NULL, &pool, sizeof(fstore_pool_stats), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_pool_stats(store, NULL, sizeof(fstore_pool_stats), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  EXPECT(fstore_store_lock_stats(NULL, &locks, sizeof(fstore_lock_stats), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_lock_stats(store, NULL, sizeof(fstore_lock_stats), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  fstore_store_close(&store);

  /* postgres asked for, none configured: refused, saying what to set */
  EXPECT_OK(fstore_options_set(options, "manifest", "postgres", &err), err);
  EXPECT(fstore_store_open(options, &store, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "postgres.dsn");
  CHECK(store == NULL);
  EXPECT(fstore_migrate_schema(options, &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "no PostgreSQL server configured");
  EXPECT(fstore_migrate_manifest(options, &migration, sizeof(fstore_migration_report), &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "no PostgreSQL server configured");
  EXPECT(fstore_migrate_schema(NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "options is NULL");
  EXPECT(fstore_migrate_manifest(NULL, &migration, sizeof(fstore_migration_report), &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "options is NULL");
  EXPECT(fstore_migrate_manifest(options, NULL, sizeof(fstore_migration_report), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");

  /* a server that does not answer (nothing listens on port 1) */
  EXPECT_OK(fstore_options_set(options, "postgres.host", "127.0.0.1", &err), err);
  EXPECT_OK(fstore_options_set(options, "postgres.port", "1", &err), err);
  EXPECT_OK(fstore_options_set(options, "postgres.connect_timeout_ms", "300", &err), err);
  EXPECT(fstore_store_open(options, &store, &err), FSTORE_STATUS_UNAVAILABLE, err, "127.0.0.1");
  CHECK(store == NULL);
  EXPECT(fstore_migrate_schema(options, &err), FSTORE_STATUS_UNAVAILABLE, err, "127.0.0.1");
  /* ... under auto: the embedded manifest, with a warning that says why,
   * which also reaches the host's logger */
  EXPECT_OK(fstore_options_set(options, "manifest", "auto", &err), err);
  log_lines_reset();
  fstore_log_set_callback(log_line, NULL);
  EXPECT_OK(fstore_log_set_level(FSTORE_LOG_WARN, &err), err);
  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  fstore_log_set_callback(NULL, NULL);
  CHECK(log_lines.warn == 1 && log_lines.other == 0);
  CHECK(strstr(log_lines.last, "127.0.0.1") != NULL && strstr(log_lines.last, "DuckDB") != NULL);
  CHECK(strncmp(log_lines.last, "libfstore:", 10) != 0); /* the host's logger names the source */
  CHECK(strcmp(fstore_store_manifest_backend(store), "duckdb") == 0);
  CHECK(fstore_store_warnings(store) != NULL);
  if (fstore_store_warnings(store) != NULL) printf("  fallback warning: %s\n", fstore_store_warnings(store));
  CHECK(strstr(fstore_store_warnings(store), "127.0.0.1") != NULL);
  CHECK(strstr(fstore_store_warnings(store), "DuckDB") != NULL);
  put_sample(store, "FALLBACK", 1, 3);
  fstore_store_close(&store);

  fstore_options_free(&options);
  remove_temp_dir(dir);
}

static void test_summary(void) {
  static const char *const columns[] = {"feature_set", "symbol", "entries", "rows", "bytes", "oldest", "newest"};
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  at_table table;
  char why[256];
  int i;
  put_sample(store, "AAPL", 1, 5);
  put_sample(store, "AAPL", 10, 6);
  put_sample(store, "MSFT", 1, 5);
  EXPECT_OK(fstore_store_flush(store, &err), err);
  EXPECT_OK(fstore_store_summary(store, &stream, &err), err);
  CHECK(at_stream_read(&stream, &table, why, sizeof why) == 0);
  CHECK(table.n_columns == 7 && table.n_rows == 2);
  for (i = 0; i < 7 && i < table.n_columns; i++) CHECK(strcmp(table.columns[i].name, columns[i]) == 0);
  {
    const at_column_data *symbol = at_table_column(&table, "symbol");
    const at_column_data *entries = at_table_column(&table, "entries");
    const at_column_data *rows = at_table_column(&table, "rows");
    const at_column_data *bytes = at_table_column(&table, "bytes");
    const at_column_data *oldest = at_table_column(&table, "oldest");
    const at_column_data *newest = at_table_column(&table, "newest");
    CHECK(symbol && symbol->str && entries && entries->i64 && rows && rows->i64 && bytes && bytes->i64);
    CHECK(oldest && oldest->i64 && newest && newest->i64);
    for (i = 0; i < table.n_rows; i++) {
      int aapl = strcmp(symbol->str[i], "AAPL") == 0;
      CHECK(aapl || strcmp(symbol->str[i], "MSFT") == 0);
      CHECK(entries->i64[i] == (aapl ? 2 : 1));
      CHECK(rows->i64[i] == (aapl ? 11 : 5));
      CHECK(bytes->i64[i] > 0);
      CHECK(oldest->i64[i] <= newest->i64[i]);
    }
  }
  at_table_free(&table);
  EXPECT(fstore_store_summary(NULL, &stream, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_summary(store, NULL, &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

static void test_maintain(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_error err = {0};
  fstore_maintain_options settings;
  fstore_maintain_report report;
  at_table table;
  char temp_path[4300], orphan_path[4300], gone_path[4300], shard[4200];
  const at_column_data *ids, *starts;
  fstore_key kept = make_key("returns", "AAPL", 1, 5, NULL);
  bool present = false;
  int i;
  put_sample(store, "AAPL", 1, 5);
  put_sample(store, "AAPL", 10, 6);
  put_sample(store, "MSFT", 1, 5);

  /* NULL options: nothing expires, an hour of grace: nothing to do */
  memset(&report, 0xFF, sizeof report);
  EXPECT_OK(fstore_store_maintain(store, NULL, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), err);
  CHECK(report.expired_entries == 0 && report.rows_without_file == 0 && report.corrupt_files == 0 &&
        report.temp_files == 0 && report.bytes_freed == 0);
  CHECK(entry_files(dir) == 3);

  /* Drift: a writer's temporary file, a file no row points to, a row whose file is gone. */
  snprintf(shard, sizeof shard, "%s/data/00", dir);
  mkdir(shard, 0755);
  snprintf(temp_path, sizeof temp_path, "%s/stale-writer.parquet.tmp", shard);
  write_file(temp_path, "half a file");
  snprintf(orphan_path, sizeof orphan_path, "%s/%064d.parquet", shard, 0);
  write_file(orphan_path, "an entry file nobody lists");
  read_list(store, &table);
  ids = at_table_column(&table, "entry_id");
  starts = at_table_column(&table, "start_date");
  CHECK(ids != NULL && ids->str != NULL && starts != NULL && starts->i32 != NULL && table.n_rows == 3);
  gone_path[0] = '\0';
  for (i = 0; i < table.n_rows; i++) {
    if (starts->i32[i] == 10) {
      snprintf(gone_path, sizeof gone_path, "%s/data/%.2s/%s.parquet", dir, ids->str[i], ids->str[i]);
    }
  }
  at_table_free(&table);
  CHECK(gone_path[0] != '\0' && remove(gone_path) == 0);

  /* a dry run counts and removes nothing */
  settings.max_age_ms = -1;
  settings.grace_ms = 0;
  settings.dry_run = true;
  EXPECT_OK(fstore_store_maintain(store, &settings, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), err);
  CHECK(report.temp_files == 1 && report.corrupt_files == 1 && report.rows_without_file == 1);
  CHECK(report.expired_entries == 0 && report.bytes_freed > 0);
  CHECK(file_exists(temp_path) && file_exists(orphan_path));
  read_list(store, &table);
  CHECK(table.n_rows == 3);
  at_table_free(&table);

  /* the real run */
  settings.dry_run = false;
  EXPECT_OK(fstore_store_maintain(store, &settings, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), err);
  CHECK(report.temp_files == 1 && report.corrupt_files == 1 && report.rows_without_file == 1);
  CHECK(!file_exists(temp_path) && !file_exists(orphan_path));
  read_list(store, &table);
  CHECK(table.n_rows == 2);
  at_table_free(&table);
  EXPECT_OK(fstore_store_contains(store, &kept, &present, &err), err);
  CHECK(present);
  EXPECT_OK(fstore_store_maintain(store, &settings, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), err);
  CHECK(report.temp_files == 0 && report.corrupt_files == 0 && report.rows_without_file == 0);

  /* expiry: nothing younger than the grace period, then everything */
  settings.max_age_ms = 0;
  settings.grace_ms = 3600 * 1000;
  EXPECT_OK(fstore_store_maintain(store, &settings, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), err);
  CHECK(report.expired_entries == 0 && entry_files(dir) == 2);
  settings.grace_ms = 0;
  EXPECT_OK(fstore_store_maintain(store, &settings, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), err);
  CHECK(report.expired_entries == 2 && entry_files(dir) == 0);
  EXPECT_OK(fstore_store_contains(store, &kept, &present, &err), err);
  CHECK(!present);
  read_list(store, &table);
  CHECK(table.n_rows == 0);
  at_table_free(&table);

  settings.grace_ms = -1;
  EXPECT(fstore_store_maintain(store, &settings, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), FSTORE_STATUS_INVALID_ARGUMENT, err,
         "grace_ms is negative");
  EXPECT(fstore_store_maintain(NULL, NULL, sizeof(fstore_maintain_options), &report, sizeof(fstore_maintain_report), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "store is NULL");
  EXPECT(fstore_store_maintain(store, NULL, sizeof(fstore_maintain_options), NULL, sizeof(fstore_maintain_report), &err), FSTORE_STATUS_INVALID_ARGUMENT, err, "out is NULL");
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* A store on the PostgreSQL server of FSTORE_TEST_PG_DSN, in a schema of this
 * process: FSTORE_TEST_PG_SCHEMA (a prefix, default fstore_capi) and the pid. */
static fstore_options *pg_options(const char *dir) {
  const char *prefix = getenv("FSTORE_TEST_PG_SCHEMA");
  fstore_options *options = fstore_options_new();
  fstore_error err = {0};
  char schema[128];
  snprintf(schema, sizeof schema, "%s_%ld", prefix != NULL && *prefix != '\0' ? prefix : "fstore_capi",
           (long)getpid());
  EXPECT_OK(fstore_options_set(options, "cache_dir", dir, &err), err);
  EXPECT_OK(fstore_options_set(options, "manifest", "postgres", &err), err);
  EXPECT_OK(fstore_options_set(options, "postgres.dsn", getenv("FSTORE_TEST_PG_DSN"), &err), err);
  EXPECT_OK(fstore_options_set(options, "postgres.schema", schema, &err), err);
  EXPECT_OK(fstore_options_set(options, "wait.timeout_ms", "60000", &err), err);
  return options;
}

static void test_postgres(void) {
  const char *dsn = getenv("FSTORE_TEST_PG_DSN");
  char *dir, *old_dir;
  fstore_options *options, *migrate;
  fstore_store *store = NULL, *embedded;
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_pool_stats pool;
  fstore_lock_stats locks;
  fstore_migration_report migration;
  fstore_key key = make_key("returns", "PGSQL", 7, 16, "{\"n\": 1}");
  compute_ctx ctx;
  at_table table;
  if (dsn == NULL || *dsn == '\0') {
    printf("  skipped: FSTORE_TEST_PG_DSN is not set (tests/c/run.sh starts a server)\n");
    return;
  }
  dir = make_temp_dir();
  old_dir = make_temp_dir();
  options = pg_options(dir);
  ctx_init(&ctx, COMPUTE_SAMPLE, 10, 7, 31.0);
  EXPECT_OK(fstore_migrate_schema(options, &err), err);
  EXPECT_OK(fstore_migrate_schema(options, &err), err); /* idempotent */
  { /* A server's refusal carries its SQLSTATE: 3D000, no such database. */
    fstore_options *nowhere = pg_options(dir);
    char bad_dsn[1024];
    snprintf(bad_dsn, sizeof bad_dsn, "%s dbname=fstore_no_such_database", dsn);
    EXPECT_OK(fstore_options_set(nowhere, "postgres.dsn", bad_dsn, &err), err);
    EXPECT_OK(fstore_options_set(nowhere, "wait.timeout_ms", "2000", &err), err);
    EXPECT(fstore_migrate_schema(nowhere, &err), FSTORE_STATUS_UNAVAILABLE, err, "fstore_no_such_database");
    CHECK_ERR(strcmp(err.sqlstate, "3D000") == 0, err);
    fstore_error_release(&err);
    fstore_options_free(&nowhere);
  }

  EXPECT_OK(fstore_store_open(options, &store, &err), err);
  CHECK(strcmp(fstore_store_manifest_backend(store), "postgres") == 0);
  CHECK(fstore_store_warnings(store) == NULL);
  EXPECT_OK(fstore_store_pool_stats(store, &pool, sizeof(fstore_pool_stats), &err), err);
  CHECK(pool.size >= 1 && pool.idle + pool.in_use <= pool.size);
  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 7, 31.0);
  EXPECT_OK(fstore_store_get_or_compute(store, &key, NULL, compute, &ctx, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 10, 7, 31.0);
  CHECK(ctx_calls(&ctx) == 1);
  EXPECT_OK(fstore_store_lock_stats(store, &locks, sizeof(fstore_lock_stats), &err), err);
  CHECK(locks.waiting == 0);
  read_list(store, &table);
  CHECK(table.n_rows >= 1);
  at_table_free(&table);
  EXPECT_OK(fstore_store_summary(store, &stream, &err), err);
  CHECK(at_stream_read(&stream, &table, NULL, 0) == 0 && table.n_rows >= 1);
  at_table_free(&table);

  /* an embedded manifest moves into PostgreSQL, once */
  embedded = open_store(old_dir);
  put_sample(embedded, "LEGACY", 1, 4);
  put_sample(embedded, "LEGACY", 20, 4);
  fstore_store_close(&embedded);
  migrate = pg_options(old_dir);
  EXPECT_OK(fstore_migrate_manifest(migrate, &migration, sizeof(fstore_migration_report), &err), err);
  CHECK(migration.rows_read == 2 && migration.inserted == 2 && migration.already_present == 0);
  EXPECT_OK(fstore_migrate_manifest(migrate, &migration, sizeof(fstore_migration_report), &err), err);
  CHECK(migration.rows_read == 2 && migration.inserted == 0 && migration.already_present == 2);
  {
    const at_column_data *symbol;
    int r, legacy = 0;
    read_list(store, &table);
    symbol = at_table_column(&table, "symbol");
    CHECK(symbol != NULL && symbol->str != NULL);
    for (r = 0; r < table.n_rows; r++) legacy += strcmp(symbol->str[r], "LEGACY") == 0;
    CHECK(legacy == 2);
    at_table_free(&table);
  }
  fstore_options_free(&migrate);
  ctx_destroy(&ctx);
  fstore_store_close(&store);
  fstore_options_free(&options);
  remove_temp_dir(dir);
  remove_temp_dir(old_dir);
}

/* ---- fork ---------------------------------------------------------------- */

/* Leaves a forked child through exec: a memory checker watching this process
 * (valgrind) would count the parent's threads' memory, copied by fork(), as
 * the child's leaks. The shell only passes `code` on. */
static void exit_forked_child(int code) {
  char text[16];
  fflush(stdout);
  fflush(stderr);
  snprintf(text, sizeof text, "%d", code);
  execl("/bin/sh", "sh", "-c", "exit \"$0\"", text, (char *)NULL);
  _exit(code);
}

/* In the child: exit codes name the failed step. */
static int child_steps(fstore_store *inherited, const char *dir, const fstore_key *key) {
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_store *own = NULL;
  fstore_options *options;
  compute_ctx ctx;
  bool present;
  at_table table;
  char why[256];
  ctx_init(&ctx, COMPUTE_SAMPLE, 3, 1, 1.0);

  memset(&stream, 0, sizeof stream);
  EXPECT(fstore_store_get(inherited, key, NULL, &stream, &err), FSTORE_STATUS_INVALID_STATE, err, "fork");
  EXPECT(fstore_store_get_or_compute(inherited, key, NULL, compute, &ctx, &stream, &err),
         FSTORE_STATUS_INVALID_STATE, err, "fork");
  if (ctx_calls(&ctx) != 0) return 10;
  make_sample(&stream, 3, 1, 1, 1.0, AT_STREAM_OK);
  EXPECT(fstore_store_put(inherited, key, &stream, &err), FSTORE_STATUS_INVALID_STATE, err, "fork");
  if (stream.release != NULL) return 11;
  EXPECT(fstore_store_contains(inherited, key, &present, &err), FSTORE_STATUS_INVALID_STATE, err, "fork");
  EXPECT(fstore_store_invalidate(inherited, key, &err), FSTORE_STATUS_INVALID_STATE, err, "fork");
  EXPECT(fstore_store_list(inherited, &stream, &err), FSTORE_STATUS_INVALID_STATE, err, "fork");
  EXPECT(fstore_store_flush(inherited, &err), FSTORE_STATUS_INVALID_STATE, err, "fork");

  options = fstore_options_new();
  EXPECT_OK(fstore_options_set(options, "cache_dir", dir, &err), err);
  EXPECT_OK(fstore_store_open(options, &own, &err), err);
  fstore_options_free(&options);
  EXPECT_OK(fstore_store_get(own, key, NULL, &stream, &err), err);
  if (at_stream_read(&stream, &table, why, sizeof why) != 0 || table.n_rows != 9) return 12;
  at_table_free(&table);
  fstore_store_close(&own);
  fstore_store_close(&inherited); /* must not hang (the parent's threads are not here) */
  if (inherited != NULL) return 13;
  ctx_destroy(&ctx);
  return 0;
}

static void test_fork(void) {
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key key = make_key("returns", "FORKED", 1, 9, "{}");
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  pid_t pid;
  int wstatus = 0;
  make_sample(&stream, 9, 1, 1, 21.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &key, &stream, &err), err);
  EXPECT_OK(fstore_store_flush(store, &err), err); /* the manifest writer is idle at fork() */
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int code;
    alarm((unsigned)(30 * time_scale)); /* a hang kills the child, and the parent notices */
    code = child_steps(store, dir, &key);
    exit_forked_child(code);
  }
  CHECK(waitpid(pid, &wstatus, 0) == pid);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    fprintf(stderr, "the child %s %d\n", WIFEXITED(wstatus) ? "exited with" : "was killed by signal",
            WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
  }
  CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  /* the parent's store is unaffected */
  EXPECT_OK(fstore_store_get(store, &key, NULL, &stream, &err), err);
  EXPECT_SAMPLE(&stream, 9, 1, 21.0);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* ---- fork while the parent works ------------------------------------------ */

/* A parent thread that keeps the store busy until told to stop: putting
 * entries (the manifest writer then works) or computing new keys of the
 * symbol the children compute on (a compute holds the symbol's lock). */
typedef struct busy_thread {
  pthread_t thread;
  fstore_store *store;
  int puts; /* else computes */
  pthread_mutex_t *mutex;
  const int *stop;
  int calls;
  fstore_status status;
  fstore_error err;
} busy_thread;

static int busy_should_stop(busy_thread *b) {
  int stop;
  pthread_mutex_lock(b->mutex);
  stop = *b->stop;
  pthread_mutex_unlock(b->mutex);
  return stop;
}

static void *busy_main(void *arg) {
  busy_thread *b = (busy_thread *)arg;
  compute_ctx ctx;
  ctx_init(&ctx, COMPUTE_SAMPLE, 4, 0, 3.0);
  ctx.sleep_ms = 3;
  while (b->status == FSTORE_STATUS_OK && !busy_should_stop(b)) {
    int32_t start = 10 * b->calls;
    struct ArrowArrayStream stream;
    if (b->puts) {
      fstore_key key = make_key("returns", "BUSYPUT", start, start + 3, NULL);
      make_sample(&stream, 4, 1, start, 3.0, AT_STREAM_OK);
      b->status = fstore_store_put(b->store, &key, &stream, &b->err);
    } else {
      fstore_key key = make_key("returns", "BUSY", start, start + 3, NULL);
      memset(&stream, 0, sizeof stream);
      b->status = fstore_store_get_or_compute(b->store, &key, NULL, compute, &ctx, &stream, &b->err);
      if (b->status == FSTORE_STATUS_OK) stream.release(&stream);
    }
    b->calls++;
  }
  ctx_destroy(&ctx);
  return NULL;
}

enum { BUSY_CHILD_START = 100000 };

/* In a child forked while the parent's threads work: opens its own store,
 * computes a key of its own (on the busy symbol), reads the parent's entry.
 * Returns 0 or the failed step; says why on stderr. */
static int busy_child(const char *dir, int n, const fstore_key *shared) {
  fstore_error err = {0};
  fstore_options *options = fstore_options_new();
  fstore_store *own = NULL;
  int32_t start = BUSY_CHILD_START + 10 * n;
  fstore_key key = make_key("returns", "BUSY", start, start + 4, NULL);
  struct ArrowArrayStream stream;
  compute_ctx ctx;
  at_table table;
  char wait_ms[32];
  int code = 0;
  ctx_init(&ctx, COMPUTE_SAMPLE, 5, start, 40.0 + n);
  memset(&stream, 0, sizeof stream);
  /* a lock this child can never get ends as TIMEOUT, well inside the parent's bound */
  snprintf(wait_ms, sizeof wait_ms, "%ld", scaled(10000));
  if (options == NULL || fstore_options_set(options, "cache_dir", dir, &err) != FSTORE_STATUS_OK ||
      fstore_options_set(options, "wait.timeout_ms", wait_ms, &err) != FSTORE_STATUS_OK) {
    code = 20;
  } else if (fstore_store_open(options, &own, &err) != FSTORE_STATUS_OK) {
    code = 21;
  } else if (fstore_store_get_or_compute(own, &key, NULL, compute, &ctx, &stream, &err) != FSTORE_STATUS_OK) {
    code = 22;
  } else if (at_stream_read(&stream, &table, NULL, 0) != 0 || table.n_rows != 5) {
    code = 23;
  } else {
    at_table_free(&table);
    if (fstore_store_get(own, shared, NULL, &stream, &err) != FSTORE_STATUS_OK) {
      code = 24;
    } else if (at_stream_read(&stream, &table, NULL, 0) != 0 || table.n_rows != 9) {
      code = 25;
    } else {
      at_table_free(&table);
    }
  }
  if (code != 0) {
    fprintf(stderr, "forked child %d failed at step %d: %s\n", n, code, err.message ? err.message : "(no message)");
  }
  fstore_error_release(&err);
  fstore_store_close(&own);
  fstore_options_free(&options);
  ctx_destroy(&ctx);
  return code;
}

/* Each thread of `pid`: its name and what it waits in, from /proc. */
static void describe_threads(pid_t pid) {
  char path[320], comm[64], wchan[128];
  struct dirent *entry;
  DIR *tasks;
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  tasks = opendir(path);
  if (tasks == NULL) return;
  while ((entry = readdir(tasks)) != NULL) {
    FILE *f;
    if (entry->d_name[0] == '.') continue;
    comm[0] = wchan[0] = '\0';
    snprintf(path, sizeof path, "/proc/%d/task/%s/comm", (int)pid, entry->d_name);
    if ((f = fopen(path, "r")) != NULL) {
      if (fgets(comm, sizeof comm, f) != NULL) comm[strcspn(comm, "\n")] = '\0';
      fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/task/%s/wchan", (int)pid, entry->d_name);
    if ((f = fopen(path, "r")) != NULL) {
      if (fgets(wchan, sizeof wchan, f) == NULL) wchan[0] = '\0';
      fclose(f);
    }
    fprintf(stderr, "  thread %s (%s) waits in %s\n", entry->d_name, comm, wchan[0] ? wchan : "?");
  }
  closedir(tasks);
}

/* Waits for `pid` until `deadline` (now_ms() time); a child still running
 * then is described, killed, and counts as failed. Returns whether it exited 0. */
static int wait_child_bounded(pid_t pid, double deadline, int n) {
  int wstatus = 0;
  while (waitpid(pid, &wstatus, WNOHANG) != pid) {
    if (now_ms() >= deadline) {
      fprintf(stderr, "forked child %d (pid %d) still runs at its deadline: hung\n", n, (int)pid);
      describe_threads(pid);
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      return 0;
    }
    sleep_ms(5);
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    fprintf(stderr, "forked child %d %s %d\n", n, WIFEXITED(wstatus) ? "exited with" : "was killed by signal",
            WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
    return 0;
  }
  return 1;
}

/* Children forked at random moments while the parent's threads put and
 * compute each open their own store and work. */
static void test_fork_while_busy(void) {
  enum { CHILDREN = 4 };
  char *dir = make_temp_dir();
  fstore_store *store = open_store(dir);
  fstore_key shared = make_key("returns", "FORKSHARED", 1, 9, "{}");
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  int stop = 0, i, ok = 0;
  busy_thread busy[2];
  pid_t pids[CHILDREN];
  double deadlines[CHILDREN];
  long bound = scaled(30000);
  make_sample(&stream, 9, 1, 1, 21.0, AT_STREAM_OK);
  EXPECT_OK(fstore_store_put(store, &shared, &stream, &err), err);
  for (i = 0; i < 2; i++) {
    memset(&busy[i], 0, sizeof busy[i]);
    busy[i].store = store;
    busy[i].puts = i == 0;
    busy[i].mutex = &mutex;
    busy[i].stop = &stop;
    CHECK(pthread_create(&busy[i].thread, NULL, busy_main, &busy[i]) == 0);
  }
  srand((unsigned)time(NULL));
  fflush(stdout);
  fflush(stderr);
  for (i = 0; i < CHILDREN; i++) {
    sleep_ms(scaled(rand() % 40));
    deadlines[i] = now_ms() + bound;
    pids[i] = fork();
    CHECK(pids[i] >= 0);
    if (pids[i] == 0) {
      alarm((unsigned)(bound / 1000 + 10)); /* should the parent die: no orphan hangs forever */
      exit_forked_child(busy_child(dir, i, &shared));
    }
  }
  for (i = 0; i < CHILDREN; i++) ok += wait_child_bounded(pids[i], deadlines[i], i);
  pthread_mutex_lock(&mutex);
  stop = 1;
  pthread_mutex_unlock(&mutex);
  for (i = 0; i < 2; i++) {
    CHECK(pthread_join(busy[i].thread, NULL) == 0);
    CHECK_ERR(busy[i].status == FSTORE_STATUS_OK, busy[i].err);
    CHECK(busy[i].calls > 0);
  }
  CHECK(ok == CHILDREN);
  for (i = 0; i < CHILDREN; i++) { /* every child's entry is there */
    fstore_key key = make_key("returns", "BUSY", BUSY_CHILD_START + 10 * i, BUSY_CHILD_START + 10 * i + 4, NULL);
    EXPECT_OK(fstore_store_get(store, &key, NULL, &stream, &err), err);
    EXPECT_SAMPLE(&stream, 5, BUSY_CHILD_START + 10 * i, 40.0 + i);
  }
  pthread_mutex_destroy(&mutex);
  fstore_store_close(&store);
  remove_temp_dir(dir);
}

/* ---- main ---------------------------------------------------------------- */

/* Whether `name` is one of the comma-separated names in `list`. */
static int is_listed(const char *list, const char *name) {
  size_t n = strlen(name);
  const char *at = list;
  while ((at = strstr(at, name)) != NULL) {
    if ((at == list || at[-1] == ',') && (at[n] == '\0' || at[n] == ',')) return 1;
    at += n;
  }
  return 0;
}

typedef struct test {
  const char *name;
  void (*run)(void);
} test;

int main(int argc, char **argv) {
  static const test tests[] = {
      {"version_and_status_names", test_version_and_status_names},
      {"error_struct", test_error_struct},
      {"lock_keys", test_lock_keys},
      {"options", test_options},
      {"open_close", test_open_close},
      {"unwritable_cache_dir", test_unwritable_cache_dir},
      {"get_or_compute", test_get_or_compute},
      {"try_get", test_try_get},
      {"projection", test_projection},
      {"put_contains_invalidate", test_put_contains_invalidate},
      {"config_canonical", test_config_canonical},
      {"key_canonical", test_key_canonical},
      {"list", test_list},
      {"scan", test_scan},
      {"null_arguments", test_null_arguments},
      {"bad_keys", test_bad_keys},
      {"callback_failures", test_callback_failures},
      {"bad_put_streams", test_bad_put_streams},
      {"threads_compute_once", test_threads_compute_once},
      {"cancel", test_cancel},
      {"close_while_in_flight", test_close_while_in_flight},
      {"close_from_a_callback", test_close_from_a_callback},
      {"timeout", test_timeout},
      {"backend_choice", test_backend_choice},
      {"log_levels", test_log_levels},
      {"summary", test_summary},
      {"maintain", test_maintain},
      {"postgres", test_postgres},
      {"fork", test_fork},
      {"fork_while_busy", test_fork_while_busy},
  };
  const char *scale = getenv("FSTORE_TEST_TIME_SCALE");
  const char *shard = getenv("FSTORE_TEST_SHARD");
  const char *skip = getenv("FSTORE_TEST_SKIP"); /* names, separated by commas */
  unsigned shard_index = 0, shard_count = 1;
  size_t i;
  int ran = 0;
  if (scale != NULL && atof(scale) >= 1.0) time_scale = atof(scale);
  /* FSTORE_TEST_SHARD=i/n runs every n-th test from the i-th (for parallel slow runs) */
  if (shard != NULL && *shard != '\0' &&
      (sscanf(shard, "%u/%u", &shard_index, &shard_count) != 2 || shard_count == 0 || shard_index >= shard_count)) {
    fprintf(stderr, "FSTORE_TEST_SHARD must be i/n with i < n, not '%s'\n", shard);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("libfstore %s\n", fstore_version());
  for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    double started;
    if (i % shard_count != shard_index) continue;
    /* optional filter: run only the tests named on the command line */
    if (argc > 1) {
      int j, wanted = 0;
      for (j = 1; j < argc; j++) wanted |= strcmp(argv[j], tests[i].name) == 0;
      if (!wanted) continue;
    }
    if (skip != NULL && is_listed(skip, tests[i].name)) {
      printf("skipped %s (FSTORE_TEST_SKIP)\n", tests[i].name);
      continue;
    }
    started = now_ms();
    tests[i].run();
    ran++;
    printf("ok %s (%.0f ms)\n", tests[i].name, now_ms() - started);
  }
  CHECK(ran > 0);
  CHECK(at_live_objects() == 0);
  printf("%d passed, 0 failed\n", checks_passed);
  return 0;
}
