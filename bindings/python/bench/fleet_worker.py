"""One Python worker of the fleet benchmark (examples/bench_fleet).

Opens a store through the `fstore` package, prints READY, waits for the
start signal (end of file on stdin), then asks for every key of its symbol
in its own order, round after round (the first round cold, the rest for
--steady-ms the steady state), and reports each call on stdout in the
benchmark's line protocol:

    CALL <phase> <start ns> <end ns>
    COMPUTE <start ns> <end ns>
    CPU <ns>        (the herd's call)
    ERROR <message>

Results are converted with ``pa.table`` as a training script would. The
baselines it is compared with run in Rust, which is faster than the Python
original they stand for, so the comparison favours the baselines.
"""

import argparse
import math
import random
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--task", choices=["herd", "rounds"], required=True)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--dsn", default="")
    p.add_argument("--schema", default="")
    p.add_argument("--symbol", required=True)
    p.add_argument("--keys", type=int, default=1)
    p.add_argument("--steady-ms", type=int, default=0)
    p.add_argument("--compute-ms", type=int, required=True)
    p.add_argument("--memory-cache-mb", type=int, default=64)
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--symbol-per-worker", action="store_true")
    return p.parse_args()


def features(pa, start, end):
    """The same features as the Rust workers': date, f0..f15 = sin(day * (c + 1))."""
    days = list(range(start, end + 1))
    columns = {"date": pa.array(days, type=pa.date32())}
    for c in range(16):
        columns[f"f{c}"] = pa.array([math.sin(d * (c + 1)) for d in days], type=pa.float64())
    return pa.table(columns)


def main():
    args = parse_args()
    try:
        import pyarrow as pa

        import fstore
    except ImportError as e:
        print(f"ERROR the Python worker needs pyarrow and the fstore package: {e}", flush=True)
        return 1
    options = {"memory_cache_mb": args.memory_cache_mb}
    if args.dsn:
        options.update({"manifest": "postgres", "postgres.dsn": args.dsn, "postgres.schema": args.schema, "postgres.pool_min": 1})
    else:
        options["manifest"] = "duckdb"
    symbol = f"{args.symbol}{args.index}" if args.symbol_per_worker else args.symbol
    keys = [fstore.Key("returns", symbol, 19000 + i * 300, 19000 + i * 300 + 251, "{}") for i in range(max(args.keys, 1))]
    computes = []

    def compute(key):
        started = time.time_ns()
        time.sleep(args.compute_ms / 1000)
        computes.append((started, time.time_ns()))
        return features(pa, key.start_date, key.end_date)

    lines = []
    with fstore.Store(args.cache_dir, options) as store:
        print("READY", flush=True)
        sys.stdin.buffer.read()
        order = list(range(len(keys)))
        rng = random.Random(args.index)
        round_ = 0
        steady_until = None
        while True:
            if args.task == "herd" and round_ == 1:
                break
            if round_ == 1:
                steady_until = time.monotonic() + args.steady_ms / 1000
            elif round_ > 1 and time.monotonic() >= steady_until:
                break
            if args.task == "rounds":
                rng.shuffle(order)
            phase = "herd" if args.task == "herd" else ("cold" if round_ == 0 else "warm")
            for i in order if args.task == "rounds" else order[:1]:
                start, cpu_start = time.time_ns(), time.process_time_ns()
                table = pa.table(store.get_or_compute(keys[i], compute))
                end = time.time_ns()
                if args.task == "herd":
                    lines.append(f"CPU {time.process_time_ns() - cpu_start}")
                if table.num_rows != 252:
                    print(f"ERROR read {table.num_rows} rows of key {i}", flush=True)
                    return 1
                lines.append(f"CALL {phase} {start} {end}")
            round_ += 1
    lines.extend(f"COMPUTE {s} {e}" for s, e in computes)
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # reported in the protocol, so the benchmark names it
        print(f"ERROR {type(e).__name__}: {e}".replace("\n", " "), flush=True)
        sys.exit(1)
