/* Test-only Arrow C stream helpers; see arrow_testing.h. */
#include "arrow_testing.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hand-offs that ThreadSanitizer cannot see --------------------------- */

/*
 * libfstore hands a producer's batches to other threads: every caller waiting
 * on a compute reads the leader's batches, and the last one to let go calls
 * their release callback, on its own thread. The ordering comes from
 * libfstore's Mutex, Condvar and Arc, inside uninstrumented Rust, so
 * ThreadSanitizer sees none of it. These declare the edges libfstore
 * guarantees, for this memory only: a batch is complete before anyone reads
 * it (published at the end of get_next, received before reading), and every
 * reader is done before the batch is freed (published after reading,
 * received in the release callbacks). A reader that overlaps a write or a
 * free in time is still reported. No-ops without ThreadSanitizer.
 */
#if defined(__SANITIZE_THREAD__)
#define AT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AT_TSAN 1
#endif
#endif

#ifdef AT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static void handoff_publish(const void *addr) {
  if (addr != NULL) __tsan_release((void *)addr);
}
static void handoff_receive(const void *addr) {
  if (addr != NULL) __tsan_acquire((void *)addr);
}
#else
static void handoff_publish(const void *addr) { (void)addr; }
static void handoff_receive(const void *addr) { (void)addr; }
#endif

/* ---- the live-object counter ------------------------------------------ */

static pthread_mutex_t live_mutex = PTHREAD_MUTEX_INITIALIZER;
static long live_objects = 0;

static void live_add(long delta) {
  pthread_mutex_lock(&live_mutex);
  live_objects += delta;
  pthread_mutex_unlock(&live_mutex);
}

long at_live_objects(void) {
  long n;
  pthread_mutex_lock(&live_mutex);
  n = live_objects;
  pthread_mutex_unlock(&live_mutex);
  return n;
}

static char *copy_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = (char *)malloc(n);
  if (copy != NULL) memcpy(copy, s, n);
  return copy;
}

static size_t value_size(at_type type) { return type == AT_FLOAT64 ? sizeof(double) : sizeof(int32_t); }

static const char *type_format(at_type type) { return type == AT_FLOAT64 ? "g" : "tdD"; }

/* ---- producing --------------------------------------------------------- */

typedef struct stream_private {
  int n_columns;
  char **names;
  at_type *types;
  unsigned char **values; /* copies, n_rows values each */
  int64_t n_rows;
  int n_batches;
  int next_batch;
  at_stream_kind kind;
  const char *last_error;
} stream_private;

static void schema_child_release(struct ArrowSchema *schema) {
  free((void *)schema->name);
  schema->release = NULL;
  live_add(-1);
}

typedef struct schema_private {
  struct ArrowSchema **pointers;
  struct ArrowSchema *children;
} schema_private;

static void schema_release(struct ArrowSchema *schema) {
  schema_private *p = (schema_private *)schema->private_data;
  int64_t i;
  for (i = 0; i < schema->n_children; i++) {
    if (p->children[i].release != NULL) p->children[i].release(&p->children[i]);
  }
  free(p->pointers);
  free(p->children);
  free(p);
  schema->release = NULL;
  live_add(-1);
}

static int stream_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
  stream_private *s = (stream_private *)stream->private_data;
  schema_private *p;
  int i;
  if (s->kind == AT_STREAM_FAIL_SCHEMA) {
    s->last_error = AT_SCHEMA_FAILURE;
    return EIO;
  }
  p = (schema_private *)calloc(1, sizeof *p);
  if (p == NULL) return ENOMEM;
  p->pointers = (struct ArrowSchema **)calloc((size_t)s->n_columns + 1, sizeof *p->pointers);
  p->children = (struct ArrowSchema *)calloc((size_t)s->n_columns + 1, sizeof *p->children);
  if (p->pointers == NULL || p->children == NULL) {
    free(p->pointers);
    free(p->children);
    free(p);
    return ENOMEM;
  }
  memset(out, 0, sizeof *out);
  out->format = "+s";
  out->name = "";
  out->n_children = s->n_columns;
  out->children = p->pointers;
  out->release = schema_release;
  out->private_data = p;
  live_add(1);
  for (i = 0; i < s->n_columns; i++) {
    struct ArrowSchema *child = &p->children[i];
    p->pointers[i] = child;
    child->format = type_format(s->types[i]);
    child->name = copy_string(s->names[i]);
    child->flags = ARROW_FLAG_NULLABLE;
    child->release = schema_child_release;
    live_add(1);
    if (child->name == NULL) {
      out->release(out);
      return ENOMEM;
    }
  }
  return 0;
}

/* A child array owns its buffer pointers, its slice of values and its
 * validity bitmap, if any. */
typedef struct column_private {
  const void *buffers[2];
  unsigned char *values;
  unsigned char *bitmap;
} column_private;

static void column_release(struct ArrowArray *array) {
  column_private *p = (column_private *)array->private_data;
  handoff_receive(p);
  handoff_receive(p->values);
  free(p->values);
  free(p->bitmap);
  free(p);
  array->release = NULL;
  live_add(-1);
}

typedef struct batch_private {
  const void *buffers[1];
  struct ArrowArray **pointers;
  struct ArrowArray *children;
} batch_private;

static void batch_release(struct ArrowArray *array) {
  batch_private *p = (batch_private *)array->private_data;
  int64_t i;
  handoff_receive(p);
  for (i = 0; i < array->n_children; i++) {
    if (p->children[i].release != NULL) p->children[i].release(&p->children[i]);
  }
  free(p->pointers);
  free(p->children);
  free(p);
  array->release = NULL;
  live_add(-1);
}

static int stream_get_next(struct ArrowArrayStream *stream, struct ArrowArray *out) {
  stream_private *s = (stream_private *)stream->private_data;
  batch_private *p;
  int64_t first, end, i;
  int n_children = s->n_columns;
  if (s->kind == AT_STREAM_FAIL_AFTER_FIRST && s->next_batch >= 1) {
    s->last_error = AT_NEXT_FAILURE;
    return EIO;
  }
  memset(out, 0, sizeof *out);
  if (s->next_batch >= s->n_batches) return 0; /* end of stream: release stays NULL */
  if (s->kind == AT_STREAM_WRONG_CHILDREN) n_children = s->n_columns - 1;
  first = s->n_rows * s->next_batch / s->n_batches;
  end = s->n_rows * (s->next_batch + 1) / s->n_batches;

  p = (batch_private *)calloc(1, sizeof *p);
  if (p == NULL) return ENOMEM;
  p->pointers = (struct ArrowArray **)calloc((size_t)n_children + 1, sizeof *p->pointers);
  p->children = (struct ArrowArray *)calloc((size_t)n_children + 1, sizeof *p->children);
  if (p->pointers == NULL || p->children == NULL) {
    free(p->pointers);
    free(p->children);
    free(p);
    return ENOMEM;
  }
  out->length = end - first;
  out->n_buffers = 1;
  out->buffers = p->buffers;
  out->n_children = n_children;
  out->children = p->pointers;
  out->release = batch_release;
  out->private_data = p;
  live_add(1);
  for (i = 0; i < n_children; i++) {
    struct ArrowArray *child = &p->children[i];
    size_t size = value_size(s->types[i]);
    column_private *c = (column_private *)calloc(1, sizeof *c);
    if (c != NULL) c->values = (unsigned char *)malloc((size_t)(end - first) * size + 1);
    if (c == NULL || c->values == NULL) {
      free(c);
      out->n_children = i; /* release only what was made */
      out->release(out);
      return ENOMEM;
    }
    memcpy(c->values, s->values[i] + (size_t)first * size, (size_t)(end - first) * size);
    c->buffers[0] = NULL;
    c->buffers[1] = c->values;
    p->pointers[i] = child;
    child->length = end - first;
    child->n_buffers = 2;
    child->buffers = c->buffers;
    child->release = column_release;
    child->private_data = c;
    live_add(1);
    if (i == n_children - 1 && (s->kind == AT_STREAM_NULLS_NO_BITMAP || s->kind == AT_STREAM_NULL_COUNT_LIE)) {
      child->null_count = 1;
    }
    if (i == n_children - 1 && s->kind == AT_STREAM_NULL_COUNT_LIE) {
      size_t bitmap_size = (size_t)(end - first + 7) / 8;
      c->bitmap = (unsigned char *)malloc(bitmap_size + 1);
      if (c->bitmap == NULL) {
        out->release(out);
        return ENOMEM;
      }
      memset(c->bitmap, 0xff, bitmap_size + 1);
      c->buffers[0] = c->bitmap;
    }
  }
  s->next_batch++;
  for (i = 0; i < n_children; i++) {
    const column_private *c = (const column_private *)p->children[i].private_data;
    handoff_publish(c);
    handoff_publish(c->values);
  }
  handoff_publish(p);
  return 0;
}

static const char *stream_get_last_error(struct ArrowArrayStream *stream) {
  return ((stream_private *)stream->private_data)->last_error;
}

static void stream_private_free(stream_private *s) {
  int i;
  if (s == NULL) return;
  for (i = 0; i < s->n_columns; i++) {
    if (s->names != NULL) free(s->names[i]);
    if (s->values != NULL) free(s->values[i]);
  }
  free(s->names);
  free(s->types);
  free(s->values);
  free(s);
}

static void stream_release(struct ArrowArrayStream *stream) {
  stream_private_free((stream_private *)stream->private_data);
  stream->private_data = NULL;
  stream->release = NULL;
  live_add(-1);
}

int at_stream_make(struct ArrowArrayStream *out, const at_column *columns, int n_columns,
                   int64_t n_rows, int n_batches, at_stream_kind kind) {
  stream_private *s;
  int i;
  memset(out, 0, sizeof *out);
  if (n_columns < 0 || n_rows < 0 || (n_columns > 0 && columns == NULL)) return EINVAL;
  s = (stream_private *)calloc(1, sizeof *s);
  if (s == NULL) return ENOMEM;
  s->n_columns = n_columns;
  s->n_rows = n_rows;
  s->n_batches = n_batches < 1 ? 1 : n_batches;
  s->kind = kind;
  s->names = (char **)calloc((size_t)n_columns + 1, sizeof *s->names);
  s->types = (at_type *)calloc((size_t)n_columns + 1, sizeof *s->types);
  s->values = (unsigned char **)calloc((size_t)n_columns + 1, sizeof *s->values);
  if (s->names == NULL || s->types == NULL || s->values == NULL) {
    stream_private_free(s);
    return ENOMEM;
  }
  for (i = 0; i < n_columns; i++) {
    size_t bytes = (size_t)n_rows * value_size(columns[i].type);
    s->types[i] = columns[i].type;
    s->names[i] = copy_string(columns[i].name);
    s->values[i] = (unsigned char *)malloc(bytes + 1);
    if (s->names[i] == NULL || s->values[i] == NULL) {
      stream_private_free(s);
      return ENOMEM;
    }
    if (bytes > 0) memcpy(s->values[i], columns[i].values, bytes);
  }
  out->get_schema = stream_get_schema;
  out->get_next = stream_get_next;
  out->get_last_error = stream_get_last_error;
  out->release = stream_release;
  out->private_data = s;
  live_add(1);
  return 0;
}

/* ---- consuming --------------------------------------------------------- */

static int fail(char *err, size_t err_len, const char *fmt, ...) {
  va_list args;
  if (err != NULL && err_len > 0) {
    va_start(args, fmt);
    vsnprintf(err, err_len, fmt, args);
    va_end(args);
  }
  return 1;
}

static int grow(void **buffer, int64_t count, size_t size) {
  void *bigger = realloc(*buffer, (size_t)count * size + 1);
  if (bigger == NULL) return 1;
  *buffer = bigger;
  return 0;
}

static int is_int64_format(const char *f) {
  return strcmp(f, "l") == 0 || strcmp(f, "L") == 0 || strcmp(f, "tdm") == 0 || strncmp(f, "ts", 2) == 0;
}

/* Declares a reader's hold on `array`'s buffers: taken before reading them,
 * given back after (see "hand-offs" above). */
static void handoff_receive_buffers(const struct ArrowArray *array) {
  int64_t i;
  for (i = 0; i < array->n_buffers; i++) handoff_receive(array->buffers[i]);
}

static void handoff_publish_buffers(const struct ArrowArray *array) {
  int64_t i;
  for (i = 0; i < array->n_buffers; i++) handoff_publish(array->buffers[i]);
}

/* Appends `child`'s rows (starting at `offset`, the parent's and its own) to `col`. */
static int append_column(at_column_data *col, const struct ArrowArray *child, int64_t offset,
                         int64_t length, char *err, size_t err_len) {
  const char *f = col->format;
  const uint8_t *validity = child->n_buffers > 0 ? (const uint8_t *)child->buffers[0] : NULL;
  int64_t base = col->length, i;
  if (grow((void **)&col->is_null, base + length, 1)) return fail(err, err_len, "out of memory");
  for (i = 0; i < length; i++) {
    int64_t j = offset + i;
    col->is_null[base + i] = (uint8_t)(validity != NULL && !((validity[j / 8] >> (j % 8)) & 1));
  }
  if (strcmp(f, "g") == 0) {
    if (grow((void **)&col->f64, base + length, sizeof(double))) return fail(err, err_len, "out of memory");
    if (length > 0) memcpy(col->f64 + base, (const double *)child->buffers[1] + offset, (size_t)length * sizeof(double));
  } else if (strcmp(f, "i") == 0 || strcmp(f, "tdD") == 0) {
    if (grow((void **)&col->i32, base + length, sizeof(int32_t))) return fail(err, err_len, "out of memory");
    if (length > 0) memcpy(col->i32 + base, (const int32_t *)child->buffers[1] + offset, (size_t)length * sizeof(int32_t));
  } else if (is_int64_format(f)) {
    if (grow((void **)&col->i64, base + length, sizeof(int64_t))) return fail(err, err_len, "out of memory");
    if (length > 0) memcpy(col->i64 + base, (const int64_t *)child->buffers[1] + offset, (size_t)length * sizeof(int64_t));
  } else if (strcmp(f, "u") == 0 || strcmp(f, "U") == 0 || strcmp(f, "vu") == 0) {
    if (grow((void **)&col->str, base + length, sizeof(char *))) return fail(err, err_len, "out of memory");
    for (i = 0; i < length; i++) {
      int64_t j = offset + i, start = 0, size = 0;
      const char *bytes = NULL;
      char *copy;
      col->str[base + i] = NULL;
      if (col->is_null[base + i]) continue;
      if (f[0] == 'u') {
        const int32_t *offsets = (const int32_t *)child->buffers[1];
        start = offsets[j];
        size = offsets[j + 1] - offsets[j];
        bytes = (const char *)child->buffers[2];
      } else if (f[0] == 'U') {
        const int64_t *offsets = (const int64_t *)child->buffers[1];
        start = offsets[j];
        size = offsets[j + 1] - offsets[j];
        bytes = (const char *)child->buffers[2];
      } else { /* string view: 16-byte views, inline up to 12 bytes */
        const unsigned char *view = (const unsigned char *)child->buffers[1] + 16 * j;
        int32_t len, buffer_index, buffer_offset;
        memcpy(&len, view, 4);
        size = len;
        if (len <= 12) {
          bytes = (const char *)view + 4;
        } else {
          memcpy(&buffer_index, view + 8, 4);
          memcpy(&buffer_offset, view + 12, 4);
          bytes = (const char *)child->buffers[2 + buffer_index];
          start = buffer_offset;
        }
      }
      copy = (char *)malloc((size_t)size + 1);
      if (copy == NULL) return fail(err, err_len, "out of memory");
      if (size > 0) memcpy(copy, bytes + start, (size_t)size);
      copy[size] = '\0';
      col->str[base + i] = copy;
    }
  }
  col->length = base + length;
  return 0;
}

int at_stream_read(struct ArrowArrayStream *stream, at_table *out, char *err, size_t err_len) {
  struct ArrowSchema schema;
  int rc = 0, code, i;
  memset(out, 0, sizeof *out);
  memset(&schema, 0, sizeof schema);
  if (stream == NULL || stream->release == NULL) return fail(err, err_len, "the stream is not set");
  code = stream->get_schema(stream, &schema);
  if (code != 0) {
    const char *why = stream->get_last_error(stream);
    rc = fail(err, err_len, "get_schema failed (%d): %s", code, why ? why : "no message");
    goto done;
  }
  if (strcmp(schema.format, "+s") != 0) {
    rc = fail(err, err_len, "the schema is '%s', not a struct", schema.format);
    goto done;
  }
  out->n_columns = (int)schema.n_children;
  out->columns = (at_column_data *)calloc((size_t)out->n_columns + 1, sizeof *out->columns);
  if (out->columns == NULL) {
    out->n_columns = 0;
    rc = fail(err, err_len, "out of memory");
    goto done;
  }
  for (i = 0; i < out->n_columns; i++) {
    const struct ArrowSchema *field = schema.children[i];
    out->columns[i].name = copy_string(field->name ? field->name : "");
    out->columns[i].format = copy_string(field->format);
    if (out->columns[i].name == NULL || out->columns[i].format == NULL) {
      rc = fail(err, err_len, "out of memory");
      goto done;
    }
  }
  for (;;) {
    struct ArrowArray batch;
    memset(&batch, 0, sizeof batch);
    code = stream->get_next(stream, &batch);
    if (code != 0) {
      const char *why = stream->get_last_error(stream);
      rc = fail(err, err_len, "get_next failed (%d) after %d batches: %s", code, out->n_batches,
                why ? why : "no message");
      goto done;
    }
    if (batch.release == NULL) break;
    if (batch.n_children != out->n_columns) {
      rc = fail(err, err_len, "batch %d has %lld children, the schema %d", out->n_batches,
                (long long)batch.n_children, out->n_columns);
      batch.release(&batch);
      goto done;
    }
    for (i = 0; i < out->n_columns && rc == 0; i++) {
      const struct ArrowArray *child = batch.children[i];
      if (child->length < batch.offset + batch.length) {
        rc = fail(err, err_len, "column %d of batch %d is shorter than the batch", i, out->n_batches);
      } else {
        handoff_receive_buffers(child);
        rc = append_column(&out->columns[i], child, batch.offset + child->offset, batch.length, err, err_len);
        handoff_publish_buffers(child);
      }
    }
    out->n_rows += batch.length;
    out->n_batches++;
    batch.release(&batch);
    if (rc != 0) goto done;
  }
done:
  if (schema.release != NULL) schema.release(&schema);
  stream->release(stream);
  return rc;
}

void at_table_free(at_table *table) {
  int i;
  int64_t r;
  if (table == NULL) return;
  for (i = 0; i < table->n_columns; i++) {
    at_column_data *c = &table->columns[i];
    if (c->str != NULL) {
      for (r = 0; r < c->length; r++) free(c->str[r]);
    }
    free(c->name);
    free(c->format);
    free(c->f64);
    free(c->i32);
    free(c->i64);
    free(c->str);
    free(c->is_null);
  }
  free(table->columns);
  memset(table, 0, sizeof *table);
}

const at_column_data *at_table_column(const at_table *table, const char *name) {
  int i;
  for (i = 0; i < table->n_columns; i++) {
    if (strcmp(table->columns[i].name, name) == 0) return &table->columns[i];
  }
  return NULL;
}
