/*
 * Reads the lock-key reference vectors (tests/vectors/lock_keys.json:
 * {"lock_keys": [{"symbol": "...", "key": <int64>}, ...], ...}) with a small
 * JSON reader, so that the C and C++ tests need no JSON library.
 */
#ifndef FSTORE_LOCK_KEY_VECTORS_H
#define FSTORE_LOCK_KEY_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lkv_vector {
  char *symbol; /* UTF-8, escapes decoded */
  int64_t key;
} lkv_vector;

/*
 * Reads every vector of the file at `path` into a new array (*out, free with
 * lkv_free). Returns the number of vectors, or -1 with a description in
 * `err` (a file without vectors is an error too).
 */
int lkv_read(const char *path, lkv_vector **out, char *err, size_t err_len);

void lkv_free(lkv_vector *vectors, int count);

#ifdef __cplusplus
}
#endif

#endif /* FSTORE_LOCK_KEY_VECTORS_H */
