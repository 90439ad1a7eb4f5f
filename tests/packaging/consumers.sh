#!/usr/bin/env bash
# Uses libfstore the four ways a C or C++ project does, each from a fresh
# directory, with no environment variable pointing at the build, and runs
# what it builds:
#   install       configure and build this source tree (cargo runs under
#                 CMake), `cmake --install` into a temporary prefix, check
#                 the layout; then, from that prefix,
#   find_package  examples/cpp with find_package(fstore CONFIG REQUIRED) and
#                 CMAKE_PREFIX_PATH (shared and static)
#   pkg-config    a C program on a plain compiler line with
#                 `pkg-config --cflags --libs fstore`, examples/cpp through
#                 CMake's pkg_check_modules, and `pkg-config --static`
#   add_subdirectory  a project that adds this source tree as libfstore
#   FetchContent      a project that declares it with SOURCE_DIR
# Every program must record libfstore.so.<major> as NEEDED (or not link it
# at all, for the static ones).
#
# Env: CARGO_TARGET_DIR (default ~/.cache/fstore-target): the target
# directory cargo uses under CMake, handed to it as -DFSTORE_CARGO_TARGET_DIR
# so that nothing is compiled twice.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}
missing=()
command -v cmake >/dev/null || missing+=("cmake (apt-get install cmake)")
command -v c++ >/dev/null || missing+=("a C++17 compiler (apt-get install g++)")
command -v pkg-config >/dev/null || missing+=("pkg-config (apt-get install pkgconf)")
command -v readelf >/dev/null || missing+=("readelf (apt-get install binutils)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'consumers.sh: missing: %s\n' "${missing[@]}" >&2
  exit 1
fi
major=$(sed -n 's/^version = "\([0-9]*\)\..*/\1/p' "$root/Cargo.toml" | head -n 1)
soname=libfstore.so.$major

# The test command builds the examples and tests in this target directory,
# which turns on dev-dependencies' features in the library's dependencies;
# asking cargo for the examples too keeps that one build (otherwise cargo
# rebuilds the library here and again in the next step, minutes each).
cargo_flags=-DFSTORE_CARGO_FLAGS=--examples
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

work=$(mktemp -d "${TMPDIR:-/tmp}/fstore-consumers.XXXXXX")
trap 'rm -rf "$work"' EXIT
# What a user's shell has: nothing of this build.
clean=(env -u FSTORE_LIB_DIR -u CARGO_TARGET_DIR -u LD_LIBRARY_PATH -u FSTORE_LIBRARY -u PKG_CONFIG_PATH
       -u CMAKE_PREFIX_PATH -u CPATH -u LIBRARY_PATH)

step() { echo; echo "== $*"; }
# Runs PROGRAM with a fresh cache directory, checking what it links first.
run_program() { # run_program LABEL PROGRAM shared|static
  local label=$1 program=$2 linkage=$3 needed
  needed=$(readelf -d "$program" | sed -n 's/.*(NEEDED).*\[\(libfstore[^]]*\)\]$/\1/p')
  if [ "$linkage" = shared ] && [ "$needed" != "$soname" ]; then
    echo "consumers.sh: $label needs '${needed:-(no libfstore)}', expected $soname" >&2
    return 1
  fi
  if [ "$linkage" = static ] && [ -n "$needed" ]; then
    echo "consumers.sh: $label should be static but needs $needed" >&2
    return 1
  fi
  "${clean[@]}" "$program" "$work/cache-$label"
}
# A fresh directory with examples/cpp's program in it.
fresh_project() { # fresh_project DIR
  mkdir -p "$1"
  cp "$root/examples/cpp/main.cpp" "$1/"
}

step "install: build this tree with CMake (cargo into $target_dir) and install it"
started=$SECONDS
"${clean[@]}" cmake -S "$root" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DFSTORE_CARGO_TARGET_DIR="$target_dir" "$cargo_flags" -DFSTORE_BUILD_TESTS=OFF -DFSTORE_BUILD_EXAMPLES=OFF
"${clean[@]}" cmake --build "$work/build"
prefix=$work/prefix
"${clean[@]}" cmake --install "$work/build" --prefix "$prefix"
libdir=$(sed -n 's/^libdir=\${prefix}\///p' "$work/build/fstore.pc")
version=$(sed -n 's/^Version: //p' "$work/build/fstore.pc")
real_name=libfstore.so.$version
for file in "include/fstore/fstore.h" "include/fstore/fstore.hpp" "$libdir/$real_name" \
            "$libdir/libfstore.a" "bin/fstore" "$libdir/cmake/fstore/fstoreConfig.cmake" \
            "$libdir/cmake/fstore/fstoreConfigVersion.cmake" "$libdir/pkgconfig/fstore.pc"; do
  [ -f "$prefix/$file" ] || { echo "consumers.sh: the install lacks $file" >&2; exit 1; }
done
[ "$(readlink "$prefix/$libdir/$soname")" = "$real_name" ] &&
  [ "$(readlink "$prefix/$libdir/libfstore.so")" = "$soname" ] ||
  { echo "consumers.sh: expected the links libfstore.so -> $soname -> $real_name" >&2; ls -l "$prefix/$libdir" >&2; exit 1; }
[ ! -e "$prefix/include/fstore.h" ] || { echo "consumers.sh: fstore.h installed flat into include/" >&2; exit 1; }
"${clean[@]}" "$prefix/bin/fstore" --version
echo "install: layout ok in $((SECONDS - started)) s"

step "find_package(fstore CONFIG REQUIRED) from the install"
started=$SECONDS
fresh_project "$work/find-package"
cp "$root/examples/cpp/CMakeLists.txt" "$work/find-package/"
"${clean[@]}" cmake -S "$work/find-package" -B "$work/find-package/build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix"
"${clean[@]}" cmake --build "$work/find-package/build"
run_program find-package "$work/find-package/build/fstore_example" shared
"${clean[@]}" cmake -S "$work/find-package" -B "$work/find-package/static" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
  -DFSTORE_EXAMPLE_STATIC=ON
"${clean[@]}" cmake --build "$work/find-package/static"
run_program find-package-static "$work/find-package/static/fstore_example" static
echo "find_package: ok in $((SECONDS - started)) s"

step "pkg-config from the install"
started=$SECONDS
pc=(env PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config)
mkdir "$work/pkg-config"
cp "$root/tests/packaging/consumer.c" "$work/pkg-config/"
# An install outside the loader's directories: the rpath says where it is.
# shellcheck disable=SC2046 # the flags are words
"${clean[@]}" cc -std=c99 -Wall -Wextra -Werror -pedantic "$work/pkg-config/consumer.c" \
  $("${pc[@]}" --cflags --libs fstore) -Wl,-rpath,"$("${pc[@]}" --variable=libdir fstore)" -o "$work/pkg-config/consumer"
run_program pkg-config-c "$work/pkg-config/consumer" shared
fresh_project "$work/pkg-config-cmake"
cp "$root/examples/cpp/CMakeLists.txt" "$work/pkg-config-cmake/"
"${clean[@]}" PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" cmake -S "$work/pkg-config-cmake" \
  -B "$work/pkg-config-cmake/build" "${generator[@]}" -DFSTORE_EXAMPLE_USE_PKG_CONFIG=ON
"${clean[@]}" cmake --build "$work/pkg-config-cmake/build"
run_program pkg-config-cmake "$work/pkg-config-cmake/build/fstore_example" shared
# -l:libfstore.a picks the archive where -lfstore would pick the .so.
# shellcheck disable=SC2046
"${clean[@]}" c++ -std=c++17 "$root/examples/cpp/main.cpp" $("${pc[@]}" --cflags fstore) \
  $("${pc[@]}" --static --libs fstore | sed 's/-lfstore\b/-l:libfstore.a/') -o "$work/pkg-config/static"
run_program pkg-config-static "$work/pkg-config/static" static
echo "pkg-config: ok in $((SECONDS - started)) s"

# The source tree as a subproject: this checkout, as a user's vendored copy
# or clone would be; cargo runs under CMake in the test command's target
# directory.
subproject() { # subproject NAME CMAKE-LINES
  local name=$1 lines=$2 dir=$work/$1
  fresh_project "$dir"
  cat > "$dir/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(consumer_$name LANGUAGES CXX)
$lines
add_executable(app main.cpp)
target_link_libraries(app PRIVATE fstore::cpp)
CMAKE
  # No GoogleTest: a subproject must not need it.
  "${clean[@]}" cmake -S "$dir" -B "$dir/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release --no-warn-unused-cli \
    -DFSTORE_CARGO_TARGET_DIR="$target_dir" "$cargo_flags" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
  "${clean[@]}" cmake --build "$dir/build"
  if find "$dir/build" -name 'fstore_test_*' -type f | grep -q .; then
    echo "consumers.sh: $name built libfstore's tests" >&2
    return 1
  fi
  run_program "$name" "$dir/build/app" shared
}

step "add_subdirectory(<source tree> libfstore)"
started=$SECONDS
subproject add-subdirectory "add_subdirectory(\"$root\" libfstore)"
# Even with its tests asked for, a subproject without GoogleTest configures
# (with a warning), where the top level would stop.
"${clean[@]}" cmake -S "$work/add-subdirectory" -B "$work/add-subdirectory/with-tests" "${generator[@]}" \
  -DFSTORE_CARGO_TARGET_DIR="$target_dir" -DFSTORE_BUILD_TESTS=ON -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
  > "$work/with-tests.log" 2>&1 || { cat "$work/with-tests.log" >&2; echo "consumers.sh: a subproject without GoogleTest failed to configure" >&2; exit 1; }
grep -q "GoogleTest was not found" "$work/with-tests.log" ||
  { cat "$work/with-tests.log" >&2; echo "consumers.sh: no warning about the missing GoogleTest" >&2; exit 1; }
echo "add_subdirectory: ok in $((SECONDS - started)) s"

step "FetchContent_Declare(fstore SOURCE_DIR <source tree>)"
started=$SECONDS
subproject fetch-content "include(FetchContent)
FetchContent_Declare(fstore SOURCE_DIR \"$root\")
FetchContent_MakeAvailable(fstore)"
echo "FetchContent: ok in $((SECONDS - started)) s"

echo
echo "consumers.sh: passed"
