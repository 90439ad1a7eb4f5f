/*
 * Deliberately broken: proves that a sanitizer variant of the tests still
 * reports, and fails, with the options and suppressions it runs under
 * (sanitizers.sh runs it before the tests and expects a report).
 *
 *   sanitizer_canary leak  leaks an error message that libfstore allocated
 *                          (LeakSanitizer must see the library's allocations)
 *   sanitizer_canary race  two threads write one counter without
 *                          synchronisation, one of them from a compute
 *                          callback that libfstore calls (ThreadSanitizer's
 *                          libfstore rules must not hide the test's own races)
 *
 * Environment: TMPDIR (where the race mode's cache directory goes).
 */
#define _XOPEN_SOURCE 700

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arrow_testing.h"
#include "fstore.h"

static int leak(void) {
  fstore_error err = {0};
  fstore_options *options = fstore_options_new();
  fstore_status status = fstore_options_set(options, "no_such_option", "x", &err);
  fstore_options_free(&options);
  printf("canary: leaking the message of status %u\n", (unsigned)status);
  memset(&err, 0, sizeof err); /* the only pointer to the message */
  return status == FSTORE_STATUS_INVALID_ARGUMENT ? 0 : 2;
}

static long unguarded_counter = 0;

static fstore_status compute(void *userdata, const fstore_key *key, struct ArrowArrayStream *out,
                             fstore_error *error) {
  double close[1] = {1.0};
  at_column column = {"close", AT_FLOAT64, close};
  (void)userdata;
  (void)key;
  (void)error;
  unguarded_counter++; /* races with bump() on the other thread */
  return at_stream_make(out, &column, 1, 1, 1, AT_STREAM_OK) == 0 ? FSTORE_STATUS_OK : FSTORE_STATUS_INTERNAL;
}

static void *bump(void *arg) {
  (void)arg;
  unguarded_counter++;
  return NULL;
}

static int race(void) {
  char dir[4096];
  const char *base = getenv("TMPDIR");
  fstore_error err = {0};
  fstore_options *options = fstore_options_new();
  fstore_store *store = NULL;
  fstore_key key = {.feature_set = "canary", .symbol = "RACE", .start_date = 1, .end_date = 2, .config = "{}"};
  struct ArrowArrayStream stream;
  pthread_t thread;
  fstore_status status;
  snprintf(dir, sizeof dir, "%s/fstore-canary-XXXXXX", base != NULL && *base != '\0' ? base : "/tmp");
  if (mkdtemp(dir) == NULL || fstore_options_set(options, "cache_dir", dir, &err) != FSTORE_STATUS_OK ||
      fstore_options_set(options, "manifest", "duckdb", &err) != FSTORE_STATUS_OK ||
      fstore_store_open(options, &store, &err) != FSTORE_STATUS_OK) {
    fprintf(stderr, "canary: cannot open a store in %s: %s\n", dir, err.message ? err.message : "mkdtemp failed");
    return 2;
  }
  fstore_options_free(&options);
  if (pthread_create(&thread, NULL, bump, NULL) != 0) return 2;
  memset(&stream, 0, sizeof stream);
  status = fstore_store_get_or_compute(store, &key, NULL, compute, NULL, &stream, &err);
  pthread_join(thread, NULL);
  if (stream.release != NULL) stream.release(&stream);
  fstore_store_close(&store);
  fstore_error_release(&err);
  printf("canary: counter %ld after a compute with status %u (cache %s)\n", unguarded_counter, (unsigned)status, dir);
  return status == FSTORE_STATUS_OK ? 0 : 2;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "leak") == 0) return leak();
  if (argc == 2 && strcmp(argv[1], "race") == 0) return race();
  fprintf(stderr, "usage: %s leak|race\n", argv[0]);
  return 2;
}
