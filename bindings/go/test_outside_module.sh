#!/usr/bin/env bash
# A Go module outside the repository that requires the fstore module the way
# a user's would: `go get` of a release, served by a local module proxy (the
# module zip layout that proxy.golang.org serves, built from this tree), then
# built and run against libfstore linked both ways the README describes:
#   - installed (cmake --install into a temporary prefix): pkg-config, with
#     PKG_CONFIG_PATH set to the prefix, and no other variable;
#   - a cargo target directory: the tag fstore_nopkgconfig and CGO_LDFLAGS.
# The program is examples/go/main.go, copied out.
#
#   bindings/go/test_outside_module.sh
#
# Environment: FSTORE_LIB_DIR (see cgo_env.sh), used only to install from and
# for the CGO_LDFLAGS route.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# Only the library's directory: none of cgo_env.sh's flags reach the builds.
lib_dir=$(. "$here/cgo_env.sh" && echo "$lib_dir")
unset CGO_CFLAGS CGO_LDFLAGS CGO_CPPFLAGS PKG_CONFIG_PATH LD_LIBRARY_PATH
export GOFLAGS=-buildvcs=false
if ! command -v pkg-config >/dev/null 2>&1; then
  echo "error: pkg-config is missing, the module's default link route needs it: apt-get install pkg-config" >&2
  exit 2
fi

module=github.com/libfstore/libfstore/bindings/go/fstore
# The release it stands for: a pre-release of the version of the header the
# module carries, unique to this run. Go's build cache keys a module's
# package by its directory (which holds the version), not by pkg-config's
# output: with one version for every run, a later run would link with the
# flags cached from an earlier run's prefix, long deleted.
header_version=$(sed -n 's/^#define FSTORE_VERSION_STRING "\(.*\)"$/\1/p' "$here/fstore/fstore.h")
[ -n "$header_version" ] || { echo "error: no FSTORE_VERSION_STRING in bindings/go/fstore/fstore.h" >&2; exit 1; }
version=v$header_version-outside.$(date +%s).$$
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fstore-go-outside.XXXXXX")
modcache=$(go env GOMODCACHE)
# The module cache keeps a version forever: drop these stand-in releases
# (this run's, and any an interrupted run left), so that no user keeps one.
forget_releases() {
  chmod -R u+w "$modcache/$module"@*-outside.* 2>/dev/null || true
  rm -rf "$modcache/$module"@*-outside.* "$modcache/cache/download/$module/@v/"*-outside.*
  local list="$modcache/cache/download/$module/@v/list"
  [ ! -f "$list" ] || grep -qv -- '-outside\.' "$list" || rm -f "$list"
}
trap 'forget_releases; rm -rf "$scratch"' EXIT
forget_releases

echo "go outside: installing libfstore into $scratch/prefix"
cmake -S "$root" -B "$scratch/cmake" -DFSTORE_LIB_DIR="$lib_dir" -DFSTORE_BUILD_TESTS=OFF >/dev/null
cmake --install "$scratch/cmake" --prefix "$scratch/prefix" >/dev/null

echo "go outside: a local module proxy serving $module@$version"
"$here/module_proxy.sh" "$root/bindings/go/fstore" "$module" "$version" "$scratch/proxy"

mkdir "$scratch/consumer"
cp "$root/examples/go/main.go" "$scratch/consumer/"
cd "$scratch/consumer"
go mod init example.com/trainer >/dev/null 2>&1
# The proxy stands in for proxy.golang.org; the module cache serves the
# dependencies, so nothing is downloaded. GONOSUMDB: the checksum database
# does not know this stand-in release.
export GOPROXY="file://$scratch/proxy,file://$modcache/cache/download" GONOSUMDB=$module
go get "$module@$version"
go mod tidy

echo "go outside: linked through pkg-config against the installed prefix"
pc_file=$(find "$scratch/prefix" -name fstore.pc | head -n 1)
prefix_lib=$(dirname "$(dirname "$pc_file")") # lib or lib64, as GNUInstallDirs chose
PKG_CONFIG_PATH=$(dirname "$pc_file") go build -o trainer-installed .
LD_LIBRARY_PATH=$prefix_lib ./trainer-installed -workers 3 -epochs 2 -compute 5ms

echo "go outside: linked through CGO_LDFLAGS against the cargo target directory"
CGO_LDFLAGS="-L$lib_dir -Wl,-rpath,$lib_dir" go build -tags fstore_nopkgconfig -o trainer-target .
./trainer-target -workers 3 -epochs 2 -compute 5ms
echo "go outside: ok"
