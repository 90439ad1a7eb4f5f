#!/usr/bin/env bash
# Runs every test in every language: Rust (core, C ABI, processes, forks),
# 60 s of property fuzzing, the C program plainly, under valgrind and under
# ASan+UBSan, C++ with CMake/ctest (plainly, ASan+UBSan, TSan), packaging
# (the shared library's SONAME and exports; install, find_package,
# pkg-config, add_subdirectory and FetchContent consumers), Go, Python, a
# demo smoke run, every command of the operating guides (docs/*.md), a
# smoke run of every benchmark (examples/run_benchmarks.sh: the fleet
# benchmark's every scenario and baseline, embedded and PostgreSQL,
# through C and Python; hits, scan, Python and Go per call), the fault tests
# (a host cut off in a network namespace, a server that ends idle
# transactions, a full disk; root only) and a soak.
#
#   tests/run_all.sh            # everything
#   tests/run_all.sh rust go    # only some steps
#
# Builds go to $CARGO_TARGET_DIR (default ~/.cache/fstore-target) so that the
# bundled DuckDB, the slowest build by far, compiles once per machine.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}
export FSTORE_LIB_DIR=${FSTORE_LIB_DIR:-$CARGO_TARGET_DIR/release}
if [ -z "${FSTORE_LOCK_KEY_VECTORS:-}" ]; then
  if [ -f "$root/../shared/vectors/lock_keys.json" ]; then
    FSTORE_LOCK_KEY_VECTORS="$root/../shared/vectors/lock_keys.json"
  else
    FSTORE_LOCK_KEY_VECTORS="$root/tests/vectors/lock_keys.json"
  fi
fi
export FSTORE_LOCK_KEY_VECTORS
# Tests never touch the user's real cache.
export FSTORE_CACHE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fstore-tests.XXXXXX")
pg_dir=""
cleanup() {
  [ -z "$pg_dir" ] || tests/pg_server.sh stop "$pg_dir"
  rm -rf "$FSTORE_CACHE_DIR"
}
trap cleanup EXIT

missing=()
need() { # need COMMAND WHAT-TO-INSTALL
  command -v "$1" >/dev/null 2>&1 || missing+=("$1 ($2)")
}
need cargo "Rust toolchain: https://rustup.rs"
need cc "a C compiler: apt-get install gcc"
need c++ "a C++ compiler: apt-get install g++"
need cmake "apt-get install cmake"
need go "Go 1.25 or newer: https://go.dev/dl"
need python3 "Python 3.9 or newer, with venv: apt-get install python3-venv"
need valgrind "apt-get install valgrind"
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: the test command needs these, which are missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 2
fi

# A throwaway PostgreSQL server for the PostgreSQL tests, unless one is given.
if [ -z "${FSTORE_TEST_PG_DSN:-}" ]; then
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/fstore-pg.XXXXXX")
  if ! pg_env=$(tests/pg_server.sh start "$pg_dir"); then
    echo "error: cannot start the test PostgreSQL server (see above)" >&2
    exit 2
  fi
  eval "$pg_env"
  echo "test PostgreSQL server: ${FSTORE_TEST_PG_DSN/password=* /password=*** }"
fi

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(build rust fuzz header c cpp packaging go python demo docs bench faults soak)
passed=0
failed=0
failures=()
# One row per step that ran, for the summary at the end.
step_names=()
step_results=()
step_seconds=()
run_step() { # run_step NAME COMMAND...
  local name=$1
  shift
  echo
  echo "=== $name: $*"
  local started=$SECONDS result=passed elapsed
  "$@" || result=FAILED
  elapsed=$((SECONDS - started))
  if [ "$result" = passed ]; then
    passed=$((passed + 1))
    echo "=== $name: passed in $elapsed s"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== $name: FAILED after $elapsed s"
  fi
  step_names+=("$name")
  step_results+=("$result")
  step_seconds+=("$elapsed")
}

minutes() { # minutes SECONDS: "12 min 5 s"
  echo "$(($1 / 60)) min $(($1 % 60)) s"
}

# Every step's status and time, and the whole run's wall time (server start
# included), so the time left under CI's limit stays visible.
print_summary() {
  local i
  echo
  echo "=== summary"
  printf '%-10s %-7s %8s\n' step status seconds
  for i in "${!step_names[@]}"; do
    printf '%-10s %-7s %8s\n' "${step_names[$i]}" "${step_results[$i]}" "${step_seconds[$i]}"
  done
  echo "total wall time: $SECONDS s ($(minutes "$SECONDS"))"
}

header_compiles() {
  local tmp
  tmp=$(mktemp -d)
  printf '#include "fstore.h"\nint main(void) { return fstore_version() == 0; }\n' > "$tmp/h.c"
  cc -std=c99 -Wall -Wextra -Werror -pedantic -I include -c "$tmp/h.c" -o "$tmp/c.o" &&
    c++ -std=c++11 -Wall -Wextra -Werror -pedantic -x c++ -I include -c "$tmp/h.c" -o "$tmp/cpp.o"
  local rc=$?
  rm -rf "$tmp"
  return $rc
}

# The library and CLI, examples included, and the SONAME's link beside the
# library so that programs linked against this directory run.
build_all() {
  cargo build --release --lib --bins --examples && bash tests/lib_links.sh "$CARGO_TARGET_DIR/release"
}

packaging() {
  bash tests/packaging/shared_library.sh "$FSTORE_LIB_DIR" && bash tests/packaging/consumers.sh
}

# Every benchmark briefly: fails when one fails (a herd that computes more
# than once, a worker's error), so that the benchmarks cannot rot.
bench_smoke() {
  bash examples/run_benchmarks.sh --smoke --postgres "$FSTORE_TEST_PG_DSN"
}

for step in "${steps[@]}"; do
  case $step in
    build) run_step build build_all ;;
    rust) run_step rust cargo test --release --no-fail-fast ;;
    # 60 s of property fuzzing in all, split between the targets; prints inputs run per target.
    fuzz) run_step fuzz env FSTORE_FUZZ_SECONDS=60 cargo test --release --test fuzz -- --test-threads=1 --nocapture ;;
    header) run_step header header_compiles ;;
    c) run_step c bash tests/c/run.sh ;;
    cpp) run_step cpp bash bindings/cpp/run_tests.sh ;;
    packaging) run_step packaging packaging ;;
    go) run_step go bash bindings/go/run_tests.sh ;;
    python)
      run_step python bash bindings/python/run_tests.sh
      # pip install from the clone into a new environment, used from elsewhere (with the example).
      run_step py-install bash bindings/python/install_test.sh ;;
    bench) run_step bench bench_smoke ;;
    demo) run_step demo cargo run --release --example training_workers -- --fresh --workers 4 --epochs 3 --compute-ms 5 ;;
    # The guides' sh blocks, in order, against the test server (tests/docs/run_guides.py).
    docs) run_step docs python3 tests/docs/run_guides.py ;;
    faults) run_step faults cargo test --release --test faults -- --nocapture --test-threads=1 ;;
    soak) run_step soak cargo test --release --test soak -- --nocapture ;;
    *) echo "unknown step '$step' (steps: build rust fuzz header c cpp packaging go python demo docs bench faults soak)" >&2; exit 2 ;;
  esac
done

print_summary
[ ${#failures[@]} -eq 0 ] || echo "failed steps: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
