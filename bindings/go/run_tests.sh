#!/usr/bin/env bash
# Tests the Go binding against a built libfstore.
#
#   bindings/go/run_tests.sh
#
# Environment (all optional):
#   FSTORE_LIB_DIR           directory holding libfstore.so / libfstore.a
#                            (default: $CARGO_TARGET_DIR/release, where
#                            CARGO_TARGET_DIR defaults to ~/.cache/fstore-target)
#   FSTORE_LOCK_KEY_VECTORS  lock-key vectors (default: tests/vectors/lock_keys.json)
#   FSTORE_GO_RACE           1 (default) runs the tests with the race detector, 0 without
#   FSTORE_GO_CGOCHECK2      1 (default) runs them with cgo's strict pointer
#                            checks (GOEXPERIMENT=cgocheck2), 0 without
# (The per-call benchmark, bench_per_call.sh, runs with the others:
# examples/run_benchmarks.sh.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

. "$here/cgo_env.sh"
export FSTORE_LOCK_KEY_VECTORS=${FSTORE_LOCK_KEY_VECTORS:-$root/tests/vectors/lock_keys.json}

# Tests never touch the user's real cache (they pass their own cache_dir too).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fstore-go-tests.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export FSTORE_CACHE_DIR="$scratch/cache"

cd "$here"
echo "go: $(go version); libfstore from $lib_dir"
go mod download
go vet ./...

# The pkg-config route (-tags fstore_pkgconfig), with a stand-in fstore.pc
# and none of the flags above, so that only pkg-config can make it link.
if command -v pkg-config >/dev/null 2>&1; then
  mkdir -p "$scratch/pkgconfig"
  printf '%s\n' "Name: fstore" "Description: libfstore (test stand-in)" "Version: 0" \
    "Cflags: -I$root/include" "Libs: -L$lib_dir -Wl,-rpath,$lib_dir -lfstore" \
    > "$scratch/pkgconfig/fstore.pc"
  echo "go: checking the pkg-config route (-tags fstore_pkgconfig)"
  env -u CGO_CFLAGS -u CGO_LDFLAGS PKG_CONFIG_PATH="$scratch/pkgconfig" \
    go test -tags fstore_pkgconfig -count=1 -run '^TestLockKeyVectors$' ./...
else
  echo "go: pkg-config is not installed: not checking -tags fstore_pkgconfig (apt-get install pkg-config)"
fi

race=()
if [ "${FSTORE_GO_RACE:-1}" = 1 ]; then
  race=(-race)
fi
experiment=${GOEXPERIMENT:-}
if [ "${FSTORE_GO_CGOCHECK2:-1}" = 1 ]; then
  experiment=${experiment:+$experiment,}cgocheck2
fi
set +e
GOEXPERIMENT=$experiment go test "${race[@]}" -count=1 -v ./... 2>&1 | tee "$scratch/test.log"
status=${PIPESTATUS[0]}
set -e

passed=$(grep -c -- '^--- PASS' "$scratch/test.log" || true)
failed=$(grep -c -- '^--- FAIL' "$scratch/test.log" || true)
echo "go: $passed passed, $failed failed"
exit "$status"
