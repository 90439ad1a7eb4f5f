/*
 * The C side of per_call.py: what a hit costs a C caller, on the entry that
 * per_call.py stored, through a store of this process's own (memory cache on).
 *
 *   per_call CACHE_DIR FEATURE_SET SYMBOL START END CONFIG CALLS RUNS
 *
 * Prints two lines per measurement: its name, "wall" or "cpu" (the calling
 * thread's CPU time), then the microseconds per call of each run. A call includes releasing the stream, which every caller does;
 * "_read" variants also read every batch (what pyarrow.table does).
 */
#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fstore.h"

static double clock_us(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what, fstore_status status, const fstore_error *err) {
  fprintf(stderr, "per_call: %s failed: [%s] %s\n", what, fstore_status_name(status),
          err->message ? err->message : "(no message)");
  exit(1);
}

/* A hit never computes: reaching this is an error of the benchmark. */
static fstore_status never(void *userdata, const fstore_key *key, struct ArrowArrayStream *out,
                           fstore_error *error) {
  (void)userdata;
  (void)key;
  (void)out;
  fstore_error_set(error, FSTORE_STATUS_CALLBACK_FAILED, "the benchmark's entry is missing");
  return FSTORE_STATUS_CALLBACK_FAILED;
}

static void read_all(struct ArrowArrayStream *stream) {
  struct ArrowSchema schema;
  struct ArrowArray array;
  if (stream->get_schema(stream, &schema) != 0) {
    fprintf(stderr, "per_call: get_schema failed\n");
    exit(1);
  }
  schema.release(&schema);
  for (;;) {
    if (stream->get_next(stream, &array) != 0) {
      fprintf(stderr, "per_call: get_next failed\n");
      exit(1);
    }
    if (array.release == NULL) break;
    array.release(&array);
  }
}

typedef enum { GET_OR_COMPUTE, TRY_GET, GET } call_kind;

static void call_once(const fstore_store *store, const fstore_key *key, call_kind kind, int read) {
  struct ArrowArrayStream stream;
  fstore_error err = {0};
  fstore_status status;
  switch (kind) {
    case GET_OR_COMPUTE:
      status = fstore_store_get_or_compute(store, key, NULL, never, NULL, &stream, &err);
      break;
    case TRY_GET:
      status = fstore_store_try_get(store, key, NULL, &stream, &err);
      break;
    default:
      status = fstore_store_get(store, key, NULL, &stream, &err);
      break;
  }
  if (status != FSTORE_STATUS_OK) die("a hit", status, &err);
  if (read) read_all(&stream);
  stream.release(&stream);
}

/* Warms up first: the first hit decodes the file into the memory cache. */
static void measure(const char *name, const fstore_store *store, const fstore_key *key, call_kind kind,
                    int read, int calls, int runs) {
  int run, i;
  double *wall = (double *)calloc((size_t)runs, sizeof(double)), *cpu = (double *)calloc((size_t)runs, sizeof(double));
  if (wall == NULL || cpu == NULL) {
    fprintf(stderr, "per_call: out of memory\n");
    exit(1);
  }
  for (i = 0; i < calls / 10 + 10; i++) call_once(store, key, kind, read);
  for (run = 0; run < runs; run++) {
    double started = clock_us(CLOCK_MONOTONIC), started_cpu = clock_us(CLOCK_THREAD_CPUTIME_ID);
    for (i = 0; i < calls; i++) call_once(store, key, kind, read);
    cpu[run] = (clock_us(CLOCK_THREAD_CPUTIME_ID) - started_cpu) / calls;
    wall[run] = (clock_us(CLOCK_MONOTONIC) - started) / calls;
  }
  printf("%s wall", name);
  for (run = 0; run < runs; run++) printf(" %.3f", wall[run]);
  printf("\n%s cpu", name);
  for (run = 0; run < runs; run++) printf(" %.3f", cpu[run]);
  printf("\n");
  free(wall);
  free(cpu);
}

int main(int argc, char **argv) {
  fstore_error err = {0};
  fstore_options *options;
  fstore_store *store = NULL;
  fstore_key key;
  fstore_status status;
  int calls, runs;
  if (argc != 9) {
    fprintf(stderr, "usage: per_call CACHE_DIR FEATURE_SET SYMBOL START END CONFIG CALLS RUNS\n");
    return 2;
  }
  memset(&key, 0, sizeof key);
  key.feature_set = argv[2];
  key.symbol = argv[3];
  key.start_date = (int32_t)atol(argv[4]);
  key.end_date = (int32_t)atol(argv[5]);
  key.config = argv[6];
  calls = atoi(argv[7]);
  runs = atoi(argv[8]);
  if (calls < 1 || runs < 1) {
    fprintf(stderr, "per_call: CALLS and RUNS must be at least 1\n");
    return 2;
  }
  options = fstore_options_new();
  if ((status = fstore_options_set(options, "cache_dir", argv[1], &err)) != FSTORE_STATUS_OK) die("cache_dir", status, &err);
  if ((status = fstore_options_set(options, "memory_cache_mb", "64", &err)) != FSTORE_STATUS_OK) die("memory_cache_mb", status, &err);
  if ((status = fstore_store_open(options, &store, &err)) != FSTORE_STATUS_OK) die("open", status, &err);
  fstore_options_free(&options);
  measure("c_get_or_compute", store, &key, GET_OR_COMPUTE, 0, calls, runs);
  measure("c_get_or_compute_read", store, &key, GET_OR_COMPUTE, 1, calls, runs);
  measure("c_try_get", store, &key, TRY_GET, 0, calls, runs);
  measure("c_get", store, &key, GET, 0, calls, runs);
  fstore_store_close(&store);
  fstore_error_release(&err);
  return 0;
}
