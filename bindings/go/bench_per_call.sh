#!/usr/bin/env bash
# Per-call cost of a hit of one 252x16 float64 entry (memory cache on)
# through Get and GetOrCompute, against the raw cgo call beneath them (one
# cgo call running fstore_store_get_or_compute and releasing the stream):
# the benchmarks of bench_test.go, run COUNT times, summarised as medians in
# us/call (wall clock, and CPU time of the whole process: on a shared
# machine the wall clock also counts the time other processes hold the
# cores) with the ratios to the raw call.
#
#   bindings/go/bench_per_call.sh [--smoke] [COUNT [CALLS]]
#
# Defaults: COUNT 7 runs of CALLS 20000 calls each; --smoke: 1 run of 200.
# Environment: FSTORE_LIB_DIR (see cgo_env.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/cgo_env.sh"

count=7
calls=20000
if [ "${1:-}" = --smoke ]; then
  shift
  count=1
  calls=200
fi
count=${1:-$count}
calls=${2:-$calls}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fstore-go-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export FSTORE_CACHE_DIR="$scratch/cache"

cd "$here/fstore"
echo "command: $0${*:+ $*} (count $count, calls $calls)"
echo "commit: $(git -C "$root" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown); $(go version); libfstore from $lib_dir"
go test -run '^$' -bench '^Benchmark(CgoHit|GetHit|GetOrComputeHit)$' -benchmem \
  -count "$count" -benchtime "${calls}x" . | tee "$scratch/bench.txt"

# Medians per benchmark of the us/call and cpu-us/call metrics, and ratios.
awk '
  function median(name, metric,   n, i, j, t, v) {
    n = count[name, metric]
    for (i = 1; i <= n; i++) v[i] = value[name, metric, i]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  /^Benchmark/ {
    name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
    if (!(name in seen)) { seen[name] = 1; order[++names] = name }
    for (i = 3; i < NF; i++) if ($(i + 1) == "us/call" || $(i + 1) == "cpu-us/call" || $(i + 1) == "allocs/op") {
      metric = $(i + 1); value[name, metric, ++count[name, metric]] = $i
    }
  }
  END {
    if (!("CgoHit" in seen)) { print "bench_per_call.sh: no CgoHit result" > "/dev/stderr"; exit 1 }
    printf "\n%-18s %10s %10s %8s %12s %12s\n", "median", "us/call", "cpu-us", "allocs", "wall ratio", "cpu ratio"
    for (k = 1; k <= names; k++) {
      name = order[k]
      wall = median(name, "us/call"); cpu = median(name, "cpu-us/call")
      printf "%-18s %10.2f %10.2f %8d %12.2f %12.2f\n", name, wall, cpu, median(name, "allocs/op"),
        wall / median("CgoHit", "us/call"), cpu / median("CgoHit", "cpu-us/call")
    }
  }' "$scratch/bench.txt"
