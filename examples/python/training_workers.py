"""Training workers sharing one feature cache: several processes ask for
overlapping keys at once; each key is computed exactly once across the
fleet, every other request is a hit (or waits for that one compute).

    pip install ./bindings/python pyarrow
    python examples/python/training_workers.py [--workers 4] [--epochs 3] [--symbols 8] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import random
import tempfile
import time
from typing import Any

import pyarrow as pa

import fstore

START, END = datetime.date(2024, 1, 1), datetime.date(2024, 3, 31)


def compute_returns(key: fstore.Key) -> pa.Table:
    time.sleep(0.05)  # stands in for reading and transforming raw data
    days = key.end_date - key.start_date + 1
    rng = random.Random(f"{key.symbol}/{key.config}")
    return pa.table({"day": pa.array(range(key.start_date, key.end_date + 1), pa.int32()),
                     "ret": pa.array([rng.gauss(0, 0.01) for _ in range(days)], pa.float64())})


def worker(cache_dir: str, worker_id: int, symbols: list[str], epochs: int, start: Any, results: Any) -> None:
    rows = 0
    with fstore.Store(cache_dir, options={"wait.timeout_ms": 60_000}) as store:
        start.wait()  # every worker asks at once: the keys collide
        for epoch in range(epochs):
            order = random.Random(worker_id * 1000 + epoch).sample(symbols, len(symbols))
            for symbol in order:
                key = fstore.Key("returns", symbol, START, END, config={"window": 20})
                rows += store.get_or_compute(key, compute_returns).to_pyarrow().num_rows
        stats = store.stats()
    results.put({"computes": stats.computes, "hits": stats.hits, "waits": stats.waits, "rows": rows})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--cache-dir", help="default: a new temporary directory")
    args = parser.parse_args()
    if args.cache_dir:
        return run(args, args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="fstore-training-") as cache_dir:
        return run(args, cache_dir)


def run(args: argparse.Namespace, cache_dir: str) -> int:
    symbols = [f"SYM{i:03d}" for i in range(args.symbols)]
    context = multiprocessing.get_context("spawn")
    start, queue = context.Barrier(args.workers), context.Queue()
    workers = [context.Process(target=worker, args=(cache_dir, w, symbols, args.epochs, start, queue))
               for w in range(args.workers)]
    for process in workers:
        process.start()
    results = [queue.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(30)
    total = {name: sum(r[name] for r in results) for name in results[0]}
    asks = args.workers * args.epochs * len(symbols)
    print(f"libfstore {fstore.library_version()}, cache {cache_dir}")
    print(f"{args.workers} workers x {args.epochs} epochs x {len(symbols)} symbols = {asks} requests: "
          f"{total['computes']} computes, {total['hits']} hits, {total['waits']} waits, {total['rows']} rows read")
    if total["computes"] != len(symbols) or total["rows"] != asks * (END - START).days + asks:
        print("training_workers: FAILED: expected one compute per symbol and every row read")
        return 1
    print("training_workers: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
