#!/usr/bin/env bash
# Builds the C API test (C99, -Wall -Wextra -Werror -pedantic) against
# libfstore.so and runs it, then runs it again under valgrind (definite leaks
# and memory errors fail the run).
#
# Env: FSTORE_LIB_DIR (default $CARGO_TARGET_DIR/release, CARGO_TARGET_DIR
# defaulting to ~/.cache/fstore-target), FSTORE_LOCK_KEY_VECTORS (default the
# committed tests/vectors/lock_keys.json), FSTORE_TEST_PG_DSN (a PostgreSQL
# server for the PostgreSQL tests; default: a throwaway one started with
# tests/pg_server.sh), CC (default gcc, else cc), FSTORE_SKIP_VALGRIND=1 to
# skip the valgrind pass (not for CI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
lib_dir=${FSTORE_LIB_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}/release}
vectors=${FSTORE_LOCK_KEY_VECTORS:-$root/tests/vectors/lock_keys.json}
lib_dir=$(cd "$lib_dir" 2>/dev/null && pwd) || { echo "run.sh: FSTORE_LIB_DIR ($lib_dir) does not exist; run 'cargo build --release' first" >&2; exit 1; }
vectors=$(cd "$(dirname "$vectors")" && pwd)/$(basename "$vectors")

if [ -z "${CC:-}" ]; then
  if command -v gcc >/dev/null; then CC=gcc; elif command -v cc >/dev/null; then CC=cc; else
    echo "run.sh: no C compiler: install gcc (apt-get install gcc) or set CC" >&2; exit 1
  fi
fi
[ -f "$lib_dir/libfstore.so" ] || { echo "run.sh: $lib_dir/libfstore.so is missing; run 'cargo build --release' first" >&2; exit 1; }
[ -f "$vectors" ] || { echo "run.sh: lock-key vectors $vectors not found" >&2; exit 1; }
if [ "${FSTORE_SKIP_VALGRIND:-0}" != 1 ] && ! command -v valgrind >/dev/null; then
  echo "run.sh: valgrind is missing; it is part of this test (install it: apt-get install valgrind)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fstore-c-test.XXXXXX")
pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    "$root/tests/pg_server.sh" stop "$pg_dir"
  elif [ -n "${FSTORE_TEST_PG_DSN:-}" ] && command -v psql >/dev/null; then
    # the tests' schemas: $FSTORE_TEST_PG_SCHEMA followed by a pid
    psql "$FSTORE_TEST_PG_DSN" -q >/dev/null 2>&1 <<SQL || true
DO \$\$ DECLARE s text; BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE '${FSTORE_TEST_PG_SCHEMA}\\_%' LOOP
    EXECUTE 'DROP SCHEMA ' || quote_ident(s) || ' CASCADE';
  END LOOP;
END \$\$;
SQL
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/tmp"
outer_tmp=${TMPDIR:-/tmp}
export TMPDIR=$work/tmp FSTORE_LOCK_KEY_VECTORS=$vectors
# The PostgreSQL tests: a given server (FSTORE_TEST_PG_DSN), else a throwaway one.
export FSTORE_TEST_PG_SCHEMA=fstore_capi_test_$$
if [ -z "${FSTORE_TEST_PG_DSN:-}" ]; then
  # Not under $work: the server runs as another user, who must reach its directory.
  pg_dir=$(mktemp -d "${outer_tmp:-/tmp}/fstore-pg.XXXXXX")
  pg_env=$("$root/tests/pg_server.sh" start "$pg_dir") || {
    echo "run.sh: cannot start a PostgreSQL server for the PostgreSQL tests (see above)," \
      "or set FSTORE_TEST_PG_DSN to an existing server" >&2
    exit 1
  }
  eval "$pg_env"
  export FSTORE_TEST_PG_DSN
fi

echo "== building the C test with $CC against $lib_dir"
"$CC" -std=c99 -Wall -Wextra -Werror -pedantic -g -O1 \
  -I"$root/include" -I"$here" \
  "$here/test_capi.c" "$here/arrow_testing.c" "$here/lock_key_vectors.c" \
  -L"$lib_dir" -lfstore -Wl,-rpath,"$lib_dir" -lpthread \
  -o "$work/test_capi"

echo "== running the C test"
"$work/test_capi"

if [ "${FSTORE_SKIP_VALGRIND:-0}" = 1 ]; then
  echo "== valgrind pass skipped (FSTORE_SKIP_VALGRIND=1)"
  exit 0
fi
echo "== running the C test under valgrind"
# Sleeps and time bounds are scaled: valgrind runs code ~20x slower.
FSTORE_TEST_TIME_SCALE=${FSTORE_TEST_TIME_SCALE:-3} valgrind --quiet --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite --suppressions="$here/valgrind.supp" \
  "$work/test_capi"
