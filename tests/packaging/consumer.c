/* A C program built against an installed libfstore with
 * `pkg-config --cflags --libs fstore`: checks that the library it loaded is
 * the version its header describes, opens a store in the cache directory
 * given as its argument and asks it about a key it cannot hold yet. */
#include <fstore/fstore.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, fstore_error *error) {
  fprintf(stderr, "consumer: %s: %s\n", what, error->message ? error->message : "(no message)");
  fstore_error_release(error);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <cache dir>\n", argv[0]);
    return 2;
  }
  if (fstore_version_number() != FSTORE_VERSION_NUMBER ||
      strcmp(fstore_version(), FSTORE_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: built against libfstore %s (%d), loaded %s (%u)\n", FSTORE_VERSION_STRING,
            FSTORE_VERSION_NUMBER, fstore_version(), (unsigned)fstore_version_number());
    return 1;
  }
  fstore_error error = {0};
  fstore_options *options = fstore_options_new();
  if (fstore_options_set(options, "cache_dir", argv[1], &error) != FSTORE_STATUS_OK) {
    fstore_options_free(&options);
    return fail("cache_dir", &error);
  }
  fstore_store *store = NULL;
  fstore_status status = fstore_store_open(options, &store, &error);
  fstore_options_free(&options);
  if (status != FSTORE_STATUS_OK) return fail("open", &error);

  fstore_key key = {0};
  key.feature_set = "returns";
  key.symbol = "AAPL";
  key.start_date = 19000;
  key.end_date = 19009;
  key.config = "{\"window\": 20}";
  bool held = true;
  status = fstore_store_contains(store, &key, &held, &error);
  fstore_store_close(&store);
  if (status != FSTORE_STATUS_OK) return fail("contains", &error);
  if (held) {
    fprintf(stderr, "consumer: a fresh cache claims to hold the key\n");
    return 1;
  }
  printf("consumer: libfstore %s, a fresh cache holds nothing: ok\n", fstore_version());
  return 0;
}
