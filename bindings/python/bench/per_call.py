"""Per-call cost of a hit through the Python binding, against the C call.

    python bench/per_call.py [--smoke] [--runs N] [--calls N]

One 252x16 float64 entry is stored (memory cache on), then every
measurement repeats a hit of it CALLS times per run and prints the median
microseconds per call over RUNS runs:

- the C calls, timed in C by a small program built from per_call.c against
  the same libfstore (with a C compiler: $CC, else cc), in a process of its
  own with a store of its own: what a C caller pays, with no Python around
  it. A call includes releasing the stream; "read" also reads every batch;
- Python `get` and `get_or_compute`, each without conversion (the stream is
  released unread) and converted with `pyarrow.table`.

The ratios compare each Python call with the C call beneath it: unconverted
with C get_or_compute + release, converted with C get_or_compute + reading
every batch (pyarrow's import of the batches is pyarrow's own cost on top).
Target: Python get_or_compute on a hit at most twice the C call. Figures
come by wall clock and by the calling thread's CPU time: on a shared machine
the wall clock also counts the time other processes hold the cores.

--smoke runs a few calls only (for the test command). Needs pyarrow, and
libfstore found as the binding finds it (FSTORE_LIB_DIR, FSTORE_LIBRARY).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))

import fstore  # noqa: E402
from fstore._lib import library_path  # noqa: E402

ROWS, COLUMNS = 252, 16
TARGET_RATIO = 2.0


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=10,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def entry_table():
    import pyarrow as pa

    return pa.table({f"f{i:02d}": pa.array([float(r * COLUMNS + i) for r in range(ROWS)], pa.float64()) for i in range(COLUMNS)})


def per_call_us(fn, calls: int) -> dict[str, float]:
    """Microseconds per call of fn() over one run, by wall clock and by the
    calling thread's CPU time."""
    started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(calls):
        fn()
    cpu = (time.thread_time_ns() - started_cpu) / 1000 / calls
    return {"wall": (time.perf_counter_ns() - started) / 1000 / calls, "cpu": cpu}


def c_compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        sys.exit("per_call.py: the C baseline needs a C compiler: apt-get install gcc, or set CC")
    return cc


def build_c_program(work: pathlib.Path) -> pathlib.Path:
    """per_call.c, built against the loaded libfstore."""
    lib_dir = str(pathlib.Path(library_path()).resolve().parent)
    program = work / "per_call_c"
    build = [c_compiler(), "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
             str(HERE / "per_call.c"), f"-L{lib_dir}", "-lfstore", f"-Wl,-rpath,{lib_dir}", "-o", str(program)]
    subprocess.run(build, check=True, timeout=120)
    return program


def c_figures(program: pathlib.Path, cache_dir: pathlib.Path, key: fstore.Key, calls: int, runs: int):
    """{measurement: {clock: [us per call of each run]}} from the C program."""
    args = [str(program), str(cache_dir), key.feature_set, key.symbol, str(key.start_date), str(key.end_date),
            key.config or "", str(calls), str(runs)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
    figures: dict[str, dict[str, list[float]]] = {}
    for line in out.stdout.splitlines():
        name, clock, *values = line.split()
        figures.setdefault(name, {})[clock] = [float(v) for v in values]
    return figures


def never(key):
    raise AssertionError(f"the benchmark's entry {key} is missing")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few calls only, to check that it runs")
    parser.add_argument("--runs", type=int, help="runs per measurement (default 7; smoke 2)")
    parser.add_argument("--calls", type=int, help="calls per run (default 20000; smoke 200)")
    args = parser.parse_args()
    runs = args.runs or (2 if args.smoke else 7)
    calls = args.calls or (200 if args.smoke else 20000)

    import pyarrow as pa

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"commit: {git_commit()}; libfstore {fstore.library_version()} from {library_path()}")
    print(f"python {sys.version.split()[0]}, pyarrow {pa.__version__}; {ROWS}x{COLUMNS} float64 entry, "
          f"memory cache on; {runs} runs of {calls} calls, medians in us/call")

    with tempfile.TemporaryDirectory(prefix="fstore-per-call-") as tmp:
        work = pathlib.Path(tmp)
        cache_dir = work / "cache"
        key = fstore.Key("bench", "PERCALL", 19000, 19364, config={"window": 20})
        with fstore.Store(cache_dir, {"memory_cache_mb": 64, "manifest": "duckdb"}) as store:
            store.put(key, entry_table())
            store.flush()
            program = build_c_program(work)
            measured = {
                "py_get": lambda: store.get(key).close(),
                "py_get_table": lambda: pa.table(store.get(key)),
                "py_get_or_compute": lambda: store.get_or_compute(key, never).close(),
                "py_get_or_compute_table": lambda: pa.table(store.get_or_compute(key, never)),
            }
            assert pa.table(store.get_or_compute(key, never)).shape == (ROWS, COLUMNS)
            for fn in measured.values():
                for _ in range(calls // 10 + 10):
                    fn()
            # Runs interleave (a C run, then one run of each Python call), so
            # that a change in the machine's load weighs on all alike.
            results: dict[str, dict[str, list[float]]] = {}
            for _ in range(runs):
                for name, by_clock in c_figures(program, cache_dir, key, calls, 1).items():
                    for clock, values in by_clock.items():
                        results.setdefault(name, {}).setdefault(clock, []).extend(values)
                for name, fn in measured.items():
                    for clock, value in per_call_us(fn, calls).items():
                        results.setdefault(name, {}).setdefault(clock, []).append(value)

    clocks = ("wall", "cpu")
    median = {(name, c): statistics.median(by_clock[c]) for name, by_clock in results.items() for c in clocks}
    print(f"{'measurement':<26} {'wall':>8} {'cpu':>8}  wall of each run")
    for name, by_clock in results.items():
        runs_text = " ".join(f"{v:.2f}" for v in by_clock["wall"])
        print(f"{name:<26} {median[name, 'wall']:8.2f} {median[name, 'cpu']:8.2f}  {runs_text}")
    pairs = [
        ("py_get", "c_get_or_compute"),
        ("py_get_or_compute", "c_get_or_compute"),
        ("py_get_table", "c_get_or_compute_read"),
        ("py_get_or_compute_table", "c_get_or_compute_read"),
    ]
    print(f"{'ratio':<50} {'wall':>6} {'cpu':>6}")
    for python, c in pairs:
        wall, cpu = (median[python, clock] / median[c, clock] for clock in clocks)
        print(f"{python + ' / ' + c:<50} {wall:6.2f} {cpu:6.2f}")
    for clock in clocks:
        ratio = median["py_get_or_compute", clock] / median["c_get_or_compute", clock]
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(f"target ({clock}): py_get_or_compute <= {TARGET_RATIO:g} x c_get_or_compute: {ratio:.2f}, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
