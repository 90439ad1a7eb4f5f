#!/usr/bin/env bash
# Tests the Go module (bindings/go/fstore) against a built libfstore: checks
# that its copy of the header is include/fstore.h, vets it, runs its tests
# (the PostgreSQL ones against FSTORE_TEST_PG_DSN, else a throwaway server),
# runs the Prometheus collector module's tests (bindings/go/fstore/prometheus,
# through its go.work), examples/go (through a replace directive) and
# modules outside the repository that get both modules as a user would
# (test_outside_module.sh, test_outside_collector.sh).
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
. "$root/tests/pg_env.sh"
trap 'fstore_pg_cleanup; rm -rf "$scratch"' EXIT
fstore_pg_setup go go_test "${TMPDIR:-/tmp}"
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

echo "go: the Prometheus collector module"
set +e
(
  set -e
  cd prometheus
  # Its go.work builds it against the module beside it; -mod=mod is not
  # allowed in a workspace.
  export GOFLAGS="-tags=fstore_nopkgconfig"
  go list -deps -test ./... >/dev/null # fetches its dependencies
  go vet ./...
  GOEXPERIMENT=$experiment go test "${race[@]}" -count=1 -v ./... 2>&1 | tee -a "$scratch/test.log"
  exit "${PIPESTATUS[0]}"
)
[ "$?" -eq 0 ] || status=1
set -e

passed=$(grep -c -- '^--- PASS' "$scratch/test.log" || true)
failed=$(grep -c -- '^--- FAIL' "$scratch/test.log" || true)
echo "go: $passed passed, $failed failed"
[ "$status" -eq 0 ] || exit "$status"

echo "go: examples/go"
(cd "$root/examples/go" && go vet . && go run . -workers 4 -epochs 3 -compute 5ms)
echo "go: a module outside the repository"
bash "$here/test_outside_module.sh"
echo "go: a module outside the repository that serves the collector"
bash "$here/test_outside_collector.sh"
