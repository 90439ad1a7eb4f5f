#!/usr/bin/env bash
# Tests the Go module (bindings/go/fstore) against a built libfstore: checks
# that its copy of the header is include/fstore.h, vets it, runs its tests,
# runs examples/go (through a replace directive) and a module outside the
# repository that gets it as a user would (test_outside_module.sh).
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

# The module builds with nothing outside it, so it carries the header.
if ! cmp -s "$root/include/fstore.h" "$here/fstore/fstore.h"; then
  echo "error: bindings/go/fstore/fstore.h differs from include/fstore.h; refresh it:" >&2
  echo "  cp include/fstore.h bindings/go/fstore/fstore.h" >&2
  exit 1
fi
export FSTORE_LOCK_KEY_VECTORS=${FSTORE_LOCK_KEY_VECTORS:-$root/tests/vectors/lock_keys.json}

# Tests never touch the user's real cache (they pass their own cache_dir too).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fstore-go-tests.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export FSTORE_CACHE_DIR="$scratch/cache"

cd "$here/fstore"
echo "go: $(go version); libfstore from $lib_dir"
go mod download
go vet ./...

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
[ "$status" -eq 0 ] || exit "$status"

echo "go: examples/go"
(cd "$root/examples/go" && go vet . && go run . -workers 4 -epochs 3 -compute 5ms)
echo "go: a module outside the repository"
bash "$here/test_outside_module.sh"
