#!/usr/bin/env bash
# Configures and builds the CMake project (C test against the shared and the
# static library, C++ binding test with GoogleTest), runs ctest, installs into
# a temporary prefix and builds the examples/cpp consumer against that install
# through find_package (shared and static) and through pkg-config (CMake and a
# plain compiler line, static), running each.
#
# Env: FSTORE_LIB_DIR (default $CARGO_TARGET_DIR/release, CARGO_TARGET_DIR
# defaulting to ~/.cache/fstore-target), FSTORE_LOCK_KEY_VECTORS (default the
# committed tests/vectors/lock_keys.json), FSTORE_TEST_PG_DSN (a PostgreSQL
# server for the PostgreSQL test; default: a throwaway one started with
# tests/pg_server.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
lib_dir=${FSTORE_LIB_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}/release}
vectors=${FSTORE_LOCK_KEY_VECTORS:-$root/tests/vectors/lock_keys.json}

missing=()
command -v cmake >/dev/null || missing+=("cmake (apt-get install cmake)")
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++17 compiler (apt-get install g++)")
command -v pkg-config >/dev/null || missing+=("pkg-config (apt-get install pkgconf)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'run_tests.sh: missing: %s\n' "${missing[@]}" >&2
  exit 1
fi
lib_dir=$(cd "$lib_dir" 2>/dev/null && pwd) || { echo "run_tests.sh: FSTORE_LIB_DIR ($lib_dir) does not exist; run 'cargo build --release' first" >&2; exit 1; }
[ -f "$lib_dir/libfstore.so" ] && [ -f "$lib_dir/libfstore.a" ] || {
  echo "run_tests.sh: libfstore.so or libfstore.a missing in $lib_dir; run 'cargo build --release' first" >&2; exit 1; }
vectors=$(cd "$(dirname "$vectors")" && pwd)/$(basename "$vectors")

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
build=$HOME/.cache/fstore/cmake-build
# A build dir configured from another checkout (or generator) cannot be reused.
if [ -f "$build/CMakeCache.txt" ]; then
  cached_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
  cached_gen=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$build/CMakeCache.txt")
  want_gen=${generator[1]:-Unix Makefiles}
  if [ "$cached_src" != "$root" ] || [ "$cached_gen" != "$want_gen" ]; then rm -rf "$build"; fi
fi

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

echo "== configuring $build against $lib_dir"
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFSTORE_LIB_DIR="$lib_dir" -DFSTORE_LOCK_KEY_VECTORS="$vectors"
cmake --build "$build" -j "$jobs"

echo "== ctest"
(cd "$build" && ctest --output-on-failure)

echo "== installing into a temporary prefix"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix"

run_example() { # <label> <binary>
  local cache=$work/cache-$1
  echo "-- running the example ($1)"
  "$2" "$cache"
}

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
libdir=$(pkg-config --variable=libdir fstore)
cxx=$(command -v c++ || command -v g++)
# -l:libfstore.a picks the archive where -lfstore would pick the .so.
"$cxx" -std=c++17 "$root/examples/cpp/main.cpp" $(pkg-config --cflags fstore) \
  $(pkg-config --static --libs fstore | sed 's/-lfstore\b/-l:libfstore.a/') -o "$work/example-pc-static"
run_example pc-static "$work/example-pc-static"

echo "run_tests.sh: all C/C++ tests and examples passed"
