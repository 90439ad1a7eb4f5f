/*
 * Test-only helpers for the Arrow C stream interface: build streams of
 * float64 / date32 columns from plain arrays, read a stream back into plain
 * arrays, and make deliberately broken streams for error tests.
 *
 * C99 plus POSIX threads (a mutex guards the live-object counter). Shared by
 * the C and C++ tests; not part of the library.
 */
#ifndef FSTORE_ARROW_TESTING_H
#define FSTORE_ARROW_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include "fstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum at_type {
  AT_FLOAT64, /* Arrow format "g" */
  AT_DATE32   /* Arrow format "tdD": int32 days since 1970-01-01 */
} at_type;

/* One input column: `values` points at `n_rows` doubles or int32_t. */
typedef struct at_column {
  const char *name;
  at_type type;
  const void *values;
} at_column;

/* How a stream made by at_stream_make behaves. */
typedef enum at_stream_kind {
  AT_STREAM_OK,              /* every batch, then end of stream */
  AT_STREAM_FAIL_AFTER_FIRST,/* first batch, then get_next fails with EIO */
  AT_STREAM_WRONG_CHILDREN,  /* batches have one child fewer than the schema */
  AT_STREAM_FAIL_SCHEMA,     /* get_schema fails with EIO */
  AT_STREAM_NULLS_NO_BITMAP, /* the last column declares a null but has no validity bitmap */
  AT_STREAM_NULL_COUNT_LIE   /* the last column's bitmap has every row valid, yet declares a null */
} at_stream_kind;

/* The last error text of the broken streams, for message checks. */
#define AT_NEXT_FAILURE "arrow_testing: simulated read failure after batch 1"
#define AT_SCHEMA_FAILURE "arrow_testing: simulated schema failure"

/*
 * Writes into `out` a stream of the columns (copied, so the inputs may go
 * away), cut into `n_batches` batches of near-equal size (at least 1).
 * Returns 0, or ENOMEM / EINVAL (then `out` is left released).
 */
int at_stream_make(struct ArrowArrayStream *out, const at_column *columns, int n_columns,
                   int64_t n_rows, int n_batches, at_stream_kind kind);

/* A column read back. Exactly one of the value arrays is set, by format. */
typedef struct at_column_data {
  char *name;
  char *format;         /* Arrow format string, e.g. "g", "tdD", "u", "l" */
  int64_t length;
  double *f64;          /* "g" */
  int32_t *i32;         /* "i", "tdD" */
  int64_t *i64;         /* "l", "L" (as int64), "tdm", "ts?:*" */
  char **str;           /* "u", "U", "vu" (NUL-terminated copies; NULL for null) */
  uint8_t *is_null;     /* one byte per row, 1 for null */
} at_column_data;

typedef struct at_table {
  int n_columns;
  at_column_data *columns;
  int64_t n_rows;
  int n_batches;
} at_table;

/*
 * Reads the whole of `stream` (and releases it) into `out`, which owns copies
 * of everything. Returns 0, or non-zero with a description in `err`.
 * Columns of a format not listed above keep only their name, format and
 * length. Free `out` with at_table_free, whatever the result.
 */
int at_stream_read(struct ArrowArrayStream *stream, at_table *out, char *err, size_t err_len);

void at_table_free(at_table *table);

/* The column named `name`, or NULL. */
const at_column_data *at_table_column(const at_table *table, const char *name);

/*
 * Streams, schemas and arrays made here and not yet released. A test checks
 * that it returns to its earlier value to prove that the library released
 * what it took.
 */
long at_live_objects(void);

#ifdef __cplusplus
}
#endif

#endif /* FSTORE_ARROW_TESTING_H */
