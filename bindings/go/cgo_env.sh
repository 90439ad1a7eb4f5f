# Sourced by run_tests.sh and bench_per_call.sh: finds libfstore in a cargo
# target directory and points cgo at it the way the README tells a user to
# (the tag fstore_nopkgconfig and CGO_LDFLAGS; the header is the module's own
# copy). Needs $root (the repository) to be set.
#
# Environment: FSTORE_LIB_DIR (directory holding libfstore.so / libfstore.a;
# default $CARGO_TARGET_DIR/release, CARGO_TARGET_DIR defaulting to
# ~/.cache/fstore-target).

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain is missing: install Go 1.25 or newer (https://go.dev/dl)" >&2
  exit 2
fi
if ! command -v cc >/dev/null 2>&1 && [ -z "${CC:-}" ]; then
  echo "error: cgo needs a C compiler: apt-get install gcc" >&2
  exit 2
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}
lib_dir=${FSTORE_LIB_DIR:-$CARGO_TARGET_DIR/release}
if [ ! -e "$lib_dir/libfstore.so" ] && [ ! -e "$lib_dir/libfstore.a" ]; then
  echo "error: no libfstore.so or libfstore.a in $lib_dir: build it with 'cargo build --release' or set FSTORE_LIB_DIR" >&2
  exit 2
fi
lib_dir=$(cd "$lib_dir" && pwd)
# Programs linked with -lfstore need the SONAME's name (libfstore.so.0) at run time.
[ ! -e "$lib_dir/libfstore.so" ] || bash "$root/tests/lib_links.sh" "$lib_dir" || exit 2

export CGO_ENABLED=1
export CGO_LDFLAGS="${CGO_LDFLAGS:-} -L$lib_dir -Wl,-rpath,$lib_dir"
export GOFLAGS="${GOFLAGS:-} -mod=mod -tags=fstore_nopkgconfig"
