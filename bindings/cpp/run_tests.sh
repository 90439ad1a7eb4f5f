#!/usr/bin/env bash
# Configures and builds the CMake project (C test against the shared and the
# static library, C++ binding test with GoogleTest), runs ctest, installs into
# a temporary prefix and builds the examples/cpp consumer against that install
# through find_package (shared and static) and through pkg-config (CMake and a
# plain compiler line, static), running each. Then builds the C++ binding test
# again in two sanitizer variants, each in its own build directory, and runs
# it: AddressSanitizer + UndefinedBehaviorSanitizer (leak detection on), and
# ThreadSanitizer (see tests/c/sanitizers.sh for what an uninstrumented
# libfstore means to each). A sanitizer report fails the run.
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
command -v pkg-config >/dev/null || missing+=("pkg-config (apt-get install pkgconf)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'run_tests.sh: missing: %s\n' "${missing[@]}" >&2
  exit 1
fi
lib_dir=$(cd "$lib_dir" 2>/dev/null && pwd) || { echo "run_tests.sh: FSTORE_LIB_DIR (${FSTORE_LIB_DIR:-$lib_dir_default}) does not exist; run 'cargo build --release' first" >&2; exit 1; }
[ -f "$lib_dir/libfstore.so" ] && [ -f "$lib_dir/libfstore.a" ] || {
  echo "run_tests.sh: libfstore.so or libfstore.a missing in $lib_dir; run 'cargo build --release' first" >&2; exit 1; }
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

# Everything, uninstrumented: ctest, install, the examples.
run_plain() {
  local build=$build_base
  echo "== variant: plain"
  configure "$build"
  cmake --build "$build" -j "$jobs"

  echo "== ctest"
  (cd "$build" && ctest --output-on-failure)

  echo "== installing into a temporary prefix"
  local prefix=$work/prefix
  cmake --install "$build" --prefix "$prefix"

  echo "== examples/cpp through find_package(fstore)"
  cmake -S "$root/examples/cpp" -B "$work/example-cmake" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix"
  cmake --build "$work/example-cmake"
  run_example cmake "$work/example-cmake/fstore_example"

  echo "== examples/cpp through find_package(fstore), static"
  cmake -S "$root/examples/cpp" -B "$work/example-static" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
    -DFSTORE_EXAMPLE_STATIC=ON
  cmake --build "$work/example-static"
  if ldd "$work/example-static/fstore_example" | grep -q libfstore; then
    echo "run_tests.sh: the static example links libfstore.so" >&2; exit 1
  fi
  run_example static "$work/example-static/fstore_example"

  echo "== examples/cpp through pkg-config"
  export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name fstore.pc)")
  cmake -S "$root/examples/cpp" -B "$work/example-pkgconfig" "${generator[@]}" -DFSTORE_EXAMPLE_USE_PKG_CONFIG=ON
  cmake --build "$work/example-pkgconfig"
  run_example pkgconfig "$work/example-pkgconfig/fstore_example"

  echo "== examples/cpp with \`pkg-config --static\` on a plain compiler line"
  local libdir
  libdir=$(pkg-config --variable=libdir fstore)
  # -l:libfstore.a picks the archive where -lfstore would pick the .so.
  "$cxx" -std=c++17 "$root/examples/cpp/main.cpp" $(pkg-config --cflags fstore) \
    $(pkg-config --static --libs fstore | sed 's/-lfstore\b/-l:libfstore.a/') -o "$work/example-pc-static"
  run_example pc-static "$work/example-pc-static"
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
