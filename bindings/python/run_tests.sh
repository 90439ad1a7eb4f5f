#!/usr/bin/env bash
# Tests of the Python binding against a built libfstore.
#
#   bash bindings/python/run_tests.sh [pytest arguments]
#
# Environment: FSTORE_LIB_DIR (the directory holding libfstore.so; default
# $CARGO_TARGET_DIR/release, CARGO_TARGET_DIR defaulting to
# $HOME/.cache/fstore-target), FSTORE_LIBRARY (a full path, overrides it),
# FSTORE_LOCK_KEY_VECTORS (default: the repository's tests/vectors/lock_keys.json),
# PYTHON (default python3). A virtual environment with pyarrow and pytest is
# kept in $HOME/.cache/fstore/venv. (The per-call benchmark, bench/per_call.py,
# runs with the others: examples/run_benchmarks.sh.)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}"
export FSTORE_LIB_DIR="${FSTORE_LIB_DIR:-$target_dir/release}"
export FSTORE_LOCK_KEY_VECTORS="${FSTORE_LOCK_KEY_VECTORS:-$root/tests/vectors/lock_keys.json}"

if [ -n "${FSTORE_LIBRARY:-}" ]; then
    if [ ! -f "$FSTORE_LIBRARY" ]; then
        echo "run_tests.sh: FSTORE_LIBRARY=$FSTORE_LIBRARY is not a file" >&2
        exit 1
    fi
elif [ ! -f "$FSTORE_LIB_DIR/libfstore.so" ] && [ ! -f "$FSTORE_LIB_DIR/libfstore.dylib" ]; then
    echo "run_tests.sh: no libfstore.so in FSTORE_LIB_DIR=$FSTORE_LIB_DIR" >&2
    echo "  build it first (cargo build --release in $root), or set FSTORE_LIB_DIR / FSTORE_LIBRARY" >&2
    exit 1
fi
if [ ! -f "$FSTORE_LOCK_KEY_VECTORS" ]; then
    echo "run_tests.sh: lock-key vectors not found at $FSTORE_LOCK_KEY_VECTORS" >&2
    exit 1
fi

venv_python=$(bash "$here/venv.sh")
pip=("$venv_python" -m pip --disable-pip-version-check --quiet)
# The other Arrow consumers the results are read by (tests/test_consumers.py);
# without them those cases are skipped, and said so.
"${pip[@]}" install "polars>=1" "duckdb>=1.1" "pandas>=2" "nanoarrow>=0.6" 2>/dev/null ||
    echo "run_tests.sh: polars, duckdb, pandas or nanoarrow not installed; their cases will be skipped" >&2
# The real Prometheus parser the metrics are checked with (tests/test_metrics.py).
"${pip[@]}" install "prometheus-client>=0.17" || {
    echo "run_tests.sh: cannot install prometheus-client from the package index" >&2
    exit 1
}

# Never touch a real cache: the library's fallback directory points here too.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/fstore-python-tests.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export FSTORE_CACHE_DIR="$scratch/default-cache"

export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
cd "$here"
status=0
"$venv_python" -m pytest -p no:cacheprovider --basetemp="$scratch/pytest" tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "run_tests.sh: pytest collected no tests" >&2
fi
exit "$status"
