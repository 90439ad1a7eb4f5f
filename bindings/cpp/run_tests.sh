#!/usr/bin/env bash
# Configures and builds the CMake project against the prebuilt library
# (FSTORE_LIB_DIR: the C test against the shared and the static library, the
# C++ binding test with GoogleTest, examples/cpp), runs ctest and the example.
# Then builds the C++ binding test again in two sanitizer variants, each in
# its own build directory, and runs it: AddressSanitizer +
# UndefinedBehaviorSanitizer (leak detection on), and ThreadSanitizer (see
# tests/c/sanitizers.sh for what an uninstrumented libfstore means to each).
# A sanitizer report fails the run. Installing and consuming the library
# (find_package, pkg-config, add_subdirectory, FetchContent) is
# tests/packaging/consumers.sh's.
#
# Env: FSTORE_LIB_DIR (default $CARGO_TARGET_DIR/release, CARGO_TARGET_DIR
# defaulting to ~/.cache/fstore-target), FSTORE_LOCK_KEY_VECTORS (default the
# committed tests/vectors/lock_keys.json), FSTORE_TEST_PG_DSN (a PostgreSQL
# server for the PostgreSQL test; default: a throwaway one started with
# tests/pg_server.sh), FSTORE_CMAKE_BUILD_DIR (default
# ~/.cache/fstore/cmake-build; the sanitizer variants use it with -asan and
# -tsan appended), FSTORE_CPP_VARIANTS (default "plain asan tsan": which
# variants run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
lib_dir_default=${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}/release
lib_dir=${FSTORE_LIB_DIR:-$lib_dir_default}
vectors=${FSTORE_LOCK_KEY_VECTORS:-$root/tests/vectors/lock_keys.json}

missing=()
command -v cmake >/dev/null || missing+=("cmake (apt-get install cmake)")
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++17 compiler (apt-get install g++)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'run_tests.sh: missing: %s\n' "${missing[@]}" >&2
  exit 1
fi
lib_dir=$(cd "$lib_dir" 2>/dev/null && pwd) || { echo "run_tests.sh: FSTORE_LIB_DIR (${FSTORE_LIB_DIR:-$lib_dir_default}) does not exist; run 'cargo build --release' first" >&2; exit 1; }
[ -f "$lib_dir/libfstore.so" ] && [ -f "$lib_dir/libfstore.a" ] && [ -f "$lib_dir/fstore" ] || {
  echo "run_tests.sh: libfstore.so, libfstore.a or fstore missing in $lib_dir; run 'cargo build --release --lib --bins' first" >&2; exit 1; }
vectors=$(cd "$(dirname "$vectors")" && pwd)/$(basename "$vectors")

variants=${FSTORE_CPP_VARIANTS:-plain asan tsan}
for variant in $variants; do
  case $variant in
    plain | asan | tsan) ;;
    *) echo "run_tests.sh: unknown variant '$variant' in FSTORE_CPP_VARIANTS (plain, asan, tsan)" >&2; exit 1 ;;
  esac
done
. "$root/tests/c/sanitizers.sh"
cxx=$(command -v c++ || command -v g++)
cc=$(command -v cc || command -v gcc || echo cc)
for variant in $variants; do
  [ "$variant" = plain ] || fstore_sanitizer_check_runtime "$variant" "$cxx" || exit 1
done

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
build_base=${FSTORE_CMAKE_BUILD_DIR:-$HOME/.cache/fstore/cmake-build}

# Configures `build` for this checkout. A build dir configured from another
# checkout (or generator) cannot be reused.
configure() { # configure BUILD_DIR CMAKE_ARGS...
  local build=$1
  shift
  if [ -f "$build/CMakeCache.txt" ]; then
    local cached_src cached_gen want_gen=${generator[1]:-Unix Makefiles}
    cached_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
    cached_gen=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$build/CMakeCache.txt")
    if [ "$cached_src" != "$root" ] || [ "$cached_gen" != "$want_gen" ]; then rm -rf "$build"; fi
  fi
  echo "== configuring $build against $lib_dir"
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFSTORE_LIB_DIR="$lib_dir" -DFSTORE_LOCK_KEY_VECTORS="$vectors" "$@"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/fstore-cpp-test.XXXXXX")
. "$root/tests/pg_env.sh"
cleanup() {
  fstore_pg_cleanup
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/tmp"
outer_tmp=${TMPDIR:-/tmp}
export TMPDIR=$work/tmp FSTORE_LOCK_KEY_VECTORS=$vectors
fstore_pg_setup run_tests.sh fstore_cpp_test "$outer_tmp" || exit 1
jobs=$(nproc 2>/dev/null || echo 2)

run_example() { # <label> <binary>
  local cache=$work/cache-$1
  echo "-- running the example ($1)"
  "$2" "$cache"
}

# Everything, uninstrumented: ctest and examples/cpp as built in this tree.
run_plain() {
  local build=$build_base
  echo "== variant: plain"
  configure "$build"
  cmake --build "$build" -j "$jobs"

  echo "== ctest"
  (cd "$build" && ctest --output-on-failure)

  echo "== examples/cpp"
  run_example tree "$build/examples/cpp/fstore_example"
}

# The C++ binding's test alone (every test: each one runs libfstore's own
# threads too), instrumented with sanitizer VARIANT.
run_sanitized() { # run_sanitized VARIANT
  local variant=$1 build=$build_base-$1 flags
  flags=$(fstore_sanitizer_flags "$variant")
  echo "== variant: $variant ($flags)"
  configure "$build" -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags"
  cmake --build "$build" -j "$jobs" --target fstore_test_cpp
  fstore_sanitizer_canary "$variant" "$cc" "$lib_dir" "$build"
  echo "== ctest ($variant)"
  (
    fstore_sanitizer_env "$variant"
    cd "$build" && ctest --output-on-failure --no-tests=error -L cpp
  )
}

for variant in $variants; do
  started=$SECONDS
  case $variant in
    plain) run_plain ;;
    asan | tsan) run_sanitized "$variant" ;;
  esac
  echo "== variant $variant passed in $((SECONDS - started)) s"
done

echo "run_tests.sh: all C/C++ tests and examples passed ($variants)"
