#!/usr/bin/env bash
# Builds the C API test (C99, -Wall -Wextra -Werror -pedantic) against
# libfstore.so and runs it in three variants, each built in its own directory:
#   plain     as a user builds it
#   valgrind  the plain build under valgrind (definite leaks and memory errors
#             fail the run)
#   asan      built with AddressSanitizer + UndefinedBehaviorSanitizer, leak
#             detection on (see sanitizers.sh for what an uninstrumented
#             libfstore means to it); any report fails the run
#
# Arguments name tests to run (default: all), e.g. `tests/c/run.sh fork_while_busy`.
# Env: FSTORE_LIB_DIR (default $CARGO_TARGET_DIR/release, CARGO_TARGET_DIR
# defaulting to ~/.cache/fstore-target), FSTORE_LOCK_KEY_VECTORS (default the
# committed tests/vectors/lock_keys.json), FSTORE_TEST_PG_DSN (a PostgreSQL
# server for the PostgreSQL tests; default: a throwaway one started with
# tests/pg_server.sh), CC (default gcc, else cc), FSTORE_C_VARIANTS (default
# "plain valgrind asan": which variants run), FSTORE_SKIP_VALGRIND=1 to leave
# valgrind out of them (not for CI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
lib_dir_default=${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}/release
lib_dir=${FSTORE_LIB_DIR:-$lib_dir_default}
vectors=${FSTORE_LOCK_KEY_VECTORS:-$root/tests/vectors/lock_keys.json}
lib_dir=$(cd "$lib_dir" 2>/dev/null && pwd) || { echo "run.sh: FSTORE_LIB_DIR (${FSTORE_LIB_DIR:-$lib_dir_default}) does not exist; run 'cargo build --release' first" >&2; exit 1; }
vectors=$(cd "$(dirname "$vectors")" && pwd)/$(basename "$vectors")

if [ -z "${CC:-}" ]; then
  if command -v gcc >/dev/null; then CC=gcc; elif command -v cc >/dev/null; then CC=cc; else
    echo "run.sh: no C compiler: install gcc (apt-get install gcc) or set CC" >&2; exit 1
  fi
fi
[ -f "$lib_dir/libfstore.so" ] || { echo "run.sh: $lib_dir/libfstore.so is missing; run 'cargo build --release' first" >&2; exit 1; }
[ -f "$vectors" ] || { echo "run.sh: lock-key vectors $vectors not found" >&2; exit 1; }
# The test links -lfstore, which records libfstore.so.0: give it that name.
bash "$root/tests/lib_links.sh" "$lib_dir"

variants=${FSTORE_C_VARIANTS:-plain valgrind asan}
if [ "${FSTORE_SKIP_VALGRIND:-0}" = 1 ]; then
  variants=$(echo "$variants" | sed 's/\bvalgrind\b//g')
  echo "== valgrind variant skipped (FSTORE_SKIP_VALGRIND=1)"
fi
. "$here/sanitizers.sh"
for variant in $variants; do
  case $variant in
    plain) ;;
    valgrind)
      command -v valgrind >/dev/null || {
        echo "run.sh: valgrind is missing; it is part of this test (install it: apt-get install valgrind)" >&2
        exit 1
      } ;;
    asan) fstore_sanitizer_check_runtime asan "$CC" || exit 1 ;;
    *) echo "run.sh: unknown variant '$variant' in FSTORE_C_VARIANTS (plain, valgrind, asan)" >&2; exit 1 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fstore-c-test.XXXXXX")
. "$root/tests/pg_env.sh"
cleanup() {
  fstore_pg_cleanup
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/tmp"
outer_tmp=${TMPDIR:-/tmp}
export TMPDIR=$work/tmp FSTORE_LOCK_KEY_VECTORS=$vectors
fstore_pg_setup run.sh fstore_capi_test "$outer_tmp" || exit 1

# Builds the test into $work/BUILD/test_capi (once) with extra compiler flags.
build() { # build BUILD FLAGS...
  local out=$work/$1/test_capi
  shift
  [ -x "$out" ] && return 0
  mkdir -p "$(dirname "$out")"
  echo "== building the C test with $CC${*:+ $*} against $lib_dir"
  "$CC" -std=c99 -Wall -Wextra -Werror -pedantic -g -O1 "$@" \
    -I"$root/include" -I"$here" \
    "$here/test_capi.c" "$here/arrow_testing.c" "$here/lock_key_vectors.c" \
    -L"$lib_dir" -lfstore -Wl,-rpath,"$lib_dir" -lpthread \
    -o "$out"
}

for variant in $variants; do
  echo "== variant: $variant"
  started=$SECONDS
  case $variant in
    plain)
      build plain
      "$work/plain/test_capi" "$@"
      ;;
    valgrind)
      build plain
      # Sleeps and time bounds are scaled: valgrind runs code ~20x slower.
      FSTORE_TEST_TIME_SCALE=${FSTORE_TEST_TIME_SCALE:-3} valgrind --quiet --error-exitcode=1 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite --suppressions="$here/valgrind.supp" \
        "$work/plain/test_capi" "$@"
      ;;
    asan)
      # shellcheck disable=SC2046 # the flags are words
      build asan $(fstore_sanitizer_flags asan)
      fstore_sanitizer_canary asan "$CC" "$lib_dir" "$work/asan"
      # Time bounds are doubled: ASan's allocator also serves libfstore.
      skip=""
      if ! fstore_sanitizer_fork_safe "$CC"; then
        # Before GCC 13 (LLVM 16) ASan's allocator takes no lock around
        # fork(): a child forked while another thread allocates inherits
        # its mutex held and hangs in malloc, whatever the code under test.
        skip=fork_while_busy
        echo "== asan: skipping fork_while_busy: $CC's AddressSanitizer is not fork-safe (GCC >= 13 or clang >= 16 is)"
      fi
      (fstore_sanitizer_env asan && FSTORE_TEST_SKIP=$skip FSTORE_TEST_TIME_SCALE=${FSTORE_TEST_TIME_SCALE:-2} "$work/asan/test_capi" "$@")
      ;;
  esac
  echo "== variant $variant passed in $((SECONDS - started)) s"
done
echo "run.sh: passed ($variants)"
