#!/usr/bin/env bash
# Every benchmark of libfstore, one after another, from one command:
#
#   examples/run_benchmarks.sh [--smoke] [--postgres DSN]
#
#   fleet      examples/bench_fleet: herd, original scenario (C and Python),
#              spread, hot, scale and memory, against the original design,
#              the row-lock design and no coordination
#   hits       examples/bench_hits: hits per second from 1 and 2 threads
#              (Rust and C API), and decoding a projection
#   scan       examples/bench_scan: a scan of 500 entries against 500 gets
#   python     bindings/python/bench/per_call.py: a hit through Python
#              against the C call beneath it
#   go         bindings/go/bench_per_call.sh: the same through Go
#
# Each prints the command and commit that reproduce it, medians of several
# runs and its verdict on the targets it measures. Without --postgres a
# throwaway PostgreSQL server is started (tests/pg_server.sh). --smoke runs
# every one briefly (the test command's `bench` step). Exits non-zero if
# any benchmark failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}
export FSTORE_LIB_DIR=${FSTORE_LIB_DIR:-$CARGO_TARGET_DIR/release}

smoke=()
dsn=${FSTORE_TEST_PG_DSN:-}
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=(--smoke) ;;
    --postgres) dsn=${2:?--postgres needs a DSN}; shift ;;
    *) echo "run_benchmarks.sh: unknown argument '$1' (--smoke, --postgres DSN)" >&2; exit 2 ;;
  esac
  shift
done

pg_dir=""
cleanup() { [ -z "$pg_dir" ] || tests/pg_server.sh stop "$pg_dir"; }
trap cleanup EXIT
if [ -z "$dsn" ]; then
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/fstore-bench-pg.XXXXXX")
  eval "$(tests/pg_server.sh start "$pg_dir")" || exit 1
  dsn=$FSTORE_TEST_PG_DSN
fi

cargo build --release --lib --examples || exit 1
bash tests/lib_links.sh "$CARGO_TARGET_DIR/release" || exit 1
python=$(bash bindings/python/venv.sh) || exit 1
examples=$CARGO_TARGET_DIR/release/examples

failed=()
run() { # run NAME COMMAND...
  local name=$1 started=$SECONDS
  shift
  echo
  echo "=== $name: $*" | sed -E 's/password=[^ ]*/password=***/g' # the DSN's password stays private
  if "$@"; then
    echo "=== $name: done in $((SECONDS - started)) s"
  else
    echo "=== $name: FAILED after $((SECONDS - started)) s"
    failed+=("$name")
  fi
}

run fleet "$examples/bench_fleet" "${smoke[@]}" --postgres "$dsn" --python "$python"
run hits "$examples/bench_hits" "${smoke[@]}"
run scan "$examples/bench_scan" "${smoke[@]}"
run python env PYTHONPATH="$root/bindings/python" "$python" bindings/python/bench/per_call.py "${smoke[@]}"
run go bash bindings/go/bench_per_call.sh "${smoke[@]}"

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_benchmarks.sh: failed: ${failed[*]}"
  exit 1
fi
echo "run_benchmarks.sh: every benchmark ran"
